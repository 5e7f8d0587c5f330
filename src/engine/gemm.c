/* gemm.c - which prefill GEMM a kernel family has (see gemm.h), the calls into it, and the
 * scalar definition of its arithmetic. */
#include "engine/gemm.h"

#include <math.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gemm_impl.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

int wl_gemm_supported(int isa, uint32_t type)
{
#if defined(__x86_64__)
    return isa == WL_ISA_AVX512 && wl_cpu()->avx512vnni && wl_isa_available(WL_ISA_AVX512) &&
           (type == WL_TYPE_Q4_0 || type == WL_TYPE_Q8_0);
#else
    (void)isa;
    (void)type;
    return 0;
#endif
}

size_t wl_gemm_prep_bytes(int64_t n, int64_t ntok)
{
    return (size_t)ntok * (size_t)(n / WL_QK) * WL_GEMM_PREP_BLOCK;
}

void wl_gemm_prepare(uint32_t type, int64_t n, const void *xq, size_t x_stride, int64_t ntok, void *prep)
{
#if defined(__x86_64__)
    wl_gemm_prepare_avx512(type, n, xq, x_stride, ntok, prep);
#else
    (void)type, (void)n, (void)xq, (void)x_stride, (void)ntok, (void)prep;
#endif
}

void wl_gemm(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
             const void *prep, int64_t ntok, float *y, size_t ldy)
{
#if defined(__x86_64__)
    wl_gemm_avx512(type, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
#else
    (void)type, (void)n, (void)w, (void)w_stride, (void)r0, (void)r1, (void)prep, (void)ntok, (void)y,
        (void)ldy;
#endif
}

int wl_gemv_r16_nta(void)
{
    return wl_cpu()->amd;
}

void wl_gemm_r16(int64_t n, const void *w, int64_t r0, int64_t r1, const void *prep, int64_t ntok, float *y,
                 size_t ldy)
{
#if defined(__x86_64__)
    wl_gemm_r16_avx512(n, w, r0, r1, prep, ntok, y, ldy);
#else
    (void)n, (void)w, (void)r0, (void)r1, (void)prep, (void)ntok, (void)y, (void)ldy;
#endif
}

void wl_gemm_ref(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                 const void *xq, size_t x_stride, int64_t ntok, float *y, size_t ldy)
{
    const int64_t nb = n / WL_QK;
    const unsigned char *wb = w, *xb = xq;
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = r0; r < r1; r++) {
            const unsigned char *wr = wb + (size_t)r * w_stride, *xr = xb + (size_t)t * x_stride;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const unsigned char *xblk = xr + (size_t)b * sizeof(wl_block_q8_0);
                const signed char *xs = (const signed char *)(xblk + 2);
                int32_t isum = 0;
                float dw;
                if (type == WL_TYPE_Q4_0) {
                    const unsigned char *blk = wr + (size_t)b * sizeof(wl_block_q4_0);
                    dw = wl_fp16_to_fp32(wl_load_u16(blk));
                    for (int j = 0; j < WL_QK / 2; j++)
                        isum += ((blk[2 + j] & 15) - 8) * xs[j] + ((blk[2 + j] >> 4) - 8) * xs[j + WL_QK / 2];
                } else {
                    const unsigned char *blk = wr + (size_t)b * sizeof(wl_block_q8_0);
                    dw = wl_fp16_to_fp32(wl_load_u16(blk));
                    for (int j = 0; j < WL_QK; j++)
                        isum += (signed char)blk[2 + j] * xs[j];
                }
                const float d = dw * wl_fp16_to_fp32(wl_load_u16(xblk)); /* rounds: not fused */
                acc = fmaf(d, (float)isum, acc);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
}
