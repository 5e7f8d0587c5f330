/* harness.h - the test HTTP server (tests/source/server.py) seen from a C test: start it on
 * 127.0.0.x, switch its behaviour, read its request log; fresh cache directories. Included by
 * tests/unit/test_source*.c (static functions: one copy per test program). */
#ifndef WL_TEST_SOURCE_HARNESS_H
#define WL_TEST_SOURCE_HARNESS_H

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "testutil.h"

#define MODEL_NAME "stories260K.gguf"

typedef struct test_server {
    pid_t pid;
    int port;
    char dir[1024];
    char root[1100], control[1100], log[1100], port_file[1100];
} test_server;

static double ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void write_text(const char *path, const char *text)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* Network settings of the environment must not send loopback requests elsewhere. */
static void clean_environment(void)
{
    const char *vars[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                          "HF_TOKEN", "HF_ENDPOINT", "WANDLER_HF_ENDPOINT", "WANDLER_OFFLINE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("no_proxy", "127.0.0.1,127.0.0.2,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,127.0.0.2,localhost", 1);
    signal(SIGPIPE, SIG_IGN);
}

static void server_start(test_server *s, const char *host)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", wl_test_tmpdir());
    snprintf(s->root, sizeof s->root, "%s/root", s->dir);
    snprintf(s->control, sizeof s->control, "%s/control.json", s->dir);
    snprintf(s->log, sizeof s->log, "%s/log.jsonl", s->dir);
    snprintf(s->port_file, sizeof s->port_file, "%s/port", s->dir);
    assert_int_equal(mkdir(s->root, 0755), 0);
    char path[1200], model[4096];
    snprintf(model, sizeof model, "%s", wl_test_source("models/" MODEL_NAME));
    snprintf(path, sizeof path, "%s/" MODEL_NAME, s->root);
    assert_int_equal(symlink(model, path), 0);
    /* a file that is not GGUF: what a login page looks like */
    snprintf(path, sizeof path, "%s/page.gguf", s->root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("<!DOCTYPE html><html><body>", f);
    for (int i = 0; i < 200; i++)
        fputs("Please log in. ", f);
    fputs("</body></html>\n", f);
    fclose(f);
    write_text(s->control, "{}");
    char script[4096];
    snprintf(script, sizeof script, "%s", wl_test_source("tests/source/server.py"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the server ends with the test, even one a sanitizer aborted (else it would hold the
         * test's output pipe open and ctest would wait for its timeout) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execl("/usr/bin/python3", "python3", script, "--root", s->root, "--port-file", s->port_file, "--control",
              s->control, "--log", s->log, "--host", host, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 1000; i++) {
        FILE *pf = fopen(s->port_file, "r");
        if (pf) {
            int ok = fscanf(pf, "%d", &s->port) == 1;
            fclose(pf);
            if (ok && s->port > 0)
                return;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("the test server exited at start (status %d): is /usr/bin/python3 there?", status);
        usleep(10 * 1000);
    }
    fail_msg("the test server did not start within 10 s");
}

static void server_stop(test_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* Replaces the server's behaviour switches (JSON, see server.py). */
static void server_control(test_server *s, const char *json)
{
    write_text(s->control, json);
}

typedef struct req {
    char method[8];
    char path[512];
    int status;
    char range[64];   /* "" when none */
    int inm;          /* If-None-Match was sent */
    char auth[128];   /* the Authorization header, "" when none */
    long bytes;       /* body bytes sent */
} req;

typedef struct req_log {
    int n;
    req r[128];
} req_log;

static const char *jstr(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static void read_log_once(test_server *s, req_log *l)
{
    memset(l, 0, sizeof *l);
    FILE *f = fopen(s->log, "r");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f) && l->n < 128) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            continue;
        req *r = &l->r[l->n++];
        snprintf(r->method, sizeof r->method, "%s", jstr(o, "method"));
        snprintf(r->path, sizeof r->path, "%s", jstr(o, "path"));
        snprintf(r->range, sizeof r->range, "%s", jstr(o, "range"));
        snprintf(r->auth, sizeof r->auth, "%s", jstr(o, "auth"));
        r->status = (int)json_integer_value(json_object_get(o, "status"));
        r->inm = json_is_string(json_object_get(o, "inm"));
        r->bytes = (long)json_integer_value(json_object_get(o, "bytes"));
        json_decref(o);
    }
    fclose(f);
}

/* The server logs a request after answering it: read until the log has been quiet a moment. */
static void server_read_log(test_server *s, req_log *l)
{
    static req_log again;
    read_log_once(s, l);
    for (int i = 0; i < 40; i++) {
        usleep(30 * 1000);
        read_log_once(s, &again);
        if (again.n == l->n)
            return;
        *l = again;
    }
}

/* Empties the request log, once the requests already answered have been logged (the server
 * logs just after answering; a late line would otherwise land in the fresh log). */
static void server_clear_log(test_server *s)
{
    static req_log settled;
    server_read_log(s, &settled);
    int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

/* Requests that carried (part of) a file's body. */
static int body_transfers(const req_log *l)
{
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += l->r[i].bytes > 0;
    return n;
}

static void print_log(const req_log *l)
{
    for (int i = 0; i < l->n; i++)
        printf("    %s %s -> %d range=%s inm=%d bytes=%ld\n", l->r[i].method, l->r[i].path, l->r[i].status,
               l->r[i].range, l->r[i].inm, l->r[i].bytes);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh, empty cache directory for the next loads ($WANDLER_CACHE_DIR). */
static const char *fresh_cache(void)
{
    const char *old = getenv("WANDLER_CACHE_DIR");
    if (old && strstr(old, "wandler-test-"))
        rm_rf(old);
    const char *d = wl_test_tmpdir();
    setenv("WANDLER_CACHE_DIR", d, 1);
    return getenv("WANDLER_CACHE_DIR");
}

static long file_size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

#endif
