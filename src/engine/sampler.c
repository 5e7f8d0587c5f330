/* sampler.c - the sampling chain: penalties, then greedy or top-k/top-p/min-p/temperature and a
 * seeded draw. See sampler.h for the order and sampler_filters.c for the filters. */
#include "engine/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler_filters.h"
#include "util/error.h"

/* Tokens the penalties look at: the last `last_n` accepted tokens (all of them when last_n is
 * -1), with a count per token and the list of distinct tokens present, so applying the
 * penalties costs O(distinct tokens), not O(n_vocab). */
typedef struct penalty_window {
    int32_t *ring;     /* [cap] the last tokens, oldest at head (unused when unbounded) */
    size_t cap, len, head;
    int32_t *count;    /* [n_vocab] occurrences in the window */
    int32_t *present;  /* distinct tokens with count > 0 */
    int32_t *slot;     /* [n_vocab] index of a token in present[], -1 when absent */
    size_t n_present;
} penalty_window;

struct wl_sampler {
    wl_sampler_params p;
    int n_vocab;
    int penalties_on;
    uint64_t rng[4]; /* xoshiro256** state */
    penalty_window win;
    wl_cand *cand;   /* [n_vocab] scratch for the filters */
};

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t s[4])
{
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

/* ---- parameters ---- */

static int validate(const wl_sampler_params *p, int n_vocab, wandler_error *err)
{
    if (!p)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "sampler: params is NULL");
    if (n_vocab < 1)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "sampler: n_vocab %d < 1", n_vocab);
    if (!(p->temperature >= 0.0f && p->temperature <= 100.0f))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "temperature %g out of range 0..100", (double)p->temperature);
    if (p->top_k < 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "top_k %d < 0", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "top_p %g out of range (0, 1]",
                        (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "min_p %g out of range 0..1",
                        (double)p->min_p);
    if (!(p->repetition_penalty > 0.0f) || !isfinite(p->repetition_penalty))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "repetition_penalty %g must be > 0",
                        (double)p->repetition_penalty);
    if (p->repetition_last_n < -1)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "repetition_last_n %d < -1",
                        p->repetition_last_n);
    if (!(p->frequency_penalty >= -2.0f && p->frequency_penalty <= 2.0f))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "frequency_penalty %g out of range -2..2", (double)p->frequency_penalty);
    if (!(p->presence_penalty >= -2.0f && p->presence_penalty <= 2.0f))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "presence_penalty %g out of range -2..2", (double)p->presence_penalty);
    return WANDLER_OK;
}

/* ---- life cycle ---- */

int wl_sampler_create(const wl_sampler_params *p, int n_vocab, wl_sampler **out, wandler_error *err)
{
    if (!out)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "sampler: out is NULL");
    *out = NULL;
    int rc = validate(p, n_vocab, err);
    if (rc != WANDLER_OK)
        return rc;

    wl_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->penalties_on = p->repetition_last_n != 0 &&
                      (p->repetition_penalty != 1.0f || p->frequency_penalty != 0.0f ||
                       p->presence_penalty != 0.0f);
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);

    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    int ok = s->cand != NULL;
    if (ok && s->penalties_on) {
        penalty_window *w = &s->win;
        w->cap = p->repetition_last_n > 0 ? (size_t)p->repetition_last_n : 0;
        w->ring = w->cap ? malloc(w->cap * sizeof *w->ring) : NULL;
        w->count = calloc((size_t)n_vocab, sizeof *w->count);
        w->present = malloc((size_t)n_vocab * sizeof *w->present);
        w->slot = malloc((size_t)n_vocab * sizeof *w->slot);
        ok = (!w->cap || w->ring) && w->count && w->present && w->slot;
        if (ok)
            for (int i = 0; i < n_vocab; i++)
                w->slot[i] = -1;
    }
    if (!ok) {
        wl_sampler_free(s);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "sampler: out of memory (n_vocab %d)",
                        n_vocab);
    }
    *out = s;
    return WANDLER_OK;
}

void wl_sampler_free(wl_sampler *s)
{
    if (!s)
        return;
    free(s->win.ring);
    free(s->win.count);
    free(s->win.present);
    free(s->win.slot);
    free(s->cand);
    free(s);
}

/* ---- penalties ---- */

static void window_add(penalty_window *w, int32_t t)
{
    if (w->count[t]++ == 0) {
        w->slot[t] = (int32_t)w->n_present;
        w->present[w->n_present++] = t;
    }
}

static void window_remove(penalty_window *w, int32_t t)
{
    if (--w->count[t] == 0) {
        int32_t i = w->slot[t];
        int32_t last = w->present[--w->n_present];
        w->present[i] = last;
        w->slot[last] = i;
        w->slot[t] = -1;
    }
}

void wl_sampler_accept(wl_sampler *s, int32_t token)
{
    if (!s || !s->penalties_on || token < 0 || token >= s->n_vocab)
        return;
    penalty_window *w = &s->win;
    if (w->cap) {
        if (w->len == w->cap) { /* drop the oldest */
            window_remove(w, w->ring[w->head]);
            w->ring[w->head] = token;
            w->head = (w->head + 1) % w->cap;
        } else {
            w->ring[(w->head + w->len++) % w->cap] = token;
        }
    }
    window_add(w, token);
}

/* As llama.cpp's penalties sampler: the repetition penalty divides a positive logit and
 * multiplies a negative one; frequency and presence penalties subtract. */
static void apply_penalties(const wl_sampler *s, float *logits)
{
    const penalty_window *w = &s->win;
    for (size_t i = 0; i < w->n_present; i++) {
        int32_t t = w->present[i];
        float l = logits[t];
        if (l <= 0.0f)
            l *= s->p.repetition_penalty;
        else
            l /= s->p.repetition_penalty;
        l -= (float)w->count[t] * s->p.frequency_penalty + s->p.presence_penalty;
        logits[t] = l;
    }
}

/* ---- choosing ---- */

static int32_t argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best] || (isnan(logits[best]) && !isnan(logits[i])))
            best = i;
    return best;
}

int32_t wl_sampler_sample(wl_sampler *s, float *logits)
{
    if (s->penalties_on)
        apply_penalties(s, logits);
    if (s->p.temperature == 0.0f)
        return argmax(logits, s->n_vocab);

    wl_cands c = {s->cand, (size_t)s->n_vocab, 0};
    for (int32_t i = 0; i < s->n_vocab; i++) {
        float l = logits[i];
        if (isnan(l))
            l = -INFINITY; /* a NaN never wins */
        else if (l > FLT_MAX)
            l = FLT_MAX;
        c.data[i] = (wl_cand){i, l, 0.0f};
    }
    wl_cands_top_k(&c, s->p.top_k);
    wl_cands_top_p(&c, s->p.top_p);
    wl_cands_min_p(&c, s->p.min_p);
    wl_cands_temperature(&c, s->p.temperature);
    wl_cands_softmax(&c);

    double u = uniform01(s->rng);
    double cum = 0;
    for (size_t i = 0; i < c.size; i++) {
        cum += c.data[i].p;
        if (u < cum)
            return c.data[i].id;
    }
    /* Rounding left the total just under u: the last candidate with any mass. */
    for (size_t i = c.size; i-- > 0;)
        if (c.data[i].p > 0.0f)
            return c.data[i].id;
    return c.data[0].id;
}
