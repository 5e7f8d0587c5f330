/* gemv_avx512.c - the decode GEMV of Q4_0 weights (see gemv.h) with AVX-512 VNNI and VBMI.
 * Compiled with the AVX-512 family's flags; the functions that use VBMI say so themselves, and
 * are called only when the CPU has it (wl_gemv_supported).
 *
 * One row at a time, four blocks (a quad, 72 bytes) per step, into two accumulators (even and
 * odd quads) so that two FMA chains run side by side. Per quad:
 *     A = the 64 bytes at the quad (scales and nibbles of blocks 0..2, block 3's first 8),
 *     B = the 16 bytes at +56 (block 3's nibbles);
 *     v = vpermt2b(A, B): the four blocks' 16 nibble bytes, block j at bytes 16j..16j+15;
 *     s = init; s = vpdpbusd(s, v & 15, lo); s = vpdpbusd(s, v >> 4 & 15, hi)
 *         (the nibbles as the unsigned operand, the activations as the signed one: s is the
 *         exact sum of (nibble - 8) * x over each lane's 8 values, gemv.h);
 *     d = cvtph(vpermw(A): the scales of blocks 0..3, each 4 times) * d_x;
 *     acc = fma(cvt(s), d, acc).
 * That is 2 loads of weights, 4 of prepared activations (L1), and 11 vector ops for 128
 * multiply-adds; the kernel table's decode GEMV needs ~2x as many ops per block.
 *
 * Loads: one 64-byte load at the quad and one 16-byte load for block 3, not two 64-byte ones:
 * with two line-crossing 64-byte loads per quad, the GEMV from memory ran at less than half the
 * speed it had in cache (13-24 against 62 GB/s, one thread), while this pair streams at 85-92%
 * of the read-bandwidth probe (membw.h). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "engine/gemv.h"
#include "engine/gemv_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define VBMI __attribute__((target("avx512vbmi")))

#define QUAD_BYTES (4 * sizeof(wl_block_q4_0)) /* 72 */

/* Bytes ahead of the current quad that each step prefetches (the next rows of the same thread,
 * which are read next). Without it the hardware prefetcher leaves one thread at ~30 GB/s from
 * memory; 12-24 KiB ahead gave 34-38 GB/s, 3 KiB none of that (Zen 5, one thread). A second
 * prefetch into L2 further ahead (32-64 KiB) made two threads slower (57 or 53 against 62 GB/s
 * for products of 2.4 MB). Kept overridable for such experiments. */
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 16384
#endif

typedef struct {
    int8_t lo[64], hi[64];
    int32_t init[16];
    float d[16];
} prep_quad; /* WL_GEMV_PREP_QUAD bytes: gemv.h */

_Static_assert(sizeof(prep_quad) == WL_GEMV_PREP_QUAD, "prepared quad layout");

void wl_gemv_prepare_avx512(int64_t n, const void *xq, void *prep)
{
    const unsigned char *x = xq;
    prep_quad *p = prep;
    const int64_t nb = n / WL_QK, nq = (nb + 3) / 4;
    const __m512i eights = _mm512_set1_epi8(8);
    /* lane l of the 16 scales: the scale of block l / 4 */
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int64_t q = 0; q < nq; q++) {
        __m128i lo[4], hi[4];
        uint16_t dh[8] = {0};
        for (int j = 0; j < 4; j++) {
            const int64_t b = 4 * q + j;
            if (b < nb) {
                const unsigned char *blk = x + (size_t)b * sizeof(wl_block_q8_0);
                memcpy(&dh[j], blk, 2);
                lo[j] = _mm_loadu_si128((const void *)(blk + 2));
                hi[j] = _mm_loadu_si128((const void *)(blk + 2 + WL_QK / 2));
            } else {
                lo[j] = hi[j] = _mm_setzero_si128();
            }
        }
        const __m512i vlo = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(lo[1], lo[0])),
                                               _mm256_set_m128i(lo[3], lo[2]), 1);
        const __m512i vhi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(hi[1], hi[0])),
                                               _mm256_set_m128i(hi[3], hi[2]), 1);
        /* 8 * (sum of the 4 lo values + the 4 hi values of each lane), exact */
        const __m512i sums8 =
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, vlo), eights, vhi);
        const __m512 d4 = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadu_si128((const void *)dh)));
        _mm512_store_si512(p[q].lo, vlo);
        _mm512_store_si512(p[q].hi, vhi);
        _mm512_store_si512(p[q].init, _mm512_sub_epi32(_mm512_setzero_si512(), sums8));
        _mm512_store_ps(p[q].d, _mm512_permutexvar_ps(spread, d4));
    }
}

/* The constants of a quad step. */
typedef struct {
    __m512i nibbles; /* vpermt2b index: block j's 16 nibble bytes from A (j < 3) or B (j = 3) */
    __m512i scales;  /* vpermw index: word 9j (byte 18j) of A into words 4j..4j+3 */
    __m512i low4;    /* 0x0f bytes */
} quad_consts;

static inline quad_consts quad_consts_make(void)
{
    quad_consts c;
    /* bytes 16j + i <- byte 18j + 2 + i of the quad; block 3 (bytes 56..71) comes from B, which
     * holds quad bytes 56..71 at its bytes 0..15, i.e. index 64 + i */
    c.nibbles = _mm512_set_epi8(79, 78, 77, 76, 75, 74, 73, 72, 71, 70, 69, 68, 67, 66, 65, 64, /* j = 3 */
                                53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, /* j = 2 */
                                35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, /* j = 1 */
                                17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);        /* j = 0 */
    c.scales = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                 /* unused */
                                27, 27, 27, 27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
    c.low4 = _mm512_set1_epi8(0x0f);
    return c;
}

/* acc + the 16 lanes of the quad whose 64 + 16 bytes are A and B (gemv.h). */
VBMI static inline __m512 quad_step(__m512i A, __m512i B, const prep_quad *p, const quad_consts *c,
                                    __m512 acc)
{
    const __m512i v = _mm512_permutex2var_epi8(A, c->nibbles, B);
    const __m512i lo = _mm512_and_si512(v, c->low4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), c->low4);
    __m512i s = _mm512_dpbusd_epi32(_mm512_load_si512(p->init), lo, _mm512_load_si512(p->lo));
    s = _mm512_dpbusd_epi32(s, hi, _mm512_load_si512(p->hi));
    const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(c->scales, A)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_load_ps(p->d)), acc);
}

VBMI static inline __m512 full_quad(const unsigned char *wq, const prep_quad *p, const quad_consts *c,
                                    __m512 acc)
{
    const __m512i A = _mm512_loadu_si512((const void *)wq);
    const __m512i B = _mm512_castsi128_si512(_mm_loadu_si128((const void *)(wq + 56)));
    return quad_step(A, B, p, c, acc);
}

/* The last quad of a row with 1..3 blocks: only their bytes are read (the row may end the
 * mapping); the rest of A is zero, so the missing blocks' scales are 0 as gemv.h says. */
VBMI static inline __m512 part_quad(const unsigned char *wq, int blocks, const prep_quad *p,
                                    const quad_consts *c, __m512 acc)
{
    const __mmask64 m = ((__mmask64)1 << (blocks * sizeof(wl_block_q4_0))) - 1;
    return quad_step(_mm512_maskz_loadu_epi8(m, wq), _mm512_setzero_si512(), p, c, acc);
}

/* s[0] + ... + s[15] in gemv.h's order: halves, then quarters, then pairs. */
static inline float reduce16(__m512 s)
{
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

VBMI void wl_gemv_avx512(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prep,
                         float *y)
{
    const quad_consts c = quad_consts_make();
    const prep_quad *p = prep;
    const int64_t nb = n / WL_QK, full = nb / 4;
    const int tail = (int)(nb % 4);
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *wr = (const unsigned char *)w + (size_t)r * w_stride;
        __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
        int64_t q = 0;
        for (; q + 2 <= full; q += 2) {
            const unsigned char *wq = wr + (size_t)q * QUAD_BYTES;
            /* 144 bytes a step: three lines */
            _mm_prefetch((const char *)wq + GEMV_PREFETCH, _MM_HINT_T0);
            _mm_prefetch((const char *)wq + GEMV_PREFETCH + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)wq + GEMV_PREFETCH + 128, _MM_HINT_T0);
            a = full_quad(wq, p + q, &c, a);
            b = full_quad(wq + QUAD_BYTES, p + q + 1, &c, b);
        }
        if (q < full) {
            a = full_quad(wr + (size_t)q * QUAD_BYTES, p + q, &c, a);
            q++;
        }
        if (tail) { /* quad q: even or odd as its index is */
            if (q % 2)
                b = part_quad(wr + (size_t)q * QUAD_BYTES, tail, p + q, &c, b);
            else
                a = part_quad(wr + (size_t)q * QUAD_BYTES, tail, p + q, &c, a);
        }
        y[r] = reduce16(_mm512_add_ps(a, b));
    }
}
