/* gguf_write.h - writes GGUF v3 files: metadata, tensor entries, then tensor data.
 *
 * A gguf_writer collects metadata and tensor descriptions in memory, then writes the file in one
 * pass. Tensor data is never gathered: each tensor's bytes either come from a pointer given when
 * the tensor is added (borrowed, not copied) or are streamed in by the caller, tensor by tensor,
 * so that a model of gigabytes never has to sit in memory at once.
 *
 *   gguf_writer *w;
 *   gguf_writer_new(&w, err);
 *   gguf_writer_set_str(w, "general.architecture", "llama", err);
 *   gguf_writer_add_tensor(w, "token_embd.weight", WL_TYPE_F32, 2, ne, NULL, err); // streamed
 *   gguf_writer_begin(w, fp, err);                 // header, metadata, tensor entries
 *   gguf_writer_write_data(w, rows, nbytes, err);  // as often as needed, in tensor order
 *   gguf_writer_end(w, err);
 *   gguf_writer_free(w);
 *
 * or, when every tensor's data was given as a pointer, gguf_writer_write_file() or
 * gguf_writer_write_memory() in one call.
 *
 * Layout written: "GGUF", version 3, tensor count, key count, the metadata in the order the keys
 * were first set, the tensor entries in the order added, zero padding up to the alignment, then
 * each tensor's data at an offset that is a multiple of the alignment, each padded with zeros to
 * the alignment. A file without tensors ends right after the tensor entries (no padding). The
 * alignment is general.alignment when set (a u32 power of two), else GGUF_DEFAULT_ALIGNMENT (32).
 * Values are written little-endian; array elements are given in host byte order.
 *
 * The writer refuses to produce a malformed file: keys and tensor names are checked, and
 * general.alignment must be a u32 power of two. (Tests that need malformed files patch the bytes
 * of a well-formed image.)
 *
 * Errors: every fallible function returns WANDLER_OK or
 *   WANDLER_ERR_INVALID_ARGUMENT  a NULL or out-of-range argument, a call in the wrong state,
 *                                 more or fewer data bytes than a tensor holds;
 *   WANDLER_ERR_OUT_OF_MEMORY     an allocation failed;
 *   WANDLER_ERR_IO                writing, flushing or closing the file failed (with strerror),
 * and fills err (which may be NULL) with the code and a message naming the key, tensor or file.
 * A writer is not thread-safe; use it from one thread at a time.
 */
#ifndef WL_ENGINE_GGUF_WRITE_H
#define WL_ENGINE_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/gguf.h"
#include "wandler.h"

typedef struct gguf_writer gguf_writer;

/* ---- life cycle ---------------------------------------------------------------------------- */

/* The stdio buffer a stream that writes a GGUF file best has (setvbuf before its first write,
 * the buffer alive until fclose): glibc then writes the file in whole pieces of this size at
 * multiples of it, which Linux 6.x (ext4, xfs) caches in 2 MiB folios, so that the file, loaded
 * while still cached, is mapped in 2 MiB pages (gguf_map_file): decode reads every weight once
 * per token, ~8% faster so. Written in glibc's default 4 KiB pieces, it stays in small folios
 * for as long as the cache keeps it. */
#define GGUF_WRITE_STDIO_BUFFER ((size_t)4 << 20)

/* Creates an empty writer (no metadata, no tensors) in *out; the caller owns it and frees it
 * with gguf_writer_free(). Errors: INVALID_ARGUMENT (out NULL), OUT_OF_MEMORY. */
int gguf_writer_new(gguf_writer **out, wandler_error *err);

/* Frees the writer and every copy it made. Borrowed tensor data and a FILE* given to
 * gguf_writer_begin() are not touched. NULL is ignored. */
void gguf_writer_free(gguf_writer *w);

/* ---- metadata -------------------------------------------------------------------------------
 * Each setter copies the key and the value. Setting a key that is already set replaces its type
 * and value and keeps its place in the file. Keys are NUL-terminated (so never contain NUL) and
 * may not be empty. general.alignment may only be set as a u32 power of two.
 * Errors: INVALID_ARGUMENT (NULL writer or key, empty key, bad general.alignment, called between
 * gguf_writer_begin() and gguf_writer_end()), OUT_OF_MEMORY. */

int gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v, wandler_error *err);
int gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v, wandler_error *err);
int gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v, wandler_error *err);
int gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v, wandler_error *err);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v, wandler_error *err);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v, wandler_error *err);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v, wandler_error *err);
int gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v, wandler_error *err);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v, wandler_error *err);
int gguf_writer_set_f64(gguf_writer *w, const char *key, double v, wandler_error *err);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v, wandler_error *err);

/* A NUL-terminated string value (s may not be NULL). */
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *s, wandler_error *err);

/* A string value of len bytes, which may contain NUL bytes (s may be NULL when len is 0). */
int gguf_writer_set_str_n(gguf_writer *w, const char *key, const char *s, uint64_t len,
                          wandler_error *err);

/* An array of `count` numbers of elem_type (any GGUF type but STRING and ARRAY). `elems` points
 * to count values of the matching C type in host byte order: uint8_t for U8 and BOOL (0 or 1),
 * int8_t, uint16_t, int16_t, uint32_t, int32_t, float for FLOAT32, uint64_t, int64_t, double for
 * FLOAT64. elems may be NULL when count is 0. */
int gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *elems,
                        uint64_t count, wandler_error *err);

/* An array of `count` NUL-terminated strings (none of them NULL). */
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                            uint64_t count, wandler_error *err);

/* An array of `count` strings given with their lengths (they may contain NUL bytes; ptr may be
 * NULL when len is 0). Handy for copying a vocabulary read with gguf_arr_str(). */
int gguf_writer_set_arr_str_n(gguf_writer *w, const char *key, const gguf_str *strs,
                              uint64_t count, wandler_error *err);

/* Copies metadata entry i of an open GGUF file (key, type and value, exactly) as if set by the
 * matching setter. Errors: as the setters, and INVALID_ARGUMENT when i is out of range. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, uint64_t i, wandler_error *err);

/* Removes `key` if set; returns WANDLER_OK either way (INVALID_ARGUMENT for NULL arguments or a
 * call while streaming). */
int gguf_writer_remove_key(gguf_writer *w, const char *key, wandler_error *err);

/* Number of metadata entries set so far. */
uint64_t gguf_writer_n_kv(const gguf_writer *w);

/* ---- tensors --------------------------------------------------------------------------------- */

/* Adds a tensor entry: `name` (copied; 1..63 bytes, unique in the file, as llama.cpp requires),
 * `type` (an enum wl_type known to wl_type_get()), n_dims 1..4 dimensions ne[0..n_dims) each >= 1
 * with ne[0] (the row length) a multiple of the type's block size and the size in bytes below
 * 2^63. `data` is either the tensor's wl_row_bytes(type, ne[0]) * rows bytes, borrowed (it must
 * stay valid and unchanged until the file is written), or NULL when the caller streams the
 * bytes in with gguf_writer_write_data().
 * Errors: INVALID_ARGUMENT (any rule above broken, or called while streaming), OUT_OF_MEMORY. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data, wandler_error *err);

/* Number of tensors added so far. */
uint64_t gguf_writer_n_tensors(const gguf_writer *w);

/* Size in bytes of a tensor's data (by the order it was added), or 0 when i is out of range. */
uint64_t gguf_writer_tensor_nbytes(const gguf_writer *w, uint64_t i);

/* Size in bytes of the whole file the writer would write now. */
uint64_t gguf_writer_file_size(const gguf_writer *w);

/* ---- writing --------------------------------------------------------------------------------- */

/* Writes the whole file to `path` (created or truncated). Every tensor must have been given its
 * data as a pointer. On failure the partly written file is removed.
 * Errors: INVALID_ARGUMENT (NULL arguments, a tensor without data, called while streaming), IO. */
int gguf_writer_write_file(gguf_writer *w, const char *path, wandler_error *err);

/* Writes the whole file into a new malloc'd buffer of exactly the file's size: *out (the caller
 * frees it with free()) and *size. Every tensor must have been given its data as a pointer.
 * Errors: INVALID_ARGUMENT (NULL arguments, a tensor without data, called while streaming),
 * OUT_OF_MEMORY. */
int gguf_writer_write_memory(gguf_writer *w, void **out, size_t *size, wandler_error *err);

/* Streaming. gguf_writer_begin() writes the header, the metadata and the tensor entries to `fp`
 * (a stream opened for binary writing, positioned where the file starts; borrowed, never closed),
 * then the data of every leading tensor that was given a pointer. Metadata and tensors can no
 * longer change until gguf_writer_end().
 * Errors: INVALID_ARGUMENT (NULL arguments, already streaming), IO. */
int gguf_writer_begin(gguf_writer *w, FILE *fp, wandler_error *err);

/* Appends n bytes of data of the current tensor: the first tensor, in the order added, whose
 * bytes are not all written yet. A tensor's data may come in as many pieces as wanted, but one
 * call never spans two tensors. When a tensor is complete its padding is written, then the data
 * of every following tensor that was given a pointer.
 * Errors: INVALID_ARGUMENT (not streaming, n larger than what the current tensor still needs, or
 * no tensor left), IO. After an IO error the stream is abandoned: call gguf_writer_end(). */
int gguf_writer_write_data(gguf_writer *w, const void *data, size_t n, wandler_error *err);

/* Index of the tensor whose bytes gguf_writer_write_data() expects next, or -1 when not
 * streaming or when every tensor is complete. */
int64_t gguf_writer_current_tensor(const gguf_writer *w);

/* Ends streaming and flushes fp. Errors: INVALID_ARGUMENT (not streaming, or some tensor's data
 * is missing: the message names it), IO (including an earlier write error). Either way the
 * writer leaves the streaming state and may be changed and written again. */
int gguf_writer_end(gguf_writer *w, wandler_error *err);

#endif
