/* loop.h - the worker loop: the one function a worker runs, in a thread or in the
 * wandler-worker process alike.
 *
 * It serves frames from the host on `fd` (one end of a SOCK_SEQPACKET socketpair): loads the
 * model, queues requests in arrival order, runs them one at a time through the generation layer
 * and answers with CHUNK / GENERATED / ERROR frames. Between tokens (and between batches of a
 * prompt, and between the stages of a load) it reads whatever the host sent meanwhile, so an
 * ABORT stops compute at the next token and a PING is answered without waiting for a request to
 * end. It returns when the host sends TERMINATE or closes its end. */
#ifndef WL_WORKER_LOOP_H
#define WL_WORKER_LOOP_H

/* Runs until TERMINATE or end of stream; closes nothing (the caller owns fd).
 * Returns 0 after TERMINATE or a closed channel, 1 after a protocol or I/O failure. */
int wl_worker_loop(int fd);

#endif
