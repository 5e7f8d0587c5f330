/* source.h - where a model's weights come from: a local path, an http(s) URL, or a Hugging Face
 * file (hf://OWNER/REPO/FILE[@REVISION]). Remote files are downloaded once into the on-disk
 * cache (cache.h) and every later load, in any thread, worker or process, maps the cached file.
 *
 * A download resumes what an interrupted one left (Range), is verified (SHA-256 from the
 * server's Hugging Face ETag or from the caller) before it is renamed into place, and reports
 * progress through the load's hook, which can cancel it. Concurrent loads of the same source
 * download once: the others wait on the entry's lock and report the download's progress. */
#ifndef WL_SOURCE_SOURCE_H
#define WL_SOURCE_SOURCE_H

#include <stdint.h>

#include "wandler.h"

#define WL_DEFAULT_CONNECT_TIMEOUT_MS 15000
#define WL_DEFAULT_STALL_TIMEOUT_MS 30000

typedef struct wl_source_opts {
    const char *sha256;      /* the file's expected SHA-256 (64 hex digits); NULL = none */
    int connect_timeout_ms;  /* 0 = WL_DEFAULT_CONNECT_TIMEOUT_MS */
    int stall_timeout_ms;    /* 0 = WL_DEFAULT_STALL_TIMEOUT_MS */
} wl_source_opts;

/* Progress of the RESOLVE, DOWNLOAD and VERIFY stages (done of total: bytes for the last two;
 * bytes_per_s for DOWNLOAD). Called about every 100 ms while a transfer runs or while waiting
 * for another's; returns nonzero to cancel. The same shape as the load hook (gen/session.h). */
typedef struct wl_source_hooks {
    int (*progress)(void *ctx, int stage, uint64_t done, uint64_t total, double bytes_per_s);
    void *ctx;
} wl_source_hooks;

/* What the cache did for one load. */
typedef struct wl_cache_info {
    int cache;                 /* WANDLER_CACHE_NONE (a local file), _HIT or _MISS */
    uint64_t bytes_downloaded; /* body bytes transferred by this load */
    uint64_t bytes_reused;     /* bytes taken from the cache: the whole file on a hit, the part
                                  an interrupted download had left on a resumed miss */
} wl_cache_info;

/* Turns a source into a local file path (*path, malloc'd): a local path as is; a remote source
 * downloaded into the cache when it is not there (or changed: the cached copy is revalidated
 * with If-None-Match unless WANDLER_OFFLINE=1 or the revision is a commit id; when the server
 * cannot be reached the cached copy is used). opts and hooks may be NULL; info may be NULL.
 * Errors: INVALID_ARGUMENT (a malformed URL or hf:// source, a malformed opts->sha256),
 * REMOTE_NOT_FOUND, UNAUTHORIZED, NETWORK, NETWORK_TIMEOUT, HTTP, DISK_FULL, IO, INTEGRITY,
 * NOT_GGUF, OFFLINE, CANCELLED, OUT_OF_MEMORY. A cancelled or broken download keeps its
 * partial file for the next load to resume. */
int wl_source_resolve(const char *source, const wl_source_opts *opts, const wl_source_hooks *hooks, char **path,
                      wl_cache_info *info, wandler_error *err);

/* 1 for URLs and hf:// sources, 0 for local paths. */
int wl_source_is_remote(const char *source);

/* Where the cache keeps (or would keep) a remote source's file (*path, malloc'd). Nothing is
 * checked on disk. Errors: INVALID_ARGUMENT, IO (no cache directory), OUT_OF_MEMORY. */
int wl_source_cache_path(const char *source, char **path, wandler_error *err);

/* Deletes a remote source's cache entry and any partial download of it; *removed = files
 * deleted (0: it was not cached). Errors: INVALID_ARGUMENT, IO (also: being downloaded now). */
int wl_source_remove(const char *source, int *removed, wandler_error *err);

/* Checks an expected SHA-256 as options take it (64 hex digits, "sha256:" prefix allowed);
 * writes the lowercase digits to out when not NULL. Returns 1 when valid. */
int wl_source_sha256_valid(const char *s, char out[65]);

#endif
