/* test_steal.c - blocks shared out with stealing (steal.h): one thread takes every block in
 * order; each thread first takes its own run from the front; with several threads racing (and
 * with more threads than blocks, and none) every block is taken exactly once and a thread sees
 * -1 only when nothing is left. The racing case runs under TSan in CI. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "testutil.h"
#include "engine/steal.h"

#define MAX_T 8

static void test_one_thread_in_order(void **state)
{
    (void)state;
    wl_steal_slot s[1];
    wl_steal_init(s, 1, 37);
    for (int64_t b = 0; b < 37; b++)
        assert_int_equal(wl_steal_next(s, 1, 0), b);
    assert_int_equal(wl_steal_next(s, 1, 0), -1);
    wl_steal_init(s, 1, 0);
    assert_int_equal(wl_steal_next(s, 1, 0), -1);
}

static void test_own_run_first_then_steal_from_back(void **state)
{
    (void)state;
    wl_steal_slot s[3];
    wl_steal_init(s, 3, 9); /* runs [0,3) [3,6) [6,9) */
    assert_int_equal(wl_steal_next(s, 3, 1), 3);
    assert_int_equal(wl_steal_next(s, 3, 1), 4);
    assert_int_equal(wl_steal_next(s, 3, 1), 5);
    /* thread 1's run is done: it takes the back of thread 2's, then of thread 0's */
    assert_int_equal(wl_steal_next(s, 3, 1), 8);
    assert_int_equal(wl_steal_next(s, 3, 2), 6);
    assert_int_equal(wl_steal_next(s, 3, 2), 7);
    assert_int_equal(wl_steal_next(s, 3, 2), 2);
    assert_int_equal(wl_steal_next(s, 3, 0), 0);
    assert_int_equal(wl_steal_next(s, 3, 0), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wl_steal_next(s, 3, i), -1);
}

typedef struct race {
    wl_steal_slot *slots;
    int nth, ith;
    int64_t n_blocks;
    atomic_int *taken; /* per block: how many times it was handed out */
    int64_t count;     /* blocks this thread got */
} race;

static void *racer(void *p)
{
    race *r = p;
    for (int64_t b; (b = wl_steal_next(r->slots, r->nth, r->ith)) >= 0; r->count++) {
        assert_true(b < r->n_blocks);
        atomic_fetch_add(&r->taken[b], 1);
    }
    return NULL;
}

static void race_once(int nth, int64_t n_blocks)
{
    wl_steal_slot *slots = aligned_alloc(64, sizeof *slots * MAX_T);
    atomic_int *taken = calloc((size_t)n_blocks + 1, sizeof *taken);
    assert_non_null(slots);
    assert_non_null(taken);
    wl_steal_init(slots, nth, n_blocks);
    race r[MAX_T];
    pthread_t th[MAX_T];
    for (int i = 0; i < nth; i++) {
        r[i] = (race){slots, nth, i, n_blocks, taken, 0};
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
    }
    int64_t total = 0;
    for (int i = 0; i < nth; i++) {
        pthread_join(th[i], NULL);
        total += r[i].count;
    }
    assert_int_equal(total, n_blocks);
    for (int64_t b = 0; b < n_blocks; b++)
        assert_int_equal(atomic_load(&taken[b]), 1);
    free(taken);
    free(slots);
}

static void test_racing_threads_take_each_block_once(void **state)
{
    (void)state;
    for (int round = 0; round < 50; round++) {
        race_once(2, 1000);
        race_once(4, 4001);
        race_once(MAX_T, 3); /* more threads than blocks */
        race_once(3, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread_in_order),
        cmocka_unit_test(test_own_run_first_then_steal_from_back),
        cmocka_unit_test(test_racing_threads_take_each_block_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
