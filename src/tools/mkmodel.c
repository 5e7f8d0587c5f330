/* mkmodel.c - random-weight models of real shapes (see mkmodel.h).
 *
 * Every value is a function of (seed, tensor name, row): each row has its own generator, so
 * rows are made in parallel and the file does not depend on the thread count or on the format
 * (an F32 model quantized by wandler quantize equals the same model made in that format). */
#include "tools/mkmodel.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"
#include "engine/threadpool.h"
#include "text/vocab.h"
#include "tools/convert.h"
#include "tools/quant_plan.h"
#include "util/error.h"



#define SLAB_VALUES (1u << 20)

/* ---- shapes ------------------------------------------------------------------------------ */

#define SHAPE(n, a, ...) {n, a, {__VA_ARGS__}}
static const wl_mkmodel_shape SHAPES[] = {
    /* real models (their config.json), for benchmarks */
    SHAPE("smollm2-135m", "SmolLM2-135M", .arch = WL_ARCH_LLAMA, .n_embd = 576, .n_layer = 30, .n_head = 9,
          .n_head_kv = 3, .n_ff = 1536, .n_vocab = 49152, .n_ctx_train = 8192, .rope_base = 100000,
          .norm_eps = 1e-5f, .tied = 1),
    SHAPE("qwen2.5-0.5b", "Qwen2.5-0.5B", .arch = WL_ARCH_QWEN2, .n_embd = 896, .n_layer = 24, .n_head = 14,
          .n_head_kv = 2, .n_ff = 4864, .n_vocab = 151936, .n_ctx_train = 32768, .rope_base = 1000000,
          .norm_eps = 1e-6f, .tied = 1, .qkv_bias = 1),
    SHAPE("llama-3.2-1b", "Llama-3.2-1B", .arch = WL_ARCH_LLAMA, .n_embd = 2048, .n_layer = 16, .n_head = 32,
          .n_head_kv = 8, .n_ff = 8192, .n_vocab = 128256, .n_ctx_train = 131072, .rope_base = 500000,
          .norm_eps = 1e-5f, .tied = 1, .llama3_rope = 1, .llama3_orig_ctx = 8192),
    SHAPE("qwen3-0.6b", "Qwen3-0.6B", .arch = WL_ARCH_QWEN3, .n_embd = 1024, .n_layer = 28, .n_head = 16,
          .n_head_kv = 8, .n_ff = 3072, .n_vocab = 151936, .head_dim = 128, .n_ctx_train = 40960,
          .rope_base = 1000000, .norm_eps = 1e-6f, .tied = 1),
    SHAPE("gemma-3-1b", "Gemma-3-1B", .arch = WL_ARCH_GEMMA3, .n_embd = 1152, .n_layer = 26, .n_head = 4,
          .n_head_kv = 1, .n_ff = 6912, .n_vocab = 262144, .head_dim = 256, .n_ctx_train = 32768,
          .rope_base = 1000000, .rope_base_swa = 10000, .norm_eps = 1e-6f, .n_swa = 512, .tied = 1),
    SHAPE("tinyllama-1.1b", "TinyLlama-1.1B", .arch = WL_ARCH_LLAMA, .n_embd = 2048, .n_layer = 22, .n_head = 32,
          .n_head_kv = 4, .n_ff = 5632, .n_vocab = 32000, .n_ctx_train = 2048, .rope_base = 10000,
          .norm_eps = 1e-5f),
    SHAPE("deepseek-r1-distill-qwen-1.5b", "DeepSeek-R1-Distill-Qwen-1.5B", .arch = WL_ARCH_QWEN2, .n_embd = 1536,
          .n_layer = 28, .n_head = 12, .n_head_kv = 2, .n_ff = 8960, .n_vocab = 151936, .n_ctx_train = 131072,
          .rope_base = 10000, .norm_eps = 1e-6f, .qkv_bias = 1),
    SHAPE("gemma-2-2b", "Gemma-2-2B", .arch = WL_ARCH_GEMMA2, .n_embd = 2304, .n_layer = 26, .n_head = 8,
          .n_head_kv = 4, .n_ff = 9216, .n_vocab = 256000, .head_dim = 256, .n_ctx_train = 8192,
          .rope_base = 10000, .norm_eps = 1e-6f, .n_swa = 4096, .attn_softcap = 50, .final_softcap = 30,
          .tied = 1),
    SHAPE("phi-3.5-mini", "Phi-3.5-mini", .arch = WL_ARCH_PHI3, .n_embd = 3072, .n_layer = 32, .n_head = 32,
          .n_head_kv = 32, .n_ff = 8192, .n_vocab = 32064, .n_ctx_train = 131072, .rope_base = 10000,
          .norm_eps = 1e-5f, .n_swa = 262144, .fused_qkv = 1, .longrope = 1, .n_ctx_orig = 4096),
    /* tiny ones, one per architecture, for the tests: each exercises what makes its
     * architecture different (GQA everywhere; windows shorter than the tests' sequences) */
    SHAPE("tiny", "tiny llama: Llama 3 RoPE divisors, untied output", .arch = WL_ARCH_LLAMA, .n_embd = 64,
          .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 128, .n_vocab = 512, .n_ctx_train = 256,
          .rope_base = 10000, .norm_eps = 1e-5f, .llama3_rope = 1, .llama3_orig_ctx = 64),
    SHAPE("tiny", "tiny qwen2: q/k/v biases, untied output", .arch = WL_ARCH_QWEN2, .n_embd = 64, .n_layer = 2,
          .n_head = 4, .n_head_kv = 2, .n_ff = 160, .n_vocab = 512, .n_ctx_train = 256, .rope_base = 1000000,
          .norm_eps = 1e-6f, .qkv_bias = 1),
    SHAPE("tiny", "tiny qwen3: q/k norms, head_dim 32 != 64/4", .arch = WL_ARCH_QWEN3, .n_embd = 64, .n_layer = 3,
          .n_head = 4, .n_head_kv = 2, .n_ff = 128, .n_vocab = 512, .head_dim = 32, .n_ctx_train = 256,
          .rope_base = 1000000, .norm_eps = 1e-6f, .tied = 1),
    /* gemma2's real caps (50 on attention scores, 30 on logits) never bite on a random model,
     * whose scores and logits stay near 1: these do, so a test notices a cap applied wrongly */
    SHAPE("tiny", "tiny gemma2: soft-capping that bites, window 8 on every other layer", .arch = WL_ARCH_GEMMA2,
          .n_embd = 64, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .n_ff = 128, .n_vocab = 512, .head_dim = 32,
          .n_ctx_train = 256, .rope_base = 10000, .norm_eps = 1e-6f, .n_swa = 8, .attn_softcap = 0.15f,
          .final_softcap = 3, .tied = 1),
    SHAPE("tiny", "tiny gemma3: window 8 on 5 of 6 layers, q/k norms", .arch = WL_ARCH_GEMMA3, .n_embd = 96,
          .n_layer = 6, .n_head = 2, .n_head_kv = 1, .n_ff = 192, .n_vocab = 512, .head_dim = 64, .n_ctx_train = 256,
          .rope_base = 1000000, .rope_base_swa = 10000, .norm_eps = 1e-6f, .n_swa = 8, .tied = 1),
    SHAPE("tiny", "tiny phi3: fused qkv and gate/up, partial rotary, LongRoPE", .arch = WL_ARCH_PHI3, .n_embd = 96,
          .n_layer = 2, .n_head = 4, .n_head_kv = 4, .n_ff = 128, .n_vocab = 512, .n_rot = 16, .n_ctx_train = 128,
          .rope_base = 10000, .norm_eps = 1e-5f, .fused_qkv = 1, .longrope = 1, .n_ctx_orig = 32),
    {NULL, NULL, {0}},
};

const wl_mkmodel_shape *wl_mkmodel_shapes(void)
{
    return SHAPES;
}

const wl_mkmodel_shape *wl_mkmodel_find_shape(int arch, const char *name)
{
    for (const wl_mkmodel_shape *s = SHAPES; s->name; s++)
        if (!strcmp(s->name, name) && (arch == 0 || s->dims.arch == arch))
            return s;
    return NULL;
}

/* ---- checks ------------------------------------------------------------------------------ */

static int head_dim_of(const wl_mkmodel_dims *d)
{
    return d->head_dim > 0 ? d->head_dim : d->n_head > 0 ? d->n_embd / d->n_head : 0;
}

int wl_mkmodel_check(const wl_mkmodel_dims *d, wandler_error *err)
{
#define CHECK(cond, ...) \
    if (!(cond))         \
    return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, __VA_ARGS__)
    CHECK(wl_arch_name(d->arch), "unknown architecture %d", d->arch);
    CHECK(d->n_embd >= 1 && d->n_embd <= 65536, "embedding width %d is out of range 1..65536", d->n_embd);
    CHECK(d->n_layer >= 1 && d->n_layer <= 1024, "%d layers is out of range 1..1024", d->n_layer);
    CHECK(d->n_head >= 1 && d->n_head <= 1024, "%d heads is out of range 1..1024", d->n_head);
    CHECK(d->n_head_kv >= 1 && d->n_head % d->n_head_kv == 0, "%d KV heads do not divide %d heads", d->n_head_kv,
          d->n_head);
    CHECK(d->head_dim > 0 || d->n_embd % d->n_head == 0, "%d heads do not divide width %d (give head_dim)",
          d->n_head, d->n_embd);
    const int hd = head_dim_of(d);
    CHECK(hd >= 2 && hd <= 4096 && hd % 2 == 0, "head_dim %d is not an even number in 2..4096", hd);
    CHECK(d->n_rot >= 0 && d->n_rot <= hd && d->n_rot % 2 == 0, "n_rot %d is not even in 0..head_dim", d->n_rot);
    CHECK(d->n_ff >= 1 && d->n_ff <= (1 << 20), "FFN width %d is out of range", d->n_ff);
    CHECK(d->n_vocab == 0 || (d->n_vocab >= 300 && d->n_vocab <= (1 << 24)),
          "vocabulary of %d tokens is out of range 300..2^24", d->n_vocab);
    CHECK(d->n_ctx_train >= 1, "context length %d < 1", d->n_ctx_train);
    CHECK(d->rope_base > 0 && d->norm_eps > 0, "rope base and norm epsilon must be positive");
    CHECK(d->n_swa >= 0 && d->swa_pattern >= 0, "negative sliding window");
    CHECK(!d->llama3_rope || d->llama3_orig_ctx > 0, "llama3 RoPE needs its original context length");
    CHECK(!d->longrope || d->n_ctx_orig > 0, "LongRoPE needs its original context length");
#undef CHECK
    return WANDLER_OK;
}

/* ---- tensors ----------------------------------------------------------------------------- */

enum kind { K_MATRIX, K_NORM, K_BIAS, K_ROPE_FREQS, K_ROPE_LONG, K_ROPE_SHORT };

typedef struct tdesc {
    char name[64];
    uint32_t n_dims;
    uint64_t ne[2];
    int kind;
    uint32_t type;
} tdesc;

typedef struct layout {
    tdesc *t;
    size_t n, cap;
} layout;

static int add(layout *l, int kind, uint64_t ne0, uint64_t ne1, const char *fmt, int il)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        tdesc *t = realloc(l->t, cap * sizeof *t);
        if (!t)
            return -1;
        l->t = t;
        l->cap = cap;
    }
    tdesc *d = &l->t[l->n++];
    snprintf(d->name, sizeof d->name, fmt, il);
    d->n_dims = ne1 > 0 ? 2 : 1;
    d->ne[0] = ne0;
    d->ne[1] = ne1 > 0 ? ne1 : 1;
    d->kind = kind;
    d->type = WL_TYPE_F32;
    return 0;
}

/* The tensors of the model, named and shaped as llama.cpp's converters write them. */
static int make_layout(const wl_mkmodel_dims *d, int n_vocab, layout *l)
{
    const int a = d->arch, hd = head_dim_of(d), n_rot = d->n_rot ? d->n_rot : hd;
    const uint64_t dim = (uint64_t)d->n_embd, q = (uint64_t)d->n_head * hd, kv = (uint64_t)d->n_head_kv * hd,
                   ff = (uint64_t)d->n_ff;
    const int gemma = a == WL_ARCH_GEMMA2 || a == WL_ARCH_GEMMA3, qk_norm = a == WL_ARCH_QWEN3 || a == WL_ARCH_GEMMA3;
    int bad = add(l, K_MATRIX, dim, (uint64_t)n_vocab, "token_embd.weight", 0);
    if (d->llama3_rope)
        bad |= add(l, K_ROPE_FREQS, (uint64_t)hd / 2, 0, "rope_freqs.weight", 0);
    if (d->longrope) {
        bad |= add(l, K_ROPE_LONG, (uint64_t)n_rot / 2, 0, "rope_factors_long.weight", 0);
        bad |= add(l, K_ROPE_SHORT, (uint64_t)n_rot / 2, 0, "rope_factors_short.weight", 0);
    }
    for (int il = 0; il < d->n_layer; il++) {
        bad |= add(l, K_NORM, dim, 0, "blk.%d.attn_norm.weight", il);
        if (d->fused_qkv) {
            bad |= add(l, K_MATRIX, dim, q + 2 * kv, "blk.%d.attn_qkv.weight", il);
            if (d->qkv_bias)
                bad |= add(l, K_BIAS, q + 2 * kv, 0, "blk.%d.attn_qkv.bias", il);
        } else {
            bad |= add(l, K_MATRIX, dim, q, "blk.%d.attn_q.weight", il);
            bad |= add(l, K_MATRIX, dim, kv, "blk.%d.attn_k.weight", il);
            bad |= add(l, K_MATRIX, dim, kv, "blk.%d.attn_v.weight", il);
            if (d->qkv_bias) {
                bad |= add(l, K_BIAS, q, 0, "blk.%d.attn_q.bias", il);
                bad |= add(l, K_BIAS, kv, 0, "blk.%d.attn_k.bias", il);
                bad |= add(l, K_BIAS, kv, 0, "blk.%d.attn_v.bias", il);
            }
        }
        if (qk_norm) {
            bad |= add(l, K_NORM, (uint64_t)hd, 0, "blk.%d.attn_q_norm.weight", il);
            bad |= add(l, K_NORM, (uint64_t)hd, 0, "blk.%d.attn_k_norm.weight", il);
        }
        bad |= add(l, K_MATRIX, q, dim, "blk.%d.attn_output.weight", il);
        if (gemma)
            bad |= add(l, K_NORM, dim, 0, "blk.%d.post_attention_norm.weight", il);
        bad |= add(l, K_NORM, dim, 0, "blk.%d.ffn_norm.weight", il);
        if (a == WL_ARCH_PHI3) {
            bad |= add(l, K_MATRIX, dim, 2 * ff, "blk.%d.ffn_up.weight", il);
        } else {
            bad |= add(l, K_MATRIX, dim, ff, "blk.%d.ffn_gate.weight", il);
            bad |= add(l, K_MATRIX, dim, ff, "blk.%d.ffn_up.weight", il);
        }
        bad |= add(l, K_MATRIX, ff, dim, "blk.%d.ffn_down.weight", il);
        if (gemma)
            bad |= add(l, K_NORM, dim, 0, "blk.%d.post_ffw_norm.weight", il);
    }
    bad |= add(l, K_NORM, dim, 0, "output_norm.weight", 0);
    if (!d->tied && a != WL_ARCH_GEMMA2)
        bad |= add(l, K_MATRIX, dim, (uint64_t)n_vocab, "output.weight", 0);
    return bad ? -1 : 0;
}

/* ---- values ------------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* n samples of N(mean, sigma) from the generator state s (Box-Muller, in double) */
static void normals(uint64_t *s, float *dst, int64_t n, float mean, float sigma)
{
    for (int64_t i = 0; i < n; i += 2) {
        const double u1 = ((double)(splitmix64(s) >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
        const double u2 = (double)(splitmix64(s) >> 11) * 0x1p-53;
        const double r = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
        dst[i] = mean + sigma * (float)(r * cos(th));
        if (i + 1 < n)
            dst[i + 1] = mean + sigma * (float)(r * sin(th));
    }
}

/* Llama 3's RoPE divisors (the converter's rule): wavelengths beyond orig / low are divided by
 * `factor`, below orig / high kept, blended between. */
static void llama3_freqs(float *dst, int n, int head_dim, float base, int orig)
{
    const double factor = 32.0, lo = 1.0, hi = 4.0;
    for (int i = 0; i < n; i++) {
        const double freq = 1.0 / pow(base, 2.0 * i / head_dim), wavelen = 2 * M_PI / freq;
        if (wavelen < orig / hi)
            dst[i] = 1.0f;
        else if (wavelen > orig / lo)
            dst[i] = (float)factor;
        else {
            const double smooth = (orig / wavelen - lo) / (hi - lo);
            dst[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
}

typedef struct gen_task {
    const tdesc *t;
    const wl_mkmodel_params *p;
    int64_t row0, nrows;
    float *fbuf;      /* (nrows, ne0) */
    char *qbuf;       /* (nrows, row bytes of t->type) */
    atomic_int failed; /* set by any thread whose rows the quantizer refused */
} gen_task;

static void gen_row(const gen_task *g, int64_t row, float *dst)
{
    const tdesc *t = g->t;
    const wl_mkmodel_dims *d = &g->p->dims;
    const int64_t n = (int64_t)t->ne[0];
    const float sigma = g->p->sigma > 0 ? g->p->sigma : 0.02f;
    uint64_t s = g->p->seed * 0x9E3779B97F4A7C15ull ^ name_hash(t->name) ^ ((uint64_t)row * 0xD1B54A32D192ED03ull);
    splitmix64(&s);
    switch (t->kind) {
    case K_MATRIX:
    case K_BIAS:
        normals(&s, dst, n, 0.0f, sigma);
        break;
    case K_NORM: /* gemma's stored norm weights mean 1 + w as well: the converter added the 1 */
        normals(&s, dst, n, 1.0f, sigma);
        break;
    case K_ROPE_FREQS:
        llama3_freqs(dst, (int)n, head_dim_of(d), d->rope_base, d->llama3_orig_ctx);
        break;
    case K_ROPE_SHORT: /* LongRoPE-like divisors: near 1 up to the original context ... */
        for (int64_t i = 0; i < n; i++)
            dst[i] = 1.0f + 0.05f * (float)i / (float)(n > 1 ? n - 1 : 1);
        break;
    case K_ROPE_LONG: /* ... growing towards the low frequencies beyond it */
        for (int64_t i = 0; i < n; i++) {
            const float x = (float)i / (float)(n > 1 ? n - 1 : 1);
            dst[i] = 1.0f + 15.0f * x * x;
        }
        break;
    }
}

static void gen_worker(void *ctx, int ith, int nth)
{
    gen_task *g = ctx;
    const int64_t per = (g->nrows + nth - 1) / nth, r0 = per * ith;
    const int64_t r1 = r0 + per < g->nrows ? r0 + per : g->nrows;
    const int64_t ne0 = (int64_t)g->t->ne[0];
    const size_t rb = wl_row_bytes(g->t->type, (uint64_t)ne0);
    for (int64_t r = r0; r < r1; r++) {
        float *row = g->fbuf + r * ne0;
        gen_row(g, g->row0 + r, row);
        if (wl_quantize_row(g->t->type, row, g->qbuf + (size_t)r * rb, ne0) != 0)
            atomic_store(&g->failed, 1);
    }
}

/* ---- vocabulary -------------------------------------------------------------------------- */

int wl_mkmodel_synth_vocab(struct gguf_writer *w, int n_vocab, int arch, wandler_error *err)
{
    if (n_vocab < 300)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "a synthetic vocabulary needs >= 300 tokens, not %d",
                        n_vocab);
    static const char ONE[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"-()";
    static const char LOW[] = "abcdefghijklmnopqrstuvwxyz";
    static const char SPACE[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's space */
    const size_t n = (size_t)n_vocab;
    char **tok = calloc(n, sizeof *tok);
    float *score = malloc(n * sizeof *score);
    int32_t *type = malloc(n * sizeof *type);
    char *text = malloc(n * 16); /* every token fits 16 bytes */
    int rc = WANDLER_OK;
    if (!tok || !score || !type || !text) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    size_t k = 0;
#define PUT(ty, ...) (tok[k] = text + k * 16, snprintf(tok[k], 16, __VA_ARGS__), type[k] = ty, \
                      score[k] = -(float)k, k++)
    PUT(WL_TOKEN_UNKNOWN, "<unk>");
    PUT(WL_TOKEN_CONTROL, "<s>");
    PUT(WL_TOKEN_CONTROL, "</s>");
    for (int b = 0; b < 256; b++)
        PUT(WL_TOKEN_BYTE, "<0x%02X>", b);
    for (size_t i = 0; i < 3 + 256; i++)
        score[i] = 0.0f;
    PUT(WL_TOKEN_NORMAL, "%s", SPACE);
    /* pieces of length 1, 2, 3, ...: each with and without the leading space */
    for (int len = 1; k < n; len++) {
        const char *alpha = len == 1 ? ONE : LOW;
        const size_t na = strlen(alpha);
        size_t combos = 1;
        for (int i = 0; i < len; i++)
            combos *= na;
        for (size_t c = 0; c < combos && k < n; c++) {
            char piece[8];
            size_t x = c;
            for (int i = len - 1; i >= 0; i--, x /= na)
                piece[i] = alpha[x % na];
            piece[len] = 0;
            PUT(WL_TOKEN_NORMAL, "%s%s", SPACE, piece);
            if (k < n)
                PUT(WL_TOKEN_NORMAL, "%s", piece);
        }
    }
#undef PUT
    if (arch == WL_ARCH_PHI3) {
        /* llama.cpp looks this token up in any model whose name says phi-3 */
        snprintf(tok[n - 1], 16, "<|endoftext|>");
        type[n - 1] = WL_TOKEN_CONTROL;
        score[n - 1] = 0.0f;
    }
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", err)) ||
        (rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", "default", err)) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, n, err)) ||
        (rc = gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, score, n, err)) ||
        (rc = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, type, n, err)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, err)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1, err)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2, err)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false, err)))
        goto done;
done:
    free(tok);
    free(score);
    free(type);
    free(text);
    return rc;
}

/* The token count of the vocabulary in the GGUF file at path. */
static int vocab_size_of(const char *path, int *n_vocab, wandler_error *err)
{
    gguf_file *f;
    int rc = gguf_open(path, &f, err);
    if (rc)
        return rc;
    uint32_t et;
    uint64_t n;
    if (!(rc = gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n, err))) {
        if (n < 1 || n > (1u << 24))
            rc = wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB, "%s: %llu tokens", path, (unsigned long long)n);
        else
            *n_vocab = (int)n;
    }
    gguf_close(f);
    return rc;
}

/* Copies the tokenizer.* keys of the GGUF file at path. */
static int copy_vocab(gguf_writer *w, const char *path, wandler_error *err)
{
    gguf_file *f;
    int rc = gguf_open(path, &f, err);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < gguf_n_kv(f) && !rc; i++)
        if (!strncmp(gguf_kv_key(f, i), "tokenizer.", 10))
            rc = gguf_writer_copy_kv(w, f, i, err);
    gguf_close(f);
    return rc;
}

/* ---- metadata ---------------------------------------------------------------------------- */

static int set_arch_keys(gguf_writer *w, const wl_mkmodel_dims *d, int n_vocab, wandler_error *err)
{
    const char *a = wl_arch_name(d->arch);
    const int hd = head_dim_of(d), n_rot = d->n_rot ? d->n_rot : hd;
    const int gemma = d->arch == WL_ARCH_GEMMA2 || d->arch == WL_ARCH_GEMMA3;
    char key[128];
    int rc = WANDLER_OK;
#define U32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), rc = rc ? rc : gguf_writer_set_u32(w, key, (uint32_t)(v), err))
#define F32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), rc = rc ? rc : gguf_writer_set_f32(w, key, (float)(v), err))
    U32("context_length", d->n_ctx_train);
    U32("embedding_length", d->n_embd);
    U32("block_count", d->n_layer);
    U32("feed_forward_length", d->n_ff);
    U32("attention.head_count", d->n_head);
    U32("attention.head_count_kv", d->n_head_kv);
    F32("rope.freq_base", d->rope_base);
    F32("attention.layer_norm_rms_epsilon", d->norm_eps);
    if (d->head_dim > 0 || gemma || d->arch == WL_ARCH_QWEN3) {
        U32("attention.key_length", hd);
        U32("attention.value_length", hd);
    }
    if (d->arch == WL_ARCH_LLAMA || d->arch == WL_ARCH_PHI3 || d->n_rot)
        U32("rope.dimension_count", n_rot);
    if (d->arch == WL_ARCH_LLAMA)
        U32("vocab_size", n_vocab);
    if (gemma || d->arch == WL_ARCH_PHI3)
        U32("attention.sliding_window", d->n_swa);
    if (d->swa_pattern)
        U32("attention.sliding_window_pattern", d->swa_pattern);
    if (d->arch == WL_ARCH_GEMMA3)
        F32("rope.freq_base_swa", d->rope_base_swa > 0 ? d->rope_base_swa : 10000.0f);
    if (d->arch == WL_ARCH_GEMMA2) {
        F32("attn_logit_softcapping", d->attn_softcap);
        F32("final_logit_softcapping", d->final_softcap);
    } else if (d->arch == WL_ARCH_GEMMA3 && d->final_softcap > 0) {
        F32("final_logit_softcapping", d->final_softcap);
    }
    if (d->longrope) {
        /* the converter's attention factor for LongRoPE: sqrt(1 + ln(scale) / ln(orig)) */
        const double scale = (double)d->n_ctx_train / d->n_ctx_orig;
        U32("rope.scaling.original_context_length", d->n_ctx_orig);
        F32("rope.scaling.attn_factor", scale > 1.0 ? sqrt(1.0 + log(scale) / log((double)d->n_ctx_orig)) : 1.0);
    }
#undef U32
#undef F32
    return rc;
}

/* ---- the file ---------------------------------------------------------------------------- */

int wl_mkmodel(const wl_mkmodel_params *p, const char *out, wandler_error *err)
{
    const wl_mkmodel_dims *d = &p->dims;
    int rc = wl_mkmodel_check(d, err);
    if (rc)
        return rc;
    const wl_ftype *ft = wl_ftype_find(p->ftype ? p->ftype : "F32");
    if (!ft)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "unknown file type '%s'", p->ftype);

    gguf_writer *w = NULL;
    layout l = {0};
    size_t *order = NULL;
    const char **names = NULL;
    float *fbuf = NULL;
    char *qbuf = NULL;
    wl_pool *pool = NULL;
    FILE *fp = NULL;
    char *vbuf = NULL; /* fp's stdio buffer (GGUF_WRITE_STDIO_BUFFER) */
    wl_quant_plan plan;
    int have_plan = 0;
    char msg[512];

    if ((rc = gguf_writer_new(&w, err)))
        return rc;
    const char *arch = wl_arch_name(d->arch);
    char name[128];
    snprintf(name, sizeof name, "%s", p->name ? p->name : "wandler-mkmodel");
    if ((rc = gguf_writer_set_str(w, "general.architecture", arch, err)) ||
        (rc = gguf_writer_set_str(w, "general.type", "model", err)) ||
        (rc = gguf_writer_set_str(w, "general.name", name, err)))
        goto done;
    /* a copied vocabulary decides the vocabulary size */
    int n_vocab = d->n_vocab;
    if (p->vocab_path && (rc = vocab_size_of(p->vocab_path, &n_vocab, err)))
        goto done;
    if ((rc = set_arch_keys(w, d, n_vocab, err)))
        goto done;
    rc = p->vocab_path ? copy_vocab(w, p->vocab_path, err) : wl_mkmodel_synth_vocab(w, n_vocab, d->arch, err);
    /* last, where llama-quantize puts them: so a model made in a format is byte for byte the
     * F32 one quantized to it */
    if (rc || (rc = gguf_writer_set_u32(w, "general.quantization_version", 2, err)) ||
        (rc = gguf_writer_set_u32(w, "general.file_type", ft->ftype, err)))
        goto done;

    /* tensors, in llama.cpp's order, each with the format the file type's rules give it */
    if (make_layout(d, n_vocab, &l) != 0) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    names = malloc(l.n * sizeof *names);
    order = malloc(l.n * sizeof *order);
    if (!names || !order) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < l.n; i++)
        names[i] = l.t[i].name;
    if ((rc = wl_quant_order(names, l.n, order, err)))
        goto done;
    wl_quant_plan_init(&plan, ft, d->n_layer, d->n_head / d->n_head_kv, 0, names, l.n);
    have_plan = 1;
    for (int i = 0; i < p->n_tensor_types; i++)
        if ((rc = wl_quant_plan_add_override(&plan, p->tensor_types[i], err)))
            goto done;
    uint64_t widest = 1;
    for (size_t k = 0; k < l.n; k++) {
        tdesc *t = &l.t[order[k]];
        t->type = wl_quant_plan_type(&plan, t->name, t->n_dims, t->ne, WL_TYPE_F32, msg, sizeof msg);
        if (msg[0] && p->note)
            p->note(p->note_ctx, msg);
        if (!wl_convert_available(t->type) || wl_row_bytes(t->type, t->ne[0]) == 0) {
            rc = wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%s' needs format %s, which the quantizer does not write yet",
                          t->name, wl_type_name(t->type));
            goto done;
        }
        if ((rc = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL, err)))
            goto done;
        widest = t->ne[0] > widest ? t->ne[0] : widest;
    }

    const uint64_t slab = SLAB_VALUES / widest ? SLAB_VALUES / widest : 1;
    fbuf = malloc(slab * widest * sizeof(float));
    qbuf = malloc(slab * widest * sizeof(float));
    if (!fbuf || !qbuf) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if ((rc = wl_pool_create(p->n_threads > 0 ? p->n_threads : wl_cpu_count(), &pool, err)))
        goto done;
    fp = fopen(out, "wb");
    if (!fp) {
        rc = wl_error(err, WANDLER_ERR_IO, "cannot create %s: %s", out, strerror(errno));
        goto done;
    }
    if ((vbuf = malloc(GGUF_WRITE_STDIO_BUFFER)))
        (void)setvbuf(fp, vbuf, _IOFBF, GGUF_WRITE_STDIO_BUFFER);
    if ((rc = gguf_writer_begin(w, fp, err)))
        goto done;
    for (size_t k = 0; k < l.n && !rc; k++) {
        const tdesc *t = &l.t[order[k]];
        const size_t rb = wl_row_bytes(t->type, t->ne[0]);
        for (uint64_t r = 0; r < t->ne[1] && !rc; r += slab) {
            gen_task g = {.t = t, .p = p, .row0 = (int64_t)r,
                          .nrows = (int64_t)(t->ne[1] - r < slab ? t->ne[1] - r : slab), .fbuf = fbuf, .qbuf = qbuf};
            atomic_init(&g.failed, 0);
            wl_pool_run(pool, gen_worker, &g);
            if (atomic_load(&g.failed))
                rc = wl_error(err, WANDLER_ERR_INTERNAL, "tensor '%s': the quantizer refused %s rows", t->name,
                              wl_type_name(t->type));
            else
                rc = gguf_writer_write_data(w, qbuf, (size_t)g.nrows * rb, err);
        }
    }
    wandler_error end_err;
    int rc_end = gguf_writer_end(w, rc ? &end_err : err);
    if (!rc)
        rc = rc_end;

done:
    if (fp && fclose(fp) != 0 && !rc)
        rc = wl_error(err, WANDLER_ERR_IO, "cannot write %s: %s", out, strerror(errno));
    free(vbuf); /* after fclose: the stream wrote through it */
    if (rc && fp)
        remove(out);
    wl_pool_destroy(pool);
    if (have_plan)
        wl_quant_plan_free(&plan);
    gguf_writer_free(w);
    free(l.t);
    free(names);
    free(order);
    free(fbuf);
    free(qbuf);
    return rc;
}
