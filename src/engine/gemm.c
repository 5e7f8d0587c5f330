/* gemm.c - which prefill GEMM a kernel family has (see gemm.h), and the calls into it. */
#include "engine/gemm.h"

#include "engine/cpu.h"
#include "engine/gemm_impl.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

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
    return (size_t)((ntok + 1) / 2) * (size_t)(n / WL_QK) * WL_GEMM_PREP_BLOCK;
}

void wl_gemm_prepare(uint32_t type, int64_t n, const void *xq, size_t x_stride, int64_t ntok, void *prep)
{
#if defined(__x86_64__)
    wl_gemm_prepare_avx512(type, n, xq, x_stride, ntok, prep);
#else
    (void)type, (void)n, (void)xq, (void)x_stride, (void)ntok, (void)prep;
#endif
}

void wl_gemm(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prep,
             int64_t ntok, float *y, size_t ldy)
{
#if defined(__x86_64__)
    wl_gemm_avx512(type, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
#else
    (void)type, (void)n, (void)w, (void)w_stride, (void)r0, (void)r1, (void)prep, (void)ntok, (void)y, (void)ldy;
#endif
}
