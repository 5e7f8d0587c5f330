/* codec.c - payload encoders and decoders (see codec.h). */
#include "worker/codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/gen.h"
#include "util/error.h"

/* ---- HELLO ---- */

void wl_enc_hello(wl_fw *w, const wl_hello *h, int ack)
{
    wl_fw_u32(w, h->protocol);
    wl_fw_u32(w, h->library);
    if (ack)
        wl_fw_u32(w, h->pid);
}

int wl_dec_hello(const wl_frame *f, wl_hello *h, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    memset(h, 0, sizeof *h);
    h->protocol = wl_fr_u32(&r, "protocol");
    h->library = wl_fr_u32(&r, "library");
    if (f->type == WL_F_HELLO_ACK)
        h->pid = wl_fr_u32(&r, "pid");
    return wl_fr_end(&r);
}

/* ---- LOAD ---- */

void wl_enc_load_src(wl_fw *w, const char *path, int n_threads, int context_length, const wl_source_opts *src)
{
    wl_fw_str(w, path);
    wl_fw_i32(w, n_threads);
    wl_fw_i32(w, context_length);
    wl_fw_str(w, src ? src->sha256 : NULL);
    wl_fw_i32(w, src ? src->connect_timeout_ms : 0);
    wl_fw_i32(w, src ? src->stall_timeout_ms : 0);
}

void wl_enc_load(wl_fw *w, const char *path, int n_threads, int context_length)
{
    wl_enc_load_src(w, path, n_threads, context_length, NULL);
}

int wl_dec_load(const wl_frame *f, wl_load_msg *m, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    memset(m, 0, sizeof *m);
    size_t len;
    m->path = wl_fr_str(&r, "path", 0, &len);
    if (m->path && (len == 0 || strlen(m->path) != len))
        wl_fr_bad(&r, "path", "empty or holds a NUL byte");
    m->n_threads = wl_fr_i32(&r, "n_threads");
    if (m->n_threads < 0 || m->n_threads > 256)
        wl_fr_bad(&r, "n_threads", "out of range [0, 256]");
    m->context_length = wl_fr_i32(&r, "context_length");
    if (m->context_length < 0 || m->context_length > (1 << 20))
        wl_fr_bad(&r, "context_length", "out of range [0, 1048576]");
    m->sha256 = wl_fr_str(&r, "sha256", 1, NULL);
    if (m->sha256 && !wl_source_sha256_valid(m->sha256, NULL))
        wl_fr_bad(&r, "sha256", "not 64 hex digits");
    m->connect_timeout_ms = wl_fr_i32(&r, "connect_timeout_ms");
    if (m->connect_timeout_ms < 0)
        wl_fr_bad(&r, "connect_timeout_ms", "negative");
    m->stall_timeout_ms = wl_fr_i32(&r, "stall_timeout_ms");
    if (m->stall_timeout_ms < 0)
        wl_fr_bad(&r, "stall_timeout_ms", "negative");
    int rc = wl_fr_end(&r);
    if (rc)
        wl_load_msg_free(m);
    return rc;
}

void wl_load_msg_free(wl_load_msg *m)
{
    free(m->path);
    free(m->sha256);
    m->path = m->sha256 = NULL;
}

/* ---- PROGRESS ---- */

void wl_enc_progress(wl_fw *w, const wl_progress_msg *p)
{
    wl_fw_u32(w, p->stage);
    wl_fw_u64(w, p->done);
    wl_fw_u64(w, p->total);
    wl_fw_f64(w, p->bytes_per_s);
}

int wl_dec_progress(const wl_frame *f, wl_progress_msg *p, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    p->stage = wl_fr_u32(&r, "stage");
    if (p->stage < WANDLER_STAGE_OPEN || p->stage > WANDLER_STAGE_VERIFY)
        wl_fr_bad(&r, "stage", "unknown stage");
    p->done = wl_fr_u64(&r, "done");
    p->total = wl_fr_u64(&r, "total");
    if (p->total && p->done > p->total) /* total 0: a download of unknown size */
        wl_fr_bad(&r, "done", "larger than total");
    p->bytes_per_s = wl_fr_f64(&r, "bytes_per_s");
    if (!(p->bytes_per_s >= 0 && p->bytes_per_s < 1e300))
        wl_fr_bad(&r, "bytes_per_s", "negative or not finite");
    return wl_fr_end(&r);
}

/* ---- LOADED ---- */

void wl_enc_facts(wl_fw *w, const wl_model_facts *m)
{
    wl_fw_str(w, m->architecture);
    wl_fw_str(w, m->name);
    wl_fw_str(w, m->isa);
    wl_fw_u64(w, m->file_bytes);
    wl_fw_u64(w, m->n_params);
    const int32_t ints[] = {m->n_vocab, m->n_ctx_train, m->n_ctx, m->n_embd,
                            m->n_layer, m->n_head, m->n_head_kv, m->n_threads};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        wl_fw_i32(w, ints[i]);
    wl_fw_f64(w, m->load_ms);
    wl_fw_u64(w, m->ctx_bytes);
    wl_fw_f64(w, m->resident_before);
    wl_fw_str(w, m->path);
    wl_fw_i32(w, m->cache);
    wl_fw_u64(w, m->bytes_downloaded);
    wl_fw_u64(w, m->bytes_reused);
}

static int32_t positive(wl_fr *r, const char *field)
{
    int32_t v = wl_fr_i32(r, field);
    if (v < 1)
        wl_fr_bad(r, field, "not positive");
    return v;
}

int wl_dec_facts(const wl_frame *f, wl_model_facts *m, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    memset(m, 0, sizeof *m);
    m->architecture = wl_fr_str(&r, "architecture", 0, NULL);
    m->name = wl_fr_str(&r, "name", 0, NULL);
    m->isa = wl_fr_str(&r, "isa", 0, NULL);
    m->file_bytes = wl_fr_u64(&r, "file_bytes");
    m->n_params = wl_fr_u64(&r, "n_params");
    m->n_vocab = positive(&r, "n_vocab");
    m->n_ctx_train = positive(&r, "n_ctx_train");
    m->n_ctx = positive(&r, "n_ctx");
    m->n_embd = positive(&r, "n_embd");
    m->n_layer = positive(&r, "n_layer");
    m->n_head = positive(&r, "n_head");
    m->n_head_kv = positive(&r, "n_head_kv");
    m->n_threads = positive(&r, "n_threads");
    m->load_ms = wl_fr_f64(&r, "load_ms");
    if (!(m->load_ms >= 0))
        wl_fr_bad(&r, "load_ms", "negative or NaN");
    m->ctx_bytes = wl_fr_u64(&r, "ctx_bytes");
    m->resident_before = wl_fr_f64(&r, "resident_before");
    if (!(m->resident_before >= 0 && m->resident_before <= 1))
        wl_fr_bad(&r, "resident_before", "outside [0, 1]");
    size_t path_len;
    m->path = wl_fr_str(&r, "path", 1, &path_len);
    if (m->path && (path_len == 0 || strlen(m->path) != path_len))
        wl_fr_bad(&r, "path", "empty or holds a NUL byte");
    m->cache = wl_fr_i32(&r, "cache");
    if (m->cache < WANDLER_CACHE_NONE || m->cache > WANDLER_CACHE_MISS)
        wl_fr_bad(&r, "cache", "not a cache status");
    m->bytes_downloaded = wl_fr_u64(&r, "bytes_downloaded");
    m->bytes_reused = wl_fr_u64(&r, "bytes_reused");
    int rc = wl_fr_end(&r);
    if (rc)
        wl_model_facts_free(m);
    return rc;
}

void wl_model_facts_free(wl_model_facts *m)
{
    free(m->architecture);
    free(m->name);
    free(m->isa);
    free(m->path);
    m->architecture = m->name = m->isa = m->path = NULL;
}

/* ---- GENERATE / STREAM ---- */

void wl_enc_request(wl_fw *w, const wandler_request *q)
{
    wl_fw_str(w, q->prompt);
    wl_fw_str(w, q->system);
    wl_fw_u32(w, (uint32_t)q->n_messages);
    for (size_t i = 0; i < q->n_messages; i++) {
        wl_fw_str(w, q->messages[i].role);
        wl_fw_str(w, q->messages[i].content);
    }
    wl_fw_i32(w, q->chat);
    wl_fw_str(w, q->chat_template);
    wl_fw_i32(w, q->add_bos);
    wl_fw_u32(w, (uint32_t)q->n_stop);
    for (size_t i = 0; i < q->n_stop; i++)
        wl_fw_str(w, q->stop[i]);
    wl_fw_i32(w, q->split_reasoning);
    wl_fw_str(w, q->reasoning_open);
    wl_fw_str(w, q->reasoning_close);
    wl_fw_i32(w, q->max_tokens);
    wl_fw_f32(w, q->temperature);
    wl_fw_i32(w, q->top_k);
    wl_fw_f32(w, q->top_p);
    wl_fw_f32(w, q->min_p);
    wl_fw_f32(w, q->repetition_penalty);
    wl_fw_i32(w, q->repetition_last_n);
    wl_fw_f32(w, q->frequency_penalty);
    wl_fw_f32(w, q->presence_penalty);
    wl_fw_u64(w, q->seed);
    wl_fw_i32(w, q->timeout_ms);
    wl_fw_i32(w, q->ignore_eos);
}

/* A string field without NUL bytes inside (a C string carries none). */
static char *text_field(wl_fr *r, const char *field, int nullable)
{
    size_t len;
    char *s = wl_fr_str(r, field, nullable, &len);
    if (s && strlen(s) != len) {
        wl_fr_bad(r, field, "holds a NUL byte");
        free(s);
        return NULL;
    }
    return s;
}

/* Counts are bounded by what the frame can hold: each element needs at least 4 bytes. */
static uint32_t count_field(wl_fr *r, const char *field, uint32_t max)
{
    uint32_t n = wl_fr_u32(r, field);
    if (n > max || (size_t)n * 4 > r->len - r->pos) {
        wl_fr_bad(r, field, "count larger than the frame allows");
        return 0;
    }
    return n;
}

int wl_dec_request(const wl_frame *f, wl_request_msg *m, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    memset(m, 0, sizeof *m);
    /* decode into temporaries, then deep-copy into one block the request owns */
    wandler_request q = {0};
    wandler_message *msgs = NULL;
    char **stops = NULL;
    char *prompt = text_field(&r, "prompt", 1), *system = text_field(&r, "system", 1);
    uint32_t n_msgs = count_field(&r, "n_messages", 100000);
    if (!r.failed && n_msgs && !(msgs = calloc(n_msgs, sizeof *msgs)))
        wl_fr_bad(&r, "messages", "out of memory");
    for (uint32_t i = 0; i < n_msgs && !r.failed; i++) {
        msgs[i].role = text_field(&r, "role", 0);
        msgs[i].content = text_field(&r, "content", 0);
    }
    q.chat = wl_fr_i32(&r, "chat");
    char *tpl = text_field(&r, "chat_template", 1);
    q.add_bos = wl_fr_i32(&r, "add_bos");
    uint32_t n_stop = count_field(&r, "n_stop", 16);
    if (!r.failed && n_stop && !(stops = calloc(n_stop, sizeof *stops)))
        wl_fr_bad(&r, "stop", "out of memory");
    for (uint32_t i = 0; i < n_stop && !r.failed; i++)
        stops[i] = text_field(&r, "stop", 0);
    q.split_reasoning = wl_fr_i32(&r, "split_reasoning");
    char *ropen = text_field(&r, "reasoning_open", 1), *rclose = text_field(&r, "reasoning_close", 1);
    q.max_tokens = wl_fr_i32(&r, "max_tokens");
    q.temperature = wl_fr_f32(&r, "temperature");
    q.top_k = wl_fr_i32(&r, "top_k");
    q.top_p = wl_fr_f32(&r, "top_p");
    q.min_p = wl_fr_f32(&r, "min_p");
    q.repetition_penalty = wl_fr_f32(&r, "repetition_penalty");
    q.repetition_last_n = wl_fr_i32(&r, "repetition_last_n");
    q.frequency_penalty = wl_fr_f32(&r, "frequency_penalty");
    q.presence_penalty = wl_fr_f32(&r, "presence_penalty");
    q.seed = wl_fr_u64(&r, "seed");
    q.timeout_ms = wl_fr_i32(&r, "timeout_ms");
    q.ignore_eos = wl_fr_i32(&r, "ignore_eos");
    /* the value ranges are checked by wl_request_validate, on this side too */
    int rc = wl_fr_end(&r);
    if (rc == WANDLER_OK) {
        q.prompt = prompt;
        q.system = system;
        q.messages = msgs;
        q.n_messages = n_msgs;
        q.chat_template = tpl;
        q.stop = (const char *const *)stops;
        q.n_stop = n_stop;
        q.reasoning_open = ropen;
        q.reasoning_close = rclose;
        m->block = wl_request_copy(&q, &m->req);
        if (!m->block)
            rc = wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (uint32_t i = 0; msgs && i < n_msgs; i++) {
        free((char *)msgs[i].role);
        free((char *)msgs[i].content);
    }
    for (uint32_t i = 0; stops && i < n_stop; i++)
        free(stops[i]);
    free(msgs);
    free(stops);
    free(prompt);
    free(system);
    free(tpl);
    free(ropen);
    free(rclose);
    return rc;
}

void wl_request_msg_free(wl_request_msg *m)
{
    free(m->block);
    m->block = NULL;
    memset(&m->req, 0, sizeof m->req);
}

/* ---- CHUNK ---- */

void wl_enc_chunk(wl_fw *w, int part_type, const char *text, size_t len)
{
    wl_fw_u8(w, (uint8_t)part_type);
    wl_fw_bytes(w, text, len);
}

int wl_dec_chunk(const wl_frame *f, int *part_type, char **text, size_t *len, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    *part_type = wl_fr_u8(&r, "part_type");
    if (*part_type != WANDLER_PART_TEXT_DELTA && *part_type != WANDLER_PART_REASONING_DELTA)
        wl_fr_bad(&r, "part_type", "not a delta part");
    *text = wl_fr_str(&r, "text", 0, len);
    if (*text && *len == 0)
        wl_fr_bad(&r, "text", "empty delta");
    int rc = wl_fr_end(&r);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* ---- GENERATED ---- */

void wl_enc_generated(wl_fw *w, const wl_generated_msg *g)
{
    wl_fw_u8(w, (uint8_t)g->finish_reason);
    wl_fw_i32(w, g->usage.prompt_tokens);
    wl_fw_i32(w, g->usage.completion_tokens);
    wl_fw_i32(w, g->usage.total_tokens);
    const wandler_timings *t = &g->timings;
    const double d[] = {t->load_ms, t->time_to_first_token_ms, t->prefill_ms, t->decode_ms,
                        t->prefill_tokens_per_s, t->decode_tokens_per_s};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        wl_fw_f64(w, d[i]);
    wl_fw_bytes(w, g->text ? g->text : "", g->text ? g->text_len : 0);
    wl_fw_bytes(w, g->reasoning ? g->reasoning : "", g->reasoning ? g->reasoning_len : 0);
}

static double timing(wl_fr *r, const char *field)
{
    double v = wl_fr_f64(r, field);
    if (!(v >= 0 && v < 1e300))
        wl_fr_bad(r, field, "negative or not finite");
    return v;
}

int wl_dec_generated(const wl_frame *f, wl_generated_msg *g, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    memset(g, 0, sizeof *g);
    g->finish_reason = wl_fr_u8(&r, "finish_reason");
    if (g->finish_reason < WANDLER_FINISH_STOP || g->finish_reason > WANDLER_FINISH_ABORT)
        wl_fr_bad(&r, "finish_reason", "not stop, length or abort");
    g->usage.prompt_tokens = wl_fr_i32(&r, "prompt_tokens");
    g->usage.completion_tokens = wl_fr_i32(&r, "completion_tokens");
    g->usage.total_tokens = wl_fr_i32(&r, "total_tokens");
    if (g->usage.prompt_tokens < 0 || g->usage.completion_tokens < 0 ||
        (int64_t)g->usage.total_tokens != (int64_t)g->usage.prompt_tokens + g->usage.completion_tokens)
        wl_fr_bad(&r, "usage", "inconsistent token counts");
    wandler_timings *t = &g->timings;
    t->load_ms = timing(&r, "load_ms");
    t->time_to_first_token_ms = timing(&r, "time_to_first_token_ms");
    t->prefill_ms = timing(&r, "prefill_ms");
    t->decode_ms = timing(&r, "decode_ms");
    t->prefill_tokens_per_s = timing(&r, "prefill_tokens_per_s");
    t->decode_tokens_per_s = timing(&r, "decode_tokens_per_s");
    g->text = wl_fr_str(&r, "text", 0, &g->text_len);
    g->reasoning = wl_fr_str(&r, "reasoning", 0, &g->reasoning_len);
    int rc = wl_fr_end(&r);
    if (rc) {
        free(g->text);
        free(g->reasoning);
        g->text = g->reasoning = NULL;
    }
    return rc;
}

/* ---- ERROR ---- */

void wl_enc_error(wl_fw *w, const wandler_error *e)
{
    wl_fw_i32(w, e->code);
    wl_fw_str(w, e->message);
}

int wl_dec_error(const wl_frame *f, wandler_error *e, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    memset(e, 0, sizeof *e);
    e->code = wl_fr_i32(&r, "code");
    if (e->code < 100 || e->code > 999)
        wl_fr_bad(&r, "code", "not an error code");
    size_t len;
    char *msg = wl_fr_str(&r, "message", 0, &len);
    if (msg) {
        snprintf(e->message, sizeof e->message, "%s", msg);
        free(msg);
    }
    return wl_fr_end(&r);
}

/* ---- PING / PONG ---- */

void wl_enc_ping(wl_fw *w, uint64_t stamp)
{
    wl_fw_u64(w, stamp);
}

int wl_dec_ping(const wl_frame *f, uint64_t *stamp, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    *stamp = wl_fr_u64(&r, "stamp");
    return wl_fr_end(&r);
}

int wl_dec_empty(const wl_frame *f, wandler_error *err)
{
    wl_fr r;
    wl_fr_init(&r, f, err);
    return wl_fr_end(&r);
}
