/* test_golden.c - greedy generation on the real stories260K models matches the reference
 * implementation's outputs (../shared/golden/), for every kernel family this CPU has, and
 * through the public API.
 *
 * F32 and F16 files: every prompt's tokens and all generated tokens match exactly, and the
 * five best logits after the prompt match to 1e-3 (F32). Q8_0 and Q4_0: the reference rounds
 * activations and sums in another order, so a near-tie may flip late in a sequence; the test
 * prints the matching prefix of each prompt and requires at least the first 16 tokens. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "testutil.h"
#include "text/vocab.h"
#include "wandler.h"

typedef struct golden_case {
    char *prompt;
    int32_t prompt_ids[64];
    int n_prompt;
    int32_t gen_ids[128];
    int n_gen;
    int32_t top_tok[5];
    double top_logit[5];
    char *text;
} golden_case;

static int load_ids(json_t *arr, int32_t *out, int cap)
{
    size_t i;
    json_t *v;
    assert_true(json_is_array(arr));
    assert_true(json_array_size(arr) <= (size_t)cap);
    json_array_foreach(arr, i, v) out[i] = (int32_t)json_integer_value(v);
    return (int)json_array_size(arr);
}

static golden_case *load_golden(const char *file, int *n_cases)
{
    char path[512];
    snprintf(path, sizeof path, "golden/%s", file);
    size_t size;
    char *text = wl_test_read_file(wl_test_shared(path), &size);
    assert_non_null(text);
    golden_case *cases = calloc(16, sizeof *cases);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        assert_non_null(o);
        assert_true(n < 16);
        golden_case *c = &cases[n++];
        c->prompt = strdup(json_string_value(json_object_get(o, "prompt")));
        c->text = strdup(json_string_value(json_object_get(o, "text")));
        c->n_prompt = load_ids(json_object_get(o, "prompt_ids"), c->prompt_ids, 64);
        c->n_gen = load_ids(json_object_get(o, "generated_ids"), c->gen_ids, 128);
        json_t *top = json_object_get(o, "step0_top5");
        for (int k = 0; k < 5; k++) {
            c->top_tok[k] = (int32_t)json_integer_value(json_array_get(json_array_get(top, k), 0));
            c->top_logit[k] = json_real_value(json_array_get(json_array_get(top, k), 1));
        }
        json_decref(o);
    }
    free(text);
    *n_cases = n;
    return cases;
}

static void free_golden(golden_case *c, int n)
{
    for (int i = 0; i < n; i++) {
        free(c[i].prompt);
        free(c[i].text);
    }
    free(c);
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* The five largest logits, by value, ties to the lower id. */
static void top5(const float *x, int n, int32_t *tok)
{
    for (int k = 0; k < 5; k++) {
        int32_t best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++)
                taken |= tok[j] == i;
            if (!taken && (best < 0 || x[i] > x[best]))
                best = i;
        }
        tok[k] = best;
    }
}

typedef struct engine {
    gguf_file *f;
    wl_model *m;
    wl_vocab *v;
    wl_pool *pool;
    wl_ctx *ctx;
} engine;

static void engine_open(engine *e, const char *model_file, int isa)
{
    wandler_error err;
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", model_file);
    assert_int_equal(gguf_open(wl_test_shared(rel), &e->f, &err), WANDLER_OK);
    assert_int_equal(wl_model_load(e->f, &e->m, &err), WANDLER_OK);
    assert_int_equal(wl_vocab_load(e->f, &e->v, &err), WANDLER_OK);
    assert_int_equal(wl_pool_create(2, &e->pool, &err), WANDLER_OK);
    assert_int_equal(wl_ctx_create(e->m, 256, e->pool, isa, &e->ctx, &err), WANDLER_OK);
}

static void engine_close(engine *e)
{
    wl_ctx_free(e->ctx);
    wl_pool_destroy(e->pool);
    wl_vocab_free(e->v);
    wl_model_free(e->m);
    gguf_close(e->f);
}

/* Runs every golden case greedily; returns the shortest matching prefix over the cases. */
static int run_golden(const char *model_file, const char *golden_file, int isa, int check_top5)
{
    int n_cases;
    golden_case *cases = load_golden(golden_file, &n_cases);
    assert_true(n_cases >= 5);
    engine e;
    engine_open(&e, model_file, isa);
    const int n_vocab = e.m->hp.n_vocab;
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    wandler_error err;
    int min_match = 1 << 30;

    for (int ci = 0; ci < n_cases; ci++) {
        golden_case *c = &cases[ci];
        int32_t *ids;
        size_t n_ids;
        assert_int_equal(wl_tokenize(e.v, c->prompt, strlen(c->prompt), 1, 0, &ids, &n_ids, &err), WANDLER_OK);
        assert_int_equal((int)n_ids, c->n_prompt);
        assert_memory_equal(ids, c->prompt_ids, n_ids * sizeof *ids);
        free(ids);

        assert_int_equal(wl_forward(e.ctx, c->prompt_ids, c->n_prompt, 0, logits, &err), WANDLER_OK);
        if (check_top5) {
            int32_t tok[5];
            top5(logits, n_vocab, tok);
            for (int k = 0; k < 5; k++) {
                if (tok[k] != c->top_tok[k] || fabs(logits[tok[k]] - c->top_logit[k]) > 1e-3)
                    fail_msg("%s [%s] '%s': top %d is %d (%.6f), expected %d (%.6f)", model_file,
                             wl_isa_name(isa), c->prompt, k, tok[k], logits[tok[k]], c->top_tok[k],
                             c->top_logit[k]);
            }
        }
        int match = 0, pos = c->n_prompt;
        for (int g = 0; g < c->n_gen; g++) {
            int32_t t = argmax(logits, n_vocab);
            if (t != c->gen_ids[g])
                break;
            match++;
            if (g + 1 < c->n_gen)
                assert_int_equal(wl_forward(e.ctx, &t, 1, pos++, logits, &err), WANDLER_OK);
        }
        printf("  %-22s %-7s '%s': %d/%d tokens match\n", model_file, wl_isa_name(isa), c->prompt, match,
               c->n_gen);
        if (match < min_match)
            min_match = match;
    }
    free(logits);
    engine_close(&e);
    free_golden(cases, n_cases);
    return min_match;
}

static void for_each_isa(const char *model_file, const char *golden_file, int exact, int check_top5)
{
    for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
        if (!wl_isa_available(isa))
            continue;
        int min_match = run_golden(model_file, golden_file, isa, check_top5);
        if (exact)
            assert_int_equal(min_match, 64);
        else
            assert_true(min_match >= 16);
    }
}

static void test_f32(void **state)
{
    for_each_isa("stories260K.gguf", "stories260K.greedy.jsonl", 1, 1);
}

static void test_f16(void **state)
{
    for_each_isa("stories260K-F16.gguf", "stories260K-F16.greedy.jsonl", 1, 0);
}

static void test_q8_0(void **state)
{
    for_each_isa("stories260K-Q8_0.gguf", "stories260K-Q8_0.greedy.jsonl", 0, 0);
}

static void test_q4_0(void **state)
{
    for_each_isa("stories260K-Q4_0.gguf", "stories260K-Q4_0.greedy.jsonl", 0, 0);
}

/* The public API with temperature 0 gives the reference's text, in one call and streamed. */
static void test_public_api_text(void **state)
{
    int n_cases;
    golden_case *cases = load_golden("stories260K.greedy.jsonl", &n_cases);
    wandler_model *m;
    wandler_error err;
    assert_int_equal(wandler_load_model(wl_test_shared("models/stories260K.gguf"), NULL, &m, &err), WANDLER_OK);
    for (int ci = 0; ci < n_cases; ci++) {
        wandler_request r = wandler_request_default();
        r.prompt = cases[ci].prompt;
        r.temperature = 0;
        r.max_tokens = 64;
        wandler_result res;
        assert_int_equal(wandler_generate_text(m, &r, &res, &err), WANDLER_OK);
        assert_string_equal(res.text, cases[ci].text);
        assert_int_equal(res.usage.prompt_tokens, cases[ci].n_prompt);
        assert_int_equal(res.usage.completion_tokens, cases[ci].n_gen);
        assert_int_equal(res.finish_reason, cases[ci].n_gen == 64 ? WANDLER_FINISH_LENGTH : WANDLER_FINISH_STOP);
        wandler_result_free(&res);
    }
    wandler_model_dispose(m);
    free_golden(cases, n_cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_public_api_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
