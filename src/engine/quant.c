/* quant.c - half floats, bfloat16, and the scalar reference (de)quantizers of every format.
 *
 * Everything here is portable C, so results do not depend on the compiler, the flags or the
 * CPU. The file quantizers reproduce ggml's reference quantizers (quantize_row_*_ref in
 * ggml-quants.c, what llama-quantize runs without an importance matrix) operation for
 * operation, so the files we write match the ones llama.cpp writes bit for bit: every float
 * operation in the same order, rounded separately (that code is built without fused
 * multiply-adds on x86-64), and every float-to-integer conversion with the result x86 gives,
 * written without undefined behaviour. The dequantizers compute d * q + m as ggml's do. */
#include "engine/quant.h"

#include <float.h>
#include <math.h>

#include "engine/tensor_type.h"

/* a * b + c must round twice, as C says, not once through a fused multiply-add (GCC does not
 * contract in ISO C mode; clang needs telling). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- half floats ------------------------------------------------------------------------ */

static uint32_t bits_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Rounds q + rem / 2^shift to nearest, ties to even (rem < 2^shift). */
static uint32_t round_nearest_even(uint32_t q, uint32_t rem, int shift)
{
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

uint16_t wl_fp32_to_fp16(float f)
{
    uint32_t u = bits_from_float(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN: quiet, top of the payload kept (as F16C does) */
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) /* >= 65520: rounds to Inf (65504 is the largest half) */
        return (uint16_t)(sign | 0x7c00u);
    uint32_t exp = abs >> 23;
    uint32_t mant = abs & 0x7fffffu;
    if (exp >= 113) { /* a normal half: keep 10 of 23 mantissa bits; a carry bumps the exponent */
        uint32_t h = ((exp - 112) << 10) | (mant >> 13);
        return (uint16_t)(sign | round_nearest_even(h, mant & 0x1fffu, 13));
    }
    /* below 2^-14: a subnormal half, units of 2^-24. value = sig * 2^(exp - 150) */
    int shift = 126 - (int)exp; /* >= 14 */
    if (exp == 0 || shift > 24)
        return (uint16_t)sign; /* < 2^-25: rounds to zero */
    uint32_t sig = mant | 0x800000u;
    uint32_t q = sig >> shift;
    return (uint16_t)(sign | round_nearest_even(q, sig & ((1u << shift) - 1), shift));
}

uint16_t wl_fp32_to_bf16(float f)
{
    uint32_t u = bits_from_float(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)(round_nearest_even(u >> 16, u & 0xffffu, 16));
}

/* ---- types ------------------------------------------------------------------------------ */

int wl_type_supported(uint32_t type)
{
    switch (type) {
    case WL_TYPE_F32:
    case WL_TYPE_F16:
    case WL_TYPE_BF16:
    case WL_TYPE_Q8_0:
    case WL_TYPE_Q4_0:
    case WL_TYPE_Q4_1:
    case WL_TYPE_Q5_0:
    case WL_TYPE_Q5_1:
    case WL_TYPE_Q2_K:
    case WL_TYPE_Q3_K:
    case WL_TYPE_Q4_K:
    case WL_TYPE_Q5_K:
    case WL_TYPE_Q6_K:
        return 1;
    default:
        return 0;
    }
}

static float half_at(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return wl_fp16_to_fp32(h);
}

/* ---- dequantize: 32-value blocks -------------------------------------------------------- */
/* Blocks in a file are not aligned: they are addressed as bytes and copied out. */

/* The 32 values of a block with 4-bit quants and optional fifth bits (qh NULL: none), before
 * the offset: value j < 16 is the low nibble of qs[j], value j + 16 the high one. */
static void unpack_q4_q5(const uint8_t qs[16], const uint8_t *qh, int q[32])
{
    uint32_t h = 0;
    if (qh)
        memcpy(&h, qh, 4); /* little-endian, as every target of this code */
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0x0f) | (int)(((h >> j) & 1u) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1u) << 4);
    }
}

static void dequantize_q8_0(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q8_0 blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        float d = wl_fp16_to_fp32(blk.d);
        for (int j = 0; j < WL_QK; j++)
            dst[b * WL_QK + j] = (float)blk.qs[j] * d;
    }
}

static void dequantize_q8_1(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q8_1 blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        float d = wl_fp16_to_fp32(blk.d);
        for (int j = 0; j < WL_QK; j++)
            dst[b * WL_QK + j] = (float)blk.qs[j] * d;
    }
}

static void dequantize_q4_0(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q4_0 blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        float d = wl_fp16_to_fp32(blk.d);
        int q[32];
        unpack_q4_q5(blk.qs, NULL, q);
        for (int j = 0; j < WL_QK; j++)
            dst[b * WL_QK + j] = (float)(q[j] - 8) * d;
    }
}

static void dequantize_q4_1(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q4_1 blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        float d = wl_fp16_to_fp32(blk.d), m = wl_fp16_to_fp32(blk.m);
        int q[32];
        unpack_q4_q5(blk.qs, NULL, q);
        for (int j = 0; j < WL_QK; j++)
            dst[b * WL_QK + j] = (float)q[j] * d + m;
    }
}

static void dequantize_q5_0(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q5_0 blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        float d = wl_fp16_to_fp32(blk.d);
        int q[32];
        unpack_q4_q5(blk.qs, blk.qh, q);
        for (int j = 0; j < WL_QK; j++)
            dst[b * WL_QK + j] = (float)(q[j] - 16) * d;
    }
}

static void dequantize_q5_1(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q5_1 blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        float d = wl_fp16_to_fp32(blk.d), m = wl_fp16_to_fp32(blk.m);
        int q[32];
        unpack_q4_q5(blk.qs, blk.qh, q);
        for (int j = 0; j < WL_QK; j++)
            dst[b * WL_QK + j] = (float)q[j] * d + m;
    }
}

/* ---- dequantize: 256-value super-blocks ------------------------------------------------- */

/* The 2-bit field of value v (0..255) in the Q2_K / Q3_K packing: bits 2s..2s+1 of
 * qs[32 * (v / 128) + v % 32], s = (v % 128) / 32. */
static int two_bits(const uint8_t qs[64], int v)
{
    return (qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
}

/* The nibble of value v in the Q4_K / Q5_K packing: of qs[32 * (v / 64) + v % 32], low for
 * v % 64 < 32, else high. */
static int k4_nibble(const uint8_t qs[128], int v)
{
    uint8_t b = qs[32 * (v / 64) + v % 32];
    return v % 64 < 32 ? b & 0x0f : b >> 4;
}

/* Q6_K's 6-bit quant (0..63) of value v. */
static int q6_k_quant(const wl_block_q6_k *b, int v)
{
    int h = v / 128, r = v % 128, l = r % 32, quarter = r / 32;
    uint8_t lo = b->ql[64 * h + l + 32 * (quarter % 2)];
    int nib = quarter < 2 ? lo & 0x0f : lo >> 4;
    return nib | (((b->qh[32 * h + l] >> (2 * quarter)) & 3) << 4);
}

static void dequantize_q2_k(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q2_k blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        const float d = wl_fp16_to_fp32(blk.d), min = wl_fp16_to_fp32(blk.dmin);
        float *y = dst + b * WL_QK_K;
        for (int v = 0; v < WL_QK_K; v++) {
            uint8_t sc = blk.scales[v / 16];
            const float dl = d * (float)(sc & 0x0f), ml = min * (float)(sc >> 4);
            y[v] = dl * (float)two_bits(blk.qs, v) - ml;
        }
    }
}

static void dequantize_q3_k(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q3_k blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        const float d_all = wl_fp16_to_fp32(blk.d);
        float *y = dst + b * WL_QK_K;
        for (int v = 0; v < WL_QK_K; v++) {
            const float dl = d_all * (float)wl_q3_k_scale(blk.scales, v / 16);
            int high = (blk.hmask[v % 32] >> (v / 32)) & 1;
            y[v] = dl * (float)(two_bits(blk.qs, v) - (high ? 0 : 4));
        }
    }
}

/* Q4_K and Q5_K: x = d * sc * q - dmin * m per sub-block of 32. */
static void dequantize_k4_k5(const uint16_t dh, const uint16_t dminh, const uint8_t scales[12],
                             const int q[256], float *y)
{
    const float d = wl_fp16_to_fp32(dh), min = wl_fp16_to_fp32(dminh);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        wl_k4_scale_min(scales, j, &sc, &m);
        const float dl = d * (float)sc, ml = min * (float)m;
        for (int l = 0; l < 32; l++)
            y[32 * j + l] = dl * (float)q[32 * j + l] - ml;
    }
}

static void dequantize_q4_k(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q4_k blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        int q[256];
        for (int v = 0; v < WL_QK_K; v++)
            q[v] = k4_nibble(blk.qs, v);
        dequantize_k4_k5(blk.d, blk.dmin, blk.scales, q, dst + b * WL_QK_K);
    }
}

static void dequantize_q5_k(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q5_k blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        int q[256];
        for (int v = 0; v < WL_QK_K; v++)
            q[v] = k4_nibble(blk.qs, v) | (((blk.qh[v % 32] >> (v / 32)) & 1) << 4);
        dequantize_k4_k5(blk.d, blk.dmin, blk.scales, q, dst + b * WL_QK_K);
    }
}

static void dequantize_q6_k(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q6_k blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        const float d = wl_fp16_to_fp32(blk.d);
        float *y = dst + b * WL_QK_K;
        for (int v = 0; v < WL_QK_K; v++) /* (d * sc) * q, in ggml's order */
            y[v] = d * (float)blk.scales[v / 16] * (float)(q6_k_quant(&blk, v) - 32);
    }
}

static void dequantize_q8_k(const unsigned char *blocks, float *dst, int64_t nblocks)
{
    for (int64_t b = 0; b < nblocks; b++) {
        wl_block_q8_k blk;
        memcpy(&blk, blocks + b * sizeof blk, sizeof blk);
        for (int v = 0; v < WL_QK_K; v++)
            dst[b * WL_QK_K + v] = blk.d * (float)blk.qs[v];
    }
}

typedef void (*dequantize_fn)(const unsigned char *blocks, float *dst, int64_t nblocks);

static dequantize_fn dequantizer(uint32_t type)
{
    switch (type) {
    case WL_TYPE_Q8_0: return dequantize_q8_0;
    case WL_TYPE_Q8_1: return dequantize_q8_1;
    case WL_TYPE_Q4_0: return dequantize_q4_0;
    case WL_TYPE_Q4_1: return dequantize_q4_1;
    case WL_TYPE_Q5_0: return dequantize_q5_0;
    case WL_TYPE_Q5_1: return dequantize_q5_1;
    case WL_TYPE_Q2_K: return dequantize_q2_k;
    case WL_TYPE_Q3_K: return dequantize_q3_k;
    case WL_TYPE_Q4_K: return dequantize_q4_k;
    case WL_TYPE_Q5_K: return dequantize_q5_k;
    case WL_TYPE_Q6_K: return dequantize_q6_k;
    case WL_TYPE_Q8_K: return dequantize_q8_k;
    default: return NULL;
    }
}

int wl_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    if (n < 0)
        return -1;
    const unsigned char *bytes = src;
    switch (type) {
    case WL_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return 0;
    case WL_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = half_at(bytes + 2 * i);
        return 0;
    case WL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, bytes + 2 * i, 2);
            dst[i] = wl_bf16_to_fp32(h);
        }
        return 0;
    default: {
        dequantize_fn f = dequantizer(type);
        const int64_t bs = f ? (int64_t)wl_type_get(type)->block_size : 0;
        if (!f || n % bs)
            return -1;
        f(bytes, dst, n / bs);
        return 0;
    }
    }
}

/* ---- rounding helpers: x86's answers, without undefined behaviour ------------------------ */

/* (int32_t)v as x86 computes it (cvttss2si): truncation toward zero, and INT32_MIN for NaN and
 * anything outside the int32 range (where C leaves the conversion undefined). */
static int32_t x86_trunc(float v)
{
    if (v >= -2147483648.0f && v < 2147483648.0f)
        return (int32_t)v;
    return INT32_MIN;
}

/* A conversion of an int32 to int8 / uint8 that keeps the low 8 bits (what GCC does; C leaves
 * the out-of-range signed case implementation-defined). */
static int8_t low_int8(int32_t i)
{
    uint8_t b = (uint8_t)((uint32_t)i & 0xffu);
    return (int8_t)(b < 128 ? (int)b : (int)b - 256);
}

/* ggml's nearest_int: v rounded to nearest, halves to even, through the float addition of
 * 1.5 * 2^23 (exact for |v| < 2^22; for other inputs, NaN included, some integer, as ggml). */
static int nearest_int(float v)
{
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* (int8_t)roundf(v) as ggml computes it: roundf rounds halves away from zero, and the x86
 * conversion keeps the low byte of cvttss2si (only reachable through a non-finite 1/d). */
static int8_t round_to_int8(float v)
{
    return low_int8(x86_trunc(roundf(v)));
}

/* MIN(15, (int8_t)(v)) or MIN(31, ...) as ggml computes it for the 4- and 5-bit quantizers. */
static uint8_t trunc_min(float v, int max)
{
    int8_t t = low_int8(x86_trunc(v));
    return (uint8_t)(t < max ? t : max);
}

static void store_half(unsigned char *p, float f)
{
    uint16_t h = wl_fp32_to_fp16(f);
    memcpy(p, &h, sizeof h);
}

/* ---- quantize: 32-value blocks ---------------------------------------------------------- */

void wl_quantize_block_q8_0(const float *x, void *out)
{
    float amax = 0.0f;
    for (int j = 0; j < WL_QK; j++) {
        float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wl_block_q8_0 blk;
    blk.d = wl_fp32_to_fp16(d);
    for (int j = 0; j < WL_QK; j++)
        blk.qs[j] = round_to_int8(x[j] * id);
    memcpy(out, &blk, sizeof blk);
}

/* The value of largest magnitude, with its sign (the first one on ties). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void quantize_block_q4_0(const float *x, void *out)
{
    const float d = signed_absmax(x, WL_QK) / -8.0f; /* so that max itself maps to q = -8 */
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wl_block_q4_0 blk;
    blk.d = wl_fp32_to_fp16(d);
    for (int j = 0; j < WL_QK / 2; j++) {
        uint8_t lo = trunc_min(x[j] * id + 8.5f, 15);
        uint8_t hi = trunc_min(x[j + WL_QK / 2] * id + 8.5f, 15);
        blk.qs[j] = (uint8_t)(lo | (hi << 4)); /* unmasked, as ggml */
    }
    memcpy(out, &blk, sizeof blk);
}

static void quantize_block_q5_0(const float *x, void *out)
{
    const float d = signed_absmax(x, WL_QK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wl_block_q5_0 blk;
    blk.d = wl_fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < WL_QK / 2; j++) {
        uint8_t lo = trunc_min(x[j] * id + 16.5f, 31);
        uint8_t hi = trunc_min(x[j + WL_QK / 2] * id + 16.5f, 31);
        blk.qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
        qh |= (uint32_t)((lo & 0x10u) >> 4) << j;
        qh |= (uint32_t)((hi & 0x10u) >> 4) << (j + WL_QK / 2);
    }
    memcpy(blk.qh, &qh, sizeof qh);
    memcpy(out, &blk, sizeof blk);
}

/* Q4_1 and Q5_1: d = (max - min) / (2^bits - 1), m = min, q = trunc((x - min) / d + 0.5). */
static void min_max(const float *x, float *min, float *max)
{
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < WL_QK; j++) {
        if (x[j] < *min)
            *min = x[j];
        if (x[j] > *max)
            *max = x[j];
    }
}

static void quantize_block_q4_1(const float *x, void *out)
{
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wl_block_q4_1 blk;
    blk.d = wl_fp32_to_fp16(d);
    blk.m = wl_fp32_to_fp16(min);
    for (int j = 0; j < WL_QK / 2; j++) {
        uint8_t lo = trunc_min((x[j] - min) * id + 0.5f, 15);
        uint8_t hi = trunc_min((x[j + WL_QK / 2] - min) * id + 0.5f, 15);
        blk.qs[j] = (uint8_t)(lo | (hi << 4));
    }
    memcpy(out, &blk, sizeof blk);
}

static void quantize_block_q5_1(const float *x, void *out)
{
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wl_block_q5_1 blk;
    blk.d = wl_fp32_to_fp16(d);
    blk.m = wl_fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < WL_QK / 2; j++) { /* (uint8_t)(v + 0.5f): no clamp in ggml */
        uint8_t lo = (uint8_t)low_int8(x86_trunc((x[j] - min) * id + 0.5f));
        uint8_t hi = (uint8_t)low_int8(x86_trunc((x[j + WL_QK / 2] - min) * id + 0.5f));
        blk.qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
        qh |= (uint32_t)((lo & 0x10u) >> 4) << j;
        qh |= (uint32_t)((hi & 0x10u) >> 4) << (j + WL_QK / 2);
    }
    memcpy(blk.qh, &qh, sizeof qh);
    memcpy(out, &blk, sizeof blk);
}

/* ---- quantize: the k-quants' sub-block searches (ggml's make_*_quants) -------------------- */

#define GROUP_MAX_EPS 1e-15f

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Q6_K's search (ggml's make_qx_quants with weights x^2): the scale of n signed values whose
 * quants L (offset by nmax, in 0..2 nmax - 1) best fit x in weighted least squares, trying
 * the scales -(nmax + 0.1 k) / max for k = -9..9. */
static float search_signed_scale(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's search (ggml's make_q3_quants with rmse): quants L in 0..2 nmax - 1 (offset nmax)
 * from -nmax / max, then up to 5 passes that move single quants while the weighted (x^2) fit
 * improves; returns the least-squares scale. */
static float search_q3_scale(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Q2_K / Q4_K / Q5_K's search (ggml's make_qkx2_quants): a scale and a min (x ~ scale * L -
 * the_min, L in 0..nmax) minimizing the weighted error (absolute when use_mad, else squared)
 * over the candidate scales (rmin + rdelta k + nmax) / (max - min), k = 0..nstep. */
typedef struct {
    int nmax;
    float rmin, rdelta;
    int nstep, use_mad;
} min_scale_search;

static float fit_error(float diff, int use_mad)
{
    return use_mad ? fabsf(diff) : diff * diff;
}

static float search_scale_min(const min_scale_search *s, int n, const float *x,
                              const float *weights, uint8_t *L, float *the_min)
{
    const int nmax = s->nmax;
    uint8_t Laux[32];
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        best_error += weights[i] * fit_error(diff, s->use_mad);
    }
    for (int is = 0; is <= s->nstep; is++) {
        iscale = (s->rmin + s->rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                cur_error += weights[i] * fit_error(diff, s->use_mad);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ---- quantize: 256-value super-blocks (ggml's quantize_row_q*_K_ref) --------------------- */

/* The Q2_K / Q3_K packing of 2-bit fields: value j + 32 s of each 128 at bits 2s. */
static void pack_two_bits(const uint8_t L[256], uint8_t qs[64])
{
    for (int j = 0; j < WL_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

static void quantize_block_q2_k(const float *x, wl_block_q2_k *y)
{
    static const min_scale_search search = {3, -0.5f, 0.1f, 15, 1};
    uint8_t L[WL_QK_K];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.0f;
    float max_scale = 0, max_min = 0; /* the mins are deducted: scales are never negative */
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++)
            weights[l] = fabsf(x[16 * j + l]);
        scales[j] = search_scale_min(&search, 16, x + 16 * j, weights, L + 16 * j, &mins[j]);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    memset(y->scales, 0, sizeof y->scales);
    if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < 16; j++)
            y->scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
        y->d = wl_fp32_to_fp16(max_scale / q4scale);
    } else {
        y->d = wl_fp32_to_fp16(0.0f);
    }
    if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < 16; j++)
            y->scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
        y->dmin = wl_fp32_to_fp16(max_min / q4scale);
    } else {
        y->dmin = wl_fp32_to_fp16(0.0f);
    }
    /* the quants again, against the scales as stored */
    for (int j = 0; j < 16; j++) {
        const float d = wl_fp16_to_fp32(y->d) * (float)(y->scales[j] & 0x0f);
        if (d == 0.0f)
            continue;
        const float dm = wl_fp16_to_fp32(y->dmin) * (float)(y->scales[j] >> 4);
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (uint8_t)clamp_int(nearest_int((x[16 * j + i] + dm) / d), 0, 3);
    }
    pack_two_bits(L, y->qs);
}

static void quantize_block_q3_k(const float *x, wl_block_q3_k *y)
{
    int8_t L[WL_QK_K];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
        scales[j] = search_q3_scale(16, 4, x + 16 * j, L + 16 * j);
        float scale = fabsf(scales[j]);
        if (scale > amax) {
            amax = scale;
            max_scale = scales[j];
        }
    }
    memset(y->scales, 0, sizeof y->scales);
    if (max_scale != 0.0f) {
        const float iscale = -32.0f / max_scale;
        for (int j = 0; j < 16; j++) {
            int8_t l8 = low_int8(nearest_int(iscale * scales[j]));
            int l = clamp_int(l8, -32, 31) + 32;
            if (j < 8)
                y->scales[j] = (uint8_t)(l & 0x0f);
            else
                y->scales[j - 8] |= (uint8_t)((l & 0x0f) << 4);
            y->scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        y->d = wl_fp32_to_fp16(1 / iscale);
    } else {
        y->d = wl_fp32_to_fp16(0.0f);
    }
    for (int j = 0; j < 16; j++) {
        const float d = wl_fp16_to_fp32(y->d) * (float)wl_q3_k_scale(y->scales, j);
        if (d == 0.0f)
            continue;
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (int8_t)(clamp_int(nearest_int(x[16 * j + i] / d), -4, 3) + 4);
    }
    /* the third bit of value j goes to bit j / 32 of hmask[j % 32] */
    memset(y->hmask, 0, sizeof y->hmask);
    uint8_t L2[WL_QK_K];
    for (int j = 0; j < WL_QK_K; j++) {
        int l = L[j];
        if (l > 3) {
            y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            l -= 4;
        }
        L2[j] = (uint8_t)l;
    }
    pack_two_bits(L2, y->qs);
}

/* Q4_K / Q5_K: the 8 sub-block scales and mins, searched and then stored in 6 bits each
 * against the super-block scales d = max_scale / 63 and dmin = max_min / 63; returns the
 * quants L (0..nmax) refitted to the stored scales. */
static void quantize_k4_k5(const float *x, const min_scale_search *search, uint16_t *dh,
                           uint16_t *dminh, uint8_t scales_out[12], uint8_t L[256])
{
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = search_scale_min(search, 32, x + 32 * j, weights, L + 32 * j, &mins[j]);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0x0f) | ((lm & 0x0f) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dh = wl_fp32_to_fp16(max_scale / 63.0f);
    *dminh = wl_fp32_to_fp16(max_min / 63.0f);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        wl_k4_scale_min(scales_out, j, &sc, &m);
        const float d = wl_fp16_to_fp32(*dh) * (float)sc;
        if (d == 0.0f)
            continue;
        const float dm = wl_fp16_to_fp32(*dminh) * (float)m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] =
                (uint8_t)clamp_int(nearest_int((x[32 * j + i] + dm) / d), 0, search->nmax);
    }
}

static void quantize_block_q4_k(const float *x, wl_block_q4_k *y)
{
    static const min_scale_search search = {15, -1.0f, 0.1f, 20, 0};
    uint8_t L[WL_QK_K];
    quantize_k4_k5(x, &search, &y->d, &y->dmin, y->scales, L);
    for (int j = 0; j < WL_QK_K; j += 64)
        for (int l = 0; l < 32; l++)
            y->qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

static void quantize_block_q5_k(const float *x, wl_block_q5_k *y)
{
    static const min_scale_search search = {31, -0.5f, 0.1f, 15, 0};
    uint8_t L[WL_QK_K];
    quantize_k4_k5(x, &search, &y->d, &y->dmin, y->scales, L);
    memset(y->qh, 0, sizeof y->qh);
    for (int j = 0; j < WL_QK_K; j += 64) { /* values j..j+31: bit j/32; j+32..: bit j/32 + 1 */
        for (int l = 0; l < 32; l++) {
            int l1 = L[j + l], l2 = L[j + l + 32];
            if (l1 > 15) {
                l1 -= 16;
                y->qh[l] |= (uint8_t)(1u << (j / 32));
            }
            if (l2 > 15) {
                l2 -= 16;
                y->qh[l] |= (uint8_t)(2u << (j / 32));
            }
            y->qs[j / 2 + l] = (uint8_t)(l1 | (l2 << 4));
        }
    }
}

static void quantize_block_q6_k(const float *x, wl_block_q6_k *y)
{
    int8_t L[WL_QK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        const float scale = search_signed_scale(16, 32, x + 16 * ib, L + 16 * ib);
        scales[ib] = scale;
        if (fabsf(scale) > max_abs_scale) {
            max_abs_scale = fabsf(scale);
            max_scale = scale;
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, sizeof *y);
        return;
    }
    const float iscale = -128.0f / max_scale;
    y->d = wl_fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ib++) {
        int s = nearest_int(iscale * scales[ib]);
        y->scales[ib] = low_int8(s < 127 ? s : 127);
    }
    for (int j = 0; j < 16; j++) {
        const float d = wl_fp16_to_fp32(y->d) * (float)y->scales[j];
        if (d == 0.0f)
            continue;
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (int8_t)(clamp_int(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
    for (int j = 0; j < WL_QK_K; j += 128) {
        uint8_t *ql = y->ql + j / 2, *qh = y->qh + j / 4;
        for (int l = 0; l < 32; l++) {
            const int q1 = L[j + l] & 0x0f, q2 = L[j + l + 32] & 0x0f;
            const int q3 = L[j + l + 64] & 0x0f, q4 = L[j + l + 96] & 0x0f;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
    }
}

/* ---- activations (run-time rules) -------------------------------------------------------- */

/* x rounded to nearest even and narrowed to int8 the way the x86 SIMD quantizers do it
 * (cvtps2dq then saturating packs): NaN and |x| >= 2^31 give -128, others saturate. */
static int8_t act_round(float v)
{
    if (!(v >= -2147483648.0f && v < 2147483648.0f))
        return -128;
    float r = nearbyintf(v);
    return (int8_t)(r < -128.0f ? -128 : r > 127.0f ? 127 : (int)r);
}

static float block_absmax(const float *x, int n)
{
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    return amax;
}

void wl_quantize_act_block_q8_0(const float *x, void *out)
{
    const float amax = block_absmax(x, WL_QK);
    wl_block_q8_0 blk;
    blk.d = wl_fp32_to_fp16(amax / 127.0f);
    /* a scale that is 0 as a half makes the block contribute nothing whatever its quants; and
     * 127 / amax would overflow for the tiniest blocks */
    const float id = blk.d != 0 ? 127.0f / amax : 0.0f;
    for (int j = 0; j < WL_QK; j++)
        blk.qs[j] = act_round(x[j] * id);
    memcpy(out, &blk, sizeof blk);
}

void wl_quantize_act_block_q8_1(const float *x, void *out)
{
    const float amax = block_absmax(x, WL_QK);
    const float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    if (!isfinite(id)) /* amax below 127 / FLT_MAX (or NaN): no meaningful quants */
        id = 0.0f;
    wl_block_q8_1 blk;
    blk.d = wl_fp32_to_fp16(d);
    int32_t sum = 0;
    for (int j = 0; j < WL_QK; j++) {
        blk.qs[j] = act_round(x[j] * id);
        sum += blk.qs[j];
    }
    blk.s = wl_fp32_to_fp16(d * (float)sum);
    memcpy(out, &blk, sizeof blk);
}

void wl_quantize_act_block_q8_k(const float *x, void *out)
{
    wl_block_q8_k blk;
    memset(&blk, 0, sizeof blk);
    float max = 0, amax = 0;
    for (int j = 0; j < WL_QK_K; j++) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax != 0.0f) {
        const float iscale = -127.0f / max;
        for (int j = 0; j < WL_QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            blk.qs[j] = low_int8(v < 127 ? v : 127);
        }
        for (int k = 0; k < WL_QK_K / 16; k++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += blk.qs[16 * k + i];
            blk.bsums[k] = (int16_t)sum;
        }
        blk.d = 1 / iscale;
    }
    memcpy(out, &blk, sizeof blk);
}

/* ---- wl_quantize_row -------------------------------------------------------------------- */

typedef void (*quantize_block_fn)(const float *x, void *out);

static void quantize_q2_k(const float *x, void *out)
{
    wl_block_q2_k b;
    quantize_block_q2_k(x, &b);
    memcpy(out, &b, sizeof b);
}

static void quantize_q3_k(const float *x, void *out)
{
    wl_block_q3_k b;
    quantize_block_q3_k(x, &b);
    memcpy(out, &b, sizeof b);
}

static void quantize_q4_k(const float *x, void *out)
{
    wl_block_q4_k b;
    memset(&b, 0, sizeof b);
    quantize_block_q4_k(x, &b);
    memcpy(out, &b, sizeof b);
}

static void quantize_q5_k(const float *x, void *out)
{
    wl_block_q5_k b;
    memset(&b, 0, sizeof b);
    quantize_block_q5_k(x, &b);
    memcpy(out, &b, sizeof b);
}

static void quantize_q6_k(const float *x, void *out)
{
    wl_block_q6_k b;
    quantize_block_q6_k(x, &b);
    memcpy(out, &b, sizeof b);
}

static quantize_block_fn block_quantizer(uint32_t type)
{
    switch (type) {
    case WL_TYPE_Q8_0: return wl_quantize_block_q8_0;
    case WL_TYPE_Q4_0: return quantize_block_q4_0;
    case WL_TYPE_Q4_1: return quantize_block_q4_1;
    case WL_TYPE_Q5_0: return quantize_block_q5_0;
    case WL_TYPE_Q5_1: return quantize_block_q5_1;
    case WL_TYPE_Q2_K: return quantize_q2_k;
    case WL_TYPE_Q3_K: return quantize_q3_k;
    case WL_TYPE_Q4_K: return quantize_q4_k;
    case WL_TYPE_Q5_K: return quantize_q5_k;
    case WL_TYPE_Q6_K: return quantize_q6_k;
    default: return NULL;
    }
}

int wl_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    if (n < 0)
        return -1;
    unsigned char *bytes = dst;
    switch (type) {
    case WL_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return 0;
    case WL_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            store_half(bytes + 2 * i, src[i]);
        return 0;
    case WL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = wl_fp32_to_bf16(src[i]);
            memcpy(bytes + 2 * i, &h, 2);
        }
        return 0;
    default: {
        quantize_block_fn f = block_quantizer(type);
        if (!f)
            return -1;
        const wl_type_info *ti = wl_type_get(type);
        if (n % ti->block_size) /* the k-quants: whole super-blocks of 256 only */
            return -1;
        for (int64_t b = 0; b < n / ti->block_size; b++)
            f(src + b * ti->block_size, bytes + (size_t)b * ti->type_size);
        return 0;
    }
    }
}
