/* detok.c - streaming detokenization that only ever emits whole UTF-8 characters. */
#include "text/detok.h"

#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"

static const char REPLACEMENT[3] = {'\xEF', '\xBF', '\xBD'}; /* U+FFFD */

void wl_detok_init(wl_detok *d, const wl_vocab *vocab)
{
    memset(d, 0, sizeof *d);
    d->vocab = vocab;
}

/* Longest k in 1..3 such that s[0..k) is a valid start of a character; 1 when there is none.
 * This is the "maximal subpart" that one U+FFFD replaces (Unicode's recommended practice). */
static size_t maximal_subpart(const unsigned char *s, size_t n)
{
    size_t best = 1;
    for (size_t k = 2; k <= 3 && k <= n; k++)
        if (wl_utf8_incomplete_prefix(s, k))
            best = k;
    return best;
}

/* Appends s[0..n) when no bytes are held: whole characters go out, invalid bytes become U+FFFD,
 * and a valid but incomplete tail is held back. */
static int push_fresh(wl_detok *d, const unsigned char *s, size_t n, wl_buf *out)
{
    size_t start = 0, i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = wl_utf8_decode(s + i, n - i, NULL);
        if (len) {
            i += len;
            continue;
        }
        if (wl_buf_append(out, s + start, i - start) != 0)
            return -1;
        if (wl_utf8_incomplete_prefix(s + i, n - i)) {
            memcpy(d->held, s + i, n - i);
            d->n_held = (int)(n - i);
            return 0;
        }
        if (wl_buf_append(out, REPLACEMENT, sizeof REPLACEMENT) != 0)
            return -1;
        i += maximal_subpart(s + i, n - i);
        start = i;
    }
    return wl_buf_append(out, s + start, n - start);
}

int wl_detok_push_bytes(wl_detok *d, const char *bytes, size_t n, wl_buf *out)
{
    const unsigned char *s = (const unsigned char *)bytes;
    size_t i = 0;
    /* Complete (or reject) the held character one byte at a time first. The held bytes are
     * always a valid incomplete prefix, so each new byte either extends it, completes it, or
     * shows it to be a maximal subpart that one U+FFFD replaces. */
    while (d->n_held > 0 && i < n) {
        d->held[d->n_held++] = s[i];
        size_t len = wl_utf8_decode(d->held, (size_t)d->n_held, NULL);
        if (len) {
            if (wl_buf_append(out, d->held, len) != 0) {
                d->n_held--;
                return -1;
            }
            d->n_held = 0;
            i++;
        } else if (wl_utf8_incomplete_prefix(d->held, (size_t)d->n_held)) {
            i++;
        } else {
            /* The new byte does not belong: replace what was held, then look at the byte
             * afresh (it may start a character of its own). */
            d->n_held--;
            if (wl_buf_append(out, REPLACEMENT, sizeof REPLACEMENT) != 0)
                return -1;
            d->n_held = 0;
        }
    }
    if (i == n) {
        /* Keep `out` NUL-terminated and allocated even when nothing was appended. */
        return wl_buf_append(out, "", 0);
    }
    return push_fresh(d, s + i, n - i, out);
}

int wl_detok_push(wl_detok *d, int32_t id, wl_buf *out)
{
    char small[128];
    size_t n = wl_token_to_bytes(d->vocab, id, 0, small, sizeof small);
    if (n <= sizeof small)
        return wl_detok_push_bytes(d, small, n, out);
    char *big = malloc(n);
    if (!big)
        return -1;
    wl_token_to_bytes(d->vocab, id, 0, big, n);
    int rc = wl_detok_push_bytes(d, big, n, out);
    free(big);
    return rc;
}

int wl_detok_finish(wl_detok *d, wl_buf *out)
{
    if (d->n_held == 0)
        return wl_buf_append(out, "", 0);
    if (wl_buf_append(out, REPLACEMENT, sizeof REPLACEMENT) != 0)
        return -1;
    d->n_held = 0;
    return 0;
}
