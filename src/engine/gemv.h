/* gemv.h - the decode GEMV (one token) of Q4_0 weights with AVX-512 VNNI and VBMI, on
 * activations laid out once per matrix product for every thread to share.
 *
 * Why a second decode path for Q4_0: the kernel table's decode GEMV (kernels.h) follows the
 * canonical 8-lane chain, one block of a row after the other, and on Zen 5 it needs about as
 * many cycles per block as memory takes to deliver one (~40 GB/s per core in cache and from
 * memory alike), so with two cores it cannot keep up with memory. This one takes a row's blocks
 * four at a time (a "quad", 72 bytes), one zmm for all 128 values, and needs ~1.6x fewer cycles.
 *
 * Arithmetic (wl_gemv_ref defines it, the AVX-512 kernel equals it bit for bit). Per row, two
 * accumulators of 16 float lanes, A (even quads) and B (odd quads), start at 0. Lane l = 4j + k
 * of quad q belongs to block b = 4q + j and to the 8 values v in {4k..4k+3, 16+4k..16+4k+3}:
 *
 *     isum = sum over those v of (nibble(v) - 8) * x[v]            (exact, int32)
 *     d    = d_w[b] * d_x[b]                                        (rounds: no fusing)
 *     acc  = fmaf((float)isum, d, acc)     acc = A[l] for even q, B[l] for odd q
 *
 * with isum = 0 and d = 0 for blocks past the end of the row (the last quad may hold 1 to 4
 * blocks). Then s[l] = A[l] + B[l] and y = ((s8[0..7] = s[i] + s[i+8]) -> s4[i] = s8[i] +
 * s8[i+4] -> s2[i] = s4[i] + s4[i+2]) -> s2[0] + s2[1]. This is neither the canonical 8-lane
 * chain nor the prefill GEMM's one chain per row (gemm.h): results differ from both in
 * rounding, as llama.cpp's decode and prefill paths differ from each other.
 *
 * The activations of a product are first prepared (wl_gemv_prepare), one record of
 * WL_GEMV_PREP_QUAD bytes per quad of blocks:
 *
 *     int8  lo[64]    lo[16j + i] = x[4q + j][i]        (the values the low nibbles meet)
 *     int8  hi[64]    hi[16j + i] = x[4q + j][16 + i]   (the high nibbles)
 *     int32 init[16]  init[4j + k] = -8 * (sum of the 8 x of lane 4j + k)
 *     float d[16]     d[4j + k] = d_x[4q + j]
 *
 * zero for blocks past the end. Usage, for y = W x with x already a Q8_0 activation row
 * (kernels.h):
 *
 *     if (wl_gemv_supported(isa, type)) {
 *         wl_gemv_prepare(type, n, xq, prep);             // prep: wl_gemv_prep_bytes(n), 64-aligned
 *         // then on each thread, any row range [r0, r1):
 *         wl_gemv(type, n, w, w_stride, r0, r1, prep, y);
 *     }
 *
 * Shapes: w [rows][w_stride bytes] (Q4_0 blocks, any alignment); xq [n/32 Q8_0 blocks];
 * prep [ceil(n/128)][WL_GEMV_PREP_QUAD bytes]; y [rows] floats. n is a whole number of blocks.
 * Every function here may be called from any thread; prep is read-only for wl_gemv. */
#ifndef WL_ENGINE_GEMV_H
#define WL_ENGINE_GEMV_H

#include <stddef.h>
#include <stdint.h>

#define WL_GEMV_PREP_QUAD 256 /* bytes of the prepared activations of one quad of blocks */

/* 1 when kernel family `isa` on this CPU has the decode GEMV for weight type `type`: Q4_0 on
 * the AVX-512 family with VNNI and VBMI. */
int wl_gemv_supported(int isa, uint32_t type);

/* Bytes of the prepared activations of one row of n values. */
size_t wl_gemv_prep_bytes(int64_t n);

/* Prepares the Q8_0 activation row xq (n values) for weight type `type` at prep
 * (wl_gemv_prep_bytes(n) bytes, 64-byte aligned). Only when wl_gemv_supported(). */
void wl_gemv_prepare(uint32_t type, int64_t n, const void *xq, void *prep);

/* y[r] = dot(W row r, x) for r in [r0, r1); bit for bit wl_gemv_ref's result. Only when
 * wl_gemv_supported(). */
void wl_gemv(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
             const void *prep, float *y);

/* The scalar definition of wl_gemv's arithmetic (above), on the Q8_0 activation row xq itself;
 * Q4_0 weights, any CPU. */
void wl_gemv_ref(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                 const void *xq, float *y);

#endif
