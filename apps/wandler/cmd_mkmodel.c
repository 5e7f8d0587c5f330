/* cmd_mkmodel.c - `wandler mkmodel`: a thin wrapper of wl_mkmodel(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/model.h"
#include "tools/mkmodel.h"
#include "tools/quant_plan.h"
#include "wandler.h"

#define MAX_OVERRIDES 16

static void mkmodel_usage(FILE *out)
{
    fprintf(out,
            "usage: wandler mkmodel [--arch A] (--shape NAME | --dims LIST) [OPTIONS] OUT\n"
            "\n"
            "Writes a model of a real shape with random weights (N(0, sigma), norm weights near 1),\n"
            "deterministic for a seed, loadable by wandler and llama.cpp: for benchmarks and tests.\n"
            "\n"
            "  --arch A             llama, qwen2, qwen3, gemma2, gemma3, phi3 (implied by a real shape)\n"
            "  --shape NAME         a shape below; 'tiny' (with --arch) is the small test model\n"
            "  --dims LIST          k=v,... changing the shape (or, alone, the arch's tiny one):\n"
            "                       embd layers heads kv_heads ff vocab head_dim rot ctx rope_base\n"
            "                       rope_base_swa eps swa swa_pattern attn_softcap final_softcap\n"
            "                       tied qkv_bias fused_qkv llama3_rope=ORIG_CTX longrope=ORIG_CTX\n"
            "  --type T             weight format or mix, as for quantize (default F32)\n"
            "  --seed S             (default 1)\n"
            "  --sigma X            standard deviation of the weights (default 0.02)\n"
            "  --vocab FILE.gguf    copy this file's tokenizer (its size becomes the vocabulary\n"
            "                       size); default: a synthetic SentencePiece vocabulary\n"
            "  --name NAME          general.name\n"
            "  --tensor-type P=FMT  as for quantize (repeatable)\n"
            "  -t, --threads N      threads (default: one per core)\n"
            "  -q, --quiet          no notes on stderr\n"
            "\n"
            "shapes:\n");
    for (const wl_mkmodel_shape *s = wl_mkmodel_shapes(); s->name; s++) {
        const wl_mkmodel_dims *d = &s->dims;
        fprintf(out, "  %-30s %-7s dim %d, %d layers, %d/%d heads, ffn %d, vocab %d  (%s)\n", s->name,
                wl_arch_name(d->arch), d->n_embd, d->n_layer, d->n_head, d->n_head_kv, d->n_ff, d->n_vocab, s->about);
    }
}

static void print_note(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "wandler mkmodel: note: %s\n", msg);
}

/* Applies "k=v,k=v" to d. Returns 0, or -1 after printing the error. */
static int parse_dims(const char *list, wl_mkmodel_dims *d)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return -1;
    int bad = 0;
    for (char *kv = strtok_r(copy, ",", &save); kv && !bad; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "wandler mkmodel: --dims: '%s' is not k=v\n", kv);
            bad = 1;
            break;
        }
        *eq = 0;
        const char *k = kv, *v = eq + 1;
        double x;
        if (cli_parse_float(k, v, 0, 1e12, &x)) {
            bad = 1;
            break;
        }
        int *ip = NULL;
        float *fp = NULL;
        if (!strcmp(k, "embd")) ip = &d->n_embd;
        else if (!strcmp(k, "layers")) ip = &d->n_layer;
        else if (!strcmp(k, "heads")) ip = &d->n_head;
        else if (!strcmp(k, "kv_heads")) ip = &d->n_head_kv;
        else if (!strcmp(k, "ff")) ip = &d->n_ff;
        else if (!strcmp(k, "vocab")) ip = &d->n_vocab;
        else if (!strcmp(k, "head_dim")) ip = &d->head_dim;
        else if (!strcmp(k, "rot")) ip = &d->n_rot;
        else if (!strcmp(k, "ctx")) ip = &d->n_ctx_train;
        else if (!strcmp(k, "swa")) ip = &d->n_swa;
        else if (!strcmp(k, "swa_pattern")) ip = &d->swa_pattern;
        else if (!strcmp(k, "tied")) ip = &d->tied;
        else if (!strcmp(k, "qkv_bias")) ip = &d->qkv_bias;
        else if (!strcmp(k, "fused_qkv")) ip = &d->fused_qkv;
        else if (!strcmp(k, "rope_base")) fp = &d->rope_base;
        else if (!strcmp(k, "rope_base_swa")) fp = &d->rope_base_swa;
        else if (!strcmp(k, "eps")) fp = &d->norm_eps;
        else if (!strcmp(k, "attn_softcap")) fp = &d->attn_softcap;
        else if (!strcmp(k, "final_softcap")) fp = &d->final_softcap;
        else if (!strcmp(k, "llama3_rope")) {
            d->llama3_rope = x > 0;
            d->llama3_orig_ctx = (int)x;
        } else if (!strcmp(k, "longrope")) {
            d->longrope = x > 0;
            d->n_ctx_orig = (int)x;
        } else {
            fprintf(stderr, "wandler mkmodel: --dims: unknown key '%s'\n", k);
            bad = 1;
        }
        if (ip) {
            if (x != (double)(int)x) {
                fprintf(stderr, "wandler mkmodel: --dims: %s=%s is not an integer\n", k, v);
                bad = 1;
            }
            *ip = (int)x;
        } else if (fp) {
            *fp = (float)x;
        }
    }
    free(copy);
    return bad ? -1 : 0;
}

int cmd_mkmodel(int argc, char **argv)
{
    const char *arch_s = NULL, *shape_s = NULL, *dims_s = NULL, *out = NULL;
    const char *overrides[MAX_OVERRIDES];
    int quiet = 0;
    wl_mkmodel_params p = {0};
    p.seed = 1;
    p.tensor_types = overrides;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        long l;
        double x;
#define VAL()                                   \
    if (!(v = cli_value(argc, argv, &i)))       \
    return 2
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            mkmodel_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--arch")) {
            VAL();
            arch_s = v;
        } else if (!strcmp(o, "--shape")) {
            VAL();
            shape_s = v;
        } else if (!strcmp(o, "--dims")) {
            VAL();
            dims_s = v;
        } else if (!strcmp(o, "--type")) {
            VAL();
            p.ftype = v;
        } else if (!strcmp(o, "--seed")) {
            VAL();
            if (cli_parse_u64(o, v, &p.seed))
                return 2;
        } else if (!strcmp(o, "--sigma")) {
            VAL();
            if (cli_parse_float(o, v, 1e-6, 10, &x))
                return 2;
            p.sigma = (float)x;
        } else if (!strcmp(o, "--vocab")) {
            VAL();
            p.vocab_path = v;
        } else if (!strcmp(o, "--name")) {
            VAL();
            p.name = v;
        } else if (!strcmp(o, "--tensor-type")) {
            VAL();
            if (p.n_tensor_types == MAX_OVERRIDES) {
                fprintf(stderr, "wandler mkmodel: at most %d --tensor-type options\n", MAX_OVERRIDES);
                return 2;
            }
            overrides[p.n_tensor_types++] = v;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            VAL();
            if (cli_parse_int(o, v, 1, 256, &l))
                return 2;
            p.n_threads = (int)l;
        } else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
            quiet = 1;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "wandler mkmodel: unknown option '%s'\n\n", o);
            mkmodel_usage(stderr);
            return 2;
        } else if (!out) {
            out = o;
        } else {
            fprintf(stderr, "wandler mkmodel: more than one output file given\n");
            return 2;
        }
#undef VAL
    }
    if (!out || (!shape_s && !dims_s)) {
        mkmodel_usage(stderr);
        return 2;
    }
    int arch = 0;
    if (arch_s && !(arch = wl_arch_from_name(arch_s, strlen(arch_s)))) {
        fprintf(stderr, "wandler mkmodel: unknown architecture '%s'\n", arch_s);
        return 2;
    }
    if (!shape_s)
        shape_s = "tiny";
    if (!strcmp(shape_s, "tiny") && !arch) {
        fprintf(stderr, "wandler mkmodel: the tiny shape needs --arch\n");
        return 2;
    }
    const wl_mkmodel_shape *shape = wl_mkmodel_find_shape(arch, shape_s);
    if (!shape) {
        fprintf(stderr, "wandler mkmodel: no shape '%s'%s%s (see wandler mkmodel --help)\n", shape_s,
                arch ? " for " : "", arch ? arch_s : "");
        return 2;
    }
    p.dims = shape->dims;
    if (dims_s && parse_dims(dims_s, &p.dims))
        return 2;
    if (p.ftype && !wl_ftype_find(p.ftype)) {
        fprintf(stderr, "wandler mkmodel: unknown --type '%s'\n", p.ftype);
        return 2;
    }
    if (!p.name)
        p.name = shape->about;
    if (!quiet)
        p.note = print_note;
    wandler_error err;
    if (wl_mkmodel(&p, out, &err) != WANDLER_OK) {
        fprintf(stderr, "wandler mkmodel: %s (%s)\n", err.message, wandler_status_name(err.code));
        return 1;
    }
    return 0;
}
