/* internal.h - small helpers shared by the files of src/source/. */
#ifndef WL_SOURCE_INTERNAL_H
#define WL_SOURCE_INTERNAL_H

#include <stdint.h>
#include <time.h>

/* Monotonic clock in milliseconds. */
static inline double wl_src_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Transfer speed over the last few seconds, from (time, bytes) samples. */
#define WL_RATE_SAMPLES 64
typedef struct wl_rate {
    double t[WL_RATE_SAMPLES];
    uint64_t b[WL_RATE_SAMPLES];
    int n, pos;
} wl_rate;

/* Records that `bytes` (a running total) were reached at time now_ms. */
void wl_rate_add(wl_rate *r, double now_ms, uint64_t bytes);
/* Bytes per second over the last ~3 s of samples (0 until there are two). */
double wl_rate_get(const wl_rate *r);

#endif
