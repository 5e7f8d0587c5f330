/* value.c - making, counting and freeing template values; Python's ==, hash and truth. */
#include "text/jinja/value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory with a budget ------------------------------------------------------------ */

static int budget_ok(wl_jheap *h, size_t more)
{
    if (!h || !h->max_bytes) return 1;
    if (more > h->max_bytes || h->bytes > h->max_bytes - more) {
        h->over_budget = 1;
        return 0;
    }
    return 1;
}

static void *mem_alloc(wl_jheap *h, size_t size)
{
    if (!budget_ok(h, size)) return NULL;
    void *p = malloc(size ? size : 1);
    if (p && h) h->bytes += size;
    return p;
}

static void *mem_realloc(wl_jheap *h, void *p, size_t old_size, size_t new_size)
{
    if (new_size > old_size && !budget_ok(h, new_size - old_size)) return NULL;
    void *q = realloc(p, new_size ? new_size : 1);
    if (q && h) h->bytes = h->bytes - old_size + new_size;
    return q;
}

static void mem_free(wl_jheap *h, void *p, size_t size)
{
    if (!p) return;
    if (h) h->bytes -= size;
    free(p);
}

/* Bytes an object holds (itself and the arrays it owns), for the budget. */
static size_t obj_size(const wl_jobj *o)
{
    switch (o->type) {
    case WL_JT_STR: return sizeof(wl_jstr) + ((const wl_jstr *)o)->len + 1;
    case WL_JT_LIST: return sizeof(wl_jlist) + ((const wl_jlist *)o)->cap * sizeof(wl_jval);
    case WL_JT_DICT:
    case WL_JT_NAMESPACE: {
        const wl_jdict *d = (const wl_jdict *)o;
        return sizeof(wl_jdict) + d->cap * sizeof(wl_jdict_entry) + d->index_cap * sizeof(uint32_t);
    }
    case WL_JT_MACRO: return sizeof(wl_jmacro);
    case WL_JT_METHOD: return sizeof(wl_jmethod);
    case WL_JT_LOOP: return sizeof(wl_jloop);
    case WL_JT_FRAME: return sizeof(wl_jframe) + ((const wl_jframe *)o)->cap * sizeof(wl_jframe_var);
    default: return 0;
    }
}

/* Frees the object's own memory, not the objects it refers to. */
static void obj_free_memory(wl_jheap *h, wl_jobj *o)
{
    size_t size = obj_size(o);
    switch (o->type) {
    case WL_JT_LIST: free(((wl_jlist *)o)->items); break;
    case WL_JT_DICT:
    case WL_JT_NAMESPACE:
        free(((wl_jdict *)o)->ents);
        free(((wl_jdict *)o)->index);
        break;
    case WL_JT_FRAME: free(((wl_jframe *)o)->vars); break;
    default: break;
    }
    if (h) h->bytes -= size;
    free(o);
}

static void *obj_new(wl_jheap *h, uint8_t type, size_t size)
{
    wl_jobj *o = mem_alloc(h, size);
    if (!o) return NULL;
    memset(o, 0, size);
    o->type = type;
    o->refs = 1;
    if (h) {
        o->owner = WL_JOWN_RENDER;
        o->next = h->live;
        if (h->live) h->live->prev = o;
        h->live = o;
    } else {
        o->owner = WL_JOWN_CALLER;
    }
    return o;
}

static void heap_unlink(wl_jheap *h, wl_jobj *o)
{
    if (o->prev) o->prev->next = o->next;
    else h->live = o->next;
    if (o->next) o->next->prev = o->prev;
    o->prev = o->next = NULL;
}

/* ---- releasing ----------------------------------------------------------------------- */

/* Objects whose count reached zero wait in a chain (through `next`) until their children are
 * released, so freeing a deep structure needs no recursion. */
typedef struct dead_chain {
    wl_jobj *first;
} dead_chain;

static void drop(wl_jheap *h, dead_chain *dead, wl_jval v, uint8_t owner)
{
    if (!wl_jv_is_obj(v)) return;
    wl_jobj *o = v.u.o;
    if (o->owner != owner) return;
    if (--o->refs > 0) return;
    if (h) heap_unlink(h, o);
    o->next = dead->first;
    dead->first = o;
}

static void drain(wl_jheap *h, dead_chain *dead, uint8_t owner)
{
    while (dead->first) {
        wl_jobj *o = dead->first;
        dead->first = o->next;
        switch (o->type) {
        case WL_JT_LIST: {
            wl_jlist *l = (wl_jlist *)o;
            for (size_t i = 0; i < l->n; i++) drop(h, dead, l->items[i], owner);
            break;
        }
        case WL_JT_DICT:
        case WL_JT_NAMESPACE: {
            wl_jdict *d = (wl_jdict *)o;
            for (size_t i = 0; i < d->n; i++) {
                drop(h, dead, d->ents[i].key, owner);
                drop(h, dead, d->ents[i].val, owner);
            }
            break;
        }
        case WL_JT_MACRO: {
            wl_jmacro *m = (wl_jmacro *)o;
            if (m->closure) drop(h, dead, wl_jv_obj(&m->closure->h), owner);
            break;
        }
        case WL_JT_METHOD: drop(h, dead, ((wl_jmethod *)o)->self, owner); break;
        case WL_JT_LOOP:
            drop(h, dead, ((wl_jloop *)o)->items, owner);
            drop(h, dead, ((wl_jloop *)o)->changed, owner);
            break;
        case WL_JT_FRAME: {
            wl_jframe *f = (wl_jframe *)o;
            for (uint32_t i = 0; i < f->n; i++) drop(h, dead, f->vars[i].val, owner);
            if (f->parent) drop(h, dead, wl_jv_obj(&f->parent->h), owner);
            break;
        }
        default: break;
        }
        obj_free_memory(h, o);
    }
}

void wl_jval_release(wl_jheap *h, wl_jval v)
{
    if (!wl_jv_is_obj(v) || v.u.o->owner != WL_JOWN_RENDER) return;
    dead_chain dead = {NULL};
    drop(h, &dead, v, WL_JOWN_RENDER);
    drain(h, &dead, WL_JOWN_RENDER);
}

void wl_jval_release_caller(wl_jval v)
{
    if (!wl_jv_is_obj(v) || v.u.o->owner != WL_JOWN_CALLER) return;
    dead_chain dead = {NULL};
    drop(NULL, &dead, v, WL_JOWN_CALLER);
    drain(NULL, &dead, WL_JOWN_CALLER);
}

void wl_jheap_sweep(wl_jheap *h)
{
    wl_jobj *o = h->live;
    while (o) {
        wl_jobj *next = o->next;
        obj_free_memory(h, o);
        o = next;
    }
    h->live = NULL;
}

/* ---- strings ------------------------------------------------------------------------- */

static size_t count_code_points(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

wl_jstr *wl_jstr_alloc(wl_jheap *h, size_t len)
{
    if (len > SIZE_MAX / 2) return NULL;
    wl_jstr *s = obj_new(h, WL_JT_STR, sizeof(wl_jstr) + len + 1);
    if (!s) return NULL;
    s->len = len;
    s->data[len] = '\0';
    return s;
}

uint64_t wl_jstr_hash_bytes(const char *s, size_t len)
{
    uint64_t x = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) x = (x ^ (unsigned char)s[i]) * 1099511628211ULL;
    return x;
}

wl_jstr *wl_jstr_new(wl_jheap *h, const char *p, size_t len)
{
    wl_jstr *s = wl_jstr_alloc(h, len);
    if (!s) return NULL;
    if (len) memcpy(s->data, p, len);
    s->ncp = count_code_points(s->data, len);
    /* Hashed now: strings shared between threads (STATIC, CALLER) are never written later. */
    s->hash = wl_jstr_hash_bytes(s->data, len);
    s->hashed = 1;
    return s;
}

wl_jstr *wl_jstr_new_static(const char *p, size_t len)
{
    wl_jstr *s = wl_jstr_new(NULL, p, len);
    if (s) s->h.owner = WL_JOWN_STATIC;
    return s;
}

void wl_jobj_free_static(wl_jobj *o)
{
    if (o) obj_free_memory(NULL, o);
}

/* ---- lists --------------------------------------------------------------------------- */

static void release_any(wl_jheap *h, wl_jval v)
{
    if (h) wl_jval_release(h, v);
    else wl_jval_release_caller(v);
}

wl_jlist *wl_jlist_new(wl_jheap *h, size_t cap)
{
    wl_jlist *l = obj_new(h, WL_JT_LIST, sizeof(wl_jlist));
    if (!l) return NULL;
    if (cap) {
        wl_jval *items = NULL;
        if (cap <= SIZE_MAX / sizeof(wl_jval) / 2) items = mem_alloc(h, cap * sizeof(wl_jval));
        if (!items) {
            release_any(h, wl_jv_obj(&l->h));
            return NULL;
        }
        l->items = items;
        l->cap = cap;
    }
    return l;
}

int wl_jlist_push(wl_jheap *h, wl_jlist *l, wl_jval v)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 4;
        if (ncap > SIZE_MAX / sizeof(wl_jval) / 2) goto fail;
        wl_jval *items = mem_realloc(h, l->items, l->cap * sizeof(wl_jval), ncap * sizeof(wl_jval));
        if (!items) goto fail;
        l->items = items;
        l->cap = ncap;
    }
    l->items[l->n++] = v;
    return 0;
fail:
    release_any(h, v);
    return -1;
}

/* ---- hashing and equality ------------------------------------------------------------ */

enum { MAX_HASH_DEPTH = 200 };

static int hashable_depth(wl_jval v, int depth)
{
    switch (v.type) {
    case WL_JT_UNDEFINED: /* as Jinja2's Undefined: all equal, one hash */
    case WL_JT_NONE:
    case WL_JT_BOOL:
    case WL_JT_INT:
    case WL_JT_FLOAT:
    case WL_JT_STR:
    case WL_JT_FUNC: return 1;
    case WL_JT_LIST: {
        const wl_jlist *l = wl_jv_list(v);
        if ((l->kind != WL_JLIST_TUPLE && l->kind != WL_JLIST_RANGE) || depth > MAX_HASH_DEPTH) return 0;
        for (size_t i = 0; i < l->n; i++)
            if (!hashable_depth(l->items[i], depth + 1)) return 0;
        return 1;
    }
    default: return 0;
    }
}

int wl_jv_hashable(wl_jval v)
{
    return hashable_depth(v, 0);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t wl_jv_hash(wl_jval v)
{
    switch (v.type) {
    case WL_JT_UNDEFINED: return 0x2545f4914f6cdd1dULL;
    case WL_JT_NONE: return 0x9e3779b97f4a7c15ULL;
    case WL_JT_BOOL:
    case WL_JT_INT: return mix64((uint64_t)v.u.i);
    case WL_JT_FLOAT: {
        /* Equal numbers hash alike: 2.0 like 2. */
        double f = v.u.f;
        if (f == floor(f) && f >= -9.2e18 && f <= 9.2e18) return mix64((uint64_t)(int64_t)f);
        uint64_t bits;
        if (f == 0) f = 0; /* -0.0 like 0.0 */
        memcpy(&bits, &f, sizeof bits);
        return mix64(bits ^ 0x5555);
    }
    case WL_JT_STR: {
        wl_jstr *s = wl_jv_str(v);
        if (!s->hashed) { /* only RENDER strings are built unhashed: one thread owns them */
            s->hash = wl_jstr_hash_bytes(s->data, s->len);
            s->hashed = 1;
        }
        return s->hash;
    }
    case WL_JT_FUNC: return mix64(0x77 + v.sub);
    case WL_JT_LIST: { /* a hashable tuple: its depth is bounded (wl_jv_hashable) */
        const wl_jlist *l = wl_jv_list(v);
        uint64_t x = 0x345678;
        for (size_t i = 0; i < l->n; i++) x = mix64(x ^ wl_jv_hash(l->items[i]));
        return x;
    }
    default: return 0;
    }
}

static int is_number(wl_jval v)
{
    return v.type == WL_JT_BOOL || v.type == WL_JT_INT || v.type == WL_JT_FLOAT;
}

/* Exact comparison of an integer and a double, as Python does it. Returns -1, 0, 1 (2 = NaN). */
static int cmp_int_float(int64_t i, double f)
{
    if (isnan(f)) return 2;
    if (f >= 9223372036854775808.0) return -1;
    if (f < -9223372036854775808.0) return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (i < fi) return -1;
    if (i > fi) return 1;
    return fl == f ? 0 : -1;
}

static int equal_depth(wl_jval a, wl_jval b, int depth)
{
    if (depth > 200) return 0;
    if (is_number(a) && is_number(b)) {
        if (a.type != WL_JT_FLOAT && b.type != WL_JT_FLOAT) return a.u.i == b.u.i;
        if (a.type == WL_JT_FLOAT && b.type == WL_JT_FLOAT) return a.u.f == b.u.f;
        if (a.type == WL_JT_FLOAT) return cmp_int_float(b.u.i, a.u.f) == 0;
        return cmp_int_float(a.u.i, b.u.f) == 0;
    }
    if (a.type != b.type) return 0;
    switch (a.type) {
    case WL_JT_UNDEFINED:
    case WL_JT_NONE: return 1;
    case WL_JT_FUNC: return a.sub == b.sub;
    case WL_JT_STR: {
        const wl_jstr *x = wl_jv_str(a), *y = wl_jv_str(b);
        if (x == y) return 1;
        if (x->len != y->len || (x->hashed && y->hashed && x->hash != y->hash)) return 0;
        return memcmp(x->data, y->data, x->len) == 0;
    }
    case WL_JT_LIST: {
        const wl_jlist *x = wl_jv_list(a), *y = wl_jv_list(b);
        if (x == y) return 1;
        if (x->kind != y->kind || x->n != y->n || x->kind == WL_JLIST_GENERATOR) return 0;
        for (size_t i = 0; i < x->n; i++)
            if (!equal_depth(x->items[i], y->items[i], depth + 1)) return 0;
        return 1;
    }
    case WL_JT_DICT: {
        const wl_jdict *x = wl_jv_dict(a), *y = wl_jv_dict(b);
        if (x == y) return 1;
        if (x->n != y->n) return 0;
        for (size_t i = 0; i < x->n; i++) {
            const wl_jval *other = wl_jdict_get(y, x->ents[i].key);
            if (!other || !equal_depth(x->ents[i].val, *other, depth + 1)) return 0;
        }
        return 1;
    }
    default: return a.u.o == b.u.o; /* identity */
    }
}

int wl_jv_equal(wl_jval a, wl_jval b)
{
    return equal_depth(a, b, 0);
}

int wl_jv_truthy(wl_jval v)
{
    switch (v.type) {
    case WL_JT_UNDEFINED:
    case WL_JT_NONE:
    case WL_JT_ABSENT: return 0;
    case WL_JT_BOOL:
    case WL_JT_INT: return v.u.i != 0;
    case WL_JT_FLOAT: return v.u.f != 0.0;
    case WL_JT_STR: return wl_jv_str(v)->len != 0;
    case WL_JT_LIST: return wl_jv_list(v)->n != 0 || wl_jv_list(v)->kind == WL_JLIST_GENERATOR;
    case WL_JT_DICT: return wl_jv_dict(v)->n != 0;
    case WL_JT_LOOP: {
        const wl_jloop *l = (const wl_jloop *)v.u.o;
        return wl_jv_list(l->items)->n != 0;
    }
    default: return 1;
    }
}

const char *wl_jv_type_name(wl_jval v)
{
    switch (v.type) {
    case WL_JT_UNDEFINED: return "Undefined";
    case WL_JT_NONE: return "NoneType";
    case WL_JT_BOOL: return "bool";
    case WL_JT_INT: return "int";
    case WL_JT_FLOAT: return "float";
    case WL_JT_FUNC: return "function";
    case WL_JT_STR: return "str";
    case WL_JT_LIST:
        switch (wl_jv_list(v)->kind) {
        case WL_JLIST_TUPLE: return "tuple";
        case WL_JLIST_RANGE: return "range";
        case WL_JLIST_DICT_ITEMS: return "dict_items";
        case WL_JLIST_DICT_KEYS: return "dict_keys";
        case WL_JLIST_DICT_VALUES: return "dict_values";
        case WL_JLIST_GENERATOR: return "generator";
        default: return "list";
        }
    case WL_JT_DICT: return "dict";
    case WL_JT_NAMESPACE: return "Namespace";
    case WL_JT_MACRO: return "Macro";
    case WL_JT_METHOD: return "builtin_function_or_method";
    case WL_JT_LOOP: return "LoopContext";
    default: return "object";
    }
}

/* ---- dicts --------------------------------------------------------------------------- */

enum { DICT_SMALL = 8 };

wl_jdict *wl_jdict_new(wl_jheap *h, uint8_t type)
{
    return obj_new(h, type, sizeof(wl_jdict));
}

static size_t dict_find(const wl_jdict *d, wl_jval key, uint64_t hash)
{
    if (!d->index) {
        for (size_t i = 0; i < d->n; i++)
            if (wl_jv_equal(d->ents[i].key, key)) return i;
        return SIZE_MAX;
    }
    size_t mask = d->index_cap - 1;
    for (size_t pos = (size_t)hash & mask;; pos = (pos + 1) & mask) {
        uint32_t slot = d->index[pos];
        if (!slot) return SIZE_MAX;
        if (wl_jv_equal(d->ents[slot - 1].key, key)) return slot - 1;
    }
}

static int dict_reindex(wl_jheap *h, wl_jdict *d, size_t cap)
{
    uint32_t *index = mem_alloc(h, cap * sizeof(uint32_t));
    if (!index) return -1;
    memset(index, 0, cap * sizeof(uint32_t));
    for (size_t i = 0; i < d->n; i++) {
        size_t pos = (size_t)wl_jv_hash(d->ents[i].key) & (cap - 1);
        while (index[pos]) pos = (pos + 1) & (cap - 1);
        index[pos] = (uint32_t)(i + 1);
    }
    mem_free(h, d->index, d->index_cap * sizeof(uint32_t));
    d->index = index;
    d->index_cap = cap;
    return 0;
}

int wl_jdict_set(wl_jheap *h, wl_jdict *d, wl_jval key, wl_jval val)
{
    if (!wl_jv_hashable(key)) {
        release_any(h, key);
        release_any(h, val);
        return -2;
    }
    uint64_t hash = wl_jv_hash(key);
    size_t at = dict_find(d, key, hash);
    if (at != SIZE_MAX) {
        release_any(h, d->ents[at].val);
        d->ents[at].val = val;
        release_any(h, key);
        return 0;
    }
    if (d->n >= UINT32_MAX - 1) goto fail;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 4;
        wl_jdict_entry *ents =
            mem_realloc(h, d->ents, d->cap * sizeof(wl_jdict_entry), ncap * sizeof(wl_jdict_entry));
        if (!ents) goto fail;
        d->ents = ents;
        d->cap = ncap;
    }
    if (d->n + 1 > DICT_SMALL && (d->n + 1) * 2 > d->index_cap) {
        size_t cap = d->index_cap ? d->index_cap : 16;
        while ((d->n + 1) * 2 > cap) cap *= 2;
        if (dict_reindex(h, d, cap) != 0) goto fail;
    }
    d->ents[d->n].key = key;
    d->ents[d->n].val = val;
    d->n++;
    if (d->index) {
        size_t mask = d->index_cap - 1, pos = (size_t)hash & mask;
        while (d->index[pos]) pos = (pos + 1) & mask;
        d->index[pos] = (uint32_t)d->n;
    }
    return 0;
fail:
    release_any(h, key);
    release_any(h, val);
    return -1;
}

wl_jval *wl_jdict_get(const wl_jdict *d, wl_jval key)
{
    if (!wl_jv_hashable(key)) return NULL;
    size_t at = dict_find(d, key, wl_jv_hash(key));
    return at == SIZE_MAX ? NULL : &d->ents[at].val;
}

wl_jval *wl_jdict_get_str(const wl_jdict *d, const char *s, size_t len)
{
    if (!d->index) {
        for (size_t i = 0; i < d->n; i++) {
            wl_jval k = d->ents[i].key;
            if (k.type == WL_JT_STR && wl_jv_str(k)->len == len && memcmp(wl_jv_str(k)->data, s, len) == 0)
                return &d->ents[i].val;
        }
        return NULL;
    }
    uint64_t x = wl_jstr_hash_bytes(s, len);
    size_t mask = d->index_cap - 1;
    for (size_t pos = (size_t)x & mask;; pos = (pos + 1) & mask) {
        uint32_t slot = d->index[pos];
        if (!slot) return NULL;
        wl_jval k = d->ents[slot - 1].key;
        if (k.type == WL_JT_STR && wl_jv_str(k)->len == len && memcmp(wl_jv_str(k)->data, s, len) == 0)
            return &d->ents[slot - 1].val;
    }
}

/* ---- macros, methods, loops, frames -------------------------------------------------- */

wl_jmacro *wl_jmacro_new(wl_jheap *h, const struct wl_jnode *node, wl_jframe *closure)
{
    wl_jmacro *m = obj_new(h, WL_JT_MACRO, sizeof(wl_jmacro));
    if (!m) return NULL;
    m->node = node;
    m->closure = closure;
    if (closure) wl_jval_retain(wl_jv_obj(&closure->h));
    return m;
}

wl_jmethod *wl_jmethod_new(wl_jheap *h, wl_jval self, int id)
{
    wl_jmethod *m = obj_new(h, WL_JT_METHOD, sizeof(wl_jmethod));
    if (!m) return NULL;
    m->self = wl_jval_retain(self);
    m->id = id;
    return m;
}

wl_jloop *wl_jloop_new(wl_jheap *h, wl_jval items)
{
    wl_jloop *l = obj_new(h, WL_JT_LOOP, sizeof(wl_jloop));
    if (!l) return NULL;
    l->items = wl_jval_retain(items);
    l->changed = wl_jv_absent();
    return l;
}

wl_jframe *wl_jframe_new(wl_jheap *h, wl_jframe *parent)
{
    wl_jframe *f = obj_new(h, WL_JT_FRAME, sizeof(wl_jframe));
    if (!f) return NULL;
    f->parent = parent;
    if (parent) wl_jval_retain(wl_jv_obj(&parent->h));
    return f;
}

void wl_jframe_clear(wl_jheap *h, wl_jframe *f)
{
    /* Detach first: releasing may free objects that point back at this frame. */
    uint32_t n = f->n;
    f->n = 0;
    for (uint32_t i = 0; i < n; i++) wl_jval_release(h, f->vars[i].val);
}

wl_jval *wl_jframe_find(const wl_jframe *f, uint32_t sym)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->vars[i].sym == sym) return &f->vars[i].val;
    return NULL;
}

int wl_jframe_set(wl_jheap *h, wl_jframe *f, uint32_t sym, wl_jval v)
{
    wl_jval *slot = wl_jframe_find(f, sym);
    if (slot) {
        wl_jval old = *slot;
        *slot = v;
        wl_jval_release(h, old);
        return 0;
    }
    if (f->n == f->cap) {
        uint32_t ncap = f->cap ? f->cap * 2 : 4;
        wl_jframe_var *vars =
            mem_realloc(h, f->vars, f->cap * sizeof(wl_jframe_var), ncap * sizeof(wl_jframe_var));
        if (!vars) {
            wl_jval_release(h, v);
            return -1;
        }
        f->vars = vars;
        f->cap = ncap;
    }
    f->vars[f->n].sym = sym;
    f->vars[f->n].val = v;
    f->n++;
    return 0;
}
