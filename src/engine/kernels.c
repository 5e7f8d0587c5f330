/* kernels.c - the kernel table of every ISA family, built once.
 *
 * A family's table starts as a copy of the table of the family below it and then takes the
 * kernels that family implements, so every entry is filled for every supported type. */
#include "engine/kernels.h"

#include <pthread.h>

#include "engine/cpu.h"
#include "engine/kernels_impl.h"
#include "engine/quant.h"

/* Built once by build_tables(); read-only afterwards. */
static wl_kernel_table g_tables[WL_ISA_COUNT];
static int g_table_ready[WL_ISA_COUNT];
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    const wl_cpu_features *f = wl_cpu();
    wl_kernels_init_scalar(&g_tables[WL_ISA_SCALAR]);
    g_table_ready[WL_ISA_SCALAR] = 1;
#if defined(__x86_64__)
    if (wl_isa_available(WL_ISA_AVX2)) {
        g_tables[WL_ISA_AVX2] = g_tables[WL_ISA_SCALAR];
        wl_kernels_init_avx2(&g_tables[WL_ISA_AVX2]);
        g_tables[WL_ISA_AVX2].isa = WL_ISA_AVX2;
        g_table_ready[WL_ISA_AVX2] = 1;
    }
    if (wl_isa_available(WL_ISA_AVX512)) {
        g_tables[WL_ISA_AVX512] = g_tables[WL_ISA_AVX2];
        wl_kernels_init_avx512(&g_tables[WL_ISA_AVX512], f);
        g_tables[WL_ISA_AVX512].isa = WL_ISA_AVX512;
        g_table_ready[WL_ISA_AVX512] = 1;
    }
#endif
#if defined(__aarch64__)
    if (wl_isa_available(WL_ISA_NEON)) {
        g_tables[WL_ISA_NEON] = g_tables[WL_ISA_SCALAR];
        wl_kernels_init_neon(&g_tables[WL_ISA_NEON], f);
        g_tables[WL_ISA_NEON].isa = WL_ISA_NEON;
        g_table_ready[WL_ISA_NEON] = 1;
    }
#endif
    (void)f;
}

const wl_kernel_table *wl_kernels(int isa)
{
    if (isa < 0 || isa >= WL_ISA_COUNT)
        return NULL;
    pthread_once(&g_tables_once, build_tables);
    return g_table_ready[isa] ? &g_tables[isa] : NULL;
}

uint32_t wl_act_type(uint32_t type)
{
    switch (type) {
    case WL_TYPE_F16:
        return WL_TYPE_F16;
    case WL_TYPE_BF16:
        return WL_TYPE_BF16;
    case WL_TYPE_Q8_0:
    case WL_TYPE_Q4_0:
    case WL_TYPE_Q5_0:
        return WL_TYPE_Q8_0;
    case WL_TYPE_Q4_1:
    case WL_TYPE_Q5_1:
        return WL_TYPE_Q8_1;
    case WL_TYPE_Q2_K:
    case WL_TYPE_Q3_K:
    case WL_TYPE_Q4_K:
    case WL_TYPE_Q5_K:
    case WL_TYPE_Q6_K:
        return WL_TYPE_Q8_K;
    default:
        return WL_TYPE_F32;
    }
}

size_t wl_act_row_bytes(uint32_t type, int64_t n)
{
    if (n < 0)
        return 0;
    return wl_row_bytes(wl_act_type(type), (uint64_t)n);
}
