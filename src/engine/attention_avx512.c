/* attention_avx512.c - attention's half-precision element-wise steps with 16 lanes (see
 * attention_impl.h). Each element is converted, scaled or multiply-added on its own, exactly as
 * in the scalar and AVX2 versions (round to nearest even, fused multiply-add), so the width
 * changes no bit; the dot product keeps the 8 lanes of the AVX2 version (its order is part of
 * the result). Tails use masked loads and stores.
 *
 * The tile: 16 queries of one KV head side by side, one per lane, so each key and value is read
 * and converted once for all of them and no step needs a horizontal sum. Per key p, each query
 * i runs exactly the steps of wl_att_query (attention.c):
 *   s_i = dot(q_i, k_p) * scale: the dot's 8 canonical chains are 8 registers a0..a7 (lane i:
 *         query i), element e going into a[e % 8], summed as ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7));
 *   new maximum (lanes where s_i > max_i): acc_i = half(acc_i * e^(max_i - s_i)), weight 1;
 *   otherwise weight e^(s_i - max_i) (wl_expf, repeated here step by step);
 *   acc_i = half(fma(v_p, weight_i, acc_i)); sum_i = sum_i * old_scale_i + weight_i,
 * on the lanes whose query sees p ([first_i, last_i]); the others keep their state. The
 * accumulators are stored transposed, (hd, 16) halves, so that element e of all 16 queries is
 * one 256-bit row. */
#include <immintrin.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "engine/attention_dot8.h"
#include "engine/attention_impl.h"
#include "engine/exp.h"

#define NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static inline __mmask16 first_lanes(int count)
{
    return (__mmask16)((1u << count) - 1u);
}

static void to_f32_avx512(float *dst, const uint16_t *src, int n)
{
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes(n - i < 16 ? n - i : 16);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

static void to_f16_avx512(uint16_t *dst, const float *src, int n)
{
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes(n - i < 16 ? n - i : 16);
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), NEAREST));
    }
}

static void scale_avx512(uint16_t *acc, float s, int n)
{
    const __m512 vs = _mm512_set1_ps(s);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes(n - i < 16 ? n - i : 16);
        __m512 a = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, acc + i));
        _mm256_mask_storeu_epi16(acc + i, m, _mm512_cvtps_ph(_mm512_mul_ps(a, vs), NEAREST));
    }
}

static void mad_avx512(uint16_t *acc, const uint16_t *v, float s, int n)
{
    const __m512 vs = _mm512_set1_ps(s);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(acc + i)));
        __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i)));
        _mm256_storeu_si256((__m256i *)(acc + i), _mm512_cvtps_ph(_mm512_fmadd_ps(x, vs, a), NEAREST));
    }
    if (i < n) {
        const __mmask16 m = first_lanes(n - i);
        __m512 a = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, acc + i));
        __m512 x = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + i));
        _mm256_mask_storeu_epi16(acc + i, m, _mm512_cvtps_ph(_mm512_fmadd_ps(x, vs, a), NEAREST));
    }
}

/* wl_expf (exp.h) on 16 lanes, step by step */
static inline __m512 exp_avx512(__m512 x)
{
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(WL_EXP_LO)), _mm512_set1_ps(WL_EXP_HI));
    const __m512 nf = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(WL_EXP_LOG2E)), NEAREST);
    __m512 r = _mm512_fmadd_ps(nf, _mm512_set1_ps(-WL_EXP_LN2_HI), xc);
    r = _mm512_fmadd_ps(nf, _mm512_set1_ps(-WL_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(WL_EXP_C7);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WL_EXP_C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WL_EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WL_EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WL_EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WL_EXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(WL_EXP_C1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i n = _mm512_cvtps_epi32(nf), a = _mm512_srai_epi32(n, 1), b = _mm512_sub_epi32(n, a);
    const __m512i bias = _mm512_set1_epi32(127);
    const __m512 pa = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(a, bias), 23));
    const __m512 pb = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(b, bias), 23));
    const __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, pa), pb);
    return _mm512_mask_add_ps(y, nan, x, x);
}

/* dst[0..n) = src[0..n) halves as floats */
static inline void halves_to_f32(float *dst, const uint16_t *src, int n)
{
    for (int e = 0; e < n; e += 16) {
        const __mmask16 m = first_lanes(n - e < 16 ? n - e : 16);
        _mm512_mask_storeu_ps(dst + e, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + e)));
    }
}

/* Each lane's positions [first, last] (lanes without a query see nothing: [1, 0]), and the
 * positions any query of the tile sees, [*pmin, *pmax]. */
static void lane_ranges(const wl_att_tile *t, int *first, int *last, int *pmin, int *pmax)
{
    *pmin = INT_MAX;
    *pmax = -1;
    for (int i = 0; i < WL_ATT_LANES; i++) {
        first[i] = i < t->n ? t->first[i] : 1;
        last[i] = i < t->n ? t->last[i] : 0;
        if (i < t->n && first[i] < *pmin)
            *pmin = first[i];
        if (i < t->n && last[i] > *pmax)
            *pmax = last[i];
    }
}

static void tile_avx512(const wl_att_tile *t, void *scratch)
{
    const int hd = t->hd, n = t->n;
    float *qt = scratch;                                /* (hd, 16) the queries, half-rounded */
    uint16_t *acc = (uint16_t *)(qt + (size_t)hd * 16); /* (hd, 16) the accumulators, half */
    float *kf = (float *)(acc + (size_t)hd * 16);       /* (hd) the key as floats */
    float *vf = kf + hd;                                /* (hd) the value as floats */
    float *lane = vf + hd;                              /* (16) one value per query */

    int first[WL_ATT_LANES], last[WL_ATT_LANES], pmin, pmax;
    lane_ranges(t, first, last, &pmin, &pmax);
    memset(qt, 0, (size_t)hd * 16 * sizeof *qt);
    for (int i = 0; i < n; i++)
        for (int e = 0; e < hd; e += 16) {
            const __mmask16 m = first_lanes(hd - e < 16 ? hd - e : 16);
            const __m512 q = _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, t->q[i] + e), NEAREST));
            _mm512_storeu_ps(lane, q);
            for (int j = 0; j < 16 && e + j < hd; j++)
                qt[(size_t)(e + j) * 16 + i] = lane[j];
        }
    memset(acc, 0, (size_t)hd * 16 * sizeof *acc);

    const __m512i vfirst = _mm512_loadu_si512(first), vlast = _mm512_loadu_si512(last);
    const __m512 one = _mm512_set1_ps(1.0f), scale = _mm512_set1_ps(t->scale);
    __m512 max = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
    for (int p = pmin; p <= pmax; p++) {
        const __m512i vp = _mm512_set1_epi32(p);
        const __mmask16 valid = _mm512_cmp_epi32_mask(vfirst, vp, _MM_CMPINT_LE) &
                                _mm512_cmp_epi32_mask(vp, vlast, _MM_CMPINT_LE);
        if (!valid)
            continue;
        halves_to_f32(kf, t->K + (size_t)p * hd, hd);

        __m512 a[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            a[j] = _mm512_setzero_ps();
        int e = 0;
        for (; e + 8 <= hd; e += 8)
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(qt + (size_t)(e + j) * 16), _mm512_set1_ps(kf[e + j]), a[j]);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            if (e + j < hd)
                a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(qt + (size_t)(e + j) * 16), _mm512_set1_ps(kf[e + j]), a[j]);
        __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6])),
                                 _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7])));
        s = _mm512_mul_ps(s, scale);
        if (t->softcap != 0.0f) {
            _mm512_storeu_ps(lane, s);
            for (int i = 0; i < 16; i++)
                lane[i] = t->softcap * tanhf(lane[i]);
            s = _mm512_loadu_ps(lane);
        }

        const __mmask16 nw = _mm512_mask_cmp_ps_mask(valid, s, max, _CMP_GT_OQ);
        const __m512 x = exp_avx512(_mm512_mask_sub_ps(_mm512_sub_ps(s, max), nw, max, s));
        const __m512 old_scale = _mm512_mask_mov_ps(one, nw, x), weight = _mm512_mask_mov_ps(x, nw, one);
        max = _mm512_mask_mov_ps(max, nw, s);
        sum = _mm512_mask_add_ps(sum, valid, _mm512_mul_ps(sum, old_scale), weight);
        if (nw)
            for (int d = 0; d < hd; d++) {
                __m256i *row = (__m256i *)(acc + (size_t)d * 16);
                const __m512 r = _mm512_cvtph_ps(_mm256_loadu_si256(row));
                _mm256_storeu_si256(row, _mm512_cvtps_ph(_mm512_mask_mul_ps(r, nw, r, old_scale), NEAREST));
            }
        halves_to_f32(vf, t->V + (size_t)p * hd, hd);
        for (int d = 0; d < hd; d++) {
            __m256i *row = (__m256i *)(acc + (size_t)d * 16);
            const __m512 r = _mm512_cvtph_ps(_mm256_loadu_si256(row));
            const __m512 u = _mm512_mask3_fmadd_ps(_mm512_set1_ps(vf[d]), weight, r, valid);
            _mm256_storeu_si256(row, _mm512_cvtps_ph(u, NEAREST));
        }
    }

    const __m512 inv = _mm512_div_ps(one, sum);
    for (int d = 0; d < hd; d++) {
        _mm512_storeu_ps(lane, _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(acc + (size_t)d * 16))), inv));
        for (int i = 0; i < n; i++)
            t->out[i][d] = lane[i];
    }
}

/* wl_att_query in one loop for n (1..WL_ATT_GROUP) queries over the same keys [first, last] of
 * one KV head (decode: the query heads of a group), side by side. Per block of 16 keys: the
 * scores first (two keys per register, scores_pairs), then the softmax's running maximum in key
 * order (a prefix maximum, running_max) and the 16 exponentials in one vector, then the
 * accumulation in key order (values_block), while the next block's keys and values are
 * prefetched. Each query takes exactly the reference's steps in its order (the dot's 8 lanes over
 * the elements, the running maximum per key, scale and multiply-add per key), so each result has
 * its bits; the queries' accumulations, each a chain of dependent steps through the keys, are
 * independent of each other and overlap. Measured per query and key (hd 64, 4 queries, 2048
 * keys from memory, one core): 5.7-5.8 ns, against 8.9-9.2 ns when each step went through memory
 * one key and query at a time (the per-step functions of the ops table). */
typedef wl_att_group_query group_query;

/* wl_att_sum8 (attention_dot8.h) of each 8-lane half of r at once: the sum of lanes 0-7 lands
 * in lane 0, that of lanes 8-15 in lane 8 */
static inline __m512 sum8_halves(__m512 r)
{
    const __m512 t = _mm512_add_ps(r, _mm512_shuffle_f32x4(r, r, _MM_SHUFFLE(2, 3, 0, 1))); /* l_k + l_k+4 */
    const __m512 u = _mm512_add_ps(t, _mm512_permute_ps(t, _MM_SHUFFLE(1, 0, 3, 2)));     /* (0+4)+(2+6) */
    return _mm512_add_ps(u, _mm512_permute_ps(u, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* The scores of keys K[0..nb) (hd a multiple of 8) for the group's queries: dot8 of two keys at
 * once, key j in lanes 0-7 and key j + 1 in lanes 8-15 of one register per query, each lane a
 * chain over the elements in index order as in dot8; every key is converted once for all the
 * queries. Up to qmax queries and np pairs of keys at a time (qmax * np <= 8 registers of
 * chains, so that a lone query has several to overlap); inlined with constant shapes, so that
 * the chains live in registers. s = dot * scale, soft-capped when softcap != 0. */
static inline __attribute__((always_inline)) void scores_shape(int hd, int n, group_query *g, const uint16_t *K, int nb,
                                                               float scale, float softcap, const int qmax,
                                                               const int np)
{
    for (int i0 = 0; i0 < n; i0 += qmax) {
        const int nh = n - i0 < qmax ? n - i0 : qmax;
        for (int j = 0; j < nb; j += 2 * np) {
            const uint16_t *k[16];
#pragma GCC unroll 16
            for (int kk = 0; kk < 2 * np; kk++) /* keys past nb: a spare copy of the last one */
                k[kk] = K + (size_t)(j + kk < nb ? j + kk : nb - 1) * hd;
            __m512 acc[8];
#pragma GCC unroll 8
            for (int a = 0; a < qmax * np; a++)
                acc[a] = _mm512_setzero_ps();
            for (int e = 0; e < hd; e += 8) {
                __m512 kv[8];
#pragma GCC unroll 8
                for (int p = 0; p < np; p++)
                    kv[p] = _mm512_cvtph_ps(
                        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(k[2 * p] + e))),
                                                _mm_loadu_si128((const __m128i *)(k[2 * p + 1] + e)), 1));
#pragma GCC unroll 8
                for (int i = 0; i < qmax; i++) {
                    if (i >= nh)
                        break;
                    const __m512 qv = _mm512_broadcast_f32x8(_mm256_loadu_ps(g[i0 + i].qf + e));
#pragma GCC unroll 8
                    for (int p = 0; p < np; p++)
                        acc[i * np + p] = _mm512_fmadd_ps(qv, kv[p], acc[i * np + p]);
                }
            }
            for (int i = 0; i < nh; i++)
                for (int p = 0; p < np && j + 2 * p < nb; p++) {
                    const __m512 d = sum8_halves(acc[i * np + p]);
                    float s0 = _mm512_cvtss_f32(d) * scale, s1 = _mm_cvtss_f32(_mm512_extractf32x4_ps(d, 2)) * scale;
                    if (softcap != 0.0f) {
                        s0 = softcap * tanhf(s0);
                        s1 = softcap * tanhf(s1);
                    }
                    g[i0 + i].sc[j + 2 * p] = s0;
                    if (j + 2 * p + 1 < nb)
                        g[i0 + i].sc[j + 2 * p + 1] = s1;
                }
        }
    }
}

static void scores_pairs(int hd, int n, group_query *g, const uint16_t *K, int nb, float scale, float softcap)
{
    if (n <= 2)
        scores_shape(hd, n, g, K, nb, scale, softcap, 2, 4);
    else if (n <= 4)
        scores_shape(hd, n, g, K, nb, scale, softcap, 4, 2);
    else
        scores_shape(hd, n, g, K, nb, scale, softcap, 8, 1);
}

/* The accumulation of values V[0..nb) into the group's accumulators, for up to VH queries and
 * VC x 16 elements at a time: their accumulators stay in registers (as floats that are halves:
 * every step rounds to half and back, exactly what storing and loading the half gives) while the
 * block's keys go by, and each value is converted once for all the queries. Each step depends on
 * the one before it for the same key order (the reference's half accumulator), so the VH x VC
 * independent chains are what keeps the core busy. Per key j and query i, as the reference: on a
 * new maximum acc = half(acc * ex) then acc = half(v * 1 + acc); else acc = half(v * ex + acc). */
#define VH 4 /* queries per pass */
#define VC 4 /* 16-element chunks per pass */

static inline __m512 to_half_and_back(__m512 x)
{
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, NEAREST));
}

static void values_block(int hd, int n, group_query *g, const uint16_t *V, int nb)
{
    for (int i0 = 0; i0 < n; i0 += VH) {
        const int nh = n - i0 < VH ? n - i0 : VH;
        for (int e0 = 0; e0 < hd; e0 += 16 * VC) {
            __mmask16 m[VC];
            __m512 a[VH][VC], x[VC];
#pragma GCC unroll 4
            for (int c = 0; c < VC; c++) {
                const int e = e0 + 16 * c;
                m[c] = e < hd ? first_lanes(hd - e < 16 ? hd - e : 16) : 0;
            }
#pragma GCC unroll 4
            for (int i = 0; i < VH; i++)
#pragma GCC unroll 4
                for (int c = 0; c < VC; c++)
                    a[i][c] = i < nh ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m[c], g[i0 + i].acc + e0 + 16 * c))
                                     : _mm512_setzero_ps();
            for (int j = 0; j < nb; j++) {
#pragma GCC unroll 4
                for (int c = 0; c < VC; c++)
                    x[c] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m[c], V + (size_t)j * hd + e0 + 16 * c));
#pragma GCC unroll 4
                for (int i = 0; i < VH; i++) {
                    if (i >= nh)
                        break;
                    const group_query *gi = &g[i0 + i];
                    __m512 w = _mm512_set1_ps(gi->ex[j]);
                    if (gi->news >> j & 1) {
#pragma GCC unroll 4
                        for (int c = 0; c < VC; c++)
                            a[i][c] = to_half_and_back(_mm512_mul_ps(a[i][c], w));
                        w = _mm512_set1_ps(1.0f);
                    }
#pragma GCC unroll 4
                    for (int c = 0; c < VC; c++)
                        a[i][c] = to_half_and_back(_mm512_fmadd_ps(x[c], w, a[i][c]));
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < VH; i++)
#pragma GCC unroll 4
                for (int c = 0; c < VC; c++)
                    if (i < nh)
                        _mm256_mask_storeu_epi16(g[i0 + i].acc + e0 + 16 * c, m[c], _mm512_cvtps_ph(a[i][c], NEAREST));
        }
    }
}

/* x's lanes moved up by k (lane j takes lane j - k), the first k lanes -inf */
static inline __m512 lanes_up(__m512 x, int k)
{
    const __m512i idx = _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(k));
    return _mm512_mask_permutexvar_ps(_mm512_set1_ps(-INFINITY), (__mmask16)(0xffffu << k), idx, x);
}

/* The running maximum over a block's nb scores in key order, as the reference steps through it:
 * key j sets a new maximum when its score exceeds the maximum of the old one and the keys before
 * it (then arg = max - s; else arg = s - max), and the block's exponentials e^arg. In vector
 * form: the maximum before each key is a prefix maximum (a score that is NaN never becomes the
 * maximum, as it never compares greater), and the comparisons and differences are the scalar
 * ones lane by lane. Lanes from nb on: arg 0, not a new maximum. */
static void running_max(group_query *gi, int nb)
{
    const __mmask16 valid = first_lanes(nb);
    const __m512 s = _mm512_maskz_loadu_ps(valid, gi->sc);
    const __mmask16 num = _mm512_cmp_ps_mask(s, s, _CMP_ORD_Q) & valid;
    __m512 incl = _mm512_mask_blend_ps(num, _mm512_set1_ps(-INFINITY), s); /* inclusive prefix maximum */
    incl = _mm512_max_ps(incl, lanes_up(incl, 1));
    incl = _mm512_max_ps(incl, lanes_up(incl, 2));
    incl = _mm512_max_ps(incl, lanes_up(incl, 4));
    incl = _mm512_max_ps(incl, lanes_up(incl, 8));
    const __m512 old = _mm512_set1_ps(gi->max);
    const __m512 before = _mm512_max_ps(old, lanes_up(incl, 1)); /* the maximum before each key */
    const __mmask16 news = _mm512_cmp_ps_mask(s, before, _CMP_GT_OQ) & valid;
    __m512 arg = _mm512_mask_sub_ps(_mm512_sub_ps(s, before), news, before, s);
    arg = _mm512_maskz_mov_ps(valid, arg);
    _mm512_storeu_ps(gi->ex, exp_avx512(arg));
    gi->news = news;
    /* the maximum after the block: the last key's "before", or that key itself when it set one */
    const float last_before = _mm512_cvtss_f32(_mm512_permutexvar_ps(_mm512_set1_epi32(nb - 1), before));
    gi->max = news >> (nb - 1) & 1 ? gi->sc[nb - 1] : last_before;
}

static void query_group_avx512(int hd, int n, const float *const *q, const uint16_t *K, const uint16_t *V, int first,
                               int last, float scale, float softcap, void *scratch, float *const *out)
{
    if (n == 1 && hd % 8 == 0) {
        /* a lone query's accumulators are only hd / 16 chains of 16 lanes here, and each step
         * waits for the one before it; in 8 lanes they are twice as many (hd 64, 2048 keys from
         * memory: 11 against 14.5 ns per key). The steps, and so the bits, are the same. */
        wl_att_query_group_avx2(hd, n, q, K, V, first, last, scale, softcap, scratch, out);
        return;
    }
    group_query g[WL_ATT_GROUP];
    wl_att_group_init(g, n, hd, scratch);
    for (int i = 0; i < n; i++)
        for (int e = 0; e < hd; e += 16) {
            const __mmask16 m = first_lanes(hd - e < 16 ? hd - e : 16);
            _mm512_mask_storeu_ps(g[i].qf + e, m,
                                  _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, q[i] + e), NEAREST)));
        }
    for (int p0 = first; p0 <= last; p0 += 16) {
        const int nb = last - p0 + 1 < 16 ? last - p0 + 1 : 16;
        wl_att_prefetch_next_block(K, V, p0, last, hd);
        if (hd % 8 == 0)
            scores_pairs(hd, n, g, K + (size_t)p0 * hd, nb, scale, softcap);
        else /* dot8's scalar tail: one key at a time */
            for (int j = 0; j < nb; j++) {
                const uint16_t *k = K + (size_t)(p0 + j) * hd;
                for (int i = 0; i < n; i++) {
                    float s = wl_att_dot8(g[i].qf, k, hd) * scale;
                    if (softcap != 0.0f)
                        s = softcap * tanhf(s);
                    g[i].sc[j] = s;
                }
            }
        for (int i = 0; i < n; i++)
            running_max(&g[i], nb);
        values_block(hd, n, g, V + (size_t)p0 * hd, nb);
        wl_att_group_sums(g, n, nb);
    }
    for (int i = 0; i < n; i++) {
        const __m512 inv = _mm512_set1_ps(1.0f / g[i].sum);
        for (int e = 0; e < hd; e += 16) {
            const __mmask16 m = first_lanes(hd - e < 16 ? hd - e : 16);
            _mm512_mask_storeu_ps(out[i] + e, m,
                                  _mm512_mul_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, g[i].acc + e)), inv));
        }
    }
}

/* One query: the group of one. */
static void query_avx512(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last,
                         float scale, float softcap, void *scratch, float *out)
{
    query_group_avx512(hd, 1, &q, K, V, first, last, scale, softcap, scratch, &out);
}

/* The float path (wl_att_query_f32) for 16 queries of one KV head, one per lane, as the half
 * tile above: per block of 16 keys the scores of 8 keys at a time (8 independent FMA chains over
 * the head's elements, the key's element broadcast), the block's softmax on 16 lanes, then the
 * values in chunks of 16 elements whose 16 accumulators stay in registers while the block's 16
 * keys go by. Keys a query does not see leave its lane as it is (masks). Same bits as
 * wl_att_query_f32 for every query. */
static void tile_f32_avx512(const wl_att_tile *t, void *scratch)
{
    const int hd = t->hd, n = t->n, B = WL_ATT_F32_BLOCK;
    float *qt = scratch;                  /* (hd, 16) the queries, transposed */
    float *acc = qt + (size_t)hd * 16;    /* (hd, 16) the accumulators, transposed */
    float *kf = acc + (size_t)hd * 16;    /* (B, hd) the block's keys as floats */
    float *vf = kf + (size_t)B * hd;      /* (B, hd) the block's values as floats */
    float *pw = vf + (size_t)B * hd;      /* (B, 16) the block's weights */
    float *sc = pw + (size_t)B * 16;      /* (B, 16) the block's scores */

    int first[WL_ATT_LANES], last[WL_ATT_LANES], pmin, pmax;
    lane_ranges(t, first, last, &pmin, &pmax);
    for (int e = 0; e < hd; e++)
        for (int i = 0; i < 16; i++)
            qt[(size_t)e * 16 + i] = i < n ? t->q[i][e] : 0.0f;
    memset(acc, 0, (size_t)hd * 16 * sizeof *acc);

    const __m512i vfirst = _mm512_loadu_si512(first), vlast = _mm512_loadu_si512(last);
    const __m512 scale = _mm512_set1_ps(t->scale), ninf = _mm512_set1_ps(-INFINITY);
    __m512 m = ninf, sum = _mm512_setzero_ps();
    for (int b0 = pmin / B * B; b0 <= pmax; b0 += B) {
        __mmask16 seen[WL_ATT_F32_BLOCK], any = 0;
        for (int j = 0; j < B; j++) {
            const __m512i vp = _mm512_set1_epi32(b0 + j);
            seen[j] = _mm512_cmp_epi32_mask(vfirst, vp, _MM_CMPINT_LE) & _mm512_cmp_epi32_mask(vp, vlast, _MM_CMPINT_LE);
            any |= seen[j];
        }
        if (!any)
            continue;
        for (int j = 0; j < B; j++)
            if (seen[j]) {
                halves_to_f32(kf + (size_t)j * hd, t->K + (size_t)(b0 + j) * hd, hd);
                halves_to_f32(vf + (size_t)j * hd, t->V + (size_t)(b0 + j) * hd, hd);
            }

        /* scores, 8 keys at a time: a[j] = sum over e of q[e] * k_j[e], e in order */
        __m512 bmax = ninf;
        for (int j0 = 0; j0 < B; j0 += 8) {
            __m512 a[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                a[j] = _mm512_setzero_ps();
            for (int e = 0; e < hd; e++) {
                const __m512 qv = _mm512_loadu_ps(qt + (size_t)e * 16);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++)
                    a[j] = _mm512_fmadd_ps(qv, _mm512_set1_ps(kf[(size_t)(j0 + j) * hd + e]), a[j]);
            }
            for (int j = 0; j < 8; j++) {
                __m512 s = _mm512_mul_ps(a[j], scale);
                if (t->softcap != 0.0f && seen[j0 + j]) {
                    float l[16];
                    _mm512_storeu_ps(l, s);
                    for (int i = 0; i < 16; i++)
                        l[i] = t->softcap * tanhf(l[i]);
                    s = _mm512_loadu_ps(l);
                }
                _mm512_storeu_ps(sc + (size_t)(j0 + j) * 16, s);
                bmax = _mm512_mask_mov_ps(bmax, _mm512_mask_cmp_ps_mask(seen[j0 + j], s, bmax, _CMP_GT_OQ), s);
            }
        }

        /* the block's softmax */
        const __mmask16 up = _mm512_cmp_ps_mask(bmax, m, _CMP_GT_OQ);
        if (up) {
            const __m512 r = exp_avx512(_mm512_sub_ps(m, bmax));
            for (int d = 0; d < hd; d++) {
                float *row = acc + (size_t)d * 16;
                _mm512_storeu_ps(row, _mm512_mask_mul_ps(_mm512_loadu_ps(row), up, _mm512_loadu_ps(row), r));
            }
            sum = _mm512_mask_mul_ps(sum, up, sum, r);
            m = _mm512_mask_mov_ps(m, up, bmax);
        }
        for (int j = 0; j < B; j++) {
            const __m512 p = _mm512_maskz_mov_ps(seen[j], exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(sc + (size_t)j * 16), m)));
            _mm512_storeu_ps(pw + (size_t)j * 16, p);
            sum = _mm512_add_ps(sum, p);
        }

        /* the values: 16 elements at a time, their accumulators in registers */
        for (int d0 = 0; d0 < hd; d0 += 16) {
            const int nd = hd - d0 < 16 ? hd - d0 : 16;
            __m512 r[16];
#pragma GCC unroll 16
            for (int dd = 0; dd < 16; dd++)
                r[dd] = dd < nd ? _mm512_loadu_ps(acc + (size_t)(d0 + dd) * 16) : _mm512_setzero_ps();
            for (int j = 0; j < B; j++) {
                if (!seen[j])
                    continue;
                const __m512 p = _mm512_loadu_ps(pw + (size_t)j * 16);
                const float *v = vf + (size_t)j * hd + d0;
#pragma GCC unroll 16
                for (int dd = 0; dd < 16; dd++)
                    if (dd < nd)
                        r[dd] = _mm512_mask3_fmadd_ps(p, _mm512_set1_ps(v[dd]), r[dd], seen[j]);
            }
#pragma GCC unroll 16
            for (int dd = 0; dd < 16; dd++)
                if (dd < nd)
                    _mm512_storeu_ps(acc + (size_t)(d0 + dd) * 16, r[dd]);
        }
    }

    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
    float l[16];
    for (int d = 0; d < hd; d++) {
        _mm512_storeu_ps(l, _mm512_mul_ps(_mm512_loadu_ps(acc + (size_t)d * 16), inv));
        for (int i = 0; i < n; i++)
            t->out[i][d] = l[i];
    }
}

const wl_att_ops wl_att_ops_avx512 = {
    .to_f32 = to_f32_avx512,
    .to_f16 = to_f16_avx512,
    .dot = wl_att_dot_avx2,
    .scale = scale_avx512,
    .mad = mad_avx512,
    .exp = wl_att_exp_fma,
    .query = query_avx512,
    .query_group = query_group_avx512,
    .query_f32 = wl_att_query_f32_fma,
    .tile = tile_avx512,
    .tile_f32 = tile_f32_avx512,
};
