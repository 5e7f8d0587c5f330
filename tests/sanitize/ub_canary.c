/* ub_canary.c - a signed overflow on purpose, for the sanitize build's check that UBSan stops a
 * program at its first error: tests/sanitize/expect_ub_stop.sh runs it and passes only when it
 * stops with UBSan's report. The build compiles UBSan's checks recoverable (CMakeLists.txt says
 * why), so stopping is the job of halt_on_error=1, UBSan's default in every program of the build
 * (ubsan_defaults.c); this canary fails the suite if that ever stops being so. */
#include <limits.h>
#include <stdio.h>

int main(void)
{
    volatile int big = INT_MAX; /* volatile: the compiler cannot see the overflow coming */
    const int wrapped = big + 1;
    printf("still running after the overflow (%d)\n", wrapped);
    return 0;
}
