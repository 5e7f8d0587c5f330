/* lexer.h - template source to tokens, with Jinja2's whitespace control.
 *
 * The whitespace rules are those of a Jinja2 environment with trim_blocks=True and
 * lstrip_blocks=True (what Hugging Face transformers renders chat templates with):
 *  - newlines (\r\n, \r, \n) become \n and one trailing newline of the source is dropped;
 *  - "{%-", "{{-", "{#-" strip all whitespace before the tag, "-%}", "-}}", "-#}" all after;
 *  - the first newline after "%}" or "#}" is dropped ("+%}" keeps it);
 *  - spaces and tabs from the start of a line up to "{%" or "{#" are dropped ("{%+" keeps them);
 *  - {% raw %} ... {% endraw %} is text.
 * Whitespace is Python's (str.isspace), Unicode included.
 */
#ifndef WL_TEXT_JINJA_LEXER_H
#define WL_TEXT_JINJA_LEXER_H

#include <stddef.h>
#include <stdint.h>

#include "wandler.h"

typedef enum wl_jtok_type {
    WL_TK_EOF = 0,
    WL_TK_DATA,        /* template text: text/len */
    WL_TK_VAR_BEGIN,   /* {{ */
    WL_TK_VAR_END,     /* }} */
    WL_TK_BLOCK_BEGIN, /* {% */
    WL_TK_BLOCK_END,   /* %} */
    WL_TK_NAME,        /* text/len */
    WL_TK_STRING,      /* text/len: the decoded value (escapes resolved) */
    WL_TK_INT,         /* ival */
    WL_TK_FLOAT,       /* fval */
    WL_TK_OP,          /* op: WL_OP_* */
} wl_jtok_type;

typedef enum wl_jop {
    WL_OP_ADD = 1, WL_OP_SUB, WL_OP_DIV, WL_OP_FLOORDIV, WL_OP_MUL, WL_OP_MOD, WL_OP_POW,
    WL_OP_TILDE, WL_OP_LBRACKET, WL_OP_RBRACKET, WL_OP_LPAREN, WL_OP_RPAREN, WL_OP_LBRACE,
    WL_OP_RBRACE, WL_OP_EQ, WL_OP_NE, WL_OP_GT, WL_OP_GTEQ, WL_OP_LT, WL_OP_LTEQ, WL_OP_ASSIGN,
    WL_OP_DOT, WL_OP_COLON, WL_OP_PIPE, WL_OP_COMMA, WL_OP_SEMICOLON,
} wl_jop;

typedef struct wl_jtoken {
    uint8_t type; /* WL_TK_* */
    uint8_t op;   /* WL_OP_* */
    uint32_t line;
    const char *text; /* DATA, NAME: into the lexer's source copy; STRING: decoded copy */
    size_t len;
    int64_t ival;
    double fval;
} wl_jtoken;

typedef struct wl_jlexer {
    char *src; /* the normalised source (newlines \n, trailing newline dropped) */
    size_t src_len;
    wl_jtoken *toks;
    size_t n, cap;
    char **strings; /* decoded string literals, freed with the lexer */
    size_t nstrings, strings_cap;
} wl_jlexer;

/* Tokenizes src[0..len) (valid UTF-8, which the caller checks). The token list ends with EOF.
 * Returns WANDLER_OK, WANDLER_ERR_TEMPLATE (message "line N: ...") or OUT_OF_MEMORY.
 * Free with wl_jlexer_free() in every case. */
int wl_jlex(wl_jlexer *lx, const char *src, size_t len, wandler_error *err);
void wl_jlexer_free(wl_jlexer *lx);

/* "+", "//", "(" ... for messages. */
const char *wl_jop_text(int op);

#endif
