/* gemm_impl.h - what the per-ISA GEMM files give gemm.c (internal; see gemm.h). */
#ifndef WL_ENGINE_GEMM_IMPL_H
#define WL_ENGINE_GEMM_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one prepared block of one token: 32 quant bytes, the int32 starting sum, the float
 * scale (gemm.h). */
#define WL_GEMM_PREP_BLOCK 40
#define WL_GEMM_PREP_INIT 32 /* offset of the starting sum */
#define WL_GEMM_PREP_D 36    /* offset of the scale */

/* Decode over R16 (gemm_avx512.c) prefetches each line this many bytes ahead, non-temporally
 * (into L1, not L2; the hardware prefetcher alone leaves a thread well short of memory's speed).
 * Two threads streaming 700 MB, rounds of every variant in rotated order against the probe
 * (Zen 5, memory at ~90 GB/s): NTA at 6-8 KiB read at 90% of the probe, NTA at 12 KiB 88%, T0
 * (into L1 and L2) at 6, 8, 12, 16 KiB 87, 86, 84, 83%; adding an L2 prefetch (T1) 32-64 KiB
 * ahead fell to 66-69%. bench_decode_ceiling reads with the same prefetch. */
#ifndef WL_GEMV_R16_PREFETCH
#define WL_GEMV_R16_PREFETCH 8192
#endif

#if defined(__x86_64__)
/* gemm_avx512.c: Q8_0 and Q4_0 weights; AVX-512 F/BW/VL/DQ + VNNI. */
void wl_gemm_prepare_avx512(uint32_t type, int64_t n, const void *xq, size_t x_stride, int64_t ntok,
                            void *prep);
void wl_gemm_avx512(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                    const void *prep, int64_t ntok, float *y, size_t ldy);
void wl_gemm_r16_avx512(int64_t n, const void *w, int64_t r0, int64_t r1, const void *prep, int64_t ntok,
                        float *y, size_t ldy);
#endif

#endif
