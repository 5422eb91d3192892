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


/* Adds up the fetches of a ticket; keeps the newest row's User-Agent. */
static int
on_row(void *ctx, const struct store_ticket_row *r)
{
    struct opens_seen *seen = ctx;

    if (r->has_fetch) {
        seen->n += (int) r->fetch_count;
        snprintf(seen->ua, sizeof(seen->ua), "%s", r->fetch_user_agent);
    }
    return 0;
}


/* Every fetch is a person's, but for the class a HEAD must have. */
static void
classify_all_human(void *ctx, const struct store_fetch_facts *f,
                   struct store_verdict *v)
{
    (void) ctx;
    memset(v, 0, sizeof(*v));
    v->cls = f->is_head ? STORE_HEAD_PROBE : STORE_HUMAN;
    snprintf(v->rule, sizeof(v->rule), "test");
    snprintf(v->reason, sizeof(v->reason), "test");
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
    CHECK(writer_start(&w, st, 64, classify_all_human, NULL, err,
                       sizeof(err)) == 0);

    for (int i = 0; i < 10; i++) {
        CHECK(writer_push(w, id, 2000 + i, 0, "192.0.2.0", "Mail/1.0",
                          NULL) == 0);
    }
    CHECK(writer_push(w, id + 1000, 3000, 0, "192.0.2.0", "Mail/1.0",
                      NULL) == 0);
    writer_flush(w);
    writer_stats(w, &s);

    /* The ten identical fetches within a minute share one row. */
    CHECK(s.queued == 11 && s.written == 10 && s.unknown == 1);
    CHECK(s.collapsed == 9 && s.not_kept == 0);
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
    CHECK(writer_start(&w, st, 64, classify_all_human, NULL, err,
                       sizeof(err)) == 0);

    /* 511 ASCII bytes then a two-byte character straddling the cap. */
    memset(ua, 'a', sizeof(ua));
    memcpy(ua + 511, "\xc3\xa9", 2);
    ua[600] = '\0';
    CHECK(writer_push(w, id, 5000, 0, "192.0.2.0", ua, NULL) == 0);
    writer_flush(w);
    seen = opens_of(reader, "t2");
    CHECK(seen.n == 1 && strlen(seen.ua) == 511);

    CHECK(writer_push(w, id, 5001, 0, "192.0.2.0", NULL, NULL) == 0);
    writer_flush(w);
    seen = opens_of(reader, "t2");
    CHECK(seen.n == 2);
    CHECK_STR(seen.ua, "");

    CHECK(writer_push(w, id, 5002, 0, "192.0.2.0", "bad\xff\x01ok\xc3",
                      NULL) == 0);
    writer_flush(w);
    seen = opens_of(reader, "t2");
    CHECK(seen.n == 3);
    CHECK_STR(seen.ua, "bad??ok?");

    /* Overlong, surrogate, past U+10FFFF; then valid 2, 3, 4 bytes. */
    CHECK(writer_push(w, id, 5003, 0, "192.0.2.0",
                      "\xe0\x80\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|"
                      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", NULL) == 0);
    writer_flush(w);
    seen = opens_of(reader, "t2");
    CHECK_STR(seen.ua, "???|???|????|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");

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
    CHECK(writer_start(&w, st, 16, classify_all_human, NULL, err,
                       sizeof(err)) == 0);

    CHECK(sqlite3_open(db_path, &locker) == SQLITE_OK);
    CHECK(sqlite3_exec(locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL)
          == SQLITE_OK);

    /* One batch is taken and retried; the other buffer holds 16 more. */
    for (int i = 0; i < 40; i++) {
        refused += writer_push(w, id, 6000 + i, 0, "192.0.2.0", "x",
                               NULL) != 0;
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


/* classify_all_human(), a millisecond a fetch: a writer slower than
 * the pushes. */
static void
classify_slowly(void *ctx, const struct store_fetch_facts *f,
                struct store_verdict *v)
{
    nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
    classify_all_human(ctx, f, v);
}


/* Pushes n fetches as fast as one thread can; returns those refused. */
static int
push_burst(struct writer *w, int64_t id, int n, int64_t at)
{
    int refused = 0;

    for (int i = 0; i < n; i++) {
        refused += writer_push(w, id, at + i, 0, "192.0.2.0", "x", NULL)
                   != 0;
    }
    return refused;
}


/* A busy writer slows the pushes down instead of losing them. */
static void
writer_should_wait_for_room_instead_of_dropping(struct store *reader)
{
    char err[256];
    struct writer *w;
    struct writer_stats s;
    struct store *st;
    int64_t id = add_message(reader, "t4");
    int refused;

    CHECK(store_open(&st, db_path, err, sizeof(err)) == STORE_OK);
    CHECK(writer_start(&w, st, 16, classify_slowly, NULL, err,
                       sizeof(err)) == 0);

    /* Without a wait, pushes past two buffers' worth are lost. */
    refused = push_burst(w, id, 200, 10000);
    writer_flush(w);
    writer_stats(w, &s);
    CHECK(refused > 0 && s.dropped == (uint64_t) refused);
    CHECK(s.waited == 0);

    writer_set_wait(w, 5000);
    refused = push_burst(w, id, 200, 20000);
    writer_flush(w);
    writer_stats(w, &s);
    CHECK(refused == 0);
    CHECK(s.waited > 0);
    CHECK(s.written == (uint64_t) (400 - (int) s.dropped));
    CHECK(opens_of(reader, "t4").n == (int) s.written);
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
    writer_should_wait_for_room_instead_of_dropping(reader);

    store_close(reader);
    snprintf(err, sizeof(err), "rm -rf %s", dir);
    CHECK(system(err) == 0);
    return check_done();
}
