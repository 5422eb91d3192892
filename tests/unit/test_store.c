/*
 * test_store.c - unit tests of the SQLite store (store/store_sqlite.c).
 *
 * Every test works on its own database file in a fresh directory under
 * /tmp, removed at the end.  The store is driven through store.h only;
 * a raw sqlite3 connection reads the file back to check what was really
 * written, injects failures (a trigger, a held write lock) and builds a
 * version 1 file to migrate.  Fetches are classified by classify_test(),
 * a tiny rule set that writes the facts it saw into each reason, so the
 * stored rows show what the classifier was told.
 */
#include "store/store.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "tests/unit/check.h"

#define MAX_ROWS 16
#define TEXT_MAX 600

/* Registration time of add()'s messages, and a time past the burst
 * window of a fetch at REG (the window is STORE_BURST_MS from the
 * message's first fetch of any class but internal). */
#define REG 42
#define LATE 100000

#define TMP_PREFIX "/tmp/beacon-test-store-"
#define SCHEMA_LATEST 6

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


/*
 * A message's figures in one line: its counts by class (human, proxy,
 * privacy_prefetch, scanner, internal, head_probe), then rows kept and
 * not kept, then first open, last open, reached and replied ("-": none).
 */
static void
figures(const char *path, int64_t id, char *out, size_t len)
{
    char sql[700];

    snprintf(sql, sizeof(sql),
             "SELECT n_human || ',' || n_proxy || ',' || n_privacy_prefetch"
             " || ',' || n_scanner || ',' || n_internal || ',' || n_head_probe"
             " || '|' || rows_kept || ',' || not_kept"
             " || '|' || coalesce(first_open_at, '-')"
             " || ',' || coalesce(last_open_at, '-')"
             " || ',' || coalesce(reached_at, '-')"
             " || ',' || coalesce(replied_at, '-')"
             " FROM messages WHERE id = %lld", (long long) id);
    raw_text(path, sql, out, len);
}


/* A message's rows, "class:count:at-last_at", by time then id. */
static void
rows_of(const char *path, int64_t id, char *out, size_t len)
{
    char sql[300];

    snprintf(sql, sizeof(sql),
             "SELECT group_concat(x, ' ') FROM (SELECT class || ':' || count"
             " || ':' || at || '-' || last_at AS x FROM fetches"
             " WHERE message_id = %lld ORDER BY at, id)", (long long) id);
    raw_text(path, sql, out, len);
}


/* Registers a message with no customer fields; returns its id or 0. */
static int64_t
add_reg(struct store *st, const char *ticket, const char *recipient,
        const char *domain, const char *kind, int64_t sent_at,
        int64_t registered_at)
{
    struct store_message_in m = {
        .ticket_id = ticket, .recipient = recipient, .domain = domain,
        .kind = kind, .sent_at_ms = sent_at,
        .registered_at_ms = registered_at,
    };
    int64_t id = 0;

    if (store_message_add(st, &m, &id) != STORE_OK) {
        fprintf(stderr, "add: %s\n", store_errmsg(st));
    }
    return id;
}


/* The same, registered at REG. */
static int64_t
add(struct store *st, const char *ticket, const char *recipient,
    const char *domain, const char *kind, int64_t sent_at)
{
    return add_reg(st, ticket, recipient, domain, kind, sent_at, REG);
}


/* Registers a reply from a customer with a value. */
static int64_t
add_valued(struct store *st, const char *ticket, const char *recipient,
           double value, int64_t sent_at)
{
    struct store_message_in m = {
        .ticket_id = ticket, .recipient = recipient, .domain = "x.com",
        .kind = "reply", .sent_at_ms = sent_at, .registered_at_ms = REG,
        .customer_fields = STORE_CUSTOMER_VALUE, .customer_value = value,
    };
    int64_t id = 0;

    if (store_message_add(st, &m, &id) != STORE_OK) {
        fprintf(stderr, "add_valued: %s\n", store_errmsg(st));
    }
    return id;
}


/*
 * Customers whose kept call-list state (schema version 4) differs from
 * what their replies say, worked out here from scratch: 0 when the
 * writes kept it right.
 */
static int64_t
call_state_drift(const char *path)
{
    return raw_int(path,
        "WITH truth AS (SELECT c.id, c.call_lo AS lo, c.call_oldest AS old,"
        "  c.call_reached AS r,"
        "  (SELECT max(sent_at) FROM messages WHERE customer_id = c.id"
        "   AND kind = 'reply' AND first_open_at IS NOT NULL) AS lo2"
        " FROM customers AS c)"
        " SELECT count(*) FROM truth AS t WHERE t.lo IS NOT t.lo2"
        "  OR (t.old, t.r) IS NOT (SELECT min(sent_at), count(reached_at)"
        "   FROM messages WHERE customer_id = t.id AND kind = 'reply'"
        "   AND (t.lo2 IS NULL OR sent_at > t.lo2))");
}


/* What classify_test() was told last, and how often it was asked. */
struct judge_log {
    unsigned calls;
    int is_head;
    size_t ua_len;
    size_t network_len;
    size_t referer_len;
    int64_t secs;
    unsigned burst;
};


static void
log_facts(struct judge_log *log, const struct store_fetch_facts *f)
{
    log->calls++;
    log->is_head = f->is_head;
    log->ua_len = strlen(f->user_agent);
    log->network_len = strlen(f->network);
    log->referer_len = strlen(f->referer_host);
    log->secs = f->secs_since_send;
    log->burst = f->burst_clients;
}


/*
 * The test rules, first match wins: a HEAD is head_probe; three clients
 * in a burst make a scanner that takes the whole burst; "apple" is
 * privacy_prefetch in its first 10 s, human after; otherwise the
 * User-Agent's prefix names the class (human, proxy, mpp, scan, int),
 * human by default.  The reason records the facts.  ctx: a judge_log
 * or NULL.
 */
static void
classify_test(void *ctx, const struct store_fetch_facts *f,
              struct store_verdict *v)
{
    static const struct {
        const char *prefix;
        int cls;
    } by_prefix[] = {
        { "human", STORE_HUMAN }, { "proxy", STORE_PROXY },
        { "mpp", STORE_PRIVACY_PREFETCH }, { "scan", STORE_SCANNER },
        { "int", STORE_INTERNAL },
    };

    if (ctx != NULL) {
        log_facts(ctx, f);
    }
    snprintf(v->reason, sizeof(v->reason), "secs=%lld burst=%u",
             (long long) f->secs_since_send, f->burst_clients);
    v->cls = STORE_HUMAN;
    snprintf(v->rule, sizeof(v->rule), "t-default");

    if (f->is_head) {
        v->cls = STORE_HEAD_PROBE;
        snprintf(v->rule, sizeof(v->rule), "t-head");
    } else if (f->burst_clients >= 3) {
        v->cls = STORE_SCANNER;
        v->whole_burst = 1;
        snprintf(v->rule, sizeof(v->rule), "t-burst");
    } else if (strncmp(f->user_agent, "apple", 5) == 0) {
        v->cls = f->secs_since_send < 10 ? STORE_PRIVACY_PREFETCH
                                         : STORE_HUMAN;
        snprintf(v->rule, sizeof(v->rule), "t-apple");
    } else {
        for (size_t i = 0; i < sizeof(by_prefix) / sizeof(by_prefix[0]);
             i++) {
            if (strncmp(f->user_agent, by_prefix[i].prefix,
                        strlen(by_prefix[i].prefix)) == 0) {
                v->cls = by_prefix[i].cls;
                snprintf(v->rule, sizeof(v->rule), "t-%s",
                         by_prefix[i].prefix);
            }
        }
    }
}


static struct store_fetch_rec
fetch_rec(int64_t message_id, int64_t at, const char *addr, const char *ua)
{
    struct store_fetch_rec f;

    memset(&f, 0, sizeof(f));
    f.message_id = message_id;
    f.at_ms = at;
    snprintf(f.addr, sizeof(f.addr), "%s", addr);
    snprintf(f.user_agent, sizeof(f.user_agent), "%s", ua);
    return f;
}


/* The same, as a HEAD request. */
static struct store_fetch_rec
head_rec(int64_t message_id, int64_t at, const char *addr, const char *ua)
{
    struct store_fetch_rec f = fetch_rec(message_id, at, addr, ua);

    f.is_head = 1;
    return f;
}


/* Writes a batch with classify_test(); returns the store code. */
static int
write_v(struct store *st, const struct store_fetch_rec *v, size_t n,
        struct store_write_result *res)
{
    struct store_write_result ignored;

    return store_fetches_write(st, v, n, classify_test, NULL,
                               res != NULL ? res : &ignored);
}


/* Writes one GET fetch; returns the store code. */
static int
fetch1(struct store *st, int64_t message_id, int64_t at, const char *addr,
       const char *ua)
{
    struct store_fetch_rec f = fetch_rec(message_id, at, addr, ua);

    return write_v(st, &f, 1, NULL);
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
    CHECK_STR(store_errmsg(st), "");

    CHECK(raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
    raw_text(path, "PRAGMA journal_mode", text, sizeof(text));
    CHECK_STR(text, "wal");
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                  " type = 'table' AND name IN ('customers', 'messages',"
                  " 'fetches', 'fetch_overflow', 'burst_unkept',"
                  " 'domain_slices', 'calls', 'opens')") == 7);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                  " type = 'index' AND name IN ('messages_by_ticket',"
                  " 'messages_by_customer', 'messages_by_sent',"
                  " 'messages_by_domain', 'fetches_by_message',"
                  " 'burst_unkept_by_message', 'calls_by_customer',"
                  " 'customers_on_call_list')") == 8);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                  " type = 'index' AND sql IS NOT NULL") == 8);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                  " type = 'trigger'") == 3);
    CHECK(raw_int(path, "SELECT count(*) FROM"
                  " pragma_index_info('messages_by_sent')") == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM pragma_table_info('messages')"
                  " WHERE name = 'open_count'") == 0);

    store_close(st);
    store_close(NULL);
    CHECK_STR(store_errmsg(NULL), "no store handle");
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
    CHECK(fetch1(st, id, LATE, "192.0.2.0", "human") == STORE_OK);
    store_close(st);

    st = open_store(path);
    CHECK(st != NULL);
    CHECK(raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
    CHECK(raw_int(path, "SELECT count(*) FROM messages") == 1);
    CHECK(raw_int(path, "SELECT n_human FROM messages") == 1);
    CHECK(add(st, "T2", "a@b.com", "b.com", "reply", 1000) == 2);
    store_close(st);
}


static void
test_names(void)
{
    static const char *const classes[STORE_N_CLASSES] = {
        "human", "proxy", "privacy_prefetch", "scanner", "internal",
        "head_probe",
    };
    static const char *const reasons[STORE_N_REASONS] = {
        "never_fetched", "machine_only", "opened_nothing_recent",
    };

    for (int i = 0; i < STORE_N_CLASSES; i++) {
        CHECK_STR(store_class_name(i), classes[i]);
        CHECK(store_class_parse(classes[i]) == i);
    }
    CHECK(store_class_name(-1) == NULL);
    CHECK(store_class_name(STORE_N_CLASSES) == NULL);
    CHECK(store_class_parse("Human") == -1);
    CHECK(store_class_parse("") == -1);
    CHECK(store_class_parse(NULL) == -1);

    for (int i = 0; i < STORE_N_REASONS; i++) {
        CHECK_STR(store_reason_name(i), reasons[i]);
        CHECK(store_reason_parse(reasons[i]) == i);
    }
    CHECK(store_reason_name(-1) == NULL);
    CHECK(store_reason_name(STORE_N_REASONS) == NULL);
    CHECK(store_reason_parse("machine") == -1);
    CHECK(store_reason_parse(NULL) == -1);
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
    CHECK(raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
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
test_fetches_write(void)
{
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_fetch_rec v[5];
    struct store_write_result res = { 9, 9, 9 };
    struct judge_log log = { 0 };
    int64_t a, b;

    db_path(path, sizeof(path), "fetches");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    b = add(st, "T2", "b@x.com", "x.com", "reply", 100);

    v[0] = fetch_rec(a, 200000, "192.0.2.0", "human/1");
    v[1] = fetch_rec(a, 100000, "192.0.2.0", "human/2");  /* out of order */
    v[2] = fetch_rec(b, 500000, "2001:db8:1::", "proxy/1");
    snprintf(v[2].referer_host, sizeof(v[2].referer_host), "mail.x.com");
    v[3] = fetch_rec(9999, 300000, "192.0.2.0", "ghost");    /* unknown */
    v[4] = head_rec(a, 150000, "192.0.2.0", "human/3");
    CHECK(store_fetches_write(st, v, 5, classify_test, &log, &res)
          == STORE_OK);
    CHECK(res.unknown == 1 && res.collapsed == 0 && res.not_kept == 0);
    CHECK(log.calls == 4);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches") == 4);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "2,0,0,0,0,1|3,0|100000,200000,100000,-");
    figures(path, b, text, sizeof(text));
    CHECK_STR(text, "0,1,0,0,0,0|1,0|500000,500000,500000,-");
    raw_text(path, "SELECT addr || '|' || user_agent || '|' || referer_host"
             " || '|' || secs || '|' || is_head || '|' || class || '|'"
             " || rule || '|' || reason FROM fetches WHERE message_id = 2",
             text, sizeof(text));
    /* Its message's first fetch: it opens its own burst window. */
    CHECK_STR(text, "2001:db8:1::|proxy/1|mail.x.com|499|0|proxy|t-proxy|"
              "secs=499 burst=1");
    raw_text(path, "SELECT is_head || '|' || class || '|' || rule"
             " FROM fetches WHERE at = 150000", text, sizeof(text));
    CHECK_STR(text, "1|head_probe|t-head");

    /* A later batch moves first and last only outwards. */
    v[0] = fetch_rec(a, 80000, "192.0.2.0", "human/4");
    v[1] = fetch_rec(a, 900000, "192.0.2.0", "human/5");
    CHECK(write_v(st, v, 2, &res) == STORE_OK);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "4,0,0,0,0,1|5,0|80000,900000,80000,-");

    /* An empty batch is a no-op that still clears the result. */
    res.unknown = 99;
    CHECK(store_fetches_write(st, v, 0, classify_test, NULL, &res)
          == STORE_OK);
    CHECK(res.unknown == 0);
    CHECK(store_fetches_write(st, v, 1, NULL, NULL, &res) == STORE_ERR);
    CHECK(strstr(store_errmsg(st), "no classifier") != NULL);

    /* Full-size fields, and fields that lost their NUL, are cut: the
     * classifier and the row see the same NUL-terminated text. */
    memset(v[0].user_agent, 'u', sizeof(v[0].user_agent));
    memset(v[0].addr, 'a', sizeof(v[0].addr));
    memset(v[0].referer_host, 'r', sizeof(v[0].referer_host));
    CHECK(store_fetches_write(st, v, 1, classify_test, &log, &res)
          == STORE_OK);
    CHECK(log.ua_len == STORE_UA_MAX);
    CHECK(log.network_len == STORE_ADDR_MAX - 1);
    CHECK(log.referer_len == STORE_REFERER_MAX - 1);
    CHECK(raw_int(path, "SELECT max(length(user_agent)) FROM fetches")
          == STORE_UA_MAX);
    CHECK(raw_int(path, "SELECT max(length(addr)) FROM fetches")
          == STORE_ADDR_MAX - 1);
    CHECK(raw_int(path, "SELECT max(length(referer_host)) FROM fetches")
          == STORE_REFERER_MAX - 1);
    store_close(st);
}


/*
 * secs_since_send counts from registration by the server's clock, never
 * from sent_at, and is never negative; burst_clients is 0 from the end
 * of the window on, STORE_BURST_MS after the first fetch (here R - 5000).
 */
static void
test_secs_and_window(void)
{
    enum { R = 10000000 };
    static const int64_t after[] = {
        -5000, 999, 1000, 54999, 55000, 3600000,
    };
    char path[256];
    char text[TEXT_MAX];
    char net[32];
    struct store *st;
    struct store_fetch_rec v[6];
    struct judge_log log = { 0 };
    struct store_write_result res;
    int64_t a, far;

    db_path(path, sizeof(path), "secs");
    st = open_store(path);
    /* sent_at far in the future: it must play no part. */
    a = add_reg(st, "T1", "a@x.com", "x.com", "reply", 99999999999, R);
    for (int i = 0; i < 6; i++) {
        snprintf(net, sizeof(net), "10.0.%d.0", i);
        v[i] = fetch_rec(a, R + after[i], net, "human");
    }
    CHECK(write_v(st, v, 6, &res) == STORE_OK);
    raw_text(path, "SELECT group_concat(reason, ';') FROM (SELECT reason"
             " FROM fetches ORDER BY at)", text, sizeof(text));
    CHECK_STR(text, "secs=0 burst=1;secs=0 burst=1;secs=1 burst=1;"
              "secs=54 burst=1;secs=55 burst=0;secs=3600 burst=0");
    raw_text(path, "SELECT group_concat(secs, ',') FROM (SELECT secs"
             " FROM fetches ORDER BY at)", text, sizeof(text));
    CHECK_STR(text, "0,0,1,54,55,3600");

    /* The extremes of the clock: no overflow either way. */
    far = add_reg(st, "T2", "a@x.com", "x.com", "reply", 0, INT64_MIN);
    v[0] = fetch_rec(far, INT64_MAX, "10.9.0.0", "human");
    CHECK(store_fetches_write(st, v, 1, classify_test, &log, &res)
          == STORE_OK);
    CHECK(log.secs == 18446744073709551);
    CHECK(log.burst == 0);
    far = add_reg(st, "T3", "a@x.com", "x.com", "reply", 0, INT64_MAX);
    v[0] = fetch_rec(far, INT64_MIN, "10.9.0.0", "human");
    CHECK(store_fetches_write(st, v, 1, classify_test, &log, &res)
          == STORE_OK);
    CHECK(log.secs == 0);
    CHECK(log.burst == 1);
    store_close(st);
}


/*
 * Identical fetches (message, network, User-Agent, HEAD-ness, class)
 * less than STORE_COLLAPSE_MS after the last one of a row join it.
 */
static void
test_collapse(void)
{
    enum { T0 = 1000000 };
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_fetch_rec v[8];
    struct store_write_result res;
    int64_t a, c;

    db_path(path, sizeof(path), "collapse");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    c = add(st, "T2", "c@x.com", "x.com", "reply", 100);

    v[0] = fetch_rec(a, T0, "192.0.2.0", "human-A");
    v[1] = fetch_rec(a, T0 + 30000, "192.0.2.0", "human-A");
    v[2] = fetch_rec(a, T0 + 89999, "192.0.2.0", "human-A");  /* 59.999 s */
    v[3] = fetch_rec(a, T0 + 149999, "192.0.2.0", "human-A"); /* 60 s */
    v[4] = fetch_rec(a, T0 + 150000, "192.0.2.0", "human-B");
    v[5] = fetch_rec(a, T0 + 150000, "198.51.100.0", "human-A");
    v[6] = head_rec(a, T0 + 150001, "192.0.2.0", "human-A");
    v[7] = head_rec(a, T0 + 150002, "192.0.2.0", "human-A");
    CHECK(write_v(st, v, 8, &res) == STORE_OK);
    CHECK(res.collapsed == 3 && res.not_kept == 0 && res.unknown == 0);

    /* Across batches too; a fetch inside a run's span joins it without
     * moving it, one before its start makes a row of its own. */
    v[0] = fetch_rec(a, T0 + 200000, "192.0.2.0", "human-A");
    v[1] = fetch_rec(a, T0 + 100, "192.0.2.0", "human-A");
    v[2] = fetch_rec(a, T0 - 10, "192.0.2.0", "human-A");
    CHECK(write_v(st, v, 3, &res) == STORE_OK);
    CHECK(res.collapsed == 2);
    rows_of(path, a, text, sizeof(text));
    CHECK_STR(text, "human:1:999990-999990 human:4:1000000-1089999"
              " human:2:1149999-1200000 human:1:1150000-1150000"
              " human:1:1150000-1150000 head_probe:2:1150001-1150002");
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "9,0,0,0,0,2|6,0|999990,1200000,999990,-");

    /* The same client 5 s and 15 s after registration gets two classes,
     * so two rows: a row never mixes classes. */
    v[0] = fetch_rec(c, REG + 5000, "192.0.2.0", "apple");
    v[1] = fetch_rec(c, REG + 15000, "192.0.2.0", "apple");
    v[2] = fetch_rec(c, REG + 20000, "192.0.2.0", "apple");
    CHECK(write_v(st, v, 3, &res) == STORE_OK);
    CHECK(res.collapsed == 1);
    rows_of(path, c, text, sizeof(text));
    CHECK_STR(text, "privacy_prefetch:1:5042-5042 human:2:15042-20042");
    figures(path, c, text, sizeof(text));
    CHECK_STR(text, "2,0,1,0,0,0|2,0|15042,20042,5042,-");
    store_close(st);
}


/* Past the rows cap fetches are only counted, by class, exactly. */
static void
test_rows_cap(void)
{
    enum { T0 = 1000000 };
    char path[256];
    char text[TEXT_MAX];
    char ua[32];
    struct store *st;
    struct store_fetch_rec v[8];
    struct store_write_result res;
    int64_t a, b, c;

    db_path(path, sizeof(path), "cap");
    st = open_store(path);
    store_set_fetch_rows_max(st, 4);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    b = add(st, "T2", "b@x.com", "x.com", "reply", 100);
    c = add(st, "T3", "c@x.com", "x.com", "reply", 100);

    /* Delivered long before: the fetches below are past its burst
     * window, so they go to fetch_overflow and make no burst. */
    CHECK(fetch1(st, a, T0 - LATE, "198.51.100.0", "mpp-0") == STORE_OK);

    for (int i = 0; i < 5; i++) {
        snprintf(ua, sizeof(ua), "human-%d", i + 1);
        v[i] = fetch_rec(a, T0 + 1000 * (i + 1), "192.0.2.0", ua);
    }
    v[5] = fetch_rec(a, T0 + 6000, "192.0.2.0", "human-1");   /* joins */
    v[6] = fetch_rec(a, T0 + 7000, "192.0.2.0", "scan-1");
    v[7] = fetch_rec(a, T0 + 500, "192.0.2.0", "scan-2");
    CHECK(write_v(st, v, 8, &res) == STORE_OK);
    CHECK(res.not_kept == 4 && res.collapsed == 1 && res.unknown == 0);
    rows_of(path, a, text, sizeof(text));
    CHECK_STR(text, "privacy_prefetch:1:900000-900000"
              " human:2:1001000-1006000 human:1:1002000-1002000"
              " human:1:1003000-1003000");
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "6,0,1,2,0,0|4,4|1001000,1006000,900000,-");
    raw_text(path, "SELECT group_concat(x, ' ') FROM (SELECT class || ':'"
             " || count || ':' || first_at || '-' || last_at AS x"
             " FROM fetch_overflow WHERE message_id = 1 ORDER BY class)",
             text, sizeof(text));
    CHECK_STR(text, "human:2:1004000-1005000 scanner:2:1000500-1007000");

    /* An open only counted still opens the message (from a network of
     * its own: three scanners of one network make a burst). */
    store_set_fetch_rows_max(st, 3);
    v[0] = fetch_rec(b, T0 + 1, "192.0.2.0", "scan-a");
    v[1] = fetch_rec(b, T0 + 2, "192.0.2.0", "scan-b");
    v[2] = fetch_rec(b, T0 + 3, "192.0.2.0", "scan-c");
    v[3] = fetch_rec(b, T0 + 100, "198.51.100.0", "human-z");
    CHECK(write_v(st, v, 4, &res) == STORE_OK);
    CHECK(res.not_kept == 1);
    figures(path, b, text, sizeof(text));
    CHECK_STR(text, "1,0,0,3,0,0|3,1|1000100,1000100,1000001,-");

    /* A cap of 0 keeps no row at all. */
    store_set_fetch_rows_max(st, 0);
    CHECK(fetch1(st, c, T0, "192.0.2.0", "proxy") == STORE_OK);
    figures(path, c, text, sizeof(text));
    CHECK_STR(text, "0,1,0,0,0,0|0,1|1000000,1000000,1000000,-");
    store_close(st);
}


/*
 * 10,000 fetches of one URL: distinct clients of one network fill the
 * default cap and are counted past it (all within a minute of the first:
 * one burst, every fetch scanner); one client replaying collapses into
 * one row.
 */
static void
test_replay(void)
{
    enum { N = 10000, BATCH = 500, T0 = 1000000 };
    char path[256];
    char text[TEXT_MAX];
    char ua[32];
    struct store *st;
    struct store_fetch_rec *v = calloc(BATCH, sizeof(*v));
    struct store_write_result res;
    size_t not_kept = 0, collapsed = 0;
    int64_t a, b;

    db_path(path, sizeof(path), "replay");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    b = add(st, "T2", "b@x.com", "x.com", "reply", 100);
    CHECK(v != NULL);
    for (int i = 0; v != NULL && i < N; i += BATCH) {
        for (int k = 0; k < BATCH; k++) {
            snprintf(ua, sizeof(ua), "human-%d", i + k);
            v[k] = fetch_rec(a, T0 + i + k, "192.0.2.0", ua);
        }
        CHECK(write_v(st, v, BATCH, &res) == STORE_OK);
        not_kept += res.not_kept;
        for (int k = 0; k < BATCH; k++) {
            v[k] = fetch_rec(b, T0 + 5 * (i + k), "192.0.2.0", "human");
        }
        CHECK(write_v(st, v, BATCH, &res) == STORE_OK);
        collapsed += res.collapsed;
    }
    CHECK(not_kept == N - STORE_FETCH_ROWS_DEFAULT);
    CHECK(collapsed == N - 1);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches WHERE message_id = 1")
          == STORE_FETCH_ROWS_DEFAULT);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "0,0,0,10000,0,0|100,9900|-,-,1000000,-");
    CHECK(raw_int(path, "SELECT count(*) FROM burst_unkept") == 100);
    CHECK(raw_int(path, "SELECT count FROM fetch_overflow"
                  " WHERE class = 'scanner'") == 9800);
    rows_of(path, b, text, sizeof(text));
    CHECK_STR(text, "human:10000:1000000-1049995");
    free(v);
    store_close(st);
}


/* Every class is counted on its own; internal is neither open nor reach. */
static void
test_class_counters(void)
{
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_fetch_rec v[6];
    int64_t a, b;

    db_path(path, sizeof(path), "classes");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    b = add(st, "T2", "b@x.com", "x.com", "reply", 100);

    v[0] = fetch_rec(a, 100000, "10.0.1.0", "int-1");
    v[1] = fetch_rec(a, 200000, "10.0.2.0", "mpp-1");
    v[2] = head_rec(a, 250000, "10.0.3.0", "human-h");
    v[3] = fetch_rec(a, 300000, "10.0.4.0", "proxy-1");
    v[4] = fetch_rec(a, 400000, "10.0.5.0", "human-1");
    v[5] = fetch_rec(a, 500000, "10.0.6.0", "scan-1");
    CHECK(write_v(st, v, 6, NULL) == STORE_OK);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "1,1,1,1,1,1|6,0|300000,400000,200000,-");

    CHECK(fetch1(st, b, 100000, "10.0.1.0", "int-1") == STORE_OK);
    figures(path, b, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,1,0|1,0|-,-,-,-");
    store_close(st);
}


/* A classifier that ignores HEAD-ness, or gives a class out of range. */
static void
classify_odd(void *ctx, const struct store_fetch_facts *f,
             struct store_verdict *v)
{
    (void) ctx;
    snprintf(v->rule, sizeof(v->rule), "odd");
    snprintf(v->reason, sizeof(v->reason), "odd");
    if (strcmp(f->user_agent, "probe") == 0) {
        v->cls = STORE_HEAD_PROBE;
    } else if (strcmp(f->user_agent, "bad") == 0) {
        v->cls = 42;
    } else {
        v->cls = STORE_HUMAN;
    }
}


/* A HEAD is stored as head_probe and only a HEAD is. */
static void
test_verdict_settled(void)
{
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_fetch_rec v[3];
    struct store_write_result res;
    int64_t a;

    db_path(path, sizeof(path), "settled");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    v[0] = head_rec(a, 100000, "10.0.1.0", "human");
    v[1] = fetch_rec(a, 200000, "10.0.2.0", "probe");
    v[2] = fetch_rec(a, 300000, "10.0.3.0", "bad");
    CHECK(store_fetches_write(st, v, 3, classify_odd, NULL, &res)
          == STORE_OK);
    raw_text(path, "SELECT group_concat(x, ';') FROM (SELECT class || ','"
             " || rule || ',' || reason AS x FROM fetches ORDER BY at)",
             text, sizeof(text));
    CHECK_STR(text, "head_probe,odd,odd;scanner,odd,odd;"
              "human,invalid,classifier gave class 42");
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "1,0,0,1,0,1|3,0|300000,300000,100000,-");
    store_close(st);
}


/*
 * Three clients from one network in the first minute are a scanner that
 * takes the whole burst: the earlier human GET rows of that network
 * change class and the message's counts and open times follow.  A row
 * that a higher rule labelled (here a privacy relay) keeps its class.
 */
/*
 * A classifier that judges the burst apart from the fetch's own rule, as
 * server/classify.c does: the own verdict by User-Agent prefix, and a
 * burst verdict when three clients share a network.
 */
static void
classify_split(void *ctx, const struct store_fetch_facts *f,
               struct store_verdict *v)
{
    int scan = strncmp(f->user_agent, "scan", 4) == 0;

    (void) ctx;
    v->cls = scan ? STORE_SCANNER : STORE_HUMAN;
    snprintf(v->rule, sizeof(v->rule), scan ? "t-scan" : "t-default");
    snprintf(v->reason, sizeof(v->reason), "own");
    if (f->burst_clients >= 3) {
        v->whole_burst = 1;
        v->burst_cls = STORE_SCANNER;
        snprintf(v->burst_rule, sizeof(v->burst_rule), "t-burst");
        snprintf(v->burst_reason, sizeof(v->burst_reason), "burst");
        if (!scan) {
            v->cls = STORE_SCANNER;
            snprintf(v->rule, sizeof(v->rule), "t-burst");
        }
    }
}


/*
 * The fetch that completes a burst may be one a higher rule caught (a
 * gateway naming itself): the earlier human fetches still take the
 * burst verdict, so the order of a gateway's fetches does not matter.
 */
static void
test_burst_order(void)
{
    enum { R = 1000000 };
    struct store_write_result res;
    struct store_fetch_rec v[3];
    char path[256], text[TEXT_MAX];
    struct store *st;
    int64_t a;

    db_path(path, sizeof(path), "burst-order");
    st = open_store(path);
    a = add_reg(st, "T1", "a@x.com", "x.com", "reply", 100, R);

    v[0] = fetch_rec(a, R + 1000, "203.0.113.0", "human-a");
    v[1] = fetch_rec(a, R + 1100, "203.0.113.0", "human-b");
    v[2] = fetch_rec(a, R + 1200, "203.0.113.0", "scan-gw");
    CHECK(store_fetches_write(st, v, 3, classify_split, NULL, &res)
          == STORE_OK);
    raw_text(path, "SELECT group_concat(x, ' ') FROM (SELECT class || ':'"
             " || rule AS x FROM fetches ORDER BY at)", text, sizeof(text));
    CHECK_STR(text, "scanner:t-burst scanner:t-burst scanner:t-scan");
    figures(path, a, text, sizeof(text));
    CHECK(strncmp(text, "0,0,0,3,", 8) == 0);
    CHECK(call_state_drift(path) == 0);
    store_close(st);
}


static void
test_burst(void)
{
    enum { R = 1000000 };
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_fetch_rec v[5];
    struct store_write_result res;
    int64_t a;

    db_path(path, sizeof(path), "burst");
    st = open_store(path);
    a = add_reg(st, "T1", "a@x.com", "x.com", "reply", 100, R);

    v[0] = fetch_rec(a, R + 1000, "203.0.113.0", "human-a");
    v[1] = fetch_rec(a, R + 1500, "198.51.100.0", "human-x");
    v[2] = fetch_rec(a, R + 2000, "203.0.113.0", "mpp-b");
    v[3] = fetch_rec(a, R + 3000, "203.0.113.0", "human-a");
    v[4] = head_rec(a, R + 3500, "203.0.113.0", "human-a");
    CHECK(write_v(st, v, 5, &res) == STORE_OK);
    CHECK(res.collapsed == 1);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "3,0,1,0,0,1|4,0|1001000,1003000,1001000,-");
    raw_text(path, "SELECT reason FROM fetches WHERE is_head = 1", text,
             sizeof(text));
    CHECK_STR(text, "secs=3 burst=2");

    /* The third client, in a later batch; then the first again, late. */
    v[0] = fetch_rec(a, R + 4000, "203.0.113.0", "human-c");
    v[1] = fetch_rec(a, R + 61000, "203.0.113.0", "human-a");
    CHECK(write_v(st, v, 2, &res) == STORE_OK);
    CHECK(res.collapsed == 0);
    rows_of(path, a, text, sizeof(text));
    CHECK_STR(text, "scanner:2:1001000-1003000 human:1:1001500-1001500"
              " privacy_prefetch:1:1002000-1002000"
              " head_probe:1:1003500-1003500"
              " scanner:1:1004000-1004000 human:1:1061000-1061000");
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "2,0,1,3,0,1|6,0|1001500,1061000,1001000,-");
    raw_text(path, "SELECT group_concat(x, ';') FROM (SELECT rule || ','"
             " || reason AS x FROM fetches WHERE class = 'scanner'"
             " ORDER BY at)", text, sizeof(text));
    CHECK_STR(text, "t-burst,secs=4 burst=3;t-burst,secs=4 burst=3");
    raw_text(path, "SELECT reason FROM fetches WHERE at = 1061000", text,
             sizeof(text));
    CHECK_STR(text, "secs=61 burst=0");
    CHECK(call_state_drift(path) == 0);
    store_close(st);
}


/*
 * Which run a fetch joins when its client has several: only one begun at
 * or before it, the newest by last fetch, as the batch so far left them
 * (rows and times written earlier in the same batch count).
 */
static void
test_collapse_choice(void)
{
    enum { T = 5000000 };
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_fetch_rec v[3];
    struct store_write_result res;
    int64_t a;

    db_path(path, sizeof(path), "collapse-choice");
    st = open_store(path);
    a = add_reg(st, "T1", "a@x.com", "x.com", "reply", 100, REG);
    v[0] = fetch_rec(a, T, "203.0.113.0", "human-a");
    v[1] = fetch_rec(a, T + 100000, "203.0.113.0", "human-a");
    CHECK(write_v(st, v, 2, &res) == STORE_OK);
    CHECK(res.collapsed == 0);

    /* Out of order: the first joins the older run (the newer one begins
     * later), the second only thanks to that, the third the newer run. */
    v[0] = fetch_rec(a, T + 50000, "203.0.113.0", "human-a");
    v[1] = fetch_rec(a, T + 90000, "203.0.113.0", "human-a");
    v[2] = fetch_rec(a, T + 105000, "203.0.113.0", "human-a");
    CHECK(write_v(st, v, 3, &res) == STORE_OK);
    CHECK(res.collapsed == 3);
    rows_of(path, a, text, sizeof(text));
    CHECK_STR(text, "human:3:5000000-5090000 human:2:5100000-5105000");
    store_close(st);
}


/*
 * Fetches over the cap are classified on the same evidence: in the burst
 * window they still make a burst, whose verdict takes the rows of its
 * network and its earlier fetches without a row alike.  Such fetches are
 * counted per client and class, up to a bound per message.
 */
static void
test_burst_over_cap(void)
{
    enum { R = 1000000 };
    char path[256];
    char text[TEXT_MAX];
    char net[32];
    struct store *st;
    struct store_fetch_rec v[5];
    struct store_write_result res;
    int64_t a, b;

    db_path(path, sizeof(path), "burst_cap");
    st = open_store(path);
    store_set_fetch_rows_max(st, 2);
    a = add_reg(st, "T1", "a@x.com", "x.com", "reply", 100, R);
    b = add_reg(st, "T2", "b@x.com", "x.com", "reply", 100, R);

    v[0] = fetch_rec(a, R + 1000, "203.0.113.0", "human-a");
    v[1] = fetch_rec(a, R + 1500, "198.51.100.0", "human-x");
    v[2] = fetch_rec(a, R + 2000, "203.0.113.0", "human-b");
    v[3] = fetch_rec(a, R + 2500, "203.0.113.0", "human-b");
    CHECK(write_v(st, v, 4, &res) == STORE_OK);
    CHECK(res.not_kept == 2);
    v[0] = fetch_rec(a, R + 3000, "203.0.113.0", "human-c");
    CHECK(write_v(st, v, 1, &res) == STORE_OK);
    rows_of(path, a, text, sizeof(text));
    CHECK_STR(text, "scanner:1:1001000-1001000 human:1:1001500-1001500");
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "1,0,0,4,0,0|2,3|1001500,1001500,1001000,-");
    raw_text(path, "SELECT group_concat(x, ' ') FROM (SELECT user_agent"
             " || ':' || class || ':' || count || ':' || first_at || '-'"
             " || last_at AS x FROM burst_unkept ORDER BY id)", text,
             sizeof(text));
    CHECK_STR(text, "human-b:scanner:2:1002000-1002500"
              " human-c:scanner:1:1003000-1003000");

    /* After the window a fetch without a row is counted by class only. */
    v[0] = fetch_rec(a, R + 70000, "203.0.113.0", "human-d");
    CHECK(write_v(st, v, 1, &res) == STORE_OK);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "2,0,0,4,0,0|2,4|1001500,1070000,1001000,-");
    CHECK(raw_int(path, "SELECT count(*) FROM burst_unkept") == 2);
    CHECK(raw_int(path, "SELECT count FROM fetch_overflow") == 1);

    /* Entries for fetches without a row are bounded per message. */
    store_set_fetch_rows_max(st, 0);
    for (int i = 0; i < 150; i++) {
        snprintf(net, sizeof(net), "10.%d.%d.0", i / 100, i % 100);
        v[0] = fetch_rec(b, R + i, net, "human");
        CHECK(write_v(st, v, 1, &res) == STORE_OK);
    }
    CHECK(raw_int(path, "SELECT count(*) FROM burst_unkept"
                  " WHERE message_id = 2") == 100);
    CHECK(raw_int(path, "SELECT count FROM fetch_overflow"
                  " WHERE message_id = 2") == 50);
    figures(path, b, text, sizeof(text));
    CHECK_STR(text, "150,0,0,0,0,0|0,150|1000000,1000149,1000000,-");
    store_close(st);
}


/* A batch that fails half-way leaves no trace, and can be retried. */
/* The test rules, with the team's own client: "team" is internal. */
static void
classify_team(void *ctx, const struct store_fetch_facts *f,
              struct store_verdict *v)
{
    classify_test(ctx, f, v);
    if (strncmp(f->user_agent, "team", 4) == 0) {
        v->cls = STORE_INTERNAL;
        snprintf(v->rule, sizeof(v->rule), "t-team");
    }
}


/* Three gateway clients of 203.0.113.0 fetch message id from at on. */
static int
gateway(struct store *st, int64_t id, int64_t at)
{
    struct store_fetch_rec v[3];

    v[0] = fetch_rec(id, at, "203.0.113.0", "gw-a");
    v[1] = fetch_rec(id, at + 400, "203.0.113.0", "gw-b");
    v[2] = fetch_rec(id, at + 800, "203.0.113.0", "gw-c");
    return write_v(st, v, 3, NULL);
}


/* Every fetch row: message, class, rule and reason, in order. */
static void
all_rows(const char *path, char *out, size_t len)
{
    raw_text(path, "SELECT group_concat(x, ';') FROM (SELECT message_id"
             " || ':' || class || ':' || rule || ':' || reason AS x"
             " FROM fetches ORDER BY message_id, at, id)", out, len);
}


/*
 * The burst window opens at delivery, the message's first fetch of any
 * class but internal, not at registration: a gateway that scans mail a
 * provider deferred still makes a burst.  A customer reply is not a
 * fetch and opens no window.  Reclassifying judges the same way, with
 * the new verdicts deciding which fetch was the first delivery.
 */
static void
test_burst_from_delivery(void)
{
    enum { R = 1000000, LATER = 600000, HOUR = 3600000 };
    char path[256];
    char text[TEXT_MAX];
    char live[5][200];
    char live_rows[2000];
    char rows_now[2000];
    struct store *st;
    int64_t m[5], rows = 0, changed = 0, marked = 0;

    db_path(path, sizeof(path), "burst-delivery");
    st = open_store(path);
    for (int i = 0; i < 5; i++) {
        char ticket[8];

        snprintf(ticket, sizeof(ticket), "B%d", i + 1);
        m[i] = add_reg(st, ticket, "d@x.com", "x.com", "reply", 100, R);
    }

    /* m1: first fetched 10 minutes after registration, by three
     * clients of one network within a second: one burst. */
    CHECK(gateway(st, m[0], R + LATER) == STORE_OK);
    rows_of(path, m[0], text, sizeof(text));
    CHECK_STR(text, "scanner:1:1600000-1600000 scanner:1:1600400-1600400"
              " scanner:1:1600800-1600800");
    raw_text(path, "SELECT group_concat(rule || ',' || reason, ';') FROM"
             " (SELECT rule, reason FROM fetches WHERE message_id = 1"
             " ORDER BY at)", text, sizeof(text));
    CHECK_STR(text, "t-burst,secs=600 burst=3;t-burst,secs=600 burst=3;"
              "t-burst,secs=600 burst=3");
    figures(path, m[0], text, sizeof(text));
    CHECK_STR(text, "0,0,0,3,0,0|3,0|-,-,1600000,-");

    /* m2: the same clients an hour after its first fetch: no burst. */
    CHECK(fetch1(st, m[1], R + LATER, "192.0.2.0", "human-1") == STORE_OK);
    CHECK(gateway(st, m[1], R + LATER + HOUR) == STORE_OK);
    raw_text(path, "SELECT group_concat(class || ',' || reason, ';') FROM"
             " (SELECT class, reason FROM fetches WHERE message_id = 2"
             " ORDER BY at)", text, sizeof(text));
    CHECK_STR(text, "human,secs=600 burst=1;human,secs=4200 burst=0;"
              "human,secs=4200 burst=0;human,secs=4200 burst=0");
    figures(path, m[1], text, sizeof(text));
    CHECK_STR(text, "4,0,0,0,0,0|4,0|1600000,5200800,1600000,-");

    /* m3: the team's own view first: it opens no window. */
    CHECK(fetch1(st, m[2], R + 1000, "10.9.0.0", "int-1") == STORE_OK);
    CHECK(gateway(st, m[2], R + LATER) == STORE_OK);
    figures(path, m[2], text, sizeof(text));
    CHECK_STR(text, "0,0,0,3,1,0|4,0|-,-,1600000,-");

    /* m4: a customer reply first: not a fetch, it opens no window. */
    CHECK(store_reply_record(st, "B4", "d@x.com", R + 500, &marked)
          == STORE_OK && marked == 1);
    CHECK(gateway(st, m[3], R + LATER) == STORE_OK);
    figures(path, m[3], text, sizeof(text));
    CHECK_STR(text, "0,0,0,3,0,0|3,0|1000500,1000500,1000500,1000500");

    /* m5: a fetch the test rules call human opens the window, so the
     * gateway 10 minutes later is no burst... */
    CHECK(fetch1(st, m[4], R + 1000, "10.8.0.0", "team-1") == STORE_OK);
    CHECK(gateway(st, m[4], R + LATER) == STORE_OK);
    figures(path, m[4], text, sizeof(text));
    CHECK_STR(text, "4,0,0,0,0,0|4,0|1001000,1600800,1001000,-");

    /* The rules that wrote the rows find nothing to change. */
    for (int i = 0; i < 5; i++) {
        figures(path, m[i], live[i], sizeof(live[i]));
    }
    all_rows(path, live_rows, sizeof(live_rows));
    CHECK(store_reclassify(st, classify_test, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 18 && changed == 0);
    all_rows(path, rows_now, sizeof(rows_now));
    CHECK_STR(rows_now, live_rows);
    for (int i = 0; i < 5; i++) {
        figures(path, m[i], text, sizeof(text));
        CHECK_STR(text, live[i]);
    }

    /* ...until the rules call it the team's view: then the window
     * opens at the gateway's first fetch, as it did for m3. */
    CHECK(store_reclassify(st, classify_team, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 18 && changed == 4);
    figures(path, m[4], text, sizeof(text));
    CHECK_STR(text, "0,0,0,3,1,0|4,0|-,-,1600000,-");
    for (int i = 0; i < 4; i++) {
        figures(path, m[i], text, sizeof(text));
        CHECK_STR(text, live[i]);
    }

    /* Back to the first rules: back to the live rows. */
    CHECK(store_reclassify(st, classify_test, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 18 && changed == 4);
    all_rows(path, rows_now, sizeof(rows_now));
    CHECK_STR(rows_now, live_rows);
    figures(path, m[4], text, sizeof(text));
    CHECK_STR(text, live[4]);
    store_close(st);
}


static void
test_fetches_write_failure(void)
{
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct store_fetch_rec v[3];
    struct store_write_result res = { 9, 9, 9 };
    int64_t a, b, c;

    db_path(path, sizeof(path), "fetches_fail");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    b = add(st, "T2", "b@x.com", "x.com", "reply", 100);
    c = add(st, "T3", "c@x.com", "x.com", "reply", 100);
    CHECK(fetch1(st, a, 100000, "192.0.2.0", "human") == STORE_OK);

    CHECK(raw_exec(path, "CREATE TRIGGER boom BEFORE INSERT ON fetches"
                   " WHEN NEW.user_agent = 'boom'"
                   " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
          == SQLITE_OK);
    v[0] = fetch_rec(a, 700000, "192.0.2.0", "proxy");
    v[1] = fetch_rec(9999, 700000, "192.0.2.0", "ghost");
    v[2] = fetch_rec(b, 800000, "192.0.2.0", "boom");
    CHECK(write_v(st, v, 3, &res) == STORE_ERR);
    CHECK(res.unknown == 0 && res.collapsed == 0 && res.not_kept == 0);
    CHECK(strstr(store_errmsg(st), "injected failure") != NULL);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches") == 1);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "1,0,0,0,0,0|1,0|100000,100000,100000,-");
    figures(path, b, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|-,-,-,-");

    CHECK(raw_exec(path, "DROP TRIGGER boom") == SQLITE_OK);
    CHECK(write_v(st, v, 3, &res) == STORE_OK);
    CHECK(res.unknown == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches") == 3);
    figures(path, a, text, sizeof(text));
    CHECK_STR(text, "1,1,0,0,0,0|2,0|100000,700000,100000,-");

    /* A failure in a burst's relabelling takes the whole batch back. */
    CHECK(raw_exec(path, "CREATE TRIGGER boom2 BEFORE UPDATE OF class"
                   " ON fetches BEGIN SELECT RAISE(ABORT, 'no relabel');"
                   " END") == SQLITE_OK);
    v[0] = fetch_rec(c, REG + 1000, "192.0.2.0", "human-a");
    v[1] = fetch_rec(c, REG + 2000, "192.0.2.0", "human-b");
    v[2] = fetch_rec(c, REG + 3000, "192.0.2.0", "human-c");
    CHECK(write_v(st, v, 3, &res) == STORE_ERR);
    CHECK(strstr(store_errmsg(st), "no relabel") != NULL);
    figures(path, c, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|-,-,-,-");
    CHECK(raw_int(path, "SELECT count(*) FROM fetches") == 3);
    CHECK(raw_exec(path, "DROP TRIGGER boom2") == SQLITE_OK);
    CHECK(write_v(st, v, 3, &res) == STORE_OK);
    figures(path, c, text, sizeof(text));
    CHECK_STR(text, "0,0,0,3,0,0|3,0|-,-,1042,-");
    store_close(st);
}


/*
 * Another connection holds the write lock past the busy timeout: the
 * batch reports STORE_BUSY, writes nothing, and succeeds once retried.
 * Takes the store's full busy timeout (5 s).
 */
static void
test_fetches_write_busy(void)
{
    char path[256];
    struct store *st;
    sqlite3 *db = NULL;
    struct store_fetch_rec f;
    struct store_write_result res;
    int64_t a;

    db_path(path, sizeof(path), "busy");
    st = open_store(path);
    a = add(st, "T1", "a@x.com", "x.com", "reply", 100);
    f = fetch_rec(a, 100000, "192.0.2.0", "human");

    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL)
          == SQLITE_OK);
    CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)
          == SQLITE_OK);
    CHECK(write_v(st, &f, 1, &res) == STORE_BUSY);
    CHECK(strstr(store_errmsg(st), "locked") != NULL);
    CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);

    CHECK(raw_int(path, "SELECT count(*) FROM fetches") == 0);
    CHECK(write_v(st, &f, 1, &res) == STORE_OK);
    CHECK(raw_int(path, "SELECT n_human FROM messages") == 1);
    store_close(st);
}


/* A customer's reply marks that ticket's messages to them, sent before. */
static void
test_reply_record(void)
{
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    int64_t m1, m2, m3, m4, m5;
    int64_t marked = 99;

    db_path(path, sizeof(path), "reply");
    st = open_store(path);
    m1 = add(st, "T1", "Ann@x.com", "x.com", "reply", 100);
    m2 = add(st, "T1", "ann@x.com", "x.com", "confirmation", 200);
    m3 = add(st, "T1", "ann@x.com", "x.com", "reply", 900);
    m4 = add(st, "T1", "bob@x.com", "x.com", "reply", 150);
    m5 = add(st, "T2", "ann@x.com", "x.com", "reply", 100);
    CHECK(fetch1(st, m2, 300, "192.0.2.0", "human") == STORE_OK);

    CHECK(store_reply_record(st, "T1", "ANN@X.COM", 500, &marked)
          == STORE_OK);
    CHECK(marked == 2);
    figures(path, m1, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|500,500,500,500");
    figures(path, m2, text, sizeof(text));
    CHECK_STR(text, "1,0,0,0,0,0|1,0|300,500,300,500");
    figures(path, m3, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|-,-,-,-");
    figures(path, m4, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|-,-,-,-");
    figures(path, m5, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|-,-,-,-");
    raw_text(path, "SELECT group_concat(coalesce(replied_at, '-'), ',')"
             " FROM (SELECT replied_at FROM customers ORDER BY id)", text,
             sizeof(text));
    CHECK_STR(text, "500,-");

    /* No message of that ticket to that recipient: nothing is written. */
    marked = 99;
    CHECK(store_reply_record(st, "T9", "ann@x.com", 500, &marked)
          == STORE_NOTFOUND);
    CHECK(marked == 0);
    CHECK(strstr(store_errmsg(st), "no message") != NULL);
    CHECK(store_reply_record(st, "T2", "bob@x.com", 600, &marked)
          == STORE_NOTFOUND);
    CHECK(store_reply_record(st, "T1", "nobody@x.com", 600, &marked)
          == STORE_NOTFOUND);
    CHECK(raw_int(path, "SELECT count(*) FROM customers"
                  " WHERE replied_at IS NOT NULL") == 1);
    CHECK(store_reply_record(st, NULL, "ann@x.com", 1, &marked)
          == STORE_ERR);

    /* A later reply marks more; a message keeps its earliest reply as
     * its reply time and first open, its latest as its last open. */
    CHECK(store_reply_record(st, "T1", "Ann@x.com", 1000, &marked)
          == STORE_OK);
    CHECK(marked == 3);
    figures(path, m1, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|500,1000,500,500");
    figures(path, m3, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|1000,1000,1000,1000");
    CHECK(raw_int(path, "SELECT replied_at FROM customers WHERE id = 1")
          == 1000);

    /* Replies reported late: before every message, then in between. */
    CHECK(store_reply_record(st, "T1", "ann@x.com", 50, &marked)
          == STORE_OK);
    CHECK(marked == 0);
    CHECK(raw_int(path, "SELECT replied_at FROM customers WHERE id = 1")
          == 1000);
    CHECK(store_reply_record(st, "T1", "ann@x.com", 250, &marked)
          == STORE_OK);
    CHECK(marked == 2);
    figures(path, m1, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|250,1000,250,250");
    figures(path, m2, text, sizeof(text));
    CHECK_STR(text, "1,0,0,0,0,0|1,0|250,1000,250,250");
    CHECK(raw_int(path, "SELECT last_reply_at FROM messages WHERE id = 2")
          == 1000);
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
        int64_t sent_at, registered_at;
        char header[64];            /* "<null>" for NULL */
        int64_t first_open, reached, replied, not_kept;
        int64_t by_class[STORE_N_CLASSES];
        int has_fetch;
        int64_t at, last_at, count, secs;
        int cls;
        char fetch[200];            /* rule|reason|addr|ua|referer */
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
        t->rows[t->n].registered_at = r->registered_at_ms;
        snprintf(t->rows[t->n].header, 64, "%s", r->header_message_id
                 != NULL ? r->header_message_id : "<null>");
        t->rows[t->n].first_open = r->first_open_at_ms;
        t->rows[t->n].reached = r->reached_at_ms;
        t->rows[t->n].replied = r->replied_at_ms;
        t->rows[t->n].not_kept = r->not_kept;
        memcpy(t->rows[t->n].by_class, r->by_class, sizeof(r->by_class));
        t->rows[t->n].has_fetch = r->has_fetch;
        t->rows[t->n].at = r->fetch_at_ms;
        t->rows[t->n].last_at = r->fetch_last_at_ms;
        t->rows[t->n].count = r->fetch_count;
        t->rows[t->n].secs = r->fetch_secs_since_send;
        t->rows[t->n].cls = r->fetch_class;
        snprintf(t->rows[t->n].fetch, 200, "%s|%s|%s|%s|%s",
                 r->has_fetch ? r->fetch_rule : "-",
                 r->has_fetch ? r->fetch_reason : "-",
                 r->has_fetch ? r->fetch_addr : "-",
                 r->has_fetch ? r->fetch_user_agent : "-",
                 r->has_fetch ? r->fetch_referer_host : "-");
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
    struct store_fetch_rec v[4];
    struct ticket_seen seen;
    int64_t late = 0, early, tie, other, marked;

    db_path(path, sizeof(path), "ticket");
    st = open_store(path);
    CHECK(store_message_add(st, &m, &late) == STORE_OK);
    early = add(st, "T1", "b@x.com", "x.com", "confirmation", 100);
    tie = add(st, "T1", "c@x.com", "x.com", "reply", 300);
    other = add(st, "T2", "a@x.com", "x.com", "reply", 50);
    v[0] = fetch_rec(late, 900000, "192.0.2.0", "human-2");
    snprintf(v[0].referer_host, sizeof(v[0].referer_host), "app.x.com");
    v[1] = fetch_rec(late, 400000, "198.51.100.0", "proxy-1");
    v[2] = fetch_rec(late, 400500, "198.51.100.0", "proxy-1");
    v[3] = fetch_rec(other, 500000, "192.0.2.0", "human-x");
    CHECK(write_v(st, v, 4, NULL) == STORE_OK);
    CHECK(store_reply_record(st, "T1", "c@X.com", 350, &marked)
          == STORE_OK);

    memset(&seen, 0, sizeof(seen));
    CHECK(store_ticket_read(st, "T1", ticket_cb, &seen) == STORE_OK);
    CHECK(seen.n == 4);
    CHECK(seen.rows[0].message_id == early);
    CHECK_STR(seen.rows[0].kind, "confirmation");
    CHECK(seen.rows[0].sent_at == 100 && seen.rows[0].registered_at == REG);
    CHECK(seen.rows[0].has_fetch == 0 && seen.rows[0].count == 0);
    CHECK(seen.rows[0].first_open == 0 && seen.rows[0].reached == 0);
    CHECK_STR(seen.rows[0].header, "<null>");
    CHECK_STR(seen.rows[0].fetch, "-|-|-|-|-");

    CHECK(seen.rows[1].message_id == late);
    CHECK_STR(seen.rows[1].recipient, "A@x.com");
    CHECK_STR(seen.rows[1].header, "<late@x.com>");
    CHECK(seen.rows[1].registered_at == 1);
    CHECK(seen.rows[1].first_open == 400000);
    CHECK(seen.rows[1].reached == 400000 && seen.rows[1].replied == 0);
    CHECK(seen.rows[1].by_class[STORE_HUMAN] == 1);
    CHECK(seen.rows[1].by_class[STORE_PROXY] == 2);
    CHECK(seen.rows[1].by_class[STORE_SCANNER] == 0);
    CHECK(seen.rows[1].not_kept == 0);
    CHECK(seen.rows[1].has_fetch == 1 && seen.rows[1].cls == STORE_PROXY);
    CHECK(seen.rows[1].at == 400000 && seen.rows[1].last_at == 400500);
    CHECK(seen.rows[1].count == 2 && seen.rows[1].secs == 399);
    /* Each the first fetch when written, so each opened its window. */
    CHECK_STR(seen.rows[1].fetch,
              "t-proxy|secs=399 burst=1|198.51.100.0|proxy-1|");

    CHECK(seen.rows[2].message_id == late);
    CHECK(seen.rows[2].cls == STORE_HUMAN && seen.rows[2].count == 1);
    CHECK(seen.rows[2].at == 900000 && seen.rows[2].secs == 899);
    CHECK_STR(seen.rows[2].fetch,
              "t-human|secs=899 burst=1|192.0.2.0|human-2|app.x.com");

    CHECK(seen.rows[3].message_id == tie);      /* same sent_at: by id */
    CHECK(seen.rows[3].has_fetch == 0 && seen.rows[3].at == 0);
    CHECK(seen.rows[3].replied == 350 && seen.rows[3].first_open == 350);
    CHECK(seen.rows[3].reached == 350);

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
    CHECK(seen.n == 1 && seen.rows[0].at == 500000);
    CHECK(seen.rows[0].message_id == other);
    store_close(st);
}


struct domains_seen {
    size_t n;
    struct {
        char domain[32];
        int64_t sent, reached, opened, total_opens, fetches, last;
        int64_t by_class[STORE_N_CLASSES];
    } rows[MAX_ROWS];
};


static int
domains_cb(void *ctx, const struct store_domain_row *r)
{
    struct domains_seen *d = ctx;

    if (d->n < MAX_ROWS) {
        snprintf(d->rows[d->n].domain, 32, "%s", r->domain);
        d->rows[d->n].sent = r->sent;
        d->rows[d->n].reached = r->reached;
        d->rows[d->n].opened = r->opened;
        d->rows[d->n].total_opens = r->total_opens;
        d->rows[d->n].fetches = r->fetches;
        d->rows[d->n].last = r->last_open_at_ms;
        memcpy(d->rows[d->n].by_class, r->by_class, sizeof(r->by_class));
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


/* Checks one domain row against its expected figures, number by number. */
static void
check_domain(const struct domains_seen *d, size_t i, const char *domain,
             const int64_t want[6], const int64_t by_class[6])
{
    CHECK(i < d->n);
    if (i >= d->n) {
        return;
    }
    CHECK_STR(d->rows[i].domain, domain);
    CHECK(d->rows[i].sent == want[0]);
    CHECK(d->rows[i].reached == want[1]);
    CHECK(d->rows[i].opened == want[2]);
    CHECK(d->rows[i].total_opens == want[3]);
    CHECK(d->rows[i].fetches == want[4]);
    CHECK(d->rows[i].last == want[5]);
    for (int c = 0; c < STORE_N_CLASSES; c++) {
        CHECK(d->rows[i].by_class[c] == by_class[c]);
    }
    CHECK(d->rows[i].opened <= d->rows[i].reached);
    CHECK(d->rows[i].reached <= d->rows[i].sent);
}


/*
 * The seeded set.  Every fetch is past the burst window and from its own
 * network.  a.com, sent in [1000, 2000):
 *   a1 @1000  human x2, mpp, HEAD      reached, opened
 *   a2 @1500  mpp                      reached
 *   a3 @1999  HEAD only                reached, no GET
 *   a4 @1200  internal x2              neither
 *   a5 @1300  customer reply @700000   reached, opened, no fetch
 *   a7 @1400  proxy x3, one row        reached, opened
 *   a6 @2000  human @800000            outside [1000, 2000)
 * b.com: b1 @1100 scanner and internal, b2 @1600 nothing.
 * c.com: c1 @1700 human @900000, c2 @1800 nothing; c0 @999 human
 * @950000, outside [1000, 2000).
 */
static struct store *
domains_fixture(const char *path)
{
    struct store *st = open_store(path);
    struct store_fetch_rec v[16];
    int64_t a1, a2, a3, a4, a7, a6, b1, c1, c0, marked;
    size_t n = 0;

    c0 = add(st, "TC", "c@c.com", "c.com", "reply", 999);
    c1 = add(st, "TC", "c@c.com", "c.com", "reply", 1700);
    add(st, "TC", "c@c.com", "c.com", "confirmation", 1800);
    a1 = add(st, "TA", "a@a.com", "a.com", "reply", 1000);
    a2 = add(st, "TA", "a@a.com", "a.com", "reply", 1500);
    a3 = add(st, "TA", "a@a.com", "a.com", "reply", 1999);
    a4 = add(st, "TA", "a@a.com", "a.com", "reply", 1200);
    add(st, "TA5", "a5@a.com", "a.com", "reply", 1300);
    a7 = add(st, "TA", "a@a.com", "a.com", "reply", 1400);
    a6 = add(st, "TA", "a@a.com", "a.com", "reply", 2000);
    b1 = add(st, "TB", "b@b.com", "b.com", "reply", 1100);
    add(st, "TB", "b@b.com", "b.com", "reply", 1600);

    v[n++] = fetch_rec(a1, 100000, "10.0.1.0", "human-1");
    v[n++] = fetch_rec(a1, 110000, "10.0.2.0", "human-2");
    v[n++] = fetch_rec(a1, 120000, "10.0.3.0", "mpp-1");
    v[n++] = head_rec(a1, 130000, "10.0.1.0", "human-1");
    v[n++] = fetch_rec(a2, 140000, "10.0.4.0", "mpp-2");
    v[n++] = head_rec(a3, 150000, "10.0.5.0", "x");
    v[n++] = fetch_rec(a4, 160000, "10.0.6.0", "int-1");
    v[n++] = fetch_rec(a4, 170000, "10.0.7.0", "int-2");
    v[n++] = fetch_rec(a7, 200000, "10.0.8.0", "proxy-1");
    v[n++] = fetch_rec(a7, 210000, "10.0.8.0", "proxy-1");
    v[n++] = fetch_rec(a7, 220000, "10.0.8.0", "proxy-1");
    v[n++] = fetch_rec(a6, 800000, "10.0.9.0", "human-3");
    v[n++] = fetch_rec(b1, 300000, "10.0.10.0", "scan-1");
    v[n++] = fetch_rec(b1, 310000, "10.0.11.0", "int-3");
    v[n++] = fetch_rec(c1, 900000, "10.0.12.0", "human-9");
    v[n++] = fetch_rec(c0, 950000, "10.0.13.0", "human-8");
    CHECK(write_v(st, v, n, NULL) == STORE_OK);
    CHECK(store_reply_record(st, "TA5", "a5@a.com", 700000, &marked)
          == STORE_OK);
    return st;
}


static void
test_domains(void)
{
    /* sent, reached, opened, total_opens, fetches, last_open_at */
    static const int64_t a[6] = { 6, 5, 3, 5, 9, 700000 };
    static const int64_t a_cls[6] = { 2, 3, 2, 0, 2, 2 };
    static const int64_t b[6] = { 2, 1, 0, 0, 2, 0 };
    static const int64_t b_cls[6] = { 0, 0, 0, 1, 1, 0 };
    static const int64_t c[6] = { 2, 1, 1, 1, 1, 900000 };
    static const int64_t c_cls[6] = { 1, 0, 0, 0, 0, 0 };
    static const int64_t a_wide[6] = { 7, 6, 4, 6, 10, 800000 };
    static const int64_t a_wide_cls[6] = { 3, 3, 2, 0, 2, 2 };
    static const int64_t c_wide[6] = { 3, 2, 2, 2, 2, 950000 };
    static const int64_t c_wide_cls[6] = { 2, 0, 0, 0, 0, 0 };
    char path[256];
    struct store *st;
    struct domains_seen d;
    int calls = 0;

    db_path(path, sizeof(path), "domains");
    st = domains_fixture(path);

    memset(&d, 0, sizeof(d));
    CHECK(store_domains(st, 1000, 2000, domains_cb, &d) == STORE_OK);
    CHECK(d.n == 3);
    check_domain(&d, 0, "a.com", a, a_cls);
    check_domain(&d, 1, "b.com", b, b_cls);     /* a tie: by name */
    check_domain(&d, 2, "c.com", c, c_cls);

    /* Widening the window takes in the edges. */
    memset(&d, 0, sizeof(d));
    CHECK(store_domains(st, 999, 2001, domains_cb, &d) == STORE_OK);
    CHECK(d.n == 3);
    check_domain(&d, 0, "a.com", a_wide, a_wide_cls);
    check_domain(&d, 1, "c.com", c_wide, c_wide_cls);
    check_domain(&d, 2, "b.com", b, b_cls);

    memset(&d, 0, sizeof(d));
    CHECK(store_domains(st, 5000, 6000, domains_cb, &d) == STORE_OK);
    CHECK(d.n == 0);

    CHECK(store_domains(st, 0, 10000, stop_cb, &calls) == -42);
    CHECK(calls == 1);
    store_close(st);
}


/*
 * The plan's steps on a raw connection, joined with "; ".  Each step's
 * detail is the fourth column of EXPLAIN QUERY PLAN.
 */
static void
raw_plan(const char *path, const char *sql, char *out, size_t len)
{
    char explain[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    size_t used = 0;

    out[0] = '\0';
    snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(db, explain, -1, &s, NULL) != SQLITE_OK) {
        snprintf(out, len, "<error: %s>", sqlite3_errmsg(db));
    }
    while (s != NULL && sqlite3_step(s) == SQLITE_ROW && used < len) {
        used += (size_t) snprintf(out + used, len - used, "%s%s",
                                  used > 0 ? "; " : "",
                                  (const char *) sqlite3_column_text(s, 3));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}


/*
 * store_domain_series() over the domains fixture.  a.com in [1000, 2001)
 * by sent_at: 1000 human (reached, opened), 1200 internal only (neither),
 * 1300 replied (both), 1400 proxy (both), 1500 mpp (reached), 1999 HEAD
 * (reached), 2000 human (both).
 */
static void
test_domain_series(void)
{
    static const int64_t edges[] = { 1000, 1300, 1500, 2001 };
    static const int64_t gap[] = { 0, 500, 999, 1000, 1001 };
    struct store_series_point p[4];
    char path[256], plan[600];
    struct store *st;

    db_path(path, sizeof(path), "series");
    st = domains_fixture(path);

    memset(p, 0x55, sizeof(p));
    CHECK(store_domain_series(st, "a.com", edges, 4, p) == STORE_OK);
    CHECK(p[0].sent == 2 && p[0].reached == 1 && p[0].opened == 1);
    CHECK(p[1].sent == 2 && p[1].reached == 2 && p[1].opened == 2);
    CHECK(p[2].sent == 3 && p[2].reached == 3 && p[2].opened == 1);

    /* Empty buckets are zeroed; c0 at 999 falls in [999, 1000) only. */
    memset(p, 0x55, sizeof(p));
    CHECK(store_domain_series(st, "c.com", gap, 5, p) == STORE_OK);
    CHECK(p[0].sent == 0 && p[1].sent == 0 && p[1].opened == 0);
    CHECK(p[2].sent == 1 && p[2].reached == 1 && p[2].opened == 1);
    CHECK(p[3].sent == 0 && p[3].reached == 0);
    CHECK(store_domain_series(st, "none.example", gap, 5, p) == STORE_OK);
    CHECK(p[2].sent == 0);

    /* Bad edges are refused with a message, nothing read. */
    CHECK(store_domain_series(st, "a.com", edges, 1, p) == STORE_ERR);
    CHECK(strstr(store_errmsg(st), "edges") != NULL);
    CHECK(store_domain_series(st, "a.com", (const int64_t[]) { 5, 5 }, 2,
                              p) == STORE_ERR);
    CHECK(store_domain_series(st, NULL, edges, 4, p) == STORE_ERR);
    store_close(st);

    /* The statement of S_DOMAIN_SERIES: one range search of
     * messages_by_domain, in index order (no sort step). */
    raw_plan(path, "SELECT sent_at, reached_at IS NOT NULL,"
             " first_open_at IS NOT NULL"
             " FROM messages INDEXED BY messages_by_domain"
             " WHERE domain = ?1 AND sent_at >= ?2 AND sent_at < ?3"
             " ORDER BY sent_at", plan, sizeof(plan));
    CHECK_STR(plan, "SEARCH messages USING INDEX messages_by_domain"
              " (domain=? AND sent_at>? AND sent_at<?)");
}


struct unopened_seen {
    size_t n;
    struct {
        char recipient[32];
        char name[32];
        char phone[32];
        double value;
        int reason;
        int64_t replies, unopened, oldest, newest, last_open;
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
        u->rows[u->n].reason = r->reason;
        u->rows[u->n].replies = r->replies;
        u->rows[u->n].unopened = r->unopened;
        u->rows[u->n].oldest = r->oldest_ms;
        u->rows[u->n].newest = r->newest_ms;
        u->rows[u->n].last_open = r->last_open_at_ms;
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


/* The recipients listed, joined with ','. */
static void
listed(const struct unopened_seen *u, char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < u->n && i < MAX_ROWS && used < len; i++) {
        int w = snprintf(out + used, len - used, "%s%s", i > 0 ? "," : "",
                         u->rows[i].recipient);

        used += w > 0 ? (size_t) w : 0;
    }
}


/* Runs the call list into *u; returns the store code. */
static int
call_list(struct store *st, double min_value, int64_t before,
          unsigned reasons, struct unopened_seen *u)
{
    struct store_unopened_query q = { min_value, before, reasons,
                                      INT64_MAX, -1, 0 };

    memset(u, 0, sizeof(*u));
    return store_unopened(st, &q, unopened_cb, u);
}


/*
 * The call-list fixture (replies unless said; values in brackets; every
 * fetch late and from its own network):
 * - early [940]: T9 @100 answered by a reply event @150, T10 @300;
 * - never [900]: T1 @100, T2 @200, and an opened confirmation that must
 *   count neither way (written NEVER@x.com: the latest form shows);
 * - machine [800]: T3 @100 fetched by mpp, T3 @300;
 * - head [800]: T11 @150 fetched by a HEAD only;
 * - intern [700]: T12 @100 fetched by the team only;
 * - recent [600]: T4 @100 opened @200000, T5 @200, T6 @300;
 * - current [600]: T13 @100, T14 @200 opened: nothing after it;
 * - tie [650]: T21 @100 opened, T22 @100: not sent after it;
 * - replied [950]: T8 @50 answered by a reply event @400, T7 @100;
 * - Mid [500, name and phone]: T17 @50;
 * - low [5]: T15 @100; new [800]: T16 @5000;
 * - conf [900]: confirmations only.
 */
static struct store *
unopened_fixture(const char *path)
{
    struct store *st = open_store(path);
    struct store_message_in m = {
        .ticket_id = "T17", .recipient = "Mid@X.com", .domain = "x.com",
        .kind = "reply", .sent_at_ms = 50, .registered_at_ms = REG,
        .customer_fields = STORE_CUSTOMER_NAME | STORE_CUSTOMER_PHONE
                           | STORE_CUSTOMER_VALUE,
        .customer_name = "Mid", .customer_phone = "+1 555 0101",
        .customer_value = 500,
    };
    struct store_fetch_rec head;
    int64_t id = 0, marked;

    add_valued(st, "T9", "early@x.com", 940, 100);
    add_valued(st, "T10", "early@x.com", 940, 300);
    add_valued(st, "T1", "never@x.com", 900, 100);
    add_valued(st, "T2", "never@x.com", 900, 200);
    id = add(st, "T0", "NEVER@x.com", "x.com", "confirmation", 10);
    CHECK(fetch1(st, id, 100000, "10.0.1.0", "human") == STORE_OK);
    id = add_valued(st, "T3", "machine@x.com", 800, 100);
    CHECK(fetch1(st, id, 100000, "10.0.2.0", "mpp") == STORE_OK);
    add_valued(st, "T3", "machine@x.com", 800, 300);
    id = add_valued(st, "T11", "head@x.com", 800, 150);
    head = head_rec(id, 100000, "10.0.3.0", "human");
    CHECK(write_v(st, &head, 1, NULL) == STORE_OK);
    id = add_valued(st, "T12", "intern@x.com", 700, 100);
    CHECK(fetch1(st, id, 100000, "10.0.4.0", "int") == STORE_OK);
    id = add_valued(st, "T4", "recent@x.com", 600, 100);
    CHECK(fetch1(st, id, 200000, "10.0.5.0", "human") == STORE_OK);
    add_valued(st, "T5", "recent@x.com", 600, 200);
    add_valued(st, "T6", "recent@x.com", 600, 300);
    add_valued(st, "T13", "current@x.com", 600, 100);
    id = add_valued(st, "T14", "current@x.com", 600, 200);
    CHECK(fetch1(st, id, 100000, "10.0.6.0", "proxy") == STORE_OK);
    id = add_valued(st, "T21", "tie@x.com", 650, 100);
    CHECK(fetch1(st, id, 100000, "10.0.8.0", "human") == STORE_OK);
    add_valued(st, "T22", "tie@x.com", 650, 100);
    add_valued(st, "T8", "replied@x.com", 950, 50);
    add_valued(st, "T7", "replied@x.com", 950, 100);
    CHECK(store_message_add(st, &m, &id) == STORE_OK);
    add_valued(st, "T15", "low@x.com", 5, 100);
    add_valued(st, "T16", "new@x.com", 800, 5000);
    add(st, "T20", "conf@x.com", "x.com", "confirmation", 10);
    CHECK(raw_exec(path, "UPDATE customers SET value = 900"
                   " WHERE address_key = 'conf@x.com'") == SQLITE_OK);

    CHECK(store_reply_record(st, "T9", "early@x.com", 150, &marked)
          == STORE_OK);
    CHECK(store_reply_record(st, "T8", "replied@x.com", 400, &marked)
          == STORE_OK);
    return st;
}


/* Checks the fixture's full list, row by row. */
static void
check_full_list(const struct unopened_seen *u)
{
    char names[300];

    listed(u, names, sizeof(names));
    CHECK_STR(names, "early@x.com,NEVER@x.com,machine@x.com,head@x.com,"
              "intern@x.com,recent@x.com,Mid@X.com");
    if (u->n != 7) {
        return;
    }
    CHECK(u->rows[0].reason == STORE_OPENED_NOTHING_RECENT);
    CHECK(u->rows[0].replies == 2 && u->rows[0].unopened == 1);
    CHECK(u->rows[0].oldest == 300 && u->rows[0].newest == 300);
    CHECK(u->rows[0].last_open == 150);
    CHECK_STR(u->rows[0].tickets, "T10");

    CHECK(u->rows[1].reason == STORE_NEVER_FETCHED);
    CHECK(u->rows[1].replies == 2 && u->rows[1].unopened == 2);
    CHECK(u->rows[1].oldest == 100 && u->rows[1].newest == 200);
    CHECK(u->rows[1].last_open == 0);
    CHECK(u->rows[1].n_tickets == 2);
    CHECK_STR(u->rows[1].tickets, "T1,T2");

    CHECK(u->rows[2].reason == STORE_MACHINE_ONLY);
    CHECK(u->rows[2].replies == 2 && u->rows[2].unopened == 2);
    CHECK(u->rows[2].oldest == 100 && u->rows[2].newest == 300);
    CHECK(u->rows[2].n_tickets == 1);
    CHECK_STR(u->rows[2].tickets, "T3");
    CHECK(u->rows[3].reason == STORE_MACHINE_ONLY);
    CHECK(u->rows[3].oldest == 150 && u->rows[3].value == 800.0);
    CHECK(u->rows[4].reason == STORE_NEVER_FETCHED);

    CHECK(u->rows[5].reason == STORE_OPENED_NOTHING_RECENT);
    CHECK(u->rows[5].replies == 3 && u->rows[5].unopened == 2);
    CHECK(u->rows[5].oldest == 200 && u->rows[5].newest == 300);
    CHECK(u->rows[5].last_open == 200000);
    CHECK_STR(u->rows[5].tickets, "T5,T6");

    CHECK(u->rows[6].reason == STORE_NEVER_FETCHED);
    CHECK_STR(u->rows[6].name, "Mid");
    CHECK_STR(u->rows[6].phone, "+1 555 0101");
    CHECK(u->rows[6].value == 500.0);
    CHECK_STR(u->rows[1].name, "<null>");
    CHECK_STR(u->rows[1].phone, "<null>");
}


static void
test_unopened(void)
{
    char path[256];
    char names[300];
    struct store *st;
    struct unopened_seen u;
    int64_t id, marked;

    db_path(path, sizeof(path), "unopened");
    st = unopened_fixture(path);

    CHECK(call_list(st, 10, 1000, 0, &u) == STORE_OK);
    check_full_list(&u);

    /* The reasons mask. */
    CHECK(call_list(st, 10, 1000, 1u << STORE_MACHINE_ONLY, &u)
          == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "machine@x.com,head@x.com");
    CHECK(call_list(st, 10, 1000, 1u << STORE_NEVER_FETCHED
                    | 1u << STORE_OPENED_NOTHING_RECENT, &u) == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "early@x.com,NEVER@x.com,intern@x.com,recent@x.com,"
              "Mid@X.com");
    CHECK(call_list(st, 10, 1000, 1u << 7, &u) == STORE_OK);
    CHECK(u.n == 0);

    /* Bounds are inclusive: value 5 and a reply sent exactly at 5000;
     * the cut-off applies to the oldest unopened reply. */
    CHECK(call_list(st, 5, 5000, 0, &u) == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "early@x.com,NEVER@x.com,machine@x.com,head@x.com,"
              "new@x.com,intern@x.com,recent@x.com,Mid@X.com,low@x.com");
    CHECK(call_list(st, 10, 199, 0, &u) == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "NEVER@x.com,machine@x.com,head@x.com,intern@x.com,"
              "Mid@X.com");
    CHECK(call_list(st, 940.5, 5000, 0, &u) == STORE_OK);
    CHECK(u.n == 0);

    /* Opening the newest reply takes "never" off; a new reply brings
     * them back for that reply only. */
    id = raw_int(path, "SELECT id FROM messages WHERE ticket_id = 'T2'");
    CHECK(fetch1(st, id, 300000, "10.0.7.0", "proxy") == STORE_OK);
    id = add_valued(st, "T18", "never@x.com", 900, 600);
    CHECK(id > 0);
    /* A customer reply on the ticket takes "machine" off. */
    CHECK(store_reply_record(st, "T3", "MACHINE@x.com", 400, &marked)
          == STORE_OK);
    CHECK(marked == 2);
    CHECK(call_list(st, 10, 1000, 0, &u) == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "early@x.com,never@x.com,head@x.com,intern@x.com,"
              "recent@x.com,Mid@X.com");
    CHECK(u.n > 1 && u.rows[1].reason == STORE_OPENED_NOTHING_RECENT);
    CHECK(u.n > 1 && u.rows[1].unopened == 1 && u.rows[1].replies == 3);
    CHECK(u.n > 1 && u.rows[1].oldest == 600 && u.rows[1].newest == 600);
    CHECK(u.n > 1 && u.rows[1].last_open == 300000);
    CHECK_STR(u.rows[1].tickets, "T18");
    CHECK(call_state_drift(path) == 0);

    CHECK(store_unopened(st, NULL, unopened_cb, &u) == STORE_ERR);
    store_close(st);
}


/* Runs one page of the call list into *u; sets *total. */
static int
call_page(struct store *st, int64_t hide_after, int64_t limit,
          int64_t offset, struct unopened_seen *u, int64_t *total)
{
    struct store_unopened_query q = { 10, 1000, 0, hide_after, limit,
                                      offset };
    int rc;

    memset(u, 0, sizeof(*u));
    rc = store_unopened(st, &q, unopened_cb, u);
    if (rc == STORE_OK) {
        rc = store_unopened_count(st, &q, total);
    }
    return rc;
}


/* Pages cut the fixture's full list (check_full_list()) in order. */
static void
test_unopened_pages(void)
{
    char path[256];
    char names[300];
    struct store *st;
    struct unopened_seen u;
    int64_t total = 0;

    db_path(path, sizeof(path), "unopened-pages");
    st = unopened_fixture(path);

    CHECK(call_page(st, INT64_MAX, 3, 0, &u, &total) == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "early@x.com,NEVER@x.com,machine@x.com");
    CHECK(total == 7);
    CHECK(call_page(st, INT64_MAX, 3, 3, &u, &total) == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "head@x.com,intern@x.com,recent@x.com");
    CHECK(u.n == 3 && u.rows[2].unopened == 2 && u.rows[2].replies == 3);
    CHECK(call_page(st, INT64_MAX, 3, 6, &u, &total) == STORE_OK);
    listed(&u, names, sizeof(names));
    CHECK_STR(names, "Mid@X.com");
    CHECK(call_page(st, INT64_MAX, 3, 9, &u, &total) == STORE_OK);
    CHECK(u.n == 0 && total == 7);
    store_close(st);
}


/* What the call list shows of a customer's last call. */
struct last_call_seen {
    const char *recipient;
    int64_t at;
    char outcome[16];
    char note[32];
    int found;
};

static int
last_call_cb(void *ctx, const struct store_unopened_row *r)
{
    struct last_call_seen *c = ctx;

    if (strcmp(r->recipient, c->recipient) == 0) {
        c->found = 1;
        c->at = r->last_call_at_ms;
        snprintf(c->outcome, sizeof(c->outcome), "%s",
                 r->last_call_outcome != NULL ? r->last_call_outcome
                                              : "<null>");
        snprintf(c->note, sizeof(c->note), "%s",
                 r->last_call_note != NULL ? r->last_call_note : "<null>");
    }
    return 0;
}


/* The row of recipient, with hide_after as the query's call cut-off. */
static struct last_call_seen
row_of(struct store *st, const char *recipient, int64_t hide_after)
{
    struct store_unopened_query q = { 10, 1000, 0, hide_after, -1, 0 };
    struct last_call_seen c = { recipient, 0, "", "", 0 };

    CHECK(store_unopened(st, &q, last_call_cb, &c) == STORE_OK);
    return c;
}


static void
test_calls(void)
{
    char path[256];
    struct store *st;
    struct last_call_seen c;
    struct store_call_in vm = { "Never@X.com", 5000, "voicemail", "left" };
    struct store_call_in hit = { "never@x.com", 6000, "reached", NULL };
    struct store_call_in nobody = { "nobody@x.com", 6000, "reached", NULL };
    struct store_call_in bad = { "early@x.com", 6000, "asleep", NULL };
    int64_t id = 0, id2 = 0, total = 0;
    struct unopened_seen u;

    db_path(path, sizeof(path), "calls");
    st = unopened_fixture(path);

    c = row_of(st, "NEVER@x.com", INT64_MAX);
    CHECK(c.found && c.at == 0);
    CHECK_STR(c.outcome, "<null>");

    /* A voicemail shows but hides nothing. */
    CHECK(store_call_add(st, &vm, &id) == STORE_OK && id > 0);
    c = row_of(st, "NEVER@x.com", 0);
    CHECK(c.found && c.at == 5000);
    CHECK_STR(c.outcome, "voicemail");
    CHECK_STR(c.note, "left");

    /* Reached at 6000: hidden while the cut-off lies before it, listed
     * again once it lies at or after it, with the newest call. */
    CHECK(store_call_add(st, &hit, &id2) == STORE_OK && id2 > id);
    c = row_of(st, "NEVER@x.com", 5999);
    CHECK(!c.found);
    CHECK(call_page(st, 5999, 100, 0, &u, &total) == STORE_OK);
    CHECK(total == 6 && u.n == 6);
    c = row_of(st, "NEVER@x.com", 6000);
    CHECK(c.found && c.at == 6000);
    CHECK_STR(c.outcome, "reached");
    CHECK_STR(c.note, "<null>");

    CHECK(store_call_add(st, &nobody, &id) == STORE_NOTFOUND && id == 0);
    CHECK(store_call_add(st, &bad, &id) == STORE_ERR && id == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM calls") == 2);
    store_close(st);
}


/* Other rules: no burst rule, and Apple's prefetch counts as a person. */
static void
classify_v2(void *ctx, const struct store_fetch_facts *f,
            struct store_verdict *v)
{
    struct store_fetch_facts g = *f;

    g.burst_clients = 0;
    classify_test(ctx, &g, v);
    if (v->cls == STORE_PRIVACY_PREFETCH) {
        v->cls = STORE_HUMAN;
        snprintf(v->rule, sizeof(v->rule), "v2-mpp");
    }
}


/* The test rules, trusting no person: human becomes scanner. */
static void
classify_v3(void *ctx, const struct store_fetch_facts *f,
            struct store_verdict *v)
{
    classify_test(ctx, f, v);
    if (v->cls == STORE_HUMAN) {
        v->cls = STORE_SCANNER;
        snprintf(v->rule, sizeof(v->rule), "v3");
    }
}


/*
 * The reclassify fixture:
 * - m1: test_burst()'s burst, rows relabelled by a whole_burst verdict;
 * - m2: two privacy prefetches (mpp late, apple 5 s after registration);
 * - m3: a scanner and an mpp row and, over a cap of 2 and from another
 *   network (so no burst), a human and an mpp fetch;
 * - m4: internal, human @150000 and a customer reply @200000.
 */
static struct store *
reclassify_fixture(const char *path, int64_t id[4])
{
    enum { R = 1000000, T0 = 2000000 };
    struct store *st = open_store(path);
    struct store_fetch_rec v[5];
    int64_t marked;

    id[0] = add_reg(st, "R1", "a@x.com", "x.com", "reply", 100, R);
    id[1] = add(st, "R2", "b@x.com", "x.com", "reply", 100);
    id[2] = add(st, "R3", "c@x.com", "x.com", "reply", 100);
    id[3] = add(st, "R4", "d@x.com", "x.com", "reply", 100);

    v[0] = fetch_rec(id[0], R + 1000, "203.0.113.0", "human-a");
    v[1] = fetch_rec(id[0], R + 1500, "198.51.100.0", "human-x");
    v[2] = fetch_rec(id[0], R + 2000, "203.0.113.0", "mpp-b");
    v[3] = fetch_rec(id[0], R + 3000, "203.0.113.0", "human-a");
    v[4] = head_rec(id[0], R + 3500, "203.0.113.0", "human-a");
    CHECK(write_v(st, v, 5, NULL) == STORE_OK);
    v[0] = fetch_rec(id[0], R + 4000, "203.0.113.0", "human-c");
    v[1] = fetch_rec(id[0], R + 61000, "203.0.113.0", "human-a");
    v[2] = fetch_rec(id[1], 100000, "10.0.1.0", "mpp-1");
    v[3] = fetch_rec(id[1], REG + 5000, "10.0.2.0", "apple-1");
    v[4] = fetch_rec(id[3], 100000, "10.0.4.0", "int-1");
    CHECK(write_v(st, v, 5, NULL) == STORE_OK);
    CHECK(fetch1(st, id[3], 150000, "10.0.5.0", "human-1") == STORE_OK);

    store_set_fetch_rows_max(st, 2);
    v[0] = fetch_rec(id[2], T0 + 1, "10.0.3.0", "scan-a");
    v[1] = fetch_rec(id[2], T0 + 2, "10.0.3.0", "mpp-a");
    v[2] = fetch_rec(id[2], T0 + 3, "10.0.6.0", "human-z");
    v[3] = fetch_rec(id[2], T0 + 4, "10.0.6.0", "mpp-z");
    CHECK(write_v(st, v, 4, NULL) == STORE_OK);
    store_set_fetch_rows_max(st, STORE_FETCH_ROWS_DEFAULT);

    CHECK(store_reply_record(st, "R4", "d@x.com", 200000, &marked)
          == STORE_OK);
    return st;
}


/* The figures of the four fixture messages, joined with ' '. */
static void
all_figures(const char *path, const int64_t id[4], char *out, size_t len)
{
    char one[200];
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; i < 4 && used < len; i++) {
        int w;

        figures(path, id[i], one, sizeof(one));
        w = snprintf(out + used, len - used, "%s%s", i > 0 ? " " : "",
                     one);
        used += w > 0 ? (size_t) w : 0;
    }
}


static void
test_reclassify(void)
{
    static const char live[] =
        "2,0,1,3,0,1|6,0|1001500,1061000,1001000,-"
        " 0,0,2,0,0,0|2,0|-,-,5042,-"
        " 1,0,2,1,0,0|2,2|2000003,2000003,2000001,-"
        " 1,0,0,0,1,0|2,0|150000,200000,150000,200000";
    char path[256];
    char live_rows[TEXT_MAX], text[TEXT_MAX];
    struct store *st;
    int64_t id[4];
    int64_t rows = 99, changed = 99;

    db_path(path, sizeof(path), "reclassify");
    st = reclassify_fixture(path, id);
    all_figures(path, id, text, sizeof(text));
    CHECK_STR(text, live);
    rows_of(path, id[0], live_rows, sizeof(live_rows));

    /* The rules that wrote the rows find nothing to change: bursts are
     * recomputed from the rows as the writes saw them. */
    CHECK(store_reclassify(st, classify_test, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 12 && changed == 0);
    all_figures(path, id, text, sizeof(text));
    CHECK_STR(text, live);

    /* Other rules: m3's mpp row turns human, its mpp fetch over the cap
     * stays privacy_prefetch. */
    CHECK(store_reclassify(st, classify_v2, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 12 && changed == 6);
    all_figures(path, id, text, sizeof(text));
    CHECK_STR(text, "6,0,0,0,0,1|6,0|1001000,1061000,1001000,-"
              " 2,0,0,0,0,0|2,0|5042,100000,5042,-"
              " 2,0,1,1,0,0|2,2|2000002,2000003,2000001,-"
              " 1,0,0,0,1,0|2,0|150000,200000,150000,200000");
    raw_text(path, "SELECT rule || ',' || reason FROM fetches"
             " WHERE user_agent = 'mpp-b'", text, sizeof(text));
    CHECK_STR(text, "v2-mpp,secs=2 burst=0");

    /* Back to the first rules: the burst takes its rows again. */
    CHECK(store_reclassify(st, classify_test, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 12 && changed == 6);
    all_figures(path, id, text, sizeof(text));
    CHECK_STR(text, live);
    rows_of(path, id[0], text, sizeof(text));
    CHECK_STR(text, live_rows);

    /* No person at all: the reply still opens m4, and the human fetch
     * over the cap keeps its class (as it did above) and opens m3. */
    CHECK(store_reclassify(st, classify_v3, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 12 && changed == 3);
    all_figures(path, id, text, sizeof(text));
    CHECK_STR(text, "0,0,1,5,0,1|6,0|-,-,1001000,-"
              " 0,0,2,0,0,0|2,0|-,-,5042,-"
              " 1,0,2,1,0,0|2,2|2000003,2000003,2000001,-"
              " 0,0,0,1,1,0|2,0|200000,200000,150000,200000");

    /* A failure leaves everything as it was. */
    CHECK(raw_exec(path, "CREATE TRIGGER boom BEFORE UPDATE ON fetches"
                   " BEGIN SELECT RAISE(ABORT, 'no reclassify'); END")
          == SQLITE_OK);
    CHECK(store_reclassify(st, classify_test, NULL, &rows, &changed)
          == STORE_ERR);
    CHECK(rows == 0 && changed == 0);
    CHECK(strstr(store_errmsg(st), "no reclassify") != NULL);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches"
                  " WHERE class = 'scanner'") == 6);
    CHECK(raw_exec(path, "DROP TRIGGER boom") == SQLITE_OK);
    CHECK(store_reclassify(st, NULL, NULL, &rows, &changed) == STORE_ERR);
    CHECK(call_state_drift(path) == 0);
    store_close(st);
}


/* The version 1 schema, as shipped (store_sqlite.c, migration step 1). */
static const char v1_schema[] =
    "CREATE TABLE customers ("
    "  id INTEGER PRIMARY KEY,"
    "  address_key TEXT NOT NULL UNIQUE,"
    "  address TEXT NOT NULL,"
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
    "CREATE INDEX opens_by_message ON opens(message_id, at);";

/*
 * A version 1 file as Beacon 1 left it: ann's reply opened three times,
 * bob's once before its registration (a clock step), ann's confirmation
 * never; ids 4 and 5 were used by messages deleted since.
 */
static const char v1_data[] =
    "PRAGMA journal_mode = WAL;"
    "INSERT INTO customers VALUES (1, 'ann@x.com', 'Ann@x.com', 'Ann',"
    "  NULL, 100), (2, 'bob@y.com', 'bob@y.com', NULL, NULL, 0);"
    "INSERT INTO messages VALUES"
    "  (1, 'T1', 1, 'Ann@x.com', 'x.com', 'reply', 1000, 1000, '<a@x>',"
    "   5000, 9000, 3),"
    "  (2, 'T1', 2, 'bob@y.com', 'y.com', 'reply', 2000, 2500, NULL,"
    "   2100, 2100, 1),"
    "  (3, 'T2', 1, 'ann@x.com', 'x.com', 'confirmation', 3000, 3000,"
    "   NULL, NULL, NULL, 0);"
    "INSERT INTO opens VALUES (1, 1, 5000, '192.0.2.0', 'Mail/1'),"
    "  (2, 1, 7000, '192.0.2.0', 'Mail/2'),"
    "  (3, 1, 9000, '192.0.2.0', 'Mail/3'),"
    "  (4, 2, 2100, '198.51.100.0', 'Chrome');"
    "UPDATE sqlite_sequence SET seq = 5 WHERE name = 'messages';"
    "PRAGMA user_version = 1;";


static void
test_migrate_v1(void)
{
    static const int64_t x[6] = { 2, 1, 1, 3, 3, 9000 };
    static const int64_t x_cls[6] = { 3, 0, 0, 0, 0, 0 };
    static const int64_t y[6] = { 1, 1, 1, 1, 1, 2100 };
    static const int64_t y_cls[6] = { 1, 0, 0, 0, 0, 0 };
    char path[256];
    char text[TEXT_MAX];
    struct store *st;
    struct domains_seen d;
    struct ticket_seen t;

    db_path(path, sizeof(path), "migrate");
    CHECK(raw_exec(path, v1_schema) == SQLITE_OK);
    CHECK(raw_exec(path, v1_data) == SQLITE_OK);
    st = open_store(path);
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }

    CHECK(raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
    raw_text(path, "PRAGMA integrity_check", text, sizeof(text));
    CHECK_STR(text, "ok");
    CHECK(raw_int(path, "SELECT count(*) FROM pragma_foreign_key_check")
          == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master"
                  " WHERE name IN ('opens', 'opens_by_message')") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM pragma_table_info('messages')"
                  " WHERE name = 'open_count'") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM"
                  " pragma_index_info('messages_by_sent')") == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM"
                  " pragma_index_info('messages_by_customer')") == 3);

    raw_text(path, "SELECT group_concat(x, ';') FROM (SELECT id || '|'"
             " || message_id || '|' || at || '|' || last_at || '|' || count"
             " || '|' || is_head || '|' || addr || '|' || user_agent || '|'"
             " || referer_host || '|' || secs || '|' || class || '|' || rule"
             " AS x FROM fetches ORDER BY id)", text, sizeof(text));
    CHECK_STR(text, "1|1|5000|5000|1|0|192.0.2.0|Mail/1||4|human|v1;"
              "2|1|7000|7000|1|0|192.0.2.0|Mail/2||6|human|v1;"
              "3|1|9000|9000|1|0|192.0.2.0|Mail/3||8|human|v1;"
              "4|2|2100|2100|1|0|198.51.100.0|Chrome||0|human|v1");
    raw_text(path, "SELECT DISTINCT reason FROM fetches", text,
             sizeof(text));
    CHECK_STR(text, "recorded before classification");
    figures(path, 1, text, sizeof(text));
    CHECK_STR(text, "3,0,0,0,0,0|3,0|5000,9000,5000,-");
    figures(path, 2, text, sizeof(text));
    CHECK_STR(text, "1,0,0,0,0,0|1,0|2100,2100,2100,-");
    figures(path, 3, text, sizeof(text));
    CHECK_STR(text, "0,0,0,0,0,0|0,0|-,-,-,-");
    raw_text(path, "SELECT count(replied_at) || ',' || count(*)"
             " FROM customers", text, sizeof(text));
    CHECK_STR(text, "0,2");

    /* The reports and the writes work on the migrated data. */
    memset(&d, 0, sizeof(d));
    CHECK(store_domains(st, 0, 10000, domains_cb, &d) == STORE_OK);
    CHECK(d.n == 2);
    check_domain(&d, 0, "x.com", x, x_cls);
    check_domain(&d, 1, "y.com", y, y_cls);
    memset(&t, 0, sizeof(t));
    CHECK(store_ticket_read(st, "T1", ticket_cb, &t) == STORE_OK);
    CHECK(t.n == 4 && t.rows[0].count == 1 && t.rows[0].cls == STORE_HUMAN);
    CHECK_STR(t.rows[0].fetch,
              "v1|recorded before classification|192.0.2.0|Mail/1|");
    CHECK(add(st, "T3", "ann@x.com", "x.com", "reply", 4000) == 6);
    CHECK(fetch1(st, 3, 100000, "192.0.2.0", "proxy") == STORE_OK);
    figures(path, 3, text, sizeof(text));
    CHECK_STR(text, "0,1,0,0,0,0|1,0|100000,100000,100000,-");
    store_close(st);

    st = open_store(path);
    CHECK(st != NULL && raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
    store_close(st);
}


/* The slices of domain_slices (store_sqlite.c: sent_at >> 26). */
#define SLICE ((int64_t) 1 << 26)
#define SLICE_BASE (40 * SLICE)
#define WIDE_MAX 4096
#define REPLY_AT (SLICE_BASE + 20 * SLICE)   /* after every message */

/* The figures of a domain_slices row, and the same worked out from the
 * messages (the roll-up must always equal this). */
#define SLICE_FIGURES \
    "SELECT coalesce(group_concat(x, ';'), '') FROM (SELECT slice || ','" \
    " || domain || ',' || sent || ',' || reached || ',' || opened || ','" \
    " || n_human || ',' || n_proxy || ',' || n_privacy_prefetch || ','" \
    " || n_scanner || ',' || n_internal || ',' || n_head_probe || ','" \
    " || coalesce(last_open_at, '-') AS x FROM "
#define SLICES_STORED SLICE_FIGURES "domain_slices ORDER BY slice, domain)"
#define SLICES_FROM_MESSAGES SLICE_FIGURES \
    "(SELECT sent_at >> 26 AS slice, domain, count(*) AS sent," \
    " count(reached_at) AS reached, count(first_open_at) AS opened," \
    " sum(n_human) AS n_human, sum(n_proxy) AS n_proxy," \
    " sum(n_privacy_prefetch) AS n_privacy_prefetch," \
    " sum(n_scanner) AS n_scanner, sum(n_internal) AS n_internal," \
    " sum(n_head_probe) AS n_head_probe," \
    " max(last_open_at) AS last_open_at FROM messages GROUP BY 1, 2)" \
    " ORDER BY slice, domain)"


/* Appends a domains row to the text in ctx, as domains_reference(). */
static int
render_cb(void *ctx, const struct store_domain_row *r)
{
    char *out = ctx;
    size_t used = strlen(out);

    snprintf(out + used, WIDE_MAX - used,
             "%s%s|%lld|%lld|%lld|%lld|%lld|%lld|%lld|%lld|%lld|%lld|%lld"
             "|%lld", used > 0 ? ";" : "", r->domain, (long long) r->sent,
             (long long) r->reached, (long long) r->opened,
             (long long) r->total_opens, (long long) r->fetches,
             (long long) r->by_class[0], (long long) r->by_class[1],
             (long long) r->by_class[2], (long long) r->by_class[3],
             (long long) r->by_class[4], (long long) r->by_class[5],
             (long long) r->last_open_at_ms);
    return 0;
}


/* The domains report worked out from messages alone, by the version 2
 * query, in render_cb()'s form. */
static void
domains_reference(const char *path, int64_t since, int64_t until,
                  char *out)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(group_concat(x, ';'), '') FROM (SELECT"
             " domain || '|' || count(*) || '|' || count(reached_at) || '|'"
             " || count(first_open_at) || '|' || sum(n_human + n_proxy)"
             " || '|' || sum(n_human + n_proxy + n_privacy_prefetch"
             " + n_scanner + n_internal) || '|' || sum(n_human) || '|'"
             " || sum(n_proxy) || '|' || sum(n_privacy_prefetch) || '|'"
             " || sum(n_scanner) || '|' || sum(n_internal) || '|'"
             " || sum(n_head_probe) || '|' || coalesce(max(last_open_at), 0)"
             " AS x, count(*) AS n, domain AS d FROM messages"
             " WHERE sent_at >= %lld AND sent_at < %lld GROUP BY domain"
             " ORDER BY n DESC, d ASC)", (long long) since,
             (long long) until);
    raw_text(path, sql, out, WIDE_MAX);
}


/*
 * The roll-up equals the messages, and the report equals the version 2
 * report over windows whose bounds fall on, next to and between slice
 * edges and messages, down to the extreme times.  Returns the number of
 * windows that differ (each is printed).
 */
static int
check_domain_windows(struct store *st, const char *path)
{
    static const int64_t at[] = {
        INT64_MIN, INT64_MIN + 1, -SLICE - 1, -SLICE, -1, 0, 1,
        SLICE_BASE - 1, SLICE_BASE, SLICE_BASE + 1, SLICE_BASE + SLICE / 2,
        SLICE_BASE + SLICE - 1, SLICE_BASE + SLICE, SLICE_BASE + 2 * SLICE
        + 7, SLICE_BASE + 3 * SLICE - 1, SLICE_BASE + 3 * SLICE,
        SLICE_BASE + 3 * SLICE + 1, SLICE_BASE + 5 * SLICE,
        SLICE_BASE + 9 * SLICE + 123, SLICE_BASE + 12 * SLICE,
        INT64_MAX - 1, INT64_MAX,
    };
    static char want[WIDE_MAX];
    static char got[WIDE_MAX];
    size_t n = sizeof(at) / sizeof(at[0]);
    int bad = 0;

    raw_text(path, SLICES_STORED, want, sizeof(want));
    raw_text(path, SLICES_FROM_MESSAGES, got, sizeof(got));
    CHECK_STR(want, got);

    for (size_t i = 0; i < n; i++) {
        for (size_t j = i; j < n; j++) {
            domains_reference(path, at[i], at[j], want);
            got[0] = '\0';
            CHECK(store_domains(st, at[i], at[j], render_cb, got)
                  == STORE_OK);
            if (strcmp(want, got) != 0) {
                fprintf(stderr, "[%lld, %lld): want %s\n got %s\n",
                        (long long) at[i], (long long) at[j], want, got);
                bad++;
            }
        }
    }
    return bad;
}


/* A judge that finds every GET a scanner: reclassifying with it takes
 * every open of a row away. */
static void
classify_all_scan(void *ctx, const struct store_fetch_facts *f,
                  struct store_verdict *v)
{
    classify_test(ctx, f, v);
    if (!f->is_head) {
        v->cls = STORE_SCANNER;
        snprintf(v->rule, sizeof(v->rule), "t-all-scan");
    }
}


/*
 * Messages of four domains over ten slices and on their edges (and a
 * few before 1970), with every kind of fetch; in message 3 of every 5 a
 * burst relabels the two latest opens of its slice (in one batch or in
 * three).  Returns the number
 * of messages.
 */
static int64_t
slices_fixture(struct store *st)
{
    enum { R = 1000000 };
    static const int64_t odd[] = {
        SLICE_BASE, SLICE_BASE - 1, SLICE_BASE + 3 * SLICE,
        SLICE_BASE + 3 * SLICE - 1, -1, -SLICE, -SLICE - 1, 0,
    };
    struct store_fetch_rec v[4];
    char ticket[16], rcpt[32], dom[16], net[24];
    int64_t n = 0, sent, id;

    for (int64_t i = 0; i < 56; i++) {
        sent = i < 48 ? SLICE_BASE + i * (SLICE / 5) + i % 3 - 1
                      : odd[i - 48];
        snprintf(ticket, sizeof(ticket), "S%lld", (long long) i);
        snprintf(dom, sizeof(dom), "d%lld.com", (long long) (i % 4));
        snprintf(rcpt, sizeof(rcpt), "u%lld@%s", (long long) i, dom);
        snprintf(net, sizeof(net), "10.0.%lld.0", (long long) i);
        id = add_reg(st, ticket, rcpt, dom, "reply", sent, R);
        n += id > 0;

        switch (i % 5) {
        case 0:
            CHECK(fetch1(st, id, R + 100000 + i, net, "human-1") == 0);
            break;
        case 1:
            v[0] = fetch_rec(id, R + 100000, net, "proxy-1");
            v[1] = fetch_rec(id, R + 200000 + i, "10.9.9.0", "mpp-1");
            CHECK(write_v(st, v, 2, NULL) == STORE_OK);
            break;
        case 2:
            v[0] = head_rec(id, R + 100000, net, "x");
            v[1] = fetch_rec(id, R + 200000, "10.9.8.0", "scan-1");
            CHECK(write_v(st, v, 2, NULL) == STORE_OK);
            break;
        case 3:
            /* One batch, or one batch each. */
            v[0] = fetch_rec(id, R + 9000000 + i, net, "human-a");
            v[1] = fetch_rec(id, R + 9000500 + i, net, "human-b");
            v[2] = fetch_rec(id, R + 9001000 + i, net, "human-c");
            for (int k = 0; i % 2 == 0 && k < 3; k++) {
                CHECK(write_v(st, &v[k], 1, NULL) == STORE_OK);
            }
            CHECK(i % 2 == 0 || write_v(st, v, 3, NULL) == STORE_OK);
            break;
        default:
            CHECK(fetch1(st, id, R + 100000, net, "int-1") == 0);
            break;
        }
    }
    return n;
}


static void
test_domain_slices(void)
{
    char path[256];
    char longdom[300];
    struct store *st;
    int64_t marked = 0;
    int64_t id;

    db_path(path, sizeof(path), "slices");
    st = open_store(path);
    CHECK(slices_fixture(st) == 56);
    /* Message 3 of every 5 ends a scanner, its two opens relabelled. */
    CHECK(raw_int(path, "SELECT count(*) FROM messages WHERE n_scanner = 3"
                  " AND last_open_at IS NULL") == 11);
    CHECK(check_domain_windows(st, path) == 0);

    /* A domain too long to sum in memory is written fetch by fetch. */
    memset(longdom, 'x', sizeof(longdom) - 5);
    memcpy(longdom + sizeof(longdom) - 5, ".com", 5);
    id = add(st, "SL", "u@x.com", longdom, "reply", SLICE_BASE + 5);
    CHECK(fetch1(st, id, LATE, "10.8.8.0", "human-1") == STORE_OK);
    CHECK(fetch1(st, id, LATE + 1, "10.8.8.0", "mpp-1") == STORE_OK);
    CHECK(raw_int(path, "SELECT n_human + n_privacy_prefetch"
                  " FROM domain_slices WHERE length(domain) = 299") == 2);
    CHECK(check_domain_windows(st, path) == 0);

    /* A reply opens a message; another moves its newest open later. */
    CHECK(store_reply_record(st, "S4", "u4@d0.com", REPLY_AT, &marked)
          == STORE_OK && marked == 1);
    CHECK(store_reply_record(st, "S5", "u5@d1.com", REPLY_AT, &marked)
          == STORE_OK && marked == 1);
    CHECK(store_reply_record(st, "S5", "u5@d1.com", REPLY_AT + 1, &marked)
          == STORE_OK);
    CHECK(raw_int(path, "SELECT max(last_open_at) FROM domain_slices")
          == REPLY_AT + 1);
    CHECK(check_domain_windows(st, path) == 0);

    /* Every open of a row goes: the newest opens of slices go back. */
    CHECK(store_reclassify(st, classify_all_scan, NULL, &marked, &marked)
          == STORE_OK);
    CHECK(raw_int(path, "SELECT count(*) FROM messages"
                  " WHERE n_human + n_proxy > 0") == 0);
    CHECK(check_domain_windows(st, path) == 0);

    /* Nothing may change the roll-up behind the triggers' back; a
     * deleted message leaves its slice (version 5). */
    CHECK(raw_exec(path, "UPDATE messages SET sent_at = 5 WHERE id = 1")
          != SQLITE_OK);
    CHECK(raw_exec(path, "UPDATE messages SET domain = 'z' WHERE id = 1")
          != SQLITE_OK);
    CHECK(raw_int(path, "SELECT count(*) FROM messages") == 57);
    CHECK(raw_exec(path, "DELETE FROM messages WHERE id IN (1, 2)")
          == SQLITE_OK);
    CHECK(raw_int(path, "SELECT count(*) FROM messages") == 55);
    CHECK(check_domain_windows(st, path) == 0);
    store_close(st);
}


/* Later versions taken back, step by step, to the schemas shipped. */
static const char v6_to_v5[] =
    "DROP TABLE api_keys;"
    "PRAGMA user_version = 5;";

static const char v4_to_v3[] =
    "DROP INDEX customers_on_call_list;"
    "DROP INDEX calls_by_customer;"
    "DROP TABLE calls;"
    "ALTER TABLE customers DROP COLUMN call_lo;"
    "ALTER TABLE customers DROP COLUMN call_oldest;"
    "ALTER TABLE customers DROP COLUMN call_reached;"
    "ALTER TABLE customers DROP COLUMN last_call_id;"
    "PRAGMA user_version = 3;";

/* Joins every call-list row's figures into out. */
static void
render_call_list(struct store *st, char *out, size_t len)
{
    struct unopened_seen u;
    size_t used = 0;

    out[0] = '\0';
    CHECK(call_list(st, 0, INT64_MAX, 0, &u) == STORE_OK);
    for (size_t i = 0; i < u.n && i < MAX_ROWS && used < len; i++) {
        int w = snprintf(out + used, len - used, "%s %d %" PRId64 " %"
                         PRId64 " %" PRId64 " %" PRId64 " %s;",
                         u.rows[i].recipient, u.rows[i].reason,
                         u.rows[i].replies, u.rows[i].unopened,
                         u.rows[i].oldest, u.rows[i].newest,
                         u.rows[i].tickets);

        used += w > 0 ? (size_t) w : 0;
    }
}


/* A version 3 file gains the kept call-list state and lists the same. */
static void
test_migrate_v3(void)
{
    char path[256];
    char before[WIDE_MAX];
    char after[WIDE_MAX];
    struct store *st;

    db_path(path, sizeof(path), "migrate-v3");
    st = unopened_fixture(path);
    render_call_list(st, before, sizeof(before));
    store_close(st);
    CHECK(strlen(before) > 100);
    CHECK(raw_exec(path, v6_to_v5) == SQLITE_OK);
    CHECK(raw_exec(path, v4_to_v3) == SQLITE_OK);
    CHECK(raw_int(path, "SELECT count(*) FROM pragma_table_info('customers')"
                  " WHERE name LIKE 'call%'") == 0);

    st = open_store(path);
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    CHECK(raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
    CHECK(call_state_drift(path) == 0);
    render_call_list(st, after, sizeof(after));
    CHECK_STR(after, before);
    store_close(st);
}


static const char v3_to_v2[] =
    "DROP TRIGGER messages_slices_insert;"
    "DROP TRIGGER messages_slices_delete;"
    "DROP TRIGGER messages_slices_move;"
    "DROP TABLE domain_slices;"
    "DROP INDEX messages_by_domain;"
    "DROP INDEX messages_by_sent;"
    "CREATE INDEX messages_by_sent ON messages(sent_at, domain,"
    "  reached_at, first_open_at, last_open_at, n_human, n_proxy,"
    "  n_privacy_prefetch, n_scanner, n_internal, n_head_probe);"
    "PRAGMA user_version = 2;";


static void
test_migrate_v2(void)
{
    char path[256];
    char before[WIDE_MAX];
    char after[WIDE_MAX];
    struct store *st;

    db_path(path, sizeof(path), "migrate-v2");
    st = open_store(path);
    CHECK(slices_fixture(st) == 56);
    store_close(st);
    CHECK(raw_exec(path, v6_to_v5) == SQLITE_OK);
    CHECK(raw_exec(path, v4_to_v3) == SQLITE_OK);
    CHECK(raw_exec(path, v3_to_v2) == SQLITE_OK);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master"
                  " WHERE name LIKE '%slice%'") == 0);
    domains_reference(path, INT64_MIN, INT64_MAX, before);

    st = open_store(path);
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    CHECK(raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
    CHECK(raw_int(path, "SELECT count(*) FROM"
                  " pragma_index_info('messages_by_sent')") == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM domain_slices") > 20);
    after[0] = '\0';
    CHECK(store_domains(st, INT64_MIN, INT64_MAX, render_cb, after)
          == STORE_OK);
    CHECK_STR(after, before);
    CHECK(check_domain_windows(st, path) == 0);

    /* The triggers run on the migrated file. */
    CHECK(fetch1(st, 1, 2000000000, "10.7.7.0", "proxy-9") == STORE_OK);
    CHECK(raw_int(path, "SELECT max(last_open_at) FROM domain_slices")
          == 2000000000);
    CHECK(check_domain_windows(st, path) == 0);
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


/* Retention: a day, and the times of the fixture's fetches. */
#define DAY_MS (INT64_C(24) * 3600 * 1000)
#define OLD_AT (INT64_C(1000) * DAY_MS)
#define NEW_AT (OLD_AT + 40 * DAY_MS)
#define CUTOFF (OLD_AT + 30 * DAY_MS)

/* Every figure a report reads, as text: messages', slices', customers'. */
static void
report_figures(const char *path, char *out, size_t len)
{
    raw_text(path,
             "SELECT (SELECT group_concat(x, ' ') FROM (SELECT id || '='"
             " || n_human || ',' || n_proxy || ',' || n_privacy_prefetch"
             " || ',' || n_scanner || ',' || n_internal || ','"
             " || n_head_probe || ',' || coalesce(first_open_at, '-')"
             " || ',' || coalesce(last_open_at, '-') || ','"
             " || coalesce(reached_at, '-') AS x FROM messages ORDER BY id))"
             " || ' | ' || (SELECT group_concat(y, ' ') FROM (SELECT slice"
             " || domain || sent || reached || opened || n_human || n_proxy"
             " || n_scanner || n_internal || coalesce(last_open_at, '-')"
             " AS y FROM domain_slices ORDER BY slice, domain))"
             " || ' | ' || (SELECT group_concat(z, ' ') FROM (SELECT id"
             " || ',' || coalesce(call_lo, '-') || ','"
             " || coalesce(call_oldest, '-') || ',' || call_reached AS z"
             " FROM customers ORDER BY id))", out, len);
}


/*
 * Old and new fetches: m1 has old rows (in and after its burst window)
 * and a new one; m2 only old ones, one over the rows cap and burst
 * entries; m3's burst window holds an old row and a fresh one.
 */
static void
retention_fixture(struct store *st, int64_t id[3])
{
    struct store_fetch_rec v[3];

    id[0] = add(st, "R1", "r1@x.com", "x.com", "reply", OLD_AT);
    id[1] = add(st, "R2", "r2@x.com", "x.com", "reply", OLD_AT);
    id[2] = add(st, "R3", "r3@y.com", "y.com", "reply", OLD_AT);

    CHECK(fetch1(st, id[0], OLD_AT + 1000, "10.1.0.0", "human-a")
          == STORE_OK);
    CHECK(fetch1(st, id[0], OLD_AT + 3600000, "10.1.1.0", "proxy-g")
          == STORE_OK);
    CHECK(fetch1(st, id[0], NEW_AT, "10.1.2.0", "human-b") == STORE_OK);

    /* Three clients in a burst: a whole_burst scanner verdict; the
     * third is over a cap of two rows (a burst entry). */
    store_set_fetch_rows_max(st, 2);
    v[0] = fetch_rec(id[1], OLD_AT + 2000, "10.2.0.0", "human-1");
    v[1] = fetch_rec(id[1], OLD_AT + 3000, "10.2.0.0", "human-2");
    v[2] = fetch_rec(id[1], OLD_AT + 4000, "10.2.0.0", "human-3");
    CHECK(write_v(st, v, 3, NULL) == STORE_OK);
    CHECK(fetch1(st, id[1], OLD_AT + 7200000, "10.2.9.0", "mpp-1")
          == STORE_OK);
    store_set_fetch_rows_max(st, STORE_FETCH_ROWS_DEFAULT);

    CHECK(fetch1(st, id[2], OLD_AT + 1000, "10.3.0.0", "scan-1")
          == STORE_OK);
    CHECK(fetch1(st, id[2], OLD_AT + 2000, "10.3.0.0", "human-c")
          == STORE_OK);
}


static void
test_purge_details(void)
{
    struct store_purge_result res = { 0, 0, 0 };
    char before[TEXT_MAX], after[TEXT_MAX];
    char path[256];
    struct store *st;
    int64_t id[3], cursor = 0, rows, changed;
    int passes = 0;

    db_path(path, sizeof(path), "purge");
    st = open_store(path);
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    retention_fixture(st, id);
    /* m3's second row moves on past the cut-off (a run collapsing). */
    CHECK(raw_exec(path, "UPDATE fetches SET last_at = " "1040"
                   " * 86400000 WHERE user_agent = 'human-c'") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM burst_unkept") == 1);
    report_figures(path, before, sizeof(before));

    /* One message a transaction: the cursor walks the three, and a
     * fourth call finds no more. */
    do {
        CHECK(store_purge_details(st, CUTOFF, 1, &cursor, &res)
              == STORE_OK);
        passes++;
    } while (cursor != 0 && passes < 10);
    CHECK(passes == 4);
    CHECK(res.messages == 2);
    CHECK(res.rows == 5);               /* 2 of m1, 2 rows + 1 entry of m2 */
    CHECK(res.fetches == 5);

    /* The details went; m3's early rows stay together. */
    CHECK(raw_int(path, "SELECT count(*) FROM fetches"
                  " WHERE last_at < 1030 * 86400000") == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches") == 3);
    CHECK(raw_int(path, "SELECT count(*) FROM burst_unkept") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches WHERE user_agent"
                  " IN ('human-a', 'proxy-g', 'human-1', 'mpp-1')") == 0);

    /* Every figure the reports read is as it was. */
    report_figures(path, after, sizeof(after));
    CHECK_STR(after, before);
    CHECK(check_domain_windows(st, path) == 0);
    CHECK(raw_int(path, "SELECT sum(count) FROM fetch_overflow"
                  " WHERE message_id = 2") == 4);

    /* A second pass finds nothing more to do. */
    memset(&res, 0, sizeof(res));
    CHECK(store_purge_details(st, CUTOFF, 10, &cursor, &res) == STORE_OK);
    CHECK(cursor == 0 && res.rows == 0);

    /* Reclassifying with the same rules changes nothing. */
    CHECK(store_reclassify(st, classify_test, NULL, &rows, &changed)
          == STORE_OK);
    CHECK(rows == 3 && changed == 0);
    report_figures(path, after, sizeof(after));
    CHECK_STR(after, before);

    /* New rules judge the rows left; purged fetches keep their class,
     * as fetches over the rows cap do: m1 keeps its old human and proxy
     * opens, its new row becomes a scanner. */
    CHECK(store_reclassify(st, classify_all_scan, NULL, &rows, &changed)
          == STORE_OK);
    figures(path, id[0], after, sizeof(after));
    CHECK(strncmp(after, "1,1,0,1,0,0|", 12) == 0);
    CHECK(raw_int(path, "SELECT first_open_at FROM messages WHERE id = 1")
          == OLD_AT + 1000);
    CHECK(check_domain_windows(st, path) == 0);
    CHECK(call_state_drift(path) == 0);
    store_close(st);
}


static void
test_recipient_erase(void)
{
    struct store_erase_result res;
    struct store_write_result wres;
    struct store_call_in call = { "r1@x.com", NEW_AT, "voicemail", NULL };
    struct store_fetch_rec late;
    char path[256];
    struct store *st;
    int64_t id[3], id4, call_id;

    db_path(path, sizeof(path), "erase");
    st = open_store(path);
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    retention_fixture(st, id);
    /* r1 and r2 are one customer here: a second reply to r1. */
    id4 = add(st, "R4", "R1@X.COM", "x.com", "reply", OLD_AT + 5);
    CHECK(fetch1(st, id4, NEW_AT, "10.4.0.0", "human-d") == STORE_OK);
    CHECK(store_call_add(st, &call, &call_id) == STORE_OK);
    CHECK(raw_int(path, "SELECT sent FROM domain_slices"
                  " WHERE domain = 'x.com'") == 3);

    CHECK(store_recipient_erase(st, "r1@X.com", &res) == STORE_OK);
    CHECK(res.messages == 2);
    CHECK(res.fetches == 4);            /* 3 of m1, 1 of m4 */
    CHECK(res.fetch_rows == 4);
    CHECK(res.calls == 1);
    CHECK(res.customer == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM fetches WHERE message_id"
                  " IN (1, 4)") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM fetch_overflow"
                  " WHERE message_id IN (1, 4)") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM messages"
                  " WHERE recipient LIKE 'r1@%' COLLATE NOCASE") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM customers"
                  " WHERE address_key = 'r1@x.com'") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM calls") == 0);

    /* x.com keeps r2's message and figures only; y.com is untouched. */
    CHECK(raw_int(path, "SELECT sent FROM domain_slices"
                  " WHERE domain = 'x.com'") == 1);
    CHECK(raw_int(path, "SELECT n_human + n_scanner + n_privacy_prefetch"
                  " FROM domain_slices WHERE domain = 'x.com'") == 4);
    CHECK(check_domain_windows(st, path) == 0);
    CHECK(call_state_drift(path) == 0);

    /* Again: nothing to erase.  A late fetch of an erased message is
     * skipped as unknown, and its id is never handed out again. */
    CHECK(store_recipient_erase(st, "r1@x.com", &res) == STORE_NOTFOUND);
    CHECK(res.messages == 0);
    late = fetch_rec(id[0], NEW_AT + 1, "10.1.2.0", "human-b");
    CHECK(write_v(st, &late, 1, &wres) == STORE_OK && wres.unknown == 1);
    CHECK(add(st, "R5", "r1@x.com", "x.com", "reply", NEW_AT) > id4);
    CHECK(store_recipient_erase(st, "nobody@x.com", &res)
          == STORE_NOTFOUND);

    /* Erasing the last message of a slice drops the slice. */
    CHECK(store_recipient_erase(st, "r3@y.com", &res) == STORE_OK);
    CHECK(res.messages == 1 && res.fetches == 2 && res.calls == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM domain_slices"
                  " WHERE domain = 'y.com'") == 0);
    CHECK(check_domain_windows(st, path) == 0);
    store_close(st);
}


/* Collects the keys a walk shows. */
struct keys_seen {
    size_t n;
    struct store_api_key k[8];
};


static int
collect_key(void *ctx, const struct store_api_key *k)
{
    struct keys_seen *seen = ctx;

    if (seen->n < 8) {
        seen->k[seen->n++] = *k;
    }
    return 0;
}


static int
stop_at_first_key(void *ctx, const struct store_api_key *k)
{
    (void) ctx;
    (void) k;
    return 7;
}


/* API keys: hashes and scopes stored, revoked ones out of force, ids
 * never handed out twice, bad values refused. */
static void
test_api_keys(void)
{
    unsigned char h1[STORE_API_KEY_HASH_BYTES], h2[STORE_API_KEY_HASH_BYTES];
    struct keys_seen seen = { 0 };
    char path[256];
    struct store *st;
    int64_t id1 = 0, id2 = 0, id3 = 0;

    db_path(path, sizeof(path), "api-keys");
    st = open_store(path);
    if (st == NULL) {
        return;
    }
    memset(h1, 0xa1, sizeof(h1));
    memset(h2, 0xb2, sizeof(h2));

    CHECK(store_api_key_add(st, h1, STORE_SCOPE_READ, 1000, &id1)
          == STORE_OK);
    CHECK(store_api_key_add(st, h2, STORE_SCOPE_WRITE, 2000, &id2)
          == STORE_OK);
    CHECK(id1 == 1 && id2 == 2);
    CHECK(store_api_key_add(st, h1, STORE_SCOPE_WRITE, 3000, &id3)
          == STORE_ERR);                              /* hash is unique */
    CHECK(store_api_key_add(st, h2, 5, 3000, &id3) == STORE_ERR);
    CHECK(id3 == 0);

    CHECK(store_api_keys(st, 1, collect_key, &seen) == STORE_OK);
    CHECK(seen.n == 2);
    CHECK(seen.k[0].id == 1 && seen.k[0].scope == STORE_SCOPE_READ);
    CHECK(seen.k[0].created_at_ms == 1000 && seen.k[0].revoked_at_ms == 0);
    CHECK(memcmp(seen.k[0].hash, h1, sizeof(h1)) == 0);
    CHECK(seen.k[1].id == 2 && seen.k[1].scope == STORE_SCOPE_WRITE);
    CHECK(memcmp(seen.k[1].hash, h2, sizeof(h2)) == 0);
    CHECK(store_api_keys(st, 0, stop_at_first_key, NULL) == 7);

    CHECK(store_api_key_revoke(st, 1, 5000) == STORE_OK);
    CHECK(store_api_key_revoke(st, 1, 6000) == STORE_NOTFOUND);
    CHECK(store_api_key_revoke(st, 99, 6000) == STORE_NOTFOUND);
    seen.n = 0;
    CHECK(store_api_keys(st, 1, collect_key, &seen) == STORE_OK);
    CHECK(seen.n == 1 && seen.k[0].id == 2);
    seen.n = 0;
    CHECK(store_api_keys(st, 0, collect_key, &seen) == STORE_OK);
    CHECK(seen.n == 2 && seen.k[0].revoked_at_ms == 5000);

    /* A row deleted by hand does not free its id for the next key. */
    CHECK(raw_exec(path, "DELETE FROM api_keys WHERE id = 2") == SQLITE_OK);
    memset(h2, 0xc3, sizeof(h2));
    CHECK(store_api_key_add(st, h2, STORE_SCOPE_READ, 7000, &id3)
          == STORE_OK);
    CHECK(id3 == 3);
    CHECK(raw_exec(path, "INSERT INTO api_keys (hash, scope, created_at)"
                   " VALUES (x'00', 'read', 1)") != SQLITE_OK);
    CHECK(raw_exec(path, "INSERT INTO api_keys (hash, scope, created_at)"
                   " VALUES (zeroblob(32), 'admin', 1)") != SQLITE_OK);
    store_close(st);
}


/* A version 5 file gains the api_keys table, empty, and keeps its data. */
static void
test_migrate_v5(void)
{
    struct keys_seen seen = { 0 };
    char path[256];
    struct store *st;

    db_path(path, sizeof(path), "migrate-v5");
    st = open_store(path);
    CHECK(slices_fixture(st) == 56);
    store_close(st);
    CHECK(raw_exec(path, v6_to_v5) == SQLITE_OK);
    CHECK(raw_int(path, "SELECT count(*) FROM sqlite_master"
                  " WHERE name = 'api_keys'") == 0);

    st = open_store(path);
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    CHECK(raw_int(path, "PRAGMA user_version") == SCHEMA_LATEST);
    CHECK(store_api_keys(st, 0, collect_key, &seen) == STORE_OK);
    CHECK(seen.n == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM messages") == 56);
    store_close(st);
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
    test_names();
    test_message_add_upserts_customer();
    test_message_add_rolls_back();
    test_fetches_write();
    test_secs_and_window();
    test_collapse();
    test_collapse_choice();
    test_rows_cap();
    test_replay();
    test_class_counters();
    test_verdict_settled();
    test_burst();
    test_burst_order();
    test_burst_over_cap();
    test_burst_from_delivery();
    test_fetches_write_failure();
    test_fetches_write_busy();
    test_reply_record();
    test_ticket_read();
    test_domains();
    test_domain_series();
    test_unopened();
    test_unopened_pages();
    test_calls();
    test_reclassify();
    test_migrate_v1();
    test_domain_slices();
    test_migrate_v2();
    test_migrate_v3();
    test_api_keys();
    test_migrate_v5();
    test_purge_details();
    test_recipient_erase();

    remove_tmp_dir();
    return check_done();
}
