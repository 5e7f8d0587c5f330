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
    WL_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ (+ VNNI and BF16 when present) */
    WL_ISA_NEON = 3,   /* aarch64 Advanced SIMD (+ dotprod when present) */
    WL_ISA_COUNT = 4
};

typedef struct wl_cpu_features {
    int avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16;
    int avxvnni;
    int neon, neon_dotprod;
} wl_cpu_features;

/* The features of this CPU (detected once; thread-safe). */
const wl_cpu_features *wl_cpu(void);

/* 1 when family `isa` can run on this CPU and was compiled in. */
int wl_isa_available(int isa);

/* The family kernels use: the best available, lowered by WANDLER_ISA. Thread-safe. */
int wl_isa_best(void);

/* "scalar", "avx2", "avx512", "neon". */
const char *wl_isa_name(int isa);

/* Number of online CPU cores (at least 1). */
int wl_cpu_count(void);

#endif
