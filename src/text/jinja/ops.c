/* ops.c - Python's operators on template values, and Jinja2's sandboxed attribute and item
 * lookup (obj.name, obj[key], slices, len, iteration). */
#include "text/jinja/eval.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/lexer.h"
#include "text/jinja/ustr.h"

static int is_num(wl_jval v) { return v.type == WL_JT_BOOL || v.type == WL_JT_INT || v.type == WL_JT_FLOAT; }
static int is_intlike(wl_jval v) { return v.type == WL_JT_BOOL || v.type == WL_JT_INT; }
static double as_double(wl_jval v) { return v.type == WL_JT_FLOAT ? v.u.f : (double)v.u.i; }

static int overflow(wl_jeval *ev, uint32_t line)
{
    return EV_ERR(ev, line, "integer overflow (wandler's integers are 64-bit)");
}

static int unsupported(wl_jeval *ev, uint32_t line, int op, wl_jval a, wl_jval b)
{
    if (a.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, a);
    if (b.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, b);
    const char *sym = wl_jop_text(op);
    return EV_ERR(ev, line, "unsupported operand type(s) for %s: '%s' and '%s'", sym, wl_jv_type_name(a),
                  wl_jv_type_name(b));
}

/* Python's float floor division and modulo. */
static void float_divmod(double vx, double wx, double *floordiv, double *mod)
{
    double m = fmod(vx, wx);
    double div = (vx - m) / wx;
    if (m != 0.0) {
        if ((wx < 0) != (m < 0)) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = copysign(0.0, wx);
    }
    double fd;
    if (div != 0.0) {
        fd = floor(div);
        if (div - fd > 0.5) fd += 1.0;
    } else {
        fd = copysign(0.0, vx / wx);
    }
    *floordiv = fd;
    *mod = m;
}

static int repeat(wl_jeval *ev, uint32_t line, wl_jval seq, int64_t times, wl_jval *out)
{
    if (times < 0) times = 0;
    if (seq.type == WL_JT_STR) {
        const wl_jstr *s = wl_jv_str(seq);
        if (s->len && (uint64_t)times > ev->opts.max_output / s->len + 1)
            return ev_check_str_size(ev, line, ev->opts.max_output + 1);
        size_t total = s->len * (size_t)times;
        int rc = ev_check_str_size(ev, line, total);
        if (!rc) rc = ev_charge(ev, line, total);
        if (rc) return rc;
        wl_jstr *r = wl_jstr_alloc(&ev->heap, total);
        if (!r) return ev_oom(ev, line);
        for (int64_t i = 0; i < times && s->len; i++) memcpy(r->data + (size_t)i * s->len, s->data, s->len);
        r->ncp = s->ncp * (size_t)times;
        *out = wl_jv_obj(&r->h);
        return 0;
    }
    const wl_jlist *l = wl_jv_list(seq);
    if (l->n && (uint64_t)times > (ev->opts.max_output / 16) / l->n + 1)
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "the template built a list that is too long");
    size_t total = l->n * (size_t)times;
    int rc = ev_steps(ev, line, total);
    if (rc) return rc;
    wl_jlist *r;
    if ((rc = ev_new_list(ev, line, total, &r)) != 0) return rc;
    r->kind = l->kind == WL_JLIST_TUPLE ? WL_JLIST_TUPLE : WL_JLIST_LIST;
    for (int64_t i = 0; i < times; i++)
        for (size_t j = 0; j < l->n; j++) r->items[r->n++] = wl_jval_retain(l->items[j]);
    *out = wl_jv_obj(&r->h);
    return 0;
}

static int concat_lists(wl_jeval *ev, uint32_t line, const wl_jlist *a, const wl_jlist *b, wl_jval *out)
{
    wl_jlist *r;
    int rc = ev_steps(ev, line, a->n + b->n);
    if (!rc) rc = ev_new_list(ev, line, a->n + b->n, &r);
    if (rc) return rc;
    r->kind = a->kind;
    for (size_t i = 0; i < a->n; i++) r->items[r->n++] = wl_jval_retain(a->items[i]);
    for (size_t i = 0; i < b->n; i++) r->items[r->n++] = wl_jval_retain(b->items[i]);
    *out = wl_jv_obj(&r->h);
    return 0;
}

static int int_pow(wl_jeval *ev, uint32_t line, int64_t base, int64_t exp, wl_jval *out)
{
    if (exp < 0) {
        if (base == 0) return EV_ERR(ev, line, "0.0 cannot be raised to a negative power");
        *out = wl_jv_float(pow((double)base, (double)exp));
        return 0;
    }
    int64_t r = 1;
    while (exp > 0) {
        if (exp & 1) {
            if (__builtin_mul_overflow(r, base, &r)) return overflow(ev, line);
        }
        exp >>= 1;
        if (exp && __builtin_mul_overflow(base, base, &base)) {
            if (r == 0) break;
            return overflow(ev, line);
        }
    }
    *out = wl_jv_int(r);
    return 0;
}

int ev_binary(wl_jeval *ev, uint32_t line, int op, wl_jval a, wl_jval b, wl_jval *out)
{
    if (a.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, a);
    if (b.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, b);
    if (is_num(a) && is_num(b)) {
        int ints = is_intlike(a) && is_intlike(b);
        int64_t x = a.u.i, y = b.u.i, r;
        double fx = as_double(a), fy = as_double(b);
        switch (op) {
        case WL_OP_ADD:
            if (!ints) break;
            if (__builtin_add_overflow(x, y, &r)) return overflow(ev, line);
            *out = wl_jv_int(r);
            return 0;
        case WL_OP_SUB:
            if (!ints) break;
            if (__builtin_sub_overflow(x, y, &r)) return overflow(ev, line);
            *out = wl_jv_int(r);
            return 0;
        case WL_OP_MUL:
            if (!ints) break;
            if (__builtin_mul_overflow(x, y, &r)) return overflow(ev, line);
            *out = wl_jv_int(r);
            return 0;
        case WL_OP_DIV:
            if (fy == 0.0) return EV_ERR(ev, line, "division by zero");
            *out = wl_jv_float(fx / fy);
            return 0;
        case WL_OP_FLOORDIV:
        case WL_OP_MOD:
            if (ints) {
                if (y == 0) return EV_ERR(ev, line, op == WL_OP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) {
                    if (op == WL_OP_MOD) {
                        *out = wl_jv_int(0);
                        return 0;
                    }
                    return overflow(ev, line);
                }
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    m += y;
                    q -= 1;
                }
                *out = wl_jv_int(op == WL_OP_MOD ? m : q);
                return 0;
            }
            if (fy == 0.0) return EV_ERR(ev, line, op == WL_OP_MOD ? "float modulo" : "float floor division by zero");
            {
                double fd, m;
                float_divmod(fx, fy, &fd, &m);
                *out = wl_jv_float(op == WL_OP_MOD ? m : fd);
            }
            return 0;
        case WL_OP_POW:
            if (ints) return int_pow(ev, line, x, y, out);
            if (fx == 0.0 && fy < 0) return EV_ERR(ev, line, "0.0 cannot be raised to a negative power");
            if (fx < 0 && fy != floor(fy)) return EV_ERR(ev, line, "complex results are not supported");
            *out = wl_jv_float(pow(fx, fy));
            if (isinf(out->u.f) && !isinf(fx) && !isinf(fy)) return EV_ERR(ev, line, "numerical result out of range");
            return 0;
        default: return unsupported(ev, line, op, a, b);
        }
        /* mixed or float +, -, * */
        double r2 = op == WL_OP_ADD ? fx + fy : op == WL_OP_SUB ? fx - fy : fx * fy;
        *out = wl_jv_float(r2);
        return 0;
    }
    switch (op) {
    case WL_OP_ADD:
        if (a.type == WL_JT_STR && b.type == WL_JT_STR) {
            const wl_jstr *x = wl_jv_str(a), *y = wl_jv_str(b);
            int rc = ev_check_str_size(ev, line, x->len + y->len);
            if (!rc) rc = ev_charge(ev, line, x->len + y->len);
            if (rc) return rc;
            wl_jstr *r = wl_jstr_alloc(&ev->heap, x->len + y->len);
            if (!r) return ev_oom(ev, line);
            memcpy(r->data, x->data, x->len);
            memcpy(r->data + x->len, y->data, y->len);
            r->ncp = x->ncp + y->ncp;
            *out = wl_jv_obj(&r->h);
            return 0;
        }
        if (a.type == WL_JT_LIST && b.type == WL_JT_LIST) {
            uint8_t ka = wl_jv_list(a)->kind, kb = wl_jv_list(b)->kind;
            if ((ka == WL_JLIST_LIST && kb == WL_JLIST_LIST) || (ka == WL_JLIST_TUPLE && kb == WL_JLIST_TUPLE))
                return concat_lists(ev, line, wl_jv_list(a), wl_jv_list(b), out);
        }
        if (a.type == WL_JT_STR)
            return ev_type_error(ev, line, "can only concatenate str (not \"%s\") to str", b);
        break;
    case WL_OP_MUL:
        if ((a.type == WL_JT_STR || (a.type == WL_JT_LIST && wl_jv_list(a)->kind <= WL_JLIST_TUPLE)) && is_intlike(b))
            return repeat(ev, line, a, b.u.i, out);
        if ((b.type == WL_JT_STR || (b.type == WL_JT_LIST && wl_jv_list(b)->kind <= WL_JLIST_TUPLE)) && is_intlike(a))
            return repeat(ev, line, b, a.u.i, out);
        break;
    case WL_OP_MOD:
        if (a.type == WL_JT_STR) return ev_percent_format(ev, line, wl_jv_str(a), b, out);
        break;
    default: break;
    }
    return unsupported(ev, line, op, a, b);
}

int ev_negate(wl_jeval *ev, uint32_t line, wl_jval a, int positive, wl_jval *out)
{
    if (a.type == WL_JT_INT || a.type == WL_JT_BOOL) {
        if (positive) *out = wl_jv_int(a.u.i);
        else if (a.u.i == INT64_MIN) return overflow(ev, line);
        else *out = wl_jv_int(-a.u.i);
        return 0;
    }
    if (a.type == WL_JT_FLOAT) {
        *out = wl_jv_float(positive ? a.u.f : -a.u.f);
        return 0;
    }
    return ev_type_error(ev, line, positive ? "bad operand type for unary +: '%s'" : "bad operand type for unary -: '%s'", a);
}

/* ---- comparisons --------------------------------------------------------------------- */

static int order_depth(wl_jeval *ev, uint32_t line, int op, wl_jval a, wl_jval b, int *result, int depth)
{
    if (depth > 200) return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "values nested too deeply to compare");
    if (a.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, a);
    if (b.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, b);
    if (is_num(a) && is_num(b)) {
        if (is_intlike(a) && is_intlike(b)) *result = (a.u.i > b.u.i) - (a.u.i < b.u.i);
        else {
            double x = as_double(a), y = as_double(b);
            if (a.type != WL_JT_FLOAT || b.type != WL_JT_FLOAT) {
                /* exact int/float comparison */
                if (wl_jv_equal(a, b)) {
                    *result = 0;
                    return 0;
                }
            }
            *result = (x > y) - (x < y);
        }
        return 0;
    }
    if (a.type == WL_JT_STR && b.type == WL_JT_STR) {
        const wl_jstr *x = wl_jv_str(a), *y = wl_jv_str(b);
        size_t n = x->len < y->len ? x->len : y->len;
        int rc = ev_charge(ev, line, n);
        if (rc) return rc;
        int c = memcmp(x->data, y->data, n);
        *result = c ? (c > 0 ? 1 : -1) : (x->len > y->len) - (x->len < y->len);
        return 0;
    }
    if (a.type == WL_JT_LIST && b.type == WL_JT_LIST && wl_jv_list(a)->kind == wl_jv_list(b)->kind &&
        (wl_jv_list(a)->kind == WL_JLIST_LIST || wl_jv_list(a)->kind == WL_JLIST_TUPLE)) {
        const wl_jlist *x = wl_jv_list(a), *y = wl_jv_list(b);
        size_t n = x->n < y->n ? x->n : y->n;
        for (size_t i = 0; i < n; i++) {
            if (wl_jv_equal(x->items[i], y->items[i])) continue;
            return order_depth(ev, line, op, x->items[i], y->items[i], result, depth + 1);
        }
        *result = (x->n > y->n) - (x->n < y->n);
        return 0;
    }
    return EV_ERR(ev, line, "'%s' not supported between instances of '%s' and '%s'", wl_jop_text(op),
                  wl_jv_type_name(a), wl_jv_type_name(b));
}

int ev_order(wl_jeval *ev, uint32_t line, wl_jval a, wl_jval b, int *result)
{
    return order_depth(ev, line, WL_OP_LT, a, b, result, 0);
}

static int contains(wl_jeval *ev, uint32_t line, wl_jval container, wl_jval item, int *result)
{
    *result = 0;
    switch (container.type) {
    case WL_JT_UNDEFINED: return 0; /* iterates as empty */
    case WL_JT_STR: {
        if (item.type != WL_JT_STR)
            return ev_type_error(ev, line, "'in <string>' requires string as left operand, not %s", item);
        const wl_jstr *h = wl_jv_str(container), *nd = wl_jv_str(item);
        int rc = ev_charge(ev, line, h->len);
        if (rc) return rc;
        if (nd->len == 0) *result = 1;
        else if (nd->len <= h->len) *result = memmem(h->data, h->len, nd->data, nd->len) != NULL;
        return 0;
    }
    case WL_JT_LIST: {
        wl_jlist *l = wl_jv_list(container);
        int gen = l->kind == WL_JLIST_GENERATOR; /* `in` takes a generator's items up to a match */
        size_t i = gen ? l->consumed : 0;
        int rc = ev_steps(ev, line, l->n);
        for (; i < l->n && !rc; i++) {
            if ((rc = ev_equal(ev, line, l->items[i], item, result)) != 0 || *result) {
                i++;
                break;
            }
        }
        if (gen) l->consumed = i;
        return rc;
    }
    case WL_JT_DICT: {
        if (!wl_jv_hashable(item)) return ev_type_error(ev, line, "unhashable type: '%s'", item);
        int rc = ev_charge_str(ev, line, item);
        if (!rc) *result = wl_jdict_get(wl_jv_dict(container), item) != NULL;
        return rc;
    }
    default: return ev_type_error(ev, line, "argument of type '%s' is not iterable", container);
    }
}

int ev_equal(wl_jeval *ev, uint32_t line, wl_jval a, wl_jval b, int *result)
{
    /* Comparing two long equal strings costs their length. */
    if (a.type == WL_JT_STR && b.type == WL_JT_STR && a.u.o != b.u.o && wl_jv_str(a)->len == wl_jv_str(b)->len) {
        int rc = ev_charge(ev, line, wl_jv_str(a)->len);
        if (rc) return rc;
    }
    *result = wl_jv_equal(a, b);
    return 0;
}

int ev_compare(wl_jeval *ev, uint32_t line, int op, wl_jval a, wl_jval b, int *result)
{
    int rc, c;
    switch (op) {
    case WL_OP_EQ: return ev_equal(ev, line, a, b, result);
    case WL_OP_NE:
        rc = ev_equal(ev, line, a, b, result);
        *result = !*result;
        return rc;
    case WL_C_IN: return contains(ev, line, b, a, result);
    case WL_C_NOTIN:
        rc = contains(ev, line, b, a, result);
        *result = !*result;
        return rc;
    default: break;
    }
    /* NaN is unordered: every ordering comparison is false. */
    if ((a.type == WL_JT_FLOAT && isnan(a.u.f) && is_num(b)) || (b.type == WL_JT_FLOAT && isnan(b.u.f) && is_num(a))) {
        *result = 0;
        return 0;
    }
    rc = order_depth(ev, line, op, a, b, &c, 0);
    if (rc) return rc;
    switch (op) {
    case WL_OP_LT: *result = c < 0; break;
    case WL_OP_LTEQ: *result = c <= 0; break;
    case WL_OP_GT: *result = c > 0; break;
    default: *result = c >= 0; break;
    }
    return 0;
}

/* ---- attributes and items ------------------------------------------------------------ */

static int loop_attr(wl_jeval *ev, uint32_t line, const wl_jloop *l, const char *name, wl_jval *out)
{
    const wl_jlist *items = wl_jv_list(l->items);
    int64_t n = (int64_t)items->n, i = l->index0;
    (void)ev;
    (void)line;
    if (!strcmp(name, "index")) *out = wl_jv_int(i + 1);
    else if (!strcmp(name, "index0")) *out = wl_jv_int(i);
    else if (!strcmp(name, "revindex")) *out = wl_jv_int(n - i);
    else if (!strcmp(name, "revindex0")) *out = wl_jv_int(n - i - 1);
    else if (!strcmp(name, "first")) *out = wl_jv_bool(i == 0);
    else if (!strcmp(name, "last")) *out = wl_jv_bool(i == n - 1);
    else if (!strcmp(name, "length")) *out = wl_jv_int(n);
    else if (!strcmp(name, "depth")) *out = wl_jv_int(1);
    else if (!strcmp(name, "depth0")) *out = wl_jv_int(0);
    else if (!strcmp(name, "previtem")) {
        if (i == 0) return 1;
        *out = wl_jval_retain(items->items[i - 1]);
    } else if (!strcmp(name, "nextitem")) {
        if (i + 1 >= n) return 1;
        *out = wl_jval_retain(items->items[i + 1]);
    } else return 1;
    return 0;
}

int ev_getattr(wl_jeval *ev, const wl_jnode *origin, uint32_t line, wl_jval obj, const char *name, size_t len,
               wl_jval *out)
{
    if (obj.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, obj);
    /* Python attributes first (methods), then items: getattr(obj, name) or obj[name]. */
    int id = wl_jmethod_lookup(obj, name, len);
    if (id == WL_JM_UNSAFE) {
        *out = wl_jv_undefined_at(origin, WL_JUNDEF_UNSAFE, obj.type);
        return 0;
    }
    if (id >= 0) {
        wl_jmethod *m = wl_jmethod_new(&ev->heap, obj, id);
        if (!m) return ev_oom(ev, line);
        *out = wl_jv_obj(&m->h);
        return 0;
    }
    switch (obj.type) {
    case WL_JT_DICT:
    case WL_JT_NAMESPACE: {
        const wl_jval *v = wl_jdict_get_str(wl_jv_dict(obj), name, len);
        if (v) {
            *out = wl_jval_retain(*v);
            return 0;
        }
        break;
    }
    case WL_JT_LOOP:
        if (loop_attr(ev, line, (const wl_jloop *)obj.u.o, name, out) == 0) return 0;
        break;
    case WL_JT_MACRO:
        if (!strcmp(name, "name")) {
            const wl_jmacro *m = (const wl_jmacro *)obj.u.o;
            const char *mn = ev->tpl->syms[m->node->macro->name_sym].name;
            return ev_new_str(ev, line, mn, strlen(mn), out);
        }
        break;
    default: break;
    }
    *out = wl_jv_undefined_at(origin, WL_JUNDEF_PLAIN, obj.type);
    return 0;
}

/* An index into a sequence of n items (negative counts from the end); -1 when out of range. */
static int64_t seq_index(wl_jval key, size_t n)
{
    int64_t i = key.u.i;
    if (i < 0) i += (int64_t)n;
    return (i < 0 || i >= (int64_t)n) ? -1 : i;
}

int ev_getitem(wl_jeval *ev, const wl_jnode *origin, uint32_t line, wl_jval obj, wl_jval key, wl_jval *out)
{
    if (obj.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, obj);
    switch (obj.type) {
    case WL_JT_DICT: {
        int rc = ev_charge_str(ev, line, key);
        if (rc) return rc;
        const wl_jval *v = wl_jdict_get(wl_jv_dict(obj), key);
        if (v) {
            *out = wl_jval_retain(*v);
            return 0;
        }
        break;
    }
    case WL_JT_LIST:
        if (is_intlike(key) && wl_jv_list(obj)->kind <= WL_JLIST_RANGE) {
            const wl_jlist *l = wl_jv_list(obj);
            int64_t i = seq_index(key, l->n);
            if (i >= 0) {
                *out = wl_jval_retain(l->items[i]);
                return 0;
            }
            *out = wl_jv_undefined_at(origin, WL_JUNDEF_PLAIN, obj.type);
            return 0;
        }
        break;
    case WL_JT_STR:
        if (is_intlike(key)) {
            const wl_jstr *s = wl_jv_str(obj);
            int64_t i = seq_index(key, s->ncp);
            if (i >= 0) {
                size_t at = wl_ju_offset(s->data, s->len, s->ncp, (size_t)i), end = at;
                wl_ju_next(s->data, s->len, &end);
                int rc = ev_charge(ev, line, s->ncp == s->len ? 1 : at);
                return rc ? rc : ev_new_str(ev, line, s->data + at, end - at, out);
            }
            *out = wl_jv_undefined_at(origin, WL_JUNDEF_PLAIN, obj.type);
            return 0;
        }
        break;
    default: break;
    }
    /* obj[name] failed: Jinja2 then tries the attribute of that name. */
    if (key.type == WL_JT_STR && obj.type != WL_JT_DICT) {
        int id = wl_jmethod_lookup(obj, wl_jv_str(key)->data, wl_jv_str(key)->len);
        if (id >= 0 || id == WL_JM_UNSAFE || obj.type == WL_JT_NAMESPACE || obj.type == WL_JT_LOOP)
            return ev_getattr(ev, origin, line, obj, wl_jv_str(key)->data, wl_jv_str(key)->len, out);
    } else if (key.type == WL_JT_STR) {
        int id = wl_jmethod_lookup(obj, wl_jv_str(key)->data, wl_jv_str(key)->len);
        if (id >= 0 || id == WL_JM_UNSAFE)
            return ev_getattr(ev, origin, line, obj, wl_jv_str(key)->data, wl_jv_str(key)->len, out);
    }
    *out = wl_jv_undefined_at(origin, WL_JUNDEF_PLAIN, obj.type);
    return 0;
}

/* Python's slice index rules. Returns 0, or 1 when a bound is not an integer. */
static int slice_indices(wl_jval start, wl_jval stop, wl_jval step, int64_t len, int64_t *ostart, int64_t *ostep,
                         int64_t *count)
{
    int64_t st = 1;
    if (step.type != WL_JT_NONE) {
        if (!is_intlike(step)) return 1;
        st = step.u.i;
    }
    if ((start.type != WL_JT_NONE && !is_intlike(start)) || (stop.type != WL_JT_NONE && !is_intlike(stop))) return 1;
    int64_t a, b;
    if (start.type == WL_JT_NONE) a = st < 0 ? len - 1 : 0;
    else {
        a = start.u.i;
        if (a < 0) {
            a = a < -len ? (st < 0 ? -1 : 0) : a + len;
        } else if (a >= len) {
            a = st < 0 ? len - 1 : len;
        }
    }
    if (stop.type == WL_JT_NONE) b = st < 0 ? -1 : len;
    else {
        b = stop.u.i;
        if (b < 0) {
            b = b < -len ? (st < 0 ? -1 : 0) : b + len;
        } else if (b >= len) {
            b = st < 0 ? len - 1 : len;
        }
    }
    int64_t n = 0;
    if (st < 0) {
        if (b < a) n = (a - b - 1) / (st == INT64_MIN ? INT64_MAX : -st) + 1;
    } else if (a < b) {
        n = (b - a - 1) / st + 1;
    }
    *ostart = a;
    *ostep = st;
    *count = n;
    return 0;
}

int ev_slice(wl_jeval *ev, uint32_t line, wl_jval obj, wl_jval start, wl_jval stop, wl_jval step, wl_jval *out)
{
    /* Jinja2 slices with Python's obj[a:b:c] directly: failures are errors, not undefined. */
    int sliceable = obj.type == WL_JT_STR || (obj.type == WL_JT_LIST && wl_jv_list(obj)->kind <= WL_JLIST_RANGE);
    if (!sliceable) {
        if (obj.type == WL_JT_DICT) return EV_ERR(ev, line, "unhashable type: 'slice'");
        return ev_type_error(ev, line, "'%s' object is not subscriptable", obj);
    }
    if (step.type != WL_JT_NONE && is_intlike(step) && step.u.i == 0)
        return EV_ERR(ev, line, "slice step cannot be zero");
    int64_t a, st, n;
    size_t len = obj.type == WL_JT_STR ? wl_jv_str(obj)->ncp : wl_jv_list(obj)->n;
    if (slice_indices(start, stop, step, (int64_t)len, &a, &st, &n)) {
        wl_jval bad = !(start.type == WL_JT_NONE || is_intlike(start)) ? start
                      : !(stop.type == WL_JT_NONE || is_intlike(stop)) ? stop : step;
        if (bad.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, bad);
        return EV_ERR(ev, line, "slice indices must be integers or None or have an __index__ method");
    }
    if (obj.type == WL_JT_STR) {
        const wl_jstr *s = wl_jv_str(obj);
        int rc = ev_charge(ev, line, s->len);
        if (rc) return rc;
        if (st == 1) {
            size_t from = wl_ju_offset(s->data, s->len, s->ncp, (size_t)a);
            size_t to = wl_ju_offset(s->data, s->len, s->ncp, (size_t)(a + n));
            return ev_new_str(ev, line, s->data + from, to - from, out);
        }
        /* any other step: walk the code points once, keeping the chosen ones */
        size_t *offs = malloc((s->ncp + 1) * sizeof *offs);
        if (!offs) return ev_oom(ev, line);
        size_t k = 0;
        for (size_t i = 0; i < s->len;) {
            offs[k++] = i;
            wl_ju_next(s->data, s->len, &i);
        }
        offs[k] = s->len;
        wl_buf b = {0};
        for (int64_t j = 0; j < n && !rc; j++) {
            size_t idx = (size_t)(a + j * st);
            if (wl_buf_append(&b, s->data + offs[idx], offs[idx + 1] - offs[idx]) != 0) rc = ev_oom(ev, line);
        }
        free(offs);
        if (rc) {
            wl_buf_free(&b);
            return rc;
        }
        return ev_str_from_buf(ev, line, &b, out);
    }
    const wl_jlist *l = wl_jv_list(obj);
    wl_jlist *r;
    int rc = ev_steps(ev, line, (uint64_t)n);
    if (!rc) rc = ev_new_list(ev, line, (size_t)n, &r);
    if (rc) return rc;
    r->kind = l->kind == WL_JLIST_TUPLE ? WL_JLIST_TUPLE : WL_JLIST_LIST;
    for (int64_t k = 0; k < n; k++) r->items[r->n++] = wl_jval_retain(l->items[a + k * st]);
    *out = wl_jv_obj(&r->h);
    return 0;
}

int ev_len(wl_jeval *ev, uint32_t line, wl_jval v, int64_t *out)
{
    switch (v.type) {
    case WL_JT_UNDEFINED: *out = 0; return 0;
    case WL_JT_STR: *out = (int64_t)wl_jv_str(v)->ncp; return 0;
    case WL_JT_LIST:
        if (wl_jv_list(v)->kind == WL_JLIST_GENERATOR) break;
        *out = (int64_t)wl_jv_list(v)->n;
        return 0;
    case WL_JT_DICT: *out = (int64_t)wl_jv_dict(v)->n; return 0;
    case WL_JT_LOOP: *out = (int64_t)wl_jv_list(((const wl_jloop *)v.u.o)->items)->n; return 0;
    default: break;
    }
    return ev_type_error(ev, line, "object of type '%s' has no len()", v);
}

int ev_iter_list(wl_jeval *ev, uint32_t line, wl_jval v, wl_jval *out)
{
    wl_jlist *l;
    int rc;
    switch (v.type) {
    case WL_JT_LIST:
        if (wl_jv_list(v)->kind == WL_JLIST_GENERATOR) {
            /* Iterating a generator uses it up: what is left goes into a list, once. */
            wl_jlist *g = wl_jv_list(v);
            size_t left = g->n - g->consumed;
            if ((rc = ev_new_list(ev, line, left, &l)) != 0) return rc;
            for (size_t i = g->consumed; i < g->n; i++) l->items[l->n++] = wl_jval_retain(g->items[i]);
            g->consumed = g->n;
            *out = wl_jv_obj(&l->h);
            return 0;
        }
        *out = wl_jval_retain(v);
        return 0;
    case WL_JT_UNDEFINED:
        if ((rc = ev_new_list(ev, line, 0, &l)) != 0) return rc;
        *out = wl_jv_obj(&l->h);
        return 0;
    case WL_JT_DICT: {
        const wl_jdict *d = wl_jv_dict(v);
        if ((rc = ev_steps(ev, line, d->n)) != 0 || (rc = ev_new_list(ev, line, d->n, &l)) != 0) return rc;
        for (size_t i = 0; i < d->n; i++) l->items[l->n++] = wl_jval_retain(d->ents[i].key);
        *out = wl_jv_obj(&l->h);
        return 0;
    }
    case WL_JT_STR: {
        const wl_jstr *s = wl_jv_str(v);
        if ((rc = ev_steps(ev, line, s->ncp)) != 0 || (rc = ev_new_list(ev, line, s->ncp, &l)) != 0) return rc;
        *out = wl_jv_obj(&l->h);
        for (size_t i = 0; i < s->len;) {
            size_t at = i;
            wl_ju_next(s->data, s->len, &i);
            wl_jval c;
            if ((rc = ev_new_str(ev, line, s->data + at, i - at, &c)) != 0) break;
            l->items[l->n++] = c;
        }
        if (rc) ev_release(ev, *out);
        return rc;
    }
    default: return ev_type_error(ev, line, "'%s' object is not iterable", v);
    }
}
