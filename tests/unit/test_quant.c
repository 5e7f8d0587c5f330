/* test_quant.c - half floats, bfloat16, and the Q8_0 / Q4_0 block formats and quantizers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

/* ---- a small deterministic generator ---------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_float(void)
{
    return (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float float_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits_of_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- references written from the IEEE definitions -------------------------------------- */

/* The value of a finite half, from its fields. */
static double half_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double mag = exp == 0 ? ldexp(mant, -24) : ldexp(1024 + mant, exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

/* float -> half by searching the two neighbouring halves and picking the nearer, ties to the
 * even one; beyond 65504 the next "half" is 65536 (Inf). */
static uint16_t ref_fp32_to_fp16(float f)
{
    uint16_t sign = (uint16_t)(signbit(f) ? 0x8000 : 0);
    double a = fabs((double)f);
    if (isnan(f))
        return 0; /* not used for NaN */
    uint16_t lo = 0, hi = 0x7bff; /* largest finite half with value <= a */
    if (a >= 65504.0) {
        lo = 0x7bff;
    } else {
        while (lo < hi) {
            uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
            if (half_value(mid) <= a)
                lo = mid;
            else
                hi = (uint16_t)(mid - 1);
        }
    }
    double below = half_value(lo);
    double above = lo == 0x7bff ? 65536.0 : half_value((uint16_t)(lo + 1));
    double midpoint = (below + above) / 2; /* exact in double */
    uint16_t pick;
    if (a < midpoint)
        pick = lo;
    else if (a > midpoint)
        pick = (uint16_t)(lo + 1);
    else
        pick = (lo & 1) ? (uint16_t)(lo + 1) : lo;
    if (pick >= 0x7c00)
        pick = 0x7c00;
    return (uint16_t)(sign | pick);
}

/* float -> bf16: the upper 16 bits, rounded to nearest even on the lower 16. */
static uint16_t ref_fp32_to_bf16(float f)
{
    uint32_t u = bits_of_float(f);
    double v = (double)f;
    float down = float_of_bits(u & 0xffff0000u);
    float up = float_of_bits((u & 0xffff0000u) + 0x10000u);
    double up_value = isinf(up) ? copysign(ldexp(1.0, 128), v) : (double)up; /* past FLT_MAX */
    double dd = fabs(v - (double)down), du = fabs(up_value - v);
    if (dd < du)
        return (uint16_t)(u >> 16);
    if (du < dd)
        return (uint16_t)((u >> 16) + 1);
    return (uint16_t)(((u >> 16) & 1) ? (u >> 16) + 1 : (u >> 16));
}

/* ---- half floats ------------------------------------------------------------------------ */

static void test_fp16_all_halves(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = wl_fp16_to_fp32((uint16_t)h);
        int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
        if (exp == 0x1f && mant != 0) {
            assert_true(isnan(f));
            assert_int_equal(signbit(f) != 0, (h & 0x8000) != 0);
            /* NaN comes back quiet, with the payload */
            assert_int_equal(wl_fp32_to_fp16(f), h | 0x0200);
            continue;
        }
        if (exp == 0x1f) {
            assert_true(isinf(f));
        } else {
            assert_true((double)f == half_value((uint16_t)h));
        }
        assert_int_equal(signbit(f) != 0, (h & 0x8000) != 0);
        assert_int_equal(wl_fp32_to_fp16(f), h); /* exact round trip, -0 included */
    }
}

static void check_fp16_rounding(float f)
{
    if (isnan(f))
        return;
    uint16_t got = wl_fp32_to_fp16(f), want = ref_fp32_to_fp16(f);
    if (got != want)
        fail_msg("fp16(%a) = 0x%04x, want 0x%04x", (double)f, got, want);
}

static void test_fp16_rounding(void **state)
{
    (void)state;
    /* floats of every exponent: random bit patterns */
    for (int i = 0; i < 300000; i++)
        check_fp16_rounding(float_of_bits((uint32_t)rng_next()));
    /* floats in and around the half range, subnormals included */
    for (int i = 0; i < 300000; i++) {
        int e = (int)(rng_next() % 44) - 28; /* 2^-28 .. 2^15 */
        check_fp16_rounding(ldexpf(rng_float(), e));
    }
    /* exact midpoints between neighbouring halves (ties), and their float neighbours */
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float mid = (float)((half_value((uint16_t)h) + half_value((uint16_t)(h + 1))) / 2);
        check_fp16_rounding(mid);
        check_fp16_rounding(-mid);
        check_fp16_rounding(nextafterf(mid, 0.0f));
        check_fp16_rounding(nextafterf(mid, INFINITY));
    }
    assert_int_equal(wl_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(wl_fp32_to_fp16(65519.99f), 0x7bff);
    assert_int_equal(wl_fp32_to_fp16(65520.0f), 0x7c00); /* tie to even: Inf */
    assert_int_equal(wl_fp32_to_fp16(-1e9f), 0xfc00);
    assert_int_equal(wl_fp32_to_fp16(ldexpf(1.0f, -25)), 0x0000);                    /* tie to 0 */
    assert_int_equal(wl_fp32_to_fp16(nextafterf(ldexpf(1.0f, -25), 1.0f)), 0x0001); /* 2^-24 */
    assert_int_equal(wl_fp32_to_fp16(ldexpf(3.0f, -25)), 0x0002); /* 1.5 units: tie to even 2 */
    assert_int_equal(wl_fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(wl_fp32_to_fp16(-2.0f), 0xc000);
    assert_int_equal(wl_fp32_to_fp16(0.5f), 0x3800);
    assert_true(isnan(wl_fp16_to_fp32(wl_fp32_to_fp16(NAN))));
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
/* The F16C instruction is the hardware's IEEE conversion: ours must agree with it everywhere. */
__attribute__((target("f16c"))) static uint16_t hw_fp32_to_fp16(float f)
{
    return (uint16_t)_cvtss_sh(f, 0);
}

static int have_f16c(void)
{
    unsigned int a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) && (c & (1u << 28));
}

static void test_fp16_matches_f16c(void **state)
{
    (void)state;
    if (!have_f16c())
        skip();
    for (int i = 0; i < 1000000; i++) {
        float f = float_of_bits((uint32_t)rng_next());
        uint16_t got = wl_fp32_to_fp16(f), want = hw_fp32_to_fp16(f);
        if (got != want)
            fail_msg("fp16(%a) = 0x%04x, F16C says 0x%04x", (double)f, got, want);
    }
}
#else
static void test_fp16_matches_f16c(void **state)
{
    (void)state;
    skip();
}
#endif

/* ---- bfloat16 --------------------------------------------------------------------------- */

static void test_bf16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = wl_bf16_to_fp32((uint16_t)h);
        if (isnan(f))
            assert_true(isnan(wl_bf16_to_fp32(wl_fp32_to_bf16(f))));
        else
            assert_int_equal(wl_fp32_to_bf16(f), h);
    }
    for (int i = 0; i < 300000; i++) {
        float f = float_of_bits((uint32_t)rng_next());
        if (isnan(f) || isinf(f))
            continue;
        uint16_t got = wl_fp32_to_bf16(f), want = ref_fp32_to_bf16(f);
        if (got != want)
            fail_msg("bf16(%a) = 0x%04x, want 0x%04x", (double)f, got, want);
    }
    assert_int_equal(wl_fp32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(wl_fp32_to_bf16(float_of_bits(0x3f808000u)), 0x3f80); /* tie: even */
    assert_int_equal(wl_fp32_to_bf16(float_of_bits(0x3f818000u)), 0x3f82); /* tie: even */
    assert_int_equal(wl_fp32_to_bf16(float_of_bits(0x3f808001u)), 0x3f81);
}

/* ---- hand-built blocks ------------------------------------------------------------------ */

static void test_q8_0_known_block(void **state)
{
    (void)state;
    wl_block_q8_0 blk;
    blk.d = 0x3800; /* 0.5 */
    for (int j = 0; j < 32; j++)
        blk.qs[j] = (int8_t)(j * 8 - 128 + (j == 0)); /* -127, -120, ..., 120 */
    float out[32];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_0, &blk, out, 32), 0);
    for (int j = 0; j < 32; j++)
        assert_true(out[j] == 0.5f * (float)blk.qs[j]);
    assert_true(out[0] == -63.5f);
    assert_true(out[31] == 60.0f);
}

static void test_q4_0_nibble_order(void **state)
{
    (void)state;
    wl_block_q4_0 blk;
    blk.d = 0x3800; /* 0.5 */
    for (int j = 0; j < 16; j++)
        blk.qs[j] = (uint8_t)(j | ((15 - j) << 4)); /* low nibble j, high nibble 15 - j */
    float out[32];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q4_0, &blk, out, 32), 0);
    for (int j = 0; j < 16; j++) {
        assert_true(out[j] == 0.5f * (float)(j - 8));           /* value j: low nibble of qs[j] */
        assert_true(out[j + 16] == 0.5f * (float)(15 - j - 8)); /* value j+16: high nibble */
    }
    assert_true(out[0] == -4.0f);
    assert_true(out[15] == 3.5f);
    assert_true(out[16] == 3.5f);
    assert_true(out[31] == -4.0f);

    /* and the quantizer packs the same way */
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = j < 16 ? (float)(j - 8) : 0.0f; /* max magnitude -8: d = 1 */
    wl_block_q4_0 q;
    assert_int_equal(wl_quantize_row(WL_TYPE_Q4_0, x, &q, 32), 0);
    assert_int_equal(q.d, 0x3c00);
    for (int j = 0; j < 16; j++)
        assert_int_equal(q.qs[j], j | (8 << 4));
}

/* Rounding rules that tell ggml's quantizers apart from other plausible ones. */
static void test_quantizer_rounding(void **state)
{
    (void)state;
    /* Q8_0: amax 127 gives d = 1 exactly; halves round away from zero (roundf) */
    float x[32] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -126.5f, 3.49f, 0.0f, -0.0f};
    wl_block_q8_0 q8;
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, &q8, 32), 0);
    assert_int_equal(q8.d, 0x3c00);
    const int8_t want8[10] = {127, 3, -3, 1, -1, 2, -127, 3, 0, 0};
    for (int j = 0; j < 10; j++)
        assert_int_equal(q8.qs[j], want8[j]);

    /* Q4_0: the signed value of largest magnitude maps to -8 (d = max / -8); x/d + 8.5 is
     * truncated, so halves round up, and +8 clamps to nibble 15 */
    float y[32] = {-8.0f, 0.5f, -0.5f, 1.49f, 1.5f, 7.6f, 8.0f, -7.5f, 2.5f, -2.5f};
    wl_block_q4_0 q4;
    assert_int_equal(wl_quantize_row(WL_TYPE_Q4_0, y, &q4, 32), 0);
    assert_int_equal(q4.d, 0x3c00); /* -8 / -8 = 1 */
    const int want4[10] = {0, 9, 8, 9, 10, 15, 15, 1, 11, 6}; /* nibbles = q + 8 */
    for (int j = 0; j < 10; j++)
        assert_int_equal(q4.qs[j] & 0x0f, want4[j]);
    /* the high nibbles hold values 16..31, all 0: nibble 8 */
    for (int j = 0; j < 16; j++)
        assert_int_equal(q4.qs[j] >> 4, 8);

    /* a positive maximum gives a negative scale */
    float z[32] = {0};
    z[5] = 4.0f;
    z[6] = -2.0f;
    assert_int_equal(wl_quantize_row(WL_TYPE_Q4_0, z, &q4, 32), 0);
    assert_true(wl_fp16_to_fp32(q4.d) == -0.5f);
    assert_int_equal(q4.qs[5] & 0x0f, 0);  /* 4 / -0.5 = -8 */
    assert_int_equal(q4.qs[6] & 0x0f, 12); /* -2 / -0.5 = 4 */

    /* all zeros: d = 0 and every q is the zero point */
    float zero[32] = {0};
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, zero, &q8, 32), 0);
    assert_int_equal(q8.d, 0);
    for (int j = 0; j < 32; j++)
        assert_int_equal(q8.qs[j], 0);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q4_0, zero, &q4, 32), 0);
    for (int j = 0; j < 16; j++)
        assert_int_equal(q4.qs[j], 0x88);
}

/* ggml's reference quantizers, written again here from their definitions, as the oracle that
 * pins the byte-exact output of files we write. */
static void ggml_q8_0_block(const float *x, wl_block_q8_0 *y)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y->d = wl_fp32_to_fp16(d);
    for (int j = 0; j < 32; j++)
        y->qs[j] = (int8_t)roundf(x[j] * id);
}

static void ggml_q4_0_block(const float *x, wl_block_q4_0 *y)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y->d = wl_fp32_to_fp16(d);
    for (int j = 0; j < 16; j++) {
        const float x0 = x[j] * id, x1 = x[16 + j] * id;
        int8_t i0 = (int8_t)(x0 + 8.5f), i1 = (int8_t)(x1 + 8.5f);
        uint8_t n0 = (uint8_t)(i0 < 15 ? i0 : 15), n1 = (uint8_t)(i1 < 15 ? i1 : 15);
        y->qs[j] = (uint8_t)(n0 | (n1 << 4));
    }
}

static void test_quantizers_match_ggml(void **state)
{
    (void)state;
    enum { NB = 64 };
    float x[NB * 32];
    wl_block_q8_0 got8[NB], want8[NB];
    wl_block_q4_0 got4[NB], want4[NB];
    for (int round = 0; round < 200; round++) {
        float scale = ldexpf(1.0f, (int)(rng_next() % 40) - 20);
        for (int i = 0; i < NB * 32; i++)
            x[i] = rng_float() * scale;
        if (round % 4 == 0) /* coarse values: many exact halves after scaling */
            for (int i = 0; i < NB * 32; i++)
                x[i] = (float)((int)(x[i] / scale * 16.0f)) / 4.0f;
        assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, got8, NB * 32), 0);
        assert_int_equal(wl_quantize_row(WL_TYPE_Q4_0, x, got4, NB * 32), 0);
        for (int b = 0; b < NB; b++) {
            ggml_q8_0_block(x + 32 * b, &want8[b]);
            ggml_q4_0_block(x + 32 * b, &want4[b]);
        }
        assert_memory_equal(got8, want8, sizeof got8);
        assert_memory_equal(got4, want4, sizeof got4);
    }
}

/* The real oracle: the stories260K files in the shared test data that llama.cpp's quantizer
 * made from the F32 file (llama-quantize without an importance matrix, so its reference
 * rounding). Quantizing every F32 tensor again must give the same bytes, tensor by tensor. */
static void check_requantized(const char *quantized_file)
{
    wandler_error err;
    gguf_file *f32 = NULL, *q = NULL;
    assert_int_equal(gguf_open(wl_test_shared("models/stories260K.gguf"), &f32, &err), WANDLER_OK);
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s", quantized_file);
    assert_int_equal(gguf_open(wl_test_shared(rel), &q, &err), WANDLER_OK);
    int compared = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(q); i++) {
        const gguf_tensor *tq = gguf_tensor_at(q, i);
        const gguf_tensor *tf = gguf_find_tensor(f32, tq->name);
        assert_non_null(tf);
        if (tq->type == WL_TYPE_F32 || !wl_type_supported(tq->type))
            continue;
        assert_int_equal(tf->type, WL_TYPE_F32);
        uint64_t n = tf->nbytes / sizeof(float);
        float *values = malloc(n * sizeof *values);
        unsigned char *ours = malloc(tq->nbytes);
        memcpy(values, tf->data, n * sizeof *values); /* file data: copy, never cast */
        assert_int_equal(wl_quantize_row(tq->type, values, ours, (int64_t)n), 0);
        if (memcmp(ours, tq->data, tq->nbytes) != 0)
            fail_msg("%s: %s (%s) differs from llama.cpp's bytes", quantized_file, tq->name,
                     wl_type_name(tq->type));
        free(values);
        free(ours);
        compared++;
    }
    assert_true(compared >= 10);
    gguf_close(q);
    gguf_close(f32);
}

static void test_matches_llama_cpp_files(void **state)
{
    (void)state;
    check_requantized("stories260K-Q8_0.gguf");
    check_requantized("stories260K-Q4_0.gguf"); /* Q4_0, and Q8_0 for output.weight */
    check_requantized("stories260K-F16.gguf");
}

/* ---- round trips: error bounds ---------------------------------------------------------- */

static void test_q8_0_error_bound(void **state)
{
    (void)state;
    enum { N = 32 * 256 };
    static float x[N], back[N];
    static wl_block_q8_0 q[N / 32];
    for (int i = 0; i < N; i++)
        x[i] = rng_float() * ldexpf(1.0f, (int)(i / 32 % 16) - 8);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, q, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_0, q, back, N), 0);
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[32 * b + j]));
        float d = amax / 127, d16 = wl_fp16_to_fp32(q[b].d);
        /* half a step of rounding, plus what storing d as a half moved every value by */
        double bound = 0.5 * d + 127.0 * fabs((double)d - d16) + 1e-7 * amax;
        for (int j = 0; j < 32; j++)
            assert_true(fabs((double)x[32 * b + j] - back[32 * b + j]) <= bound);
    }
}

static void test_q4_0_error_bound(void **state)
{
    (void)state;
    enum { N = 32 * 256 };
    static float x[N], back[N];
    static wl_block_q4_0 q[N / 32];
    for (int i = 0; i < N; i++)
        x[i] = rng_float() * ldexpf(1.0f, (int)(i / 32 % 16) - 8);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q4_0, x, q, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q4_0, q, back, N), 0);
    for (int b = 0; b < N / 32; b++) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[32 * b + j])) {
                amax = fabsf(x[32 * b + j]);
                max = x[32 * b + j];
            }
        float d = fabsf(max / 8), d16 = fabsf(wl_fp16_to_fp32(q[b].d));
        /* q = x/d rounded within [-8, 7]: half a step, except values near -max, which clamp
         * from 8 to 7 (one step); plus the effect of storing d as a half */
        double bound = 1.0 * d + 8.0 * fabs((double)d - d16) + 1e-7 * amax;
        double half_step = 0.5 * d + 8.0 * fabs((double)d - d16) + 1e-7 * amax;
        for (int j = 0; j < 32; j++) {
            double err = fabs((double)x[32 * b + j] - back[32 * b + j]);
            assert_true(err <= bound);
            if (x[32 * b + j] / (max / -8) < 7.5f)
                assert_true(err <= half_step);
        }
        /* the largest value itself comes back as -8 * d16 */
        int jmax = 0;
        for (int j = 0; j < 32; j++)
            if (x[32 * b + j] == max) {
                jmax = j;
                break;
            }
        assert_true(back[32 * b + jmax] == -8.0f * wl_fp16_to_fp32(q[b].d));
    }
}

static void test_float_rows(void **state)
{
    (void)state;
    enum { N = 37 };
    float x[N], back[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++)
        x[i] = rng_float() * 100.0f;
    assert_int_equal(wl_quantize_row(WL_TYPE_F16, x, h, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_F16, h, back, N), 0);
    for (int i = 0; i < N; i++)
        assert_true(back[i] == wl_fp16_to_fp32(wl_fp32_to_fp16(x[i])));
    assert_int_equal(wl_quantize_row(WL_TYPE_BF16, x, h, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_BF16, h, back, N), 0);
    for (int i = 0; i < N; i++)
        assert_true(back[i] == wl_bf16_to_fp32(wl_fp32_to_bf16(x[i])));
    float f[N];
    assert_int_equal(wl_quantize_row(WL_TYPE_F32, x, f, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_F32, f, back, N), 0);
    assert_memory_equal(back, x, sizeof x);

    /* unaligned source and destination */
    unsigned char raw[2 * N + 1];
    assert_int_equal(wl_quantize_row(WL_TYPE_F16, x, raw + 1, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_F16, raw + 1, back, N), 0);
    for (int i = 0; i < N; i++)
        assert_true(back[i] == wl_fp16_to_fp32(wl_fp32_to_fp16(x[i])));
}

static void test_unaligned_blocks(void **state)
{
    (void)state;
    float x[64], a[64], b[64];
    for (int i = 0; i < 64; i++)
        x[i] = rng_float();
    unsigned char raw[2 * 34 + 1];
    wl_block_q8_0 aligned[2];
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, raw + 1, 64), 0);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, aligned, 64), 0);
    assert_memory_equal(raw + 1, aligned, sizeof aligned);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_0, raw + 1, a, 64), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_0, aligned, b, 64), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q4_0, x, raw + 1, 64), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q4_0, raw + 1, a, 64), 0);
}

static void test_supported_types(void **state)
{
    (void)state;
    const uint32_t yes[] = {WL_TYPE_F32, WL_TYPE_F16, WL_TYPE_BF16, WL_TYPE_Q8_0, WL_TYPE_Q4_0};
    const uint32_t no[] = {WL_TYPE_I8, WL_TYPE_F64, WL_TYPE_IQ2_XXS, WL_TYPE_COUNT, 1000};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(wl_type_supported(yes[i]));
    float x[64] = {0}, out[64];
    unsigned char buf[512];
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        assert_false(wl_type_supported(no[i]));
        assert_int_equal(wl_dequantize_row(no[i], buf, out, 32), -1);
        assert_int_equal(wl_quantize_row(no[i], x, buf, 32), -1);
    }
    /* quantized rows must be whole blocks */
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, buf, 33), -1);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q4_0, buf, out, 31), -1);
    assert_int_equal(wl_quantize_row(WL_TYPE_F16, x, buf, -1), -1);
    /* an empty row is fine */
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, buf, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_all_halves),
        cmocka_unit_test(test_fp16_rounding),
        cmocka_unit_test(test_fp16_matches_f16c),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_q8_0_known_block),
        cmocka_unit_test(test_q4_0_nibble_order),
        cmocka_unit_test(test_quantizer_rounding),
        cmocka_unit_test(test_quantizers_match_ggml),
        cmocka_unit_test(test_matches_llama_cpp_files),
        cmocka_unit_test(test_q8_0_error_bound),
        cmocka_unit_test(test_q4_0_error_bound),
        cmocka_unit_test(test_float_rows),
        cmocka_unit_test(test_unaligned_blocks),
        cmocka_unit_test(test_supported_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
