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

float wl_att_dot_avx2(const float *qf, const uint16_t *k, int n);
float wl_att_exp_fma(float x);

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
 * scores first, then the softmax's running maximum in key order (scalar: a compare per key), the
 * 16 exponentials in one vector, then the accumulation in key order. Each query takes exactly the
 * reference's steps in its order (the dot's 8 lanes over the elements, the running maximum per
 * key, scale and multiply-add per key), so each result has its bits; the queries' accumulations,
 * each a chain of dependent steps through the keys, are independent of each other and overlap. */
typedef struct {
    uint16_t *acc; /* (hd) the accumulator, half */
    float *qf;     /* (hd) the query, half-rounded */
    float *sc, *arg, *ex; /* (16) each: per key of a block */
    float max, sum;
    unsigned news; /* bit j: key j of the block set a new maximum */
} group_query;

static void query_group_avx512(int hd, int n, const float *const *q, const uint16_t *K, const uint16_t *V, int first,
                               int last, float scale, float softcap, void *scratch, float *const *out)
{
    group_query g[WL_ATT_GROUP];
    /* per query: hd halves and hd floats (each rounded up to 64 bytes), then 3 x 16 floats */
    const size_t acc_bytes = ((size_t)hd * 2 + 63) / 64 * 64, qf_bytes = ((size_t)hd * 4 + 63) / 64 * 64;
    unsigned char *at = scratch;
    for (int i = 0; i < n; i++, at += acc_bytes + qf_bytes + 3 * 64) {
        g[i].acc = (uint16_t *)(void *)at;
        g[i].qf = (float *)(void *)(at + acc_bytes);
        g[i].sc = (float *)(void *)(at + acc_bytes + qf_bytes);
        g[i].arg = g[i].sc + 16;
        g[i].ex = g[i].arg + 16;
        g[i].max = -INFINITY;
        g[i].sum = 0.0f;
        for (int e = 0; e < hd; e += 16) {
            const __mmask16 m = first_lanes(hd - e < 16 ? hd - e : 16);
            _mm512_mask_storeu_ps(g[i].qf + e, m,
                                  _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, q[i] + e), NEAREST)));
        }
        memset(g[i].acc, 0, (size_t)hd * sizeof *g[i].acc);
    }
    for (int p0 = first; p0 <= last; p0 += 16) {
        const int nb = last - p0 + 1 < 16 ? last - p0 + 1 : 16;
        for (int j = 0; j < nb; j++) {
            const uint16_t *k = K + (size_t)(p0 + j) * hd;
            for (int i = 0; i < n; i++) {
                float s = wl_att_dot8(g[i].qf, k, hd) * scale;
                if (softcap != 0.0f)
                    s = softcap * tanhf(s);
                g[i].sc[j] = s;
            }
        }
        for (int i = 0; i < n; i++) {
            group_query *gi = &g[i];
            gi->news = 0;
            for (int j = 0; j < 16; j++) {
                if (j >= nb) {
                    gi->arg[j] = 0.0f;
                } else if (gi->sc[j] > gi->max) {
                    gi->arg[j] = gi->max - gi->sc[j];
                    gi->max = gi->sc[j];
                    gi->news |= 1u << j;
                } else {
                    gi->arg[j] = gi->sc[j] - gi->max;
                }
            }
            _mm512_storeu_ps(gi->ex, exp_avx512(_mm512_loadu_ps(gi->arg)));
        }
        for (int j = 0; j < nb; j++) {
            const uint16_t *v = V + (size_t)(p0 + j) * hd;
            for (int i = 0; i < n; i++) {
                group_query *gi = &g[i];
                float old_scale = 1.0f, weight = gi->ex[j];
                if (gi->news >> j & 1) {
                    old_scale = gi->ex[j];
                    weight = 1.0f;
                    scale_avx512(gi->acc, old_scale, hd);
                }
                mad_avx512(gi->acc, v, weight, hd);
                gi->sum = gi->sum * old_scale + weight;
            }
        }
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

void wl_att_query_f32_fma(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last,
                          float scale, float softcap, void *scratch, float *out);

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
