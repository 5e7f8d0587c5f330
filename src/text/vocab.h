/* vocab.h - a model's vocabulary and its tokenizer: text -> token ids -> bytes.
 *
 * Loaded from the GGUF metadata (tokenizer.ggml.*). Tokenizer families by tokenizer.ggml.model:
 *   "llama": SentencePiece-style (scores, "▁" for spaces, byte fallback <0xNN>).
 * Token types are GGUF's tokenizer.ggml.token_type values. */
#ifndef WL_TEXT_VOCAB_H
#define WL_TEXT_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "wandler.h"

enum wl_token_type {
    WL_TOKEN_UNDEFINED = 0,
    WL_TOKEN_NORMAL = 1,
    WL_TOKEN_UNKNOWN = 2,
    WL_TOKEN_CONTROL = 3,
    WL_TOKEN_USER_DEFINED = 4,
    WL_TOKEN_UNUSED = 5,
    WL_TOKEN_BYTE = 6,
};

enum wl_vocab_kind {
    WL_VOCAB_SPM = 1, /* tokenizer.ggml.model = "llama" */
};

typedef struct wl_vocab wl_vocab;

/* Reads the vocabulary of a GGUF file. The vocab copies what it needs; f may be closed after.
 * Errors: MODEL_MISSING_KEY, MODEL_KEY_TYPE, MODEL_BAD_VOCAB (array lengths disagree, special
 * id out of range, a byte token missing...), MODEL_UNSUPPORTED_TOKENIZER, OUT_OF_MEMORY. */
int wl_vocab_load(const gguf_file *f, wl_vocab **out, wandler_error *err);
void wl_vocab_free(wl_vocab *v);

int wl_vocab_kind_of(const wl_vocab *v);
int32_t wl_vocab_size(const wl_vocab *v);
int32_t wl_vocab_bos(const wl_vocab *v); /* -1 when the model has none */
int32_t wl_vocab_eos(const wl_vocab *v); /* -1 when none */
int32_t wl_vocab_unk(const wl_vocab *v); /* -1 when none */
int wl_vocab_add_bos(const wl_vocab *v); /* tokenizer.ggml.add_bos_token (SPM default: 1) */
int wl_vocab_add_eos(const wl_vocab *v); /* tokenizer.ggml.add_eos_token (default: 0) */
/* 1 when generating `id` ends the answer (EOS, and end-of-generation tokens). */
int wl_vocab_is_eog(const wl_vocab *v, int32_t id);
int wl_vocab_token_type(const wl_vocab *v, int32_t id);
/* The token's text as stored in the vocabulary ("▁the", "<0x0A>"), length in *len. */
const char *wl_vocab_token_text(const wl_vocab *v, int32_t id, size_t *len);

/* Tokenizes len bytes of UTF-8 text. Prepends BOS when add_bos. With parse_special, the texts
 * of control and user-defined tokens found in the text become those tokens; without, they are
 * tokenized as plain text. On success *ids (malloc'd, caller frees) holds *n_ids tokens.
 * Errors: BAD_UTF8 (the text is not valid UTF-8), OUT_OF_MEMORY. */
int wl_tokenize(const wl_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                int32_t **ids, size_t *n_ids, wandler_error *err);

/* The bytes token `id` stands for: "▁" becomes a space, <0xNN> the byte NN; control tokens
 * give nothing unless render_special. Writes at most cap bytes to buf and returns the full
 * length (call again with a bigger buffer when it exceeds cap). */
size_t wl_token_to_bytes(const wl_vocab *v, int32_t id, int render_special, char *buf, size_t cap);

#endif
