/*
 * writer.h - the single thread that writes fetches.
 *
 * The pixel path calls writer_push(), which copies the fetch into a
 * bounded in-memory batch and returns without touching the database.  The
 * writer thread swaps the batch out and commits it in one transaction, so
 * a fetch never waits on SQLite.  When the batch is full because the
 * writer is busy, writer_push() waits a bounded time for room
 * (writer_set_wait()); when the store is failing, or the wait runs out,
 * the open is dropped and counted.
 *
 * A batch the store refuses (locked, read-only, full) stays queued and is
 * retried until it is written; writer_health() says so meanwhile.
 */
#ifndef BEACON_WRITER_H
#define BEACON_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
struct writer;

struct writer_stats {
    uint64_t queued;        /* accepted by writer_push() */
    uint64_t written;       /* committed to the store */
    uint64_t unknown;       /* skipped: no such message */
    uint64_t collapsed;     /* counted on an identical earlier fetch */
    uint64_t not_kept;      /* over the per-message rows cap: counted */
    uint64_t dropped;       /* refused: queue full */
    uint64_t waited;        /* pushes that waited for room */
    uint64_t batches;       /* transactions committed */
    uint64_t failures;      /* batches that failed and were retried */
    size_t pending;         /* waiting to be written now */
};

/*
 * Starts the writer thread on st, which it owns from now on (closed by
 * writer_stop(), also when this fails).  capacity bounds the fetches
 * waiting to be written (and, at 192 bytes a fetch on average, the
 * memory they take); classify (with ctx) labels each as it is written
 * and must stay valid until writer_stop().
 */
int writer_start(struct writer **out, struct store *st, size_t capacity,
                 store_classify_fn *classify, void *ctx, char *err,
                 size_t errlen);

/*
 * How long writer_push() may wait for room in a full queue while the
 * writer is committing (0, the default: never).  The wait slows the
 * pixel threads to the writer's pace instead of losing opens; it never
 * happens while the store is failing, so a locked or full database
 * cannot hold up replies.
 */
void writer_set_wait(struct writer *w, unsigned ms);

/*
 * Queues one fetch; user_agent may be NULL and is cut to STORE_UA_MAX
 * bytes, referer_host may be NULL.  Returns 0, or -1 when the queue is
 * full (counted as dropped).  Thread-safe; never waits on the database,
 * only (see writer_set_wait()) for the writer to take a full batch.
 */
int writer_push(struct writer *w, int64_t message_id, int64_t at_ms,
                int is_head, const char *addr, const char *user_agent,
                const char *referer_host);

void writer_stats(struct writer *w, struct writer_stats *out);

/*
 * Opens a new store handle set up like the writer's first one, into *out;
 * 0, or -1 when it cannot (the writer then keeps its handle).
 */
typedef int writer_reopen_fn(void *ctx, struct store **out);

/*
 * Lets the writer replace its handle while batches fail for a reason
 * other than a lock, at most every few seconds: a file that was read-only
 * when it was opened stays read-only on that handle after a chmod, and
 * only a new handle sees it writable.  fn and ctx must stay valid until
 * writer_stop().  Without it the writer keeps its handle.
 */
void writer_set_reopen(struct writer *w, writer_reopen_fn *fn, void *ctx);

#define WRITER_STALL_MS 1000
#define WRITER_REASON_MAX 256

/*
 * 0 while opens are being written.  -1 while the store refuses them (the
 * last try of a batch failed) or one write has waited on the database for
 * WRITER_STALL_MS or more (another process holds a lock); reason then
 * says which, in words and SQLite's message (no tokens, no keys).
 */
int writer_health(struct writer *w, char *reason, size_t len);

/* Waits until everything pushed so far is committed or failed. */
void writer_flush(struct writer *w);

/* Writes what is queued, stops the thread, closes the store.  NULL ok. */
void writer_stop(struct writer *w);

#endif
