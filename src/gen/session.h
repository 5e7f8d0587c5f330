/* session.h - a loaded model ready to run: file mapping, weights, vocabulary, threads, and the
 * KV cache of the one sequence it holds.
 *
 * Both runners (inline on the caller's thread, and the worker loop) own one session per model.
 * The session remembers which tokens its KV cache holds, so a request that starts with the same
 * tokens as the previous one (a shared system prompt, a chat's history) evaluates only what is
 * new, and requests that take turns on one session each get correct results. */
#ifndef WL_GEN_SESSION_H
#define WL_GEN_SESSION_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "source/source.h"
#include "text/vocab.h"
#include "wandler.h"

/* Returned (never to the public API) when a stop check stopped the work. */
#define WL_ABORTED (-1)

/* Polled between tokens and between batches of a prompt (and between the stages of a load);
 * returns nonzero to stop. fn NULL = never stop. */
typedef struct wl_stop_check {
    int (*fn)(void *ctx);
    void *ctx;
} wl_stop_check;

static inline int wl_should_stop(const wl_stop_check *s)
{
    return s && s->fn && s->fn(s->ctx);
}

/* Load progress: called at each stage (WANDLER_STAGE_*) with items done of total (and, for
 * DOWNLOAD, the speed); returns nonzero to cancel the load. fn NULL = no reports. A download
 * calls it about every 100 ms, so a cancel (or an ABORT read by the hook) stops it promptly. */
typedef struct wl_load_hooks {
    int (*progress)(void *ctx, int stage, uint64_t done, uint64_t total, double bytes_per_s);
    void *ctx;
} wl_load_hooks;

typedef struct wl_session {
    gguf_file *file;
    wl_model *model;
    struct wl_repack *repack; /* its repacked matrices (repack_cache.h), or NULL */
    wl_vocab *vocab;
    wl_pool *pool;
    wl_ctx *ctx;
    int isa;         /* kernel family in use */
    int n_threads;
    int n_ctx;       /* context window */
    double load_ms;  /* wall time of wl_session_open */
    double resident_before; /* fraction of the file's pages in memory before the load */
    char *chat_template;    /* tokenizer.chat_template (owned copy), NULL when absent */
    char *path;             /* the local file mapped (the cached file of a remote source) */
    wl_cache_info cache;    /* what the model cache did for this load */

    int32_t *cached; /* (n_ctx) tokens whose keys/values the cache holds, positions 0..n_cached-1 */
    int n_cached;
    float *logits;   /* (n_vocab) logits after the last cached token, when logits_valid */
    int logits_valid;
} wl_session;

/* Resolves the source (a local path, a URL or hf://: see source/source.h; src may be NULL),
 * opens the GGUF file and builds everything needed to run it, reporting progress through hooks
 * (may be NULL). Errors: as wandler_load_model(), and CANCELLED when the progress hook asked to
 * stop. */
int wl_session_open(const char *source, const wl_source_opts *src, int n_threads, int context_length,
                    const wl_load_hooks *hooks, wl_session **out, wandler_error *err);
void wl_session_close(wl_session *s);

/* Brings the cache to hold exactly tokens[0..n) and s->logits to the logits after tokens[n-1],
 * evaluating only what the cache does not already hold, in batches. Polls `stop` (may be NULL)
 * between batches and returns WL_ABORTED when it says so. *n_evaluated (when not NULL)
 * gets the number of tokens actually run through the model.
 * Errors: CONTEXT_FULL (n > n_ctx), INVALID_ARGUMENT (n < 1, a token outside the vocabulary). */
int wl_session_eval(wl_session *s, const int32_t *tokens, int n, const wl_stop_check *stop,
                    int *n_evaluated, wandler_error *err);

/* Bytes of the KV cache and scratch buffers. */
size_t wl_session_ctx_bytes(const wl_session *s);

/* Forgets the cached tokens (the next eval starts from position 0). */
void wl_session_reset(wl_session *s);

/* The overall fraction 0..1 of a load at `stage` with done of total items of that stage (the
 * stages weigh by how long they take). `downloaded`: the load has reported a DOWNLOAD or VERIFY
 * stage, which then take most of the range and the load stages the last 5%. */
double wl_load_fraction(int stage, uint64_t done, uint64_t total, int downloaded);

/* The model's Q4_0 matrices from their repacked cache file in the cache root's repack/ folder
 * (wl_repack_model, repack_cache.h), for kernel family isa, as every load does; *out as there.
 * Errors: those of wl_cache_subdir (source/cache.h) and wl_repack_model; after any of them m is
 * as loaded and may run. */
int wl_repack_cached(wl_model *m, const gguf_file *f, int isa, struct wl_repack **out, wandler_error *err);

/* Monotonic clock in milliseconds. */
double wl_now_ms(void);

#endif
