/* ref.c - parsing source strings (see ref.h). */
#include "source/ref.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "source/sha256.h"
#include "util/buf.h"
#include "util/error.h"

#define HF_DEFAULT "https://huggingface.co"
#define MAX_NAME 96     /* owner and repo names */
#define MAX_FILE 1024   /* the file path inside a repo */
#define MAX_REV 255

/* Sidecar files of a cache entry end with these; a file that does would collide with them. */
static const char *const RESERVED_SUFFIXES[] = {".meta", ".partial", ".lock", ".tmp"};

int wl_source_kind_of(const char *s)
{
    if (!s)
        return WL_SRC_LOCAL;
    if (!strncasecmp(s, "hf://", 5))
        return WL_SRC_HF;
    if (!strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8))
        return WL_SRC_URL;
    return WL_SRC_LOCAL;
}

const char *wl_hf_endpoint(char *buf, size_t cap)
{
    const char *e = getenv("WANDLER_HF_ENDPOINT");
    if (!e || !*e)
        e = getenv("HF_ENDPOINT");
    if (!e || !*e)
        e = HF_DEFAULT;
    snprintf(buf, cap, "%s", e);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '/')
        buf[--n] = '\0';
    return buf;
}

void wl_source_ref_free(wl_source_ref *ref)
{
    free(ref->url);
    free(ref->rel);
    free(ref->canonical);
    memset(ref, 0, sizeof *ref);
}

static int has_reserved_suffix(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof RESERVED_SUFFIXES / sizeof *RESERVED_SUFFIXES; i++) {
        size_t k = strlen(RESERVED_SUFFIXES[i]);
        if (n >= k && !strncasecmp(s + n - k, RESERVED_SUFFIXES[i], k))
            return 1;
    }
    return 0;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static int put_escaped(wl_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            if (wl_buf_append(b, &s[i], 1))
                return -1;
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (wl_buf_append(b, e, 3))
                return -1;
        }
    }
    return 0;
}

/* A name made of [A-Za-z0-9._-] that a file system takes as one path component. */
static void put_sanitized(wl_buf *b, const char *s, size_t n, size_t max, int lower, int *failed)
{
    if (n > max)
        n = max;
    size_t start = b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char o = isalnum(c) || c == '-' || c == '.' || c == '_' ? (char)(lower ? tolower(c) : c) : '_';
        if (wl_buf_append(b, &o, 1))
            *failed = 1;
    }
    if (b->data) {
        const char *name = b->data + start;
        size_t len = b->len - start;
        if (len == 0 || !strcmp(name, ".") || !strcmp(name, "..") || has_reserved_suffix(name, len))
            if (wl_buf_append(b, "_", 1))
                *failed = 1;
    } else if (wl_buf_append(b, "_", 1)) {
        *failed = 1;
    }
}

static int valid_repo_name(const char *s, size_t n)
{
    if (n == 0 || n > MAX_NAME || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return 0;
    }
    return memmem(s, n, "..", 2) == NULL;
}

static int valid_revision(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_REV || strstr(s, "..") || s[0] == '/' || s[n - 1] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_' && c != '/')
            return 0;
    }
    return 1;
}

/* The file path inside the repo: components that are not empty, ".", "..", and no control
 * characters. */
static const char *bad_file_path(const char *s, size_t n)
{
    if (n == 0)
        return "the file name is missing";
    if (n > MAX_FILE)
        return "the file path is too long";
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\'))
            return "the file path holds a control character or a backslash";
        if (i == n || s[i] == '/') {
            size_t len = i - start;
            if (len == 0)
                return "the file path has an empty component";
            if ((len == 1 && s[start] == '.') || (len == 2 && s[start] == '.' && s[start + 1] == '.'))
                return "the file path has a '.' or '..' component";
            start = i + 1;
        }
    }
    if (has_reserved_suffix(s, n))
        return "the file name ends with .meta, .partial, .lock or .tmp, which the cache reserves";
    return NULL;
}

static int oom(wandler_error *err)
{
    return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
}

/* Splits a URL into its lowercase host and port (0 = the scheme's default). */
static int url_host(const char *url, char **host, long *port, char **path, char **norm)
{
    CURLU *u = curl_url();
    if (!u)
        return -1;
    int rc = -1;
    char *h = NULL, *p = NULL, *pa = NULL, *n = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, &p, 0) != CURLUE_OK)
        p = NULL;
    if (path && curl_url_get(u, CURLUPART_PATH, &pa, CURLU_URLDECODE) != CURLUE_OK)
        pa = NULL;
    if (norm && curl_url_get(u, CURLUPART_URL, &n, 0) != CURLUE_OK)
        goto out;
    for (char *c = h; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    *host = strdup(h);
    *port = p ? strtol(p, NULL, 10) : 0;
    if (path)
        *path = pa ? strdup(pa) : strdup("/");
    if (norm)
        *norm = strdup(n);
    rc = (*host && (!path || *path) && (!norm || *norm)) ? 0 : -2;
out:
    curl_free(h);
    curl_free(p);
    curl_free(pa);
    curl_free(n);
    curl_url_cleanup(u);
    return rc;
}

static int parse_url(const char *source, wl_source_ref *ref, wandler_error *err)
{
    char *host = NULL, *path = NULL, *norm = NULL;
    long port = 0;
    int r = url_host(source, &host, &port, &path, &norm);
    if (r == -2) {
        free(host), free(path), free(norm);
        return oom(err);
    }
    if (r != 0)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s' is not a valid URL", source);
    if (!host[0]) {
        free(host), free(path), free(norm);
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s' has no host", source);
    }
    /* url/HOST[_PORT]/HASH/NAME: the hash of the whole URL tells apart files of the same name */
    char sha[WL_SHA256_HEX];
    if (wl_sha256_hex(norm, strlen(norm), sha) != 0) {
        free(host), free(path), free(norm);
        return wl_error(err, WANDLER_ERR_INTERNAL, "libcrypto cannot hash a URL");
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    wl_buf b = {0};
    int failed = wl_buf_puts(&b, "url/") != 0;
    put_sanitized(&b, host, strlen(host), 128, 1, &failed);
    if (port) {
        char ps[24];
        snprintf(ps, sizeof ps, "_%ld", port);
        failed |= wl_buf_puts(&b, ps) != 0;
    }
    failed |= wl_buf_puts(&b, "/") != 0 || wl_buf_append(&b, sha, 16) != 0 || wl_buf_puts(&b, "/") != 0;
    if (*base)
        put_sanitized(&b, base, strlen(base), 200, 0, &failed);
    else
        failed |= wl_buf_puts(&b, "download") != 0;

    char ep[512];
    char *ep_host = NULL;
    long ep_port = 0;
    if (url_host(wl_hf_endpoint(ep, sizeof ep), &ep_host, &ep_port, NULL, NULL) == 0)
        ref->send_token = !strcmp(ep_host, host) && ep_port == port;
    free(ep_host);
    ref->kind = WL_SRC_URL;
    ref->url = strdup(norm);
    ref->canonical = strdup(norm);
    ref->rel = failed ? NULL : wl_buf_take(&b);
    wl_buf_free(&b);
    free(host), free(path), free(norm);
    if (!ref->url || !ref->canonical || !ref->rel) {
        wl_source_ref_free(ref);
        return oom(err);
    }
    return WANDLER_OK;
}

#define HF_FORM "the form is hf://OWNER/REPO/FILE.gguf or hf://OWNER/REPO/FILE.gguf@REVISION"

static int parse_hf(const char *source, wl_source_ref *ref, wandler_error *err)
{
    const char *s = source + 5;
    const char *slash1 = strchr(s, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    if (!slash1 || !slash2)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s' names no file: " HF_FORM, source);
    const char *owner = s, *repo = slash1 + 1, *file = slash2 + 1;
    size_t owner_n = (size_t)(slash1 - s), repo_n = (size_t)(slash2 - repo);
    if (!valid_repo_name(owner, owner_n) || !valid_repo_name(repo, repo_n))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "'%.200s': OWNER and REPO may hold letters, digits, '-', '_' and '.' only (" HF_FORM ")",
                        source);
    const char *at = strrchr(file, '@');
    size_t file_n = at ? (size_t)(at - file) : strlen(file);
    char rev[MAX_REV + 1];
    snprintf(rev, sizeof rev, "%s", at ? at + 1 : "main");
    if (at && strlen(at + 1) > MAX_REV)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s': the revision is too long", source);
    if (!valid_revision(rev))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "'%.200s': '%.100s' is not a revision (a branch, tag or commit)", source, rev);
    const char *why = bad_file_path(file, file_n);
    if (why)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s': %s (" HF_FORM ")", source, why);

    char ep[512];
    wl_hf_endpoint(ep, sizeof ep);
    wl_buf url = {0}, rel = {0}, can = {0};
    int failed = 0;
    /* URL: ENDPOINT/OWNER/REPO/resolve/REV/FILE, each component escaped */
    failed |= wl_buf_puts(&url, ep) || wl_buf_puts(&url, "/") || wl_buf_append(&url, owner, owner_n) ||
              wl_buf_puts(&url, "/") || wl_buf_append(&url, repo, repo_n) || wl_buf_puts(&url, "/resolve/") ||
              put_escaped(&url, rev, strlen(rev)) || wl_buf_puts(&url, "/");
    for (size_t i = 0, start = 0; i <= file_n && !failed; i++) {
        if (i == file_n || file[i] == '/') {
            failed |= put_escaped(&url, file + start, i - start) || (i < file_n && wl_buf_puts(&url, "/"));
            start = i + 1;
        }
    }
    /* cache: hf/OWNER/REPO/REV/FILE; a revision's slashes become %2F */
    failed |= wl_buf_puts(&rel, "hf/") || wl_buf_append(&rel, owner, owner_n) || wl_buf_puts(&rel, "/") ||
              wl_buf_append(&rel, repo, repo_n) || wl_buf_puts(&rel, "/");
    for (const char *c = rev; *c && !failed; c++)
        failed |= *c == '/' ? wl_buf_puts(&rel, "%2F") : wl_buf_append(&rel, c, 1);
    failed |= wl_buf_puts(&rel, "/") || wl_buf_append(&rel, file, file_n);
    failed |= wl_buf_puts(&can, "hf://") || wl_buf_append(&can, owner, owner_n) || wl_buf_puts(&can, "/") ||
              wl_buf_append(&can, repo, repo_n) || wl_buf_puts(&can, "/") || wl_buf_append(&can, file, file_n) ||
              wl_buf_puts(&can, "@") || wl_buf_puts(&can, rev);
    if (failed) {
        wl_buf_free(&url), wl_buf_free(&rel), wl_buf_free(&can);
        return oom(err);
    }
    ref->kind = WL_SRC_HF;
    ref->url = wl_buf_take(&url);
    ref->rel = wl_buf_take(&rel);
    ref->canonical = wl_buf_take(&can);
    ref->send_token = 1;
    ref->immutable = strlen(rev) == 40 && strspn(rev, "0123456789abcdef") == 40;
    if (!ref->url || !ref->rel || !ref->canonical) {
        wl_source_ref_free(ref);
        return oom(err);
    }
    return WANDLER_OK;
}

int wl_source_ref_parse(const char *source, wl_source_ref *ref, wandler_error *err)
{
    memset(ref, 0, sizeof *ref);
    if (!source || !*source)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "the source is empty");
    for (const char *c = source; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "the source holds a control character");
    switch (wl_source_kind_of(source)) {
    case WL_SRC_HF:
        return parse_hf(source, ref, err);
    case WL_SRC_URL:
        return parse_url(source, ref, err);
    }
    return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "'%.200s' is not a URL or hf:// source", source);
}
