/*
 * config.c - one table describes every `beacon serve` setting: its flag,
 * its environment variable, where it goes and its help line, so parsing
 * and --help cannot disagree.
 */
#include "server/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"
#include "store/store.h"

#ifndef BEACON_STATIC_DIR
#define BEACON_STATIC_DIR "static"
#endif
#ifndef BEACON_RULES_FILE
#define BEACON_RULES_FILE "rules/beacon.rules"
#endif

enum opt_type { OPT_STRING, OPT_UINT, OPT_CIDRS };

struct opt {
    const char *flag;
    const char *env;
    enum opt_type type;
    size_t offset;
    unsigned min, max;              /* bounds of OPT_UINT */
    const char *help;
};

#define FIELD(name) offsetof(struct serve_config, name)

static const struct opt opts[] = {
    { "--listen", "BEACON_LISTEN", OPT_STRING, FIELD(listen), 0, 0,
      "HOST:PORT to listen on ([::1]:PORT for IPv6; port 0 picks one)" },
    { "--db", "BEACON_DB", OPT_STRING, FIELD(db), 0, 0,
      "SQLite database file (created with its directory)" },
    { "--key-file", "BEACON_KEY_FILE", OPT_STRING, FIELD(key_file), 0, 0,
      "signing keys (created 0600 when missing)" },
    { "--api-key-file", "BEACON_API_KEY_FILE", OPT_STRING,
      FIELD(api_key_file), 0, 0, "API key (created 0600 when missing)" },
    { "--base-url", "BEACON_BASE_URL", OPT_STRING, FIELD(base_url), 0, 0,
      "what pixel URLs start with (default http://LISTEN)" },
    { "--static-dir", "BEACON_STATIC_DIR", OPT_STRING, FIELD(static_dir),
      0, 0, "files served under /" },
    { "--rules", "BEACON_RULES", OPT_STRING, FIELD(rules), 0, 0,
      "rules that tell people from machines (reloaded on SIGHUP)" },
    { "--trusted-proxy", "BEACON_TRUSTED_PROXY", OPT_CIDRS, FIELD(trusted),
      0, 0, "CIDR of a reverse proxy whose X-Forwarded-For is believed; "
      "repeatable (env: comma-separated)" },
    { "--log-level", "BEACON_LOG_LEVEL", OPT_STRING, FIELD(log_level), 0, 0,
      "debug, info, warn or error" },
    { "--threads", "BEACON_THREADS", OPT_UINT, FIELD(threads), 1, 64,
      "HTTP worker threads" },
    { "--max-connections", "BEACON_MAX_CONNECTIONS", OPT_UINT,
      FIELD(max_connections), 1, 100000, "open connections at most" },
    { "--max-connections-per-ip", "BEACON_MAX_CONNECTIONS_PER_IP", OPT_UINT,
      FIELD(max_connections_per_ip), 0, 100000, "open connections from "
      "one client address at most (0: no limit; behind a reverse proxy "
      "every connection comes from the proxy)" },
    { "--idle-timeout", "BEACON_IDLE_TIMEOUT", OPT_UINT,
      FIELD(idle_timeout_s), 1, 3600, "seconds before an idle "
      "connection is closed" },
    { "--queue-size", "BEACON_QUEUE_SIZE", OPT_UINT, FIELD(queue_size),
      16, 1000000, "fetches waiting to be written, at most" },
    { "--queue-wait-ms", "BEACON_QUEUE_WAIT_MS", OPT_UINT,
      FIELD(queue_wait_ms), 0, 10000, "how long a fetch may wait for "
      "room in a full queue while the writer catches up (0: never)" },
    { "--fetch-rows-max", "BEACON_FETCH_ROWS_MAX", OPT_UINT,
      FIELD(fetch_rows_max), 1, 100000, "fetch rows kept per message; "
      "later fetches are only counted" },
    { "--clip-threshold", "BEACON_CLIP_THRESHOLD", OPT_UINT,
      FIELD(clip_threshold), 1, 10000000, "HTML size in bytes from which "
      "the pixel goes at the top (Gmail clips near 102 kB)" },
    { "--call-hide-hours", "BEACON_CALL_HIDE_HOURS", OPT_UINT,
      FIELD(call_hide_hours), 1, 8760, "hours a customer reached by "
      "phone stays off the call list" },
    { "--retain-days", "BEACON_RETAIN_DAYS", OPT_UINT, FIELD(retain_days),
      0, 36500, "days a fetch's network, User-Agent and Referer are "
      "kept; older ones are purged hourly, counts stay (0: forever)" },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))


void
config_defaults(struct serve_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:8080";
    c->db = "data/beacon.db";
    c->key_file = "data/signing.key";
    c->api_key_file = "data/api.key";
    c->static_dir = BEACON_STATIC_DIR;
    c->rules = BEACON_RULES_FILE;
    c->log_level = "info";
    c->threads = 2;
    c->max_connections = 4096;
    c->max_connections_per_ip = 256;
    c->idle_timeout_s = 30;
    c->queue_size = 8192;
    c->queue_wait_ms = 250;
    c->fetch_rows_max = STORE_FETCH_ROWS_DEFAULT;
    c->clip_threshold = 90000;
    c->call_hide_hours = 168;
}


/* Adds the comma-separated networks in value to c->trusted. */
static int
add_cidrs(struct serve_config *c, const char *value, const char *source,
          char *err, size_t errlen)
{
    char buf[64];

    while (*value != '\0') {
        size_t len = strcspn(value, ",");

        if (len == 0 || len >= sizeof(buf)
            || c->n_trusted == CONFIG_TRUSTED_MAX) {
            snprintf(err, errlen, "%s: expected at most %d networks like "
                     "10.0.0.0/8, got \"%s\"", source, CONFIG_TRUSTED_MAX,
                     value);
            return -1;
        }
        memcpy(buf, value, len);
        buf[len] = '\0';
        if (cidr_parse(buf, &c->trusted[c->n_trusted]) != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not a network (CIDR)",
                     source, buf);
            return -1;
        }
        c->n_trusted++;
        value += len + (value[len] == ',');
    }
    return 0;
}


static int
set_value(struct serve_config *c, const struct opt *o, const char *value,
          const char *source, char *err, size_t errlen)
{
    char *p = (char *) c + o->offset;
    unsigned long v;
    char *end;

    if (o->type == OPT_CIDRS) {
        return add_cidrs(c, value, source, err, errlen);
    }

    if (o->type == OPT_STRING) {
        if (value[0] == '\0') {
            snprintf(err, errlen, "%s: empty value", source);
            return -1;
        }
        memcpy(p, &value, sizeof(value));
        return 0;
    }

    errno = 0;
    v = strtoul(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || value[0] == '-'
        || v < o->min || v > o->max) {
        snprintf(err, errlen, "%s: expected a whole number from %u to %u, "
                 "got \"%s\"", source, o->min, o->max, value);
        return -1;
    }
    unsigned u = (unsigned) v;
    memcpy(p, &u, sizeof(u));
    return 0;
}


static const struct opt *
find_flag(const char *arg, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strlen(opts[i].flag) == len
            && strncmp(opts[i].flag, arg, len) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}


static int
parse_args(struct serve_config *c, int argc, char **argv, int *help,
           char *err, size_t errlen)
{
    int cidrs_seen = 0;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t) (eq - arg) : strlen(arg);
        const struct opt *o;
        const char *value;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = 1;
            return 0;
        }
        o = strncmp(arg, "--", 2) == 0 ? find_flag(arg, len) : NULL;
        if (o == NULL) {
            snprintf(err, errlen, "unknown argument \"%.*s\" (see "
                     "beacon serve --help)", (int) len, arg);
            return -1;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "%s needs a value", o->flag);
            return -1;
        }
        /* Flags replace the environment's list rather than add to it. */
        if (o->type == OPT_CIDRS && !cidrs_seen) {
            c->n_trusted = 0;
            cidrs_seen = 1;
        }
        if (set_value(c, o, value, o->flag, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}


/*
 * The base URL must be an absolute http(s) URL with a host; one trailing
 * slash is dropped so "URL/p/..." never doubles it.
 */
static int
check_base_url(struct serve_config *c, char *err, size_t errlen)
{
    const char *u = c->base_url;
    const char *host = strncmp(u, "https://", 8) == 0 ? u + 8
                       : strncmp(u, "http://", 7) == 0 ? u + 7 : NULL;
    size_t len = strlen(u);

    if (host == NULL || *host == '\0' || *host == '/' || len >= 200
        || strpbrk(u, " \"'<>\\?#") != NULL) {
        snprintf(err, errlen, "--base-url: expected http://HOST[:PORT][/PATH] "
                 "or https://..., got \"%.200s\"", u);
        return -1;
    }
    if (u[len - 1] == '/') {
        snprintf(c->base_url_buf, sizeof(c->base_url_buf), "%.*s",
                 (int) (len - 1), u);
        c->base_url = c->base_url_buf;
    }
    return 0;
}


int
config_parse(struct serve_config *c, int argc, char **argv, int *help,
             char *err, size_t errlen)
{
    *help = 0;
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);

        if (v != NULL
            && set_value(c, &opts[i], v, opts[i].env, err, errlen) != 0) {
            return -1;
        }
    }

    if (parse_args(c, argc, argv, help, err, errlen) != 0) {
        return -1;
    }

    if (c->base_url != NULL && check_base_url(c, err, errlen) != 0) {
        return -1;
    }
    if (log_level_parse(c->log_level) < 0) {
        snprintf(err, errlen, "--log-level: expected debug, info, warn or "
                 "error, got \"%s\"", c->log_level);
        return -1;
    }
    return 0;
}


void
config_usage(FILE *out)
{
    struct serve_config d;

    config_defaults(&d);
    fprintf(out, "usage: beacon serve [FLAGS]\n\n"
            "Serves the pixel, the JSON API and the static pages.\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *p = (const char *) &d + opts[i].offset;

        fprintf(out, "  %-18s %s\n  %-18s env %s", opts[i].flag,
                opts[i].help, "", opts[i].env);
        if (opts[i].type == OPT_CIDRS) {
            fputc('\n', out);
        } else if (opts[i].type == OPT_UINT) {
            unsigned u;

            memcpy(&u, p, sizeof(u));
            fprintf(out, ", default %u\n", u);
        } else {
            const char *s;

            memcpy(&s, p, sizeof(s));
            if (s != NULL) {
                fprintf(out, ", default %s", s);
            }
            fputc('\n', out);
        }
    }
}
