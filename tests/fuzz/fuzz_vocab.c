/* fuzz_vocab.c - libFuzzer target: a GGUF image -> vocabulary -> tokenize and decode.
 *
 * The input is a GGUF image. When it holds a vocabulary wandler accepts, that vocabulary
 * tokenizes a few fixed texts and the input's own bytes (as text), and decodes the result.
 * Both tokenizer families (SPM and byte-level BPE) are reached: seeds in tests/fuzz/corpus/vocab
 * (written by test_bpe with WANDLER_WRITE_CORPUS=dir). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/gguf.h"
#include "text/detok.h"
#include "text/vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const wl_vocab *v, const char *text, size_t len)
{
    for (int flags = 0; flags < 4; flags++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (wl_tokenize(v, text, len, flags & 1, flags >> 1, &ids, &n, NULL) != WANDLER_OK)
            continue;
        wl_buf out = {0};
        wl_detokenize(v, ids, n, flags & 1, &out);
        wl_detok d;
        wl_detok_init(&d, v);
        for (size_t i = 0; i < n; i++)
            wl_detok_push(&d, ids[i], &out);
        wl_detok_finish(&d, &out);
        wl_buf_free(&out);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    if (gguf_open_memory(data, size, &f, NULL) != WANDLER_OK)
        return 0;
    wl_vocab *v = NULL;
    if (wl_vocab_load(f, &v, NULL) == WANDLER_OK) {
        static const char *const texts[] = {"", " ", "Hello world", "<s>a</s> b",
                                            "\xE2\x96\x81 x \xF0\x9F\x98\x81",
                                            "<|im_start|>user\nIt's 12345  \t\n\n x<|im_end|>"};
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            size_t len = 0;
            while (texts[i][len])
                len++;
            exercise(v, texts[i], len);
        }
        exercise(v, (const char *)data, size < 256 ? size : 256);
        for (int32_t id = -1; id <= wl_vocab_size(v); id++) {
            char buf[8];
            wl_token_to_bytes(v, id, 1, buf, sizeof buf);
            wl_vocab_is_eog(v, id);
        }
        wl_vocab_free(v);
    }
    gguf_close(f);
    return 0;
}
