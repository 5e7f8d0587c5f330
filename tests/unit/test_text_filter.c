/* test_text_filter.c - stop sequences and the reasoning split, on scripted sequences of pieces
 * (as tokens would cut the text), then end to end on the bundled model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/text_filter.h"
#include "testutil.h"
#include "wandler.h"

/* Feeds pieces through a stop matcher; returns the released text (static) and whether it stopped. */
static const char *run_stop(const char *const *pieces, const char *const *stops, size_t n_stops, int *stopped,
                            size_t *released_before_end)
{
    static char result[1024];
    wl_stop_matcher m;
    wl_stop_init(&m, stops, n_stops);
    wl_buf out = {0};
    *stopped = 0;
    for (size_t i = 0; pieces[i]; i++) {
        int rc = wl_stop_push(&m, pieces[i], strlen(pieces[i]), &out);
        assert_true(rc >= 0);
        if (rc == 1) {
            *stopped = 1;
            break;
        }
    }
    if (released_before_end)
        *released_before_end = out.len;
    assert_int_equal(wl_stop_finish(&m, &out), 0);
    snprintf(result, sizeof result, "%s", out.data ? out.data : "");
    wl_buf_free(&out);
    wl_stop_free(&m);
    return result;
}

static void test_stop_sequences(void **state)
{
    int stopped;
    size_t early;
    const char *stops1[] = {"STOP"};
    /* within one piece */
    const char *p1[] = {"abc", " xSTOPy", " more", NULL};
    assert_string_equal(run_stop(p1, stops1, 1, &stopped, NULL), "abc x");
    assert_true(stopped);
    /* across two pieces */
    const char *p2[] = {"hello ST", "OP world", NULL};
    assert_string_equal(run_stop(p2, stops1, 1, &stopped, NULL), "hello ");
    assert_true(stopped);
    /* across three pieces, the middle one entirely inside */
    const char *p3[] = {"ab S", "TO", "P cd", NULL};
    assert_string_equal(run_stop(p3, stops1, 1, &stopped, NULL), "ab ");
    assert_true(stopped);
    /* at the very start */
    const char *p4[] = {"STOP and the rest", NULL};
    assert_string_equal(run_stop(p4, stops1, 1, &stopped, NULL), "");
    assert_true(stopped);
    /* never: everything comes out, and a held-back partial match is released at the end */
    const char *p5[] = {"one ", "two S", "T", NULL};
    assert_string_equal(run_stop(p5, stops1, 1, &stopped, &early), "one two ST");
    assert_false(stopped);
    assert_int_equal(early, strlen("one two ")); /* "ST" was held back: it could have become STOP */
    /* a false start that turns out not to be the stop sequence is released at once */
    const char *p6[] = {"xST", "AR", NULL};
    assert_string_equal(run_stop(p6, stops1, 1, &stopped, &early), "xSTAR");
    assert_int_equal(early, 5);
    /* several stop sequences: the earliest in the text wins; overlapping prefixes */
    const char *stops2[] = {"\n\n", "User:", "Us"};
    const char *p7[] = {"Answer.\nUser", ": hi\n\n", NULL};
    assert_string_equal(run_stop(p7, stops2, 3, &stopped, NULL), "Answer.\n");
    assert_true(stopped);
    /* multi-byte characters in stop sequences and text */
    const char *stops3[] = {"é!"};
    const char *p8[] = {"caf\xc3\xa9", "! ok", NULL};
    assert_string_equal(run_stop(p8, stops3, 1, &stopped, NULL), "caf");
    /* no stop sequences: a pass-through */
    const char *p9[] = {"a", "b", NULL};
    assert_string_equal(run_stop(p9, NULL, 0, &stopped, NULL), "ab");
}

static void split(const char *const *pieces, int inside, const char *expect_text, const char *expect_reasoning)
{
    wl_reasoning_split r;
    wl_reasoning_init(&r, "<think>", "</think>", inside);
    wl_buf text = {0}, reasoning = {0};
    for (size_t i = 0; pieces[i]; i++)
        assert_int_equal(wl_reasoning_push(&r, pieces[i], strlen(pieces[i]), &text, &reasoning), 0);
    assert_int_equal(wl_reasoning_finish(&r, &text, &reasoning), 0);
    assert_string_equal(text.data ? text.data : "", expect_text);
    assert_string_equal(reasoning.data ? reasoning.data : "", expect_reasoning);
    wl_buf_free(&text);
    wl_buf_free(&reasoning);
    wl_reasoning_free(&r);
}

static void test_reasoning_split(void **state)
{
    /* tags cut at every possible place */
    const char *a[] = {"<th", "ink>\nLet me ", "think.</", "think>\n\nThe answer", " is 4.", NULL};
    split(a, 0, "The answer is 4.", "Let me think.");
    const char *b[] = {"<", "t", "h", "i", "n", "k", ">", "x", "<", "/", "think", ">", "y", NULL};
    split(b, 0, "y", "x");
    /* the template opened the tag: the model starts inside */
    const char *c[] = {"Hmm, 2+2.", "</think>", "4", NULL};
    split(c, 1, "4", "Hmm, 2+2.");
    /* no tags at all: all text */
    const char *d[] = {"Just an answer <b>bold</b>", NULL};
    split(d, 0, "Just an answer <b>bold</b>", "");
    /* a reasoning that never closes stays reasoning */
    const char *e[] = {"<think>still thinking", NULL};
    split(e, 0, "", "still thinking");
    /* after the answer began, a later tag is plain text */
    const char *f[] = {"<think>r</think>a <think>b", NULL};
    split(f, 0, "a <think>b", "r");
    /* a held-back partial tag that is not a tag is released */
    const char *g[] = {"x <thi", "s", NULL};
    split(g, 0, "x <this", "");
    /* splitting off: everything is text */
    wl_reasoning_split r;
    wl_reasoning_init(&r, NULL, NULL, 0);
    wl_buf text = {0}, reasoning = {0};
    assert_int_equal(wl_reasoning_push(&r, "<think>x</think>", 16, &text, &reasoning), 0);
    assert_string_equal(text.data, "<think>x</think>");
    assert_int_equal(reasoning.len, 0);
    wl_buf_free(&text);
    wl_reasoning_free(&r);
}

/* ---- end to end, on the bundled model ---- */

static wandler_model *model;

static int setup(void **state)
{
    wandler_model_options o = wandler_model_options_default();
    o.use_worker = 0;
    wandler_error err;
    if (wandler_load_model(wl_test_source("models/stories260K.gguf"), &o, &model, &err) != WANDLER_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    wandler_model_dispose(model);
    return 0;
}

static char *greedy(const char *prompt, const char *const *stops, size_t n_stops, int *finish)
{
    wandler_request r = wandler_request_default();
    r.prompt = prompt;
    r.temperature = 0;
    r.max_tokens = 64;
    r.stop = stops;
    r.n_stop = n_stops;
    wandler_result res;
    assert_int_equal(wandler_generate_text(model, &r, &res, NULL), WANDLER_OK);
    *finish = res.finish_reason;
    char *t = strdup(res.text);
    wandler_result_free(&res);
    return t;
}

static void test_stops_on_model(void **state)
{
    int finish;
    char *full = greedy("Once upon a time", NULL, 0, &finish);
    /* ", there was a little girl named Lily. She loved to play outside in the park. One" */
    const char *cases[] = {" Lily", " little girl", " named Lily.", "ere was", "e loved", ",", "zebra"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *stops[1] = {cases[i]};
        char *t = greedy("Once upon a time", stops, 1, &finish);
        const char *at = strstr(full, cases[i]);
        if (at) {
            assert_int_equal(finish, WANDLER_FINISH_STOP);
            assert_int_equal(strlen(t), (size_t)(at - full));
            assert_memory_equal(t, full, strlen(t)); /* nothing before the stop sequence is lost */
        } else {
            assert_string_equal(t, full);
            assert_int_equal(finish, WANDLER_FINISH_LENGTH);
        }
        assert_null(strstr(t, cases[i]));
        free(t);
    }
    free(full);
}

static void test_reasoning_on_model(void **state)
{
    /* a template that opens the reasoning tag itself, as DeepSeek-R1's does */
    const char *tpl = "{% for m in messages %}{{ m['content'] }}{% endfor %}<think>\n";
    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time";
    r.chat = 1;
    r.chat_template = tpl;
    r.temperature = 0;
    r.max_tokens = 40;
    wandler_result split_res, plain_res;
    wandler_error err;
    assert_int_equal(wandler_generate_text(model, &r, &split_res, &err), WANDLER_OK);
    r.split_reasoning = 0;
    assert_int_equal(wandler_generate_text(model, &r, &plain_res, &err), WANDLER_OK);
    /* the model never closes the tag: all of it is reasoning, exactly the plain answer (less
     * the whitespace right after the tag) */
    assert_string_equal(split_res.text, "");
    const char *p = plain_res.text;
    while (*p == ' ' || *p == '\n')
        p++;
    assert_string_equal(split_res.reasoning, p);
    assert_true(split_res.reasoning_len > 10);
    assert_string_equal(plain_res.reasoning, "");
    /* streamed: reasoning deltas only */
    r.split_reasoning = 1;
    wandler_stream *st;
    assert_int_equal(wandler_stream_text(model, &r, &st, &err), WANDLER_OK);
    wandler_part part;
    int reasoning_parts = 0, text_parts = 0;
    while (wandler_stream_next(st, &part, -1) == WANDLER_OK) {
        reasoning_parts += part.type == WANDLER_PART_REASONING_DELTA;
        text_parts += part.type == WANDLER_PART_TEXT_DELTA;
    }
    assert_true(reasoning_parts > 0);
    assert_int_equal(text_parts, 0);
    wandler_stream_free(st);
    wandler_result_free(&split_res);
    wandler_result_free(&plain_res);
}

static void test_request_errors(void **state)
{
    wandler_request r = wandler_request_default();
    wandler_result res;
    wandler_error err;
    const wandler_message bad_utf8[2] = {{"user", "fine"}, {"assistant", "bad \xc3("}};
    r.messages = bad_utf8;
    r.n_messages = 2;
    assert_int_equal(wandler_generate_text(model, &r, &res, &err), WANDLER_ERR_BAD_MESSAGE);
    assert_non_null(strstr(err.message, "messages[1].content"));
    wandler_result_free(&res);
    const wandler_message null_role[1] = {{NULL, "x"}};
    r.messages = null_role;
    r.n_messages = 1;
    assert_int_equal(wandler_generate_text(model, &r, &res, &err), WANDLER_ERR_BAD_MESSAGE);
    assert_non_null(strstr(err.message, "messages[0].role"));
    wandler_result_free(&res);
    r = wandler_request_default();
    r.prompt = "x";
    const char *empty_stop[1] = {""};
    r.stop = empty_stop;
    r.n_stop = 1;
    assert_int_equal(wandler_generate_text(model, &r, &res, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "stop[0]"));
    wandler_result_free(&res);
    /* a template that cannot be parsed: the error names the construct */
    r = wandler_request_default();
    r.prompt = "x";
    r.chat = 1;
    r.chat_template = "{% if messages %}never closed";
    assert_int_equal(wandler_generate_text(model, &r, &res, &err), WANDLER_ERR_TEMPLATE);
    wandler_result_free(&res);
    /* the model has no template: chat falls back to plain text */
    r.chat_template = NULL;
    r.system = "Be nice.";
    r.max_tokens = 3;
    assert_int_equal(wandler_generate_text(model, &r, &res, &err), WANDLER_OK);
    assert_true(res.usage.prompt_tokens > 3);
    wandler_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_sequences),
        cmocka_unit_test(test_reasoning_split),
        cmocka_unit_test_setup_teardown(test_stops_on_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reasoning_on_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
