/* sha256.h - SHA-256 of files and buffers (OpenSSL's libcrypto), and the 64-hex-digit form. */
#ifndef WL_SOURCE_SHA256_H
#define WL_SOURCE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "wandler.h"

#define WL_SHA256_HEX 65 /* 64 lowercase hex digits and a NUL */

/* hex = SHA-256 of data[0..n) in lowercase hex. Returns 0, or -1 when libcrypto fails. */
int wl_sha256_hex(const void *data, size_t n, char hex[WL_SHA256_HEX]);

/* Reads a SHA-256 written as 64 hex digits, in either case, optionally wrapped the ways servers
 * and people write it: `"..."`, `W/"..."`, `sha256:...`. Writes the lowercase digits to out
 * (when not NULL) and returns 1; returns 0 for anything else (out is then ""). */
int wl_sha256_parse(const char *s, char out[WL_SHA256_HEX]);

/* Hashes the file at path, calling tick(ctx, done, total) about every 100 ms (and at the end);
 * a nonzero return stops it with WANDLER_ERR_CANCELLED. Errors: IO, CANCELLED, INTERNAL. */
int wl_sha256_file(const char *path, int (*tick)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                   char hex[WL_SHA256_HEX], wandler_error *err);

#endif
