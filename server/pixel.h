/*
 * pixel.h - what the pixel route needs besides HTTP: the GIF, picking the
 * token out of a path, and cutting a client address down before it is
 * stored.
 */
#ifndef BEACON_PIXEL_H
#define BEACON_PIXEL_H

#include <stddef.h>
#include <stdint.h>

#include "server/cidr.h"
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
 * ("192.0.2.0"), IPv6 to /48 ("2001:db8:1::").  "unknown" for NULL.
 */
void pixel_addr_truncate(const struct cidr_addr *a,
                         char out[STORE_ADDR_MAX]);

/*
 * The host of a Referer value ("https://Desk.Example.com:8443/t/1" gives
 * "desk.example.com"), lower-cased; "" when there is none or it is not
 * an absolute http(s) URL.
 */
void pixel_referer_host(const char *referer, char out[STORE_REFERER_MAX]);

/*
 * The client behind trusted reverse proxies: when the peer is one of the
 * n trusted networks, walks X-Forwarded-For (xff, may be NULL) from the
 * right, skipping trusted hops, and takes the first address that is not
 * one.  Otherwise, or when xff is missing or unreadable, the peer.
 */
void pixel_client_addr(const struct cidr_addr *peer, const char *xff,
                       const struct cidr *trusted, size_t n,
                       struct cidr_addr *out);

#endif
