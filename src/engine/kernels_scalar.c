/* kernels_scalar.c - the reference kernels, in plain C.
 *
 * Every other family is tested against these for exact equality. They spell out the canonical
 * arithmetic of kernels.h one lane at a time: fmaf (C99) for every fused multiply-add, so the
 * result is the same on any CPU and with any compiler, and the lanes summed in the fixed order
 * of sum8. A matmul is the dot product looped over rows and tokens. */
#include <math.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant.h"

/* The arithmetic is written out exactly: no contraction of a * b + c into an FMA (GCC does not
 * contract in ISO C mode; clang needs telling). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- helpers ---------------------------------------------------------------------------- */

static float load_f32(const unsigned char *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

static float load_half(const unsigned char *p)
{
    return wl_fp16_to_fp32(wl_load_u16(p));
}

/* The canonical final sum of 8 lanes: ((0+4) + (2+6)) + ((1+5) + (3+7)). */
static float sum8(const float s[8])
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* 16 lanes: first s[j] + s[j + 8], then sum8. */
static float sum16(const float s[16])
{
    float s8[8];
    for (int j = 0; j < 8; j++)
        s8[j] = s[j] + s[j + 8];
    return sum8(s8);
}

/* ---- float weights x activations of the same type --------------------------------------- */

/* Element i of a float-kind row (both weights and activations of F32, F16 and BF16 rows). */
static float float_at(uint32_t type, const unsigned char *row, int64_t i)
{
    switch (type) {
    case WL_TYPE_F16:
        return load_half(row + 2 * i);
    case WL_TYPE_BF16:
        return wl_bf16_to_fp32(wl_load_u16(row + 2 * i));
    default:
        return load_f32(row + 4 * i);
    }
}

/* Element i goes to lane i % 16. */
static float dot_float(uint32_t type, int64_t n, const unsigned char *w, const unsigned char *x)
{
    float s[16] = {0};
    for (int64_t i = 0; i < n; i++)
        s[i % 16] = fmaf(float_at(type, w, i), float_at(type, x, i), s[i % 16]);
    return sum16(s);
}

static void vec_dot_f32(int64_t n, float *out, const void *w, const void *x)
{
    *out = dot_float(WL_TYPE_F32, n, w, x);
}

static void vec_dot_f16(int64_t n, float *out, const void *w, const void *x)
{
    *out = dot_float(WL_TYPE_F16, n, w, x);
}

static void vec_dot_bf16(int64_t n, float *out, const void *w, const void *x)
{
    *out = dot_float(WL_TYPE_BF16, n, w, x);
}

/* ---- 32-value blocks x Q8_0 / Q8_1 activations ------------------------------------------ */

/* acc[l] = fma(d, isum_l, acc[l]) for the 8 lanes, isum_l the products of values 4l..4l+3. */
static void fma_block32(float acc[8], float d, const int8_t q[32], const int8_t x[32])
{
    for (int l = 0; l < 8; l++) {
        int32_t isum = 0;
        for (int j = 4 * l; j < 4 * l + 4; j++)
            isum += (int32_t)q[j] * x[j];
        acc[l] = fmaf(d, (float)isum, acc[l]);
    }
}

/* One weight block of a 32-value format: its quants in value order, the offset taken off
 * (Q4_0: nibble - 8, Q5_0: q - 16; Q4_1 / Q5_1 keep q and have a min m), and its scales. */
typedef struct {
    int8_t q[WL_QK];
    float d, m;
} block32;

static void unpack_block32(uint32_t type, const unsigned char *p, block32 *b)
{
    size_t qs_at = 2, qh_at = 0; /* byte offsets of the nibbles and of the fifth bits */
    int offset = 0;
    b->d = load_half(p);
    b->m = 0.0f;
    switch (type) {
    case WL_TYPE_Q8_0:
        memcpy(b->q, p + 2, WL_QK);
        return;
    case WL_TYPE_Q4_0:
        offset = 8;
        break;
    case WL_TYPE_Q4_1:
        b->m = load_half(p + 2);
        qs_at = 4;
        break;
    case WL_TYPE_Q5_0:
        offset = 16;
        qh_at = 2;
        qs_at = 6;
        break;
    default: /* Q5_1 */
        b->m = load_half(p + 2);
        qh_at = 4;
        qs_at = 8;
        break;
    }
    uint32_t qh = 0;
    if (qh_at)
        memcpy(&qh, p + qh_at, 4);
    for (int j = 0; j < WL_QK / 2; j++) {
        int lo = (p[qs_at + j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
        int hi = (p[qs_at + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        b->q[j] = (int8_t)(lo - offset);
        b->q[j + WL_QK / 2] = (int8_t)(hi - offset);
    }
}

/* The 32-value formats: 8 lanes of fma(d_w * d_x, isum_l); Q4_1 / Q5_1 (Q8_1 activations) also
 * a running summs = fma(m_w, s_x, summs), added at the end. */
static float dot_block32(uint32_t type, int64_t n, const unsigned char *w, const unsigned char *x)
{
    const size_t wbytes = wl_type_get(type)->type_size;
    const int with_min = type == WL_TYPE_Q4_1 || type == WL_TYPE_Q5_1;
    const size_t xbytes = with_min ? sizeof(wl_block_q8_1) : sizeof(wl_block_q8_0);
    const size_t xqs_at = with_min ? 4 : 2;
    float acc[8] = {0}, summs = 0.0f;
    for (int64_t b = 0; b < n / WL_QK; b++) {
        const unsigned char *xb = x + (size_t)b * xbytes;
        block32 wb;
        int8_t xq[WL_QK];
        unpack_block32(type, w + (size_t)b * wbytes, &wb);
        memcpy(xq, xb + xqs_at, WL_QK);
        fma_block32(acc, wb.d * load_half(xb), wb.q, xq);
        if (with_min)
            summs = fmaf(wb.m, load_half(xb + 2), summs);
    }
    return with_min ? sum8(acc) + summs : sum8(acc);
}

#define DEFINE_BLOCK32_DOT(suffix, TYPE)                                                       \
    static void vec_dot_##suffix(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                          \
        *out = dot_block32(TYPE, n, w, x);                                                     \
    }

DEFINE_BLOCK32_DOT(q8_0, WL_TYPE_Q8_0)
DEFINE_BLOCK32_DOT(q4_0, WL_TYPE_Q4_0)
DEFINE_BLOCK32_DOT(q4_1, WL_TYPE_Q4_1)
DEFINE_BLOCK32_DOT(q5_0, WL_TYPE_Q5_0)
DEFINE_BLOCK32_DOT(q5_1, WL_TYPE_Q5_1)

/* ---- k-quants x Q8_K activations --------------------------------------------------------- */

/* The 8 integer lanes of a super-block: lane l takes values 32g + 4l .. 32g + 4l + 3 of every
 * group g of 32 values, each group's 4-product sum times the scale of its 16-value sub-block
 * sc16[2g + l / 4]. */
static void kquant_lanes(const int8_t q[WL_QK_K], const int8_t x[WL_QK_K], const int sc16[16],
                         int32_t S[8])
{
    for (int l = 0; l < 8; l++) {
        S[l] = 0;
        for (int g = 0; g < 8; g++) {
            int32_t t = 0;
            for (int i = 32 * g + 4 * l; i < 32 * g + 4 * l + 4; i++)
                t += (int32_t)q[i] * x[i];
            S[l] += sc16[2 * g + l / 4] * t;
        }
    }
}

/* The 2-bit field of value v in the Q2_K / Q3_K packing (quant.h). */
static int two_bits(const uint8_t qs[64], int v)
{
    return (qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
}

/* The nibble of value v in the Q4_K / Q5_K packing (quant.h). */
static int k4_nibble(const uint8_t qs[128], int v)
{
    uint8_t b = qs[32 * (v / 64) + v % 32];
    return v % 64 < 32 ? b & 0x0f : b >> 4;
}

/* Q2_K: acc = fma(dmin, M_l, acc), then fma(d, S_l, acc), with
 * M_l = m[2l] B[2l] + m[2l + 1] B[2l + 1] (m the 4-bit mins, B the activation's bsums). */
static void kdot_q2_k(const unsigned char *p, const wl_block_q8_k *x, float acc[8])
{
    wl_block_q2_k w;
    memcpy(&w, p, sizeof w);
    int8_t q[WL_QK_K];
    int sc[16], m[16];
    for (int v = 0; v < WL_QK_K; v++)
        q[v] = (int8_t)two_bits(w.qs, v);
    for (int k = 0; k < 16; k++) {
        sc[k] = w.scales[k] & 0x0f;
        m[k] = w.scales[k] >> 4;
    }
    int32_t S[8];
    kquant_lanes(q, x->qs, sc, S);
    const float d = x->d * wl_fp16_to_fp32(w.d), dmin = -x->d * wl_fp16_to_fp32(w.dmin);
    for (int l = 0; l < 8; l++) {
        int32_t M = m[2 * l] * x->bsums[2 * l] + m[2 * l + 1] * x->bsums[2 * l + 1];
        acc[l] = fmaf(dmin, (float)M, acc[l]);
        acc[l] = fmaf(d, (float)S[l], acc[l]);
    }
}

/* Q3_K: acc = fma(d, S_l, acc), q in -4..3, signed 6-bit scales. */
static void kdot_q3_k(const unsigned char *p, const wl_block_q8_k *x, float acc[8])
{
    wl_block_q3_k w;
    memcpy(&w, p, sizeof w);
    int8_t q[WL_QK_K];
    int sc[16];
    for (int v = 0; v < WL_QK_K; v++)
        q[v] = (int8_t)(two_bits(w.qs, v) - (((w.hmask[v % 32] >> (v / 32)) & 1) ? 0 : 4));
    for (int k = 0; k < 16; k++)
        sc[k] = wl_q3_k_scale(w.scales, k);
    int32_t S[8];
    kquant_lanes(q, x->qs, sc, S);
    const float d = x->d * wl_fp16_to_fp32(w.d);
    for (int l = 0; l < 8; l++)
        acc[l] = fmaf(d, (float)S[l], acc[l]);
}

/* Q4_K / Q5_K: the scales of the 8 sub-blocks of 32 (each twice in sc16), their mins, and the
 * activation's sums over the same sub-blocks, B32[k] = B[2k] + B[2k + 1]. */
static void k4_scales(const uint8_t scales[12], const wl_block_q8_k *x, int sc16[16], int m[8],
                      int32_t B32[8])
{
    for (int g = 0; g < 8; g++) {
        int sc;
        wl_k4_scale_min(scales, g, &sc, &m[g]);
        sc16[2 * g] = sc16[2 * g + 1] = sc;
        B32[g] = x->bsums[2 * g] + x->bsums[2 * g + 1];
    }
}

/* Q4_K: acc = fma(d, S_l, acc); and 4 min lanes macc[k] = fma(dmin, m[2k] B32[2k] +
 * m[2k + 1] B32[2k + 1], macc[k]), summed at the end as (0 + 2) + (1 + 3). */
static void kdot_q4_k(const unsigned char *p, const wl_block_q8_k *x, float acc[8],
                      float macc[4])
{
    wl_block_q4_k w;
    memcpy(&w, p, sizeof w);
    int8_t q[WL_QK_K];
    int sc16[16], m[8];
    int32_t B32[8], S[8];
    for (int v = 0; v < WL_QK_K; v++)
        q[v] = (int8_t)k4_nibble(w.qs, v);
    k4_scales(w.scales, x, sc16, m, B32);
    kquant_lanes(q, x->qs, sc16, S);
    const float d = x->d * wl_fp16_to_fp32(w.d), dmin = -x->d * wl_fp16_to_fp32(w.dmin);
    for (int k = 0; k < 4; k++)
        macc[k] = fmaf(dmin, (float)(m[2 * k] * B32[2 * k] + m[2 * k + 1] * B32[2 * k + 1]),
                       macc[k]);
    for (int l = 0; l < 8; l++)
        acc[l] = fmaf(d, (float)S[l], acc[l]);
}

/* Q5_K: acc = fma(d, S_l, acc), q in 0..31; and one running summs = fma(dmin,
 * sum_k m[k] B32[k], summs). */
static void kdot_q5_k(const unsigned char *p, const wl_block_q8_k *x, float acc[8],
                      float *summs)
{
    wl_block_q5_k w;
    memcpy(&w, p, sizeof w);
    int8_t q[WL_QK_K];
    int sc16[16], m[8];
    int32_t B32[8], S[8];
    for (int v = 0; v < WL_QK_K; v++)
        q[v] = (int8_t)(k4_nibble(w.qs, v) | (((w.qh[v % 32] >> (v / 32)) & 1) << 4));
    k4_scales(w.scales, x, sc16, m, B32);
    kquant_lanes(q, x->qs, sc16, S);
    const float d = x->d * wl_fp16_to_fp32(w.d), dmin = -x->d * wl_fp16_to_fp32(w.dmin);
    int32_t M = 0;
    for (int k = 0; k < 8; k++)
        M += m[k] * B32[k];
    *summs = fmaf(dmin, (float)M, *summs);
    for (int l = 0; l < 8; l++)
        acc[l] = fmaf(d, (float)S[l], acc[l]);
}

/* Q6_K: q in 0..63 (the -32 comes back through the bsums): acc = fma(d, S_l - 32 (sc[2l]
 * B[2l] + sc[2l + 1] B[2l + 1]), acc). */
static void kdot_q6_k(const unsigned char *p, const wl_block_q8_k *x, float acc[8])
{
    wl_block_q6_k w;
    memcpy(&w, p, sizeof w);
    int8_t q[WL_QK_K];
    int sc[16];
    for (int v = 0; v < WL_QK_K; v++) {
        int h = v / 128, r = v % 128, l = r % 32, quarter = r / 32;
        uint8_t lo = w.ql[64 * h + l + 32 * (quarter % 2)];
        int nib = quarter < 2 ? lo & 0x0f : lo >> 4;
        q[v] = (int8_t)(nib | (((w.qh[32 * h + l] >> (2 * quarter)) & 3) << 4));
    }
    for (int k = 0; k < 16; k++)
        sc[k] = w.scales[k];
    int32_t S[8];
    kquant_lanes(q, x->qs, sc, S);
    const float d = x->d * wl_fp16_to_fp32(w.d);
    for (int l = 0; l < 8; l++) {
        int32_t corr = 32 * (sc[2 * l] * x->bsums[2 * l] + sc[2 * l + 1] * x->bsums[2 * l + 1]);
        acc[l] = fmaf(d, (float)(S[l] - corr), acc[l]);
    }
}

static float dot_kquant(uint32_t type, int64_t n, const unsigned char *w, const unsigned char *x)
{
    const size_t wbytes = wl_type_get(type)->type_size;
    float acc[8] = {0}, macc[4] = {0}, summs = 0.0f;
    for (int64_t b = 0; b < n / WL_QK_K; b++) {
        const unsigned char *wb = w + (size_t)b * wbytes;
        wl_block_q8_k xb;
        memcpy(&xb, x + (size_t)b * sizeof xb, sizeof xb);
        switch (type) {
        case WL_TYPE_Q2_K: kdot_q2_k(wb, &xb, acc); break;
        case WL_TYPE_Q3_K: kdot_q3_k(wb, &xb, acc); break;
        case WL_TYPE_Q4_K: kdot_q4_k(wb, &xb, acc, macc); break;
        case WL_TYPE_Q5_K: kdot_q5_k(wb, &xb, acc, &summs); break;
        default: kdot_q6_k(wb, &xb, acc); break;
        }
    }
    if (type == WL_TYPE_Q4_K)
        return sum8(acc) + ((macc[0] + macc[2]) + (macc[1] + macc[3]));
    if (type == WL_TYPE_Q5_K)
        return sum8(acc) + summs;
    return sum8(acc);
}

#define DEFINE_KQUANT_DOT(suffix, TYPE)                                                        \
    static void vec_dot_##suffix(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                          \
        *out = dot_kquant(TYPE, n, w, x);                                                      \
    }

DEFINE_KQUANT_DOT(q2_k, WL_TYPE_Q2_K)
DEFINE_KQUANT_DOT(q3_k, WL_TYPE_Q3_K)
DEFINE_KQUANT_DOT(q4_k, WL_TYPE_Q4_K)
DEFINE_KQUANT_DOT(q5_k, WL_TYPE_Q5_K)
DEFINE_KQUANT_DOT(q6_k, WL_TYPE_Q6_K)

/* ---- matmul: the dot product over rows x tokens ----------------------------------------- */

static void matmul_with(wl_vec_dot_fn dot, int64_t n, const void *w, size_t w_stride, int64_t r0,
                        int64_t r1, const void *x, size_t x_stride, int64_t ntok, float *y,
                        size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    for (int64_t r = r0; r < r1; r++) /* a weight row stays in cache across the tokens */
        for (int64_t t = 0; t < ntok; t++)
            dot(n, &y[(size_t)t * ldy + (size_t)r], wb + (size_t)r * w_stride,
                xb + (size_t)t * x_stride);
}

#define DEFINE_MATMUL(name, dot)                                                               \
    static void name(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,        \
                     const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy)       \
    {                                                                                          \
        matmul_with(dot, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);                   \
    }

DEFINE_MATMUL(matmul_f32, vec_dot_f32)
DEFINE_MATMUL(matmul_f16, vec_dot_f16)
DEFINE_MATMUL(matmul_bf16, vec_dot_bf16)
DEFINE_MATMUL(matmul_q8_0, vec_dot_q8_0)
DEFINE_MATMUL(matmul_q4_0, vec_dot_q4_0)
DEFINE_MATMUL(matmul_q4_1, vec_dot_q4_1)
DEFINE_MATMUL(matmul_q5_0, vec_dot_q5_0)
DEFINE_MATMUL(matmul_q5_1, vec_dot_q5_1)
DEFINE_MATMUL(matmul_q2_k, vec_dot_q2_k)
DEFINE_MATMUL(matmul_q3_k, vec_dot_q3_k)
DEFINE_MATMUL(matmul_q4_k, vec_dot_q4_k)
DEFINE_MATMUL(matmul_q5_k, vec_dot_q5_k)
DEFINE_MATMUL(matmul_q6_k, vec_dot_q6_k)

/* ---- activation converters -------------------------------------------------------------- */

static void quantize_act_f32(const float *x, void *dst, int64_t n)
{
    memcpy(dst, x, (size_t)n * sizeof(float));
}

static void quantize_act_f16(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = wl_fp32_to_fp16(x[i]);
        memcpy(out + 2 * i, &h, sizeof h);
    }
}

static void quantize_act_bf16(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = wl_fp32_to_bf16(x[i]);
        memcpy(out + 2 * i, &h, sizeof h);
    }
}

static void quantize_act_q8_0(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t b = 0; b < n / WL_QK; b++)
        wl_quantize_act_block_q8_0(x + b * WL_QK, out + b * sizeof(wl_block_q8_0));
}

static void quantize_act_q8_1(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t b = 0; b < n / WL_QK; b++)
        wl_quantize_act_block_q8_1(x + b * WL_QK, out + b * sizeof(wl_block_q8_1));
}

static void quantize_act_q8_k(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t b = 0; b < n / WL_QK_K; b++)
        wl_quantize_act_block_q8_k(x + b * WL_QK_K, out + b * sizeof(wl_block_q8_k));
}

void wl_kernels_init_scalar(wl_kernel_table *t)
{
    static const struct {
        uint32_t type;
        wl_vec_dot_fn dot;
        wl_matmul_fn mm;
    } kernels[] = {
        {WL_TYPE_F32, vec_dot_f32, matmul_f32},    {WL_TYPE_F16, vec_dot_f16, matmul_f16},
        {WL_TYPE_BF16, vec_dot_bf16, matmul_bf16}, {WL_TYPE_Q8_0, vec_dot_q8_0, matmul_q8_0},
        {WL_TYPE_Q4_0, vec_dot_q4_0, matmul_q4_0}, {WL_TYPE_Q4_1, vec_dot_q4_1, matmul_q4_1},
        {WL_TYPE_Q5_0, vec_dot_q5_0, matmul_q5_0}, {WL_TYPE_Q5_1, vec_dot_q5_1, matmul_q5_1},
        {WL_TYPE_Q2_K, vec_dot_q2_k, matmul_q2_k}, {WL_TYPE_Q3_K, vec_dot_q3_k, matmul_q3_k},
        {WL_TYPE_Q4_K, vec_dot_q4_k, matmul_q4_k}, {WL_TYPE_Q5_K, vec_dot_q5_k, matmul_q5_k},
        {WL_TYPE_Q6_K, vec_dot_q6_k, matmul_q6_k},
    };
    memset(t, 0, sizeof *t);
    t->isa = WL_ISA_SCALAR;
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        t->vec_dot[kernels[i].type] = kernels[i].dot;
        t->matmul[kernels[i].type] = kernels[i].mm;
    }
    t->quantize_act[WL_TYPE_F32] = quantize_act_f32;
    t->quantize_act[WL_TYPE_F16] = quantize_act_f16;
    t->quantize_act[WL_TYPE_BF16] = quantize_act_bf16;
    t->quantize_act[WL_TYPE_Q8_0] = quantize_act_q8_0;
    t->quantize_act[WL_TYPE_Q8_1] = quantize_act_q8_1;
    t->quantize_act[WL_TYPE_Q8_K] = quantize_act_q8_k;
}
