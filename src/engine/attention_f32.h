/* attention_f32.h - the float path of one query (wl_att_query_f32, attention_impl.h) as an
 * inline function, so that each family compiles it with its own instructions (attention.c:
 * plain C; attention_avx2.c: FMA instructions for fmaf) and every copy gives the same bits. */
#ifndef WL_ENGINE_ATTENTION_F32_H
#define WL_ENGINE_ATTENTION_F32_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/attention_impl.h"
#include "engine/quant.h"

static inline void wl_att_query_f32_body(float (*exp_fn)(float), int hd, const float *q, const uint16_t *K,
                                         const uint16_t *V, int first, int last, float scale, float softcap,
                                         void *scratch, float *out)
{
    float *acc = scratch, *s = acc + hd, *p = s + WL_ATT_F32_BLOCK;
    memset(acc, 0, (size_t)hd * sizeof *acc);
    float m = -INFINITY, sum = 0.0f;
    for (int b0 = first / WL_ATT_F32_BLOCK * WL_ATT_F32_BLOCK; b0 <= last; b0 += WL_ATT_F32_BLOCK) {
        float bmax = -INFINITY;
        for (int j = 0; j < WL_ATT_F32_BLOCK; j++) {
            const int pos = b0 + j;
            if (pos < first || pos > last)
                continue;
            float a = 0.0f;
            for (int e = 0; e < hd; e++)
                a = fmaf(q[e], wl_fp16_to_fp32(K[(size_t)pos * hd + e]), a);
            a = a * scale;
            if (softcap != 0.0f)
                a = softcap * tanhf(a);
            s[j] = a;
            if (a > bmax)
                bmax = a;
        }
        if (bmax > m) {
            const float r = exp_fn(m - bmax);
            for (int d = 0; d < hd; d++)
                acc[d] = acc[d] * r;
            sum = sum * r;
            m = bmax;
        }
        for (int j = 0; j < WL_ATT_F32_BLOCK; j++) {
            const int pos = b0 + j;
            p[j] = pos < first || pos > last ? 0.0f : exp_fn(s[j] - m);
            sum = sum + p[j];
        }
        for (int j = 0; j < WL_ATT_F32_BLOCK; j++) {
            const int pos = b0 + j;
            if (pos < first || pos > last)
                continue;
            for (int d = 0; d < hd; d++)
                acc[d] = fmaf(p[j], wl_fp16_to_fp32(V[(size_t)pos * hd + d]), acc[d]);
        }
    }
    const float inv = 1.0f / sum;
    for (int d = 0; d < hd; d++)
        out[d] = acc[d] * inv;
}

#endif
