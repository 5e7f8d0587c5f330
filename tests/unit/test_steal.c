/* test_steal.c - blocks shared out with stealing (steal.h): one thread takes every block in
 * order, in ranges that shrink toward the end of its run; each thread first takes its own run
 * from the front, then half of the back of another's; with several threads racing (and
 * with more threads than blocks, and none) every block is taken exactly once and a thread sees
 * a count of 0 only when nothing is left. The racing case runs under TSan in CI. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "testutil.h"
#include "engine/steal.h"

#define MAX_T 8

/* takes one range and checks it is [first, first + count) */
static void expect(wl_steal_slot *s, int nth, int ith, int64_t most, int64_t first, int64_t count)
{
    const wl_steal_range r = wl_steal_next(s, nth, ith, most);
    assert_int_equal(r.count, count);
    if (count > 0)
        assert_int_equal(r.first, first);
}

static void test_one_thread_in_order(void **state)
{
    (void)state;
    wl_steal_slot s[1];
    wl_steal_init(s, 1, 37);
    for (int64_t b = 0; b < 37; b++) /* most = 1: one block at a time, in order */
        expect(s, 1, 0, 1, b, 1);
    expect(s, 1, 0, 1, 0, 0);
    wl_steal_init(s, 1, 0);
    expect(s, 1, 0, 8, 0, 0);
    wl_steal_init(s, 1, 5);
    expect(s, 1, 0, 0, 0, 1); /* most below 1 counts as 1 */
    expect(s, 1, 0, -3, 1, 1);
}

static void test_own_ranges_shrink_toward_the_end(void **state)
{
    (void)state;
    wl_steal_slot s[1];
    wl_steal_init(s, 1, 37);
    /* a quarter of what is left, at most 8, at least 1 */
    expect(s, 1, 0, 8, 0, 8);  /* 37 left */
    expect(s, 1, 0, 8, 8, 7);  /* 29 */
    expect(s, 1, 0, 8, 15, 5); /* 22 */
    expect(s, 1, 0, 8, 20, 4); /* 17 */
    expect(s, 1, 0, 8, 24, 3); /* 13 */
    expect(s, 1, 0, 8, 27, 2); /* 10 */
    expect(s, 1, 0, 8, 29, 2); /* 8 */
    expect(s, 1, 0, 8, 31, 1); /* 6 */
    expect(s, 1, 0, 8, 32, 1);
    expect(s, 1, 0, 8, 33, 1);
    expect(s, 1, 0, 8, 34, 1);
    expect(s, 1, 0, 8, 35, 1);
    expect(s, 1, 0, 8, 36, 1);
    expect(s, 1, 0, 8, 0, 0);
}

static void test_own_run_first_then_steal_from_back(void **state)
{
    (void)state;
    wl_steal_slot s[3];
    wl_steal_init(s, 3, 9); /* runs [0,3) [3,6) [6,9) */
    expect(s, 3, 1, 1, 3, 1);
    expect(s, 3, 1, 1, 4, 1);
    expect(s, 3, 1, 1, 5, 1);
    /* thread 1's run is done: it takes the back of thread 2's, then of thread 0's */
    expect(s, 3, 1, 1, 8, 1);
    expect(s, 3, 2, 1, 6, 1);
    expect(s, 3, 2, 1, 7, 1);
    expect(s, 3, 2, 1, 2, 1);
    expect(s, 3, 0, 1, 0, 1);
    expect(s, 3, 0, 1, 1, 1);
    for (int i = 0; i < 3; i++)
        expect(s, 3, i, 1, 0, 0);
}

static void test_thief_takes_half_of_the_back(void **state)
{
    (void)state;
    wl_steal_slot s[2];
    wl_steal_init(s, 2, 40);     /* runs [0,20) [20,40) */
    expect(s, 2, 1, 100, 20, 5); /* its own: a quarter of 20 */
    expect(s, 2, 1, 100, 25, 3); /* a quarter of 15 */
    expect(s, 2, 1, 100, 28, 3); /* of 12 */
    expect(s, 2, 1, 100, 31, 2); /* of 9 */
    expect(s, 2, 1, 100, 33, 1); /* of 7 */
    expect(s, 2, 0, 100, 0, 5);  /* thread 0 has not been faster */
    expect(s, 2, 1, 100, 34, 1);
    expect(s, 2, 1, 100, 35, 1);
    expect(s, 2, 1, 100, 36, 1);
    expect(s, 2, 1, 100, 37, 1);
    expect(s, 2, 1, 100, 38, 1);
    expect(s, 2, 1, 100, 39, 1);
    expect(s, 2, 1, 100, 13, 7); /* thread 0's run has [5,20) left: the back half */
    expect(s, 2, 1, 2, 11, 2);   /* [5,13) left: at most `most` */
    expect(s, 2, 0, 100, 5, 1);  /* [5,11) left: a quarter of 6 */
    expect(s, 2, 1, 100, 9, 2);  /* [6,11): half of 5 */
    expect(s, 2, 0, 100, 6, 1);
    expect(s, 2, 0, 100, 7, 1);
    expect(s, 2, 0, 100, 8, 1);
    expect(s, 2, 0, 100, 0, 0);
    expect(s, 2, 1, 100, 0, 0);
}

typedef struct race {
    wl_steal_slot *slots;
    int nth, ith;
    int64_t n_blocks, most;
    atomic_int *taken; /* per block: how many times it was handed out */
    int64_t count;     /* blocks this thread got */
} race;

static void *racer(void *p)
{
    race *r = p;
    for (wl_steal_range b; (b = wl_steal_next(r->slots, r->nth, r->ith, r->most)).count > 0;) {
        assert_true(b.count <= (r->most > 1 ? r->most : 1));
        assert_true(b.first >= 0 && b.first + b.count <= r->n_blocks);
        for (int64_t i = 0; i < b.count; i++)
            atomic_fetch_add(&r->taken[b.first + i], 1);
        r->count += b.count;
    }
    return NULL;
}

static void race_once(int nth, int64_t n_blocks, int64_t most)
{
    wl_steal_slot *slots = aligned_alloc(64, sizeof *slots * MAX_T);
    atomic_int *taken = calloc((size_t)n_blocks + 1, sizeof *taken);
    assert_non_null(slots);
    assert_non_null(taken);
    wl_steal_init(slots, nth, n_blocks);
    race r[MAX_T];
    pthread_t th[MAX_T];
    for (int i = 0; i < nth; i++) {
        r[i] = (race){slots, nth, i, n_blocks, most, taken, 0};
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
        race_once(2, 1000, 1);
        race_once(2, 1000, 62);
        race_once(4, 4001, 125);
        race_once(MAX_T, 3, 1); /* more threads than blocks */
        race_once(3, 0, 4);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread_in_order),
        cmocka_unit_test(test_own_ranges_shrink_toward_the_end),
        cmocka_unit_test(test_own_run_first_then_steal_from_back),
        cmocka_unit_test(test_thief_takes_half_of_the_back),
        cmocka_unit_test(test_racing_threads_take_each_block_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
