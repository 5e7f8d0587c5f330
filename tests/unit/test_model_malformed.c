/* test_model_malformed.c - well-formed GGUF files that are not usable models: each is the real
 * bundled model rewritten with one thing wrong, loaded through the public API, and must fail
 * with its specific WANDLER_ERR_MODEL_* code and a message naming the cause. (Container-level
 * malformations are in test_gguf.c.)
 *
 * Malformed quantized data, on tiny random models of every weight format (mkmodel): NaN / Inf
 * block scales and mins, tensor data cut short by the end of the file, a tensor whose type id
 * says another format (so its byte size no longer matches its slot), rows that are not whole
 * blocks. Each gives a load error naming the tensor, or loads and generates: finite text, or
 * WANDLER_ERR_MODEL_BAD_TENSOR_DATA when the spoiled block makes the logits non-finite. Never a
 * crash or undefined behaviour (the sanitizer build runs these too). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"
#include "testutil.h"
#include "tools/mkmodel.h"
#include "wandler.h"

/* How to rewrite the model: change keys, then tensors. */
typedef struct edit {
    const char *drop_key;        /* remove this key */
    const char *set_key;         /* set this key ... */
    int set_type;                /* ... as GGUF_TYPE_UINT32, FLOAT32 or STRING ... */
    double set_num;              /* ... to this number ... */
    const char *set_str;         /* ... or this string */
    const char *drop_tensor;     /* leave this tensor out */
    const char *retype_tensor;   /* give this tensor another (unsupported) type, zero data */
    uint32_t new_type;
    const char *reshape_tensor;  /* give this tensor a second dimension of new_rows */
    uint64_t new_rows;
    const char *nan_tensor;      /* put a NaN into this F32 tensor */
    int drop_last_token;         /* shorten the vocabulary arrays by one entry */
} edit;

static void apply_key_edits(gguf_writer *w, const gguf_file *src, const edit *e)
{
    wandler_error err;
    for (uint64_t i = 0; i < gguf_n_kv(src); i++) {
        const char *key = gguf_kv_key(src, i);
        if (e->drop_key && !strcmp(key, e->drop_key))
            continue;
        int shorten = e->drop_last_token &&
                      (!strcmp(key, "tokenizer.ggml.tokens") || !strcmp(key, "tokenizer.ggml.scores") ||
                       !strcmp(key, "tokenizer.ggml.token_type"));
        if (!shorten) {
            assert_int_equal(gguf_writer_copy_kv(w, src, i, &err), WANDLER_OK);
            continue;
        }
        int64_t idx = gguf_find_key(src, key);
        uint32_t et;
        uint64_t n;
        assert_int_equal(gguf_get_arr(src, key, &et, &n, &err), WANDLER_OK);
        n--;
        if (et == GGUF_TYPE_STRING) {
            gguf_str *s = malloc(n * sizeof *s);
            for (uint64_t k = 0; k < n; k++)
                s[k] = gguf_arr_str(src, idx, k);
            assert_int_equal(gguf_writer_set_arr_str_n(w, key, s, n, &err), WANDLER_OK);
            free(s);
        } else if (et == GGUF_TYPE_FLOAT32) {
            float *v = malloc(n * sizeof *v);
            for (uint64_t k = 0; k < n; k++)
                v[k] = (float)gguf_arr_float(src, idx, k);
            assert_int_equal(gguf_writer_set_arr(w, key, et, v, n, &err), WANDLER_OK);
            free(v);
        } else {
            int32_t *v = malloc(n * sizeof *v);
            for (uint64_t k = 0; k < n; k++)
                v[k] = (int32_t)gguf_arr_int(src, idx, k);
            assert_int_equal(gguf_writer_set_arr(w, key, GGUF_TYPE_INT32, v, n, &err), WANDLER_OK);
            free(v);
        }
    }
    if (e->set_key) {
        if (e->set_type == GGUF_TYPE_UINT32)
            assert_int_equal(gguf_writer_set_u32(w, e->set_key, (uint32_t)e->set_num, &err), WANDLER_OK);
        else if (e->set_type == GGUF_TYPE_FLOAT32)
            assert_int_equal(gguf_writer_set_f32(w, e->set_key, (float)e->set_num, &err), WANDLER_OK);
        else
            assert_int_equal(gguf_writer_set_str(w, e->set_key, e->set_str, &err), WANDLER_OK);
    }
}

/* Writes the edited model to a temporary file and returns its path (static buffer). The buffers
 * of replaced tensors are collected in *owned for the caller to free. */
static const char *write_edited(const edit *e, void **owned, int *n_owned)
{
    static char path[512];
    wandler_error err;
    gguf_file *src;
    assert_int_equal(gguf_open(wl_test_source("models/stories260K.gguf"), &src, &err), WANDLER_OK);
    gguf_writer *w;
    assert_int_equal(gguf_writer_new(&w, &err), WANDLER_OK);
    apply_key_edits(w, src, e);
    for (uint64_t i = 0; i < gguf_n_tensors(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        uint32_t type = t->type, n_dims = t->n_dims;
        const void *data = t->data;
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor))
            continue;
        if (e->retype_tensor && !strcmp(t->name, e->retype_tensor)) {
            type = e->new_type;
            size_t nb = wl_row_bytes(type, ne[0]) * ne[1];
            data = owned[(*n_owned)++] = calloc(1, nb);
        } else if (e->reshape_tensor && !strcmp(t->name, e->reshape_tensor)) {
            ne[1] = e->new_rows;
            n_dims = 2;
            data = owned[(*n_owned)++] = calloc(ne[0] * ne[1], sizeof(float));
        } else if (e->nan_tensor && !strcmp(t->name, e->nan_tensor)) {
            float *copy = malloc(t->nbytes);
            memcpy(copy, t->data, t->nbytes);
            copy[t->ne[0] / 2] = NAN;
            data = owned[(*n_owned)++] = copy;
        }
        assert_int_equal(gguf_writer_add_tensor(w, t->name, type, n_dims, ne, data, &err), WANDLER_OK);
    }
    snprintf(path, sizeof path, "%s/model.gguf", wl_test_tmpdir());
    assert_int_equal(gguf_writer_write_file(w, path, &err), WANDLER_OK);
    gguf_writer_free(w);
    gguf_close(src);
    return path;
}

typedef struct model_case {
    const char *name;
    edit e;
    int code;
    const char *mention; /* the message must contain this */
} model_case;

static const model_case CASES[] = {
    {"unmodified model loads", {0}, WANDLER_OK, ""},
    {"missing architecture", {.drop_key = "general.architecture"}, WANDLER_ERR_MODEL_MISSING_KEY,
     "general.architecture"},
    {"unsupported architecture", {.set_key = "general.architecture", .set_type = GGUF_TYPE_STRING, .set_str = "mamba"},
     WANDLER_ERR_MODEL_UNSUPPORTED_ARCH, "mamba"},
    {"architecture of the wrong type", {.set_key = "general.architecture", .set_type = GGUF_TYPE_UINT32, .set_num = 7},
     WANDLER_ERR_MODEL_KEY_TYPE, "general.architecture"},
    {"missing embedding length", {.drop_key = "llama.embedding_length"}, WANDLER_ERR_MODEL_MISSING_KEY,
     "llama.embedding_length"},
    {"missing block count", {.drop_key = "llama.block_count"}, WANDLER_ERR_MODEL_MISSING_KEY, "llama.block_count"},
    {"missing head count", {.drop_key = "llama.attention.head_count"}, WANDLER_ERR_MODEL_MISSING_KEY,
     "llama.attention.head_count"},
    {"missing rms epsilon", {.drop_key = "llama.attention.layer_norm_rms_epsilon"}, WANDLER_ERR_MODEL_MISSING_KEY,
     "layer_norm_rms_epsilon"},
    {"head count of the wrong type",
     {.set_key = "llama.attention.head_count", .set_type = GGUF_TYPE_STRING, .set_str = "eight"},
     WANDLER_ERR_MODEL_KEY_TYPE, "llama.attention.head_count"},
    {"head count not dividing the width", {.set_key = "llama.attention.head_count", .set_type = GGUF_TYPE_UINT32, .set_num = 7},
     WANDLER_ERR_MODEL_BAD_HPARAM, "does not divide"},
    {"kv heads not dividing the heads",
     {.set_key = "llama.attention.head_count_kv", .set_type = GGUF_TYPE_UINT32, .set_num = 3},
     WANDLER_ERR_MODEL_BAD_HPARAM, "head_count_kv"},
    {"zero heads", {.set_key = "llama.attention.head_count", .set_type = GGUF_TYPE_UINT32, .set_num = 0},
     WANDLER_ERR_MODEL_BAD_HPARAM, "head_count"},
    {"absurd layer count", {.set_key = "llama.block_count", .set_type = GGUF_TYPE_UINT32, .set_num = 4000000000.0},
     WANDLER_ERR_MODEL_BAD_HPARAM, "block_count"},
    {"more layers than tensors", {.set_key = "llama.block_count", .set_type = GGUF_TYPE_UINT32, .set_num = 6},
     WANDLER_ERR_MODEL_MISSING_TENSOR, "blk.5."},
    {"zero context length", {.set_key = "llama.context_length", .set_type = GGUF_TYPE_UINT32, .set_num = 0},
     WANDLER_ERR_MODEL_BAD_HPARAM, "context_length"},
    {"negative epsilon",
     {.set_key = "llama.attention.layer_norm_rms_epsilon", .set_type = GGUF_TYPE_FLOAT32, .set_num = -1},
     WANDLER_ERR_MODEL_BAD_HPARAM, "layer_norm_rms_epsilon"},
    {"NaN epsilon", {.set_key = "llama.attention.layer_norm_rms_epsilon", .set_type = GGUF_TYPE_FLOAT32, .set_num = NAN},
     WANDLER_ERR_MODEL_BAD_HPARAM, "layer_norm_rms_epsilon"},
    {"odd rope dimensions", {.set_key = "llama.rope.dimension_count", .set_type = GGUF_TYPE_UINT32, .set_num = 7},
     WANDLER_ERR_MODEL_BAD_HPARAM, "rope.dimension_count"},
    {"rope wider than a head", {.set_key = "llama.rope.dimension_count", .set_type = GGUF_TYPE_UINT32, .set_num = 16},
     WANDLER_ERR_MODEL_BAD_HPARAM, "rope.dimension_count"},
    {"zero rope base", {.set_key = "llama.rope.freq_base", .set_type = GGUF_TYPE_FLOAT32, .set_num = 0},
     WANDLER_ERR_MODEL_BAD_HPARAM, "rope.freq_base"},
    {"missing embedding", {.drop_tensor = "token_embd.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR, "token_embd.weight"},
    {"missing attention weight", {.drop_tensor = "blk.3.attn_k.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR,
     "blk.3.attn_k.weight"},
    {"missing output norm", {.drop_tensor = "output_norm.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR,
     "output_norm.weight"},
    {"wrongly shaped weight", {.reshape_tensor = "blk.1.ffn_up.weight", .new_rows = 100},
     WANDLER_ERR_MODEL_TENSOR_SHAPE, "blk.1.ffn_up.weight"},
    {"wrongly shaped output", {.reshape_tensor = "output.weight", .new_rows = 500}, WANDLER_ERR_MODEL_TENSOR_SHAPE,
     "output.weight"},
    {"unsupported weight format", {.retype_tensor = "blk.0.attn_q.weight", .new_type = WL_TYPE_I16},
     WANDLER_ERR_MODEL_UNSUPPORTED_TYPE, "I16"},
    {"NaN in a norm", {.nan_tensor = "blk.2.ffn_norm.weight"}, WANDLER_ERR_MODEL_BAD_TENSOR_DATA, "blk.2.ffn_norm.weight"},
    {"vocabulary smaller than the embedding", {.drop_last_token = 1}, WANDLER_ERR_MODEL_BAD_VOCAB, "511"},
    {"missing vocabulary", {.drop_key = "tokenizer.ggml.tokens"}, WANDLER_ERR_MODEL_MISSING_KEY, "tokenizer.ggml.tokens"},
    {"unknown tokenizer", {.set_key = "tokenizer.ggml.model", .set_type = GGUF_TYPE_STRING, .set_str = "wordpiece"},
     WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER, "wordpiece"},
};

static void test_catalogue(void **state)
{
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const model_case *c = &CASES[i];
        void *owned[4];
        int n_owned = 0;
        const char *path = write_edited(&c->e, owned, &n_owned);
        wandler_model *m = NULL;
        wandler_error err = {0};
        int rc = wandler_load_model(path, NULL, &m, &err);
        if (rc != c->code || (c->code && (!err.message[0] || !strstr(err.message, c->mention))))
            fail_msg("case '%s': got %s '%s', expected %s mentioning '%s'", c->name, wandler_status_name(rc),
                     err.message, wandler_status_name(c->code), c->mention);
        printf("  %-40s %-40s %s\n", c->name, wandler_status_name(rc), err.message);
        wandler_model_dispose(m);
        unlink(path);
        char dir[512];
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = '\0';
        rmdir(dir);
        for (int k = 0; k < n_owned; k++)
            free(owned[k]);
    }
}

/* ---- malformed quantized data ------------------------------------------------------------ */

/* The block formats, and where the half-float fields of a block sit: its scale d and, for the
 * formats with one, its min m / dmin (quant.h); -1 when absent. */
typedef struct {
    uint32_t type;
    int d_at, m_at;
} quant_format;

static const quant_format FORMATS[] = {
    {WL_TYPE_Q8_0, 0, -1},  {WL_TYPE_Q4_0, 0, -1},   {WL_TYPE_Q4_1, 0, 2},
    {WL_TYPE_Q5_0, 0, -1},  {WL_TYPE_Q5_1, 0, 2},    {WL_TYPE_Q2_K, 80, 82},
    {WL_TYPE_Q3_K, 108, -1}, {WL_TYPE_Q4_K, 0, 2},   {WL_TYPE_Q5_K, 0, 2},
    {WL_TYPE_Q6_K, 208, -1},
};
#define N_FORMATS (sizeof FORMATS / sizeof FORMATS[0])

#define QTENSOR "blk.0.attn_q.weight" /* the quantized matrix the cases spoil: 256 x 256 */
#define N_EMBD 256                    /* rows of 256 values: every format's blocks fit */

/* The tiny llama with rows of 256 values in file type `type` (a mix for the k-quants), its
 * attention queries and token embedding in `type` itself. */
static void make_quant_model(uint32_t type, const char *path)
{
    const wl_mkmodel_shape *shape = wl_mkmodel_find_shape(WL_ARCH_LLAMA, "tiny");
    assert_non_null(shape);
    wl_mkmodel_params p = {0};
    p.dims = shape->dims;
    p.dims.n_embd = N_EMBD;
    p.dims.n_ff = 2 * N_EMBD;
    p.ftype = wl_type_name(type);
    char o1[64], o2[64];
    snprintf(o1, sizeof o1, "attn_q\\.weight=%s", wl_type_name(type));
    snprintf(o2, sizeof o2, "token_embd\\.weight=%s", wl_type_name(type));
    const char *const overrides[] = {o1, o2};
    p.tensor_types = overrides;
    p.n_tensor_types = 2;
    p.seed = 7;
    p.n_threads = 1;
    wandler_error err = {0};
    if (wl_mkmodel(&p, path, &err) != WANDLER_OK)
        fail_msg("mkmodel %s: %s", wl_type_name(type), err.message);
}

static void write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The file offset of tensor `name`'s data, its type and its byte size. */
static size_t tensor_data_at(const char *path, const char *name, uint32_t *type, size_t *nbytes)
{
    gguf_file *f;
    wandler_error err;
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_OK);
    const gguf_tensor *t = gguf_find_tensor(f, name);
    assert_non_null(t);
    size_t at = (size_t)((const unsigned char *)t->data - (const unsigned char *)gguf_base(f));
    if (type)
        *type = t->type;
    if (nbytes)
        *nbytes = (size_t)t->nbytes;
    gguf_close(f);
    return at;
}

/* The file offset of the fields that follow tensor `name`'s name in its entry: n_dims (u32),
 * ne[n_dims] (u64 each), type (u32), data offset (u64). Found by the name's length and bytes. */
static size_t tensor_entry_at(const unsigned char *b, size_t size, const char *name)
{
    unsigned char key[8 + 64];
    uint64_t len = strlen(name);
    memcpy(key, &len, 8); /* little-endian, like the file (the test runs on x86-64 and arm64) */
    memcpy(key + 8, name, len);
    for (size_t i = 0; i + 8 + len <= size; i++)
        if (memcmp(b + i, key, 8 + len) == 0)
            return i + 8 + (size_t)len;
    fail_msg("no entry for tensor %s", name);
    return 0;
}

/* Loads path inline; when it loads, generates 6 tokens greedily into text. Returns the load's
 * status; *gen_rc is the generation's (or -1). The engine does not scan block scales at load
 * (that would read every page of the file, which the mmap keeps unread), so NaN / Inf scales
 * load, and their NaN / Inf results must still be safe. */
static int load_and_generate(const char *path, wandler_error *err, int *gen_rc, char *text,
                             size_t cap)
{
    wandler_model_options o = wandler_model_options_default();
    o.use_worker = 0;
    wandler_model *m = NULL;
    *gen_rc = -1;
    text[0] = '\0';
    memset(err, 0, sizeof *err);
    int rc = wandler_load_model(path, &o, &m, err);
    if (rc != WANDLER_OK)
        return rc;
    wandler_request req = wandler_request_default();
    req.prompt = "Once upon a time";
    req.max_tokens = 6;
    req.temperature = 0.0f;
    req.ignore_eos = 1;
    wandler_result res = {0};
    wandler_error gerr = {0};
    *gen_rc = wandler_generate_text(m, &req, &res, &gerr);
    if (*gen_rc == WANDLER_OK) {
        assert_int_equal(res.usage.completion_tokens, 6);
        snprintf(text, cap, "%s", res.text);
    } else {
        assert_true(gerr.message[0] != '\0'); /* an error names its cause */
        snprintf(text, cap, "error %s: %s", wandler_status_name(*gen_rc), gerr.message);
    }
    wandler_result_free(&res);
    wandler_model_dispose(m);
    return rc;
}

/* NaN and Inf in the half-float scale d or the min of a block: in the weight matrix, in the
 * embedding row of the first prompt token (BOS), and in the embedding row of a token the
 * request never meets. No crash; the last case gives exactly the clean model's text (a bad
 * block only touches results that read it). */
static void test_bad_block_scales(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint16_t half;
        int min; /* spoil the min field (formats with one) instead of d */
    } spoils[] = {{"d = NaN", 0x7e00, 0}, {"d = +Inf", 0x7c00, 0}, {"d = -Inf", 0xfc00, 0},
                  {"min = +Inf", 0x7c00, 1}, {"min = NaN", 0xfe00, 1}};
    const char *dir = wl_test_tmpdir();
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/clean.gguf", dir);
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    int bos_errors = 0;
    for (size_t fi = 0; fi < N_FORMATS; fi++) {
        const quant_format *q = &FORMATS[fi];
        make_quant_model(q->type, path);
        size_t size;
        unsigned char *clean = (unsigned char *)wl_test_read_file(path, &size);
        assert_non_null(clean);
        uint32_t qt, et;
        const size_t q_at = tensor_data_at(path, QTENSOR, &qt, NULL);
        const size_t e_at = tensor_data_at(path, "token_embd.weight", &et, NULL);
        assert_int_equal(qt, q->type);
        assert_int_equal(et, q->type);
        const size_t bb = wl_type_get(q->type)->type_size, row = wl_row_bytes(q->type, N_EMBD);
        wandler_error err;
        int gen_rc;
        char want[1024], got[1024];
        assert_int_equal(load_and_generate(path, &err, &gen_rc, want, sizeof want), WANDLER_OK);
        assert_int_equal(gen_rc, WANDLER_OK);
        unsigned char *b = malloc(size);
        for (size_t si = 0; si < sizeof spoils / sizeof spoils[0]; si++) {
            if (spoils[si].min && q->m_at < 0)
                continue;
            const size_t field = (size_t)(spoils[si].min ? q->m_at : q->d_at);
            /* where: 0 the matrix (block 1 of row 3), 1 the BOS row, 2 the last token's row */
            const size_t where[3] = {q_at + 3 * row + bb + field, e_at + 1 * row + field,
                                     e_at + (512 - 1) * row + field};
            for (int w = 0; w < 3; w++) {
                memcpy(b, clean, size);
                memcpy(b + where[w], &spoils[si].half, 2);
                write_bytes(bad, b, size);
                int rc = load_and_generate(bad, &err, &gen_rc, got, sizeof got);
                if (rc != WANDLER_OK && !err.message[0])
                    fail_msg("%s %s: load error without a message", wl_type_name(q->type),
                             spoils[si].name);
                if (w == 2 && (rc != WANDLER_OK || gen_rc != WANDLER_OK || strcmp(got, want) != 0))
                    fail_msg("%s %s in an unused row changed the result: '%s', clean '%s'",
                             wl_type_name(q->type), spoils[si].name, got, want);
                /* where the spoiled block is read, the result is finite text or the clear
                 * error the session gives for non-finite logits, never NaN-driven sampling */
                if (rc == WANDLER_OK && gen_rc != WANDLER_OK && gen_rc != WANDLER_ERR_MODEL_BAD_TENSOR_DATA)
                    fail_msg("%s %s: generation failed with %s: %s", wl_type_name(q->type), spoils[si].name,
                             wandler_status_name(gen_rc), got);
                if (gen_rc == WANDLER_ERR_MODEL_BAD_TENSOR_DATA && !strstr(got, "non-finite"))
                    fail_msg("%s %s: unclear message: %s", wl_type_name(q->type), spoils[si].name, got);
                if (w == 1)
                    bos_errors += gen_rc == WANDLER_ERR_MODEL_BAD_TENSOR_DATA;
                if (fi == 0 || w != 1)
                    continue;
                printf("  %-4s %-10s in the BOS row: load %s, generate %s %.60s\n",
                       wl_type_name(q->type), spoils[si].name, wandler_status_name(rc),
                       rc ? "-" : wandler_status_name(gen_rc), got);
            }
        }
        free(b);
        free(clean);
    }
    /* a NaN / Inf scale in the row of the first prompt token reaches the logits every time */
    assert_true(bos_errors > 0);
    unlink(path);
    unlink(bad);
    rmdir(dir);
}

/* A copy of the file at `path` with `apply` applied, loaded: the load must fail with `code` and
 * a message mentioning `mention`, or (code WANDLER_OK) load and generate without a crash. */
typedef void (*byte_edit)(unsigned char *b, size_t *size, const char *path, uint32_t type);

static void check_edit(const char *label, const char *path, uint32_t type, byte_edit apply,
                       int code, const char *mention)
{
    size_t size;
    unsigned char *b = (unsigned char *)wl_test_read_file(path, &size);
    assert_non_null(b);
    apply(b, &size, path, type);
    char bad[600];
    snprintf(bad, sizeof bad, "%s.bad", path);
    write_bytes(bad, b, size);
    wandler_error err;
    int gen_rc;
    char text[1024];
    int rc = load_and_generate(bad, &err, &gen_rc, text, sizeof text);
    printf("  %-4s %-36s %s %s\n", wl_type_name(type), label, wandler_status_name(rc),
           rc ? err.message : gen_rc ? text : "(loads; generates 6 tokens)");
    if (rc != code || (code && !strstr(err.message, mention)))
        fail_msg("%s %s: got %s '%s', expected %s mentioning '%s'", wl_type_name(type), label,
                 wandler_status_name(rc), err.message, wandler_status_name(code), mention);
    unlink(bad);
    free(b);
}

/* The file ends in the middle of the quantized matrix's data. */
static void cut_in_matrix(unsigned char *b, size_t *size, const char *path, uint32_t type)
{
    size_t nbytes, at = tensor_data_at(path, QTENSOR, NULL, &nbytes);
    (void)b;
    (void)type;
    *size = at + nbytes / 2 + 5; /* in the middle of a block */
}

/* The matrix's entry says another format. */
static uint32_t g_new_type;

static void retype_matrix(unsigned char *b, size_t *size, const char *path, uint32_t type)
{
    (void)path;
    (void)type;
    size_t e = tensor_entry_at(b, *size, QTENSOR);
    uint32_t n_dims;
    memcpy(&n_dims, b + e, 4);
    memcpy(b + e + 4 + 8 * (size_t)n_dims, &g_new_type, 4);
}

/* The matrix's rows (ne[0]) are not whole blocks of its format. */
static uint64_t g_new_ne0, g_new_ne1;

static void reshape_matrix(unsigned char *b, size_t *size, const char *path, uint32_t type)
{
    (void)path;
    (void)type;
    size_t e = tensor_entry_at(b, *size, QTENSOR);
    memcpy(b + e + 4, &g_new_ne0, 8);
    memcpy(b + e + 12, &g_new_ne1, 8);
}

static void test_bad_quant_tensors(void **state)
{
    (void)state;
    const char *dir = wl_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    for (size_t fi = 0; fi < N_FORMATS; fi++) {
        const uint32_t type = FORMATS[fi].type;
        const int kquant = wl_type_get(type)->block_size == 256;
        make_quant_model(type, path);
        check_edit("file cut in the matrix's data", path, type, cut_in_matrix,
                   WANDLER_ERR_GGUF_TENSOR_OUT_OF_BOUNDS, QTENSOR);
        /* a type id GGUF does not define */
        g_new_type = 99;
        check_edit("type id 99", path, type, retype_matrix, WANDLER_ERR_GGUF_BAD_TENSOR_TYPE,
                   "99");
        /* a wider format: the data no longer fits its slot before the next tensor */
        g_new_type = WL_TYPE_F32;
        check_edit("type says F32 (4 bytes a value)", path, type, retype_matrix,
                   WANDLER_ERR_GGUF_TENSOR_OVERLAP, QTENSOR);
        /* a narrower format of the same block length: loads, computes garbage, safely */
        g_new_type = kquant ? (type == WL_TYPE_Q2_K ? WL_TYPE_Q3_K : WL_TYPE_Q2_K)
                            : (type == WL_TYPE_Q4_0 ? WL_TYPE_Q8_0 : WL_TYPE_Q4_0);
        if (wl_type_get(g_new_type)->type_size < wl_type_get(type)->type_size)
            check_edit("type says a narrower format", path, type, retype_matrix, WANDLER_OK, "");
        /* a format GGUF defines and wandler does not run (IQ2_XXS, 256-value blocks) */
        if (kquant) {
            g_new_type = 16;
            check_edit("type says IQ2_XXS", path, type, retype_matrix,
                       WANDLER_ERR_MODEL_UNSUPPORTED_TYPE, QTENSOR);
        }
        /* rows that are not whole blocks: 48 values (1.5 blocks of 32), 128 (half of 256) */
        g_new_ne0 = kquant ? 128 : 48;
        g_new_ne1 = N_EMBD;
        check_edit(kquant ? "rows of 128 values" : "rows of 48 values", path, type, reshape_matrix,
                   WANDLER_ERR_GGUF_BAD_DIMS, "block size");
        /* whole blocks, same bytes, the wrong shape for the model */
        g_new_ne0 = 2 * N_EMBD;
        g_new_ne1 = N_EMBD / 2;
        check_edit("rows twice as long, half as many", path, type, reshape_matrix,
                   WANDLER_ERR_MODEL_TENSOR_SHAPE, QTENSOR);
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_bad_block_scales),
        cmocka_unit_test(test_bad_quant_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
