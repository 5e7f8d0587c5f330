/* test_arch.c - every architecture, on tiny random models made by mkmodel's library code, runs
 * through the fast path (forward.c: batched, threaded, kernel table, F16 KV cache) and through
 * the plain F32 reference (tests/ref_forward.c), and the two agree: logits within a tolerance,
 * and the same greedy tokens for 32 steps after an 8-token prompt (40 positions: past every
 * sliding window of the tiny shapes, which is 8).
 *
 * The F32 models, the strict check of the architectures, have weights N(0, 0.05) rather than
 * mkmodel's default 0.02: with 0.02 every attention head spreads almost evenly over the
 * positions, so RoPE, the Llama 3 divisors or a sliding window could be wrong and move the
 * logits by less than the tolerance (measured: a llama with NeoX RoPE, 1.8x the tolerance);
 * with 0.05 the heads are selective and every feature matters (test_mutations_detected proves
 * it, feature by feature). The quantized models keep 0.02: they test the formats.
 *
 * Tolerances, as max |fast - ref| over the logits:
 *   F32 weights, 5e-3 (largest logits 2 to 3): the fast path rounds q, k and v to half
 *     precision (2^-11 relative), accumulates the attention output in half, and (gemma) takes
 *     GELU from a half-precision table as llama.cpp does; through a few layers that moves
 *     logits by up to ~2e-3 (measured worst: gemma2, 2.2e-3; qwen2 1e-3). The mutations move
 *     them by 4e-2 to 4 (8x to 800x this).
 *   quantized weights with 32-value blocks (Q8_0, Q4_0), 5e-2: the weights are the same on
 *     both sides, but the fast path rounds every activation to 8 bits per 32-value block (up to
 *     1/254 of the block's largest value) before each product; each of the 2 x layers + 1
 *     products adds ~0.3% of the logits' scale, and gemma's post-norms rescale every branch to
 *     unit RMS, which keeps that error relative instead of letting the residual stream dilute
 *     it (measured worst: gemma3 Q8_0, 2.2e-2; llama 5e-3).
 *   k-quant weights (mixes that between them use Q2_K..Q6_K, on two-layer models of width 256
 *     so the 256-value blocks fit), 1e-1: their activations are Q8_K, one scale per 256 values,
 *     so small values lose more bits than with 32-value blocks, roughly doubling the error
 *     (measured worst: gemma3 Q5_K_M, 3.3e-2; llama 1.5e-2 to 1.7e-2). A logic error moves
 *     logits by their own size (~1), far beyond these; the F32 runs are the strict check of the
 *     architectures.
 * Greedy tokens must match exactly, except at a near-tie: when the two paths pick different
 * tokens whose reference logits lie within the tolerance of each other, the step counts as a
 * tie (printed) and both continue with the reference's token. F32 runs may have at most 2 (with
 * these seeds they have none), quantized ones 8 of the 32 steps (measured: at most 1 with
 * 32-value blocks, 4 with k-quants, whose tiny random models have many logits within 1e-2).
 * (The quantized tolerances were measured on the logits of weights N(0, 0.02): 0.5 to 1.3.)
 *
 * Also here: the reference itself reproduces the golden tokens of the real stories260K model,
 * and malformed architecture data fails to load with an error naming the tensor or key. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/cpu.h"
#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"
#include "engine/threadpool.h"
#include "ref_forward.h"
#include "testutil.h"
#include "tools/convert.h"
#include "tools/mkmodel.h"
#include "tools/quant_plan.h"
#include "wandler.h"

#define N_PROMPT 8
#define N_PROMPT_LONG 136 /* test_long_prompt: batches of 128 (the float path) and 8 (the half path) */
#define N_GEN 32
#define N_CTX 192
#define SIGMA_F32 0.05f /* weights of the F32 models: see above */
#define TOL_F32 5e-3
#define TOL_QUANT 5e-2 /* 32-value activation blocks (Q8_0, Q4_0, ... weights) */
#define TOL_KQUANT 1e-1 /* 256-value activation blocks (k-quant weights) */
#define MAX_TIES_F32 2
#define MAX_TIES_QUANT 8

static char g_dir[256]; /* this run's temporary folder */

static const char *const ARCHS[] = {"llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"};
#define N_ARCHS (int)(sizeof ARCHS / sizeof ARCHS[0])

/* Makes the tiny model of arch in format ftype (with dims overrides "k=v,..." applied by hand)
 * at path. Returns WANDLER_OK or the error (a format the quantizer lacks: INVALID_ARGUMENT). */
static int make_tiny(const char *arch, const char *ftype, int wide, const char *path, wandler_error *err)
{
    const wl_mkmodel_shape *s = wl_mkmodel_find_shape(wl_arch_from_name(arch, strlen(arch)), "tiny");
    assert_non_null(s);
    wl_mkmodel_params p = {0};
    p.dims = s->dims;
    p.ftype = ftype;
    p.seed = 42;
    p.n_threads = 2;
    p.sigma = strcmp(ftype, "F32") == 0 ? SIGMA_F32 : 0.0f;
    if (wide) { /* rows of 256: the k-quants' blocks fit; two layers are enough to test formats */
        p.dims.n_layer = 2;
        p.dims.n_embd = 256;
        p.dims.n_ff = 512;
        if (p.dims.head_dim)
            p.dims.head_dim = 64;
        if (p.dims.n_rot)
            p.dims.n_rot = 32;
    }
    return wl_mkmodel(&p, path, err);
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static double max_abs_diff(const float *a, const float *b, int n, double *ref_max)
{
    double d = 0, m = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d ? e : d;
        m = fabs(b[i]) > m ? fabs(b[i]) : m;
    }
    *ref_max = m;
    return d;
}

typedef struct run_result {
    double max_err; /* over every step's logits */
    int ties;
    int misses;     /* steps whose greedy token differs beyond a near-tie (non-strict runs) */
} run_result;

/* Changes a loaded model before its context is made: a deliberately wrong architecture. */
typedef void (*mutate_fn)(wl_model *m);

/* What the reference computes on a model, once for every kernel family to be compared with:
 * the sequence (prompt, then the reference's greedy tokens) and the logits after each position
 * from the last prompt token on. */
typedef struct ref_trace {
    int n_vocab;
    int32_t seq[N_PROMPT_LONG + N_GEN];
    float *logits; /* (N_GEN, n_vocab) */
} ref_trace;

/* the prompt's length in tokens: N_PROMPT, or N_PROMPT_LONG while test_long_prompt runs */
static int g_prompt = N_PROMPT;

static void ref_trace_make(const char *label, const char *path, ref_trace *tr)
{
    char msg[256];
    ref_model *r;
    if (ref_load(path, N_CTX, &r, msg, sizeof msg) != 0)
        fail_msg("%s: reference: %s", label, msg);
    const int nv = tr->n_vocab = ref_n_vocab(r);
    tr->logits = malloc((size_t)N_GEN * nv * sizeof *tr->logits);
    assert_non_null(tr->logits);
    /* the prompt: BOS and g_prompt - 1 tokens */
    tr->seq[0] = 1;
    for (int i = 1; i < g_prompt; i++)
        tr->seq[i] = (int32_t)(260 + 31 * i) % nv;
    for (int i = 0; i < g_prompt; i++)
        ref_forward(r, tr->seq[i], i, tr->logits);
    for (int g = 0; g < N_GEN; g++) {
        float *lg = tr->logits + (size_t)g * nv;
        tr->seq[g_prompt + g] = argmax(lg, nv);
        if (g + 1 < N_GEN)
            ref_forward(r, tr->seq[g_prompt + g], g_prompt + g, lg + nv);
    }
    ref_free(r);
}

/* The fast path with kernel family isa against the reference's trace of the model at path: the
 * prompt in one batch, then the reference's tokens one by one (so both always see the same
 * sequence). strict: any disagreement beyond tol fails the test; otherwise it is counted and
 * returned (for runs with a mutated model, which must disagree). */
static run_result run_compare(const char *label, const char *path, const ref_trace *tr, int isa, int n_threads,
                              double tol, int max_ties, int strict, mutate_fn mutate)
{
    wandler_error err;
    gguf_file *f;
    wl_model *m;
    wl_pool *pool;
    wl_ctx *c;
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_OK);
    if (wl_model_load(f, &m, &err) != WANDLER_OK)
        fail_msg("%s: %s", label, err.message);
    if (mutate)
        mutate(m);
    assert_int_equal(wl_pool_create(n_threads, &pool, &err), WANDLER_OK);
    assert_int_equal(wl_ctx_create(m, N_CTX, pool, isa, &c, &err), WANDLER_OK);
    const int nv = m->hp.n_vocab;
    assert_int_equal(tr->n_vocab, nv);
    float *fast = malloc((size_t)nv * sizeof *fast);

    for (int p0 = 0; p0 < g_prompt; p0 += wl_ctx_max_batch(c)) { /* in batches, as the session does */
        const int nb = g_prompt - p0 < wl_ctx_max_batch(c) ? g_prompt - p0 : wl_ctx_max_batch(c);
        assert_int_equal(wl_forward(c, tr->seq + p0, nb, p0, fast, &err), WANDLER_OK);
    }
    run_result res = {0, 0, 0};
    char tokens[N_GEN * 6 + 1] = "";
    for (int g = 0; g < N_GEN; g++) {
        const int pos = g_prompt + g;
        const float *ref = tr->logits + (size_t)g * nv;
        double ref_max, e = max_abs_diff(fast, ref, nv, &ref_max);
        if (e > res.max_err)
            res.max_err = e;
        if (strict && e > tol)
            fail_msg("%s: step %d: logits differ by %.3g (> %.3g; largest reference logit %.3g)", label, g, e, tol,
                     ref_max);
        int32_t a = argmax(fast, nv), b = tr->seq[pos];
        if (a != b) {
            double gap = ref[b] - ref[a];
            if (gap > tol || ++res.ties > max_ties) {
                if (strict)
                    fail_msg("%s: step %d: fast path picks %d, reference %d (reference logits %.6f vs %.6f)", label, g,
                             a, b, ref[a], ref[b]);
                res.misses++;
            } else if (strict) {
                printf("    %s: step %d: near-tie %d/%d (gap %.2g), continuing with %d\n", label, g, a, b, gap, b);
            }
        }
        snprintf(tokens + strlen(tokens), sizeof tokens - strlen(tokens), " %d", b);
        if (g + 1 < N_GEN)
            assert_int_equal(wl_forward(c, &tr->seq[pos], 1, pos, fast, &err), WANDLER_OK);
    }
    if (strict)
        printf("  %-28s %-7s max |dlogit| %.2e (tol %.0e), %d ties, tokens%.40s...\n", label, wl_isa_name(isa),
               res.max_err, tol, res.ties, tokens);
    free(fast);
    wl_ctx_free(c);
    wl_pool_destroy(pool);
    wl_model_free(m);
    gguf_close(f);
    return res;
}

/* Runs arch in format ftype on every kernel family with two threads (k-quant mixes: the scalar
 * family and the best, on one thread, to keep the test short; test_kernels holds every family's
 * k-quant kernels to the scalar ones, and the row split over threads does not depend on the
 * format); skips a format the quantizer or kernels lack. */
static void check_arch(const char *arch, const char *ftype, int wide)
{
    char path[1024], label[64];
    wandler_error err;
    snprintf(path, sizeof path, "%s/%s-%s%s.gguf", g_dir, arch, ftype, wide ? "-wide" : "");
    snprintf(label, sizeof label, "%s %s%s", arch, ftype, wide ? " (dim 256)" : "");
    int rc = make_tiny(arch, ftype, wide, path, &err);
    if (rc == WANDLER_ERR_INVALID_ARGUMENT && strstr(err.message, "does not write yet")) {
        printf("  %-28s skipped: %s\n", label, err.message);
        return;
    }
    if (rc != WANDLER_OK)
        fail_msg("%s: mkmodel: %s", label, err.message);
    const int f32 = !strcmp(ftype, "F32");
    const double tol = f32 ? TOL_F32 : strchr(ftype, 'K') ? TOL_KQUANT : TOL_QUANT;
    gguf_file *f;
    wl_model *m;
    assert_int_equal(gguf_open(path, &f, &err), WANDLER_OK);
    rc = wl_model_load(f, &m, &err);
    gguf_close(f);
    if (rc == WANDLER_ERR_MODEL_UNSUPPORTED_TYPE) {
        printf("  %-28s skipped: %s\n", label, err.message);
        unlink(path);
        return;
    }
    assert_int_equal(rc, WANDLER_OK);
    wl_model_free(m);
    ref_trace tr;
    ref_trace_make(label, path, &tr);
    for (int isa = 0; isa < WL_ISA_COUNT; isa++)
        if (wl_isa_available(isa) && (!wide || isa == WL_ISA_SCALAR || isa == wl_isa_best()))
            run_compare(label, path, &tr, isa, wide ? 1 : 2, tol, f32 ? MAX_TIES_F32 : MAX_TIES_QUANT, 1, NULL);
    free(tr.logits);
    unlink(path);
}

/* A prompt of N_PROMPT_LONG tokens, fed in batches of wl_ctx_max_batch (128) as the session
 * does: the first batch goes through attention's float path, the 8 tokens after it through the
 * half path; it must agree with the reference as well as the short one does, with the sliding
 * window (gemma2, gemma3) cutting into the prompt. */
static void test_long_prompt(void **state)
{
    (void)state;
    g_prompt = N_PROMPT_LONG;
    for (int a = 0; a < N_ARCHS; a++) {
        check_arch(ARCHS[a], "F32", 0);
        check_arch(ARCHS[a], "Q8_0", 0);
    }
}

static int short_prompt(void **state)
{
    (void)state;
    g_prompt = N_PROMPT;
    return 0;
}

static void test_f32(void **state)
{
    (void)state;
    for (int a = 0; a < N_ARCHS; a++)
        check_arch(ARCHS[a], "F32", 0);
}

static void test_q8_0(void **state)
{
    (void)state;
    for (int a = 0; a < N_ARCHS; a++)
        check_arch(ARCHS[a], "Q8_0", 0);
}

static void test_q4_0(void **state)
{
    (void)state;
    for (int a = 0; a < N_ARCHS; a++)
        check_arch(ARCHS[a], "Q4_0", 0);
}

/* The k-quant mixes on rows of 256 (skipped, with a note, while quant.c lacks the formats). */
static void test_kquants(void **state)
{
    (void)state;
    /* between them every k-quant: Q4_K + Q6_K, Q5_K + Q6_K, Q3_K + Q4_K + Q5_K, Q2_K + Q3_K + Q4_K */
    static const char *const MIXES[] = {"Q4_K_M", "Q5_K_M", "Q3_K_M", "Q2_K"};
    for (size_t i = 0; i < sizeof MIXES / sizeof MIXES[0]; i++)
        for (int a = 0; a < N_ARCHS; a++)
            check_arch(ARCHS[a], MIXES[i], 1);
}

/* ---- the tests can fail: every architecture feature matters on its tiny model ----
 *
 * Each mutation below breaks one feature of the fast path's loaded model (as a bug in the loader
 * or the forward pass would), and the comparison with the reference must then fail by the
 * F32 test's own criterion: logits beyond TOL_F32 or a greedy token beyond a near-tie. Were a
 * feature too weak on its tiny model to move the logits past the tolerance (gemma2's real
 * soft-caps of 50 and 30 on logits of about 1 do not), getting it wrong would go unnoticed; the
 * tiny shapes are chosen so that none is. */

static void mut_rope_neox_flip(wl_model *m) { m->hp.rope_neox = !m->hp.rope_neox; }
static void mut_no_rope_freqs(wl_model *m) { m->rope_freqs = NULL; }
static void mut_tie_output(wl_model *m) { m->output = m->tok_embd; }
static void mut_no_qkv_bias(wl_model *m)
{
    for (int il = 0; il < m->hp.n_layer; il++)
        m->layers[il].bq = m->layers[il].bk = m->layers[il].bv = NULL;
}
static void mut_no_qk_norm(wl_model *m)
{
    for (int il = 0; il < m->hp.n_layer; il++)
        m->layers[il].q_norm = m->layers[il].k_norm = NULL;
}
static void mut_no_final_softcap(wl_model *m) { m->hp.final_softcap = 0.0f; }
static void mut_no_attn_softcap(wl_model *m) { m->hp.attn_softcap = 0.0f; }
static void mut_no_swa(wl_model *m)
{
    for (int il = 0; il < m->hp.n_layer; il++)
        m->layers[il].swa = 0;
}
static void mut_all_swa(wl_model *m)
{
    for (int il = 0; il < m->hp.n_layer; il++)
        m->layers[il].swa = 1;
}
static void mut_swa_base_global(wl_model *m) { m->hp.rope_base_swa = m->hp.rope_base; }
static void mut_q_scale_27b(wl_model *m) { m->hp.q_scale = 1.0f / sqrtf((float)(m->hp.n_embd / m->hp.n_head)); }
static void mut_no_embd_scale(wl_model *m) { m->hp.embd_scale = 1.0f; }
static void mut_no_post_norms(wl_model *m)
{
    for (int il = 0; il < m->hp.n_layer; il++)
        m->layers[il].attn_post_norm = m->layers[il].ffn_post_norm = NULL;
}
static void mut_silu(wl_model *m) { m->hp.ffn_act = WL_ACT_SILU; }
static void mut_rotate_half(wl_model *m) { m->hp.n_rot /= 2; }
static void mut_short_factors(wl_model *m) { m->rope_long = m->rope_short; }
static void mut_no_attn_factor(wl_model *m) { m->hp.rope_attn_factor = 1.0f; }

typedef struct mutation {
    const char *arch;
    const char *what;
    mutate_fn apply;
} mutation;

static const mutation MUTATIONS[] = {
    {"llama", "NeoX RoPE instead of adjacent pairs", mut_rope_neox_flip},
    {"llama", "Llama 3 RoPE divisors ignored", mut_no_rope_freqs},
    {"llama", "untied output read as the embedding", mut_tie_output},
    {"qwen2", "q/k/v biases ignored", mut_no_qkv_bias},
    {"qwen2", "adjacent-pair RoPE instead of NeoX", mut_rope_neox_flip},
    {"qwen3", "per-head q/k RMSNorm skipped", mut_no_qk_norm},
    {"qwen3", "adjacent-pair RoPE instead of NeoX", mut_rope_neox_flip},
    {"gemma2", "final logit soft-capping off", mut_no_final_softcap},
    {"gemma2", "attention soft-capping off", mut_no_attn_softcap},
    {"gemma2", "sliding window off", mut_no_swa},
    {"gemma2", "every layer sliding", mut_all_swa},
    {"gemma2", "query scale of the 27B model", mut_q_scale_27b},
    {"gemma2", "embeddings not scaled by sqrt(dim)", mut_no_embd_scale},
    {"gemma2", "post-norms skipped", mut_no_post_norms},
    {"gemma2", "SwiGLU instead of GeGLU", mut_silu},
    {"gemma3", "sliding window off", mut_no_swa},
    {"gemma3", "local layers with the global RoPE base", mut_swa_base_global},
    {"gemma3", "per-head q/k RMSNorm skipped", mut_no_qk_norm},
    {"gemma3", "query scale of the 27B model", mut_q_scale_27b},
    {"phi3", "half the rotary dimensions", mut_rotate_half},
    {"phi3", "short LongRoPE factors beyond the original context", mut_short_factors},
    {"phi3", "LongRoPE attention factor ignored", mut_no_attn_factor},
    {"phi3", "adjacent-pair RoPE instead of NeoX", mut_rope_neox_flip},
};

static void test_mutations_detected(void **state)
{
    (void)state;
    char path[1024];
    const char *made = "";
    wandler_error err;
    ref_trace tr = {0};
    for (size_t i = 0; i < sizeof MUTATIONS / sizeof MUTATIONS[0]; i++) {
        const mutation *mu = &MUTATIONS[i];
        snprintf(path, sizeof path, "%s/mut-%s.gguf", g_dir, mu->arch);
        if (strcmp(made, mu->arch) != 0) {
            free(tr.logits);
            assert_int_equal(make_tiny(mu->arch, "F32", 0, path, &err), WANDLER_OK);
            ref_trace_make(mu->arch, path, &tr);
            made = mu->arch;
        }
        run_result r = run_compare(mu->what, path, &tr, wl_isa_best(), 2, TOL_F32, MAX_TIES_F32, 0, mu->apply);
        printf("  %-7s %-52s max |dlogit| %.2e (%.0fx tol), %2d/%d tokens differ\n", mu->arch, mu->what, r.max_err,
               r.max_err / TOL_F32, r.misses, N_GEN);
        if (!(r.max_err > TOL_F32 || r.misses > 0))
            fail_msg("%s with %s still agrees with the reference: the test could not catch that bug", mu->arch,
                     mu->what);
        if (i + 1 == sizeof MUTATIONS / sizeof MUTATIONS[0] || strcmp(MUTATIONS[i + 1].arch, mu->arch) != 0)
            unlink(path);
    }
    free(tr.logits);
}

/* The reference reproduces the golden greedy tokens of the real stories260K model (so the
 * oracle is right where an independent oracle exists). */
static void test_reference_matches_golden(void **state)
{
    (void)state;
    size_t size;
    char *text = wl_test_read_file(wl_test_shared("golden/stories260K.greedy.jsonl"), &size);
    assert_non_null(text);
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = 0;
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    json_t *pids = json_object_get(o, "prompt_ids"), *gids = json_object_get(o, "generated_ids");
    char msg[256];
    ref_model *r;
    if (ref_load(wl_test_shared("models/stories260K.gguf"), 256, &r, msg, sizeof msg) != 0)
        fail_msg("%s", msg);
    float *logits = malloc((size_t)ref_n_vocab(r) * sizeof *logits);
    int pos = 0;
    for (size_t i = 0; i < json_array_size(pids); i++)
        ref_forward(r, (int32_t)json_integer_value(json_array_get(pids, i)), pos++, logits);
    for (size_t g = 0; g < json_array_size(gids); g++) {
        int32_t t = argmax(logits, ref_n_vocab(r));
        assert_int_equal(t, json_integer_value(json_array_get(gids, g)));
        ref_forward(r, t, pos++, logits);
    }
    printf("  reference: %zu golden tokens of stories260K reproduced\n", json_array_size(gids));
    free(logits);
    ref_free(r);
    json_decref(o);
    free(text);
}

/* ---- malformed architecture data ---- */

typedef struct edit {
    const char *drop_tensor;   /* leave out */
    const char *add_tensor;    /* an F32 vector of new_n zeros */
    const char *resize_tensor; /* ne[0] (a vector) or ne[1] (a matrix) becomes new_n */
    uint64_t new_n;
    const char *set_key;       /* set as u32 (num) or string (str) */
    double num;
    const char *str;
    int64_t arr_len;           /* > 0: set_key becomes an array of arr_len u8 ones */
    int half_vectors;          /* every 1-D tensor (F32) is stored as F16 */
} edit;

/* Rewrites the model at src with one edit into dst. */
static void rewrite(const char *src, const char *dst, const edit *e)
{
    wandler_error err;
    gguf_file *f;
    gguf_writer *w;
    assert_int_equal(gguf_open(src, &f, &err), WANDLER_OK);
    assert_int_equal(gguf_writer_new(&w, &err), WANDLER_OK);
    for (uint64_t i = 0; i < gguf_n_kv(f); i++)
        assert_int_equal(gguf_writer_copy_kv(w, f, i, &err), WANDLER_OK);
    if (e->set_key && e->arr_len > 0) {
        uint8_t ones[64];
        memset(ones, 1, sizeof ones);
        assert_int_equal(gguf_writer_set_arr(w, e->set_key, GGUF_TYPE_UINT8, ones, (uint64_t)e->arr_len, &err), WANDLER_OK);
    } else if (e->set_key && e->str) {
        assert_int_equal(gguf_writer_set_str(w, e->set_key, e->str, &err), WANDLER_OK);
    } else if (e->set_key) {
        assert_int_equal(gguf_writer_set_u32(w, e->set_key, (uint32_t)e->num, &err), WANDLER_OK);
    }
    void *owned[256];
    int n_owned = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        const void *data = t->data;
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor))
            continue;
        uint32_t type = t->type;
        if (e->resize_tensor && !strcmp(t->name, e->resize_tensor)) {
            ne[t->n_dims == 1 ? 0 : 1] = e->new_n;
            data = owned[n_owned++] = calloc(ne[0] * ne[1], 4); /* F32 (the tiny F32 model) */
        }
        if (e->half_vectors && t->n_dims == 1 && t->type == WL_TYPE_F32) {
            uint16_t *h = owned[n_owned++] = malloc(ne[0] * sizeof *h);
            assert_true(n_owned <= 256);
            for (uint64_t k = 0; k < ne[0]; k++)
                h[k] = wl_fp32_to_fp16(((const float *)t->data)[k]);
            data = h;
            type = WL_TYPE_F16;
        }
        assert_int_equal(gguf_writer_add_tensor(w, t->name, type, t->n_dims, ne, data, &err), WANDLER_OK);
    }
    if (e->add_tensor) {
        uint64_t ne[4] = {e->new_n, 1, 1, 1};
        void *zeros = owned[n_owned++] = calloc(e->new_n, 4);
        assert_int_equal(gguf_writer_add_tensor(w, e->add_tensor, WL_TYPE_F32, 1, ne, zeros, &err), WANDLER_OK);
    }
    assert_int_equal(gguf_writer_write_file(w, dst, &err), WANDLER_OK);
    gguf_writer_free(w);
    gguf_close(f);
    while (n_owned)
        free(owned[--n_owned]);
}

typedef struct bad_case {
    const char *arch;
    edit e;
    int code;
    const char *mention;
} bad_case;

static const bad_case BAD[] = {
    {"qwen3", {.drop_tensor = "blk.1.attn_q_norm.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR, "blk.1.attn_q_norm.weight"},
    {"gemma3", {.drop_tensor = "blk.0.attn_k_norm.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR, "blk.0.attn_k_norm.weight"},
    {"gemma2", {.drop_tensor = "blk.3.post_ffw_norm.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR, "blk.3.post_ffw_norm.weight"},
    {"gemma2", {.drop_tensor = "blk.0.post_attention_norm.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR,
     "blk.0.post_attention_norm.weight"},
    {"phi3", {.drop_tensor = "blk.1.attn_qkv.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR, "blk.1.attn_q.weight"},
    {"phi3", {.drop_tensor = "rope_factors_short.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR, "rope_factors_short.weight"},
    {"llama", {.drop_tensor = "blk.0.ffn_gate.weight"}, WANDLER_ERR_MODEL_MISSING_TENSOR, "blk.0.ffn_gate.weight"},
    {"phi3", {.resize_tensor = "blk.0.ffn_up.weight", .new_n = 128}, WANDLER_ERR_MODEL_TENSOR_SHAPE, "blk.0.ffn_up.weight"},
    {"phi3", {.resize_tensor = "blk.1.attn_qkv.weight", .new_n = 96 * 3 - 32}, WANDLER_ERR_MODEL_TENSOR_SHAPE,
     "blk.1.attn_qkv.weight"},
    {"qwen2", {.resize_tensor = "blk.1.attn_k.bias", .new_n = 64}, WANDLER_ERR_MODEL_TENSOR_SHAPE, "blk.1.attn_k.bias"},
    {"qwen3", {.resize_tensor = "blk.2.attn_k_norm.weight", .new_n = 16}, WANDLER_ERR_MODEL_TENSOR_SHAPE,
     "blk.2.attn_k_norm.weight"},
    {"qwen3", {.set_key = "qwen3.attention.head_count", .num = 8}, WANDLER_ERR_MODEL_TENSOR_SHAPE, "blk.0.attn_q.weight"},
    {"qwen3", {.set_key = "qwen3.attention.value_length", .num = 16}, WANDLER_ERR_MODEL_BAD_HPARAM, "value_length"},
    {"gemma3", {.resize_tensor = "blk.0.attn_output.weight", .new_n = 64}, WANDLER_ERR_MODEL_TENSOR_SHAPE,
     "blk.0.attn_output.weight"},
    {"llama", {.resize_tensor = "rope_freqs.weight", .new_n = 4}, WANDLER_ERR_MODEL_TENSOR_SHAPE, "rope_freqs.weight"},
    {"llama", {.set_key = "llama.vocab_size", .num = 500}, WANDLER_ERR_MODEL_TENSOR_SHAPE, "vocab_size"},
    {"llama", {.set_key = "llama.rope.scaling.type", .str = "yarn"}, WANDLER_ERR_MODEL_BAD_HPARAM, "yarn"},
    {"gemma3", {.set_key = "gemma3.attention.sliding_window_pattern", .arr_len = 5}, WANDLER_ERR_MODEL_BAD_HPARAM,
     "sliding_window_pattern"},
    {"gemma2", {.set_key = "general.architecture", .str = "gemma4"}, WANDLER_ERR_MODEL_UNSUPPORTED_ARCH, "gemma4"},
    {"llama", {.add_tensor = "blk.1.attn_output.bias", .new_n = 64}, WANDLER_ERR_MODEL_UNSUPPORTED_ARCH,
     "blk.1.attn_output.bias"},
    {"qwen2", {.add_tensor = "blk.0.ffn_down.bias", .new_n = 64}, WANDLER_ERR_MODEL_UNSUPPORTED_ARCH, "blk.0.ffn_down.bias"},
};

static void test_malformed(void **state)
{
    (void)state;
    char src[1024], dst[1024];
    const char *dir = g_dir;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const bad_case *b = &BAD[i];
        wandler_error err;
        snprintf(src, sizeof src, "%s/%s.gguf", dir, b->arch);
        snprintf(dst, sizeof dst, "%s/bad.gguf", dir);
        if (access(src, F_OK) != 0)
            assert_int_equal(make_tiny(b->arch, "F32", 0, src, &err), WANDLER_OK);
        rewrite(src, dst, &b->e);
        gguf_file *f;
        wl_model *m = NULL;
        assert_int_equal(gguf_open(dst, &f, &err), WANDLER_OK);
        int rc = wl_model_load(f, &m, &err);
        if (rc != b->code || !strstr(err.message, b->mention))
            fail_msg("case %zu (%s): got %s '%s', expected %s mentioning '%s'", i, b->arch, wandler_status_name(rc),
                     rc ? err.message : "", wandler_status_name(b->code), b->mention);
        printf("  %-7s %-34s -> %s\n", b->arch, wandler_status_name(rc), err.message);
        wl_model_free(m);
        gguf_close(f);
    }
    unlink(dst);
    for (int a = 0; a < N_ARCHS; a++) {
        snprintf(src, sizeof src, "%s/%s.gguf", dir, ARCHS[a]);
        unlink(src);
    }
}

/* mkmodel is deterministic, and the same values whatever the format: an F32 model quantized by
 * wandler quantize is byte for byte the model made in that format. The shape makes both tools
 * stream several slabs of rows per tensor, of different widths (the embedding: 4000 rows of 320;
 * the FFN: rows of 1216). */
static void test_mkmodel_deterministic(void **state)
{
    (void)state;
    char a[1024], b[1024], c[1024];
    const char *dir = g_dir;
    wandler_error err;
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    snprintf(c, sizeof c, "%s/c.gguf", dir);
    wl_mkmodel_params p = {0};
    p.dims = wl_mkmodel_find_shape(WL_ARCH_QWEN2, "tiny")->dims;
    p.dims.n_embd = 320;
    p.dims.n_ff = 1216;
    p.dims.n_head = 5;
    p.dims.n_head_kv = 1;
    p.dims.n_vocab = 4000;
    p.seed = 42;
    p.n_threads = 2;
    p.ftype = "Q8_0";
    assert_int_equal(wl_mkmodel(&p, a, &err), WANDLER_OK);
    p.ftype = "F32";
    assert_int_equal(wl_mkmodel(&p, b, &err), WANDLER_OK);
    wl_quantize_params qp = {.ftype = "Q8_0", .n_threads = 3};
    assert_int_equal(wl_quantize_file(b, c, &qp, &err), WANDLER_OK);
    size_t na, nc;
    char *da = wl_test_read_file(a, &na), *dc = wl_test_read_file(c, &nc);
    assert_non_null(da);
    assert_non_null(dc);
    assert_int_equal(na, nc);
    assert_memory_equal(da, dc, na);
    free(dc);
    /* and again in the same format with another thread count: the same bytes */
    p.ftype = "Q8_0";
    p.n_threads = 1;
    assert_int_equal(wl_mkmodel(&p, b, &err), WANDLER_OK);
    char *db = wl_test_read_file(b, &nc);
    assert_int_equal(na, nc);
    assert_memory_equal(da, db, na);
    free(da);
    free(db);
    unlink(a);
    unlink(b);
    unlink(c);
}

/* wandler quantize keeps norms (and every vector) F32: an F16 one becomes F32, with its values,
 * while the matrices take the file type's format. */
static void test_quantize_vectors_f32(void **state)
{
    (void)state;
    char src[1024], half[1024], out[1024];
    wandler_error err;
    snprintf(src, sizeof src, "%s/vq-src.gguf", g_dir);
    snprintf(half, sizeof half, "%s/vq-half.gguf", g_dir);
    snprintf(out, sizeof out, "%s/vq-out.gguf", g_dir);
    assert_int_equal(make_tiny("qwen2", "F32", 0, src, &err), WANDLER_OK); /* norms and biases */
    const edit e = {.half_vectors = 1};
    rewrite(src, half, &e);
    wl_quantize_params qp = {.ftype = "Q8_0", .n_threads = 2};
    assert_int_equal(wl_quantize_file(half, out, &qp, &err), WANDLER_OK);
    gguf_file *fh, *fo;
    assert_int_equal(gguf_open(half, &fh, &err), WANDLER_OK);
    assert_int_equal(gguf_open(out, &fo, &err), WANDLER_OK);
    int n_vec = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(fo); i++) {
        const gguf_tensor *t = gguf_tensor_at(fo, i), *h = gguf_find_tensor(fh, t->name);
        assert_non_null(h);
        if (t->n_dims != 1) {
            assert_int_equal(t->type, WL_TYPE_Q8_0);
            continue;
        }
        if (t->type != WL_TYPE_F32 || h->type != WL_TYPE_F16)
            fail_msg("%s: %s in, %s out; expected F16 in, F32 out", t->name, wl_type_name(h->type),
                     wl_type_name(t->type));
        for (uint64_t k = 0; k < t->ne[0]; k++)
            assert_true(((const float *)t->data)[k] == wl_fp16_to_fp32(((const uint16_t *)h->data)[k]));
        n_vec++;
    }
    printf("  %d F16 vectors (norms, biases) written as F32, matrices Q8_0\n", n_vec);
    assert_true(n_vec > 10);
    gguf_close(fh);
    gguf_close(fo);
    unlink(src);
    unlink(half);
    unlink(out);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s", wl_test_tmpdir());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_matches_golden),
        cmocka_unit_test(test_f32),
        cmocka_unit_test_teardown(test_long_prompt, short_prompt),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_kquants),
        cmocka_unit_test(test_mutations_detected),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mkmodel_deterministic),
        cmocka_unit_test(test_quantize_vectors_f32),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
