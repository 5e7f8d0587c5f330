/* tokenize.c - text -> token ids: checks the UTF-8, splits out special tokens, and hands each
 * piece of text to the tokenizer of the vocabulary's family. */
#include "text/vocab.h"

#include <stdlib.h>

#include "text/bpe.h"
#include "text/special_split.h"
#include "text/spm.h"
#include "text/utf8.h"
#include "text/vocab_internal.h"
#include "util/error.h"

/* SPM: llama.cpp prepends the dummy "▁" to text at the start and to text right after a
 * special token, never to text in the middle. */
static int tokenize_spm(const wl_vocab *v, const char *text, const wl_fragment *frags, size_t n,
                        wl_ids *ids)
{
    int prev_special = 1;
    for (size_t i = 0; i < n; i++) {
        const wl_fragment *f = &frags[i];
        int rc;
        if (f->token >= 0) {
            rc = wl_ids_push(ids, f->token);
            prev_special = 1;
        } else {
            rc = wl_spm_tokenize(v, text + f->off, f->len, v->add_space_prefix && prev_special,
                                 ids);
            prev_special = 0;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* BPE: every piece of text is tokenized on its own, with no prefix. */
static int tokenize_bpe(const wl_vocab *v, const char *text, const wl_fragment *frags, size_t n,
                        wl_ids *ids)
{
    for (size_t i = 0; i < n; i++) {
        const wl_fragment *f = &frags[i];
        int rc = f->token >= 0 ? wl_ids_push(ids, f->token)
                               : wl_bpe_tokenize(v, text + f->off, f->len, ids);
        if (rc != 0)
            return rc == -2 ? -3 : -1;
    }
    return 0;
}

int wl_tokenize(const wl_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                int32_t **out, size_t *n_out, wandler_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (!text && len > 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tokenize: text is NULL");
    size_t bad_at = 0;
    if (len > 0 && !wl_utf8_valid(text, len, &bad_at))
        return wl_error(err, WANDLER_ERR_BAD_UTF8, "text is not valid UTF-8 (byte %zu)", bad_at);

    wl_fragment *frags = NULL;
    size_t n_frags = 0;
    wl_ids ids = {0};
    int rc = wl_special_split(v, text, len, parse_special, &frags, &n_frags);
    if (rc == 0 && add_bos && v->bos >= 0)
        rc = wl_ids_push(&ids, v->bos);
    if (rc == 0) {
        switch (v->kind) {
        case WL_VOCAB_SPM:
            rc = tokenize_spm(v, text, frags, n_frags, &ids);
            break;
        case WL_VOCAB_BPE:
            rc = tokenize_bpe(v, text, frags, n_frags, &ids);
            break;
        default:
            rc = -2;
            break;
        }
    }
    /* An empty result still gets a buffer, so *out is never NULL on success. */
    if (rc == 0 && !ids.data)
        rc = (ids.data = malloc(sizeof *ids.data)) ? 0 : -1;
    free(frags);
    if (rc != 0) {
        free(ids.data);
        if (rc == -2)
            return wl_error(err, WANDLER_ERR_INTERNAL, "tokenize: vocabulary kind %d", v->kind);
        if (rc == -3)
            return wl_error(err, WANDLER_ERR_INTERNAL,
                            "tokenize: the pre-tokenizer's regex engine hit a resource limit");
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "tokenize: out of memory");
    }
    *out = ids.data;
    *n_out = ids.len;
    wl_error_clear(err);
    return WANDLER_OK;
}
