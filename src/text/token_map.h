/* token_map.h - a hash map from token text to token id (open addressing, linear probing).
 *
 * The map stores ids only; texts are compared against the vocabulary's own table, so the map
 * costs 8 bytes a slot and needs no copies of the strings. */
#ifndef WL_TEXT_TOKEN_MAP_H
#define WL_TEXT_TOKEN_MAP_H

#include <stddef.h>
#include <stdint.h>

struct wl_token;

typedef struct wl_token_map {
    uint32_t *hash; /* [cap] hash of the slot's text */
    int32_t *id;    /* [cap] token id, -1 for an empty slot */
    size_t mask;    /* cap - 1; cap is a power of two */
} wl_token_map;

uint32_t wl_token_hash(const char *s, size_t n);

/* Makes an empty map with room for n entries. Returns 0, or -1 when out of memory. */
int wl_token_map_init(wl_token_map *m, size_t n);
void wl_token_map_free(wl_token_map *m);

/* Adds token `id` (whose text is text + tokens[id].off). Returns 0, or the id already stored
 * under the same text plus 1 (so a duplicate is reported, never stored twice). */
int64_t wl_token_map_insert(wl_token_map *m, const char *text, const struct wl_token *tokens,
                            int32_t id);

/* The id stored for s[0..n), or -1. */
int32_t wl_token_map_find(const wl_token_map *m, const char *text, const struct wl_token *tokens,
                          const char *s, size_t n);

#endif
