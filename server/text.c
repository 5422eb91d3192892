/*
 * text.c - UTF-8 checks shared by the API (which refuses bad text) and
 * the writer (which repairs what clients sent in headers).
 */
#include "server/text.h"

#include <string.h>


size_t
text_utf8_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t need;

    if (*p < 0x80) {
        return *p == 0 ? 0 : 1;
    }
    if (*p >= 0xc2 && *p <= 0xdf) {
        need = 1;
    } else if (*p >= 0xe0 && *p <= 0xef) {
        need = 2;
        lo = *p == 0xe0 ? 0xa0 : 0x80;      /* overlong */
        hi = *p == 0xed ? 0x9f : 0xbf;      /* surrogates */
    } else if (*p >= 0xf0 && *p <= 0xf4) {
        need = 3;
        lo = *p == 0xf0 ? 0x90 : 0x80;      /* overlong */
        hi = *p == 0xf4 ? 0x8f : 0xbf;      /* past U+10FFFF */
    } else {
        return 0;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return need + 1;
}


static int
is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}


int
text_is_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;

    while (*p != '\0') {
        size_t len = text_utf8_len(p);

        if (len == 0 || is_control(*p)) {
            return 0;
        }
        p += len;
    }
    return 1;
}


void
text_sanitize(char *s)
{
    unsigned char *p = (unsigned char *) s;

    while (*p != '\0') {
        size_t len = text_utf8_len(p);

        if (len == 0 || is_control(*p)) {
            *p++ = '?';
        } else {
            p += len;
        }
    }
}


int
text_json_has_nul(const char *json, size_t len)
{
    /* Backslashes occur only inside strings, each starting one escape. */
    for (size_t i = 0; i + 1 < len; i++) {
        if (json[i] != '\\') {
            continue;
        }
        if (json[i + 1] == 'u' && i + 5 < len
            && memcmp(json + i + 2, "0000", 4) == 0) {
            return 1;
        }
        i++;
    }
    return 0;
}
