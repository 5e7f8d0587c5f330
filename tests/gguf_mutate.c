#include "gguf_mutate.h"

#include <stdlib.h>
#include <string.h>

typedef struct walker {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    int bad;
} walker;

static uint64_t get(walker *w, unsigned bytes)
{
    if (w->bad || bytes > w->size - w->pos) {
        w->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)w->p[w->pos + i] << (8 * i);
    w->pos += bytes;
    return v;
}

static void skip(walker *w, uint64_t n)
{
    if (w->bad || n > w->size - w->pos)
        w->bad = 1;
    else
        w->pos += n;
}

static void skip_string(walker *w)
{
    skip(w, get(w, 8));
}

static unsigned scalar_bytes(uint32_t type)
{
    static const unsigned bytes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < 13 ? bytes[type] : 0;
}

static void walk_kv(walker *w, gm_kv *kv)
{
    kv->at = w->pos;
    kv->key_len = get(w, 8);
    kv->key_at = w->pos;
    skip(w, kv->key_len);
    kv->type_at = w->pos;
    kv->type = (uint32_t)get(w, 4);
    kv->value_at = w->pos;
    if (kv->type == 8) {
        skip_string(w);
    } else if (kv->type == 9) {
        kv->elem_type = (uint32_t)get(w, 4);
        kv->count = get(w, 8);
        kv->elems_at = w->pos;
        for (uint64_t i = 0; i < kv->count && !w->bad; i++) {
            if (kv->elem_type == 8)
                skip_string(w);
            else if (scalar_bytes(kv->elem_type))
                skip(w, scalar_bytes(kv->elem_type));
            else
                w->bad = 1;
        }
    } else if (scalar_bytes(kv->type)) {
        skip(w, scalar_bytes(kv->type));
    } else {
        w->bad = 1;
    }
    kv->end = w->pos;
}

static void walk_tensor(walker *w, gm_tensor *t)
{
    t->at = w->pos;
    t->name_len = get(w, 8);
    t->name_at = w->pos;
    skip(w, t->name_len);
    t->n_dims_at = w->pos;
    t->n_dims = (uint32_t)get(w, 4);
    if (t->n_dims < 1 || t->n_dims > 4) {
        w->bad = 1;
        return;
    }
    t->ne_at = w->pos;
    for (uint32_t d = 0; d < 4; d++)
        t->ne[d] = d < t->n_dims ? get(w, 8) : 1;
    t->type_at = w->pos;
    t->type = (uint32_t)get(w, 4);
    t->offset_at = w->pos;
    t->offset = get(w, 8);
}

int gm_layout_read(const void *image, size_t size, gm_layout *out)
{
    memset(out, 0, sizeof *out);
    walker w = {.p = image, .size = size, .pos = 8};
    if (size < 24 || memcmp(image, "GGUF", 4) != 0)
        return -1;
    out->n_tensors = get(&w, 8);
    out->n_kv = get(&w, 8);
    if (out->n_kv > size || out->n_tensors > size)
        return -1;
    out->kvs = calloc(out->n_kv + 1, sizeof *out->kvs);
    out->tensors = calloc(out->n_tensors + 1, sizeof *out->tensors);
    if (!out->kvs || !out->tensors) {
        gm_layout_free(out);
        return -1;
    }
    for (uint64_t i = 0; i < out->n_kv && !w.bad; i++)
        walk_kv(&w, &out->kvs[i]);
    for (uint64_t i = 0; i < out->n_tensors && !w.bad; i++)
        walk_tensor(&w, &out->tensors[i]);
    out->header_end = w.pos;
    if (w.bad) {
        gm_layout_free(out);
        return -1;
    }
    return 0;
}

void gm_layout_free(gm_layout *l)
{
    free(l->kvs);
    free(l->tensors);
    memset(l, 0, sizeof *l);
}

static int name_is(const void *image, uint64_t at, uint64_t len, const char *name)
{
    return strlen(name) == len && memcmp((const uint8_t *)image + at, name, len) == 0;
}

const gm_kv *gm_find_kv(const gm_layout *l, const void *image, const char *key)
{
    for (uint64_t i = 0; i < l->n_kv; i++)
        if (name_is(image, l->kvs[i].key_at, l->kvs[i].key_len, key))
            return &l->kvs[i];
    return NULL;
}

const gm_tensor *gm_find_tensor(const gm_layout *l, const void *image, const char *name)
{
    for (uint64_t i = 0; i < l->n_tensors; i++)
        if (name_is(image, l->tensors[i].name_at, l->tensors[i].name_len, name))
            return &l->tensors[i];
    return NULL;
}

uint64_t gm_arr_str_at(const void *image, const gm_kv *kv, uint64_t i)
{
    uint64_t at = kv->elems_at;
    for (uint64_t j = 0; j < i; j++)
        at += 8 + gm_get_u64(image, at);
    return at;
}

void gm_put_u32(void *image, uint64_t at, uint32_t v)
{
    uint8_t *p = (uint8_t *)image + at;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void gm_put_u64(void *image, uint64_t at, uint64_t v)
{
    uint8_t *p = (uint8_t *)image + at;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t gm_get_u64(const void *image, uint64_t at)
{
    const uint8_t *p = (const uint8_t *)image + at;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void *gm_copy(const void *src, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p && n)
        memcpy(p, src, n);
    return p;
}
