/* attention_dot8.h - the 8-lane dot product of attention (see attention_impl.h) as an inline
 * function, for the files compiled with AVX2 + FMA + F16C (attention_avx2.c, attention_avx512.c):
 * sum_i qf[i] * k[i] over halves k, element i fused-multiply-added into lane i % 8 in index
 * order, the lanes summed as ((0+4) + (2+6)) + ((1+5) + (3+7)). */
#ifndef WL_ENGINE_ATTENTION_DOT8_H
#define WL_ENGINE_ATTENTION_DOT8_H

#include <immintrin.h>
#include <stdint.h>

#include "engine/quant.h"

/* dot8's final sum of the 8 lanes of r, in the canonical order ((0+4) + (2+6)) + ((1+5) + (3+7))
 * (float addition commutes exactly, so the vector pairing gives the same bits) */
static inline float wl_att_sum8(__m256 r)
{
    const __m256 t = _mm256_add_ps(r, _mm256_permute2f128_ps(r, r, 1));               /* l_k + l_k+4 */
    const __m256 u = _mm256_add_ps(t, _mm256_permute_ps(t, _MM_SHUFFLE(1, 0, 3, 2))); /* (0+4)+(2+6) */
    return _mm256_cvtss_f32(_mm256_add_ps(u, _mm256_permute_ps(u, _MM_SHUFFLE(2, 3, 0, 1))));
}

static inline float wl_att_dot8(const float *qf, const uint16_t *k, int n)
{
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(qf + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), acc);
    float l[8];
    _mm256_storeu_ps(l, acc);
    for (; i < n; i++) /* a tail continues the lanes */
        l[i % 8] = __builtin_fmaf(qf[i], wl_fp16_to_fp32(k[i]), l[i % 8]);
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

#endif
