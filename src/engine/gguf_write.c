/* gguf_write.c - the GGUF v3 writer (see gguf_write.h for the file it writes).
 *
 * Metadata values are encoded as they will appear in the file when they are set, so writing is
 * a plain copy. Offsets are computed when writing starts, from the alignment in force then.
 * Output goes to a "sink": a FILE* or an exactly sized memory buffer. */
#include "engine/gguf_write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tensor_type.h"
#include "util/buf.h"
#include "util/error.h"

#define MAX_TENSOR_NAME 63 /* llama.cpp's GGML_MAX_NAME (64) less the NUL */

typedef struct writer_kv {
    char *key;
    uint32_t type;
    wl_buf value; /* the value's bytes exactly as in the file (after the type) */
} writer_kv;

typedef struct writer_tensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data; /* borrowed, or NULL when streamed */
} writer_tensor;

typedef struct sink {
    FILE *fp;      /* a file, or */
    uint8_t *mem;  /* a buffer of mem_cap bytes */
    uint64_t mem_cap;
    uint64_t pos;  /* bytes written so far */
} sink;

struct gguf_writer {
    writer_kv *kvs;
    size_t n_kv, cap_kv;
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;

    /* Streaming state, between gguf_writer_begin() and gguf_writer_end(). */
    bool streaming;
    sink out;
    uint32_t alignment;
    size_t current;        /* the tensor whose bytes come next */
    uint64_t current_done; /* bytes of it written */
    wandler_error io_error;/* the first write error; code WANDLER_OK when none */
};

/* ---- little-endian encoding ------------------------------------------------------------------ */

/* p[0..bytes) = the low `bytes` (at most 8) bytes of v, least significant first. The bound in the
 * loop also tells the compiler so: without it gcc 12 with -march=native vectorizes the loop for
 * any length and warns that a 32-byte store overflows callers' 8-byte buffers. */
static void put_le(uint8_t *p, uint64_t v, size_t bytes)
{
    for (size_t i = 0; i < bytes && i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int append_le(wl_buf *b, uint64_t v, size_t bytes)
{
    uint8_t tmp[8];
    put_le(tmp, v, bytes);
    return wl_buf_append(b, tmp, bytes);
}

static int append_string(wl_buf *b, const char *s, uint64_t len)
{
    if (len > SIZE_MAX)
        return -1;
    if (append_le(b, len, 8) != 0)
        return -1;
    return wl_buf_append(b, s ? s : "", (size_t)len);
}

static uint64_t align_up(uint64_t v, uint32_t alignment)
{
    return (v + alignment - 1) / alignment * alignment;
}

/* The esz-byte unsigned integer at p, in host byte order (p may be unaligned). */
static uint64_t load_host(const uint8_t *p, size_t esz)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (esz) {
    case 1:
        memcpy(&u8, p, 1);
        return u8;
    case 2:
        memcpy(&u16, p, 2);
        return u16;
    case 4:
        memcpy(&u32, p, 4);
        return u32;
    default:
        memcpy(&u64, p, 8);
        return u64;
    }
}

/* Stores the low esz bytes of v at p as an unsigned integer in host byte order. */
static void store_host(uint8_t *p, uint64_t v, size_t esz)
{
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;
    switch (esz) {
    case 1:
        memcpy(p, &u8, 1);
        break;
    case 2:
        memcpy(p, &u16, 2);
        break;
    case 4:
        memcpy(p, &u32, 4);
        break;
    default:
        memcpy(p, &v, 8);
    }
}

/* ---- life cycle ------------------------------------------------------------------------------- */

int gguf_writer_new(gguf_writer **out, wandler_error *err)
{
    if (!out)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for a GGUF writer");
    return WANDLER_OK;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        wl_buf_free(&w->kvs[i].value);
    }
    free(w->kvs);
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w);
}

/* Common argument checks of calls that change the writer. */
static int check_changeable(const gguf_writer *w, const char *fn, wandler_error *err)
{
    if (!w)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "%s: the writer is NULL", fn);
    if (w->streaming)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "%s: the file is being written (call gguf_writer_end() first)", fn);
    return WANDLER_OK;
}

/* Grows an array of `size`-byte items to hold one more. */
static int grow(void **items, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return 0;
    size_t new_cap = *cap ? *cap * 2 : 16;
    if (new_cap > SIZE_MAX / size)
        return -1;
    void *p = realloc(*items, new_cap * size);
    if (!p)
        return -1;
    *items = p;
    *cap = new_cap;
    return 0;
}

/* ---- metadata ---------------------------------------------------------------------------------- */

static writer_kv *find_kv(const gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0)
            return &w->kvs[i];
    return NULL;
}

/* general.alignment must be a u32 power of two: the reader refuses anything else. */
static int check_alignment_value(const char *key, uint32_t type, const wl_buf *value,
                                 wandler_error *err)
{
    if (strcmp(key, "general.alignment") != 0)
        return WANDLER_OK;
    if (type != GGUF_TYPE_UINT32)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "general.alignment must be a u32, not %s", gguf_type_name(type));
    const uint8_t *p = (const uint8_t *)value->data;
    uint32_t a = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (a == 0 || (a & (a - 1)) != 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "general.alignment %" PRIu32 " is not a power of two", a);
    return WANDLER_OK;
}

/* Sets `key` to an encoded value, taking ownership of *value (freed on failure too). */
static int set_encoded(gguf_writer *w, const char *key, uint32_t type, wl_buf *value,
                       wandler_error *err)
{
    int rc = check_changeable(w, "gguf_writer_set", err);
    if (rc == WANDLER_OK && !key)
        rc = wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_set: the key is NULL");
    if (rc == WANDLER_OK && !key[0])
        rc = wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_set: the key is empty");
    if (rc == WANDLER_OK)
        rc = check_alignment_value(key, type, value, err);
    if (rc != WANDLER_OK) {
        wl_buf_free(value);
        return rc;
    }
    writer_kv *kv = find_kv(w, key);
    if (kv) {
        wl_buf_free(&kv->value);
    } else {
        char *copy = strdup(key);
        if (!copy || grow((void **)&w->kvs, &w->cap_kv, w->n_kv, sizeof *w->kvs) != 0) {
            free(copy);
            wl_buf_free(value);
            return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for metadata key '%s'", key);
        }
        kv = &w->kvs[w->n_kv++];
        kv->key = copy;
    }
    kv->type = type;
    kv->value = *value;
    *value = (wl_buf){0};
    return WANDLER_OK;
}

static int out_of_memory(wl_buf *b, const char *key, wandler_error *err)
{
    wl_buf_free(b);
    return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for the value of '%s'",
                    key ? key : "(null)");
}

static int set_scalar(gguf_writer *w, const char *key, uint32_t type, uint64_t bits,
                      wandler_error *err)
{
    wl_buf b = {0};
    if (append_le(&b, bits, (size_t)gguf_value_size(type)) != 0)
        return out_of_memory(&b, key, err);
    return set_encoded(w, key, type, &b, err);
}

int gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_UINT8, v, err);
}

int gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_INT8, (uint64_t)(int64_t)v, err);
}

int gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_UINT16, v, err);
}

int gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_INT16, (uint64_t)(int64_t)v, err);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_UINT32, v, err);
}

int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_INT32, (uint64_t)(int64_t)v, err);
}

int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_UINT64, v, err);
}

int gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_INT64, (uint64_t)v, err);
}

int gguf_writer_set_f32(gguf_writer *w, const char *key, float v, wandler_error *err)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return set_scalar(w, key, GGUF_TYPE_FLOAT32, bits, err);
}

int gguf_writer_set_f64(gguf_writer *w, const char *key, double v, wandler_error *err)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return set_scalar(w, key, GGUF_TYPE_FLOAT64, bits, err);
}

int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v, wandler_error *err)
{
    return set_scalar(w, key, GGUF_TYPE_BOOL, v ? 1 : 0, err);
}

int gguf_writer_set_str_n(gguf_writer *w, const char *key, const char *s, uint64_t len,
                          wandler_error *err)
{
    if (!s && len)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_set_str: the string is NULL");
    wl_buf b = {0};
    if (append_string(&b, s, len) != 0)
        return out_of_memory(&b, key, err);
    return set_encoded(w, key, GGUF_TYPE_STRING, &b, err);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *s, wandler_error *err)
{
    if (!s)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_set_str: the string is NULL");
    return gguf_writer_set_str_n(w, key, s, strlen(s), err);
}

/* Starts an array value: element type and count. */
static int append_array_header(wl_buf *b, uint32_t elem_type, uint64_t count)
{
    if (append_le(b, elem_type, 4) != 0)
        return -1;
    return append_le(b, count, 8);
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *elems,
                        uint64_t count, wandler_error *err)
{
    size_t esz = (size_t)gguf_value_size(elem_type);
    if (esz == 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "gguf_writer_set_arr: element type %" PRIu32 " is not a numeric GGUF type",
                        elem_type);
    if (!elems && count)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_set_arr: elems is NULL");
    if (count > (SIZE_MAX - 12) / esz)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "array of %" PRIu64 " elements is too big",
                        count);
    wl_buf b = {0};
    if (wl_buf_reserve(&b, 12 + (size_t)count * esz) != 0 || append_array_header(&b, elem_type, count) != 0)
        return out_of_memory(&b, key, err);
    const uint8_t *p = elems;
    for (uint64_t i = 0; i < count; i++, p += esz) {
        uint64_t bits = load_host(p, esz); /* host order in, little-endian out */
        if (elem_type == GGUF_TYPE_BOOL)
            bits = bits != 0;
        append_le(&b, bits, esz); /* cannot fail: reserved above */
    }
    return set_encoded(w, key, GGUF_TYPE_ARRAY, &b, err);
}

int gguf_writer_set_arr_str_n(gguf_writer *w, const char *key, const gguf_str *strs,
                              uint64_t count, wandler_error *err)
{
    if (!strs && count)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_set_arr_str: strs is NULL");
    for (uint64_t i = 0; i < count; i++)
        if (!strs[i].ptr && strs[i].len)
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                            "gguf_writer_set_arr_str: string #%" PRIu64 " is NULL", i);
    wl_buf b = {0};
    if (append_array_header(&b, GGUF_TYPE_STRING, count) != 0)
        return out_of_memory(&b, key, err);
    for (uint64_t i = 0; i < count; i++)
        if (append_string(&b, strs[i].ptr, strs[i].len) != 0)
            return out_of_memory(&b, key, err);
    return set_encoded(w, key, GGUF_TYPE_ARRAY, &b, err);
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                            uint64_t count, wandler_error *err)
{
    if (!strs && count)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_set_arr_str: strs is NULL");
    wl_buf b = {0};
    if (append_array_header(&b, GGUF_TYPE_STRING, count) != 0)
        return out_of_memory(&b, key, err);
    for (uint64_t i = 0; i < count; i++) {
        if (!strs[i]) {
            wl_buf_free(&b);
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                            "gguf_writer_set_arr_str: string #%" PRIu64 " is NULL", i);
        }
        if (append_string(&b, strs[i], strlen(strs[i])) != 0)
            return out_of_memory(&b, key, err);
    }
    return set_encoded(w, key, GGUF_TYPE_ARRAY, &b, err);
}

/* Copies a numeric array element by element through the reader's converting accessors. */
static int copy_numeric_array(gguf_writer *w, const gguf_file *src, int64_t i, const char *key,
                              uint32_t elem_type, uint64_t count, wandler_error *err)
{
    size_t esz = (size_t)gguf_value_size(elem_type);
    uint8_t *elems = malloc(count ? (size_t)count * esz : 1); /* count*esz <= the file size */
    if (!elems)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory to copy '%s'", key);
    for (uint64_t j = 0; j < count; j++) {
        uint8_t *p = elems + j * esz;
        if (elem_type == GGUF_TYPE_FLOAT32) {
            float v = (float)gguf_arr_float(src, i, j);
            memcpy(p, &v, 4);
        } else if (elem_type == GGUF_TYPE_FLOAT64) {
            double v = gguf_arr_float(src, i, j);
            memcpy(p, &v, 8);
        } else {
            /* Integers travel as int64; narrowing to the element's width keeps its bits. */
            store_host(p, (uint64_t)gguf_arr_int(src, i, j), esz);
        }
    }
    int rc = gguf_writer_set_arr(w, key, elem_type, elems, count, err);
    free(elems);
    return rc;
}

static int copy_string_array(gguf_writer *w, const gguf_file *src, int64_t i, const char *key,
                             uint64_t count, wandler_error *err)
{
    gguf_str *strs = malloc(count ? (size_t)count * sizeof *strs : 1);
    if (!strs)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory to copy '%s'", key);
    for (uint64_t j = 0; j < count; j++)
        strs[j] = gguf_arr_str(src, i, j);
    int rc = gguf_writer_set_arr_str_n(w, key, strs, count, err);
    free(strs);
    return rc;
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, uint64_t i, wandler_error *err)
{
    int rc = check_changeable(w, "gguf_writer_copy_kv", err);
    if (rc != WANDLER_OK)
        return rc;
    if (!src || i >= gguf_n_kv(src))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "gguf_writer_copy_kv: no metadata entry #%" PRIu64, i);
    const char *key = gguf_kv_key(src, i);
    uint32_t type = gguf_kv_type(src, i);
    int64_t s = 0;
    uint64_t u = 0;
    double d = 0;
    int b = 0;
    gguf_str str;
    switch (type) {
    case GGUF_TYPE_UINT8:
        gguf_get_uint(src, key, &u, NULL);
        return gguf_writer_set_u8(w, key, (uint8_t)u, err);
    case GGUF_TYPE_INT8:
        gguf_get_int(src, key, &s, NULL);
        return gguf_writer_set_i8(w, key, (int8_t)s, err);
    case GGUF_TYPE_UINT16:
        gguf_get_uint(src, key, &u, NULL);
        return gguf_writer_set_u16(w, key, (uint16_t)u, err);
    case GGUF_TYPE_INT16:
        gguf_get_int(src, key, &s, NULL);
        return gguf_writer_set_i16(w, key, (int16_t)s, err);
    case GGUF_TYPE_UINT32:
        gguf_get_uint(src, key, &u, NULL);
        return gguf_writer_set_u32(w, key, (uint32_t)u, err);
    case GGUF_TYPE_INT32:
        gguf_get_int(src, key, &s, NULL);
        return gguf_writer_set_i32(w, key, (int32_t)s, err);
    case GGUF_TYPE_UINT64:
        gguf_get_uint(src, key, &u, NULL);
        return gguf_writer_set_u64(w, key, u, err);
    case GGUF_TYPE_INT64:
        gguf_get_int(src, key, &s, NULL);
        return gguf_writer_set_i64(w, key, s, err);
    case GGUF_TYPE_FLOAT32:
        gguf_get_float(src, key, &d, NULL);
        return gguf_writer_set_f32(w, key, (float)d, err);
    case GGUF_TYPE_FLOAT64:
        gguf_get_float(src, key, &d, NULL);
        return gguf_writer_set_f64(w, key, d, err);
    case GGUF_TYPE_BOOL:
        gguf_get_bool(src, key, &b, NULL);
        return gguf_writer_set_bool(w, key, b != 0, err);
    case GGUF_TYPE_STRING:
        gguf_get_str(src, key, &str, NULL);
        return gguf_writer_set_str_n(w, key, str.ptr, str.len, err);
    default: {
        uint32_t elem_type = 0;
        uint64_t count = 0;
        gguf_get_arr(src, key, &elem_type, &count, NULL);
        if (elem_type == GGUF_TYPE_STRING)
            return copy_string_array(w, src, (int64_t)i, key, count, err);
        return copy_numeric_array(w, src, (int64_t)i, key, elem_type, count, err);
    }
    }
}

int gguf_writer_remove_key(gguf_writer *w, const char *key, wandler_error *err)
{
    int rc = check_changeable(w, "gguf_writer_remove_key", err);
    if (rc != WANDLER_OK)
        return rc;
    if (!key)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_remove_key: key is NULL");
    writer_kv *kv = find_kv(w, key);
    if (kv) {
        free(kv->key);
        wl_buf_free(&kv->value);
        size_t i = (size_t)(kv - w->kvs);
        memmove(kv, kv + 1, (w->n_kv - i - 1) * sizeof *kv);
        w->n_kv--;
    }
    return WANDLER_OK;
}

uint64_t gguf_writer_n_kv(const gguf_writer *w)
{
    return w ? w->n_kv : 0;
}

/* ---- tensors ----------------------------------------------------------------------------------- */

static int bad_tensor(const char *name, wandler_error *err, const char *why)
{
    return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%.64s': %s", name ? name : "(null)",
                    why);
}

/* Checks a tensor's shape and type and computes its size in bytes. */
static int tensor_size(const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                       uint64_t *nbytes, wandler_error *err)
{
    const wl_type_info *ti = wl_type_get(type);
    if (!ti)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%.64s': type %" PRIu32
                        " is not a GGUF tensor type", name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%.64s': n_dims %" PRIu32
                        " is not between 1 and %d", name, n_dims, GGUF_MAX_DIMS);
    if (!ne)
        return bad_tensor(name, err, "ne is NULL");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0)
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%.64s': dimension %" PRIu32
                            " is 0", name, d);
        if (__builtin_mul_overflow(elements, ne[d], &elements) || elements > (uint64_t)INT64_MAX)
            return bad_tensor(name, err, "the dimensions hold more than 2^63 elements");
    }
    if (ne[0] % ti->block_size != 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%.64s': row length %" PRIu64
                        " is not a multiple of the %s block size %" PRIu32, name, ne[0], ti->name,
                        ti->block_size);
    if (__builtin_mul_overflow(elements / ti->block_size, (uint64_t)ti->type_size, nbytes) ||
        *nbytes > (uint64_t)INT64_MAX)
        return bad_tensor(name, err, "the data would be more than 2^63 bytes");
    return WANDLER_OK;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data, wandler_error *err)
{
    int rc = check_changeable(w, "gguf_writer_add_tensor", err);
    if (rc != WANDLER_OK)
        return rc;
    if (!name)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_add_tensor: name is NULL");
    size_t len = strlen(name);
    if (len == 0 || len > MAX_TENSOR_NAME)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "tensor '%.64s': the name must be 1 to %d bytes long, not %zu", name,
                        MAX_TENSOR_NAME, len);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return bad_tensor(name, err, "a tensor of that name was already added");
    uint64_t nbytes = 0;
    rc = tensor_size(name, type, n_dims, ne, &nbytes, err);
    if (rc != WANDLER_OK)
        return rc;
    char *copy = strdup(name);
    if (!copy || grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors) != 0) {
        free(copy);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for tensor '%s'", name);
    }
    writer_tensor *t = &w->tensors[w->n_tensors++];
    *t = (writer_tensor){.name = copy, .type = type, .n_dims = n_dims, .nbytes = nbytes, .data = data};
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    return WANDLER_OK;
}

uint64_t gguf_writer_n_tensors(const gguf_writer *w)
{
    return w ? w->n_tensors : 0;
}

uint64_t gguf_writer_tensor_nbytes(const gguf_writer *w, uint64_t i)
{
    return w && i < w->n_tensors ? w->tensors[i].nbytes : 0;
}

/* ---- layout ------------------------------------------------------------------------------------ */

static uint32_t writer_alignment(const gguf_writer *w)
{
    const writer_kv *kv = find_kv(w, "general.alignment");
    if (!kv)
        return GGUF_DEFAULT_ALIGNMENT;
    const uint8_t *p = (const uint8_t *)kv->value.data; /* a checked u32 power of two */
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t header_size(const gguf_writer *w)
{
    uint64_t n = 24;
    for (size_t i = 0; i < w->n_kv; i++)
        n += 8 + strlen(w->kvs[i].key) + 4 + w->kvs[i].value.len;
    for (size_t i = 0; i < w->n_tensors; i++)
        n += 8 + strlen(w->tensors[i].name) + 4 + 8 * (uint64_t)w->tensors[i].n_dims + 4 + 8;
    return n;
}

uint64_t gguf_writer_file_size(const gguf_writer *w)
{
    if (!w)
        return 0;
    uint64_t size = header_size(w);
    if (w->n_tensors == 0)
        return size;
    uint32_t alignment = writer_alignment(w);
    size = align_up(size, alignment);
    for (size_t i = 0; i < w->n_tensors; i++)
        size += align_up(w->tensors[i].nbytes, alignment);
    return size;
}

/* Encodes the header, the metadata and the tensor entries. */
static int encode_header(const gguf_writer *w, uint32_t alignment, wl_buf *b)
{
    int bad = wl_buf_append(b, "GGUF", 4);
    bad |= append_le(b, 3, 4);
    bad |= append_le(b, w->n_tensors, 8);
    bad |= append_le(b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv && !bad; i++) {
        const writer_kv *kv = &w->kvs[i];
        bad |= append_string(b, kv->key, strlen(kv->key));
        bad |= append_le(b, kv->type, 4);
        bad |= wl_buf_append(b, kv->value.data, kv->value.len);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors && !bad; i++) {
        const writer_tensor *t = &w->tensors[i];
        bad |= append_string(b, t->name, strlen(t->name));
        bad |= append_le(b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            bad |= append_le(b, t->ne[d], 8);
        bad |= append_le(b, t->type, 4);
        bad |= append_le(b, offset, 8);
        offset += align_up(t->nbytes, alignment);
    }
    return bad ? -1 : 0;
}

/* ---- the sink ---------------------------------------------------------------------------------- */

static int sink_write(gguf_writer *w, const void *p, uint64_t n, wandler_error *err)
{
    sink *s = &w->out;
    if (n == 0)
        return WANDLER_OK;
    if (s->fp) {
        errno = 0;
        if (fwrite(p, 1, (size_t)n, s->fp) != n)
            return wl_error(err, WANDLER_ERR_IO, "writing the GGUF file at offset %" PRIu64
                            " failed: %s", s->pos, strerror(errno ? errno : EIO));
    } else {
        if (n > s->mem_cap - s->pos)
            return wl_error(err, WANDLER_ERR_INTERNAL, "the GGUF image outgrew its computed size");
        memcpy(s->mem + s->pos, p, (size_t)n);
    }
    s->pos += n;
    return WANDLER_OK;
}

static int sink_zeros(gguf_writer *w, uint64_t n, wandler_error *err)
{
    static const uint8_t zeros[4096];
    while (n) {
        uint64_t chunk = n < sizeof zeros ? n : sizeof zeros;
        int rc = sink_write(w, zeros, chunk, err);
        if (rc != WANDLER_OK)
            return rc;
        n -= chunk;
    }
    return WANDLER_OK;
}

/* ---- streaming ----------------------------------------------------------------------------------- */

/* Remembers the first write error so that gguf_writer_end() reports it too. */
static int stream_failed(gguf_writer *w, int rc, const wandler_error *cause)
{
    if (w->io_error.code == WANDLER_OK && cause)
        w->io_error = *cause;
    else if (w->io_error.code == WANDLER_OK)
        wl_error(&w->io_error, rc, "writing the GGUF file failed");
    return rc;
}

/* After the current tensor's bytes are complete: pads it, then writes every following tensor
 * that has its data, up to the next streamed one. */
static int advance(gguf_writer *w, wandler_error *err)
{
    while (w->current < w->n_tensors) {
        writer_tensor *t = &w->tensors[w->current];
        if (w->current_done < t->nbytes) {
            if (!t->data)
                return WANDLER_OK; /* the caller streams this one */
            int rc = sink_write(w, t->data, t->nbytes, err);
            if (rc != WANDLER_OK)
                return rc;
        }
        int rc = sink_zeros(w, align_up(t->nbytes, w->alignment) - t->nbytes, err);
        if (rc != WANDLER_OK)
            return rc;
        w->current++;
        w->current_done = 0;
    }
    return WANDLER_OK;
}

static int start(gguf_writer *w, sink out, wandler_error *err)
{
    w->alignment = writer_alignment(w);
    w->out = out;
    w->current = 0;
    w->current_done = 0;
    w->io_error = (wandler_error){0};
    w->streaming = true;

    wl_buf header = {0};
    if (encode_header(w, w->alignment, &header) != 0) {
        wl_buf_free(&header);
        wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for the GGUF header");
        return stream_failed(w, WANDLER_ERR_OUT_OF_MEMORY, err);
    }
    int rc = sink_write(w, header.data, header.len, err);
    wl_buf_free(&header);
    if (rc == WANDLER_OK && w->n_tensors)
        rc = sink_zeros(w, align_up(w->out.pos, w->alignment) - w->out.pos, err);
    if (rc == WANDLER_OK)
        rc = advance(w, err);
    if (rc != WANDLER_OK)
        return stream_failed(w, rc, err);
    return WANDLER_OK;
}

int gguf_writer_begin(gguf_writer *w, FILE *fp, wandler_error *err)
{
    int rc = check_changeable(w, "gguf_writer_begin", err);
    if (rc != WANDLER_OK)
        return rc;
    if (!fp)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_begin: fp is NULL");
    return start(w, (sink){.fp = fp}, err);
}

int gguf_writer_write_data(gguf_writer *w, const void *data, size_t n, wandler_error *err)
{
    if (!w || !w->streaming)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "gguf_writer_write_data: not writing (call gguf_writer_begin() first)");
    if (w->io_error.code != WANDLER_OK) {
        if (err)
            *err = w->io_error;
        return w->io_error.code;
    }
    if (w->current >= w->n_tensors)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "gguf_writer_write_data: every tensor's data is already written");
    writer_tensor *t = &w->tensors[w->current];
    if (n > t->nbytes - w->current_done)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "tensor '%s' (#%zu): %zu bytes given but only %" PRIu64 " of its %" PRIu64
                        " bytes remain", t->name, w->current, n, t->nbytes - w->current_done,
                        t->nbytes);
    if (!data && n)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_write_data: data is NULL");
    int rc = sink_write(w, data, n, err);
    if (rc == WANDLER_OK) {
        w->current_done += n;
        if (w->current_done == t->nbytes)
            rc = advance(w, err);
    }
    if (rc != WANDLER_OK)
        return stream_failed(w, rc, err);
    return WANDLER_OK;
}

int64_t gguf_writer_current_tensor(const gguf_writer *w)
{
    if (!w || !w->streaming || w->current >= w->n_tensors)
        return -1;
    return (int64_t)w->current;
}

int gguf_writer_end(gguf_writer *w, wandler_error *err)
{
    if (!w || !w->streaming)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "gguf_writer_end: not writing (call gguf_writer_begin() first)");
    w->streaming = false;
    if (w->io_error.code != WANDLER_OK) {
        if (err)
            *err = w->io_error;
        return w->io_error.code;
    }
    if (w->current < w->n_tensors) {
        const writer_tensor *t = &w->tensors[w->current];
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "tensor '%s' (#%zu): only %" PRIu64 " of its %" PRIu64
                        " bytes were written", t->name, w->current, w->current_done, t->nbytes);
    }
    if (w->out.fp && fflush(w->out.fp) != 0)
        return wl_error(err, WANDLER_ERR_IO, "flushing the GGUF file failed: %s", strerror(errno));
    return WANDLER_OK;
}

/* ---- one-call writing ---------------------------------------------------------------------------- */

/* Whole-file writes need every tensor's data up front. */
static int check_all_data(const gguf_writer *w, const char *fn, wandler_error *err)
{
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!w->tensors[i].data)
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                            "%s: tensor '%s' (#%zu) has no data (stream it with "
                            "gguf_writer_begin() instead)", fn, w->tensors[i].name, i);
    return WANDLER_OK;
}

int gguf_writer_write_memory(gguf_writer *w, void **out, size_t *size, wandler_error *err)
{
    int rc = check_changeable(w, "gguf_writer_write_memory", err);
    if (rc != WANDLER_OK)
        return rc;
    if (!out || !size)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_write_memory: NULL output");
    *out = NULL;
    *size = 0;
    rc = check_all_data(w, "gguf_writer_write_memory", err);
    if (rc != WANDLER_OK)
        return rc;
    uint64_t total = gguf_writer_file_size(w);
    uint8_t *mem = total <= SIZE_MAX ? malloc((size_t)total) : NULL;
    if (!mem)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for a %" PRIu64 "-byte GGUF image",
                        total);
    rc = start(w, (sink){.mem = mem, .mem_cap = total}, err);
    int end_rc = gguf_writer_end(w, rc == WANDLER_OK ? err : NULL);
    if (rc == WANDLER_OK)
        rc = end_rc;
    if (rc == WANDLER_OK && w->out.pos != total)
        rc = wl_error(err, WANDLER_ERR_INTERNAL, "the GGUF image is %" PRIu64 " bytes, not %" PRIu64,
                      w->out.pos, total);
    if (rc != WANDLER_OK) {
        free(mem);
        return rc;
    }
    *out = mem;
    *size = (size_t)total;
    return WANDLER_OK;
}

int gguf_writer_write_file(gguf_writer *w, const char *path, wandler_error *err)
{
    int rc = check_changeable(w, "gguf_writer_write_file", err);
    if (rc != WANDLER_OK)
        return rc;
    if (!path)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_writer_write_file: path is NULL");
    rc = check_all_data(w, "gguf_writer_write_file", err);
    if (rc != WANDLER_OK)
        return rc;
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return wl_error(err, WANDLER_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    rc = start(w, (sink){.fp = fp}, err);
    int end_rc = gguf_writer_end(w, rc == WANDLER_OK ? err : NULL);
    if (rc == WANDLER_OK)
        rc = end_rc;
    if (fclose(fp) != 0 && rc == WANDLER_OK)
        rc = wl_error(err, WANDLER_ERR_IO, "%s: closing failed: %s", path, strerror(errno));
    if (rc != WANDLER_OK) {
        remove(path);
        if (err && rc == WANDLER_ERR_IO && strncmp(err->message, path, strlen(path)) != 0) {
            char cause[sizeof err->message];
            memcpy(cause, err->message, sizeof cause);
            wl_error(err, rc, "%s: %s", path, cause);
        }
    }
    return rc;
}
