/* bpe_merges.c - see bpe_merges.h. */
#include "text/bpe_merges.h"

#include <stdlib.h>

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

/* A 64-bit finalizer (from MurmurHash3): ids are small and dense, so mix all bits. */
static size_t hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (size_t)k;
}

int wl_merge_map_init(wl_merge_map *m, size_t n)
{
    size_t cap = 16;
    while (cap / 3 * 2 < n + 1) {
        if (cap > SIZE_MAX / 2 / sizeof *m->slots)
            return -1;
        cap *= 2;
    }
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) {
        m->mask = 0;
        return -1;
    }
    for (size_t i = 0; i < cap; i++)
        m->slots[i].key = WL_MERGE_EMPTY;
    m->mask = cap - 1;
    return 0;
}

void wl_merge_map_free(wl_merge_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
}

void wl_merge_map_add(wl_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t result)
{
    uint64_t key = pair_key(left, right);
    for (size_t i = hash(key) & m->mask;; i = (i + 1) & m->mask) {
        wl_merge *e = &m->slots[i];
        if (e->key == key)
            return;
        if (e->key == WL_MERGE_EMPTY) {
            *e = (wl_merge){key, rank, result};
            return;
        }
    }
}

const wl_merge *wl_merge_map_find(const wl_merge_map *m, int32_t left, int32_t right)
{
    if (!m->slots)
        return NULL;
    uint64_t key = pair_key(left, right);
    for (size_t i = hash(key) & m->mask;; i = (i + 1) & m->mask) {
        const wl_merge *e = &m->slots[i];
        if (e->key == key)
            return e;
        if (e->key == WL_MERGE_EMPTY)
            return NULL;
    }
}
