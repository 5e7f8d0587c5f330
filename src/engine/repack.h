/* repack.h - Q4_0 weights repacked into groups of 16 rows ("R16"), the layout the AVX-512
 * GEMM computes in (gemm.h: a zmm holds 16 rows), so that neither decode nor prefill has to
 * rearrange the weights at every product.
 *
 * Why: a Q4_0 row holds 18-byte blocks (a half scale, then 16 bytes of nibbles), so a kernel
 * that keeps one row per zmm lane must gather 16 rows' bytes and transpose them first. In R16
 * those bytes already sit where the lanes need them: the decode GEMV over R16 needs ~1.5x fewer
 * cycles per byte than the one over the file's rows (gemv.h), and the prefill GEMM skips its
 * rearrangement. The file's bytes are only moved, never changed: same size, same values.
 *
 * Layout of a matrix of `rows` (a multiple of 16) rows of n values (nb = n / 32 blocks): group
 * g holds rows 16g..16g+15; its block b is one record of WL_R16_RECORD bytes at
 * (g * nb + b) * WL_R16_RECORD:
 *
 *     uint16 d[16]         d[i] = the half scale of block b of row 16g + i
 *     uint8  q[4][16][4]   q[c][i][k] = nibble byte 4c + k of that block (its low nibble is
 *                          value 4c + k, its high nibble value 16 + 4c + k)
 *
 * So the 64 bytes q[c] are one zmm whose lane i holds row i's values 4c..4c+3 (low nibbles)
 * and 16+4c..16+4c+3 (high nibbles), as vpdpbusd takes them against 4 activation bytes
 * broadcast to every lane. Groups follow each other, blocks of a group too: a thread that
 * computes a range of groups streams one contiguous range of bytes.
 *
 * Arithmetic: a product over R16 weights gives exactly what wl_gemm_ref (gemm.h) gives over the
 * same weights in the file's rows, for any number of tokens, decode included (wl_r16_ref below
 * is the same definition read from R16).
 *
 * Every function may be called from any thread. */
#ifndef WL_ENGINE_REPACK_H
#define WL_ENGINE_REPACK_H

#include <stddef.h>
#include <stdint.h>

#define WL_R16_ROWS 16    /* rows per group */
#define WL_R16_RECORD 288 /* bytes of one block of a group: 16 x 18, as in the file */

/* Layouts of a weight matrix (wl_tensor.layout). */
enum wl_layout {
    WL_LAYOUT_ROWS = 0, /* the file's: row after row of blocks */
    WL_LAYOUT_R16 = 1,  /* Q4_0 in groups of 16 rows (above) */
};

/* 1 when a matrix of `rows` rows of n values of weight type `type` can be repacked: Q4_0, rows
 * a positive multiple of 16, n a positive multiple of 32. */
int wl_r16_fits(uint32_t type, int64_t rows, int64_t n);

/* Bytes of the repacked matrix: the same as the file's rows * row_bytes. */
size_t wl_r16_bytes(int64_t rows, int64_t n);

/* Repacks rows [g0 * 16, g1 * 16) of the Q4_0 matrix w (rows row_bytes apart) into out, which
 * receives the groups g0..g1-1 (out points at group g0's first record). */
void wl_r16_repack(const void *w, size_t row_bytes, int64_t n, int64_t g0, int64_t g1, void *out);

/* Row r of the R16 matrix w of n columns as floats, y[n]: bit for bit what dequantizing the
 * file's row gives (wl_dequantize_row), for a token embedding that is also the output matrix. */
void wl_r16_dequantize_row(const void *w, int64_t n, int64_t r, float *y);

/* y[t * ldy + r] = dot(row r, token t) for r in [r0, r1) (any rows, not only whole groups),
 * t in [0, ntok), over the R16 matrix w of n columns and the Q8_0 activation rows xq (x_stride
 * bytes apart): wl_gemm_ref's arithmetic, in scalar C, any CPU. */
void wl_r16_ref(int64_t n, const void *w, int64_t r0, int64_t r1, const void *xq, size_t x_stride,
                int64_t ntok, float *y, size_t ldy);

#endif
