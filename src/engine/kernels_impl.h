/* kernels_impl.h - what the kernel files of each ISA family give kernels.c (internal).
 *
 * Each family fills a wl_kernel_table that already holds the entries of the family below it
 * (scalar < avx2 < avx512; scalar < neon), replacing the kernels it implements, so a family
 * that lacks a kernel keeps a working one. Every kernel computes the canonical arithmetic of
 * kernels.h, so the kernel a table ends up with never changes a result, only its speed. */
#ifndef WL_ENGINE_KERNELS_IMPL_H
#define WL_ENGINE_KERNELS_IMPL_H

#include "engine/cpu.h"
#include "engine/kernels.h"

/* Forces inlining of the templates the SIMD files instantiate with constant tile shapes, so
 * their small loops unroll and their accumulators live in registers. */
#if defined(__GNUC__)
#define WL_INLINE static inline __attribute__((always_inline))
#else
#define WL_INLINE static inline
#endif

/* Fills every entry of the scalar family (the reference). */
void wl_kernels_init_scalar(wl_kernel_table *t);

/* x86-64 only (kernels_avx2.c, kernels_avx512.c). The AVX-512 family uses its VNNI kernels only
 * when f->avx512vnni says the CPU has them. */
void wl_kernels_init_avx2(wl_kernel_table *t);
void wl_kernels_init_avx512(wl_kernel_table *t, const wl_cpu_features *f);

/* The k-quant kernels of those families (kernels_kquants_avx2.c, kernels_kquants_avx512.c),
 * and the AVX-512 Q4_1 / Q5_0 / Q5_1 kernels (kernels_quants_avx512.c), called by their
 * families' init functions. The AVX-512 ones install themselves only when f->avx512vnni. */
void wl_kernels_init_kquants_avx2(wl_kernel_table *t);
void wl_kernels_init_kquants_avx512(wl_kernel_table *t, const wl_cpu_features *f);
void wl_kernels_init_quants_avx512(wl_kernel_table *t, const wl_cpu_features *f);

/* aarch64 only (kernels_neon.c, and its k-quants in kernels_kquants_neon.c). */
void wl_kernels_init_neon(wl_kernel_table *t, const wl_cpu_features *f);
void wl_kernels_init_kquants_neon(wl_kernel_table *t, const wl_cpu_features *f);

/* Row and token tiling shared by the SIMD matmuls: tokens are taken in blocks whose activation
 * rows fit in about this many bytes (so they stay in the L2 cache while every weight row of the
 * range is multiplied with them, and the weights stream from memory once per block). */
#define WL_ACT_BLOCK_BYTES (512 * 1024)

/* Tokens per block of the GEMM loop for activation rows of act_row_bytes: a multiple of
 * `tile` (>= tile). */
static inline int64_t wl_token_block(size_t act_row_bytes, int tile)
{
    int64_t tb = (int64_t)(WL_ACT_BLOCK_BYTES / (act_row_bytes ? act_row_bytes : 1));
    tb -= tb % tile;
    return tb < tile ? tile : tb;
}

/* The prefill loop of the SIMD families, over [r0, r1) x [0, ntok): token blocks of `tb`
 * tokens, and in each block every tile of at most rmax rows x tmax tokens. It expects the
 * variables of a matmul (ntok, r0, r1, wb and xb as byte pointers, w_stride, x_stride, y, ldy)
 * and, for each tile, runs the `switch` on R * 8 + T whose cases WL_ALL_TILES(CASE) lists, with
 * wr, xr and yo pointing at the tile's first weight row, activation row and output. A case per
 * shape lets every tile be a call with constant R and T, which inlines into straight-line
 * register code. */
#define WL_FOR_EACH_TILE(tb, rmax, tmax, CASES)                                                 \
    for (int64_t t0 = 0; t0 < ntok; t0 += (tb)) {                                              \
        int64_t t1 = t0 + (tb) < ntok ? t0 + (tb) : ntok;                                      \
        for (int64_t r = r0; r < r1; r += (rmax)) {                                            \
            int R = (int)(r1 - r < (rmax) ? r1 - r : (rmax));                                  \
            for (int64_t t = t0; t < t1; t += (tmax)) {                                        \
                int T = (int)(t1 - t < (tmax) ? t1 - t : (tmax));                              \
                const unsigned char *wr = wb + (size_t)r * w_stride;                           \
                const unsigned char *xr = xb + (size_t)t * x_stride;                           \
                float *yo = y + (size_t)t * ldy + (size_t)r;                                   \
                switch (R * 8 + T) { CASES default : break; }                                  \
            }                                                                                  \
        }                                                                                      \
    }

/* Every tile shape up to 4 x 4; CASE(RR, TT) must clamp RR and TT to the family's maxima (the
 * larger shapes are then unreachable cases that still compile to valid code). */
#define WL_ALL_TILES(CASE)                                                                      \
    CASE(1, 1) CASE(1, 2) CASE(1, 3) CASE(1, 4)                                                \
    CASE(2, 1) CASE(2, 2) CASE(2, 3) CASE(2, 4)                                                \
    CASE(3, 1) CASE(3, 2) CASE(3, 3) CASE(3, 4)                                                \
    CASE(4, 1) CASE(4, 2) CASE(4, 3) CASE(4, 4)

#define WL_MIN(a, b) ((a) < (b) ? (a) : (b))

/* The decode loop (ntok = 1) of the SIMD families: four rows at a time, one from each quarter
 * of [r0, r1) (j, j + q, j + 2q, j + 3q), so that each quarter is one long sequential stream
 * through memory that the hardware prefetcher follows (four neighbouring short rows would
 * restart three cold streams every four rows); then the rows left over one at a time.
 * TILE(R, w, w_stride, y, ystep) computes R rows from w, w_stride bytes apart, into y[0],
 * y[ystep], ... */
#define WL_DECODE_ROWS(TILE)                                                                    \
    do {                                                                                       \
        const int64_t q_ = (r1 - r0) / 4;                                                      \
        for (int64_t j_ = 0; j_ < q_; j_++)                                                    \
            TILE(4, wb + (size_t)(r0 + j_) * w_stride, (size_t)q_ * w_stride, y + r0 + j_,     \
                 (size_t)q_);                                                                  \
        for (int64_t r_ = r0 + 4 * q_; r_ < r1; r_++)                                          \
            TILE(1, wb + (size_t)r_ * w_stride, w_stride, y + r_, (size_t)1);                  \
    } while (0)

#endif
