/* bench_decode_ceiling.c - how much of the memory read-bandwidth probe (membw.h) decode's weight
 * products can get on this machine, and how much of it the repacked Q4_0 decode kernel gets.
 *
 *   bench_decode_ceiling [--rounds N] [--gap US] [--file PATH]
 *
 * Replays the weight products of one decode token of a llama-3.2-1b-shaped Q4_0 model, repacked
 * (repack.h), 16 layers of
 *     q|k|v 3072 x 2048, o 2048 x 2048, gate and up 8192 x 2048 taken together, down 2048 x 8192
 * (547 MB), over anonymous memory in 2 MiB pages where the kernel gives them, or with --file over
 * the first 547 MB of a file mapped as the model maps its weights (gguf_map_file: read-only,
 * 2 MiB-aligned, 2 MiB pages asked for; e.g. a repack cache file of wandler's,
 * ~/.cache/wandler/repack/). The rows are shared out as decode shares them (wl_decode_blocks,
 * steal.h) over a pool of two threads, with a wait of --gap microseconds (default 8) between
 * products for the steps that come between them in the model. Each round measures the probe
 * (over a buffer as large as the weights, as `wandler bench` sizes it, so that caches help both
 * alike), then, in rotating order, two tokens of:
 *   - kernel: wl_gemm_r16 on one token, the decode GEMV over repacked Q4_0 (gemm_avx512.c);
 *   - loads:  the same ranges read with the same loads and the same prefetches as the kernel,
 *             with nothing computed: what this access pattern can get, the kernel's ceiling.
 * and prints GB/s over the products' time (the gaps left out) and the share of the probe.
 * The medians over the rounds end the output.
 *
 * The model adds to the kernel's time the steps between products (norms, attention, RoPE, the
 * activations' quantization): decode's share of the bound (`wandler bench`) is at most the
 * kernel's share here times the products' share of a token's time.
 *
 * Needs the AVX-512 VNNI decode kernel of repacked Q4_0 (wl_gemm_supported); else it says so
 * and exits 0. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/cpu.h"
#include "engine/forward_impl.h"
#include "engine/gemm.h"
#include "engine/gemm_impl.h"
#include "engine/gguf.h"
#include "engine/mapped_pages.h"
#include "engine/membw.h"
#include "engine/quant.h"
#include "engine/repack.h"
#include "engine/steal.h"
#include "engine/tensor_type.h"
#include "engine/threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define LAYERS 16
#define MAX_ROUNDS 1000
#define TOKENS 2 /* per measurement */

enum { KERNEL, LOADS, MODES };
static const char *const MODE_NAMES[MODES] = {"kernel", "loads"};

/* One product: rows x n of R16 weights, or gate and up (two matrices, same rows) together. */
typedef struct {
    int64_t rows, n;
} shape;

static const shape SHAPES[] = {{3072, 2048}, {2048, 2048}, {8192, 2048}, {2048, 8192}};
enum { S_QKV, S_O, S_GATE_UP, S_DOWN, N_SHAPES };

typedef struct {
    int mode;
    const unsigned char *w[2]; /* w[1]: up, with gate and up */
    int n_w;
    int64_t n, groups, block_groups, most;
    const void *prep;
    float *y;
    wl_steal_slot *steal;
    _Atomic uint64_t *sink;
} job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
/* The kernel's access pattern (gemm_avx512.c, gemv_r16) without its arithmetic: each record's
 * scales (32 bytes) and four 64-byte loads of nibbles, every record's lines prefetched
 * as far ahead and with the same hint as the kernel on this CPU (wl_gemv_r16_nta); the
 * loads are XORed so that they stay. */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) uint64_t
loads_r16_hint(int64_t n, const unsigned char *w, int64_t g0, int64_t g1, const int nta)
{
    const int64_t nb = n / WL_QK;
    __m512i a = _mm512_setzero_si512(), b = a;
    for (int64_t g = g0; g < g1; g++) {
        const unsigned char *rec = w + (size_t)(g * nb) * WL_R16_RECORD;
        for (int64_t k = 0; k < nb; k++, rec += WL_R16_RECORD) {
            for (int l = 0; l < WL_R16_RECORD; l += 64)
                WL_GEMV_R16_PREFETCH_LINE(rec + l, nta);
            a = _mm512_xor_si512(a, _mm512_loadu_si512((const void *)(rec + 32)));
            b = _mm512_xor_si512(b, _mm512_loadu_si512((const void *)(rec + 96)));
            a = _mm512_xor_si512(a, _mm512_loadu_si512((const void *)(rec + 160)));
            b = _mm512_xor_si512(b, _mm512_loadu_si512((const void *)(rec + 224)));
            a = _mm512_xor_si512(a, _mm512_castsi256_si512(_mm256_loadu_si256((const void *)rec)));
        }
    }
    return (uint64_t)_mm512_reduce_or_epi64(_mm512_xor_si512(a, b));
}

__attribute__((target("avx512f"))) static uint64_t loads_r16(int64_t n, const unsigned char *w, int64_t g0,
                                                              int64_t g1)
{
    return wl_gemv_r16_nta() ? loads_r16_hint(n, w, g0, g1, 1) : loads_r16_hint(n, w, g0, g1, 0);
}
#endif

static void run_product(void *ctx, int ith, int nth)
{
    job *j = ctx;
    uint64_t sum = 0;
    for (wl_steal_range r; (r = wl_steal_next(j->steal, nth, ith, j->most)).count > 0;) {
        const int64_t g0 = r.first * j->block_groups;
        int64_t g1 = (r.first + r.count) * j->block_groups;
        g1 = g1 < j->groups ? g1 : j->groups;
        for (int k = 0; k < j->n_w; k++) {
            if (j->mode == KERNEL)
                wl_gemm_r16(j->n, j->w[k], g0 * WL_R16_ROWS, g1 * WL_R16_ROWS, j->prep, 1, j->y + k * 8192, 0);
#if defined(__x86_64__)
            else
                sum ^= loads_r16(j->n, j->w[k], g0, g1);
#endif
        }
    }
    atomic_fetch_xor_explicit(j->sink, sum, memory_order_relaxed);
}

static size_t product_bytes(const shape *s)
{
    return wl_r16_bytes(s->rows, s->n);
}

/* One token's products, one after the other; returns the seconds spent inside them. */
static double one_token(wl_pool *pool, int mode, const unsigned char *weights, void *const prep[2], float *y,
                        wl_steal_slot *steal, _Atomic uint64_t *sink, double gap_s)
{
    const int threads = wl_pool_size(pool);
    const unsigned char *p = weights;
    double inside = 0;
    for (int l = 0; l < LAYERS; l++)
        for (int s = 0; s < N_SHAPES; s++) {
            const shape *sh = &SHAPES[s];
            job j = {.mode = mode, .n_w = s == S_GATE_UP ? 2 : 1, .n = sh->n, .groups = sh->rows / WL_R16_ROWS,
                     .prep = prep[sh->n == 8192], .y = y, .steal = steal, .sink = sink};
            for (int k = 0; k < j.n_w; k++) {
                j.w[k] = p;
                p += product_bytes(sh);
            }
            int64_t block_rows;
            const int64_t blocks = wl_decode_blocks(sh->rows, product_bytes(sh) / (size_t)sh->rows, 1, threads,
                                                    &block_rows, &j.most);
            j.block_groups = block_rows / WL_R16_ROWS;
            wl_steal_init(steal, threads, blocks);
            const double t0 = now_s();
            wl_pool_run(pool, run_product, &j);
            const double t1 = now_s();
            inside += t1 - t0;
            while (now_s() - t1 < gap_s) {
            }
        }
    return inside;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Random R16 records with sane half scales (0.0625 times 1..2) and random nibbles. */
static void fill_weights(unsigned char *w, size_t bytes)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        memcpy(w + i, &s, 8);
    }
    for (size_t r = 0; r + WL_R16_RECORD <= bytes; r += WL_R16_RECORD)
        for (int i = 0; i < WL_R16_ROWS; i++) {
            const uint16_t d = (uint16_t)(0x2c00 | (w[r + 2 * i] & 0x3ff));
            memcpy(w + r + 2 * i, &d, 2);
        }
}

/* The first `bytes` of the file at path, mapped as the model maps its weights (gguf_map_file),
 * every page read once; NULL with a message on error. */
static unsigned char *map_file(const char *path, size_t bytes)
{
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < bytes) {
        fprintf(stderr, "%s: cannot open it, or it holds fewer than %zu bytes\n", path, bytes);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *map = gguf_map_file(fd, bytes);
    close(fd);
    if (map == MAP_FAILED) {
        fprintf(stderr, "%s: cannot map it\n", path);
        return NULL;
    }
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < bytes; i += 4096)
        sink ^= ((const unsigned char *)map)[i];
    (void)sink;
    return map;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    int rounds = 20;
    double gap_us = 8;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            const long v = strtol(argv[++i], &end, 10);
            rounds = *end || v < 1 || v > MAX_ROUNDS ? -1 : (int)v;
        } else if (strcmp(argv[i], "--gap") == 0 && i + 1 < argc) {
            gap_us = strtod(argv[++i], &end);
            gap_us = *end ? -1 : gap_us;
        } else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--rounds N] [--gap US] [--file PATH]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || !(gap_us >= 0 && gap_us <= 1e6)) {
        fprintf(stderr, "--rounds must be 1..%d and --gap 0..1000000 microseconds\n", MAX_ROUNDS);
        return 2;
    }
    if (!wl_gemm_supported(WL_ISA_AVX512, WL_TYPE_Q4_0)) {
        printf("this CPU has no AVX-512 VNNI decode kernel over repacked Q4_0: nothing to measure\n");
        return 0;
    }

    size_t total = 0;
    for (int s = 0; s < N_SHAPES; s++)
        total += product_bytes(&SHAPES[s]) * (s == S_GATE_UP ? 2 : 1);
    total *= LAYERS;
    const size_t huge = (size_t)2 << 20, alloc = (total + huge - 1) / huge * huge;
    unsigned char *weights = file ? map_file(file, total) : aligned_alloc(huge, alloc);
    float *y = aligned_alloc(64, 2 * 8192 * sizeof(float));
    void *prep[2] = {aligned_alloc(64, wl_gemm_prep_bytes(2048, 1)), aligned_alloc(64, wl_gemm_prep_bytes(8192, 1))};
    wl_steal_slot *steal = aligned_alloc(64, 2 * sizeof *steal);
    wl_pool *pool = NULL;
    wl_membw *probe = NULL;
    int rc = 1;
    if (!weights || !y || !prep[0] || !prep[1] || !steal || wl_pool_create(2, &pool, NULL) != 0 ||
        wl_membw_create(alloc, &probe) != 0) {
        if (weights || !file) /* map_file said why */
            fprintf(stderr, "out of memory (%zu MiB of weights and a probe as large)\n", alloc >> 20);
        goto out;
    }
    if (!file) {
#ifdef MADV_HUGEPAGE
        (void)madvise(weights, alloc, MADV_HUGEPAGE);
#endif
        fill_weights(weights, total);
    }
    for (int k = 0; k < 2; k++) { /* a token's activations, as Q8_0 rows, then prepared */
        const int64_t n = k ? 8192 : 2048;
        float x[WL_QK];
        unsigned char *xq = malloc((size_t)(n / WL_QK) * sizeof(wl_block_q8_0));
        if (!xq)
            goto out;
        for (int64_t b = 0; b < n / WL_QK; b++) {
            for (int i = 0; i < WL_QK; i++)
                x[i] = (float)((b * 31 + i * 17) % 41 - 20) / 7.0f;
            wl_quantize_act_block_q8_0(x, xq + (size_t)b * sizeof(wl_block_q8_0));
        }
        wl_gemm_prepare(WL_TYPE_Q4_0, n, xq, (size_t)(n / WL_QK) * sizeof(wl_block_q8_0), 1, prep[k]);
        free(xq);
    }

    _Atomic uint64_t sink = 0;
    static double gbs[MODES][MAX_ROUNDS], share[MODES][MAX_ROUNDS], probe_gbs[MAX_ROUNDS];
    printf("decode's products of llama-3.2-1b Q4_0 repacked: %.0f MB per token, 2 threads, %.0f us between "
           "products\n",
           (double)total / 1e6, gap_us);
    uint64_t resident = 0, in_huge = 0;
    if (wl_mapped_pages(weights, total, &resident, &in_huge) == 0 && resident)
        printf("weights: %s, %.0f%% of them mapped in 2 MiB pages\n", file ? file : "anonymous memory",
               100.0 * (double)in_huge / (double)resident);
    for (int m = 0; m < MODES; m++) /* a warm-up pass: the pages are faulted in, the pool is awake */
        (void)one_token(pool, m, weights, prep, y, steal, &sink, gap_us * 1e-6);
    for (int r = 0; r < rounds; r++) {
        probe_gbs[r] = wl_membw_measure(probe, pool, 2) / 1e9;
        printf("round %2d  probe %6.1f GB/s", r + 1, probe_gbs[r]);
        for (int k = 0; k < MODES; k++) {
            const int m = (k + r) % MODES;
            double inside = 0;
            for (int t = 0; t < TOKENS; t++)
                inside += one_token(pool, m, weights, prep, y, steal, &sink, gap_us * 1e-6);
            gbs[m][r] = (double)total * TOKENS / inside / 1e9;
            share[m][r] = 100 * gbs[m][r] / probe_gbs[r];
        }
        for (int m = 0; m < MODES; m++)
            printf("  |  %-6s %6.1f GB/s %4.0f%%", MODE_NAMES[m], gbs[m][r], share[m][r]);
        printf("\n");
        fflush(stdout);
    }
    printf("median    probe %6.1f GB/s", median(probe_gbs, rounds));
    for (int m = 0; m < MODES; m++)
        printf("  |  %-6s %6.1f GB/s %4.0f%%", MODE_NAMES[m], median(gbs[m], rounds), median(share[m], rounds));
    printf("\n");
    rc = 0;
out:
    wl_membw_free(probe);
    if (pool)
        wl_pool_destroy(pool);
    free(steal);
    free(prep[0]);
    free(prep[1]);
    free(y);
    if (file && weights)
        munmap(weights, total);
    else if (!file)
        free(weights);
    return rc;
}
