/* cmd_run.c - `wandler run`: stream a continuation of a prompt to stdout. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "wandler.h"

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: wandler run [MODEL] [OPTIONS]\n"
            "\n"
            "Streams a continuation of the prompt to stdout; a summary goes to stderr.\n"
            "MODEL defaults to the bundled stories260K model ($WANDLER_MODEL overrides).\n"
            "\n"
            "  -p, --prompt TEXT        the prompt (default: \"Once upon a time\")\n"
            "      --no-echo            do not print the prompt before the answer\n"
            "%s"
            "\n"
            "Ctrl-C stops the generation (the summary is still printed).\n",
            cli_gen_options_help);
}

static wandler_stream *volatile running;

static void on_sigint(int sig)
{
    (void)sig;
    wandler_stream *st = running;
    if (st)
        wandler_stream_abort(st); /* an atomic store: safe in a signal handler */
}

typedef struct run_args {
    const char *model;
    const char *prompt;
    wandler_request req;
    wandler_model_options opts;
    int echo;
    int seed_given;
} run_args;

static int parse(int argc, char **argv, run_args *a)
{
    a->req = wandler_request_default();
    a->opts = wandler_model_options_default();
    a->prompt = "Once upon a time";
    a->echo = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        int rc;
#define VAL() \
    if (!(v = cli_value(argc, argv, &i))) \
        return 2
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            run_usage(stdout);
            return 1;
        } else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
            VAL();
            a->prompt = v;
        } else if (!strcmp(o, "--no-echo")) {
            a->echo = 0;
        } else if ((rc = cli_gen_option(argc, argv, &i, &a->req, &a->opts, &a->seed_given)) != 0) {
            if (rc < 0)
                return 2;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "wandler run: unknown option '%s' (see wandler run --help)\n", o);
            return 2;
        } else if (!a->model) {
            a->model = o;
        } else {
            fprintf(stderr, "wandler run: unexpected argument '%s'\n", o);
            return 2;
        }
#undef VAL
    }
    if (!a->seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        a->req.seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    }
    return 0;
}

static void summary(const wandler_model_info *info, const wandler_part *fin, uint64_t seed, int mode)
{
    const wandler_timings *t = &fin->timings;
    fprintf(stderr,
            "\n[wandler] %s | %d prompt tokens, %d generated (%s) | load %.1f ms | first token %.1f ms"
            " | prefill %.1f tok/s | decode %.1f tok/s | %d threads, %s | mode %s | seed %llu\n",
            info->path, fin->usage.prompt_tokens, fin->usage.completion_tokens,
            wandler_finish_reason_name(fin->finish_reason), t->load_ms, t->time_to_first_token_ms,
            t->prefill_tokens_per_s, t->decode_tokens_per_s, info->n_threads, info->isa, cli_mode_name(mode),
            (unsigned long long)seed);
}

int cmd_run(int argc, char **argv)
{
    run_args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!a.model && !(a.model = cli_default_model())) {
        fprintf(stderr, "wandler run: no model given and the bundled model was not found "
                        "(set WANDLER_MODEL or pass a GGUF file)\n");
        return 2;
    }

    cli_progress progress; /* a model from a URL or hf:// downloads on first use: show it */
    wandler_model *model = cli_load_model("run", a.model, &a.opts, &progress);
    if (!model)
        return 1;
    wandler_error err;
    wandler_model_info info;
    wandler_model_info_get(model, &info);

    a.req.prompt = a.prompt;
    wandler_stream *st;
    if (wandler_stream_text(model, &a.req, &st, &err) != WANDLER_OK) {
        fprintf(stderr, "wandler run: %s (%s)\n", err.message, wandler_status_name(err.code));
        wandler_model_dispose(model);
        return 1;
    }
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    running = st;
    sigaction(SIGINT, &sa, &old);

    if (a.echo) {
        fputs(a.prompt, stdout);
        fflush(stdout);
    }
    int status = 0;
    wandler_part part;
    while (wandler_stream_next(st, &part, -1) == WANDLER_OK) {
        if (part.type == WANDLER_PART_TEXT_DELTA) {
            fwrite(part.text, 1, part.len, stdout);
            fflush(stdout);
        } else if (part.type == WANDLER_PART_FINISH) {
            fputc('\n', stdout);
            fflush(stdout);
            summary(&info, &part, a.req.seed, wandler_model_mode(model));
            if (part.finish_reason == WANDLER_FINISH_TIMEOUT) { /* the text so far is out; still a failure */
                fprintf(stderr, "wandler run: the request ran into its timeout after %d tokens (%s)\n",
                        part.usage.completion_tokens, wandler_status_name(WANDLER_ERR_TIMEOUT));
                status = 1;
            }
        } else if (part.type == WANDLER_PART_ERROR) {
            fprintf(stderr, "\nwandler run: %s (%s)\n", part.error.message,
                    wandler_status_name(part.error.code));
            status = 1;
        }
    }
    sigaction(SIGINT, &old, NULL);
    running = NULL;
    wandler_stream_free(st);
    wandler_model_dispose(model);
    return status;
}
