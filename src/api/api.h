/* api.h - the handles behind the public API.
 *
 * A model runs in one of two ways, chosen at load: inline (a wl_session driven by the threads
 * that call the API, one at a time under `lock`) or in a worker (a wl_bridge to a thread or
 * process that owns the session). Streams are the same to the caller either way. */
#ifndef WL_API_API_H
#define WL_API_API_H

#include <pthread.h>
#include <stdatomic.h>

#include "gen/gen.h"
#include "gen/session.h"
#include "util/buf.h"
#include "wandler.h"
#include "worker/bridge.h"

struct wandler_model {
    int mode;                 /* WANDLER_MODE_* */
    wandler_model_options options;
    char *path;
    char *worker_path;        /* copy of options.worker_path */
    char sha256[65];          /* options.sha256 normalized (64 lowercase hex digits), "" = none */

    /* inline */
    wl_session *session;      /* NULL once disposed */
    pthread_mutex_t lock;     /* one thread at a time drives the session */
    int refs;                 /* the owner's + one per inline stream (under lock) */
    wandler_stats inline_stats;

    /* worker */
    wl_bridge *bridge;
};

struct wandler_stream {
    wandler_model *model;     /* NULL once the model was disposed (worker streams only need the call) */
    int inline_mode;

    /* inline */
    wl_gen *gen;
    atomic_int abort;         /* set by wandler_stream_abort from any thread */
    double deadline;          /* monotonic ms; 0 = none */
    int timed_out;
    int efd;                  /* inline: always readable */

    /* worker */
    wl_call *call;

    /* both */
    wandler_part_fn on_part;  /* parts go to a callback */
    void *user;
    pthread_mutex_t lock;     /* text and last, written by the callback thread */
    pthread_cond_t done_cond;
    int done;                 /* the FINISH or ERROR part was handed out */
    wl_buf text;              /* every text delta so far, for wandler_stream_result */
    wl_buf reasoning;         /* every reasoning delta so far */
    int text_lost;            /* keeping the text ran out of memory: the result is an error */
    wandler_part last;        /* the FINISH or ERROR part */
};

/* Drops a reference of an inline model; frees it at zero. Takes m->lock itself. */
void wl_model_unref(wandler_model *m);

/* Checks every model option; the message names the field. Errors: INVALID_ARGUMENT. */
int wl_model_options_validate(const wandler_model_options *o, wandler_error *err);

#endif
