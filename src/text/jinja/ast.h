/* ast.h - the parsed form of a template: statement and expression nodes, symbols.
 *
 * A parsed template is immutable: renders only read it, so one template may render on several
 * threads at once. Nodes live in an arena freed with the template; string constants are STATIC
 * values (never counted).
 */
#ifndef WL_TEXT_JINJA_AST_H
#define WL_TEXT_JINJA_AST_H

#include <stddef.h>
#include <stdint.h>

#include "text/jinja/value.h"

typedef enum wl_jnode_kind {
    /* ---- expressions ---- */
    WL_N_CONST,    /* val */
    WL_N_NAME,     /* sym */
    WL_N_GETATTR,  /* a.str */
    WL_N_GETITEM,  /* a[b] */
    WL_N_SLICE,    /* a:b:c inside [], any may be NULL */
    WL_N_CALL,     /* a(kids..., names[i]=kids2[i]..., *c, **d) */
    WL_N_FILTER,   /* a|id(kids..., names=kids2...); a NULL in {% filter %} / {% set %} blocks */
    WL_N_TEST,     /* a is id(kids..., names=kids2...) */
    WL_N_UNARY,    /* op a: WL_U_* */
    WL_N_BINARY,   /* a op b: WL_OP_* arithmetic (lexer.h), or WL_B_AND / WL_B_OR */
    WL_N_CONCAT,   /* kids joined with ~ */
    WL_N_COMPARE,  /* a then (ops[i], kids[i]) pairs */
    WL_N_COND,     /* b if a else c (c may be NULL) */
    WL_N_LIST,     /* [kids] */
    WL_N_TUPLE,    /* (kids) */
    WL_N_DICT,     /* {kids[i]: kids2[i]} */
    WL_N_NSREF,    /* assignment target sym.str (namespace attribute) */

    /* ---- statements ---- */
    WL_N_TEXT,     /* val: the text */
    WL_N_OUTPUT,   /* {{ a }} */
    WL_N_IF,       /* if a: kids else kids2 (an elif is an IF alone in kids2) */
    WL_N_FOR,      /* for a in b [if c]: kids else kids2 */
    WL_N_SET,      /* a = b */
    WL_N_SET_BLOCK,/* a = body kids, through filter chain b (may be NULL) */
    WL_N_MACRO,    /* sym(params...) kids: see wl_jmacro_info */
    WL_N_CALL_BLOCK,/* call a (a CALL) with caller(params) = kids */
    WL_N_FILTER_BLOCK,/* kids through filter chain a */
    WL_N_WITH,     /* with targets kids2 = values (in b->kids) ... kids */
    WL_N_BREAK,
    WL_N_CONTINUE,
} wl_jnode_kind;

enum { WL_U_NEG = 1, WL_U_POS, WL_U_NOT };
enum { WL_B_AND = 100, WL_B_OR };
/* COMPARE operators beyond WL_OP_EQ..WL_OP_LTEQ. */
enum { WL_C_IN = 100, WL_C_NOTIN };

/* Parameters of a {% macro %} or {% call %}. */
typedef struct wl_jmacro_info {
    uint32_t name_sym;  /* macro name (or the "caller" symbol for call blocks) */
    uint32_t nparams;
    uint32_t *params;   /* symbols */
    struct wl_jnode **defaults; /* nparams entries, NULL where none */
    uint8_t uses_varargs, uses_kwargs, uses_caller;
} wl_jmacro_info;

typedef struct wl_jnode {
    uint8_t kind; /* WL_N_* */
    uint8_t op;   /* operator / flags */
    uint16_t id;  /* FILTER: WL_JF_*, TEST: WL_JT_* test id */
    uint32_t line;
    uint32_t sym;
    wl_jval val;      /* CONST / TEXT */
    wl_jstr *str;     /* GETATTR / NSREF attribute name */
    struct wl_jnode *a, *b, *c, *d;
    struct wl_jnode **kids;
    uint32_t nkids;
    struct wl_jnode **kids2;
    uint32_t nkids2;
    wl_jstr **names;  /* keyword names of CALL / FILTER / TEST (nkids2 of them) */
    uint8_t *ops;     /* COMPARE: nkids operators */
    wl_jmacro_info *macro; /* MACRO / CALL_BLOCK */
} wl_jnode;

/* Globals every template sees (unless the context defines the same name). */
enum {
    WL_JFN_NONE = 0,
    WL_JFN_RANGE,
    WL_JFN_NAMESPACE,
    WL_JFN_DICT,
    WL_JFN_RAISE_EXCEPTION,
    WL_JFN_STRFTIME_NOW,
    WL_JFN_COUNT
};

typedef struct wl_jsym {
    const char *name; /* NUL-terminated, owned by the template */
    size_t len;
    uint8_t global;   /* WL_JFN_* when the name is a global function */
} wl_jsym;

typedef struct wl_jarena_block {
    struct wl_jarena_block *next;
    size_t used, cap;
    unsigned char data[];
} wl_jarena_block;

struct wl_jinja_template {
    wl_jnode **body;
    uint32_t nbody;
    wl_jsym *syms;
    uint32_t nsyms, syms_cap;
    uint32_t sym_loop, sym_caller, sym_varargs, sym_kwargs; /* well-known symbols */
    wl_jstr *caller_name; /* "caller", the keyword a {% call %} passes its body as */
    wl_jarena_block *arena;
    wl_jobj **statics; /* STATIC string constants */
    size_t nstatics, statics_cap;
};

#endif
