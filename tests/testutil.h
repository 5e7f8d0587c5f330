/* testutil.h - helpers shared by the tests: where the test data lives, reading files. */
#ifndef WL_TESTUTIL_H
#define WL_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* Path of a file under the shared test data ($WANDLER_SHARED_DIR, else ../shared next to the
 * source tree), e.g. wl_test_shared("models/stories260K.gguf"). Returns a static buffer that the
 * next call overwrites. Fails the test when the data folder cannot be found. */
const char *wl_test_shared(const char *rel);

/* Path of a file in the source tree ($WANDLER_SOURCE_DIR). Same buffer rules. */
const char *wl_test_source(const char *rel);

/* Path of a file in the build tree ($WANDLER_BUILD_DIR). Same buffer rules. */
const char *wl_test_build(const char *rel);

/* Reads a whole file; returns malloc'd bytes (NUL-terminated) and the size, or NULL. */
char *wl_test_read_file(const char *path, size_t *size);

/* A fresh empty directory under $TMPDIR for this test (removed by the caller if it wishes). */
const char *wl_test_tmpdir(void);

/* Deterministic test data: xorshift64 on *state (seed it with any non-zero value). The next 32
 * bits, and a float uniform in [lo, hi) from 24 of them. */
uint32_t wl_test_rand_u32(uint64_t *state);
float wl_test_rand_uniform(uint64_t *state, float lo, float hi);

/* n values (a whole number of blocks) of Q8_0 activations at dst, made by hand: every block's
 * scale d and its quants -128 and 127 in runs of three, extremes the quantizer never makes. */
void wl_test_q8_0_extremes(void *dst, int64_t n, float d);

/* A half-precision weight scale: mostly small (|d| < 0.05), sometimes 0 or large (100..1000);
 * with `special` also the smallest denormal, +-infinity and NaN (a quarter of the time). */
uint16_t wl_test_random_scale(uint64_t *state, int special);

/* rows of Q4_0 blocks (row_bytes apart): scales from wl_test_random_scale, random nibbles (every
 * byte is valid), or with `extreme` nibbles 0x0f / 0xf0 alternating. */
void wl_test_fill_q4_0(uint64_t *state, unsigned char *w, int64_t rows, size_t row_bytes, int extreme,
                       int special);

#endif
