/* value.h - the values templates compute with, modelled on Python's (what Jinja2 runs on).
 *
 * A wl_jval is a small tagged value passed by value: immediates (undefined, none, bool, int,
 * float, builtin function) live inside it; strings, lists, dicts, namespaces, macros and the
 * rest are heap objects it points to.
 *
 * Ownership. Every object records who owns it:
 *  - STATIC: a constant of a parsed template (string literals). Never counted, never freed by
 *    a render; freed with the template. Renders on several threads may share them.
 *  - CALLER: built through the public value API (jinja.h) for a render's context. Counted only
 *    by that API; a render reads them without touching their counts, which is what lets several
 *    renders share one context.
 *  - RENDER: made while rendering. Counted, and also linked into the render's heap, so whatever
 *    is left when the render ends (reference cycles through namespaces or closures included)
 *    is freed in one sweep.
 * wl_jval_retain()/wl_jval_release() only act on RENDER objects.
 *
 * Strings are always valid UTF-8 and NUL-terminated after their length.
 */
#ifndef WL_TEXT_JINJA_VALUE_H
#define WL_TEXT_JINJA_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum wl_jtype {
    WL_JT_UNDEFINED = 0, /* u.p: the wl_jnode that made it (for messages) or NULL;
                            sub: WL_JUNDEF_*; aux: type of the object that lacked it */
    WL_JT_NONE,
    WL_JT_BOOL,      /* u.i: 0 or 1 */
    WL_JT_INT,       /* u.i */
    WL_JT_FLOAT,     /* u.f */
    WL_JT_FUNC,      /* a global function (range, namespace, ...): sub = WL_JFN_* */
    WL_JT_STR,       /* u.o: wl_jstr */
    WL_JT_LIST,      /* u.o: wl_jlist (also tuples, ranges, dict views: see wl_jlist.kind) */
    WL_JT_DICT,      /* u.o: wl_jdict */
    WL_JT_NAMESPACE, /* u.o: wl_jdict */
    WL_JT_MACRO,     /* u.o: wl_jmacro */
    WL_JT_METHOD,    /* u.o: wl_jmethod: a method bound to its object */
    WL_JT_LOOP,      /* u.o: wl_jloop: the `loop` of a for loop */
    WL_JT_FRAME,     /* internal: a scope of variables (never a template value) */
    WL_JT_ABSENT,    /* internal: "no such value" in lookups (never a template value) */
} wl_jtype;

/* Kinds of undefined: reading a missing name/attribute, or an attribute the sandbox hides
 * (using the latter raises a security error, as in Jinja2's sandbox). */
enum { WL_JUNDEF_PLAIN = 0, WL_JUNDEF_UNSAFE = 1 };

enum { WL_JOWN_STATIC = 0, WL_JOWN_CALLER = 1, WL_JOWN_RENDER = 2 };

typedef struct wl_jobj {
    uint8_t type;  /* WL_JT_* */
    uint8_t owner; /* WL_JOWN_* */
    uint8_t mark;  /* scratch for the sweep */
    size_t refs;
    struct wl_jobj *prev, *next; /* RENDER: the heap's list of live objects */
} wl_jobj;

typedef struct wl_jval {
    uint8_t type; /* WL_JT_* */
    uint8_t sub;  /* UNDEFINED: WL_JUNDEF_*; FUNC: WL_JFN_* */
    uint8_t aux;  /* UNDEFINED: WL_JT_* of the object whose attribute/item was missing */
    union {
        int64_t i;
        double f;
        wl_jobj *o;
        const void *p;
    } u;
} wl_jval;

typedef struct wl_jstr {
    wl_jobj h;
    size_t len;    /* bytes */
    size_t ncp;    /* code points */
    uint64_t hash; /* valid when `hashed` (set at creation, or on first use for RENDER strings) */
    uint8_t hashed;
    char data[];   /* len bytes of UTF-8, then a NUL */
} wl_jstr;

/* What a list stands for in Python; only printing (repr) and a few checks tell them apart. */
enum {
    WL_JLIST_LIST = 0,
    WL_JLIST_TUPLE,
    WL_JLIST_RANGE,       /* range(start, stop, step) */
    WL_JLIST_DICT_ITEMS,  /* dict.items() */
    WL_JLIST_DICT_KEYS,   /* dict.keys() */
    WL_JLIST_DICT_VALUES, /* dict.values() */
    WL_JLIST_GENERATOR,   /* what filters like map() and select() return: always true, no len() */
};

typedef struct wl_jlist {
    wl_jobj h;
    uint8_t kind; /* WL_JLIST_* */
    size_t n, cap;
    wl_jval *items;
    int64_t range_start, range_stop, range_step; /* WL_JLIST_RANGE: for printing */
    size_t consumed; /* WL_JLIST_GENERATOR: items already taken (a generator runs once) */
} wl_jlist;

typedef struct wl_jdict_entry {
    wl_jval key, val;
} wl_jdict_entry;

/* Insertion-ordered, like Python's dict. Entries are never removed. */
typedef struct wl_jdict {
    wl_jobj h;
    size_t n, cap;
    wl_jdict_entry *ents;
    uint32_t *index;  /* open addressing: entry index + 1, 0 = empty; NULL while small */
    size_t index_cap; /* power of two */
} wl_jdict;

struct wl_jnode;
struct wl_jframe;

typedef struct wl_jmacro {
    wl_jobj h;
    const struct wl_jnode *node;  /* the {% macro %} or {% call %} statement */
    struct wl_jframe *closure;    /* the scope it was defined in (a counted reference) */
} wl_jmacro;

typedef struct wl_jmethod {
    wl_jobj h;
    wl_jval self;
    int id; /* WL_JM_* (methods.h) */
} wl_jmethod;

typedef struct wl_jloop {
    wl_jobj h;
    wl_jval items;   /* the list iterated (counted) */
    int64_t index0;  /* current position */
    wl_jval changed; /* last argument list of loop.changed(), ABSENT before the first call */
} wl_jloop;

typedef struct wl_jframe_var {
    uint32_t sym;
    wl_jval val;
} wl_jframe_var;

typedef struct wl_jframe {
    wl_jobj h;
    struct wl_jframe *parent; /* counted */
    uint32_t n, cap;
    wl_jframe_var *vars;
} wl_jframe;

/* The objects a render made, and a budget on the memory they take. */
typedef struct wl_jheap {
    wl_jobj *live;      /* doubly linked through prev/next */
    size_t bytes;       /* bytes currently held by RENDER objects */
    size_t max_bytes;   /* budget; 0 = none */
    int over_budget;    /* set when an allocation failed for the budget (not for the system) */
} wl_jheap;

/* ---- immediates ---------------------------------------------------------------------- */
static inline wl_jval wl_jv_make(uint8_t type) { wl_jval v; v.type = type; v.sub = 0; v.aux = 0; v.u.i = 0; return v; }
static inline wl_jval wl_jv_undefined(void) { wl_jval v = wl_jv_make(WL_JT_UNDEFINED); v.u.p = NULL; return v; }
static inline wl_jval wl_jv_undefined_at(const void *node, uint8_t sub, uint8_t obj_type)
{
    wl_jval v = wl_jv_make(WL_JT_UNDEFINED);
    v.u.p = node;
    v.sub = sub;
    v.aux = obj_type;
    return v;
}
static inline wl_jval wl_jv_absent(void) { return wl_jv_make(WL_JT_ABSENT); }
static inline wl_jval wl_jv_none(void) { return wl_jv_make(WL_JT_NONE); }
static inline wl_jval wl_jv_bool(int b) { wl_jval v = wl_jv_make(WL_JT_BOOL); v.u.i = b ? 1 : 0; return v; }
static inline wl_jval wl_jv_int(int64_t i) { wl_jval v = wl_jv_make(WL_JT_INT); v.u.i = i; return v; }
static inline wl_jval wl_jv_float(double f) { wl_jval v = wl_jv_make(WL_JT_FLOAT); v.u.f = f; return v; }
static inline wl_jval wl_jv_func(int id) { wl_jval v = wl_jv_make(WL_JT_FUNC); v.sub = (uint8_t)id; return v; }
static inline wl_jval wl_jv_obj(wl_jobj *o) { wl_jval v = wl_jv_make(o->type); v.u.o = o; return v; }

static inline int wl_jv_is_obj(wl_jval v) { return v.type >= WL_JT_STR && v.type <= WL_JT_FRAME; }
static inline wl_jstr *wl_jv_str(wl_jval v) { return (wl_jstr *)v.u.o; }
static inline wl_jlist *wl_jv_list(wl_jval v) { return (wl_jlist *)v.u.o; }
static inline wl_jdict *wl_jv_dict(wl_jval v) { return (wl_jdict *)v.u.o; }

/* ---- counting ------------------------------------------------------------------------ */
/* Both act only on RENDER objects (see above). release frees objects whose count reaches
 * zero, iteratively (deeply nested values cannot exhaust the stack). h may be NULL only when
 * v holds no RENDER object. */
static inline wl_jval wl_jval_retain(wl_jval v)
{
    if (wl_jv_is_obj(v) && v.u.o->owner == WL_JOWN_RENDER) v.u.o->refs++;
    return v;
}
void wl_jval_release(wl_jheap *h, wl_jval v);

/* Frees every object still in the heap (cycles included) and resets it. */
void wl_jheap_sweep(wl_jheap *h);

/* Frees a CALLER object tree (public value API). */
void wl_jval_release_caller(wl_jval v);

/* ---- making objects ------------------------------------------------------------------ */
/* All return NULL when memory (or the heap's budget) runs out. h == NULL makes CALLER objects;
 * wl_jstr_new_static() makes STATIC ones (freed with wl_jobj_free_static()). */
wl_jstr *wl_jstr_new(wl_jheap *h, const char *s, size_t len);
/* An uninitialised string of len bytes (ncp must be set by the caller, data NUL-terminated). */
wl_jstr *wl_jstr_alloc(wl_jheap *h, size_t len);
wl_jstr *wl_jstr_new_static(const char *s, size_t len);
void wl_jobj_free_static(wl_jobj *o);

wl_jlist *wl_jlist_new(wl_jheap *h, size_t cap);
/* Appends v, taking over the reference the caller holds. Returns 0 or -1 (v is released). */
int wl_jlist_push(wl_jheap *h, wl_jlist *l, wl_jval v);

wl_jdict *wl_jdict_new(wl_jheap *h, uint8_t type /* WL_JT_DICT or WL_JT_NAMESPACE */);
/* Sets key to val, taking over both references. Returns 0, -1 on memory (both released), or
 * -2 when the key is not hashable (both released). */
int wl_jdict_set(wl_jheap *h, wl_jdict *d, wl_jval key, wl_jval val);
/* The value stored under key (borrowed), or NULL. Unhashable keys find nothing. */
wl_jval *wl_jdict_get(const wl_jdict *d, wl_jval key);
wl_jval *wl_jdict_get_str(const wl_jdict *d, const char *s, size_t len);

wl_jmacro *wl_jmacro_new(wl_jheap *h, const struct wl_jnode *node, struct wl_jframe *closure);
wl_jmethod *wl_jmethod_new(wl_jheap *h, wl_jval self, int id); /* retains self */
wl_jloop *wl_jloop_new(wl_jheap *h, wl_jval items);           /* retains items */
wl_jframe *wl_jframe_new(wl_jheap *h, wl_jframe *parent);       /* retains parent */

/* Releases every variable of the frame (breaks closure cycles when a scope ends). */
void wl_jframe_clear(wl_jheap *h, wl_jframe *f);
/* Sets sym in f, taking over the reference. Returns 0 or -1. */
int wl_jframe_set(wl_jheap *h, wl_jframe *f, uint32_t sym, wl_jval v);
/* Borrowed pointer to sym's value in f itself (not its parents), or NULL. */
wl_jval *wl_jframe_find(const wl_jframe *f, uint32_t sym);

/* ---- Python semantics that do not fail ------------------------------------------------ */
/* Hashable: str, numbers, none, and tuples of those (nested at most 200 deep). */
int wl_jv_hashable(wl_jval v);
uint64_t wl_jv_hash(wl_jval v); /* v hashable */
/* The hash of string bytes (what wl_jv_hash gives a string). */
uint64_t wl_jstr_hash_bytes(const char *s, size_t len);
/* Python ==, for values of any type; deep for containers (depth-limited: too deep = unequal). */
int wl_jv_equal(wl_jval a, wl_jval b);
/* Python truth value. */
int wl_jv_truthy(wl_jval v);
/* Python's type name of v: "str", "int", "list", "dict", "NoneType", "Undefined", ... */
const char *wl_jv_type_name(wl_jval v);

#endif
