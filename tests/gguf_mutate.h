/* gguf_mutate.h - test helpers that locate the fields of a well-formed GGUF image and patch
 * them, to build malformed files byte by byte.
 *
 * gm_layout_read() walks a trusted, well-formed image (a real model, or the writer's output) with
 * its own minimal parser, independent of src/engine/gguf.c, and records the file offset of every
 * field. The gm_put_* functions then overwrite a field in place. */
#ifndef WL_TEST_GGUF_MUTATE_H
#define WL_TEST_GGUF_MUTATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct gm_kv {
    uint64_t at;        /* the entry: its key length */
    uint64_t key_at;    /* the key's bytes */
    uint64_t key_len;
    uint64_t type_at;   /* u32 value type */
    uint32_t type;
    uint64_t value_at;  /* scalars: the value; strings: the length; arrays: the element type */
    uint32_t elem_type; /* arrays */
    uint64_t count;     /* arrays */
    uint64_t elems_at;  /* arrays: the first element */
    uint64_t end;       /* the first byte after the entry */
} gm_kv;

typedef struct gm_tensor {
    uint64_t at;        /* the entry: its name length */
    uint64_t name_at;
    uint64_t name_len;
    uint64_t n_dims_at;
    uint32_t n_dims;
    uint64_t ne_at;     /* ne[0]; ne[d] is at ne_at + 8*d */
    uint64_t ne[4];
    uint64_t type_at;
    uint32_t type;
    uint64_t offset_at;
    uint64_t offset;
} gm_tensor;

typedef struct gm_layout {
    uint64_t n_kv, n_tensors;
    gm_kv *kvs;
    gm_tensor *tensors;
    uint64_t header_end; /* the first byte after the tensor entries */
} gm_layout;

/* Records the layout of a well-formed image. Returns 0, or -1 when it is not one. */
int gm_layout_read(const void *image, size_t size, gm_layout *out);
void gm_layout_free(gm_layout *l);

/* The entry of `key` / tensor `name`, or NULL. */
const gm_kv *gm_find_kv(const gm_layout *l, const void *image, const char *key);
const gm_tensor *gm_find_tensor(const gm_layout *l, const void *image, const char *name);

/* File offset of the length field of element i of a string array. */
uint64_t gm_arr_str_at(const void *image, const gm_kv *kv, uint64_t i);

void gm_put_u32(void *image, uint64_t at, uint32_t v);
void gm_put_u64(void *image, uint64_t at, uint64_t v);
uint64_t gm_get_u64(const void *image, uint64_t at);

/* A malloc'd copy of the first n bytes of src, of exactly n bytes (so ASan catches overreads;
 * n == 0 gives a 1-byte allocation). */
void *gm_copy(const void *src, size_t n);

#endif
