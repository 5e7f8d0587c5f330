/* cmd_inspect.c - `wandler inspect MODEL`: a GGUF file's metadata and tensor table, and the
 * model as wandler's loader understood it (or why it would not load): what each architecture's
 * keys and defaults came to, so a surprising result can be traced to its cause. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/tensor_type.h"

/* The loaded model's hyper-parameters, in words. */
static void print_model(const gguf_file *f)
{
    wl_model *m;
    wandler_error err;
    printf("\nmodel as wandler runs it:\n");
    if (wl_model_load(f, &m, &err) != WANDLER_OK) {
        printf("  not runnable: %s (%s)\n", err.message, wandler_status_name(err.code));
        return;
    }
    const wl_hparams *hp = &m->hp;
    const wl_layer *L0 = &m->layers[0];
    printf("  %s: %d layers, width %d, %d query / %d KV heads of %d, FFN %d (%s), vocabulary %d, %.1fM weights\n",
           m->arch_name, hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff,
           hp->ffn_act == WL_ACT_GELU ? "GeGLU" : "SwiGLU", hp->n_vocab, m->n_params / 1e6);
    printf("  tensors: %s q/k/v%s%s%s, %s gate/up, output %s%s\n", L0->wqkv.data ? "fused" : "separate",
           L0->bq ? " with biases" : "", L0->q_norm ? ", per-head q/k norms" : "",
           L0->attn_post_norm ? ", post-norms" : "", L0->w_gate.data ? "separate" : "fused",
           m->output.data == m->tok_embd.data ? "tied to the embedding" : "own", m->output_b ? " with bias" : "");
    printf("  RoPE: %s over %d of %d dims, base %g", hp->rope_neox ? "NeoX halves" : "adjacent pairs", hp->n_rot,
           hp->head_dim, hp->rope_base);
    if (hp->rope_freq_scale != 1.0f)
        printf(", angles x %g", hp->rope_freq_scale);
    if (m->rope_freqs)
        printf(", Llama 3 frequency divisors");
    if (m->rope_long)
        printf(", LongRoPE factors (long ones beyond %d tokens), cos/sin x %g", hp->n_ctx_orig, hp->rope_attn_factor);
    printf("\n  attention: queries x %g, scores x %g", hp->q_scale, hp->kq_scale);
    if (hp->attn_softcap != 0.0f)
        printf(", scores soft-capped at %g", hp->attn_softcap);
    printf("\n");
    int n_swa = 0;
    for (int il = 0; il < hp->n_layer; il++)
        n_swa += m->layers[il].swa;
    if (n_swa > 0) {
        printf("  sliding window of %d on %d of %d layers (", hp->n_swa, n_swa, hp->n_layer);
        for (int il = 0, shown = 0; il < hp->n_layer; il++)
            if (m->layers[il].swa && shown++ < 12)
                printf("%s%d", shown > 1 ? " " : "", il);
        printf("%s), RoPE base %g there\n", n_swa > 12 ? " ..." : "", hp->rope_base_swa);
    }
    printf("  embeddings x %g, RMSNorm eps %g", hp->embd_scale, hp->norm_eps);
    if (hp->final_softcap != 0.0f)
        printf(", logits soft-capped at %g", hp->final_softcap);
    printf(", trained context %d\n", hp->n_ctx_train);
    wl_model_free(m);
}

int cmd_inspect(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: wandler inspect MODEL\n\nPrints the GGUF header, every metadata key with its "
                "type and value (long arrays shortened),\nthe tensor table (name, type, shape, "
                "data offset, bytes), and the model as wandler's\nloader understood it (architecture "
                "settings with their defaults applied), or why it\nwould not load.\n");
        return argc == 2 ? 0 : 2;
    }
    gguf_file *f;
    wandler_error err;
    if (gguf_open(argv[1], &f, &err) != WANDLER_OK) {
        fprintf(stderr, "wandler inspect: %s: %s (%s)\n", argv[1], err.message, wandler_status_name(err.code));
        return 1;
    }
    printf("file: %s\n", argv[1]);
    printf("GGUF version %u, %llu bytes, %llu metadata keys, %llu tensors, alignment %u, data at %llu\n",
           gguf_version(f), (unsigned long long)gguf_file_size(f), (unsigned long long)gguf_n_kv(f),
           (unsigned long long)gguf_n_tensors(f), gguf_alignment(f),
           (unsigned long long)gguf_data_offset(f));
    printf("\nmetadata:\n");
    char buf[512];
    for (uint64_t i = 0; i < gguf_n_kv(f); i++)
        printf("  %-44s %-8s %s\n", gguf_kv_key(f, i), gguf_type_name(gguf_kv_type(f, i)),
               gguf_kv_format(f, i, buf, sizeof buf));
    printf("\ntensors:\n  %-36s %-6s %-26s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
    uint64_t total = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[64];
        int n = snprintf(shape, sizeof shape, "[%llu", (unsigned long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims && n < (int)sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, ", %llu", (unsigned long long)t->ne[d]);
        if (n < (int)sizeof shape)
            snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-36s %-6s %-26s %12llu %12llu\n", t->name, wl_type_name(t->type), shape,
               (unsigned long long)t->offset, (unsigned long long)t->nbytes);
        total += t->nbytes;
    }
    printf("\n%llu tensors, %llu bytes of tensor data\n", (unsigned long long)gguf_n_tensors(f),
           (unsigned long long)total);
    print_model(f);
    gguf_close(f);
    return 0;
}
