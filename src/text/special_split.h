/* special_split.h - splitting the texts of special tokens out of a text before tokenizing it.
 *
 * As llama.cpp's tokenizer_st_partition: special tokens are tried longest first; each one is
 * searched for in every piece of text not yet split, left to right. Control and unknown tokens
 * only when parse_special; user-defined tokens always (as Hugging Face tokenizers do).
 * Whitespace next to a token with the lstrip/rstrip attribute is dropped. */
#ifndef WL_TEXT_SPECIAL_SPLIT_H
#define WL_TEXT_SPECIAL_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "text/vocab_internal.h"

typedef struct wl_fragment {
    int32_t token; /* a special token, or -1 for text */
    size_t off, len; /* the text: bytes [off, off + len) of the input */
} wl_fragment;

/* Splits text[0..len) into fragments in order. An empty text gives no fragments. On success
 * *out (malloc'd, caller frees) holds *n_out fragments. Returns 0, or -1 when out of memory. */
int wl_special_split(const wl_vocab *v, const char *text, size_t len, int parse_special,
                     wl_fragment **out, size_t *n_out);

#endif
