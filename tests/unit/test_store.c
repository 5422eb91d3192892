/*
 * test_store.c - unit tests of the SQLite store (store/store_sqlite.c).
 *
 * Every test works on its own database file in a fresh directory under
 * /tmp, removed at the end.  The store is driven through store.h only;
 * a raw sqlite3 connection reads the file back to check what was really
 * written, and injects failures (a trigger, a held write lock).
 */
#include "store/store.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

static int passed;
static int failed;

#define CHECK(expr)                                                     \
    do {                                                                \
        if (expr) {                                                     \
            passed++;                                                   \
        } else {                                                        \
            failed++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,      \
                    __LINE__, #expr);                                   \
        }                                                               \
    } while (0)

#define MAX_ROWS 16
#define TEXT_MAX 600

#define TMP_PREFIX "/tmp/beacon-test-store-"

static char tmp_dir[sizeof(TMP_PREFIX) + 6];


/* A database path in the test directory, named after the test. */
static void
db_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s.db", tmp_dir, name);
}


static struct store *
open_store(const char *path)
{
    struct store *st = NULL;
    char err[256] = "";

    if (store_open(&st, path, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "store_open %s: %s\n", path, err);
    }
    return st;
}


/* The first column of the first row of sql on a raw connection, or -1. */
static int64_t
raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK
        && sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    } else {
        fprintf(stderr, "raw_int %s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}


/* The first column of the first row as text ("<null>" for NULL). */
static void
raw_text(const char *path, const char *sql, char *out, size_t len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    const unsigned char *t;

    snprintf(out, len, "<error>");
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK
        && sqlite3_step(s) == SQLITE_ROW) {
        t = sqlite3_column_text(s, 0);
        snprintf(out, len, "%s", t != NULL ? (const char *) t : "<null>");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}


/* Runs sql on a raw connection; 0 on success. */
static int
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc;

    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE
                         | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        fprintf(stderr, "raw_exec %s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return rc;
}


/* Registers a message with no customer fields; returns its id or 0. */
static int64_t
add(struct store *st, const char *ticket, const char *recipient,
    const char *domain, const char *kind, int64_t sent_at)
{
    struct store_message_in m = {
        .ticket_id = ticket, .recipient = recipient, .domain = domain,
        .kind = kind, .sent_at_ms = sent_at, .registered_at_ms = 42,
    };
    int64_t id = 0;

    if (store_message_add(st, &m, &id) != STORE_OK) {
        fprintf(stderr, "add: %s\n", store_errmsg(st));
    }
    return id;
}


/* Registers a reply from a customer with a value. */
static int64_t
add_valued(struct store *st, const char *ticket, const char *recipient,
           double value, int64_t sent_at)
{
    struct store_message_in m = {
        .ticket_id = ticket, .recipient = recipient, .domain = "x.com",
        .kind = "reply", .sent_at_ms = sent_at, .registered_at_ms = 42,
        .customer_fields = STORE_CUSTOMER_VALUE, .customer_value = value,
    };
    int64_t id = 0;

    if (store_message_add(st, &m, &id) != STORE_OK) {
        fprintf(stderr, "add_valued: %s\n", store_errmsg(st));
    }
    return id;
}


static struct store_open_rec
open_rec(int64_t message_id, int64_t at, const char *addr, const char *ua)
{
    struct store_open_rec o;

    memset(&o, 0, sizeof(o));
    o.message_id = message_id;
    o.at_ms = at;
    snprintf(o.addr, sizeof(o.addr), "%s", addr);
    snprintf(o.user_agent, sizeof(o.user_agent), "%s", ua);
    return o;
}


/* Writes one open; returns the store code. */
static int
open1(struct store *st, int64_t message_id, int64_t at)
{
    struct store_open_rec o = open_rec(message_id, at, "192.0.2.0", "UA");
    size_t unknown = 99;

    return store_opens_write(st, &o, 1, &unknown);
}


static void
test_open_creates_schema(void)
{
    char path[256];
    char text[64];
    struct store *st;

    db_path(path, sizeof(path), "schema");
    st = open_store(path);
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    CHECK(store_ping(st) == STORE_OK);
    CHECK(strcmp(store_errmsg(st), "") == 0);

    CHECK(raw_int(path, "PRAGMA user_version") == 1);
    raw_text(path, "PRAGMA journal_mode", text, sizeof(text));
    CHECK(strcmp(text, "wal") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                  " type = 'table' AND name IN"
                  " ('customers', 'messages', 'opens')") == 3);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                  " type = 'index' AND name IN ('messages_by_ticket',"
                  " 'messages_by_customer', 'messages_by_sent',"
                  " 'opens_by_message')") == 4);

    store_close(st);
    store_close(NULL);
    CHECK(strcmp(store_errmsg(NULL), "no store handle") == 0);
}


static void
test_reopen_keeps_data(void)
{
    char path[256];
    struct store *st;
    int64_t id;

    db_path(path, sizeof(path), "reopen");
    st = open_store(path);
    id = add(st, "T1", "a@b.com", "b.com", "reply", 1000);
    CHECK(id == 1);
    CHECK(open1(st, id, 2000) == STORE_OK);
    store_close(st);

    st = open_store(path);
    CHECK(st != NULL);
    CHECK(raw_int(path, "PRAGMA user_version") == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM messages") == 1);
    CHECK(raw_int(path, "SELECT open_count FROM messages") == 1);
    CHECK(add(st, "T2", "a@b.com", "b.com", "reply", 1000) == 2);
    store_close(st);
}


static void
test_open_errors(void)
{
    char path[256];
    char err[256] = "";
    struct store *st = (struct store *) &err;   /* must be reset to NULL */

    CHECK(store_open(&st, "/nonexistent-dir/x/beacon.db", err,
                     sizeof(err)) == STORE_ERR);
    CHECK(st == NULL);
    CHECK(strstr(err, "unable to open") != NULL);

    /* A file from a newer Beacon is refused, not damaged. */
    db_path(path, sizeof(path), "newer");
    CHECK(raw_exec(path, "PRAGMA user_version = 7") == SQLITE_OK);
    err[0] = '\0';
    st = (struct store *) &err;
    CHECK(store_open(&st, path, err, sizeof(err)) == STORE_ERR);
    CHECK(st == NULL);
    CHECK(strstr(err, "schema version 7") != NULL);
    CHECK(raw_int(path, "PRAGMA user_version") == 7);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master") == 0);
}


/*
 * N processes open one fresh file at once, ROUNDS times: every one must
 * get a working handle (one migrates, the others wait for it).  A race
 * here fails only now and then, hence the rounds.
 */
static int
open_race_round(const char *path)
{
    enum { N = 16 };
    pid_t pids[N];
    int gate[2];
    int ok = 0;
    int status;
    char c;

    /* The children wait at a gate (a pipe) that opens for all of them
     * at once, when the parent closes its end. */
    if (pipe(gate) != 0) {
        return 0;
    }
    fflush(NULL);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            struct store *st;
            int64_t id;

            close(gate[1]);
            while (read(gate[0], &c, 1) > 0) {
                /* nothing is ever written: wait for end of file */
            }
            st = open_store(path);
            id = st != NULL
                ? add(st, "T", "race@x.com", "x.com", "reply", i) : 0;
            store_close(st);
            _exit(id > 0 ? 0 : 1);
        }
    }
    close(gate[0]);
    close(gate[1]);

    for (int i = 0; i < N; i++) {
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]
            && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        }
    }
    return ok == N
           && raw_int(path, "SELECT count(*) FROM messages") == N
           && raw_int(path, "SELECT count(*) FROM customers") == 1;
}


static void
test_concurrent_first_open(void)
{
    enum { ROUNDS = 40 };
    char path[256];
    char name[32];
    int good = 0;

    for (int r = 0; r < ROUNDS; r++) {
        snprintf(name, sizeof(name), "race%d", r);
        db_path(path, sizeof(path), name);
        good += open_race_round(path);
    }
    CHECK(good == ROUNDS);
    CHECK(raw_int(path, "PRAGMA user_version") == 1);
}


static void
test_message_add_upserts_customer(void)
{
    char path[256];
    char text[64];
    struct store *st;
    struct store_message_in m = {
        .ticket_id = "T1", .recipient = "Ann@Example.COM",
        .domain = "example.com", .kind = "reply", .sent_at_ms = 1000,
        .registered_at_ms = 1001, .header_message_id = "<m1@example.com>",
        .customer_fields = STORE_CUSTOMER_NAME | STORE_CUSTOMER_VALUE,
        .customer_name = "Ann", .customer_phone = "ignored",
        .customer_value = 10.5,
    };
    int64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0;

    db_path(path, sizeof(path), "customers");
    st = open_store(path);
    CHECK(store_message_add(st, &m, &id1) == STORE_OK);
    CHECK(id1 == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM customers") == 1);
    raw_text(path, "SELECT address_key FROM customers", text, sizeof(text));
    CHECK(strcmp(text, "ann@example.com") == 0);
    raw_text(path, "SELECT phone FROM customers", text, sizeof(text));
    CHECK(strcmp(text, "<null>") == 0);
    raw_text(path, "SELECT header_message_id FROM messages", text,
             sizeof(text));
    CHECK(strcmp(text, "<m1@example.com>") == 0);
    CHECK(raw_int(path, "SELECT registered_at FROM messages") == 1001);

    /* Same customer in another case: only the phone is given. */
    m.recipient = "ANN@example.com";
    m.customer_fields = STORE_CUSTOMER_PHONE;
    m.customer_name = "Not Ann";
    m.customer_phone = "+1 555 0100";
    m.customer_value = 99;
    m.header_message_id = NULL;
    CHECK(store_message_add(st, &m, &id2) == STORE_OK);
    CHECK(id2 == 2);
    CHECK(raw_int(path, "SELECT count(*) FROM customers") == 1);
    raw_text(path, "SELECT address || '|' || name || '|' || phone || '|'"
             " || value FROM customers", text, sizeof(text));
    CHECK(strcmp(text, "ANN@example.com|Ann|+1 555 0100|10.5") == 0);

    /* The value alone, then nothing at all. */
    m.recipient = "ann@EXAMPLE.com";
    m.customer_fields = STORE_CUSTOMER_VALUE;
    m.customer_value = 250;
    CHECK(store_message_add(st, &m, &id3) == STORE_OK);
    m.customer_fields = 0;
    m.customer_value = 1;
    CHECK(store_message_add(st, &m, &id4) == STORE_OK);
    CHECK(id3 == 3 && id4 == 4);
    raw_text(path, "SELECT address || '|' || name || '|' || phone || '|'"
             " || value FROM customers", text, sizeof(text));
    CHECK(strcmp(text, "ann@EXAMPLE.com|Ann|+1 555 0100|250.0") == 0);
    CHECK(raw_int(path, "SELECT count(DISTINCT customer_id) FROM messages")
          == 1);
    raw_text(path, "SELECT recipient FROM messages WHERE id = 2", text,
             sizeof(text));
    CHECK(strcmp(text, "ANN@example.com") == 0);
    raw_text(path, "SELECT header_message_id FROM messages WHERE id = 2",
             text, sizeof(text));
    CHECK(strcmp(text, "<null>") == 0);

    store_close(st);
}


/* A rejected message stores nothing, not even its new customer. */
static void
test_message_add_rolls_back(void)
{
    char path[256];
    struct store *st;
    struct store_message_in m = {
        .ticket_id = "T1", .recipient = "new@x.com", .domain = "x.com",
        .kind = "bogus", .sent_at_ms = 1, .registered_at_ms = 1,
        .customer_fields = STORE_CUSTOMER_NAME, .customer_name = "New",
    };
    int64_t id = 77;

    db_path(path, sizeof(path), "rollback");
    st = open_store(path);
    CHECK(store_message_add(st, &m, &id) == STORE_ERR);
    CHECK(id == 0);
    CHECK(strstr(store_errmsg(st), "CHECK constraint failed") != NULL);
    CHECK(raw_int(path, "SELECT count(*) FROM customers") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM messages") == 0);

    m.kind = "reply";
    m.recipient = NULL;
    id = 77;
    CHECK(store_message_add(st, &m, &id) == STORE_ERR);
    CHECK(id == 0);
    CHECK(strstr(store_errmsg(st), "missing") != NULL);

    /* The handle still works, and the failed insert used no id. */
    m.recipient = "new@x.com";
    CHECK(store_message_add(st, &m, &id) == STORE_OK);
    CHECK(id == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM customers") == 1);
    store_close(st);
}


static void
test_opens_write(void)
{
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_open_rec v[5];
    size_t unknown = 99;
    int64_t a, b;

    db_path(path, sizeof(path), "opens");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    b = add(st, "T2", "b@x.com", "x.com", "reply", 100);

    v[0] = open_rec(a, 2000, "192.0.2.0", "Mail/1");
    v[1] = open_rec(a, 1000, "192.0.2.0", "Mail/2");     /* out of order */
    v[2] = open_rec(b, 5000, "2001:db8:1::", "Chrome");
    v[3] = open_rec(9999, 3000, "192.0.2.0", "ghost");   /* unknown */
    v[4] = open_rec(a, 1500, "192.0.2.0", "Mail/3");
    CHECK(store_opens_write(st, v, 5, &unknown) == STORE_OK);
    CHECK(unknown == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM opens") == 4);
    raw_text(path, "SELECT open_count || ',' || first_open_at || ','"
             " || last_open_at FROM messages WHERE id = 1", text,
             sizeof(text));
    CHECK(strcmp(text, "3,1000,2000") == 0);
    raw_text(path, "SELECT open_count || ',' || first_open_at || ','"
             " || last_open_at FROM messages WHERE id = 2", text,
             sizeof(text));
    CHECK(strcmp(text, "1,5000,5000") == 0);
    raw_text(path, "SELECT addr || '|' || user_agent FROM opens"
             " WHERE message_id = 2", text, sizeof(text));
    CHECK(strcmp(text, "2001:db8:1::|Chrome") == 0);

    /* A later batch moves first and last only outwards. */
    v[0] = open_rec(a, 500, "192.0.2.0", "Mail/4");
    v[1] = open_rec(a, 9000, "192.0.2.0", "Mail/5");
    CHECK(store_opens_write(st, v, 2, NULL) == STORE_OK);
    raw_text(path, "SELECT open_count || ',' || first_open_at || ','"
             " || last_open_at FROM messages WHERE id = 1", text,
             sizeof(text));
    CHECK(strcmp(text, "5,500,9000") == 0);

    /* An empty batch is a no-op. */
    unknown = 99;
    CHECK(store_opens_write(st, v, 0, &unknown) == STORE_OK);
    CHECK(unknown == 0);

    /* Full-size fields, and fields that lost their NUL, are cut. */
    memset(v[0].user_agent, 'u', sizeof(v[0].user_agent));
    memset(v[0].addr, 'a', sizeof(v[0].addr));
    CHECK(store_opens_write(st, v, 1, &unknown) == STORE_OK);
    CHECK(raw_int(path, "SELECT max(length(user_agent)) FROM opens")
          == STORE_UA_MAX);
    CHECK(raw_int(path, "SELECT max(length(addr)) FROM opens")
          == STORE_ADDR_MAX - 1);
    store_close(st);
}


/* A batch that fails half-way leaves no trace, and can be retried. */
static void
test_opens_write_failure(void)
{
    char path[256];
    char text[64];
    struct store *st;
    struct store_open_rec v[3];
    size_t unknown = 99;
    int64_t a, b;

    db_path(path, sizeof(path), "opens_fail");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    b = add(st, "T2", "b@x.com", "x.com", "reply", 100);
    CHECK(open1(st, a, 1000) == STORE_OK);

    CHECK(raw_exec(path, "CREATE TRIGGER boom BEFORE INSERT ON opens"
                   " WHEN NEW.user_agent = 'boom'"
                   " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
          == SQLITE_OK);
    v[0] = open_rec(a, 7000, "192.0.2.0", "fine");
    v[1] = open_rec(9999, 7000, "192.0.2.0", "ghost");
    v[2] = open_rec(b, 8000, "192.0.2.0", "boom");
    CHECK(store_opens_write(st, v, 3, &unknown) == STORE_ERR);
    CHECK(unknown == 0);
    CHECK(strstr(store_errmsg(st), "injected failure") != NULL);
    CHECK(raw_int(path, "SELECT count(*) FROM opens") == 1);
    raw_text(path, "SELECT open_count || ',' || last_open_at FROM messages"
             " WHERE id = 1", text, sizeof(text));
    CHECK(strcmp(text, "1,1000") == 0);
    CHECK(raw_int(path, "SELECT open_count FROM messages WHERE id = 2")
          == 0);

    CHECK(raw_exec(path, "DROP TRIGGER boom") == SQLITE_OK);
    CHECK(store_opens_write(st, v, 3, &unknown) == STORE_OK);
    CHECK(unknown == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM opens") == 3);
    raw_text(path, "SELECT open_count || ',' || last_open_at FROM messages"
             " WHERE id = 1", text, sizeof(text));
    CHECK(strcmp(text, "2,7000") == 0);
    store_close(st);
}


/*
 * Another connection holds the write lock past the busy timeout: the
 * batch reports STORE_BUSY, writes nothing, and succeeds once retried.
 * Takes the store's full busy timeout (5 s).
 */
static void
test_opens_write_busy(void)
{
    char path[256];
    struct store *st;
    sqlite3 *db = NULL;
    struct store_open_rec o;
    size_t unknown = 99;
    int64_t a;

    db_path(path, sizeof(path), "busy");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    o = open_rec(a, 1000, "192.0.2.0", "UA");

    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL)
          == SQLITE_OK);
    CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)
          == SQLITE_OK);
    CHECK(store_opens_write(st, &o, 1, &unknown) == STORE_BUSY);
    CHECK(strstr(store_errmsg(st), "locked") != NULL);
    CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);

    CHECK(raw_int(path, "SELECT count(*) FROM opens") == 0);
    CHECK(store_opens_write(st, &o, 1, &unknown) == STORE_OK);
    CHECK(raw_int(path, "SELECT open_count FROM messages") == 1);
    store_close(st);
}


/* What a ticket walk saw, copied out of the callback. */
struct ticket_seen {
    size_t n;
    size_t stop_after;              /* 0: never stop */
    struct {
        int64_t message_id;
        char recipient[64];
        char kind[16];
        int64_t sent_at;
        char header[64];            /* "<null>" for NULL */
        int has_open;
        int64_t open_at;
        char addr[STORE_ADDR_MAX];
        char ua[64];
    } rows[MAX_ROWS];
};


static int
ticket_cb(void *ctx, const struct store_ticket_row *r)
{
    struct ticket_seen *t = ctx;

    if (t->n < MAX_ROWS) {
        t->rows[t->n].message_id = r->message_id;
        snprintf(t->rows[t->n].recipient, 64, "%s", r->recipient);
        snprintf(t->rows[t->n].kind, 16, "%s", r->kind);
        t->rows[t->n].sent_at = r->sent_at_ms;
        snprintf(t->rows[t->n].header, 64, "%s", r->header_message_id
                 != NULL ? r->header_message_id : "<null>");
        t->rows[t->n].has_open = r->has_open;
        t->rows[t->n].open_at = r->open_at_ms;
        snprintf(t->rows[t->n].addr, STORE_ADDR_MAX, "%s",
                 r->has_open ? r->open_addr : "-");
        snprintf(t->rows[t->n].ua, 64, "%s",
                 r->has_open ? r->open_user_agent : "-");
    }
    t->n++;
    return t->stop_after != 0 && t->n >= t->stop_after ? 7 : 0;
}


static void
test_ticket_read(void)
{
    char path[256];
    struct store *st;
    struct store_message_in m = {
        .ticket_id = "T1", .recipient = "A@x.com", .domain = "x.com",
        .kind = "reply", .sent_at_ms = 300, .registered_at_ms = 1,
        .header_message_id = "<late@x.com>",
    };
    struct store_open_rec v[3];
    struct ticket_seen seen;
    int64_t late = 0, early, tie, other;

    db_path(path, sizeof(path), "ticket");
    st = open_store(path);
    CHECK(store_message_add(st, &m, &late) == STORE_OK);
    early = add(st, "T1", "b@x.com", "x.com", "confirmation", 100);
    tie = add(st, "T1", "c@x.com", "x.com", "reply", 300);
    other = add(st, "T2", "a@x.com", "x.com", "reply", 50);
    v[0] = open_rec(late, 900, "192.0.2.0", "second");
    v[1] = open_rec(late, 400, "198.51.100.0", "first");
    v[2] = open_rec(other, 500, "192.0.2.0", "elsewhere");
    CHECK(store_opens_write(st, v, 3, NULL) == STORE_OK);

    memset(&seen, 0, sizeof(seen));
    CHECK(store_ticket_read(st, "T1", ticket_cb, &seen) == STORE_OK);
    CHECK(seen.n == 4);
    CHECK(seen.rows[0].message_id == early);
    CHECK(strcmp(seen.rows[0].kind, "confirmation") == 0);
    CHECK(seen.rows[0].sent_at == 100);
    CHECK(seen.rows[0].has_open == 0);
    CHECK(strcmp(seen.rows[0].header, "<null>") == 0);
    CHECK(strcmp(seen.rows[0].addr, "-") == 0);

    CHECK(seen.rows[1].message_id == late);
    CHECK(strcmp(seen.rows[1].recipient, "A@x.com") == 0);
    CHECK(strcmp(seen.rows[1].header, "<late@x.com>") == 0);
    CHECK(seen.rows[1].has_open == 1);
    CHECK(seen.rows[1].open_at == 400);
    CHECK(strcmp(seen.rows[1].addr, "198.51.100.0") == 0);
    CHECK(strcmp(seen.rows[1].ua, "first") == 0);

    CHECK(seen.rows[2].message_id == late);
    CHECK(seen.rows[2].open_at == 900);
    CHECK(strcmp(seen.rows[2].ua, "second") == 0);

    CHECK(seen.rows[3].message_id == tie);      /* same sent_at: by id */
    CHECK(seen.rows[3].has_open == 0);
    CHECK(seen.rows[3].open_at == 0);

    memset(&seen, 0, sizeof(seen));
    CHECK(store_ticket_read(st, "nope", ticket_cb, &seen)
          == STORE_NOTFOUND);
    CHECK(seen.n == 0);

    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 2;
    CHECK(store_ticket_read(st, "T1", ticket_cb, &seen) == 7);
    CHECK(seen.n == 2);

    /* The walk was reset: the next one starts from the top. */
    memset(&seen, 0, sizeof(seen));
    CHECK(store_ticket_read(st, "T2", ticket_cb, &seen) == STORE_OK);
    CHECK(seen.n == 1 && seen.rows[0].open_at == 500);
    store_close(st);
}


struct domains_seen {
    size_t n;
    struct {
        char domain[32];
        int64_t sent, opened, fetches, last;
    } rows[MAX_ROWS];
};


static int
domains_cb(void *ctx, const struct store_domain_row *r)
{
    struct domains_seen *d = ctx;

    if (d->n < MAX_ROWS) {
        snprintf(d->rows[d->n].domain, 32, "%s", r->domain);
        d->rows[d->n].sent = r->sent;
        d->rows[d->n].opened = r->opened;
        d->rows[d->n].fetches = r->fetches;
        d->rows[d->n].last = r->last_open_at_ms;
    }
    d->n++;
    return 0;
}


static int
stop_cb(void *ctx, const struct store_domain_row *r)
{
    (void) r;
    (*(int *) ctx)++;
    return -42;
}


static void
test_domains(void)
{
    char path[256];
    struct store *st;
    struct domains_seen d;
    int64_t a1, a3, b1, out1;
    int calls = 0;

    db_path(path, sizeof(path), "domains");
    st = open_store(path);
    /* c.com first, so insertion order is not the expected order. */
    add(st, "T", "c@c.com", "c.com", "reply", 1100);
    add(st, "T", "c@c.com", "c.com", "confirmation", 1500);
    a1 = add(st, "T", "a@a.com", "a.com", "reply", 1000);  /* since: in */
    add(st, "T", "a@a.com", "a.com", "reply", 1500);
    a3 = add(st, "T", "a@a.com", "a.com", "reply", 1999);
    out1 = add(st, "T", "a@a.com", "a.com", "reply", 2000); /* until: out */
    add(st, "T", "b@b.com", "b.com", "reply", 999);          /* before */
    b1 = add(st, "T", "b@b.com", "b.com", "reply", 1200);
    add(st, "T", "b@b.com", "b.com", "reply", 1300);

    CHECK(open1(st, a1, 1200) == STORE_OK);
    CHECK(open1(st, a1, 1500) == STORE_OK);
    CHECK(open1(st, a3, 2500) == STORE_OK);
    CHECK(open1(st, out1, 3000) == STORE_OK);
    CHECK(open1(st, b1, 1300) == STORE_OK);

    memset(&d, 0, sizeof(d));
    CHECK(store_domains(st, 1000, 2000, domains_cb, &d) == STORE_OK);
    CHECK(d.n == 3);
    CHECK(strcmp(d.rows[0].domain, "a.com") == 0);
    CHECK(d.rows[0].sent == 3 && d.rows[0].opened == 2);
    CHECK(d.rows[0].fetches == 3 && d.rows[0].last == 2500);
    CHECK(strcmp(d.rows[1].domain, "b.com") == 0);
    CHECK(d.rows[1].sent == 2 && d.rows[1].opened == 1);
    CHECK(d.rows[1].fetches == 1 && d.rows[1].last == 1300);
    CHECK(strcmp(d.rows[2].domain, "c.com") == 0);
    CHECK(d.rows[2].sent == 2 && d.rows[2].opened == 0);
    CHECK(d.rows[2].fetches == 0 && d.rows[2].last == 0);

    /* Widening the window takes in the edges. */
    memset(&d, 0, sizeof(d));
    CHECK(store_domains(st, 999, 2001, domains_cb, &d) == STORE_OK);
    CHECK(d.n == 3);
    CHECK(strcmp(d.rows[0].domain, "a.com") == 0);
    CHECK(d.rows[0].sent == 4 && d.rows[0].opened == 3);
    CHECK(d.rows[0].fetches == 4 && d.rows[0].last == 3000);
    CHECK(strcmp(d.rows[1].domain, "b.com") == 0 && d.rows[1].sent == 3);

    memset(&d, 0, sizeof(d));
    CHECK(store_domains(st, 5000, 6000, domains_cb, &d) == STORE_OK);
    CHECK(d.n == 0);

    CHECK(store_domains(st, 0, 10000, stop_cb, &calls) == -42);
    CHECK(calls == 1);
    store_close(st);
}


struct unopened_seen {
    size_t n;
    struct {
        char recipient[32];
        char name[32];
        char phone[32];
        double value;
        int64_t replies, oldest, newest;
        size_t n_tickets;
        char tickets[200];      /* joined with ',' */
    } rows[MAX_ROWS];
};


static int
unopened_cb(void *ctx, const struct store_unopened_row *r)
{
    struct unopened_seen *u = ctx;
    size_t used = 0;

    if (u->n < MAX_ROWS) {
        snprintf(u->rows[u->n].recipient, 32, "%s", r->recipient);
        snprintf(u->rows[u->n].name, 32, "%s",
                 r->name != NULL ? r->name : "<null>");
        snprintf(u->rows[u->n].phone, 32, "%s",
                 r->phone != NULL ? r->phone : "<null>");
        u->rows[u->n].value = r->value;
        u->rows[u->n].replies = r->replies;
        u->rows[u->n].oldest = r->oldest_ms;
        u->rows[u->n].newest = r->newest_ms;
        u->rows[u->n].n_tickets = r->n_ticket_ids;
        u->rows[u->n].tickets[0] = '\0';
        for (size_t i = 0; i < r->n_ticket_ids && used < 200; i++) {
            int w = snprintf(u->rows[u->n].tickets + used, 200 - used,
                             "%s%s", i > 0 ? "," : "", r->ticket_ids[i]);

            used += w > 0 ? (size_t) w : 0;
        }
    }
    u->n++;
    return 0;
}


/*
 * The call-list fixture, in path:
 * - hi (500): four unopened replies on tickets T1 @300, T9 @200,
 *   T5 @250, T9 @100, and an opened confirmation that must count neither
 *   way;
 * - mid (500, name and phone): one reply @50, so it sorts before hi;
 * - opened (1000): one of two replies opened, never on the list;
 * - low (5): under min_value 10; new (800): its only reply @5000;
 * - conf (900): confirmations only.
 */
static struct store *
unopened_fixture(const char *path)
{
    struct store *st = open_store(path);
    struct store_message_in m = {
        .ticket_id = "T3", .recipient = "Mid@X.com", .domain = "x.com",
        .kind = "reply", .sent_at_ms = 50, .registered_at_ms = 1,
        .customer_fields = STORE_CUSTOMER_NAME | STORE_CUSTOMER_PHONE
                           | STORE_CUSTOMER_VALUE,
        .customer_name = "Mid", .customer_phone = "+1 555 0101",
        .customer_value = 500,
    };
    int64_t id = 0;

    add_valued(st, "T1", "hi@x.com", 500, 300);
    add_valued(st, "T9", "hi@x.com", 500, 200);
    add_valued(st, "T5", "hi@x.com", 500, 250);
    add_valued(st, "T9", "hi@x.com", 500, 100);
    id = add(st, "T7", "HI@x.com", "x.com", "confirmation", 10);
    CHECK(open1(st, id, 20) == STORE_OK);

    CHECK(store_message_add(st, &m, &id) == STORE_OK);

    id = add_valued(st, "T4", "opened@x.com", 1000, 100);
    add_valued(st, "T4", "opened@x.com", 1000, 200);
    CHECK(open1(st, id, 150) == STORE_OK);

    add_valued(st, "T6", "low@x.com", 5, 100);
    add_valued(st, "T8", "new@x.com", 800, 5000);
    add(st, "T2", "conf@x.com", "x.com", "confirmation", 10);
    CHECK(raw_exec(path, "UPDATE customers SET value = 900"
                   " WHERE address_key = 'conf@x.com'") == SQLITE_OK);
    return st;
}


static void
test_unopened(void)
{
    char path[256];
    struct store *st;
    struct unopened_seen u;

    db_path(path, sizeof(path), "unopened");
    st = unopened_fixture(path);

    memset(&u, 0, sizeof(u));
    CHECK(store_unopened(st, 10, 1000, unopened_cb, &u) == STORE_OK);
    CHECK(u.n == 2);
    CHECK(strcmp(u.rows[0].recipient, "Mid@X.com") == 0);
    CHECK(strcmp(u.rows[0].name, "Mid") == 0);
    CHECK(strcmp(u.rows[0].phone, "+1 555 0101") == 0);
    CHECK(u.rows[0].value == 500.0);
    CHECK(u.rows[0].replies == 1);
    CHECK(u.rows[0].oldest == 50 && u.rows[0].newest == 50);
    CHECK(u.rows[0].n_tickets == 1 && strcmp(u.rows[0].tickets, "T3") == 0);

    CHECK(strcmp(u.rows[1].recipient, "HI@x.com") == 0);  /* latest form */
    CHECK(strcmp(u.rows[1].name, "<null>") == 0);
    CHECK(strcmp(u.rows[1].phone, "<null>") == 0);
    CHECK(u.rows[1].value == 500.0);
    CHECK(u.rows[1].replies == 4);
    CHECK(u.rows[1].oldest == 100 && u.rows[1].newest == 300);
    CHECK(u.rows[1].n_tickets == 3);
    CHECK(strcmp(u.rows[1].tickets, "T9,T5,T1") == 0);

    /* Bounds are inclusive: value 5 and a reply sent exactly at 5000. */
    memset(&u, 0, sizeof(u));
    CHECK(store_unopened(st, 5, 5000, unopened_cb, &u) == STORE_OK);
    CHECK(u.n == 4);
    CHECK(strcmp(u.rows[0].recipient, "new@x.com") == 0);
    CHECK(u.rows[0].value == 800.0);
    CHECK(strcmp(u.rows[1].recipient, "Mid@X.com") == 0);
    CHECK(strcmp(u.rows[2].recipient, "HI@x.com") == 0);
    CHECK(strcmp(u.rows[3].recipient, "low@x.com") == 0);
    CHECK(strcmp(u.rows[3].tickets, "T6") == 0);

    /* Just before the only reply of "new", and above every value. */
    memset(&u, 0, sizeof(u));
    CHECK(store_unopened(st, 5, 4999, unopened_cb, &u) == STORE_OK);
    CHECK(u.n == 3);
    memset(&u, 0, sizeof(u));
    CHECK(store_unopened(st, 800.5, 5000, unopened_cb, &u) == STORE_OK);
    CHECK(u.n == 0);

    /* Once any reply of "hi" is opened, "hi" leaves the list. */
    CHECK(open1(st, 1, 400) == STORE_OK);
    memset(&u, 0, sizeof(u));
    CHECK(store_unopened(st, 10, 1000, unopened_cb, &u) == STORE_OK);
    CHECK(u.n == 1 && strcmp(u.rows[0].recipient, "Mid@X.com") == 0);
    store_close(st);
}


/* Removes the test directory and every file left in it. */
static void
remove_tmp_dir(void)
{
    char path[512];
    struct dirent *e;
    DIR *d = opendir(tmp_dir);

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", tmp_dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    if (rmdir(tmp_dir) != 0) {
        fprintf(stderr, "cannot remove %s\n", tmp_dir);
    }
}


int
main(void)
{
    /* mkdtemp() replaces the six trailing 'X' with a unique name. */
    memcpy(tmp_dir, TMP_PREFIX, sizeof(TMP_PREFIX) - 1);
    memset(tmp_dir + sizeof(TMP_PREFIX) - 1, 'X', 6);
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    test_open_creates_schema();
    test_reopen_keeps_data();
    test_open_errors();
    test_concurrent_first_open();
    test_message_add_upserts_customer();
    test_message_add_rolls_back();
    test_opens_write();
    test_opens_write_failure();
    test_opens_write_busy();
    test_ticket_read();
    test_domains();
    test_unopened();

    remove_tmp_dir();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
