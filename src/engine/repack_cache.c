/* repack_cache.c - the cache file of a model's repacked Q4_0 matrices (repack_cache.h). */
#include "engine/repack_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/gemm.h"
#include "engine/quant.h"
#include "engine/repack.h"
#include "engine/tensor_type.h"
#include "util/error.h"

#define HEADER_BYTES 4096
#define ALIGN 4096  /* of each tensor in the file */
#define SAMPLE 4096 /* bytes at each end of a tensor that the header's hash covers */
#define WRITE_BUFFER ((size_t)4 << 20)
#define VERSION 2 /* 2: no checksum field (the whole header is compared) */

static const char MAGIC[8] = {'W', 'L', 'R', '1', '6', '\n', 0, 0};

/* Fixed-size fields, in the machine's byte order: the file never leaves the machine that made
 * it (a file from another machine fails the identity check and is made again). A file is used
 * only when its header equals, byte for byte, the one made now from the GGUF file, so a damaged
 * header is made again without a checksum of its own. */
typedef struct file_header {
    char magic[8];
    uint32_t version;
    uint32_t n_tensors;
    uint64_t src_size, src_mtime_ns, src_dev, src_ino; /* the GGUF file's, from stat(2) */
    uint64_t tensors_hash;                             /* tensors_hash() */
    uint64_t data_bytes;                               /* the file is HEADER_BYTES + this */
} file_header;

struct wl_repack {
    void *map;
    size_t size;
    char *path;
    wl_repack_info info;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

#define FNV_START 14695981039346656037ull

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static size_t tensor_bytes(const wl_tensor *t)
{
    return wl_r16_bytes(t->ne[1], t->ne[0]);
}

/* The matrices to repack, in the file's order (repack_cache.h); returns how many. list holds
 * room for 8 per layer and one more. */
static int collect(wl_model *m, wl_tensor **list)
{
    int n = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        wl_layer *L = &m->layers[il];
        wl_tensor *cand[8] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 8; i++)
            if (cand[i]->data && cand[i]->layout == WL_LAYOUT_ROWS &&
                wl_r16_fits(cand[i]->type, cand[i]->ne[1], cand[i]->ne[0]))
                list[n++] = cand[i];
    }
    /* the output matrix, also when it is the token embedding (tied): then both read the
     * repacked rows (forward.c dequantizes an embedding row from R16) */
    wl_tensor *o = &m->output;
    if (o->data && o->layout == WL_LAYOUT_ROWS && wl_r16_fits(o->type, o->ne[1], o->ne[0]))
        list[n++] = o;
    return n;
}

/* Each tensor's offset in the GGUF file, type, shape, and its first and last SAMPLE bytes: a
 * file rewritten with other weights of the same shapes (a newly generated model) differs. */
static uint64_t tensors_hash(const gguf_file *f, wl_tensor *const *list, int n)
{
    uint64_t h = FNV_START;
    for (int i = 0; i < n; i++) {
        const wl_tensor *t = list[i];
        const unsigned char *d = t->data;
        const uint64_t fields[4] = {(uint64_t)(d - (const unsigned char *)gguf_base(f)), t->type,
                                    (uint64_t)t->ne[0], (uint64_t)t->ne[1]};
        const size_t bytes = tensor_bytes(t), s = bytes < SAMPLE ? bytes : SAMPLE;
        h = fnv1a(h, fields, sizeof fields);
        h = fnv1a(h, d, s);
        h = fnv1a(h, d + bytes - s, s);
    }
    return h;
}

static int write_error(wandler_error *err, int e, const char *what, const char *path)
{
    return wl_error(err, wl_write_errno_code(e), "%s %s: %s", what, path, strerror(e));
}

static int write_all(int fd, const void *p, size_t n, off_t at)
{
    const unsigned char *b = p;
    while (n > 0) {
        const ssize_t w = pwrite(fd, b, n, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        b += w, n -= (size_t)w, at += w;
    }
    return 0;
}

/* The file is written front to back through a window of WINDOW bytes, each write one whole
 * window at a multiple of WINDOW (the last one may be short). Why: the kernel caches what is
 * written in folios as large as the writes allow (Linux 6.x, ext4 and xfs), and a file cached in
 * 2 MiB folios is mapped in 2 MiB pages (gguf_map_file). Decode reads every weight once per
 * token; llama-3.2-1b Q4_0 decoded 8-11% faster with the file in 2 MiB pages than in 4 KiB
 * ones at ~85 GB/s (bench/RESULTS.md). Writes of 4 MiB at other offsets had left two thirds of
 * the file in small folios, where it stays for as long as the cache keeps it. */
#define WINDOW ((size_t)4 << 20) /* a multiple of 2 MiB */

typedef struct window {
    int fd;
    unsigned char *buf; /* [WINDOW] */
    size_t fill;        /* bytes of buf in use */
    off_t base;         /* the file offset of buf[0] */
} window;

static int window_flush(window *w)
{
    const int e = write_all(w->fd, w->buf, w->fill, w->base);
    w->base += (off_t)w->fill;
    w->fill = 0;
    return e;
}

/* Appends n bytes of p (zeros when p is NULL); returns 0 or an errno. */
static int window_put(window *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        const size_t k = n < WINDOW - w->fill ? n : WINDOW - w->fill;
        if (b)
            memcpy(w->buf + w->fill, b, k), b += k;
        else
            memset(w->buf + w->fill, 0, k);
        w->fill += k, n -= k;
        if (w->fill == WINDOW) {
            const int e = window_flush(w);
            if (e)
                return e;
        }
    }
    return 0;
}

/* Maps the cache file at path when it is a regular file made from what `want` describes.
 * Returns 0 (mapped), 1 (absent or stale: to be made again) or an error. */
static int open_existing(const char *path, const file_header *want, void **map, size_t *size,
                         wandler_error *err)
{
    const int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 1;
    struct stat st;
    file_header h;
    const size_t expect = HEADER_BYTES + (size_t)want->data_bytes;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != expect ||
        pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(&h, want, sizeof h) != 0) {
        close(fd);
        return 1;
    }
    *map = gguf_map_file(fd, expect);
    const int e = errno;
    close(fd);
    if (*map == MAP_FAILED)
        return wl_error(err, e == ENOMEM ? WANDLER_ERR_OUT_OF_MEMORY : WANDLER_ERR_IO, "cannot map %s: %s",
                        path, strerror(e));
    *size = expect;
    return 0;
}

/* Writes the cache file (a temporary file, flushed, renamed to path) and maps it. */
static int write_new(const char *path, const file_header *h, wl_tensor *const *list, int n, void **map,
                     size_t *size, wandler_error *err)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    const int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        const int rc = write_error(err, errno, "cannot create", tmp);
        free(tmp);
        return rc;
    }
    const size_t total = HEADER_BYTES + (size_t)h->data_bytes;
    /* buf: groups repacked a batch at a time, then copied into the window */
    unsigned char *buf = malloc(WRITE_BUFFER);
    window win = {fd, malloc(WINDOW), 0, 0};
    int rc = WANDLER_OK, e = 0;
    if (!buf || !win.buf) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    (void)fchmod(fd, 0644);
    if ((e = window_put(&win, h, sizeof *h)) || (e = window_put(&win, NULL, HEADER_BYTES - sizeof *h)))
        goto io;
    for (int i = 0; i < n; i++) {
        const wl_tensor *t = list[i];
        const size_t group = (size_t)(t->ne[0] / WL_QK) * WL_R16_RECORD; /* bytes of one group */
        const int64_t groups = t->ne[1] / WL_R16_ROWS;
        int64_t step = (int64_t)(WRITE_BUFFER / group);
        step = step > 0 ? step : 1;
        if ((size_t)step * group > WRITE_BUFFER) { /* one group larger than the buffer */
            unsigned char *big = realloc(buf, group);
            if (!big) {
                rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
                goto fail;
            }
            buf = big;
        }
        for (int64_t g = 0; g < groups; g += step) {
            const int64_t g1 = g + step < groups ? g + step : groups;
            wl_r16_repack(t->data, t->row_bytes, t->ne[0], g, g1, buf);
            if ((e = window_put(&win, buf, (size_t)(g1 - g) * group)))
                goto io;
        }
        if ((e = window_put(&win, NULL, round_up(tensor_bytes(t)) - tensor_bytes(t))))
            goto io;
    }
    if ((e = window_flush(&win)))
        goto io;
    if (ftruncate(fd, (off_t)total) != 0 || fdatasync(fd) != 0) {
        e = errno;
        goto io;
    }
    if (rename(tmp, path) != 0) {
        rc = write_error(err, errno, "cannot rename into place", path);
        goto fail;
    }
    free(buf);
    free(win.buf);
    free(tmp);
    *map = gguf_map_file(fd, total);
    e = errno;
    close(fd);
    if (*map == MAP_FAILED)
        return wl_error(err, e == ENOMEM ? WANDLER_ERR_OUT_OF_MEMORY : WANDLER_ERR_IO, "cannot map %s: %s",
                        path, strerror(e));
    *size = total;
    return WANDLER_OK;
io:
    rc = write_error(err, e, "cannot write", tmp);
fail:
    close(fd);
    unlink(tmp);
    free(buf);
    free(win.buf);
    free(tmp);
    return rc;
}

char *wl_repack_file_path(const char *dir, const char *gguf_path)
{
    /* one path, one cache file, made again when the GGUF file changes (the header) */
    char *real = realpath(gguf_path, NULL), *path = NULL;
    const char *key = real ? real : gguf_path;
    if (asprintf(&path, "%s/%016llx" WL_REPACK_SUFFIX, dir, (unsigned long long)fnv1a(FNV_START, key, strlen(key))) < 0)
        path = NULL;
    free(real);
    return path;
}

int wl_repack_model(wl_model *m, const gguf_file *f, int isa, const char *dir, wl_repack **out,
                    wandler_error *err)
{
    *out = NULL;
    const double t0 = now_ms();
    const char *off = getenv("WANDLER_REPACK");
    const char *src = gguf_path(f);
    if ((off && strcmp(off, "0") == 0) || !wl_gemm_supported(isa, WL_TYPE_Q4_0) || !src || !*src)
        return WANDLER_OK;
    wl_tensor **list = malloc(((size_t)m->hp.n_layer * 8 + 1) * sizeof *list);
    if (!list)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    const int n = collect(m, list);
    if (n == 0) {
        free(list);
        return WANDLER_OK;
    }
    struct stat st;
    if (stat(src, &st) != 0) {
        const int rc = wl_error(err, WANDLER_ERR_IO, "cannot stat %s: %s", src, strerror(errno));
        free(list);
        return rc;
    }
    file_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof MAGIC);
    h.version = VERSION;
    h.n_tensors = (uint32_t)n;
    h.src_size = (uint64_t)st.st_size;
    h.src_mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    h.src_dev = (uint64_t)st.st_dev;
    h.src_ino = (uint64_t)st.st_ino;
    h.tensors_hash = tensors_hash(f, list, n);
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        h.data_bytes += round_up(tensor_bytes(list[i]));
        bytes += tensor_bytes(list[i]);
    }

    wl_repack *r = calloc(1, sizeof *r);
    int rc = WANDLER_OK;
    if (!r || !(r->path = wl_repack_file_path(dir, src))) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    rc = open_existing(r->path, &h, &r->map, &r->size, err);
    r->info.hit = rc == 0;
    if (rc == 1)
        rc = write_new(r->path, &h, list, n, &r->map, &r->size, err);
    if (rc)
        goto out;
    /* only now that everything worked: the tensors read from the cache file */
    const int tied = m->output.data && m->output.data == m->tok_embd.data;
    size_t at = HEADER_BYTES;
    for (int i = 0; i < n; i++) {
        if (tied && list[i] == &m->output) {
            m->tok_embd.data = (const unsigned char *)r->map + at;
            m->tok_embd.layout = WL_LAYOUT_R16;
        }
        list[i]->data = (const unsigned char *)r->map + at;
        list[i]->layout = WL_LAYOUT_R16;
        at += round_up(tensor_bytes(list[i]));
    }
    r->info.n_tensors = n;
    r->info.bytes = bytes;
    r->info.path = r->path;
    r->info.map = r->map;
    r->info.map_bytes = r->size;
    r->info.ms = now_ms() - t0;
    *out = r;
    r = NULL;
out:
    wl_repack_free(r);
    free(list);
    return rc;
}

const wl_repack_info *wl_repack_info_of(const wl_repack *r)
{
    return &r->info;
}

void wl_repack_free(wl_repack *r)
{
    if (!r)
        return;
    if (r->map && r->map != MAP_FAILED)
        munmap(r->map, r->size);
    free(r->path);
    free(r);
}
