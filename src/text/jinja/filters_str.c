/* filters_str.c - Jinja2's string filters (jinja2/filters.py semantics). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/filters_impl.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"
#include "text/jinja/ustr.h"

/* ---- string filters ------------------------------------------------------------------ */

typedef int (*case_fn)(wl_buf *b, const char *s, size_t len);

static int apply_case(wl_jeval *ev, uint32_t line, wl_jval in, case_fn fn, wl_jval *out)
{
    wl_jval s;
    int rc = soft_str(ev, line, in, &s);
    if (rc) return rc;
    const wl_jstr *str = wl_jv_str(s);
    wl_buf b = {0};
    rc = ev_charge(ev, line, str->len);
    if (!rc && fn(&b, str->data, str->len) != 0) rc = ev_oom(ev, line);
    ev_release(ev, s);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

FILTER(upper) { NO_ARGS("upper"); return apply_case(ev, line, in, wl_ju_str_upper, out); }
FILTER(lower) { NO_ARGS("lower"); return apply_case(ev, line, in, wl_ju_str_lower, out); }
FILTER(capitalize) { NO_ARGS("capitalize"); return apply_case(ev, line, in, wl_ju_str_capitalize, out); }

/* Jinja2's title: split before runs of [-\s({[<], then item[0].upper() + item[1:].lower(). */
static int title_str(wl_buf *b, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* an item is either a run of separators or a run of non-separators */
        size_t j = i;
        uint32_t c = wl_ju_next(s, len, &j);
        int sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || wl_ju_isspace(c);
        size_t end = j;
        while (end < len) {
            size_t k = end;
            uint32_t d = wl_ju_next(s, len, &k);
            int dsep = d == '-' || d == '(' || d == '{' || d == '[' || d == '<' || wl_ju_isspace(d);
            if (dsep != sep) break;
            end = k;
        }
        if (wl_ju_str_upper(b, s + i, j - i) != 0 || wl_ju_str_lower(b, s + j, end - j) != 0) return -1;
        i = end;
    }
    return 0;
}
FILTER(title) { NO_ARGS("title"); return apply_case(ev, line, in, title_str, out); }

FILTER(trim)
{
    BIND("trim", "chars");
    wl_jval s, chars = wl_jv_none();
    int rc = soft_str(ev, line, in, &s);
    if (rc) return rc;
    if (GIVEN(p[0]) && p[0].type != WL_JT_NONE) {
        if (p[0].type != WL_JT_STR) {
            ev_release(ev, s);
            return ev_type_error(ev, line, "strip arg must be None or str, not %s", p[0]);
        }
        chars = p[0];
    }
    const wl_jstr *str = wl_jv_str(s);
    size_t a0, a1;
    rc = ev_charge(ev, line, str->len);
    if (!rc) {
        if (chars.type == WL_JT_STR)
            wl_ju_strip(str->data, str->len, wl_jv_str(chars)->data, wl_jv_str(chars)->len, 1, 1, &a0, &a1);
        else
            wl_ju_strip(str->data, str->len, NULL, 0, 1, 1, &a0, &a1);
        if (a0 == 0 && a1 == str->len) *out = wl_jval_retain(s);
        else rc = ev_new_str(ev, line, str->data + a0, a1 - a0, out);
    }
    ev_release(ev, s);
    return rc;
}

int wl_jstr_replace(wl_jeval *ev, uint32_t line, const wl_jstr *s, const wl_jstr *old, const wl_jstr *new_,
                    int64_t count, wl_jval *out)
{
    wl_buf b = {0};
    int rc = ev_charge(ev, line, s->len);
    if (rc) return rc;
    if (count < 0) count = INT64_MAX;
    size_t i = 0;
    int64_t done = 0;
    if (old->len == 0) {
        /* inserts new before every character and at the end */
        while (done < count && !rc) {
            if (wl_buf_append(&b, new_->data, new_->len) != 0) rc = ev_oom(ev, line);
            done++;
            if (i >= s->len) break;
            size_t j = i;
            wl_ju_next(s->data, s->len, &j);
            if (!rc && wl_buf_append(&b, s->data + i, j - i) != 0) rc = ev_oom(ev, line);
            i = j;
            if (!rc) rc = ev_check_str_size(ev, line, b.len);
        }
    } else {
        while (done < count && !rc) {
            const char *hit = i < s->len ? memmem(s->data + i, s->len - i, old->data, old->len) : NULL;
            if (!hit) break;
            size_t at = (size_t)(hit - s->data);
            if (wl_buf_append(&b, s->data + i, at - i) != 0 || wl_buf_append(&b, new_->data, new_->len) != 0)
                rc = ev_oom(ev, line);
            i = at + old->len;
            done++;
            if (!rc) rc = ev_check_str_size(ev, line, b.len);
        }
    }
    if (!rc && i < s->len && wl_buf_append(&b, s->data + i, s->len - i) != 0) rc = ev_oom(ev, line);
    if (!rc) rc = ev_charge(ev, line, b.len);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

FILTER(replace)
{
    BIND("replace", "old", "new", "count");
    if (!GIVEN(p[0]) || !GIVEN(p[1])) return EV_ERR(ev, line, "replace() needs the old and new strings");
    int64_t count = -1;
    int rc;
    if (GIVEN(p[2]) && p[2].type != WL_JT_NONE && (rc = want_int(ev, line, p[2], "count", &count)) != 0) return rc;
    wl_jval s, o, n;
    if ((rc = soft_str(ev, line, in, &s)) != 0) return rc;
    if ((rc = soft_str(ev, line, p[0], &o)) != 0) {
        ev_release(ev, s);
        return rc;
    }
    if ((rc = soft_str(ev, line, p[1], &n)) == 0) {
        rc = wl_jstr_replace(ev, line, wl_jv_str(s), wl_jv_str(o), wl_jv_str(n), count, out);
        ev_release(ev, n);
    }
    ev_release(ev, o);
    ev_release(ev, s);
    return rc;
}

FILTER(string)
{
    NO_ARGS("string");
    return soft_str(ev, line, in, out);
}

FILTER(escape)
{
    NO_ARGS("escape");
    wl_jval s;
    int rc = soft_str(ev, line, in, &s);
    if (rc) return rc;
    const wl_jstr *str = wl_jv_str(s);
    wl_buf b = {0};
    for (size_t i = 0; i < str->len && !rc; i++) {
        const char *rep = NULL;
        switch (str->data[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep ? wl_buf_puts(&b, rep) != 0 : wl_buf_append(&b, &str->data[i], 1) != 0) rc = ev_oom(ev, line);
    }
    ev_release(ev, s);
    if (!rc) rc = ev_check_str_size(ev, line, b.len);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

FILTER(safe)
{
    NO_ARGS("safe");
    *out = wl_jval_retain(in);
    return 0;
}

FILTER(center)
{
    BIND("center", "width");
    int64_t width = 80;
    int rc;
    if (GIVEN(p[0]) && (rc = want_int(ev, line, p[0], "width", &width)) != 0) return rc;
    wl_jval s;
    if ((rc = soft_str(ev, line, in, &s)) != 0) return rc;
    const wl_jstr *str = wl_jv_str(s);
    if (width <= (int64_t)str->ncp) {
        *out = s;
        return 0;
    }
    int64_t marg = width - (int64_t)str->ncp;
    int64_t left = marg / 2 + (marg & width & 1);
    size_t total = str->len + (size_t)marg;
    rc = ev_check_str_size(ev, line, total);
    if (!rc) rc = ev_charge(ev, line, total);
    wl_jstr *r = rc ? NULL : wl_jstr_alloc(&ev->heap, total);
    if (!rc && !r) rc = ev_oom(ev, line);
    if (!rc) {
        memset(r->data, ' ', (size_t)left);
        memcpy(r->data + left, str->data, str->len);
        memset(r->data + left + str->len, ' ', (size_t)(marg - left));
        r->ncp = str->ncp + (size_t)marg;
        *out = wl_jv_obj(&r->h);
    }
    ev_release(ev, s);
    return rc;
}

/* Python's str.splitlines() boundaries: returns the length of the line break at s[i], or 0. */
static size_t line_break_at(const char *s, size_t len, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c == '\r') return (i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
    if (c == '\n' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E) return 1;
    if (c >= 0x80) {
        size_t j = i;
        uint32_t cp = wl_ju_next(s, len, &j);
        if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) return j - i;
    }
    return 0;
}

FILTER(indent)
{
    BIND("indent", "width", "first", "blank");
    int rc;
    wl_jval ind;
    if (GIVEN(p[0]) && p[0].type == WL_JT_STR) {
        ind = wl_jval_retain(p[0]);
    } else {
        int64_t width = 4;
        if (GIVEN(p[0]) && (rc = want_int(ev, line, p[0], "width", &width)) != 0) return rc;
        if (width < 0) width = 0;
        if ((rc = ev_check_str_size(ev, line, (size_t)width)) != 0) return rc;
        wl_buf sp = {0};
        for (int64_t i = 0; i < width; i++)
            if (wl_buf_append(&sp, " ", 1) != 0) {
                wl_buf_free(&sp);
                return ev_oom(ev, line);
            }
        if ((rc = ev_str_from_buf(ev, line, &sp, &ind)) != 0) return rc;
    }
    int first = GIVEN(p[1]) && wl_jv_truthy(p[1]);
    int blank = GIVEN(p[2]) && wl_jv_truthy(p[2]);
    if (in.type != WL_JT_STR) { /* Jinja2 does s += "\n" */
        ev_release(ev, ind);
        if (in.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, in);
        return ev_type_error(ev, line, "unsupported operand type(s) for +=: '%s' and 'str'", in);
    }
    wl_jval s;
    if ((rc = soft_str(ev, line, in, &s)) != 0) {
        ev_release(ev, ind);
        return rc;
    }
    const wl_jstr *str = wl_jv_str(s), *is = wl_jv_str(ind);
    wl_buf b = {0}, t = {0};
    rc = ev_charge(ev, line, str->len);
    /* (s + "\n").splitlines(): the added newline may merge with a trailing "\r" */
    if (!rc && (wl_buf_append(&t, str->data, str->len) != 0 || wl_buf_append(&t, "\n", 1) != 0)) rc = ev_oom(ev, line);
    if (!rc && first && wl_buf_append(&b, is->data, is->len) != 0) rc = ev_oom(ev, line);
    size_t i = 0;
    int line_no = 0;
    while (!rc && i < t.len) {
        size_t start = i, brk = 0;
        while (i < t.len && (brk = line_break_at(t.data, t.len, i)) == 0) i++;
        size_t end = i;
        if (line_no > 0) {
            if (wl_buf_append(&b, "\n", 1) != 0) rc = ev_oom(ev, line);
            if (!rc && (blank || end > start) && wl_buf_append(&b, is->data, is->len) != 0) rc = ev_oom(ev, line);
        }
        if (!rc && wl_buf_append(&b, t.data + start, end - start) != 0) rc = ev_oom(ev, line);
        if (!rc) rc = ev_check_str_size(ev, line, b.len);
        line_no++;
        i += brk;
    }
    wl_buf_free(&t);
    ev_release(ev, s);
    ev_release(ev, ind);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

static int is_word_char(uint32_t c)
{
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    return wl_ju_isalpha(c) || wl_ju_isdecimal(c) || wl_ju_isdigit(c) || wl_ju_isnumeric(c);
}

FILTER(wordcount)
{
    NO_ARGS("wordcount");
    wl_jval s;
    int rc = soft_str(ev, line, in, &s);
    if (rc) return rc;
    const wl_jstr *str = wl_jv_str(s);
    int64_t n = 0;
    int in_word = 0;
    for (size_t i = 0; i < str->len;) {
        int w = is_word_char(wl_ju_next(str->data, str->len, &i));
        if (w && !in_word) n++;
        in_word = w;
    }
    size_t len = str->len;
    ev_release(ev, s);
    *out = wl_jv_int(n);
    return ev_charge(ev, line, len);
}

FILTER(truncate)
{
    BIND("truncate", "length", "killwords", "end", "leeway");
    int64_t length = 255, leeway = 5;
    int rc;
    if (GIVEN(p[0]) && (rc = want_int(ev, line, p[0], "length", &length)) != 0) return rc;
    if (GIVEN(p[3]) && p[3].type != WL_JT_NONE && (rc = want_int(ev, line, p[3], "leeway", &leeway)) != 0) return rc;
    wl_jval end;
    int64_t end_len = 3;
    if (GIVEN(p[2])) {
        if (p[2].type != WL_JT_STR) { /* len(end) first, then s[:n] + end fails */
            if ((rc = ev_len(ev, line, p[2], &end_len)) != 0) return rc;
        }
        end = wl_jval_retain(p[2]);
    } else if ((rc = ev_new_str(ev, line, "...", 3, &end)) != 0) {
        return rc;
    }
    if (end.type == WL_JT_STR) end_len = (int64_t)wl_jv_str(end)->ncp;
    if (length < end_len || leeway < 0) {
        ev_release(ev, end);
        return EV_ERR(ev, line, "truncate(): expected length >= %lld and leeway >= 0", (long long)end_len);
    }
    int64_t len;
    if ((rc = ev_len(ev, line, in, &len)) != 0) {
        ev_release(ev, end);
        return rc;
    }
    if (len <= length + leeway) {
        ev_release(ev, end);
        *out = wl_jval_retain(in);
        return 0;
    }
    if (end.type != WL_JT_STR) {
        rc = end.type == WL_JT_UNDEFINED ? ev_undefined_error(ev, line, end)
                                         : ev_type_error(ev, line, "can only concatenate str (not \"%s\") to str", end);
        ev_release(ev, end);
        return rc;
    }
    const wl_jstr *e = wl_jv_str(end);
    wl_jval s;
    if ((rc = soft_str(ev, line, in, &s)) != 0) {
        ev_release(ev, end);
        return rc;
    }
    const wl_jstr *str = wl_jv_str(s);
    size_t cut = wl_ju_offset(str->data, str->len, str->ncp, (size_t)(length - end_len));
    if (!(GIVEN(p[1]) && wl_jv_truthy(p[1]))) {
        /* s[:cut].rsplit(" ", 1)[0] */
        size_t k = cut;
        while (k > 0 && str->data[k - 1] != ' ') k--;
        if (k > 0) cut = k - 1;
    }
    wl_buf b = {0};
    if (wl_buf_append(&b, str->data, cut) != 0 || wl_buf_append(&b, e->data, e->len) != 0) rc = ev_oom(ev, line);
    ev_release(ev, s);
    ev_release(ev, end);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

FILTER(format)
{
    if (a->nkw) {
        if (a->npos) return EV_ERR(ev, line, "format(): can't handle positional and keyword arguments at the same time");
        return EV_ERR(ev, line, "format() with keyword arguments is not supported");
    }
    wl_jval s, tuple;
    int rc = soft_str(ev, line, in, &s);
    if (rc) return rc;
    wl_jlist *t;
    if ((rc = ev_new_list(ev, line, a->npos, &t)) != 0) {
        ev_release(ev, s);
        return rc;
    }
    t->kind = WL_JLIST_TUPLE;
    for (size_t i = 0; i < a->npos; i++) t->items[t->n++] = wl_jval_retain(a->pos[i]);
    tuple = wl_jv_obj(&t->h);
    rc = ev_binary(ev, line, WL_OP_MOD, s, tuple, out);
    ev_release(ev, tuple);
    ev_release(ev, s);
    return rc;
}
