/* rate.c - transfer speed over a sliding window (see internal.h). */
#include "source/internal.h"

#define WINDOW_MS 3000.0

void wl_rate_add(wl_rate *r, double now_ms, uint64_t bytes)
{
    /* keep at most one sample per 50 ms so the window spans seconds, not ticks */
    if (r->n > 0) {
        int last = (r->pos + WL_RATE_SAMPLES - 1) % WL_RATE_SAMPLES;
        if (now_ms - r->t[last] < 50) {
            r->b[last] = bytes;
            return;
        }
    }
    r->t[r->pos] = now_ms;
    r->b[r->pos] = bytes;
    r->pos = (r->pos + 1) % WL_RATE_SAMPLES;
    if (r->n < WL_RATE_SAMPLES)
        r->n++;
}

double wl_rate_get(const wl_rate *r)
{
    if (r->n < 2)
        return 0;
    int last = (r->pos + WL_RATE_SAMPLES - 1) % WL_RATE_SAMPLES;
    /* the oldest sample still inside the window */
    int first = last;
    for (int k = 1; k < r->n; k++) {
        int i = (last - k + WL_RATE_SAMPLES) % WL_RATE_SAMPLES;
        if (r->t[last] - r->t[i] > WINDOW_MS)
            break;
        first = i;
    }
    if (first == last)
        first = (last + WL_RATE_SAMPLES - 1) % WL_RATE_SAMPLES;
    double dt = (r->t[last] - r->t[first]) / 1e3;
    if (dt <= 0 || r->b[last] < r->b[first])
        return 0;
    return (double)(r->b[last] - r->b[first]) / dt;
}
