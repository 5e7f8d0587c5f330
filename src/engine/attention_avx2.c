/* attention_avx2.c - attention's half-precision steps with F16C and FMA (see attention_impl.h).
 * Conversions are exact in both directions (round to nearest even, like wl_fp32_to_fp16), the
 * multiply-add is fused like fmaf, and dot keeps the 8 lanes of the scalar version: the results
 * are the scalar versions' bit for bit, only faster. */
#include <immintrin.h>

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
float wl_att_dot_avx2(const float *qf, const uint16_t *k, int n);

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
float wl_att_exp_fma(float x);

float wl_att_exp_fma(float x)
{
    return wl_expf(x);
}

/* wl_att_query_f32 with FMA instructions; also the AVX-512 family's */
void wl_att_query_f32_fma(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last,
                          float scale, float softcap, void *scratch, float *out);

void wl_att_query_f32_fma(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last,
                          float scale, float softcap, void *scratch, float *out)
{
    wl_att_query_f32_body(wl_att_exp_fma, hd, q, K, V, first, last, scale, softcap, scratch, out);
}

const wl_att_ops wl_att_ops_avx2 = {.to_f32 = to_f32_avx2,
                                    .to_f16 = to_f16_avx2,
                                    .dot = wl_att_dot_avx2,
                                    .scale = scale_avx2,
                                    .mad = mad_avx2,
                                    .exp = wl_att_exp_fma,
                                    .query_f32 = wl_att_query_f32_fma};
