/* ref_forward.c - the plain F32 reference forward pass (see ref_forward.h).
 *
 *   x = embed(token) * (gemma ? sqrt(dim) : 1)
 *   per layer:  h = rmsnorm(x) * attn_norm
 *               q = Wq h + bq, k = Wk h + bk, v = Wv h + bv      (split from Wqkv when fused)
 *               q, k = rmsnorm per head * q_norm / k_norm        (when present)
 *               q, k = rope(q), rope(k)                           (pairs adjacent or NeoX halves)
 *               a = softmax(q.k * scale [softcapped]) v           over the visible positions
 *               x += post_norm(Wo a)
 *               h = rmsnorm(x) * ffn_norm
 *               x += post_norm(Wdown (act(Wgate h) * Wup h))     (gate | up split when fused)
 *   logits = softcap(Wout rmsnorm(x) * out_norm + bout)
 */
#include "ref_forward.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"

typedef struct ref_layer {
    float *attn_norm;                  /* (dim) */
    float *wq, *wk, *wv;               /* (q_dim, dim), (kv_dim, dim), (kv_dim, dim) */
    float *bq, *bk, *bv;               /* or NULL */
    float *q_norm, *k_norm;            /* (hd) or NULL */
    float *wo;                         /* (dim, q_dim) */
    float *post_attn;                  /* (dim) or NULL */
    float *ffn_norm;                   /* (dim) */
    float *w_gate, *w_up;              /* (ff, dim) */
    float *w_down;                     /* (dim, ff) */
    float *post_ffn;                   /* (dim) or NULL */
    int swa;
} ref_layer;

struct ref_model {
    char arch[32];
    int n_vocab, dim, n_layer, n_head, n_head_kv, hd, ff, n_rot, n_ctx;
    int neox, gelu, n_swa;
    float eps, rope_base, rope_base_swa, rope_scale, rope_scale_swa, attn_factor;
    float embd_scale, kq_scale, attn_softcap, final_softcap;
    float *tok_embd, *out_norm, *output, *output_b, *rope_ff;
    ref_layer *L;
    float *kc, *vc;                    /* (n_layer, n_ctx, kv_dim) */
    float *x, *h, *q, *k, *v, *att, *g, *u, *tmp, *score;
    void **owned;                      /* every allocation, freed together */
    int n_owned, cap_owned;
};

static void *own(ref_model *m, size_t bytes)
{
    if (m->n_owned == m->cap_owned) {
        m->cap_owned = m->cap_owned ? 2 * m->cap_owned : 256;
        m->owned = realloc(m->owned, (size_t)m->cap_owned * sizeof *m->owned);
    }
    void *p = calloc(1, bytes ? bytes : 1);
    m->owned[m->n_owned++] = p;
    return p;
}

static int fail(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static double keyf(const gguf_file *f, const char *arch, const char *suffix, double dflt)
{
    char key[128];
    double v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_float(f, key, &v, NULL) == 0 ? v : dflt;
}

static int keyi(const gguf_file *f, const char *arch, const char *suffix, int dflt)
{
    char key[128];
    int64_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_int(f, key, &v, NULL) == 0 ? (int)v : dflt;
}

static int has_key(const gguf_file *f, const char *arch, const char *suffix)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_find_key(f, key) >= 0;
}

/* The tensor as F32 (all elements), or NULL when absent. */
static float *load(ref_model *m, const gguf_file *f, const char *name)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t)
        return NULL;
    const int64_t ne0 = (int64_t)t->ne[0], rows = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    const size_t rb = wl_row_bytes(t->type, t->ne[0]);
    float *out = own(m, (size_t)(ne0 * rows) * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        wl_dequantize_row(t->type, (const char *)t->data + (size_t)r * rb, out + r * ne0, ne0);
    return out;
}

static float *loadf(ref_model *m, const gguf_file *f, const char *fmt, int il)
{
    char name[96];
    snprintf(name, sizeof name, fmt, il);
    return load(m, f, name);
}

int ref_load(const char *path, int n_ctx, ref_model **out, char *msg, size_t cap)
{
    *out = NULL;
    wandler_error err;
    gguf_file *f;
    if (gguf_open(path, &f, &err) != 0)
        return fail(msg, cap, "%s", err.message);
    ref_model *m = calloc(1, sizeof *m);
    gguf_str a;
    if (gguf_get_str(f, "general.architecture", &a, NULL) != 0 || a.len >= sizeof m->arch) {
        gguf_close(f);
        free(m);
        return fail(msg, cap, "no architecture");
    }
    memcpy(m->arch, a.ptr, a.len);
    const char *arch = m->arch;
    const int gemma2 = !strcmp(arch, "gemma2"), gemma3 = !strcmp(arch, "gemma3");
    m->n_ctx = n_ctx;
    m->dim = keyi(f, arch, "embedding_length", 0);
    m->n_layer = keyi(f, arch, "block_count", 0);
    m->n_head = keyi(f, arch, "attention.head_count", 0);
    m->n_head_kv = keyi(f, arch, "attention.head_count_kv", m->n_head);
    m->ff = keyi(f, arch, "feed_forward_length", 0);
    m->hd = keyi(f, arch, "attention.key_length", m->n_head ? m->dim / m->n_head : 0);
    m->n_rot = keyi(f, arch, "rope.dimension_count", m->hd);
    m->eps = (float)keyf(f, arch, "attention.layer_norm_rms_epsilon", 1e-5);
    m->rope_base = (float)keyf(f, arch, "rope.freq_base", 10000.0);
    m->attn_factor = (float)keyf(f, arch, "rope.scaling.attn_factor", 1.0);
    double factor = keyf(f, arch, "rope.scaling.factor", 0.0);
    m->rope_scale = factor > 0 ? (float)(1.0 / factor) : 1.0f;
    m->neox = strcmp(arch, "llama") != 0;
    m->gelu = gemma2 || gemma3;
    m->embd_scale = m->gelu ? sqrtf((float)m->dim) : 1.0f;
    m->kq_scale = 1.0f / sqrtf((float)m->hd);
    m->rope_base_swa = m->rope_base;
    m->rope_scale_swa = m->rope_scale;
    if (gemma2) {
        m->n_swa = keyi(f, arch, "attention.sliding_window", 4096);
        m->attn_softcap = (float)keyf(f, arch, "attn_logit_softcapping", 50.0);
        m->final_softcap = (float)keyf(f, arch, "final_logit_softcapping", 30.0);
    } else if (gemma3) {
        m->n_swa = has_key(f, arch, "attention.sliding_window") ? keyi(f, arch, "attention.sliding_window", 0) : 0;
        m->rope_base_swa = (float)keyf(f, arch, "rope.freq_base_swa", 10000.0);
        m->rope_scale_swa = 1.0f;
        m->final_softcap = (float)keyf(f, arch, "final_logit_softcapping", 0.0);
    }
    if (m->gelu && m->n_layer == (gemma2 ? 46 : 62)) /* the 27B models: query_pre_attn_scalar = dim / heads */
        m->kq_scale = 1.0f / sqrtf((float)(m->dim / m->n_head));
    const int pattern = keyi(f, arch, "attention.sliding_window_pattern", gemma2 ? 2 : 6);

    m->tok_embd = load(m, f, "token_embd.weight");
    m->out_norm = load(m, f, "output_norm.weight");
    m->output = gemma2 ? NULL : load(m, f, "output.weight");
    if (!m->output)
        m->output = m->tok_embd;
    m->output_b = load(m, f, "output.bias");
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!m->tok_embd || !m->out_norm || !m->dim || !m->n_layer || !m->hd) {
        gguf_close(f);
        ref_free(m);
        return fail(msg, cap, "%s: not a model the reference knows", path);
    }
    m->n_vocab = (int)te->ne[1];
    /* RoPE divisors: Llama 3's, or LongRoPE's (long ones when the context outgrows the original) */
    m->rope_ff = load(m, f, "rope_freqs.weight");
    if (!m->rope_ff) {
        int orig = keyi(f, arch, "rope.scaling.original_context_length", keyi(f, arch, "context_length", 0));
        m->rope_ff = load(m, f, n_ctx > orig ? "rope_factors_long.weight" : "rope_factors_short.weight");
    }

    const int q_dim = m->n_head * m->hd, kv_dim = m->n_head_kv * m->hd;
    m->L = own(m, (size_t)m->n_layer * sizeof *m->L);
    for (int il = 0; il < m->n_layer; il++) {
        ref_layer *L = &m->L[il];
        L->attn_norm = loadf(m, f, "blk.%d.attn_norm.weight", il);
        float *qkv = loadf(m, f, "blk.%d.attn_qkv.weight", il);
        if (qkv) { /* rows: q, then k, then v */
            L->wq = qkv;
            L->wk = qkv + (size_t)q_dim * m->dim;
            L->wv = qkv + (size_t)(q_dim + kv_dim) * m->dim;
            float *b = loadf(m, f, "blk.%d.attn_qkv.bias", il);
            if (b) {
                L->bq = b;
                L->bk = b + q_dim;
                L->bv = b + q_dim + kv_dim;
            }
        } else {
            L->wq = loadf(m, f, "blk.%d.attn_q.weight", il);
            L->wk = loadf(m, f, "blk.%d.attn_k.weight", il);
            L->wv = loadf(m, f, "blk.%d.attn_v.weight", il);
            L->bq = loadf(m, f, "blk.%d.attn_q.bias", il);
            L->bk = loadf(m, f, "blk.%d.attn_k.bias", il);
            L->bv = loadf(m, f, "blk.%d.attn_v.bias", il);
        }
        L->q_norm = loadf(m, f, "blk.%d.attn_q_norm.weight", il);
        L->k_norm = loadf(m, f, "blk.%d.attn_k_norm.weight", il);
        L->wo = loadf(m, f, "blk.%d.attn_output.weight", il);
        L->post_attn = loadf(m, f, "blk.%d.post_attention_norm.weight", il);
        L->ffn_norm = loadf(m, f, "blk.%d.ffn_norm.weight", il);
        L->w_gate = loadf(m, f, "blk.%d.ffn_gate.weight", il);
        L->w_up = loadf(m, f, "blk.%d.ffn_up.weight", il);
        if (!L->w_gate && L->w_up) { /* fused: gate rows, then up rows */
            L->w_gate = L->w_up;
            L->w_up = L->w_up + (size_t)m->ff * m->dim;
        }
        L->w_down = loadf(m, f, "blk.%d.ffn_down.weight", il);
        L->post_ffn = loadf(m, f, "blk.%d.post_ffw_norm.weight", il);
        L->swa = m->n_swa > 0 && il % pattern < pattern - 1;
        if (!L->attn_norm || !L->wq || !L->wk || !L->wv || !L->wo || !L->ffn_norm || !L->w_gate || !L->w_up ||
            !L->w_down) {
            gguf_close(f);
            ref_free(m);
            return fail(msg, cap, "%s: layer %d is incomplete", path, il);
        }
    }
    gguf_close(f);

    const int widest = q_dim > m->dim ? q_dim : m->dim;
    m->kc = own(m, (size_t)m->n_layer * n_ctx * kv_dim * sizeof(float));
    m->vc = own(m, (size_t)m->n_layer * n_ctx * kv_dim * sizeof(float));
    m->x = own(m, (size_t)m->dim * sizeof(float));
    m->h = own(m, (size_t)m->dim * sizeof(float));
    m->q = own(m, (size_t)q_dim * sizeof(float));
    m->k = own(m, (size_t)kv_dim * sizeof(float));
    m->v = own(m, (size_t)kv_dim * sizeof(float));
    m->att = own(m, (size_t)q_dim * sizeof(float));
    m->g = own(m, (size_t)m->ff * sizeof(float));
    m->u = own(m, (size_t)m->ff * sizeof(float));
    m->tmp = own(m, (size_t)widest * sizeof(float));
    m->score = own(m, (size_t)n_ctx * sizeof(float));
    *out = m;
    return 0;
}

void ref_free(ref_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m);
}

int ref_n_vocab(const ref_model *m)
{
    return m->n_vocab;
}

/* ---- the steps ---- */

/* y[rows] = W[rows][n] x[n] (+ b) */
static void matvec(float *y, const float *W, const float *x, int rows, int n, const float *b)
{
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < n; c++)
            s += (double)W[(size_t)r * n + c] * x[c];
        y[r] = (float)s + (b ? b[r] : 0.0f);
    }
}

/* y = x / rms(x) * w (y may be x) */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++)
        y[i] = (float)(x[i] * s) * w[i];
}

/* rotates the first n_rot dims of one head at position pos */
static void rope(const ref_model *m, float *v, int pos, int swa)
{
    const double base = swa ? m->rope_base_swa : m->rope_base, scale = swa ? m->rope_scale_swa : m->rope_scale;
    const int half = m->n_rot / 2;
    for (int i = 0; i < half; i++) {
        double theta = pos * pow(base, -2.0 * i / m->n_rot) * scale;
        if (m->rope_ff)
            theta /= m->rope_ff[i];
        const float c = (float)(cos(theta) * m->attn_factor), s = (float)(sin(theta) * m->attn_factor);
        const int a = m->neox ? i : 2 * i, b = m->neox ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}

static float act(const ref_model *m, float x)
{
    if (m->gelu)
        return 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x)));
    return x / (1.0f + expf(-x));
}

void ref_forward(ref_model *m, int32_t token, int pos, float *logits)
{
    const int dim = m->dim, hd = m->hd, q_dim = m->n_head * hd, kv_dim = m->n_head_kv * hd;
    const int group = m->n_head / m->n_head_kv;
    for (int i = 0; i < dim; i++)
        m->x[i] = m->tok_embd[(size_t)token * dim + i] * m->embd_scale;

    for (int il = 0; il < m->n_layer; il++) {
        const ref_layer *L = &m->L[il];
        rmsnorm(m->h, m->x, L->attn_norm, dim, m->eps);
        matvec(m->q, L->wq, m->h, q_dim, dim, L->bq);
        matvec(m->k, L->wk, m->h, kv_dim, dim, L->bk);
        matvec(m->v, L->wv, m->h, kv_dim, dim, L->bv);
        for (int h = 0; h < m->n_head; h++) {
            if (L->q_norm)
                rmsnorm(m->q + h * hd, m->q + h * hd, L->q_norm, hd, m->eps);
            rope(m, m->q + h * hd, pos, L->swa);
        }
        for (int h = 0; h < m->n_head_kv; h++) {
            if (L->k_norm)
                rmsnorm(m->k + h * hd, m->k + h * hd, L->k_norm, hd, m->eps);
            rope(m, m->k + h * hd, pos, L->swa);
        }
        float *kc = m->kc + (size_t)il * m->n_ctx * kv_dim, *vc = m->vc + (size_t)il * m->n_ctx * kv_dim;
        memcpy(kc + (size_t)pos * kv_dim, m->k, (size_t)kv_dim * sizeof(float));
        memcpy(vc + (size_t)pos * kv_dim, m->v, (size_t)kv_dim * sizeof(float));

        /* attention: positions p <= pos, and p > pos - n_swa in a sliding layer */
        const int first = L->swa && pos - m->n_swa + 1 > 0 ? pos - m->n_swa + 1 : 0;
        for (int h = 0; h < m->n_head; h++) {
            const float *q = m->q + h * hd;
            const int kvh = h / group;
            float max = -INFINITY;
            for (int p = first; p <= pos; p++) {
                double s = 0;
                for (int i = 0; i < hd; i++)
                    s += (double)q[i] * kc[(size_t)p * kv_dim + kvh * hd + i];
                float sc = (float)s * m->kq_scale;
                if (m->attn_softcap > 0)
                    sc = m->attn_softcap * tanhf(sc / m->attn_softcap);
                m->score[p] = sc;
                max = sc > max ? sc : max;
            }
            double sum = 0;
            for (int p = first; p <= pos; p++) {
                m->score[p] = expf(m->score[p] - max);
                sum += m->score[p];
            }
            for (int i = 0; i < hd; i++) {
                double a = 0;
                for (int p = first; p <= pos; p++)
                    a += (double)m->score[p] * vc[(size_t)p * kv_dim + kvh * hd + i];
                m->att[h * hd + i] = (float)(a / sum);
            }
        }
        matvec(m->tmp, L->wo, m->att, dim, q_dim, NULL);
        if (L->post_attn)
            rmsnorm(m->tmp, m->tmp, L->post_attn, dim, m->eps);
        for (int i = 0; i < dim; i++)
            m->x[i] += m->tmp[i];

        rmsnorm(m->h, m->x, L->ffn_norm, dim, m->eps);
        matvec(m->g, L->w_gate, m->h, m->ff, dim, NULL);
        matvec(m->u, L->w_up, m->h, m->ff, dim, NULL);
        for (int i = 0; i < m->ff; i++)
            m->g[i] = act(m, m->g[i]) * m->u[i];
        matvec(m->tmp, L->w_down, m->g, dim, m->ff, NULL);
        if (L->post_ffn)
            rmsnorm(m->tmp, m->tmp, L->post_ffn, dim, m->eps);
        for (int i = 0; i < dim; i++)
            m->x[i] += m->tmp[i];
    }
    rmsnorm(m->h, m->x, m->out_norm, dim, m->eps);
    matvec(logits, m->output, m->h, m->n_vocab, dim, m->output_b);
    if (m->final_softcap > 0)
        for (int i = 0; i < m->n_vocab; i++)
            logits[i] = m->final_softcap * tanhf(logits[i] / m->final_softcap);
}
