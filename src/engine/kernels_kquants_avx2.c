/* kernels_kquants_avx2.c - the k-quants (Q2_K..Q6_K) x Q8_K for the AVX2 family.
 *
 * The canonical arithmetic of kernels.h, bit for bit like kernels_scalar.c: per super-block,
 * 8 int32 lanes S_l (lane l takes values 32g + 4l .. 32g + 4l + 3 of every group g of 32 values,
 * times the scale of its sub-block), which are exactly the lanes of maddubs (4 products -> 2
 * int16) followed by madd with the scales (-> 1 int32); the format's min / offset terms from
 * the activation's bsums; then one or two FMAs into the 8 float lanes.
 *
 * Every weight super-block is unpacked once per tile into a kq_weight in L1 (the quants of each
 * group of 32 as maddubs' unsigned operand, and the scales widened to int16 lanes), then
 * multiplied with the activations of each token of the tile, so prefill does the unpacking
 * once per (row, super-block) rather than once per token. Decode takes four rows at a time
 * from the four quarters of the row range, as the other kernels do. */
#include <immintrin.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RMAX 4 /* rows per tile */
#define TMAX 4 /* tokens per tile */

#define Q8K_D 0      /* byte offsets in a Q8_K block: float d */
#define Q8K_QS 4     /* 256 int8 */
#define Q8K_BSUMS 260 /* 16 int16 */

/* The canonical sum of 8 lanes: ((0+4) + (2+6)) + ((1+5) + (3+7)). */
static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float load_half(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return wl_fp16_to_fp32(h);
}

static inline float load_float(const unsigned char *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

static inline uint32_t load_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __m256i load256(const unsigned char *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* ---- one weight super-block, unpacked ---------------------------------------------------- */

typedef struct {
    __m256i q[8];  /* group g (values 32g..32g+31): unsigned quants for maddubs (Q3_K: |q|) */
    __m256i qs[8]; /* Q3_K only: the signed quants, whose signs go onto the activations */
    __m256i sc[8]; /* group g: the scale of each maddubs int16 lane (lanes 0-7: values 0..15) */
    __m256i mins;  /* Q2_K: 16 int16 mins; Q4_K / Q5_K: 8 int16 mins (low half); Q6_K: the
                    * 16 int16 scales (for the -32 offset) */
    float d, dmin; /* the super-block scales, as floats */
} kq_weight;

/* Per group g, the int16 scale vector [s16[2g] x 8, s16[2g + 1] x 8] of 16 int16 scales s16
 * (one per 16 values). */
static inline void scales_by_16(__m256i s16, __m256i sc[8])
{
    const __m256i lo = _mm256_permute2x128_si256(s16, s16, 0x00); /* scales 0..7 twice */
    const __m256i hi = _mm256_permute2x128_si256(s16, s16, 0x11); /* scales 8..15 twice */
    for (int g = 0; g < 4; g++) {
        /* low 128 bits: int16 2g; high 128 bits: int16 2g + 1 */
        const char a = (char)(4 * g), b = (char)(4 * g + 2);
        const __m256i pick = _mm256_setr_epi8(a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a,
                                              a + 1, a, a + 1, a, a + 1, b, b + 1, b, b + 1, b,
                                              b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b,
                                              b + 1);
        sc[g] = _mm256_shuffle_epi8(lo, pick);
        sc[g + 4] = _mm256_shuffle_epi8(hi, pick);
    }
}

/* Per group g, the same int16 scale s8[g] in all 16 lanes (8 scales, one per 32 values). */
static inline void scales_by_32(__m128i s8, __m256i sc[8])
{
    const __m256i both = _mm256_broadcastsi128_si256(s8);
    for (int g = 0; g < 8; g++) {
        const char a = (char)(2 * g);
        sc[g] = _mm256_shuffle_epi8(both, _mm256_setr_epi8(a, a + 1, a, a + 1, a, a + 1, a, a + 1,
                                                           a, a + 1, a, a + 1, a, a + 1, a, a + 1,
                                                           a, a + 1, a, a + 1, a, a + 1, a, a + 1,
                                                           a, a + 1, a, a + 1, a, a + 1, a, a + 1));
    }
}

/* The 2-bit fields of Q2_K / Q3_K: group 4j + s is bits 2s..2s+1 of qs[32j .. 32j + 31]. */
static inline void two_bit_groups(const unsigned char *qs, __m256i q[8])
{
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int j = 0; j < 2; j++) {
        const __m256i bits = load256(qs + 32 * j);
        for (int s = 0; s < 4; s++)
            q[4 * j + s] = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), m3);
    }
}

/* Q4_K / Q5_K: group 2j is the low nibbles of qs[32j .. 32j + 31], group 2j + 1 the high. */
static inline void nibble_groups(const unsigned char *qs, __m256i q[8])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
        const __m256i bits = load256(qs + 32 * j);
        q[2 * j] = _mm256_and_si256(bits, m4);
        q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
    }
}

/* Bit g of each byte of h, as 0 / 1 bytes. */
static inline __m256i bit_of_bytes(__m256i h, int g)
{
    return _mm256_and_si256(_mm256_srli_epi16(h, g), _mm256_set1_epi8(1));
}

/* The 8 6-bit scales (s8) and mins (m8) of Q4_K / Q5_K (quant.h), as 8 bytes each. */
static inline void k4_scales_mins(const unsigned char *scales, uint8_t s8[8], uint8_t m8[8])
{
    const uint32_t a0 = load_u32(scales), a1 = load_u32(scales + 4), a2 = load_u32(scales + 8);
    const uint32_t s_lo = a0 & 0x3f3f3f3fu, m_lo = a1 & 0x3f3f3f3fu;
    const uint32_t s_hi = (a2 & 0x0f0f0f0fu) | (((a0 >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((a2 >> 4) & 0x0f0f0f0fu) | (((a1 >> 6) & 0x03030303u) << 4);
    memcpy(s8, &s_lo, 4);
    memcpy(s8 + 4, &s_hi, 4);
    memcpy(m8, &m_lo, 4);
    memcpy(m8 + 4, &m_hi, 4);
}

/* The 16 signed 6-bit scales of Q3_K (quant.h), as 16 bytes. */
static inline __m128i q3_k_scales(const unsigned char *scales)
{
    const uint32_t a0 = load_u32(scales), a1 = load_u32(scales + 4), a2 = load_u32(scales + 8);
    const uint32_t m2 = 0x03030303u, m4 = 0x0f0f0f0fu;
    __m128i s = _mm_setr_epi32((int)((a0 & m4) | (((a2 >> 0) & m2) << 4)),
                               (int)((a1 & m4) | (((a2 >> 2) & m2) << 4)),
                               (int)(((a0 >> 4) & m4) | (((a2 >> 4) & m2) << 4)),
                               (int)(((a1 >> 4) & m4) | (((a2 >> 6) & m2) << 4)));
    return _mm_sub_epi8(s, _mm_set1_epi8(32));
}

WL_INLINE void unpack_q2_k(const unsigned char *b, kq_weight *w)
{
    const __m128i sm = _mm_loadu_si128((const __m128i *)(const void *)b); /* scales[16] */
    const __m128i m4 = _mm_set1_epi8(0x0f);
    two_bit_groups(b + 16, w->q);
    scales_by_16(_mm256_cvtepu8_epi16(_mm_and_si128(sm, m4)), w->sc);
    w->mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), m4));
    w->d = load_half(b + 80);
    w->dmin = load_half(b + 82);
}

WL_INLINE void unpack_q3_k(const unsigned char *b, kq_weight *w)
{
    const __m256i hmask = load256(b);
    __m256i low[8];
    two_bit_groups(b + 32, low);
    for (int g = 0; g < 8; g++) {
        /* q = low + 4 * bit - 4, in -4..3 */
        __m256i q = _mm256_or_si256(low[g], _mm256_slli_epi16(bit_of_bytes(hmask, g), 2));
        w->qs[g] = _mm256_sub_epi8(q, _mm256_set1_epi8(4));
        w->q[g] = _mm256_sign_epi8(w->qs[g], w->qs[g]);
    }
    scales_by_16(_mm256_cvtepi8_epi16(q3_k_scales(b + 96)), w->sc);
    w->d = load_half(b + 108);
    w->dmin = 0.0f;
}

WL_INLINE void unpack_k4_scales(const unsigned char *b, kq_weight *w)
{
    uint8_t s8[8], m8[8];
    k4_scales_mins(b + 4, s8, m8);
    scales_by_32(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)s8)), w->sc);
    w->mins = _mm256_castsi128_si256(
        _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)m8)));
    w->d = load_half(b);
    w->dmin = load_half(b + 2);
}

WL_INLINE void unpack_q4_k(const unsigned char *b, kq_weight *w)
{
    nibble_groups(b + 16, w->q);
    unpack_k4_scales(b, w);
}

WL_INLINE void unpack_q5_k(const unsigned char *b, kq_weight *w)
{
    const __m256i qh = load256(b + 16);
    nibble_groups(b + 48, w->q);
    for (int g = 0; g < 8; g++)
        w->q[g] = _mm256_or_si256(w->q[g], _mm256_slli_epi16(bit_of_bytes(qh, g), 4));
    unpack_k4_scales(b, w);
}

WL_INLINE void unpack_q6_k(const unsigned char *b, kq_weight *w)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = load256(b + 64 * h), l1 = load256(b + 64 * h + 32);
        const __m256i hb = load256(b + 128 + 32 * h);
        /* the 2 high bits of group 4h + k are bits 2k..2k+1 of qh, moved to bits 4..5 */
        const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(3)), 4);
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(12)), 2);
        const __m256i h2 = _mm256_and_si256(hb, _mm256_set1_epi8(48));
        const __m256i h3 = _mm256_srli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8((char)192)), 2);
        w->q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
        w->q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
        w->q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
        w->q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
    }
    const __m256i s16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 192)));
    scales_by_16(s16, w->sc);
    w->mins = s16;
    w->d = load_half(b + 208);
    w->dmin = 0.0f;
}

WL_INLINE void unpack(const uint32_t type, const unsigned char *b, kq_weight *w)
{
    switch (type) {
    case WL_TYPE_Q2_K: unpack_q2_k(b, w); break;
    case WL_TYPE_Q3_K: unpack_q3_k(b, w); break;
    case WL_TYPE_Q4_K: unpack_q4_k(b, w); break;
    case WL_TYPE_Q5_K: unpack_q5_k(b, w); break;
    default: unpack_q6_k(b, w); break;
    }
}

/* ---- one super-block of one row with one token ------------------------------------------- */

/* One token's super-block, loaded once for every row of the tile. */
typedef struct {
    __m256i x[8];   /* the 8 groups of 32 int8 */
    __m256i bsums;  /* 16 int16 */
    float d;
} kq_act;

WL_INLINE void load_act(const unsigned char *b, kq_act *a)
{
    for (int g = 0; g < 8; g++)
        a->x[g] = load256(b + Q8K_QS + 32 * g);
    a->bsums = load256(b + Q8K_BSUMS);
    a->d = load_float(b + Q8K_D);
}

/* The 8 int32 lanes S_l of a weight super-block with an activation super-block. */
WL_INLINE __m256i lanes(const uint32_t type, const kq_weight *w, const kq_act *a)
{
    __m256i s = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
        __m256i x = type == WL_TYPE_Q3_K ? _mm256_sign_epi8(a->x[g], w->qs[g]) : a->x[g];
        s = _mm256_add_epi32(s, _mm256_madd_epi16(w->sc[g], _mm256_maddubs_epi16(w->q[g], x)));
    }
    return s;
}

/* The per-(row, token) accumulators: the 8 canonical lanes, and Q4_K's 4 min lanes / Q5_K's
 * running min sum (lane 0). */
typedef struct {
    __m256 acc;
    __m128 macc;
} kq_acc;

/* One super-block of one (row, token) pair into its accumulators, as kernels_scalar.c does. */
WL_INLINE void kq_step(const uint32_t type, const kq_weight *w, const kq_act *a, kq_acc *c)
{
    const __m256i s = lanes(type, w, a);
    const __m256 d = _mm256_set1_ps(a->d * w->d);
    switch (type) {
    case WL_TYPE_Q2_K: {
        const __m256i m = _mm256_madd_epi16(w->mins, a->bsums);
        c->acc = _mm256_fmadd_ps(_mm256_set1_ps(-a->d * w->dmin), _mm256_cvtepi32_ps(m), c->acc);
        c->acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), c->acc);
        break;
    }
    case WL_TYPE_Q4_K:
    case WL_TYPE_Q5_K: {
        /* the sums over sub-blocks of 32: B[2k] + B[2k + 1] */
        const __m128i b32 = _mm_hadd_epi16(_mm256_castsi256_si128(a->bsums),
                                           _mm256_extracti128_si256(a->bsums, 1));
        const __m128i prod = _mm_madd_epi16(_mm256_castsi256_si128(w->mins), b32);
        const float dmin = -a->d * w->dmin;
        if (type == WL_TYPE_Q4_K) {
            c->macc = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), c->macc);
        } else {
            __m128i t = _mm_add_epi32(prod, _mm_unpackhi_epi64(prod, prod));
            t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
            c->macc = _mm_fmadd_ss(_mm_set_ss(dmin), _mm_cvtepi32_ps(t), c->macc);
        }
        c->acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), c->acc);
        break;
    }
    case WL_TYPE_Q6_K: {
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(a->bsums, w->mins), 5);
        c->acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(s, corr)), c->acc);
        break;
    }
    default: /* Q3_K */
        c->acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), c->acc);
        break;
    }
}

WL_INLINE float kq_result(const uint32_t type, const kq_acc *c)
{
    if (type == WL_TYPE_Q4_K) { /* the 4 min lanes: (0 + 2) + (1 + 3) */
        __m128 m = _mm_add_ps(c->macc, _mm_movehl_ps(c->macc, c->macc));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        return hsum8(c->acc) + _mm_cvtss_f32(m);
    }
    if (type == WL_TYPE_Q5_K)
        return hsum8(c->acc) + _mm_cvtss_f32(c->macc);
    return hsum8(c->acc);
}

/* ---- tiles and matmul -------------------------------------------------------------------- */

/* y[t * ldy + r * ystep] for R rows x T tokens; nb super-blocks per row. */
WL_INLINE void tile_kq(const uint32_t type, const int R, const int T, int64_t nb,
                       const unsigned char *w, size_t w_stride, const unsigned char *x,
                       size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    const size_t wbytes = wl_type_get(type)->type_size;
    kq_acc c[RMAX][TMAX];
    kq_weight wv[RMAX];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            c[r][t].acc = _mm256_setzero_ps();
            c[r][t].macc = _mm_setzero_ps();
        }
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < R; r++)
            unpack(type, w + (size_t)r * w_stride + (size_t)b * wbytes, &wv[r]);
        for (int t = 0; t < T; t++) {
            kq_act a;
            load_act(x + (size_t)t * x_stride + (size_t)b * sizeof(wl_block_q8_k), &a);
            for (int r = 0; r < R; r++)
                kq_step(type, &wv[r], &a, &c[r][t]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r * ystep] = kq_result(type, &c[r][t]);
}

WL_INLINE void matmul_kq(const uint32_t type, int64_t n, const void *w, size_t w_stride,
                         int64_t r0, int64_t r1, const void *x, size_t x_stride, int64_t ntok,
                         float *y, size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    const int64_t nb = n / WL_QK_K;
    if (ntok == 1) {
#define KQ_DECODE(RR, WR, WS, YO, YS) tile_kq(type, RR, 1, nb, WR, WS, xb, 0, YO, 1, YS)
        WL_DECODE_ROWS(KQ_DECODE);
#undef KQ_DECODE
        return;
    }
    const int64_t tb = wl_token_block((size_t)nb * sizeof(wl_block_q8_k), TMAX);
#define KQ_TILE(RR, TT)                                                                        \
    case (RR) * 8 + (TT):                                                                      \
        tile_kq(type, WL_MIN(RR, RMAX), WL_MIN(TT, TMAX), nb, wr, w_stride, xr, x_stride, yo,  \
                ldy, 1);                                                                       \
        break;
    WL_FOR_EACH_TILE(tb, RMAX, TMAX, WL_ALL_TILES(KQ_TILE))
#undef KQ_TILE
}

#define DEFINE_KQ_KERNELS(suffix, TYPE)                                                        \
    static void matmul_##suffix(int64_t n, const void *w, size_t w_stride, int64_t r0,         \
                                int64_t r1, const void *x, size_t x_stride, int64_t ntok,      \
                                float *y, size_t ldy)                                          \
    {                                                                                          \
        matmul_kq(TYPE, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);                    \
    }                                                                                          \
    static void vec_dot_##suffix(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                          \
        tile_kq(TYPE, 1, 1, n / WL_QK_K, w, 0, x, 0, out, 1, 1);                               \
    }

DEFINE_KQ_KERNELS(q2_k, WL_TYPE_Q2_K)
DEFINE_KQ_KERNELS(q3_k, WL_TYPE_Q3_K)
DEFINE_KQ_KERNELS(q4_k, WL_TYPE_Q4_K)
DEFINE_KQ_KERNELS(q5_k, WL_TYPE_Q5_K)
DEFINE_KQ_KERNELS(q6_k, WL_TYPE_Q6_K)

void wl_kernels_init_kquants_avx2(wl_kernel_table *t)
{
    t->vec_dot[WL_TYPE_Q2_K] = vec_dot_q2_k;
    t->vec_dot[WL_TYPE_Q3_K] = vec_dot_q3_k;
    t->vec_dot[WL_TYPE_Q4_K] = vec_dot_q4_k;
    t->vec_dot[WL_TYPE_Q5_K] = vec_dot_q5_k;
    t->vec_dot[WL_TYPE_Q6_K] = vec_dot_q6_k;
    t->matmul[WL_TYPE_Q2_K] = matmul_q2_k;
    t->matmul[WL_TYPE_Q3_K] = matmul_q3_k;
    t->matmul[WL_TYPE_Q4_K] = matmul_q4_k;
    t->matmul[WL_TYPE_Q5_K] = matmul_q5_k;
    t->matmul[WL_TYPE_Q6_K] = matmul_q6_k;
}
