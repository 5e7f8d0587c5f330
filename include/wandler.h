/*
 * wandler.h - run local language models (GGUF files) behind a tiny API.
 *
 * This header is the whole public API and its documentation of record.
 *
 * Life cycle
 *   wandler_load_model()      -> a wandler_model handle (owns weights, caches, threads)
 *   wandler_generate_text()   -> one whole answer, or
 *   wandler_stream_text()     -> a wandler_stream handle, read part by part with
 *                                wandler_stream_next(), freed with wandler_stream_free()
 *   wandler_model_dispose()   -> frees everything the model owns
 *
 * Errors
 *   Every fallible function returns WANDLER_OK (0) or a stable WANDLER_ERR_* code and, when the
 *   caller passes a wandler_error, fills it with the same code and a message naming the cause
 *   (the field, file offset, option or token at fault). Codes never change meaning between
 *   releases; wandler_status_name() gives a code's symbolic name. No library function prints,
 *   calls exit() or abort(), or keeps global mutable state.
 *
 * Threads
 *   A wandler_model may be used from any thread. A wandler_stream belongs to the thread that
 *   reads it, except wandler_stream_abort(), which any thread may call at any time.
 *
 * Strings are UTF-8 and NUL-terminated unless a length is given.
 */
#ifndef WANDLER_H
#define WANDLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WANDLER_BUILDING) && defined(__GNUC__)
#define WANDLER_API __attribute__((visibility("default")))
#else
#define WANDLER_API
#endif

#define WANDLER_VERSION_MAJOR 0
#define WANDLER_VERSION_MINOR 1
#define WANDLER_VERSION_PATCH 0
#define WANDLER_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------------------------ */
/* Status codes. Values are stable: new codes are only ever added.                             */
/* ------------------------------------------------------------------------------------------ */

enum wandler_status {
    WANDLER_OK = 0,

    /* Results of wandler_stream_next() that are not errors. */
    WANDLER_DONE = 1,  /* the stream has ended; no part was returned */
    WANDLER_AGAIN = 2, /* no part arrived within the timeout; call again */

    /* General (100..199) */
    WANDLER_ERR_INVALID_ARGUMENT = 100, /* a NULL handle, a bad option value, ... (message names it) */
    WANDLER_ERR_OUT_OF_MEMORY = 101,    /* an allocation failed */
    WANDLER_ERR_IO = 102,               /* open/read/mmap failed (message has errno text) */
    WANDLER_ERR_NOT_FOUND = 103,        /* the model file does not exist */
    WANDLER_ERR_INTERNAL = 104,         /* a broken invariant inside wandler: please report */
    WANDLER_ERR_SYSTEM = 105,           /* a system resource could not be had (threads, fds) */

    /* GGUF container (200..299): the file is not a well-formed GGUF file. */
    WANDLER_ERR_GGUF_TRUNCATED = 200,         /* a field runs past the end of the file */
    WANDLER_ERR_GGUF_BAD_MAGIC = 201,         /* the first four bytes are not "GGUF" */
    WANDLER_ERR_GGUF_BAD_VERSION = 202,       /* version other than 2 or 3 */
    WANDLER_ERR_GGUF_BAD_COUNT = 203,         /* tensor or key/value count larger than the file allows */
    WANDLER_ERR_GGUF_BAD_STRING = 204,        /* a string length larger than the file allows, or a NUL in a key */
    WANDLER_ERR_GGUF_BAD_VALUE_TYPE = 205,    /* a metadata value type that GGUF does not define */
    WANDLER_ERR_GGUF_BAD_ARRAY = 206,         /* an array length larger than the file allows, or nested arrays */
    WANDLER_ERR_GGUF_DUPLICATE_KEY = 207,     /* the same metadata key twice */
    WANDLER_ERR_GGUF_BAD_ALIGNMENT = 208,     /* general.alignment not a power of two, or of the wrong type */
    WANDLER_ERR_GGUF_BAD_TENSOR_TYPE = 209,   /* a tensor type id GGUF does not define */
    WANDLER_ERR_GGUF_BAD_DIMS = 210,          /* zero or more than 4 dimensions, a zero-sized dimension,
                                                 or a row not a whole number of quant blocks */
    WANDLER_ERR_GGUF_DIM_OVERFLOW = 211,      /* the product of the dimensions overflows */
    WANDLER_ERR_GGUF_TENSOR_OUT_OF_BOUNDS = 212, /* tensor data ends past the end of the file */
    WANDLER_ERR_GGUF_TENSOR_MISALIGNED = 213, /* tensor offset not a multiple of the alignment */
    WANDLER_ERR_GGUF_TENSOR_OVERLAP = 214,    /* two tensors share bytes */
    WANDLER_ERR_GGUF_DUPLICATE_TENSOR = 215,  /* the same tensor name twice */

    /* Model content (300..399): a well-formed GGUF file that is not a usable model. */
    WANDLER_ERR_MODEL_MISSING_KEY = 300,      /* a required metadata key is absent */
    WANDLER_ERR_MODEL_KEY_TYPE = 301,         /* a metadata key has the wrong value type */
    WANDLER_ERR_MODEL_BAD_HPARAM = 302,       /* hyper-parameters out of range or inconsistent
                                                 (e.g. head count not dividing the width) */
    WANDLER_ERR_MODEL_MISSING_TENSOR = 303,   /* a required tensor is absent */
    WANDLER_ERR_MODEL_TENSOR_SHAPE = 304,     /* a tensor's shape disagrees with the hyper-parameters */
    WANDLER_ERR_MODEL_UNSUPPORTED_ARCH = 305, /* general.architecture is not one wandler runs */
    WANDLER_ERR_MODEL_UNSUPPORTED_TYPE = 306, /* a tensor's weight format is not one wandler runs */
    WANDLER_ERR_MODEL_BAD_VOCAB = 307,        /* the vocabulary is malformed or disagrees with the weights */
    WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER = 308, /* tokenizer.ggml.model is not one wandler runs */

    /* Requests (400..499) */
    WANDLER_ERR_CONTEXT_FULL = 400,  /* the prompt does not fit the context window */
    WANDLER_ERR_EMPTY_PROMPT = 401,  /* the request has no prompt text and no BOS token to start from */
    WANDLER_ERR_BAD_UTF8 = 402,      /* a prompt or message is not valid UTF-8 */
};

/* Returns the symbolic name of a status ("WANDLER_ERR_GGUF_TRUNCATED"), or "WANDLER_UNKNOWN".
 * The string is static. Any thread. */
WANDLER_API const char *wandler_status_name(int code);

/* The library version as "MAJOR.MINOR.PATCH". Static string. Any thread. */
WANDLER_API const char *wandler_version(void);

/* Filled by fallible functions when the caller passes one. `code` equals the return value;
 * `message` is a NUL-terminated description of the cause (possibly truncated). */
typedef struct wandler_error {
    int code;
    char message[256];
} wandler_error;

/* ------------------------------------------------------------------------------------------ */
/* Loading a model                                                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct wandler_model wandler_model;

typedef struct wandler_model_options {
    /* Threads for the model's compute, including the thread that runs the model.
     * 0 = one per online CPU core (the default). Range 0..256. */
    int n_threads;
    /* Context window in tokens (prompt + answer). 0 = the model's trained context length,
     * capped at 4096 to bound the KV cache's memory (the default). Range 0..1048576. */
    int context_length;
} wandler_model_options;

/* Returns the default options (every field filled). Any thread. */
WANDLER_API wandler_model_options wandler_model_options_default(void);

/* Loads a model from a local GGUF file path.
 * `options` may be NULL for the defaults. On success stores a new handle in *out, which the
 * caller owns and releases with wandler_model_dispose(). The file is mapped read-only and
 * never copied; it may not be changed while the model is loaded.
 * Errors: INVALID_ARGUMENT (NULL path/out, bad option), NOT_FOUND, IO, OUT_OF_MEMORY, SYSTEM,
 * every WANDLER_ERR_GGUF_* and WANDLER_ERR_MODEL_* code. Any thread. */
WANDLER_API int wandler_load_model(const char *source, const wandler_model_options *options,
                                   wandler_model **out, wandler_error *err);

/* Frees the model: weights mapping, caches, threads. NULL is ignored. The caller must have freed
 * every stream of this model first. Any thread, once. */
WANDLER_API void wandler_model_dispose(wandler_model *model);

/* Facts about a loaded model, filled by wandler_model_info(). Strings are owned by the model
 * and valid until it is disposed. */
typedef struct wandler_model_info {
    const char *architecture; /* "llama" */
    const char *name;         /* general.name, or "" */
    const char *path;         /* the file it was loaded from */
    uint64_t file_bytes;      /* size of the GGUF file */
    uint64_t n_params;        /* number of weights */
    int n_vocab, n_ctx_train, n_ctx, n_embd, n_layer, n_head, n_head_kv;
    int n_threads; /* threads the model computes with */
    const char *isa; /* the kernels chosen for this CPU: "scalar", "avx2", "avx512" */
} wandler_model_info;

/* Fills *info. Errors: INVALID_ARGUMENT. Any thread. */
WANDLER_API int wandler_model_info_get(wandler_model *model, wandler_model_info *info);

/* ------------------------------------------------------------------------------------------ */
/* Requests and results                                                                        */
/* ------------------------------------------------------------------------------------------ */

enum wandler_finish_reason {
    WANDLER_FINISH_NONE = 0,   /* not finished (yet) */
    WANDLER_FINISH_STOP = 1,   /* the model ended its answer (end-of-sequence token) */
    WANDLER_FINISH_LENGTH = 2, /* max_tokens or the context window was reached */
    WANDLER_FINISH_ABORT = 3,  /* wandler_stream_abort() */
    WANDLER_FINISH_ERROR = 5,  /* an error ended the request */
};

/* Returns "stop", "length", "abort", "error" or "none". Static string. Any thread. */
WANDLER_API const char *wandler_finish_reason_name(int reason);

typedef struct wandler_request {
    const char *prompt;      /* the text to continue. Required. */
    int add_bos;             /* -1 = as the model's metadata says (default), 0 = no, 1 = yes */

    int max_tokens;          /* tokens to generate at most; default 256; 1..1048576 */

    /* Sampling. With temperature 0 the choice is greedy (argmax) and the filters are unused. */
    float temperature;       /* default 0.8; 0..100 */
    int top_k;               /* default 40; 0 = off; >= 0 */
    float top_p;             /* default 0.95; 1 = off; 0 < top_p <= 1 */
    float min_p;             /* default 0.05; 0 = off; 0..1 */
    float repetition_penalty;/* multiplicative, over the last repetition_last_n tokens; default 1 = off; > 0 */
    int repetition_last_n;   /* default 64; 0 = off; -1 = the whole context */
    float frequency_penalty; /* subtracts count * value; default 0; -2..2 */
    float presence_penalty;  /* subtracts value once a token is present; default 0; -2..2 */
    uint64_t seed;           /* random seed; the same seed, options and prompt give the same tokens */
} wandler_request;

/* Returns a request with every field at its default and prompt NULL. Any thread. */
WANDLER_API wandler_request wandler_request_default(void);

typedef struct wandler_usage {
    int prompt_tokens;
    int completion_tokens;
    int total_tokens;
} wandler_usage;

typedef struct wandler_timings {
    double load_ms;                /* time the model took to load */
    double time_to_first_token_ms; /* from the request to its first generated token */
    double prefill_ms;             /* time spent evaluating the prompt */
    double decode_ms;              /* time spent generating after the first token */
    double prefill_tokens_per_s;   /* prompt tokens / prefill time */
    double decode_tokens_per_s;    /* generated tokens after the first / decode time */
} wandler_timings;

typedef struct wandler_result {
    char *text;          /* the generated text, NUL-terminated; owned, freed by wandler_result_free() */
    size_t text_len;     /* its length in bytes */
    int finish_reason;   /* WANDLER_FINISH_* */
    wandler_usage usage;
    wandler_timings timings;
} wandler_result;

/* Releases what a result owns and zeroes it. NULL is ignored. Any thread. */
WANDLER_API void wandler_result_free(wandler_result *result);

/* Generates a whole answer. Blocks until it is done. On success *result holds the text, which
 * the caller frees with wandler_result_free(). On error *result is zeroed.
 * Errors: INVALID_ARGUMENT (NULL arguments, option out of range: the message names it),
 * EMPTY_PROMPT, CONTEXT_FULL, BAD_UTF8, OUT_OF_MEMORY. Any thread. */
WANDLER_API int wandler_generate_text(wandler_model *model, const wandler_request *request,
                                      wandler_result *result, wandler_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Streaming                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct wandler_stream wandler_stream;

enum wandler_part_type {
    WANDLER_PART_TEXT_DELTA = 1, /* text, len: the next piece of the answer (whole UTF-8 characters) */
    WANDLER_PART_FINISH = 3,     /* finish_reason, usage, timings: the last part of a stream */
    WANDLER_PART_ERROR = 4,      /* error: the request failed; the last part of a stream */
};

typedef struct wandler_part {
    int type;               /* WANDLER_PART_* */
    const char *text;       /* TEXT_DELTA: NUL-terminated, valid until the next call on the stream */
    size_t len;             /* TEXT_DELTA: length of text in bytes */
    int finish_reason;      /* FINISH */
    wandler_usage usage;    /* FINISH */
    wandler_timings timings;/* FINISH */
    wandler_error error;    /* ERROR */
} wandler_part;

/* Starts a streamed request. On success *out is a new stream the caller owns and frees with
 * wandler_stream_free(). Option errors are returned here, before any work starts.
 * Errors: as wandler_generate_text(). Any thread. */
WANDLER_API int wandler_stream_text(wandler_model *model, const wandler_request *request,
                                    wandler_stream **out, wandler_error *err);

/* Waits for the next part of the stream, at most timeout_ms milliseconds (-1 = no limit).
 * Returns WANDLER_OK with *part filled; WANDLER_DONE once the FINISH or ERROR part has been
 * returned; WANDLER_AGAIN when no part arrived in time; INVALID_ARGUMENT for NULL arguments.
 * Pointers in *part stay valid until the next call on this stream. The stream's reading thread. */
WANDLER_API int wandler_stream_next(wandler_stream *stream, wandler_part *part, int timeout_ms);

/* Asks the stream to stop. Compute stops at the next token (or the next chunk of the prompt);
 * the stream then ends with finish reason "abort" and keeps the text so far. Idempotent.
 * Any thread, at any time while the stream exists. */
WANDLER_API void wandler_stream_abort(wandler_stream *stream);

/* Reads the rest of the stream and returns the whole answer (the text of every delta, including
 * those already read with wandler_stream_next). Same ownership and errors as
 * wandler_generate_text(); a request that ended with an error returns that error.
 * The stream's reading thread. */
WANDLER_API int wandler_stream_result(wandler_stream *stream, wandler_result *result,
                                      wandler_error *err);

/* Frees the stream; an unfinished stream is aborted first. NULL is ignored.
 * The stream's reading thread. */
WANDLER_API void wandler_stream_free(wandler_stream *stream);

#ifdef __cplusplus
}
#endif

#endif /* WANDLER_H */
