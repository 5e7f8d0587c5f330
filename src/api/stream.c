/* stream.c - streamed and whole generations, inline or through a worker.
 *
 * Inline, each wandler_stream_next() computes the next part on the calling thread, holding the
 * model's lock while it does, so streams of one model used from several threads take turns
 * (the session's prefix cache keeps each of them correct). With a worker, parts arrive through
 * the bridge and wandler_stream_next() only waits for them. */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "api/api.h"
#include "util/error.h"

/* ---- bookkeeping shared by both modes ---- */

/* Records a part the caller is about to see (text kept for wandler_stream_result). */
static void record(wandler_stream *st, const wandler_part *p)
{
    pthread_mutex_lock(&st->lock);
    if (p->type == WANDLER_PART_TEXT_DELTA || p->type == WANDLER_PART_REASONING_DELTA) {
        wl_buf *b = p->type == WANDLER_PART_TEXT_DELTA ? &st->text : &st->reasoning;
        if (wl_buf_append(b, p->text, p->len) != 0)
            st->text_lost = 1; /* the caller still gets the part; only the result fails */
    } else {
        st->done = 1;
        st->last = *p;
        st->last.text = NULL;
        pthread_cond_broadcast(&st->done_cond);
    }
    pthread_mutex_unlock(&st->lock);
}

/* Inline: figures of finished requests. Model lock held. */
static void count_inline(wandler_model *m, const wandler_part *p)
{
    wandler_stats *s = &m->inline_stats;
    s->requests++;
    if (p->type == WANDLER_PART_FINISH) {
        if (p->finish_reason == WANDLER_FINISH_ABORT)
            s->aborts++;
        if (p->finish_reason == WANDLER_FINISH_TIMEOUT)
            s->timeouts++;
        s->time_to_first_token_ms = p->timings.time_to_first_token_ms;
        s->prefill_tokens_per_s = p->timings.prefill_tokens_per_s;
        s->decode_tokens_per_s = p->timings.decode_tokens_per_s;
    }
}

static int inline_stop(void *ctx)
{
    wandler_stream *st = ctx;
    if (atomic_load_explicit(&st->abort, memory_order_relaxed))
        return 1;
    if (st->deadline && wl_now_ms() > st->deadline) {
        st->timed_out = 1;
        return 1;
    }
    return 0;
}

/* Inline: computes the next part. */
static int inline_next(wandler_stream *st, wandler_part *part)
{
    wandler_model *m = st->model;
    pthread_mutex_lock(&m->lock);
    if (!m->session) {
        pthread_mutex_unlock(&m->lock);
        memset(part, 0, sizeof *part);
        part->type = WANDLER_PART_ERROR;
        part->finish_reason = WANDLER_FINISH_ERROR;
        wl_error(&part->error, WANDLER_ERR_DISPOSED, "the model was disposed");
        return WANDLER_OK;
    }
    int rc = wl_gen_next(st->gen, part);
    if (rc == WANDLER_OK && part->type == WANDLER_PART_FINISH && st->timed_out &&
        part->finish_reason == WANDLER_FINISH_ABORT)
        part->finish_reason = WANDLER_FINISH_TIMEOUT;
    if (rc == WANDLER_OK && part->type != WANDLER_PART_TEXT_DELTA)
        count_inline(m, part);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Worker: parts delivered by the bridge's I/O thread to a callback stream. */
static void bridge_part(const wandler_part *part, void *user)
{
    wandler_stream *st = user;
    /* The callback runs first: record() of the final part wakes wandler_stream_result(), which
     * must not return before the caller's callback has seen that part. */
    st->on_part(part, st->user);
    record(st, part);
}

static void stream_destroy(wandler_stream *st)
{
    if (st->inline_mode)
        wl_model_unref(st->model);
    if (st->efd >= 0)
        close(st->efd);
    wl_buf_free(&st->text);
    wl_buf_free(&st->reasoning);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->done_cond);
    free(st);
}

static int stream_start(wandler_model *m, const wandler_request *r, int stream, wandler_part_fn on_part,
                        void *user, wandler_stream **out, wandler_error *err)
{
    wl_error_clear(err);
    if (!out)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!m)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "model is NULL");
    int rc = wl_request_validate(r, err);
    if (rc)
        return rc;
    wandler_stream *st = calloc(1, sizeof *st);
    if (!st)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    st->model = m;
    st->on_part = on_part;
    st->user = user;
    st->efd = -1;
    atomic_init(&st->abort, 0);
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->done_cond, NULL);

    if (m->bridge) {
        rc = wl_bridge_submit(m->bridge, r, stream, on_part ? bridge_part : NULL, st, &st->call, err);
        if (rc) {
            stream_destroy(st);
            return rc;
        }
        *out = st;
        return WANDLER_OK;
    }

    st->inline_mode = 1;
    pthread_mutex_lock(&m->lock);
    m->refs++;
    pthread_mutex_unlock(&m->lock);
    st->efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK); /* inline: a part is always ready */
    int timeout = r->timeout_ms > 0 ? r->timeout_ms : m->options.timeout_ms;
    st->deadline = timeout > 0 ? wl_now_ms() + timeout : 0;
    wl_stop_check stop = {inline_stop, st};
    if (st->efd < 0) {
        stream_destroy(st);
        return wl_error(err, WANDLER_ERR_SYSTEM, "eventfd failed");
    }
    pthread_mutex_lock(&m->lock);
    rc = m->session ? wl_gen_create(m->session, r, &stop, &st->gen, err)
                    : wl_error(err, WANDLER_ERR_DISPOSED, "the model was disposed");
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        stream_destroy(st);
        return rc;
    }
    if (on_part) { /* inline callbacks: the whole generation, here and now */
        wandler_part part;
        while (inline_next(st, &part) == WANDLER_OK) {
            record(st, &part);
            on_part(&part, user);
        }
    }
    *out = st;
    return WANDLER_OK;
}

WANDLER_API int wandler_stream_text(wandler_model *m, const wandler_request *r, wandler_stream **out,
                                    wandler_error *err)
{
    return stream_start(m, r, 1, NULL, NULL, out, err);
}

WANDLER_API int wandler_stream_text_cb(wandler_model *m, const wandler_request *r, wandler_part_fn on_part,
                                       void *user, wandler_stream **out, wandler_error *err)
{
    if (!on_part) {
        wl_error_clear(err);
        if (out)
            *out = NULL;
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "on_part is NULL");
    }
    return stream_start(m, r, 1, on_part, user, out, err);
}

WANDLER_API int wandler_stream_next(wandler_stream *st, wandler_part *part, int timeout_ms)
{
    if (!st || !part || st->on_part)
        return WANDLER_ERR_INVALID_ARGUMENT;
    if (st->done)
        return WANDLER_DONE;
    int rc = st->inline_mode ? inline_next(st, part) : wl_call_next(st->call, part, timeout_ms);
    if (rc == WANDLER_OK)
        record(st, part);
    return rc;
}

WANDLER_API int wandler_stream_fd(wandler_stream *st)
{
    if (!st)
        return -1;
    return st->inline_mode ? st->efd : wl_call_fd(st->call);
}

WANDLER_API void wandler_stream_abort(wandler_stream *st)
{
    if (!st)
        return;
    atomic_store(&st->abort, 1); /* an atomic store: safe in a signal handler (inline) */
    if (st->call)
        wl_call_abort(st->call);
}

WANDLER_API int wandler_stream_result(wandler_stream *st, wandler_result *res, wandler_error *err)
{
    wl_error_clear(err);
    if (res)
        memset(res, 0, sizeof *res);
    if (!st || !res)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "stream or result is NULL");
    if (st->on_part) {
        pthread_mutex_lock(&st->lock);
        while (!st->done)
            pthread_cond_wait(&st->done_cond, &st->lock);
        pthread_mutex_unlock(&st->lock);
    } else {
        wandler_part part;
        while (!st->done && wandler_stream_next(st, &part, -1) == WANDLER_OK)
            ;
    }
    pthread_mutex_lock(&st->lock);
    res->text_len = st->text.len;
    res->text = st->text.data ? strdup(st->text.data) : calloc(1, 1);
    res->reasoning_len = st->reasoning.len;
    res->reasoning = st->reasoning.data ? strdup(st->reasoning.data) : calloc(1, 1);
    res->finish_reason = st->last.finish_reason;
    res->usage = st->last.usage;
    res->timings = st->last.timings;
    int rc = WANDLER_OK;
    if (st->last.type == WANDLER_PART_ERROR)
        rc = wl_error(err, st->last.error.code, "%s", st->last.error.message);
    else if (st->text_lost || !res->text || !res->reasoning)
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory keeping the stream's text");
    else if (st->last.finish_reason == WANDLER_FINISH_TIMEOUT)
        rc = wl_error(err, WANDLER_ERR_TIMEOUT, "the request ran into its timeout after %d tokens",
                      st->last.usage.completion_tokens);
    pthread_mutex_unlock(&st->lock);
    if (!res->text)
        res->text_len = 0;
    if (!res->reasoning)
        res->reasoning_len = 0;
    return rc;
}

WANDLER_API void wandler_stream_free(wandler_stream *st)
{
    if (!st)
        return;
    if (st->call)
        wl_call_release(st->call); /* aborts an unfinished request; no callback runs after this */
    wl_gen_free(st->gen);
    stream_destroy(st);
}

WANDLER_API int wandler_generate_text(wandler_model *m, const wandler_request *r, wandler_result *res,
                                      wandler_error *err)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!res)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "result is NULL");
    wandler_stream *st;
    /* with a worker the answer comes whole (one frame) rather than as deltas */
    int rc = stream_start(m, r, 0, NULL, NULL, &st, err);
    if (rc)
        return rc;
    rc = wandler_stream_result(st, res, err);
    wandler_stream_free(st);
    return rc;
}

WANDLER_API void wandler_result_free(wandler_result *res)
{
    if (!res)
        return;
    free(res->text);
    free(res->reasoning);
    memset(res, 0, sizeof *res);
}
