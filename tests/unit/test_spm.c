/* test_spm.c - the SentencePiece-style tokenizer and the vocabulary behind it.
 *
 * Real vocabularies against llama.cpp's test vectors (llama-spm, phi-3), the bundled model's
 * golden prompts, the merge rules on small vocabularies built in memory, special-token
 * splitting, and vocabularies that are broken on purpose. */
#include "testutil.h"
#include "vocab_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf.h"
#include "text/detok.h"
#include "text/utf8.h"
#include "text/vocab.h"
#include "text/vocab_build.h"
#include "util/buf.h"

/* ---- helpers ---- */

static wl_vocab *load_vocab(const char *rel, gguf_file **gf)
{
    gguf_file *f = NULL;
    wandler_error err = {0};
    if (gguf_open(wl_test_shared(rel), &f, &err) != WANDLER_OK)
        fail_msg("gguf_open %s: %s", rel, err.message);
    wl_vocab *v = NULL;
    if (wl_vocab_load(f, &v, &err) != WANDLER_OK)
        fail_msg("wl_vocab_load %s: %s", rel, err.message);
    if (gf)
        *gf = f;
    else
        gguf_close(f);
    return v;
}

static void tok(const wl_vocab *v, const char *s, size_t n, int bos, int special, int32_t **ids,
                size_t *n_ids)
{
    wandler_error err = {0};
    int rc = wl_tokenize(v, s, n, bos, special, ids, n_ids, &err);
    if (rc != WANDLER_OK)
        fail_msg("wl_tokenize: %s", err.message);
    assert_non_null(*ids);
}

/* Tokenizes a C string and compares with the expected ids (terminated by -1). */
static void expect_ids(const wl_vocab *v, const char *s, int bos, int special, const int32_t *want)
{
    int32_t *ids;
    size_t n;
    tok(v, s, strlen(s), bos, special, &ids, &n);
    size_t nw = 0;
    while (want[nw] >= 0)
        nw++;
    int same = n == nw && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        char got[512] = "", exp[512] = "";
        for (size_t i = 0; i < n && strlen(got) < 480; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %d", ids[i]);
        for (size_t i = 0; i < nw && strlen(exp) < 480; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %d", want[i]);
        free(ids);
        fail_msg("\"%s\": got [%s ], expected [%s ]", s, got, exp);
    }
    free(ids);
}

static char *decode(const wl_vocab *v, const int32_t *ids, size_t n, size_t *len)
{
    wl_buf out = {0};
    assert_int_equal(wl_detokenize(v, ids, n, 0, &out), 0);
    *len = out.len;
    return wl_buf_take(&out);
}

/* ---- llama.cpp's test vectors ---- */

typedef struct vectors {
    char *inp, *out;       /* the files */
    char **texts;          /* inputs, NUL-terminated (and with their lengths) */
    size_t *text_len;
    char **lines;          /* expected ids, one line per input */
    size_t n;
} vectors;

static void vectors_load(vectors *vec, const char *name)
{
    char path[256];
    memset(vec, 0, sizeof *vec);
    snprintf(path, sizeof path, "tokenizer/%s.inp", name);
    size_t n_inp = 0, n_out = 0;
    vec->inp = wl_test_read_file(wl_test_shared(path), &n_inp);
    snprintf(path, sizeof path, "tokenizer/%s.out", name);
    vec->out = wl_test_read_file(wl_test_shared(path), &n_out);
    assert_non_null(vec->inp);
    assert_non_null(vec->out);
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    size_t cap = 256;
    vec->texts = calloc(cap, sizeof *vec->texts);
    vec->text_len = calloc(cap, sizeof *vec->text_len);
    vec->lines = calloc(cap, sizeof *vec->lines);
    char *p = vec->inp;
    for (;;) {
        char *sep = strstr(p, SEP);
        if (!sep)
            break;
        assert_true(vec->n < cap);
        *sep = '\0';
        vec->texts[vec->n] = p;
        vec->text_len[vec->n] = (size_t)(sep - p);
        vec->n++;
        p = sep + strlen(SEP);
    }
    size_t n_lines = 0;
    for (char *q = vec->out; *q;) {
        char *nl = strchr(q, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(n_lines < cap);
        vec->lines[n_lines++] = q;
        q = nl + 1;
    }
    assert_int_equal(n_lines, vec->n);
}

static void vectors_free(vectors *vec)
{
    free(vec->inp);
    free(vec->out);
    free(vec->texts);
    free(vec->text_len);
    free(vec->lines);
}

static size_t parse_ids(const char *line, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *end;
    for (const char *p = line;;) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        assert_true(n < cap);
        ids[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

static void run_vectors(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/%s", name);
    wl_vocab *v = load_vocab(rel, NULL);
    vectors vec;
    vectors_load(&vec, name);
    size_t pass = 0, roundtrip = 0;
    int32_t want[4096];
    for (size_t i = 0; i < vec.n; i++) {
        size_t nw = parse_ids(vec.lines[i], want, 4096);
        int32_t *ids;
        size_t n;
        tok(v, vec.texts[i], vec.text_len[i], 0, 0, &ids, &n);
        if (n == nw && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0))
            pass++;
        else
            print_message("%s: input %zu \"%s\" differs\n", name, i, vec.texts[i]);
        size_t len;
        char *back = decode(v, ids, n, &len);
        if (len == vec.text_len[i] && memcmp(back, vec.texts[i], len) == 0)
            roundtrip++;
        else
            print_message("%s: input %zu \"%s\" decodes to \"%s\"\n", name, i, vec.texts[i], back);
        free(back);
        free(ids);
    }
    printf("%s: %zu/%zu vectors match, %zu/%zu round-trip\n", name, pass, vec.n, roundtrip, vec.n);
    assert_int_equal(pass, vec.n);
    assert_int_equal(roundtrip, vec.n);
    vectors_free(&vec);
    wl_vocab_free(v);
}

static void test_vectors_llama_spm(void **state)
{
    (void)state;
    run_vectors("ggml-vocab-llama-spm.gguf");
}

static void test_vectors_phi3(void **state)
{
    (void)state;
    run_vectors("ggml-vocab-phi-3.gguf");
}

/* ---- the bundled model ---- */

/* The value of "key": "..." in a JSON line (simple escapes only: the golden prompts are plain). */
static char *json_string(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(line, pat);
    assert_non_null(p);
    p += strlen(pat);
    wl_buf b = {0};
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            char e = *p++;
            if (e == 'u') {
                unsigned cp = 0;
                sscanf(p, "%4x", &cp);
                p += 4;
                char enc[4];
                assert_int_equal(wl_buf_append(&b, enc, wl_utf8_encode(cp, enc)), 0);
                continue;
            }
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        }
        assert_int_equal(wl_buf_append(&b, &c, 1), 0);
    }
    return wl_buf_take(&b);
}

static size_t json_ids(const char *line, const char *key, int32_t *ids, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": [", key);
    const char *p = strstr(line, pat);
    assert_non_null(p);
    p += strlen(pat);
    size_t n = 0;
    while (*p && *p != ']') {
        char *end;
        long x = strtol(p, &end, 10);
        assert_true(end != p);
        assert_true(n < cap);
        ids[n++] = (int32_t)x;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return n;
}

static void test_stories260k(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("models/stories260K.gguf", NULL);
    assert_int_equal(wl_vocab_kind_of(v), WL_VOCAB_SPM);
    assert_int_equal(wl_vocab_size(v), 512);
    assert_int_equal(wl_vocab_bos(v), 1);
    assert_int_equal(wl_vocab_eos(v), 2);
    assert_int_equal(wl_vocab_unk(v), 0);
    assert_int_equal(wl_vocab_add_bos(v), 1);
    assert_int_equal(wl_vocab_add_eos(v), 0);
    assert_true(wl_vocab_is_eog(v, 2));
    assert_false(wl_vocab_is_eog(v, 1));
    assert_false(wl_vocab_is_eog(v, 600));
    assert_int_equal(wl_vocab_token_type(v, 1), WL_TOKEN_CONTROL);
    size_t len;
    assert_string_equal(wl_vocab_token_text(v, 13, &len), "<0x0A>");

    size_t size = 0;
    char *golden = wl_test_read_file(wl_test_shared("golden/stories260K.greedy.jsonl"), &size);
    assert_non_null(golden);
    size_t lines = 0;
    for (char *line = golden; *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *prompt = json_string(line, "prompt");
        int32_t want[256];
        size_t nw = json_ids(line, "prompt_ids", want, 256);
        int32_t *ids;
        size_t n;
        tok(v, prompt, strlen(prompt), 1, 0, &ids, &n);
        if (n != nw || memcmp(ids, want, n * sizeof *ids) != 0)
            fail_msg("golden prompt \"%s\" tokenizes differently", prompt);
        free(ids);

        /* the generated tokens, streamed through the detokenizer, give the golden text */
        int32_t gen[256];
        size_t ng = json_ids(line, "generated_ids", gen, 256);
        char *text = json_string(line, "text");
        wl_detok d;
        wl_detok_init(&d, v);
        wl_buf out = {0};
        for (size_t i = 0; i < ng; i++)
            assert_int_equal(wl_detok_push(&d, gen[i], &out), 0);
        assert_int_equal(wl_detok_finish(&d, &out), 0);
        assert_string_equal(out.data, text);
        wl_buf_free(&out);
        free(text);
        free(prompt);
        lines++;
        line = nl ? nl + 1 : line + strlen(line);
    }
    printf("stories260K: %zu/%zu golden prompts match\n", lines, lines);
    assert_true(lines >= 7);
    free(golden);
    wl_vocab_free(v);
}

/* ---- the merge rules, on vocabularies built in memory ---- */

#define T(...) ((const int32_t[]){__VA_ARGS__, -1})
#define NONE_IDS ((const int32_t[]){-1})
#define B(b) (FIX_BYTE0 + (b))

static void test_merge_by_score(void **state)
{
    (void)state;
    /* "▁ab": candidates "▁a" (score 1) and "ab" (score 2): "ab" merges first, then nothing
     * makes "▁ab" except the whole token (score 0), which merges last. */
    static const char *const texts[] = {"\xE2\x96\x81", "a", "b", "c", "\xE2\x96\x81" "a", "ab",
                                        "\xE2\x96\x81" "ab", "bc"};
    static const float scores[] = {-1, -1, -1, -1, 1, 2, 0, 2};
    wl_vocab *v = wl_test_spm_vocab(texts, scores, NULL, 8);
    int F = FIX_FIRST;
    expect_ids(v, "ab", 0, 0, T(F + 6));
    /* "▁abc": "ab" and "bc" tie at 2: the leftmost pair wins, "▁" + "ab" -> "▁ab", then "c" */
    expect_ids(v, "abc", 0, 0, T(F + 6, F + 3));
    /* "▁a▁b": spaces are "▁"; no "a▁" token */
    expect_ids(v, "a b", 0, 0, T(F + 4, F + 0, F + 2));
    /* BOS only when asked */
    expect_ids(v, "a", 1, 0, T(FIX_BOS, F + 4));
    /* empty text: nothing, not even the dummy prefix */
    expect_ids(v, "", 0, 0, NONE_IDS);
    expect_ids(v, "", 1, 0, T(FIX_BOS));
    /* byte fallback for what is not in the vocabulary: "é" is C3 A9 */
    expect_ids(v, "\xC3\xA9", 0, 0, T(F + 0, B(0xC3), B(0xA9)));
    expect_ids(v, "a\n", 0, 0, T(F + 4, B('\n')));
    wl_vocab_free(v);
}

/* Ties between equal scores go to the leftmost pair, even when a later merge would be better. */
static void test_tie_break_leftmost(void **state)
{
    (void)state;
    static const char *const texts[] = {"\xE2\x96\x81", "x", "xx", "xxx"};
    static const float scores[] = {0, 0, 5, 1};
    wl_vocab *v = wl_test_spm_vocab(texts, scores, NULL, 4);
    int F = FIX_FIRST;
    /* ▁ x x x: "xx" at (1,2) and (2,3) tie; the left one merges: ▁ [xx] x -> "xxx" (score 1) */
    expect_ids(v, "xxx", 0, 0, T(F + 0, F + 3));
    /* ▁ x x x x: xx at 1 merges, then xx at (3,4); then "xxxx" is no token */
    expect_ids(v, "xxxx", 0, 0, T(F + 0, F + 2, F + 2));
    wl_vocab_free(v);
}

/* With no byte tokens, unknown pieces become UNK, one per byte (as the byte fallback would). */
static void test_unk_without_byte_tokens(void **state)
{
    (void)state;
    wl_strview texts[] = {{"<unk>", 5}, {"<s>", 3}, {"</s>", 4}, {"\xE2\x96\x81", 3}, {"h", 1},
                          {"i", 1}, {"\xE2\x96\x81h", 4}};
    int32_t types[] = {WL_TOKEN_UNKNOWN, WL_TOKEN_CONTROL, WL_TOKEN_CONTROL, 1, 1, 1, 1};
    float scores[] = {0, 0, 0, 0, 0, 0, 1};
    wl_vocab_spec spec = wl_vocab_spec_default(WL_VOCAB_SPM);
    spec.n_tokens = 7;
    spec.texts = texts;
    spec.types = types;
    spec.scores = scores;
    wl_vocab *v = NULL;
    wandler_error err = {0};
    assert_int_equal(wl_vocab_build(&spec, &v, &err), WANDLER_OK);
    expect_ids(v, "hi!", 0, 0, T(6, 5, 0));
    expect_ids(v, "h\xC3\xA9", 0, 0, T(6, 0, 0));
    /* UNK renders as nothing, or as its text when rendering specials */
    char buf[16];
    assert_int_equal(wl_token_to_bytes(v, 0, 0, buf, sizeof buf), 0);
    assert_int_equal(wl_token_to_bytes(v, 0, 1, buf, sizeof buf), 5);
    assert_memory_equal(buf, "<unk>", 5);
    wl_vocab_free(v);

    /* and without UNK either, the vocabulary cannot represent text: refused */
    spec.unk = -1;
    assert_int_equal(wl_vocab_build(&spec, &v, &err), WANDLER_ERR_MODEL_BAD_VOCAB);
    assert_null(v);
}

static void test_add_space_prefix_off(void **state)
{
    (void)state;
    wl_strview texts[] = {{"<unk>", 5}, {"a", 1}, {"\xE2\x96\x81", 3}, {"\xE2\x96\x81" "a", 4}};
    wl_vocab_spec spec = wl_vocab_spec_default(WL_VOCAB_SPM);
    spec.n_tokens = 4;
    spec.texts = texts;
    spec.bos = spec.eos = -1;
    spec.add_space_prefix = 0;
    wl_vocab *v = NULL;
    wandler_error err = {0};
    assert_int_equal(wl_vocab_build(&spec, &v, &err), WANDLER_OK);
    expect_ids(v, "a a", 0, 0, T(1, 3));
    expect_ids(v, "a", 1, 0, T(1)); /* no BOS in this vocab: nothing prepended */
    size_t len;
    int32_t ids[] = {3, 1};
    char *s = decode(v, ids, 2, &len);
    assert_string_equal(s, " aa"); /* no dummy prefix, so no space is dropped */
    free(s);
    wl_vocab_free(v);
}

/* ---- special tokens ---- */

static void test_parse_special(void **state)
{
    (void)state;
    static const char *const texts[] = {"\xE2\x96\x81", "h", "i", "\xE2\x96\x81hi",
                                        "<|end|>", "<|end|>x", "<|user|>", "hi"};
    static const float scores[] = {0, 0, 0, 1, 0, 0, 0, 0.5f};
    static const int32_t types[] = {1, 1, 1, 1, WL_TOKEN_CONTROL, WL_TOKEN_CONTROL,
                                    WL_TOKEN_USER_DEFINED, 1};
    wl_vocab *v = wl_test_spm_vocab(texts, scores, types, 8);
    int F = FIX_FIRST;
    /* parse_special: control tokens split out; the text after one gets the dummy prefix */
    expect_ids(v, "hi<|end|>hi", 0, 1, T(F + 3, F + 4, F + 3));
    /* the longest special text wins */
    expect_ids(v, "<|end|>xhi", 0, 1, T(F + 5, F + 3));
    /* </s> and <s> are control tokens too */
    expect_ids(v, "<s>hi</s>", 0, 1, T(FIX_BOS, F + 3, FIX_EOS));
    /* without parse_special the control text is plain text (here: bytes) */
    int32_t *ids;
    size_t n;
    tok(v, "hi<|end|>", 9, 0, 0, &ids, &n);
    assert_int_equal(n, 1 + 7);
    assert_int_equal(ids[0], F + 3);
    assert_int_equal(ids[1], B('<'));
    free(ids);
    /* user-defined tokens are split out either way (as llama.cpp does) */
    expect_ids(v, "hi<|user|>hi", 0, 0, T(F + 3, F + 6, F + 3));
    expect_ids(v, "<|user|>", 0, 0, T(F + 6));
    /* <unk> is only parsed with parse_special */
    expect_ids(v, "<unk>", 0, 1, T(FIX_UNK));
    /* specials next to each other, at both ends */
    expect_ids(v, "<|end|><|end|>", 0, 1, T(F + 4, F + 4));
    wl_vocab_free(v);
}

/* llama.cpp strips the whitespace after Phi-3's special tokens (recognized by general.name). */
static void test_phi3_rstrip(void **state)
{
    (void)state;
    wl_strview texts[] = {{"<unk>", 5}, {"<s>", 3}, {"</s>", 4}, {"\xE2\x96\x81", 3}, {"h", 1},
                          {"\xE2\x96\x81h", 4}, {"<|user|>", 8}, {"<|endoftext|>", 13}};
    int32_t types[] = {2, 3, 3, 1, 1, 1, WL_TOKEN_USER_DEFINED, WL_TOKEN_CONTROL};
    float scores[] = {0, 0, 0, 0, 0, 1, 0, 0};
    wl_vocab_spec spec = wl_vocab_spec_default(WL_VOCAB_SPM);
    spec.n_tokens = 8;
    spec.texts = texts;
    spec.types = types;
    spec.scores = scores;
    spec.name = "Phi3";
    wl_vocab *v = NULL;
    wandler_error err = {0};
    assert_int_equal(wl_vocab_build(&spec, &v, &err), WANDLER_OK);
    expect_ids(v, "<|user|>  \nh", 0, 0, T(6, 5));
    expect_ids(v, "<|endoftext|> h", 0, 1, T(7, 3, 5)); /* no rstrip on <|endoftext|> */
    assert_true(wl_vocab_is_eog(v, 7));
    wl_vocab_free(v);
    spec.name = "llama";
    assert_int_equal(wl_vocab_build(&spec, &v, &err), WANDLER_OK);
    expect_ids(v, "<|user|> h", 0, 0, T(6, 3, 5)); /* "▁" + "▁h" */
    wl_vocab_free(v);
}

static void test_eog(void **state)
{
    (void)state;
    static const char *const texts[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>",
                                        "hello", "<|eom_id|>", "<EOT>"};
    wl_vocab *v = wl_test_spm_vocab(texts, NULL, NULL, 7);
    assert_true(wl_vocab_is_eog(v, FIX_EOS));
    for (int i = 0; i < 7; i++) {
        assert_int_equal(wl_vocab_is_eog(v, FIX_FIRST + i), i != 4);
        /* llama.cpp treats these as control tokens whatever the file says */
        if (i != 4)
            assert_int_equal(wl_vocab_token_type(v, FIX_FIRST + i), WL_TOKEN_CONTROL);
    }
    assert_false(wl_vocab_is_eog(v, FIX_BOS));
    assert_false(wl_vocab_is_eog(v, -1));
    wl_vocab_free(v);
}

static void test_bad_utf8(void **state)
{
    (void)state;
    wl_vocab *v = wl_test_spm_vocab(NULL, NULL, NULL, 0);
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    wandler_error err = {0};
    assert_int_equal(wl_tokenize(v, "ab\xFF", 3, 0, 0, &ids, &n, &err), WANDLER_ERR_BAD_UTF8);
    assert_int_equal(err.code, WANDLER_ERR_BAD_UTF8);
    assert_null(ids);
    assert_int_equal(n, 0);
    assert_int_equal(wl_tokenize(v, "\xED\xA0\x80", 3, 0, 0, &ids, &n, &err),
                     WANDLER_ERR_BAD_UTF8);
    assert_int_equal(wl_tokenize(v, "\xC3", 1, 0, 0, &ids, &n, &err), WANDLER_ERR_BAD_UTF8);
    /* an embedded NUL is a valid character: byte fallback */
    expect_ids(v, "", 0, 0, NONE_IDS);
    assert_int_equal(wl_tokenize(v, "a\0b", 3, 0, 0, &ids, &n, &err), WANDLER_OK);
    assert_int_equal(n, 3 + 1 + 1 + 1); /* bytes of "▁", a, NUL, b */
    assert_int_equal(ids[4], B(0));
    free(ids);
    wl_vocab_free(v);
}

static void test_token_to_bytes(void **state)
{
    (void)state;
    static const char *const texts[] = {"\xE2\x96\x81" "a\xE2\x96\x81" "b", "<|u|>", "x"};
    static const int32_t types[] = {1, WL_TOKEN_USER_DEFINED, WL_TOKEN_UNUSED};
    wl_vocab *v = wl_test_spm_vocab(texts, NULL, types, 3);
    char buf[16];
    assert_int_equal(wl_token_to_bytes(v, FIX_FIRST, 0, buf, sizeof buf), 4);
    assert_memory_equal(buf, " a b", 4);
    assert_int_equal(wl_token_to_bytes(v, FIX_FIRST, 0, buf, 2), 4); /* truncated: full length */
    assert_memory_equal(buf, " a", 2);
    assert_int_equal(wl_token_to_bytes(v, FIX_FIRST, 0, NULL, 0), 4);
    assert_int_equal(wl_token_to_bytes(v, FIX_FIRST + 1, 0, buf, sizeof buf), 5);
    assert_memory_equal(buf, "<|u|>", 5);
    assert_int_equal(wl_token_to_bytes(v, FIX_FIRST + 2, 1, buf, sizeof buf), 0); /* unused */
    assert_int_equal(wl_token_to_bytes(v, B(0xE2), 0, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0xE2);
    assert_int_equal(wl_token_to_bytes(v, FIX_BOS, 0, buf, sizeof buf), 0);
    assert_int_equal(wl_token_to_bytes(v, FIX_BOS, 1, buf, sizeof buf), 3);
    assert_memory_equal(buf, "<s>", 3);
    assert_int_equal(wl_token_to_bytes(v, -5, 1, buf, sizeof buf), 0);
    assert_int_equal(wl_token_to_bytes(v, 1 << 30, 1, buf, sizeof buf), 0);

    /* decoding drops the dummy prefix's space from the first piece only */
    int32_t ids[] = {FIX_FIRST, FIX_FIRST};
    size_t len;
    char *s = decode(v, ids, 2, &len);
    assert_string_equal(s, "a b a b");
    free(s);
    /* a BOS first takes the strip (llama.cpp's rule): the space stays */
    int32_t ids2[] = {FIX_BOS, FIX_FIRST};
    s = decode(v, ids2, 2, &len);
    assert_string_equal(s, " a b");
    free(s);
    wl_vocab_free(v);
}

/* ---- broken vocabularies built from arrays ---- */

static void expect_build_error(const wl_vocab_spec *spec, int code, const char *what)
{
    wl_vocab *v = (wl_vocab *)1;
    wandler_error err = {0};
    int rc = wl_vocab_build(spec, &v, &err);
    if (rc != code)
        fail_msg("%s: got %d (%s), expected %d", what, rc, err.message, code);
    assert_int_equal(err.code, code);
    assert_true(err.message[0] != '\0');
    assert_null(v);
}

static void test_bad_vocab_arrays(void **state)
{
    (void)state;
    /* the real stories260K vocabulary, as arrays we can break */
    gguf_file *f;
    wl_vocab *good = load_vocab("models/stories260K.gguf", &f);
    int32_t n = wl_vocab_size(good);
    wl_strview *texts = calloc((size_t)n, sizeof *texts);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    int64_t kt = gguf_find_key(f, "tokenizer.ggml.tokens");
    int64_t ks = gguf_find_key(f, "tokenizer.ggml.scores");
    int64_t ky = gguf_find_key(f, "tokenizer.ggml.token_type");
    for (int32_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(f, kt, (uint64_t)i);
        texts[i] = (wl_strview){s.ptr, (size_t)s.len};
        scores[i] = (float)gguf_arr_float(f, ks, (uint64_t)i);
        types[i] = (int32_t)gguf_arr_int(f, ky, (uint64_t)i);
    }
    wl_vocab_spec base = wl_vocab_spec_default(WL_VOCAB_SPM);
    base.n_tokens = n;
    base.texts = texts;
    base.scores = scores;
    base.types = types;
    wl_vocab *v = NULL;
    wandler_error err = {0};
    assert_int_equal(wl_vocab_build(&base, &v, &err), WANDLER_OK); /* unbroken, it builds */
    wl_vocab_free(v);

    wl_vocab_spec s;
    s = base; s.n_tokens = 0; expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "no tokens");
    s = base; s.n_tokens = -3; expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "negative");
    s = base; s.texts = NULL; expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "no texts");
    s = base; s.bos = n; expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "bos = n");
    s = base; s.eos = 1LL << 40; expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "eos huge");
    s = base; s.unk = -7; expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "unk negative");
    s = base; s.eot = n + 5; expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "eot");
    s = base; s.kind = 99; expect_build_error(&s, WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER, "kind");

    int32_t old_type = types[300];
    types[300] = 7;
    expect_build_error(&base, WANDLER_ERR_MODEL_BAD_VOCAB, "type 7");
    types[300] = -1;
    expect_build_error(&base, WANDLER_ERR_MODEL_BAD_VOCAB, "type -1");
    types[300] = WL_TOKEN_BYTE; /* a byte token whose text is not <0xNN> */
    expect_build_error(&base, WANDLER_ERR_MODEL_BAD_VOCAB, "byte text");
    types[300] = old_type;

    float old_score = scores[300];
    scores[300] = 0.0f / 0.0f;
    expect_build_error(&base, WANDLER_ERR_MODEL_BAD_VOCAB, "NaN score");
    scores[300] = old_score;

    wl_strview old_text = texts[300];
    texts[300] = texts[301]; /* duplicate */
    expect_build_error(&base, WANDLER_ERR_MODEL_BAD_VOCAB, "duplicate");
    texts[300] = (wl_strview){NULL, 4};
    expect_build_error(&base, WANDLER_ERR_MODEL_BAD_VOCAB, "NULL text");
    texts[300] = (wl_strview){"", 0}; /* empty: renamed as llama.cpp does, still fine */
    assert_int_equal(wl_vocab_build(&base, &v, &err), WANDLER_OK);
    size_t len;
    assert_string_equal(wl_vocab_token_text(v, 300, &len), "[EMPTY_300]");
    wl_vocab_free(v);
    texts[300] = old_text;

    /* a byte token removed and no UNK: the byte has nowhere to go */
    wl_strview old_byte = texts[3 + 0x41];
    texts[3 + 0x41] = (wl_strview){"<0x41-gone>", 11};
    types[3 + 0x41] = WL_TOKEN_NORMAL;
    s = base;
    s.unk = -1;
    /* 'A' itself may be a token: then the single-byte fallback covers it */
    v = NULL;
    int rc = wl_vocab_build(&s, &v, &err);
    assert_true(rc == WANDLER_OK || rc == WANDLER_ERR_MODEL_BAD_VOCAB);
    wl_vocab_free(v);
    texts[3 + 0x80] = (wl_strview){"<0x80-gone>", 11};
    types[3 + 0x80] = WL_TOKEN_NORMAL;
    expect_build_error(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "byte 0x80 missing, no unk");
    texts[3 + 0x41] = old_byte;

    free(texts);
    free(scores);
    free(types);
    gguf_close(f);
    wl_vocab_free(good);
}

/* ---- broken vocabularies in GGUF images ---- */

/* A GGUF v3 image with metadata only, written by hand (little-endian). */
typedef struct image {
    wl_buf body;
    uint64_t n_kv;
} image;

static void put(image *im, const void *p, size_t n)
{
    assert_int_equal(wl_buf_append(&im->body, p, n), 0);
}
static void put_u32(image *im, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(im, b, 4);
}
static void put_u64(image *im, uint64_t v)
{
    put_u32(im, (uint32_t)v);
    put_u32(im, (uint32_t)(v >> 32));
}
static void put_str(image *im, const char *s)
{
    put_u64(im, strlen(s));
    put(im, s, strlen(s));
}
static void key(image *im, const char *k, uint32_t type)
{
    put_str(im, k);
    put_u32(im, type);
    im->n_kv++;
}
static void kv_str(image *im, const char *k, const char *v)
{
    key(im, k, GGUF_TYPE_STRING);
    put_str(im, v);
}
static void kv_u32(image *im, const char *k, uint32_t v)
{
    key(im, k, GGUF_TYPE_UINT32);
    put_u32(im, v);
}
static void kv_strs(image *im, const char *k, const char *const *v, size_t n)
{
    key(im, k, GGUF_TYPE_ARRAY);
    put_u32(im, GGUF_TYPE_STRING);
    put_u64(im, n);
    for (size_t i = 0; i < n; i++)
        put_str(im, v[i]);
}
static void kv_f32s(image *im, const char *k, size_t n)
{
    key(im, k, GGUF_TYPE_ARRAY);
    put_u32(im, GGUF_TYPE_FLOAT32);
    put_u64(im, n);
    for (size_t i = 0; i < n; i++)
        put_u32(im, 0); /* 0.0f */
}
static void kv_i32s(image *im, const char *k, const int32_t *v, size_t n)
{
    key(im, k, GGUF_TYPE_ARRAY);
    put_u32(im, GGUF_TYPE_INT32);
    put_u64(im, n);
    for (size_t i = 0; i < n; i++)
        put_u32(im, (uint32_t)v[i]);
}

/* Opens the image and loads its vocabulary; returns the status (and frees everything). */
static int load_image(image *im, wandler_error *err)
{
    image whole = {{0}, 0};
    put(&whole, "GGUF", 4);
    put_u32(&whole, 3);
    put_u64(&whole, 0); /* tensors */
    put_u64(&whole, im->n_kv);
    put(&whole, im->body.data, im->body.len);
    gguf_file *f = NULL;
    int rc = gguf_open_memory(whole.body.data, whole.body.len, &f, err);
    if (rc == WANDLER_OK) {
        wl_vocab *v = NULL;
        rc = wl_vocab_load(f, &v, err);
        if (rc == WANDLER_OK) {
            int32_t *ids;
            size_t n;
            /* a loaded vocab works on any text */
            assert_int_equal(wl_tokenize(v, "a b <s>", 7, 1, 1, &ids, &n, NULL), WANDLER_OK);
            free(ids);
        } else {
            assert_null(v);
        }
        wl_vocab_free(v);
        gguf_close(f);
    }
    wl_buf_free(&whole.body);
    wl_buf_free(&im->body);
    im->n_kv = 0;
    return rc;
}

static const char *const TOKS[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b"};
static const int32_t TYPES[] = {2, 3, 3, 1, 1, 1};

static void expect_load(int rc_want, int rc_got, const wandler_error *err, const char *what)
{
    if (rc_got != rc_want)
        fail_msg("%s: got %d (%s), expected %d", what, rc_got, err->message, rc_want);
}

static void test_bad_vocab_gguf(void **state)
{
    (void)state;
    image im = {{0}, 0};
    wandler_error err = {0};
    int rc;

    /* a minimal good one (no byte tokens, so UNK is the fallback) */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    kv_f32s(&im, "tokenizer.ggml.scores", 6);
    kv_i32s(&im, "tokenizer.ggml.token_type", TYPES, 6);
    kv_u32(&im, "tokenizer.ggml.padding_token_id", 4294967295u); /* unset */
    rc = load_image(&im, &err);
    expect_load(WANDLER_OK, rc, &err, "minimal vocab");

    /* no tokenizer.ggml.model */
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_MISSING_KEY, rc, &err, "no model key");

    /* a tokenizer wandler does not run (yet) */
    kv_str(&im, "tokenizer.ggml.model", "bert");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER, rc, &err, "bert");
    /* byte-level BPE needs its merges (test_bpe.c tests the rest) */
    kv_str(&im, "tokenizer.ggml.model", "gpt2");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_MISSING_KEY, rc, &err, "gpt2 without merges");
    kv_str(&im, "tokenizer.ggml.model", "");
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER, rc, &err, "empty model");

    /* model of the wrong type */
    kv_u32(&im, "tokenizer.ggml.model", 1);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_KEY_TYPE, rc, &err, "model not a string");

    /* no tokens */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_MISSING_KEY, rc, &err, "no tokens");

    /* tokens not strings */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_i32s(&im, "tokenizer.ggml.tokens", TYPES, 6);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_KEY_TYPE, rc, &err, "tokens not strings");

    /* tokens not an array */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_str(&im, "tokenizer.ggml.tokens", "a");
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_KEY_TYPE, rc, &err, "tokens not an array");

    /* zero tokens */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 0);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_BAD_VOCAB, rc, &err, "zero tokens");

    /* scores and types of the wrong length */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    kv_f32s(&im, "tokenizer.ggml.scores", 5);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_BAD_VOCAB, rc, &err, "5 scores");
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    kv_i32s(&im, "tokenizer.ggml.token_type", TYPES, 5);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_BAD_VOCAB, rc, &err, "5 types");

    /* scores of the wrong element type */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    kv_strs(&im, "tokenizer.ggml.scores", TOKS, 6);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_KEY_TYPE, rc, &err, "string scores");

    /* a token type GGUF does not define */
    int32_t bad_types[] = {2, 3, 3, 1, 99, 1};
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    kv_i32s(&im, "tokenizer.ggml.token_type", bad_types, 6);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_BAD_VOCAB, rc, &err, "type 99");

    /* special ids out of range */
    const char *id_keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                             "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                             "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
    for (size_t k = 0; k < sizeof id_keys / sizeof id_keys[0]; k++) {
        uint32_t bad_ids[] = {6, 1000, 4294967294u};
        for (size_t j = 0; j < 3; j++) {
            kv_str(&im, "tokenizer.ggml.model", "llama");
            kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
            kv_u32(&im, id_keys[k], bad_ids[j]);
            rc = load_image(&im, &err);
            expect_load(WANDLER_ERR_MODEL_BAD_VOCAB, rc, &err, id_keys[k]);
        }
        /* of the wrong type */
        kv_str(&im, "tokenizer.ggml.model", "llama");
        kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
        kv_str(&im, id_keys[k], "1");
        rc = load_image(&im, &err);
        expect_load(WANDLER_ERR_MODEL_KEY_TYPE, rc, &err, id_keys[k]);
        /* unset is fine */
        kv_str(&im, "tokenizer.ggml.model", "llama");
        kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
        kv_u32(&im, id_keys[k], 4294967295u);
        rc = load_image(&im, &err);
        expect_load(k == 2 ? WANDLER_ERR_MODEL_BAD_VOCAB : WANDLER_OK, rc, &err, id_keys[k]);
    }

    /* duplicate token texts */
    const char *dup[] = {"<unk>", "<s>", "</s>", "a", "a"};
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", dup, 5);
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_BAD_VOCAB, rc, &err, "duplicate");

    /* a vocab too small for the SPM default ids: they become unset */
    const char *tiny[] = {"a"};
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", tiny, 1);
    rc = load_image(&im, &err);
    expect_load(WANDLER_OK, rc, &err, "one token (unk 0)");

    /* flags of the wrong type */
    kv_str(&im, "tokenizer.ggml.model", "llama");
    kv_strs(&im, "tokenizer.ggml.tokens", TOKS, 6);
    kv_str(&im, "tokenizer.ggml.add_bos_token", "yes");
    rc = load_image(&im, &err);
    expect_load(WANDLER_ERR_MODEL_KEY_TYPE, rc, &err, "add_bos_token string");
}

/* The byte-level BPE vocabularies load as BPE, not as SPM (test_bpe.c tests them). */
static void test_bpe_vocab_is_bpe(void **state)
{
    (void)state;
    gguf_file *f = NULL;
    wandler_error err = {0};
    assert_int_equal(gguf_open(wl_test_shared("tokenizer/ggml-vocab-qwen2.gguf"), &f, &err),
                     WANDLER_OK);
    wl_vocab *v = NULL;
    assert_int_equal(wl_vocab_load(f, &v, &err), WANDLER_OK);
    assert_int_equal(wl_vocab_kind_of(v), WL_VOCAB_BPE);
    wl_vocab_free(v);
    gguf_close(f);
}

/* Random vocabularies and random texts: never a crash, always ids in range. */
static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void test_random_vocab_and_text(void **state)
{
    (void)state;
    static const char *const alphabet[] = {"a", "b", "\xE2\x96\x81", " ", "<", ">", "\xC3\xA9",
                                           "s", "|"};
    uint64_t x = 0xDEADBEEF;
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 1 + rnd(&x) % 40;
        char(*store)[16] = calloc(n, sizeof *store);
        wl_strview *texts = calloc(n, sizeof *texts);
        float *scores = calloc(n, sizeof *scores);
        int32_t *types = calloc(n, sizeof *types);
        for (size_t i = 0; i < n; i++) {
            size_t parts = 1 + rnd(&x) % 3;
            for (size_t k = 0; k < parts; k++)
                strcat(store[i], alphabet[rnd(&x) % 9]);
            texts[i] = (wl_strview){store[i], strlen(store[i])};
            scores[i] = (float)(rnd(&x) % 7) - 3;
            types[i] = (int32_t)(rnd(&x) % 7);
        }
        wl_vocab_spec spec = wl_vocab_spec_default(WL_VOCAB_SPM);
        spec.n_tokens = (int64_t)n;
        spec.texts = texts;
        spec.scores = scores;
        spec.types = types;
        spec.bos = (int64_t)(rnd(&x) % (n + 1)) - 1;
        spec.unk = (int64_t)(rnd(&x) % (n + 1)) - 1;
        wl_vocab *v = NULL;
        wandler_error err = {0};
        if (wl_vocab_build(&spec, &v, &err) == WANDLER_OK) {
            for (int t = 0; t < 20; t++) {
                char text[64] = "";
                size_t parts = rnd(&x) % 10;
                for (size_t k = 0; k < parts; k++)
                    strcat(text, alphabet[rnd(&x) % 9]);
                int32_t *ids;
                size_t nid;
                assert_int_equal(wl_tokenize(v, text, strlen(text), (int)(rnd(&x) & 1),
                                             (int)(rnd(&x) & 1), &ids, &nid, &err),
                                 WANDLER_OK);
                for (size_t k = 0; k < nid; k++)
                    assert_true(ids[k] >= 0 && ids[k] < (int32_t)n);
                wl_buf out = {0};
                assert_int_equal(wl_detokenize(v, ids, nid, (int)(rnd(&x) & 1), &out), 0);
                wl_buf_free(&out);
                free(ids);
            }
            wl_vocab_free(v);
        } else {
            assert_null(v);
            assert_true(err.code == WANDLER_ERR_MODEL_BAD_VOCAB);
        }
        free(store);
        free(texts);
        free(scores);
        free(types);
    }
}

/* Random valid UTF-8 through a real vocabulary round-trips (text without a literal "▁", which
 * SPM cannot tell from a space). */
static void test_roundtrip_random(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("tokenizer/ggml-vocab-llama-spm.gguf", NULL);
    static const char *const pieces[] = {"a", "the", " ", "  ", "\n", "\t", "\xC3\xA9", "\xE4\xBD\xA0",
                                         "\xF0\x9F\x98\x81", "!", "123", "<s>",
                                         "Hello", "\xD0\xBF\xD1\x80\xD0\xB8"};
    uint64_t x = 42;
    for (int iter = 0; iter < 500; iter++) {
        char text[256] = "";
        size_t parts = rnd(&x) % 20;
        for (size_t k = 0; k < parts; k++)
            strcat(text, pieces[rnd(&x) % (sizeof pieces / sizeof pieces[0])]);
        int32_t *ids;
        size_t n, len;
        tok(v, text, strlen(text), 0, 0, &ids, &n);
        char *back = decode(v, ids, n, &len);
        if (len != strlen(text) || memcmp(back, text, len) != 0)
            fail_msg("\"%s\" decodes to \"%s\"", text, back);
        free(back);
        free(ids);
    }
    wl_vocab_free(v);
}

/* ---- speed (printed, not asserted) ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_speed(void **state)
{
    (void)state;
    double t0 = now_s();
    wl_vocab *v = load_vocab("tokenizer/ggml-vocab-llama-spm.gguf", NULL);
    double t_load = now_s() - t0;
    size_t size;
    char *inp = wl_test_read_file(wl_test_shared("tokenizer/ggml-vocab-llama-spm.gguf.inp"), &size);
    assert_non_null(inp);
    wl_buf text = {0};
    while (text.len < 1000000)
        assert_int_equal(wl_buf_append(&text, inp, size), 0);
    free(inp);
    int32_t *ids;
    size_t n;
    t0 = now_s();
    tok(v, text.data, text.len, 1, 1, &ids, &n);
    double dt = now_s() - t0;
    printf("spm speed: vocab load %.1f ms; %zu bytes -> %zu tokens in %.1f ms: %.2f M tokens/s, "
           "%.1f MB/s\n",
           t_load * 1e3, text.len, n, dt * 1e3, n / dt / 1e6, text.len / dt / 1e6);
    free(ids);
    wl_buf_free(&text);
    wl_vocab_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_llama_spm),
        cmocka_unit_test(test_vectors_phi3),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_merge_by_score),
        cmocka_unit_test(test_tie_break_leftmost),
        cmocka_unit_test(test_unk_without_byte_tokens),
        cmocka_unit_test(test_add_space_prefix_off),
        cmocka_unit_test(test_parse_special),
        cmocka_unit_test(test_phi3_rstrip),
        cmocka_unit_test(test_eog),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_token_to_bytes),
        cmocka_unit_test(test_bad_vocab_arrays),
        cmocka_unit_test(test_bad_vocab_gguf),
        cmocka_unit_test(test_bpe_vocab_is_bpe),
        cmocka_unit_test(test_random_vocab_and_text),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
