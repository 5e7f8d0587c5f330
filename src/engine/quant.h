/* quant.h - half floats and the block layouts of the quantized weight formats.
 *
 * A quantized row of n values is n / block-size blocks; every block stores its scales (IEEE
 * halves unless said otherwise) and small integers q. The layouts are GGUF's (ggml's), byte for
 * byte; "value j" is the j-th value of the block in row order.
 *
 * 32-value blocks (WL_QK):
 *   Q8_0  x = d * q, q int8 in [-127, 127].
 *   Q4_0  x = d * (nibble - 8). Value j < 16 is the low nibble of qs[j], value j + 16 the high
 *         nibble of qs[j].
 *   Q4_1  x = d * nibble + m; nibbles as Q4_0.
 *   Q5_0  x = d * (q - 16), q = nibble | (bit j of qh) << 4; nibbles as Q4_0, qh is a
 *         little-endian uint32 whose bit j belongs to value j.
 *   Q5_1  x = d * q + m, q as Q5_0.
 *   Q8_1  (activations of Q4_1 / Q5_1) as Q8_0, plus s = d * sum(q) as a half.
 * 256-value super-blocks (WL_QK_K), made of sub-blocks with their own small scales:
 *   Q2_K  16 sub-blocks of 16: x = d * (sc & 15) * q - dmin * (sc >> 4), sc = scales[v / 16],
 *         q in 0..3 = bits 2s..2s+1 of qs[32 * (v / 128) + v % 32], s = (v % 128) / 32.
 *   Q3_K  16 sub-blocks of 16: x = d * (sc - 32) * (q - 4), sc the 6-bit scale of v / 16
 *         (wl_q3_k_scale), q = low 2 bits as Q2_K | (bit v / 32 of hmask[v % 32]) << 2.
 *   Q4_K  8 sub-blocks of 32: x = d * sc * q - dmin * m, sc and m the 6-bit scale and min of
 *         v / 32 (wl_k4_scale_min), q the low nibble of qs[32 * (v / 64) + v % 32] when
 *         v % 64 < 32, else its high nibble.
 *   Q5_K  as Q4_K with q in 0..31: the nibble | (bit v / 32 of qh[v % 32]) << 4.
 *   Q6_K  16 sub-blocks of 16: x = d * scales[v / 16] * (q - 32), scales int8, q in 0..63 =
 *         nibble | 2 high bits: with h = v / 128, r = v % 128, l = r % 32, the nibble is the
 *         low (r < 64) or high (r >= 64) nibble of ql[64 h + l + 32 * ((r / 32) % 2)], the
 *         high bits are bits 2 (r / 32).. of qh[32 h + l].
 *   Q8_K  (activations of the k-quants) x = d * q, d a float, q int8, and bsums[k] = the sum of
 *         q over values 16k..16k+15. */
#ifndef WL_ENGINE_QUANT_H
#define WL_ENGINE_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WL_QK 32    /* values per block of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 */
#define WL_QK_K 256 /* values per super-block of the k-quants and Q8_K */

typedef struct {
    uint16_t d;        /* scale, IEEE half */
    int8_t qs[WL_QK];  /* quants */
} wl_block_q8_0;       /* 34 bytes */

typedef struct {
    uint16_t d;            /* scale, IEEE half */
    uint8_t qs[WL_QK / 2]; /* nibbles: low = values 0..15, high = values 16..31 */
} wl_block_q4_0;           /* 18 bytes */

typedef struct {
    uint16_t d, m;         /* scale and minimum, halves */
    uint8_t qs[WL_QK / 2]; /* nibbles, as Q4_0 */
} wl_block_q4_1;           /* 20 bytes */

typedef struct {
    uint16_t d;            /* scale, half */
    uint8_t qh[4];         /* bit j: the fifth bit of value j */
    uint8_t qs[WL_QK / 2]; /* low nibbles, as Q4_0 */
} wl_block_q5_0;           /* 22 bytes */

typedef struct {
    uint16_t d, m;         /* scale and minimum, halves */
    uint8_t qh[4];         /* bit j: the fifth bit of value j */
    uint8_t qs[WL_QK / 2]; /* low nibbles, as Q4_0 */
} wl_block_q5_1;           /* 24 bytes */

typedef struct {
    uint16_t d, s;     /* scale, and d * sum(qs), halves */
    int8_t qs[WL_QK];  /* quants */
} wl_block_q8_1;       /* 36 bytes */

typedef struct {
    uint8_t scales[WL_QK_K / 16]; /* per 16 values: scale (low 4 bits), min (high 4 bits) */
    uint8_t qs[WL_QK_K / 4];      /* 2-bit quants */
    uint16_t d, dmin;             /* super-block scales of the scales and of the mins */
} wl_block_q2_k;                  /* 84 bytes */

typedef struct {
    uint8_t hmask[WL_QK_K / 8]; /* third bit of the quants */
    uint8_t qs[WL_QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];         /* 16 6-bit scales (wl_q3_k_scale) */
    uint16_t d;                 /* super-block scale */
} wl_block_q3_k;                /* 110 bytes */

typedef struct {
    uint16_t d, dmin;          /* super-block scales of the scales and of the mins */
    uint8_t scales[12];        /* 8 6-bit scales and 8 6-bit mins (wl_k4_scale_min) */
    uint8_t qs[WL_QK_K / 2];   /* 4-bit quants */
} wl_block_q4_k;               /* 144 bytes */

typedef struct {
    uint16_t d, dmin;          /* super-block scales of the scales and of the mins */
    uint8_t scales[12];        /* as Q4_K */
    uint8_t qh[WL_QK_K / 8];   /* fifth bit of the quants */
    uint8_t qs[WL_QK_K / 2];   /* low 4 bits */
} wl_block_q5_k;               /* 176 bytes */

typedef struct {
    uint8_t ql[WL_QK_K / 2];     /* low 4 bits */
    uint8_t qh[WL_QK_K / 4];     /* high 2 bits */
    int8_t scales[WL_QK_K / 16]; /* per 16 values */
    uint16_t d;                  /* super-block scale */
} wl_block_q6_k;                 /* 210 bytes */

typedef struct {
    float d;                      /* scale, a float */
    int8_t qs[WL_QK_K];           /* quants */
    int16_t bsums[WL_QK_K / 16];  /* sums of the quants in groups of 16 */
} wl_block_q8_k;                  /* 292 bytes */

_Static_assert(sizeof(wl_block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(wl_block_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(wl_block_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(wl_block_q5_0) == 22, "Q5_0 block");
_Static_assert(sizeof(wl_block_q5_1) == 24, "Q5_1 block");
_Static_assert(sizeof(wl_block_q8_1) == 36, "Q8_1 block");
_Static_assert(sizeof(wl_block_q2_k) == 84, "Q2_K block");
_Static_assert(sizeof(wl_block_q3_k) == 110, "Q3_K block");
_Static_assert(sizeof(wl_block_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(wl_block_q5_k) == 176, "Q5_K block");
_Static_assert(sizeof(wl_block_q6_k) == 210, "Q6_K block");
_Static_assert(sizeof(wl_block_q8_k) == 292, "Q8_K block");

/* The 16 bits at p, any alignment: the half scales inside quantized blocks (and rows) sit at
 * any even, or odd, address. */
static inline uint16_t wl_load_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* IEEE 754 half -> float, exact for every half (NaN payloads and Inf included). Inline: the
 * scalar kernels call it per value. */
static inline float wl_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu; /* exponent and mantissa */
    uint32_t u;
    if (em >= 0x7c00u) { /* Inf, NaN */
        u = sign | 0x7f800000u | ((em & 0x3ffu) << 13);
    } else if (em >= 0x0400u) { /* normal: rebias the exponent 15 -> 127 */
        u = sign | ((em << 13) + (112u << 23));
    } else { /* zero or subnormal: em * 2^-24, exact, and a normal float (so flush-to-zero
              * modes cannot touch it) */
        float mag = (float)em * 0x1p-24f;
        memcpy(&u, &mag, 4);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* float -> IEEE 754 half, rounding to nearest even (overflow to Inf, NaN stays a quiet NaN). */
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

/* The 6-bit scale sc and min m of sub-block j (0..7) of a Q4_K / Q5_K block: j < 4 in the low
 * 6 bits of scales[j] and scales[j + 4]; j >= 4 in the nibbles of scales[j + 4] with the top
 * 2 bits in the high bits of scales[j - 4] (scale) and scales[j] (min). */
static inline void wl_k4_scale_min(const uint8_t scales[12], int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* The signed scale (-32..31) of sub-block j (0..15) of a Q3_K block: the low 4 bits are the low
 * (j < 8) or high (j >= 8) nibble of scales[j % 8], the top 2 bits are bits 2 (j / 4).. of
 * scales[8 + j % 4]. */
static inline int wl_q3_k_scale(const uint8_t scales[12], int j)
{
    int lo = j < 8 ? scales[j] & 0x0f : scales[j - 8] >> 4;
    int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* 1 when the kernels can compute with weights of this type: F32, F16, BF16, Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (Q8_1 and Q8_K are activation formats only). */
int wl_type_supported(uint32_t type);

/* Scalar reference: the values of one row of n values of `type` as floats, computed as ggml's
 * dequantizers do (d * q + m etc. without fused multiply-adds). Types: every supported weight
 * type, and Q8_1 and Q8_K. n must be a whole number of blocks. src may have any alignment.
 * Returns 0, or -1 for another type or an n that is not a whole number of blocks. */
int wl_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Scalar reference: quantizes n floats into one row of `type`, with the rounding of ggml's
 * reference quantizers (quantize_row_*_ref, what llama-quantize runs without an importance
 * matrix), so files we write agree with theirs bit for bit. Q8_0: d = amax / 127,
 * q = roundf(x * (1/d)); Q4_0: d = max / -8 with max the value of largest magnitude,
 * nibble = min(15, trunc(x * (1/d) + 8.5)); the other formats as their ggml reference
 * quantizers (the k-quants search their sub-block scales and mins). F16/BF16 round to nearest
 * even. dst may have any alignment. Returns 0, or -1 for a type without a quantizer (anything
 * not supported, Q8_1, Q8_K) or an n that is not a whole number of blocks (for the k-quants:
 * of 256 values). */
int wl_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Quantizes one block of 32 floats to Q8_0 at `out` (any alignment), rounding as
 * wl_quantize_row does (ggml's reference rule, for files). */
void wl_quantize_block_q8_0(const float *x, void *out);

/* One block of 32 activations as Q8_0, the way llama.cpp's x86 CPU code quantizes activations at
 * run time (its SIMD quantizer, not its reference one): d = amax / 127 stored as a half,
 * q = x * (127 / amax) rounded to nearest, halves to even (all 0 when d is 0 as a half). The
 * reference outputs we test against come from that code, and the two rules differ in the last
 * bit often enough to flip a near-tie of a small model after a few dozen tokens. Every kernel
 * family produces exactly these bytes for finite inputs; non-finite inputs give some bytes,
 * never undefined behaviour. */
void wl_quantize_act_block_q8_0(const float *x, void *out);

/* The same for Q8_1 (llama.cpp's x86 run-time rule): d, q as Q8_0 except that a block whose
 * scale rounds to a zero half keeps its quants (127 / amax, when finite), and
 * s = (amax / 127) * sum(q) rounded to a half (the float d, not the half). */
void wl_quantize_act_block_q8_1(const float *x, void *out);

/* One super-block of 256 activations as Q8_K (ggml's rule, which its x86 code uses at run time):
 * max = the value of largest magnitude (the first on ties), q = min(127, nearest-even(x * -127
 * / max)), d = 1 / (-127 / max) as a float, bsums the sums of 16; all zero when max is 0. */
void wl_quantize_act_block_q8_k(const float *x, void *out);

#endif
