/* membw.h - the memory read-bandwidth probe of the benchmarks: how many bytes per second the
 * threads of a pool can read from memory, the bound a decode step cannot beat (it reads every
 * weight once per token).
 *
 * Each thread reads its share of a buffer far larger than the last-level cache and XORs it
 * together, with the widest loads the CPU has (64 bytes with AVX-512, 32 with AVX2), the same with
 * a software prefetch 16 KiB or 1 KiB ahead, and with the prefetches of decode over repacked Q4_0
 * (non-temporal, or into L2; gemm_impl.h), and with 16-byte loads; a
 * measurement is the best of these methods over some passes, so the bound is the highest read
 * rate the probe finds, never a weak one. The buffer is faulted in at creation, in huge pages
 * where the kernel gives them (MADV_HUGEPAGE), as the model's weights may be (gguf.c).
 *
 *     wl_membw *p;
 *     if (wl_membw_create(wl_membw_bytes(), &p) == 0) {
 *         double bytes_per_s = wl_membw_measure(p, pool, 2);
 *         wl_membw_free(p);
 *     }
 *
 * One thread at a time may use a probe (it runs the pool). */
#ifndef WL_ENGINE_MEMBW_H
#define WL_ENGINE_MEMBW_H

#include <stddef.h>

#include "engine/threadpool.h"

typedef struct wl_membw wl_membw;

/* The buffer size the benchmarks give the probe: 256 MiB, or twice the last-level cache when
 * that is larger (sysconf's cache size), so that no cache can serve it. A 256 MiB buffer on a CPU
 * with a 480 MiB L3 read at 26-92 GB/s from pass to pass, against 30-40 GB/s at 1-2 GiB. */
size_t wl_membw_bytes(void);

/* A probe over a buffer of `bytes` (rounded down to whole 4 KiB pages; at least one page).
 * Returns 0, or -1 when the memory cannot be had (*out = NULL). */
int wl_membw_create(size_t bytes, wl_membw **out);

/* The read bandwidth of the pool's threads, in bytes per second: the best of `passes` (>= 1)
 * passes of each method. */
double wl_membw_measure(wl_membw *p, wl_pool *pool, int passes);

/* Frees the probe and its buffer; NULL is ignored. */
void wl_membw_free(wl_membw *p);

#endif
