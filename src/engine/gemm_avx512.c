/* gemm_avx512.c - the pair-layout prefill GEMM of Q8_0 and Q4_0 weights (see gemm.h), with
 * AVX-512 VNNI. Compiled with the AVX-512 family's flags; used only when the CPU has VNNI.
 *
 * One zmm accumulator holds the 8 canonical lanes of two tokens, [t | t + 1], for one weight
 * row. Per weight block and (row, token pair): one vpdpbusd (both tokens' int32 sums), one
 * conversion, one product of the scales (d_w * d_x, each token's own) and one FMA, which is
 * exactly the reference's fma(d_w * d_x, isum, acc) on each of the 16 lanes in block order.
 * The integer sums are made exact with the same offsets as the table's kernels:
 *   - Q4_0: the nibbles 0..15 are the unsigned operand, the activations the signed one, and
 *     the sum starts at -8 * (sum of each group of 4 activations), prepared once per block;
 *   - Q8_0: the activations + 128 are the unsigned operand, the weights the signed one, and the
 *     sum starts at -128 * (sum of each group of 4 weights), computed once per weight block.
 * Tiles are up to 4 rows x 4 token pairs (16 accumulators); the rows of a tile stay in the L1
 * cache while every pair of a chunk of the prepared activations (sized to stay in L2) passes
 * by. */
#include <immintrin.h>
#include <string.h>

#include "engine/gemm_impl.h"
#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RT 4                    /* rows per tile */
#define PT 4                    /* token pairs per tile */
#define CHUNK_BYTES (384 * 1024) /* prepared activations per chunk (L2-resident) */

static inline uint16_t load_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The canonical sum of 8 lanes: ((0+4) + (2+6)) + ((1+5) + (3+7)). */
static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void wl_gemm_prepare_avx512(uint32_t type, int64_t n, const void *xq, size_t x_stride, int64_t ntok, void *prep)
{
    const int64_t nb = n / WL_QK, np = (ntok + 1) / 2;
    const unsigned char *xb = xq;
    unsigned char *out = prep;
    for (int64_t p = 0; p < np; p++) {
        const unsigned char *x0 = xb + (size_t)(2 * p) * x_stride;
        const unsigned char *x1 = 2 * p + 1 < ntok ? x0 + x_stride : NULL;
        for (int64_t b = 0; b < nb; b++) {
            const unsigned char *b0 = x0 + (size_t)b * sizeof(wl_block_q8_0);
            const unsigned char *b1 = x1 ? x1 + (size_t)b * sizeof(wl_block_q8_0) : NULL;
            unsigned char *o = out + (size_t)(p * nb + b) * WL_GEMM_PREP_BLOCK;
            __m256i q0 = _mm256_loadu_si256((const void *)(b0 + 2));
            __m256i q1 = b1 ? _mm256_loadu_si256((const void *)(b1 + 2)) : _mm256_setzero_si256();
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
            const float d0 = wl_fp16_to_fp32(load_u16(b0)), d1 = b1 ? wl_fp16_to_fp32(load_u16(b1)) : 0.0f;
            __m512 d = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(d0)), _mm256_set1_ps(d1), 1);
            __m512i init = _mm512_setzero_si512();
            if (type == WL_TYPE_Q4_0)
                init = _mm512_sub_epi32(init, _mm512_dpbusd_epi32(init, _mm512_set1_epi8(8), q));
            else
                q = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)); /* x + 128, unsigned */
            _mm512_store_si512((void *)o, q);
            _mm512_store_si512((void *)(o + 64), init);
            _mm512_store_ps((void *)(o + 128), d);
        }
    }
}

/* R rows x P token pairs. w: the tile's first row; a: the prepared blocks of its first pair
 * (pairs nb * WL_GEMM_PREP_BLOCK bytes apart); y: the output of (first token, first row);
 * tokens: how many tokens from the first one exist (the second of the last pair may not). */
WL_INLINE void tile(const uint32_t type, const int R, const int P, int64_t nb, const unsigned char *w,
                    size_t w_stride, const unsigned char *a, float *y, size_t ldy, int64_t tokens)
{
    const size_t wbytes = type == WL_TYPE_Q4_0 ? sizeof(wl_block_q4_0) : sizeof(wl_block_q8_0);
    const size_t pstride = (size_t)nb * WL_GEMM_PREP_BLOCK;
    __m512 acc[RT][PT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int p = 0; p < P; p++)
            acc[r][p] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i wq[RT], winit[RT];
        __m512 wd[RT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const unsigned char *blk = w + (size_t)r * w_stride + (size_t)b * wbytes;
            wd[r] = _mm512_cvtph_ps(_mm256_set1_epi16((short)load_u16(blk)));
            if (type == WL_TYPE_Q4_0) {
                __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)(blk + 2)));
                v = _mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4); /* 128-bit lanes 1, 3: high nibbles */
                wq[r] = _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
                winit[r] = _mm512_setzero_si512();
            } else {
                wq[r] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(blk + 2)));
                winit[r] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                            _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                                                _mm512_set1_epi8((char)0x80), wq[r]));
            }
        }
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            const unsigned char *ab = a + (size_t)p * pstride + (size_t)b * WL_GEMM_PREP_BLOCK;
            const __m512i aq = _mm512_load_si512((const void *)ab);
            const __m512 ad = _mm512_load_ps((const void *)(ab + 128));
            if (type == WL_TYPE_Q4_0) {
                const __m512i ainit = _mm512_load_si512((const void *)(ab + 64));
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(ainit, wq[r], aq));
                    acc[r][p] = _mm512_fmadd_ps(s, _mm512_mul_ps(wd[r], ad), acc[r][p]);
                }
            } else {
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(winit[r], aq, wq[r]));
                    acc[r][p] = _mm512_fmadd_ps(s, _mm512_mul_ps(wd[r], ad), acc[r][p]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float *yo = y + (size_t)(2 * p) * ldy + (size_t)r;
            yo[0] = hsum256(_mm512_castps512_ps256(acc[r][p]));
            if (2 * p + 1 < tokens)
                yo[ldy] = hsum256(_mm512_extractf32x8_ps(acc[r][p], 1));
        }
}

WL_INLINE void gemm_type(const uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                         const void *prep, int64_t ntok, float *y, size_t ldy)
{
    const int64_t nb = n / WL_QK, np = (ntok + 1) / 2;
    const size_t pstride = (size_t)nb * WL_GEMM_PREP_BLOCK;
    int64_t chunk = (int64_t)(CHUNK_BYTES / pstride);
    chunk -= chunk % PT;
    if (chunk < PT)
        chunk = PT;
    const unsigned char *wb = w, *ab = prep;
    for (int64_t p0 = 0; p0 < np; p0 += chunk) {
        const int64_t p1 = p0 + chunk < np ? p0 + chunk : np;
        for (int64_t r = r0; r < r1; r += RT) {
            const int R = (int)(r1 - r < RT ? r1 - r : RT);
            const unsigned char *wr = wb + (size_t)r * w_stride;
            for (int64_t p = p0; p < p1; p += PT) {
                const int P = (int)(p1 - p < PT ? p1 - p : PT);
                const unsigned char *ap = ab + (size_t)p * pstride;
                float *yo = y + (size_t)(2 * p) * ldy + (size_t)r;
                const int64_t tokens = ntok - 2 * p;
#define GEMM_CASE(RR, PP)                                                                      \
    case (RR) * 8 + (PP):                                                                      \
        tile(type, RR, PP, nb, wr, w_stride, ap, yo, ldy, tokens);                             \
        break;
                switch (R * 8 + P) {
                    GEMM_CASE(1, 1) GEMM_CASE(1, 2) GEMM_CASE(1, 3) GEMM_CASE(1, 4)
                    GEMM_CASE(2, 1) GEMM_CASE(2, 2) GEMM_CASE(2, 3) GEMM_CASE(2, 4)
                    GEMM_CASE(3, 1) GEMM_CASE(3, 2) GEMM_CASE(3, 3) GEMM_CASE(3, 4)
                    GEMM_CASE(4, 1) GEMM_CASE(4, 2) GEMM_CASE(4, 3) GEMM_CASE(4, 4)
                default:
                    break;
                }
#undef GEMM_CASE
            }
        }
    }
}

void wl_gemm_avx512(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                    const void *prep, int64_t ntok, float *y, size_t ldy)
{
    if (type == WL_TYPE_Q4_0)
        gemm_type(WL_TYPE_Q4_0, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
    else
        gemm_type(WL_TYPE_Q8_0, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
}
