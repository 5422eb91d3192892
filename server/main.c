/*
 * main.c - the beacon command: serve, keygen, reclassify, demo, help.
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
#include "server/classify.h"
#include "server/clock.h"
#include "server/config.h"
#include "server/demo.h"
#include "server/http.h"
#include "server/keys.h"
#include "server/log.h"
#include "store/store.h"
#include "store/writer.h"

#define ERR_LEN 512

static const char usage_text[] =
    "usage: beacon COMMAND [FLAGS]\n\n"
    "Commands:\n"
    "  serve       serve the pixel, the JSON API and the static pages\n"
    "  keygen      create a signing key file\n"
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
    "usage: beacon keygen --key-file PATH\n\n"
    "Creates a signing key file (mode 0600).  Refuses to overwrite one.\n";


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


/*
 * Blocks until SIGINT or SIGTERM and returns it; on SIGHUP reloads the
 * rules file (keeping the old rules when the new file is bad).
 */
static int
wait_for_stop(const sigset_t *set, struct classifier *classifier)
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
            (void) classifier_reload(classifier, err, sizeof(err));
        }
    }
}


struct running {
    const struct serve_config *cfg;
    struct keyring keys;
    struct classifier *classifier;
    char api_key[KEYS_API_KEY_MAX];
    struct writer *writer;
    struct api *api;
    struct http_server *http;
};


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
    run->cfg = c;
    writer_set_reopen(run->writer, reopen_writer_store, run);

    acfg = (struct api_config) {
        .db_path = c->db, .keys = &run->keys, .api_key = run->api_key,
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
    int created;

    if (make_parent_dirs(c->key_file, err, errlen) != 0
        || keys_load_or_create(&run->keys, c->key_file, &created, err,
                               errlen) != 0) {
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
    writer_stop(run->writer);
    api_free(run->api);
    classifier_free(run->classifier);
    keys_clear(&run->keys);
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
    int help, fd, sig;

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
    if (http_listen(c.listen, &fd, url, sizeof(url), err, sizeof(err)) != 0) {
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
        .idle_timeout_s = c.idle_timeout_s, .keys = &run.keys,
        .writer = run.writer, .api = run.api, .static_dir = c.static_dir,
        .trusted = c.trusted, .n_trusted = c.n_trusted
    };
    if (http_start(&run.http, &hcfg, err, sizeof(err)) != 0) {
        goto fail;
    }

    log_msg(LOG_INFO, "serve.started", "url=%s db=%s threads=%u", url, c.db,
            c.threads);
    print_banner(url, base_url, &c);
    sig = wait_for_stop(&set, run.classifier);
    log_msg(LOG_INFO, "serve.stopping", "signal=%d", sig);
    stop_all(&run);
    log_msg(LOG_INFO, "serve.stopped", "clean=1");
    return 0;

fail:
    fprintf(stderr, "beacon serve: %s\n", err);
    stop_all(&run);
    return 1;
}


static int
cmd_keygen(int argc, char **argv)
{
    const char *path = NULL;
    char err[ERR_LEN];

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(keygen_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--key-file") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "beacon keygen: --key-file needs a value\n");
                return 2;
            }
            path = argv[++i];
        } else if (strncmp(argv[i], "--key-file=", 11) == 0) {
            path = argv[i] + 11;
        } else {
            fprintf(stderr, "beacon keygen: unknown argument \"%s\" (see "
                    "beacon keygen --help)\n", argv[i]);
            return 2;
        }
    }
    if (path == NULL || path[0] == '\0') {
        fprintf(stderr, "beacon keygen: --key-file PATH is required\n");
        return 2;
    }

    if (keys_create(path, err, sizeof(err)) != 0) {
        fprintf(stderr, "beacon keygen: %s\n", err);
        return 1;
    }
    printf("created %s\n", path);
    return 0;
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
