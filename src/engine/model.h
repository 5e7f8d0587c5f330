/* model.h - a transformer's weights and hyper-parameters, read from a GGUF file, and the
 * per-session state (KV cache, scratch) that runs it.
 *
 * wl_model is immutable once loaded: weights point into the read-only mapping of the file
 * (never copied), or, for the Q4_0 matrices wl_repack_model rebinds right after the load, into
 * the mapped cache file of their repacked layout; only the small norm vectors are converted to
 * F32 into owned memory.
 * wl_ctx holds what one sequence needs: the KV cache and scratch buffers, and the thread pool
 * it computes with. The forward pass takes a batch of tokens at consecutive positions. */
#ifndef WL_ENGINE_MODEL_H
#define WL_ENGINE_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/threadpool.h"
#include "wandler.h"

/* A weight matrix (or vector) inside the mapping. Row r of a matrix holds the weights of
 * output r: ne[0] values of `type`, row_bytes apart. */
typedef struct wl_tensor {
    const char *name; /* the GGUF tensor name */
    uint32_t type;    /* enum wl_type */
    int64_t ne[4];    /* ne[0] = row length (inputs), ne[1] = rows (outputs) */
    size_t row_bytes; /* bytes of one row (in the file's layout, whatever data's is) */
    const void *data; /* into the mapping: the file's, or the repacked weights' */
    int layout;       /* enum wl_layout (repack.h): WL_LAYOUT_ROWS as in the file, or
                       * WL_LAYOUT_R16 once repacked (repack_cache.h) */
} wl_tensor;

enum wl_arch {
    WL_ARCH_LLAMA = 1, /* Llama 2/3, TinyLlama, SmolLM */
    WL_ARCH_QWEN2,     /* Qwen2/2.5 and the DeepSeek-R1 distills built on it */
    WL_ARCH_QWEN3,
    WL_ARCH_GEMMA2,
    WL_ARCH_GEMMA3,
    WL_ARCH_PHI3,
    WL_ARCH_COUNT
};

/* The gated feed-forward activation: hidden = act(gate) * up. */
enum wl_ffn_act {
    WL_ACT_SILU = 0, /* SwiGLU: x * sigmoid(x) */
    WL_ACT_GELU = 1, /* GeGLU with the tanh approximation of GELU (gemma) */
};

/* "llama", "qwen2", ... for an enum wl_arch, or NULL. */
const char *wl_arch_name(int arch);
/* The enum wl_arch of a general.architecture value, or 0 when wandler does not run it. */
int wl_arch_from_name(const char *name, size_t len);

typedef struct wl_hparams {
    int arch;        /* enum wl_arch */
    int n_vocab;     /* tokens in the vocabulary = rows of the embedding */
    int n_ctx_train; /* context length the model was trained with */
    int n_embd;      /* width of the residual stream, "dim" */
    int n_layer;
    int n_head;                /* query heads */
    int n_head_kv;             /* key/value heads (grouped-query attention: n_head % n_head_kv == 0) */
    int head_dim;              /* attention.key_length (= value_length); n_embd / n_head when absent */
    int n_ff;                  /* hidden width of the feed-forward network */
    int n_rot;                 /* dimensions of each head that RoPE rotates (<= head_dim, even) */
    int rope_neox;             /* 0: RoPE rotates pairs (x[2i], x[2i+1]) (llama); 1: pairs
                                * (x[i], x[i + n_rot/2]) (NeoX style: qwen, gemma, phi3) */
    float norm_eps;            /* RMSNorm epsilon */
    float rope_base;           /* RoPE frequency base of the global (full-attention) layers */
    float rope_base_swa;       /* ... of the sliding-window layers */
    float rope_freq_scale;     /* linear RoPE scaling of the global layers: angles * this (1 = none) */
    float rope_freq_scale_swa; /* ... of the sliding-window layers */
    float rope_attn_factor;    /* cos and sin are multiplied by this (LongRoPE's factor; 1 = none) */
    int n_ctx_orig;            /* rope.scaling.original_context_length: a context longer than this
                                * uses the long LongRoPE factors (0 = n_ctx_train) */
    int n_swa;                 /* sliding window of the SWA layers: the query at position p sees keys
                                * at p' with p - p' < n_swa; 0 when no layer slides */
    float embd_scale;          /* token embeddings are multiplied by this (gemma: sqrt(n_embd)) */
    float q_scale;             /* queries are multiplied by this after RoPE (1 = not at all) */
    float kq_scale;            /* attention scores q.k are multiplied by this */
    float attn_softcap;        /* attention scores s -> c tanh(s / c) (gemma2); 0 = off */
    float final_softcap;       /* logits likewise (gemma2, some gemma3); 0 = off */
    int ffn_act;               /* enum wl_ffn_act */
} wl_hparams;

/* One transformer block. Vectors point into the model's owned F32 storage; matrices into the
 * mapping. An optional tensor that the file lacks has data == NULL (vectors: NULL).
 * q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim. */
typedef struct wl_layer {
    const float *attn_norm;      /* (dim) */
    wl_tensor wq;                /* (q_dim, dim): rows are outputs; absent when wqkv is used */
    wl_tensor wk;                /* (kv_dim, dim) */
    wl_tensor wv;                /* (kv_dim, dim) */
    wl_tensor wqkv;              /* (q_dim + 2 kv_dim, dim): fused q, k, v rows (phi3) or absent */
    const float *bq, *bk, *bv;   /* (q_dim), (kv_dim), (kv_dim) biases (qwen2) or NULL */
    const float *q_norm;         /* (head_dim) RMSNorm of every query head (qwen3, gemma3) or NULL */
    const float *k_norm;         /* (head_dim) likewise for the key heads */
    wl_tensor wo;                /* (dim, q_dim) */
    const float *attn_post_norm; /* (dim) norm of the attention output (gemma) or NULL */
    const float *ffn_norm;       /* (dim) */
    wl_tensor w_gate;            /* (n_ff, dim); absent when w_up is fused */
    wl_tensor w_up;              /* (n_ff, dim), or fused (2 n_ff, dim): gate rows then up rows */
    wl_tensor w_down;            /* (dim, n_ff) */
    const float *ffn_post_norm;  /* (dim) norm of the feed-forward output (gemma) or NULL */
    int swa;                     /* 1: a sliding-window layer (n_swa, rope_base_swa) */
} wl_layer;

typedef struct wl_model {
    wl_hparams hp;
    const char *arch_name;   /* "llama", "qwen2", ... (static) */
    char *name;              /* general.name or "" (owned) */
    wl_tensor tok_embd;      /* (n_vocab, dim) */
    const float *out_norm;   /* (dim) */
    wl_tensor output;        /* (n_vocab, dim); the embedding itself when tied */
    const float *output_b;   /* (n_vocab) output bias or NULL */
    const float *rope_freqs; /* (n_rot/2) RoPE frequency divisors (Llama 3 scaling) or NULL */
    const float *rope_long;  /* (n_rot/2) LongRoPE divisors above n_ctx_orig, or NULL */
    const float *rope_short; /* (n_rot/2) LongRoPE divisors up to n_ctx_orig, or NULL */
    wl_layer *layers;        /* [n_layer] */
    uint64_t n_params;       /* total weights */
    float *norms;            /* owned F32 storage every vector above points into */
    const gguf_file *file;   /* borrowed: must outlive the model */
} wl_model;

/* Reads hyper-parameters and binds the weights of a GGUF file. `f` is borrowed and must
 * outlive the model. Errors: MODEL_UNSUPPORTED_ARCH, MODEL_MISSING_KEY, MODEL_KEY_TYPE,
 * MODEL_BAD_HPARAM, MODEL_MISSING_TENSOR, MODEL_TENSOR_SHAPE, MODEL_UNSUPPORTED_TYPE,
 * OUT_OF_MEMORY. */
int wl_model_load(const gguf_file *f, wl_model **out, wandler_error *err);
void wl_model_free(wl_model *m);

/* ---- running it ---- */

typedef struct wl_ctx wl_ctx;

/* Creates the state of one sequence of at most n_ctx tokens (KV cache + scratch) computing
 * with `pool` (borrowed) and kernel family `isa`. Errors: INVALID_ARGUMENT, OUT_OF_MEMORY. */
int wl_ctx_create(const wl_model *m, int n_ctx, wl_pool *pool, int isa, wl_ctx **out, wandler_error *err);
void wl_ctx_free(wl_ctx *c);

int wl_ctx_n_ctx(const wl_ctx *c);
/* Bytes the context owns (KV cache + scratch). */
size_t wl_ctx_bytes(const wl_ctx *c);

/* Largest batch wl_forward() takes at once. */
int wl_ctx_max_batch(const wl_ctx *c);

/* Runs tokens[0..n) at positions pos..pos+n-1 through the model, writing their keys and values
 * into the cache (the cache must already hold positions 0..pos-1), and writes the logits of the
 * last token to logits[n_vocab] (when logits is not NULL). n <= wl_ctx_max_batch(), pos + n <=
 * n_ctx, and every token < n_vocab (checked: INVALID_ARGUMENT). */
int wl_forward(wl_ctx *c, const int32_t *tokens, int n, int pos, float *logits, wandler_error *err);

#endif
