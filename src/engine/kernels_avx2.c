/* kernels_avx2.c - the AVX2 + FMA + F16C family (compiled with -mavx2 -mfma -mf16c).
 *
 * Every kernel computes the canonical arithmetic of kernels.h, bit for bit like the scalar
 * reference. Matmuls are built from one template per weight kind, a tile of R weight rows x T
 * tokens whose accumulators stay in registers for the whole row, so each weight vector is
 * loaded (and converted) once per tile and used T times, and each activation vector is used R
 * times:
 *   - decode (ntok = 1): R = 4 rows at a time, so four independent dot products are in flight.
 *     The four rows come one from each quarter of the row range (WL_DECODE_ROWS): each quarter
 *     is then one long sequential stream through memory that the hardware prefetcher follows
 *     (measured: Q8_0 GEMV 14 -> 38 GB/s, F32 48 -> 60 GB/s);
 *   - prefill: tokens are taken in blocks that fit in L2 (wl_token_block); inside a block every
 *     row tile meets every token tile, so the weights stream from memory once per block.
 * Float kinds keep the 16 canonical lanes in two ymm accumulators per (row, token): lanes 0-7
 * take elements 16k + 0..7, lanes 8-15 elements 16k + 8..15.
 * Quantized dot products run on int8 with exact int32 sums per group of 4 values, the 8 lanes
 * of one ymm, scaled by d_w * d_x in float:
 *   - Q8_0 x Q8_0: maddubs needs one unsigned operand: |w| times x with w's sign (the sign trick);
 *     |w| <= 128 and |x| <= 127 keep every int16 pair sum below 32767 (the activation
 *     quantizers never produce -128);
 *   - Q4_0 x Q8_0: the nibbles q in 0..15 are already unsigned: sum((q - 8) x) =
 *     sum(q x) - 8 sum(x), and the second term is computed once per activation block. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RMAX 4 /* rows per tile */
#define TMAX 3 /* tokens per tile (prefill): 4 x 3 accumulators + 4 weights ~ the 16 ymm */

/* ---- helpers ---------------------------------------------------------------------------- */

/* The canonical sum of 8 lanes: ((0+4) + (2+6)) + ((1+5) + (3+7)). */
static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* A half-float scale as 8 equal floats. */
static inline __m256 broadcast_half(const unsigned char *p)
{
    return _mm256_cvtph_ps(_mm_set1_epi16((short)wl_load_u16(p)));
}

/* The first `count` lanes (0..8) set. */
static inline __m256 first_lanes8(int count)
{
    return _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

/* ---- float weights x activations of the same type (F32, F16, BF16) ----------------------- */

#define FLOAT_RMAX_MM 2 /* rows per prefill tile: 2 x 3 x 2 accumulators + 2 weights + 1 x */

WL_INLINE size_t elem_bytes(uint32_t type)
{
    return type == WL_TYPE_F32 ? 4 : 2;
}

/* 8 elements of a float-kind row (weights or activations) from element k, as floats. */
WL_INLINE __m256 load8(uint32_t type, const unsigned char *row, int64_t k)
{
    switch (type) {
    case WL_TYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + 2 * k)));
    case WL_TYPE_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(row + 2 * k));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default:
        return _mm256_loadu_ps((const float *)(const void *)(row + 4 * k));
    }
}

/* The same for the first `count` (1..8) elements only, the others 0; never reads past them. */
WL_INLINE __m256 load8_part(uint32_t type, const unsigned char *row, int64_t k, int count)
{
    unsigned char buf[32] = {0};
    memcpy(buf, row + (size_t)k * elem_bytes(type), (size_t)count * elem_bytes(type));
    return load8(type, buf, 0);
}

/* y[t * ldy + r * ystep] = dot(row r, token t) for R rows x T tokens of float-kind weights.
 *   w: R rows, w_stride bytes apart; x: T rows of n elements of the same type, x_stride bytes
 *   apart. acc[r][t][h] holds the canonical lanes 8h..8h+7. */
WL_INLINE void tile_float(const uint32_t type, const int R, const int T, int64_t n,
                          const unsigned char *w, size_t w_stride, const unsigned char *x,
                          size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    __m256 acc[RMAX][TMAX][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256 wv[RMAX];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                wv[r] = load8(type, w + (size_t)r * w_stride, k + 8 * h);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256 xv = load8(type, x + (size_t)t * x_stride, k + 8 * h);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    acc[r][t][h] = _mm256_fmadd_ps(wv[r], xv, acc[r][t][h]);
            }
        }
    }
    /* the tail: lanes past n keep their value (a plain fma(0, 0, -0) would turn -0 into +0) */
    for (int h = 0; h < 2 && k + 8 * h < n; h++) {
        const int count = (int)WL_MIN(n - k - 8 * h, 8);
        const __m256 m = first_lanes8(count);
        __m256 wv[RMAX];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            wv[r] = load8_part(type, w + (size_t)r * w_stride, k + 8 * h, count);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256 xv = load8_part(type, x + (size_t)t * x_stride, k + 8 * h, count);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][t][h] = _mm256_blendv_ps(acc[r][t][h],
                                                _mm256_fmadd_ps(wv[r], xv, acc[r][t][h]), m);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) /* s[j] + s[j + 8], then the 8-lane sum */
            y[(size_t)t * ldy + (size_t)r * ystep] =
                hsum(_mm256_add_ps(acc[r][t][0], acc[r][t][1]));
}

/* The whole matmul for one float kind: decode by quarters, prefill in L2-sized token blocks. */
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

/* ---- 32-value blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) x Q8_0 / Q8_1 activations ----------- */

#define Q8_BYTES ((size_t)sizeof(wl_block_q8_0)) /* 34: d, then 32 int8 */

/* Decode streams quantized weights from memory more slowly per byte than float ones (more
 * work per byte), and the hardware prefetcher then runs too few lines ahead; a software
 * prefetch this many bytes ahead in each of the four row streams restores full bandwidth
 * (measured on Zen 5: Q8_0 GEMV 38 -> 54 GB/s; float rows gain nothing). Past the end of a row
 * it lands in the next row of the same stream, which is the one read next. */
#define QUANT_PREFETCH 4096

/* The layout of a 32-value format: where its parts sit in a block. */
typedef struct {
    size_t bytes;  /* block size */
    size_t qs;     /* offset of the quants (nibbles) */
    int qh;        /* offset of the fifth bits, or 0 */
    int m;         /* offset of the min, or 0 */
    int offset;    /* subtracted from the unsigned quants (Q4_0: 8, Q5_0: 16), else 0 */
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

/* One activation block, ready for every weight row of a tile. */
typedef struct {
    __m256i q;    /* 32 int8 */
    __m256i corr; /* -offset * (sum of each group of 4 values), per int32 lane (Q4_0, Q5_0) */
    __m256 d;     /* its scale, 8 times */
    float s;      /* Q8_1: d * sum(q) */
} act_block;

/* One weight block. */
typedef struct {
    __m256i q; /* Q8_0: 32 int8; the others: the unsigned quants 0..15 / 0..31 in value order */
    __m256 d;  /* its scale, 8 times */
    float m;   /* Q4_1 / Q5_1: the min */
} weight_block;

WL_INLINE act_block load_act(const uint32_t type, const unsigned char *blk)
{
    const block_layout L = layout_of(type);
    act_block a;
    a.q = _mm256_loadu_si256((const __m256i *)(const void *)(blk + (with_min(type) ? 4 : 2)));
    a.d = broadcast_half(blk);
    a.s = with_min(type) ? _cvtsh_ss(wl_load_u16(blk + 2)) : 0.0f;
    if (L.offset) { /* offset * (x0 + x1), then minus the pairs' sum */
        __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8((char)L.offset), a.q);
        a.corr = _mm256_madd_epi16(pairs, _mm256_set1_epi16(-1));
    } else {
        a.corr = _mm256_setzero_si256();
    }
    return a;
}

/* The 32 nibbles of a block in value order: low nibbles (values 0..15), then high. */
static inline __m256i unpack_nibbles(const unsigned char *qs)
{
    __m128i packed = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* 0x10 in byte j where bit j of the 32 bits at qh is set, else 0. */
static inline __m256i fifth_bits(const unsigned char *qh)
{
    uint32_t bits;
    memcpy(&bits, qh, 4);
    /* byte j takes byte j / 8 of the bits, then tests its bit j % 8 */
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)bits),
        _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll));
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

WL_INLINE weight_block load_weight(const uint32_t type, const unsigned char *blk)
{
    const block_layout L = layout_of(type);
    weight_block b;
    b.d = broadcast_half(blk);
    b.m = L.m ? _cvtsh_ss(wl_load_u16(blk + L.m)) : 0.0f;
    if (type == WL_TYPE_Q8_0) {
        b.q = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    } else {
        b.q = unpack_nibbles(blk + L.qs);
        if (L.qh)
            b.q = _mm256_or_si256(b.q, fifth_bits(blk + L.qh));
    }
    return b;
}

/* Q8_0 weights only: |w|, kept per row for the sign trick. */
static inline __m256i abs_weights(__m256i q)
{
    return _mm256_sign_epi8(q, q);
}

/* The int32 sums (8 lanes, 4 products each) of one weight block with one activation block.
 * wabs is |w| for Q8_0 (unused otherwise). */
WL_INLINE __m256i block_dot(const uint32_t type, __m256i wq, __m256i wabs, const act_block *a)
{
    const __m256i ones = _mm256_set1_epi16(1);
    if (type != WL_TYPE_Q8_0) { /* unsigned quants <= 31: no saturation */
        __m256i pairs = _mm256_maddubs_epi16(wq, a->q);
        return _mm256_add_epi32(_mm256_madd_epi16(pairs, ones), a->corr);
    }
    __m256i pairs = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(a->q, wq));
    return _mm256_madd_epi16(pairs, ones);
}

/* y[t * ldy + r] for R rows x T tokens of 32-value blocks. */
WL_INLINE void tile_quant(const uint32_t type, const int R, const int T, int64_t nb,
                          const unsigned char *w, size_t w_stride, const unsigned char *x,
                          size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    const size_t wbytes = layout_of(type).bytes, xbytes = act_bytes(type);
    __m256 acc[RMAX][TMAX];
    float summs[RMAX][TMAX]; /* Q4_1 / Q5_1: fma(m_w, s_x, summs) per block */
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            acc[r][t] = _mm256_setzero_ps();
            summs[r][t] = 0.0f;
        }
    for (int64_t b = 0; b < nb; b++) {
        weight_block wv[RMAX];
        __m256i wabs[RMAX];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            wv[r] = load_weight(type, w + (size_t)r * w_stride + (size_t)b * wbytes);
            if (T == 1) /* decode: see QUANT_PREFETCH */
                _mm_prefetch((const char *)w + (size_t)r * w_stride + (size_t)b * wbytes +
                                 QUANT_PREFETCH,
                             _MM_HINT_T0);
            wabs[r] = type == WL_TYPE_Q8_0 ? abs_weights(wv[r].q) : wv[r].q;
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            act_block a = load_act(type, x + (size_t)t * x_stride + (size_t)b * xbytes);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m256 sums = _mm256_cvtepi32_ps(block_dot(type, wv[r].q, wabs[r], &a));
                acc[r][t] = _mm256_fmadd_ps(sums, _mm256_mul_ps(wv[r].d, a.d), acc[r][t]);
                if (with_min(type))
                    summs[r][t] = fmaf(wv[r].m, a.s, summs[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r * ystep] =
                with_min(type) ? hsum(acc[r][t]) + summs[r][t] : hsum(acc[r][t]);
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

/* F32 -> F16: F16C rounds to nearest even exactly as wl_fp32_to_fp16 does (NaN included). */
static void quantize_act_f16(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * i), h);
    }
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
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i quiet = _mm256_set1_epi32(0x40);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        __m256i hi = _mm256_srli_epi32(u, 16);
        __m256i lsb = _mm256_and_si256(hi, one);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, quiet), nan);
        __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * i), h);
    }
    for (; i < n; i++) {
        uint16_t h = wl_fp32_to_bf16(x[i]);
        memcpy(out + 2 * i, &h, sizeof h);
    }
}

/* The largest |x| of 32 floats (for finite values, the scalar loop's answer). */
static inline float absmax32(const __m256 v[4])
{
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_max_ps(
        _mm256_max_ps(_mm256_andnot_ps(sign_bit, v[0]), _mm256_andnot_ps(sign_bit, v[1])),
        _mm256_max_ps(_mm256_andnot_ps(sign_bit, v[2]), _mm256_andnot_ps(sign_bit, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* 32 floats times id, rounded to nearest even, as int8 in order (NaN and out-of-range values
 * become INT32_MIN, then -128 through the saturating packs, as the scalar act_round says). */
static inline __m256i round_to_int8x32(const __m256 v[4], float id, __m256i q32[4])
{
    for (int i = 0; i < 4; i++)
        q32[i] = _mm256_cvttps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], _mm256_set1_ps(id)),
                                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    /* packs work per 128-bit lane; the permute puts the 32 bytes back in order */
    __m256i q16a = _mm256_packs_epi32(q32[0], q32[1]), q16b = _mm256_packs_epi32(q32[2], q32[3]);
    __m256i q8 = _mm256_packs_epi16(q16a, q16b);
    return _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* F32 -> Q8_0, bit-identical to wl_quantize_act_block_q8_0. */
static void quantize_act_q8_0(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t b = 0; b < n / WL_QK; b++) {
        const float *xb = x + b * WL_QK;
        unsigned char *ob = out + (size_t)b * Q8_BYTES;
        __m256 v[4];
        __m256i q32[4];
        for (int i = 0; i < 4; i++)
            v[i] = _mm256_loadu_ps(xb + 8 * i);
        const float amax = absmax32(v);
        const uint16_t dh = wl_fp32_to_fp16(amax / 127.0f);
        if (dh == 0) { /* a zero scale: the scalar rule (all-zero quants) */
            wl_quantize_act_block_q8_0(xb, ob);
            continue;
        }
        memcpy(ob, &dh, sizeof dh);
        _mm256_storeu_si256((__m256i *)(void *)(ob + 2), round_to_int8x32(v, 127.0f / amax, q32));
    }
}

/* F32 -> Q8_1, bit-identical to wl_quantize_act_block_q8_1. */
static void quantize_act_q8_1(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t b = 0; b < n / WL_QK; b++) {
        const float *xb = x + b * WL_QK;
        unsigned char *ob = out + (size_t)b * sizeof(wl_block_q8_1);
        __m256 v[4];
        __m256i q32[4];
        for (int i = 0; i < 4; i++)
            v[i] = _mm256_loadu_ps(xb + 8 * i);
        const float amax = absmax32(v);
        const float d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        if (!isfinite(id))
            id = 0.0f;
        const __m256i q8 = round_to_int8x32(v, id, q32);
        /* the sum of the stored int8 (maddubs with ones: pairs; madd: groups of 4) */
        __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8),
                                       _mm256_set1_epi16(1));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
        s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
        const uint16_t dh = wl_fp32_to_fp16(d), sh = wl_fp32_to_fp16(d * (float)_mm_cvtsi128_si32(s));
        memcpy(ob, &dh, 2);
        memcpy(ob + 2, &sh, 2);
        _mm256_storeu_si256((__m256i *)(void *)(ob + 4), q8);
    }
}

/* F32 -> Q8_K, bit-identical to wl_quantize_act_block_q8_k: q = min(127, nearest_int(x *
 * iscale)) with ggml's nearest_int (add 1.5 * 2^23, keep the low mantissa bits), stored as its
 * low byte. */
static void quantize_act_q8_k(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / WL_QK_K; b++) {
        const float *xb = x + b * WL_QK_K;
        unsigned char *ob = out + (size_t)b * sizeof(wl_block_q8_k);
        /* the largest |x|, NaN left out (the scalar comparison never picks one) */
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < WL_QK_K; i += 8) {
            __m256 v = _mm256_loadu_ps(xb + i);
            __m256 a = _mm256_and_ps(_mm256_andnot_ps(sign_bit, v), _mm256_cmp_ps(v, v, _CMP_ORD_Q));
            m = _mm256_max_ps(m, a);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(ob, 0, sizeof(wl_block_q8_k));
            continue;
        }
        float max = 0.0f; /* the first value of that magnitude, with its sign */
        for (int i = 0; i < WL_QK_K; i++)
            if (fabsf(xb[i]) == amax) {
                max = xb[i];
                break;
            }
        const float iscale = -127.0f / max;
        const __m256 vis = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.0f);
        for (int i = 0; i < WL_QK_K; i += 32) {
            __m256i q32[4];
            for (int k = 0; k < 4; k++) {
                __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 8 * k), vis), magic);
                __m256i v = _mm256_sub_epi32(
                    _mm256_and_si256(_mm256_castps_si256(t), _mm256_set1_epi32(0x007fffff)),
                    _mm256_set1_epi32(0x00400000));
                v = _mm256_min_epi32(v, _mm256_set1_epi32(127));
                q32[k] = _mm256_and_si256(v, _mm256_set1_epi32(0xff)); /* the low byte */
            }
            __m256i q16a = _mm256_packus_epi32(q32[0], q32[1]);
            __m256i q16b = _mm256_packus_epi32(q32[2], q32[3]);
            __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(q16a, q16b),
                                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(void *)(ob + 4 + i), q8);
            /* the two sums of 16: groups of 4 (maddubs, madd), then within each 128-bit half */
            __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8),
                                           _mm256_set1_epi16(1));
            s4 = _mm256_hadd_epi32(s4, s4);
            s4 = _mm256_hadd_epi32(s4, s4);
            const int16_t s0 = (int16_t)_mm256_extract_epi32(s4, 0);
            const int16_t s1 = (int16_t)_mm256_extract_epi32(s4, 4);
            memcpy(ob + 260 + 2 * (i / 16), &s0, 2);
            memcpy(ob + 260 + 2 * (i / 16 + 1), &s1, 2);
        }
        const float d = 1 / iscale;
        memcpy(ob, &d, sizeof d);
    }
}

void wl_kernels_init_avx2(wl_kernel_table *t)
{
    t->vec_dot[WL_TYPE_F32] = vec_dot_f32;
    t->vec_dot[WL_TYPE_F16] = vec_dot_f16;
    t->vec_dot[WL_TYPE_BF16] = vec_dot_bf16;
    t->vec_dot[WL_TYPE_Q8_0] = vec_dot_q8_0;
    t->vec_dot[WL_TYPE_Q4_0] = vec_dot_q4_0;
    t->matmul[WL_TYPE_F32] = matmul_f32;
    t->matmul[WL_TYPE_F16] = matmul_f16;
    t->matmul[WL_TYPE_BF16] = matmul_bf16;
    t->matmul[WL_TYPE_Q8_0] = matmul_q8_0;
    t->matmul[WL_TYPE_Q4_0] = matmul_q4_0;
    t->vec_dot[WL_TYPE_Q4_1] = vec_dot_q4_1;
    t->vec_dot[WL_TYPE_Q5_0] = vec_dot_q5_0;
    t->vec_dot[WL_TYPE_Q5_1] = vec_dot_q5_1;
    t->matmul[WL_TYPE_Q4_1] = matmul_q4_1;
    t->matmul[WL_TYPE_Q5_0] = matmul_q5_0;
    t->matmul[WL_TYPE_Q5_1] = matmul_q5_1;
    wl_kernels_init_kquants_avx2(t);
    t->quantize_act[WL_TYPE_F16] = quantize_act_f16;
    t->quantize_act[WL_TYPE_BF16] = quantize_act_bf16;
    t->quantize_act[WL_TYPE_Q8_0] = quantize_act_q8_0;
    t->quantize_act[WL_TYPE_Q8_1] = quantize_act_q8_1;
    t->quantize_act[WL_TYPE_Q8_K] = quantize_act_q8_k;
}
