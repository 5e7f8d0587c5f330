/* cli_opts.c - the generation and model options that run, chat and serve share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wandler.h"

const char cli_gen_options_help[] =
    "  -n, --max-tokens N       tokens to generate at most (default 256)\n"
    "      --temp T             temperature; 0 = greedy (default 0.8)\n"
    "      --top-k K            (default 40; 0 = off)\n"
    "      --top-p P            (default 0.95; 1 = off)\n"
    "      --min-p P            (default 0.05; 0 = off)\n"
    "      --repeat-penalty R   (default 1 = off)\n"
    "      --repeat-last-n N    tokens the penalties look back (default 64)\n"
    "      --frequency-penalty F, --presence-penalty F   (default 0)\n"
    "      --seed S             random seed (default: from the clock; printed)\n"
    "      --stop TEXT          stop before TEXT (repeatable, up to 16)\n"
    "  -t, --threads N          compute threads (default: one per core)\n"
    "  -c, --ctx N              context window in tokens (default: the model's, <= 4096)\n"
    "      --no-bos             do not start with the BOS token\n"
    "      --worker MODE        inline, thread (default) or process\n"
    "      --timeout-ms N       end the load and each request after N ms (default: none)\n"
    "      --idle-ms N          end the worker after N idle ms (default: never)\n";

int cli_gen_option(int argc, char **argv, int *ip, wandler_request *req, wandler_model_options *opts,
                   int *seed_given)
{
    static const char *stops[16];
    int i = *ip;
    const char *o = argv[i], *v;
    long l;
    double d;
#define VAL()                                                                                                \
    if (!(v = cli_value(argc, argv, &i)))                                                                    \
    return -1
    if (!strcmp(o, "--stop")) {
        VAL();
        if (req->n_stop >= 16) {
            fprintf(stderr, "wandler: --stop: at most 16 stop sequences\n");
            return -1;
        }
        stops[req->n_stop++] = v;
        req->stop = stops;
    } else if (!strcmp(o, "-n") || !strcmp(o, "--max-tokens")) {
        VAL();
        if (cli_parse_int(o, v, 1, 1 << 20, &l))
            return -1;
        req->max_tokens = (int)l;
    } else if (!strcmp(o, "--temp")) {
        VAL();
        if (cli_parse_float(o, v, 0, 100, &d))
            return -1;
        req->temperature = (float)d;
    } else if (!strcmp(o, "--top-k")) {
        VAL();
        if (cli_parse_int(o, v, 0, 1 << 24, &l))
            return -1;
        req->top_k = (int)l;
    } else if (!strcmp(o, "--top-p")) {
        VAL();
        if (cli_parse_float(o, v, 1e-9, 1, &d))
            return -1;
        req->top_p = (float)d;
    } else if (!strcmp(o, "--min-p")) {
        VAL();
        if (cli_parse_float(o, v, 0, 1, &d))
            return -1;
        req->min_p = (float)d;
    } else if (!strcmp(o, "--repeat-penalty")) {
        VAL();
        if (cli_parse_float(o, v, 1e-6, 100, &d))
            return -1;
        req->repetition_penalty = (float)d;
    } else if (!strcmp(o, "--repeat-last-n")) {
        VAL();
        if (cli_parse_int(o, v, -1, 1 << 20, &l))
            return -1;
        req->repetition_last_n = (int)l;
    } else if (!strcmp(o, "--frequency-penalty")) {
        VAL();
        if (cli_parse_float(o, v, -2, 2, &d))
            return -1;
        req->frequency_penalty = (float)d;
    } else if (!strcmp(o, "--presence-penalty")) {
        VAL();
        if (cli_parse_float(o, v, -2, 2, &d))
            return -1;
        req->presence_penalty = (float)d;
    } else if (!strcmp(o, "--seed")) {
        VAL();
        if (cli_parse_u64(o, v, &req->seed))
            return -1;
        *seed_given = 1;
    } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
        VAL();
        if (cli_parse_int(o, v, 1, 256, &l))
            return -1;
        opts->n_threads = (int)l;
    } else if (!strcmp(o, "-c") || !strcmp(o, "--ctx")) {
        VAL();
        if (cli_parse_int(o, v, 1, 1 << 20, &l))
            return -1;
        opts->context_length = (int)l;
    } else if (!strcmp(o, "--no-bos")) {
        req->add_bos = 0;
    } else if (!strcmp(o, "--worker")) {
        VAL();
        if (cli_parse_mode(o, v, opts))
            return -1;
    } else if (!strcmp(o, "--timeout-ms")) {
        VAL();
        if (cli_parse_int(o, v, 0, 0x7fffffff, &l))
            return -1;
        opts->timeout_ms = (int)l;
    } else if (!strcmp(o, "--idle-ms")) {
        VAL();
        if (cli_parse_int(o, v, 0, 0x7fffffff, &l))
            return -1;
        opts->terminate_on_idle_ms = (int)l;
    } else {
        return 0;
    }
#undef VAL
    *ip = i;
    return 1;
}
