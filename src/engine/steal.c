/* steal.c - blocks shared out between threads with stealing (steal.h). */
#include "engine/steal.h"

static uint64_t pack(uint32_t front, uint32_t back)
{
    return (uint64_t)back << 32 | front;
}

void wl_steal_init(wl_steal_slot *slots, int nth, int64_t n_blocks)
{
    for (int i = 0; i < nth; i++) {
        const uint32_t front = (uint32_t)(n_blocks * i / nth), back = (uint32_t)(n_blocks * (i + 1) / nth);
        atomic_store_explicit(&slots[i].run, pack(front, back), memory_order_relaxed);
    }
}

/* Takes from the front (own run: a quarter of what is left) or the back (another's: half) of
 * slot s, 1 to `most` blocks; count 0 when it is empty. */
static wl_steal_range take(wl_steal_slot *s, int from_front, int64_t most)
{
    uint64_t run = atomic_load_explicit(&s->run, memory_order_relaxed);
    for (;;) {
        const uint32_t front = (uint32_t)run, back = (uint32_t)(run >> 32);
        if (front >= back)
            return (wl_steal_range){0, 0};
        const int64_t left = (int64_t)(back - front);
        int64_t n = from_front ? left / 4 : left / 2;
        n = n < most ? n : most;
        n = n > 1 ? n : 1;
        const uint64_t next = from_front ? pack(front + (uint32_t)n, back) : pack(front, back - (uint32_t)n);
        /* relaxed: a block is only an index; the work's inputs were published before the job */
        if (atomic_compare_exchange_weak_explicit(&s->run, &run, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return (wl_steal_range){from_front ? (int64_t)front : (int64_t)back - n, n};
    }
}

wl_steal_range wl_steal_next(wl_steal_slot *slots, int nth, int ith, int64_t most)
{
    most = most > 1 ? most : 1;
    wl_steal_range r = take(&slots[ith], 1, most);
    for (int k = 1; r.count == 0 && k < nth; k++)
        r = take(&slots[(ith + k) % nth], 0, most);
    return r;
}
