/* filters_impl.h - what the filter files share: the filter signature, argument binding,
 * small conversions, and the declarations the filter table uses. */
#ifndef WL_TEXT_JINJA_FILTERS_IMPL_H
#define WL_TEXT_JINJA_FILTERS_IMPL_H

#include "text/jinja/eval.h"

typedef int (*filter_fn)(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);

/* Defines filter `name`: the input is `in`, the call's arguments `a`. */
#define FILTER(name) int wl_jf_##name(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out)
#define BIND(fname, ...)                                                                        \
    static const char *const params_[] = {__VA_ARGS__};                                          \
    wl_jval p[sizeof params_ / sizeof params_[0]];                                               \
    int rc_ = ev_bind(ev, line, fname, params_, sizeof params_ / sizeof params_[0], a, p);       \
    if (rc_) return rc_
#define NO_ARGS(fname)                                                                          \
    do {                                                                                         \
        if (a->npos || a->nkw) return EV_ERR(ev, line, "filter '%s' takes no arguments", fname); \
    } while (0)
#define GIVEN(v) ((v).type != WL_JT_ABSENT)

static inline int is_intlike(wl_jval v) { return v.type == WL_JT_INT || v.type == WL_JT_BOOL; }

static inline int want_int(wl_jeval *ev, uint32_t line, wl_jval v, const char *what, int64_t *out)
{
    if (!is_intlike(v)) return ev_type_error(ev, line, "'%s' object cannot be interpreted as an integer", v);
    (void)what;
    *out = v.u.i;
    return 0;
}

/* A flag that Jinja2 passes to a Python builtin wanting an int (sorted(reverse=...)). */
static inline int want_flag(wl_jeval *ev, uint32_t line, wl_jval v, int *out)
{
    *out = 0;
    if (v.type == WL_JT_ABSENT) return 0;
    if (!is_intlike(v)) return ev_type_error(ev, line, "'%s' object cannot be interpreted as an integer", v);
    *out = v.u.i != 0;
    return 0;
}

/* str(v) (Undefined gives ""), as a borrowed-or-new string value. */
static inline int soft_str(wl_jeval *ev, uint32_t line, wl_jval v, wl_jval *out) { return ev_to_str(ev, line, v, out); }

static inline int new_generator(wl_jeval *ev, uint32_t line, wl_jlist **out)
{
    int rc = ev_new_list(ev, line, 0, out);
    if (!rc) (*out)->kind = WL_JLIST_GENERATOR;
    return rc;
}

int wl_jf_upper(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_lower(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_capitalize(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_title(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_trim(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_replace(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_string(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_escape(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_safe(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_center(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_indent(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_wordcount(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_truncate(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_format(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_abs(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_int(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_float(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_round(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_length(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_default(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_list(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_first(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_last(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_reverse(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_items(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_join(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_sort(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_dictsort(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_min(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_max(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_unique(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_sum(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_batch(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_slice(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_attr(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_map(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_select(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_reject(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_selectattr(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_rejectattr(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);
int wl_jf_tojson(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, wl_jval *out);

#endif
