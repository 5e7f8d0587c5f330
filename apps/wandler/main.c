/* main.c - the wandler command-line tool: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wandler.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: wandler COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  run [MODEL] [-p PROMPT] [-n N] [OPTIONS]   stream a continuation of PROMPT\n"
            "  chat [MODEL] [OPTIONS]                     talk with the model in the terminal\n"
            "  render MODEL --messages FILE.json          print the prompt a chat template makes\n"
            "  inspect MODEL                              print a GGUF file's metadata and tensors\n"
            "  tokenize MODEL [--ids] [--no-bos] TEXT     print the tokens of TEXT (--stdin: read it)\n"
            "  bench [MODEL] [--pp N] [--tg N] [--json]   prefill and decode speed in each mode\n"
            "  quantize IN OUT TYPE                       rewrite a model's weights in TYPE (Q8_0, Q4_K_M, ...)\n"
            "  mkmodel --arch A --shape NAME OUT          write a random-weight model of a real shape\n"
            "  pull SOURCE                                download a URL or hf:// model into the cache\n"
            "  ls [--paths]                               list the cached models\n"
            "  rm SOURCE...                               delete cached models\n"
            "  version                                    print the version\n"
            "\n"
            "'wandler COMMAND --help' describes a command. MODEL is a GGUF file, an http(s) URL or\n"
            "hf://OWNER/REPO/FILE.gguf[@REVISION] (downloaded once into the cache); run uses the\n"
            "bundled stories260K model when none is given.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "inspect") || !strcmp(cmd, "tokenize") || !strcmp(cmd, "render") || !strcmp(cmd, "bench")) {
        /* they read the GGUF file themselves: a URL or hf:// MODEL is pulled into the cache first */
        int st = cli_resolve_model_arg(cmd, argc - 1, argv + 1);
        if (st)
            return st;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0)
        return cmd_tokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "quantize") == 0)
        return cmd_quantize(argc - 1, argv + 1);
    if (strcmp(cmd, "mkmodel") == 0)
        return cmd_mkmodel(argc - 1, argv + 1);
    if (strcmp(cmd, "render") == 0)
        return cmd_render(argc - 1, argv + 1);
    if (strcmp(cmd, "chat") == 0)
        return cmd_chat(argc - 1, argv + 1);
    if (strcmp(cmd, "pull") == 0)
        return cmd_pull(argc - 1, argv + 1);
    if (strcmp(cmd, "ls") == 0)
        return cmd_ls(argc - 1, argv + 1);
    if (strcmp(cmd, "rm") == 0)
        return cmd_rm(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("wandler %s\n", wandler_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "wandler: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
