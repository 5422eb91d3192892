/*
 * http.h - the HTTP front: pixel route, API bridge and static files on
 * libmicrohttpd.
 */
#ifndef BEACON_HTTP_H
#define BEACON_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "server/cidr.h"

struct api;
struct keys_live;
struct writer;

#define HTTP_URL_MAX 300

struct http_config {
    int listen_fd;                  /* from http_listen(); taken over */
    unsigned threads;               /* worker threads, >= 1 */
    unsigned max_connections;
    unsigned max_connections_per_ip;   /* 0: no limit */
    unsigned idle_timeout_s;
    struct keys_live *keys;         /* verifies pixel tokens */
    struct writer *writer;          /* receives opens */
    struct api *api;                /* answers /api/ and /healthz */
    const char *static_dir;         /* files served under /, or NULL */
    const struct cidr *trusted;     /* proxies whose X-Forwarded-For */
    size_t n_trusted;               /* is believed */
};

struct http_server;

/*
 * Binds a listening socket to listen ("127.0.0.1:8080", "[::1]:0",
 * "0.0.0.0:8080"; port 0 picks a free one) and writes the URL it is
 * reachable at ("http://127.0.0.1:41234") into url.  -1 with err; -2
 * with err when listen is not HOST:PORT at all (a usage error).
 */
int http_listen(const char *listen, int *fd, char *url, size_t urllen,
                char *err, size_t errlen);

int http_start(struct http_server **out, const struct http_config *cfg,
               char *err, size_t errlen);

/* Stops accepting, finishes requests in flight, frees.  NULL ok. */
void http_stop(struct http_server *srv);

/*
 * Decodes %HH in a path or query argument in place, as the server does
 * before routing, and returns the new length.  %00 stays as the three
 * characters: a NUL would silently cut "/healthz%00x" down to "/healthz"
 * for every C string comparison after it, so it matches no route and no
 * token.  The result is never longer than s.
 */
size_t http_unescape(char *s);

/* Pixel tokens refused since start (bad MAC, malformed, unknown key). */
uint64_t http_tokens_rejected(void);

#endif
