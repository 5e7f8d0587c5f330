/* buf.h - a growable byte buffer, always NUL-terminated after a successful append. */
#ifndef WL_UTIL_BUF_H
#define WL_UTIL_BUF_H

#include <stddef.h>

typedef struct wl_buf {
    char *data; /* NULL until the first append; data[len] == '\0' after it */
    size_t len;
    size_t cap;
} wl_buf;

/* Appends n bytes. Returns 0, or -1 when memory runs out (the buffer is unchanged). */
int wl_buf_append(wl_buf *b, const void *p, size_t n);
/* Appends a NUL-terminated string. */
int wl_buf_puts(wl_buf *b, const char *s);
/* Ensures room for n more bytes plus the NUL. Returns 0 or -1. */
int wl_buf_reserve(wl_buf *b, size_t n);
/* Empties the buffer, keeping its memory. */
void wl_buf_clear(wl_buf *b);
/* Frees the memory and zeroes the buffer. */
void wl_buf_free(wl_buf *b);
/* Hands the memory to the caller (NUL-terminated, "" when empty; NULL when out of memory) and
 * zeroes the buffer. */
char *wl_buf_take(wl_buf *b);

#endif
