/*
 * api.c - the API object: its pool of store handles, authentication,
 * routing, and the small replies (/healthz, /api/v1/stats).
 *
 * Exports api_new(), api_free(), api_handle() and api_owns_path() (api.h)
 * and the helpers in api_internal.h.  The handlers for messages, events,
 * tickets and reports live in api_messages.c, api_reports.c,
 * api_trend.c and api_alerts.c.
 *
 * Threads: api_handle() may run on many threads at once.  Each request
 * takes one store handle from the pool and gives it back; the pool's
 * mutex and condition variable are the only shared mutable state.
 */
#include "api/api_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "api/parse.h"
#include "server/log.h"
#include "server/text.h"
#include "store/store.h"
#include "store/writer.h"

#define KEY_HASH_BYTES crypto_generichash_BYTES

_Static_assert(KEY_HASH_BYTES == STORE_API_KEY_HASH_BYTES,
               "the store keeps the hashes api.c makes");

struct api {
    struct api_config cfg;      /* strings point at the copies below */
    char *db_path;
    char *base_url;
    /* Only a hash of the API key file's key is kept; see authorized().
     * It is a write key. */
    unsigned char key_hash[KEY_HASH_BYTES];

    struct store *handles[API_POOL_SIZE];   /* all open handles */
    struct store *idle[API_POOL_SIZE];      /* the ones free to take */
    size_t n_idle;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    /* cJSON's parser writes a static error position on every call. */
    pthread_mutex_t json_lock;
    int locks_ready;
};

typedef void route_fn(struct api *api, const struct api_request *req,
                      const char *arg, struct api_reply *reply);

struct route {
    const char *path;
    int prefix;                 /* path is a prefix; the rest is arg */
    const char *method;         /* "GET" also answers HEAD */
    const char *allow;          /* the Allow header of a 405 */
    route_fn *fn;
};

static route_fn healthz_get;
static route_fn stats_get;

static const struct route routes[] = {
    { "/healthz", 0, "GET", "GET, HEAD", healthz_get },
    { "/api/v1/messages", 0, "POST", "POST", api_messages_post },
    { "/api/v1/events", 0, "POST", "POST", api_events_post },
    { "/api/v1/calls", 0, "POST", "POST", api_calls_post },
    { "/api/v1/tickets/", 1, "GET", "GET, HEAD", api_ticket_get },
    { "/api/v1/recipients/", 1, "DELETE", "DELETE",
      api_recipients_delete },
    { "/api/v1/domains", 0, "GET", "GET, HEAD", api_domains_get },
    { "/api/v1/domains/trend", 0, "GET", "GET, HEAD", api_trend_get },
    { "/api/v1/alerts", 0, "GET", "GET, HEAD", api_alerts_get },
    { "/api/v1/unopened", 0, "GET", "GET, HEAD", api_unopened_get },
    { "/api/v1/stats", 0, "GET", "GET, HEAD", stats_get },
};

/*
 * Writes a formatted reason into err (when there is room for one) and
 * returns -1, so a check can end in "return api_fail(...)".
 */
int
api_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}


static int
check_config(const struct api_config *cfg, char *err, size_t errlen)
{
    if (cfg == NULL || cfg->db_path == NULL || cfg->keys == NULL)
        return api_fail(err, errlen, "api: db_path and keys are required");
    if (cfg->api_key == NULL || cfg->api_key[0] == '\0')
        return api_fail(err, errlen, "api: the API key is empty");
    if (cfg->base_url == NULL || cfg->base_url[0] == '\0')
        return api_fail(err, errlen, "api: the base URL is empty");
    return 0;
}


static void
hash_key(const char *key, unsigned char out[KEY_HASH_BYTES])
{
    crypto_generichash(out, KEY_HASH_BYTES, (const unsigned char *) key,
                       strlen(key), NULL, 0);
}


/*
 * Copies what the API keeps of cfg.  The keyring and the writer stay the
 * caller's and must outlive the API; the API key itself is not kept.
 */
static int
copy_config(struct api *api, const struct api_config *cfg)
{
    size_t n;

    api->cfg = *cfg;
    api->cfg.api_key = NULL;
    if (api->cfg.clip_threshold == 0)
        api->cfg.clip_threshold = API_CLIP_THRESHOLD_DEFAULT;
    if (api->cfg.call_hide_ms <= 0)
        api->cfg.call_hide_ms = API_CALL_HIDE_DEFAULT_MS;
    hash_key(cfg->api_key, api->key_hash);

    api->db_path = strdup(cfg->db_path);
    api->base_url = strdup(cfg->base_url);
    if (api->db_path == NULL || api->base_url == NULL)
        return -1;
    n = strlen(api->base_url);
    while (n > 0 && api->base_url[n - 1] == '/')
        api->base_url[--n] = '\0';
    api->cfg.db_path = api->db_path;
    api->cfg.base_url = api->base_url;
    return 0;
}


static int
init_locks(struct api *api)
{
    if (pthread_mutex_init(&api->pool_lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&api->pool_cond, NULL) != 0) {
        pthread_mutex_destroy(&api->pool_lock);
        return -1;
    }
    if (pthread_mutex_init(&api->json_lock, NULL) != 0) {
        pthread_cond_destroy(&api->pool_cond);
        pthread_mutex_destroy(&api->pool_lock);
        return -1;
    }
    api->locks_ready = 1;
    return 0;
}


static int
open_pool(struct api *api, char *err, size_t errlen)
{
    char serr[256];
    size_t i;

    for (i = 0; i < API_POOL_SIZE; i++) {
        if (store_open(&api->handles[i], api->db_path, serr,
                       sizeof serr) != STORE_OK)
            return api_fail(err, errlen, "api: cannot open the store %s: %s",
                        api->db_path, serr);
        api->idle[i] = api->handles[i];
    }
    api->n_idle = API_POOL_SIZE;
    return 0;
}


int
api_new(struct api **out, const struct api_config *cfg, char *err,
        size_t errlen)
{
    struct api *api;

    *out = NULL;
    if (check_config(cfg, err, errlen) != 0)
        return -1;
    if (sodium_init() < 0)
        return api_fail(err, errlen, "api: libsodium failed to initialise");

    api = calloc(1, sizeof *api);
    if (api == NULL)
        return api_fail(err, errlen, "api: out of memory");
    if (copy_config(api, cfg) != 0 || init_locks(api) != 0) {
        api_free(api);
        return api_fail(err, errlen, "api: out of memory");
    }
    if (open_pool(api, err, errlen) != 0) {
        api_free(api);
        return -1;
    }

    *out = api;
    return 0;
}


/* No request may be in flight: every handle must be back in the pool. */
void
api_free(struct api *api)
{
    size_t i;

    if (api == NULL)
        return;
    for (i = 0; i < API_POOL_SIZE; i++)
        store_close(api->handles[i]);
    if (api->locks_ready) {
        pthread_mutex_destroy(&api->json_lock);
        pthread_cond_destroy(&api->pool_cond);
        pthread_mutex_destroy(&api->pool_lock);
    }
    sodium_memzero(api->key_hash, sizeof api->key_hash);
    free(api->db_path);
    free(api->base_url);
    free(api);
}


/*
 * A handle that went stale (store_stale()) is swapped for a new one, so
 * the API recovers by itself when, say, a read-only file is made
 * writable again.  When the new one cannot be opened the old one stays.
 * SQLite made the -wal and -shm files with the file's read-only mode, so
 * a first write or two after the fault clears can still fail; each such
 * failure marks the handle stale again and the next take renews it.
 */
static struct store *
renew(struct api *api, struct store *st)
{
    char err[API_ERR_MAX];
    struct store *fresh = NULL;
    size_t i;

    if (store_open(&fresh, api->db_path, err, sizeof err) != STORE_OK)
        return st;
    if (store_stale(fresh)) {
        store_close(fresh);     /* still read-only: try on the next take */
        return st;
    }

    pthread_mutex_lock(&api->pool_lock);
    for (i = 0; i < API_POOL_SIZE; i++)
        if (api->handles[i] == st)
            api->handles[i] = fresh;
    pthread_mutex_unlock(&api->pool_lock);
    store_close(st);
    log_msg(LOG_INFO, "api.store_reopened", "path=%s", api->db_path);
    return fresh;
}


struct store *
api_store_take(struct api *api)
{
    struct store *st;

    pthread_mutex_lock(&api->pool_lock);
    while (api->n_idle == 0)
        pthread_cond_wait(&api->pool_cond, &api->pool_lock);
    st = api->idle[--api->n_idle];
    pthread_mutex_unlock(&api->pool_lock);
    return store_stale(st) ? renew(api, st) : st;
}


void
api_store_give(struct api *api, struct store *st)
{
    pthread_mutex_lock(&api->pool_lock);
    api->idle[api->n_idle++] = st;
    pthread_cond_signal(&api->pool_cond);
    pthread_mutex_unlock(&api->pool_lock);
}


const struct api_config *
api_config(const struct api *api)
{
    return &api->cfg;
}


const char *
api_header(const struct api_request *req, const char *name)
{
    return req->header != NULL ? req->header(req->ctx, name) : NULL;
}


const char *
api_query(const struct api_request *req, const char *name)
{
    return req->query != NULL ? req->query(req->ctx, name) : NULL;
}


static int
is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


cJSON *
api_parse_json(struct api *api, const char *body, size_t len, char *err,
               size_t errlen)
{
    const char *end = NULL;
    cJSON *doc;

    if (body == NULL || len == 0) {
        api_fail(err, errlen, "the request body is empty");
        return NULL;
    }

    /* A NUL would end a C string early: the value stored would be
     * silently shorter than the one sent. */
    if (memchr(body, '\0', len) != NULL) {
        api_fail(err, errlen, "the body contains a NUL byte");
        return NULL;
    }
    if (text_json_has_nul(body, len)) {
        api_fail(err, errlen, "JSON strings must not contain \\u0000");
        return NULL;
    }

    pthread_mutex_lock(&api->json_lock);
    doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    pthread_mutex_unlock(&api->json_lock);
    if (doc == NULL) {
        api_fail(err, errlen, "malformed JSON near byte %zu",
             end != NULL ? (size_t) (end - body) : (size_t) 0);
        return NULL;
    }

    while (end < body + len && is_json_space(*end))
        end++;
    if (end != body + len) {
        cJSON_Delete(doc);
        api_fail(err, errlen, "malformed JSON: unexpected data at byte %zu",
             (size_t) (end - body));
        return NULL;
    }
    return doc;
}


static void
reply_out_of_memory(struct api_reply *reply)
{
    static const char msg[] = "{\"error\":\"out of memory\"}";

    reply->status = 500;
    reply->content_type = "application/json";
    reply->body = strdup(msg);
    reply->len = reply->body != NULL ? strlen(reply->body) : 0;
}


void
api_reply_json(struct api_reply *reply, unsigned status, cJSON *doc)
{
    char *text = NULL;

    /*
     * cJSON allocates with malloc(): Beacon never calls cJSON_InitHooks(),
     * so cJSON_free() is free() and the body may be released with free()
     * as api.h promises.
     */
    if (doc != NULL)
        text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (text == NULL) {
        reply_out_of_memory(reply);
        return;
    }

    reply->status = status;
    reply->content_type = "application/json";
    reply->body = text;
    reply->len = strlen(text);
}


void
api_reply_error(struct api_reply *reply, unsigned status, const char *fmt,
                ...)
{
    char msg[API_ERR_MAX];
    va_list ap;
    cJSON *doc;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    doc = cJSON_CreateObject();
    if (doc != NULL && cJSON_AddStringToObject(doc, "error", msg) == NULL) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    api_reply_json(reply, status, doc);
}


/* While the store fails every API call fails with it: one line per
 * interval, not one per request. */
#define STORE_FAIL_LOG_INTERVAL_MS 10000

static struct log_limit store_fail_log = LOG_LIMIT_INIT;


void
api_reply_store_error(struct api_reply *reply, struct store *st, int rc,
                      const char *op)
{
    uint64_t skipped;

    if (log_limit_pass(&store_fail_log, STORE_FAIL_LOG_INTERVAL_MS,
                       &skipped)) {
        log_msg(LOG_ERROR, "api.store_failed",
                "op=%s rc=%d err=%s skipped=%llu", op, rc,
                st != NULL ? store_errmsg(st) : "-",
                (unsigned long long) skipped);
    }
    if (rc == STORE_BUSY)
        api_reply_error(reply, 503, "the store is busy; retry shortly");
    else
        api_reply_error(reply, 500, "the store failed; see the server log");
}


int
api_add_string_or_null(cJSON *obj, const char *name, const char *s)
{
    cJSON *item;

    if (s != NULL)
        item = cJSON_AddStringToObject(obj, name, s);
    else
        item = cJSON_AddNullToObject(obj, name);
    return item != NULL ? 0 : -1;
}


int
api_add_time(cJSON *obj, const char *name, int64_t ms)
{
    char text[32];

    format_time(ms, text, sizeof text);
    return cJSON_AddStringToObject(obj, name, text) != NULL ? 0 : -1;
}


int
api_add_time_or_null(cJSON *obj, const char *name, int64_t ms)
{
    if (ms == 0)
        return cJSON_AddNullToObject(obj, name) != NULL ? 0 : -1;
    return api_add_time(obj, name, ms);
}


/* Counts are far below 2^53, so the double cJSON stores is exact. */
int
api_add_count(cJSON *obj, const char *name, int64_t n)
{
    return cJSON_AddNumberToObject(obj, name, (double) n) != NULL ? 0 : -1;
}


int
api_add_by_class(cJSON *obj, const char *name,
                 const int64_t by_class[STORE_N_CLASSES])
{
    cJSON *o = cJSON_AddObjectToObject(obj, name);
    const char *cls;
    int i;

    if (o == NULL)
        return -1;
    for (i = 0; i < STORE_N_CLASSES; i++) {
        cls = store_class_name(i);
        if (cls == NULL || api_add_count(o, cls, by_class[i]) != 0)
            return -1;
    }
    return 0;
}


static cJSON *
health_doc(const char *reason)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL)
        return NULL;
    if (cJSON_AddStringToObject(doc, "status",
                                reason == NULL ? "ok" : "degraded") == NULL
        || (reason != NULL
            && cJSON_AddStringToObject(doc, "reason", reason) == NULL)) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/*
 * A failing store is logged by the writer, once per interval; this path
 * is open to anyone, so it logs at most once per HEALTH_LOG_INTERVAL_S
 * too.  Lock-free: a race costs one extra line at most.
 */
#define HEALTH_LOG_INTERVAL_S 10

static void
log_unhealthy(int rc, const char *err)
{
    static _Atomic int64_t last;
    struct timespec ts;
    int64_t now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t) ts.tv_sec;

    if (now - atomic_load(&last) < HEALTH_LOG_INTERVAL_S)
        return;
    atomic_store(&last, now);
    log_msg(LOG_WARN, "api.health_degraded", "rc=%d err=%s", rc, err);
}


/*
 * GET /healthz: 200 while the store answers and the writer writes;
 * otherwise 503 with the reason (a read that fails, or opens that wait
 * because the database is locked, read-only or full).
 */
static void
healthz_get(struct api *api, const struct api_request *req, const char *arg,
            struct api_reply *reply)
{
    char reason[WRITER_REASON_MAX + 64];
    struct store *st;
    int rc, ok;

    (void) req;
    (void) arg;

    st = api_store_take(api);
    rc = store_ping(st);
    if (rc != STORE_OK) {
        snprintf(reason, sizeof reason, "the store does not answer: %s",
                 store_errmsg(st));
        log_unhealthy(rc, store_errmsg(st));
    }
    api_store_give(api, st);

    ok = rc == STORE_OK;
    if (ok && api->cfg.writer != NULL
        && writer_health(api->cfg.writer, reason, sizeof reason) != 0)
        ok = 0;

    api_reply_json(reply, ok ? 200 : 503, health_doc(ok ? NULL : reason));
}


static cJSON *
stats_doc(const struct writer_stats *ws, const struct api_counters *c)
{
    const struct {
        const char *name;
        uint64_t value;
    } f[] = {
        { "opens_queued", ws->queued },
        { "opens_written", ws->written },
        { "opens_unknown", ws->unknown },
        { "fetches_collapsed", ws->collapsed },
        { "fetches_not_kept", ws->not_kept },
        { "opens_dropped", ws->dropped },
        { "opens_waited", ws->waited },
        { "tokens_rejected", c->tokens_rejected },
        { "queue_pending", (uint64_t) ws->pending },
    };
    cJSON *doc = cJSON_CreateObject();
    size_t i;

    for (i = 0; doc != NULL && i < sizeof f / sizeof f[0]; i++) {
        if (cJSON_AddNumberToObject(doc, f[i].name, (double) f[i].value)
            == NULL) {
            cJSON_Delete(doc);
            doc = NULL;
        }
    }
    return doc;
}


/*
 * GET /api/v1/stats: the writer's counters and the pixel path's; zeros
 * for whichever the server did not provide.  The opens_* names predate
 * classification and are kept for existing readers: they count every
 * recorded fetch, whatever its class.
 */
static void
stats_get(struct api *api, const struct api_request *req, const char *arg,
          struct api_reply *reply)
{
    struct writer_stats ws;
    struct api_counters c;

    (void) req;
    (void) arg;
    memset(&ws, 0, sizeof ws);
    memset(&c, 0, sizeof c);
    if (api->cfg.writer != NULL)
        writer_stats(api->cfg.writer, &ws);
    if (api->cfg.counters != NULL)
        api->cfg.counters(&c);

    api_reply_json(reply, 200, stats_doc(&ws, &c));
}


int
api_owns_path(const char *path)
{
    if (path == NULL)
        return 0;
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/api") == 0
           || strncmp(path, "/api/", 5) == 0;
}


static int
needs_auth(const char *path)
{
    return strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0;
}


/* The keys in the database compared so far against the given one. */
struct key_match {
    unsigned char given[KEY_HASH_BYTES];
    int scope;                  /* enum store_api_scope; -1: no match */
};


/*
 * Compares one stored key with the given one.  Every key in force is
 * compared, whether an earlier one matched or not, and in constant time,
 * so the time taken tells nothing of which key (if any) matched.
 */
static int
match_key(void *ctx, const struct store_api_key *k)
{
    struct key_match *m = ctx;

    if (sodium_memcmp(m->given, k->hash, KEY_HASH_BYTES) == 0)
        m->scope = k->scope;
    return 0;
}


/*
 * The scope of the key whose hash m holds: the API key file's key is a
 * write key; else the database's keys in force, read on every request
 * (on the API's own handle) so a revoked key stops working at once.
 * STORE_OK with m->scope -1 when no key matches.
 */
static int
key_scope(struct api *api, struct key_match *m, struct api_reply *reply)
{
    struct store *st;
    int rc;

    m->scope = -1;
    if (sodium_memcmp(m->given, api->key_hash, KEY_HASH_BYTES) == 0) {
        m->scope = STORE_SCOPE_WRITE;
        return STORE_OK;
    }

    st = api_store_take(api);
    rc = store_api_keys(st, 1, match_key, m);
    if (rc != STORE_OK)
        api_reply_store_error(reply, st, rc, "api_keys");
    api_store_give(api, st);
    return rc;
}


/*
 * Checks "Authorization: Bearer <key>" (the scheme name is
 * case-insensitive) and the key's scope: a read key may only GET (and
 * HEAD).  The given key is hashed (BLAKE2b-256) and the hash compared
 * in constant time with the hash of each known key, so neither the
 * content nor the length of a real key shows in the timing.  A fast
 * hash suffices: the keys are 256 random bits, so the stored hashes
 * cannot be reversed by guessing, however fast guesses are; slow
 * password hashes are for secrets people choose.  On failure reply is
 * a 401 (no or unknown key) or 403 (the key may not do this).
 */
static int
authorized(struct api *api, const struct api_request *req,
           struct api_reply *reply)
{
    const char *h = api_header(req, "Authorization");
    struct key_match m;
    int rc;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        api_reply_error(reply, 401, "missing \"Authorization: Bearer "
                        "<api key>\" header");
        return 0;
    }
    h += 7;
    while (*h == ' ')
        h++;

    hash_key(h, m.given);
    rc = key_scope(api, &m, reply);
    sodium_memzero(m.given, sizeof m.given);
    if (rc != STORE_OK)
        return 0;
    if (m.scope < 0) {
        api_reply_error(reply, 401, "invalid API key");
        return 0;
    }
    if (m.scope != STORE_SCOPE_WRITE && strcmp(req->method, "GET") != 0
        && strcmp(req->method, "HEAD") != 0) {
        api_reply_error(reply, 403, "this API key has the read scope "
                        "(GET only); this request needs a write key");
        return 0;
    }
    return 1;
}


static const struct route *
find_route(const char *path, const char **arg)
{
    size_t i, n;

    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        n = strlen(routes[i].path);
        if (!routes[i].prefix && strcmp(path, routes[i].path) == 0) {
            *arg = NULL;
            return &routes[i];
        }
        if (routes[i].prefix && strncmp(path, routes[i].path, n) == 0
            && path[n] != '\0') {
            *arg = path + n;
            return &routes[i];
        }
    }
    return NULL;
}


static int
method_allowed(const struct route *r, const char *method)
{
    if (strcmp(method, r->method) == 0)
        return 1;
    return strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}


void
api_handle(struct api *api, const struct api_request *req,
           struct api_reply *reply)
{
    const struct route *r;
    const char *arg = NULL;

    memset(reply, 0, sizeof *reply);
    reply->content_type = "application/json";
    if (req->method == NULL || req->path == NULL) {
        api_reply_error(reply, 400, "the request has no method or path");
        return;
    }

    /* Authenticate first, so unknown /api/ routes reveal nothing. */
    if (needs_auth(req->path) && !authorized(api, req, reply))
        return;

    r = find_route(req->path, &arg);
    if (r == NULL) {
        api_reply_error(reply, 404, "no such route");
        return;
    }
    if (!method_allowed(r, req->method)) {
        api_reply_error(reply, 405, "method not allowed; use %s", r->method);
        reply->allow = r->allow;
        return;
    }

    r->fn(api, req, arg, reply);
}
