/* test_kernels_perf.c - the speed-oriented kernels outside the kernel table: the row-lane
 * prefill GEMM (gemm.h) of Q8_0 and Q4_0 weights gives its scalar definition's results
 * (wl_gemm_ref) bit for bit, for odd and even token counts and counts that are not whole token
 * tiles, row ranges that are not whole 16-row tiles nor start at one, rows of one to many blocks
 * (more than one rearranged chunk), and extreme values (all quants at their limits, zero and
 * large scales); and both it and the canonical scalar matmul of the kernel table are within
 * rounding of the exact dot products (double), so a wrong definition cannot pass either. The
 * AVX-512 part is skipped (passes trivially) on CPUs without it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "engine/cpu.h"
#include "engine/gemm.h"
#include "engine/kernels.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_u32(void)
{
    return wl_test_rand_u32(&rng);
}

static float uniform(float lo, float hi)
{
    return wl_test_rand_uniform(&rng, lo, hi);
}

/* Random weight rows of `type`: random bytes for the quants, a random half scale (sometimes 0,
 * sometimes large); extreme: every quant byte at its limit. */
static void fill_weights(uint32_t type, unsigned char *w, int64_t rows, size_t row_bytes, int extreme)
{
    const size_t bb = type == WL_TYPE_Q4_0 ? sizeof(wl_block_q4_0) : sizeof(wl_block_q8_0);
    for (int64_t r = 0; r < rows; r++)
        for (size_t off = 0; off < row_bytes; off += bb) {
            unsigned char *blk = w + (size_t)r * row_bytes + off;
            uint32_t k = next_u32() % 16;
            float d = k == 0 ? 0.0f : k == 1 ? uniform(100.0f, 1000.0f) : uniform(-0.05f, 0.05f);
            uint16_t h = wl_fp32_to_fp16(d);
            memcpy(blk, &h, 2);
            for (size_t i = 2; i < bb; i++) {
                unsigned char v = (unsigned char)next_u32();
                if (extreme)
                    v = type == WL_TYPE_Q4_0 ? ((i & 1) ? 0xff : 0x00) : ((i & 1) ? 0x81 : 0x7f);
                else if (type == WL_TYPE_Q8_0 && v == 0x80)
                    v = 0x81; /* Q8_0 weights from the quantizer never hold -128 */
                blk[i] = v;
            }
        }
}

/* The exact dot of W row r and activation row x (double: every term and partial sum is exact
 * to far below float rounding), and the sum of the magnitudes of its 32 * nb products (which
 * bounds every partial sum of either order of summation). */
static void exact_dot(uint32_t type, int64_t n, const unsigned char *wr, const unsigned char *xr, double *dot,
                      double *mag)
{
    *dot = *mag = 0.0;
    for (int64_t b = 0; b < n / WL_QK; b++) {
        const unsigned char *xb = xr + (size_t)b * sizeof(wl_block_q8_0);
        long isum = 0, iabs = 0;
        const unsigned char *wb;
        if (type == WL_TYPE_Q4_0) {
            wb = wr + (size_t)b * sizeof(wl_block_q4_0);
            for (int j = 0; j < WL_QK; j++) {
                const int q = j < 16 ? (wb[2 + j] & 15) : (wb[2 + j - 16] >> 4);
                isum += (long)(q - 8) * (signed char)xb[2 + j];
                iabs += labs((long)(q - 8) * (signed char)xb[2 + j]);
            }
        } else {
            wb = wr + (size_t)b * sizeof(wl_block_q8_0);
            for (int j = 0; j < WL_QK; j++) {
                isum += (long)(signed char)wb[2 + j] * (signed char)xb[2 + j];
                iabs += labs((long)(signed char)wb[2 + j] * (signed char)xb[2 + j]);
            }
        }
        const double d = (double)wl_fp16_to_fp32(wl_load_u16(wb)) * wl_fp16_to_fp32(wl_load_u16(xb));
        *dot += d * (double)isum;
        *mag += fabs(d) * (double)iabs;
    }
}

static void check(uint32_t type, int64_t n, int64_t rows, int64_t ntok, int64_t r0, int64_t r1, int extreme)
{
    const wl_kernel_table *scalar = wl_kernels(WL_ISA_SCALAR);
    const int fast = wl_gemm_supported(WL_ISA_AVX512, type);
    const size_t row_bytes = wl_row_bytes(type, (uint64_t)n), xs = wl_act_row_bytes(type, n);
    const size_t out = (size_t)(rows * ntok) * sizeof(float);
    unsigned char *w = malloc((size_t)rows * row_bytes + 1);
    unsigned char *xq = malloc((size_t)ntok * xs + 1);
    float *x = malloc((size_t)n * sizeof(float));
    void *prep = aligned_alloc(64, (wl_gemm_prep_bytes(n, ntok) + 63) / 64 * 64);
    float *canon = malloc(out), *want = malloc(out), *got = malloc(out);
    assert_non_null(w);
    assert_non_null(xq);
    assert_non_null(x);
    assert_non_null(prep);
    assert_non_null(canon);
    assert_non_null(want);
    assert_non_null(got);
    /* unaligned rows, as in GGUF files */
    fill_weights(type, w + 1, rows, row_bytes, extreme);
    for (int64_t t = 0; t < ntok; t++) {
        const float scale = t % 5 == 4 ? 0.0f : t % 3 == 0 ? 50.0f : 1.0f;
        for (int64_t i = 0; i < n; i++)
            x[i] = extreme ? (i % 2 ? scale : -scale) : uniform(-1.0f, 1.0f) * scale;
        scalar->quantize_act[WL_TYPE_Q8_0](x, xq + 1 + (size_t)t * xs, n);
    }
    for (int64_t i = 0; i < rows * ntok; i++)
        canon[i] = want[i] = got[i] = -12345.0f;
    scalar->matmul[type](n, w + 1, row_bytes, r0, r1, xq + 1, xs, ntok, canon, (size_t)rows);
    wl_gemm_ref(type, n, w + 1, row_bytes, r0, r1, xq + 1, xs, ntok, want, (size_t)rows);
    if (fast) {
        wl_gemm_prepare(type, n, xq + 1, xs, ntok, prep);
        wl_gemm(type, n, w + 1, row_bytes, r0, r1, prep, ntok, got, (size_t)rows);
    }
    /* float rounding of a chain of n/32 products and FMAs: far below this bound */
    const double tol = 2.0 * (double)(n / WL_QK + 2) * 0x1p-24;
    int bad = 0;
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = 0; r < rows; r++) {
            const size_t i = (size_t)(t * rows + r);
            const float a = want[i], b = got[i], c = canon[i];
            const char *what = NULL;
            double dot = -12345.0, mag = 0.0;
            if (r >= r0 && r < r1)
                exact_dot(type, n, w + 1 + (size_t)r * row_bytes, xq + 1 + (size_t)t * xs, &dot, &mag);
            if (fast && memcmp(&a, &b, sizeof a) != 0)
                what = "the AVX-512 GEMM differs from wl_gemm_ref";
            else if (fabs((double)a - dot) > tol * mag)
                what = "wl_gemm_ref is not the dot product";
            else if (fabs((double)c - dot) > tol * mag)
                what = "the canonical matmul is not the dot product";
            else if (fabs((double)a - (double)c) > 2.0 * tol * mag)
                what = "wl_gemm_ref is far from the canonical matmul";
            if (what && bad++ < 3)
                fprintf(stderr, "%s n=%lld ntok=%lld [%lld,%lld) row %lld token %lld: %s: gemm %.9g ref %.9g canonical %.9g exact %.9g\n",
                        wl_type_name(type), (long long)n, (long long)ntok, (long long)r0, (long long)r1, (long long)r,
                        (long long)t, what, b, a, c, dot);
        }
    assert_int_equal(bad, 0);
    free(w);
    free(xq);
    free(x);
    free(prep);
    free(canon);
    free(want);
    free(got);
}

static void test_gemm_matches_scalar(void **state)
{
    (void)state;
    const uint32_t types[] = {WL_TYPE_Q8_0, WL_TYPE_Q4_0};
    if (!wl_gemm_supported(WL_ISA_AVX512, WL_TYPE_Q4_0))
        printf("  no AVX-512 VNNI here: only the scalar definition is checked\n");
    /* 1 to 65 blocks (and 128 below): within one rearranged chunk of 64 blocks (gemm_avx512.c),
     * exactly one, one and a partial one, two */
    const int64_t ns[] = {32, 64, 96, 256, 576, 1056, 2048, 2080};
    /* whole token tiles of 8 and remainders of 1 to 7 */
    const int64_t ntoks[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 33, 64};
    for (size_t ti = 0; ti < 2; ti++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t ki = 0; ki < sizeof ntoks / sizeof *ntoks; ki++) {
                const int64_t rows = 13 + 3 * (int64_t)ki; /* 13 .. 43 */
                check(types[ti], ns[ni], rows, ntoks[ki], 0, rows, 0);
                check(types[ti], ns[ni], rows, ntoks[ki], 3, rows - 2, 0);
            }
    for (size_t ti = 0; ti < 2; ti++) {
        check(types[ti], 4096, 9, 5, 0, 9, 1);
        check(types[ti], 4096, 35, 17, 0, 35, 1);
        check(types[ti], 256, 40, 130, 4, 37, 0);
        check(types[ti], 512, 96, 24, 16, 80, 0);
        check(types[ti], 128, 64, 11, 17, 64, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_matches_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
