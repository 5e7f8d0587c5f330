/* globals.c - the functions every template sees: Jinja2's range, namespace and dict (with
 * the sandbox's range limit) and transformers' raise_exception and strftime_now. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/jinja/eval.h"
#include "text/utf8.h"

/* Jinja2's sandbox refuses ranges longer than this (MAX_RANGE). */
enum { MAX_RANGE = 100000 };

static int is_intlike(wl_jval v) { return v.type == WL_JT_INT || v.type == WL_JT_BOOL; }

static int g_range(wl_jeval *ev, uint32_t line, const wl_jargs *a, wl_jval *out)
{
    if (a->nkw) return EV_ERR(ev, line, "range() takes no keyword arguments");
    if (a->npos < 1 || a->npos > 3) return EV_ERR(ev, line, "range expected 1 to 3 arguments, got %zu", a->npos);
    int64_t v[3] = {0, 0, 1};
    for (size_t i = 0; i < a->npos; i++) {
        if (!is_intlike(a->pos[i]))
            return ev_type_error(ev, line, "'%s' object cannot be interpreted as an integer", a->pos[i]);
        v[i] = a->pos[i].u.i;
    }
    int64_t start = a->npos == 1 ? 0 : v[0], stop = a->npos == 1 ? v[0] : v[1], step = a->npos == 3 ? v[2] : 1;
    if (step == 0) return EV_ERR(ev, line, "range() arg 3 must not be zero");
    /* length without overflow */
    uint64_t n = 0;
    if (step > 0 && start < stop) n = ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
    else if (step < 0 && start > stop) n = ((uint64_t)start - (uint64_t)stop - 1) / (0 - (uint64_t)step) + 1;
    if (n > MAX_RANGE)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT,
                       "range() of %llu items: ranges are limited to %d items (as in Jinja2's sandbox)",
                       (unsigned long long)n, MAX_RANGE);
    int rc = ev_steps(ev, line, n);
    wl_jlist *l;
    if (!rc) rc = ev_new_list(ev, line, (size_t)n, &l);
    if (rc) return rc;
    l->kind = WL_JLIST_RANGE;
    l->range_start = start;
    l->range_stop = stop;
    l->range_step = step;
    /* in unsigned arithmetic: the items are in range, the products on the way may not be */
    for (uint64_t i = 0; i < n; i++) l->items[l->n++] = wl_jv_int((int64_t)((uint64_t)start + i * (uint64_t)step));
    *out = wl_jv_obj(&l->h);
    return 0;
}

/* dict(*args, **kwargs) and namespace(*args, **kwargs). */
static int g_dict(wl_jeval *ev, uint32_t line, const wl_jargs *a, uint8_t type, wl_jval *out)
{
    const char *name = type == WL_JT_DICT ? "dict" : "namespace";
    if (a->npos > 1) return EV_ERR(ev, line, "%s expected at most 1 argument, got %zu", name, a->npos);
    wl_jdict *d;
    int rc = ev_new_dict(ev, line, type, &d);
    if (rc) return rc;
    *out = wl_jv_obj(&d->h);
    if (a->npos) {
        wl_jval src = a->pos[0];
        if (src.type == WL_JT_UNDEFINED) {
            rc = ev_undefined_error(ev, line, src);
        } else if (src.type == WL_JT_DICT || src.type == WL_JT_NAMESPACE) {
            const wl_jdict *s = wl_jv_dict(src);
            for (size_t i = 0; i < s->n && !rc; i++)
                rc = ev_dict_set(ev, line, d, wl_jval_retain(s->ents[i].key), wl_jval_retain(s->ents[i].val));
        } else {
            wl_jval items;
            if ((rc = ev_iter_list(ev, line, src, &items)) == 0) {
                const wl_jlist *l = wl_jv_list(items);
                for (size_t i = 0; i < l->n && !rc; i++) {
                    wl_jval pair;
                    if ((rc = ev_iter_list(ev, line, l->items[i], &pair)) != 0) break;
                    const wl_jlist *p = wl_jv_list(pair);
                    if (p->n != 2)
                        rc = EV_ERR(ev, line, "%s update sequence element #%zu has length %zu; 2 is required", name, i, p->n);
                    else
                        rc = ev_dict_set(ev, line, d, wl_jval_retain(p->items[0]), wl_jval_retain(p->items[1]));
                    ev_release(ev, pair);
                }
                ev_release(ev, items);
            }
        }
    }
    for (size_t k = 0; k < a->nkw && !rc; k++) {
        wl_jval key;
        if ((rc = ev_new_str(ev, line, a->kwnames[k]->data, a->kwnames[k]->len, &key)) != 0) break;
        rc = ev_dict_set(ev, line, d, key, wl_jval_retain(a->kwvals[k]));
    }
    if (rc) ev_release(ev, *out);
    return rc;
}

static int g_raise_exception(wl_jeval *ev, uint32_t line, const wl_jargs *a)
{
    if (a->nkw || a->npos != 1) return EV_ERR(ev, line, "raise_exception() takes exactly one argument");
    wl_buf b = {0};
    int rc = ev_pystr(ev, line, a->pos[0], &b);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    rc = EV_ERR(ev, line, "%s", b.data ? b.data : "");
    wl_buf_free(&b);
    return rc;
}

/* datetime.now().strftime(fmt): C strftime in the "C" locale, after the conversions Python's
 * datetime does itself (%f microseconds, %z and %Z of a naive time). */
static int g_strftime_now(wl_jeval *ev, uint32_t line, const wl_jargs *a, wl_jval *out)
{
    if (a->nkw || a->npos != 1) return EV_ERR(ev, line, "strftime_now() takes exactly one argument");
    if (a->pos[0].type != WL_JT_STR) return ev_type_error(ev, line, "strftime() argument 1 must be str, not %s", a->pos[0]);
    const wl_jstr *fmt = wl_jv_str(a->pos[0]);
    if (fmt->len > 4096) return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "strftime_now(): format too long");
    wl_buf f = {0};
    int rc = 0;
    for (size_t i = 0; i < fmt->len && !rc; i++) {
        if (fmt->data[i] == '%' && i + 1 < fmt->len) {
            char c = fmt->data[i + 1];
            const char *rep = c == 'f' ? "000000" : (c == 'z' || c == 'Z') ? "" : NULL;
            if (rep) {
                if (wl_buf_puts(&f, rep) != 0) rc = ev_oom(ev, line);
                i++;
                continue;
            }
            if (wl_buf_append(&f, fmt->data + i, 2) != 0) rc = ev_oom(ev, line);
            i++;
            continue;
        }
        if (wl_buf_append(&f, fmt->data + i, 1) != 0) rc = ev_oom(ev, line);
    }
    if (rc || (f.len == 0 && wl_buf_append(&f, "", 0) != 0)) {
        wl_buf_free(&f);
        return rc ? rc : ev_oom(ev, line);
    }
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_locale) {
        wl_buf_free(&f);
        return ev_oom(ev, line);
    }
    size_t cap = f.len * 16 + 64;
    char *buf = malloc(cap);
    size_t n = 0;
    if (buf) n = strftime_l(buf, cap, f.data, &ev->now, c_locale);
    freelocale(c_locale);
    wl_buf_free(&f);
    if (!buf) return ev_oom(ev, line);
    if (!wl_utf8_valid(buf, n, NULL)) n = 0; /* a stray byte after '%' in the format */
    rc = ev_new_str(ev, line, buf, n, out);
    free(buf);
    return rc;
}

int wl_jglobal_call(wl_jeval *ev, uint32_t line, int fn, const wl_jargs *args, wl_jval *out)
{
    int rc = ev_steps(ev, line, 1);
    if (rc) return rc;
    switch (fn) {
    case WL_JFN_RANGE: return g_range(ev, line, args, out);
    case WL_JFN_NAMESPACE: return g_dict(ev, line, args, WL_JT_NAMESPACE, out);
    case WL_JFN_DICT: return g_dict(ev, line, args, WL_JT_DICT, out);
    case WL_JFN_RAISE_EXCEPTION: return g_raise_exception(ev, line, args);
    case WL_JFN_STRFTIME_NOW: return g_strftime_now(ev, line, args, out);
    default: return ev_fail(ev, line, WANDLER_ERR_INTERNAL, "unknown global function %d", fn);
    }
}
