/* chat_template.c - conversation + Jinja chat template -> prompt text (as transformers). */
#include "text/chat_template.h"

#include <string.h>

#include "text/utf8.h"
#include "util/error.h"

static int check_field(const char *s, size_t index, const char *field, wandler_error *err)
{
    if (!s) return wl_error(err, WANDLER_ERR_BAD_MESSAGE, "message %zu: %s is NULL", index, field);
    size_t bad;
    if (!wl_utf8_valid(s, strlen(s), &bad))
        return wl_error(err, WANDLER_ERR_BAD_MESSAGE, "message %zu: %s is not valid UTF-8 (byte %zu)", index, field,
                        bad);
    return WANDLER_OK;
}

static int set_string(wl_jinja_value *dict, const char *key, const char *s)
{
    wl_jinja_value *v = wl_jinja_value_string(s, strlen(s));
    if (!v) return WANDLER_ERR_OUT_OF_MEMORY; /* s was checked to be UTF-8 */
    return wl_jinja_dict_set(dict, key, v);
}

/* The variables transformers passes to the template. */
static int build_context(const wl_chat_message *msgs, size_t n, const wl_chat_options *o, wl_jinja_value **out,
                         wandler_error *err)
{
    int rc = WANDLER_OK;
    wl_jinja_value *ctx = wl_jinja_value_dict(), *list = wl_jinja_value_list();
    if (!ctx || !list) rc = WANDLER_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < n && rc == WANDLER_OK; i++) {
        wl_jinja_value *m = wl_jinja_value_dict();
        if (!m) {
            rc = WANDLER_ERR_OUT_OF_MEMORY;
            break;
        }
        rc = set_string(m, "role", msgs[i].role);
        if (rc == WANDLER_OK) rc = set_string(m, "content", msgs[i].content);
        if (rc == WANDLER_OK) rc = wl_jinja_list_append(list, m);
        else wl_jinja_value_free(m);
    }
    if (rc == WANDLER_OK) {
        rc = wl_jinja_dict_set(ctx, "messages", list);
        list = NULL;
    }
    if (rc == WANDLER_OK) rc = wl_jinja_dict_set(ctx, "tools", wl_jinja_value_none());
    if (rc == WANDLER_OK) rc = wl_jinja_dict_set(ctx, "documents", wl_jinja_value_none());
    if (rc == WANDLER_OK) rc = wl_jinja_dict_set(ctx, "add_generation_prompt", wl_jinja_value_bool(o->add_generation_prompt));
    if (rc == WANDLER_OK && o->bos_token) rc = set_string(ctx, "bos_token", o->bos_token);
    if (rc == WANDLER_OK && o->eos_token) rc = set_string(ctx, "eos_token", o->eos_token);
    wl_jinja_value_free(list);
    if (rc != WANDLER_OK) {
        wl_jinja_value_free(ctx);
        return wl_error(err, rc, "out of memory while preparing the chat template's variables");
    }
    *out = ctx;
    return WANDLER_OK;
}

int wl_chat_render_parsed(const wl_jinja_template *tpl, const wl_chat_message *msgs, size_t n,
                          const wl_chat_options *opts, wl_buf *out, wandler_error *err)
{
    if (!tpl || !out || (n && !msgs))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_chat_render: NULL argument");
    wl_chat_options none;
    memset(&none, 0, sizeof none);
    const wl_chat_options *o = opts ? opts : &none;
    int rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_field(msgs[i].role, i, "role", err)) != WANDLER_OK) return rc;
        if ((rc = check_field(msgs[i].content, i, "content", err)) != WANDLER_OK) return rc;
    }
    if ((o->bos_token && !wl_utf8_valid(o->bos_token, strlen(o->bos_token), NULL)) ||
        (o->eos_token && !wl_utf8_valid(o->eos_token, strlen(o->eos_token), NULL)))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_chat_render: bos/eos token is not valid UTF-8");
    wl_jinja_value *ctx = NULL;
    if ((rc = build_context(msgs, n, o, &ctx, err)) != WANDLER_OK) return rc;
    rc = wl_jinja_render(tpl, ctx, o->jinja, out, err);
    wl_jinja_value_free(ctx);
    return rc;
}

int wl_chat_render_ex(const char *template_src, size_t template_len, const wl_chat_message *msgs, size_t n,
                      const wl_chat_options *opts, wl_buf *out, wandler_error *err)
{
    if (!template_src || !out) return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_chat_render: NULL argument");
    wl_jinja_template *tpl;
    int rc = wl_jinja_parse(template_src, template_len, &tpl, err);
    if (rc != WANDLER_OK) return rc;
    rc = wl_chat_render_parsed(tpl, msgs, n, opts, out, err);
    wl_jinja_free(tpl);
    return rc;
}

int wl_chat_render(const char *template_src, const wl_chat_message *msgs, size_t n, int add_generation_prompt,
                   const char *bos_token, const char *eos_token, wl_buf *out, wandler_error *err)
{
    if (!template_src) return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_chat_render: NULL template");
    wl_chat_options o;
    memset(&o, 0, sizeof o);
    o.add_generation_prompt = add_generation_prompt;
    o.bos_token = bos_token;
    o.eos_token = eos_token;
    return wl_chat_render_ex(template_src, strlen(template_src), msgs, n, &o, out, err);
}

const char *wl_chat_template_builtin(const char *name)
{
    return wl_jinja_builtin_template(name);
}
