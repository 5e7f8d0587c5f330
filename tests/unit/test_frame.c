/* test_frame.c - the worker protocol's frames: every encoder round-trips through its decoder,
 * and every malformed packet or payload is an error with a code and a message, never a crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"
#include "worker/codec.h"
#include "worker/frame.h"

static int sv[2];

static int setup(void **state)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    return 0;
}

static int teardown(void **state)
{
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* Sends a raw packet: header fields and a body. */
static void raw_packet(uint32_t magic, uint16_t type, uint16_t flags, uint64_t id, const void *body, size_t n)
{
    unsigned char buf[WL_PACKET_HEADER + 256];
    assert_true(n <= 256);
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &type, 2);
    memcpy(buf + 6, &flags, 2);
    memcpy(buf + 8, &id, 8);
    if (n)
        memcpy(buf + WL_PACKET_HEADER, body, n);
    assert_int_equal(send(sv[0], buf, WL_PACKET_HEADER + n, 0), (ssize_t)(WL_PACKET_HEADER + n));
}

static int receive(int to_worker, wl_frame *f, wandler_error *err)
{
    int rc = wl_frame_recv(sv[1], to_worker, f, NULL, err);
    if (rc != WANDLER_OK && rc != WANDLER_DONE)
        assert_true(err->message[0] != '\0');
    return rc;
}

static void test_round_trip_large(void **state)
{
    /* a frame bigger than one packet (a long prompt) arrives whole */
    size_t n = 3 * WL_PACKET_PAYLOAD + 123;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    wl_traffic t = {0};
    wandler_error err;
    /* the writer blocks when the socket is full, so receive from another end concurrently:
     * here the socket buffer holds it all */
    assert_int_equal(wl_frame_send(sv[0], WL_F_STREAM, 42, big, n, &t, &err), WANDLER_OK);
    wl_frame f;
    assert_int_equal(receive(1, &f, &err), WANDLER_OK);
    assert_int_equal(f.type, WL_F_STREAM);
    assert_int_equal(f.id, 42);
    assert_int_equal(f.len, n);
    assert_memory_equal(f.data, big, n);
    assert_int_equal(t.frames_sent, 1);
    wl_frame_free(&f);
    free(big);
    /* an empty payload */
    assert_int_equal(wl_frame_send(sv[0], WL_F_TERMINATE, 0, NULL, 0, NULL, &err), WANDLER_OK);
    assert_int_equal(receive(1, &f, &err), WANDLER_OK);
    assert_int_equal(f.len, 0);
    wl_frame_free(&f);
    /* end of stream */
    shutdown(sv[0], SHUT_WR);
    assert_int_equal(receive(1, &f, &err), WANDLER_DONE);
}

static void test_bad_packets(void **state)
{
    wl_frame f;
    wandler_error err;
    const char body[4] = {1, 2, 3, 4};

    raw_packet(0xdeadbeef, WL_F_PING, 0, 1, body, 4);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "magic"));

    raw_packet(WL_FRAME_MAGIC, 999, 0, 1, body, 4);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "type"));

    /* a worker's frame type sent to a worker */
    raw_packet(WL_FRAME_MAGIC, WL_F_CHUNK, 0, 1, body, 4);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    /* and a host's type to a host */
    raw_packet(WL_FRAME_MAGIC, WL_F_LOAD, 0, 1, body, 4);
    assert_int_equal(receive(0, &f, &err), WANDLER_ERR_PROTOCOL);

    raw_packet(WL_FRAME_MAGIC, WL_F_PING, 6, 1, body, 4);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "flags"));

    /* shorter than a header */
    assert_int_equal(send(sv[0], body, 4, 0), 4);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "shorter"));

    /* a continuation of another frame */
    raw_packet(WL_FRAME_MAGIC, WL_F_STREAM, 1, 7, body, 4);
    raw_packet(WL_FRAME_MAGIC, WL_F_STREAM, 0, 8, body, 4);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "continued"));

    /* an oversized packet */
    char *huge = calloc(1, WL_PACKET_HEADER + WL_PACKET_PAYLOAD + 100);
    uint32_t magic = WL_FRAME_MAGIC;
    uint16_t type = WL_F_PING;
    memcpy(huge, &magic, 4);
    memcpy(huge + 4, &type, 2);
    assert_true(send(sv[0], huge, WL_PACKET_HEADER + WL_PACKET_PAYLOAD + 100, 0) > 0);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "exceeds"));
    free(huge);

    /* the channel closes in the middle of a frame */
    raw_packet(WL_FRAME_MAGIC, WL_F_STREAM, 1, 9, body, 4);
    shutdown(sv[0], SHUT_WR);
    assert_int_equal(receive(1, &f, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "middle"));
}

static void test_oversized_frame(void **state)
{
    wandler_error err;
    assert_int_equal(wl_frame_send(sv[0], WL_F_STREAM, 1, "x", (size_t)WL_FRAME_MAX + 1, NULL, &err),
                     WANDLER_ERR_PROTOCOL);
    wl_frame_tx tx = {0};
    assert_int_equal(wl_frame_tx_push(&tx, WL_F_STREAM, 1, "x", (size_t)WL_FRAME_MAX + 1, NULL, &err),
                     WANDLER_ERR_PROTOCOL);
    wl_frame_tx_free(&tx);
}

/* ---- payloads ---- */

static wl_frame frame_of(int type, const wl_fw *w)
{
    wl_frame f = {.type = type, .id = 5, .len = w->b.len};
    f.data = malloc(w->b.len + 1);
    if (w->b.len)
        memcpy(f.data, w->b.data, w->b.len);
    return f;
}

static void test_codec_round_trips(void **state)
{
    wandler_error err;
    wl_fw w = {0};
    /* request */
    wandler_request q = wandler_request_default();
    q.prompt = "Once upon a time";
    q.seed = 123456789012345ull;
    q.top_k = 7;
    q.timeout_ms = 99;
    q.system = "Be brief.";
    const wandler_message turns[2] = {{"user", "Hi"}, {"assistant", "Hello!"}};
    q.messages = turns;
    q.n_messages = 2;
    const char *stops[2] = {"\n\n", "END"};
    q.stop = stops;
    q.n_stop = 2;
    q.reasoning_open = "<r>";
    wl_enc_request(&w, &q);
    wl_frame f = frame_of(WL_F_STREAM, &w);
    wl_request_msg m;
    assert_int_equal(wl_dec_request(&f, &m, &err), WANDLER_OK);
    assert_string_equal(m.req.prompt, q.prompt);
    assert_int_equal(m.req.seed, q.seed);
    assert_int_equal(m.req.top_k, 7);
    assert_int_equal(m.req.timeout_ms, 99);
    assert_string_equal(m.req.system, "Be brief.");
    assert_int_equal(m.req.n_messages, 2);
    assert_string_equal(m.req.messages[1].content, "Hello!");
    assert_int_equal(m.req.n_stop, 2);
    assert_string_equal(m.req.stop[1], "END");
    assert_string_equal(m.req.reasoning_open, "<r>");
    assert_null(m.req.reasoning_close);
    assert_null(m.req.chat_template);
    assert_true(m.req.top_p == q.top_p && m.req.temperature == q.temperature);
    wl_request_msg_free(&m);
    /* every truncation of it fails cleanly */
    for (size_t cut = 0; cut < f.len; cut++) {
        wl_frame t = f;
        t.len = cut;
        assert_int_equal(wl_dec_request(&t, &m, &err), WANDLER_ERR_PROTOCOL);
        assert_non_null(strstr(err.message, "STREAM"));
    }
    /* trailing bytes */
    f.data = realloc(f.data, f.len + 1);
    f.len++;
    assert_int_equal(wl_dec_request(&f, &m, &err), WANDLER_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "unexpected bytes"));
    wl_frame_free(&f);
    wl_fw_free(&w);

    /* load */
    wl_enc_load(&w, "/models/x.gguf", 4, 1024);
    f = frame_of(WL_F_LOAD, &w);
    wl_load_msg lm;
    assert_int_equal(wl_dec_load(&f, &lm, &err), WANDLER_OK);
    assert_string_equal(lm.path, "/models/x.gguf");
    assert_int_equal(lm.n_threads, 4);
    wl_load_msg_free(&lm);
    wl_frame_free(&f);
    wl_fw_free(&w);

    /* facts */
    wl_model_facts mf = {.architecture = "llama", .name = "n", .isa = "avx2", .file_bytes = 10, .n_params = 20,
                         .n_vocab = 512, .n_ctx_train = 2048, .n_ctx = 2048, .n_embd = 64, .n_layer = 5,
                         .n_head = 8, .n_head_kv = 4, .n_threads = 2, .load_ms = 1.5, .ctx_bytes = 99,
                         .resident_before = 0.5};
    wl_enc_facts(&w, &mf);
    f = frame_of(WL_F_LOADED, &w);
    wl_model_facts got;
    assert_int_equal(wl_dec_facts(&f, &got, &err), WANDLER_OK);
    assert_string_equal(got.architecture, "llama");
    assert_int_equal(got.n_head_kv, 4);
    assert_true(got.resident_before == 0.5);
    wl_model_facts_free(&got);
    wl_frame_free(&f);
    wl_fw_free(&w);

    /* generated, chunk, error, progress, ping */
    wl_generated_msg g = {.finish_reason = WANDLER_FINISH_LENGTH, .usage = {5, 7, 12}, .text = "abc", .text_len = 3};
    g.timings.decode_tokens_per_s = 100;
    wl_enc_generated(&w, &g);
    f = frame_of(WL_F_GENERATED, &w);
    wl_generated_msg gg;
    assert_int_equal(wl_dec_generated(&f, &gg, &err), WANDLER_OK);
    assert_int_equal(gg.usage.total_tokens, 12);
    assert_string_equal(gg.text, "abc");
    assert_string_equal(gg.reasoning, "");
    free(gg.text);
    free(gg.reasoning);
    wl_frame_free(&f);
    wl_fw_free(&w);

    wl_enc_chunk(&w, WANDLER_PART_TEXT_DELTA, "hé", 3);
    f = frame_of(WL_F_CHUNK, &w);
    int pt;
    char *text;
    size_t len;
    assert_int_equal(wl_dec_chunk(&f, &pt, &text, &len, &err), WANDLER_OK);
    assert_int_equal(len, 3);
    assert_string_equal(text, "hé");
    free(text);
    wl_frame_free(&f);
    wl_fw_free(&w);

    wandler_error e = {WANDLER_ERR_CONTEXT_FULL, "too long"}, e2;
    wl_enc_error(&w, &e);
    f = frame_of(WL_F_ERROR, &w);
    assert_int_equal(wl_dec_error(&f, &e2, &err), WANDLER_OK);
    assert_int_equal(e2.code, WANDLER_ERR_CONTEXT_FULL);
    assert_string_equal(e2.message, "too long");
    wl_frame_free(&f);
    wl_fw_free(&w);
}

/* Encodes a payload with one field changed, decodes it, expects PROTOCOL naming the field. */
static void expect_bad(int type, wl_fw *w, const char *field)
{
    wl_frame f = frame_of(type, w);
    wandler_error err = {0};
    int rc;
    switch (type) {
    case WL_F_LOAD: {
        wl_load_msg m;
        rc = wl_dec_load(&f, &m, &err);
        break;
    }
    case WL_F_LOADED: {
        wl_model_facts m;
        rc = wl_dec_facts(&f, &m, &err);
        break;
    }
    case WL_F_GENERATED: {
        wl_generated_msg g;
        rc = wl_dec_generated(&f, &g, &err);
        break;
    }
    case WL_F_CHUNK: {
        int pt;
        char *t;
        size_t n;
        rc = wl_dec_chunk(&f, &pt, &t, &n, &err);
        break;
    }
    case WL_F_ERROR: {
        wandler_error e;
        rc = wl_dec_error(&f, &e, &err);
        break;
    }
    case WL_F_PROGRESS: {
        wl_progress_msg p;
        rc = wl_dec_progress(&f, &p, &err);
        break;
    }
    default: {
        wl_request_msg m;
        rc = wl_dec_request(&f, &m, &err);
    }
    }
    if (rc != WANDLER_ERR_PROTOCOL || !strstr(err.message, field))
        fail_msg("%s: expected a protocol error naming '%s', got %d '%s'", wl_frame_type_name(type), field, rc,
                 err.message);
    wl_frame_free(&f);
    wl_fw_free(w);
}

static void test_bad_payloads(void **state)
{
    wl_fw w = {0};
    /* LOAD: empty path, NUL in path, threads out of range, NULL path */
    wl_enc_load(&w, "", 1, 1);
    expect_bad(WL_F_LOAD, &w, "path");
    wl_fw_bytes(&w, "a\0b", 3);
    wl_fw_i32(&w, 1);
    wl_fw_i32(&w, 1);
    expect_bad(WL_F_LOAD, &w, "path");
    wl_enc_load(&w, "/m", 999, 1);
    expect_bad(WL_F_LOAD, &w, "n_threads");
    wl_enc_load(&w, "/m", 1, -4);
    expect_bad(WL_F_LOAD, &w, "context_length");
    wl_enc_load(&w, NULL, 1, 1);
    expect_bad(WL_F_LOAD, &w, "path");
    /* a string longer than the frame */
    wl_fw_u32(&w, 1000);
    wl_fw_bytes(&w, "abc", 3);
    expect_bad(WL_F_LOAD, &w, "path");
    /* request: NUL in the prompt; a NULL message role; absurd message and stop counts */
    wl_fw_bytes(&w, "a\0b", 3);
    expect_bad(WL_F_STREAM, &w, "prompt");
    wl_fw_str(&w, "p");
    wl_fw_str(&w, NULL);
    wl_fw_u32(&w, 1);
    wl_fw_str(&w, NULL);
    wl_fw_str(&w, "hi");
    expect_bad(WL_F_STREAM, &w, "role");
    wl_fw_str(&w, "p");
    wl_fw_str(&w, NULL);
    wl_fw_u32(&w, 0xFFFFFFFFu);
    expect_bad(WL_F_STREAM, &w, "n_messages");
    wl_fw_str(&w, "p");
    wl_fw_str(&w, NULL);
    wl_fw_u32(&w, 0);
    wl_fw_i32(&w, -1);
    wl_fw_str(&w, NULL);
    wl_fw_i32(&w, -1);
    wl_fw_u32(&w, 17);
    expect_bad(WL_F_STREAM, &w, "n_stop");
    /* progress: unknown stage, done > total */
    wl_progress_msg p = {99, 0, 1, 0};
    wl_enc_progress(&w, &p);
    expect_bad(WL_F_PROGRESS, &w, "stage");
    p = (wl_progress_msg){WANDLER_STAGE_TENSORS, 5, 1, 0};
    wl_enc_progress(&w, &p);
    expect_bad(WL_F_PROGRESS, &w, "done");
    /* facts: non-positive sizes, fraction outside [0, 1], NaN load time */
    wl_model_facts mf = {.architecture = "llama", .name = "", .isa = "x", .n_vocab = 0, .n_ctx_train = 1, .n_ctx = 1,
                         .n_embd = 1, .n_layer = 1, .n_head = 1, .n_head_kv = 1, .n_threads = 1};
    wl_enc_facts(&w, &mf);
    expect_bad(WL_F_LOADED, &w, "n_vocab");
    mf.n_vocab = 1;
    mf.resident_before = 2;
    wl_enc_facts(&w, &mf);
    expect_bad(WL_F_LOADED, &w, "resident_before");
    mf.resident_before = 0;
    mf.load_ms = NAN;
    wl_enc_facts(&w, &mf);
    expect_bad(WL_F_LOADED, &w, "load_ms");
    /* generated: unknown finish reason, inconsistent usage, negative timing */
    wl_generated_msg g = {.finish_reason = 9, .usage = {1, 1, 2}};
    wl_enc_generated(&w, &g);
    expect_bad(WL_F_GENERATED, &w, "finish_reason");
    g = (wl_generated_msg){.finish_reason = WANDLER_FINISH_STOP, .usage = {1, 1, 5}};
    wl_enc_generated(&w, &g);
    expect_bad(WL_F_GENERATED, &w, "usage");
    /* counts whose sum does not fit an int32 (found by fuzz_frame): an error, and no overflow
     * on the way (the sanitize build would stop here) */
    g = (wl_generated_msg){.finish_reason = WANDLER_FINISH_STOP, .usage = {INT32_MAX, INT32_MAX, -2}};
    wl_enc_generated(&w, &g);
    expect_bad(WL_F_GENERATED, &w, "usage");
    g = (wl_generated_msg){.finish_reason = WANDLER_FINISH_STOP, .usage = {1, 1, 2}};
    g.timings.decode_ms = -1;
    wl_enc_generated(&w, &g);
    expect_bad(WL_F_GENERATED, &w, "decode_ms");
    /* chunk: empty delta, unknown part type */
    wl_enc_chunk(&w, WANDLER_PART_TEXT_DELTA, "", 0);
    expect_bad(WL_F_CHUNK, &w, "text");
    wl_enc_chunk(&w, 77, "x", 1);
    expect_bad(WL_F_CHUNK, &w, "part_type");
    /* error: a code that is not an error */
    wandler_error e = {WANDLER_OK, "fine"};
    wl_enc_error(&w, &e);
    expect_bad(WL_F_ERROR, &w, "code");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_packets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_frame, setup, teardown),
        cmocka_unit_test(test_codec_round_trips),
        cmocka_unit_test(test_bad_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
