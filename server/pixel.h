/*
 * pixel.h - what the pixel route needs besides HTTP: the GIF, picking the
 * token out of a path, and cutting a client address down before it is
 * stored.
 */
#ifndef BEACON_PIXEL_H
#define BEACON_PIXEL_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "store/store.h"

/* A 1x1 transparent GIF89a. */
extern const unsigned char pixel_gif[];
extern const size_t pixel_gif_len;

#define PIXEL_PREFIX "/p/"

/*
 * For a path "/p/<token>" or "/p/<token>.gif", points *tok at the token
 * and sets *len.  Returns 0, or -1 when the path is not a pixel path or
 * the token part is empty or longer than TOKEN_MAX_LEN.
 */
int pixel_token_from_path(const char *path, const char **tok, size_t *len);

/*
 * Writes the client's network, not its address: IPv4 cut to /24
 * ("192.0.2.0"), IPv6 to /48 ("2001:db8:1::"), an IPv4-mapped IPv6
 * address as IPv4.  "unknown" for anything else.
 */
void pixel_addr_truncate(const struct sockaddr *sa, char out[STORE_ADDR_MAX]);

#endif
