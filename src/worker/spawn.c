/* spawn.c - starting, checking and reaping workers (see spawn.h). */
#include "worker/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"
#include "worker/frame.h"
#include "worker/loop.h"

#ifndef WANDLER_INSTALL_LIBEXECDIR
#define WANDLER_INSTALL_LIBEXECDIR "/usr/local/libexec"
#endif

#define WORKER_EXE "wandler-worker"
#define WORKER_FD 3

extern char **environ;

static int executable(const char *p)
{
    return access(p, X_OK) == 0;
}

int wl_worker_find_exe(const char *configured, char *buf, size_t cap, wandler_error *err)
{
    if (configured && *configured) {
        if (!executable(configured))
            return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "worker executable '%s' (option worker_path) "
                            "is missing or not executable", configured), -1;
        snprintf(buf, cap, "%s", configured);
        return 0;
    }
    const char *env = getenv("WANDLER_WORKER_PATH");
    if (env && *env) {
        if (!executable(env))
            return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "worker executable '%s' ($WANDLER_WORKER_PATH) "
                            "is missing or not executable", env), -1;
        snprintf(buf, cap, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(buf, cap, "%s/" WORKER_EXE, self) < (int)cap && executable(buf))
                return 0;
        }
    }
    if (snprintf(buf, cap, "%s/wandler/" WORKER_EXE, WANDLER_INSTALL_LIBEXECDIR) < (int)cap && executable(buf))
        return 0;
    wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED,
             "worker executable not found (tried the worker_path option, $WANDLER_WORKER_PATH, next to the "
             "program, and %s/wandler)", WANDLER_INSTALL_LIBEXECDIR);
    return -1;
}

/* ---- thread workers ---- */

typedef struct thread_arg {
    int fd;
} thread_arg;

static void *worker_thread(void *p)
{
    thread_arg *a = p;
    int fd = a->fd;
    free(a);
    wl_worker_loop(fd);
    close(fd);
    return NULL;
}

static int start_thread(wl_worker *w, int worker_fd, wandler_error *err)
{
    thread_arg *a = malloc(sizeof *a);
    if (!a)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    a->fd = worker_fd;
    int rc = pthread_create(&w->thread, NULL, worker_thread, a);
    if (rc != 0) {
        free(a);
        return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "cannot start a worker thread: %s", strerror(rc));
    }
    return WANDLER_OK;
}

/* ---- process workers ---- */

static int start_process(wl_worker *w, const char *exe, int worker_fd, wandler_error *err)
{
    char parent[32];
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    char *argv[] = {(char *)WORKER_EXE, (char *)"--fd", (char *)"3", (char *)"--parent", parent, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* the channel becomes fd 3 (dup2 clears close-on-exec); every other fd of ours is
     * close-on-exec or closed by the worker at start */
    posix_spawn_file_actions_adddup2(&fa, worker_fd, WORKER_FD);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn(&w->pid, exe, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "cannot start worker process '%s': %s", exe,
                        strerror(rc));
    return WANDLER_OK;
}

int wl_worker_start(int kind, const char *exe, wl_worker *w, wandler_error *err)
{
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->fd = -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "socketpair(AF_UNIX, SOCK_SEQPACKET): %s",
                        strerror(errno));
    /* dup2 onto the same number would keep close-on-exec: keep the worker's end off fd 3 */
    if (kind == WL_WORKER_PROCESS && sv[1] == WORKER_FD) {
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, WORKER_FD + 1);
        close(sv[1]);
        sv[1] = moved;
        if (moved < 0) {
            close(sv[0]);
            return wl_error(err, WANDLER_ERR_SYSTEM, "fcntl(F_DUPFD_CLOEXEC): %s", strerror(errno));
        }
    }
    int rc = kind == WL_WORKER_THREAD ? start_thread(w, sv[1], err) : start_process(w, exe, sv[1], err);
    if (rc != WANDLER_OK) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    if (kind == WL_WORKER_PROCESS)
        close(sv[1]); /* the child has its copy; the thread worker closes its own end */
    w->fd = sv[0];
    w->running = 1;
    return WANDLER_OK;
}

static void describe_status(int status, char *how, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(how, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(how, cap, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(how, cap, "ended with wait status 0x%x", status);
}

int wl_worker_reap(wl_worker *w, int timeout_ms, char *how, size_t cap)
{
    if (!w->running) {
        snprintf(how, cap, "was not running");
        return 0;
    }
    if (w->kind == WL_WORKER_THREAD) {
        pthread_join(w->thread, NULL);
        snprintf(how, cap, "thread ended");
    } else {
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            int status;
            pid_t r = waitpid(w->pid, &status, WNOHANG);
            if (r == w->pid) {
                describe_status(status, how, cap);
                break;
            }
            if (r < 0 && errno != EINTR) {
                snprintf(how, cap, "could not be waited for: %s", strerror(errno));
                break;
            }
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (timeout_ms >= 0 && waited >= timeout_ms)
                return -1;
            struct timespec nap = {0, 1000000}; /* 1 ms */
            nanosleep(&nap, NULL);
        }
    }
    close(w->fd);
    w->fd = -1;
    w->running = 0;
    return 0;
}

void wl_worker_kill(wl_worker *w)
{
    if (w->running && w->kind == WL_WORKER_PROCESS)
        kill(w->pid, SIGKILL);
}

int wl_worker_check(int kind, const char *configured_exe, wandler_error *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "socketpair(AF_UNIX, SOCK_SEQPACKET): %s",
                        strerror(errno));
    close(sv[0]);
    close(sv[1]);
    if (kind == WL_WORKER_THREAD)
        return WANDLER_OK;
    if (kind != WL_WORKER_PROCESS)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "unknown worker kind %d", kind);

    char exe[PATH_MAX];
    if (wl_worker_find_exe(configured_exe, exe, sizeof exe, err) != 0)
        return WANDLER_ERR_WORKER_NOT_SUPPORTED;
    /* run it: `wandler-worker --check` prints "wandler-worker PROTOCOL VERSION" */
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return wl_error(err, WANDLER_ERR_SYSTEM, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *argv[] = {(char *)WORKER_EXE, (char *)"--check", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "cannot run worker '%s': %s", exe, strerror(rc));
    }
    char line[128] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof line - 1 && (n = read(out[0], line + got, sizeof line - 1 - got)) > 0)
        got += (size_t)n;
    close(out[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int proto = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(line, "wandler-worker %d", &proto) != 1)
        return wl_error(err, WANDLER_ERR_WORKER_NOT_SUPPORTED, "worker '%s' did not answer --check", exe);
    if (proto != WL_PROTOCOL_VERSION)
        return wl_error(err, WANDLER_ERR_WORKER_VERSION, "worker '%s' speaks protocol %d, this library %d", exe,
                        proto, WL_PROTOCOL_VERSION);
    return WANDLER_OK;
}
