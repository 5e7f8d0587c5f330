/* byte_unicode.h - GPT-2's byte-level alphabet: every byte stands for one printable code point.
 *
 * Byte-level BPE vocabularies never hold raw bytes: each byte of the text is first replaced by a
 * code point, so that token texts are printable UTF-8 ("Ġ" is the space, "Ċ" the newline). The
 * bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the 68
 * others (controls, space, DEL, NBSP, soft hyphen) take U+0100.. in byte order. */
#ifndef WL_TEXT_BYTE_UNICODE_H
#define WL_TEXT_BYTE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* The code point byte b stands for (U+0021..U+0143). */
uint32_t wl_byte_to_cp(uint8_t b);

/* The byte code point cp stands for, or -1 when cp is not in the alphabet. */
int wl_cp_to_byte(uint32_t cp);

/* Writes the UTF-8 of wl_byte_to_cp(b) to out (room for 2 bytes); returns its length (1 or 2). */
size_t wl_byte_to_utf8(uint8_t b, char out[2]);

#endif
