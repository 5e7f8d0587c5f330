/* kernels.h - dot products and matrix products of weights in every format with activations.
 *
 * A weight matrix W has `rows` rows of n values each, stored in its format `type`, row r at
 * byte offset r * w_stride. Activations are float rows; before a product they are converted once
 * into the format the weight type pairs with, its "activation type" (ggml's vec_dot_type), by
 * the table's quantize_act:
 *
 *     weights            activations
 *     F32                F32   (a copy)
 *     F16                F16   (each value rounded to half, to nearest even)
 *     BF16               BF16  (each value rounded to bfloat16, to nearest even)
 *     Q8_0, Q4_0         Q8_0  (wl_quantize_act_block_q8_0: llama.cpp's x86 run-time rule)
 *
 * Every function exists per ISA family (cpu.h); wl_kernels(isa) returns the table of one family,
 * with the scalar family as the reference. A family that lacks a kernel for a type falls back to
 * the one of the family below it (scalar < avx2 < avx512; scalar < neon), so every entry is
 * non-NULL for every supported type (wl_type_supported).
 *
 * ONE ARITHMETIC. Every family computes every result bit for bit like the scalar reference, and
 * a (row, token) result depends on nothing but that row and that token: not on the family (the
 * CPU), on ntok (decode and prefill agree), on the row range nor on the thread split. The
 * arithmetic is the one llama.cpp's x86 CPU code performs (our reference outputs come from it,
 * and near-ties of small models resolve alike only when we compute alike). In what follows
 * fma(a, b, c) is a * b + c rounded once (C99 fmaf), every other operation rounds to float, and
 *
 *     sum8(l) = ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
 *
 * is the order in which 8 float lanes are added at the end (an AVX2 horizontal sum).
 *
 * Float weights (F32 x F32, F16 x F16, BF16 x BF16): 16 lanes s[0..15], all +0 at first. Element
 * i (F16/BF16 values converted exactly to float) goes to lane i mod 16, in element order:
 * s[i % 16] = fma(w_i, x_i, s[i % 16]); a tail (n not a multiple of 16) continues the same
 * assignment. The result is sum8(s[j] + s[j + 8], j = 0..7). (AVX2: two 8-lane accumulators for
 * lanes 0-7 and 8-15; AVX-512: one zmm, masked tail; NEON: four q-registers.)
 *
 * 32-value blocks against Q8_0 (Q8_0, Q4_0): 8 lanes acc[0..7], all +0 at first. For each block b
 * in order, with d = d_w * d_x (one float product of the two scales as floats) and isum_l the
 * exact int32 sum of the products w_j * x_j of the block's values j = 4l..4l+3 (value order),
 *
 *     acc[l] = fma(d, (float)isum_l, acc[l])          for l = 0..7,
 *
 * and the result is sum8(acc). (These are the lanes of AVX2 maddubs + madd, or VNNI dpbusd, on
 * one block; AVX-512 may compute two blocks' integer sums in one zmm but applies their FMAs to
 * the 8-lane accumulator in block order.) Q4_0's value j < 16 is the low nibble of qs[j], value
 * j + 16 the high one, minus 8.
 *
 * Shapes and alignment: n >= 1 for F32/F16/BF16 (any length: tails are handled) and a whole
 * number of blocks for the block formats. Weight and activation rows may sit at any byte address
 * (GGUF blocks are not aligned); y is an ordinary float array.
 *
 * Typical use, y = W x for a batch of ntok tokens (x: ntok rows of n floats):
 *
 *     const wl_kernel_table *k = wl_kernels(wl_isa_best());
 *     uint32_t at = wl_act_type(type);
 *     size_t xs = wl_act_row_bytes(type, n);               // bytes of one converted row
 *     for (t = 0; t < ntok; t++) k->quantize_act[at](x + t * n, xq + t * xs, n);
 *     // then on each thread, its own row range [r0, r1):
 *     k->matmul[type](n, w, w_stride, r0, r1, xq, xs, ntok, y, ldy);  // y[t * ldy + r]
 */
#ifndef WL_ENGINE_KERNELS_H
#define WL_ENGINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor_type.h"

/* out[0] = dot(w[0..n), x[0..n)): one weight row (its `type`) with one activation row (its
 * activation type). For block formats n is a whole number of blocks. */
typedef void (*wl_vec_dot_fn)(int64_t n, float *out, const void *w, const void *x);

/* y[t * ldy + r] = dot(W row r, X row t), for r in [r0, r1) and t in [0, ntok); no other
 * element of y is written. w points at row 0; W rows are w_stride bytes apart; activation rows
 * (activation type) x_stride bytes apart. This is the unit of work the thread pool splits by
 * row ranges; decode calls it with ntok = 1 (a GEMV), prefill with a batch of tokens (a GEMM).
 * Any split gives the same bits; for speed give each thread one contiguous range of at least 16
 * rows (decode takes four rows at a time, one from each quarter of the range, so that each
 * quarter streams through memory sequentially), and keep ranges a multiple of 4 rows. */
typedef void (*wl_matmul_fn)(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                             const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy);

/* Converts one activation row of n floats into an activation type (the table entry's index):
 * F32 is a copy; F16 and BF16 round each value to nearest even (wl_fp32_to_fp16 /
 * wl_fp32_to_bf16); Q8_0 (n a whole number of blocks) is wl_quantize_act_block_q8_0 per block,
 * which never produces -128 (the int8 kernels rely on |q| <= 127). Every family writes the same
 * bytes as the scalar one for finite inputs. dst may have any alignment. */
typedef void (*wl_quantize_act_fn)(const float *x, void *dst, int64_t n);

typedef struct wl_kernel_table {
    int isa; /* the family (enum wl_isa) */
    wl_vec_dot_fn vec_dot[WL_TYPE_COUNT];       /* by weight type; NULL when unsupported */
    wl_matmul_fn matmul[WL_TYPE_COUNT];         /* by weight type; NULL when unsupported */
    wl_quantize_act_fn quantize_act[WL_TYPE_COUNT]; /* by activation type; NULL for others */
} wl_kernel_table;

/* The table of family `isa`, or NULL when that family was not compiled in or cannot run on
 * this CPU. wl_kernels(WL_ISA_SCALAR) is never NULL. Thread-safe. */
const wl_kernel_table *wl_kernels(int isa);

/* The activation type weight type `type` pairs with (see the table above; F32 for a type
 * without kernels). */
uint32_t wl_act_type(uint32_t type);

/* Bytes of one activation row of n values for weight type `type` (its activation type's row
 * size; 0 when n is not a whole number of that type's blocks). */
size_t wl_act_row_bytes(uint32_t type, int64_t n);

#endif
