/*
 * test_api.c - the JSON API driven through api_handle(), without sockets.
 *
 * A temporary SQLite file backs the API's pool; opens are written
 * straight into it through a second store handle, as the writer would.
 * The clock is fixed (NOW), so every report figure below is exact.
 */
#include <inttypes.h>
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
static struct keyring g_keys;
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
call(const struct spec *s, struct api_reply *reply)
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
    req.now_ms = NOW;
    req.header = spec_header;
    req.query = spec_query;
    req.ctx = &ctx;
    api_handle(g_api, &req, reply);
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

    snprintf(g_dir, sizeof g_dir, "/tmp/beacon-test-api-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_db, sizeof g_db, "%s/beacon.db", g_dir);

    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = g_db;
    cfg.keys = &g_keys;
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
}


static void
api_new_should_reject_bad_config(void)
{
    struct api_config cfg;
    struct api *api = NULL;
    char err[256] = "";

    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = g_db;
    cfg.keys = &g_keys;
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
      "ticket_id contains a control character" },
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
    { "b-domains-since", "GET", "/api/v1/domains", NULL, "since=yesterday",
      400, "since must be" },
    { "b-domains-until", "GET", "/api/v1/domains", NULL,
      "until=2026-13-01", 400, "until must be" },
    { "b-domains-order", "GET", "/api/v1/domains", NULL,
      "since=2026-12-03&until=2026-12-01", 400, "since is after until" },
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
    { "b-unknown-route", "GET", "/api/v2/messages", NULL, NULL, 404,
      "no such route" },
    { "b-get-messages", "GET", "/api/v1/messages", NULL, NULL, 405,
      "method not allowed" },
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


/* The data set the report tests read; ids filled by load_reports(). */
static int64_t m_ann1, m_ann2, m_bob, m_carl_conf, m_carl, m_dora, m_eve;

static void
write_open(struct store *st, int64_t id, const char *at, const char *addr,
           const char *ua)
{
    struct store_open_rec rec;
    size_t unknown = 99;

    memset(&rec, 0, sizeof rec);
    rec.message_id = id;
    CHECK(parse_time(at, 0, &rec.at_ms, NULL) == 0);
    snprintf(rec.addr, sizeof rec.addr, "%s", addr);
    snprintf(rec.user_agent, sizeof rec.user_agent, "%s", ua);
    CHECK(store_opens_write(st, &rec, 1, &unknown) == STORE_OK);
    CHECK(unknown == 0);
}


static void
load_reports(void)
{
    struct store *st = NULL;
    char err[256];

    m_ann1 = register_msg("{\"ticket_id\":\"T1\","
                          "\"recipient\":\"Ann@Example.COM\","
                          "\"sent_at\":\"2026-12-01T10:00:00Z\","
                          "\"customer\":{\"name\":\"Lee, Ann \\\"Annie\\\"\","
                          "\"phone\":\"+1 555 0100\",\"value\":500}}");
    m_ann2 = register_msg("{\"ticket_id\":\"T2\","
                          "\"recipient\":\"ann@example.com\","
                          "\"sent_at\":\"2026-12-02T11:00:00+01:00\"}");
    m_bob = register_msg("{\"ticket_id\":\"T3\","
                         "\"recipient\":\"bob@example.com\","
                         "\"kind\":\"reply\","
                         "\"sent_at\":\"2026-12-01T11:00:00Z\","
                         "\"message_id\":\"<t3@mail.example>\","
                         "\"unknown_field\":[1,2,3],"
                         "\"customer\":{\"name\":\"Bob\",\"value\":900}}");
    m_carl_conf = register_msg("{\"ticket_id\":\"T4\","
                               "\"recipient\":"
                               "\"carl@b\xc3\xbc" "cher.example\","
                               "\"kind\":\"confirmation\","
                               "\"sent_at\":\"2026-12-02T09:00:00Z\","
                               "\"customer\":{\"name\":\"Carl\","
                               "\"value\":100}}");
    m_carl = register_msg("{\"ticket_id\":\"T7\","
                          "\"recipient\":\"carl@b\xc3\xbc" "cher.example\","
                          "\"sent_at\":\"2026-12-02T08:00:00Z\"}");
    m_dora = register_msg("{\"ticket_id\":\"T5\","
                          "\"recipient\":\"dora@mail.yahoo.co.uk\","
                          "\"sent_at\":\"2026-11-01T00:00:00Z\","
                          "\"customer\":{\"value\":50}}");
    m_eve = register_msg("{\"ticket_id\":\"T6\","
                         "\"recipient\":\"eve@example.org\","
                         "\"sent_at\":\"2026-12-03T11:30:00Z\","
                         "\"customer\":{\"name\":\"Eve\",\"value\":2000}}");

    CHECK(store_open(&st, g_db, err, sizeof err) == STORE_OK);
    if (st == NULL)
        return;
    write_open(st, m_bob, "2026-12-01T12:06:00Z", "2001:db8:1::", "UA-2");
    write_open(st, m_bob, "2026-12-01T12:05:00Z", "192.0.2.0", "UA-1");
    write_open(st, m_carl_conf, "2026-12-02T09:30:00Z", "198.51.100.0",
               "UA-3");
    store_close(st);
}


static void
ticket_should_list_messages_and_opens(void)
{
    char want[1024];
    struct api_reply reply;
    struct spec s = { "GET", "/api/v1/tickets/T3", NULL, 0, AUTH, NULL,
                      NULL };

    snprintf(want, sizeof want,
             "{\"ticket_id\":\"T3\",\"messages\":[{\"id\":%" PRId64 ","
             "\"recipient\":\"bob@example.com\",\"kind\":\"reply\","
             "\"sent_at\":\"2026-12-01T11:00:00.000Z\","
             "\"message_id\":\"<t3@mail.example>\",\"opens\":["
             "{\"at\":\"2026-12-01T12:05:00.000Z\",\"user_agent\":\"UA-1\","
             "\"addr\":\"192.0.2.0\"},"
             "{\"at\":\"2026-12-01T12:06:00.000Z\",\"user_agent\":\"UA-2\","
             "\"addr\":\"2001:db8:1::\"}]}]}", m_bob);
    call(&s, &reply);
    CHECK(reply.status == 200);
    CHECK_STR(reply.body, want);
    CHECK(reply.body != NULL && reply.len == strlen(reply.body));
    free(reply.body);

    snprintf(want, sizeof want,
             "{\"ticket_id\":\"T1\",\"messages\":[{\"id\":%" PRId64 ","
             "\"recipient\":\"Ann@Example.COM\",\"kind\":\"reply\","
             "\"sent_at\":\"2026-12-01T10:00:00.000Z\","
             "\"message_id\":null,\"opens\":[]}]}", m_ann1);
    s.path = "/api/v1/tickets/T1";
    call(&s, &reply);
    CHECK(reply.status == 200);
    CHECK_STR(reply.body, want);
    free(reply.body);
}


static void
check_domain(const cJSON *d, const char *domain, double sent, double opened,
             double rate, double fetches, const char *last_open)
{
    if (d == NULL) {
        CHECK(d != NULL);
        return;
    }
    CHECK_STR(str_of(d, "domain"), domain);
    CHECK(num_of(d, "sent") == sent);
    CHECK(num_of(d, "opened") == opened);
    CHECK(num_of(d, "open_rate") == rate);
    CHECK(num_of(d, "fetches") == fetches);
    if (last_open == NULL)
        CHECK(is_null(d, "last_open_at"));
    else
        CHECK_STR(str_of(d, "last_open_at"), last_open);
}


static void
domains_should_default_to_the_last_30_days(void)
{
    unsigned status;
    cJSON *doc = get("/api/v1/domains", NULL, &status);
    cJSON *list = cJSON_GetObjectItem(doc, "domains");

    CHECK(status == 200);
    CHECK_STR(str_of(doc, "since"), "2026-11-03T12:00:00.000Z");
    CHECK_STR(str_of(doc, "until"), "2026-12-03T12:00:00.000Z");
    CHECK(cJSON_GetArraySize(list) == 3);
    check_domain(cJSON_GetArrayItem(list, 0), "example.com", 3, 1, 0.3333,
                 2, "2026-12-01T12:06:00.000Z");
    check_domain(cJSON_GetArrayItem(list, 1), "xn--bcher-kva.example", 2, 1,
                 0.5, 1, "2026-12-02T09:30:00.000Z");
    check_domain(cJSON_GetArrayItem(list, 2), "example.org", 1, 0, 0, 0,
                 NULL);
    cJSON_Delete(doc);
}


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
    check_domain(cJSON_GetArrayItem(list, 0), "mail.yahoo.co.uk", 1, 0, 0,
                 0, NULL);
    cJSON_Delete(doc);

    /* Date-times: since inclusive, until exclusive; ties by domain. */
    doc = get("/api/v1/domains",
              "since=2026-12-01T10:30:00Z&until=2026-12-02T10:00:00+01:00"
              "&ignored=1", &status);
    list = cJSON_GetObjectItem(doc, "domains");
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(list) == 2);
    check_domain(cJSON_GetArrayItem(list, 0), "example.com", 1, 1, 1, 2,
                 "2026-12-01T12:06:00.000Z");
    check_domain(cJSON_GetArrayItem(list, 1), "xn--bcher-kva.example", 1, 0,
                 0, 0, NULL);
    cJSON_Delete(doc);

    /* since == until is an empty window, not an error. */
    doc = get("/api/v1/domains", "since=2026-12-01T00:00:00Z"
              "&until=2026-12-01T00:00:00Z", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "domains")) == 0);
    cJSON_Delete(doc);
}


static void
check_customer(const cJSON *c, const char *recipient, const char *name,
               const char *phone, double value, double replies,
               const char *oldest, const char *newest, const char *tickets)
{
    char got[128] = "";
    const cJSON *t;

    if (c == NULL) {
        CHECK(c != NULL);
        return;
    }
    CHECK_STR(str_of(c, "recipient"), recipient);
    if (name != NULL)
        CHECK_STR(str_of(c, "name"), name);
    else
        CHECK(is_null(c, "name"));
    if (phone != NULL)
        CHECK_STR(str_of(c, "phone"), phone);
    else
        CHECK(is_null(c, "phone"));
    CHECK(num_of(c, "value") == value);
    CHECK(num_of(c, "replies") == replies);
    CHECK_STR(str_of(c, "oldest_unopened_at"), oldest);
    CHECK_STR(str_of(c, "newest_unopened_at"), newest);
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "ticket_ids")) {
        if (got[0] != '\0')
            strcat(got, " ");
        strcat(got, cJSON_IsString(t) ? t->valuestring : "?");
    }
    CHECK_STR(got, tickets);
}


static void
unopened_should_list_valuable_silent_customers(void)
{
    unsigned status;
    cJSON *doc = get("/api/v1/unopened", NULL, &status);
    cJSON *list = cJSON_GetObjectItem(doc, "customers");

    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(list) == 3);
    check_customer(cJSON_GetArrayItem(list, 0), "ann@example.com",
                   "Lee, Ann \"Annie\"", "+1 555 0100", 500, 2,
                   "2026-12-01T10:00:00.000Z", "2026-12-02T10:00:00.000Z",
                   "T1 T2");
    check_customer(cJSON_GetArrayItem(list, 1),
                   "carl@b\xc3\xbc" "cher.example", "Carl", NULL, 100, 1,
                   "2026-12-02T08:00:00.000Z", "2026-12-02T08:00:00.000Z",
                   "T7");
    check_customer(cJSON_GetArrayItem(list, 2), "dora@mail.yahoo.co.uk",
                   NULL, NULL, 50, 1, "2026-11-01T00:00:00.000Z",
                   "2026-11-01T00:00:00.000Z", "T5");
    cJSON_Delete(doc);
}


static int
customer_count(const char *query)
{
    unsigned status;
    cJSON *doc = get("/api/v1/unopened", query, &status);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "customers"));

    CHECK(status == 200);
    cJSON_Delete(doc);
    return n;
}


static void
unopened_should_filter_by_value_and_age(void)
{
    unsigned status;
    cJSON *doc;

    CHECK(customer_count("min_value=100") == 2);
    CHECK(customer_count("min_value=100.5") == 1);
    CHECK(customer_count("min_value=1e3") == 0);
    CHECK(customer_count("min_value=") == 3);
    CHECK(customer_count("older_than=1w") == 1);
    CHECK(customer_count("older_than=4w") == 1);
    CHECK(customer_count("older_than=5w") == 0);

    /* Eve's reply is 30 minutes old: listed only for older_than < 30m. */
    doc = get("/api/v1/unopened", "older_than=15m", &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "customers")) == 4);
    check_customer(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "customers"),
                                      0),
                   "eve@example.org", "Eve", NULL, 2000, 1,
                   "2026-12-03T11:30:00.000Z", "2026-12-03T11:30:00.000Z",
                   "T6");
    cJSON_Delete(doc);
    CHECK(customer_count("older_than=31m") == 3);
}


static const char want_csv[] =
    "recipient,name,phone,value,replies,oldest_unopened_at,"
    "newest_unopened_at,ticket_ids\r\n"
    "ann@example.com,\"Lee, Ann \"\"Annie\"\"\",+1 555 0100,500,2,"
    "2026-12-01T10:00:00.000Z,2026-12-02T10:00:00.000Z,T1 T2\r\n"
    "carl@b\xc3\xbc" "cher.example,Carl,,100,1,2026-12-02T08:00:00.000Z,"
    "2026-12-02T08:00:00.000Z,T7\r\n";

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

    s.query = "min_value=1e6";
    call(&s, &reply);
    CHECK_STR(reply.body, "recipient,name,phone,value,replies,"
              "oldest_unopened_at,newest_unopened_at,ticket_ids\r\n");
    free(reply.body);

    /* An explicit format wins over Accept. */
    s.query = "min_value=100&format=json";
    doc = call_json(&s, &status);
    CHECK(status == 200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "customers")) == 2);
    cJSON_Delete(doc);
}


/* A later message updates the customer's value: Dora moves to the top. */
static void
customer_should_be_updated_by_later_messages(void)
{
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
    check_customer(first, "DORA@mail.yahoo.co.uk", NULL, "555", 1000, 1,
                   "2026-11-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z",
                   "T5");
    cJSON_Delete(doc);
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
    stats_should_report_counters();
    register_should_return_a_verifiable_pixel();
    register_should_accept_integer_and_slashed_ticket_ids();
    api_should_reject_bad_input();
    api_should_set_allow_on_405();
    api_should_reject_overlong_fields();
    rejected_requests_should_store_nothing();
    load_reports();
    ticket_should_list_messages_and_opens();
    domains_should_default_to_the_last_30_days();
    domains_should_honour_since_and_until();
    unopened_should_list_valuable_silent_customers();
    unopened_should_filter_by_value_and_age();
    unopened_should_answer_csv();
    customer_should_be_updated_by_later_messages();
    api_should_serve_threads_from_the_pool();
    teardown();
    return check_done();
}
