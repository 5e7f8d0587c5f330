/* chat_template.h - turning a conversation into a prompt with the model's chat template.
 *
 * A model's GGUF file carries its chat template as Jinja source (tokenizer.chat_template).
 * These functions render it the way Hugging Face transformers' apply_chat_template() does,
 * byte for byte (see text/jinja/jinja.h for the interpreter): the template sees
 *   messages               a list of {"role": ..., "content": ...} dicts
 *   add_generation_prompt  true/false
 *   bos_token, eos_token   strings (left undefined when NULL, as for a tokenizer without one)
 *   tools, documents       none
 * and the globals raise_exception() (an error with the template's message) and strftime_now().
 *
 * Threads: no shared state; a parsed template (wl_chat_render_parsed) may be rendered from
 * several threads at once.
 */
#ifndef WL_TEXT_CHAT_TEMPLATE_H
#define WL_TEXT_CHAT_TEMPLATE_H

#include <stddef.h>

#include "text/jinja/jinja.h"
#include "util/buf.h"
#include "wandler.h"

typedef struct wl_chat_message {
    const char *role;    /* "system", "user", "assistant", ...: NUL-terminated UTF-8 */
    const char *content; /* NUL-terminated UTF-8 */
} wl_chat_message;

typedef struct wl_chat_options {
    int add_generation_prompt;     /* end with the header of the assistant's turn */
    const char *bos_token;         /* NULL: undefined in the template */
    const char *eos_token;         /* NULL: undefined in the template */
    const wl_jinja_options *jinja; /* limits and strftime_now()'s time; NULL = defaults */
} wl_chat_options;

/* Renders msgs[0..n) with the template source (NUL-terminated), appending the prompt to *out.
 * On error nothing is appended and err says why:
 *   WANDLER_ERR_BAD_MESSAGE   a NULL role or content, or one that is not UTF-8 (the message
 *                             names the index and the field)
 *   WANDLER_ERR_TEMPLATE      the template cannot be parsed, or failed while rendering
 *                             (raise_exception's message included), "line N: ..."
 *   WANDLER_ERR_TEMPLATE_LIMIT rendering went past a bound (output, steps, depth, memory)
 *   WANDLER_ERR_BAD_UTF8      the template is not UTF-8
 *   WANDLER_ERR_INVALID_ARGUMENT, WANDLER_ERR_OUT_OF_MEMORY
 * Parses the template on every call; see wl_chat_render_parsed() to parse once. */
int wl_chat_render(const char *template_src, const wl_chat_message *msgs, size_t n, int add_generation_prompt,
                   const char *bos_token, const char *eos_token, wl_buf *out, wandler_error *err);

/* The same with every option (opts NULL = no generation prompt, no tokens, defaults). */
int wl_chat_render_ex(const char *template_src, size_t template_len, const wl_chat_message *msgs, size_t n,
                      const wl_chat_options *opts, wl_buf *out, wandler_error *err);

/* The same with a template parsed by wl_jinja_parse(). */
int wl_chat_render_parsed(const wl_jinja_template *tpl, const wl_chat_message *msgs, size_t n,
                          const wl_chat_options *opts, wl_buf *out, wandler_error *err);

/* The Jinja source of a built-in template: "chatml", "llama3", "llama2", "gemma", "phi3",
 * "mistral", "deepseek-r1" (static, NUL-terminated), or NULL for another name. */
const char *wl_chat_template_builtin(const char *name);

#endif
