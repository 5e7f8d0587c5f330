/* spawn.h - starting and ending a worker: a thread running the worker loop, or the
 * wandler-worker executable. Either way the host talks to it over one end of a SOCK_SEQPACKET
 * socketpair; only how the loop is started differs. */
#ifndef WL_WORKER_SPAWN_H
#define WL_WORKER_SPAWN_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "wandler.h"

enum wl_worker_kind {
    WL_WORKER_THREAD = 0,
    WL_WORKER_PROCESS = 1,
};

typedef struct wl_worker {
    int kind;
    int fd;           /* the host's end of the channel; -1 when not started */
    pid_t pid;        /* process worker */
    pthread_t thread; /* thread worker */
    int running;      /* started and not yet reaped */
} wl_worker;

/* Where the wandler-worker executable is: `configured` (an option) when not NULL, else
 * $WANDLER_WORKER_PATH, else next to the running executable, else the install's libexec folder.
 * Writes the path to buf and returns 0, or returns -1 with the places tried in err. */
int wl_worker_find_exe(const char *configured, char *buf, size_t cap, wandler_error *err);

/* Starts a worker of `kind` (exe is the executable for a process worker). The process gets the
 * channel as fd 3 and dies with its parent (PR_SET_PDEATHSIG). Call from a long-lived thread:
 * the death signal follows the thread that started the process.
 * Errors: WORKER_NOT_SUPPORTED (the message says why), SYSTEM. */
int wl_worker_start(int kind, const char *exe, wl_worker *w, wandler_error *err);

/* Waits up to timeout_ms (-1: no limit) for the worker to end, then reaps it and closes the
 * host's end. Writes how it ended to how ("exited with status 0", "was killed by signal 9
 * (Killed)"). Returns 0 when reaped, -1 when it is still running. A thread worker is joined
 * (timeout_ms is then ignored: a thread cannot be killed, and it ends at its next token). */
int wl_worker_reap(wl_worker *w, int timeout_ms, char *how, size_t cap);

/* Kills a process worker (SIGKILL). Does nothing to a thread worker. */
void wl_worker_kill(wl_worker *w);

/* Checks that a worker of `kind` can start here: threads and socketpairs work; for a process,
 * the executable is found and runs (`wandler-worker --check` answers with our protocol version).
 * Returns WANDLER_OK or WORKER_NOT_SUPPORTED / WORKER_VERSION with the reason. */
int wl_worker_check(int kind, const char *configured_exe, wandler_error *err);

#endif
