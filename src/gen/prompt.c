/* prompt.c - building the prompt text of a request (see prompt.h). */
#include "gen/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "text/chat_template.h"
#include "util/error.h"

const char *wl_reasoning_open_tag(const wandler_request *r)
{
    return r->reasoning_open ? r->reasoning_open : "<think>";
}

const char *wl_reasoning_close_tag(const wandler_request *r)
{
    return r->reasoning_close ? r->reasoning_close : "</think>";
}

/* The conversation of a request: system, then the prompt as a user turn, then messages. */
static wl_chat_message *conversation(const wandler_request *r, size_t *n)
{
    size_t count = (r->system ? 1 : 0) + (r->prompt ? 1 : 0) + r->n_messages;
    wl_chat_message *msgs = calloc(count ? count : 1, sizeof *msgs);
    if (!msgs)
        return NULL;
    size_t k = 0;
    if (r->system)
        msgs[k++] = (wl_chat_message){"system", r->system};
    if (r->prompt)
        msgs[k++] = (wl_chat_message){"user", r->prompt};
    for (size_t i = 0; i < r->n_messages; i++)
        msgs[k++] = (wl_chat_message){r->messages[i].role, r->messages[i].content};
    *n = count;
    return msgs;
}

/* Models without a template (or chat = 0): the contents as plain text, a blank line apart. */
static int plain_join(const wl_chat_message *msgs, size_t n, wl_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i && wl_buf_puts(out, "\n\n"))
            return -1;
        if (wl_buf_puts(out, msgs[i].content))
            return -1;
    }
    return 0;
}

static char *token_text(const wl_vocab *v, int32_t id)
{
    if (id < 0)
        return NULL;
    size_t len;
    const char *t = wl_vocab_token_text(v, id, &len);
    return strndup(t, len);
}

static int ends_with_tag(const wl_buf *b, const char *tag)
{
    size_t n = b->len, tl = strlen(tag);
    while (n && (b->data[n - 1] == ' ' || b->data[n - 1] == '\n' || b->data[n - 1] == '\r' || b->data[n - 1] == '\t'))
        n--;
    return tl && n >= tl && memcmp(b->data + n - tl, tag, tl) == 0;
}

int wl_prompt_build(const wl_session *s, const wandler_request *r, wl_prompt *out, wandler_error *err)
{
    memset(out, 0, sizeof *out);
    const wl_vocab *v = s->vocab;
    int chat = r->chat == 1 || (r->chat == -1 && (r->system || r->n_messages));
    int model_bos = wl_vocab_add_bos(v) && wl_vocab_bos(v) >= 0;
    if (!chat) {
        if (r->chat == 0 && (r->system || r->n_messages)) {
            size_t n;
            wl_chat_message *msgs = conversation(r, &n);
            int rc = !msgs || plain_join(msgs, n, &out->text) ? -1 : 0;
            free(msgs);
            if (rc)
                return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        } else if (r->prompt && wl_buf_puts(&out->text, r->prompt)) {
            return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        }
        out->add_bos = r->add_bos >= 0 ? r->add_bos : model_bos;
        return WANDLER_OK;
    }

    size_t n;
    wl_chat_message *msgs = conversation(r, &n);
    if (!msgs)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    const char *tpl = r->chat_template;
    if (tpl && wl_chat_template_builtin(tpl))
        tpl = wl_chat_template_builtin(tpl);
    if (!tpl)
        tpl = s->chat_template;
    int rc = WANDLER_OK;
    out->chat = 1;
    if (!tpl) {
        /* no template anywhere: plain text, read as it is */
        if (plain_join(msgs, n, &out->text))
            rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        out->add_bos = r->add_bos >= 0 ? r->add_bos : model_bos;
    } else {
        char *bos = token_text(v, wl_vocab_bos(v)), *eos = token_text(v, wl_vocab_eos(v));
        wl_chat_options co = {.add_generation_prompt = 1, .bos_token = bos, .eos_token = eos};
        rc = wl_chat_render_ex(tpl, strlen(tpl), msgs, n, &co, &out->text, err);
        /* templates write their own BOS as text; add one only when the model wants one and the
         * template did not write it */
        int starts_with_bos = bos && out->text.len >= strlen(bos) && memcmp(out->text.data, bos, strlen(bos)) == 0;
        out->add_bos = r->add_bos >= 0 ? r->add_bos : model_bos && !starts_with_bos;
        out->parse_special = 1;
        free(bos);
        free(eos);
    }
    free(msgs);
    if (rc) {
        wl_prompt_free(out);
        return rc;
    }
    if (r->split_reasoning && out->text.data)
        out->opens_reasoning = ends_with_tag(&out->text, wl_reasoning_open_tag(r));
    return WANDLER_OK;
}

void wl_prompt_free(wl_prompt *p)
{
    wl_buf_free(&p->text);
}
