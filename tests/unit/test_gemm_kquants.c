/* test_gemm_kquants.c - the row-lane prefill GEMM of Q4_K, Q6_K and Q5_0 weights (gemm_k.h): the
 * AVX-512 kernel gives wl_gemm_k_ref's results bit for bit, for token counts of 1 to many (whole
 * steps of 8 tokens, remainders, more than one chunk of 64), row ranges that are not whole tiles
 * of 16 and do not start at 0, rows of 1 to many super-blocks, extreme quants (all at their
 * limits, activations of -128) and zero or large scales; and the reference itself is the dot
 * product (checked in double precision) and close to the canonical scalar matmul, so a wrong
 * definition cannot pass either. Without AVX-512 VNNI only the reference is checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "engine/cpu.h"
#include "engine/gemm_k.h"
#include "engine/kernels.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t next_u32(void)
{
    return wl_test_rand_u32(&rng);
}

static float uniform(float lo, float hi)
{
    return wl_test_rand_uniform(&rng, lo, hi);
}

/* A random half scale: sometimes 0, sometimes large. */
static uint16_t random_scale(void)
{
    uint32_t k = next_u32() % 16;
    float d = k == 0 ? 0.0f : k == 1 ? uniform(100.0f, 1000.0f) : uniform(-0.05f, 0.05f);
    return wl_fp32_to_fp16(d);
}

/* Random weight rows: random bytes for quants and sub-block scales (every bit pattern is a valid
 * block), random half super-block scales. extreme: every quant at its maximum and every
 * sub-block scale (and Q4_K min) at its limit. */
static void fill_weights(uint32_t type, unsigned char *w, int64_t rows, size_t row_bytes, int extreme)
{
    const size_t bb = wl_type_get(type)->type_size;
    for (int64_t r = 0; r < rows; r++)
        for (size_t off = 0; off < row_bytes; off += bb) {
            unsigned char *blk = w + (size_t)r * row_bytes + off;
            for (size_t i = 0; i < bb; i++)
                blk[i] = extreme ? 0xff : (unsigned char)next_u32();
            uint16_t d = random_scale(), dmin = random_scale();
            if (type == WL_TYPE_Q5_0) {
                memcpy(blk, &d, 2);
            } else if (type == WL_TYPE_Q4_K) {
                memcpy(blk, &d, 2);
                memcpy(blk + 2, &dmin, 2);
            } else {
                if (extreme) /* scales -128 and 127 */
                    for (int j = 0; j < 16; j++)
                        blk[192 + j] = j % 2 ? 0x80 : 0x7f;
                memcpy(blk + 208, &d, 2);
            }
        }
}

/* A hand-made Q8_K row (Q5_0: Q8_0) with quants at -128 and 127 (which the quantizers never
 * make). */
static void extreme_act(uint32_t type, unsigned char *dst, int64_t n, float d)
{
    if (type == WL_TYPE_Q5_0) {
        wl_test_q8_0_extremes(dst, n, d);
        return;
    }
    for (int64_t b = 0; b < n / WL_QK_K; b++) {
        wl_block_q8_k blk;
        blk.d = d;
        for (int i = 0; i < WL_QK_K; i++)
            blk.qs[i] = (int8_t)((i / 3) % 2 ? 127 : -128);
        for (int k = 0; k < 16; k++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += blk.qs[16 * k + i];
            blk.bsums[k] = (int16_t)s;
        }
        memcpy(dst + (size_t)b * sizeof blk, &blk, sizeof blk);
    }
}

/* The exact dot product of one weight row with one Q8_K row, in double (exact for these
 * magnitudes but for the products of scales), and the sum of the magnitudes of its terms. */
static void exact_dot(uint32_t type, int64_t n, const unsigned char *wr, const unsigned char *xr, double *dot,
                      double *mag)
{
    *dot = *mag = 0.0;
    const size_t bb = wl_type_get(type)->type_size;
    if (type == WL_TYPE_Q5_0) {
        for (int64_t b = 0; b < n / WL_QK; b++) {
            const unsigned char *wb = wr + (size_t)b * bb, *xb = xr + (size_t)b * sizeof(wl_block_q8_0);
            const double d = (double)wl_fp16_to_fp32(wl_load_u16(wb)) * wl_fp16_to_fp32(wl_load_u16(xb));
            for (int j = 0; j < WL_QK; j++) {
                const int nib = j < 16 ? wb[6 + j] & 15 : wb[6 + j - 16] >> 4;
                const int q = nib | ((wb[2 + j / 8] >> (j % 8)) & 1) << 4;
                const double term = d * (q - 16) * (signed char)xb[2 + j];
                *dot += term;
                *mag += fabs(term);
            }
        }
        return;
    }
    for (int64_t b = 0; b < n / WL_QK_K; b++) {
        const unsigned char *wb = wr + (size_t)b * bb;
        wl_block_q8_k x;
        memcpy(&x, xr + (size_t)b * sizeof x, sizeof x);
        if (type == WL_TYPE_Q4_K) {
            const double d = (double)wl_fp16_to_fp32(wl_load_u16(wb)) * x.d,
                         dmin = (double)wl_fp16_to_fp32(wl_load_u16(wb + 2)) * x.d;
            for (int v = 0; v < WL_QK_K; v++) {
                int sc, m;
                wl_k4_scale_min(wb + 4, v / 32, &sc, &m);
                const unsigned char byte = wb[16 + 32 * (v / 64) + v % 32];
                const int q = v % 64 < 32 ? byte & 15 : byte >> 4;
                const double term = d * sc * q * x.qs[v] - dmin * m * x.qs[v];
                *dot += term;
                *mag += fabs(d * sc * q * x.qs[v]) + fabs(dmin * m * x.qs[v]);
            }
        } else {
            const double d = (double)wl_fp16_to_fp32(wl_load_u16(wb + 208)) * x.d;
            for (int v = 0; v < WL_QK_K; v++) {
                const int h = v / 128, r = v % 128, l = r % 32, quarter = r / 32;
                const unsigned char lo = wb[64 * h + l + 32 * (quarter % 2)];
                const int nib = quarter < 2 ? lo & 15 : lo >> 4;
                const int q = nib | (((wb[128 + 32 * h + l] >> (2 * quarter)) & 3) << 4);
                const double term = d * (signed char)wb[192 + v / 16] * (q - 32) * x.qs[v];
                *dot += term;
                *mag += fabs(term);
            }
        }
    }
}

/* act: 0 random, 1 alternating +-scale through the quantizer, 2 hand-made -128 / 127 quants */
static void check(uint32_t type, int64_t n, int64_t rows, int64_t ntok, int64_t r0, int64_t r1, int extreme,
                  int act)
{
    const wl_kernel_table *scalar = wl_kernels(WL_ISA_SCALAR);
    const int fast = wl_gemm_k_supported(WL_ISA_AVX512, type);
    const size_t row_bytes = wl_row_bytes(type, (uint64_t)n), xs = wl_act_row_bytes(type, n);
    const size_t out = (size_t)(rows * ntok) * sizeof(float);
    unsigned char *w = malloc((size_t)rows * row_bytes + 1);
    unsigned char *xq = malloc((size_t)ntok * xs + 1);
    float *x = malloc((size_t)n * sizeof(float));
    float *canon = malloc(out), *want = malloc(out), *got = malloc(out);
    assert_non_null(w);
    assert_non_null(xq);
    assert_non_null(x);
    assert_non_null(canon);
    assert_non_null(want);
    assert_non_null(got);
    /* unaligned rows, as in GGUF files */
    fill_weights(type, w + 1, rows, row_bytes, extreme);
    for (int64_t t = 0; t < ntok; t++) {
        const float scale = t % 5 == 4 ? 0.0f : t % 3 == 0 ? 50.0f : 1.0f;
        unsigned char *dst = xq + 1 + (size_t)t * xs;
        if (act == 2) {
            extreme_act(type, dst, n, scale * 0.01f);
            continue;
        }
        for (int64_t i = 0; i < n; i++)
            x[i] = act == 1 ? (i % 2 ? scale : -scale) : uniform(-1.0f, 1.0f) * scale;
        scalar->quantize_act[wl_act_type(type)](x, dst, n);
    }
    for (int64_t i = 0; i < rows * ntok; i++)
        canon[i] = want[i] = got[i] = -12345.0f;
    scalar->matmul[type](n, w + 1, row_bytes, r0, r1, xq + 1, xs, ntok, canon, (size_t)rows);
    wl_gemm_k_ref(type, n, w + 1, row_bytes, r0, r1, xq + 1, xs, ntok, want, (size_t)rows);
    if (fast)
        wl_gemm_k(type, n, w + 1, row_bytes, r0, r1, xq + 1, xs, ntok, got, (size_t)rows);
    /* float rounding of a chain of 2 products and 2 FMAs per super-block (and the canonical
     * lanes' own): far below this bound, far above it for any wrong term */
    const int64_t nblocks = n / (int64_t)wl_type_get(type)->block_size;
    const double tol = 4.0 * (double)(2 * nblocks + 4) * 0x1p-24;
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
                what = "the AVX-512 GEMM differs from wl_gemm_k_ref";
            else if (fabs((double)a - dot) > tol * mag)
                what = "wl_gemm_k_ref is not the dot product";
            else if (fabs((double)c - dot) > tol * mag)
                what = "the canonical matmul is not the dot product";
            else if (fabs((double)a - (double)c) > 2.0 * tol * mag)
                what = "wl_gemm_k_ref is far from the canonical matmul";
            if (what && bad++ < 3)
                fprintf(
                    stderr,
                    "%s n=%lld ntok=%lld [%lld,%lld) row %lld token %lld: %s: gemm %.9g ref %.9g canonical "
                    "%.9g exact %.9g\n",
                    wl_type_name(type), (long long)n, (long long)ntok, (long long)r0, (long long)r1,
                    (long long)r, (long long)t, what, b, a, c, dot);
        }
    assert_int_equal(bad, 0);
    free(w);
    free(xq);
    free(x);
    free(canon);
    free(want);
    free(got);
}

static void test_gemm_k_matches_reference(void **state)
{
    (void)state;
    const uint32_t types[] = {WL_TYPE_Q4_K, WL_TYPE_Q6_K, WL_TYPE_Q5_0};
    if (!wl_gemm_k_supported(WL_ISA_AVX512, WL_TYPE_Q4_K))
        printf("  no AVX-512 VNNI here: only the scalar definition is checked\n");
    const int64_t ns[] = {256, 512, 768, 2048};
    /* whole steps of 8 tokens, remainders of 1 to 7, more than a chunk of 64 */
    const int64_t ntoks[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 33, 64, 71};
    for (size_t ti = 0; ti < 3; ti++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t ki = 0; ki < sizeof ntoks / sizeof *ntoks; ki++) {
                const int64_t rows = 13 + 5 * (int64_t)ki; /* 13 .. 68 */
                check(types[ti], ns[ni], rows, ntoks[ki], 0, rows, 0, 0);
                check(types[ti], ns[ni], rows, ntoks[ki], 3, rows - 2, 0, 0);
            }
    for (size_t ti = 0; ti < 3; ti++) {
        check(types[ti], 4096, 9, 5, 0, 9, 1, 1);
        check(types[ti], 4096, 35, 17, 0, 35, 1, 2);
        check(types[ti], 2048, 40, 11, 1, 39, 1, 2);
        check(types[ti], 256, 40, 130, 4, 37, 0, 0);
        check(types[ti], 512, 96, 24, 16, 80, 0, 1);
        check(types[ti], 1024, 64, 11, 17, 64, 1, 0);
        check(types[ti], 256, 1, 3, 0, 1, 0, 0);
    }
    /* Q5_0: units of 8 blocks, partial ones (896 = 28 blocks), one block; and more tokens than
     * one chunk holds when the rows are long (4096 prepared blocks) */
    const int64_t n5[] = {32, 96, 288, 896, 4864};
    for (size_t ni = 0; ni < sizeof n5 / sizeof *n5; ni++) {
        check(WL_TYPE_Q5_0, n5[ni], 37, 9, 5, 37, 0, 0);
        check(WL_TYPE_Q5_0, n5[ni], 48, 64, 0, 48, 0, 1);
        check(WL_TYPE_Q5_0, n5[ni], 21, 71, 2, 19, 1, 2);
    }
    check(WL_TYPE_Q5_0, 16384, 17, 11, 0, 17, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_k_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
