/* parser.c - tokens to AST, following Jinja2's parser (grammar, precedence, error cases). */
#include "text/jinja/parser.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/lexer.h"
#include "text/utf8.h"
#include "util/buf.h"
#include "util/error.h"

enum { MAX_OPEN = WL_JINJA_MAX_PARSE_DEPTH + 8 };

typedef struct open_block {
    const char *tag; /* "if", "for", ... */
    uint32_t line;
} open_block;

typedef struct parser {
    wl_jlexer lx;
    size_t pos;
    struct wl_jinja_template *tpl;
    wandler_error *err;
    int failed; /* an error was reported (code holds it) */
    int code;
    int depth;
    open_block open[MAX_OPEN];
    int nopen;
    int loop_depth;                  /* for loops around the current statement (within a macro) */
    wl_jmacro_info *macros[MAX_OPEN]; /* macros being parsed, innermost last */
    int nmacros;
    uint32_t *sym_index; /* open addressing: sym + 1 */
    size_t sym_index_cap;
} parser;

/* ---- errors -------------------------------------------------------------------------- */

static void *fail_code(parser *p, int code, uint32_t line, const char *fmt, ...) WL_PRINTF(4, 5);
static void *fail_code(parser *p, int code, uint32_t line, const char *fmt, ...)
{
    if (p->failed) return NULL;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wl_error(p->err, code, "line %u: %s", (unsigned)line, msg);
    p->failed = 1;
    p->code = code;
    return NULL;
}
#define FAIL(p, line, ...) fail_code((p), WANDLER_ERR_TEMPLATE, (line), __VA_ARGS__)

static void *oom(parser *p)
{
    if (!p->failed) {
        wl_error(p->err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory while parsing the template");
        p->code = WANDLER_ERR_OUT_OF_MEMORY;
    }
    p->failed = 1;
    return NULL;
}

/* ---- arena --------------------------------------------------------------------------- */

static void *arena_alloc(parser *p, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    wl_jarena_block *b = p->tpl->arena;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 16384 ? size : 16384;
        b = malloc(sizeof *b + cap);
        if (!b) return oom(p);
        b->next = p->tpl->arena;
        b->used = 0;
        b->cap = cap;
        p->tpl->arena = b;
    }
    void *r = b->data + b->used;
    b->used += size;
    memset(r, 0, size);
    return r;
}

static wl_jnode *node_new(parser *p, int kind, uint32_t line)
{
    wl_jnode *n = arena_alloc(p, sizeof *n);
    if (!n) return NULL;
    n->kind = (uint8_t)kind;
    n->line = line;
    return n;
}

/* A growable list of node pointers, copied into the arena when done. */
typedef struct nodevec {
    wl_jnode **v;
    uint32_t n, cap;
} nodevec;

static int vec_push(parser *p, nodevec *v, wl_jnode *n)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        wl_jnode **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) {
            oom(p);
            return -1;
        }
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = n;
    return 0;
}

static wl_jnode **vec_finish(parser *p, nodevec *v, uint32_t *n)
{
    *n = v->n;
    wl_jnode **out = NULL;
    if (v->n) {
        out = arena_alloc(p, v->n * sizeof *out);
        if (out) memcpy(out, v->v, v->n * sizeof *out);
    }
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
    return out;
}

static wl_jstr *static_str(parser *p, const char *s, size_t len)
{
    struct wl_jinja_template *t = p->tpl;
    if (t->nstatics == t->statics_cap) {
        size_t cap = t->statics_cap ? t->statics_cap * 2 : 32;
        wl_jobj **ns = realloc(t->statics, cap * sizeof *ns);
        if (!ns) return oom(p);
        t->statics = ns;
        t->statics_cap = cap;
    }
    wl_jstr *s2 = wl_jstr_new_static(s, len);
    if (!s2) return oom(p);
    t->statics[t->nstatics++] = &s2->h;
    return s2;
}

/* ---- symbols ------------------------------------------------------------------------- */

static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t x = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) x = (x ^ (unsigned char)s[i]) * 1099511628211ULL;
    return x;
}

static const struct {
    const char *name;
    uint8_t id;
} globals[] = {
    {"range", WL_JFN_RANGE},
    {"namespace", WL_JFN_NAMESPACE},
    {"dict", WL_JFN_DICT},
    {"raise_exception", WL_JFN_RAISE_EXCEPTION},
    {"strftime_now", WL_JFN_STRFTIME_NOW},
};

static int sym_intern(parser *p, const char *s, size_t len, uint32_t *out)
{
    struct wl_jinja_template *t = p->tpl;
    if (p->sym_index_cap) {
        size_t mask = p->sym_index_cap - 1;
        for (size_t pos = (size_t)name_hash(s, len) & mask; p->sym_index[pos]; pos = (pos + 1) & mask) {
            const wl_jsym *y = &t->syms[p->sym_index[pos] - 1];
            if (y->len == len && memcmp(y->name, s, len) == 0) {
                *out = p->sym_index[pos] - 1;
                return 0;
            }
        }
    }
    if (t->nsyms == t->syms_cap) {
        uint32_t cap = t->syms_cap ? t->syms_cap * 2 : 32;
        wl_jsym *ns = realloc(t->syms, cap * sizeof *ns);
        if (!ns) {
            oom(p);
            return -1;
        }
        t->syms = ns;
        t->syms_cap = cap;
    }
    if ((size_t)(t->nsyms + 1) * 2 > p->sym_index_cap) {
        size_t cap = p->sym_index_cap ? p->sym_index_cap * 2 : 64;
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx) {
            oom(p);
            return -1;
        }
        for (uint32_t i = 0; i < t->nsyms; i++) {
            size_t pos = (size_t)name_hash(t->syms[i].name, t->syms[i].len) & (cap - 1);
            while (idx[pos]) pos = (pos + 1) & (cap - 1);
            idx[pos] = i + 1;
        }
        free(p->sym_index);
        p->sym_index = idx;
        p->sym_index_cap = cap;
    }
    char *name = arena_alloc(p, len + 1);
    if (!name) return -1;
    memcpy(name, s, len);
    wl_jsym *y = &t->syms[t->nsyms];
    y->name = name;
    y->len = len;
    y->global = WL_JFN_NONE;
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (strlen(globals[i].name) == len && memcmp(globals[i].name, s, len) == 0) y->global = globals[i].id;
    size_t pos = (size_t)name_hash(s, len) & (p->sym_index_cap - 1);
    while (p->sym_index[pos]) pos = (pos + 1) & (p->sym_index_cap - 1);
    p->sym_index[pos] = t->nsyms + 1;
    *out = t->nsyms++;
    return 0;
}

/* ---- tokens -------------------------------------------------------------------------- */

static wl_jtoken *cur(parser *p) { return &p->lx.toks[p->pos]; }
static wl_jtoken *peek(parser *p)
{
    return p->lx.toks[p->pos].type == WL_TK_EOF ? &p->lx.toks[p->pos] : &p->lx.toks[p->pos + 1];
}
static wl_jtoken *next(parser *p)
{
    wl_jtoken *t = cur(p);
    if (t->type != WL_TK_EOF) p->pos++;
    return t;
}

static int is_op(const wl_jtoken *t, int op) { return t->type == WL_TK_OP && t->op == op; }
static int is_name(const wl_jtoken *t, const char *name)
{
    return t->type == WL_TK_NAME && t->len == strlen(name) && memcmp(t->text, name, t->len) == 0;
}

static int skip_op(parser *p, int op)
{
    if (is_op(cur(p), op)) {
        next(p);
        return 1;
    }
    return 0;
}
static int skip_name(parser *p, const char *name)
{
    if (is_name(cur(p), name)) {
        next(p);
        return 1;
    }
    return 0;
}

/* Describes a token for messages: "'+'", "'foo'", "end of template", ... */
static const char *describe(const wl_jtoken *t, char *buf, size_t cap)
{
    switch (t->type) {
    case WL_TK_EOF: return "end of template";
    case WL_TK_DATA: return "template text";
    case WL_TK_VAR_BEGIN: return "'{{'";
    case WL_TK_VAR_END: return "'}}'";
    case WL_TK_BLOCK_BEGIN: return "'{%'";
    case WL_TK_BLOCK_END: return "'%}'";
    case WL_TK_NAME: snprintf(buf, cap, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->text); return buf;
    case WL_TK_STRING: return "string";
    case WL_TK_INT:
    case WL_TK_FLOAT: return "number";
    case WL_TK_OP: snprintf(buf, cap, "'%s'", wl_jop_text(t->op)); return buf;
    default: return "?";
    }
}

static void *unexpected(parser *p, const char *expected)
{
    char b[64];
    wl_jtoken *t = cur(p);
    if (t->type == WL_TK_EOF) {
        if (p->nopen > 0) {
            const open_block *o = &p->open[p->nopen - 1];
            return FAIL(p, t->line, "unterminated {%% %s %%} (opened at line %u)", o->tag, (unsigned)o->line);
        }
        return FAIL(p, t->line, "unexpected end of template, expected %s", expected);
    }
    return FAIL(p, t->line, "unexpected %s, expected %s", describe(t, b, sizeof b), expected);
}

static int expect_op(parser *p, int op)
{
    if (skip_op(p, op)) return 0;
    char want[16];
    snprintf(want, sizeof want, "'%s'", wl_jop_text(op));
    unexpected(p, want);
    return -1;
}

static int expect_type(parser *p, int type, const char *what)
{
    if (cur(p)->type == type) {
        next(p);
        return 0;
    }
    unexpected(p, what);
    return -1;
}

static int enter(parser *p)
{
    if (++p->depth > WL_JINJA_MAX_PARSE_DEPTH) {
        fail_code(p, WANDLER_ERR_TEMPLATE_LIMIT, cur(p)->line,
                  "expressions and blocks nested deeper than %d levels", WL_JINJA_MAX_PARSE_DEPTH);
        return -1;
    }
    return 0;
}
static void leave(parser *p) { p->depth--; }

/* ---- expressions --------------------------------------------------------------------- */

static wl_jnode *parse_expression(parser *p, int with_condexpr);
static wl_jnode *parse_tuple(parser *p, int simplified, int with_condexpr, const char *extra_end,
                             int explicit_parens);
static wl_jnode *parse_unary(parser *p, int with_filter);
static wl_jnode *parse_primary(parser *p);
static wl_jnode *parse_postfix(parser *p, wl_jnode *node);
static wl_jnode *parse_filter(parser *p, wl_jnode *node, int start_inline);

static wl_jnode *make_binary(parser *p, int kind, int op, uint32_t line, wl_jnode *a, wl_jnode *b)
{
    wl_jnode *n = node_new(p, kind, line);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static wl_jnode *parse_condexpr(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *expr1 = parse_expression(p, 0);
    while (expr1 && skip_name(p, "if")) {
        wl_jnode *expr2 = parse_expression(p, 0);
        if (!expr2) return NULL;
        wl_jnode *expr3 = NULL;
        if (skip_name(p, "else")) {
            if (enter(p)) return NULL;
            expr3 = parse_condexpr(p);
            leave(p);
            if (!expr3) return NULL;
        }
        wl_jnode *n = node_new(p, WL_N_COND, line);
        if (!n) return NULL;
        n->a = expr2;
        n->b = expr1;
        n->c = expr3;
        expr1 = n;
        line = cur(p)->line;
    }
    return expr1;
}

static wl_jnode *parse_not(parser *p);

static wl_jnode *parse_and(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *left = parse_not(p);
    while (left && skip_name(p, "and")) {
        wl_jnode *right = parse_not(p);
        if (!right) return NULL;
        left = make_binary(p, WL_N_BINARY, WL_B_AND, line, left, right);
        line = cur(p)->line;
    }
    return left;
}

static wl_jnode *parse_or(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *left = parse_and(p);
    while (left && skip_name(p, "or")) {
        wl_jnode *right = parse_and(p);
        if (!right) return NULL;
        left = make_binary(p, WL_N_BINARY, WL_B_OR, line, left, right);
        line = cur(p)->line;
    }
    return left;
}

static wl_jnode *parse_math1(parser *p);

static wl_jnode *parse_compare(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *expr = parse_math1(p);
    if (!expr) return NULL;
    nodevec operands = {0};
    uint8_t ops[64];
    for (;;) {
        wl_jtoken *t = cur(p);
        int op = 0;
        if (t->type == WL_TK_OP && t->op >= WL_OP_EQ && t->op <= WL_OP_LTEQ) {
            op = t->op;
            next(p);
        } else if (is_name(t, "in")) {
            op = WL_C_IN;
            next(p);
        } else if (is_name(t, "not") && is_name(peek(p), "in")) {
            op = WL_C_NOTIN;
            next(p);
            next(p);
        } else {
            break;
        }
        if (operands.n == sizeof ops) {
            free(operands.v);
            return fail_code(p, WANDLER_ERR_TEMPLATE_LIMIT, t->line, "too many chained comparisons");
        }
        wl_jnode *rhs = parse_math1(p);
        if (!rhs || vec_push(p, &operands, rhs) != 0) {
            free(operands.v);
            return NULL;
        }
        ops[operands.n - 1] = (uint8_t)op;
    }
    if (!operands.n) return expr;
    wl_jnode *n = node_new(p, WL_N_COMPARE, line);
    if (!n) {
        free(operands.v);
        return NULL;
    }
    n->a = expr;
    n->ops = arena_alloc(p, operands.n);
    if (!n->ops) {
        free(operands.v);
        return NULL;
    }
    memcpy(n->ops, ops, operands.n);
    n->kids = vec_finish(p, &operands, &n->nkids);
    return n->kids ? n : NULL;
}

static wl_jnode *parse_not(parser *p)
{
    if (is_name(cur(p), "not")) {
        uint32_t line = next(p)->line;
        if (enter(p)) return NULL;
        wl_jnode *operand = parse_not(p);
        leave(p);
        if (!operand) return NULL;
        wl_jnode *n = node_new(p, WL_N_UNARY, line);
        if (!n) return NULL;
        n->op = WL_U_NOT;
        n->a = operand;
        return n;
    }
    return parse_compare(p);
}

static wl_jnode *parse_concat(parser *p);

static wl_jnode *parse_math1(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *left = parse_concat(p);
    while (left && (is_op(cur(p), WL_OP_ADD) || is_op(cur(p), WL_OP_SUB))) {
        int op = next(p)->op;
        wl_jnode *right = parse_concat(p);
        if (!right) return NULL;
        left = make_binary(p, WL_N_BINARY, op, line, left, right);
        line = cur(p)->line;
    }
    return left;
}

static wl_jnode *parse_math2(parser *p);

static wl_jnode *parse_concat(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *first = parse_math2(p);
    if (!first || !is_op(cur(p), WL_OP_TILDE)) return first;
    nodevec args = {0};
    if (vec_push(p, &args, first) != 0) return NULL;
    while (skip_op(p, WL_OP_TILDE)) {
        wl_jnode *n = parse_math2(p);
        if (!n || vec_push(p, &args, n) != 0) {
            free(args.v);
            return NULL;
        }
    }
    wl_jnode *n = node_new(p, WL_N_CONCAT, line);
    if (!n) {
        free(args.v);
        return NULL;
    }
    n->kids = vec_finish(p, &args, &n->nkids);
    return n->kids ? n : NULL;
}

static wl_jnode *parse_pow(parser *p);

static wl_jnode *parse_math2(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *left = parse_pow(p);
    while (left && cur(p)->type == WL_TK_OP &&
           (cur(p)->op == WL_OP_MUL || cur(p)->op == WL_OP_DIV || cur(p)->op == WL_OP_FLOORDIV ||
            cur(p)->op == WL_OP_MOD)) {
        int op = next(p)->op;
        wl_jnode *right = parse_pow(p);
        if (!right) return NULL;
        left = make_binary(p, WL_N_BINARY, op, line, left, right);
        line = cur(p)->line;
    }
    return left;
}

static wl_jnode *parse_pow(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *left = parse_unary(p, 1);
    while (left && skip_op(p, WL_OP_POW)) {
        wl_jnode *right = parse_unary(p, 1);
        if (!right) return NULL;
        left = make_binary(p, WL_N_BINARY, WL_OP_POW, line, left, right);
        line = cur(p)->line;
    }
    return left;
}

static wl_jnode *parse_call(parser *p, wl_jnode *callee);
static wl_jnode *parse_test(parser *p, wl_jnode *node);

static wl_jnode *parse_filter_expr(parser *p, wl_jnode *node)
{
    while (node) {
        wl_jtoken *t = cur(p);
        if (is_op(t, WL_OP_PIPE)) node = parse_filter(p, node, 0);
        else if (is_name(t, "is")) node = parse_test(p, node);
        else if (is_op(t, WL_OP_LPAREN)) node = parse_call(p, node);
        else break;
    }
    return node;
}

static wl_jnode *parse_unary(parser *p, int with_filter)
{
    wl_jtoken *t = cur(p);
    uint32_t line = t->line;
    wl_jnode *node;
    if (enter(p)) return NULL;
    if (is_op(t, WL_OP_SUB) || is_op(t, WL_OP_ADD)) {
        int op = next(p)->op == WL_OP_SUB ? WL_U_NEG : WL_U_POS;
        wl_jnode *operand = parse_unary(p, 0);
        node = operand ? node_new(p, WL_N_UNARY, line) : NULL;
        if (node) {
            node->op = (uint8_t)op;
            node->a = operand;
        }
    } else {
        node = parse_primary(p);
    }
    node = parse_postfix(p, node);
    if (with_filter) node = parse_filter_expr(p, node);
    leave(p);
    return node;
}

static wl_jnode *parse_list(parser *p)
{
    uint32_t line = next(p)->line; /* [ */
    nodevec items = {0};
    while (!is_op(cur(p), WL_OP_RBRACKET)) {
        if (items.n && expect_op(p, WL_OP_COMMA) != 0) goto fail;
        if (is_op(cur(p), WL_OP_RBRACKET)) break;
        wl_jnode *n = parse_expression(p, 1);
        if (!n || vec_push(p, &items, n) != 0) goto fail;
    }
    if (expect_op(p, WL_OP_RBRACKET) != 0) goto fail;
    wl_jnode *n = node_new(p, WL_N_LIST, line);
    if (!n) goto fail;
    n->kids = vec_finish(p, &items, &n->nkids);
    return n;
fail:
    free(items.v);
    return NULL;
}

static wl_jnode *parse_dict(parser *p)
{
    uint32_t line = next(p)->line; /* { */
    nodevec keys = {0}, vals = {0};
    while (!is_op(cur(p), WL_OP_RBRACE)) {
        if (keys.n && expect_op(p, WL_OP_COMMA) != 0) goto fail;
        if (is_op(cur(p), WL_OP_RBRACE)) break;
        wl_jnode *k = parse_expression(p, 1);
        if (!k || expect_op(p, WL_OP_COLON) != 0) goto fail;
        wl_jnode *v = parse_expression(p, 1);
        if (!v || vec_push(p, &keys, k) != 0 || vec_push(p, &vals, v) != 0) goto fail;
    }
    if (expect_op(p, WL_OP_RBRACE) != 0) goto fail;
    wl_jnode *n = node_new(p, WL_N_DICT, line);
    if (!n) goto fail;
    n->kids = vec_finish(p, &keys, &n->nkids);
    n->kids2 = vec_finish(p, &vals, &n->nkids2);
    return n;
fail:
    free(keys.v);
    free(vals.v);
    return NULL;
}

static void note_name_use(parser *p, uint32_t sym)
{
    struct wl_jinja_template *t = p->tpl;
    for (int i = 0; i < p->nmacros; i++) {
        if (sym == t->sym_varargs) p->macros[i]->uses_varargs = 1;
        if (sym == t->sym_kwargs) p->macros[i]->uses_kwargs = 1;
        if (sym == t->sym_caller) p->macros[i]->uses_caller = 1;
    }
}

static wl_jnode *parse_primary(parser *p)
{
    wl_jtoken *t = cur(p);
    wl_jnode *n;
    switch (t->type) {
    case WL_TK_NAME:
        next(p);
        if (!(n = node_new(p, WL_N_CONST, t->line))) return NULL;
        if (is_name(t, "true") || is_name(t, "True")) n->val = wl_jv_bool(1);
        else if (is_name(t, "false") || is_name(t, "False")) n->val = wl_jv_bool(0);
        else if (is_name(t, "none") || is_name(t, "None")) n->val = wl_jv_none();
        else {
            n->kind = WL_N_NAME;
            if (sym_intern(p, t->text, t->len, &n->sym) != 0) return NULL;
            note_name_use(p, n->sym);
        }
        return n;
    case WL_TK_STRING: {
        next(p);
        if (!(n = node_new(p, WL_N_CONST, t->line))) return NULL;
        if (cur(p)->type != WL_TK_STRING) {
            wl_jstr *s = static_str(p, t->text, t->len);
            if (!s) return NULL;
            n->val = wl_jv_obj(&s->h);
            return n;
        }
        /* Adjacent literals concatenate: "a" "b". */
        wl_buf b = {0};
        int bad = wl_buf_append(&b, t->text, t->len);
        while (cur(p)->type == WL_TK_STRING) {
            wl_jtoken *u = next(p);
            bad |= wl_buf_append(&b, u->text, u->len);
        }
        wl_jstr *s = bad ? NULL : static_str(p, b.data ? b.data : "", b.len);
        wl_buf_free(&b);
        if (!s) return bad ? oom(p) : NULL;
        n->val = wl_jv_obj(&s->h);
        return n;
    }
    case WL_TK_INT:
    case WL_TK_FLOAT:
        next(p);
        if (!(n = node_new(p, WL_N_CONST, t->line))) return NULL;
        n->val = t->type == WL_TK_INT ? wl_jv_int(t->ival) : wl_jv_float(t->fval);
        return n;
    case WL_TK_OP:
        if (t->op == WL_OP_LPAREN) {
            next(p);
            n = parse_tuple(p, 0, 1, NULL, 1);
            if (!n || expect_op(p, WL_OP_RPAREN) != 0) return NULL;
            return n;
        }
        if (t->op == WL_OP_LBRACKET) return parse_list(p);
        if (t->op == WL_OP_LBRACE) return parse_dict(p);
        break;
    default: break;
    }
    return unexpected(p, "an expression");
}

static int is_tuple_end(parser *p, const char *extra_end)
{
    wl_jtoken *t = cur(p);
    if (t->type == WL_TK_VAR_END || t->type == WL_TK_BLOCK_END || is_op(t, WL_OP_RPAREN)) return 1;
    if (t->type == WL_TK_EOF) return 1;
    if (extra_end && is_name(t, extra_end)) return 1;
    return 0;
}

static wl_jnode *parse_tuple(parser *p, int simplified, int with_condexpr, const char *extra_end,
                             int explicit_parens)
{
    uint32_t line = cur(p)->line;
    nodevec args = {0};
    int is_tuple = 0;
    if (enter(p)) return NULL;
    for (;;) {
        if (args.n && expect_op(p, WL_OP_COMMA) != 0) goto fail;
        if (is_tuple_end(p, extra_end)) break;
        wl_jnode *n = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        if (!n || vec_push(p, &args, n) != 0) goto fail;
        if (is_op(cur(p), WL_OP_COMMA)) is_tuple = 1;
        else break;
        line = cur(p)->line;
    }
    leave(p);
    if (!is_tuple) {
        if (args.n) {
            wl_jnode *n = args.v[0];
            free(args.v);
            return n;
        }
        if (!explicit_parens) {
            free(args.v);
            return unexpected(p, "an expression");
        }
    }
    wl_jnode *n = node_new(p, WL_N_TUPLE, line);
    if (!n) goto fail;
    n->kids = vec_finish(p, &args, &n->nkids);
    return n;
fail:
    free(args.v);
    return NULL;
}

static wl_jnode *parse_expression(parser *p, int with_condexpr)
{
    if (enter(p)) return NULL;
    wl_jnode *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    leave(p);
    return n;
}

/* One subscript: an expression or a slice [a]:[b][:[c]]. */
static wl_jnode *parse_subscribed(parser *p)
{
    uint32_t line = cur(p)->line;
    wl_jnode *parts[3] = {NULL, NULL, NULL};
    if (is_op(cur(p), WL_OP_COLON)) {
        next(p);
    } else {
        wl_jnode *n = parse_expression(p, 1);
        if (!n) return NULL;
        if (!is_op(cur(p), WL_OP_COLON)) return n;
        next(p);
        parts[0] = n;
    }
    wl_jtoken *t = cur(p);
    if (!is_op(t, WL_OP_COLON) && !is_op(t, WL_OP_RBRACKET) && !is_op(t, WL_OP_COMMA)) {
        if (!(parts[1] = parse_expression(p, 1))) return NULL;
    }
    if (skip_op(p, WL_OP_COLON)) {
        t = cur(p);
        if (!is_op(t, WL_OP_RBRACKET) && !is_op(t, WL_OP_COMMA)) {
            if (!(parts[2] = parse_expression(p, 1))) return NULL;
        }
    }
    wl_jnode *n = node_new(p, WL_N_SLICE, line);
    if (!n) return NULL;
    n->a = parts[0];
    n->b = parts[1];
    n->c = parts[2];
    return n;
}

static wl_jnode *parse_subscript(parser *p, wl_jnode *node)
{
    wl_jtoken *t = next(p);
    if (t->type == WL_TK_OP && t->op == WL_OP_DOT) {
        wl_jtoken *attr = next(p);
        if (attr->type == WL_TK_NAME) {
            wl_jnode *n = node_new(p, WL_N_GETATTR, t->line);
            if (!n) return NULL;
            n->a = node;
            n->str = static_str(p, attr->text, attr->len);
            return n->str ? n : NULL;
        }
        if (attr->type != WL_TK_INT) return FAIL(p, attr->line, "expected a name or number after '.'");
        wl_jnode *c = node_new(p, WL_N_CONST, attr->line);
        wl_jnode *n = c ? node_new(p, WL_N_GETITEM, t->line) : NULL;
        if (!n) return NULL;
        c->val = wl_jv_int(attr->ival);
        n->a = node;
        n->b = c;
        return n;
    }
    /* [ ... ] */
    nodevec args = {0};
    while (!is_op(cur(p), WL_OP_RBRACKET)) {
        if (args.n && expect_op(p, WL_OP_COMMA) != 0) goto fail;
        if (cur(p)->type == WL_TK_EOF || cur(p)->type == WL_TK_VAR_END || cur(p)->type == WL_TK_BLOCK_END) {
            unexpected(p, "']'");
            goto fail;
        }
        wl_jnode *n = parse_subscribed(p);
        if (!n || vec_push(p, &args, n) != 0) goto fail;
    }
    if (expect_op(p, WL_OP_RBRACKET) != 0) goto fail;
    wl_jnode *key;
    if (args.n == 1) {
        key = args.v[0];
        free(args.v);
    } else {
        key = node_new(p, WL_N_TUPLE, t->line);
        if (!key) goto fail;
        key->kids = vec_finish(p, &args, &key->nkids);
    }
    wl_jnode *n = node_new(p, WL_N_GETITEM, t->line);
    if (!n) return NULL;
    n->a = node;
    n->b = key;
    return n;
fail:
    free(args.v);
    return NULL;
}

static wl_jnode *parse_postfix(parser *p, wl_jnode *node)
{
    while (node) {
        wl_jtoken *t = cur(p);
        if (is_op(t, WL_OP_DOT) || is_op(t, WL_OP_LBRACKET)) node = parse_subscript(p, node);
        else if (is_op(t, WL_OP_LPAREN)) node = parse_call(p, node);
        else break;
    }
    return node;
}

/* ( args, name=value, *dyn, **dynkw ) into n->kids, n->kids2/names, n->c, n->d. */
static int parse_call_args(parser *p, wl_jnode *n)
{
    uint32_t line = cur(p)->line;
    if (expect_op(p, WL_OP_LPAREN) != 0) return -1;
    nodevec args = {0}, kwvals = {0};
    wl_jstr **names = NULL;
    uint32_t nnames = 0;
    int require_comma = 0;
    while (!is_op(cur(p), WL_OP_RPAREN)) {
        if (require_comma) {
            if (expect_op(p, WL_OP_COMMA) != 0) goto fail;
            if (is_op(cur(p), WL_OP_RPAREN)) break;
        }
        wl_jtoken *t = cur(p);
        if (is_op(t, WL_OP_MUL)) {
            if (n->c || n->d) goto bad;
            next(p);
            if (!(n->c = parse_expression(p, 1))) goto fail;
        } else if (is_op(t, WL_OP_POW)) {
            if (n->d) goto bad;
            next(p);
            if (!(n->d = parse_expression(p, 1))) goto fail;
        } else if (t->type == WL_TK_NAME && is_op(peek(p), WL_OP_ASSIGN)) {
            if (n->d) goto bad;
            next(p);
            next(p);
            wl_jnode *v = parse_expression(p, 1);
            if (!v) goto fail;
            wl_jstr *name = static_str(p, t->text, t->len);
            if (!name || vec_push(p, &kwvals, v) != 0) goto fail;
            if ((nnames & (nnames - 1)) == 0) { /* grow at powers of two */
                wl_jstr **nn = realloc(names, (nnames ? nnames * 2 : 1) * sizeof *nn);
                if (!nn) {
                    oom(p);
                    goto fail;
                }
                names = nn;
            }
            names[nnames++] = name;
        } else {
            if (n->c || n->d || kwvals.n) goto bad;
            wl_jnode *v = parse_expression(p, 1);
            if (!v || vec_push(p, &args, v) != 0) goto fail;
        }
        require_comma = 1;
    }
    if (expect_op(p, WL_OP_RPAREN) != 0) goto fail;
    n->kids = vec_finish(p, &args, &n->nkids);
    n->kids2 = vec_finish(p, &kwvals, &n->nkids2);
    if (nnames) {
        n->names = arena_alloc(p, nnames * sizeof *names);
        if (!n->names) goto fail;
        memcpy(n->names, names, nnames * sizeof *names);
    }
    free(names);
    return p->failed ? -1 : 0;
bad:
    FAIL(p, line, "invalid syntax for a function call");
fail:
    free(args.v);
    free(kwvals.v);
    free(names);
    return -1;
}

static wl_jnode *parse_call(parser *p, wl_jnode *callee)
{
    wl_jnode *n = node_new(p, WL_N_CALL, cur(p)->line);
    if (!n) return NULL;
    n->a = callee;
    return parse_call_args(p, n) == 0 ? n : NULL;
}

/* A filter or test name (dotted names are allowed by Jinja2, known to neither table). */
static int parse_dotted_name(parser *p, char *buf, size_t cap, size_t *len, uint32_t *line)
{
    wl_jtoken *t = cur(p);
    if (t->type != WL_TK_NAME) {
        unexpected(p, "a name");
        return -1;
    }
    next(p);
    *line = t->line;
    size_t n = t->len < cap ? t->len : cap - 1;
    memcpy(buf, t->text, n);
    while (is_op(cur(p), WL_OP_DOT)) {
        next(p);
        wl_jtoken *u = cur(p);
        if (u->type != WL_TK_NAME) {
            unexpected(p, "a name");
            return -1;
        }
        next(p);
        if (n + 1 + u->len < cap) {
            buf[n++] = '.';
            memcpy(buf + n, u->text, u->len);
            n += u->len;
        }
    }
    buf[n] = '\0';
    *len = n;
    return 0;
}

static wl_jnode *parse_filter(parser *p, wl_jnode *node, int start_inline)
{
    while (is_op(cur(p), WL_OP_PIPE) || start_inline) {
        if (!start_inline) next(p);
        char name[64];
        size_t len;
        uint32_t line;
        if (parse_dotted_name(p, name, sizeof name, &len, &line) != 0) return NULL;
        int id = wl_jfilter_lookup(name, len);
        if (id < 0) return FAIL(p, line, "unknown filter '%s'", name);
        wl_jnode *n = node_new(p, WL_N_FILTER, line);
        if (!n) return NULL;
        n->id = (uint16_t)id;
        n->a = node;
        if (is_op(cur(p), WL_OP_LPAREN) && parse_call_args(p, n) != 0) return NULL;
        node = n;
        start_inline = 0;
    }
    return node;
}

static wl_jnode *parse_test(parser *p, wl_jnode *node)
{
    uint32_t line = next(p)->line; /* is */
    int negated = skip_name(p, "not");
    char name[64];
    size_t len;
    uint32_t name_line;
    if (parse_dotted_name(p, name, sizeof name, &len, &name_line) != 0) return NULL;
    int id = wl_jtest_lookup(name, len);
    if (id < 0) return FAIL(p, name_line, "unknown test '%s'", name);
    wl_jnode *n = node_new(p, WL_N_TEST, line);
    if (!n) return NULL;
    n->id = (uint16_t)id;
    n->a = node;
    wl_jtoken *t = cur(p);
    if (is_op(t, WL_OP_LPAREN)) {
        if (parse_call_args(p, n) != 0) return NULL;
    } else if ((t->type == WL_TK_NAME || t->type == WL_TK_STRING || t->type == WL_TK_INT ||
                t->type == WL_TK_FLOAT || is_op(t, WL_OP_LBRACKET) || is_op(t, WL_OP_LBRACE)) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
        if (is_name(t, "is")) return FAIL(p, t->line, "tests cannot be chained with 'is'");
        if (enter(p)) return NULL;
        wl_jnode *arg = parse_postfix(p, parse_primary(p));
        leave(p);
        if (!arg) return NULL;
        n->kids = arena_alloc(p, sizeof *n->kids);
        if (!n->kids) return NULL;
        n->kids[0] = arg;
        n->nkids = 1;
    }
    if (!negated) return n;
    wl_jnode *no = node_new(p, WL_N_UNARY, line);
    if (!no) return NULL;
    no->op = WL_U_NOT;
    no->a = n;
    return no;
}

/* ---- assignment targets -------------------------------------------------------------- */

static int check_target(parser *p, wl_jnode *t)
{
    if (t->kind == WL_N_NAME) return 0;
    if (t->kind == WL_N_TUPLE) {
        for (uint32_t i = 0; i < t->nkids; i++)
            if (check_target(p, t->kids[i]) != 0) return -1;
        return 0;
    }
    FAIL(p, t->line, "cannot assign to this expression");
    return -1;
}

static wl_jnode *parse_assign_target(parser *p, const char *extra_end, int with_namespace)
{
    wl_jtoken *t = cur(p);
    if (with_namespace && t->type == WL_TK_NAME && is_op(peek(p), WL_OP_DOT)) {
        next(p);
        next(p);
        wl_jtoken *attr = cur(p);
        if (attr->type != WL_TK_NAME) return unexpected(p, "an attribute name");
        next(p);
        wl_jnode *n = node_new(p, WL_N_NSREF, t->line);
        if (!n || sym_intern(p, t->text, t->len, &n->sym) != 0) return NULL;
        n->str = static_str(p, attr->text, attr->len);
        return n->str ? n : NULL;
    }
    wl_jnode *target = parse_tuple(p, 1, 1, extra_end, 0);
    if (!target || check_target(p, target) != 0) return NULL;
    return target;
}

static int parse_name_only(parser *p, uint32_t *sym)
{
    wl_jtoken *t = cur(p);
    if (t->type != WL_TK_NAME) {
        unexpected(p, "a name");
        return -1;
    }
    next(p);
    return sym_intern(p, t->text, t->len, sym);
}

/* ---- statements ---------------------------------------------------------------------- */

static int subparse(parser *p, const char *const *end_tags, nodevec *body);

static int push_open(parser *p, const char *tag, uint32_t line)
{
    if (p->nopen == MAX_OPEN) {
        fail_code(p, WANDLER_ERR_TEMPLATE_LIMIT, line, "blocks nested too deeply");
        return -1;
    }
    p->open[p->nopen].tag = tag;
    p->open[p->nopen].line = line;
    p->nopen++;
    return 0;
}

/* Reads the body of a block up to one of end_tags (which is left as the current token, the
 * "{%" consumed), after the opening tag's "%}". */
static int parse_body(parser *p, const char *const *end_tags, wl_jnode ***out, uint32_t *n)
{
    skip_op(p, WL_OP_COLON);
    if (expect_type(p, WL_TK_BLOCK_END, "'%}'") != 0) return -1;
    nodevec body = {0};
    if (subparse(p, end_tags, &body) != 0) {
        free(body.v);
        return -1;
    }
    *out = vec_finish(p, &body, n);
    return p->failed ? -1 : 0;
}

/* After parse_body: the end tag name is current. Consumes it (the caller expects %}). */
static void drop_end_tag(parser *p) { next(p); }

static wl_jnode *parse_if(parser *p)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const end_only[] = {"endif", NULL};
    uint32_t line = next(p)->line;
    wl_jnode *result = node_new(p, WL_N_IF, line), *node = result;
    if (!result || push_open(p, "if", line) != 0) return NULL;
    for (;;) {
        node->a = parse_tuple(p, 0, 0, NULL, 0);
        if (!node->a || parse_body(p, ends, &node->kids, &node->nkids) != 0) return NULL;
        wl_jtoken *t = next(p);
        if (is_name(t, "elif")) {
            wl_jnode *elif = node_new(p, WL_N_IF, t->line);
            if (!elif) return NULL;
            node->kids2 = arena_alloc(p, sizeof *node->kids2);
            if (!node->kids2) return NULL;
            node->kids2[0] = elif;
            node->nkids2 = 1;
            node = elif;
            continue;
        }
        if (is_name(t, "else")) {
            if (parse_body(p, end_only, &node->kids2, &node->nkids2) != 0) return NULL;
            drop_end_tag(p);
        }
        break;
    }
    p->nopen--;
    return result;
}

static wl_jnode *parse_for(parser *p)
{
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const end_only[] = {"endfor", NULL};
    uint32_t line = next(p)->line;
    wl_jnode *n = node_new(p, WL_N_FOR, line);
    if (!n || push_open(p, "for", line) != 0) return NULL;
    if (!(n->a = parse_assign_target(p, "in", 0))) return NULL;
    if (!skip_name(p, "in")) return unexpected(p, "'in'");
    if (!(n->b = parse_tuple(p, 0, 0, "recursive", 0))) return NULL;
    if (skip_name(p, "if") && !(n->c = parse_expression(p, 1))) return NULL;
    if (skip_name(p, "recursive")) return FAIL(p, line, "recursive for loops are not supported");
    p->loop_depth++;
    int rc = parse_body(p, ends, &n->kids, &n->nkids);
    p->loop_depth--;
    if (rc != 0) return NULL;
    if (is_name(next(p), "else")) {
        if (parse_body(p, end_only, &n->kids2, &n->nkids2) != 0) return NULL;
        drop_end_tag(p);
    }
    p->nopen--;
    return n;
}

static wl_jnode *parse_set(parser *p)
{
    static const char *const ends[] = {"endset", NULL};
    uint32_t line = next(p)->line;
    wl_jnode *target = parse_assign_target(p, NULL, 1);
    if (!target) return NULL;
    if (skip_op(p, WL_OP_ASSIGN)) {
        wl_jnode *n = node_new(p, WL_N_SET, line);
        if (!n || !(n->b = parse_tuple(p, 0, 1, NULL, 0))) return NULL;
        n->a = target;
        return n;
    }
    wl_jnode *n = node_new(p, WL_N_SET_BLOCK, line);
    if (!n || push_open(p, "set", line) != 0) return NULL;
    n->a = target;
    if (is_op(cur(p), WL_OP_PIPE) && !(n->b = parse_filter(p, NULL, 0))) return NULL;
    if (parse_body(p, ends, &n->kids, &n->nkids) != 0) return NULL;
    drop_end_tag(p);
    p->nopen--;
    return n;
}

static int parse_signature(parser *p, wl_jmacro_info *info)
{
    if (expect_op(p, WL_OP_LPAREN) != 0) return -1;
    enum { MAX_PARAMS = 64 };
    uint32_t params[MAX_PARAMS];
    wl_jnode *defaults[MAX_PARAMS];
    uint32_t n = 0;
    int any_default = 0;
    while (!is_op(cur(p), WL_OP_RPAREN)) {
        if (n && expect_op(p, WL_OP_COMMA) != 0) return -1;
        if (n == MAX_PARAMS) {
            fail_code(p, WANDLER_ERR_TEMPLATE_LIMIT, cur(p)->line, "too many macro parameters");
            return -1;
        }
        if (parse_name_only(p, &params[n]) != 0) return -1;
        defaults[n] = NULL;
        if (skip_op(p, WL_OP_ASSIGN)) {
            if (!(defaults[n] = parse_expression(p, 1))) return -1;
            any_default = 1;
        } else if (any_default) {
            FAIL(p, cur(p)->line, "non-default parameter follows default parameter");
            return -1;
        }
        n++;
    }
    next(p);
    info->nparams = n;
    if (n) {
        info->params = arena_alloc(p, n * sizeof *info->params);
        info->defaults = arena_alloc(p, n * sizeof *info->defaults);
        if (!info->params || !info->defaults) return -1;
        memcpy(info->params, params, n * sizeof *params);
        memcpy(info->defaults, defaults, n * sizeof *defaults);
    }
    return 0;
}

/* Parses a macro-like body (macro or call block): its own loop context and name uses. */
static int parse_macro_body(parser *p, wl_jmacro_info *info, const char *const *ends, wl_jnode *n)
{
    if (p->nmacros == MAX_OPEN) {
        fail_code(p, WANDLER_ERR_TEMPLATE_LIMIT, n->line, "macros nested too deeply");
        return -1;
    }
    p->macros[p->nmacros++] = info;
    int saved_loops = p->loop_depth;
    p->loop_depth = 0;
    int rc = parse_body(p, ends, &n->kids, &n->nkids);
    p->loop_depth = saved_loops;
    p->nmacros--;
    return rc;
}

static wl_jnode *parse_macro(parser *p)
{
    static const char *const ends[] = {"endmacro", NULL};
    uint32_t line = next(p)->line;
    wl_jnode *n = node_new(p, WL_N_MACRO, line);
    wl_jmacro_info *info = arena_alloc(p, sizeof *info);
    if (!n || !info || push_open(p, "macro", line) != 0) return NULL;
    n->macro = info;
    if (parse_name_only(p, &info->name_sym) != 0 || parse_signature(p, info) != 0) return NULL;
    if (parse_macro_body(p, info, ends, n) != 0) return NULL;
    drop_end_tag(p);
    p->nopen--;
    return n;
}

static wl_jnode *parse_call_block(parser *p)
{
    static const char *const ends[] = {"endcall", NULL};
    uint32_t line = next(p)->line;
    wl_jnode *n = node_new(p, WL_N_CALL_BLOCK, line);
    wl_jmacro_info *info = arena_alloc(p, sizeof *info);
    if (!n || !info || push_open(p, "call", line) != 0) return NULL;
    n->macro = info;
    info->name_sym = p->tpl->sym_caller;
    if (is_op(cur(p), WL_OP_LPAREN) && parse_signature(p, info) != 0) return NULL;
    wl_jnode *call = parse_expression(p, 1);
    if (!call) return NULL;
    if (call->kind != WL_N_CALL) return FAIL(p, line, "{%% call %%} needs a macro call");
    n->a = call;
    if (parse_macro_body(p, info, ends, n) != 0) return NULL;
    drop_end_tag(p);
    p->nopen--;
    return n;
}

static wl_jnode *parse_filter_block(parser *p)
{
    static const char *const ends[] = {"endfilter", NULL};
    uint32_t line = next(p)->line;
    wl_jnode *n = node_new(p, WL_N_FILTER_BLOCK, line);
    if (!n || push_open(p, "filter", line) != 0) return NULL;
    if (!(n->a = parse_filter(p, NULL, 1))) return NULL;
    if (parse_body(p, ends, &n->kids, &n->nkids) != 0) return NULL;
    drop_end_tag(p);
    p->nopen--;
    return n;
}

static wl_jnode *parse_with(parser *p)
{
    static const char *const ends[] = {"endwith", NULL};
    uint32_t line = next(p)->line;
    wl_jnode *n = node_new(p, WL_N_WITH, line);
    if (!n || push_open(p, "with", line) != 0) return NULL;
    nodevec pairs = {0};
    while (cur(p)->type != WL_TK_BLOCK_END) {
        if (pairs.n && expect_op(p, WL_OP_COMMA) != 0) goto fail;
        wl_jnode *target = parse_assign_target(p, NULL, 0);
        if (!target || expect_op(p, WL_OP_ASSIGN) != 0) goto fail;
        wl_jnode *value = parse_expression(p, 1);
        if (!value || vec_push(p, &pairs, target) != 0 || vec_push(p, &pairs, value) != 0) goto fail;
        if (cur(p)->type == WL_TK_EOF) {
            unexpected(p, "'%}'");
            goto fail;
        }
    }
    n->kids2 = vec_finish(p, &pairs, &n->nkids2);
    if (parse_body(p, ends, &n->kids, &n->nkids) != 0) return NULL;
    drop_end_tag(p);
    p->nopen--;
    return n;
fail:
    free(pairs.v);
    return NULL;
}

/* {% generation %} ... {% endgeneration %} (transformers' assistant-mask tag): its body. */
static int parse_generation(parser *p, nodevec *out)
{
    static const char *const ends[] = {"endgeneration", NULL};
    uint32_t line = next(p)->line;
    if (push_open(p, "generation", line) != 0) return -1;
    wl_jnode **kids;
    uint32_t n;
    if (parse_body(p, ends, &kids, &n) != 0) return -1;
    drop_end_tag(p);
    p->nopen--;
    for (uint32_t i = 0; i < n; i++)
        if (vec_push(p, out, kids[i]) != 0) return -1;
    return 0;
}

static int parse_print(parser *p, nodevec *out)
{
    uint32_t line = next(p)->line;
    int first = 1;
    while (cur(p)->type != WL_TK_BLOCK_END) {
        if (!first && expect_op(p, WL_OP_COMMA) != 0) return -1;
        first = 0;
        wl_jnode *e = parse_expression(p, 1);
        wl_jnode *o = e ? node_new(p, WL_N_OUTPUT, line) : NULL;
        if (!o) return -1;
        o->a = e;
        if (vec_push(p, out, o) != 0) return -1;
        if (cur(p)->type == WL_TK_EOF) {
            unexpected(p, "'%}'");
            return -1;
        }
    }
    return 0;
}

static const char *const known_end_tags[] = {
    "endif", "endfor", "endset", "endmacro", "endcall", "endfilter", "endwith", "endgeneration",
    "elif", "else", "endraw", "endblock", NULL,
};

/* One {% ... %} statement (the "{%" consumed); appends its nodes to out. */
static int parse_statement_into(parser *p, nodevec *out)
{
    wl_jtoken *t = cur(p);
    if (t->type != WL_TK_NAME) {
        unexpected(p, "a tag name");
        return -1;
    }
    if (enter(p)) return -1;
    wl_jnode *n = NULL;
    int rc = 0;
    if (is_name(t, "if")) n = parse_if(p);
    else if (is_name(t, "for")) n = parse_for(p);
    else if (is_name(t, "set")) n = parse_set(p);
    else if (is_name(t, "macro")) n = parse_macro(p);
    else if (is_name(t, "call")) n = parse_call_block(p);
    else if (is_name(t, "filter")) n = parse_filter_block(p);
    else if (is_name(t, "with")) n = parse_with(p);
    else if (is_name(t, "generation")) rc = parse_generation(p, out);
    else if (is_name(t, "print")) rc = parse_print(p, out);
    else if (is_name(t, "break") || is_name(t, "continue")) {
        int brk = is_name(t, "break");
        next(p);
        if (p->loop_depth == 0) {
            FAIL(p, t->line, "'%s' outside of a for loop", brk ? "break" : "continue");
            rc = -1;
        } else {
            n = node_new(p, brk ? WL_N_BREAK : WL_N_CONTINUE, t->line);
        }
    } else {
        char name[48];
        snprintf(name, sizeof name, "%.*s", (int)(t->len > 40 ? 40 : t->len), t->text);
        int is_end = 0;
        for (int i = 0; known_end_tags[i]; i++)
            if (strcmp(known_end_tags[i], name) == 0) is_end = 1;
        if (is_end && p->nopen > 0)
            FAIL(p, t->line, "unexpected {%% %s %%}: the innermost open block is {%% %s %%} (opened at line %u)",
                 name, p->open[p->nopen - 1].tag, (unsigned)p->open[p->nopen - 1].line);
        else if (is_end)
            FAIL(p, t->line, "unexpected {%% %s %%} with no block open", name);
        else if (!strcmp(name, "extends") || !strcmp(name, "include") || !strcmp(name, "import") ||
                 !strcmp(name, "from") || !strcmp(name, "block") || !strcmp(name, "autoescape") ||
                 !strcmp(name, "do"))
            FAIL(p, t->line, "{%% %s %%} is not supported in chat templates", name);
        else
            FAIL(p, t->line, "unknown tag '%s'", name);
        rc = -1;
    }
    leave(p);
    if (rc != 0 || p->failed) return -1;
    if (n && vec_push(p, out, n) != 0) return -1;
    return expect_type(p, WL_TK_BLOCK_END, "'%}'");
}

static int is_end_tag(const wl_jtoken *t, const char *const *end_tags)
{
    if (!end_tags) return 0;
    for (int i = 0; end_tags[i]; i++)
        if (is_name(t, end_tags[i])) return 1;
    return 0;
}

static int subparse(parser *p, const char *const *end_tags, nodevec *body)
{
    for (;;) {
        if (p->failed) return -1;
        wl_jtoken *t = cur(p);
        switch (t->type) {
        case WL_TK_EOF:
            if (end_tags) {
                unexpected(p, "an end tag");
                return -1;
            }
            return 0;
        case WL_TK_DATA: {
            next(p);
            wl_jnode *n = node_new(p, WL_N_TEXT, t->line);
            wl_jstr *s = n ? static_str(p, t->text, t->len) : NULL;
            if (!s) return -1;
            n->val = wl_jv_obj(&s->h);
            if (vec_push(p, body, n) != 0) return -1;
            break;
        }
        case WL_TK_VAR_BEGIN: {
            next(p);
            wl_jnode *e = parse_tuple(p, 0, 1, NULL, 0);
            if (!e) return -1;
            if (cur(p)->type != WL_TK_VAR_END) {
                unexpected(p, "'}}'");
                return -1;
            }
            next(p);
            wl_jnode *n = node_new(p, WL_N_OUTPUT, t->line);
            if (!n) return -1;
            n->a = e;
            if (vec_push(p, body, n) != 0) return -1;
            break;
        }
        case WL_TK_BLOCK_BEGIN:
            next(p);
            if (is_end_tag(cur(p), end_tags)) return 0;
            if (parse_statement_into(p, body) != 0) return -1;
            break;
        default:
            unexpected(p, "template text or a tag");
            return -1;
        }
    }
}

/* ---- entry points -------------------------------------------------------------------- */

void wl_jtemplate_free(struct wl_jinja_template *tpl)
{
    if (!tpl) return;
    for (size_t i = 0; i < tpl->nstatics; i++) wl_jobj_free_static(tpl->statics[i]);
    free(tpl->statics);
    free(tpl->syms);
    wl_jarena_block *b = tpl->arena;
    while (b) {
        wl_jarena_block *next_block = b->next;
        free(b);
        b = next_block;
    }
    free(tpl);
}

int wl_jparse(const char *src, size_t len, struct wl_jinja_template **out, wandler_error *err)
{
    *out = NULL;
    if (len > WL_JINJA_MAX_SOURCE)
        return wl_error(err, WANDLER_ERR_TEMPLATE_LIMIT, "the template is larger than %d bytes", WL_JINJA_MAX_SOURCE);
    size_t bad;
    if (!wl_utf8_valid(src, len, &bad)) {
        uint32_t line = 1;
        for (size_t i = 0; i < bad; i++) line += src[i] == '\n';
        return wl_error(err, WANDLER_ERR_BAD_UTF8, "line %u: the template is not valid UTF-8 (byte %zu)",
                        (unsigned)line, bad);
    }
    parser p;
    memset(&p, 0, sizeof p);
    p.err = err;
    p.tpl = calloc(1, sizeof *p.tpl);
    if (!p.tpl) return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory while parsing the template");
    int rc = wl_jlex(&p.lx, src, len, err);
    if (rc == 0) {
        if (sym_intern(&p, "loop", 4, &p.tpl->sym_loop) != 0 ||
            sym_intern(&p, "caller", 6, &p.tpl->sym_caller) != 0 ||
            sym_intern(&p, "varargs", 7, &p.tpl->sym_varargs) != 0 ||
            sym_intern(&p, "kwargs", 6, &p.tpl->sym_kwargs) != 0 ||
            !(p.tpl->caller_name = static_str(&p, "caller", 6))) {
            rc = p.code;
        } else {
            nodevec body = {0};
            if (subparse(&p, NULL, &body) == 0 && !p.failed) {
                p.tpl->body = vec_finish(&p, &body, &p.tpl->nbody);
            } else {
                free(body.v);
            }
            if (p.failed) rc = p.code ? p.code : WANDLER_ERR_TEMPLATE;
        }
    }
    wl_jlexer_free(&p.lx);
    free(p.sym_index);
    if (rc != 0 || p.failed) {
        wl_jtemplate_free(p.tpl);
        return rc ? rc : WANDLER_ERR_TEMPLATE;
    }
    *out = p.tpl;
    return WANDLER_OK;
}
