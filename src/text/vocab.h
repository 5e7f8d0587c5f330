/* vocab.h - a model's vocabulary and its tokenizer: text -> token ids -> bytes.
 *
 * Loaded from the GGUF metadata (tokenizer.ggml.*). Tokenizer families by tokenizer.ggml.model:
 *   "llama": SentencePiece-style (scores, "▁" for spaces, byte fallback <0xNN>);
 *   "gpt2": byte-level BPE (merge ranks, GPT-2's byte alphabet, a pre-tokenizer chosen by
 *           tokenizer.ggml.pre).
 * Token types are GGUF's tokenizer.ggml.token_type values. */
#ifndef WL_TEXT_VOCAB_H
#define WL_TEXT_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "util/buf.h"
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
    WL_VOCAB_BPE = 2, /* tokenizer.ggml.model = "gpt2" */
};

typedef struct wl_vocab wl_vocab;

/* Reads the vocabulary of a GGUF file. The vocab copies what it needs; f may be closed after.
 * Keys: tokenizer.ggml.model and .tokens are required, and for BPE .merges; .scores,
 * .token_type, the special ids (.bos/.eos/.unknown/.padding/.eot/.eom_token_id;
 * 4294967295 = unset; SPM defaults bos 1, eos 2, unk 0; BPE defaults bos 11, eos 11 as in
 * llama.cpp), the flags .add_bos_token (SPM default 1; BPE: 1 for the Llama 3 and Tekken
 * pre-tokenizers, else 0), .add_eos_token, .add_space_prefix (SPM only) and, for BPE, .pre
 * (the pre-tokenizer; absent means "default") are optional.
 * Errors: MODEL_MISSING_KEY, MODEL_KEY_TYPE, MODEL_BAD_VOCAB (no tokens, array lengths that
 * disagree, a special id out of range, a token type GGUF does not define, two tokens with the
 * same text, a NaN score, a byte token whose text is not <0xNN>, a byte with neither a byte
 * token nor an unknown token to fall back to, a merge that is not two token texts separated by
 * a space), MODEL_UNSUPPORTED_TOKENIZER (tokenizer.ggml.model is not "llama" or "gpt2", or
 * tokenizer.ggml.pre names a pre-tokenizer wandler does not know), OUT_OF_MEMORY, INTERNAL.
 * Hostile metadata yields one of these, never a crash. */
int wl_vocab_load(const gguf_file *f, wl_vocab **out, wandler_error *err);
void wl_vocab_free(wl_vocab *v);

int wl_vocab_kind_of(const wl_vocab *v);
int32_t wl_vocab_size(const wl_vocab *v);
int32_t wl_vocab_bos(const wl_vocab *v); /* -1 when the model has none */
int32_t wl_vocab_eos(const wl_vocab *v); /* -1 when none */
int32_t wl_vocab_unk(const wl_vocab *v); /* -1 when none */
int wl_vocab_add_bos(const wl_vocab *v); /* tokenizer.ggml.add_bos_token (defaults: above) */
int wl_vocab_add_eos(const wl_vocab *v); /* tokenizer.ggml.add_eos_token (default: 0) */
/* 1 when generating `id` ends the answer, as llama.cpp decides: EOS, eot/eom_token_id, and the
 * tokens <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>,
 * <|end_of_text|>, <EOT>, DeepSeek's end-of-sentence and the FIM pad/repo/file-separator
 * tokens when the vocab has them (llama.cpp also makes those control tokens, and so does
 * wandler). */
int wl_vocab_is_eog(const wl_vocab *v, int32_t id);
int wl_vocab_token_type(const wl_vocab *v, int32_t id);
/* The token's text as stored in the vocabulary ("▁the", "<0x0A>"), length in *len. */
const char *wl_vocab_token_text(const wl_vocab *v, int32_t id, size_t *len);

/* Tokenizes len bytes of UTF-8 text as llama.cpp's llama_tokenize does. Prepends BOS when
 * add_bos (and the vocab has one). With parse_special, the texts of control (and unknown) tokens
 * found in the text become those tokens, longest first; without, they are tokenized as plain text. The texts of
 * user-defined tokens always become those tokens (llama.cpp and Hugging Face do the same).
 * SPM prepends "▁" to the text at the start and after each special token (add_space_prefix).
 * BPE splits each piece of text with the vocabulary's pre-tokenizer, then merges by rank.
 * Safe to call from several threads at once on one vocabulary.
 * On success *ids (malloc'd, never NULL, caller frees) holds *n_ids tokens.
 * Errors: BAD_UTF8 (the text is not valid UTF-8), OUT_OF_MEMORY, INTERNAL (the pre-tokenizer's
 * regex engine hit a resource limit; not expected with the patterns wandler uses). */
int wl_tokenize(const wl_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                int32_t **ids, size_t *n_ids, wandler_error *err);

/* The bytes token `id` stands for, as llama.cpp's token_to_piece: for SPM "▁" becomes a space,
 * <0xNN> the byte NN; for BPE each character of GPT-2's byte alphabet becomes its byte (one
 * outside it is kept as is, where llama.cpp writes "[UNK_BYTE_...]"); control and unknown
 * tokens give nothing unless render_special (then their text);
 * user-defined tokens give their text; unused tokens and ids out of range give nothing.
 * Writes at most cap bytes to buf and returns the full length (call again with a bigger buffer
 * when it exceeds cap). The bytes need not be valid UTF-8 on their own (byte tokens). */
size_t wl_token_to_bytes(const wl_vocab *v, int32_t id, int render_special, char *buf, size_t cap);

/* Appends the text of ids[0..n) to out, as llama.cpp's llama_detokenize(remove_special = false)
 * does: the pieces of wl_token_to_bytes() one after the other, minus the one leading space of
 * the first piece that SPM's dummy prefix stands for. So for text tokenized without BOS,
 * decoding gives the text back. llama.cpp's clean_up_tokenization_spaces for BPE (" ." -> ".")
 * is deliberately not applied: it would lose text. Returns 0, or -1 when out of memory. */
int wl_detokenize(const wl_vocab *v, const int32_t *ids, size_t n, int render_special,
                  wl_buf *out);

#endif
