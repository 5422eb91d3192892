/*
 * retention.c - the thread that purges old fetch details.
 *
 * Its transactions are short (RETENTION_BATCH messages) and it sleeps
 * PAUSE_MS between them, so a writer batch waiting for the lock waits
 * one short transaction at most; the pixel path itself never waits on
 * the database (writer.h).  It runs at nice RETENTION_NICE, like the
 * API workers.
 */
#define _GNU_SOURCE     /* syscall(), for the thread id setpriority wants */

#include "store/retention.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/clock.h"
#include "server/log.h"

#define RETENTION_NICE 10
#define PAUSE_MS 20

struct retention {
    pthread_mutex_t lock;
    pthread_cond_t wake;            /* stop */
    pthread_t thread;
    struct store *st;
    unsigned days;
    int stopping;
};


static int
is_stopping(struct retention *r)
{
    int stopping;

    pthread_mutex_lock(&r->lock);
    stopping = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return stopping;
}


/*
 * The batches of one pass; stops early when r (NULL: never) is asked to
 * stop.
 */
static int
pass_batches(struct store *st, int64_t cutoff, unsigned pause_ms,
             struct retention *r, struct store_purge_result *res)
{
    struct timespec pause = {
        (time_t) (pause_ms / 1000), (long) (pause_ms % 1000) * 1000000L
    };
    int64_t cursor = 0;
    int rc;

    do {
        rc = store_purge_details(st, cutoff, RETENTION_BATCH, &cursor, res);
        if (rc == STORE_OK && cursor != 0 && pause_ms > 0) {
            nanosleep(&pause, NULL);
        }
        if (r != NULL && is_stopping(r)) {
            break;
        }
    } while (rc == STORE_OK && cursor != 0);
    return rc;
}


int
retention_pass(struct store *st, int64_t now_ms, unsigned days,
               unsigned pause_ms, struct store_purge_result *res)
{
    memset(res, 0, sizeof(*res));
    return pass_batches(st, now_ms - (int64_t) days * RETENTION_DAY_MS,
                        pause_ms, NULL, res);
}


/* As workers.c: a purge waits for the pixel path, not the reverse. */
static void
lower_priority(void)
{
    pid_t tid = (pid_t) syscall(SYS_gettid);

    (void) setpriority(PRIO_PROCESS, (id_t) tid, RETENTION_NICE);
}


/* One pass, logged: what went, or why it stopped. */
static void
run_pass(struct retention *r)
{
    struct store_purge_result res;
    int rc;

    memset(&res, 0, sizeof(res));
    rc = pass_batches(r->st, clock_now_ms()
                      - (int64_t) r->days * RETENTION_DAY_MS, PAUSE_MS, r,
                      &res);
    if (rc != STORE_OK) {
        log_msg(LOG_WARN, "retention.failed", "rc=%d err=\"%s\" "
                "messages=%lld rows=%lld", rc, store_errmsg(r->st),
                (long long) res.messages, (long long) res.rows);
        return;
    }
    log_msg(res.rows > 0 ? LOG_INFO : LOG_DEBUG, "retention.purged",
            "days=%u messages=%lld rows=%lld fetches=%lld", r->days,
            (long long) res.messages, (long long) res.rows,
            (long long) res.fetches);
}


/* Waits up to ms or until stop; returns whether stopping. */
static int
wait_or_stop(struct retention *r, int64_t ms)
{
    struct timespec until;
    int stopping;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t) (ms / 1000);
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&r->lock);
    while (!r->stopping
           && pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0) {
        continue;
    }
    stopping = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return stopping;
}


static void *
retention_main(void *arg)
{
    struct retention *r = arg;

    lower_priority();
    do {
        run_pass(r);
    } while (!wait_or_stop(r, RETENTION_INTERVAL_MS));
    return NULL;
}


int
retention_start(struct retention **out, const char *db_path, unsigned days,
                char *err, size_t errlen)
{
    struct retention *r;
    int rc;

    *out = NULL;
    if (days == 0) {
        snprintf(err, errlen, "retention: days must be at least 1");
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "retention: out of memory");
        return -1;
    }
    r->days = days;
    if (store_open(&r->st, db_path, err, errlen) != STORE_OK) {
        free(r);
        return -1;
    }

    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    rc = pthread_create(&r->thread, NULL, retention_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "retention: thread: %s", strerror(rc));
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        store_close(r->st);
        free(r);
        return -1;
    }

    log_msg(LOG_INFO, "retention.started", "days=%u interval_s=%d", days,
            RETENTION_INTERVAL_MS / 1000);
    *out = r;
    return 0;
}


void
retention_stop(struct retention *r)
{
    if (r == NULL) {
        return;
    }

    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);

    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    store_close(r->st);
    free(r);
}
