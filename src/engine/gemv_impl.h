/* gemv_impl.h - what the AVX-512 GEMV file gives gemv.c (internal; see gemv.h). */
#ifndef WL_ENGINE_GEMV_IMPL_H
#define WL_ENGINE_GEMV_IMPL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
/* gemv_avx512.c: Q4_0 weights; AVX-512 F/BW/VL/DQ + VNNI + VBMI. */
void wl_gemv_prepare_avx512(int64_t n, const void *xq, void *prep);
void wl_gemv_avx512(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prep,
                    float *y);
#endif

#endif
