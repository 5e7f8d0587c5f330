#include "util/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int wl_buf_reserve(wl_buf *b, size_t n)
{
    if (n > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int wl_buf_append(wl_buf *b, const void *p, size_t n)
{
    if (wl_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int wl_buf_puts(wl_buf *b, const char *s)
{
    return wl_buf_append(b, s, strlen(s));
}

void wl_buf_clear(wl_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void wl_buf_free(wl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *wl_buf_take(wl_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
