/* sampler_filters.h - the filters of the sampling chain, over an array of candidates.
 *
 * Internal to the sampler (and its tests). Each filter keeps at least one candidate and follows
 * llama.cpp's sampler of the same name. A candidate array may be sorted (by logit, descending,
 * lower id first on ties) or in any order; filters that need an order sort what they need. */
#ifndef WL_ENGINE_SAMPLER_FILTERS_H
#define WL_ENGINE_SAMPLER_FILTERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct wl_cand {
    int32_t id;
    float logit;
    float p; /* probability, valid after wl_cands_softmax() */
} wl_cand;

typedef struct wl_cands {
    wl_cand *data;
    size_t size;
    int sorted; /* 1 when data[0..size) is sorted by logit, descending */
} wl_cands;

/* Puts the n best candidates, sorted, in data[0..n) (n <= size); the rest stay after them in
 * some order. Selection with a bounded heap, O(size log n), when n is small; a full sort when
 * n is a large part of the array. */
void wl_cands_partial_sort(wl_cands *c, size_t n);

/* Keeps the k best candidates (k <= 0: no change). Leaves them sorted. */
void wl_cands_top_k(wl_cands *c, int k);

/* Keeps the smallest set of best candidates whose probabilities (softmax of the logits of all
 * current candidates) add up to at least p (p >= 1: no change). Leaves them sorted when there
 * are at most 4096 (a big set is found without sorting the array and kept unsorted). */
void wl_cands_top_p(wl_cands *c, float p);

/* Keeps the candidates whose probability is at least p times the largest one's
 * (p <= 0: no change). Keeps the order. */
void wl_cands_min_p(wl_cands *c, float p);

/* Divides the logits by t (t > 0). */
void wl_cands_temperature(wl_cands *c, float t);

/* Fills p with the softmax of the logits. */
void wl_cands_softmax(wl_cands *c);

#endif
