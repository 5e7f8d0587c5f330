/* kernels_avx512.c - the AVX-512 family (compiled with AVX-512 F/BW/VL/DQ/VNNI/BF16 + AVX2).
 *
 * The family runs on any CPU with AVX-512 F/BW/VL/DQ. VNNI is a separate feature (Skylake-X
 * has AVX-512 without it), so the int8 kernels that use vpdpbusd are installed only when the
 * CPU reports avx512vnni at run time; otherwise the table keeps the AVX2 int8 kernels.
 *
 * Every kernel computes the canonical arithmetic of kernels.h, bit for bit like the scalar
 * reference. Same tiling as the AVX2 family (see kernels_avx2.c: R x T register tiles, decode
 * rows taken from the four quarters of the range, L2-sized token blocks), with 4 x 4 tiles for
 * the 32 registers:
 *   - float kinds: the 16 canonical lanes are one zmm; row tails use masked loads, which never
 *     touch the bytes past the end of a row (only for tails: see load16_masked), and a masked
 *     FMA that leaves the lanes past the end as they are;
 *   - quantized kinds, tiles (vec_dot, and the matmul for ntok >= 2): the integer sums of two
 *     blocks per 512-bit vector (64 int8 products per vpdpbusd); its two 256-bit halves then
 *     go into the 8-lane float accumulator one after the other, first block first, as the
 *     canonical order wants;
 *   - Q8_0 x Q8_0 tiles: vpdpbusd multiplies unsigned by signed bytes, so the activations are
 *     shifted to unsigned (x + 128) once per block and the excess 128 * sum(w) is removed by
 *     starting each row's int32 sum at -128 * sum(w) (once per weight block, for all tokens);
 *   - Q4_0 x Q8_0 tiles: the nibbles are the unsigned operand, and -8 * sum(x) (once per
 *     activation block, for all rows) is the starting sum. One vpdpbusd per (row, token, block
 *     pair);
 *   - quantized decode (ntok = 1; see decode_quant4): two ROWS per 512-bit vector instead,
 *     [row r, block b | row r', block b], so each block of a pair of rows is one vpdpbusd
 *     against the activation block in both halves and one 512-bit FMA into an accumulator that
 *     holds both rows' 8 canonical lanes (no extracts, half the float work of the tiles). The
 *     activations are then the signed operand for both kinds (Q8_0 weights shifted to w + 128,
 *     starting sum -128 * sum(x)), so the starting sums are once per block for all rows. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RMAX 4 /* rows per tile */
#define TMAX 4 /* tokens per tile (prefill) */

/* ---- helpers ---------------------------------------------------------------------------- */

/* The canonical sum of 8 lanes: ((0+4) + (2+6)) + ((1+5) + (3+7)). */
static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The canonical sum of 16 lanes: s[j] + s[j + 8], then the 8-lane sum. */
static inline float hsum512(__m512 v)
{
    return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

/* The mask of the first `count` lanes of 16 (count in 0..16). */
static inline __mmask16 first_lanes(int64_t count)
{
    return (__mmask16)((1u << count) - 1u);
}

/* 16 elements of a float-kind row (weights or activations) from element k, as floats. */
WL_INLINE __m512 load16(uint32_t type, const unsigned char *row, int64_t k)
{
    switch (type) {
    case WL_TYPE_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(row + 2 * k)));
    case WL_TYPE_BF16: {
        __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(row + 2 * k)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    }
    default:
        return _mm512_loadu_ps(row + 4 * k);
    }
}

/* The same for the lanes in `m` only (the others are 0), for row tails: masked loads never
 * touch the bytes of the lanes left out. Only for tails: masked loads that miss the cache
 * stream from memory markedly slower than plain ones (measured on Zen 5). */
WL_INLINE __m512 load16_masked(uint32_t type, const unsigned char *row, int64_t k, __mmask16 m)
{
    switch (type) {
    case WL_TYPE_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * k));
    case WL_TYPE_BF16: {
        __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * k));
        return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    }
    default:
        return _mm512_maskz_loadu_ps(m, row + 4 * k);
    }
}

WL_INLINE size_t elem_bytes(uint32_t type)
{
    return type == WL_TYPE_F32 ? 4 : 2;
}

/* ---- float weights x activations of the same type (F32, F16, BF16) ----------------------- */

/* y[t * ldy + r * ystep] = dot(row r, token t) for R rows x T tokens of float-kind weights.
 *   w: R rows (R <= 6) of `type`, w_stride bytes apart; x: T rows (T <= 4) of n elements of
 *   xtype (the weights' type, or F32 when matmul_half converted them), x_stride bytes apart.
 *   One zmm per (row, token) holds the 16 canonical lanes. */
WL_INLINE void tile_float(const uint32_t type, const uint32_t xtype, const int R, const int T, int64_t n,
                          const unsigned char *w, size_t w_stride, const unsigned char *x,
                          size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    __m512 acc[6][TMAX];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m512 wv[6];
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            wv[r] = load16(type, w + (size_t)r * w_stride, k);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512 xv = load16(xtype, x + (size_t)t * x_stride, k);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++)
                acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (k < n) { /* the tail: masked loads, and lanes past n keep their value */
        const __mmask16 m = first_lanes(n - k);
        __m512 wv[6];
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            wv[r] = load16_masked(type, w + (size_t)r * w_stride, k, m);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512 xv = load16_masked(xtype, x + (size_t)t * x_stride, k, m);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++)
                acc[r][t] = _mm512_mask3_fmadd_ps(wv[r], xv, acc[r][t], m);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r * ystep] = hsum512(acc[r][t]);
}

/* Prefill of half-width weights (F16, BF16): tile_float with the activations already converted
 * to floats (xtype F32), so that only the weights are converted, once for T tokens. Up to 6 x 4
 * tiles: 6 conversions and 24 FMAs per 16 elements, where 4 x 4 tiles converting both take 8 for
 * 16 (3 x 8 tiles, which read the activations from L2 twice as often, measured slower). The
 * same lanes, the same bits. */
#define HRMAX 6
#define HTMAX 4

/* The prefill of half-width weights: each L2-sized block of tokens converted to floats once
 * (exactly: every half and bfloat16 is a float), then 6 x 4 tiles. Returns 0 when the block's
 * buffer cannot be had (the caller then takes the general path). */
static int matmul_half(const uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                       const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy)
{
    const int64_t tb = wl_token_block((size_t)n * sizeof(float), HTMAX);
    const size_t xs = (size_t)(n + 15) / 16 * 16; /* floats per converted row */
    float *xf = aligned_alloc(64, (size_t)(tb < ntok ? tb : ntok) * xs * sizeof(float));
    if (!xf)
        return 0;
    const unsigned char *wb = w, *xb = x;
    for (int64_t t0 = 0; t0 < ntok; t0 += tb) {
        const int64_t t1 = t0 + tb < ntok ? t0 + tb : ntok;
        for (int64_t t = t0; t < t1; t++)
            for (int64_t k = 0; k < n; k += 16) {
                const __mmask16 m = first_lanes(n - k < 16 ? n - k : 16);
                _mm512_store_ps(xf + (size_t)(t - t0) * xs + k,
                                load16_masked(type, xb + (size_t)t * x_stride, k, m));
            }
        for (int64_t r = r0; r < r1; r += HRMAX) {
            const int R = (int)(r1 - r < HRMAX ? r1 - r : HRMAX);
            for (int64_t t = t0; t < t1; t += HTMAX) {
                const int T = (int)(t1 - t < HTMAX ? t1 - t : HTMAX);
                const unsigned char *wr = wb + (size_t)r * w_stride;
                const float *xr = xf + (size_t)(t - t0) * xs;
                float *yo = y + (size_t)t * ldy + (size_t)r;
#define HALF_CASE(RR, TT)                                                                      \
    case (RR) * 16 + (TT):                                                                     \
        tile_float(type, WL_TYPE_F32, RR, TT, n, wr, w_stride, (const unsigned char *)xr,         \
                   xs * sizeof(float), yo, ldy, 1);                                            \
        break;
#define HALF_ROWS(RR) HALF_CASE(RR, 1) HALF_CASE(RR, 2) HALF_CASE(RR, 3) HALF_CASE(RR, 4)
                switch (R * 16 + T) {
                    HALF_ROWS(1) HALF_ROWS(2) HALF_ROWS(3) HALF_ROWS(4) HALF_ROWS(5) HALF_ROWS(6)
                default:
                    break;
                }
#undef HALF_ROWS
#undef HALF_CASE
            }
        }
    }
    free(xf);
    return 1;
}

WL_INLINE void matmul_float(const uint32_t type, int64_t n, const void *w, size_t w_stride,
                            int64_t r0, int64_t r1, const void *x, size_t x_stride, int64_t ntok,
                            float *y, size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    if (ntok >= 2 && type != WL_TYPE_F32 && matmul_half(type, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy))
        return;
    if (ntok == 1) {
#define FLOAT_DECODE(RR, WR, WS, YO, YS) tile_float(type, type, RR, 1, n, WR, WS, xb, 0, YO, 1, YS)
        WL_DECODE_ROWS(FLOAT_DECODE);
#undef FLOAT_DECODE
        return;
    }
    const int64_t tb = wl_token_block((size_t)n * elem_bytes(type), TMAX);
#define FLOAT_TILE(RR, TT)                                                                     \
    case (RR) * 8 + (TT):                                                                      \
        tile_float(type, type, WL_MIN(RR, RMAX), WL_MIN(TT, TMAX), n, wr, w_stride, xr, x_stride, yo, \
                   ldy, 1);                                                                    \
        break;
    WL_FOR_EACH_TILE(tb, RMAX, TMAX, WL_ALL_TILES(FLOAT_TILE))
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
        tile_float(TYPE, TYPE, 1, 1, n, w, 0, x, 0, out, 1, 1);                                      \
    }

DEFINE_FLOAT_KERNELS(f32, WL_TYPE_F32)
DEFINE_FLOAT_KERNELS(f16, WL_TYPE_F16)
DEFINE_FLOAT_KERNELS(bf16, WL_TYPE_BF16)

/* ---- quantized weights (Q8_0, Q4_0) x Q8_0 activations, VNNI ---------------------------- */

#define Q8_BYTES ((size_t)sizeof(wl_block_q8_0)) /* 34: d, then 32 int8 */
#define Q4_BYTES ((size_t)sizeof(wl_block_q4_0)) /* 18: d, then 16 bytes of nibbles */

/* Decode streams quantized weights from memory more slowly per byte than float ones (more
 * work per byte), and the hardware prefetcher then runs too few lines ahead; a software
 * prefetch this many bytes ahead in each of the four row streams restores full bandwidth
 * (measured on Zen 5: Q8_0 GEMV 38 -> 54 GB/s; float rows gain nothing). Past the end of a row
 * it lands in the next row of the same stream, which is the one read next. With the decode
 * kernel decode_quant4, 6144 bytes beat 4096 on Zen 5 (one thread, GEMV from memory: Q8_0
 * 46.8 -> 49.3 GB/s, Q4_0 38.4 -> 39.6 GB/s). On an Intel Xeon with AMX, 2-3 KiB beat 6 KiB:
 * qwen2.5-0.5b Q8_0 tg128 85-89% of the bound against 80-82% (48-52 against 46-49 tokens/s,
 * 5 alternations), so decode_quant4 looks ahead QUANT_PREFETCH_OTHER bytes on CPUs not AMD's. */
#define QUANT_PREFETCH 6144
#define QUANT_PREFETCH_OTHER 3072

/* Blocks are taken two at a time, one 512-bit vector for the 64 quants of a pair: the first
 * block in the low 256 bits, the second in the high ones. The last block of an odd count goes
 * alone, with the high half zero (its int sums are then 0 and add nothing). */

/* Two activation blocks, ready for every weight row of a tile. */
typedef struct {
    __m512i q;    /* Q8_0 weights: x + 128 (unsigned); Q4_0 weights: x (signed) */
    __m512i init; /* Q4_0 weights: -8 * (sum of each group of 4 values), per int32 lane */
    __m512 d;     /* the two scales, each 8 times */
} act_pair;

/* Two weight blocks, ready for every token of a tile. */
typedef struct {
    __m512i q;    /* Q8_0: 64 int8; Q4_0: 64 nibbles 0..15 in value order */
    __m512i init; /* Q8_0: -128 * (sum of each group of 4 values), per int32 lane */
    __m512 d;     /* the two scales, each 8 times */
} weight_pair;

/* -(sum over each group of 4 bytes of `s8`) * u, per int32 lane. */
static inline __m512i minus_scaled_group_sums(__m512i s8, char u)
{
    __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(u), s8);
    return _mm512_sub_epi32(_mm512_setzero_si512(), sums);
}

/* The half-float scales at a and b as [a x 8, b x 8]; b == NULL gives [a x 8, 0 x 8]. */
static inline __m512 pair_scales(const unsigned char *a, const unsigned char *b)
{
    __m128i ha = _mm_set1_epi16((short)wl_load_u16(a));
    __m128i hb = b ? _mm_set1_epi16((short)wl_load_u16(b)) : _mm_setzero_si128();
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(ha), hb, 1));
}

/* 32 bytes at a and 32 at b as one vector; b == NULL gives zeros in the high half. */
static inline __m512i load_2x32(const unsigned char *a, const unsigned char *b)
{
    __m512i lo = _mm512_castsi256_si512(_mm256_loadu_si256((const void *)a));
    if (b == NULL)
        return _mm512_zextsi256_si512(_mm512_castsi512_si256(lo));
    return _mm512_inserti64x4(lo, _mm256_loadu_si256((const void *)b), 1);
}

/* The activation blocks at blk and, when `two`, the next one. */
WL_INLINE act_pair load_act(const uint32_t type, const unsigned char *blk, const int two)
{
    act_pair a;
    const unsigned char *next = two ? blk + Q8_BYTES : NULL;
    __m512i q = load_2x32(blk + 2, next ? next + 2 : NULL);
    a.d = pair_scales(blk, next);
    if (type == WL_TYPE_Q4_0) {
        a.q = q;
        a.init = minus_scaled_group_sums(q, 8);
    } else {
        a.q = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)); /* x + 128 as unsigned */
        a.init = _mm512_setzero_si512();
    }
    return a;
}

/* The 64 nibbles of two Q4_0 blocks in value order: 128-bit lanes [lo A, hi A, lo B, hi B].
 * qs_b == NULL: the high half is zero. */
static inline __m512i unpack_nibbles(const unsigned char *qs_a, const unsigned char *qs_b)
{
    __m128i a = _mm_loadu_si128((const void *)qs_a);
    __m128i b = qs_b ? _mm_loadu_si128((const void *)qs_b) : _mm_setzero_si128();
    __m512i ab = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
    __m512i aabb = _mm512_shuffle_i64x2(ab, ab, _MM_SHUFFLE(1, 1, 0, 0));
    __m512i shifted = _mm512_mask_srli_epi16(aabb, 0xff00ff00u, aabb, 4); /* lanes 1 and 3 */
    return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0f));
}

/* The weight blocks at blk and, when `two`, the next one. */
WL_INLINE weight_pair load_weight(const uint32_t type, const unsigned char *blk, const int two)
{
    weight_pair w;
    if (type == WL_TYPE_Q4_0) {
        const unsigned char *next = two ? blk + Q4_BYTES : NULL;
        w.q = unpack_nibbles(blk + 2, next ? next + 2 : NULL);
        w.d = pair_scales(blk, next);
        w.init = _mm512_setzero_si512();
    } else {
        const unsigned char *next = two ? blk + Q8_BYTES : NULL;
        w.q = load_2x32(blk + 2, next ? next + 2 : NULL);
        w.d = pair_scales(blk, next);
        w.init = minus_scaled_group_sums(w.q, (char)0x80);
    }
    return w;
}

/* int32 sums (16 lanes of 4 products) of w * x for a pair of weight and activation blocks. */
WL_INLINE __m512i pair_dot(const uint32_t type, const weight_pair *w, const act_pair *a)
{
    if (type == WL_TYPE_Q4_0)
        return _mm512_dpbusd_epi32(a->init, w->q, a->q);
    return _mm512_dpbusd_epi32(w->init, a->q, w->q);
}

WL_INLINE size_t block_bytes(const uint32_t type)
{
    return type == WL_TYPE_Q4_0 ? Q4_BYTES : Q8_BYTES;
}

/* Accumulates blocks [b, b + 1 + two) of R rows x T tokens into acc. */
WL_INLINE void tile_quant_step(const uint32_t type, const int R, const int T, int64_t b,
                               const int two, const unsigned char *w, size_t w_stride,
                               const unsigned char *x, size_t x_stride, __m256 acc[RMAX][TMAX])
{
    const size_t wbytes = block_bytes(type);
    weight_pair wv[RMAX];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const unsigned char *blk = w + (size_t)r * w_stride + (size_t)b * wbytes;
        wv[r] = load_weight(type, blk, two);
        if (T == 1) /* decode: see QUANT_PREFETCH */
            _mm_prefetch((const char *)blk + QUANT_PREFETCH, _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        act_pair a = load_act(type, x + (size_t)t * x_stride + (size_t)b * Q8_BYTES, two);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 sums = _mm512_cvtepi32_ps(pair_dot(type, &wv[r], &a));
            __m512 d = _mm512_mul_ps(wv[r].d, a.d); /* [d_w * d_x of block b x 8, of b + 1 x 8] */
            acc[r][t] = _mm256_fmadd_ps(_mm512_castps512_ps256(sums), _mm512_castps512_ps256(d),
                                        acc[r][t]);
            if (two)
                acc[r][t] = _mm256_fmadd_ps(_mm512_extractf32x8_ps(sums, 1),
                                            _mm512_extractf32x8_ps(d, 1), acc[r][t]);
        }
    }
}

/* y[t * ldy + r * ystep] = dot(row r, token t) for R rows x T tokens of quantized weights;
 * x holds Q8_0 activation rows. */
WL_INLINE void tile_quant(const uint32_t type, const int R, const int T, int64_t nb,
                          const unsigned char *w, size_t w_stride, const unsigned char *x,
                          size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    __m256 acc[RMAX][TMAX]; /* the 8 canonical lanes */
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2)
        tile_quant_step(type, R, T, b, 1, w, w_stride, x, x_stride, acc);
    if (b < nb)
        tile_quant_step(type, R, T, b, 0, w, w_stride, x, x_stride, acc);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r * ystep] = hsum256(acc[r][t]);
}

/* Decode (ntok = 1): one block of four rows r0..r3 (at w + i * ws) into acc01
 * ([r0 | r1]: row r0's 8 canonical lanes in the low 256 bits, r1's in the high ones) and acc23
 * ([r2 | r3]). Per block and pair of rows: one vpdpbusd (the activation block broadcast to both
 * halves, prepared once for the four rows), one int-to-float conversion and one 512-bit FMA
 * with [d_w(r) * d_x x 8 | d_w(r') * d_x x 8]. Each lane still takes its blocks one after the
 * other in order, so the bits are the canonical ones. The activations are the signed operand
 * for both weight kinds, and the int32 sums are the exact canonical isum either way:
 *   - Q4_0: a row's 16 bytes go to both 128-bit lanes of its half, [lo | hi], the high copy
 *     shifted down 4 (values 0..15, then 16..31), and the sums start at -8 * sum(x);
 *   - Q8_0: the weights are shifted to unsigned (w + 128) and the sums start at -128 * sum(x). */
WL_INLINE void decode_step4(const uint32_t type, const unsigned char *w, size_t ws,
                            const unsigned char *xblk, __m512 *acc01, __m512 *acc23)
{
    const __m512i xq = _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(xblk + 2)));
    const __m512i init = minus_scaled_group_sums(xq, type == WL_TYPE_Q4_0 ? 8 : (char)0x80);
    const unsigned char *w0 = w, *w1 = w + ws, *w2 = w + 2 * ws, *w3 = w + 3 * ws;
    /* d_w * d_x of the four rows, then [d0 x 8 | d1 x 8] and [d2 x 8 | d3 x 8] */
    __m128i h01 = _mm_unpacklo_epi16(_mm_loadu_si32(w0), _mm_loadu_si32(w1));
    __m128i h23 = _mm_unpacklo_epi16(_mm_loadu_si32(w2), _mm_loadu_si32(w3));
    __m128 dw = _mm_cvtph_ps(_mm_unpacklo_epi32(h01, h23));
    __m128 dx = _mm_cvtph_ps(_mm_set1_epi16((short)wl_load_u16(xblk)));
    __m512 d = _mm512_castps128_ps512(_mm_mul_ps(dw, dx));
    __m512 d01 = _mm512_permutexvar_ps(
        _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), d);
    __m512 d23 = _mm512_permutexvar_ps(
        _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2), d);
    __m512i q01, q23;
    if (type == WL_TYPE_Q4_0) {
        /* [r0 lo | r0 hi | r1 lo | r1 hi]: each row's 16 bytes twice, the second copy shifted */
        q01 = _mm512_mask_broadcast_i32x4(
            _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)(w0 + 2))), 0xff00,
            _mm_loadu_si128((const void *)(w1 + 2)));
        q23 = _mm512_mask_broadcast_i32x4(
            _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)(w2 + 2))), 0xff00,
            _mm_loadu_si128((const void *)(w3 + 2)));
        q01 = _mm512_and_si512(_mm512_mask_srli_epi16(q01, 0xff00ff00u, q01, 4),
                               _mm512_set1_epi8(0x0f));
        q23 = _mm512_and_si512(_mm512_mask_srli_epi16(q23, 0xff00ff00u, q23, 4),
                               _mm512_set1_epi8(0x0f));
    } else {
        q01 = _mm512_xor_si512(load_2x32(w0 + 2, w1 + 2), _mm512_set1_epi8((char)0x80));
        q23 = _mm512_xor_si512(load_2x32(w2 + 2, w3 + 2), _mm512_set1_epi8((char)0x80));
    }
    *acc01 = _mm512_fmadd_ps(d01, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init, q01, xq)), *acc01);
    *acc23 = _mm512_fmadd_ps(d23, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init, q23, xq)), *acc23);
}

/* y[0], y[ystep], y[2 * ystep], y[3 * ystep] = rows w, w + ws, w + 2 * ws, w + 3 * ws x the
 * activation row x (nb blocks): the four quarter rows of WL_DECODE_ROWS. */
WL_INLINE void decode_quant4(const uint32_t type, int64_t nb, const unsigned char *w, size_t ws,
                             const unsigned char *x, float *y, size_t ystep, const size_t ahead_bytes)
{
    const size_t wbytes = block_bytes(type);
    __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const unsigned char *wb = w + (size_t)b * wbytes, *xb = x + (size_t)b * Q8_BYTES;
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) { /* see QUANT_PREFETCH */
            const char *ahead = (const char *)wb + (size_t)r * ws + ahead_bytes;
            _mm_prefetch(ahead, _MM_HINT_T0);
            if (type == WL_TYPE_Q8_0) /* 68-byte steps: else 1 line in 17 is missed (-12%) */
                _mm_prefetch(ahead + 64, _MM_HINT_T0);
        }
        decode_step4(type, wb, ws, xb, &acc01, &acc23);
        decode_step4(type, wb + wbytes, ws, xb + Q8_BYTES, &acc01, &acc23);
    }
    if (b < nb)
        decode_step4(type, w + (size_t)b * wbytes, ws, x + (size_t)b * Q8_BYTES, &acc01, &acc23);
    y[0] = hsum256(_mm512_castps512_ps256(acc01));
    y[ystep] = hsum256(_mm512_extractf32x8_ps(acc01, 1));
    y[2 * ystep] = hsum256(_mm512_castps512_ps256(acc23));
    y[3 * ystep] = hsum256(_mm512_extractf32x8_ps(acc23, 1));
}

WL_INLINE void matmul_quant(const uint32_t type, int64_t n, const void *w, size_t w_stride,
                            int64_t r0, int64_t r1, const void *x, size_t x_stride, int64_t ntok,
                            float *y, size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    const int64_t nb = n / WL_QK;
    if (ntok == 1) {
        const size_t ahead = wl_cpu()->amd ? QUANT_PREFETCH : QUANT_PREFETCH_OTHER;
#define QUANT_DECODE(RR, WR, WS, YO, YS)                                                       \
    if ((RR) == 4)                                                                             \
        decode_quant4(type, nb, WR, WS, xb, YO, YS, ahead);                                    \
    else                                                                                       \
        tile_quant(type, 1, 1, nb, WR, WS, xb, 0, YO, 1, YS)
        WL_DECODE_ROWS(QUANT_DECODE);
#undef QUANT_DECODE
        return;
    }
    const int64_t tb = wl_token_block((size_t)nb * Q8_BYTES, TMAX);
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

/* ---- activation converters, bit-identical to the scalar ones ----------------------------- */

/* F32 -> F16: the hardware conversion rounds to nearest even exactly as wl_fp32_to_fp16 does. */
static void quantize_act_f16(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(void *)(out + 2 * i), h);
    }
    if (i < n) {
        const __mmask16 m = first_lanes(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(out + 2 * i, m, h);
    }
}

/* F32 -> BF16 in integer arithmetic (wl_fp32_to_bf16's rule): (u + 0x7fff + lsb) >> 16, NaN
 * kept quiet. Not vcvtneps2bf16, which flushes denormals to zero. */
static void quantize_act_bf16(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i quiet = _mm512_set1_epi32(0x40);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes(WL_MIN(n - i, 16));
        __m512i u = _mm512_maskz_loadu_epi32(m, x + i);
        __m512i hi = _mm512_srli_epi32(u, 16);
        __m512i lsb = _mm512_and_si512(hi, one);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, lsb)), 16);
        __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, abs_mask), inf);
        r = _mm512_mask_or_epi32(r, nan, hi, quiet);
        _mm256_mask_storeu_epi16(out + 2 * i, m, _mm512_cvtepi32_epi16(r));
    }
}

/* Round to nearest, halves to even; an immediate operand (a macro, not a variable, for clang). */
#define NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* F32 -> Q8_0, bit-identical to wl_quantize_act_block_q8_0. */

static void quantize_act_q8_0(const float *x, void *dst, int64_t n)
{
    unsigned char *out = dst;
    for (int64_t b = 0; b < n / WL_QK; b++) {
        const float *xb = x + b * WL_QK;
        unsigned char *ob = out + (size_t)b * Q8_BYTES;
        __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax =
            _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const uint16_t dh = wl_fp32_to_fp16(amax / 127.0f);
        if (dh == 0) { /* a zero scale: the scalar rule (all-zero quants) */
            wl_quantize_act_block_q8_0(xb, ob);
            continue;
        }
        const float id = 127.0f / amax;
        memcpy(ob, &dh, sizeof dh);
        const __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvttps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, vid), NEAREST));
        __m512i i1 = _mm512_cvttps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, vid), NEAREST));
        __m128i q0 = _mm512_cvtepi32_epi8(i0), q1 = _mm512_cvtepi32_epi8(i1); /* in [-127, 127] */
        _mm_storeu_si128((__m128i *)(void *)(ob + 2), q0);
        _mm_storeu_si128((__m128i *)(void *)(ob + 18), q1);
    }
}

void wl_kernels_init_avx512(wl_kernel_table *t, const wl_cpu_features *f)
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
    if (f->avx512vnni) {
        t->vec_dot[WL_TYPE_Q8_0] = vec_dot_q8_0;
        t->vec_dot[WL_TYPE_Q4_0] = vec_dot_q4_0;
        t->matmul[WL_TYPE_Q8_0] = matmul_q8_0;
        t->matmul[WL_TYPE_Q4_0] = matmul_q4_0;
    }
    wl_kernels_init_quants_avx512(t, f);
    wl_kernels_init_kquants_avx512(t, f);
}
