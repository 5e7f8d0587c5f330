/* mapped_pages.h - how much of a mapping is resident, and how much of that the process maps in
 * huge pages (2 MiB on x86-64). Decode reads every weight once per token, and reads weights
 * mapped in 2 MiB pages faster than the same weights in 4 KiB pages (fewer TLB misses, and the
 * hardware prefetchers stop at 4 KiB page edges): `wandler bench` reports this share beside its
 * speeds, so that a figure can be told apart from the state of the page cache it ran on.
 *
 * Linux only (it reads /proc/self/smaps); any thread. */
#ifndef WL_ENGINE_MAPPED_PAGES_H
#define WL_ENGINE_MAPPED_PAGES_H

#include <stddef.h>
#include <stdint.h>

/* Adds to *resident and *huge the resident bytes ("Rss") of this process's mappings that overlap
 * [addr, addr + len), and those of them mapped in huge pages ("FilePmdMapped" for files,
 * "AnonHugePages" for anonymous memory). A mapping that only partly overlaps counts whole.
 * Returns 0, or -1 when it cannot tell (no /proc, or it cannot be read; the sums are then
 * unchanged). */
int wl_mapped_pages(const void *addr, size_t len, uint64_t *resident, uint64_t *huge);

#endif
