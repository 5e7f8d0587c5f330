/* cpu.c - instruction-set detection and the choice of kernel family.
 *
 * x86-64: cpuid says what the CPU implements, xgetbv says which register state the OS saves on a
 * context switch. A feature counts only when both agree (an OS that does not save the upper
 * halves of the ymm/zmm registers makes AVX/AVX-512 unusable even on a CPU that has them).
 * aarch64: NEON is part of the base architecture; dotprod is read from the auxiliary vector. */
#include "engine/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define WL_CPU_X86 1
#include <cpuid.h>
#elif defined(__aarch64__)
#define WL_CPU_ARM64 1
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#endif

/* Detected once by detect_once(); read-only afterwards. */
static wl_cpu_features g_features;
static int g_best_isa;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(WL_CPU_X86)

/* XCR0 bits: which register state the OS saves (Intel SDM vol. 1, 13.3). */
enum {
    XCR0_SSE = 1u << 1,
    XCR0_AVX = 1u << 2,        /* upper halves of ymm */
    XCR0_OPMASK = 1u << 5,     /* k0-k7 */
    XCR0_ZMM_HI256 = 1u << 6,  /* upper halves of zmm0-15 */
    XCR0_HI16_ZMM = 1u << 7,   /* zmm16-31 */
};

/* Reads XCR0. Only valid when cpuid reports OSXSAVE. Inline assembly rather than _xgetbv(),
 * which would need this file compiled with -mxsave. */
static unsigned long long read_xcr0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int bit(unsigned int reg, int n)
{
    return (int)((reg >> n) & 1u);
}

static void detect_x86(wl_cpu_features *f)
{
    unsigned int eax, ebx, ecx, edx;
    unsigned int max_leaf = __get_cpuid_max(0, NULL);
    /* leaf 0: the vendor string in ebx, edx, ecx */
    if (max_leaf >= 1 && __get_cpuid(0, &eax, &ebx, &ecx, &edx)) {
        char vendor[13];
        memcpy(vendor, &ebx, 4);
        memcpy(vendor + 4, &edx, 4);
        memcpy(vendor + 8, &ecx, 4);
        vendor[12] = '\0';
        f->amd = strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0;
    }
    if (max_leaf < 1 || !__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return;
    int osxsave = bit(ecx, 27);
    int avx = bit(ecx, 28);
    int fma = bit(ecx, 12);
    int f16c = bit(ecx, 29);
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    int os_avx = (xcr0 & (XCR0_SSE | XCR0_AVX)) == (XCR0_SSE | XCR0_AVX);
    unsigned int zmm_state = XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM;
    int os_avx512 = os_avx && (xcr0 & zmm_state) == zmm_state;
    if (!avx || !os_avx)
        return;
    f->fma = fma;
    f->f16c = f16c;
    if (max_leaf < 7)
        return;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    unsigned int max_subleaf = eax;
    f->avx2 = bit(ebx, 5);
    if (os_avx512) {
        f->avx512f = bit(ebx, 16);
        f->avx512dq = bit(ebx, 17);
        f->avx512bw = bit(ebx, 30);
        f->avx512vl = bit(ebx, 31);
        f->avx512vnni = f->avx512f && bit(ecx, 11);
        f->avx512vbmi = f->avx512f && bit(ecx, 1);
    }
    if (max_subleaf >= 1) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        f->avxvnni = bit(eax, 4);
        f->avx512bf16 = f->avx512f && os_avx512 && bit(eax, 5);
    }
}

#endif /* WL_CPU_X86 */

static void detect(wl_cpu_features *f)
{
    memset(f, 0, sizeof *f);
#if defined(WL_CPU_X86)
    detect_x86(f);
#elif defined(WL_CPU_ARM64)
    f->neon = 1;
    f->neon_dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
}

/* Whether the kernels of `isa` were compiled into this build: CMake compiles the *_avx2.c and
 * *_avx512.c files on x86-64 only and kernels_neon.c on aarch64 only (kernels.c follows the
 * same rule when it builds its tables). */
static int compiled_in(int isa)
{
    switch (isa) {
    case WL_ISA_SCALAR:
        return 1;
#if defined(__x86_64__)
    case WL_ISA_AVX2:
    case WL_ISA_AVX512:
        return 1;
#endif
#if defined(__aarch64__)
    case WL_ISA_NEON:
        return 1;
#endif
    default:
        return 0;
    }
}

static int runs_here(const wl_cpu_features *f, int isa)
{
    switch (isa) {
    case WL_ISA_SCALAR:
        return 1;
    case WL_ISA_AVX2:
        return f->avx2 && f->fma && f->f16c;
    case WL_ISA_AVX512:
        /* The AVX-512 family also uses AVX2/FMA/F16C instructions for its 256-bit parts. */
        return runs_here(f, WL_ISA_AVX2) && f->avx512f && f->avx512bw && f->avx512vl &&
               f->avx512dq;
    case WL_ISA_NEON:
        return f->neon;
    default:
        return 0;
    }
}

static int best_available(const wl_cpu_features *f)
{
    static const int by_preference[] = {WL_ISA_AVX512, WL_ISA_AVX2, WL_ISA_NEON};
    for (size_t i = 0; i < sizeof by_preference / sizeof by_preference[0]; i++) {
        int isa = by_preference[i];
        if (compiled_in(isa) && runs_here(f, isa))
            return isa;
    }
    return WL_ISA_SCALAR;
}

static int isa_from_name(const char *name)
{
    for (int isa = 0; isa < WL_ISA_COUNT; isa++)
        if (strcmp(name, wl_isa_name(isa)) == 0)
            return isa;
    return -1;
}

int wl_isa_pick(const char *request, int best)
{
    int wanted = request ? isa_from_name(request) : -1;
    if (wanted < 0 || wanted == best)
        return best; /* unset, unknown: the best family */
    if (wanted == WL_ISA_SCALAR)
        return WL_ISA_SCALAR;
    if (wanted == WL_ISA_NEON || best == WL_ISA_NEON || best == WL_ISA_SCALAR)
        return best; /* a family of another architecture, or nothing to lower to */
    /* x86: scalar < avx2 < avx512, and every family below the best one runs too. */
    return wanted < best ? wanted : best;
}

static void detect_once(void)
{
    detect(&g_features);
    g_best_isa = wl_isa_pick(getenv("WANDLER_ISA"), best_available(&g_features));
}

const wl_cpu_features *wl_cpu(void)
{
    pthread_once(&g_once, detect_once);
    return &g_features;
}

int wl_isa_available(int isa)
{
    if (isa < 0 || isa >= WL_ISA_COUNT)
        return 0;
    return compiled_in(isa) && runs_here(wl_cpu(), isa);
}

int wl_isa_best(void)
{
    pthread_once(&g_once, detect_once);
    return g_best_isa;
}

const char *wl_isa_name(int isa)
{
    switch (isa) {
    case WL_ISA_SCALAR:
        return "scalar";
    case WL_ISA_AVX2:
        return "avx2";
    case WL_ISA_AVX512:
        return "avx512";
    case WL_ISA_NEON:
        return "neon";
    default:
        return "unknown";
    }
}

int wl_cpu_count(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
