/* spm.c - SentencePiece-style tokenization by bigram merges (see spm.h). */
#include "text/spm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bigram_queue.h"
#include "util/error.h"

/* Indices and sizes are 32-bit to keep the queue's entries small: the merge loop is bound by
 * the heap's cache misses on long texts. Longer fragments are refused. */
#define NONE UINT32_MAX

/* A piece of the text: bytes [off, off + n) of the escaped text, in a doubly linked list of the
 * pieces still alive. n == 0 once merged into its left neighbour. */
typedef struct symbol {
    uint32_t prev, next;
    uint32_t off, n;
} symbol;

typedef struct session {
    const wl_vocab *v;
    const char *text; /* the escaped text */
    symbol *sym;
    wl_bigram_queue queue;
} session;

/* Queues the merge of two neighbouring symbols when their joined text is a token. The texts of
 * neighbours are adjacent in the escaped text, so the joined text needs no copy. */
static int try_add_bigram(session *s, uint32_t left, uint32_t right)
{
    if (left == NONE || right == NONE)
        return 0;
    uint32_t size = s->sym[left].n + s->sym[right].n;
    int32_t id = wl_vocab_find(s->v, s->text + s->sym[left].off, size);
    if (id < 0)
        return 0;
    wl_bigram b = {s->v->tokens[id].score, -1, left, right, size};
    return wl_bigram_queue_push(&s->queue, b);
}

/* Length of the UTF-8 character a byte starts, from its top four bits, as llama.cpp counts it
 * (a stray continuation byte counts as one). */
static size_t utf8_len(unsigned char c)
{
    static const unsigned char lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lengths[c >> 4];
}

/* Copies the text with a leading "▁" when asked and each space turned into "▁". */
static char *escape(const char *text, size_t len, int dummy_prefix, size_t *out_len)
{
    static const char LOWER_ONE_EIGHTH_BLOCK[3] = {'\xE2', '\x96', '\x81'}; /* U+2581 "▁" */
    size_t spaces = dummy_prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    if (spaces > (SIZE_MAX - len - 1) / 2)
        return NULL;
    size_t n = len + 2 * spaces + (dummy_prefix ? 1 : 0);
    char *e = malloc(n ? n : 1);
    if (!e)
        return NULL;
    size_t o = 0;
    if (dummy_prefix) {
        memcpy(e, LOWER_ONE_EIGHTH_BLOCK, 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e + o, LOWER_ONE_EIGHTH_BLOCK, 3);
            o += 3;
        } else {
            e[o++] = text[i];
        }
    }
    *out_len = o;
    return e;
}

/* Emits a final piece: its token, or one byte-fallback token per byte. */
static int emit(const session *s, const symbol *sym, wl_ids *out)
{
    int32_t id = wl_vocab_find(s->v, s->text + sym->off, sym->n);
    if (id >= 0)
        return wl_ids_push(out, id);
    for (uint32_t i = 0; i < sym->n; i++) {
        unsigned char b = (unsigned char)s->text[sym->off + i];
        if (wl_ids_push(out, s->v->u.spm.byte_token[b]) != 0)
            return -1;
    }
    return 0;
}

int wl_spm_tokenize(const wl_vocab *v, const char *text, size_t len, int dummy_prefix,
                    wl_ids *out)
{
    size_t n = 0;
    char *escaped = escape(text, len, dummy_prefix, &n);
    if (!escaped)
        return -1;
    session s = {.v = v, .text = escaped};
    int rc = 0;
    if (n == 0)
        goto done;
    if (n >= UINT32_MAX) {
        rc = -1;
        goto done;
    }
    s.sym = malloc(n * sizeof *s.sym);
    if (!s.sym) {
        rc = -1;
        goto done;
    }

    /* One symbol per UTF-8 character. */
    uint32_t n_sym = 0;
    for (uint32_t off = 0; off < n;) {
        uint32_t clen = (uint32_t)utf8_len((unsigned char)escaped[off]);
        if (clen > n - off)
            clen = (uint32_t)(n - off);
        s.sym[n_sym] = (symbol){n_sym ? n_sym - 1 : NONE, NONE, off, clen};
        if (n_sym)
            s.sym[n_sym - 1].next = n_sym;
        n_sym++;
        off += clen;
    }
    for (uint32_t i = 1; i < n_sym && rc == 0; i++)
        rc = try_add_bigram(&s, i - 1, i);

    /* Merge the best pair until no pair of neighbours forms a token. */
    while (rc == 0 && s.queue.n > 0) {
        wl_bigram b = wl_bigram_queue_pop(&s.queue);
        symbol *l = &s.sym[b.left], *r = &s.sym[b.right];
        /* Stale entry: one side was merged away, or the left side grew since it was queued. */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next != NONE)
            s.sym[r->next].prev = b.left;
        rc = try_add_bigram(&s, l->prev, b.left);
        if (rc == 0)
            rc = try_add_bigram(&s, b.left, l->next);
    }

    for (uint32_t i = 0; rc == 0 && i != NONE; i = s.sym[i].next)
        rc = emit(&s, &s.sym[i], out);

done:
    free(s.sym);
    wl_bigram_queue_free(&s.queue);
    free(escaped);
    return rc;
}

/* ---- preparing a vocabulary for SPM ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int wl_spm_byte_of_text(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

int wl_spm_prepare(wl_vocab *v, wandler_error *err)
{
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->tokens[i].type == WL_TOKEN_BYTE &&
            wl_spm_byte_of_text(wl_vocab_text_of(v, i), v->tokens[i].len) < 0)
            return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                            "vocabulary: byte token %d has a text that is not <0xNN>", i);
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        char one = (char)b;
        int32_t id = wl_vocab_find(v, hex, 6);
        if (id < 0)
            id = wl_vocab_find(v, &one, 1);
        if (id < 0)
            id = v->unk;
        if (id < 0)
            return wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                            "vocabulary: no token for byte 0x%02X (no <0x%02X>) and no unknown "
                            "token to fall back to", b, b);
        v->u.spm.byte_token[b] = id;
    }
    return WANDLER_OK;
}
