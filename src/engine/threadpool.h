/* threadpool.h - a persistent pool of compute threads; the calling thread takes part.
 *
 * wl_pool_run(pool, fn, ctx) runs fn(ctx, ith, nth) once for every ith in [0, nth), with ith 0
 * on the calling thread and ith i on worker thread i, and returns when all have returned;
 * everything the calls wrote is then visible to the caller. Idle threads spin for up to 100 us after a job, then sleep on a futex, so an
 * idle pool costs no CPU; a run costs under a microsecond while the workers spin, some 20 us
 * when they must be woken. One thread at a time may call wl_pool_run on a pool (the model's
 * compute thread), and fn must not call it again. Worker threads run with every signal
 * blocked. No OpenMP. */
#ifndef WL_ENGINE_THREADPOOL_H
#define WL_ENGINE_THREADPOOL_H

#include "wandler.h"

typedef struct wl_pool wl_pool;
typedef void (*wl_pool_fn)(void *ctx, int ith, int nth);

/* Creates a pool of n_threads threads in all (the caller plus n_threads - 1 started here; 1
 * starts none). n_threads in 1..256; wl_cpu_count() is the usual choice. Errors:
 * INVALID_ARGUMENT, SYSTEM (a thread could not be started), OUT_OF_MEMORY; *out is NULL then. */
int wl_pool_create(int n_threads, wl_pool **out, wandler_error *err);

/* Runs fn(ctx, ith, nth) for ith in [0, nth), nth = wl_pool_size(pool); see above. */
void wl_pool_run(wl_pool *pool, wl_pool_fn fn, void *ctx);

/* Runs fn(ctx, i, n) once for every chunk i in [0, n) (n >= 1), each chunk on whichever thread
 * claims it first (the caller too), and returns when all have returned. Two calls never run
 * concurrently with the same i, so i may index per-chunk scratch; with n <= wl_pool_size()
 * at most n chunks run at once. More chunks than threads even out threads that run at
 * different speeds (a shared machine), and a thread that is late finds its chunks taken. */
void wl_pool_run_n(wl_pool *pool, wl_pool_fn fn, void *ctx, int n);

/* The number of threads of the pool, the caller included (n_threads of wl_pool_create). */
int wl_pool_size(const wl_pool *pool);

/* Stops and joins the threads and frees the pool. NULL is ignored. */
void wl_pool_destroy(wl_pool *pool);

#endif
