/* gemm_avx512.c - the row-lane prefill GEMM of Q8_0 and Q4_0 weights (see gemm.h), with
 * AVX-512 VNNI. Compiled with the AVX-512 family's flags; used only when the CPU has VNNI.
 *
 * A zmm holds 16 weight rows (lane i = row r + i of a tile) for one token. For each tile of 16
 * rows and each chunk of up to KB blocks, the weights are first rearranged into a buffer on the
 * stack, one wblock per block (576 bytes):
 *     g[8]: group g, lane i = the 4 bytes of values 4g..4g+3 of row i as the unsigned operand
 *           of vpdpbusd: the nibbles 0..15 for Q4_0, the weights + 128 for Q8_0;
 *     d:    lane i = row i's scale as a float;
 * built with 4x4 transposes of dwords (the rows are loaded 4 to a zmm, 128 bits each, in the
 * order that makes the transposes put row i in lane i) and a conversion of the 16 half scales.
 * Then every token of the product passes by that buffer, TT tokens at a time (one zmm
 * accumulator each, so each weight register is loaded once per TT tokens), while the next
 * chunk's weights are prefetched into L2. Per block and token:
 *     s = init (the token's -C * sum of its block's quants, broadcast; gemm.h)
 *     s = vpdpbusd(s, g[k], the token's 4 quant bytes 4k..4k+3 broadcast)   k = 0..7
 *     acc = fma(cvt(s), d * d_x (broadcast), acc)
 * which is exactly wl_gemm_ref's fmaf(d_w * d_x, isum, acc) on each of the 16 lanes in block
 * order: s is the exact integer dot (sum((u - C) x) = sum(u x) - C sum(x), C = 8 or 128, every
 * partial sum far from int32 overflow), its conversion is exact (|s| < 2^24) and the product of
 * the scales rounds before the one FMA. Between chunks of blocks the accumulators wait in y (a
 * float stored and loaded back is unchanged). Rows past the end of a partial tile repeat its
 * last row and are masked off at the stores.
 *
 * Cost: 11 vector ops per block and token (512 multiply-adds), 10 of them (8 vpdpbusd, the
 * product, the FMA) on the two pipes Zen 5 runs both VNNI and FMA on, so at most ~100
 * multiply-adds per cycle; measured ~80% of that with warm weights (the rearrangement is ~8%).
 * TT = 8 and KB = 64 were the fastest of TT 4..12 and KB 16..256 on Zen 5. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "engine/gemm_impl.h"
#include "engine/kernels_impl.h"
#include "engine/quant.h"
#include "engine/repack.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
/* clang takes "GCC unroll 12" over a loop of fewer trips as a partial unroll, and the
 * accumulators then live in memory (measured 15% slower) */
#define UNROLL_TOKENS _Pragma("clang loop unroll(full)")
#else
#define UNROLL_TOKENS _Pragma("GCC unroll 12")
#endif

#define TR 16 /* rows per tile: the lanes of a zmm (= WL_R16_ROWS) */
#ifndef TT
#define TT 8 /* tokens per inner tile (even, 6 to 12) */
#endif
#ifndef KB
#define KB 64 /* blocks per rearranged chunk of a tile (KB * 576 bytes on the stack) */
#endif

typedef struct {
    __m512i g[8]; /* group g: lane i = row i's unsigned bytes of values 4g..4g+3 */
    __m512 d;     /* lane i = row i's scale */
} wblock;

static inline int32_t load_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float load_f32(const unsigned char *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

void wl_gemm_prepare_avx512(uint32_t type, int64_t n, const void *xq, size_t x_stride, int64_t ntok,
                            void *prep)
{
    const int64_t nb = n / WL_QK;
    const int32_t c = type == WL_TYPE_Q4_0 ? 8 : 128;
    const unsigned char *xb = xq;
    unsigned char *out = prep;
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t b = 0; b < nb; b++) {
            const unsigned char *src = xb + (size_t)t * x_stride + (size_t)b * sizeof(wl_block_q8_0);
            unsigned char *o = out + (size_t)(t * nb + b) * WL_GEMM_PREP_BLOCK;
            const __m256i q = _mm256_loadu_si256((const void *)(src + 2));
            _mm256_storeu_si256((void *)o, q);
            /* the sum of the 32 quants: pairs (1 * q, exact in int16), then quads, then all */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
            const int32_t init = -c * _mm_cvtsi128_si32(h);
            const float d = wl_fp16_to_fp32(wl_load_u16(src));
            memcpy(o + WL_GEMM_PREP_INIT, &init, sizeof init);
            memcpy(o + WL_GEMM_PREP_D, &d, sizeof d);
        }
}

/* 4 x 16 bytes into one zmm, p0 in the lowest 128 bits */
static inline __m512i load4(const unsigned char *p0, const unsigned char *p1, const unsigned char *p2,
                            const unsigned char *p3)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const void *)p0));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const void *)p1), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const void *)p2), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const void *)p3), 3);
}

/* Within each 128-bit lane j: out[g] dword k = a[k] dword g. */
static inline void transpose4(const __m512i a[4], __m512i *out)
{
    const __m512i t0 = _mm512_unpacklo_epi32(a[0], a[1]), t1 = _mm512_unpackhi_epi32(a[0], a[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(a[2], a[3]), t3 = _mm512_unpackhi_epi32(a[2], a[3]);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* Rearranges blocks [0, nblk) of the 16 rows row[i] (each at its first block to take) into out. */
WL_INLINE void unpack(const uint32_t type, const unsigned char *const *row, int nblk, wblock *out)
{
    const size_t bb = type == WL_TYPE_Q4_0 ? sizeof(wl_block_q4_0) : sizeof(wl_block_q8_0);
    for (int b = 0; b < nblk; b++) {
        const size_t o = (size_t)b * bb + 2;
        __m512i lo[4], hi[4];
        /* lo[k], hi[k]: 128-bit lane j = row 4j + k, so that the transposes put row i in lane i */
        for (int k = 0; k < 4; k++) {
            const unsigned char *p0 = row[k] + o, *p1 = row[4 + k] + o, *p2 = row[8 + k] + o,
                                *p3 = row[12 + k] + o;
            if (type == WL_TYPE_Q4_0) {
                const __m512i v = load4(p0, p1, p2, p3);
                lo[k] = _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
                hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0f));
            } else {
                lo[k] = _mm512_xor_si512(load4(p0, p1, p2, p3), _mm512_set1_epi8((char)0x80));
                hi[k] =
                    _mm512_xor_si512(load4(p0 + 16, p1 + 16, p2 + 16, p3 + 16), _mm512_set1_epi8((char)0x80));
            }
        }
        transpose4(lo, out[b].g);
        transpose4(hi, out[b].g + 4);
        /* the half scales one by one (measured faster than a gather) */
        uint16_t hs[TR];
        for (int i = 0; i < TR; i++)
            hs[i] = wl_load_u16(row[i] + o - 2);
        out[b].d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)hs));
    }
}

/* The same rearrangement from R16 records (repack.h), which already hold each lane's bytes:
 * blocks [0, nblk) from rec on. */
static inline void unpack_r16(const unsigned char *rec, int nblk, wblock *out)
{
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    for (int b = 0; b < nblk; b++, rec += WL_R16_RECORD) {
        for (int c = 0; c < 4; c++) {
            const __m512i v = _mm512_loadu_si512((const void *)(rec + 32 + 64 * c));
            out[b].g[c] = _mm512_and_si512(v, low4);
            out[b].g[4 + c] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        }
        out[b].d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)rec));
    }
}

/* T tokens x 16 rows over the nblk rearranged blocks wt. x: the first token's prepared record
 * of the first block (tokens xs bytes apart); y: the output of (first token, first row); m: the
 * rows that exist; first: the accumulators start at 0, else at y. */
WL_INLINE void tokens(const int T, const wblock *wt, int nblk, const unsigned char *x, size_t xs, float *y,
                      size_t ldy, __mmask16 m, int first)
{
    __m512 acc[TT];
    UNROLL_TOKENS
    for (int t = 0; t < T; t++)
        acc[t] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, y + (size_t)t * ldy);
    for (int b = 0; b < nblk; b++) {
        const wblock *wb = wt + b;
        const __m512i w0 = _mm512_load_si512((const void *)&wb->g[0]),
                      w1 = _mm512_load_si512((const void *)&wb->g[1]);
        const __m512i w2 = _mm512_load_si512((const void *)&wb->g[2]),
                      w3 = _mm512_load_si512((const void *)&wb->g[3]);
        const __m512i w4 = _mm512_load_si512((const void *)&wb->g[4]),
                      w5 = _mm512_load_si512((const void *)&wb->g[5]);
        const __m512i w6 = _mm512_load_si512((const void *)&wb->g[6]),
                      w7 = _mm512_load_si512((const void *)&wb->g[7]);
        const __m512 wd = _mm512_load_ps((const void *)&wb->d);
        UNROLL_TOKENS
        for (int t = 0; t < T; t++) {
            const unsigned char *xb = x + (size_t)t * xs + (size_t)b * WL_GEMM_PREP_BLOCK;
            __m512i s = _mm512_set1_epi32(load_i32(xb + WL_GEMM_PREP_INIT));
            s = _mm512_dpbusd_epi32(s, w0, _mm512_set1_epi32(load_i32(xb)));
            s = _mm512_dpbusd_epi32(s, w1, _mm512_set1_epi32(load_i32(xb + 4)));
            s = _mm512_dpbusd_epi32(s, w2, _mm512_set1_epi32(load_i32(xb + 8)));
            s = _mm512_dpbusd_epi32(s, w3, _mm512_set1_epi32(load_i32(xb + 12)));
            s = _mm512_dpbusd_epi32(s, w4, _mm512_set1_epi32(load_i32(xb + 16)));
            s = _mm512_dpbusd_epi32(s, w5, _mm512_set1_epi32(load_i32(xb + 20)));
            s = _mm512_dpbusd_epi32(s, w6, _mm512_set1_epi32(load_i32(xb + 24)));
            s = _mm512_dpbusd_epi32(s, w7, _mm512_set1_epi32(load_i32(xb + 28)));
            const __m512 d = _mm512_mul_ps(wd, _mm512_set1_ps(load_f32(xb + WL_GEMM_PREP_D)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc[t]);
        }
    }
    UNROLL_TOKENS
    for (int t = 0; t < T; t++)
        _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, acc[t]);
}

/* Issues the prefetches into L2 of bytes [lo, hi) of p (lines). */
static inline void prefetch_l2(const unsigned char *p, size_t lo, size_t hi)
{
    for (size_t o = lo & ~(size_t)63; o < hi; o += 64)
        _mm_prefetch((const char *)p + o, _MM_HINT_T1);
}

/* Rows [r0, r1) of the product: with layout WL_LAYOUT_ROWS, w holds rows w_stride bytes apart
 * (Q4_0 or Q8_0) and r0 best starts a tile; with WL_LAYOUT_R16, w is a Q4_0 matrix in R16
 * (repack.h) and the tiles are its groups (a partial group at either end is masked). */
WL_INLINE void gemm_type(const uint32_t type, const int layout, int64_t n, const void *w, size_t w_stride,
                         int64_t r0, int64_t r1, const void *prep, int64_t ntok, float *y, size_t ldy)
{
    const int64_t nb = n / WL_QK;
    const size_t bb = type == WL_TYPE_Q4_0 ? sizeof(wl_block_q4_0) : sizeof(wl_block_q8_0);
    const size_t xs = (size_t)nb * WL_GEMM_PREP_BLOCK;
    const int r16 = layout == WL_LAYOUT_R16;
    const unsigned char *wb = w;
    wblock buf[KB];
    for (int64_t r = r16 ? r0 / TR * TR : r0; r < r1; r += TR) {
        /* the tile's lanes are rows r..r+15; m: the ones in [r0, r1) */
        const int R = (int)(r1 - r < TR ? r1 - r : TR), skip = r < r0 ? (int)(r0 - r) : 0;
        const __mmask16 m = (__mmask16)(((1u << R) - 1) & ~((1u << skip) - 1));
        const unsigned char *row[TR];
        if (!r16)
            for (int i = 0; i < TR; i++)
                row[i] = wb + (size_t)(r + (i < R ? i : R - 1)) * w_stride;
        for (int64_t kb = 0; kb < nb; kb += KB) {
            const int nblk = (int)(nb - kb < KB ? nb - kb : KB);
            /* the next chunk's weights (this tile's next blocks, or the next tile's first ones)
             * are fetched into L2 while this chunk is used, a part per token tile: the
             * rearrangement would otherwise wait for memory at every chunk */
            const int64_t pr = kb + KB < nb ? r : r + TR, pk = kb + KB < nb ? kb + KB : 0;
            const int prows = pr < r1 ? (int)(r1 - pr < TR ? r1 - pr : TR) : 0; /* rows layout */
            const size_t pbytes = (size_t)(nb - pk < KB ? nb - pk : KB) * bb;
            const unsigned char *pw;
            if (r16) {
                const unsigned char *rec = wb + (size_t)(r / TR * nb + kb) * WL_R16_RECORD;
                unpack_r16(rec, nblk, buf);
                pw = rec + (size_t)nblk * WL_R16_RECORD; /* records follow each other */
            } else {
                const unsigned char *rowk[TR];
                for (int i = 0; i < TR; i++)
                    rowk[i] = row[i] + (size_t)kb * bb;
                unpack(type, rowk, nblk, buf);
                pw = wb + (size_t)pr * w_stride + (size_t)pk * bb;
            }
            const int64_t groups = (ntok + TT - 1) / TT;
            int pi = 0;
            const unsigned char *x = (const unsigned char *)prep + (size_t)kb * WL_GEMM_PREP_BLOCK;
            for (int64_t t = 0, g = 0; t < ntok; t += TT, g++) {
                if (r16) { /* R16: the next chunk's records, contiguous, 16 rows each */
                    const size_t all = pr < r1 ? (size_t)TR * pbytes : 0;
                    prefetch_l2(pw, all * (size_t)g / (size_t)groups, all * (size_t)(g + 1) / (size_t)groups);
                } else
                    for (const int pe = (int)((g + 1) * prows / groups); pi < pe; pi++) {
                        const unsigned char *p = pw + (size_t)pi * w_stride;
                        prefetch_l2(p, 0, pbytes);
                        _mm_prefetch((const char *)p + pbytes - 1, _MM_HINT_T1);
                    }
                const unsigned char *xt = x + (size_t)t * xs;
                float *yt = y + (size_t)t * ldy + (size_t)r;
                switch (ntok - t < TT ? ntok - t : TT) {
#define CASE(T_)                                                                                             \
    case T_:                                                                                                 \
        tokens(T_, buf, nblk, xt, xs, yt, ldy, m, kb == 0);                                                  \
        break;
                    CASE(1)
                    CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
#if TT >= 8
                        CASE(7) CASE(8)
#endif
#if TT >= 10
                            CASE(9) CASE(10)
#endif
#if TT >= 12
                                CASE(11) CASE(12)
#endif
#undef CASE
                                    default : break;
                }
            }
        }
    }
}

/* Decode over R16 (one token): groups stream through once, each block's four 64-byte loads of
 * nibbles meeting the token's quant bytes broadcast (8 vpdpbusd), with no rearrangement.
 * The high nibbles go in masked in place (x16: byte & 0xf0) into their own sum, which is
 * divided back exactly (a multiple of 16) before the two sums meet: one operation fewer per
 * load than shifting them down. Then, as in tokens(): acc = fma(cvt(isum), d_w * d_x, acc), one
 * chain per row in block order (wl_gemm_ref). */
static inline __attribute__((always_inline)) void gemv_r16(int64_t n, const unsigned char *w, int64_t r0,
                                                            int64_t r1, const unsigned char *prep, float *y,
                                                            const int nta)
{
    const int64_t nb = n / WL_QK;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    for (int64_t r = r0 / TR * TR; r < r1; r += TR) {
        const int R = (int)(r1 - r < TR ? r1 - r : TR), skip = r < r0 ? (int)(r0 - r) : 0;
        const __mmask16 m = (__mmask16)(((1u << R) - 1) & ~((1u << skip) - 1));
        const unsigned char *rec = w + (size_t)(r / TR * nb) * WL_R16_RECORD;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++, rec += WL_R16_RECORD) {
            const unsigned char *xb = prep + (size_t)b * WL_GEMM_PREP_BLOCK;
            for (int l = 0; l < WL_R16_RECORD; l += 64)
                WL_GEMV_R16_PREFETCH_LINE(rec + l, nta);
            __m512i lo = _mm512_set1_epi32(load_i32(xb + WL_GEMM_PREP_INIT)), hi = _mm512_setzero_si512();
            for (int c = 0; c < 4; c++) {
                const __m512i v = _mm512_loadu_si512((const void *)(rec + 32 + 64 * c));
                lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(v, low4),
                                         _mm512_set1_epi32(load_i32(xb + 4 * c)));
                hi = _mm512_dpbusd_epi32(hi, _mm512_andnot_si512(low4, v),
                                         _mm512_set1_epi32(load_i32(xb + 16 + 4 * c)));
            }
            const __m512i s = _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4));
            const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const void *)rec)),
                                           _mm512_set1_ps(load_f32(xb + WL_GEMM_PREP_D)));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc);
        }
        _mm512_mask_storeu_ps(y + r, m, acc);
    }
}

void wl_gemm_avx512(uint32_t type, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                    const void *prep, int64_t ntok, float *y, size_t ldy)
{
    if (type == WL_TYPE_Q4_0)
        gemm_type(WL_TYPE_Q4_0, WL_LAYOUT_ROWS, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
    else
        gemm_type(WL_TYPE_Q8_0, WL_LAYOUT_ROWS, n, w, w_stride, r0, r1, prep, ntok, y, ldy);
}

void wl_gemm_r16_avx512(int64_t n, const void *w, int64_t r0, int64_t r1, const void *prep, int64_t ntok,
                        float *y, size_t ldy)
{
    if (ntok == 1 && wl_gemv_r16_nta()) /* one copy per prefetch hint (gemm_impl.h) */
        gemv_r16(n, w, r0, r1, prep, y, 1);
    else if (ntok == 1)
        gemv_r16(n, w, r0, r1, prep, y, 0);
    else
        gemm_type(WL_TYPE_Q4_0, WL_LAYOUT_R16, n, w, 0, r0, r1, prep, ntok, y, ldy);
}
