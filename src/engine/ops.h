/* ops.h - the element-wise steps of the forward pass: RMSNorm, RoPE, activations, soft-capping.
 *
 * Each mirrors the arithmetic of llama.cpp's CPU operators (float where they use float, the
 * same order of operations), so that our outputs track the reference outputs we test against.
 * Internal to the engine; everything is static inline. */
#ifndef WL_ENGINE_OPS_H
#define WL_ENGINE_OPS_H

#include <math.h>
#include <stddef.h>

#include "engine/quant.h"

/* o[n] = x[n] / rms(x) * w[n], accumulating the sum of squares in double as ggml does. o may
 * be x. The sum runs in 8 interleaved partial sums added pairwise at the end, where ggml adds in
 * one chain: a chain of 2048 dependent additions took ~2.5 us per norm on Zen 5, 33 norms per
 * token of llama-3.2-1b. Each square is exact in double, so the two orders differ only in the
 * double's last bits, which the float scale below rounds away except at a rare tie. */
static inline void wl_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            part[j] += (double)x[i + j] * x[i + j];
    for (; i < n; i++)
        part[i % 8] += (double)x[i] * x[i];
    const double ss = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (i = 0; i < n; i++)
        o[i] = x[i] * scale * w[i];
}

/* cs[n_rot]: (cos, sin) of the angle of each rotated pair i at position pos,
 *   angle_i = freq_scale * pos * base^(-2i/n_rot) / ff[i],
 * both multiplied by mscale. The frequencies advance by repeated multiplication in float exactly
 * like ggml's rope cache. ff (n_rot/2 divisors) may be NULL: all 1. */
static inline void wl_rope_table(float *cs, int pos, int n_rot, float base, float freq_scale,
                                 const float *ff, float mscale)
{
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot; i += 2) {
        const float t = freq_scale * (ff ? theta / ff[i / 2] : theta);
        cs[i] = cosf(t) * mscale;
        cs[i + 1] = sinf(t) * mscale;
        theta *= theta_scale;
    }
}

/* Rotates the first n_rot dims of each of n_heads heads of x (heads head_dim apart) by the
 * angles of cs: adjacent pairs (x[2i], x[2i+1]) ("normal", llama), or with neox the pairs
 * (x[i], x[i + n_rot/2]) (NeoX style). The remaining dims pass through. */
static inline void wl_rope_apply(float *x, int n_heads, int head_dim, int n_rot, int neox, const float *cs)
{
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        if (!neox) {
            for (int i = 0; i < n_rot; i += 2) {
                const float c = cs[i], s = cs[i + 1];
                const float x0 = v[i], x1 = v[i + 1];
                v[i] = x0 * c - x1 * s;
                v[i + 1] = x0 * s + x1 * c;
            }
        } else {
            for (int i = 0; i < half; i++) {
                const float c = cs[2 * i], s = cs[2 * i + 1];
                const float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c - x1 * s;
                v[i + half] = x0 * s + x1 * c;
            }
        }
    }
}

static inline float wl_silu(float x)
{
    return x / (1.0f + expf(-x));
}

/* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
static inline float wl_gelu_tanh(float x)
{
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + 0.044715f * x * x)));
}

/* GELU as llama.cpp's CPU backend computes it: from a table indexed by the half-precision x,
 * holding half-precision results (so x and the result are rounded to half), with the tails
 * x <= -10 -> 0 and x >= 10 -> x exact. */
static inline float wl_gelu_f16(float x)
{
    if (x <= -10.0f)
        return 0.0f;
    if (x >= 10.0f)
        return x;
    const float xh = wl_fp16_to_fp32(wl_fp32_to_fp16(x));
    return wl_fp16_to_fp32(wl_fp32_to_fp16(wl_gelu_tanh(xh)));
}

/* The soft cap of gemma: c tanh(x / c), computed as ggml does (scale, tanh, scale). */
static inline float wl_softcap(float x, float c)
{
    return tanhf(x * (1.0f / c)) * c;
}

#endif
