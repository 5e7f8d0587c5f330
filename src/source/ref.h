/* ref.h - what a source string names: a local file, an http(s) URL or a Hugging Face file
 * (hf://OWNER/REPO/FILE[@REVISION]), the URL to fetch it from and its place in the cache. */
#ifndef WL_SOURCE_REF_H
#define WL_SOURCE_REF_H

#include "wandler.h"

enum wl_source_kind {
    WL_SRC_LOCAL = 0, /* a path on this machine: used as is */
    WL_SRC_URL = 1,   /* http:// or https:// */
    WL_SRC_HF = 2,    /* hf://OWNER/REPO/FILE[@REVISION] */
};

typedef struct wl_source_ref {
    int kind;
    char *url;        /* what to GET (remote kinds) */
    char *rel;        /* the entry's path under the cache root: "hf/OWNER/REPO/REV/FILE",
                         "url/HOST[_PORT]/HASH/NAME" */
    char *canonical;  /* the source as the cache records it: "hf://OWNER/REPO/FILE@REV", the URL */
    int send_token;   /* the URL's host is the Hugging Face endpoint's: HF_TOKEN may go there */
    int immutable;    /* a Hugging Face commit id (40 hex digits): the file never changes */
} wl_source_ref;

/* The kind of a source string, by its prefix (no validation). */
int wl_source_kind_of(const char *source);

/* Parses a remote source. The Hugging Face endpoint is $WANDLER_HF_ENDPOINT, else $HF_ENDPOINT,
 * else https://huggingface.co. Errors: INVALID_ARGUMENT (the message says what is wrong and
 * what the form is), OUT_OF_MEMORY. */
int wl_source_ref_parse(const char *source, wl_source_ref *ref, wandler_error *err);
void wl_source_ref_free(wl_source_ref *ref);

/* The Hugging Face endpoint (static string or the environment's), without a trailing slash. */
const char *wl_hf_endpoint(char *buf, size_t cap);

#endif
