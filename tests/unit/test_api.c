/* test_api.c - the public API: argument and option validation, streams, abort, determinism,
 * status names, and the errors of requests that cannot run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text/utf8.h"
#include "wandler.h"

static wandler_model *load_bundled(int n_ctx)
{
    wandler_model_options o = wandler_model_options_default();
    o.context_length = n_ctx;
    wandler_model *m = NULL;
    wandler_error err;
    int rc = wandler_load_model(wl_test_source("models/stories260K.gguf"), &o, &m, &err);
    if (rc != WANDLER_OK)
        fail_msg("load: %s", err.message);
    return m;
}

static int setup(void **state)
{
    *state = load_bundled(0);
    return 0;
}

static int teardown(void **state)
{
    wandler_model_dispose(*state);
    return 0;
}

static void test_status_names(void **state)
{
    const int codes[] = {WANDLER_OK, WANDLER_DONE, WANDLER_AGAIN, WANDLER_ERR_INVALID_ARGUMENT,
                         WANDLER_ERR_GGUF_TRUNCATED, WANDLER_ERR_GGUF_DUPLICATE_TENSOR,
                         WANDLER_ERR_MODEL_MISSING_KEY, WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER,
                         WANDLER_ERR_CONTEXT_FULL, WANDLER_ERR_BAD_UTF8};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        assert_string_not_equal(wandler_status_name(codes[i]), "WANDLER_UNKNOWN");
    assert_string_equal(wandler_status_name(WANDLER_ERR_GGUF_BAD_MAGIC), "WANDLER_ERR_GGUF_BAD_MAGIC");
    assert_string_equal(wandler_status_name(-12345), "WANDLER_UNKNOWN");
    assert_string_equal(wandler_finish_reason_name(WANDLER_FINISH_LENGTH), "length");
    assert_string_equal(wandler_version(), WANDLER_VERSION_STRING);
}

static void test_load_errors(void **state)
{
    wandler_model *m = (wandler_model *)1;
    wandler_error err;
    assert_int_equal(wandler_load_model("/nonexistent/model.gguf", NULL, &m, &err), WANDLER_ERR_NOT_FOUND);
    assert_null(m);
    assert_int_equal(err.code, WANDLER_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "/nonexistent/model.gguf"));
    assert_int_equal(wandler_load_model(NULL, NULL, &m, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wandler_load_model("x", NULL, NULL, &err), WANDLER_ERR_INVALID_ARGUMENT);
    /* a directory is not a model */
    assert_int_not_equal(wandler_load_model("/", NULL, &m, &err), WANDLER_OK);
    assert_null(m);

    wandler_model_options o = wandler_model_options_default();
    o.n_threads = -1;
    assert_int_equal(wandler_load_model(wl_test_source("models/stories260K.gguf"), &o, &m, &err),
                     WANDLER_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "n_threads"));
    o = wandler_model_options_default();
    o.context_length = -5;
    assert_int_equal(wandler_load_model(wl_test_source("models/stories260K.gguf"), &o, &m, &err),
                     WANDLER_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "context_length"));
    /* NULL err is allowed */
    assert_int_equal(wandler_load_model("/nonexistent", NULL, &m, NULL), WANDLER_ERR_NOT_FOUND);
}

static void test_model_info(void **state)
{
    wandler_model_info info;
    assert_int_equal(wandler_model_info_get(*state, &info), WANDLER_OK);
    assert_string_equal(info.architecture, "llama");
    assert_int_equal(info.n_vocab, 512);
    assert_int_equal(info.n_embd, 64);
    assert_int_equal(info.n_layer, 5);
    assert_int_equal(info.n_head, 8);
    assert_int_equal(info.n_head_kv, 4);
    assert_int_equal(info.n_ctx_train, 2048);
    assert_int_equal(info.n_ctx, 2048);
    assert_int_equal(info.file_bytes, 1185376);
    assert_true(info.n_params > 250000 && info.n_params < 300000);
    assert_true(info.n_threads >= 1);
    assert_int_equal(wandler_model_info_get(NULL, &info), WANDLER_ERR_INVALID_ARGUMENT);
}

/* Each bad field gives INVALID_ARGUMENT with the field's name in the message. */
static void test_request_validation(void **state)
{
    wandler_model *m = *state;
    wandler_request base = wandler_request_default();
    base.prompt = "Once";
    wandler_request r;
    wandler_error err;
    wandler_stream *st = (wandler_stream *)1;
#define EXPECT_BAD(field, assign) \
    do { \
        r = base; \
        assign; \
        assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_ERR_INVALID_ARGUMENT); \
        assert_null(st); \
        if (!strstr(err.message, field)) \
            fail_msg("message '%s' does not name %s", err.message, field); \
    } while (0)
    EXPECT_BAD("prompt", r.prompt = NULL);
    EXPECT_BAD("max_tokens", r.max_tokens = 0);
    EXPECT_BAD("max_tokens", r.max_tokens = -3);
    EXPECT_BAD("temperature", r.temperature = -0.1f);
    EXPECT_BAD("temperature", r.temperature = 0.0f / 0.0f);
    EXPECT_BAD("top_k", r.top_k = -1);
    EXPECT_BAD("top_p", r.top_p = 0.0f);
    EXPECT_BAD("top_p", r.top_p = 1.5f);
    EXPECT_BAD("min_p", r.min_p = -0.5f);
    EXPECT_BAD("repetition_penalty", r.repetition_penalty = 0.0f);
    EXPECT_BAD("repetition_last_n", r.repetition_last_n = -2);
    EXPECT_BAD("frequency_penalty", r.frequency_penalty = 3.0f);
    EXPECT_BAD("presence_penalty", r.presence_penalty = -3.0f);
    EXPECT_BAD("add_bos", r.add_bos = 7);
#undef EXPECT_BAD
    r = base;
    r.prompt = "bad \xff utf8";
    assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_ERR_BAD_UTF8);
    assert_int_equal(wandler_stream_text(NULL, &base, &st, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wandler_stream_text(m, NULL, &st, &err), WANDLER_ERR_INVALID_ARGUMENT);
    wandler_result res;
    assert_int_equal(wandler_generate_text(m, NULL, &res, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_null(res.text);
}

static char *generate(wandler_model *m, const char *prompt, float temp, uint64_t seed, int max_tokens)
{
    wandler_request r = wandler_request_default();
    r.prompt = prompt;
    r.temperature = temp;
    r.seed = seed;
    r.max_tokens = max_tokens;
    wandler_result res;
    wandler_error err;
    if (wandler_generate_text(m, &r, &res, &err) != WANDLER_OK)
        fail_msg("generate: %s", err.message);
    char *text = strdup(res.text);
    wandler_result_free(&res);
    return text;
}

static void test_seed_determinism(void **state)
{
    wandler_model *m = *state;
    char *a = generate(m, "Once upon a time", 1.0f, 42, 48);
    char *b = generate(m, "Once upon a time", 1.0f, 42, 48);
    char *c = generate(m, "Once upon a time", 1.0f, 43, 48);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    free(a);
    free(b);
    free(c);
}

/* The deltas of a stream, concatenated, are the whole result; each delta is valid UTF-8. */
static void test_stream_parts(void **state)
{
    wandler_model *m = *state;
    wandler_request r = wandler_request_default();
    r.prompt = "Lily";
    r.temperature = 1.5f; /* adventurous sampling reaches byte tokens too */
    r.top_k = 0;
    r.top_p = 1.0f;
    r.min_p = 0.0f;
    r.seed = 7;
    r.max_tokens = 200;
    wandler_stream *st;
    wandler_error err;
    assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_OK);
    char *all = calloc(1, 1);
    size_t len = 0;
    int n_text = 0, n_finish = 0;
    wandler_part part;
    int rc;
    while ((rc = wandler_stream_next(st, &part, -1)) == WANDLER_OK) {
        if (part.type == WANDLER_PART_TEXT_DELTA) {
            assert_true(part.len > 0);
            assert_int_equal(strlen(part.text), part.len);
            assert_true(wl_utf8_valid(part.text, part.len, NULL));
            all = realloc(all, len + part.len + 1);
            memcpy(all + len, part.text, part.len + 1);
            len += part.len;
            n_text++;
            assert_int_equal(n_finish, 0);
        } else {
            assert_int_equal(part.type, WANDLER_PART_FINISH);
            n_finish++;
            assert_true(part.usage.completion_tokens > 0);
            assert_int_equal(part.usage.total_tokens, part.usage.prompt_tokens + part.usage.completion_tokens);
            assert_true(part.timings.load_ms > 0);
        }
    }
    assert_int_equal(rc, WANDLER_DONE);
    assert_int_equal(n_finish, 1);
    assert_true(n_text > 0);
    assert_int_equal(wandler_stream_next(st, &part, 0), WANDLER_DONE);
    /* the result after the stream was read holds the same text */
    wandler_result res;
    assert_int_equal(wandler_stream_result(st, &res, &err), WANDLER_OK);
    assert_string_equal(res.text, all);
    wandler_result_free(&res);
    wandler_stream_free(st);

    /* the same request in one call gives the same text */
    wandler_result whole;
    assert_int_equal(wandler_generate_text(m, &r, &whole, &err), WANDLER_OK);
    assert_string_equal(whole.text, all);
    wandler_result_free(&whole);
    free(all);
}

static void test_abort(void **state)
{
    wandler_model *m = *state;
    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time";
    r.max_tokens = 1000;
    r.seed = 1;
    wandler_stream *st;
    wandler_error err;
    assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_OK);
    wandler_part part;
    int deltas = 0;
    while (deltas < 3 && wandler_stream_next(st, &part, -1) == WANDLER_OK)
        deltas += part.type == WANDLER_PART_TEXT_DELTA;
    wandler_stream_abort(st);
    wandler_stream_abort(st); /* idempotent */
    wandler_result res;
    assert_int_equal(wandler_stream_result(st, &res, &err), WANDLER_OK);
    assert_int_equal(res.finish_reason, WANDLER_FINISH_ABORT);
    /* The worker runs ahead of the reader by at most the stream's buffer (64 parts) and what the
     * channel's socket holds (a few hundred small parts: wandler.h), however fast the machine
     * (up to 97 tokens were seen with a decode of ~30k tokens/s); far below the 1000 tokens asked
     * for, which a worker that went on would reach (or stop at the end of its story: not ABORT). */
    assert_true(res.usage.completion_tokens >= 3 && res.usage.completion_tokens < 3 + 64 + 512);
    assert_true(res.text_len > 0);
    wandler_result_free(&res);
    wandler_stream_free(st);

    /* aborted before reading anything: finish abort, with whatever the worker had made by then
     * (usually nothing; on a busy machine the abort can reach it a few tokens late) */
    assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_OK);
    wandler_stream_abort(st);
    assert_int_equal(wandler_stream_result(st, &res, &err), WANDLER_OK);
    assert_int_equal(res.finish_reason, WANDLER_FINISH_ABORT);
    assert_true(res.usage.completion_tokens < 64 + 8);
    if (res.usage.completion_tokens == 0)
        assert_string_equal(res.text, "");
    wandler_result_free(&res);
    wandler_stream_free(st);

    /* freeing an unfinished stream is fine, and the model still works */
    assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_OK);
    assert_int_equal(wandler_stream_next(st, &part, -1), WANDLER_OK);
    wandler_stream_free(st);
    char *t = generate(m, "Once upon a time", 0, 0, 8);
    assert_true(strlen(t) > 0);
    free(t);
}

/* Two streams read in turns give the same texts as when run one after the other. */
static void test_interleaved_streams(void **state)
{
    wandler_model *m = *state;
    const char *prompts[2] = {"Once upon a time", "Lily wanted to"};
    char *expect[2];
    for (int i = 0; i < 2; i++)
        expect[i] = generate(m, prompts[i], 0.9f, 5 + i, 40);
    wandler_stream *st[2];
    wandler_error err;
    for (int i = 0; i < 2; i++) {
        wandler_request r = wandler_request_default();
        r.prompt = prompts[i];
        r.temperature = 0.9f;
        r.seed = 5 + i;
        r.max_tokens = 40;
        assert_int_equal(wandler_stream_text(m, &r, &st[i], &err), WANDLER_OK);
    }
    char got[2][4096] = {{0}};
    int live = 2;
    while (live) {
        live = 0;
        for (int i = 0; i < 2; i++) {
            wandler_part part;
            if (wandler_stream_next(st[i], &part, -1) != WANDLER_OK)
                continue;
            live++;
            if (part.type == WANDLER_PART_TEXT_DELTA)
                strncat(got[i], part.text, sizeof got[i] - strlen(got[i]) - 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        assert_string_equal(got[i], expect[i]);
        wandler_stream_free(st[i]);
        free(expect[i]);
    }
}

static void test_request_errors(void **state)
{
    wandler_model *small = load_bundled(8);
    wandler_request r = wandler_request_default();
    wandler_result res;
    wandler_error err;
    /* 8 tokens of context cannot hold this prompt and an answer */
    r.prompt = "Once upon a time there was a little girl named Lily who loved to play";
    assert_int_equal(wandler_generate_text(small, &r, &res, &err), WANDLER_ERR_CONTEXT_FULL);
    assert_string_equal(res.text, ""); /* the result is always filled, and freed by the caller */
    wandler_result_free(&res);
    /* the answer stops at the end of the window with finish reason length */
    r.prompt = "Once";
    r.max_tokens = 100;
    assert_int_equal(wandler_generate_text(small, &r, &res, &err), WANDLER_OK);
    assert_int_equal(res.finish_reason, WANDLER_FINISH_LENGTH);
    assert_int_equal(res.usage.total_tokens, 8);
    wandler_result_free(&res);
    /* nothing to start from */
    r.prompt = "";
    r.add_bos = 0;
    assert_int_equal(wandler_generate_text(small, &r, &res, &err), WANDLER_ERR_EMPTY_PROMPT);
    wandler_result_free(&res);
    /* an empty prompt with BOS is a fine start */
    r.add_bos = 1;
    r.max_tokens = 4;
    assert_int_equal(wandler_generate_text(small, &r, &res, &err), WANDLER_OK);
    assert_int_equal(res.usage.prompt_tokens, 1);
    wandler_result_free(&res);
    /* the error of a stream arrives as its last part, and again from wandler_stream_result */
    r.prompt = "Once upon a time there was a little girl named Lily who loved to play";
    wandler_stream *st;
    assert_int_equal(wandler_stream_text(small, &r, &st, &err), WANDLER_OK);
    wandler_part part;
    assert_int_equal(wandler_stream_next(st, &part, -1), WANDLER_OK);
    assert_int_equal(part.type, WANDLER_PART_ERROR);
    assert_int_equal(part.error.code, WANDLER_ERR_CONTEXT_FULL);
    assert_int_equal(wandler_stream_next(st, &part, -1), WANDLER_DONE);
    assert_int_equal(wandler_stream_result(st, &res, &err), WANDLER_ERR_CONTEXT_FULL);
    wandler_result_free(&res);
    wandler_stream_free(st);
    wandler_model_dispose(small);
}

static void test_null_safety(void **state)
{
    wandler_model_dispose(NULL);
    wandler_stream_free(NULL);
    wandler_stream_abort(NULL);
    wandler_result_free(NULL);
    wandler_part part;
    assert_int_equal(wandler_stream_next(NULL, &part, 0), WANDLER_ERR_INVALID_ARGUMENT);
    wandler_result res;
    assert_int_equal(wandler_stream_result(NULL, &res, NULL), WANDLER_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test_setup_teardown(test_model_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interleaved_streams, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
