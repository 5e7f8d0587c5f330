/* filters_num.c - Jinja2's number filters: abs, int, float, round. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/filters_impl.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"
#include "text/jinja/ustr.h"

/* ---- numbers ------------------------------------------------------------------------- */

FILTER(abs)
{
    NO_ARGS("abs");
    if (is_intlike(in)) {
        if (in.u.i == INT64_MIN) return EV_ERR(ev, line, "integer overflow");
        *out = wl_jv_int(in.u.i < 0 ? -in.u.i : in.u.i);
        return 0;
    }
    if (in.type == WL_JT_FLOAT) {
        *out = wl_jv_float(fabs(in.u.f));
        return 0;
    }
    return ev_type_error(ev, line, "bad operand type for abs(): '%s'", in);
}

/* Python's float(str): optional whitespace, sign, digits with underscores, inf, nan. */
static int parse_py_float(const wl_jstr *s, double *out)
{
    size_t a, z;
    wl_ju_strip(s->data, s->len, NULL, 0, 1, 1, &a, &z);
    if (a == z || z - a > 400) return -1;
    char tmp[401];
    size_t n = 0;
    for (size_t i = a; i < z; i++) {
        char c = s->data[i];
        if (c == '_') {
            /* only between digits */
            if (i == a || i + 1 >= z || !(s->data[i - 1] >= '0' && s->data[i - 1] <= '9') ||
                !(s->data[i + 1] >= '0' && s->data[i + 1] <= '9'))
                return -1;
            continue;
        }
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' ||
              (c | 0x20) == 'i' || (c | 0x20) == 'n' || (c | 0x20) == 'f' || (c | 0x20) == 't' ||
              (c | 0x20) == 'y' || (c | 0x20) == 'a'))
            return -1;
        tmp[n++] = c;
    }
    tmp[n] = '\0';
    /* strtod accepts hex and "infinity"/"nan(...)"; Python accepts inf/infinity/nan only. */
    const char *q = tmp + (tmp[0] == '+' || tmp[0] == '-');
    if ((q[0] == '0' && (q[1] | 0x20) == 'x') || strchr(q, '(')) return -1;
    char *end;
    double d = strtod(tmp, &end);
    if (*end != '\0' || end == tmp) return -1;
    *out = d;
    return 0;
}

/* Python's int(str, base): whitespace, sign, underscores between digits, base prefixes. */
static int parse_py_int(const wl_jstr *s, int64_t base, int64_t *out, int *overflowed)
{
    size_t a, z;
    *overflowed = 0;
    wl_ju_strip(s->data, s->len, NULL, 0, 1, 1, &a, &z);
    const char *p = s->data + a, *e = s->data + z;
    int neg = 0;
    if (p < e && (*p == '+' || *p == '-')) neg = *p++ == '-';
    if (e - p >= 2 && p[0] == '0') {
        char x = (char)(p[1] | 0x20);
        int pb = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        if (pb && (base == pb || base == 0)) {
            p += 2;
            base = pb;
            if (p < e && *p == '_') p++;
        }
    }
    if (base == 0) base = 10;
    if (base < 2 || base > 36 || p >= e) return -1;
    uint64_t v = 0;
    int prev_digit = 0;
    for (; p < e; p++) {
        if (*p == '_') {
            if (!prev_digit || p + 1 >= e) return -1;
            prev_digit = 0;
            continue;
        }
        int d;
        char c = *p;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') d = (c | 0x20) - 'a' + 10;
        else return -1;
        if (d >= base) return -1;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) *overflowed = 1;
        else v = v * (uint64_t)base + (uint64_t)d;
        prev_digit = 1;
    }
    if (!prev_digit) return -1;
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) *overflowed = 1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int float_to_int(wl_jeval *ev, uint32_t line, double d, wl_jval *out)
{
    if (isnan(d)) return 1;
    if (isinf(d)) return EV_ERR(ev, line, "cannot convert float infinity to integer");
    double t = trunc(d);
    if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
        return EV_ERR(ev, line, "integer overflow (wandler's integers are 64-bit)");
    *out = wl_jv_int((int64_t)t);
    return 0;
}

FILTER(int)
{
    BIND("int", "default", "base");
    wl_jval def = GIVEN(p[0]) ? p[0] : wl_jv_int(0);
    int64_t base = 10;
    int rc;
    /* int(value, base) with a bad base raises TypeError, which sends Jinja2 to int(float(value)) */
    int base_ok = !GIVEN(p[1]) || is_intlike(p[1]);
    if (GIVEN(p[1]) && base_ok) base = p[1].u.i;
    switch (in.type) {
    case WL_JT_UNDEFINED: return ev_undefined_error(ev, line, in);
    case WL_JT_INT:
    case WL_JT_BOOL: *out = wl_jv_int(in.u.i); return 0;
    case WL_JT_FLOAT:
        rc = float_to_int(ev, line, in.u.f, out);
        if (rc == 1) break;
        return rc;
    case WL_JT_STR: {
        int64_t v;
        int over;
        if (base_ok && parse_py_int(wl_jv_str(in), base, &v, &over) == 0) {
            if (over) return EV_ERR(ev, line, "integer overflow (wandler's integers are 64-bit)");
            *out = wl_jv_int(v);
            return 0;
        }
        double d;
        if (parse_py_float(wl_jv_str(in), &d) == 0) {
            rc = float_to_int(ev, line, d, out);
            if (rc == 1) break;
            return rc;
        }
        break;
    }
    default: break;
    }
    *out = wl_jval_retain(def);
    return 0;
}

FILTER(float)
{
    BIND("float", "default");
    wl_jval def = GIVEN(p[0]) ? p[0] : wl_jv_float(0.0);
    switch (in.type) {
    case WL_JT_UNDEFINED: return ev_undefined_error(ev, line, in);
    case WL_JT_INT:
    case WL_JT_BOOL: *out = wl_jv_float((double)in.u.i); return 0;
    case WL_JT_FLOAT: *out = in; return 0;
    case WL_JT_STR: {
        double d;
        if (parse_py_float(wl_jv_str(in), &d) == 0) {
            *out = wl_jv_float(d);
            return 0;
        }
        break;
    }
    default: break;
    }
    *out = wl_jval_retain(def);
    return 0;
}

/* Python's round(x, n) for floats: correctly rounded, ties to even. */
static double py_round(double x, int64_t n)
{
    if (!isfinite(x)) return x;
    if (n > 330) return x; /* every double has fewer decimals than that */
    if (n >= 0) {
        char tmp[700]; /* 309 integer digits, '.', 330 decimals */
        snprintf(tmp, sizeof tmp, "%.*f", (int)n, x);
        return strtod(tmp, NULL);
    }
    if (n < -308) return copysign(0.0, x);
    double p = pow(10.0, (double)-n);
    double r = nearbyint(x / p) * p;
    return r;
}

FILTER(round)
{
    BIND("round", "precision", "method");
    int64_t precision = 0;
    int rc;
    if (GIVEN(p[0]) && (rc = want_int(ev, line, p[0], "precision", &precision)) != 0) return rc;
    const char *method = "common";
    if (GIVEN(p[1])) {
        if (p[1].type != WL_JT_STR) return EV_ERR(ev, line, "round(): method must be common, ceil or floor");
        method = wl_jv_str(p[1])->data;
    }
    int common = !strcmp(method, "common"), ceil_ = !strcmp(method, "ceil"), floor_ = !strcmp(method, "floor");
    if (!common && !ceil_ && !floor_) return EV_ERR(ev, line, "round(): method must be common, ceil or floor");
    if (in.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, in);
    if (!is_intlike(in) && in.type != WL_JT_FLOAT) return ev_type_error(ev, line, "type %s doesn't define __round__ method", in);
    if (common) {
        if (is_intlike(in)) {
            if (precision >= 0) {
                *out = wl_jv_int(in.u.i);
                return 0;
            }
            /* round to a power of ten, ties to even */
            if (precision < -18) {
                *out = wl_jv_int(0);
                return 0;
            }
            int64_t pw = 1;
            for (int64_t i = 0; i < -precision; i++) pw *= 10;
            int64_t q = in.u.i / pw, r = in.u.i % pw;
            if (r < 0) {
                r += pw;
                q -= 1;
            }
            if (r * 2 > pw || (r * 2 == pw && (q & 1))) q += 1;
            int64_t res;
            if (__builtin_mul_overflow(q, pw, &res)) return EV_ERR(ev, line, "integer overflow");
            *out = wl_jv_int(res);
            return 0;
        }
        *out = wl_jv_float(py_round(in.u.f, precision));
        return 0;
    }
    /* math.ceil/floor(value * 10**precision) / 10**precision: a float */
    double x = is_intlike(in) ? (double)in.u.i : in.u.f;
    double scale = pow(10.0, (double)precision);
    double v = ceil_ ? ceil(x * scale) : floor(x * scale);
    if (!isfinite(v)) return EV_ERR(ev, line, "cannot convert float infinity to integer");
    *out = wl_jv_float(v / scale);
    return 0;
}
