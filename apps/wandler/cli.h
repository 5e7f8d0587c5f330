/* cli.h - pieces shared by the wandler subcommands. */
#ifndef WANDLER_CLI_H
#define WANDLER_CLI_H

#include <stdint.h>

/* Each subcommand: argv[0] is the subcommand's name. Returns the process exit status. */
int cmd_run(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_pull(int argc, char **argv); /* cmd_pull.c */
int cmd_ls(int argc, char **argv);   /* cmd_cache.c: ls, rm */
int cmd_rm(int argc, char **argv);

/* The model to use when none is given: $WANDLER_MODEL, else models/stories260K.gguf next to
 * the executable, else in the install's share folder. Returns a static path or NULL. */
const char *cli_default_model(void);

/* Strict number parsing: the whole string must be a number in [lo, hi]. On failure prints
 * "wandler: OPTION: ..." to stderr and returns -1. */
int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out);
int cli_parse_u64(const char *opt, const char *s, uint64_t *out);

/* Sets use_worker/worker from "inline", "thread" or "process"; prints an error and returns -1
 * for anything else. */
struct wandler_model_options;
int cli_parse_mode(const char *opt, const char *s, struct wandler_model_options *o);
/* "inline", "thread", "process" for a WANDLER_MODE_*. */
const char *cli_mode_name(int mode);
/* A log callback printing warnings to stderr. */
void cli_log(int level, const char *message, void *user);

/* Parses one of the generation/model options shared by run, chat and serve at argv[*i]
 * (advancing *i past its value). Returns 1 when it was one, 0 when it is not, -1 after printing
 * an error. */
struct wandler_request;
int cli_gen_option(int argc, char **argv, int *i, struct wandler_request *req, struct wandler_model_options *opts,
                   int *seed_given);
/* Help lines of those options. */
extern const char cli_gen_options_help[];

/* The value following option argv[*i] (advancing *i), or NULL after printing an error. */
const char *cli_value(int argc, char **argv, int *i);

/* Download/load progress on a stream (cli_progress.c): a progress bar with percent, bytes, speed
 * and ETA when the stream is a terminal, a plain line per 10% otherwise. */
#include <stdio.h>
typedef struct cli_progress {
    FILE *out;
    int tty, quiet;
    int last_stage, last_decile, line_open, downloaded;
    double t0, last_print;
    uint64_t bytes;
} cli_progress;
void cli_progress_init(cli_progress *p, FILE *out);
/* Returns 1 after Ctrl-C during `wandler pull` (cancels), else 0. */
int cli_progress_report(cli_progress *p, int stage, uint64_t done, uint64_t total, double bytes_per_s);
void cli_progress_end(cli_progress *p);
/* For wandler_model_options.on_progress, with a cli_progress as the user pointer. */
struct wandler_progress;
int cli_load_progress(const struct wandler_progress *p, void *user);
/* Loads source with the CLI's log callback and with load (and download) progress on stderr
 * through *progress, which the caller owns and keeps until the model is disposed (idle reloads
 * report through it too). On failure prints "wandler CMD: SOURCE: message (CODE)" and returns
 * NULL. */
struct wandler_model_options;
struct wandler_model;
struct wandler_model *cli_load_model(const char *cmd, const char *source, struct wandler_model_options *opts,
                                     cli_progress *progress);
/* "1.2 MB" (powers of 1000) into buf; returns buf. */
const char *cli_human_bytes(double bytes, char *buf, size_t cap);
/* Monotonic clock in milliseconds. */
double cli_mono_ms(void);
/* Makes Ctrl-C set a flag (cli_progress_report then returns 1, cancelling a download) instead
 * of ending the process; *old gets the previous action, to restore with sigaction(). */
struct sigaction;
void cli_progress_catch_sigint(struct sigaction *old);
int cli_progress_interrupted(void);

/* Remote sources on the command line (cmd_pull.c). cli_pull_source downloads a URL or hf://
 * source into the cache (or finds it there), with progress on stderr unless quiet, and sets
 * *path (malloc'd) to the cached file. Returns 0, 1 after printing the error as "wandler CMD:
 * ...", or 130 after Ctrl-C (the partial download is kept). */
int cli_pull_source(const char *cmd, const char *source, const char *sha256, int quiet, char **path);
/* For commands that open the GGUF file themselves (inspect, tokenize, render, bench without
 * --modes): when MODEL, the
 * first positional argument, is a URL or hf:// source, pulls it and replaces argv[i] with the
 * cached file's path. Returns 0 to go on, else the exit status (as cli_pull_source). */
int cli_resolve_model_arg(const char *cmd, int argc, char **argv);

#endif
