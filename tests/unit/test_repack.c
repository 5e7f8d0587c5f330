/* test_repack.c - Q4_0 weights repacked in groups of 16 rows (repack.h): the layout is what
 * repack.h says (checked byte by byte against the file's rows); wl_r16_ref over the repacked
 * matrix gives wl_gemm_ref's results over the rows bit for bit; and the AVX-512 products over
 * R16 (wl_gemm_r16: one token, the decode GEMV, and several, the prefill GEMM) give them too,
 * for 1 to 17 tokens, rows of 1 block to more than one chunk of the GEMM, row ranges that cut
 * groups at either end, extreme quants, and zero, large, infinite and NaN scales. Rows outside
 * the range stay untouched. Without AVX-512 VNNI only the layout and the reference are checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "engine/cpu.h"
#include "engine/gemm.h"
#include "engine/kernels.h"
#include "engine/quant.h"
#include "engine/repack.h"
#include "engine/tensor_type.h"

static uint64_t rng = 0x452821e638d01377ull;

#define UNTOUCHED -12345.0f

static void fill_weights(unsigned char *w, int64_t rows, size_t row_bytes, int extreme, int special)
{
    wl_test_fill_q4_0(&rng, w, rows, row_bytes, extreme, special);
}

static void fill_acts(unsigned char *xq, size_t xs, int64_t n, int64_t ntok, int extreme)
{
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(x);
    for (int64_t t = 0; t < ntok; t++) {
        if (extreme) {
            wl_test_q8_0_extremes(xq + (size_t)t * xs, n, 0.01f);
            continue;
        }
        for (int64_t i = 0; i < n; i++)
            x[i] = wl_test_rand_uniform(&rng, -1.0f, 1.0f);
        wl_kernels(WL_ISA_SCALAR)->quantize_act[WL_TYPE_Q8_0](x, xq + (size_t)t * xs, n);
    }
    free(x);
}

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* Every byte of the repacked matrix against the definition in repack.h. */
static void check_layout(const unsigned char *w, size_t row_bytes, int64_t rows, int64_t n,
                         const unsigned char *rp)
{
    const int64_t nb = n / WL_QK;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            const unsigned char *blk = w + (size_t)r * row_bytes + (size_t)b * sizeof(wl_block_q4_0);
            const unsigned char *rec = rp + (size_t)((r / 16) * nb + b) * WL_R16_RECORD;
            const int i = (int)(r % 16);
            assert_memory_equal(rec + 2 * i, blk, 2);
            for (int c = 0; c < 4; c++)
                for (int k = 0; k < 4; k++)
                    assert_int_equal(rec[32 + 64 * c + 4 * i + k], blk[2 + 4 * c + k]);
        }
}

static void check(int64_t n, int64_t rows, int64_t ntok, int64_t r0, int64_t r1, int extreme, int special)
{
    const int fast = wl_gemm_supported(WL_ISA_AVX512, WL_TYPE_Q4_0);
    const size_t row_bytes = wl_row_bytes(WL_TYPE_Q4_0, (uint64_t)n), xs = wl_act_row_bytes(WL_TYPE_Q4_0, n);
    const size_t out = (size_t)ntok * (size_t)rows;
    unsigned char *w = malloc((size_t)rows * row_bytes), *rp = malloc(wl_r16_bytes(rows, n) + 1);
    unsigned char *xq = malloc((size_t)ntok * xs);
    void *prep = malloc(wl_gemm_prep_bytes(n, ntok));
    float *want = malloc(out * sizeof(float)), *ref = malloc(out * sizeof(float)),
          *got = malloc(out * sizeof(float));
    assert_true(w && rp && xq && prep && want && ref && got);
    assert_int_equal(wl_r16_bytes(rows, n), (size_t)rows * row_bytes);
    fill_weights(w, rows, row_bytes, extreme, special);
    fill_acts(xq, xs, n, ntok, extreme);
    /* repacked in two calls (groups [0, 1) and the rest), at an odd address */
    wl_r16_repack(w, row_bytes, n, 0, 1, rp + 1);
    wl_r16_repack(w, row_bytes, n, 1, rows / 16, rp + 1 + (size_t)(n / WL_QK) * WL_R16_RECORD);
    check_layout(w, row_bytes, rows, n, rp + 1);
    for (size_t i = 0; i < out; i++)
        want[i] = ref[i] = got[i] = UNTOUCHED;
    wl_gemm_ref(WL_TYPE_Q4_0, n, w, row_bytes, r0, r1, xq, xs, ntok, want, (size_t)rows);
    wl_r16_ref(n, rp + 1, r0, r1, xq, xs, ntok, ref, (size_t)rows);
    if (fast) {
        wl_gemm_prepare(WL_TYPE_Q4_0, n, xq, xs, ntok, prep);
        wl_gemm_r16(n, rp + 1, r0, r1, prep, ntok, got, (size_t)rows);
    }
    int bad = 0;
    for (size_t i = 0; i < out; i++) {
        const int64_t r = (int64_t)(i % (size_t)rows);
        const char *what = NULL;
        if (r < r0 || r >= r1)
            what = want[i] == UNTOUCHED && ref[i] == UNTOUCHED && (!fast || got[i] == UNTOUCHED)
                       ? NULL
                       : "a row outside [r0, r1) was written";
        else if (!same_float(want[i], ref[i]))
            what = "wl_r16_ref differs from wl_gemm_ref";
        else if (fast && !same_float(want[i], got[i]))
            what = "wl_gemm_r16 differs from wl_gemm_ref";
        if (what && bad++ < 5)
            fprintf(stderr,
                    "n %lld rows %lld ntok %lld [%lld, %lld) token %lld row %lld: %s (%.9g %.9g %.9g)\n",
                    (long long)n, (long long)rows, (long long)ntok, (long long)r0, (long long)r1,
                    (long long)(i / (size_t)rows), (long long)r, what, want[i], ref[i], got[i]);
    }
    assert_int_equal(bad, 0);
    /* the results are not trivially equal: some are real, nonzero numbers */
    int real = 0;
    for (int64_t r = r0; r < r1; r++)
        real += want[r] != 0.0f && isfinite(want[r]);
    if (!extreme && !special && r1 - r0 >= 8) /* (a zero scale may zero a few) */
        assert_true(real > 0);
    free(w), free(rp), free(xq), free(prep), free(want), free(ref), free(got);
}

static void test_shapes(void **state)
{
    (void)state;
    static const int64_t ns[] = {32, 128, 96 * 32, 67 * 32, 2048}; /* 67 and 96 blocks: past a GEMM chunk */
    static const int64_t tokens[] = {1, 2, 7, 8, 9, 17};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        for (size_t t = 0; t < sizeof tokens / sizeof *tokens; t++) {
            check(ns[i], 48, tokens[t], 0, 48, 0, 0);
            check(ns[i], 48, tokens[t], 5, 45, 0, 0);  /* cut groups at both ends */
            check(ns[i], 48, tokens[t], 16, 32, 0, 0); /* one whole group */
            check(ns[i], 48, tokens[t], 17, 18, 0, 0); /* one row */
        }
}

static void test_extremes(void **state)
{
    (void)state;
    for (int64_t ntok = 1; ntok <= 9; ntok += 8) {
        check(256, 32, ntok, 0, 32, 1, 0); /* nibbles 0 and 15 against -128 and 127 */
        check(256, 32, ntok, 3, 30, 0, 1); /* zero, large, denormal, infinite, NaN scales */
        check(67 * 32, 16, ntok, 0, 16, 1, 1);
    }
}

/* An embedding row from R16 is the file's row dequantized, bit for bit. */
static void test_dequantize_row(void **state)
{
    (void)state;
    const int64_t n = 96, rows = 32;
    const size_t row_bytes = wl_row_bytes(WL_TYPE_Q4_0, (uint64_t)n);
    unsigned char *w = malloc((size_t)rows * row_bytes), *rp = malloc(wl_r16_bytes(rows, n));
    float *want = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)n * sizeof(float));
    assert_true(w && rp && want && got);
    fill_weights(w, rows, row_bytes, 0, 1);
    wl_r16_repack(w, row_bytes, n, 0, rows / 16, rp);
    for (int64_t r = 0; r < rows; r++) {
        wl_dequantize_row(WL_TYPE_Q4_0, w + (size_t)r * row_bytes, want, n);
        wl_r16_dequantize_row(rp, n, r, got);
        for (int64_t i = 0; i < n; i++)
            assert_true(same_float(want[i], got[i]));
    }
    free(w), free(rp), free(want), free(got);
}

static void test_fits(void **state)
{
    (void)state;
    assert_true(wl_r16_fits(WL_TYPE_Q4_0, 16, 32));
    assert_true(wl_r16_fits(WL_TYPE_Q4_0, 2048, 8192));
    assert_false(wl_r16_fits(WL_TYPE_Q4_0, 24, 32)); /* not whole groups */
    assert_false(wl_r16_fits(WL_TYPE_Q4_0, 0, 32));
    assert_false(wl_r16_fits(WL_TYPE_Q4_0, 16, 48)); /* not whole blocks */
    assert_false(wl_r16_fits(WL_TYPE_Q8_0, 16, 32)); /* only Q4_0 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_dequantize_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
