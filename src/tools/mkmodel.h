/* mkmodel.h - random-weight models of real shapes, written as GGUF files that wandler and
 * llama.cpp both load: the keys, tensor names and layouts llama.cpp's converters write for each
 * architecture, a usable vocabulary, and weights drawn from N(0, sigma) (norm weights near 1),
 * deterministic for a seed whatever the thread count. Speed does not depend on the weights'
 * values, so these stand in for the real models in benchmarks; the tiny shapes make the models
 * of the architecture tests.
 *
 * Tensors are generated, converted to their format (a plain type or a llama.cpp mix such as
 * Q4_K_M, see quant_plan.h) and written one slab of rows at a time: memory stays at a few
 * megabytes whatever the model's size. */
#ifndef WL_TOOLS_MKMODEL_H
#define WL_TOOLS_MKMODEL_H

#include <stdint.h>

#include "tools/quantize.h"
#include "wandler.h"

/* The dimensions and options of a model. Zero means "the architecture's default" where said. */
typedef struct wl_mkmodel_dims {
    int arch;            /* enum wl_arch */
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;
    int n_vocab;         /* of the synthetic vocabulary (>= 300); a copied one sets its own */
    int head_dim;        /* 0: n_embd / n_head */
    int n_rot;           /* 0: head_dim */
    int n_ctx_train;
    float rope_base;
    float rope_base_swa; /* 0: the architecture's default (gemma3: 10000) */
    float norm_eps;
    int n_swa;           /* sliding window (gemma2/3; phi3 writes it as llama.cpp's converter does) */
    int swa_pattern;     /* 0: the architecture's default (gemma2: 2, gemma3: 6) */
    float attn_softcap;  /* gemma2 */
    float final_softcap; /* gemma2, gemma3 (0: not written for gemma3) */
    int tied;            /* no output.weight (always for gemma2) */
    int qkv_bias;        /* attn_q/k/v.bias (qwen2) */
    int fused_qkv;       /* attn_qkv instead of attn_q/k/v (phi3) */
    int llama3_rope;     /* rope_freqs.weight from Llama 3's rule (factor 32, low 1, high 4,
                          * original context llama3_orig_ctx) */
    int llama3_orig_ctx;
    int longrope;        /* rope_factors_long/short + rope.scaling.attn_factor (phi3) */
    int n_ctx_orig;      /* rope.scaling.original_context_length (longrope) */
} wl_mkmodel_dims;

typedef struct wl_mkmodel_shape {
    const char *name;    /* "smollm2-135m", "tiny" */
    const char *about;   /* "SmolLM2-135M" */
    wl_mkmodel_dims dims;
} wl_mkmodel_shape;

/* The shape called `name` ("tiny" needs arch, an enum wl_arch; real shapes imply theirs, and
 * arch 0 accepts any), or NULL. */
const wl_mkmodel_shape *wl_mkmodel_find_shape(int arch, const char *name);
/* Every shape, in a table ending with a NULL name. */
const wl_mkmodel_shape *wl_mkmodel_shapes(void);

typedef struct wl_mkmodel_params {
    wl_mkmodel_dims dims;
    const char *name;       /* general.name (NULL: "wandler-mkmodel") */
    const char *ftype;      /* "F32", "Q8_0", "Q4_K_M", ... (wl_ftype_find); NULL: F32 */
    const char *const *tensor_types; /* "PATTERN=TYPE" overrides as in wl_quantize_params */
    int n_tensor_types;
    uint64_t seed;
    float sigma;            /* standard deviation of the weights (<= 0: 0.02) */
    const char *vocab_path; /* GGUF whose tokenizer.* keys to copy (its vocab size wins), or NULL
                             * for a synthetic SentencePiece vocabulary of dims.n_vocab tokens */
    int n_threads;          /* <= 0: one per core */
    wl_note_fn note;
    void *note_ctx;
} wl_mkmodel_params;

/* Checks the dimensions (every product and ratio sane, heads dividing, ...). Errors:
 * INVALID_ARGUMENT naming the field. */
int wl_mkmodel_check(const wl_mkmodel_dims *d, wandler_error *err);

/* Writes the model to `out` (replaced; removed again on failure). Errors: INVALID_ARGUMENT (bad
 * dimensions, file type or override, a format the quantizer does not write yet), the errors of
 * reading vocab_path, IO, OUT_OF_MEMORY. */
int wl_mkmodel(const wl_mkmodel_params *p, const char *out, wandler_error *err);

/* The synthetic vocabulary: tokenizer.ggml.* keys of a SentencePiece ("llama") vocabulary of
 * n_vocab >= 300 tokens: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> (so any text
 * tokenizes), then "▁" and pieces of letters, digits and punctuation, scored so that longer
 * pieces win; for phi3 (arch) the last token is <|endoftext|>, which llama.cpp requires of a
 * model named phi-3. Errors: INVALID_ARGUMENT, OUT_OF_MEMORY. */
struct gguf_writer;
int wl_mkmodel_synth_vocab(struct gguf_writer *w, int n_vocab, int arch, wandler_error *err);

#endif
