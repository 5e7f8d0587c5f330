/* sampler.h - choosing the next token from the logits.
 *
 * Order of operations (llama.cpp's default chain): penalties (repetition: divide positive /
 * multiply negative logits of tokens among the last N; frequency: subtract count * f; presence:
 * subtract p once present), then with temperature 0: argmax (lowest id wins ties). Otherwise
 * top-k, top-p, min-p, temperature, softmax and a draw from a seeded generator
 * (xoshiro256** seeded by splitmix64(seed)), so the same seed and options give the same tokens. */
#ifndef WL_ENGINE_SAMPLER_H
#define WL_ENGINE_SAMPLER_H

#include <stdint.h>

#include "wandler.h"

typedef struct wl_sampler_params {
    float temperature;        /* 0 = greedy */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off */
    float min_p;              /* 0 = off */
    float repetition_penalty; /* 1 = off */
    int repetition_last_n;    /* 0 = off, -1 = whole history */
    float frequency_penalty;  /* 0 = off */
    float presence_penalty;   /* 0 = off */
    uint64_t seed;
} wl_sampler_params;

typedef struct wl_sampler wl_sampler;

/* Errors: INVALID_ARGUMENT (a parameter out of range, n_vocab < 1), OUT_OF_MEMORY. */
int wl_sampler_create(const wl_sampler_params *p, int n_vocab, wl_sampler **out, wandler_error *err);

/* Records a token of the history (prompt and generated tokens) that the penalties look at. */
void wl_sampler_accept(wl_sampler *s, int32_t token);

/* Picks the next token. logits[n_vocab] is used as scratch and modified. Does not accept the
 * token: the caller calls wl_sampler_accept() with it. */
int32_t wl_sampler_sample(wl_sampler *s, float *logits);

void wl_sampler_free(wl_sampler *s);

#endif
