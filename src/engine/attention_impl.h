/* attention_impl.h - the half-precision vector steps of attention, per instruction set.
 * Internal to the engine (attention.c and attention_avx2.c). Every implementation gives the same
 * bits: conversions round to nearest even, mad uses a fused multiply-add, and dot keeps 8 float
 * lanes, fused-multiply-adds element i into lane i % 8 in index order and sums the lanes as
 * ((0+4) + (2+6)) + ((1+5) + (3+7)). */
#ifndef WL_ENGINE_ATTENTION_IMPL_H
#define WL_ENGINE_ATTENTION_IMPL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wl_att_tile;

typedef struct wl_att_ops {
    /* q[0..n) as floats (from halves) */
    void (*to_f32)(float *dst, const uint16_t *src, int n);
    /* src[0..n) as halves, rounded to nearest even (wl_fp32_to_fp16) */
    void (*to_f16)(uint16_t *dst, const float *src, int n);
    /* sum_i qf[i] * k[i] over halves k, in 8 lanes (see above) */
    float (*dot)(const float *qf, const uint16_t *k, int n);
    /* acc[i] = half(acc[i] * s) */
    void (*scale)(uint16_t *acc, float s, int n);
    /* acc[i] = half(fma(v[i], s, acc[i])) */
    void (*mad)(uint16_t *acc, const uint16_t *v, float s, int n);
    /* wl_expf(x) (exp.h): the same bits, with the family's fused multiply-add instruction */
    float (*exp)(float x);
    /* wl_att_query with these steps fused into one loop (same bits); NULL: the steps one by one */
    void (*query)(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last, float scale,
                  float softcap, void *scratch, float *out);
    /* query for n (1..WL_ATT_GROUP) queries over the same positions [first, last] of one KV head
     * (decode: the heads of a group), each result bit for bit query's; scratch:
     * wl_att_scratch_bytes(hd) bytes. NULL: query (or wl_att_query) once per query. */
    void (*query_group)(int hd, int n, const float *const *q, const uint16_t *K, const uint16_t *V, int first,
                        int last, float scale, float softcap, void *scratch, float *const *out);
    /* wl_att_query_f32 compiled for the family (same bits); NULL: the plain C one */
    void (*query_f32)(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last,
                      float scale, float softcap, void *scratch, float *out);
    /* The whole attention of up to WL_ATT_LANES queries that share one KV head (below), each
     * query's result bit for bit that of wl_att_query with these ops' scalar equivalents; scratch:
     * wl_att_scratch_bytes(hd) bytes. NULL in families without it. */
    void (*tile)(const struct wl_att_tile *t, void *scratch);
    /* The same for the float path (wl_att_query_f32), bit for bit; NULL in families without it. */
    void (*tile_f32)(const struct wl_att_tile *t, void *scratch);
} wl_att_ops;

/* Batches of at least this many tokens take the float path (wl_att_query_f32), as llama.cpp's
 * CPU flash attention switches to its tiled float kernel for 64 queries or more. */
#define WL_ATT_F32_MIN_TOKENS 64

/* Keys per block of the float path; blocks start at multiples of it (absolute positions), so a
 * query's result does not depend on which other queries share its tile. */
#define WL_ATT_F32_BLOCK 16

/* Queries handled together by ops->query_group, at most. */
#define WL_ATT_GROUP 8

/* Queries handled together by ops->tile: one per vector lane. */
#define WL_ATT_LANES 16

/* n queries (1..WL_ATT_LANES) over one KV head. Query i sees positions [first[i], last[i]]. */
typedef struct wl_att_tile {
    int hd, n;             /* head dimension; number of queries */
    const uint16_t *K, *V; /* (positions, hd) keys and values of the head, half */
    const float *q[WL_ATT_LANES]; /* (hd) each query, float (rounded to half here) */
    float *out[WL_ATT_LANES];     /* (hd) each result */
    int first[WL_ATT_LANES], last[WL_ATT_LANES];
    float scale;   /* s = (q . k) * scale */
    float softcap; /* when not 0: s = softcap * tanh(s) */
} wl_att_tile;

/* Scratch bytes one call of ops->tile, ops->tile_f32, wl_att_query or wl_att_query_f32 needs
 * for head dimension hd. */
size_t wl_att_scratch_bytes(int hd);

/* The reference attention of one query (the tile's query i alone): softmax over positions
 * [first, last] of K with the online rescaling described in attention.c, into out (hd floats),
 * with the element steps of ops. scratch: wl_att_scratch_bytes(hd) bytes. */
void wl_att_query(const wl_att_ops *ops, int hd, const float *q, const uint16_t *K, const uint16_t *V, int first,
                  int last, float scale, float softcap, void *scratch, float *out);

/* The float path of one query (long prompts): everything in float, the query as it is, keys
 * and values converted from half, the softmax per block of WL_ATT_F32_BLOCK keys:
 *   s_j = (sum over e in order of fma(q[e], k_j[e], .)) * scale   (soft-capped when asked)
 *   for each block: bmax = the largest s_j of the keys seen in it (j in order, s > bmax);
 *     if bmax > m: acc *= e^(m - bmax), S *= e^(m - bmax), m = bmax;
 *     p_j = e^(s_j - m) for seen keys, 0 for the others; S += p_j in order;
 *     acc[d] = fma(p_j, v_j[d], acc[d]) for seen keys in order;
 *   out = acc * (1 / S).
 * ops->exp is the exponential (wl_expf, same bits everywhere). Scratch as wl_att_query's. */
void wl_att_query_f32(const wl_att_ops *ops, int hd, const float *q, const uint16_t *K, const uint16_t *V, int first,
                      int last, float scale, float softcap, void *scratch, float *out);

/* ---- what the group kernels (ops->query_group of attention_avx2.c and attention_avx512.c)
 * share: each query's state, and the steps that do not depend on the vector width ---- */

/* One query of a group. */
typedef struct wl_att_group_query {
    uint16_t *acc;  /* (hd) the accumulator, half */
    float *qf;      /* (hd) the query, half-rounded (the caller fills it) */
    float *sc, *ex; /* (16) each: per key of a block, the scores and their exponentials */
    float max, sum; /* the running maximum and sum of the softmax */
    unsigned news;  /* bit j: key j of the block set a new maximum */
} wl_att_group_query;

/* Points g[0..n) into scratch (wl_att_scratch_bytes(hd)): per query hd halves and hd floats,
 * each rounded up to 64 bytes, then 3 x 64 bytes of which the scores and exponentials take two;
 * the accumulators zeroed, max -inf, sum 0. */
static inline void wl_att_group_init(wl_att_group_query *g, int n, int hd, void *scratch)
{
    const size_t acc_bytes = ((size_t)hd * 2 + 63) / 64 * 64, qf_bytes = ((size_t)hd * 4 + 63) / 64 * 64;
    unsigned char *at = scratch;
    for (int i = 0; i < n; i++, at += acc_bytes + qf_bytes + 3 * 64) {
        g[i].acc = (uint16_t *)(void *)at;
        g[i].qf = (float *)(void *)(at + acc_bytes);
        g[i].sc = (float *)(void *)(at + acc_bytes + qf_bytes);
        g[i].ex = g[i].sc + 16;
        g[i].max = -INFINITY;
        g[i].sum = 0.0f;
        memset(g[i].acc, 0, (size_t)hd * sizeof *g[i].acc);
    }
}

/* Prefetches the keys and values of the block of 16 after the one at p0 (up to last): a long
 * context's cache comes from memory, and a block's own few kilobytes are too short a stream for
 * the hardware prefetchers to run ahead. */
static inline void wl_att_prefetch_next_block(const uint16_t *K, const uint16_t *V, int p0, int last, int hd)
{
    if (p0 + 16 > last)
        return;
    const int ahead = last - p0 - 15 < 16 ? last - p0 - 15 : 16;
    const char *kn = (const char *)(K + (size_t)(p0 + 16) * hd), *vn = (const char *)(V + (size_t)(p0 + 16) * hd);
    for (size_t l = 0; l < (size_t)ahead * hd * 2; l += 64) {
        __builtin_prefetch(kn + l, 0, 3);
        __builtin_prefetch(vn + l, 0, 3);
    }
}

/* Prefetches the keys and values of positions [first, last], at most WL_ATT_PREFETCH_SPAN bytes
 * of each, before a decode query reads them. Decode reads a layer's KV cache right after the
 * token's weights have streamed through the caches, so it comes from memory; with only the next
 * block prefetched (above), each query set waited for its first lines one block at a time. On
 * llama-3.2-1b Q4_0 at tg64 (Zen 5, two threads) this took a layer's attention from 12.5 to
 * 10.2 us. Beyond the span the kernels' own prefetch of the next block carries on. */
#define WL_ATT_PREFETCH_SPAN 16384
static inline void wl_att_prefetch_span(const uint16_t *K, const uint16_t *V, int first, int last, int hd)
{
    size_t bytes = (size_t)(last - first + 1) * (size_t)hd * sizeof *K;
    bytes = bytes < WL_ATT_PREFETCH_SPAN ? bytes : WL_ATT_PREFETCH_SPAN;
    const char *k = (const char *)(K + (size_t)first * hd), *v = (const char *)(V + (size_t)first * hd);
    for (size_t l = 0; l < bytes; l += 64) {
        __builtin_prefetch(k + l, 0, 3);
        __builtin_prefetch(v + l, 0, 3);
    }
}

/* The softmax's running sum over a block of nb keys, key by key as the reference: on a new
 * maximum sum = sum * e^(old max - new) + 1, else sum = sum * 1 + e^(s - max). */
static inline void wl_att_group_sums(wl_att_group_query *g, int n, int nb)
{
    for (int i = 0; i < n; i++) {
        wl_att_group_query *gi = &g[i];
        for (int j = 0; j < nb; j++) {
            const int news = gi->news >> j & 1;
            const float old_scale = news ? gi->ex[j] : 1.0f, weight = news ? 1.0f : gi->ex[j];
            gi->sum = gi->sum * old_scale + weight;
        }
    }
}

/* AVX2 + FMA + F16C versions (attention_avx2.c; x86-64 builds only), and the AVX-512 ones
 * (attention_avx512.c: 16 lanes per step for the element-wise steps; the dot is AVX2's). */
extern const wl_att_ops wl_att_ops_avx2;
extern const wl_att_ops wl_att_ops_avx512;

/* The AVX2 file's steps that the AVX-512 family uses too (defined in attention_avx2.c): the dot,
 * the exponential, the f32 query, and the 8-lane group kernel (a lone query's on AVX-512). */
float wl_att_dot_avx2(const float *qf, const uint16_t *k, int n);
float wl_att_exp_fma(float x);
void wl_att_query_f32_fma(int hd, const float *q, const uint16_t *K, const uint16_t *V, int first, int last,
                          float scale, float softcap, void *scratch, float *out);
void wl_att_query_group_avx2(int hd, int n, const float *const *q, const uint16_t *K, const uint16_t *V, int first,
                             int last, float scale, float softcap, void *scratch, float *const *out);

#endif
