/*
 * writer.c - the one thread that writes fetches to the store.
 *
 * Two fixed buffers: pixel threads append to the filling one under a
 * short lock; the writer swaps it for the empty one and commits what it
 * took, in transactions of up to CHUNK fetches, while the next batch
 * fills.  Under load the batches grow by themselves, which is what lets
 * SQLite keep up (one row per transaction cannot).  A queued fetch is
 * packed (its strings at their own length, not in fixed arrays), so a
 * deep queue stays small in memory.  Nothing here allocates after start.
 *
 * When the filling buffer is full while the writer commits the other,
 * a pixel thread waits (at most wait_ms) for the swap: under a load the
 * writer cannot keep up with, the pixel path slows to the writer's pace
 * instead of losing opens.
 *
 * A batch that fails (locked, read-only, full disk) is kept and retried
 * with a growing pause; new fetches meanwhile fill the other buffer and,
 * once it is full, are dropped and counted without waiting: the reply
 * to the reader never waits on a failing store.  A write that has waited
 * WRITER_STALL_MS on a lock counts as failing for that purpose too, as
 * SQLite's busy handler may hold it for seconds before it fails.  Failures
 * are logged at most once per FAIL_LOG_INTERVAL_MS, whatever the number
 * of batches.
 */
#include "store/writer.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/log.h"
#include "server/text.h"
#include "store/store.h"

#define CHUNK 512                   /* fetches per store transaction */
#define PACKED_AVG 192              /* bytes a queued fetch may average */
#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000
#define FAIL_LOG_INTERVAL_MS 10000
#define STOP_RETRIES 20
#define REOPEN_INTERVAL_MS 2000

/*
 * A fetch waiting in the queue: this header, then its address, User-Agent
 * and Referer host, each NUL-terminated, the whole padded to 8 bytes.
 */
struct packed {
    int64_t message_id;
    int64_t at_ms;
    uint16_t size;                  /* bytes, header included */
    uint8_t is_head;
};

struct queue_buf {
    unsigned char *data;
    size_t used;                    /* bytes */
    size_t n;                       /* fetches */
};

struct writer {
    pthread_mutex_t lock;
    pthread_cond_t wake;            /* work arrived, or stop */
    pthread_cond_t progress;        /* a batch finished */
    pthread_cond_t room;            /* the filling buffer was swapped */
    pthread_t thread;
    struct store *st;
    store_classify_fn *classify;
    void *classify_ctx;

    struct queue_buf bufs[2];
    size_t capacity;                /* fetches per buffer */
    size_t bytes;                   /* bytes per buffer */
    struct queue_buf *fill;         /* pixel threads append here */
    struct store_fetch_rec *chunk;  /* CHUNK records, unpacked */

    int stopping;
    int idle;                       /* the writer waits on wake */
    int failing;                    /* the last try of a batch failed */
    int64_t busy_since;             /* when the running write began, or 0 */
    char reason[WRITER_REASON_MAX]; /* why the last try failed */
    int64_t last_log;               /* when a failure was last logged */
    int fail_logged;                /* a failure was logged, no recovery */
    writer_reopen_fn *reopen;
    void *reopen_ctx;
    int64_t last_reopen;
    unsigned wait_ms;
    uint64_t done;                  /* fetches written, unknown or lost */
    struct writer_stats stats;
};


static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}


static int64_t
monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* Marks the start (at > 0) or the end (0) of one store write. */
static void
set_busy(struct writer *w, int64_t at)
{
    pthread_mutex_lock(&w->lock);
    w->busy_since = at;
    pthread_mutex_unlock(&w->lock);
}


/* True while the write in progress has waited WRITER_STALL_MS.  Lock held. */
static int
stalled(const struct writer *w, int64_t now)
{
    return w->busy_since != 0 && now - w->busy_since >= WRITER_STALL_MS;
}


/*
 * Replaces the store handle with a new one, at most every
 * REOPEN_INTERVAL_MS, after a failure that is not a lock.  Only this
 * thread uses w->st, so no lock is needed to swap it.
 */
static void
maybe_reopen(struct writer *w, int rc, int64_t now)
{
    struct store *fresh = NULL;

    if (w->reopen == NULL || rc == STORE_BUSY
        || now - w->last_reopen < REOPEN_INTERVAL_MS) {
        return;
    }
    w->last_reopen = now;
    if (w->reopen(w->reopen_ctx, &fresh) == 0 && fresh != NULL) {
        store_close(w->st);
        w->st = fresh;
    }
}


/* Records a failed try: reason, counters, and a log line per interval. */
static void
note_failure(struct writer *w, int rc, size_t n, int tries, int64_t now)
{
    pthread_mutex_lock(&w->lock);
    snprintf(w->reason, sizeof(w->reason), "%s", store_errmsg(w->st));
    w->stats.failures++;
    w->failing = 1;
    pthread_cond_broadcast(&w->room);
    uint64_t failures = w->stats.failures;
    int log_now = w->last_log == 0
                  || now - w->last_log >= FAIL_LOG_INTERVAL_MS;
    if (log_now) {
        w->last_log = now;
        w->fail_logged = 1;
    }
    pthread_mutex_unlock(&w->lock);

    if (log_now) {
        log_msg(LOG_WARN, "writer.batch_failed",
                "n=%zu tries=%d failures=%llu rc=%d msg=\"%s\"", n, tries,
                (unsigned long long) failures, rc, store_errmsg(w->st));
    }
}


/* After a failure: the store took a batch again. */
static void
note_recovery(struct writer *w, size_t n, int tries)
{
    int log_now;

    pthread_mutex_lock(&w->lock);
    w->failing = 0;
    w->reason[0] = '\0';
    log_now = w->fail_logged;
    w->fail_logged = 0;
    pthread_mutex_unlock(&w->lock);
    if (log_now) {
        log_msg(LOG_INFO, "writer.recovered", "tries=%d n=%zu", tries, n);
    }
}


/*
 * Commits one batch, retrying while the store refuses it.  When stopping,
 * gives up after STOP_RETRIES tries so a dead disk cannot hang shutdown.
 * Returns the fetches given up on (lost).
 */
static size_t
commit_batch(struct writer *w, struct store_fetch_rec *v, size_t n,
             struct store_write_result *res)
{
    long pause = RETRY_MIN_MS;
    int tries = 0;

    for (size_t i = 0; i < n; i++) {
        text_sanitize(v[i].user_agent);
    }

    for (;;) {
        int rc, stopping;
        int64_t now;

        set_busy(w, monotonic_ms());
        rc = store_fetches_write(w->st, v, n, w->classify, w->classify_ctx,
                                 res);
        set_busy(w, 0);
        if (rc == STORE_OK) {
            if (tries > 0) {
                note_recovery(w, n, tries);
            }
            return 0;
        }

        tries++;
        now = monotonic_ms();
        note_failure(w, rc, n, tries, now);
        pthread_mutex_lock(&w->lock);
        stopping = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (stopping && tries >= STOP_RETRIES) {
            log_msg(LOG_ERROR, "writer.batch_lost", "n=%zu", n);
            return n;
        }

        sleep_ms(pause);
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
        maybe_reopen(w, rc, monotonic_ms());
    }
}


/* Unpacks the queued fetch at p into rec; returns the next one. */
static const unsigned char *
unpack(const unsigned char *p, struct store_fetch_rec *rec)
{
    struct packed h;
    const char *str;

    memcpy(&h, p, sizeof(h));
    rec->message_id = h.message_id;
    rec->at_ms = h.at_ms;
    rec->is_head = h.is_head;

    str = (const char *) p + sizeof(h);
    strcpy(rec->addr, str);
    str += strlen(str) + 1;
    strcpy(rec->user_agent, str);
    str += strlen(str) + 1;
    strcpy(rec->referer_host, str);
    return p + h.size;
}


/* Adds what one committed chunk of k fetches did to the counters. */
static void
account(struct writer *w, size_t k, size_t lost,
        const struct store_write_result *res)
{
    pthread_mutex_lock(&w->lock);
    if (lost == 0) {
        w->stats.written += k - res->unknown;
        w->stats.unknown += res->unknown;
        w->stats.collapsed += res->collapsed;
        w->stats.not_kept += res->not_kept;
        w->stats.batches++;
    }
    w->stats.dropped += lost;
    w->done += k;
    pthread_cond_broadcast(&w->progress);
    pthread_mutex_unlock(&w->lock);
}


/* Writes every fetch of a buffer the pixel threads no longer fill. */
static void
write_queued(struct writer *w, struct queue_buf *batch)
{
    const unsigned char *p = batch->data;

    for (size_t left = batch->n; left > 0;) {
        struct store_write_result res = { 0 };
        size_t k = left < CHUNK ? left : CHUNK, lost;

        for (size_t i = 0; i < k; i++) {
            p = unpack(p, &w->chunk[i]);
        }
        lost = commit_batch(w, w->chunk, k, &res);
        account(w, k, lost, &res);
        left -= k;
    }
    batch->used = 0;
    batch->n = 0;
}


static void *
writer_main(void *arg)
{
    struct writer *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct queue_buf *batch;

        while (w->fill->n == 0 && !w->stopping) {
            w->idle = 1;
            pthread_cond_wait(&w->wake, &w->lock);
            w->idle = 0;
        }
        if (w->fill->n == 0) {
            break;
        }

        batch = w->fill;
        w->fill = batch == &w->bufs[0] ? &w->bufs[1] : &w->bufs[0];
        pthread_cond_broadcast(&w->room);
        pthread_mutex_unlock(&w->lock);

        write_queued(w, batch);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}


/* A condition variable whose timed waits run on the monotonic clock. */
static void
init_monotonic_cond(pthread_cond_t *c)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}


int
writer_start(struct writer **out, struct store *st, size_t capacity,
             store_classify_fn *classify, void *ctx, char *err,
             size_t errlen)
{
    struct writer *w;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w != NULL) {
        w->bytes = capacity * PACKED_AVG;
        w->bufs[0].data = malloc(w->bytes);
        w->bufs[1].data = malloc(w->bytes);
        w->chunk = calloc(CHUNK, sizeof(struct store_fetch_rec));
    }
    if (w == NULL || w->bufs[0].data == NULL || w->bufs[1].data == NULL
        || w->chunk == NULL) {
        snprintf(err, errlen, "writer: out of memory for %zu fetches",
                 capacity);
        goto fail;
    }

    w->st = st;
    w->classify = classify;
    w->classify_ctx = ctx;
    w->capacity = capacity;
    w->fill = &w->bufs[0];
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->progress, NULL);
    init_monotonic_cond(&w->room);

    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        snprintf(err, errlen, "writer: cannot start thread");
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->progress);
        pthread_cond_destroy(&w->room);
        goto fail;
    }

    *out = w;
    return 0;

fail:
    if (w != NULL) {
        free(w->bufs[0].data);
        free(w->bufs[1].data);
        free(w->chunk);
        free(w);
    }
    store_close(st);
    return -1;
}


/* How many bytes of src to keep: at most max, not cutting UTF-8. */
static size_t
capped_len(const char *src, size_t max)
{
    size_t len = src == NULL ? 0 : strnlen(src, max + 1);

    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char) src[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    return len;
}


static unsigned char *
put_string(unsigned char *p, const char *s, size_t len)
{
    if (len > 0) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    return p + len + 1;
}


void
writer_set_wait(struct writer *w, unsigned ms)
{
    pthread_mutex_lock(&w->lock);
    w->wait_ms = ms;
    pthread_mutex_unlock(&w->lock);
}


/* The filling buffer takes one more fetch of size bytes.  Lock held. */
static int
has_room(const struct writer *w, size_t size)
{
    return w->fill->n < w->capacity && w->fill->used + size <= w->bytes;
}


/*
 * Waits, lock held, until the writer swaps in an empty buffer, at most
 * wait_ms, and only while the store is not failing: a failing batch may
 * take seconds and the reply must not.  1 when there is room now.
 */
static int
wait_for_room(struct writer *w, size_t size)
{
    struct timespec until;

    if (w->wait_ms == 0 || w->failing || w->stopping
        || stalled(w, monotonic_ms())) {
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += w->wait_ms / 1000;
    until.tv_nsec += (long) (w->wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }

    w->stats.waited++;
    while (!has_room(w, size) && !w->failing && !w->stopping
           && !stalled(w, monotonic_ms())) {
        if (pthread_cond_timedwait(&w->room, &w->lock, &until) != 0) {
            break;
        }
    }
    return has_room(w, size);
}


int
writer_push(struct writer *w, int64_t message_id, int64_t at_ms,
            int is_head, const char *addr, const char *user_agent,
            const char *referer_host)
{
    size_t la = capped_len(addr, STORE_ADDR_MAX - 1);
    size_t lu = capped_len(user_agent, STORE_UA_MAX);
    size_t lr = capped_len(referer_host, STORE_REFERER_MAX - 1);
    size_t size = (sizeof(struct packed) + la + lu + lr + 3 + 7) & ~(size_t) 7;
    struct packed h = { message_id, at_ms, (uint16_t) size,
                        (uint8_t) (is_head != 0) };
    unsigned char *p;

    pthread_mutex_lock(&w->lock);
    if (!has_room(w, size) && !wait_for_room(w, size)) {
        w->stats.dropped++;
        pthread_mutex_unlock(&w->lock);
        return -1;
    }

    p = w->fill->data + w->fill->used;
    memcpy(p, &h, sizeof(h));
    p = put_string(p + sizeof(h), addr, la);
    p = put_string(p, user_agent, lu);
    put_string(p, referer_host, lr);
    w->fill->used += size;
    w->fill->n++;
    w->stats.queued++;
    if (w->idle) {
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->lock);
    return 0;
}


void
writer_stats(struct writer *w, struct writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    out->pending = (size_t) (w->stats.queued - w->done);
    pthread_mutex_unlock(&w->lock);
}


void
writer_set_reopen(struct writer *w, writer_reopen_fn *fn, void *ctx)
{
    pthread_mutex_lock(&w->lock);
    w->reopen = fn;
    w->reopen_ctx = ctx;
    pthread_mutex_unlock(&w->lock);
}


int
writer_health(struct writer *w, char *reason, size_t len)
{
    int64_t now = monotonic_ms();
    int rc = 0;

    pthread_mutex_lock(&w->lock);
    if (w->failing) {
        snprintf(reason, len, "writing opens fails, %zu waiting: %s",
                 (size_t) (w->stats.queued - w->done), w->reason);
        rc = -1;
    } else if (stalled(w, now)) {
        snprintf(reason, len, "writing opens has waited %lld ms for the "
                 "database (locked by another process?), %zu waiting",
                 (long long) (now - w->busy_since),
                 (size_t) (w->stats.queued - w->done));
        rc = -1;
    } else if (len > 0) {
        reason[0] = '\0';
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}


void
writer_flush(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t target = w->stats.queued;

    while (w->done < target) {
        pthread_cond_wait(&w->progress, &w->lock);
    }
    pthread_mutex_unlock(&w->lock);
}


void
writer_stop(struct writer *w)
{
    if (w == NULL) {
        return;
    }

    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_cond_broadcast(&w->room);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);

    log_msg(LOG_INFO, "writer.stopped",
            "written=%llu unknown=%llu dropped=%llu batches=%llu",
            (unsigned long long) w->stats.written,
            (unsigned long long) w->stats.unknown,
            (unsigned long long) w->stats.dropped,
            (unsigned long long) w->stats.batches);

    store_close(w->st);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->progress);
    pthread_cond_destroy(&w->room);
    free(w->bufs[0].data);
    free(w->bufs[1].data);
    free(w->chunk);
    free(w);
}
