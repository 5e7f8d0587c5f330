/* chat_threads.c - several threads sharing one model. Their requests queue up in arrival order
 * in the model's worker, each with its own id and stream; nothing crosses between them.
 *
 *   example_chat_threads MODEL.gguf
 */
#include <pthread.h>
#include <stdio.h>

#include <wandler.h>

#define N_THREADS 4

typedef struct job {
    wandler_model *model;
    const char *prompt;
    wandler_result result;
    int rc;
} job;

static void *ask(void *p)
{
    job *j = p;
    wandler_request req = wandler_request_default();
    req.prompt = j->prompt;
    req.max_tokens = 40;
    req.temperature = 0; /* greedy: the same answer whichever thread asks */
    wandler_error err;
    j->rc = wandler_generate_text(j->model, &req, &j->result, &err);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    wandler_model *model;
    wandler_error err;
    if (wandler_load_model(argv[1], NULL, &model, &err) != WANDLER_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    const char *prompts[N_THREADS] = {"Once upon a time", "Lily wanted to", "The little dog", "Tom and his friend"};
    job jobs[N_THREADS];
    pthread_t threads[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (job){.model = model, .prompt = prompts[i]};
        pthread_create(&threads[i], NULL, ask, &jobs[i]);
    }
    int status = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(threads[i], NULL);
        if (jobs[i].rc == WANDLER_OK)
            printf("thread %d: %s%s\n", i, prompts[i], jobs[i].result.text);
        else
            status = 1;
        wandler_result_free(&jobs[i].result);
    }
    wandler_stats st;
    wandler_model_stats(model, &st);
    printf("[%llu requests, mode %d]\n", (unsigned long long)st.requests, st.mode);
    wandler_model_dispose(model);
    return status;
}
