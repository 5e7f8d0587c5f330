/* exp.h - e^x in float, the same bits in scalar code and in every vector lane.
 *
 * Attention's softmax takes one exponential per (query, key); the C library's expf cannot be
 * vectorized, and a vector version of a different algorithm would give other bits than the
 * scalar path. So both use this one (the AVX-512 lanes in attention_avx512.c repeat it step by
 * step):
 *
 *   x clamped to [-104, 89] (e^-104 rounds to 0, e^89 overflows; NaN is passed through)
 *   n = round-to-nearest-even(x * log2(e))
 *   r = x - n ln2, with ln2 split in two parts, each step one fused multiply-add (|r| <= 0.35)
 *   p = e^r by its Taylor polynomial of degree 7 in Horner form, fused multiply-adds
 *       (truncation error < 6e-9 relative)
 *   e^x = (p * 2^a) * 2^b with a = floor(n / 2), b = n - a, so that 2^a and 2^b are normal
 *       floats for every n in [-150, 129]; the last product rounds once (denormals, overflow)
 *
 * Error: within 2 ulp of e^x over the float range (checked against exp() in double in
 * test_attention). Internal to the engine. */
#ifndef WL_ENGINE_EXP_H
#define WL_ENGINE_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define WL_EXP_LO -104.0f
#define WL_EXP_HI 89.0f
#define WL_EXP_LOG2E 1.44269502f
#define WL_EXP_LN2_HI 0.693147182f    /* ln 2 rounded to float */
#define WL_EXP_LN2_LO -1.90465421e-09f /* ln 2 - WL_EXP_LN2_HI */
#define WL_EXP_C7 1.98412701e-04f      /* 1/7! */
#define WL_EXP_C6 1.38888892e-03f      /* 1/6! */
#define WL_EXP_C5 8.33333377e-03f      /* 1/5! */
#define WL_EXP_C4 4.16666679e-02f      /* 1/4! */
#define WL_EXP_C3 1.66666672e-01f      /* 1/3! */
#define WL_EXP_C2 0.5f
#define WL_EXP_C1 1.0f

/* 2^k as a float, k in [-126, 127] */
static inline float wl_exp_pow2i(int k)
{
    const uint32_t bits = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float wl_expf(float x)
{
    if (x != x)
        return x + x;
    const float xc = x < WL_EXP_LO ? WL_EXP_LO : x > WL_EXP_HI ? WL_EXP_HI : x;
    const float nf = rintf(xc * WL_EXP_LOG2E);
    float r = fmaf(nf, -WL_EXP_LN2_HI, xc);
    r = fmaf(nf, -WL_EXP_LN2_LO, r);
    float p = WL_EXP_C7;
    p = fmaf(p, r, WL_EXP_C6);
    p = fmaf(p, r, WL_EXP_C5);
    p = fmaf(p, r, WL_EXP_C4);
    p = fmaf(p, r, WL_EXP_C3);
    p = fmaf(p, r, WL_EXP_C2);
    p = fmaf(p, r, WL_EXP_C1);
    p = fmaf(p, r, 1.0f);
    const int n = (int)nf, a = n >> 1, b = n - a;
    return (p * wl_exp_pow2i(a)) * wl_exp_pow2i(b);
}

#endif
