/*
 * api.h - the JSON API, independent of the HTTP library.
 *
 * The server turns each request under /api/ (and /healthz) into a plain
 * struct api_request and sends back the struct api_reply it gets.  Tests
 * drive api_handle() directly, without sockets.
 */
#ifndef BEACON_API_H
#define BEACON_API_H

#include <stddef.h>
#include <stdint.h>

struct keys_live;
struct writer;

#define API_BODY_MAX (64 * 1024)
#define API_POOL_SIZE 4

struct api_request {
    const char *method;                 /* "GET", "POST", ... */
    const char *path;                   /* without the query string */
    const char *body;                   /* NULL when empty */
    size_t body_len;
    int64_t now_ms;
    /* Look-ups into the request; NULL when absent.  ctx is passed back. */
    const char *(*header)(void *ctx, const char *name);
    const char *(*query)(void *ctx, const char *name);
    void *ctx;
};

struct api_reply {
    unsigned status;
    const char *content_type;           /* static string */
    char *body;                         /* heap, free() it; may be NULL */
    size_t len;
    const char *allow;                  /* Allow header for 405, or NULL */
};

/* Counters the server shares with the API for /api/v1/stats. */
struct api_counters {
    uint64_t tokens_rejected;
};

struct api_config {
    const char *db_path;                /* each pooled handle opens it */
    struct keys_live *keys;             /* signs new tokens */
    const char *api_key;                /* the Bearer key */
    const char *base_url;               /* no trailing slash */
    struct writer *writer;              /* for stats; may be NULL */
    void (*counters)(struct api_counters *out);  /* may be NULL */
    unsigned clip_threshold;            /* html_bytes from which the
                                         * pixel goes on top; 0: 90000 */
    int64_t call_hide_ms;               /* a call that reached the
                                         * customer hides them from the
                                         * call list this long; 0: 7 d */
};

struct api;

/* Opens the pool of store handles.  -1 with a message in err. */
int api_new(struct api **out, const struct api_config *cfg, char *err,
            size_t errlen);

void api_free(struct api *api);

/* Routes and answers one request.  Always fills reply. */
void api_handle(struct api *api, const struct api_request *req,
                struct api_reply *reply);

/* True when path is one the API answers (/api/... or /healthz). */
int api_owns_path(const char *path);

#endif
