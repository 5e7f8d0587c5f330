/* decode.c - token ids -> bytes. */
#include "text/vocab.h"

#include <stdlib.h>
#include <string.h>

#include "text/bpe.h"
#include "text/spm.h"
#include "text/vocab_internal.h"

/* Copies n bytes to buf as far as cap allows; returns n (the full length). */
static size_t copy_out(const char *s, size_t n, char *buf, size_t cap)
{
    if (buf && cap)
        memcpy(buf, s, n < cap ? n : cap);
    return n;
}

/* SPM: as llama.cpp's token_to_piece. "▁" becomes a space in normal tokens; user-defined tokens
 * are their text as is; control and unknown tokens are their text only when rendering
 * specials; unused and undefined ones are nothing. */
static size_t spm_piece(const wl_vocab *v, int32_t id, int render_special, char *buf, size_t cap)
{
    const wl_token *t = &v->tokens[id];
    const char *s = wl_vocab_text_of(v, id);
    switch (t->type) {
    case WL_TOKEN_CONTROL:
    case WL_TOKEN_UNKNOWN:
        return render_special ? copy_out(s, t->len, buf, cap) : 0;
    case WL_TOKEN_USER_DEFINED:
        return copy_out(s, t->len, buf, cap);
    case WL_TOKEN_BYTE: {
        char b = (char)wl_spm_byte_of_text(s, t->len); /* checked when the vocab was built */
        return copy_out(&b, 1, buf, cap);
    }
    case WL_TOKEN_NORMAL: {
        size_t o = 0;
        for (size_t i = 0; i < t->len;) {
            if (i + 3 <= t->len && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                if (buf && o < cap)
                    buf[o] = ' ';
                o++;
                i += 3;
            } else {
                if (buf && o < cap)
                    buf[o] = s[i];
                o++;
                i++;
            }
        }
        return o;
    }
    default:
        return 0;
    }
}

/* BPE: as llama.cpp's token_to_piece for byte-level vocabularies: normal tokens map back
 * through GPT-2's byte alphabet; the other types as for SPM. */
static size_t bpe_piece(const wl_vocab *v, int32_t id, int render_special, char *buf, size_t cap)
{
    const wl_token *t = &v->tokens[id];
    const char *s = wl_vocab_text_of(v, id);
    switch (t->type) {
    case WL_TOKEN_CONTROL:
    case WL_TOKEN_UNKNOWN:
        return render_special ? copy_out(s, t->len, buf, cap) : 0;
    case WL_TOKEN_USER_DEFINED:
        return copy_out(s, t->len, buf, cap);
    case WL_TOKEN_BYTE: {
        int b = wl_spm_byte_of_text(s, t->len);
        char c = (char)b;
        return b < 0 ? 0 : copy_out(&c, 1, buf, cap);
    }
    case WL_TOKEN_NORMAL:
        return wl_bpe_decode_text(s, t->len, buf, cap);
    default:
        return 0;
    }
}

size_t wl_token_to_bytes(const wl_vocab *v, int32_t id, int render_special, char *buf, size_t cap)
{
    if (!v || id < 0 || id >= v->n_tokens)
        return 0;
    switch (v->kind) {
    case WL_VOCAB_SPM:
        return spm_piece(v, id, render_special, buf, cap);
    case WL_VOCAB_BPE:
        return bpe_piece(v, id, render_special, buf, cap);
    default:
        return 0;
    }
}

int wl_detokenize(const wl_vocab *v, const int32_t *ids, size_t n, int render_special,
                  wl_buf *out)
{
    char small[256];
    /* llama.cpp drops the one space the dummy prefix put before the first piece. */
    int strip_space = v->kind == WL_VOCAB_SPM && v->add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        size_t len = wl_token_to_bytes(v, ids[i], render_special, small, sizeof small);
        const char *p = small;
        char *big = NULL;
        if (len > sizeof small) {
            big = malloc(len);
            if (!big)
                return -1;
            wl_token_to_bytes(v, ids[i], render_special, big, len);
            p = big;
        }
        if (i == 0 && strip_space && len > 0 && p[0] == ' ') {
            p++;
            len--;
        }
        int rc = wl_buf_append(out, p, len);
        free(big);
        if (rc != 0)
            return -1;
    }
    return wl_buf_append(out, "", 0);
}
