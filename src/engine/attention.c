/* attention.c - causal self-attention over the half-precision KV cache.
 *
 * Follows llama.cpp's CPU flash attention, whose outputs are our reference: the query is rounded
 * to half precision for its dot products with the (half) keys, the softmax runs online (one
 * pass, rescaling when a new maximum appears) and the weighted sum of values is kept in half
 * precision. With a float accumulator instead, the logits of the bundled model differ from the
 * reference by up to 2e-3; with this one they agree to better than 1e-3.
 *
 * Batches of WL_ATT_F32_MIN_TOKENS tokens or more (long prompts) take a float path instead, as
 * llama.cpp does from 64 queries on (its tiled kernel): float accumulators and a softmax per
 * block of keys (wl_att_query_f32), which costs far less than rounding every step to half.
 *
 * Scores are s = (q . k) * kq_scale, soft-capped to c tanh(s / c) when the model says so
 * (gemma2); a sliding-window layer sees only the last n_swa positions (the query's included). */
#include <math.h>
#include <string.h>

#include "engine/attention_f32.h"
#include "engine/attention_impl.h"
#include "engine/cpu.h"
#include "engine/exp.h"
#include "engine/forward_impl.h"
#include "engine/quant.h"

/* the scalar reference of the steps: no contraction of a * b + c into one rounding */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct att_task {
    wl_ctx *c;
    int layer;
    int pos0;
    int ntok;
} att_task;

static void to_f32_scalar(float *dst, const uint16_t *src, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = wl_fp16_to_fp32(src[i]);
}

static void to_f16_scalar(uint16_t *dst, const float *src, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = wl_fp32_to_fp16(src[i]);
}

/* sum_i qf[i] * k[i] over halves k: 8 float lanes, element i fused-multiply-added into lane
 * i % 8 in index order, then the lanes summed as ((0+4) + (2+6)) + ((1+5) + (3+7)) (the
 * canonical order of attention_impl.h, which one AVX2 register computes directly) */
static float dot_scalar(const float *qf, const uint16_t *k, int n)
{
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < n; i++)
        l[i % 8] = fmaf(qf[i], wl_fp16_to_fp32(k[i]), l[i % 8]);
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* acc[i] = half(acc[i] * s) */
static void scale_scalar(uint16_t *acc, float s, int n)
{
    for (int i = 0; i < n; i++)
        acc[i] = wl_fp32_to_fp16(wl_fp16_to_fp32(acc[i]) * s);
}

/* acc[i] = half(acc[i] + v[i] * s) */
static void mad_scalar(uint16_t *acc, const uint16_t *v, float s, int n)
{
    for (int i = 0; i < n; i++)
        acc[i] = wl_fp32_to_fp16(fmaf(wl_fp16_to_fp32(v[i]), s, wl_fp16_to_fp32(acc[i])));
}

/* wl_expf with a library call for each fused multiply-add (no FMA instruction assumed) */
static const wl_att_ops SCALAR_OPS = {.to_f32 = to_f32_scalar,
                                      .to_f16 = to_f16_scalar,
                                      .dot = dot_scalar,
                                      .scale = scale_scalar,
                                      .mad = mad_scalar,
                                      .exp = wl_expf};

const wl_att_ops *wl_att_ops_for(int isa)
{
#if defined(__x86_64__)
    if (isa == WL_ISA_AVX512 && wl_isa_available(WL_ISA_AVX512))
        return &wl_att_ops_avx512;
    if ((isa == WL_ISA_AVX2 || isa == WL_ISA_AVX512) && wl_isa_available(WL_ISA_AVX2))
        return &wl_att_ops_avx2;
#endif
    (void)isa;
    return &SCALAR_OPS;
}

size_t wl_att_scratch_bytes(int hd)
{
    /* wl_att_query: 8 hd bytes (the query in half and as floats, the half accumulator); fused
     * (attention_avx512.c): about 6 hd + 320 per query of a group of up to WL_ATT_GROUP.
     * wl_att_query_f32: 4 hd + 128 (the accumulator, scores).
     * A tile: 104 hd + 64 (the queries transposed, (hd, 16) floats; the accumulators, (hd, 16)
     * halves; a key and a value as floats; 16 floats). A float tile: 256 hd + 2048 (the queries
     * and the accumulators, (hd, 16) floats each; 16 keys and 16 values as floats; 16 x 16
     * weights and 16 x 16 scores). */
    return ((size_t)hd * 256 + 2048 + 63) / 64 * 64;
}

void wl_att_query_f32(const wl_att_ops *ops, int hd, const float *q, const uint16_t *K, const uint16_t *V, int first,
                      int last, float scale, float softcap, void *scratch, float *out)
{
    if (ops->query_f32)
        ops->query_f32(hd, q, K, V, first, last, scale, softcap, scratch, out);
    else
        wl_att_query_f32_body(ops->exp, hd, q, K, V, first, last, scale, softcap, scratch, out);
}

void wl_att_query(const wl_att_ops *ops, int hd, const float *q, const uint16_t *K, const uint16_t *V, int first,
                  int last, float scale, float softcap, void *scratch, float *out)
{
    if (ops->query) {
        ops->query(hd, q, K, V, first, last, scale, softcap, scratch, out);
        return;
    }
    uint16_t *qh = scratch, *acc = qh + hd;
    float *qf = (float *)(acc + hd); /* the half query as floats */
    ops->to_f16(qh, q, hd);
    ops->to_f32(qf, qh, hd);
    memset(acc, 0, (size_t)hd * sizeof *acc);
    float max = -INFINITY, sum = 0.0f;
    for (int p = first; p <= last; p++) {
        float s = ops->dot(qf, K + (size_t)p * hd, hd) * scale;
        if (softcap != 0.0f)
            s = softcap * tanhf(s);
        float old_scale = 1.0f, weight = 1.0f;
        if (s > max) { /* a new maximum: rescale what was summed so far */
            old_scale = ops->exp(max - s);
            max = s;
            ops->scale(acc, old_scale, hd);
        } else {
            weight = ops->exp(s - max);
        }
        ops->mad(acc, V + (size_t)p * hd, weight, hd);
        sum = sum * old_scale + weight;
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < hd; i++)
        out[i] = wl_fp16_to_fp32(acc[i]) * inv;
}

/* The window of positions the query of the token at pos sees: [*first, pos]. */
static int first_seen(int pos, int window)
{
    return window > 0 && pos >= window ? pos - window + 1 : 0;
}

/* One query at a time: the (token, head) pairs ith, ith + nth, ... */
static void att_worker(void *ctx, int ith, int nth)
{
    const att_task *t = ctx;
    wl_ctx *c = t->c;
    const wl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, q_dim = hp->n_head * hd, group = hp->n_head / hp->n_head_kv;
    const int window = c->m->layers[t->layer].swa ? hp->n_swa : 0;
    const float softcap = hp->attn_softcap;
    /* with soft-capping ggml folds 1/c into the scale: s = c * tanh(q.k * (scale / c)) */
    const float scale = softcap != 0.0f ? hp->kq_scale / softcap : hp->kq_scale;
    void *scratch = c->att_scratch + (size_t)ith * wl_att_scratch_bytes(hd);
    const size_t layer_off = (size_t)t->layer * hp->n_head_kv * c->n_ctx * hd;

    for (int pair = ith; pair < t->ntok * hp->n_head; pair += nth) {
        const int tok = pair / hp->n_head, h = pair % hp->n_head, pos = t->pos0 + tok;
        const size_t head_off = layer_off + (size_t)(h / group) * c->n_ctx * hd;
        (t->ntok >= WL_ATT_F32_MIN_TOKENS ? wl_att_query_f32 : wl_att_query)(
            c->att_ops, hd, c->q + (size_t)tok * q_dim + (size_t)h * hd, c->k_cache + head_off, c->v_cache + head_off,
            first_seen(pos, window), pos, scale, softcap, scratch, c->att + (size_t)tok * q_dim + (size_t)h * hd);
    }
}

/* Decode (one token) where the family has ops->query_group: the query heads of each group, in
 * sets of at most WL_ATT_GROUP, over their shared KV head; unit i of n_head_kv * sets goes to
 * chunk i % nth. */
static void att_group_worker(void *ctx, int ith, int nth)
{
    const att_task *t = ctx;
    wl_ctx *c = t->c;
    const wl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    const int sets = (group + WL_ATT_GROUP - 1) / WL_ATT_GROUP, per_set = (group + sets - 1) / sets;
    const int window = c->m->layers[t->layer].swa ? hp->n_swa : 0;
    const float softcap = hp->attn_softcap;
    const float scale = softcap != 0.0f ? hp->kq_scale / softcap : hp->kq_scale;
    void *scratch = c->att_scratch + (size_t)ith * wl_att_scratch_bytes(hd);
    const size_t layer_off = (size_t)t->layer * hp->n_head_kv * c->n_ctx * hd;
    const int pos = t->pos0;
    for (int u = ith; u < hp->n_head_kv * sets; u += nth) {
        const int kvh = u / sets, h0 = kvh * group + u % sets * per_set;
        const int h1 = h0 + per_set < (kvh + 1) * group ? h0 + per_set : (kvh + 1) * group;
        const float *q[WL_ATT_GROUP];
        float *out[WL_ATT_GROUP];
        for (int h = h0; h < h1; h++) {
            q[h - h0] = c->q + (size_t)h * hd;
            out[h - h0] = c->att + (size_t)h * hd;
        }
        const size_t head_off = layer_off + (size_t)kvh * c->n_ctx * hd;
        const int first = first_seen(pos, window);
        wl_att_prefetch_span(c->k_cache + head_off, c->v_cache + head_off, first, pos, hd);
        c->att_ops->query_group(hd, h1 - h0, q, c->k_cache + head_off, c->v_cache + head_off, first, pos, scale,
                                softcap, scratch, out);
    }
}

/* Tiles of up to WL_ATT_LANES queries that share a KV head: the heads of a group (in sets of at
 * most 16) times as many consecutive tokens as fit. Tile i covers token chunk i / (n_kv * sets),
 * so chunk ith of nth, taking tiles ith, ith + nth, ..., gets early and late tokens alike. */
static void att_tile_worker(void *ctx, int ith, int nth)
{
    const att_task *t = ctx;
    wl_ctx *c = t->c;
    const wl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, q_dim = hp->n_head * hd, group = hp->n_head / hp->n_head_kv;
    const int window = c->m->layers[t->layer].swa ? hp->n_swa : 0;
    const int per_set = group < WL_ATT_LANES ? group : WL_ATT_LANES, sets = (group + per_set - 1) / per_set;
    const int toks = WL_ATT_LANES / per_set, chunks = (t->ntok + toks - 1) / toks;
    const int tiles = chunks * hp->n_head_kv * sets;
    const float softcap = hp->attn_softcap;
    void *scratch = c->att_scratch + (size_t)ith * wl_att_scratch_bytes(hd);
    const size_t layer_off = (size_t)t->layer * hp->n_head_kv * c->n_ctx * hd;
    wl_att_tile tl = {.hd = hd, .softcap = softcap,
                      .scale = softcap != 0.0f ? hp->kq_scale / softcap : hp->kq_scale};

    for (int i = ith; i < tiles; i += nth) {
        const int chunk = i / (hp->n_head_kv * sets), kvh = i % (hp->n_head_kv * sets) / sets, set = i % sets;
        const int h0 = kvh * group + set * per_set, h1 = h0 + per_set < (kvh + 1) * group ? h0 + per_set
                                                                                      : (kvh + 1) * group;
        const size_t head_off = layer_off + (size_t)kvh * c->n_ctx * hd;
        tl.K = c->k_cache + head_off;
        tl.V = c->v_cache + head_off;
        tl.n = 0;
        for (int tok = chunk * toks; tok < (chunk + 1) * toks && tok < t->ntok; tok++)
            for (int h = h0; h < h1; h++) {
                const int pos = t->pos0 + tok;
                tl.q[tl.n] = c->q + (size_t)tok * q_dim + (size_t)h * hd;
                tl.out[tl.n] = c->att + (size_t)tok * q_dim + (size_t)h * hd;
                tl.first[tl.n] = first_seen(pos, window);
                tl.last[tl.n] = pos;
                tl.n++;
            }
        (t->ntok >= WL_ATT_F32_MIN_TOKENS ? c->att_ops->tile_f32 : c->att_ops->tile)(&tl, scratch);
    }
}

int wl_att_chunks(const wl_pool *pool)
{
    /* more chunks than threads, so a thread the OS runs less (a shared machine) takes fewer */
    return wl_pool_size(pool) * 4;
}

void wl_attention(wl_ctx *c, int il, int pos0, int ntok)
{
    att_task at = {c, il, pos0, ntok};
    /* chunks for whoever is free (threadpool.c); a prompt in tiles where the family has them */
    const int tiles = ntok >= WL_ATT_F32_MIN_TOKENS ? c->att_ops->tile_f32 != NULL : ntok >= 2 && c->att_ops->tile;
    const int groups = ntok == 1 && c->att_ops->query_group;
    wl_pool_run_n(c->pool, tiles ? att_tile_worker : groups ? att_group_worker : att_worker, &at,
                  wl_att_chunks(c->pool));
}
