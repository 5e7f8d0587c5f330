/* byte_unicode.c - GPT-2's byte <-> code point alphabet, by arithmetic (no tables to build). */
#include "text/byte_unicode.h"

/* The non-printable bytes in order: 0x00..0x20 (33 of them), 0x7F..0xA0 (34), 0xAD. They take
 * U+0100 + their rank among these. */
uint32_t wl_byte_to_cp(uint8_t b)
{
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100u + 33 + (uint32_t)(b - 0x7F);
    if (b == 0xAD)
        return 0x100u + 33 + 34;
    return b;
}

int wl_cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp >= 0x100 + 33 && cp < 0x100 + 33 + 34)
        return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x100 + 33 + 34)
        return 0xAD;
    return -1;
}

size_t wl_byte_to_utf8(uint8_t b, char out[2])
{
    uint32_t cp = wl_byte_to_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}
