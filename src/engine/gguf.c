/* gguf.c - the GGUF v2/v3 reader: parse and validate a file that may be hostile.
 *
 * Parsing walks the image once with a cursor that never moves past the end. Every length read
 * from the file is compared with the bytes that remain before anything is allocated or skipped,
 * so an absurd count fails at once instead of asking for terabytes. Metadata values are not
 * copied: a key/value entry remembers the file offset of its value, and string arrays get an
 * index of element offsets so that element i is found in O(1). Keys and tensor names are copied
 * once, NUL-terminated, into one block; sorted indexes over them find duplicates and serve
 * lookups in O(log n).
 *
 * Order of the checks (which error a file with several faults gets):
 *   header -> each metadata entry -> duplicate keys -> general.alignment -> each tensor entry
 *   (dims, type, sizes) -> each tensor's offset (alignment, bounds) -> duplicate tensor names
 *   -> overlapping tensor data.
 */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/tensor_type.h"
#include "util/error.h"

#define HEADER_BYTES 24 /* magic, version, n_tensors, n_kv */

/* The smallest possible encodings, used to bound counts by the bytes that remain. */
#define MIN_KV_BYTES (8 + 4 + 1)                  /* empty key, value type, a 1-byte value */
#define MIN_TENSOR_INFO_BYTES (8 + 4 + 8 + 4 + 8) /* empty name, n_dims, one dim, type, offset */
#define STRING_LEN_BYTES 8

/* A count or length that the rest of the file cannot hold means either a truncated file or a
 * corrupt field. Values up to these limits are what real files carry (a few thousand tensors,
 * vocabularies of a few hundred thousand entries, chat templates of some kilobytes), so a short
 * file with such a value is reported as truncated; larger values are reported as corrupt.
 * These limits never reject a file: a file that holds the data is accepted whatever the count. */
#define PLAUSIBLE_COUNT ((uint64_t)1 << 20)
#define PLAUSIBLE_ARRAY_LEN ((uint64_t)1 << 32)
#define PLAUSIBLE_STRING_LEN ((uint64_t)1 << 30)

/* Longest excerpt of a key or tensor name quoted in an error message. */
#define NAME_IN_MESSAGE 80

typedef struct gguf_kv {
    const char *key;     /* NUL-terminated copy in gguf_file.names */
    uint64_t entry_at;   /* file offset where the entry starts (its key length) */
    uint64_t key_at;     /* file offset of the key's bytes */
    uint64_t key_len;
    uint32_t type;       /* enum gguf_value_type */
    uint32_t elem_type;  /* arrays: type of the elements */
    uint64_t count;      /* arrays: number of elements */
    uint64_t value_at;   /* file offset of the value; for arrays, of the first element */
    uint64_t *str_at;    /* string arrays: file offset of each element's length field */
} gguf_kv;

/* Where a tensor's entry lies in the file; needed while parsing only. */
typedef struct tensor_source {
    uint64_t entry_at;
    uint64_t name_at;
    uint64_t name_len;
} tensor_source;

/* One entry of a sorted name index. */
typedef struct name_slot {
    const char *name;
    uint64_t index;
} name_slot;

struct gguf_file {
    const uint8_t *base; /* the mapping or the borrowed memory image */
    uint64_t size;
    bool mapped;         /* base came from mmap() and is unmapped by gguf_close() */
    char *path;          /* "" for memory images */
    uint32_t version;
    uint32_t alignment;
    uint64_t header_end;
    uint64_t data_offset;

    uint64_t n_kv;
    gguf_kv *kvs;
    name_slot *kv_index; /* sorted by key */

    uint64_t n_tensors;
    gguf_tensor *tensors;
    name_slot *tensor_index; /* sorted by name */

    char *names; /* every key and tensor name, NUL-terminated, back to back */
};

/* ---- little-endian decoding (the file may be unaligned; never cast its pointers) ---------- */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static float f32_from_bits(uint32_t bits)
{
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static double f64_from_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

uint64_t gguf_value_size(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static bool is_integer_type(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
        return true;
    default:
        return false;
    }
}

static bool is_signed_type(uint32_t type)
{
    return type == GGUF_TYPE_INT8 || type == GGUF_TYPE_INT16 || type == GGUF_TYPE_INT32 ||
           type == GGUF_TYPE_INT64;
}

/* Raw bits of the integer at p, sign-extended for signed types. */
static uint64_t read_integer_bits(const uint8_t *p, uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_BOOL:
        return p[0];
    case GGUF_TYPE_INT8:
        return (uint64_t)(int64_t)(int8_t)p[0];
    case GGUF_TYPE_UINT16:
        return le16(p);
    case GGUF_TYPE_INT16:
        return (uint64_t)(int64_t)(int16_t)le16(p);
    case GGUF_TYPE_UINT32:
        return le32(p);
    case GGUF_TYPE_INT32:
        return (uint64_t)(int64_t)(int32_t)le32(p);
    default:
        return le64(p);
    }
}

/* Any numeric value (integers, bool, floats) as a double. */
static double read_number(const uint8_t *p, uint32_t type)
{
    if (type == GGUF_TYPE_FLOAT32)
        return f32_from_bits(le32(p));
    if (type == GGUF_TYPE_FLOAT64)
        return f64_from_bits(le64(p));
    uint64_t bits = read_integer_bits(p, type);
    return is_signed_type(type) ? (double)(int64_t)bits : (double)bits;
}

/* A double converted to int64 without undefined behaviour: truncated, saturated, NaN -> 0. */
static int64_t saturate_to_int64(double v)
{
    if (v != v)
        return 0;
    if (v >= 9223372036854775807.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

/* ---- the cursor ----------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;          /* invariant: pos <= size */
    wandler_error *err;
    char where[192];       /* the entry being parsed, prefixed to error messages */
} reader;

static uint64_t remaining(const reader *r)
{
    return r->size - r->pos;
}

/* Fails with `code` and "<where>: <message>". */
static int fail(reader *r, int code, const char *fmt, ...) WL_PRINTF(3, 4);
static int fail(reader *r, int code, const char *fmt, ...)
{
    char detail[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (r->where[0])
        return wl_error(r->err, code, "%s: %s", r->where, detail);
    return wl_error(r->err, code, "%s", detail);
}

/* Checks that n bytes of `what` can be read at the cursor. */
static int need(reader *r, uint64_t n, const char *what)
{
    if (n <= remaining(r))
        return WANDLER_OK;
    return fail(r, WANDLER_ERR_GGUF_TRUNCATED,
                "%s at offset %" PRIu64 " needs %" PRIu64 " bytes but the file ends at %" PRIu64,
                what, r->pos, n, r->size);
}

static int read_u32(reader *r, const char *what, uint32_t *out)
{
    int rc = need(r, 4, what);
    if (rc == WANDLER_OK) {
        *out = le32(r->base + r->pos);
        r->pos += 4;
    }
    return rc;
}

static int read_u64(reader *r, const char *what, uint64_t *out)
{
    int rc = need(r, 8, what);
    if (rc == WANDLER_OK) {
        *out = le64(r->base + r->pos);
        r->pos += 8;
    }
    return rc;
}

/* The error for a length or count that the rest of the file cannot hold: a plausible value
 * means the file was cut short, an implausible one that the field itself is corrupt. */
static int too_long(reader *r, uint64_t value, uint64_t plausible, int corrupt_code,
                    const char *what, uint64_t at, uint64_t min_bytes_each)
{
    bool truncated = value <= plausible;
    return fail(r, truncated ? WANDLER_ERR_GGUF_TRUNCATED : corrupt_code,
                "%s %" PRIu64 " at offset %" PRIu64 " needs at least %" PRIu64
                " bytes each but only %" PRIu64 " bytes follow%s",
                what, value, at, min_bytes_each, remaining(r),
                truncated ? " (the file is truncated)" : "");
}

/* Reads a string header and skips its bytes: *at = offset of the bytes, *len = their count. */
static int read_string(reader *r, const char *what, uint64_t *at, uint64_t *len)
{
    uint64_t len_at = r->pos;
    uint64_t n;
    int rc = read_u64(r, what, &n);
    if (rc != WANDLER_OK)
        return rc;
    if (n > remaining(r)) {
        bool truncated = n <= PLAUSIBLE_STRING_LEN;
        return fail(r, truncated ? WANDLER_ERR_GGUF_TRUNCATED : WANDLER_ERR_GGUF_BAD_STRING,
                    "%s length %" PRIu64 " at offset %" PRIu64
                    " is larger than the %" PRIu64 " bytes that follow%s",
                    what, n, len_at, remaining(r), truncated ? " (the file is truncated)" : "");
    }
    *at = r->pos;
    *len = n;
    r->pos += n;
    return WANDLER_OK;
}

/* Reads a key or tensor name: a string without NUL bytes (it is copied NUL-terminated). */
static int read_name(reader *r, const char *what, uint64_t *at, uint64_t *len)
{
    int rc = read_string(r, what, at, len);
    if (rc != WANDLER_OK)
        return rc;
    const uint8_t *nul = memchr(r->base + *at, 0, (size_t)*len);
    if (nul)
        return fail(r, WANDLER_ERR_GGUF_BAD_STRING, "the %s contains a NUL byte at offset %" PRIu64,
                    what, (uint64_t)(nul - r->base));
    return WANDLER_OK;
}

static int name_excerpt_len(uint64_t len)
{
    return (int)(len < NAME_IN_MESSAGE ? len : NAME_IN_MESSAGE);
}

/* ---- the header --------------------------------------------------------------------------- */

static int parse_header(reader *r, gguf_file *f)
{
    if (r->size == 0)
        return fail(r, WANDLER_ERR_GGUF_TRUNCATED, "the file is empty");
    if (r->size >= 4 && memcmp(r->base, "GGUF", 4) != 0)
        return fail(r, WANDLER_ERR_GGUF_BAD_MAGIC,
                    "the first four bytes are %02x %02x %02x %02x, not \"GGUF\"", r->base[0],
                    r->base[1], r->base[2], r->base[3]);
    if (r->size < HEADER_BYTES)
        return fail(r, WANDLER_ERR_GGUF_TRUNCATED,
                    "the file is %" PRIu64 " bytes, smaller than the %d-byte GGUF header", r->size,
                    HEADER_BYTES);
    r->pos = 4;
    uint32_t version = 0;
    read_u32(r, "version", &version); /* cannot fail: the file holds the whole header */
    if (version == 1)
        return fail(r, WANDLER_ERR_GGUF_BAD_VERSION,
                    "version 1 at offset 4: GGUF v1 files are not supported (only v2 and v3)");
    if (version == 0x02000000u || version == 0x03000000u)
        return fail(r, WANDLER_ERR_GGUF_BAD_VERSION,
                    "version at offset 4 reads as %" PRIu32
                    ": a big-endian GGUF file, which is not supported", version);
    if (version != 2 && version != 3)
        return fail(r, WANDLER_ERR_GGUF_BAD_VERSION,
                    "version %" PRIu32 " at offset 4 is not 2 or 3", version);
    f->version = version;
    read_u64(r, "tensor count", &f->n_tensors);
    read_u64(r, "metadata count", &f->n_kv);
    return WANDLER_OK;
}

/* Checks that `count` entries of at least `min_each` bytes fit in the rest of the file. */
static int check_count(reader *r, uint64_t count, uint64_t min_each, const char *what, uint64_t at)
{
    if (count <= remaining(r) / min_each)
        return WANDLER_OK;
    return too_long(r, count, PLAUSIBLE_COUNT, WANDLER_ERR_GGUF_BAD_COUNT, what, at, min_each);
}

/* ---- metadata ----------------------------------------------------------------------------- */

static void set_kv_where(reader *r, const gguf_kv *kv, uint64_t i)
{
    snprintf(r->where, sizeof r->where, "metadata key '%.*s' (#%" PRIu64 ", at offset %" PRIu64 ")",
             name_excerpt_len(kv->key_len), (const char *)r->base + kv->key_at, i, kv->entry_at);
}

/* Reads the elements of a string array, remembering where each one starts. */
static int parse_string_elements(reader *r, gguf_kv *kv)
{
    if (kv->count == 0)
        return WANDLER_OK;
    kv->str_at = malloc((size_t)kv->count * sizeof *kv->str_at);
    if (!kv->str_at)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for an index of %" PRIu64 " strings",
                    kv->count);
    /* The hot loop of a vocabulary: keep it to a bounds check and a store per element. */
    const uint8_t *base = r->base;
    uint64_t pos = r->pos, size = r->size;
    for (uint64_t j = 0; j < kv->count; j++) {
        if (size - pos < STRING_LEN_BYTES) {
            r->pos = pos;
            return fail(r, WANDLER_ERR_GGUF_TRUNCATED,
                        "the length of element #%" PRIu64 " at offset %" PRIu64
                        " runs past the end of the file (%" PRIu64 " bytes)", j, pos, size);
        }
        uint64_t len = le64(base + pos);
        kv->str_at[j] = pos;
        if (len > size - pos - STRING_LEN_BYTES) {
            r->pos = pos + STRING_LEN_BYTES;
            bool truncated = len <= PLAUSIBLE_STRING_LEN;
            return fail(r, truncated ? WANDLER_ERR_GGUF_TRUNCATED : WANDLER_ERR_GGUF_BAD_STRING,
                        "element #%" PRIu64 ": string length %" PRIu64 " at offset %" PRIu64
                        " is larger than the %" PRIu64 " bytes that follow%s",
                        j, len, pos, remaining(r), truncated ? " (the file is truncated)" : "");
        }
        pos += STRING_LEN_BYTES + len;
    }
    r->pos = pos;
    return WANDLER_OK;
}

static int parse_array(reader *r, gguf_kv *kv)
{
    uint64_t elem_type_at = r->pos;
    int rc = read_u32(r, "array element type", &kv->elem_type);
    if (rc != WANDLER_OK)
        return rc;
    if (kv->elem_type == GGUF_TYPE_ARRAY)
        return fail(r, WANDLER_ERR_GGUF_BAD_ARRAY,
                    "array element type at offset %" PRIu64 " is array: nested arrays are not allowed",
                    elem_type_at);
    if (kv->elem_type >= GGUF_TYPE_COUNT)
        return fail(r, WANDLER_ERR_GGUF_BAD_VALUE_TYPE,
                    "array element type %" PRIu32 " at offset %" PRIu64 " is not a GGUF value type",
                    kv->elem_type, elem_type_at);
    uint64_t count_at = r->pos;
    rc = read_u64(r, "array length", &kv->count);
    if (rc != WANDLER_OK)
        return rc;
    uint64_t min_each = kv->elem_type == GGUF_TYPE_STRING ? STRING_LEN_BYTES : gguf_value_size(kv->elem_type);
    if (kv->count > remaining(r) / min_each)
        return too_long(r, kv->count, PLAUSIBLE_ARRAY_LEN, WANDLER_ERR_GGUF_BAD_ARRAY,
                        "array length", count_at, min_each);
    kv->value_at = r->pos;
    if (kv->elem_type == GGUF_TYPE_STRING)
        return parse_string_elements(r, kv);
    r->pos += kv->count * min_each; /* cannot overflow: checked against remaining() above */
    return WANDLER_OK;
}

static int parse_kv(reader *r, gguf_kv *kv, uint64_t i)
{
    kv->entry_at = r->pos;
    snprintf(r->where, sizeof r->where, "metadata entry #%" PRIu64 " (at offset %" PRIu64 ")", i,
             kv->entry_at);
    int rc = read_name(r, "key", &kv->key_at, &kv->key_len);
    if (rc != WANDLER_OK)
        return rc;
    set_kv_where(r, kv, i);

    uint64_t type_at = r->pos;
    rc = read_u32(r, "value type", &kv->type);
    if (rc != WANDLER_OK)
        return rc;
    if (kv->type >= GGUF_TYPE_COUNT)
        return fail(r, WANDLER_ERR_GGUF_BAD_VALUE_TYPE,
                    "value type %" PRIu32 " at offset %" PRIu64 " is not a GGUF value type", kv->type,
                    type_at);
    kv->count = 1;
    if (kv->type == GGUF_TYPE_ARRAY)
        return parse_array(r, kv);
    if (kv->type == GGUF_TYPE_STRING) {
        uint64_t len;
        return read_string(r, "string value", &kv->value_at, &len);
    }
    rc = need(r, gguf_value_size(kv->type), gguf_type_name(kv->type));
    if (rc != WANDLER_OK)
        return rc;
    kv->value_at = r->pos;
    r->pos += gguf_value_size(kv->type);
    return WANDLER_OK;
}

static int parse_kvs(reader *r, gguf_file *f)
{
    int rc = check_count(r, f->n_kv, MIN_KV_BYTES, "metadata count", 16);
    if (rc != WANDLER_OK)
        return rc;
    if (f->n_kv) {
        f->kvs = calloc((size_t)f->n_kv, sizeof *f->kvs);
        if (!f->kvs)
            return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for %" PRIu64 " metadata entries",
                        f->n_kv);
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        rc = parse_kv(r, &f->kvs[i], i);
        if (rc != WANDLER_OK)
            return rc;
    }
    r->where[0] = '\0';
    return WANDLER_OK;
}

/* ---- tensor entries ------------------------------------------------------------------------ */

static void format_dims(char *buf, size_t cap, const gguf_tensor *t)
{
    int n = snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->n_dims && n > 0 && (size_t)n < cap; d++)
        n += snprintf(buf + n, cap - (size_t)n, "%s%" PRIu64, d ? ", " : "", t->ne[d]);
    if (n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "]");
}

/* Checks the dimensions and the type of a tensor and computes its size in bytes. */
static int check_tensor_shape(reader *r, gguf_tensor *t, uint64_t dims_at, uint64_t type_at)
{
    char dims[128];
    format_dims(dims, sizeof dims, t);
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (t->ne[d] == 0)
            return fail(r, WANDLER_ERR_GGUF_BAD_DIMS, "dimension %" PRIu32 " at offset %" PRIu64
                        " is 0 (dims %s)", d, dims_at + 8 * (uint64_t)d, dims);
    const wl_type_info *ti = wl_type_get(t->type);
    if (!ti)
        return fail(r, WANDLER_ERR_GGUF_BAD_TENSOR_TYPE,
                    "tensor type %" PRIu32 " at offset %" PRIu64 " is not a GGUF tensor type",
                    t->type, type_at);
    if (t->ne[0] % ti->block_size != 0)
        return fail(r, WANDLER_ERR_GGUF_BAD_DIMS,
                    "row length %" PRIu64 " (dims %s) is not a multiple of the %s block size %" PRIu32,
                    t->ne[0], dims, ti->name, ti->block_size);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (__builtin_mul_overflow(elements, t->ne[d], &elements) || elements > (uint64_t)INT64_MAX)
            return fail(r, WANDLER_ERR_GGUF_DIM_OVERFLOW,
                        "dims %s at offset %" PRIu64 " hold 2^63 elements or more", dims, dims_at);
    uint64_t nbytes;
    if (__builtin_mul_overflow(elements / ti->block_size, (uint64_t)ti->type_size, &nbytes) ||
        nbytes > (uint64_t)INT64_MAX)
        return fail(r, WANDLER_ERR_GGUF_DIM_OVERFLOW,
                    "dims %s of type %s at offset %" PRIu64 " need 2^63 bytes or more", dims,
                    ti->name, dims_at);
    t->nbytes = nbytes;
    return WANDLER_OK;
}

static int parse_tensor_info(reader *r, gguf_tensor *t, tensor_source *src, uint64_t i)
{
    src->entry_at = r->pos;
    snprintf(r->where, sizeof r->where, "tensor #%" PRIu64 " (at offset %" PRIu64 ")", i,
             src->entry_at);
    int rc = read_name(r, "tensor name", &src->name_at, &src->name_len);
    if (rc != WANDLER_OK)
        return rc;
    snprintf(r->where, sizeof r->where, "tensor '%.*s' (#%" PRIu64 ", at offset %" PRIu64 ")",
             name_excerpt_len(src->name_len), (const char *)r->base + src->name_at, i,
             src->entry_at);

    uint64_t n_dims_at = r->pos;
    rc = read_u32(r, "n_dims", &t->n_dims);
    if (rc != WANDLER_OK)
        return rc;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return fail(r, WANDLER_ERR_GGUF_BAD_DIMS,
                    "n_dims %" PRIu32 " at offset %" PRIu64 " is not between 1 and %d", t->n_dims,
                    n_dims_at, GGUF_MAX_DIMS);
    uint64_t dims_at = r->pos;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        rc = read_u64(r, "dimension", &t->ne[d]);
        if (rc != WANDLER_OK)
            return rc;
    }
    uint64_t type_at = r->pos;
    rc = read_u32(r, "tensor type", &t->type);
    if (rc == WANDLER_OK)
        rc = read_u64(r, "data offset", &t->offset);
    if (rc == WANDLER_OK)
        rc = check_tensor_shape(r, t, dims_at, type_at);
    return rc;
}

static int parse_tensor_infos(reader *r, gguf_file *f, tensor_source **sources)
{
    int rc = check_count(r, f->n_tensors, MIN_TENSOR_INFO_BYTES, "tensor count", 8);
    if (rc != WANDLER_OK)
        return rc;
    if (f->n_tensors == 0)
        return WANDLER_OK;
    f->tensors = calloc((size_t)f->n_tensors, sizeof *f->tensors);
    *sources = calloc((size_t)f->n_tensors, sizeof **sources);
    if (!f->tensors || !*sources)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for %" PRIu64 " tensor entries",
                    f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        rc = parse_tensor_info(r, &f->tensors[i], &(*sources)[i], i);
        if (rc != WANDLER_OK)
            return rc;
    }
    r->where[0] = '\0';
    return WANDLER_OK;
}

/* ---- names: one block of NUL-terminated copies, and sorted indexes ----------------------- */

static int copy_names(reader *r, gguf_file *f, const tensor_source *sources)
{
    uint64_t total = 1; /* never zero, so malloc(0) is not a question */
    for (uint64_t i = 0; i < f->n_kv; i++)
        total += f->kvs[i].key_len + 1;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        total += sources[i].name_len + 1;
    /* total <= 2 * file size + 1: the names are disjoint ranges of the file. */
    f->names = malloc((size_t)total);
    if (!f->names)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for %" PRIu64 " bytes of names", total);
    char *p = f->names;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        memcpy(p, r->base + f->kvs[i].key_at, (size_t)f->kvs[i].key_len);
        p[f->kvs[i].key_len] = '\0';
        f->kvs[i].key = p;
        p += f->kvs[i].key_len + 1;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        memcpy(p, r->base + sources[i].name_at, (size_t)sources[i].name_len);
        p[sources[i].name_len] = '\0';
        f->tensors[i].name = p;
        p += sources[i].name_len + 1;
    }
    return WANDLER_OK;
}

static int compare_slots(const void *a, const void *b)
{
    const name_slot *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Builds the index of n names (name_of(i)) sorted by name, then by position in the file, so
 * that equal names end up next to each other with the first one first. */
static name_slot *build_index(const char *const *names, uint64_t n)
{
    name_slot *slots = malloc((size_t)(n ? n : 1) * sizeof *slots);
    if (!slots)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        slots[i].name = names[i];
        slots[i].index = i;
    }
    if (n > 1)
        qsort(slots, (size_t)n, sizeof *slots, compare_slots);
    return slots;
}

static int64_t index_find(const name_slot *slots, uint64_t n, const char *name)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(slots[mid].name, name);
        if (c == 0)
            return (int64_t)slots[mid].index;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Returns the position in the sorted index of the first slot whose name repeats its
 * predecessor's, or n when every name is unique. */
static uint64_t first_repeat(const name_slot *slots, uint64_t n)
{
    for (uint64_t i = 1; i < n; i++)
        if (strcmp(slots[i - 1].name, slots[i].name) == 0)
            return i;
    return n;
}

static int index_keys(reader *r, gguf_file *f)
{
    const char **keys = malloc((size_t)(f->n_kv ? f->n_kv : 1) * sizeof *keys);
    if (!keys)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for the key index");
    for (uint64_t i = 0; i < f->n_kv; i++)
        keys[i] = f->kvs[i].key;
    f->kv_index = build_index(keys, f->n_kv);
    free(keys);
    if (!f->kv_index)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for the key index");

    uint64_t dup = first_repeat(f->kv_index, f->n_kv);
    if (dup == f->n_kv)
        return WANDLER_OK;
    const gguf_kv *first = &f->kvs[f->kv_index[dup - 1].index];
    uint64_t again = f->kv_index[dup].index;
    set_kv_where(r, &f->kvs[again], again);
    return fail(r, WANDLER_ERR_GGUF_DUPLICATE_KEY,
                "the key repeats metadata entry #%" PRIu64 " (at offset %" PRIu64 ")",
                f->kv_index[dup - 1].index, first->entry_at);
}

/* general.alignment, when present, must be a u32 power of two. */
static int read_alignment(reader *r, gguf_file *f)
{
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = index_find(f->kv_index, f->n_kv, "general.alignment");
    if (i < 0)
        return WANDLER_OK;
    const gguf_kv *kv = &f->kvs[i];
    set_kv_where(r, kv, (uint64_t)i);
    if (kv->type != GGUF_TYPE_UINT32)
        return fail(r, WANDLER_ERR_GGUF_BAD_ALIGNMENT, "the alignment has type %s, not u32",
                    gguf_type_name(kv->type));
    uint32_t a = le32(r->base + kv->value_at);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(r, WANDLER_ERR_GGUF_BAD_ALIGNMENT,
                    "the alignment %" PRIu32 " at offset %" PRIu64 " is not a power of two", a,
                    kv->value_at);
    f->alignment = a;
    r->where[0] = '\0';
    return WANDLER_OK;
}

/* ---- tensor data ----------------------------------------------------------------------------- */

static void set_tensor_where(reader *r, const gguf_file *f, const tensor_source *sources, uint64_t i)
{
    snprintf(r->where, sizeof r->where, "tensor '%.*s' (#%" PRIu64 ", at offset %" PRIu64 ")",
             name_excerpt_len(sources[i].name_len), f->tensors[i].name, i, sources[i].entry_at);
}

/* Places each tensor in the file: its offset must be aligned and its data inside the file. */
static int place_tensors(reader *r, gguf_file *f, const tensor_source *sources)
{
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        set_tensor_where(r, f, sources, i);
        if (t->offset % f->alignment != 0)
            return fail(r, WANDLER_ERR_GGUF_TENSOR_MISALIGNED,
                        "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                        t->offset, f->alignment);
        uint64_t start, end;
        if (__builtin_add_overflow(f->data_offset, t->offset, &start) ||
            __builtin_add_overflow(start, t->nbytes, &end))
            return fail(r, WANDLER_ERR_GGUF_TENSOR_OUT_OF_BOUNDS,
                        "data offset %" PRIu64 " + %" PRIu64 " bytes lies beyond any file",
                        t->offset, t->nbytes);
        if (end > f->size)
            return fail(r, WANDLER_ERR_GGUF_TENSOR_OUT_OF_BOUNDS,
                        "data [%" PRIu64 ", %" PRIu64 ") ends past the end of the file (%" PRIu64
                        " bytes)", start, end, f->size);
        t->data = f->base + start;
    }
    r->where[0] = '\0';
    return WANDLER_OK;
}

static int index_tensors(reader *r, gguf_file *f, const tensor_source *sources)
{
    const char **names = malloc((size_t)(f->n_tensors ? f->n_tensors : 1) * sizeof *names);
    if (!names)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for the tensor index");
    for (uint64_t i = 0; i < f->n_tensors; i++)
        names[i] = f->tensors[i].name;
    f->tensor_index = build_index(names, f->n_tensors);
    free(names);
    if (!f->tensor_index)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory for the tensor index");

    uint64_t dup = first_repeat(f->tensor_index, f->n_tensors);
    if (dup == f->n_tensors)
        return WANDLER_OK;
    uint64_t first = f->tensor_index[dup - 1].index, again = f->tensor_index[dup].index;
    set_tensor_where(r, f, sources, again);
    return fail(r, WANDLER_ERR_GGUF_DUPLICATE_TENSOR,
                "the name repeats tensor #%" PRIu64 " (at offset %" PRIu64 ")", first,
                sources[first].entry_at);
}

typedef struct data_span {
    uint64_t start, end, index;
} data_span;

static int compare_spans(const void *a, const void *b)
{
    const data_span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* No two tensors may share a byte: sorted by start, each must begin after the previous ends. */
static int check_overlap(reader *r, gguf_file *f, const tensor_source *sources)
{
    if (f->n_tensors < 2)
        return WANDLER_OK;
    data_span *spans = malloc((size_t)f->n_tensors * sizeof *spans);
    if (!spans)
        return fail(r, WANDLER_ERR_OUT_OF_MEMORY, "no memory to check tensor overlap");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        spans[i].start = f->data_offset + f->tensors[i].offset;
        spans[i].end = spans[i].start + f->tensors[i].nbytes;
        spans[i].index = i;
    }
    qsort(spans, (size_t)f->n_tensors, sizeof *spans, compare_spans);
    int rc = WANDLER_OK;
    for (uint64_t i = 1; i < f->n_tensors && rc == WANDLER_OK; i++) {
        const data_span *prev = &spans[i - 1], *cur = &spans[i];
        if (cur->start < prev->end) {
            set_tensor_where(r, f, sources, cur->index);
            rc = fail(r, WANDLER_ERR_GGUF_TENSOR_OVERLAP,
                      "data [%" PRIu64 ", %" PRIu64 ") overlaps tensor '%.*s' (#%" PRIu64
                      ") at [%" PRIu64 ", %" PRIu64 ")",
                      cur->start, cur->end, NAME_IN_MESSAGE, f->tensors[prev->index].name,
                      prev->index, prev->start, prev->end);
        }
    }
    free(spans);
    return rc;
}

/* ---- opening and closing ------------------------------------------------------------------- */

static int parse(gguf_file *f, wandler_error *err)
{
    reader r = {.base = f->base, .size = f->size, .pos = 0, .err = err, .where = ""};
    tensor_source *sources = NULL;
    int rc = parse_header(&r, f);
    if (rc == WANDLER_OK)
        rc = parse_kvs(&r, f);
    if (rc == WANDLER_OK)
        rc = parse_tensor_infos(&r, f, &sources);
    if (rc == WANDLER_OK) {
        f->header_end = r.pos;
        rc = copy_names(&r, f, sources);
    }
    if (rc == WANDLER_OK)
        rc = index_keys(&r, f);
    if (rc == WANDLER_OK)
        rc = read_alignment(&r, f);
    if (rc == WANDLER_OK) {
        /* The header ends inside the file and the alignment is at most 2^31: no overflow. A
         * file without tensors may end before the padding (vocabulary-only files do). */
        f->data_offset = (f->header_end + f->alignment - 1) / f->alignment * f->alignment;
        rc = place_tensors(&r, f, sources);
    }
    if (rc == WANDLER_OK)
        rc = index_tensors(&r, f, sources);
    if (rc == WANDLER_OK)
        rc = check_overlap(&r, f, sources);
    free(sources);
    return rc;
}

static gguf_file *new_file(const void *base, uint64_t size, const char *path)
{
    gguf_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return NULL;
    }
    f->base = base;
    f->size = size;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    return f;
}

/* Parses f; on failure closes it. */
static int finish_open(gguf_file *f, gguf_file **out, wandler_error *err)
{
    int rc = parse(f, err);
    if (rc != WANDLER_OK) {
        gguf_close(f);
        return rc;
    }
    wl_error_clear(err);
    *out = f;
    return WANDLER_OK;
}

int gguf_open_memory(const void *data, size_t size, gguf_file **out, wandler_error *err)
{
    if (!out)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_open_memory: data is NULL");
    gguf_file *f = new_file(data, size, "");
    if (!f)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for a GGUF file");
    return finish_open(f, out, err);
}

/* Maps the file read-only, at an address aligned to 2 MiB (the huge-page size of x86-64 and of
 * aarch64 with 4 KiB pages) and with MADV_HUGEPAGE, both hints to the kernel: when it reads the
 * file in, it then uses 2 MiB folios (physically contiguous weights), and a kernel that can map
 * file pages whole may do so. Decode streams every weight once per token: measured on this
 * project's machine (Linux 6.18, ext4, Zen 5; the folios were huge, their mappings still 4 KiB
 * page-table entries), the Q4_0 decode GEMV from a file the kernel had read in this way ran at
 * 39 GB/s on one core against 33-34 GB/s from the same file cached in small pages. Pages the
 * cache already holds stay as they are. Returns the mapping or MAP_FAILED (errno set). */
void *gguf_map_file(int fd, size_t size)
{
    const size_t align = (size_t)2 << 20;
    if (size > SIZE_MAX - align)
        return mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    /* reserve size + align bytes of address space, then map the file over its aligned part */
    unsigned char *res = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED)
        return mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    unsigned char *at = (unsigned char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
    void *map = mmap(at, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        munmap(res, size + align);
        errno = e;
        return MAP_FAILED;
    }
    /* give back the reservation's unused head and tail (whole pages: size may end mid-page) */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t end = ((uintptr_t)at + size + page - 1) / page * page - (uintptr_t)res;
    if (at > res)
        munmap(res, (size_t)(at - res));
    if (end < size + align)
        munmap(res + end, size + align - end);
#ifdef MADV_HUGEPAGE
    (void)madvise(map, size, MADV_HUGEPAGE); /* a hint: EINVAL without THP support is fine */
#endif
    return map;
}

int gguf_open(const char *path, gguf_file **out, wandler_error *err)
{
    if (!out)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_open: out is NULL");
    *out = NULL;
    if (!path)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return wl_error(err, WANDLER_ERR_NOT_FOUND, "%s: no such file", path);
        return wl_error(err, WANDLER_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return wl_error(err, WANDLER_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return wl_error(err, WANDLER_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return wl_error(err, WANDLER_ERR_GGUF_TRUNCATED, "%s: the file is empty", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return wl_error(err, WANDLER_ERR_IO, "%s: too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = gguf_map_file(fd, size);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED)
        return wl_error(err, map_errno == ENOMEM ? WANDLER_ERR_OUT_OF_MEMORY : WANDLER_ERR_IO,
                        "%s: cannot map %zu bytes: %s", path, size, strerror(map_errno));
    gguf_file *f = new_file(map, size, path);
    if (!f) {
        munmap(map, size);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "no memory for a GGUF file");
    }
    f->mapped = true;
    int rc = finish_open(f, out, err);
    if (rc != WANDLER_OK && err) {
        /* Name the file in the message: "path: <cause>". */
        char cause[sizeof err->message];
        memcpy(cause, err->message, sizeof cause);
        wl_error(err, rc, "%s: %s", path, cause);
    }
    return rc;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    if (f->kvs)
        for (uint64_t i = 0; i < f->n_kv; i++)
            free(f->kvs[i].str_at);
    free(f->kvs);
    free(f->kv_index);
    free(f->tensors);
    free(f->tensor_index);
    free(f->names);
    free(f->path);
    if (f->mapped)
        munmap((void *)f->base, (size_t)f->size);
    free(f);
}

/* ---- plain accessors ------------------------------------------------------------------------- */

uint32_t gguf_version(const gguf_file *f)
{
    return f ? f->version : 0;
}

uint64_t gguf_file_size(const gguf_file *f)
{
    return f ? f->size : 0;
}

const char *gguf_path(const gguf_file *f)
{
    return f ? f->path : "";
}

const void *gguf_base(const gguf_file *f)
{
    return f ? f->base : NULL;
}

uint64_t gguf_data_offset(const gguf_file *f)
{
    return f ? f->data_offset : 0;
}

uint32_t gguf_alignment(const gguf_file *f)
{
    return f ? f->alignment : GGUF_DEFAULT_ALIGNMENT;
}

uint64_t gguf_n_kv(const gguf_file *f)
{
    return f ? f->n_kv : 0;
}

static const gguf_kv *kv_at(const gguf_file *f, uint64_t i)
{
    return f && i < f->n_kv ? &f->kvs[i] : NULL;
}

const char *gguf_kv_key(const gguf_file *f, uint64_t i)
{
    const gguf_kv *kv = kv_at(f, i);
    return kv ? kv->key : "";
}

uint32_t gguf_kv_type(const gguf_file *f, uint64_t i)
{
    const gguf_kv *kv = kv_at(f, i);
    return kv ? kv->type : GGUF_TYPE_COUNT;
}

int64_t gguf_find_key(const gguf_file *f, const char *key)
{
    if (!f || !key)
        return -1;
    return index_find(f->kv_index, f->n_kv, key);
}

uint64_t gguf_n_tensors(const gguf_file *f)
{
    return f ? f->n_tensors : 0;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i)
{
    return f && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    int64_t i = index_find(f->tensor_index, f->n_tensors, name);
    return i < 0 ? NULL : &f->tensors[i];
}

const char *gguf_type_name(uint32_t value_type)
{
    static const char *const names[GGUF_TYPE_COUNT] = {
        [GGUF_TYPE_UINT8] = "u8",     [GGUF_TYPE_INT8] = "i8",     [GGUF_TYPE_UINT16] = "u16",
        [GGUF_TYPE_INT16] = "i16",    [GGUF_TYPE_UINT32] = "u32",  [GGUF_TYPE_INT32] = "i32",
        [GGUF_TYPE_FLOAT32] = "f32",  [GGUF_TYPE_BOOL] = "bool",   [GGUF_TYPE_STRING] = "string",
        [GGUF_TYPE_ARRAY] = "array",  [GGUF_TYPE_UINT64] = "u64",  [GGUF_TYPE_INT64] = "i64",
        [GGUF_TYPE_FLOAT64] = "f64",
    };
    return value_type < GGUF_TYPE_COUNT ? names[value_type] : "unknown";
}

/* ---- typed getters ----------------------------------------------------------------------------- */

/* Finds `key` for a getter: MISSING_KEY when absent. */
static int lookup(const gguf_file *f, const char *key, const gguf_kv **out, wandler_error *err)
{
    if (!f || !key)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "gguf getter: NULL file or key");
    int64_t i = gguf_find_key(f, key);
    if (i < 0)
        return wl_error(err, WANDLER_ERR_MODEL_MISSING_KEY, "metadata key '%s' is missing", key);
    *out = &f->kvs[i];
    return WANDLER_OK;
}

static int wrong_type(const gguf_kv *kv, const char *wanted, wandler_error *err)
{
    return wl_error(err, WANDLER_ERR_MODEL_KEY_TYPE, "metadata key '%s' has type %s, not %s",
                    kv->key, gguf_type_name(kv->type), wanted);
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out, wandler_error *err)
{
    const gguf_kv *kv;
    int rc = lookup(f, key, &kv, err);
    if (rc != WANDLER_OK)
        return rc;
    if (!is_integer_type(kv->type))
        return wrong_type(kv, "an integer", err);
    uint64_t bits = read_integer_bits(f->base + kv->value_at, kv->type);
    if (kv->type == GGUF_TYPE_UINT64 && bits > (uint64_t)INT64_MAX)
        return wl_error(err, WANDLER_ERR_MODEL_KEY_TYPE,
                        "metadata key '%s' = %" PRIu64 " does not fit a signed 64-bit integer",
                        kv->key, bits);
    if (out)
        *out = (int64_t)bits;
    return WANDLER_OK;
}

int gguf_get_uint(const gguf_file *f, const char *key, uint64_t *out, wandler_error *err)
{
    const gguf_kv *kv;
    int rc = lookup(f, key, &kv, err);
    if (rc != WANDLER_OK)
        return rc;
    if (!is_integer_type(kv->type))
        return wrong_type(kv, "an integer", err);
    uint64_t bits = read_integer_bits(f->base + kv->value_at, kv->type);
    if (is_signed_type(kv->type) && (int64_t)bits < 0)
        return wl_error(err, WANDLER_ERR_MODEL_KEY_TYPE,
                        "metadata key '%s' = %" PRId64 " is negative", kv->key, (int64_t)bits);
    if (out)
        *out = bits;
    return WANDLER_OK;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out, wandler_error *err)
{
    const gguf_kv *kv;
    int rc = lookup(f, key, &kv, err);
    if (rc != WANDLER_OK)
        return rc;
    if (!is_integer_type(kv->type) && kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)
        return wrong_type(kv, "a number", err);
    if (out)
        *out = read_number(f->base + kv->value_at, kv->type);
    return WANDLER_OK;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out, wandler_error *err)
{
    const gguf_kv *kv;
    int rc = lookup(f, key, &kv, err);
    if (rc != WANDLER_OK)
        return rc;
    if (kv->type != GGUF_TYPE_BOOL && !is_integer_type(kv->type))
        return wrong_type(kv, "bool", err);
    if (out)
        *out = read_integer_bits(f->base + kv->value_at, kv->type) != 0;
    return WANDLER_OK;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, wandler_error *err)
{
    const gguf_kv *kv;
    int rc = lookup(f, key, &kv, err);
    if (rc != WANDLER_OK)
        return rc;
    if (kv->type != GGUF_TYPE_STRING)
        return wrong_type(kv, "string", err);
    if (out) {
        out->len = le64(f->base + kv->value_at - STRING_LEN_BYTES);
        out->ptr = (const char *)f->base + kv->value_at;
    }
    return WANDLER_OK;
}

int gguf_get_arr(const gguf_file *f, const char *key, uint32_t *elem_type, uint64_t *count,
                 wandler_error *err)
{
    const gguf_kv *kv;
    int rc = lookup(f, key, &kv, err);
    if (rc != WANDLER_OK)
        return rc;
    if (kv->type != GGUF_TYPE_ARRAY)
        return wrong_type(kv, "array", err);
    if (elem_type)
        *elem_type = kv->elem_type;
    if (count)
        *count = kv->count;
    return WANDLER_OK;
}

/* Element i of a numeric array, or NULL (not an array, a string array, or i out of range). */
static const uint8_t *numeric_element(const gguf_file *f, int64_t kv_index, uint64_t i,
                                      uint32_t *elem_type)
{
    if (!f || kv_index < 0)
        return NULL;
    const gguf_kv *kv = kv_at(f, (uint64_t)kv_index);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->elem_type == GGUF_TYPE_STRING || i >= kv->count)
        return NULL;
    *elem_type = kv->elem_type;
    return f->base + kv->value_at + i * gguf_value_size(kv->elem_type);
}

int64_t gguf_arr_int(const gguf_file *f, int64_t kv_index, uint64_t i)
{
    uint32_t type;
    const uint8_t *p = numeric_element(f, kv_index, i, &type);
    if (!p)
        return 0;
    if (type == GGUF_TYPE_FLOAT32 || type == GGUF_TYPE_FLOAT64)
        return saturate_to_int64(read_number(p, type));
    /* A u64 above INT64_MAX comes back as its two's-complement bit pattern (negative), which
     * keeps the value recoverable with a cast to uint64_t and fails any "id >= 0" check. */
    return (int64_t)read_integer_bits(p, type);
}

double gguf_arr_float(const gguf_file *f, int64_t kv_index, uint64_t i)
{
    uint32_t type;
    const uint8_t *p = numeric_element(f, kv_index, i, &type);
    return p ? read_number(p, type) : 0.0;
}

gguf_str gguf_arr_str(const gguf_file *f, int64_t kv_index, uint64_t i)
{
    gguf_str s = {"", 0};
    if (!f || kv_index < 0)
        return s;
    const gguf_kv *kv = kv_at(f, (uint64_t)kv_index);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->elem_type != GGUF_TYPE_STRING || i >= kv->count)
        return s;
    s.len = le64(f->base + kv->str_at[i]);
    s.ptr = (const char *)f->base + kv->str_at[i] + STRING_LEN_BYTES;
    return s;
}

/* ---- display -------------------------------------------------------------------------------- */

#define FORMAT_MAX_ELEMENTS 16  /* array elements shown before "..." */
#define FORMAT_MAX_ELEM_STRING 40 /* bytes of a string element shown before "..." */

/* A bounded writer into the caller's buffer; `cut` records that something did not fit. */
typedef struct text_out {
    char *buf;
    size_t cap;
    size_t len;
    bool cut;
} text_out;

static void out_bytes(text_out *o, const char *s, size_t n)
{
    if (o->cut)
        return;
    size_t room = o->cap - 1 - o->len; /* cap >= 1: one byte stays for the NUL */
    if (n > room) {
        n = room;
        o->cut = true;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_str(text_out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

static void out_fmt(text_out *o, const char *fmt, ...) WL_PRINTF(2, 3);
static void out_fmt(text_out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        out_bytes(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8 sequence. */
static size_t utf8_safe_prefix(const char *s, size_t n)
{
    /* Step back over at most 3 continuation bytes to the lead byte of the last sequence. */
    size_t i = n, continuation = 0;
    while (i > 0 && continuation < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        continuation++;
    }
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t sequence = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return continuation + 1 < sequence ? i - 1 : n;
}

/* A quoted string with C-style escapes for quotes, backslashes and control bytes; at most
 * max_bytes of it are shown, followed by "..." when it is longer. */
static void out_quoted(text_out *o, const char *s, uint64_t len, uint64_t max_bytes)
{
    size_t shown = (size_t)(len < max_bytes ? len : max_bytes);
    if (shown < len)
        shown = utf8_safe_prefix(s, shown);
    out_bytes(o, "\"", 1);
    for (size_t i = 0; i < shown && !o->cut; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            out_bytes(o, esc, 2);
        } else if (c == '\n') {
            out_bytes(o, "\\n", 2);
        } else if (c == '\t') {
            out_bytes(o, "\\t", 2);
        } else if (c == '\r') {
            out_bytes(o, "\\r", 2);
        } else if (c < 0x20 || c == 0x7f) {
            out_fmt(o, "\\x%02x", c);
        } else {
            out_bytes(o, (const char *)&s[i], 1);
        }
    }
    out_bytes(o, "\"", 1);
    if (shown < len)
        out_bytes(o, "...", 3);
}

static void out_number(text_out *o, const uint8_t *p, uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_BOOL:
        out_str(o, p[0] ? "true" : "false");
        break;
    case GGUF_TYPE_FLOAT32:
        out_fmt(o, "%.7g", read_number(p, type));
        break;
    case GGUF_TYPE_FLOAT64:
        out_fmt(o, "%.15g", read_number(p, type));
        break;
    default:
        if (is_signed_type(type))
            out_fmt(o, "%" PRId64, (int64_t)read_integer_bits(p, type));
        else
            out_fmt(o, "%" PRIu64, read_integer_bits(p, type));
    }
}

static void out_array(text_out *o, const gguf_file *f, const gguf_kv *kv)
{
    out_fmt(o, "%s[%" PRIu64 "] [", gguf_type_name(kv->elem_type), kv->count);
    uint64_t shown = kv->count < FORMAT_MAX_ELEMENTS ? kv->count : FORMAT_MAX_ELEMENTS;
    for (uint64_t j = 0; j < shown && !o->cut; j++) {
        if (j)
            out_str(o, ", ");
        if (kv->elem_type == GGUF_TYPE_STRING) {
            uint64_t at = kv->str_at[j];
            out_quoted(o, (const char *)f->base + at + STRING_LEN_BYTES, le64(f->base + at),
                       FORMAT_MAX_ELEM_STRING);
        } else {
            out_number(o, f->base + kv->value_at + j * gguf_value_size(kv->elem_type), kv->elem_type);
        }
    }
    if (shown < kv->count)
        out_str(o, ", ...");
    out_str(o, "]");
}

/* When the buffer cut the text short, ends it with "..." on a whole UTF-8 character. */
static void out_finish(text_out *o)
{
    if (!o->cut || o->cap < 4)
        return;
    size_t keep = o->len > o->cap - 4 ? o->cap - 4 : o->len;
    keep = utf8_safe_prefix(o->buf, keep);
    memcpy(o->buf + keep, "...", 4);
    o->len = keep + 3;
}

const char *gguf_kv_format(const gguf_file *f, uint64_t i, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return buf;
    text_out o = {.buf = buf, .cap = cap, .len = 0, .cut = false};
    buf[0] = '\0';
    const gguf_kv *kv = kv_at(f, i);
    if (!kv)
        return buf;
    if (kv->type == GGUF_TYPE_STRING)
        out_quoted(&o, (const char *)f->base + kv->value_at,
                   le64(f->base + kv->value_at - STRING_LEN_BYTES), UINT64_MAX);
    else if (kv->type == GGUF_TYPE_ARRAY)
        out_array(&o, f, kv);
    else
        out_number(&o, f->base + kv->value_at, kv->type);
    out_finish(&o);
    return buf;
}
