/*
 * retention.h - purging old fetch details on a timer (--retain-days).
 *
 * A thread of its own, at a low CPU priority and on its own store
 * handle, runs a pass at start and then every RETENTION_INTERVAL_MS: it
 * deletes the network, User-Agent and Referer host of fetches older
 * than the retention period in short transactions (store_purge_details()),
 * pausing between them so the writer's batches never wait long for the
 * database.  Reports keep every count (see store.h).
 */
#ifndef BEACON_RETENTION_H
#define BEACON_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define RETENTION_INTERVAL_MS (60 * 60 * 1000)
#define RETENTION_BATCH 64          /* messages per transaction */

#define RETENTION_DAY_MS (INT64_C(24) * 3600 * 1000)

struct retention;

/*
 * One whole pass on st: purges the details of fetches last seen before
 * now_ms - days, a batch at a time, pausing pause_ms between batches.
 * Fills *res.  STORE_OK, or the store's error (what was committed
 * before it stays purged).
 */
int retention_pass(struct store *st, int64_t now_ms, unsigned days,
                   unsigned pause_ms, struct store_purge_result *res);

/*
 * Starts the thread on a new handle to db_path; days must be at least 1.
 * -1 with a message in err.
 */
int retention_start(struct retention **out, const char *db_path,
                    unsigned days, char *err, size_t errlen);

/* Stops the thread (a pass in progress ends at its batch) and closes
 * its handle.  NULL ok. */
void retention_stop(struct retention *r);

#endif
