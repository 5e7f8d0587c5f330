/* gguf.h - a validating reader of GGUF v2/v3 files over a read-only mapping.
 *
 * gguf_open() maps the file read-only and parses the header, the metadata and the tensor table.
 * Every count, length, type, dimension, offset and size is checked against the file before it
 * is used, with overflow-safe arithmetic; a malformed file yields a WANDLER_ERR_GGUF_* code and a
 * message naming the field and its file offset. Tensor data is never copied: tensors point into
 * the mapping. Nothing here knows what a model is; the model layer reads keys and tensors.
 *
 * Layout (little-endian):
 *   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv            (v2 and v3 alike)
 *   n_kv x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to general.alignment (default 32) | tensor data
 *   string = u64 length | bytes (no NUL);  array = u32 elem_type | u64 count | elements
 */
#ifndef WL_ENGINE_GGUF_H
#define WL_ENGINE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "wandler.h"

enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT = 13
};

/* Bytes of one value of a fixed-size type; 0 for strings, arrays and unknown types. */
uint64_t gguf_value_size(uint32_t type);

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct gguf_file gguf_file;

/* A string inside the mapping: not NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_tensor {
    const char *name;          /* NUL-terminated copy owned by the gguf_file */
    uint32_t n_dims;           /* 1..4 */
    uint64_t ne[GGUF_MAX_DIMS];/* ne[0] is the row length (innermost); unused dims are 1 */
    uint32_t type;             /* enum wl_type, known to wl_type_get() */
    uint64_t offset;           /* from the start of the data section; a multiple of the alignment */
    uint64_t nbytes;           /* size of the data in bytes */
    const void *data;          /* points into the mapping; valid until gguf_close() */
} gguf_tensor;

/* Maps `path` and parses it. On success *out owns the mapping; free it with gguf_close().
 * Errors: NOT_FOUND, IO, OUT_OF_MEMORY, every WANDLER_ERR_GGUF_* code. */
int gguf_open(const char *path, gguf_file **out, wandler_error *err);

/* Parses a GGUF image already in memory (for tests and the fuzzer). The memory is borrowed
 * and must outlive the gguf_file. Same errors as gguf_open() minus NOT_FOUND/IO. */
int gguf_open_memory(const void *data, size_t size, gguf_file **out, wandler_error *err);

/* Unmaps and frees. NULL is ignored. */
void gguf_close(gguf_file *f);

/* Maps `size` bytes of the open file fd read-only (MAP_PRIVATE), 2 MiB-aligned and with
 * MADV_HUGEPAGE (gguf.c says why); gguf_open maps with it, and so does the cache of repacked
 * weights (repack_cache.h). Returns the mapping (munmap(map, size) frees it) or MAP_FAILED with
 * errno set. */
void *gguf_map_file(int fd, size_t size);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
const char *gguf_path(const gguf_file *f);        /* "" for a memory image */
const void *gguf_base(const gguf_file *f);        /* start of the mapping (offset 0) */
uint64_t gguf_data_offset(const gguf_file *f);    /* file offset of the tensor data section */
uint32_t gguf_alignment(const gguf_file *f);

/* ---- metadata ---- */

uint64_t gguf_n_kv(const gguf_file *f);
const char *gguf_kv_key(const gguf_file *f, uint64_t i);  /* NUL-terminated copy */
uint32_t gguf_kv_type(const gguf_file *f, uint64_t i);    /* enum gguf_value_type */
/* Index of `key`, or -1 when absent. */
int64_t gguf_find_key(const gguf_file *f, const char *key);

/* Typed getters by key. Each returns WANDLER_OK, WANDLER_ERR_MODEL_MISSING_KEY when the key is
 * absent, or WANDLER_ERR_MODEL_KEY_TYPE when its type does not fit, filling err with a message
 * naming the key (err may be NULL, e.g. for optional keys).
 * gguf_get_int accepts any integer type; gguf_get_float accepts FLOAT32, FLOAT64 and integers;
 * gguf_get_bool accepts BOOL and integers; gguf_get_str returns a pointer into the mapping. */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out, wandler_error *err);
int gguf_get_uint(const gguf_file *f, const char *key, uint64_t *out, wandler_error *err);
int gguf_get_float(const gguf_file *f, const char *key, double *out, wandler_error *err);
int gguf_get_bool(const gguf_file *f, const char *key, int *out, wandler_error *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, wandler_error *err);

/* Arrays. gguf_get_arr() gives the element type and count. Numeric elements are read with
 * gguf_arr_int/gguf_arr_float (which convert from any numeric element type; the data may be
 * unaligned in the file, so never cast the raw pointer), strings with gguf_arr_str.
 * Index i must be < count (checked: out-of-range reads return 0 / an empty string). */
int gguf_get_arr(const gguf_file *f, const char *key, uint32_t *elem_type, uint64_t *count,
                 wandler_error *err);
int64_t gguf_arr_int(const gguf_file *f, int64_t kv_index, uint64_t i);
double gguf_arr_float(const gguf_file *f, int64_t kv_index, uint64_t i);
gguf_str gguf_arr_str(const gguf_file *f, int64_t kv_index, uint64_t i);

/* Formats the value of metadata entry i for display into buf (truncating long arrays and
 * strings with "..."). Returns buf. */
const char *gguf_kv_format(const gguf_file *f, uint64_t i, char *buf, size_t cap);

/* Name of a value type ("u32", "string", "array"). */
const char *gguf_type_name(uint32_t value_type);

/* ---- tensors ---- */

uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
/* The tensor called `name`, or NULL. */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

#endif
