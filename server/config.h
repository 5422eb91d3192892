/*
 * config.h - the settings of `beacon serve`, from defaults, then
 * BEACON_* environment variables, then command-line flags.
 */
#ifndef BEACON_CONFIG_H
#define BEACON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "server/cidr.h"

#define CONFIG_TRUSTED_MAX 32

struct serve_config {
    const char *listen;
    const char *db;
    const char *key_file;
    const char *api_key_file;
    const char *base_url;           /* NULL: http:// + the listen address */
    const char *static_dir;
    const char *rules;
    const char *log_level;
    unsigned threads;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    unsigned idle_timeout_s;
    unsigned queue_size;
    unsigned fetch_rows_max;
    unsigned clip_threshold;
    unsigned call_hide_hours;
    unsigned queue_wait_ms;
    unsigned retain_days;           /* 0: keep fetch details forever */
    struct cidr trusted[CONFIG_TRUSTED_MAX];
    size_t n_trusted;
    char base_url_buf[200];         /* base_url without a trailing '/' */
};

void config_defaults(struct serve_config *c);

/*
 * Applies the environment, then argv (flags as "--name value" or
 * "--name=value").  Sets *help when --help is given.  Returns 0, or -1
 * with a one-line reason in err.
 */
int config_parse(struct serve_config *c, int argc, char **argv, int *help,
                 char *err, size_t errlen);

/* Prints the flag table, with environment names and defaults. */
void config_usage(FILE *out);

#endif
