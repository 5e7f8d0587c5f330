/* test_pool_chunks.c - the thread pool's dynamic chunks (wl_pool_run_n): every chunk runs
 * exactly once per run whatever the number of chunks and threads, never two calls with the same
 * chunk at once, everything written is visible when the run returns, and dynamic runs mix with
 * static ones (wl_pool_run: chunk i on thread i) run after run, including workers that arrive
 * late for a dynamic job that is already over. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "engine/threadpool.h"

#define MAX_CHUNKS 64

typedef struct {
    atomic_int calls[MAX_CHUNKS];
    atomic_int running[MAX_CHUNKS];
    atomic_int bad;
    int n;
    long plain[MAX_CHUNKS]; /* written without atomics: visible after the run */
    int slow;               /* chunk 0 sleeps a little, so the others are claimed elsewhere */
} chunk_ctx;

static void chunk_fn(void *p, int i, int n)
{
    chunk_ctx *c = p;
    if (n != c->n || i < 0 || i >= n) {
        atomic_fetch_add(&c->bad, 1);
        return;
    }
    if (atomic_fetch_add(&c->running[i], 1) != 0)
        atomic_fetch_add(&c->bad, 1); /* the same chunk twice at once */
    if (c->slow && i == 0)
        usleep(200);
    c->plain[i] += i + 1;
    atomic_fetch_add(&c->calls[i], 1);
    atomic_fetch_sub(&c->running[i], 1);
}

static void test_every_chunk_once(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        wl_pool *pool;
        assert_int_equal(wl_pool_create(threads, &pool, NULL), WANDLER_OK);
        for (int n = 1; n <= 40; n++) {
            chunk_ctx *c = calloc(1, sizeof *c);
            assert_non_null(c);
            c->n = n;
            c->slow = n % 3 == 0;
            const int runs = 50;
            for (int r = 0; r < runs; r++) {
                wl_pool_run_n(pool, chunk_fn, c, n);
                for (int i = 0; i < n; i++) /* visible right after the run */
                    assert_int_equal(c->plain[i], (long)(r + 1) * (i + 1));
            }
            for (int i = 0; i < n; i++)
                assert_int_equal(atomic_load(&c->calls[i]), runs);
            assert_int_equal(atomic_load(&c->bad), 0);
            free(c);
        }
        wl_pool_destroy(pool);
    }
}

typedef struct {
    atomic_int calls[8];
    int nth;
    atomic_int bad;
} static_ctx;

static void static_fn(void *p, int ith, int nth)
{
    static_ctx *c = p;
    if (nth != c->nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&c->bad, 1);
    else
        atomic_fetch_add(&c->calls[ith], 1);
}

/* Dynamic and static runs alternate; the dynamic ones are often over before a worker wakes. */
static void test_mixed_with_static(void **state)
{
    (void)state;
    const int sizes[] = {2, 3};
    for (size_t s = 0; s < 2; s++) {
        wl_pool *pool;
        assert_int_equal(wl_pool_create(sizes[s], &pool, NULL), WANDLER_OK);
        static_ctx sc;
        memset(&sc, 0, sizeof sc);
        sc.nth = sizes[s];
        chunk_ctx *c = calloc(1, sizeof *c);
        assert_non_null(c);
        c->n = 5;
        const int runs = 20000;
        for (int r = 0; r < runs; r++) {
            wl_pool_run_n(pool, chunk_fn, c, 5);
            wl_pool_run(pool, static_fn, &sc);
            if (r % 1000 == 999)
                usleep(300); /* let the workers fall asleep now and then */
        }
        for (int i = 0; i < sizes[s]; i++)
            assert_int_equal(atomic_load(&sc.calls[i]), runs);
        for (int i = 0; i < 5; i++)
            assert_int_equal(atomic_load(&c->calls[i]), runs);
        assert_int_equal(atomic_load(&sc.bad), 0);
        assert_int_equal(atomic_load(&c->bad), 0);
        free(c);
        wl_pool_destroy(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_chunk_once),
        cmocka_unit_test(test_mixed_with_static),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
