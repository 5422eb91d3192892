/*
 * main.c - the beacon command: serve, keygen, apikey, reclassify, demo,
 * help.
 *
 * serve starts, in order: keys, the writer (with its own store handle),
 * the API (with its pool of handles), then HTTP.  It stops in reverse, so
 * requests in flight finish, then every queued open is written.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "api/api.h"
#include "api/parse.h"
#include "server/classify.h"
#include "server/clock.h"
#include "server/config.h"
#include "server/demo.h"
#include "server/http.h"
#include "server/keys.h"
#include "server/log.h"
#include "store/retention.h"
#include "store/store.h"
#include "store/writer.h"

#define ERR_LEN 512

static const char usage_text[] =
    "usage: beacon COMMAND [FLAGS]\n\n"
    "Commands:\n"
    "  serve       serve the pixel, the JSON API and the static pages\n"
    "  keygen      create a signing key file, add or remove keys\n"
    "  apikey      add, list and revoke API keys\n"
    "  reclassify  run the rules again over every stored fetch\n"
    "  demo        fill a new database with a month of made-up traffic\n\n"
    "beacon COMMAND --help tells more; beacon --version prints the "
    "version.\n";

static const char reclassify_usage[] =
    "usage: beacon reclassify --db PATH --rules PATH\n\n"
    "Classifies every stored fetch again with the rules file, from the\n"
    "evidence stored with it, and brings the reports in line.  Safe while\n"
    "the server runs (it waits for the database lock).\n";

static const char demo_usage[] =
    "usage: beacon demo --db PATH [--seed N] [--rules PATH]\n\n"
    "Fills a database with a made-up month of a support team's mail,\n"
    "ending now: 320 customers at 14 mail hosts, their tickets, opens\n"
    "classified by the rules file (default: the one serve uses), and\n"
    "yahoo.com's open rate collapsing in the last 7 days.  The same seed\n"
    "gives the same data (default seed %u).  Refuses a database that\n"
    "already holds messages.\n";

static const char keygen_usage[] =
    "usage: beacon keygen --key-file PATH\n"
    "       beacon keygen --rotate --key-file PATH\n"
    "       beacon keygen --remove ID --key-file PATH\n\n"
    "Creates a signing key file (mode 0600); refuses to overwrite one.\n"
    "--rotate adds a new key that signs new tokens from then on; the\n"
    "older keys keep verifying the tokens they signed.  --remove ID drops\n"
    "a key: its tokens are refused from then on (not the current key:\n"
    "rotate first).  A running beacon serve reads the file again on\n"
    "SIGHUP.\n";

static const char apikey_usage[] =
    "usage: beacon apikey add --scope read|write --db PATH\n"
    "       beacon apikey list --db PATH\n"
    "       beacon apikey revoke ID --db PATH\n\n"
    "API keys kept in the database, as hashes only.  add prints the new\n"
    "key once (it cannot be shown again); a read key may use the GET\n"
    "routes, a write key every route.  list shows ids, scopes and times,\n"
    "never a key.  revoke takes effect on the next request, no restart\n"
    "needed.  The database must exist (beacon serve creates it).\n";


/* Creates the parent directories of path, like mkdir -p of dirname. */
static int
make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char buf[4096];

    if (strlen(path) >= sizeof(buf)) {
        snprintf(err, errlen, "path too long: %.200s", path);
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %.200s: %s", buf,
                     strerror(errno));
            return -1;
        }
        *p = '/';
    }
    return 0;
}


static void
counters_fill(struct api_counters *out)
{
    out->tokens_rejected = http_tokens_rejected();
}


static void
print_banner(const char *url, const char *base_url,
             const struct serve_config *c)
{
    printf("beacon %s serving %s\n"
           "  pixel   %s/p/<token>.gif\n"
           "  api     %s/api/v1/\n"
           "  health  %s/healthz\n"
           "  api key in %s\n",
           BEACON_VERSION, url, base_url, url, url, c->api_key_file);
    fflush(stdout);
}


struct running {
    const struct serve_config *cfg;
    struct keys_live *keys;
    struct classifier *classifier;
    char api_key[KEYS_API_KEY_MAX];
    struct writer *writer;
    struct retention *retention;
    struct api *api;
    struct http_server *http;
};


/*
 * Reads the signing key file again.  A bad file is logged and the keys
 * in force stay; only ids are logged, never key material.
 */
static void
reload_keys(struct running *run, const char *path)
{
    char err[ERR_LEN];
    const struct keyring *kr;
    unsigned n, current;

    if (keys_live_reload(run->keys, path, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "keys.reload_failed", "err=\"%s\" kept=1", err);
        return;
    }
    kr = keys_live_hold(run->keys);
    n = (unsigned) kr->n;
    current = kr->ids[kr->current];
    keys_live_release(run->keys);
    log_msg(LOG_INFO, "keys.reloaded", "path=%s keys=%u current=%u", path,
            n, current);
}


/*
 * Blocks until SIGINT or SIGTERM and returns it; on SIGHUP reloads the
 * rules file and the signing key file (keeping the old rules or keys
 * when a new file is bad).
 */
static int
wait_for_stop(const sigset_t *set, struct running *run,
              const struct serve_config *c)
{
    char err[ERR_LEN];
    int sig = 0;

    for (;;) {
        if (sigwait(set, &sig) != 0) {
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM) {
            return sig;
        }
        /* A bad file is logged by the classifier, which keeps its rules. */
        if (sig == SIGHUP) {
            (void) classifier_reload(run->classifier, err, sizeof(err));
            reload_keys(run, c->key_file);
        }
    }
}


/* A store handle for the writer, set up as serve's flags say. */
static int
open_writer_store(const struct serve_config *c, struct store **st,
                  char *err, size_t errlen)
{
    if (store_open(st, c->db, err, errlen) != STORE_OK) {
        return -1;
    }
    store_set_fetch_rows_max(*st, c->fetch_rows_max);
    return 0;
}


/* The writer's way to a new handle while its batches fail. */
static int
reopen_writer_store(void *ctx, struct store **st)
{
    const struct running *run = ctx;
    char err[ERR_LEN];

    if (open_writer_store(run->cfg, st, err, sizeof(err)) != 0) {
        log_msg(LOG_DEBUG, "writer.reopen_failed", "err=\"%s\"", err);
        return -1;
    }
    log_msg(LOG_DEBUG, "writer.reopened", "db=%s", run->cfg->db);
    return 0;
}


static int
start_store_side(struct running *run, const struct serve_config *c,
                 const char *base_url, char *err, size_t errlen)
{
    struct api_config acfg;
    struct store *st;

    if (make_parent_dirs(c->db, err, errlen) != 0
        || open_writer_store(c, &st, err, errlen) != 0) {
        return -1;
    }
    if (writer_start(&run->writer, st, c->queue_size, classifier_classify,
                     run->classifier, err, errlen) != 0) {
        return -1;
    }
    writer_set_wait(run->writer, c->queue_wait_ms);
    if (c->retain_days > 0
        && retention_start(&run->retention, c->db, c->retain_days, err,
                           errlen) != 0) {
        return -1;
    }
    run->cfg = c;
    writer_set_reopen(run->writer, reopen_writer_store, run);

    acfg = (struct api_config) {
        .db_path = c->db, .keys = run->keys, .api_key = run->api_key,
        .base_url = base_url, .writer = run->writer,
        .counters = counters_fill, .clip_threshold = c->clip_threshold,
        .call_hide_ms = (int64_t) c->call_hide_hours * 3600 * 1000
    };
    return api_new(&run->api, &acfg, err, errlen);
}


static int
load_keys(struct running *run, const struct serve_config *c, char *err,
          size_t errlen)
{
    struct keyring kr;
    int created, rc;

    if (make_parent_dirs(c->key_file, err, errlen) != 0
        || keys_load_or_create(&kr, c->key_file, &created, err,
                               errlen) != 0) {
        return -1;
    }
    rc = keys_live_new(&run->keys, &kr, err, errlen);
    keys_clear(&kr);
    if (rc != 0) {
        return -1;
    }
    if (created) {
        log_msg(LOG_INFO, "keys.created", "path=%s", c->key_file);
    }

    if (make_parent_dirs(c->api_key_file, err, errlen) != 0
        || keys_api_load_or_create(c->api_key_file, run->api_key,
                                   sizeof(run->api_key), &created, err,
                                   errlen) != 0) {
        return -1;
    }
    if (created) {
        log_msg(LOG_INFO, "apikey.created", "path=%s", c->api_key_file);
    }
    return 0;
}


static void
stop_all(struct running *run)
{
    http_stop(run->http);
    retention_stop(run->retention);
    writer_stop(run->writer);
    api_free(run->api);
    classifier_free(run->classifier);
    keys_live_free(run->keys);
    sodium_memzero(run->api_key, sizeof(run->api_key));
}


static int
cmd_serve(int argc, char **argv)
{
    struct serve_config c;
    struct http_config hcfg;
    struct running run = { 0 };
    char err[ERR_LEN], url[HTTP_URL_MAX];
    sigset_t set;
    int help, fd, sig, rc;

    config_defaults(&c);
    if (config_parse(&c, argc, argv, &help, err, sizeof(err)) != 0) {
        fprintf(stderr, "beacon serve: %s\n", err);
        return 2;
    }
    if (help) {
        config_usage(stdout);
        return 0;
    }
    log_set_level((enum log_level) log_level_parse(c.log_level));

    /* Threads inherit this mask; only sigwait() below sees the signals. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Bind and read the rules first: bad values fail before any file is
     * created. */
    rc = http_listen(c.listen, &fd, url, sizeof(url), err, sizeof(err));
    if (rc == -2) {
        fprintf(stderr, "beacon serve: %s\n", err);
        return 2;               /* as for any other bad flag value */
    }
    if (rc != 0) {
        goto fail;
    }
    if (classifier_new(&run.classifier, c.rules, err, sizeof(err)) != 0
        || load_keys(&run, &c, err, sizeof(err)) != 0) {
        close(fd);
        goto fail;
    }
    const char *base_url = c.base_url != NULL ? c.base_url : url;
    if (start_store_side(&run, &c, base_url, err, sizeof(err)) != 0) {
        close(fd);
        goto fail;
    }

    hcfg = (struct http_config) {
        .listen_fd = fd, .threads = c.threads,
        .max_connections = c.max_connections,
        .max_connections_per_ip = c.max_connections_per_ip,
        .idle_timeout_s = c.idle_timeout_s, .keys = run.keys,
        .writer = run.writer, .api = run.api, .static_dir = c.static_dir,
        .trusted = c.trusted, .n_trusted = c.n_trusted
    };
    if (http_start(&run.http, &hcfg, err, sizeof(err)) != 0) {
        goto fail;
    }

    log_msg(LOG_INFO, "serve.started", "url=%s db=%s threads=%u", url, c.db,
            c.threads);
    print_banner(url, base_url, &c);
    sig = wait_for_stop(&set, &run, &c);
    log_msg(LOG_INFO, "serve.stopping", "signal=%d", sig);
    stop_all(&run);
    log_msg(LOG_INFO, "serve.stopped", "clean=1");
    return 0;

fail:
    fprintf(stderr, "beacon serve: %s\n", err);
    stop_all(&run);
    return 1;
}


/*
 * Reads an id: decimal digits only, 1..max.  -1 for anything else
 * ("", "-1", "0x1", "1.0", "01x", past max).
 */
static int
parse_id(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;

    if (s[0] == '\0' || strlen(s) > 19) {
        return -1;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long long) (*p - '0');
    }
    if (v < 1 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}


/*
 * Matches argv[*i] against the flag name given as "--name VALUE" or
 * "--name=VALUE".  1 with *value set (and *i moved past it), 0 when it
 * is another argument, -1 (message printed) when the value is missing.
 */
static int
flag_value(const char *cmd, int argc, char **argv, int *i, const char *name,
           const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '=')) {
        return 0;
    }
    if (a[n] == '=') {
        *value = a + n + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        fprintf(stderr, "beacon %s: %s needs a value\n", cmd, name);
        return -1;
    }
    if ((*value)[0] == '\0') {
        fprintf(stderr, "beacon %s: %s needs a value\n", cmd, name);
        return -1;
    }
    return 1;
}


struct keygen_args {
    const char *path;
    int rotate;
    const char *remove;         /* the id as given, or NULL */
    int help;
};


static int
parse_keygen_args(int argc, char **argv, struct keygen_args *a)
{
    int r;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = 1;
            return 0;
        }
        if (strcmp(argv[i], "--rotate") == 0) {
            a->rotate = 1;
            continue;
        }
        r = flag_value("keygen", argc, argv, &i, "--key-file", &a->path);
        if (r == 0) {
            r = flag_value("keygen", argc, argv, &i, "--remove", &a->remove);
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            fprintf(stderr, "beacon keygen: unknown argument \"%s\" (see "
                    "beacon keygen --help)\n", argv[i]);
            return -1;
        }
    }
    if (a->path == NULL) {
        fprintf(stderr, "beacon keygen: --key-file PATH is required\n");
        return -1;
    }
    if (a->rotate && a->remove != NULL) {
        fprintf(stderr, "beacon keygen: --rotate and --remove go in "
                "separate runs\n");
        return -1;
    }
    return 0;
}


static int
cmd_keygen(int argc, char **argv)
{
    struct keygen_args a = { 0 };
    unsigned long long id = 0;
    unsigned new_id;
    char err[ERR_LEN];
    int rc;

    if (parse_keygen_args(argc, argv, &a) != 0) {
        return 2;
    }
    if (a.help) {
        fputs(keygen_usage, stdout);
        return 0;
    }
    if (a.remove != NULL && parse_id(a.remove, 255, &id) != 0) {
        fprintf(stderr, "beacon keygen: --remove: not a key id (1..255) "
                "\"%.40s\"\n", a.remove);
        return 2;
    }

    if (a.rotate) {
        rc = keys_rotate(a.path, &new_id, err, sizeof(err));
    } else if (a.remove != NULL) {
        rc = keys_remove(a.path, (unsigned) id, err, sizeof(err));
    } else {
        rc = keys_create(a.path, err, sizeof(err));
    }
    if (rc != 0) {
        fprintf(stderr, "beacon keygen: %s\n", err);
        return 1;
    }

    if (a.rotate) {
        printf("added key %u to %s; it signs new tokens, the older keys "
               "still verify (SIGHUP reloads a running server)\n", new_id,
               a.path);
    } else if (a.remove != NULL) {
        printf("removed key %llu from %s; its tokens are refused once the "
               "server reloads (SIGHUP)\n", id, a.path);
    } else {
        printf("created %s\n", a.path);
    }
    return 0;
}


/* Opens an existing database: an API key command must not create one. */
static int
open_existing_db(const char *db, struct store **st)
{
    char err[ERR_LEN];

    *st = NULL;
    if (access(db, R_OK | W_OK) != 0) {
        fprintf(stderr, "beacon apikey: cannot use %.200s: %s (beacon "
                "serve --db creates it)\n", db, strerror(errno));
        return -1;
    }
    if (store_open(st, db, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "beacon apikey: %.200s: %s\n", db, err);
        return -1;
    }
    return 0;
}


static int
apikey_add(struct store *st, int scope)
{
    unsigned char raw[32], hash[STORE_API_KEY_HASH_BYTES];
    char key[64];
    int64_t id;
    int rc;

    /* 256 random bits, base64url: the form the API key file uses. */
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(key, sizeof(key), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_generichash(hash, sizeof(hash), (const unsigned char *) key,
                       strlen(key), NULL, 0);

    rc = store_api_key_add(st, hash, scope, clock_now_ms(), &id);
    if (rc == STORE_OK) {
        printf("%s\n", key);
        fprintf(stderr, "beacon apikey: added key %lld (%s); it is shown "
                "only this once\n", (long long) id,
                scope == STORE_SCOPE_WRITE ? "write" : "read");
    } else {
        fprintf(stderr, "beacon apikey: %s\n", store_errmsg(st));
    }

    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(key, sizeof(key));
    return rc == STORE_OK ? 0 : 1;
}


static int
print_api_key(void *ctx, const struct store_api_key *k)
{
    char created[32], revoked[32];

    (void) ctx;
    format_time(k->created_at_ms, created, sizeof(created));
    if (k->revoked_at_ms != 0) {
        format_time(k->revoked_at_ms, revoked, sizeof(revoked));
    } else {
        snprintf(revoked, sizeof(revoked), "-");
    }
    printf("%-6lld %-6s %-24s %s\n", (long long) k->id,
           k->scope == STORE_SCOPE_WRITE ? "write" : "read", created,
           revoked);
    return 0;
}


static int
apikey_list(struct store *st)
{
    printf("%-6s %-6s %-24s %s\n", "ID", "SCOPE", "CREATED", "REVOKED");
    if (store_api_keys(st, 0, print_api_key, NULL) != STORE_OK) {
        fprintf(stderr, "beacon apikey: %s\n", store_errmsg(st));
        return 1;
    }
    return 0;
}


static int
apikey_revoke(struct store *st, int64_t id)
{
    int rc = store_api_key_revoke(st, id, clock_now_ms());

    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "beacon apikey: no API key in force has id %lld "
                "(see beacon apikey list)\n", (long long) id);
        return 1;
    }
    if (rc != STORE_OK) {
        fprintf(stderr, "beacon apikey: %s\n", store_errmsg(st));
        return 1;
    }
    printf("revoked API key %lld\n", (long long) id);
    return 0;
}


struct apikey_args {
    const char *action;
    const char *db;
    const char *scope;
    const char *id;
};


static int
parse_apikey_args(int argc, char **argv, struct apikey_args *a)
{
    int r;

    a->action = argv[0];
    for (int i = 1; i < argc; i++) {
        r = flag_value("apikey", argc, argv, &i, "--db", &a->db);
        if (r == 0) {
            r = flag_value("apikey", argc, argv, &i, "--scope", &a->scope);
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0 && strcmp(a->action, "revoke") == 0 && a->id == NULL
            && strncmp(argv[i], "--", 2) != 0) {
            a->id = argv[i];
        } else if (r == 0) {
            fprintf(stderr, "beacon apikey %s: unknown argument \"%.60s\" "
                    "(see beacon apikey --help)\n", a->action, argv[i]);
            return -1;
        }
    }
    if (a->db == NULL) {
        fprintf(stderr, "beacon apikey: --db PATH is required\n");
        return -1;
    }
    return 0;
}


/* Checks what each action needs; *scope and *id receive the values. */
static int
check_apikey_args(const struct apikey_args *a, int *scope,
                  unsigned long long *id)
{
    int is_add = strcmp(a->action, "add") == 0;

    if (is_add && a->scope == NULL) {
        fprintf(stderr, "beacon apikey add: --scope read|write is "
                "required\n");
        return -1;
    }
    if (a->scope != NULL && !is_add) {
        fprintf(stderr, "beacon apikey %s: --scope is for add only\n",
                a->action);
        return -1;
    }
    if (is_add) {
        *scope = strcmp(a->scope, "read") == 0 ? STORE_SCOPE_READ
                 : strcmp(a->scope, "write") == 0 ? STORE_SCOPE_WRITE : -1;
        if (*scope < 0) {
            fprintf(stderr, "beacon apikey add: --scope must be read or "
                    "write, not \"%.40s\"\n", a->scope);
            return -1;
        }
    }
    if (strcmp(a->action, "revoke") == 0
        && (a->id == NULL || parse_id(a->id, INT64_MAX, id) != 0)) {
        fprintf(stderr, "beacon apikey revoke: needs the ID of a key (a "
                "whole number from beacon apikey list), not \"%.40s\"\n",
                a->id != NULL ? a->id : "");
        return -1;
    }
    return 0;
}


static int
cmd_apikey(int argc, char **argv)
{
    struct apikey_args a = { 0 };
    struct store *st;
    unsigned long long id = 0;
    int scope = 0, rc;

    if (argc == 0 || strcmp(argv[0], "--help") == 0
        || strcmp(argv[0], "-h") == 0) {
        fputs(apikey_usage, argc == 0 ? stderr : stdout);
        return argc == 0 ? 2 : 0;
    }
    if (strcmp(argv[0], "add") != 0 && strcmp(argv[0], "list") != 0
        && strcmp(argv[0], "revoke") != 0) {
        fprintf(stderr, "beacon apikey: unknown action \"%.40s\"; use add, "
                "list or revoke (see beacon apikey --help)\n", argv[0]);
        return 2;
    }
    if (parse_apikey_args(argc, argv, &a) != 0
        || check_apikey_args(&a, &scope, &id) != 0) {
        return 2;
    }

    if (open_existing_db(a.db, &st) != 0) {
        return 1;
    }
    if (strcmp(a.action, "add") == 0) {
        rc = apikey_add(st, scope);
    } else if (strcmp(a.action, "list") == 0) {
        rc = apikey_list(st);
    } else {
        rc = apikey_revoke(st, (int64_t) id);
    }
    store_close(st);
    return rc;
}


static void
classify_with_rules(void *ctx, const struct store_fetch_facts *f,
                    struct store_verdict *v)
{
    rules_classify(ctx, f, v);
}


static int
cmd_reclassify(int argc, char **argv)
{
    const char *db = NULL, *rules_path = NULL;
    struct rules *rules = NULL;
    struct store *st = NULL;
    int64_t rows = 0, changed = 0;
    char err[ERR_LEN];
    int rc = 1;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(reclassify_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) {
            rules_path = argv[++i];
        } else {
            fprintf(stderr, "beacon reclassify: unknown argument \"%s\" "
                    "(see beacon reclassify --help)\n", argv[i]);
            return 2;
        }
    }
    if (db == NULL || rules_path == NULL) {
        fprintf(stderr, "beacon reclassify: --db and --rules are "
                "required\n");
        return 2;
    }

    /* An existing database only: reclassifying must not create one. */
    if (access(db, R_OK | W_OK) != 0) {
        snprintf(err, sizeof(err), "cannot use %.200s: %s", db,
                 strerror(errno));
    } else if (rules_load(&rules, rules_path, err, sizeof(err)) == 0
               && store_open(&st, db, err, sizeof(err)) == STORE_OK) {
        if (store_reclassify(st, classify_with_rules, rules, &rows,
                             &changed) == STORE_OK) {
            printf("reclassified %lld fetch rows, %lld changed class\n",
                   (long long) rows, (long long) changed);
            rc = 0;
        } else {
            snprintf(err, sizeof(err), "%s", store_errmsg(st));
        }
    }

    if (rc != 0) {
        fprintf(stderr, "beacon reclassify: %s\n", err);
    }
    store_close(st);
    rules_free(rules);
    return rc;
}


/* Reads a seed: decimal digits only, within 64 bits. */
static int
parse_seed(const char *s, uint64_t *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = (uint64_t) v;
    return 0;
}


static int
parse_demo_args(int argc, char **argv, const char **db,
                struct demo_options *o, int *help)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (i + 1 == argc || (strcmp(a, "--db") != 0
                              && strcmp(a, "--seed") != 0
                              && strcmp(a, "--rules") != 0)) {
            fprintf(stderr, "beacon demo: unknown argument or missing "
                    "value \"%s\" (see beacon demo --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--db") == 0) {
            *db = v;
        } else if (strcmp(a, "--rules") == 0) {
            o->rules_path = v;
        } else if (parse_seed(v, &o->seed) != 0) {
            fprintf(stderr, "beacon demo: --seed: not a whole number "
                    "\"%s\"\n", v);
            return -1;
        }
    }
    if (*db == NULL || (*db)[0] == '\0') {
        fprintf(stderr, "beacon demo: --db PATH is required\n");
        return -1;
    }
    return 0;
}


static int
cmd_demo(int argc, char **argv)
{
    struct serve_config defaults;
    struct demo_options o;
    struct demo_counts n;
    struct store *st = NULL;
    const char *db = NULL;
    char err[ERR_LEN];
    int help = 0, rc = 1;

    /* The rules serve would use, so the demo classifies as it would. */
    config_defaults(&defaults);
    o = (struct demo_options) {
        .rules_path = defaults.rules, .seed = DEMO_SEED_DEFAULT,
        .now_ms = clock_now_ms()
    };
    if (parse_demo_args(argc, argv, &db, &o, &help) != 0) {
        return 2;
    }
    if (help) {
        printf(demo_usage, DEMO_SEED_DEFAULT);
        return 0;
    }

    if (make_parent_dirs(db, err, sizeof(err)) == 0
        && store_open(&st, db, err, sizeof(err)) == STORE_OK
        && demo_fill(st, &o, &n, err, sizeof(err)) == 0) {
        printf("beacon demo: wrote %lld customers, %lld tickets, %lld "
               "messages, %lld fetches and %lld customer replies to %s "
               "(seed %llu)\n", (long long) n.customers,
               (long long) n.tickets, (long long) n.messages,
               (long long) n.fetches, (long long) n.replies, db,
               (unsigned long long) o.seed);
        rc = 0;
    } else {
        fprintf(stderr, "beacon demo: %s: %s\n", db, err);
    }
    store_close(st);
    return rc;
}


int
main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "beacon: libsodium failed to initialise\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (argc < 2 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("beacon %s\n", BEACON_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) {
        return cmd_serve(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "keygen") == 0) {
        return cmd_keygen(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "apikey") == 0) {
        return cmd_apikey(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "reclassify") == 0) {
        return cmd_reclassify(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "demo") == 0) {
        return cmd_demo(argc - 2, argv + 2);
    }

    fprintf(stderr, "beacon: unknown command \"%s\" (see beacon --help)\n",
            argv[1]);
    return 2;
}
