/* convert.c - float rows to weight-format rows over a thread pool (see convert.h). */
#include "tools/convert.h"

#include <stdatomic.h>
#include <string.h>

#include "engine/quant.h"
#include "engine/tensor_type.h"

int wl_convert_available(uint32_t type)
{
    const wl_type_info *ti = wl_type_get(type);
    if (!ti || ti->block_size > 256)
        return 0;
    float zeros[256] = {0};
    unsigned char out[1024];
    if (wl_row_bytes(type, ti->block_size) > sizeof out)
        return 0;
    return wl_quantize_row(type, zeros, out, ti->block_size) == 0;
}

typedef struct convert_task {
    uint32_t type;
    const float *src;
    char *dst;
    int64_t nrows, ne0;
    size_t row_bytes;
    atomic_int failed;
} convert_task;

static void convert_worker(void *ctx, int ith, int nth)
{
    convert_task *t = ctx;
    const int64_t per = (t->nrows + nth - 1) / nth, r0 = per * ith;
    const int64_t r1 = r0 + per < t->nrows ? r0 + per : t->nrows;
    for (int64_t r = r0; r < r1; r++)
        if (wl_quantize_row(t->type, t->src + r * t->ne0, t->dst + (size_t)r * t->row_bytes, t->ne0) != 0)
            atomic_store(&t->failed, 1);
}

int wl_convert_rows(wl_pool *pool, uint32_t type, const float *src, void *dst, int64_t nrows, int64_t ne0)
{
    convert_task t = {.type = type, .src = src, .dst = dst, .nrows = nrows, .ne0 = ne0,
                      .row_bytes = wl_row_bytes(type, (uint64_t)ne0)};
    atomic_init(&t.failed, 0);
    if (t.row_bytes == 0)
        return -1;
    if (pool && nrows > 1)
        wl_pool_run(pool, convert_worker, &t);
    else
        convert_worker(&t, 0, 1);
    return atomic_load(&t.failed) ? -1 : 0;
}
