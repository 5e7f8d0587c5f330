/* quant_plan.c - per-tensor format choices of the quantization mixes (see quant_plan.h).
 *
 * The rules are those of llama.cpp's llama-quant.cpp for the file types listed below, learned
 * from its source: only the branches that apply to the dense architectures wandler runs (no
 * experts, no Falcon, no importance matrix, no i-quants) are here. */
#include "tools/quant_plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/tensor_type.h"
#include "util/error.h"

/* llama_ftype numbers */
enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
    FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_BF16 = 32,
};

static const wl_ftype FTYPES[] = {
    {"F32", FT_F32, WL_TYPE_F32},       {"F16", FT_F16, WL_TYPE_F16},
    {"BF16", FT_BF16, WL_TYPE_BF16},    {"Q8_0", FT_Q8_0, WL_TYPE_Q8_0},
    {"Q4_0", FT_Q4_0, WL_TYPE_Q4_0},    {"Q4_1", FT_Q4_1, WL_TYPE_Q4_1},
    {"Q5_0", FT_Q5_0, WL_TYPE_Q5_0},    {"Q5_1", FT_Q5_1, WL_TYPE_Q5_1},
    {"Q2_K", FT_Q2_K, WL_TYPE_Q2_K},    {"Q3_K_S", FT_Q3_K_S, WL_TYPE_Q3_K},
    {"Q3_K_M", FT_Q3_K_M, WL_TYPE_Q3_K},{"Q3_K_L", FT_Q3_K_L, WL_TYPE_Q3_K},
    {"Q4_K_S", FT_Q4_K_S, WL_TYPE_Q4_K},{"Q4_K_M", FT_Q4_K_M, WL_TYPE_Q4_K},
    {"Q5_K_S", FT_Q5_K_S, WL_TYPE_Q5_K},{"Q5_K_M", FT_Q5_K_M, WL_TYPE_Q5_K},
    {"Q6_K", FT_Q6_K, WL_TYPE_Q6_K},    {NULL, 0, 0},
};

const wl_ftype *wl_ftype_list(void)
{
    return FTYPES;
}

const wl_ftype *wl_ftype_find(const char *name)
{
    static const struct { const char *alias, *name; } ALIASES[] = {
        {"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (!strcasecmp(name, ALIASES[i].alias))
            name = ALIASES[i].name;
    for (const wl_ftype *f = FTYPES; f->name; f++)
        if (!strcasecmp(name, f->name))
            return f;
    return NULL;
}

const wl_ftype *wl_ftype_of_type(uint32_t type)
{
    static const uint32_t PLAIN[] = {FT_F32, FT_F16, FT_BF16, FT_Q8_0, FT_Q4_0, FT_Q4_1, FT_Q5_0, FT_Q5_1, FT_Q6_K};
    for (const wl_ftype *f = FTYPES; f->name; f++)
        for (size_t i = 0; i < sizeof PLAIN / sizeof PLAIN[0]; i++)
            if (f->ftype == PLAIN[i] && f->type == type)
                return f;
    return NULL;
}

int wl_type_from_name(const char *name)
{
    for (uint32_t t = 0; t < WL_TYPE_COUNT; t++) {
        const wl_type_info *ti = wl_type_get(t);
        if (ti && !strcasecmp(ti->name, name))
            return (int)t;
    }
    return -1;
}

/* ---- tensor categories (by name, as llama.cpp's quantizer sees them) ---- */

enum cat { C_OTHER, C_OUTPUT, C_TOKEN_EMBD, C_ATTN_QKV, C_ATTN_V, C_ATTN_K, C_ATTN_Q, C_ATTN_OUT,
           C_FFN_UP, C_FFN_GATE, C_FFN_DOWN };

static enum cat category(const char *name)
{
    if (!strcmp(name, "output.weight"))
        return C_OUTPUT;
    if (!strcmp(name, "token_embd.weight"))
        return C_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight"))
        return C_ATTN_QKV;
    if (strstr(name, "attn_v.weight"))
        return C_ATTN_V;
    if (strstr(name, "attn_k.weight"))
        return C_ATTN_K;
    if (strstr(name, "attn_q.weight"))
        return C_ATTN_Q;
    if (strstr(name, "attn_output.weight"))
        return C_ATTN_OUT;
    if (strstr(name, "ffn_up"))
        return C_FFN_UP;
    if (strstr(name, "ffn_gate"))
        return C_FFN_GATE;
    if (strstr(name, "ffn_down"))
        return C_FFN_DOWN;
    return C_OTHER;
}

static int is_attn_v_like(enum cat c)
{
    return c == C_ATTN_V || c == C_ATTN_QKV;
}

static int is_quantized(uint32_t t)
{
    const wl_type_info *ti = wl_type_get(t);
    return ti && ti->block_size > 1;
}

static uint32_t block_size(uint32_t t)
{
    const wl_type_info *ti = wl_type_get(t);
    return ti ? ti->block_size : 1;
}

/* Dimensions as ggml counts them: up to the last one above 1. */
static uint32_t ggml_dims(uint32_t n_dims, const uint64_t *ne)
{
    uint32_t d = 1;
    for (uint32_t i = 1; i < n_dims; i++)
        if (ne[i] > 1)
            d = i + 1;
    return d;
}

/* Whether the quantizer may change this tensor's format at all: weight matrices only. */
static int allows_quantization(const char *name, uint32_t n_dims, const uint64_t *ne)
{
    size_t len = strlen(name);
    return ggml_dims(n_dims, ne) >= 2 && len >= 6 && !strcmp(name + len - 6, "weight") &&
           !strstr(name, "_norm.weight") && !strstr(name, "ffn_gate_inp.weight") &&
           !strstr(name, "position_embd") && !strstr(name, "token_types");
}

void wl_quant_plan_init(wl_quant_plan *p, const wl_ftype *ft, int n_layer, int n_gqa, int is_70b,
                        const char *const *names, size_t n)
{
    memset(p, 0, sizeof *p);
    p->ft = ft;
    p->output_type = p->embd_type = -1;
    p->n_layer = n_layer;
    p->n_gqa = n_gqa;
    p->is_70b = is_70b;
    p->tied = 1;
    for (size_t i = 0; i < n; i++) {
        enum cat c = category(names[i]);
        if (is_attn_v_like(c))
            p->n_attention_wv++;
        if (c == C_OUTPUT)
            p->tied = 0;
    }
}

void wl_quant_plan_free(wl_quant_plan *p)
{
    for (int i = 0; i < p->n_overrides; i++)
        regfree(&p->overrides[i].re);
    p->n_overrides = 0;
}

int wl_quant_plan_add_override(wl_quant_plan *p, const char *spec, wandler_error *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor type '%s' is not PATTERN=TYPE", spec);
    int type = wl_type_from_name(eq + 1);
    if (type < 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor type '%s': unknown format '%s'", spec, eq + 1);
    if (p->n_overrides >= WL_QUANT_MAX_OVERRIDES)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "more than %d tensor types", WL_QUANT_MAX_OVERRIDES);
    size_t n = (size_t)(eq - spec);
    char *pat = malloc(n + 1);
    if (!pat)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++)
        pat[i] = (char)tolower((unsigned char)spec[i]);
    pat[n] = 0;
    wl_quant_override *o = &p->overrides[p->n_overrides];
    int rc = regcomp(&o->re, pat, REG_EXTENDED | REG_NOSUB);
    free(pat);
    if (rc != 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor type '%s': the pattern is not a regular expression",
                        spec);
    o->type = (uint32_t)type;
    p->n_overrides++;
    return WANDLER_OK;
}

/* llama.cpp's "use more bits" layers: the first and last eighth, and every third in between. */
static int use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* The mix rules (llama_tensor_get_type_impl for our file types). */
static uint32_t mix_rule(wl_quant_plan *p, enum cat c, uint64_t ne0, uint32_t t)
{
    const uint32_t ft = p->ft->ftype;
    if (c == C_OUTPUT || (p->tied && c == C_TOKEN_EMBD)) {
        if (ne0 % block_size(t) != 0)
            t = WL_TYPE_Q8_0;
        else if (t != WL_TYPE_Q8_0)
            t = WL_TYPE_Q6_K;
    } else if (c == C_TOKEN_EMBD) {
        /* kept at the default */
    } else if (is_attn_v_like(c)) {
        const int i = p->i_attention_wv, n = p->n_attention_wv;
        if (ft == FT_Q2_K)
            t = p->n_gqa >= 4 ? WL_TYPE_Q4_K : WL_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = i < 2 ? WL_TYPE_Q5_K : WL_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L)
            t = WL_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(i, n))
            t = WL_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && i < 4)
            t = WL_TYPE_Q5_K;
        if (p->is_70b && (t == WL_TYPE_Q3_K || t == WL_TYPE_Q4_K))
            t = WL_TYPE_Q5_K;
        p->i_attention_wv++;
    } else if (c == C_FFN_DOWN) {
        const int i = p->i_ffn_down, n = p->n_layer;
        if (ft == FT_Q2_K)
            t = WL_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = i < n / 16 ? WL_TYPE_Q5_K : WL_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L)
            t = WL_TYPE_Q5_K;
        else if (ft == FT_Q4_K_M) {
            if (use_more_bits(i, n))
                t = WL_TYPE_Q6_K;
        } else if (ft == FT_Q5_K_M && use_more_bits(i, n))
            t = WL_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && i < n / 8)
            t = WL_TYPE_Q5_K;
        p->i_ffn_down++;
    } else if (c == C_ATTN_OUT) {
        if (ft == FT_Q2_K)
            t = WL_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = WL_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L)
            t = WL_TYPE_Q5_K;
    }
    return t;
}

/* A format the rows of ne0 values fit, for one whose blocks they do not. */
static uint32_t fallback(uint64_t ne0, uint32_t t)
{
    if (ne0 % block_size(t) == 0)
        return t;
    uint32_t r;
    switch (t) {
    case WL_TYPE_Q2_K:
    case WL_TYPE_Q3_K: r = WL_TYPE_Q4_0; break;
    case WL_TYPE_Q4_K: r = WL_TYPE_Q5_0; break;
    case WL_TYPE_Q5_K: r = WL_TYPE_Q5_1; break;
    case WL_TYPE_Q6_K: r = WL_TYPE_Q8_0; break;
    default: r = t; break;
    }
    return ne0 % block_size(r) == 0 ? r : WL_TYPE_F16;
}

uint32_t wl_quant_plan_type(wl_quant_plan *p, const char *name, uint32_t n_dims, const uint64_t *ne,
                            uint32_t cur_type, char *note, size_t note_cap)
{
    if (note_cap)
        note[0] = 0;
    if (!allows_quantization(name, n_dims, ne)) {
        /* a half-precision norm would save a few bytes and cost every token precision */
        if (ggml_dims(n_dims, ne) == 1 && (cur_type == WL_TYPE_F16 || cur_type == WL_TYPE_BF16))
            return WL_TYPE_F32;
        return cur_type;
    }
    const enum cat c = category(name);
    if (p->embd_type >= 0 && c == C_TOKEN_EMBD)
        return (uint32_t)p->embd_type;
    if (p->output_type >= 0 && c == C_OUTPUT)
        return (uint32_t)p->output_type;
    uint32_t t = p->ft->type;
    if (!is_quantized(t))
        return t;
    int manual = 0;
    for (int i = 0; i < p->n_overrides && !manual; i++)
        if (regexec(&p->overrides[i].re, name, 0, NULL, 0) == 0) {
            if (p->overrides[i].type != t && note_cap)
                snprintf(note, note_cap, "%s: %s by --tensor-type (instead of %s)", name,
                         wl_type_name(p->overrides[i].type), wl_type_name(t));
            t = p->overrides[i].type;
            manual = 1;
        }
    if (!manual && !p->pure)
        t = mix_rule(p, c, ne[0], t);
    uint32_t f = fallback(ne[0], t);
    if (f != t && note_cap)
        snprintf(note, note_cap, "%s: rows of %llu values are not whole %u-value blocks of %s; using %s",
                 name, (unsigned long long)ne[0], block_size(t), wl_type_name(t), wl_type_name(f));
    return f;
}

/* ---- order ---- */

typedef struct order_key {
    int layer;
    const char *name;
    size_t idx;
} order_key;

static int cmp_key(const void *a, const void *b)
{
    const order_key *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

int wl_quant_order(const char *const *names, size_t n, size_t *idx, wandler_error *err)
{
    order_key *k = malloc((n ? n : 1) * sizeof *k);
    if (!k)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int layer = -1;
        if (sscanf(names[i], "blk.%d.", &layer) != 1)
            layer = -1;
        k[i] = (order_key){layer, names[i], i};
    }
    qsort(k, n, sizeof *k, cmp_key);
    for (size_t i = 0; i < n; i++)
        idx[i] = k[i].idx;
    free(k);
    return WANDLER_OK;
}
