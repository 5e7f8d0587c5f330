/* repack.c - the R16 layout of Q4_0 weights: repacking and the scalar definition (repack.h). */
#include "engine/repack.h"

#include <math.h>
#include <string.h>

#include "engine/quant.h"
#include "engine/tensor_type.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

int wl_r16_fits(uint32_t type, int64_t rows, int64_t n)
{
    return type == WL_TYPE_Q4_0 && rows > 0 && rows % WL_R16_ROWS == 0 && n > 0 && n % WL_QK == 0;
}

size_t wl_r16_bytes(int64_t rows, int64_t n)
{
    return (size_t)(rows / WL_R16_ROWS) * (size_t)(n / WL_QK) * WL_R16_RECORD;
}

void wl_r16_repack(const void *w, size_t row_bytes, int64_t n, int64_t g0, int64_t g1, void *out)
{
    const int64_t nb = n / WL_QK;
    unsigned char *o = out;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t b = 0; b < nb; b++, o += WL_R16_RECORD)
            for (int i = 0; i < WL_R16_ROWS; i++) {
                const unsigned char *blk = (const unsigned char *)w +
                                           (size_t)(g * WL_R16_ROWS + i) * row_bytes +
                                           (size_t)b * sizeof(wl_block_q4_0);
                memcpy(o + 2 * i, blk, 2);
                for (int c = 0; c < 4; c++)
                    memcpy(o + 32 + 64 * c + 4 * i, blk + 2 + 4 * c, 4);
            }
}

void wl_r16_dequantize_row(const void *w, int64_t n, int64_t r, float *y)
{
    const int64_t nb = n / WL_QK, g = r / WL_R16_ROWS;
    const int i = (int)(r % WL_R16_ROWS);
    for (int64_t b = 0; b < nb; b++) {
        const unsigned char *rec = (const unsigned char *)w + (size_t)(g * nb + b) * WL_R16_RECORD;
        const float d = wl_fp16_to_fp32(wl_load_u16(rec + 2 * i));
        float *yb = y + b * WL_QK;
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 4; k++) {
                const unsigned char q = rec[32 + 64 * c + 4 * i + k];
                yb[4 * c + k] = (float)((q & 15) - 8) * d;
                yb[16 + 4 * c + k] = (float)((q >> 4) - 8) * d;
            }
    }
}

void wl_r16_ref(int64_t n, const void *w, int64_t r0, int64_t r1, const void *xq, size_t x_stride,
                int64_t ntok, float *y, size_t ldy)
{
    const int64_t nb = n / WL_QK;
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = r0; r < r1; r++) {
            const int64_t g = r / WL_R16_ROWS;
            const int i = (int)(r % WL_R16_ROWS);
            const unsigned char *xr = (const unsigned char *)xq + (size_t)t * x_stride;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const unsigned char *rec = (const unsigned char *)w + (size_t)(g * nb + b) * WL_R16_RECORD;
                const unsigned char *xblk = xr + (size_t)b * sizeof(wl_block_q8_0);
                const signed char *xs = (const signed char *)(xblk + 2);
                int32_t isum = 0;
                for (int c = 0; c < 4; c++)
                    for (int k = 0; k < 4; k++) {
                        const unsigned char q = rec[32 + 64 * c + 4 * i + k];
                        isum += ((q & 15) - 8) * xs[4 * c + k] + ((q >> 4) - 8) * xs[16 + 4 * c + k];
                    }
                const float d =
                    wl_fp16_to_fp32(wl_load_u16(rec + 2 * i)) * wl_fp16_to_fp32(wl_load_u16(xblk));
                acc = fmaf(d, (float)isum, acc); /* the product above rounds: not fused */
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
}
