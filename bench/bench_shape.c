/* bench_shape.c - what loading and running one model costs: load time, resident memory right
 * after the load (the weights are mapped, not copied, so this stays far below the file size),
 * and prefill / decode speed, through the public API (inline mode, so /proc/self is the
 * model's process).
 *
 *   bench_shape MODEL [--tg N] [--threads N] [--ctx N] [--json]
 *
 * Resident memory is read from /proc/self/status: VmRSS (all), RssAnon (heap: KV cache, scratch,
 * vocabulary) and RssFile (pages of the mapped file that were touched). Decode runs greedily
 * with ignore_eos, so a random-weight model generates all N tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wandler.h"

typedef struct mem {
    double rss, anon, file; /* MiB */
} mem;

static mem read_mem(void)
{
    mem m = {0, 0, 0};
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return m;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        double kb;
        if (sscanf(line, "VmRSS: %lf", &kb) == 1)
            m.rss = kb / 1024;
        else if (sscanf(line, "RssAnon: %lf", &kb) == 1)
            m.anon = kb / 1024;
        else if (sscanf(line, "RssFile: %lf", &kb) == 1)
            m.file = kb / 1024;
    }
    fclose(f);
    return m;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int tg = 32, threads = 0, ctx = 1024, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tg") && i + 1 < argc)
            tg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc)
            ctx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_shape MODEL [--tg N] [--threads N] [--ctx N] [--json]\n");
            return 2;
        }
    }
    if (!path || tg < 2) {
        fprintf(stderr, "usage: bench_shape MODEL [--tg N] [--threads N] [--ctx N] [--json]\n");
        return 2;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    const mem before = read_mem();
    wandler_model_options o = wandler_model_options_default();
    o.use_worker = 0;
    o.n_threads = threads;
    o.context_length = ctx;
    wandler_model *m;
    wandler_error err;
    if (wandler_load_model(path, &o, &m, &err) != WANDLER_OK) {
        fprintf(stderr, "bench_shape: %s: %s (%s)\n", path, err.message, wandler_status_name(err.code));
        return 1;
    }
    const mem loaded = read_mem();
    wandler_stats s;
    wandler_model_info info;
    wandler_model_stats(m, &s);
    wandler_model_info_get(m, &info);

    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time, in a small village by the sea, there lived an old fisherman who";
    r.temperature = 0;
    r.max_tokens = tg;
    r.ignore_eos = 1;
    wandler_result res;
    if (wandler_generate_text(m, &r, &res, &err) != WANDLER_OK) {
        fprintf(stderr, "bench_shape: generate: %s (%s)\n", err.message, wandler_status_name(err.code));
        return 1;
    }
    const mem ran = read_mem();
    const double file_mib = (double)st.st_size / 1048576.0;
    if (json)
        printf("{\"model\": \"%s\", \"arch\": \"%s\", \"params\": %llu, \"file_mib\": %.1f, \"load_ms\": %.1f, "
               "\"rss_before_mib\": %.1f, \"rss_loaded_mib\": %.1f, \"anon_loaded_mib\": %.1f, \"file_loaded_mib\": %.1f, "
               "\"rss_after_decode_mib\": %.1f, \"ctx_mib\": %.1f, \"prompt_tokens\": %d, \"generated\": %d, "
               "\"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, \"threads\": %d, \"isa\": \"%s\"}\n",
               path, info.architecture, (unsigned long long)info.n_params, file_mib, s.load_ms, before.rss, loaded.rss,
               loaded.anon, loaded.file, ran.rss, s.ctx_bytes / 1048576.0, res.usage.prompt_tokens,
               res.usage.completion_tokens, res.timings.prefill_tokens_per_s, res.timings.decode_tokens_per_s,
               info.n_threads, info.isa);
    else
        printf("%s: %s, %.0fM params, file %.1f MiB | load %.1f ms | RSS after load %.1f MiB (heap %.1f, file pages "
               "%.1f; %.1f before) | after decode %.1f MiB | prefill %.1f tok/s | decode %.2f tok/s (%d tokens, %d "
               "threads, %s)\n",
               path, info.architecture, info.n_params / 1e6, file_mib, s.load_ms, loaded.rss, loaded.anon, loaded.file,
               before.rss, ran.rss, res.timings.prefill_tokens_per_s, res.timings.decode_tokens_per_s,
               res.usage.completion_tokens, info.n_threads, info.isa);
    wandler_result_free(&res);
    wandler_model_dispose(m);
    return 0;
}
