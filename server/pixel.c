/*
 * pixel.c - the GIF, token extraction and address truncation used by the
 * pixel route in http.c.
 */
#include "server/pixel.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "server/token.h"

/*
 * GIF89a, 1x1, a two-colour global table, a graphic control extension
 * making colour 0 transparent, one image of one pixel of colour 0.
 */
const unsigned char pixel_gif[] = {
    'G', 'I', 'F', '8', '9', 'a',
    0x01, 0x00, 0x01, 0x00,             /* logical screen 1x1 */
    0x80, 0x00, 0x00,                   /* global table of 2, bg 0 */
    0x00, 0x00, 0x00, 0xff, 0xff, 0xff, /* black, white */
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00,  /* transparent 0 */
    0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
    0x02, 0x02, 0x44, 0x01, 0x00,       /* LZW data: one pixel */
    0x3b                                /* trailer */
};
const size_t pixel_gif_len = sizeof(pixel_gif);


int
pixel_token_from_path(const char *path, const char **tok, size_t *len)
{
    const size_t prefix_len = sizeof(PIXEL_PREFIX) - 1;
    size_t n;

    if (strncmp(path, PIXEL_PREFIX, prefix_len) != 0) {
        return -1;
    }

    path += prefix_len;
    n = strnlen(path, TOKEN_MAX_LEN + 5);
    if (n >= 4 && memcmp(path + n - 4, ".gif", 4) == 0) {
        n -= 4;
    }
    if (n == 0 || n > TOKEN_MAX_LEN) {
        return -1;
    }

    *tok = path;
    *len = n;
    return 0;
}


void
pixel_addr_truncate(const struct cidr_addr *a, char out[STORE_ADDR_MAX])
{
    uint8_t b[16];

    if (a == NULL || (a->family != AF_INET && a->family != AF_INET6)) {
        strcpy(out, "unknown");
        return;
    }

    memcpy(b, a->bytes, sizeof(b));
    if (a->family == AF_INET) {
        b[3] = 0;
    } else {
        memset(b + 6, 0, 10);
    }
    inet_ntop(a->family, b, out, STORE_ADDR_MAX);
}


void
pixel_referer_host(const char *referer, char out[STORE_REFERER_MAX])
{
    const char *p;
    size_t n = 0;

    out[0] = '\0';
    if (referer == NULL) {
        return;
    }
    if (strncasecmp(referer, "https://", 8) == 0) {
        p = referer + 8;
    } else if (strncasecmp(referer, "http://", 7) == 0) {
        p = referer + 7;
    } else {
        return;
    }

    /* Skip user information, which a browser never sends but a forger may. */
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t) (end - p));
    if (at != NULL) {
        p = at + 1;
    }

    while (p < end && *p != ':' && n < STORE_REFERER_MAX - 1) {
        char c = *p++;

        if (!isalnum((unsigned char) c) && c != '-' && c != '.') {
            out[0] = '\0';
            return;
        }
        out[n++] = (char) tolower((unsigned char) c);
    }
    out[n] = '\0';
}


static int
is_trusted(const struct cidr_addr *a, const struct cidr *trusted, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (cidr_contains(&trusted[i], a)) {
            return 1;
        }
    }
    return 0;
}


/*
 * Parses the entry of an X-Forwarded-For list that ends just before end
 * and starts after the previous comma; sets *start to that comma (or the
 * list's start).  -1 when it is not an address.
 */
static int
parse_hop(const char *list, const char *end, const char **start,
          struct cidr_addr *out)
{
    const char *b = end;
    char buf[64];
    size_t len;

    while (b > list && b[-1] != ',') {
        b--;
    }
    *start = b > list ? b - 1 : list;

    while (b < end && (*b == ' ' || *b == '\t')) {
        b++;
    }
    while (end > b && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (end - b >= 2 && *b == '[' && end[-1] == ']') {
        b++;
        end--;
    }
    len = (size_t) (end - b);
    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, b, len);
    buf[len] = '\0';
    return cidr_addr_parse(buf, out);
}


void
pixel_client_addr(const struct cidr_addr *peer, const char *xff,
                  const struct cidr *trusted, size_t n,
                  struct cidr_addr *out)
{
    const char *end;
    struct cidr_addr hop;

    *out = *peer;
    if (xff == NULL || n == 0 || !is_trusted(peer, trusted, n)) {
        return;
    }

    /* Bounded by the header size libmicrohttpd accepts. */
    end = xff + strlen(xff);
    while (end > xff) {
        const char *start;

        if (parse_hop(xff, end, &start, &hop) != 0) {
            return;
        }
        *out = hop;
        if (!is_trusted(&hop, trusted, n)) {
            return;
        }
        end = start;
    }
}
