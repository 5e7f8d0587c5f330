/* test_kernels.c - every kernel family computes exactly what the scalar reference computes.
 *
 * kernels.h defines one arithmetic for all families, so the tests compare bits (memcmp), never
 * within a tolerance:
 *   - activation converters: every family writes the scalar family's bytes;
 *   - vec_dot, GEMV (ntok = 1) and GEMM (any ntok, any [r0, r1)): every family gives the scalar
 *     family's bits, for rows of many lengths (float tails of every size, 1..20 blocks and long
 *     rows), unaligned weight rows, padded strides and an output leading dimension larger than
 *     the rows; nothing outside [r0, r1) x [0, ntok) is written;
 *   - batch invariance: a (row, token) result is the same bits alone (vec_dot), in a GEMV, and
 *     in a GEMM of any batch with any row split;
 *   - malformed weights (NaN / Inf scales or values): no crash, and every family agrees.
 * Independently of the families, the scalar reference is checked against the truth: on exact
 * data (small integers, power-of-two scales: every partial sum is exact in float) it must equal
 * the exact dot product, and on random data it must stay within a float rounding bound of a
 * float64 dequantize-then-dot reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "engine/cpu.h"
#include "engine/kernels.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

/* Every weight type with kernels, and the activation types. */
static const uint32_t TYPES[] = {WL_TYPE_F32,  WL_TYPE_F16,  WL_TYPE_BF16, WL_TYPE_Q8_0,
                                 WL_TYPE_Q4_0, WL_TYPE_Q4_1, WL_TYPE_Q5_0, WL_TYPE_Q5_1,
                                 WL_TYPE_Q2_K, WL_TYPE_Q3_K, WL_TYPE_Q4_K, WL_TYPE_Q5_K,
                                 WL_TYPE_Q6_K};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])
static const uint32_t ACT_TYPES[] = {WL_TYPE_F32,  WL_TYPE_F16,  WL_TYPE_BF16,
                                     WL_TYPE_Q8_0, WL_TYPE_Q8_1, WL_TYPE_Q8_K};
#define N_ACT_TYPES (sizeof ACT_TYPES / sizeof ACT_TYPES[0])

#define WL_MIN_TEST(a, b) ((a) < (b) ? (a) : (b))

/* ---- a small deterministic generator ---------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_float(void) /* uniform in [-1, 1) */
{
    return (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int rng_int(int lo, int hi) /* uniform in [lo, hi] */
{
    return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}

static int is_float_kind(uint32_t type)
{
    return type == WL_TYPE_F32 || type == WL_TYPE_F16 || type == WL_TYPE_BF16;
}

/* Values per block of a weight type's rows, which n must be a multiple of (with its
 * activation type's block). */
static int64_t block_of(uint32_t type)
{
    int64_t a = wl_type_get(type)->block_size, b = wl_type_get(wl_act_type(type))->block_size;
    return a > b ? a : b;
}

/* The families this CPU runs. */
static int n_families(const wl_kernel_table *out[WL_ISA_COUNT])
{
    int k = 0;
    for (int isa = 0; isa < WL_ISA_COUNT; isa++)
        if (wl_kernels(isa))
            out[k++] = wl_kernels(isa);
    return k;
}

/* Same bits, or both NaN (NaN payloads may legitimately differ: which NaN operand an FMA
 * propagates depends on the operand order). */
static int same_result(float a, float b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* ---- test data: weight rows and activation rows, with their values ---------------------- */

typedef struct {
    uint32_t type;
    int64_t n, rows, ntok;
    size_t w_stride, x_stride;
    unsigned char *w;  /* rows x w_stride bytes, row r at 1 + r * w_stride (odd: unaligned) */
    unsigned char *x;  /* ntok x x_stride bytes: activation rows */
    double *w_scale;   /* rows x n: the weights' scale parts d * q (exact) */
    double *w_min;     /* rows x n: their min parts (- dmin * m, or m; 0 for other formats) */
    double *x_values;  /* ntok x n: the activations' values d * q (exact) */
} problem;

static const unsigned char *weight_row(const problem *p, int64_t r)
{
    return p->w + 1 + (size_t)r * p->w_stride;
}

static const unsigned char *act_row(const problem *p, int64_t t)
{
    return p->x + (size_t)t * p->x_stride;
}

/* Exact weights: Q8_0 quants over the whole int8 range (-128 included), Q4_0 random nibbles,
 * each row with one power-of-two scale; float kinds: integers in [-8, 8]. */
static void make_exact_weight_row(uint32_t type, int64_t n, unsigned char *dst)
{
    if (!is_float_kind(type)) {
        static const uint16_t scales[] = {0x3800, 0x3400, 0x3c00, 0x4000}; /* .5 .25 1 2 */
        uint16_t d = scales[rng_int(0, 3)];
        size_t bytes = wl_type_get(type)->type_size;
        for (int64_t b = 0; b < n / WL_QK; b++) {
            unsigned char *blk = dst + (size_t)b * bytes;
            memcpy(blk, &d, 2);
            for (size_t j = 2; j < bytes; j++)
                blk[j] = (unsigned char)rng_next();
        }
        return;
    }
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)rng_int(-8, 8);
    assert_int_equal(wl_quantize_row(type, v, dst, n), 0);
    free(v);
}

/* Exact activations: Q8_0 quants with scale 1/4, in [-127, 127] or narrower for long rows so
 * that n * max|q_w| * max|q_x| < 2^24 (every partial sum of the row is then an integer multiple
 * of d_w * d_x below 2^24 of them: exact); floats: integers in [-8, 8]. */
static void make_exact_act_row(uint32_t type, int64_t n, unsigned char *dst)
{
    if (!is_float_kind(type)) {
        int64_t wmax = type == WL_TYPE_Q8_0 ? 128 : 8;
        int64_t xmax = ((1 << 24) - 1) / (n * wmax);
        int qmax = (int)(xmax < 127 ? xmax : 127);
        uint16_t d = 0x3400; /* 0.25 */
        for (int64_t b = 0; b < n / WL_QK; b++) {
            unsigned char *blk = dst + (size_t)b * sizeof(wl_block_q8_0);
            memcpy(blk, &d, 2);
            for (int j = 0; j < WL_QK; j++)
                blk[2 + j] = (unsigned char)(int8_t)rng_int(-qmax, qmax);
        }
        return;
    }
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)rng_int(-8, 8);
    wl_kernels(WL_ISA_SCALAR)->quantize_act[wl_act_type(type)](v, dst, n);
    free(v);
}

/* Random weights: floats in [-1, 1) stored in the type (quantized with wl_quantize_row). */
static void make_random_weight_row(uint32_t type, int64_t n, unsigned char *dst)
{
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = rng_float();
    assert_int_equal(wl_quantize_row(type, v, dst, n), 0);
    free(v);
}

/* Random activations: floats converted by the scalar activation converter. */
static void make_random_act_row(uint32_t act_type, int64_t n, unsigned char *dst)
{
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = rng_float() * 3.0f;
    wl_kernels(WL_ISA_SCALAR)->quantize_act[act_type](v, dst, n);
    free(v);
}

/* The byte offsets of the scale d and of the min field (m or dmin) in a block of a format
 * with mins, or -1. */
static void min_fields(uint32_t type, int *d_at, int *m_at)
{
    *d_at = 0;
    *m_at = 2;
    if (type == WL_TYPE_Q2_K) {
        *d_at = 80;
        *m_at = 82;
    } else if (type != WL_TYPE_Q4_1 && type != WL_TYPE_Q5_1 && type != WL_TYPE_Q4_K &&
               type != WL_TYPE_Q5_K) {
        *d_at = *m_at = -1;
    }
}

/* Splits a weight row into its scale parts and min parts: dequantized with the min field
 * zeroed, and with the scale zeroed (both exact in float). */
static void split_weight_row(uint32_t type, int64_t n, const unsigned char *row, double *scale,
                             double *min)
{
    const size_t bytes = wl_row_bytes(type, (uint64_t)n), bb = wl_type_get(type)->type_size;
    unsigned char *copy = malloc(bytes);
    float *v = malloc((size_t)n * sizeof *v);
    int d_at, m_at;
    min_fields(type, &d_at, &m_at);
    for (int part = 0; part < 2; part++) {
        memcpy(copy, row, bytes);
        if (m_at >= 0)
            for (size_t b = 0; b < bytes / bb; b++)
                memset(copy + b * bb + (part == 0 ? m_at : d_at), 0, 2);
        assert_int_equal(wl_dequantize_row(type, copy, v, n), 0);
        for (int64_t i = 0; i < n; i++) {
            if (part == 0)
                scale[i] = v[i];
            else
                min[i] = m_at >= 0 ? v[i] : 0.0;
        }
    }
    free(copy);
    free(v);
}

/* An activation row's values d * q, exactly (Q8_K's float d times q may need more than a
 * float's precision). */
static void act_values(uint32_t act, int64_t n, const unsigned char *row, double *out)
{
    if (act == WL_TYPE_Q8_K) {
        for (int64_t b = 0; b < n / WL_QK_K; b++) {
            wl_block_q8_k blk;
            memcpy(&blk, row + (size_t)b * sizeof blk, sizeof blk);
            for (int i = 0; i < WL_QK_K; i++)
                out[b * WL_QK_K + i] = (double)blk.d * blk.qs[i];
        }
        return;
    }
    float *v = malloc((size_t)n * sizeof *v);
    assert_int_equal(wl_dequantize_row(act, row, v, n), 0);
    for (int64_t i = 0; i < n; i++)
        out[i] = v[i];
    free(v);
}

/* Kinds of test data (make_problem's `exact`). */
enum { DATA_RANDOM = 0, DATA_EXACT = 1, DATA_EXTREME = 2 };

/* The byte offsets of the half-float fields of a block (d, then the min m / dmin or -1). */
static void half_fields(uint32_t type, int *d_at, int *m_at)
{
    min_fields(type, d_at, m_at);
    if (*d_at < 0) {
        *d_at = type == WL_TYPE_Q3_K ? 108 : type == WL_TYPE_Q6_K ? 208 : 0;
        *m_at = -1;
    }
}

/* Extreme weights: every quant byte random (so every bit pattern of quants, sub-block scales,
 * mins and high bits occurs: Q6_K scales of -128, 6-bit scales and mins of 63, all fifth bits
 * set, ...), with finite half scales of either sign between 2^-14 and 2^2. */
static void make_extreme_weight_row(uint32_t type, int64_t n, unsigned char *dst)
{
    const size_t bb = wl_type_get(type)->type_size;
    int d_at, m_at;
    half_fields(type, &d_at, &m_at);
    for (int64_t b = 0; b < n / wl_type_get(type)->block_size; b++) {
        unsigned char *blk = dst + (size_t)b * bb;
        for (size_t j = 0; j < bb; j++)
            blk[j] = (unsigned char)rng_next();
        for (int k = 0; k < 2; k++) {
            int at = k ? m_at : d_at;
            if (at < 0)
                continue;
            uint16_t h = wl_fp32_to_fp16(ldexpf(rng_float(), rng_int(-13, 2)));
            memcpy(blk + at, &h, 2);
        }
    }
}

/* Extreme activations: half of the values at +-3 (the largest magnitude of their block, so
 * their quants are +-127), the others random. */
static void make_extreme_act_row(uint32_t act_type, int64_t n, unsigned char *dst)
{
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = rng_int(0, 1) ? (rng_int(0, 1) ? 3.0f : -3.0f) : rng_float() * 3.0f;
    wl_kernels(WL_ISA_SCALAR)->quantize_act[act_type](v, dst, n);
    free(v);
}

static problem make_problem(uint32_t type, int64_t n, int64_t rows, int64_t ntok, int exact)
{
    problem p = {.type = type, .n = n, .rows = rows, .ntok = ntok};
    uint32_t act = wl_act_type(type);
    p.w_stride = wl_row_bytes(type, (uint64_t)n) + 3; /* odd padding: unaligned rows */
    p.x_stride = wl_act_row_bytes(type, n) + 64;
    p.w = calloc(1, 1 + (size_t)rows * p.w_stride);
    p.x = aligned_alloc(64, ((size_t)ntok * p.x_stride + 63) / 64 * 64);
    p.w_scale = malloc((size_t)(rows * n) * sizeof(double));
    p.w_min = malloc((size_t)(rows * n) * sizeof(double));
    p.x_values = malloc((size_t)(ntok * n) * sizeof(double));
    assert_non_null(p.w);
    assert_non_null(p.x);
    for (int64_t r = 0; r < rows; r++) {
        unsigned char *row = p.w + 1 + (size_t)r * p.w_stride;
        if (exact == DATA_EXTREME)
            make_extreme_weight_row(type, n, row);
        else if (exact)
            make_exact_weight_row(type, n, row);
        else
            make_random_weight_row(type, n, row);
        split_weight_row(type, n, row, p.w_scale + r * n, p.w_min + r * n);
    }
    for (int64_t t = 0; t < ntok; t++) {
        unsigned char *row = p.x + (size_t)t * p.x_stride;
        if (exact == DATA_EXTREME)
            make_extreme_act_row(act, n, row);
        else if (exact)
            make_exact_act_row(type, n, row);
        else
            make_random_act_row(act, n, row);
        act_values(act, n, row, p.x_values + t * n);
    }
    return p;
}

static void free_problem(problem *p)
{
    free(p->w);
    free(p->x);
    free(p->w_scale);
    free(p->w_min);
    free(p->x_values);
}

/* ---- the oracle and the error bound ----------------------------------------------------- */

/* The exact dot product of row r and token t (in double: every product of two floats is exact
 * in double, and for our sizes the double sum is far more accurate than any float result), and
 * the sum of the absolute values of its terms. Q4_1 / Q5_1 take their min terms m_w * s_x from
 * the activation's s, as the kernels do (s is d * sum(q) rounded to a half, not the sum of the
 * dequantized values). */
static double exact_dot(const problem *p, int64_t r, int64_t t, double *abs_sum)
{
    const double *ws = p->w_scale + r * p->n, *wm = p->w_min + r * p->n;
    const double *x = p->x_values + t * p->n;
    double s = 0, a = 0;
    for (int64_t i = 0; i < p->n; i++) {
        s += ws[i] * x[i] + wm[i] * x[i];
        a += fabs(ws[i] * x[i]) + fabs(wm[i] * x[i]);
    }
    if (p->type == WL_TYPE_Q4_1 || p->type == WL_TYPE_Q5_1) {
        s = a = 0;
        for (int64_t i = 0; i < p->n; i++) {
            s += ws[i] * x[i];
            a += fabs(ws[i] * x[i]);
        }
        const size_t wb = wl_type_get(p->type)->type_size;
        for (int64_t b = 0; b < p->n / WL_QK; b++) {
            uint16_t m, sx;
            memcpy(&m, weight_row(p, r) + (size_t)b * wb + 2, 2);
            memcpy(&sx, act_row(p, t) + (size_t)b * sizeof(wl_block_q8_1) + 2, 2);
            double term = (double)wl_fp16_to_fp32(m) * (double)wl_fp16_to_fp32(sx);
            s += term;
            a += fabs(term);
        }
    }
    *abs_sum = a;
    return s;
}

/* Float rounding bound for one computed dot product of n terms (Higham, Accuracy and Stability
 * of Numerical Algorithms, ch. 3): whatever the order of the additions and whether products are
 * fused, a computed sum of n products differs from the exact one by at most
 * gamma(n + 2) * sum |w_i x_i|, gamma(k) = k u / (1 - k u), u = 2^-24. The block kernels fit
 * the same bound: their group sums are exact integers, d_w * d_x is exact (two 11-bit
 * significands), and what remains is one rounding per (block, lane) FMA and the float additions
 * of the lanes, fewer than n + 2 roundings on any path. */
static double gamma_n(int64_t n)
{
    const double u = ldexp(1.0, -24);
    return (double)n * u / (1.0 - (double)n * u);
}

static double tolerance(int64_t n, double abs_sum)
{
    return gamma_n(n + 2) * abs_sum + 1e-30;
}

/* ---- activation converters -------------------------------------------------------------- */

/* Floats of every kind for the float converters: random bit patterns (NaN, Inf, denormals),
 * values around the half range, exact ties of half and bfloat16 rounding. */
static float special_float(void)
{
    uint32_t u;
    switch (rng_int(0, 4)) {
    case 0:
        u = (uint32_t)rng_next();
        break;
    case 1: {
        float f = ldexpf(rng_float(), rng_int(-30, 17));
        memcpy(&u, &f, 4);
        break;
    }
    case 2: /* a half tie: 13 low bits 0x1000 */
        u = ((uint32_t)rng_next() & 0xffffe000u) | 0x1000u;
        break;
    case 3: /* a bfloat16 tie */
        u = ((uint32_t)rng_next() & 0xffff0000u) | 0x8000u;
        break;
    default: {
        static const uint32_t fixed[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                         0x7f800001u, 0x00000001u, 0x80000000u, 0x477ff000u,
                                         0x477fefffu, 0x33000000u, 0x7f7fffffu, 0x00800000u};
        u = fixed[rng_int(0, (int)(sizeof fixed / sizeof fixed[0]) - 1)];
    }
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Every family's converter of act_type writes the scalar bytes, for n values from x. */
static void check_act_converter(uint32_t act_type, const float *x, int64_t n, const char *what)
{
    size_t bytes = wl_row_bytes(act_type, (uint64_t)n);
    unsigned char *want = malloc(bytes + 1), *got = malloc(bytes + 2);
    const wl_kernel_table *fam[WL_ISA_COUNT];
    int nf = n_families(fam);
    fam[0]->quantize_act[act_type](x, want, n);
    for (int f = 1; f < nf; f++) {
        memset(got, 0xa5, bytes + 2);
        fam[f]->quantize_act[act_type](x, got + 1, n); /* unaligned destination */
        if (memcmp(got + 1, want, bytes) != 0)
            fail_msg("%s: %s activations (n=%lld, %s) differ from the scalar ones",
                     wl_isa_name(fam[f]->isa), wl_type_name(act_type), (long long)n, what);
        if (got[0] != 0xa5 || got[bytes + 1] != 0xa5)
            fail_msg("%s: %s converter wrote outside its row", wl_isa_name(fam[f]->isa),
                     wl_type_name(act_type));
    }
    free(want);
    free(got);
}

static void test_act_converters_float(void **state)
{
    (void)state;
    enum { N = 1031 };
    static float x[N];
    static const uint32_t kinds[] = {WL_TYPE_F32, WL_TYPE_F16, WL_TYPE_BF16};
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < N; i++)
            x[i] = round % 2 ? special_float() : rng_float() * ldexpf(1.0f, rng_int(-20, 20));
        for (size_t k = 0; k < 3; k++)
            for (int64_t n = 1; n <= 40; n++) /* every tail of the 4, 8, 16-wide loops */
                check_act_converter(kinds[k], x + rng_int(0, 100), n, "tails");
        for (size_t k = 0; k < 3; k++)
            check_act_converter(kinds[k], x, N, round % 2 ? "special values" : "random");
    }
    /* the scalar converters are the library's rounding functions */
    const wl_kernel_table *s = wl_kernels(WL_ISA_SCALAR);
    uint16_t h[N];
    for (int i = 0; i < N; i++)
        x[i] = special_float();
    s->quantize_act[WL_TYPE_F16](x, h, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(h[i], wl_fp32_to_fp16(x[i]));
    s->quantize_act[WL_TYPE_BF16](x, h, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(h[i], wl_fp32_to_bf16(x[i]));
}

/* Block-quantized activations from finite values of many magnitudes, with ties and zero
 * blocks. */
static void test_act_converters_blocks(void **state)
{
    (void)state;
    enum { N = 256 * 12 };
    static float x[N];
    for (int round = 0; round < 60; round++) {
        float scale = ldexpf(1.0f, rng_int(-30, 30));
        for (int i = 0; i < N; i++)
            x[i] = rng_float() * scale;
        if (round % 3 == 1) /* coarse values: many products land exactly on .5 */
            for (int i = 0; i < N; i++)
                x[i] = (float)rng_int(-254, 254) * 0.5f;
        if (round % 5 == 2) /* blocks of zeros and of tiny values */
            for (int i = 0; i < N; i++)
                x[i] = (i / 32) % 2 ? 0.0f : x[i] * 1e-39f;
        for (size_t k = 0; k < N_ACT_TYPES; k++) {
            uint32_t at = ACT_TYPES[k];
            if (is_float_kind(at))
                continue;
            int64_t blk = wl_type_get(at)->block_size;
            check_act_converter(at, x, N, "random");
            check_act_converter(at, x + blk, blk, "one block");
        }
    }
}

/* The scalar Q8_0 activations are llama.cpp's x86 run-time rule: d = amax / 127 as a half,
 * q = x * (127 / amax) rounded to nearest even. */
static void test_act_q8_0_rule(void **state)
{
    (void)state;
    float x[64];
    wl_block_q8_0 q[2];
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 64; i++)
            x[i] = round % 2 ? rng_float() * 10.0f : (float)rng_int(-254, 254) * 0.5f;
        wl_kernels(WL_ISA_SCALAR)->quantize_act[WL_TYPE_Q8_0](x, q, 64);
        for (int b = 0; b < 2; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[32 * b + j]));
            assert_int_equal(q[b].d, wl_fp32_to_fp16(amax / 127.0f));
            for (int j = 0; j < 32; j++)
                assert_int_equal(q[b].qs[j], (int)nearbyintf(x[32 * b + j] * (127.0f / amax)));
        }
    }
}

/* ---- vec_dot ---------------------------------------------------------------------------- */

/* Every family's vec_dot equals the scalar one, bit for bit; on exact data all equal the exact
 * dot product. */
static void check_vec_dot(uint32_t type, int64_t n, int exact)
{
    problem p = make_problem(type, n, 1, 1, exact);
    double abs_sum;
    double want = exact_dot(&p, 0, 0, &abs_sum);
    const wl_kernel_table *fam[WL_ISA_COUNT];
    int nf = n_families(fam);
    float ref;
    fam[0]->vec_dot[type](n, &ref, weight_row(&p, 0), act_row(&p, 0));
    if (exact && (double)ref != want)
        fail_msg("scalar %s n=%lld exact: got %.9g want %.9g", wl_type_name(type), (long long)n,
                 (double)ref, want);
    for (int f = 1; f < nf; f++) {
        float got = NAN;
        fam[f]->vec_dot[type](n, &got, weight_row(&p, 0), act_row(&p, 0));
        if (memcmp(&got, &ref, sizeof got) != 0)
            fail_msg("%s %s n=%lld%s: got %.9g, scalar %.9g", wl_isa_name(fam[f]->isa),
                     wl_type_name(type), (long long)n, exact ? " exact" : "", (double)got,
                     (double)ref);
    }
    free_problem(&p);
}

/* Row lengths for float kinds: around every multiple of 8, 16, 32 and 64, and long ones. */
static const int64_t FLOAT_LENGTHS[] = {1,   2,   3,   4,   5,   7,   8,   9,    15,   16,  17,
                                        23,  24,  31,  32,  33,  47,  48,  63,   64,   65,  100,
                                        127, 128, 129, 172, 255, 256, 257, 1000, 1024, 4099};

static void test_vec_dot(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        for (int exact = 0; exact <= 1; exact++) {
            if (exact && type != WL_TYPE_F32 && type != WL_TYPE_F16 && type != WL_TYPE_BF16 &&
                type != WL_TYPE_Q8_0 && type != WL_TYPE_Q4_0)
                continue;
            if (is_float_kind(type)) {
                for (size_t li = 0; li < sizeof FLOAT_LENGTHS / sizeof FLOAT_LENGTHS[0]; li++)
                    check_vec_dot(type, FLOAT_LENGTHS[li], exact);
                continue;
            }
            const int64_t blk = block_of(type);
            for (int nb = 1; nb <= 20; nb++)
                check_vec_dot(type, nb * blk, exact);
            check_vec_dot(type, (blk == 32 ? 128 : 24) * blk, exact);
        }
    }
}

/* The scalar reference against float64 "dequantize both rows, then a dot product". */
static void test_scalar_vs_float64(void **state)
{
    (void)state;
    const wl_kernel_table *scalar = wl_kernels(WL_ISA_SCALAR);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        const int64_t blk = block_of(type);
        for (int k = 1; k <= 24; k++) {
            int64_t n = is_float_kind(type) ? FLOAT_LENGTHS[k + 6] : (blk > 32 ? k % 8 + 1 : k) * blk;
            problem p = make_problem(type, n, 1, 1, 0);
            float got;
            scalar->vec_dot[type](n, &got, weight_row(&p, 0), act_row(&p, 0));
            double abs_sum, want = exact_dot(&p, 0, 0, &abs_sum);
            double tol = tolerance(n, abs_sum);
            if (!(fabs((double)got - want) <= tol))
                fail_msg("scalar %s n=%lld: %.9g, float64 %.9g (bound %.3g)", wl_type_name(type),
                         (long long)n, (double)got, want, tol);
            free_problem(&p);
        }
    }
}

/* ---- matmul ----------------------------------------------------------------------------- */

/* Every family's matmul over rows [r0, r1) of `rows` and ntok tokens equals the scalar one bit
 * for bit, and writes nothing else of y. */
static void check_matmul_data(uint32_t type, int64_t n, int64_t rows, int64_t r0, int64_t r1,
                              int64_t ntok, int data)
{
    const size_t ldy = (size_t)rows + 5;
    const size_t ny = (size_t)ntok * ldy;
    problem p = make_problem(type, n, rows, ntok, data);
    float *y = malloc(ny * sizeof *y), *ref = malloc(ny * sizeof *ref);
    const wl_kernel_table *fam[WL_ISA_COUNT];
    int nf = n_families(fam);
    for (int f = 0; f < nf; f++) {
        for (size_t i = 0; i < ny; i++)
            y[i] = NAN;
        fam[f]->matmul[type](n, p.w + 1, p.w_stride, r0, r1, p.x, p.x_stride, ntok, y, ldy);
        if (f == 0)
            memcpy(ref, y, ny * sizeof *y);
        for (int64_t t = 0; t < ntok; t++) {
            for (size_t r = 0; r < ldy; r++) {
                float got = y[(size_t)t * ldy + r];
                if ((int64_t)r < r0 || (int64_t)r >= r1) {
                    if (!isnan(got))
                        fail_msg("%s %s: wrote outside the rows (t=%lld r=%zu)",
                                 wl_isa_name(fam[f]->isa), wl_type_name(type), (long long)t, r);
                    continue;
                }
                float want = ref[(size_t)t * ldy + r];
                if (f == 0 && isnan(got))
                    fail_msg("scalar %s: no result at t=%lld r=%zu", wl_type_name(type),
                             (long long)t, r);
                if (memcmp(&got, &want, sizeof got) != 0)
                    fail_msg("%s %s n=%lld ntok=%lld rows [%lld, %lld): y[t=%lld][r=%zu] = %.9g, "
                             "scalar %.9g",
                             wl_isa_name(fam[f]->isa), wl_type_name(type), (long long)n,
                             (long long)ntok, (long long)r0, (long long)r1, (long long)t, r,
                             (double)got, (double)want);
            }
        }
    }
    free(y);
    free(ref);
    free_problem(&p);
}

static void check_matmul(uint32_t type, int64_t n, int64_t rows, int64_t r0, int64_t r1,
                         int64_t ntok)
{
    check_matmul_data(type, n, rows, r0, r1, ntok, DATA_RANDOM);
}

static const int64_t NTOKS[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 33};

/* Row ranges: whole, not starting at 0 with 4 + 4 + 2 rows, short ones below one tile. */
static const int64_t RANGES[][3] = {{13, 3, 13}, {16, 0, 16}, {7, 0, 7}, {9, 4, 5}, {5, 1, 3}};

static void test_matmul(void **state)
{
    (void)state;
    static const int64_t float_lengths[] = {1, 7, 16, 17, 31, 100, 172, 257};
    static const int nblocks[] = {1, 2, 3, 5, 7, 20};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        const int64_t blk = block_of(type);
        const size_t nl = is_float_kind(type) ? sizeof float_lengths / sizeof float_lengths[0]
                                              : sizeof nblocks / sizeof nblocks[0];
        for (size_t li = 0; li < nl; li++) {
            int64_t n = is_float_kind(type) ? float_lengths[li] : nblocks[li] * blk;
            if (blk > 32 && nblocks[li] > 5)
                continue; /* k-quant rows: 256 values per block are long enough */
            for (size_t k = 0; k < sizeof NTOKS / sizeof NTOKS[0]; k++)
                for (size_t g = 0; g < sizeof RANGES / sizeof RANGES[0]; g++)
                    if ((k + g + li) % 2 == 0) /* half of the combinations: enough, and quick */
                        check_matmul(type, n, RANGES[g][0], RANGES[g][1], RANGES[g][2], NTOKS[k]);
        }
    }
}

/* Rows long enough that the tokens span more than one token block of the prefill loop. */
static void test_matmul_token_blocks(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        int64_t n = is_float_kind(type) ? 40961 : (block_of(type) == 32 ? 520 : 65) * block_of(type);
        check_matmul(type, n, 6, 1, 6, 35);
    }
}

/* Block formats with random bytes for quants and sub-block scales, against activations at the
 * ends of their range: the extremes of every integer intermediate (the SIMD kernels keep pair
 * sums in int16 and rely on their bounds), bit for bit in every family. */
static void test_matmul_extreme_blocks(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        if (is_float_kind(type))
            continue;
        const int64_t blk = block_of(type);
        for (int round = 0; round < 6; round++) {
            int64_t n = (blk == 32 ? 1 + round * 3 : 1 + round % 3) * blk;
            check_matmul_data(type, n, 9, 0, 9, 1 + round % 5, DATA_EXTREME);
            check_matmul_data(type, n, 13, 3, 13, 1, DATA_EXTREME); /* decode: 4 + 4 + 2 rows */
        }
    }
}

/* The exact oracle through matmul: every family equals the exact dot product on exact data. */
static void test_matmul_exact_data(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        if (!is_float_kind(type) && type != WL_TYPE_Q8_0 && type != WL_TYPE_Q4_0)
            continue;
        int64_t n = is_float_kind(type) ? 301 : 9 * WL_QK, rows = 11, ntok = 6;
        problem p = make_problem(type, n, rows, ntok, 1);
        float y[6 * 11];
        const wl_kernel_table *fam[WL_ISA_COUNT];
        int nf = n_families(fam);
        for (int f = 0; f < nf; f++) {
            fam[f]->matmul[type](n, p.w + 1, p.w_stride, 0, rows, p.x, p.x_stride, ntok, y,
                                 (size_t)rows);
            for (int64_t t = 0; t < ntok; t++)
                for (int64_t r = 0; r < rows; r++) {
                    double abs_sum, want = exact_dot(&p, r, t, &abs_sum);
                    if ((double)y[t * rows + r] != want)
                        fail_msg("%s %s exact: y[%lld][%lld] = %.9g, want %.9g",
                                 wl_isa_name(fam[f]->isa), wl_type_name(type), (long long)t,
                                 (long long)r, (double)y[t * rows + r], want);
                }
        }
        free_problem(&p);
    }
}

/* A (row, token) result is the same bits alone (vec_dot), in a GEMV over any row range and in a
 * GEMM of any batch split into any row ranges, in every family. */
static void test_batch_invariance(void **state)
{
    (void)state;
    enum { ROWS = 23, NTOK = 9 };
    static const int64_t cuts[][6] = {
        {0, 23, -1}, {0, 5, 6, 17, 23, -1}, {0, 4, 8, 12, 16, 23}, {0, 1, 2, 3, 23, -1}};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        int64_t n = is_float_kind(type) ? 301 : (block_of(type) == 32 ? 9 : 2) * block_of(type);
        problem p = make_problem(type, n, ROWS, NTOK, 0);
        float ref[NTOK * ROWS], got[NTOK * ROWS];
        const wl_kernel_table *fam[WL_ISA_COUNT];
        int nf = n_families(fam);
        fam[0]->matmul[type](n, p.w + 1, p.w_stride, 0, ROWS, p.x, p.x_stride, NTOK, ref, ROWS);
        for (int f = 0; f < nf; f++) {
            const wl_kernel_table *k = fam[f];
            for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
                /* batches of 1..NTOK tokens, each over the row ranges of cuts[c] */
                for (int64_t batch = 1; batch <= NTOK; batch++) {
                    for (size_t i = 0; i < sizeof got / sizeof got[0]; i++)
                        got[i] = NAN;
                    for (int64_t t0 = 0; t0 < NTOK; t0 += batch) {
                        int64_t nt = WL_MIN_TEST(batch, NTOK - t0);
                        for (int j = 0; j + 1 < 6 && cuts[c][j + 1] >= 0; j++)
                            k->matmul[type](n, p.w + 1, p.w_stride, cuts[c][j], cuts[c][j + 1],
                                            act_row(&p, t0), p.x_stride, nt, got + t0 * ROWS,
                                            ROWS);
                    }
                    if (memcmp(got, ref, sizeof got) != 0)
                        fail_msg("%s %s: batches of %lld tokens, split %zu differ from scalar",
                                 wl_isa_name(k->isa), wl_type_name(type), (long long)batch, c);
                }
            }
            for (int64_t t = 0; t < NTOK; t++)
                for (int64_t r = 0; r < ROWS; r++) {
                    float v;
                    k->vec_dot[type](n, &v, weight_row(&p, r), act_row(&p, t));
                    if (memcmp(&v, &ref[t * ROWS + r], sizeof v) != 0)
                        fail_msg("%s %s: vec_dot differs from matmul", wl_isa_name(k->isa),
                                 wl_type_name(type));
                }
        }
        free_problem(&p);
    }
}

/* ---- malformed weights ------------------------------------------------------------------ */

/* Weights whose scales (or values) are NaN or Inf: every family returns finite or NaN results
 * (no crash, no undefined behaviour under the sanitizers), and they all agree. */
static void test_malformed_weights(void **state)
{
    (void)state;
    static const uint16_t bad_halves[] = {0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe00};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = TYPES[ti];
        int64_t n = is_float_kind(type) ? 77 : 3 * block_of(type), rows = 8, ntok = 3;
        problem p = make_problem(type, n, rows, ntok, 0);
        /* spoil the first half-float of rows 0..4 of each 1..3 blocks / elements */
        for (int64_t r = 0; r < 5; r++) {
            unsigned char *row = p.w + 1 + (size_t)r * p.w_stride;
            uint16_t h = bad_halves[r];
            if (type == WL_TYPE_F32) {
                float f = wl_fp16_to_fp32(h);
                memcpy(row + 4 * (r % 3), &f, 4);
            } else if (type == WL_TYPE_BF16) {
                uint16_t b = wl_fp32_to_bf16(wl_fp16_to_fp32(h));
                memcpy(row + 2 * (r % 3), &b, 2);
            } else if (type == WL_TYPE_F16) {
                memcpy(row + 2 * (r % 3), &h, 2);
            } else { /* the block's scale d, or (odd rows) its min field */
                int d_at, m_at;
                min_fields(type, &d_at, &m_at);
                size_t at = type == WL_TYPE_Q2_K   ? 80
                            : type == WL_TYPE_Q3_K ? 108
                            : type == WL_TYPE_Q6_K ? 208
                                                   : 0;
                if (m_at >= 0 && r % 2)
                    at = (size_t)m_at;
                memcpy(row + (r % 3) * wl_type_get(type)->type_size + at, &h, 2);
            }
        }
        const wl_kernel_table *fam[WL_ISA_COUNT];
        int nf = n_families(fam);
        float ref[3 * 8], got[3 * 8];
        fam[0]->matmul[type](n, p.w + 1, p.w_stride, 0, rows, p.x, p.x_stride, ntok, ref, rows);
        for (int f = 0; f < nf; f++) {
            fam[f]->matmul[type](n, p.w + 1, p.w_stride, 0, rows, p.x, p.x_stride, ntok, got,
                                 rows);
            for (int i = 0; i < 3 * 8; i++) {
                if (!same_result(got[i], ref[i]))
                    fail_msg("%s %s malformed: y[%d] = %g, scalar %g", wl_isa_name(fam[f]->isa),
                             wl_type_name(type), i, (double)got[i], (double)ref[i]);
            }
        }
        free_problem(&p);
    }
}

/* ---- tables, activation types, ISA choice ----------------------------------------------- */

static void test_tables(void **state)
{
    (void)state;
    assert_non_null(wl_kernels(WL_ISA_SCALAR));
    assert_null(wl_kernels(-1));
    assert_null(wl_kernels(WL_ISA_COUNT));
    assert_non_null(wl_kernels(wl_isa_best()));
    for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
        const wl_kernel_table *k = wl_kernels(isa);
        assert_int_equal(k != NULL, wl_isa_available(isa));
        if (k == NULL)
            continue;
        assert_int_equal(k->isa, isa);
        for (uint32_t t = 0; t < WL_TYPE_COUNT; t++) {
            int want = wl_type_supported(t);
            assert_int_equal(k->vec_dot[t] != NULL, want);
            assert_int_equal(k->matmul[t] != NULL, want);
            if (want)
                assert_non_null(k->quantize_act[wl_act_type(t)]);
        }
        for (size_t a = 0; a < N_ACT_TYPES; a++)
            assert_non_null(k->quantize_act[ACT_TYPES[a]]);
        printf("  family %s available\n", wl_isa_name(isa));
    }
    const wl_cpu_features *f = wl_cpu();
    /* Every SIMD family has its own kernel for every format (so that the comparisons below
     * test it, not a kernel it would keep from the family below): AVX2 and NEON differ from
     * scalar, AVX-512 (with VNNI, which its int8 kernels need) from AVX2. */
    for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
        const wl_kernel_table *k = wl_kernels(isa);
        const wl_kernel_table *below = wl_kernels(isa == WL_ISA_AVX512 ? WL_ISA_AVX2 : WL_ISA_SCALAR);
        if (!k || isa == WL_ISA_SCALAR || (isa == WL_ISA_AVX512 && !f->avx512vnni))
            continue;
        for (size_t i = 0; i < N_TYPES; i++)
            if (k->matmul[TYPES[i]] == below->matmul[TYPES[i]] ||
                k->vec_dot[TYPES[i]] == below->vec_dot[TYPES[i]])
                fail_msg("%s: no kernel of its own for %s", wl_isa_name(isa), wl_type_name(TYPES[i]));
    }
    printf("  cpu: avx2 %d fma %d f16c %d avx512f %d bw %d vl %d dq %d vnni %d bf16 %d "
           "avxvnni %d neon %d dotprod %d amd %d; %d cores; best %s\n",
           f->avx2, f->fma, f->f16c, f->avx512f, f->avx512bw, f->avx512vl, f->avx512dq,
           f->avx512vnni, f->avx512bf16, f->avxvnni, f->neon, f->neon_dotprod, f->amd, wl_cpu_count(),
           wl_isa_name(wl_isa_best()));
    assert_true(wl_cpu_count() >= 1);
}

static void test_act_types(void **state)
{
    (void)state;
    assert_int_equal(wl_act_type(WL_TYPE_F32), WL_TYPE_F32);
    assert_int_equal(wl_act_type(WL_TYPE_F16), WL_TYPE_F16);
    assert_int_equal(wl_act_type(WL_TYPE_BF16), WL_TYPE_BF16);
    assert_int_equal(wl_act_type(WL_TYPE_Q8_0), WL_TYPE_Q8_0);
    assert_int_equal(wl_act_type(WL_TYPE_Q4_0), WL_TYPE_Q8_0);
    assert_int_equal(wl_act_row_bytes(WL_TYPE_F32, 7), 28);
    assert_int_equal(wl_act_row_bytes(WL_TYPE_F16, 7), 14);
    assert_int_equal(wl_act_row_bytes(WL_TYPE_BF16, 9), 18);
    assert_int_equal(wl_act_row_bytes(WL_TYPE_Q4_0, 64), 68);
    assert_int_equal(wl_act_row_bytes(WL_TYPE_Q8_0, 33), 0); /* not whole blocks */
    assert_int_equal(wl_act_row_bytes(WL_TYPE_F32, -1), 0);
}

static void test_isa_pick(void **state)
{
    (void)state;
    /* on an AVX-512 machine */
    assert_int_equal(wl_isa_pick(NULL, WL_ISA_AVX512), WL_ISA_AVX512);
    assert_int_equal(wl_isa_pick("", WL_ISA_AVX512), WL_ISA_AVX512);
    assert_int_equal(wl_isa_pick("scalar", WL_ISA_AVX512), WL_ISA_SCALAR);
    assert_int_equal(wl_isa_pick("avx2", WL_ISA_AVX512), WL_ISA_AVX2);
    assert_int_equal(wl_isa_pick("avx512", WL_ISA_AVX512), WL_ISA_AVX512);
    assert_int_equal(wl_isa_pick("neon", WL_ISA_AVX512), WL_ISA_AVX512);
    assert_int_equal(wl_isa_pick("fastest", WL_ISA_AVX512), WL_ISA_AVX512);
    /* never above what the CPU has */
    assert_int_equal(wl_isa_pick("avx512", WL_ISA_AVX2), WL_ISA_AVX2);
    assert_int_equal(wl_isa_pick("avx2", WL_ISA_SCALAR), WL_ISA_SCALAR);
    assert_int_equal(wl_isa_pick("avx512", WL_ISA_SCALAR), WL_ISA_SCALAR);
    /* aarch64 */
    assert_int_equal(wl_isa_pick("scalar", WL_ISA_NEON), WL_ISA_SCALAR);
    assert_int_equal(wl_isa_pick("avx2", WL_ISA_NEON), WL_ISA_NEON);
    assert_int_equal(wl_isa_pick("neon", WL_ISA_NEON), WL_ISA_NEON);
}

/* Runs this program again with WANDLER_ISA set; it prints the family it picked. Skips the test
 * where the program cannot run itself again: the exec fails (exit 127), or the child does not
 * finish within 10 s (under qemu-user, without binfmt_misc, a forked child may never get to
 * its exec). */
static void pick_in_child(const char *value, char *out, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        if (value)
            setenv("WANDLER_ISA", value, 1);
        else
            unsetenv("WANDLER_ISA");
        execl("/proc/self/exe", "test_kernels", "--print-isa", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    int status = 0, done = 0, eof = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do { /* read until end of file, and wait for the child, for 10 s at most */
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (!eof && poll(&pfd, 1, 10) > 0) {
            ssize_t got = read(fds[0], out + len, cap - 1 - len);
            len += got > 0 ? (size_t)got : 0;
            eof = got <= 0 || len + 1 >= cap;
        } else if (eof) {
            usleep(1000);
        }
        done = waitpid(pid, &status, WNOHANG) == pid;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!done && now.tv_sec - t0.tv_sec < 10);
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(fds[0]);
        skip();
    }
    for (ssize_t got; len + 1 < cap && (got = read(fds[0], out + len, cap - 1 - len)) > 0;)
        len += (size_t)got; /* what is left in the pipe */
    close(fds[0]);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 127)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
    out[len] = '\0';
}

static void test_env_lowers_isa(void **state)
{
    (void)state;
    char got[64];
    const char *best = wl_isa_name(wl_isa_best()); /* this process runs without WANDLER_ISA */
    pick_in_child(NULL, got, sizeof got);
    if (strcmp(got, best) != 0 && strcmp(got, "scalar") != 0)
        skip(); /* /proc/self/exe is not this program (a user-mode emulator runs it) */
    assert_string_equal(got, best);
    pick_in_child("scalar", got, sizeof got);
    assert_string_equal(got, "scalar");
    pick_in_child("avx2", got, sizeof got);
    assert_string_equal(got, wl_isa_available(WL_ISA_AVX2) ? "avx2" : best);
    pick_in_child("avx512", got, sizeof got);
    assert_string_equal(got, best);
    pick_in_child("no-such-isa", got, sizeof got);
    assert_string_equal(got, best);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-isa") == 0) {
        fputs(wl_isa_name(wl_isa_best()), stdout);
        return 0;
    }
    unsetenv("WANDLER_ISA"); /* this process tests every family itself */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_act_types),
        cmocka_unit_test(test_isa_pick),
        cmocka_unit_test(test_env_lowers_isa),
        cmocka_unit_test(test_act_converters_float),
        cmocka_unit_test(test_act_converters_blocks),
        cmocka_unit_test(test_act_q8_0_rule),
        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_scalar_vs_float64),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_matmul_token_blocks),
        cmocka_unit_test(test_matmul_exact_data),
        cmocka_unit_test(test_matmul_extreme_blocks),
        cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_malformed_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
