/* test_detok.c - streaming detokenization never emits part of a UTF-8 character. */
#include "testutil.h"
#include "vocab_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "text/detok.h"
#include "text/utf8.h"

#define FFFD "\xEF\xBF\xBD"

static int byte_tok(unsigned b)
{
    return FIX_BYTE0 + (int)b;
}

static int setup(void **state)
{
    static const char *const texts[] = {"\xE2\x96\x81Hello", "\xE2\x96\x81world", "!",
                                        "<|user|>"};
    static const int32_t types[] = {WL_TOKEN_NORMAL, WL_TOKEN_NORMAL, WL_TOKEN_NORMAL,
                                    WL_TOKEN_USER_DEFINED};
    *state = wl_test_spm_vocab(texts, NULL, types, 4);
    return 0;
}

static int teardown(void **state)
{
    wl_vocab_free(*state);
    return 0;
}

/* Pushes one token and checks exactly what came out. */
static void push_expect(wl_detok *d, int32_t id, const char *expect)
{
    wl_buf out = {0};
    assert_int_equal(wl_detok_push(d, id, &out), 0);
    assert_non_null(out.data);
    assert_int_equal(out.len, strlen(expect));
    assert_memory_equal(out.data, expect, out.len);
    wl_buf_free(&out);
}

static void finish_expect(wl_detok *d, const char *expect)
{
    wl_buf out = {0};
    assert_int_equal(wl_detok_finish(d, &out), 0);
    assert_int_equal(out.len, strlen(expect));
    assert_memory_equal(out.data, expect, out.len);
    assert_int_equal(d->n_held, 0);
    wl_buf_free(&out);
}

static void test_pieces(void **state)
{
    wl_detok d;
    wl_detok_init(&d, *state);
    push_expect(&d, FIX_FIRST + 0, " Hello");
    push_expect(&d, FIX_FIRST + 1, " world");
    push_expect(&d, FIX_FIRST + 2, "!");
    push_expect(&d, FIX_BOS, "");      /* control tokens are not text */
    push_expect(&d, FIX_EOS, "");
    push_expect(&d, FIX_UNK, "");
    push_expect(&d, FIX_FIRST + 3, "<|user|>"); /* user-defined: its text */
    push_expect(&d, 999999, "");       /* out of range: nothing */
    push_expect(&d, -1, "");
    finish_expect(&d, "");
}

static void test_two_byte_split(void **state)
{
    wl_detok d;
    wl_detok_init(&d, *state);
    push_expect(&d, byte_tok(0xC3), "");
    push_expect(&d, byte_tok(0xA4), "\xC3\xA4"); /* ä */
    finish_expect(&d, "");
}

static void test_emoji_over_four_pushes(void **state)
{
    wl_detok d;
    wl_detok_init(&d, *state);
    push_expect(&d, FIX_FIRST + 0, " Hello");
    push_expect(&d, byte_tok(0xF0), "");
    push_expect(&d, byte_tok(0x9F), "");
    push_expect(&d, byte_tok(0x98), "");
    push_expect(&d, byte_tok(0x81), "\xF0\x9F\x98\x81");
    push_expect(&d, FIX_FIRST + 2, "!");
    finish_expect(&d, "");
}

static void test_invalid_bytes(void **state)
{
    wl_detok d;
    wl_detok_init(&d, *state);
    push_expect(&d, byte_tok(0xFF), FFFD);  /* can never start a character: replaced at once */
    push_expect(&d, byte_tok(0x80), FFFD);  /* stray continuation */
    push_expect(&d, byte_tok(0xC0), FFFD);  /* only overlongs start with C0 */
    push_expect(&d, byte_tok(0xC3), "");
    push_expect(&d, FIX_FIRST + 2, FFFD "!"); /* the held C3 was not completed */
    push_expect(&d, byte_tok(0xF0), "");
    push_expect(&d, byte_tok(0x9F), "");
    push_expect(&d, byte_tok(0x98), "");
    /* one U+FFFD for the whole incomplete F0 9F 98, then the new character */
    push_expect(&d, byte_tok(0xC3), FFFD);
    push_expect(&d, byte_tok(0xA4), "\xC3\xA4");
    /* a surrogate: ED is a valid start but ED A0 is not; A0 and 80 are stray bytes */
    push_expect(&d, byte_tok(0xED), "");
    push_expect(&d, byte_tok(0xA0), FFFD FFFD);
    push_expect(&d, byte_tok(0x80), FFFD);
    finish_expect(&d, "");
}

static void test_finish_dangling(void **state)
{
    wl_detok d;
    wl_detok_init(&d, *state);
    push_expect(&d, FIX_FIRST + 1, " world");
    push_expect(&d, byte_tok(0xE2), "");
    push_expect(&d, byte_tok(0x96), "");
    finish_expect(&d, FFFD);
    /* the detokenizer is reusable after finish */
    push_expect(&d, byte_tok(0x41), "A");
    finish_expect(&d, "");
}

static void test_push_bytes(void **state)
{
    wl_detok d;
    wl_detok_init(&d, *state);
    wl_buf out = {0};
    assert_int_equal(wl_detok_push_bytes(&d, "ab\xE2\x96", 4, &out), 0);
    assert_string_equal(out.data, "ab");
    assert_int_equal(wl_detok_push_bytes(&d, "\x81" "c\xFF" "d", 4, &out), 0);
    assert_string_equal(out.data, "ab\xE2\x96\x81" "c" FFFD "d");
    assert_int_equal(wl_detok_push_bytes(&d, "", 0, &out), 0);
    assert_int_equal(wl_detok_finish(&d, &out), 0);
    assert_string_equal(out.data, "ab\xE2\x96\x81" "c" FFFD "d");
    wl_buf_free(&out);
}

/* The reference: the whole byte string at once. */
static void oneshot(const unsigned char *s, size_t n, wl_buf *out)
{
    wl_detok d;
    wl_detok_init(&d, NULL);
    assert_int_equal(wl_detok_push_bytes(&d, (const char *)s, n, out), 0);
    assert_int_equal(wl_detok_finish(&d, out), 0);
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Random byte strings (biased towards UTF-8-looking bytes) cut at random places give the same
 * text as in one piece; it is always valid UTF-8, and valid input comes out unchanged. */
static void test_random_splits(void **state)
{
    (void)state;
    static const unsigned char pool[] = {'a', ' ', 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC2, 0xC3,
                                         0xDF, 0xE0, 0xE2, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xC0};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    unsigned char s[64];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rng_next(&x) % sizeof s;
        for (size_t i = 0; i < n; i++)
            s[i] = pool[rng_next(&x) % sizeof pool];
        wl_buf ref = {0}, got = {0};
        oneshot(s, n, &ref);
        wl_detok d;
        wl_detok_init(&d, NULL);
        for (size_t i = 0; i < n;) {
            size_t k = 1 + rng_next(&x) % 5;
            if (k > n - i)
                k = n - i;
            size_t before = got.len;
            assert_int_equal(wl_detok_push_bytes(&d, (const char *)s + i, k, &got), 0);
            /* every push on its own adds whole characters */
            assert_true(wl_utf8_valid(got.data + before, got.len - before, NULL));
            i += k;
        }
        assert_int_equal(wl_detok_finish(&d, &got), 0);
        assert_int_equal(got.len, ref.len);
        assert_memory_equal(got.data, ref.data, ref.len);
        assert_true(wl_utf8_valid(ref.data, ref.len, NULL));
        if (wl_utf8_valid((const char *)s, n, NULL)) {
            assert_int_equal(ref.len, n);
            assert_memory_equal(ref.data, s, n);
        }
        wl_buf_free(&ref);
        wl_buf_free(&got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_two_byte_split),
        cmocka_unit_test(test_emoji_over_four_pushes),
        cmocka_unit_test(test_invalid_bytes),
        cmocka_unit_test(test_finish_dangling),
        cmocka_unit_test(test_push_bytes),
        cmocka_unit_test(test_random_splits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
