/* bench_worker.c - what a worker costs and how fast it reacts, through the public API only.
 *
 *   bench_worker [MODEL] [--tg N] [--reps R] [--threads N]
 *
 * MODEL defaults to the bundled model the build copies next to this program
 * (BUILD/models/stories260K.gguf). Prints:
 *   - decode tokens/s of the same greedy request in each mode (inline, thread, process), runs
 *     alternating between the modes so that drifts in machine load hit all three alike; the
 *     median per mode and its ratio to inline, as seen by the caller (first text delta to the
 *     finish part) and as timed by the engine;
 *   - the round trip of a frame to the worker and back (PING/PONG while idle);
 *   - abort latency (wandler_stream_abort() to the finish part), timeout overshoot, and the time
 *     from kill -9 of a process worker to the stream's error part.
 * The figures depend on the machine and its load; the tests only check behaviour. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wandler.h"

enum { NMODES = 3, MAX_REPS = 64 };
static const int MODES[NMODES] = {WANDLER_MODE_INLINE, WANDLER_MODE_THREAD, WANDLER_MODE_PROCESS};
static const char *MODE_NAMES[NMODES] = {"inline", "thread", "process"};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sorts v[n] in place */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static wandler_model *load(const char *path, int mode, int threads)
{
    wandler_model_options o = wandler_model_options_default();
    o.use_worker = mode != WANDLER_MODE_INLINE;
    o.worker = mode == WANDLER_MODE_PROCESS ? WANDLER_WORKER_PROCESS : WANDLER_WORKER_THREAD;
    o.fallback = 0;
    o.n_threads = threads;
    wandler_model *m = NULL;
    wandler_error err;
    if (wandler_load_model(path, &o, &m, &err) != WANDLER_OK) {
        fprintf(stderr, "bench_worker: load %s (%s): %s\n", path, MODE_NAMES[mode], err.message);
        exit(1);
    }
    return m;
}

/* One greedy request of exactly tg tokens, streamed. *client: tokens/s the caller saw from the
 * first text delta to the finish part; *engine: the engine's own decode rate. */
static void decode_once(wandler_model *m, int tg, double *client, double *engine)
{
    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time";
    r.temperature = 0;
    r.max_tokens = tg;
    r.ignore_eos = 1;
    wandler_stream *st;
    wandler_error err;
    if (wandler_stream_text(m, &r, &st, &err) != WANDLER_OK) {
        fprintf(stderr, "bench_worker: %s\n", err.message);
        exit(1);
    }
    wandler_part p;
    double first = 0, end = 0;
    int deltas = 0;
    while (wandler_stream_next(st, &p, -1) == WANDLER_OK) {
        if (p.type == WANDLER_PART_TEXT_DELTA && deltas++ == 0)
            first = now_ms();
        if (p.type == WANDLER_PART_FINISH) {
            end = now_ms();
            /* tokens after the first delta's token, over the time they took */
            *client = (p.usage.completion_tokens - 1) / ((end - first) / 1e3);
            *engine = p.timings.decode_tokens_per_s;
        } else if (p.type == WANDLER_PART_ERROR) {
            fprintf(stderr, "bench_worker: %s\n", p.error.message);
            exit(1);
        }
    }
    wandler_stream_free(st);
}

/* A request that would run to the end of the context. */
static wandler_request long_request(void)
{
    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time";
    r.max_tokens = 100000;
    r.ignore_eos = 1;
    return r;
}

/* Starts a long stream and reads its first `deltas` text deltas. */
static wandler_stream *start_long_stream(wandler_model *m, int deltas)
{
    wandler_request r = long_request();
    wandler_stream *st;
    if (wandler_stream_text(m, &r, &st, NULL) != WANDLER_OK)
        exit(1);
    wandler_part p;
    for (int seen = 0; seen < deltas;) {
        if (wandler_stream_next(st, &p, -1) != WANDLER_OK)
            exit(1);
        seen += p.type == WANDLER_PART_TEXT_DELTA;
    }
    return st;
}

/* Reads past the remaining text deltas; *p gets the part that ended the stream. */
static void skip_deltas(wandler_stream *st, wandler_part *p)
{
    while (wandler_stream_next(st, p, -1) == WANDLER_OK && p->type == WANDLER_PART_TEXT_DELTA)
        ;
}

/* Streams a long request, reads 5 deltas, aborts: ms from the abort to the finish part. */
static double abort_once(wandler_model *m)
{
    wandler_stream *st = start_long_stream(m, 5);
    wandler_part p;
    double t0 = now_ms();
    wandler_stream_abort(st);
    skip_deltas(st, &p);
    double dt = now_ms() - t0;
    if (p.type != WANDLER_PART_FINISH || p.finish_reason != WANDLER_FINISH_ABORT)
        dt = -1; /* the generation ended on its own first: not a measurement */
    wandler_stream_free(st);
    return dt;
}

/* ms past a 30 ms timeout at which the request ended, or -1 when it finished first. */
static double timeout_once(wandler_model *m)
{
    wandler_request r = long_request();
    r.timeout_ms = 30;
    wandler_result res;
    double t0 = now_ms();
    int rc = wandler_generate_text(m, &r, &res, NULL);
    double dt = now_ms() - t0;
    wandler_result_free(&res);
    return rc == WANDLER_ERR_TIMEOUT ? dt - 30 : -1;
}

/* ms from kill -9 of the process worker to the stream's error part. */
static double crash_once(wandler_model *m)
{
    wandler_stats s;
    wandler_model_stats(m, &s);
    wandler_stream *st = start_long_stream(m, 1);
    wandler_part p;
    double t0 = now_ms();
    kill(s.worker_pid, SIGKILL);
    skip_deltas(st, &p);
    double dt = now_ms() - t0;
    int ok = p.type == WANDLER_PART_ERROR && p.error.code == WANDLER_ERR_WORKER_CRASHED;
    wandler_stream_free(st);
    /* the next request starts a fresh worker */
    wandler_result res;
    wandler_request g = wandler_request_default();
    g.prompt = "Once";
    g.max_tokens = 2;
    if (wandler_generate_text(m, &g, &res, NULL) != WANDLER_OK)
        ok = 0;
    wandler_result_free(&res);
    return ok ? dt : -1;
}

/* median / max over n of the non-negative values; prints "n/a" when there are none */
static void print_latency(const char *what, double *v, int n)
{
    double ok[MAX_REPS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] >= 0)
            ok[k++] = v[i];
    if (!k) {
        printf("  %-34s n/a (the generation ended before the event)\n", what);
        return;
    }
    double med = median(ok, k);
    printf("  %-34s median %7.2f ms   max %7.2f ms   (%d runs)\n", what, med, ok[k - 1], k);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int tg = 128, reps = 7, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tg") && i + 1 < argc)
            tg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bench_worker [MODEL] [--tg N] [--reps R] [--threads N]\n");
            return 2;
        } else
            path = argv[i];
    }
    if (tg < 2 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "bench_worker: --tg must be >= 2 and --reps 1..%d\n", MAX_REPS);
        return 2;
    }
    char bundled[4096];
    if (!path) { /* the build's copy of the bundled model, next to this program */
        ssize_t n = readlink("/proc/self/exe", bundled, sizeof bundled - 64);
        if (n <= 0)
            return 1;
        bundled[n] = 0;
        char *slash = strrchr(bundled, '/');
        strcpy(slash ? slash + 1 : bundled, "models/stories260K.gguf");
        path = bundled;
    }

    wandler_model *m[NMODES];
    for (int i = 0; i < NMODES; i++)
        m[i] = load(path, MODES[i], threads);
    printf("model %s, %d decode tokens, %d alternating runs per mode\n\n", path, tg, reps);

    double client[NMODES][MAX_REPS], engine[NMODES][MAX_REPS];
    double warm_c, warm_e;
    for (int i = 0; i < NMODES; i++)
        decode_once(m[i], tg, &warm_c, &warm_e); /* page in the weights, warm the caches */
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < NMODES; i++)
            decode_once(m[(i + rep) % NMODES], tg, &client[(i + rep) % NMODES][rep], &engine[(i + rep) % NMODES][rep]);
    double med_c[NMODES], med_e[NMODES];
    for (int i = 0; i < NMODES; i++) {
        med_c[i] = median(client[i], reps);
        med_e[i] = median(engine[i], reps);
    }
    printf("decode tokens/s (median)   as the caller sees it   vs inline   engine-timed   vs inline\n");
    for (int i = 0; i < NMODES; i++)
        printf("  %-8s                  %10.1f            %6.3fx   %10.1f      %6.3fx\n", MODE_NAMES[i],
               med_c[i], med_c[i] / med_c[0], med_e[i], med_e[i] / med_e[0]);

    usleep(1500 * 1000); /* idle: the bridges ping their workers */
    printf("\nframe round trip (PING/PONG while idle)\n");
    for (int i = 1; i < NMODES; i++) {
        wandler_stats s;
        wandler_model_stats(m[i], &s);
        printf("  %-8s mean %6.1f us   p99 %6.1f us   (%llu samples)\n", MODE_NAMES[i], s.rtt_mean_us,
               s.rtt_p99_us, (unsigned long long)s.rtt_samples);
    }

    printf("\nreaction times\n");
    double v[MAX_REPS];
    char what[64];
    for (int i = 0; i < NMODES; i++) {
        for (int k = 0; k < reps; k++)
            v[k] = abort_once(m[i]);
        snprintf(what, sizeof what, "abort -> finish (%s)", MODE_NAMES[i]);
        print_latency(what, v, reps);
    }
    for (int i = 0; i < NMODES; i++) {
        for (int k = 0; k < reps; k++)
            v[k] = timeout_once(m[i]);
        snprintf(what, sizeof what, "30 ms timeout overshoot (%s)", MODE_NAMES[i]);
        print_latency(what, v, reps);
    }
    for (int k = 0; k < reps; k++)
        v[k] = crash_once(m[2]);
    print_latency("kill -9 -> error part (process)", v, reps);

    for (int i = 0; i < NMODES; i++)
        wandler_model_dispose(m[i]);
    return 0;
}
