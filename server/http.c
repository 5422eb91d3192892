/*
 * http.c - routes requests arriving on libmicrohttpd.
 *
 * /p/<token>[.gif]  the pixel: always the same GIF; a valid GET or HEAD
 *                   is handed to the writer as a fetch (classified there,
 *                   off this path), nothing else happens here.
 * /api/..., /healthz  collected (body bounded) and passed to api_handle().
 * anything else     a file loaded from the static directory at start.
 *
 * libmicrohttpd calls the handler first with the headers alone.  Queuing
 * a response on that first call makes it close keep-alive connections,
 * so every route answers on the second call.
 */
#include "server/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "api/api.h"
#include "server/clock.h"
#include "server/log.h"
#include "server/pixel.h"
#include "server/static_files.h"
#include "server/token.h"
#include "server/workers.h"
#include "store/writer.h"

#define JSON_TYPE "application/json"
#define LISTEN_BACKLOG 1024

/*
 * Each connection's memory pool holds its request headers and reply
 * headers.  A pixel fetch needs well under 2 KiB; the library's 32 KiB
 * default cost 30 KiB of resident memory per idle connection.  A request
 * line that does not fit gets 414, headers that do not fit get 431; the
 * library sends those itself, with its own small HTML body, and closes
 * the connection (0.9.75 has no way to give them another body).
 */
#define CONN_MEMORY (8 * 1024)

/*
 * What the first call decided about a request, kept in *req_cls.  A pixel
 * whose open was queued becomes ROUTE_PIXEL_RECORDED until its reply is
 * sent (see http_stop()).
 */
enum route { ROUTE_PIXEL = 1, ROUTE_PIXEL_RECORDED, ROUTE_API,
             ROUTE_STATIC };

/* How long a stop waits for recorded pixels' replies to go out. */
#define DRAIN_MS 2000

/* Headers or query arguments copied for a worker thread. */
#define KV_MAX 48

struct kv_list {
    size_t n;
    char *key[KV_MAX];
    char *value[KV_MAX];
};

/*
 * One API request.  It is collected on the HTTP thread, then the
 * connection is suspended and the request runs on a worker (reports can
 * take a while); the worker resumes the connection and the HTTP thread
 * sends the reply.  The worker reads only what was copied here.
 */
enum call_state { CALL_COLLECTING = 0, CALL_RUNNING, CALL_DONE };

struct api_call {
    enum route route;               /* first, so any req_cls reads it */
    enum call_state state;
    char *body;
    size_t len;                     /* bytes seen, capped at max + 1 */
    struct http_server *srv;
    struct MHD_Connection *conn;
    const char *method;             /* the library's, valid until done */
    const char *url;
    int64_t now_ms;
    struct kv_list headers;
    struct kv_list args;
    struct api_reply reply;         /* filled by the worker */
};

#define API_WORKERS 2
#define API_QUEUE_MAX 256

struct http_server {
    struct MHD_Daemon *daemon;
    struct MHD_Response *gif;       /* shared by every pixel reply */
    struct static_files *files;
    struct keys_live *keys;
    struct writer *writer;
    struct api *api;
    const struct cidr *trusted;
    size_t n_trusted;
    struct workers *workers;        /* run API requests */
    atomic_int draining;            /* stopping: record no more opens */
    atomic_int in_flight;           /* recorded pixels not yet answered */
};

/* Markers for routes that need no per-request state; never written. */
static enum route route_pixel = ROUTE_PIXEL;
static enum route route_pixel_recorded = ROUTE_PIXEL_RECORDED;
static enum route route_static = ROUTE_STATIC;
static char empty_body[1];
static atomic_uint_fast64_t tokens_rejected;


uint64_t
http_tokens_rejected(void)
{
    return atomic_load(&tokens_rejected);
}


static enum MHD_Result
reply_json_error(struct MHD_Connection *conn, unsigned status,
                 const char *msg, const char *allow)
{
    char body[160];
    struct MHD_Response *r;
    enum MHD_Result ret;
    int n;

    n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);
    r = MHD_create_response_from_buffer((size_t) n, body,
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE);
    if (allow != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}


/* X-Forwarded-For lines of one request, joined in order. */
struct xff_join {
    char buf[1024];
    size_t len;
    int too_long;
};


static enum MHD_Result
xff_collect(void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
    struct xff_join *j = cls;
    size_t n = strlen(value);

    (void) kind;
    if (strcasecmp(key, "X-Forwarded-For") != 0) {
        return MHD_YES;
    }
    if (j->len + n + 2 > sizeof(j->buf)) {
        j->too_long = 1;
        return MHD_NO;
    }
    if (j->len > 0) {
        j->buf[j->len++] = ',';
    }
    memcpy(j->buf + j->len, value, n + 1);
    j->len += n;
    return MHD_YES;
}


/*
 * The client's address: the peer, or behind a trusted proxy the address
 * X-Forwarded-For names.  A proxy may add its own header line rather than
 * append to the client's, so every line counts, in order; a list too
 * long to hold is not believed at all.
 */
static void
client_addr(struct http_server *srv, struct MHD_Connection *conn,
            const struct cidr_addr *peer, struct cidr_addr *out)
{
    struct xff_join j = { .len = 0, .too_long = 0 };

    *out = *peer;
    if (srv->n_trusted == 0) {
        return;
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, xff_collect, &j);
    if (j.len > 0 && !j.too_long) {
        pixel_client_addr(peer, j.buf, srv->trusted, srv->n_trusted, out);
    }
}


/* Queues the fetch: client network, User-Agent and Referer host. */
static void
record_fetch(struct http_server *srv, struct MHD_Connection *conn,
             uint64_t id, int is_head)
{
    const union MHD_ConnectionInfo *ci;
    struct cidr_addr peer, client;
    char addr[STORE_ADDR_MAX];
    char referer[STORE_REFERER_MAX];

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL
        || cidr_addr_from_sockaddr(ci->client_addr, &peer) != 0) {
        pixel_addr_truncate(NULL, addr);
    } else {
        client_addr(srv, conn, &peer, &client);
        pixel_addr_truncate(&client, addr);
    }
    pixel_referer_host(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                           MHD_HTTP_HEADER_REFERER), referer);

    writer_push(srv->writer, (int64_t) id, clock_now_ms(), is_head, addr,
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                    MHD_HTTP_HEADER_USER_AGENT), referer);
}


/*
 * Counts the open as in flight unless the server is stopping; then the
 * pixel gets 503 and nothing is recorded, so every open stored was
 * answered and every answer stored.  The count goes up before the flag
 * is read and http_stop() sets the flag before it reads the count, so
 * one of the two always sees the other.
 */
static int
begin_open(struct http_server *srv)
{
    atomic_fetch_add(&srv->in_flight, 1);
    if (atomic_load(&srv->draining)) {
        atomic_fetch_sub(&srv->in_flight, 1);
        return -1;
    }
    return 0;
}


static enum MHD_Result
handle_pixel(struct http_server *srv, struct MHD_Connection *conn,
             const char *url, const char *method, void **req_cls)
{
    uint64_t id;
    const char *tok;
    size_t len;
    int is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

    if (!is_head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        return reply_json_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                "method not allowed", "GET, HEAD");
    }

    if (pixel_token_from_path(url, &tok, &len) != 0
        || token_verify_live(srv->keys, tok, len, &id) != 0) {
        atomic_fetch_add(&tokens_rejected, 1);
        log_msg(LOG_DEBUG, "pixel.rejected", "method=%s path_len=%zu",
                method, strlen(url));
    } else if (begin_open(srv) != 0) {
        return reply_json_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "shutting down", NULL);
    } else {
        *req_cls = &route_pixel_recorded;
        record_fetch(srv, conn, id, is_head);
        log_msg(LOG_DEBUG, "pixel.fetch", "method=%s message=%llu", method,
                (unsigned long long) id);
    }

    return MHD_queue_response(conn, MHD_HTTP_OK, srv->gif);
}


static enum MHD_Result
kv_copy(void *cls, enum MHD_ValueKind kind, const char *key,
        const char *value)
{
    struct kv_list *l = cls;

    (void) kind;
    if (l->n == KV_MAX || key == NULL) {
        return l->n == KV_MAX ? MHD_NO : MHD_YES;
    }
    l->key[l->n] = strdup(key);
    l->value[l->n] = strdup(value != NULL ? value : "");
    if (l->key[l->n] == NULL || l->value[l->n] == NULL) {
        free(l->key[l->n]);
        free(l->value[l->n]);
        return MHD_NO;
    }
    l->n++;
    return MHD_YES;
}


static void
kv_release(struct kv_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->key[i]);
        free(l->value[i]);
    }
    l->n = 0;
}


/* First value of name; header names compare without case. */
static const char *
kv_find(const struct kv_list *l, const char *name, int nocase)
{
    for (size_t i = 0; i < l->n; i++) {
        if ((nocase ? strcasecmp(l->key[i], name)
                    : strcmp(l->key[i], name)) == 0) {
            return l->value[i];
        }
    }
    return NULL;
}


static const char *
lookup_header(void *ctx, const char *name)
{
    return kv_find(&((struct api_call *) ctx)->headers, name, 1);
}


static const char *
lookup_query(void *ctx, const char *name)
{
    return kv_find(&((struct api_call *) ctx)->args, name, 0);
}


/* Keeps at most API_BODY_MAX + 1 bytes: enough for the API to see 413. */
static int
collect_body(struct api_call *call, const char *data, size_t size)
{
    size_t room = API_BODY_MAX + 1 - call->len;
    size_t take = size < room ? size : room;

    if (take == 0) {
        return 0;
    }
    if (call->body == NULL) {
        call->body = malloc(API_BODY_MAX + 1);
        if (call->body == NULL) {
            return -1;
        }
    }
    memcpy(call->body + call->len, data, take);
    call->len += take;
    return 0;
}


/* Runs on a worker thread: answers the request, wakes its connection. */
static void
run_api_call(void *job)
{
    struct api_call *call = job;
    struct api_request req = {
        .method = call->method, .path = call->url, .body = call->body,
        .body_len = call->len, .now_ms = call->now_ms,
        .header = lookup_header, .query = lookup_query, .ctx = call
    };

    api_handle(call->srv->api, &req, &call->reply);
    call->state = CALL_DONE;
    MHD_resume_connection(call->conn);
}


/*
 * The path as the log shows it: an erasure's address is personal data
 * the log must not keep after the erasure, so that route logs without it.
 */
static const char *
loggable_path(const char *url)
{
    static const char erase[] = "/api/v1/recipients/";

    return strncmp(url, erase, sizeof(erase) - 1) == 0
           ? "/api/v1/recipients/-" : url;
}


/* Sends the reply the worker made; the response takes over its body. */
static enum MHD_Result
send_api_reply(struct MHD_Connection *conn, struct api_call *call)
{
    struct api_reply *reply = &call->reply;
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (reply->body == NULL) {
        reply->len = 0;
        r = MHD_create_response_from_buffer(0, empty_body,
                                            MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer_with_free_callback(
            reply->len, reply->body, free);
    }
    if (r == NULL) {
        return MHD_NO;
    }
    reply->body = NULL;

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            reply->content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (reply->allow != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, reply->allow);
    }
    if (reply->status == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"beacon\"");
    }
    log_msg(LOG_DEBUG, "api.request", "method=%s path=%s status=%u",
            call->method, loggable_path(call->url), reply->status);
    ret = MHD_queue_response(conn, reply->status, r);
    MHD_destroy_response(r);
    return ret;
}


static enum MHD_Result
handle_api(struct http_server *srv, struct MHD_Connection *conn,
           const char *url, const char *method, struct api_call *call)
{
    if (call->state == CALL_DONE) {
        return send_api_reply(conn, call);
    }

    call->srv = srv;
    call->conn = conn;
    call->method = method;
    call->url = url;
    call->now_ms = clock_now_ms();
    MHD_get_connection_values(conn, MHD_HEADER_KIND, kv_copy,
                              &call->headers);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, kv_copy,
                              &call->args);

    /*
     * Suspend first: the worker may resume before submit returns.  When
     * the queue is full the reply is a 503, sent the same way: resumed
     * here, answered on the next call.
     */
    call->state = CALL_RUNNING;
    MHD_suspend_connection(conn);
    if (workers_submit(srv->workers, call) != 0) {
        static const char busy[] =
            "{\"error\":\"busy: too many API requests waiting\"}";

        call->reply = (struct api_reply) {
            .status = MHD_HTTP_SERVICE_UNAVAILABLE,
            .content_type = JSON_TYPE, .body = strdup(busy),
            .len = sizeof(busy) - 1
        };
        call->state = CALL_DONE;
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}


static enum MHD_Result
handle_static(struct http_server *srv, struct MHD_Connection *conn,
              const char *url, const char *method)
{
    struct MHD_Response *r;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0
        && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return reply_json_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                "method not allowed", "GET, HEAD");
    }

    r = static_files_find(srv->files, url);
    if (r == NULL) {
        return reply_json_error(conn, MHD_HTTP_NOT_FOUND, "not found",
                                NULL);
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, r);
}


/* First call for a request: choose the route, answer nothing yet. */
static enum MHD_Result
begin_request(struct MHD_Connection *conn, const char *url, void **req_cls)
{
    struct api_call *call;
    const char *cl;

    if (strncmp(url, PIXEL_PREFIX, sizeof(PIXEL_PREFIX) - 1) == 0) {
        *req_cls = &route_pixel;
        return MHD_YES;
    }
    if (!api_owns_path(url)) {
        *req_cls = &route_static;
        return MHD_YES;
    }

    /* Refuse a declared oversize body before reading any of it. */
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > API_BODY_MAX) {
        return reply_json_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                "request body over 65536 bytes", NULL);
    }

    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        return MHD_NO;
    }
    call->route = ROUTE_API;
    *req_cls = call;
    return MHD_YES;
}


static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload,
           size_t *upload_size, void **req_cls)
{
    struct http_server *srv = cls;
    enum route route;

    (void) version;
    if (*req_cls == NULL) {
        return begin_request(conn, url, req_cls);
    }

    route = *(const enum route *) *req_cls;
    if (*upload_size != 0) {
        /* Only the API reads bodies; other routes discard them. */
        if (route == ROUTE_API
            && collect_body(*req_cls, upload, *upload_size) != 0) {
            return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }

    switch (route) {
    case ROUTE_PIXEL:
        return handle_pixel(srv, conn, url, method, req_cls);
    case ROUTE_API:
        return handle_api(srv, conn, url, method, *req_cls);
    default:
        return handle_static(srv, conn, url, method);
    }
}


static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;

    (void) conn;
    (void) toe;
    if (*req_cls == &route_pixel_recorded) {
        atomic_fetch_sub(&srv->in_flight, 1);
    } else if (*req_cls != NULL
               && *(const enum route *) *req_cls == ROUTE_API) {
        struct api_call *call = *req_cls;

        kv_release(&call->headers);
        kv_release(&call->args);
        free(call->reply.body);
        free(call->body);
        free(call);
    }
    *req_cls = NULL;
}


static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * The library reports each refused request (414, 431, a reset), so any
 * client can make it talk: one line per MHD_LOG_INTERVAL_MS at most.
 */
#define MHD_LOG_INTERVAL_MS 10000

static struct log_limit mhd_log_limit = LOG_LIMIT_INIT;


static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    uint64_t skipped;
    char msg[256];
    size_t n;

    (void) cls;
    if (!log_limit_pass(&mhd_log_limit, MHD_LOG_INTERVAL_MS, &skipped)) {
        return;
    }

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strcspn(msg, "\r\n");
    msg[n] = '\0';
    log_msg(LOG_WARN, "http.library", "msg=\"%s\" skipped=%llu", msg,
            (unsigned long long) skipped);
}


static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}


size_t
http_unescape(char *s)
{
    char *out = s;
    const char *in = s;

    while (*in != '\0') {
        int hi = in[0] == '%' ? hex_value(in[1]) : -1;
        int lo = hi >= 0 ? hex_value(in[2]) : -1;

        if (lo >= 0 && (hi | lo) != 0) {
            *out++ = (char) (hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t) (out - s);
}


/* The library's unescape callback: http_unescape(), nothing more. */
static size_t
unescape_url(void *cls, struct MHD_Connection *conn, char *s)
{
    (void) cls;
    (void) conn;
    return http_unescape(s);
}


static struct MHD_Response *
gif_response_new(void)
{
    struct MHD_Response *r;

    /* PERSISTENT: the library only reads the buffer, never frees it. */
    r = MHD_create_response_from_buffer(pixel_gif_len,
                                        (void *) (uintptr_t) pixel_gif,
                                        MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "image/gif");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                            "no-store, no-cache, must-revalidate, private, "
                            "max-age=0");
    MHD_add_response_header(r, MHD_HTTP_HEADER_PRAGMA, "no-cache");
    MHD_add_response_header(r, MHD_HTTP_HEADER_EXPIRES, "0");
    return r;
}


static int
split_host_port(const char *spec, char *host, size_t hostlen,
                const char **port)
{
    const char *colon;
    size_t n;

    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');

        if (end == NULL || end[1] != ':') {
            return -1;
        }
        n = (size_t) (end - spec - 1);
        spec++;
        colon = end + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL) {
            return -1;
        }
        n = (size_t) (colon - spec);
    }
    if (n == 0 || n >= hostlen || colon[1] == '\0' || strlen(colon) > 6
        || strspn(colon + 1, "0123456789") != strlen(colon + 1)
        || atoi(colon + 1) > 65535) {
        return -1;
    }
    memcpy(host, spec, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}


static void
url_from_socket(int fd, const char *host, char *url, size_t urllen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    unsigned port = 0;

    if (getsockname(fd, (struct sockaddr *) &ss, &sl) == 0) {
        port = ss.ss_family == AF_INET6
            ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
            : ntohs(((struct sockaddr_in *) &ss)->sin_port);
    }
    snprintf(url, urllen, strchr(host, ':') != NULL ? "http://[%s]:%u"
             : "http://%s:%u", host, port);
}


int
http_listen(const char *spec, int *fd, char *url, size_t urllen,
            char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    char host[256];
    const char *port;
    int s, one = 1, rc;

    if (split_host_port(spec, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "--listen: expected HOST:PORT or [IPV6]:PORT,"
                 " got \"%s\"", spec);
        return -2;
    }
    rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "--listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }

    s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0
        || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(s, ai->ai_addr, ai->ai_addrlen) != 0
        || listen(s, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "--listen %s: %s", spec, strerror(errno));
        if (s >= 0) {
            close(s);
        }
        freeaddrinfo(ai);
        return -1;
    }

    freeaddrinfo(ai);
    url_from_socket(s, host, url, urllen);
    *fd = s;
    return 0;
}


int
http_start(struct http_server **out, const struct http_config *cfg,
           char *err, size_t errlen)
{
    struct http_server *srv;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG
                     | MHD_ALLOW_SUSPEND_RESUME;

    *out = NULL;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, errlen, "http: out of memory");
        close(cfg->listen_fd);
        return -1;
    }
    srv->keys = cfg->keys;
    srv->writer = cfg->writer;
    srv->api = cfg->api;
    srv->trusted = cfg->trusted;
    srv->n_trusted = cfg->n_trusted;

    if (workers_start(&srv->workers, API_WORKERS, API_QUEUE_MAX,
                      run_api_call, err, errlen) != 0) {
        close(cfg->listen_fd);
        http_stop(srv);
        return -1;
    }

    srv->gif = gif_response_new();
    if (srv->gif == NULL
        || static_files_load(&srv->files, cfg->static_dir, err, errlen)
           != 0) {
        if (srv->gif == NULL) {
            snprintf(err, errlen, "http: cannot build the GIF response");
        }
        close(cfg->listen_fd);
        http_stop(srv);
        return -1;
    }

    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, srv,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(err, errlen, "http: libmicrohttpd would not start");
        close(cfg->listen_fd);
        http_stop(srv);
        return -1;
    }

    *out = srv;
    return 0;
}


/*
 * Stops recording opens and waits, at most DRAIN_MS, until every pixel
 * whose open was queued has had its reply sent: stopping the library
 * earlier would close connections with such replies unsent.
 */
static void
drain(struct http_server *srv)
{
    struct timespec tick = { 0, 1000000L };

    atomic_store(&srv->draining, 1);
    for (int waited = 0; waited < DRAIN_MS; waited++) {
        if (atomic_load(&srv->in_flight) == 0) {
            return;
        }
        nanosleep(&tick, NULL);
    }
    log_msg(LOG_WARN, "http.drain_timeout", "in_flight=%d",
            atomic_load(&srv->in_flight));
}


void
http_stop(struct http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    /*
     * The library must not stop with connections suspended: stop
     * accepting, let the workers finish (each resumes its connection),
     * then stop.  The listening socket is ours to close after that.
     */
    if (srv->daemon != NULL) {
        MHD_socket fd = MHD_quiesce_daemon(srv->daemon);

        drain(srv);
        workers_stop(srv->workers);
        srv->workers = NULL;
        MHD_stop_daemon(srv->daemon);
        if (fd != MHD_INVALID_SOCKET) {
            close(fd);
        }
    }
    workers_stop(srv->workers);
    if (srv->gif != NULL) {
        MHD_destroy_response(srv->gif);
    }
    static_files_free(srv->files);
    free(srv);
}
