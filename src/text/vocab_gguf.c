/* vocab_gguf.c - reading a vocabulary from GGUF metadata (tokenizer.ggml.*). */
#include "text/vocab.h"

#include <stdlib.h>
#include <string.h>

#include "text/pretokenize.h"
#include "text/vocab_build.h"
#include "util/error.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_PRE "tokenizer.ggml.pre"

/* GGUF writes an unset special id as UINT32_MAX. */
#define GGUF_ID_UNSET 4294967295LL

static int is_int_type(uint32_t t)
{
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 ||
           t == GGUF_TYPE_INT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

static int is_number_type(uint32_t t)
{
    return is_int_type(t) || t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64;
}

static int kind_of_model(const gguf_str *m)
{
    if (m->len == 5 && memcmp(m->ptr, "llama", 5) == 0)
        return WL_VOCAB_SPM;
    if (m->len == 4 && memcmp(m->ptr, "gpt2", 4) == 0)
        return WL_VOCAB_BPE;
    return 0;
}

/* An optional special id: keeps *id when the key is absent; -1 when it says "unset". */
static int read_id(const gguf_file *f, const char *key, int64_t n_tokens, int64_t *id,
                   wandler_error *err)
{
    int64_t v;
    int rc = gguf_get_int(f, key, &v, err);
    if (rc == WANDLER_ERR_MODEL_MISSING_KEY) {
        wl_error_clear(err);
        if (*id >= n_tokens) /* a family default the vocabulary is too small for */
            *id = -1;
        return WANDLER_OK;
    }
    if (rc != WANDLER_OK)
        return rc;
    if (v == GGUF_ID_UNSET || v == -1) {
        *id = -1;
        return WANDLER_OK;
    }
    if (v < 0 || v >= n_tokens)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "%s = %lld is out of range (%lld tokens)",
                        key, (long long)v, (long long)n_tokens);
    *id = v;
    return WANDLER_OK;
}

static int read_flag(const gguf_file *f, const char *key, int *flag, wandler_error *err)
{
    int v;
    int rc = gguf_get_bool(f, key, &v, err);
    if (rc == WANDLER_ERR_MODEL_MISSING_KEY) {
        wl_error_clear(err);
        return WANDLER_OK;
    }
    if (rc == WANDLER_OK)
        *flag = v != 0;
    return rc;
}

/* An optional per-token array: absent is fine; present, it must hold one element per token. */
static int find_token_array(const gguf_file *f, const char *key, int64_t n_tokens, int ints_only,
                            int64_t *kv, wandler_error *err)
{
    uint32_t type;
    uint64_t count;
    *kv = -1;
    int rc = gguf_get_arr(f, key, &type, &count, err);
    if (rc == WANDLER_ERR_MODEL_MISSING_KEY) {
        wl_error_clear(err);
        return WANDLER_OK;
    }
    if (rc != WANDLER_OK)
        return rc;
    if (ints_only ? !is_int_type(type) : !is_number_type(type))
        return wl_error(err, WANDLER_ERR_MODEL_KEY_TYPE, "%s: array of %s, expected %s", key,
                        gguf_type_name(type), ints_only ? "integers" : "numbers");
    if (count != (uint64_t)n_tokens)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "%s has %llu elements, %s has %lld",
                        key, (unsigned long long)count, KEY_TOKENS, (long long)n_tokens);
    *kv = gguf_find_key(f, key);
    return WANDLER_OK;
}

/* BPE: tokenizer.ggml.pre (optional) picks the pre-tokenizer and some defaults. */
static int read_pre(const gguf_file *f, wl_vocab_spec *spec, wandler_error *err)
{
    gguf_str pre = {0};
    int rc = gguf_get_str(f, KEY_PRE, &pre, err);
    if (rc == WANDLER_ERR_MODEL_MISSING_KEY) {
        wl_error_clear(err);
        pre.len = 0;
    } else if (rc != WANDLER_OK) {
        return rc;
    }
    const wl_pretok_info *info = wl_pretok_find(pre.ptr, (size_t)pre.len);
    if (!info) {
        int shown = pre.len > 64 ? 64 : (int)pre.len;
        return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER,
                        "%s = \"%.*s\" is not a pre-tokenizer wandler knows", KEY_PRE, shown,
                        pre.ptr);
    }
    spec->pre = pre.len ? pre.ptr : NULL;
    spec->pre_len = (size_t)pre.len;
    spec->add_bos = info->add_bos;
    if (info->no_bos)
        spec->bos = -1;
    return WANDLER_OK;
}

/* BPE: tokenizer.ggml.merges (required), as views into the file. */
static int read_merges(const gguf_file *f, wl_strview **out, int64_t *n, wandler_error *err)
{
    uint32_t elem;
    uint64_t count;
    *out = NULL;
    *n = 0;
    int rc = gguf_get_arr(f, KEY_MERGES, &elem, &count, err);
    if (rc != WANDLER_OK)
        return rc;
    if (elem != GGUF_TYPE_STRING)
        return wl_error(err, WANDLER_ERR_MODEL_KEY_TYPE, "%s: array of %s, expected strings",
                        KEY_MERGES, gguf_type_name(elem));
    if (count > INT32_MAX)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "%s has %llu merges", KEY_MERGES,
                        (unsigned long long)count);
    int64_t kv = gguf_find_key(f, KEY_MERGES);
    wl_strview *m = malloc((count ? (size_t)count : 1) * sizeof *m);
    if (!m)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    for (uint64_t i = 0; i < count; i++) {
        gguf_str s = gguf_arr_str(f, kv, i);
        m[i] = (wl_strview){s.ptr, (size_t)s.len};
    }
    *out = m;
    *n = (int64_t)count;
    return WANDLER_OK;
}

int wl_vocab_load(const gguf_file *f, wl_vocab **out, wandler_error *err)
{
    if (!f || !out)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_vocab_load: NULL argument");
    *out = NULL;

    gguf_str model;
    int rc = gguf_get_str(f, KEY_MODEL, &model, err);
    if (rc != WANDLER_OK)
        return rc;
    int kind = kind_of_model(&model);
    if (!kind) {
        int shown = model.len > 64 ? 64 : (int)model.len;
        return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER,
                        "%s = \"%.*s\" is not a tokenizer wandler runs (supported: llama, gpt2)",
                        KEY_MODEL, shown, model.ptr);
    }

    uint32_t elem;
    uint64_t count;
    rc = gguf_get_arr(f, KEY_TOKENS, &elem, &count, err);
    if (rc != WANDLER_OK)
        return rc;
    if (elem != GGUF_TYPE_STRING)
        return wl_error(err, WANDLER_ERR_MODEL_KEY_TYPE, "%s: array of %s, expected strings",
                        KEY_TOKENS, gguf_type_name(elem));
    if (count == 0 || count > INT32_MAX - 1)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "%s has %llu tokens", KEY_TOKENS,
                        (unsigned long long)count);
    int64_t n = (int64_t)count;

    wl_vocab_spec spec = wl_vocab_spec_default(kind);
    spec.n_tokens = n;
    if (kind == WL_VOCAB_BPE && (rc = read_pre(f, &spec, err)) != WANDLER_OK)
        return rc;
    int64_t kv_scores, kv_types;
    if ((rc = find_token_array(f, KEY_SCORES, n, 0, &kv_scores, err)) ||
        (rc = find_token_array(f, KEY_TYPES, n, 1, &kv_types, err)) ||
        (rc = read_id(f, "tokenizer.ggml.bos_token_id", n, &spec.bos, err)) ||
        (rc = read_id(f, "tokenizer.ggml.eos_token_id", n, &spec.eos, err)) ||
        (rc = read_id(f, "tokenizer.ggml.unknown_token_id", n, &spec.unk, err)) ||
        (rc = read_id(f, "tokenizer.ggml.padding_token_id", n, &spec.pad, err)) ||
        (rc = read_id(f, "tokenizer.ggml.eot_token_id", n, &spec.eot, err)) ||
        (rc = read_id(f, "tokenizer.ggml.eom_token_id", n, &spec.eom, err)) ||
        (rc = read_flag(f, "tokenizer.ggml.add_bos_token", &spec.add_bos, err)) ||
        (rc = read_flag(f, "tokenizer.ggml.add_eos_token", &spec.add_eos, err)) ||
        (rc = read_flag(f, "tokenizer.ggml.add_space_prefix", &spec.add_space_prefix, err)))
        return rc;

    wl_strview *merges = NULL;
    int64_t n_merges = 0;
    if (kind == WL_VOCAB_BPE && (rc = read_merges(f, &merges, &n_merges, err)) != WANDLER_OK)
        return rc;

    char *name = NULL;
    gguf_str gname;
    if (gguf_get_str(f, "general.name", &gname, NULL) == WANDLER_OK && gname.len < 256) {
        name = malloc(gname.len + 1);
        if (name) {
            memcpy(name, gname.ptr, gname.len);
            name[gname.len] = '\0';
        }
    }

    int64_t kv_tokens = gguf_find_key(f, KEY_TOKENS);
    wl_strview *texts = malloc((size_t)n * sizeof *texts);
    float *scores = kv_scores >= 0 ? malloc((size_t)n * sizeof *scores) : NULL;
    int32_t *types = kv_types >= 0 ? malloc((size_t)n * sizeof *types) : NULL;
    if (!texts || (kv_scores >= 0 && !scores) || (kv_types >= 0 && !types)) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(f, kv_tokens, (uint64_t)i);
        texts[i] = (wl_strview){s.ptr, (size_t)s.len};
        if (scores)
            scores[i] = (float)gguf_arr_float(f, kv_scores, (uint64_t)i);
        if (types) {
            int64_t t = gguf_arr_int(f, kv_types, (uint64_t)i);
            /* Out-of-range values become an invalid type that the builder reports. */
            types[i] = t >= INT32_MIN && t <= INT32_MAX ? (int32_t)t : -1;
        }
    }
    spec.texts = texts;
    spec.scores = scores;
    spec.types = types;
    spec.name = name;
    spec.merges = merges;
    spec.n_merges = n_merges;
    rc = wl_vocab_build(&spec, out, err);

done:
    free(merges);
    free(texts);
    free(scores);
    free(types);
    free(name);
    return rc;
}
