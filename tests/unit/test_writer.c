/*
 * test_writer.c - the open writer: batches reach the store, unknown
 * messages are counted, a locked database holds opens back (dropping and
 * counting those past the queue's capacity) and writing resumes by itself
 * when the lock goes; User-Agents are capped and made valid UTF-8.
 */
#include <stdlib.h>
#include <time.h>

#include <sqlite3.h>

#include "store/store.h"
#include "store/writer.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/beacon-writer-XXXXXX";
static char db_path[64];


static int64_t
add_message(struct store *st, const char *ticket)
{
    struct store_message_in m = {
        .ticket_id = ticket, .recipient = "ann@example.com",
        .domain = "example.com", .kind = "reply", .sent_at_ms = 1000,
        .registered_at_ms = 1000
    };
    int64_t id = -1;

    CHECK(store_message_add(st, &m, &id) == STORE_OK);
    return id;
}


struct opens_seen {
    int n;
    char ua[STORE_UA_MAX + 1];
};


static int
on_row(void *ctx, const struct store_ticket_row *r)
{
    struct opens_seen *seen = ctx;

    if (r->has_open) {
        seen->n++;
        snprintf(seen->ua, sizeof(seen->ua), "%s", r->open_user_agent);
    }
    return 0;
}


static struct opens_seen
opens_of(struct store *st, const char *ticket)
{
    struct opens_seen seen = { 0 };

    CHECK(store_ticket_read(st, ticket, on_row, &seen) == STORE_OK);
    return seen;
}


static void
writer_should_write_and_count_unknown(struct store *reader)
{
    char err[256];
    struct writer *w;
    struct writer_stats s;
    struct store *st;
    int64_t id = add_message(reader, "t1");

    CHECK(store_open(&st, db_path, err, sizeof(err)) == STORE_OK);
    CHECK(writer_start(&w, st, 64, err, sizeof(err)) == 0);

    for (int i = 0; i < 10; i++) {
        CHECK(writer_push(w, id, 2000 + i, "192.0.2.0", "Mail/1.0") == 0);
    }
    CHECK(writer_push(w, id + 1000, 3000, "192.0.2.0", "Mail/1.0") == 0);
    writer_flush(w);
    writer_stats(w, &s);

    CHECK(s.queued == 11 && s.written == 10 && s.unknown == 1);
    CHECK(s.dropped == 0 && s.pending == 0 && s.batches >= 1);
    CHECK(opens_of(reader, "t1").n == 10);
    writer_stop(w);
}


static void
writer_should_cap_and_clean_user_agents(struct store *reader)
{
    char err[256], ua[700];
    struct writer *w;
    struct store *st;
    struct opens_seen seen;
    int64_t id = add_message(reader, "t2");

    CHECK(store_open(&st, db_path, err, sizeof(err)) == STORE_OK);
    CHECK(writer_start(&w, st, 64, err, sizeof(err)) == 0);

    /* 511 ASCII bytes then a two-byte character straddling the cap. */
    memset(ua, 'a', sizeof(ua));
    memcpy(ua + 511, "\xc3\xa9", 2);
    ua[600] = '\0';
    CHECK(writer_push(w, id, 5000, "192.0.2.0", ua) == 0);
    writer_flush(w);
    seen = opens_of(reader, "t2");
    CHECK(seen.n == 1 && strlen(seen.ua) == 511);

    CHECK(writer_push(w, id, 5001, "192.0.2.0", NULL) == 0);
    writer_flush(w);
    seen = opens_of(reader, "t2");
    CHECK(seen.n == 2);
    CHECK_STR(seen.ua, "");

    CHECK(writer_push(w, id, 5002, "192.0.2.0", "bad\xff\x01ok\xc3") == 0);
    writer_flush(w);
    seen = opens_of(reader, "t2");
    CHECK(seen.n == 3);
    CHECK_STR(seen.ua, "bad??ok?");

    writer_stop(w);
}


/* Holds an exclusive lock from a second connection while opens arrive. */
static void
writer_should_wait_out_a_lock_and_drop_past_capacity(struct store *reader)
{
    char err[256];
    struct writer *w;
    struct writer_stats s;
    struct store *st;
    sqlite3 *locker;
    int64_t id = add_message(reader, "t3");
    int refused = 0;

    CHECK(store_open(&st, db_path, err, sizeof(err)) == STORE_OK);
    CHECK(writer_start(&w, st, 16, err, sizeof(err)) == 0);

    CHECK(sqlite3_open(db_path, &locker) == SQLITE_OK);
    CHECK(sqlite3_exec(locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL)
          == SQLITE_OK);

    /* One batch is taken and retried; the other buffer holds 16 more. */
    for (int i = 0; i < 40; i++) {
        refused += writer_push(w, id, 6000 + i, "192.0.2.0", "x") != 0;
        nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
    }
    writer_stats(w, &s);
    CHECK(refused > 0 && s.dropped == (uint64_t) refused);
    CHECK(s.written == 0);

    CHECK(sqlite3_exec(locker, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(locker);
    writer_flush(w);
    writer_stats(w, &s);
    CHECK(s.written == (uint64_t) (40 - refused));
    CHECK(opens_of(reader, "t3").n == 40 - refused);
    writer_stop(w);
}


int
main(void)
{
    char err[256];
    struct store *reader;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(db_path, sizeof(db_path), "%s/beacon.db", dir);
    if (store_open(&reader, db_path, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return 1;
    }

    writer_should_write_and_count_unknown(reader);
    writer_should_cap_and_clean_user_agents(reader);
    writer_should_wait_out_a_lock_and_drop_past_capacity(reader);

    store_close(reader);
    snprintf(err, sizeof(err), "rm -rf %s", dir);
    CHECK(system(err) == 0);
    return check_done();
}
