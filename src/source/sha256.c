/* sha256.c - SHA-256 through libcrypto's EVP interface (see sha256.h). */
#include "source/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "source/internal.h"
#include "util/error.h"

#define CHUNK (1u << 20)

static void to_hex(const unsigned char *md, char hex[WL_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

int wl_sha256_hex(const void *data, size_t n, char hex[WL_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    hex[0] = '\0';
    if (!EVP_Digest(data, n, md, &len, EVP_sha256(), NULL) || len != 32)
        return -1;
    to_hex(md, hex);
    return 0;
}

int wl_sha256_parse(const char *s, char out[WL_SHA256_HEX])
{
    char tmp[WL_SHA256_HEX];
    if (out)
        out[0] = '\0';
    if (!s)
        return 0;
    if (!strncmp(s, "W/", 2))
        s += 2;
    if (!strncmp(s, "sha256:", 7))
        s += 7;
    size_t n = strlen(s);
    if (n == 66 && s[0] == '"' && s[65] == '"') {
        s++;
        n = 64;
    }
    if (n != 64)
        return 0;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return 0;
        tmp[i] = (char)tolower((unsigned char)s[i]);
    }
    tmp[64] = '\0';
    if (out)
        memcpy(out, tmp, sizeof tmp);
    return 1;
}

int wl_sha256_file(const char *path, int (*tick)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                   char hex[WL_SHA256_HEX], wandler_error *err)
{
    hex[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wl_error(err, WANDLER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return wl_error(err, WANDLER_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    const uint64_t total = (uint64_t)st.st_size;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    unsigned char *buf = malloc(CHUNK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = WANDLER_OK;
    if (!buf || !md) {
        rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory hashing %s", path);
        goto out;
    }
    if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        rc = wl_error(err, WANDLER_ERR_INTERNAL, "libcrypto cannot start a SHA-256");
        goto out;
    }
    uint64_t done = 0;
    double last = wl_src_now_ms();
    if (tick && tick(ctx, 0, total)) {
        rc = wl_error(err, WANDLER_ERR_CANCELLED, "the load was cancelled");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = wl_error(err, WANDLER_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (!EVP_DigestUpdate(md, buf, (size_t)n)) {
            rc = wl_error(err, WANDLER_ERR_INTERNAL, "libcrypto failed hashing %s", path);
            goto out;
        }
        done += (uint64_t)n;
        double now = wl_src_now_ms();
        if (tick && now - last >= 100) {
            last = now;
            if (tick(ctx, done, total > done ? total : done)) {
                rc = wl_error(err, WANDLER_ERR_CANCELLED, "the load was cancelled");
                goto out;
            }
        }
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_DigestFinal_ex(md, out, &len) || len != 32) {
        rc = wl_error(err, WANDLER_ERR_INTERNAL, "libcrypto failed hashing %s", path);
        goto out;
    }
    to_hex(out, hex);
    if (tick && tick(ctx, done, done))
        rc = wl_error(err, WANDLER_ERR_CANCELLED, "the load was cancelled");
out:
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    return rc;
}
