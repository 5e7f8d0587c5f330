/* filters_seq.c - Jinja2's filters over sequences and mappings: join, map, select, sort,
 * unique, batch, ... (eager: where Jinja2 returns a generator they build a list marked as one). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/filters_impl.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"
#include "text/jinja/ustr.h"

/* ---- sequences ----------------------------------------------------------------------- */

FILTER(length)
{
    NO_ARGS("length");
    int64_t n = 0;
    int rc = ev_len(ev, line, in, &n);
    if (!rc) *out = wl_jv_int(n);
    return rc;
}

FILTER(default)
{
    BIND("default", "default_value", "boolean");
    int boolean = GIVEN(p[1]) && wl_jv_truthy(p[1]);
    if (in.type == WL_JT_UNDEFINED || (boolean && !wl_jv_truthy(in))) {
        if (GIVEN(p[0])) *out = wl_jval_retain(p[0]);
        else return ev_new_str(ev, line, "", 0, out);
        return 0;
    }
    *out = wl_jval_retain(in);
    return 0;
}

FILTER(list)
{
    NO_ARGS("list");
    wl_jval items;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    const wl_jlist *l = wl_jv_list(items);
    if (l->kind == WL_JLIST_LIST && items.u.o != in.u.o) {
        *out = items; /* already a fresh list */
        return 0;
    }
    wl_jlist *r;
    rc = ev_steps(ev, line, l->n);
    if (!rc) rc = ev_new_list(ev, line, l->n, &r);
    if (!rc) {
        for (size_t i = 0; i < l->n; i++) r->items[r->n++] = wl_jval_retain(l->items[i]);
        *out = wl_jv_obj(&r->h);
    }
    ev_release(ev, items);
    return rc;
}

FILTER(first)
{
    NO_ARGS("first");
    if (in.type == WL_JT_LIST && wl_jv_list(in)->kind == WL_JLIST_GENERATOR) { /* takes one item */
        wl_jlist *g = wl_jv_list(in);
        *out = g->consumed < g->n ? wl_jval_retain(g->items[g->consumed++]) : wl_jv_undefined();
        return 0;
    }
    wl_jval items;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    const wl_jlist *l = wl_jv_list(items);
    *out = l->n ? wl_jval_retain(l->items[0]) : wl_jv_undefined();
    ev_release(ev, items);
    return 0;
}

FILTER(last)
{
    NO_ARGS("last");
    if (in.type == WL_JT_LIST && wl_jv_list(in)->kind == WL_JLIST_GENERATOR)
        return EV_ERR(ev, line, "'generator' object is not reversible");
    wl_jval items;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    const wl_jlist *l = wl_jv_list(items);
    *out = l->n ? wl_jval_retain(l->items[l->n - 1]) : wl_jv_undefined();
    ev_release(ev, items);
    return 0;
}

FILTER(reverse)
{
    NO_ARGS("reverse");
    if (in.type == WL_JT_STR) {
        const wl_jstr *s = wl_jv_str(in);
        wl_jstr *r = NULL;
        int rc = ev_charge(ev, line, s->len);
        if (!rc && !(r = wl_jstr_alloc(&ev->heap, s->len))) rc = ev_oom(ev, line);
        if (rc) return rc;
        size_t o = s->len;
        for (size_t i = 0; i < s->len;) {
            size_t at = i;
            wl_ju_next(s->data, s->len, &i);
            o -= i - at;
            memcpy(r->data + o, s->data + at, i - at);
        }
        r->ncp = s->ncp;
        *out = wl_jv_obj(&r->h);
        return 0;
    }
    wl_jval items;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    const wl_jlist *l = wl_jv_list(items);
    wl_jlist *r;
    rc = ev_steps(ev, line, l->n);
    if (!rc) rc = ev_new_list(ev, line, l->n, &r);
    if (!rc) {
        r->kind = WL_JLIST_GENERATOR;
        for (size_t i = l->n; i > 0; i--) r->items[r->n++] = wl_jval_retain(l->items[i - 1]);
        *out = wl_jv_obj(&r->h);
    }
    ev_release(ev, items);
    return rc;
}

FILTER(items)
{
    NO_ARGS("items");
    wl_jlist *r;
    int rc;
    if (in.type != WL_JT_DICT && in.type != WL_JT_UNDEFINED) return EV_ERR(ev, line, "Can only get item pairs from a mapping.");
    if ((rc = new_generator(ev, line, &r)) != 0) return rc;
    *out = wl_jv_obj(&r->h);
    if (in.type == WL_JT_UNDEFINED) return 0;
    const wl_jdict *d = wl_jv_dict(in);
    for (size_t i = 0; i < d->n && !rc; i++) {
        wl_jlist *pair;
        if ((rc = ev_new_list(ev, line, 2, &pair)) != 0) break;
        pair->kind = WL_JLIST_TUPLE;
        pair->items[0] = wl_jval_retain(d->ents[i].key);
        pair->items[1] = wl_jval_retain(d->ents[i].val);
        pair->n = 2;
        rc = ev_list_push(ev, line, r, wl_jv_obj(&pair->h));
    }
    if (rc) ev_release(ev, *out);
    return rc;
}

FILTER(join)
{
    BIND("join", "d", "attribute");
    wl_jval items, sep;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    if (GIVEN(p[0])) rc = soft_str(ev, line, p[0], &sep);
    else rc = ev_new_str(ev, line, "", 0, &sep);
    if (rc) {
        ev_release(ev, items);
        return rc;
    }
    const wl_jlist *l = wl_jv_list(items);
    wl_buf b = {0};
    rc = ev_steps(ev, line, l->n);
    for (size_t i = 0; i < l->n && !rc; i++) {
        if (i && wl_buf_append(&b, wl_jv_str(sep)->data, wl_jv_str(sep)->len) != 0) rc = ev_oom(ev, line);
        wl_jval item = wl_jval_retain(l->items[i]);
        if (!rc && GIVEN(p[1]) && p[1].type != WL_JT_NONE) {
            wl_jval got;
            rc = wl_jattrgetter(ev, line, item, p[1], wl_jv_none(), &got);
            ev_release(ev, item);
            item = rc ? wl_jv_none() : got;
        }
        if (!rc) rc = ev_pystr(ev, line, item, &b);
        ev_release(ev, item);
        if (!rc) rc = ev_check_str_size(ev, line, b.len);
    }
    ev_release(ev, sep);
    ev_release(ev, items);
    if (!rc) rc = ev_charge(ev, line, b.len);
    if (rc) {
        wl_buf_free(&b);
        return rc;
    }
    return ev_str_from_buf(ev, line, &b, out);
}

int wl_jattrgetter(wl_jeval *ev, uint32_t line, wl_jval item, wl_jval attribute, wl_jval def, wl_jval *out)
{
    wl_jval cur = wl_jval_retain(item);
    int rc = 0;
    if (attribute.type != WL_JT_STR) {
        rc = ev_getitem(ev, NULL, line, cur, attribute, out);
        ev_release(ev, cur);
        if (!rc && def.type != WL_JT_NONE && out->type == WL_JT_UNDEFINED) *out = wl_jval_retain(def);
        return rc;
    }
    const wl_jstr *path = wl_jv_str(attribute);
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < path->len && path->data[j] != '.') j++;
        wl_jval key, next;
        int digits = j > i;
        for (size_t k = i; k < j; k++)
            if (path->data[k] < '0' || path->data[k] > '9') digits = 0;
        if (digits && j - i < 18) {
            int64_t v = 0;
            for (size_t k = i; k < j; k++) v = v * 10 + (path->data[k] - '0');
            key = wl_jv_int(v);
        } else if ((rc = ev_new_str(ev, line, path->data + i, j - i, &key)) != 0) {
            break;
        }
        rc = ev_getitem(ev, NULL, line, cur, key, &next);
        ev_release(ev, key);
        ev_release(ev, cur);
        if (rc) return rc;
        cur = next;
        if (def.type != WL_JT_NONE && cur.type == WL_JT_UNDEFINED) cur = wl_jval_retain(def);
        if (j >= path->len) break;
        i = j + 1;
    }
    if (rc) {
        ev_release(ev, cur);
        return rc;
    }
    *out = cur;
    return 0;
}

/* Lowercases strings (Jinja2's ignore_case postprocess). */
static int ignore_case(wl_jeval *ev, uint32_t line, wl_jval v, wl_jval *out)
{
    if (v.type != WL_JT_STR) {
        *out = wl_jval_retain(v);
        return 0;
    }
    int rc = ev_charge(ev, line, wl_jv_str(v)->len);
    if (rc) return rc;
    wl_buf b = {0};
    if (wl_ju_str_lower(&b, wl_jv_str(v)->data, wl_jv_str(v)->len) != 0) {
        wl_buf_free(&b);
        return ev_oom(ev, line);
    }
    return ev_str_from_buf(ev, line, &b, out);
}

/* Sort keys for the items: each key is the attribute path(s) of the item (or the item),
 * lowercased unless case_sensitive. `multi`: comma-separated attributes make a list key. */
static int make_keys(wl_jeval *ev, uint32_t line, const wl_jlist *l, wl_jval attribute, int case_sensitive, int multi,
                     wl_jval *keys)
{
    int rc = 0;
    size_t done = 0;
    for (; done < l->n && !rc; done++) {
        wl_jval item = l->items[done], key;
        if (!multi && (attribute.type == WL_JT_NONE || attribute.type == WL_JT_ABSENT)) {
            rc = case_sensitive ? (key = wl_jval_retain(item), 0) : ignore_case(ev, line, item, &key);
        } else if (multi) {
            /* sort(): Jinja2's make_multi_attrgetter gives each item a list of keys, one per
             * comma-separated attribute (lists compare element by element, with ==, first). */
            const wl_jstr *spec = attribute.type == WL_JT_STR ? wl_jv_str(attribute) : NULL;
            wl_jlist *kl;
            if ((rc = ev_new_list(ev, line, 0, &kl)) != 0) break;
            key = wl_jv_obj(&kl->h);
            size_t i = 0;
            while (!rc) {
                size_t j = i;
                while (spec && j < spec->len && spec->data[j] != ',') j++;
                wl_jval part, got, low;
                if (!spec) { /* no attribute: the item itself; a non-string one: one key */
                    if (attribute.type == WL_JT_NONE || attribute.type == WL_JT_ABSENT) got = wl_jval_retain(item);
                    else rc = wl_jattrgetter(ev, line, item, attribute, wl_jv_none(), &got);
                } else {
                    if ((rc = ev_new_str(ev, line, spec->data + i, j - i, &part)) != 0) break;
                    rc = wl_jattrgetter(ev, line, item, part, wl_jv_none(), &got);
                    ev_release(ev, part);
                }
                if (rc) break;
                if (!case_sensitive) {
                    rc = ignore_case(ev, line, got, &low);
                    ev_release(ev, got);
                    if (rc) break;
                    got = low;
                }
                if ((rc = ev_list_push(ev, line, kl, got)) != 0) break;
                if (!spec || j >= spec->len) break;
                i = j + 1;
            }
            if (rc) ev_release(ev, key);
        } else {
            wl_jval got;
            if ((rc = wl_jattrgetter(ev, line, item, attribute, wl_jv_none(), &got)) != 0) break;
            if (case_sensitive) key = got;
            else {
                rc = ignore_case(ev, line, got, &key);
                ev_release(ev, got);
            }
        }
        if (!rc) keys[done] = key;
        else break;
    }
    if (rc) {
        for (size_t i = 0; i < done; i++) ev_release(ev, keys[i]);
    }
    return rc;
}

/* Stable merge sort of idx[] by keys[idx] (Python's sorted); comparisons may fail. */
static int sort_indexes(wl_jeval *ev, uint32_t line, const wl_jval *keys, size_t *idx, size_t n, int reverse)
{
    if (n < 2) return 0;
    size_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return ev_oom(ev, line);
    int rc = 0;
    for (size_t width = 1; width < n && !rc; width *= 2) {
        for (size_t lo = 0; lo < n && !rc; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c;
                if ((rc = ev_order(ev, line, keys[idx[j]], keys[idx[i]], &c)) != 0) break;
                /* take from the right only when strictly smaller (reverse: strictly larger) */
                if (reverse ? c > 0 : c < 0) tmp[k++] = idx[j++];
                else tmp[k++] = idx[i++];
            }
            if (rc) break;
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
            memcpy(idx + lo, tmp + lo, (hi - lo) * sizeof *idx);
        }
        if (!rc) rc = ev_steps(ev, line, n);
    }
    free(tmp);
    return rc;
}

static int sorted_copy(wl_jeval *ev, uint32_t line, wl_jval items, wl_jval attribute, int case_sensitive, int multi,
                       int reverse, wl_jval *out)
{
    const wl_jlist *l = wl_jv_list(items);
    wl_jval *keys = l->n ? malloc(l->n * sizeof *keys) : NULL;
    size_t *idx = l->n ? malloc(l->n * sizeof *idx) : NULL;
    int rc = 0;
    if (l->n && (!keys || !idx)) rc = ev_oom(ev, line);
    if (!rc) rc = make_keys(ev, line, l, attribute, case_sensitive, multi, keys);
    if (!rc) {
        for (size_t i = 0; i < l->n; i++) idx[i] = i;
        rc = sort_indexes(ev, line, keys, idx, l->n, reverse);
        for (size_t i = 0; i < l->n; i++) ev_release(ev, keys[i]);
    }
    wl_jlist *r;
    if (!rc) rc = ev_new_list(ev, line, l->n, &r);
    if (!rc) {
        for (size_t i = 0; i < l->n; i++) r->items[r->n++] = wl_jval_retain(l->items[idx[i]]);
        *out = wl_jv_obj(&r->h);
    }
    free(keys);
    free(idx);
    return rc;
}

FILTER(sort)
{
    BIND("sort", "reverse", "case_sensitive", "attribute");
    wl_jval items;
    int reverse;
    int rc = want_flag(ev, line, p[0], &reverse);
    if (!rc) rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    rc = sorted_copy(ev, line, items, GIVEN(p[2]) ? p[2] : wl_jv_none(), GIVEN(p[1]) && wl_jv_truthy(p[1]), 1,
                     reverse, out);
    ev_release(ev, items);
    return rc;
}

FILTER(dictsort)
{
    BIND("dictsort", "case_sensitive", "by", "reverse");
    int pos = 0;
    if (GIVEN(p[1])) {
        if (p[1].type == WL_JT_STR && !strcmp(wl_jv_str(p[1])->data, "value")) pos = 1;
        else if (!(p[1].type == WL_JT_STR && !strcmp(wl_jv_str(p[1])->data, "key")))
            return EV_ERR(ev, line, "You can only sort by either \"key\" or \"value\"");
    }
    if (in.type == WL_JT_UNDEFINED) return ev_undefined_error(ev, line, in);
    if (in.type != WL_JT_DICT) return ev_type_error(ev, line, "'%s' object has no attribute 'items'", in);
    const wl_jdict *d = wl_jv_dict(in);
    wl_jlist *pairs;
    int reverse;
    int rc = want_flag(ev, line, p[2], &reverse);
    if (!rc) rc = ev_new_list(ev, line, d->n, &pairs);
    if (rc) return rc;
    wl_jval pv = wl_jv_obj(&pairs->h);
    for (size_t i = 0; i < d->n && !rc; i++) {
        wl_jlist *pair;
        if ((rc = ev_new_list(ev, line, 2, &pair)) != 0) break;
        pair->kind = WL_JLIST_TUPLE;
        pair->items[0] = wl_jval_retain(d->ents[i].key);
        pair->items[1] = wl_jval_retain(d->ents[i].val);
        pair->n = 2;
        pairs->items[pairs->n++] = wl_jv_obj(&pair->h);
    }
    if (!rc) rc = sorted_copy(ev, line, pv, wl_jv_int(pos), GIVEN(p[0]) && wl_jv_truthy(p[0]), 0, reverse, out);
    ev_release(ev, pv);
    return rc;
}

static int min_max(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, int want_max, wl_jval *out)
{
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    wl_jval items;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    const wl_jlist *l = wl_jv_list(items);
    if (l->n == 0) {
        ev_release(ev, items);
        *out = wl_jv_undefined();
        return 0;
    }
    wl_jval *keys = malloc(l->n * sizeof *keys);
    if (!keys) {
        ev_release(ev, items);
        return ev_oom(ev, line);
    }
    rc = make_keys(ev, line, l, GIVEN(p[1]) ? p[1] : wl_jv_none(), GIVEN(p[0]) && wl_jv_truthy(p[0]), 0, keys);
    if (!rc) {
        size_t best = 0;
        for (size_t i = 1; i < l->n && !rc; i++) {
            int c;
            rc = ev_order(ev, line, keys[i], keys[best], &c);
            if (!rc && (want_max ? c > 0 : c < 0)) best = i;
        }
        if (!rc) *out = wl_jval_retain(l->items[best]);
        for (size_t i = 0; i < l->n; i++) ev_release(ev, keys[i]);
    }
    free(keys);
    ev_release(ev, items);
    return rc;
}

FILTER(min) { return min_max(ev, line, in, a, 0, out); }
FILTER(max) { return min_max(ev, line, in, a, 1, out); }

FILTER(unique)
{
    BIND("unique", "case_sensitive", "attribute");
    wl_jval items;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    const wl_jlist *l = wl_jv_list(items);
    wl_jval *keys = l->n ? malloc(l->n * sizeof *keys) : NULL;
    if (l->n && !keys) {
        ev_release(ev, items);
        return ev_oom(ev, line);
    }
    rc = make_keys(ev, line, l, GIVEN(p[1]) ? p[1] : wl_jv_none(), GIVEN(p[0]) && wl_jv_truthy(p[0]), 0, keys);
    if (rc) {
        free(keys);
        ev_release(ev, items);
        return rc;
    }
    wl_jlist *r;
    wl_jdict *seen;
    rc = new_generator(ev, line, &r);
    if (!rc && (rc = ev_new_dict(ev, line, WL_JT_DICT, &seen)) != 0) ev_release(ev, wl_jv_obj(&r->h));
    if (!rc) {
        for (size_t i = 0; i < l->n && !rc; i++) {
            if (!wl_jv_hashable(keys[i])) {
                rc = ev_type_error(ev, line, "unhashable type: '%s'", keys[i]);
                break;
            }
            if ((rc = ev_charge_str(ev, line, keys[i])) != 0) break;
            if (wl_jdict_get(seen, keys[i])) continue;
            rc = ev_dict_set(ev, line, seen, wl_jval_retain(keys[i]), wl_jv_none());
            if (!rc) rc = ev_list_push(ev, line, r, wl_jval_retain(l->items[i]));
        }
        ev_release(ev, wl_jv_obj(&seen->h));
        if (rc) ev_release(ev, wl_jv_obj(&r->h));
        else *out = wl_jv_obj(&r->h);
    }
    for (size_t i = 0; i < l->n; i++) ev_release(ev, keys[i]);
    free(keys);
    ev_release(ev, items);
    return rc;
}

FILTER(sum)
{
    BIND("sum", "attribute", "start");
    wl_jval items;
    int rc = ev_iter_list(ev, line, in, &items);
    if (rc) return rc;
    const wl_jlist *l = wl_jv_list(items);
    if (GIVEN(p[1]) && p[1].type == WL_JT_STR) {
        ev_release(ev, items);
        return EV_ERR(ev, line, "sum() can't sum strings [use ''.join(seq) instead]");
    }
    wl_jval acc = GIVEN(p[1]) ? wl_jval_retain(p[1]) : wl_jv_int(0);
    for (size_t i = 0; i < l->n && !rc; i++) {
        wl_jval item = l->items[i], got, next;
        if (GIVEN(p[0]) && p[0].type != WL_JT_NONE) {
            if ((rc = wl_jattrgetter(ev, line, item, p[0], wl_jv_none(), &got)) != 0) break;
        } else {
            got = wl_jval_retain(item);
        }
        rc = ev_binary(ev, line, WL_OP_ADD, acc, got, &next);
        ev_release(ev, got);
        ev_release(ev, acc);
        acc = rc ? wl_jv_none() : next;
    }
    ev_release(ev, items);
    if (rc) {
        ev_release(ev, acc);
        return rc;
    }
    *out = acc;
    return 0;
}

FILTER(batch)
{
    BIND("batch", "linecount", "fill_with");
    int rc;
    if (!GIVEN(p[0])) return EV_ERR(ev, line, "batch() needs a line count");
    wl_jval n = p[0]; /* compared with ==, as Jinja2 does: 0 gives an empty first batch */
    wl_jval items;
    if ((rc = ev_iter_list(ev, line, in, &items)) != 0) return rc;
    const wl_jlist *l = wl_jv_list(items);
    wl_jlist *r, *cur = NULL;
    if ((rc = new_generator(ev, line, &r)) != 0) {
        ev_release(ev, items);
        return rc;
    }
    for (size_t i = 0; i < l->n && !rc; i++) {
        if (cur && wl_jv_equal(wl_jv_int((int64_t)cur->n), n)) cur = NULL;
        if (!cur) {
            if ((rc = ev_new_list(ev, line, 0, &cur)) != 0) break;
            if ((rc = ev_list_push(ev, line, r, wl_jv_obj(&cur->h))) != 0) break;
            if (wl_jv_equal(wl_jv_int(0), n)) { /* the empty first batch */
                if ((rc = ev_new_list(ev, line, 0, &cur)) != 0) break;
                if ((rc = ev_list_push(ev, line, r, wl_jv_obj(&cur->h))) != 0) break;
            }
        }
        rc = ev_list_push(ev, line, cur, wl_jval_retain(l->items[i]));
    }
    if (!rc && cur && GIVEN(p[1]) && p[1].type != WL_JT_NONE) {
        for (;;) {
            int less;
            if ((rc = ev_compare(ev, line, WL_OP_LT, wl_jv_int((int64_t)cur->n), n, &less)) != 0 || !less) break;
            if ((rc = ev_steps(ev, line, 1)) != 0) break;
            if ((rc = ev_list_push(ev, line, cur, wl_jval_retain(p[1]))) != 0) break;
        }
    }
    ev_release(ev, items);
    if (rc) ev_release(ev, wl_jv_obj(&r->h));
    else *out = wl_jv_obj(&r->h);
    return rc;
}

FILTER(slice)
{
    BIND("slice", "slices", "fill_with");
    int64_t slices = 0;
    int rc;
    if (!GIVEN(p[0])) return EV_ERR(ev, line, "slice() needs a number of slices");
    if ((rc = want_int(ev, line, p[0], "slices", &slices)) != 0) return rc;
    if (slices == 0) return EV_ERR(ev, line, "integer division or modulo by zero");
    if (slices < 0) { /* range(slices) is empty */
        wl_jlist *none;
        if ((rc = new_generator(ev, line, &none)) == 0) *out = wl_jv_obj(&none->h);
        return rc;
    }
    if ((rc = ev_steps(ev, line, (uint64_t)slices)) != 0) return rc;
    wl_jval items;
    if ((rc = ev_iter_list(ev, line, in, &items)) != 0) return rc;
    const wl_jlist *l = wl_jv_list(items);
    int64_t length = (int64_t)l->n, per = length / slices, extra = length % slices, offset = 0;
    wl_jlist *r;
    if ((rc = new_generator(ev, line, &r)) != 0) {
        ev_release(ev, items);
        return rc;
    }
    for (int64_t s = 0; s < slices && !rc; s++) {
        int64_t start = offset + s * per;
        if (s < extra) offset++;
        int64_t end = offset + (s + 1) * per;
        wl_jlist *t;
        if ((rc = ev_new_list(ev, line, 0, &t)) != 0) break;
        for (int64_t i = start; i < end && !rc; i++) rc = ev_list_push(ev, line, t, wl_jval_retain(l->items[i]));
        if (!rc && GIVEN(p[1]) && p[1].type != WL_JT_NONE && s >= extra) rc = ev_list_push(ev, line, t, wl_jval_retain(p[1]));
        if (rc) ev_release(ev, wl_jv_obj(&t->h));
        else rc = ev_list_push(ev, line, r, wl_jv_obj(&t->h));
    }
    ev_release(ev, items);
    if (rc) ev_release(ev, wl_jv_obj(&r->h));
    else *out = wl_jv_obj(&r->h);
    return rc;
}

FILTER(attr)
{
    BIND("attr", "name");
    if (!GIVEN(p[0]) || p[0].type != WL_JT_STR) return EV_ERR(ev, line, "attr() needs an attribute name");
    const wl_jstr *name = wl_jv_str(p[0]);
    /* Only real attributes: methods, namespace and loop attributes; never dict items. */
    if (in.type == WL_JT_DICT && wl_jmethod_lookup(in, name->data, name->len) < 0 &&
        wl_jmethod_lookup(in, name->data, name->len) != WL_JM_UNSAFE) {
        *out = wl_jv_undefined();
        return 0;
    }
    return ev_getattr(ev, NULL, line, in, name->data, name->len, out);
}

/* map(attribute=..., default=...) or map('filter', args...). */
FILTER(map)
{
    wl_jval items;
    int rc;
    wl_jlist *r;
    if (!wl_jv_truthy(in)) {
        if ((rc = new_generator(ev, line, &r)) == 0) *out = wl_jv_obj(&r->h);
        return rc;
    }
    if ((rc = ev_iter_list(ev, line, in, &items)) != 0) return rc;
    const wl_jlist *l = wl_jv_list(items);
    if ((rc = new_generator(ev, line, &r)) != 0) {
        ev_release(ev, items);
        return rc;
    }
    wl_jval attribute = wl_jv_absent(), def = wl_jv_none();
    int filter_id = -1;
    wl_jargs rest = {NULL, 0, NULL, NULL, 0};
    if (!a->npos && a->nkw) {
        for (size_t k = 0; k < a->nkw && !rc; k++) {
            if (!strcmp(a->kwnames[k]->data, "attribute")) attribute = a->kwvals[k];
            else if (!strcmp(a->kwnames[k]->data, "default")) def = a->kwvals[k];
            else rc = EV_ERR(ev, line, "map(): unexpected keyword argument '%s'", a->kwnames[k]->data);
        }
        if (!rc && attribute.type == WL_JT_ABSENT) rc = EV_ERR(ev, line, "map requires a filter argument");
    } else {
        if (!a->npos) rc = EV_ERR(ev, line, "map requires a filter argument");
        else if (a->pos[0].type != WL_JT_STR ||
                 (filter_id = wl_jfilter_lookup(wl_jv_str(a->pos[0])->data, wl_jv_str(a->pos[0])->len)) < 0)
            rc = EV_ERR(ev, line, "map(): no filter named '%s'", a->pos[0].type == WL_JT_STR ? wl_jv_str(a->pos[0])->data : "?");
        rest.pos = a->npos ? a->pos + 1 : NULL;
        rest.npos = a->npos ? a->npos - 1 : 0;
        rest.kwnames = a->kwnames;
        rest.kwvals = a->kwvals;
        rest.nkw = a->nkw;
    }
    for (size_t i = 0; i < l->n && !rc; i++) {
        wl_jval v;
        if (filter_id >= 0) rc = wl_jfilter_call(ev, line, filter_id, l->items[i], &rest, &v);
        else rc = wl_jattrgetter(ev, line, l->items[i], attribute, def, &v);
        if (!rc) rc = ev_list_push(ev, line, r, v);
    }
    ev_release(ev, items);
    if (rc) ev_release(ev, wl_jv_obj(&r->h));
    else *out = wl_jv_obj(&r->h);
    return rc;
}

/* select / reject / selectattr / rejectattr */
static int select_or_reject(wl_jeval *ev, uint32_t line, wl_jval in, const wl_jargs *a, int keep_if, int lookup_attr,
                            wl_jval *out)
{
    wl_jlist *r;
    int rc = new_generator(ev, line, &r);
    if (rc) return rc;
    *out = wl_jv_obj(&r->h);
    if (!wl_jv_truthy(in)) return 0;
    wl_jval items;
    if ((rc = ev_iter_list(ev, line, in, &items)) != 0) {
        ev_release(ev, *out);
        return rc;
    }
    const wl_jlist *l = wl_jv_list(items);
    size_t off = 0;
    wl_jval attr = wl_jv_none();
    if (lookup_attr) {
        if (!a->npos) rc = EV_ERR(ev, line, "Missing parameter for attribute name");
        else attr = a->pos[0];
        off = 1;
    }
    int test_id = -1;
    wl_jargs rest = {NULL, 0, a->kwnames, a->kwvals, a->nkw};
    if (!rc && a->npos > off) {
        wl_jval name = a->pos[off];
        if (name.type != WL_JT_STR || (test_id = wl_jtest_lookup(wl_jv_str(name)->data, wl_jv_str(name)->len)) < 0)
            rc = EV_ERR(ev, line, "no test named '%s'", name.type == WL_JT_STR ? wl_jv_str(name)->data : "?");
        rest.pos = a->pos + off + 1;
        rest.npos = a->npos - off - 1;
    }
    for (size_t i = 0; i < l->n && !rc; i++) {
        wl_jval subject;
        if (lookup_attr) {
            if ((rc = wl_jattrgetter(ev, line, l->items[i], attr, wl_jv_none(), &subject)) != 0) break;
        } else {
            subject = wl_jval_retain(l->items[i]);
        }
        int t;
        if (test_id >= 0) rc = wl_jtest_call(ev, line, test_id, subject, &rest, &t);
        else t = wl_jv_truthy(subject);
        ev_release(ev, subject);
        if (!rc && (t != 0) == keep_if) rc = ev_list_push(ev, line, r, wl_jval_retain(l->items[i]));
    }
    ev_release(ev, items);
    if (rc) ev_release(ev, *out);
    return rc;
}

FILTER(select) { return select_or_reject(ev, line, in, a, 1, 0, out); }
FILTER(reject) { return select_or_reject(ev, line, in, a, 0, 0, out); }
FILTER(selectattr) { return select_or_reject(ev, line, in, a, 1, 1, out); }
FILTER(rejectattr) { return select_or_reject(ev, line, in, a, 0, 1, out); }
