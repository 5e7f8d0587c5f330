/* model.c - loading a model inline or in a worker, describing it, its figures, disposing of it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "engine/cpu.h"
#include "util/error.h"
#include "worker/spawn.h"

WANDLER_API int wandler_can_use_worker(int kind, const char *worker_path, wandler_error *err)
{
    wl_error_clear(err);
    if (kind != WANDLER_WORKER_THREAD && kind != WANDLER_WORKER_PROCESS)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "kind = %d is not a worker kind", kind);
    return wl_worker_check(kind == WANDLER_WORKER_THREAD ? WL_WORKER_THREAD : WL_WORKER_PROCESS, worker_path, err);
}

static void log_msg(const wandler_model_options *o, int level, const char *msg)
{
    if (o->on_log)
        o->on_log(level, msg, o->log_user);
}

/* ---- inline ---- */

typedef struct inline_load {
    const wandler_model_options *o;
    double deadline;
    int timed_out;
    double fraction;
    int downloaded; /* a DOWNLOAD or VERIFY stage was reported */
} inline_load;

static int inline_progress(void *ctx, int stage, uint64_t done, uint64_t total, double bytes_per_s)
{
    inline_load *l = ctx;
    if (l->deadline && wl_now_ms() > l->deadline) {
        l->timed_out = 1;
        return 1;
    }
    if (stage == WANDLER_STAGE_DOWNLOAD || stage == WANDLER_STAGE_VERIFY)
        l->downloaded = 1;
    double f = wl_load_fraction(stage, done, total, l->downloaded);
    if (f > l->fraction)
        l->fraction = f;
    if (!l->o->on_progress)
        return 0;
    wandler_progress p = {stage, done, total, l->fraction, bytes_per_s};
    return l->o->on_progress(&p, l->o->progress_user);
}

static int load_inline(wandler_model *m, wandler_error *err)
{
    const wandler_model_options *o = &m->options;
    inline_load l = {o, o->timeout_ms > 0 ? wl_now_ms() + o->timeout_ms : 0, 0, 0, 0};
    wl_load_hooks hooks = {inline_progress, &l};
    wl_source_opts src = {o->sha256, o->connect_timeout_ms, o->stall_timeout_ms};
    int rc = wl_session_open(m->path, &src, o->n_threads, o->context_length, &hooks, &m->session, err);
    if (rc == WANDLER_ERR_CANCELLED && l.timed_out)
        rc = wl_error(err, WANDLER_ERR_TIMEOUT, "the load took longer than %d ms", o->timeout_ms);
    if (rc)
        return rc;
    m->mode = WANDLER_MODE_INLINE;
    m->inline_stats.loads = 1;
    m->inline_stats.load_ms = m->session->load_ms;
    return WANDLER_OK;
}

/* ---- worker ---- */

static int load_worker(wandler_model *m, wandler_error *err)
{
    const wandler_model_options *o = &m->options;
    char exe[PATH_MAX];
    int kind = o->worker == WANDLER_WORKER_PROCESS ? WL_WORKER_PROCESS : WL_WORKER_THREAD;
    if (kind == WL_WORKER_PROCESS && wl_worker_find_exe(o->worker_path, exe, sizeof exe, err) != 0)
        return WANDLER_ERR_WORKER_NOT_SUPPORTED;
    wl_bridge_config cfg = {
        .kind = kind,
        .worker_exe = kind == WL_WORKER_PROCESS ? exe : NULL,
        .model_path = m->path,
        .n_threads = o->n_threads,
        .context_length = o->context_length,
        .idle_ms = o->terminate_on_idle_ms,
        .timeout_ms = o->timeout_ms,
        .src = {o->sha256, o->connect_timeout_ms, o->stall_timeout_ms},
        .on_progress = o->on_progress,
        .progress_user = o->progress_user,
    };
    int rc = wl_bridge_open(&cfg, &m->bridge, err);
    if (rc)
        return rc;
    m->mode = kind == WL_WORKER_PROCESS ? WANDLER_MODE_PROCESS : WANDLER_MODE_THREAD;
    return WANDLER_OK;
}

WANDLER_API int wandler_load_model(const char *source, const wandler_model_options *options,
                                   wandler_model **out, wandler_error *err)
{
    wl_error_clear(err);
    if (!out)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!source || !*source)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "source is NULL or empty");
    wandler_model_options o = options ? *options : wandler_model_options_default();
    int rc = wl_model_options_validate(&o, err);
    if (rc)
        return rc;

    wandler_model *m = calloc(1, sizeof *m);
    if (!m)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    m->options = o;
    m->refs = 1;
    pthread_mutex_init(&m->lock, NULL);
    m->path = strdup(source);
    m->worker_path = o.worker_path ? strdup(o.worker_path) : NULL;
    m->options.worker_path = m->worker_path;
    /* kept for reloads (after an idle end or a crash), normalized to 64 lowercase hex digits */
    if (o.sha256)
        wl_source_sha256_valid(o.sha256, m->sha256);
    m->options.sha256 = m->sha256[0] ? m->sha256 : NULL;
    if (!m->path || (o.worker_path && !m->worker_path)) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if (o.use_worker) {
        rc = load_worker(m, err);
        if (rc == WANDLER_ERR_WORKER_NOT_SUPPORTED && o.fallback) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s worker unavailable (%s); running the model inline",
                     o.worker == WANDLER_WORKER_PROCESS ? "process" : "thread", err ? err->message : "");
            log_msg(&o, WANDLER_LOG_WARN, msg);
            wl_error_clear(err);
            rc = load_inline(m, err);
        }
    } else {
        rc = load_inline(m, err);
    }
    if (rc)
        goto fail;
    *out = m;
    return WANDLER_OK;
fail:
    pthread_mutex_destroy(&m->lock);
    free(m->path);
    free(m->worker_path);
    free(m);
    return rc;
}

void wl_model_unref(wandler_model *m)
{
    pthread_mutex_lock(&m->lock);
    int last = --m->refs == 0;
    pthread_mutex_unlock(&m->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->path);
    free(m->worker_path);
    free(m);
}

WANDLER_API void wandler_model_dispose(wandler_model *m)
{
    if (!m)
        return;
    if (m->bridge) {
        wl_bridge_close(m->bridge); /* streams hold the bridge's calls, not the model */
        m->bridge = NULL;
    }
    /* inline: waits for a step in progress on another thread, then frees the model's memory;
     * the streams that remain only hold the (small) handle */
    pthread_mutex_lock(&m->lock);
    wl_session_close(m->session);
    m->session = NULL;
    pthread_mutex_unlock(&m->lock);
    wl_model_unref(m);
}

WANDLER_API int wandler_model_mode(wandler_model *m)
{
    return m ? m->mode : -1;
}

WANDLER_API int wandler_model_info_get(wandler_model *m, wandler_model_info *info)
{
    if (!m || !info)
        return WANDLER_ERR_INVALID_ARGUMENT;
    memset(info, 0, sizeof *info);
    info->path = m->path;
    info->source = m->path;
    if (m->bridge) {
        const wl_model_facts *f = wl_bridge_facts(m->bridge);
        if (f->path)
            info->path = f->path;
        info->architecture = f->architecture;
        info->name = f->name;
        info->isa = f->isa;
        info->file_bytes = f->file_bytes;
        info->n_params = f->n_params;
        info->n_vocab = f->n_vocab;
        info->n_ctx_train = f->n_ctx_train;
        info->n_ctx = f->n_ctx;
        info->n_embd = f->n_embd;
        info->n_layer = f->n_layer;
        info->n_head = f->n_head;
        info->n_head_kv = f->n_head_kv;
        info->n_threads = f->n_threads;
        return WANDLER_OK;
    }
    const wl_session *s = m->session;
    const wl_hparams *hp = &s->model->hp;
    info->path = s->path;
    info->architecture = s->model->arch_name;
    info->name = s->model->name;
    info->file_bytes = gguf_file_size(s->file);
    info->n_params = s->model->n_params;
    info->n_vocab = hp->n_vocab;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_ctx = s->n_ctx;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_threads = s->n_threads;
    info->isa = wl_isa_name(s->isa);
    return WANDLER_OK;
}

/* Rss and Pss of a process from /proc/PID/smaps_rollup, in bytes. */
static void process_memory(int pid, uint64_t *rss, uint64_t *pss)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "Rss: %llu kB", &kb) == 1)
            *rss = kb * 1024;
        else if (sscanf(line, "Pss: %llu kB", &kb) == 1)
            *pss = kb * 1024;
    }
    fclose(f);
}

WANDLER_API int wandler_model_stats(wandler_model *m, wandler_stats *st)
{
    if (!m || !st)
        return WANDLER_ERR_INVALID_ARGUMENT;
    memset(st, 0, sizeof *st);
    st->mode = m->mode;
    if (!m->bridge) {
        pthread_mutex_lock(&m->lock);
        *st = m->inline_stats;
        st->mode = WANDLER_MODE_INLINE;
        if (m->session) {
            st->ctx_bytes = wl_session_ctx_bytes(m->session);
            st->resident_before_load = m->session->resident_before;
            st->cache = m->session->cache.cache;
            st->bytes_downloaded = m->session->cache.bytes_downloaded;
            st->bytes_reused = m->session->cache.bytes_reused;
        }
        pthread_mutex_unlock(&m->lock);
        return WANDLER_OK;
    }
    wl_bridge_stats b;
    wl_bridge_get_stats(m->bridge, &b);
    const wl_model_facts *f = wl_bridge_facts(m->bridge);
    st->worker_alive = b.worker_alive;
    st->worker_pid = m->mode == WANDLER_MODE_PROCESS ? b.worker_pid : 0;
    st->load_ms = b.last_load_ms;
    st->loads = b.loads;
    st->restarts = b.restarts;
    st->crashes = b.crashes;
    st->idle_terminations = b.idle_terminations;
    st->requests = b.requests;
    st->aborts = b.aborts;
    st->timeouts = b.timeouts;
    st->ctx_bytes = f->ctx_bytes;
    st->resident_before_load = f->resident_before;
    st->cache = f->cache;
    st->bytes_downloaded = f->bytes_downloaded;
    st->bytes_reused = f->bytes_reused;
    st->time_to_first_token_ms = b.ttft_ms;
    st->prefill_tokens_per_s = b.prefill_tps;
    st->decode_tokens_per_s = b.decode_tps;
    st->frames_sent = b.traffic.frames_sent;
    st->bytes_sent = b.traffic.bytes_sent;
    st->frames_received = b.traffic.frames_received;
    st->bytes_received = b.traffic.bytes_received;
    st->rtt_mean_us = b.rtt_mean_us;
    st->rtt_p99_us = b.rtt_p99_us;
    st->rtt_samples = b.rtt_samples;
    if (st->worker_pid && st->worker_alive)
        process_memory(st->worker_pid, &st->rss_bytes, &st->pss_bytes);
    return WANDLER_OK;
}
