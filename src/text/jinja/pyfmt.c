/* pyfmt.c - values as Python prints them: str(), repr(), float repr, json.dumps(). */
#include "text/jinja/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/ustr.h"

enum { MAX_PRINT_DEPTH = 200 };

/* Python's repr(float): the shortest digits that read back as the same double, in fixed
 * notation when the decimal exponent is in [-4, 16), else as d.ddde+XX. */
void wl_jfmt_float(double f, char *buf)
{
    if (isnan(f)) {
        strcpy(buf, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(buf, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        strcpy(buf, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX */
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp10 = atoi(p + 1);
    int decpt = exp10 + 1; /* value = 0.digits * 10^decpt */
    char *o = buf;
    if (neg) *o++ = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -decpt; i++) *o++ = '0';
            for (int i = 0; i < nd; i++) *o++ = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++) *o++ = digits[i];
            for (int i = nd; i < decpt; i++) *o++ = '0';
            *o++ = '.';
            *o++ = '0';
        } else {
            for (int i = 0; i < decpt; i++) *o++ = digits[i];
            *o++ = '.';
            for (int i = decpt; i < nd; i++) *o++ = digits[i];
        }
        *o = '\0';
        return;
    }
    *o++ = digits[0];
    if (nd > 1) {
        *o++ = '.';
        for (int i = 1; i < nd; i++) *o++ = digits[i];
    }
    int e = decpt - 1;
    sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

static int put(wl_jeval *ev, uint32_t line, wl_buf *b, const char *s, size_t n)
{
    return wl_buf_append(b, s, n) == 0 ? 0 : ev_oom(ev, line);
}
static int puts_(wl_jeval *ev, uint32_t line, wl_buf *b, const char *s) { return put(ev, line, b, s, strlen(s)); }

static int repr_depth(wl_jeval *ev, uint32_t line, wl_jval v, wl_buf *b, int as_repr, int depth);

static int repr_items(wl_jeval *ev, uint32_t line, const wl_jlist *l, wl_buf *b, int depth)
{
    int rc = ev_steps(ev, line, l->n);
    for (size_t i = 0; i < l->n && !rc; i++) {
        if (i) rc = put(ev, line, b, ", ", 2);
        if (!rc) rc = repr_depth(ev, line, l->items[i], b, 1, depth + 1);
        if (!rc) rc = ev_check_str_size(ev, line, b->len);
    }
    return rc;
}

static int repr_dict(wl_jeval *ev, uint32_t line, const wl_jdict *d, wl_buf *b, int depth)
{
    int rc = ev_steps(ev, line, d->n);
    if (!rc) rc = put(ev, line, b, "{", 1);
    for (size_t i = 0; i < d->n && !rc; i++) {
        if (i) rc = put(ev, line, b, ", ", 2);
        if (!rc) rc = repr_depth(ev, line, d->ents[i].key, b, 1, depth + 1);
        if (!rc) rc = put(ev, line, b, ": ", 2);
        if (!rc) rc = repr_depth(ev, line, d->ents[i].val, b, 1, depth + 1);
        if (!rc) rc = ev_check_str_size(ev, line, b->len);
    }
    return rc ? rc : put(ev, line, b, "}", 1);
}

static const char *func_repr(int id)
{
    switch (id) {
    case WL_JFN_RANGE: return "<function safe_range>"; /* the sandbox's wrapper */
    case WL_JFN_NAMESPACE: return "<class 'jinja2.utils.Namespace'>";
    case WL_JFN_DICT: return "<class 'dict'>";
    case WL_JFN_RAISE_EXCEPTION: return "<function raise_exception>";
    case WL_JFN_STRFTIME_NOW: return "<function strftime_now>";
    default: return "<function>";
    }
}

static int repr_depth(wl_jeval *ev, uint32_t line, wl_jval v, wl_buf *b, int as_repr, int depth)
{
    char tmp[128]; /* fits the longest fixed text plus a method name and two 20-digit numbers */
    int rc;
    if (depth > MAX_PRINT_DEPTH)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "values nested too deeply to print");
    switch (v.type) {
    case WL_JT_UNDEFINED: return as_repr ? puts_(ev, line, b, "Undefined") : 0;
    case WL_JT_NONE: return puts_(ev, line, b, "None");
    case WL_JT_BOOL: return puts_(ev, line, b, v.u.i ? "True" : "False");
    case WL_JT_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        return puts_(ev, line, b, tmp);
    case WL_JT_FLOAT:
        wl_jfmt_float(v.u.f, tmp);
        return puts_(ev, line, b, tmp);
    case WL_JT_FUNC: return puts_(ev, line, b, func_repr(v.sub));
    case WL_JT_STR: {
        const wl_jstr *s = wl_jv_str(v);
        if (!as_repr) return put(ev, line, b, s->data, s->len);
        if ((rc = ev_charge(ev, line, s->len)) != 0) return rc;
        return wl_ju_repr(b, s->data, s->len) == 0 ? 0 : ev_oom(ev, line);
    }
    case WL_JT_LIST: {
        const wl_jlist *l = wl_jv_list(v);
        switch (l->kind) {
        case WL_JLIST_TUPLE:
            rc = put(ev, line, b, "(", 1);
            if (!rc) rc = repr_items(ev, line, l, b, depth);
            if (!rc && l->n == 1) rc = put(ev, line, b, ",", 1);
            return rc ? rc : put(ev, line, b, ")", 1);
        case WL_JLIST_RANGE:
            if (l->range_step == 1)
                snprintf(tmp, sizeof tmp, "range(%lld, %lld)", (long long)l->range_start, (long long)l->range_stop);
            else
                snprintf(tmp, sizeof tmp, "range(%lld, %lld, %lld)", (long long)l->range_start,
                         (long long)l->range_stop, (long long)l->range_step);
            return puts_(ev, line, b, tmp);
        case WL_JLIST_DICT_ITEMS: rc = puts_(ev, line, b, "dict_items(["); break;
        case WL_JLIST_DICT_KEYS: rc = puts_(ev, line, b, "dict_keys(["); break;
        case WL_JLIST_DICT_VALUES: rc = puts_(ev, line, b, "dict_values(["); break;
        case WL_JLIST_GENERATOR: return puts_(ev, line, b, "<generator object>");
        default: rc = put(ev, line, b, "[", 1); break;
        }
        if (!rc) rc = repr_items(ev, line, l, b, depth);
        if (rc) return rc;
        return puts_(ev, line, b, l->kind == WL_JLIST_LIST ? "]" : "])");
    }
    case WL_JT_DICT: return repr_dict(ev, line, wl_jv_dict(v), b, depth);
    case WL_JT_NAMESPACE:
        rc = puts_(ev, line, b, "<Namespace ");
        if (!rc) rc = repr_dict(ev, line, wl_jv_dict(v), b, depth);
        return rc ? rc : put(ev, line, b, ">", 1);
    case WL_JT_MACRO: {
        const wl_jmacro *m = (const wl_jmacro *)v.u.o;
        rc = puts_(ev, line, b, "<Macro '");
        if (!rc) rc = puts_(ev, line, b, ev->tpl->syms[m->node->macro->name_sym].name);
        return rc ? rc : puts_(ev, line, b, "'>");
    }
    case WL_JT_METHOD: {
        const wl_jmethod *m = (const wl_jmethod *)v.u.o;
        if (m->self.type == WL_JT_STR && !strcmp(wl_jmethod_name(m->id), "format"))
            return puts_(ev, line, b, "<function str.format>"); /* the sandbox's wrapper */
        if (m->self.type == WL_JT_LOOP) { /* a Python method of LoopContext */
            const wl_jloop *l = (const wl_jloop *)m->self.u.o;
            snprintf(tmp, sizeof tmp, "<bound method LoopContext.%s of <LoopContext %lld/%zu>>", wl_jmethod_name(m->id),
                     (long long)l->index0 + 1, wl_jv_list(l->items)->n);
            return puts_(ev, line, b, tmp);
        }
        snprintf(tmp, sizeof tmp, "<built-in method %s of %s object>", wl_jmethod_name(m->id), wl_jv_type_name(m->self));
        return puts_(ev, line, b, tmp);
    }
    case WL_JT_LOOP: {
        const wl_jloop *l = (const wl_jloop *)v.u.o;
        snprintf(tmp, sizeof tmp, "<LoopContext %lld/%zu>", (long long)l->index0 + 1, wl_jv_list(l->items)->n);
        return puts_(ev, line, b, tmp);
    }
    default: return puts_(ev, line, b, "<object>");
    }
}

int ev_pystr(wl_jeval *ev, uint32_t line, wl_jval v, wl_buf *b)
{
    return repr_depth(ev, line, v, b, 0, 0);
}

int ev_pyrepr(wl_jeval *ev, uint32_t line, wl_jval v, wl_buf *b)
{
    return repr_depth(ev, line, v, b, 1, 0);
}

int ev_to_str(wl_jeval *ev, uint32_t line, wl_jval v, wl_jval *out)
{
    if (v.type == WL_JT_STR) {
        *out = wl_jval_retain(v);
        return 0;
    }
    wl_buf b = {0};
    int rc = ev_pystr(ev, line, v, &b);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

/* ---- json.dumps ---------------------------------------------------------------------- */

typedef struct json_opts {
    int ensure_ascii;
    const char *indent;
    size_t indent_len;
    const char *item_sep, *key_sep;
    size_t item_sep_len, key_sep_len;
    int sort_keys;
} json_opts;

static int json_string(wl_jeval *ev, uint32_t line, const char *s, size_t len, int ensure_ascii, wl_buf *b)
{
    static const char hex[] = "0123456789abcdef";
    int rc = ev_charge(ev, line, len);
    if (rc) return rc;
    if (wl_buf_reserve(b, len + 2) != 0 || wl_buf_append(b, "\"", 1) != 0) return ev_oom(ev, line);
    size_t run = 0; /* start of bytes copied as they are */
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        char esc[16];
        size_t n = 0, adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c < 0x20) {
            esc[0] = '\\';
            n = 2;
            switch (c) {
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                n = 6;
            }
        } else if (ensure_ascii && c >= 0x7F) {
            size_t j = i;
            uint32_t cp = wl_ju_next(s, len, &j);
            adv = j - i;
            uint32_t units[2];
            int nu = 1;
            units[0] = cp;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[0] = 0xD800 | (cp >> 10);
                units[1] = 0xDC00 | (cp & 0x3FF);
                nu = 2;
            }
            for (int k = 0; k < nu; k++) {
                esc[n++] = '\\';
                esc[n++] = 'u';
                for (int d = 3; d >= 0; d--) esc[n++] = hex[(units[k] >> (4 * d)) & 15];
            }
        }
        if (n) {
            if (wl_buf_append(b, s + run, i - run) != 0 || wl_buf_append(b, esc, n) != 0) return ev_oom(ev, line);
            i += adv;
            run = i;
        } else {
            i++;
        }
    }
    if (wl_buf_append(b, s + run, len - run) != 0 || wl_buf_append(b, "\"", 1) != 0) return ev_oom(ev, line);
    return 0;
}

static int json_newline(wl_jeval *ev, uint32_t line, const json_opts *o, int level, wl_buf *b)
{
    if (put(ev, line, b, "\n", 1)) return ev->code;
    for (int i = 0; i < level; i++)
        if (put(ev, line, b, o->indent, o->indent_len)) return ev->code;
    return 0;
}

static int json_value(wl_jeval *ev, uint32_t line, wl_jval v, const json_opts *o, int level, wl_buf *b);

/* A dict key as JSON needs it: str as is; numbers, bools and None converted. */
static int json_key(wl_jeval *ev, uint32_t line, wl_jval k, const json_opts *o, wl_buf *b)
{
    char tmp[64];
    switch (k.type) {
    case WL_JT_STR: return json_string(ev, line, wl_jv_str(k)->data, wl_jv_str(k)->len, o->ensure_ascii, b);
    case WL_JT_BOOL: return puts_(ev, line, b, k.u.i ? "\"true\"" : "\"false\"");
    case WL_JT_NONE: return puts_(ev, line, b, "\"null\"");
    case WL_JT_INT: snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)k.u.i); return puts_(ev, line, b, tmp);
    case WL_JT_FLOAT: {
        char f[32];
        if (isnan(k.u.f)) strcpy(f, "NaN");
        else if (isinf(k.u.f)) strcpy(f, k.u.f < 0 ? "-Infinity" : "Infinity");
        else wl_jfmt_float(k.u.f, f);
        snprintf(tmp, sizeof tmp, "\"%s\"", f);
        return puts_(ev, line, b, tmp);
    }
    default: return ev_type_error(ev, line, "keys must be str, int, float, bool or None, not %s", k);
    }
}

static int cmp_for_sort(wl_jeval *ev, uint32_t line, wl_jval a, wl_jval b, int *c)
{
    return ev_order(ev, line, a, b, c);
}

static int json_dict(wl_jeval *ev, uint32_t line, const wl_jdict *d, const json_opts *o, int level, wl_buf *b)
{
    if (d->n == 0) return puts_(ev, line, b, "{}");
    size_t *order = malloc(d->n * sizeof *order);
    if (!order) return ev_oom(ev, line);
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    int rc = 0;
    if (o->sort_keys) { /* insertion sort: stable, and errors surface as in Python */
        rc = ev_steps(ev, line, d->n * d->n / 4);
        for (size_t i = 1; i < d->n && !rc; i++) {
            size_t j = i;
            while (j > 0) {
                int c;
                if ((rc = cmp_for_sort(ev, line, d->ents[order[j - 1]].key, d->ents[order[j]].key, &c)) != 0) break;
                if (c <= 0) break;
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
                j--;
            }
        }
    }
    if (!rc) rc = put(ev, line, b, "{", 1);
    for (size_t i = 0; i < d->n && !rc; i++) {
        const wl_jdict_entry *e = &d->ents[order[i]];
        if (i) rc = put(ev, line, b, o->item_sep, o->item_sep_len);
        if (!rc && o->indent) rc = json_newline(ev, line, o, level + 1, b);
        if (!rc) rc = json_key(ev, line, e->key, o, b);
        if (!rc) rc = put(ev, line, b, o->key_sep, o->key_sep_len);
        if (!rc) rc = json_value(ev, line, e->val, o, level + 1, b);
    }
    if (!rc && o->indent) rc = json_newline(ev, line, o, level, b);
    if (!rc) rc = put(ev, line, b, "}", 1);
    free(order);
    return rc;
}

static int json_value(wl_jeval *ev, uint32_t line, wl_jval v, const json_opts *o, int level, wl_buf *b)
{
    char tmp[40];
    int rc;
    if (level > MAX_PRINT_DEPTH)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "values nested too deeply for tojson");
    if ((rc = ev_steps(ev, line, 1)) != 0) return rc;
    if ((rc = ev_check_str_size(ev, line, b->len)) != 0) return rc;
    switch (v.type) {
    case WL_JT_NONE: return puts_(ev, line, b, "null");
    case WL_JT_BOOL: return puts_(ev, line, b, v.u.i ? "true" : "false");
    case WL_JT_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i); return puts_(ev, line, b, tmp);
    case WL_JT_FLOAT:
        if (isnan(v.u.f)) return puts_(ev, line, b, "NaN");
        if (isinf(v.u.f)) return puts_(ev, line, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        wl_jfmt_float(v.u.f, tmp);
        return puts_(ev, line, b, tmp);
    case WL_JT_STR: return json_string(ev, line, wl_jv_str(v)->data, wl_jv_str(v)->len, o->ensure_ascii, b);
    case WL_JT_LIST: {
        const wl_jlist *l = wl_jv_list(v);
        if (l->kind != WL_JLIST_LIST && l->kind != WL_JLIST_TUPLE) break;
        if (l->n == 0) return puts_(ev, line, b, "[]");
        rc = put(ev, line, b, "[", 1);
        for (size_t i = 0; i < l->n && !rc; i++) {
            if (i) rc = put(ev, line, b, o->item_sep, o->item_sep_len);
            if (!rc && o->indent) rc = json_newline(ev, line, o, level + 1, b);
            if (!rc) rc = json_value(ev, line, l->items[i], o, level + 1, b);
        }
        if (!rc && o->indent) rc = json_newline(ev, line, o, level, b);
        return rc ? rc : put(ev, line, b, "]", 1);
    }
    case WL_JT_DICT: return json_dict(ev, line, wl_jv_dict(v), o, level, b);
    default: break;
    }
    return ev_type_error(ev, line, "Object of type %s is not JSON serializable", v);
}

int ev_tojson(wl_jeval *ev, uint32_t line, wl_jval v, int ensure_ascii, const char *indent, size_t indent_len,
              const char *item_sep, size_t item_sep_len, const char *key_sep, size_t key_sep_len, int sort_keys,
              wl_buf *b)
{
    json_opts o;
    o.ensure_ascii = ensure_ascii;
    o.indent = indent;
    o.indent_len = indent_len;
    o.sort_keys = sort_keys;
    if (item_sep) {
        o.item_sep = item_sep;
        o.item_sep_len = item_sep_len;
        o.key_sep = key_sep;
        o.key_sep_len = key_sep_len;
    } else {
        o.item_sep = indent ? "," : ", ";
        o.item_sep_len = indent ? 1 : 2;
        o.key_sep = ": ";
        o.key_sep_len = 2;
    }
    return json_value(ev, line, v, &o, 0, b);
}

/* ---- "fmt % args" -------------------------------------------------------------------- */

typedef struct pct_spec {
    int left, plus, space, alt, zero; /* flags - + space # 0 */
    int64_t width;                    /* -1: none */
    int64_t prec;                     /* -1: none */
    char conv;
} pct_spec;

static int is_intlike(wl_jval v) { return v.type == WL_JT_INT || v.type == WL_JT_BOOL; }

/* Appends body padded to the width (zero padding goes after the sign and prefix). */
static int pct_pad(wl_jeval *ev, uint32_t line, wl_buf *b, const pct_spec *sp, const char *sign, const char *prefix,
                   const char *body, size_t body_len, size_t body_cps, int zero_ok)
{
    size_t n = strlen(sign) + strlen(prefix) + body_cps;
    size_t pad = sp->width > 0 && (uint64_t)sp->width > n ? (size_t)sp->width - n : 0;
    int rc = ev_check_str_size(ev, line, b->len + body_len + pad + 8);
    if (rc) return rc;
    int zeros = sp->zero && !sp->left && zero_ok;
    int bad = 0;
    if (!sp->left && !zeros)
        for (size_t i = 0; i < pad; i++) bad |= wl_buf_append(b, " ", 1);
    bad |= wl_buf_puts(b, sign);
    bad |= wl_buf_puts(b, prefix);
    if (zeros)
        for (size_t i = 0; i < pad; i++) bad |= wl_buf_append(b, "0", 1);
    bad |= wl_buf_append(b, body, body_len);
    if (sp->left)
        for (size_t i = 0; i < pad; i++) bad |= wl_buf_append(b, " ", 1);
    return bad ? ev_oom(ev, line) : 0;
}

static int pct_int(wl_jeval *ev, uint32_t line, wl_buf *b, const pct_spec *sp, wl_jval v)
{
    int64_t x;
    if (is_intlike(v)) {
        x = v.u.i;
    } else if (v.type == WL_JT_FLOAT && (sp->conv == 'd' || sp->conv == 'i' || sp->conv == 'u')) {
        if (isnan(v.u.f)) return EV_ERR(ev, line, "cannot convert float NaN to integer");
        if (isinf(v.u.f)) return EV_ERR(ev, line, "cannot convert float infinity to integer");
        double t = trunc(v.u.f);
        if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
            return EV_ERR(ev, line, "integer overflow (wandler's integers are 64-bit)");
        x = (int64_t)t;
    } else if (sp->conv == 'd' || sp->conv == 'i' || sp->conv == 'u') {
        return ev_type_error(ev, line, "%%d format: a real number is required, not %s", v);
    } else {
        char fmtmsg[64];
        /* a format for ev_type_error: "%%x format: ... not %s" */
        snprintf(fmtmsg, sizeof fmtmsg, "%%%%%c format: an integer is required, not %%s", sp->conv);
        return ev_type_error(ev, line, fmtmsg, v);
    }
    uint64_t mag = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    const char *digits = sp->conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    unsigned base = sp->conv == 'o' ? 8 : (sp->conv == 'x' || sp->conv == 'X') ? 16 : 10;
    char tmp[80];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = digits[mag % base];
        mag /= base;
    } while (mag);
    /* a precision is a minimum number of digits */
    int64_t prec = sp->prec > 70 ? 70 : sp->prec;
    while (n < prec) tmp[sizeof tmp - 1 - n++] = '0';
    const char *sign = x < 0 ? "-" : sp->plus ? "+" : sp->space ? " " : "";
    const char *prefix = !sp->alt ? "" : sp->conv == 'o' ? "0o" : sp->conv == 'x' ? "0x" : sp->conv == 'X' ? "0X" : "";
    return pct_pad(ev, line, b, sp, sign, prefix, tmp + sizeof tmp - n, (size_t)n, (size_t)n, 1);
}

static int pct_float(wl_jeval *ev, uint32_t line, wl_buf *b, const pct_spec *sp, wl_jval v)
{
    if (!is_intlike(v) && v.type != WL_JT_FLOAT) return ev_type_error(ev, line, "must be real number, not %s", v);
    double x = v.type == WL_JT_FLOAT ? v.u.f : (double)v.u.i;
    int prec = sp->prec < 0 ? 6 : sp->prec > 300 ? 300 : (int)sp->prec;
    char cfmt[16], tmp[700];
    snprintf(cfmt, sizeof cfmt, "%%%s.*%c", sp->alt ? "#" : "", sp->conv);
    snprintf(tmp, sizeof tmp, cfmt, prec, fabs(x));
    const char *sign = signbit(x) && !isnan(x) ? "-" : sp->plus ? "+" : sp->space ? " " : "";
    return pct_pad(ev, line, b, sp, sign, "", tmp, strlen(tmp), strlen(tmp), isfinite(x));
}

static int pct_text(wl_jeval *ev, uint32_t line, wl_buf *b, const pct_spec *sp, wl_jval v)
{
    wl_buf t = {0};
    int rc = 0;
    if (sp->conv == 's') rc = ev_pystr(ev, line, v, &t);
    else if (sp->conv == 'r') rc = ev_pyrepr(ev, line, v, &t);
    else if (sp->conv == 'a') {
        /* ascii(): repr() with every non-ASCII character escaped */
        wl_buf r = {0};
        rc = ev_pyrepr(ev, line, v, &r);
        for (size_t i = 0; !rc && i < r.len;) {
            size_t at = i;
            uint32_t c = wl_ju_next(r.data, r.len, &i);
            char esc[12];
            if (c < 0x80) rc = wl_buf_append(&t, r.data + at, 1) ? ev_oom(ev, line) : 0;
            else {
                if (c <= 0xFF) snprintf(esc, sizeof esc, "\\x%02x", c);
                else if (c <= 0xFFFF) snprintf(esc, sizeof esc, "\\u%04x", c);
                else snprintf(esc, sizeof esc, "\\U%08x", c);
                rc = wl_buf_puts(&t, esc) ? ev_oom(ev, line) : 0;
            }
        }
        wl_buf_free(&r);
    } else { /* 'c' */
        uint32_t c = 0;
        if (is_intlike(v)) {
            if (v.u.i < 0 || v.u.i > 0x10FFFF) rc = EV_ERR(ev, line, "%%c arg not in range(0x110000)");
            else if (v.u.i >= 0xD800 && v.u.i <= 0xDFFF) rc = EV_ERR(ev, line, "%%c arg is a surrogate code point");
            else c = (uint32_t)v.u.i;
        } else if (v.type == WL_JT_STR && wl_jv_str(v)->ncp == 1) {
            size_t i = 0;
            c = wl_ju_next(wl_jv_str(v)->data, wl_jv_str(v)->len, &i);
        } else {
            rc = EV_ERR(ev, line, "%%c requires int or char");
        }
        if (!rc && wl_ju_put(&t, c) != 0) rc = ev_oom(ev, line);
    }
    if (rc) {
        wl_buf_free(&t);
        return rc;
    }
    const char *body = t.data ? t.data : "";
    size_t len = t.len, cps = 0;
    for (size_t i = 0; i < len; i++) cps += ((unsigned char)body[i] & 0xC0) != 0x80;
    if (sp->conv != 'c' && sp->prec >= 0 && (uint64_t)sp->prec < cps) { /* %.Ns keeps N characters */
        len = wl_ju_offset(body, len, cps, (size_t)sp->prec);
        cps = (size_t)sp->prec;
    }
    rc = pct_pad(ev, line, b, sp, "", "", body, len, cps, 0);
    wl_buf_free(&t);
    return rc;
}

int ev_percent_format(wl_jeval *ev, uint32_t line, const wl_jstr *fmt, wl_jval arg, wl_jval *out)
{
    const wl_jval *args = &arg;
    size_t nargs = 1, next = 0;
    int is_tuple = arg.type == WL_JT_LIST && wl_jv_list(arg)->kind == WL_JLIST_TUPLE;
    /* Python treats anything subscriptable but a tuple or str as a mapping: "%(k)s" looks keys
     * up in it, and extra arguments are then not an error. */
    int mapping = !is_tuple && (arg.type == WL_JT_DICT ||
                                (arg.type == WL_JT_LIST && wl_jv_list(arg)->kind <= WL_JLIST_RANGE));
    if (is_tuple) {
        args = wl_jv_list(arg)->items;
        nargs = wl_jv_list(arg)->n;
    }
    wl_buf b = {0};
    int rc = ev_charge(ev, line, fmt->len);
    const char *f = fmt->data;
    size_t len = fmt->len;
    for (size_t i = 0; i < len && !rc;) {
        if (f[i] != '%') {
            size_t j = i;
            while (j < len && f[j] != '%') j++;
            if (wl_buf_append(&b, f + i, j - i) != 0) rc = ev_oom(ev, line);
            i = j;
            continue;
        }
        if (++i >= len) {
            rc = EV_ERR(ev, line, "incomplete format");
            break;
        }
        if (f[i] == '%') {
            if (wl_buf_append(&b, "%", 1) != 0) rc = ev_oom(ev, line);
            i++;
            continue;
        }
        wl_jval value = wl_jv_absent();
        if (f[i] == '(') { /* %(key)s */
            size_t depth = 1, k = ++i;
            while (k < len && depth) {
                if (f[k] == '(') depth++;
                else if (f[k] == ')') depth--;
                if (depth) k++;
            }
            if (k >= len) {
                rc = EV_ERR(ev, line, "incomplete format key");
                break;
            }
            if (arg.type != WL_JT_DICT) {
                rc = EV_ERR(ev, line, "format requires a mapping");
                break;
            }
            const wl_jval *got = wl_jdict_get_str(wl_jv_dict(arg), f + i, k - i);
            if (!got) {
                rc = EV_ERR(ev, line, "KeyError: '%.*s'", (int)(k - i > 60 ? 60 : k - i), f + i);
                break;
            }
            value = *got;
            i = k + 1;
        }
        pct_spec sp = {0, 0, 0, 0, 0, -1, -1, 0};
        for (; i < len; i++) {
            if (f[i] == '-') sp.left = 1;
            else if (f[i] == '+') sp.plus = 1;
            else if (f[i] == ' ') sp.space = 1;
            else if (f[i] == '#') sp.alt = 1;
            else if (f[i] == '0') sp.zero = 1;
            else break;
        }
        for (int which = 0; which < 2 && !rc; which++) { /* width, then .precision */
            if (which == 1) {
                if (i >= len || f[i] != '.') break;
                i++;
                sp.prec = 0;
            }
            int64_t *dst = which ? &sp.prec : &sp.width;
            if (i < len && f[i] == '*') {
                i++;
                if (next >= nargs) {
                    rc = EV_ERR(ev, line, "not enough arguments for format string");
                    break;
                }
                wl_jval w = args[next++];
                if (!is_intlike(w)) {
                    rc = EV_ERR(ev, line, "* wants int");
                    break;
                }
                *dst = w.u.i;
                if (!which && *dst < 0) {
                    sp.left = 1;
                    *dst = -*dst;
                }
            } else {
                while (i < len && f[i] >= '0' && f[i] <= '9') {
                    if (*dst < 0) *dst = 0;
                    if (*dst < 100000000) *dst = *dst * 10 + (f[i] - '0');
                    i++;
                }
            }
        }
        if (rc) break;
        if ((sp.width > 0 && (uint64_t)sp.width > ev->opts.max_output) || sp.prec > 100000000) {
            rc = ev_check_str_size(ev, line, ev->opts.max_output + 1);
            break;
        }
        if (i < len && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L')) i++; /* one length modifier */
        if (i >= len) {
            rc = EV_ERR(ev, line, "incomplete format");
            break;
        }
        sp.conv = f[i++];
        /* Only "%%" is a literal percent; "%5%" takes an argument and is refused, as in Python. */
        if (value.type == WL_JT_ABSENT) {
            if (next >= nargs) {
                rc = EV_ERR(ev, line, "not enough arguments for format string");
                break;
            }
            value = args[next++];
        }
        switch (sp.conv) {
        case 'd':
        case 'i':
        case 'u':
        case 'o':
        case 'x':
        case 'X': rc = pct_int(ev, line, &b, &sp, value); break;
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G': rc = pct_float(ev, line, &b, &sp, value); break;
        case 's':
        case 'r':
        case 'a':
        case 'c': rc = pct_text(ev, line, &b, &sp, value); break;
        default:
            if ((unsigned char)sp.conv >= 0x20 && (unsigned char)sp.conv < 0x7F)
                rc = EV_ERR(ev, line, "unsupported format character '%c' (0x%x)", sp.conv, (unsigned)sp.conv);
            else
                rc = EV_ERR(ev, line, "unsupported format character 0x%x", (unsigned char)sp.conv);
        }
        if (!rc) rc = ev_check_str_size(ev, line, b.len);
    }
    if (!rc && next < nargs && !mapping) rc = EV_ERR(ev, line, "not all arguments converted during string formatting");
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}
