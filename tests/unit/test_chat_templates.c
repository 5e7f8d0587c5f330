/* test_chat_templates.c - the chat templates of real models (and wandler's built-in ones)
 * rendered by wandler's Jinja interpreter byte for byte as Python's jinja2 renders them in
 * transformers' environment. The expected outputs are committed under tests/chat/expected/
 * (made by tests/chat/render_expected.py); when /usr/bin/python3 with jinja2 is present the
 * script is also re-run and its fresh outputs compared. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "text/chat_template.h"
#include "text/jinja/jinja.h"

/* snprintf that fails the test instead of truncating a path. */
#define PATHF(buf, ...)                                                      \
    do {                                                                     \
        if (snprintf((buf), sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf))  \
            fail_msg("path too long");                                       \
    } while (0)

typedef struct fixture {
    json_t *templates;     /* templates.json */
    json_t *conversations; /* conversations.json */
    struct tm date;        /* strftime_now()'s fixed date */
} fixture;

static json_t *load_json(const char *rel)
{
    json_error_t je;
    json_t *j = json_load_file(wl_test_source(rel), 0, &je);
    if (!j) fail_msg("%s: %s (line %d)", rel, je.text, je.line);
    return j;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->templates = load_json("tests/chat/templates.json");
    f->conversations = load_json("tests/chat/conversations.json");
    const char *date = json_string_value(json_object_get(f->templates, "date"));
    if (!date || sscanf(date, "%d-%d-%d", &f->date.tm_year, &f->date.tm_mon, &f->date.tm_mday) != 3)
        fail_msg("templates.json: bad date");
    f->date.tm_year -= 1900;
    f->date.tm_mon -= 1;
    time_t t = timegm(&f->date); /* fills the weekday and day of the year */
    gmtime_r(&t, &f->date);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decref(f->templates);
    json_decref(f->conversations);
    free(f);
    return 0;
}

/* The template's source: a shared model template or a built-in one. Caller frees. */
static char *template_source(json_t *t)
{
    const char *dir = json_string_value(json_object_get(t, "dir"));
    const char *file = json_string_value(json_object_get(t, "file"));
    if (!strcmp(dir, "builtin")) {
        const char *src = wl_chat_template_builtin(json_string_value(json_object_get(t, "builtin")));
        assert_non_null(src);
        return strdup(src);
    }
    char rel[512];
    PATHF(rel, "tokenizer/chat_templates/%s", file);
    char *src = wl_test_read_file(wl_test_shared(rel), NULL);
    if (!src) fail_msg("cannot read %s", rel);
    return src;
}

/* Renders one conversation; returns the status and fills out/err. */
static int render(const fixture *f, const wl_jinja_template *tpl, json_t *t, json_t *conv, wl_buf *out,
                  wandler_error *err)
{
    json_t *jm = json_object_get(conv, "messages");
    size_t n = json_array_size(jm);
    wl_chat_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    for (size_t i = 0; i < n; i++) {
        msgs[i].role = json_string_value(json_object_get(json_array_get(jm, i), "role"));
        msgs[i].content = json_string_value(json_object_get(json_array_get(jm, i), "content"));
    }
    wl_jinja_options jo = wl_jinja_options_default();
    jo.now = &f->date;
    wl_chat_options o = {0};
    o.add_generation_prompt = json_is_true(json_object_get(conv, "add_generation_prompt"));
    o.bos_token = json_string_value(json_object_get(t, "bos_token")); /* NULL for JSON null */
    o.eos_token = json_string_value(json_object_get(t, "eos_token"));
    o.jinja = &jo;
    int rc = wl_chat_render_parsed(tpl, msgs, n, &o, out, err);
    free(msgs);
    return rc;
}

/* Compares a rendering with an expected file (.txt: the text; .err: jinja2 raised). Returns 1
 * when they agree; prints the difference otherwise. */
static int matches_expected(const char *base, int rc, const wl_buf *out, const wandler_error *err)
{
    char path[1024];
    size_t len;
    PATHF(path, "%s.txt", base);
    char *want = wl_test_read_file(path, &len);
    if (want) {
        int ok = rc == WANDLER_OK && out->len == len && memcmp(out->data, want, len) == 0;
        if (!ok) {
            if (rc != WANDLER_OK) print_message("%s: failed: %s\n", base, err->message);
            else {
                size_t at = 0;
                while (at < len && at < out->len && out->data[at] == want[at]) at++;
                print_message("%s: differs at byte %zu (got %zu bytes, want %zu)\n", base, at, out->len, len);
            }
        }
        free(want);
        return ok;
    }
    PATHF(path, "%s.err", base);
    want = wl_test_read_file(path, &len);
    if (!want) fail_msg("no expected output %s.txt or .err", base);
    int ok = rc == WANDLER_ERR_TEMPLATE;
    /* raise_exception(): the template's own message comes through. */
    const char *prefix = "TemplateError: ";
    if (ok && strncmp(want, prefix, strlen(prefix)) == 0) ok = strstr(err->message, want + strlen(prefix)) != NULL;
    if (!ok) print_message("%s: want the error \"%s\", got status %d \"%s\"\n", base, want, rc, rc ? err->message : "");
    free(want);
    return ok;
}

/* Every template x conversation against tests/chat/expected/ (or `dir`). */
static void check_all(const fixture *f, const char *dir, int *total, int *ok, int *errors)
{
    size_t ti;
    json_t *t;
    json_array_foreach(json_object_get(f->templates, "templates"), ti, t) {
        char *src = template_source(t);
        wl_jinja_template *tpl = NULL;
        wandler_error err;
        int rc = wl_jinja_parse(src, strlen(src), &tpl, &err);
        if (rc != WANDLER_OK) fail_msg("%s: %s", json_string_value(json_object_get(t, "name")), err.message);
        const char *cname;
        json_t *conv;
        json_object_foreach(f->conversations, cname, conv) {
            wl_buf out = {0};
            rc = render(f, tpl, t, conv, &out, &err);
            char base[1024];
            PATHF(base, "%s/%s__%s", dir, json_string_value(json_object_get(t, "name")), cname);
            (*total)++;
            if (matches_expected(base, rc, &out, &err)) (*ok)++;
            if (rc != WANDLER_OK) (*errors)++;
            wl_buf_free(&out);
        }
        wl_jinja_free(tpl);
        free(src);
    }
}

static void test_templates_match_jinja2(void **state)
{
    const fixture *f = *state;
    char dir[1024];
    PATHF(dir, "%s", wl_test_source("tests/chat/expected"));
    int total = 0, ok = 0, errors = 0;
    check_all(f, dir, &total, &ok, &errors);
    print_message("%d/%d renderings identical to jinja2 (%d of them errors jinja2 raises too)\n", ok, total, errors);
    assert_int_equal(ok, total);
    assert_true(total >= 12 * 6);
}

/* Every template renders at least six conversations successfully (not only errors). */
static void test_each_template_has_six_renderings(void **state)
{
    const fixture *f = *state;
    size_t ti;
    json_t *t;
    json_array_foreach(json_object_get(f->templates, "templates"), ti, t) {
        int good = 0;
        const char *cname;
        json_t *conv;
        json_object_foreach(f->conversations, cname, conv) {
            char rel[1024];
            PATHF(rel, "tests/chat/expected/%s__%s.txt", json_string_value(json_object_get(t, "name")),
                     cname);
            if (access(wl_test_source(rel), R_OK) == 0) good++;
        }
        if (good < 6) fail_msg("%s: only %d successful renderings", json_string_value(json_object_get(t, "name")), good);
    }
}

/* The built-in templates are the files jinja2 rendered. */
static void test_builtin_sources_match_files(void **state)
{
    (void)state;
    const char *names[] = {"chatml", "llama3", "llama2", "gemma", "phi3", "mistral", "deepseek-r1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char rel[256];
        PATHF(rel, "tests/chat/builtin/%s.jinja", names[i]);
        char *file = wl_test_read_file(wl_test_source(rel), NULL);
        assert_non_null(file);
        const char *src = wl_chat_template_builtin(names[i]);
        assert_non_null(src);
        assert_string_equal(src, file);
        assert_string_equal(wl_jinja_builtin_template_name(i), names[i]);
        free(file);
    }
    assert_null(wl_jinja_builtin_template_name(sizeof names / sizeof names[0]));
    assert_null(wl_chat_template_builtin("no-such-template"));
    assert_null(wl_chat_template_builtin(NULL));
}

/* Re-runs the Python oracle when it is here and compares its fresh output too. */
static void test_python_oracle_agrees(void **state)
{
    const fixture *f = *state;
    if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import jinja2' 2>/dev/null") != 0) {
        print_message("note: /usr/bin/python3 with jinja2 not found; skipping the live comparison with jinja2\n");
        skip();
    }
    char dir[4096], shared[4096], script[4096], cmd[16384];
    PATHF(dir, "%s", wl_test_tmpdir());
    PATHF(shared, "%s", wl_test_shared(""));
    PATHF(script, "%s", wl_test_source("tests/chat/render_expected.py"));
    PATHF(cmd, "/usr/bin/python3 '%s' --out '%s' --shared '%s' >/dev/null", script, dir, shared);
    assert_int_equal(system(cmd), 0);

    int total = 0, ok = 0, errors = 0;
    check_all(f, dir, &total, &ok, &errors);
    print_message("%d/%d renderings identical to a fresh jinja2 run\n", ok, total);
    assert_int_equal(ok, total);

    /* and the committed files are that fresh output */
    const char *cname;
    json_t *conv, *t;
    size_t ti;
    int stale = 0;
    json_array_foreach(json_object_get(f->templates, "templates"), ti, t) {
        json_object_foreach(f->conversations, cname, conv) {
            const char *exts[] = {".txt", ".err"};
            for (int e = 0; e < 2; e++) {
                char a[4096], rel[1024];
                PATHF(a, "%s/%s__%s%s", dir, json_string_value(json_object_get(t, "name")), cname, exts[e]);
                PATHF(rel, "tests/chat/expected/%s__%s%s", json_string_value(json_object_get(t, "name")),
                         cname, exts[e]);
                size_t la = 0, lb = 0;
                char *x = wl_test_read_file(a, &la), *y = wl_test_read_file(wl_test_source(rel), &lb);
                if ((x == NULL) != (y == NULL) || (x && (la != lb || memcmp(x, y, la) != 0))) {
                    print_message("stale expected file: %s\n", rel);
                    stale++;
                }
                if (x) unlink(a);
                free(x);
                free(y);
            }
        }
    }
    rmdir(dir);
    assert_int_equal(stale, 0);
}

static void test_message_validation(void **state)
{
    (void)state;
    const char *tpl = wl_chat_template_builtin("chatml");
    wl_buf out = {0};
    wl_buf_append(&out, "keep", 4);
    wandler_error err;

    wl_chat_message null_role[] = {{"user", "hi"}, {NULL, "x"}};
    assert_int_equal(wl_chat_render(tpl, null_role, 2, 1, NULL, NULL, &out, &err), WANDLER_ERR_BAD_MESSAGE);
    assert_int_equal(err.code, WANDLER_ERR_BAD_MESSAGE);
    assert_non_null(strstr(err.message, "message 1"));
    assert_non_null(strstr(err.message, "role"));

    wl_chat_message null_content[] = {{"user", NULL}};
    assert_int_equal(wl_chat_render(tpl, null_content, 1, 1, NULL, NULL, &out, &err), WANDLER_ERR_BAD_MESSAGE);
    assert_non_null(strstr(err.message, "message 0"));
    assert_non_null(strstr(err.message, "content"));

    wl_chat_message bad_utf8[] = {{"user", "ok"}, {"assistant", "fine"}, {"user", "bad \xC3\x28 byte"}};
    assert_int_equal(wl_chat_render(tpl, bad_utf8, 3, 1, NULL, NULL, &out, &err), WANDLER_ERR_BAD_MESSAGE);
    assert_non_null(strstr(err.message, "message 2"));
    assert_non_null(strstr(err.message, "content"));
    assert_non_null(strstr(err.message, "UTF-8"));

    wl_chat_message bad_role[] = {{"us\xFF" "er", "x"}};
    assert_int_equal(wl_chat_render(tpl, bad_role, 1, 1, NULL, NULL, &out, &err), WANDLER_ERR_BAD_MESSAGE);
    assert_non_null(strstr(err.message, "role"));

    assert_int_equal(wl_chat_render(NULL, null_role, 1, 1, NULL, NULL, &out, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_chat_render(tpl, NULL, 1, 1, NULL, NULL, &out, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_chat_render(tpl, null_role, 1, 1, NULL, NULL, NULL, &err), WANDLER_ERR_INVALID_ARGUMENT);

    /* nothing was appended by the failures */
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "keep", 4);
    wl_buf_free(&out);
}

static void test_render_appends(void **state)
{
    (void)state;
    wl_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Hi"}};
    wl_buf out = {0};
    wl_buf_append(&out, ">>", 2);
    wandler_error err;
    assert_int_equal(wl_chat_render(wl_chat_template_builtin("chatml"), msgs, 2, 1, NULL, NULL, &out, &err), WANDLER_OK);
    assert_string_equal(out.data, ">><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                                  "<|im_start|>assistant\n");
    wl_buf_clear(&out);
    /* no messages at all */
    assert_int_equal(wl_chat_render(wl_chat_template_builtin("chatml"), NULL, 0, 0, NULL, NULL, &out, &err), WANDLER_OK);
    assert_int_equal(out.len, 0);
    assert_non_null(out.data);
    wl_buf_free(&out);
}

static void test_template_errors(void **state)
{
    (void)state;
    wl_buf out = {0};
    wandler_error err;
    wl_chat_message sys[] = {{"system", "S"}, {"user", "U"}};
    /* raise_exception() in a real template: its message, as WANDLER_ERR_TEMPLATE */
    char *gemma = wl_test_read_file(wl_test_shared("tokenizer/chat_templates/gemma-2-2b-it.jinja"), NULL);
    assert_non_null(gemma);
    assert_int_equal(wl_chat_render(gemma, sys, 2, 1, "<bos>", "<eos>", &out, &err), WANDLER_ERR_TEMPLATE);
    assert_non_null(strstr(err.message, "System role not supported"));
    assert_non_null(strstr(err.message, "line 1"));
    free(gemma);
    /* the built-in llama2 refuses roles that do not alternate */
    wl_chat_message twice[] = {{"user", "a"}, {"user", "b"}};
    assert_int_equal(wl_chat_render(wl_chat_template_builtin("llama2"), twice, 2, 1, "<s>", "</s>", &out, &err),
                     WANDLER_ERR_TEMPLATE);
    assert_non_null(strstr(err.message, "Conversation roles must alternate"));
    /* a template that does not parse */
    assert_int_equal(wl_chat_render("{% for m in messages %}", sys, 2, 1, NULL, NULL, &out, &err), WANDLER_ERR_TEMPLATE);
    assert_non_null(strstr(err.message, "for"));
    /* a template that loops too long */
    wl_jinja_options jo = wl_jinja_options_default();
    jo.max_steps = 1000;
    wl_chat_options o = {0};
    o.jinja = &jo;
    const char *spin = "{% for i in range(100000) %}{{ i }}{% endfor %}";
    assert_int_equal(wl_chat_render_ex(spin, strlen(spin), sys, 2, &o, &out, &err), WANDLER_ERR_TEMPLATE_LIMIT);
    assert_int_equal(out.len, 0);
    wl_buf_free(&out);
}

/* Undefined bos/eos tokens print as nothing, as for tokenizers without them. */
static void test_missing_tokens(void **state)
{
    (void)state;
    wl_chat_message m[] = {{"user", "x"}};
    wl_buf out = {0};
    wandler_error err;
    const char *tpl = "[{{ bos_token }}|{{ eos_token is defined }}|{{ tools }}|{{ documents is none }}]";
    assert_int_equal(wl_chat_render(tpl, m, 1, 0, NULL, NULL, &out, &err), WANDLER_OK);
    assert_string_equal(out.data, "[|False|None|True]");
    wl_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_templates_match_jinja2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_template_has_six_renderings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_oracle_agrees, setup, teardown),
        cmocka_unit_test(test_builtin_sources_match_files),
        cmocka_unit_test(test_message_validation),
        cmocka_unit_test(test_render_appends),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_missing_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
