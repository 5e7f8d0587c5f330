/* forward.c - one pass of a decoder-only transformer over a batch of tokens.
 *
 * x = embed(tokens) * embd_scale
 * for each layer:
 *     q, k, v = Wq xn + bq, Wk xn + bk, Wv xn + bv       xn = norm(x)   (or one fused Wqkv)
 *     q, k    = rope(qknorm(q)), rope(qknorm(k))          per head; qknorm only qwen3/gemma3
 *     x      += postnorm(Wo attention(q * q_scale, k, v)) postnorm only gemma
 *     x      += postnorm(Wdown (act(Wgate xn) * (Wup xn)))   xn = norm(x); act silu or gelu
 * logits = softcap(Wout norm(x) + bout) for the last token of the batch.
 *
 * Matrix products go through the best kernel there is for them (the GEMM over repacked Q4_0
 * weights for prompts and decode alike, repack.h; the prefill GEMMs of gemm.h and gemm_k.h, the
 * decode GEMV of gemv.h, else the kernel table of kernels.h) and are split by rows
 * over the thread pool, in blocks of rows each thread takes in order from its own share while
 * the others may steal the end of it (steal.h). The small per-token steps (ops.h) run on
 * the pool for a prompt and on the calling thread for one token. Attention (attention.c) is
 * split over (token, head) pairs, or groups of heads for one token. The KV cache keeps every position's
 * rotated key and value in IEEE half precision. The architecture only changes which of the optional steps run
 * and their constants (model.h); for llama every optional step is off, and the arithmetic is that of the
 * original llama-only pass bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward_impl.h"
#include "engine/gemm.h"
#include "engine/gemm_k.h"
#include "engine/gemv.h"
#include "engine/ops.h"
#include "engine/quant.h"
#include "engine/repack.h"
#include "engine/steal.h"
#include "engine/tensor_type.h"
#include "util/error.h"

/* Tokens per forward pass of a prompt: the weights are streamed once per batch and the pool
 * synchronizes ~10 times per layer per batch, so larger batches prefill faster (128 against 64:
 * +6-8% pp512 on smollm2-135m Q8_0 and llama-3.2-1b Q4_0; 256 adds little more), while an
 * abort or timeout during a prompt is noticed between batches, so smaller ones answer sooner. */
#define MAX_BATCH 128
/* The blocks of rows decode's threads take (steal.h): at most 1/8 of a thread's share at a time,
 * fewer near the end of a run, so that the threads finish a product together. A block is
 * 64 KiB over repacked weights, whose decode kernel reads one stream per range. The kernel
 * table's decode GEMVs read four row streams a quarter of their range apart and need longer
 * ranges (with blocks of 32 KiB the Q6_K output matrix ran at 29 against 74 GB/s; with 64 KiB
 * blocks, llama-3.2-1b and qwen2.5-0.5b Q4_K_M decoded 2-4% slower than with 512 KiB): their
 * blocks are 512 KiB, or 1/8 of a thread's share when that is less, and at least 64 KiB. */
#define DECODE_BLOCK_BYTES 65536           /* repacked weights; the least for the others */
#define DECODE_BLOCK_BYTES_4STREAMS 524288 /* the kernel table's GEMVs, at most */
/* a take is at most 1/8 of a thread's share, for products of more than that many blocks */
#define DECODE_TAKES_PER_THREAD 8
/* A prompt's products in blocks of one GEMM tile of rows, at most 1/4 of a thread's share per
 * take: with one range per thread, smollm2-135m's pp512 on two threads kept the caller waiting
 * for the other thread 5% of its time (ranges of equal work end apart on a shared machine), and
 * two threads gave 1.72-1.80x one thread; with stealing 1.79-1.86x (Intel Xeon, 3 alternations). */
#define PREFILL_BLOCK_ROWS WL_GEMM_TILE_ROWS
#define PREFILL_TAKES_PER_THREAD 4

int64_t wl_decode_blocks(int64_t rows, size_t row_bytes, int repacked, int threads, int64_t *block_rows,
                         int64_t *most)
{
    size_t block_bytes = DECODE_BLOCK_BYTES;
    if (!repacked) {
        const size_t eighth = (size_t)rows * row_bytes / ((size_t)threads * DECODE_TAKES_PER_THREAD);
        block_bytes = eighth < DECODE_BLOCK_BYTES_4STREAMS ? eighth : DECODE_BLOCK_BYTES_4STREAMS;
        block_bytes = block_bytes > DECODE_BLOCK_BYTES ? block_bytes : DECODE_BLOCK_BYTES;
    }
    /* whole groups of repacked rows (repack.h) */
    const int64_t r = (int64_t)(block_bytes / row_bytes) & ~(int64_t)(WL_R16_ROWS - 1);
    *block_rows = r > WL_R16_ROWS ? r : WL_R16_ROWS;
    const int64_t n_blocks = (rows + *block_rows - 1) / *block_rows;
    *most = n_blocks / ((int64_t)threads * DECODE_TAKES_PER_THREAD);
    return n_blocks;
}

/* ---- matrix products over the pool ---- */

/* One matrix product y(B, rows) = x(B, n) W^T; x already in W's activation form. */
typedef struct mm_job {
    const wl_tensor *w;
    const void *x;
    size_t x_stride;
    float *y;
    size_t ldy;
    const void *prep;      /* the activations as prepared for wl_gemm or wl_gemm_r16 (gemm.h), or NULL */
    const void *gemv_prep; /* one token: as prepared for wl_gemv (gemv.h), or NULL */
} mm_job;

typedef struct mm_task {
    const wl_kernel_table *kt;
    mm_job jobs[3];
    int n_jobs;
    int ntok;
    wl_steal_slot *steal; /* blocks of block_rows rows of the jobs' rows, one after the other
                           * (with glu_up: of gate's rows, each block of gate and up) */
    int64_t block_rows, space_rows;
    int64_t most_blocks; /* blocks a thread takes at most at a time (steal.h) */
    float *glu_up;       /* when set: jobs are gate, up; finish with gate = act(gate) * up */
    int act;             /* enum wl_ffn_act of that finish */
} mm_task;

/* y[i] = act(gate[i]) * up[i] for i in [0, n) */
static void glu(float *y, const float *gate, const float *up, int64_t n, int act)
{
    if (act == WL_ACT_GELU)
        for (int64_t i = 0; i < n; i++)
            y[i] = wl_gelu_f16(gate[i]) * up[i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = wl_silu(gate[i]) * up[i];
}

/* Rows [r0, r1) of one product, through the best kernel there is for it. */
static void mm_rows(const mm_task *t, const mm_job *jb, int64_t r0, int64_t r1)
{
    if (r0 >= r1)
        return;
    if (jb->w->layout == WL_LAYOUT_R16) {
        if (jb->prep)
            wl_gemm_r16(jb->w->ne[0], jb->w->data, r0, r1, jb->prep, t->ntok, jb->y, jb->ldy);
        else /* a kernel family without the R16 GEMM (a model repacked for another) */
            wl_r16_ref(jb->w->ne[0], jb->w->data, r0, r1, jb->x, jb->x_stride, t->ntok, jb->y, jb->ldy);
    } else if (jb->gemv_prep)
        wl_gemv(jb->w->type, jb->w->ne[0], jb->w->data, jb->w->row_bytes, r0, r1, jb->gemv_prep, jb->y);
    else if (jb->prep)
        wl_gemm(jb->w->type, jb->w->ne[0], jb->w->data, jb->w->row_bytes, r0, r1, jb->prep, t->ntok, jb->y,
                jb->ldy);
    else if (t->ntok >= WL_GEMM_K_MIN_TOKENS && wl_gemm_k_supported(t->kt->isa, jb->w->type))
        wl_gemm_k(jb->w->type, jb->w->ne[0], jb->w->data, jb->w->row_bytes, r0, r1, jb->x, jb->x_stride,
                  t->ntok, jb->y, jb->ldy);
    else
        t->kt->matmul[jb->w->type](jb->w->ne[0], jb->w->data, jb->w->row_bytes, r0, r1, jb->x, jb->x_stride,
                                   t->ntok, jb->y, jb->ldy);
}

/* Ranges of blocks of rows as steal.h hands them out. */
static void mm_worker(void *ctx, int ith, int nth)
{
    const mm_task *t = ctx;
    for (wl_steal_range b; (b = wl_steal_next(t->steal, nth, ith, t->most_blocks)).count > 0;) {
        const int64_t a = b.first * t->block_rows, end = (b.first + b.count) * t->block_rows;
        const int64_t e = end < t->space_rows ? end : t->space_rows;
        if (t->glu_up) { /* gate and up rows [a, e), then the gating of those rows, every token */
            mm_rows(t, &t->jobs[0], a, e);
            mm_rows(t, &t->jobs[1], a, e);
            for (int tok = 0; tok < t->ntok; tok++) {
                float *gate = t->jobs[0].y + (size_t)tok * t->jobs[0].ldy;
                glu(gate + a, gate + a, t->glu_up + (size_t)tok * t->jobs[0].ldy + a, e - a, t->act);
            }
            continue;
        }
        int64_t off = 0; /* the jobs' rows one after the other */
        for (int j = 0; j < t->n_jobs; j++) {
            const int64_t rows = t->jobs[j].w->ne[1];
            const int64_t lo = a > off ? a : off, hi = e < off + rows ? e : off + rows;
            mm_rows(t, &t->jobs[j], lo - off, hi - off);
            off += rows;
        }
    }
}

/* ---- per-token steps over the pool ---- */

/* fn(c, t, arg) for every token t of a batch. A prompt spreads its tokens over the pool's threads
 * (the steps between the matrix products would otherwise leave all but one thread waiting); one
 * token runs on the calling thread. Each token's arithmetic is the same either way. */
typedef void (*token_fn)(wl_ctx *c, int t, const void *arg);

typedef struct token_task {
    wl_ctx *c;
    int ntok;
    token_fn fn;
    const void *arg;
} token_task;

static void token_worker(void *ctx, int ith, int nth)
{
    const token_task *tt = ctx;
    for (int t = ith; t < tt->ntok; t += nth)
        tt->fn(tt->c, t, tt->arg);
}

static void for_each_token(wl_ctx *c, int ntok, token_fn fn, const void *arg)
{
    if (ntok < 2) {
        for (int t = 0; t < ntok; t++)
            fn(c, t, arg);
        return;
    }
    token_task tt = {c, ntok, fn, arg};
    wl_pool_run(c->pool, token_worker, &tt);
}

typedef struct quantize_arg {
    uint32_t at;
    const float *x;
    int64_t n;
    size_t rb;
} quantize_arg;

static void quantize_token(wl_ctx *c, int t, const void *arg)
{
    const quantize_arg *a = arg;
    c->kt->quantize_act[a->at](a->x + (size_t)t * a->n, (char *)c->act + (size_t)t * a->rb, a->n);
}

/* Converts x (B, n) into the activation form weight type `type` pairs with; returns the rows and
 * their stride. F32 activations are used in place. */
static const void *prepare_act(wl_ctx *c, uint32_t type, const float *x, int ntok, int64_t n, size_t *stride)
{
    uint32_t at = wl_act_type(type);
    if (at == WL_TYPE_F32) {
        *stride = (size_t)n * sizeof(float);
        return x;
    }
    const quantize_arg qa = {at, x, n, wl_act_row_bytes(type, n)};
    for_each_token(c, ntok, quantize_token, &qa);
    *stride = qa.rb;
    return c->act;
}

/* Runs up to three products that share the input x (B, n). The activation buffer holds one
 * conversion at a time, so products whose weights pair with different activation forms are
 * run in separate passes. With glu_up (n = 2: gate, up), finishes with y[0] = act(y[0]) * up. */
static void matmuls(wl_ctx *c, const float *x, int ntok, const wl_tensor *const *w, float *const *y, int n,
                    float *glu_up)
{
    const int act = c->m->hp.ffn_act;
    int done[3] = {0, 0, 0}, passes = 0;
    for (int first = 0; first < n; first++) {
        if (done[first])
            continue;
        uint32_t at = wl_act_type(w[first]->type);
        size_t stride;
        const void *xa = prepare_act(c, w[first]->type, x, ntok, w[first]->ne[0], &stride);
        mm_task task = {.kt = c->kt, .ntok = ntok, .act = act};
        const void *prep[3] = {NULL, NULL, NULL}; /* Q4_0, Q8_0, repacked Q4_0 of one token */
        for (int j = first; j < n; j++) {
            if (done[j] || wl_act_type(w[j]->type) != at)
                continue;
            const void *pj = NULL, *gv = NULL;
            const int r16 = w[j]->layout == WL_LAYOUT_R16;
            const int slot = r16 && ntok == 1 ? 2 : w[j]->type == WL_TYPE_Q8_0;
            if ((ntok >= 2 || r16) && wl_gemm_supported(c->kt->isa, w[j]->type)) {
                if (!prep[slot]) {
                    wl_gemm_prepare(w[j]->type, w[j]->ne[0], xa, stride, ntok, c->gemm_prep[slot]);
                    prep[slot] = c->gemm_prep[slot];
                }
                pj = prep[slot];
            } else if (ntok == 1 && wl_gemv_supported(c->kt->isa, w[j]->type)) {
                if (!prep[slot]) {
                    wl_gemv_prepare(w[j]->type, w[j]->ne[0], xa, c->gemm_prep[slot]);
                    prep[slot] = c->gemm_prep[slot];
                }
                gv = prep[slot];
            }
            task.jobs[task.n_jobs++] = (mm_job){w[j], xa, stride, y[j], (size_t)w[j]->ne[1], pj, gv};
            done[j] = 1;
        }
        /* the fused gating needs gate and up in the same pass */
        task.glu_up = glu_up && task.n_jobs == n ? glu_up : NULL;
        /* each thread takes blocks of rows from its own contiguous share and, once done, the
         * last blocks of the others (steal.h). Decode: the products are short and read from
         * memory, so a break in a thread's stream costs time, and a thread the OS runs less (a
         * shared machine) must not hold the product up. A prompt: blocks of one GEMM tile
         * (PREFILL_BLOCK_ROWS says why) */
        task.space_rows = task.jobs[0].w->ne[1];
        for (int j = 1; j < task.n_jobs && !task.glu_up; j++)
            task.space_rows += task.jobs[j].w->ne[1];
        const int threads = wl_pool_size(c->pool);
        int64_t n_blocks;
        if (ntok == 1) {
            int r16 = 1;
            for (int j = 0; j < task.n_jobs; j++)
                r16 &= task.jobs[j].w->layout == WL_LAYOUT_R16;
            n_blocks = wl_decode_blocks(task.space_rows, task.jobs[0].w->row_bytes, r16, threads, &task.block_rows,
                                        &task.most_blocks);
        } else {
            task.block_rows = PREFILL_BLOCK_ROWS;
            n_blocks = (task.space_rows + PREFILL_BLOCK_ROWS - 1) / PREFILL_BLOCK_ROWS;
            task.most_blocks = n_blocks / ((int64_t)threads * PREFILL_TAKES_PER_THREAD);
        }
        task.steal = c->steal;
        wl_steal_init(c->steal, threads, n_blocks);
        wl_pool_run(c->pool, mm_worker, &task);
        passes++;
    }
    if (glu_up && passes > 1)
        glu(y[0], y[0], glu_up, (int64_t)ntok * w[0]->ne[1], act);
}

static void matmul1(wl_ctx *c, const float *x, int ntok, const wl_tensor *w, float *y)
{
    matmuls(c, x, ntok, &w, &y, 1, NULL);
}

/* ---- the pass ---- */

static void embed(wl_ctx *c, const int32_t *tokens, int ntok)
{
    const wl_tensor *e = &c->m->tok_embd;
    const float s = c->m->hp.embd_scale;
    for (int t = 0; t < ntok; t++) {
        float *x = c->x + (size_t)t * e->ne[0];
        if (e->layout == WL_LAYOUT_R16) /* tied to a repacked output matrix */
            wl_r16_dequantize_row(e->data, e->ne[0], tokens[t], x);
        else
            wl_dequantize_row(e->type, (const char *)e->data + (size_t)tokens[t] * e->row_bytes, x, e->ne[0]);
        if (s != 1.0f)
            for (int64_t i = 0; i < e->ne[0]; i++)
                x[i] *= s;
    }
}

/* dst[t][i] += b[i] for ntok rows of n */
static void add_bias(float *dst, const float *b, int ntok, int n)
{
    if (!b)
        return;
    for (int t = 0; t < ntok; t++)
        for (int i = 0; i < n; i++)
            dst[(size_t)t * n + i] += b[i];
}

/* q (B, q_dim), k, v (B, kv_dim) = the projections of xn, with their biases */
static void qkv_project(wl_ctx *c, const wl_layer *L, int ntok)
{
    const wl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    if (L->wqkv.data) {
        const int qkv_dim = q_dim + 2 * kv_dim;
        matmul1(c, c->xn, ntok, &L->wqkv, c->qkv); /* (B, qkv_dim): q | k | v */
        for (int t = 0; t < ntok; t++) {
            const float *row = c->qkv + (size_t)t * qkv_dim;
            memcpy(c->q + (size_t)t * q_dim, row, (size_t)q_dim * sizeof(float));
            memcpy(c->k + (size_t)t * kv_dim, row + q_dim, (size_t)kv_dim * sizeof(float));
            memcpy(c->v + (size_t)t * kv_dim, row + q_dim + kv_dim, (size_t)kv_dim * sizeof(float));
        }
    } else {
        const wl_tensor *w[3] = {&L->wq, &L->wk, &L->wv};
        float *y[3] = {c->q, c->k, c->v};
        matmuls(c, c->xn, ntok, w, y, 3, NULL);
    }
    add_bias(c->q, L->bq, ntok, q_dim);
    add_bias(c->k, L->bk, ntok, kv_dim);
    add_bias(c->v, L->bv, ntok, kv_dim);
}

/* xn[t] = rmsnorm(x[t]) * w (arg: w) */
static void norm_token(wl_ctx *c, int t, const void *arg)
{
    const wl_hparams *hp = &c->m->hp;
    const int dim = hp->n_embd;
    wl_rmsnorm(c->xn + (size_t)t * dim, c->x + (size_t)t * dim, arg, dim, hp->norm_eps);
}

/* x[t] += post_norm(xn[t]) (arg: the post-norm's weights, or NULL for none) */
static void residual_token(wl_ctx *c, int t, const void *arg)
{
    const wl_hparams *hp = &c->m->hp;
    const int dim = hp->n_embd;
    float *xn = c->xn + (size_t)t * dim, *x = c->x + (size_t)t * dim;
    if (arg)
        wl_rmsnorm(xn, xn, arg, dim, hp->norm_eps);
    for (int i = 0; i < dim; i++)
        x[i] += xn[i];
}

typedef struct rope_arg {
    const wl_layer *L;
    int il, pos0;
    const float *rope_cs;
} rope_arg;

/* token t's q and k normalized (per head, when the model has q/k norms), rotated, q scaled, and
 * k and v stored at the token's position in the cache */
static void rope_token(wl_ctx *c, int t, const void *arg)
{
    const rope_arg *ra = arg;
    const wl_layer *L = ra->L;
    const int il = ra->il, pos0 = ra->pos0;
    const wl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    const float *cs = ra->rope_cs + (size_t)t * hp->n_rot;
    float *q = c->q + (size_t)t * q_dim, *k = c->k + (size_t)t * kv_dim, *v = c->v + (size_t)t * kv_dim;
    if (L->q_norm)
        for (int h = 0; h < hp->n_head; h++)
            wl_rmsnorm(q + (size_t)h * hd, q + (size_t)h * hd, L->q_norm, hd, hp->norm_eps);
    if (L->k_norm)
        for (int h = 0; h < hp->n_head_kv; h++)
            wl_rmsnorm(k + (size_t)h * hd, k + (size_t)h * hd, L->k_norm, hd, hp->norm_eps);
    wl_rope_apply(q, hp->n_head, hd, hp->n_rot, hp->rope_neox, cs);
    wl_rope_apply(k, hp->n_head_kv, hd, hp->n_rot, hp->rope_neox, cs);
    if (hp->q_scale != 1.0f)
        for (int i = 0; i < q_dim; i++)
            q[i] *= hp->q_scale;
    for (int h = 0; h < hp->n_head_kv; h++) {
        size_t off = (((size_t)il * hp->n_head_kv + h) * c->n_ctx + pos0 + t) * hd;
        c->att_ops->to_f16(c->k_cache + off, k + (size_t)h * hd, hd);
        c->att_ops->to_f16(c->v_cache + off, v + (size_t)h * hd, hd);
    }
}

static void attention_block(wl_ctx *c, int il, int pos0, int ntok)
{
    const wl_layer *L = &c->m->layers[il];
    const float *rope_cs = L->swa ? c->rope_cs_swa : c->rope_cs;

    for_each_token(c, ntok, norm_token, L->attn_norm);
    qkv_project(c, L, ntok);

    /* normalize and rotate q and k, scale q, and store k and v at their positions in the cache */
    const rope_arg ra = {L, il, pos0, rope_cs};
    for_each_token(c, ntok, rope_token, &ra);

    wl_attention(c, il, pos0, ntok);

    matmul1(c, c->att, ntok, &L->wo, c->xn);
    for_each_token(c, ntok, residual_token, L->attn_post_norm);
}

static void ffn_block(wl_ctx *c, int il, int ntok)
{
    const wl_hparams *hp = &c->m->hp;
    const wl_layer *L = &c->m->layers[il];
    const int ff = hp->n_ff;

    for_each_token(c, ntok, norm_token, L->ffn_norm);
    if (!L->w_gate.data) {
        /* fused: hb2 (B, 2 ff) holds gate | up */
        matmul1(c, c->xn, ntok, &L->w_up, c->hb2);
        for (int t = 0; t < ntok; t++) {
            const float *gu = c->hb2 + (size_t)t * 2 * ff;
            glu(c->hb + (size_t)t * ff, gu, gu + ff, ff, hp->ffn_act);
        }
    } else {
        const wl_tensor *w[2] = {&L->w_gate, &L->w_up};
        float *y[2] = {c->hb, c->hb2};
        matmuls(c, c->xn, ntok, w, y, 2, c->hb2);
    }
    matmul1(c, c->hb, ntok, &L->w_down, c->xn);
    for_each_token(c, ntok, residual_token, L->ffn_post_norm);
}

int wl_forward(wl_ctx *c, const int32_t *tokens, int n, int pos, float *logits, wandler_error *err)
{
    const wl_hparams *hp = &c->m->hp;
    if (n < 1 || n > c->max_batch || pos < 0 || pos > c->n_ctx - n)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "forward: batch of %d tokens at position %d does not fit (batch <= %d, context %d)",
                        n, pos, c->max_batch, c->n_ctx);
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= hp->n_vocab)
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "token id %d is outside the vocabulary (%d)",
                            tokens[t], hp->n_vocab);

    embed(c, tokens, n);
    for (int t = 0; t < n; t++) {
        wl_rope_table(c->rope_cs + (size_t)t * hp->n_rot, pos + t, hp->n_rot, hp->rope_base,
                      hp->rope_freq_scale, c->rope_ff, hp->rope_attn_factor);
        if (hp->n_swa > 0)
            wl_rope_table(c->rope_cs_swa + (size_t)t * hp->n_rot, pos + t, hp->n_rot, hp->rope_base_swa,
                          hp->rope_freq_scale_swa, c->rope_ff, hp->rope_attn_factor);
    }
    for (int il = 0; il < hp->n_layer; il++) {
        attention_block(c, il, pos, n);
        ffn_block(c, il, n);
    }
    if (logits) {
        const float *last = c->x + (size_t)(n - 1) * hp->n_embd;
        wl_rmsnorm(c->xn, last, c->m->out_norm, hp->n_embd, hp->norm_eps);
        matmul1(c, c->xn, 1, &c->m->output, logits);
        if (c->m->output_b)
            for (int i = 0; i < hp->n_vocab; i++)
                logits[i] += c->m->output_b[i];
        if (hp->final_softcap != 0.0f)
            for (int i = 0; i < hp->n_vocab; i++)
                logits[i] = wl_softcap(logits[i], hp->final_softcap);
    }
    return WANDLER_OK;
}

/* ---- life cycle ---- */

/* Adds n elements of size sz to *total, failing on overflow. */
static int add_bytes(size_t *total, size_t n, size_t sz)
{
    size_t b;
    if (__builtin_mul_overflow(n, sz, &b) || __builtin_add_overflow(*total, b, total))
        return -1;
    return 0;
}

int wl_ctx_create(const wl_model *m, int n_ctx, wl_pool *pool, int isa, wl_ctx **out, wandler_error *err)
{
    *out = NULL;
    const wl_hparams *hp = &m->hp;
    const wl_kernel_table *kt = wl_kernels(isa);
    if (!kt)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "kernel family %d is not available", isa);
    if (n_ctx < 1)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "context length %d < 1", n_ctx);

    const size_t B = MAX_BATCH, dim = hp->n_embd, q_dim = (size_t)hp->n_head * hp->head_dim,
                 kv_dim = (size_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff,
                 n_rot = hp->n_rot ? (size_t)hp->n_rot : 1;
    int fused_qkv = 0, fused_up = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        fused_qkv |= m->layers[il].wqkv.data != NULL;
        fused_up |= m->layers[il].w_gate.data == NULL;
    }
    const size_t qkv_dim = fused_qkv ? q_dim + 2 * kv_dim : 0, up_rows = fused_up ? 2 * ff : ff;
    size_t widest = dim > q_dim ? dim : q_dim;
    widest = widest > ff ? widest : ff;
    size_t kv_elems;
    if (__builtin_mul_overflow((size_t)hp->n_layer * kv_dim, (size_t)n_ctx, &kv_elems))
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "KV cache size overflows");

    /* activation rows in kernel form are never wider than F32 ones */
    size_t act_cap = B * widest * sizeof(float);
    /* the prepared activations of the prefill GEMM or the decode GEMV, once per weight type
     * (Q4_0, Q8_0) */
    size_t gemm_cap = wl_gemm_prep_bytes((int64_t)widest, (int64_t)B);
    gemm_cap =
        wl_gemv_prep_bytes((int64_t)widest) > gemm_cap ? wl_gemv_prep_bytes((int64_t)widest) : gemm_cap;
    gemm_cap = (gemm_cap + 63) / 64 * 64;
    size_t total = 2 * gemm_cap + wl_gemm_prep_bytes((int64_t)widest, 1);
    int bad = add_bytes(&total, kv_elems * 2, sizeof(uint16_t)) | add_bytes(&total, B * dim, sizeof(float)) |
              add_bytes(&total, B * widest, sizeof(float)) | add_bytes(&total, B * q_dim * 2, sizeof(float)) |
              add_bytes(&total, B * kv_dim * 2, sizeof(float)) |
              add_bytes(&total, B * qkv_dim, sizeof(float)) |
              add_bytes(&total, B * (ff + up_rows), sizeof(float)) |
              add_bytes(&total, (size_t)wl_att_chunks(pool), wl_att_scratch_bytes(hp->head_dim)) |
              add_bytes(&total, B * n_rot * 2, sizeof(float)) | add_bytes(&total, act_cap, 1);
    if (bad)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "context of %d tokens is too large", n_ctx);

    wl_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    c->m = m;
    c->pool = pool;
    c->kt = kt;
    c->n_ctx = n_ctx;
    c->max_batch = MAX_BATCH;
    c->bytes = total;
    c->act_cap = act_cap;
    /* Llama 3 divisors, or LongRoPE's: the long ones when the context outgrows the original */
    const int n_orig = hp->n_ctx_orig > 0 ? hp->n_ctx_orig : hp->n_ctx_train;
    c->rope_ff = m->rope_freqs                    ? m->rope_freqs
                 : n_ctx > n_orig && m->rope_long ? m->rope_long
                                                  : m->rope_short;
    c->k_cache = calloc(kv_elems, sizeof(uint16_t));
    c->v_cache = calloc(kv_elems, sizeof(uint16_t));
    c->x = malloc(B * dim * sizeof(float));
    c->xn = malloc(B * widest * sizeof(float));
    c->q = malloc(B * q_dim * sizeof(float));
    c->k = malloc(B * kv_dim * sizeof(float));
    c->v = malloc(B * kv_dim * sizeof(float));
    c->qkv = fused_qkv ? malloc(B * qkv_dim * sizeof(float)) : NULL;
    c->att = malloc(B * q_dim * sizeof(float));
    c->hb = malloc(B * ff * sizeof(float));
    c->hb2 = malloc(B * up_rows * sizeof(float));
    c->att_scratch = aligned_alloc(64, (size_t)wl_att_chunks(pool) * wl_att_scratch_bytes(hp->head_dim));
    c->att_ops = wl_att_ops_for(isa);
    c->rope_cs = malloc(B * n_rot * sizeof(float));
    c->rope_cs_swa = malloc(B * n_rot * sizeof(float));
    c->act = malloc(act_cap);
    for (int i = 0; i < 2; i++)
        c->gemm_prep[i] = aligned_alloc(64, gemm_cap);
    c->gemm_prep[2] = aligned_alloc(64, (wl_gemm_prep_bytes((int64_t)widest, 1) + 63) / 64 * 64);
    c->steal = aligned_alloc(64, (size_t)wl_pool_size(pool) * sizeof *c->steal);
    if (!c->gemm_prep[0] || !c->gemm_prep[1] || !c->gemm_prep[2] || !c->steal || !c->k_cache || !c->v_cache ||
        !c->x || !c->xn || !c->q || !c->k || !c->v || (fused_qkv && !c->qkv) || !c->att || !c->hb ||
        !c->hb2 || !c->att_scratch || !c->rope_cs || !c->rope_cs_swa || !c->act) {
        wl_ctx_free(c);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY,
                        "out of memory for a context of %d tokens (%zu bytes)", n_ctx, total);
    }
    *out = c;
    return WANDLER_OK;
}

void wl_ctx_free(wl_ctx *c)
{
    if (!c)
        return;
    free(c->k_cache);
    free(c->v_cache);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->qkv);
    free(c->att);
    free(c->hb);
    free(c->hb2);
    free(c->att_scratch);
    free(c->rope_cs);
    free(c->rope_cs_swa);
    free(c->act);
    free(c->steal);
    free(c->gemm_prep[0]);
    free(c->gemm_prep[1]);
    free(c->gemm_prep[2]);
    free(c);
}

int wl_ctx_n_ctx(const wl_ctx *c)
{
    return c->n_ctx;
}

size_t wl_ctx_bytes(const wl_ctx *c)
{
    return c->bytes;
}

int wl_ctx_max_batch(const wl_ctx *c)
{
    return c->max_batch;
}
