/* text_filter.c - stop sequences and the reasoning split (see text_filter.h). */
#include "gen/text_filter.h"

#include <string.h>

/* Length of the longest suffix of s[0..n) that is a proper prefix of pat (shorter than pat):
 * those bytes might still become pat. */
static size_t partial_suffix(const char *s, size_t n, const char *pat, size_t plen)
{
    size_t max = n < plen - 1 ? n : plen - 1;
    for (size_t k = max; k > 0; k--)
        if (memcmp(s + n - k, pat, k) == 0)
            return k;
    return 0;
}

/* First occurrence of pat in s[0..n), or NULL. */
static const char *find(const char *s, size_t n, const char *pat, size_t plen)
{
    if (plen == 0 || plen > n)
        return NULL;
    for (size_t i = 0; i + plen <= n; i++)
        if (s[i] == pat[0] && memcmp(s + i, pat, plen) == 0)
            return s + i;
    return NULL;
}

/* ---- stop sequences ---- */

void wl_stop_init(wl_stop_matcher *m, const char *const *stops, size_t n)
{
    memset(m, 0, sizeof *m);
    m->stops = stops;
    m->n = n;
}

int wl_stop_push(wl_stop_matcher *m, const char *s, size_t n, wl_buf *out)
{
    if (m->stopped)
        return 1;
    if (n == 0)
        return 0;
    if (m->n == 0)
        return wl_buf_append(out, s, n) ? -1 : 0;
    if (wl_buf_append(&m->held, s, n) != 0)
        return -1;
    const char *h = m->held.data;
    size_t len = m->held.len;
    /* the earliest complete stop sequence wins */
    const char *first = NULL;
    for (size_t i = 0; i < m->n; i++) {
        const char *at = find(h, len, m->stops[i], strlen(m->stops[i]));
        if (at && (!first || at < first))
            first = at;
    }
    if (first) {
        m->stopped = 1;
        int rc = wl_buf_append(out, h, (size_t)(first - h));
        wl_buf_clear(&m->held);
        return rc ? -1 : 1;
    }
    /* keep the longest tail that could still grow into a stop sequence */
    size_t keep = 0;
    for (size_t i = 0; i < m->n; i++) {
        size_t k = partial_suffix(h, len, m->stops[i], strlen(m->stops[i]));
        keep = k > keep ? k : keep;
    }
    if (wl_buf_append(out, h, len - keep) != 0)
        return -1;
    memmove(m->held.data, h + len - keep, keep);
    m->held.len = keep;
    m->held.data[keep] = '\0';
    return 0;
}

int wl_stop_finish(wl_stop_matcher *m, wl_buf *out)
{
    int rc = m->stopped || m->held.len == 0 ? 0 : wl_buf_append(out, m->held.data, m->held.len);
    wl_buf_clear(&m->held);
    return rc ? -1 : 0;
}

void wl_stop_free(wl_stop_matcher *m)
{
    wl_buf_free(&m->held);
}

/* ---- reasoning ---- */

void wl_reasoning_init(wl_reasoning_split *r, const char *open, const char *close, int inside)
{
    memset(r, 0, sizeof *r);
    r->open = open;
    r->close = close;
    r->open_len = open ? strlen(open) : 0;
    r->close_len = close ? strlen(close) : 0;
    r->inside = open && inside;
    r->trim = r->inside;
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Appends s[0..n) to the current side, dropping leading whitespace right after a tag. */
static int emit(wl_reasoning_split *r, const char *s, size_t n, wl_buf *text, wl_buf *reasoning)
{
    if (r->trim) {
        while (n && is_space(*s)) {
            s++;
            n--;
        }
        if (n)
            r->trim = 0;
    }
    return n ? wl_buf_append(r->inside ? reasoning : text, s, n) : 0;
}

int wl_reasoning_push(wl_reasoning_split *r, const char *s, size_t n, wl_buf *text, wl_buf *reasoning)
{
    if (n == 0)
        return 0;
    if (!r->open)
        return wl_buf_append(text, s, n) ? -1 : 0;
    if (wl_buf_append(&r->held, s, n) != 0)
        return -1;
    for (;;) {
        const char *h = r->held.data;
        size_t len = r->held.len;
        /* outside: look for the opening tag, but only before any answer text was given
         * (a model that thinks does so first); inside: look for the closing tag */
        const char *tag = r->inside ? r->close : r->open;
        size_t tlen = r->inside ? r->close_len : r->open_len;
        if (!r->inside && r->seen_close) {
            int rc = emit(r, h, len, text, reasoning);
            wl_buf_clear(&r->held);
            return rc ? -1 : 0;
        }
        const char *at = find(h, len, tag, tlen);
        if (at) {
            if (emit(r, h, (size_t)(at - h), text, reasoning) != 0)
                return -1;
            size_t rest = len - (size_t)(at - h) - tlen;
            memmove(r->held.data, at + tlen, rest);
            r->held.len = rest;
            r->held.data[rest] = '\0';
            if (r->inside)
                r->seen_close = 1;
            r->inside = !r->inside;
            r->trim = 1;
            continue;
        }
        size_t keep = partial_suffix(h, len, tag, tlen);
        if (emit(r, h, len - keep, text, reasoning) != 0)
            return -1;
        memmove(r->held.data, h + len - keep, keep);
        r->held.len = keep;
        r->held.data[keep] = '\0';
        return 0;
    }
}

int wl_reasoning_finish(wl_reasoning_split *r, wl_buf *text, wl_buf *reasoning)
{
    int rc = r->held.len ? emit(r, r->held.data, r->held.len, text, reasoning) : 0;
    wl_buf_clear(&r->held);
    return rc ? -1 : 0;
}

void wl_reasoning_free(wl_reasoning_split *r)
{
    wl_buf_free(&r->held);
}
