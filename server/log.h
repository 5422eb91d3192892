/*
 * log.h - one line per event on stderr.
 *
 * log_msg(LOG_WARN, "store.batch_failed", "rc=%d n=%zu", rc, n) prints
 *   ts=2026-12-03T17:40:41.123Z level=warn event=store.batch_failed rc=...
 * Lines never carry tokens or keys.
 */
#ifndef BEACON_LOG_H
#define BEACON_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below level are not printed; the default is LOG_INFO. */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn" or "error"; -1 for anything else. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A line any client can cause (a refused request, a failing store seen
 * by every API call) goes through a log_limit, so clients cannot flood
 * the log: at most one such line per interval, saying how many were left
 * out.  Lock-free; racing threads may print one extra line, never lose
 * the count.  Static ones start zeroed: LOG_LIMIT_INIT.
 */
struct log_limit {
    _Atomic int64_t last_ms;
    atomic_uint_fast64_t skipped;
};

#define LOG_LIMIT_INIT { 0, 0 }

/* 1 when a line may be printed now, with *skipped the lines left out
 * since the last; 0 (and counted) otherwise. */
int log_limit_pass(struct log_limit *l, int64_t interval_ms,
                   uint64_t *skipped);

#endif
