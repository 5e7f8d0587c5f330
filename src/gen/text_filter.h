/* text_filter.h - what happens to generated text between the detokenizer and the caller:
 * stop sequences, then the split of reasoning from the answer.
 *
 * Both work on a stream of UTF-8 pieces whose boundaries fall anywhere relative to the strings
 * they look for: a stop sequence or a tag may span several tokens. So each holds back only the
 * text that could still become the start of what it looks for, and releases it as soon as it
 * cannot; nothing is lost and nothing is released twice. */
#ifndef WL_GEN_TEXT_FILTER_H
#define WL_GEN_TEXT_FILTER_H

#include <stddef.h>

#include "util/buf.h"

/* ---- stop sequences ---- */

typedef struct wl_stop_matcher {
    const char *const *stops; /* borrowed */
    size_t n;
    wl_buf held;              /* text that may be the start of a stop sequence */
    int stopped;              /* a stop sequence was found; everything after it is dropped */
} wl_stop_matcher;

void wl_stop_init(wl_stop_matcher *m, const char *const *stops, size_t n);
/* Feeds n bytes; appends the text that is certainly before any stop sequence to out. Returns 1
 * once a stop sequence has been found (out then ends right before it), 0 otherwise, -1 when out
 * of memory. */
int wl_stop_push(wl_stop_matcher *m, const char *s, size_t n, wl_buf *out);
/* The generation ended: releases what was held back. Returns 0 or -1. */
int wl_stop_finish(wl_stop_matcher *m, wl_buf *out);
void wl_stop_free(wl_stop_matcher *m);

/* ---- reasoning ---- */

typedef struct wl_reasoning_split {
    const char *open, *close; /* tags, borrowed; NULL open = splitting is off */
    size_t open_len, close_len;
    int inside;               /* between the tags */
    int trim;                 /* drop whitespace at the start of what follows a tag */
    int seen_close;           /* the answer part has started */
    wl_buf held;              /* text that may be the start of the tag looked for */
} wl_reasoning_split;

/* open NULL disables splitting (everything is answer text). `inside` starts the split inside
 * the reasoning (the prompt itself opened the tag). */
void wl_reasoning_init(wl_reasoning_split *r, const char *open, const char *close, int inside);
/* Feeds n bytes; appends to text and reasoning what is certain. Returns 0 or -1 (memory). */
int wl_reasoning_push(wl_reasoning_split *r, const char *s, size_t n, wl_buf *text, wl_buf *reasoning);
/* End of the text: releases what was held back (an unterminated reasoning stays reasoning). */
int wl_reasoning_finish(wl_reasoning_split *r, wl_buf *text, wl_buf *reasoning);
void wl_reasoning_free(wl_reasoning_split *r);

#endif
