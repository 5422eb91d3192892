/*
 * pixel.c - the GIF, token extraction and address truncation used by the
 * pixel route in http.c.
 */
#include "server/pixel.h"

#include <string.h>

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
pixel_addr_truncate(const struct sockaddr *sa, char out[STORE_ADDR_MAX])
{
    static const uint8_t v4_mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };

    if (sa != NULL && sa->sa_family == AF_INET) {
        struct in_addr a = ((const struct sockaddr_in *) sa)->sin_addr;

        a.s_addr &= htonl(0xffffff00u);
        inet_ntop(AF_INET, &a, out, STORE_ADDR_MAX);
        return;
    }

    if (sa != NULL && sa->sa_family == AF_INET6) {
        struct in6_addr a = ((const struct sockaddr_in6 *) sa)->sin6_addr;

        if (memcmp(a.s6_addr, v4_mapped, sizeof(v4_mapped)) == 0) {
            struct in_addr v4;

            memcpy(&v4.s_addr, a.s6_addr + 12, 4);
            v4.s_addr &= htonl(0xffffff00u);
            inet_ntop(AF_INET, &v4, out, STORE_ADDR_MAX);
            return;
        }
        memset(a.s6_addr + 6, 0, 10);
        inet_ntop(AF_INET6, &a, out, STORE_ADDR_MAX);
        return;
    }

    strcpy(out, "unknown");
}
