/* repack_cache.h - a model's Q4_0 matrices repacked in groups of 16 rows (repack.h) into a cache
 * file that is itself mapped: repacking costs one pass at the first load of a file, and every
 * process that loads the file shares the repacked pages, as it shares the file's own.
 *
 * The cache file is DIR/<16 hex digits of a hash of the GGUF file's real path>.r16, DIR being
 * the cache's repack directory (CACHE_ROOT/repack: wl_cache_subdir in source/cache.h):
 *
 *     header (4096 bytes): magic "WLR16\n", version, what the data was made from (the GGUF
 *         file's size, modification time, device and inode, and a hash of each repacked
 *         tensor's offset, type, shape and first and last 4 KiB), the data's size
 *     the repacked tensors, each at a multiple of 4096 bytes, in the model's order (layer by
 *         layer: q, k, v, qkv, o, gate, up, down; then the output matrix)
 *
 * A file whose header does not match the GGUF file as it is now (edited, replaced, another
 * version at the same path), or whose size is not the header's, is made again. A new file is
 * written under a temporary name, flushed to disk (fdatasync) and renamed into place, so that a
 * crash or a second process writing at the same time never leaves a partial file under the
 * final name; two processes that both write one each map their own. It is written front to back
 * in whole 4 MiB pieces at multiples of 4 MiB, so that the kernel caches it in 2 MiB folios and
 * the mapping reads it through 2 MiB pages (Linux 6.x on ext4 or xfs; elsewhere 4 KiB pages,
 * slower at decode but the same results). The cache never opens an
 * existing file through a symbolic link. Every byte of R16 data is a valid weight, so a file
 * damaged after it was written (on disk) may change results but cannot crash a product.
 *
 * $WANDLER_REPACK=0 turns repacking off (the matrices are then read from the GGUF file's rows,
 * at the speed of the kernels for them). */
#ifndef WL_ENGINE_REPACK_CACHE_H
#define WL_ENGINE_REPACK_CACHE_H

#include <stdint.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "wandler.h"

typedef struct wl_repack wl_repack;

/* What wl_repack_model did. */
typedef struct wl_repack_info {
    int hit;          /* 1: a valid cache file was mapped; 0: it was written by this load */
    int n_tensors;    /* matrices repacked */
    uint64_t bytes;   /* their bytes (the same as in the GGUF file) */
    double ms;        /* wall time of wl_repack_model */
    const char *path; /* the cache file */
    const void *map;  /* its mapping, of map_bytes bytes */
    size_t map_bytes;
} wl_repack_info;

/* Repacks the matrices of m that fit R16 (wl_r16_fits: the layers' Q4_0 matrices, and the
 * output matrix, which the token embedding may be: then both are repacked, tied) when kernel family `isa`
 * computes over R16 (wl_gemm_supported(isa, WL_TYPE_Q4_0)) and $WANDLER_REPACK is not "0": maps their cache
 * file in the existing directory dir, writing it first when it is absent or stale, and then points those
 * tensors at it (data, layout = WL_LAYOUT_R16).
 *
 * f is the GGUF file m was loaded from (a memory image, with no path, is not repacked).
 * *out is NULL when nothing was repacked (no tensor fits, another isa, turned off); otherwise
 * the repacked tensors point into it, so free it (wl_repack_free) only after the last use of m
 * (e.g. right after wl_model_free). Any thread; not concurrently with uses of m.
 *
 * Errors: IO (the file cannot be written, opened or mapped), DISK_FULL, OUT_OF_MEMORY. On an
 * error m is unchanged, so a caller may go on and run the matrices from the file's rows. */
int wl_repack_model(wl_model *m, const gguf_file *f, int isa, const char *dir, wl_repack **out,
                    wandler_error *err);

/* The folder of the cache root that holds the repacked files (wl_cache_subdir, source/cache.h),
 * and the ending of their names. */
#define WL_REPACK_SUBDIR "repack"
#define WL_REPACK_SUFFIX ".r16"

/* The cache file in dir that wl_repack_model uses for the GGUF file at gguf_path: named by a hash
 * of its real path (of gguf_path itself when it cannot be resolved, e.g. a file already gone).
 * A new string (free it), or NULL when out of memory. Any thread; nothing is read or written. */
char *wl_repack_file_path(const char *dir, const char *gguf_path);

/* What the repacking did; r must not be NULL. */
const wl_repack_info *wl_repack_info_of(const wl_repack *r);

/* Unmaps the repacked data; NULL is ignored. */
void wl_repack_free(wl_repack *r);

#endif
