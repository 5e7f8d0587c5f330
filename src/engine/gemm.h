/* gemm.h - the prefill GEMM of Q8_0 and Q4_0 weights with AVX-512 VNNI, on activations laid
 * out once per matrix product for every thread to share.
 *
 * The canonical arithmetic of kernels.h keeps, for every (row, token), one chain of 8 float
 * lanes that takes each block's fma(d_w * d_x, isum, acc) in block order. The kernels of the
 * table keep one such chain in a ymm register and feed it from a zmm that holds two blocks of
 * one token, which costs a second FMA and an extract per pair of blocks. Here a zmm instead
 * holds the same block of two tokens, [token t | token t + 1]: the weight block is broadcast to
 * both halves, one vpdpbusd gives both tokens' 8 integer sums, and one 512-bit FMA advances
 * both tokens' chains by one block. The results are the scalar reference's bit for bit.
 *
 * The activations of a product are first converted into that pair layout (wl_gemm_prepare):
 * for each pair of tokens (the last one padded with zeros when ntok is odd) and each block,
 * 64 quant bytes, 16 int32 starting sums and 16 float scales, so the inner loop only loads
 * them. Usage, for y = W x with x already in Q8_0 activation rows (kernels.h):
 *
 *     if (wl_gemm_supported(isa, type) && ntok >= 2) {
 *         wl_gemm_prepare(type, n, xq, x_stride, ntok, prep);   // prep: wl_gemm_prep_bytes()
 *         // then on each thread, its rows [r0, r1):
 *         wl_gemm(type, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
 *     }
 */
#ifndef WL_ENGINE_GEMM_H
#define WL_ENGINE_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* 1 when kernel family `isa` on this CPU has the pair-layout GEMM for weight type `type`. */
int wl_gemm_supported(int isa, uint32_t type);

/* Bytes of the pair layout of ntok tokens of n values (n a whole number of blocks). */
size_t wl_gemm_prep_bytes(int64_t n, int64_t ntok);

/* Converts ntok Q8_0 activation rows (x_stride bytes apart) into the pair layout for weight
 * type `type` at prep (64-byte aligned, wl_gemm_prep_bytes(n, ntok) bytes). */
void wl_gemm_prepare(uint32_t type, int64_t n, const void *xq, size_t x_stride, int64_t ntok, void *prep);

/* y[t * ldy + r] = dot(W row r, token t) for r in [r0, r1), t in [0, ntok); bit for bit the
 * scalar matmul's result. Only when wl_gemm_supported(). */
void wl_gemm(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prep,
             int64_t ntok, float *y, size_t ldy);

#endif
