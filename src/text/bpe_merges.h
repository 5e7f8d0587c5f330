/* bpe_merges.h - the merge ranks of a byte-level BPE vocabulary: (left id, right id) -> rank.
 *
 * tokenizer.ggml.merges lists "left right" pairs, most frequent first; a pair's rank is its
 * index. wandler requires both halves of every merge to be tokens of the vocabulary (as they are
 * in every real one), so pairs can be keyed by token ids: merging then never builds strings. The
 * map also keeps the id of the merged text (-1 when that text is not a token). Open addressing,
 * linear probing, load factor <= 2/3. */
#ifndef WL_TEXT_BPE_MERGES_H
#define WL_TEXT_BPE_MERGES_H

#include <stddef.h>
#include <stdint.h>

typedef struct wl_merge {
    uint64_t key;   /* (uint64)left << 32 | right; WL_MERGE_EMPTY for a free slot */
    int32_t rank;   /* lower merges first */
    int32_t result; /* token of the joined text, or -1 */
} wl_merge;

#define WL_MERGE_EMPTY UINT64_MAX

typedef struct wl_merge_map {
    wl_merge *slots; /* [mask + 1] */
    size_t mask;
} wl_merge_map;

/* Makes an empty map with room for n pairs. Returns 0, or -1 when out of memory. */
int wl_merge_map_init(wl_merge_map *m, size_t n);
void wl_merge_map_free(wl_merge_map *m);

/* Adds a pair (ids >= 0) unless it is already there: the first rank of a repeated pair wins,
 * as in llama.cpp. The map must have been made with room for every pair added. */
void wl_merge_map_add(wl_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t result);

/* The entry of the pair, or NULL. */
const wl_merge *wl_merge_map_find(const wl_merge_map *m, int32_t left, int32_t right);

#endif
