/* utf8.h - UTF-8 validation and decoding (RFC 3629: no surrogates, no overlongs, <= U+10FFFF). */
#ifndef WL_TEXT_UTF8_H
#define WL_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 character at s[0..n), or 0 when the bytes there are not one
 * (invalid or incomplete). Stores the code point in *cp when cp is not NULL. */
size_t wl_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* 1 when s[0..n) is entirely valid UTF-8. On failure stores the offset of the first bad byte
 * in *bad_offset when it is not NULL. */
int wl_utf8_valid(const char *s, size_t n, size_t *bad_offset);

/* 1 when s[0..n) (0 < n < 4) could still become a valid character with more bytes: the lead
 * byte of a longer sequence followed by bytes allowed in it. 0 otherwise (also for n == 0). */
int wl_utf8_incomplete_prefix(const unsigned char *s, size_t n);

/* Encodes cp into out (4 bytes of room); returns the length. A surrogate or a value above
 * U+10FFFF is encoded as U+FFFD. */
size_t wl_utf8_encode(uint32_t cp, char *out);

#endif
