/* quantize.c - `wandler quantize` as a library function (see quantize.h). */
#include "tools/quantize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"
#include "engine/tensor_type.h"
#include "engine/threadpool.h"
#include "tools/convert.h"
#include "tools/quant_plan.h"
#include "util/error.h"

#define SLAB_VALUES (1u << 20) /* floats converted per step: 4 MiB of F32 */

/* The model's block count and query heads per KV head, for the mix rules. */
static void model_dims(const gguf_file *f, int *n_layer, int *n_gqa, int *is_70b)
{
    *n_layer = 0;
    *n_gqa = 1;
    *is_70b = 0;
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, NULL) != WANDLER_OK || arch.len > 64)
        return;
    char key[128];
    int64_t v, heads = 0, heads_kv = 0;
    snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
    if (gguf_get_int(f, key, &v, NULL) == WANDLER_OK && v > 0 && v < 100000)
        *n_layer = (int)v;
    snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch.len, arch.ptr);
    if (gguf_get_int(f, key, &v, NULL) == WANDLER_OK)
        heads = v;
    snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
    heads_kv = gguf_get_int(f, key, &v, NULL) == WANDLER_OK ? v : heads;
    if (heads > 0 && heads_kv > 0)
        *n_gqa = (int)(heads / heads_kv);
    *is_70b = arch.len == 5 && !memcmp(arch.ptr, "llama", 5) && *n_layer == 80 && heads != heads_kv;
}

static void note(const wl_quantize_params *p, const char *msg)
{
    if (p->note && msg[0])
        p->note(p->note_ctx, msg);
}

static int is_float_type(uint32_t t)
{
    return t == WL_TYPE_F32 || t == WL_TYPE_F16 || t == WL_TYPE_BF16;
}

/* Converts and streams tensor t (of format src->type) as `type`. */
static int stream_tensor(gguf_writer *w, wl_pool *pool, const gguf_tensor *t, uint32_t type, float *fbuf,
                         void *qbuf, wandler_error *err)
{
    const int64_t ne0 = (int64_t)t->ne[0];
    const uint64_t rows = t->nbytes / wl_row_bytes(t->type, (uint64_t)ne0);
    const size_t in_rb = wl_row_bytes(t->type, (uint64_t)ne0), out_rb = wl_row_bytes(type, (uint64_t)ne0);
    int64_t slab = (int64_t)(SLAB_VALUES / (uint64_t)ne0);
    if (slab < 1)
        slab = 1;
    for (uint64_t r = 0; r < rows; r += (uint64_t)slab) {
        const int64_t n = (int64_t)(rows - r < (uint64_t)slab ? rows - r : (uint64_t)slab);
        const char *src = (const char *)t->data + r * in_rb;
        for (int64_t i = 0; i < n; i++)
            wl_dequantize_row(t->type, src + (size_t)i * in_rb, fbuf + i * ne0, ne0);
        if (wl_convert_rows(pool, type, fbuf, qbuf, n, ne0) != 0)
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%s': the quantizer cannot write %s", t->name,
                            wl_type_name(type));
        int rc = gguf_writer_write_data(w, qbuf, (size_t)n * out_rb, err);
        if (rc)
            return rc;
    }
    return WANDLER_OK;
}

int wl_quantize_file(const char *in, const char *out, const wl_quantize_params *p, wandler_error *err)
{
    const wl_ftype *ft = p->ftype ? wl_ftype_find(p->ftype) : NULL;
    if (!ft)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "unknown file type '%s'", p->ftype ? p->ftype : "(null)");
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    wl_pool *pool = NULL;
    FILE *fp = NULL;
    char *vbuf = NULL; /* fp's stdio buffer (GGUF_WRITE_STDIO_BUFFER) */
    size_t *order = NULL;
    const char **names = NULL;
    uint32_t *types = NULL;
    float *fbuf = NULL;
    void *qbuf = NULL;
    wl_quant_plan plan;
    int have_plan = 0, rc;
    char msg[512];

    if ((rc = gguf_open(in, &f, err)))
        return rc;
    const uint64_t n = gguf_n_tensors(f);
    names = malloc((n ? n : 1) * sizeof *names);
    order = malloc((n ? n : 1) * sizeof *order);
    types = malloc((n ? n : 1) * sizeof *types);
    if (!names || !order || !types) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < n; i++)
        names[i] = gguf_tensor_at(f, i)->name;
    if ((rc = wl_quant_order(names, n, order, err)))
        goto done;

    /* plan every tensor's format first, so that nothing is written when one cannot be made */
    int n_layer, n_gqa, is_70b;
    model_dims(f, &n_layer, &n_gqa, &is_70b);
    wl_quant_plan_init(&plan, ft, n_layer, n_gqa, is_70b, names, n);
    have_plan = 1;
    plan.pure = p->pure;
    for (int i = 0; i < p->n_tensor_types; i++)
        if ((rc = wl_quant_plan_add_override(&plan, p->tensor_types[i], err)))
            goto done;
    const char *fixed[2] = {p->output_type, p->embd_type};
    int64_t *slot[2] = {&plan.output_type, &plan.embd_type};
    for (int i = 0; i < 2; i++)
        if (fixed[i]) {
            int t = wl_type_from_name(fixed[i]);
            if (t < 0) {
                rc = wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "unknown tensor format '%s'", fixed[i]);
                goto done;
            }
            *slot[i] = t;
        }
    uint64_t widest = 1;
    for (uint64_t k = 0; k < n; k++) {
        const gguf_tensor *t = gguf_tensor_at(f, order[k]);
        uint32_t type = wl_quant_plan_type(&plan, t->name, t->n_dims, t->ne, t->type, msg, sizeof msg);
        note(p, msg);
        types[order[k]] = type;
        if (type == t->type)
            continue;
        if (!is_float_type(t->type)) {
            rc = wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                          "tensor '%s' is already %s; quantize takes F32, F16 or BF16 weights", t->name,
                          wl_type_name(t->type));
            goto done;
        }
        if (!wl_convert_available(type) || wl_row_bytes(type, t->ne[0]) == 0) {
            rc = wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "tensor '%s' needs format %s, which the quantizer does not write yet",
                          t->name, wl_type_name(type));
            goto done;
        }
        if (t->ne[0] > widest)
            widest = t->ne[0];
    }

    /* metadata: everything, then the quantization version and the file type, last */
    if ((rc = gguf_writer_new(&w, err)))
        goto done;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_kv_key(f, i);
        if (!strcmp(key, "general.quantization_version") || !strcmp(key, "general.file_type") ||
            !strncmp(key, "split.", 6))
            continue;
        if ((rc = gguf_writer_copy_kv(w, f, i, err)))
            goto done;
    }
    if ((rc = gguf_writer_set_u32(w, "general.quantization_version", 2, err)) ||
        (rc = gguf_writer_set_u32(w, "general.file_type", ft->ftype, err)))
        goto done;
    for (uint64_t k = 0; k < n; k++) {
        const gguf_tensor *t = gguf_tensor_at(f, order[k]);
        const uint32_t type = types[order[k]];
        if ((rc = gguf_writer_add_tensor(w, t->name, type, t->n_dims, t->ne, type == t->type ? t->data : NULL, err)))
            goto done;
    }

    /* stream_tensor converts max(1, SLAB_VALUES / ne0) rows at a time: at most this many values */
    const uint64_t cap = widest > SLAB_VALUES ? widest : SLAB_VALUES;
    fbuf = malloc(cap * sizeof(float));
    qbuf = malloc(cap * sizeof(float)); /* no format is wider than F32 */
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
    for (uint64_t k = 0; k < n && !rc; k++) {
        const gguf_tensor *t = gguf_tensor_at(f, order[k]);
        if (types[order[k]] != t->type)
            rc = stream_tensor(w, pool, t, types[order[k]], fbuf, qbuf, err);
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
    gguf_close(f);
    free(names);
    free(order);
    free(types);
    free(fbuf);
    free(qbuf);
    return rc;
}
