/* kernels_neon.c - the aarch64 Advanced SIMD family (compiled with -march=armv8.2-a+dotprod+fp16).
 *
 * Every kernel computes the canonical arithmetic of kernels.h, bit for bit like the scalar
 * reference. NEON is part of every aarch64 CPU, so the float kernels are always installed. The
 * int8 kernels use the dot-product instructions (sdot: signed x signed bytes, four products per
 * int32 lane: exactly the canonical groups of 4 values), which only some CPUs have
 * (FEAT_DotProd, from Armv8.2: Cortex-A55/A76 and later, Apple M1...); they are installed only
 * when the kernel reports it (HWCAP_ASIMDDP), else the table keeps the scalar int8 kernels.
 *
 * Same tiling as the x86 families (see kernels_avx2.c): R x T register tiles, decode rows taken
 * from the four quarters of the row range, prefill in L2-sized token blocks. A (row, token) pair
 * holds the 16 canonical float lanes in four q-registers, or the 8 canonical lanes of a block
 * format in two, so tiles are smaller than on x86: 4 x 1 for decode, 2 x 2 (float) and 4 x 2
 * (int8) for prefill, within the 32 vector registers. The intrinsics used by the float kernels
 * are base Armv8 (fcvtl for halves, shifts for bfloat16). */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RMAX 4       /* rows per tile */
#define TMAX 2       /* tokens per tile (prefill) */
#define FLOAT_RMAX_MM 2 /* rows per float prefill tile: 2 x 2 x 4 accumulators */

/* The canonical sum of 8 lanes held as lo = lanes 0-3, hi = lanes 4-7:
 * ((0+4) + (2+6)) + ((1+5) + (3+7)). (vaddvq_f32 would add in another order.) */
static inline float hsum8(float32x4_t lo, float32x4_t hi)
{
    float32x4_t u = vaddq_f32(lo, hi);              /* 0+4, 1+5, 2+6, 3+7 */
    float32x4_t v = vaddq_f32(u, vextq_f32(u, u, 2)); /* (0+4)+(2+6), (1+5)+(3+7), ... */
    return vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1);
}

/* ---- float weights x activations of the same type (F32, F16, BF16) ----------------------- */

WL_INLINE size_t elem_bytes(uint32_t type)
{
    return type == WL_TYPE_F32 ? 4 : 2;
}

/* 4 elements of a float-kind row (weights or activations) from element k, as floats. */
WL_INLINE float32x4_t load4(uint32_t type, const unsigned char *row, int64_t k)
{
    switch (type) {
    case WL_TYPE_F16:
        return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(row + 2 * k)));
    case WL_TYPE_BF16:
        return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(row + 2 * k)), 16));
    default:
        return vreinterpretq_f32_u8(vld1q_u8(row + 4 * k));
    }
}

/* The same for the first `count` (1..4) elements only, the others 0; never reads past them. */
WL_INLINE float32x4_t load4_part(uint32_t type, const unsigned char *row, int64_t k, int count)
{
    unsigned char buf[16] = {0};
    memcpy(buf, row + (size_t)k * elem_bytes(type), (size_t)count * elem_bytes(type));
    return load4(type, buf, 0);
}

/* y[t * ldy + r * ystep] = dot(row r, token t) for R rows x T tokens of float-kind weights.
 * acc[r][t][q] holds the canonical lanes 4q..4q+3. */
WL_INLINE void tile_float(const uint32_t type, const int R, const int T, int64_t n,
                          const unsigned char *w, size_t w_stride, const unsigned char *x,
                          size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    float32x4_t acc[RMAX][TMAX][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                acc[r][t][q] = vdupq_n_f32(0.0f);
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            float32x4_t wv[RMAX];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                wv[r] = load4(type, w + (size_t)r * w_stride, k + 4 * q);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                float32x4_t xv = load4(type, x + (size_t)t * x_stride, k + 4 * q);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    acc[r][t][q] = vfmaq_f32(acc[r][t][q], wv[r], xv);
            }
        }
    }
    /* the tail: lanes past n keep their value (a plain fma(0, 0, -0) would turn -0 into +0) */
    for (int q = 0; q < 4 && k + 4 * q < n; q++) {
        const int count = (int)WL_MIN(n - k - 4 * q, 4);
        static const uint32_t lane_ids[4] = {0, 1, 2, 3};
        const uint32x4_t m = vcltq_u32(vld1q_u32(lane_ids), vdupq_n_u32((uint32_t)count));
        float32x4_t wv[RMAX];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            wv[r] = load4_part(type, w + (size_t)r * w_stride, k + 4 * q, count);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            float32x4_t xv = load4_part(type, x + (size_t)t * x_stride, k + 4 * q, count);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][t][q] = vbslq_f32(m, vfmaq_f32(acc[r][t][q], wv[r], xv), acc[r][t][q]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) /* s[j] + s[j + 8], then the 8-lane sum */
            y[(size_t)t * ldy + (size_t)r * ystep] =
                hsum8(vaddq_f32(acc[r][t][0], acc[r][t][2]), vaddq_f32(acc[r][t][1], acc[r][t][3]));
}

WL_INLINE void matmul_float(const uint32_t type, int64_t n, const void *w, size_t w_stride,
                            int64_t r0, int64_t r1, const void *x, size_t x_stride, int64_t ntok,
                            float *y, size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    if (ntok == 1) {
#define FLOAT_DECODE(RR, WR, WS, YO, YS) tile_float(type, RR, 1, n, WR, WS, xb, 0, YO, 1, YS)
        WL_DECODE_ROWS(FLOAT_DECODE);
#undef FLOAT_DECODE
        return;
    }
    const int64_t tb = wl_token_block((size_t)n * elem_bytes(type), TMAX);
#define FLOAT_TILE(RR, TT)                                                                     \
    case (RR) * 8 + (TT):                                                                      \
        tile_float(type, WL_MIN(RR, FLOAT_RMAX_MM), WL_MIN(TT, TMAX), n, wr, w_stride, xr,     \
                   x_stride, yo, ldy, 1);                                                      \
        break;
    WL_FOR_EACH_TILE(tb, FLOAT_RMAX_MM, TMAX, WL_ALL_TILES(FLOAT_TILE))
#undef FLOAT_TILE
}

#define DEFINE_FLOAT_KERNELS(suffix, TYPE)                                                     \
    static void matmul_##suffix(int64_t n, const void *w, size_t w_stride, int64_t r0,         \
                                int64_t r1, const void *x, size_t x_stride, int64_t ntok,      \
                                float *y, size_t ldy)                                          \
    {                                                                                          \
        matmul_float(TYPE, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);                 \
    }                                                                                          \
    static void vec_dot_##suffix(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                          \
        tile_float(TYPE, 1, 1, n, w, 0, x, 0, out, 1, 1);                                      \
    }

DEFINE_FLOAT_KERNELS(f32, WL_TYPE_F32)
DEFINE_FLOAT_KERNELS(f16, WL_TYPE_F16)
DEFINE_FLOAT_KERNELS(bf16, WL_TYPE_BF16)

/* ---- 32-value blocks x Q8_0 / Q8_1 activations, dotprod -------------------------------- */

#define Q8_BYTES ((size_t)sizeof(wl_block_q8_0)) /* 34: d, then 32 int8 */

/* Where the parts of a 32-value format sit in a block (see kernels_avx2.c). */
typedef struct {
    size_t bytes, qs;
    int qh, m, offset;
} block_layout;

WL_INLINE block_layout layout_of(const uint32_t type)
{
    switch (type) {
    case WL_TYPE_Q4_0: return (block_layout){18, 2, 0, 0, 8};
    case WL_TYPE_Q4_1: return (block_layout){20, 4, 0, 2, 0};
    case WL_TYPE_Q5_0: return (block_layout){22, 6, 2, 0, 16};
    case WL_TYPE_Q5_1: return (block_layout){24, 8, 4, 2, 0};
    default: return (block_layout){34, 2, 0, 0, 0}; /* Q8_0 */
    }
}

/* Q4_1 / Q5_1 pair with Q8_1 activations (d, s, then the quants), the others with Q8_0. */
WL_INLINE int with_min(const uint32_t type)
{
    return type == WL_TYPE_Q4_1 || type == WL_TYPE_Q5_1;
}

WL_INLINE size_t act_bytes(const uint32_t type)
{
    return with_min(type) ? sizeof(wl_block_q8_1) : Q8_BYTES;
}

/* One block's 32 quants as two signed vectors (values 0..15 and 16..31), its scale and its
 * min (Q4_1 / Q5_1 weights) or s (Q8_1 activations). */
typedef struct {
    int8x16_t lo, hi;
    float d, m;
} quant_block;

/* 0x10 in byte j where bit j of the 32 bits at qh is set (j = 0..15: lo, 16..31: hi). */
static inline void fifth_bits(const unsigned char *qh, uint8x16_t *lo, uint8x16_t *hi)
{
    static const uint8_t spread_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    static const uint8_t spread_hi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t bits;
    memcpy(&bits, qh, 4);
    const uint8x16_t b = vreinterpretq_u8_u32(vdupq_n_u32(bits));
    const uint8x16_t m = vld1q_u8(bit), sixteen = vdupq_n_u8(0x10);
    *lo = vandq_u8(vtstq_u8(vqtbl1q_u8(b, vld1q_u8(spread_lo)), m), sixteen);
    *hi = vandq_u8(vtstq_u8(vqtbl1q_u8(b, vld1q_u8(spread_hi)), m), sixteen);
}

WL_INLINE quant_block load_weight(const uint32_t type, const unsigned char *blk)
{
    const block_layout L = layout_of(type);
    quant_block b;
    b.d = wl_fp16_to_fp32(wl_load_u16(blk));
    b.m = L.m ? wl_fp16_to_fp32(wl_load_u16(blk + L.m)) : 0.0f;
    if (type == WL_TYPE_Q8_0) {
        b.lo = vld1q_s8((const int8_t *)(const void *)(blk + 2));
        b.hi = vld1q_s8((const int8_t *)(const void *)(blk + 18));
        return b;
    }
    const uint8x16_t qs = vld1q_u8(blk + L.qs);
    uint8x16_t lo = vandq_u8(qs, vdupq_n_u8(0x0f)), hi = vshrq_n_u8(qs, 4);
    if (L.qh) {
        uint8x16_t hlo, hhi;
        fifth_bits(blk + L.qh, &hlo, &hhi);
        lo = vorrq_u8(lo, hlo);
        hi = vorrq_u8(hi, hhi);
    }
    const int8x16_t off = vdupq_n_s8((int8_t)L.offset);
    b.lo = vsubq_s8(vreinterpretq_s8_u8(lo), off);
    b.hi = vsubq_s8(vreinterpretq_s8_u8(hi), off);
    return b;
}

WL_INLINE quant_block load_act(const uint32_t type, const unsigned char *blk)
{
    const size_t qs = with_min(type) ? 4 : 2;
    quant_block a;
    a.d = wl_fp16_to_fp32(wl_load_u16(blk));
    a.m = with_min(type) ? wl_fp16_to_fp32(wl_load_u16(blk + 2)) : 0.0f;
    a.lo = vld1q_s8((const int8_t *)(const void *)(blk + qs));
    a.hi = vld1q_s8((const int8_t *)(const void *)(blk + qs + 16));
    return a;
}

/* acc[r][t][0] holds the canonical lanes 0-3 (values 0..15 of each block), [1] lanes 4-7;
 * summs[r][t] Q4_1 / Q5_1's fma(m_w, s_x, summs). */
WL_INLINE void tile_quant(const uint32_t type, const int R, const int T, int64_t nb,
                          const unsigned char *w, size_t w_stride, const unsigned char *x,
                          size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    const size_t wbytes = layout_of(type).bytes, xbytes = act_bytes(type);
    float32x4_t acc[RMAX][TMAX][2];
    float summs[RMAX][TMAX];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            acc[r][t][0] = acc[r][t][1] = vdupq_n_f32(0.0f);
            summs[r][t] = 0.0f;
        }
    for (int64_t b = 0; b < nb; b++) {
        quant_block wv[RMAX];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            wv[r] = load_weight(type, w + (size_t)r * w_stride + (size_t)b * wbytes);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            quant_block a = load_act(type, x + (size_t)t * x_stride + (size_t)b * xbytes);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const float d = wv[r].d * a.d;
                int32x4_t lo = vdotq_s32(vdupq_n_s32(0), wv[r].lo, a.lo);
                int32x4_t hi = vdotq_s32(vdupq_n_s32(0), wv[r].hi, a.hi);
                acc[r][t][0] = vfmaq_n_f32(acc[r][t][0], vcvtq_f32_s32(lo), d);
                acc[r][t][1] = vfmaq_n_f32(acc[r][t][1], vcvtq_f32_s32(hi), d);
                if (with_min(type))
                    summs[r][t] = fmaf(wv[r].m, a.m, summs[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const float s = hsum8(acc[r][t][0], acc[r][t][1]);
            y[(size_t)t * ldy + (size_t)r * ystep] = with_min(type) ? s + summs[r][t] : s;
        }
}

WL_INLINE void matmul_quant(const uint32_t type, int64_t n, const void *w, size_t w_stride,
                            int64_t r0, int64_t r1, const void *x, size_t x_stride, int64_t ntok,
                            float *y, size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    const int64_t nb = n / WL_QK;
    if (ntok == 1) {
#define QUANT_DECODE(RR, WR, WS, YO, YS) tile_quant(type, RR, 1, nb, WR, WS, xb, 0, YO, 1, YS)
        WL_DECODE_ROWS(QUANT_DECODE);
#undef QUANT_DECODE
        return;
    }
    const int64_t tb = wl_token_block((size_t)nb * act_bytes(type), TMAX);
#define QUANT_TILE(RR, TT)                                                                     \
    case (RR) * 8 + (TT):                                                                      \
        tile_quant(type, WL_MIN(RR, RMAX), WL_MIN(TT, TMAX), nb, wr, w_stride, xr, x_stride, yo, \
                   ldy, 1);                                                                    \
        break;
    WL_FOR_EACH_TILE(tb, RMAX, TMAX, WL_ALL_TILES(QUANT_TILE))
#undef QUANT_TILE
}

#define DEFINE_QUANT_KERNELS(suffix, TYPE)                                                     \
    static void matmul_##suffix(int64_t n, const void *w, size_t w_stride, int64_t r0,         \
                                int64_t r1, const void *x, size_t x_stride, int64_t ntok,      \
                                float *y, size_t ldy)                                          \
    {                                                                                          \
        matmul_quant(TYPE, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);                 \
    }                                                                                          \
    static void vec_dot_##suffix(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                          \
        tile_quant(TYPE, 1, 1, n / WL_QK, w, 0, x, 0, out, 1, 1);                              \
    }

DEFINE_QUANT_KERNELS(q8_0, WL_TYPE_Q8_0)
DEFINE_QUANT_KERNELS(q4_0, WL_TYPE_Q4_0)
DEFINE_QUANT_KERNELS(q4_1, WL_TYPE_Q4_1)
DEFINE_QUANT_KERNELS(q5_0, WL_TYPE_Q5_0)
DEFINE_QUANT_KERNELS(q5_1, WL_TYPE_Q5_1)

/* ---- activation converters, bit-identical to the scalar ones ----------------------------- */

/* F32 -> F16: fcvtn rounds to nearest even (the default FPCR mode) like wl_fp32_to_fp16. */
static void quantize_act_f16(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u8(out + 2 * i, vreinterpret_u8_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) {
        uint16_t h = wl_fp32_to_fp16(x[i]);
        memcpy(out + 2 * i, &h, sizeof h);
    }
}

/* F32 -> BF16 in integer arithmetic (wl_fp32_to_bf16's rule): (u + 0x7fff + lsb) >> 16, NaN
 * kept quiet. */
static void quantize_act_bf16(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x + i));
        uint32x4_t hi = vshrq_n_u32(u, 16);
        uint32x4_t lsb = vandq_u32(hi, vdupq_n_u32(1));
        uint32x4_t r = vshrq_n_u32(vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), lsb)), 16);
        uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
        r = vbslq_u32(nan, vorrq_u32(hi, vdupq_n_u32(0x40)), r);
        vst1_u8(out + 2 * i, vreinterpret_u8_u16(vmovn_u32(r)));
    }
    for (; i < n; i++) {
        uint16_t h = wl_fp32_to_bf16(x[i]);
        memcpy(out + 2 * i, &h, sizeof h);
    }
}

/* F32 -> Q8_0, bit-identical to wl_quantize_act_block_q8_0 (fcvtns: nearest, halves to even). */
static void quantize_act_q8_0(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t b = 0; b < n / WL_QK; b++) {
        const float *xb = x + b * WL_QK;
        unsigned char *ob = out + (size_t)b * Q8_BYTES;
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(xb + 4 * i);
            m = vmaxq_f32(m, vabsq_f32(v[i]));
        }
        const float amax = vmaxvq_f32(m);
        const uint16_t dh = wl_fp32_to_fp16(amax / 127.0f);
        if (dh == 0) { /* a zero scale: the scalar rule (all-zero quants) */
            wl_quantize_act_block_q8_0(xb, ob);
            continue;
        }
        const float id = 127.0f / amax;
        memcpy(ob, &dh, sizeof dh);
        int8_t q[32];
        for (int i = 0; i < 8; i += 2) {
            int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(v[i], id)); /* nearest, halves to even */
            int32x4_t c = vcvtnq_s32_f32(vmulq_n_f32(v[i + 1], id));
            int16x8_t h = vcombine_s16(vqmovn_s32(a), vqmovn_s32(c));
            vst1_s8(q + 4 * i, vqmovn_s16(h));
        }
        memcpy(ob + 2, q, sizeof q);
    }
}

void wl_kernels_init_neon(wl_kernel_table *t, const wl_cpu_features *f)
{
    t->vec_dot[WL_TYPE_F32] = vec_dot_f32;
    t->vec_dot[WL_TYPE_F16] = vec_dot_f16;
    t->vec_dot[WL_TYPE_BF16] = vec_dot_bf16;
    t->matmul[WL_TYPE_F32] = matmul_f32;
    t->matmul[WL_TYPE_F16] = matmul_f16;
    t->matmul[WL_TYPE_BF16] = matmul_bf16;
    t->quantize_act[WL_TYPE_F16] = quantize_act_f16;
    t->quantize_act[WL_TYPE_BF16] = quantize_act_bf16;
    t->quantize_act[WL_TYPE_Q8_0] = quantize_act_q8_0;
    if (f->neon_dotprod) {
        t->vec_dot[WL_TYPE_Q8_0] = vec_dot_q8_0;
        t->vec_dot[WL_TYPE_Q4_0] = vec_dot_q4_0;
        t->matmul[WL_TYPE_Q8_0] = matmul_q8_0;
        t->matmul[WL_TYPE_Q4_0] = matmul_q4_0;
        t->vec_dot[WL_TYPE_Q4_1] = vec_dot_q4_1;
        t->vec_dot[WL_TYPE_Q5_0] = vec_dot_q5_0;
        t->vec_dot[WL_TYPE_Q5_1] = vec_dot_q5_1;
        t->matmul[WL_TYPE_Q4_1] = matmul_q4_1;
        t->matmul[WL_TYPE_Q5_0] = matmul_q5_0;
        t->matmul[WL_TYPE_Q5_1] = matmul_q5_1;
    }
    wl_kernels_init_kquants_neon(t, f);
}
