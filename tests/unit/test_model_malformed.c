/* test_model_malformed.c - well-formed GGUF files that are not usable models: each is the real
 * bundled model rewritten with one thing wrong, loaded through the public API, and must fail
 * with its specific WANDLER_ERR_MODEL_* code and a message naming the cause. (Container-level
 * malformations are in test_gguf.c.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/tensor_type.h"
#include "testutil.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
