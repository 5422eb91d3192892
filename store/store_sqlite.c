/*
 * store_sqlite.c - the SQLite backend behind store.h.
 *
 * This module owns the database file's schema and its migrations
 * (PRAGMA user_version), the connection settings, every SQL statement
 * Beacon runs, and the definitions the reports are built on: what
 * "opened", "fetches" and "never opened a reply" mean in SQL.  It exports
 * only the store_* functions of store.h; struct store is private here.
 *
 * Each handle is one connection opened without SQLite's own mutexes
 * (SQLITE_OPEN_NOMUTEX): a handle belongs to one thread at a time.  Its
 * statements are prepared once in store_open() and reused.  A callback
 * handed to a store_* walk must not call into the same handle: the walk's
 * cached statement is still running.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 5000
#define WAL_RETRY_MS 10
#define ERRMSG_MAX 256

/*
 * Migrations, applied in order: entry i takes the schema from version i
 * to version i + 1.  Append a step for a new version; never edit one that
 * has shipped.
 *
 * Version 1.  Choices worth knowing:
 * - messages.id is AUTOINCREMENT because message ids are signed into
 *   pixel tokens that live as long as the mails do: an id must never be
 *   handed to a second message, even if rows are deleted one day.  The
 *   cost (one sqlite_sequence update per registration) is paid only on
 *   the rare API write, not on the pixel path.
 * - first_open_at, last_open_at and open_count live on the message row
 *   and are kept up to date by store_opens_write(), so the reports read
 *   messages only and never join the (much larger) opens table.
 * - messages_by_sent covers the domains report: the window on sent_at is
 *   a range scan and every other column it reads is in the index.
 * - opens is indexed by (message_id, at) for the ticket view; that is the
 *   one secondary index the hot insert path pays for.
 */
static const char *const migrations[] = {
    "CREATE TABLE customers ("
    "  id INTEGER PRIMARY KEY,"
    "  address_key TEXT NOT NULL UNIQUE,"   /* recipient, ASCII lower case */
    "  address TEXT NOT NULL,"              /* latest form given */
    "  name TEXT,"
    "  phone TEXT,"
    "  value REAL NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ticket_id TEXT NOT NULL,"
    "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
    "  recipient TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('reply', 'confirmation')),"
    "  sent_at INTEGER NOT NULL,"
    "  registered_at INTEGER NOT NULL,"
    "  header_message_id TEXT,"
    "  first_open_at INTEGER,"
    "  last_open_at INTEGER,"
    "  open_count INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE opens ("
    "  id INTEGER PRIMARY KEY,"
    "  message_id INTEGER NOT NULL REFERENCES messages(id),"
    "  at INTEGER NOT NULL,"
    "  addr TEXT NOT NULL,"
    "  user_agent TEXT NOT NULL"
    ");"
    "CREATE INDEX messages_by_ticket ON messages(ticket_id);"
    "CREATE INDEX messages_by_customer ON messages(customer_id, kind);"
    "CREATE INDEX messages_by_sent ON messages(sent_at, domain,"
    "  first_open_at, open_count, last_open_at);"
    "CREATE INDEX opens_by_message ON opens(message_id, at);",
};

#define SCHEMA_VERSION ((int) (sizeof(migrations) / sizeof(migrations[0])))

/* The statements cached on every handle. */
enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_PING,
    S_CUSTOMER_UPSERT,
    S_MESSAGE_INSERT,
    S_OPEN_COUNT,
    S_OPEN_INSERT,
    S_TICKET,
    S_DOMAINS,
    S_UNOPENED,
    S_UNOPENED_TICKETS,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    /* IMMEDIATE takes the write lock up front, so two writers wait on
     * each other through the busy timeout instead of failing on the
     * upgrade from a read lock. */
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_PING] = "SELECT 1",

    /* ?6..?8 say whether name, phone and value were given; a field not
     * given keeps its stored value (or starts NULL / 0). */
    [S_CUSTOMER_UPSERT] =
        "INSERT INTO customers (address_key, address, name, phone, value)"
        " VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (address_key) DO UPDATE SET"
        "  address = excluded.address,"
        "  name = CASE WHEN ?6 THEN excluded.name ELSE name END,"
        "  phone = CASE WHEN ?7 THEN excluded.phone ELSE phone END,"
        "  value = CASE WHEN ?8 THEN excluded.value ELSE value END"
        " RETURNING id",

    [S_MESSAGE_INSERT] =
        "INSERT INTO messages (ticket_id, customer_id, recipient, domain,"
        " kind, sent_at, registered_at, header_message_id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",

    /* min() and max() with a NULL argument are NULL, hence coalesce:
     * opens may arrive out of order within and across batches. */
    [S_OPEN_COUNT] =
        "UPDATE messages SET open_count = open_count + 1,"
        " first_open_at = coalesce(min(first_open_at, ?1), ?1),"
        " last_open_at = coalesce(max(last_open_at, ?1), ?1)"
        " WHERE id = ?2",

    [S_OPEN_INSERT] =
        "INSERT INTO opens (message_id, at, addr, user_agent)"
        " VALUES (?1, ?2, ?3, ?4)",

    [S_TICKET] =
        "SELECT m.id, m.recipient, m.kind, m.sent_at, m.header_message_id,"
        " o.id IS NOT NULL, o.at, o.addr, o.user_agent"
        " FROM messages AS m LEFT JOIN opens AS o ON o.message_id = m.id"
        " WHERE m.ticket_id = ?1"
        " ORDER BY m.sent_at, m.id, o.at, o.id",

    /* sent: messages sent in the window; opened: those with at least one
     * open; fetches: every recorded open of them; last: newest open. */
    [S_DOMAINS] =
        "SELECT domain, count(*) AS sent, count(first_open_at),"
        " sum(open_count), coalesce(max(last_open_at), 0)"
        " FROM messages WHERE sent_at >= ?1 AND sent_at < ?2"
        " GROUP BY domain ORDER BY sent DESC, domain ASC",

    /* The call list.  Only replies count, confirmations are ignored both
     * ways.  A customer qualifies when none of their replies was ever
     * opened (count(first_open_at) = 0) and their oldest reply was sent
     * at or before the cut-off (?2).  The last sort key, c.id, only makes
     * the order stable. */
    [S_UNOPENED] =
        "SELECT c.id, c.address, c.name, c.phone, c.value, count(*),"
        " min(m.sent_at) AS oldest, max(m.sent_at)"
        " FROM customers AS c JOIN messages AS m"
        "  ON m.customer_id = c.id AND m.kind = 'reply'"
        " WHERE c.value >= ?1"
        " GROUP BY c.id"
        " HAVING count(m.first_open_at) = 0 AND oldest <= ?2"
        " ORDER BY c.value DESC, oldest ASC, c.id ASC",

    [S_UNOPENED_TICKETS] =
        "SELECT ticket_id FROM messages"
        " WHERE customer_id = ?1 AND kind = 'reply'"
        " GROUP BY ticket_id ORDER BY min(sent_at), min(id)",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    char err[ERRMSG_MAX];
};

/* A growable list of owned strings: the ticket ids of one call-list row. */
struct strlist {
    char **v;
    size_t n;
    size_t cap;
};


static void
set_err(struct store *st, const char *msg)
{
    snprintf(st->err, sizeof(st->err), "%s", msg);
}


/*
 * Records "what: <sqlite message>" for the failure code rc (primary or
 * extended) and returns the matching store code: STORE_BUSY when the
 * database stayed locked past the busy timeout, STORE_ERR otherwise.
 */
static int
fail(struct store *st, int rc, const char *what)
{
    int primary = rc & 0xff;

    snprintf(st->err, sizeof(st->err), "%s: %s", what,
             sqlite3_errmsg(st->db));
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        return STORE_BUSY;
    }
    return STORE_ERR;
}


/* Readies a cached statement for its next use. */
static void
finish(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}


/* Runs a cached statement that returns no rows. */
static int
run(struct store *st, enum stmt_id id, const char *what)
{
    sqlite3_stmt *s = st->stmt[id];
    int rc;

    rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, what);
    finish(s);
    return rc;
}


/* Ends a failed transaction, if one is still open. */
static void
rollback(struct store *st)
{
    /* SQLite itself rolls back on some errors (SQLITE_FULL, IOERR...);
     * a second ROLLBACK would only fail. */
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(st->stmt[S_ROLLBACK]);
        finish(st->stmt[S_ROLLBACK]);
    }
}


/*
 * Runs every statement of a constant SQL script in turn (schema steps and
 * pragmas take no parameters).  Rows are read and discarded.
 */
static int
exec_script(struct store *st, const char *sql, const char *what)
{
    const char *tail = sql;
    sqlite3_stmt *s;
    int rc;

    while (*tail != '\0') {
        rc = sqlite3_prepare_v2(st->db, tail, -1, &s, &tail);
        if (rc != SQLITE_OK) {
            return fail(st, rc, what);
        }
        if (s == NULL) {
            continue;               /* only white space or a comment left */
        }

        do {
            rc = sqlite3_step(s);
        } while (rc == SQLITE_ROW);
        if (rc != SQLITE_DONE) {
            rc = fail(st, rc, what);
            sqlite3_finalize(s);
            return rc;
        }
        sqlite3_finalize(s);
    }
    return STORE_OK;
}


/* Reads the first column of a one-row pragma as an integer. */
static int
pragma_int(struct store *st, const char *sql, int *out)
{
    sqlite3_stmt *s;
    int rc;

    rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        return fail(st, rc, sql);
    }

    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(s, 0);
        rc = STORE_OK;
    } else {
        rc = fail(st, rc, sql);
    }
    sqlite3_finalize(s);
    return rc;
}


/*
 * One attempt to switch the file to WAL.  The pragma answers with the
 * mode in force, which stays "delete" where WAL is impossible (some
 * network file systems); that is an error.  An in-memory database answers
 * "memory" and is accepted, for tests only: each of its handles is a
 * separate database.
 */
static int
try_wal(struct store *st)
{
    sqlite3_stmt *s;
    const char *mode;
    int rc;

    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s,
                            NULL);
    if (rc != SQLITE_OK) {
        return fail(st, rc, "journal_mode");
    }

    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        rc = fail(st, rc, "journal_mode");
    } else {
        mode = (const char *) sqlite3_column_text(s, 0);
        rc = STORE_OK;
        if (mode == NULL || (strcmp(mode, "wal") != 0
                             && strcmp(mode, "memory") != 0)) {
            snprintf(st->err, sizeof(st->err),
                     "journal_mode: WAL refused, mode is %s",
                     mode != NULL ? mode : "unknown");
            rc = STORE_ERR;
        }
    }
    sqlite3_finalize(s);
    return rc;
}


/*
 * Switches the file to WAL, retrying while another connection holds a
 * lock.  The busy timeout does not cover this: when two processes open a
 * fresh file at once, the switch needs a lock upgrade that SQLite refuses
 * at once rather than wait for (waiting could deadlock), so we retry.
 */
static int
set_wal(struct store *st)
{
    int waited = 0;
    int rc;

    for (;;) {
        rc = try_wal(st);
        if (rc != STORE_BUSY || waited >= BUSY_TIMEOUT_MS) {
            return rc;
        }
        sqlite3_sleep(WAL_RETRY_MS);
        waited += WAL_RETRY_MS;
    }
}


/* Fails when the file was written by a newer Beacon than this one. */
static int
check_version(struct store *st, int version)
{
    if (version < 0 || version > SCHEMA_VERSION) {
        snprintf(st->err, sizeof(st->err),
                 "database schema version %d is not one this build knows"
                 " (newest %d)", version, SCHEMA_VERSION);
        return STORE_ERR;
    }
    return STORE_OK;
}


/* Applies the steps after version, inside the caller's transaction. */
static int
apply_steps(struct store *st, int version)
{
    char sql[64];
    int rc = STORE_OK;

    for (int i = version; rc == STORE_OK && i < SCHEMA_VERSION; i++) {
        rc = exec_script(st, migrations[i], "migrate");
    }
    if (rc != STORE_OK) {
        return rc;
    }

    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
    return exec_script(st, sql, "user_version");
}


/*
 * Brings the schema from version (read without a lock) to SCHEMA_VERSION.
 * The version is read again under the write lock (BEGIN IMMEDIATE), so
 * when two processes open a fresh file at once, one migrates and the
 * other waits, then finds nothing to do.  All steps commit together or
 * not at all.
 */
static int
migrate(struct store *st, int version)
{
    char keep[ERRMSG_MAX];
    int rc;

    if (version == SCHEMA_VERSION) {
        return STORE_OK;
    }

    rc = exec_script(st, "BEGIN IMMEDIATE", "migrate");
    if (rc == STORE_OK) {
        rc = pragma_int(st, "PRAGMA user_version", &version);
    }
    if (rc == STORE_OK) {
        rc = check_version(st, version);
    }
    if (rc == STORE_OK && version < SCHEMA_VERSION) {
        rc = apply_steps(st, version);
    }
    if (rc == STORE_OK) {
        rc = exec_script(st, "COMMIT", "migrate");
    }

    /* Keep the first error, not that of the clean-up. */
    if (rc != STORE_OK && !sqlite3_get_autocommit(st->db)) {
        memcpy(keep, st->err, sizeof(keep));
        exec_script(st, "ROLLBACK", "rollback");
        memcpy(st->err, keep, sizeof(keep));
    }
    return rc;
}


static int
prepare_all(struct store *st)
{
    int rc;

    for (int i = 0; i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                                NULL);
        if (rc != SQLITE_OK) {
            return fail(st, rc, "prepare");
        }
    }
    return STORE_OK;
}


/* Opens the connection; waits on locks for up to BUSY_TIMEOUT_MS. */
static int
open_db(struct store *st, const char *path)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                | SQLITE_OPEN_NOMUTEX;
    int rc;

    rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (st->db == NULL) {
            set_err(st, "open: out of memory");
            return STORE_ERR;
        }
        snprintf(st->err, sizeof(st->err), "open %s: %s", path,
                 sqlite3_errmsg(st->db));
        return STORE_ERR;
    }
    sqlite3_extended_result_codes(st->db, 1);

    /* Set before anything else: switching to WAL and migrating may have
     * to wait for another process doing the same. */
    rc = sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        return fail(st, rc, "busy_timeout");
    }
    return STORE_OK;
}


/* The per-connection settings. */
static int
configure(struct store *st)
{
    int rc;

    rc = set_wal(st);
    if (rc == STORE_OK) {
        rc = exec_script(st, "PRAGMA synchronous = NORMAL;"
                         " PRAGMA foreign_keys = ON;", "pragma");
    }
    return rc;
}


int
store_open(struct store **out, const char *path, char *err, size_t errlen)
{
    struct store *st;
    int version = 0;
    int rc;

    *out = NULL;
    if (path == NULL) {
        snprintf(err, errlen, "open: no database path");
        return STORE_ERR;
    }

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "open: out of memory");
        return STORE_ERR;
    }

    /* A file from a newer Beacon is refused before anything in it, even
     * its journal mode, is changed. */
    rc = open_db(st, path);
    if (rc == STORE_OK) {
        rc = pragma_int(st, "PRAGMA user_version", &version);
    }
    if (rc == STORE_OK) {
        rc = check_version(st, version);
    }
    if (rc == STORE_OK) {
        rc = configure(st);
    }
    if (rc == STORE_OK) {
        rc = migrate(st, version);
    }
    if (rc == STORE_OK) {
        rc = prepare_all(st);
    }
    if (rc != STORE_OK) {
        snprintf(err, errlen, "%s", st->err);
        store_close(st);
        return STORE_ERR;
    }

    *out = st;
    return STORE_OK;
}


void
store_close(struct store *st)
{
    if (st == NULL) {
        return;
    }

    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(st->stmt[i]);
    }
    sqlite3_close(st->db);
    free(st);
}


const char *
store_errmsg(const struct store *st)
{
    if (st == NULL) {
        return "no store handle";
    }
    return st->err;
}


int
store_ping(struct store *st)
{
    sqlite3_stmt *s = st->stmt[S_PING];
    int rc;

    rc = sqlite3_step(s);
    rc = rc == SQLITE_ROW ? STORE_OK : fail(st, rc, "ping");
    finish(s);
    return rc;
}


/* The customer key: the whole address in ASCII lower case.  free() it. */
static char *
address_key(const char *recipient)
{
    size_t len = strlen(recipient);
    char *key = malloc(len + 1);

    if (key == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        char c = recipient[i];

        key[i] = c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
    }
    key[len] = '\0';
    return key;
}


/* Binds text that may be NULL (stored as SQL NULL). */
static int
bind_text_or_null(sqlite3_stmt *s, int i, const char *text)
{
    if (text == NULL) {
        return sqlite3_bind_null(s, i);
    }
    return sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}


/* Creates or updates the customer keyed by key; sets *id. */
static int
upsert_customer(struct store *st, const struct store_message_in *m,
                const char *key, int64_t *id)
{
    sqlite3_stmt *s = st->stmt[S_CUSTOMER_UPSERT];
    unsigned f = m->customer_fields;
    int rc;

    if (sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 2, m->recipient, -1, SQLITE_STATIC)
           != SQLITE_OK
        || bind_text_or_null(s, 3, f & STORE_CUSTOMER_NAME
                             ? m->customer_name : NULL) != SQLITE_OK
        || bind_text_or_null(s, 4, f & STORE_CUSTOMER_PHONE
                             ? m->customer_phone : NULL) != SQLITE_OK
        || sqlite3_bind_double(s, 5, f & STORE_CUSTOMER_VALUE
                               ? m->customer_value : 0.0) != SQLITE_OK
        || sqlite3_bind_int(s, 6, (f & STORE_CUSTOMER_NAME) != 0)
           != SQLITE_OK
        || sqlite3_bind_int(s, 7, (f & STORE_CUSTOMER_PHONE) != 0)
           != SQLITE_OK
        || sqlite3_bind_int(s, 8, (f & STORE_CUSTOMER_VALUE) != 0)
           != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "customer");
        finish(s);
        return rc;
    }

    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        rc = STORE_OK;
    } else {
        rc = fail(st, rc, "customer");
    }
    finish(s);
    return rc;
}


static int
insert_message(struct store *st, const struct store_message_in *m,
               int64_t customer_id, int64_t *id)
{
    sqlite3_stmt *s = st->stmt[S_MESSAGE_INSERT];
    int rc;

    if (sqlite3_bind_text(s, 1, m->ticket_id, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, customer_id) != SQLITE_OK
        || sqlite3_bind_text(s, 3, m->recipient, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_text(s, 4, m->domain, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 5, m->kind, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 6, m->sent_at_ms) != SQLITE_OK
        || sqlite3_bind_int64(s, 7, m->registered_at_ms) != SQLITE_OK
        || bind_text_or_null(s, 8, m->header_message_id) != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "message");
        finish(s);
        return rc;
    }

    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        *id = sqlite3_last_insert_rowid(st->db);
        rc = STORE_OK;
    } else {
        rc = fail(st, rc, "message");
    }
    finish(s);
    return rc;
}


int
store_message_add(struct store *st, const struct store_message_in *m,
                  int64_t *id)
{
    int64_t customer_id = 0;
    char *key;
    int rc;

    *id = 0;
    if (m == NULL || m->ticket_id == NULL || m->recipient == NULL
        || m->domain == NULL || m->kind == NULL) {
        set_err(st, "message: a required field is missing");
        return STORE_ERR;
    }

    key = address_key(m->recipient);
    if (key == NULL) {
        set_err(st, "message: out of memory");
        return STORE_ERR;
    }

    rc = run(st, S_BEGIN, "begin");
    if (rc == STORE_OK) {
        rc = upsert_customer(st, m, key, &customer_id);
    }
    if (rc == STORE_OK) {
        rc = insert_message(st, m, customer_id, id);
    }
    if (rc == STORE_OK) {
        rc = run(st, S_COMMIT, "commit");
    }
    if (rc != STORE_OK) {
        rollback(st);
        *id = 0;
    }

    free(key);
    return rc;
}


/*
 * Counts one open on its message and records it; an open of a message
 * that does not exist changes no row and is only counted in *unknown.
 * The fixed-size text fields are bound by length, so a field that lost
 * its NUL is cut rather than over-read.
 */
static int
write_open(struct store *st, const struct store_open_rec *o, size_t *unknown)
{
    sqlite3_stmt *s = st->stmt[S_OPEN_COUNT];
    size_t addr_len = strnlen(o->addr, STORE_ADDR_MAX - 1);
    size_t ua_len = strnlen(o->user_agent, STORE_UA_MAX);
    int rc;

    if (sqlite3_bind_int64(s, 1, o->at_ms) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, o->message_id) != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "open");
        finish(s);
        return rc;
    }
    rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "open");
    finish(s);
    if (rc != STORE_OK) {
        return rc;
    }
    if (sqlite3_changes(st->db) == 0) {
        (*unknown)++;
        return STORE_OK;
    }

    s = st->stmt[S_OPEN_INSERT];
    if (sqlite3_bind_int64(s, 1, o->message_id) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, o->at_ms) != SQLITE_OK
        || sqlite3_bind_text(s, 3, o->addr, (int) addr_len, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_text(s, 4, o->user_agent, (int) ua_len,
                             SQLITE_STATIC) != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "open");
        finish(s);
        return rc;
    }
    return run(st, S_OPEN_INSERT, "open");
}


int
store_opens_write(struct store *st, const struct store_open_rec *v,
                  size_t n, size_t *unknown)
{
    size_t skipped = 0;
    int rc;

    if (unknown != NULL) {
        *unknown = 0;
    }
    if (n == 0) {
        return STORE_OK;
    }

    rc = run(st, S_BEGIN, "begin");
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        rc = write_open(st, &v[i], &skipped);
    }
    if (rc == STORE_OK) {
        rc = run(st, S_COMMIT, "commit");
    }
    if (rc != STORE_OK) {
        rollback(st);
        return rc;
    }

    if (unknown != NULL) {
        *unknown = skipped;
    }
    return STORE_OK;
}


int
store_ticket_read(struct store *st, const char *ticket_id,
                  int (*cb)(void *ctx, const struct store_ticket_row *r),
                  void *ctx)
{
    sqlite3_stmt *s = st->stmt[S_TICKET];
    struct store_ticket_row r;
    int found = 0;
    int stop = 0;
    int rc = SQLITE_DONE;

    if (ticket_id == NULL) {
        set_err(st, "ticket: no ticket id");
        return STORE_ERR;
    }
    if (sqlite3_bind_text(s, 1, ticket_id, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "ticket");
        finish(s);
        return rc;
    }

    while (stop == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        r.message_id = sqlite3_column_int64(s, 0);
        r.recipient = (const char *) sqlite3_column_text(s, 1);
        r.kind = (const char *) sqlite3_column_text(s, 2);
        r.sent_at_ms = sqlite3_column_int64(s, 3);
        r.header_message_id = (const char *) sqlite3_column_text(s, 4);
        r.has_open = sqlite3_column_int(s, 5);
        r.open_at_ms = r.has_open ? sqlite3_column_int64(s, 6) : 0;
        r.open_addr = (const char *) sqlite3_column_text(s, 7);
        r.open_user_agent = (const char *) sqlite3_column_text(s, 8);
        found = 1;
        stop = cb(ctx, &r);
    }

    if (stop != 0) {
        rc = stop;
    } else if (rc != SQLITE_DONE) {
        rc = fail(st, rc, "ticket");
    } else {
        rc = found ? STORE_OK : STORE_NOTFOUND;
    }
    finish(s);
    return rc;
}


int
store_domains(struct store *st, int64_t since_ms, int64_t until_ms,
              int (*cb)(void *ctx, const struct store_domain_row *r),
              void *ctx)
{
    sqlite3_stmt *s = st->stmt[S_DOMAINS];
    struct store_domain_row r;
    int stop = 0;
    int rc = SQLITE_DONE;

    if (sqlite3_bind_int64(s, 1, since_ms) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, until_ms) != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "domains");
        finish(s);
        return rc;
    }

    while (stop == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        r.domain = (const char *) sqlite3_column_text(s, 0);
        r.sent = sqlite3_column_int64(s, 1);
        r.opened = sqlite3_column_int64(s, 2);
        r.fetches = sqlite3_column_int64(s, 3);
        r.last_open_at_ms = sqlite3_column_int64(s, 4);
        stop = cb(ctx, &r);
    }

    if (stop != 0) {
        rc = stop;
    } else {
        rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "domains");
    }
    finish(s);
    return rc;
}


static void
strlist_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    l->n = 0;
}


static void
strlist_release(struct strlist *l)
{
    strlist_clear(l);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
}


/* Appends a copy of text.  -1 when out of memory (l is unchanged). */
static int
strlist_push(struct strlist *l, const char *text)
{
    char **v;
    size_t cap;

    if (l->n == l->cap) {
        cap = l->cap == 0 ? 8 : l->cap * 2;
        v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }

    l->v[l->n] = strdup(text);
    if (l->v[l->n] == NULL) {
        return -1;
    }
    l->n++;
    return 0;
}


/* Fills l with the customer's distinct reply tickets, first reply first. */
static int
load_tickets(struct store *st, int64_t customer_id, struct strlist *l)
{
    sqlite3_stmt *s = st->stmt[S_UNOPENED_TICKETS];
    const char *t;
    int rc;

    strlist_clear(l);
    if (sqlite3_bind_int64(s, 1, customer_id) != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "unopened");
        finish(s);
        return rc;
    }

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        t = (const char *) sqlite3_column_text(s, 0);
        if (t == NULL || strlist_push(l, t) != 0) {
            set_err(st, "unopened: out of memory");
            finish(s);
            return STORE_ERR;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "unopened");
    finish(s);
    return rc;
}


/* Loads the current call-list row of s into r, its tickets into l. */
static int
unopened_row(struct store *st, sqlite3_stmt *s,
             struct store_unopened_row *r, struct strlist *l)
{
    int rc;

    rc = load_tickets(st, sqlite3_column_int64(s, 0), l);
    if (rc != STORE_OK) {
        return rc;
    }

    r->recipient = (const char *) sqlite3_column_text(s, 1);
    r->name = (const char *) sqlite3_column_text(s, 2);
    r->phone = (const char *) sqlite3_column_text(s, 3);
    r->value = sqlite3_column_double(s, 4);
    r->replies = sqlite3_column_int64(s, 5);
    r->oldest_ms = sqlite3_column_int64(s, 6);
    r->newest_ms = sqlite3_column_int64(s, 7);
    r->ticket_ids = (const char *const *) l->v;
    r->n_ticket_ids = l->n;
    return STORE_OK;
}


int
store_unopened(struct store *st, double min_value, int64_t sent_before_ms,
               int (*cb)(void *ctx, const struct store_unopened_row *r),
               void *ctx)
{
    sqlite3_stmt *s = st->stmt[S_UNOPENED];
    struct store_unopened_row r;
    struct strlist tickets = { NULL, 0, 0 };
    int stop = 0;
    int rc = SQLITE_DONE;

    if (sqlite3_bind_double(s, 1, min_value) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, sent_before_ms) != SQLITE_OK) {
        rc = fail(st, sqlite3_errcode(st->db), "unopened");
        finish(s);
        return rc;
    }

    /* The ticket query runs inside the outer statement's read, so both
     * see the same snapshot of the database. */
    while (stop == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        stop = unopened_row(st, s, &r, &tickets);
        if (stop == STORE_OK) {
            stop = cb(ctx, &r);
        }
    }

    if (stop != 0) {
        rc = stop;
    } else {
        rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "unopened");
    }
    finish(s);
    strlist_release(&tickets);
    return rc;
}
