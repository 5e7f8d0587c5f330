/* bridge.h - the host side of a model's worker: request ids -> pending calls, the I/O thread,
 * worker (re)starts, the idle timer, timeouts, crash recovery, and the traffic figures.
 *
 * One bridge per model. It owns one I/O thread, which starts the worker (lazily, again after an
 * idle end or a crash), sends the frames that callers queue, reads the worker's frames and
 * hands each part to its call. Callers never block on model work: they wait only for their own
 * call's parts. One exception to "the I/O thread reads": while the reader of the stream the
 * worker is serving waits in wl_call_next(), it reads that stream's deltas from the socket
 * itself (one wake-up per part instead of two; see may_read_directly in bridge.c).
 *
 * A call is one request. Its parts queue up (at most WL_CALL_QUEUE of them; when a reader falls
 * behind, the I/O thread stops reading the socket, so the worker waits: back-pressure) or go to
 * a callback on the I/O thread. A call's eventfd is readable while parts are queued. */
#ifndef WL_WORKER_BRIDGE_H
#define WL_WORKER_BRIDGE_H

#include <stdint.h>

#include "worker/codec.h"
#include "wandler.h"

#define WL_CALL_QUEUE WANDLER_STREAM_BUFFER

typedef struct wl_bridge wl_bridge;
typedef struct wl_call wl_call;

typedef struct wl_bridge_config {
    int kind;                  /* WL_WORKER_THREAD or WL_WORKER_PROCESS */
    const char *worker_exe;    /* process worker: the executable (found by the caller) */
    const char *model_path;    /* the source: a path, URL or hf:// (resolved in the worker) */
    int n_threads, context_length;
    wl_source_opts src;        /* remote sources: expected SHA-256 (copied), network timeouts */
    int idle_ms;               /* end the worker after this long without requests; 0 = never */
    int timeout_ms;            /* default limit of loads and requests; 0 = none */
    wandler_progress_fn on_progress;
    void *progress_user;
} wl_bridge_config;

/* Starts the I/O thread and the worker, loads the model and waits until it is loaded (progress
 * goes to cfg->on_progress, on the I/O thread). Strings in cfg are copied.
 * Errors: everything wandler_load_model() can return, plus WORKER_NOT_SUPPORTED (the worker
 * cannot start), WORKER_VERSION, WORKER_CRASHED, TIMEOUT, CANCELLED. */
int wl_bridge_open(const wl_bridge_config *cfg, wl_bridge **out, wandler_error *err);

/* Ends the worker and the I/O thread; every pending call ends with WANDLER_ERR_DISPOSED.
 * Calls the caller still holds stay valid until wl_call_release(). Any thread (also a part
 * callback). */
void wl_bridge_close(wl_bridge *b);

/* The facts of the loaded model (valid until wl_bridge_close). */
const wl_model_facts *wl_bridge_facts(const wl_bridge *b);

typedef void (*wl_part_fn)(const wandler_part *part, void *user);

/* Queues a request (validated by the caller). stream = 1: text arrives as deltas; 0: the whole
 * text arrives with the FINISH part. With on_part, parts are delivered to it on the I/O thread
 * instead of being queued. Errors: DISPOSED, OUT_OF_MEMORY, PROTOCOL (request too large). */
int wl_bridge_submit(wl_bridge *b, const wandler_request *r, int stream, wl_part_fn on_part,
                     void *user, wl_call **out, wandler_error *err);

/* Waits up to timeout_ms (-1 = no limit) for the next part. Returns WANDLER_OK with *part (its
 * text valid until the next call on this call), WANDLER_DONE after the last part, WANDLER_AGAIN
 * on timeout. The caller's thread only. */
int wl_call_next(wl_call *c, wandler_part *part, int timeout_ms);

/* Readable while a part is queued (or the call has ended). Once asked for, the call's parts
 * always come through the queue (its reader never reads the worker's socket directly). */
int wl_call_fd(wl_call *c);

/* Asks the worker to stop this request (any thread, idempotent). */
void wl_call_abort(wl_call *c);

/* The caller is done with the call: an unfinished one is aborted and its parts discarded. */
void wl_call_release(wl_call *c);

/* Figures of the bridge (counters, traffic, round trips, worker memory). */
typedef struct wl_bridge_stats {
    int worker_alive;
    int worker_pid;
    uint64_t loads, restarts, crashes, idle_terminations, timeouts, aborts, requests;
    double last_load_ms;
    double ttft_ms, prefill_tps, decode_tps; /* the last finished request */
    wl_traffic traffic;
    double rtt_mean_us, rtt_p99_us;
    uint64_t rtt_samples;
} wl_bridge_stats;

void wl_bridge_get_stats(wl_bridge *b, wl_bridge_stats *s);

/* Forgets the worker's KV cache (sends RESET). */
void wl_bridge_reset(wl_bridge *b);

#endif
