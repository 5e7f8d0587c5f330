/* cache.c - the on-disk model cache (see cache.h). */
#include "source/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

#define META_MAGIC "wandler-cache 1"

int wl_write_error(wandler_error *err, int e, const char *what, const char *path)
{
    if (wl_write_errno_code(e) == WANDLER_ERR_DISK_FULL)
        return wl_error(err, WANDLER_ERR_DISK_FULL,
                        "%s %s: %s (free some space; the download resumes where it stopped)", what, path,
                        strerror(e));
    if (e == ELOOP)
        return wl_error(err, WANDLER_ERR_IO,
                        "%s %s: it is a symbolic link, and the cache does not write through "
                        "links (delete it, or use wandler rm)",
                        what, path);
    return wl_error(err, WANDLER_ERR_IO, "%s %s: %s", what, path, strerror(e));
}

int wl_cache_root(char **out, wandler_error *err)
{
    *out = NULL;
    const char *e = getenv("WANDLER_CACHE_DIR");
    int r;
    if (e && *e) {
        r = asprintf(out, "%s", e);
    } else if ((e = getenv("XDG_CACHE_HOME")) && e[0] == '/') {
        r = asprintf(out, "%s/wandler", e);
    } else {
        const char *home = getenv("HOME");
        char buf[4096];
        struct passwd pw, *res = NULL;
        if ((!home || !*home) && getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res)
            home = pw.pw_dir;
        if (!home || !*home)
            return wl_error(err, WANDLER_ERR_IO, "no cache directory: set WANDLER_CACHE_DIR (no HOME)");
        r = asprintf(out, "%s/.cache/wandler", home);
    }
    if (r < 0) {
        *out = NULL;
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    /* no trailing slashes, so paths compare and print cleanly */
    size_t n = strlen(*out);
    while (n > 1 && (*out)[n - 1] == '/')
        (*out)[--n] = '\0';
    return WANDLER_OK;
}

void wl_cache_paths_free(wl_cache_paths *p)
{
    free(p->dir);
    free(p->file);
    free(p->meta);
    free(p->partial);
    free(p->pmeta);
    free(p->lock);
    memset(p, 0, sizeof *p);
}

int wl_cache_paths_make(const char *root, const char *rel, wl_cache_paths *p, wandler_error *err)
{
    memset(p, 0, sizeof *p);
    if (asprintf(&p->file, "%s/%s", root, rel) < 0)
        p->file = NULL;
    if (p->file) {
        if (asprintf(&p->meta, "%s.meta", p->file) < 0)
            p->meta = NULL;
        if (asprintf(&p->partial, "%s.partial", p->file) < 0)
            p->partial = NULL;
        if (asprintf(&p->pmeta, "%s.partial.meta", p->file) < 0)
            p->pmeta = NULL;
        if (asprintf(&p->lock, "%s.lock", p->file) < 0)
            p->lock = NULL;
        p->dir = strdup(p->file);
        if (p->dir)
            *strrchr(p->dir, '/') = '\0';
    }
    if (!p->file || !p->meta || !p->partial || !p->pmeta || !p->lock || !p->dir) {
        wl_cache_paths_free(p);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return WANDLER_OK;
}

/* ---- metadata ---- */

void wl_cache_meta_free(wl_cache_meta *m)
{
    free(m->source);
    free(m->url);
    free(m->etag);
    memset(m, 0, sizeof *m);
}

int wl_cache_meta_read(const char *path, wl_cache_meta *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ok = 0, first = 1;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (first) {
            first = 0;
            ok = !strcmp(line, META_MAGIC);
            if (!ok)
                break;
            continue;
        }
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        const char *key = line, *val = sp + 1;
        char **slot = !strcmp(key, "source") ? &m->source
                      : !strcmp(key, "url")  ? &m->url
                      : !strcmp(key, "etag") ? &m->etag
                                             : NULL;
        if (slot) {
            free(*slot);
            if (!(*slot = strdup(val)))
                ok = 0;
        } else if (!strcmp(key, "sha256") && strlen(val) == 64) {
            memcpy(m->sha256, val, 65);
        } else if (!strcmp(key, "size")) {
            m->size = strtoull(val, NULL, 10);
        } else if (!strcmp(key, "time")) {
            m->time = strtoll(val, NULL, 10);
        }
    }
    free(line);
    fclose(f);
    if (!ok) {
        wl_cache_meta_free(m);
        return -1;
    }
    return 0;
}

int wl_cache_meta_write(const char *path, const wl_cache_meta *m, wandler_error *err)
{
    /* a name of our own (process and call), so that writers never share a temporary file */
    static atomic_ulong serial;
    char *tmp;
    if (asprintf(&tmp, "%s.%ld.%lu.tmp", path, (long)getpid(), atomic_fetch_add(&serial, 1)) < 0)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    int rc = WANDLER_OK;
    /* O_NOFOLLOW: never truncate what a link planted in the cache names */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        rc = wl_write_error(err, errno, "cannot create", tmp);
        if (fd >= 0)
            close(fd);
        free(tmp);
        return rc;
    }
    fprintf(f, META_MAGIC "\n");
    if (m->source)
        fprintf(f, "source %s\n", m->source);
    if (m->url)
        fprintf(f, "url %s\n", m->url);
    if (m->etag && *m->etag)
        fprintf(f, "etag %s\n", m->etag);
    if (m->sha256[0])
        fprintf(f, "sha256 %s\n", m->sha256);
    fprintf(f, "size %" PRIu64 "\n", m->size);
    fprintf(f, "time %lld\n", (long long)(m->time ? m->time : (int64_t)time(NULL)));
    int bad = ferror(f);
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad)
        rc = wl_write_error(err, e, "cannot write", tmp);
    else if (rename(tmp, path) != 0)
        rc = wl_write_error(err, errno, "cannot rename into place", path);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- directories and the lock ---- */

int wl_mkdirs(const char *dir, wandler_error *err)
{
    char *p = strdup(dir);
    if (!p)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    int rc = WANDLER_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                rc = wl_write_error(err, errno, "cannot create the cache directory", p);
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    if (rc == WANDLER_OK) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = wl_error(err, WANDLER_ERR_IO, "%s: not a directory", dir);
    }
    free(p);
    return rc;
}

int wl_cache_subdir(const char *name, char **out, wandler_error *err)
{
    char *root = NULL;
    int rc = wl_cache_root(&root, err);
    if (rc)
        return rc;
    if (asprintf(out, "%s/%s", root, name) < 0) {
        *out = NULL;
        free(root);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    free(root);
    if ((rc = wl_mkdirs(*out, err))) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

int wl_cache_trylock(const char *lock_path, int *fd, wandler_error *err)
{
    *fd = -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        /* O_NOFOLLOW: a link planted in the cache must not make us create files elsewhere */
        int f = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (f < 0)
            return wl_write_error(err, errno, "cannot open the lock", lock_path);
        if (flock(f, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(f);
            if (e == EWOULDBLOCK || e == EINTR)
                return 1;
            return wl_error(err, WANDLER_ERR_IO, "cannot lock %s: %s", lock_path, strerror(e));
        }
        /* the file we locked must still be the one at the path (wl_cache_remove unlinks it) */
        struct stat a, b;
        if (fstat(f, &a) == 0 && stat(lock_path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            *fd = f;
            return 0;
        }
        close(f);
    }
    return wl_error(err, WANDLER_ERR_IO, "cannot lock %s: it keeps being replaced", lock_path);
}

void wl_cache_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing releases the flock */
}

/* ---- listing ---- */

typedef struct listing_item {
    wl_cache_listing l;
    char *path;
    wl_cache_meta meta;
} listing_item;

typedef struct walk_state {
    listing_item *items;
    size_t n, cap;
    int oom;
} walk_state;

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void add_item(walk_state *w, char *path, wl_cache_meta *meta, int complete, uint64_t bytes)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        listing_item *items = realloc(w->items, cap * sizeof *items);
        if (!items) {
            w->oom = 1;
            free(path);
            wl_cache_meta_free(meta);
            return;
        }
        w->items = items;
        w->cap = cap;
    }
    listing_item *it = &w->items[w->n++];
    it->path = path;
    it->meta = *meta;
    it->l = (wl_cache_listing){.source = meta->source ? meta->source : "?",
                               .path = path,
                               .complete = complete,
                               .bytes = bytes,
                               .total = meta->size,
                               .sha256 = meta->sha256,
                               .time = meta->time};
}

static void visit(walk_state *w, const char *fpath)
{
    int complete;
    size_t cut;
    if (ends_with(fpath, ".partial.meta")) {
        return;
    } else if (ends_with(fpath, ".meta")) {
        complete = 1;
        cut = strlen(".meta");
    } else if (ends_with(fpath, ".partial")) {
        complete = 0;
        cut = 0;
    } else {
        return;
    }
    char *file = strndup(fpath, strlen(fpath) - cut);
    char *meta_path = NULL;
    if (!file || asprintf(&meta_path, "%s%s", fpath, complete ? "" : ".meta") < 0) {
        free(file);
        w->oom = 1;
        return;
    }
    wl_cache_meta m;
    struct stat st;
    if (wl_cache_meta_read(meta_path, &m) == 0 && stat(file, &st) == 0 &&
        (!complete || (uint64_t)st.st_size == m.size))
        add_item(w, file, &m, complete, (uint64_t)st.st_size);
    else if (!complete && stat(file, &st) == 0) {
        memset(&m, 0, sizeof m);
        add_item(w, file, &m, 0, (uint64_t)st.st_size); /* a partial without its metadata */
    } else {
        free(file);
    }
    free(meta_path);
}

/* Visits the regular files under dir (not following symbolic links), depth first. */
static int walk(walk_state *w, const char *dir, int depth)
{
    if (depth > 32)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return depth == 0 ? -1 : 0;
    struct dirent *e;
    while ((e = readdir(d)) && !w->oom) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *path;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
            w->oom = 1;
            break;
        }
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                walk(w, path, depth + 1);
            else if (S_ISREG(st.st_mode))
                visit(w, path);
        }
        free(path);
    }
    closedir(d);
    return 0;
}

static int by_source(const void *a, const void *b)
{
    const listing_item *x = a, *y = b;
    int c = strcmp(x->l.source, y->l.source);
    return c ? c : y->l.complete - x->l.complete;
}

int wl_cache_list(const char *root, void (*fn)(const wl_cache_listing *e, void *user), void *user,
                  wandler_error *err)
{
    struct stat st;
    if (stat(root, &st) != 0)
        return errno == ENOENT ? WANDLER_OK : wl_error(err, WANDLER_ERR_IO, "%s: %s", root, strerror(errno));
    walk_state w = {0};
    int r = walk(&w, root, 0);
    int rc = WANDLER_OK;
    if (w.oom)
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory listing the cache");
    else if (r != 0)
        rc = wl_error(err, WANDLER_ERR_IO, "cannot read the cache %s: %s", root, strerror(errno));
    if (rc == WANDLER_OK) {
        if (w.n) /* qsort wants a valid pointer even for no items */
            qsort(w.items, w.n, sizeof *w.items, by_source);
        for (size_t i = 0; i < w.n; i++)
            fn(&w.items[i].l, user);
    }
    for (size_t i = 0; i < w.n; i++) {
        free(w.items[i].path);
        wl_cache_meta_free(&w.items[i].meta);
    }
    free(w.items);
    return rc;
}

/* ---- removal ---- */

int wl_cache_remove(const char *root, const wl_cache_paths *p, int *removed, wandler_error *err)
{
    *removed = 0;
    /* the metadata first: without it the entry is no longer complete */
    const char *files[] = {p->meta, p->file, p->pmeta, p->partial, p->lock};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (unlink(files[i]) == 0) {
            if (files[i] != p->lock)
                ++*removed;
        } else if (errno != ENOENT) {
            return wl_error(err, WANDLER_ERR_IO, "cannot delete %s: %s", files[i], strerror(errno));
        }
    }
    /* directories left empty, up to (not including) the root */
    char *d = strdup(p->dir);
    size_t root_n = strlen(root);
    while (d && strlen(d) > root_n && !strncmp(d, root, root_n) && d[root_n] == '/' && rmdir(d) == 0) {
        char *slash = strrchr(d, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    free(d);
    return WANDLER_OK;
}
