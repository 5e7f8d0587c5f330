/* token_map.c - text -> id for vocabularies of 32k..150k tokens. */
#include "text/token_map.h"

#include <stdlib.h>
#include <string.h>

#include "text/vocab_internal.h"

/* FNV-1a: tokens are short, so a byte-at-a-time hash is as fast as anything fancier. */
uint32_t wl_token_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

int wl_token_map_init(wl_token_map *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n) { /* load factor <= 1/2 keeps probe runs short */
        if (cap > SIZE_MAX / 4 / sizeof(int32_t))
            return -1;
        cap *= 2;
    }
    m->hash = malloc(cap * sizeof *m->hash);
    m->id = malloc(cap * sizeof *m->id);
    if (!m->hash || !m->id) {
        wl_token_map_free(m);
        return -1;
    }
    for (size_t i = 0; i < cap; i++)
        m->id[i] = -1;
    m->mask = cap - 1;
    return 0;
}

void wl_token_map_free(wl_token_map *m)
{
    free(m->hash);
    free(m->id);
    m->hash = NULL;
    m->id = NULL;
    m->mask = 0;
}

static int same_text(const char *text, const wl_token *t, const char *s, size_t n)
{
    return t->len == n && memcmp(text + t->off, s, n) == 0;
}

int64_t wl_token_map_insert(wl_token_map *m, const char *text, const wl_token *tokens, int32_t id)
{
    const wl_token *t = &tokens[id];
    uint32_t h = wl_token_hash(text + t->off, t->len);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        if (m->id[i] < 0) {
            m->id[i] = id;
            m->hash[i] = h;
            return 0;
        }
        if (m->hash[i] == h && same_text(text, &tokens[m->id[i]], text + t->off, t->len))
            return (int64_t)m->id[i] + 1;
    }
}

int32_t wl_token_map_find(const wl_token_map *m, const char *text, const wl_token *tokens,
                          const char *s, size_t n)
{
    if (!m->id)
        return -1;
    uint32_t h = wl_token_hash(s, n);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->id[i];
        if (id < 0)
            return -1;
        if (m->hash[i] == h && same_text(text, &tokens[id], s, n))
            return id;
    }
}
