/* pretokenize.h - splitting text into pre-tokens before byte-level BPE, as llama.cpp does.
 *
 * A byte-level BPE model names its pre-tokenizer in tokenizer.ggml.pre. Each family is a list of
 * steps (most are regular expressions, compiled once per vocabulary with PCRE2, JIT when the
 * platform has it). The text starts as one piece; each step splits every piece further: the
 * step's matches and the text between them all become pieces, in order. Each piece is matched on
 * its own (a regex sees neither the text before nor after it), as llama.cpp's
 * unicode_regex_split does. The regexes are written so that PCRE2 gives llama.cpp's results:
 * "\s" is spelled out as llama.cpp's whitespace set (Unicode White_Space), and its workarounds
 * for std::regex (such as the lookaheads of the GPT-4o family) become plain character classes. */
#ifndef WL_TEXT_PRETOKENIZE_H
#define WL_TEXT_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "wandler.h"

/* What a family sets besides its regexes (llama.cpp's defaults for it). */
typedef struct wl_pretok_info {
    const char *name;  /* the family's first tokenizer.ggml.pre name */
    int ignore_merges; /* a piece that is a whole token is taken as is, without merging (Llama 3) */
    int add_bos;       /* default of tokenizer.ggml.add_bos_token */
    int no_bos;        /* the family has no BOS token unless the file names one (ChatGLM) */
} wl_pretok_info;

/* The family named pre[0..len), or NULL when wandler does not know it. A missing or empty name
 * is "default" (llama.cpp warns and does the same). */
const wl_pretok_info *wl_pretok_find(const char *pre, size_t len);

typedef struct wl_pretok wl_pretok;

/* Compiles the regexes of a family that wl_pretok_find() returned. Errors: OUT_OF_MEMORY,
 * INTERNAL (a regex PCRE2 refuses, or info not from wl_pretok_find()). */
int wl_pretok_create(const wl_pretok_info *info, wl_pretok **out, wandler_error *err);
void wl_pretok_free(wl_pretok *p);

/* A piece of the text: bytes [off, off + len). */
typedef struct wl_span {
    uint32_t off, len;
} wl_span;

typedef struct wl_spans {
    wl_span *data;
    size_t len, cap;
} wl_spans;

/* Splits text[0..len) (valid UTF-8, shorter than 4 GiB) into pieces that cover it in order,
 * replacing the contents of *out (whose memory it reuses; the caller frees out->data). Safe to
 * call from several threads at once on one wl_pretok. Returns 0, -1 when out of memory, or -2
 * when PCRE2 gives up on a match (a resource limit; the patterns are linear, so this should not
 * happen). */
int wl_pretok_split(const wl_pretok *p, const char *text, size_t len, wl_spans *out);

#endif
