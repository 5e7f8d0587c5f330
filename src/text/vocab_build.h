/* vocab_build.h - building a wl_vocab from plain arrays.
 *
 * wl_vocab_load() reads the GGUF metadata into a wl_vocab_spec and calls wl_vocab_build(), which
 * does every check and derives what the tokenizers need. Tests use it to make vocabularies in
 * memory. */
#ifndef WL_TEXT_VOCAB_BUILD_H
#define WL_TEXT_VOCAB_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "text/vocab.h"
#include "wandler.h"

typedef struct wl_strview {
    const char *ptr;
    size_t len;
} wl_strview;

typedef struct wl_vocab_spec {
    int kind;                /* enum wl_vocab_kind */
    int64_t n_tokens;        /* >= 1 */
    const wl_strview *texts; /* [n_tokens] token texts (an empty one becomes "[EMPTY_<id>]",
                                as llama.cpp does) */
    const float *scores;     /* [n_tokens] or NULL (all 0) */
    const int32_t *types;    /* [n_tokens] enum wl_token_type, or NULL (all NORMAL) */
    /* Special ids: -1 = none. Anything else must be < n_tokens. */
    int64_t bos, eos, unk, pad, eot, eom;
    int add_bos, add_eos;
    int add_space_prefix;
    const char *name;        /* general.name or NULL: llama.cpp gives Phi-3's special tokens
                                the rstrip attribute, by name */
    /* BPE only. */
    const wl_strview *merges; /* [n_merges] "left right": two token texts and one space, in
                                 rank order (the first merges first) */
    int64_t n_merges;
    const char *pre;          /* tokenizer.ggml.pre (pre_len bytes); NULL: "default" */
    size_t pre_len;
} wl_vocab_spec;

/* A spec for `kind` with the family's defaults and no arrays. SPM: bos 1, eos 2, unk 0,
 * add_bos 1, add_space_prefix 1. BPE: bos 11, eos 11 (llama.cpp's odd defaults for files that
 * name neither), add_bos 0 (the loader applies the pre-tokenizer family's default). */
wl_vocab_spec wl_vocab_spec_default(int kind);

/* Errors: MODEL_BAD_VOCAB (no tokens, a special id out of range, an unknown token type, a
 * duplicate text, a NaN score; SPM: a byte token whose text is not <0xNN>, a byte with no token
 * to fall back to; BPE: a merge that is not two token texts separated by a space, more than
 * 2^31 - 1 merges), MODEL_UNSUPPORTED_TOKENIZER (kind, or a BPE pre-tokenizer wandler does not
 * know), OUT_OF_MEMORY. */
int wl_vocab_build(const wl_vocab_spec *spec, wl_vocab **out, wandler_error *err);

#endif
