/* eval.c - running a parsed template: statements, expressions, scopes, macros, calls. */
#include "text/jinja/eval.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/lexer.h"

/* ---- errors and budgets -------------------------------------------------------------- */

int ev_fail(wl_jeval *ev, uint32_t line, int code, const char *fmt, ...)
{
    if (ev->code) return ev->code;
    char msg[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ev->code = code;
    if (line) wl_error(ev->err, code, "line %u: %s", (unsigned)line, msg);
    else wl_error(ev->err, code, "%s", msg);
    return code;
}

int ev_oom(wl_jeval *ev, uint32_t line)
{
    if (ev->heap.over_budget)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "the template used more than %zu bytes of memory",
                       ev->opts.max_memory);
    return ev_fail(ev, line, WANDLER_ERR_OUT_OF_MEMORY, "out of memory while rendering the template");
}

int ev_steps(wl_jeval *ev, uint32_t line, uint64_t n)
{
    ev->steps += n;
    if (ev->steps > ev->opts.max_steps)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "the template took more than %llu evaluation steps",
                       (unsigned long long)ev->opts.max_steps);
    return 0;
}

static const char *type_noun(uint8_t type)
{
    switch (type) {
    case WL_JT_NONE: return "NoneType";
    case WL_JT_BOOL: return "bool";
    case WL_JT_INT: return "int";
    case WL_JT_FLOAT: return "float";
    case WL_JT_STR: return "str";
    case WL_JT_LIST: return "list";
    case WL_JT_DICT: return "dict";
    case WL_JT_NAMESPACE: return "Namespace";
    case WL_JT_MACRO: return "Macro";
    case WL_JT_LOOP: return "LoopContext";
    default: return "object";
    }
}

int ev_undefined_error(wl_jeval *ev, uint32_t line, wl_jval u)
{
    const wl_jnode *n = u.u.p;
    if (u.aux == WL_JUNDEF_AUX_PARAM && n) {
        const uint32_t *sym = u.u.p;
        return EV_ERR(ev, line, "parameter '%s' was not provided", ev->tpl->syms[*sym].name);
    }
    if (!n) return EV_ERR(ev, line, "a value is undefined");
    if (u.sub == WL_JUNDEF_UNSAFE && n->kind == WL_N_GETATTR)
        return EV_ERR(ev, line, "access to attribute '%s' of '%s' object is unsafe", n->str->data, type_noun(u.aux));
    switch (n->kind) {
    case WL_N_NAME: return EV_ERR(ev, line, "'%s' is undefined", ev->tpl->syms[n->sym].name);
    case WL_N_GETATTR:
        return EV_ERR(ev, line, "'%s object' has no attribute '%s'", type_noun(u.aux), n->str->data);
    case WL_N_GETITEM:
        if (n->b && n->b->kind == WL_N_CONST && n->b->val.type == WL_JT_STR)
            return EV_ERR(ev, line, "'%s object' has no attribute '%s'", type_noun(u.aux), wl_jv_str(n->b->val)->data);
        if (n->b && n->b->kind == WL_N_CONST && n->b->val.type == WL_JT_INT)
            return EV_ERR(ev, line, "'%s object' has no element %lld", type_noun(u.aux), (long long)n->b->val.u.i);
        return EV_ERR(ev, line, "'%s object' has no such item", type_noun(u.aux));
    case WL_N_COND: return EV_ERR(ev, line, "the conditional expression had no else branch and its test was false");
    default: return EV_ERR(ev, line, "a value is undefined");
    }
}

int ev_type_error(wl_jeval *ev, uint32_t line, const char *fmt_with_type, wl_jval v)
{
    if (v.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, v);
    char msg[160];
    snprintf(msg, sizeof msg, fmt_with_type, wl_jv_type_name(v));
    return EV_ERR(ev, line, "%s", msg);
}

/* ---- making values ------------------------------------------------------------------- */

int ev_check_str_size(wl_jeval *ev, uint32_t line, size_t len)
{
    if (len > ev->opts.max_output)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "the template built a string longer than %zu bytes",
                       ev->opts.max_output);
    return 0;
}

int ev_new_str(wl_jeval *ev, uint32_t line, const char *s, size_t len, wl_jval *out)
{
    int rc = ev_check_str_size(ev, line, len);
    if (rc) return rc;
    wl_jstr *str = wl_jstr_new(&ev->heap, s, len);
    if (!str) return ev_oom(ev, line);
    *out = wl_jv_obj(&str->h);
    return 0;
}

int ev_str_from_buf(wl_jeval *ev, uint32_t line, wl_buf *b, wl_jval *out)
{
    int rc = ev_new_str(ev, line, b->data ? b->data : "", b->len, out);
    wl_buf_free(b);
    return rc;
}

int ev_new_list(wl_jeval *ev, uint32_t line, size_t cap, wl_jlist **out)
{
    *out = wl_jlist_new(&ev->heap, cap);
    return *out ? 0 : ev_oom(ev, line);
}

int ev_list_push(wl_jeval *ev, uint32_t line, wl_jlist *l, wl_jval v)
{
    return wl_jlist_push(&ev->heap, l, v) == 0 ? 0 : ev_oom(ev, line);
}

int ev_new_dict(wl_jeval *ev, uint32_t line, uint8_t type, wl_jdict **out)
{
    *out = wl_jdict_new(&ev->heap, type);
    return *out ? 0 : ev_oom(ev, line);
}

int ev_dict_set(wl_jeval *ev, uint32_t line, wl_jdict *d, wl_jval key, wl_jval val)
{
    wl_jval k = key;
    if (!wl_jv_hashable(k)) {
        int rc = ev_type_error(ev, line, "unhashable type: '%s'", k);
        ev_release(ev, key);
        ev_release(ev, val);
        return rc;
    }
    int rc = wl_jdict_set(&ev->heap, d, key, val);
    return rc == 0 ? 0 : ev_oom(ev, line);
}

/* ---- scopes -------------------------------------------------------------------------- */

wl_jval ev_lookup(wl_jeval *ev, uint32_t sym)
{
    for (wl_jframe *f = ev->frame; f; f = f->parent) {
        wl_jval *v = wl_jframe_find(f, sym);
        if (v) return wl_jval_retain(*v);
    }
    if (ev->ctx && ev->ctx[sym].type != WL_JT_ABSENT) return ev->ctx[sym];
    uint8_t g = ev->tpl->syms[sym].global;
    if (g) return wl_jv_func(g);
    return wl_jv_absent();
}

/* Makes a new scope (whose parent is `parent`) current. The caller keeps the previous
 * current frame and gives it back with pop_frame(). */
static int push_frame(wl_jeval *ev, uint32_t line, wl_jframe *parent)
{
    wl_jframe *f = wl_jframe_new(&ev->heap, parent);
    if (!f) return ev_oom(ev, line);
    ev->frame = f;
    return 0;
}

/* Ends the current scope: its variables are released (so closures over it cannot keep
 * cycles alive) and `saved` becomes current again. */
static void pop_frame(wl_jeval *ev, wl_jframe *saved)
{
    wl_jframe *f = ev->frame;
    wl_jframe_clear(&ev->heap, f);
    ev->frame = saved;
    ev_release(ev, wl_jv_obj(&f->h));
}

static int frame_set(wl_jeval *ev, uint32_t line, uint32_t sym, wl_jval v)
{
    return wl_jframe_set(&ev->heap, ev->frame, sym, v) == 0 ? 0 : ev_oom(ev, line);
}

/* ---- output -------------------------------------------------------------------------- */

static int out_check(wl_jeval *ev, uint32_t line)
{
    if (ev->out->len - ev->out_start > ev->opts.max_output)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "the template's output went past %zu bytes",
                       ev->opts.max_output);
    return 0;
}

/* Output redirected into macro results and {% set %} blocks is memory the render holds:
 * it counts against the memory budget until it becomes a string. */
static int out_account(wl_jeval *ev, uint32_t line, size_t grew)
{
    if (ev->out == ev->final_out) return 0;
    ev->captured += grew;
    if (ev->heap.bytes + ev->captured > ev->opts.max_memory)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "the template used more than %zu bytes of memory",
                       ev->opts.max_memory);
    return 0;
}

static int out_write(wl_jeval *ev, uint32_t line, const char *s, size_t n)
{
    if (ev->out->len - ev->out_start + n > ev->opts.max_output)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "the template's output went past %zu bytes",
                       ev->opts.max_output);
    if (wl_buf_append(ev->out, s, n) != 0) return ev_oom(ev, line);
    return out_account(ev, line, n);
}

static int out_value(wl_jeval *ev, uint32_t line, wl_jval v)
{
    if (v.type == WL_JT_STR) return out_write(ev, line, wl_jv_str(v)->data, wl_jv_str(v)->len);
    size_t before = ev->out->len;
    int rc = ev_pystr(ev, line, v, ev->out);
    if (!rc) rc = out_account(ev, line, ev->out->len - before);
    return rc ? rc : out_check(ev, line);
}

/* Makes buf the output; returns the previous one for end_redirect(). */
typedef struct saved_out {
    wl_buf *out;
    size_t start;
} saved_out;

static saved_out begin_redirect(wl_jeval *ev, wl_buf *buf)
{
    saved_out s = {ev->out, ev->out_start};
    ev->out = buf;
    ev->out_start = 0;
    return s;
}

static void end_redirect(wl_jeval *ev, saved_out s)
{
    ev->captured -= ev->out->len;
    ev->out = s.out;
    ev->out_start = s.start;
}

/* ---- expressions --------------------------------------------------------------------- */

static int eval(wl_jeval *ev, const wl_jnode *n, wl_jval *out);
static int exec_body(wl_jeval *ev, wl_jnode *const *body, uint32_t n);
static int call_macro(wl_jeval *ev, uint32_t line, wl_jmacro *m, const wl_jargs *args, wl_jval *out);

/* Collected call arguments (values owned here). */
typedef struct argvec {
    wl_jval *pos;
    size_t npos, pos_cap;
    wl_jstr **names;
    wl_jval *kw;
    size_t nkw, kw_cap;
    wl_jval keep; /* a value whose strings the names borrow (a **kwargs dict) */
} argvec;

static int argvec_pos(wl_jeval *ev, uint32_t line, argvec *a, wl_jval v)
{
    if (a->npos == a->pos_cap) {
        size_t cap = a->pos_cap ? a->pos_cap * 2 : 8;
        wl_jval *p = realloc(a->pos, cap * sizeof *p);
        if (!p) {
            ev_release(ev, v);
            return ev_oom(ev, line);
        }
        a->pos = p;
        a->pos_cap = cap;
    }
    a->pos[a->npos++] = v;
    return 0;
}

static int argvec_kw(wl_jeval *ev, uint32_t line, argvec *a, wl_jstr *name, wl_jval v)
{
    if (a->nkw == a->kw_cap) {
        size_t cap = a->kw_cap ? a->kw_cap * 2 : 8;
        wl_jval *k = realloc(a->kw, cap * sizeof *k);
        wl_jstr **nm = k ? realloc(a->names, cap * sizeof *nm) : NULL;
        if (k) a->kw = k;
        if (!k || !nm) {
            ev_release(ev, v);
            return ev_oom(ev, line);
        }
        a->names = nm;
        a->kw_cap = cap;
    }
    a->names[a->nkw] = name;
    a->kw[a->nkw++] = v;
    return 0;
}

static void argvec_free(wl_jeval *ev, argvec *a)
{
    for (size_t i = 0; i < a->npos; i++) ev_release(ev, a->pos[i]);
    for (size_t i = 0; i < a->nkw; i++) ev_release(ev, a->kw[i]);
    ev_release(ev, a->keep);
    free(a->pos);
    free(a->kw);
    free(a->names);
}

static wl_jargs argvec_args(const argvec *a)
{
    wl_jargs r = {a->pos, a->npos, a->names, a->kw, a->nkw};
    return r;
}

/* Evaluates the arguments of a CALL / FILTER / TEST node. */
static int eval_args(wl_jeval *ev, const wl_jnode *n, argvec *a)
{
    memset(a, 0, sizeof *a);
    a->keep = wl_jv_none();
    int rc;
    for (uint32_t i = 0; i < n->nkids; i++) {
        wl_jval v;
        if ((rc = eval(ev, n->kids[i], &v)) != 0) return rc;
        if ((rc = argvec_pos(ev, n->line, a, v)) != 0) return rc;
    }
    if (n->c) { /* *args */
        wl_jval v, items;
        if ((rc = eval(ev, n->c, &v)) != 0) return rc;
        rc = ev_iter_list(ev, n->line, v, &items);
        ev_release(ev, v);
        if (rc) return rc;
        const wl_jlist *l = wl_jv_list(items);
        for (size_t i = 0; i < l->n && !rc; i++) rc = argvec_pos(ev, n->line, a, wl_jval_retain(l->items[i]));
        ev_release(ev, items);
        if (rc) return rc;
    }
    for (uint32_t i = 0; i < n->nkids2; i++) {
        wl_jval v;
        if ((rc = eval(ev, n->kids2[i], &v)) != 0) return rc;
        if ((rc = argvec_kw(ev, n->line, a, n->names[i], v)) != 0) return rc;
    }
    if (n->d) { /* **kwargs */
        wl_jval v;
        if ((rc = eval(ev, n->d, &v)) != 0) return rc;
        a->keep = v;
        if (v.type != WL_JT_DICT) return ev_type_error(ev, n->line, "argument after ** must be a mapping, not %s", v);
        const wl_jdict *d = wl_jv_dict(v);
        for (size_t i = 0; i < d->n; i++) {
            if (d->ents[i].key.type != WL_JT_STR) return EV_ERR(ev, n->line, "keywords must be strings");
            rc = argvec_kw(ev, n->line, a, wl_jv_str(d->ents[i].key), wl_jval_retain(d->ents[i].val));
            if (rc) return rc;
        }
    }
    return 0;
}

int ev_bind(wl_jeval *ev, uint32_t line, const char *fname, const char *const *params, size_t nparams,
            const wl_jargs *args, wl_jval *bound)
{
    for (size_t i = 0; i < nparams; i++) bound[i] = wl_jv_absent();
    if (args->npos > nparams)
        return EV_ERR(ev, line, "%s() takes at most %zu argument%s (%zu given)", fname, nparams,
                      nparams == 1 ? "" : "s", args->npos);
    for (size_t i = 0; i < args->npos; i++) bound[i] = args->pos[i];
    for (size_t k = 0; k < args->nkw; k++) {
        const wl_jstr *name = args->kwnames[k];
        size_t i = 0;
        while (i < nparams && strcmp(params[i], name->data) != 0) i++;
        if (i == nparams) return EV_ERR(ev, line, "%s() got an unexpected keyword argument '%s'", fname, name->data);
        if (bound[i].type != WL_JT_ABSENT)
            return EV_ERR(ev, line, "%s() got multiple values for argument '%s'", fname, name->data);
        bound[i] = args->kwvals[k];
    }
    return 0;
}

static int call_with_args(wl_jeval *ev, const wl_jnode *n, argvec *a, wl_jval *out)
{
    wl_jargs args = argvec_args(a);
    const wl_jnode *callee = n->a;
    int rc;
    if (callee->kind == WL_N_GETATTR) {
        /* obj.method(...): call the method directly, without making a bound method. */
        wl_jval obj;
        if ((rc = eval(ev, callee->a, &obj)) != 0) return rc;
        if (obj.type == WL_JT_UNDEFINED) {
            rc = ev_undefined_error(ev, callee->line, obj);
        } else {
            int id = wl_jmethod_lookup(obj, callee->str->data, callee->str->len);
            if (id == WL_JM_UNSAFE) {
                rc = EV_ERR(ev, n->line, "access to attribute '%s' of '%s' object is unsafe", callee->str->data,
                            wl_jv_type_name(obj));
            } else if (id >= 0) {
                rc = wl_jmethod_call(ev, n->line, id, obj, &args, out);
            } else {
                wl_jval fn;
                rc = ev_getattr(ev, callee, callee->line, obj, callee->str->data, callee->str->len, &fn);
                if (!rc) {
                    rc = ev_call_value(ev, n->line, fn, &args, out);
                    ev_release(ev, fn);
                }
            }
        }
        ev_release(ev, obj);
        return rc;
    }
    wl_jval fn;
    if ((rc = eval(ev, callee, &fn)) != 0) return rc;
    rc = ev_call_value(ev, n->line, fn, &args, out);
    ev_release(ev, fn);
    return rc;
}

int ev_call_value(wl_jeval *ev, uint32_t line, wl_jval callee, const wl_jargs *args, wl_jval *out)
{
    switch (callee.type) {
    case WL_JT_MACRO: return call_macro(ev, line, (wl_jmacro *)callee.u.o, args, out);
    case WL_JT_FUNC: return wl_jglobal_call(ev, line, callee.sub, args, out);
    case WL_JT_METHOD: {
        const wl_jmethod *m = (const wl_jmethod *)callee.u.o;
        return wl_jmethod_call(ev, line, m->id, m->self, args, out);
    }
    case WL_JT_UNDEFINED: return ev_undefined_error(ev, line, callee);
    case WL_JT_LOOP: return EV_ERR(ev, line, "loop() is only for recursive loops, which are not supported");
    default: return ev_type_error(ev, line, "'%s' object is not callable", callee);
    }
}

static int eval_call(wl_jeval *ev, const wl_jnode *n, wl_jval caller, wl_jval *out)
{
    argvec a;
    int rc = eval_args(ev, n, &a);
    if (!rc && caller.type != WL_JT_ABSENT) /* {% call %}: the body goes in as `caller=` */
        rc = argvec_kw(ev, n->line, &a, ev->tpl->caller_name, wl_jval_retain(caller));
    if (!rc) rc = call_with_args(ev, n, &a, out);
    argvec_free(ev, &a);
    return rc;
}

static int eval_filter(wl_jeval *ev, const wl_jnode *n, wl_jval input, wl_jval *out)
{
    argvec a;
    int rc = eval_args(ev, n, &a);
    if (!rc) {
        wl_jargs args = argvec_args(&a);
        rc = wl_jfilter_call(ev, n->line, n->id, input, &args, out);
    }
    argvec_free(ev, &a);
    return rc;
}

/* Applies a filter chain whose innermost filter has no operand (blocks) to `input`. */
static int apply_filter_chain(wl_jeval *ev, const wl_jnode *chain, wl_jval input, wl_jval *out)
{
    if (!chain) {
        *out = wl_jval_retain(input);
        return 0;
    }
    wl_jval in;
    int rc = apply_filter_chain(ev, chain->a, input, &in);
    if (rc) return rc;
    rc = eval_filter(ev, chain, in, out);
    ev_release(ev, in);
    return rc;
}

static int eval_test(wl_jeval *ev, const wl_jnode *n, wl_jval *out)
{
    wl_jval v;
    int rc = eval(ev, n->a, &v);
    if (rc) return rc;
    argvec a;
    rc = eval_args(ev, n, &a);
    if (!rc) {
        wl_jargs args = argvec_args(&a);
        int result = 0;
        rc = wl_jtest_call(ev, n->line, n->id, v, &args, &result);
        *out = wl_jv_bool(result);
    }
    argvec_free(ev, &a);
    ev_release(ev, v);
    return rc;
}

static int eval_compare(wl_jeval *ev, const wl_jnode *n, wl_jval *out)
{
    wl_jval left;
    int rc = eval(ev, n->a, &left);
    if (rc) return rc;
    int result = 1;
    for (uint32_t i = 0; i < n->nkids && result; i++) {
        wl_jval right;
        if ((rc = eval(ev, n->kids[i], &right)) != 0) break;
        rc = ev_compare(ev, n->line, n->ops[i], left, right, &result);
        ev_release(ev, left);
        left = right;
        if (rc) break;
    }
    ev_release(ev, left);
    if (!rc) *out = wl_jv_bool(result);
    return rc;
}

static int eval_concat(wl_jeval *ev, const wl_jnode *n, wl_jval *out)
{
    wl_buf b = {0};
    int rc = 0;
    for (uint32_t i = 0; i < n->nkids && !rc; i++) {
        wl_jval v;
        if ((rc = eval(ev, n->kids[i], &v)) != 0) break;
        rc = ev_pystr(ev, n->line, v, &b);
        ev_release(ev, v);
        if (!rc) rc = ev_check_str_size(ev, n->line, b.len);
    }
    if (!rc) rc = ev_charge(ev, n->line, b.len);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, n->line, &b, out);
}

static int eval_sequence(wl_jeval *ev, const wl_jnode *n, uint8_t kind, wl_jval *out)
{
    wl_jlist *l;
    int rc = ev_new_list(ev, n->line, n->nkids, &l);
    if (rc) return rc;
    l->kind = kind;
    for (uint32_t i = 0; i < n->nkids && !rc; i++) {
        wl_jval v;
        if ((rc = eval(ev, n->kids[i], &v)) == 0) rc = ev_list_push(ev, n->line, l, v);
    }
    *out = wl_jv_obj(&l->h);
    if (rc) ev_release(ev, *out);
    return rc;
}

static int eval_dict(wl_jeval *ev, const wl_jnode *n, wl_jval *out)
{
    wl_jdict *d;
    int rc = ev_new_dict(ev, n->line, WL_JT_DICT, &d);
    if (rc) return rc;
    for (uint32_t i = 0; i < n->nkids && !rc; i++) {
        wl_jval k, v;
        if ((rc = eval(ev, n->kids[i], &k)) != 0) break;
        if ((rc = eval(ev, n->kids2[i], &v)) != 0) {
            ev_release(ev, k);
            break;
        }
        rc = ev_dict_set(ev, n->line, d, k, v);
    }
    *out = wl_jv_obj(&d->h);
    if (rc) ev_release(ev, *out);
    return rc;
}

static int eval_getitem(wl_jeval *ev, const wl_jnode *n, wl_jval obj, wl_jval *out)
{
    int rc;
    if (n->b->kind == WL_N_SLICE) {
        const wl_jnode *s = n->b;
        wl_jval parts[3] = {wl_jv_none(), wl_jv_none(), wl_jv_none()};
        const wl_jnode *pn[3] = {s->a, s->b, s->c};
        rc = 0;
        for (int i = 0; i < 3 && !rc; i++)
            if (pn[i]) rc = eval(ev, pn[i], &parts[i]);
        if (!rc) {
            if (obj.type == WL_JT_UNDEFINED) rc = ev_undefined_error(ev, n->line, obj);
            else rc = ev_slice(ev, n->line, obj, parts[0], parts[1], parts[2], out);
        }
        for (int i = 0; i < 3; i++) ev_release(ev, parts[i]);
        return rc;
    }
    wl_jval key;
    if ((rc = eval(ev, n->b, &key)) != 0) return rc;
    rc = ev_getitem(ev, n, n->line, obj, key, out);
    ev_release(ev, key);
    return rc;
}

static int eval(wl_jeval *ev, const wl_jnode *n, wl_jval *out)
{
    int rc;
    if (++ev->depth > ev->opts.max_depth) {
        ev->depth--;
        return ev_fail(ev, n->line, WANDLER_ERR_TEMPLATE_LIMIT, "evaluation nested deeper than %u levels",
                       (unsigned)ev->opts.max_depth);
    }
    if ((rc = ev_steps(ev, n->line, 1)) != 0) {
        ev->depth--;
        return rc;
    }
    wl_jval a, b;
    switch (n->kind) {
    case WL_N_CONST: *out = n->val; break;
    case WL_N_NAME:
        *out = ev_lookup(ev, n->sym);
        if (out->type == WL_JT_ABSENT) *out = wl_jv_undefined_at(n, WL_JUNDEF_PLAIN, 0);
        break;
    case WL_N_GETATTR:
        if ((rc = eval(ev, n->a, &a)) != 0) break;
        rc = ev_getattr(ev, n, n->line, a, n->str->data, n->str->len, out);
        ev_release(ev, a);
        break;
    case WL_N_GETITEM:
        if ((rc = eval(ev, n->a, &a)) != 0) break;
        rc = eval_getitem(ev, n, a, out);
        ev_release(ev, a);
        break;
    case WL_N_CALL: rc = eval_call(ev, n, wl_jv_absent(), out); break;
    case WL_N_FILTER:
        if ((rc = eval(ev, n->a, &a)) != 0) break;
        rc = eval_filter(ev, n, a, out);
        ev_release(ev, a);
        break;
    case WL_N_TEST: rc = eval_test(ev, n, out); break;
    case WL_N_UNARY:
        if ((rc = eval(ev, n->a, &a)) != 0) break;
        if (n->op == WL_U_NOT) *out = wl_jv_bool(!wl_jv_truthy(a));
        else rc = ev_negate(ev, n->line, a, n->op == WL_U_POS, out);
        ev_release(ev, a);
        break;
    case WL_N_BINARY:
        if ((rc = eval(ev, n->a, &a)) != 0) break;
        if (n->op == WL_B_AND || n->op == WL_B_OR) {
            int t = wl_jv_truthy(a);
            if ((n->op == WL_B_AND) != t) {
                *out = a; /* and: a falsy; or: a truthy */
                break;
            }
            ev_release(ev, a);
            rc = eval(ev, n->b, out);
            break;
        }
        if ((rc = eval(ev, n->b, &b)) != 0) {
            ev_release(ev, a);
            break;
        }
        rc = ev_binary(ev, n->line, n->op, a, b, out);
        ev_release(ev, a);
        ev_release(ev, b);
        break;
    case WL_N_CONCAT: rc = eval_concat(ev, n, out); break;
    case WL_N_COMPARE: rc = eval_compare(ev, n, out); break;
    case WL_N_COND:
        if ((rc = eval(ev, n->a, &a)) != 0) break;
        {
            int t = wl_jv_truthy(a);
            ev_release(ev, a);
            if (t) rc = eval(ev, n->b, out);
            else if (n->c) rc = eval(ev, n->c, out);
            else *out = wl_jv_undefined_at(n, WL_JUNDEF_PLAIN, 0);
        }
        break;
    case WL_N_LIST: rc = eval_sequence(ev, n, WL_JLIST_LIST, out); break;
    case WL_N_TUPLE: rc = eval_sequence(ev, n, WL_JLIST_TUPLE, out); break;
    case WL_N_DICT: rc = eval_dict(ev, n, out); break;
    default: rc = ev_fail(ev, n->line, WANDLER_ERR_INTERNAL, "unexpected node %d in an expression", n->kind);
    }
    ev->depth--;
    return rc;
}

/* ---- assignment ---------------------------------------------------------------------- */

static int assign(wl_jeval *ev, const wl_jnode *target, wl_jval v)
{
    int rc;
    if (target->kind == WL_N_NAME) return frame_set(ev, target->line, target->sym, wl_jval_retain(v));
    if (target->kind == WL_N_NSREF) {
        wl_jval ns = ev_lookup(ev, target->sym);
        if (ns.type != WL_JT_NAMESPACE) {
            ev_release(ev, ns);
            return EV_ERR(ev, target->line, "cannot assign attribute on non-namespace object");
        }
        wl_jval key;
        rc = ev_new_str(ev, target->line, target->str->data, target->str->len, &key);
        if (!rc) rc = ev_dict_set(ev, target->line, wl_jv_dict(ns), key, wl_jval_retain(v));
        ev_release(ev, ns);
        return rc;
    }
    /* A tuple of targets: unpack. */
    wl_jval items;
    if ((rc = ev_iter_list(ev, target->line, v, &items)) != 0) return rc;
    const wl_jlist *l = wl_jv_list(items);
    if (l->n != target->nkids) {
        rc = l->n > target->nkids
                 ? EV_ERR(ev, target->line, "too many values to unpack (expected %u)", (unsigned)target->nkids)
                 : EV_ERR(ev, target->line, "not enough values to unpack (expected %u, got %zu)",
                          (unsigned)target->nkids, l->n);
    }
    for (uint32_t i = 0; i < target->nkids && !rc; i++) rc = assign(ev, target->kids[i], l->items[i]);
    ev_release(ev, items);
    return rc;
}

/* ---- statements ---------------------------------------------------------------------- */

/* Runs body with output into a fresh buffer and a new scope; returns the output string. */
static int capture(wl_jeval *ev, uint32_t line, wl_jnode *const *body, uint32_t nbody, wl_jval *out)
{
    wl_buf buf = {0};
    wl_jframe *saved = ev->frame;
    int rc = push_frame(ev, line, saved);
    if (rc) return rc;
    saved_out so = begin_redirect(ev, &buf);
    rc = exec_body(ev, body, nbody);
    end_redirect(ev, so);
    pop_frame(ev, saved);
    if (rc) {
        wl_buf_free(&buf);
        return rc;
    }
    return ev_str_from_buf(ev, line, &buf, out);
}

static int exec_for(wl_jeval *ev, const wl_jnode *n)
{
    wl_jval iterable, items;
    int rc = eval(ev, n->b, &iterable);
    if (rc) return rc;
    rc = ev_iter_list(ev, n->line, iterable, &items);
    ev_release(ev, iterable);
    if (rc) return rc;
    wl_jframe *saved = ev->frame;

    if (n->c) { /* for x in xs if cond: keep the items passing the test */
        wl_jlist *kept;
        if ((rc = ev_new_list(ev, n->line, 0, &kept)) != 0) goto done;
        const wl_jlist *all = wl_jv_list(items);
        for (size_t i = 0; i < all->n && !rc; i++) {
            if ((rc = ev_steps(ev, n->line, 1)) != 0) break;
            if ((rc = push_frame(ev, n->line, saved)) != 0) break;
            wl_jval t;
            rc = assign(ev, n->a, all->items[i]);
            if (!rc) rc = eval(ev, n->c, &t);
            pop_frame(ev, saved);
            if (rc) break;
            int keep = wl_jv_truthy(t);
            ev_release(ev, t);
            if (keep) rc = ev_list_push(ev, n->line, kept, wl_jval_retain(all->items[i]));
        }
        ev_release(ev, items);
        items = wl_jv_obj(&kept->h);
        if (rc) goto done;
    }

    const wl_jlist *l = wl_jv_list(items);
    if (l->n == 0) {
        if (n->nkids2) {
            if ((rc = push_frame(ev, n->line, saved)) != 0) goto done;
            rc = exec_body(ev, n->kids2, n->nkids2);
            pop_frame(ev, saved);
        }
        goto done;
    }
    wl_jloop *loop = wl_jloop_new(&ev->heap, items);
    if (!loop) {
        rc = ev_oom(ev, n->line);
        goto done;
    }
    for (size_t i = 0; i < l->n; i++) {
        if ((rc = ev_steps(ev, n->line, 1)) != 0) break;
        if ((rc = push_frame(ev, n->line, saved)) != 0) break;
        loop->index0 = (int64_t)i;
        rc = frame_set(ev, n->line, ev->tpl->sym_loop, wl_jval_retain(wl_jv_obj(&loop->h)));
        if (!rc) rc = assign(ev, n->a, l->items[i]);
        if (!rc) rc = exec_body(ev, n->kids, n->nkids);
        pop_frame(ev, saved);
        if (rc == WL_JFLOW_CONTINUE) rc = 0;
        else if (rc == WL_JFLOW_BREAK) {
            rc = 0;
            break;
        }
        if (rc) break;
    }
    ev_release(ev, wl_jv_obj(&loop->h));
done:
    ev_release(ev, items);
    return rc;
}

static int exec_macro_def(wl_jeval *ev, const wl_jnode *n)
{
    wl_jmacro *m = wl_jmacro_new(&ev->heap, n, ev->frame);
    if (!m) return ev_oom(ev, n->line);
    return frame_set(ev, n->line, n->macro->name_sym, wl_jv_obj(&m->h));
}

static int exec_call_block(wl_jeval *ev, const wl_jnode *n)
{
    wl_jmacro *caller = wl_jmacro_new(&ev->heap, n, ev->frame);
    if (!caller) return ev_oom(ev, n->line);
    wl_jval cv = wl_jv_obj(&caller->h), result;
    int rc = eval_call(ev, n->a, cv, &result);
    ev_release(ev, cv);
    if (rc) return rc;
    rc = out_value(ev, n->line, result);
    ev_release(ev, result);
    return rc;
}

static int exec_with(wl_jeval *ev, const wl_jnode *n)
{
    enum { MAX_WITH = 64 };
    uint32_t npairs = n->nkids2 / 2, got = 0;
    wl_jval vals[MAX_WITH];
    if (npairs > MAX_WITH) return EV_ERR(ev, n->line, "too many {%% with %%} assignments");
    int rc = 0;
    /* The values are computed in the enclosing scope, before any target is assigned. */
    while (got < npairs && !rc) {
        rc = eval(ev, n->kids2[2 * got + 1], &vals[got]);
        if (!rc) got++;
    }
    wl_jframe *saved = ev->frame;
    if (!rc) rc = push_frame(ev, n->line, saved);
    if (!rc) {
        for (uint32_t i = 0; i < npairs && !rc; i++) rc = assign(ev, n->kids2[2 * i], vals[i]);
        if (!rc) rc = exec_body(ev, n->kids, n->nkids);
        pop_frame(ev, saved);
    }
    for (uint32_t i = 0; i < got; i++) ev_release(ev, vals[i]);
    return rc;
}

static int exec_stmt(wl_jeval *ev, const wl_jnode *n)
{
    int rc;
    wl_jval v, f;
    switch (n->kind) {
    case WL_N_TEXT: return out_write(ev, n->line, wl_jv_str(n->val)->data, wl_jv_str(n->val)->len);
    case WL_N_OUTPUT:
        if ((rc = eval(ev, n->a, &v)) != 0) return rc;
        rc = out_value(ev, n->line, v);
        ev_release(ev, v);
        return rc;
    case WL_N_IF:
        if ((rc = eval(ev, n->a, &v)) != 0) return rc;
        {
            int t = wl_jv_truthy(v);
            ev_release(ev, v);
            return t ? exec_body(ev, n->kids, n->nkids) : exec_body(ev, n->kids2, n->nkids2);
        }
    case WL_N_FOR: return exec_for(ev, n);
    case WL_N_SET:
        if ((rc = eval(ev, n->b, &v)) != 0) return rc;
        rc = assign(ev, n->a, v);
        ev_release(ev, v);
        return rc;
    case WL_N_SET_BLOCK:
        if ((rc = capture(ev, n->line, n->kids, n->nkids, &v)) != 0) return rc;
        rc = apply_filter_chain(ev, n->b, v, &f);
        ev_release(ev, v);
        if (rc) return rc;
        rc = assign(ev, n->a, f);
        ev_release(ev, f);
        return rc;
    case WL_N_MACRO: return exec_macro_def(ev, n);
    case WL_N_CALL_BLOCK: return exec_call_block(ev, n);
    case WL_N_FILTER_BLOCK:
        if ((rc = capture(ev, n->line, n->kids, n->nkids, &v)) != 0) return rc;
        rc = apply_filter_chain(ev, n->a, v, &f);
        ev_release(ev, v);
        if (rc) return rc;
        rc = out_value(ev, n->line, f);
        ev_release(ev, f);
        return rc;
    case WL_N_WITH: return exec_with(ev, n);
    case WL_N_BREAK: return WL_JFLOW_BREAK;
    case WL_N_CONTINUE: return WL_JFLOW_CONTINUE;
    default: return ev_fail(ev, n->line, WANDLER_ERR_INTERNAL, "unexpected node %d in a statement", n->kind);
    }
}

static int exec_body(wl_jeval *ev, wl_jnode *const *body, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const wl_jnode *s = body[i];
        if (++ev->depth > ev->opts.max_depth) {
            ev->depth--;
            return ev_fail(ev, s->line, WANDLER_ERR_TEMPLATE_LIMIT, "evaluation nested deeper than %u levels",
                           (unsigned)ev->opts.max_depth);
        }
        int rc = ev_steps(ev, s->line, 1);
        if (!rc) rc = exec_stmt(ev, s);
        ev->depth--;
        if (rc) return rc;
    }
    return 0;
}

/* ---- macros -------------------------------------------------------------------------- */

static int call_macro(wl_jeval *ev, uint32_t line, wl_jmacro *m, const wl_jargs *args, wl_jval *out)
{
    const wl_jnode *def = m->node;
    const wl_jmacro_info *info = def->macro;
    const struct wl_jinja_template *tpl = ev->tpl;
    const char *name = tpl->syms[info->name_sym].name;
    int rc;

    /* Calls nest through the expression that makes them: count them with some weight, since
     * each one also costs a body's worth of stack. */
    if (ev->depth + 8 > ev->opts.max_depth)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "macro calls nested deeper than %u levels",
                       (unsigned)ev->opts.max_depth);
    ev->depth += 8;

    wl_jframe *saved = ev->frame;
    rc = push_frame(ev, line, m->closure); /* the macro's scope: inside its definition's */
    if (rc) {
        ev->depth -= 8;
        return rc;
    }

    wl_jlist *varargs = NULL;
    wl_jdict *kwargs = NULL;
    uint8_t given[64] = {0}; /* the parser allows at most 64 parameters */
    if (args->npos > info->nparams && !info->uses_varargs) {
        rc = EV_ERR(ev, line, "macro '%s' takes not more than %u argument(s)", name, (unsigned)info->nparams);
        goto out;
    }
    for (size_t i = 0; i < args->npos && !rc; i++) {
        if (i < info->nparams) {
            rc = frame_set(ev, line, info->params[i], wl_jval_retain(args->pos[i]));
            given[i] = 1;
        } else {
            if (!varargs && (rc = ev_new_list(ev, line, 0, &varargs)) != 0) break;
            rc = ev_list_push(ev, line, varargs, wl_jval_retain(args->pos[i]));
        }
    }
    for (size_t k = 0; k < args->nkw && !rc; k++) {
        const wl_jstr *kn = args->kwnames[k];
        uint32_t i = 0;
        while (i < info->nparams && strcmp(tpl->syms[info->params[i]].name, kn->data) != 0) i++;
        if (i < info->nparams) {
            if (given[i]) {
                rc = EV_ERR(ev, line, "macro '%s' got multiple values for argument '%s'", name, kn->data);
                break;
            }
            given[i] = 1;
            rc = frame_set(ev, line, info->params[i], wl_jval_retain(args->kwvals[k]));
        } else if (strcmp(kn->data, "caller") == 0 && info->uses_caller) {
            rc = frame_set(ev, line, tpl->sym_caller, wl_jval_retain(args->kwvals[k]));
        } else if (info->uses_kwargs) {
            wl_jval key;
            if (!kwargs && (rc = ev_new_dict(ev, line, WL_JT_DICT, &kwargs)) != 0) break;
            rc = ev_new_str(ev, line, kn->data, kn->len, &key);
            if (!rc) rc = ev_dict_set(ev, line, kwargs, key, wl_jval_retain(args->kwvals[k]));
        } else {
            rc = EV_ERR(ev, line, "macro '%s' takes no keyword argument '%s'", name, kn->data);
        }
    }
    /* Defaults for the rest, evaluated in the macro's scope (they may use earlier params). */
    for (uint32_t i = 0; i < info->nparams && !rc; i++) {
        if (given[i]) continue;
        wl_jval v;
        if (info->defaults[i]) {
            if ((rc = eval(ev, info->defaults[i], &v)) != 0) break;
        } else {
            v = wl_jv_undefined_at(&info->params[i], WL_JUNDEF_PLAIN, WL_JUNDEF_AUX_PARAM);
        }
        rc = frame_set(ev, line, info->params[i], v);
    }
    if (!rc && info->uses_varargs) {
        if (!varargs) rc = ev_new_list(ev, line, 0, &varargs);
        if (!rc) {
            varargs->kind = WL_JLIST_TUPLE;
            rc = frame_set(ev, line, tpl->sym_varargs, wl_jv_obj(&varargs->h));
            varargs = NULL;
        }
    }
    if (!rc && info->uses_kwargs) {
        if (!kwargs) rc = ev_new_dict(ev, line, WL_JT_DICT, &kwargs);
        if (!rc) {
            rc = frame_set(ev, line, tpl->sym_kwargs, wl_jv_obj(&kwargs->h));
            kwargs = NULL;
        }
    }
    if (!rc) {
        wl_buf buf = {0};
        saved_out so = begin_redirect(ev, &buf);
        rc = exec_body(ev, def->kids, def->nkids);
        end_redirect(ev, so);
        if (rc) wl_buf_free(&buf);
        else rc = ev_str_from_buf(ev, line, &buf, out);
    }
out:
    if (varargs) ev_release(ev, wl_jv_obj(&varargs->h));
    if (kwargs) ev_release(ev, wl_jv_obj(&kwargs->h));
    pop_frame(ev, saved);
    ev->depth -= 8;
    return rc;
}

/* ---- rendering ----------------------------------------------------------------------- */

int wl_jeval_render(wl_jeval *ev, wl_buf *out)
{
    ev->out = out;
    ev->out_start = out->len;
    ev->final_out = out;
    wl_jframe *root = wl_jframe_new(&ev->heap, NULL);
    if (!root) return ev_oom(ev, 0);
    ev->frame = root;
    int rc = exec_body(ev, ev->tpl->body, ev->tpl->nbody);
    wl_jframe_clear(&ev->heap, ev->frame);
    ev_release(ev, wl_jv_obj(&ev->frame->h));
    ev->frame = NULL;
    if (rc < 0) rc = ev_fail(ev, 0, WANDLER_ERR_INTERNAL, "break or continue outside of a loop");
    return rc;
}
