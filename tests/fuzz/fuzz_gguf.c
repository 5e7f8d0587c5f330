/* fuzz_gguf.c - libFuzzer target: the GGUF reader on arbitrary bytes.
 *
 * Parses the input with gguf_open_memory(). When it opens, reads back everything the reader
 * offers: every metadata entry through gguf_kv_format() and the typed getters, array elements up
 * to a cap, every tensor (by index and by name) and the first and last byte of its data. Any read
 * past the input is caught by AddressSanitizer, since libFuzzer's buffer is exactly `size` bytes.
 *
 * Seeds: tests/fuzz/corpus/gguf (written by test_gguf with WANDLER_WRITE_CORPUS=dir). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ELEMENTS 4096 /* array elements read per entry */

/* Keeps the compiler from dropping reads whose values are otherwise unused. */
static volatile uint64_t sink;

static void touch_string(const char *p, uint64_t len)
{
    if (len) {
        sink += (unsigned char)p[0];
        sink += (unsigned char)p[len - 1];
    }
}

static void walk_kv(const gguf_file *f, uint64_t i)
{
    char small[7], big[512];
    gguf_kv_format(f, i, small, sizeof small);
    gguf_kv_format(f, i, big, sizeof big);
    sink += strlen(small) + strlen(big);

    const char *key = gguf_kv_key(f, i);
    if (gguf_find_key(f, key) != (int64_t)i)
        __builtin_trap(); /* every key must find its own entry */

    int64_t s;
    uint64_t u;
    double d;
    int b;
    gguf_str str;
    uint32_t elem;
    uint64_t count;
    gguf_get_int(f, key, &s, NULL);
    gguf_get_uint(f, key, &u, NULL);
    gguf_get_float(f, key, &d, NULL);
    gguf_get_bool(f, key, &b, NULL);
    if (gguf_get_str(f, key, &str, NULL) == WANDLER_OK)
        touch_string(str.ptr, str.len);
    if (gguf_get_arr(f, key, &elem, &count, NULL) != WANDLER_OK)
        return;
    uint64_t n = count < MAX_ELEMENTS ? count : MAX_ELEMENTS;
    for (uint64_t j = 0; j < n; j++) {
        gguf_str e = gguf_arr_str(f, (int64_t)i, j);
        touch_string(e.ptr, e.len);
        sink += (uint64_t)gguf_arr_int(f, (int64_t)i, j);
        d = gguf_arr_float(f, (int64_t)i, j);
        sink += d == d;
    }
    if (count) { /* the last element too, and one past it (which must read as empty) */
        gguf_str last = gguf_arr_str(f, (int64_t)i, count - 1);
        touch_string(last.ptr, last.len);
        sink += (uint64_t)gguf_arr_int(f, (int64_t)i, count - 1);
        if (gguf_arr_str(f, (int64_t)i, count).len != 0 || gguf_arr_int(f, (int64_t)i, count) != 0)
            __builtin_trap();
    }
}

static void walk_tensor(const gguf_file *f, uint64_t i)
{
    const gguf_tensor *t = gguf_tensor_at(f, i);
    if (!t || gguf_find_tensor(f, t->name) != t)
        __builtin_trap();
    const uint8_t *p = t->data;
    const uint8_t *base = gguf_base(f);
    if (t->nbytes == 0 || p < base || p + t->nbytes > base + gguf_file_size(f))
        __builtin_trap(); /* the reader promised the data is inside the file */
    sink += p[0];
    sink += p[t->nbytes - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    wandler_error err;
    if (gguf_open_memory(data, size, &f, &err) != WANDLER_OK) {
        if (f != NULL || err.message[0] == '\0')
            __builtin_trap(); /* a failure leaves no file and always says why */
        return 0;
    }
    uint32_t version = gguf_version(f), alignment = gguf_alignment(f);
    if ((version != 2 && version != 3) || alignment == 0 || (alignment & (alignment - 1)) ||
        gguf_data_offset(f) % alignment != 0 || gguf_file_size(f) != size)
        __builtin_trap(); /* what the reader accepted must satisfy its own rules */
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        if (gguf_kv_type(f, i) >= GGUF_TYPE_COUNT)
            __builtin_trap();
        walk_kv(f, i);
    }
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++)
        walk_tensor(f, i);
    gguf_close(f);
    return 0;
}
