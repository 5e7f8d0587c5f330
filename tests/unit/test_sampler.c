/* test_sampler.c - greedy, the filters, penalties, seeding and the draw's distribution. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/sampler.h"
#include "engine/sampler_filters.h"

static wl_sampler_params params_off(void)
{
    wl_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repetition_penalty = 1.0f;
    p.repetition_last_n = 64;
    p.seed = 42;
    return p;
}

static wl_sampler *make(const wl_sampler_params *p, int n_vocab)
{
    wl_sampler *s = NULL;
    wandler_error err = {0};
    int rc = wl_sampler_create(p, n_vocab, &s, &err);
    if (rc != WANDLER_OK)
        fail_msg("wl_sampler_create: %s", err.message);
    return s;
}

/* ---- greedy ---- */

static void test_greedy(void **state)
{
    (void)state;
    wl_sampler_params p = params_off();
    p.temperature = 0.0f;
    p.top_k = 1; /* filters are unused when greedy */
    p.top_p = 0.1f;
    wl_sampler *s = make(&p, 6);
    float a[6] = {0.1f, 3.0f, -1.0f, 2.9f, 3.0f, -INFINITY};
    assert_int_equal(wl_sampler_sample(s, a), 1); /* tie 1 vs 4: lowest id */
    float b[6] = {-5, -4, -3, -2, -1, -0.5f};
    assert_int_equal(wl_sampler_sample(s, b), 5);
    float c[6] = {NAN, 1, 2, NAN, 2, 0};
    assert_int_equal(wl_sampler_sample(s, c), 2);
    float d[6] = {7, 7, 7, 7, 7, 7};
    assert_int_equal(wl_sampler_sample(s, d), 0);
    wl_sampler_free(s);
}

/* ---- filters on candidate arrays ---- */

static wl_cands cands_of(wl_cand *buf, const float *logits, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (wl_cand){(int32_t)i, logits[i], 0};
    return (wl_cands){buf, n, 0};
}

static int has_id(const wl_cands *c, int32_t id)
{
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].id == id)
            return 1;
    return 0;
}

static void test_top_k(void **state)
{
    (void)state;
    const float l[8] = {0.5f, 3.0f, 1.0f, 3.0f, -2.0f, 2.5f, 0.0f, 2.0f};
    wl_cand buf[8];
    wl_cands c = cands_of(buf, l, 8);
    wl_cands_top_k(&c, 3);
    assert_int_equal(c.size, 3);
    assert_true(c.sorted);
    assert_int_equal(c.data[0].id, 1); /* equal logits: lower id first */
    assert_int_equal(c.data[1].id, 3);
    assert_int_equal(c.data[2].id, 5);

    c = cands_of(buf, l, 8);
    wl_cands_top_k(&c, 0); /* off */
    assert_int_equal(c.size, 8);
    wl_cands_top_k(&c, 100); /* more than there are */
    assert_int_equal(c.size, 8);
    assert_int_equal(c.data[7].id, 4);
}

/* Heap selection on a big array agrees with a full sort. */
static int cmp_desc(const void *pa, const void *pb)
{
    const wl_cand *a = pa, *b = pb;
    if (a->logit != b->logit)
        return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static void test_top_k_large(void **state)
{
    (void)state;
    size_t n = 151936;
    wl_cand *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        /* coarse values, so that there are many ties */
        a[i] = (wl_cand){(int32_t)i, (float)((x >> 40) % 5000) / 100.0f, 0};
    }
    memcpy(b, a, n * sizeof *a);
    qsort(b, n, sizeof *b, cmp_desc);
    int ks[] = {1, 2, 40, 1000, 5000, 40000};
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        wl_cand *w = malloc(n * sizeof *w);
        assert_non_null(w);
        memcpy(w, a, n * sizeof *a);
        wl_cands c = {w, n, 0};
        wl_cands_top_k(&c, ks[t]);
        assert_int_equal(c.size, (size_t)ks[t]);
        for (int i = 0; i < ks[t]; i++)
            assert_int_equal(w[i].id, b[i].id);
        free(w);
    }
    free(a);
    free(b);
}

/* logits whose softmax is exactly {0.5, 0.3, 0.15, 0.05} (up to rounding) */
static void four(float *l)
{
    l[0] = logf(0.5f);
    l[1] = logf(0.3f);
    l[2] = logf(0.15f);
    l[3] = logf(0.05f);
}

static void test_top_p(void **state)
{
    (void)state;
    float l[4];
    four(l);
    wl_cand buf[4];
    struct {
        float p;
        size_t keep;
    } cases[] = {{0.45f, 1}, {0.55f, 2}, {0.75f, 2}, {0.85f, 3}, {0.9f, 3}, {0.97f, 4}, {1.0f, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wl_cands c = cands_of(buf, l, 4);
        wl_cands_top_p(&c, cases[i].p);
        if (c.size != cases[i].keep)
            fail_msg("top_p %g kept %zu, expected %zu", (double)cases[i].p, c.size, cases[i].keep);
        for (size_t k = 0; k < c.size; k++)
            assert_true(has_id(&c, (int32_t)k));
    }
    /* after top-k, top-p normalizes over what is left: {0.5, 0.3} -> {0.625, 0.375} */
    wl_cands c = cands_of(buf, l, 4);
    wl_cands_top_k(&c, 2);
    wl_cands_top_p(&c, 0.6f);
    assert_int_equal(c.size, 1);
    c = cands_of(buf, l, 4);
    wl_cands_top_k(&c, 2);
    wl_cands_top_p(&c, 0.7f);
    assert_int_equal(c.size, 2);
}

/* On a big flat-ish vocabulary top-p needs many candidates: the growing partial sort must give
 * the same set as a full sort. */
static void test_top_p_large(void **state)
{
    (void)state;
    size_t n = 151936;
    float *l = malloc(n * sizeof *l);
    wl_cand *buf = malloc(n * sizeof *buf), *ref = malloc(n * sizeof *ref);
    assert_non_null(l);
    assert_non_null(buf);
    assert_non_null(ref);
    uint64_t x = 777;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        l[i] = (float)((x >> 33) % 100000) / 20000.0f;
    }
    float ps[] = {0.001f, 0.1f, 0.5f, 0.9f, 0.99f, 0.999999f};
    for (size_t t = 0; t < sizeof ps / sizeof ps[0]; t++) {
        wl_cands c = cands_of(buf, l, n);
        wl_cands_top_p(&c, ps[t]);
        /* reference: full sort, softmax, cumulative */
        wl_cands r = cands_of(ref, l, n);
        qsort(ref, n, sizeof *ref, cmp_desc);
        double sum = 0, cum = 0;
        for (size_t i = 0; i < n; i++)
            sum += exp((double)ref[i].logit - ref[0].logit);
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            cum += exp((double)ref[i].logit - ref[0].logit) / sum;
            if (cum >= ps[t]) {
                keep = i + 1;
                break;
            }
        }
        (void)r;
        assert_int_equal(c.size, keep);
        /* the same set (a big set may come back unsorted) */
        if (!c.sorted)
            qsort(c.data, c.size, sizeof *c.data, cmp_desc);
        for (size_t i = 0; i < keep; i++)
            assert_int_equal(c.data[i].id, ref[i].id);
    }
    free(l);
    free(buf);
    free(ref);
}

static void test_min_p(void **state)
{
    (void)state;
    float l[4];
    four(l); /* relative to the max: 1, 0.6, 0.3, 0.1 */
    wl_cand buf[4];
    struct {
        float p;
        size_t keep;
    } cases[] = {{0.0f, 4}, {0.05f, 4}, {0.2f, 3}, {0.5f, 2}, {0.7f, 1}, {1.0f, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wl_cands c = cands_of(buf, l, 4);
        wl_cands_min_p(&c, cases[i].p);
        if (c.size != cases[i].keep)
            fail_msg("min_p %g kept %zu, expected %zu", (double)cases[i].p, c.size, cases[i].keep);
        for (size_t k = 0; k < c.size; k++)
            assert_int_equal(c.data[k].id, (int32_t)k); /* order kept */
    }
}

static void test_softmax_temperature(void **state)
{
    (void)state;
    float l[4];
    four(l);
    wl_cand buf[4];
    wl_cands c = cands_of(buf, l, 4);
    wl_cands_softmax(&c);
    assert_float_equal(c.data[0].p, 0.5, 1e-6);
    assert_float_equal(c.data[3].p, 0.05, 1e-6);
    c = cands_of(buf, l, 4);
    wl_cands_temperature(&c, 2.0f);
    wl_cands_softmax(&c);
    double z = sqrt(0.5) + sqrt(0.3) + sqrt(0.15) + sqrt(0.05);
    assert_float_equal(c.data[0].p, sqrt(0.5) / z, 1e-6);
    assert_float_equal(c.data[2].p, sqrt(0.15) / z, 1e-6);
}

/* ---- penalties ---- */

static void test_penalties(void **state)
{
    (void)state;
    wl_sampler_params p = params_off();
    p.temperature = 0.0f; /* greedy leaves the penalized logits in the array */
    p.repetition_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.repetition_last_n = 4;
    wl_sampler *s = make(&p, 8);
    /* history: 1 1 3 5 6 -> the last 4 are 1 3 5 6 (one 1 fell out of the window) */
    int32_t hist[] = {1, 1, 3, 5, 6};
    for (size_t i = 0; i < 5; i++)
        wl_sampler_accept(s, hist[i]);
    wl_sampler_accept(s, 99); /* out of range: ignored */
    wl_sampler_accept(s, -3);
    float l[8] = {1.0f, 4.0f, -2.0f, -1.0f, 0.5f, 0.0f, 3.0f, 2.0f};
    wl_sampler_sample(s, l);
    const float expect[8] = {
        1.0f,                     /* not in the window */
        4.0f / 2 - 0.5f - 0.25f,  /* positive: divided; once in the window */
        -2.0f,
        -1.0f * 2 - 0.5f - 0.25f, /* negative: multiplied */
        0.5f,
        0.0f * 2 - 0.5f - 0.25f,  /* zero counts as not positive */
        3.0f / 2 - 0.5f - 0.25f,
        2.0f,
    };
    for (int i = 0; i < 8; i++)
        assert_float_equal(l[i], expect[i], 1e-6);

    /* counts: 5 twice in the window */
    wl_sampler_accept(s, 5); /* window: 3 5 6 5 */
    float m[8] = {0};
    wl_sampler_sample(s, m);
    assert_float_equal(m[5], 0.0f - 2 * 0.5f - 0.25f, 1e-6);
    assert_float_equal(m[1], 0.0f, 1e-6); /* 1 left the window */
    assert_float_equal(m[3], -0.75f, 1e-6);
    wl_sampler_free(s);

    /* last_n = -1: the whole history counts */
    p.repetition_last_n = -1;
    p.repetition_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    s = make(&p, 4);
    for (int i = 0; i < 100; i++)
        wl_sampler_accept(s, 2);
    float q[4] = {0};
    wl_sampler_sample(s, q);
    assert_float_equal(q[2], -50.0f, 1e-4);
    assert_float_equal(q[0], 0.0f, 0);
    wl_sampler_free(s);

    /* last_n = 0: penalties off */
    p.repetition_last_n = 0;
    s = make(&p, 4);
    wl_sampler_accept(s, 2);
    float r[4] = {1, 1, 1, 1};
    wl_sampler_sample(s, r);
    assert_float_equal(r[2], 1.0f, 0);
    wl_sampler_free(s);
}

/* A penalty can change greedy's choice. */
static void test_penalty_changes_choice(void **state)
{
    (void)state;
    wl_sampler_params p = params_off();
    p.temperature = 0.0f;
    p.repetition_penalty = 1.5f;
    wl_sampler *s = make(&p, 3);
    float a[3] = {1.0f, 1.4f, 1.0f};
    assert_int_equal(wl_sampler_sample(s, a), 1);
    wl_sampler_accept(s, 1);
    float b[3] = {1.0f, 1.4f, 1.0f};
    assert_int_equal(wl_sampler_sample(s, b), 0); /* 1.4 / 1.5 < 1.0 */
    wl_sampler_free(s);
}

/* ---- seeding and the draw ---- */

static void draw_sequence(uint64_t seed, int32_t *out, int n)
{
    wl_sampler_params p = params_off();
    p.seed = seed;
    p.top_k = 50;
    p.top_p = 0.95f;
    p.min_p = 0.01f;
    p.temperature = 0.9f;
    p.repetition_penalty = 1.1f;
    int nv = 1000;
    wl_sampler *s = make(&p, nv);
    float *l = malloc((size_t)nv * sizeof *l);
    assert_non_null(l);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < nv; i++)
            l[i] = (float)((i * 7919 + t * 104729) % 1000) / 250.0f;
        out[t] = wl_sampler_sample(s, l);
        assert_true(out[t] >= 0 && out[t] < nv);
        wl_sampler_accept(s, out[t]);
    }
    free(l);
    wl_sampler_free(s);
}

static void test_seed(void **state)
{
    (void)state;
    enum { N = 500 };
    static int32_t a[N], b[N], c[N];
    draw_sequence(1234, a, N);
    draw_sequence(1234, b, N);
    draw_sequence(1235, c, N);
    assert_memory_equal(a, b, sizeof a);
    int differ = 0;
    for (int i = 0; i < N; i++)
        differ += a[i] != c[i];
    assert_true(differ > N / 10);
}

/* Frequencies of 100k draws match the distribution (temperature 1, filters off), and the
 * temperature reshapes it as p^(1/T). */
static void check_frequencies(float temperature, const double *expect)
{
    wl_sampler_params p = params_off();
    p.temperature = temperature;
    p.seed = 99;
    wl_sampler *s = make(&p, 4);
    long counts[4] = {0};
    const int N = 100000;
    for (int i = 0; i < N; i++) {
        float l[4];
        four(l);
        int32_t t = wl_sampler_sample(s, l);
        assert_true(t >= 0 && t < 4);
        counts[t]++;
    }
    for (int i = 0; i < 4; i++) {
        double f = (double)counts[i] / N;
        /* 5 standard deviations of a binomial proportion */
        double tol = 5 * sqrt(expect[i] * (1 - expect[i]) / N);
        if (fabs(f - expect[i]) > tol)
            fail_msg("T=%g token %d: frequency %.4f, expected %.4f +- %.4f", (double)temperature,
                     i, f, expect[i], tol);
    }
    wl_sampler_free(s);
}

static void test_distribution(void **state)
{
    (void)state;
    const double t1[4] = {0.5, 0.3, 0.15, 0.05};
    check_frequencies(1.0f, t1);
    double z = sqrt(0.5) + sqrt(0.3) + sqrt(0.15) + sqrt(0.05);
    const double t2[4] = {sqrt(0.5) / z, sqrt(0.3) / z, sqrt(0.15) / z, sqrt(0.05) / z};
    check_frequencies(2.0f, t2);
}

/* Filters restrict what can be drawn. */
static void test_filters_restrict_draws(void **state)
{
    (void)state;
    wl_sampler_params p = params_off();
    p.top_k = 2;
    wl_sampler *s = make(&p, 4);
    int seen[4] = {0};
    for (int i = 0; i < 5000; i++) {
        float l[4];
        four(l);
        seen[wl_sampler_sample(s, l)]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0);
    assert_int_equal(seen[2] + seen[3], 0);
    /* top-k 2 renormalizes: 0.5/0.8 */
    assert_float_equal((double)seen[0] / 5000, 0.625, 0.04);
    wl_sampler_free(s);

    p = params_off();
    p.min_p = 0.5f;
    s = make(&p, 4);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 5000; i++) {
        float l[4];
        four(l);
        seen[wl_sampler_sample(s, l)]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0);
    assert_int_equal(seen[2] + seen[3], 0);
    wl_sampler_free(s);

    p = params_off();
    p.top_p = 0.85f;
    s = make(&p, 4);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 5000; i++) {
        float l[4];
        four(l);
        seen[wl_sampler_sample(s, l)]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    assert_int_equal(seen[3], 0);
    wl_sampler_free(s);
}

/* All -inf but one, and all -inf: the draw still returns a valid id. */
static void test_degenerate_logits(void **state)
{
    (void)state;
    wl_sampler_params p = params_off();
    wl_sampler *s = make(&p, 5);
    for (int i = 0; i < 100; i++) {
        float l[5] = {-INFINITY, -INFINITY, 3.0f, -INFINITY, NAN};
        assert_int_equal(wl_sampler_sample(s, l), 2);
    }
    float l[5] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int32_t t = wl_sampler_sample(s, l);
    assert_true(t >= 0 && t < 5);
    float h[5] = {1e30f, 1e30f, 0, 0, 0};
    wl_sampler_free(s);
    p.temperature = 1e-6f; /* logits / T overflow */
    s = make(&p, 5);
    t = wl_sampler_sample(s, h);
    assert_true(t == 0 || t == 1);
    wl_sampler_free(s);
}

/* ---- parameter validation ---- */

static void expect_invalid(wl_sampler_params p, int n_vocab, const char *name)
{
    wl_sampler *s = (wl_sampler *)1;
    wandler_error err = {0};
    assert_int_equal(wl_sampler_create(&p, n_vocab, &s, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(err.code, WANDLER_ERR_INVALID_ARGUMENT);
    assert_null(s);
    if (!strstr(err.message, name))
        fail_msg("message \"%s\" does not name %s", err.message, name);
}

static void test_validation(void **state)
{
    (void)state;
    wl_sampler_params p;
    p = params_off(); p.temperature = -0.1f; expect_invalid(p, 10, "temperature");
    p = params_off(); p.temperature = 101.0f; expect_invalid(p, 10, "temperature");
    p = params_off(); p.temperature = NAN; expect_invalid(p, 10, "temperature");
    p = params_off(); p.top_k = -1; expect_invalid(p, 10, "top_k");
    p = params_off(); p.top_p = 0.0f; expect_invalid(p, 10, "top_p");
    p = params_off(); p.top_p = 1.5f; expect_invalid(p, 10, "top_p");
    p = params_off(); p.min_p = -0.01f; expect_invalid(p, 10, "min_p");
    p = params_off(); p.min_p = 1.01f; expect_invalid(p, 10, "min_p");
    p = params_off(); p.repetition_penalty = 0.0f; expect_invalid(p, 10, "repetition_penalty");
    p = params_off(); p.repetition_penalty = INFINITY; expect_invalid(p, 10, "repetition_penalty");
    p = params_off(); p.repetition_last_n = -2; expect_invalid(p, 10, "repetition_last_n");
    p = params_off(); p.frequency_penalty = 2.5f; expect_invalid(p, 10, "frequency_penalty");
    p = params_off(); p.presence_penalty = -2.5f; expect_invalid(p, 10, "presence_penalty");
    p = params_off(); expect_invalid(p, 0, "n_vocab");
    wandler_error err = {0};
    wl_sampler *s = NULL;
    assert_int_equal(wl_sampler_create(NULL, 10, &s, &err), WANDLER_ERR_INVALID_ARGUMENT);
    /* the edges are valid */
    p = params_off();
    p.temperature = 100.0f;
    p.top_p = 1.0f;
    p.min_p = 1.0f;
    p.frequency_penalty = -2.0f;
    p.presence_penalty = 2.0f;
    p.repetition_last_n = -1;
    s = make(&p, 1);
    float l[1] = {0};
    assert_int_equal(wl_sampler_sample(s, l), 0);
    wl_sampler_free(s);
    wl_sampler_free(NULL);
}

/* ---- speed (printed, not asserted) ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_speed(void **state)
{
    (void)state;
    const int nv = 151936, rounds = 50;
    float *base = malloc((size_t)nv * sizeof *base), *l = malloc((size_t)nv * sizeof *l);
    assert_non_null(base);
    assert_non_null(l);
    uint64_t x = 5;
    for (int i = 0; i < nv; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        base[i] = (float)((x >> 33) % 100000) / 5000.0f;
    }
    struct {
        const char *name;
        int top_k;
        float top_p, min_p;
    } cfg[] = {{"top_k 40, top_p 0.95, min_p 0.05", 40, 0.95f, 0.05f},
               {"top_p 0.95 only", 0, 0.95f, 0.0f},
               {"no filters", 0, 1.0f, 0.0f}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        wl_sampler_params p = params_off();
        p.top_k = cfg[c].top_k;
        p.top_p = cfg[c].top_p;
        p.min_p = cfg[c].min_p;
        p.repetition_penalty = 1.1f;
        wl_sampler *s = make(&p, nv);
        double t0 = now_s();
        for (int r = 0; r < rounds; r++) {
            memcpy(l, base, (size_t)nv * sizeof *l);
            wl_sampler_accept(s, wl_sampler_sample(s, l));
        }
        double dt = now_s() - t0;
        printf("sampler speed, vocab %d, %s: %.3f ms per token\n", nv, cfg[c].name,
               dt / rounds * 1e3);
        wl_sampler_free(s);
    }
    free(base);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_k_large),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_top_p_large),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_softmax_temperature),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_penalty_changes_choice),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_filters_restrict_draws),
        cmocka_unit_test(test_degenerate_logits),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
