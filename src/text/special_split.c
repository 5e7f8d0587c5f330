/* special_split.c - see special_split.h. */
#include "text/special_split.h"

#include <stdlib.h>
#include <string.h>

typedef struct frag_list {
    wl_fragment *data;
    size_t len, cap;
} frag_list;

static int push(frag_list *l, wl_fragment f)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof *l->data)
            return -1;
        wl_fragment *p = realloc(l->data, cap * sizeof *p);
        if (!p)
            return -1;
        l->data = p;
        l->cap = cap;
    }
    l->data[l->len++] = f;
    return 0;
}

/* isspace() in the C locale, without depending on the locale. */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Splits one text fragment by every occurrence of token id, appending to out. */
static int split_fragment(const wl_vocab *v, const char *text, wl_fragment f, int32_t id,
                          frag_list *out)
{
    const wl_token *t = &v->tokens[id];
    const char *needle = wl_vocab_text_of(v, id);
    size_t off = f.off, len = f.len;
    while (len >= t->len) {
        const char *hit = memmem(text + off, len, needle, t->len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - text);
        size_t left_len = at - off;
        if (t->attr & WL_TOKEN_ATTR_LSTRIP)
            while (left_len > 0 && is_space(text[off + left_len - 1]))
                left_len--;
        if (left_len > 0 && push(out, (wl_fragment){-1, off, left_len}) != 0)
            return -1;
        if (push(out, (wl_fragment){id, 0, 0}) != 0)
            return -1;
        size_t end = off + len;
        off = at + t->len;
        if (t->attr & WL_TOKEN_ATTR_RSTRIP)
            while (off < end && is_space(text[off]))
                off++;
        len = end - off;
    }
    if (len > 0 && push(out, (wl_fragment){-1, off, len}) != 0)
        return -1;
    return 0;
}

int wl_special_split(const wl_vocab *v, const char *text, size_t len, int parse_special,
                     wl_fragment **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (len == 0)
        return 0;
    frag_list cur = {0}, next = {0};
    if (push(&cur, (wl_fragment){-1, 0, len}) != 0)
        return -1;
    for (size_t s = 0; s < v->n_special; s++) {
        int32_t id = v->special[s];
        int type = v->tokens[id].type;
        if (!parse_special && (type == WL_TOKEN_CONTROL || type == WL_TOKEN_UNKNOWN))
            continue;
        next.len = 0;
        for (size_t i = 0; i < cur.len; i++) {
            int rc = cur.data[i].token >= 0 ? push(&next, cur.data[i])
                                            : split_fragment(v, text, cur.data[i], id, &next);
            if (rc != 0) {
                free(cur.data);
                free(next.data);
                return -1;
            }
        }
        frag_list tmp = cur;
        cur = next;
        next = tmp;
    }
    free(next.data);
    *out = cur.data;
    *n_out = cur.len;
    return 0;
}
