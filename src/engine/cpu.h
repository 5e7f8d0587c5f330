/* cpu.h - which instruction sets this CPU has, and which kernel family to use.
 *
 * Kernels come in families by instruction set (ISA). The best family is picked once, at run time,
 * from cpuid (x86-64) or the build target (aarch64: NEON is always present). The environment
 * variable WANDLER_ISA=scalar|avx2|avx512|neon lowers the choice (never above what the CPU has),
 * for tests and benchmarks. */
#ifndef WL_ENGINE_CPU_H
#define WL_ENGINE_CPU_H

enum wl_isa {
    WL_ISA_SCALAR = 0, /* plain C: the reference every other family is tested against */
    WL_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    WL_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ, with AVX2 + FMA + F16C (+ VNNI when present) */
    WL_ISA_NEON = 3,   /* aarch64 Advanced SIMD (+ dotprod when present) */
    WL_ISA_COUNT = 4
};

/* 1 for each feature the CPU has and the OS enables (x86: cpuid, with xgetbv confirming that the
 * OS saves the ymm/zmm/mask registers; aarch64: the auxiliary vector), else 0. */
typedef struct wl_cpu_features {
    int avx2, fma, f16c;                       /* the AVX2 family's needs */
    int avx512f, avx512bw, avx512vl, avx512dq; /* the AVX-512 family's needs */
    int avx512vnni;                            /* vpdpbusd: the AVX-512 int8 kernels */
    int avx512vbmi;                            /* vpermt2b: the Q4_0 decode GEMV (gemv.h) */
    int avx512bf16, avxvnni;                   /* detected, not used yet */
    int neon, neon_dotprod;                    /* aarch64: always 1; sdot (FEAT_DotProd) */
    int amd; /* x86 vendor AuthenticAMD or HygonGenuine (Zen): decides decode's prefetch hint, which
              * each vendor's caches treat differently (gemm_impl.h) */
} wl_cpu_features;

/* The features of this CPU (detected once; thread-safe; never NULL). */
const wl_cpu_features *wl_cpu(void);

/* 1 when family `isa` can run on this CPU and was compiled in. */
int wl_isa_available(int isa);

/* The family kernels use: the best available, lowered by WANDLER_ISA (read once, at the first
 * call of any function here). Thread-safe. */
int wl_isa_best(void);

/* The rule wl_isa_best applies to WANDLER_ISA, as a pure function: the family to use when the
 * variable holds `request` (NULL when unset) and `best` is the best available family. A request
 * can only lower the choice: "avx512" on an AVX2 CPU gives avx2, "scalar" always gives scalar;
 * an unknown name or a family of another architecture gives `best`. */
int wl_isa_pick(const char *request, int best);

/* "scalar", "avx2", "avx512", "neon". */
const char *wl_isa_name(int isa);

/* Number of CPU cores this process may run on (its affinity mask; else the online cores), at
 * least 1. */
int wl_cpu_count(void);

#endif
