/* cmd_pull.c - fetching a remote model into the cache from the command line:
 *   wandler pull SOURCE   download a URL or hf:// source (or check that the cached copy is
 *                         current) and print the cached file's path
 * and the same for the MODEL argument of the commands that read a GGUF file themselves instead
 * of through wandler_load_model() (inspect, tokenize, render, bench without --modes): see
 * cli_resolve_model_arg(). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "source/source.h"
#include "wandler.h"

static int pull_hook(void *ctx, int stage, uint64_t done, uint64_t total, double bytes_per_s)
{
    return cli_progress_report(ctx, stage, done, total, bytes_per_s);
}

int cli_pull_source(const char *cmd, const char *source, const char *sha256, int quiet, char **path)
{
    struct sigaction old;
    cli_progress_catch_sigint(&old);
    cli_progress prog;
    cli_progress_init(&prog, stderr);
    prog.quiet = quiet;
    wl_source_opts opts = {.sha256 = sha256};
    wl_source_hooks hooks = {pull_hook, &prog};
    wl_cache_info info;
    wandler_error err;
    double t0 = cli_mono_ms();
    *path = NULL;
    int rc = wl_source_resolve(source, &opts, &hooks, path, &info, &err);
    cli_progress_end(&prog);
    sigaction(SIGINT, &old, NULL);
    if (rc != WANDLER_OK) {
        if (rc == WANDLER_ERR_CANCELLED && cli_progress_interrupted()) {
            fprintf(stderr, "wandler %s: interrupted; the partial download is kept: run the same command to "
                            "resume it\n", cmd);
            return 130; /* as a shell reports a SIGINT */
        }
        fprintf(stderr, "wandler %s: %s: %s (%s)\n", cmd, source, err.message, wandler_status_name(err.code));
        return 1;
    }
    double s = (cli_mono_ms() - t0) / 1e3;
    char a[32], b[32], c[32];
    if (!quiet) {
        if (info.cache == WANDLER_CACHE_HIT)
            fprintf(stderr, "%s is in the cache (%s)\n", source,
                    cli_human_bytes((double)info.bytes_reused, a, sizeof a));
        else
            fprintf(stderr, "%s: downloaded %s in %.1f s (%s/s)%s%s\n", source,
                    cli_human_bytes((double)info.bytes_downloaded, a, sizeof a), s,
                    cli_human_bytes(s > 0 ? (double)info.bytes_downloaded / s : 0, b, sizeof b),
                    info.bytes_reused ? ", resumed after " : "",
                    info.bytes_reused ? cli_human_bytes((double)info.bytes_reused, c, sizeof c) : "");
    }
    return 0;
}

/* Options of inspect, tokenize, render and bench that take a value, so that the value is not
 * taken for MODEL. A new such option must be added here. */
static const char *const VALUE_OPTIONS[] = {"--template", "--messages", "--bos", "--eos", "--pp", "--tg", "-r",
                                            "--reps", "-t", "--threads", "-d", "--depth", "--modes", NULL};

static int takes_value(const char *opt)
{
    for (int i = 0; VALUE_OPTIONS[i]; i++)
        if (!strcmp(opt, VALUE_OPTIONS[i]))
            return 1;
    return 0;
}

int cli_resolve_model_arg(const char *cmd, int argc, char **argv)
{
    /* bench --modes loads through wandler_load_model(), which takes the source as it is (and
     * reports the cache figures); bench without it runs the engine on the file itself */
    for (int i = 1; i < argc && !strcmp(cmd, "bench"); i++)
        if (!strcmp(argv[i], "--modes"))
            return 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) /* nothing of these commands uses it; do not guess past it */
            return 0;
        if (a[0] == '-' && a[1]) {
            i += takes_value(a);
            continue;
        }
        if (!wl_source_is_remote(a))
            return 0; /* MODEL is the first positional argument: a local file */
        char *path;
        int st = cli_pull_source(cmd, a, NULL, 0, &path);
        if (st)
            return st;
        argv[i] = path; /* lives as long as the process; argv keeps it reachable */
        return 0;
    }
    return 0;
}

static void pull_usage(FILE *out)
{
    fprintf(out, "usage: wandler pull SOURCE [--sha256 HEX] [--quiet]\n"
                 "\n"
                 "Downloads SOURCE into the model cache (or checks that the cached copy is current) and\n"
                 "prints the cached file's path. SOURCE is an http(s):// URL or hf://OWNER/REPO/FILE.gguf\n"
                 "with an optional @REVISION. An interrupted download resumes where it stopped.\n"
                 "\n"
                 "  --sha256 HEX   the file's expected SHA-256 (checked before the file is kept)\n"
                 "  --quiet        no progress\n"
                 "\n"
                 "Environment: WANDLER_CACHE_DIR (else $XDG_CACHE_HOME/wandler, else ~/.cache/wandler),\n"
                 "HF_TOKEN (private and gated models), WANDLER_HF_ENDPOINT, WANDLER_OFFLINE=1 (cache only),\n"
                 "https_proxy / no_proxy.\n");
}

int cmd_pull(int argc, char **argv)
{
    const char *source = NULL, *sha = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            pull_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--sha256")) {
            if (!(sha = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "wandler pull: unknown option '%s' (see wandler pull --help)\n", argv[i]);
            return 2;
        } else if (!source) {
            source = argv[i];
        } else {
            fprintf(stderr, "wandler pull: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!source) {
        pull_usage(stderr);
        return 2;
    }
    if (!wl_source_is_remote(source)) {
        fprintf(stderr, "wandler pull: '%s' is not a URL or hf:// source\n", source);
        return 2;
    }
    if (sha && !wl_source_sha256_valid(sha, NULL)) {
        fprintf(stderr, "wandler pull: --sha256: '%s' is not 64 hex digits\n", sha);
        return 2;
    }
    char *path;
    int st = cli_pull_source("pull", source, sha, quiet, &path);
    if (st)
        return st;
    printf("%s\n", path);
    free(path);
    return 0;
}
