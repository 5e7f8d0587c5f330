/* cmd_bench.c - `wandler bench`: prefill and decode speed of a model in each mode (inline,
 * thread worker, process worker), measured alternately, with medians, spreads and the figures
 * of wandler_model_stats() side by side. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"
#include "wandler.h"

#define MAX_REPS 100

static void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: wandler bench [MODEL] [OPTIONS]\n"
            "\n"
            "Measures prompt processing (prefill of --pp tokens) and generation (--tg tokens) in\n"
            "each mode, alternating between modes for every repetition, and prints medians and\n"
            "spreads (standard deviation) in tokens per second, plus each mode's figures.\n"
            "MODEL defaults to the bundled model.\n"
            "\n"
            "  --pp N            prompt tokens (default 128)\n"
            "  --tg N            generated tokens (default 64)\n"
            "  -r, --reps N      repetitions (default 5)\n"
            "  -t, --threads N   compute threads (default: one per core)\n"
            "  --modes LIST      comma-separated inline,thread,process (default: all three)\n"
            "  --json            print one JSON object instead of tables\n");
}

typedef struct series {
    double v[MAX_REPS];
    int n;
} series;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const series *s)
{
    if (s->n == 0)
        return 0;
    double tmp[MAX_REPS];
    memcpy(tmp, s->v, sizeof(double) * (size_t)s->n);
    qsort(tmp, (size_t)s->n, sizeof *tmp, cmp_double);
    return s->n % 2 ? tmp[s->n / 2] : (tmp[s->n / 2 - 1] + tmp[s->n / 2]) / 2;
}

static double stddev(const series *s)
{
    if (s->n < 2)
        return 0;
    double mean = 0, var = 0;
    for (int i = 0; i < s->n; i++)
        mean += s->v[i];
    mean /= s->n;
    for (int i = 0; i < s->n; i++)
        var += (s->v[i] - mean) * (s->v[i] - mean);
    return sqrt(var / (s->n - 1));
}

typedef struct mode_run {
    int mode;
    wandler_model *m;
    series pp, tg, ttft;
    int pp_tokens;
    wandler_stats stats;
} mode_run;

/* A prompt of about n tokens that differs from every other one from its first word on, so the
 * KV cache of an earlier run cannot shorten the prefill. */
static char *make_prompt(int n, int variant)
{
    static const char *starts[] = {"Once", "Lily", "Tom", "The", "One", "A", "Mom", "Sam", "Ben", "Sue"};
    wl_buf b = {0};
    char lead[32];
    snprintf(lead, sizeof lead, "%s%d", starts[variant % 10], variant);
    wl_buf_puts(&b, lead);
    for (int i = 1; i < n - 2; i++)
        wl_buf_puts(&b, " the");
    return wl_buf_take(&b);
}

static int run_once(mode_run *r, int pp, int tg, int variant, wandler_error *err)
{
    wandler_request q = wandler_request_default();
    q.temperature = 0;
    wandler_result res;
    char *prompt = make_prompt(pp, variant);
    q.prompt = prompt;
    q.max_tokens = 1;
    int rc = wandler_generate_text(r->m, &q, &res, err);
    free(prompt);
    if (rc) {
        wandler_result_free(&res);
        return rc;
    }
    r->pp.v[r->pp.n++] = res.timings.prefill_tokens_per_s;
    r->pp_tokens = res.usage.prompt_tokens;
    wandler_result_free(&res);

    char small[32];
    snprintf(small, sizeof small, "Once %d", variant);
    q.prompt = small;
    q.max_tokens = tg;
    q.ignore_eos = 1;
    if ((rc = wandler_generate_text(r->m, &q, &res, err))) {
        wandler_result_free(&res);
        return rc;
    }
    r->tg.v[r->tg.n++] = res.timings.decode_tokens_per_s;
    r->ttft.v[r->ttft.n++] = res.timings.time_to_first_token_ms;
    wandler_result_free(&res);
    return WANDLER_OK;
}

static int parse_modes(const char *s, int *modes, int *n)
{
    *n = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        wandler_model_options o = wandler_model_options_default();
        if (cli_parse_mode("--modes", tok, &o) || *n == 3)
            return -1;
        modes[(*n)++] = !o.use_worker ? WANDLER_MODE_INLINE
                        : o.worker == WANDLER_WORKER_PROCESS ? WANDLER_MODE_PROCESS
                                                             : WANDLER_MODE_THREAD;
    }
    return *n ? 0 : -1;
}

static void print_json(const char *model, const wandler_model_info *info, int threads, int pp, int tg, int reps,
                       mode_run *runs, int n)
{
    const char *slash = strrchr(model, '/');
    printf("{\"model\": \"%s\", \"model_path\": \"%s\", \"file_bytes\": %llu, \"n_params\": %llu, \"isa\": \"%s\", "
           "\"threads\": %d, \"pp\": %d, \"tg\": %d, \"reps\": %d, ",
           slash ? slash + 1 : model, model, (unsigned long long)info->file_bytes,
           (unsigned long long)info->n_params, info->isa, threads, pp, tg, reps);
    /* the first mode's figures at the top level, for scripts comparing runs */
    printf("\"mode\": \"%s\", \"pp_tokens_per_s\": %.3f, \"pp_spread\": %.3f, \"tg_tokens_per_s\": %.3f, "
           "\"tg_spread\": %.3f, \"modes\": {",
           cli_mode_name(runs[0].mode), median(&runs[0].pp), stddev(&runs[0].pp), median(&runs[0].tg),
           stddev(&runs[0].tg));
    for (int i = 0; i < n; i++) {
        const wandler_stats *s = &runs[i].stats;
        printf("%s\"%s\": {\"pp_tokens_per_s\": %.3f, \"pp_spread\": %.3f, \"tg_tokens_per_s\": %.3f, "
               "\"tg_spread\": %.3f, \"ttft_ms\": %.3f, \"pp_tokens\": %d, \"load_ms\": %.3f, "
               "\"rtt_mean_us\": %.2f, \"rtt_p99_us\": %.2f, \"frames_sent\": %llu, \"frames_received\": %llu, "
               "\"bytes_sent\": %llu, \"bytes_received\": %llu, \"rss_bytes\": %llu, \"pss_bytes\": %llu, "
               "\"ctx_bytes\": %llu, \"resident_before_load\": %.3f}",
               i ? ", " : "", cli_mode_name(runs[i].mode), median(&runs[i].pp), stddev(&runs[i].pp),
               median(&runs[i].tg), stddev(&runs[i].tg), median(&runs[i].ttft), runs[i].pp_tokens, s->load_ms,
               s->rtt_mean_us, s->rtt_p99_us, (unsigned long long)s->frames_sent,
               (unsigned long long)s->frames_received, (unsigned long long)s->bytes_sent,
               (unsigned long long)s->bytes_received, (unsigned long long)s->rss_bytes,
               (unsigned long long)s->pss_bytes, (unsigned long long)s->ctx_bytes, s->resident_before_load);
    }
    printf("}}\n");
}

static void print_table(const char *model, const wandler_model_info *info, int pp, int tg, int reps, mode_run *runs,
                        int n)
{
    printf("model: %s (%.1f MiB, %.1fM params, %s, %d threads), %d repetitions\n", model,
           info->file_bytes / 1048576.0, info->n_params / 1e6, info->isa, info->n_threads, reps);
    printf("%-8s %22s %22s %10s %9s %17s %10s %12s %9s\n", "mode", "pp tok/s", "tg tok/s", "ttft ms", "load ms",
           "rtt mean/p99 us", "frames", "rss/pss MiB", "ctx MiB");
    for (int i = 0; i < n; i++) {
        const wandler_stats *s = &runs[i].stats;
        char pps[32], tgs[32], rtt[32], mem[32];
        snprintf(pps, sizeof pps, "%.1f ± %.1f (pp%d)", median(&runs[i].pp), stddev(&runs[i].pp), runs[i].pp_tokens);
        snprintf(tgs, sizeof tgs, "%.1f ± %.1f (tg%d)", median(&runs[i].tg), stddev(&runs[i].tg), tg);
        snprintf(rtt, sizeof rtt, s->rtt_samples ? "%.1f / %.1f" : "-", s->rtt_mean_us, s->rtt_p99_us);
        snprintf(mem, sizeof mem, s->rss_bytes ? "%.1f / %.1f" : "-", s->rss_bytes / 1048576.0,
                 s->pss_bytes / 1048576.0);
        printf("%-8s %22s %22s %10.2f %9.1f %17s %10llu %12s %9.1f\n", cli_mode_name(runs[i].mode), pps, tgs,
               median(&runs[i].ttft), s->load_ms, rtt,
               (unsigned long long)(s->frames_sent + s->frames_received), mem, s->ctx_bytes / 1048576.0);
    }
    for (int i = 1; i < n; i++)
        if (runs[0].mode == WANDLER_MODE_INLINE && median(&runs[0].tg) > 0)
            printf("%s / inline: decode %.3fx, prefill %.3fx\n", cli_mode_name(runs[i].mode),
                   median(&runs[i].tg) / median(&runs[0].tg), median(&runs[i].pp) / median(&runs[0].pp));
    (void)pp;
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL;
    long pp = 128, tg = 64, reps = 5, threads = 0;
    int json = 0, modes[3] = {WANDLER_MODE_INLINE, WANDLER_MODE_THREAD, WANDLER_MODE_PROCESS}, n_modes = 3;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            bench_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--json")) {
            json = 1;
        } else if (!strcmp(o, "--pp")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(o, v, 4, 1 << 20, &pp))
                return 2;
        } else if (!strcmp(o, "--tg")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(o, v, 2, 1 << 20, &tg))
                return 2;
        } else if (!strcmp(o, "-r") || !strcmp(o, "--reps")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(o, v, 1, MAX_REPS, &reps))
                return 2;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(o, v, 1, 256, &threads))
                return 2;
        } else if (!strcmp(o, "--modes")) {
            if (!(v = cli_value(argc, argv, &i)))
                return 2;
            if (parse_modes(v, modes, &n_modes)) {
                fprintf(stderr, "wandler bench: --modes takes a list of inline, thread, process\n");
                return 2;
            }
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "wandler bench: unknown option '%s'\n", o);
            return 2;
        } else if (!model) {
            model = o;
        } else {
            fprintf(stderr, "wandler bench: unexpected argument '%s'\n", o);
            return 2;
        }
    }
    if (!model && !(model = cli_default_model())) {
        fprintf(stderr, "wandler bench: no model given and the bundled model was not found\n");
        return 2;
    }
    mode_run runs[3];
    memset(runs, 0, sizeof runs);
    wandler_model_info info = {0};
    int status = 1;
    wandler_error err;
    for (int i = 0; i < n_modes; i++) {
        wandler_model_options o = wandler_model_options_default();
        o.n_threads = (int)threads;
        o.fallback = 0;
        o.use_worker = modes[i] != WANDLER_MODE_INLINE;
        o.worker = modes[i] == WANDLER_MODE_PROCESS ? WANDLER_WORKER_PROCESS : WANDLER_WORKER_THREAD;
        o.context_length = (int)(pp + tg + 16 > 4096 ? pp + tg + 16 : 0);
        runs[i].mode = modes[i];
        if (wandler_load_model(model, &o, &runs[i].m, &err) != WANDLER_OK) {
            fprintf(stderr, "wandler bench: %s (%s): %s (%s)\n", model, cli_mode_name(modes[i]), err.message,
                    wandler_status_name(err.code));
            goto out;
        }
        if (i == 0)
            wandler_model_info_get(runs[i].m, &info);
        /* warm-up: page the weights in, start the threads */
        mode_run warm = runs[i];
        if (run_once(&warm, 8, 4, 99, &err) != WANDLER_OK) {
            fprintf(stderr, "wandler bench: %s\n", err.message);
            goto out;
        }
    }
    if (pp + tg + 8 > info.n_ctx && pp + tg + 16 <= 4096) {
        fprintf(stderr, "wandler bench: --pp + --tg exceed the context window (%d)\n", info.n_ctx);
        goto out;
    }
    for (int rep = 0; rep < reps; rep++) {
        for (int k = 0; k < n_modes; k++) {
            int i = (k + rep) % n_modes; /* alternate which mode goes first */
            if (run_once(&runs[i], (int)pp, (int)tg, rep * 3 + i, &err) != WANDLER_OK) {
                fprintf(stderr, "wandler bench: %s (%s): %s\n", cli_mode_name(runs[i].mode), err.message,
                        wandler_status_name(err.code));
                goto out;
            }
        }
    }
    for (int i = 0; i < n_modes; i++)
        wandler_model_stats(runs[i].m, &runs[i].stats);
    if (json)
        print_json(model, &info, info.n_threads, (int)pp, (int)tg, (int)reps, runs, n_modes);
    else
        print_table(model, &info, (int)pp, (int)tg, (int)reps, runs, n_modes);
    status = 0;
out:
    for (int i = 0; i < n_modes; i++)
        wandler_model_dispose(runs[i].m);
    return status;
}
