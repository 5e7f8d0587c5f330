/* cache.h - the on-disk model cache: where it is, the files of an entry, their metadata, the
 * lock that lets one thread or process download an entry while the others wait, listing and
 * removal.
 *
 * An entry is a directory path under the root (see ref.h) holding, for FILE:
 *   FILE               the complete, verified download (what the models map)
 *   FILE.meta          its metadata: source, URL, ETag, SHA-256, size (written before FILE
 *                      appears; an entry is complete when both exist and the sizes agree)
 *   FILE.partial       an unfinished download, resumed by the next load
 *   FILE.partial.meta  what the partial download is of (URL, ETag, expected size)
 *   FILE.lock          flock(2)ed by the one that downloads */
#ifndef WL_SOURCE_CACHE_H
#define WL_SOURCE_CACHE_H

#include <stdint.h>

#include "wandler.h"

/* The cache root: $WANDLER_CACHE_DIR, else $XDG_CACHE_HOME/wandler, else ~/.cache/wandler.
 * *out is malloc'd. Errors: IO (no home directory), OUT_OF_MEMORY. */
int wl_cache_root(char **out, wandler_error *err);

typedef struct wl_cache_paths {
    char *dir, *file, *meta, *partial, *pmeta, *lock;
} wl_cache_paths;

int wl_cache_paths_make(const char *root, const char *rel, wl_cache_paths *p, wandler_error *err);
void wl_cache_paths_free(wl_cache_paths *p);

/* Metadata of an entry or of a partial download. Strings are malloc'd (NULL when absent). */
typedef struct wl_cache_meta {
    char *source;     /* hf://... or the URL */
    char *url;
    char *etag;       /* the identity the server gave (X-Linked-Etag, else ETag), raw */
    char sha256[65];  /* lowercase hex, "" when unknown */
    uint64_t size;    /* bytes of the file (partial: the expected total, 0 = unknown) */
    int64_t time;     /* when it was written (seconds since the epoch) */
} wl_cache_meta;

/* Returns 0, or -1 when the file is absent or malformed. */
int wl_cache_meta_read(const char *path, wl_cache_meta *m);
/* Writes atomically (a temporary file renamed into place). Errors: IO, DISK_FULL. */
int wl_cache_meta_write(const char *path, const wl_cache_meta *m, wandler_error *err);
void wl_cache_meta_free(wl_cache_meta *m);

/* Creates dir and its parents. Errors: IO, DISK_FULL. */
int wl_mkdirs(const char *dir, wandler_error *err);

/* The directory `name` under the cache root (e.g. "repack", repack_cache.h), created when
 * missing. *out is malloc'd. Errors: as wl_cache_root and wl_mkdirs. */
int wl_cache_subdir(const char *name, char **out, wandler_error *err);

/* Tries to take the entry's lock without waiting. Returns 0 with *fd holding it, 1 when another
 * holds it, or an error (IO; also when the lock is a symbolic link or its directory is gone).
 * Release with wl_cache_unlock. */
int wl_cache_trylock(const char *lock_path, int *fd, wandler_error *err);
void wl_cache_unlock(int fd);

/* An entry of the cache as listed by wl_cache_list. */
typedef struct wl_cache_listing {
    const char *source;   /* as recorded */
    const char *path;     /* the file (complete) or the partial file */
    int complete;         /* 1: ready to use; 0: a partial download */
    uint64_t bytes;       /* bytes on disk */
    uint64_t total;       /* the whole file's size (0 = unknown for a partial) */
    const char *sha256;   /* "" when unknown */
    int64_t time;
} wl_cache_listing;

/* Calls fn for every entry and partial download under root, sorted by source. A missing root
 * lists nothing. Errors: IO, OUT_OF_MEMORY. */
int wl_cache_list(const char *root, void (*fn)(const wl_cache_listing *e, void *user), void *user,
                  wandler_error *err);

/* Deletes the files of an entry (complete and partial, and the lock) and the directories
 * left empty up to root. Sets *removed to the number of files deleted. Errors: IO. */
int wl_cache_remove(const char *root, const wl_cache_paths *p, int *removed, wandler_error *err);

/* Maps an errno of a write to DISK_FULL (ENOSPC, EDQUOT, EFBIG) or IO (ELOOP: a symbolic link
 * where the cache opens its own files with O_NOFOLLOW), with a message. */
int wl_write_error(wandler_error *err, int e, const char *what, const char *path);

#endif
