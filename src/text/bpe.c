/* bpe.c - byte-level BPE: the vocabulary's merge data and the merge loop (see bpe.h). */
#include "text/bpe.h"

#include <stdlib.h>
#include <string.h>

#include "text/bigram_queue.h"
#include "text/byte_unicode.h"
#include "text/pretokenize.h"
#include "text/utf8.h"
#include "util/error.h"

#define NONE UINT32_MAX

/* ---- preparing a vocabulary ---- */

/* Adds merge i ("left right") to the map. llama.cpp splits at the first space after the first
 * byte (so a left half may not be empty, but may start with a space). */
static int add_merge(wl_vocab *v, const wl_strview *m, int64_t i, wl_buf *joined,
                     wandler_error *err)
{
    const char *s = m->ptr;
    size_t n = m->len;
    const char *sp = n > 1 && s ? memchr(s + 1, ' ', n - 1) : NULL;
    int shown = n > 48 ? 48 : (int)n;
    if (!sp)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                        "vocabulary: merge %lld (\"%.*s\") is not two tokens separated by a space",
                        (long long)i, shown, s ? s : "");
    size_t nl = (size_t)(sp - s), nr = n - nl - 1;
    int32_t left = wl_vocab_find(v, s, nl);
    int32_t right = wl_vocab_find(v, sp + 1, nr);
    if (left < 0 || right < 0)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                        "vocabulary: merge %lld (\"%.*s\") joins a text that is not a token",
                        (long long)i, shown, s);
    joined->len = 0;
    if (wl_buf_append(joined, s, nl) != 0 || wl_buf_append(joined, sp + 1, nr) != 0)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    int32_t result = wl_vocab_find(v, joined->data, joined->len);
    wl_merge_map_add(&v->u.bpe.merges, left, right, (int32_t)i, result);
    return WANDLER_OK;
}

int wl_bpe_prepare(wl_vocab *v, const wl_vocab_spec *spec, wandler_error *err)
{
    wl_bpe_data *d = &v->u.bpe;
    const wl_pretok_info *info = wl_pretok_find(spec->pre, spec->pre ? spec->pre_len : 0);
    if (!info) {
        int shown = spec->pre_len > 64 ? 64 : (int)spec->pre_len;
        return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER,
                        "tokenizer.ggml.pre = \"%.*s\" is not a pre-tokenizer wandler knows",
                        shown, spec->pre);
    }
    d->ignore_merges = info->ignore_merges;
    int rc = wl_pretok_create(info, &d->pretok, err);
    if (rc != WANDLER_OK)
        return rc;

    for (int b = 0; b < 256; b++) {
        char c[2];
        size_t n = wl_byte_to_utf8((uint8_t)b, c);
        d->byte_token[b] = wl_vocab_find(v, c, n);
        c[0] = (char)b;
        d->raw_byte_token[b] = wl_vocab_find(v, c, 1);
    }

    if (spec->n_merges < 0 || spec->n_merges > INT32_MAX || (spec->n_merges > 0 && !spec->merges))
        return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "vocabulary: %lld merges",
                        (long long)spec->n_merges);
    if (wl_merge_map_init(&d->merges, (size_t)spec->n_merges) != 0)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "vocabulary: out of memory");
    wl_buf joined = {0};
    for (int64_t i = 0; i < spec->n_merges && rc == WANDLER_OK; i++)
        rc = add_merge(v, &spec->merges[i], i, &joined, err);
    wl_buf_free(&joined);
    return rc;
}

void wl_bpe_release(wl_bpe_data *d)
{
    wl_pretok_free(d->pretok);
    d->pretok = NULL;
    wl_merge_map_free(&d->merges);
}

/* ---- the merge loop ---- */

/* A symbol: bytes [off, off + n) of the pre-token, and its token (-1: none, it cannot merge). In
 * a doubly linked list of the symbols still alive; n == 0 once merged into its left neighbour. */
typedef struct symbol {
    uint32_t prev, next;
    uint32_t off, n;
    int32_t id;
} symbol;

/* A candidate merge of symbols left and right, which were `size` bytes together when queued. */
typedef struct session {
    const wl_vocab *v;
    const wl_bpe_data *d;
    symbol *sym;
    size_t cap_sym;
    wl_bigram_queue queue;
    char *enc; /* a pre-token in GPT-2's alphabet (for ignore_merges) */
    size_t cap_enc;
} session;

/* Queues the merge of two neighbouring symbols when their pair is a merge. */
static int try_add_bigram(session *s, uint32_t left, uint32_t right)
{
    if (left == NONE || right == NONE)
        return 0;
    const symbol *l = &s->sym[left], *r = &s->sym[right];
    if (l->id < 0 || r->id < 0)
        return 0;
    const wl_merge *m = wl_merge_map_find(&s->d->merges, l->id, r->id);
    if (!m)
        return 0;
    wl_bigram b = {-(double)m->rank, m->result, left, right, l->n + r->n}; /* lower rank first */
    return wl_bigram_queue_push(&s->queue, b);
}

/* Emits a symbol with no token: llama.cpp looks up each byte of its text in GPT-2's alphabet as
 * a one-byte token, and drops the bytes that are none. */
static int emit_fallback(const session *s, const unsigned char *p, const symbol *sym, wl_ids *out)
{
    for (uint32_t i = 0; i < sym->n; i++) {
        char c[2];
        size_t n = wl_byte_to_utf8(p[sym->off + i], c);
        for (size_t k = 0; k < n; k++) {
            int32_t id = s->d->raw_byte_token[(unsigned char)c[k]];
            if (id >= 0 && wl_ids_push(out, id) != 0)
                return -1;
        }
    }
    return 0;
}

/* With ignore_merges: the token whose text is the whole pre-token in GPT-2's alphabet, or -1. */
static int whole_token(session *s, const unsigned char *p, uint32_t n, int32_t *id)
{
    if (s->cap_enc < 2 * (size_t)n) {
        char *e = realloc(s->enc, 2 * (size_t)n);
        if (!e)
            return -1;
        s->enc = e;
        s->cap_enc = 2 * (size_t)n;
    }
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++)
        len += wl_byte_to_utf8(p[i], s->enc + len);
    *id = wl_vocab_find(s->v, s->enc, len);
    return 0;
}

/* Tokenizes one pre-token p[0..n) (n >= 1). */
static int tokenize_piece(session *s, const unsigned char *p, uint32_t n, wl_ids *out)
{
    if (s->d->ignore_merges && n > 1) {
        int32_t id;
        if (whole_token(s, p, n, &id) != 0)
            return -1;
        if (id >= 0)
            return wl_ids_push(out, id);
    }
    if (s->cap_sym < n) {
        symbol *q = realloc(s->sym, (size_t)n * sizeof *q);
        if (!q)
            return -1;
        s->sym = q;
        s->cap_sym = n;
    }
    /* One symbol per byte: each byte is one character of GPT-2's alphabet. */
    for (uint32_t i = 0; i < n; i++)
        s->sym[i] = (symbol){i ? i - 1 : NONE, i + 1 < n ? i + 1 : NONE, i, 1,
                             s->d->byte_token[p[i]]};
    s->queue.n = 0;
    int rc = 0;
    for (uint32_t i = 1; i < n && rc == 0; i++)
        rc = try_add_bigram(s, i - 1, i);

    while (rc == 0 && s->queue.n > 0) {
        wl_bigram b = wl_bigram_queue_pop(&s->queue);
        symbol *l = &s->sym[b.left], *r = &s->sym[b.right];
        /* Stale: one side was merged away, or one side grew since the pair was queued (symbols
         * only grow, and only by absorbing their right neighbour). */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        l->id = b.result;
        r->n = 0;
        l->next = r->next;
        if (r->next != NONE)
            s->sym[r->next].prev = b.left;
        rc = try_add_bigram(s, l->prev, b.left);
        if (rc == 0)
            rc = try_add_bigram(s, b.left, l->next);
    }

    for (uint32_t i = 0; rc == 0 && i != NONE; i = s->sym[i].next) {
        const symbol *sym = &s->sym[i];
        rc = sym->id >= 0 ? wl_ids_push(out, sym->id) : emit_fallback(s, p, sym, out);
    }
    return rc;
}

int wl_bpe_tokenize(const wl_vocab *v, const char *text, size_t len, wl_ids *out)
{
    if (len == 0)
        return 0;
    if (len >= UINT32_MAX)
        return -1;
    wl_spans pieces = {0};
    int rc = wl_pretok_split(v->u.bpe.pretok, text, len, &pieces);
    session s = {0};
    s.v = v;
    s.d = &v->u.bpe;
    for (size_t i = 0; rc == 0 && i < pieces.len; i++) {
        const wl_span *sp = &pieces.data[i];
        const unsigned char *p = (const unsigned char *)text + sp->off;
        /* A single byte needs no merging (the common case for spaces and punctuation). */
        if (sp->len == 1 && s.d->byte_token[p[0]] >= 0)
            rc = wl_ids_push(out, s.d->byte_token[p[0]]);
        else
            rc = tokenize_piece(&s, p, sp->len, out);
    }
    free(pieces.data);
    free(s.sym);
    wl_bigram_queue_free(&s.queue);
    free(s.enc);
    return rc;
}

/* ---- decoding ---- */

size_t wl_bpe_decode_text(const char *s, size_t n, char *buf, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = wl_utf8_decode(u + i, n - i, &cp);
        int b = len ? wl_cp_to_byte(cp) : -1;
        if (b >= 0) {
            if (buf && o < cap)
                buf[o] = (char)b;
            o++;
            i += len;
            continue;
        }
        if (len == 0)
            len = 1;
        for (size_t k = 0; k < len; k++, o++)
            if (buf && o < cap)
                buf[o] = s[i + k];
        i += len;
    }
    return o;
}
