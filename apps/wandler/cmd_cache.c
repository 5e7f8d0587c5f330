/* cmd_cache.c - looking at and cleaning the model cache from the command line:
 *   wandler ls [--paths]   the cached models and partial downloads, with their sizes
 *   wandler rm SOURCE...   delete cached models (the file, its metadata, any partial download)
 * Both go through src/source/ (cache.h, source.h), which never follow symbolic links while
 * walking or deleting, so a link in the cache cannot make `rm` delete something outside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "source/cache.h"
#include "source/source.h"
#include "wandler.h"

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
    cli_human_bytes((double)e->bytes, size, sizeof size);
    if (e->complete)
        printf("%10s  %s", size, e->source);
    else if (e->total)
        printf("%10s  %s  (partial: %d%% of %s)", size, e->source, (int)(e->bytes * 100 / e->total),
               cli_human_bytes((double)e->total, total, sizeof total));
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
                   "sizes; --paths shows their files.\nThe summary line (count, total size, cache directory) "
                   "goes to stderr.\n");
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
        fprintf(stderr, "wandler ls: %s (%s)\n", err.message, wandler_status_name(err.code));
        free(root);
        return 1;
    }
    char total[32];
    fprintf(stderr, "%d model%s, %s in %s\n", s.n, s.n == 1 ? "" : "s",
            cli_human_bytes((double)s.bytes, total, sizeof total), root);
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
            fprintf(stderr, "wandler rm: %s: %s (%s)\n", argv[i], err.message, wandler_status_name(err.code));
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
