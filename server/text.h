/*
 * text.h - checks on text that came from outside: UTF-8 as RFC 3629 has
 * it (no overlong forms, no surrogates, nothing past U+10FFFF).
 */
#ifndef BEACON_TEXT_H
#define BEACON_TEXT_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at p, or 0 when there is none. */
size_t text_utf8_len(const unsigned char *p);

/* Non-zero when s is valid UTF-8 without control characters. */
int text_is_clean(const char *s);

/*
 * Replaces, in place, every byte that is not part of valid UTF-8 and
 * every control character with '?'.
 */
void text_sanitize(char *s);

/*
 * Non-zero when the JSON text holds the escape \u0000: a C string made
 * from such a value would silently end early.
 */
int text_json_has_nul(const char *json, size_t len);

#endif
