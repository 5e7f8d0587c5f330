/* threadpool.c - a persistent pool of compute threads, woken per job by a generation counter.
 *
 * One job at a time, cut into n chunks: the caller publishes (fn, ctx) and the job word (a tag,
 * n, and the next chunk to take), then bumps `generation`. Workers watch `generation`: they
 * spin on it for a short while after each job (the next job of a forward pass usually comes
 * within microseconds, and a futex wake costs tens of them), then sleep on it with FUTEX_WAIT.
 * Every thread, the caller included, then claims chunks from the job word until none is left,
 * and the caller waits until `done` counts all n: spin, then sleep until the last chunk's
 * finisher wakes it. In a dynamic job (wl_pool_run_n) chunks go to whoever comes first, so a
 * thread that the OS has not scheduled (a busy, shared machine) does not hold the job up: the
 * others take its chunks, and the caller waits only for chunks actually being run. That suits
 * the many short jobs of decode. In a static job (wl_pool_run) thread i runs chunk i, so every
 * thread works on a long job (prefill) even when it arrives late; measured on this shared
 * machine, dynamic chunks there left more of a long job to the caller alone and prefill ran
 * at half the speed.
 *
 * Memory ordering: the job fields are written before the release store of the job word and
 * read only after a successful claim (an acquire compare-and-swap on it; every claim is a
 * read-modify-write, so each continues the release sequence); the results of a chunk are
 * written before its (sequentially consistent) increment of `done`, and the caller's acquire
 * load of n sees them all.
 *
 * Sleeping is race-free through the Dekker pattern on sequentially consistent atomics: a worker
 * counts itself in `sleepers` before FUTEX_WAIT (which rechecks `generation` in the kernel), and
 * the caller reads `sleepers` after bumping `generation`, so either the caller sees the sleeper
 * and wakes it, or the sleeper sees the new generation. The caller's own sleep on `done`
 * follows the same pattern with `caller_sleeping`. */
#include "engine/threadpool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine/cpu.h"
#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle thread spins before it sleeps. A forward pass issues a job every few
 * microseconds to a few tens of microseconds (between them the caller does small serial work:
 * norms, rope, attention of a short context), and waking a sleeping thread costs far more than
 * a run of a spinning one (measured in this project's 2-core KVM guest: 0.3-1.3 us per run while
 * the workers spin, 22 us when every run has to wake them). So the window covers those gaps
 * with room to spare; after the last job of a token the threads sleep, so the window costs
 * little. A spinner yields its core only when the pool itself has more threads than the process
 * has cores (then the thread being waited for may need that very core). When the machine is
 * merely busy with other processes, yielding hands the core to one of them for a whole time
 * slice (milliseconds), and the next job of the pass waits for the yielder to come back
 * (measured here under a load of ~15 on 2 cores: a 0.3M-parameter model decoded 1.2k tokens/s
 * with yielding spinners, 47k without). */
#define SPIN_NS 100000


#define YIELD_AFTER 256 /* spin steps (pauses) before an oversubscribed spinner starts yielding */

#define MAX_THREADS 256
#define CACHE_LINE 64

struct wl_pool {
    /* Written by the caller per job, read by the workers. */
    alignas(CACHE_LINE) atomic_uint generation; /* futex word: bumped once per job (and to stop) */
    atomic_int sleepers;                       /* workers inside (or entering) FUTEX_WAIT */
    wl_pool_fn fn;
    void *ctx;
    atomic_int stop; /* atomic: a worker still returning from an earlier job may read it while
                        the caller, which no longer waits for that worker, sets it */
    int oversubscribed; /* more threads than cores: spinners yield (spin_step) */
    uint32_t job_seq;   /* the caller's count of jobs (its low bits tag `job`) */

    /* Claimed by every thread: the job's tag, its number of chunks and the next chunk. */
    alignas(CACHE_LINE) atomic_ullong job;

    /* Written by whoever finishes a chunk. */
    alignas(CACHE_LINE) atomic_int done; /* futex word: chunks of the current job finished */
    atomic_int caller_sleeping;

    alignas(CACHE_LINE) int n_threads;
    int n_started; /* worker threads running (n_threads - 1 once created) */
    pthread_t *threads;
    struct worker_arg *args;
};

struct worker_arg {
    wl_pool *pool;
    int ith;
};

static long futex(atomic_uint *addr, int op, unsigned int val)
{
    return syscall(SYS_futex, (void *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static long futex_int(atomic_int *addr, int op, int val)
{
    return syscall(SYS_futex, (void *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

/* One step of a spin-wait: a pause and, in an oversubscribed pool whose wait has lasted a
 * while, now and then a yield (see SPIN_NS). */
static void spin_step(const wl_pool *pool, unsigned int i)
{
    cpu_relax();
    if (pool->oversubscribed && i >= YIELD_AFTER && (i & 15) == 0)
        sched_yield();
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spins until `generation` differs from `seen` or the spin window passes. Returns the value
 * read. The clock is read only every 64 pauses. */
static unsigned int spin_on_generation(wl_pool *pool, unsigned int seen)
{
    uint64_t deadline = 0;
    for (unsigned int i = 0;; i++) {
        unsigned int g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen)
            return g;
        if ((i & 63) == 0) {
            uint64_t t = now_ns();
            if (deadline == 0)
                deadline = t + SPIN_NS;
            else if (t >= deadline)
                return g;
        }
        spin_step(pool, i);
    }
}

/* Returns the generation of the next job (or of the stop request) after `seen`. */
static unsigned int wait_for_job(wl_pool *pool, unsigned int seen)
{
    unsigned int g = spin_on_generation(pool, seen);
    while (g == seen) {
        atomic_fetch_add(&pool->sleepers, 1);
        if (atomic_load(&pool->generation) == seen)
            futex(&pool->generation, FUTEX_WAIT, seen); /* returns at once if it changed */
        atomic_fetch_sub(&pool->sleepers, 1);
        g = atomic_load_explicit(&pool->generation, memory_order_acquire);
    }
    return g;
}

/* The job word: a tag (the job's sequence number, 23 bits), a static flag, the number of
 * chunks (20 bits) and the next unclaimed chunk (20 bits). In a dynamic job a thread claims a
 * chunk by a compare-and-swap that advances the next chunk; one that holds the word of an older
 * job fails the swap, so it can never take a chunk of a job it has not seen published. In a
 * static job (wl_pool_run) chunk i belongs to thread i, which runs it once (it remembers the
 * tag of the last static job it ran), and the caller waits for every thread. */
#define CHUNK_BITS 20
#define CHUNK_MASK ((1ull << CHUNK_BITS) - 1)
#define STATIC_BIT (1ull << (2 * CHUNK_BITS))
#define TAG_SHIFT (2 * CHUNK_BITS + 1)

static unsigned long long job_word(uint32_t seq, int n, int is_static)
{
    return ((unsigned long long)(seq & 0x7fffff) << TAG_SHIFT) | (is_static ? STATIC_BIT : 0) |
           ((unsigned long long)n << CHUNK_BITS);
}

/* Marks one chunk of the current job finished (its results written before) and wakes the
 * caller when it was the last one. */
static void finish_chunk(wl_pool *pool, int n)
{
    if (atomic_fetch_add(&pool->done, 1) + 1 == n && atomic_load(&pool->caller_sleeping))
        futex_int(&pool->done, FUTEX_WAKE, 1);
}

/* Claims and runs chunks of the published job until none is left. The job's fields are read
 * only after a successful claim: until that chunk is finished the caller cannot publish another
 * job, so they are the fields of the job claimed from. */
static void run_chunks(wl_pool *pool)
{
    unsigned long long w = atomic_load_explicit(&pool->job, memory_order_acquire);
    for (;;) {
        const int n = (int)((w >> CHUNK_BITS) & CHUNK_MASK), i = (int)(w & CHUNK_MASK);
        if (i >= n || (w & STATIC_BIT)) /* nothing left, or a static job (see worker_main) */
            return;
        if (!atomic_compare_exchange_weak_explicit(&pool->job, &w, w + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* w now holds the current word */
        pool->fn(pool->ctx, i, n);
        finish_chunk(pool, n);
        w = atomic_load_explicit(&pool->job, memory_order_acquire);
    }
}

static void *worker_main(void *p)
{
    struct worker_arg *arg = p;
    wl_pool *pool = arg->pool;
    /* Not a load of `generation`: the first job may be published before this thread runs. */
    unsigned int seen = 0;
    unsigned long long last_static = ~0ull; /* tag of the last static job this thread ran */
    for (;;) {
        seen = wait_for_job(pool, seen);
        if (atomic_load_explicit(&pool->stop, memory_order_relaxed))
            return NULL; /* publish() orders the store before the generation the worker saw */
        const unsigned long long w = atomic_load_explicit(&pool->job, memory_order_acquire);
        if (!(w & STATIC_BIT)) {
            run_chunks(pool);
        } else if (w >> TAG_SHIFT != last_static) {
            /* the caller waits for this chunk, so the job's fields stay this job's */
            last_static = w >> TAG_SHIFT;
            const int n = (int)((w >> CHUNK_BITS) & CHUNK_MASK);
            pool->fn(pool->ctx, arg->ith, n);
            finish_chunk(pool, n);
        }
    }
}

/* Waits until all n chunks of the current job are finished. */
static void wait_for_chunks(wl_pool *pool, int n)
{
    uint64_t deadline = 0;
    for (unsigned int i = 0; atomic_load_explicit(&pool->done, memory_order_acquire) != n; i++) {
        if ((i & 63) == 0) {
            uint64_t t = now_ns();
            if (deadline == 0) {
                deadline = t + SPIN_NS;
            } else if (t >= deadline) {
                atomic_store(&pool->caller_sleeping, 1);
                int d;
                while ((d = atomic_load(&pool->done)) != n)
                    futex_int(&pool->done, FUTEX_WAIT, d);
                atomic_store(&pool->caller_sleeping, 0);
                break;
            }
        }
        spin_step(pool, i);
    }
    atomic_thread_fence(memory_order_acquire);
}

/* Bumps the generation and wakes the workers that went to sleep. */
static void publish(wl_pool *pool)
{
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0)
        futex(&pool->generation, FUTEX_WAKE, INT_MAX);
}

void wl_pool_run_n(wl_pool *pool, wl_pool_fn fn, void *ctx, int n)
{
    if (n < 1)
        return;
    if (pool->n_threads == 1 || n == 1) {
        for (int i = 0; i < n; i++)
            fn(ctx, i, n);
        return;
    }
    if (n > (int)CHUNK_MASK)
        n = (int)CHUNK_MASK; /* not reached by the engine's callers */
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->job, job_word(++pool->job_seq, n, 0), memory_order_release);
    publish(pool);
    run_chunks(pool);
    wait_for_chunks(pool, n);
}

void wl_pool_run(wl_pool *pool, wl_pool_fn fn, void *ctx)
{
    const int n = pool->n_threads;
    if (n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->job, job_word(++pool->job_seq, n, 1), memory_order_release);
    publish(pool);
    fn(ctx, 0, n);
    finish_chunk(pool, n);
    wait_for_chunks(pool, n);
}

int wl_pool_size(const wl_pool *pool)
{
    return pool->n_threads;
}

/* Stops and joins the workers started so far. */
static void stop_workers(wl_pool *pool)
{
    if (pool->n_started == 0)
        return;
    atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
    publish(pool);
    for (int i = 0; i < pool->n_started; i++)
        pthread_join(pool->threads[i], NULL);
    pool->n_started = 0;
}

static void free_pool(wl_pool *pool)
{
    free(pool->threads);
    free(pool->args);
    free(pool);
}

/* Starts the workers with every signal blocked, so signals meant for the application are
 * delivered to its own threads. */
static int start_workers(wl_pool *pool, wandler_error *err)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int i = 1; i < pool->n_threads; i++) {
        pool->args[i - 1] = (struct worker_arg){pool, i};
        rc = pthread_create(&pool->threads[i - 1], NULL, worker_main, &pool->args[i - 1]);
        if (rc != 0)
            break;
        pool->n_started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return wl_error(err, WANDLER_ERR_SYSTEM, "could not start compute thread %d of %d: %s",
                        pool->n_started + 1, pool->n_threads - 1, strerror(rc));
    return WANDLER_OK;
}

int wl_pool_create(int n_threads, wl_pool **out, wandler_error *err)
{
    if (out == NULL)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "wl_pool_create: out is NULL");
    *out = NULL;
    if (n_threads < 1 || n_threads > MAX_THREADS)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "thread count %d is outside 1..%d", n_threads, MAX_THREADS);
    wl_pool *pool = aligned_alloc(CACHE_LINE, sizeof *pool);
    if (pool == NULL)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory for the thread pool");
    memset(pool, 0, sizeof *pool);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->job, job_word(0, 0, 0));
    atomic_init(&pool->done, 0);
    atomic_init(&pool->caller_sleeping, 0);
    pool->n_threads = n_threads;
    pool->oversubscribed = n_threads > wl_cpu_count();
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads - 1, sizeof *pool->threads);
        pool->args = calloc((size_t)n_threads - 1, sizeof *pool->args);
        if (pool->threads == NULL || pool->args == NULL) {
            free_pool(pool);
            return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory for the thread pool");
        }
        int rc = start_workers(pool, err);
        if (rc != WANDLER_OK) {
            stop_workers(pool);
            free_pool(pool);
            return rc;
        }
    }
    *out = pool;
    return WANDLER_OK;
}

void wl_pool_destroy(wl_pool *pool)
{
    if (pool == NULL)
        return;
    stop_workers(pool);
    free_pool(pool);
}
