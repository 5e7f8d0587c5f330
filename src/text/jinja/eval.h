/* eval.h - the state of one render and the helpers the evaluator's parts share
 * (statements and expressions in eval.c, operators in ops.c, filters, tests, methods,
 * globals, Python formatting).
 *
 * Conventions: functions return WANDLER_OK or an error code (the first error is recorded in
 * ev->err with its line); a wl_jval produced through an `out` parameter is a new reference the
 * caller releases with ev_release(). Arguments are borrowed.
 */
#ifndef WL_TEXT_JINJA_EVAL_H
#define WL_TEXT_JINJA_EVAL_H

#include <stdint.h>
#include <time.h>

#include "text/jinja/ast.h"
#include "text/jinja/jinja.h"
#include "text/jinja/value.h"
#include "util/buf.h"
#include "util/error.h"

/* Control flow that unwinds like an error but is not one (break / continue in for loops). */
enum { WL_JFLOW_BREAK = -1, WL_JFLOW_CONTINUE = -2 };

/* Undefined values made for a macro parameter that was not passed (aux of the undefined). */
enum { WL_JUNDEF_AUX_PARAM = 0xFE };

typedef struct wl_jeval {
    const struct wl_jinja_template *tpl;
    wl_jheap heap;
    wl_jinja_options opts;
    struct tm now; /* strftime_now() */
    uint64_t steps;
    uint32_t depth;
    wl_buf *out;         /* where output goes now (a macro call or {% set %} block redirects it) */
    size_t out_start;    /* out->len when it became the output */
    wl_buf *final_out;   /* the caller's buffer */
    size_t captured;     /* bytes in redirected outputs still being written (memory budget) */
    wl_jframe *frame;    /* the current scope (counted) */
    const wl_jval *ctx;  /* per symbol: the context's value, or ABSENT */
    wandler_error *err;
    int code; /* the first error, once there is one */
} wl_jeval;

/* Call arguments: positional, then keyword (names and values). All borrowed. */
typedef struct wl_jargs {
    const wl_jval *pos;
    size_t npos;
    wl_jstr *const *kwnames;
    const wl_jval *kwvals;
    size_t nkw;
} wl_jargs;

/* Runs the template (ev prepared by the caller) appending to out. */
int wl_jeval_render(wl_jeval *ev, wl_buf *out);

/* ---- errors and budgets -------------------------------------------------------------- */
int ev_fail(wl_jeval *ev, uint32_t line, int code, const char *fmt, ...) WL_PRINTF(4, 5);
#define EV_ERR(ev, line, ...) ev_fail((ev), (line), WANDLER_ERR_TEMPLATE, __VA_ARGS__)
/* An allocation failed: OUT_OF_MEMORY, or TEMPLATE_LIMIT when it was the memory budget. */
int ev_oom(wl_jeval *ev, uint32_t line);
/* Counts n steps; TEMPLATE_LIMIT past the budget. */
int ev_steps(wl_jeval *ev, uint32_t line, uint64_t n);
/* Counts the work of handling `bytes` bytes of strings (one step per 64 bytes). */
static inline int ev_charge(wl_jeval *ev, uint32_t line, size_t bytes)
{
    return ev_steps(ev, line, 1 + bytes / 64);
}
/* Charges for comparing or hashing v when it is a (possibly long) string. */
static inline int ev_charge_str(wl_jeval *ev, uint32_t line, wl_jval v)
{
    return v.type == WL_JT_STR ? ev_charge(ev, line, wl_jv_str(v)->len) : 0;
}
/* The error for using an undefined value (its message names what was missing). */
int ev_undefined_error(wl_jeval *ev, uint32_t line, wl_jval undef);
/* TypeError-like message about v's type, e.g. "'int' object is not iterable". */
int ev_type_error(wl_jeval *ev, uint32_t line, const char *fmt_with_type, wl_jval v);

static inline void ev_release(wl_jeval *ev, wl_jval v) { wl_jval_release(&ev->heap, v); }

/* ---- making values ------------------------------------------------------------------- */
/* A new string (checked against the size limit). */
int ev_new_str(wl_jeval *ev, uint32_t line, const char *s, size_t len, wl_jval *out);
/* A new string from the buffer's bytes (valid UTF-8); frees the buffer in every case. */
int ev_str_from_buf(wl_jeval *ev, uint32_t line, wl_buf *b, wl_jval *out);
/* Checks that a string of `len` bytes may be made. */
int ev_check_str_size(wl_jeval *ev, uint32_t line, size_t len);
int ev_new_list(wl_jeval *ev, uint32_t line, size_t cap, wl_jlist **out);
/* Appends a new reference (taken over, also on failure). */
int ev_list_push(wl_jeval *ev, uint32_t line, wl_jlist *l, wl_jval v);
int ev_new_dict(wl_jeval *ev, uint32_t line, uint8_t type, wl_jdict **out);
/* Sets key to val, taking over both (also on failure); unhashable keys are an error. */
int ev_dict_set(wl_jeval *ev, uint32_t line, wl_jdict *d, wl_jval key, wl_jval val);

/* ---- conversions --------------------------------------------------------------------- */
/* Appends Python's str(v) / repr(v). */
int ev_pystr(wl_jeval *ev, uint32_t line, wl_jval v, wl_buf *b);
int ev_pyrepr(wl_jeval *ev, uint32_t line, wl_jval v, wl_buf *b);
/* str(v) as a string value (v itself, retained, when it is one). */
int ev_to_str(wl_jeval *ev, uint32_t line, wl_jval v, wl_jval *out);
/* Python's repr() of a float ("1.0", "1e+16", "inf", "nan"); buf of 32 bytes. */
void wl_jfmt_float(double f, char *buf);
/* The items of an iterable as a list (lists themselves retained; dicts give their keys,
 * strings their characters, undefined nothing). Non-iterables are an error. */
int ev_iter_list(wl_jeval *ev, uint32_t line, wl_jval v, wl_jval *out);

/* Python's printf-style "fmt % arg" (arg: a tuple of arguments, a mapping, or one value). */
int ev_percent_format(wl_jeval *ev, uint32_t line, const wl_jstr *fmt, wl_jval arg, wl_jval *out);

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson.
 * indent: NULL = none; item_sep/key_sep: NULL = Python's defaults. */
int ev_tojson(wl_jeval *ev, uint32_t line, wl_jval v, int ensure_ascii, const char *indent,
              size_t indent_len, const char *item_sep, size_t item_sep_len, const char *key_sep,
              size_t key_sep_len, int sort_keys, wl_buf *b);

/* ---- operators (ops.c) --------------------------------------------------------------- */
int ev_binary(wl_jeval *ev, uint32_t line, int op, wl_jval a, wl_jval b, wl_jval *out);
int ev_negate(wl_jeval *ev, uint32_t line, wl_jval a, int positive, wl_jval *out);
/* Python == (charging for long strings). */
int ev_equal(wl_jeval *ev, uint32_t line, wl_jval a, wl_jval b, int *result);
/* a op b for ==, !=, <, <=, >, >= (WL_OP_*), in / not in (WL_C_*). */
int ev_compare(wl_jeval *ev, uint32_t line, int op, wl_jval a, wl_jval b, int *result);
/* Python ordering for sorting: -1/0/1, or an error for unorderable types. */
int ev_order(wl_jeval *ev, uint32_t line, wl_jval a, wl_jval b, int *result);
/* obj.name and obj[key] with Jinja2's sandboxed lookup rules. `origin` is the node reported
 * in messages of undefined results (may be NULL). */
int ev_getattr(wl_jeval *ev, const wl_jnode *origin, uint32_t line, wl_jval obj, const char *name,
               size_t len, wl_jval *out);
int ev_getitem(wl_jeval *ev, const wl_jnode *origin, uint32_t line, wl_jval obj, wl_jval key, wl_jval *out);
/* obj[start:stop:step] (each may be NONE). */
int ev_slice(wl_jeval *ev, uint32_t line, wl_jval obj, wl_jval start, wl_jval stop, wl_jval step, wl_jval *out);
/* Python's len(); an error for values without one. */
int ev_len(wl_jeval *ev, uint32_t line, wl_jval v, int64_t *out);

/* ---- calls --------------------------------------------------------------------------- */
/* Calls a callable value (macro, global, bound method). */
int ev_call_value(wl_jeval *ev, uint32_t line, wl_jval callee, const wl_jargs *args, wl_jval *out);
/* Binds args to named parameters (Python rules: positional first, then keywords; unknown or
 * repeated names and extra positionals are errors). bound[i] is ABSENT when not given. */
int ev_bind(wl_jeval *ev, uint32_t line, const char *fname, const char *const *params, size_t nparams,
            const wl_jargs *args, wl_jval *bound);
/* The value of a name in the current scope (retained), or undefined. */
wl_jval ev_lookup(wl_jeval *ev, uint32_t sym);

/* ---- filters, tests, methods, globals ------------------------------------------------ */
int wl_jfilter_call(wl_jeval *ev, uint32_t line, int id, wl_jval input, const wl_jargs *args, wl_jval *out);
int wl_jtest_call(wl_jeval *ev, uint32_t line, int id, wl_jval v, const wl_jargs *args, int *result);
const char *wl_jfilter_name(int id);

/* Methods of str, dict and list values (methods.c). lookup returns a WL_JM_* id, -1 when the
 * type has no such attribute, or WL_JM_UNSAFE for a method the sandbox forbids. */
enum { WL_JM_UNSAFE = 1000 };
int wl_jmethod_lookup(wl_jval self, const char *name, size_t len);
int wl_jmethod_call(wl_jeval *ev, uint32_t line, int id, wl_jval self, const wl_jargs *args, wl_jval *out);
const char *wl_jmethod_name(int id);

int wl_jglobal_call(wl_jeval *ev, uint32_t line, int fn, const wl_jargs *args, wl_jval *out);

/* Python's str.replace(old, new, count) (count < 0: all). */
int wl_jstr_replace(wl_jeval *ev, uint32_t line, const wl_jstr *s, const wl_jstr *old, const wl_jstr *new_,
                    int64_t count, wl_jval *out);
/* Jinja2's attribute getter of map(attribute=...), sort(attribute=...) ...: environment.getitem()
 * along a dotted path ("a.b.0", numeric parts are indexes). With a default (not NONE), an
 * undefined result along the way becomes the default. */
int wl_jattrgetter(wl_jeval *ev, uint32_t line, wl_jval item, wl_jval attribute, wl_jval def, wl_jval *out);

#endif
