/* gemv.c - which decode GEMV a kernel family has (see gemv.h), the calls into it, and the
 * scalar definition of its arithmetic. */
#include "engine/gemv.h"

#include <math.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gemv_impl.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

int wl_gemv_supported(int isa, uint32_t type)
{
#if defined(__x86_64__)
    return isa == WL_ISA_AVX512 && wl_cpu()->avx512vnni && wl_cpu()->avx512vbmi &&
           wl_isa_available(WL_ISA_AVX512) && type == WL_TYPE_Q4_0;
#else
    (void)isa;
    (void)type;
    return 0;
#endif
}

size_t wl_gemv_prep_bytes(int64_t n)
{
    return (size_t)((n / WL_QK + 3) / 4) * WL_GEMV_PREP_QUAD;
}

void wl_gemv_prepare(uint32_t type, int64_t n, const void *xq, void *prep)
{
    (void)type; /* Q4_0 only (wl_gemv_supported) */
#if defined(__x86_64__)
    wl_gemv_prepare_avx512(n, xq, prep);
#else
    (void)n, (void)xq, (void)prep;
#endif
}

void wl_gemv(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
             const void *prep, float *y)
{
    (void)type;
#if defined(__x86_64__)
    wl_gemv_avx512(n, w, w_stride, r0, r1, prep, y);
#else
    (void)n, (void)w, (void)w_stride, (void)r0, (void)r1, (void)prep, (void)y;
#endif
}

/* The 16 lanes of quad q of row wr against the activation row xb, into acc (gemv.h). */
static void quad_ref(const unsigned char *wr, const unsigned char *xb, int64_t nb, int64_t q, float acc[16])
{
    for (int l = 0; l < 16; l++) {
        const int64_t b = 4 * q + l / 4;
        const int k = l % 4;
        int32_t isum = 0;
        float d = 0.0f; /* past the row's end: 0, and isum 0 (gemv.h) */
        if (b < nb) {
            const unsigned char *blk = wr + (size_t)b * sizeof(wl_block_q4_0);
            const unsigned char *xblk = xb + (size_t)b * sizeof(wl_block_q8_0);
            const signed char *xs = (const signed char *)(xblk + 2);
            for (int i = 4 * k; i < 4 * k + 4; i++)
                isum += ((blk[2 + i] & 15) - 8) * xs[i] + ((blk[2 + i] >> 4) - 8) * xs[i + WL_QK / 2];
            d = wl_fp16_to_fp32(wl_load_u16(blk)) * wl_fp16_to_fp32(wl_load_u16(xblk)); /* rounds */
        }
        acc[l] = fmaf((float)isum, d, acc[l]);
    }
}

void wl_gemv_ref(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                 const void *xq, float *y)
{
    (void)type;
    const int64_t nb = n / WL_QK, nq = (nb + 3) / 4;
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *wr = (const unsigned char *)w + (size_t)r * w_stride;
        float acc[2][16] = {{0}}, s[16];
        for (int64_t q = 0; q < nq; q++)
            quad_ref(wr, xq, nb, q, acc[q % 2]);
        for (int l = 0; l < 16; l++)
            s[l] = acc[0][l] + acc[1][l];
        for (int width = 8; width >= 1; width /= 2)
            for (int l = 0; l < width; l++)
                s[l] = s[l] + s[l + width];
        y[r] = s[0];
    }
}
