/* cmd_bench.c - `wandler bench`: prefill and decode speed of a model in each mode (inline,
 * thread worker, process worker), measured alternately, with medians, spreads and the figures
 * of wandler_model_stats() side by side. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/cpu.h"
#include "engine/gguf.h"
#include "engine/mapped_pages.h"
#include "engine/membw.h"
#include "engine/model.h"
#include "engine/repack_cache.h"
#include "engine/threadpool.h"
#include "gen/session.h"
#include "util/buf.h"
#include "wandler.h"

#include <stdatomic.h>
#include <time.h>

#define MAX_REPS 100

static void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: wandler bench [MODEL] [OPTIONS]\n"
            "\n"
            "Measures prompt processing (prefill of --pp tokens) and generation (--tg tokens) in\n"
            "tokens per second, with medians and spreads over repetitions. MODEL defaults to the\n"
            "bundled model.\n"
            "\n"
            "By default it runs the engine alone, like llama.cpp's llama-bench: ppN is one prefill\n"
            "of N random tokens into an empty cache, tgN is N single-token steps (nothing sampled),\n"
            "and a memory-bandwidth probe (reading a buffer as large as a token's weights) shows\n"
            "decode as a fraction of what memory can deliver.\n"
            "With --modes it instead runs whole requests through the public API in each mode\n"
            "(inline, thread worker, process worker), alternating between modes every repetition.\n"
            "\n"
            "  --pp N            prompt tokens (default 512; --modes: 128); 0 skips prefill\n"
            "  --tg N            generated tokens (default 128; --modes: 64); 0 skips decode\n"
            "  -r, --reps N      repetitions (default 5)\n"
            "  -t, --threads N   compute threads (default: one per core)\n"
            "  -d, --depth LIST  comma-separated context depths to test at (default 0), e.g. 0,512,2048\n"
            "  --no-bw           skip the memory-bandwidth probe\n"
            "  --modes LIST      comma-separated inline,thread,process: the public-API comparison\n"
            "  --json            print one JSON object instead of tables\n");
}

#define SERIES_CAP 1024 /* values a series keeps: repetitions, or decode windows (BW_WINDOW) */

typedef struct series {
    double v[SERIES_CAP];
    int n;
} series;

static void series_add(series *s, double x)
{
    if (s->n < SERIES_CAP)
        s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const series *s)
{
    if (s->n == 0)
        return 0;
    double tmp[SERIES_CAP];
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
    series_add(&r->pp, res.timings.prefill_tokens_per_s);
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
    series_add(&r->tg, res.timings.decode_tokens_per_s);
    series_add(&r->ttft, res.timings.time_to_first_token_ms);
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
        modes[(*n)++] = !o.use_worker                        ? WANDLER_MODE_INLINE
                        : o.worker == WANDLER_WORKER_PROCESS ? WANDLER_MODE_PROCESS
                                                             : WANDLER_MODE_THREAD;
    }
    return *n ? 0 : -1;
}

static void print_json(const char *model, const wandler_model_info *info, int threads, int pp, int tg,
                       int reps, mode_run *runs, int n)
{
    const char *slash = strrchr(model, '/');
    printf("{\"model\": \"%s\", \"model_path\": \"%s\", \"file_bytes\": %llu, \"n_params\": %llu, \"isa\": "
           "\"%s\", "
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
        printf(
            "%s\"%s\": {\"pp_tokens_per_s\": %.3f, \"pp_spread\": %.3f, \"tg_tokens_per_s\": %.3f, "
            "\"tg_spread\": %.3f, \"ttft_ms\": %.3f, \"pp_tokens\": %d, \"load_ms\": %.3f, "
            "\"rtt_mean_us\": %.2f, \"rtt_p99_us\": %.2f, \"frames_sent\": %llu, \"frames_received\": %llu, "
            "\"bytes_sent\": %llu, \"bytes_received\": %llu, \"rss_bytes\": %llu, \"pss_bytes\": %llu, "
            "\"ctx_bytes\": %llu, \"resident_before_load\": %.3f",
            i ? ", " : "", cli_mode_name(runs[i].mode), median(&runs[i].pp), stddev(&runs[i].pp),
            median(&runs[i].tg), stddev(&runs[i].tg), median(&runs[i].ttft), runs[i].pp_tokens, s->load_ms,
            s->rtt_mean_us, s->rtt_p99_us, (unsigned long long)s->frames_sent,
            (unsigned long long)s->frames_received, (unsigned long long)s->bytes_sent,
            (unsigned long long)s->bytes_received, (unsigned long long)s->rss_bytes,
            (unsigned long long)s->pss_bytes, (unsigned long long)s->ctx_bytes, s->resident_before_load);
        /* the model cache (a URL or hf:// model): was this mode's load a hit, what did it fetch */
        printf(", \"cache\": \"%s\", \"bytes_downloaded\": %llu, \"bytes_reused\": %llu}",
               s->cache == WANDLER_CACHE_HIT    ? "hit"
               : s->cache == WANDLER_CACHE_MISS ? "miss"
                                                : "none",
               (unsigned long long)s->bytes_downloaded, (unsigned long long)s->bytes_reused);
    }
    printf("}}\n");
}

static void print_table(const char *model, const wandler_model_info *info, int pp, int tg, int reps,
                        mode_run *runs, int n)
{
    printf("model: %s (%.1f MiB, %.1fM params, %s, %d threads), %d repetitions\n", model,
           info->file_bytes / 1048576.0, info->n_params / 1e6, info->isa, info->n_threads, reps);
    printf("%-8s %22s %22s %10s %9s %17s %10s %12s %9s\n", "mode", "pp tok/s", "tg tok/s", "ttft ms",
           "load ms", "rtt mean/p99 us", "frames", "rss/pss MiB", "ctx MiB");
    for (int i = 0; i < n; i++) {
        const wandler_stats *s = &runs[i].stats;
        char pps[32], tgs[32], rtt[32], mem[32];
        snprintf(pps, sizeof pps, "%.1f ± %.1f (pp%d)", median(&runs[i].pp), stddev(&runs[i].pp),
                 runs[i].pp_tokens);
        snprintf(tgs, sizeof tgs, "%.1f ± %.1f (tg%d)", median(&runs[i].tg), stddev(&runs[i].tg), tg);
        snprintf(rtt, sizeof rtt, s->rtt_samples ? "%.1f / %.1f" : "-", s->rtt_mean_us, s->rtt_p99_us);
        snprintf(mem, sizeof mem, s->rss_bytes ? "%.1f / %.1f" : "-", s->rss_bytes / 1048576.0,
                 s->pss_bytes / 1048576.0);
        printf("%-8s %22s %22s %10.2f %9.1f %17s %10llu %12s %9.1f\n", cli_mode_name(runs[i].mode), pps, tgs,
               median(&runs[i].ttft), s->load_ms, rtt,
               (unsigned long long)(s->frames_sent + s->frames_received), mem, s->ctx_bytes / 1048576.0);
    }
    for (int i = 0; i < n; i++) /* the model cache, for a URL or hf:// model */
        if (runs[i].stats.cache != WANDLER_CACHE_NONE)
            printf("%s: model cache %s, %.1f MiB downloaded, %.1f MiB reused\n", cli_mode_name(runs[i].mode),
                   runs[i].stats.cache == WANDLER_CACHE_HIT ? "hit" : "miss",
                   runs[i].stats.bytes_downloaded / 1048576.0, runs[i].stats.bytes_reused / 1048576.0);
    for (int i = 1; i < n; i++)
        if (runs[0].mode == WANDLER_MODE_INLINE && median(&runs[0].tg) > 0)
            printf("%s / inline: decode %.3fx, prefill %.3fx\n", cli_mode_name(runs[i].mode),
                   median(&runs[i].tg) / median(&runs[0].tg), median(&runs[i].pp) / median(&runs[0].pp));
    (void)pp;
}

/* ---- the engine benchmark (the default): llama-bench style ------------------------------
 *
 * Runs the engine directly (no tokenizer, no sampler, no worker), the way llama-bench runs
 * llama.cpp: pp N is one prefill of N random tokens into an empty cache (in batches of the
 * context's largest batch; logits of the last token only), tg N is N single-token forward
 * passes with the logits of each (random tokens, nothing sampled). With --depth D the cache
 * first holds D tokens (prefilled, not timed), so the figures show how speed falls with the
 * context. Every test is repeated --reps times after a warm-up; medians and spreads (standard
 * deviation, min, max) are reported. A memory-bandwidth probe (membw.h: the threads stream a
 * buffer as large as the weights one token reads) gives the bound decode cannot beat: bytes of
 * weights read per token x tokens/s <= read bandwidth. The buffer has the weights' size so that
 * the caches help the probe exactly as much as they help decode: with a 480 MiB L3, 728 MiB of
 * weights are partly served from it: a 960 MiB buffer read 4-7% slower than a 728 MiB one (a
 * weak bound), 1.9 GiB ~10% slower, a smaller one faster. It runs after every BW_WINDOW decode tokens (not timed as decode), and
 * decode's share of the bound is the median over those windows. */

#define MAX_DEPTHS 8
#define BW_WINDOW 16 /* decode tokens between two measurements of the bandwidth bound */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double series_min(const series *s)
{
    double m = s->n ? s->v[0] : 0;
    for (int i = 1; i < s->n; i++)
        m = s->v[i] < m ? s->v[i] : m;
    return m;
}

static double series_max(const series *s)
{
    double m = s->n ? s->v[0] : 0;
    for (int i = 1; i < s->n; i++)
        m = s->v[i] > m ? s->v[i] : m;
    return m;
}

/* Bytes of weights one decode step reads: every matrix of every layer and the output matrix
 * (of the embedding only the token's row, which is negligible). */
static double weight_bytes_per_token(const wl_model *m)
{
    double b = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const wl_layer *L = &m->layers[il];
        const wl_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
            if (ts[i]->data)
                b += (double)ts[i]->row_bytes * (double)ts[i]->ne[1];
    }
    return b + (double)m->output.row_bytes * (double)m->output.ne[1];
}

typedef struct engine_run {
    int depth;
    series pp, tg;
    series frac; /* decode's share of the read bandwidth measured right after it, per window */
} engine_run;

static unsigned int bench_rand(unsigned long long *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned int)(*state >> 33);
}

/* Runs n random tokens at positions pos.. through the model in batches; logits of the last. */
static int engine_feed(wl_ctx *c, int n_vocab, int n, int pos, float *logits, unsigned long long *rng,
                       wandler_error *err)
{
    int32_t tok[512];
    const int batch = wl_ctx_max_batch(c) < 512 ? wl_ctx_max_batch(c) : 512;
    for (int done = 0; done < n;) {
        int nb = n - done < batch ? n - done : batch;
        for (int i = 0; i < nb; i++)
            tok[i] = (int32_t)(bench_rand(rng) % (unsigned int)n_vocab);
        int rc = wl_forward(c, tok, nb, pos + done, done + nb == n ? logits : NULL, err);
        if (rc)
            return rc;
        done += nb;
    }
    return WANDLER_OK;
}

/* How the weights were read: a repacked cache file (repack_cache.h), or the GGUF file's rows. */
static wl_repack_info repack_info(const wl_repack *rp)
{
    wl_repack_info none = {0};
    return rp ? *wl_repack_info_of(rp) : none;
}

/* The weights' resident pages (the GGUF file's mapping and the repacked one's) and the share of
 * them mapped in 2 MiB pages (mapped_pages.h); *share < 0 when it cannot be told. */
static void weights_pages(const gguf_file *f, const wl_repack *rp, uint64_t *resident, double *share)
{
    uint64_t huge = 0;
    *resident = 0;
    int ok = gguf_path(f)[0] && wl_mapped_pages(gguf_base(f), (size_t)gguf_file_size(f), resident, &huge) == 0;
    if (rp)
        ok = ok && wl_mapped_pages(wl_repack_info_of(rp)->map, wl_repack_info_of(rp)->map_bytes, resident,
                                   &huge) == 0;
    *share = ok && *resident ? (double)huge / (double)*resident : -1;
}

static void print_engine_json(const char *model, size_t file_bytes, const wl_model *m, const char *isa,
                              int threads, int pp, int tg, int reps, const engine_run *runs, int n_runs,
                              double bw, double wbytes, const wl_repack *rp, double huge_share)
{
    const wl_repack_info ri = repack_info(rp);
    const char *slash = strrchr(model, '/');
    const double tg0 = tg > 0 ? median(&runs[0].tg) : 0;
    printf("{\"model\": \"%s\", \"model_path\": \"%s\", \"file_bytes\": %zu, \"n_params\": %llu, \"arch\": "
           "\"%s\", "
           "\"isa\": \"%s\", \"threads\": %d, \"pp\": %d, \"tg\": %d, \"reps\": %d, ",
           slash ? slash + 1 : model, model, file_bytes, (unsigned long long)m->n_params, m->arch_name, isa,
           threads, pp, tg, reps);
    printf(
        "\"repacked_tensors\": %d, \"repacked_bytes\": %llu, \"repack_cache_hit\": %s, \"repack_ms\": %.1f, ",
        ri.n_tensors, (unsigned long long)ri.bytes, ri.hit ? "true" : "false", ri.ms);
    if (huge_share >= 0)
        printf("\"weights_huge_page_share\": %.4f, ", huge_share);
    else
        printf("\"weights_huge_page_share\": null, ");
    printf(
        "\"pp_tokens_per_s\": %.3f, \"pp_spread\": %.3f, \"tg_tokens_per_s\": %.3f, \"tg_spread\": %.3f, "
        "\"read_bandwidth_gb_s\": %.3f, \"weight_bytes_per_token\": %.0f, \"tg_bandwidth_fraction\": %.4f, "
        "\"depths\": [",
        pp > 0 ? median(&runs[0].pp) : 0, stddev(&runs[0].pp), tg0, stddev(&runs[0].tg), bw / 1e9, wbytes,
        runs[0].frac.n ? median(&runs[0].frac) : 0);
    for (int i = 0; i < n_runs; i++) {
        const engine_run *r = &runs[i];
        printf("%s{\"depth\": %d, \"pp_tokens_per_s\": %.3f, \"pp_spread\": %.3f, \"pp_min\": %.3f, "
               "\"pp_max\": %.3f, "
               "\"tg_tokens_per_s\": %.3f, \"tg_spread\": %.3f, \"tg_min\": %.3f, \"tg_max\": %.3f}",
               i ? ", " : "", r->depth, median(&r->pp), stddev(&r->pp), series_min(&r->pp),
               series_max(&r->pp), median(&r->tg), stddev(&r->tg), series_min(&r->tg), series_max(&r->tg));
    }
    printf("]}\n");
}

static void print_engine_table(const char *model, size_t file_bytes, const wl_model *m, const char *isa,
                               int threads, int pp, int tg, int reps, const engine_run *runs, int n_runs,
                               double bw, double wbytes, const wl_repack *rp, uint64_t resident,
                               double huge_share)
{
    const wl_repack_info ri = repack_info(rp);
    printf("model: %s (%s, %.1f MiB, %.1fM params, %s, %d threads), %d repetitions\n", model, m->arch_name,
           file_bytes / 1048576.0, m->n_params / 1e6, isa, threads, reps);
    if (ri.n_tensors)
        printf("weights: %d Q4_0 matrices (%.1f MiB) repacked in groups of 16 rows, %s %s in %.0f ms\n",
               ri.n_tensors, ri.bytes / 1048576.0, ri.hit ? "mapped from" : "written to", ri.path, ri.ms);
    if (huge_share >= 0)
        printf("weights' pages: %.1f MiB resident, %.0f%% of them mapped in 2 MiB pages\n", resident / 1048576.0,
               100.0 * huge_share);
    printf("%-16s %12s %10s %10s %10s\n", "test", "tokens/s", "spread", "min", "max");
    for (int i = 0; i < n_runs; i++) {
        const engine_run *r = &runs[i];
        char name[48];
        char at[24] = "";
        if (r->depth > 0)
            snprintf(at, sizeof at, " @ d%d", r->depth);
        if (pp > 0) {
            snprintf(name, sizeof name, "pp%d%s", pp, at);
            printf("%-16s %12.2f %10.2f %10.2f %10.2f\n", name, median(&r->pp), stddev(&r->pp),
                   series_min(&r->pp), series_max(&r->pp));
        }
        if (tg > 0) {
            snprintf(name, sizeof name, "tg%d%s", tg, at);
            printf("%-16s %12.2f %10.2f %10.2f %10.2f\n", name, median(&r->tg), stddev(&r->tg),
                   series_min(&r->tg), series_max(&r->tg));
        }
    }
    if (bw > 0) {
        printf("memory read bandwidth: %.1f GB/s (%d threads, median; a buffer as large as a token's weights)\n",
               bw / 1e9, threads);
        if (tg > 0 && runs[0].frac.n)
            printf("decode reads %.1f MiB of weights per token: tg%d moves %.1f GB/s = %.0f%% of the bound "
                   "(median over %d windows of up to %d tokens of each one's share of the bandwidth measured "
                   "right after it, min %.0f%%, max %.0f%%; the bound is %.1f tokens/s)\n",
                   wbytes / 1048576.0, tg, wbytes * median(&runs[0].tg) / 1e9, 100.0 * median(&runs[0].frac),
                   runs[0].frac.n, BW_WINDOW, 100.0 * series_min(&runs[0].frac),
                   100.0 * series_max(&runs[0].frac), bw / wbytes);
    }
}

static int parse_depths(const char *s, int *depths, int *n)
{
    char buf[128];
    *n = 0;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long d;
        if (*n == MAX_DEPTHS || cli_parse_int("--depth", tok, 0, 1 << 20, &d))
            return -1;
        depths[(*n)++] = (int)d;
    }
    return *n ? 0 : -1;
}

static int engine_bench(const char *model, int pp, int tg, int reps, int threads, const int *depths,
                        int n_depths, int probe_bw, int json)
{
    wandler_error err;
    gguf_file *f = NULL;
    wl_model *m = NULL;
    wl_pool *pool = NULL;
    wl_ctx *c = NULL;
    wl_repack *rp = NULL;
    float *logits = NULL;
    static engine_run runs[MAX_DEPTHS];
    static series bw;
    wl_membw *probe = NULL;
    int status = 1, max_depth = 0;
    memset(runs, 0, sizeof runs);
    for (int i = 0; i < n_depths; i++)
        max_depth = depths[i] > max_depth ? depths[i] : max_depth;
    if (threads <= 0)
        threads = wl_cpu_count();
    const int isa = wl_isa_best();
    const int n_ctx = max_depth + (pp > tg ? pp : tg) + 1;
    if (gguf_open(model, &f, &err) || wl_model_load(f, &m, &err)) {
        fprintf(stderr, "wandler bench: %s: %s (%s)\n", model, err.message, wandler_status_name(err.code));
        goto out;
    }
    /* as a load does: the Q4_0 matrices from their repacked cache file, when it can be */
    if (wl_repack_cached(m, f, isa, &rp, &err))
        fprintf(stderr, "wandler bench: %s: not repacked: %s (%s)\n", model, err.message,
                wandler_status_name(err.code));
    if (wl_pool_create(threads, &pool, &err) || wl_ctx_create(m, n_ctx, pool, isa, &c, &err)) {
        fprintf(stderr, "wandler bench: %s: %s (%s)\n", model, err.message, wandler_status_name(err.code));
        goto out;
    }
    if (!(logits = malloc((size_t)m->hp.n_vocab * sizeof *logits))) {
        fprintf(stderr, "wandler bench: out of memory\n");
        goto out;
    }
    unsigned long long rng = 1234;
    const double wbytes = weight_bytes_per_token(m);
    /* as many bytes as a token's weights, in whole 2 MiB pages (the comment above says why) */
    const size_t huge = (size_t)2 << 20, probe_bytes = ((size_t)wbytes + huge - 1) / huge * huge;
    if (probe_bw && wl_membw_create(probe_bytes, &probe) != 0)
        fprintf(stderr, "wandler bench: no memory for the bandwidth probe; skipping it\n");
    /* warm-up: pages the weights in, starts the threads */
    const int warm = pp > 0 ? pp : tg;
    if (engine_feed(c, m->hp.n_vocab, warm < 64 ? warm : 64, 0, logits, &rng, &err) ||
        engine_feed(c, m->hp.n_vocab, 1, 0, logits, &rng, &err))
        goto fail;
    for (int rep = 0; rep < reps; rep++) {
        for (int i = 0; i < n_depths; i++) {
            engine_run *r = &runs[i];
            const int d = depths[i];
            r->depth = d;
            if (d > 0 && engine_feed(c, m->hp.n_vocab, d, 0, NULL, &rng, &err))
                goto fail;
            if (pp > 0) {
                double t0 = now_s();
                if (engine_feed(c, m->hp.n_vocab, pp, d, logits, &rng, &err))
                    goto fail;
                series_add(&r->pp, pp / (now_s() - t0));
            }
            if (tg > 0) {
                /* with the probe, in windows of BW_WINDOW tokens, each followed by a measurement of
                 * the bound: the machine may be shared, and what it gives can change within a
                 * repetition; the probe's time is not decode time */
                double t_decode = 0;
                for (int k = 0; k < tg;) {
                    const int w = probe && tg - k > BW_WINDOW ? BW_WINDOW : tg - k;
                    const double t0 = now_s();
                    for (int j = 0; j < w; j++, k++)
                        if (engine_feed(c, m->hp.n_vocab, 1, d + k, logits, &rng, &err))
                            goto fail;
                    const double dt = now_s() - t0;
                    t_decode += dt;
                    if (probe) {
                        const double b = wl_membw_measure(probe, pool, 2);
                        series_add(&bw, b);
                        series_add(&r->frac, b > 0 && dt > 0 ? wbytes * w / dt / b : 0);
                    }
                }
                series_add(&r->tg, tg / t_decode);
            }
        }
    }
    if (probe && bw.n == 0) /* no decode test: measure the bound once */
        series_add(&bw, wl_membw_measure(probe, pool, 3));
    const size_t file_bytes = (size_t)gguf_file_size(f);
    uint64_t resident;
    double huge_share;
    weights_pages(f, rp, &resident, &huge_share);
    if (json)
        print_engine_json(model, file_bytes, m, wl_isa_name(isa), threads, pp, tg, reps, runs, n_depths,
                          median(&bw), wbytes, rp, huge_share);
    else
        print_engine_table(model, file_bytes, m, wl_isa_name(isa), threads, pp, tg, reps, runs, n_depths,
                           median(&bw), wbytes, rp, resident, huge_share);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "wandler bench: %s: %s (%s)\n", model, err.message, wandler_status_name(err.code));
out:
    free(logits);
    wl_membw_free(probe);
    wl_ctx_free(c);
    wl_pool_destroy(pool);
    wl_model_free(m);
    wl_repack_free(rp);
    gguf_close(f);
    return status;
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL;
    long pp = -1, tg = -1, reps = 5, threads = 0;
    int json = 0, modes[3] = {WANDLER_MODE_INLINE, WANDLER_MODE_THREAD, WANDLER_MODE_PROCESS}, n_modes = 3;
    int api = 0, probe_bw = 1, depths[MAX_DEPTHS] = {0}, n_depths = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            bench_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--json")) {
            json = 1;
        } else if (!strcmp(o, "--pp")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(o, v, 0, 1 << 20, &pp))
                return 2;
        } else if (!strcmp(o, "--tg")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(o, v, 0, 1 << 20, &tg))
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
            api = 1;
        } else if (!strcmp(o, "-d") || !strcmp(o, "--depth")) {
            if (!(v = cli_value(argc, argv, &i)))
                return 2;
            if (parse_depths(v, depths, &n_depths)) {
                fprintf(stderr, "wandler bench: --depth takes up to %d comma-separated token counts\n",
                        MAX_DEPTHS);
                return 2;
            }
        } else if (!strcmp(o, "--no-bw")) {
            probe_bw = 0;
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
    if (!api) {
        pp = pp < 0 ? 512 : pp;
        tg = tg < 0 ? 128 : tg;
        if (pp == 0 && tg == 0) {
            fprintf(stderr, "wandler bench: nothing to measure (--pp 0 --tg 0)\n");
            return 2;
        }
        return engine_bench(model, (int)pp, (int)tg, (int)reps, (int)threads, depths, n_depths, probe_bw,
                            json);
    }
    pp = pp < 0 ? 128 : pp;
    tg = tg < 0 ? 64 : tg;
    if (pp < 4 || tg < 2) {
        fprintf(stderr, "wandler bench: with --modes, --pp must be >= 4 and --tg >= 2\n");
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
