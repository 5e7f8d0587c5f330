/* kernels.h - dot products and matrix products of weights in every format with activations.
 *
 * A weight matrix W has `rows` rows of n values each, stored in its format `type`, row r at
 * byte offset r * w_stride. Activations are float rows; before a product they are converted once
 * into the format the weight type pairs with, its "activation type" (Q8_0 for Q8_0 and Q4_0
 * weights, as llama.cpp does; F32 for F32, F16 and BF16 weights), by wl_quantize_act().
 *
 * Every function exists per ISA family (cpu.h); wl_kernels(isa) returns the table of one family,
 * with the scalar family as the reference the others are tested against. A family that lacks a
 * kernel for a type falls back to the scalar one in its table, so every entry is non-NULL for
 * every supported type. */
#ifndef WL_ENGINE_KERNELS_H
#define WL_ENGINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor_type.h"

/* out[0] = dot(w[0..n), x[0..n)): one weight row (its `type`) with one activation row (its
 * activation type). n is a whole number of blocks. */
typedef void (*wl_vec_dot_fn)(int64_t n, float *out, const void *w, const void *x);

/* y[t * ldy + r] = dot(W row r, X row t), for r in [r0, r1) and t in [0, ntok).
 * W rows are w_stride bytes apart; activation rows (activation type) x_stride bytes apart.
 * This is the unit of work the thread pool splits by row ranges; decode calls it with
 * ntok = 1 (a GEMV), prefill with a batch of tokens (a GEMM). */
typedef void (*wl_matmul_fn)(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                             const void *x, size_t x_stride, int64_t ntok, float *y, size_t ldy);

/* Converts one activation row of n floats into activation type `act_type` (F32: a copy). */
typedef void (*wl_quantize_act_fn)(const float *x, void *dst, int64_t n);

typedef struct wl_kernel_table {
    int isa;
    wl_vec_dot_fn vec_dot[WL_TYPE_COUNT];       /* by weight type; NULL when unsupported */
    wl_matmul_fn matmul[WL_TYPE_COUNT];         /* by weight type; NULL when unsupported */
    wl_quantize_act_fn quantize_act[WL_TYPE_COUNT]; /* by activation type (F32, Q8_0) */
} wl_kernel_table;

/* The table of family `isa`, or NULL when that family was not compiled in or cannot run on
 * this CPU. wl_kernels(WL_ISA_SCALAR) is never NULL. Thread-safe. */
const wl_kernel_table *wl_kernels(int isa);

/* The activation type weight type `type` pairs with (WL_TYPE_F32 or WL_TYPE_Q8_0). */
uint32_t wl_act_type(uint32_t type);

/* Bytes of one activation row of n values for weight type `type`. */
size_t wl_act_row_bytes(uint32_t type, int64_t n);

#endif
