/* cmd_render.c - `wandler render`: print the prompt a chat template makes of a conversation,
 * byte for byte, for checking templates from the shell. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/gguf.h"
#include "text/chat_template.h"
#include "text/vocab.h"
#include "util/buf.h"

static void render_usage(FILE *out)
{
    fprintf(out, "usage: wandler render (MODEL | --template FILE|NAME) --messages FILE.json\n"
                 "                      [--add-generation-prompt] [--bos TEXT] [--eos TEXT]\n"
                 "\n"
                 "Prints the prompt the chat template renders for the conversation, exactly (no\n"
                 "newline added). The template is MODEL's tokenizer.chat_template, a Jinja file, or a\n"
                 "built-in name (chatml, llama3, llama2, gemma, phi3, mistral, deepseek-r1). The\n"
                 "messages file is a JSON array of {\"role\": ..., \"content\": ...} (- for stdin).\n"
                 "BOS/EOS token texts come from MODEL's vocabulary, or --bos/--eos.\n");
}

static char *read_all(const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    wl_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (wl_buf_append(&b, chunk, n) != 0)
            break;
    if (f != stdin)
        fclose(f);
    return wl_buf_take(&b);
}

/* Loads the messages of a JSON file into msgs (pointing into *root, which the caller frees). */
static int load_messages(const char *path, json_t **root, wl_chat_message **msgs, size_t *n)
{
    json_error_t jerr;
    *root = strcmp(path, "-") ? json_load_file(path, 0, &jerr) : json_loadf(stdin, 0, &jerr);
    if (!*root) {
        fprintf(stderr, "wandler render: %s: line %d: %s\n", path, jerr.line, jerr.text);
        return -1;
    }
    if (!json_is_array(*root)) {
        fprintf(stderr, "wandler render: %s: expected a JSON array of messages\n", path);
        return -1;
    }
    *n = json_array_size(*root);
    *msgs = calloc(*n ? *n : 1, sizeof **msgs);
    for (size_t i = 0; i < *n; i++) {
        json_t *m = json_array_get(*root, i);
        (*msgs)[i].role = json_string_value(json_object_get(m, "role"));
        (*msgs)[i].content = json_string_value(json_object_get(m, "content"));
        if (!(*msgs)[i].role || !(*msgs)[i].content) {
            fprintf(stderr, "wandler render: %s: message %zu needs string \"role\" and \"content\"\n", path, i);
            return -1;
        }
    }
    return 0;
}

static char *token_text(const wl_vocab *v, int32_t id)
{
    size_t len;
    return id >= 0 ? strndup(wl_vocab_token_text(v, id, &len), len) : NULL;
}

int cmd_render(int argc, char **argv)
{
    const char *model = NULL, *template = NULL, *messages = NULL, *bos_opt = NULL, *eos_opt = NULL;
    int gen_prompt = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            render_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--template")) {
            if (!(template = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--messages")) {
            if (!(messages = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--bos")) {
            if (!(bos_opt = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--eos")) {
            if (!(eos_opt = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--add-generation-prompt")) {
            gen_prompt = 1;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "wandler render: unknown option '%s'\n", o);
            return 2;
        } else if (!model) {
            model = o;
        } else {
            fprintf(stderr, "wandler render: unexpected argument '%s'\n", o);
            return 2;
        }
    }
    if ((!model && !template) || !messages) {
        render_usage(stderr);
        return 2;
    }
    int status = 1;
    gguf_file *f = NULL;
    wl_vocab *v = NULL;
    json_t *root = NULL;
    wl_chat_message *msgs = NULL;
    char *source = NULL, *bos = NULL, *eos = NULL;
    size_t n = 0;
    wandler_error err;
    wl_buf out = {0};
    if (model) {
        if (gguf_open(model, &f, &err) != WANDLER_OK || wl_vocab_load(f, &v, &err) != WANDLER_OK) {
            fprintf(stderr, "wandler render: %s: %s (%s)\n", model, err.message, wandler_status_name(err.code));
            goto out;
        }
        bos = token_text(v, wl_vocab_bos(v));
        eos = token_text(v, wl_vocab_eos(v));
        gguf_str t;
        if (!template && gguf_get_str(f, "tokenizer.chat_template", &t, NULL) == WANDLER_OK)
            source = strndup(t.ptr, t.len);
        if (!template && !source) {
            fprintf(stderr, "wandler render: %s has no chat template (use --template)\n", model);
            goto out;
        }
    }
    if (template) {
        const char *builtin = wl_chat_template_builtin(template);
        source = builtin ? strdup(builtin) : read_all(template);
        if (!source) {
            fprintf(stderr, "wandler render: cannot read template '%s'\n", template);
            goto out;
        }
    }
    if (load_messages(messages, &root, &msgs, &n) != 0)
        goto out;
    if (wl_chat_render(source, msgs, n, gen_prompt, bos_opt ? bos_opt : bos, eos_opt ? eos_opt : eos, &out, &err) !=
        WANDLER_OK) {
        fprintf(stderr, "wandler render: %s (%s)\n", err.message, wandler_status_name(err.code));
        goto out;
    }
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    status = 0;
out:
    wl_buf_free(&out);
    free(msgs);
    json_decref(root);
    free(source);
    free(bos);
    free(eos);
    wl_vocab_free(v);
    gguf_close(f);
    return status;
}
