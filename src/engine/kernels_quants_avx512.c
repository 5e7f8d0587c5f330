/* kernels_quants_avx512.c - Q4_1, Q5_0 and Q5_1 x Q8_0 / Q8_1 for the AVX-512 family (VNNI).
 *
 * The canonical arithmetic of kernels.h, bit for bit like kernels_scalar.c: per block, 8 exact
 * int32 lane sums isum_l (values 4l..4l+3), then acc[l] = fma(d_w * d_x, isum_l, acc[l]) in
 * block order; Q4_1 / Q5_1 also run summs = fma(m_w, s_x, summs) per block, in block order, and
 * add it after the 8-lane sum.
 *
 * Same scheme as the Q4_0 kernel of kernels_avx512.c: blocks are taken two at a time, the 64
 * quants of a pair in one 512-bit vector (first block in the low 256 bits), and one vpdpbusd
 * gives the 16 int32 lane sums of both blocks for one (row, token). The weights' quants are the
 * unsigned operand (nibbles 0..15, or 0..31 with the fifth bit), the activations the signed one:
 *   - Q5_0: the stored q is value + 16, so sum((q - 16) x) = sum(q x) - 16 sum(x); the second
 *     term is computed once per activation pair (for all rows of a tile) and starts the sum;
 *   - Q4_1 / Q5_1: q is unsigned as stored (the min goes through summs).
 * The fifth bits of both blocks are one 64-bit mask, bit j for byte j of the pair vector, so
 * they are merged with one masked byte add.
 * The two 256-bit halves of the int32 sums then go into the 8-lane float accumulator one after
 * the other, first block first. Tiles of up to 4 rows x 4 tokens, decode rows from the four
 * quarters of the range with a software prefetch, L2-sized token blocks (kernels_impl.h). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RMAX 4 /* rows per tile */
#define TMAX 4 /* tokens per tile (prefill) */

/* Decode: a software prefetch this many bytes ahead in each row stream (see kernels_avx512.c:
 * the hardware prefetcher alone runs too few lines ahead of quantized rows). */
#define QUANT_PREFETCH 4096

/* The canonical sum of 8 lanes: ((0+4) + (2+6)) + ((1+5) + (3+7)). */
static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline uint32_t load_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- block layouts ----------------------------------------------------------------------- */

/* Where the parts of a block sit (quant.h): the quants' nibbles, the fifth bits, the min. */
typedef struct {
    size_t bytes; /* block size */
    size_t qs;    /* offset of the 16 bytes of nibbles */
    size_t qh;    /* offset of the 32 fifth bits, or 0 */
    size_t m;     /* offset of the min (a half), or 0 */
} layout;

WL_INLINE layout layout_of(const uint32_t type)
{
    switch (type) {
    case WL_TYPE_Q4_1: return (layout){20, 4, 0, 2};
    case WL_TYPE_Q5_0: return (layout){22, 6, 2, 0};
    default: return (layout){24, 8, 4, 2}; /* Q5_1 */
    }
}

/* Q4_1 / Q5_1 pair with Q8_1 activations (d, s, 32 int8), Q5_0 with Q8_0 (d, 32 int8). */
WL_INLINE int with_min(const uint32_t type)
{
    return type != WL_TYPE_Q5_0;
}

WL_INLINE size_t act_bytes(const uint32_t type)
{
    return with_min(type) ? sizeof(wl_block_q8_1) : sizeof(wl_block_q8_0);
}

/* ---- pairs of blocks --------------------------------------------------------------------- */

/* Two activation blocks, ready for every weight row of a tile. */
typedef struct {
    __m512i q;    /* 64 int8: block b in the low half, b + 1 in the high half */
    __m512i init; /* Q5_0: -16 * (sum of each group of 4 values), per int32 lane; else 0 */
    __m512 d;     /* the two scales, each 8 times */
    float s[2];   /* Q8_1: d * sum(q) of each block */
} act_pair;

/* Two weight blocks, ready for every token of a tile. */
typedef struct {
    __m512i q;  /* 64 unsigned quants (0..15 or 0..31) in value order, block b first */
    __m512 d;   /* the two scales, each 8 times */
    float m[2]; /* Q4_1 / Q5_1: the two mins */
} weight_pair;

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
    __m512i lo = _mm512_zextsi256_si512(_mm256_loadu_si256((const void *)a));
    if (b == NULL)
        return lo;
    return _mm512_inserti64x4(lo, _mm256_loadu_si256((const void *)b), 1);
}

/* The 64 nibbles of two blocks in value order: 128-bit lanes [low nibbles of a (values 0..15),
 * high nibbles of a (16..31), low of b, high of b]. qs_b == NULL: the high half is zero. */
static inline __m512i unpack_nibbles(const unsigned char *qs_a, const unsigned char *qs_b)
{
    __m128i a = _mm_loadu_si128((const void *)qs_a);
    __m128i b = qs_b ? _mm_loadu_si128((const void *)qs_b) : _mm_setzero_si128();
    __m512i ab = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
    __m512i aabb = _mm512_shuffle_i64x2(ab, ab, _MM_SHUFFLE(1, 1, 0, 0));
    __m512i shifted = _mm512_mask_srli_epi16(aabb, 0xff00ff00u, aabb, 4); /* lanes 1 and 3 */
    return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0f));
}

WL_INLINE act_pair load_act(const uint32_t type, const unsigned char *blk, const int two)
{
    const size_t bytes = act_bytes(type), qs = with_min(type) ? 4 : 2;
    const unsigned char *next = two ? blk + bytes : NULL;
    act_pair a;
    a.q = load_2x32(blk + qs, next ? next + qs : NULL);
    a.d = pair_scales(blk, next);
    if (with_min(type)) {
        a.init = _mm512_setzero_si512();
        a.s[0] = _cvtsh_ss(wl_load_u16(blk + 2));
        a.s[1] = next ? _cvtsh_ss(wl_load_u16(next + 2)) : 0.0f;
    } else { /* Q5_0: -16 * (x0 + x1 + x2 + x3) per lane */
        __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(16), a.q);
        a.init = _mm512_sub_epi32(_mm512_setzero_si512(), sums);
        a.s[0] = a.s[1] = 0.0f;
    }
    return a;
}

WL_INLINE weight_pair load_weight(const uint32_t type, const unsigned char *blk, const int two)
{
    const layout L = layout_of(type);
    const unsigned char *next = two ? blk + L.bytes : NULL;
    weight_pair w;
    w.q = unpack_nibbles(blk + L.qs, next ? next + L.qs : NULL);
    w.d = pair_scales(blk, next);
    if (L.qh) { /* bit j of the 64 fifth bits belongs to byte j of the pair */
        uint64_t bits = load_u32(blk + L.qh);
        if (next)
            bits |= (uint64_t)load_u32(next + L.qh) << 32;
        w.q = _mm512_mask_add_epi8(w.q, (__mmask64)bits, w.q, _mm512_set1_epi8(16));
    }
    w.m[0] = w.m[1] = 0.0f;
    if (L.m) {
        w.m[0] = _cvtsh_ss(wl_load_u16(blk + L.m));
        w.m[1] = next ? _cvtsh_ss(wl_load_u16(next + L.m)) : 0.0f;
    }
    return w;
}

/* Accumulators of one (row, token): the 8 canonical lanes and the running min sum. */
typedef struct {
    __m256 acc;
    float summs;
} q_acc;

/* Blocks [b, b + 1 + two) of R rows x T tokens into their accumulators. */
WL_INLINE void tile_step(const uint32_t type, const int R, const int T, int64_t b, const int two,
                         const unsigned char *w, size_t w_stride, const unsigned char *x,
                         size_t x_stride, q_acc c[RMAX][TMAX])
{
    const size_t wbytes = layout_of(type).bytes, xbytes = act_bytes(type);
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
        act_pair a = load_act(type, x + (size_t)t * x_stride + (size_t)b * xbytes, two);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 sums = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(a.init, wv[r].q, a.q));
            __m512 d = _mm512_mul_ps(wv[r].d, a.d); /* [d_w * d_x of block b x 8, of b + 1 x 8] */
            c[r][t].acc = _mm256_fmadd_ps(_mm512_castps512_ps256(sums), _mm512_castps512_ps256(d),
                                          c[r][t].acc);
            if (two)
                c[r][t].acc = _mm256_fmadd_ps(_mm512_extractf32x8_ps(sums, 1),
                                              _mm512_extractf32x8_ps(d, 1), c[r][t].acc);
            if (with_min(type)) {
                c[r][t].summs = fmaf(wv[r].m[0], a.s[0], c[r][t].summs);
                if (two)
                    c[r][t].summs = fmaf(wv[r].m[1], a.s[1], c[r][t].summs);
            }
        }
    }
}

/* y[t * ldy + r * ystep] = dot(row r, token t) for R rows x T tokens of nb blocks. */
WL_INLINE void tile_quant(const uint32_t type, const int R, const int T, int64_t nb,
                          const unsigned char *w, size_t w_stride, const unsigned char *x,
                          size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    q_acc c[RMAX][TMAX];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            c[r][t].acc = _mm256_setzero_ps();
            c[r][t].summs = 0.0f;
        }
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2)
        tile_step(type, R, T, b, 1, w, w_stride, x, x_stride, c);
    if (b < nb)
        tile_step(type, R, T, b, 0, w, w_stride, x, x_stride, c);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r * ystep] =
                with_min(type) ? hsum256(c[r][t].acc) + c[r][t].summs : hsum256(c[r][t].acc);
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

DEFINE_QUANT_KERNELS(q4_1, WL_TYPE_Q4_1)
DEFINE_QUANT_KERNELS(q5_0, WL_TYPE_Q5_0)
DEFINE_QUANT_KERNELS(q5_1, WL_TYPE_Q5_1)

void wl_kernels_init_quants_avx512(wl_kernel_table *t, const wl_cpu_features *f)
{
    if (!f->avx512vnni) /* vpdpbusd: without it the table keeps the AVX2 kernels */
        return;
    t->vec_dot[WL_TYPE_Q4_1] = vec_dot_q4_1;
    t->vec_dot[WL_TYPE_Q5_0] = vec_dot_q5_0;
    t->vec_dot[WL_TYPE_Q5_1] = vec_dot_q5_1;
    t->matmul[WL_TYPE_Q4_1] = matmul_q4_1;
    t->matmul[WL_TYPE_Q5_0] = matmul_q5_0;
    t->matmul[WL_TYPE_Q5_1] = matmul_q5_1;
}
