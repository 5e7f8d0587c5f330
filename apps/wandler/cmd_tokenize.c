/* cmd_tokenize.c - `wandler tokenize MODEL TEXT`: token ids and pieces, like llama-tokenize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/gguf.h"
#include "text/vocab.h"
#include "util/buf.h"

static void tok_usage(FILE *out)
{
    fprintf(out, "usage: wandler tokenize MODEL [--ids] [--no-bos] [--special] (TEXT | --stdin)\n"
                 "\n"
                 "Prints one line per token, \"ID -> 'PIECE'\"; with --ids only the list of ids.\n"
                 "MODEL may be a vocabulary-only GGUF file.\n"
                 "  --ids       print [id, id, ...] only\n"
                 "  --no-bos    do not add the BOS token (added when the model asks for it)\n"
                 "  --special   parse special-token texts (e.g. <s>) into their tokens\n"
                 "  --stdin     read the text from standard input\n");
}

static int read_stdin(wl_buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (wl_buf_append(b, chunk, n) != 0)
            return -1;
    return ferror(stdin) ? -1 : 0;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    int ids_only = 0, add_bos = 1, special = 0, from_stdin = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            tok_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--ids")) {
            ids_only = 1;
        } else if (!strcmp(o, "--no-bos")) {
            add_bos = 0;
        } else if (!strcmp(o, "--special")) {
            special = 1;
        } else if (!strcmp(o, "--stdin")) {
            from_stdin = 1;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "wandler tokenize: unknown option '%s'\n", o);
            return 2;
        } else if (!model) {
            model = o;
        } else if (!text) {
            text = o;
        } else {
            fprintf(stderr, "wandler tokenize: unexpected argument '%s'\n", o);
            return 2;
        }
    }
    if (!model || (!text && !from_stdin) || (text && from_stdin)) {
        tok_usage(stderr);
        return 2;
    }
    wl_buf in = {0};
    if (from_stdin) {
        if (read_stdin(&in) != 0) {
            fprintf(stderr, "wandler tokenize: cannot read standard input\n");
            wl_buf_free(&in);
            return 1;
        }
    } else if (wl_buf_puts(&in, text) != 0) {
        return 1;
    }

    gguf_file *f = NULL;
    wl_vocab *v = NULL;
    wandler_error err;
    int32_t *ids = NULL;
    size_t n = 0;
    int status = 1;
    if (gguf_open(model, &f, &err) || wl_vocab_load(f, &v, &err) ||
        /* BOS only where the model asks for it (llama-tokenize does the same): Qwen2 and GPT-2
         * have a BOS id but add none */
        wl_tokenize(v, in.data ? in.data : "", in.len,
                    add_bos && wl_vocab_add_bos(v) && wl_vocab_bos(v) >= 0, special, &ids, &n,
                    &err)) {
        fprintf(stderr, "wandler tokenize: %s (%s)\n", err.message, wandler_status_name(err.code));
        goto out;
    }
    if (ids_only) {
        putchar('[');
        for (size_t i = 0; i < n; i++)
            printf(i ? ", %d" : "%d", ids[i]);
        puts("]");
    } else {
        for (size_t i = 0; i < n; i++) {
            char piece[256];
            size_t len = wl_token_to_bytes(v, ids[i], 1, piece, sizeof piece);
            if (len > sizeof piece)
                len = sizeof piece;
            printf("%6d -> '%.*s'\n", ids[i], (int)len, piece);
        }
    }
    status = 0;
out:
    free(ids);
    wl_vocab_free(v);
    gguf_close(f);
    wl_buf_free(&in);
    return status;
}
