/* is_tests.c - Jinja2's tests: `x is defined`, `x is divisibleby 3`, `x is equalto y`, ... */
#include <string.h>

#include "text/jinja/eval.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"
#include "text/jinja/ustr.h"

enum {
    T_ODD, T_EVEN, T_DIVISIBLEBY, T_DEFINED, T_UNDEFINED, T_FILTER, T_TEST, T_NONE, T_BOOLEAN, T_FALSE,
    T_TRUE, T_INTEGER, T_FLOAT, T_LOWER, T_UPPER, T_STRING, T_MAPPING, T_NUMBER, T_SEQUENCE, T_ITERABLE,
    T_CALLABLE, T_SAMEAS, T_ESCAPED, T_IN, T_EQ, T_NE, T_GT, T_GE, T_LT, T_LE,
};

static const struct {
    const char *name;
    int id;
    int nargs; /* arguments after the value */
} tests[] = {
    {"odd", T_ODD, 0},         {"even", T_EVEN, 0},         {"divisibleby", T_DIVISIBLEBY, 1},
    {"defined", T_DEFINED, 0}, {"undefined", T_UNDEFINED, 0}, {"filter", T_FILTER, 0},
    {"test", T_TEST, 0},       {"none", T_NONE, 0},         {"boolean", T_BOOLEAN, 0},
    {"false", T_FALSE, 0},     {"true", T_TRUE, 0},         {"integer", T_INTEGER, 0},
    {"float", T_FLOAT, 0},     {"lower", T_LOWER, 0},       {"upper", T_UPPER, 0},
    {"string", T_STRING, 0},   {"mapping", T_MAPPING, 0},   {"number", T_NUMBER, 0},
    {"sequence", T_SEQUENCE, 0}, {"iterable", T_ITERABLE, 0}, {"callable", T_CALLABLE, 0},
    {"sameas", T_SAMEAS, 1},   {"escaped", T_ESCAPED, 0},   {"in", T_IN, 1},
    {"==", T_EQ, 1},           {"eq", T_EQ, 1},             {"equalto", T_EQ, 1},
    {"!=", T_NE, 1},           {"ne", T_NE, 1},             {">", T_GT, 1},
    {"gt", T_GT, 1},           {"greaterthan", T_GT, 1},    {"ge", T_GE, 1},
    {">=", T_GE, 1},           {"<", T_LT, 1},              {"lt", T_LT, 1},
    {"lessthan", T_LT, 1},     {"<=", T_LE, 1},             {"le", T_LE, 1},
};
enum { NTESTS = sizeof tests / sizeof tests[0] };

int wl_jtest_lookup(const char *name, size_t len)
{
    for (int i = 0; i < NTESTS; i++)
        if (strlen(tests[i].name) == len && memcmp(tests[i].name, name, len) == 0) return i;
    return -1;
}

/* str.islower() / str.isupper(): some cased character, and none of the other case. */
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

static int is_num(wl_jval v) { return v.type == WL_JT_INT || v.type == WL_JT_FLOAT || v.type == WL_JT_BOOL; }

static int mod_equals(wl_jeval *ev, uint32_t line, wl_jval v, wl_jval d, int64_t want, int *result)
{
    wl_jval m;
    int rc = ev_binary(ev, line, WL_OP_MOD, v, d, &m);
    if (rc) return rc;
    *result = wl_jv_equal(m, wl_jv_int(want));
    ev_release(ev, m);
    return 0;
}

int wl_jtest_call(wl_jeval *ev, uint32_t line, int idx, wl_jval v, const wl_jargs *args, int *result)
{
    if (idx < 0 || idx >= NTESTS) return ev_fail(ev, line, WANDLER_ERR_INTERNAL, "bad test id %d", idx);
    int rc = ev_steps(ev, line, 1);
    if (rc) return rc;
    if (args->nkw) return EV_ERR(ev, line, "test '%s' takes no keyword arguments", tests[idx].name);
    if ((int)args->npos != tests[idx].nargs)
        return EV_ERR(ev, line, "test '%s' takes %d argument%s (%zu given)", tests[idx].name, tests[idx].nargs,
                      tests[idx].nargs == 1 ? "" : "s", args->npos);
    wl_jval arg = args->npos ? args->pos[0] : wl_jv_none();
    *result = 0;
    switch (tests[idx].id) {
    case T_ODD: return mod_equals(ev, line, v, wl_jv_int(2), 1, result);
    case T_EVEN: return mod_equals(ev, line, v, wl_jv_int(2), 0, result);
    case T_DIVISIBLEBY: return mod_equals(ev, line, v, arg, 0, result);
    case T_DEFINED: *result = v.type != WL_JT_UNDEFINED; return 0;
    case T_UNDEFINED: *result = v.type == WL_JT_UNDEFINED; return 0;
    case T_FILTER:
        *result = v.type == WL_JT_STR && wl_jfilter_lookup(wl_jv_str(v)->data, wl_jv_str(v)->len) >= 0;
        return 0;
    case T_TEST:
        *result = v.type == WL_JT_STR && wl_jtest_lookup(wl_jv_str(v)->data, wl_jv_str(v)->len) >= 0;
        return 0;
    case T_NONE: *result = v.type == WL_JT_NONE; return 0;
    case T_BOOLEAN: *result = v.type == WL_JT_BOOL; return 0;
    case T_FALSE: *result = v.type == WL_JT_BOOL && !v.u.i; return 0;
    case T_TRUE: *result = v.type == WL_JT_BOOL && v.u.i; return 0;
    case T_INTEGER: *result = v.type == WL_JT_INT; return 0;
    case T_FLOAT: *result = v.type == WL_JT_FLOAT; return 0;
    case T_LOWER:
    case T_UPPER: {
        wl_jval s;
        if ((rc = ev_to_str(ev, line, v, &s)) != 0) return rc;
        *result = str_case_is(wl_jv_str(s), tests[idx].id == T_LOWER);
        ev_release(ev, s);
        return 0;
    }
    case T_STRING: *result = v.type == WL_JT_STR; return 0;
    case T_MAPPING: *result = v.type == WL_JT_DICT; return 0;
    case T_NUMBER: *result = is_num(v); return 0;
    case T_SEQUENCE:
        *result = v.type == WL_JT_STR || v.type == WL_JT_DICT || v.type == WL_JT_UNDEFINED ||
                  (v.type == WL_JT_LIST && wl_jv_list(v)->kind <= WL_JLIST_RANGE);
        return 0;
    case T_ITERABLE:
        *result = v.type == WL_JT_STR || v.type == WL_JT_DICT || v.type == WL_JT_UNDEFINED || v.type == WL_JT_LIST ||
                  v.type == WL_JT_LOOP;
        return 0;
    case T_CALLABLE:
        *result = v.type == WL_JT_MACRO || v.type == WL_JT_FUNC || v.type == WL_JT_METHOD ||
                  v.type == WL_JT_UNDEFINED || v.type == WL_JT_LOOP;
        return 0;
    case T_SAMEAS:
        if (wl_jv_is_obj(v) || wl_jv_is_obj(arg)) *result = v.type == arg.type && v.u.o == arg.u.o;
        else *result = v.type == arg.type && wl_jv_equal(v, arg);
        return 0;
    case T_ESCAPED: *result = 0; return 0;
    case T_IN: return ev_compare(ev, line, WL_C_IN, v, arg, result);
    case T_EQ: return ev_compare(ev, line, WL_OP_EQ, v, arg, result);
    case T_NE: return ev_compare(ev, line, WL_OP_NE, v, arg, result);
    case T_GT: return ev_compare(ev, line, WL_OP_GT, v, arg, result);
    case T_GE: return ev_compare(ev, line, WL_OP_GTEQ, v, arg, result);
    case T_LT: return ev_compare(ev, line, WL_OP_LT, v, arg, result);
    case T_LE: return ev_compare(ev, line, WL_OP_LTEQ, v, arg, result);
    default: return ev_fail(ev, line, WANDLER_ERR_INTERNAL, "bad test id %d", idx);
    }
}
