/* fuzz_frame.c - libFuzzer target: hostile packets on a worker channel.
 *
 * Input: byte 0 picks the direction (even: frames a worker receives, odd: frames a host
 * receives); the rest is a sequence of packets, each a u16 length and that many bytes, written
 * to one end of a SOCK_SEQPACKET socketpair. The other end receives frames until the stream
 * ends or breaks, and decodes each with the decoder of its type, as the worker loop and the
 * bridge do. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/codec.h"
#include "worker/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode(const wl_frame *f)
{
    wandler_error err;
    switch (f->type) {
    case WL_F_HELLO:
    case WL_F_HELLO_ACK: {
        wl_hello h;
        wl_dec_hello(f, &h, &err);
        break;
    }
    case WL_F_LOAD: {
        wl_load_msg m;
        if (wl_dec_load(f, &m, &err) == WANDLER_OK)
            wl_load_msg_free(&m);
        break;
    }
    case WL_F_GENERATE:
    case WL_F_STREAM: {
        wl_request_msg m;
        if (wl_dec_request(f, &m, &err) == WANDLER_OK)
            wl_request_msg_free(&m);
        break;
    }
    case WL_F_PING:
    case WL_F_PONG: {
        uint64_t s;
        wl_dec_ping(f, &s, &err);
        break;
    }
    case WL_F_PROGRESS: {
        wl_progress_msg p;
        wl_dec_progress(f, &p, &err);
        break;
    }
    case WL_F_LOADED: {
        wl_model_facts m;
        if (wl_dec_facts(f, &m, &err) == WANDLER_OK)
            wl_model_facts_free(&m);
        break;
    }
    case WL_F_CHUNK: {
        int t;
        char *text;
        size_t n;
        if (wl_dec_chunk(f, &t, &text, &n, &err) == WANDLER_OK)
            free(text);
        break;
    }
    case WL_F_GENERATED: {
        wl_generated_msg g;
        if (wl_dec_generated(f, &g, &err) == WANDLER_OK) {
            free(g.text);
            free(g.reasoning);
        }
        break;
    }
    case WL_F_ERROR: {
        wandler_error e;
        wl_dec_error(f, &e, &err);
        break;
    }
    default:
        wl_dec_empty(f, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int to_worker = (data[0] & 1) == 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
        return 0;
    size_t pos = 1;
    /* the default socket buffer holds far more than the fuzzer's inputs */
    while (pos + 2 <= size) {
        uint16_t n;
        memcpy(&n, data + pos, 2);
        pos += 2;
        if (n > size - pos)
            n = (uint16_t)(size - pos);
        if (send(sv[0], data + pos, n, MSG_DONTWAIT) < 0)
            break;
        pos += n;
    }
    shutdown(sv[0], SHUT_WR);
    for (int i = 0; i < 1000; i++) {
        wl_frame f;
        wandler_error err;
        if (wl_frame_recv(sv[1], to_worker, &f, NULL, &err) != WANDLER_OK)
            break;
        decode(&f);
        wl_frame_free(&f);
    }
    close(sv[0]);
    close(sv[1]);
    return 0;
}
