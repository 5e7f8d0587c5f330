/* vocab.c - building, checking and querying a vocabulary (any tokenizer family). */
#include "text/vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bpe.h"
#include "text/spm.h"
#include "text/vocab_build.h"
#include "text/vocab_internal.h"
#include "util/error.h"

/* Texts that end generation when the vocabulary has them, as llama.cpp detects them (EOT/EOM
 * markers of the chat formats, and the FIM padding/separator tokens). llama.cpp also makes
 * each of them a control token whatever type the file gives it. */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
    "<|end_of_text|>", "<EOT>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", /* DeepSeek */
    "<|fim_pad|>", "<fim-pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
    "<REPO>", "<|file_sep|>",
};

int wl_ids_push(wl_ids *ids, int32_t id)
{
    if (ids->len == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *ids->data)
            return -1;
        int32_t *p = realloc(ids->data, cap * sizeof *p);
        if (!p)
            return -1;
        ids->data = p;
        ids->cap = cap;
    }
    ids->data[ids->len++] = id;
    return 0;
}

wl_vocab_spec wl_vocab_spec_default(int kind)
{
    wl_vocab_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.bos = s.eos = s.unk = s.pad = s.eot = s.eom = -1;
    if (kind == WL_VOCAB_SPM) {
        s.bos = 1;
        s.eos = 2;
        s.unk = 0;
        s.add_bos = 1;
        s.add_space_prefix = 1;
    } else if (kind == WL_VOCAB_BPE) {
        s.bos = 11; /* llama.cpp's defaults for a BPE file that names no BOS/EOS */
        s.eos = 11;
    }
    return s;
}

void wl_vocab_free(wl_vocab *v)
{
    if (!v)
        return;
    if (v->kind == WL_VOCAB_BPE)
        wl_bpe_release(&v->u.bpe);
    wl_token_map_free(&v->map);
    free(v->tokens);
    free(v->text);
    free(v->eog);
    free(v->special);
    free(v);
}

/* ---- building ---- */

static int bad(wandler_error *err, const char *what, int64_t id)
{
    return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "vocabulary: %s (token %lld)", what,
                    (long long)id);
}

/* Copies the texts into one block and fills off/len. */
static int copy_texts(wl_vocab *v, const wl_vocab_spec *s, wandler_error *err)
{
    size_t total = 0;
    for (int64_t i = 0; i < s->n_tokens; i++) {
        const wl_strview *t = &s->texts[i];
        if (t->len > 0 && !t->ptr)
            return bad(err, "text is NULL", i);
        size_t n = t->len ? t->len : 32; /* room for "[EMPTY_<id>]" */
        if (n > UINT32_MAX || total > (size_t)UINT32_MAX - n - 1)
            return bad(err, "token texts larger than 4 GiB", i);
        total += n + 1;
    }
    v->text = malloc(total ? total : 1);
    if (!v->text)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    size_t off = 0;
    for (int64_t i = 0; i < s->n_tokens; i++) {
        const wl_strview *t = &s->texts[i];
        size_t n = t->len;
        if (n)
            memcpy(v->text + off, t->ptr, n);
        else /* llama.cpp renames empty tokens so that every text is unique and non-empty */
            n = (size_t)snprintf(v->text + off, 32, "[EMPTY_%lld]", (long long)i);
        v->text[off + n] = '\0';
        v->tokens[i].off = (uint32_t)off;
        v->tokens[i].len = (uint32_t)n;
        off += n + 1;
    }
    return WANDLER_OK;
}

static int fill_tokens(wl_vocab *v, const wl_vocab_spec *s, wandler_error *err)
{
    for (int32_t i = 0; i < v->n_tokens; i++) {
        wl_token *t = &v->tokens[i];
        float score = s->scores ? s->scores[i] : 0.0f;
        if (isnan(score))
            return bad(err, "score is NaN", i);
        int32_t type = s->types ? s->types[i] : WL_TOKEN_NORMAL;
        if (type < WL_TOKEN_UNDEFINED || type > WL_TOKEN_BYTE)
            return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                            "vocabulary: token %d has type %d, not one GGUF defines", i, type);
        t->score = score;
        t->type = (uint8_t)type;
        t->attr = 0;
    }
    if (wl_token_map_init(&v->map, (size_t)v->n_tokens) != 0)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    for (int32_t i = 0; i < v->n_tokens; i++) {
        int64_t dup = wl_token_map_insert(&v->map, v->text, v->tokens, i);
        if (dup)
            return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                            "vocabulary: token %d has the same text as token %lld", i,
                            (long long)(dup - 1));
    }
    return WANDLER_OK;
}

static int set_special_id(int32_t *dst, int64_t id, int32_t n_tokens, const char *what,
                          wandler_error *err)
{
    if (id == -1) {
        *dst = -1;
        return WANDLER_OK;
    }
    if (id < 0 || id >= n_tokens)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                        "vocabulary: %s token id %lld out of range (%d tokens)", what,
                        (long long)id, n_tokens);
    *dst = (int32_t)id;
    return WANDLER_OK;
}

static int set_special_ids(wl_vocab *v, const wl_vocab_spec *s, wandler_error *err)
{
    int rc;
    if ((rc = set_special_id(&v->bos, s->bos, v->n_tokens, "bos", err)) ||
        (rc = set_special_id(&v->eos, s->eos, v->n_tokens, "eos", err)) ||
        (rc = set_special_id(&v->unk, s->unk, v->n_tokens, "unknown", err)) ||
        (rc = set_special_id(&v->pad, s->pad, v->n_tokens, "padding", err)) ||
        (rc = set_special_id(&v->eot, s->eot, v->n_tokens, "eot", err)) ||
        (rc = set_special_id(&v->eom, s->eom, v->n_tokens, "eom", err)))
        return rc;
    return WANDLER_OK;
}

static int mark_eog(wl_vocab *v, wandler_error *err)
{
    v->eog = calloc((size_t)v->n_tokens, 1);
    if (!v->eog)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    for (size_t i = 0; i < sizeof EOG_TEXTS / sizeof EOG_TEXTS[0]; i++) {
        int32_t id = wl_vocab_find(v, EOG_TEXTS[i], strlen(EOG_TEXTS[i]));
        if (id >= 0) {
            v->eog[id] = 1;
            v->tokens[id].type = WL_TOKEN_CONTROL;
        }
    }
    const int32_t ids[] = {v->eos, v->eot, v->eom};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0)
            v->eog[ids[i]] = 1;
    return WANDLER_OK;
}

static int is_special_type(int type)
{
    return type == WL_TOKEN_CONTROL || type == WL_TOKEN_USER_DEFINED || type == WL_TOKEN_UNKNOWN;
}

/* qsort has no context argument: sort (length, id) pairs instead of ids. */
typedef struct len_id {
    uint32_t len;
    int32_t id;
} len_id;

static int cmp_longest_first(const void *pa, const void *pb)
{
    const len_id *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int list_specials(wl_vocab *v, wandler_error *err)
{
    size_t n = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        n += is_special_type(v->tokens[i].type);
    if (n == 0)
        return WANDLER_OK;
    len_id *tmp = malloc(n * sizeof *tmp);
    v->special = malloc(n * sizeof *v->special);
    if (!tmp || !v->special) {
        free(tmp);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    }
    size_t k = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (is_special_type(v->tokens[i].type))
            tmp[k++] = (len_id){v->tokens[i].len, i};
    qsort(tmp, n, sizeof *tmp, cmp_longest_first);
    for (size_t i = 0; i < n; i++)
        v->special[i] = tmp[i].id;
    v->n_special = n;
    free(tmp);
    return WANDLER_OK;
}

/* llama.cpp strips the whitespace after Phi-3's special tokens (and </s>), except after
 * <unk>, <s> and <|endoftext|>, recognizing the model by its name. */
static void phi3_rstrip(wl_vocab *v, const char *name)
{
    if (!name)
        return;
    char lower[256];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof lower; n++)
        lower[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] - 'A' + 'a' : name[n]);
    lower[n] = '\0';
    if (!strstr(lower, "phi-3") && !strstr(lower, "phi3"))
        return;
    for (size_t i = 0; i < v->n_special; i++)
        v->tokens[v->special[i]].attr |= WL_TOKEN_ATTR_RSTRIP;
    static const char *const on[] = {"</s>"};
    static const char *const off[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        int32_t id = wl_vocab_find(v, on[i], strlen(on[i]));
        if (id >= 0)
            v->tokens[id].attr |= WL_TOKEN_ATTR_RSTRIP;
    }
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        int32_t id = wl_vocab_find(v, off[i], strlen(off[i]));
        if (id >= 0)
            v->tokens[id].attr &= (uint8_t)~WL_TOKEN_ATTR_RSTRIP;
    }
}

int wl_vocab_build(const wl_vocab_spec *s, wl_vocab **out, wandler_error *err)
{
    *out = NULL;
    if (s->kind != WL_VOCAB_SPM && s->kind != WL_VOCAB_BPE)
        return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER,
                        "vocabulary: tokenizer kind %d not supported", s->kind);
    if (s->n_tokens < 1 || s->n_tokens > INT32_MAX - 1)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "vocabulary: %lld tokens",
                        (long long)s->n_tokens);
    if (!s->texts)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "vocabulary: no token texts");

    wl_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    v->kind = s->kind;
    v->n_tokens = (int32_t)s->n_tokens;
    v->add_bos = s->add_bos != 0;
    v->add_eos = s->add_eos != 0;
    /* BPE never adds a space; llama.cpp would still strip one when decoding if the file asked
     * for a prefix, which only breaks the round trip, so the flag is ignored for BPE. */
    v->add_space_prefix = s->kind == WL_VOCAB_SPM && s->add_space_prefix != 0;
    v->tokens = calloc((size_t)v->n_tokens, sizeof *v->tokens);
    int rc = v->tokens ? WANDLER_OK
                       : wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    if (rc == WANDLER_OK)
        rc = copy_texts(v, s, err);
    if (rc == WANDLER_OK)
        rc = fill_tokens(v, s, err);
    if (rc == WANDLER_OK)
        rc = set_special_ids(v, s, err);
    if (rc == WANDLER_OK)
        rc = mark_eog(v, err);
    if (rc == WANDLER_OK)
        rc = list_specials(v, err);
    if (rc == WANDLER_OK) {
        phi3_rstrip(v, s->name);
        if (v->kind == WL_VOCAB_SPM)
            rc = wl_spm_prepare(v, err);
        else
            rc = wl_bpe_prepare(v, s, err);
    }
    if (rc != WANDLER_OK) {
        wl_vocab_free(v);
        return rc;
    }
    *out = v;
    return WANDLER_OK;
}

/* ---- queries ---- */

int wl_vocab_kind_of(const wl_vocab *v) { return v->kind; }
int32_t wl_vocab_size(const wl_vocab *v) { return v->n_tokens; }
int32_t wl_vocab_bos(const wl_vocab *v) { return v->bos; }
int32_t wl_vocab_eos(const wl_vocab *v) { return v->eos; }
int32_t wl_vocab_unk(const wl_vocab *v) { return v->unk; }
int wl_vocab_add_bos(const wl_vocab *v) { return v->add_bos; }
int wl_vocab_add_eos(const wl_vocab *v) { return v->add_eos; }

int wl_vocab_is_eog(const wl_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n_tokens && v->eog[id];
}

int wl_vocab_token_type(const wl_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n_tokens ? v->tokens[id].type : WL_TOKEN_UNDEFINED;
}

const char *wl_vocab_token_text(const wl_vocab *v, int32_t id, size_t *len)
{
    if (id < 0 || id >= v->n_tokens) {
        if (len)
            *len = 0;
        return "";
    }
    if (len)
        *len = v->tokens[id].len;
    return wl_vocab_text_of(v, id);
}
