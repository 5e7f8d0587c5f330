/* attention_avx2.c - attention's half-precision steps with F16C and FMA (see attention_impl.h).
 * Conversions are exact in both directions (round to nearest even, like wl_fp32_to_fp16), the
 * multiply-add is fused like fmaf, and dot keeps the 8 lanes of the scalar version: the results
 * are the scalar versions' bit for bit, only faster. */
#include <immintrin.h>
#include <math.h>

/* the sums must round after every product, as the scalar versions do */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "engine/attention_dot8.h"
#include "engine/attention_f32.h"
#include "engine/attention_impl.h"
#include "engine/exp.h"
#include "engine/quant.h"

static void to_f32_avx2(float *dst, const uint16_t *src, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = wl_fp16_to_fp32(src[i]);
}

static void to_f16_avx2(uint16_t *dst, const float *src, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = wl_fp32_to_fp16(src[i]);
}

/* also the AVX-512 family's dot (attention_avx512.c) */
float wl_att_dot_avx2(const float *qf, const uint16_t *k, int n)
{
    return wl_att_dot8(qf, k, n);
}

static void scale_avx2(uint16_t *acc, float s, int n)
{
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(acc + i)));
        _mm_storeu_si128((__m128i *)(acc + i), _mm256_cvtps_ph(_mm256_mul_ps(a, vs), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++)
        acc[i] = wl_fp32_to_fp16(wl_fp16_to_fp32(acc[i]) * s);
}

static void mad_avx2(uint16_t *acc, const uint16_t *v, float s, int n)
{
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(acc + i)));
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm_storeu_si128((__m128i *)(acc + i), _mm256_cvtps_ph(_mm256_fmadd_ps(x, vs, a), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++)
        acc[i] = wl_fp32_to_fp16(__builtin_fmaf(wl_fp16_to_fp32(v[i]), s, wl_fp16_to_fp32(acc[i])));
}

/* wl_expf, its fmaf()s inlined as FMA instructions; also the AVX-512 family's */
float wl_att_exp_fma(float x)
{
    return wl_expf(x);
}

/* wl_att_query_f32 with FMA instructions; also the AVX-512 family's */
void wl_att_query_f32_fma(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last,
                          float scale, float softcap, void *scratch, float *out)
{
    wl_att_query_f32_body(wl_att_exp_fma, hd, q, K, V, first, last, scale, softcap, scratch, out);
}

/* ---- decode: the query heads of one KV head together (ops->query_group) ----
 *
 * The AVX-512 family's group kernel (attention_avx512.c) on 8 lanes: per block of 16 keys, the
 * scores of all the queries with each key converted once, the running maximum key by key, the 16
 * exponentials in two vectors, then the values with 8 registers of accumulators (2 queries x 32
 * elements, or one query's 64) while the block's keys go by, the next block prefetched. Every step is
 * the reference's in its order, so each query gets wl_att_query's bits (test_attention). Heads
 * whose size is not a multiple of 8 take wl_att_query one query at a time. */
#define NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

typedef wl_att_group_query group_query;

/* wl_expf (exp.h) on 8 lanes, step by step */
static inline __m256 exp_avx2(__m256 x)
{
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(WL_EXP_LO)), _mm256_set1_ps(WL_EXP_HI));
    const __m256 nf = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(WL_EXP_LOG2E)), NEAREST);
    __m256 r = _mm256_fmadd_ps(nf, _mm256_set1_ps(-WL_EXP_LN2_HI), xc);
    r = _mm256_fmadd_ps(nf, _mm256_set1_ps(-WL_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(WL_EXP_C7);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WL_EXP_C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WL_EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WL_EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WL_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WL_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(WL_EXP_C1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i n = _mm256_cvtps_epi32(nf), a = _mm256_srai_epi32(n, 1), b = _mm256_sub_epi32(n, a);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 pa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
    const __m256 pb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
    const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, pa), pb);
    return _mm256_blendv_ps(y, _mm256_add_ps(x, x), nan);
}

static inline __m256 to_half_and_back(__m256 x)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, NEAREST));
}

/* The scores of keys K[0..nb) for the group's queries, s = dot * scale (soft-capped): up to qmax
 * queries and nk keys at a time, qmax * nk <= 8 dot chains in registers (each key converted once
 * for the queries; several keys give a single query more than one chain to overlap). Inlined
 * with constant shapes, so that the chains live in registers. */
static inline __attribute__((always_inline)) void group_scores_shape(int hd, int n, group_query *g, const uint16_t *K,
                                                                     int nb, float scale, float softcap,
                                                                     const int qmax, const int nk)
{
    for (int i0 = 0; i0 < n; i0 += qmax) {
        const int nh = n - i0 < qmax ? n - i0 : qmax;
        for (int j = 0; j < nb; j += nk) {
            const uint16_t *k[8];
            __m256 acc[8];
#pragma GCC unroll 8
            for (int kk = 0; kk < nk; kk++) /* keys past nb: a spare copy of the last one */
                k[kk] = K + (size_t)(j + kk < nb ? j + kk : nb - 1) * hd;
#pragma GCC unroll 8
            for (int a = 0; a < qmax * nk; a++)
                acc[a] = _mm256_setzero_ps();
            for (int e = 0; e < hd; e += 8) {
                __m256 kv[8];
#pragma GCC unroll 8
                for (int kk = 0; kk < nk; kk++)
                    kv[kk] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k[kk] + e)));
#pragma GCC unroll 8
                for (int i = 0; i < qmax; i++) {
                    if (i >= nh)
                        break;
                    const __m256 qv = _mm256_loadu_ps(g[i0 + i].qf + e);
#pragma GCC unroll 8
                    for (int kk = 0; kk < nk; kk++)
                        acc[i * nk + kk] = _mm256_fmadd_ps(qv, kv[kk], acc[i * nk + kk]);
                }
            }
            for (int i = 0; i < nh; i++)
                for (int kk = 0; kk < nk && j + kk < nb; kk++) {
                    float s = wl_att_sum8(acc[i * nk + kk]) * scale;
                    if (softcap != 0.0f)
                        s = softcap * tanhf(s);
                    g[i0 + i].sc[j + kk] = s;
                }
        }
    }
}

static void group_scores(int hd, int n, group_query *g, const uint16_t *K, int nb, float scale, float softcap)
{
    if (n <= 2)
        group_scores_shape(hd, n, g, K, nb, scale, softcap, 2, 4);
    else if (n <= 4)
        group_scores_shape(hd, n, g, K, nb, scale, softcap, 4, 2);
    else
        group_scores_shape(hd, n, g, K, nb, scale, softcap, 8, 1);
}

/* The running maximum over the block in key order, and the exponentials (lanes from nb on: 0). */
static void group_max(group_query *gi, int nb)
{
    float arg[16];
    gi->news = 0;
    for (int j = 0; j < 16; j++) {
        if (j >= nb) {
            arg[j] = 0.0f;
        } else if (gi->sc[j] > gi->max) {
            arg[j] = gi->max - gi->sc[j];
            gi->max = gi->sc[j];
            gi->news |= 1u << j;
        } else {
            arg[j] = gi->sc[j] - gi->max;
        }
    }
    _mm256_storeu_ps(gi->ex, exp_avx2(_mm256_loadu_ps(arg)));
    _mm256_storeu_ps(gi->ex + 8, exp_avx2(_mm256_loadu_ps(arg + 8)));
}

/* The values V[0..nb) into the accumulators, vh queries and vc x 8 elements at a time (vh * vc
 * <= 8 registers of accumulators), as in attention_avx512.c's values_block. Inlined with
 * constant shapes so that the accumulators live in registers. */
static inline __attribute__((always_inline)) void group_values_shape(int hd, int n, group_query *g, const uint16_t *V,
                                                                     int nb, const int vh, const int vc)
{
    for (int i0 = 0; i0 < n; i0 += vh) {
        const int nh = n - i0 < vh ? n - i0 : vh;
        for (int e0 = 0; e0 < hd; e0 += 8 * vc) {
            const int nc = (hd - e0) / 8 < vc ? (hd - e0) / 8 : vc;
            __m256 a[8], x[8];
#pragma GCC unroll 8
            for (int k = 0; k < vh * vc; k++)
                a[k] = k / vc < nh && k % vc < nc
                           ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g[i0 + k / vc].acc + e0 + 8 * (k % vc))))
                           : _mm256_setzero_ps();
            for (int j = 0; j < nb; j++) {
#pragma GCC unroll 8
                for (int c = 0; c < vc; c++)
                    x[c] = c < nc ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(V + (size_t)j * hd + e0 + 8 * c)))
                                  : _mm256_setzero_ps();
#pragma GCC unroll 8
                for (int i = 0; i < vh; i++) {
                    if (i >= nh)
                        break;
                    const group_query *gi = &g[i0 + i];
                    __m256 w = _mm256_set1_ps(gi->ex[j]);
                    if (gi->news >> j & 1) {
#pragma GCC unroll 8
                        for (int c = 0; c < vc; c++)
                            a[i * vc + c] = to_half_and_back(_mm256_mul_ps(a[i * vc + c], w));
                        w = _mm256_set1_ps(1.0f);
                    }
#pragma GCC unroll 8
                    for (int c = 0; c < vc; c++)
                        a[i * vc + c] = to_half_and_back(_mm256_fmadd_ps(x[c], w, a[i * vc + c]));
                }
            }
#pragma GCC unroll 8
            for (int k = 0; k < vh * vc; k++)
                if (k / vc < nh && k % vc < nc)
                    _mm_storeu_si128((__m128i *)(g[i0 + k / vc].acc + e0 + 8 * (k % vc)),
                                     _mm256_cvtps_ph(a[k], NEAREST));
        }
    }
}

/* One query: all 8 registers for its own chains (64 elements); more: two queries x 32 elements. */
static void group_values(int hd, int n, group_query *g, const uint16_t *V, int nb)
{
    if (n == 1)
        group_values_shape(hd, n, g, V, nb, 1, 8);
    else
        group_values_shape(hd, n, g, V, nb, 2, 4);
}

/* also the AVX-512 family's for a lone query (attention_avx512.c) */
void wl_att_query_group_avx2(int hd, int n, const float *const *q, const uint16_t *K, const uint16_t *V, int first,
                             int last, float scale, float softcap, void *scratch, float *const *out)
{
    if (hd % 8) { /* one query at a time, the steps of the ops table */
        for (int i = 0; i < n; i++)
            wl_att_query(&wl_att_ops_avx2, hd, q[i], K, V, first, last, scale, softcap, scratch, out[i]);
        return;
    }
    group_query g[WL_ATT_GROUP];
    wl_att_group_init(g, n, hd, scratch);
    for (int i = 0; i < n; i++)
        for (int e = 0; e < hd; e += 8)
            _mm256_storeu_ps(g[i].qf + e, to_half_and_back(_mm256_loadu_ps(q[i] + e)));
    for (int p0 = first; p0 <= last; p0 += 16) {
        const int nb = last - p0 + 1 < 16 ? last - p0 + 1 : 16;
        wl_att_prefetch_next_block(K, V, p0, last, hd);
        group_scores(hd, n, g, K + (size_t)p0 * hd, nb, scale, softcap);
        for (int i = 0; i < n; i++)
            group_max(&g[i], nb);
        group_values(hd, n, g, V + (size_t)p0 * hd, nb);
        wl_att_group_sums(g, n, nb);
    }
    for (int i = 0; i < n; i++) {
        const __m256 inv = _mm256_set1_ps(1.0f / g[i].sum);
        for (int e = 0; e < hd; e += 8)
            _mm256_storeu_ps(out[i] + e,
                             _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g[i].acc + e))), inv));
    }
}

const wl_att_ops wl_att_ops_avx2 = {.to_f32 = to_f32_avx2,
                                    .to_f16 = to_f16_avx2,
                                    .dot = wl_att_dot_avx2,
                                    .scale = scale_avx2,
                                    .mad = mad_avx2,
                                    .exp = wl_att_exp_fma,
                                    .query_f32 = wl_att_query_f32_fma,
                                    .query_group = wl_att_query_group_avx2};
