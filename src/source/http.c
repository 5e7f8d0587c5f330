/* http.c - one GET with libcurl's multi interface, so that cancellation, stall detection and
 * progress run on our own 100 ms clock (see http.h). */
#include "source/http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "source/cache.h"
#include "source/internal.h"
#include "source/sha256.h"
#include "util/error.h"

#define TICK_MS 100
#define MAX_REDIRECTS 10
#define BUFFER_BYTES (256 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT; /* written once, under curl_once */

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Per-response header values; reset at each status line of the redirect chain. */
typedef struct hop {
    long status;
    char etag[WL_HTTP_ETAG_MAX];
    char linked_etag[WL_HTTP_ETAG_MAX];
    uint64_t linked_size;
    int64_t content_length;     /* -1 = none */
    int has_range;
    uint64_t range_start, range_total; /* range_total 0 = "*" */
    int has_location;
} hop;

typedef struct xfer {
    const wl_http_get *g;
    wl_http_result *r;
    hop h;
    char linked_etag[WL_HTTP_ETAG_MAX]; /* the first X-Linked-Etag of the chain */
    uint64_t linked_size;
    int body_ok;       /* the final response's body is being written */
    int in_headers;    /* a status line came, the end of its headers not yet */
    int bad_size;      /* the final response announced an impossible size */
    int not_modified, restart, cancelled;
    int write_errno;
    double last_data;  /* monotonic ms of the last byte received (headers or body) */
} xfer;

static void trim_copy(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && isspace((unsigned char)*v))
        v++, n--;
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* Identities compare without the weak marker. */
static int same_etag(const char *a, const char *b)
{
    if (!a || !b || !*a || !*b)
        return 0;
    if (!strncmp(a, "W/", 2))
        a += 2;
    if (!strncmp(b, "W/", 2))
        b += 2;
    return !strcmp(a, b);
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k))
        return 0;
    *val = line + k + 1;
    *vlen = n - k - 1;
    return 1;
}

/* A size of a header: decimal digits only. Anything else (empty, a sign, other characters, past
 * 64 bits) gives UINT64_MAX, which final_response() rejects as past WL_HTTP_MAX_SIZE. */
static uint64_t parse_u64(const char *v, size_t n)
{
    char buf[32];
    trim_copy(buf, sizeof buf, v, n);
    if (!buf[0] || strspn(buf, "0123456789") != strlen(buf))
        return UINT64_MAX;
    errno = 0;
    unsigned long long x = strtoull(buf, NULL, 10);
    return errno ? UINT64_MAX : (uint64_t)x;
}

/* The headers of the final response are complete: decide what its body is. Returns 0 to stop. */
static int final_response(xfer *x)
{
    const wl_http_get *g = x->g;
    wl_http_result *r = x->r;
    hop *h = &x->h;
    r->status = h->status;
    snprintf(r->etag, sizeof r->etag, "%s", x->linked_etag[0] ? x->linked_etag : h->etag);
    if (!wl_sha256_parse(x->linked_etag, r->sha256))
        wl_sha256_parse(h->etag, r->sha256);
    if (h->status == 304) {
        x->not_modified = 1;
        return 1;
    }
    if (h->status < 200 || h->status >= 300)
        return 1; /* an error status: curl fails the transfer (CURLOPT_FAILONERROR) */
    if (g->if_none_match && same_etag(r->etag, g->if_none_match)) {
        x->not_modified = 1; /* the server ignored If-None-Match, but it is the same file */
        return 0;
    }
    if (h->status == 206) {
        if (!h->has_range || h->range_start != g->offset ||
            (g->resume_etag && *g->resume_etag && r->etag[0] && !same_etag(r->etag, g->resume_etag))) {
            x->restart = 1;
            return 0;
        }
        r->start = g->offset;
        r->total = h->range_total ? h->range_total : x->linked_size;
    } else {
        r->start = 0; /* no range asked, or the server ignored it: the whole file comes */
        r->total = h->content_length >= 0 ? (uint64_t)h->content_length : x->linked_size;
    }
    if (r->total > WL_HTTP_MAX_SIZE) {
        x->bad_size = 1; /* a size no model file has: a broken or hostile server */
        return 0;
    }
    /* the file ends where the body starts (bytes of an older attempt beyond it are dropped) */
    if (ftruncate(g->fd, (off_t)r->start) != 0 && errno != EINVAL /* not a regular file */) {
        x->write_errno = errno;
        return 0;
    }
    x->body_ok = 1;
    if (g->on_start && g->on_start(g->ctx, r)) {
        x->cancelled = 1;
        return 0;
    }
    return 1;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;
    x->last_data = wl_src_now_ms();
    hop *h = &x->h;
    const char *v;
    size_t vn;
    if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
        memset(h, 0, sizeof *h);
        h->content_length = -1;
        x->in_headers = 1;
        const char *sp = memchr(buf, ' ', n);
        h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if ((n == 2 && buf[0] == '\r') || (n == 1 && buf[0] == '\n')) {
        /* the end of one response's headers */
        x->in_headers = 0;
        if (h->status >= 100 && h->status < 200)
            return n;
        if (!x->linked_etag[0] && h->linked_etag[0]) {
            memcpy(x->linked_etag, h->linked_etag, sizeof x->linked_etag);
            x->linked_size = h->linked_size;
        }
        if (h->status >= 300 && h->status < 400 && h->status != 304 && h->has_location) {
            /* a redirect (Hugging Face's names the file's identity): stop when it is the cached one */
            if (x->g->if_none_match &&
                (same_etag(h->linked_etag, x->g->if_none_match) || same_etag(h->etag, x->g->if_none_match))) {
                x->not_modified = 1;
                return 0;
            }
            return n;
        }
        return final_response(x) ? n : 0;
    } else if (header_is(buf, n, "etag", &v, &vn)) {
        trim_copy(h->etag, sizeof h->etag, v, vn);
    } else if (header_is(buf, n, "x-linked-etag", &v, &vn)) {
        trim_copy(h->linked_etag, sizeof h->linked_etag, v, vn);
    } else if (header_is(buf, n, "x-linked-size", &v, &vn)) {
        h->linked_size = parse_u64(v, vn);
    } else if (header_is(buf, n, "content-length", &v, &vn)) {
        uint64_t len = parse_u64(v, vn);
        h->content_length = len > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)len;
    } else if (header_is(buf, n, "location", &v, &vn)) {
        h->has_location = 1;
    } else if (header_is(buf, n, "content-range", &v, &vn)) {
        char cr[128];
        trim_copy(cr, sizeof cr, v, vn);
        unsigned long long a, b, t;
        if (sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
            h->has_range = 1;
            h->range_start = a;
            h->range_total = t;
        } else if (sscanf(cr, "bytes %llu-%llu/*", &a, &b) == 2) {
            h->has_range = 1;
            h->range_start = a;
        }
    }
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    x->last_data = wl_src_now_ms();
    if (!x->body_ok)
        return n; /* the body of a redirect or of an error page */
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(x->g->fd, buf + off, n - off, (off_t)(x->r->start + x->r->received));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            x->write_errno = w < 0 ? errno : EIO;
            return 0;
        }
        off += (size_t)w;
        x->r->received += (uint64_t)w;
    }
    return n;
}

static int http_status_error(const wl_http_get *g, long status, wandler_error *err)
{
    const char *url = g->url;
    switch (status) {
    case 404:
    case 410:
        return wl_error(err, WANDLER_ERR_REMOTE_NOT_FOUND, "not found (HTTP %ld): %.150s%s", status, url,
                        g->hf ? " (check the owner, repository, file name and revision)" : "");
    case 401:
    case 403:
        if (g->token)
            return wl_error(err, WANDLER_ERR_UNAUTHORIZED,
                            "access denied (HTTP %ld) to %.120s although HF_TOKEN was sent: check the token "
                            "and, for a gated model, accept its terms on its page", status, url);
        if (g->hf)
            return wl_error(err, WANDLER_ERR_UNAUTHORIZED,
                            "access denied (HTTP %ld) to %.120s: set HF_TOKEN to a Hugging Face token "
                            "with access to the repository", status, url);
        return wl_error(err, WANDLER_ERR_UNAUTHORIZED,
                        "access denied (HTTP %ld) to %.120s (HF_TOKEN is only sent to the Hugging Face "
                        "endpoint)", status, url);
    }
    return wl_error(err, WANDLER_ERR_HTTP, "the server answered HTTP %ld for %.150s", status, url);
}

static int curl_error(const wl_http_get *g, CURLcode c, const char *detail, wandler_error *err)
{
    const char *d = detail && *detail ? detail : curl_easy_strerror(c);
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return wl_error(err, WANDLER_ERR_NETWORK, "cannot resolve the host of %.120s: %s", g->url, d);
    case CURLE_COULDNT_CONNECT:
        return wl_error(err, WANDLER_ERR_NETWORK, "cannot connect to %.120s: %s", g->url, d);
    case CURLE_OPERATION_TIMEDOUT:
        return wl_error(err, WANDLER_ERR_NETWORK_TIMEOUT, "no connection to %.120s within %d ms: %s", g->url,
                        g->connect_timeout_ms, d);
#if LIBCURL_VERSION_NUM >= 0x080600
    case CURLE_TOO_LARGE:
        return wl_error(err, WANDLER_ERR_HTTP, "%.120s: the server's answer is too large: %s", g->url, d);
#endif
    case CURLE_OUT_OF_MEMORY:
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory in libcurl");
    case CURLE_URL_MALFORMAT:
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.150s' is not a valid URL: %s", g->url, d);
    case CURLE_WEIRD_SERVER_REPLY: /* a malformed status line or header (a size that is no number) */
        return wl_error(err, WANDLER_ERR_HTTP, "%.150s: the server's answer is malformed: %s", g->url, d);
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_RANGE_ERROR:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return wl_error(err, WANDLER_ERR_HTTP, "%.150s: %s", g->url, d);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return wl_error(err, WANDLER_ERR_NETWORK, "TLS with %.120s failed: %s", g->url, d);
    default:
        return wl_error(err, WANDLER_ERR_NETWORK, "the transfer of %.120s broke off: %s", g->url, d);
    }
}

int wl_http_fetch(const wl_http_get *g, wl_http_result *r, wandler_error *err)
{
    memset(r, 0, sizeof *r);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return wl_error(err, WANDLER_ERR_SYSTEM, "libcurl cannot start: %s", curl_easy_strerror(curl_init_rc));

    xfer x = {.g = g, .r = r, .last_data = wl_src_now_ms()};
    x.h.content_length = -1;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *tmp;
    CURL *e = curl_easy_init();
    CURLM *m = curl_multi_init();
    int rc = WANDLER_OK;
    if (!e || !m) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "libcurl cannot start a transfer");
        goto out;
    }
    char line[WL_HTTP_ETAG_MAX + 64];
    if (g->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %.200s", g->token);
        if (!(tmp = curl_slist_append(headers, line)))
            goto oom;
        headers = tmp;
    }
    if (g->if_none_match && *g->if_none_match) {
        snprintf(line, sizeof line, "If-None-Match: %s", g->if_none_match);
        if (!(tmp = curl_slist_append(headers, line)))
            goto oom;
        headers = tmp;
    }
    if (!(tmp = curl_slist_append(headers, "Accept-Encoding: identity")))
        goto oom;
    headers = tmp;

    curl_easy_setopt(e, CURLOPT_URL, g->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "wandler/" WANDLER_VERSION_STRING);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)g->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)BUFFER_BYTES);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    char range[32];
    if (g->offset > 0) {
        /* a plain Range header: we check the answer ourselves (206 from that offset, or 200 whole),
         * also after redirects, where CURLOPT_RESUME_FROM would refuse the redirect itself */
        snprintf(range, sizeof range, "%llu-", (unsigned long long)g->offset);
        curl_easy_setopt(e, CURLOPT_RANGE, range);
    }
    if (curl_multi_add_handle(m, e) != CURLM_OK)
        goto oom;

    wl_rate rate = {0};
    double last_tick = 0;
    int running = 1, stalled = 0;
    CURLcode result = CURLE_OK;
    while (running) {
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            rc = wl_error(err, WANDLER_ERR_NETWORK, "libcurl: %s", curl_multi_strerror(mc));
            break;
        }
        if (!running)
            break;
        double now = wl_src_now_ms();
        if (now - last_tick >= TICK_MS) {
            last_tick = now;
            uint64_t done = r->start + r->received;
            wl_rate_add(&rate, now, done);
            uint64_t total = r->total > done ? r->total : (r->total ? done : 0);
            if (g->tick && g->tick(g->ctx, done, total, wl_rate_get(&rate))) {
                x.cancelled = 1;
                break;
            }
        }
        if (g->stall_timeout_ms > 0 && now - x.last_data >= g->stall_timeout_ms) {
            stalled = 1;
            break;
        }
        curl_multi_poll(m, NULL, 0, TICK_MS, NULL);
    }
    if (rc == WANDLER_OK && !running) {
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE)
                result = msg->data.result;
    }
    curl_multi_remove_handle(m, e);
    if (rc != WANDLER_OK)
        goto out;

    if (x.not_modified) {
        r->not_modified = 1;
        r->received = 0;
    } else if (x.restart) {
        rc = WL_HTTP_RESTART;
    } else if (x.bad_size) {
        rc = wl_error(err, WANDLER_ERR_HTTP, "%.120s: the server announced an impossible size (over %llu "
                      "bytes, or not a number)", g->url, (unsigned long long)WL_HTTP_MAX_SIZE);
    } else if (x.cancelled) {
        rc = wl_error(err, WANDLER_ERR_CANCELLED, "the load was cancelled");
    } else if (stalled) {
        rc = wl_error(err, WANDLER_ERR_NETWORK_TIMEOUT, "no data from the server for %d ms (stalled) after %llu "
                      "bytes of %.120s", g->stall_timeout_ms, (unsigned long long)(r->start + r->received), g->url);
    } else if (x.write_errno) {
        rc = wl_write_error(err, x.write_errno, "cannot write", g->fd_path ? g->fd_path : "the download");
    } else if (result == CURLE_HTTP_RETURNED_ERROR) {
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        r->status = status;
        rc = status == 416 && g->offset > 0 ? WL_HTTP_RESTART : http_status_error(g, status, err);
    } else if (result == CURLE_OUT_OF_MEMORY && x.in_headers) {
        /* what libcurl before 8.6 answers to a header line past its limit (100 kB): a hostile or
         * broken server far more likely than a machine out of memory at that very moment */
        rc = wl_error(err, WANDLER_ERR_HTTP, "%.120s: the server sent a header too large to take (libcurl "
                      "accepts 100 kB)", g->url);
    } else if (result != CURLE_OK) {
        rc = curl_error(g, result, errbuf, err);
    } else if (r->status == 304) {
        r->not_modified = 1;
    } else if (r->status < 200 || r->status >= 300) {
        rc = http_status_error(g, r->status, err);
    } else if (g->tick) {
        uint64_t done = r->start + r->received;
        wl_rate_add(&rate, wl_src_now_ms(), done);
        g->tick(g->ctx, done, done, wl_rate_get(&rate));
    }
    goto out;
oom:
    rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
out:
    if (m)
        curl_multi_cleanup(m);
    if (e)
        curl_easy_cleanup(e);
    curl_slist_free_all(headers);
    return rc;
}
