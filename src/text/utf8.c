/* utf8.c - strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. */
#include "text/utf8.h"

/* The range the second byte of a sequence must fall in, given its lead byte. The narrowed
 * ranges after E0, ED, F0 and F4 are what rule out overlongs, surrogates and > U+10FFFF. */
static int second_byte_ok(unsigned char lead, unsigned char b)
{
    switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
    }
}

/* Length of the sequence a lead byte starts, or 0 when the byte cannot start one. */
static size_t sequence_length(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    if (lead >= 0xE0 && lead <= 0xEF)
        return 3;
    if (lead >= 0xF0 && lead <= 0xF4)
        return 4;
    return 0; /* continuation byte, C0/C1 (always overlong) or F5..FF */
}

/* How many leading bytes of s[0..n) are a valid (possibly incomplete) start of one character,
 * at most the full sequence length. */
static size_t valid_prefix_length(const unsigned char *s, size_t n, size_t *need)
{
    size_t len = n ? sequence_length(s[0]) : 0;
    *need = len;
    if (len == 0)
        return 0;
    size_t i = 1;
    if (i < len && i < n) {
        if (!second_byte_ok(s[0], s[1]))
            return 1;
        i++;
    }
    while (i < len && i < n) {
        if ((s[i] & 0xC0) != 0x80)
            return i;
        i++;
    }
    return i;
}

size_t wl_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t need;
    size_t ok = valid_prefix_length(s, n, &need);
    if (need == 0 || ok < need)
        return 0;
    uint32_t c;
    switch (need) {
    case 1: c = s[0]; break;
    case 2: c = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F); break;
    case 3: c = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F); break;
    default:
        c = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        break;
    }
    if (cp)
        *cp = c;
    return need;
}

int wl_utf8_valid(const char *s, size_t n, size_t *bad_offset)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) { /* ASCII runs are the common case */
            i++;
            continue;
        }
        size_t len = wl_utf8_decode(u + i, n - i, NULL);
        if (len == 0) {
            if (bad_offset)
                *bad_offset = i;
            return 0;
        }
        i += len;
    }
    return 1;
}

int wl_utf8_incomplete_prefix(const unsigned char *s, size_t n)
{
    if (n == 0 || n >= 4)
        return 0;
    size_t need;
    size_t ok = valid_prefix_length(s, n, &need);
    return need > n && ok == n;
}

size_t wl_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD; /* not encodable: the replacement character stands in */
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
