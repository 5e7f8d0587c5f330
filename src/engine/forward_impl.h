/* forward_impl.h - the state of one sequence (wl_ctx) as forward.c and attention.c share it,
 * and how decode shares out a product (for the benchmarks that replay it). Internal to the
 * engine. */
#ifndef WL_ENGINE_FORWARD_IMPL_H
#define WL_ENGINE_FORWARD_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/attention_impl.h"
#include "engine/model.h"

/* B = max_batch; q_dim = n_head * head_dim; kv_dim = n_head_kv * head_dim. */
struct wl_ctx {
    const wl_model *m;
    wl_pool *pool;
    const wl_kernel_table *kt;
    int n_ctx;
    int max_batch;
    size_t bytes;

    uint16_t *k_cache; /* (n_layer, n_head_kv, n_ctx, head_dim) rotated keys, half */
    uint16_t *v_cache; /* (n_layer, n_head_kv, n_ctx, head_dim) values, half */

    float *x;        /* (B, dim) the residual stream */
    float *xn;       /* (B, max(dim, q_dim, n_ff)) normalized x, the input of the next product,
                      * and the output of Wo and Wdown */
    float *q;        /* (B, q_dim) queries */
    float *k;        /* (B, kv_dim) keys of the batch */
    float *v;        /* (B, kv_dim) values of the batch */
    float *qkv;      /* (B, q_dim + 2 kv_dim) output of a fused Wqkv, or NULL when no layer has one */
    float *att;      /* (B, q_dim) attention output, per head concatenated */
    float *hb;       /* (B, n_ff) gate, then act(gate) * up */
    float *hb2;      /* (B, n_ff) up; (B, 2 n_ff) gate and up of a fused Wup */
    unsigned char *att_scratch; /* (wl_att_chunks, wl_att_scratch_bytes(head_dim)): each chunk's
                                 * scratch, 64-byte aligned */
    const wl_att_ops *att_ops; /* attention's vector steps for the kernel family */
    float *rope_cs;     /* (B, n_rot) cos, sin pairs of each token's position, global layers */
    float *rope_cs_swa; /* (B, n_rot) likewise for the sliding-window layers */
    const float *rope_ff; /* (n_rot/2) RoPE frequency divisors in use, or NULL */
    void *act;       /* (B, act bytes of max(dim, q_dim, n_ff)) activations in their kernel form */
    size_t act_cap;  /* bytes of act */
    void *gemm_prep[3]; /* the prepared activations of the prefill GEMM (gemm.h) or the decode
                         * GEMV (gemv.h), for Q4_0 and Q8_0 weights; [2]: one token's, for the
                         * GEMM over repacked Q4_0 weights (repack.h) */
    struct wl_steal_slot *steal; /* (pool size) the products' row blocks per thread (steal.h) */
};

/* softmax(q . K^T * scale) V for every (token, head) of a batch of ntok tokens at positions
 * pos0.. of layer il, over the cached positions each token may see (causal, and within the
 * window of a sliding-window layer): c->q -> c->att. Splits the (token, head) pairs over the
 * pool. */
void wl_attention(wl_ctx *c, int il, int pos0, int ntok);

/* How decode shares out one product of `rows` rows of row_bytes bytes (forward.c's
 * DECODE_BLOCK_BYTES says why): blocks of *block_rows rows (whole groups of WL_R16_ROWS), taken
 * at most *most at a time (steal.h); returns the number of blocks. repacked: every weight of the
 * product is in R16 (one stream per range), else the kernel table's four-stream GEMVs. threads
 * >= 1. Pure; any thread. */
int64_t wl_decode_blocks(int64_t rows, size_t row_bytes, int repacked, int threads, int64_t *block_rows,
                         int64_t *most);

/* How many chunks wl_attention cuts its (token, head) pairs into for the pool's threads. */
int wl_att_chunks(const wl_pool *pool);

/* The attention steps to use with kernel family isa (all give the same bits). */
const wl_att_ops *wl_att_ops_for(int isa);

#endif
