/* test_threadpool.c - the persistent compute pool: every ith exactly once per run, results
 * visible to the caller, no hang over many runs (spinning and sleeping paths), no leaked
 * threads or memory over many create/destroy cycles, argument errors. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "engine/threadpool.h"

/* ---- every ith once per run ------------------------------------------------------------- */

typedef struct {
    atomic_int calls[16]; /* by ith */
    atomic_int bad_nth;
    int expected_nth;
} count_ctx;

static void count_calls(void *p, int ith, int nth)
{
    count_ctx *c = p;
    if (nth != c->expected_nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&c->bad_nth, 1);
    else
        atomic_fetch_add(&c->calls[ith], 1);
}

static void test_each_ith_once(void **state)
{
    (void)state;
    for (int n = 1; n <= 8; n++) {
        wl_pool *pool = NULL;
        wandler_error err;
        assert_int_equal(wl_pool_create(n, &pool, &err), WANDLER_OK);
        assert_int_equal(wl_pool_size(pool), n);
        count_ctx c;
        memset(&c, 0, sizeof c);
        c.expected_nth = n;
        for (int run = 1; run <= 2000; run++) {
            wl_pool_run(pool, count_calls, &c);
            for (int i = 0; i < n; i++)
                if (atomic_load(&c.calls[i]) != run)
                    fail_msg("n=%d run %d: ith %d ran %d times", n, run, i,
                             atomic_load(&c.calls[i]));
        }
        assert_int_equal(atomic_load(&c.bad_nth), 0);
        wl_pool_destroy(pool);
    }
}

/* ---- results visible after run (plain, non-atomic memory) ------------------------------- */

enum { SLOTS = 64 };

typedef struct {
    int round;             /* written by the caller before the run */
    long out[8][SLOTS];    /* written by the workers, read by the caller after it */
} visibility_ctx;

static void write_slots(void *p, int ith, int nth)
{
    visibility_ctx *v = p;
    (void)nth;
    for (int j = 0; j < SLOTS; j++)
        v->out[ith][j] = (long)v->round * 1000 + ith * SLOTS + j;
}

static void test_results_visible(void **state)
{
    (void)state;
    const int sizes[] = {2, 3, 4, 8};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        wl_pool *pool;
        assert_int_equal(wl_pool_create(n, &pool, NULL), WANDLER_OK);
        static visibility_ctx v;
        memset(&v, 0, sizeof v);
        int rounds = n <= 2 ? 100000 : 10000;
        for (int round = 1; round <= rounds; round++) {
            v.round = round;
            wl_pool_run(pool, write_slots, &v);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < SLOTS; j += 7)
                    if (v.out[i][j] != (long)round * 1000 + i * SLOTS + j)
                        fail_msg("n=%d round %d: slot [%d][%d] stale", n, round, i, j);
        }
        wl_pool_destroy(pool);
    }
}

/* ---- many runs: 100k back to back, plus runs separated by idle time --------------------- */

static void add_one(void *p, int ith, int nth)
{
    (void)nth;
    atomic_fetch_add((atomic_long *)p + ith, 1);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_100k_runs(void **state)
{
    (void)state;
    const int sizes[] = {2, 4};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        wl_pool *pool;
        assert_int_equal(wl_pool_create(n, &pool, NULL), WANDLER_OK);
        atomic_long counts[8] = {0};
        const int runs = 100000;
        double t0 = seconds_now();
        for (int i = 0; i < runs; i++)
            wl_pool_run(pool, add_one, counts);
        double dt = seconds_now() - t0;
        for (int i = 0; i < n; i++)
            assert_int_equal(atomic_load(&counts[i]), runs);
        printf("  %d threads: %.2f us per run\n", n, dt / runs * 1e6);
        wl_pool_destroy(pool);
    }
}

/* Between these runs the workers have gone to sleep on the futex: every run wakes them. */
static void test_runs_after_idle(void **state)
{
    (void)state;
    wl_pool *pool;
    assert_int_equal(wl_pool_create(3, &pool, NULL), WANDLER_OK);
    atomic_long counts[3] = {0};
    for (int i = 0; i < 200; i++) {
        usleep(i % 10 == 0 ? 2000 : 150);
        wl_pool_run(pool, add_one, counts);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&counts[i]), 200);
    wl_pool_destroy(pool);
}

/* One worker slower than the spin window: the caller sleeps until the last worker wakes it. */
static void slow_worker(void *p, int ith, int nth)
{
    (void)nth;
    if (ith == nth - 1)
        usleep(1000);
    atomic_fetch_add((atomic_long *)p + ith, 1);
}

static void test_caller_waits_for_slow_worker(void **state)
{
    (void)state;
    wl_pool *pool;
    assert_int_equal(wl_pool_create(2, &pool, NULL), WANDLER_OK);
    atomic_long counts[2] = {0};
    for (int i = 0; i < 100; i++) {
        wl_pool_run(pool, slow_worker, counts);
        assert_int_equal(atomic_load(&counts[1]), i + 1); /* run returned after it finished */
    }
    wl_pool_destroy(pool);
}

/* ---- create / destroy ------------------------------------------------------------------- */

/* Threads of this process, from /proc/self/status (its size reads as 0: read it by lines). */
static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            n = atoi(line + 8);
    fclose(f);
    assert_true(n > 0);
    return n;
}

static void test_create_destroy_200(void **state)
{
    (void)state;
    int before = thread_count();
    for (int i = 0; i < 200; i++) {
        int n = 1 + i % 8;
        wl_pool *pool;
        assert_int_equal(wl_pool_create(n, &pool, NULL), WANDLER_OK);
        if (i == 7)
            assert_true(thread_count() >= before + 7); /* the caller is thread 0 */
        if (i % 3 == 0) { /* some pools run, some are destroyed straight away */
            atomic_long counts[8] = {0};
            wl_pool_run(pool, add_one, counts);
        }
        wl_pool_destroy(pool);
    }
    assert_int_equal(thread_count(), before); /* every thread joined */
}

static void test_one_thread_starts_none(void **state)
{
    (void)state;
    int before = thread_count();
    wl_pool *pool;
    assert_int_equal(wl_pool_create(1, &pool, NULL), WANDLER_OK);
    assert_int_equal(thread_count(), before);
    atomic_long counts[1] = {0};
    wl_pool_run(pool, add_one, counts);
    assert_int_equal(atomic_load(&counts[0]), 1);
    wl_pool_destroy(pool);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    wl_pool *pool = (wl_pool *)&pool;
    wandler_error err;
    assert_int_equal(wl_pool_create(0, &pool, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_null(pool);
    assert_int_equal(err.code, WANDLER_ERR_INVALID_ARGUMENT);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(wl_pool_create(257, &pool, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_pool_create(-3, &pool, NULL), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_pool_create(2, NULL, &err), WANDLER_ERR_INVALID_ARGUMENT);
    wl_pool_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_one_thread_starts_none),
        cmocka_unit_test(test_each_ith_once),
        cmocka_unit_test(test_results_visible),
        cmocka_unit_test(test_100k_runs),
        cmocka_unit_test(test_runs_after_idle),
        cmocka_unit_test(test_caller_waits_for_slow_worker),
        cmocka_unit_test(test_create_destroy_200),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
