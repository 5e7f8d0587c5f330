/* test_attention.c - the attention kernels agree with the reference bit for bit.
 *
 *   - wl_expf (exp.h) is within 2 ulp of e^x (computed in double) across the float range, and
 *     right at the edges: NaN, +-inf, overflow, underflow to 0 and denormals;
 *   - for both paths, half (wl_att_query) and float (wl_att_query_f32, long prompts): every
 *     family's per-query version (scalar, AVX2, AVX-512) gives the scalar one's bits, and the
 *     AVX-512 tiles (16 queries of one KV head at once) give each query exactly what the scalar
 *     per-query version gives: head sizes that are and are not multiples of 8 and 16, 1 to 16
 *     queries, different windows per query (causal, sliding), soft-capping, scores that set a
 *     new maximum at every key, and non-finite values. Tiles are skipped without AVX-512;
 *   - decode's group version (ops->query_group: 1 to WL_ATT_GROUP queries over the same
 *     positions) gives each query the scalar per-query version's bits, on the same problems;
 *   - the float path agrees with the half path to within the half path's rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "engine/attention_impl.h"
#include "engine/cpu.h"
#include "engine/exp.h"
#include "engine/forward_impl.h"
#include "engine/quant.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static float uniform(float lo, float hi)
{
    return wl_test_rand_uniform(&rng, lo, hi);
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_expf_accuracy(void **state)
{
    (void)state;
    double worst = 0.0;
    float worst_x = 0.0f;
    /* every 61st float of [-104, 89], both signs */
    for (uint32_t u = 0; u < 0x80000000u; u += 61)
        for (int neg = 0; neg < 2; neg++) {
            const float x = from_bits(u | (neg ? 0x80000000u : 0));
            if (!(x >= WL_EXP_LO && x <= WL_EXP_HI))
                continue;
            const double want = exp((double)x);
            const float got = wl_expf(x);
            if (want > 0x1.fffffep127) {
                assert_true(isinf(got));
                continue;
            }
            /* one ulp of the true value (denormals: the smallest step) */
            const double ulp = want < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb(want) - 23);
            const double err = fabs((double)got - want) / ulp;
            if (err > worst) {
                worst = err;
                worst_x = x;
            }
        }
    printf("wl_expf: worst error %.3f ulp at x = %.9g\n", worst, (double)worst_x);
    assert_true(worst <= 2.0);

    assert_true(isnan(wl_expf(NAN)));
    assert_true(wl_expf(-INFINITY) == 0.0f);
    assert_true(isinf(wl_expf(INFINITY)) && wl_expf(INFINITY) > 0);
    assert_true(wl_expf(0.0f) == 1.0f);
    assert_true(wl_expf(-0.0f) == 1.0f);
    assert_true(isinf(wl_expf(88.8f)));
    assert_true(wl_expf(-104.0f) == 0.0f);
    assert_true(wl_expf(-1000.0f) == 0.0f);
    assert_true(wl_expf(-100.0f) > 0.0f && wl_expf(-100.0f) < 0x1p-126f); /* a denormal */
    assert_true(wl_expf(88.7f) > 3.0e38f && !isinf(wl_expf(88.7f)));
}

/* One attention problem: nq queries over one head of npos positions. */
typedef struct problem {
    int hd, npos, nq;
    float *q;       /* (nq, hd) */
    uint16_t *K, *V; /* (npos, hd) */
    int first[WL_ATT_LANES], last[WL_ATT_LANES];
    float scale, softcap;
} problem;

enum { DATA_RANDOM, DATA_RISING, DATA_NONFINITE, DATA_LARGE };

static problem make_problem(int hd, int npos, int nq, int window, int data, float softcap)
{
    problem p = {.hd = hd, .npos = npos, .nq = nq, .scale = 1.0f / sqrtf((float)hd), .softcap = softcap};
    p.q = malloc((size_t)nq * hd * sizeof(float));
    p.K = malloc((size_t)npos * hd * sizeof(uint16_t));
    p.V = malloc((size_t)npos * hd * sizeof(uint16_t));
    assert_non_null(p.q);
    assert_non_null(p.K);
    assert_non_null(p.V);
    const float amp = data == DATA_LARGE ? 60.0f : 2.0f;
    for (int i = 0; i < nq * hd; i++)
        p.q[i] = data == DATA_RISING ? 1.0f : uniform(-amp, amp);
    for (int pos = 0; pos < npos; pos++)
        for (int e = 0; e < hd; e++) {
            /* rising: every key scores higher than the last, a new maximum each time */
            const float k = data == DATA_RISING ? 0.05f * (float)pos : uniform(-amp, amp);
            p.K[(size_t)pos * hd + e] = wl_fp32_to_fp16(k);
            p.V[(size_t)pos * hd + e] = wl_fp32_to_fp16(uniform(-3.0f, 3.0f));
        }
    if (data == DATA_NONFINITE) {
        p.K[(size_t)(npos / 2) * hd] = 0x7c00;         /* +inf */
        p.V[(size_t)(npos / 3) * hd + hd - 1] = 0x7e00; /* NaN */
    }
    /* queries at the last nq positions, causal; every third one windowed */
    for (int i = 0; i < nq; i++) {
        p.last[i] = npos - nq + i;
        p.first[i] = window > 0 && i % 3 == 1 && p.last[i] >= window ? p.last[i] - window + 1 : 0;
    }
    return p;
}

static void free_problem(problem *p)
{
    free(p->q);
    free(p->K);
    free(p->V);
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

typedef void (*query_fn)(const wl_att_ops *ops, int hd, const float *q, const uint16_t *K, const uint16_t *V,
                         int first, int last, float scale, float softcap, void *scratch, float *out);

/* every family's per-query version and, where present, its tile against the scalar reference,
 * for the half path (f32 = 0) and the float path (f32 = 1); the reference's outputs in want */
static void check_path(const problem *p, int f32, float *want)
{
    const int hd = p->hd, nq = p->nq;
    const query_fn query = f32 ? wl_att_query_f32 : wl_att_query;
    const wl_att_ops *scalar = wl_att_ops_for(WL_ISA_SCALAR);
    const int isas[] = {WL_ISA_AVX2, WL_ISA_AVX512};
    unsigned char *scratch = aligned_alloc(64, wl_att_scratch_bytes(hd));
    float *got = malloc((size_t)nq * hd * sizeof(float));
    assert_non_null(scratch);
    assert_non_null(got);
    for (int i = 0; i < nq; i++)
        query(scalar, hd, p->q + (size_t)i * hd, p->K, p->V, p->first[i], p->last[i], p->scale, p->softcap, scratch,
              want + (size_t)i * hd);
    for (size_t f = 0; f < sizeof isas / sizeof isas[0]; f++) {
        if (!wl_isa_available(isas[f]))
            continue;
        const wl_att_ops *ops = wl_att_ops_for(isas[f]);
        void (*tile)(const wl_att_tile *, void *) = f32 ? ops->tile_f32 : ops->tile;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1 && !tile)
                continue;
            memset(got, 0xee, (size_t)nq * hd * sizeof(float));
            if (pass == 0) {
                for (int i = 0; i < nq; i++)
                    query(ops, hd, p->q + (size_t)i * hd, p->K, p->V, p->first[i], p->last[i], p->scale, p->softcap,
                          scratch, got + (size_t)i * hd);
            } else {
                wl_att_tile t = {.hd = hd, .n = nq, .K = p->K, .V = p->V, .scale = p->scale, .softcap = p->softcap};
                for (int i = 0; i < nq; i++) {
                    t.q[i] = p->q + (size_t)i * hd;
                    t.out[i] = got + (size_t)i * hd;
                    t.first[i] = p->first[i];
                    t.last[i] = p->last[i];
                }
                tile(&t, scratch);
            }
            for (int i = 0; i < nq * hd; i++)
                if (!same_bits(want[i], got[i]))
                    fail_msg("isa %d %s %s hd=%d npos=%d nq=%d softcap=%g: query %d [%d] = %.9g, the scalar "
                             "reference %.9g",
                             isas[f], f32 ? "float" : "half", pass ? "tile" : "per query", hd, p->npos, nq,
                             (double)p->softcap, i / hd, i % hd, (double)got[i], (double)want[i]);
        }
    }
    free(got);
    free(scratch);
}

/* ops->query_group (decode: the heads of a group over the same positions) against the scalar
 * reference, query by query: groups of 1..WL_ATT_GROUP of the problem's queries, each group over
 * the positions of its first query. */
static void check_group(const problem *p)
{
    const int hd = p->hd;
    const wl_att_ops *scalar = wl_att_ops_for(WL_ISA_SCALAR);
    const int isas[] = {WL_ISA_AVX2, WL_ISA_AVX512};
    unsigned char *scratch = aligned_alloc(64, wl_att_scratch_bytes(hd));
    float *want = malloc((size_t)WL_ATT_GROUP * hd * sizeof(float)), *got = malloc((size_t)WL_ATT_GROUP * hd * sizeof(float));
    assert_non_null(scratch);
    assert_non_null(want);
    assert_non_null(got);
    for (size_t f = 0; f < sizeof isas / sizeof isas[0]; f++) {
        if (!wl_isa_available(isas[f]) || !wl_att_ops_for(isas[f])->query_group)
            continue;
        const wl_att_ops *ops = wl_att_ops_for(isas[f]);
        for (int i0 = 0, n = 1; i0 < p->nq; i0 += n, n = n % WL_ATT_GROUP + 1) {
            const int cnt = n < p->nq - i0 ? n : p->nq - i0;
            const float *q[WL_ATT_GROUP];
            float *out[WL_ATT_GROUP];
            for (int j = 0; j < cnt; j++) {
                q[j] = p->q + (size_t)(i0 + j) * hd;
                out[j] = got + (size_t)j * hd;
                wl_att_query(scalar, hd, q[j], p->K, p->V, p->first[i0], p->last[i0], p->scale, p->softcap, scratch,
                             want + (size_t)j * hd);
            }
            memset(got, 0xee, (size_t)WL_ATT_GROUP * hd * sizeof(float));
            ops->query_group(hd, cnt, q, p->K, p->V, p->first[i0], p->last[i0], p->scale, p->softcap, scratch, out);
            for (int k = 0; k < cnt * hd; k++)
                if (!same_bits(want[k], got[k]))
                    fail_msg("isa %d group of %d hd=%d npos=%d softcap=%g: query %d [%d] = %.9g, the scalar "
                             "reference %.9g",
                             isas[f], cnt, hd, p->npos, (double)p->softcap, i0 + k / hd, k % hd, (double)got[k],
                             (double)want[k]);
        }
    }
    free(want);
    free(got);
    free(scratch);
}

static void check(int hd, int npos, int nq, int window, int data, float softcap)
{
    problem p = make_problem(hd, npos, nq, window, data, softcap);
    check_group(&p);
    float *half = malloc((size_t)nq * hd * sizeof(float)), *full = malloc((size_t)nq * hd * sizeof(float));
    assert_non_null(half);
    assert_non_null(full);
    check_path(&p, 0, half);
    check_path(&p, 1, full);
    if (data != DATA_NONFINITE) {
        /* the two paths part by the half path's roundings: a few units of 2^-11 of the values
         * (|v| < 3) */
        for (int i = 0; i < nq * hd; i++) {
            assert_true(isfinite(half[i]) && isfinite(full[i]));
            if (fabsf(half[i] - full[i]) > 0.02f)
                fail_msg("hd=%d nq=%d data=%d: half path %.6g, float path %.6g", hd, nq, data, (double)half[i],
                         (double)full[i]);
        }
    }
    free(half);
    free(full);
    free_problem(&p);
}

static void test_shapes(void **state)
{
    (void)state;
    const int hds[] = {1, 7, 8, 16, 24, 64, 80, 128, 256};
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++)
        for (int nq = 1; nq <= WL_ATT_LANES; nq += nq < 4 ? 1 : 5)
            check(hds[h], 40 + nq, nq, 0, DATA_RANDOM, 0.0f);
}

static void test_windows_softcap_and_values(void **state)
{
    (void)state;
    check(64, 100, 16, 7, DATA_RANDOM, 0.0f);
    check(64, 100, 13, 30, DATA_RANDOM, 0.0f);
    check(32, 60, 16, 0, DATA_RANDOM, 50.0f); /* gemma2's soft-capping */
    check(64, 70, 16, 0, DATA_RISING, 0.0f);
    check(24, 70, 9, 5, DATA_RISING, 0.0f);
    check(64, 90, 16, 0, DATA_LARGE, 0.0f);
    check(16, 50, 16, 4, DATA_LARGE, 30.0f);
    check(64, 50, 16, 0, DATA_NONFINITE, 0.0f);
    check(8, 33, 5, 0, DATA_NONFINITE, 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_accuracy),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_windows_softcap_and_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
