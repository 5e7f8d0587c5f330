/* steal.h - blocks of work shared out between threads with stealing: each thread owns a
 * contiguous run of blocks and takes them from the front, in order, several at a time; a
 * thread whose run is done takes blocks from the back of another's. The matrix products of
 * decode and of prompts use it (forward.c): each thread streams its own contiguous rows, so
 * the prefetchers run on without a break from one range to the next, and a thread the OS runs
 * less (a shared machine) leaves its last blocks to the others instead of holding the product
 * up.
 *
 *     wl_steal_slot *s = ...;                  // nth slots, e.g. aligned_alloc(64, nth * sizeof *s)
 *     wl_steal_init(s, nth, n_blocks);         // before the threads start (a pool job's publish
 *                                              // orders it before them)
 *     // on thread ith:
 *     for (wl_steal_range r; (r = wl_steal_next(s, nth, ith, most)).count > 0;)
 *         work(r.first, r.count);              // blocks [first, first + count)
 *
 * How much a thread takes at a time: from its own run, a quarter of what is left in it (at
 * most `most`); from another's, half of what is left there (at most `most`). So the ranges
 * shrink as a run nears its end, and a thread that is done first still finds blocks to take:
 * threads of slightly different speeds finish within about one block of each other, where
 * ranges of a fixed size leave the faster one idle for up to one range (decode's products,
 * 1/8 of a thread's share per range, finished 4-6% of their time apart at ~90 GB/s).
 *
 * Every block in [0, n_blocks) is handed out exactly once over all threads, and wl_steal_next
 * returns a count of 0 on a thread only when no block is left anywhere. Any thread may call
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

/* Blocks [first, first + count) in order. */
typedef struct wl_steal_range {
    int64_t first, count;
} wl_steal_range;

/* The next blocks for thread ith: from the front of its own run, a quarter of the blocks left
 * in it; else from the back of the first other run (from ith + 1 on) with blocks left, half of
 * them. At least one block and at most `most` (values below 1 count as 1); count 0 when none
 * is left anywhere. */
wl_steal_range wl_steal_next(wl_steal_slot *slots, int nth, int ith, int64_t most);

#endif
