/* ustr.c - Python's str semantics on UTF-8: code points, case mapping, whitespace, repr. */
#include "text/jinja/ustr.h"

#include <string.h>

uint32_t wl_ju_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i;
    uint32_t c = p[0];
    if (c < 0x80 || left < 2) {
        *i += 1;
        return c;
    }
    if (c < 0xE0) {
        *i += 2;
        return ((c & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (c < 0xF0 || left < 4) {
        *i += 3;
        return ((c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    *i += 4;
    return ((c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
}

uint32_t wl_ju_prev(const char *s, size_t *i)
{
    size_t j = *i;
    do {
        j--;
    } while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80);
    size_t k = j;
    uint32_t c = wl_ju_next(s, *i, &k);
    *i = j;
    return c;
}

size_t wl_ju_offset(const char *s, size_t len, size_t ncp, size_t cp_index)
{
    if (ncp == len) return cp_index; /* ASCII */
    if (cp_index >= ncp) return len;
    size_t i = 0, n = 0;
    while (n < cp_index && i < len) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        n++;
    }
    return i;
}

int wl_ju_put(wl_buf *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return wl_buf_append(b, out, n);
}

/* ---- properties ---------------------------------------------------------------------- */

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int wl_ju_isspace(uint32_t cp)
{
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int wl_ju_isprintable(uint32_t cp)
{
    if (cp < 0x80) return cp >= 0x20 && cp < 0x7F;
    return !in_ranges(wl_ju_nonprintable, wl_ju_nonprintable_n, cp);
}

int wl_ju_iscased(uint32_t cp) { return in_ranges(wl_ju_cased, wl_ju_cased_n, cp); }
int wl_ju_iscase_ignorable(uint32_t cp) { return in_ranges(wl_ju_case_ignorable, wl_ju_case_ignorable_n, cp); }
int wl_ju_islower(uint32_t cp) { return in_ranges(wl_ju_lowercase, wl_ju_lowercase_n, cp); }
int wl_ju_isupper(uint32_t cp) { return in_ranges(wl_ju_uppercase, wl_ju_uppercase_n, cp); }
int wl_ju_isalpha(uint32_t cp) { return in_ranges(wl_ju_alpha, wl_ju_alpha_n, cp); }
int wl_ju_isdecimal(uint32_t cp) { return in_ranges(wl_ju_decimal, wl_ju_decimal_n, cp); }
int wl_ju_isdigit(uint32_t cp) { return in_ranges(wl_ju_digit, wl_ju_digit_n, cp); }
int wl_ju_isnumeric(uint32_t cp) { return in_ranges(wl_ju_numeric, wl_ju_numeric_n, cp); }

static int map_case(const wl_ju_case_run *runs, size_t nruns, const wl_ju_case_multi *multi,
                    size_t nmulti, uint32_t cp, uint32_t out[3])
{
    size_t lo = 0, hi = nmulti;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < multi[mid].cp) hi = mid;
        else if (cp > multi[mid].cp) lo = mid + 1;
        else {
            int n = 0;
            while (n < 3 && multi[mid].to[n]) {
                out[n] = multi[mid].to[n];
                n++;
            }
            return n;
        }
    }
    lo = 0;
    hi = nruns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const wl_ju_case_run *r = &runs[mid];
        uint32_t last = r->start + (r->count - 1) * r->stride;
        if (cp < r->start) hi = mid;
        else if (cp > last) lo = mid + 1;
        else {
            if ((cp - r->start) % r->stride == 0) {
                out[0] = (uint32_t)((int32_t)cp + r->delta);
                return 1;
            }
            break;
        }
    }
    out[0] = cp;
    return 1;
}

int wl_ju_lower(uint32_t cp, uint32_t out[3])
{
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    return map_case(wl_ju_lower_runs, wl_ju_lower_runs_n, wl_ju_lower_multi, wl_ju_lower_multi_n, cp, out);
}

int wl_ju_upper(uint32_t cp, uint32_t out[3])
{
    if (cp < 0x80) {
        out[0] = (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
        return 1;
    }
    return map_case(wl_ju_upper_runs, wl_ju_upper_runs_n, wl_ju_upper_multi, wl_ju_upper_multi_n, cp, out);
}

int wl_ju_title(uint32_t cp, uint32_t out[3])
{
    if (cp < 0x80) return wl_ju_upper(cp, out);
    return map_case(wl_ju_title_runs, wl_ju_title_runs_n, wl_ju_title_multi, wl_ju_title_multi_n, cp, out);
}

/* ---- whole strings ------------------------------------------------------------------- */

static int put_all(wl_buf *b, const uint32_t *cps, int n)
{
    for (int i = 0; i < n; i++)
        if (wl_ju_put(b, cps[i]) != 0) return -1;
    return 0;
}

/* Python lowers U+03A3 to final sigma when a cased letter precedes it and none follows
 * (skipping case-ignorable characters both ways). */
static uint32_t lower_sigma(const char *s, size_t len, size_t at, size_t after)
{
    size_t j = at;
    uint32_t c = 0;
    int found = 0;
    while (j > 0) {
        c = wl_ju_prev(s, &j);
        if (!wl_ju_iscase_ignorable(c)) {
            found = 1;
            break;
        }
    }
    if (!found || !wl_ju_iscased(c)) return 0x3C3;
    j = after;
    while (j < len) {
        c = wl_ju_next(s, len, &j);
        if (!wl_ju_iscase_ignorable(c)) return wl_ju_iscased(c) ? 0x3C3 : 0x3C2;
    }
    return 0x3C2;
}

static int put_lower(wl_buf *b, const char *s, size_t len, size_t at, size_t after, uint32_t c)
{
    uint32_t m[3];
    if (c == 0x3A3) return wl_ju_put(b, lower_sigma(s, len, at, after));
    return put_all(b, m, wl_ju_lower(c, m));
}

int wl_ju_str_lower(wl_buf *b, const char *s, size_t len)
{
    if (wl_buf_reserve(b, len) != 0) return -1;
    for (size_t i = 0; i < len;) {
        size_t at = i;
        uint32_t c = wl_ju_next(s, len, &i);
        if (put_lower(b, s, len, at, i, c) != 0) return -1;
    }
    return 0;
}

int wl_ju_str_upper(wl_buf *b, const char *s, size_t len)
{
    uint32_t m[3];
    if (wl_buf_reserve(b, len) != 0) return -1;
    for (size_t i = 0; i < len;) {
        uint32_t c = wl_ju_next(s, len, &i);
        if (put_all(b, m, wl_ju_upper(c, m)) != 0) return -1;
    }
    return 0;
}

int wl_ju_str_capitalize(wl_buf *b, const char *s, size_t len)
{
    uint32_t m[3];
    if (wl_buf_reserve(b, len) != 0) return -1;
    for (size_t i = 0; i < len;) {
        size_t at = i;
        uint32_t c = wl_ju_next(s, len, &i);
        int rc = at == 0 ? put_all(b, m, wl_ju_title(c, m)) : put_lower(b, s, len, at, i, c);
        if (rc != 0) return -1;
    }
    return 0;
}

int wl_ju_str_title(wl_buf *b, const char *s, size_t len)
{
    uint32_t m[3];
    int prev_cased = 0;
    if (wl_buf_reserve(b, len) != 0) return -1;
    for (size_t i = 0; i < len;) {
        size_t at = i;
        uint32_t c = wl_ju_next(s, len, &i);
        int rc = prev_cased ? put_lower(b, s, len, at, i, c) : put_all(b, m, wl_ju_title(c, m));
        if (rc != 0) return -1;
        prev_cased = wl_ju_iscased(c);
    }
    return 0;
}

int wl_ju_str_swapcase(wl_buf *b, const char *s, size_t len)
{
    uint32_t m[3];
    if (wl_buf_reserve(b, len) != 0) return -1;
    for (size_t i = 0; i < len;) {
        size_t at = i;
        uint32_t c = wl_ju_next(s, len, &i);
        int rc;
        if (wl_ju_isupper(c)) rc = put_lower(b, s, len, at, i, c);
        else if (wl_ju_islower(c)) rc = put_all(b, m, wl_ju_upper(c, m));
        else rc = wl_ju_put(b, c);
        if (rc != 0) return -1;
    }
    return 0;
}

static int in_chars(uint32_t c, const char *chars, size_t chars_len)
{
    if (!chars) return wl_ju_isspace(c);
    for (size_t i = 0; i < chars_len;)
        if (wl_ju_next(chars, chars_len, &i) == c) return 1;
    return 0;
}

void wl_ju_strip(const char *s, size_t len, const char *chars, size_t chars_len, int left, int right,
                 size_t *start, size_t *end)
{
    size_t a = 0, z = len;
    if (left) {
        while (a < z) {
            size_t i = a;
            uint32_t c = wl_ju_next(s, len, &i);
            if (!in_chars(c, chars, chars_len)) break;
            a = i;
        }
    }
    if (right) {
        while (z > a) {
            size_t i = z;
            uint32_t c = wl_ju_prev(s, &i);
            if (!in_chars(c, chars, chars_len)) break;
            z = i;
        }
    }
    *start = a;
    *end = z;
}

int wl_ju_repr(wl_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int has_single = memchr(s, '\'', len) != NULL, has_double = memchr(s, '"', len) != NULL;
    char quote = (has_single && !has_double) ? '"' : '\'';
    if (wl_buf_reserve(b, len + 2) != 0 || wl_buf_append(b, &quote, 1) != 0) return -1;
    for (size_t i = 0; i < len;) {
        size_t at = i;
        uint32_t c = wl_ju_next(s, len, &i);
        char esc[10];
        size_t n = 0;
        if (c == (uint32_t)quote || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
            n = 2;
        } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !wl_ju_isprintable(c))) {
            int digits = c <= 0xFF ? 2 : c <= 0xFFFF ? 4 : 8;
            esc[0] = '\\';
            esc[1] = digits == 2 ? 'x' : digits == 4 ? 'u' : 'U';
            for (int k = 0; k < digits; k++) esc[2 + k] = hex[(c >> (4 * (digits - 1 - k))) & 0xF];
            n = 2 + (size_t)digits;
        }
        if (n) {
            if (wl_buf_append(b, esc, n) != 0) return -1;
        } else if (wl_buf_append(b, s + at, i - at) != 0) {
            return -1;
        }
    }
    return wl_buf_append(b, &quote, 1);
}
