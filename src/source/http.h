/* http.h - one HTTP(S) GET of a file into a file descriptor, with libcurl: redirects, TLS
 * verification, the environment's proxy settings, a connect timeout, stall detection, resuming
 * (Range), conditional requests (If-None-Match), cancellation and progress. */
#ifndef WL_SOURCE_HTTP_H
#define WL_SOURCE_HTTP_H

#include <stdint.h>

#include "wandler.h"

/* Returned by wl_http_fetch when the bytes already in the file cannot be continued (the server
 * answered a Range request for another version of the file, or with 416): fetch it whole. */
#define WL_HTTP_RESTART (-2)

#define WL_HTTP_ETAG_MAX 256

/* Sizes past this (1 PiB) are taken for a broken or hostile server's (WANDLER_ERR_HTTP). */
#define WL_HTTP_MAX_SIZE (1ULL << 50)

typedef struct wl_http_result {
    long status;          /* the final response's status */
    int not_modified;     /* 304, or a response named the identity given as if_none_match: the
                             cached copy is current and nothing was written */
    char etag[WL_HTTP_ETAG_MAX]; /* the file's identity: the X-Linked-Etag of any response of the
                             redirect chain (Hugging Face), else the final ETag; "" when none */
    char sha256[65];      /* a SHA-256 the server vouches for (an identity of 64 hex digits) */
    uint64_t total;       /* the whole file's size (0 = unknown) */
    uint64_t start;       /* the file offset of the body's first byte (the resume offset, or 0) */
    uint64_t received;    /* body bytes written to the file */
} wl_http_result;

typedef struct wl_http_get {
    const char *url;
    const char *token;           /* sent as "Authorization: Bearer" to the URL's host (never to
                                    the hosts it redirects to); NULL = none */
    int hf;                      /* the Hugging Face endpoint: word errors for it */
    const char *if_none_match;   /* the cached copy's identity; NULL = none */
    uint64_t offset;             /* resume: ask for the bytes from here on (0 = the whole file) */
    const char *resume_etag;     /* the identity the bytes before offset came from; NULL = unknown */
    int fd;                      /* the body goes here, at its file offset */
    const char *fd_path;         /* the file's name, for messages */
    int connect_timeout_ms;      /* > 0 */
    int stall_timeout_ms;        /* > 0: fail when no byte arrives for this long */
    /* About every 100 ms: bytes of the file done (offset included) of total (0 = unknown) and
     * the speed; returns nonzero to cancel (the load's progress callback, ABORT, timeout). */
    int (*tick)(void *ctx, uint64_t done, uint64_t total, double bytes_per_s);
    /* The final response's headers arrived and its body is about to be written; returns nonzero
     * to cancel. */
    int (*on_start)(void *ctx, const wl_http_result *r);
    void *ctx;
} wl_http_get;

/* Performs the GET. Returns WANDLER_OK (check r->not_modified), WL_HTTP_RESTART, or an error:
 * REMOTE_NOT_FOUND (404, 410), UNAUTHORIZED (401, 403), HTTP (another status), NETWORK (DNS,
 * refused, unreachable, TLS, a connection cut mid-transfer), NETWORK_TIMEOUT (connect timeout,
 * stall), DISK_FULL, IO, CANCELLED, OUT_OF_MEMORY. Whatever it returns, r->received bytes were
 * written from r->start on. */
int wl_http_fetch(const wl_http_get *g, wl_http_result *r, wandler_error *err);

#endif
