/* cmd_cache.c - looking at and cleaning the model cache from the command line:
 *   wandler ls [--paths]   the cached models and partial downloads, with their sizes (and the
 *                          size of their repacked weights, repack_cache.h), and the repacked
 *                          weights of model files outside the cache
 *   wandler rm SOURCE...   delete cached models (the file, its metadata, any partial download,
 *                          its repacked weights)
 * Both go through src/source/ (cache.h, source.h), which never follow symbolic links while
 * walking or deleting, so a link in the cache cannot make `rm` delete something outside it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "engine/repack_cache.h"
#include "source/cache.h"
#include "source/source.h"
#include "wandler.h"

/* The cache's folder of repacked weights (CACHE/repack, repack_cache.h), not created; NULL when
 * the cache root cannot be told or memory runs out. */
static char *repack_folder(void)
{
    char *root, *dir = NULL;
    wandler_error ignore;
    if (wl_cache_root(&root, &ignore) != WANDLER_OK)
        return NULL;
    if (asprintf(&dir, "%s/%s", root, WL_REPACK_SUBDIR) < 0)
        dir = NULL;
    free(root);
    return dir;
}

/* ---- ls ---- */

typedef struct ls_state {
    int paths;
    int n;
    uint64_t bytes;
    char *repack_dir; /* CACHE/repack */
    uint64_t listed_repacks; /* bytes of the repacked weights shown beside a cached model */
    int n_listed_repacks;
} ls_state;

/* The bytes of the repacked weights of the model file at path, 0 when it has none. */
static uint64_t repacked_bytes(const char *repack_dir, const char *path)
{
    char *r = wl_repack_file_path(repack_dir, path);
    struct stat st;
    const uint64_t n = r && lstat(r, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    free(r);
    return n;
}

/* The repacked weights' files in repack_dir (regular files named *WL_REPACK_SUFFIX; links are
 * not followed): how many, and their bytes. A missing folder holds none. */
static void all_repacks(const char *repack_dir, int *count, uint64_t *bytes)
{
    *count = 0;
    *bytes = 0;
    DIR *d = repack_dir ? opendir(repack_dir) : NULL;
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        const size_t len = strlen(e->d_name), suffix = strlen(WL_REPACK_SUFFIX);
        struct stat st;
        if (len <= suffix || strcmp(e->d_name + len - suffix, WL_REPACK_SUFFIX) != 0 ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        (*count)++;
        *bytes += (uint64_t)st.st_size;
    }
    closedir(d);
}

static void ls_entry(const wl_cache_listing *e, void *user)
{
    ls_state *s = user;
    char size[32], total[32];
    cli_human_bytes((double)e->bytes, size, sizeof size);
    uint64_t repacked = 0;
    if (e->complete && (repacked = repacked_bytes(s->repack_dir, e->path)) > 0)
        printf("%10s  %s  (+ %s of repacked weights)", size, e->source,
               cli_human_bytes((double)repacked, total, sizeof total));
    else if (e->complete)
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
    s->bytes += e->bytes + repacked;
    s->listed_repacks += repacked;
    s->n_listed_repacks += repacked > 0;
}

int cmd_ls(int argc, char **argv)
{
    ls_state s = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: wandler ls [--paths]\n\nLists the cached models (and partial downloads) with their "
                   "sizes, and the\nrepacked weights of model files loaded from other paths (CACHE/repack); "
                   "--paths shows\ntheir files. The summary line (count, total size, cache directory) "
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
    if (!(s.repack_dir = repack_folder())) {
        fprintf(stderr, "wandler ls: out of memory\n");
        free(root);
        return 1;
    }
    int rc = wl_cache_list(root, ls_entry, &s, &err);
    if (rc != WANDLER_OK) {
        fprintf(stderr, "wandler ls: %s (%s)\n", err.message, wandler_status_name(err.code));
        free(s.repack_dir);
        free(root);
        return 1;
    }
    /* the rest of CACHE/repack: the repacked weights of model files loaded from a path of their
     * own (not a download), or of cached models deleted by other means */
    int n_repacks;
    uint64_t repack_bytes;
    all_repacks(s.repack_dir, &n_repacks, &repack_bytes);
    if (n_repacks > s.n_listed_repacks && repack_bytes > s.listed_repacks) {
        char size[32];
        const int n_other = n_repacks - s.n_listed_repacks;
        printf("%10s  repacked weights of %d model file%s outside the cache",
               cli_human_bytes((double)(repack_bytes - s.listed_repacks), size, sizeof size), n_other,
               n_other == 1 ? "" : "s");
        if (s.paths)
            printf("\n            %s", s.repack_dir);
        putchar('\n');
        s.bytes += repack_bytes - s.listed_repacks;
    }
    free(s.repack_dir);
    char total[32];
    fprintf(stderr, "%d model%s, %s in %s\n", s.n, s.n == 1 ? "" : "s",
            cli_human_bytes((double)s.bytes, total, sizeof total), root);
    free(root);
    return 0;
}

/* ---- rm ---- */

/* The repacked weights' file of the cached model of source (while that model's file is still
 * there: its name comes from the file's real path), or NULL when there is none to know of. */
static char *repack_file_of(const char *repack_dir, const char *source)
{
    char *file = NULL, *r = NULL;
    wandler_error ignore;
    if (repack_dir && wl_source_cache_path(source, &file, &ignore) == WANDLER_OK)
        r = wl_repack_file_path(repack_dir, file);
    free(file);
    return r;
}

int cmd_rm(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: wandler rm SOURCE...\n\nDeletes cached models (the file, its metadata, any partial "
                "download and its repacked weights). SOURCE as given to pull.\n");
        return argc < 2 ? 2 : 0;
    }
    char *rdir = repack_folder();
    wandler_error err;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        int removed;
        char *repacked = repack_file_of(rdir, argv[i]);
        if (wl_source_remove(argv[i], &removed, &err) != WANDLER_OK) {
            fprintf(stderr, "wandler rm: %s: %s (%s)\n", argv[i], err.message, wandler_status_name(err.code));
            status = 1;
        } else if (!removed) {
            fprintf(stderr, "wandler rm: %s is not in the cache\n", argv[i]);
            status = 1;
        } else if (repacked && unlink(repacked) == 0) {
            fprintf(stderr, "removed %s and its repacked weights\n", argv[i]);
        } else if (repacked && errno != ENOENT) {
            fprintf(stderr, "wandler rm: removed %s, but not its repacked weights %s: %s\n", argv[i], repacked,
                    strerror(errno));
            status = 1;
        } else {
            fprintf(stderr, "removed %s\n", argv[i]);
        }
        free(repacked);
    }
    free(rdir);
    return status;
}
