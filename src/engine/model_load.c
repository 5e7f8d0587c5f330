/* model_load.c - from a parsed GGUF file to a wl_model: hyper-parameters and weight binding.
 *
 * The GGUF reader has already checked that every tensor lies inside the file; here we check
 * that the model makes sense: keys present with the right types, hyper-parameters in range and
 * consistent, every tensor present with the shape the hyper-parameters imply and a weight format
 * the kernels can run.
 *
 * Key and tensor names, defaults and the meaning of each value follow what llama.cpp's
 * converters write and its loader reads, architecture by architecture:
 *
 *   llama   RMSNorm, RoPE on adjacent pairs, SwiGLU; optional Llama 3 frequency divisors
 *           (rope_freqs.weight) and linear RoPE scaling.
 *   qwen2   llama + NeoX RoPE + optional biases on q, k and v (and on the output).
 *   qwen3   qwen2 without the biases + RMSNorm of every query and key head (attn_q_norm,
 *           attn_k_norm), head_dim from attention.key_length.
 *   gemma2  embeddings * sqrt(dim), NeoX RoPE, GeGLU, norms before and after attention and
 *           feed-forward (their weights already hold gemma's 1 + w: the converter adds the 1),
 *           attention and final logit soft-capping, sliding-window attention on every other
 *           layer (starting with layer 0), queries scaled before attention, output tied.
 *   gemma3  gemma2 without attention soft-capping, plus per-head q/k norms; 5 sliding-window
 *           layers to 1 global one, the sliding ones with their own RoPE base (10000).
 *   phi3    fused attn_qkv and fused ffn_up (gate rows then up rows), NeoX RoPE over
 *           rope.dimension_count dims, LongRoPE factors (rope_factors_long/short) with
 *           rope.scaling.attn_factor. Its sliding_window is ignored, as llama.cpp does.
 * Every architecture also takes a fused attn_qkv in place of attn_q/k/v (llama.cpp does). Biases
 * that llama.cpp adds in other variants (attn_output, ffn_*, norm biases) are refused rather
 * than ignored. */
#include "engine/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/quant.h"
#include "engine/repack.h"
#include "engine/tensor_type.h"
#include "util/error.h"

/* Bounds that keep every later size computation far from overflow while admitting every real
 * model (Llama 3.1 405B: dim 16384, 126 layers, 128 heads, FFN 53248, vocab 128256). */
#define MAX_EMBD 65536
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_HEAD_DIM 4096
#define MAX_FF (1 << 20)
#define MAX_VOCAB (1 << 24)

/* ---- architectures ---------------------------------------------------------------------- */

#define A_QK_NORM 1u    /* attn_q_norm / attn_k_norm per layer (required) */
#define A_POST_NORMS 2u /* post_attention_norm / post_ffw_norm per layer (required) */
#define A_FUSED_UP 4u   /* ffn_up holds gate and up (2 n_ff rows); there is no ffn_gate */
#define A_TIED 8u       /* the output is always the embedding (output.weight is not read) */
#define A_EMBD_SCALE 16u/* embeddings * sqrt(n_embd) */

typedef struct arch_desc {
    int id;
    const char *name;
    int rope_neox;
    int ffn_act;
    unsigned flags;
} arch_desc;

static const arch_desc ARCHS[] = {
    {WL_ARCH_LLAMA, "llama", 0, WL_ACT_SILU, 0},
    {WL_ARCH_QWEN2, "qwen2", 1, WL_ACT_SILU, 0},
    {WL_ARCH_QWEN3, "qwen3", 1, WL_ACT_SILU, A_QK_NORM},
    {WL_ARCH_GEMMA2, "gemma2", 1, WL_ACT_GELU, A_POST_NORMS | A_TIED | A_EMBD_SCALE},
    {WL_ARCH_GEMMA3, "gemma3", 1, WL_ACT_GELU, A_QK_NORM | A_POST_NORMS | A_EMBD_SCALE},
    {WL_ARCH_PHI3, "phi3", 1, WL_ACT_SILU, A_FUSED_UP},
};
#define N_ARCHS (sizeof ARCHS / sizeof ARCHS[0])

static const arch_desc *arch_desc_of(int arch)
{
    for (size_t i = 0; i < N_ARCHS; i++)
        if (ARCHS[i].id == arch)
            return &ARCHS[i];
    return NULL;
}

const char *wl_arch_name(int arch)
{
    const arch_desc *d = arch_desc_of(arch);
    return d ? d->name : NULL;
}

int wl_arch_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < N_ARCHS; i++)
        if (strlen(ARCHS[i].name) == len && memcmp(ARCHS[i].name, name, len) == 0)
            return ARCHS[i].id;
    return 0;
}

/* ---- keys ------------------------------------------------------------------------------- */

static int get_key_int(const gguf_file *f, const char *arch, const char *suffix, int required,
                       int64_t dflt, int64_t lo, int64_t hi, int *out, wandler_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    int rc = gguf_get_int(f, key, &v, err);
    if (rc == WANDLER_ERR_MODEL_MISSING_KEY && !required) {
        v = dflt;
    } else if (rc != WANDLER_OK) {
        return rc;
    }
    if (v < lo || v > hi)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM, "%s = %lld is out of range [%lld, %lld]",
                        key, (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return WANDLER_OK;
}

static int get_key_float(const gguf_file *f, const char *arch, const char *suffix, int required,
                         double dflt, double lo, double hi, float *out, wandler_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double v;
    int rc = gguf_get_float(f, key, &v, err);
    if (rc == WANDLER_ERR_MODEL_MISSING_KEY && !required) {
        v = dflt;
    } else if (rc != WANDLER_OK) {
        return rc;
    }
    if (!(v >= lo && v <= hi)) /* also rejects NaN */
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM, "%s = %g is out of range [%g, %g]", key, v,
                        lo, hi);
    *out = (float)v;
    return WANDLER_OK;
}

static int has_key(const gguf_file *f, const char *arch, const char *suffix)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_find_key(f, key) >= 0;
}

/* The dimensions every architecture shares. */
static int read_common(const gguf_file *f, const char *arch, wl_hparams *hp, wandler_error *err)
{
    int rc;
    if ((rc = get_key_int(f, arch, "context_length", 1, 0, 1, 1 << 24, &hp->n_ctx_train, err)) ||
        (rc = get_key_int(f, arch, "embedding_length", 1, 0, 1, MAX_EMBD, &hp->n_embd, err)) ||
        (rc = get_key_int(f, arch, "block_count", 1, 0, 1, MAX_LAYERS, &hp->n_layer, err)) ||
        (rc = get_key_int(f, arch, "feed_forward_length", 1, 0, 1, MAX_FF, &hp->n_ff, err)) ||
        (rc = get_key_int(f, arch, "attention.head_count", 1, 0, 1, MAX_HEADS, &hp->n_head, err)))
        return rc;
    if ((rc = get_key_int(f, arch, "attention.head_count_kv", 0, hp->n_head, 1, MAX_HEADS,
                          &hp->n_head_kv, err)) ||
        (rc = get_key_float(f, arch, "attention.layer_norm_rms_epsilon", 1, 0, 1e-12, 1.0,
                            &hp->norm_eps, err)) ||
        (rc = get_key_float(f, arch, "rope.freq_base", 0, 10000.0, 1e-3, 1e12, &hp->rope_base, err)))
        return rc;
    if (hp->n_head % hp->n_head_kv != 0)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM,
                        "%s.attention.head_count_kv = %d does not divide %s.attention.head_count = %d",
                        arch, hp->n_head_kv, arch, hp->n_head);
    /* head size: attention.key_length, else dim / heads (which must then divide evenly) */
    if (has_key(f, arch, "attention.key_length")) {
        if ((rc = get_key_int(f, arch, "attention.key_length", 1, 0, 2, MAX_HEAD_DIM, &hp->head_dim, err)))
            return rc;
    } else {
        if (hp->n_embd % hp->n_head != 0)
            return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM,
                            "%s.attention.head_count = %d does not divide %s.embedding_length = %d", arch,
                            hp->n_head, arch, hp->n_embd);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    int v_len = 0;
    if ((rc = get_key_int(f, arch, "attention.value_length", 0, hp->head_dim, 1, MAX_HEAD_DIM, &v_len, err)))
        return rc;
    if (v_len != hp->head_dim)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM,
                        "%s.attention.value_length = %d differs from the key length %d, which wandler does not run",
                        arch, v_len, hp->head_dim);
    if ((long long)hp->n_head * hp->head_dim > MAX_EMBD * 4)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM, "%s: %d heads of %d dims are too wide", arch,
                        hp->n_head, hp->head_dim);
    if ((rc = get_key_int(f, arch, "rope.dimension_count", 0, hp->head_dim, 0, hp->head_dim, &hp->n_rot, err)))
        return rc;
    if (hp->n_rot % 2 != 0)
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM, "%s.rope.dimension_count = %d is odd", arch,
                        hp->n_rot);
    return WANDLER_OK;
}

/* RoPE scaling: rope.scaling.type none | linear (angles / factor) | longrope (factor tensors)
 * | llama3 (wandler's own spelling of the Llama 3 rule, when no rope_freqs tensor carries it).
 * YaRN is not run: refusing beats answering wrongly. */
static int read_rope_scaling(const gguf_file *f, const char *arch, wl_hparams *hp, int *llama3,
                             wandler_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    gguf_str type = {"linear", 6};
    int rc = gguf_get_str(f, key, &type, err);
    if (rc && rc != WANDLER_ERR_MODEL_MISSING_KEY)
        return rc;
    float factor = 0;
    if ((rc = get_key_float(f, arch, "rope.scaling.factor", 0, 0.0, 0.0, 1e6, &factor, err)) ||
        (rc = get_key_float(f, arch, "rope.scaling.attn_factor", 0, 1.0, 1e-3, 1e3, &hp->rope_attn_factor, err)) ||
        (rc = get_key_int(f, arch, "rope.scaling.original_context_length", 0, hp->n_ctx_train, 0, 1 << 24,
                          &hp->n_ctx_orig, err)))
        return rc;
#define IS(s) (type.len == strlen(s) && memcmp(type.ptr, s, type.len) == 0)
    *llama3 = 0;
    hp->rope_freq_scale = 1.0f;
    if (IS("none") || IS("longrope")) {
        /* no linear scaling; LongRoPE's divisors come as tensors */
    } else if (IS("linear")) {
        hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    } else if (IS("llama3")) {
        *llama3 = 1;
    } else {
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM,
                        "%s = '%.*s': wandler runs RoPE scaling none, linear, longrope and llama3 only", key,
                        (int)(type.len > 32 ? 32 : type.len), type.ptr);
    }
#undef IS
    return WANDLER_OK;
}

/* Which layers slide: attention.sliding_window_pattern as an array of booleans (one per layer)
 * or as a period n (layer il slides unless il % n == n - 1; 0: all slide), else `dflt`. */
static int read_swa_pattern(const gguf_file *f, const char *arch, int dflt, wl_layer *layers, int n_layer,
                            wandler_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
    int64_t idx = gguf_find_key(f, key);
    if (idx >= 0 && gguf_kv_type(f, (uint64_t)idx) == GGUF_TYPE_ARRAY) {
        uint32_t et;
        uint64_t n;
        int rc = gguf_get_arr(f, key, &et, &n, err);
        if (rc)
            return rc;
        if (n != (uint64_t)n_layer || et == GGUF_TYPE_STRING || et == GGUF_TYPE_FLOAT32 || et == GGUF_TYPE_FLOAT64)
            return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM,
                            "%s: expected %d booleans (one per layer), found %llu of type %s", key, n_layer,
                            (unsigned long long)n, gguf_type_name(et));
        for (int il = 0; il < n_layer; il++)
            layers[il].swa = gguf_arr_int(f, idx, (uint64_t)il) != 0;
        return WANDLER_OK;
    }
    int period = 0;
    int rc = get_key_int(f, arch, "attention.sliding_window_pattern", 0, dflt, 0, MAX_LAYERS, &period, err);
    if (rc)
        return rc;
    for (int il = 0; il < n_layer; il++)
        layers[il].swa = period == 0 || il % period < period - 1;
    return WANDLER_OK;
}

/* Everything architecture-specific about the hyper-parameters (after read_common). */
static int read_arch_hparams(const gguf_file *f, const arch_desc *d, wl_model *m, int *llama3,
                             wandler_error *err)
{
    wl_hparams *hp = &m->hp;
    const char *arch = d->name;
    int rc;
    hp->rope_neox = d->rope_neox;
    hp->ffn_act = d->ffn_act;
    hp->embd_scale = (d->flags & A_EMBD_SCALE) ? sqrtf((float)hp->n_embd) : 1.0f;
    hp->q_scale = 1.0f;
    hp->kq_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->rope_base_swa = hp->rope_base;
    hp->n_swa = 0;
    if ((rc = read_rope_scaling(f, arch, hp, llama3, err)))
        return rc;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;

    switch (d->id) {
    case WL_ARCH_GEMMA2:
    case WL_ARCH_GEMMA3: {
        const int g2 = d->id == WL_ARCH_GEMMA2;
        int has_swa = g2 || has_key(f, arch, "attention.sliding_window");
        if ((rc = get_key_int(f, arch, "attention.sliding_window", 0, 4096, 0, 1 << 24, &hp->n_swa, err)))
            return rc;
        if (!has_swa)
            hp->n_swa = 0;
        if (hp->n_swa > 0 && (rc = read_swa_pattern(f, arch, g2 ? 2 : 6, m->layers, hp->n_layer, err)))
            return rc;
        /* gemma3's local layers keep base 10000 unless told; gemma2's share the global base */
        if ((rc = get_key_float(f, arch, "rope.freq_base_swa", 0, g2 ? hp->rope_base : 10000.0, 1e-3, 1e12,
                                &hp->rope_base_swa, err)) ||
            (rc = get_key_float(f, arch, "attn_logit_softcapping", 0, g2 ? 50.0 : 0.0, 0.0, 1e6,
                                &hp->attn_softcap, err)) ||
            (rc = get_key_float(f, arch, "final_logit_softcapping", 0, g2 ? 30.0 : 0.0, 0.0, 1e6,
                                &hp->final_softcap, err)))
            return rc;
        if (!g2)
            hp->attn_softcap = 0.0f; /* removed in gemma 3 */
        /* gemma2's local layers share the global RoPE scaling, gemma3's are never scaled */
        hp->rope_freq_scale_swa = g2 ? hp->rope_freq_scale : 1.0f;
        /* queries are scaled by query_pre_attn_scalar^-1/2 before attention: head_dim for every
         * size but the 27B ones (46 gemma2 / 62 gemma3 layers), whose scalar is dim / heads */
        const int is_27b = hp->n_layer == (g2 ? 46 : 62);
        hp->q_scale = 1.0f / sqrtf(is_27b ? (float)(hp->n_embd / hp->n_head) : (float)hp->head_dim);
        hp->kq_scale = 1.0f;
        break;
    }
    case WL_ARCH_PHI3:
        /* llama.cpp scales the queries before attention rather than the scores */
        hp->q_scale = 1.0f / sqrtf((float)hp->head_dim);
        hp->kq_scale = 1.0f;
        break;
    default:
        break;
    }
    if (hp->n_swa == 0)
        for (int il = 0; il < hp->n_layer; il++)
            m->layers[il].swa = 0;
    return WANDLER_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */

/* Binds tensor `name`, which must have exactly the dims ne0 x ne1 (ne1 = 1 for a vector). */
static int bind(const gguf_file *f, const char *name, int64_t ne0, int64_t ne1, int optional,
                wl_tensor *t, wandler_error *err)
{
    const gguf_tensor *g = gguf_find_tensor(f, name);
    if (!g) {
        memset(t, 0, sizeof *t);
        if (optional)
            return WANDLER_OK;
        return wl_error(err, WANDLER_ERR_MODEL_MISSING_TENSOR, "tensor '%s' is missing", name);
    }
    int is_vector = ne1 == 1;
    if ((uint64_t)ne0 != g->ne[0] || (uint64_t)ne1 != g->ne[1] || g->ne[2] != 1 || g->ne[3] != 1 ||
        (is_vector && g->n_dims != 1))
        return wl_error(err, WANDLER_ERR_MODEL_TENSOR_SHAPE,
                        "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]", name,
                        (unsigned long long)g->ne[0], (unsigned long long)g->ne[1],
                        (unsigned long long)g->ne[2], (unsigned long long)g->ne[3], (long long)ne0,
                        (long long)ne1);
    if (!wl_type_supported(g->type))
        return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_TYPE,
                        "tensor '%s' has weight format %s, which wandler does not run yet", name,
                        wl_type_name(g->type));
    t->name = g->name;
    t->type = g->type;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = t->ne[3] = 1;
    t->row_bytes = wl_row_bytes(g->type, (uint64_t)ne0);
    t->data = g->data;
    t->layout = WL_LAYOUT_ROWS;
    if (t->row_bytes == 0 || (!is_vector && wl_act_row_bytes(g->type, ne0) == 0))
        return wl_error(err, WANDLER_ERR_MODEL_TENSOR_SHAPE,
                        "tensor '%s': rows of %lld values are not whole blocks of %s", name, (long long)ne0,
                        wl_type_name(g->type));
    return WANDLER_OK;
}

/* The model's owned F32 storage for vectors, handed out front to back. */
typedef struct arena {
    float *next;
    float *end;
} arena;

/* Binds a vector of n values (norm weights, biases, RoPE factors) and converts it to F32 in the
 * arena, rejecting non-finite values, which would turn every activation into NaN. *out is NULL
 * when an optional vector is absent. */
static int bind_vec(const gguf_file *f, const char *name, int64_t n, int optional, arena *a,
                    const float **out, wandler_error *err)
{
    wl_tensor t;
    *out = NULL;
    int rc = bind(f, name, n, 1, optional, &t, err);
    if (rc || !t.data)
        return rc;
    if (a->end - a->next < n)
        return wl_error(err, WANDLER_ERR_INTERNAL, "vector storage exhausted at tensor '%s'", name);
    float *dst = a->next;
    if (wl_dequantize_row(t.type, t.data, dst, n) != 0)
        return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_TYPE, "tensor '%s': format %s", name,
                        wl_type_name(t.type));
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return wl_error(err, WANDLER_ERR_MODEL_BAD_TENSOR_DATA, "tensor '%s' holds a non-finite value at %lld",
                            name, (long long)i);
    a->next += n;
    *out = dst;
    return WANDLER_OK;
}

static uint64_t tensor_params(const wl_tensor *t)
{
    return t->data ? (uint64_t)t->ne[0] * (uint64_t)t->ne[1] : 0;
}

/* F32 values the vectors of one layer may need at most. */
static size_t layer_vec_floats(const wl_hparams *hp)
{
    const size_t dim = (size_t)hp->n_embd, hd = (size_t)hp->head_dim;
    return 4 * dim + 2 * hd + (size_t)(hp->n_head + 2 * hp->n_head_kv) * hd;
}

static int bind_layer(const gguf_file *f, const arch_desc *d, const wl_hparams *hp, int il, wl_layer *L,
                      arena *a, uint64_t *n_params, wandler_error *err)
{
    const int64_t dim = hp->n_embd, hd = hp->head_dim, q_dim = (int64_t)hp->n_head * hd,
                  kv_dim = (int64_t)hp->n_head_kv * hd, ff = hp->n_ff;
    char name[96];
    int rc;
    const float *post = NULL;
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, il), name)
    if ((rc = bind_vec(f, NAME("attn_norm.weight"), dim, 0, a, &L->attn_norm, err)))
        return rc;
    *n_params += (uint64_t)dim;

    /* attention projections: fused attn_qkv, else attn_q/k/v; biases optional */
    if (gguf_find_tensor(f, NAME("attn_qkv.weight"))) {
        const float *b;
        if ((rc = bind(f, NAME("attn_qkv.weight"), dim, q_dim + 2 * kv_dim, 0, &L->wqkv, err)) ||
            (rc = bind_vec(f, NAME("attn_qkv.bias"), q_dim + 2 * kv_dim, 1, a, &b, err)))
            return rc;
        if (b) {
            L->bq = b;
            L->bk = b + q_dim;
            L->bv = b + q_dim + kv_dim;
            *n_params += (uint64_t)(q_dim + 2 * kv_dim);
        }
        *n_params += tensor_params(&L->wqkv);
    } else {
        if ((rc = bind(f, NAME("attn_q.weight"), dim, q_dim, 0, &L->wq, err)) ||
            (rc = bind(f, NAME("attn_k.weight"), dim, kv_dim, 0, &L->wk, err)) ||
            (rc = bind(f, NAME("attn_v.weight"), dim, kv_dim, 0, &L->wv, err)))
            return rc;
        *n_params += tensor_params(&L->wq) + tensor_params(&L->wk) + tensor_params(&L->wv);
    }
    if (!L->bq) {
        if ((rc = bind_vec(f, NAME("attn_q.bias"), q_dim, 1, a, &L->bq, err)) ||
            (rc = bind_vec(f, NAME("attn_k.bias"), kv_dim, 1, a, &L->bk, err)) ||
            (rc = bind_vec(f, NAME("attn_v.bias"), kv_dim, 1, a, &L->bv, err)))
            return rc;
        *n_params += (L->bq ? (uint64_t)q_dim : 0) + (L->bk ? (uint64_t)kv_dim : 0) +
                     (L->bv ? (uint64_t)kv_dim : 0);
    }
    if (d->flags & A_QK_NORM) {
        if ((rc = bind_vec(f, NAME("attn_q_norm.weight"), hd, 0, a, &L->q_norm, err)) ||
            (rc = bind_vec(f, NAME("attn_k_norm.weight"), hd, 0, a, &L->k_norm, err)))
            return rc;
        *n_params += 2 * (uint64_t)hd;
    }
    if ((rc = bind(f, NAME("attn_output.weight"), q_dim, dim, 0, &L->wo, err)))
        return rc;
    *n_params += tensor_params(&L->wo);
    if (d->flags & A_POST_NORMS) {
        if ((rc = bind_vec(f, NAME("post_attention_norm.weight"), dim, 0, a, &L->attn_post_norm, err)))
            return rc;
        *n_params += (uint64_t)dim;
    }

    /* feed-forward */
    if ((rc = bind_vec(f, NAME("ffn_norm.weight"), dim, 0, a, &L->ffn_norm, err)))
        return rc;
    if (d->flags & A_FUSED_UP) {
        if ((rc = bind(f, NAME("ffn_up.weight"), dim, 2 * ff, 0, &L->w_up, err)))
            return rc;
    } else {
        if ((rc = bind(f, NAME("ffn_gate.weight"), dim, ff, 0, &L->w_gate, err)) ||
            (rc = bind(f, NAME("ffn_up.weight"), dim, ff, 0, &L->w_up, err)))
            return rc;
    }
    if ((rc = bind(f, NAME("ffn_down.weight"), ff, dim, 0, &L->w_down, err)))
        return rc;
    if (d->flags & A_POST_NORMS) {
        if ((rc = bind_vec(f, NAME("post_ffw_norm.weight"), dim, 0, a, &post, err)))
            return rc;
        L->ffn_post_norm = post;
        *n_params += (uint64_t)dim;
    }
    *n_params += (uint64_t)dim + tensor_params(&L->w_gate) + tensor_params(&L->w_up) + tensor_params(&L->w_down);
#undef NAME
    return WANDLER_OK;
}

/* Tensors llama.cpp applies in some variants of these architectures but wandler does not run:
 * a model holding one would load and silently compute something else, so it is refused, naming
 * the tensor. (Every converted SmolLM2, TinyLlama, Llama 3, Qwen2/2.5/3, Gemma 2/3 and Phi-3
 * model lacks them.) */
static int reject_unrun_tensors(const gguf_file *f, const char *arch, wandler_error *err)
{
    static const char *const SUFFIXES[] = {".attn_output.bias", ".ffn_gate.bias", ".ffn_up.bias", ".ffn_down.bias",
                                           ".attn_norm.bias", ".ffn_norm.bias", "output_norm.bias"};
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const char *name = gguf_tensor_at(f, i)->name;
        const size_t len = strlen(name);
        for (size_t k = 0; k < sizeof SUFFIXES / sizeof SUFFIXES[0]; k++) {
            const size_t sl = strlen(SUFFIXES[k]);
            if (len >= sl && !strcmp(name + len - sl, SUFFIXES[k]))
                return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_ARCH,
                                "tensor '%.64s': %s models with this tensor are not supported", name, arch);
        }
    }
    return WANDLER_OK;
}

/* Llama 3's RoPE frequency divisors from rope.scaling.* keys, the way the converter computes
 * the rope_freqs tensor: long wavelengths are divided by `factor`, short ones kept, those in
 * between blended. */
static int llama3_factors(const gguf_file *f, const char *arch, const wl_hparams *hp, float *dst,
                          wandler_error *err)
{
    float factor = 0, lo = 0, hi = 0;
    int orig = 0;
    int rc;
    if ((rc = get_key_float(f, arch, "rope.scaling.factor", 0, 8.0, 1e-3, 1e6, &factor, err)) ||
        (rc = get_key_float(f, arch, "rope.scaling.low_freq_factor", 0, 1.0, 1e-3, 1e6, &lo, err)) ||
        (rc = get_key_float(f, arch, "rope.scaling.high_freq_factor", 0, 4.0, 1e-3, 1e6, &hi, err)) ||
        (rc = get_key_int(f, arch, "rope.scaling.original_context_length", 0, 8192, 1, 1 << 24, &orig, err)))
        return rc;
    if (!(hi > lo))
        return wl_error(err, WANDLER_ERR_MODEL_BAD_HPARAM, "%s.rope.scaling.high_freq_factor must exceed low_freq_factor",
                        arch);
    const double lo_wavelen = orig / lo, hi_wavelen = orig / hi;
    for (int i = 0; i < hp->n_rot / 2; i++) {
        double freq = pow(hp->rope_base, -2.0 * i / hp->n_rot), wavelen = 2 * M_PI / freq;
        if (wavelen < hi_wavelen) {
            dst[i] = 1.0f;
        } else if (wavelen > lo_wavelen) {
            dst[i] = factor;
        } else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            dst[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
    return WANDLER_OK;
}

int wl_model_load(const gguf_file *f, wl_model **out, wandler_error *err)
{
    *out = NULL;
    gguf_str arch;
    int rc = gguf_get_str(f, "general.architecture", &arch, err);
    if (rc)
        return rc;
    const arch_desc *d = arch_desc_of(wl_arch_from_name(arch.ptr, arch.len));
    if (!d)
        return wl_error(err, WANDLER_ERR_MODEL_UNSUPPORTED_ARCH,
                        "general.architecture '%.*s' is not supported (supported: llama, qwen2, qwen3, "
                        "gemma2, gemma3, phi3)",
                        (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);

    wl_model *m = calloc(1, sizeof *m);
    if (!m)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    m->file = f;
    m->hp.arch = d->id;
    m->arch_name = d->name;
    wl_hparams *hp = &m->hp;
    if ((rc = read_common(f, d->name, hp, err)))
        goto fail;

    gguf_str gname = {"", 0};
    gguf_get_str(f, "general.name", &gname, NULL);
    m->name = strndup(gname.ptr, gname.len > 256 ? 256 : gname.len);
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->name || !m->layers) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    int llama3 = 0;
    if ((rc = read_arch_hparams(f, d, m, &llama3, err)))
        goto fail;

    /* The vocabulary size is the embedding's row count. */
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) {
        rc = wl_error(err, WANDLER_ERR_MODEL_MISSING_TENSOR, "tensor 'token_embd.weight' is missing");
        goto fail;
    }
    if (emb->ne[1] < 1 || emb->ne[1] > MAX_VOCAB) {
        rc = wl_error(err, WANDLER_ERR_MODEL_TENSOR_SHAPE,
                      "tensor 'token_embd.weight' has %llu rows (vocabulary size), expected 1..%d",
                      (unsigned long long)emb->ne[1], MAX_VOCAB);
        goto fail;
    }
    hp->n_vocab = (int)emb->ne[1];
    if (has_key(f, d->name, "vocab_size")) {
        int nv = 0;
        if ((rc = get_key_int(f, d->name, "vocab_size", 1, 0, 1, MAX_VOCAB, &nv, err)))
            goto fail;
        if (nv != hp->n_vocab) {
            rc = wl_error(err, WANDLER_ERR_MODEL_TENSOR_SHAPE,
                          "tensor 'token_embd.weight' has %d rows but %s.vocab_size is %d", hp->n_vocab,
                          d->name, nv);
            goto fail;
        }
    }

    /* vector storage: the output norm and bias, three sets of RoPE factors, the layers' vectors */
    size_t floats = (size_t)hp->n_embd + (size_t)hp->n_vocab + 3 * (size_t)(hp->n_rot / 2 + 1) +
                    (size_t)hp->n_layer * layer_vec_floats(hp);
    m->norms = malloc(floats * sizeof(float));
    if (!m->norms) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    arena a = {m->norms, m->norms + floats};

    if ((rc = bind(f, "token_embd.weight", hp->n_embd, hp->n_vocab, 0, &m->tok_embd, err)) ||
        (rc = bind(f, "output.weight", hp->n_embd, hp->n_vocab, 1, &m->output, err)) ||
        (rc = bind_vec(f, "output_norm.weight", hp->n_embd, 0, &a, &m->out_norm, err)) ||
        (rc = bind_vec(f, "output.bias", hp->n_vocab, 1, &a, &m->output_b, err)))
        goto fail;
    if ((d->flags & A_TIED) || !m->output.data)
        m->output = m->tok_embd; /* tied embeddings */
    uint64_t n_params = tensor_params(&m->tok_embd) + (uint64_t)hp->n_embd;
    if (m->output.data != m->tok_embd.data)
        n_params += tensor_params(&m->output);
    if (m->output_b)
        n_params += (uint64_t)hp->n_vocab;

    /* RoPE frequency divisors (n_rot / 2 each): Llama 3's, or LongRoPE's pair */
    const int n_ff_rope = hp->n_rot / 2;
    if (n_ff_rope > 0) {
        if ((rc = bind_vec(f, "rope_freqs.weight", n_ff_rope, 1, &a, &m->rope_freqs, err)) ||
            (rc = bind_vec(f, "rope_factors_long.weight", n_ff_rope, 1, &a, &m->rope_long, err)) ||
            (rc = bind_vec(f, "rope_factors_short.weight", n_ff_rope, 1, &a, &m->rope_short, err)))
            goto fail;
        if (!m->rope_freqs && llama3) {
            float *dst = a.next;
            a.next += n_ff_rope;
            if ((rc = llama3_factors(f, d->name, hp, dst, err)))
                goto fail;
            m->rope_freqs = dst;
        }
        if (!m->rope_long != !m->rope_short) {
            rc = wl_error(err, WANDLER_ERR_MODEL_MISSING_TENSOR, "tensor '%s' is missing (its pair is present)",
                          m->rope_long ? "rope_factors_short.weight" : "rope_factors_long.weight");
            goto fail;
        }
        const float *sets[3] = {m->rope_freqs, m->rope_long, m->rope_short};
        for (int s = 0; s < 3; s++)
            for (int i = 0; sets[s] && i < n_ff_rope; i++)
                if (!(sets[s][i] > 0.0f)) {
                    rc = wl_error(err, WANDLER_ERR_MODEL_BAD_TENSOR_DATA,
                                  "RoPE frequency divisor %d is %g; divisors must be positive", i, sets[s][i]);
                    goto fail;
                }
    }

    for (int il = 0; il < hp->n_layer; il++)
        if ((rc = bind_layer(f, d, hp, il, &m->layers[il], &a, &n_params, err)))
            goto fail;
    if ((rc = reject_unrun_tensors(f, d->name, err)))
        goto fail;
    m->n_params = n_params;
    *out = m;
    return WANDLER_OK;

fail:
    wl_model_free(m);
    return rc;
}

void wl_model_free(wl_model *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->layers);
    free(m->norms);
    free(m);
}
