/* gemm_k.c - which CPUs have the row-lane k-quant GEMM (gemm_k.h), the call into it, and its
 * scalar reference: the definition of its arithmetic, which the AVX-512 kernel equals bit for
 * bit. */
#include "engine/gemm_k.h"

#include <math.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

int wl_gemm_k_supported(int isa, uint32_t type)
{
#if defined(__x86_64__)
    return isa == WL_ISA_AVX512 && (type == WL_TYPE_Q4_K || type == WL_TYPE_Q6_K || type == WL_TYPE_Q5_0) &&
           wl_cpu()->avx512vnni && wl_isa_available(WL_ISA_AVX512);
#else
    (void)isa;
    (void)type;
    return 0;
#endif
}

void wl_gemm_k(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
               const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy)
{
#if defined(__x86_64__)
    wl_gemm_k_avx512(type, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);
#else
    (void)type, (void)n, (void)w, (void)w_stride, (void)r0, (void)r1, (void)x, (void)x_stride, (void)ntok,
        (void)y, (void)ldy;
#endif
}

/* ---- the reference ---------------------------------------------------------------------- */

/* One Q4_K super-block of one row with one activation super-block: acc advanced as gemm_k.h
 * says. */
static float step_q4_k(const unsigned char *p, const wl_block_q8_k *x, float acc)
{
    wl_block_q4_k w;
    memcpy(&w, p, sizeof w);
    int32_t isum = 0, imin = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        wl_k4_scale_min(w.scales, j, &sc, &m);
        int32_t dot = 0;
        for (int v = 32 * j; v < 32 * j + 32; v++) {
            const uint8_t byte = w.qs[32 * (v / 64) + v % 32];
            const int q = v % 64 < 32 ? byte & 0x0f : byte >> 4;
            dot += q * x->qs[v];
        }
        isum += sc * dot;
        imin += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    const float dw = wl_fp16_to_fp32(w.d), dmin = wl_fp16_to_fp32(w.dmin);
    acc = fmaf(dw * x->d, (float)isum, acc);
    acc = fmaf(-(dmin * x->d), (float)imin, acc);
    return acc;
}

/* One Q6_K super-block of one row with one activation super-block. */
static float step_q6_k(const unsigned char *p, const wl_block_q8_k *x, float acc)
{
    wl_block_q6_k w;
    memcpy(&w, p, sizeof w);
    int32_t isum = 0, corr = 0;
    for (int j = 0; j < 16; j++) {
        int32_t dot = 0;
        for (int v = 16 * j; v < 16 * j + 16; v++) {
            const int h = v / 128, r = v % 128, l = r % 32, quarter = r / 32;
            const uint8_t lo = w.ql[64 * h + l + 32 * (quarter % 2)];
            const int nib = quarter < 2 ? lo & 0x0f : lo >> 4;
            const int q = nib | (((w.qh[32 * h + l] >> (2 * quarter)) & 3) << 4);
            dot += q * x->qs[v];
        }
        isum += w.scales[j] * dot;
        corr += w.scales[j] * x->bsums[j];
    }
    isum -= 32 * corr;
    return fmaf(wl_fp16_to_fp32(w.d) * x->d, (float)isum, acc);
}

/* One Q5_0 block of one row with one Q8_0 activation block. */
static float step_q5_0(const unsigned char *p, const unsigned char *x, float acc)
{
    wl_block_q5_0 w;
    wl_block_q8_0 a;
    memcpy(&w, p, sizeof w);
    memcpy(&a, x, sizeof a);
    uint32_t qh;
    memcpy(&qh, w.qh, 4);
    int32_t dot = 0, sum = 0;
    for (int j = 0; j < WL_QK; j++) {
        const int nib = j < 16 ? w.qs[j] & 0x0f : w.qs[j - 16] >> 4;
        dot += (nib | (int)((qh >> j) & 1) << 4) * a.qs[j];
        sum += a.qs[j];
    }
    const int32_t isum = dot + -16 * sum;
    return fmaf(wl_fp16_to_fp32(w.d) * wl_fp16_to_fp32(a.d), (float)isum, acc);
}

void wl_gemm_k_ref(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                   const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy)
{
    const size_t wbytes = wl_type_get(type)->type_size;
    const int64_t nb = n / (int64_t)wl_type_get(type)->block_size;
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = r0; r < r1; r++) {
            const unsigned char *wr = (const unsigned char *)w + (size_t)r * w_stride;
            const unsigned char *xr = (const unsigned char *)x + (size_t)t * x_stride;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb && type == WL_TYPE_Q5_0; b++)
                acc = step_q5_0(wr + (size_t)b * wbytes, xr + (size_t)b * sizeof(wl_block_q8_0), acc);
            for (int64_t b = 0; b < nb && type != WL_TYPE_Q5_0; b++) {
                wl_block_q8_k xb;
                memcpy(&xb, xr + (size_t)b * sizeof xb, sizeof xb);
                if (type == WL_TYPE_Q4_K)
                    acc = step_q4_k(wr + (size_t)b * wbytes, &xb, acc);
                else
                    acc = step_q6_k(wr + (size_t)b * wbytes, &xb, acc);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
}
