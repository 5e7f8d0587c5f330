/* parser.h - tokens to the AST of ast.h (Jinja2's grammar and operator precedence). */
#ifndef WL_TEXT_JINJA_PARSER_H
#define WL_TEXT_JINJA_PARSER_H

#include "text/jinja/ast.h"
#include "wandler.h"

/* How deeply statements and expressions may nest in a template. Deeper nesting is
 * WANDLER_ERR_TEMPLATE_LIMIT (it would cost stack to parse and to render). */
#define WL_JINJA_MAX_PARSE_DEPTH 200
/* The largest template source accepted (real chat templates are a few KiB). */
#define WL_JINJA_MAX_SOURCE (1 << 20)

/* Parses src into a new template (see jinja.h for the contract). */
int wl_jparse(const char *src, size_t len, struct wl_jinja_template **out, wandler_error *err);

/* Frees a template and everything it owns. NULL is ignored. */
void wl_jtemplate_free(struct wl_jinja_template *tpl);

/* Filter and test names (filters.c, is_tests.c): id, or -1 when unknown. */
int wl_jfilter_lookup(const char *name, size_t len);
int wl_jtest_lookup(const char *name, size_t len);

#endif
