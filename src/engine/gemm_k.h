/* gemm_k.h - the prefill GEMM of Q4_K, Q6_K and Q5_0 weights with AVX-512 VNNI, in row lanes.
 *
 * The table's k-quant matmul (kernels.h) keeps, per (row, token), the 8 canonical float lanes
 * of one dot product in a ymm register. Here a zmm instead holds 16 weight rows of one token,
 * lane r = row r of a 16-row tile: each group of 4 activation quants is broadcast to all 16
 * lanes and one vpdpbusd adds the 4 products of each of the 16 rows, so every instruction is
 * full width and the horizontal sums disappear. The weights are rearranged on the fly into that
 * interleaved layout, one super-block of a 16-row tile at a time, in a small buffer on the
 * stack that every token of the product then reuses; the activations are the Q8_K (Q5_0: Q8_0)
 * rows of quantize_act as they are (Q5_0: each thread first takes the scale and the sum of the
 * quants of every activation block of its chunk of tokens; nothing is shared between threads).
 *
 * THE ARITHMETIC (defined by wl_gemm_k_ref, which the AVX-512 code equals bit for bit). For one
 * (row, token), with the weight super-blocks b in order, d_w / dmin_w their scales as floats,
 * d_x the activation block's scale, q the weight quants (Q4_K 0..15, Q6_K 0..63), x the
 * activation quants and B[k] its bsums (sums of x over values 16k..16k+15):
 *
 *   Q4_K (8 sub-blocks j of 32, 6-bit scale sc_j and min m_j):
 *     isum = sum_j sc_j * (sum_{v in j} q_v x_v)            exact int32
 *     imin = sum_j m_j * (B[2j] + B[2j + 1])                 exact int32
 *     acc  = fma(d_w * d_x, (float)isum, acc)
 *     acc  = fma(-(dmin_w * d_x), (float)imin, acc)
 *   Q6_K (16 sub-blocks j of 16, int8 scale sc_j; the quants' -32 comes back through B):
 *     isum = sum_j sc_j * (sum_{v in j} q_v x_v) - 32 * sum_j sc_j * B[j]     exact int32
 *     acc  = fma(d_w * d_x, (float)isum, acc)
 *   Q5_0 (32-value blocks b with Q8_0 activations, q 0..31; d_x the activation block's half
 *   scale as a float; the -16 through the sum of the activation block's quants):
 *     isum = sum_v q_v x_v + -16 * sum_v x_v                 exact int32
 *     acc  = fma(d_w * d_x, (float)isum, acc)
 *
 * acc starts at +0 and the result is acc after the last super-block. fma(a, b, c) is a * b + c
 * rounded once, every other float operation rounds to float. This differs in rounding from the
 * canonical lanes of kernels.h (decode), which is accepted for prefill; it does not depend on
 * the row range, the thread split, ntok or the position of the token in the batch.
 *
 * Usage, for y = W x with x already in Q8_K activation rows (kernels.h):
 *
 *     if (ntok >= WL_GEMM_K_MIN_TOKENS && wl_gemm_k_supported(isa, type))  // then per thread:
 *         wl_gemm_k(type, n, w, w_stride, r0, r1, xq, x_stride, ntok, y, ldy);
 */
#ifndef WL_ENGINE_GEMM_K_H
#define WL_ENGINE_GEMM_K_H

#include <stddef.h>
#include <stdint.h>

/* Below this many tokens the table's matmul is as fast (the rearranged weights are used by too
 * few tokens to pay for themselves): callers use wl_gemm_k from this many tokens on. */
#define WL_GEMM_K_MIN_TOKENS 4

/* 1 when kernel family `isa` on this CPU has the row-lane GEMM for weight type `type` (Q4_K,
 * Q6_K or Q5_0; AVX-512 with VNNI). */
int wl_gemm_k_supported(int isa, uint32_t type);

/* y[t * ldy + r] = dot(W row r, token t) for r in [r0, r1), t in [0, ntok), by the arithmetic
 * above; no other element of y is written. n a whole number of blocks; w points at row 0, rows
 * w_stride bytes apart; x: ntok activation rows (Q8_K; Q5_0: Q8_0) x_stride bytes apart. Any
 * alignment.
 * Only when wl_gemm_k_supported(). */
void wl_gemm_k(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
               const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy);

/* The scalar reference of the arithmetic above (Q4_K, Q6_K, Q5_0; any CPU), same arguments. */
void wl_gemm_k_ref(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                   const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy);

#if defined(__x86_64__)
/* gemm_k_avx512.c (internal): the kernel itself; AVX-512 F/BW/VL/DQ + VNNI. */
void wl_gemm_k_avx512(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                      const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy);
#endif

#endif
