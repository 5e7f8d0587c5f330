/* detok.h - streaming detokenization that never splits a UTF-8 character.
 *
 * Token pieces are byte strings; a character may straddle two tokens (byte-fallback tokens of a
 * 3-byte character, for instance). wl_detok_push() appends to `out` only complete characters and
 * holds back the bytes of an incomplete one; wl_detok_finish() flushes what is held back, turning
 * each invalid or incomplete sequence into U+FFFD, so nothing is dropped silently. Invalid bytes
 * met mid-stream (not a possible prefix of a valid character) are replaced by U+FFFD at once. */
#ifndef WL_TEXT_DETOK_H
#define WL_TEXT_DETOK_H

#include <stdint.h>

#include "text/vocab.h"
#include "util/buf.h"

typedef struct wl_detok {
    const wl_vocab *vocab;
    unsigned char held[4]; /* bytes of an incomplete character */
    int n_held;
} wl_detok;

void wl_detok_init(wl_detok *d, const wl_vocab *vocab);
/* Appends the complete characters of token id to out. Returns 0, or -1 when out of memory. */
int wl_detok_push(wl_detok *d, int32_t id, wl_buf *out);
/* Appends bytes (for callers that already have a piece). Same contract as wl_detok_push. */
int wl_detok_push_bytes(wl_detok *d, const char *bytes, size_t n, wl_buf *out);
/* Ends the stream: held bytes become U+FFFD. Returns 0 or -1. */
int wl_detok_finish(wl_detok *d, wl_buf *out);

#endif
