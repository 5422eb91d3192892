/*
 * test_api.c - the JSON API driven through api_handle(), without sockets.
 *
 * A temporary SQLite file backs the API's pool; fetches are written
 * straight into it through a second store handle, as the writer would,
 * classified by a small rule set of the test's own (User-Agent prefixes).
 * The clock is fixed (NOW; the seeded messages are registered at their
 * sent_at), so every report figure below is exact.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "api/api.h"
#include "api/parse.h"
#include "server/keys.h"
#include "server/token.h"
#include "store/store.h"
#include "tests/unit/check.h"

#define API_KEY "test-api-key-0123456789"
#define AUTH "Bearer " API_KEY
#define BASE_URL "http://127.0.0.1:8080"

/* 2026-12-03T12:00:00Z */
#define NOW INT64_C(1796299200000)

static struct api *g_api;
static int64_t g_now = NOW;     /* the server's clock for the next call */
static struct keyring g_keys;
static struct keys_live *g_live;       /* holds a copy of g_keys */
static char g_dir[64];
static char g_db[128];

/* A request as a test writes it. */
struct spec {
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;            /* 0: strlen(body) */
    const char *auth;           /* the Authorization header, or NULL */
    const char *accept;
    const char *query;          /* "a=1&b=2", values not escaped */
};

struct call_ctx {
    const struct spec *spec;
    char value[512];
};

static const char *
spec_header(void *ctx, const char *name)
{
    const struct call_ctx *c = ctx;

    if (strcasecmp(name, "Authorization") == 0)
        return c->spec->auth;
    if (strcasecmp(name, "Accept") == 0)
        return c->spec->accept;
    return NULL;
}


static const char *
spec_query(void *ctx, const char *name)
{
    struct call_ctx *c = ctx;
    const char *p = c->spec->query;
    size_t n = strlen(name), len;

    while (p != NULL && *p != '\0') {
        len = strcspn(p, "&");
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            snprintf(c->value, sizeof c->value, "%.*s", (int) (len - n - 1),
                     p + n + 1);
            return c->value;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}


static void
call_api(struct api *api, const struct spec *s, struct api_reply *reply)
{
    struct call_ctx ctx;
    struct api_request req;

    memset(&ctx, 0, sizeof ctx);
    ctx.spec = s;
    memset(&req, 0, sizeof req);
    req.method = s->method;
    req.path = s->path;
    req.body = s->body;
    if (s->body != NULL)
        req.body_len = s->body_len != 0 ? s->body_len : strlen(s->body);
    req.now_ms = g_now;
    req.header = spec_header;
    req.query = spec_query;
    req.ctx = &ctx;
    api_handle(api, &req, reply);
}


static void
call(const struct spec *s, struct api_reply *reply)
{
    call_api(g_api, s, reply);
}


/* Calls and parses a JSON reply; *status gets the status. */
static cJSON *
call_json(const struct spec *s, unsigned *status)
{
    struct api_reply reply;
    cJSON *doc;

    call(s, &reply);
    *status = reply.status;
    CHECK_STR(reply.content_type, "application/json");
    doc = reply.body != NULL ? cJSON_ParseWithLength(reply.body, reply.len)
                             : NULL;
    if (doc == NULL)
        fprintf(stderr, "%s %s: reply is not JSON: %.*s\n", s->method,
                s->path, (int) reply.len, reply.body ? reply.body : "");
    CHECK(doc != NULL);
    free(reply.body);
    return doc;
}


static cJSON *
get(const char *path, const char *query, unsigned *status)
{
    struct spec s = { "GET", path, NULL, 0, AUTH, NULL, query };

    return call_json(&s, status);
}


static const char *
str_of(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}


static double
num_of(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsNumber(item) ? item->valuedouble : -12345.0;
}


static int
is_null(const cJSON *obj, const char *name)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, name));
}


/* Registers a message, checks the 201 reply and returns its id. */
static int64_t
register_msg(const char *body)
{
    struct spec s = { "POST", "/api/v1/messages", body, 0, AUTH, NULL,
                      NULL };
    unsigned status;
    cJSON *doc = call_json(&s, &status);
    int64_t id = (int64_t) num_of(doc, "id");

    if (status != 201)
        fprintf(stderr, "register %s: status %u\n", body, status);
    CHECK(status == 201);
    CHECK(id > 0);
    cJSON_Delete(doc);
    return id;
}


/* Registers a message as if the server's clock read at (RFC 3339). */
static int64_t
register_at(const char *at, const char *body)
{
    int64_t id;

    CHECK(parse_time(at, 0, &g_now, NULL) == 0);
    id = register_msg(body);
    g_now = NOW;
    return id;
}


/* Calls, and checks the status and that "error" holds needle. */
static void
expect_error(const char *id, const struct spec *s, unsigned want,
             const char *needle)
{
    unsigned status;
    cJSON *doc = call_json(s, &status);
    const char *err = str_of(doc, "error");

    if (status != want || err == NULL || strstr(err, needle) == NULL)
        fprintf(stderr, "case %s: status %u, error \"%s\", want %u \"%s\"\n",
                id, status, err != NULL ? err : "(none)", want, needle);
    CHECK(status == want);
    CHECK(err != NULL && strstr(err, needle) != NULL);
    cJSON_Delete(doc);
}


static void
stats_counters(struct api_counters *out)
{
    out->tokens_rejected = 7;
}


static int
setup(void)
{
    struct api_config cfg;
    char err[256];

    if (sodium_init() < 0)
        return -1;
    memset(&g_keys, 0, sizeof g_keys);
    g_keys.n = 1;
    g_keys.current = 0;
    g_keys.ids[0] = 1;
    randombytes_buf(g_keys.keys[0], KEYS_KEY_BYTES);
    if (keys_live_new(&g_live, &g_keys, err, sizeof err) != 0)
        return -1;

    snprintf(g_dir, sizeof g_dir, "/tmp/beacon-test-api-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_db, sizeof g_db, "%s/beacon.db", g_dir);

    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = g_db;
    cfg.keys = g_live;
    cfg.api_key = API_KEY;
    cfg.base_url = BASE_URL "/";
    cfg.writer = NULL;
    cfg.counters = stats_counters;
    if (api_new(&g_api, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "api_new: %s\n", err);
        return -1;
    }
    return 0;
}


static void
teardown(void)
{
    const char *suffix[] = { "", "-wal", "-shm" };
    char path[160];
    size_t i;

    api_free(g_api);
    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", g_db, suffix[i]);
        unlink(path);
    }
    rmdir(g_dir);
    keys_clear(&g_keys);
    keys_live_free(g_live);
}


static void
api_new_should_reject_bad_config(void)
{
    struct api_config cfg;
    struct api *api = NULL;
    char err[256] = "";

    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = g_db;
    cfg.keys = g_live;
    cfg.api_key = "";
    cfg.base_url = BASE_URL;
    CHECK(api_new(&api, &cfg, err, sizeof err) == -1);
    CHECK(api == NULL && strstr(err, "API key") != NULL);

    cfg.api_key = API_KEY;
    cfg.db_path = "/nonexistent-dir/x/beacon.db";
    CHECK(api_new(&api, &cfg, err, sizeof err) == -1);
    CHECK(api == NULL && strstr(err, "store") != NULL);
}


static void
api_owns_path_should_match_api_and_healthz(void)
{
    CHECK(api_owns_path("/healthz"));
    CHECK(api_owns_path("/api/v1/messages"));
    CHECK(api_owns_path("/api/"));
    CHECK(api_owns_path("/api"));
    CHECK(!api_owns_path("/apix"));
    CHECK(!api_owns_path("/p/abc.gif"));
    CHECK(!api_owns_path("/healthz/x"));
    CHECK(!api_owns_path("/"));
    CHECK(!api_owns_path(NULL));
}


static void
healthz_should_answer_without_auth(void)
{
    struct spec s = { "GET", "/healthz", NULL, 0, NULL, NULL, NULL };
    struct api_reply reply;
    unsigned status;
    cJSON *doc = call_json(&s, &status);

    CHECK(status == 200);
    CHECK_STR(str_of(doc, "status"), "ok");
    cJSON_Delete(doc);

    s.method = "HEAD";
    call(&s, &reply);
    CHECK(reply.status == 200);
    free(reply.body);

    s.method = "POST";
    call(&s, &reply);
    CHECK(reply.status == 405);
    CHECK_STR(reply.allow, "GET, HEAD");
    free(reply.body);
}


struct auth_case {
    const char *id;
    const char *path;
    const char *auth;
    unsigned want;
};

static const struct auth_case auth_cases[] = {
    { "a-missing", "/api/v1/stats", NULL, 401 },
    { "a-empty", "/api/v1/stats", "", 401 },
    { "a-wrong", "/api/v1/stats", "Bearer wrong-key", 401 },
    { "a-prefix", "/api/v1/stats", "Bearer test-api-key-012345678", 401 },
    { "a-longer", "/api/v1/stats", AUTH "9", 401 },
    { "a-no-key", "/api/v1/stats", "Bearer ", 401 },
    { "a-basic", "/api/v1/stats", "Basic " API_KEY, 401 },
    { "a-bare-key", "/api/v1/stats", API_KEY, 401 },
    { "a-right", "/api/v1/stats", AUTH, 200 },
    { "a-lower-scheme", "/api/v1/stats", "bearer " API_KEY, 200 },
    { "a-two-spaces", "/api/v1/stats", "Bearer  " API_KEY, 200 },
    { "a-unknown-noauth", "/api/v1/nope", NULL, 401 },
    { "a-unknown-auth", "/api/v1/nope", AUTH, 404 },
    { "a-api-root", "/api", AUTH, 404 },
    { "a-tickets-empty", "/api/v1/tickets/", AUTH, 404 },
    { "a-ticket-noauth", "/api/v1/tickets/T1", NULL, 401 },
    { "a-messages-noauth", "/api/v1/messages", NULL, 401 },
};

static void
api_should_require_the_bearer_key(void)
{
    size_t i;

    for (i = 0; i < sizeof auth_cases / sizeof auth_cases[0]; i++) {
        const struct auth_case *c = &auth_cases[i];
        struct spec s = { "GET", c->path, NULL, 0, c->auth, NULL, NULL };
        unsigned status;
        cJSON *doc = call_json(&s, &status);

        if (status != c->want)
            fprintf(stderr, "case %s: status %u\n", c->id, status);
        CHECK(status == c->want);
        if (c->want != 200)
            CHECK(str_of(doc, "error") != NULL);
        cJSON_Delete(doc);
    }
}


/* Stores key under scope as `beacon apikey add` does; returns its id. */
static int64_t
add_db_key(const char *key, int scope)
{
    unsigned char hash[STORE_API_KEY_HASH_BYTES];
    struct store *st = NULL;
    char err[256];
    int64_t id = 0;

    crypto_generichash(hash, sizeof hash, (const unsigned char *) key,
                       strlen(key), NULL, 0);
    CHECK(store_open(&st, g_db, err, sizeof err) == STORE_OK);
    if (st == NULL)
        return 0;
    CHECK(store_api_key_add(st, hash, scope, NOW, &id) == STORE_OK);
    store_close(st);
    return id;
}


static void
revoke_db_key(int64_t id)
{
    struct store *st = NULL;
    char err[256];

    CHECK(store_open(&st, g_db, err, sizeof err) == STORE_OK);
    if (st == NULL)
        return;
    CHECK(store_api_key_revoke(st, id, NOW) == STORE_OK);
    store_close(st);
}


/* The status of method path with "Bearer key"; the error, if any, must
 * be a JSON error that does not quote the key. */
static unsigned
status_with_key(const char *method, const char *path, const char *body,
                const char *key)
{
    char auth[160];
    struct spec s = { method, path, body, 0, auth, NULL, NULL };
    struct api_reply reply;

    snprintf(auth, sizeof auth, "Bearer %s", key);
    call(&s, &reply);
    if (reply.status >= 400) {
        CHECK(reply.body != NULL && strstr(reply.body, "\"error\"") != NULL);
        CHECK(reply.body != NULL && strstr(reply.body, key) == NULL);
    }
    free(reply.body);
    return reply.status;
}


/*
 * Database keys: a read key may GET (and HEAD) but gets 403 on a write;
 * a write key may do both; a revoked key is refused on the next request;
 * the key file's key stays a write key; unknown keys get 401.
 */
static void
api_keys_should_follow_scope_and_revocation(void)
{
    static const char reg[] =
        "{\"ticket_id\":\"K1\",\"recipient\":\"k@k.example\"}";
    const char *rk = "read-key-0123456789abcdefghijklmnopqrstuvwxyz";
    const char *wk = "write-key-0123456789abcdefghijklmnopqrstuvwxyz";
    int64_t rid = add_db_key(rk, STORE_SCOPE_READ);
    int64_t wid = add_db_key(wk, STORE_SCOPE_WRITE);

    CHECK(rid > 0 && wid > rid);
    CHECK(status_with_key("GET", "/api/v1/stats", NULL, rk) == 200);
    CHECK(status_with_key("HEAD", "/api/v1/stats", NULL, rk) == 200);
    CHECK(status_with_key("GET", "/api/v1/domains", NULL, rk) == 200);
    CHECK(status_with_key("POST", "/api/v1/messages", reg, rk) == 403);
    CHECK(status_with_key("POST", "/api/v1/events", "{}", rk) == 403);
    CHECK(status_with_key("DELETE", "/api/v1/stats", NULL, rk) == 403);
    CHECK(status_with_key("POST", "/api/v1/messages", reg, wk) == 201);
    CHECK(status_with_key("GET", "/api/v1/stats", NULL, wk) == 200);
    CHECK(status_with_key("POST", "/api/v1/messages", reg, API_KEY)
          == 201);

    /* Near misses of a real key are unknown keys. */
    CHECK(status_with_key("GET", "/api/v1/stats", NULL, "read-key") == 401);
    CHECK(status_with_key("GET", "/api/v1/stats", NULL,
                          "read-key-0123456789abcdefghijklmnopqrstuvwxy")
          == 401);
    CHECK(status_with_key("POST", "/api/v1/messages", reg, "nope") == 401);

    revoke_db_key(rid);
    CHECK(status_with_key("GET", "/api/v1/stats", NULL, rk) == 401);
    CHECK(status_with_key("GET", "/api/v1/stats", NULL, wk) == 200);
    revoke_db_key(wid);
    CHECK(status_with_key("POST", "/api/v1/messages", reg, wk) == 401);
    CHECK(status_with_key("POST", "/api/v1/messages", reg, API_KEY)
          == 201);
}


static void
stats_should_report_counters(void)
{
    unsigned status;
    cJSON *doc = get("/api/v1/stats", NULL, &status);

    CHECK(status == 200);
    CHECK(num_of(doc, "tokens_rejected") == 7);
    CHECK(num_of(doc, "opens_queued") == 0);
    CHECK(num_of(doc, "opens_written") == 0);
    CHECK(num_of(doc, "opens_unknown") == 0);
    CHECK(num_of(doc, "fetches_collapsed") == 0);
    CHECK(num_of(doc, "fetches_not_kept") == 0);
    CHECK(num_of(doc, "opens_dropped") == 0);
    CHECK(num_of(doc, "queue_pending") == 0);
    cJSON_Delete(doc);
}


static void
register_should_return_a_verifiable_pixel(void)
{
    struct spec s = { "POST", "/api/v1/messages",
                      "{\"ticket_id\":\"R1\",\"recipient\":\"r@r.example\"}",
                      0, AUTH, NULL, NULL };
    char want_url[128], want_tag[256];
    const char *token, *url, *tag;
    uint64_t mid = 0;
    unsigned status;
    cJSON *doc = call_json(&s, &status);

    CHECK(status == 201);
    token = str_of(doc, "token");
    url = str_of(doc, "pixel_url");
    tag = str_of(doc, "img_tag");
    CHECK(token != NULL && url != NULL && tag != NULL);
    if (token == NULL || url == NULL || tag == NULL) {
        cJSON_Delete(doc);
        return;
    }

    CHECK(strlen(token) == TOKEN_LEN);
    CHECK(token_verify(&g_keys, token, strlen(token), &mid) == 0);
    CHECK(mid == (uint64_t) num_of(doc, "id"));
    snprintf(want_url, sizeof want_url, BASE_URL "/p/%s.gif", token);
    CHECK_STR(url, want_url);
    snprintf(want_tag, sizeof want_tag,
             "<img src=\"%s\" width=\"1\" height=\"1\" alt=\"\" "
             "style=\"border:0\" border=\"0\">", want_url);
    CHECK_STR(tag, want_tag);
    cJSON_Delete(doc);
}


static void
register_should_accept_integer_and_slashed_ticket_ids(void)
{
    unsigned status;
    cJSON *doc;

    register_msg("{\"ticket_id\":4711,\"recipient\":\"i@i.example\","
                 "\"kind\":\"confirmation\"}");
    doc = get("/api/v1/tickets/4711", NULL, &status);
    CHECK(status == 200);
    CHECK_STR(str_of(doc, "ticket_id"), "4711");
    cJSON_Delete(doc);

    register_msg("{\"ticket_id\":\"a/b\",\"recipient\":\"i@i.example\"}");
    doc = get("/api/v1/tickets/a/b", NULL, &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "messages")) == 1);
    cJSON_Delete(doc);
}


/* Registers body on api and checks the "placement" it answers. */
static void
expect_placement(struct api *api, const char *id, const char *body,
                 const char *want)
{
    struct spec s = { "POST", "/api/v1/messages", body, 0, AUTH, NULL,
                      NULL };
    struct api_reply reply;
    const char *got;
    cJSON *doc;

    call_api(api, &s, &reply);
    doc = cJSON_ParseWithLength(reply.body, reply.len);
    got = str_of(doc, "placement");
    if (reply.status != 201 || got == NULL || strcmp(got, want) != 0)
        fprintf(stderr, "case %s: status %u, placement %s\n", id,
                reply.status, got != NULL ? got : "(none)");
    CHECK(reply.status == 201);
    CHECK_STR(got, want);
    cJSON_Delete(doc);
    free(reply.body);
}


#define PLC "\"ticket_id\":\"P\",\"recipient\":\"p@p.example\""

/*
 * The pixel goes on top from the clip threshold on (90000 bytes unless
 * configured), at the bottom below it or when the size is not given.
 */
static void
register_should_answer_the_placement(void)
{
    struct api_config cfg;
    struct api *small = NULL;
    char err[256];

    expect_placement(g_api, "p-absent", "{" PLC "}", "bottom");
    expect_placement(g_api, "p-zero", "{" PLC ",\"html_bytes\":0}",
                     "bottom");
    expect_placement(g_api, "p-below", "{" PLC ",\"html_bytes\":89999}",
                     "bottom");
    expect_placement(g_api, "p-at", "{" PLC ",\"html_bytes\":90000}",
                     "top");
    expect_placement(g_api, "p-above", "{" PLC ",\"html_bytes\":2.5e6}",
                     "top");

    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = g_db;
    cfg.keys = g_live;
    cfg.api_key = API_KEY;
    cfg.base_url = BASE_URL;
    cfg.clip_threshold = 1000;
    CHECK(api_new(&small, &cfg, err, sizeof err) == 0);
    if (small == NULL)
        return;
    expect_placement(small, "p-small-below", "{" PLC ",\"html_bytes\":999}",
                     "bottom");
    expect_placement(small, "p-small-at", "{" PLC ",\"html_bytes\":1000}",
                     "top");
    expect_placement(small, "p-small-absent", "{" PLC "}", "bottom");
    api_free(small);
}


struct bad_case {
    const char *id;
    const char *method;
    const char *path;
    const char *body;
    const char *query;
    unsigned want;
    const char *needle;
};

#define REJ "\"ticket_id\":\"rejected\",\"recipient\":\"x@rejected.example\""

static const struct bad_case bad_cases[] = {
    { "b-malformed", "POST", "/api/v1/messages", "{", NULL, 400,
      "malformed JSON" },
    { "b-malformed-2", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",}", NULL, 400, "malformed JSON" },
    { "b-trailing", "POST", "/api/v1/messages", "{" REJ "} x", NULL, 400,
      "malformed JSON" },
    { "b-two-values", "POST", "/api/v1/messages", "{" REJ "}{}", NULL, 400,
      "malformed JSON" },
    { "b-empty", "POST", "/api/v1/messages", "", NULL, 400, "empty" },
    { "b-array", "POST", "/api/v1/messages", "[]", NULL, 400,
      "JSON object" },
    { "b-string", "POST", "/api/v1/messages", "\"x\"", NULL, 400,
      "JSON object" },
    { "b-no-ticket", "POST", "/api/v1/messages",
      "{\"recipient\":\"x@rejected.example\"}", NULL, 400,
      "ticket_id is required" },
    { "b-null-ticket", "POST", "/api/v1/messages",
      "{\"ticket_id\":null,\"recipient\":\"x@rejected.example\"}", NULL,
      400, "ticket_id is required" },
    { "b-ticket-bool", "POST", "/api/v1/messages",
      "{\"ticket_id\":true,\"recipient\":\"x@rejected.example\"}", NULL,
      400, "ticket_id must be a string or an integer" },
    { "b-ticket-float", "POST", "/api/v1/messages",
      "{\"ticket_id\":1.5,\"recipient\":\"x@rejected.example\"}", NULL,
      400, "ticket_id must be a string or an integer" },
    { "b-ticket-huge", "POST", "/api/v1/messages",
      "{\"ticket_id\":1e300,\"recipient\":\"x@rejected.example\"}", NULL,
      400, "ticket_id must be a string or an integer" },
    { "b-ticket-empty", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"\",\"recipient\":\"x@rejected.example\"}", NULL,
      400, "ticket_id must not be empty" },
    { "b-ticket-control", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rej\\u0001ected\","
      "\"recipient\":\"x@rejected.example\"}", NULL, 400,
      "ticket_id is not valid UTF-8 or contains a control character" },
    { "b-ticket-nul", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rej\\u0000ected\","
      "\"recipient\":\"x@rejected.example\"}", NULL, 400,
      "JSON strings must not contain \\u0000" },
    { "b-recipient-local-space", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",\"recipient\":\"a b@rejected.example\"}",
      NULL, 400, "recipient: the local part contains a space" },
    { "b-no-recipient", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\"}", NULL, 400, "recipient is required" },
    { "b-recipient-number", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",\"recipient\":42}", NULL, 400,
      "recipient must be a string" },
    { "b-recipient-no-at", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",\"recipient\":\"rejected.example\"}",
      NULL, 400, "recipient: address has no '@'" },
    { "b-recipient-no-domain", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",\"recipient\":\"x@\"}", NULL, 400,
      "recipient: address has no domain" },
    { "b-recipient-no-local", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",\"recipient\":\"@rejected.example\"}",
      NULL, 400, "recipient: address has no local part" },
    { "b-recipient-space", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",\"recipient\":\"x@rej ected.example\"}",
      NULL, 400, "recipient: domain contains a space" },
    { "b-recipient-utf8", "POST", "/api/v1/messages",
      "{\"ticket_id\":\"rejected\",\"recipient\":\"x\xff@rejected.example\"}",
      NULL, 400, "recipient is not valid UTF-8" },
    { "b-kind", "POST", "/api/v1/messages", "{" REJ ",\"kind\":\"memo\"}",
      NULL, 400, "kind must be \"reply\" or \"confirmation\"" },
    { "b-kind-number", "POST", "/api/v1/messages", "{" REJ ",\"kind\":1}",
      NULL, 400, "kind must be a string" },
    { "b-sent-at", "POST", "/api/v1/messages",
      "{" REJ ",\"sent_at\":\"yesterday\"}", NULL, 400,
      "sent_at must be an RFC 3339 date-time" },
    { "b-sent-at-date", "POST", "/api/v1/messages",
      "{" REJ ",\"sent_at\":\"2026-12-03\"}", NULL, 400,
      "sent_at must be an RFC 3339 date-time" },
    { "b-sent-at-feb30", "POST", "/api/v1/messages",
      "{" REJ ",\"sent_at\":\"2026-02-30T00:00:00Z\"}", NULL, 400,
      "sent_at must be an RFC 3339 date-time" },
    { "b-sent-at-number", "POST", "/api/v1/messages",
      "{" REJ ",\"sent_at\":1796299200000}", NULL, 400,
      "sent_at must be a string" },
    { "b-message-id", "POST", "/api/v1/messages",
      "{" REJ ",\"message_id\":5}", NULL, 400,
      "message_id must be a string" },
    { "b-customer", "POST", "/api/v1/messages",
      "{" REJ ",\"customer\":\"vip\"}", NULL, 400,
      "customer must be an object" },
    { "b-customer-name", "POST", "/api/v1/messages",
      "{" REJ ",\"customer\":{\"name\":7}}", NULL, 400,
      "customer.name must be a string" },
    { "b-customer-phone", "POST", "/api/v1/messages",
      "{" REJ ",\"customer\":{\"phone\":5550100}}", NULL, 400,
      "customer.phone must be a string" },
    { "b-customer-value", "POST", "/api/v1/messages",
      "{" REJ ",\"customer\":{\"value\":\"100\"}}", NULL, 400,
      "customer.value must be a number" },
    { "b-customer-negative", "POST", "/api/v1/messages",
      "{" REJ ",\"customer\":{\"value\":-1}}", NULL, 400,
      "customer.value must be a finite number >= 0" },
    { "b-customer-infinite", "POST", "/api/v1/messages",
      "{" REJ ",\"customer\":{\"value\":1e999}}", NULL, 400,
      "customer.value must be a finite number >= 0" },
    { "b-html-bytes-negative", "POST", "/api/v1/messages",
      "{" REJ ",\"html_bytes\":-1}", NULL, 400,
      "html_bytes must be an integer >= 0" },
    { "b-html-bytes-fraction", "POST", "/api/v1/messages",
      "{" REJ ",\"html_bytes\":1.5}", NULL, 400,
      "html_bytes must be an integer >= 0" },
    { "b-html-bytes-string", "POST", "/api/v1/messages",
      "{" REJ ",\"html_bytes\":\"90000\"}", NULL, 400,
      "html_bytes must be an integer >= 0" },
    { "b-html-bytes-null", "POST", "/api/v1/messages",
      "{" REJ ",\"html_bytes\":null}", NULL, 400,
      "html_bytes must be an integer >= 0" },
    { "b-html-bytes-bool", "POST", "/api/v1/messages",
      "{" REJ ",\"html_bytes\":true}", NULL, 400,
      "html_bytes must be an integer >= 0" },
    { "b-html-bytes-huge", "POST", "/api/v1/messages",
      "{" REJ ",\"html_bytes\":1e300}", NULL, 400,
      "html_bytes must be an integer >= 0" },
    { "b-domains-since", "GET", "/api/v1/domains", NULL, "since=yesterday",
      400, "since must be" },
    { "b-domains-until", "GET", "/api/v1/domains", NULL,
      "until=2026-13-01", 400, "until must be" },
    { "b-domains-order", "GET", "/api/v1/domains", NULL,
      "since=2026-12-03&until=2026-12-01", 400,
      "since: must be before until" },
    { "b-domains-year-10000", "GET", "/api/v1/domains", NULL,
      "since=9999-12-31T23:59:59Z&until=9999-12-31", 400,
      "within the years 0001 to 9999" },
    { "b-domains-year-0", "GET", "/api/v1/domains", NULL,
      "until=0001-01-20", 400, "within the years 0001 to 9999" },
    { "b-alerts-year-0", "GET", "/api/v1/alerts", NULL,
      "until=0001-01-01&window=3660d&baseline=3660d", 400,
      "within the years 0001 to 9999" },
    { "b-unopened-age", "GET", "/api/v1/unopened", NULL, "older_than=3x",
      400, "older_than must be" },
    { "b-unopened-age-zero", "GET", "/api/v1/unopened", NULL,
      "older_than=0h", 400, "older_than must be" },
    { "b-unopened-age-neg", "GET", "/api/v1/unopened", NULL,
      "older_than=-1h", 400, "older_than must be" },
    { "b-unopened-min", "GET", "/api/v1/unopened", NULL, "min_value=lots",
      400, "min_value must be" },
    { "b-unopened-min-inf", "GET", "/api/v1/unopened", NULL,
      "min_value=inf", 400, "min_value must be" },
    { "b-unopened-min-hex", "GET", "/api/v1/unopened", NULL,
      "min_value=0x10", 400, "min_value must be" },
    { "b-unopened-min-huge", "GET", "/api/v1/unopened", NULL,
      "min_value=1e999", 400, "min_value must be" },
    { "b-unopened-format", "GET", "/api/v1/unopened", NULL, "format=xml",
      400, "format must be" },
    { "b-unopened-reason", "GET", "/api/v1/unopened", NULL, "reason=bogus",
      400, "unknown reason \"bogus\"" },
    { "b-unopened-reason-2nd", "GET", "/api/v1/unopened", NULL,
      "reason=machine_only,opened", 400, "unknown reason \"opened\"" },
    { "b-unopened-reason-empty", "GET", "/api/v1/unopened", NULL,
      "reason=machine_only,", 400, "unknown reason \"\"" },
    { "b-unopened-reason-long", "GET", "/api/v1/unopened", NULL,
      "reason=never_fetched,0123456789012345678901234567890123456789x", 400,
      "unknown reason \"0123456789012345678901234567890123456789...\"" },
    { "b-unopened-reason-bytes", "GET", "/api/v1/unopened", NULL,
      "reason=m\xc3\xa4\x01", 400, "unknown reason \"m???\"" },
    { "b-get-events", "GET", "/api/v1/events", NULL, NULL, 405,
      "method not allowed" },
    { "b-unknown-route", "GET", "/api/v2/messages", NULL, NULL, 404,
      "no such route" },
    { "b-get-messages", "GET", "/api/v1/messages", NULL, NULL, 405,
      "method not allowed" },
    { "b-domains-group", "GET", "/api/v1/domains", NULL, "group=tld", 400,
      "group: must be \"host\" or \"registrable\"" },
    { "b-post-domains", "POST", "/api/v1/domains", "{" REJ "}", NULL, 405,
      "method not allowed" },
    { "b-delete-ticket", "DELETE", "/api/v1/tickets/T1", NULL, NULL, 405,
      "method not allowed" },
    { "b-ticket-long", "GET", "/api/v1/tickets/"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      NULL, NULL, 400, "longer than 128 bytes" },
    { "b-ticket-unknown", "GET", "/api/v1/tickets/no-such", NULL, NULL,
      404, "no such ticket" },
    { "b-erase-no-at", "DELETE", "/api/v1/recipients/no-at-sign", NULL,
      NULL, 400, "address: " },
    { "b-erase-slash", "DELETE", "/api/v1/recipients/a@b.com/x", NULL,
      NULL, 400, "must not contain '/'" },
    { "b-erase-unknown", "DELETE", "/api/v1/recipients/nobody@b.com", NULL,
      NULL, 404, "no recipient with that address" },
    { "b-get-recipient", "GET", "/api/v1/recipients/nobody@b.com", NULL,
      NULL, 405, "method not allowed" },
};

static void
api_should_reject_bad_input(void)
{
    size_t i;

    for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct spec s = { c->method, c->path, c->body, 0, AUTH, NULL,
                          c->query };

        expect_error(c->id, &s, c->want, c->needle);
    }
}


static void
api_should_set_allow_on_405(void)
{
    struct spec s = { "GET", "/api/v1/messages", NULL, 0, AUTH, NULL,
                      NULL };
    struct api_reply reply;

    call(&s, &reply);
    CHECK(reply.status == 405);
    CHECK_STR(reply.allow, "POST");
    free(reply.body);

    s.method = "PUT";
    s.path = "/api/v1/unopened";
    call(&s, &reply);
    CHECK(reply.status == 405);
    CHECK_STR(reply.allow, "GET, HEAD");
    free(reply.body);
}


/* Strings longer than their bound, built at run time. */
static void
api_should_reject_overlong_fields(void)
{
    static char body[API_BODY_MAX + 64];
    struct spec s = { "POST", "/api/v1/messages", body, 0, AUTH, NULL,
                      NULL };

    snprintf(body, sizeof body, "{\"ticket_id\":\"%0129d\","
             "\"recipient\":\"x@rejected.example\"}", 0);
    expect_error("o-ticket", &s, 400, "ticket_id is longer than 128 bytes");

    snprintf(body, sizeof body, "{\"ticket_id\":\"rejected\","
             "\"recipient\":\"%0310d@rejected.example\"}", 0);
    expect_error("o-recipient", &s, 400,
                 "recipient is longer than 320 bytes");

    snprintf(body, sizeof body, "{" REJ ",\"message_id\":\"<%0997d>\"}", 0);
    expect_error("o-message-id", &s, 400,
                 "message_id is longer than 998 bytes");

    /* Valid JSON, one byte over the limit. */
    memset(body, ' ', API_BODY_MAX + 1);
    memcpy(body, "{" REJ "}", strlen("{" REJ "}"));
    body[API_BODY_MAX + 1] = '\0';
    s.body_len = API_BODY_MAX + 1;
    expect_error("o-body", &s, 413, "larger than 65536 bytes");

    /* Exactly at the limit is accepted; it is stored under ticket "max". */
    memset(body, ' ', API_BODY_MAX);
    memcpy(body, "{\"ticket_id\":\"max\",\"recipient\":\"m@max.example\"}",
           strlen("{\"ticket_id\":\"max\",\"recipient\":\"m@max.example\"}"));
    body[API_BODY_MAX] = '\0';
    s.body_len = API_BODY_MAX;
    {
        unsigned status;
        cJSON *doc = call_json(&s, &status);

        CHECK(status == 201);
        cJSON_Delete(doc);
    }
}


static int
has_domain(const cJSON *doc, const char *domain)
{
    const cJSON *d;

    cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "domains")) {
        const char *name = str_of(d, "domain");

        if (name != NULL && strcmp(name, domain) == 0)
            return 1;
    }
    return 0;
}


static void
rejected_requests_should_store_nothing(void)
{
    unsigned status;
    cJSON *doc;

    doc = get("/api/v1/tickets/rejected", NULL, &status);
    CHECK(status == 404);
    cJSON_Delete(doc);

    doc = get("/api/v1/domains", "since=1970-01-01&until=2100-01-01",
              &status);
    CHECK(status == 200);
    CHECK(!has_domain(doc, "rejected.example"));
    CHECK(has_domain(doc, "max.example"));
    cJSON_Delete(doc);
}


/*
 * The test's classifier: HEAD is head_probe, then the User-Agent's
 * prefix decides; anything else is human.
 */
struct ua_rule {
    const char *prefix;
    int cls;
    const char *reason;
};

static const struct ua_rule ua_rules[] = {
    { "proxy-", STORE_PROXY, "an image proxy's UA" },
    { "mpp-", STORE_PRIVACY_PREFETCH, "a prefetching UA" },
    { "scan-", STORE_SCANNER, "a scanner's UA" },
    { "internal-", STORE_INTERNAL, "an agent's UA" },
};

static void
test_classify(void *ctx, const struct store_fetch_facts *f,
              struct store_verdict *v)
{
    const char *reason = "any other UA";
    size_t i;

    (void) ctx;
    memset(v, 0, sizeof *v);
    v->cls = STORE_HUMAN;
    for (i = 0; i < sizeof ua_rules / sizeof ua_rules[0]; i++) {
        if (strncmp(f->user_agent, ua_rules[i].prefix,
                    strlen(ua_rules[i].prefix)) == 0) {
            v->cls = ua_rules[i].cls;
            reason = ua_rules[i].reason;
            break;
        }
    }
    if (f->is_head) {
        v->cls = STORE_HEAD_PROBE;
        reason = "a HEAD request";
    }
    snprintf(v->rule, sizeof v->rule, "t-%s", store_class_name(v->cls));
    snprintf(v->reason, sizeof v->reason, "%s", reason);
}


/* One fetch as a test writes it; referer NULL when none. */
struct fetch {
    int64_t message_id;
    const char *at;
    const char *addr;
    const char *ua;
    int is_head;
    const char *referer;
};

/* Writes n fetches as one batch; *res gets the store's result. */
static void
write_fetches(struct store *st, const struct fetch *f, size_t n,
              struct store_write_result *res)
{
    struct store_fetch_rec rec[8];
    size_t i;

    CHECK(n <= sizeof rec / sizeof rec[0]);
    memset(rec, 0, sizeof rec);
    for (i = 0; i < n && i < sizeof rec / sizeof rec[0]; i++) {
        rec[i].message_id = f[i].message_id;
        CHECK(parse_time(f[i].at, 0, &rec[i].at_ms, NULL) == 0);
        rec[i].is_head = f[i].is_head;
        snprintf(rec[i].addr, sizeof rec[i].addr, "%s", f[i].addr);
        snprintf(rec[i].user_agent, sizeof rec[i].user_agent, "%s",
                 f[i].ua);
        snprintf(rec[i].referer_host, sizeof rec[i].referer_host, "%s",
                 f[i].referer != NULL ? f[i].referer : "");
    }
    memset(res, 0xff, sizeof *res);
    CHECK(store_fetches_write(st, rec, i, test_classify, NULL, res)
          == STORE_OK);
    CHECK(res->unknown == 0);
}


/* The data set the report tests read; ids filled by load_reports(). */
static int64_t m_ann1, m_ann2, m_bob, m_carl_conf, m_carl, m_dora, m_eve;
static int64_t m_fay1, m_fay2, m_gus1, m_gus2, m_hal;

static void
register_reports(void)
{
    m_ann1 = register_at("2026-12-01T10:00:00Z", "{\"ticket_id\":\"T1\","
                         "\"recipient\":\"Ann@Example.COM\","
                         "\"sent_at\":\"2026-12-01T10:00:00Z\","
                         "\"customer\":{\"name\":\"Lee, Ann \\\"Annie\\\"\","
                         "\"phone\":\"+1 555 0100\",\"value\":500}}");
    m_ann2 = register_at("2026-12-02T10:00:00Z", "{\"ticket_id\":\"T2\","
                         "\"recipient\":\"ann@example.com\","
                         "\"sent_at\":\"2026-12-02T11:00:00+01:00\"}");
    m_bob = register_at("2026-12-01T11:00:00Z", "{\"ticket_id\":\"T3\","
                        "\"recipient\":\"bob@example.com\","
                        "\"kind\":\"reply\","
                        "\"sent_at\":\"2026-12-01T11:00:00Z\","
                        "\"message_id\":\"<t3@mail.example>\","
                        "\"unknown_field\":[1,2,3],"
                        "\"customer\":{\"name\":\"Bob\",\"value\":900}}");
    m_carl_conf = register_at("2026-12-02T09:00:00Z", "{\"ticket_id\":\"T4\","
                              "\"recipient\":"
                              "\"carl@b\xc3\xbc" "cher.example\","
                              "\"kind\":\"confirmation\","
                              "\"sent_at\":\"2026-12-02T09:00:00Z\","
                              "\"customer\":{\"name\":\"Carl\","
                              "\"value\":100}}");
    m_carl = register_at("2026-12-02T08:00:00Z", "{\"ticket_id\":\"T7\","
                         "\"recipient\":\"carl@b\xc3\xbc" "cher.example\","
                         "\"sent_at\":\"2026-12-02T08:00:00Z\"}");
    m_dora = register_at("2026-11-01T00:00:00Z", "{\"ticket_id\":\"T5\","
                         "\"recipient\":\"dora@mail.yahoo.co.uk\","
                         "\"sent_at\":\"2026-11-01T00:00:00Z\","
                         "\"customer\":{\"value\":50}}");
    m_eve = register_at("2026-12-03T11:30:00Z", "{\"ticket_id\":\"T6\","
                        "\"recipient\":\"eve@example.org\","
                        "\"sent_at\":\"2026-12-03T11:30:00Z\","
                        "\"customer\":{\"name\":\"Eve\",\"value\":2000}}");
    m_fay1 = register_at("2026-11-20T09:00:00Z", "{\"ticket_id\":\"T9\","
                         "\"recipient\":\"fay@example.net\","
                         "\"sent_at\":\"2026-11-20T09:00:00Z\","
                         "\"customer\":{\"name\":\"Fay\",\"value\":300}}");
    m_fay2 = register_at("2026-12-01T09:00:00Z", "{\"ticket_id\":\"T10\","
                         "\"recipient\":\"fay@example.net\","
                         "\"sent_at\":\"2026-12-01T09:00:00Z\"}");
    m_gus1 = register_at("2026-12-01T08:00:00Z", "{\"ticket_id\":\"T11\","
                         "\"recipient\":\"gus@example.net\","
                         "\"sent_at\":\"2026-12-01T08:00:00Z\","
                         "\"customer\":{\"name\":\"Gus\",\"value\":700}}");
    m_hal = register_at("2026-12-01T08:00:00Z", "{\"ticket_id\":\"T11\","
                        "\"recipient\":\"hal@example.net\","
                        "\"sent_at\":\"2026-12-01T08:00:00Z\"}");
    m_gus2 = register_at("2026-12-01T09:30:00Z", "{\"ticket_id\":\"T11\","
                         "\"recipient\":\"GUS@example.net\","
                         "\"sent_at\":\"2026-12-01T09:30:00Z\"}");
}


/*
 * Bob's T3: a gateway scan 2 s after sending, the agent's own look, three
 * identical human fetches within a minute (one row, count 3), a HEAD
 * probe, and a Gmail proxy fetch.
 */
static const struct fetch bob_fetches[] = {
    { 0, "2026-12-01T11:00:02Z", "203.0.113.0", "scan-gw", 0, NULL },
    { 0, "2026-12-01T11:00:30Z", "10.1.2.0", "internal-agent", 0,
      "helpdesk.example" },
    { 0, "2026-12-01T12:05:00Z", "192.0.2.0", "human-UA-1", 0, NULL },
    { 0, "2026-12-01T12:05:20Z", "192.0.2.0", "human-UA-1", 0, NULL },
    { 0, "2026-12-01T12:05:50Z", "192.0.2.0", "human-UA-1", 0, NULL },
    { 0, "2026-12-01T12:07:00Z", "192.0.2.0", "curl/8.0", 1, NULL },
    { 0, "2026-12-01T13:00:00Z", "66.249.84.0", "proxy-GoogleImageProxy", 0,
      NULL },
};

static void
write_one(struct store *st, int64_t id, const char *at, const char *addr,
          const char *ua)
{
    struct fetch f = { id, at, addr, ua, 0, NULL };
    struct store_write_result res;

    write_fetches(st, &f, 1, &res);
}


/*
 * Hal's two fetches with a cap of one stored row: the second is only
 * counted, in the reports as in fetches_not_kept.
 */
static void
write_hal(struct store *st)
{
    struct fetch f[] = {
        { m_hal, "2026-12-01T08:30:00Z", "198.51.100.0", "human-hal", 0,
          NULL },
        { m_hal, "2026-12-01T08:40:00Z", "198.51.100.0", "human-hal-2", 0,
          NULL },
    };
    struct store_write_result res;

    store_set_fetch_rows_max(st, 1);
    write_fetches(st, f, 2, &res);
    CHECK(res.not_kept == 1);
    store_set_fetch_rows_max(st, STORE_FETCH_ROWS_DEFAULT);
}


static void
write_reports(struct store *st)
{
    struct fetch bob[sizeof bob_fetches / sizeof bob_fetches[0]];
    struct store_write_result res;
    size_t i;

    for (i = 0; i < sizeof bob / sizeof bob[0]; i++) {
        bob[i] = bob_fetches[i];
        bob[i].message_id = m_bob;
    }
    write_fetches(st, bob, sizeof bob / sizeof bob[0], &res);
    CHECK(res.collapsed == 2);
    CHECK(res.not_kept == 0);

    write_one(st, m_ann1, "2026-12-01T10:00:05Z", "17.58.0.0",
              "mpp-Mozilla/5.0");
    write_one(st, m_carl_conf, "2026-12-02T09:30:00Z", "198.51.100.0",
              "human-UA-3");
    write_one(st, m_fay1, "2026-11-20T12:00:00Z", "198.51.100.0",
              "human-fay");
    write_one(st, m_fay2, "2026-12-01T09:00:03Z", "203.0.113.0",
              "scan-gw");
    write_hal(st);
}


static void
load_reports(void)
{
    struct store *st = NULL;
    char err[256];

    register_reports();
    CHECK(store_open(&st, g_db, err, sizeof err) == STORE_OK);
    if (st == NULL)
        return;
    write_reports(st);
    store_close(st);
}


#define BOB_HEAD                                                          \
    "\"recipient\":\"bob@example.com\",\"kind\":\"reply\","               \
    "\"sent_at\":\"2026-12-01T11:00:00.000Z\","                           \
    "\"registered_at\":\"2026-12-01T11:00:00.000Z\","                     \
    "\"message_id\":\"<t3@mail.example>\",\"opened\":true,"               \
    "\"opened_by\":[\"fetch\"],"                                          \
    "\"first_open_at\":\"2026-12-01T12:05:00.000Z\","                     \
    "\"reached_at\":\"2026-12-01T11:00:02.000Z\",\"replied_at\":null,"    \
    "\"fetches_by_class\":{\"human\":3,\"proxy\":1,"                      \
    "\"privacy_prefetch\":0,\"scanner\":1,\"internal\":1,"                \
    "\"head_probe\":1},\"fetches_not_kept\":0,"

#define BOB_FETCHES                                                       \
    "\"fetches\":["                                                       \
    "{\"at\":\"2026-12-01T11:00:02.000Z\","                               \
    "\"last_at\":\"2026-12-01T11:00:02.000Z\",\"count\":1,"               \
    "\"class\":\"scanner\",\"rule\":\"t-scanner\","                       \
    "\"reason\":\"a scanner's UA\",\"user_agent\":\"scan-gw\","           \
    "\"addr\":\"203.0.113.0\",\"referer_host\":null,"                     \
    "\"secs_since_send\":2},"                                             \
    "{\"at\":\"2026-12-01T11:00:30.000Z\","                               \
    "\"last_at\":\"2026-12-01T11:00:30.000Z\",\"count\":1,"               \
    "\"class\":\"internal\",\"rule\":\"t-internal\","                     \
    "\"reason\":\"an agent's UA\",\"user_agent\":\"internal-agent\","     \
    "\"addr\":\"10.1.2.0\",\"referer_host\":\"helpdesk.example\","        \
    "\"secs_since_send\":30},"                                            \
    "{\"at\":\"2026-12-01T12:05:00.000Z\","                               \
    "\"last_at\":\"2026-12-01T12:05:50.000Z\",\"count\":3,"               \
    "\"class\":\"human\",\"rule\":\"t-human\","                           \
    "\"reason\":\"any other UA\",\"user_agent\":\"human-UA-1\","          \
    "\"addr\":\"192.0.2.0\",\"referer_host\":null,"                       \
    "\"secs_since_send\":3900},"                                          \
    "{\"at\":\"2026-12-01T12:07:00.000Z\","                               \
    "\"last_at\":\"2026-12-01T12:07:00.000Z\",\"count\":1,"               \
    "\"class\":\"head_probe\",\"rule\":\"t-head_probe\","                 \
    "\"reason\":\"a HEAD request\",\"user_agent\":\"curl/8.0\","          \
    "\"addr\":\"192.0.2.0\",\"referer_host\":null,"                       \
    "\"secs_since_send\":4020},"                                          \
    "{\"at\":\"2026-12-01T13:00:00.000Z\","                               \
    "\"last_at\":\"2026-12-01T13:00:00.000Z\",\"count\":1,"               \
    "\"class\":\"proxy\",\"rule\":\"t-proxy\","                           \
    "\"reason\":\"an image proxy's UA\","                                 \
    "\"user_agent\":\"proxy-GoogleImageProxy\","                          \
    "\"addr\":\"66.249.84.0\",\"referer_host\":null,"                     \
    "\"secs_since_send\":7200}]"

/* The ticket view, byte for byte: figures, then the stored rows. */
static void
ticket_should_list_messages_and_fetches(void)
{
    char want[4096];
    struct api_reply reply;
    struct spec s = { "GET", "/api/v1/tickets/T3", NULL, 0, AUTH, NULL,
                      NULL };

    snprintf(want, sizeof want,
             "{\"ticket_id\":\"T3\",\"messages\":[{\"id\":%" PRId64 ","
             BOB_HEAD BOB_FETCHES "}]}", m_bob);
    call(&s, &reply);
    CHECK(reply.status == 200);
    CHECK_STR(reply.body, want);
    CHECK(reply.body != NULL && reply.len == strlen(reply.body));
    free(reply.body);

    /* Prefetched only: reached, not opened. */
    snprintf(want, sizeof want,
             "{\"ticket_id\":\"T1\",\"messages\":[{\"id\":%" PRId64 ","
             "\"recipient\":\"Ann@Example.COM\",\"kind\":\"reply\","
             "\"sent_at\":\"2026-12-01T10:00:00.000Z\","
             "\"registered_at\":\"2026-12-01T10:00:00.000Z\","
             "\"message_id\":null,\"opened\":false,\"opened_by\":[],"
             "\"first_open_at\":null,"
             "\"reached_at\":\"2026-12-01T10:00:05.000Z\","
             "\"replied_at\":null,\"fetches_by_class\":{\"human\":0,"
             "\"proxy\":0,\"privacy_prefetch\":1,\"scanner\":0,"
             "\"internal\":0,\"head_probe\":0},\"fetches_not_kept\":0,"
             "\"fetches\":[{\"at\":\"2026-12-01T10:00:05.000Z\","
             "\"last_at\":\"2026-12-01T10:00:05.000Z\",\"count\":1,"
             "\"class\":\"privacy_prefetch\",\"rule\":\"t-privacy_prefetch\","
             "\"reason\":\"a prefetching UA\","
             "\"user_agent\":\"mpp-Mozilla/5.0\",\"addr\":\"17.58.0.0\","
             "\"referer_host\":null,\"secs_since_send\":5}]}]}", m_ann1);
    s.path = "/api/v1/tickets/T1";
    call(&s, &reply);
    CHECK(reply.status == 200);
    CHECK_STR(reply.body, want);
    free(reply.body);
}


/* A message's member name as an integer, -1 when it is not a number. */
static int64_t
int_at(const cJSON *obj, const char *name)
{
    double d = num_of(obj, name);

    return d == -12345.0 ? -1 : (int64_t) d;
}


/* The rows cap: one row kept of hal's two fetches, both counted. */
static void
ticket_should_count_fetches_not_kept(void)
{
    unsigned status;
    cJSON *doc = get("/api/v1/tickets/T11", NULL, &status);
    cJSON *hal = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "messages"), 1);
    cJSON *rows = cJSON_GetObjectItem(hal, "fetches");

    CHECK(status == 200);
    CHECK(int_at(hal, "id") == m_hal);
    CHECK(int_at(hal, "fetches_not_kept") == 1);
    CHECK(int_at(cJSON_GetObjectItem(hal, "fetches_by_class"), "human")
          == 2);
    CHECK(cJSON_GetArraySize(rows) == 1);
    CHECK(int_at(cJSON_GetArrayItem(rows, 0), "count") == 1);
    CHECK_STR(str_of(cJSON_GetArrayItem(rows, 0), "user_agent"),
              "human-hal");
    CHECK_STR(str_of(hal, "first_open_at"), "2026-12-01T08:30:00.000Z");
    cJSON_Delete(doc);
}


static cJSON *
post_event(const char *body, unsigned *status)
{
    struct spec s = { "POST", "/api/v1/events", body, 0, AUTH, NULL,
                      NULL };

    return call_json(&s, status);
}


/* True when the call list (all reasons, default age) lists recipient. */
static int
listed(const char *recipient)
{
    unsigned status;
    cJSON *doc = get("/api/v1/unopened", NULL, &status);
    const cJSON *c;
    int found = 0;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "customers")) {
        const char *r = str_of(c, "recipient");

        if (r != NULL && strcasecmp(r, recipient) == 0)
            found = 1;
    }
    cJSON_Delete(doc);
    return found;
}


/*
 * Gus answers T11: both his messages on it (the recipient compared
 * without case) count as opened, hal's does not, and Gus drops off the
 * call list.
 */
static void
events_should_mark_replied_messages(void)
{
    unsigned status;
    cJSON *doc, *msgs;

    CHECK(listed("gus@example.net"));
    doc = post_event("{\"type\":\"customer_reply\",\"ticket_id\":\"T11\","
                     "\"recipient\":\"Gus@Example.NET\","
                     "\"at\":\"2026-12-01T16:00:00+01:00\"}", &status);
    CHECK(status == 201);
    CHECK_STR(str_of(doc, "type"), "customer_reply");
    CHECK_STR(str_of(doc, "ticket_id"), "T11");
    CHECK_STR(str_of(doc, "recipient"), "Gus@Example.NET");
    CHECK(int_at(doc, "marked") == 2);
    cJSON_Delete(doc);
    CHECK(!listed("gus@example.net"));

    doc = get("/api/v1/tickets/T11", NULL, &status);
    msgs = cJSON_GetObjectItem(doc, "messages");
    CHECK(cJSON_GetArraySize(msgs) == 3);
    CHECK(int_at(cJSON_GetArrayItem(msgs, 0), "id") == m_gus1);
    CHECK(int_at(cJSON_GetArrayItem(msgs, 2), "id") == m_gus2);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0),
                                           "opened")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 2),
                                           "opened")));
    CHECK_STR(str_of(cJSON_GetArrayItem(msgs, 0), "replied_at"),
              "2026-12-01T15:00:00.000Z");
    CHECK_STR(str_of(cJSON_GetArrayItem(msgs, 2), "replied_at"),
              "2026-12-01T15:00:00.000Z");
    CHECK(str_of(cJSON_GetArrayItem(msgs, 2), "reached_at") != NULL);
    CHECK(is_null(cJSON_GetArrayItem(msgs, 1), "replied_at"));
    {
        char *by = cJSON_PrintUnformatted(cJSON_GetObjectItem(
            cJSON_GetArrayItem(msgs, 0), "opened_by"));

        CHECK_STR(by, "[\"replied\"]");
        free(by);
    }
    cJSON_Delete(doc);
}


/* An integer ticket id, "at" defaulting to now; a reply before any. */
static void
events_should_accept_integer_ids_and_default_time(void)
{
    unsigned status;
    cJSON *doc;

    doc = post_event("{\"type\":\"customer_reply\",\"ticket_id\":4711,"
                     "\"recipient\":\"i@i.example\"}", &status);
    CHECK(status == 201);
    CHECK_STR(str_of(doc, "ticket_id"), "4711");
    CHECK(int_at(doc, "marked") == 1);
    cJSON_Delete(doc);

    /* T2 was sent on 2 December: a reply dated earlier marks nothing. */
    doc = post_event("{\"type\":\"customer_reply\",\"ticket_id\":\"T2\","
                     "\"recipient\":\"ann@example.com\","
                     "\"at\":\"2026-11-30T00:00:00Z\"}", &status);
    CHECK(status == 201);
    CHECK(int_at(doc, "marked") == 0);
    cJSON_Delete(doc);
}


#define EVT "\"ticket_id\":\"T2\",\"recipient\":\"ann@example.com\""
#define EVT_TYPE "\"type\":\"customer_reply\","
#define EVT_AT ",\"at\":\"2026-12-02T12:00:00Z\""

/*
 * Each body but one member would mark Ann's T2 (sent 2 December 10:00)
 * were it accepted.
 */
static const struct bad_case bad_events[] = {
    { "e-no-type", "POST", "/api/v1/events", "{" EVT EVT_AT "}", NULL, 400,
      "type is required" },
    { "e-type-unknown", "POST", "/api/v1/events",
      "{\"type\":\"customer_read\"," EVT EVT_AT "}", NULL, 400,
      "type must be \"customer_reply\"" },
    { "e-type-number", "POST", "/api/v1/events",
      "{\"type\":1," EVT EVT_AT "}", NULL, 400, "type must be a string" },
    { "e-no-ticket", "POST", "/api/v1/events",
      "{" EVT_TYPE "\"recipient\":\"ann@example.com\"" EVT_AT "}", NULL, 400,
      "ticket_id is required" },
    { "e-ticket-float", "POST", "/api/v1/events",
      "{" EVT_TYPE "\"ticket_id\":2.5,\"recipient\":\"ann@example.com\""
      EVT_AT "}", NULL, 400, "ticket_id must be a string or an integer" },
    { "e-no-recipient", "POST", "/api/v1/events",
      "{" EVT_TYPE "\"ticket_id\":\"T2\"" EVT_AT "}", NULL, 400,
      "recipient is required" },
    { "e-recipient-no-at", "POST", "/api/v1/events",
      "{" EVT_TYPE "\"ticket_id\":\"T2\",\"recipient\":\"ann\"" EVT_AT "}",
      NULL, 400, "recipient: address has no '@'" },
    { "e-recipient-utf8", "POST", "/api/v1/events",
      "{" EVT_TYPE "\"ticket_id\":\"T2\","
      "\"recipient\":\"ann\xc3@example.com\"" EVT_AT "}", NULL, 400,
      "recipient is not valid UTF-8" },
    { "e-at", "POST", "/api/v1/events",
      "{" EVT_TYPE EVT ",\"at\":\"yesterday\"}", NULL, 400,
      "at must be an RFC 3339 date-time" },
    { "e-at-number", "POST", "/api/v1/events",
      "{" EVT_TYPE EVT ",\"at\":1796299200000}", NULL, 400,
      "at must be a string" },
    { "e-at-future", "POST", "/api/v1/events",
      "{" EVT_TYPE EVT ",\"at\":\"2026-12-03T13:00:01Z\"}", NULL, 400,
      "at lies more than an hour in the future" },
    { "e-array", "POST", "/api/v1/events", "[{" EVT_TYPE EVT EVT_AT "}]",
      NULL, 400, "JSON object" },
    { "e-malformed", "POST", "/api/v1/events", "{" EVT_TYPE EVT EVT_AT,
      NULL, 400, "malformed JSON" },
    { "e-empty", "POST", "/api/v1/events", "", NULL, 400, "empty" },
    { "e-no-ticket-msg", "POST", "/api/v1/events",
      "{" EVT_TYPE "\"ticket_id\":\"T2\",\"recipient\":\"bob@example.com\""
      EVT_AT "}", NULL, 404, "the ticket has no message to that recipient" },
    { "e-no-such-ticket", "POST", "/api/v1/events",
      "{" EVT_TYPE "\"ticket_id\":\"no-such\","
      "\"recipient\":\"ann@example.com\"" EVT_AT "}", NULL, 404,
      "the ticket has no message to that recipient" },
};

static void
events_should_reject_bad_input_and_store_nothing(void)
{
    static char body[API_BODY_MAX + 64];
    struct spec s = { "POST", "/api/v1/events", body, 0, AUTH, NULL, NULL };
    unsigned status;
    cJSON *doc, *t2;
    size_t i;

    for (i = 0; i < sizeof bad_events / sizeof bad_events[0]; i++) {
        const struct bad_case *c = &bad_events[i];
        struct spec e = { c->method, c->path, c->body, 0, AUTH, NULL,
                          NULL };

        expect_error(c->id, &e, c->want, c->needle);
    }

    /* Valid, but one byte over the body limit. */
    memset(body, ' ', API_BODY_MAX + 1);
    memcpy(body, "{" EVT_TYPE EVT EVT_AT "}",
           strlen("{" EVT_TYPE EVT EVT_AT "}"));
    s.body_len = API_BODY_MAX + 1;
    expect_error("e-body", &s, 413, "larger than 65536 bytes");

    doc = get("/api/v1/tickets/T2", NULL, &status);
    t2 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "messages"), 0);
    CHECK(status == 200);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(t2, "opened")));
    CHECK(is_null(t2, "replied_at"));
    CHECK(is_null(t2, "reached_at"));
    cJSON_Delete(doc);
    CHECK(listed("ann@example.com"));
}


/* What one domain row must read; by_class in enum store_class order. */
struct domain_want {
    const char *domain;
    double sent, reached, opened, open_rate, reach_rate, total_opens;
    double fetches;
    double by_class[STORE_N_CLASSES];
    const char *last_open_at;           /* NULL: JSON null */
};

static void
check_domain(const cJSON *d, const struct domain_want *w)
{
    const cJSON *by = cJSON_GetObjectItem(d, "fetches_by_class");
    int i;

    if (d == NULL) {
        CHECK(d != NULL);
        return;
    }
    CHECK_STR(str_of(d, "domain"), w->domain);
    CHECK(num_of(d, "sent") == w->sent);
    CHECK(num_of(d, "reached") == w->reached);
    CHECK(num_of(d, "opened") == w->opened);
    CHECK(num_of(d, "unique_opens") == w->opened);
    CHECK(num_of(d, "open_rate") == w->open_rate);
    CHECK(num_of(d, "reach_rate") == w->reach_rate);
    CHECK(num_of(d, "total_opens") == w->total_opens);
    CHECK(num_of(d, "fetches") == w->fetches);
    CHECK(cJSON_GetArraySize(by) == STORE_N_CLASSES);
    for (i = 0; i < STORE_N_CLASSES; i++)
        CHECK(num_of(by, store_class_name(i)) == w->by_class[i]);
    if (w->last_open_at == NULL)
        CHECK(is_null(d, "last_open_at"));
    else
        CHECK_STR(str_of(d, "last_open_at"), w->last_open_at);
}


/*
 * The seeded set over the default window (3 November 12:00 to now),
 * number by number.  example.net: five messages, all reached (a human
 * fetch, a scan, two by Gus's reply, hal's); four opened (fay1, hal, and
 * Gus's two by his reply); total_opens counts fay1's fetch and both of
 * hal's, one of which has no stored row; the reply at 15:00 is the last
 * open.  example.com: ann1 prefetched (reached only), ann2 nothing, bob
 * everything: 3 human fetches in one row and a proxy fetch are 4 opens;
 * the internal and HEAD fetches count only by class, and HEAD is not a
 * fetch.
 */
static const struct domain_want default_domains[] = {
    { "example.net", 5, 5, 4, 0.8, 1, 3, 4, { 3, 0, 0, 1, 0, 0 },
      "2026-12-01T15:00:00.000Z" },
    { "example.com", 3, 2, 1, 0.3333, 0.6667, 4, 7, { 3, 1, 1, 1, 1, 1 },
      "2026-12-01T13:00:00.000Z" },
    { "xn--bcher-kva.example", 2, 1, 1, 0.5, 0.5, 1, 1, { 1, 0, 0, 0, 0, 0 },
      "2026-12-02T09:30:00.000Z" },
    { "example.org", 1, 0, 0, 0, 0, 0, 0, { 0, 0, 0, 0, 0, 0 }, NULL },
};

static void
domains_should_default_to_the_last_30_days(void)
{
    unsigned status;
    cJSON *doc = get("/api/v1/domains", NULL, &status);
    cJSON *list = cJSON_GetObjectItem(doc, "domains");
    size_t i, n = sizeof default_domains / sizeof default_domains[0];

    CHECK(status == 200);
    CHECK_STR(str_of(doc, "since"), "2026-11-03T12:00:00.000Z");
    CHECK_STR(str_of(doc, "until"), "2026-12-03T12:00:00.000Z");
    CHECK(cJSON_GetArraySize(list) == (int) n);
    for (i = 0; i < n; i++)
        check_domain(cJSON_GetArrayItem(list, (int) i), &default_domains[i]);
    cJSON_Delete(doc);
}


static const struct domain_want dora_domain = {
    "mail.yahoo.co.uk", 1, 0, 0, 0, 0, 0, 0, { 0, 0, 0, 0, 0, 0 }, NULL
};

/* [1 December 10:30, 2 December 09:00): bob, carl; not carl_conf. */
static const struct domain_want window_domains[] = {
    { "example.com", 1, 1, 1, 1, 1, 4, 6, { 3, 1, 0, 1, 1, 1 },
      "2026-12-01T13:00:00.000Z" },
    { "xn--bcher-kva.example", 1, 0, 0, 0, 0, 0, 0, { 0, 0, 0, 0, 0, 0 },
      NULL },
};

static void
domains_should_honour_since_and_until(void)
{
    unsigned status;
    cJSON *doc, *list;

    /* A bare until date runs through the end of that day. */
    doc = get("/api/v1/domains", "since=2026-11-01&until=2026-11-01",
              &status);
    list = cJSON_GetObjectItem(doc, "domains");
    CHECK(status == 200);
    CHECK_STR(str_of(doc, "since"), "2026-11-01T00:00:00.000Z");
    CHECK_STR(str_of(doc, "until"), "2026-11-02T00:00:00.000Z");
    CHECK(cJSON_GetArraySize(list) == 1);
    check_domain(cJSON_GetArrayItem(list, 0), &dora_domain);
    cJSON_Delete(doc);

    /* Date-times: since inclusive, until exclusive; ties by domain. */
    doc = get("/api/v1/domains",
              "since=2026-12-01T10:30:00Z&until=2026-12-02T10:00:00+01:00"
              "&ignored=1", &status);
    list = cJSON_GetObjectItem(doc, "domains");
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(list) == 2);
    check_domain(cJSON_GetArrayItem(list, 0), &window_domains[0]);
    check_domain(cJSON_GetArrayItem(list, 1), &window_domains[1]);
    cJSON_Delete(doc);

    /* since == until is an empty window, not an error. */
    doc = get("/api/v1/domains", "since=2026-12-01T00:00:00Z"
              "&until=2026-12-01T00:00:00Z", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "domains")) == 0);
    cJSON_Delete(doc);
}


/* What one call-list row must read; NULL strings are JSON null. */
struct customer_want {
    const char *recipient;
    const char *name;
    const char *phone;
    double value;
    const char *reason;
    double replies, unopened;
    const char *oldest, *newest, *last_open;
    const char *tickets;                /* space-separated */
};

static void
check_string_or_null(const cJSON *obj, const char *name, const char *want)
{
    if (want != NULL)
        CHECK_STR(str_of(obj, name), want);
    else
        CHECK(is_null(obj, name));
}


static void
check_customer(const cJSON *c, const struct customer_want *w)
{
    char got[128] = "";
    const cJSON *t;

    if (c == NULL) {
        CHECK(c != NULL);
        return;
    }
    CHECK_STR(str_of(c, "recipient"), w->recipient);
    check_string_or_null(c, "name", w->name);
    check_string_or_null(c, "phone", w->phone);
    CHECK(num_of(c, "value") == w->value);
    CHECK_STR(str_of(c, "reason"), w->reason);
    CHECK(num_of(c, "replies") == w->replies);
    CHECK(num_of(c, "unopened") == w->unopened);
    CHECK_STR(str_of(c, "oldest_unopened_at"), w->oldest);
    CHECK_STR(str_of(c, "newest_unopened_at"), w->newest);
    check_string_or_null(c, "last_open_at", w->last_open);
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "ticket_ids")) {
        if (got[0] != '\0')
            strcat(got, " ");
        strcat(got, cJSON_IsString(t) ? t->valuestring : "?");
    }
    CHECK_STR(got, w->tickets);
}


/*
 * Ann: neither reply opened, one prefetched.  Fay: opened T9, not the
 * later T10 (scanned only).  Carl: his reply never fetched; his opened
 * confirmation does not count.  Dora: nothing.  Bob and hal opened
 * theirs; Gus replied; Eve's reply is too recent.
 */
static const struct customer_want ann = {
    "ann@example.com", "Lee, Ann \"Annie\"", "+1 555 0100", 500,
    "machine_only", 2, 2, "2026-12-01T10:00:00.000Z",
    "2026-12-02T10:00:00.000Z", NULL, "T1 T2"
};
static const struct customer_want fay = {
    "fay@example.net", "Fay", NULL, 300, "opened_nothing_recent", 2, 1,
    "2026-12-01T09:00:00.000Z", "2026-12-01T09:00:00.000Z",
    "2026-11-20T12:00:00.000Z", "T10"
};
static const struct customer_want carl = {
    "carl@b\xc3\xbc" "cher.example", "Carl", NULL, 100, "never_fetched", 1,
    1, "2026-12-02T08:00:00.000Z", "2026-12-02T08:00:00.000Z", NULL, "T7"
};
static const struct customer_want dora = {
    "dora@mail.yahoo.co.uk", NULL, NULL, 50, "never_fetched", 1, 1,
    "2026-11-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z", NULL, "T5"
};
static const struct customer_want eve = {
    "eve@example.org", "Eve", NULL, 2000, "never_fetched", 1, 1,
    "2026-12-03T11:30:00.000Z", "2026-12-03T11:30:00.000Z", NULL, "T6"
};

static void
unopened_should_list_valuable_silent_customers(void)
{
    unsigned status;
    cJSON *doc = get("/api/v1/unopened", NULL, &status);
    cJSON *list = cJSON_GetObjectItem(doc, "customers");

    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(list) == 4);
    check_customer(cJSON_GetArrayItem(list, 0), &ann);
    check_customer(cJSON_GetArrayItem(list, 1), &fay);
    check_customer(cJSON_GetArrayItem(list, 2), &carl);
    check_customer(cJSON_GetArrayItem(list, 3), &dora);
    cJSON_Delete(doc);
}


/* The call list's recipients for query, space-separated, in order. */
static void
recipients(const char *query, char *out, size_t outlen)
{
    unsigned status;
    cJSON *doc = get("/api/v1/unopened", query, &status);
    const cJSON *c;
    size_t n = 0;

    out[0] = '\0';
    CHECK(status == 200);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "customers")) {
        const char *r = str_of(c, "recipient");

        n += (size_t) snprintf(out + n, outlen - n, "%s%s",
                               n > 0 ? " " : "", r != NULL ? r : "?");
        if (n >= outlen)
            break;
    }
    cJSON_Delete(doc);
}


struct list_case {
    const char *query;
    const char *want;               /* recipients, space-separated */
};

#define CARL "carl@b\xc3\xbc" "cher.example"

static const struct list_case list_cases[] = {
    { "min_value=100", "ann@example.com fay@example.net " CARL },
    { "min_value=100.5", "ann@example.com fay@example.net" },
    { "min_value=1e3", "" },
    { "min_value=", "ann@example.com fay@example.net " CARL
      " dora@mail.yahoo.co.uk" },
    { "older_than=1w", "dora@mail.yahoo.co.uk" },
    { "older_than=4w", "dora@mail.yahoo.co.uk" },
    { "older_than=5w", "" },
    /* Eve's reply is 30 minutes old: listed only for older_than < 30m. */
    { "older_than=15m", "eve@example.org ann@example.com fay@example.net "
      CARL " dora@mail.yahoo.co.uk" },
    { "older_than=31m", "ann@example.com fay@example.net " CARL
      " dora@mail.yahoo.co.uk" },
    { "reason=machine_only", "ann@example.com" },
    { "reason=never_fetched", CARL " dora@mail.yahoo.co.uk" },
    { "reason=opened_nothing_recent", "fay@example.net" },
    { "reason=machine_only,never_fetched",
      "ann@example.com " CARL " dora@mail.yahoo.co.uk" },
    { "reason=never_fetched,never_fetched",
      CARL " dora@mail.yahoo.co.uk" },
    { "reason=opened_nothing_recent&min_value=301", "" },
    { "reason=", "ann@example.com fay@example.net " CARL
      " dora@mail.yahoo.co.uk" },
};

static void
unopened_should_filter_by_value_age_and_reason(void)
{
    char got[512];
    unsigned status;
    cJSON *doc;
    size_t i;

    for (i = 0; i < sizeof list_cases / sizeof list_cases[0]; i++) {
        recipients(list_cases[i].query, got, sizeof got);
        if (strcmp(got, list_cases[i].want) != 0)
            fprintf(stderr, "case %s: got \"%s\"\n", list_cases[i].query,
                    got);
        CHECK_STR(got, list_cases[i].want);
    }

    doc = get("/api/v1/unopened", "older_than=15m", &status);
    check_customer(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "customers"),
                                      0), &eve);
    cJSON_Delete(doc);
}


#define CSV_HEADER                                                        \
    "recipient,name,phone,value,reason,replies,unopened,"                 \
    "oldest_unopened_at,newest_unopened_at,last_open_at,ticket_ids,"     \
    "last_call_at,last_call_outcome\r\n"

static const char want_csv[] =
    CSV_HEADER
    "ann@example.com,\"Lee, Ann \"\"Annie\"\"\",+1 555 0100,500,"
    "machine_only,2,2,2026-12-01T10:00:00.000Z,2026-12-02T10:00:00.000Z,,"
    "T1 T2,,\r\n"
    "fay@example.net,Fay,,300,opened_nothing_recent,2,1,"
    "2026-12-01T09:00:00.000Z,2026-12-01T09:00:00.000Z,"
    "2026-11-20T12:00:00.000Z,T10,,\r\n"
    CARL ",Carl,,100,never_fetched,1,1,2026-12-02T08:00:00.000Z,"
    "2026-12-02T08:00:00.000Z,,T7,,\r\n";

static void
unopened_should_answer_csv(void)
{
    struct spec s = { "GET", "/api/v1/unopened", NULL, 0, AUTH, NULL,
                      "min_value=100&format=csv" };
    struct api_reply reply;
    unsigned status;
    cJSON *doc;

    call(&s, &reply);
    CHECK(reply.status == 200);
    CHECK_STR(reply.content_type, "text/csv; charset=utf-8");
    CHECK(reply.len == strlen(want_csv));
    CHECK_STR(reply.body, want_csv);
    free(reply.body);

    s.query = "min_value=100";
    s.accept = "application/json;q=0.5, TEXT/CSV";
    call(&s, &reply);
    CHECK(reply.status == 200);
    CHECK_STR(reply.content_type, "text/csv; charset=utf-8");
    CHECK_STR(reply.body, want_csv);
    free(reply.body);

    /* The Accept weights decide; a tie or a lone wildcard keeps JSON. */
    static const struct {
        const char *accept, *type;
    } weights[] = {
        { "application/json, text/csv;q=0.1", "application/json" },
        { "text/*", "text/csv; charset=utf-8" },
        { "text/*;q=0.9, application/json;q=0.8", "text/csv; charset=utf-8" },
        { "*/*", "application/json" },
        { "text/csv;q=0", "application/json" },
        { "text/html, text/csv;q=0.2", "text/csv; charset=utf-8" },
    };
    for (size_t i = 0; i < sizeof(weights) / sizeof(weights[0]); i++) {
        s.accept = weights[i].accept;
        call(&s, &reply);
        CHECK(reply.status == 200);
        CHECK_STR(reply.content_type, weights[i].type);
        free(reply.body);
    }
    s.accept = "application/json;q=0.5, TEXT/CSV";

    s.query = "min_value=100&reason=never_fetched";
    call(&s, &reply);
    CHECK_STR(reply.body, CSV_HEADER CARL ",Carl,,100,never_fetched,1,1,"
              "2026-12-02T08:00:00.000Z,2026-12-02T08:00:00.000Z,,T7,,\r\n");
    free(reply.body);

    s.query = "min_value=1e6";
    call(&s, &reply);
    CHECK_STR(reply.body, CSV_HEADER);
    free(reply.body);

    /* An explicit format wins over Accept. */
    s.query = "min_value=100&format=json";
    doc = call_json(&s, &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "customers")) == 3);
    cJSON_Delete(doc);
}


/* A later message updates the customer's value: Dora moves to the top. */
static void
customer_should_be_updated_by_later_messages(void)
{
    static const struct customer_want dora_now = {
        "DORA@mail.yahoo.co.uk", NULL, "555", 1000, "never_fetched", 1, 1,
        "2026-11-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z", NULL, "T5"
    };
    unsigned status;
    cJSON *doc, *first;

    register_msg("{\"ticket_id\":\"T8\","
                 "\"recipient\":\"DORA@mail.yahoo.co.uk\","
                 "\"kind\":\"confirmation\","
                 "\"sent_at\":\"2026-12-03T11:00:00Z\","
                 "\"customer\":{\"value\":1000,\"phone\":\"555\"}}");
    doc = get("/api/v1/unopened", NULL, &status);
    first = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "customers"), 0);
    CHECK(status == 200);
    check_customer(first, &dora_now);
    cJSON_Delete(doc);
}

/* A raw NUL byte in a body would cut a value short: refused whole. */
static void
body_with_a_raw_nul_should_be_refused(void)
{
    static const char body[] =
        "{\"ticket_id\":\"raw\0nul\",\"recipient\":\"x@raw.example\"}";
    struct spec s = { "POST", "/api/v1/messages", body, sizeof(body) - 1,
                      AUTH, NULL, NULL };
    struct api_reply reply;
    unsigned status;
    cJSON *doc;

    call(&s, &reply);
    CHECK(reply.status == 400);
    CHECK(reply.body != NULL
          && strstr(reply.body, "the body contains a NUL byte") != NULL);
    free(reply.body);

    doc = get("/api/v1/tickets/raw", NULL, &status);
    CHECK(status == 404);
    cJSON_Delete(doc);
}


/*
 * Every spelling of one domain keys one customer: an IDN in Unicode or
 * in xn-- form, with or without the trailing dot, in any case.
 */
static void
customer_should_be_one_across_domain_spellings(void)
{
    unsigned status;
    cJSON *doc, *rows, *row;
    int n = 0;

    register_msg("{\"ticket_id\":\"IDN1\","
                 "\"recipient\":\"Umit@B\u00dcCHER.example.\","
                 "\"sent_at\":\"2026-11-02T00:00:00Z\","
                 "\"customer\":{\"value\":777777}}");
    register_msg("{\"ticket_id\":\"IDN2\","
                 "\"recipient\":\"umit@xn--bcher-kva.example\","
                 "\"sent_at\":\"2026-11-03T00:00:00Z\"}");

    doc = get("/api/v1/unopened", "min_value=777777", &status);
    CHECK(status == 200);
    rows = cJSON_GetObjectItem(doc, "customers");
    cJSON_ArrayForEach(row, rows) {
        n++;
        CHECK(int_at(row, "replies") == 2);
    }
    CHECK(n == 1);
    cJSON_Delete(doc);
}


/* limit and offset page the list; total counts it whole. */
static void
unopened_should_page(void)
{
    char all[512], page[512], want[512];
    unsigned status;
    cJSON *doc;
    char *space;

    recipients(NULL, all, sizeof all);
    doc = get("/api/v1/unopened", "limit=1", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "customers")) == 1);
    CHECK(int_at(doc, "total") == 5);
    cJSON_Delete(doc);

    /* The second and third rows of the whole list. */
    recipients("offset=1&limit=2", page, sizeof page);
    space = strchr(all, ' ');
    snprintf(want, sizeof want, "%s", space != NULL ? space + 1 : "");
    space = strchr(want, ' ');
    space = space != NULL ? strchr(space + 1, ' ') : NULL;
    if (space != NULL)
        *space = '\0';
    CHECK_STR(page, want);
    recipients("offset=5", page, sizeof page);
    CHECK_STR(page, "");

    static const struct { const char *query, *needle; } bad[] = {
        { "limit=0", "limit must be a whole number from 1 to 100000" },
        { "limit=100001", "limit must be" },
        { "limit=-1", "limit must be" },
        { "limit=1.5", "limit must be" },
        { "limit=99999999999", "limit must be" },
        { "offset=x", "offset must be a whole number from 0" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spec e = { "GET", "/api/v1/unopened", NULL, 0, AUTH, NULL,
                          bad[i].query };

        expect_error(bad[i].query, &e, 400, bad[i].needle);
    }
}


static cJSON *
post_call(const char *body, unsigned *status)
{
    struct spec s = { "POST", "/api/v1/calls", body, 0, AUTH, NULL, NULL };

    return call_json(&s, status);
}


/* The row of recipient on the call list (a new object), or NULL. */
static cJSON *
call_list_row(const char *recipient)
{
    unsigned status;
    cJSON *doc = get("/api/v1/unopened", NULL, &status);
    cJSON *c, *found = NULL;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "customers")) {
        const char *r = str_of(c, "recipient");

        if (r != NULL && strcmp(r, recipient) == 0)
            found = cJSON_Duplicate(c, 1);
    }
    cJSON_Delete(doc);
    return found;
}


/* A call shows on its row; one that reached the customer hides them. */
static void
calls_should_show_and_hide(void)
{
    unsigned status;
    cJSON *doc, *row, *last;

    doc = post_call("{\"recipient\":\"ANN@Example.com\","
                    "\"outcome\":\"voicemail\",\"note\":\"left a message\"}",
                    &status);
    CHECK(status == 201);
    CHECK(int_at(doc, "id") == 1);
    CHECK_STR(str_of(doc, "recipient"), "ANN@Example.com");
    CHECK_STR(str_of(doc, "outcome"), "voicemail");
    CHECK_STR(str_of(doc, "note"), "left a message");
    CHECK_STR(str_of(doc, "at"), "2026-12-03T12:00:00.000Z");
    CHECK(is_null(doc, "hidden_until"));
    cJSON_Delete(doc);

    row = call_list_row("ann@example.com");
    last = cJSON_GetObjectItem(row, "last_call");
    CHECK(row != NULL && cJSON_IsObject(last));
    CHECK_STR(str_of(last, "outcome"), "voicemail");
    CHECK_STR(str_of(last, "note"), "left a message");
    CHECK_STR(str_of(last, "at"), "2026-12-03T12:00:00.000Z");
    cJSON_Delete(row);
    row = call_list_row("fay@example.net");
    CHECK(row != NULL && is_null(row, "last_call"));
    cJSON_Delete(row);

    doc = post_call("{\"recipient\":\"ann@example.com\","
                    "\"outcome\":\"reached\"}", &status);
    CHECK(status == 201);
    CHECK(int_at(doc, "id") == 2);
    CHECK(is_null(doc, "note"));
    CHECK_STR(str_of(doc, "hidden_until"), "2026-12-10T12:00:00.000Z");
    cJSON_Delete(doc);
    CHECK(!listed("ann@example.com"));

    /* Back on the list a week later, showing that call. */
    g_now = NOW + INT64_C(7) * 24 * 3600 * 1000;
    row = call_list_row("ann@example.com");
    g_now = NOW;
    last = cJSON_GetObjectItem(row, "last_call");
    CHECK(row != NULL);
    CHECK_STR(str_of(last, "outcome"), "reached");
    cJSON_Delete(row);
}


static void
calls_should_reject_bad_input(void)
{
    static char long_note[1100];
    char body[1300];
    struct spec s = { "POST", "/api/v1/calls", body, 0, AUTH, NULL, NULL };
    static const struct { const char *body, *needle; unsigned want; } bad[] = {
        { "[]", "the body must be a JSON object", 400 },
        { "{\"outcome\":\"reached\"}", "recipient is required", 400 },
        { "{\"recipient\":\"ann@example.com\"}", "outcome is required",
          400 },
        { "{\"recipient\":\"ann@example.com\",\"outcome\":\"asleep\"}",
          "outcome must be \"reached\"", 400 },
        { "{\"recipient\":\"ann@example.com\",\"outcome\":7}",
          "outcome must be a string", 400 },
        { "{\"recipient\":\"ann@\",\"outcome\":\"reached\"}",
          "recipient: ", 400 },
        { "{\"recipient\":\"ann@example.com\",\"outcome\":\"reached\","
          "\"note\":[1]}", "note must be a string", 400 },
        { "{\"recipient\":\"zed@example.com\",\"outcome\":\"reached\"}",
          "recipient: no such customer", 404 },
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "%s", bad[i].body);
        expect_error(bad[i].body, &s, bad[i].want, bad[i].needle);
    }

    memset(long_note, 'n', 1001);
    snprintf(body, sizeof body, "{\"recipient\":\"fay@example.net\","
             "\"outcome\":\"reached\",\"note\":\"%s\"}", long_note);
    expect_error("long note", &s, 400, "note is longer than 1000 bytes");
    s.method = "GET";
    expect_error("GET", &s, 405, "");
    CHECK(listed("fay@example.net"));
}


#define CONC_THREADS 6
#define CONC_PER_THREAD 20

static void *
register_many(void *arg)
{
    struct spec s = { "POST", "/api/v1/messages",
                      "{\"ticket_id\":\"conc\",\"recipient\":\"c@c.example\","
                      "\"customer\":{\"value\":1}}", 0, AUTH, NULL, NULL };
    struct api_reply reply;
    int i;
    long failures = 0;

    (void) arg;
    for (i = 0; i < CONC_PER_THREAD; i++) {
        call(&s, &reply);
        if (reply.status != 201)
            failures++;
        free(reply.body);
    }
    return (void *) (intptr_t) failures;
}


/* More threads than pooled handles: each waits its turn, none fails. */
static void
api_should_serve_threads_from_the_pool(void)
{
    pthread_t t[CONC_THREADS];
    void *failures;
    long total = 0;
    unsigned status;
    cJSON *doc;
    int i;

    for (i = 0; i < CONC_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, register_many, NULL) == 0);
    for (i = 0; i < CONC_THREADS; i++) {
        pthread_join(t[i], &failures);
        total += (long) (intptr_t) failures;
    }
    CHECK(total == 0);

    doc = get("/api/v1/tickets/conc", NULL, &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "messages"))
          == CONC_THREADS * CONC_PER_THREAD);
    cJSON_Delete(doc);
}


/* Runs one bad_case and checks its error. */
static void
expect_bad(const struct bad_case *c)
{
    struct spec s = { c->method, c->path, c->body, 0, AUTH, NULL,
                      c->query };

    expect_error(c->id, &s, c->want, c->needle);
}


/*
 * Seeds n messages to domain through the store, sent at (RFC 3339) plus
 * i seconds, as confirmations (the reports count them; the call list
 * does not, so its tests are not disturbed): the first n_open get a
 * human fetch (opened, reached), the next n_reach a prefetch (reached
 * only), the rest nothing.
 */
static void
seed(const char *domain, const char *at, int n, int n_open, int n_reach)
{
    struct store_fetch_rec *rec = calloc((size_t) n, sizeof *rec);
    struct store_write_result res;
    struct store_message_in m;
    struct store *st = NULL;
    char err[256], recipient[128], ticket[128];
    int64_t t0 = 0, id = 0;
    int i;

    CHECK(rec != NULL && parse_time(at, 0, &t0, NULL) == 0);
    CHECK(store_open(&st, g_db, err, sizeof err) == STORE_OK);
    for (i = 0; rec != NULL && st != NULL && i < n; i++) {
        snprintf(recipient, sizeof recipient, "u%d@%s", i, domain);
        snprintf(ticket, sizeof ticket, "S-%s-%s-%d", domain, at, i);
        memset(&m, 0, sizeof m);
        m.ticket_id = ticket;
        m.recipient = recipient;
        m.domain = domain;
        m.kind = "confirmation";      /* off the call list's tests */
        m.sent_at_ms = m.registered_at_ms = t0 + i * 1000;
        CHECK(store_message_add(st, &m, &id) == STORE_OK);
        rec[i].message_id = id;
        rec[i].at_ms = m.sent_at_ms + 3600000;
        snprintf(rec[i].addr, sizeof rec[i].addr, "192.0.2.0");
        snprintf(rec[i].user_agent, sizeof rec[i].user_agent, "%s-%d",
                 i < n_open ? "human" : "mpp", i);
    }
    if (rec != NULL && st != NULL && n_open + n_reach > 0)
        CHECK(store_fetches_write(st, rec, (size_t) (n_open + n_reach),
                                  test_classify, NULL, &res) == STORE_OK);
    store_close(st);
    free(rec);
}


/* The i-th point of a trend reply. */
static const cJSON *
point(const cJSON *doc, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "points"), i);
}


static void
check_point(const cJSON *p, const char *date, const char *start,
            double hours, double sent, double reached, double opened)
{
    CHECK_STR(str_of(p, "date"), date);
    CHECK_STR(str_of(p, "start"), start);
    CHECK(num_of(p, "hours") == hours);
    CHECK(num_of(p, "sent") == sent);
    CHECK(num_of(p, "reached") == reached);
    CHECK(num_of(p, "opened") == opened);
    /* The rate is rounded to 4 decimals. */
    if (sent == 0)
        CHECK(is_null(p, "open_rate"));
    else
        CHECK(fabs(num_of(p, "open_rate") - opened / sent) < 0.00005);
}


/*
 * trend.example around Berlin's spring change: 23:30 on 28 March (CET),
 * the first minute of 29 March (opened), its last minute in CEST
 * (prefetched: reached only), and the first minute of 30 March.
 */
static void
seed_trend(void)
{
    seed("trend.example", "2026-03-28T22:30:00Z", 1, 0, 0);
    seed("trend.example", "2026-03-28T23:00:00Z", 1, 1, 0);
    seed("trend.example", "2026-03-29T21:59:00Z", 1, 0, 1);
    seed("trend.example", "2026-03-29T22:00:00Z", 1, 0, 0);
}


static void
trend_should_cut_local_days_across_dst(void)
{
    unsigned status;
    cJSON *doc;

    seed_trend();
    doc = get("/api/v1/domains/trend", "domain=Trend.Example."
              "&tz=Europe/Berlin&since=2026-03-28T12:00:00Z"
              "&until=2026-03-30T12:00:00Z", &status);
    CHECK(status == 200);
    CHECK_STR(str_of(doc, "domain"), "trend.example");
    CHECK_STR(str_of(doc, "bucket"), "day");
    CHECK_STR(str_of(doc, "tz"), "Europe/Berlin");
    CHECK_STR(str_of(doc, "since"), "2026-03-27T23:00:00.000Z");
    CHECK_STR(str_of(doc, "until"), "2026-03-30T22:00:00.000Z");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "points")) == 3);
    check_point(point(doc, 0), "2026-03-28", "2026-03-27T23:00:00.000Z", 24,
                1, 0, 0);
    check_point(point(doc, 1), "2026-03-29", "2026-03-28T23:00:00.000Z", 23,
                2, 2, 1);
    CHECK_STR(str_of(point(doc, 1), "end"), "2026-03-29T22:00:00.000Z");
    check_point(point(doc, 2), "2026-03-30", "2026-03-29T22:00:00.000Z", 24,
                1, 0, 0);
    cJSON_Delete(doc);

    /* 25 October: back to CET, a 25-hour day; nothing sent. */
    doc = get("/api/v1/domains/trend", "domain=trend.example"
              "&tz=Europe/Berlin&since=2026-10-24T22:00:00Z"
              "&until=2026-10-25T23:00:00Z", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "points")) == 1);
    check_point(point(doc, 0), "2026-10-25", "2026-10-24T22:00:00.000Z", 25,
                0, 0, 0);
    CHECK_STR(str_of(point(doc, 0), "end"), "2026-10-25T23:00:00.000Z");
    cJSON_Delete(doc);
}


static void
trend_should_start_weeks_on_local_monday(void)
{
    unsigned status;
    cJSON *doc;

    doc = get("/api/v1/domains/trend", "domain=trend.example&bucket=week"
              "&tz=Europe/Berlin&since=2026-03-29T12:00:00Z"
              "&until=2026-03-30T12:00:00Z", &status);
    CHECK(status == 200);
    CHECK_STR(str_of(doc, "bucket"), "week");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "points")) == 2);
    check_point(point(doc, 0), "2026-03-23", "2026-03-22T23:00:00.000Z",
                167, 3, 2, 1);
    check_point(point(doc, 1), "2026-03-30", "2026-03-29T22:00:00.000Z",
                168, 1, 0, 0);
    cJSON_Delete(doc);

    /* In UTC the same messages fall on other days: 28 March holds two. */
    doc = get("/api/v1/domains/trend", "domain=trend.example"
              "&since=2026-03-28&until=2026-03-29", &status);
    CHECK(status == 200);
    CHECK_STR(str_of(doc, "tz"), "UTC");
    check_point(point(doc, 0), "2026-03-28", "2026-03-28T00:00:00.000Z", 24,
                2, 1, 1);
    check_point(point(doc, 1), "2026-03-29", "2026-03-29T00:00:00.000Z", 24,
                2, 1, 0);
    cJSON_Delete(doc);
}


/*
 * Defaults: until now (Thursday 3 December 12:00Z), since 30 days or 12
 * weeks before, widened to whole buckets; and the 400-bucket bound.
 */
static void
trend_should_default_and_bound_its_window(void)
{
    unsigned status;
    cJSON *doc;

    doc = get("/api/v1/domains/trend", "domain=trend.example", &status);
    CHECK(status == 200);
    CHECK_STR(str_of(doc, "since"), "2026-11-03T00:00:00.000Z");
    CHECK_STR(str_of(doc, "until"), "2026-12-04T00:00:00.000Z");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "points")) == 31);
    cJSON_Delete(doc);

    doc = get("/api/v1/domains/trend", "domain=trend.example&bucket=week",
              &status);
    CHECK(status == 200);
    CHECK_STR(str_of(doc, "since"), "2026-09-07T00:00:00.000Z");
    CHECK_STR(str_of(doc, "until"), "2026-12-07T00:00:00.000Z");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "points")) == 13);
    cJSON_Delete(doc);

    /* 1 January 2026 through 4 February 2027: exactly 400 days. */
    doc = get("/api/v1/domains/trend", "domain=trend.example"
              "&since=2026-01-01&until=2027-02-04", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "points")) == 400);
    cJSON_Delete(doc);
}


static const struct bad_case trend_bad_cases[] = {
    { "t-no-domain", "GET", "/api/v1/domains/trend", NULL, "bucket=day",
      400, "domain: required" },
    { "t-empty-domain", "GET", "/api/v1/domains/trend", NULL, "domain=",
      400, "domain: required" },
    { "t-bad-domain", "GET", "/api/v1/domains/trend", NULL,
      "domain=a..example", 400, "domain: domain has an empty label" },
    { "t-at-domain", "GET", "/api/v1/domains/trend", NULL,
      "domain=x@a.example", 400, "domain: a domain has no '@'" },
    { "t-bucket", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&bucket=month", 400,
      "bucket: must be \"day\" or \"week\"" },
    { "t-tz", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&tz=Mars/Olympus", 400,
      "tz: unknown time zone \"Mars/Olympus\"" },
    { "t-tz-case", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&tz=europe/berlin", 400,
      "tz: unknown time zone \"europe/berlin\"" },
    { "t-tz-bytes", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&tz=Europe/\xc3\xa9\x01", 400,
      "tz: unknown time zone \"Europe/???\"" },
    { "t-tz-offset", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&tz=GMT+05:00", 400, "tz: unknown time zone" },
    { "t-since", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&since=yesterday", 400, "since must be" },
    { "t-order", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&since=2026-03-02&until=2026-03-01", 400,
      "since: must be before until" },
    { "t-equal", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&since=2026-03-02T00:00:00Z"
      "&until=2026-03-02T00:00:00Z", 400, "since: must be before until" },
    { "t-401-days", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&since=2026-01-01&until=2027-02-05", 400,
      "since: window too long: more than 400 day buckets" },
    { "t-weeks", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&bucket=week&since=2000-01-01&until=2026-01-01",
      400, "since: window too long: more than 400 week buckets" },
    { "t-ages", "GET", "/api/v1/domains/trend", NULL,
      "domain=a.example&since=0001-01-01&until=9999-12-30", 400,
      "since: window too long" },
    { "t-post", "POST", "/api/v1/domains/trend", "{}", NULL, 405,
      "method not allowed" },
};

static void
trend_should_reject_bad_input(void)
{
    size_t i;

    for (i = 0; i < sizeof trend_bad_cases / sizeof trend_bad_cases[0];
         i++)
        expect_bad(&trend_bad_cases[i]);
}


/*
 * Five domains over the two default windows before 1 July 2026 00:00Z:
 * current [24 June, 1 July), baseline [27 May, 24 June).
 *   alerts.example  current 140 sent, 13 opened; baseline 520, 270
 *   drop.example    current  30, 10;  baseline 30, 20
 *   steady.example  current  40, 18;  baseline 40, 20
 *   thin.example    current   3,  1;  baseline none
 *   thin2.example   current none;     baseline 40, 20
 */
static void
seed_alerts(void)
{
    seed("alerts.example", "2026-06-25T08:00:00Z", 140, 13, 20);
    seed("alerts.example", "2026-06-01T08:00:00Z", 520, 270, 10);
    seed("drop.example", "2026-06-26T08:00:00Z", 30, 10, 0);
    seed("drop.example", "2026-06-02T08:00:00Z", 30, 20, 0);
    seed("steady.example", "2026-06-27T08:00:00Z", 40, 18, 0);
    seed("steady.example", "2026-06-03T08:00:00Z", 40, 20, 0);
    seed("thin.example", "2026-06-28T08:00:00Z", 3, 1, 0);
    seed("thin2.example", "2026-06-04T08:00:00Z", 40, 20, 0);
}


static void
check_sample(const cJSON *o, const char *name, double sent, double opened,
             double rate)
{
    const cJSON *s = cJSON_GetObjectItem(o, name);

    CHECK(num_of(s, "sent") == sent);
    CHECK(num_of(s, "opened") == opened);
    if (sent == 0)
        CHECK(is_null(s, "open_rate"));
    else
        CHECK(num_of(s, "open_rate") == rate);
}


/* The i-th entry of list in the reply. */
static const cJSON *
entry(const cJSON *doc, const char *list, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(doc, list), i);
}


/* The figures: see test_alerts.c for the hand computation. */
static void
alerts_should_flag_significant_drops(void)
{
    const char *until = "until=2026-07-01T00:00:00Z";
    const cJSON *a;
    unsigned status;
    cJSON *doc;

    seed_alerts();
    doc = get("/api/v1/alerts", until, &status);
    CHECK(status == 200);
    a = cJSON_GetObjectItem(doc, "window");
    CHECK_STR(str_of(a, "since"), "2026-06-24T00:00:00.000Z");
    CHECK_STR(str_of(a, "until"), "2026-07-01T00:00:00.000Z");
    a = cJSON_GetObjectItem(doc, "baseline");
    CHECK_STR(str_of(a, "since"), "2026-05-27T00:00:00.000Z");
    CHECK_STR(str_of(a, "until"), "2026-06-24T00:00:00.000Z");
    a = cJSON_GetObjectItem(doc, "params");
    CHECK(num_of(a, "min_sent") == 30 && num_of(a, "alpha") == 0.01
          && num_of(a, "min_drop") == 0.1);
    CHECK(num_of(doc, "checked") == 3);

    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "alerts")) == 2);
    a = entry(doc, "alerts", 0);
    CHECK_STR(str_of(a, "domain"), "alerts.example");
    check_sample(a, "current", 140, 13, 0.0929);
    check_sample(a, "baseline", 520, 270, 0.5192);
    CHECK(num_of(a, "drop") == 0.4264);
    CHECK(num_of(a, "z") == 9.048);
    CHECK(num_of(a, "p_value") == 7.26e-20);
    CHECK_STR(str_of(a, "message"), "alerts.example: 9% opened this week, "
              "52% before; 140 replies");
    a = entry(doc, "alerts", 1);
    CHECK_STR(str_of(a, "domain"), "drop.example");
    CHECK(num_of(a, "drop") == 0.3333);
    CHECK(num_of(a, "z") == 2.582);
    CHECK(num_of(a, "p_value") == 0.00491);

    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "not_enough_data"))
          == 2);
    a = entry(doc, "not_enough_data", 0);
    CHECK_STR(str_of(a, "domain"), "thin.example");
    check_sample(a, "current", 3, 1, 0.3333);
    check_sample(a, "baseline", 0, 0, 0);
    a = entry(doc, "not_enough_data", 1);
    CHECK_STR(str_of(a, "domain"), "thin2.example");
    check_sample(a, "current", 0, 0, 0);
    check_sample(a, "baseline", 40, 20, 0.5);
    cJSON_Delete(doc);
}


/* The number of flagged domains with the extra parameters q. */
static int
flagged_with(const char *q)
{
    char query[256];
    unsigned status;
    cJSON *doc;
    int n;

    snprintf(query, sizeof query, "until=2026-07-01T00:00:00Z&%s", q);
    doc = get("/api/v1/alerts", query, &status);
    CHECK(status == 200);
    n = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "alerts"));
    cJSON_Delete(doc);
    return n;
}


static void
alerts_should_honour_their_thresholds(void)
{
    unsigned status;
    cJSON *doc;

    /* drop.example's p 0.00491 is not below 0.001; its drop of 0.33 is
     * below 0.4; alerts.example passes both. */
    CHECK(flagged_with("alpha=0.001") == 1);
    CHECK(flagged_with("min_drop=0.4") == 1);
    CHECK(flagged_with("min_drop=0.43") == 0);
    CHECK(flagged_with("alpha=0.5&min_drop=0") == 3);
    CHECK(flagged_with("window=1w") == 2);

    /* 140 current replies are not enough when 200 are asked. */
    doc = get("/api/v1/alerts", "until=2026-07-01T00:00:00Z&min_sent=200",
              &status);
    CHECK(status == 200);
    CHECK(num_of(doc, "checked") == 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "alerts")) == 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "not_enough_data"))
          == 5);
    CHECK_STR(str_of(entry(doc, "not_enough_data", 0), "domain"),
              "alerts.example");
    cJSON_Delete(doc);

    /* A 3-day window says so in the message. */
    doc = get("/api/v1/alerts", "until=2026-06-28T00:00:00Z&window=3d"
              "&baseline=25d&alpha=0.5&min_drop=0", &status);
    CHECK(status == 200);
    CHECK_STR(str_of(entry(doc, "alerts", 0), "message"), "alerts.example: "
              "9% opened in the last 3d, 52% before; 140 replies");
    cJSON_Delete(doc);
}


static const struct bad_case alerts_bad_cases[] = {
    { "a-window-zero", "GET", "/api/v1/alerts", NULL, "window=0d", 400,
      "window: must be a positive duration" },
    { "a-window-junk", "GET", "/api/v1/alerts", NULL, "window=week", 400,
      "window: must be a positive duration" },
    { "a-window-huge", "GET", "/api/v1/alerts", NULL,
      "window=99999999999w", 400, "window: must be a positive duration" },
    { "a-window-long", "GET", "/api/v1/alerts", NULL, "window=3661d", 400,
      "at most 3660d" },
    { "a-baseline-neg", "GET", "/api/v1/alerts", NULL, "baseline=-28d",
      400, "baseline: must be a positive duration" },
    { "a-until", "GET", "/api/v1/alerts", NULL, "until=soon", 400,
      "until must be" },
    { "a-min-sent-neg", "GET", "/api/v1/alerts", NULL, "min_sent=-1", 400,
      "min_sent: must be a whole number from 1" },
    { "a-min-sent-zero", "GET", "/api/v1/alerts", NULL, "min_sent=0", 400,
      "min_sent: must be a whole number from 1" },
    { "a-min-sent-frac", "GET", "/api/v1/alerts", NULL, "min_sent=2.5", 400,
      "min_sent: must be a whole number" },
    { "a-min-sent-huge", "GET", "/api/v1/alerts", NULL, "min_sent=1e300",
      400, "min_sent: must be a whole number" },
    { "a-alpha-zero", "GET", "/api/v1/alerts", NULL, "alpha=0", 400,
      "alpha: must be a number between 0 and 1" },
    { "a-alpha-one", "GET", "/api/v1/alerts", NULL, "alpha=1", 400,
      "alpha: must be a number between 0 and 1" },
    { "a-alpha-neg", "GET", "/api/v1/alerts", NULL, "alpha=-0.01", 400,
      "alpha: must be" },
    { "a-alpha-nan", "GET", "/api/v1/alerts", NULL, "alpha=nan", 400,
      "alpha: must be" },
    { "a-min-drop-neg", "GET", "/api/v1/alerts", NULL, "min_drop=-0.1",
      400, "min_drop: must be a number from 0 to 1" },
    { "a-min-drop-big", "GET", "/api/v1/alerts", NULL, "min_drop=1.5", 400,
      "min_drop: must be a number from 0 to 1" },
    { "a-post", "POST", "/api/v1/alerts", "{}", NULL, 405,
      "method not allowed" },
};

static void
alerts_should_reject_bad_input(void)
{
    size_t i;

    for (i = 0; i < sizeof alerts_bad_cases / sizeof alerts_bad_cases[0];
         i++)
        expect_bad(&alerts_bad_cases[i]);
}


/*
 * April 2026: mail.yahoo.co.uk 3 sent (1 opened, 1 prefetched), yahoo.co.uk
 * 1 sent and opened, other.example 1 sent, nothing.
 */
static void
domains_should_group_by_registrable_domain(void)
{
    const char *q = "since=2026-04-01&until=2026-04-30&group=registrable";
    const cJSON *g, *h;
    unsigned status;
    cJSON *doc;

    seed("mail.yahoo.co.uk", "2026-04-10T08:00:00Z", 3, 1, 1);
    seed("yahoo.co.uk", "2026-04-11T08:00:00Z", 1, 1, 0);
    seed("other.example", "2026-04-12T08:00:00Z", 1, 0, 0);

    doc = get("/api/v1/domains", q, &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "domains")) == 2);
    g = entry(doc, "domains", 0);
    CHECK_STR(str_of(g, "domain"), "yahoo.co.uk");
    CHECK(num_of(g, "sent") == 4 && num_of(g, "reached") == 3
          && num_of(g, "opened") == 2);
    CHECK(num_of(g, "open_rate") == 0.5 && num_of(g, "reach_rate") == 0.75);
    CHECK(num_of(g, "total_opens") == 2 && num_of(g, "fetches") == 3);
    CHECK(num_of(cJSON_GetObjectItem(g, "fetches_by_class"), "human") == 2);
    CHECK_STR(str_of(g, "last_open_at"), "2026-04-11T09:00:00.000Z");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(g, "hosts")) == 2);
    h = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "hosts"), 0);
    CHECK_STR(str_of(h, "domain"), "mail.yahoo.co.uk");
    CHECK(num_of(h, "sent") == 3 && num_of(h, "opened") == 1);
    CHECK(num_of(h, "open_rate") == 0.3333);
    CHECK(cJSON_GetObjectItem(h, "hosts") == NULL);
    h = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "hosts"), 1);
    CHECK_STR(str_of(h, "domain"), "yahoo.co.uk");
    CHECK(num_of(h, "sent") == 1 && num_of(h, "open_rate") == 1);

    g = entry(doc, "domains", 1);
    CHECK_STR(str_of(g, "domain"), "other.example");
    CHECK(num_of(g, "sent") == 1 && is_null(g, "last_open_at"));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(g, "hosts")) == 1);
    cJSON_Delete(doc);

    /* group=host is today's reply: two yahoo rows, no sub-rows. */
    doc = get("/api/v1/domains", "since=2026-04-01&until=2026-04-30"
              "&group=host", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "domains")) == 3);
    CHECK_STR(str_of(entry(doc, "domains", 0), "domain"),
              "mail.yahoo.co.uk");
    CHECK(cJSON_GetObjectItem(entry(doc, "domains", 0), "hosts") == NULL);
    cJSON_Delete(doc);

    /* Nothing in the window: an empty list either way. */
    doc = get("/api/v1/domains", "since=2025-04-01&until=2025-04-30"
              "&group=registrable", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "domains")) == 0);
    cJSON_Delete(doc);
}


int
main(void)
{
    if (setup() != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    api_new_should_reject_bad_config();
    api_owns_path_should_match_api_and_healthz();
    healthz_should_answer_without_auth();
    api_should_require_the_bearer_key();
    api_keys_should_follow_scope_and_revocation();
    stats_should_report_counters();
    register_should_return_a_verifiable_pixel();
    register_should_accept_integer_and_slashed_ticket_ids();
    register_should_answer_the_placement();
    api_should_reject_bad_input();
    api_should_set_allow_on_405();
    api_should_reject_overlong_fields();
    rejected_requests_should_store_nothing();
    load_reports();
    ticket_should_list_messages_and_fetches();
    ticket_should_count_fetches_not_kept();
    events_should_mark_replied_messages();
    events_should_accept_integer_ids_and_default_time();
    events_should_reject_bad_input_and_store_nothing();
    domains_should_default_to_the_last_30_days();
    domains_should_honour_since_and_until();
    domains_should_group_by_registrable_domain();
    trend_should_cut_local_days_across_dst();
    trend_should_start_weeks_on_local_monday();
    trend_should_default_and_bound_its_window();
    trend_should_reject_bad_input();
    alerts_should_flag_significant_drops();
    alerts_should_honour_their_thresholds();
    alerts_should_reject_bad_input();
    unopened_should_list_valuable_silent_customers();
    unopened_should_filter_by_value_age_and_reason();
    unopened_should_answer_csv();
    customer_should_be_updated_by_later_messages();
    customer_should_be_one_across_domain_spellings();
    unopened_should_page();
    calls_should_show_and_hide();
    calls_should_reject_bad_input();
    body_with_a_raw_nul_should_be_refused();
    api_should_serve_threads_from_the_pool();
    teardown();
    return check_done();
}
