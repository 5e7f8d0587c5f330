/* cli_progress.c - download and load progress on a stream, shared by `wandler pull` and the
 * commands that pull a MODEL given as a URL or hf:// source: a bar redrawn in place (percent,
 * bytes, speed, ETA) when the stream is a terminal, one plain line per 10% otherwise (logs and
 * pipes get no carriage returns). Also the Ctrl-C handling that turns an interrupt into a
 * cancelled download, so that the partial file is kept for the next pull to resume. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "wandler.h"

/* ---- sizes and times for people ---- */

const char *cli_human_bytes(double b, char *buf, size_t cap)
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

double cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- Ctrl-C ---- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

void cli_progress_catch_sigint(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old);
}

int cli_progress_interrupted(void)
{
    return interrupted != 0;
}

/* ---- the display ---- */

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
    p->t0 = cli_mono_ms();
}

static void draw_bar(cli_progress *p, uint64_t done, uint64_t total, double bps)
{
    char d[32], t[32], s[32], e[32], tail[256];
    cli_human_bytes((double)done, d, sizeof d);
    cli_human_bytes(bps, s, sizeof s);
    int width = terminal_width(p->out) - 1;
    if (total) {
        double f = (double)done / (double)total;
        cli_human_bytes((double)total, t, sizeof t);
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
        fprintf(p->out, "%s\033[K", tail); /* erase what a longer line left */
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
    double now = cli_mono_ms();
    int new_stage = stage != p->last_stage;
    p->last_stage = stage;
    if (stage == WANDLER_STAGE_DOWNLOAD) {
        p->downloaded = 1;
        p->bytes = done;
        if (p->tty) {
            /* at most 10 redraws a second: a terminal over ssh should not be the bottleneck */
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
                            cli_human_bytes((double)done, d, sizeof d), cli_human_bytes((double)total, t, sizeof t),
                            cli_human_bytes(bytes_per_s, s, sizeof s));
                else
                    fprintf(p->out, "downloading: %s (%s/s)\n", cli_human_bytes((double)done, d, sizeof d),
                            cli_human_bytes(bytes_per_s, s, sizeof s));
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

wandler_model *cli_load_model(const char *cmd, const char *source, wandler_model_options *opts,
                              cli_progress *progress)
{
    opts->on_log = cli_log;
    cli_progress_init(progress, stderr);
    opts->on_progress = cli_load_progress;
    opts->progress_user = progress;
    wandler_model *m = NULL;
    wandler_error err;
    int rc = wandler_load_model(source, opts, &m, &err);
    cli_progress_end(progress);
    if (rc != WANDLER_OK) {
        fprintf(stderr, "wandler %s: %s: %s (%s)\n", cmd, source, err.message, wandler_status_name(err.code));
        return NULL;
    }
    return m;
}
