/* kernels_kquants_neon.c - the k-quants (Q2_K..Q6_K) x Q8_K for the NEON family (dotprod).
 *
 * The canonical arithmetic of kernels.h, bit for bit like kernels_scalar.c. sdot sums 4
 * products per int32 lane, exactly the canonical groups of 4 values: on the 16 values
 * 32g + 0..15 of a group it gives lanes 0-3, on 32g + 16..31 lanes 4-7; each is multiplied by
 * its sub-block scale (an exact int32 multiply-add) into S_lo / S_hi. The min / offset terms
 * come from the activation's bsums, then one or two FMAs go into the 8 float lanes (two
 * q-registers). Each weight super-block is unpacked once per tile into a kq_weight and used for
 * every token of the tile. Without dotprod the table keeps the scalar kernels. */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define RMAX 4 /* rows per tile */
#define TMAX 2 /* tokens per tile */

/* The canonical sum of 8 lanes held as lo = lanes 0-3, hi = lanes 4-7. */
static inline float hsum8(float32x4_t lo, float32x4_t hi)
{
    float32x4_t u = vaddq_f32(lo, hi);
    float32x4_t v = vaddq_f32(u, vextq_f32(u, u, 2));
    return vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1);
}

static inline float load_half(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return wl_fp16_to_fp32(h);
}

/* ---- one weight super-block, unpacked ---------------------------------------------------- */

typedef struct {
    int8x16_t q[16];   /* q[2g]: values 32g..32g+15 of group g, q[2g + 1]: 32g+16..32g+31 */
    int32_t sc[16];    /* the scale of each 16 values (Q4_K / Q5_K: each scale twice) */
    int16x8_t mins[2]; /* Q2_K: the 16 mins; Q4_K / Q5_K: the 8 mins in [0]; Q6_K: scales */
    float d, dmin;
} kq_weight;

/* Bytes v >> s (s a run-time count) as unsigned. */
static inline uint8x16_t shr_u8(uint8x16_t v, int s)
{
    return vshlq_u8(v, vdupq_n_s8((int8_t)-s));
}

/* The 2-bit fields of Q2_K / Q3_K: group 4j + s is bits 2s..2s+1 of qs[32j .. 32j + 31]. */
static inline void two_bit_groups(const unsigned char *qs, uint8x16_t q[16])
{
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int j = 0; j < 2; j++) {
        const uint8x16_t a = vld1q_u8(qs + 32 * j), b = vld1q_u8(qs + 32 * j + 16);
        for (int s = 0; s < 4; s++) {
            q[2 * (4 * j + s)] = vandq_u8(shr_u8(a, 2 * s), m3);
            q[2 * (4 * j + s) + 1] = vandq_u8(shr_u8(b, 2 * s), m3);
        }
    }
}

/* Q4_K / Q5_K: group 2j is the low nibbles of qs[32j .. 32j + 31], group 2j + 1 the high. */
static inline void nibble_groups(const unsigned char *qs, uint8x16_t q[16])
{
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    for (int j = 0; j < 4; j++)
        for (int h = 0; h < 2; h++) {
            const uint8x16_t v = vld1q_u8(qs + 32 * j + 16 * h);
            q[2 * (2 * j) + h] = vandq_u8(v, m4);
            q[2 * (2 * j + 1) + h] = vshrq_n_u8(v, 4);
        }
}

/* Bit g of each byte, as 0 / 1. */
static inline uint8x16_t bit_of_bytes(uint8x16_t v, int g)
{
    return vandq_u8(shr_u8(v, g), vdupq_n_u8(1));
}

static void unpack_q2_k(const unsigned char *b, kq_weight *w)
{
    uint8x16_t q[16];
    two_bit_groups(b + 16, q);
    for (int i = 0; i < 16; i++)
        w->q[i] = vreinterpretq_s8_u8(q[i]);
    int16_t mins[16];
    for (int k = 0; k < 16; k++) {
        w->sc[k] = b[k] & 0x0f;
        mins[k] = (int16_t)(b[k] >> 4);
    }
    w->mins[0] = vld1q_s16(mins);
    w->mins[1] = vld1q_s16(mins + 8);
    w->d = load_half(b + 80);
    w->dmin = load_half(b + 82);
}

static void unpack_q3_k(const unsigned char *b, kq_weight *w)
{
    uint8x16_t low[16];
    two_bit_groups(b + 32, low);
    const uint8x16_t hm[2] = {vld1q_u8(b), vld1q_u8(b + 16)};
    for (int g = 0; g < 8; g++)
        for (int h = 0; h < 2; h++) { /* q = low + 4 * bit - 4 */
            uint8x16_t q = vorrq_u8(low[2 * g + h], vshlq_n_u8(bit_of_bytes(hm[h], g), 2));
            w->q[2 * g + h] = vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(4));
        }
    for (int k = 0; k < 16; k++)
        w->sc[k] = wl_q3_k_scale(b + 96, k);
    w->d = load_half(b + 108);
    w->dmin = 0.0f;
}

static void unpack_k4_scales(const unsigned char *b, kq_weight *w)
{
    int16_t mins[8];
    for (int g = 0; g < 8; g++) {
        int sc, m;
        wl_k4_scale_min(b + 4, g, &sc, &m);
        w->sc[2 * g] = w->sc[2 * g + 1] = sc;
        mins[g] = (int16_t)m;
    }
    w->mins[0] = vld1q_s16(mins);
    w->mins[1] = vdupq_n_s16(0);
    w->d = load_half(b);
    w->dmin = load_half(b + 2);
}

static void unpack_q4_k(const unsigned char *b, kq_weight *w)
{
    uint8x16_t q[16];
    nibble_groups(b + 16, q);
    for (int i = 0; i < 16; i++)
        w->q[i] = vreinterpretq_s8_u8(q[i]);
    unpack_k4_scales(b, w);
}

static void unpack_q5_k(const unsigned char *b, kq_weight *w)
{
    uint8x16_t q[16];
    const uint8x16_t qh[2] = {vld1q_u8(b + 16), vld1q_u8(b + 32)};
    nibble_groups(b + 48, q);
    for (int g = 0; g < 8; g++)
        for (int h = 0; h < 2; h++)
            w->q[2 * g + h] = vreinterpretq_s8_u8(
                vorrq_u8(q[2 * g + h], vshlq_n_u8(bit_of_bytes(qh[h], g), 4)));
    unpack_k4_scales(b, w);
}

static void unpack_q6_k(const unsigned char *b, kq_weight *w)
{
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m3 = vdupq_n_u8(3);
    for (int h = 0; h < 2; h++)
        for (int half = 0; half < 2; half++) {
            const unsigned char *ql = b + 64 * h + 16 * half;
            const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 32);
            const uint8x16_t hb = vld1q_u8(b + 128 + 32 * h + 16 * half);
            /* group 4h + k: nibble of l0 / l1, high bits 2k..2k+1 of qh */
            const uint8x16_t nib[4] = {vandq_u8(l0, m4), vandq_u8(l1, m4), vshrq_n_u8(l0, 4),
                                       vshrq_n_u8(l1, 4)};
            for (int k = 0; k < 4; k++) {
                uint8x16_t hi = vshlq_n_u8(vandq_u8(shr_u8(hb, 2 * k), m3), 4);
                w->q[2 * (4 * h + k) + half] = vreinterpretq_s8_u8(vorrq_u8(nib[k], hi));
            }
        }
    int16_t sc[16];
    for (int k = 0; k < 16; k++) {
        sc[k] = (int8_t)b[192 + k];
        w->sc[k] = sc[k];
    }
    w->mins[0] = vld1q_s16(sc);
    w->mins[1] = vld1q_s16(sc + 8);
    w->d = load_half(b + 208);
    w->dmin = 0.0f;
}

WL_INLINE void unpack(const uint32_t type, const unsigned char *b, kq_weight *w)
{
    switch (type) {
    case WL_TYPE_Q2_K: unpack_q2_k(b, w); break;
    case WL_TYPE_Q3_K: unpack_q3_k(b, w); break;
    case WL_TYPE_Q4_K: unpack_q4_k(b, w); break;
    case WL_TYPE_Q5_K: unpack_q5_k(b, w); break;
    default: unpack_q6_k(b, w); break;
    }
}

/* ---- one super-block of one row with one token ------------------------------------------- */

typedef struct {
    int8x16_t x[16];
    int16x8_t bsums[2];
    float d;
} kq_act;

static inline void load_act(const unsigned char *b, kq_act *a)
{
    memcpy(&a->d, b, sizeof a->d);
    for (int i = 0; i < 16; i++)
        a->x[i] = vld1q_s8((const int8_t *)(const void *)(b + 4 + 16 * i));
    a->bsums[0] = vreinterpretq_s16_u8(vld1q_u8(b + 260));
    a->bsums[1] = vreinterpretq_s16_u8(vld1q_u8(b + 276));
}

/* [a0 b0 + a1 b1, a2 b2 + a3 b3, ...]: the products of 8 int16 pairs, summed in pairs. */
static inline int32x4_t pair_products(int16x8_t a, int16x8_t b)
{
    return vpaddq_s32(vmull_s16(vget_low_s16(a), vget_low_s16(b)),
                      vmull_s16(vget_high_s16(a), vget_high_s16(b)));
}

typedef struct {
    float32x4_t lo, hi; /* the 8 canonical lanes */
    float32x4_t macc;   /* Q4_K: the 4 min lanes; Q5_K: the running min sum in lane 0 */
} kq_acc;

WL_INLINE void kq_step(const uint32_t type, const kq_weight *w, const kq_act *a, kq_acc *c)
{
    int32x4_t s_lo = vdupq_n_s32(0), s_hi = vdupq_n_s32(0);
    for (int g = 0; g < 8; g++) {
        int32x4_t dlo = vdotq_s32(vdupq_n_s32(0), w->q[2 * g], a->x[2 * g]);
        int32x4_t dhi = vdotq_s32(vdupq_n_s32(0), w->q[2 * g + 1], a->x[2 * g + 1]);
        s_lo = vmlaq_n_s32(s_lo, dlo, w->sc[2 * g]);
        s_hi = vmlaq_n_s32(s_hi, dhi, w->sc[2 * g + 1]);
    }
    const float d = a->d * w->d;
    switch (type) {
    case WL_TYPE_Q2_K: {
        const float dmin = -a->d * w->dmin;
        c->lo = vfmaq_n_f32(c->lo, vcvtq_f32_s32(pair_products(w->mins[0], a->bsums[0])), dmin);
        c->hi = vfmaq_n_f32(c->hi, vcvtq_f32_s32(pair_products(w->mins[1], a->bsums[1])), dmin);
        break;
    }
    case WL_TYPE_Q4_K:
    case WL_TYPE_Q5_K: {
        const float dmin = -a->d * w->dmin;
        const int16x8_t b32 = vpaddq_s16(a->bsums[0], a->bsums[1]); /* sums over 32 values */
        const int32x4_t prod = pair_products(w->mins[0], b32);
        if (type == WL_TYPE_Q4_K)
            c->macc = vfmaq_n_f32(c->macc, vcvtq_f32_s32(prod), dmin);
        else
            c->macc = vsetq_lane_f32(
                fmaf(dmin, (float)vaddvq_s32(prod), vgetq_lane_f32(c->macc, 0)), c->macc, 0);
        break;
    }
    case WL_TYPE_Q6_K: { /* the -32 offset: 32 (sc[2l] B[2l] + sc[2l + 1] B[2l + 1]) */
        s_lo = vsubq_s32(s_lo, vshlq_n_s32(pair_products(a->bsums[0], w->mins[0]), 5));
        s_hi = vsubq_s32(s_hi, vshlq_n_s32(pair_products(a->bsums[1], w->mins[1]), 5));
        break;
    }
    default:
        break;
    }
    c->lo = vfmaq_n_f32(c->lo, vcvtq_f32_s32(s_lo), d);
    c->hi = vfmaq_n_f32(c->hi, vcvtq_f32_s32(s_hi), d);
}

WL_INLINE float kq_result(const uint32_t type, const kq_acc *c)
{
    const float s = hsum8(c->lo, c->hi);
    if (type == WL_TYPE_Q4_K) { /* (0 + 2) + (1 + 3) */
        float32x4_t m = vaddq_f32(c->macc, vextq_f32(c->macc, c->macc, 2));
        return s + (vgetq_lane_f32(m, 0) + vgetq_lane_f32(m, 1));
    }
    if (type == WL_TYPE_Q5_K)
        return s + vgetq_lane_f32(c->macc, 0);
    return s;
}

/* ---- tiles and matmul -------------------------------------------------------------------- */

WL_INLINE void tile_kq(const uint32_t type, const int R, const int T, int64_t nb,
                       const unsigned char *w, size_t w_stride, const unsigned char *x,
                       size_t x_stride, float *y, size_t ldy, size_t ystep)
{
    const size_t wbytes = wl_type_get(type)->type_size;
    kq_acc c[RMAX][TMAX];
    kq_weight wv[RMAX];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            c[r][t].lo = c[r][t].hi = c[r][t].macc = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < R; r++)
            unpack(type, w + (size_t)r * w_stride + (size_t)b * wbytes, &wv[r]);
        for (int t = 0; t < T; t++) {
            kq_act a;
            load_act(x + (size_t)t * x_stride + (size_t)b * sizeof(wl_block_q8_k), &a);
            for (int r = 0; r < R; r++)
                kq_step(type, &wv[r], &a, &c[r][t]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r * ystep] = kq_result(type, &c[r][t]);
}

WL_INLINE void matmul_kq(const uint32_t type, int64_t n, const void *w, size_t w_stride,
                         int64_t r0, int64_t r1, const void *x, size_t x_stride, int64_t ntok,
                         float *y, size_t ldy)
{
    const unsigned char *wb = w, *xb = x;
    const int64_t nb = n / WL_QK_K;
    if (ntok == 1) {
#define KQ_DECODE(RR, WR, WS, YO, YS) tile_kq(type, RR, 1, nb, WR, WS, xb, 0, YO, 1, YS)
        WL_DECODE_ROWS(KQ_DECODE);
#undef KQ_DECODE
        return;
    }
    const int64_t tb = wl_token_block((size_t)nb * sizeof(wl_block_q8_k), TMAX);
#define KQ_TILE(RR, TT)                                                                        \
    case (RR) * 8 + (TT):                                                                      \
        tile_kq(type, WL_MIN(RR, RMAX), WL_MIN(TT, TMAX), nb, wr, w_stride, xr, x_stride, yo,  \
                ldy, 1);                                                                       \
        break;
    WL_FOR_EACH_TILE(tb, RMAX, TMAX, WL_ALL_TILES(KQ_TILE))
#undef KQ_TILE
}

#define DEFINE_KQ_KERNELS(suffix, TYPE)                                                        \
    static void matmul_##suffix(int64_t n, const void *w, size_t w_stride, int64_t r0,         \
                                int64_t r1, const void *x, size_t x_stride, int64_t ntok,      \
                                float *y, size_t ldy)                                          \
    {                                                                                          \
        matmul_kq(TYPE, n, w, w_stride, r0, r1, x, x_stride, ntok, y, ldy);                    \
    }                                                                                          \
    static void vec_dot_##suffix(int64_t n, float *out, const void *w, const void *x)          \
    {                                                                                          \
        tile_kq(TYPE, 1, 1, n / WL_QK_K, w, 0, x, 0, out, 1, 1);                               \
    }

DEFINE_KQ_KERNELS(q2_k, WL_TYPE_Q2_K)
DEFINE_KQ_KERNELS(q3_k, WL_TYPE_Q3_K)
DEFINE_KQ_KERNELS(q4_k, WL_TYPE_Q4_K)
DEFINE_KQ_KERNELS(q5_k, WL_TYPE_Q5_K)
DEFINE_KQ_KERNELS(q6_k, WL_TYPE_Q6_K)

void wl_kernels_init_kquants_neon(wl_kernel_table *t, const wl_cpu_features *f)
{
    if (!f->neon_dotprod)
        return;
    t->vec_dot[WL_TYPE_Q2_K] = vec_dot_q2_k;
    t->vec_dot[WL_TYPE_Q3_K] = vec_dot_q3_k;
    t->vec_dot[WL_TYPE_Q4_K] = vec_dot_q4_k;
    t->vec_dot[WL_TYPE_Q5_K] = vec_dot_q5_k;
    t->vec_dot[WL_TYPE_Q6_K] = vec_dot_q6_k;
    t->matmul[WL_TYPE_Q2_K] = matmul_q2_k;
    t->matmul[WL_TYPE_Q3_K] = matmul_q3_k;
    t->matmul[WL_TYPE_Q4_K] = matmul_q4_k;
    t->matmul[WL_TYPE_Q5_K] = matmul_q5_k;
    t->matmul[WL_TYPE_Q6_K] = matmul_q6_k;
}
