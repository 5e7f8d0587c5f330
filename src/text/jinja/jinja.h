/* jinja.h - a small Jinja2 interpreter for chat templates.
 *
 * Renders the subset of Jinja2 that models' chat templates use byte-identically to Python's
 * jinja2 3.1 in the environment Hugging Face transformers uses for apply_chat_template():
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
 * extension, the globals raise_exception() and strftime_now(), and a tojson filter that is
 * json.dumps(ensure_ascii=False, ...).
 *
 * Supported: text, {{ }}, {# #}, whitespace control (-, +), {% raw %}, if/elif/else, for
 * (tuple targets, `if` filter, else, loop.*, break, continue), set (also namespace attributes
 * and {% set %} blocks), macro (defaults, varargs, kwargs, caller), call, filter, with,
 * generation, print; Python expressions (literals, attribute/item access, slices, calls,
 * arithmetic, comparisons, in, and/or/not, conditional expressions, "%" formatting), str,
 * dict and list methods, every Jinja2 test, the globals range, namespace, dict,
 * raise_exception, strftime_now, and the filters abs attr batch capitalize center count d
 * default dictsort e escape first float forceescape format indent int items join last length
 * list lower map max min reject rejectattr replace reverse round safe select selectattr slice
 * sort string sum title tojson trim truncate unique upper wordcount.
 * Rejected with WANDLER_ERR_TEMPLATE at parse time: extends, include, import, block,
 * autoescape, recursive loops, and filters or tests not listed (filesizeformat, groupby,
 * pprint, random, striptags, urlencode, urlize, wordwrap, xmlattr); the globals lipsum,
 * cycler and joiner are not defined.
 *
 * Known differences from jinja2 (none matter to the chat templates we know):
 *  - integers are 64-bit: a result that does not fit is an error (Python has big integers);
 *    there are no complex numbers;
 *  - filters that return generators in Jinja2 (map, select, reject, selectattr, rejectattr,
 *    unique, batch, slice, items, reverse) compute their result at once: an error in them
 *    shows even when the result is never used, a generator made from another takes the
 *    other's items when it is made, and printing one gives "<generator object>" (like
 *    Jinja2's, such a result is true, has no length and is used up by iterating it);
 *  - printed functions and methods carry no memory address;
 *  - Markup is not modelled: `escape` returns a plain string, `safe` its input;
 *  - str.format() takes no format specs; identifiers are ASCII; \N{...} escapes are refused.
 *
 * Safety: templates and the data they render are untrusted. Parsing bounds nesting depth;
 * rendering bounds output size, the size of any string built, evaluation steps, nesting
 * depth and memory (wl_jinja_options); going past one is WANDLER_ERR_TEMPLATE_LIMIT. The
 * interpreter never prints, exits, or keeps global state.
 *
 * Threads: a parsed template is immutable; any number of threads may render it at once.
 * A context value may be shared by concurrent renders as long as nobody changes or frees it
 * meanwhile. Rendering needs about 1 MiB of stack at the default depth limit.
 */
#ifndef WL_TEXT_JINJA_JINJA_H
#define WL_TEXT_JINJA_JINJA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"
#include "wandler.h"

typedef struct wl_jinja_template wl_jinja_template;
typedef struct wl_jinja_value wl_jinja_value;

/* Parses a template. On success *out is a new template the caller frees with wl_jinja_free().
 * Errors: WANDLER_ERR_TEMPLATE ("line N: ..." naming the construct), WANDLER_ERR_TEMPLATE_LIMIT
 * (nesting too deep), WANDLER_ERR_BAD_UTF8 (src is not UTF-8), OUT_OF_MEMORY,
 * INVALID_ARGUMENT (NULL pointers). */
int wl_jinja_parse(const char *src, size_t len, wl_jinja_template **out, wandler_error *err);

/* Frees a template. NULL is ignored. No render of it may be running. */
void wl_jinja_free(wl_jinja_template *tpl);

typedef struct wl_jinja_options {
    /* Bytes the render may output; also the largest string it may build. Default 16 MiB. */
    size_t max_output;
    /* Evaluation steps (nodes evaluated, loop iterations, one per 64 bytes of string work).
     * Default 10 million. */
    uint64_t max_steps;
    /* Nesting of evaluation (macro calls, expressions, statements). Default 500. */
    uint32_t max_depth;
    /* Bytes that values made by the render may hold at once. Default 256 MiB. */
    size_t max_memory;
    /* The time strftime_now() formats; NULL = the local time when it is called. */
    const struct tm *now;
} wl_jinja_options;

/* The defaults above. */
wl_jinja_options wl_jinja_options_default(void);

/* Renders tpl with the variables of `ctx` (a dict made with wl_jinja_value_dict(), or NULL for
 * none), appending the output to *out. `opts` may be NULL for the defaults; zero fields take
 * their default. On error nothing is appended (out keeps its length) and err says why:
 * WANDLER_ERR_TEMPLATE ("line N: ..."; raise_exception(msg) gives "line N: msg"),
 * WANDLER_ERR_TEMPLATE_LIMIT, OUT_OF_MEMORY, INVALID_ARGUMENT. */
int wl_jinja_render(const wl_jinja_template *tpl, const wl_jinja_value *ctx, const wl_jinja_options *opts,
                    wl_buf *out, wandler_error *err);

/* ---- building context values ----------------------------------------------------------
 * Each constructor returns a new value the caller owns (free with wl_jinja_value_free()), or
 * NULL when memory runs out. Containers take over the items given to them. */
wl_jinja_value *wl_jinja_value_none(void);
wl_jinja_value *wl_jinja_value_bool(int b);
wl_jinja_value *wl_jinja_value_int(int64_t i);
wl_jinja_value *wl_jinja_value_float(double f);
/* A copy of s[0..len). NULL also when s is not valid UTF-8. */
wl_jinja_value *wl_jinja_value_string(const char *s, size_t len);
wl_jinja_value *wl_jinja_value_list(void);
wl_jinja_value *wl_jinja_value_dict(void);
/* Appends item to list, taking it over (it is freed on failure too). Errors: INVALID_ARGUMENT
 * (list not a list, item NULL), OUT_OF_MEMORY. */
int wl_jinja_list_append(wl_jinja_value *list, wl_jinja_value *item);
/* Sets dict[key] = item (key: NUL-terminated UTF-8), taking item over. Errors as above, and
 * INVALID_ARGUMENT for a key that is not UTF-8. */
int wl_jinja_dict_set(wl_jinja_value *dict, const char *key, wl_jinja_value *item);
/* Frees a value and what it holds. NULL is ignored. */
void wl_jinja_value_free(wl_jinja_value *v);

/* ---- built-in chat templates ----------------------------------------------------------
 * Jinja sources of common chat formats: "chatml", "llama3", "llama2", "gemma", "phi3",
 * "mistral", "deepseek-r1". Returns the static NUL-terminated source, or NULL for an unknown
 * name. wl_jinja_builtin_template_name(i) lists the names (NULL past the last). */
const char *wl_jinja_builtin_template(const char *name);
const char *wl_jinja_builtin_template_name(size_t i);

#endif
