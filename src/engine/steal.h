/* steal.h - blocks of work shared out between threads with stealing: each thread owns a
 * contiguous run of blocks and takes them from the front, in order; a thread whose run is
 * done takes the last block of another's. Decode's matrix products use it (forward.c): each
 * thread streams its own contiguous rows, so the prefetchers run on without a break from one
 * block to the next, and a thread the OS runs less (a shared machine) leaves its last blocks to
 * the others instead of holding the product up.
 *
 *     wl_steal_slot *s = ...;                  // nth slots, e.g. aligned_alloc(64, nth * sizeof *s)
 *     wl_steal_init(s, nth, n_blocks);         // before the threads start (a pool job's publish
 *                                              // orders it before them)
 *     // on thread ith:
 *     for (int64_t b; (b = wl_steal_next(s, nth, ith)) >= 0;) work(b);
 *
 * Every block in [0, n_blocks) is returned exactly once over all threads, and wl_steal_next
 * returns -1 on a thread only when no block is left anywhere. Any thread may call
 * wl_steal_next with its own ith concurrently with the others; the slots live in memory the
 * caller owns. n_blocks <= 2^31 - 1. */
#ifndef WL_ENGINE_STEAL_H
#define WL_ENGINE_STEAL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

/* One thread's run of blocks [front, back), in one word so that the owner (front) and thieves
 * (back) agree through compare-and-swap; a cache line of its own. */
typedef struct wl_steal_slot {
    alignas(64) _Atomic uint64_t run; /* back << 32 | front */
} wl_steal_slot;

/* Thread i gets blocks [i * n_blocks / nth, (i + 1) * n_blocks / nth). */
void wl_steal_init(wl_steal_slot *slots, int nth, int64_t n_blocks);

/* The next block for thread ith: the front of its own run, else the back of the first other
 * run (from ith + 1 on) with blocks left; -1 when none is left. */
int64_t wl_steal_next(wl_steal_slot *slots, int nth, int ith);

#endif
