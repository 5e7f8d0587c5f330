/* quant_plan.h - which weight format each tensor of a model gets, for a file type ("Q8_0",
 * "Q4_K_M", ...): the choices llama.cpp's quantizer makes, so that our files hold what theirs do.
 *
 * A file type names a default tensor format and, for the k-quant mixes, rules that give some
 * tensors more bits: the output (or tied embedding) gets Q6_K, attn_v and ffn_down get Q6_K in
 * the first and last eighths of the layers and every third one between (Q4_K_M, Q5_K_M), and so
 * on. Only weight matrices are quantized: 1-D tensors (norms, biases, RoPE factors) keep their
 * format. A matrix whose rows are not whole blocks of the chosen format falls back to a wider
 * one (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, and F16 when even 32-value
 * blocks do not fit), and the plan says so in a note.
 *
 * The rules count attn_v and ffn_down tensors in the order they are planned, so plan them in
 * wl_quant_order() order (the order llama.cpp processes and writes them). */
#ifndef WL_TOOLS_QUANT_PLAN_H
#define WL_TOOLS_QUANT_PLAN_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "wandler.h"

/* A file type, general.file_type in GGUF (llama.cpp's llama_ftype numbers). */
typedef struct wl_ftype {
    const char *name;   /* "Q4_K_M" */
    uint32_t ftype;     /* the general.file_type value */
    uint32_t type;      /* the default tensor format (enum wl_type) */
} wl_ftype;

/* The file type called `name` (case-insensitive; "Q4_K" = Q4_K_M, "Q5_K" = Q5_K_M, "Q3_K" =
 * Q3_K_M as in llama-quantize), or NULL. */
const wl_ftype *wl_ftype_find(const char *name);
/* The file type whose default format is `type` without a mix ("Q8_0" for WL_TYPE_Q8_0), or NULL. */
const wl_ftype *wl_ftype_of_type(uint32_t type);
/* Every file type, in a table ending with a NULL name (for usage texts). */
const wl_ftype *wl_ftype_list(void);

/* The tensor format called `name` ("q8_0", "F16", case-insensitive), or -1. */
int wl_type_from_name(const char *name);

#define WL_QUANT_MAX_OVERRIDES 16

typedef struct wl_quant_override {
    regex_t re;       /* searched for in the tensor name (POSIX extended) */
    uint32_t type;
} wl_quant_override;

typedef struct wl_quant_plan {
    const wl_ftype *ft;
    int pure;                  /* 1: every matrix gets ft->type, no mix rules */
    int64_t output_type;       /* format for output.weight, or -1 (the rules decide) */
    int64_t embd_type;         /* format for token_embd.weight, or -1 */
    int n_layer;               /* block_count */
    int n_gqa;                 /* attention.head_count / head_count_kv */
    int is_70b;                /* a 70B llama: attn_v gets more bits */
    int tied;                  /* no output.weight: token_embd is quantized as the output */
    int n_attention_wv;        /* attn_v-like tensors in the model */
    int i_attention_wv;        /* ... planned so far */
    int i_ffn_down;
    int n_overrides;
    wl_quant_override overrides[WL_QUANT_MAX_OVERRIDES];
} wl_quant_plan;

/* Starts a plan for a model of n_layer blocks (n_gqa query heads per KV head, is_70b) whose
 * tensors are names[0..n). Free it with wl_quant_plan_free(). */
void wl_quant_plan_init(wl_quant_plan *p, const wl_ftype *ft, int n_layer, int n_gqa, int is_70b,
                        const char *const *names, size_t n);
void wl_quant_plan_free(wl_quant_plan *p);

/* Adds a per-tensor override "PATTERN=TYPE" (llama-quantize's --tensor-type: the lower-cased
 * pattern is a regular expression searched for in each tensor name; the first match wins).
 * Applies to file types with a quantized default only, as in llama.cpp.
 * Errors: INVALID_ARGUMENT (no '=', an empty side, a bad regex or type, too many). */
int wl_quant_plan_add_override(wl_quant_plan *p, const char *spec, wandler_error *err);

/* The format tensor `name` (dims ne[0..n_dims), now in format cur_type) gets. Vectors (norms,
 * biases) are never quantized: they keep F32, and an F16 or BF16 one becomes F32 (the engine
 * computes with F32 vectors, and llama.cpp's converters write them so). When the mix rule's
 * choice had to fall back to a wider format, or an override applied, a sentence saying so is
 * written to note (else note[0] = 0). Call once per tensor, in wl_quant_order() order. */
uint32_t wl_quant_plan_type(wl_quant_plan *p, const char *name, uint32_t n_dims, const uint64_t *ne,
                            uint32_t cur_type, char *note, size_t note_cap);

/* Orders tensor names as llama.cpp's loader does (and so its quantizer writes them): tensors
 * outside the blocks first, then block by block ("blk.N."), by name within each group. Fills
 * idx[0..n) with indices into names. Errors: OUT_OF_MEMORY. */
int wl_quant_order(const char *const *names, size_t n, size_t *idx, wandler_error *err);

#endif
