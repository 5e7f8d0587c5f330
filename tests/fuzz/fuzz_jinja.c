/* fuzz_jinja.c - libFuzzer target: the input is a Jinja chat template.
 *
 * It is parsed and, when it parses, rendered with a fixed small conversation (system, user,
 * assistant with a <think> block, user with odd characters) under tight limits, so that every
 * input finishes quickly and in bounded memory: a crash, a hang, a leak or undefined behaviour
 * is a bug; an error status is fine. The rendered text must be valid UTF-8 and within the
 * output limit. Seeds: tests/fuzz/corpus/jinja (the real model templates and small ones). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/chat_template.h"
#include "text/jinja/jinja.h"
#include "text/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wl_jinja_template *tpl = NULL;
    if (wl_jinja_parse((const char *)data, size, &tpl, NULL) != WANDLER_OK) return 0;

    static const wl_chat_message msgs[] = {
        {"system", "You are \"helpful\".\n"},
        {"user", "Hi {{ there }} \xE2\x9C\x93 \t"},
        {"assistant", "<think>\nhmm\n</think>\n\nHello!"},
        {"user", "  caf\xC3\xA9 \xF0\x9F\x98\x80 [INST] <|im_end|> %s {0}"},
    };
    struct tm now;
    memset(&now, 0, sizeof now);
    now.tm_year = 124;
    now.tm_mon = 6;
    now.tm_mday = 26;
    now.tm_wday = 5;
    now.tm_yday = 207;

    wl_jinja_options jo = wl_jinja_options_default();
    jo.max_output = 1 << 16;
    jo.max_steps = 200000;
    jo.max_memory = 32u << 20;
    jo.now = &now;
    wl_chat_options o;
    memset(&o, 0, sizeof o);
    o.bos_token = "<s>";
    o.eos_token = "</s>";
    o.jinja = &jo;

    for (int agp = 0; agp < 2; agp++) {
        o.add_generation_prompt = agp;
        wl_buf out = {0};
        wandler_error err;
        int rc = wl_chat_render_parsed(tpl, msgs, agp ? 4 : 3, &o, &out, &err);
        if (rc == WANDLER_OK && (out.len > jo.max_output || !wl_utf8_valid(out.data, out.len, NULL))) abort();
        if (rc != WANDLER_OK && (err.code != rc || err.message[0] == '\0')) abort();
        wl_buf_free(&out);
    }
    wl_jinja_free(tpl);
    return 0;
}
