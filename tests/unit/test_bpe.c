/* test_bpe.c - byte-level BPE (tokenizer.ggml.model = "gpt2") and its pre-tokenizers.
 *
 * Real vocabularies against llama.cpp's test vectors (gpt-2, llama3, qwen2, smollm2,
 * deepseek-llm, mpt), the round trip text -> ids -> text, the merge rules on vocabularies built
 * in memory, special tokens, vocabularies broken on purpose, several threads on one vocabulary,
 * and the speed on a long text (printed, not asserted).
 *
 * With WANDLER_WRITE_CORPUS=dir, test_fuzz_seeds writes the seeds of fuzz_vocab (a small BPE and
 * a small SPM vocabulary) into dir; they are committed under tests/fuzz/corpus/vocab (regenerate
 * with WANDLER_WRITE_CORPUS=$PWD/tests/fuzz/corpus/vocab). */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "text/byte_unicode.h"
#include "text/detok.h"
#include "text/pretokenize.h"
#include "text/utf8.h"
#include "text/vocab.h"
#include "text/vocab_build.h"
#include "util/buf.h"

/* ---- helpers ---- */

static wl_vocab *load_vocab(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf", name);
    gguf_file *f = NULL;
    wandler_error err = {0};
    if (gguf_open(wl_test_shared(rel), &f, &err) != WANDLER_OK)
        fail_msg("gguf_open %s: %s", rel, err.message);
    wl_vocab *v = NULL;
    if (wl_vocab_load(f, &v, &err) != WANDLER_OK)
        fail_msg("wl_vocab_load %s: %s", rel, err.message);
    gguf_close(f);
    assert_int_equal(wl_vocab_kind_of(v), WL_VOCAB_BPE);
    return v;
}

static void tok(const wl_vocab *v, const char *s, size_t n, int bos, int special, int32_t **ids,
                size_t *n_ids)
{
    wandler_error err = {0};
    if (wl_tokenize(v, s, n, bos, special, ids, n_ids, &err) != WANDLER_OK)
        fail_msg("wl_tokenize: %s", err.message);
    assert_non_null(*ids);
}

static void format_ids(char *buf, size_t cap, const int32_t *ids, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n && strlen(buf) + 16 < cap; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), " %d", ids[i]);
}

/* Tokenizes a C string and compares with the expected ids (terminated by -1). */
static void expect_ids(const wl_vocab *v, const char *s, int special, const int32_t *want)
{
    int32_t *ids;
    size_t n, nw = 0;
    tok(v, s, strlen(s), 0, special, &ids, &n);
    while (want[nw] >= 0)
        nw++;
    if (n != nw || (n && memcmp(ids, want, n * sizeof *ids) != 0)) {
        char got[512], exp[512];
        format_ids(got, sizeof got, ids, n);
        format_ids(exp, sizeof exp, want, nw);
        free(ids);
        fail_msg("\"%s\": got [%s ], expected [%s ]", s, got, exp);
    }
    free(ids);
}

#define T(...) ((const int32_t[]){__VA_ARGS__, -1})
#define NONE_IDS ((const int32_t[]){-1})

static char *decode(const wl_vocab *v, const int32_t *ids, size_t n, int special, size_t *len)
{
    wl_buf out = {0};
    assert_int_equal(wl_detokenize(v, ids, n, special, &out), 0);
    *len = out.len;
    return wl_buf_take(&out);
}

/* Streams ids through the detokenizer one by one. */
static char *stream(const wl_vocab *v, const int32_t *ids, size_t n, size_t *len)
{
    wl_detok d;
    wl_detok_init(&d, v);
    wl_buf out = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wl_detok_push(&d, ids[i], &out), 0);
    assert_int_equal(wl_detok_finish(&d, &out), 0);
    *len = out.len;
    return wl_buf_take(&out);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- llama.cpp's test vectors ---- */

typedef struct vectors {
    char *inp, *out;
    char *texts[256];
    size_t text_len[256];
    char *lines[256];
    size_t n;
} vectors;

static void vectors_load(vectors *vec, const char *name)
{
    char rel[256];
    memset(vec, 0, sizeof *vec);
    snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf.inp", name);
    vec->inp = wl_test_read_file(wl_test_shared(rel), NULL);
    snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf.out", name);
    vec->out = wl_test_read_file(wl_test_shared(rel), NULL);
    assert_non_null(vec->inp);
    assert_non_null(vec->out);
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    for (char *p = vec->inp, *sep; (sep = strstr(p, SEP)) != NULL; p = sep + strlen(SEP)) {
        assert_true(vec->n < 256);
        *sep = '\0';
        vec->texts[vec->n] = p;
        vec->text_len[vec->n++] = (size_t)(sep - p);
    }
    size_t n_lines = 0;
    for (char *q = vec->out, *nl; *q; q = nl + 1) {
        nl = strchr(q, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(n_lines < 256);
        vec->lines[n_lines++] = q;
    }
    assert_int_equal(n_lines, vec->n);
}

static void vectors_free(vectors *vec)
{
    free(vec->inp);
    free(vec->out);
}

static size_t parse_ids(const char *line, int32_t *ids, size_t cap)
{
    size_t n = 0;
    for (const char *p = line;;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p)
            break;
        assert_true(n < cap);
        ids[n++] = (int32_t)x;
        p = end;
    }
    return n;
}

/* Every input must tokenize to the expected ids (no BOS, specials not parsed), decode back to
 * itself, and stream back to itself through the detokenizer. */
static void run_vectors(const char *name)
{
    wl_vocab *v = load_vocab(name);
    vectors vec;
    vectors_load(&vec, name);
    size_t pass = 0, roundtrip = 0, streamed = 0;
    int32_t want[4096];
    for (size_t i = 0; i < vec.n; i++) {
        size_t nw = parse_ids(vec.lines[i], want, 4096);
        int32_t *ids;
        size_t n, len;
        tok(v, vec.texts[i], vec.text_len[i], 0, 0, &ids, &n);
        if (n == nw && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0)) {
            pass++;
        } else {
            char got[1024];
            format_ids(got, sizeof got, ids, n);
            print_message("%s: input %zu \"%s\": got [%s ], expected [%s ]\n", name, i,
                          vec.texts[i], got, vec.lines[i]);
        }
        char *back = decode(v, ids, n, 0, &len);
        if (len == vec.text_len[i] && memcmp(back, vec.texts[i], len) == 0)
            roundtrip++;
        else
            print_message("%s: input %zu \"%s\" decodes to \"%s\"\n", name, i, vec.texts[i], back);
        free(back);
        back = stream(v, ids, n, &len);
        streamed += len == vec.text_len[i] && memcmp(back, vec.texts[i], len) == 0;
        free(back);
        free(ids);
    }
    printf("%s: %zu/%zu vectors match, %zu/%zu round-trip, %zu/%zu stream back\n", name, pass,
           vec.n, roundtrip, vec.n, streamed, vec.n);
    assert_int_equal(pass, vec.n);
    assert_int_equal(roundtrip, vec.n);
    assert_int_equal(streamed, vec.n);
    vectors_free(&vec);
    wl_vocab_free(v);
}

static void test_vectors_gpt2(void **state) { (void)state; run_vectors("gpt-2"); }
static void test_vectors_llama3(void **state) { (void)state; run_vectors("llama3"); }
static void test_vectors_qwen2(void **state) { (void)state; run_vectors("qwen2"); }
static void test_vectors_smollm2(void **state) { (void)state; run_vectors("smollm2"); }
static void test_vectors_deepseek_llm(void **state) { (void)state; run_vectors("deepseek-llm"); }
static void test_vectors_mpt(void **state) { (void)state; run_vectors("mpt"); }

/* GPT-NeoX has no vectors and no tokenizer.ggml.pre (llama.cpp's "default"): every input of the
 * other files must round-trip. */
static void test_gpt_neox(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("gpt-neox");
    static const char *const names[] = {"gpt-2", "llama3", "qwen2", "deepseek-llm"};
    size_t total = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        vectors vec;
        vectors_load(&vec, names[k]);
        for (size_t i = 0; i < vec.n; i++) {
            int32_t *ids;
            size_t n, len;
            tok(v, vec.texts[i], vec.text_len[i], 0, 0, &ids, &n);
            assert_true(vec.text_len[i] == 0 || n > 0);
            char *back = decode(v, ids, n, 0, &len);
            if (len != vec.text_len[i] || memcmp(back, vec.texts[i], len) != 0)
                fail_msg("gpt-neox: \"%s\" decodes to \"%s\"", vec.texts[i], back);
            free(back);
            free(ids);
            total++;
        }
        vectors_free(&vec);
    }
    printf("gpt-neox: %zu/%zu inputs round-trip\n", total, total);
    /* the default pre-tokenizer splits punctuation runs and groups of three digits */
    int32_t *ids;
    size_t n;
    tok(v, "Hello world", 11, 0, 0, &ids, &n);
    assert_int_equal(n, 2);
    free(ids);
    assert_int_equal(wl_vocab_add_bos(v), 0);
    wl_vocab_free(v);
}

/* ---- the vocabularies' special tokens ---- */

static void test_vocab_properties(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("llama3");
    assert_int_equal(wl_vocab_size(v), 128256);
    assert_int_equal(wl_vocab_bos(v), 128000);
    assert_int_equal(wl_vocab_eos(v), 128009);
    assert_int_equal(wl_vocab_add_bos(v), 1);
    assert_true(wl_vocab_is_eog(v, 128009)); /* <|eot_id|> */
    assert_true(wl_vocab_is_eog(v, 128001)); /* <|end_of_text|> */
    assert_true(wl_vocab_is_eog(v, 128008)); /* <|eom_id|> */
    assert_false(wl_vocab_is_eog(v, 128000));
    assert_false(wl_vocab_is_eog(v, 9906));
    assert_int_equal(wl_vocab_token_type(v, 128000), WL_TOKEN_CONTROL);
    int32_t *ids;
    size_t n;
    tok(v, "Hello", 5, 1, 0, &ids, &n); /* BOS when asked */
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 128000);
    free(ids);
    wl_vocab_free(v);

    v = load_vocab("qwen2");
    assert_int_equal(wl_vocab_add_bos(v), 0); /* qwen2: llama.cpp adds no BOS */
    assert_int_equal(wl_vocab_eos(v), 151645);
    assert_true(wl_vocab_is_eog(v, 151645)); /* <|im_end|> */
    assert_true(wl_vocab_is_eog(v, 151643)); /* <|endoftext|> */
    assert_false(wl_vocab_is_eog(v, 151644)); /* <|im_start|> */
    wl_vocab_free(v);

    v = load_vocab("gpt-2");
    assert_int_equal(wl_vocab_bos(v), 50256);
    assert_int_equal(wl_vocab_add_bos(v), 0);
    assert_true(wl_vocab_is_eog(v, 50256));
    wl_vocab_free(v);

    v = load_vocab("smollm2");
    assert_true(wl_vocab_is_eog(v, 2)); /* <|im_end|> is eos */
    assert_int_equal(wl_vocab_add_bos(v), 0);
    wl_vocab_free(v);

    v = load_vocab("deepseek-llm");
    assert_int_equal(wl_vocab_add_bos(v), 1); /* from the file */
    assert_int_equal(wl_vocab_bos(v), 100000);
    wl_vocab_free(v);
}

static void test_parse_special(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("qwen2");
    const char *chat = "<|im_start|>user\nHi<|im_end|>";
    expect_ids(v, chat, 1, T(151644, 872, 198, 13048, 151645));
    /* without parse_special the control texts are plain text */
    int32_t *ids;
    size_t n, len;
    tok(v, chat, strlen(chat), 0, 0, &ids, &n);
    assert_true(n > 5);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] < 151643);
    char *back = decode(v, ids, n, 0, &len);
    assert_string_equal(back, chat);
    free(back);
    free(ids);
    /* specials render only when asked */
    tok(v, chat, strlen(chat), 0, 1, &ids, &n);
    back = decode(v, ids, n, 0, &len);
    assert_string_equal(back, "user\nHi");
    free(back);
    back = decode(v, ids, n, 1, &len);
    assert_string_equal(back, chat);
    free(back);
    free(ids);
    /* specials back to back, at both ends, and text glued to them */
    expect_ids(v, "<|im_end|><|im_end|>", 1, T(151645, 151645));
    expect_ids(v, "a<|im_start|>b", 1, T(64, 151644, 65));
    wl_vocab_free(v);

    v = load_vocab("llama3");
    const char *hdr = "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>";
    expect_ids(v, hdr, 1, T(128006, 882, 128007, 271, 9906, 128009));
    wl_vocab_free(v);
}

static void test_token_to_bytes(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("gpt-2");
    char buf[64];
    int32_t *ids;
    size_t n;
    tok(v, " world", 6, 0, 0, &ids, &n);
    assert_int_equal(n, 1);
    size_t len;
    assert_string_equal(wl_vocab_token_text(v, ids[0], &len), "\xC4\xA0world"); /* "Ġworld" */
    assert_int_equal(wl_token_to_bytes(v, ids[0], 0, buf, sizeof buf), 6);
    assert_memory_equal(buf, " world", 6);
    assert_int_equal(wl_token_to_bytes(v, ids[0], 0, buf, 3), 6); /* truncated: full length */
    assert_memory_equal(buf, " wo", 3);
    assert_int_equal(wl_token_to_bytes(v, ids[0], 0, NULL, 0), 6);
    free(ids);
    /* <|endoftext|> is control: only with render_special */
    assert_int_equal(wl_token_to_bytes(v, 50256, 0, buf, sizeof buf), 0);
    assert_int_equal(wl_token_to_bytes(v, 50256, 1, buf, sizeof buf), 13);
    assert_int_equal(wl_token_to_bytes(v, -1, 1, buf, sizeof buf), 0);
    assert_int_equal(wl_token_to_bytes(v, 50257, 1, buf, sizeof buf), 0);
    /* every byte's token decodes to that byte */
    for (int b = 0; b < 256; b++) {
        char c[2];
        size_t cn = wl_byte_to_utf8((uint8_t)b, c);
        int32_t id = -1;
        for (int32_t i = 0; i < 256 && id < 0; i++) {
            size_t tl;
            const char *t = wl_vocab_token_text(v, i, &tl);
            if (tl == cn && memcmp(t, c, cn) == 0)
                id = i;
        }
        assert_true(id >= 0);
        assert_int_equal(wl_token_to_bytes(v, id, 0, buf, sizeof buf), 1);
        assert_int_equal((unsigned char)buf[0], b);
    }
    wl_vocab_free(v);
}

/* A character split over several tokens streams out whole, and never as half a character. */
static void test_detok_stream(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("llama3");
    const char *text = "\xF0\x9F\xA6\x99 and \xE1\x9E\x80\xE1\x9E\xB6 \xE2\x80\xA6"; /* 🦙 ... */
    int32_t *ids;
    size_t n;
    tok(v, text, strlen(text), 0, 0, &ids, &n);
    wl_detok d;
    wl_detok_init(&d, v);
    wl_buf out = {0};
    for (size_t i = 0; i < n; i++) {
        size_t before = out.len;
        assert_int_equal(wl_detok_push(&d, ids[i], &out), 0);
        if (out.len > before)
            assert_true(wl_utf8_valid(out.data, out.len, NULL));
    }
    assert_int_equal(wl_detok_finish(&d, &out), 0);
    assert_string_equal(out.data, text);
    wl_buf_free(&out);
    free(ids);
    wl_vocab_free(v);
}

/* ---- the merge rules, on vocabularies built in memory ---- */

/* A BPE vocabulary: the 256 byte characters (id b for byte b), then extra[0..n) with types
 * (NULL: all normal), and the merges. */
static int build_bpe(const char *const *extra, const int32_t *types, size_t n,
                     const char *const *merges, size_t n_merges, const char *pre,
                     const int *drop_bytes, wl_vocab **v, wandler_error *err)
{
    size_t total = 256 + n;
    wl_strview *texts = calloc(total, sizeof *texts);
    int32_t *ty = calloc(total, sizeof *ty);
    char(*chars)[3] = calloc(256, sizeof *chars);
    wl_strview *m = calloc(n_merges + 1, sizeof *m);
    assert_non_null(texts);
    assert_non_null(ty);
    assert_non_null(chars);
    assert_non_null(m);
    for (int b = 0; b < 256; b++) {
        size_t cn = wl_byte_to_utf8((uint8_t)b, chars[b]);
        texts[b] = (wl_strview){chars[b], cn};
        ty[b] = WL_TOKEN_NORMAL;
    }
    static char names[16][12]; /* bytes the vocab lacks: their tokens get other texts */
    for (size_t i = 0; drop_bytes && drop_bytes[i] >= 0 && i < 16; i++) {
        snprintf(names[i], sizeof names[i], "<drop%zu>", i);
        texts[drop_bytes[i]] = (wl_strview){names[i], strlen(names[i])};
    }
    for (size_t i = 0; i < n; i++) {
        texts[256 + i] = (wl_strview){extra[i], strlen(extra[i])};
        ty[256 + i] = types ? types[i] : WL_TOKEN_NORMAL;
    }
    for (size_t i = 0; i < n_merges; i++)
        m[i] = (wl_strview){merges[i], strlen(merges[i])};
    wl_vocab_spec spec = wl_vocab_spec_default(WL_VOCAB_BPE);
    spec.n_tokens = (int64_t)total;
    spec.texts = texts;
    spec.types = ty;
    spec.merges = m;
    spec.n_merges = (int64_t)n_merges;
    spec.pre = pre;
    spec.pre_len = pre ? strlen(pre) : 0;
    spec.bos = spec.eos = -1;
    int rc = wl_vocab_build(&spec, v, err);
    free(texts);
    free(ty);
    free(chars);
    free(m);
    return rc;
}

static wl_vocab *bpe_vocab(const char *const *extra, size_t n, const char *const *merges,
                           size_t n_merges, const char *pre)
{
    wl_vocab *v = NULL;
    wandler_error err = {0};
    if (build_bpe(extra, NULL, n, merges, n_merges, pre, NULL, &v, &err) != WANDLER_OK)
        fail_msg("bpe vocab: %s", err.message);
    return v;
}

static void test_merge_rules(void **state)
{
    (void)state;
    static const char *const extra[] = {"ab", "bc", "abc", "aa", "\xC4\xA0\x61"}; /* 256..: "Ġa" */
    enum { AB = 256, BC, ABC, AA, SP_A };
    /* lowest rank first: "b c" before "a b", and then no "a bc" merge */
    static const char *const m1[] = {"b c", "a b", "ab c"};
    wl_vocab *v = bpe_vocab(extra, 5, m1, 3, "gpt-2");
    expect_ids(v, "abc", 0, T('a', BC));
    wl_vocab_free(v);
    /* the other order reaches "abc" */
    static const char *const m2[] = {"a b", "b c", "ab c"};
    v = bpe_vocab(extra, 5, m2, 3, "gpt-2");
    expect_ids(v, "abc", 0, T(ABC));
    /* a repeated pair: the leftmost goes first */
    static const char *const m3[] = {"a a"};
    wl_vocab_free(v);
    v = bpe_vocab(extra, 5, m3, 1, "gpt-2");
    expect_ids(v, "aaa", 0, T(AA, 'a'));
    expect_ids(v, "aaaa", 0, T(AA, AA));
    wl_vocab_free(v);
    /* a space is the character "Ġ" (U+0120), id 0x20 here */
    static const char *const m4[] = {"\xC4\xA0 a"};
    v = bpe_vocab(extra, 5, m4, 1, "gpt-2");
    expect_ids(v, "a a", 0, T('a', SP_A));
    expect_ids(v, "a  a", 0, T('a', ' ', SP_A)); /* "\s+(?!\S)" leaves the last space to " a" */
    wl_vocab_free(v);
    /* ignore_merges (Llama 3): a pre-token that is a token is taken whole */
    v = bpe_vocab(extra, 5, m1, 3, "llama-bpe");
    expect_ids(v, "abc", 0, T(ABC));
    wl_vocab_free(v);
    /* a merge whose result is not a token: its bytes come out one by one */
    static const char *const xe[] = {"xyz"};
    static const char *const m5[] = {"a b"};
    v = bpe_vocab(xe, 1, m5, 1, "gpt-2");
    expect_ids(v, "ab", 0, T('a', 'b'));
    wl_vocab_free(v);
    /* a byte the vocabulary lacks is dropped, as llama.cpp does */
    static const int drop[] = {'z', 0xA9, -1};
    wandler_error err = {0};
    assert_int_equal(build_bpe(extra, NULL, 5, m1, 3, "gpt-2", drop, &v, &err), WANDLER_OK);
    expect_ids(v, "az", 0, T('a'));
    expect_ids(v, "\xC3\xA9", 0, T(0xC3)); /* é = C3 A9: A9's character is missing */
    wl_vocab_free(v);
    /* user-defined tokens are split out even without parse_special; control ones only with */
    static const char *const sp[] = {"<tool>", "<|ctl|>"};
    static const int32_t sp_types[] = {WL_TOKEN_USER_DEFINED, WL_TOKEN_CONTROL};
    assert_int_equal(build_bpe(sp, sp_types, 2, NULL, 0, NULL, NULL, &v, &err), WANDLER_OK);
    expect_ids(v, "a<tool>b", 0, T('a', 256, 'b'));
    expect_ids(v, "<|ctl|>", 1, T(257));
    expect_ids(v, "<|", 0, T('<', '|'));
    expect_ids(v, "", 1, NONE_IDS);
    wl_vocab_free(v);
}

/* The families tokenize without error and split where their regexes say. */
static void test_pre_families(void **state)
{
    (void)state;
    static const char *const pres[] = {
        "default", "llama-bpe", "llama3", "dbrx", "chatglm-bpe", "glm4", "qwen2", "stablelm2",
        "deepseek-r1-qwen", "gpt-2", "phi-2", "mpt", "olmo", "starcoder", "refact", "command-r",
        "smollm", "falcon", "deepseek-llm", "deepseek-coder", "gpt-4o", "llama4", "tekken",
        "poro-chat", "bloom", "viking", "jais", "exaone",
    };
    const char *text = "Hello World! It's 12345 \xC3\xA9t\xC3\xA9  \n\n\ttabs\xE3\x80\x80"
                       "\xE4\xBD\xA0\xE5\xA5\xBD, CamelCaseWord\xF0\x9F\x98\x81   ";
    for (size_t i = 0; i < sizeof pres / sizeof *pres; i++) {
        const wl_pretok_info *info = wl_pretok_find(pres[i], strlen(pres[i]));
        if (!info)
            fail_msg("pre-tokenizer %s unknown", pres[i]);
        wl_pretok *p = NULL;
        wandler_error err = {0};
        if (wl_pretok_create(info, &p, &err) != WANDLER_OK)
            fail_msg("%s: %s", pres[i], err.message);
        wl_spans sp = {0};
        assert_int_equal(wl_pretok_split(p, text, strlen(text), &sp), 0);
        size_t at = 0;
        for (size_t k = 0; k < sp.len; k++) { /* pieces cover the text in order */
            assert_int_equal(sp.data[k].off, at);
            assert_true(sp.data[k].len > 0);
            assert_true(wl_utf8_valid(text + at, sp.data[k].len, NULL));
            at += sp.data[k].len;
        }
        assert_int_equal(at, strlen(text));
        free(sp.data);
        wl_pretok_free(p);
    }
    assert_null(wl_pretok_find("no-such-pre", 11));
    assert_non_null(wl_pretok_find(NULL, 0));
    assert_string_equal(wl_pretok_find("", 0)->name, "default");
    assert_int_equal(wl_pretok_find("llama3", 6)->ignore_merges, 1);
    assert_int_equal(wl_pretok_find("chatglm-bpe", 11)->no_bos, 1);

    /* a few splits checked by hand */
    static const struct {
        const char *pre, *text, *pieces; /* pieces joined by '|' */
    } cases[] = {
        {"gpt-2", "Hello world's  end\n", "Hello| world|'s| | end|\n"},
        {"llama-bpe", "x 12345 y\n\n z", "x| |123|45| y|\n\n| z"},
        {"qwen2", "a123", "a|1|2|3"},
        {"smollm", "a 12", "a| |1|2"},
        {"gpt-4o", "CamelCase HTML's", "Camel|Case| HTML's"},
        {"deepseek-llm", "ab  \n", "ab|  |\n"},
        {"deepseek-llm", "\xE4\xBD\xA0\xE5\xA5\xBD" "ab", "\xE4\xBD\xA0\xE5\xA5\xBD|ab"},
        {"default", "a...b 1234", "a|...|b| |123|4"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const wl_pretok_info *info = wl_pretok_find(cases[c].pre, strlen(cases[c].pre));
        wl_pretok *p = NULL;
        assert_int_equal(wl_pretok_create(info, &p, NULL), WANDLER_OK);
        wl_spans sp = {0};
        const char *t = cases[c].text;
        assert_int_equal(wl_pretok_split(p, t, strlen(t), &sp), 0);
        wl_buf got = {0};
        for (size_t k = 0; k < sp.len; k++) {
            if (k)
                assert_int_equal(wl_buf_append(&got, "|", 1), 0);
            assert_int_equal(wl_buf_append(&got, t + sp.data[k].off, sp.data[k].len), 0);
        }
        if (strcmp(got.data ? got.data : "", cases[c].pieces) != 0)
            fail_msg("%s \"%s\": got \"%s\", expected \"%s\"", cases[c].pre, t, got.data,
                     cases[c].pieces);
        wl_buf_free(&got);
        free(sp.data);
        wl_pretok_free(p);
    }
}

/* ---- broken vocabularies in GGUF images ---- */

typedef struct image_spec {
    const char *model;       /* NULL: no key */
    const char *pre;         /* NULL: no key */
    int pre_as_u32;
    const gguf_str *merges;  /* NULL: no key */
    size_t n_merges;
    int merges_as_ints;
    int64_t bos;             /* -1: no key */
} image_spec;

/* Writes a GGUF image holding a BPE vocabulary (the 256 byte characters, "ab", "Ġa") and loads
 * it; returns the status. A vocabulary that loads must tokenize and decode. */
static int load_image(const image_spec *is, wandler_error *err)
{
    gguf_writer *w = NULL;
    assert_int_equal(gguf_writer_new(&w, NULL), WANDLER_OK);
    gguf_str toks[258];
    char chars[256][2];
    for (int b = 0; b < 256; b++) {
        size_t n = wl_byte_to_utf8((uint8_t)b, chars[b]);
        toks[b] = (gguf_str){chars[b], n};
    }
    toks[256] = (gguf_str){"ab", 2};
    toks[257] = (gguf_str){"\xC4\xA0" "a", 3};
    if (is->model)
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", is->model, NULL), 0);
    if (is->pre && is->pre_as_u32)
        assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.pre", 7, NULL), 0);
    else if (is->pre)
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.pre", is->pre, NULL), 0);
    assert_int_equal(gguf_writer_set_arr_str_n(w, "tokenizer.ggml.tokens", toks, 258, NULL), 0);
    if (is->merges_as_ints) {
        int32_t ints[3] = {1, 2, 3};
        assert_int_equal(
            gguf_writer_set_arr(w, "tokenizer.ggml.merges", GGUF_TYPE_INT32, ints, 3, NULL), 0);
    } else if (is->merges) {
        assert_int_equal(gguf_writer_set_arr_str_n(w, "tokenizer.ggml.merges", is->merges,
                                                   is->n_merges, NULL),
                         0);
    }
    if (is->bos >= 0)
        assert_int_equal(
            gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)is->bos, NULL), 0);
    void *img = NULL;
    size_t size = 0;
    assert_int_equal(gguf_writer_write_memory(w, &img, &size, NULL), WANDLER_OK);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    int rc = gguf_open_memory(img, size, &f, err);
    if (rc == WANDLER_OK) {
        wl_vocab *v = (wl_vocab *)1;
        rc = wl_vocab_load(f, &v, err);
        if (rc == WANDLER_OK) {
            int32_t *ids;
            size_t n, len;
            tok(v, "ab a\xC3\xA9!", 7, 0, 1, &ids, &n);
            char *back = decode(v, ids, n, 0, &len);
            assert_string_equal(back, "ab a\xC3\xA9!");
            free(back);
            free(ids);
            wl_vocab_free(v);
        } else {
            assert_null(v);
            assert_int_equal(err->code, rc);
        }
        gguf_close(f);
    }
    free(img);
    return rc;
}

static void expect_load(const image_spec *is, int want, const char *what)
{
    wandler_error err = {0};
    int rc = load_image(is, &err);
    if (rc != want)
        fail_msg("%s: got %s (%s), expected %s", what, wandler_status_name(rc), err.message,
                 wandler_status_name(want));
}

static void test_bad_vocab_gguf(void **state)
{
    (void)state;
    static const gguf_str good[] = {{"a b", 3}, {"\xC4\xA0 a", 4}};
    image_spec base = {"gpt2", NULL, 0, good, 2, 0, -1};
    image_spec s;
    s = base; expect_load(&s, WANDLER_OK, "minimal gpt2 vocab");
    s = base; s.pre = "qwen2"; expect_load(&s, WANDLER_OK, "qwen2 pre");
    s = base; s.pre = ""; expect_load(&s, WANDLER_OK, "empty pre = default");
    s = base; s.n_merges = 0; expect_load(&s, WANDLER_OK, "no merges at all");
    s = base; s.bos = 256; expect_load(&s, WANDLER_OK, "bos set");

    /* the pre-tokenizer */
    wandler_error err = {0};
    s = base;
    s.pre = "no-such-pre";
    assert_int_equal(load_image(&s, &err), WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER);
    assert_non_null(strstr(err.message, "no-such-pre"));
    s = base; s.pre = "x"; s.pre_as_u32 = 1;
    expect_load(&s, WANDLER_ERR_MODEL_KEY_TYPE, "pre not a string");

    /* the merges key */
    s = base; s.merges = NULL; expect_load(&s, WANDLER_ERR_MODEL_MISSING_KEY, "no merges key");
    s = base; s.merges_as_ints = 1; expect_load(&s, WANDLER_ERR_MODEL_KEY_TYPE, "int merges");

    /* bad merge strings */
    static const char *const bad[] = {
        "ab",    /* no space */
        " ab",   /* the only space is the first byte */
        "a ",    /* empty right half */
        "a zz",  /* "zz" is not a token */
        "q b c", /* "b c" is not a token */
        "",      /* empty */
        " ",     /* a lone space */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gguf_str m[3] = {{"a b", 3}, {bad[i], strlen(bad[i])}, {"a b", 3}};
        s = base;
        s.merges = m;
        s.n_merges = 3;
        expect_load(&s, WANDLER_ERR_MODEL_BAD_VOCAB, bad[i]);
    }
    /* a NUL inside a merge, an absurdly long merge */
    gguf_str nul[1] = {{"a\0 b", 4}};
    s = base; s.merges = nul; s.n_merges = 1;
    expect_load(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "NUL in a merge");
    size_t big = 1 << 20;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 'b', big);
    huge[1] = ' ';
    huge[0] = 'a';
    gguf_str hm[1] = {{huge, big}};
    s = base; s.merges = hm; s.n_merges = 1;
    expect_load(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "1 MiB merge");
    free(huge);
    /* many merges, repeated: the first rank wins, nothing breaks */
    gguf_str *many = calloc(10000, sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i < 10000; i++)
        many[i] = (gguf_str){i % 2 ? "\xC4\xA0 a" : "a b", i % 2 ? 4 : 3};
    s = base; s.merges = many; s.n_merges = 10000;
    expect_load(&s, WANDLER_OK, "10000 repeated merges");
    free(many);

    /* bos out of range */
    s = base; s.bos = 258; expect_load(&s, WANDLER_ERR_MODEL_BAD_VOCAB, "bos out of range");
    /* other tokenizers are still refused by name */
    s = base; s.model = "bert";
    assert_int_equal(load_image(&s, &err), WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER);
    assert_non_null(strstr(err.message, "bert"));
}

/* Builds straight from arrays: merges that are not token pairs, an unknown pre-tokenizer. */
static void test_bad_vocab_arrays(void **state)
{
    (void)state;
    wl_vocab *v = (wl_vocab *)1;
    wandler_error err = {0};
    static const char *const extra[] = {"ab"};
    static const char *const bad[] = {"a c d"};
    assert_int_equal(build_bpe(extra, NULL, 1, bad, 1, NULL, NULL, &v, &err),
                     WANDLER_ERR_MODEL_BAD_VOCAB);
    assert_null(v);
    assert_int_equal(build_bpe(extra, NULL, 1, NULL, 0, "nope", NULL, &v, &err),
                     WANDLER_ERR_MODEL_UNSUPPORTED_TOKENIZER);
    assert_null(v);
    /* the BPE defaults: bos/eos 11 (llama.cpp's), no BOS added */
    wl_vocab_spec spec = wl_vocab_spec_default(WL_VOCAB_BPE);
    assert_int_equal(spec.bos, 11);
    assert_int_equal(spec.eos, 11);
    assert_int_equal(spec.add_bos, 0);
    /* a merge list pointer missing for a non-zero count */
    wl_strview t[1] = {{"a", 1}};
    spec.n_tokens = 1;
    spec.texts = t;
    spec.bos = spec.eos = -1;
    spec.n_merges = 3;
    assert_int_equal(wl_vocab_build(&spec, &v, &err), WANDLER_ERR_MODEL_BAD_VOCAB);
    assert_null(v);
    spec.n_merges = 0;
    assert_int_equal(wl_vocab_build(&spec, &v, &err), WANDLER_OK);
    expect_ids(v, "a", 0, T(0));
    expect_ids(v, "b", 0, NONE_IDS); /* no token for "b" at all */
    wl_vocab_free(v);
}

/* ---- random text through real vocabularies ---- */

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void test_random_roundtrip(void **state)
{
    (void)state;
    static const char *const names[] = {"gpt-2", "llama3", "qwen2", "smollm2", "deepseek-llm",
                                        "mpt", "gpt-neox"};
    static const char *const pieces[] = {
        "a", "the", " ", "  ", "\n", "\r\n", "\t", "\xC3\xA9", "\xE4\xBD\xA0", "\xF0\x9F\x98\x81",
        "!", "123", "4567", "<|endoftext|>", "<|im_start|>", "Hello", "'s", "'LL",
        "\xD0\xBF\xD1\x80\xD0\xB8", "\xE3\x80\x80", "\xC2\xA0", "\xC2\x85", "\x7F", "\x01", "\0",
        "\xE2\x80\xA8", "\xD9\xA3", "\xEF\xBC\x81", "\xE1\xBD\xB9", "...", "   \n",
    };
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        wl_vocab *v = load_vocab(names[k]);
        uint64_t x = 42 + k;
        for (int iter = 0; iter < 300; iter++) {
            char text[512];
            size_t len = 0, parts = rnd(&x) % 24;
            for (size_t p = 0; p < parts; p++) {
                const char *s = pieces[rnd(&x) % (sizeof pieces / sizeof pieces[0])];
                size_t n = s[0] ? strlen(s) : 1;
                memcpy(text + len, s, n);
                len += n;
            }
            int32_t *ids;
            size_t n, blen;
            for (int special = 0; special < 2; special++) {
                tok(v, text, len, 0, special, &ids, &n);
                for (size_t i = 0; i < n; i++)
                    assert_true(ids[i] >= 0 && ids[i] < wl_vocab_size(v));
                char *back = decode(v, ids, n, special, &blen);
                if (blen != len || memcmp(back, text, len) != 0)
                    fail_msg("%s: \"%.*s\" decodes to \"%s\"", names[k], (int)len, text, back);
                free(back);
                free(ids);
            }
        }
        wl_vocab_free(v);
    }
}

/* ---- several threads on one vocabulary ---- */

typedef struct job {
    const wl_vocab *v;
    const char *text;
    size_t len;
    const int32_t *want;
    size_t n_want;
    int ok;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    j->ok = 1;
    for (int i = 0; i < 20 && j->ok; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (wl_tokenize(j->v, j->text, j->len, 0, 1, &ids, &n, NULL) != WANDLER_OK ||
            n != j->n_want || memcmp(ids, j->want, n * sizeof *ids) != 0)
            j->ok = 0;
        free(ids);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    wl_vocab *v = load_vocab("llama3");
    size_t size;
    char *text = wl_test_read_file(wl_test_shared("tokenizer/ggml-vocab-llama3.gguf.inp"), &size);
    assert_non_null(text);
    int32_t *want;
    size_t n_want;
    tok(v, text, size, 0, 1, &want, &n_want);
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){v, text, size, want, n_want, 0};
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(jobs[i].ok);
    }
    free(want);
    free(text);
    wl_vocab_free(v);
}

/* ---- fuzzer seeds ---- */

/* A small BPE vocabulary cut from GPT-2's: the 256 byte characters, the first 300 merges and the
 * tokens they make (GPT-2 numbers them in merge order), and a few special tokens. */
static void make_bpe_seed(void **img, size_t *size)
{
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(wl_test_shared("tokenizer/ggml-vocab-gpt-2.gguf"), &f, NULL),
                     WANDLER_OK);
    enum { N_MERGES = 300, N_BASE = 256 + N_MERGES, N_TOK = N_BASE + 4 };
    int64_t kt = gguf_find_key(f, "tokenizer.ggml.tokens");
    int64_t km = gguf_find_key(f, "tokenizer.ggml.merges");
    gguf_str toks[N_TOK], merges[N_MERGES];
    int32_t types[N_TOK];
    for (int i = 0; i < N_BASE; i++) {
        toks[i] = gguf_arr_str(f, kt, (uint64_t)i);
        types[i] = WL_TOKEN_NORMAL;
    }
    for (int i = 0; i < N_MERGES; i++)
        merges[i] = gguf_arr_str(f, km, (uint64_t)i);
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                           "<tool_call>"};
    for (int i = 0; i < 4; i++) {
        toks[N_BASE + i] = (gguf_str){specials[i], strlen(specials[i])};
        types[N_BASE + i] = i < 3 ? WL_TOKEN_CONTROL : WL_TOKEN_USER_DEFINED;
    }
    gguf_writer *w = NULL;
    assert_int_equal(gguf_writer_new(&w, NULL), WANDLER_OK);
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", NULL), 0);
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.pre", "llama-bpe", NULL), 0);
    assert_int_equal(gguf_writer_set_arr_str_n(w, "tokenizer.ggml.tokens", toks, N_TOK, NULL), 0);
    assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types,
                                         N_TOK, NULL),
                     0);
    assert_int_equal(
        gguf_writer_set_arr_str_n(w, "tokenizer.ggml.merges", merges, N_MERGES, NULL), 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", N_BASE, NULL), 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", N_BASE + 2, NULL), 0);
    assert_int_equal(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false, NULL), 0);
    assert_int_equal(gguf_writer_write_memory(w, img, size, NULL), WANDLER_OK);
    gguf_writer_free(w);
    gguf_close(f);
}

/* A small SPM vocabulary: the bundled model's tokenizer keys. */
static void make_spm_seed(void **img, size_t *size)
{
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(wl_test_shared("models/stories260K.gguf"), &f, NULL), WANDLER_OK);
    gguf_writer *w = NULL;
    assert_int_equal(gguf_writer_new(&w, NULL), WANDLER_OK);
    for (uint64_t i = 0; i < gguf_n_kv(f); i++)
        if (strncmp(gguf_kv_key(f, i), "tokenizer.ggml.", 15) == 0)
            assert_int_equal(gguf_writer_copy_kv(w, f, i, NULL), WANDLER_OK);
    assert_int_equal(gguf_writer_write_memory(w, img, size, NULL), WANDLER_OK);
    gguf_writer_free(w);
    gguf_close(f);
}

static void check_seed(const void *img, size_t size, int kind, const char *what)
{
    assert_true(size < 64 * 1024);
    gguf_file *f = NULL;
    wandler_error err = {0};
    if (gguf_open_memory(img, size, &f, &err) != WANDLER_OK)
        fail_msg("%s: %s", what, err.message);
    wl_vocab *v = NULL;
    if (wl_vocab_load(f, &v, &err) != WANDLER_OK)
        fail_msg("%s: %s", what, err.message);
    assert_int_equal(wl_vocab_kind_of(v), kind);
    const char *text = "<|im_start|>user Hello world, the 123 <tool_call>\xC3\xA9";
    int32_t *ids;
    size_t n, len;
    tok(v, text, strlen(text), 0, 0, &ids, &n);
    char *back = decode(v, ids, n, 0, &len);
    if (kind == WL_VOCAB_BPE)
        assert_string_equal(back, text);
    free(back);
    free(ids);
    wl_vocab_free(v);
    gguf_close(f);
}

static void test_fuzz_seeds(void **state)
{
    (void)state;
    static const char *const names[] = {"bpe_small.gguf", "spm_small.gguf"};
    void *img[2];
    size_t size[2];
    make_bpe_seed(&img[0], &size[0]);
    make_spm_seed(&img[1], &size[1]);
    check_seed(img[0], size[0], WL_VOCAB_BPE, "BPE seed");
    check_seed(img[1], size[1], WL_VOCAB_SPM, "SPM seed");
    printf("fuzz seeds: BPE %zu bytes, SPM %zu bytes\n", size[0], size[1]);
    const char *dir = getenv("WANDLER_WRITE_CORPUS");
    for (int i = 0; i < 2; i++) {
        if (dir && *dir) {
            mkdir(dir, 0777);
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            FILE *fp = fopen(path, "wb");
            assert_non_null(fp);
            assert_int_equal(fwrite(img[i], 1, size[i], fp), size[i]);
            assert_int_equal(fclose(fp), 0);
        }
        /* the committed seeds are the ones this test makes */
        char rel[256];
        snprintf(rel, sizeof rel, "tests/fuzz/corpus/vocab/%s", names[i]);
        size_t n = 0;
        char *committed = wl_test_read_file(wl_test_source(rel), &n);
        if (!committed)
            fail_msg("missing seed %s (write it with WANDLER_WRITE_CORPUS)", rel);
        assert_true(n == size[i] && memcmp(committed, img[i], n) == 0);
        free(committed);
        free(img[i]);
    }
}

/* ---- speed (printed, not asserted) ---- */

static void speed(const char *name)
{
    double t0 = now_s();
    wl_vocab *v = load_vocab(name);
    double t_load = now_s() - t0;
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf.inp", name);
    size_t n_inp, n_doc;
    char *inp = wl_test_read_file(wl_test_shared(rel), &n_inp);
    char *doc = wl_test_read_file(wl_test_shared("tokenizer/README.md"), &n_doc);
    assert_non_null(inp);
    assert_non_null(doc);
    wl_buf text = {0};
    while (text.len < 2000000) {
        assert_int_equal(wl_buf_append(&text, doc, n_doc), 0);
        assert_int_equal(wl_buf_append(&text, inp, n_inp), 0);
    }
    free(inp);
    free(doc);
    int32_t *ids;
    size_t n;
    t0 = now_s();
    tok(v, text.data, text.len, 1, 1, &ids, &n);
    double dt = now_s() - t0;
    size_t len;
    t0 = now_s();
    char *back = decode(v, ids + 1, n - 1, 1, &len);
    double dt_dec = now_s() - t0;
    printf("%s speed: vocab load %.0f ms; %zu bytes -> %zu tokens in %.0f ms: %.2f M tokens/s, "
           "%.1f MB/s; decode %.1f MB/s\n",
           name, t_load * 1e3, text.len, n, dt * 1e3, n / dt / 1e6, text.len / dt / 1e6,
           len / dt_dec / 1e6);
    free(back);
    free(ids);
    wl_buf_free(&text);
    wl_vocab_free(v);
}

static void test_speed(void **state)
{
    (void)state;
    speed("qwen2");
    speed("llama3");
    speed("gpt-2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_gpt2),
        cmocka_unit_test(test_vectors_llama3),
        cmocka_unit_test(test_vectors_qwen2),
        cmocka_unit_test(test_vectors_smollm2),
        cmocka_unit_test(test_vectors_deepseek_llm),
        cmocka_unit_test(test_vectors_mpt),
        cmocka_unit_test(test_gpt_neox),
        cmocka_unit_test(test_vocab_properties),
        cmocka_unit_test(test_parse_special),
        cmocka_unit_test(test_token_to_bytes),
        cmocka_unit_test(test_detok_stream),
        cmocka_unit_test(test_merge_rules),
        cmocka_unit_test(test_pre_families),
        cmocka_unit_test(test_bad_vocab_gguf),
        cmocka_unit_test(test_bad_vocab_arrays),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fuzz_seeds),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
