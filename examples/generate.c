/* generate.c - the smallest complete program: one whole answer, greedy, then its figures.
 *
 *   example_generate MODEL.gguf "Once upon a time"
 */
#include <stdio.h>

#include <wandler.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]\n", argv[0]);
        return 2;
    }
    wandler_error err;
    wandler_model *model;
    if (wandler_load_model(argv[1], NULL, &model, &err) != WANDLER_OK) {
        fprintf(stderr, "%s: %s\n", wandler_status_name(err.code), err.message);
        return 1;
    }
    wandler_request req = wandler_request_default();
    req.prompt = argc > 2 ? argv[2] : "Once upon a time";
    req.temperature = 0; /* greedy: the same text on every run */
    req.max_tokens = 64;

    wandler_result res;
    if (wandler_generate_text(model, &req, &res, &err) != WANDLER_OK) {
        fprintf(stderr, "%s: %s\n", wandler_status_name(err.code), err.message);
        wandler_model_dispose(model);
        return 1;
    }
    printf("%s%s\n", req.prompt, res.text);
    printf("[%s; %d prompt + %d generated tokens; first token after %.2f ms; %.0f tokens/s]\n",
           wandler_finish_reason_name(res.finish_reason), res.usage.prompt_tokens,
           res.usage.completion_tokens, res.timings.time_to_first_token_ms, res.timings.decode_tokens_per_s);
    wandler_result_free(&res);
    wandler_model_dispose(model);
    return 0;
}
