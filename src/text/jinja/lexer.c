/* lexer.c - template source to tokens (see lexer.h for the whitespace rules). */
#include "text/jinja/lexer.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja/ustr.h"
#include "util/buf.h"
#include "util/error.h"

typedef struct lexstate {
    wl_jlexer *lx;
    const char *s; /* normalised source */
    size_t len;
    size_t pos;
    uint32_t line;
    int line_starting; /* the last thing consumed ended with a newline */
    wandler_error *err;
} lexstate;

static const char *const op_texts[] = {
    "", "+", "-", "/", "//", "*", "%", "**", "~", "[", "]", "(", ")", "{", "}", "==", "!=", ">",
    ">=", "<", "<=", "=", ".", ":", "|", ",", ";",
};

const char *wl_jop_text(int op)
{
    return (op > 0 && op < (int)(sizeof op_texts / sizeof op_texts[0])) ? op_texts[op] : "?";
}

static int fail(lexstate *ls, uint32_t line, const char *what)
{
    return wl_error(ls->err, WANDLER_ERR_TEMPLATE, "line %u: %s", (unsigned)line, what);
}

static int oom(lexstate *ls)
{
    return wl_error(ls->err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory while reading the template");
}

static wl_jtoken *push(lexstate *ls, uint8_t type, uint32_t line)
{
    wl_jlexer *lx = ls->lx;
    if (lx->n == lx->cap) {
        size_t ncap = lx->cap ? lx->cap * 2 : 64;
        wl_jtoken *t = realloc(lx->toks, ncap * sizeof *t);
        if (!t) return NULL;
        lx->toks = t;
        lx->cap = ncap;
    }
    wl_jtoken *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->line = line;
    return t;
}

static uint32_t count_newlines(const char *s, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

/* Length of the Python whitespace character at s[i], or 0. */
static size_t space_at(const lexstate *ls, size_t i)
{
    if (i >= ls->len) return 0;
    unsigned char c = (unsigned char)ls->s[i];
    if (c < 0x80) return wl_ju_isspace(c) ? 1 : 0;
    size_t j = i;
    uint32_t cp = wl_ju_next(ls->s, ls->len, &j);
    return wl_ju_isspace(cp) ? j - i : 0;
}

static size_t skip_space(const lexstate *ls, size_t i)
{
    size_t n;
    while ((n = space_at(ls, i)) > 0) i += n;
    return i;
}

static int starts(const lexstate *ls, size_t i, const char *lit)
{
    size_t n = strlen(lit);
    return i + n <= ls->len && memcmp(ls->s + i, lit, n) == 0;
}

/* Emits the text s[a..b) that precedes a tag whose whitespace sign is `sign` ('-', '+' or 0),
 * applying "{%-" stripping or lstrip_blocks (`lstrip` is 0 for {{ }}, which it skips). */
static int emit_text(lexstate *ls, size_t a, size_t b, char sign, int lstrip)
{
    const char *text = ls->s + a;
    size_t n = b - a;
    uint32_t line = ls->line;
    if (sign == '-') {
        size_t start, end;
        wl_ju_strip(text, n, NULL, 0, 0, 1, &start, &end);
        n = end;
    } else if (sign != '+' && lstrip) {
        size_t l_pos = n;
        while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
        if ((l_pos > 0 || ls->line_starting) && l_pos < n) {
            size_t start, end;
            wl_ju_strip(text + l_pos, n - l_pos, NULL, 0, 1, 0, &start, &end);
            if (start == n - l_pos) n = l_pos; /* only whitespace up to the tag */
        }
    }
    ls->line += count_newlines(ls->s + a, b - a);
    if (n == 0) return 0;
    wl_jtoken *t = push(ls, WL_TK_DATA, line);
    if (!t) return oom(ls);
    t->text = text;
    t->len = n;
    return 0;
}

/* Sets pos past a consumed stretch, keeping line numbers and line_starting right. */
static void consume_to(lexstate *ls, size_t to)
{
    if (to > ls->pos) {
        ls->line += count_newlines(ls->s + ls->pos, to - ls->pos);
        ls->line_starting = ls->s[to - 1] == '\n';
    }
    ls->pos = to;
}

/* Matches a block end at i: "+%}", "-%}" + whitespace, "%}" + one newline (trim_blocks).
 * `tag` is "%}" or "#}". Returns the end offset or 0. */
static size_t block_end_at(const lexstate *ls, size_t i, const char *tag)
{
    if (ls->s[i] == '+' && starts(ls, i + 1, tag)) return i + 3;
    if (ls->s[i] == '-' && starts(ls, i + 1, tag)) return skip_space(ls, i + 3);
    if (starts(ls, i, tag)) {
        size_t e = i + 2;
        if (e < ls->len && ls->s[e] == '\n') e++;
        return e;
    }
    return 0;
}

/* ---- literals ------------------------------------------------------------------------ */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_name_char(char c) { return is_name_start(c) || is_digit(c); }

/* (\d+_)*\d+ at i: returns the end, or i when absent. */
static size_t digits_us(const lexstate *ls, size_t i)
{
    size_t j = i;
    if (j >= ls->len || !is_digit(ls->s[j])) return i;
    for (;;) {
        while (j < ls->len && is_digit(ls->s[j])) j++;
        if (j + 1 < ls->len && ls->s[j] == '_' && is_digit(ls->s[j + 1])) {
            j++;
            continue;
        }
        return j;
    }
}

/* Jinja2's float: digits, then an optional fraction and an exponent, or a fraction. */
static size_t float_at(const lexstate *ls, size_t i)
{
    if (i > 0 && ls->s[i - 1] == '.') return 0; /* (?<!\.) */
    size_t j = digits_us(ls, i);
    if (j == i) return 0;
    size_t frac = 0;
    if (j < ls->len && ls->s[j] == '.') {
        size_t k = digits_us(ls, j + 1);
        if (k > j + 1) frac = k;
    }
    size_t e = frac ? frac : j;
    if (e < ls->len && (ls->s[e] == 'e' || ls->s[e] == 'E')) {
        size_t k = e + 1;
        if (k < ls->len && (ls->s[k] == '+' || ls->s[k] == '-')) k++;
        size_t m = digits_us(ls, k);
        if (m > k) return m;
    }
    return frac;
}

static int lex_float(lexstate *ls, size_t end)
{
    char tmp[128];
    size_t n = 0;
    for (size_t i = ls->pos; i < end; i++) {
        if (ls->s[i] == '_') continue;
        if (n + 1 >= sizeof tmp) return fail(ls, ls->line, "number literal too long");
        tmp[n++] = ls->s[i];
    }
    tmp[n] = '\0';
    wl_jtoken *t = push(ls, WL_TK_FLOAT, ls->line);
    if (!t) return oom(ls);
    t->fval = strtod(tmp, NULL);
    consume_to(ls, end);
    return 0;
}

/* Jinja2's integer: 0b.., 0o.., 0x.., decimal, or zeros. Returns the end or 0. */
static size_t int_at(const lexstate *ls, size_t i, int *base)
{
    const char *s = ls->s;
    *base = 10;
    if (s[i] == '0' && i + 2 < ls->len) {
        char p = (char)(s[i + 1] | 0x20);
        int b = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 0;
        if (b) {
            size_t j = i + 2, k = j;
            for (;;) {
                size_t m = k;
                if (m < ls->len && s[m] == '_') m++;
                if (m >= ls->len) break;
                char c = (char)(s[m] | 0x20);
                int ok = b == 2 ? (c == '0' || c == '1') : b == 8 ? (c >= '0' && c <= '7')
                                                                   : (is_digit(s[m]) || (c >= 'a' && c <= 'f'));
                if (!ok) break;
                k = m + 1;
            }
            if (k > j) {
                *base = b;
                return k;
            }
        }
    }
    if (s[i] == '0') {
        size_t k = i + 1;
        for (;;) {
            size_t m = k;
            if (m < ls->len && s[m] == '_') m++;
            if (m < ls->len && s[m] == '0') k = m + 1;
            else break;
        }
        return k;
    }
    if (s[i] >= '1' && s[i] <= '9') {
        size_t k = i + 1;
        for (;;) {
            size_t m = k;
            if (m < ls->len && s[m] == '_') m++;
            if (m < ls->len && is_digit(s[m])) k = m + 1;
            else break;
        }
        return k;
    }
    return 0;
}

static int lex_int(lexstate *ls, size_t end, int base)
{
    size_t i = ls->pos + (base == 10 ? 0 : 2);
    uint64_t v = 0;
    for (; i < end; i++) {
        char c = ls->s[i];
        if (c == '_') continue;
        int d = is_digit(c) ? c - '0' : ((c | 0x20) - 'a' + 10);
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return fail(ls, ls->line, "integer literal too large");
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (v > (uint64_t)INT64_MAX) return fail(ls, ls->line, "integer literal too large");
    wl_jtoken *t = push(ls, WL_TK_INT, ls->line);
    if (!t) return oom(ls);
    t->ival = (int64_t)v;
    consume_to(ls, end);
    return 0;
}

static int hexval(char c)
{
    if (is_digit(c)) return c - '0';
    c = (char)(c | 0x20);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Decodes a string literal body the way Jinja2 does (Python's "unicode-escape" after
 * backslash-replacing non-ASCII), into a new buffer. */
static int decode_string(lexstate *ls, const char *p, size_t n, uint32_t line, wl_buf *out)
{
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c != '\\') {
            size_t j = i + 1;
            while (j < n && p[j] != '\\') j++;
            if (wl_buf_append(out, p + i, j - i) != 0) return oom(ls);
            i = j;
            continue;
        }
        char e = p[i + 1]; /* the literal never ends in a lone backslash */
        i += 2;
        uint32_t cp;
        switch (e) {
        case '\n': continue; /* line continuation */
        case '\\': cp = '\\'; break;
        case '\'': cp = '\''; break;
        case '"': cp = '"'; break;
        case 'a': cp = 7; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'v': cp = 11; break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + (size_t)k < n ? hexval(p[i + (size_t)k]) : -1;
                if (h < 0) {
                    return fail(ls, line, e == 'x' ? "truncated \\xXX escape in a string"
                                          : e == 'u' ? "truncated \\uXXXX escape in a string"
                                                     : "truncated \\UXXXXXXXX escape in a string");
                }
                cp = cp * 16 + (uint32_t)h;
            }
            i += (size_t)digits;
            if (cp > 0x10FFFF) return fail(ls, line, "illegal Unicode character in a string escape");
            break;
        }
        case 'N': return fail(ls, line, "\\N{...} escapes are not supported");
        default:
            if (e >= '0' && e <= '7') {
                cp = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && i < n && p[i] >= '0' && p[i] <= '7'; k++) cp = cp * 8 + (uint32_t)(p[i++] - '0');
                break;
            }
            if ((unsigned char)e >= 0x80) {
                /* Python escaped the character's own backslash: "\é" reads as "\xe9". */
                size_t j = i - 1;
                uint32_t u = wl_ju_next(p, n, &j);
                char tmp[16];
                int len = u <= 0xFF ? 2 : u <= 0xFFFF ? 4 : 8;
                static const char hex[] = "0123456789abcdef";
                tmp[0] = '\\';
                tmp[1] = len == 2 ? 'x' : len == 4 ? 'u' : 'U';
                for (int k = 0; k < len; k++) tmp[2 + k] = hex[(u >> (4 * (len - 1 - k))) & 0xF];
                if (wl_buf_append(out, tmp, 2 + (size_t)len) != 0) return oom(ls);
                i = j;
                continue;
            }
            /* An unknown escape stays as written. */
            if (wl_buf_append(out, p + i - 2, 2) != 0) return oom(ls);
            continue;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return fail(ls, line, "a string escape names a surrogate code point");
        if (wl_ju_put(out, cp) != 0) return oom(ls);
    }
    return 0;
}

static int lex_string(lexstate *ls)
{
    char q = ls->s[ls->pos];
    size_t i = ls->pos + 1;
    while (i < ls->len && ls->s[i] != q) {
        if (ls->s[i] == '\\') {
            if (i + 1 >= ls->len) break;
            i++;
            /* skip the whole escaped character */
            if ((unsigned char)ls->s[i] >= 0x80) {
                wl_ju_next(ls->s, ls->len, &i);
                continue;
            }
        }
        i++;
    }
    if (i >= ls->len) return fail(ls, ls->line, "unterminated string literal");
    wl_buf b = {0};
    int rc = decode_string(ls, ls->s + ls->pos + 1, i - ls->pos - 1, ls->line, &b);
    if (rc == 0 && wl_buf_append(&b, "", 0) != 0) rc = oom(ls);
    wl_jlexer *lx = ls->lx;
    if (rc == 0 && lx->nstrings == lx->strings_cap) {
        size_t ncap = lx->strings_cap ? lx->strings_cap * 2 : 16;
        char **ns = realloc(lx->strings, ncap * sizeof *ns);
        if (!ns) rc = oom(ls);
        else {
            lx->strings = ns;
            lx->strings_cap = ncap;
        }
    }
    if (rc != 0) {
        wl_buf_free(&b);
        return rc;
    }
    wl_jtoken *t = push(ls, WL_TK_STRING, ls->line);
    if (!t) {
        wl_buf_free(&b);
        return oom(ls);
    }
    t->len = b.len;
    t->text = lx->strings[lx->nstrings++] = wl_buf_take(&b);
    consume_to(ls, i + 1);
    return 0;
}

static int op_at(const lexstate *ls, size_t i, size_t *n)
{
    const char *s = ls->s + i;
    size_t left = ls->len - i;
    *n = 2;
    if (left >= 2) {
        if (s[0] == '/' && s[1] == '/') return WL_OP_FLOORDIV;
        if (s[0] == '*' && s[1] == '*') return WL_OP_POW;
        if (s[0] == '=' && s[1] == '=') return WL_OP_EQ;
        if (s[0] == '!' && s[1] == '=') return WL_OP_NE;
        if (s[0] == '>' && s[1] == '=') return WL_OP_GTEQ;
        if (s[0] == '<' && s[1] == '=') return WL_OP_LTEQ;
    }
    *n = 1;
    switch (s[0]) {
    case '+': return WL_OP_ADD;
    case '-': return WL_OP_SUB;
    case '/': return WL_OP_DIV;
    case '*': return WL_OP_MUL;
    case '%': return WL_OP_MOD;
    case '~': return WL_OP_TILDE;
    case '[': return WL_OP_LBRACKET;
    case ']': return WL_OP_RBRACKET;
    case '(': return WL_OP_LPAREN;
    case ')': return WL_OP_RPAREN;
    case '{': return WL_OP_LBRACE;
    case '}': return WL_OP_RBRACE;
    case '>': return WL_OP_GT;
    case '<': return WL_OP_LT;
    case '=': return WL_OP_ASSIGN;
    case '.': return WL_OP_DOT;
    case ':': return WL_OP_COLON;
    case '|': return WL_OP_PIPE;
    case ',': return WL_OP_COMMA;
    case ';': return WL_OP_SEMICOLON;
    default: return 0;
    }
}

/* ---- inside {{ }} and {% %} ---------------------------------------------------------- */

enum { MAX_BRACKETS = 256 };

static int lex_tag(lexstate *ls, int is_block)
{
    char balance[MAX_BRACKETS];
    int depth = 0;
    for (;;) {
        if (ls->pos >= ls->len) return 0; /* the parser reports the missing end */
        size_t i = ls->pos;
        if (depth == 0) {
            size_t end = 0;
            if (is_block) {
                end = block_end_at(ls, i, "%}");
            } else if (ls->s[i] == '-' && starts(ls, i + 1, "}}")) {
                end = skip_space(ls, i + 3);
            } else if (starts(ls, i, "}}")) {
                end = i + 2;
            }
            if (end) {
                if (!push(ls, is_block ? WL_TK_BLOCK_END : WL_TK_VAR_END, ls->line)) return oom(ls);
                consume_to(ls, end);
                return 0;
            }
        }
        size_t sp = skip_space(ls, i);
        if (sp > i) {
            consume_to(ls, sp);
            continue;
        }
        char c = ls->s[i];
        size_t end;
        int base;
        int rc;
        if (is_digit(c)) {
            if ((end = float_at(ls, i)) > 0) rc = lex_float(ls, end);
            else if ((end = int_at(ls, i, &base)) > 0) rc = lex_int(ls, end, base);
            else rc = fail(ls, ls->line, "bad number");
            if (rc) return rc;
            continue;
        }
        if (is_name_start(c)) {
            size_t j = i + 1;
            while (j < ls->len && is_name_char(ls->s[j])) j++;
            wl_jtoken *t = push(ls, WL_TK_NAME, ls->line);
            if (!t) return oom(ls);
            t->text = ls->s + i;
            t->len = j - i;
            consume_to(ls, j);
            continue;
        }
        if (c == '\'' || c == '"') {
            if ((rc = lex_string(ls)) != 0) return rc;
            continue;
        }
        size_t n;
        int op = op_at(ls, i, &n);
        if (!op) {
            char msg[64];
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
                snprintf(msg, sizeof msg, "unexpected character '%c' in a %s", c, is_block ? "{% %} tag" : "{{ }} expression");
            else
                snprintf(msg, sizeof msg, "unexpected character 0x%02x in a %s", (unsigned char)c, is_block ? "{% %} tag" : "{{ }} expression");
            return fail(ls, ls->line, msg);
        }
        if (op == WL_OP_LPAREN || op == WL_OP_LBRACKET || op == WL_OP_LBRACE) {
            if (depth == MAX_BRACKETS)
                return wl_error(ls->err, WANDLER_ERR_TEMPLATE_LIMIT, "line %u: brackets nested too deeply",
                                (unsigned)ls->line);
            balance[depth++] = op == WL_OP_LPAREN ? ')' : op == WL_OP_LBRACKET ? ']' : '}';
        } else if (op == WL_OP_RPAREN || op == WL_OP_RBRACKET || op == WL_OP_RBRACE) {
            char msg[64];
            if (depth == 0) {
                snprintf(msg, sizeof msg, "unexpected '%c'", c);
                return fail(ls, ls->line, msg);
            }
            if (balance[depth - 1] != c) {
                snprintf(msg, sizeof msg, "unexpected '%c', expected '%c'", c, balance[depth - 1]);
                return fail(ls, ls->line, msg);
            }
            depth--;
        }
        wl_jtoken *t = push(ls, WL_TK_OP, ls->line);
        if (!t) return oom(ls);
        t->op = (uint8_t)op;
        consume_to(ls, i + n);
    }
}

/* {% raw %} at i (with its sign): returns the end of the opening tag, or 0. */
static size_t raw_begin_at(const lexstate *ls, size_t i)
{
    size_t j = i + 2;
    if (j < ls->len && (ls->s[j] == '-' || ls->s[j] == '+')) j++;
    j = skip_space(ls, j);
    if (!starts(ls, j, "raw")) return 0;
    j = skip_space(ls, j + 3);
    if (ls->s[j] == '-' && starts(ls, j + 1, "%}")) return skip_space(ls, j + 3);
    if (starts(ls, j, "%}")) return j + 2; /* no trim_blocks after {% raw %} (as Jinja2) */
    return 0;
}

static int lex_raw(lexstate *ls, uint32_t open_line)
{
    /* Find "{%" [sign] ws "endraw" ws end. */
    for (size_t i = ls->pos; i + 1 < ls->len; i++) {
        if (ls->s[i] != '{' || ls->s[i + 1] != '%') continue;
        size_t j = i + 2;
        char sign = 0;
        if (j < ls->len && (ls->s[j] == '-' || ls->s[j] == '+')) sign = ls->s[j++];
        j = skip_space(ls, j);
        if (!starts(ls, j, "endraw")) continue;
        j = skip_space(ls, j + 6);
        if (j >= ls->len) continue;
        size_t end = block_end_at(ls, j, "%}");
        if (!end) continue;
        int rc = emit_text(ls, ls->pos, i, sign, 1);
        if (rc) return rc;
        ls->pos = i;
        consume_to(ls, end);
        return 0;
    }
    /* Like Jinja2, a raw block opened at the very end of the template is no error. */
    if (ls->pos >= ls->len) return 0;
    char msg[80];
    snprintf(msg, sizeof msg, "unterminated {%% raw %%} (opened at line %u)", (unsigned)open_line);
    return fail(ls, ls->line, msg);
}

static int lex_comment(lexstate *ls, uint32_t open_line)
{
    for (size_t i = ls->pos; i < ls->len; i++) {
        size_t end = (ls->s[i] == '#' || ls->s[i] == '+' || ls->s[i] == '-') ? block_end_at(ls, i, "#}") : 0;
        if (end) {
            consume_to(ls, end);
            return 0;
        }
    }
    if (ls->pos >= ls->len) return 0; /* "{#" at the very end: no error in Jinja2 either */
    char msg[80];
    snprintf(msg, sizeof msg, "unterminated comment {# (opened at line %u)", (unsigned)open_line);
    return fail(ls, ls->line, msg);
}

static int lex_all(lexstate *ls)
{
    while (ls->pos < ls->len) {
        /* The next "{{", "{%" or "{#". */
        size_t t = ls->pos;
        const char *p;
        for (;;) {
            p = memchr(ls->s + t, '{', ls->len - t);
            if (!p) {
                t = ls->len;
                break;
            }
            t = (size_t)(p - ls->s);
            if (t + 1 < ls->len && (p[1] == '{' || p[1] == '%' || p[1] == '#')) break;
            t++;
        }
        if (t >= ls->len) {
            int rc = emit_text(ls, ls->pos, ls->len, 0, 0);
            if (rc) return rc;
            ls->pos = ls->len;
            break;
        }
        char kind = ls->s[t + 1];
        char sign = (t + 2 < ls->len && (ls->s[t + 2] == '-' || ls->s[t + 2] == '+')) ? ls->s[t + 2] : 0;
        size_t raw_end = kind == '%' ? raw_begin_at(ls, t) : 0;
        int rc = emit_text(ls, ls->pos, t, sign, kind != '{');
        if (rc) return rc;
        uint32_t open_line = ls->line;
        ls->pos = t;
        if (raw_end) {
            consume_to(ls, raw_end);
            rc = lex_raw(ls, open_line);
        } else if (kind == '#') {
            consume_to(ls, t + 2 + (sign ? 1 : 0));
            rc = lex_comment(ls, open_line);
        } else {
            int is_block = kind == '%';
            if (!push(ls, is_block ? WL_TK_BLOCK_BEGIN : WL_TK_VAR_BEGIN, ls->line)) return oom(ls);
            consume_to(ls, t + 2 + (sign ? 1 : 0));
            rc = lex_tag(ls, is_block);
        }
        if (rc) return rc;
    }
    return push(ls, WL_TK_EOF, ls->line) ? 0 : oom(ls);
}

int wl_jlex(wl_jlexer *lx, const char *src, size_t len, wandler_error *err)
{
    memset(lx, 0, sizeof *lx);
    /* Normalise newlines; drop one trailing newline (keep_trailing_newline=False). */
    lx->src = malloc(len + 1);
    if (!lx->src) return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory while reading the template");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            lx->src[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            lx->src[n++] = src[i];
        }
    }
    if (n > 0 && lx->src[n - 1] == '\n') n--;
    lx->src[n] = '\0';
    lx->src_len = n;
    lexstate ls = {lx, lx->src, n, 0, 1, 1, err};
    return lex_all(&ls);
}

void wl_jlexer_free(wl_jlexer *lx)
{
    for (size_t i = 0; i < lx->nstrings; i++) free(lx->strings[i]);
    free(lx->strings);
    free(lx->toks);
    free(lx->src);
    memset(lx, 0, sizeof *lx);
}
