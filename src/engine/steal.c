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

/* Takes the front (own run) or the back (another's) of slot s; -1 when it is empty. */
static int64_t take(wl_steal_slot *s, int from_front)
{
    uint64_t run = atomic_load_explicit(&s->run, memory_order_relaxed);
    for (;;) {
        const uint32_t front = (uint32_t)run, back = (uint32_t)(run >> 32);
        if (front >= back)
            return -1;
        const uint64_t next = from_front ? pack(front + 1, back) : pack(front, back - 1);
        /* relaxed: a block is only an index; the work's inputs were published before the job */
        if (atomic_compare_exchange_weak_explicit(&s->run, &run, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return from_front ? (int64_t)front : (int64_t)back - 1;
    }
}

int64_t wl_steal_next(wl_steal_slot *slots, int nth, int ith)
{
    int64_t b = take(&slots[ith], 1);
    for (int k = 1; b < 0 && k < nth; k++)
        b = take(&slots[(ith + k) % nth], 0);
    return b;
}
