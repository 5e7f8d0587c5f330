/* test_quant.c - half floats, bfloat16, and the block formats: their layouts (hand-built blocks
 * with known values), their dequantizers, and their quantizers (byte-exact against llama.cpp's
 * reference quantizers, and within each format's error bound). */
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

/* ---- the other formats: hand-built blocks ------------------------------------------------ */

static void put_half(unsigned char *p, float f)
{
    uint16_t h = wl_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* Q4_1 and Q5_1: x = d * q + m, nibbles as Q4_0, fifth bits in a little-endian uint32. */
static void test_q4_1_q5_1_known_blocks(void **state)
{
    (void)state;
    unsigned char b41[20], b51[24];
    put_half(b41, 0.5f);
    put_half(b41 + 2, -3.0f);
    for (int j = 0; j < 16; j++)
        b41[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    float out[32];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q4_1, b41, out, 32), 0);
    for (int j = 0; j < 16; j++) {
        assert_true(out[j] == 0.5f * (float)j - 3.0f);
        assert_true(out[j + 16] == 0.5f * (float)(15 - j) - 3.0f);
    }
    put_half(b51, 0.25f);
    put_half(b51 + 2, 1.0f);
    const uint32_t qh = 0x80000001u | 0x00f00000u; /* values 0, 20..23, 31 have q >= 16 */
    memcpy(b51 + 4, &qh, 4);
    for (int j = 0; j < 16; j++)
        b51[8 + j] = (uint8_t)(j | ((15 - j) << 4));
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q5_1, b51, out, 32), 0);
    for (int v = 0; v < 32; v++) {
        int nib = v < 16 ? v : 15 - (v - 16);
        int q = nib | (int)(((qh >> v) & 1u) << 4);
        assert_true(out[v] == 0.25f * (float)q + 1.0f);
    }
    assert_true(out[0] == 0.25f * 16 + 1.0f);
    assert_true(out[31] == 0.25f * (0 + 16) + 1.0f);
}

/* Q5_0: x = d * (q - 16), q = nibble | bit j of qh << 4. */
static void test_q5_0_known_block(void **state)
{
    (void)state;
    unsigned char b[22];
    put_half(b, 2.0f);
    const uint32_t qh = 0xa5a5a5a5u;
    memcpy(b + 2, &qh, 4);
    for (int j = 0; j < 16; j++)
        b[6 + j] = (uint8_t)((j * 7 % 16) | ((j * 3 % 16) << 4));
    float out[32];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q5_0, b, out, 32), 0);
    for (int v = 0; v < 32; v++) {
        int nib = v < 16 ? v * 7 % 16 : (v - 16) * 3 % 16;
        int q = nib | (int)(((qh >> v) & 1u) << 4);
        assert_true(out[v] == 2.0f * (float)(q - 16));
    }
}

/* The quants of a super-block as the test writes them: q[v] for v = 0..255. */
static int pattern_quant(int v, int levels)
{
    return (v * 7 + v / 16) % levels;
}

/* Q2_K: 16 sub-blocks of 16; scales[k] = scale | min << 4; 2-bit q of value v at bits
 * 2 ((v % 128) / 32) of qs[32 (v / 128) + v % 32]; d, dmin at the end. */
static void test_q2_k_known_block(void **state)
{
    (void)state;
    wl_block_q2_k b;
    memset(&b, 0, sizeof b);
    for (int k = 0; k < 16; k++)
        b.scales[k] = (uint8_t)((k % 16) | (((15 - k) % 16) << 4));
    for (int v = 0; v < 256; v++)
        b.qs[32 * (v / 128) + v % 32] |= (uint8_t)(pattern_quant(v, 4) << (2 * ((v % 128) / 32)));
    b.d = wl_fp32_to_fp16(0.5f);
    b.dmin = wl_fp32_to_fp16(0.25f);
    float out[256];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q2_K, &b, out, 256), 0);
    for (int v = 0; v < 256; v++) {
        int k = v / 16;
        float want = 0.5f * (float)(k % 16) * (float)pattern_quant(v, 4) - 0.25f * (float)(15 - k);
        if (out[v] != want)
            fail_msg("Q2_K value %d: %g, want %g", v, (double)out[v], (double)want);
    }
    /* byte offsets of the layout: scales 0, qs 16, d 80, dmin 82 */
    unsigned char raw[84];
    memcpy(raw, &b, sizeof raw);
    assert_int_equal(raw[16 + 5], b.qs[5]);
    assert_int_equal(raw[80] | raw[81] << 8, 0x3800); /* 0.5 */
    assert_int_equal(raw[82] | raw[83] << 8, 0x3400); /* 0.25 */
}

/* Q3_K: 16 signed 6-bit scales (low nibbles in scales[0..7], low / high nibble by sub-block
 * 0..7 / 8..15, top 2 bits in scales[8..11]), q = 2 low bits (as Q2_K) + third bit of hmask. */
static void test_q3_k_known_block(void **state)
{
    (void)state;
    wl_block_q3_k b;
    memset(&b, 0, sizeof b);
    int sc[16];
    for (int k = 0; k < 16; k++) {
        sc[k] = (k * 9 % 64) - 32; /* -32..31 */
        int u = sc[k] + 32;
        b.scales[k % 8] |= (uint8_t)((u & 15) << (k < 8 ? 0 : 4));
        b.scales[8 + k % 4] |= (uint8_t)((u >> 4) << (2 * (k / 4)));
    }
    for (int v = 0; v < 256; v++) {
        int q = pattern_quant(v, 8); /* 0..7: stored q - 4 in -4..3 */
        b.qs[32 * (v / 128) + v % 32] |= (uint8_t)((q & 3) << (2 * ((v % 128) / 32)));
        if (q & 4)
            b.hmask[v % 32] |= (uint8_t)(1u << (v / 32));
    }
    b.d = wl_fp32_to_fp16(0.125f);
    for (int k = 0; k < 16; k++)
        assert_int_equal(wl_q3_k_scale(b.scales, k), sc[k]);
    float out[256];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q3_K, &b, out, 256), 0);
    for (int v = 0; v < 256; v++) {
        float want = 0.125f * (float)sc[v / 16] * (float)(pattern_quant(v, 8) - 4);
        if (out[v] != want)
            fail_msg("Q3_K value %d: %g, want %g", v, (double)out[v], (double)want);
    }
}

/* The 12 bytes of 8 6-bit scales and mins of Q4_K / Q5_K. */
static void pack_k4_scales(const int sc[8], const int m[8], uint8_t out[12])
{
    memset(out, 0, 12);
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

/* Q4_K and Q5_K: 8 sub-blocks of 32: x = d sc q - dmin m; q's nibble in qs[32 (v / 64) +
 * v % 32] (low for v % 64 < 32), Q5_K's fifth bit at bit v / 32 of qh[v % 32]. */
static void test_q4_k_q5_k_known_blocks(void **state)
{
    (void)state;
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (j * 23 + 5) % 64;
        m[j] = (j * 41 + 60) % 64;
    }
    wl_block_q4_k b4;
    wl_block_q5_k b5;
    memset(&b4, 0, sizeof b4);
    memset(&b5, 0, sizeof b5);
    pack_k4_scales(sc, m, b4.scales);
    memcpy(b5.scales, b4.scales, 12);
    for (int j = 0; j < 8; j++) {
        int gs, gm;
        wl_k4_scale_min(b4.scales, j, &gs, &gm);
        assert_int_equal(gs, sc[j]);
        assert_int_equal(gm, m[j]);
    }
    for (int v = 0; v < 256; v++) {
        int q4 = pattern_quant(v, 16), q5 = pattern_quant(v, 32);
        int shift = v % 64 < 32 ? 0 : 4;
        b4.qs[32 * (v / 64) + v % 32] |= (uint8_t)(q4 << shift);
        b5.qs[32 * (v / 64) + v % 32] |= (uint8_t)((q5 & 15) << shift);
        if (q5 & 16)
            b5.qh[v % 32] |= (uint8_t)(1u << (v / 32));
    }
    b4.d = b5.d = wl_fp32_to_fp16(0.0625f);
    b4.dmin = b5.dmin = wl_fp32_to_fp16(0.03125f);
    float o4[256], o5[256];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q4_K, &b4, o4, 256), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q5_K, &b5, o5, 256), 0);
    for (int v = 0; v < 256; v++) {
        int j = v / 32;
        float w4 = 0.0625f * (float)sc[j] * (float)pattern_quant(v, 16) - 0.03125f * (float)m[j];
        float w5 = 0.0625f * (float)sc[j] * (float)pattern_quant(v, 32) - 0.03125f * (float)m[j];
        if (o4[v] != w4 || o5[v] != w5)
            fail_msg("Q4_K/Q5_K value %d: %g %g, want %g %g", v, (double)o4[v], (double)o5[v],
                     (double)w4, (double)w5);
    }
}

/* Q6_K: x = d * scales[v / 16] * (q - 32); the low nibble of value v in ql[64 h + l + 32 (r /
 * 32 % 2)] (low for r < 64, high for r >= 64), the top 2 bits at 2 (r / 32) of qh[32 h + l],
 * h = v / 128, r = v % 128, l = r % 32. */
static void test_q6_k_known_block(void **state)
{
    (void)state;
    wl_block_q6_k b;
    memset(&b, 0, sizeof b);
    for (int k = 0; k < 16; k++)
        b.scales[k] = (int8_t)(k * 17 - 128);
    for (int v = 0; v < 256; v++) {
        int q = pattern_quant(v, 64), h = v / 128, r = v % 128, l = r % 32;
        b.ql[64 * h + l + 32 * ((r / 32) % 2)] |= (uint8_t)((q & 15) << (r < 64 ? 0 : 4));
        b.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * (r / 32)));
    }
    b.d = wl_fp32_to_fp16(0.001f);
    const float d = wl_fp16_to_fp32(b.d);
    float out[256];
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q6_K, &b, out, 256), 0);
    for (int v = 0; v < 256; v++) {
        float want = d * (float)b.scales[v / 16] * (float)(pattern_quant(v, 64) - 32);
        if (out[v] != want)
            fail_msg("Q6_K value %d: %g, want %g", v, (double)out[v], (double)want);
    }
}

/* The activation formats: Q8_1's s and Q8_K's d and bsums. */
static void test_act_formats(void **state)
{
    (void)state;
    float x[256];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 256; i++)
            x[i] = rng_float() * ldexpf(1.0f, (int)(rng_next() % 20) - 10);
        if (round % 7 == 3)
            memset(x + 32, 0, 32 * sizeof(float)); /* an all-zero block */
        wl_block_q8_1 b1;
        wl_quantize_act_block_q8_1(x + 32 * (round % 8), &b1);
        const float *xb = x + 32 * (round % 8);
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int want = amax != 0 ? (int)nearbyintf(xb[j] * (127.0f / amax)) : 0;
            assert_int_equal(b1.qs[j], want);
            sum += b1.qs[j];
        }
        assert_int_equal(b1.d, wl_fp32_to_fp16(amax / 127.0f));
        assert_int_equal(b1.s, wl_fp32_to_fp16(amax / 127.0f * (float)sum));

        wl_block_q8_k bk;
        wl_quantize_act_block_q8_k(x, &bk);
        float max = 0;
        for (int i = 0; i < 256; i++)
            if (fabsf(x[i]) > fabsf(max))
                max = x[i];
        assert_true(bk.d == 1.0f / (-127.0f / max));
        for (int k = 0; k < 16; k++) {
            int s16 = 0;
            for (int i = 0; i < 16; i++) {
                int q = bk.qs[16 * k + i];
                assert_true(q >= -127 && q <= 127);
                assert_int_equal(q, (int)nearbyintf(x[16 * k + i] * (-127.0f / max)));
                s16 += q;
            }
            assert_int_equal(bk.bsums[k], s16);
        }
    }
    float zero[256] = {0};
    wl_block_q8_k bk;
    memset(&bk, 0x55, sizeof bk);
    wl_quantize_act_block_q8_k(zero, &bk);
    assert_true(bk.d == 0.0f);
    for (int k = 0; k < 16; k++)
        assert_int_equal(bk.bsums[k], 0);
}

/* ---- the other formats: byte-exact against llama.cpp ------------------------------------ */

/* A deterministic input of 12 super-blocks of different characters (integer arithmetic and
 * exact float operations only, so every platform computes the same floats). */
static void fingerprint_input(float *x, int n)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int32_t v = (int32_t)(s >> 40) - (1 << 23);
        float f = (float)v * 0x1p-23f;
        switch ((i / 256) % 6) {
        case 0: x[i] = f; break;
        case 1: x[i] = f * 0x1p-10f; break;                 /* small values */
        case 2: x[i] = (i % 16) < 5 ? 0.0f : f; break;      /* zeros in every sub-block */
        case 3: x[i] = (float)(v >> 18) * 0.25f; break;     /* coarse values: ties */
        case 4: x[i] = fabsf(f) * 8.0f; break;              /* all positive */
        default: x[i] = (i % 37) == 0 ? f * 64.0f : f * 0.5f; break; /* outliers */
        }
    }
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The FNV-1a hashes of what ggml's reference quantizers (quantize_row_*_ref, built without
 * fused multiply-adds like llama.cpp's x86-64 ggml-base) write for fingerprint_input(3072).
 * Computed once with ggml's own code; any change of rounding or packing changes them. */
static void test_quantizers_match_ggml_reference(void **state)
{
    (void)state;
    static const struct {
        uint32_t type;
        uint64_t hash;
    } want[] = {
        {WL_TYPE_Q8_0, 0x5bfc6fc79e810e65ull}, {WL_TYPE_Q4_0, 0x8fb868eddaa45da3ull},
        {WL_TYPE_Q4_1, 0x9c6060abbd596677ull}, {WL_TYPE_Q5_0, 0x16e3864b61d4bbaaull},
        {WL_TYPE_Q5_1, 0x24fb635842db6ab6ull}, {WL_TYPE_Q2_K, 0xff88a7259150cd20ull},
        {WL_TYPE_Q3_K, 0x83857486f6bb9c5cull}, {WL_TYPE_Q4_K, 0x7566e101ce7c43e4ull},
        {WL_TYPE_Q5_K, 0x5dbfe0c5b4a88ab7ull}, {WL_TYPE_Q6_K, 0xb451736eb3d09963ull},
        {WL_TYPE_Q8_K, 0x64e9ca31a356a6aaull}, /* ggml's quantize_row_q8_K_ref */
    };
    enum { N = 256 * 12 };
    static float x[N];
    static unsigned char q[N * 2];
    fingerprint_input(x, N);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint32_t type = want[i].type;
        size_t bytes = wl_row_bytes(type, N);
        memset(q, 0, sizeof q);
        if (type == WL_TYPE_Q8_K)
            for (int b = 0; b < N / 256; b++)
                wl_quantize_act_block_q8_k(x + 256 * b, q + sizeof(wl_block_q8_k) * (size_t)b);
        else
            assert_int_equal(wl_quantize_row(type, x, q, N), 0);
        uint64_t got = fnv1a(q, bytes);
        if (got != want[i].hash)
            fail_msg("%s: quantized bytes hash to %016llx, ggml's to %016llx", wl_type_name(type),
                     (unsigned long long)got, (unsigned long long)want[i].hash);
    }
}

/* ---- the other formats: error bounds ------------------------------------------------------ */

/* Q4_1 / Q5_1 / Q5_0: per block, the rounding of the quantizer (half a step), plus what storing
 * d and m as halves moved every value by. */
static void test_block32_error_bounds(void **state)
{
    (void)state;
    enum { N = 32 * 512 };
    static float x[N], back[N];
    static unsigned char q[N];
    for (int i = 0; i < N; i++)
        x[i] = rng_float() * ldexpf(1.0f, (int)(i / 32 % 16) - 8) + (i / 512 % 3 == 0 ? 0.3f : 0);
    static const uint32_t types[] = {WL_TYPE_Q4_1, WL_TYPE_Q5_1, WL_TYPE_Q5_0};
    for (size_t ti = 0; ti < 3; ti++) {
        uint32_t type = types[ti];
        const size_t bb = wl_type_get(type)->type_size;
        assert_int_equal(wl_quantize_row(type, x, q, N), 0);
        assert_int_equal(wl_dequantize_row(type, q, back, N), 0);
        for (int b = 0; b < N / 32; b++) {
            const float *xb = x + 32 * b;
            float min = xb[0], max = xb[0], amax = 0, smax = 0;
            for (int j = 0; j < 32; j++) {
                min = fminf(min, xb[j]);
                max = fmaxf(max, xb[j]);
                if (fabsf(xb[j]) > amax) {
                    amax = fabsf(xb[j]);
                    smax = xb[j];
                }
            }
            float d16 = wl_fp16_to_fp32((uint16_t)(q[bb * b] | q[bb * b + 1] << 8));
            double bound;
            if (type == WL_TYPE_Q5_0) {
                float d = smax / -16;
                /* half a step, one step for values near -max (clamped from 16 to 15) */
                bound = fabs(d) + 16.0 * fabs((double)d - d16) + 1e-7 * amax;
            } else {
                const int levels = type == WL_TYPE_Q4_1 ? 15 : 31;
                float d = (max - min) / (float)levels;
                float m16 = wl_fp16_to_fp32((uint16_t)(q[bb * b + 2] | q[bb * b + 3] << 8));
                bound = 0.5 * d + levels * fabs((double)d - d16) + fabs((double)min - m16) +
                        1e-6 * (fabs(max) + fabs(min));
            }
            for (int j = 0; j < 32; j++)
                if (!(fabs((double)xb[j] - back[32 * b + j]) <= bound))
                    fail_msg("%s block %d value %d: %g -> %g (bound %g)", wl_type_name(type), b, j,
                             (double)xb[j], (double)back[32 * b + j], bound);
        }
    }
}

/* The k-quants: the largest error and the RMS error of a round trip, relative to each
 * super-block's largest magnitude, on uniform and on Gaussian data. The bounds are 1.3 times
 * what ggml's reference quantizers (which ours equal byte for byte) reach on 256k values:
 * max / rms = Q2_K .46 / .135, Q3_K .26 / .073, Q4_K .108 / .032, Q5_K .057 / .016,
 * Q6_K .045 / .0079 (uniform; Gaussian data does better). */
static void test_kquant_error_bounds(void **state)
{
    (void)state;
    static const struct {
        uint32_t type;
        double max_rel, rms_rel;
    } bounds[] = {
        {WL_TYPE_Q2_K, 0.60, 0.18}, {WL_TYPE_Q3_K, 0.34, 0.095}, {WL_TYPE_Q4_K, 0.14, 0.042},
        {WL_TYPE_Q5_K, 0.075, 0.021}, {WL_TYPE_Q6_K, 0.06, 0.011},
    };
    enum { N = 256 * 256 };
    static float x[N], back[N];
    static unsigned char q[N];
    for (int dist = 0; dist < 2; dist++) {
        for (int i = 0; i < N; i++) {
            float v = rng_float();
            if (dist) /* roughly Gaussian: a sum of 4 uniforms */
                v = (v + rng_float() + rng_float() + rng_float()) * 0.5f;
            x[i] = v * ldexpf(1.0f, (int)(i / 256 % 16) - 8);
        }
        for (size_t ti = 0; ti < sizeof bounds / sizeof bounds[0]; ti++) {
            uint32_t type = bounds[ti].type;
            assert_int_equal(wl_quantize_row(type, x, q, N), 0);
            assert_int_equal(wl_dequantize_row(type, q, back, N), 0);
            double worst = 0, se = 0;
            for (int b = 0; b < N / 256; b++) {
                float amax = 0;
                for (int i = 0; i < 256; i++)
                    amax = fmaxf(amax, fabsf(x[256 * b + i]));
                for (int i = 0; i < 256; i++) {
                    double e = fabs((double)x[256 * b + i] - back[256 * b + i]) / amax;
                    worst = e > worst ? e : worst;
                    se += e * e;
                }
            }
            double rms = sqrt(se / N);
            printf("  %s %-8s max |err| / amax %.4f, rms %.4f\n", wl_type_name(type),
                   dist ? "gaussian" : "uniform", worst, rms);
            if (!(worst <= bounds[ti].max_rel && rms <= bounds[ti].rms_rel))
                fail_msg("%s: error %.4f / rms %.4f above the bound %.3f / %.3f", wl_type_name(type),
                         worst, rms, bounds[ti].max_rel, bounds[ti].rms_rel);
        }
    }
}

/* The float formats and the activation formats round trip within their rounding:
 *   F16   |err| <= 2^-11 |x| in the normal range (half an ulp of an 11-bit significand), and
 *         <= 2^-25 below it (half the subnormal step 2^-24);
 *   BF16  |err| <= 2^-8 |x| (an 8-bit significand);
 *   Q8_1  half a step of d = amax / 127, plus what storing d as a half moved the values by;
 *   Q8_K  half a step of its float d (plus a float rounding of d * q). */
static void test_float_and_act_error_bounds(void **state)
{
    (void)state;
    enum { N = 256 * 64 };
    static float x[N], back[N];
    static uint16_t h[N];
    static unsigned char q[N / 32 * sizeof(wl_block_q8_1) + N / 256 * sizeof(wl_block_q8_k)];
    for (int i = 0; i < N; i++) /* magnitudes from 2^-30 (subnormal halves) to 2^15 */
        x[i] = rng_float() * ldexpf(1.0f, (int)(i / 256 % 46) - 30);
    assert_int_equal(wl_quantize_row(WL_TYPE_F16, x, h, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_F16, h, back, N), 0);
    for (int i = 0; i < N; i++) {
        double err = fabs((double)x[i] - back[i]);
        double bound = fabsf(x[i]) >= 0x1p-14f ? ldexp(fabs((double)x[i]), -11) : 0x1p-25;
        if (!(err <= bound))
            fail_msg("F16: %g -> %g", (double)x[i], (double)back[i]);
    }
    assert_int_equal(wl_quantize_row(WL_TYPE_BF16, x, h, N), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_BF16, h, back, N), 0);
    for (int i = 0; i < N; i++)
        if (!(fabs((double)x[i] - back[i]) <= ldexp(fabs((double)x[i]), -8)))
            fail_msg("BF16: %g -> %g", (double)x[i], (double)back[i]);
    for (int i = 0; i < N; i++) /* activations: magnitudes 2^-12 .. 2^12, in blocks */
        x[i] = rng_float() * ldexpf(1.0f, (int)(i / 256 % 24) - 12);
    for (int b = 0; b < N / 32; b++)
        wl_quantize_act_block_q8_1(x + 32 * b, q + (size_t)b * sizeof(wl_block_q8_1));
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_1, q, back, N), 0);
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[32 * b + j]));
        uint16_t dh;
        memcpy(&dh, q + (size_t)b * sizeof(wl_block_q8_1), 2);
        const double d = amax / 127.0f, d16 = wl_fp16_to_fp32(dh);
        const double bound = 0.5 * d + 127.0 * fabs(d - d16) + 1e-6 * amax;
        for (int j = 0; j < 32; j++)
            if (!(fabs((double)x[32 * b + j] - back[32 * b + j]) <= bound))
                fail_msg("Q8_1 block %d: %g -> %g (bound %g)", b, (double)x[32 * b + j],
                         (double)back[32 * b + j], bound);
    }
    for (int b = 0; b < N / 256; b++)
        wl_quantize_act_block_q8_k(x + 256 * b, q + (size_t)b * sizeof(wl_block_q8_k));
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_K, q, back, N), 0);
    for (int b = 0; b < N / 256; b++) {
        float d;
        memcpy(&d, q + (size_t)b * sizeof(wl_block_q8_k), 4);
        const double bound = 0.5 * fabs((double)d) * (1 + 1e-6) + 128.0 * ldexp(fabs((double)d), -24);
        for (int j = 0; j < 256; j++)
            if (!(fabs((double)x[256 * b + j] - back[256 * b + j]) <= bound))
                fail_msg("Q8_K block %d: %g -> %g (bound %g)", b, (double)x[256 * b + j],
                         (double)back[256 * b + j], bound);
    }
}

/* Zero super-blocks stay zero; a constant block comes back close. */
static void test_kquant_degenerate_blocks(void **state)
{
    (void)state;
    static const uint32_t types[] = {WL_TYPE_Q2_K, WL_TYPE_Q3_K, WL_TYPE_Q4_K, WL_TYPE_Q5_K,
                                     WL_TYPE_Q6_K, WL_TYPE_Q4_1, WL_TYPE_Q5_0, WL_TYPE_Q5_1};
    float x[256], back[256];
    unsigned char q[256];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        memset(x, 0, sizeof x);
        assert_int_equal(wl_quantize_row(types[ti], x, q, 256), 0);
        assert_int_equal(wl_dequantize_row(types[ti], q, back, 256), 0);
        for (int i = 0; i < 256; i++)
            assert_true(back[i] == 0.0f);
        for (int i = 0; i < 256; i++)
            x[i] = 0.75f;
        assert_int_equal(wl_quantize_row(types[ti], x, q, 256), 0);
        assert_int_equal(wl_dequantize_row(types[ti], q, back, 256), 0);
        for (int i = 0; i < 256; i++)
            if (!(fabsf(back[i] - 0.75f) <= 0.75f * 0.05f))
                fail_msg("%s constant block: %g", wl_type_name(types[ti]), (double)back[i]);
    }
}

/* Non-finite inputs and scales: no crash and no undefined behaviour (the sanitizer build
 * checks), whatever bytes or values come out. */
static void test_malformed_values(void **state)
{
    (void)state;
    static const uint32_t types[] = {WL_TYPE_Q8_0, WL_TYPE_Q4_0, WL_TYPE_Q4_1, WL_TYPE_Q5_0,
                                     WL_TYPE_Q5_1, WL_TYPE_Q2_K, WL_TYPE_Q3_K, WL_TYPE_Q4_K,
                                     WL_TYPE_Q5_K, WL_TYPE_Q6_K};
    static const uint32_t specials[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                        0x00000001u, 0x7f7fffffu, 0xff7fffffu, 0x80000000u};
    float x[512], back[512];
    unsigned char q[1024];
    for (int round = 0; round < 64; round++) {
        for (int i = 0; i < 512; i++)
            x[i] = rng_float();
        for (int k = 0; k < 1 + round % 5; k++) {
            uint32_t u = specials[(round + k) % 8];
            memcpy(&x[rng_next() % 512], &u, 4);
        }
        if (round % 8 == 7) /* every value special */
            for (int i = 0; i < 512; i++)
                memcpy(&x[i], &specials[i % 8], 4);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            assert_int_equal(wl_quantize_row(types[ti], x, q, 512), 0);
            assert_int_equal(wl_dequantize_row(types[ti], q, back, 512), 0);
        }
        unsigned char act[2 * 292];
        wl_quantize_act_block_q8_0(x, act);
        wl_quantize_act_block_q8_1(x, act);
        wl_quantize_act_block_q8_k(x, act);
        wl_quantize_act_block_q8_k(x + 256, act + 292);
        assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_K, act, back, 512), 0);
    }
    /* blocks with NaN / Inf scales dequantize to NaN / Inf / finite values */
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        for (size_t i = 0; i < sizeof q; i++)
            q[i] = (unsigned char)rng_next();
        assert_int_equal(wl_dequantize_row(types[ti], q, back, 512), 0);
    }
}

static void test_supported_types(void **state)
{
    (void)state;
    const uint32_t yes[] = {WL_TYPE_F32,  WL_TYPE_F16,  WL_TYPE_BF16, WL_TYPE_Q8_0, WL_TYPE_Q4_0,
                            WL_TYPE_Q4_1, WL_TYPE_Q5_0, WL_TYPE_Q5_1, WL_TYPE_Q2_K, WL_TYPE_Q3_K,
                            WL_TYPE_Q4_K, WL_TYPE_Q5_K, WL_TYPE_Q6_K};
    const uint32_t no[] = {WL_TYPE_IQ2_XXS, WL_TYPE_IQ4_NL, WL_TYPE_TQ1_0, WL_TYPE_MXFP4,
                           WL_TYPE_I8,      WL_TYPE_F64,    WL_TYPE_COUNT, 1000};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(wl_type_supported(yes[i]));
    float x[512] = {0}, out[512];
    unsigned char buf[1024];
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        assert_false(wl_type_supported(no[i]));
        assert_int_equal(wl_dequantize_row(no[i], buf, out, 256), -1);
        assert_int_equal(wl_quantize_row(no[i], x, buf, 256), -1);
    }
    /* the activation formats: dequantizers (for tests), no file quantizer, no kernels */
    assert_false(wl_type_supported(WL_TYPE_Q8_1));
    assert_false(wl_type_supported(WL_TYPE_Q8_K));
    memset(buf, 0, sizeof buf);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_1, buf, out, 64), 0);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q8_K, buf, out, 256), 0);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_1, x, buf, 64), -1);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_K, x, buf, 256), -1);
    /* quantized rows must be whole blocks; the k-quants whole super-blocks of 256 */
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, buf, 33), -1);
    assert_int_equal(wl_dequantize_row(WL_TYPE_Q4_0, buf, out, 31), -1);
    assert_int_equal(wl_quantize_row(WL_TYPE_F16, x, buf, -1), -1);
    static const uint32_t kq[] = {WL_TYPE_Q2_K, WL_TYPE_Q3_K, WL_TYPE_Q4_K, WL_TYPE_Q5_K,
                                  WL_TYPE_Q6_K};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(wl_quantize_row(kq[i], x, buf, 32), -1);
        assert_int_equal(wl_quantize_row(kq[i], x, buf, 288), -1);
        assert_int_equal(wl_dequantize_row(kq[i], buf, out, 128), -1);
        assert_int_equal(wl_quantize_row(kq[i], x, buf, 512), 0);
    }
    /* an empty row is fine */
    assert_int_equal(wl_quantize_row(WL_TYPE_Q8_0, x, buf, 0), 0);
    assert_int_equal(wl_quantize_row(WL_TYPE_Q4_K, x, buf, 0), 0);
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
        cmocka_unit_test(test_q4_1_q5_1_known_blocks),
        cmocka_unit_test(test_q5_0_known_block),
        cmocka_unit_test(test_q2_k_known_block),
        cmocka_unit_test(test_q3_k_known_block),
        cmocka_unit_test(test_q4_k_q5_k_known_blocks),
        cmocka_unit_test(test_q6_k_known_block),
        cmocka_unit_test(test_act_formats),
        cmocka_unit_test(test_quantizers_match_ggml_reference),
        cmocka_unit_test(test_block32_error_bounds),
        cmocka_unit_test(test_kquant_error_bounds),
        cmocka_unit_test(test_float_and_act_error_bounds),
        cmocka_unit_test(test_kquant_degenerate_blocks),
        cmocka_unit_test(test_malformed_values),
        cmocka_unit_test(test_supported_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
