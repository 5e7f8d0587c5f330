#include "testutil.h"

#include "engine/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static const char *join(char *buf, size_t cap, const char *dir, const char *rel)
{
    if (snprintf(buf, cap, "%s/%s", dir, rel) >= (int)cap)
        fail_msg("path too long: %s/%s", dir, rel);
    return buf;
}

const char *wl_test_shared(const char *rel)
{
    static char buf[4096];
    const char *dir = getenv("WANDLER_SHARED_DIR");
    char fallback[4096];
    if (!dir || !*dir) {
        if (snprintf(fallback, sizeof fallback, "%s/../shared", env_or("WANDLER_SOURCE_DIR", ".")) >=
            (int)sizeof fallback)
            fail_msg("WANDLER_SOURCE_DIR too long");
        dir = fallback;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        fail_msg("shared test data folder %s not found (set WANDLER_SHARED_DIR)", dir);
    return join(buf, sizeof buf, dir, rel);
}

const char *wl_test_source(const char *rel)
{
    static char buf[4096];
    return join(buf, sizeof buf, env_or("WANDLER_SOURCE_DIR", "."), rel);
}

const char *wl_test_build(const char *rel)
{
    static char buf[4096];
    return join(buf, sizeof buf, env_or("WANDLER_BUILD_DIR", "."), rel);
}

char *wl_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    rewind(f);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        if (size)
            *size = (size_t)n;
    }
    return p;
}

const char *wl_test_tmpdir(void)
{
    static char buf[4096];
    if (snprintf(buf, sizeof buf, "%s/wandler-test-XXXXXX", env_or("TMPDIR", "/tmp")) >= (int)sizeof buf)
        fail_msg("TMPDIR too long");
    if (!mkdtemp(buf))
        fail_msg("mkdtemp failed");
    return buf;
}

uint32_t wl_test_rand_u32(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (uint32_t)(x >> 16);
}

float wl_test_rand_uniform(uint64_t *state, float lo, float hi)
{
    return lo + (hi - lo) * (float)(wl_test_rand_u32(state) & 0xffffff) / (float)0x1000000;
}

uint16_t wl_test_random_scale(uint64_t *state, int special)
{
    const uint32_t k = wl_test_rand_u32(state) % 16;
    if (special && k < 4) {
        static const uint16_t s[] = {0x0001 /* smallest denormal */, 0x7c00 /* +inf */, 0xfc00 /* -inf */,
                                     0x7e00 /* NaN */};
        return s[k];
    }
    const float d = k == 4   ? 0.0f
                    : k == 5 ? wl_test_rand_uniform(state, 100.0f, 1000.0f)
                             : wl_test_rand_uniform(state, -0.05f, 0.05f);
    return wl_fp32_to_fp16(d);
}

void wl_test_fill_q4_0(uint64_t *state, unsigned char *w, int64_t rows, size_t row_bytes, int extreme,
                       int special)
{
    for (int64_t r = 0; r < rows; r++)
        for (size_t off = 0; off < row_bytes; off += sizeof(wl_block_q4_0)) {
            unsigned char *blk = w + (size_t)r * row_bytes + off;
            const uint16_t d = wl_test_random_scale(state, special);
            memcpy(blk, &d, 2);
            for (int i = 0; i < WL_QK / 2; i++)
                blk[2 + i] = extreme ? (i % 2 ? 0x0f : 0xf0) : (unsigned char)wl_test_rand_u32(state);
        }
}

void wl_test_q8_0_extremes(void *dst, int64_t n, float d)
{
    for (int64_t b = 0; b < n / WL_QK; b++) {
        wl_block_q8_0 blk;
        blk.d = wl_fp32_to_fp16(d);
        for (int i = 0; i < WL_QK; i++)
            blk.qs[i] = (int8_t)((i / 3) % 2 ? 127 : -128);
        memcpy((unsigned char *)dst + (size_t)b * sizeof blk, &blk, sizeof blk);
    }
}
