#include "gen/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "engine/cpu.h"
#include "engine/repack_cache.h"
#include "source/cache.h"
#include "util/error.h"

/* Default cap of the context window: the KV cache of a model trained on 128k tokens would
 * otherwise take gigabytes the caller did not ask for. */
#define DEFAULT_MAX_CTX 4096

double wl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double wl_load_fraction(int stage, uint64_t done, uint64_t total, int downloaded)
{
    /* open, metadata, tensors, warm-up, ready, then resolve, download, verify */
    static const double start[] = {0, 0.0, 0.05, 0.15, 0.85, 1.0, 0.0, 0.01, 0.90};
    static const double span[] = {0, 0.05, 0.10, 0.70, 0.15, 0.0, 0.01, 0.89, 0.05};
    if (stage < WANDLER_STAGE_OPEN || stage > WANDLER_STAGE_VERIFY)
        return 0.0;
    double in = total ? (double)(done < total ? done : total) / (double)total : 0.0;
    double f = start[stage] + span[stage] * in;
    if (downloaded && stage <= WANDLER_STAGE_READY)
        f = 0.95 + 0.05 * f; /* after a download, the load is the last stretch */
    return f;
}

static int report(const wl_load_hooks *h, int stage, uint64_t done, uint64_t total, wandler_error *err)
{
    if (h && h->progress && h->progress(h->ctx, stage, done, total, 0))
        return wl_error(err, WANDLER_ERR_CANCELLED, "the load was cancelled");
    return WANDLER_OK;
}

/* Fraction of the pages of the file at path that are in memory (the page cache) right now. */
static double resident_fraction(const gguf_file *f)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t size = (size_t)gguf_file_size(f);
    const size_t pages = (size + page - 1) / page;
    if (pages == 0 || !gguf_path(f)[0])
        return 0.0;
    unsigned char *vec = malloc(pages);
    if (!vec)
        return 0.0;
    double frac = 0.0;
    if (mincore((void *)gguf_base(f), size, vec) == 0) {
        size_t in = 0;
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
        frac = (double)in / (double)pages;
    }
    free(vec);
    return frac;
}

int wl_repack_cached(wl_model *m, const gguf_file *f, int isa, struct wl_repack **out, wandler_error *err)
{
    char *dir = NULL;
    *out = NULL;
    int rc = wl_cache_subdir(WL_REPACK_SUBDIR, &dir, err);
    if (rc == WANDLER_OK)
        rc = wl_repack_model(m, f, isa, dir, out, err);
    free(dir);
    return rc;
}

/* The model's Q4_0 matrices from their repacked cache file (repack_cache.h), for the kernel
 * family s->isa. Not being able to (no cache directory, a full disk) is no reason to fail the
 * load: the matrices are then read from the GGUF file's rows, as repack_cache.h says, and only
 * running out of memory fails it. */
static int repack(wl_session *s, wandler_error *err)
{
    wandler_error e;
    const int rc = wl_repack_cached(s->model, s->file, s->isa, &s->repack, &e);
    if (rc == WANDLER_ERR_OUT_OF_MEMORY) {
        if (err)
            *err = e;
        return rc;
    }
    return WANDLER_OK;
}

int wl_session_open(const char *source, const wl_source_opts *src, int n_threads, int context_length,
                    const wl_load_hooks *hooks, wl_session **out, wandler_error *err)
{
    *out = NULL;
    const double t0 = wl_now_ms();
    wl_session *s = calloc(1, sizeof *s);
    if (!s)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    int rc;
    s->isa = wl_isa_best();
    /* a URL or hf:// source becomes its cached file (downloaded first when it is not there) */
    wl_source_hooks sh = {hooks ? hooks->progress : NULL, hooks ? hooks->ctx : NULL};
    if ((rc = wl_source_resolve(source, src, &sh, &s->path, &s->cache, err)))
        goto fail;
    if ((rc = report(hooks, WANDLER_STAGE_OPEN, 0, 1, err)) || (rc = gguf_open(s->path, &s->file, err)))
        goto fail;
    /* measured before anything reads the weights: were they already cached by the system? */
    s->resident_before = resident_fraction(s->file);
    const uint64_t n_tensors = gguf_n_tensors(s->file);
    if ((rc = report(hooks, WANDLER_STAGE_METADATA, 0, 1, err)) ||
        (rc = report(hooks, WANDLER_STAGE_TENSORS, 0, n_tensors, err)) ||
        (rc = wl_model_load(s->file, &s->model, err)) || (rc = repack(s, err)) ||
        (rc = report(hooks, WANDLER_STAGE_TENSORS, n_tensors, n_tensors, err)) ||
        (rc = wl_vocab_load(s->file, &s->vocab, err)) ||
        (rc = report(hooks, WANDLER_STAGE_WARMUP, 0, 1, err)))
        goto fail;

    gguf_str tpl;
    if (gguf_get_str(s->file, "tokenizer.chat_template", &tpl, NULL) == WANDLER_OK && tpl.len > 0 &&
        !(s->chat_template = strndup(tpl.ptr, tpl.len))) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    const wl_hparams *hp = &s->model->hp;
    if (wl_vocab_size(s->vocab) != hp->n_vocab) {
        rc = wl_error(err, WANDLER_ERR_MODEL_BAD_VOCAB,
                      "the vocabulary has %d tokens but token_embd.weight has %d rows",
                      wl_vocab_size(s->vocab), hp->n_vocab);
        goto fail;
    }

    s->n_threads = n_threads > 0 ? n_threads : wl_cpu_count();
    s->n_ctx = context_length > 0 ? context_length
                                  : (hp->n_ctx_train < DEFAULT_MAX_CTX ? hp->n_ctx_train : DEFAULT_MAX_CTX);
    if ((rc = wl_pool_create(s->n_threads, &s->pool, err)) ||
        (rc = wl_ctx_create(s->model, s->n_ctx, s->pool, s->isa, &s->ctx, err)))
        goto fail;
    s->cached = malloc((size_t)s->n_ctx * sizeof *s->cached);
    s->logits = malloc((size_t)hp->n_vocab * sizeof *s->logits);
    if (!s->cached || !s->logits) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((rc = report(hooks, WANDLER_STAGE_READY, 1, 1, err)))
        goto fail;
    s->load_ms = wl_now_ms() - t0;
    *out = s;
    return WANDLER_OK;

fail:
    wl_session_close(s);
    return rc;
}

void wl_session_close(wl_session *s)
{
    if (!s)
        return;
    wl_ctx_free(s->ctx);
    wl_pool_destroy(s->pool);
    wl_vocab_free(s->vocab);
    wl_model_free(s->model);
    wl_repack_free(s->repack);
    gguf_close(s->file);
    free(s->cached);
    free(s->logits);
    free(s->chat_template);
    free(s->path);
    free(s);
}

void wl_session_reset(wl_session *s)
{
    s->n_cached = 0;
    s->logits_valid = 0;
}

size_t wl_session_ctx_bytes(const wl_session *s)
{
    return wl_ctx_bytes(s->ctx) + (size_t)s->n_ctx * sizeof *s->cached +
           (size_t)s->model->hp.n_vocab * sizeof *s->logits;
}

int wl_session_eval(wl_session *s, const int32_t *tokens, int n, const wl_stop_check *stop, int *n_evaluated,
                    wandler_error *err)
{
    if (n_evaluated)
        *n_evaluated = 0;
    if (n < 1)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "nothing to evaluate");
    if (n > s->n_ctx)
        return wl_error(err, WANDLER_ERR_CONTEXT_FULL, "%d tokens do not fit the context window of %d", n,
                        s->n_ctx);

    /* keep the longest common prefix; at least the last token is run to produce its logits
     * unless the cache already ends exactly there */
    int keep = 0;
    while (keep < n && keep < s->n_cached && s->cached[keep] == tokens[keep])
        keep++;
    if (keep == n && s->n_cached == n && s->logits_valid)
        return WANDLER_OK;
    if (keep == n)
        keep = n - 1;

    s->n_cached = keep;
    s->logits_valid = 0;
    const int batch = wl_ctx_max_batch(s->ctx);
    for (int pos = keep; pos < n; pos += batch) {
        if (wl_should_stop(stop))
            return WL_ABORTED;
        int nb = n - pos < batch ? n - pos : batch;
        int rc = wl_forward(s->ctx, tokens + pos, nb, pos, pos + nb == n ? s->logits : NULL, err);
        if (rc)
            return rc;
        memcpy(s->cached + pos, tokens + pos, (size_t)nb * sizeof *tokens);
        s->n_cached = pos + nb;
        if (n_evaluated)
            *n_evaluated += nb;
    }
    /* Corrupt weights (a NaN or Inf block scale in a quantized tensor: checking every scale at
     * load would read the whole file and defeat the mapping) show up here as non-finite logits.
     * Refuse them clearly rather than sample from garbage; the KV cache holds the same garbage,
     * so it is dropped too. */
    const float *lg = s->logits;
    for (int i = 0; i < s->model->hp.n_vocab; i++) {
        if (!isfinite(lg[i])) {
            s->n_cached = 0;
            return wl_error(err, WANDLER_ERR_MODEL_BAD_TENSOR_DATA,
                            "the model computed a non-finite logit (%s for token %d at position %d): its "
                            "weights hold NaN or Inf values (a corrupt or badly quantized file)",
                            isnan(lg[i]) ? "NaN" : "Inf", i, n - 1);
        }
    }
    s->logits_valid = 1;
    return WANDLER_OK;
}
