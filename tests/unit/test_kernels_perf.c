/* test_kernels_perf.c - the speed-oriented kernels outside the kernel table give the scalar
 * reference's results bit for bit: the pair-layout prefill GEMM (gemm.h) of Q8_0 and Q4_0
 * weights, for odd and even token counts, row ranges that are not whole tiles, rows of one to
 * many blocks, and extreme values (all quants at their limits, zero scales). Skipped (passes
 * trivially) on CPUs without it. */
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
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_u32() & 0xffffff) / (float)0x1000000;
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

static void check(uint32_t type, int64_t n, int64_t rows, int64_t ntok, int64_t r0, int64_t r1, int extreme)
{
    const wl_kernel_table *ref = wl_kernels(WL_ISA_SCALAR);
    const size_t row_bytes = wl_row_bytes(type, (uint64_t)n), xs = wl_act_row_bytes(type, n);
    unsigned char *w = malloc((size_t)rows * row_bytes + 1);
    unsigned char *xq = malloc((size_t)ntok * xs + 1);
    float *x = malloc((size_t)n * sizeof(float));
    void *prep = aligned_alloc(64, (wl_gemm_prep_bytes(n, ntok) + 63) / 64 * 64);
    float *want = malloc((size_t)(rows * ntok) * sizeof(float));
    float *got = malloc((size_t)(rows * ntok) * sizeof(float));
    assert_non_null(w);
    assert_non_null(xq);
    assert_non_null(prep);
    /* unaligned rows, as in GGUF files */
    fill_weights(type, w + 1, rows, row_bytes, extreme);
    for (int64_t t = 0; t < ntok; t++) {
        const float scale = t % 5 == 4 ? 0.0f : t % 3 == 0 ? 50.0f : 1.0f;
        for (int64_t i = 0; i < n; i++)
            x[i] = extreme ? (i % 2 ? scale : -scale) : uniform(-1.0f, 1.0f) * scale;
        ref->quantize_act[WL_TYPE_Q8_0](x, xq + 1 + (size_t)t * xs, n);
    }
    for (int64_t i = 0; i < rows * ntok; i++)
        want[i] = got[i] = -12345.0f;
    ref->matmul[type](n, w + 1, row_bytes, r0, r1, xq + 1, xs, ntok, want, (size_t)rows);
    wl_gemm_prepare(type, n, xq + 1, xs, ntok, prep);
    wl_gemm(type, n, w + 1, row_bytes, r0, r1, prep, ntok, got, (size_t)rows);
    int bad = 0;
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = 0; r < rows; r++) {
            float a = want[t * rows + r], b = got[t * rows + r];
            if (memcmp(&a, &b, sizeof a) != 0 && bad++ < 3)
                fprintf(stderr, "%s n=%lld ntok=%lld [%lld,%lld) row %lld token %lld: %.9g != %.9g (scalar)\n",
                        wl_type_name(type), (long long)n, (long long)ntok, (long long)r0, (long long)r1, (long long)r,
                        (long long)t, b, a);
        }
    assert_int_equal(bad, 0);
    free(w);
    free(xq);
    free(x);
    free(prep);
    free(want);
    free(got);
}

static void test_gemm_matches_scalar(void **state)
{
    (void)state;
    const uint32_t types[] = {WL_TYPE_Q8_0, WL_TYPE_Q4_0};
    if (!wl_gemm_supported(WL_ISA_AVX512, WL_TYPE_Q4_0)) {
        printf("  no AVX-512 VNNI here: nothing to check\n");
        return;
    }
    const int64_t ns[] = {32, 64, 96, 256, 576, 2048};
    const int64_t ntoks[] = {2, 3, 7, 8, 9, 16, 33, 64};
    for (size_t ti = 0; ti < 2; ti++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t ki = 0; ki < sizeof ntoks / sizeof *ntoks; ki++) {
                const int64_t rows = 13 + (int64_t)ki;
                check(types[ti], ns[ni], rows, ntoks[ki], 0, rows, 0);
                check(types[ti], ns[ni], rows, ntoks[ki], 3, rows - 2, 0);
            }
    for (size_t ti = 0; ti < 2; ti++) {
        check(types[ti], 4096, 9, 5, 0, 9, 1);
        check(types[ti], 256, 40, 130, 4, 37, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_matches_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
