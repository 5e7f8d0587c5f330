/* gemm_k_avx512.c - the row-lane prefill GEMM of Q4_K, Q6_K and Q5_0 weights (gemm_k.h), with
 * AVX-512 VNNI. Compiled with the AVX-512 family's flags; used only when the CPU has VNNI.
 *
 * A zmm holds one int32 or float per row of a 16-row tile, for one token. Per weight
 * super-block and tile, the 16 rows are rearranged once (unpack_q4_k / unpack_q6_k) into
 *   q[g]    group g of 4 consecutive quants (values 4g..4g+3), 4 unsigned bytes per row lane
 *           (a 16 x 8 dword transpose of the packed quants, then the nibbles / high bits);
 *   sc[j]   the int32 scale of sub-block j per row;
 *   m2[k]   int16 pairs per row for a vpdpwssd against a dword of the activation's bsums:
 *           Q4_K (m_k, m_k) against (B[2k], B[2k + 1]); Q6_K (sc_2k, sc_2k+1) against the same;
 *   d, dmin the super-block scales per row, as floats;
 * and then every token of the chunk passes over it: per sub-block j, s = sum over its groups of
 * vpdpbusd(s, q[g], the 4 activation bytes of g broadcast to 16 lanes) is each row's exact
 * dot, isum += s * sc[j] (vpmulld); the min / offset sums come from vpdpwssd with the bsums;
 * then the float steps of gemm_k.h in its order. Tokens go 8 at a time so that the weight
 * registers of a sub-block are loaded once per 8 tokens; the float accumulators of a chunk of
 * tokens live in a buffer on the stack between super-blocks.
 *
 * Q5_0 takes units of 8 blocks (256 values) in place of the super-blocks: each block's 8 groups
 * (a 16 x 4 dword transpose of its nibbles, the fifth bits spread from qh) and its scale; per
 * block and token, 8 vpdpbusd, the -16 * sum(x) offset and one FMA. */
#include <immintrin.h>
#include <string.h>

#include "engine/gemm_k.h"
#include "engine/kernels_impl.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TR 16     /* rows per tile: the lanes of a zmm */
#define TT 8      /* tokens per inner step */
#define TCHUNK 64 /* tokens per chunk (their accumulators on the stack) */

#define Q8K_QS 4      /* byte offsets in a Q8_K block: 256 int8 */
#define Q8K_BSUMS 260 /* 16 int16 */

typedef struct {
    __m512i q[64];  /* groups of 4 quants, one dword per row */
    __m512i sc[16]; /* int32 sub-block scales (Q4_K: 8) */
    __m512i m2[8];  /* int16 pairs for the bsums (see above) */
    __m512 d, dmin;
    __m512 db[8]; /* Q5_0: the scale of each of the unit's 8 blocks */
} k_tile;

/* Q5_0: per token and 32-value block of the activations, its scale and -16 * (sum of its quants). */
typedef struct {
    float d;
    int32_t off;
} q5_act;

static inline uint32_t load_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float load_float(const unsigned char *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

/* acc + vpdpbusd(w, the 4 bytes at p broadcast to every dword lane), with the broadcast folded
 * into the instruction (GCC does not fold it by itself; a few percent faster). */
static inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const unsigned char *p)
{
#if defined(__GNUC__) && !defined(__clang__)
    typedef uint32_t u32_any __attribute__((aligned(1), may_alias)); /* p may have any alignment */
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const u32_any *)(const void *)p));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32((int)load_u32(p)));
#endif
}

/* 4 bytes at p in every dword lane. */
static inline __m512i bcast4(const unsigned char *p)
{
    return _mm512_set1_epi32((int)load_u32(p));
}

/* out[i] lane r = dword i of the 32 bytes at row[r] + off (i = 0..7, r = 0..15). */
static inline void transpose_16x8(const unsigned char *const row[TR], size_t off, __m512i out[8])
{
    __m512i v[8], t[8], u[8];
    for (int p = 0; p < 8; p++)
        v[p] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const void *)(row[p] + off))),
                                  _mm256_loadu_si256((const void *)(row[p + 8] + off)), 1);
    for (int p = 0; p < 8; p += 2) {
        t[p] = _mm512_unpacklo_epi32(v[p], v[p + 1]);
        t[p + 1] = _mm512_unpackhi_epi32(v[p], v[p + 1]);
    }
    for (int h = 0; h < 8; h += 4) { /* rows 0-3 (h = 0) and 4-7 (h = 4) of each half */
        u[h + 0] = _mm512_unpacklo_epi64(t[h + 0], t[h + 2]);
        u[h + 1] = _mm512_unpackhi_epi64(t[h + 0], t[h + 2]);
        u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
        u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
    /* u[i] (u[4 + i]): per 128-bit lane L, dword i (L odd: 4 + i) of 4 rows, L < 2 rows 0-3
     * (4-7), L >= 2 rows 8-11 (12-15) */
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int i = 0; i < 4; i++) {
        out[i] = _mm512_permutex2var_epi64(u[i], lo, u[4 + i]);
        out[4 + i] = _mm512_permutex2var_epi64(u[i], hi, u[4 + i]);
    }
}

/* The dword at row[r] + off of each row. */
static inline __m512i gather_dword(const unsigned char *const row[TR], __m512i idx, size_t off)
{
    return _mm512_i32gather_epi32(idx, (const void *)(row[0] + off), 1);
}

/* 16 halves (the low 16 bits of each dword) as floats. */
static inline __m512 halves_to_float(__m512i v)
{
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}

/* row[r]: super-block b of tile row r; idx: row[r] - row[0] as int32. */
WL_INLINE void unpack_q4_k(const unsigned char *const row[TR], __m512i idx, k_tile *k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int c = 0; c < 4; c++) { /* qs[32c ..]: values 64c.. (low nibbles), 64c + 32.. (high) */
        __m512i v[8];
        transpose_16x8(row, 16 + 32 * (size_t)c, v);
        for (int i = 0; i < 8; i++) {
            k->q[16 * c + i] = _mm512_and_si512(v[i], m4);
            k->q[16 * c + 8 + i] = _mm512_and_si512(_mm512_srli_epi32(v[i], 4), m4);
        }
    }
    const __m512i a0 = gather_dword(row, idx, 4), a1 = gather_dword(row, idx, 8),
                  a2 = gather_dword(row, idx, 12);
    const __m512i m6 = _mm512_set1_epi32(63), m4d = _mm512_set1_epi32(15), m2 = _mm512_set1_epi32(3);
    for (int j = 0; j < 4; j++) {
        k->sc[j] = _mm512_and_si512(_mm512_srli_epi32(a0, 8 * j), m6);
        const __m512i mj = _mm512_and_si512(_mm512_srli_epi32(a1, 8 * j), m6);
        const __m512i shi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(a0, 8 * j + 6), m2), 4);
        const __m512i mhi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(a1, 8 * j + 6), m2), 4);
        k->sc[4 + j] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(a2, 8 * j), m4d), shi);
        const __m512i mj4 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(a2, 8 * j + 4), m4d), mhi);
        k->m2[j] = _mm512_or_si512(mj, _mm512_slli_epi32(mj, 16));
        k->m2[4 + j] = _mm512_or_si512(mj4, _mm512_slli_epi32(mj4, 16));
    }
    const __m512i dd = gather_dword(row, idx, 0);
    k->d = halves_to_float(dd);
    k->dmin = halves_to_float(_mm512_srli_epi32(dd, 16));
}

WL_INLINE void unpack_q6_k(const unsigned char *const row[TR], __m512i idx, k_tile *k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i h0 = _mm512_set1_epi8(0x03), h1 = _mm512_set1_epi8(0x0c), h2 = _mm512_set1_epi8(0x30),
                  h3 = _mm512_set1_epi8((char)0xc0);
    for (int h = 0; h < 2; h++) {
        __m512i a[8], b[8], c[8];
        transpose_16x8(row, 64 * (size_t)h, a);       /* quarters 0 (low) and 2 (high) */
        transpose_16x8(row, 64 * (size_t)h + 32, b);  /* quarters 1 and 3 */
        transpose_16x8(row, 128 + 32 * (size_t)h, c); /* the high bits of all four */
        for (int i = 0; i < 8; i++) {
            __m512i *q = &k->q[32 * h + i];
            q[0] =
                _mm512_or_si512(_mm512_and_si512(a[i], m4), _mm512_slli_epi32(_mm512_and_si512(c[i], h0), 4));
            q[8] =
                _mm512_or_si512(_mm512_and_si512(b[i], m4), _mm512_slli_epi32(_mm512_and_si512(c[i], h1), 2));
            q[16] =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(a[i], 4), m4), _mm512_and_si512(c[i], h2));
            q[24] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(b[i], 4), m4),
                                    _mm512_srli_epi32(_mm512_and_si512(c[i], h3), 2));
        }
    }
    for (int s = 0; s < 4; s++) { /* scales[4s .. 4s + 3] */
        const __m512i a = gather_dword(row, idx, 192 + 4 * (size_t)s);
        for (int j = 0; j < 4; j++)
            k->sc[4 * s + j] = _mm512_srai_epi32(_mm512_slli_epi32(a, 24 - 8 * j), 24);
    }
    const __m512i lo16 = _mm512_set1_epi32(0xffff);
    for (int p = 0; p < 8; p++)
        k->m2[p] =
            _mm512_or_si512(_mm512_and_si512(k->sc[2 * p], lo16), _mm512_slli_epi32(k->sc[2 * p + 1], 16));
    k->d = halves_to_float(_mm512_srli_epi32(gather_dword(row, idx, 206), 16)); /* d at 208 */
    k->dmin = _mm512_setzero_ps();
}

/* Q5_0, the nbk (1..8) blocks of a unit of 8: q[8 i + g] group g of block i, db[i] its scale. The
 * quants' fifth bits: group g is bits 4 (g % 2).. of byte g / 2 of qh, spread to one per byte by
 * a byte shuffle and a test against 1, 2, 4, 8 (<< 4 for odd g). */
WL_INLINE void unpack_q5_0(const unsigned char *const row[TR], __m512i idx, int nbk, k_tile *k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), sixteen = _mm512_set1_epi8(16);
    const __m512i dword_base =
        _mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0); /* in each 128 bits */
    for (int i = 0; i < nbk; i++) {
        const size_t o = (size_t)i * sizeof(wl_block_q5_0);
        __m512i v[4], t[4];
        for (int p = 0; p < 4; p++) { /* rows p, p + 4, p + 8, p + 12: qs[0..15] */
            __m512i a = _mm512_castsi128_si512(_mm_loadu_si128((const void *)(row[p] + o + 6)));
            a = _mm512_inserti32x4(a, _mm_loadu_si128((const void *)(row[p + 4] + o + 6)), 1);
            a = _mm512_inserti32x4(a, _mm_loadu_si128((const void *)(row[p + 8] + o + 6)), 2);
            v[p] = _mm512_inserti32x4(a, _mm_loadu_si128((const void *)(row[p + 12] + o + 6)), 3);
        }
        t[0] = _mm512_unpacklo_epi32(v[0], v[1]);
        t[1] = _mm512_unpackhi_epi32(v[0], v[1]);
        t[2] = _mm512_unpacklo_epi32(v[2], v[3]);
        t[3] = _mm512_unpackhi_epi32(v[2], v[3]);
        v[0] = _mm512_unpacklo_epi64(t[0], t[2]); /* dword 0 of rows 0..15 */
        v[1] = _mm512_unpackhi_epi64(t[0], t[2]);
        v[2] = _mm512_unpacklo_epi64(t[1], t[3]);
        v[3] = _mm512_unpackhi_epi64(t[1], t[3]);
        const __m512i dq = gather_dword(row, idx, o); /* d | qh[0..1] << 16 */
        const __m512i qh = gather_dword(row, idx, o + 2);
        k->db[i] = halves_to_float(dq);
        for (int g = 0; g < 8; g++) {
            const __m512i nib =
                g < 4 ? _mm512_and_si512(v[g], m4) : _mm512_and_si512(_mm512_srli_epi32(v[g - 4], 4), m4);
            const __m512i sel = _mm512_add_epi8(dword_base, _mm512_set1_epi8((char)(g / 2)));
            const __m512i rep = _mm512_shuffle_epi8(qh, sel); /* byte g / 2 of its dword, 4 times */
            const __m512i bits = _mm512_set1_epi32(g % 2 ? (int)0x80402010 : 0x08040201);
            k->q[8 * i + g] = _mm512_mask_add_epi8(nib, _mm512_test_epi8_mask(rep, bits), nib, sixteen);
        }
    }
}

/* T tokens (x[t]: their super-block's Q8_K block) with the tile; acc[t]: their 16 float
 * accumulators, advanced by one super-block. */
WL_INLINE void step_tokens(const uint32_t type, const int T, const k_tile *k,
                           const unsigned char *const x[TT], float (*acc)[TR])
{
    __m512i isum[TT], imin[TT];
    for (int t = 0; t < T; t++)
        isum[t] = _mm512_setzero_si512();
    if (type == WL_TYPE_Q4_K) {
        for (int j = 0; j < 8; j++) {
            __m512i w[8];
            for (int g = 0; g < 8; g++)
                w[g] = k->q[8 * j + g];
            for (int t = 0; t < T; t++) {
                const unsigned char *xs = x[t] + Q8K_QS + 32 * j;
                __m512i s = dpbusd_bcast(_mm512_setzero_si512(), w[0], xs);
                for (int g = 1; g < 8; g++)
                    s = dpbusd_bcast(s, w[g], xs + 4 * g);
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s, k->sc[j]));
            }
        }
    } else {
        for (int j = 0; j < 16; j++) {
            __m512i w[4];
            for (int g = 0; g < 4; g++)
                w[g] = k->q[4 * j + g];
            for (int t = 0; t < T; t++) {
                const unsigned char *xs = x[t] + Q8K_QS + 16 * j;
                __m512i s = dpbusd_bcast(_mm512_setzero_si512(), w[0], xs);
                for (int g = 1; g < 4; g++)
                    s = dpbusd_bcast(s, w[g], xs + 4 * g);
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s, k->sc[j]));
            }
        }
    }
    for (int t = 0; t < T; t++) {
        imin[t] = _mm512_setzero_si512();
        for (int p = 0; p < 8; p++)
            imin[t] = _mm512_dpwssd_epi32(imin[t], k->m2[p], bcast4(x[t] + Q8K_BSUMS + 4 * p));
    }
    for (int t = 0; t < T; t++) {
        const __m512 dx = _mm512_set1_ps(load_float(x[t]));
        __m512 a = _mm512_loadu_ps(acc[t]);
        if (type == WL_TYPE_Q4_K) {
            a = _mm512_fmadd_ps(_mm512_mul_ps(k->d, dx), _mm512_cvtepi32_ps(isum[t]), a);
            a = _mm512_fnmadd_ps(_mm512_mul_ps(k->dmin, dx), _mm512_cvtepi32_ps(imin[t]), a);
        } else { /* isum - 32 * sum sc_j B[j] */
            const __m512i is = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(imin[t], 5));
            a = _mm512_fmadd_ps(_mm512_mul_ps(k->d, dx), _mm512_cvtepi32_ps(is), a);
        }
        _mm512_storeu_ps(acc[t], a);
    }
}

/* Q5_0: T tokens (x[t]: their Q8_0 row at the unit's first block; a[t]: their scale and offset
 * at that block) with the nbk blocks of the unit; acc[t] advanced by one block at a time. */
WL_INLINE void step_tokens_q5_0(const int T, const k_tile *k, int nbk, const unsigned char *const x[TT],
                                const q5_act *const a[TT], float (*acc)[TR])
{
    __m512 f[TT];
    for (int t = 0; t < T; t++)
        f[t] = _mm512_loadu_ps(acc[t]);
    for (int i = 0; i < nbk; i++) {
        __m512i w[8];
        for (int g = 0; g < 8; g++)
            w[g] = k->q[8 * i + g];
        for (int t = 0; t < T; t++) {
            const unsigned char *xs = x[t] + (size_t)i * sizeof(wl_block_q8_0) + 2;
            __m512i s = dpbusd_bcast(_mm512_setzero_si512(), w[0], xs);
            for (int g = 1; g < 8; g++)
                s = dpbusd_bcast(s, w[g], xs + 4 * g);
            s = _mm512_add_epi32(s, _mm512_set1_epi32(a[t][i].off));
            f[t] = _mm512_fmadd_ps(_mm512_mul_ps(k->db[i], _mm512_set1_ps(a[t][i].d)), _mm512_cvtepi32_ps(s),
                                   f[t]);
        }
    }
    for (int t = 0; t < T; t++)
        _mm512_storeu_ps(acc[t], f[t]);
}

/* The q5_act of nb Q8_0 blocks at x. */
static void q5_prepare(const unsigned char *x, int64_t nb, q5_act *out)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int64_t b = 0; b < nb; b++) {
        const unsigned char *blk = x + (size_t)b * sizeof(wl_block_q8_0);
        uint16_t h;
        memcpy(&h, blk, 2);
        /* sum of (q + 128) as unsigned bytes, by 8-byte groups */
        const __m256i sad = _mm256_sad_epu8(
            _mm256_xor_si256(_mm256_loadu_si256((const void *)(blk + 2)), bias), _mm256_setzero_si256());
        __m128i t = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
        t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
        const int32_t sum = (int32_t)_mm_cvtsi128_si32(t) - 32 * 128;
        out[b].d = wl_fp16_to_fp32(h);
        out[b].off = -16 * sum;
    }
}

#define Q5_PREP_MAX 4096 /* q5_act entries on the stack (32 KiB): tokens per chunk * blocks */

/* Q5_0 weights with Q8_0 activations: units of 8 blocks play the part of the super-blocks. */
static void gemm_q5_0(int64_t n, const unsigned char *w, size_t w_stride, int64_t r0, int64_t r1,
                      const unsigned char *x, size_t x_stride, int64_t ntok, float *y, size_t ldy)
{
    const size_t wbytes = sizeof(wl_block_q5_0), xbytes = sizeof(wl_block_q8_0);
    const int64_t nb = n / WL_QK;
    if (nb > Q5_PREP_MAX) { /* rows of more than 131072 values: not in any model we know */
        wl_gemm_k_ref(WL_TYPE_Q5_0, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);
        return;
    }
    int64_t tchunk = Q5_PREP_MAX / nb;
    tchunk = tchunk > TCHUNK ? TCHUNK : tchunk >= TT ? tchunk - tchunk % TT : tchunk < 1 ? 1 : tchunk;
    k_tile k;
    float acc[TCHUNK][TR] __attribute__((aligned(64)));
    q5_act prep[Q5_PREP_MAX];
    for (int64_t c0 = 0; c0 < ntok; c0 += tchunk) {
        const int64_t nc = ntok - c0 < tchunk ? ntok - c0 : tchunk;
        for (int64_t t = 0; t < nc; t++)
            q5_prepare(x + (size_t)(c0 + t) * x_stride, nb, prep + t * nb);
        for (int64_t rt = r0; rt < r1; rt += TR) {
            const int R = r1 - rt < TR ? (int)(r1 - rt) : TR;
            int32_t off[TR];
            for (int r = 0; r < TR; r++)
                off[r] = (int32_t)((size_t)(r < R ? r : R - 1) * w_stride);
            const __m512i idx = _mm512_loadu_si512((const void *)off);
            memset(acc, 0, (size_t)nc * sizeof acc[0]);
            for (int64_t b0 = 0; b0 < nb; b0 += 8) {
                const int nbk = nb - b0 < 8 ? (int)(nb - b0) : 8;
                const unsigned char *row[TR];
                for (int r = 0; r < TR; r++)
                    row[r] = w + (size_t)rt * w_stride + (size_t)off[r] + (size_t)b0 * wbytes;
                if (b0 + 8 < nb) { /* the next unit of the 16 rows */
                    const size_t next = 8 * wbytes,
                                 len = (size_t)(nb - b0 - 8 < 8 ? nb - b0 - 8 : 8) * wbytes;
                    for (int r = 0; r < R; r++)
                        for (size_t o = 0; o < len + 63; o += 64)
                            _mm_prefetch((const char *)row[r] + next + (o < len ? o : len - 1), _MM_HINT_T0);
                }
                unpack_q5_0(row, idx, nbk, &k);
                for (int64_t t0 = 0; t0 < nc; t0 += TT) {
                    const int T = nc - t0 < TT ? (int)(nc - t0) : TT;
                    const unsigned char *xt[TT];
                    const q5_act *at[TT];
                    for (int t = 0; t < TT; t++) {
                        const int64_t tt = t0 + (t < T ? t : 0);
                        xt[t] = x + (size_t)(c0 + tt) * x_stride + (size_t)b0 * xbytes;
                        at[t] = prep + tt * nb + b0;
                    }
                    switch (T) {
#define STEP(TN)                                                                                             \
    case TN:                                                                                                 \
        step_tokens_q5_0(TN, &k, nbk, xt, at, acc + t0);                                                     \
        break;
                        STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7) STEP(8)
#undef STEP
                    }
                }
            }
            const __mmask16 keep = (__mmask16)((1u << R) - 1);
            for (int64_t t = 0; t < nc; t++) {
                float *yo = y + (size_t)(c0 + t) * ldy + (size_t)rt;
                if (R == TR)
                    _mm512_storeu_ps(yo, _mm512_load_ps(acc[t]));
                else
                    _mm512_mask_storeu_ps(yo, keep, _mm512_load_ps(acc[t]));
            }
        }
    }
}

WL_INLINE void gemm_k(const uint32_t type, int64_t n, const unsigned char *w, size_t w_stride, int64_t r0,
                      int64_t r1, const unsigned char *x, size_t x_stride, int64_t ntok, float *y, size_t ldy)
{
    const size_t wbytes = type == WL_TYPE_Q4_K ? sizeof(wl_block_q4_k) : sizeof(wl_block_q6_k);
    const int64_t nb = n / WL_QK_K;
    k_tile k;
    float acc[TCHUNK][TR] __attribute__((aligned(64)));
    for (int64_t c0 = 0; c0 < ntok; c0 += TCHUNK) {
        const int64_t nc = ntok - c0 < TCHUNK ? ntok - c0 : TCHUNK;
        for (int64_t rt = r0; rt < r1; rt += TR) {
            const int R = r1 - rt < TR ? (int)(r1 - rt) : TR;
            int32_t off[TR];
            for (int r = 0; r < TR; r++)
                off[r] = (int32_t)((size_t)(r < R ? r : R - 1) * w_stride);
            const __m512i idx = _mm512_loadu_si512((const void *)off);
            memset(acc, 0, (size_t)nc * sizeof acc[0]);
            for (int64_t b = 0; b < nb; b++) {
                const unsigned char *row[TR];
                for (int r = 0; r < TR; r++)
                    row[r] = w + (size_t)rt * w_stride + (size_t)off[r] + (size_t)b * wbytes;
                if (b + 1 < nb) /* the next super-block of the 16 rows, while this one is used */
                    for (int r = 0; r < R; r++)
                        for (size_t o = 0; o < wbytes + 63; o += 64)
                            _mm_prefetch((const char *)row[r] + wbytes + (o < wbytes ? o : wbytes - 1),
                                         _MM_HINT_T0);
                if (type == WL_TYPE_Q4_K)
                    unpack_q4_k(row, idx, &k);
                else
                    unpack_q6_k(row, idx, &k);
                for (int64_t t0 = 0; t0 < nc; t0 += TT) {
                    const int T = nc - t0 < TT ? (int)(nc - t0) : TT;
                    const unsigned char *xt[TT];
                    for (int t = 0; t < TT; t++)
                        xt[t] = x + (size_t)(c0 + t0 + (t < T ? t : 0)) * x_stride +
                                (size_t)b * sizeof(wl_block_q8_k);
                    switch (T) {
#define STEP(TN)                                                                                             \
    case TN:                                                                                                 \
        step_tokens(type, TN, &k, xt, acc + t0);                                                             \
        break;
                        STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7) STEP(8)
#undef STEP
                    }
                }
            }
            const __mmask16 keep = (__mmask16)((1u << R) - 1);
            for (int64_t t = 0; t < nc; t++) {
                float *yo = y + (size_t)(c0 + t) * ldy + (size_t)rt;
                if (R == TR)
                    _mm512_storeu_ps(yo, _mm512_load_ps(acc[t]));
                else
                    _mm512_mask_storeu_ps(yo, keep, _mm512_load_ps(acc[t]));
            }
        }
    }
}

void wl_gemm_k_avx512(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                      const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy)
{
    if (type == WL_TYPE_Q4_K)
        gemm_k(WL_TYPE_Q4_K, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);
    else if (type == WL_TYPE_Q5_0)
        gemm_q5_0(n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);
    else
        gemm_k(WL_TYPE_Q6_K, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);
}
