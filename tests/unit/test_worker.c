/* test_worker.c - every model in its own worker: the same results in every mode, abort,
 * timeout, idle end, crash recovery, fallback, concurrency, back-pressure and clean life cycles.
 *
 * The figures the issue asks to report (abort latency, ...) are printed as the tests run. */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "testutil.h"
#include "wandler.h"

#if defined(__SANITIZE_ADDRESS__)
#define WL_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WL_UNDER_ASAN 1
#endif
#endif
#ifndef WL_UNDER_ASAN
#define WL_UNDER_ASAN 0
#endif

static const int MODES[3] = {WANDLER_MODE_INLINE, WANDLER_MODE_THREAD, WANDLER_MODE_PROCESS};
static const char *MODE_NAMES[3] = {"inline", "thread", "process"};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static wandler_model_options mode_options(int mode)
{
    wandler_model_options o = wandler_model_options_default();
    o.use_worker = mode != WANDLER_MODE_INLINE;
    o.worker = mode == WANDLER_MODE_PROCESS ? WANDLER_WORKER_PROCESS : WANDLER_WORKER_THREAD;
    o.fallback = 0;
    return o;
}

static wandler_model *load(int mode, const wandler_model_options *opts)
{
    wandler_model_options o = opts ? *opts : mode_options(mode);
    wandler_model *m = NULL;
    wandler_error err;
    if (wandler_load_model(wl_test_source("models/stories260K.gguf"), &o, &m, &err) != WANDLER_OK)
        fail_msg("load (%s): %s (%s)", MODE_NAMES[mode], err.message, wandler_status_name(err.code));
    assert_int_equal(wandler_model_mode(m), mode);
    return m;
}

static wandler_request greedy(const char *prompt, int max_tokens)
{
    wandler_request r = wandler_request_default();
    r.prompt = prompt;
    r.temperature = 0;
    r.max_tokens = max_tokens;
    return r;
}

/* ---- 1. the same tokens and text in every mode, equal to the golden outputs ---- */

static void test_modes_match_golden(void **state)
{
    size_t size;
    char *text = wl_test_read_file(wl_test_shared("golden/stories260K.greedy.jsonl"), &size);
    assert_non_null(text);
    for (int mi = 0; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        char *copy = strdup(text), *save = NULL;
        int n = 0;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            json_t *o = json_loads(line, 0, NULL);
            wandler_request r = greedy(json_string_value(json_object_get(o, "prompt")), 64);
            wandler_result res;
            wandler_error err;
            /* whole answers and streams alike */
            assert_int_equal(wandler_generate_text(m, &r, &res, &err), WANDLER_OK);
            assert_string_equal(res.text, json_string_value(json_object_get(o, "text")));
            assert_int_equal(res.usage.completion_tokens, (int)json_array_size(json_object_get(o, "generated_ids")));
            wandler_result_free(&res);
            wandler_stream *st;
            assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_OK);
            assert_int_equal(wandler_stream_result(st, &res, &err), WANDLER_OK);
            assert_string_equal(res.text, json_string_value(json_object_get(o, "text")));
            wandler_result_free(&res);
            wandler_stream_free(st);
            json_decref(o);
            n++;
        }
        free(copy);
        printf("  %-8s %d golden prompts match\n", MODE_NAMES[mi], n);
        /* sampled text is the same in every mode too */
        wandler_request r = wandler_request_default();
        r.prompt = "Tom";
        r.seed = 77;
        r.max_tokens = 80;
        wandler_result res;
        assert_int_equal(wandler_generate_text(m, &r, &res, NULL), WANDLER_OK);
        static char first[4096];
        if (mi == 0)
            snprintf(first, sizeof first, "%s", res.text);
        else
            assert_string_equal(res.text, first);
        wandler_result_free(&res);
        wandler_model_dispose(m);
    }
    free(text);
}

/* ---- 2. abort stops compute within one token ---- */

static void test_abort_latency(void **state)
{
    for (int mi = 0; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        wandler_request r = wandler_request_default();
        r.prompt = "Once upon a time";
        r.max_tokens = 100000; /* would run to the end of the context */
        r.seed = 3;
        double worst = 0;
        for (int rep = 0; rep < 5; rep++) {
            wandler_stream *st;
            assert_int_equal(wandler_stream_text(m, &r, &st, NULL), WANDLER_OK);
            wandler_part part;
            int deltas = 0;
            while (deltas < 5 && wandler_stream_next(st, &part, -1) == WANDLER_OK)
                deltas += part.type == WANDLER_PART_TEXT_DELTA;
            double t0 = now_ms();
            wandler_stream_abort(st);
            int rc;
            while ((rc = wandler_stream_next(st, &part, -1)) == WANDLER_OK && part.type == WANDLER_PART_TEXT_DELTA)
                ;
            double dt = now_ms() - t0;
            assert_int_equal(rc, WANDLER_OK);
            assert_int_equal(part.type, WANDLER_PART_FINISH);
            assert_int_equal(part.finish_reason, WANDLER_FINISH_ABORT);
            if (dt > worst)
                worst = dt;
            wandler_stream_free(st);
        }
        printf("  %-8s abort -> finish part: worst of 5 = %.2f ms\n", MODE_NAMES[mi], worst);
        /* The finish reason above proves the abort; the bound here only catches an abort that
         * waits for the generation to end. The latency figure itself comes from
         * bench/bench_worker (under 1 ms on an idle machine); sanitizers and load inflate it. */
        assert_true(worst < 250.0);
        /* the next request succeeds */
        wandler_request g = greedy("Once upon a time", 8);
        wandler_result res;
        assert_int_equal(wandler_generate_text(m, &g, &res, NULL), WANDLER_OK);
        assert_int_equal(res.usage.completion_tokens, 8);
        wandler_result_free(&res);
        wandler_stats s;
        wandler_model_stats(m, &s);
        assert_int_equal(s.aborts, 5);
        wandler_model_dispose(m);
    }
}

/* ---- 3. timeouts ---- */

/* A timed-out request keeps the text it made. How many tokens fit in a timeout depends on the
 * machine (under sanitizers and load the first token can take longer than 30 ms), so the
 * timeout doubles until a run makes tokens before it ends; every run must end by timeout. */
static void test_timeout(void **state)
{
    for (int mi = 0; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        wandler_request r = wandler_request_default();
        r.prompt = "Once upon a time";
        r.max_tokens = 100000;
        wandler_result res;
        wandler_error err;
        int timeouts = 0;
        for (r.timeout_ms = 30;; r.timeout_ms *= 2) {
            double t0 = now_ms();
            int rc = wandler_generate_text(m, &r, &res, &err);
            double dt = now_ms() - t0;
            if (rc == WANDLER_OK && res.finish_reason == WANDLER_FINISH_LENGTH) {
                /* the whole context fit in the timeout: this machine is too fast for it */
                wandler_result_free(&res);
                break;
            }
            assert_int_equal(rc, WANDLER_ERR_TIMEOUT);
            timeouts++;
            assert_int_equal(res.finish_reason, WANDLER_FINISH_TIMEOUT);
            assert_true(dt < r.timeout_ms + 1000);
            int tokens = res.usage.completion_tokens;
            assert_true(tokens == 0 || res.text_len > 0); /* keeps the text so far */
            wandler_result_free(&res);
            printf("  %-8s %d ms timeout ended the request after %.1f ms, %d tokens\n", MODE_NAMES[mi],
                   r.timeout_ms, dt, tokens);
            if (tokens > 0 || r.timeout_ms >= 4000)
                break;
        }
        assert_true(timeouts > 0);
        /* streams end with finish reason timeout and keep their text */
        wandler_stream *st;
        assert_int_equal(wandler_stream_text(m, &r, &st, &err), WANDLER_OK);
        wandler_part part;
        int last = 0, text = 0;
        while (wandler_stream_next(st, &part, -1) == WANDLER_OK) {
            text += part.type == WANDLER_PART_TEXT_DELTA;
            last = part.type == WANDLER_PART_FINISH ? part.finish_reason : last;
        }
        assert_true(last == WANDLER_FINISH_TIMEOUT || last == WANDLER_FINISH_LENGTH);
        if (last == WANDLER_FINISH_TIMEOUT)
            timeouts++;
        else
            assert_true(text > 0); /* ran to the end of the context */
        wandler_stream_free(st);
        /* the model is usable next */
        wandler_request g = greedy("Once", 5);
        assert_int_equal(wandler_generate_text(m, &g, &res, &err), WANDLER_OK);
        wandler_result_free(&res);
        wandler_stats s;
        wandler_model_stats(m, &s);
        assert_int_equal(s.timeouts, timeouts);
        wandler_model_dispose(m);
    }
    /* a model option applies to every request */
    wandler_model_options o = mode_options(WANDLER_MODE_THREAD);
    o.timeout_ms = 20;
    wandler_model *m = load(WANDLER_MODE_THREAD, &o);
    wandler_request r = wandler_request_default();
    r.prompt = "Once";
    r.max_tokens = 100000;
    wandler_result res;
    assert_int_equal(wandler_generate_text(m, &r, &res, NULL), WANDLER_ERR_TIMEOUT);
    wandler_result_free(&res);
    wandler_model_dispose(m);
}

/* ---- 4. idle end and transparent reload ---- */

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int progress_calls;

static int count_progress(const wandler_progress *p, void *user)
{
    (void)user;
    assert_true(p->fraction >= 0 && p->fraction <= 1);
    progress_calls++;
    return 0;
}

static void test_idle(void **state)
{
    for (int mi = 1; mi < 3; mi++) {
        wandler_model_options o = mode_options(MODES[mi]);
        o.terminate_on_idle_ms = 100;
        o.on_progress = count_progress;
        progress_calls = 0;
        int threads_before = count_threads();
        wandler_model *m = load(MODES[mi], &o);
        assert_true(progress_calls >= 4);
        wandler_stats s;
        wandler_model_stats(m, &s);
        assert_int_equal(s.worker_alive, 1);
        int pid = s.worker_pid;
        if (MODES[mi] == WANDLER_MODE_PROCESS)
            assert_true(pid > 0 && kill(pid, 0) == 0);
        usleep(400 * 1000);
        wandler_model_stats(m, &s);
        assert_int_equal(s.worker_alive, 0);
        assert_int_equal(s.idle_terminations, 1);
        if (MODES[mi] == WANDLER_MODE_PROCESS) {
            /* reaped: no zombie left behind */
            assert_int_equal(kill(pid, 0), -1);
        } else {
            /* the worker thread is gone; the model's own I/O thread remains */
            assert_int_equal(count_threads(), threads_before + 1);
        }
        progress_calls = 0;
        wandler_request r = greedy("Once upon a time", 16);
        wandler_result res;
        assert_int_equal(wandler_generate_text(m, &r, &res, NULL), WANDLER_OK);
        assert_int_equal(res.usage.completion_tokens, 16);
        wandler_result_free(&res);
        assert_true(progress_calls >= 4); /* the reload reported progress */
        wandler_model_stats(m, &s);
        assert_int_equal(s.loads, 2);
        assert_int_equal(s.restarts, 1);
        printf("  %-8s idle end after 100 ms, reload on the next request (loads %llu, restarts %llu)\n",
               MODE_NAMES[mi], (unsigned long long)s.loads, (unsigned long long)s.restarts);
        wandler_model_dispose(m);
        assert_int_equal(count_threads(), threads_before);
    }
}

/* ---- 5. a killed process worker ---- */

typedef struct waiter_arg {
    wandler_model *m;
    int rc;
} waiter_arg;

static void *waiting_call(void *p)
{
    waiter_arg *a = p;
    wandler_request r = greedy("Lily", 20);
    wandler_result res;
    wandler_error err;
    a->rc = wandler_generate_text(a->m, &r, &res, &err);
    wandler_result_free(&res);
    return NULL;
}

static void test_crash(void **state)
{
    wandler_model *m = load(WANDLER_MODE_PROCESS, NULL);
    wandler_stats s;
    wandler_model_stats(m, &s);
    int pid = s.worker_pid;
    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time";
    r.max_tokens = 100000;
    wandler_stream *st;
    assert_int_equal(wandler_stream_text(m, &r, &st, NULL), WANDLER_OK);
    wandler_part part;
    assert_int_equal(wandler_stream_next(st, &part, -1), WANDLER_OK);
    /* another caller waits behind the stream */
    waiter_arg wa = {m, -1};
    pthread_t th;
    pthread_create(&th, NULL, waiting_call, &wa);
    usleep(50 * 1000);
    double t0 = now_ms();
    kill(pid, SIGKILL);
    int rc;
    while ((rc = wandler_stream_next(st, &part, -1)) == WANDLER_OK && part.type == WANDLER_PART_TEXT_DELTA)
        ;
    double dt = now_ms() - t0;
    assert_int_equal(rc, WANDLER_OK);
    assert_int_equal(part.type, WANDLER_PART_ERROR);
    assert_int_equal(part.error.code, WANDLER_ERR_WORKER_CRASHED);
    assert_non_null(strstr(part.error.message, "signal 9"));
    printf("  kill -9 -> stream error after %.1f ms: %s\n", dt, part.error.message);
    assert_true(dt < 1000);
    pthread_join(th, NULL);
    assert_int_equal(wa.rc, WANDLER_ERR_WORKER_CRASHED);
    wandler_stream_free(st);
    /* the next request runs on a fresh worker */
    wandler_request g = greedy("Once upon a time", 10);
    wandler_result res;
    assert_int_equal(wandler_generate_text(m, &g, &res, NULL), WANDLER_OK);
    assert_int_equal(res.usage.completion_tokens, 10);
    wandler_result_free(&res);
    wandler_model_stats(m, &s);
    assert_int_equal(s.crashes, 1);
    assert_int_equal(s.restarts, 1);
    assert_true(s.worker_pid != pid && s.worker_pid > 0);
    wandler_model_dispose(m);
}

/* ---- 6. fallback ---- */

static char logged[512];

static void on_log(int level, const char *msg, void *user)
{
    (void)user;
    if (level == WANDLER_LOG_WARN)
        snprintf(logged, sizeof logged, "%s", msg);
}

static void test_fallback(void **state)
{
    wandler_error err;
    assert_int_equal(wandler_can_use_worker(WANDLER_WORKER_THREAD, NULL, &err), WANDLER_OK);
    assert_int_equal(wandler_can_use_worker(WANDLER_WORKER_PROCESS, NULL, &err), WANDLER_OK);
    assert_int_equal(wandler_can_use_worker(WANDLER_WORKER_PROCESS, "/nonexistent/wandler-worker", &err),
                     WANDLER_ERR_WORKER_NOT_SUPPORTED);
    assert_non_null(strstr(err.message, "/nonexistent/wandler-worker"));
    /* an executable that is not a worker */
    assert_int_equal(wandler_can_use_worker(WANDLER_WORKER_PROCESS, "/bin/true", &err),
                     WANDLER_ERR_WORKER_NOT_SUPPORTED);

    wandler_model_options o = mode_options(WANDLER_MODE_PROCESS);
    o.worker_path = "/nonexistent/wandler-worker";
    o.fallback = 0;
    wandler_model *m = NULL;
    assert_int_equal(wandler_load_model(wl_test_source("models/stories260K.gguf"), &o, &m, &err),
                     WANDLER_ERR_WORKER_NOT_SUPPORTED);
    assert_null(m);
    o.fallback = 1;
    o.on_log = on_log;
    logged[0] = 0;
    assert_int_equal(wandler_load_model(wl_test_source("models/stories260K.gguf"), &o, &m, &err), WANDLER_OK);
    assert_int_equal(wandler_model_mode(m), WANDLER_MODE_INLINE);
    assert_non_null(strstr(logged, "inline"));
    printf("  fallback warning: %s\n", logged);
    wandler_request r = greedy("Once", 4);
    wandler_result res;
    assert_int_equal(wandler_generate_text(m, &r, &res, NULL), WANDLER_OK);
    wandler_result_free(&res);
    wandler_model_dispose(m);
}

/* ---- 7. concurrency: 8 threads on one model; 4 models in one poll loop ---- */

static const char *PROMPTS[8] = {"Once upon a time", "Lily wanted to", "The little dog", "Tom and his friend went",
                                 "The sun was", "One day, a bird", "Mom said", "The big red ball"};

typedef struct conc_arg {
    wandler_model *m;
    int i;
    char *text;
} conc_arg;

static void *conc_stream(void *p)
{
    conc_arg *a = p;
    wandler_request r = wandler_request_default();
    r.prompt = PROMPTS[a->i];
    r.seed = 100 + (uint64_t)a->i;
    r.max_tokens = 48;
    wandler_stream *st;
    if (wandler_stream_text(a->m, &r, &st, NULL) != WANDLER_OK)
        return NULL;
    wandler_result res;
    if (wandler_stream_result(st, &res, NULL) == WANDLER_OK)
        a->text = strdup(res.text);
    wandler_result_free(&res);
    wandler_stream_free(st);
    return NULL;
}

static void test_concurrent_threads(void **state)
{
    for (int mi = 0; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        char *expect[8];
        for (int i = 0; i < 8; i++) {
            conc_arg a = {m, i, NULL};
            conc_stream(&a);
            assert_non_null(a.text);
            expect[i] = a.text;
        }
        pthread_t th[8];
        conc_arg args[8];
        for (int i = 0; i < 8; i++) {
            args[i] = (conc_arg){m, i, NULL};
            pthread_create(&th[i], NULL, conc_stream, &args[i]);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(th[i], NULL);
            assert_non_null(args[i].text);
            assert_string_equal(args[i].text, expect[i]);
            free(args[i].text);
            free(expect[i]);
        }
        printf("  %-8s 8 threads streaming on one model = the sequential texts\n", MODE_NAMES[mi]);
        wandler_model_dispose(m);
    }
}

static void test_poll_loop_four_models(void **state)
{
    wandler_model *m[4];
    wandler_stream *st[4];
    char text[4][4096] = {{0}};
    for (int i = 0; i < 4; i++) {
        m[i] = load(i % 2 ? WANDLER_MODE_PROCESS : WANDLER_MODE_THREAD, NULL);
        wandler_request r = greedy(PROMPTS[i], 40);
        assert_int_equal(wandler_stream_text(m[i], &r, &st[i], NULL), WANDLER_OK);
    }
    int live = 4, wakeups = 0;
    int done[4] = {0};
    while (live) {
        struct pollfd p[4];
        int idx[4], n = 0;
        for (int i = 0; i < 4; i++)
            if (!done[i]) {
                p[n] = (struct pollfd){.fd = wandler_stream_fd(st[i]), .events = POLLIN};
                idx[n++] = i;
            }
        assert_true(poll(p, (nfds_t)n, 5000) > 0);
        wakeups++;
        for (int k = 0; k < n; k++) {
            if (!(p[k].revents & POLLIN))
                continue;
            int i = idx[k];
            wandler_part part;
            int rc;
            while ((rc = wandler_stream_next(st[i], &part, 0)) == WANDLER_OK) {
                if (part.type == WANDLER_PART_TEXT_DELTA)
                    strncat(text[i], part.text, sizeof text[i] - strlen(text[i]) - 1);
            }
            if (rc == WANDLER_DONE) {
                done[i] = 1;
                live--;
            } else {
                assert_int_equal(rc, WANDLER_AGAIN);
            }
        }
    }
    for (int i = 0; i < 4; i++) {
        wandler_request r = greedy(PROMPTS[i], 40);
        wandler_result res;
        assert_int_equal(wandler_generate_text(m[i], &r, &res, NULL), WANDLER_OK);
        assert_string_equal(text[i], res.text);
        wandler_result_free(&res);
        wandler_stream_free(st[i]);
        wandler_model_dispose(m[i]);
    }
    printf("  4 models streamed together in one poll() loop (%d wake-ups)\n", wakeups);
}

/* ---- back-pressure: a reader that does not read does not make memory grow ---- */

static void test_back_pressure(void **state)
{
    wandler_model *m = load(WANDLER_MODE_THREAD, NULL);
    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time";
    r.max_tokens = 1500;
    r.seed = 5;
    wandler_stream *st;
    assert_int_equal(wandler_stream_text(m, &r, &st, NULL), WANDLER_OK);
    /* Frames stop arriving once the buffer is full: the worker waits. Wait until the count holds
     * still for 200 ms (how soon depends on the machine's load), then check where it stopped:
     * far below the 1500 tokens the worker would have made were it not held back. */
    wandler_stats s1 = {0}, s2 = {0};
    for (int waited = 0; waited < 20000; waited += 200) {
        usleep(200 * 1000);
        s1 = s2;
        wandler_model_stats(m, &s2);
        if (s2.frames_received > 0 && s2.frames_received == s1.frames_received)
            break;
    }
    assert_int_equal(s1.frames_received, s2.frames_received);
    assert_true(s2.frames_received < 64 + 16);
    int parts = 0;
    wandler_part part;
    while (wandler_stream_next(st, &part, -1) == WANDLER_OK)
        parts++;
    assert_true(parts > 100);
    printf("  a stalled reader held the worker at %llu frames; then %d parts flowed\n",
           (unsigned long long)s2.frames_received, parts);
    wandler_stream_free(st);
    wandler_model_dispose(m);
}

/* A reader that waits in wandler_stream_next reads its deltas from the worker's socket itself
 * (bridge.c, direct reading). Stalled after that, it holds the worker back through the
 * socket's buffer instead of the part queue: the worker still waits, far short of the request. */
static void test_back_pressure_direct(void **state)
{
    for (int mi = 1; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        wandler_request r = wandler_request_default();
        r.prompt = "Once upon a time";
        r.max_tokens = 1500;
        r.ignore_eos = 1;
        r.seed = 5;
        wandler_stream *st;
        assert_int_equal(wandler_stream_text(m, &r, &st, NULL), WANDLER_OK);
        wandler_part part;
        for (int deltas = 0; deltas < 3;) {
            assert_int_equal(wandler_stream_next(st, &part, -1), WANDLER_OK);
            deltas += part.type == WANDLER_PART_TEXT_DELTA;
        }
        usleep(500 * 1000); /* ~1500 tokens' time here; the worker must be waiting long before */
        wandler_stream_abort(st);
        int rc, deltas = 0;
        while ((rc = wandler_stream_next(st, &part, -1)) == WANDLER_OK && part.type == WANDLER_PART_TEXT_DELTA)
            deltas++;
        assert_int_equal(rc, WANDLER_OK);
        assert_int_equal(part.type, WANDLER_PART_FINISH);
        /* deltas queued before the abort still come; those made after it are dropped */
        printf("  %-8s a reader stalled for 500 ms held the worker at %d tokens (%d deltas queued)\n",
               MODE_NAMES[mi], part.usage.completion_tokens, deltas);
        assert_int_equal(part.finish_reason, WANDLER_FINISH_ABORT);
        assert_true(part.usage.completion_tokens < 1000);
        wandler_stream_free(st);
        wandler_model_dispose(m);
    }
}

/* A reader that waits in wandler_stream_next for a while, then switches to polling the
 * stream's fd: the parts keep coming through the fd (the socket is handed back). */
static void test_next_then_poll(void **state)
{
    for (int mi = 1; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        wandler_request r = greedy(PROMPTS[0], 60);
        wandler_stream *st;
        assert_int_equal(wandler_stream_text(m, &r, &st, NULL), WANDLER_OK);
        char text[4096] = {0};
        wandler_part part;
        for (int deltas = 0; deltas < 5;) {
            assert_int_equal(wandler_stream_next(st, &part, -1), WANDLER_OK);
            assert_int_equal(part.type, WANDLER_PART_TEXT_DELTA);
            strncat(text, part.text, sizeof text - strlen(text) - 1);
            deltas++;
        }
        int rc = WANDLER_AGAIN;
        while (rc != WANDLER_DONE) {
            struct pollfd p = {.fd = wandler_stream_fd(st), .events = POLLIN};
            assert_true(poll(&p, 1, 5000) == 1);
            while ((rc = wandler_stream_next(st, &part, 0)) == WANDLER_OK)
                if (part.type == WANDLER_PART_TEXT_DELTA)
                    strncat(text, part.text, sizeof text - strlen(text) - 1);
            assert_true(rc == WANDLER_AGAIN || rc == WANDLER_DONE);
        }
        wandler_result res;
        assert_int_equal(wandler_generate_text(m, &r, &res, NULL), WANDLER_OK);
        assert_string_equal(text, res.text);
        wandler_result_free(&res);
        wandler_stream_free(st);
        wandler_model_dispose(m);
    }
}

/* ---- callbacks, dispose while running ---- */

typedef struct cb_state {
    int deltas, finishes;
    char text[4096];
} cb_state;

static void on_part(const wandler_part *p, void *user)
{
    cb_state *s = user;
    if (p->type == WANDLER_PART_TEXT_DELTA) {
        s->deltas++;
        strncat(s->text, p->text, sizeof s->text - strlen(s->text) - 1);
    } else {
        s->finishes++;
    }
}

static void test_callbacks(void **state)
{
    for (int mi = 0; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        cb_state cs = {0};
        wandler_request r = greedy("Once upon a time", 30);
        wandler_stream *st;
        assert_int_equal(wandler_stream_text_cb(m, &r, on_part, &cs, &st, NULL), WANDLER_OK);
        wandler_part part;
        assert_int_equal(wandler_stream_next(st, &part, 0), WANDLER_ERR_INVALID_ARGUMENT);
        wandler_result res;
        assert_int_equal(wandler_stream_result(st, &res, NULL), WANDLER_OK);
        assert_int_equal(cs.finishes, 1);
        assert_true(cs.deltas > 0);
        assert_string_equal(cs.text, res.text);
        wandler_result_free(&res);
        wandler_stream_free(st);
        wandler_model_dispose(m);
    }
}

typedef struct disposer {
    wandler_model *m;
    int delay_ms;
} disposer;

static void *dispose_later(void *p)
{
    disposer *d = p;
    usleep((useconds_t)d->delay_ms * 1000);
    wandler_model_dispose(d->m);
    return NULL;
}

static void test_dispose_while_running(void **state)
{
    for (int mi = 0; mi < 3; mi++) {
        wandler_model *m = load(MODES[mi], NULL);
        wandler_request r = wandler_request_default();
        r.prompt = "Once upon a time";
        r.max_tokens = 100000;
        wandler_stream *st;
        assert_int_equal(wandler_stream_text(m, &r, &st, NULL), WANDLER_OK);
        /* The stream is running once its first parts arrive; it cannot finish before the
         * dispose, however fast the machine: inline it advances only in wandler_stream_next,
         * and a worker stops 64 parts (or, for a reader that read directly, a socket buffer's
         * worth, ~200 small frames) ahead of its reader (the context holds ~500 more). */
        wandler_part part;
        for (int deltas = 0; deltas < 3;) {
            assert_int_equal(wandler_stream_next(st, &part, -1), WANDLER_OK);
            deltas += part.type == WANDLER_PART_TEXT_DELTA;
        }
        /* another thread disposes the model while the stream is open (a worker is busy making
         * parts meanwhile); the stream then ends with DISPOSED after the parts made before */
        disposer d = {m, 2};
        pthread_t th;
        pthread_create(&th, NULL, dispose_later, &d);
        pthread_join(th, NULL);
        int rc, last_code = 0;
        while ((rc = wandler_stream_next(st, &part, -1)) == WANDLER_OK)
            if (part.type == WANDLER_PART_ERROR)
                last_code = part.error.code;
        assert_int_equal(last_code, WANDLER_ERR_DISPOSED);
        wandler_stream_free(st);
    }
}

/* ---- 8. life cycles leave nothing behind ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_lifecycle(void **state)
{
    const char *env = getenv("WANDLER_LIFECYCLE_CYCLES");
    int cycles = env ? atoi(env) : 200;
    for (int mi = 0; mi < 3; mi++) {
        /* warm up allocator pools and lazily created runtime state first */
        for (int i = 0; i < 3; i++) {
            wandler_model *m = load(MODES[mi], NULL);
            wandler_request r = greedy("Once", 4);
            wandler_result res;
            wandler_generate_text(m, &r, &res, NULL);
            wandler_result_free(&res);
            wandler_model_dispose(m);
        }
        int fds = count_fds(), threads = count_threads();
        long rss = rss_kb();
        double t0 = now_ms();
        for (int i = 0; i < cycles; i++) {
            wandler_model *m = load(MODES[mi], NULL);
            wandler_request r = greedy("Once upon a time", 6);
            wandler_stream *st;
            assert_int_equal(wandler_stream_text(m, &r, &st, NULL), WANDLER_OK);
            wandler_result res;
            assert_int_equal(wandler_stream_result(st, &res, NULL), WANDLER_OK);
            wandler_result_free(&res);
            wandler_stream_free(st);
            wandler_model_dispose(m);
        }
        int fds2 = count_fds(), threads2 = count_threads();
        long rss2 = rss_kb();
        printf("  %-8s %d cycles in %.0f ms: fds %d -> %d, threads %d -> %d, rss %ld -> %ld kB\n",
               MODE_NAMES[mi], cycles, now_ms() - t0, fds, fds2, threads, threads2, rss, rss2);
        assert_int_equal(fds2, fds);
        assert_int_equal(threads2, threads);
#if !WL_UNDER_ASAN /* AddressSanitizer keeps freed memory in quarantine; LeakSanitizer checks instead */
        assert_true(rss2 - rss < 8 * 1024); /* flat: no growth per cycle */
#endif
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes_match_golden),
        cmocka_unit_test(test_abort_latency),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_crash),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_concurrent_threads),
        cmocka_unit_test(test_poll_loop_four_models),
        cmocka_unit_test(test_back_pressure),
        cmocka_unit_test(test_back_pressure_direct),
        cmocka_unit_test(test_next_then_poll),
        cmocka_unit_test(test_callbacks),
        cmocka_unit_test(test_dispose_while_running),
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
