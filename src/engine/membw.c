/* membw.c - the memory read-bandwidth probe (membw.h). */
#include "engine/membw.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "engine/cpu.h"
#include "engine/gemm_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define PAGE 4096
#define HUGE_PAGE ((size_t)2 << 20)

enum {
    METHOD_WIDE,
    METHOD_PREFETCH,      /* T0, 16 KiB ahead */
    METHOD_PREFETCH_NTA,  /* decode over R16 on AMD */
    METHOD_PREFETCH_L2,   /* decode over R16 elsewhere */
    METHOD_PREFETCH_NEAR, /* T0, 1 KiB ahead */
    METHOD_NARROW,
    METHODS
};

struct wl_membw {
    unsigned char *buf;
    size_t bytes;
    int method;
    _Atomic uint64_t sink[64]; /* per thread (modulo 64): keeps the sums alive */
};

typedef uint64_t v16 __attribute__((vector_size(16)));

/* 16-byte loads, eight independent XOR chains (any CPU). */
static uint64_t xor_narrow(const unsigned char *a, size_t len)
{
    const v16 *p = (const v16 *)(const void *)a;
    v16 s0 = {0, 0}, s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    for (size_t i = 0; i + 8 <= len / 16; i += 8) {
        s0 ^= p[i];
        s1 ^= p[i + 1];
        s2 ^= p[i + 2];
        s3 ^= p[i + 3];
        s4 ^= p[i + 4];
        s5 ^= p[i + 5];
        s6 ^= p[i + 6];
        s7 ^= p[i + 7];
    }
    const v16 s = s0 ^ s1 ^ s2 ^ s3 ^ s4 ^ s5 ^ s6 ^ s7;
    return s[0] ^ s[1];
}

#if defined(__x86_64__)
/* 64-byte loads, four chains (AVX-512); with `prefetch` 1 each line is also prefetched 16 KiB
 * ahead, as gemv.h's GEMV does; with 2 and 3, as decode over R16 does on AMD's CPUs and on others
 * (non-temporally, or into L2; gemm_impl.h); with 4, 1 KiB ahead into L1 and L2, which streamed
 * 2 GiB fastest of all on an Intel Xeon with AMX (~10% above the others). */
__attribute__((target("avx512f"))) static inline uint64_t xor_avx512_body(const unsigned char *a, size_t len,
                                                                          const int prefetch)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 256 <= len; i += 256) {
        if (prefetch == 1)
            for (int l = 0; l < 4; l++)
                _mm_prefetch((const char *)a + i + 16384 + 64 * l, _MM_HINT_T0);
        if (prefetch == 2 || prefetch == 3)
            for (int l = 0; l < 4; l++)
                WL_GEMV_R16_PREFETCH_LINE(a + i + 64 * l, prefetch == 2);
        if (prefetch == 4)
            for (int l = 0; l < 4; l++)
                _mm_prefetch((const char *)a + i + 1024 + 64 * l, _MM_HINT_T0);
        s0 = _mm512_xor_si512(s0, _mm512_load_si512((const void *)(a + i)));
        s1 = _mm512_xor_si512(s1, _mm512_load_si512((const void *)(a + i + 64)));
        s2 = _mm512_xor_si512(s2, _mm512_load_si512((const void *)(a + i + 128)));
        s3 = _mm512_xor_si512(s3, _mm512_load_si512((const void *)(a + i + 192)));
    }
    const __m512i s = _mm512_xor_si512(_mm512_xor_si512(s0, s1), _mm512_xor_si512(s2, s3));
    return (uint64_t)_mm512_reduce_or_epi64(s);
}

__attribute__((target("avx512f"))) static uint64_t xor_avx512(const unsigned char *a, size_t len,
                                                              int prefetch)
{
    /* a copy of the loop each, none with a test inside */
    return prefetch == 4   ? xor_avx512_body(a, len, 4)
           : prefetch == 3 ? xor_avx512_body(a, len, 3)
           : prefetch == 2 ? xor_avx512_body(a, len, 2)
           : prefetch      ? xor_avx512_body(a, len, 1)
                           : xor_avx512_body(a, len, 0);
}

/* 32-byte loads, four chains (AVX2). */
__attribute__((target("avx2"))) static uint64_t xor_avx2(const unsigned char *a, size_t len)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 128 <= len; i += 128) {
        s0 = _mm256_xor_si256(s0, _mm256_load_si256((const void *)(a + i)));
        s1 = _mm256_xor_si256(s1, _mm256_load_si256((const void *)(a + i + 32)));
        s2 = _mm256_xor_si256(s2, _mm256_load_si256((const void *)(a + i + 64)));
        s3 = _mm256_xor_si256(s3, _mm256_load_si256((const void *)(a + i + 96)));
    }
    const __m256i s = _mm256_xor_si256(_mm256_xor_si256(s0, s1), _mm256_xor_si256(s2, s3));
    return (uint64_t)_mm256_extract_epi64(s, 0) ^ (uint64_t)_mm256_extract_epi64(s, 3);
}
#endif

static uint64_t xor_wide(const unsigned char *a, size_t len, int prefetch)
{
#if defined(__x86_64__)
    const wl_cpu_features *f = wl_cpu();
    if (f->avx512f)
        return xor_avx512(a, len, prefetch);
    if (f->avx2)
        return xor_avx2(a, len);
#else
    (void)prefetch;
#endif
    return xor_narrow(a, len);
}

static void probe_part(void *ctx, int ith, int nth)
{
    wl_membw *p = ctx;
    /* whole pages per thread, so every share starts 64-byte aligned */
    const size_t pages = p->bytes / PAGE, first = pages * (size_t)ith / (size_t)nth,
                 last = pages * (size_t)(ith + 1) / (size_t)nth;
    const unsigned char *a = p->buf + first * PAGE;
    const size_t len = (last - first) * PAGE;
    const uint64_t sum = p->method == METHOD_NARROW ? xor_narrow(a, len)
                                                    : xor_wide(a, len,
                                                               p->method == METHOD_PREFETCH       ? 1
                                                               : p->method == METHOD_PREFETCH_NTA ? 2
                                                               : p->method == METHOD_PREFETCH_L2  ? 3
                                                               : p->method == METHOD_PREFETCH_NEAR ? 4
                                                                                                   : 0);
    atomic_store_explicit(&p->sink[ith % 64], sum, memory_order_relaxed); /* > 64 threads share slots */
}

size_t wl_membw_bytes(void)
{
    size_t bytes = (size_t)256 << 20;
#ifdef _SC_LEVEL3_CACHE_SIZE
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE); /* 0 or -1 when unknown */
    if (l3 > 0 && (size_t)l3 <= SIZE_MAX / 4 && 2 * (size_t)l3 > bytes)
        bytes = ((2 * (size_t)l3 + HUGE_PAGE - 1) / HUGE_PAGE) * HUGE_PAGE;
#endif
    return bytes;
}

int wl_membw_create(size_t bytes, wl_membw **out)
{
    *out = NULL;
    bytes = bytes / PAGE * PAGE;
    bytes = bytes ? bytes : PAGE;
    wl_membw *p = calloc(1, sizeof *p);
    void *buf = NULL;
    if (!p || posix_memalign(&buf, HUGE_PAGE, bytes) != 0) {
        free(p);
        return -1;
    }
#ifdef MADV_HUGEPAGE
    /* as the model's weights may be (gguf.c): huge pages, when the kernel gives them, read a
     * few percent faster, and the bound must not be lower than what the weights can get */
    (void)madvise(buf, bytes, MADV_HUGEPAGE);
#endif
    memset(buf, 1, bytes); /* fault every page in */
    p->buf = buf;
    p->bytes = bytes;
    *out = p;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double wl_membw_measure(wl_membw *p, wl_pool *pool, int passes)
{
    double best = 0.0;
    for (int pass = 0; pass < (passes > 0 ? passes : 1); pass++)
        for (int m = 0; m < METHODS; m++) {
            p->method = m;
            const double t0 = now_s();
            wl_pool_run(pool, probe_part, p);
            const double dt = now_s() - t0;
            const double bw = dt > 0 ? (double)p->bytes / dt : 0.0;
            best = bw > best ? bw : best;
        }
    return best;
}

void wl_membw_free(wl_membw *p)
{
    if (p)
        free(p->buf);
    free(p);
}
