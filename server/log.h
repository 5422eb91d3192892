/*
 * log.h - one line per event on stderr.
 *
 * log_msg(LOG_WARN, "store.batch_failed", "rc=%d n=%zu", rc, n) prints
 *   ts=2026-12-03T17:40:41.123Z level=warn event=store.batch_failed rc=...
 * Lines never carry tokens or keys.
 */
#ifndef BEACON_LOG_H
#define BEACON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below level are not printed; the default is LOG_INFO. */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn" or "error"; -1 for anything else. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
