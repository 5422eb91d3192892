/*
 * writer.c - the one thread that writes fetches to the store.
 *
 * Two fixed buffers: pixel threads append to the filling one under a
 * short lock; the writer swaps it for the empty one and commits what it
 * took in one transaction while the next batch fills.  Under load the
 * batches grow by themselves, which is what lets SQLite keep up (one
 * row per transaction cannot).  Nothing here allocates after start.
 *
 * A batch that fails (locked, read-only, full disk) is kept and retried
 * with a growing pause; new fetches meanwhile fill the other buffer and,
 * once it is full, are dropped and counted.  The reply to the reader
 * never depends on any of this.
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

#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000
#define FAIL_LOG_INTERVAL_MS 10000
#define STOP_RETRIES 20

struct writer {
    pthread_mutex_t lock;
    pthread_cond_t wake;            /* work arrived, or stop */
    pthread_cond_t progress;        /* a batch finished */
    pthread_t thread;
    struct store *st;
    store_classify_fn *classify;
    void *classify_ctx;

    struct store_fetch_rec *bufs[2];
    size_t capacity;
    struct store_fetch_rec *fill;    /* pixel threads append here */
    size_t n_fill;

    int stopping;
    int idle;                       /* the writer waits on wake */
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
    int64_t last_log = 0;
    int tries = 0;

    for (size_t i = 0; i < n; i++) {
        text_sanitize(v[i].user_agent);
    }

    for (;;) {
        int rc = store_fetches_write(w->st, v, n, w->classify,
                                     w->classify_ctx, res);
        int64_t now;

        if (rc == STORE_OK) {
            if (tries > 0) {
                log_msg(LOG_INFO, "writer.recovered", "tries=%d n=%zu",
                        tries, n);
            }
            return 0;
        }

        tries++;
        now = monotonic_ms();
        if (last_log == 0 || now - last_log >= FAIL_LOG_INTERVAL_MS) {
            log_msg(LOG_WARN, "writer.batch_failed",
                    "n=%zu tries=%d rc=%d msg=\"%s\"", n, tries, rc,
                    store_errmsg(w->st));
            last_log = now;
        }

        pthread_mutex_lock(&w->lock);
        w->stats.failures++;
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (stopping && tries >= STOP_RETRIES) {
            log_msg(LOG_ERROR, "writer.batch_lost", "n=%zu", n);
            return n;
        }

        sleep_ms(pause);
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
}


static void *
writer_main(void *arg)
{
    struct writer *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct store_write_result res = { 0 };
        struct store_fetch_rec *batch;
        size_t n, lost;

        while (w->n_fill == 0 && !w->stopping) {
            w->idle = 1;
            pthread_cond_wait(&w->wake, &w->lock);
            w->idle = 0;
        }
        if (w->n_fill == 0) {
            break;
        }

        batch = w->fill;
        n = w->n_fill;
        w->fill = batch == w->bufs[0] ? w->bufs[1] : w->bufs[0];
        w->n_fill = 0;
        pthread_mutex_unlock(&w->lock);

        lost = commit_batch(w, batch, n, &res);

        pthread_mutex_lock(&w->lock);
        if (lost == 0) {
            w->stats.written += n - res.unknown;
            w->stats.unknown += res.unknown;
            w->stats.collapsed += res.collapsed;
            w->stats.not_kept += res.not_kept;
        }
        w->stats.dropped += lost;
        w->stats.batches += lost == 0;
        w->done += n;
        pthread_cond_broadcast(&w->progress);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
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
        w->bufs[0] = calloc(capacity, sizeof(struct store_fetch_rec));
        w->bufs[1] = calloc(capacity, sizeof(struct store_fetch_rec));
    }
    if (w == NULL || w->bufs[0] == NULL || w->bufs[1] == NULL) {
        snprintf(err, errlen, "writer: out of memory for %zu fetches",
                 capacity);
        goto fail;
    }

    w->st = st;
    w->classify = classify;
    w->classify_ctx = ctx;
    w->capacity = capacity;
    w->fill = w->bufs[0];
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->progress, NULL);

    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        snprintf(err, errlen, "writer: cannot start thread");
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->progress);
        goto fail;
    }

    *out = w;
    return 0;

fail:
    if (w != NULL) {
        free(w->bufs[0]);
        free(w->bufs[1]);
        free(w);
    }
    store_close(st);
    return -1;
}


/* Copies at most max bytes of src, not cutting a UTF-8 sequence. */
static void
copy_capped(char *dst, const char *src, size_t max)
{
    size_t len = src == NULL ? 0 : strnlen(src, max + 1);

    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char) src[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    if (len > 0) {
        memcpy(dst, src, len);
    }
    dst[len] = '\0';
}


int
writer_push(struct writer *w, int64_t message_id, int64_t at_ms,
            int is_head, const char *addr, const char *user_agent,
            const char *referer_host)
{
    struct store_fetch_rec *rec;

    pthread_mutex_lock(&w->lock);
    if (w->n_fill == w->capacity) {
        w->stats.dropped++;
        pthread_mutex_unlock(&w->lock);
        return -1;
    }

    rec = &w->fill[w->n_fill++];
    rec->message_id = message_id;
    rec->at_ms = at_ms;
    rec->is_head = is_head;
    copy_capped(rec->addr, addr, STORE_ADDR_MAX - 1);
    copy_capped(rec->user_agent, user_agent, STORE_UA_MAX);
    copy_capped(rec->referer_host, referer_host, STORE_REFERER_MAX - 1);
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
    free(w->bufs[0]);
    free(w->bufs[1]);
    free(w);
}
