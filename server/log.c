/*
 * log.c - one line per event on stderr, with a fixed prefix of time,
 * level and event name, so a person can grep by any of them.
 */
#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };


void
log_set_level(enum log_level level)
{
    min_level = level;
}


int
log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}


void
log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char line[1024];
    int n;
    va_list ap;

    if (level < min_level) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 level_names[level], event);
    if (n < 0 || (size_t) n >= sizeof(line)) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
    va_end(ap);

    /* One fputs per line keeps lines whole when threads log together. */
    fprintf(stderr, "%s\n", line);
}


int
log_limit_pass(struct log_limit *l, int64_t interval_ms, uint64_t *skipped)
{
    struct timespec ts;
    int64_t now, last;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    last = atomic_load(&l->last_ms);
    if (last != 0 && now - last < interval_ms) {
        atomic_fetch_add(&l->skipped, 1);
        return 0;
    }

    atomic_store(&l->last_ms, now);
    *skipped = atomic_exchange(&l->skipped, 0);
    return 1;
}
