/* request.c - validation of a request's fields, shared by every runner. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen/gen.h"
#include "text/utf8.h"
#include "util/error.h"

static int bad(wandler_error *err, const char *field, double v, const char *range)
{
    return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "request.%s = %g is out of range %s", field, v,
                    range);
}

#define MAX_STOPS 16
#define MAX_STOP_LEN 256
#define MAX_TAG_LEN 64
#define MAX_MESSAGES 100000

static int check_text(const char *s, const char *field, wandler_error *err)
{
    size_t bad_at;
    if (!wl_utf8_valid(s, strlen(s), &bad_at))
        return wl_error(err, WANDLER_ERR_BAD_UTF8, "request.%s is not valid UTF-8 (byte %zu)", field, bad_at);
    return WANDLER_OK;
}

static int check_messages(const wandler_request *r, wandler_error *err)
{
    if (r->n_messages > MAX_MESSAGES)
        return wl_error(err, WANDLER_ERR_BAD_MESSAGE, "request.n_messages = %zu is more than %d", r->n_messages,
                        MAX_MESSAGES);
    if (r->n_messages && !r->messages)
        return wl_error(err, WANDLER_ERR_BAD_MESSAGE, "request.messages is NULL but n_messages = %zu",
                        r->n_messages);
    for (size_t i = 0; i < r->n_messages; i++) {
        const wandler_message *m = &r->messages[i];
        const char *fields[2] = {"role", "content"}, *values[2] = {m->role, m->content};
        for (int f = 0; f < 2; f++) {
            size_t bad_at;
            if (!values[f])
                return wl_error(err, WANDLER_ERR_BAD_MESSAGE, "request.messages[%zu].%s is NULL", i, fields[f]);
            if (!wl_utf8_valid(values[f], strlen(values[f]), &bad_at))
                return wl_error(err, WANDLER_ERR_BAD_MESSAGE,
                                "request.messages[%zu].%s is not valid UTF-8 (byte %zu)", i, fields[f], bad_at);
        }
        if (!m->role[0])
            return wl_error(err, WANDLER_ERR_BAD_MESSAGE, "request.messages[%zu].role is empty", i);
    }
    return WANDLER_OK;
}

static int check_stops(const wandler_request *r, wandler_error *err)
{
    if (r->n_stop > MAX_STOPS)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "request.n_stop = %zu is more than %d", r->n_stop,
                        MAX_STOPS);
    if (r->n_stop && !r->stop)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "request.stop is NULL but n_stop = %zu", r->n_stop);
    for (size_t i = 0; i < r->n_stop; i++) {
        size_t n = r->stop[i] ? strlen(r->stop[i]) : 0;
        if (n < 1 || n > MAX_STOP_LEN)
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "request.stop[%zu] must be 1..%d bytes", i, MAX_STOP_LEN);
        size_t bad_at;
        if (!wl_utf8_valid(r->stop[i], n, &bad_at))
            return wl_error(err, WANDLER_ERR_BAD_UTF8, "request.stop[%zu] is not valid UTF-8 (byte %zu)", i, bad_at);
    }
    return WANDLER_OK;
}

static int check_tag(const char *tag, const char *field, wandler_error *err)
{
    if (!tag)
        return WANDLER_OK;
    size_t n = strlen(tag);
    if (n < 1 || n > MAX_TAG_LEN)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "request.%s must be 1..%d bytes", field, MAX_TAG_LEN);
    return check_text(tag, field, err);
}

int wl_request_validate(const wandler_request *r, wandler_error *err)
{
    if (!r)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "request is NULL");
    int rc;
    if (!r->prompt && !r->system && r->n_messages == 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "request has no prompt, system or messages (request.prompt is NULL)");
    if ((r->prompt && (rc = check_text(r->prompt, "prompt", err))) ||
        (r->system && (rc = check_text(r->system, "system", err))) ||
        (r->chat_template && (rc = check_text(r->chat_template, "chat_template", err))) ||
        (rc = check_messages(r, err)) || (rc = check_stops(r, err)) ||
        (rc = check_tag(r->reasoning_open, "reasoning_open", err)) ||
        (rc = check_tag(r->reasoning_close, "reasoning_close", err)))
        return rc;
    if (r->chat < -1 || r->chat > 1)
        return bad(err, "chat", r->chat, "{-1, 0, 1}");
    if (r->split_reasoning < 0 || r->split_reasoning > 1)
        return bad(err, "split_reasoning", r->split_reasoning, "{0, 1}");
    if (r->add_bos < -1 || r->add_bos > 1)
        return bad(err, "add_bos", r->add_bos, "{-1, 0, 1}");
    if (r->max_tokens < 1 || r->max_tokens > (1 << 20))
        return bad(err, "max_tokens", r->max_tokens, "[1, 1048576]");
    if (!(r->temperature >= 0.0f && r->temperature <= 100.0f))
        return bad(err, "temperature", r->temperature, "[0, 100]");
    if (r->top_k < 0)
        return bad(err, "top_k", r->top_k, "[0, inf)");
    if (!(r->top_p > 0.0f && r->top_p <= 1.0f))
        return bad(err, "top_p", r->top_p, "(0, 1]");
    if (!(r->min_p >= 0.0f && r->min_p <= 1.0f))
        return bad(err, "min_p", r->min_p, "[0, 1]");
    if (!(r->repetition_penalty > 0.0f && r->repetition_penalty <= 100.0f))
        return bad(err, "repetition_penalty", r->repetition_penalty, "(0, 100]");
    if (r->repetition_last_n < -1)
        return bad(err, "repetition_last_n", r->repetition_last_n, "[-1, inf)");
    if (!(r->frequency_penalty >= -2.0f && r->frequency_penalty <= 2.0f))
        return bad(err, "frequency_penalty", r->frequency_penalty, "[-2, 2]");
    if (!(r->presence_penalty >= -2.0f && r->presence_penalty <= 2.0f))
        return bad(err, "presence_penalty", r->presence_penalty, "[-2, 2]");
    if (r->ignore_eos < 0 || r->ignore_eos > 1)
        return bad(err, "ignore_eos", r->ignore_eos, "{0, 1}");
    if (r->timeout_ms < 0)
        return bad(err, "timeout_ms", r->timeout_ms, "[0, inf)");
    return WANDLER_OK;
}

/* ---- deep copy ---- */

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *put_str(char **at, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*at, s, n);
    *at += n;
    return d;
}

void *wl_request_copy(const wandler_request *src, wandler_request *dst)
{
    size_t size = sizeof(wandler_message) * src->n_messages + sizeof(char *) * src->n_stop;
    size += str_size(src->prompt) + str_size(src->system) + str_size(src->chat_template) +
            str_size(src->reasoning_open) + str_size(src->reasoning_close);
    for (size_t i = 0; i < src->n_messages; i++)
        size += str_size(src->messages[i].role) + str_size(src->messages[i].content);
    for (size_t i = 0; i < src->n_stop; i++)
        size += str_size(src->stop[i]);
    char *block = malloc(size ? size : 1);
    if (!block)
        return NULL;
    *dst = *src;
    wandler_message *msgs = (wandler_message *)(void *)block;
    const char **stops = (const char **)(void *)(block + sizeof(wandler_message) * src->n_messages);
    char *at = block + sizeof(wandler_message) * src->n_messages + sizeof(char *) * src->n_stop;
    for (size_t i = 0; i < src->n_messages; i++) {
        msgs[i].role = put_str(&at, src->messages[i].role);
        msgs[i].content = put_str(&at, src->messages[i].content);
    }
    for (size_t i = 0; i < src->n_stop; i++)
        stops[i] = put_str(&at, src->stop[i]);
    dst->messages = src->n_messages ? msgs : NULL;
    dst->stop = src->n_stop ? stops : NULL;
    dst->prompt = put_str(&at, src->prompt);
    dst->system = put_str(&at, src->system);
    dst->chat_template = put_str(&at, src->chat_template);
    dst->reasoning_open = put_str(&at, src->reasoning_open);
    dst->reasoning_close = put_str(&at, src->reasoning_close);
    return block;
}
