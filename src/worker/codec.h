/* codec.h - the payloads of the worker protocol's frames: one encoder and one decoder per kind
 * of payload, shared by both ends. Decoders validate every field (ranges, enums, UTF-8 is left
 * to request validation) and fail with WANDLER_ERR_PROTOCOL naming the frame and field. */
#ifndef WL_WORKER_CODEC_H
#define WL_WORKER_CODEC_H

#include "source/source.h"
#include "worker/frame.h"
#include "wandler.h"

/* HELLO and HELLO_ACK */
typedef struct wl_hello {
    uint32_t protocol;
    uint32_t library;  /* (major << 16) | (minor << 8) | patch */
    uint32_t pid;      /* HELLO_ACK only */
} wl_hello;

void wl_enc_hello(wl_fw *w, const wl_hello *h, int ack);
int wl_dec_hello(const wl_frame *f, wl_hello *h, wandler_error *err);

/* LOAD: the source (a path, URL or hf://) and how to load it */
typedef struct wl_load_msg {
    char *path;          /* the source; owned after decoding */
    int32_t n_threads;
    int32_t context_length;
    char *sha256;        /* expected SHA-256 (64 hex digits) or NULL; owned after decoding */
    int32_t connect_timeout_ms, stall_timeout_ms; /* >= 0; 0 = the defaults */
} wl_load_msg;

/* src may be NULL (no expected SHA-256, default timeouts). */
void wl_enc_load_src(wl_fw *w, const char *path, int n_threads, int context_length, const wl_source_opts *src);
void wl_enc_load(wl_fw *w, const char *path, int n_threads, int context_length);
int wl_dec_load(const wl_frame *f, wl_load_msg *m, wandler_error *err);
void wl_load_msg_free(wl_load_msg *m);

/* PROGRESS */
typedef struct wl_progress_msg {
    uint32_t stage;
    uint64_t done, total;  /* total 0 = unknown (a download without a size) */
    double bytes_per_s;    /* DOWNLOAD: the transfer speed; finite, >= 0 */
} wl_progress_msg;

void wl_enc_progress(wl_fw *w, const wl_progress_msg *p);
int wl_dec_progress(const wl_frame *f, wl_progress_msg *p, wandler_error *err);

/* LOADED: what the host needs to know of the loaded model. Strings owned after decoding. */
typedef struct wl_model_facts {
    char *architecture, *name, *isa;
    uint64_t file_bytes, n_params;
    int32_t n_vocab, n_ctx_train, n_ctx, n_embd, n_layer, n_head, n_head_kv, n_threads;
    double load_ms;
    uint64_t ctx_bytes;          /* KV cache + scratch */
    double resident_before;      /* fraction of the file's pages in memory before the load */
    char *path;                  /* the local file (a remote source's cached file); NULL = the source */
    int32_t cache;               /* WANDLER_CACHE_* */
    uint64_t bytes_downloaded, bytes_reused;
} wl_model_facts;

void wl_enc_facts(wl_fw *w, const wl_model_facts *m);
int wl_dec_facts(const wl_frame *f, wl_model_facts *m, wandler_error *err);
void wl_model_facts_free(wl_model_facts *m);

/* GENERATE / STREAM: a request. Decoded strings are owned by the wl_request_msg. */
typedef struct wl_request_msg {
    wandler_request req;
    void *block;        /* every string and array of req (one allocation) */
} wl_request_msg;

void wl_enc_request(wl_fw *w, const wandler_request *r);
int wl_dec_request(const wl_frame *f, wl_request_msg *m, wandler_error *err);
void wl_request_msg_free(wl_request_msg *m);

/* CHUNK */
void wl_enc_chunk(wl_fw *w, int part_type, const char *text, size_t len);
/* *text is malloc'd (the caller frees it). */
int wl_dec_chunk(const wl_frame *f, int *part_type, char **text, size_t *len, wandler_error *err);

/* GENERATED: the end of a request (text and reasoning are "" for STREAM, the whole answer for
 * GENERATE) */
typedef struct wl_generated_msg {
    int finish_reason;
    wandler_usage usage;
    wandler_timings timings;
    char *text;   /* owned after decoding */
    size_t text_len;
    char *reasoning; /* owned after decoding */
    size_t reasoning_len;
} wl_generated_msg;

void wl_enc_generated(wl_fw *w, const wl_generated_msg *g);
int wl_dec_generated(const wl_frame *f, wl_generated_msg *g, wandler_error *err);

/* ERROR */
void wl_enc_error(wl_fw *w, const wandler_error *e);
int wl_dec_error(const wl_frame *f, wandler_error *e, wandler_error *err);

/* PING / PONG */
void wl_enc_ping(wl_fw *w, uint64_t stamp);
int wl_dec_ping(const wl_frame *f, uint64_t *stamp, wandler_error *err);

/* Frames with no payload (ABORT, RESET, TERMINATE, RESET_ACK): fails when bytes are present. */
int wl_dec_empty(const wl_frame *f, wandler_error *err);

#endif
