/* bridge.c - the host side of a model's worker (see bridge.h).
 *
 * Locking: b->lock guards every field of the bridge and of its calls. The I/O thread is the
 * only one that starts, writes to and reaps the worker; it releases the lock only around
 * poll() and around user callbacks. Callers wait on their call's condition variable, or (the
 * direct reader, see may_read_directly) in poll() on the worker's socket, which the I/O thread
 * then neither reads nor closes until it has taken the socket back (reclaim_socket). */
#include "worker/bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "gen/session.h"
#include "util/error.h"
#include "worker/spawn.h"

#define KILL_GRACE_MS 1000 /* a process worker that ignores an ABORT this long is killed */
#define TERMINATE_GRACE_MS 2000
#define RTT_SAMPLES 1024
#define WAKE_MAX 16 /* readers woken after one I/O thread pass; more are woken at once */

enum load_state { LOAD_NONE, LOAD_LOADING, LOAD_READY, LOAD_FAILED };

typedef struct qpart {
    wandler_part part;
    char *text; /* owned text of a delta or of a GENERATE's whole answer */
} qpart;

struct wl_call {
    wl_bridge *b;
    int refs;              /* the caller's, and the bridge's while the call is pending */
    uint64_t id;
    int stream;
    wl_fw frame;           /* the encoded request, kept to resend it to a replacement worker */
    int sent;              /* sent to the current worker */
    int pending;           /* in b->calls: not finished */
    int abort_requested, abort_sent, timed_out, released;
    int in_callback;       /* the I/O thread is inside on_part for this call */
    int wake_queued;       /* in b->wake: its reader is woken once the I/O thread unlocks */
    int fd_used;           /* wl_call_fd() was asked for: the reader polls that, never the socket */
    double deadline;       /* monotonic ms; 0 = none */
    double kill_at;        /* 0 = none */
    wl_part_fn on_part;
    void *user;
    qpart q[WL_CALL_QUEUE + 1]; /* deltas fill at most WL_CALL_QUEUE; the final part always fits */
    int q_head, q_len;
    int final_queued, final_returned;
    char *cur_text;        /* the text of the part last returned by wl_call_next */
    int efd;               /* readable while parts are queued */
    pthread_cond_t cond;
    struct wl_call *next;  /* b->calls, in submission order */
};

struct wl_bridge {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* load state and closing */
    int refs;            /* the owner's + one per live call */
    wl_bridge_config cfg;
    char *model_path, *worker_exe;

    pthread_t io;
    int io_started;
    int wake_fd;
    int closing, io_done;

    wl_worker w;
    wl_frame_rx rx;       /* read by the I/O thread, or by the direct reader (below) */
    wl_frame_tx tx;       /* written by the I/O thread only */
    wl_frame held;        /* a frame read but not handled yet (its call's queue is full, or the */
    int have_held;        /* direct reader left it to the I/O thread): handled before any other */

    /* Direct reading (see wl_call_next): while the reader of the streamed call the worker is
     * serving waits for parts, it reads the worker's socket itself, so a part costs one
     * wake-up (the reader's) instead of two (the I/O thread's, then the reader's). */
    wl_call *direct;      /* the call whose reader owns the socket's reading side, or NULL */
    int direct_polling;   /* that reader is inside poll() on the socket, without the lock */
    int direct_wake_fd;   /* an eventfd that interrupts that poll */
    int rx_failed;        /* the direct reader met a bad frame: the I/O thread ends the worker */
    int rx_ended;         /* the direct reader met the end of the socket (or a bad frame): it
                             is the I/O thread's until the worker is gone */
    wandler_error rx_err;
    int killed;           /* we killed the worker (a timeout): waiting calls are sent again */
    int load_state;
    uint64_t load_id;
    double load_deadline, load_kill_at;
    int load_cancel, load_cancel_sent, load_timed_out;
    double progress_fraction;
    int progress_download; /* this load reported a DOWNLOAD or VERIFY stage */
    char src_sha256[65];   /* copy of cfg.src.sha256 */
    wandler_error load_err;
    wl_model_facts facts;
    int have_facts;

    wl_call *calls, *calls_tail;
    uint64_t next_id;
    double idle_since;    /* when the last call ended; 0 while calls are pending */

    /* calls whose readers the I/O thread wakes once it has released the lock (see deliver) */
    wl_call *wake[WAKE_MAX];
    int n_wake;

    wl_bridge_stats st;
    double rtt[RTT_SAMPLES];
    int rtt_n, rtt_pos;
    int ping_out;
};

static double now_ms(void)
{
    return wl_now_ms();
}

static void wake(wl_bridge *b)
{
    uint64_t one = 1;
    ssize_t rc = write(b->wake_fd, &one, sizeof one);
    (void)rc; /* the counter cannot overflow in practice; a failed wake only delays */
}

/* ---- call queue (lock held) ---- */

static void efd_set_fd(int fd)
{
    uint64_t one = 1;
    ssize_t rc = write(fd, &one, sizeof one);
    (void)rc;
}

static void efd_set(wl_call *c, int readable)
{
    uint64_t v;
    if (readable) {
        v = 1;
        ssize_t rc = write(c->efd, &v, sizeof v);
        (void)rc;
    } else {
        ssize_t rc = read(c->efd, &v, sizeof v); /* non-blocking: resets the counter */
        (void)rc;
    }
}

static void bridge_unref(wl_bridge *b); /* lock held on entry, released by it */

static void call_free(wl_call *c)
{
    for (int i = 0; i < c->q_len; i++)
        free(c->q[(c->q_head + i) % (WL_CALL_QUEUE + 1)].text);
    free(c->cur_text);
    wl_fw_free(&c->frame);
    close(c->efd);
    pthread_cond_destroy(&c->cond);
    free(c);
}

/* Drops a reference; frees the call (and maybe the bridge) at zero. Lock held; the bridge's
 * lock is released when the bridge itself goes away (*gone set). */
static int call_unref(wl_call *c)
{
    if (--c->refs > 0)
        return 0;
    wl_bridge *b = c->b;
    call_free(c);
    b->refs--;
    return 1;
}

static void wake_now(wl_bridge *b);

/* Delivers a part to the call: its callback, or its queue. Lock held (released around the
 * callback). Returns 0, or -1 when a delta finds the queue full (the caller retries later). */
static int deliver(wl_bridge *b, wl_call *c, const wandler_part *p, char *text)
{
    int final = p->type != WANDLER_PART_TEXT_DELTA;
    if (c->released) { /* nobody will read it */
        free(text);
        if (final)
            c->final_queued = 1;
        return 0;
    }
    if (c->on_part) {
        wandler_part copy = *p;
        if (text)
            copy.text = text;
        c->in_callback++;
        wake_now(b); /* readers woken before user code that may take its time */
        pthread_mutex_unlock(&b->lock);
        c->on_part(&copy, c->user);
        pthread_mutex_lock(&b->lock);
        c->in_callback--;
        pthread_cond_broadcast(&c->cond);
        free(text);
        if (final)
            c->final_queued = 1;
        return 0;
    }
    if (c->q_len >= WL_CALL_QUEUE && !final)
        return -1;
    qpart *q = &c->q[(c->q_head + c->q_len) % (WL_CALL_QUEUE + 1)];
    q->part = *p;
    q->text = text;
    if (c->q_len++ == 0)
        efd_set(c, 1);
    if (final)
        c->final_queued = 1;
    /* On the I/O thread, the reader is woken only after the lock is released: woken now, it
     * would run, block on the lock this thread still holds and be woken a second time (two
     * context switches per part instead of one, each taking a core from the computation). */
    if (b->direct == c && b->direct_polling) /* its reader is polling the socket, not the queue */
        efd_set_fd(b->direct_wake_fd);
    if (c->wake_queued)
        return 0;
    if (b->n_wake < WAKE_MAX && b->io_started && pthread_equal(pthread_self(), b->io)) {
        c->refs++; /* the call outlives a release until the wake-up is done */
        c->wake_queued = 1;
        b->wake[b->n_wake++] = c;
    } else {
        pthread_cond_broadcast(&c->cond);
    }
    return 0;
}

/* I/O thread, lock held: takes the list of readers to wake (see deliver); returns its length. */
static int take_wakes(wl_bridge *b, wl_call **out)
{
    int n = b->n_wake;
    for (int i = 0; i < n; i++) {
        out[i] = b->wake[i];
        out[i]->wake_queued = 0;
    }
    b->n_wake = 0;
    return n;
}

/* Lock held: drops the references take_wakes() handed out. */
static void wakes_done(wl_call **calls, int n)
{
    for (int i = 0; i < n; i++)
        call_unref(calls[i]);
}

/* Lock held: wakes the queued readers now (before the I/O thread blocks on something else). */
static void wake_now(wl_bridge *b)
{
    wl_call *woken[WAKE_MAX];
    int n = take_wakes(b, woken);
    for (int i = 0; i < n; i++)
        pthread_cond_broadcast(&woken[i]->cond);
    wakes_done(woken, n);
}

/* Ends a call with a final part (FINISH or ERROR) and takes it off the pending list. */
static void finish_call(wl_bridge *b, wl_call *c, const wandler_part *final, char *text);

static void unlink_call(wl_bridge *b, wl_call *c)
{
    for (wl_call **pp = &b->calls, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp != c)
            continue;
        *pp = c->next;
        if (b->calls_tail == c)
            b->calls_tail = prev;
        c->next = NULL;
        break;
    }
    c->pending = 0;
    if (!b->calls)
        b->idle_since = now_ms();
}

static void error_part(wandler_part *p, int code, const char *msg)
{
    memset(p, 0, sizeof *p);
    p->type = WANDLER_PART_ERROR;
    p->finish_reason = WANDLER_FINISH_ERROR;
    p->error.code = code;
    snprintf(p->error.message, sizeof p->error.message, "%s", msg);
}

static void finish_call(wl_bridge *b, wl_call *c, const wandler_part *final, char *text)
{
    if (!c->pending) {
        free(text);
        return;
    }
    deliver(b, c, final, text); /* a final part always has room */
    unlink_call(b, c);
    call_unref(c); /* the bridge's reference */
}

/* ---- sending (lock held) ---- */

static void push(wl_bridge *b, int type, uint64_t id, const wl_fw *w)
{
    wandler_error err;
    if (wl_frame_tx_push(&b->tx, type, id, w ? w->b.data : NULL, w ? w->b.len : 0, &b->st.traffic, &err) != 0) {
        /* out of memory for a control frame: the next loop iteration retries what matters */
    }
}

static void send_ping(wl_bridge *b)
{
    if (b->ping_out || b->load_state != LOAD_READY)
        return;
    wl_fw w = {0};
    double t = now_ms();
    uint64_t stamp;
    memcpy(&stamp, &t, sizeof stamp);
    wl_enc_ping(&w, stamp);
    push(b, WL_F_PING, 0, &w);
    wl_fw_free(&w);
    b->ping_out = 1;
}

/* ---- the worker's life (I/O thread, lock held) ---- */

static void fail_all(wl_bridge *b, int code, const char *msg)
{
    wandler_part p;
    error_part(&p, code, msg);
    while (b->calls)
        finish_call(b, b->calls, &p, NULL);
}

static void start_worker(wl_bridge *b)
{
    wandler_error err;
    if (b->st.loads > 0 || b->st.crashes > 0)
        b->st.restarts++;
    if (wl_worker_start(b->cfg.kind, b->worker_exe, &b->w, &err) != WANDLER_OK) {
        b->load_state = LOAD_FAILED;
        b->load_err = err;
        fail_all(b, err.code, err.message);
        pthread_cond_broadcast(&b->cond);
        return;
    }
    fcntl(b->w.fd, F_SETFL, fcntl(b->w.fd, F_GETFL) | O_NONBLOCK);
    b->killed = 0;
    b->ping_out = 0;
    wl_frame_tx_clear(&b->tx);
    wl_frame_rx_free(&b->rx);
    wl_fw w = {0};
    wl_hello h = {WL_PROTOCOL_VERSION,
                  (WANDLER_VERSION_MAJOR << 16) | (WANDLER_VERSION_MINOR << 8) | WANDLER_VERSION_PATCH, 0};
    wl_enc_hello(&w, &h, 0);
    push(b, WL_F_HELLO, 0, &w);
    wl_fw_free(&w);
    wl_fw l = {0};
    wl_enc_load_src(&l, b->model_path, b->cfg.n_threads, b->cfg.context_length, &b->cfg.src);
    b->load_id = ++b->next_id;
    push(b, WL_F_LOAD, b->load_id, &l);
    wl_fw_free(&l);
    b->load_state = LOAD_LOADING;
    b->load_deadline = b->cfg.timeout_ms > 0 ? now_ms() + b->cfg.timeout_ms : 0;
    b->load_kill_at = 0;
    b->load_cancel = b->load_cancel_sent = b->load_timed_out = 0;
    b->progress_fraction = 0;
    b->progress_download = 0;
    for (wl_call *c = b->calls; c; c = c->next)
        c->sent = c->abort_sent = 0;
}

/* Takes the socket's reading side back from a direct reader (I/O thread, lock held); waits
 * until that reader has left poll(). */
static void reclaim_socket(wl_bridge *b)
{
    b->direct = NULL;
    while (b->direct_polling) {
        efd_set_fd(b->direct_wake_fd);
        pthread_cond_wait(&b->cond, &b->lock);
    }
}

/* Ends the worker (it ended by itself, crashed, or is being terminated) and settles the calls. */
static void worker_gone(wl_bridge *b, int expected, const char *cause)
{
    char how[160];
    int pid = (int)b->w.pid;
    int was_process = b->w.kind == WL_WORKER_PROCESS;
    reclaim_socket(b); /* no reader may poll the fd that reaping closes */
    b->rx_failed = b->rx_ended = 0;
    wake_now(b); /* reaping may wait for the worker */
    if (b->w.running && wl_worker_reap(&b->w, TERMINATE_GRACE_MS, how, sizeof how) != 0) {
        wl_worker_kill(&b->w);
        wl_worker_reap(&b->w, -1, how, sizeof how);
    }
    wl_frame_tx_clear(&b->tx);
    wl_frame_rx_free(&b->rx);
    int was_loading = b->load_state == LOAD_LOADING;
    b->load_state = LOAD_NONE;
    b->ping_out = 0;
    if (expected)
        return;

    char msg[256];
    if (was_process)
        snprintf(msg, sizeof msg, "worker process %d %s%s%s", pid, how, cause ? ": " : "", cause ? cause : "");
    else
        snprintf(msg, sizeof msg, "worker thread ended unexpectedly%s%s", cause ? ": " : "", cause ? cause : "");
    if (b->killed) {
        /* we killed it because a request ignored its timeout: that request ends with the
         * timeout; those still waiting go to the next worker */
        b->killed = 0;
        wandler_part p;
        for (wl_call *c = b->calls, *next; c; c = next) {
            next = c->next;
            if (c->timed_out && c->kill_at) {
                memset(&p, 0, sizeof p);
                p.type = WANDLER_PART_FINISH;
                p.finish_reason = WANDLER_FINISH_TIMEOUT;
                finish_call(b, c, &p, NULL);
            }
        }
        if (was_loading) {
            b->load_state = LOAD_FAILED;
            wl_error(&b->load_err, WANDLER_ERR_TIMEOUT, "the load took longer than %d ms", b->cfg.timeout_ms);
            fail_all(b, WANDLER_ERR_TIMEOUT, b->load_err.message);
        }
        pthread_cond_broadcast(&b->cond);
        return;
    }
    b->st.crashes++;
    if (was_loading) {
        b->load_state = LOAD_FAILED;
        wl_error(&b->load_err, WANDLER_ERR_WORKER_CRASHED, "%s while loading", msg);
    }
    fail_all(b, WANDLER_ERR_WORKER_CRASHED, msg);
    pthread_cond_broadcast(&b->cond);
}

static void terminate_worker(wl_bridge *b)
{
    if (!b->w.running)
        return;
    wandler_error err;
    push(b, WL_F_TERMINATE, 0, NULL);
    /* the socket is non-blocking: give the worker a moment to take TERMINATE */
    for (int i = 0; i < 100 && wl_frame_tx_flush(&b->tx, b->w.fd, &err) == WANDLER_AGAIN; i++) {
        struct pollfd p = {.fd = b->w.fd, .events = POLLOUT};
        poll(&p, 1, 10);
    }
    worker_gone(b, 1, NULL);
}

/* ---- frames from the worker (I/O thread, lock held) ---- */

static wl_call *find_call(wl_bridge *b, uint64_t id)
{
    for (wl_call *c = b->calls; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void record_rtt(wl_bridge *b, uint64_t stamp)
{
    double sent;
    memcpy(&sent, &stamp, sizeof sent);
    double us = (now_ms() - sent) * 1000.0;
    if (!(us >= 0 && us < 1e9))
        return;
    b->rtt[b->rtt_pos] = us;
    b->rtt_pos = (b->rtt_pos + 1) % RTT_SAMPLES;
    if (b->rtt_n < RTT_SAMPLES)
        b->rtt_n++;
    b->st.rtt_samples++;
}

static void on_progress(wl_bridge *b, const wl_frame *f)
{
    wl_progress_msg m;
    wandler_error err;
    if (f->id != b->load_id || wl_dec_progress(f, &m, &err) != WANDLER_OK)
        return;
    if (m.stage == WANDLER_STAGE_DOWNLOAD || m.stage == WANDLER_STAGE_VERIFY)
        b->progress_download = 1;
    double frac = wl_load_fraction((int)m.stage, m.done, m.total, b->progress_download);
    if (frac > b->progress_fraction)
        b->progress_fraction = frac;
    if (!b->cfg.on_progress)
        return;
    wandler_progress p = {(int)m.stage, m.done, m.total, b->progress_fraction, m.bytes_per_s};
    wandler_progress_fn fn = b->cfg.on_progress;
    void *user = b->cfg.progress_user;
    wake_now(b);
    pthread_mutex_unlock(&b->lock);
    int cancel = fn(&p, user);
    pthread_mutex_lock(&b->lock);
    if (cancel && b->load_state == LOAD_LOADING)
        b->load_cancel = 1;
}

static void on_loaded(wl_bridge *b, const wl_frame *f)
{
    wandler_error err;
    wl_model_facts facts;
    if (f->id != b->load_id || wl_dec_facts(f, &facts, &err) != WANDLER_OK) {
        worker_gone(b, 0, "it sent a malformed LOADED frame");
        return;
    }
    wl_model_facts_free(&b->facts);
    b->facts = facts;
    b->have_facts = 1;
    b->load_state = LOAD_READY;
    b->st.loads++;
    b->st.last_load_ms = facts.load_ms;
    if (!b->calls)
        b->idle_since = now_ms(); /* the idle timer runs from the end of the load */
    pthread_cond_broadcast(&b->cond);
    send_ping(b);
}

static void on_worker_error(wl_bridge *b, const wl_frame *f)
{
    wandler_error e, err;
    if (wl_dec_error(f, &e, &err) != WANDLER_OK) {
        worker_gone(b, 0, err.message);
        return;
    }
    if (f->id == b->load_id && b->load_state == LOAD_LOADING) {
        if (b->load_timed_out)
            wl_error(&e, WANDLER_ERR_TIMEOUT, "the load took longer than %d ms", b->cfg.timeout_ms);
        b->load_state = LOAD_FAILED;
        b->load_err = e;
        fail_all(b, e.code, e.message);
        terminate_worker(b);
        b->load_state = LOAD_FAILED;
        pthread_cond_broadcast(&b->cond);
        return;
    }
    wl_call *c = find_call(b, f->id);
    if (!c) {
        if (f->id == 0) /* the worker's complaint about the channel itself: it is leaving */
            worker_gone(b, 0, e.message);
        return;
    }
    wandler_part p;
    error_part(&p, e.code, e.message);
    finish_call(b, c, &p, NULL);
    b->st.requests++;
}

/* Returns 1 when the frame could not be delivered yet (its call's queue is full). */
static int on_chunk(wl_bridge *b, const wl_frame *f)
{
    wl_call *c = find_call(b, f->id);
    if (!c)
        return 0; /* a request that already ended (aborted): drop */
    int type;
    char *text;
    size_t len;
    wandler_error err;
    if (wl_dec_chunk(f, &type, &text, &len, &err) != WANDLER_OK) {
        worker_gone(b, 0, err.message);
        return 0;
    }
    if (c->abort_requested || c->timed_out) { /* its reader is done with it */
        free(text);
        return 0;
    }
    wandler_part p = {.type = type, .text = text, .len = len};
    if (deliver(b, c, &p, text) != 0) {
        free(text);
        return 1;
    }
    return 0;
}

static void on_generated(wl_bridge *b, const wl_frame *f)
{
    wl_call *c = find_call(b, f->id);
    wl_generated_msg g;
    wandler_error err;
    if (wl_dec_generated(f, &g, &err) != WANDLER_OK) {
        worker_gone(b, 0, err.message);
        return;
    }
    if (!c) {
        free(g.text);
        return;
    }
    wandler_part p = {.type = WANDLER_PART_FINISH, .finish_reason = g.finish_reason, .usage = g.usage,
                      .timings = g.timings};
    if (c->timed_out) {
        p.finish_reason = WANDLER_FINISH_TIMEOUT;
        b->st.timeouts++;
    } else if (g.finish_reason == WANDLER_FINISH_ABORT) {
        b->st.aborts++;
    }
    b->st.requests++;
    b->st.ttft_ms = g.timings.time_to_first_token_ms;
    b->st.prefill_tps = g.timings.prefill_tokens_per_s;
    b->st.decode_tps = g.timings.decode_tokens_per_s;
    if (!c->stream) { /* GENERATE: the whole answer arrives at once; hand it out as two deltas */
        wandler_part d = {.type = WANDLER_PART_REASONING_DELTA, .text = g.reasoning, .len = g.reasoning_len};
        if (g.reasoning_len && deliver(b, c, &d, g.reasoning) == 0)
            g.reasoning = NULL;
        d = (wandler_part){.type = WANDLER_PART_TEXT_DELTA, .text = g.text, .len = g.text_len};
        if (g.text_len && deliver(b, c, &d, g.text) == 0)
            g.text = NULL;
    }
    free(g.text);
    free(g.reasoning);
    finish_call(b, c, &p, NULL);
    if (!b->calls)
        send_ping(b);
}

/* Handles one frame; returns 1 when it must be handled again later (back-pressure). */
static int on_frame(wl_bridge *b, const wl_frame *f)
{
    wandler_error err;
    switch (f->type) {
    case WL_F_HELLO_ACK: {
        wl_hello h;
        if (wl_dec_hello(f, &h, &err) != WANDLER_OK) {
            worker_gone(b, 0, err.message);
        } else if (h.protocol != WL_PROTOCOL_VERSION) {
            char msg[200];
            snprintf(msg, sizeof msg, "the worker speaks protocol %u, this library %d", h.protocol, WL_PROTOCOL_VERSION);
            b->load_state = LOAD_FAILED;
            wl_error(&b->load_err, WANDLER_ERR_WORKER_VERSION, "%s", msg);
            fail_all(b, WANDLER_ERR_WORKER_VERSION, msg);
            terminate_worker(b);
            b->load_state = LOAD_FAILED;
            pthread_cond_broadcast(&b->cond);
        } else {
            b->st.worker_pid = (int)h.pid;
        }
        return 0;
    }
    case WL_F_PROGRESS:
        on_progress(b, f);
        return 0;
    case WL_F_LOADED:
        on_loaded(b, f);
        return 0;
    case WL_F_CHUNK:
        return on_chunk(b, f);
    case WL_F_GENERATED:
        on_generated(b, f);
        return 0;
    case WL_F_ERROR:
        on_worker_error(b, f);
        return 0;
    case WL_F_RESET_ACK:
        return 0;
    case WL_F_PONG: {
        uint64_t stamp;
        if (wl_dec_ping(f, &stamp, &err) == WANDLER_OK)
            record_rtt(b, stamp);
        b->ping_out = 0;
        return 0;
    }
    }
    return 0;
}

/* ---- timers and outgoing work (I/O thread, lock held) ---- */

static void run_timers(wl_bridge *b, double now)
{
    /* a load past its deadline, or cancelled by the progress callback */
    if (b->load_state == LOAD_LOADING && !b->load_cancel_sent &&
        (b->load_cancel || (b->load_deadline && now >= b->load_deadline))) {
        if (!b->load_cancel) {
            b->st.timeouts++;
            b->load_timed_out = 1;
        }
        push(b, WL_F_ABORT, b->load_id, NULL);
        b->load_cancel_sent = 1;
        if (b->w.kind == WL_WORKER_PROCESS)
            b->load_kill_at = now + KILL_GRACE_MS;
    }
    if (b->load_kill_at && now >= b->load_kill_at && b->w.running) {
        b->load_kill_at = 0;
        b->killed = 1;
        wl_worker_kill(&b->w);
    }
    for (wl_call *c = b->calls; c; c = c->next) {
        if (c->deadline && now >= c->deadline && !c->timed_out) {
            c->timed_out = 1;
            c->abort_requested = 1;
            if (b->w.kind == WL_WORKER_PROCESS)
                c->kill_at = now + KILL_GRACE_MS;
        }
        if (c->abort_requested && !c->abort_sent && c->sent) {
            push(b, WL_F_ABORT, c->id, NULL);
            c->abort_sent = 1;
        }
        if (c->kill_at && now >= c->kill_at && b->w.running) {
            /* the worker did not stop: replace it */
            b->killed = 1;
            wl_worker_kill(&b->w);
        }
    }
    if (b->cfg.idle_ms > 0 && !b->calls && b->w.running && b->load_state == LOAD_READY && b->idle_since &&
        now - b->idle_since >= b->cfg.idle_ms) {
        terminate_worker(b);
        b->st.idle_terminations++;
    }
}

/* Milliseconds until the next timer, or -1. */
static int next_timer(const wl_bridge *b, double now)
{
    double next = 0;
#define CONSIDER(t) \
    if ((t) > 0 && (next == 0 || (t) < next)) \
    next = (t)
    if (b->load_state == LOAD_LOADING && !b->load_cancel_sent)
        CONSIDER(b->load_deadline);
    CONSIDER(b->load_kill_at);
    for (const wl_call *c = b->calls; c; c = c->next) {
        if (!c->timed_out)
            CONSIDER(c->deadline);
        CONSIDER(c->kill_at);
    }
    if (b->cfg.idle_ms > 0 && !b->calls && b->w.running && b->idle_since)
        CONSIDER(b->idle_since + b->cfg.idle_ms);
#undef CONSIDER
    if (next == 0)
        return -1;
    double ms = next - now;
    return ms <= 0 ? 0 : ms > 1e6 ? 1000000 : (int)ms + 1;
}

static void send_requests(wl_bridge *b)
{
    wl_call *next;
    for (wl_call *c = b->calls; c; c = next) {
        next = c->next;
        if (c->sent)
            continue;
        if (c->abort_requested) { /* aborted before it was sent: it ends here */
            wandler_part p = {.type = WANDLER_PART_FINISH,
                              .finish_reason = c->timed_out ? WANDLER_FINISH_TIMEOUT : WANDLER_FINISH_ABORT};
            if (c->timed_out)
                b->st.timeouts++;
            else
                b->st.aborts++;
            finish_call(b, c, &p, NULL);
            continue;
        }
        push(b, c->stream ? WL_F_STREAM : WL_F_GENERATE, c->id, &c->frame);
        c->sent = 1;
    }
}

static void *io_main(void *arg)
{
    wl_bridge *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!b->closing) {
        double now = now_ms();
        /* a worker is wanted when there is a load to do or calls to serve */
        if (!b->w.running && (b->load_state == LOAD_LOADING || b->calls) && b->load_state != LOAD_FAILED)
            start_worker(b);
        if (!b->w.running && b->load_state == LOAD_FAILED && b->calls) {
            /* the last load failed: a new request tries again */
            b->load_state = LOAD_NONE;
            start_worker(b);
        }
        if (b->rx_failed && b->w.running)
            worker_gone(b, 0, b->rx_err.message);
        if (b->have_held && on_frame(b, &b->held) == 0) {
            wl_frame_free(&b->held);
            b->have_held = 0;
        }
        if (b->w.running)
            send_requests(b);
        run_timers(b, now);

        wandler_error err;
        if (b->w.running && wl_frame_tx_pending(&b->tx)) {
            int rc = wl_frame_tx_flush(&b->tx, b->w.fd, &err);
            if (rc != WANDLER_OK && rc != WANDLER_AGAIN)
                worker_gone(b, 0, err.message);
        }

        struct pollfd p[2] = {{.fd = b->wake_fd, .events = POLLIN}, {.fd = -1}};
        if (b->w.running) {
            p[1].fd = b->w.fd;
            /* with a direct reader, only the end of the worker (POLLHUP) wakes this thread */
            p[1].events = (b->have_held || b->direct ? 0 : POLLIN) | (wl_frame_tx_pending(&b->tx) ? POLLOUT : 0);
            if (b->have_held && !p[1].events)
                p[1].fd = -1; /* nothing to do with it until the held frame is handled: a POLLHUP
                                 (a dead worker) would only make this loop spin */
        }
        int timeout = next_timer(b, now);
        if (b->have_held && (timeout < 0 || timeout > 20))
            timeout = 20; /* re-check the full queue: its reader may have taken parts */
        wl_call *woken[WAKE_MAX];
        int n_woken = take_wakes(b, woken);
        pthread_mutex_unlock(&b->lock);
        for (int i = 0; i < n_woken; i++)
            pthread_cond_broadcast(&woken[i]->cond);
        int n = poll(p, 2, timeout);
        pthread_mutex_lock(&b->lock);
        wakes_done(woken, n_woken);
        if (n <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t rc = read(b->wake_fd, &v, sizeof v);
            (void)rc;
        }
        if (b->direct && p[1].fd >= 0 && (p[1].revents & (POLLHUP | POLLERR))) {
            reclaim_socket(b); /* the worker is gone: settle it now, even while the reader is away */
            b->rx_ended = 1;
        }
        if (b->w.running && p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !b->have_held &&
            !b->direct) {
            for (int i = 0; i < 64 && b->w.running && !b->have_held && !b->direct; i++) {
                wl_frame f;
                int rc = wl_frame_rx_read(&b->rx, b->w.fd, 0, &f, &b->st.traffic, &err);
                if (rc == WANDLER_AGAIN)
                    break;
                if (rc == WANDLER_DONE) {
                    worker_gone(b, 0, NULL);
                    break;
                }
                if (rc != WANDLER_OK) {
                    worker_gone(b, 0, err.message);
                    break;
                }
                if (on_frame(b, &f) != 0) {
                    b->held = f;
                    b->have_held = 1;
                } else {
                    wl_frame_free(&f);
                }
            }
        }
    }
    if (b->have_held)
        wl_frame_free(&b->held);
    b->have_held = 0;
    /* closing: every pending call ends, the worker ends */
    fail_all(b, WANDLER_ERR_DISPOSED, "the model was disposed");
    terminate_worker(b);
    wake_now(b);
    b->io_done = 1;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* ---- public side ---- */

static void bridge_free(wl_bridge *b)
{
    wl_model_facts_free(&b->facts);
    wl_frame_tx_free(&b->tx);
    wl_frame_rx_free(&b->rx);
    if (b->wake_fd >= 0)
        close(b->wake_fd);
    if (b->direct_wake_fd >= 0)
        close(b->direct_wake_fd);
    free(b->model_path);
    free(b->worker_exe);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    free(b);
}

static void bridge_unref(wl_bridge *b)
{
    int last = --b->refs == 0;
    pthread_mutex_unlock(&b->lock);
    if (last)
        bridge_free(b);
}

int wl_bridge_open(const wl_bridge_config *cfg, wl_bridge **out, wandler_error *err)
{
    *out = NULL;
    wl_bridge *b = calloc(1, sizeof *b);
    if (!b)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    b->cfg = *cfg;
    if (cfg->src.sha256) {
        snprintf(b->src_sha256, sizeof b->src_sha256, "%s", cfg->src.sha256);
        b->cfg.src.sha256 = b->src_sha256;
    }
    b->model_path = strdup(cfg->model_path);
    b->worker_exe = cfg->worker_exe ? strdup(cfg->worker_exe) : NULL;
    b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    b->direct_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    b->w.fd = -1;
    b->refs = 1;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    if (!b->model_path || (cfg->worker_exe && !b->worker_exe) || b->wake_fd < 0 || b->direct_wake_fd < 0) {
        bridge_free(b);
        return wl_error(err, WANDLER_ERR_SYSTEM, "cannot set up a worker bridge: %s", strerror(errno));
    }
    b->load_state = LOAD_LOADING; /* the I/O thread starts the worker and loads */
    int rc = pthread_create(&b->io, NULL, io_main, b);
    if (rc != 0) {
        bridge_free(b);
        return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "cannot start the worker's I/O thread: %s",
                        strerror(rc));
    }
    b->io_started = 1;
    pthread_mutex_lock(&b->lock);
    while (b->load_state == LOAD_LOADING)
        pthread_cond_wait(&b->cond, &b->lock);
    int loaded = b->load_state == LOAD_READY;
    wandler_error load_err = b->load_err;
    pthread_mutex_unlock(&b->lock);
    if (!loaded) {
        wl_bridge_close(b);
        if (err)
            *err = load_err;
        return load_err.code ? load_err.code : WANDLER_ERR_INTERNAL;
    }
    *out = b;
    return WANDLER_OK;
}

void wl_bridge_close(wl_bridge *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->closing = 1;
    wake(b);
    int self = b->io_started && pthread_equal(pthread_self(), b->io);
    if (b->io_started && !self) {
        while (!b->io_done)
            pthread_cond_wait(&b->cond, &b->lock);
        pthread_mutex_unlock(&b->lock);
        pthread_join(b->io, NULL);
        pthread_mutex_lock(&b->lock);
    } else if (self) {
        pthread_detach(b->io); /* closed from a callback: the thread finishes by itself */
    }
    bridge_unref(b);
}

const wl_model_facts *wl_bridge_facts(const wl_bridge *b)
{
    return &b->facts;
}

int wl_bridge_submit(wl_bridge *b, const wandler_request *r, int stream, wl_part_fn on_part, void *user,
                     wl_call **out, wandler_error *err)
{
    *out = NULL;
    wl_call *c = calloc(1, sizeof *c);
    if (!c)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->efd < 0) {
        free(c);
        return wl_error(err, WANDLER_ERR_SYSTEM, "eventfd: %s", strerror(errno));
    }
    pthread_cond_init(&c->cond, NULL);
    wl_enc_request(&c->frame, r);
    if (c->frame.failed || c->frame.b.len > WL_FRAME_MAX) {
        int big = !c->frame.failed;
        call_free(c);
        return big ? wl_error(err, WANDLER_ERR_PROTOCOL, "the request is larger than a frame may be (%u bytes)",
                              WL_FRAME_MAX)
                   : wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    c->stream = stream;
    c->on_part = on_part;
    c->user = user;
    c->b = b;
    c->refs = 2;
    c->pending = 1;
    pthread_mutex_lock(&b->lock);
    if (b->closing) {
        pthread_mutex_unlock(&b->lock);
        call_free(c);
        return wl_error(err, WANDLER_ERR_DISPOSED, "the model was disposed");
    }
    c->id = ++b->next_id;
    int timeout = r->timeout_ms > 0 ? r->timeout_ms : b->cfg.timeout_ms;
    c->deadline = timeout > 0 ? now_ms() + timeout : 0;
    if (b->calls_tail)
        b->calls_tail->next = c;
    else
        b->calls = c;
    b->calls_tail = c;
    b->idle_since = 0;
    b->refs++;
    if (b->direct && !b->direct_polling)
        b->direct = NULL; /* a direct reader away would hold this request up: the I/O thread reads */
    wake(b);
    pthread_mutex_unlock(&b->lock);
    *out = c;
    return WANDLER_OK;
}

/* The direct reader gives the socket back to the I/O thread (lock held, not inside poll). */
static void hand_back(wl_bridge *b)
{
    b->direct = NULL;
    wake(b);
}

/* Direct reading, lock held. A reader that waits for the next part of its stream reads the
 * worker's socket itself when the stream is the request the worker is serving: no other
 * request's frames can come before its end. The I/O thread then leaves the socket's reading
 * side alone (it still writes: aborts, timeouts), until the reader hands it back: at the first
 * frame that is not a delta of this stream (the end, or a stray frame), at the end of the
 * worker, or when the call is released. Between two parts the reader keeps the socket, so a
 * stream read part by part wakes no other thread; meanwhile unread frames wait in the socket,
 * whose buffer bounds them (back-pressure as with the part queue), and the I/O thread still
 * watches the socket for the end of the worker (POLLHUP), so a crash is settled at once even
 * while the reader is away. A reader that polls the call's fd (wl_call_fd) never reads
 * directly. Only the model's only request is read directly: a reader away with the socket
 * would otherwise hold up the requests behind it (even its own thread's: two streams read
 * in turn, or a stream and a callback stream), which the I/O thread serves by reading on
 * into the part queues. */
static int may_read_directly(wl_bridge *b, wl_call *c)
{
    if (b->direct == c && c->next) {
        hand_back(b); /* another request waits behind this stream (see wl_bridge_submit) */
        return 0;
    }
    if (b->direct)
        return b->direct == c;
    return c->stream && !c->on_part && !c->fd_used && c->pending && c->sent && !c->final_queued &&
           !c->abort_requested && b->calls == c && !c->next && b->w.running && b->load_state == LOAD_READY &&
           !b->have_held && !b->rx_ended && !b->closing;
}

/* Handles a frame the direct reader read: a delta of its own stream is queued (returns 1);
 * anything else is left to the I/O thread (returns 0). */
static int direct_frame(wl_bridge *b, wl_call *c, const wl_frame *f)
{
    if (f->type != WL_F_CHUNK || f->id != c->id)
        return 0;
    int type;
    char *text;
    size_t len;
    wandler_error err;
    if (wl_dec_chunk(f, &type, &text, &len, &err) != WANDLER_OK)
        return 0; /* the I/O thread decodes it again and ends the worker */
    if (c->abort_requested || c->timed_out) { /* as on_chunk: its reader is done with it */
        free(text);
        return 1;
    }
    wandler_part p = {.type = type, .text = text, .len = len};
    deliver(b, c, &p, text); /* the queue is empty: there is room */
    return 1;
}

/* Reads the socket as the direct reader until c has a part, the reading side goes back to the
 * I/O thread, or until_ms (monotonic; 0 = no limit, < 0 = do not wait) passes. Returns
 * WANDLER_AGAIN on timeout, else WANDLER_OK. */
static int read_directly(wl_bridge *b, wl_call *c, double until_ms)
{
    b->direct = c;
    while (c->q_len == 0 && b->direct == c) {
        wl_frame f;
        wandler_error err;
        int rc = wl_frame_rx_read(&b->rx, b->w.fd, 0, &f, &b->st.traffic, &err);
        if (rc == WANDLER_OK) {
            if (direct_frame(b, c, &f)) {
                wl_frame_free(&f);
                continue;
            }
            b->held = f; /* the I/O thread handles it, and what follows */
            b->have_held = 1;
            b->direct = NULL;
            wake(b);
            break;
        }
        if (rc != WANDLER_AGAIN) { /* the end of the worker (DONE), or a bad packet */
            if (rc != WANDLER_DONE) {
                b->rx_failed = 1;
                b->rx_err = err;
            }
            b->rx_ended = 1;
            b->direct = NULL;
            wake(b);
            break;
        }
        int ms = -1;
        if (until_ms) {
            double left = until_ms - now_ms();
            if (until_ms < 0 || left <= 0)
                return WANDLER_AGAIN;
            ms = (int)left + 1;
        }
        uint64_t v;
        ssize_t n = read(b->direct_wake_fd, &v, sizeof v); /* reset: state is rechecked under the lock */
        (void)n;
        struct pollfd p[2] = {{.fd = b->w.fd, .events = POLLIN}, {.fd = b->direct_wake_fd, .events = POLLIN}};
        b->direct_polling = 1;
        pthread_mutex_unlock(&b->lock);
        poll(p, 2, ms);
        pthread_mutex_lock(&b->lock);
        b->direct_polling = 0;
        pthread_cond_broadcast(&b->cond); /* the I/O thread may wait to take the socket back */
    }
    return WANDLER_OK;
}

int wl_call_next(wl_call *c, wandler_part *part, int timeout_ms)
{
    wl_bridge *b = c->b;
    pthread_mutex_lock(&b->lock);
    free(c->cur_text);
    c->cur_text = NULL;
    if (c->final_returned) {
        pthread_mutex_unlock(&b->lock);
        return WANDLER_DONE;
    }
    struct timespec until;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    double until_ms = timeout_ms > 0 ? now_ms() + timeout_ms : timeout_ms == 0 ? -1 : 0;
    while (c->q_len == 0) {
        if (may_read_directly(b, c)) {
            if (read_directly(b, c, until_ms) == WANDLER_AGAIN) {
                pthread_mutex_unlock(&b->lock);
                return WANDLER_AGAIN;
            }
            continue;
        }
        if (timeout_ms == 0) {
            pthread_mutex_unlock(&b->lock);
            return WANDLER_AGAIN;
        }
        int rc = timeout_ms < 0 ? pthread_cond_wait(&c->cond, &b->lock)
                                : pthread_cond_timedwait(&c->cond, &b->lock, &until);
        if (rc == ETIMEDOUT && c->q_len == 0) {
            pthread_mutex_unlock(&b->lock);
            return WANDLER_AGAIN;
        }
    }
    if (b->direct == c && c->next)
        hand_back(b); /* another request is waiting: the I/O thread reads on */
    qpart *q = &c->q[c->q_head];
    *part = q->part;
    c->cur_text = q->text;
    if (q->text)
        part->text = q->text;
    c->q_head = (c->q_head + 1) % (WL_CALL_QUEUE + 1);
    int was_full = c->q_len >= WL_CALL_QUEUE;
    c->q_len--;
    if (part->type != WANDLER_PART_TEXT_DELTA)
        c->final_returned = 1; /* the fd stays readable, so a poll loop comes back for DONE */
    else if (c->q_len == 0)
        efd_set(c, 0);
    if (was_full)
        wake(b); /* room again: the I/O thread may read on */
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&b->lock);
    return WANDLER_OK;
}

int wl_call_fd(wl_call *c)
{
    wl_bridge *b = c->b;
    pthread_mutex_lock(&b->lock);
    c->fd_used = 1; /* its reader polls the fd: parts must come through the queue */
    if (b->direct == c) {
        b->direct = NULL;
        wake(b);
    }
    pthread_mutex_unlock(&b->lock);
    return c->efd;
}

void wl_call_abort(wl_call *c)
{
    wl_bridge *b = c->b;
    pthread_mutex_lock(&b->lock);
    if (c->pending && !c->abort_requested) {
        c->abort_requested = 1;
        wake(b);
    }
    pthread_mutex_unlock(&b->lock);
}

void wl_call_release(wl_call *c)
{
    if (!c)
        return;
    wl_bridge *b = c->b;
    pthread_mutex_lock(&b->lock);
    c->released = 1;
    if (b->direct == c) { /* its reader is this thread: not inside poll() */
        b->direct = NULL;
        wake(b);
    }
    /* no callback may run once this returns (unless it is the callback releasing its own call) */
    while (c->in_callback && !(b->io_started && pthread_equal(pthread_self(), b->io)))
        pthread_cond_wait(&c->cond, &b->lock);
    /* queued parts are no one's now */
    for (int i = 0; i < c->q_len; i++)
        free(c->q[(c->q_head + i) % (WL_CALL_QUEUE + 1)].text);
    c->q_len = 0;
    if (c->pending && !c->abort_requested) {
        c->abort_requested = 1;
        wake(b);
    }
    pthread_cond_broadcast(&c->cond);
    wake(b);
    b->refs++; /* keep the bridge while we unlock */
    call_unref(c);
    bridge_unref(b);
}

void wl_bridge_get_stats(wl_bridge *b, wl_bridge_stats *s)
{
    pthread_mutex_lock(&b->lock);
    *s = b->st;
    s->worker_alive = b->w.running;
    if (!b->w.running)
        s->worker_pid = 0;
    if (b->rtt_n > 0) {
        double sum = 0, sorted[RTT_SAMPLES];
        for (int i = 0; i < b->rtt_n; i++) {
            sum += b->rtt[i];
            sorted[i] = b->rtt[i];
        }
        /* insertion sort of at most 1024 values, only when stats are asked for */
        for (int i = 1; i < b->rtt_n; i++) {
            double v = sorted[i];
            int j = i - 1;
            while (j >= 0 && sorted[j] > v) {
                sorted[j + 1] = sorted[j];
                j--;
            }
            sorted[j + 1] = v;
        }
        s->rtt_mean_us = sum / b->rtt_n;
        int idx = (int)(0.99 * (b->rtt_n - 1) + 0.5);
        s->rtt_p99_us = sorted[idx];
    }
    pthread_mutex_unlock(&b->lock);
}

void wl_bridge_reset(wl_bridge *b)
{
    pthread_mutex_lock(&b->lock);
    if (b->w.running)
        push(b, WL_F_RESET, 0, NULL);
    wake(b);
    pthread_mutex_unlock(&b->lock);
}
