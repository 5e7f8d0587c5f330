/* test_utf8.c - strict UTF-8 decoding, validation, prefixes and encoding. */
#include "testutil.h"

#include <string.h>

#include "text/utf8.h"

static size_t dec(const char *s, size_t n, uint32_t *cp)
{
    return wl_utf8_decode((const unsigned char *)s, n, cp);
}

static void test_decode_valid(void **state)
{
    (void)state;
    uint32_t cp = 0;
    assert_int_equal(dec("A", 1, &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(dec("\x00", 1, &cp), 1);
    assert_int_equal(cp, 0);
    assert_int_equal(dec("\xC3\xA4", 2, &cp), 2); /* ä */
    assert_int_equal(cp, 0xE4);
    assert_int_equal(dec("\xE2\x96\x81", 3, &cp), 3); /* ▁ */
    assert_int_equal(cp, 0x2581);
    assert_int_equal(dec("\xF0\x9F\x98\x81", 4, &cp), 4); /* 😁 */
    assert_int_equal(cp, 0x1F601);
    /* boundaries */
    assert_int_equal(dec("\xC2\x80", 2, &cp), 2);
    assert_int_equal(cp, 0x80);
    assert_int_equal(dec("\xDF\xBF", 2, &cp), 2);
    assert_int_equal(cp, 0x7FF);
    assert_int_equal(dec("\xE0\xA0\x80", 3, &cp), 3);
    assert_int_equal(cp, 0x800);
    assert_int_equal(dec("\xED\x9F\xBF", 3, &cp), 3);
    assert_int_equal(cp, 0xD7FF);
    assert_int_equal(dec("\xEE\x80\x80", 3, &cp), 3);
    assert_int_equal(cp, 0xE000);
    assert_int_equal(dec("\xEF\xBF\xBF", 3, &cp), 3);
    assert_int_equal(cp, 0xFFFF);
    assert_int_equal(dec("\xF0\x90\x80\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x10000);
    assert_int_equal(dec("\xF4\x8F\xBF\xBF", 4, &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
    /* decoding looks at one character only */
    assert_int_equal(dec("ab", 2, &cp), 1);
    assert_int_equal(dec("\xC3\xA4xyz", 5, NULL), 2);
}

static void test_decode_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\x80", 1},                 /* lone continuation */
        {"\xBF", 1},
        {"\xC0\x80", 2},             /* overlong NUL */
        {"\xC1\xBF", 2},             /* overlong */
        {"\xE0\x80\x80", 3},         /* overlong */
        {"\xE0\x9F\xBF", 3},         /* overlong (U+07FF in 3 bytes) */
        {"\xF0\x80\x80\x80", 4},     /* overlong */
        {"\xF0\x8F\xBF\xBF", 4},     /* overlong (U+FFFF in 4 bytes) */
        {"\xED\xA0\x80", 3},         /* surrogate D800 */
        {"\xED\xBF\xBF", 3},         /* surrogate DFFF */
        {"\xF4\x90\x80\x80", 4},     /* > U+10FFFF */
        {"\xF5\x80\x80\x80", 4},
        {"\xFE", 1},
        {"\xFF", 1},
        {"\xC3", 1},                 /* truncated */
        {"\xE2\x96", 2},
        {"\xF0\x9F\x98", 3},
        {"\xC3\x41", 2},             /* continuation missing */
        {"\xE2\x41\x81", 3},
        {"\xF0\x9F\x41\x81", 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (dec(bad[i].s, bad[i].n, NULL) != 0)
            fail_msg("case %zu decoded", i);
    }
    assert_int_equal(dec("", 0, NULL), 0);
}

static void test_valid(void **state)
{
    (void)state;
    size_t off = 99;
    const char *good = "Hello, w\xC3\xB6rld \xE2\x96\x81 \xF0\x9F\x98\x81!";
    assert_true(wl_utf8_valid(good, strlen(good), &off));
    assert_true(wl_utf8_valid("", 0, NULL));
    assert_false(wl_utf8_valid("abc\xFF", 4, &off));
    assert_int_equal(off, 3);
    assert_false(wl_utf8_valid("ab\xED\xA0\x80z", 6, &off));
    assert_int_equal(off, 2);
    assert_false(wl_utf8_valid("\xC3\xA4\xC3", 3, &off)); /* truncated at the end */
    assert_int_equal(off, 2);
    /* an embedded NUL is a valid character */
    assert_true(wl_utf8_valid("a\0b", 3, NULL));
}

static int prefix(const char *s, size_t n)
{
    return wl_utf8_incomplete_prefix((const unsigned char *)s, n);
}

static void test_incomplete_prefix(void **state)
{
    (void)state;
    assert_true(prefix("\xC3", 1));
    assert_true(prefix("\xE2", 1));
    assert_true(prefix("\xE2\x96", 2));
    assert_true(prefix("\xF0", 1));
    assert_true(prefix("\xF0\x9F", 2));
    assert_true(prefix("\xF0\x9F\x98", 3));
    assert_true(prefix("\xF4\x8F\xBF", 3));
    assert_false(prefix("", 0));
    assert_false(prefix("A", 1));        /* complete */
    assert_false(prefix("\xC3\xA4", 2)); /* complete */
    assert_false(prefix("\x80", 1));
    assert_false(prefix("\xC0", 1));     /* can only be overlong */
    assert_false(prefix("\xE0\x80", 2)); /* overlong */
    assert_false(prefix("\xED\xA0", 2)); /* surrogate */
    assert_false(prefix("\xF4\x90", 2)); /* too large */
    assert_false(prefix("\xF5", 1));
    assert_false(prefix("\xE2\x41", 2));
    assert_false(prefix("\xF0\x9F\x98\x81", 4)); /* n >= 4 */
}

static void test_encode(void **state)
{
    (void)state;
    char buf[4];
    uint32_t cps[] = {0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0x2581, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF,
                      0x10000, 0x1F601, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        size_t n = wl_utf8_encode(cps[i], buf);
        uint32_t back = 0xFFFFFFFF;
        assert_int_equal(dec(buf, n, &back), n);
        assert_int_equal(back, cps[i]);
    }
    assert_int_equal(wl_utf8_encode(0xD800, buf), 3);
    assert_memory_equal(buf, "\xEF\xBF\xBD", 3);
    assert_int_equal(wl_utf8_encode(0x110000, buf), 3);
    assert_memory_equal(buf, "\xEF\xBF\xBD", 3);
}

/* Every 1..3-byte sequence: decode agrees with a reference built from the code point ranges. */
static void test_exhaustive_short(void **state)
{
    (void)state;
    unsigned char s[3];
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            s[0] = (unsigned char)a;
            s[1] = (unsigned char)b;
            uint32_t cp;
            size_t n = wl_utf8_decode(s, 2, &cp);
            if (a < 0x80) {
                assert_int_equal(n, 1);
            } else if (n == 2) {
                assert_true(cp >= 0x80 && cp <= 0x7FF);
                char enc[4];
                assert_int_equal(wl_utf8_encode(cp, enc), 2);
                assert_memory_equal(enc, s, 2);
            } else {
                assert_int_equal(n, 0);
                assert_false(a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF);
            }
        }
    }
    /* every code point round-trips */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        char enc[4];
        size_t n = wl_utf8_encode(cp, enc);
        uint32_t back;
        if (wl_utf8_decode((const unsigned char *)enc, n, &back) != n || back != cp)
            fail_msg("U+%04X does not round-trip", cp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_valid),      cmocka_unit_test(test_decode_invalid),
        cmocka_unit_test(test_valid),             cmocka_unit_test(test_incomplete_prefix),
        cmocka_unit_test(test_encode),            cmocka_unit_test(test_exhaustive_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
