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

#endif
