/* tensor_type.h - the weight formats of GGUF: ids, block geometry, names.
 *
 * The ids are GGUF's (ggml's) type ids, so they appear as-is in files. A format stores a row of
 * n values as n / block_size blocks of type_size bytes each. Ids that GGUF once defined and then
 * removed are unknown here, as are ids above WL_TYPE_COUNT. */
#ifndef WL_ENGINE_TENSOR_TYPE_H
#define WL_ENGINE_TENSOR_TYPE_H

#include <stddef.h>
#include <stdint.h>

enum wl_type {
    WL_TYPE_F32 = 0,
    WL_TYPE_F16 = 1,
    WL_TYPE_Q4_0 = 2,
    WL_TYPE_Q4_1 = 3,
    WL_TYPE_Q5_0 = 6,
    WL_TYPE_Q5_1 = 7,
    WL_TYPE_Q8_0 = 8,
    WL_TYPE_Q8_1 = 9,
    WL_TYPE_Q2_K = 10,
    WL_TYPE_Q3_K = 11,
    WL_TYPE_Q4_K = 12,
    WL_TYPE_Q5_K = 13,
    WL_TYPE_Q6_K = 14,
    WL_TYPE_Q8_K = 15,
    WL_TYPE_IQ2_XXS = 16,
    WL_TYPE_IQ2_XS = 17,
    WL_TYPE_IQ3_XXS = 18,
    WL_TYPE_IQ1_S = 19,
    WL_TYPE_IQ4_NL = 20,
    WL_TYPE_IQ3_S = 21,
    WL_TYPE_IQ2_S = 22,
    WL_TYPE_IQ4_XS = 23,
    WL_TYPE_I8 = 24,
    WL_TYPE_I16 = 25,
    WL_TYPE_I32 = 26,
    WL_TYPE_I64 = 27,
    WL_TYPE_F64 = 28,
    WL_TYPE_IQ1_M = 29,
    WL_TYPE_BF16 = 30,
    WL_TYPE_TQ1_0 = 34,
    WL_TYPE_TQ2_0 = 35,
    WL_TYPE_MXFP4 = 39,
    WL_TYPE_COUNT = 40
};

typedef struct wl_type_info {
    const char *name;   /* "Q4_0"; NULL for an id GGUF does not define */
    uint32_t block_size;/* values per block (1 for plain floats/ints) */
    uint32_t type_size; /* bytes per block */
} wl_type_info;

/* Geometry of type id t, or NULL when t is not a defined GGUF type. */
const wl_type_info *wl_type_get(uint32_t t);

/* Name of type id t, or "unknown". */
const char *wl_type_name(uint32_t t);

/* Bytes of one row of n values of type t; 0 when t is unknown or n is not a whole number of
 * blocks. */
size_t wl_row_bytes(uint32_t t, uint64_t n);

#endif
