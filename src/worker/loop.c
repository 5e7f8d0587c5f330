/* loop.c - the worker loop (see loop.h). */
#include "worker/loop.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cpu.h"
#include "gen/gen.h"
#include "gen/session.h"
#include "util/buf.h"
#include "util/error.h"
#include "worker/codec.h"

typedef struct queued {
    uint64_t id;
    int type; /* WL_F_GENERATE or WL_F_STREAM */
    wl_request_msg msg;
    struct queued *next;
} queued;

typedef struct loop {
    int fd;
    wl_session *s;
    queued *head, *tail;  /* requests waiting, in arrival order */

    uint64_t cur_id;      /* the request being computed (0 = none) */
    int cur_type;
    int cur_aborted;      /* an ABORT for cur_id arrived */
    wl_gen *gen;
    wl_buf text;          /* GENERATE: the answer so far */
    wl_buf reasoning;     /* GENERATE: the reasoning so far */

    uint64_t load_id;     /* the LOAD being served (0 = none) */
    int load_aborted;
    int terminate;        /* TERMINATE or end of stream */
    int failed;           /* the channel broke */
} loop;

/* ---- sending ---- */

static void send_frame(loop *L, int type, uint64_t id, wl_fw *w)
{
    if (L->failed)
        return;
    wandler_error err;
    if (w && w->failed) {
        /* out of memory while encoding: tell the host instead */
        wl_error(&err, WANDLER_ERR_OUT_OF_MEMORY, "worker out of memory encoding %s", wl_frame_type_name(type));
        wl_fw e = {0};
        wl_enc_error(&e, &err);
        wl_frame_send(L->fd, WL_F_ERROR, id, e.b.data, e.b.len, NULL, &err);
        wl_fw_free(&e);
        return;
    }
    if (wl_frame_send(L->fd, type, id, w ? w->b.data : NULL, w ? w->b.len : 0, NULL, &err) != WANDLER_OK)
        L->failed = 1;
}

static void send_error(loop *L, uint64_t id, const wandler_error *e)
{
    wl_fw w = {0};
    wl_enc_error(&w, e);
    send_frame(L, WL_F_ERROR, id, &w);
    wl_fw_free(&w);
}

static void send_finish(loop *L, uint64_t id, const wandler_part *fin, const wl_buf *text, const wl_buf *reasoning)
{
    wl_generated_msg g = {.finish_reason = fin->finish_reason, .usage = fin->usage, .timings = fin->timings};
    if (text && text->len) {
        g.text = text->data;
        g.text_len = text->len;
    }
    if (reasoning && reasoning->len) {
        g.reasoning = reasoning->data;
        g.reasoning_len = reasoning->len;
    }
    wl_fw w = {0};
    wl_enc_generated(&w, &g);
    send_frame(L, WL_F_GENERATED, id, &w);
    wl_fw_free(&w);
}

/* ---- the request queue ---- */

static void enqueue(loop *L, queued *q)
{
    if (L->tail)
        L->tail->next = q;
    else
        L->head = q;
    L->tail = q;
}

static queued *dequeue(loop *L)
{
    queued *q = L->head;
    if (q) {
        L->head = q->next;
        if (!L->head)
            L->tail = NULL;
    }
    return q;
}

static void free_queued(queued *q)
{
    wl_request_msg_free(&q->msg);
    free(q);
}

/* An ABORT for a request still waiting: it ends at once, with nothing generated. */
static int abort_queued(loop *L, uint64_t id)
{
    for (queued **pp = &L->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        queued *q = *pp;
        if (q->id != id)
            continue;
        *pp = q->next;
        if (L->tail == q)
            L->tail = prev;
        wandler_part fin = {.type = WANDLER_PART_FINISH, .finish_reason = WANDLER_FINISH_ABORT};
        send_finish(L, id, &fin, NULL, NULL);
        free_queued(q);
        return 1;
    }
    return 0;
}

/* ---- handling frames ---- */

static void handle_load(loop *L, const wl_frame *f);

static void handle_request(loop *L, const wl_frame *f)
{
    wandler_error err;
    queued *q = calloc(1, sizeof *q);
    if (!q) {
        wl_error(&err, WANDLER_ERR_OUT_OF_MEMORY, "worker out of memory");
        send_error(L, f->id, &err);
        return;
    }
    q->id = f->id;
    q->type = f->type;
    if (wl_dec_request(f, &q->msg, &err) != WANDLER_OK || wl_request_validate(&q->msg.req, &err) != WANDLER_OK) {
        send_error(L, f->id, &err);
        free_queued(q);
        return;
    }
    enqueue(L, q);
}

static void handle_frame(loop *L, const wl_frame *f)
{
    wandler_error err;
    wl_fw w = {0};
    switch (f->type) {
    case WL_F_HELLO: {
        wl_hello h;
        if (wl_dec_hello(f, &h, &err) != WANDLER_OK) {
            send_error(L, f->id, &err);
            break;
        }
        wl_hello me = {WL_PROTOCOL_VERSION,
                       (WANDLER_VERSION_MAJOR << 16) | (WANDLER_VERSION_MINOR << 8) | WANDLER_VERSION_PATCH,
                       (uint32_t)getpid()};
        wl_enc_hello(&w, &me, 1);
        send_frame(L, WL_F_HELLO_ACK, f->id, &w);
        break;
    }
    case WL_F_LOAD:
        if (L->load_id || L->gen) { /* the model is in use: refuse to replace it under itself */
            wl_error(&err, WANDLER_ERR_PROTOCOL, "LOAD while %s is in progress", L->gen ? "a request" : "another LOAD");
            send_error(L, f->id, &err);
        } else {
            handle_load(L, f);
        }
        break;
    case WL_F_GENERATE:
    case WL_F_STREAM:
        handle_request(L, f);
        break;
    case WL_F_ABORT:
        if (wl_dec_empty(f, &err) != WANDLER_OK)
            send_error(L, f->id, &err);
        else if (f->id && f->id == L->cur_id)
            L->cur_aborted = 1;
        else if (f->id && f->id == L->load_id)
            L->load_aborted = 1;
        else
            abort_queued(L, f->id); /* an id that already ended is not an error */
        break;
    case WL_F_RESET:
        if (L->s)
            wl_session_reset(L->s);
        send_frame(L, WL_F_RESET_ACK, f->id, NULL);
        break;
    case WL_F_TERMINATE:
        L->terminate = 1;
        break;
    case WL_F_PING: {
        uint64_t stamp;
        if (wl_dec_ping(f, &stamp, &err) != WANDLER_OK) {
            send_error(L, f->id, &err);
            break;
        }
        wl_enc_ping(&w, stamp);
        send_frame(L, WL_F_PONG, f->id, &w);
        break;
    }
    default: /* wl_frame_recv only passes host->worker types */
        break;
    }
    wl_fw_free(&w);
}

/* Receives and handles one frame; blocks until one arrives. */
static void receive_one(loop *L)
{
    wl_frame f;
    wandler_error err;
    int rc = wl_frame_recv(L->fd, 1, &f, NULL, &err);
    if (rc == WANDLER_DONE) {
        L->terminate = 1;
        return;
    }
    if (rc != WANDLER_OK) {
        /* a malformed frame is reported, then the channel is abandoned: its framing is lost */
        send_error(L, 0, &err);
        L->failed = 1;
        return;
    }
    handle_frame(L, &f);
    wl_frame_free(&f);
}

/* Handles every frame that has already arrived, without waiting. */
static void drain(loop *L)
{
    struct pollfd p = {.fd = L->fd, .events = POLLIN};
    while (!L->terminate && !L->failed && poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
        receive_one(L);
}

/* The stop check of the running request: reads what the host sent meanwhile. */
static int request_should_stop(void *ctx)
{
    loop *L = ctx;
    drain(L);
    return L->cur_aborted || L->terminate || L->failed;
}

/* ---- loading ---- */

static int load_progress(void *ctx, int stage, uint64_t done, uint64_t total, double bytes_per_s)
{
    loop *L = ctx;
    wl_progress_msg p = {(uint32_t)stage, done, total, bytes_per_s};
    wl_fw w = {0};
    wl_enc_progress(&w, &p);
    send_frame(L, WL_F_PROGRESS, L->load_id, &w);
    wl_fw_free(&w);
    drain(L);
    return L->load_aborted || L->terminate || L->failed;
}

static void handle_load(loop *L, const wl_frame *f)
{
    wandler_error err;
    wl_load_msg m;
    if (wl_dec_load(f, &m, &err) != WANDLER_OK) {
        send_error(L, f->id, &err);
        return;
    }
    if (L->s) { /* a new LOAD replaces the model */
        wl_session_close(L->s);
        L->s = NULL;
    }
    L->load_id = f->id;
    L->load_aborted = 0;
    wl_load_hooks hooks = {load_progress, L};
    /* a URL or hf:// source is downloaded here, in the worker, abortable like the load */
    wl_source_opts src = {m.sha256, m.connect_timeout_ms, m.stall_timeout_ms};
    int rc = wl_session_open(m.path, &src, m.n_threads, m.context_length, &hooks, &L->s, &err);
    wl_load_msg_free(&m);
    L->load_id = 0;
    if (rc != WANDLER_OK) {
        send_error(L, f->id, &err);
        return;
    }
    const wl_session *s = L->s;
    const wl_hparams *hp = &s->model->hp;
    wl_model_facts facts = {
        .architecture = (char *)s->model->arch_name,
        .name = s->model->name,
        .isa = (char *)wl_isa_name(s->isa),
        .file_bytes = gguf_file_size(s->file),
        .n_params = s->model->n_params,
        .n_vocab = hp->n_vocab,
        .n_ctx_train = hp->n_ctx_train,
        .n_ctx = s->n_ctx,
        .n_embd = hp->n_embd,
        .n_layer = hp->n_layer,
        .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv,
        .n_threads = s->n_threads,
        .load_ms = s->load_ms,
        .ctx_bytes = wl_session_ctx_bytes(s),
        .resident_before = s->resident_before,
        .path = s->path,
        .cache = s->cache.cache,
        .bytes_downloaded = s->cache.bytes_downloaded,
        .bytes_reused = s->cache.bytes_reused,
    };
    wl_fw w = {0};
    wl_enc_facts(&w, &facts);
    send_frame(L, WL_F_LOADED, f->id, &w);
    wl_fw_free(&w);
}

/* ---- running requests ---- */

static void start_next(loop *L)
{
    queued *q = dequeue(L);
    wandler_error err;
    if (!L->s) {
        wl_error(&err, WANDLER_ERR_PROTOCOL, "request before a model was loaded");
        send_error(L, q->id, &err);
        free_queued(q);
        return;
    }
    L->cur_id = q->id;
    L->cur_type = q->type;
    L->cur_aborted = 0;
    wl_buf_clear(&L->text);
    wl_buf_clear(&L->reasoning);
    wl_stop_check stop = {request_should_stop, L};
    if (wl_gen_create(L->s, &q->msg.req, &stop, &L->gen, &err) != WANDLER_OK) {
        send_error(L, q->id, &err);
        L->cur_id = 0;
    }
    free_queued(q);
}

/* Computes the next part of the running request and sends it. */
static void step(loop *L)
{
    wandler_part part;
    if (wl_gen_next(L->gen, &part) != WANDLER_OK) { /* cannot happen: DONE ends the request below */
        L->cur_id = 0;
        return;
    }
    switch (part.type) {
    case WANDLER_PART_TEXT_DELTA:
    case WANDLER_PART_REASONING_DELTA:
        if (L->cur_type == WL_F_STREAM) {
            wl_fw w = {0};
            wl_enc_chunk(&w, part.type, part.text, part.len);
            send_frame(L, WL_F_CHUNK, L->cur_id, &w);
            wl_fw_free(&w);
        } else if (wl_buf_append(part.type == WANDLER_PART_TEXT_DELTA ? &L->text : &L->reasoning, part.text,
                                 part.len) != 0) {
            wandler_error err;
            wl_error(&err, WANDLER_ERR_OUT_OF_MEMORY, "worker out of memory keeping the answer");
            send_error(L, L->cur_id, &err);
            goto done;
        }
        return;
    case WANDLER_PART_FINISH:
        send_finish(L, L->cur_id, &part, &L->text, &L->reasoning);
        goto done;
    case WANDLER_PART_ERROR:
        send_error(L, L->cur_id, &part.error);
        goto done;
    }
done:
    wl_gen_free(L->gen);
    L->gen = NULL;
    L->cur_id = 0;
}

int wl_worker_loop(int fd)
{
    loop L = {.fd = fd};
    while (!L.terminate && !L.failed) {
        if (L.gen) {
            drain(&L);
            if (!L.terminate && !L.failed)
                step(&L);
        } else if (L.head) {
            start_next(&L);
        } else {
            receive_one(&L);
        }
    }
    wl_gen_free(L.gen);
    while (L.head)
        free_queued(dequeue(&L));
    wl_session_close(L.s);
    wl_buf_free(&L.text);
    wl_buf_free(&L.reasoning);
    return L.failed ? 1 : 0;
}
