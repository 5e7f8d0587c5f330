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
    WANDLER_ERR_MODEL_BAD_TENSOR_DATA = 309,  /* tensor values that cannot be computed with (NaN, Inf) */

    /* Requests (400..499) */
    WANDLER_ERR_CONTEXT_FULL = 400,  /* the prompt does not fit the context window */
    WANDLER_ERR_EMPTY_PROMPT = 401,  /* the request has no prompt text and no BOS token to start from */
    WANDLER_ERR_BAD_UTF8 = 402,      /* a prompt or message is not valid UTF-8 */
    WANDLER_ERR_BAD_MESSAGE = 403,   /* a chat message is malformed (the message names its index and field) */
    WANDLER_ERR_TEMPLATE = 404,      /* the chat template cannot be parsed or rendered (names the construct
                                        and its line) */
    WANDLER_ERR_TEMPLATE_LIMIT = 405,/* rendering the chat template went past a bound on output size, loop
                                        iterations or recursion depth */
    WANDLER_ERR_TIMEOUT = 406,       /* the operation took longer than its timeout_ms */
    WANDLER_ERR_CANCELLED = 407,     /* the load was cancelled (progress callback or abort) */

    /* Workers (500..599) */
    WANDLER_ERR_WORKER_NOT_SUPPORTED = 500, /* a worker of that kind cannot be started here (and
                                               fallback is off): the message says why */
    WANDLER_ERR_WORKER_CRASHED = 501,  /* the worker died during the call (exit status or signal
                                          in the message); the next call starts a fresh worker */
    WANDLER_ERR_WORKER_VERSION = 502,  /* the worker executable speaks another protocol version */
    WANDLER_ERR_PROTOCOL = 503,        /* a malformed frame between host and worker */
    WANDLER_ERR_DISPOSED = 504,        /* the model was disposed while the call was pending */

    /* Remote sources and the model cache (600..699): see wandler_load_model(). */
    WANDLER_ERR_REMOTE_NOT_FOUND = 600, /* the server answered 404 or 410: no such URL, or no such
                                           repository, file or revision on Hugging Face */
    WANDLER_ERR_UNAUTHORIZED = 601,    /* the server answered 401 or 403: a private or gated model
                                          (set HF_TOKEN), or a token without access */
    WANDLER_ERR_NETWORK = 602,         /* the host could not be resolved, refused or could not be
                                          reached, TLS failed, or the connection broke off mid-transfer
                                          (loading again resumes the download) */
    WANDLER_ERR_NETWORK_TIMEOUT = 603, /* no connection within connect_timeout_ms, or no data for
                                          stall_timeout_ms (a stalled server). Distinct from
                                          WANDLER_ERR_TIMEOUT, which is the load's own timeout_ms */
    WANDLER_ERR_HTTP = 604,            /* another unexpected answer: a 5xx status, too many redirects,
                                          a server that cannot continue a range, a malformed answer
                                          (a header past 100 kB, a size that is no number or past
                                          1 PiB) */
    WANDLER_ERR_DISK_FULL = 605,       /* no space left (ENOSPC, EDQUOT) for the download in the
                                          cache, or the file size limit (EFBIG, ulimit -f); the
                                          partial file stays, to be resumed */
    WANDLER_ERR_INTEGRITY = 606,       /* the file's SHA-256 is not the expected one (options.sha256,
                                          or the server's Hugging Face ETag); a fresh download that
                                          fails the check is deleted */
    WANDLER_ERR_NOT_GGUF = 607,        /* the downloaded or cached file is not a GGUF file (say an
                                          HTML page); it is deleted from the cache */
    WANDLER_ERR_OFFLINE = 608,         /* WANDLER_OFFLINE is set and the source is not in the cache */
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

/* Stages of a load, in order, as the progress callback reports them. */
enum wandler_load_stage {
    WANDLER_STAGE_OPEN = 1,     /* opening and mapping the file */
    WANDLER_STAGE_METADATA = 2, /* reading and checking the header and metadata */
    WANDLER_STAGE_TENSORS = 3,  /* binding and checking the tensors (done/total: tensors) */
    WANDLER_STAGE_WARMUP = 4,   /* KV cache and threads */
    WANDLER_STAGE_READY = 5,    /* loaded */
    /* A remote source (URL, hf://) goes through these first, in the order RESOLVE, DOWNLOAD,
     * VERIFY, then OPEN ... READY. A local file starts at OPEN; a cache hit reports RESOLVE only. */
    WANDLER_STAGE_RESOLVE = 6,  /* finding the source in the cache, revalidating it (0/1 .. 1/1) */
    WANDLER_STAGE_DOWNLOAD = 7, /* bytes of the file done/total (total 0 = unknown), bytes_per_s;
                                   also while waiting for another thread or process that downloads
                                   the same source (done = its partial file's size) */
    WANDLER_STAGE_VERIFY = 8,   /* the SHA-256 of the download (done/total: bytes hashed) */
};

typedef struct wandler_progress {
    int stage;         /* WANDLER_STAGE_* */
    uint64_t done;     /* items of this stage done ... */
    uint64_t total;    /* ... out of this many (0 when unknown) */
    double fraction;   /* the whole load, 0..1, never decreasing; when a download happens it
                          takes most of the range (about 0.01..0.90), the load stages the last 5% */
    double bytes_per_s;/* DOWNLOAD: the transfer speed over the last seconds; 0 otherwise */
} wandler_progress;

/* Called during a load; return nonzero to cancel it (the load then fails with
 * WANDLER_ERR_CANCELLED). With a worker it runs on the model's I/O thread. */
typedef int (*wandler_progress_fn)(const wandler_progress *progress, void *user);

/* Where a model's compute runs. */
enum wandler_worker_kind {
    WANDLER_WORKER_THREAD = 0,  /* a dedicated thread of this process (the default) */
    WANDLER_WORKER_PROCESS = 1, /* the wandler-worker executable: a crash cannot take the caller down */
};

/* The mode a model actually runs in (wandler_model_mode()). */
enum wandler_mode {
    WANDLER_MODE_INLINE = 0,  /* on the threads that call the API */
    WANDLER_MODE_THREAD = 1,  /* in a worker thread */
    WANDLER_MODE_PROCESS = 2, /* in a worker process */
};

enum wandler_log_level { WANDLER_LOG_WARN = 1, WANDLER_LOG_INFO = 2 };

/* Receives warnings (e.g. "worker could not start, running inline"). May be called from an
 * internal thread. */
typedef void (*wandler_log_fn)(int level, const char *message, void *user);

typedef struct wandler_model_options {
    /* Threads for the model's compute, including the thread that runs the model.
     * 0 = one per online CPU core (the default). Range 0..256. */
    int n_threads;
    /* Context window in tokens (prompt + answer). 0 = the model's trained context length,
     * capped at 4096 to bound the KV cache's memory (the default). Range 0..1048576. */
    int context_length;

    /* 1 (default): the model lives in its own worker, so no caller ever blocks on its compute
     * (beyond waiting for the parts it asked for). 0: it runs inline, on the calling threads,
     * whose stacks then need about 128 KiB free for the compute kernels (their tiles live on
     * the stack; the default 8 MiB of a thread is plenty). */
    int use_worker;
    /* WANDLER_WORKER_THREAD (default) or WANDLER_WORKER_PROCESS. */
    int worker;
    /* 1 (default): when the worker cannot start, run inline and say so through on_log and
     * wandler_model_mode(). 0: fail with WANDLER_ERR_WORKER_NOT_SUPPORTED. */
    int fallback;
    /* The wandler-worker executable for process workers. NULL (default): $WANDLER_WORKER_PATH,
     * else next to the running program, else the install's libexec folder. */
    const char *worker_path;
    /* End the worker after this many milliseconds without a request, freeing its memory; the
     * next request starts a new worker and reloads the model transparently (progress is reported
     * again). 0 (default) = never. Range 0..2^31-1. */
    int terminate_on_idle_ms;
    /* Limit, in milliseconds, of the load and of each request (a request may set its own).
     * 0 (default) = none. On expiry a load fails and a request ends with WANDLER_ERR_TIMEOUT /
     * finish reason "timeout", keeping its text so far; the model stays usable. */
    int timeout_ms;

    wandler_progress_fn on_progress; /* load progress (and cancel); NULL = none */
    void *progress_user;
    wandler_log_fn on_log;           /* warnings; NULL = none */
    void *log_user;

    /* Remote sources (see wandler_load_model). */
    /* The file's SHA-256 as 64 hex digits ("sha256:" prefix allowed), checked before the file is
     * used: a download that does not match is deleted and the load fails with
     * WANDLER_ERR_INTEGRITY; so does a cached or local file that does not match. NULL (default)
     * = only the server's own checksum (Hugging Face files) is checked. The string is copied. */
    const char *sha256;
    /* Milliseconds to wait for a connection to the server. 0 (default) = 15000. */
    int connect_timeout_ms;
    /* A transfer that receives no byte for this many milliseconds fails with
     * WANDLER_ERR_NETWORK_TIMEOUT (stall detection). 0 (default) = 30000. */
    int stall_timeout_ms;
} wandler_model_options;

/* Can a worker of `kind` start here? Checks that threads and sockets work and, for a process
 * worker, that the executable (worker_path, or found as for the option) exists, runs and speaks
 * this library's protocol. Returns WANDLER_OK, or WORKER_NOT_SUPPORTED / WORKER_VERSION with
 * the reason in err. Any thread. */
WANDLER_API int wandler_can_use_worker(int kind, const char *worker_path, wandler_error *err);

/* Returns the default options (every field filled). Any thread. */
WANDLER_API wandler_model_options wandler_model_options_default(void);

/* Loads a model, in a worker unless options say otherwise, and waits until it is loaded
 * (progress goes to options->on_progress).
 *
 * `source` is one of:
 *   - a local GGUF file path;
 *   - an http:// or https:// URL of a GGUF file;
 *   - hf://OWNER/REPO/FILE.gguf[@REVISION], a file of a Hugging Face repository (REVISION: a
 *     branch, tag or commit id; default "main"), fetched from
 *     https://huggingface.co/OWNER/REPO/resolve/REVISION/FILE ($WANDLER_HF_ENDPOINT, else
 *     $HF_ENDPOINT, replaces https://huggingface.co).
 * A remote file is downloaded once into the model cache ($WANDLER_CACHE_DIR, else
 * $XDG_CACHE_HOME/wandler, else ~/.cache/wandler; entries hf/OWNER/REPO/REVISION/FILE and
 * url/HOST/HASH/NAME, each with a FILE.meta beside it) and the cached file is mapped, so every
 * worker and process that loads it shares its pages. The download runs in the worker (inline:
 * on the calling thread), follows redirects, verifies TLS, takes its proxy from the usual
 * environment variables (https_proxy, no_proxy, ...), sends $HF_TOKEN as a bearer token to the
 * Hugging Face endpoint's host only, and writes FILE.partial, renamed into place only when
 * complete and verified: its SHA-256 must equal options->sha256 and the SHA-256 the server
 * names (the ETag/X-Linked-Etag of Hugging Face files). A broken, cancelled or timed-out
 * download keeps its partial file and the next load resumes it (HTTP Range). Loads of the same
 * source in other threads or processes meanwhile wait for the one download and report its
 * progress. A cached file is revalidated (If-None-Match; a 304 is a hit) unless the revision is
 * a commit id; when the server cannot be reached the cached copy is used. With WANDLER_OFFLINE=1
 * only the cache is used (WANDLER_ERR_OFFLINE when the file is not there). The cache never
 * writes through a symbolic link planted in an entry (FILE.partial, FILE.lock): that is
 * WANDLER_ERR_IO naming the link; the cache directory itself may be a link.
 * Progress: RESOLVE, DOWNLOAD (with bytes_per_s), VERIFY, then the load stages; returning
 * nonzero from on_progress, or timeout_ms running out, stops a transfer within ~100 ms.
 * wandler_model_stats() reports whether the cache was hit and the bytes downloaded and reused.
 * Where the CPU has AVX-512 VNNI, the model's Q4_0 matrices are repacked at the first load of a
 * file into the layout the kernels compute in (groups of 16 rows), written to the cache's
 * repack/ folder (one file per model path, as large as those matrices, made again when the
 * model file changes) and mapped like the model, so later loads and other processes share it;
 * the first load of a 1B model takes about a second longer. A cache folder that cannot be
 * written does not fail the load: the weights are then read from the model file as they are.
 * WANDLER_REPACK=0 turns repacking off.
 *
 * `options` may be NULL for the defaults. On success stores a new handle in *out, which the
 * caller owns and releases with wandler_model_dispose(). The file is mapped read-only and
 * never copied; it may not be changed while the model is loaded.
 * Errors: INVALID_ARGUMENT (NULL source/out, a bad option or a malformed URL/hf:// source: the
 * message names it), NOT_FOUND, IO, OUT_OF_MEMORY, SYSTEM, every WANDLER_ERR_GGUF_* and
 * WANDLER_ERR_MODEL_* code, TIMEOUT, CANCELLED, WORKER_NOT_SUPPORTED (fallback off),
 * WORKER_VERSION, WORKER_CRASHED, and for remote sources REMOTE_NOT_FOUND, UNAUTHORIZED,
 * NETWORK, NETWORK_TIMEOUT, HTTP, DISK_FULL, INTEGRITY, NOT_GGUF, OFFLINE. Any thread. */
WANDLER_API int wandler_load_model(const char *source, const wandler_model_options *options,
                                   wandler_model **out, wandler_error *err);

/* Ends the model: its worker ends (or its inline state is freed), and every byte, fd and thread
 * it holds is released. Safe from any thread, also while requests run: pending requests end
 * with WANDLER_ERR_DISPOSED. Streams of the model stay valid (their reads return the error)
 * until the caller frees them. NULL is ignored. Once per model. */
WANDLER_API void wandler_model_dispose(wandler_model *model);

/* WANDLER_MODE_INLINE, _THREAD or _PROCESS: where the model runs (inline after a fallback).
 * -1 for NULL. Any thread. */
WANDLER_API int wandler_model_mode(wandler_model *model);

/* What the model cache did for a load (wandler_stats.cache). */
enum wandler_cache_status {
    WANDLER_CACHE_NONE = 0, /* a local file: no cache involved */
    WANDLER_CACHE_HIT = 1,  /* a remote source found in the cache: nothing downloaded */
    WANDLER_CACHE_MISS = 2, /* a remote source downloaded (wholly, or the rest of a partial file) */
};

/* Figures of a model, for monitoring. Counters count since the load. */
typedef struct wandler_stats {
    int mode;                  /* WANDLER_MODE_* */
    int worker_alive;          /* a worker is running now (0 inline, and after an idle end) */
    int worker_pid;            /* process worker: its pid; 0 otherwise */

    double load_ms;            /* the last (re)load */
    uint64_t loads;            /* loads done: 1 + reloads after idle ends, crashes and kills */
    uint64_t restarts;         /* workers started after the first */
    uint64_t crashes;          /* workers that died unexpectedly */
    uint64_t idle_terminations;/* workers ended by terminate_on_idle_ms */
    uint64_t requests;         /* requests finished (any way) */
    uint64_t aborts;           /* requests ended by wandler_stream_abort() */
    uint64_t timeouts;         /* loads and requests ended by their timeout */

    /* memory */
    uint64_t rss_bytes;        /* process worker: resident memory (/proc/PID/smaps_rollup) */
    uint64_t pss_bytes;        /* process worker: proportional share (shared weight pages split) */
    uint64_t ctx_bytes;        /* KV cache and scratch buffers of the model */
    double resident_before_load; /* fraction of the weight file in memory before the last load
                                    (1.0: the system already had it cached; mincore) */

    /* the last finished request */
    double time_to_first_token_ms, prefill_tokens_per_s, decode_tokens_per_s;

    /* communication with the worker (0 inline) */
    uint64_t frames_sent, bytes_sent, frames_received, bytes_received;
    double rtt_mean_us, rtt_p99_us; /* round trip of a frame (PING/PONG while idle) */
    uint64_t rtt_samples;

    /* the model cache, for the last (re)load (see wandler_load_model) */
    int cache;                 /* WANDLER_CACHE_NONE (a local file), _HIT or _MISS */
    uint64_t bytes_downloaded; /* bytes transferred from the server */
    uint64_t bytes_reused;     /* bytes taken from the cache: the whole file on a hit, the part an
                                  interrupted download had left when it resumed */
} wandler_stats;

/* Fills *stats. Errors: INVALID_ARGUMENT. Any thread. */
WANDLER_API int wandler_model_stats(wandler_model *model, wandler_stats *stats);

/* Facts about a loaded model, filled by wandler_model_info(). Strings are owned by the model
 * and valid until it is disposed. */
typedef struct wandler_model_info {
    const char *architecture; /* "llama" */
    const char *name;         /* general.name, or "" */
    const char *path;         /* the file it was loaded from (for a remote source: the cached file) */
    uint64_t file_bytes;      /* size of the GGUF file */
    uint64_t n_params;        /* number of weights */
    int n_vocab, n_ctx_train, n_ctx, n_embd, n_layer, n_head, n_head_kv;
    int n_threads; /* threads the model computes with */
    const char *isa; /* the kernels chosen for this CPU: "scalar", "avx2", "avx512" */
    const char *source;       /* the source as given to wandler_load_model (path, URL or hf://) */
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
    WANDLER_FINISH_TIMEOUT = 4,/* the request's timeout_ms passed */
    WANDLER_FINISH_ERROR = 5,  /* an error ended the request */
};

/* Returns "stop", "length", "abort", "timeout", "error" or "none". Static string. Any thread. */
WANDLER_API const char *wandler_finish_reason_name(int reason);

/* One turn of a conversation. */
typedef struct wandler_message {
    const char *role;    /* "system", "user", "assistant" (or what the template knows) */
    const char *content; /* UTF-8 */
} wandler_message;

typedef struct wandler_request {
    /* What to answer. Either a plain prompt to continue (only `prompt`), or a conversation:
     * `system`, then `prompt` (as a user message), then `messages`, merged in that order and
     * rendered with the chat template. At least one of them is required. */
    const char *prompt;      /* text; NULL = none */
    const char *system;      /* a system message; NULL = none */
    const wandler_message *messages; /* n_messages turns; NULL when n_messages is 0 */
    size_t n_messages;
    /* -1 (default): render a chat template when system or messages are given, continue the
     * plain prompt otherwise; 1: always render (the prompt becomes a user message); 0: never
     * (the contents are joined as plain text). */
    int chat;
    /* The chat template: NULL (default) = the model's (tokenizer.chat_template; plain text when
     * it has none), a known name ("chatml", "llama3", "llama2", "gemma", "phi3", "mistral",
     * "deepseek-r1"), or Jinja source. */
    const char *chat_template;
    int add_bos;             /* -1 = as the model's metadata says (default), 0 = no, 1 = yes;
                                a chat template usually writes its own BOS */

    /* Generation stops, with finish reason "stop", when the text would contain one of these
     * (the text never contains it; nothing before it is lost). Up to 16 strings, 1..256 bytes. */
    const char *const *stop;
    size_t n_stop;

    /* Reasoning: text between reasoning_open and reasoning_close (default "<think>" and
     * "</think>", also when the template itself opened the tag) comes as reasoning deltas and
     * in the result's `reasoning`, not in `text`. split_reasoning 0 turns this off; default 1. */
    int split_reasoning;
    const char *reasoning_open;  /* NULL = "<think>" */
    const char *reasoning_close; /* NULL = "</think>" */

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
    int timeout_ms;          /* 0 = the model's timeout_ms; > 0 = this request's own limit */
    int ignore_eos;          /* 1 = do not stop at end-of-generation tokens (benchmarks); default 0 */
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
    char *reasoning;     /* the reasoning (see split_reasoning), NUL-terminated, "" when none; owned */
    size_t reasoning_len;
    int finish_reason;   /* WANDLER_FINISH_* */
    wandler_usage usage;
    wandler_timings timings;
} wandler_result;

/* Releases what a result owns and zeroes it. NULL is ignored. Any thread. */
WANDLER_API void wandler_result_free(wandler_result *result);

/* Generates a whole answer and waits for it. Whatever it returns, *result is filled (the text so
 * far, possibly empty) and the caller frees it with wandler_result_free(): a request that ran
 * into its timeout returns WANDLER_ERR_TIMEOUT with finish reason "timeout" and keeps its text.
 * Errors: INVALID_ARGUMENT (NULL arguments, option out of range: the message names it),
 * EMPTY_PROMPT, CONTEXT_FULL, BAD_UTF8, OUT_OF_MEMORY, TIMEOUT, WORKER_CRASHED, DISPOSED.
 * Any thread; requests to one model from several threads run one at a time, in arrival order. */
WANDLER_API int wandler_generate_text(wandler_model *model, const wandler_request *request,
                                      wandler_result *result, wandler_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Streaming                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct wandler_stream wandler_stream;

/* Parts a stream buffers for a reader that falls behind. */
#define WANDLER_STREAM_BUFFER 64

enum wandler_part_type {
    WANDLER_PART_TEXT_DELTA = 1, /* text, len: the next piece of the answer (whole UTF-8 characters) */
    WANDLER_PART_REASONING_DELTA = 2, /* text, len: the next piece of the reasoning */
    WANDLER_PART_FINISH = 3,     /* finish_reason, usage, timings: the last part of a stream */
    WANDLER_PART_ERROR = 4,      /* error: the request failed; the last part of a stream */
};

typedef struct wandler_part {
    int type;               /* WANDLER_PART_* */
    const char *text;       /* deltas: NUL-terminated, valid until the next call on the stream */
    size_t len;             /* deltas: length of text in bytes */
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

/* Waits for the next part of the stream, at most timeout_ms milliseconds (-1 = no limit, 0 = do
 * not wait). Returns WANDLER_OK with *part filled; WANDLER_DONE once the FINISH or ERROR part has
 * been returned; WANDLER_AGAIN when no part arrived in time; INVALID_ARGUMENT for NULL
 * arguments or a stream read by a callback. Pointers in *part stay valid until the next call on
 * this stream. Inline (no worker), the part is computed by this call on this thread, whatever
 * the timeout. Parts the reader has not taken are bounded: at most WANDLER_STREAM_BUFFER in the
 * stream, or, with a worker, at most what its channel's socket buffer holds (a few hundred small
 * parts); then the worker waits for the reader (back-pressure), so memory stays flat.
 * The stream's reading thread. */
WANDLER_API int wandler_stream_next(wandler_stream *stream, wandler_part *part, int timeout_ms);

/* A file descriptor that is readable while a part is ready (and once the stream has ended), for
 * poll/epoll/libuv/GLib loops: when it is readable, wandler_stream_next(stream, part, 0) returns
 * a part (or DONE) without blocking. Owned by the stream; do not close or read it. Inline, the
 * part is computed by that call, so the fd is always readable. -1 for NULL. */
WANDLER_API int wandler_stream_fd(wandler_stream *stream);

/* Receives the parts of a stream started with wandler_stream_text_cb(). `part` and its strings
 * are valid during the call only. With a worker it runs on the model's I/O thread (keep it short:
 * the next parts wait for it); inline, on the calling thread. */
typedef void (*wandler_part_fn)(const wandler_part *part, void *user);

/* Like wandler_stream_text(), but every part goes to on_part instead of wandler_stream_next()
 * (which then returns INVALID_ARGUMENT). Inline, the whole generation runs before this returns.
 * wandler_stream_result() waits for the end and returns the whole text; wandler_stream_abort()
 * and wandler_stream_free() work as usual. Any thread. */
WANDLER_API int wandler_stream_text_cb(wandler_model *model, const wandler_request *request,
                                       wandler_part_fn on_part, void *user, wandler_stream **out,
                                       wandler_error *err);

/* Asks the stream to stop. Compute stops at the next token (or the next chunk of the prompt);
 * the stream then ends with finish reason "abort" and keeps the text so far. Idempotent.
 * Any thread, at any time while the stream exists. */
WANDLER_API void wandler_stream_abort(wandler_stream *stream);

/* Reads the rest of the stream and returns the whole answer (the text of every delta, including
 * those already read with wandler_stream_next). Same rules as wandler_generate_text(): *result is
 * always filled and freed by the caller; a request that ended with an error returns that error.
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
