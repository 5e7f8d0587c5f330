/* test_membw.c - the read-bandwidth probe of the benchmarks (membw.h): sizes round to whole
 * pages (at least one), every method runs on pools of 1 to 3 threads, also when there are fewer
 * pages than threads (a thread then reads nothing), and a measurement is a positive, finite
 * rate. Its speed is the benchmarks' business, not this test's. */
#include <math.h>
#include <unistd.h>

#include "testutil.h"

#include "engine/membw.h"
#include "engine/threadpool.h"

static void check(size_t bytes, int threads)
{
    wl_membw *p = NULL;
    wl_pool *pool = NULL;
    wandler_error err;
    assert_int_equal(wl_membw_create(bytes, &p), 0);
    assert_non_null(p);
    assert_int_equal(wl_pool_create(threads, &pool, &err), WANDLER_OK);
    for (int passes = 0; passes <= 2; passes++) { /* 0 counts as 1 */
        const double bw = wl_membw_measure(p, pool, passes);
        assert_true(isfinite(bw));
        assert_true(bw > 0.0);
    }
    wl_pool_destroy(pool);
    wl_membw_free(p);
}

static void test_membw_sizes_and_threads(void **state)
{
    (void)state;
    check(0, 1);    /* rounds up to one page */
    check(4096, 3); /* fewer pages than threads */
    check(3 * 4096 + 17, 2);
    check((size_t)8 << 20, 2);
    wl_membw_free(NULL);
    /* the benchmarks' size: at least 256 MiB, whole 2 MiB pages, twice any known L3 */
    const size_t b = wl_membw_bytes();
    assert_true(b >= (size_t)256 << 20);
    assert_int_equal(b % ((size_t)2 << 20), 0);
#ifdef _SC_LEVEL3_CACHE_SIZE
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0)
        assert_true(b >= 2 * (size_t)l3);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membw_sizes_and_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
