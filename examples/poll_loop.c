/* poll_loop.c - two models streaming at once in one poll() loop, as an event loop (libuv, GLib,
 * epoll) would drive them: each stream's fd becomes readable when a part is ready, and
 * wandler_stream_next(stream, &part, 0) then never blocks.
 *
 *   example_poll_loop MODEL_A.gguf [MODEL_B.gguf]
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <wandler.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_A.gguf [MODEL_B.gguf]\n", argv[0]);
        return 2;
    }
    const char *paths[2] = {argv[1], argc > 2 ? argv[2] : argv[1]};
    const char *prompts[2] = {"Once upon a time", "The little dog"};
    wandler_model *models[2] = {NULL, NULL};
    wandler_stream *streams[2] = {NULL, NULL};
    wandler_error err;
    int status = 1;

    for (int i = 0; i < 2; i++) {
        /* each model gets its own worker: a thread for the first, a process for the second */
        wandler_model_options o = wandler_model_options_default();
        o.worker = i == 0 ? WANDLER_WORKER_THREAD : WANDLER_WORKER_PROCESS;
        if (wandler_load_model(paths[i], &o, &models[i], &err) != WANDLER_OK) {
            fprintf(stderr, "load %s: %s\n", paths[i], err.message);
            goto out;
        }
        wandler_request req = wandler_request_default();
        req.prompt = prompts[i];
        req.max_tokens = 60;
        req.seed = 42;
        if (wandler_stream_text(models[i], &req, &streams[i], &err) != WANDLER_OK) {
            fprintf(stderr, "stream: %s\n", err.message);
            goto out;
        }
    }

    char text[2][8192] = {"", ""};
    int done[2] = {0, 0};
    while (!done[0] || !done[1]) {
        struct pollfd fds[2];
        for (int i = 0; i < 2; i++)
            fds[i] = (struct pollfd){.fd = done[i] ? -1 : wandler_stream_fd(streams[i]), .events = POLLIN};
        if (poll(fds, 2, -1) < 0)
            goto out;
        for (int i = 0; i < 2; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            wandler_part part;
            int rc;
            while ((rc = wandler_stream_next(streams[i], &part, 0)) == WANDLER_OK) {
                if (part.type == WANDLER_PART_TEXT_DELTA)
                    strncat(text[i], part.text, sizeof text[i] - strlen(text[i]) - 1);
                else if (part.type == WANDLER_PART_ERROR)
                    fprintf(stderr, "stream %d: %s\n", i, part.error.message);
            }
            if (rc == WANDLER_DONE)
                done[i] = 1;
        }
    }
    for (int i = 0; i < 2; i++)
        printf("[%s] %s%s\n\n", i == 0 ? "thread worker" : "process worker", prompts[i], text[i]);
    status = 0;
out:
    for (int i = 0; i < 2; i++) {
        wandler_stream_free(streams[i]);
        wandler_model_dispose(models[i]);
    }
    return status;
}
