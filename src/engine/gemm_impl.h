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

/* Decode over R16 (gemm_avx512.c) prefetches each line ahead of its loads, with the hint and the
 * distance wl_gemv_r16_nta() picks (the hardware prefetcher alone leaves a thread well short of
 * memory's speed). Two threads streaming 550-700 MB, variants alternated, against the probe:
 *   - Zen 5, memory at ~90 GB/s: NTA (into L1, not L2) at 6-8 KiB read at 90% of the probe, NTA at
 *     12 KiB 88%, T0 (into L1 and L2) at 6, 8, 12, 16 KiB 87, 86, 84, 83%; adding an L2 prefetch
 *     (T1) 32-64 KiB ahead fell to 66-69%.
 *   - Intel Xeon with AMX (family 6 model 167 as KVM reports it, 2 MiB L2), memory at ~30 GB/s
 *     (bench_decode_ceiling, kernel against the 256 MiB probe): NTA at 8 KiB 40%; T0 at 8 KiB 82%;
 *     T1 at 8 KiB 91%; T1 at 1, 2, 4 KiB 85-86, 89-90, 89-90%; T0 at 1, 2 KiB 85-88, 89-90%.
 *     Intel's NTA prefetch fills L1 alone and the L2 streamer does not follow it, so a thread
 *     has only its L1 fill buffers in flight.
 * bench_decode_ceiling reads with the same prefetch. */
#ifndef WL_GEMV_R16_PREFETCH_NTA
#define WL_GEMV_R16_PREFETCH_NTA 8192 /* bytes ahead, non-temporally (AMD) */
#endif
#ifndef WL_GEMV_R16_PREFETCH_L2
#define WL_GEMV_R16_PREFETCH_L2 4096 /* bytes ahead, into L2 (others) */
#endif
/* The L2 hint; a build may set it to _MM_HINT_T0 or _MM_HINT_T2 to measure those. */
#ifndef WL_GEMV_R16_HINT_L2
#define WL_GEMV_R16_HINT_L2 _MM_HINT_T1
#endif

/* 1 when decode over R16 prefetches non-temporally (_MM_HINT_NTA) on this CPU: on AMD's (the
 * measurements above); 0 when it prefetches into L2 (_MM_HINT_T1). Thread-safe. */
int wl_gemv_r16_nta(void);

/* Decode over R16's prefetch of the line at p + its distance: non-temporally when nta, else into
 * L2. nta must be a constant where this expands (_mm_prefetch takes only a constant hint), so a
 * caller keeps one copy of its loop per value. x86-64 with <immintrin.h>; for gemm_avx512.c and
 * the probes that read as it does (membw.c, bench_decode_ceiling.c). */
#define WL_GEMV_R16_PREFETCH_LINE(p, nta)                                                            \
    ((nta) ? _mm_prefetch((const char *)(p) + WL_GEMV_R16_PREFETCH_NTA, _MM_HINT_NTA)                \
           : _mm_prefetch((const char *)(p) + WL_GEMV_R16_PREFETCH_L2, WL_GEMV_R16_HINT_L2))

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
