/* gemm.h - the prefill GEMM of Q8_0 and Q4_0 weights with AVX-512 VNNI, on activations laid
 * out once per matrix product for every thread to share.
 *
 * Arithmetic (wl_gemm_ref defines it, the AVX-512 kernel equals it bit for bit): for every
 * (row r, token t), with isum[b] the exact integer dot of weight block b and activation block b,
 * d_w[b] and d_x[b] their scales as floats,
 *
 *     acc = 0; for b in 0 .. n/32 - 1 in order: acc = fmaf(d_w[b] * d_x[b], (float)isum[b], acc)
 *     y[t][r] = acc
 *
 * (the product d_w * d_x rounds, then one fma). This is one float chain per (row, token), not
 * the 8-lane canonical chain of the kernel table (kernels.h) that decode uses: prefill and
 * decode results may differ in rounding, as llama.cpp's do.
 *
 * Layout: a zmm holds 16 weight ROWS (lane i = row i of a 16-row tile) for one token. Per block
 * and token, 8 vpdpbusd (group g = values 4g..4g+3: each row's 4 bytes of group g against the
 * token's 4 bytes of group g broadcast to every lane) give the 16 rows' integer sums, then one
 * conversion, one product of the 16 rows' scales by the token's scale and one FMA. The weights
 * are rearranged into that layout on the fly, one 16-row tile at a time, into a buffer on the
 * calling thread's stack (up to 36 KiB; gemm_avx512.c), unless they were repacked at load
 * (repack.h, wl_gemm_r16 below): then each chunk is only unpacked from its 16-row records.
 *
 * The activations of a product are first prepared (wl_gemm_prepare): for each token t and block
 * b one record of WL_GEMM_PREP_BLOCK bytes, {int8 q[32]; int32 init; float d} at
 * prep + (t * n/32 + b) * WL_GEMM_PREP_BLOCK, with q the Q8_0 activation quants as they are,
 * d their scale and init = -C * sum(q), C = 8 for Q4_0 weights (the nibbles 0..15 are the
 * unsigned operand), C = 128 for Q8_0 weights (the weights + 128 are). Usage, for y = W x with x
 * already in Q8_0 activation rows (kernels.h):
 *
 *     if (wl_gemm_supported(isa, type) && ntok >= 2) {
 *         wl_gemm_prepare(type, n, xq, x_stride, ntok, prep);   // prep: wl_gemm_prep_bytes()
 *         // then on each thread, its rows [r0, r1) (best whole tiles of WL_GEMM_TILE_ROWS):
 *         wl_gemm(type, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
 *     }
 *
 * Shapes: w [rows][w_stride bytes] (Q4_0 or Q8_0 blocks, any alignment); xq [ntok][x_stride
 * bytes] (Q8_0 blocks); prep [ntok][n/32][WL_GEMM_PREP_BLOCK bytes]; y [ntok][ldy floats].
 */
#ifndef WL_ENGINE_GEMM_H
#define WL_ENGINE_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define WL_GEMM_TILE_ROWS 16 /* rows per tile of the GEMM: row ranges best start at multiples */

/* 1 when kernel family `isa` on this CPU has the prefill GEMM for weight type `type`. */
int wl_gemm_supported(int isa, uint32_t type);

/* Bytes of the prepared activations of ntok tokens of n values (n a whole number of blocks). */
size_t wl_gemm_prep_bytes(int64_t n, int64_t ntok);

/* Prepares ntok Q8_0 activation rows (x_stride bytes apart) for weight type `type` at prep
 * (wl_gemm_prep_bytes(n, ntok) bytes, any alignment; 64 bytes is best). */
void wl_gemm_prepare(uint32_t type, int64_t n, const void *xq, size_t x_stride, int64_t ntok, void *prep);

/* y[t * ldy + r] = dot(W row r, token t) for r in [r0, r1), t in [0, ntok); bit for bit
 * wl_gemm_ref's result. Only when wl_gemm_supported(). */
void wl_gemm(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
             const void *prep, int64_t ntok, float *y, size_t ldy);

/* The scalar definition of wl_gemm's arithmetic (above), on the Q8_0 activation rows xq
 * (x_stride bytes apart) themselves; Q4_0 and Q8_0 weights, any CPU. Same arguments as the
 * kernel table's matmul (kernels.h). */
void wl_gemm_ref(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                 const void *xq, size_t x_stride, int64_t ntok, float *y, size_t ldy);

/* The same product over a Q4_0 matrix repacked in R16 (repack.h; w: its first group), for any
 * ntok >= 1 (one token streams the groups once: the decode GEMV of repacked weights) and any
 * rows [r0, r1) (whole groups are best). prep as wl_gemm_prepare(WL_TYPE_Q4_0, ...) made it, also
 * for one token. Bit for bit wl_gemm_ref's result on the rows before repacking. Only when
 * wl_gemm_supported(isa, WL_TYPE_Q4_0). */
void wl_gemm_r16(int64_t n, const void *w, int64_t r0, int64_t r1, const void *prep, int64_t ntok, float *y,
                 size_t ldy);

#endif
