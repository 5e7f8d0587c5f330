/* cli_util.c - option parsing and default-model lookup for the subcommands. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "wandler.h"

#ifndef WANDLER_INSTALL_DATADIR
#define WANDLER_INSTALL_DATADIR "/usr/local/share/wandler"
#endif

#define BUNDLED "stories260K.gguf"

static int readable(const char *p)
{
    return access(p, R_OK) == 0;
}

const char *cli_default_model(void)
{
    static char path[PATH_MAX + 64];
    const char *env = getenv("WANDLER_MODEL");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
        return path;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            /* build tree: models/ next to the binary; installed: ../share/wandler/models */
            snprintf(path, sizeof path, "%s/models/" BUNDLED, exe);
            if (readable(path))
                return path;
            snprintf(path, sizeof path, "%s/../share/wandler/models/" BUNDLED, exe);
            if (readable(path))
                return path;
        }
    }
    snprintf(path, sizeof path, "%s/models/" BUNDLED, WANDLER_INSTALL_DATADIR);
    if (readable(path))
        return path;
    return NULL;
}

int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "wandler: %s: '%s' is not an integer in [%ld, %ld]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "wandler: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "wandler: %s: '%s' is not a non-negative integer\n", opt, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "wandler: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_mode(const char *opt, const char *s, wandler_model_options *o)
{
    if (!strcmp(s, "inline")) {
        o->use_worker = 0;
    } else if (!strcmp(s, "thread")) {
        o->use_worker = 1;
        o->worker = WANDLER_WORKER_THREAD;
    } else if (!strcmp(s, "process")) {
        o->use_worker = 1;
        o->worker = WANDLER_WORKER_PROCESS;
    } else {
        fprintf(stderr, "wandler: %s: '%s' is not inline, thread or process\n", opt, s);
        return -1;
    }
    return 0;
}

const char *cli_mode_name(int mode)
{
    switch (mode) {
    case WANDLER_MODE_INLINE:
        return "inline";
    case WANDLER_MODE_THREAD:
        return "thread";
    case WANDLER_MODE_PROCESS:
        return "process";
    }
    return "unknown";
}

void cli_log(int level, const char *message, void *user)
{
    (void)user;
    fprintf(stderr, "wandler: %s: %s\n", level == WANDLER_LOG_WARN ? "warning" : "info", message);
}
