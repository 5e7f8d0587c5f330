/* options.c - defaults and validation of model options and requests. */
#include "api/api.h"
#include "source/source.h"
#include "util/error.h"

WANDLER_API wandler_model_options wandler_model_options_default(void)
{
    wandler_model_options o = {
        .n_threads = 0,
        .context_length = 0,
        .use_worker = 1,
        .worker = WANDLER_WORKER_THREAD,
        .fallback = 1,
        .worker_path = NULL,
        .terminate_on_idle_ms = 0,
        .timeout_ms = 0,
        .on_progress = NULL,
        .progress_user = NULL,
        .on_log = NULL,
        .log_user = NULL,
        .sha256 = NULL,
        .connect_timeout_ms = 0,
        .stall_timeout_ms = 0,
    };
    return o;
}

int wl_model_options_validate(const wandler_model_options *o, wandler_error *err)
{
#define RANGE(field, lo, hi) \
    if (o->field < (lo) || o->field > (hi)) \
    return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "options." #field " = %d is out of range [%d, %d]", \
                    o->field, (lo), (hi))
    RANGE(n_threads, 0, 256);
    RANGE(context_length, 0, 1 << 20);
    RANGE(use_worker, 0, 1);
    RANGE(worker, WANDLER_WORKER_THREAD, WANDLER_WORKER_PROCESS);
    RANGE(fallback, 0, 1);
    RANGE(terminate_on_idle_ms, 0, 0x7fffffff);
    RANGE(timeout_ms, 0, 0x7fffffff);
    RANGE(connect_timeout_ms, 0, 0x7fffffff);
    RANGE(stall_timeout_ms, 0, 0x7fffffff);
#undef RANGE
    if (o->sha256 && !wl_source_sha256_valid(o->sha256, NULL))
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT,
                        "options.sha256 is not a SHA-256 of 64 hex digits (NULL = none)");
    if (o->worker_path && !*o->worker_path)
        return wl_error(err, WANDLER_ERR_INVALID_ARGUMENT, "options.worker_path is empty (use NULL for the default)");
    return WANDLER_OK;
}

WANDLER_API wandler_request wandler_request_default(void)
{
    wandler_request r = {
        .prompt = NULL,
        .system = NULL,
        .messages = NULL,
        .n_messages = 0,
        .chat = -1,
        .chat_template = NULL,
        .add_bos = -1,
        .stop = NULL,
        .n_stop = 0,
        .split_reasoning = 1,
        .reasoning_open = NULL,
        .reasoning_close = NULL,
        .max_tokens = 256,
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repetition_penalty = 1.0f,
        .repetition_last_n = 64,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = 0,
        .timeout_ms = 0,
        .ignore_eos = 0,
    };
    return r;
}
