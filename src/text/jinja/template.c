/* template.c - the public face of the interpreter (jinja.h): parse, render, context values. */
#include <stdlib.h>
#include <string.h>

#include "text/jinja/eval.h"
#include "text/jinja/jinja.h"
#include "text/jinja/parser.h"
#include "text/utf8.h"
#include "util/error.h"

struct wl_jinja_value {
    wl_jval v; /* a CALLER value (objects counted by this API only) */
};

int wl_jinja_parse(const char *src, size_t len, wl_jinja_template **out, wandler_error *err)
{
    if (!out || (!src && len)) {
        if (out) *out = NULL;
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_jinja_parse: NULL argument");
    }
    wl_error_clear(err);
    return wl_jparse(src ? src : "", len, out, err);
}

void wl_jinja_free(wl_jinja_template *tpl)
{
    wl_jtemplate_free(tpl);
}

wl_jinja_options wl_jinja_options_default(void)
{
    wl_jinja_options o;
    memset(&o, 0, sizeof o);
    o.max_output = (size_t)16 << 20;
    o.max_steps = 10000000;
    o.max_depth = 500;
    o.max_memory = (size_t)256 << 20;
    o.now = NULL;
    return o;
}

int wl_jinja_render(const wl_jinja_template *tpl, const wl_jinja_value *ctx, const wl_jinja_options *opts,
                    wl_buf *out, wandler_error *err)
{
    if (!tpl || !out) return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_jinja_render: NULL argument");
    if (ctx && ctx->v.type != WL_JT_DICT)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_jinja_render: the context must be a dict");
    wl_error_clear(err);

    wl_jeval ev;
    memset(&ev, 0, sizeof ev);
    ev.tpl = tpl;
    ev.err = err;
    wl_jinja_options d = wl_jinja_options_default();
    ev.opts = opts ? *opts : d;
    if (!ev.opts.max_output) ev.opts.max_output = d.max_output;
    if (!ev.opts.max_steps) ev.opts.max_steps = d.max_steps;
    if (!ev.opts.max_depth) ev.opts.max_depth = d.max_depth;
    if (!ev.opts.max_memory) ev.opts.max_memory = d.max_memory;
    ev.heap.max_bytes = ev.opts.max_memory;
    if (ev.opts.now) {
        ev.now = *ev.opts.now;
    } else {
        time_t t = time(NULL);
        localtime_r(&t, &ev.now);
    }

    /* The context's value of each name the template uses (borrowed). */
    wl_jval *ctxvals = malloc((tpl->nsyms ? tpl->nsyms : 1) * sizeof *ctxvals);
    if (!ctxvals) return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory while rendering the template");
    for (uint32_t i = 0; i < tpl->nsyms; i++) {
        const wl_jval *v = ctx ? wl_jdict_get_str(wl_jv_dict(ctx->v), tpl->syms[i].name, tpl->syms[i].len) : NULL;
        ctxvals[i] = v ? *v : wl_jv_absent();
    }
    ev.ctx = ctxvals;

    size_t start = out->len;
    int rc = wl_jeval_render(&ev, out);
    wl_jheap_sweep(&ev.heap);
    free(ctxvals);
    if (rc) {
        out->len = start;
        if (out->data) out->data[start] = '\0';
        if (!ev.code) rc = wl_error(err, rc, "rendering the template failed");
        return rc;
    }
    if (!out->data && wl_buf_append(out, "", 0) != 0)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory while rendering the template");
    return WANDLER_OK;
}

/* ---- context values ------------------------------------------------------------------ */

static wl_jinja_value *box(wl_jval v)
{
    wl_jinja_value *b = malloc(sizeof *b);
    if (!b) {
        wl_jval_release_caller(v);
        return NULL;
    }
    b->v = v;
    return b;
}

wl_jinja_value *wl_jinja_value_none(void) { return box(wl_jv_none()); }
wl_jinja_value *wl_jinja_value_bool(int b) { return box(wl_jv_bool(b)); }
wl_jinja_value *wl_jinja_value_int(int64_t i) { return box(wl_jv_int(i)); }
wl_jinja_value *wl_jinja_value_float(double f) { return box(wl_jv_float(f)); }

wl_jinja_value *wl_jinja_value_string(const char *s, size_t len)
{
    if ((!s && len) || !wl_utf8_valid(s ? s : "", len, NULL)) return NULL;
    wl_jstr *str = wl_jstr_new(NULL, s ? s : "", len);
    return str ? box(wl_jv_obj(&str->h)) : NULL;
}

wl_jinja_value *wl_jinja_value_list(void)
{
    wl_jlist *l = wl_jlist_new(NULL, 0);
    return l ? box(wl_jv_obj(&l->h)) : NULL;
}

wl_jinja_value *wl_jinja_value_dict(void)
{
    wl_jdict *d = wl_jdict_new(NULL, WL_JT_DICT);
    return d ? box(wl_jv_obj(&d->h)) : NULL;
}

int wl_jinja_list_append(wl_jinja_value *list, wl_jinja_value *item)
{
    if (!list || list->v.type != WL_JT_LIST || !item) {
        wl_jinja_value_free(item);
        return WANDLER_ERR_INVALID_ARGUMENT;
    }
    wl_jval v = item->v;
    free(item);
    return wl_jlist_push(NULL, wl_jv_list(list->v), v) == 0 ? WANDLER_OK : WANDLER_ERR_OUT_OF_MEMORY;
}

int wl_jinja_dict_set(wl_jinja_value *dict, const char *key, wl_jinja_value *item)
{
    if (!dict || dict->v.type != WL_JT_DICT || !item || !key || !wl_utf8_valid(key, strlen(key), NULL)) {
        wl_jinja_value_free(item);
        return WANDLER_ERR_INVALID_ARGUMENT;
    }
    wl_jstr *k = wl_jstr_new(NULL, key, strlen(key));
    if (!k) {
        wl_jinja_value_free(item);
        return WANDLER_ERR_OUT_OF_MEMORY;
    }
    wl_jval v = item->v;
    free(item);
    return wl_jdict_set(NULL, wl_jv_dict(dict->v), wl_jv_obj(&k->h), v) == 0 ? WANDLER_OK
                                                                             : WANDLER_ERR_OUT_OF_MEMORY;
}

void wl_jinja_value_free(wl_jinja_value *v)
{
    if (!v) return;
    wl_jval_release_caller(v->v);
    free(v);
}
