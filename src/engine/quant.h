/* quant.h - half floats and the block layouts of the quantized weight formats.
 *
 * A quantized row of n values is n/32 blocks. Each block stores a scale d (IEEE half) and small
 * integers q; a value is x = d * q (Q8_0: q in [-127, 127]; Q4_0: q = nibble - 8 in [-8, 7]).
 * Q4_0 packs value j of the block in the low nibble of qs[j] for j < 16, and value j + 16 in the
 * high nibble of qs[j]. */
#ifndef WL_ENGINE_QUANT_H
#define WL_ENGINE_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WL_QK 32 /* values per block of Q4_0, Q8_0 (and Q4_1, Q5_0, Q5_1) */

typedef struct {
    uint16_t d;        /* scale, IEEE half */
    int8_t qs[WL_QK];  /* quants */
} wl_block_q8_0;       /* 34 bytes */

typedef struct {
    uint16_t d;            /* scale, IEEE half */
    uint8_t qs[WL_QK / 2]; /* nibbles: low = values 0..15, high = values 16..31 */
} wl_block_q4_0;           /* 18 bytes */

_Static_assert(sizeof(wl_block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(wl_block_q4_0) == 18, "Q4_0 block");

/* IEEE 754 half <-> float, exact for every half (NaN and Inf included); float -> half rounds to
 * nearest even. */
float wl_fp16_to_fp32(uint16_t h);
uint16_t wl_fp32_to_fp16(float f);

/* bfloat16 <-> float; float -> bf16 rounds to nearest even (NaN stays NaN). */
static inline float wl_bf16_to_fp32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t wl_fp32_to_bf16(float f);

/* 1 when the kernels can compute with weights of this type (F32, F16, BF16, Q8_0, Q4_0). */
int wl_type_supported(uint32_t type);

/* Scalar reference: the values of one row of n values of `type` as floats. n must be a whole
 * number of blocks. Returns 0, or -1 for a type without kernels. */
int wl_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Scalar reference: quantizes n floats into one row of `type` (the rounding of ggml's reference
 * quantizers, so files we write agree with theirs). Returns 0, or -1 for an unsupported type. */
int wl_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

#endif
