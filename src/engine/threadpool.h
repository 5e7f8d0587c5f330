/* threadpool.h - a persistent pool of compute threads; the calling thread takes part.
 *
 * wl_pool_run(pool, fn, ctx) runs fn(ctx, ith, nth) once for every ith in [0, nth), with ith 0
 * on the calling thread, and returns when all have returned. Idle threads spin briefly, then
 * sleep on a futex, so a pool costs no CPU between runs. One thread at a time may call
 * wl_pool_run on a pool (the model's compute thread). No OpenMP. */
#ifndef WL_ENGINE_THREADPOOL_H
#define WL_ENGINE_THREADPOOL_H

#include "wandler.h"

typedef struct wl_pool wl_pool;
typedef void (*wl_pool_fn)(void *ctx, int ith, int nth);

/* Creates a pool of n_threads threads in all (the caller plus n_threads - 1 started here).
 * n_threads in 1..256. Errors: INVALID_ARGUMENT, SYSTEM (a thread could not be started),
 * OUT_OF_MEMORY. */
int wl_pool_create(int n_threads, wl_pool **out, wandler_error *err);

void wl_pool_run(wl_pool *pool, wl_pool_fn fn, void *ctx);

int wl_pool_size(const wl_pool *pool);

/* Stops and joins the threads and frees the pool. NULL is ignored. */
void wl_pool_destroy(wl_pool *pool);

#endif
