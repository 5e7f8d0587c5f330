/* kernels_kquants_avx512.c - the k-quants (Q2_K..Q6_K) x Q8_K for the AVX-512 family (VNNI).
 *
 * The canonical arithmetic of kernels.h, bit for bit like kernels_scalar.c: per super-block,
 * 8 exact int32 lanes S_l = sum over the groups g of 32 values of sc(g, l) * (the 4 products
 * of values 32g + 4l .. 32g + 4l + 3), sc the scale of their sub-block; the format's min /
 * offset terms from the activation's bsums; then one or two FMAs into the 8 float lanes.
 *
 * Integer sums are exact whatever their order, so the lanes may be computed any way that keeps
 * every partial sum in range. Here two groups of 32 go into one 512-bit vector (group 2k in the
 * low 256 bits, 2k + 1 in the high ones), and per vector
 *     maddubs(q, x)            -> 32 int16 pair sums q0 x0 + q1 x1 (q unsigned, <= 63, and
 *                                 |x| <= 127: at most 16002, no saturation)
 *     vpdpwssd(S, sc, pairs)   -> S + sc * (pair 2j) + sc * (pair 2j + 1) per int32 lane j
 * (VNNI), with sc the int16 scale of each pair. Int32 lane j of S then holds values 4j..4j+3
 * of the low group (j < 8) or 4(j - 8).. of the high one, so S_l = S[l] + S[l + 8] after the
 * four vectors of a super-block: 2 instructions per 64 values where AVX2 needs 6 per 64.
 * Q3_K's quants are signed (-4..3), and AVX-512 has no vpsignb: they go in as q + 4 (0..7),
 * and the activation's pair sums times 4 (maddubs(4, x), once per token for all rows) are
 * subtracted from the pair sums before the scales: (q + 4) x0 + (q' + 4) x1 - 4 (x0 + x1), exact
 * in int16.
 *
 * Every weight super-block is unpacked once per tile (its quants, and its scales spread to one
 * int16 per pair), then multiplied with each token of the tile. Tiles of up to 4 rows x 4
 * tokens; decode takes four rows from the four quarters of the row range (kernels_impl.h), and
 * for Q4_K / Q6_K runs decode_kq4 instead: each row straight from its bytes in registers, and
 * two rows per 512-bit float accumulator. */
#include <immintrin.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RMAX 4 /* rows per tile */
#define TMAX 4 /* tokens per tile */

/* Decode: a software prefetch this many bytes ahead in each row stream (as the other
 * quantized kernels of the family do), of every cache line of a super-block: one line per
 * super-block (of 2 to 4) left Q5_K / Q6_K GEMV a third slower when streaming from memory.
 * With decode_kq4, 6144 beats 4096 (llama-3.2-1b Q4_K_M decode +2%). */
#define KQ_PREFETCH 6144

#define Q8K_D 0       /* byte offsets in a Q8_K block: float d */
#define Q8K_QS 4      /* 256 int8 */
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
    return _mm256_loadu_si256((const void *)p);
}

/* 32 bytes at p in both halves of a vector. */
static inline __m512i load256_twice(const unsigned char *p)
{
    return _mm512_broadcast_i64x4(load256(p));
}

/* ---- one weight super-block, unpacked ---------------------------------------------------- */

typedef struct {
    __m512i q[4];  /* groups 2k (low half) and 2k + 1 (high half): unsigned quants (Q3_K: q + 4) */
    __m512i sc[4]; /* the int16 scale of each of the 32 pairs of q[k] */
    __m256i mins;  /* Q2_K: 16 int16 mins; Q4_K / Q5_K: 8 int16 mins (low half); Q6_K: the
                    * 16 int16 scales (for the -32 offset) */
    float d, dmin; /* the super-block scales, as floats */
} kq_weight;

/* 0, 1, ..., 31: the int16 lane numbers of a vector. */
static const int16_t LANE16[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                   11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                   22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* sc[k] from the int16 scales in `s` (one per `span` = 16 or 32 values): pair i of q[k] (values
 * 2i, 2i + 1 of its 64) belongs to sub-block (64 k + 2 i) / span. */
static inline void spread_scales(__m512i s, int span, __m512i sc[4])
{
    const __m512i lane = _mm512_loadu_si512((const void *)LANE16);
    const int shift = span == 16 ? 3 : 4, per_k = 64 / span;
    for (int k = 0; k < 4; k++) {
        const __m512i idx =
            _mm512_add_epi16(_mm512_set1_epi16((short)(per_k * k)), _mm512_srli_epi16(lane, shift));
        sc[k] = _mm512_permutexvar_epi16(idx, s);
    }
}

/* sc[k] from 16 int16 scales s16, one per 16 values. */
static inline void scales_by_16(__m256i s16, __m512i sc[4])
{
    spread_scales(_mm512_castsi256_si512(s16), 16, sc);
}

/* sc[k] from 8 int16 scales s8, one per 32 values. */
static inline void scales_by_32(__m128i s8, __m512i sc[4])
{
    spread_scales(_mm512_castsi128_si512(s8), 32, sc);
}

/* Bit `lo` of each of the 32 bytes in the low half of bytes2, bit `lo + 1` of those in the high
 * half, as a 64-bit mask (bit j: byte j). */
static inline __mmask64 bit_pair_mask(__m512i bytes2, int lo)
{
    const __m512i sel = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi8((char)(1 << lo)),
                                                _mm512_set1_epi8((char)(1 << (lo + 1))));
    return _mm512_test_epi8_mask(bytes2, sel);
}

/* The 2-bit fields of Q2_K / Q3_K: group 4j + s is bits 2s..2s+1 of qs[32j .. 32j + 31], so
 * q[k] (groups 2k, 2k + 1) takes bytes 32 (k / 2).. shifted by 4 (k % 2) and 4 (k % 2) + 2. */
static inline void two_bit_pairs(const unsigned char *qs, __m512i q[4])
{
    const __m512i m3 = _mm512_set1_epi8(3);
    for (int k = 0; k < 4; k++) {
        const __m512i bits = load256_twice(qs + 32 * (k / 2));
        const __m512i shift = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16((short)(4 * (k % 2))),
                                                      _mm512_set1_epi16((short)(4 * (k % 2) + 2)));
        q[k] = _mm512_and_si512(_mm512_srlv_epi16(bits, shift), m3);
    }
}

/* Q4_K / Q5_K: group 2k is the low nibbles of qs[32k .. 32k + 31], group 2k + 1 the high. */
static inline void nibble_pairs(const unsigned char *qs, __m512i q[4])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; k++) {
        const __m512i bits = load256_twice(qs + 32 * k);
        q[k] = _mm512_and_si512(_mm512_mask_srli_epi16(bits, 0xffff0000u, bits, 4), m4);
    }
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
    const __m128i sm = _mm_loadu_si128((const void *)b); /* scales[16] */
    const __m128i m4 = _mm_set1_epi8(0x0f);
    two_bit_pairs(b + 16, w->q);
    scales_by_16(_mm256_cvtepu8_epi16(_mm_and_si128(sm, m4)), w->sc);
    w->mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), m4));
    w->d = load_half(b + 80);
    w->dmin = load_half(b + 82);
}

WL_INLINE void unpack_q3_k(const unsigned char *b, kq_weight *w)
{
    const __m512i hmask = load256_twice(b);
    two_bit_pairs(b + 32, w->q);
    for (int k = 0; k < 4; k++) /* q + 4 = low bits | hmask bit << 2 */
        w->q[k] = _mm512_mask_add_epi8(w->q[k], bit_pair_mask(hmask, 2 * k), w->q[k],
                                       _mm512_set1_epi8(4));
    scales_by_16(_mm256_cvtepi8_epi16(q3_k_scales(b + 96)), w->sc);
    w->mins = _mm256_setzero_si256();
    w->d = load_half(b + 108);
    w->dmin = 0.0f;
}

WL_INLINE void unpack_k4_scales(const unsigned char *b, kq_weight *w)
{
    uint8_t s8[8], m8[8];
    k4_scales_mins(b + 4, s8, m8);
    scales_by_32(_mm_cvtepu8_epi16(_mm_loadl_epi64((const void *)s8)), w->sc);
    w->mins = _mm256_castsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const void *)m8)));
    w->d = load_half(b);
    w->dmin = load_half(b + 2);
}

WL_INLINE void unpack_q4_k(const unsigned char *b, kq_weight *w)
{
    nibble_pairs(b + 16, w->q);
    unpack_k4_scales(b, w);
}

WL_INLINE void unpack_q5_k(const unsigned char *b, kq_weight *w)
{
    const __m512i qh = load256_twice(b + 16);
    nibble_pairs(b + 48, w->q);
    for (int k = 0; k < 4; k++) /* the fifth bit of group g is bit g of qh */
        w->q[k] = _mm512_mask_add_epi8(w->q[k], bit_pair_mask(qh, 2 * k), w->q[k],
                                       _mm512_set1_epi8(16));
    unpack_k4_scales(b, w);
}

/* Q6_K: for half h of the super-block, groups 4h and 4h + 1 are the low nibbles of
 * ql[64h .. 64h + 63] (one contiguous 64-byte load), groups 4h + 2, 4h + 3 their high nibbles;
 * the two high bits of group 4h + s are bits 2s..2s+1 of qh[32h .. 32h + 31]. */
WL_INLINE void unpack_q6_k(const unsigned char *b, kq_weight *w)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m512i l = _mm512_loadu_si512((const void *)(b + 64 * h));
        const __m512i hb = load256_twice(b + 128 + 32 * h);
        const __m512i s01 = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16(0), _mm512_set1_epi16(2));
        const __m512i s23 = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16(4), _mm512_set1_epi16(6));
        const __m512i h01 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, s01), m3), 4);
        const __m512i h23 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, s23), m3), 4);
        w->q[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4), h01);
        w->q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), h23);
    }
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(b + 192)));
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
    __m512i x[4];  /* groups 2k, 2k + 1: 64 int8 */
    __m512i x4[4]; /* Q3_K only: 4 (x0 + x1) per int16 pair of x[k] */
    __m256i bsums; /* 16 int16 */
    __m128i b32;   /* Q4_K / Q5_K: 8 int16 sums over the sub-blocks of 32, B[2k] + B[2k + 1] */
    float d;
} kq_act;

WL_INLINE void load_act(const uint32_t type, const unsigned char *b, kq_act *a)
{
    for (int k = 0; k < 4; k++) {
        a->x[k] = _mm512_loadu_si512((const void *)(b + Q8K_QS + 64 * k));
        if (type == WL_TYPE_Q3_K)
            a->x4[k] = _mm512_maddubs_epi16(_mm512_set1_epi8(4), a->x[k]);
    }
    a->bsums = load256(b + Q8K_BSUMS);
    if (type == WL_TYPE_Q4_K || type == WL_TYPE_Q5_K)
        a->b32 = _mm_hadd_epi16(_mm256_castsi256_si128(a->bsums),
                                _mm256_extracti128_si256(a->bsums, 1));
    a->d = load_float(b + Q8K_D);
}

/* The 16 int32 partial lanes of a weight super-block with an activation super-block: S_l is
 * lane l plus lane l + 8. */
WL_INLINE __m512i lanes16(const uint32_t type, const kq_weight *w, const kq_act *a)
{
    __m512i s[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}; /* two chains */
    for (int k = 0; k < 4; k++) {
        __m512i pairs = _mm512_maddubs_epi16(w->q[k], a->x[k]);
        if (type == WL_TYPE_Q3_K)
            pairs = _mm512_sub_epi16(pairs, a->x4[k]);
        s[k % 2] = _mm512_dpwssd_epi32(s[k % 2], w->sc[k], pairs);
    }
    return _mm512_add_epi32(s[0], s[1]);
}

/* The 8 int32 lanes S_l of a weight super-block with an activation super-block. */
WL_INLINE __m256i lanes(const uint32_t type, const kq_weight *w, const kq_act *a)
{
    const __m512i t = lanes16(type, w, a);
    return _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
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
        const __m128i prod = _mm_madd_epi16(_mm256_castsi256_si128(w->mins), a->b32);
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
        for (int r = 0; r < R; r++) {
            const unsigned char *blk = w + (size_t)r * w_stride + (size_t)b * wbytes;
            unpack(type, blk, &wv[r]);
            if (T == 1) /* decode: see KQ_PREFETCH; every line of the super-block */
                for (size_t off = 0; off < wbytes; off += 64)
                    _mm_prefetch((const char *)blk + KQ_PREFETCH + off, _MM_HINT_T0);
        }
        for (int t = 0; t < T; t++) {
            kq_act a;
            load_act(type, x + (size_t)t * x_stride + (size_t)b * sizeof(wl_block_q8_k), &a);
            for (int r = 0; r < R; r++)
                kq_step(type, &wv[r], &a, &c[r][t]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r * ystep] = kq_result(type, &c[r][t]);
}

/* ---- decode (ntok = 1) of Q4_K / Q6_K ------------------------------------------------------ */

/* Decode works row by row straight from the bytes, everything in registers, with layouts that
 * need fewer instructions per row than unpack():
 *   - Q4_K: qs is loaded 64 bytes at a time; of load j (qs[64j .. 64j + 63]) the low nibbles
 *     are groups 4j (low half) and 4j + 2 (high half), the high nibbles groups 4j + 1 and
 *     4j + 3, so the activation vectors are rearranged to match (once per super-block for the
 *     four rows), and the 6-bit scales and mins are unpacked with a few 128-bit operations;
 *   - Q6_K: the two high bits are shifted into place and merged with one vpternlog per vector.
 * The groups sit in other lanes than in unpack(), but S_l (lane l plus lane l + 8) is the same
 * exact integer sum of the same products. */

/* int16 lane indices: the scale of each pair of the four Q4_K decode vectors (groups 0 | 2,
 * 1 | 3, 4 | 6, 5 | 7), and of the four Q6_K vectors (sub-blocks of 16: 4k + lane / 8). */
#define REP16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const int16_t K4_SC_IDX[4][32] = {
    {REP16(0), REP16(2)}, {REP16(1), REP16(3)}, {REP16(4), REP16(6)}, {REP16(5), REP16(7)}};
#undef REP16
#define REP8(v) v, v, v, v, v, v, v, v
static const int16_t K6_SC_IDX[4][32] = {{REP8(0), REP8(1), REP8(2), REP8(3)},
                                         {REP8(4), REP8(5), REP8(6), REP8(7)},
                                         {REP8(8), REP8(9), REP8(10), REP8(11)},
                                         {REP8(12), REP8(13), REP8(14), REP8(15)}};
#undef REP8

#define TERNLOG_A_AND_C_OR_B 0xec /* (a & c) | b */

/* The 16 partial lanes of one Q4_K row super-block b with the rearranged activations x, and its
 * 8 int16 mins. */
WL_INLINE __m512i q4k_decode_row(const unsigned char *b, const __m512i x[4], const __m512i idx[4],
                                 __m128i *mins)
{
    /* scales (quant.h): a0 = bytes 0..3, a1 = 4..7, a2 = 8..11 of the 12 */
    const __m128i v = _mm_loadu_si128((const void *)(b + 4));
    const __m128i A = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* a0 a2 a1 a2 */
    const __m128i B = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* a0 a0 a1 a1 */
    const __m128i C = _mm_srlv_epi32(A, _mm_setr_epi32(0, 0, 0, 4)); /* a0 a2 a1 a2 >> 4 */
    const __m128i lo = _mm_and_si128(A, _mm_set1_epi8(0x3f));
    const __m128i hi = _mm_or_si128(_mm_and_si128(C, _mm_set1_epi8(0x0f)),
                                    _mm_and_si128(_mm_srli_epi32(B, 2), _mm_set1_epi8(0x30)));
    const __m128i sm = _mm_blend_epi32(lo, hi, 0xa); /* s_lo s_hi m_lo m_hi */
    const __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(sm));
    *mins = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i v0 = _mm512_loadu_si512((const void *)(b + 16));
    const __m512i v1 = _mm512_loadu_si512((const void *)(b + 80));
    const __m512i q[4] = {_mm512_and_si512(v0, m4), _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4),
                          _mm512_and_si512(v1, m4), _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4)};
    __m512i s[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int k = 0; k < 4; k++)
        s[k % 2] = _mm512_dpwssd_epi32(s[k % 2], _mm512_permutexvar_epi16(idx[k], s16),
                                       _mm512_maddubs_epi16(q[k], x[k]));
    return _mm512_add_epi32(s[0], s[1]);
}

/* The 16 partial lanes of one Q6_K row super-block b (before the -32 offset) with the
 * activations x (as load_act), and its 16 int16 scales. */
WL_INLINE __m512i q6k_decode_row(const unsigned char *b, const __m512i x[4], const __m512i idx[4],
                                 __m256i *s16out)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    /* group 4h + s's bits are 2s..2s+1 of qh: into bits 4..5 */
    const __m512i c01 = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16(4), _mm512_set1_epi16(2));
    const __m512i c23 = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16(0), _mm512_set1_epi16(2));
    __m512i q[4];
    for (int h = 0; h < 2; h++) {
        const __m512i l = _mm512_loadu_si512((const void *)(b + 64 * h));
        const __m512i hb = load256_twice(b + 128 + 32 * h);
        const __m512i h01 = _mm512_and_si512(_mm512_sllv_epi16(hb, c01), m30);
        const __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(hb, c23), m30);
        q[2 * h] = _mm512_ternarylogic_epi32(l, h01, m4, TERNLOG_A_AND_C_OR_B);
        q[2 * h + 1] =
            _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), h23, m4, TERNLOG_A_AND_C_OR_B);
    }
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(b + 192)));
    *s16out = s16;
    const __m512i s = _mm512_castsi256_si512(s16);
    __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int k = 0; k < 4; k++)
        acc[k % 2] = _mm512_dpwssd_epi32(acc[k % 2], _mm512_permutexvar_epi16(idx[k], s),
                                         _mm512_maddubs_epi16(q[k], x[k]));
    return _mm512_add_epi32(acc[0], acc[1]);
}

/* Decode of Q4_K / Q6_K: the four rows w + i * ws (i = 0..3, the quarter rows of
 * WL_DECODE_ROWS) into y[i * ystep], two rows per 512-bit float vector: acc01 holds row 0's 8
 * canonical lanes in its low half and row 1's in its high one (acc23 rows 2, 3), so per
 * super-block and pair of rows the lane sums S_l of both rows come out of one cross-lane
 * shuffle pair and add, then one conversion and one 512-bit FMA with [d0 x 8 | d1 x 8]. The
 * four rows' fp16 scales are converted by one vcvtph2ps; Q4_K's min terms of the four rows are
 * one 512-bit madd / conversion / FMA into macc (row i in lanes 4i..4i+3). Every lane takes
 * the same operations in the same order as kq_step, so the bits are the canonical ones. */
WL_INLINE void decode_kq4(const uint32_t type, int64_t nb, const unsigned char *w, size_t ws,
                          const unsigned char *x, float *y, size_t ystep)
{
    const size_t wbytes = wl_type_get(type)->type_size;
    __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps(), macc = _mm512_setzero_ps();
    const __m512i lo2 = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i hi2 = _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4);
    const __m512i mins_idx = _mm512_set_epi32(7, 7, 7, 7, 5, 5, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1);
    const int16_t(*tab)[32] = type == WL_TYPE_Q4_K ? K4_SC_IDX : K6_SC_IDX;
    const __m512i idx[4] = {_mm512_loadu_si512((const void *)tab[0]),
                            _mm512_loadu_si512((const void *)tab[1]),
                            _mm512_loadu_si512((const void *)tab[2]),
                            _mm512_loadu_si512((const void *)tab[3])};
    for (int64_t b = 0; b < nb; b++) {
        const unsigned char *xb = x + (size_t)b * sizeof(wl_block_q8_k);
        const float dx = load_float(xb + Q8K_D);
        const unsigned char *qx = xb + Q8K_QS;
        __m512i xv[4];
        if (type == WL_TYPE_Q4_K)
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < 2; i++)
                    xv[2 * j + i] = _mm512_inserti64x4(
                        _mm512_castsi256_si512(load256(qx + 128 * j + 32 * i)),
                        load256(qx + 128 * j + 64 + 32 * i), 1);
        else
            for (int k = 0; k < 4; k++)
                xv[k] = _mm512_loadu_si512((const void *)(qx + 64 * k));
        const unsigned char *blk[4];
        __m512i t[4];
        __m128i m8[4];
        __m256i m16[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            blk[r] = w + (size_t)r * ws + (size_t)b * wbytes;
            for (size_t off = 0; off < wbytes; off += 64) /* see KQ_PREFETCH */
                _mm_prefetch((const char *)blk[r] + KQ_PREFETCH + off, _MM_HINT_T0);
            if (type == WL_TYPE_Q4_K)
                t[r] = q4k_decode_row(blk[r], xv, idx, &m8[r]);
            else
                t[r] = q6k_decode_row(blk[r], xv, idx, &m16[r]);
        }
        /* [S(row 0) | S(row 1)], [S(row 2) | S(row 3)] */
        __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i64x2(t[0], t[1], 0x44),
                                       _mm512_shuffle_i64x2(t[0], t[1], 0xee));
        __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i64x2(t[2], t[3], 0x44),
                                       _mm512_shuffle_i64x2(t[2], t[3], 0xee));
        /* the fp16 super-block scales of the four rows, as floats: [d0, dmin0, d1, dmin1, ...]
         * (Q4_K) or [d0, -, d1, -, ...] (Q6_K), times [dx, -dx, dx, -dx, ...] */
        __m128i h;
        if (type == WL_TYPE_Q4_K) {
            const __m128i h01 = _mm_unpacklo_epi32(_mm_loadu_si32(blk[0]), _mm_loadu_si32(blk[1]));
            const __m128i h23 = _mm_unpacklo_epi32(_mm_loadu_si32(blk[2]), _mm_loadu_si32(blk[3]));
            h = _mm_unpacklo_epi64(h01, h23);
        } else {
            uint16_t d16[4];
            for (int r = 0; r < 4; r++)
                memcpy(&d16[r], blk[r] + 208, 2);
            h = _mm_setr_epi16((short)d16[0], 0, (short)d16[1], 0, (short)d16[2], 0,
                               (short)d16[3], 0);
        }
        const __m256 dxs = _mm256_setr_ps(dx, -dx, dx, -dx, dx, -dx, dx, -dx);
        const __m512 dd = _mm512_castps256_ps512(_mm256_mul_ps(dxs, _mm256_cvtph_ps(h)));
        const __m512 d01 = _mm512_permutexvar_ps(lo2, dd), d23 = _mm512_permutexvar_ps(hi2, dd);
        if (type == WL_TYPE_Q6_K) {
            const __m512i bs = load256_twice(xb + Q8K_BSUMS);
            const __m512i m01 = _mm512_inserti64x4(_mm512_castsi256_si512(m16[0]), m16[1], 1);
            const __m512i m23 = _mm512_inserti64x4(_mm512_castsi256_si512(m16[2]), m16[3], 1);
            s01 = _mm512_sub_epi32(s01, _mm512_slli_epi32(_mm512_madd_epi16(bs, m01), 5));
            s23 = _mm512_sub_epi32(s23, _mm512_slli_epi32(_mm512_madd_epi16(bs, m23), 5));
        } else { /* Q4_K: the min terms of the four rows, against B[2k] + B[2k + 1] */
            const __m256i bsums = load256(xb + Q8K_BSUMS);
            const __m128i b32 = _mm_hadd_epi16(_mm256_castsi256_si128(bsums),
                                               _mm256_extracti128_si256(bsums, 1));
            const __m256i m01 = _mm256_inserti128_si256(_mm256_castsi128_si256(m8[0]), m8[1], 1);
            const __m256i m23 = _mm256_inserti128_si256(_mm256_castsi128_si256(m8[2]), m8[3], 1);
            const __m512i m = _mm512_inserti64x4(_mm512_castsi256_si512(m01), m23, 1);
            const __m512i prod = _mm512_madd_epi16(m, _mm512_broadcast_i32x4(b32));
            macc = _mm512_fmadd_ps(_mm512_permutexvar_ps(mins_idx, dd), _mm512_cvtepi32_ps(prod),
                                   macc);
        }
        acc01 = _mm512_fmadd_ps(d01, _mm512_cvtepi32_ps(s01), acc01);
        acc23 = _mm512_fmadd_ps(d23, _mm512_cvtepi32_ps(s23), acc23);
    }
    const __m256 acc[4] = {_mm512_castps512_ps256(acc01), _mm512_extractf32x8_ps(acc01, 1),
                           _mm512_castps512_ps256(acc23), _mm512_extractf32x8_ps(acc23, 1)};
    float mins[16]; /* macc's lanes: 4 per row (an extract needs a constant lane index) */
    _mm512_storeu_ps(mins, macc);
    for (int r = 0; r < 4; r++) {
        float v = hsum8(acc[r]);
        if (type == WL_TYPE_Q4_K) { /* the 4 min lanes: (0 + 2) + (1 + 3) */
            const __m128 mc = _mm_loadu_ps(mins + 4 * r);
            __m128 m = _mm_add_ps(mc, _mm_movehl_ps(mc, mc));
            m = _mm_add_ss(m, _mm_movehdup_ps(m));
            v += _mm_cvtss_f32(m);
        }
        y[(size_t)r * ystep] = v;
    }
}

WL_INLINE void matmul_kq(const uint32_t type, int64_t n, const void *w, size_t w_stride,
                         int64_t r0, int64_t r1, const void *x, size_t x_stride, int64_t ntok,
                         float *y, size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    const int64_t nb = n / WL_QK_K;
    if (ntok == 1 && (type == WL_TYPE_Q4_K || type == WL_TYPE_Q6_K)) {
#define KQ_DECODE(RR, WR, WS, YO, YS)                                                          \
    do {                                                                                       \
        if ((RR) == 4)                                                                         \
            decode_kq4(type, nb, WR, WS, xb, YO, YS);                                          \
        else                                                                                   \
            tile_kq(type, 1, 1, nb, WR, WS, xb, 0, YO, 1, YS);                                 \
    } while (0)
        WL_DECODE_ROWS(KQ_DECODE);
#undef KQ_DECODE
        return;
    }
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

void wl_kernels_init_kquants_avx512(wl_kernel_table *t, const wl_cpu_features *f)
{
    if (!f->avx512vnni) /* vpdpwssd: without it the table keeps the AVX2 kernels */
        return;
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
