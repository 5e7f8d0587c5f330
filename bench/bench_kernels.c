/* bench_kernels.c - how fast the matmul kernels of every family are on this machine.
 *
 *   bench_kernels [--quick] [--cpu] [--isa NAME] [--type NAME] [--threads N] [--mb MEGABYTES]
 *
 * Prints:
 *   - memory read bandwidth (membw.h), 1 and 2 threads: the ceiling for decode;
 *   - GEMV (ntok = 1, decode): GB/s of weights streamed, per type and family, for a ~64 MB
 *     weight matrix (--mb to change; it must exceed the last-level caches of every core the
 *     threads run on, or part of it is served from cache), 1 and 2 threads through the pool;
 *   - GEMM (prefill): GFLOP/s (2 * n * rows * ntok per call) at ntok = 32 and 512.
 * Rows are split between the threads in contiguous ranges of whole 16-row groups, as the model
 * does. Each figure is the best of several timed runs after a warm-up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cpu.h"
#include "engine/gemv.h"
#include "engine/kernels.h"
#include "engine/membw.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"
#include "engine/threadpool.h"

static const uint32_t TYPES[] = {WL_TYPE_F32,  WL_TYPE_F16,  WL_TYPE_BF16, WL_TYPE_Q8_0,
                                 WL_TYPE_Q4_0, WL_TYPE_Q4_1, WL_TYPE_Q5_0, WL_TYPE_Q5_1,
                                 WL_TYPE_Q2_K, WL_TYPE_Q3_K, WL_TYPE_Q4_K, WL_TYPE_Q5_K,
                                 WL_TYPE_Q6_K};

/* The clock of the matmul timings: wall time, or with --cpu this thread's CPU time (one thread
 * only: the calling thread does all the work of a one-thread pool). CPU time leaves out the
 * time other processes hold the core, so figures on a busy machine stay comparable. */
static clockid_t g_clock = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rng_next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---- memory bandwidth probe ------------------------------------------------------------- */

static void bench_memory(wl_pool *pools[2], int quick)
{
    wl_membw *probe;
    if (wl_membw_create(wl_membw_bytes(), &probe) != 0)
        return;
    printf("memory read bandwidth (XOR of a %zu MiB buffer, best of the probe's methods; membw.h)\n",
           wl_membw_bytes() >> 20);
    for (int p = 0; p < 2; p++)
        if (pools[p])
            printf("  %d thread%s  %6.1f GB/s\n", wl_pool_size(pools[p]), p ? "s" : " ",
                   wl_membw_measure(probe, pools[p], quick ? 2 : 5) / 1e9);
    wl_membw_free(probe);
}

/* ---- matmul jobs through the pool ------------------------------------------------------- */

typedef struct {
    wl_matmul_fn matmul;
    int64_t n, rows, ntok;
    const void *w;
    size_t w_stride;
    const void *x;
    size_t x_stride;
    float *y;
    const void *gemv_prep; /* set: decode through wl_gemv (gemv.h) instead of matmul */
    uint32_t type;          /* the weights' type (for wl_gemv) */
} matmul_ctx;

static void matmul_part(void *p, int ith, int nth)
{
    matmul_ctx *c = p;
    int64_t groups = (c->rows + 15) / 16; /* whole 16-row groups per thread */
    int64_t r0 = groups * ith / nth * 16, r1 = groups * (ith + 1) / nth * 16;
    if (r1 > c->rows)
        r1 = c->rows;
    if (r0 < r1 && c->gemv_prep)
        wl_gemv(c->type, c->n, c->w, c->w_stride, r0, r1, c->gemv_prep, c->y);
    else if (r0 < r1)
        c->matmul(c->n, c->w, c->w_stride, r0, r1, c->x, c->x_stride, c->ntok, c->y,
                  (size_t)c->rows);
}

/* The byte offsets of the half-float scales in a block of a quantized type (quant.h). */
static int half_fields(uint32_t type, size_t at[2])
{
    switch (type) {
    case WL_TYPE_Q4_1: case WL_TYPE_Q5_1: case WL_TYPE_Q4_K: case WL_TYPE_Q5_K:
        at[0] = 0, at[1] = 2;
        return 2;
    case WL_TYPE_Q2_K:
        at[0] = 80, at[1] = 82;
        return 2;
    case WL_TYPE_Q3_K:
        at[0] = 108;
        return 1;
    case WL_TYPE_Q6_K:
        at[0] = 208;
        return 1;
    default: /* Q8_0, Q4_0, Q5_0 */
        at[0] = 0;
        return 1;
    }
}

/* Weights of `type` with values in about [-1, 1], no NaN/Inf/denormals. Filled directly rather
 * than quantized, to keep setup fast: speed does not depend on the values. */
static void fill_weights(uint32_t type, unsigned char *w, size_t bytes)
{
    size_t i = 0;
    switch (type) {
    case WL_TYPE_F32:
        for (; i + 4 <= bytes; i += 4) {
            float f = (float)((int64_t)(rng_next() >> 40) - (1 << 23)) / (float)(1 << 23);
            memcpy(w + i, &f, 4);
        }
        break;
    case WL_TYPE_F16:
    case WL_TYPE_BF16:
        for (; i + 2 <= bytes; i += 2) {
            float f = (float)((int64_t)(rng_next() >> 40) - (1 << 23)) / (float)(1 << 23);
            uint16_t h = type == WL_TYPE_F16 ? wl_fp32_to_fp16(f) : wl_fp32_to_bf16(f);
            memcpy(w + i, &h, 2);
        }
        break;
    default: { /* random quants and scales, then every half-float scale (d, m, dmin) 0.01 */
        size_t bb = wl_type_get(type)->type_size, at[2];
        int n_at = half_fields(type, at);
        uint16_t d = wl_fp32_to_fp16(0.01f);
        for (; i + bb <= bytes; i += bb) {
            for (size_t j = 0; j < bb; j++)
                w[i + j] = (unsigned char)rng_next();
            for (int k = 0; k < n_at; k++)
                memcpy(w + i + at[k], &d, 2);
        }
    }
    }
}

static void *make_acts(uint32_t type, int64_t n, int64_t ntok, size_t *stride)
{
    *stride = wl_act_row_bytes(type, n);
    unsigned char *x = aligned_alloc(64, (*stride * (size_t)ntok + 63) / 64 * 64);
    float *row = malloc((size_t)n * sizeof *row);
    const wl_kernel_table *k = wl_kernels(WL_ISA_SCALAR);
    for (int64_t t = 0; t < ntok; t++) {
        for (int64_t i = 0; i < n; i++)
            row[i] = (float)((int)(rng_next() % 2001) - 1000) / 1000.0f;
        k->quantize_act[wl_act_type(type)](row, x + (size_t)t * *stride, n);
    }
    free(row);
    return x;
}

/* Best time of one call over repetitions lasting about `budget` seconds. */
static double time_matmul(wl_pool *pool, matmul_ctx *c, double budget)
{
    wl_pool_run(pool, matmul_part, c); /* warm-up */
    double best = 1e30, start = now_s();
    for (int rep = 0; rep < 200; rep++) {
        double t0 = now_s();
        wl_pool_run(pool, matmul_part, c);
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
        if (now_s() - start > budget && rep >= 2)
            break;
    }
    return best;
}

static int wanted(const char *filter, const char *name)
{
    return filter == NULL || strcmp(filter, name) == 0;
}

static void bench_gemv(wl_pool *pools[2], const char *isa_f, const char *type_f, int quick,
                       int megabytes)
{
    const int64_t n = 4096;
    const size_t target = (size_t)megabytes << 20;
    printf("\nGEMV, ntok = 1: GB/s of weights streamed (n = %lld, ~%d MB of weights)\n",
           (long long)n, megabytes);
    printf("  %-6s %-7s %10s %10s\n", "type", "isa", "1 thread", "2 threads");
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        uint32_t type = TYPES[ti];
        if (!wanted(type_f, wl_type_name(type)))
            continue;
        size_t row_bytes = wl_row_bytes(type, (uint64_t)n);
        int64_t rows = (int64_t)(target / row_bytes) / 16 * 16;
        unsigned char *w = aligned_alloc(64, (row_bytes * (size_t)rows + 63) / 64 * 64);
        fill_weights(type, w, row_bytes * (size_t)rows);
        size_t x_stride;
        void *x = make_acts(type, n, 1, &x_stride);
        float *y = malloc((size_t)rows * sizeof *y);
        for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
            const wl_kernel_table *k = wl_kernels(isa);
            if (!k || !wanted(isa_f, wl_isa_name(isa)))
                continue;
            /* the kernel table's GEMV, then the decode GEMV of gemv.h where decode takes it */
            void *prep = NULL;
            if (wl_gemv_supported(isa, type) && (prep = aligned_alloc(64, wl_gemv_prep_bytes(n))))
                wl_gemv_prepare(type, n, x, prep);
            for (int path = 0; path < (prep ? 2 : 1); path++) {
                printf("  %-6s %-7s", wl_type_name(type), path ? "gemv.h" : wl_isa_name(isa));
                for (int p = 0; p < 2; p++) {
                    if (!pools[p]) {
                        printf(" %10s", "-");
                        continue;
                    }
                    matmul_ctx c = {k->matmul[type], n, rows, 1, w, row_bytes, x, x_stride, y,
                                    path ? prep : NULL, type};
                    double t = time_matmul(pools[p], &c, isa == WL_ISA_SCALAR || quick ? 0.3 : 1.0);
                    printf(" %10.1f", (double)(row_bytes * (size_t)rows) / t / 1e9);
                }
                printf("\n");
                fflush(stdout);
            }
            free(prep);
        }
        free(w);
        free(x);
        free(y);
    }
}

static void bench_gemm(wl_pool *pools[2], const char *isa_f, const char *type_f, int quick)
{
    const int64_t n = 4096, rows = 2048;
    static const int64_t NTOK[] = {32, 512};
    printf("\nGEMM: GFLOP/s (n = %lld, rows = %lld), 1 and 2 threads\n", (long long)n,
           (long long)rows);
    printf("  %-6s %-7s %12s %12s %12s %12s\n", "type", "isa", "ntok=32 1t", "ntok=32 2t",
           "ntok=512 1t", "ntok=512 2t");
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        uint32_t type = TYPES[ti];
        if (!wanted(type_f, wl_type_name(type)))
            continue;
        size_t row_bytes = wl_row_bytes(type, (uint64_t)n);
        unsigned char *w = aligned_alloc(64, (row_bytes * (size_t)rows + 63) / 64 * 64);
        fill_weights(type, w, row_bytes * (size_t)rows);
        size_t x_stride;
        void *x = make_acts(type, n, 512, &x_stride);
        float *y = malloc((size_t)rows * 512 * sizeof *y);
        for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
            const wl_kernel_table *k = wl_kernels(isa);
            if (!k || !wanted(isa_f, wl_isa_name(isa)))
                continue;
            printf("  %-6s %-7s", wl_type_name(type), wl_isa_name(isa));
            for (size_t i = 0; i < 2; i++) {
                for (int p = 0; p < 2; p++) {
                    if (!pools[p] || (quick && isa == WL_ISA_SCALAR && NTOK[i] > 32)) {
                        printf(" %12s", "-");
                        continue;
                    }
                    matmul_ctx c = {k->matmul[type], n, rows, NTOK[i], w, row_bytes, x,
                                    x_stride, y, NULL, type};
                    double t = time_matmul(pools[p], &c, quick ? 0.2 : 0.5);
                    printf(" %12.1f", 2.0 * (double)n * (double)rows * (double)NTOK[i] / t / 1e9);
                    fflush(stdout);
                }
            }
            printf("\n");
        }
        free(w);
        free(x);
        free(y);
    }
}

int main(int argc, char **argv)
{
    const char *isa_f = NULL, *type_f = NULL;
    int quick = 0, max_threads = 2, megabytes = 64;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--cpu") == 0)
            g_clock = CLOCK_THREAD_CPUTIME_ID, max_threads = 1;
        else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc)
            isa_f = argv[++i];
        else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            type_f = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            max_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
            megabytes = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 64;
        else {
            fprintf(stderr,
                    "usage: %s [--quick] [--cpu] [--isa NAME] [--type NAME] [--threads N] [--mb MB]\n",
                    argv[0]);
            return 2;
        }
    }
    if (g_clock != CLOCK_MONOTONIC)
        max_threads = 1; /* --cpu: see g_clock */
    const wl_cpu_features *f = wl_cpu();
    printf("cpu: %d cores; avx2 %d avx512f %d avx512vnni %d avx512bf16 %d; best family %s\n",
           wl_cpu_count(), f->avx2, f->avx512f, f->avx512vnni, f->avx512bf16,
           wl_isa_name(wl_isa_best()));
    wl_pool *pools[2] = {NULL, NULL};
    if (wl_pool_create(1, &pools[0], NULL) != WANDLER_OK)
        return 1;
    if (max_threads >= 2 && wl_pool_create(max_threads, &pools[1], NULL) != WANDLER_OK)
        pools[1] = NULL;
    if (isa_f == NULL && type_f == NULL)
        bench_memory(pools, quick);
    bench_gemv(pools, isa_f, type_f, quick, megabytes);
    bench_gemm(pools, isa_f, type_f, quick);
    wl_pool_destroy(pools[0]);
    wl_pool_destroy(pools[1]);
    return 0;
}
