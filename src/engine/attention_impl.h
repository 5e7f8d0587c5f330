/* attention_impl.h - the half-precision vector steps of attention, per instruction set.
 * Internal to the engine (attention.c and attention_avx2.c). Every implementation gives the same
 * bits: conversions round to nearest even, mad uses a fused multiply-add, and dot keeps 8 float
 * lanes, fused-multiply-adds element i into lane i % 8 in index order and sums the lanes as
 * ((0+4) + (2+6)) + ((1+5) + (3+7)). */
#ifndef WL_ENGINE_ATTENTION_IMPL_H
#define WL_ENGINE_ATTENTION_IMPL_H

#include <stdint.h>

typedef struct wl_att_ops {
    /* q[0..n) as floats (from halves) */
    void (*to_f32)(float *dst, const uint16_t *src, int n);
    /* src[0..n) as halves, rounded to nearest even (wl_fp32_to_fp16) */
    void (*to_f16)(uint16_t *dst, const float *src, int n);
    /* sum_i qf[i] * k[i] over halves k, in 8 lanes (see above) */
    float (*dot)(const float *qf, const uint16_t *k, int n);
    /* acc[i] = half(acc[i] * s) */
    void (*scale)(uint16_t *acc, float s, int n);
    /* acc[i] = half(fma(v[i], s, acc[i])) */
    void (*mad)(uint16_t *acc, const uint16_t *v, float s, int n);
} wl_att_ops;

/* AVX2 + FMA + F16C versions (attention_avx2.c; x86-64 builds only), and the AVX-512 ones
 * (attention_avx512.c: 16 lanes per step for the element-wise steps; the dot is AVX2's). */
extern const wl_att_ops wl_att_ops_avx2;
extern const wl_att_ops wl_att_ops_avx512;

#endif
