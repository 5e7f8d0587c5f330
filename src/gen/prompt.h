/* prompt.h - from a request to the text the model reads: a plain prompt as it is, or a
 * conversation rendered with a chat template (the model's, a built-in one by name, or one the
 * request brings), falling back to plain text for models without a template. */
#ifndef WL_GEN_PROMPT_H
#define WL_GEN_PROMPT_H

#include "gen/session.h"
#include "util/buf.h"
#include "wandler.h"

typedef struct wl_prompt {
    wl_buf text;         /* what to tokenize */
    int chat;            /* rendered from a conversation */
    int parse_special;   /* the text holds special tokens as text (a template wrote them) */
    int add_bos;         /* prepend BOS */
    int opens_reasoning; /* the text ends inside an opened reasoning tag (the template opened it) */
} wl_prompt;

/* Builds the prompt of request r on session s. Errors: TEMPLATE, TEMPLATE_LIMIT, BAD_MESSAGE,
 * EMPTY_PROMPT, OUT_OF_MEMORY. */
int wl_prompt_build(const wl_session *s, const wandler_request *r, wl_prompt *out, wandler_error *err);
void wl_prompt_free(wl_prompt *p);

/* The reasoning tags of a request (its own, or "<think>" / "</think>"). */
const char *wl_reasoning_open_tag(const wandler_request *r);
const char *wl_reasoning_close_tag(const wandler_request *r);

#endif
