/*
 * fuzz_api.h - an API on a temporary database for the API targets, as
 * tests/unit/test_api.c sets one up: one fixed signing key, a known
 * Bearer key, no writer.  The database lives in /dev/shm when there is
 * one (no disk syncs per input) and is removed at exit.
 */
#ifndef BEACON_FUZZ_API_H
#define BEACON_FUZZ_API_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "api/api.h"
#include "server/keys.h"

#define FUZZ_API_KEY "fuzz-api-key-0123456789"
#define FUZZ_AUTH "Bearer " FUZZ_API_KEY

/* 2026-12-03T12:00:00Z, the clock of every request. */
#define FUZZ_NOW INT64_C(1796299200000)

/* What a request carries besides method, path and body. */
struct fuzz_call {
    const char *accept;         /* the Accept header, or NULL */
    const char *query;          /* "a=1&b=2", values not escaped */
    char value[512];            /* the last query value looked up */
};

static struct api *fuzz_api;
static struct keyring fuzz_keys;
static struct keys_live *fuzz_keys_live;
static char fuzz_dir[64];
static char fuzz_db[128];

static inline void
fuzz_api_remove(void)
{
    static const char *const suffixes[] = { "", "-wal", "-shm",
                                            "-journal" };
    char path[160];

    api_free(fuzz_api);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s%s", fuzz_db, suffixes[i]);
        unlink(path);
    }
    rmdir(fuzz_dir);
}


/* Opens fuzz_api or aborts: a target without its API tests nothing. */
static inline void
fuzz_api_open(void)
{
    struct api_config cfg;
    char err[256];
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    if (sodium_init() < 0) {
        abort();
    }
    fuzz_keys.n = 1;
    fuzz_keys.ids[0] = 1;
    memset(fuzz_keys.keys[0], 0x11, KEYS_KEY_BYTES);

    if (keys_live_new(&fuzz_keys_live, &fuzz_keys, err, sizeof err) != 0) {
        fprintf(stderr, "keys_live_new: %s\n", err);
        abort();
    }

    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/beacon-fuzz-XXXXXX", base);
    if (mkdtemp(fuzz_dir) == NULL) {
        abort();
    }
    snprintf(fuzz_db, sizeof fuzz_db, "%s/beacon.db", fuzz_dir);

    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = fuzz_db;
    cfg.keys = fuzz_keys_live;
    cfg.api_key = FUZZ_API_KEY;
    cfg.base_url = "http://127.0.0.1:8080";
    if (api_new(&fuzz_api, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "api_new: %s\n", err);
        abort();
    }
    atexit(fuzz_api_remove);
}


/* Each API target is a program of its own: its libFuzzer set-up opens
 * the API once, here. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_api_open();
    return 0;
}


static inline const char *
fuzz_header(void *ctx, const char *name)
{
    const struct fuzz_call *c = ctx;

    if (strcasecmp(name, "Authorization") == 0) {
        return FUZZ_AUTH;
    }
    if (strcasecmp(name, "Accept") == 0) {
        return c->accept;
    }
    return NULL;
}


static inline const char *
fuzz_query(void *ctx, const char *name)
{
    struct fuzz_call *c = ctx;
    const char *p = c->query;
    size_t n = strlen(name);

    while (p != NULL && *p != '\0') {
        size_t len = strcspn(p, "&");

        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            snprintf(c->value, sizeof c->value, "%.*s",
                     (int) (len - n - 1), p + n + 1);
            return c->value;
        }
        p += len;
        if (*p == '&') {
            p++;
        }
    }
    return NULL;
}


/*
 * Sends one request and checks what every reply promises: a status that
 * is not 500 (bad input is the caller's error, 4xx), a content type, and
 * valid JSON when it says JSON.  The body is freed.
 */
static inline void
fuzz_api_call(const char *method, const char *path, const char *body,
              size_t body_len, struct fuzz_call *call)
{
    struct api_request req;
    struct api_reply reply;

    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = path;
    req.body = body;
    req.body_len = body_len;
    req.now_ms = FUZZ_NOW;
    req.header = fuzz_header;
    req.query = fuzz_query;
    req.ctx = call;
    memset(&reply, 0, sizeof reply);
    api_handle(fuzz_api, &req, &reply);

    FUZZ_ASSERT(reply.status >= 200 && reply.status < 600);
    FUZZ_ASSERT(reply.content_type != NULL);
    FUZZ_ASSERT(reply.status != 500);
    FUZZ_ASSERT(reply.body != NULL || reply.len == 0);
    if (strcmp(reply.content_type, "application/json") == 0) {
        cJSON *doc = cJSON_ParseWithLength(reply.body, reply.len);

        FUZZ_ASSERT(doc != NULL);
        cJSON_Delete(doc);
    }
    free(reply.body);
}

#endif
