/* cmd_pull.c - the model cache from the command line:
 *   wandler pull SOURCE   download a URL or hf:// source into the cache (progress bar on a terminal)
 *   wandler ls            the cached models and partial downloads, with their sizes
 *   wandler rm SOURCE...  delete cached models
 * and the progress display that loads of remote sources share. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "source/cache.h"
#include "source/source.h"
#include "wandler.h"

/* ---- sizes and times for people ---- */

static const char *human_bytes(double b, char *buf, size_t cap)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) {
        b /= 1000;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", b, units[u]);
    return buf;
}

static const char *human_eta(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 99 * 3600)
        snprintf(buf, cap, "--:--");
    else if (s >= 3600)
        snprintf(buf, cap, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, cap, "%d:%02d", (int)s / 60, (int)s % 60);
    return buf;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the progress display ---- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int terminal_width(FILE *out)
{
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return 80;
}

void cli_progress_init(cli_progress *p, FILE *out)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out));
    p->last_decile = -1;
    p->t0 = mono_ms();
}

static void draw_bar(cli_progress *p, uint64_t done, uint64_t total, double bps)
{
    char d[32], t[32], s[32], e[32], tail[256];
    human_bytes((double)done, d, sizeof d);
    human_bytes(bps, s, sizeof s);
    int width = terminal_width(p->out) - 1;
    if (total) {
        double f = (double)done / (double)total;
        human_bytes((double)total, t, sizeof t);
        human_eta(bps > 0 ? (double)(total - done) / bps : -1, e, sizeof e);
        snprintf(tail, sizeof tail, " %s / %s  %s/s  ETA %s", d, t, s, e);
        char head[32];
        snprintf(head, sizeof head, "downloading %3d%% ", (int)(f * 100));
        int bar = width - (int)strlen(head) - (int)strlen(tail) - 2;
        if (bar > 50)
            bar = 50;
        fprintf(p->out, "\r%s", head);
        if (bar >= 5) {
            int fill = (int)(f * bar);
            fputc('[', p->out);
            for (int i = 0; i < bar; i++)
                fputc(i < fill ? '=' : i == fill ? '>' : ' ', p->out);
            fputc(']', p->out);
        }
        fprintf(p->out, "%s\033[K", tail);
    } else {
        fprintf(p->out, "\rdownloading %s  %s/s\033[K", d, s);
    }
    p->line_open = 1;
}

int cli_progress_report(cli_progress *p, int stage, uint64_t done, uint64_t total, double bytes_per_s)
{
    if (interrupted)
        return 1;
    if (p->quiet)
        return 0;
    double now = mono_ms();
    int new_stage = stage != p->last_stage;
    p->last_stage = stage;
    if (stage == WANDLER_STAGE_DOWNLOAD) {
        p->downloaded = 1;
        p->bytes = done;
        if (p->tty) {
            if (new_stage || now - p->last_print >= 100 || (total && done == total)) {
                p->last_print = now;
                draw_bar(p, done, total, bytes_per_s);
            }
        } else {
            int decile = total ? (int)(done * 10 / total) : (int)(now - p->t0) / 5000;
            if (new_stage || decile != p->last_decile) {
                p->last_decile = decile;
                char d[32], t[32], s[32];
                if (total)
                    fprintf(p->out, "downloading: %3d%% (%s of %s, %s/s)\n", (int)(done * 100 / total),
                            human_bytes((double)done, d, sizeof d), human_bytes((double)total, t, sizeof t),
                            human_bytes(bytes_per_s, s, sizeof s));
                else
                    fprintf(p->out, "downloading: %s (%s/s)\n", human_bytes((double)done, d, sizeof d),
                            human_bytes(bytes_per_s, s, sizeof s));
            }
        }
    } else if (stage == WANDLER_STAGE_VERIFY && new_stage) {
        if (p->line_open)
            fputc('\n', p->out);
        p->line_open = 0;
        fprintf(p->out, "verifying SHA-256...\n");
    } else if (stage >= WANDLER_STAGE_OPEN && stage <= WANDLER_STAGE_READY && p->line_open) {
        fputc('\n', p->out);
        p->line_open = 0;
    }
    fflush(p->out);
    return 0;
}

void cli_progress_end(cli_progress *p)
{
    if (p->line_open)
        fputc('\n', p->out);
    p->line_open = 0;
    fflush(p->out);
}

int cli_load_progress(const wandler_progress *w, void *user)
{
    return cli_progress_report(user, w->stage, w->done, w->total, w->bytes_per_s);
}

static int pull_hook(void *ctx, int stage, uint64_t done, uint64_t total, double bytes_per_s)
{
    return cli_progress_report(ctx, stage, done, total, bytes_per_s);
}

/* ---- pull ---- */

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
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);

    cli_progress prog;
    cli_progress_init(&prog, stderr);
    prog.quiet = quiet;
    wl_source_opts opts = {.sha256 = sha};
    wl_source_hooks hooks = {pull_hook, &prog};
    char *path = NULL;
    wl_cache_info info;
    wandler_error err;
    double t0 = mono_ms();
    int rc = wl_source_resolve(source, &opts, &hooks, &path, &info, &err);
    cli_progress_end(&prog);
    sigaction(SIGINT, &old, NULL);
    if (rc != WANDLER_OK) {
        if (rc == WANDLER_ERR_CANCELLED && interrupted) {
            fprintf(stderr, "wandler pull: interrupted; the partial download is kept: run the same command to "
                            "resume it\n");
            return 130;
        }
        fprintf(stderr, "wandler pull: %s: %s (%s)\n", source, err.message, wandler_status_name(err.code));
        return 1;
    }
    double s = (mono_ms() - t0) / 1e3;
    char a[32], b[32], c[32];
    if (!quiet) {
        if (info.cache == WANDLER_CACHE_HIT)
            fprintf(stderr, "%s is in the cache (%s)\n", source, human_bytes((double)info.bytes_reused, a, sizeof a));
        else
            fprintf(stderr, "%s: downloaded %s in %.1f s (%s/s)%s%s\n", source,
                    human_bytes((double)info.bytes_downloaded, a, sizeof a), s,
                    human_bytes(s > 0 ? (double)info.bytes_downloaded / s : 0, b, sizeof b),
                    info.bytes_reused ? ", resumed after " : "",
                    info.bytes_reused ? human_bytes((double)info.bytes_reused, c, sizeof c) : "");
    }
    printf("%s\n", path);
    free(path);
    return 0;
}

/* ---- ls ---- */

typedef struct ls_state {
    int paths;
    int n;
    uint64_t bytes;
} ls_state;

static void ls_entry(const wl_cache_listing *e, void *user)
{
    ls_state *s = user;
    char size[32], total[32];
    human_bytes((double)e->bytes, size, sizeof size);
    if (e->complete)
        printf("%10s  %s", size, e->source);
    else if (e->total)
        printf("%10s  %s  (partial: %d%% of %s)", size, e->source, (int)(e->bytes * 100 / e->total),
               human_bytes((double)e->total, total, sizeof total));
    else
        printf("%10s  %s  (partial)", size, e->source);
    if (s->paths)
        printf("\n            %s", e->path);
    putchar('\n');
    s->n += e->complete;
    s->bytes += e->bytes;
}

int cmd_ls(int argc, char **argv)
{
    ls_state s = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: wandler ls [--paths]\n\nLists the cached models (and partial downloads) with their "
                   "sizes; --paths shows their files.\n");
            return 0;
        } else if (!strcmp(argv[i], "--paths")) {
            s.paths = 1;
        } else {
            fprintf(stderr, "wandler ls: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    char *root;
    wandler_error err;
    if (wl_cache_root(&root, &err) != WANDLER_OK) {
        fprintf(stderr, "wandler ls: %s\n", err.message);
        return 1;
    }
    int rc = wl_cache_list(root, ls_entry, &s, &err);
    if (rc != WANDLER_OK) {
        fprintf(stderr, "wandler ls: %s\n", err.message);
        free(root);
        return 1;
    }
    char total[32];
    fprintf(stderr, "%d model%s, %s in %s\n", s.n, s.n == 1 ? "" : "s", human_bytes((double)s.bytes, total, sizeof total),
            root);
    free(root);
    return 0;
}

/* ---- rm ---- */

int cmd_rm(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: wandler rm SOURCE...\n\nDeletes cached models (the file, its "
                                            "metadata and any partial download). SOURCE as given to pull.\n");
        return argc < 2 ? 2 : 0;
    }
    int status = 0;
    for (int i = 1; i < argc; i++) {
        int removed;
        wandler_error err;
        if (wl_source_remove(argv[i], &removed, &err) != WANDLER_OK) {
            fprintf(stderr, "wandler rm: %s: %s\n", argv[i], err.message);
            status = 1;
        } else if (!removed) {
            fprintf(stderr, "wandler rm: %s is not in the cache\n", argv[i]);
            status = 1;
        } else {
            fprintf(stderr, "removed %s\n", argv[i]);
        }
    }
    return status;
}
