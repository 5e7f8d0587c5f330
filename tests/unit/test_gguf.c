/* test_gguf.c - the GGUF reader and writer: real files, a writer round trip, a catalogue of
 * malformed files (each with its own error code), truncation sweeps, getters and display.
 *
 * In-memory images are always exact-size malloc'd copies, so AddressSanitizer catches any read
 * past the end. With WANDLER_WRITE_CORPUS=dir, test_fuzz_corpus writes the fuzzer's seed files
 * into dir; they are committed under tests/fuzz/corpus/gguf (regenerate them with
 * WANDLER_WRITE_CORPUS=$PWD/tests/fuzz/corpus/gguf after a change to the writer). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "testutil.h"
#include "gguf_mutate.h"

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/tensor_type.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct image {
    uint8_t *data;
    size_t size;
} image;

static image read_image(const char *path)
{
    size_t size = 0;
    char *p = wl_test_read_file(path, &size);
    if (!p)
        fail_msg("cannot read %s", path);
    image im = {gm_copy(p, size), size};
    free(p);
    assert_non_null(im.data);
    return im;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Opens an exact-size copy of the first n bytes of src; returns the status, fills err. */
static int open_prefix(const uint8_t *src, size_t n, wandler_error *err)
{
    uint8_t *copy = gm_copy(src, n);
    assert_non_null(copy);
    gguf_file *f = NULL;
    int rc = gguf_open_memory(copy, n, &f, err);
    if (rc == WANDLER_OK) {
        assert_non_null(f);
        gguf_close(f);
    } else {
        assert_null(f);
    }
    free(copy);
    return rc;
}

static int64_t get_int(const gguf_file *f, const char *key)
{
    int64_t v = -12345;
    wandler_error err;
    if (gguf_get_int(f, key, &v, &err) != WANDLER_OK)
        fail_msg("%s", err.message);
    return v;
}

static void assert_str_value(const gguf_file *f, const char *key, const char *want)
{
    gguf_str s;
    wandler_error err;
    if (gguf_get_str(f, key, &s, &err) != WANDLER_OK)
        fail_msg("%s", err.message);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

/* ---- the real models ---------------------------------------------------------------------- */

typedef struct tensor_fact {
    const char *name;
    uint32_t n_dims;
    uint64_t ne0, ne1;
} tensor_fact;

static const tensor_fact STORIES_TENSORS[] = {
    {"token_embd.weight", 2, 64, 512},    {"output.weight", 2, 64, 512},
    {"output_norm.weight", 1, 64, 1},     {"blk.0.attn_q.weight", 2, 64, 64},
    {"blk.0.attn_k.weight", 2, 64, 32},   {"blk.0.attn_v.weight", 2, 64, 32},
    {"blk.0.attn_output.weight", 2, 64, 64}, {"blk.0.attn_norm.weight", 1, 64, 1},
    {"blk.0.ffn_gate.weight", 2, 64, 172}, {"blk.0.ffn_down.weight", 2, 172, 64},
    {"blk.0.ffn_up.weight", 2, 64, 172},  {"blk.4.ffn_norm.weight", 1, 64, 1},
    {"blk.4.attn_k.weight", 2, 64, 32},
};

/* Facts every stories260K file shares (PROVENANCE.md). */
static void check_stories_common(const gguf_file *f)
{
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_n_tensors(f), 48);
    assert_int_equal(gguf_alignment(f), 32);
    assert_int_equal(gguf_find_key(f, "general.alignment"), -1);
    assert_int_equal(gguf_data_offset(f) % 32, 0);

    assert_str_value(f, "general.architecture", "llama");
    assert_str_value(f, "general.name", "llama");
    assert_str_value(f, "tokenizer.ggml.model", "llama");
    assert_int_equal(get_int(f, "llama.context_length"), 2048);
    assert_int_equal(get_int(f, "llama.embedding_length"), 64);
    assert_int_equal(get_int(f, "llama.feed_forward_length"), 172);
    assert_int_equal(get_int(f, "llama.block_count"), 5);
    assert_int_equal(get_int(f, "llama.attention.head_count"), 8);
    assert_int_equal(get_int(f, "llama.attention.head_count_kv"), 4);
    assert_int_equal(get_int(f, "llama.rope.dimension_count"), 8);
    assert_int_equal(get_int(f, "tokenizer.ggml.unknown_token_id"), 0);
    assert_int_equal(get_int(f, "tokenizer.ggml.bos_token_id"), 1);
    assert_int_equal(get_int(f, "tokenizer.ggml.eos_token_id"), 2);
    assert_int_equal(get_int(f, "tokenizer.ggml.seperator_token_id"), 4294967295LL);
    assert_int_equal(get_int(f, "tokenizer.ggml.padding_token_id"), 4294967295LL);
    assert_int_equal(gguf_kv_type(f, (uint64_t)gguf_find_key(f, "llama.embedding_length")),
                     GGUF_TYPE_UINT32);

    double eps = 0;
    assert_int_equal(gguf_get_float(f, "llama.attention.layer_norm_rms_epsilon", &eps, NULL), WANDLER_OK);
    assert_true(fabs(eps - 1e-5) < 1e-10);
    assert_int_equal(gguf_kv_type(f, (uint64_t)gguf_find_key(f, "llama.attention.layer_norm_rms_epsilon")),
                     GGUF_TYPE_FLOAT32);

    /* The vocabulary: 512 tokens, scores and types; 256 byte tokens <0x00>..<0xFF>. */
    uint32_t elem = 0;
    uint64_t count = 0;
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", &elem, &count, NULL), WANDLER_OK);
    assert_int_equal(elem, GGUF_TYPE_STRING);
    assert_int_equal(count, 512);
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.scores", &elem, &count, NULL), WANDLER_OK);
    assert_int_equal(elem, GGUF_TYPE_FLOAT32);
    assert_int_equal(count, 512);
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.token_type", &elem, &count, NULL), WANDLER_OK);
    assert_int_equal(elem, GGUF_TYPE_INT32);
    assert_int_equal(count, 512);
    int64_t tokens = gguf_find_key(f, "tokenizer.ggml.tokens");
    int64_t types = gguf_find_key(f, "tokenizer.ggml.token_type");
    gguf_str s = gguf_arr_str(f, tokens, 0);
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.ptr, "<unk>", 5);
    s = gguf_arr_str(f, tokens, 1);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.ptr, "<s>", 3);
    int byte_tokens = 0, types_seen[8] = {0};
    for (uint64_t i = 0; i < 512; i++) {
        int64_t t = gguf_arr_int(f, types, i);
        assert_true(t >= 0 && t < 8);
        types_seen[t]++;
        s = gguf_arr_str(f, tokens, i);
        char want[16];
        snprintf(want, sizeof want, "<0x%02X>", (unsigned)byte_tokens & 0xFF);
        if (t == 6) {
            assert_int_equal(s.len, 6);
            assert_memory_equal(s.ptr, want, 6);
            byte_tokens++;
        }
    }
    assert_int_equal(byte_tokens, 256);
    assert_int_equal(types_seen[0] + types_seen[4] + types_seen[5] + types_seen[7], 0);
    assert_true(types_seen[1] > 0 && types_seen[2] == 1 && types_seen[3] == 2);

    /* Tensor shapes, and each tensor's data inside the file. */
    for (size_t i = 0; i < sizeof STORIES_TENSORS / sizeof *STORIES_TENSORS; i++) {
        const tensor_fact *want = &STORIES_TENSORS[i];
        const gguf_tensor *t = gguf_find_tensor(f, want->name);
        if (!t)
            fail_msg("tensor %s missing", want->name);
        assert_string_equal(t->name, want->name);
        assert_int_equal(t->n_dims, want->n_dims);
        assert_int_equal(t->ne[0], want->ne0);
        assert_int_equal(t->ne[1], want->ne1);
        assert_int_equal(t->ne[2], 1);
        assert_int_equal(t->ne[3], 1);
    }
    assert_null(gguf_find_tensor(f, "blk.5.attn_q.weight"));
    assert_null(gguf_find_tensor(f, ""));
    const uint8_t *base = gguf_base(f);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        assert_non_null(t);
        assert_ptr_equal(gguf_find_tensor(f, t->name), t);
        assert_int_equal(t->offset % 32, 0);
        assert_ptr_equal(t->data, base + gguf_data_offset(f) + t->offset);
        assert_true(gguf_data_offset(f) + t->offset + t->nbytes <= gguf_file_size(f));
        uint64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        assert_int_equal(t->nbytes, wl_row_bytes(t->type, t->ne[0]) * rows);
        if (strstr(t->name, "_norm"))
            assert_int_equal(t->type, WL_TYPE_F32);
        if (strstr(t->name, "ffn_down") && gguf_n_kv(f) == 21)
            assert_int_equal(t->type, WL_TYPE_F16);
    }
    assert_null(gguf_tensor_at(f, 48));
    for (uint64_t i = 0; i < gguf_n_kv(f); i++)
        assert_int_equal(gguf_find_key(f, gguf_kv_key(f, i)), (int64_t)i);
}

static uint32_t tensor_type(const gguf_file *f, const char *name)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    assert_non_null(t);
    return t->type;
}

static void test_stories_f32(void **state)
{
    (void)state;
    const char *path = wl_test_shared("models/stories260K.gguf");
    gguf_file *f = NULL;
    wandler_error err;
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_OK);
    assert_int_equal(err.code, WANDLER_OK);
    check_stories_common(f);
    assert_string_equal(gguf_path(f), path);
    assert_int_equal(gguf_file_size(f), 1185376);
    assert_int_equal(gguf_n_kv(f), 19);
    assert_int_equal(gguf_data_offset(f), 14176);
    uint64_t total = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        assert_int_equal(gguf_tensor_at(f, i)->type, WL_TYPE_F32);
        total += gguf_tensor_at(f, i)->nbytes;
    }
    assert_int_equal(total, 1171200);
    assert_int_equal(gguf_find_key(f, "tokenizer.ggml.tokens"), 0);
    assert_string_equal(gguf_kv_key(f, 18), "llama.attention.layer_norm_rms_epsilon");
    /* output.weight is its own tensor with the same values as token_embd. */
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    const gguf_tensor *out = gguf_find_tensor(f, "output.weight");
    assert_ptr_not_equal(emb->data, out->data);
    assert_memory_equal(emb->data, out->data, (size_t)emb->nbytes);
    gguf_close(f);
}

static void test_stories_quantized(void **state)
{
    (void)state;
    static const struct {
        const char *rel;
        uint64_t size;
        uint32_t file_type, embd, output, attn_q;
    } files[] = {
        {"models/stories260K-F16.gguf", 601248, 1, WL_TYPE_F16, WL_TYPE_F16, WL_TYPE_F16},
        {"models/stories260K-Q8_0.gguf", 379168, 7, WL_TYPE_Q8_0, WL_TYPE_Q8_0, WL_TYPE_Q8_0},
        {"models/stories260K-Q4_0.gguf", 277024, 2, WL_TYPE_Q4_0, WL_TYPE_Q8_0, WL_TYPE_Q4_0},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        gguf_file *f = NULL;
        wandler_error err;
        if (gguf_open(wl_test_shared(files[i].rel), &f, &err) != WANDLER_OK)
            fail_msg("%s: %s", files[i].rel, err.message);
        check_stories_common(f);
        assert_int_equal(gguf_file_size(f), files[i].size);
        assert_int_equal(gguf_n_kv(f), 21);
        assert_int_equal(get_int(f, "general.file_type"), files[i].file_type);
        assert_int_equal(get_int(f, "general.quantization_version"), 2);
        assert_int_equal(tensor_type(f, "token_embd.weight"), files[i].embd);
        assert_int_equal(tensor_type(f, "output.weight"), files[i].output);
        assert_int_equal(tensor_type(f, "blk.3.attn_q.weight"), files[i].attn_q);
        assert_int_equal(tensor_type(f, "blk.3.ffn_down.weight"), WL_TYPE_F16);
        assert_int_equal(tensor_type(f, "blk.3.ffn_norm.weight"), WL_TYPE_F32);
        gguf_close(f);
    }
}

static void test_vocab_files(void **state)
{
    (void)state;
    static const char *const names[] = {"deepseek-llm", "gpt-2", "gpt-neox", "llama-spm", "llama3",
                                        "mpt", "phi-3", "qwen2", "smollm2"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf", names[i]);
        gguf_file *f = NULL;
        wandler_error err;
        double t0 = now_ms();
        if (gguf_open(wl_test_shared(rel), &f, &err) != WANDLER_OK)
            fail_msg("%s: %s", rel, err.message);
        double ms = now_ms() - t0;
        assert_int_equal(gguf_version(f), 3);
        assert_int_equal(gguf_n_tensors(f), 0);
        uint32_t elem = 0;
        uint64_t count = 0;
        assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", &elem, &count, NULL), WANDLER_OK);
        assert_int_equal(elem, GGUF_TYPE_STRING);
        assert_true(count >= 1000);
        int64_t kv = gguf_find_key(f, "tokenizer.ggml.tokens");
        uint64_t bytes = 0;
        for (uint64_t j = 0; j < count; j++)
            bytes += gguf_arr_str(f, kv, j).len;
        assert_true(bytes >= count);
        gguf_str model;
        assert_int_equal(gguf_get_str(f, "tokenizer.ggml.model", &model, NULL), WANDLER_OK);
        if (strcmp(names[i], "llama3") == 0) {
            assert_int_equal(count, 128256);
            uint64_t merges = 0;
            assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.merges", &elem, &merges, NULL), WANDLER_OK);
            assert_true(merges > 200000);
            print_message("llama3 vocab (%llu tokens, %llu merges) opened in %.1f ms\n",
                          (unsigned long long)count, (unsigned long long)merges, ms);
            /* The target is well under 100 ms; sanitizer builds are several times slower. */
            assert_true(ms < 1000.0);
        }
        gguf_close(f);
    }
}

/* ---- opening files: the errors of the file system ----------------------------------------- */

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void test_open_errors(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", wl_test_tmpdir());
    gguf_file *f = (gguf_file *)&f; /* must be reset to NULL on failure */
    wandler_error err;

    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_ERR_NOT_FOUND);
    assert_null(f);
    assert_int_equal(err.code, WANDLER_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "missing.gguf"));

    snprintf(path, sizeof path, "%s/no/such/dir/x.gguf", dir);
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_ERR_NOT_FOUND);

    assert_int_equal(gguf_open(dir, &f, &err), WANDLER_ERR_IO); /* a directory */
    assert_true(err.message[0] != '\0');

    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    write_bytes(path, "", 0);
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_ERR_GGUF_TRUNCATED);
    assert_non_null(strstr(err.message, "empty"));
    unlink(path);

    snprintf(path, sizeof path, "%s/short.gguf", dir);
    write_bytes(path, "GGUF\3\0\0\0\0\0", 10);
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_ERR_GGUF_TRUNCATED);
    assert_non_null(strstr(err.message, "short.gguf"));
    unlink(path);

    snprintf(path, sizeof path, "%s/text.gguf", dir);
    write_bytes(path, "hello, world\n", 13);
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_ERR_GGUF_BAD_MAGIC);
    unlink(path);

    if (geteuid() != 0) { /* root reads anything */
        snprintf(path, sizeof path, "%s/unreadable.gguf", dir);
        write_bytes(path, "GGUF", 4);
        chmod(path, 0);
        assert_int_equal(gguf_open(path, &f, &err), WANDLER_ERR_IO);
        assert_non_null(strstr(err.message, "ermission"));
        unlink(path);
    }

    assert_int_equal(gguf_open(NULL, &f, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_open(path, NULL, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_open_memory(NULL, 10, &f, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_open_memory(NULL, 0, &f, NULL), WANDLER_ERR_GGUF_TRUNCATED);
    gguf_close(NULL);
    rmdir(dir);
}

/* ---- the writer: an image with every value type and several tensors ------------------------ */

enum { N_TENSORS = 5 };

typedef struct sample {
    uint8_t u8s[3];
    int8_t i8s[3];
    uint16_t u16s[2];
    int16_t i16s[2];
    uint32_t u32s[2];
    int32_t i32s[3];
    uint64_t u64s[2];
    int64_t i64s[2];
    float f32s[3];
    double f64s[2];
    uint8_t bools[3];
    gguf_str strs[4];
    /* tensor data */
    float t_f32[5];
    uint16_t t_f16[6];
    uint8_t t_q8[3 * 34];
    uint8_t t_q4k[144];
    int32_t t_i32[16];
} sample;

static void fill_sample(sample *s)
{
    memset(s, 0, sizeof *s);
    const uint8_t u8s[] = {0, 127, 255};
    const int8_t i8s[] = {-128, 0, 127};
    const uint16_t u16s[] = {1, 65535};
    const int16_t i16s[] = {-32768, 32767};
    const uint32_t u32s[] = {0, 4294967295u};
    const int32_t i32s[] = {1, -2, 3};
    const uint64_t u64s[] = {42, UINT64_MAX};
    const int64_t i64s[] = {INT64_MIN, INT64_MAX};
    const float f32s[] = {0.5f, -1000.0f, 1e-5f};
    const double f64s[] = {3.141592653589793, -2.5e300};
    const uint8_t bools[] = {1, 0, 1};
    memcpy(s->u8s, u8s, sizeof u8s);
    memcpy(s->i8s, i8s, sizeof i8s);
    memcpy(s->u16s, u16s, sizeof u16s);
    memcpy(s->i16s, i16s, sizeof i16s);
    memcpy(s->u32s, u32s, sizeof u32s);
    memcpy(s->i32s, i32s, sizeof i32s);
    memcpy(s->u64s, u64s, sizeof u64s);
    memcpy(s->i64s, i64s, sizeof i64s);
    memcpy(s->f32s, f32s, sizeof f32s);
    memcpy(s->f64s, f64s, sizeof f64s);
    memcpy(s->bools, bools, sizeof bools);
    s->strs[0] = (gguf_str){"", 0};
    s->strs[1] = (gguf_str){"a\0b", 3};
    s->strs[2] = (gguf_str){"h\xc3\xa9llo", 6};
    s->strs[3] = (gguf_str){"\xe2\x96\x81the", 6};
    for (int i = 0; i < 5; i++)
        s->t_f32[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 6; i++)
        s->t_f16[i] = (uint16_t)(0x3C00 + i);
    for (size_t i = 0; i < sizeof s->t_q8; i++)
        s->t_q8[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof s->t_q4k; i++)
        s->t_q4k[i] = (uint8_t)(255 - i);
    for (int i = 0; i < 16; i++)
        s->t_i32[i] = i * i - 50;
}

#define OK(call) assert_int_equal((call), WANDLER_OK)

static void set_every_type(gguf_writer *w, const sample *s)
{
    OK(gguf_writer_set_str(w, "general.architecture", "test", NULL));
    OK(gguf_writer_set_u32(w, "general.alignment", 64, NULL));
    OK(gguf_writer_set_u8(w, "t.u8", 255, NULL));
    OK(gguf_writer_set_i8(w, "t.i8", -128, NULL));
    OK(gguf_writer_set_u16(w, "t.u16", 65535, NULL));
    OK(gguf_writer_set_i16(w, "t.i16", -32768, NULL));
    OK(gguf_writer_set_u32(w, "t.u32", 4294967295u, NULL));
    OK(gguf_writer_set_i32(w, "t.i32", INT32_MIN, NULL));
    OK(gguf_writer_set_u64(w, "t.u64", UINT64_MAX, NULL));
    OK(gguf_writer_set_i64(w, "t.i64", INT64_MIN, NULL));
    OK(gguf_writer_set_f32(w, "t.f32", 1.5e-5f, NULL));
    OK(gguf_writer_set_f64(w, "t.f64", -2.25e300, NULL));
    OK(gguf_writer_set_bool(w, "t.true", true, NULL));
    OK(gguf_writer_set_bool(w, "t.false", false, NULL));
    OK(gguf_writer_set_str(w, "t.str", "h\xc3\xa9llo \"world\"\n", NULL));
    OK(gguf_writer_set_str_n(w, "t.str_nul", "a\0b", 3, NULL));
    OK(gguf_writer_set_str(w, "t.str_empty", "", NULL));
    OK(gguf_writer_set_arr(w, "t.arr_u8", GGUF_TYPE_UINT8, s->u8s, 3, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_i8", GGUF_TYPE_INT8, s->i8s, 3, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_u16", GGUF_TYPE_UINT16, s->u16s, 2, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_i16", GGUF_TYPE_INT16, s->i16s, 2, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_u32", GGUF_TYPE_UINT32, s->u32s, 2, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_i32", GGUF_TYPE_INT32, s->i32s, 3, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_u64", GGUF_TYPE_UINT64, s->u64s, 2, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_i64", GGUF_TYPE_INT64, s->i64s, 2, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_f32", GGUF_TYPE_FLOAT32, s->f32s, 3, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_f64", GGUF_TYPE_FLOAT64, s->f64s, 2, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_bool", GGUF_TYPE_BOOL, s->bools, 3, NULL));
    OK(gguf_writer_set_arr(w, "t.arr_empty", GGUF_TYPE_INT32, NULL, 0, NULL));
    OK(gguf_writer_set_arr_str_n(w, "t.arr_str_n", s->strs, 4, NULL));
    const char *const plain[] = {"<unk>", "<s>", "</s>"};
    OK(gguf_writer_set_arr_str(w, "t.arr_str", plain, 3, NULL));
    OK(gguf_writer_set_arr_str(w, "t.arr_str_empty", NULL, 0, NULL));
}

/* Adds the sample's tensors; bit i of `streamed` leaves tensor i's data to be streamed. */
static void add_sample_tensors(gguf_writer *w, const sample *s, unsigned streamed)
{
    const uint64_t ne_f32[] = {5}, ne_f16[] = {3, 2}, ne_q8[] = {32, 3}, ne_q4k[] = {256},
                   ne_i32[] = {2, 2, 2, 2};
#define DATA(i, p) ((streamed >> (i)) & 1 ? NULL : (const void *)(p))
    OK(gguf_writer_add_tensor(w, "t.f32", WL_TYPE_F32, 1, ne_f32, DATA(0, s->t_f32), NULL));
    OK(gguf_writer_add_tensor(w, "t.f16", WL_TYPE_F16, 2, ne_f16, DATA(1, s->t_f16), NULL));
    OK(gguf_writer_add_tensor(w, "t.q8_0", WL_TYPE_Q8_0, 2, ne_q8, DATA(2, s->t_q8), NULL));
    OK(gguf_writer_add_tensor(w, "t.q4_k", WL_TYPE_Q4_K, 1, ne_q4k, DATA(3, s->t_q4k), NULL));
    OK(gguf_writer_add_tensor(w, "t.i32", WL_TYPE_I32, 4, ne_i32, DATA(4, s->t_i32), NULL));
#undef DATA
}

static const void *sample_tensor_data(const sample *s, int i)
{
    const void *data[N_TENSORS] = {s->t_f32, s->t_f16, s->t_q8, s->t_q4k, s->t_i32};
    return data[i];
}

static gguf_writer *sample_writer(const sample *s, unsigned streamed)
{
    gguf_writer *w = NULL;
    OK(gguf_writer_new(&w, NULL));
    set_every_type(w, s);
    add_sample_tensors(w, s, streamed);
    return w;
}

static void check_every_type(const gguf_file *f, const sample *s)
{
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    int b = -1;
    assert_int_equal(gguf_n_kv(f), 32);
    assert_string_equal(gguf_kv_key(f, 0), "general.architecture");
    assert_string_equal(gguf_kv_key(f, 31), "t.arr_str_empty");
    assert_str_value(f, "general.architecture", "test");
    OK(gguf_get_uint(f, "t.u8", &u, NULL));
    assert_int_equal(u, 255);
    OK(gguf_get_int(f, "t.i8", &i, NULL));
    assert_int_equal(i, -128);
    OK(gguf_get_uint(f, "t.u16", &u, NULL));
    assert_int_equal(u, 65535);
    OK(gguf_get_int(f, "t.i16", &i, NULL));
    assert_int_equal(i, -32768);
    OK(gguf_get_uint(f, "t.u32", &u, NULL));
    assert_int_equal(u, 4294967295u);
    OK(gguf_get_int(f, "t.i32", &i, NULL));
    assert_int_equal(i, INT32_MIN);
    OK(gguf_get_uint(f, "t.u64", &u, NULL));
    assert_true(u == UINT64_MAX);
    OK(gguf_get_int(f, "t.i64", &i, NULL));
    assert_true(i == INT64_MIN);
    OK(gguf_get_float(f, "t.f32", &d, NULL));
    assert_true((float)d == 1.5e-5f);
    OK(gguf_get_float(f, "t.f64", &d, NULL));
    assert_true(d == -2.25e300);
    OK(gguf_get_bool(f, "t.true", &b, NULL));
    assert_int_equal(b, 1);
    OK(gguf_get_bool(f, "t.false", &b, NULL));
    assert_int_equal(b, 0);
    assert_str_value(f, "t.str", "h\xc3\xa9llo \"world\"\n");
    gguf_str str;
    OK(gguf_get_str(f, "t.str_nul", &str, NULL));
    assert_int_equal(str.len, 3);
    assert_memory_equal(str.ptr, "a\0b", 3);
    assert_str_value(f, "t.str_empty", "");

    static const struct {
        const char *key;
        uint32_t type;
        uint64_t count;
    } arrays[] = {
        {"t.arr_u8", GGUF_TYPE_UINT8, 3},     {"t.arr_i8", GGUF_TYPE_INT8, 3},
        {"t.arr_u16", GGUF_TYPE_UINT16, 2},   {"t.arr_i16", GGUF_TYPE_INT16, 2},
        {"t.arr_u32", GGUF_TYPE_UINT32, 2},   {"t.arr_i32", GGUF_TYPE_INT32, 3},
        {"t.arr_u64", GGUF_TYPE_UINT64, 2},   {"t.arr_i64", GGUF_TYPE_INT64, 2},
        {"t.arr_f32", GGUF_TYPE_FLOAT32, 3},  {"t.arr_f64", GGUF_TYPE_FLOAT64, 2},
        {"t.arr_bool", GGUF_TYPE_BOOL, 3},    {"t.arr_empty", GGUF_TYPE_INT32, 0},
        {"t.arr_str_n", GGUF_TYPE_STRING, 4}, {"t.arr_str", GGUF_TYPE_STRING, 3},
        {"t.arr_str_empty", GGUF_TYPE_STRING, 0},
    };
    for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++) {
        uint32_t elem = 99;
        uint64_t count = 99;
        OK(gguf_get_arr(f, arrays[a].key, &elem, &count, NULL));
        assert_int_equal(elem, arrays[a].type);
        assert_int_equal(count, arrays[a].count);
    }
    int64_t k;
#define KV(key) (k = gguf_find_key(f, key), assert_true(k >= 0), k)
    for (int j = 0; j < 3; j++) {
        assert_int_equal(gguf_arr_int(f, KV("t.arr_u8"), j), s->u8s[j]);
        assert_int_equal(gguf_arr_int(f, KV("t.arr_i8"), j), s->i8s[j]);
        assert_int_equal(gguf_arr_int(f, KV("t.arr_i32"), j), s->i32s[j]);
        assert_true(gguf_arr_float(f, KV("t.arr_f32"), j) == s->f32s[j]);
        assert_int_equal(gguf_arr_int(f, KV("t.arr_bool"), j), s->bools[j]);
    }
    for (int j = 0; j < 2; j++) {
        assert_int_equal(gguf_arr_int(f, KV("t.arr_u16"), j), s->u16s[j]);
        assert_int_equal(gguf_arr_int(f, KV("t.arr_i16"), j), s->i16s[j]);
        assert_int_equal(gguf_arr_int(f, KV("t.arr_u32"), j), s->u32s[j]);
        assert_true(gguf_arr_int(f, KV("t.arr_i64"), j) == s->i64s[j]);
        assert_true(gguf_arr_float(f, KV("t.arr_f64"), j) == s->f64s[j]);
    }
    assert_int_equal(gguf_arr_int(f, KV("t.arr_u64"), 0), 42);
    assert_true((uint64_t)gguf_arr_int(f, KV("t.arr_u64"), 1) == UINT64_MAX); /* the bits */
    assert_true(gguf_arr_float(f, KV("t.arr_u64"), 1) == 18446744073709551615.0);
    for (int j = 0; j < 4; j++) {
        gguf_str e = gguf_arr_str(f, KV("t.arr_str_n"), j);
        assert_int_equal(e.len, s->strs[j].len);
        assert_memory_equal(e.ptr, s->strs[j].ptr, e.len);
    }
    assert_int_equal(gguf_arr_str(f, KV("t.arr_str"), 2).len, 4);
    assert_memory_equal(gguf_arr_str(f, KV("t.arr_str"), 2).ptr, "</s>", 4);
#undef KV
}

static void check_sample_tensors(const gguf_file *f, const sample *s)
{
    static const struct {
        const char *name;
        uint32_t type, n_dims;
        uint64_t ne[4], nbytes;
    } want[N_TENSORS] = {
        {"t.f32", WL_TYPE_F32, 1, {5, 1, 1, 1}, 20},
        {"t.f16", WL_TYPE_F16, 2, {3, 2, 1, 1}, 12},
        {"t.q8_0", WL_TYPE_Q8_0, 2, {32, 3, 1, 1}, 102},
        {"t.q4_k", WL_TYPE_Q4_K, 1, {256, 1, 1, 1}, 144},
        {"t.i32", WL_TYPE_I32, 4, {2, 2, 2, 2}, 64},
    };
    assert_int_equal(gguf_n_tensors(f), N_TENSORS);
    assert_int_equal(gguf_alignment(f), 64);
    assert_int_equal(gguf_data_offset(f) % 64, 0);
    for (int i = 0; i < N_TENSORS; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, (uint64_t)i);
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->type, want[i].type);
        assert_int_equal(t->n_dims, want[i].n_dims);
        for (int d = 0; d < 4; d++)
            assert_int_equal(t->ne[d], want[i].ne[d]);
        assert_int_equal(t->nbytes, want[i].nbytes);
        assert_int_equal(t->offset % 64, 0);
        assert_memory_equal(t->data, sample_tensor_data(s, i), (size_t)t->nbytes);
        assert_ptr_equal(gguf_find_tensor(f, want[i].name), t);
    }
    /* Padding is zeros: the bytes between t.f32 (20 bytes) and t.f16. */
    const uint8_t *pad = (const uint8_t *)gguf_tensor_at(f, 0)->data + 20;
    for (int i = 0; i < 44; i++)
        assert_int_equal(pad[i], 0);
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    sample s;
    fill_sample(&s);
    gguf_writer *w = sample_writer(&s, 0);
    assert_int_equal(gguf_writer_n_kv(w), 32);
    assert_int_equal(gguf_writer_n_tensors(w), N_TENSORS);
    void *mem = NULL;
    size_t size = 0;
    wandler_error err;
    OK(gguf_writer_write_memory(w, &mem, &size, &err));
    assert_int_equal(size, gguf_writer_file_size(w));
    assert_int_equal(size % 64, 0);

    gguf_file *f = NULL;
    if (gguf_open_memory(mem, size, &f, &err) != WANDLER_OK)
        fail_msg("%s", err.message);
    assert_int_equal(gguf_version(f), 3);
    assert_string_equal(gguf_path(f), "");
    assert_ptr_equal(gguf_base(f), mem);
    check_every_type(f, &s);
    check_sample_tensors(f, &s);
    gguf_close(f);

    /* The same through a file and gguf_open(): the same bytes. */
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", wl_test_tmpdir());
    snprintf(path, sizeof path, "%s/every.gguf", dir);
    OK(gguf_writer_write_file(w, path, &err));
    size_t file_size = 0;
    char *bytes = wl_test_read_file(path, &file_size);
    assert_non_null(bytes);
    assert_int_equal(file_size, size);
    assert_memory_equal(bytes, mem, size);
    free(bytes);
    OK(gguf_open(path, &f, &err));
    check_every_type(f, &s);
    check_sample_tensors(f, &s);
    gguf_close(f);
    unlink(path);
    rmdir(dir);
    gguf_writer_free(w);
    free(mem);
}

/* Streams the data of the tensors in `streamed` in pieces of `chunk` bytes. */
static void test_writer_streaming(void **state)
{
    (void)state;
    sample s;
    fill_sample(&s);
    gguf_writer *ref = sample_writer(&s, 0);
    void *want = NULL;
    size_t want_size = 0;
    OK(gguf_writer_write_memory(ref, &want, &want_size, NULL));
    gguf_writer_free(ref);

    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", wl_test_tmpdir());
    snprintf(path, sizeof path, "%s/streamed.gguf", dir);
    static const unsigned masks[] = {0x1F, 0x0A, 0x11, 0x00};
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
        gguf_writer *w = sample_writer(&s, masks[m]);
        wandler_error err;
        void *whole = NULL;
        size_t whole_size = 0;
        assert_int_equal(gguf_writer_write_memory(w, &whole, &whole_size, &err),
                         masks[m] ? WANDLER_ERR_INVALID_ARGUMENT : WANDLER_OK);
        free(whole);
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        OK(gguf_writer_begin(w, fp, &err));
        assert_int_equal(gguf_writer_begin(w, fp, &err), WANDLER_ERR_INVALID_ARGUMENT);
        assert_int_equal(gguf_writer_set_u8(w, "late", 1, &err), WANDLER_ERR_INVALID_ARGUMENT);
        for (int i = 0; i < N_TENSORS; i++) {
            if (!((masks[m] >> i) & 1))
                continue;
            assert_int_equal(gguf_writer_current_tensor(w), i);
            const uint8_t *p = sample_tensor_data(&s, i);
            uint64_t n = gguf_writer_tensor_nbytes(w, (uint64_t)i);
            for (uint64_t done = 0; done < n;) {
                size_t piece = n - done < 7 ? (size_t)(n - done) : 7;
                OK(gguf_writer_write_data(w, p + done, piece, &err));
                done += piece;
            }
        }
        assert_int_equal(gguf_writer_current_tensor(w), -1);
        assert_int_equal(gguf_writer_write_data(w, "x", 1, &err), WANDLER_ERR_INVALID_ARGUMENT);
        OK(gguf_writer_end(w, &err));
        assert_int_equal(fclose(fp), 0);
        size_t got_size = 0;
        char *got = wl_test_read_file(path, &got_size);
        assert_non_null(got);
        assert_int_equal(got_size, want_size);
        assert_memory_equal(got, want, want_size);
        free(got);
        gguf_writer_free(w);
    }
    unlink(path);
    rmdir(dir);
    free(want);
}

/* copy_kv reproduces every entry of a file, checked through the display form and the arrays. */
static void check_copy_all(const gguf_file *src)
{
    gguf_writer *w = NULL;
    OK(gguf_writer_new(&w, NULL));
    for (uint64_t i = 0; i < gguf_n_kv(src); i++)
        OK(gguf_writer_copy_kv(w, src, i, NULL));
    void *mem = NULL;
    size_t size = 0;
    OK(gguf_writer_write_memory(w, &mem, &size, NULL));
    gguf_file *f = NULL;
    OK(gguf_open_memory(mem, size, &f, NULL));
    assert_int_equal(gguf_n_kv(f), gguf_n_kv(src));
    for (uint64_t i = 0; i < gguf_n_kv(src); i++) {
        char a[512], b[512];
        assert_string_equal(gguf_kv_key(f, i), gguf_kv_key(src, i));
        assert_int_equal(gguf_kv_type(f, i), gguf_kv_type(src, i));
        assert_string_equal(gguf_kv_format(f, i, a, sizeof a), gguf_kv_format(src, i, b, sizeof b));
        uint32_t elem;
        uint64_t count;
        if (gguf_get_arr(src, gguf_kv_key(src, i), &elem, &count, NULL) != WANDLER_OK)
            continue;
        for (uint64_t j = 0; j < count; j++) {
            gguf_str x = gguf_arr_str(src, (int64_t)i, j), y = gguf_arr_str(f, (int64_t)i, j);
            assert_int_equal(x.len, y.len);
            assert_memory_equal(x.ptr, y.ptr, x.len);
            assert_true(gguf_arr_int(src, (int64_t)i, j) == gguf_arr_int(f, (int64_t)i, j));
            double fx = gguf_arr_float(src, (int64_t)i, j), fy = gguf_arr_float(f, (int64_t)i, j);
            assert_memory_equal(&fx, &fy, sizeof fx);
        }
    }
    gguf_close(f);
    free(mem);
    gguf_writer_free(w);
}

static void test_writer_copy_kv(void **state)
{
    (void)state;
    gguf_file *f = NULL;
    OK(gguf_open(wl_test_shared("models/stories260K.gguf"), &f, NULL));
    check_copy_all(f);
    gguf_close(f);

    sample s;
    fill_sample(&s);
    gguf_writer *w = sample_writer(&s, 0);
    void *mem = NULL;
    size_t size = 0;
    OK(gguf_writer_write_memory(w, &mem, &size, NULL));
    OK(gguf_open_memory(mem, size, &f, NULL));
    check_copy_all(f);
    gguf_close(f);
    free(mem);
    gguf_writer_free(w);
}

static void test_writer_errors(void **state)
{
    (void)state;
    gguf_writer *w = NULL;
    wandler_error err;
    const uint64_t ne[] = {32, 2, 1, 1, 1}, zero[] = {32, 0}, odd[] = {31}, huge[] = {1ull << 62, 4};
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    OK(gguf_writer_new(&w, &err));
#define BAD(call)                                                                                 \
    do {                                                                                          \
        err.message[0] = '\0';                                                                    \
        assert_int_equal((call), WANDLER_ERR_INVALID_ARGUMENT);                                   \
        assert_int_equal(err.code, WANDLER_ERR_INVALID_ARGUMENT);                                 \
        assert_true(err.message[0] != '\0');                                                      \
    } while (0)
    BAD(gguf_writer_new(NULL, &err));
    BAD(gguf_writer_set_u8(NULL, "k", 1, &err));
    BAD(gguf_writer_set_u8(w, NULL, 1, &err));
    BAD(gguf_writer_set_u8(w, "", 1, &err));
    BAD(gguf_writer_set_str(w, "k", NULL, &err));
    BAD(gguf_writer_set_str_n(w, "k", NULL, 3, &err));
    BAD(gguf_writer_set_arr(w, "k", GGUF_TYPE_STRING, ne, 1, &err));
    BAD(gguf_writer_set_arr(w, "k", GGUF_TYPE_ARRAY, ne, 1, &err));
    BAD(gguf_writer_set_arr(w, "k", 13, ne, 1, &err));
    BAD(gguf_writer_set_arr(w, "k", GGUF_TYPE_UINT8, NULL, 1, &err));
    BAD(gguf_writer_set_arr_str(w, "k", (const char *const[]){"a", NULL}, 2, &err));
    BAD(gguf_writer_set_arr_str_n(w, "k", (const gguf_str[]){{NULL, 2}}, 1, &err));
    BAD(gguf_writer_set_u32(w, "general.alignment", 0, &err));
    BAD(gguf_writer_set_u32(w, "general.alignment", 3, &err));
    BAD(gguf_writer_set_u32(w, "general.alignment", 96, &err));
    BAD(gguf_writer_set_i32(w, "general.alignment", 32, &err));
    BAD(gguf_writer_set_u64(w, "general.alignment", 32, &err));
    BAD(gguf_writer_add_tensor(w, NULL, WL_TYPE_F32, 1, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "", WL_TYPE_F32, 1, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, long_name, WL_TYPE_F32, 1, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", WL_TYPE_F32, 0, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", WL_TYPE_F32, 5, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", WL_TYPE_F32, 2, NULL, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", WL_TYPE_F32, 2, zero, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", 4, 1, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", 200, 1, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", WL_TYPE_Q8_0, 1, odd, NULL, &err));
    BAD(gguf_writer_add_tensor(w, "t", WL_TYPE_F32, 2, huge, NULL, &err));
    assert_int_equal(gguf_writer_n_kv(w), 0);
    assert_int_equal(gguf_writer_n_tensors(w), 0);

    long_name[63] = '\0'; /* 63 bytes: the longest name allowed */
    OK(gguf_writer_add_tensor(w, long_name, WL_TYPE_F32, 2, ne, NULL, &err));
    BAD(gguf_writer_add_tensor(w, long_name, WL_TYPE_F32, 1, ne, NULL, &err)); /* duplicate */
    BAD(gguf_writer_write_data(w, "x", 1, &err));                              /* not streaming */
    BAD(gguf_writer_end(w, &err));
    BAD(gguf_writer_begin(w, NULL, &err));
    BAD(gguf_writer_write_memory(w, &(void *){NULL}, &(size_t){0}, &err));    /* no data */
    BAD(gguf_writer_write_memory(w, NULL, &(size_t){0}, &err));

    /* Replacing and removing keys. */
    OK(gguf_writer_set_u32(w, "a", 1, &err));
    OK(gguf_writer_set_str(w, "b", "x", &err));
    OK(gguf_writer_set_str(w, "a", "now a string", &err));
    assert_int_equal(gguf_writer_n_kv(w), 2);
    OK(gguf_writer_remove_key(w, "b", &err));
    OK(gguf_writer_remove_key(w, "not there", &err));
    assert_int_equal(gguf_writer_n_kv(w), 1);
    OK(gguf_writer_set_u32(w, "general.alignment", 128, &err));

    /* Streaming: too many bytes, then too few. */
    FILE *fp = tmpfile();
    assert_non_null(fp);
    OK(gguf_writer_begin(w, fp, &err));
    uint8_t data[256] = {0};
    BAD(gguf_writer_write_data(w, data, 257, &err));
    BAD(gguf_writer_write_data(w, NULL, 8, &err));
    OK(gguf_writer_write_data(w, data, 200, &err));
    BAD(gguf_writer_add_tensor(w, "late", WL_TYPE_F32, 1, ne, NULL, &err));
    BAD(gguf_writer_end(w, &err));
    assert_non_null(strstr(err.message, "200 of its 256"));
    /* The writer is usable again: write it whole. */
    OK(gguf_writer_begin(w, fp, &err));
    OK(gguf_writer_write_data(w, data, 256, &err));
    OK(gguf_writer_end(w, &err));
    fclose(fp);

    /* A file in a folder that does not exist. */
    gguf_writer *w2 = NULL;
    OK(gguf_writer_new(&w2, &err));
    assert_int_equal(gguf_writer_write_file(w2, "/nonexistent-dir/x.gguf", &err), WANDLER_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent-dir/x.gguf"));
    BAD(gguf_writer_write_file(w2, NULL, &err));
    /* An empty writer makes a valid 24-byte file. */
    void *mem = NULL;
    size_t size = 0;
    OK(gguf_writer_write_memory(w2, &mem, &size, &err));
    assert_int_equal(size, 24);
    gguf_file *f = NULL;
    OK(gguf_open_memory(mem, size, &f, &err));
    assert_int_equal(gguf_n_kv(f), 0);
    assert_int_equal(gguf_n_tensors(f), 0);
    assert_int_equal(gguf_data_offset(f), 32); /* past the end: fine without tensors */
    gguf_close(f);
    free(mem);
    gguf_writer_free(w2);
    gguf_writer_free(w);
    gguf_writer_free(NULL);
#undef BAD
}

/* ---- getters and display ------------------------------------------------------------------- */

static void test_getters(void **state)
{
    (void)state;
    sample s;
    fill_sample(&s);
    gguf_writer *w = sample_writer(&s, 0);
    OK(gguf_writer_set_i32(w, "t.neg", -5, NULL));
    void *mem = NULL;
    size_t size = 0;
    OK(gguf_writer_write_memory(w, &mem, &size, NULL));
    gguf_file *f = NULL;
    OK(gguf_open_memory(mem, size, &f, NULL));
    wandler_error err;
    int64_t i;
    uint64_t u;
    double d;
    int b;
    gguf_str str;

    assert_int_equal(gguf_get_int(f, "nope", &i, &err), WANDLER_ERR_MODEL_MISSING_KEY);
    assert_non_null(strstr(err.message, "nope"));
    assert_int_equal(gguf_get_int(f, "nope", &i, NULL), WANDLER_ERR_MODEL_MISSING_KEY);
    assert_int_equal(gguf_get_int(f, "t.str", &i, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    assert_non_null(strstr(err.message, "t.str"));
    assert_int_equal(gguf_get_int(f, "t.f32", &i, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    assert_int_equal(gguf_get_int(f, "t.true", &i, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    assert_int_equal(gguf_get_int(f, "t.u64", &i, &err), WANDLER_ERR_MODEL_KEY_TYPE); /* > INT64_MAX */
    assert_int_equal(gguf_get_uint(f, "t.neg", &u, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    OK(gguf_get_int(f, "t.neg", &i, &err));
    assert_int_equal(i, -5);
    OK(gguf_get_float(f, "t.neg", &d, &err));
    assert_true(d == -5.0);
    assert_int_equal(gguf_get_float(f, "t.str", &d, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    OK(gguf_get_bool(f, "t.u8", &b, &err));
    assert_int_equal(b, 1);
    assert_int_equal(gguf_get_bool(f, "t.f32", &b, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    assert_int_equal(gguf_get_str(f, "t.u8", &str, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    assert_int_equal(gguf_get_arr(f, "t.u8", NULL, NULL, &err), WANDLER_ERR_MODEL_KEY_TYPE);
    assert_int_equal(gguf_get_str(NULL, "t.u8", &str, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_get_str(f, NULL, &str, &err), WANDLER_ERR_INVALID_ARGUMENT);

    /* Out-of-range and wrong-kind reads give 0 or "". */
    int64_t ints = gguf_find_key(f, "t.arr_i32"), strs = gguf_find_key(f, "t.arr_str");
    assert_int_equal(gguf_arr_int(f, ints, 3), 0);
    assert_int_equal(gguf_arr_int(f, ints, UINT64_MAX), 0);
    assert_int_equal(gguf_arr_int(f, strs, 0), 0);
    assert_int_equal(gguf_arr_int(f, -1, 0), 0);
    assert_int_equal(gguf_arr_int(f, 1000, 0), 0);
    assert_int_equal(gguf_arr_int(f, gguf_find_key(f, "t.u8"), 0), 0);
    assert_true(gguf_arr_float(f, strs, 0) == 0.0);
    assert_int_equal(gguf_arr_str(f, ints, 0).len, 0);
    assert_int_equal(gguf_arr_str(f, strs, 3).len, 0);
    assert_string_equal(gguf_arr_str(f, strs, 3).ptr, "");
    assert_int_equal(gguf_arr_int(f, gguf_find_key(f, "t.arr_f32"), 1), -1000);
    assert_string_equal(gguf_kv_key(f, 9999), "");
    assert_int_equal(gguf_kv_type(f, 9999), GGUF_TYPE_COUNT);
    assert_int_equal(gguf_find_key(f, NULL), -1);
    assert_string_equal(gguf_type_name(GGUF_TYPE_UINT32), "u32");
    assert_string_equal(gguf_type_name(GGUF_TYPE_STRING), "string");
    assert_string_equal(gguf_type_name(GGUF_TYPE_ARRAY), "array");
    assert_string_equal(gguf_type_name(13), "unknown");

    /* Display. */
    static const struct {
        const char *key, *want;
    } shown[] = {
        {"t.u8", "255"},
        {"t.i8", "-128"},
        {"t.u64", "18446744073709551615"},
        {"t.i64", "-9223372036854775808"},
        {"t.f32", "1.5e-05"},
        {"t.f64", "-2.25e+300"},
        {"t.true", "true"},
        {"t.false", "false"},
        {"t.str", "\"h\xc3\xa9llo \\\"world\\\"\\n\""},
        {"t.str_nul", "\"a\\x00b\""},
        {"t.str_empty", "\"\""},
        {"t.arr_i32", "i32[3] [1, -2, 3]"},
        {"t.arr_f32", "f32[3] [0.5, -1000, 1e-05]"},
        {"t.arr_bool", "bool[3] [true, false, true]"},
        {"t.arr_empty", "i32[0] []"},
        {"t.arr_str_n", "string[4] [\"\", \"a\\x00b\", \"h\xc3\xa9llo\", \"\xe2\x96\x81the\"]"},
    };
    char buf[256];
    for (size_t j = 0; j < sizeof shown / sizeof *shown; j++) {
        int64_t k = gguf_find_key(f, shown[j].key);
        assert_true(k >= 0);
        assert_string_equal(gguf_kv_format(f, (uint64_t)k, buf, sizeof buf), shown[j].want);
    }
    /* Small buffers cut on a whole UTF-8 character and end with "...". */
    int64_t k = gguf_find_key(f, "t.str");
    assert_string_equal(gguf_kv_format(f, (uint64_t)k, buf, 8), "\"h\xc3\xa9...");
    assert_string_equal(gguf_kv_format(f, (uint64_t)k, buf, 6), "\"h...");
    assert_string_equal(gguf_kv_format(f, (uint64_t)k, buf, 4), "...");
    assert_string_equal(gguf_kv_format(f, (uint64_t)k, buf, 3), "\"h");
    assert_string_equal(gguf_kv_format(f, (uint64_t)k, buf, 1), "");
    assert_ptr_equal(gguf_kv_format(f, (uint64_t)k, NULL, 0), NULL);
    assert_string_equal(gguf_kv_format(f, 9999, buf, sizeof buf), "");
    for (size_t cap = 1; cap < 64; cap++) {
        for (uint64_t j = 0; j < gguf_n_kv(f); j++) {
            char *small = malloc(cap); /* exact size: ASan checks the bound */
            gguf_kv_format(f, j, small, cap);
            assert_true(strlen(small) < cap);
            free(small);
        }
    }
    gguf_close(f);
    free(mem);
    gguf_writer_free(w);

    /* Long arrays and long strings are shortened. */
    OK(gguf_open(wl_test_shared("models/stories260K.gguf"), &f, NULL));
    gguf_kv_format(f, 0, buf, sizeof buf);
    assert_memory_equal(buf, "string[512] [\"<unk>\", \"<s>\", \"</s>\", \"<0x00>\"", 44);
    assert_non_null(strstr(buf, ", ...]"));
    gguf_close(f);
}

/* ---- malformed files ------------------------------------------------------------------------ */

enum base { MODEL, SMALL, N_BASES };

enum field {
    F_NONE,             /* the base as it is (a control: it must open) */
    F_TRUNCATE,         /* keep the first `value` bytes */
    F_CUT_END,          /* drop the last `value` bytes */
    F_U32_AT,           /* u32 at file offset `arg` */
    F_U64_AT,           /* u64 at file offset `arg` */
    F_KEY_LEN,          /* length of key `target` */
    F_KEY_BYTE,         /* byte `arg` of key `target` */
    F_KEY_RENAME,       /* key `target` becomes `str` (same length) */
    F_KV_TYPE,          /* value type of `target` */
    F_VALUE_U32,        /* the u32 value of `target` */
    F_VALUE_U64,        /* the first u64 of the value of `target` (a string's length) */
    F_ARR_TYPE,         /* element type of array `target` */
    F_ARR_COUNT,        /* length of array `target` */
    F_ARR_STR_LEN,      /* length of element `arg` of string array `target` */
    F_TENSOR_NAME_LEN,  /* length of the name of tensor `target` */
    F_TENSOR_NAME_BYTE, /* byte `arg` of the name of tensor `target` */
    F_TENSOR_RENAME,    /* tensor `target` is renamed `str` (same length) */
    F_TENSOR_NDIMS,
    F_TENSOR_NE,        /* ne[arg] */
    F_TENSOR_TYPE,
    F_TENSOR_OFFSET,    /* := value */
    F_TENSOR_OFFSET_ADD,/* += value */
    F_TENSOR_OFFSET_OF, /* := the offset of tensor `str` + value */
};

typedef struct bad_case {
    const char *name;
    int base;
    int field;
    const char *target;
    uint64_t arg;
    uint64_t value;
    const char *str;
    int expect;
} bad_case;

#define E(code) WANDLER_ERR_GGUF_##code
#define T40 (1ull << 40)
#define MAX64 UINT64_MAX
#define MAX32 0xFFFFFFFFull

static const bad_case CASES[] = {
    {"control: the real model", MODEL, F_NONE, NULL, 0, 0, NULL, WANDLER_OK},
    {"control: the small writer file", SMALL, F_NONE, NULL, 0, 0, NULL, WANDLER_OK},
    {"empty file", MODEL, F_TRUNCATE, NULL, 0, 0, NULL, E(TRUNCATED)},
    {"3-byte file", MODEL, F_TRUNCATE, NULL, 0, 3, NULL, E(TRUNCATED)},
    {"file ends inside the header", MODEL, F_TRUNCATE, NULL, 0, 20, NULL, E(TRUNCATED)},
    {"file ends inside the first key", MODEL, F_TRUNCATE, NULL, 0, 40, NULL, E(TRUNCATED)},
    {"file ends inside the vocabulary", MODEL, F_TRUNCATE, NULL, 0, 3000, NULL, E(TRUNCATED)},
    {"file ends inside the tensor entries", MODEL, F_TRUNCATE, NULL, 0, 12000, NULL, E(TRUNCATED)},
    {"file ends where the data starts", MODEL, F_TRUNCATE, NULL, 0, 14176, NULL, E(TENSOR_OUT_OF_BOUNDS)},
    {"file one byte short", MODEL, F_CUT_END, NULL, 0, 1, NULL, E(TENSOR_OUT_OF_BOUNDS)},
    {"bad magic", MODEL, F_U32_AT, NULL, 0, 0x464c457f, NULL, E(BAD_MAGIC)},
    {"magic in lower case", MODEL, F_U32_AT, NULL, 0, 0x66756767, NULL, E(BAD_MAGIC)},
    {"version 0", MODEL, F_U32_AT, NULL, 4, 0, NULL, E(BAD_VERSION)},
    {"version 1", MODEL, F_U32_AT, NULL, 4, 1, NULL, E(BAD_VERSION)},
    {"version 4", MODEL, F_U32_AT, NULL, 4, 4, NULL, E(BAD_VERSION)},
    {"version 99", MODEL, F_U32_AT, NULL, 4, 99, NULL, E(BAD_VERSION)},
    {"version 3 big-endian", MODEL, F_U32_AT, NULL, 4, 0x03000000, NULL, E(BAD_VERSION)},
    {"tensor count 2^40", MODEL, F_U64_AT, NULL, 8, T40, NULL, E(BAD_COUNT)},
    {"tensor count 2^64-1", MODEL, F_U64_AT, NULL, 8, MAX64, NULL, E(BAD_COUNT)},
    {"tensor count 10^8", SMALL, F_U64_AT, NULL, 8, 100000000, NULL, E(BAD_COUNT)},
    {"kv count 2^40", MODEL, F_U64_AT, NULL, 16, T40, NULL, E(BAD_COUNT)},
    {"kv count 2^64-1", MODEL, F_U64_AT, NULL, 16, MAX64, NULL, E(BAD_COUNT)},
    {"kv count 10^8", SMALL, F_U64_AT, NULL, 16, 100000000, NULL, E(BAD_COUNT)},
    {"key length 2^40", MODEL, F_KEY_LEN, "general.name", 0, T40, NULL, E(BAD_STRING)},
    {"key length 2^64-1", MODEL, F_KEY_LEN, "tokenizer.ggml.tokens", 0, MAX64, NULL, E(BAD_STRING)},
    {"key length past the end, plausible", MODEL, F_KEY_LEN, "general.name", 0, 5000000, NULL, E(TRUNCATED)},
    {"string value length 2^40", MODEL, F_VALUE_U64, "general.architecture", 0, T40, NULL, E(BAD_STRING)},
    {"string value length 2^64-1", MODEL, F_VALUE_U64, "general.name", 0, MAX64, NULL, E(BAD_STRING)},
    {"tensor name length 2^40", MODEL, F_TENSOR_NAME_LEN, "output.weight", 0, T40, NULL, E(BAD_STRING)},
    {"tensor name length 2^64-1", MODEL, F_TENSOR_NAME_LEN, "token_embd.weight", 0, MAX64, NULL, E(BAD_STRING)},
    {"string array length 2^40", MODEL, F_ARR_COUNT, "tokenizer.ggml.tokens", 0, T40, NULL, E(BAD_ARRAY)},
    {"f32 array length 2^64-1", MODEL, F_ARR_COUNT, "tokenizer.ggml.scores", 0, MAX64, NULL, E(BAD_ARRAY)},
    {"i32 array length 2^62", MODEL, F_ARR_COUNT, "tokenizer.ggml.token_type", 0, 1ull << 62, NULL, E(BAD_ARRAY)},
    {"string element length 2^40", MODEL, F_ARR_STR_LEN, "tokenizer.ggml.tokens", 5, T40, NULL, E(BAD_STRING)},
    {"last string element length 2^64-1", MODEL, F_ARR_STR_LEN, "tokenizer.ggml.tokens", 511, MAX64, NULL, E(BAD_STRING)},
    {"value type 13", MODEL, F_KV_TYPE, "general.name", 0, 13, NULL, E(BAD_VALUE_TYPE)},
    {"value type 2^32-1", MODEL, F_KV_TYPE, "llama.block_count", 0, MAX32, NULL, E(BAD_VALUE_TYPE)},
    {"array element type 13", MODEL, F_ARR_TYPE, "tokenizer.ggml.scores", 0, 13, NULL, E(BAD_VALUE_TYPE)},
    {"array element type 2^31", MODEL, F_ARR_TYPE, "tokenizer.ggml.token_type", 0, 1u << 31, NULL, E(BAD_VALUE_TYPE)},
    {"nested array", MODEL, F_ARR_TYPE, "tokenizer.ggml.tokens", 0, GGUF_TYPE_ARRAY, NULL, E(BAD_ARRAY)},
    {"duplicate key", SMALL, F_KEY_RENAME, "test.key_b", 0, 0, "test.key_a", E(DUPLICATE_KEY)},
    {"duplicate key in the model", MODEL, F_KEY_RENAME, "general.architecture", 0, 0, "tokenizer.ggml.model", E(DUPLICATE_KEY)},
    {"NUL inside a key", MODEL, F_KEY_BYTE, "general.name", 3, 0, NULL, E(BAD_STRING)},
    {"NUL ending a key", SMALL, F_KEY_BYTE, "test.key_a", 9, 0, NULL, E(BAD_STRING)},
    {"NUL inside a tensor name", MODEL, F_TENSOR_NAME_BYTE, "output.weight", 0, 0, NULL, E(BAD_STRING)},
    {"alignment 0", SMALL, F_VALUE_U32, "general.alignment", 0, 0, NULL, E(BAD_ALIGNMENT)},
    {"alignment 3", SMALL, F_VALUE_U32, "general.alignment", 0, 3, NULL, E(BAD_ALIGNMENT)},
    {"alignment 48", SMALL, F_VALUE_U32, "general.alignment", 0, 48, NULL, E(BAD_ALIGNMENT)},
    {"alignment 2^32-1", SMALL, F_VALUE_U32, "general.alignment", 0, MAX32, NULL, E(BAD_ALIGNMENT)},
    {"alignment typed i32", SMALL, F_KV_TYPE, "general.alignment", 0, GGUF_TYPE_INT32, NULL, E(BAD_ALIGNMENT)},
    {"alignment typed f32", SMALL, F_KV_TYPE, "general.alignment", 0, GGUF_TYPE_FLOAT32, NULL, E(BAD_ALIGNMENT)},
    {"alignment 64 misaligns a tensor", SMALL, F_VALUE_U32, "general.alignment", 0, 64, NULL, E(TENSOR_MISALIGNED)},
    {"alignment 2^31 puts the data past the end", SMALL, F_VALUE_U32, "general.alignment", 0, 1u << 31, NULL, E(TENSOR_OUT_OF_BOUNDS)},
    {"tensor past the end of the file", MODEL, F_TENSOR_OFFSET, "blk.4.ffn_norm.weight", 0, 1171200, NULL, E(TENSOR_OUT_OF_BOUNDS)},
    {"tensor ending one block past the end", MODEL, F_TENSOR_OFFSET_ADD, "blk.4.ffn_norm.weight", 0, 32, NULL, E(TENSOR_OUT_OF_BOUNDS)},
    {"tensor offset near 2^64", MODEL, F_TENSOR_OFFSET, "output.weight", 0, MAX64 & ~31ull, NULL, E(TENSOR_OUT_OF_BOUNDS)},
    {"tensors at the same offset", MODEL, F_TENSOR_OFFSET_OF, "output.weight", 0, 0, "token_embd.weight", E(TENSOR_OVERLAP)},
    {"tensors partly overlapping", MODEL, F_TENSOR_OFFSET_OF, "blk.0.attn_k.weight", 0, 64 * 64 * 4 - 32, "blk.0.attn_q.weight", E(TENSOR_OVERLAP)},
    {"small tensors overlapping", SMALL, F_TENSOR_OFFSET_OF, "t.c", 0, 32, "t.b", E(TENSOR_OVERLAP)},
    {"misaligned tensor offset (+4)", MODEL, F_TENSOR_OFFSET_ADD, "blk.0.attn_q.weight", 0, 4, NULL, E(TENSOR_MISALIGNED)},
    {"misaligned tensor offset (+1)", SMALL, F_TENSOR_OFFSET_ADD, "t.b", 0, 1, NULL, E(TENSOR_MISALIGNED)},
    {"tensor type 4 (removed Q4_2)", MODEL, F_TENSOR_TYPE, "output_norm.weight", 0, 4, NULL, E(BAD_TENSOR_TYPE)},
    {"tensor type 5 (removed Q4_3)", MODEL, F_TENSOR_TYPE, "token_embd.weight", 0, 5, NULL, E(BAD_TENSOR_TYPE)},
    {"tensor type 31", MODEL, F_TENSOR_TYPE, "blk.2.attn_v.weight", 0, 31, NULL, E(BAD_TENSOR_TYPE)},
    {"tensor type 40", MODEL, F_TENSOR_TYPE, "blk.2.attn_v.weight", 0, 40, NULL, E(BAD_TENSOR_TYPE)},
    {"tensor type 200", MODEL, F_TENSOR_TYPE, "blk.4.ffn_up.weight", 0, 200, NULL, E(BAD_TENSOR_TYPE)},
    {"tensor type 2^32-1", SMALL, F_TENSOR_TYPE, "t.a", 0, MAX32, NULL, E(BAD_TENSOR_TYPE)},
    {"n_dims 0", MODEL, F_TENSOR_NDIMS, "output_norm.weight", 0, 0, NULL, E(BAD_DIMS)},
    {"n_dims 5", MODEL, F_TENSOR_NDIMS, "token_embd.weight", 0, 5, NULL, E(BAD_DIMS)},
    {"n_dims 2^32-1", SMALL, F_TENSOR_NDIMS, "t.b", 0, MAX32, NULL, E(BAD_DIMS)},
    {"zero row length", MODEL, F_TENSOR_NE, "token_embd.weight", 0, 0, NULL, E(BAD_DIMS)},
    {"zero second dimension", MODEL, F_TENSOR_NE, "blk.1.ffn_down.weight", 1, 0, NULL, E(BAD_DIMS)},
    {"dims product overflows 64 bits", MODEL, F_TENSOR_NE, "token_embd.weight", 1, 1ull << 60, NULL, E(DIM_OVERFLOW)},
    {"dims product exactly 2^63", MODEL, F_TENSOR_NE, "token_embd.weight", 1, 1ull << 57, NULL, E(DIM_OVERFLOW)},
    {"one dimension of 2^63", MODEL, F_TENSOR_NE, "output_norm.weight", 0, 1ull << 63, NULL, E(DIM_OVERFLOW)},
    {"size in bytes overflows", MODEL, F_TENSOR_NE, "token_embd.weight", 1, 1ull << 56, NULL, E(DIM_OVERFLOW)},
    {"row not a whole Q4_K block", MODEL, F_TENSOR_TYPE, "output_norm.weight", 0, WL_TYPE_Q4_K, NULL, E(BAD_DIMS)},
    {"row not a whole Q8_0 block", SMALL, F_TENSOR_NE, "t.b", 0, 48, NULL, E(BAD_DIMS)},
    {"duplicate tensor name", MODEL, F_TENSOR_RENAME, "blk.0.attn_k.weight", 0, 0, "blk.0.attn_q.weight", E(DUPLICATE_TENSOR)},
    {"duplicate small tensor name", SMALL, F_TENSOR_RENAME, "t.c", 0, 0, "t.a", E(DUPLICATE_TENSOR)},
};

typedef struct bases {
    image im[N_BASES];
    gm_layout layout[N_BASES];
} bases;

/* The small writer file: alignment 32 as an explicit u32, two keys to make equal, an array of
 * strings, and three tensors (t.a 64 bytes at 0, t.b 68 bytes at 64, t.c 8 bytes at 160). */
static image make_small(void)
{
    static const float a[16] = {1, 2, 3};
    static const uint8_t b[68] = {1};
    static const uint16_t c[4] = {0x3C00};
    const uint64_t ne_a[] = {8, 2}, ne_b[] = {32, 2}, ne_c[] = {4};
    const char *const strs[] = {"x", "yy", "zzz"};
    const int32_t ints[] = {1, 2, 3};
    gguf_writer *w = NULL;
    OK(gguf_writer_new(&w, NULL));
    OK(gguf_writer_set_u32(w, "general.alignment", 32, NULL));
    OK(gguf_writer_set_str(w, "test.key_a", "a", NULL));
    OK(gguf_writer_set_str(w, "test.key_b", "b", NULL));
    OK(gguf_writer_set_arr_str(w, "test.strings", strs, 3, NULL));
    OK(gguf_writer_set_arr(w, "test.ints", GGUF_TYPE_INT32, ints, 3, NULL));
    OK(gguf_writer_add_tensor(w, "t.a", WL_TYPE_F32, 2, ne_a, a, NULL));
    OK(gguf_writer_add_tensor(w, "t.b", WL_TYPE_Q8_0, 2, ne_b, b, NULL));
    OK(gguf_writer_add_tensor(w, "t.c", WL_TYPE_F16, 1, ne_c, c, NULL));
    image im = {NULL, 0};
    OK(gguf_writer_write_memory(w, (void **)&im.data, &im.size, NULL));
    gguf_writer_free(w);
    return im;
}

static int setup_bases(void **state)
{
    bases *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->im[MODEL] = read_image(wl_test_shared("models/stories260K.gguf"));
    b->im[SMALL] = make_small();
    for (int i = 0; i < N_BASES; i++)
        assert_int_equal(gm_layout_read(b->im[i].data, b->im[i].size, &b->layout[i]), 0);
    *state = b;
    return 0;
}

static int teardown_bases(void **state)
{
    bases *b = *state;
    for (int i = 0; i < N_BASES; i++) {
        free(b->im[i].data);
        gm_layout_free(&b->layout[i]);
    }
    free(b);
    return 0;
}

static const gm_kv *need_kv(const bases *b, const bad_case *c)
{
    const gm_kv *kv = gm_find_kv(&b->layout[c->base], b->im[c->base].data, c->target);
    if (!kv)
        fail_msg("case '%s': no key %s", c->name, c->target);
    return kv;
}

static const gm_tensor *need_tensor(const bases *b, const bad_case *c, const char *name)
{
    const gm_tensor *t = gm_find_tensor(&b->layout[c->base], b->im[c->base].data, name);
    if (!t)
        fail_msg("case '%s': no tensor %s", c->name, name);
    return t;
}

/* Applies a case to a copy of its base; returns the copy and its size. */
static uint8_t *apply_case(const bases *b, const bad_case *c, size_t *size)
{
    const image *base = &b->im[c->base];
    *size = base->size;
    if (c->field == F_TRUNCATE)
        *size = (size_t)c->value;
    if (c->field == F_CUT_END)
        *size = base->size - (size_t)c->value;
    uint8_t *p = gm_copy(base->data, *size);
    assert_non_null(p);
    const gm_kv *kv = NULL;
    const gm_tensor *t = NULL;
    if (c->field >= F_KEY_LEN && c->field <= F_ARR_STR_LEN)
        kv = need_kv(b, c);
    if (c->field >= F_TENSOR_NAME_LEN)
        t = need_tensor(b, c, c->target);
    switch (c->field) {
    case F_U32_AT: gm_put_u32(p, c->arg, (uint32_t)c->value); break;
    case F_U64_AT: gm_put_u64(p, c->arg, c->value); break;
    case F_KEY_LEN: gm_put_u64(p, kv->at, c->value); break;
    case F_KEY_BYTE: p[kv->key_at + c->arg] = (uint8_t)c->value; break;
    case F_KEY_RENAME:
        assert_int_equal(strlen(c->str), kv->key_len);
        memcpy(p + kv->key_at, c->str, kv->key_len);
        break;
    case F_KV_TYPE: gm_put_u32(p, kv->type_at, (uint32_t)c->value); break;
    case F_VALUE_U32: gm_put_u32(p, kv->value_at, (uint32_t)c->value); break;
    case F_VALUE_U64: gm_put_u64(p, kv->value_at, c->value); break;
    case F_ARR_TYPE: gm_put_u32(p, kv->value_at, (uint32_t)c->value); break;
    case F_ARR_COUNT: gm_put_u64(p, kv->value_at + 4, c->value); break;
    case F_ARR_STR_LEN: gm_put_u64(p, gm_arr_str_at(p, kv, c->arg), c->value); break;
    case F_TENSOR_NAME_LEN: gm_put_u64(p, t->at, c->value); break;
    case F_TENSOR_NAME_BYTE: p[t->name_at + c->arg] = (uint8_t)c->value; break;
    case F_TENSOR_RENAME:
        assert_int_equal(strlen(c->str), t->name_len);
        memcpy(p + t->name_at, c->str, t->name_len);
        break;
    case F_TENSOR_NDIMS: gm_put_u32(p, t->n_dims_at, (uint32_t)c->value); break;
    case F_TENSOR_NE: gm_put_u64(p, t->ne_at + 8 * c->arg, c->value); break;
    case F_TENSOR_TYPE: gm_put_u32(p, t->type_at, (uint32_t)c->value); break;
    case F_TENSOR_OFFSET: gm_put_u64(p, t->offset_at, c->value); break;
    case F_TENSOR_OFFSET_ADD: gm_put_u64(p, t->offset_at, t->offset + c->value); break;
    case F_TENSOR_OFFSET_OF:
        gm_put_u64(p, t->offset_at, need_tensor(b, c, c->str)->offset + c->value);
        break;
    default: break;
    }
    return p;
}

static void test_malformed_catalogue(void **state)
{
    const bases *b = *state;
    size_t n_cases = sizeof CASES / sizeof *CASES, failures = 0, malformed = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const bad_case *c = &CASES[i];
        size_t size;
        uint8_t *p = apply_case(b, c, &size);
        gguf_file *f = (gguf_file *)&f;
        wandler_error err = {.code = -1, .message = ""};
        int rc = gguf_open_memory(p, size, &f, &err);
        bool ok = rc == c->expect && err.code == rc &&
                  (rc == WANDLER_OK ? f != NULL && err.message[0] == '\0'
                                    : f == NULL && err.message[0] != '\0');
        if (!ok) {
            print_error("case '%s': got %d (\"%s\"), want %d\n", c->name, rc, err.message, c->expect);
            failures++;
        } else if (getenv("WANDLER_TEST_VERBOSE")) {
            print_message("%-44s %d %s\n", c->name, rc, err.message);
        }
        if (c->expect != WANDLER_OK)
            malformed++;
        if (rc == WANDLER_OK)
            gguf_close(f);
        free(p);
    }
    assert_true(malformed >= 25);
    assert_int_equal(failures, 0);
}

/* Every cut of the header region fails with TRUNCATED, every cut of the data with
 * TENSOR_OUT_OF_BOUNDS; none crashes or reads past the end. */
static void sweep(const image *im, size_t stride, const char *what)
{
    gm_layout layout;
    assert_int_equal(gm_layout_read(im->data, im->size, &layout), 0);
    size_t failures = 0, tried = 0;
    uint64_t header_end = layout.header_end;
    uint64_t data_start = (header_end + 31) / 32 * 32; /* these bases use the default alignment */
    for (uint64_t cut = 0; cut < im->size; cut += cut < data_start ? stride : im->size) {
        int want = cut < header_end ? WANDLER_ERR_GGUF_TRUNCATED : WANDLER_ERR_GGUF_TENSOR_OUT_OF_BOUNDS;
        wandler_error err = {0};
        int rc = open_prefix(im->data, (size_t)cut, &err);
        tried++;
        if (rc != want || err.message[0] == '\0') {
            if (failures++ < 10)
                print_error("%s cut at %llu: got %d (%s), want %d\n", what, (unsigned long long)cut,
                            rc, err.message, want);
        }
    }
    /* Around each tensor's data. The padding after the last tensor is not needed. */
    gguf_file *f = NULL;
    OK(gguf_open_memory(im->data, im->size, &f, NULL));
    uint64_t data_end = 0;
    for (uint64_t i = 0; i < layout.n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t end = gguf_data_offset(f) + t->offset + t->nbytes;
        data_end = end > data_end ? end : data_end;
    }
    for (uint64_t i = 0; i < layout.n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t start = gguf_data_offset(f) + t->offset, end = start + t->nbytes;
        const uint64_t cuts[] = {start, start + 1, end - 1, end};
        for (int j = 0; j < 4; j++) {
            if (cuts[j] >= data_end)
                continue;
            wandler_error err = {0};
            int rc = open_prefix(im->data, (size_t)cuts[j], &err);
            tried++;
            if (rc != WANDLER_ERR_GGUF_TENSOR_OUT_OF_BOUNDS && failures++ < 10)
                print_error("%s cut at %llu (tensor %llu): got %d (%s)\n", what,
                            (unsigned long long)cuts[j], (unsigned long long)i, rc, err.message);
        }
    }
    gguf_close(f);
    gm_layout_free(&layout);
    print_message("%s: %zu cuts\n", what, tried);
    assert_int_equal(failures, 0);
}

static void test_truncation_sweep(void **state)
{
    const bases *b = *state;
    sweep(&b->im[MODEL], 1, "stories260K.gguf");
    sweep(&b->im[SMALL], 1, "small writer file");

    image q4 = read_image(wl_test_shared("models/stories260K-Q4_0.gguf"));
    sweep(&q4, 3, "stories260K-Q4_0.gguf");
    free(q4.data);

    sample s;
    fill_sample(&s);
    gguf_writer *w = sample_writer(&s, 0);
    OK(gguf_writer_remove_key(w, "general.alignment", NULL)); /* the sweep assumes 32 */
    image every = {NULL, 0};
    OK(gguf_writer_write_memory(w, (void **)&every.data, &every.size, NULL));
    gguf_writer_free(w);
    sweep(&every, 1, "every-type writer file");
    free(every.data);

    /* A vocabulary without tensors: every cut is TRUNCATED. */
    image vocab = read_image(wl_test_shared("tokenizer/ggml-vocab-llama-spm.gguf"));
    sweep(&vocab, 4099, "ggml-vocab-llama-spm.gguf");
    free(vocab.data);
}

/* Random single-byte and single-word corruption of the small file: any result but a crash. */
static void test_random_corruption(void **state)
{
    const bases *b = *state;
    const image *im = &b->im[SMALL];
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 20000; round++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint8_t *p = gm_copy(im->data, im->size);
        uint64_t at = rng % b->layout[SMALL].header_end;
        if (round & 1)
            p[at] = (uint8_t)(rng >> 32);
        else if (at + 8 <= im->size)
            gm_put_u64(p, at, (round & 2) ? rng >> 20 : ~(uint64_t)0 >> (rng % 64));
        gguf_file *f = NULL;
        wandler_error err = {0};
        int rc = gguf_open_memory(p, im->size, &f, &err);
        if (rc == WANDLER_OK) {
            char buf[128];
            for (uint64_t i = 0; i < gguf_n_kv(f); i++)
                gguf_kv_format(f, i, buf, sizeof buf);
            gguf_close(f);
        } else {
            assert_true(err.message[0] != '\0');
            assert_true(rc >= 200 && rc < 300);
        }
        free(p);
    }
}

/* ---- the fuzzer's seeds --------------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, gguf_writer *w)
{
    void *mem = NULL;
    size_t size = 0;
    OK(gguf_writer_write_memory(w, &mem, &size, NULL));
    assert_true(size < 8192);
    gguf_file *f = NULL;
    OK(gguf_open_memory(mem, size, &f, NULL));
    gguf_close(f);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, mem, size);
    free(mem);
    gguf_writer_free(w);
}

static const char *const SEEDS[] = {"header_only.gguf", "every_kv_type.gguf", "two_tensors.gguf",
                                    "five_tensors_align16.gguf", "small.gguf"};

static void write_seeds(const bases *b, const char *dir)
{
    gguf_writer *w = NULL;
    OK(gguf_writer_new(&w, NULL));
    write_seed(dir, SEEDS[0], w);

    sample s;
    fill_sample(&s);
    OK(gguf_writer_new(&w, NULL));
    set_every_type(w, &s);
    write_seed(dir, SEEDS[1], w);

    static const float t1[8] = {1, -1, 0.5f, 2, 0, 3, -2, 4};
    static const uint8_t t2[34] = {0x00, 0x3C, 1, 2, 3, 255};
    const uint64_t ne1[] = {4, 2}, ne2[] = {32};
    OK(gguf_writer_new(&w, NULL));
    OK(gguf_writer_set_str(w, "general.architecture", "llama", NULL));
    OK(gguf_writer_set_u32(w, "llama.embedding_length", 4, NULL));
    OK(gguf_writer_add_tensor(w, "a.weight", WL_TYPE_F32, 2, ne1, t1, NULL));
    OK(gguf_writer_add_tensor(w, "b.weight", WL_TYPE_Q8_0, 1, ne2, t2, NULL));
    write_seed(dir, SEEDS[2], w);

    OK(gguf_writer_new(&w, NULL));
    add_sample_tensors(w, &s, 0);
    OK(gguf_writer_set_u32(w, "general.alignment", 16, NULL));
    write_seed(dir, SEEDS[3], w);

    char path[8192];
    if (snprintf(path, sizeof path, "%s/%s", dir, SEEDS[4]) >= (int)sizeof path)
        fail_msg("path too long");
    write_bytes(path, b->im[SMALL].data, b->im[SMALL].size);
}

/* Writes the fuzzer's seeds: into $WANDLER_WRITE_CORPUS when set (to refresh the committed
 * ones), else into a scratch folder; and checks that the committed seeds are valid files. */
static void test_fuzz_corpus(void **state)
{
    const bases *b = *state;
    const char *target = getenv("WANDLER_WRITE_CORPUS");
    char dir[4096];
    if (target && *target) {
        snprintf(dir, sizeof dir, "%s", target);
        mkdir(dir, 0777);
    } else {
        snprintf(dir, sizeof dir, "%s", wl_test_tmpdir());
    }
    write_seeds(b, dir);
    for (size_t i = 0; i < sizeof SEEDS / sizeof *SEEDS; i++) {
        char rel[256], path[8192];
        snprintf(rel, sizeof rel, "tests/fuzz/corpus/gguf/%s", SEEDS[i]);
        gguf_file *f = NULL;
        wandler_error err;
        if (gguf_open(wl_test_source(rel), &f, &err) != WANDLER_OK)
            fail_msg("committed seed %s: %s", rel, err.message);
        gguf_close(f);
        if (!(target && *target)) {
            if (snprintf(path, sizeof path, "%s/%s", dir, SEEDS[i]) < (int)sizeof path)
                unlink(path);
        }
    }
    if (!(target && *target))
        rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_f32),
        cmocka_unit_test(test_stories_quantized),
        cmocka_unit_test(test_vocab_files),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_streaming),
        cmocka_unit_test(test_writer_copy_kv),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_malformed_catalogue),
        cmocka_unit_test(test_truncation_sweep),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_fuzz_corpus),
    };
    return cmocka_run_group_tests_name("gguf", tests, setup_bases, teardown_bases);
}
