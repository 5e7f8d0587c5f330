#include "engine/tensor_type.h"

/* Block geometry as GGUF defines it (ggml's type traits). QK_K super-blocks hold 256 values. */
static const wl_type_info TYPES[WL_TYPE_COUNT] = {
    [WL_TYPE_F32] = {"F32", 1, 4},
    [WL_TYPE_F16] = {"F16", 1, 2},
    [WL_TYPE_Q4_0] = {"Q4_0", 32, 2 + 16},
    [WL_TYPE_Q4_1] = {"Q4_1", 32, 2 + 2 + 16},
    [WL_TYPE_Q5_0] = {"Q5_0", 32, 2 + 4 + 16},
    [WL_TYPE_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16},
    [WL_TYPE_Q8_0] = {"Q8_0", 32, 2 + 32},
    [WL_TYPE_Q8_1] = {"Q8_1", 32, 2 + 2 + 32},
    [WL_TYPE_Q2_K] = {"Q2_K", 256, 16 + 64 + 2 + 2},
    [WL_TYPE_Q3_K] = {"Q3_K", 256, 32 + 64 + 12 + 2},
    [WL_TYPE_Q4_K] = {"Q4_K", 256, 2 + 2 + 12 + 128},
    [WL_TYPE_Q5_K] = {"Q5_K", 256, 2 + 2 + 12 + 32 + 128},
    [WL_TYPE_Q6_K] = {"Q6_K", 256, 128 + 64 + 16 + 2},
    [WL_TYPE_Q8_K] = {"Q8_K", 256, 4 + 256 + 32},
    [WL_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 2 + 64},
    [WL_TYPE_IQ2_XS] = {"IQ2_XS", 256, 2 + 64 + 8},
    [WL_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 2 + 96},
    [WL_TYPE_IQ1_S] = {"IQ1_S", 256, 2 + 32 + 16},
    [WL_TYPE_IQ4_NL] = {"IQ4_NL", 32, 2 + 16},
    [WL_TYPE_IQ3_S] = {"IQ3_S", 256, 2 + 64 + 32 + 8 + 4},
    [WL_TYPE_IQ2_S] = {"IQ2_S", 256, 2 + 64 + 8 + 8},
    [WL_TYPE_IQ4_XS] = {"IQ4_XS", 256, 2 + 2 + 4 + 128},
    [WL_TYPE_I8] = {"I8", 1, 1},
    [WL_TYPE_I16] = {"I16", 1, 2},
    [WL_TYPE_I32] = {"I32", 1, 4},
    [WL_TYPE_I64] = {"I64", 1, 8},
    [WL_TYPE_F64] = {"F64", 1, 8},
    [WL_TYPE_IQ1_M] = {"IQ1_M", 256, 32 + 16 + 8},
    [WL_TYPE_BF16] = {"BF16", 1, 2},
    [WL_TYPE_TQ1_0] = {"TQ1_0", 256, 2 + 4 * 13},
    [WL_TYPE_TQ2_0] = {"TQ2_0", 256, 2 + 64},
    [WL_TYPE_MXFP4] = {"MXFP4", 32, 1 + 16},
};

const wl_type_info *wl_type_get(uint32_t t)
{
    if (t >= WL_TYPE_COUNT || TYPES[t].name == NULL)
        return NULL;
    return &TYPES[t];
}

const char *wl_type_name(uint32_t t)
{
    const wl_type_info *ti = wl_type_get(t);
    return ti ? ti->name : "unknown";
}

size_t wl_row_bytes(uint32_t t, uint64_t n)
{
    const wl_type_info *ti = wl_type_get(t);
    if (!ti || n % ti->block_size != 0)
        return 0;
    uint64_t blocks = n / ti->block_size;
    if (blocks > SIZE_MAX / ti->type_size)
        return 0;
    return (size_t)(blocks * ti->type_size);
}
