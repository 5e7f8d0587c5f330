/* vocab_internal.h - the layout of a wl_vocab, shared by the files of the text layer.
 *
 * One table of tokens for every tokenizer family, a hash map from text to id, the special ids,
 * and a per-family part (`u`) for what only one family needs: SPM keeps its byte-fallback table
 * there, byte-level BPE its merge ranks and compiled pre-tokenizer. */
#ifndef WL_TEXT_VOCAB_INTERNAL_H
#define WL_TEXT_VOCAB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "text/bpe_merges.h"
#include "text/token_map.h"
#include "text/vocab.h"

/* Attributes llama.cpp gives some special tokens: strip whitespace left / right of the token
 * when it is split out of a text. */
enum { WL_TOKEN_ATTR_LSTRIP = 1, WL_TOKEN_ATTR_RSTRIP = 2 };

typedef struct wl_token {
    uint32_t off;  /* offset of the text in wl_vocab.text (NUL-terminated there) */
    uint32_t len;  /* length of the text in bytes */
    float score;   /* SPM merge priority: higher merges first */
    uint8_t type;  /* enum wl_token_type */
    uint8_t attr;  /* WL_TOKEN_ATTR_* */
} wl_token;

typedef struct wl_spm_data {
    /* The token each byte falls back to when a piece is not in the vocabulary: <0xNN>, else the
     * token whose text is that single byte, else UNK. Never -1 in a loaded vocab. */
    int32_t byte_token[256];
} wl_spm_data;

struct wl_pretok;

typedef struct wl_bpe_data {
    struct wl_pretok *pretok; /* the regexes of tokenizer.ggml.pre, compiled */
    wl_merge_map merges;      /* (left id, right id) -> rank and merged id */
    /* The token of each byte's character in GPT-2's byte alphabet, or -1 when there is none. */
    int32_t byte_token[256];
    /* The token whose text is that one raw byte, or -1: llama.cpp's last resort for a piece
     * that no token covers. */
    int32_t raw_byte_token[256];
    int ignore_merges; /* a pre-token that is a whole token is taken as is (Llama 3) */
} wl_bpe_data;

struct wl_vocab {
    int kind;            /* enum wl_vocab_kind */
    int32_t n_tokens;
    wl_token *tokens;    /* [n_tokens] */
    char *text;          /* every token's text, each followed by a NUL */
    wl_token_map map;    /* text -> id */

    int32_t bos, eos, unk, pad, eot, eom; /* -1 when none */
    int add_bos, add_eos;
    int add_space_prefix; /* SPM: prepend "▁" to text that starts a fragment after a special
                             (always 0 for BPE) */
    uint8_t *eog;         /* [n_tokens] 1 when the token ends generation */

    /* Tokens split out of a text before tokenizing it: control, user-defined and unknown ones,
     * longest text first (ties: lower id first). */
    int32_t *special;
    size_t n_special;

    union {
        wl_spm_data spm; /* kind WL_VOCAB_SPM */
        wl_bpe_data bpe; /* kind WL_VOCAB_BPE */
    } u;
};

/* A growable array of token ids. */
typedef struct wl_ids {
    int32_t *data;
    size_t len, cap;
} wl_ids;

/* Appends one id. Returns 0, or -1 when out of memory. */
int wl_ids_push(wl_ids *ids, int32_t id);

static inline const char *wl_vocab_text_of(const wl_vocab *v, int32_t id)
{
    return v->text + v->tokens[id].off;
}

/* The id of the token whose text is s[0..n), or -1. */
static inline int32_t wl_vocab_find(const wl_vocab *v, const char *s, size_t n)
{
    return wl_token_map_find(&v->map, v->text, v->tokens, s, n);
}

#endif
