/* spm.h - the SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), as llama.cpp's
 * llm_tokenizer_spm behaves: spaces become "▁" (U+2581), an optional "▁" is prepended, then the
 * highest-scoring adjacent pair of pieces that is itself a token is merged, again and again
 * (ties: the leftmost pair first); pieces left that are not tokens fall back to byte tokens. */
#ifndef WL_TEXT_SPM_H
#define WL_TEXT_SPM_H

#include <stddef.h>

#include "text/vocab_internal.h"
#include "wandler.h"

/* Tokenizes text[0..len) (one fragment: no special tokens are looked for) and appends the ids
 * to out. dummy_prefix prepends the "▁". Returns 0, or -1 when out of memory (or when the
 * escaped fragment reaches 4 GiB). */
int wl_spm_tokenize(const wl_vocab *v, const char *text, size_t len, int dummy_prefix,
                    wl_ids *out);

/* Checks the byte tokens and fills v->u.spm.byte_token. Errors: MODEL_BAD_VOCAB (a byte token
 * whose text is not <0xNN>, a byte with no token to fall back to and no unknown token). */
int wl_spm_prepare(wl_vocab *v, wandler_error *err);

/* The byte a byte token's text "<0xNN>" stands for, or -1 when the text is not of that form. */
int wl_spm_byte_of_text(const char *s, size_t n);

#endif
