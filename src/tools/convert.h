/* convert.h - turning float rows into rows of a weight format, in parallel: the common step of
 * `wandler quantize` and `wandler mkmodel`. Internal to src/tools. */
#ifndef WL_TOOLS_CONVERT_H
#define WL_TOOLS_CONVERT_H

#include <stdint.h>

#include "engine/threadpool.h"

/* 1 when wl_quantize_row() can write `type` (asked of the quantizer itself, so formats that
 * land in quant.c later are picked up without a change here). */
int wl_convert_available(uint32_t type);

/* dst = nrows rows of ne0 values of `type` (each wl_row_bytes(type, ne0) bytes) from the floats
 * src (nrows * ne0), the rows split over the threads of pool (NULL: the calling thread only).
 * Returns 0, or -1 when the quantizer refuses (a format it lacks, rows not whole blocks). */
int wl_convert_rows(wl_pool *pool, uint32_t type, const float *src, void *dst, int64_t nrows, int64_t ne0);

#endif
