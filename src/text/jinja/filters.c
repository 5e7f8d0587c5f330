/* filters.c - the filter table (name -> function) and transformers' tojson filter. The
 * filters themselves: filters_str.c, filters_num.c, filters_seq.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/filters_impl.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"
#include "text/jinja/ustr.h"

/* transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
 * sort_keys=False). */
FILTER(tojson)
{
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    int ensure_ascii = GIVEN(p[0]) && wl_jv_truthy(p[0]);
    int sort_keys = GIVEN(p[3]) && wl_jv_truthy(p[3]);
    char spaces[256];
    const char *indent = NULL;
    size_t indent_len = 0;
    if (GIVEN(p[1]) && p[1].type != WL_JT_NONE) {
        if (p[1].type == WL_JT_STR) {
            indent = wl_jv_str(p[1])->data;
            indent_len = wl_jv_str(p[1])->len;
        } else if (is_intlike(p[1])) {
            int64_t n = p[1].u.i;
            if (n < 0) n = 0;
            if (n > (int64_t)sizeof spaces) return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "tojson(): indent too large");
            memset(spaces, ' ', (size_t)n);
            indent = spaces;
            indent_len = (size_t)n;
        } else {
            return ev_type_error(ev, line, "tojson(): indent must be an int or a string, not %s", p[1]);
        }
    }
    const char *item_sep = NULL, *key_sep = NULL;
    size_t item_sep_len = 0, key_sep_len = 0;
    if (GIVEN(p[2]) && p[2].type != WL_JT_NONE) {
        const wl_jlist *sl = p[2].type == WL_JT_LIST ? wl_jv_list(p[2]) : NULL;
        if (!sl || sl->n != 2 || sl->items[0].type != WL_JT_STR || sl->items[1].type != WL_JT_STR)
            return EV_ERR(ev, line, "tojson(): separators must be a pair of strings");
        item_sep = wl_jv_str(sl->items[0])->data;
        item_sep_len = wl_jv_str(sl->items[0])->len;
        key_sep = wl_jv_str(sl->items[1])->data;
        key_sep_len = wl_jv_str(sl->items[1])->len;
    }
    wl_buf b = {0};
    int rc = ev_tojson(ev, line, in, ensure_ascii, indent, indent_len, item_sep, item_sep_len, key_sep, key_sep_len,
                       sort_keys, &b);
    if (!rc) rc = ev_check_str_size(ev, line, b.len);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

/* ---- the table ----------------------------------------------------------------------- */

static const struct {
    const char *name;
    filter_fn fn;
} filters[] = {
    {"abs", wl_jf_abs},           {"attr", wl_jf_attr},         {"batch", wl_jf_batch},       {"capitalize", wl_jf_capitalize},
    {"center", wl_jf_center},     {"count", wl_jf_length},      {"d", wl_jf_default},         {"default", wl_jf_default},
    {"dictsort", wl_jf_dictsort}, {"e", wl_jf_escape},          {"escape", wl_jf_escape},     {"first", wl_jf_first},
    {"float", wl_jf_float},       {"forceescape", wl_jf_escape}, {"format", wl_jf_format},    {"indent", wl_jf_indent},
    {"int", wl_jf_int},           {"items", wl_jf_items},       {"join", wl_jf_join},         {"last", wl_jf_last},
    {"length", wl_jf_length},     {"list", wl_jf_list},         {"lower", wl_jf_lower},       {"map", wl_jf_map},
    {"max", wl_jf_max},           {"min", wl_jf_min},           {"reject", wl_jf_reject},     {"rejectattr", wl_jf_rejectattr},
    {"replace", wl_jf_replace},   {"reverse", wl_jf_reverse},   {"round", wl_jf_round},       {"safe", wl_jf_safe},
    {"select", wl_jf_select},     {"selectattr", wl_jf_selectattr}, {"slice", wl_jf_slice},   {"sort", wl_jf_sort},
    {"string", wl_jf_string},     {"sum", wl_jf_sum},           {"title", wl_jf_title},       {"tojson", wl_jf_tojson},
    {"trim", wl_jf_trim},         {"truncate", wl_jf_truncate}, {"unique", wl_jf_unique},     {"upper", wl_jf_upper},
    {"wordcount", wl_jf_wordcount},
};

int wl_jfilter_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (strlen(filters[i].name) == len && memcmp(filters[i].name, name, len) == 0) return (int)i;
    return -1;
}

const char *wl_jfilter_name(int id)
{
    return (id >= 0 && (size_t)id < sizeof filters / sizeof filters[0]) ? filters[id].name : "?";
}

int wl_jfilter_call(wl_jeval *ev, uint32_t line, int id, wl_jval input, const wl_jargs *args, wl_jval *out)
{
    if (id < 0 || (size_t)id >= sizeof filters / sizeof filters[0])
        return ev_fail(ev, line, WANDLER_ERR_INTERNAL, "bad filter id %d", id);
    if (++ev->depth > ev->opts.max_depth) {
        ev->depth--;
        return ev_fail(ev, line, WANDLER_ERR_TEMPLATE_LIMIT, "evaluation nested deeper than %u levels",
                       (unsigned)ev->opts.max_depth);
    }
    int rc = ev_steps(ev, line, 1);
    if (!rc) rc = filters[id].fn(ev, line, input, args, out);
    ev->depth--;
    return rc;
}
