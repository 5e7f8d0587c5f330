/* bpe.h - byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp's llm_tokenizer_bpe.
 *
 * A text fragment is split into pre-tokens by the family's regexes (pretokenize.h); each
 * pre-token's bytes become characters of GPT-2's byte alphabet (byte_unicode.h), one symbol each;
 * then the adjacent pair of lowest merge rank is merged, again and again (ties: the leftmost
 * pair first), until no adjacent pair is a merge. Each symbol left is a token; one that is not
 * (a byte the vocabulary lacks) falls back to the tokens of its single raw bytes, or to nothing,
 * as in llama.cpp. With ignore_merges (Llama 3), a pre-token that is a whole token is taken as
 * is. Decoding maps each character of a token's text back to its byte. */
#ifndef WL_TEXT_BPE_H
#define WL_TEXT_BPE_H

#include <stddef.h>

#include "text/vocab_build.h"
#include "text/vocab_internal.h"
#include "wandler.h"

/* Compiles the pre-tokenizer of spec->pre, fills the byte tables and the merge ranks of
 * spec->merges. v's tokens and text map must be built. On failure v->u.bpe may hold parts;
 * wl_bpe_release() frees them. Errors: MODEL_UNSUPPORTED_TOKENIZER (an unknown pre-tokenizer),
 * MODEL_BAD_VOCAB (a merge that is not "left right" with both halves tokens, too many merges),
 * OUT_OF_MEMORY, INTERNAL (a pre-tokenizer regex PCRE2 refuses). */
int wl_bpe_prepare(wl_vocab *v, const wl_vocab_spec *spec, wandler_error *err);

/* Frees what wl_bpe_prepare() made (safe on a zeroed wl_bpe_data). */
void wl_bpe_release(wl_bpe_data *d);

/* Tokenizes text[0..len) (one fragment of valid UTF-8: no special tokens are looked for) and
 * appends the ids to out. Returns 0, -1 when out of memory (or when the fragment reaches
 * 4 GiB), or -2 when the pre-tokenizer's regex engine gave up (see wl_pretok_split). */
int wl_bpe_tokenize(const wl_vocab *v, const char *text, size_t len, wl_ids *out);

/* The bytes a normal token's text s[0..n) stands for: each character of GPT-2's byte alphabet
 * becomes its byte. A character outside the alphabet (only in hand-made vocabularies) is copied
 * as is, and so is a byte that is not valid UTF-8. Writes at most cap bytes to buf; returns the
 * full length. */
size_t wl_bpe_decode_text(const char *s, size_t n, char *buf, size_t cap);

#endif
