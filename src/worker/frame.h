/* frame.h - the worker protocol's frames and their transport over a SOCK_SEQPACKET socket.
 *
 * One protocol for thread and process workers. A frame is a type, a 64-bit request id and a
 * payload of fields. On the wire a frame is one or more packets (SOCK_SEQPACKET keeps packet
 * boundaries), each:
 *
 *   u32 magic "WNDL" | u16 type | u16 flags (bit 0: more packets of this frame follow) | u64 id
 *   | payload bytes (at most WL_PACKET_PAYLOAD per packet)
 *
 * so frames larger than a socket buffer (long prompts) travel in pieces and are put back
 * together by the receiver, up to WL_FRAME_MAX bytes. Every received packet is checked (size,
 * magic, type, continuation of the same frame); a bad one is WANDLER_ERR_PROTOCOL, never a crash.
 *
 * Payload fields are little-endian fixed-size numbers and length-prefixed byte strings
 * (u32 length | bytes), written with wl_fw_* and read with wl_fr_*, which check every read
 * against the bytes left. */
#ifndef WL_WORKER_FRAME_H
#define WL_WORKER_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "wandler.h"

#define WL_PROTOCOL_VERSION 2 /* 2: sources (LOAD sha256 and timeouts, PROGRESS speed, LOADED cache) */
#define WL_FRAME_MAGIC 0x4C444E57u /* "WNDL" little-endian */
#define WL_PACKET_HEADER 16
#define WL_PACKET_PAYLOAD (32 * 1024)
#define WL_FRAME_MAX (64u * 1024 * 1024)

enum wl_frame_type {
    /* host -> worker */
    WL_F_HELLO = 1,     /* u32 protocol version, u32 library version */
    WL_F_LOAD = 2,      /* str source, i32 n_threads, i32 context_length, str|null sha256,
                           i32 connect_timeout_ms, i32 stall_timeout_ms */
    WL_F_GENERATE = 3,  /* request (see codec.h); the answer comes whole in GENERATED */
    WL_F_STREAM = 4,    /* request; the answer comes as CHUNKs, then GENERATED */
    WL_F_ABORT = 5,     /* (id) stop that request */
    WL_F_RESET = 6,     /* forget the KV cache */
    WL_F_TERMINATE = 7, /* end the worker loop */
    WL_F_PING = 8,      /* u64 host timestamp, answered by PONG at once */
    /* worker -> host */
    WL_F_HELLO_ACK = 16,/* u32 protocol version, u32 library version, u32 pid */
    WL_F_PROGRESS = 17, /* load progress: u32 stage, u64 done, u64 total, f64 bytes_per_s */
    WL_F_LOADED = 18,   /* model facts (see codec.h) */
    WL_F_CHUNK = 19,    /* (id) u8 part type, str text */
    WL_F_GENERATED = 20,/* (id) finish, usage, timings, str text (GENERATE only; "" for STREAM) */
    WL_F_ERROR = 21,    /* (id; 0 for the load) i32 code, str message */
    WL_F_RESET_ACK = 22,
    WL_F_PONG = 23,     /* u64 the PING's timestamp */
};

/* "LOAD", "CHUNK", ... or "UNKNOWN". */
const char *wl_frame_type_name(int type);
/* 1 when t is a type a host may send (to_worker) or a worker may send (!to_worker). */
int wl_frame_type_valid(int t, int to_worker);

typedef struct wl_frame {
    int type;
    uint64_t id;
    unsigned char *data; /* payload (malloc'd, owned by the frame) */
    size_t len;
} wl_frame;

void wl_frame_free(wl_frame *f);

/* Traffic counters of one end of a channel. */
typedef struct wl_traffic {
    uint64_t frames_sent, bytes_sent;
    uint64_t frames_received, bytes_received;
} wl_traffic;

/* Sends one frame (split into packets as needed). Blocks while the peer's buffer is full (that
 * is the back-pressure of a slow reader). The caller serializes senders on one fd.
 * Errors: PROTOCOL (payload larger than WL_FRAME_MAX), WORKER_CRASHED (the peer is gone:
 * EPIPE/ECONNRESET), IO. */
int wl_frame_send(int fd, int type, uint64_t id, const void *payload, size_t len, wl_traffic *t,
                  wandler_error *err);

/* Receives one whole frame into *f (the caller frees it with wl_frame_free). Blocks until one
 * arrives. Returns WANDLER_OK, WANDLER_DONE at end of stream (the peer closed it), or
 * PROTOCOL (bad packet: the message says why), OUT_OF_MEMORY, IO. `to_worker` says which
 * direction's frame types are acceptable. */
int wl_frame_recv(int fd, int to_worker, wl_frame *f, wl_traffic *t, wandler_error *err);

/* ---- non-blocking ends (the host's I/O thread) ---- */

/* Reassembles frames from packets as they arrive on a non-blocking socket. */
typedef struct wl_frame_rx {
    wl_frame cur;   /* the frame being assembled */
    wl_buf body;
    int started;
    unsigned char *pkt; /* one packet's buffer */
} wl_frame_rx;

/* Reads the packets available now. Returns WANDLER_OK with a whole frame in *f (the caller
 * frees it), WANDLER_AGAIN when no whole frame is available yet, WANDLER_DONE at end of stream,
 * or PROTOCOL / OUT_OF_MEMORY / IO. */
int wl_frame_rx_read(wl_frame_rx *rx, int fd, int to_worker, wl_frame *f, wl_traffic *t,
                     wandler_error *err);
void wl_frame_rx_free(wl_frame_rx *rx);

/* Packets waiting to be written to a non-blocking socket, in order. */
typedef struct wl_frame_tx {
    wl_buf data;     /* packets back to back: u32 length | packet */
    size_t sent;     /* bytes of data already written */
} wl_frame_tx;

/* Queues a frame (as its packets). Errors: PROTOCOL (too large), OUT_OF_MEMORY. */
int wl_frame_tx_push(wl_frame_tx *tx, int type, uint64_t id, const void *payload, size_t len,
                     wl_traffic *t, wandler_error *err);
/* Writes what the socket takes now. Returns WANDLER_OK when everything went out, WANDLER_AGAIN
 * when some is left (wait for POLLOUT), WORKER_CRASHED when the peer is gone, IO. */
int wl_frame_tx_flush(wl_frame_tx *tx, int fd, wandler_error *err);
int wl_frame_tx_pending(const wl_frame_tx *tx);
void wl_frame_tx_clear(wl_frame_tx *tx);
void wl_frame_tx_free(wl_frame_tx *tx);

/* ---- payload writing ---- */

typedef struct wl_fw {
    wl_buf b;
    int failed; /* out of memory: the frame is unusable */
} wl_fw;

void wl_fw_u8(wl_fw *w, uint8_t v);
void wl_fw_u32(wl_fw *w, uint32_t v);
void wl_fw_i32(wl_fw *w, int32_t v);
void wl_fw_u64(wl_fw *w, uint64_t v);
void wl_fw_f32(wl_fw *w, float v);
void wl_fw_f64(wl_fw *w, double v);
void wl_fw_str(wl_fw *w, const char *s);            /* NULL writes as length 0xFFFFFFFF */
void wl_fw_bytes(wl_fw *w, const char *s, size_t n);
void wl_fw_free(wl_fw *w);

/* ---- payload reading ---- */

typedef struct wl_fr {
    const unsigned char *p;
    size_t len, pos;
    const char *frame;  /* frame type name, for messages */
    const char *field;  /* the field being read, for messages */
    int failed;         /* a read ran past the end or a value was invalid */
    wandler_error *err; /* filled with the first failure */
} wl_fr;

void wl_fr_init(wl_fr *r, const wl_frame *f, wandler_error *err);
uint8_t wl_fr_u8(wl_fr *r, const char *field);
uint32_t wl_fr_u32(wl_fr *r, const char *field);
int32_t wl_fr_i32(wl_fr *r, const char *field);
uint64_t wl_fr_u64(wl_fr *r, const char *field);
float wl_fr_f32(wl_fr *r, const char *field);
double wl_fr_f64(wl_fr *r, const char *field);
/* A string field as a NUL-terminated copy (malloc'd; the caller frees it), NULL when the field
 * was written as NULL (allowed only when nullable) or on failure. *len gets its length. */
char *wl_fr_str(wl_fr *r, const char *field, int nullable, size_t *len);
/* Marks the reader failed with a message about the current field (for range checks). */
void wl_fr_bad(wl_fr *r, const char *field, const char *why);
/* Finishes reading: fails when bytes are left over. Returns WANDLER_OK or PROTOCOL. */
int wl_fr_end(wl_fr *r);

#endif
