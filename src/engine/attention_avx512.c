/* attention_avx512.c - attention's half-precision element-wise steps with 16 lanes (see
 * attention_impl.h). Each element is converted, scaled or multiply-added on its own, exactly as
 * in the scalar and AVX2 versions (round to nearest even, fused multiply-add), so the width
 * changes no bit; the dot product keeps the 8 lanes of the AVX2 version (its order is part of
 * the result). Tails use masked loads and stores. */
#include <immintrin.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "engine/attention_impl.h"

float wl_att_dot_avx2(const float *qf, const uint16_t *k, int n);

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

const wl_att_ops wl_att_ops_avx512 = {to_f32_avx512, to_f16_avx512, wl_att_dot_avx2, scale_avx512, mad_avx512};
