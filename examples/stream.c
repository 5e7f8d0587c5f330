/* stream.c - stream a continuation of a prompt to stdout; Ctrl-C stops the generation (not the
 * program), which then prints how it finished.
 *
 *   example_stream MODEL.gguf "Once upon a time"
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <wandler.h>

static wandler_stream *volatile current;

static void on_sigint(int sig)
{
    (void)sig;
    if (current)
        wandler_stream_abort(current); /* async-signal-safe: one atomic store */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]\n", argv[0]);
        return 2;
    }
    wandler_error err;
    wandler_model *model;
    if (wandler_load_model(argv[1], NULL, &model, &err) != WANDLER_OK) {
        fprintf(stderr, "load failed: %s (%s)\n", err.message, wandler_status_name(err.code));
        return 1;
    }

    wandler_request req = wandler_request_default();
    req.prompt = argc > 2 ? argv[2] : "Once upon a time";
    req.max_tokens = 200;

    wandler_stream *st;
    if (wandler_stream_text(model, &req, &st, &err) != WANDLER_OK) {
        fprintf(stderr, "request failed: %s (%s)\n", err.message, wandler_status_name(err.code));
        wandler_model_dispose(model);
        return 1;
    }
    current = st;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    wandler_part part;
    int status = 0;
    printf("%s", req.prompt);
    while (wandler_stream_next(st, &part, -1) == WANDLER_OK) {
        switch (part.type) {
        case WANDLER_PART_TEXT_DELTA:
            fwrite(part.text, 1, part.len, stdout);
            fflush(stdout);
            break;
        case WANDLER_PART_FINISH:
            printf("\n[finished: %s, %d tokens, %.1f tokens/s]\n", wandler_finish_reason_name(part.finish_reason),
                   part.usage.completion_tokens, part.timings.decode_tokens_per_s);
            break;
        case WANDLER_PART_ERROR:
            fprintf(stderr, "\nerror: %s (%s)\n", part.error.message, wandler_status_name(part.error.code));
            status = 1;
            break;
        }
    }
    current = NULL;
    wandler_stream_free(st);
    wandler_model_dispose(model);
    return status;
}
