/* ustr.h - Python's view of text: code points, whitespace, case, printability.
 *
 * Template strings are UTF-8 (always valid: everything that makes one checks or builds valid
 * UTF-8), but Python counts, indexes and slices them by code point, and its str methods use the
 * Unicode character database. These helpers give the same answers as Python 3.11 (tables in
 * unicode_tables.c, generated from Python's own unicodedata).
 */
#ifndef WL_TEXT_JINJA_USTR_H
#define WL_TEXT_JINJA_USTR_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct wl_ju_case_run {
    uint32_t start;  /* first code point */
    uint32_t count;  /* code points in the run */
    uint32_t stride; /* 1 or 2 */
    int32_t delta;   /* mapped = cp + delta */
} wl_ju_case_run;

typedef struct wl_ju_case_multi {
    uint32_t cp;
    uint32_t to[3]; /* 0-terminated when shorter */
} wl_ju_case_multi;

/* Decodes the code point at s[*i] of valid UTF-8 and advances *i. */
uint32_t wl_ju_next(const char *s, size_t len, size_t *i);
/* Decodes the code point ending just before s[*i] and moves *i back to its start. */
uint32_t wl_ju_prev(const char *s, size_t *i);
/* Byte offset of code point number `cp_index` (<= the number of code points). */
size_t wl_ju_offset(const char *s, size_t len, size_t ncp, size_t cp_index);
/* Appends the UTF-8 of cp. Returns 0 or -1. */
int wl_ju_put(wl_buf *b, uint32_t cp);

int wl_ju_isspace(uint32_t cp);     /* str.isspace(), also re's \s */
int wl_ju_isprintable(uint32_t cp); /* str.isprintable() */
int wl_ju_iscased(uint32_t cp);
int wl_ju_iscase_ignorable(uint32_t cp);
int wl_ju_islower(uint32_t cp);
int wl_ju_isupper(uint32_t cp);
int wl_ju_isalpha(uint32_t cp);
int wl_ju_isdecimal(uint32_t cp);
int wl_ju_isdigit(uint32_t cp);
int wl_ju_isnumeric(uint32_t cp);

/* Full case mappings (one code point may map to up to three). Return the count written. */
int wl_ju_lower(uint32_t cp, uint32_t out[3]);
int wl_ju_upper(uint32_t cp, uint32_t out[3]);
int wl_ju_title(uint32_t cp, uint32_t out[3]);

/* Python's str.lower()/upper()/capitalize()/title()/swapcase() of s[0..len), appended to b.
 * Return 0 or -1 (memory). */
int wl_ju_str_lower(wl_buf *b, const char *s, size_t len);
int wl_ju_str_upper(wl_buf *b, const char *s, size_t len);
int wl_ju_str_capitalize(wl_buf *b, const char *s, size_t len);
int wl_ju_str_title(wl_buf *b, const char *s, size_t len);
int wl_ju_str_swapcase(wl_buf *b, const char *s, size_t len);

/* Bounds of s after Python's strip(), as byte offsets start and end. `chars` == NULL strips
 * whitespace; else strips the code points of chars[0..chars_len). */
void wl_ju_strip(const char *s, size_t len, const char *chars, size_t chars_len, int left, int right,
                 size_t *start, size_t *end);

/* Appends Python's repr() of the string s (quotes and escapes chosen as Python does). */
int wl_ju_repr(wl_buf *b, const char *s, size_t len);

/* Tables (unicode_tables.c). */
extern const uint32_t wl_ju_nonprintable[][2], wl_ju_cased[][2], wl_ju_case_ignorable[][2],
    wl_ju_lowercase[][2], wl_ju_uppercase[][2], wl_ju_alpha[][2], wl_ju_decimal[][2],
    wl_ju_digit[][2], wl_ju_numeric[][2];
extern const size_t wl_ju_nonprintable_n, wl_ju_cased_n, wl_ju_case_ignorable_n, wl_ju_lowercase_n,
    wl_ju_uppercase_n, wl_ju_alpha_n, wl_ju_decimal_n, wl_ju_digit_n, wl_ju_numeric_n;
extern const wl_ju_case_run wl_ju_lower_runs[], wl_ju_upper_runs[], wl_ju_title_runs[];
extern const size_t wl_ju_lower_runs_n, wl_ju_upper_runs_n, wl_ju_title_runs_n;
extern const wl_ju_case_multi wl_ju_lower_multi[], wl_ju_upper_multi[], wl_ju_title_multi[];
extern const size_t wl_ju_lower_multi_n, wl_ju_upper_multi_n, wl_ju_title_multi_n;

#endif
