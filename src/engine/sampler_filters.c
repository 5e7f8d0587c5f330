/* sampler_filters.c - top-k, top-p, min-p, temperature and softmax over candidates. */
#include "engine/sampler_filters.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

/* The order of the chain: higher logit first, lower id first on ties. Total, so sorting is
 * deterministic whatever the algorithm. */
static int better(const wl_cand *a, const wl_cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *pa, const void *pb)
{
    const wl_cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

static void swap(wl_cand *a, wl_cand *b)
{
    wl_cand t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap by "better": the root is the worst of the kept candidates. */
static void sift_down(wl_cand *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && better(&h[worst], &h[l]))
            worst = l;
        if (r < n && better(&h[worst], &h[r]))
            worst = r;
        if (worst == i)
            return;
        swap(&h[i], &h[worst]);
        i = worst;
    }
}

void wl_cands_partial_sort(wl_cands *c, size_t n)
{
    if (c->sorted || c->size == 0)
        return;
    if (n > c->size)
        n = c->size;
    /* A heap pays off while n is a small part of the array; otherwise sort everything. */
    if (n == 0 || n > c->size / 8 || n > 4096) {
        qsort(c->data, c->size, sizeof *c->data, cmp_cand);
        c->sorted = 1;
        return;
    }
    wl_cand *h = c->data; /* the heap lives in data[0..n) */
    for (size_t i = n / 2; i-- > 0;)
        sift_down(h, n, i);
    for (size_t i = n; i < c->size; i++) {
        if (better(&c->data[i], &h[0])) {
            swap(&c->data[i], &h[0]);
            sift_down(h, n, 0);
        }
    }
    qsort(h, n, sizeof *h, cmp_cand);
}

void wl_cands_top_k(wl_cands *c, int k)
{
    if (k <= 0 || c->size == 0)
        return;
    size_t n = (size_t)k < c->size ? (size_t)k : c->size;
    wl_cands_partial_sort(c, n);
    c->size = n;
    c->sorted = 1;
}

static float max_logit(const wl_cands *c)
{
    if (c->sorted)
        return c->data[0].logit;
    float m = -INFINITY;
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].logit > m)
            m = c->data[i].logit;
    return m;
}

/* Keeps data[0..) up to the first candidate at which the running mass reaches target; the
 * array must be sorted. */
static void keep_sorted_prefix(wl_cands *c, double target)
{
    double cum = 0;
    for (size_t i = 0; i < c->size; i++) {
        cum += c->data[i].p;
        if (cum >= target) {
            c->size = i + 1;
            break;
        }
    }
    c->sorted = 1;
}

/* Buckets by distance below the top logit: bucket b holds logits in
 * (m - (b + 1) / SCALE, m - b / SCALE]; the last one also holds everything lower. */
enum { TOP_P_BUCKETS = 1024 };
#define TOP_P_SPAN 32.0 /* e^-32: below that, a token's share hardly counts */

static size_t bucket_of(float m, float l)
{
    double d = (double)m - (double)l;
    if (!(d < TOP_P_SPAN))
        return TOP_P_BUCKETS - 1;
    size_t b = (size_t)(d * (TOP_P_BUCKETS / TOP_P_SPAN));
    return b < TOP_P_BUCKETS ? b : TOP_P_BUCKETS - 1;
}

/* top-p on a big unsorted array without sorting it: find the bucket where the running mass
 * crosses the target, keep every candidate above it, and sort only that bucket to find the
 * exact cut. The result is the same set as sorting everything. */
static void top_p_by_buckets(wl_cands *c, float m, double target)
{
    double mass[TOP_P_BUCKETS] = {0};
    for (size_t i = 0; i < c->size; i++)
        mass[bucket_of(m, c->data[i].logit)] += c->data[i].p;
    size_t cut = 0;
    double cum = 0;
    while (cut < TOP_P_BUCKETS && cum + mass[cut] < target)
        cum += mass[cut++];
    if (cut == TOP_P_BUCKETS)
        return; /* rounding kept the total just under the target: keep everything */

    /* Move the candidates above the cut bucket to the front, then those in it. */
    size_t above = 0;
    for (size_t i = 0; i < c->size; i++)
        if (bucket_of(m, c->data[i].logit) < cut)
            swap(&c->data[i], &c->data[above++]);
    size_t end = above;
    for (size_t i = above; i < c->size; i++)
        if (bucket_of(m, c->data[i].logit) == cut)
            swap(&c->data[i], &c->data[end++]);

    wl_cands in_cut = {c->data + above, end - above, 0};
    qsort(in_cut.data, in_cut.size, sizeof *in_cut.data, cmp_cand);
    keep_sorted_prefix(&in_cut, target - cum);
    c->size = above + in_cut.size;
    c->sorted = 0;
    if (c->size <= 4096) {
        qsort(c->data, c->size, sizeof *c->data, cmp_cand);
        c->sorted = 1;
    }
}

void wl_cands_top_p(wl_cands *c, float p)
{
    if (p >= 1.0f || c->size <= 1)
        return;
    float m = max_logit(c);
    if (!isfinite(m))
        return;
    double sum = 0;
    for (size_t i = 0; i < c->size; i++) {
        float e = expf(c->data[i].logit - m);
        c->data[i].p = e; /* unnormalized; softmax rewrites it later */
        sum += e;
    }
    double target = (double)p * sum;
    if (c->sorted || c->size <= 4096) {
        if (!c->sorted)
            qsort(c->data, c->size, sizeof *c->data, cmp_cand);
        keep_sorted_prefix(c, target);
    } else {
        top_p_by_buckets(c, m, target);
    }
}

void wl_cands_min_p(wl_cands *c, float p)
{
    if (p <= 0.0f || c->size <= 1)
        return;
    float m = max_logit(c);
    if (!isfinite(m))
        return;
    /* prob_i >= p * prob_max  <=>  logit_i >= logit_max + log(p) */
    float threshold = m + logf(p);
    size_t kept = 0;
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].logit >= threshold)
            c->data[kept++] = c->data[i];
    if (kept > 0)
        c->size = kept;
}

void wl_cands_temperature(wl_cands *c, float t)
{
    for (size_t i = 0; i < c->size; i++) {
        float l = c->data[i].logit / t;
        c->data[i].logit = l > FLT_MAX ? FLT_MAX : l; /* a tiny t must not make +inf */
    }
}

void wl_cands_softmax(wl_cands *c)
{
    if (c->size == 0)
        return;
    float m = max_logit(c);
    double sum = 0;
    for (size_t i = 0; i < c->size; i++) {
        float e = isfinite(m) ? expf(c->data[i].logit - m) : 1.0f;
        c->data[i].p = e;
        sum += e;
    }
    for (size_t i = 0; i < c->size; i++)
        c->data[i].p = (float)(c->data[i].p / sum);
}
