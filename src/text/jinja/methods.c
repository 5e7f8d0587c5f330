/* methods.c - methods of str, dict, list and loop values, as Python (and Jinja2's immutable
 * sandbox: methods that change a list or dict are refused) provides them. */
#include <stdio.h>
#include <string.h>

#include "text/jinja/eval.h"
#include "text/jinja/ustr.h"

enum {
    /* str */
    M_CAPITALIZE, M_CENTER, M_COUNT, M_ENDSWITH, M_FIND, M_FORMAT, M_INDEX, M_ISALNUM, M_ISALPHA, M_ISDECIMAL,
    M_ISDIGIT, M_ISLOWER, M_ISNUMERIC, M_ISSPACE, M_ISUPPER, M_JOIN, M_LJUST, M_LOWER, M_LSTRIP, M_PARTITION,
    M_REMOVEPREFIX, M_REMOVESUFFIX, M_REPLACE, M_RFIND, M_RINDEX, M_RJUST, M_RPARTITION, M_RSPLIT, M_RSTRIP,
    M_SPLIT, M_SPLITLINES, M_STARTSWITH, M_STRIP, M_SWAPCASE, M_TITLE, M_UPPER, M_ZFILL,
    M_STR_UNSUPPORTED,
    /* dict */
    M_DICT_GET, M_DICT_ITEMS, M_DICT_KEYS, M_DICT_VALUES, M_DICT_COPY,
    /* list */
    M_LIST_COUNT, M_LIST_INDEX, M_LIST_COPY,
    /* loop */
    M_LOOP_CYCLE, M_LOOP_CHANGED,
    M_COUNT_ALL
};

static const struct {
    const char *name;
    int id;
} str_methods[] = {
    {"capitalize", M_CAPITALIZE}, {"center", M_CENTER}, {"count", M_COUNT}, {"endswith", M_ENDSWITH},
    {"find", M_FIND}, {"format", M_FORMAT}, {"index", M_INDEX}, {"isalnum", M_ISALNUM}, {"isalpha", M_ISALPHA},
    {"isdecimal", M_ISDECIMAL}, {"isdigit", M_ISDIGIT}, {"islower", M_ISLOWER}, {"isnumeric", M_ISNUMERIC},
    {"isspace", M_ISSPACE}, {"isupper", M_ISUPPER}, {"join", M_JOIN}, {"ljust", M_LJUST}, {"lower", M_LOWER},
    {"lstrip", M_LSTRIP}, {"partition", M_PARTITION}, {"removeprefix", M_REMOVEPREFIX},
    {"removesuffix", M_REMOVESUFFIX}, {"replace", M_REPLACE}, {"rfind", M_RFIND}, {"rindex", M_RINDEX},
    {"rjust", M_RJUST}, {"rpartition", M_RPARTITION}, {"rsplit", M_RSPLIT}, {"rstrip", M_RSTRIP},
    {"split", M_SPLIT}, {"splitlines", M_SPLITLINES}, {"startswith", M_STARTSWITH}, {"strip", M_STRIP},
    {"swapcase", M_SWAPCASE}, {"title", M_TITLE}, {"upper", M_UPPER}, {"zfill", M_ZFILL},
    /* Python has these too; calling them is not supported here. */
    {"casefold", M_STR_UNSUPPORTED}, {"encode", M_STR_UNSUPPORTED}, {"expandtabs", M_STR_UNSUPPORTED},
    {"format_map", M_STR_UNSUPPORTED}, {"isascii", M_STR_UNSUPPORTED}, {"isidentifier", M_STR_UNSUPPORTED},
    {"isprintable", M_STR_UNSUPPORTED}, {"istitle", M_STR_UNSUPPORTED}, {"maketrans", M_STR_UNSUPPORTED},
    {"translate", M_STR_UNSUPPORTED},
};

static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const list_unsafe[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort", NULL};

static int name_is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

static int in_list(const char *name, size_t len, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (name_is(name, len, list[i])) return 1;
    return 0;
}

int wl_jmethod_lookup(wl_jval self, const char *name, size_t len)
{
    switch (self.type) {
    case WL_JT_STR:
        for (size_t i = 0; i < sizeof str_methods / sizeof str_methods[0]; i++)
            if (name_is(name, len, str_methods[i].name)) return str_methods[i].id;
        return -1;
    case WL_JT_DICT:
        if (name_is(name, len, "get")) return M_DICT_GET;
        if (name_is(name, len, "items")) return M_DICT_ITEMS;
        if (name_is(name, len, "keys")) return M_DICT_KEYS;
        if (name_is(name, len, "values")) return M_DICT_VALUES;
        if (name_is(name, len, "copy")) return M_DICT_COPY;
        if (in_list(name, len, dict_unsafe)) return WL_JM_UNSAFE;
        return -1;
    case WL_JT_LIST:
        if (wl_jv_list(self)->kind > WL_JLIST_TUPLE) return -1;
        if (name_is(name, len, "count")) return M_LIST_COUNT;
        if (name_is(name, len, "index")) return M_LIST_INDEX;
        if (wl_jv_list(self)->kind == WL_JLIST_LIST) {
            if (name_is(name, len, "copy")) return M_LIST_COPY;
            if (in_list(name, len, list_unsafe)) return WL_JM_UNSAFE;
        }
        return -1;
    case WL_JT_LOOP:
        if (name_is(name, len, "cycle")) return M_LOOP_CYCLE;
        if (name_is(name, len, "changed")) return M_LOOP_CHANGED;
        return -1;
    default: return -1;
    }
}

const char *wl_jmethod_name(int id)
{
    for (size_t i = 0; i < sizeof str_methods / sizeof str_methods[0]; i++)
        if (str_methods[i].id == id) return str_methods[i].name;
    switch (id) {
    case M_DICT_GET: return "get";
    case M_DICT_ITEMS: return "items";
    case M_DICT_KEYS: return "keys";
    case M_DICT_VALUES: return "values";
    case M_DICT_COPY:
    case M_LIST_COPY: return "copy";
    case M_LIST_COUNT: return "count";
    case M_LIST_INDEX: return "index";
    case M_LOOP_CYCLE: return "cycle";
    case M_LOOP_CHANGED: return "changed";
    default: return "?";
    }
}

/* ---- helpers ------------------------------------------------------------------------- */

static int need_str(wl_jeval *ev, uint32_t line, const char *what, wl_jval v, const wl_jstr **out)
{
    if (v.type != WL_JT_STR) {
        char fmt[96];
        snprintf(fmt, sizeof fmt, "%s must be str, not %%s", what);
        return ev_type_error(ev, line, fmt, v);
    }
    *out = wl_jv_str(v);
    return 0;
}

static int arg_count(wl_jeval *ev, uint32_t line, const char *name, const wl_jargs *a, size_t min, size_t max)
{
    if (a->nkw) return EV_ERR(ev, line, "%s() takes no keyword arguments", name);
    if (a->npos < min || a->npos > max) {
        if (min == max) return EV_ERR(ev, line, "%s() takes exactly %zu argument%s (%zu given)", name, min, min == 1 ? "" : "s", a->npos);
        return EV_ERR(ev, line, "%s() takes from %zu to %zu arguments (%zu given)", name, min, max, a->npos);
    }
    return 0;
}

static int new_bool(wl_jval *out, int b)
{
    *out = wl_jv_bool(b);
    return 0;
}

static int64_t cp_index_of(const wl_jstr *s, size_t byte_off)
{
    if (s->ncp == s->len) return (int64_t)byte_off;
    int64_t n = 0;
    for (size_t i = 0; i < byte_off; i++) n += ((unsigned char)s->data[i] & 0xC0) != 0x80;
    return n;
}

/* Finds sub in s, first (or last) occurrence: byte offset or SIZE_MAX. */
static size_t find_bytes(const wl_jstr *s, const wl_jstr *sub, int last)
{
    if (sub->len > s->len) return SIZE_MAX;
    if (!last) {
        if (sub->len == 0) return 0;
        const char *h = memmem(s->data, s->len, sub->data, sub->len);
        return h ? (size_t)(h - s->data) : SIZE_MAX;
    }
    for (size_t i = s->len - sub->len + 1; i > 0; i--)
        if (memcmp(s->data + i - 1, sub->data, sub->len) == 0) return i - 1;
    return SIZE_MAX;
}

static int list_of_strs(wl_jeval *ev, uint32_t line, wl_jlist **out)
{
    return ev_new_list(ev, line, 0, out);
}

static int push_str(wl_jeval *ev, uint32_t line, wl_jlist *l, const char *s, size_t n)
{
    wl_jval v;
    int rc = ev_new_str(ev, line, s, n, &v);
    return rc ? rc : ev_list_push(ev, line, l, v);
}

/* str.split / str.rsplit */
static int str_split(wl_jeval *ev, uint32_t line, const wl_jstr *s, const wl_jargs *a, int right, wl_jval *out)
{
    static const char *const params[] = {"sep", "maxsplit"};
    wl_jval p[2];
    int rc = ev_bind(ev, line, right ? "rsplit" : "split", params, 2, a, p);
    if (rc) return rc;
    int64_t maxsplit = -1;
    if (p[1].type != WL_JT_ABSENT) {
        if (p[1].type != WL_JT_INT && p[1].type != WL_JT_BOOL)
            return ev_type_error(ev, line, "'%s' object cannot be interpreted as an integer", p[1]);
        maxsplit = p[1].u.i;
    }
    if (maxsplit < 0) maxsplit = INT64_MAX;
    const wl_jstr *sep = NULL;
    if (p[0].type != WL_JT_ABSENT && p[0].type != WL_JT_NONE) {
        if ((rc = need_str(ev, line, "sep", p[0], &sep)) != 0) return rc;
        if (sep->len == 0) return EV_ERR(ev, line, "empty separator");
    }
    if ((rc = ev_charge(ev, line, s->len)) != 0) return rc;
    wl_jlist *l;
    if ((rc = list_of_strs(ev, line, &l)) != 0) return rc;
    *out = wl_jv_obj(&l->h);
    int64_t splits = 0;
    if (!sep) {
        /* runs of whitespace; no empty strings */
        if (!right) {
            size_t i = 0;
            while (!rc) {
                while (i < s->len) {
                    size_t j = i;
                    if (!wl_ju_isspace(wl_ju_next(s->data, s->len, &j))) break;
                    i = j;
                }
                if (i >= s->len) break;
                size_t start = i;
                if (splits >= maxsplit) { /* the rest, as it is */
                    rc = push_str(ev, line, l, s->data + start, s->len - start);
                    break;
                }
                while (i < s->len) {
                    size_t j = i;
                    if (wl_ju_isspace(wl_ju_next(s->data, s->len, &j))) break;
                    i = j;
                }
                rc = push_str(ev, line, l, s->data + start, i - start);
                splits++;
            }
        } else {
            size_t i = s->len;
            while (!rc) {
                while (i > 0) {
                    size_t j = i;
                    if (!wl_ju_isspace(wl_ju_prev(s->data, &j))) break;
                    i = j;
                }
                if (i == 0) break;
                size_t end = i;
                if (splits >= maxsplit) {
                    rc = push_str(ev, line, l, s->data, end);
                    break;
                }
                while (i > 0) {
                    size_t j = i;
                    if (wl_ju_isspace(wl_ju_prev(s->data, &j))) break;
                    i = j;
                }
                rc = push_str(ev, line, l, s->data + i, end - i);
                splits++;
            }
        }
    } else if (!right) {
        size_t i = 0;
        while (!rc) {
            const char *hit = splits < maxsplit && i + sep->len <= s->len
                                  ? memmem(s->data + i, s->len - i, sep->data, sep->len)
                                  : NULL;
            if (!hit) {
                rc = push_str(ev, line, l, s->data + i, s->len - i);
                break;
            }
            size_t at = (size_t)(hit - s->data);
            rc = push_str(ev, line, l, s->data + i, at - i);
            i = at + sep->len;
            splits++;
        }
    } else {
        size_t end = s->len;
        while (!rc) {
            size_t at = SIZE_MAX;
            if (splits < maxsplit && end >= sep->len)
                for (size_t k = end - sep->len + 1; k > 0; k--)
                    if (memcmp(s->data + k - 1, sep->data, sep->len) == 0) {
                        at = k - 1;
                        break;
                    }
            if (at == SIZE_MAX) {
                rc = push_str(ev, line, l, s->data, end);
                break;
            }
            rc = push_str(ev, line, l, s->data + at + sep->len, end - at - sep->len);
            end = at;
            splits++;
        }
    }
    if (!rc && right) { /* collected right to left */
        for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
            wl_jval t = l->items[i];
            l->items[i] = l->items[j];
            l->items[j] = t;
        }
    }
    if (rc) ev_release(ev, *out);
    return rc;
}

static int str_strip(wl_jeval *ev, uint32_t line, wl_jval self, const wl_jargs *a, int left, int right, const char *name,
                     wl_jval *out)
{
    const wl_jstr *s = wl_jv_str(self), *chars = NULL;
    int rc = arg_count(ev, line, name, a, 0, 1);
    if (rc) return rc;
    if (a->npos && a->pos[0].type != WL_JT_NONE && (rc = need_str(ev, line, "strip arg", a->pos[0], &chars)) != 0)
        return rc;
    if ((rc = ev_charge(ev, line, s->len)) != 0) return rc;
    size_t a0, z;
    wl_ju_strip(s->data, s->len, chars ? chars->data : NULL, chars ? chars->len : 0, left, right, &a0, &z);
    if (a0 == 0 && z == s->len) {
        *out = wl_jval_retain(self);
        return 0;
    }
    return ev_new_str(ev, line, s->data + a0, z - a0, out);
}

static int str_affix(wl_jeval *ev, uint32_t line, const wl_jstr *s, const wl_jargs *a, int at_end, wl_jval *out)
{
    int rc = arg_count(ev, line, at_end ? "endswith" : "startswith", a, 1, 1);
    if (rc) return rc;
    wl_jval what = a->pos[0];
    const wl_jval *cands = &what;
    size_t n = 1;
    if (what.type == WL_JT_LIST && wl_jv_list(what)->kind == WL_JLIST_TUPLE) {
        cands = wl_jv_list(what)->items;
        n = wl_jv_list(what)->n;
    }
    for (size_t i = 0; i < n; i++) {
        const wl_jstr *x;
        if (cands[i].type != WL_JT_STR)
            return ev_type_error(ev, line,
                                 at_end ? "endswith first arg must be str or a tuple of str, not %s"
                                        : "startswith first arg must be str or a tuple of str, not %s",
                                 cands[i]);
        x = wl_jv_str(cands[i]);
        if (x->len <= s->len && memcmp(at_end ? s->data + s->len - x->len : s->data, x->data, x->len) == 0)
            return new_bool(out, 1);
    }
    return new_bool(out, 0);
}

static int str_pad(wl_jeval *ev, uint32_t line, const wl_jstr *s, const wl_jargs *a, int mode, const char *name,
                   wl_jval self, wl_jval *out)
{
    int rc = arg_count(ev, line, name, a, 1, mode == 3 ? 1 : 2);
    if (rc) return rc;
    if (a->pos[0].type != WL_JT_INT && a->pos[0].type != WL_JT_BOOL)
        return ev_type_error(ev, line, "'%s' object cannot be interpreted as an integer", a->pos[0]);
    int64_t width = a->pos[0].u.i;
    char fill[4] = " ";
    size_t fill_len = 1;
    if (a->npos > 1) {
        const wl_jstr *f = NULL;
        if ((rc = need_str(ev, line, "the fill character", a->pos[1], &f)) != 0) return rc;
        if (f->ncp != 1) return EV_ERR(ev, line, "The fill character must be exactly one character long");
        memcpy(fill, f->data, f->len);
        fill_len = f->len;
    }
    if (width <= (int64_t)s->ncp) {
        *out = wl_jval_retain(self);
        return 0;
    }
    int64_t marg = width - (int64_t)s->ncp, left;
    if ((uint64_t)marg > ev->opts.max_output) return ev_check_str_size(ev, line, ev->opts.max_output + 1);
    if (mode == 0) left = 0;                         /* ljust */
    else if (mode == 1) left = marg;                 /* rjust */
    else if (mode == 2) left = marg / 2 + (marg & width & 1); /* center */
    else left = marg;                                /* zfill */
    if ((rc = ev_check_str_size(ev, line, s->len + (size_t)marg * fill_len)) != 0) return rc;
    wl_buf b = {0};
    const char *body = s->data;
    size_t body_len = s->len;
    if (mode == 3) {
        fill[0] = '0';
        if (s->len && (s->data[0] == '+' || s->data[0] == '-')) {
            if (wl_buf_append(&b, s->data, 1) != 0) rc = ev_oom(ev, line);
            body++;
            body_len--;
        }
    }
    for (int64_t i = 0; i < left && !rc; i++)
        if (wl_buf_append(&b, fill, fill_len) != 0) rc = ev_oom(ev, line);
    if (!rc && wl_buf_append(&b, body, body_len) != 0) rc = ev_oom(ev, line);
    for (int64_t i = left; i < marg && !rc; i++)
        if (wl_buf_append(&b, fill, fill_len) != 0) rc = ev_oom(ev, line);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

typedef int (*cp_pred)(uint32_t);
static int is_alnum_cp(uint32_t c)
{
    return wl_ju_isalpha(c) || wl_ju_isdecimal(c) || wl_ju_isdigit(c) || wl_ju_isnumeric(c);
}

static int all_chars(const wl_jstr *s, cp_pred pred)
{
    if (s->len == 0) return 0;
    for (size_t i = 0; i < s->len;)
        if (!pred(wl_ju_next(s->data, s->len, &i))) return 0;
    return 1;
}

static int str_case_is(const wl_jstr *s, int want_lower)
{
    int cased = 0;
    for (size_t i = 0; i < s->len;) {
        uint32_t c = wl_ju_next(s->data, s->len, &i);
        int lo = wl_ju_islower(c), up = wl_ju_isupper(c);
        int title = !lo && !up && wl_ju_iscased(c);
        if (want_lower ? (up || title) : (lo || title)) return 0;
        if (want_lower ? lo : up) cased = 1;
    }
    return cased;
}

typedef int (*case_fn)(wl_buf *b, const char *s, size_t len);
static int str_case(wl_jeval *ev, uint32_t line, const wl_jstr *s, const wl_jargs *a, const char *name, case_fn fn,
                    wl_jval *out)
{
    int rc = arg_count(ev, line, name, a, 0, 0);
    if (!rc) rc = ev_charge(ev, line, s->len);
    if (rc) return rc;
    wl_buf b = {0};
    if (fn(&b, s->data, s->len) != 0) {
        wl_buf_free(&b);
        return ev_oom(ev, line);
    }
    return ev_str_from_buf(ev, line, &b, out);
}

/* str.format(): replacement fields {}, {0}, {name}, {0[key]}/{0.attr} lookups, !s/!r
 * conversions; no format specs. */
static int str_format(wl_jeval *ev, uint32_t line, const wl_jstr *s, const wl_jargs *a, wl_jval *out)
{
    wl_buf b = {0};
    int rc = ev_charge(ev, line, s->len);
    size_t auto_index = 0;
    for (size_t i = 0; i < s->len && !rc;) {
        char c = s->data[i];
        if (c == '}') {
            if (i + 1 < s->len && s->data[i + 1] == '}') {
                if (wl_buf_append(&b, "}", 1) != 0) rc = ev_oom(ev, line);
                i += 2;
                continue;
            }
            rc = EV_ERR(ev, line, "Single '}' encountered in format string");
            break;
        }
        if (c != '{') {
            size_t j = i;
            while (j < s->len && s->data[j] != '{' && s->data[j] != '}') j++;
            if (wl_buf_append(&b, s->data + i, j - i) != 0) rc = ev_oom(ev, line);
            i = j;
            continue;
        }
        if (i + 1 < s->len && s->data[i + 1] == '{') {
            if (wl_buf_append(&b, "{", 1) != 0) rc = ev_oom(ev, line);
            i += 2;
            continue;
        }
        size_t j = i + 1;
        while (j < s->len && s->data[j] != '}' && s->data[j] != '!' && s->data[j] != ':' && s->data[j] != '.' &&
               s->data[j] != '[')
            j++;
        wl_jval v;
        if (j == i + 1) {
            if (auto_index >= a->npos) {
                rc = EV_ERR(ev, line, "Replacement index %zu out of range for positional args tuple", auto_index);
                break;
            }
            v = wl_jval_retain(a->pos[auto_index++]);
        } else if (s->data[i + 1] >= '0' && s->data[i + 1] <= '9') {
            size_t k = 0;
            for (size_t q = i + 1; q < j && k < 100000; q++) k = k * 10 + (size_t)(s->data[q] - '0');
            if (k >= a->npos) {
                rc = EV_ERR(ev, line, "Replacement index %zu out of range for positional args tuple", k);
                break;
            }
            v = wl_jval_retain(a->pos[k]);
        } else {
            size_t k = 0;
            while (k < a->nkw && !(a->kwnames[k]->len == j - i - 1 && !memcmp(a->kwnames[k]->data, s->data + i + 1, j - i - 1)))
                k++;
            if (k == a->nkw) {
                rc = EV_ERR(ev, line, "format(): missing keyword argument '%.*s'", (int)(j - i - 1), s->data + i + 1);
                break;
            }
            v = wl_jval_retain(a->kwvals[k]);
        }
        /* .attr and [key] lookups */
        while (!rc && j < s->len && (s->data[j] == '.' || s->data[j] == '[')) {
            char kind = s->data[j++];
            size_t k = j;
            while (k < s->len && s->data[k] != (kind == '[' ? ']' : '}') && !(kind == '.' && (s->data[k] == '.' || s->data[k] == '[' || s->data[k] == '!' || s->data[k] == ':')))
                k++;
            if (k >= s->len) {
                rc = EV_ERR(ev, line, "unmatched '{' in format string");
                break;
            }
            wl_jval key, next;
            int digits = k > j;
            for (size_t q = j; q < k; q++)
                if (s->data[q] < '0' || s->data[q] > '9') digits = 0;
            if (kind == '[' && digits && k - j < 18) {
                int64_t n = 0;
                for (size_t q = j; q < k; q++) n = n * 10 + (s->data[q] - '0');
                key = wl_jv_int(n);
            } else if ((rc = ev_new_str(ev, line, s->data + j, k - j, &key)) != 0) {
                break;
            }
            if (kind == '.') rc = ev_getattr(ev, NULL, line, v, s->data + j, k - j, &next);
            else rc = ev_getitem(ev, NULL, line, v, key, &next);
            ev_release(ev, key);
            ev_release(ev, v);
            v = rc ? wl_jv_none() : next;
            j = kind == '[' ? k + 1 : k;
        }
        int as_repr = 0;
        if (!rc && j < s->len && s->data[j] == '!') {
            if (j + 1 < s->len && (s->data[j + 1] == 'r' || s->data[j + 1] == 's' || s->data[j + 1] == 'a')) {
                as_repr = s->data[j + 1] != 's';
                j += 2;
            } else {
                rc = EV_ERR(ev, line, "unknown conversion in a format string");
            }
        }
        if (!rc && j < s->len && s->data[j] == ':') rc = EV_ERR(ev, line, "format specs in str.format() are not supported");
        if (!rc && (j >= s->len || s->data[j] != '}')) rc = EV_ERR(ev, line, "unmatched '{' in format string");
        if (!rc) {
            if (v.type == WL_JT_UNDEFINED && !as_repr) rc = 0; /* prints as "" */
            else rc = as_repr ? ev_pyrepr(ev, line, v, &b) : ev_pystr(ev, line, v, &b);
        }
        ev_release(ev, v);
        if (!rc) rc = ev_check_str_size(ev, line, b.len);
        i = j + 1;
    }
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

static int call_str(wl_jeval *ev, uint32_t line, int id, wl_jval self, const wl_jargs *a, wl_jval *out)
{
    const wl_jstr *s = wl_jv_str(self), *x = NULL;
    int rc;
    switch (id) {
    case M_UPPER: return str_case(ev, line, s, a, "upper", wl_ju_str_upper, out);
    case M_LOWER: return str_case(ev, line, s, a, "lower", wl_ju_str_lower, out);
    case M_TITLE: return str_case(ev, line, s, a, "title", wl_ju_str_title, out);
    case M_CAPITALIZE: return str_case(ev, line, s, a, "capitalize", wl_ju_str_capitalize, out);
    case M_SWAPCASE: return str_case(ev, line, s, a, "swapcase", wl_ju_str_swapcase, out);
    case M_STRIP: return str_strip(ev, line, self, a, 1, 1, "strip", out);
    case M_LSTRIP: return str_strip(ev, line, self, a, 1, 0, "lstrip", out);
    case M_RSTRIP: return str_strip(ev, line, self, a, 0, 1, "rstrip", out);
    case M_SPLIT: return str_split(ev, line, s, a, 0, out);
    case M_RSPLIT: return str_split(ev, line, s, a, 1, out);
    case M_STARTSWITH: return str_affix(ev, line, s, a, 0, out);
    case M_ENDSWITH: return str_affix(ev, line, s, a, 1, out);
    case M_LJUST: return str_pad(ev, line, s, a, 0, "ljust", self, out);
    case M_RJUST: return str_pad(ev, line, s, a, 1, "rjust", self, out);
    case M_CENTER: return str_pad(ev, line, s, a, 2, "center", self, out);
    case M_ZFILL: return str_pad(ev, line, s, a, 3, "zfill", self, out);
    case M_FORMAT: return str_format(ev, line, s, a, out);
    case M_FIND:
    case M_RFIND:
    case M_INDEX:
    case M_RINDEX:
    case M_COUNT: {
        const char *nm = id == M_FIND ? "find" : id == M_RFIND ? "rfind" : id == M_INDEX ? "index" : id == M_RINDEX ? "rindex" : "count";
        if ((rc = arg_count(ev, line, nm, a, 1, 1)) != 0) return rc;
        if ((rc = need_str(ev, line, "the substring", a->pos[0], &x)) != 0) return rc;
        if ((rc = ev_charge(ev, line, s->len)) != 0) return rc;
        if (id == M_COUNT) {
            int64_t n = 0;
            if (x->len == 0) n = (int64_t)s->ncp + 1;
            else
                for (size_t i = 0; i + x->len <= s->len;) {
                    const char *h = memmem(s->data + i, s->len - i, x->data, x->len);
                    if (!h) break;
                    n++;
                    i = (size_t)(h - s->data) + x->len;
                }
            *out = wl_jv_int(n);
            return 0;
        }
        size_t at = find_bytes(s, x, id == M_RFIND || id == M_RINDEX);
        if (at == SIZE_MAX && (id == M_INDEX || id == M_RINDEX)) return EV_ERR(ev, line, "substring not found");
        *out = wl_jv_int(at == SIZE_MAX ? -1 : cp_index_of(s, at));
        return 0;
    }
    case M_REPLACE: {
        if (a->nkw) return EV_ERR(ev, line, "replace() takes no keyword arguments");
        if ((rc = arg_count(ev, line, "replace", a, 2, 3)) != 0) return rc;
        const wl_jstr *o = NULL, *n = NULL;
        if ((rc = need_str(ev, line, "replace() argument 1", a->pos[0], &o)) != 0) return rc;
        if ((rc = need_str(ev, line, "replace() argument 2", a->pos[1], &n)) != 0) return rc;
        int64_t count = -1;
        if (a->npos > 2) {
            if (a->pos[2].type != WL_JT_INT && a->pos[2].type != WL_JT_BOOL)
                return ev_type_error(ev, line, "'%s' object cannot be interpreted as an integer", a->pos[2]);
            count = a->pos[2].u.i;
        }
        return wl_jstr_replace(ev, line, s, o, n, count, out);
    }
    case M_JOIN: {
        if ((rc = arg_count(ev, line, "join", a, 1, 1)) != 0) return rc;
        wl_jval items;
        if ((rc = ev_iter_list(ev, line, a->pos[0], &items)) != 0) return rc;
        const wl_jlist *l = wl_jv_list(items);
        wl_buf b = {0};
        rc = ev_steps(ev, line, l->n);
        for (size_t i = 0; i < l->n && !rc; i++) {
            if (l->items[i].type != WL_JT_STR) {
                rc = EV_ERR(ev, line, "sequence item %zu: expected str instance, %s found", i, wl_jv_type_name(l->items[i]));
                break;
            }
            if ((i && wl_buf_append(&b, s->data, s->len) != 0) ||
                wl_buf_append(&b, wl_jv_str(l->items[i])->data, wl_jv_str(l->items[i])->len) != 0)
                rc = ev_oom(ev, line);
            if (!rc) rc = ev_check_str_size(ev, line, b.len);
        }
        ev_release(ev, items);
        if (rc) {
            wl_buf_free(&b);
            return rc;
        }
        return ev_str_from_buf(ev, line, &b, out);
    }
    case M_SPLITLINES: {
        if ((rc = arg_count(ev, line, "splitlines", a, 0, 1)) != 0) return rc;
        int keep = 0;
        if (a->npos) {
            if (a->pos[0].type != WL_JT_INT && a->pos[0].type != WL_JT_BOOL)
                return ev_type_error(ev, line, "'%s' object cannot be interpreted as an integer", a->pos[0]);
            keep = a->pos[0].u.i != 0;
        }
        wl_jlist *l;
        if ((rc = ev_charge(ev, line, s->len)) != 0 || (rc = ev_new_list(ev, line, 0, &l)) != 0) return rc;
        *out = wl_jv_obj(&l->h);
        size_t i = 0;
        while (i < s->len && !rc) {
            size_t start = i, brk = 0;
            while (i < s->len) {
                unsigned char c = (unsigned char)s->data[i];
                if (c == '\r') brk = (i + 1 < s->len && s->data[i + 1] == '\n') ? 2 : 1;
                else if (c == '\n' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E) brk = 1;
                else if (c >= 0x80) {
                    size_t j = i;
                    uint32_t cp = wl_ju_next(s->data, s->len, &j);
                    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) brk = j - i;
                }
                if (brk) break;
                i++;
            }
            rc = push_str(ev, line, l, s->data + start, i - start + (keep ? brk : 0));
            i += brk;
        }
        if (rc) ev_release(ev, *out);
        return rc;
    }
    case M_PARTITION:
    case M_RPARTITION: {
        if ((rc = arg_count(ev, line, id == M_PARTITION ? "partition" : "rpartition", a, 1, 1)) != 0) return rc;
        if ((rc = need_str(ev, line, "the separator", a->pos[0], &x)) != 0) return rc;
        if (x->len == 0) return EV_ERR(ev, line, "empty separator");
        size_t at = find_bytes(s, x, id == M_RPARTITION);
        wl_jlist *l;
        if ((rc = ev_new_list(ev, line, 3, &l)) != 0) return rc;
        l->kind = WL_JLIST_TUPLE;
        *out = wl_jv_obj(&l->h);
        if (at == SIZE_MAX) {
            if (id == M_PARTITION) {
                rc = push_str(ev, line, l, s->data, s->len);
                if (!rc) rc = push_str(ev, line, l, "", 0);
                if (!rc) rc = push_str(ev, line, l, "", 0);
            } else {
                rc = push_str(ev, line, l, "", 0);
                if (!rc) rc = push_str(ev, line, l, "", 0);
                if (!rc) rc = push_str(ev, line, l, s->data, s->len);
            }
        } else {
            rc = push_str(ev, line, l, s->data, at);
            if (!rc) rc = push_str(ev, line, l, x->data, x->len);
            if (!rc) rc = push_str(ev, line, l, s->data + at + x->len, s->len - at - x->len);
        }
        if (rc) ev_release(ev, *out);
        return rc;
    }
    case M_REMOVEPREFIX:
    case M_REMOVESUFFIX: {
        if ((rc = arg_count(ev, line, id == M_REMOVEPREFIX ? "removeprefix" : "removesuffix", a, 1, 1)) != 0) return rc;
        if ((rc = need_str(ev, line, "the affix", a->pos[0], &x)) != 0) return rc;
        if (x->len && x->len <= s->len) {
            if (id == M_REMOVEPREFIX && memcmp(s->data, x->data, x->len) == 0)
                return ev_new_str(ev, line, s->data + x->len, s->len - x->len, out);
            if (id == M_REMOVESUFFIX && memcmp(s->data + s->len - x->len, x->data, x->len) == 0)
                return ev_new_str(ev, line, s->data, s->len - x->len, out);
        }
        *out = wl_jval_retain(self);
        return 0;
    }
    case M_ISSPACE:
    case M_ISALPHA:
    case M_ISDIGIT:
    case M_ISDECIMAL:
    case M_ISNUMERIC:
    case M_ISALNUM:
        if ((rc = arg_count(ev, line, wl_jmethod_name(id), a, 0, 0)) != 0) return rc;
        return new_bool(out, all_chars(s, id == M_ISSPACE     ? wl_ju_isspace
                                          : id == M_ISALPHA   ? wl_ju_isalpha
                                          : id == M_ISDIGIT   ? wl_ju_isdigit
                                          : id == M_ISDECIMAL ? wl_ju_isdecimal
                                          : id == M_ISNUMERIC ? wl_ju_isnumeric
                                                              : is_alnum_cp));
    case M_ISLOWER:
    case M_ISUPPER:
        if ((rc = arg_count(ev, line, wl_jmethod_name(id), a, 0, 0)) != 0) return rc;
        return new_bool(out, str_case_is(s, id == M_ISLOWER));
    default: return EV_ERR(ev, line, "this str method is not supported in chat templates");
    }
}

static int call_dict(wl_jeval *ev, uint32_t line, int id, wl_jval self, const wl_jargs *a, wl_jval *out)
{
    const wl_jdict *d = wl_jv_dict(self);
    int rc;
    if (id == M_DICT_GET) {
        if ((rc = arg_count(ev, line, "get", a, 1, 2)) != 0) return rc;
        if (!wl_jv_hashable(a->pos[0])) return ev_type_error(ev, line, "unhashable type: '%s'", a->pos[0]);
        if ((rc = ev_charge_str(ev, line, a->pos[0])) != 0) return rc;
        const wl_jval *v = wl_jdict_get(d, a->pos[0]);
        *out = wl_jval_retain(v ? *v : (a->npos > 1 ? a->pos[1] : wl_jv_none()));
        return 0;
    }
    if ((rc = arg_count(ev, line, wl_jmethod_name(id), a, 0, 0)) != 0) return rc;
    if (id == M_DICT_COPY) {
        wl_jdict *c;
        if ((rc = ev_steps(ev, line, d->n)) != 0 || (rc = ev_new_dict(ev, line, WL_JT_DICT, &c)) != 0) return rc;
        for (size_t i = 0; i < d->n && !rc; i++)
            rc = ev_dict_set(ev, line, c, wl_jval_retain(d->ents[i].key), wl_jval_retain(d->ents[i].val));
        *out = wl_jv_obj(&c->h);
        if (rc) ev_release(ev, *out);
        return rc;
    }
    wl_jlist *l;
    if ((rc = ev_steps(ev, line, d->n)) != 0 || (rc = ev_new_list(ev, line, d->n, &l)) != 0) return rc;
    *out = wl_jv_obj(&l->h);
    l->kind = id == M_DICT_ITEMS ? WL_JLIST_DICT_ITEMS : id == M_DICT_KEYS ? WL_JLIST_DICT_KEYS : WL_JLIST_DICT_VALUES;
    for (size_t i = 0; i < d->n; i++) {
        if (id == M_DICT_KEYS) l->items[l->n++] = wl_jval_retain(d->ents[i].key);
        else if (id == M_DICT_VALUES) l->items[l->n++] = wl_jval_retain(d->ents[i].val);
        else {
            wl_jlist *pair;
            if ((rc = ev_new_list(ev, line, 2, &pair)) != 0) {
                ev_release(ev, *out);
                return rc;
            }
            pair->kind = WL_JLIST_TUPLE;
            pair->items[0] = wl_jval_retain(d->ents[i].key);
            pair->items[1] = wl_jval_retain(d->ents[i].val);
            pair->n = 2;
            l->items[l->n++] = wl_jv_obj(&pair->h);
        }
    }
    return 0;
}

static int call_list(wl_jeval *ev, uint32_t line, int id, wl_jval self, const wl_jargs *a, wl_jval *out)
{
    const wl_jlist *l = wl_jv_list(self);
    int rc;
    if (id == M_LIST_COPY) {
        wl_jlist *c;
        if ((rc = arg_count(ev, line, "copy", a, 0, 0)) != 0) return rc;
        if ((rc = ev_steps(ev, line, l->n)) != 0 || (rc = ev_new_list(ev, line, l->n, &c)) != 0) return rc;
        for (size_t i = 0; i < l->n; i++) c->items[c->n++] = wl_jval_retain(l->items[i]);
        *out = wl_jv_obj(&c->h);
        return 0;
    }
    if ((rc = arg_count(ev, line, wl_jmethod_name(id), a, 1, 1)) != 0) return rc;
    if ((rc = ev_steps(ev, line, l->n)) != 0) return rc;
    int64_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        int eq;
        if ((rc = ev_equal(ev, line, l->items[i], a->pos[0], &eq)) != 0) return rc;
        if (!eq) continue;
        if (id == M_LIST_INDEX) {
            *out = wl_jv_int((int64_t)i);
            return 0;
        }
        n++;
    }
    if (id == M_LIST_INDEX) return EV_ERR(ev, line, "value is not in list");
    *out = wl_jv_int(n);
    return 0;
}

static int call_loop(wl_jeval *ev, uint32_t line, int id, wl_jval self, const wl_jargs *a, wl_jval *out)
{
    wl_jloop *l = (wl_jloop *)self.u.o;
    if (a->nkw) return EV_ERR(ev, line, "loop.%s() takes no keyword arguments", wl_jmethod_name(id));
    if (id == M_LOOP_CYCLE) {
        if (!a->npos) return EV_ERR(ev, line, "no items for cycling given");
        *out = wl_jval_retain(a->pos[(size_t)l->index0 % a->npos]);
        return 0;
    }
    /* loop.changed(*values): true when the values differ from the last call's */
    wl_jlist *vals;
    int rc = ev_new_list(ev, line, a->npos, &vals);
    if (rc) return rc;
    for (size_t i = 0; i < a->npos; i++) vals->items[vals->n++] = wl_jval_retain(a->pos[i]);
    wl_jval v = wl_jv_obj(&vals->h);
    int changed = l->changed.type == WL_JT_ABSENT || !wl_jv_equal(l->changed, v);
    if (changed) {
        wl_jval old = l->changed;
        l->changed = v;
        ev_release(ev, old);
    } else {
        ev_release(ev, v);
    }
    *out = wl_jv_bool(changed);
    return 0;
}

int wl_jmethod_call(wl_jeval *ev, uint32_t line, int id, wl_jval self, const wl_jargs *args, wl_jval *out)
{
    int rc = ev_steps(ev, line, 1);
    if (rc) return rc;
    switch (self.type) {
    case WL_JT_STR: return call_str(ev, line, id, self, args, out);
    case WL_JT_DICT: return call_dict(ev, line, id, self, args, out);
    case WL_JT_LIST: return call_list(ev, line, id, self, args, out);
    case WL_JT_LOOP: return call_loop(ev, line, id, self, args, out);
    default: return ev_type_error(ev, line, "'%s' object has no such method", self);
    }
}
