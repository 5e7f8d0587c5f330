/* frame.c - packets on the wire, and the field writer and reader of payloads (see frame.h). */
#include "worker/frame.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <poll.h>

#include "util/error.h"

const char *wl_frame_type_name(int type)
{
    switch (type) {
    case WL_F_HELLO: return "HELLO";
    case WL_F_LOAD: return "LOAD";
    case WL_F_GENERATE: return "GENERATE";
    case WL_F_STREAM: return "STREAM";
    case WL_F_ABORT: return "ABORT";
    case WL_F_RESET: return "RESET";
    case WL_F_TERMINATE: return "TERMINATE";
    case WL_F_PING: return "PING";
    case WL_F_HELLO_ACK: return "HELLO_ACK";
    case WL_F_PROGRESS: return "PROGRESS";
    case WL_F_LOADED: return "LOADED";
    case WL_F_CHUNK: return "CHUNK";
    case WL_F_GENERATED: return "GENERATED";
    case WL_F_ERROR: return "ERROR";
    case WL_F_RESET_ACK: return "RESET_ACK";
    case WL_F_PONG: return "PONG";
    }
    return "UNKNOWN";
}

int wl_frame_type_valid(int t, int to_worker)
{
    return to_worker ? t >= WL_F_HELLO && t <= WL_F_PING : t >= WL_F_HELLO_ACK && t <= WL_F_PONG;
}

void wl_frame_free(wl_frame *f)
{
    free(f->data);
    f->data = NULL;
    f->len = 0;
}

static void put_header(unsigned char *h, int type, int more, uint64_t id)
{
    const uint32_t magic = WL_FRAME_MAGIC;
    const uint16_t t = (uint16_t)type, flags = more ? 1 : 0;
    memcpy(h, &magic, 4);
    memcpy(h + 4, &t, 2);
    memcpy(h + 6, &flags, 2);
    memcpy(h + 8, &id, 8);
}

int wl_frame_send(int fd, int type, uint64_t id, const void *payload, size_t len, wl_traffic *t,
                  wandler_error *err)
{
    if (len > WL_FRAME_MAX)
        return wl_error(err, WANDLER_ERR_PROTOCOL, "frame %s of %zu bytes exceeds the %u-byte limit",
                        wl_frame_type_name(type), len, WL_FRAME_MAX);
    const unsigned char *p = payload;
    size_t off = 0;
    do {
        size_t n = len - off < WL_PACKET_PAYLOAD ? len - off : WL_PACKET_PAYLOAD;
        unsigned char h[WL_PACKET_HEADER];
        put_header(h, type, off + n < len, id);
        struct iovec iov[2] = {{h, sizeof h}, {n ? (void *)(p + off) : NULL, n}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n ? 2 : 1};
        ssize_t rc;
        do
            rc = sendmsg(fd, &msg, MSG_NOSIGNAL);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            if (errno == EPIPE || errno == ECONNRESET)
                return wl_error(err, WANDLER_ERR_WORKER_CRASHED, "the peer closed the channel");
            return wl_error(err, WANDLER_ERR_IO, "sending frame %s: %s", wl_frame_type_name(type),
                            strerror(errno));
        }
        off += n;
    } while (off < len);
    if (t) {
        t->frames_sent++;
        t->bytes_sent += len + WL_PACKET_HEADER * (len / WL_PACKET_PAYLOAD + 1);
    }
    return WANDLER_OK;
}

/* Checks a packet's header; on success stores its fields. */
static int check_packet(const unsigned char *pkt, ssize_t n, int to_worker, uint16_t *type, uint16_t *flags,
                        uint64_t *id, wandler_error *err)
{
    if (n > WL_PACKET_HEADER + WL_PACKET_PAYLOAD)
        return wl_error(err, WANDLER_ERR_PROTOCOL, "packet of %zd bytes exceeds the %d-byte limit", n,
                        WL_PACKET_HEADER + WL_PACKET_PAYLOAD);
    if (n < WL_PACKET_HEADER)
        return wl_error(err, WANDLER_ERR_PROTOCOL, "packet of %zd bytes is shorter than its header", n);
    uint32_t magic;
    memcpy(&magic, pkt, 4);
    memcpy(type, pkt + 4, 2);
    memcpy(flags, pkt + 6, 2);
    memcpy(id, pkt + 8, 8);
    if (magic != WL_FRAME_MAGIC)
        return wl_error(err, WANDLER_ERR_PROTOCOL, "packet with bad magic 0x%08x", magic);
    if (!wl_frame_type_valid(*type, to_worker))
        return wl_error(err, WANDLER_ERR_PROTOCOL, "frame type %u is not valid in this direction", *type);
    if (*flags & ~1u)
        return wl_error(err, WANDLER_ERR_PROTOCOL, "frame %s has unknown flags 0x%x", wl_frame_type_name(*type),
                        *flags);
    return WANDLER_OK;
}

int wl_frame_rx_read(wl_frame_rx *rx, int fd, int to_worker, wl_frame *f, wl_traffic *t, wandler_error *err)
{
    memset(f, 0, sizeof *f);
    if (!rx->pkt && !(rx->pkt = malloc(WL_PACKET_HEADER + WL_PACKET_PAYLOAD)))
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    for (;;) {
        ssize_t n;
        do
            n = recv(fd, rx->pkt, WL_PACKET_HEADER + WL_PACKET_PAYLOAD, MSG_TRUNC | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return WANDLER_AGAIN;
        if (n < 0 && errno != ECONNRESET)
            return wl_error(err, WANDLER_ERR_IO, "receiving a frame: %s", strerror(errno));
        if (n <= 0) {
            if (rx->started)
                return wl_error(err, WANDLER_ERR_PROTOCOL, "the channel closed in the middle of a frame");
            return WANDLER_DONE;
        }
        uint16_t type = 0, flags = 0;
        uint64_t id = 0;
        int rc = check_packet(rx->pkt, n, to_worker, &type, &flags, &id, err);
        if (rc)
            return rc;
        if (!rx->started) {
            rx->cur.type = type;
            rx->cur.id = id;
            rx->started = 1;
        } else if (type != rx->cur.type || id != rx->cur.id) {
            return wl_error(err, WANDLER_ERR_PROTOCOL, "frame %s (id %llu) continued by a packet of %s (id %llu)",
                            wl_frame_type_name(rx->cur.type), (unsigned long long)rx->cur.id,
                            wl_frame_type_name(type), (unsigned long long)id);
        }
        size_t body = (size_t)n - WL_PACKET_HEADER;
        if (rx->body.len + body > WL_FRAME_MAX)
            return wl_error(err, WANDLER_ERR_PROTOCOL, "frame %s exceeds the %u-byte limit",
                            wl_frame_type_name(type), WL_FRAME_MAX);
        if (wl_buf_append(&rx->body, rx->pkt + WL_PACKET_HEADER, body) != 0)
            return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory receiving a frame");
        if (t)
            t->bytes_received += (uint64_t)n;
        if (flags & 1)
            continue;
        *f = rx->cur;
        f->len = rx->body.len;
        f->data = (unsigned char *)wl_buf_take(&rx->body);
        rx->started = 0;
        memset(&rx->cur, 0, sizeof rx->cur);
        if (!f->data)
            return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        if (t)
            t->frames_received++;
        return WANDLER_OK;
    }
}

void wl_frame_rx_free(wl_frame_rx *rx)
{
    wl_buf_free(&rx->body);
    free(rx->pkt);
    memset(rx, 0, sizeof *rx);
}

int wl_frame_recv(int fd, int to_worker, wl_frame *f, wl_traffic *t, wandler_error *err)
{
    wl_frame_rx rx = {0};
    int rc;
    while ((rc = wl_frame_rx_read(&rx, fd, to_worker, f, t, err)) == WANDLER_AGAIN) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            rc = wl_error(err, WANDLER_ERR_IO, "poll: %s", strerror(errno));
            break;
        }
    }
    wl_frame_rx_free(&rx);
    return rc;
}

/* ---- outbox ---- */

int wl_frame_tx_push(wl_frame_tx *tx, int type, uint64_t id, const void *payload, size_t len, wl_traffic *t,
                     wandler_error *err)
{
    if (len > WL_FRAME_MAX)
        return wl_error(err, WANDLER_ERR_PROTOCOL, "frame %s of %zu bytes exceeds the %u-byte limit",
                        wl_frame_type_name(type), len, WL_FRAME_MAX);
    const size_t before = tx->data.len;
    const unsigned char *p = payload;
    size_t off = 0;
    do {
        size_t n = len - off < WL_PACKET_PAYLOAD ? len - off : WL_PACKET_PAYLOAD;
        uint32_t plen = (uint32_t)(WL_PACKET_HEADER + n);
        unsigned char h[WL_PACKET_HEADER];
        put_header(h, type, off + n < len, id);
        if (wl_buf_append(&tx->data, &plen, 4) || wl_buf_append(&tx->data, h, sizeof h) ||
            (n && wl_buf_append(&tx->data, p + off, n))) {
            tx->data.len = before; /* drop the partial frame */
            return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory queueing a frame");
        }
        off += n;
    } while (off < len);
    if (t) {
        t->frames_sent++;
        t->bytes_sent += len + WL_PACKET_HEADER * (len / WL_PACKET_PAYLOAD + 1);
    }
    return WANDLER_OK;
}

int wl_frame_tx_flush(wl_frame_tx *tx, int fd, wandler_error *err)
{
    while (tx->sent < tx->data.len) {
        uint32_t plen;
        memcpy(&plen, tx->data.data + tx->sent, 4);
        ssize_t rc;
        do
            rc = send(fd, tx->data.data + tx->sent + 4, plen, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return WANDLER_AGAIN;
            if (errno == EPIPE || errno == ECONNRESET)
                return wl_error(err, WANDLER_ERR_WORKER_CRASHED, "the peer closed the channel");
            return wl_error(err, WANDLER_ERR_IO, "sending a frame: %s", strerror(errno));
        }
        tx->sent += 4 + plen;
    }
    wl_frame_tx_clear(tx);
    return WANDLER_OK;
}

int wl_frame_tx_pending(const wl_frame_tx *tx)
{
    return tx->sent < tx->data.len;
}

void wl_frame_tx_clear(wl_frame_tx *tx)
{
    wl_buf_clear(&tx->data);
    tx->sent = 0;
}

void wl_frame_tx_free(wl_frame_tx *tx)
{
    wl_buf_free(&tx->data);
    tx->sent = 0;
}

/* ---- writer ---- */

static void put(wl_fw *w, const void *p, size_t n)
{
    if (!w->failed && wl_buf_append(&w->b, p, n) != 0)
        w->failed = 1;
}

void wl_fw_u8(wl_fw *w, uint8_t v) { put(w, &v, 1); }
void wl_fw_u32(wl_fw *w, uint32_t v) { put(w, &v, 4); }
void wl_fw_i32(wl_fw *w, int32_t v) { put(w, &v, 4); }
void wl_fw_u64(wl_fw *w, uint64_t v) { put(w, &v, 8); }
void wl_fw_f32(wl_fw *w, float v) { put(w, &v, 4); }
void wl_fw_f64(wl_fw *w, double v) { put(w, &v, 8); }

void wl_fw_bytes(wl_fw *w, const char *s, size_t n)
{
    if (n >= UINT32_MAX) {
        w->failed = 1;
        return;
    }
    wl_fw_u32(w, (uint32_t)n);
    put(w, s, n);
}

void wl_fw_str(wl_fw *w, const char *s)
{
    if (!s)
        wl_fw_u32(w, UINT32_MAX);
    else
        wl_fw_bytes(w, s, strlen(s));
}

void wl_fw_free(wl_fw *w)
{
    wl_buf_free(&w->b);
    w->failed = 0;
}

/* ---- reader ---- */

void wl_fr_init(wl_fr *r, const wl_frame *f, wandler_error *err)
{
    memset(r, 0, sizeof *r);
    r->p = f->data;
    r->len = f->len;
    r->frame = wl_frame_type_name(f->type);
    r->err = err;
}

void wl_fr_bad(wl_fr *r, const char *field, const char *why)
{
    if (!r->failed)
        wl_error(r->err, WANDLER_ERR_PROTOCOL, "frame %s: field '%s' at byte %zu: %s", r->frame, field, r->pos, why);
    r->failed = 1;
}

static int take(wl_fr *r, void *out, size_t n, const char *field)
{
    if (r->failed || r->len - r->pos < n) {
        wl_fr_bad(r, field, "truncated");
        memset(out, 0, n);
        return -1;
    }
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

uint8_t wl_fr_u8(wl_fr *r, const char *field)
{
    uint8_t v;
    take(r, &v, 1, field);
    return v;
}

uint32_t wl_fr_u32(wl_fr *r, const char *field)
{
    uint32_t v;
    take(r, &v, 4, field);
    return v;
}

int32_t wl_fr_i32(wl_fr *r, const char *field)
{
    int32_t v;
    take(r, &v, 4, field);
    return v;
}

uint64_t wl_fr_u64(wl_fr *r, const char *field)
{
    uint64_t v;
    take(r, &v, 8, field);
    return v;
}

float wl_fr_f32(wl_fr *r, const char *field)
{
    float v;
    take(r, &v, 4, field);
    return v;
}

double wl_fr_f64(wl_fr *r, const char *field)
{
    double v;
    take(r, &v, 8, field);
    return v;
}

char *wl_fr_str(wl_fr *r, const char *field, int nullable, size_t *len)
{
    if (len)
        *len = 0;
    uint32_t n = wl_fr_u32(r, field);
    if (r->failed)
        return NULL;
    if (n == UINT32_MAX) {
        if (!nullable)
            wl_fr_bad(r, field, "is NULL");
        return NULL;
    }
    if (r->len - r->pos < n) {
        wl_fr_bad(r, field, "string runs past the end of the frame");
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        if (!r->failed)
            wl_error(r->err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
        r->failed = 1;
        return NULL;
    }
    memcpy(s, r->p + r->pos, n);
    s[n] = '\0';
    r->pos += n;
    if (len)
        *len = n;
    return s;
}

int wl_fr_end(wl_fr *r)
{
    if (!r->failed && r->pos != r->len)
        wl_fr_bad(r, "(end)", "unexpected bytes after the last field");
    return r->failed ? (r->err && r->err->code ? r->err->code : WANDLER_ERR_PROTOCOL) : WANDLER_OK;
}
