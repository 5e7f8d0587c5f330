/* source.c - resolving a source to a local file through the cache (see source.h). */
#include "source/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "source/cache.h"
#include "source/http.h"
#include "source/internal.h"
#include "source/ref.h"
#include "source/sha256.h"
#include "util/error.h"

#define WAIT_TICK_MS 100
#define MAX_ATTEMPTS 3 /* a resume the server cannot continue restarts from zero */

typedef struct resolver {
    const wl_source_ref *ref;
    const wl_cache_paths *p;
    const wl_source_opts *o;
    const wl_source_hooks *h;
    char expected[65];        /* the caller's SHA-256, "" = none */
    wl_cache_info *info;
    int connect_ms, stall_ms;
    int fd;                   /* the partial file while downloading */
    int body_started;         /* the file's body is arriving (DOWNLOAD, not RESOLVE, is reported) */
    int pmeta_failed;
    wandler_error pmeta_err;
} resolver;

int wl_source_is_remote(const char *source)
{
    return wl_source_kind_of(source) != WL_SRC_LOCAL;
}

int wl_source_sha256_valid(const char *s, char out[65])
{
    char tmp[65];
    if (!s || !strncmp(s, "W/", 2) || s[0] == '"')
        return 0;
    return wl_sha256_parse(s, out ? out : tmp);
}

static int report(const resolver *R, int stage, uint64_t done, uint64_t total, double bps)
{
    return R->h && R->h->progress && R->h->progress(R->h->ctx, stage, done, total, bps);
}

static int cancelled(wandler_error *err)
{
    return wl_error(err, WANDLER_ERR_CANCELLED, "the load was cancelled");
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Reads the first bytes of the file: 1 when they are "GGUF". `got` gets them, printable. */
static int has_gguf_magic(const char *path, char got[16])
{
    unsigned char b[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, b, 4, 0) : -1;
    if (fd >= 0)
        close(fd);
    int k = 0;
    for (ssize_t i = 0; i < n && i < 4; i++)
        got[k++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '.';
    got[k] = '\0';
    return n == 4 && !memcmp(b, "GGUF", 4);
}

static int not_gguf(const resolver *R, const char *got, wandler_error *err)
{
    return wl_error(err, WANDLER_ERR_NOT_GGUF,
                    "%.150s is not a GGUF file (it starts with \"%s\"): check the URL or file name", R->ref->canonical,
                    got);
}

/* The complete entry, when there is one: its metadata read and its size right. */
static int entry_complete(const wl_cache_paths *p, wl_cache_meta *meta)
{
    if (wl_cache_meta_read(p->meta, meta) != 0)
        return 0;
    struct stat st;
    if (stat(p->file, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == meta->size)
        return 1;
    wl_cache_meta_free(meta);
    return 0;
}

static int verify_tick(void *ctx, uint64_t done, uint64_t total)
{
    return report(ctx, WANDLER_STAGE_VERIFY, done, total, 0);
}

/* Serves the complete entry: a cache hit. */
static int use_cached(resolver *R, wl_cache_meta *meta, char **path, wandler_error *err)
{
    char got[16];
    if (!has_gguf_magic(R->p->file, got)) {
        /* useless to anyone: drop it so that the next load downloads it again */
        unlink(R->p->meta);
        unlink(R->p->file);
        return not_gguf(R, got, err);
    }
    if (R->expected[0]) {
        if (!meta->sha256[0]) { /* an entry from a server that named no SHA-256: hash it now */
            int rc = wl_sha256_file(R->p->file, verify_tick, (void *)R, meta->sha256, err);
            if (rc)
                return rc;
            wandler_error ignore;
            wl_cache_meta_write(R->p->meta, meta, &ignore);
        }
        if (strcmp(meta->sha256, R->expected))
            return wl_error(err, WANDLER_ERR_INTEGRITY,
                            "the cached %.100s has SHA-256 %.12s..., not the expected %.12s... (options.sha256)",
                            R->ref->canonical, meta->sha256, R->expected);
    }
    if (report(R, WANDLER_STAGE_RESOLVE, 1, 1, 0))
        return cancelled(err);
    if (!(*path = strdup(R->p->file)))
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    R->info->cache = WANDLER_CACHE_HIT;
    R->info->bytes_reused = meta->size;
    R->info->bytes_downloaded = 0;
    return WANDLER_OK;
}

/* Waits while another thread or process holds the entry's lock (it is downloading), reporting
 * the partial file's growth. Returns with *fd holding the lock; *waited = 1 when it had to wait. */
static int take_lock(resolver *R, int *fd, int *waited, wandler_error *err)
{
    *waited = 0;
    wl_rate rate = {0};
    double last_meta = 0;
    uint64_t total = 0;
    int remade = 0;
    for (;;) {
        int r = wl_cache_trylock(R->p->lock, fd, err);
        if (r == 0)
            return WANDLER_OK;
        if (r != 1) {
            /* the entry's directory went away under us (wandler rm, or a failed download that
             * cleaned up after itself while we waited): make it again and retry */
            if (access(R->p->dir, F_OK) != 0 && remade++ < 10 && wl_mkdirs(R->p->dir, err) == WANDLER_OK) {
                wl_error_clear(err);
                continue;
            }
            return r;
        }
        *waited = 1;
        double now = wl_src_now_ms();
        if (now - last_meta >= 500) {
            last_meta = now;
            wl_cache_meta pm;
            if (wl_cache_meta_read(R->p->pmeta, &pm) == 0) {
                total = pm.size;
                wl_cache_meta_free(&pm);
            }
        }
        uint64_t done = file_size(R->p->partial);
        wl_rate_add(&rate, now, done);
        if (report(R, WANDLER_STAGE_DOWNLOAD, done, total > done ? total : 0, wl_rate_get(&rate)))
            return cancelled(err);
        struct timespec ts = {0, WAIT_TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int download_tick(void *ctx, uint64_t done, uint64_t total, double bps)
{
    const resolver *R = ctx;
    /* until the file's body begins (a revalidation may end with 304) this is still RESOLVE */
    if (!R->body_started)
        return report(R, WANDLER_STAGE_RESOLVE, 0, 1, 0);
    return report(R, WANDLER_STAGE_DOWNLOAD, done, total, bps);
}

/* The final response begins: record what the partial file is of, so that a later load can
 * resume it and waiting loads can show its size. */
static int download_start(void *ctx, const wl_http_result *r)
{
    resolver *R = ctx;
    wl_cache_meta pm = {.source = R->ref->canonical, .url = R->ref->url, .etag = (char *)r->etag, .size = r->total};
    memcpy(pm.sha256, r->sha256, sizeof pm.sha256);
    if (wl_cache_meta_write(R->p->pmeta, &pm, &R->pmeta_err) != WANDLER_OK) {
        R->pmeta_failed = 1;
        return 1;
    }
    R->body_started = 1;
    return report(R, WANDLER_STAGE_DOWNLOAD, r->start, r->total, 0);
}

static void drop_partial(const wl_cache_paths *p)
{
    unlink(p->partial);
    unlink(p->pmeta);
}

/* Downloads (or revalidates, when `meta` is the complete entry) with the lock held. */
static int download(resolver *R, wl_cache_meta *meta, int complete, char **path, wandler_error *err)
{
    const wl_cache_paths *p = R->p;
    const char *token = R->ref->send_token ? getenv("HF_TOKEN") : NULL;
    if (token && !*token)
        token = NULL;
    wl_http_result res;
    int rc = WANDLER_OK;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        wl_http_get g = {
            .url = R->ref->url,
            .token = token,
            .hf = R->ref->kind == WL_SRC_HF || R->ref->send_token,
            .fd_path = p->partial,
            .connect_timeout_ms = R->connect_ms,
            .stall_timeout_ms = R->stall_ms,
            .tick = download_tick,
            .on_start = download_start,
            .ctx = R,
        };
        wl_cache_meta pm = {0};
        if (complete) {
            g.if_none_match = meta->etag; /* revalidate; a changed file comes whole */
        } else if (wl_cache_meta_read(p->pmeta, &pm) == 0 && pm.url && !strcmp(pm.url, R->ref->url)) {
            g.offset = file_size(p->partial); /* resume */
            g.resume_etag = pm.etag;
        }
        /* O_NOFOLLOW: the download truncates and writes this file; through a link planted in the
         * cache that would overwrite whatever the link names */
        R->fd = open(p->partial, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (R->fd < 0) {
            rc = wl_write_error(err, errno, "cannot create", p->partial);
            wl_cache_meta_free(&pm);
            return rc;
        }
        g.fd = R->fd;
        R->pmeta_failed = 0;
        R->body_started = 0;
        rc = wl_http_fetch(&g, &res, err);
        wl_cache_meta_free(&pm);
        if (rc == WANDLER_OK && !res.not_modified && fdatasync(R->fd) != 0 && errno != EINVAL)
            rc = wl_write_error(err, errno, "cannot write", p->partial);
        /* the download wrote the file in pieces of whatever size the network gave, which the
         * kernel keeps in small folios, mapped in 4 KiB pages for as long as they stay cached.
         * Dropped now (they are on disk), the first load reads the file back through its
         * mapping in 2 MiB folios and pages (gguf_map_file), and decode, which reads every
         * weight once per token, runs ~8% faster for as long as they stay cached. */
        if (rc == WANDLER_OK && !res.not_modified)
            (void)posix_fadvise(R->fd, 0, 0, POSIX_FADV_DONTNEED);
        close(R->fd);
        R->fd = -1;
        if (R->pmeta_failed) {
            if (err)
                *err = R->pmeta_err;
            return R->pmeta_err.code;
        }
        R->info->bytes_downloaded += res.received;
        if (rc == WL_HTTP_RESTART) {
            drop_partial(p);
            continue;
        }
        break;
    }
    if (rc == WL_HTTP_RESTART)
        return wl_error(err, WANDLER_ERR_HTTP, "%.150s: the server does not answer range requests consistently",
                        R->ref->url);
    if (complete && (rc == WANDLER_OK ? res.not_modified : rc != WANDLER_ERR_CANCELLED)) {
        /* unchanged, or the server cannot be asked: the cached copy serves */
        if (!res.received && file_size(p->partial) == 0)
            drop_partial(p);
        wl_error_clear(err);
        uint64_t downloaded = R->info->bytes_downloaded;
        rc = use_cached(R, meta, path, err);
        R->info->bytes_downloaded = downloaded;
        return rc;
    }
    if (rc != WANDLER_OK) {
        /* the partial file stays for the next load to resume; when nothing arrived (a 404, a
         * typo, a refused connection) it goes, so that `wandler ls` does not list failed
         * attempts. The lock file and directories stay: deleting a lock file others may be
         * opening at this moment would let two of them hold "the" lock at once. */
        if (file_size(p->partial) == 0)
            drop_partial(p);
        return rc;
    }
    if (res.not_modified) /* cannot happen without If-None-Match; be safe */
        return wl_error(err, WANDLER_ERR_HTTP, "%.150s: the server answered 304 to a plain GET", R->ref->url);

    const uint64_t size = file_size(p->partial);
    R->info->bytes_reused = res.start;
    if (res.total && size != res.total)
        return wl_error(err, WANDLER_ERR_NETWORK, "the download of %.120s ended at %llu of %llu bytes", R->ref->url,
                        (unsigned long long)size, (unsigned long long)res.total);

    /* verify before anyone may use it */
    char actual[65];
    rc = wl_sha256_file(p->partial, verify_tick, R, actual, err);
    if (rc)
        return rc;
    const int caller_bad = R->expected[0] && strcmp(actual, R->expected) != 0;
    if (caller_bad || (res.sha256[0] && strcmp(actual, res.sha256) != 0)) {
        drop_partial(p);
        return wl_error(err, WANDLER_ERR_INTEGRITY,
                        "the download of %.100s has SHA-256 %.16s..., not the %s %.16s...; the file was deleted",
                        R->ref->canonical, actual, caller_bad ? "expected (options.sha256)" : "server's",
                        caller_bad ? R->expected : res.sha256);
    }
    char got[16];
    if (!has_gguf_magic(p->partial, got)) {
        drop_partial(p);
        return not_gguf(R, got, err);
    }
    wl_cache_meta m = {.source = R->ref->canonical, .url = R->ref->url, .etag = res.etag, .size = size,
                       .time = (int64_t)time(NULL)};
    memcpy(m.sha256, actual, sizeof m.sha256);
    if ((rc = wl_cache_meta_write(p->meta, &m, err)))
        return rc;
    if (rename(p->partial, p->file) != 0) {
        rc = wl_write_error(err, errno, "cannot rename into place", p->file);
        unlink(p->meta);
        return rc;
    }
    unlink(p->pmeta);
    if (report(R, WANDLER_STAGE_RESOLVE, 1, 1, 0))
        return cancelled(err);
    if (!(*path = strdup(p->file)))
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    R->info->cache = WANDLER_CACHE_MISS;
    return WANDLER_OK;
}

static int offline(void)
{
    const char *e = getenv("WANDLER_OFFLINE");
    return e && *e && strcmp(e, "0") != 0;
}

static int resolve_remote(resolver *R, char **path, wandler_error *err)
{
    const wl_cache_paths *p = R->p;
    if (report(R, WANDLER_STAGE_RESOLVE, 0, 1, 0))
        return cancelled(err);
    wl_cache_meta meta;
    int rc;
    if (offline()) {
        if (!entry_complete(p, &meta))
            return wl_error(err, WANDLER_ERR_OFFLINE,
                            "WANDLER_OFFLINE is set and %.120s is not in the cache (%.80s): download it online "
                            "first (wandler pull)", R->ref->canonical, p->file);
        rc = use_cached(R, &meta, path, err);
        wl_cache_meta_free(&meta);
        return rc;
    }
    if ((rc = wl_mkdirs(p->dir, err)))
        return rc;
    int lock = -1, waited = 0;
    if ((rc = take_lock(R, &lock, &waited, err)))
        return rc;
    int complete = entry_complete(p, &meta);
    if (complete && (waited || R->ref->immutable || !meta.etag))
        rc = use_cached(R, &meta, path, err); /* just downloaded by another, or cannot change */
    else
        rc = download(R, &meta, complete, path, err);
    if (complete)
        wl_cache_meta_free(&meta);
    wl_cache_unlock(lock);
    return rc;
}

static int make_paths(const char *source, wl_source_ref *ref, char **root, wl_cache_paths *p, wandler_error *err)
{
    *root = NULL;
    int rc = wl_source_ref_parse(source, ref, err);
    if (rc)
        return rc;
    if ((rc = wl_cache_root(root, err)) || (rc = wl_cache_paths_make(*root, ref->rel, p, err))) {
        free(*root);
        *root = NULL;
        wl_source_ref_free(ref);
    }
    return rc;
}

int wl_source_resolve(const char *source, const wl_source_opts *opts, const wl_source_hooks *hooks, char **path,
                      wl_cache_info *info, wandler_error *err)
{
    *path = NULL;
    wl_cache_info scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof *info);
    if (!source || !*source)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "the source is empty");
    wl_source_opts none = {0};
    if (!opts)
        opts = &none;
    resolver R = {.o = opts, .h = hooks, .info = info, .fd = -1};
    if (opts->sha256 && !wl_source_sha256_valid(opts->sha256, R.expected))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "options.sha256 is not 64 hex digits");
    if (!wl_source_is_remote(source)) {
        if (R.expected[0]) {
            char actual[65];
            int rc = wl_sha256_file(source, verify_tick, &R, actual, err);
            if (rc == WANDLER_ERR_IO && access(source, F_OK) != 0)
                return wl_error(err, WANDLER_ERR_NOT_FOUND, "%s: no such file", source);
            if (rc)
                return rc;
            if (strcmp(actual, R.expected))
                return wl_error(err, WANDLER_ERR_INTEGRITY, "%.120s has SHA-256 %.16s..., not the expected %.16s...",
                                source, actual, R.expected);
        }
        if (!(*path = strdup(source)))
            return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        return WANDLER_OK;
    }
    R.connect_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : WL_DEFAULT_CONNECT_TIMEOUT_MS;
    R.stall_ms = opts->stall_timeout_ms > 0 ? opts->stall_timeout_ms : WL_DEFAULT_STALL_TIMEOUT_MS;
    wl_source_ref ref;
    wl_cache_paths p;
    char *root;
    int rc = make_paths(source, &ref, &root, &p, err);
    if (rc)
        return rc;
    R.ref = &ref;
    R.p = &p;
    rc = resolve_remote(&R, path, err);
    if (rc) {
        free(*path);
        *path = NULL;
    }
    wl_cache_paths_free(&p);
    wl_source_ref_free(&ref);
    free(root);
    return rc;
}

int wl_source_cache_path(const char *source, char **path, wandler_error *err)
{
    *path = NULL;
    if (!wl_source_is_remote(source))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s' is not a URL or hf:// source", source);
    wl_source_ref ref;
    wl_cache_paths p;
    char *root;
    int rc = make_paths(source, &ref, &root, &p, err);
    if (rc)
        return rc;
    *path = p.file;
    p.file = NULL;
    wl_cache_paths_free(&p);
    wl_source_ref_free(&ref);
    free(root);
    return WANDLER_OK;
}

int wl_source_remove(const char *source, int *removed, wandler_error *err)
{
    *removed = 0;
    if (!wl_source_is_remote(source))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s' is not a URL or hf:// source", source);
    wl_source_ref ref;
    wl_cache_paths p;
    char *root;
    int rc = make_paths(source, &ref, &root, &p, err);
    if (rc)
        return rc;
    struct stat st;
    if (stat(p.dir, &st) == 0) {
        int lock = -1;
        int r = wl_cache_trylock(p.lock, &lock, err);
        if (r == 1)
            rc = wl_error(err, WANDLER_ERR_IO, "%.150s is being downloaded right now", ref.canonical);
        else if (r == 0)
            rc = wl_cache_remove(root, &p, removed, err);
        else
            rc = r;
        wl_cache_unlock(lock);
    }
    wl_cache_paths_free(&p);
    wl_source_ref_free(&ref);
    free(root);
    return rc;
}
