/* bigram_queue.c - a binary heap of candidate merges (see bigram_queue.h). */
#include "text/bigram_queue.h"

#include <stdlib.h>

/* Higher priority first; on equal priorities the leftmost pair first. */
static int before(const wl_bigram *a, const wl_bigram *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

int wl_bigram_queue_push(wl_bigram_queue *q, wl_bigram b)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *q->heap)
            return -1;
        wl_bigram *p = realloc(q->heap, cap * sizeof *p);
        if (!p)
            return -1;
        q->heap = p;
        q->cap = cap;
    }
    size_t i = q->n++;
    while (i > 0) { /* sift up */
        size_t parent = (i - 1) / 2;
        if (!before(&b, &q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = b;
    return 0;
}

wl_bigram wl_bigram_queue_pop(wl_bigram_queue *q)
{
    wl_bigram top = q->heap[0];
    wl_bigram last = q->heap[--q->n];
    size_t n = q->n, i = 0;
    for (;;) { /* sift the last entry down from the root */
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const wl_bigram *cand = &last;
        if (l < n && before(&q->heap[l], cand)) {
            best = l;
            cand = &q->heap[l];
        }
        if (r < n && before(&q->heap[r], cand))
            best = r;
        if (best == i)
            break;
        q->heap[i] = q->heap[best];
        i = best;
    }
    if (n > 0)
        q->heap[i] = last;
    return top;
}

void wl_bigram_queue_free(wl_bigram_queue *q)
{
    free(q->heap);
    *q = (wl_bigram_queue){0};
}
