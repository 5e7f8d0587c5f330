/* test_gemv.c - the decode GEMV of Q4_0 weights (gemv.h): the AVX-512 kernel gives wl_gemv_ref's
 * results bit for bit, for rows of 1 block to many (whole quads of 4 blocks, 1 to 3 blocks
 * over, odd and even numbers of quads), row ranges that do not start at 0, unaligned rows,
 * extreme quants (nibbles 0 and 15 against activations of -128 and 127), zero, tiny and large
 * scales, infinite and NaN ones; and the reference itself is the dot product (checked in double
 * precision) and close to the canonical scalar matmul, so a wrong definition cannot pass
 * either. Without AVX-512 VNNI and VBMI only the reference is checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "engine/cpu.h"
#include "engine/gemv.h"
#include "engine/kernels.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

static uint64_t rng = 0x13198a2e03707344ull;

/* Kinds of weight scales a test fills in. */
enum { SCALES_RANDOM, SCALES_SPECIAL };

/* rows of Q4_0 blocks (testutil) */
static void fill_weights(unsigned char *w, int64_t rows, size_t row_bytes, int extreme, int kind)
{
    wl_test_fill_q4_0(&rng, w, rows, row_bytes, extreme, kind == SCALES_SPECIAL);
}

/* A Q8_0 row: through the scalar quantizer (random or +-1), or hand-made quants of -128 and 127
 * (which the quantizer never makes) with scale d. */
static void fill_act(unsigned char *xq, int64_t n, int act, float d)
{
    if (act == 2) {
        wl_test_q8_0_extremes(xq, n, d);
        return;
    }
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++)
        x[i] = act == 1 ? (i % 2 ? d : -d) : wl_test_rand_uniform(&rng, -1.0f, 1.0f) * d;
    wl_kernels(WL_ISA_SCALAR)->quantize_act[WL_TYPE_Q8_0](x, xq, n);
    free(x);
}

/* The exact dot product of a Q4_0 row with a Q8_0 row in double (exact but for the products of
 * the scales), the sum of the magnitudes of its terms, and whether a scale is not finite. */
static int exact_dot(int64_t n, const unsigned char *wr, const unsigned char *xr, double *dot, double *mag)
{
    int special = 0;
    *dot = *mag = 0.0;
    for (int64_t b = 0; b < n / WL_QK; b++) {
        const unsigned char *wb = wr + (size_t)b * sizeof(wl_block_q4_0);
        const unsigned char *xb = xr + (size_t)b * sizeof(wl_block_q8_0);
        const double d = (double)wl_fp16_to_fp32(wl_load_u16(wb)) * wl_fp16_to_fp32(wl_load_u16(xb));
        special |= !isfinite(d);
        for (int j = 0; j < WL_QK; j++) {
            const int q = (j < 16 ? wb[2 + j] & 15 : wb[2 + j - 16] >> 4) - 8;
            const double term = d * q * (signed char)xb[2 + j];
            *dot += term;
            *mag += fabs(term);
        }
    }
    return special;
}

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

static void check(int64_t n, int64_t rows, int64_t r0, int64_t r1, int extreme, int act, int kind)
{
    const int fast = wl_gemv_supported(WL_ISA_AVX512, WL_TYPE_Q4_0);
    const size_t row_bytes = wl_row_bytes(WL_TYPE_Q4_0, (uint64_t)n), xs = wl_act_row_bytes(WL_TYPE_Q4_0, n);
    unsigned char *w = malloc((size_t)rows * row_bytes + 1), *xq = malloc(xs + 1);
    void *prep = aligned_alloc(64, wl_gemv_prep_bytes(n) + 64);
    float *canon = malloc((size_t)rows * sizeof(float)), *want = malloc((size_t)rows * sizeof(float)),
          *got = malloc((size_t)rows * sizeof(float));
    assert_non_null(w);
    assert_non_null(xq);
    assert_non_null(prep);
    assert_non_null(canon);
    assert_non_null(want);
    assert_non_null(got);
    /* unaligned rows and activations, as in GGUF files and quantized buffers at any offset */
    fill_weights(w + 1, rows, row_bytes, extreme, kind);
    fill_act(xq + 1, n, act, act == 2 ? 0.01f : 1.0f);
    for (int64_t i = 0; i < rows; i++)
        canon[i] = want[i] = got[i] = -12345.0f;
    wl_kernels(WL_ISA_SCALAR)
        ->matmul[WL_TYPE_Q4_0](n, w + 1, row_bytes, r0, r1, xq + 1, xs, 1, canon, (size_t)rows);
    wl_gemv_ref(WL_TYPE_Q4_0, n, w + 1, row_bytes, r0, r1, xq + 1, want);
    if (fast) {
        memset(prep, 0xa5, wl_gemv_prep_bytes(n)); /* every byte must be written */
        wl_gemv_prepare(WL_TYPE_Q4_0, n, xq + 1, prep);
        wl_gemv(WL_TYPE_Q4_0, n, w + 1, row_bytes, r0, r1, prep, got);
    }
    /* float rounding of one product and one FMA per block, the two accumulators and the
     * reduction (and the canonical lanes' own): far below this bound, far above it for any
     * wrong term */
    const double tol = 4.0 * (double)(2 * (n / WL_QK) + 8) * 0x1p-24;
    int bad = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float a = want[r], b = got[r], c = canon[r];
        const char *what = NULL;
        double dot = -12345.0, mag = 0.0;
        int special = 0;
        if (r >= r0 && r < r1)
            special = exact_dot(n, w + 1 + (size_t)r * row_bytes, xq + 1, &dot, &mag);
        if (fast && !same_float(a, b))
            what = "the AVX-512 GEMV differs from wl_gemv_ref";
        else if (r < r0 || r >= r1)
            what = a == -12345.0f && (!fast || b == -12345.0f) ? NULL : "a row outside [r0, r1) was written";
        else if (special)
            what = isfinite(a) || isfinite(c) ? "an infinite or NaN scale gave a finite result" : NULL;
        else if (fabs((double)a - dot) > tol * mag)
            what = "wl_gemv_ref is not the dot product";
        else if (fabs((double)c - dot) > tol * mag)
            what = "the canonical matmul is not the dot product";
        if (what && bad++ < 3)
            fprintf(stderr, "n=%lld [%lld,%lld) row %lld: %s: gemv %.9g ref %.9g canonical %.9g exact %.9g\n",
                    (long long)n, (long long)r0, (long long)r1, (long long)r, what, b, a, c, dot);
    }
    assert_int_equal(bad, 0);
    free(w);
    free(xq);
    free(prep);
    free(canon);
    free(want);
    free(got);
}

static void test_gemv_matches_reference(void **state)
{
    (void)state;
    if (!wl_gemv_supported(WL_ISA_AVX512, WL_TYPE_Q4_0))
        printf("  no AVX-512 VNNI + VBMI here: only the scalar definition is checked\n");
    /* blocks: 1, 2, 3 (one partial quad), 4, 5, 8 (two quads), 9, 18 and 28 (smollm2 and qwen2.5
     * widths: partial quads after odd and even counts), 64, 152 (qwen2.5 FFN), 256 (the
     * llama-3.2-1b FFN), 431 */
    const int64_t blocks[] = {1, 2, 3, 4, 5, 8, 9, 18, 28, 64, 152, 256, 431};
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) {
        const int64_t n = blocks[i] * WL_QK, rows = 7 + 3 * (int64_t)i;
        check(n, rows, 0, rows, 0, 0, SCALES_RANDOM);
        check(n, rows, 2, rows - 1, 0, 1, SCALES_RANDOM);
        check(n, rows, 1, rows, 1, 2, SCALES_RANDOM);
        check(n, rows, 0, rows, 0, 0, SCALES_SPECIAL);
    }
    check(8192, 33, 5, 33, 0, 0, SCALES_RANDOM);
    check(4096, 3, 0, 3, 1, 2, SCALES_RANDOM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemv_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
