/*
 * store_sqlite.c - the SQLite backend behind store.h.
 *
 * This module owns the database file's schema and its migrations
 * (PRAGMA user_version), the connection settings, every SQL statement
 * Beacon runs, and the definitions the reports are built on: what
 * "reached", "opened", "fetches" and "unopened reply" mean in SQL.  It
 * exports the store_* functions of store.h but for the names of classes
 * and reasons (store_names.c); struct store is private here.
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
#define RECLASS_PAGE 64     /* fetch rows read at a time by reclassify */
#define BURST_UNKEPT_MAX 100    /* burst_unkept entries per message */

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
 *
 * Version 2: classified fetches.
 * - opens becomes fetches, rebuilt rather than altered so that every
 *   column has its final definition.  A row is a run of identical
 *   fetches (message, network, User-Agent, HEAD-ness and class) with its
 *   count and first and last times, plus the evidence a reclassification
 *   needs (secs since registration; bursts are recomputed from the rows).
 *   A v1 open becomes a human row of rule 'v1'.
 * - Past the rows cap, fetches are only counted.  Those in the message's
 *   burst window go to burst_unkept, one entry per client (network,
 *   User-Agent, HEAD-ness) and class with its count, at most
 *   BURST_UNKEPT_MAX entries per message: a burst is a burst whether or
 *   not its fetches are kept, and a whole_burst verdict relabels them as
 *   it does rows.  The others go to fetch_overflow, one count per class
 *   with first and last times.  Neither is reclassified (they keep their
 *   class), and with them the figures of a message can always be rebuilt
 *   from what is stored (recompute_message()).
 * - messages carry every figure the reports read, kept by the writes:
 *   n_<class> counts every fetch of the class (always its rows' counts
 *   plus its fetches without a row, so recompute_message() rebuilds the
 *   same number), rows_kept and not_kept the two kinds, reached_at the
 *   first fetch of any class but internal, replied_at and last_reply_at
 *   the earliest and the latest customer reply that covers the message.
 *   first_open_at and reached_at take replied_at into account,
 *   last_open_at takes last_reply_at.
 * - open_count goes (n_human + n_proxy says it); messages_by_sent is
 *   rebuilt to cover the domains report again.  messages_by_customer
 *   gains sent_at for the call list ("replies sent after the newest
 *   opened one" is a range).
 *
 * Version 3: roll-ups for the domains report.
 * - domain_slices holds, per recipient domain and slice of sent_at (see
 *   SLICE_SHIFT: about 18.6 hours), the domains report's figures of
 *   those messages (count, reached, opened, n_<class>, newest open).
 *   A trigger adds each new message; the writes add what they change:
 *   a batch of fetches sums its counts per slice in memory and adds
 *   them once at its end (a trigger per fetch cost the writer more than
 *   the covering index did), and recompute_message() takes a message's
 *   figures out of its slice and puts the new ones in, reading the
 *   slice's newest open again from its messages (messages_by_domain),
 *   as a relabel or a reclassification can take an open away.  The
 *   report reads the slices its window covers whole from here and only
 *   its two edges (under two slices) from messages.  Not hours: at a
 *   million messages over 2,000 domains in 60 days an hour holds under
 *   one message per domain, so hourly rows would be nearly as many as
 *   the messages they sum.
 * - messages_by_sent loses its covering columns, which every fetch
 *   rewrote: it only finds the edges' messages now.  Messages are never
 *   deleted and keep their domain and sent_at; triggers refuse both.
 *   A new statement that changes a message's figures must keep
 *   domain_slices as these do (the unit tests check the two agree).
 *
 * Version 4: the call list kept per customer, and calls.
 * - customers carry their call-list state: call_lo, the send time of
 *   their newest opened reply (NULL: none opened), call_oldest, the
 *   oldest of their replies sent after it (NULL: none unopened), and
 *   call_reached, how many of those were reached.  refresh_customer()
 *   works them out again from the customer's replies whenever a reply
 *   is added or has its figures rebuilt (recompute_message()); a
 *   fetch that first opens or reaches a reply moves them by that one
 *   reply (move_call_list()).  The list then reads customers only,
 *   through customers_on_call_list, in its own order, and stops at its
 *   page: a scan of every customer's replies took seconds at a million
 *   messages.  The index carries every column the list filters on, so
 *   counting the whole list (its "total") never leaves it: 450 ms when
 *   each of 120,000 listed customers was read from the table, 30 ms
 *   from the index alone.
 * - calls records each call the team made, with its outcome and note;
 *   customers.last_call_id points at the newest, which the list shows
 *   and which hides a customer reached by phone for a while.
 *
 * Version 5: erasure and retention.
 * - A message may be deleted (store_recipient_erase(), the one path
 *   that does): the trigger that refused it gives way to one that takes
 *   the message's figures out of its slice, reads the slice's newest
 *   open again from the messages left, and drops a slice left with no
 *   message.  Ids stay unique: AUTOINCREMENT never hands one out again,
 *   so the pixel tokens of a deleted message name no message and are
 *   skipped as unknown.  Messages still keep their domain and sent_at.
 * - Retention (store_purge_details()) deletes old fetch rows and
 *   burst_unkept entries, the only places that hold a network, a
 *   User-Agent or a Referer host, after adding their counts to
 *   fetch_overflow by class with their first and last times.  No figure
 *   changes, recompute_message() rebuilds the same numbers from what is
 *   left, and reclassification treats them as it treats fetches over
 *   the rows cap: counted, in the class they had.  No schema change is
 *   needed for this.
 *
 * Version 6: API keys (api_keys), stored only as hashes with a scope;
 * a revoked key keeps its row, and ids are never handed out again.
 */

/*
 * domain_slices buckets messages by sent_at >> SLICE_SHIFT: slices of
 * 2^26 ms (18.6 hours).  A shift is floor division in SQLite for every
 * integer, negative ones included, and keeps the SQL short.
 */
#define SLICE_SHIFT "26"
#define SLICE_MS (INT64_C(1) << 26)
#define SLICE_OF(t) "(" t " >> " SLICE_SHIFT ")"

/* The newest open of the messages of the slice and domain of row r.
 * 67108863 is 2^26 - 1: the last ms of the slice. */
#define SLICE_LAST_OPEN(r) \
    "(SELECT max(last_open_at) FROM messages WHERE domain = " r ".domain" \
    " AND sent_at BETWEEN " SLICE_OF(r ".sent_at") " << " SLICE_SHIFT \
    " AND " SLICE_OF(r ".sent_at") " << " SLICE_SHIFT " | 67108863)"

/* Trigger body: message row r joins its slice's figures. */
#define SLICE_ADD(r) \
    " INSERT INTO domain_slices VALUES (" SLICE_OF(r ".sent_at") ", " r \
    ".domain, 1, " r ".reached_at IS NOT NULL, " r ".first_open_at" \
    " IS NOT NULL, " r ".n_human, " r ".n_proxy, " r \
    ".n_privacy_prefetch, " r ".n_scanner, " r ".n_internal, " r \
    ".n_head_probe, " r ".last_open_at)" \
    " ON CONFLICT (slice, domain) DO UPDATE SET sent = sent + 1," \
    "  reached = reached + excluded.reached," \
    "  opened = opened + excluded.opened," \
    "  n_human = n_human + excluded.n_human," \
    "  n_proxy = n_proxy + excluded.n_proxy," \
    "  n_privacy_prefetch = n_privacy_prefetch" \
    "   + excluded.n_privacy_prefetch," \
    "  n_scanner = n_scanner + excluded.n_scanner," \
    "  n_internal = n_internal + excluded.n_internal," \
    "  n_head_probe = n_head_probe + excluded.n_head_probe," \
    "  last_open_at = coalesce(max(last_open_at, excluded.last_open_at)," \
    "   last_open_at, excluded.last_open_at);"

/* Trigger body: message row r leaves its slice's figures; a slice with
 * no message left goes. */
#define SLICE_REMOVE(r) \
    " UPDATE domain_slices SET sent = sent - 1," \
    "  reached = reached - (" r ".reached_at IS NOT NULL)," \
    "  opened = opened - (" r ".first_open_at IS NOT NULL)," \
    "  n_human = n_human - " r ".n_human," \
    "  n_proxy = n_proxy - " r ".n_proxy," \
    "  n_privacy_prefetch = n_privacy_prefetch - " r \
    ".n_privacy_prefetch," \
    "  n_scanner = n_scanner - " r ".n_scanner," \
    "  n_internal = n_internal - " r ".n_internal," \
    "  n_head_probe = n_head_probe - " r ".n_head_probe," \
    "  last_open_at = " SLICE_LAST_OPEN(r) \
    " WHERE slice = " SLICE_OF(r ".sent_at") " AND domain = " r ".domain;" \
    " DELETE FROM domain_slices WHERE slice = " SLICE_OF(r ".sent_at") \
    "  AND domain = " r ".domain AND sent <= 0;"

/*
 * The call-list state of customer c (an SQL expression), in two steps
 * because the second reads the first: call_lo, the send time of their
 * newest opened reply; then their replies sent after it (all when
 * none was opened): the oldest one's send time and how many were
 * reached.  "After" is a range from call_lo + 1 (or the smallest
 * integer) so that it uses messages_by_customer.
 */
#define CALL_LO(c) \
    "call_lo = (SELECT max(sent_at) FROM messages WHERE customer_id = " \
    c " AND kind = 'reply' AND first_open_at IS NOT NULL)"
#define CALL_REST(c) \
    "(call_oldest, call_reached) = (SELECT min(sent_at), count(reached_at)" \
    " FROM messages WHERE customer_id = " c " AND kind = 'reply'" \
    " AND sent_at >= coalesce(customers.call_lo + 1," \
    " -9223372036854775807 - 1))"

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

    "ALTER TABLE customers ADD COLUMN replied_at INTEGER;"
    "ALTER TABLE messages ADD COLUMN reached_at INTEGER;"
    "ALTER TABLE messages ADD COLUMN replied_at INTEGER;"
    "ALTER TABLE messages ADD COLUMN last_reply_at INTEGER;"
    "ALTER TABLE messages ADD COLUMN n_human INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN n_proxy INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN n_privacy_prefetch INTEGER NOT NULL"
    "  DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN n_scanner INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN n_internal INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN n_head_probe INTEGER NOT NULL"
    "  DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN rows_kept INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN not_kept INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE fetches ("
    "  id INTEGER PRIMARY KEY,"
    "  message_id INTEGER NOT NULL REFERENCES messages(id),"
    "  at INTEGER NOT NULL,"                /* first fetch of the run */
    "  last_at INTEGER NOT NULL,"           /* last fetch of the run */
    "  count INTEGER NOT NULL,"
    "  is_head INTEGER NOT NULL,"
    "  addr TEXT NOT NULL,"                 /* truncated network */
    "  user_agent TEXT NOT NULL,"
    "  referer_host TEXT NOT NULL,"
    "  secs INTEGER NOT NULL,"              /* at - registered_at, >= 0 */
    "  class TEXT NOT NULL CHECK (class IN ('human', 'proxy',"
    "    'privacy_prefetch', 'scanner', 'internal', 'head_probe')),"
    "  rule TEXT NOT NULL,"
    "  reason TEXT NOT NULL"
    ");"
    "INSERT INTO fetches (id, message_id, at, last_at, count, is_head,"
    "  addr, user_agent, referer_host, secs, class, rule, reason)"
    " SELECT o.id, o.message_id, o.at, o.at, 1, 0, o.addr, o.user_agent,"
    "  '', max(0, (o.at - m.registered_at) / 1000), 'human', 'v1',"
    "  'recorded before classification'"
    " FROM opens AS o JOIN messages AS m ON m.id = o.message_id;"
    "DROP TABLE opens;"
    "CREATE TABLE fetch_overflow ("
    "  message_id INTEGER NOT NULL REFERENCES messages(id),"
    "  class TEXT NOT NULL CHECK (class IN ('human', 'proxy',"
    "    'privacy_prefetch', 'scanner', 'internal', 'head_probe')),"
    "  count INTEGER NOT NULL,"
    "  first_at INTEGER NOT NULL,"
    "  last_at INTEGER NOT NULL,"
    "  PRIMARY KEY (message_id, class)"
    ") WITHOUT ROWID;"
    "CREATE TABLE burst_unkept ("
    "  id INTEGER PRIMARY KEY,"
    "  message_id INTEGER NOT NULL REFERENCES messages(id),"
    "  addr TEXT NOT NULL,"
    "  user_agent TEXT NOT NULL,"
    "  is_head INTEGER NOT NULL,"
    "  class TEXT NOT NULL CHECK (class IN ('human', 'proxy',"
    "    'privacy_prefetch', 'scanner', 'internal', 'head_probe')),"
    "  count INTEGER NOT NULL,"
    "  first_at INTEGER NOT NULL,"
    "  last_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX burst_unkept_by_message ON burst_unkept(message_id,"
    "  addr);"
    /* v1 kept open_count and the open times exactly, one row per open. */
    "UPDATE messages SET n_human = open_count, rows_kept = open_count,"
    "  reached_at = first_open_at WHERE open_count > 0;"
    "DROP INDEX messages_by_sent;"
    "DROP INDEX messages_by_customer;"
    "ALTER TABLE messages DROP COLUMN open_count;"
    "CREATE INDEX messages_by_sent ON messages(sent_at, domain,"
    "  reached_at, first_open_at, last_open_at, n_human, n_proxy,"
    "  n_privacy_prefetch, n_scanner, n_internal, n_head_probe);"
    "CREATE INDEX messages_by_customer ON messages(customer_id, kind,"
    "  sent_at);"
    "CREATE INDEX fetches_by_message ON fetches(message_id, at);",

    "CREATE TABLE domain_slices ("
    "  slice INTEGER NOT NULL,"             /* sent_at >> 26 */
    "  domain TEXT NOT NULL,"
    "  sent INTEGER NOT NULL,"
    "  reached INTEGER NOT NULL,"           /* count(reached_at) */
    "  opened INTEGER NOT NULL,"            /* count(first_open_at) */
    "  n_human INTEGER NOT NULL,"
    "  n_proxy INTEGER NOT NULL,"
    "  n_privacy_prefetch INTEGER NOT NULL,"
    "  n_scanner INTEGER NOT NULL,"
    "  n_internal INTEGER NOT NULL,"
    "  n_head_probe INTEGER NOT NULL,"
    "  last_open_at INTEGER,"               /* max(last_open_at) */
    "  PRIMARY KEY (slice, domain)"
    ") WITHOUT ROWID;"
    "INSERT INTO domain_slices SELECT " SLICE_OF("sent_at") ", domain,"
    "  count(*), count(reached_at), count(first_open_at), sum(n_human),"
    "  sum(n_proxy), sum(n_privacy_prefetch), sum(n_scanner),"
    "  sum(n_internal), sum(n_head_probe), max(last_open_at)"
    " FROM messages GROUP BY 1, 2;"
    "DROP INDEX messages_by_sent;"
    "CREATE INDEX messages_by_sent ON messages(sent_at);"
    "CREATE INDEX messages_by_domain ON messages(domain, sent_at);"
    "CREATE TRIGGER messages_slices_insert AFTER INSERT ON messages BEGIN "
    SLICE_ADD("NEW")
    " END;"
    /* No path deletes a message or moves it to another domain or
     * time; one that did would have to keep domain_slices right.  The
     * figures' updates are added in C (struct slice_delta). */
    "CREATE TRIGGER messages_slices_delete BEFORE DELETE ON messages"
    " BEGIN SELECT RAISE(ABORT, 'messages are never deleted');"
    " END;"
    "CREATE TRIGGER messages_slices_move BEFORE UPDATE OF domain, sent_at"
    " ON messages"
    " WHEN NEW.domain IS NOT OLD.domain OR NEW.sent_at IS NOT OLD.sent_at"
    " BEGIN SELECT RAISE(ABORT, 'a message keeps its domain and sent_at');"
    " END;",

    "ALTER TABLE customers ADD COLUMN call_lo INTEGER;"
    "ALTER TABLE customers ADD COLUMN call_oldest INTEGER;"
    "ALTER TABLE customers ADD COLUMN call_reached INTEGER NOT NULL"
    "  DEFAULT 0;"
    "ALTER TABLE customers ADD COLUMN last_call_id INTEGER;"
    "CREATE TABLE calls ("
    "  id INTEGER PRIMARY KEY,"
    "  customer_id INTEGER NOT NULL REFERENCES customers(id),"
    "  at INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('reached', 'voicemail',"
    "    'no_answer', 'wrong_number')),"
    "  note TEXT"
    ");"
    "CREATE INDEX calls_by_customer ON calls(customer_id, at);"
    "UPDATE customers SET " CALL_LO("customers.id") ";"
    "UPDATE customers SET " CALL_REST("customers.id") ";"
    "CREATE INDEX customers_on_call_list ON customers(value DESC,"
    "  call_oldest, id, replied_at, call_lo, call_reached, last_call_id)"
    "  WHERE call_oldest IS NOT NULL;",

    "DROP TRIGGER messages_slices_delete;"
    "CREATE TRIGGER messages_slices_delete AFTER DELETE ON messages BEGIN "
    SLICE_REMOVE("OLD")
    " END;",

    /* API keys, as hashes only (store_api_key_add()).  AUTOINCREMENT:
     * "revoke 3" must never reach a key added after key 3 was deleted
     * by hand.  A revoked key keeps its row, for the list. */
    "CREATE TABLE api_keys ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER"
    ");",
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
    S_FETCH_MESSAGE,
    S_FIRST_DELIVERY,
    S_FETCH_BURST,
    S_FETCH_ADD_TO_RUN,
    S_FETCH_INSERT,
    S_FETCH_OVERFLOW,
    S_UNKEPT_FIND,
    S_UNKEPT_ADD_TO,
    S_UNKEPT_INSERT,
    S_UNKEPT_RELABEL,
    S_FETCH_COUNT,
    S_SLICE_ADD,
    S_SLICE_LEAVE,
    S_SLICE_JOIN,
    S_BURST_RELABEL,
    S_MESSAGE_RECOMPUTE,
    S_RECLASS_PAGE,
    S_RECLASS_FIRST,
    S_RECLASS_SET,
    S_REPLY_CUSTOMER,
    S_REPLY_NEXT,
    S_TICKET,
    S_DOMAINS_SLICES,
    S_DOMAINS_EDGE,
    S_DOMAIN_SERIES,
    S_CUSTOMER_CALL_LO,
    S_CUSTOMER_CALL_REST,
    S_REPLY_CUSTOMER_OF,
    S_CALL_OPENED,
    S_CALL_REACHED,
    S_UNOPENED,
    S_UNOPENED_COUNT,
    S_UNOPENED_DETAIL,
    S_UNOPENED_TICKETS,
    S_CALL_INSERT,
    S_CALL_LINK,
    S_PURGE_NEXT,
    S_PURGE_EARLY_FRESH,
    S_PURGE_FOLD_ROWS,
    S_PURGE_DROP_ROWS,
    S_PURGE_FOLD_UNKEPT,
    S_PURGE_DROP_UNKEPT,
    S_ERASE_FIND,
    S_ERASE_FIGURES,
    S_ERASE_FETCHES,
    S_ERASE_UNKEPT,
    S_ERASE_OVERFLOW,
    S_ERASE_MESSAGES,
    S_ERASE_CALLS,
    S_ERASE_CUSTOMER,
    S_APIKEY_INSERT,
    S_APIKEY_REVOKE,
    S_APIKEY_LIST,
    S_COUNT
};

/*
 * The earliest and the latest customer reply covering a message once a
 * reply at ?2 covers it too (?2 NULL: no new reply).
 */
#define FIRST_REPLY "coalesce(min(replied_at, ?2), ?2, replied_at)"
#define LAST_REPLY "coalesce(max(last_reply_at, ?2), ?2, last_reply_at)"

/* The call list, from the state each customer keeps (version 4):
 * value >= ?1, an unopened reply sent at or before ?2 and none of
 * their own replies since, a reason in the mask ?3 (bit 1 << reason,
 * the reason worked out as in call_reason()), and no call that
 * reached them after ?4.  It walks customers_on_call_list in its
 * order and stops at the page (?5 rows from ?6).
 */
#define UNOPENED_FROM \
    " FROM customers AS c LEFT JOIN calls AS k ON k.id = c.last_call_id" \
    " WHERE c.call_oldest IS NOT NULL AND c.call_oldest <= ?2" \
    "  AND c.value >= ?1" \
    "  AND (c.replied_at IS NULL OR c.replied_at < c.call_oldest)" \
    "  AND (?3 >> CASE WHEN c.call_lo IS NOT NULL THEN 2" \
    "   WHEN c.call_reached > 0 THEN 1 ELSE 0 END) & 1" \
    "  AND NOT (k.outcome IS 'reached' AND k.at > ?4)"

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

    /* Everything a fetch of message ?1 from network ?2 is judged and
     * placed by, in one read: the message's registration, row counts,
     * first delivery evidence and first reply (the delivery time
     * comes from these two, see delivered_at()), and that network's
     * rows (NULLs when it has none).  The burst and the run are worked
     * out from these in C (net_burst(), find_run()) rather than by two
     * more statements per fetch. */
    [S_FETCH_MESSAGE] =
        "SELECT m.registered_at, m.rows_kept, m.not_kept, m.reached_at,"
        " m.replied_at, f.id, f.at, f.last_at, f.user_agent, f.is_head,"
        " f.class, m.first_open_at IS NOT NULL, m.domain, "
        SLICE_OF("m.sent_at") ", m.customer_id, m.kind = 'reply', m.sent_at"
        " FROM messages AS m LEFT JOIN fetches AS f"
        "  ON f.message_id = m.id AND f.addr = ?2"
        " WHERE m.id = ?1",

    /* The first fetch of any class but internal of message ?1 (NULL:
     * none): among its rows when ?2, and among its fetches that made
     * no row. */
    [S_FIRST_DELIVERY] =
        "SELECT min(t) FROM ("
        " SELECT min(at) AS t FROM fetches"
        "  WHERE ?2 AND message_id = ?1 AND class <> 'internal'"
        " UNION ALL SELECT min(first_at) FROM burst_unkept"
        "  WHERE message_id = ?1 AND class <> 'internal'"
        " UNION ALL SELECT min(first_at) FROM fetch_overflow"
        "  WHERE message_id = ?1 AND class <> 'internal')",

    /* The other User-Agents of the burst: rows of message ?1 from
     * network ?3 in its window (?8 <= at < ?2), recorded before (?5,
     * ?6) in the (at, id) order, whose User-Agent is not this fetch's
     * (?4); and when ?7, that network's fetches in the window that made
     * no row. */
    [S_FETCH_BURST] =
        "SELECT count(DISTINCT ua) FROM ("
        " SELECT user_agent AS ua FROM fetches"
        "  WHERE message_id = ?1 AND at >= ?8 AND at < ?2 AND addr = ?3"
        "   AND user_agent <> ?4 AND (at, id) < (?5, ?6)"
        " UNION ALL SELECT user_agent FROM burst_unkept"
        "  WHERE ?7 AND message_id = ?1 AND addr = ?3 AND user_agent <> ?4"
        "   AND first_at < ?2 AND last_at >= ?8)",

    [S_FETCH_ADD_TO_RUN] =
        "UPDATE fetches SET count = count + 1, last_at = max(last_at, ?2)"
        " WHERE id = ?1",

    [S_FETCH_INSERT] =
        "INSERT INTO fetches (message_id, at, last_at, count, is_head,"
        " addr, user_agent, referer_host, secs, class, rule, reason)"
        " VALUES (?1, ?2, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",

    [S_FETCH_OVERFLOW] =
        "INSERT INTO fetch_overflow (message_id, class, count, first_at,"
        " last_at) VALUES (?1, ?2, 1, ?3, ?3)"
        " ON CONFLICT (message_id, class) DO UPDATE SET"
        "  count = count + 1, first_at = min(first_at, excluded.first_at),"
        "  last_at = max(last_at, excluded.last_at)",

    /* A fetch in the burst window that made no row: the entry of its
     * client and class, or a new one while the message has fewer than
     * ?7 entries. */
    [S_UNKEPT_FIND] =
        "SELECT id FROM burst_unkept"
        " WHERE message_id = ?1 AND addr = ?2 AND user_agent = ?3"
        "  AND is_head = ?4 AND class = ?5 LIMIT 1",

    [S_UNKEPT_ADD_TO] =
        "UPDATE burst_unkept SET count = count + 1,"
        " first_at = min(first_at, ?2), last_at = max(last_at, ?2)"
        " WHERE id = ?1",

    [S_UNKEPT_INSERT] =
        "INSERT INTO burst_unkept (message_id, addr, user_agent, is_head,"
        " class, count, first_at, last_at)"
        " SELECT ?1, ?2, ?3, ?4, ?5, 1, ?6, ?6"
        " WHERE (SELECT count(*) FROM burst_unkept WHERE message_id = ?1)"
        "  < ?7",

    /* The human GET fetches of a burst (window ?5 <= at < ?4) that
     * made no row take its verdict (see S_BURST_RELABEL for why only
     * human ones). */
    [S_UNKEPT_RELABEL] =
        "UPDATE burst_unkept SET class = ?3"
        " WHERE message_id = ?1 AND addr = ?2 AND is_head = 0"
        "  AND class = 'human' AND class <> ?3"
        "  AND first_at < ?4 AND last_at >= ?5",

    /* One fetch of class ?2 at ?5 on message ?1; ?3 and ?4 say whether
     * it made a row or went over the cap.  The definitions: an open is
     * a human or proxy fetch (STORE_CLASS_IS_OPEN), delivery evidence is
     * a fetch of any class but internal.  min() and max() with a NULL
     * argument are NULL, hence coalesce: fetches may arrive out of
     * order. */
    [S_FETCH_COUNT] =
        "UPDATE messages SET"
        " n_human = n_human + (?2 = 'human'),"
        " n_proxy = n_proxy + (?2 = 'proxy'),"
        " n_privacy_prefetch = n_privacy_prefetch"
        "  + (?2 = 'privacy_prefetch'),"
        " n_scanner = n_scanner + (?2 = 'scanner'),"
        " n_internal = n_internal + (?2 = 'internal'),"
        " n_head_probe = n_head_probe + (?2 = 'head_probe'),"
        " rows_kept = rows_kept + ?3, not_kept = not_kept + ?4,"
        " first_open_at = CASE WHEN ?2 IN ('human', 'proxy')"
        "  THEN coalesce(min(first_open_at, ?5), ?5) ELSE first_open_at END,"
        " last_open_at = CASE WHEN ?2 IN ('human', 'proxy')"
        "  THEN coalesce(max(last_open_at, ?5), ?5) ELSE last_open_at END,"
        " reached_at = CASE WHEN ?2 <> 'internal'"
        "  THEN coalesce(min(reached_at, ?5), ?5) ELSE reached_at END"
        " WHERE id = ?1",

    /* A batch's sums for slice ?1 of domain ?2 (NULL: message ?12's):
     * counts ?3..?10 (reached, opened, then by class) and its newest
     * open ?11 (NULL: none). */
    [S_SLICE_ADD] =
        "UPDATE domain_slices SET reached = reached + ?3,"
        " opened = opened + ?4, n_human = n_human + ?5,"
        " n_proxy = n_proxy + ?6,"
        " n_privacy_prefetch = n_privacy_prefetch + ?7,"
        " n_scanner = n_scanner + ?8, n_internal = n_internal + ?9,"
        " n_head_probe = n_head_probe + ?10,"
        " last_open_at = coalesce(max(last_open_at, ?11), last_open_at, ?11)"
        " WHERE slice = ?1 AND domain = coalesce(?2,"
        "  (SELECT domain FROM messages WHERE id = ?12))",

    /* Message ?1's figures leave its slice (its newest open is put right
     * by S_SLICE_JOIN). */
    [S_SLICE_LEAVE] =
        "UPDATE domain_slices SET"
        " reached = reached - (m.reached_at IS NOT NULL),"
        " opened = opened - (m.first_open_at IS NOT NULL),"
        " n_human = domain_slices.n_human - m.n_human,"
        " n_proxy = domain_slices.n_proxy - m.n_proxy,"
        " n_privacy_prefetch = domain_slices.n_privacy_prefetch"
        "  - m.n_privacy_prefetch,"
        " n_scanner = domain_slices.n_scanner - m.n_scanner,"
        " n_internal = domain_slices.n_internal - m.n_internal,"
        " n_head_probe = domain_slices.n_head_probe - m.n_head_probe"
        " FROM messages AS m WHERE m.id = ?1"
        "  AND slice = " SLICE_OF("m.sent_at")
        "  AND domain_slices.domain = m.domain",

    /* Message ?1's figures join its slice again; the slice's newest
     * open is read again from its messages. */
    [S_SLICE_JOIN] =
        "UPDATE domain_slices SET"
        " reached = reached + (m.reached_at IS NOT NULL),"
        " opened = opened + (m.first_open_at IS NOT NULL),"
        " n_human = domain_slices.n_human + m.n_human,"
        " n_proxy = domain_slices.n_proxy + m.n_proxy,"
        " n_privacy_prefetch = domain_slices.n_privacy_prefetch"
        "  + m.n_privacy_prefetch,"
        " n_scanner = domain_slices.n_scanner + m.n_scanner,"
        " n_internal = domain_slices.n_internal + m.n_internal,"
        " n_head_probe = domain_slices.n_head_probe + m.n_head_probe,"
        " last_open_at = " SLICE_LAST_OPEN("m")
        " FROM messages AS m WHERE m.id = ?1"
        "  AND slice = " SLICE_OF("m.sent_at")
        "  AND domain_slices.domain = m.domain",

    /* The earlier human GET rows of a burst (message ?1, network ?3,
     * window ?7 <= at < ?2) take the verdict that rests on the burst.  Only
     * human ones: a proxy, privacy relay or internal verdict came from a
     * rule ranked above any burst rule, and a burst must never eat a
     * Gmail proxy open. */
    [S_BURST_RELABEL] =
        "UPDATE fetches SET class = ?4, rule = ?5, reason = ?6"
        " WHERE message_id = ?1 AND at >= ?7 AND at < ?2 AND addr = ?3"
        "  AND is_head = 0 AND class = 'human' AND class <> ?4",

    /* Every figure of message ?1 rebuilt from its rows, the fetches that
     * made none, and its replies (?2 is a new reply time or NULL). */
    [S_MESSAGE_RECOMPUTE] =
        "UPDATE messages SET"
        " n_human = t.h, n_proxy = t.p, n_privacy_prefetch = t.pp,"
        " n_scanner = t.s, n_internal = t.i, n_head_probe = t.hp,"
        " replied_at = " FIRST_REPLY ","
        " last_reply_at = " LAST_REPLY ","
        " first_open_at = coalesce(min(t.fo, " FIRST_REPLY "), t.fo, "
        FIRST_REPLY "),"
        " last_open_at = coalesce(max(t.lo, " LAST_REPLY "), t.lo, "
        LAST_REPLY "),"
        " reached_at = coalesce(min(t.ra, " FIRST_REPLY "), t.ra, "
        FIRST_REPLY ")"
        " FROM (SELECT"
        "  coalesce(sum(n) FILTER (WHERE class = 'human'), 0) AS h,"
        "  coalesce(sum(n) FILTER (WHERE class = 'proxy'), 0) AS p,"
        "  coalesce(sum(n) FILTER (WHERE class = 'privacy_prefetch'), 0)"
        "   AS pp,"
        "  coalesce(sum(n) FILTER (WHERE class = 'scanner'), 0) AS s,"
        "  coalesce(sum(n) FILTER (WHERE class = 'internal'), 0) AS i,"
        "  coalesce(sum(n) FILTER (WHERE class = 'head_probe'), 0) AS hp,"
        "  min(first_at) FILTER (WHERE class IN ('human', 'proxy')) AS fo,"
        "  max(last_at) FILTER (WHERE class IN ('human', 'proxy')) AS lo,"
        "  min(first_at) FILTER (WHERE class <> 'internal') AS ra"
        "  FROM (SELECT class, count AS n, at AS first_at, last_at"
        "   FROM fetches WHERE message_id = ?1"
        "   UNION ALL SELECT class, count, first_at, last_at"
        "   FROM burst_unkept WHERE message_id = ?1"
        "   UNION ALL SELECT class, count, first_at, last_at"
        "   FROM fetch_overflow WHERE message_id = ?1)) AS t"
        " WHERE messages.id = ?1",

    /* The next page of rows, walking backwards from (?1, ?2, ?3). */
    [S_RECLASS_PAGE] =
        "SELECT id, message_id, at, is_head, addr, user_agent,"
        " referer_host, secs, class, rule, reason"
        " FROM fetches WHERE (message_id, at, id) < (?1, ?2, ?3)"
        " ORDER BY message_id DESC, at DESC, id DESC LIMIT ?4",

    /* The rows of message ?1 before ?2, first first, as the page. */
    [S_RECLASS_FIRST] =
        "SELECT id, message_id, at, is_head, addr, user_agent,"
        " referer_host, secs, class, rule, reason"
        " FROM fetches WHERE message_id = ?1 AND at < ?2"
        " ORDER BY at, id",

    [S_RECLASS_SET] =
        "UPDATE fetches SET class = ?2, rule = ?3, reason = ?4"
        " WHERE id = ?1",

    /* The customer ?1 replied at ?2: kept only if later than the last
     * reply recorded, and only when ticket ?3 has a message to them. */
    [S_REPLY_CUSTOMER] =
        "UPDATE customers SET replied_at = max(coalesce(replied_at, ?2), ?2)"
        " WHERE address_key = ?1 AND EXISTS (SELECT 1 FROM messages"
        "  WHERE ticket_id = ?3 AND customer_id = customers.id)"
        " RETURNING id",

    /* The messages a reply covers, one at a time in id order. */
    [S_REPLY_NEXT] =
        "SELECT id FROM messages"
        " WHERE ticket_id = ?1 AND customer_id = ?2 AND sent_at <= ?3"
        "  AND id > ?4"
        " ORDER BY id LIMIT 1",

    [S_TICKET] =
        "SELECT m.id, m.recipient, m.kind, m.sent_at, m.registered_at,"
        " m.header_message_id, m.first_open_at, m.reached_at,"
        " m.replied_at, m.n_human, m.n_proxy, m.n_privacy_prefetch,"
        " m.n_scanner, m.n_internal, m.n_head_probe, m.not_kept,"
        " f.id IS NOT NULL, f.at, f.last_at, f.count, f.class, f.rule,"
        " f.reason, f.addr, f.user_agent, f.referer_host, f.secs"
        " FROM messages AS m LEFT JOIN fetches AS f ON f.message_id = m.id"
        " WHERE m.ticket_id = ?1"
        " ORDER BY m.sent_at, m.id, f.at, f.id",

    /* The definitions of store.h, over the figures each message keeps
     * (summed per slice in domain_slices): reached and opened count
     * messages with a reached / first open time (replies included),
     * total_opens the human and proxy fetches, fetches every GET: every
     * class but head_probe, which is what a HEAD always is and only a
     * HEAD can be (settle_class()).  The slices a window covers whole
     * come from domain_slices, its two edges from messages, one row
     * each; store_domains() sums them per domain.  Both statements give
     * the same columns in the same order. */
    [S_DOMAINS_SLICES] =
        "SELECT domain, sent, reached, opened, n_human, n_proxy,"
        " n_privacy_prefetch, n_scanner, n_internal, n_head_probe,"
        " last_open_at"
        " FROM domain_slices WHERE slice >= ?1 AND slice < ?2",

    [S_DOMAINS_EDGE] =
        "SELECT domain, 1, reached_at IS NOT NULL,"
        " first_open_at IS NOT NULL, n_human, n_proxy, n_privacy_prefetch,"
        " n_scanner, n_internal, n_head_probe, last_open_at"
        " FROM messages WHERE sent_at >= ?1 AND sent_at < ?2",

    /* One domain's messages in [?2, ?3), oldest first, with the
     * definitions of store_domains(): reached and opened are a reached /
     * first open time (replies included).  messages_by_domain (domain,
     * sent_at) makes this one range search, already in order; the
     * buckets are cut in C (store_domain_series()), so any bucket
     * edges (a time zone's days) cost the same single statement. */
    [S_DOMAIN_SERIES] =
        "SELECT sent_at, reached_at IS NOT NULL, first_open_at IS NOT NULL"
        " FROM messages INDEXED BY messages_by_domain"
        " WHERE domain = ?1 AND sent_at >= ?2 AND sent_at < ?3"
        " ORDER BY sent_at",

    [S_CUSTOMER_CALL_LO] = "UPDATE customers SET " CALL_LO("?1")
        " WHERE id = ?1",
    [S_CUSTOMER_CALL_REST] = "UPDATE customers SET " CALL_REST("?1")
        " WHERE id = ?1",

    /* A fetch first opened customer ?1's reply sent at ?2.  When it is
     * newer than their newest opened one, it becomes that, and their
     * unopened replies are those after it (see CALL_REST); else nothing
     * changes. */
    [S_CALL_OPENED] =
        "UPDATE customers SET call_lo = ?2,"
        " (call_oldest, call_reached) = (SELECT min(sent_at),"
        "  count(reached_at) FROM messages WHERE customer_id = ?1"
        "  AND kind = 'reply' AND sent_at > ?2)"
        " WHERE id = ?1 AND coalesce(call_lo < ?2, 1)",

    /* A fetch first reached, but did not open, customer ?1's reply sent
     * at ?2: one more reached among the unopened, if it is one. */
    [S_CALL_REACHED] =
        "UPDATE customers SET call_reached = call_reached + 1"
        " WHERE id = ?1 AND coalesce(call_lo < ?2, 1)",

    /* The customer of message ?1 when it is a reply. */
    [S_REPLY_CUSTOMER_OF] =
        "SELECT customer_id FROM messages WHERE id = ?1 AND kind = 'reply'",

    /* The call list: see UNOPENED_FROM.  c.id only makes the order
     * stable. */
    [S_UNOPENED] =
        "SELECT c.id, c.address, c.name, c.phone, c.value, c.call_lo,"
        " c.call_oldest, c.call_reached, k.at, k.outcome, k.note"
        UNOPENED_FROM
        " ORDER BY c.value DESC, c.call_oldest ASC, c.id ASC"
        " LIMIT ?5 OFFSET ?6",
    [S_UNOPENED_COUNT] = "SELECT count(*)" UNOPENED_FROM,

    /* One listed customer (?1) in detail: all their replies, the
     * unopened ones (sent after ?2, all when NULL) and the newest of
     * those, and their newest open of a reply. */
    [S_UNOPENED_DETAIL] =
        "SELECT count(*),"
        " count(*) FILTER (WHERE sent_at > coalesce(?2,"
        "  -9223372036854775807 - 1)),"
        " max(sent_at), coalesce(max(last_open_at), 0)"
        " FROM messages WHERE customer_id = ?1 AND kind = 'reply'",

    /* The tickets of customer ?1's unopened replies (sent after ?2, the
     * newest opened one, or all when NULL), by their first such reply. */
    [S_UNOPENED_TICKETS] =
        "SELECT ticket_id FROM messages"
        " WHERE customer_id = ?1 AND kind = 'reply'"
        "  AND sent_at >= coalesce(?2 + 1, -9223372036854775807 - 1)"
        " GROUP BY ticket_id ORDER BY min(sent_at), min(id)",

    /* A call to the customer keyed by ?1; NOTFOUND when none. */
    [S_CALL_INSERT] =
        "INSERT INTO calls (customer_id, at, outcome, note)"
        " SELECT id, ?2, ?3, ?4 FROM customers WHERE address_key = ?1"
        " RETURNING id, customer_id",
    [S_CALL_LINK] =
        "UPDATE customers SET last_call_id = ?2 WHERE id = ?1",

    /* Retention: the next message after ?1 with a row or a burst entry
     * last seen before ?2 (NULL: none).  Both walk their message index
     * from ?1, so a pass reads each table about once. */
    [S_PURGE_NEXT] =
        "SELECT min(m) FROM ("
        " SELECT * FROM (SELECT message_id AS m FROM fetches"
        "  WHERE message_id > ?1 AND last_at < ?2"
        "  ORDER BY message_id LIMIT 1)"
        " UNION ALL SELECT * FROM (SELECT message_id FROM burst_unkept"
        "  WHERE message_id > ?1 AND last_at < ?2"
        "  ORDER BY message_id LIMIT 1))",

    /* Whether a row of message ?1 before ?2 (its burst window's end)
     * was last seen at or after ?3: then its early rows all stay. */
    [S_PURGE_EARLY_FRESH] =
        "SELECT EXISTS (SELECT 1 FROM fetches WHERE message_id = ?1"
        " AND at < ?2 AND last_at >= ?3)",

    /* The rows of message ?1 to purge (last seen before ?2, and at or
     * after ?3 unless ?4 says the early ones go too) add their counts
     * and times to its counted-only fetches, by class. */
    [S_PURGE_FOLD_ROWS] =
        "INSERT INTO fetch_overflow (message_id, class, count, first_at,"
        " last_at)"
        " SELECT message_id, class, sum(count), min(at), max(last_at)"
        " FROM fetches WHERE message_id = ?1 AND last_at < ?2"
        "  AND (?4 OR at >= ?3)"
        " GROUP BY class"
        " ON CONFLICT (message_id, class) DO UPDATE SET"
        "  count = count + excluded.count,"
        "  first_at = min(first_at, excluded.first_at),"
        "  last_at = max(last_at, excluded.last_at)",
    [S_PURGE_DROP_ROWS] =
        "DELETE FROM fetches WHERE message_id = ?1 AND last_at < ?2"
        " AND (?4 OR at >= ?3) RETURNING count",

    [S_PURGE_FOLD_UNKEPT] =
        "INSERT INTO fetch_overflow (message_id, class, count, first_at,"
        " last_at)"
        " SELECT message_id, class, sum(count), min(first_at), max(last_at)"
        " FROM burst_unkept WHERE message_id = ?1 AND last_at < ?2"
        " GROUP BY class"
        " ON CONFLICT (message_id, class) DO UPDATE SET"
        "  count = count + excluded.count,"
        "  first_at = min(first_at, excluded.first_at),"
        "  last_at = max(last_at, excluded.last_at)",
    [S_PURGE_DROP_UNKEPT] =
        "DELETE FROM burst_unkept WHERE message_id = ?1 AND last_at < ?2"
        " RETURNING count",

    /* Erasure of customer ?1 and everything of theirs. */
    [S_ERASE_FIND] = "SELECT id FROM customers WHERE address_key = ?1",
    [S_ERASE_FIGURES] =
        "SELECT count(*), coalesce(sum(n_human + n_proxy"
        " + n_privacy_prefetch + n_scanner + n_internal + n_head_probe), 0)"
        " FROM messages WHERE customer_id = ?1",
    [S_ERASE_FETCHES] =
        "DELETE FROM fetches WHERE message_id IN"
        " (SELECT id FROM messages WHERE customer_id = ?1)",
    [S_ERASE_UNKEPT] =
        "DELETE FROM burst_unkept WHERE message_id IN"
        " (SELECT id FROM messages WHERE customer_id = ?1)",
    [S_ERASE_OVERFLOW] =
        "DELETE FROM fetch_overflow WHERE message_id IN"
        " (SELECT id FROM messages WHERE customer_id = ?1)",
    [S_ERASE_MESSAGES] = "DELETE FROM messages WHERE customer_id = ?1",
    [S_ERASE_CALLS] = "DELETE FROM calls WHERE customer_id = ?1",
    [S_ERASE_CUSTOMER] = "DELETE FROM customers WHERE id = ?1",

    [S_APIKEY_INSERT] =
        "INSERT INTO api_keys (hash, scope, created_at) VALUES (?1, ?2, ?3)"
        " RETURNING id",

    [S_APIKEY_REVOKE] =
        "UPDATE api_keys SET revoked_at = ?2"
        " WHERE id = ?1 AND revoked_at IS NULL",

    /* ?1: only the keys in force. */
    [S_APIKEY_LIST] =
        "SELECT id, hash, scope, created_at, revoked_at FROM api_keys"
        " WHERE NOT ?1 OR revoked_at IS NULL ORDER BY id",
};

/* A stored row of the message and network a fetch is being written for. */
struct net_row {
    int64_t id;
    int64_t at;
    int64_t last_at;
    int is_head;
    int cls;
    char user_agent[STORE_UA_MAX + 1];
};

/*
 * What a batch of fetches adds to one slice of one domain, summed in
 * memory and written once when the batch ends (flush_slices()).
 */
#define SLICE_PENDING_MAX 256   /* slices summed at once */
#define SLICE_DOMAIN_MAX 256    /* longer domains are written at once */

struct slice_delta {
    int64_t slice;
    int64_t reached;
    int64_t opened;
    int64_t n[STORE_N_CLASSES];
    int64_t last_open;
    int has_open;
    char domain[SLICE_DOMAIN_MAX];
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    unsigned rows_max;              /* fetch rows kept per message */
    struct net_row *net;            /* the fetch's network's rows */
    size_t n_net;
    size_t cap_net;
    struct slice_delta *pend;       /* SLICE_PENDING_MAX, on first use */
    int stale;                      /* see store_stale() */
    size_t n_pend;
    char err[ERRMSG_MAX];
};

static int refresh_customer(struct store *st, int64_t id);

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
    /* A connection that met these keeps meeting them (a file opened
     * read-only stays so after a chmod); a new one may not. */
    if (primary == SQLITE_READONLY || primary == SQLITE_IOERR
        || primary == SQLITE_CANTOPEN || primary == SQLITE_CORRUPT
        || primary == SQLITE_NOTADB) {
        st->stale = 1;
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


/* Runs a bound statement that returns no rows, and readies it again. */
static int
step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
    int rc;

    rc = sqlite3_step(s);
    rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, what);
    finish(s);
    return rc;
}


/*
 * Steps s, which returns at most one row, and readies it again.  On a
 * row *out takes its first column and STORE_OK comes back; with no row,
 * none_rc (STORE_OK leaves *out as it was; STORE_ERR records an error).
 */
static int
step_int64(struct store *st, sqlite3_stmt *s, const char *what,
           int none_rc, int64_t *out)
{
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = STORE_OK;
    } else if (rc == SQLITE_DONE && none_rc != STORE_ERR) {
        rc = none_rc;
    } else {
        rc = fail(st, rc, what);
    }
    finish(s);
    return rc;
}


/* Runs a cached statement that takes no parameters and returns no rows. */
static int
run(struct store *st, enum stmt_id id, const char *what)
{
    return step_done(st, st->stmt[id], what);
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


/* Commits when rc says all went well, else rolls back; the outcome. */
static int
end_txn(struct store *st, int rc)
{
    if (rc == STORE_OK) {
        rc = run(st, S_COMMIT, "commit");
    }
    if (rc != STORE_OK) {
        rollback(st);
    }
    return rc;
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


/*
 * For tests only: BEACON_TEST_MAX_PAGES=N caps the database at N pages on
 * this connection (PRAGMA max_page_count; never below its size now), so
 * a test can fill it without filling a disk.  Unset, it does nothing.
 */
static int
cap_pages_for_tests(struct store *st)
{
    const char *v = getenv("BEACON_TEST_MAX_PAGES");
    char sql[64];

    if (v == NULL || v[0] == '\0') {
        return STORE_OK;
    }
    if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 9) {
        set_err(st, "BEACON_TEST_MAX_PAGES: expected a page count");
        return STORE_ERR;
    }
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %s", v);
    return exec_script(st, sql, "max_page_count");
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
    if (rc == STORE_OK) {
        rc = cap_pages_for_tests(st);
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
    st->rows_max = STORE_FETCH_ROWS_DEFAULT;

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

    /* SQLite quietly opens a file it may not write read-only. */
    st->stale = sqlite3_db_readonly(st->db, "main") == 1;
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
    free(st->net);
    free(st->pend);
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
store_stale(const struct store *st)
{
    return st->stale;
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


/*
 * The customer key: the local part of recipient (before its last '@')
 * and domain, joined by '@', in ASCII lower case.  domain is the
 * normalised one (IDN in xn-- form, no trailing dot), so every spelling
 * of a domain keys one customer.  free() it.
 */
static char *
address_key(const char *recipient, const char *domain)
{
    const char *at = strrchr(recipient, '@');
    size_t local = at != NULL ? (size_t) (at - recipient) : strlen(recipient);
    size_t len = local + 1 + strlen(domain);
    char *key = malloc(len + 1);

    if (key == NULL) {
        return NULL;
    }
    memcpy(key, recipient, local);
    key[local] = '@';
    memcpy(key + local + 1, domain, strlen(domain) + 1);
    for (size_t i = 0; i < len; i++) {
        char c = key[i];

        key[i] = c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
    }
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

    return step_int64(st, s, "customer", STORE_ERR, id);
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

    key = address_key(m->recipient, m->domain);
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
    if (rc == STORE_OK && strcmp(m->kind, "reply") == 0) {
        rc = refresh_customer(st, customer_id);
    }
    rc = end_txn(st, rc);
    if (rc != STORE_OK) {
        *id = 0;
    }

    free(key);
    return rc;
}


/* Records the failed bind on s and readies s for its next use. */
static int
bind_failed(struct store *st, sqlite3_stmt *s, const char *what)
{
    int rc = fail(st, sqlite3_errcode(st->db), what);

    finish(s);
    return rc;
}


/* Binds v[0..n) to ?1..?n of statement which and runs it (step_done()). */
static int
run_ids(struct store *st, enum stmt_id which, const int64_t *v, int n,
        const char *what)
{
    sqlite3_stmt *s = st->stmt[which];

    for (int i = 0; i < n; i++) {
        if (sqlite3_bind_int64(s, i + 1, v[i]) != SQLITE_OK) {
            return bind_failed(st, s, what);
        }
    }
    return step_done(st, s, what);
}


/* Copies src, cut at its first NUL or at len - 1 bytes, into dst[len]. */
static void
copy_field(char *dst, size_t len, const char *src)
{
    size_t n = src != NULL ? strnlen(src, len - 1) : 0;

    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}


/* Whole seconds from registration to at; 0 when at is not later. */
static int64_t
secs_since(int64_t at, int64_t registered)
{
    if (at <= registered) {
        return 0;
    }
    /* Unsigned: the difference of two int64 may not fit in one. */
    return (int64_t) (((uint64_t) at - (uint64_t) registered) / 1000u);
}


/*
 * A fetch at at's burst window, [*start, *end): it opens at the message's
 * delivery, its first fetch of any class but internal (delivered,
 * INT64_MAX when none was recorded before this one), or at this fetch
 * when none came before it; it closes STORE_BURST_MS later, saturated.
 * Limitation: a fetch written before an earlier one (out of time
 * order) opened its window at itself, but reclassify, which sees the
 * message's first delivery among all its rows, opens it at that one.
 */
static void
burst_window(int64_t delivered, int64_t at, int64_t *start, int64_t *end)
{
    *start = delivered < at ? delivered : at;
    *end = *start > INT64_MAX - STORE_BURST_MS ? INT64_MAX
           : *start + STORE_BURST_MS;
}


/*
 * The class stored for a verdict of class cls on a fetch.  A HEAD is
 * always head_probe and only a HEAD is, so by_class[head_probe] counts
 * the HEADs and every other class counts GETs (the domains report relies
 * on it).  A GET that a classifier calls head_probe is stored as scanner:
 * a machine whose fetch proves delivery, as a probe's does.
 */
static int
settle_class(int cls, int is_head)
{
    if (is_head) {
        return STORE_HEAD_PROBE;
    }
    return cls == STORE_HEAD_PROBE ? STORE_SCANNER : cls;
}


/*
 * Asks classify about f and settles its verdict into *v for storing.
 * Returns the class the verdict gives a GET: what the earlier fetches
 * of a burst take when it is a whole_burst verdict.  A class out of
 * range (a broken classifier) becomes human, the classifier's own
 * default, with rule "invalid".
 */
static int
judge(store_classify_fn *classify, void *ctx,
      const struct store_fetch_facts *f, struct store_verdict *v)
{
    int burst_cls;

    memset(v, 0, sizeof(*v));
    classify(ctx, f, v);
    v->rule[STORE_RULE_MAX - 1] = '\0';
    v->reason[STORE_REASON_MAX - 1] = '\0';
    if (v->cls < 0 || v->cls >= STORE_N_CLASSES) {
        snprintf(v->reason, sizeof(v->reason), "classifier gave class %d",
                 v->cls);
        snprintf(v->rule, sizeof(v->rule), "invalid");
        v->cls = STORE_HUMAN;
    }

    if (v->whole_burst && v->burst_rule[0] == '\0') {
        v->burst_cls = v->cls;
        memcpy(v->burst_rule, v->rule, sizeof(v->rule));
        memcpy(v->burst_reason, v->reason, sizeof(v->reason));
    }
    v->burst_rule[STORE_RULE_MAX - 1] = '\0';
    v->burst_reason[STORE_REASON_MAX - 1] = '\0';
    if (v->burst_cls < 0 || v->burst_cls >= STORE_N_CLASSES) {
        v->burst_cls = STORE_SCANNER;
    }

    burst_cls = settle_class(v->whole_burst ? v->burst_cls : v->cls, 0);
    v->cls = settle_class(v->cls, f->is_head);
    return burst_cls;
}


/*
 * Sets f->burst_clients for a fetch of message_id in its burst window
 * (win[0] <= at < win[1]): the distinct User-Agents from its network, its
 * own included, among the message's rows and its fetches in the window
 * that made no row (burst_unkept), all recorded before it; or, for a
 * stored row (before[] is its (at, id) pair), among the rows before it,
 * as the write saw them: every row was written before any fetch that
 * made none.  Limitation: past BURST_UNKEPT_MAX entries on one message,
 * new clients without a row add to no burst.
 */
static int
count_burst(struct store *st, int64_t message_id, const int64_t win[2],
            const int64_t before[2], struct store_fetch_facts *f)
{
    const int64_t after_all[2] = { INT64_MAX, INT64_MAX };
    sqlite3_stmt *s = st->stmt[S_FETCH_BURST];
    int rc;

    if (sqlite3_bind_int(s, 7, before == NULL) != SQLITE_OK) {
        return bind_failed(st, s, "burst");
    }
    before = before != NULL ? before : after_all;
    if (sqlite3_bind_int64(s, 1, message_id) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, win[1]) != SQLITE_OK
        || sqlite3_bind_int64(s, 8, win[0]) != SQLITE_OK
        || sqlite3_bind_text(s, 3, f->network, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_text(s, 4, f->user_agent, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_int64(s, 5, before[0]) != SQLITE_OK
        || sqlite3_bind_int64(s, 6, before[1]) != SQLITE_OK) {
        return bind_failed(st, s, "burst");
    }

    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        f->burst_clients = (unsigned) sqlite3_column_int64(s, 0) + 1u;
        rc = STORE_OK;
    } else {
        rc = fail(st, rc, "burst");
    }
    finish(s);
    return rc;
}


/*
 * Sets *at to the first fetch of any class but internal of message_id:
 * among its fetches that made no row, and among its rows when with_rows;
 * INT64_MAX when there is none.
 */
static int
first_delivery(struct store *st, int64_t message_id, int with_rows,
               int64_t *at)
{
    sqlite3_stmt *s = st->stmt[S_FIRST_DELIVERY];
    int rc;

    if (sqlite3_bind_int64(s, 1, message_id) != SQLITE_OK
        || sqlite3_bind_int(s, 2, with_rows) != SQLITE_OK) {
        return bind_failed(st, s, "delivery");
    }

    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *at = sqlite3_column_type(s, 0) == SQLITE_NULL
              ? INT64_MAX : sqlite3_column_int64(s, 0);
        rc = STORE_OK;
    } else {
        rc = fail(st, rc, "delivery");
    }
    finish(s);
    return rc;
}


/* Adds one slice's sums to domain_slices: those of d->domain, or when
 * message_id is not 0, of that message's domain. */
static int
flush_slice(struct store *st, const struct slice_delta *d,
            int64_t message_id)
{
    sqlite3_stmt *s = st->stmt[S_SLICE_ADD];
    int rc;

    rc = sqlite3_bind_int64(s, 1, d->slice);
    if (rc == SQLITE_OK && message_id != 0) {
        rc = sqlite3_bind_int64(s, 12, message_id);
    } else if (rc == SQLITE_OK) {
        rc = sqlite3_bind_text(s, 2, d->domain, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(s, 3, d->reached);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(s, 4, d->opened);
    }
    for (int c = 0; rc == SQLITE_OK && c < STORE_N_CLASSES; c++) {
        rc = sqlite3_bind_int64(s, 5 + c, d->n[c]);
    }
    if (rc == SQLITE_OK) {
        rc = d->has_open ? sqlite3_bind_int64(s, 11, d->last_open)
                         : sqlite3_bind_null(s, 11);
    }
    if (rc != SQLITE_OK) {
        return bind_failed(st, s, "slice");
    }
    return step_done(st, s, "slice");
}


/* Writes the sums of the batch so far; the caller rolls back on error. */
static int
flush_slices(struct store *st)
{
    int rc = STORE_OK;

    for (size_t i = 0; rc == STORE_OK && i < st->n_pend; i++) {
        rc = flush_slice(st, &st->pend[i], 0);
    }
    st->n_pend = 0;
    return rc;
}


/* Runs a slice statement on message id. */
static int
slice_message(struct store *st, enum stmt_id which, int64_t id)
{
    return run_ids(st, which, &id, 1, "slice");
}


/*
 * Works out customer id's call-list state again from their replies
 * (CALL_LO, CALL_REST).  Every write that adds a reply or changes
 * whether one is opened or reached calls it.
 */
static int
refresh_customer(struct store *st, int64_t id)
{
    int rc = run_ids(st, S_CUSTOMER_CALL_LO, &id, 1, "call list");

    return rc == STORE_OK ? run_ids(st, S_CUSTOMER_CALL_REST, &id, 1,
                                    "call list")
                          : rc;
}


/* refresh_customer() for the customer of message id, if it is a reply. */
static int
refresh_reply_customer(struct store *st, int64_t id)
{
    sqlite3_stmt *s = st->stmt[S_REPLY_CUSTOMER_OF];
    int64_t customer = 0;
    int rc;

    if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK) {
        return bind_failed(st, s, "call list");
    }
    rc = step_int64(st, s, "call list", STORE_NOTFOUND, &customer);
    if (rc == STORE_NOTFOUND) {
        return STORE_OK;
    }
    return rc == STORE_OK ? refresh_customer(st, customer) : rc;
}


/*
 * Rebuilds every figure of a message from its rows, its overflow and its
 * replies; reply_at, when not NULL, is a new customer reply covering it.
 * Its slice loses the old figures and gains the new ones; the batch's
 * sums are written first, so that none adds back an open taken away.
 */
static int
recompute_message(struct store *st, int64_t id, const int64_t *reply_at)
{
    sqlite3_stmt *s = st->stmt[S_MESSAGE_RECOMPUTE];
    int rc;

    rc = flush_slices(st);
    if (rc == STORE_OK) {
        rc = slice_message(st, S_SLICE_LEAVE, id);
    }
    if (rc != STORE_OK) {
        return rc;
    }

    rc = sqlite3_bind_int64(s, 1, id);
    if (rc == SQLITE_OK) {
        rc = reply_at != NULL ? sqlite3_bind_int64(s, 2, *reply_at)
                              : sqlite3_bind_null(s, 2);
    }
    if (rc != SQLITE_OK) {
        return bind_failed(st, s, "recompute");
    }
    rc = step_done(st, s, "recompute");
    if (rc == STORE_OK) {
        rc = slice_message(st, S_SLICE_JOIN, id);
    }
    if (rc == STORE_OK) {
        rc = refresh_reply_customer(st, id);
    }
    return rc;
}


/* One fetch being written: its fields made safe, facts and verdict. */
struct fetch_job {
    int64_t message_id;
    int64_t at;
    char addr[STORE_ADDR_MAX];
    char user_agent[STORE_UA_MAX + 1];
    char referer_host[STORE_REFERER_MAX];
    int64_t rows_kept;
    int64_t not_kept;
    int reached;                    /* the message, before this fetch */
    int opened;
    int64_t customer_id;
    int is_reply;
    int64_t sent_at;
    int64_t slice;
    char domain[SLICE_DOMAIN_MAX];  /* "" when too long to keep */
    int64_t window[2];              /* its burst window, [start, end) */
    struct store_fetch_facts facts;
    struct store_verdict verdict;
    int burst_cls;
};

/* Where a fetch went. */
enum placement {
    PLACED_ROW,                 /* a new row */
    PLACED_RUN,                 /* added to an identical row's count */
    PLACED_OVERFLOW             /* over the rows cap: counted only */
};


/* Appends the row under the cursor of s to st->net.  -1: no memory. */
static int
net_push(struct store *st, sqlite3_stmt *s)
{
    const char *ua = (const char *) sqlite3_column_text(s, 8);
    const char *cls = (const char *) sqlite3_column_text(s, 10);
    struct net_row *r;

    if (st->n_net == st->cap_net) {
        size_t cap = st->cap_net == 0 ? 16 : st->cap_net * 2;

        r = realloc(st->net, cap * sizeof(*r));
        if (r == NULL) {
            return -1;
        }
        st->net = r;
        st->cap_net = cap;
    }

    r = &st->net[st->n_net++];
    r->id = sqlite3_column_int64(s, 5);
    r->at = sqlite3_column_int64(s, 6);
    r->last_at = sqlite3_column_int64(s, 7);
    copy_field(r->user_agent, sizeof(r->user_agent), ua);
    r->is_head = sqlite3_column_int(s, 9);
    r->cls = cls != NULL ? store_class_parse(cls) : -1;
    return 0;
}


/*
 * The message's first fetch of any class but internal, from its
 * reached_at and replied_at in the message row under the cursor of s
 * (columns 3 and 4): reached_at is the earlier of that fetch and the
 * first reply, kept exact by every write.  INT64_MAX when it has none;
 * -1 when only first_delivery() can tell (a reply came first).
 */
static int64_t
delivered_at(sqlite3_stmt *s)
{
    int64_t reached = sqlite3_column_int64(s, 3);

    if (sqlite3_column_type(s, 3) == SQLITE_NULL) {
        return INT64_MAX;
    }
    if (sqlite3_column_type(s, 4) == SQLITE_NULL
        || reached < sqlite3_column_int64(s, 4)) {
        return reached;
    }
    return -1;
}


/* The message's slice and what it had before this fetch. */
static void
read_slice(sqlite3_stmt *s, struct fetch_job *j)
{
    const char *domain = (const char *) sqlite3_column_text(s, 12);
    size_t len = domain != NULL ? strlen(domain) : 0;

    j->reached = sqlite3_column_type(s, 3) != SQLITE_NULL;
    j->opened = sqlite3_column_int(s, 11);
    j->slice = sqlite3_column_int64(s, 13);
    j->customer_id = sqlite3_column_int64(s, 14);
    j->is_reply = sqlite3_column_int(s, 15);
    j->sent_at = sqlite3_column_int64(s, 16);
    j->domain[0] = '\0';
    if (len < sizeof(j->domain)) {
        memcpy(j->domain, domain != NULL ? domain : "", len + 1);
    }
}


/*
 * Reads the fetch's message and its network's rows (st->net).  Sets
 * *registered and *delivered (see delivered_at()); STORE_NOTFOUND when
 * there is no such message.
 */
static int
read_message(struct store *st, struct fetch_job *j, int64_t *registered,
             int64_t *delivered)
{
    sqlite3_stmt *s = st->stmt[S_FETCH_MESSAGE];
    int found;
    int rc;

    st->n_net = 0;
    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_text(s, 2, j->addr, -1, SQLITE_STATIC)
           != SQLITE_OK) {
        return bind_failed(st, s, "fetch");
    }

    rc = sqlite3_step(s);
    found = rc == SQLITE_ROW;
    if (found) {
        *registered = sqlite3_column_int64(s, 0);
        j->rows_kept = sqlite3_column_int64(s, 1);
        j->not_kept = sqlite3_column_int64(s, 2);
        *delivered = delivered_at(s);
        read_slice(s, j);
    }
    for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
        if (sqlite3_column_type(s, 5) != SQLITE_NULL
            && net_push(st, s) != 0) {
            set_err(st, "fetch: out of memory");
            finish(s);
            return STORE_ERR;
        }
    }
    rc = rc != SQLITE_DONE ? fail(st, rc, "fetch")
         : found ? STORE_OK : STORE_NOTFOUND;
    finish(s);
    return rc;
}


/*
 * Copies the record into j, cutting its text fields at their sizes, and
 * reads its message.  STORE_NOTFOUND when there is no such message.
 */
static int
load_job(struct store *st, const struct store_fetch_rec *rec,
         struct fetch_job *j)
{
    int64_t registered = 0;
    int64_t delivered = INT64_MAX;
    int rc;

    j->message_id = rec->message_id;
    j->at = rec->at_ms;
    copy_field(j->addr, sizeof(j->addr), rec->addr);
    copy_field(j->user_agent, sizeof(j->user_agent), rec->user_agent);
    copy_field(j->referer_host, sizeof(j->referer_host), rec->referer_host);
    rc = read_message(st, j, &registered, &delivered);
    if (rc == STORE_OK && delivered < 0) {
        rc = first_delivery(st, j->message_id, 1, &delivered);
    }
    if (rc != STORE_OK) {
        return rc;
    }

    burst_window(delivered, j->at, &j->window[0], &j->window[1]);
    j->facts.is_head = rec->is_head != 0;
    j->facts.user_agent = j->user_agent;
    j->facts.network = j->addr;
    j->facts.referer_host = j->referer_host;
    j->facts.secs_since_send = secs_since(rec->at_ms, registered);
    j->facts.burst_clients = 0;
    return STORE_OK;
}


/* at lies in the fetch's burst window. */
static int
in_window(const struct fetch_job *j, int64_t at)
{
    return at >= j->window[0] && at < j->window[1];
}


/*
 * count_burst() for a new fetch, from the rows read with its message:
 * the distinct other User-Agents among its network's rows in the window,
 * plus its own.  Only when the message has no fetch without a row
 * (not_kept 0), so burst_unkept holds nothing of it; else the query.
 */
static int
net_burst(struct store *st, struct fetch_job *j)
{
    unsigned n = 1;

    if (j->not_kept != 0) {
        return count_burst(st, j->message_id, j->window, NULL, &j->facts);
    }
    for (size_t i = 0; i < st->n_net; i++) {
        const struct net_row *r = &st->net[i];
        size_t k = 0;

        if (!in_window(j, r->at)
            || strcmp(r->user_agent, j->user_agent) == 0) {
            continue;
        }
        /* Counted already when an earlier qualifying row has it. */
        while (k < i && (!in_window(j, st->net[k].at)
                         || strcmp(st->net[k].user_agent,
                                   r->user_agent) != 0)) {
            k++;
        }
        n += k == i;
    }
    j->facts.burst_clients = n;
    return STORE_OK;
}


/* at is less than STORE_COLLAPSE_MS after last_at (or before it). */
static int
within_collapse(int64_t at, int64_t last_at)
{
    if (at <= last_at) {
        return 1;
    }
    /* Unsigned: the difference of two int64 may not fit in one. */
    return (uint64_t) at - (uint64_t) last_at < (uint64_t) STORE_COLLAPSE_MS;
}


/*
 * The run a fetch joins, among its network's rows: same User-Agent,
 * HEAD-ness and class, begun at or before it and last fetched less than
 * STORE_COLLAPSE_MS before it; the newest such run.  *run_id is 0 when
 * none.
 */
static void
find_run(const struct store *st, const struct fetch_job *j,
         int64_t *run_id)
{
    const struct net_row *best = NULL;

    for (size_t i = 0; i < st->n_net; i++) {
        const struct net_row *r = &st->net[i];

        if (r->is_head == j->facts.is_head && r->cls == j->verdict.cls
            && r->at <= j->at && within_collapse(j->at, r->last_at)
            && strcmp(r->user_agent, j->user_agent) == 0
            && (best == NULL || r->last_at > best->last_at)) {
            best = r;
        }
    }
    *run_id = best != NULL ? best->id : 0;
}


static int
add_to_run(struct store *st, int64_t run_id, int64_t at)
{
    const int64_t v[2] = { run_id, at };

    return run_ids(st, S_FETCH_ADD_TO_RUN, v, 2, "fetch run");
}


static int
insert_fetch(struct store *st, const struct fetch_job *j)
{
    sqlite3_stmt *s = st->stmt[S_FETCH_INSERT];
    const struct store_verdict *v = &j->verdict;

    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, j->at) != SQLITE_OK
        || sqlite3_bind_int(s, 3, j->facts.is_head) != SQLITE_OK
        || sqlite3_bind_text(s, 4, j->addr, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 5, j->user_agent, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_text(s, 6, j->referer_host, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_int64(s, 7, j->facts.secs_since_send) != SQLITE_OK
        || sqlite3_bind_text(s, 8, store_class_name(v->cls), -1,
                             SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 9, v->rule, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 10, v->reason, -1, SQLITE_STATIC)
           != SQLITE_OK) {
        return bind_failed(st, s, "fetch");
    }
    return step_done(st, s, "fetch");
}


/* Sets *id to the burst_unkept entry of the fetch's client and class. */
static int
find_unkept(struct store *st, const struct fetch_job *j, int64_t *id)
{
    sqlite3_stmt *s = st->stmt[S_UNKEPT_FIND];

    *id = 0;
    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_text(s, 2, j->addr, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 3, j->user_agent, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_int(s, 4, j->facts.is_head) != SQLITE_OK
        || sqlite3_bind_text(s, 5, store_class_name(j->verdict.cls), -1,
                             SQLITE_STATIC) != SQLITE_OK) {
        return bind_failed(st, s, "burst unkept");
    }

    return step_int64(st, s, "burst unkept", STORE_OK, id);
}


/*
 * Counts a fetch in the burst window that made no row on the entry of its
 * client and class, or on a new entry while the message has fewer than
 * BURST_UNKEPT_MAX.  *added is 0 when there was no room.
 */
static int
add_unkept(struct store *st, const struct fetch_job *j, int *added)
{
    sqlite3_stmt *s = st->stmt[S_UNKEPT_INSERT];
    int64_t id;
    int rc;

    *added = 0;
    rc = find_unkept(st, j, &id);
    if (rc != STORE_OK) {
        return rc;
    }
    if (id != 0) {
        s = st->stmt[S_UNKEPT_ADD_TO];
        if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK
            || sqlite3_bind_int64(s, 2, j->at) != SQLITE_OK) {
            return bind_failed(st, s, "burst unkept");
        }
        *added = 1;
        return step_done(st, s, "burst unkept");
    }

    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_text(s, 2, j->addr, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 3, j->user_agent, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_int(s, 4, j->facts.is_head) != SQLITE_OK
        || sqlite3_bind_text(s, 5, store_class_name(j->verdict.cls), -1,
                             SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 6, j->at) != SQLITE_OK
        || sqlite3_bind_int(s, 7, BURST_UNKEPT_MAX) != SQLITE_OK) {
        return bind_failed(st, s, "burst unkept");
    }
    rc = step_done(st, s, "burst unkept");
    *added = rc == STORE_OK && sqlite3_changes(st->db) > 0;
    return rc;
}


/* Counts a fetch that made no row: in the burst window, else by class. */
static int
add_overflow(struct store *st, const struct fetch_job *j)
{
    sqlite3_stmt *s = st->stmt[S_FETCH_OVERFLOW];
    int added = 0;
    int rc;

    if (j->at < j->window[1]) {
        rc = add_unkept(st, j, &added);
        if (rc != STORE_OK || added) {
            return rc;
        }
    }

    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_text(s, 2, store_class_name(j->verdict.cls), -1,
                             SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 3, j->at) != SQLITE_OK) {
        return bind_failed(st, s, "fetch overflow");
    }
    return step_done(st, s, "fetch overflow");
}


/*
 * Stores the fetch: in the run of an identical earlier fetch (same
 * message, network, User-Agent, HEAD-ness and class, which keeps every
 * row's count of one class) when there is one, else as a new row while
 * the message has fewer rows than the cap, else only counted.
 * Limitation: a run keeps the evidence of its first fetch (seconds since
 * registration, Referer host), and a reclassification judges the whole
 * run by it.
 */
static int
place_fetch(struct store *st, const struct fetch_job *j,
            enum placement *where)
{
    int64_t run_id;

    find_run(st, j, &run_id);
    if (run_id != 0) {
        *where = PLACED_RUN;
        return add_to_run(st, run_id, j->at);
    }
    if (j->rows_kept < (int64_t) st->rows_max) {
        *where = PLACED_ROW;
        return insert_fetch(st, j);
    }
    *where = PLACED_OVERFLOW;
    return add_overflow(st, j);
}


/*
 * The batch's sums for the slice of j's message: found, or a new entry
 * (the sums so far written first when all are taken).  NULL when out of
 * memory or on a write error.
 */
static struct slice_delta *
pending_slice(struct store *st, const struct fetch_job *j)
{
    struct slice_delta *d;

    if (st->pend == NULL) {
        st->pend = calloc(SLICE_PENDING_MAX, sizeof(*st->pend));
        if (st->pend == NULL) {
            set_err(st, "slice: out of memory");
            return NULL;
        }
    }
    for (size_t i = st->n_pend; i > 0; i--) {
        d = &st->pend[i - 1];
        if (d->slice == j->slice && strcmp(d->domain, j->domain) == 0) {
            return d;
        }
    }

    if (st->n_pend == SLICE_PENDING_MAX && flush_slices(st) != STORE_OK) {
        return NULL;
    }
    d = &st->pend[st->n_pend++];
    memset(d, 0, sizeof(*d));
    d->slice = j->slice;
    memcpy(d->domain, j->domain, strlen(j->domain) + 1);
    return d;
}


/*
 * Adds the fetch to its slice's sums, as S_FETCH_COUNT adds it to its
 * message.  A domain too long to keep in memory is read and written at
 * once.
 */
static int
add_to_slice(struct store *st, const struct fetch_job *j)
{
    struct slice_delta one;
    struct slice_delta *d = &one;
    int cls = j->verdict.cls;

    if (j->domain[0] == '\0') {
        memset(&one, 0, sizeof(one));
        one.slice = j->slice;
    } else if ((d = pending_slice(st, j)) == NULL) {
        return STORE_ERR;
    }

    d->n[cls]++;
    d->reached += !j->reached && cls != STORE_INTERNAL;
    d->opened += !j->opened && STORE_CLASS_IS_OPEN(cls);
    if (STORE_CLASS_IS_OPEN(cls) && (!d->has_open || j->at > d->last_open)) {
        d->last_open = j->at;
        d->has_open = 1;
    }
    if (d == &one) {
        return flush_slice(st, &one, j->message_id);
    }
    return STORE_OK;
}


/* Counts the fetch on its message: class, rows, open and reach times. */
static int
count_fetch(struct store *st, const struct fetch_job *j,
            enum placement where)
{
    sqlite3_stmt *s = st->stmt[S_FETCH_COUNT];
    int rc;

    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_text(s, 2, store_class_name(j->verdict.cls), -1,
                             SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int(s, 3, where == PLACED_ROW) != SQLITE_OK
        || sqlite3_bind_int(s, 4, where == PLACED_OVERFLOW) != SQLITE_OK
        || sqlite3_bind_int64(s, 5, j->at) != SQLITE_OK) {
        return bind_failed(st, s, "fetch count");
    }
    rc = step_done(st, s, "fetch count");
    if (rc == STORE_OK) {
        rc = add_to_slice(st, j);
    }
    return rc;
}


/* The GET fetches of the burst that made no row take its class. */
static int
relabel_unkept(struct store *st, const struct fetch_job *j, int *changed)
{
    sqlite3_stmt *s = st->stmt[S_UNKEPT_RELABEL];
    int rc;

    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_text(s, 2, j->addr, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 3, store_class_name(j->burst_cls), -1,
                             SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 4, j->window[1]) != SQLITE_OK
        || sqlite3_bind_int64(s, 5, j->window[0]) != SQLITE_OK) {
        return bind_failed(st, s, "burst relabel");
    }
    rc = step_done(st, s, "burst relabel");
    *changed |= rc == STORE_OK && sqlite3_changes(st->db) > 0;
    return rc;
}


/*
 * A whole_burst verdict on a fetch in the burst window: the earlier GET
 * fetches of the burst (same message and network, in the window), rows
 * or not, take it, and the message's figures follow them.
 */
static int
relabel_burst(struct store *st, const struct fetch_job *j)
{
    sqlite3_stmt *s = st->stmt[S_BURST_RELABEL];
    const struct store_verdict *v = &j->verdict;
    int changed = 0;
    int rc;

    if (!v->whole_burst || j->at >= j->window[1]) {
        return STORE_OK;
    }
    if (sqlite3_bind_int64(s, 1, j->message_id) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, j->window[1]) != SQLITE_OK
        || sqlite3_bind_int64(s, 7, j->window[0]) != SQLITE_OK
        || sqlite3_bind_text(s, 3, j->addr, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 4, store_class_name(j->burst_cls), -1,
                             SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 5, v->burst_rule, -1, SQLITE_STATIC)
           != SQLITE_OK
        || sqlite3_bind_text(s, 6, v->burst_reason, -1, SQLITE_STATIC)
           != SQLITE_OK) {
        return bind_failed(st, s, "burst relabel");
    }

    rc = step_done(st, s, "burst relabel");
    changed = rc == STORE_OK && sqlite3_changes(st->db) > 0;
    if (rc == STORE_OK) {
        rc = relabel_unkept(st, j, &changed);
    }
    if (rc == STORE_OK && changed) {
        rc = recompute_message(st, j->message_id, NULL);
    }
    return rc;
}


/*
 * Moves the customer's call-list state for a fetch that first opens or
 * first reaches a reply, by what that one reply changes (S_CALL_OPENED,
 * S_CALL_REACHED) rather than by refresh_customer(): this runs on the
 * writer's hot path, once per reply.  Later fetches change nothing.
 */
static int
move_call_list(struct store *st, const struct fetch_job *j)
{
    int cls = j->verdict.cls;
    const int64_t v[2] = { j->customer_id, j->sent_at };
    enum stmt_id which;

    if (!j->is_reply) {
        return STORE_OK;
    }
    if (!j->opened && STORE_CLASS_IS_OPEN(cls)) {
        which = S_CALL_OPENED;
    } else if (!j->reached && cls != STORE_INTERNAL) {
        which = S_CALL_REACHED;
    } else {
        return STORE_OK;
    }

    return run_ids(st, which, v, 2, "call list");
}


/* Classifies and stores one fetch, adding to the batch's *res. */
static int
write_fetch(struct store *st, const struct store_fetch_rec *rec,
            store_classify_fn *classify, void *ctx,
            struct store_write_result *res)
{
    struct fetch_job j;
    enum placement where = PLACED_ROW;
    int rc;

    rc = load_job(st, rec, &j);
    if (rc == STORE_NOTFOUND) {
        res->unknown++;
        return STORE_OK;
    }
    if (rc == STORE_OK && j.at < j.window[1]) {
        rc = net_burst(st, &j);
    }
    if (rc != STORE_OK) {
        return rc;
    }

    j.burst_cls = judge(classify, ctx, &j.facts, &j.verdict);
    rc = place_fetch(st, &j, &where);
    if (rc == STORE_OK) {
        rc = count_fetch(st, &j, where);
    }
    if (rc == STORE_OK) {
        rc = move_call_list(st, &j);
    }
    if (rc == STORE_OK) {
        rc = relabel_burst(st, &j);
    }

    res->collapsed += where == PLACED_RUN;
    res->not_kept += where == PLACED_OVERFLOW;
    return rc;
}


void
store_set_fetch_rows_max(struct store *st, unsigned n)
{
    if (st != NULL) {
        st->rows_max = n;
    }
}


int
store_fetches_write(struct store *st, const struct store_fetch_rec *v,
                    size_t n, store_classify_fn *classify, void *ctx,
                    struct store_write_result *res)
{
    struct store_write_result sum = { 0, 0, 0 };
    int rc;

    if (res != NULL) {
        *res = sum;
    }
    if (n == 0) {
        return STORE_OK;
    }
    if (v == NULL || classify == NULL) {
        set_err(st, "fetches: no fetches or no classifier");
        return STORE_ERR;
    }

    st->n_pend = 0;
    rc = run(st, S_BEGIN, "begin");
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        rc = write_fetch(st, &v[i], classify, ctx, &sum);
    }
    if (rc == STORE_OK) {
        rc = flush_slices(st);
    }
    rc = end_txn(st, rc);
    if (rc != STORE_OK) {
        st->n_pend = 0;
        return rc;
    }

    if (res != NULL) {
        *res = sum;
    }
    return STORE_OK;
}


/* A stored fetch row, as reclassification reads it. */
struct stored_fetch {
    int64_t id;
    int64_t message_id;
    int64_t at;
    int64_t secs;
    int is_head;
    int cls;
    char addr[STORE_ADDR_MAX];
    char user_agent[STORE_UA_MAX + 1];
    char referer_host[STORE_REFERER_MAX];
    char rule[STORE_RULE_MAX];
    char reason[STORE_REASON_MAX];
};

/* A whole_burst verdict met on a network, for the rows before it. */
struct burst_verdict {
    char addr[STORE_ADDR_MAX];
    int64_t window[2];              /* its burst window, [start, end) */
    struct store_verdict v;         /* settled for a GET */
};

/*
 * A reclassification in progress.  Rows are walked backwards, one message
 * at a time, so a row's final verdict is known when it is reached: its
 * own, or that of the last whole_burst verdict after it on its network
 * (pending[]), which is what the live write would have left on it.
 * Limitation: a whole_burst verdict on a fetch that made no row (over
 * the cap) relabelled its burst's rows when written, but is not replayed
 * here: that fetch keeps its class and only its client is stored, so
 * those rows take the verdicts their own evidence gives.
 */
struct reclass {
    store_classify_fn *classify;
    void *ctx;
    struct stored_fetch *page;      /* RECLASS_PAGE rows */
    size_t n_page;
    int64_t message_id;             /* the message walked, 0: none yet */
    int64_t delivered;              /* its delivery (see reclass_start) */
    int dirty;                      /* a row of it changed class */
    struct burst_verdict *pending;
    size_t n_pending;
    size_t cap_pending;
    int64_t rows;
    int64_t changed;
};


/* Copies the current row of the page statement s (or alike) into r. */
static void
read_stored(sqlite3_stmt *s, struct stored_fetch *r)
{
    r->id = sqlite3_column_int64(s, 0);
    r->message_id = sqlite3_column_int64(s, 1);
    r->at = sqlite3_column_int64(s, 2);
    r->is_head = sqlite3_column_int(s, 3) != 0;
    copy_field(r->addr, sizeof(r->addr),
               (const char *) sqlite3_column_text(s, 4));
    copy_field(r->user_agent, sizeof(r->user_agent),
               (const char *) sqlite3_column_text(s, 5));
    copy_field(r->referer_host, sizeof(r->referer_host),
               (const char *) sqlite3_column_text(s, 6));
    r->secs = sqlite3_column_int64(s, 7);
    r->cls = store_class_parse((const char *) sqlite3_column_text(s, 8));
    copy_field(r->rule, sizeof(r->rule),
               (const char *) sqlite3_column_text(s, 9));
    copy_field(r->reason, sizeof(r->reason),
               (const char *) sqlite3_column_text(s, 10));
}


/*
 * Reads the next page of rows before key (message_id, at, id), walking
 * backwards.  The statement is done with before any row is changed.
 */
static int
read_page(struct store *st, struct reclass *w, const int64_t key[3])
{
    sqlite3_stmt *s = st->stmt[S_RECLASS_PAGE];
    int step = SQLITE_DONE;

    w->n_page = 0;
    if (sqlite3_bind_int64(s, 1, key[0]) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, key[1]) != SQLITE_OK
        || sqlite3_bind_int64(s, 3, key[2]) != SQLITE_OK
        || sqlite3_bind_int(s, 4, RECLASS_PAGE) != SQLITE_OK) {
        return bind_failed(st, s, "reclassify");
    }

    while (w->n_page < RECLASS_PAGE
           && (step = sqlite3_step(s)) == SQLITE_ROW) {
        read_stored(s, &w->page[w->n_page++]);
    }
    step = w->n_page == RECLASS_PAGE || step == SQLITE_DONE
           ? STORE_OK : fail(st, step, "reclassify");
    finish(s);
    return step;
}


/* The whole_burst verdict of network addr whose window holds at. */
static const struct store_verdict *
pending_find(const struct reclass *w, const char *addr, int64_t at)
{
    for (size_t i = 0; i < w->n_pending; i++) {
        const struct burst_verdict *p = &w->pending[i];

        if (at >= p->window[0] && at < p->window[1]
            && strcmp(p->addr, addr) == 0) {
            return &p->v;
        }
    }
    return NULL;
}


/*
 * Remembers a whole_burst verdict for the earlier rows of its network.
 * Memory grows with the networks that burst on one message in its first
 * STORE_BURST_MS, at most its rows (which the rows cap bounds).
 */
static int
pending_add(struct store *st, struct reclass *w, const char *addr,
            const int64_t window[2], const struct store_verdict *v)
{
    struct burst_verdict *p;
    size_t cap;

    if (w->n_pending == w->cap_pending) {
        cap = w->cap_pending == 0 ? 8 : w->cap_pending * 2;
        p = realloc(w->pending, cap * sizeof(*p));
        if (p == NULL) {
            set_err(st, "reclassify: out of memory");
            return STORE_ERR;
        }
        w->pending = p;
        w->cap_pending = cap;
    }

    p = &w->pending[w->n_pending++];
    copy_field(p->addr, sizeof(p->addr), addr);
    p->window[0] = window[0];
    p->window[1] = window[1];
    p->v = *v;
    return STORE_OK;
}


/* Stores verdict v on row r when it differs from what r has. */
static int
update_row(struct store *st, struct reclass *w, const struct stored_fetch *r,
           const struct store_verdict *v)
{
    sqlite3_stmt *s = st->stmt[S_RECLASS_SET];

    if (v->cls == r->cls && strcmp(v->rule, r->rule) == 0
        && strcmp(v->reason, r->reason) == 0) {
        return STORE_OK;
    }
    if (v->cls != r->cls) {
        w->changed++;
        w->dirty = 1;
    }

    if (sqlite3_bind_int64(s, 1, r->id) != SQLITE_OK
        || sqlite3_bind_text(s, 2, store_class_name(v->cls), -1,
                             SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 3, v->rule, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 4, v->reason, -1, SQLITE_STATIC)
           != SQLITE_OK) {
        return bind_failed(st, s, "reclassify");
    }
    return step_done(st, s, "reclassify");
}


/*
 * Classifies row r again from its stored evidence, its burst recomputed
 * from the rows before it in the window that delivered (the message's
 * delivery, as in burst_window()) gives it: sets win, *v and *burst_cls
 * (see judge()).
 */
static int
judge_row(struct store *st, const struct reclass *w,
          const struct stored_fetch *r, int64_t delivered, int64_t win[2],
          struct store_verdict *v, int *burst_cls)
{
    struct store_fetch_facts f = {
        r->is_head, r->user_agent, r->addr, r->referer_host, r->secs, 0
    };
    const int64_t before[2] = { r->at, r->id };
    int err = STORE_OK;

    burst_window(delivered, r->at, &win[0], &win[1]);
    if (r->at < win[1]) {
        err = count_burst(st, r->message_id, win, before, &f);
    }
    if (err == STORE_OK) {
        *burst_cls = judge(w->classify, w->ctx, &f, v);
    }
    return err;
}


/*
 * Sets w->delivered for message_id as the live writes saw it: its first
 * fetch of any class but internal, by the new verdicts.  A row is judged
 * on the rows before it and every row was written before any fetch that
 * made none, so the rows are judged first to last until one is not
 * internal, each in the window that opens at itself (none before it was
 * delivery); the fetches that made no row keep their class.  Usually the
 * first row settles it.
 */
static int
reclass_start(struct store *st, struct reclass *w, int64_t message_id)
{
    sqlite3_stmt *s = st->stmt[S_RECLASS_FIRST];
    struct stored_fetch r;
    struct store_verdict v;
    int64_t win[2];
    int burst_cls;
    int err;
    int step;

    err = first_delivery(st, message_id, 0, &w->delivered);
    if (err != STORE_OK) {
        return err;
    }
    if (sqlite3_bind_int64(s, 1, message_id) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, w->delivered) != SQLITE_OK) {
        return bind_failed(st, s, "reclassify");
    }

    while (err == STORE_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
        read_stored(s, &r);
        err = judge_row(st, w, &r, w->delivered, win, &v, &burst_cls);
        if (err == STORE_OK && v.cls != STORE_INTERNAL) {
            w->delivered = r.at;
            step = SQLITE_DONE;
            break;
        }
    }
    if (err == STORE_OK && step != SQLITE_DONE) {
        err = fail(st, step, "reclassify");
    }
    finish(s);
    return err;
}


/*
 * Classifies row r again (judge_row()) and stores its final verdict (see
 * struct reclass).
 */
static int
reclass_row(struct store *st, struct reclass *w,
            const struct stored_fetch *r)
{
    const struct store_verdict *later = NULL;
    struct store_verdict v;
    int64_t win[2];
    int burst_cls;
    int err;

    err = judge_row(st, w, r, w->delivered, win, &v, &burst_cls);
    if (err != STORE_OK) {
        return err;
    }

    w->rows++;
    if (r->at < win[1]) {
        later = pending_find(w, r->addr, r->at);
    }
    if (later == NULL && v.whole_burst && r->at < win[1]) {
        struct store_verdict b = v;

        b.cls = burst_cls;
        memcpy(b.rule, v.burst_rule, sizeof(b.rule));
        memcpy(b.reason, v.burst_reason, sizeof(b.reason));
        err = pending_add(st, w, r->addr, win, &b);
    }
    if (err != STORE_OK) {
        return err;
    }

    /* As in S_BURST_RELABEL: a burst relabels human verdicts only. */
    if (later != NULL && !r->is_head && v.cls == STORE_HUMAN
        && later->cls != v.cls) {
        return update_row(st, w, r, later);
    }
    return update_row(st, w, r, &v);
}


/* Leaves the message walked: its figures follow its rows' new classes. */
static int
end_message(struct store *st, struct reclass *w)
{
    int err = STORE_OK;

    if (w->dirty) {
        err = recompute_message(st, w->message_id, NULL);
    }
    w->dirty = 0;
    w->n_pending = 0;
    return err;
}


/* Walks every fetch row, last first, a page at a time. */
static int
reclass_walk(struct store *st, struct reclass *w)
{
    int64_t key[3] = { INT64_MAX, INT64_MAX, INT64_MAX };
    const struct stored_fetch *r;
    int err;

    for (;;) {
        err = read_page(st, w, key);
        if (err != STORE_OK || w->n_page == 0) {
            break;
        }

        for (size_t i = 0; err == STORE_OK && i < w->n_page; i++) {
            r = &w->page[i];
            if (r->message_id != w->message_id) {
                err = end_message(st, w);
                w->message_id = r->message_id;
                if (err == STORE_OK) {
                    err = reclass_start(st, w, r->message_id);
                }
            }
            if (err == STORE_OK) {
                err = reclass_row(st, w, r);
            }
        }
        if (err != STORE_OK) {
            return err;
        }

        r = &w->page[w->n_page - 1];
        key[0] = r->message_id;
        key[1] = r->at;
        key[2] = r->id;
    }
    return err == STORE_OK ? end_message(st, w) : err;
}


int
store_reclassify(struct store *st, store_classify_fn *classify,
                 void *ctx, int64_t *rows, int64_t *changed)
{
    struct reclass w;
    int64_t ignored[2];
    int err;

    rows = rows != NULL ? rows : &ignored[0];
    changed = changed != NULL ? changed : &ignored[1];
    *rows = 0;
    *changed = 0;
    if (classify == NULL) {
        set_err(st, "reclassify: no classifier");
        return STORE_ERR;
    }
    memset(&w, 0, sizeof(w));
    w.classify = classify;
    w.ctx = ctx;
    w.page = calloc(RECLASS_PAGE, sizeof(*w.page));
    if (w.page == NULL) {
        set_err(st, "reclassify: out of memory");
        return STORE_ERR;
    }

    err = run(st, S_BEGIN, "begin");
    if (err == STORE_OK) {
        err = reclass_walk(st, &w);
    }
    err = end_txn(st, err);
    if (err == STORE_OK) {
        *rows = w.rows;
        *changed = w.changed;
    }

    free(w.page);
    free(w.pending);
    return err;
}


/*
 * Records the reply on the customer keyed by key, if ticket_id has a
 * message to them; sets *customer_id.  STORE_NOTFOUND otherwise.
 */
static int
reply_customer(struct store *st, const char *key, const char *ticket_id,
               int64_t at_ms, int64_t *customer_id)
{
    sqlite3_stmt *s = st->stmt[S_REPLY_CUSTOMER];
    int rc;

    if (sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, at_ms) != SQLITE_OK
        || sqlite3_bind_text(s, 3, ticket_id, -1, SQLITE_STATIC)
           != SQLITE_OK) {
        return bind_failed(st, s, "reply");
    }

    rc = step_int64(st, s, "reply", STORE_NOTFOUND, customer_id);
    if (rc == STORE_NOTFOUND) {
        set_err(st, "reply: the ticket has no message to that recipient");
    }
    return rc;
}


/* Sets *id to the next message after *id that the reply covers. */
static int
next_covered(struct store *st, const char *ticket_id, int64_t customer_id,
             int64_t at_ms, int64_t *id)
{
    sqlite3_stmt *s = st->stmt[S_REPLY_NEXT];

    if (sqlite3_bind_text(s, 1, ticket_id, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, customer_id) != SQLITE_OK
        || sqlite3_bind_int64(s, 3, at_ms) != SQLITE_OK
        || sqlite3_bind_int64(s, 4, *id) != SQLITE_OK) {
        return bind_failed(st, s, "reply");
    }

    return step_int64(st, s, "reply", STORE_NOTFOUND, id);
}


/*
 * Marks the messages of ticket_id to the customer sent at or before
 * at_ms as replied (so opened and reached); counts them in *marked.
 */
static int
mark_replied(struct store *st, const char *ticket_id, int64_t customer_id,
             int64_t at_ms, int64_t *marked)
{
    int64_t id = 0;
    int rc;

    for (;;) {
        rc = next_covered(st, ticket_id, customer_id, at_ms, &id);
        if (rc == STORE_NOTFOUND) {
            return STORE_OK;
        }
        if (rc == STORE_OK) {
            rc = recompute_message(st, id, &at_ms);
        }
        if (rc != STORE_OK) {
            return rc;
        }
        (*marked)++;
    }
}


int
store_reply_record(struct store *st, const char *ticket_id,
                   const char *recipient, int64_t at_ms, int64_t *marked)
{
    const char *at;
    int64_t customer_id = 0;
    int64_t n = 0;
    int64_t ignored;
    char *key;
    int rc;

    marked = marked != NULL ? marked : &ignored;
    *marked = 0;
    if (ticket_id == NULL || recipient == NULL) {
        set_err(st, "reply: no ticket id or no recipient");
        return STORE_ERR;
    }
    at = strrchr(recipient, '@');
    key = address_key(recipient, at != NULL ? at + 1 : "");
    if (key == NULL) {
        set_err(st, "reply: out of memory");
        return STORE_ERR;
    }

    rc = run(st, S_BEGIN, "begin");
    if (rc == STORE_OK) {
        rc = reply_customer(st, key, ticket_id, at_ms, &customer_id);
    }
    if (rc == STORE_OK) {
        rc = mark_replied(st, ticket_id, customer_id, at_ms, &n);
    }
    rc = end_txn(st, rc);
    if (rc == STORE_OK) {
        *marked = n;
    }

    free(key);
    return rc;
}


/* Loads the current row of the ticket statement s into r. */
static void
read_ticket_row(sqlite3_stmt *s, struct store_ticket_row *r)
{
    r->message_id = sqlite3_column_int64(s, 0);
    r->recipient = (const char *) sqlite3_column_text(s, 1);
    r->kind = (const char *) sqlite3_column_text(s, 2);
    r->sent_at_ms = sqlite3_column_int64(s, 3);
    r->registered_at_ms = sqlite3_column_int64(s, 4);
    r->header_message_id = (const char *) sqlite3_column_text(s, 5);
    r->first_open_at_ms = sqlite3_column_int64(s, 6);
    r->reached_at_ms = sqlite3_column_int64(s, 7);
    r->replied_at_ms = sqlite3_column_int64(s, 8);
    for (int c = 0; c < STORE_N_CLASSES; c++) {
        r->by_class[c] = sqlite3_column_int64(s, 9 + c);
    }
    r->not_kept = sqlite3_column_int64(s, 15);

    r->has_fetch = sqlite3_column_int(s, 16);
    r->fetch_at_ms = sqlite3_column_int64(s, 17);
    r->fetch_last_at_ms = sqlite3_column_int64(s, 18);
    r->fetch_count = sqlite3_column_int64(s, 19);
    r->fetch_class = r->has_fetch
        ? store_class_parse((const char *) sqlite3_column_text(s, 20)) : 0;
    r->fetch_rule = (const char *) sqlite3_column_text(s, 21);
    r->fetch_reason = (const char *) sqlite3_column_text(s, 22);
    r->fetch_addr = (const char *) sqlite3_column_text(s, 23);
    r->fetch_user_agent = (const char *) sqlite3_column_text(s, 24);
    r->fetch_referer_host = (const char *) sqlite3_column_text(s, 25);
    r->fetch_secs_since_send = sqlite3_column_int64(s, 26);
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
        return bind_failed(st, s, "ticket");
    }

    while (stop == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_ticket_row(s, &r);
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


/*
 * The domains report's sums, one entry per domain, in an open-addressing
 * table that doubles at half full.  SQLite grouped the window's rows
 * (some 60,000 slice rows for 30 days over 2,000 domains) through a
 * temporary b-tree, which took more than half of the report's time.
 */
struct domain_sum {
    char *domain;                   /* NULL: a free slot */
    uint64_t hash;
    struct store_domain_row row;    /* row.domain is domain */
};

struct domain_sums {
    struct domain_sum *slot;
    size_t cap;                     /* a power of two, or 0 */
    size_t n;
};

#define DOMAIN_SUMS_MIN 1024


/* FNV-1a: domains are short, and the table only needs a spread. */
static uint64_t
domain_hash(const char *domain)
{
    uint64_t h = 14695981039346656037ULL;

    for (const unsigned char *p = (const unsigned char *) domain; *p; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    return h;
}


/* The slot that holds domain, or the free slot where it would go. */
static struct domain_sum *
sums_slot(struct domain_sum *slot, size_t cap, const char *domain,
          uint64_t hash)
{
    size_t i = hash & (cap - 1);

    while (slot[i].domain != NULL
           && (slot[i].hash != hash || strcmp(slot[i].domain, domain) != 0)) {
        i = (i + 1) & (cap - 1);
    }
    return &slot[i];
}


static int
sums_grow(struct domain_sums *t)
{
    size_t cap = t->cap == 0 ? DOMAIN_SUMS_MIN : t->cap * 2;
    struct domain_sum *slot = calloc(cap, sizeof(*slot));

    if (slot == NULL) {
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        const struct domain_sum *e = &t->slot[i];

        if (e->domain != NULL) {
            *sums_slot(slot, cap, e->domain, e->hash) = *e;
        }
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    return 0;
}


/* domain's sums, zeroed when new; NULL when out of memory. */
static struct store_domain_row *
sums_row(struct domain_sums *t, const char *domain)
{
    uint64_t hash = domain_hash(domain);
    struct domain_sum *e;

    if (2 * (t->n + 1) > t->cap && sums_grow(t) != 0) {
        return NULL;
    }

    e = sums_slot(t->slot, t->cap, domain, hash);
    if (e->domain == NULL) {
        e->domain = strdup(domain);
        if (e->domain == NULL) {
            return NULL;
        }
        e->hash = hash;
        e->row.domain = e->domain;
        t->n++;
    }
    return &e->row;
}


static void
sums_free(struct domain_sums *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slot[i].domain);
    }
    free(t->slot);
}


/* Adds the current row of S_DOMAINS_SLICES or S_DOMAINS_EDGE to r. */
static void
add_domain_row(sqlite3_stmt *s, struct store_domain_row *r)
{
    int64_t last = sqlite3_column_int64(s, 10);     /* NULL reads 0 */

    r->sent += sqlite3_column_int64(s, 1);
    r->reached += sqlite3_column_int64(s, 2);
    r->opened += sqlite3_column_int64(s, 3);
    for (int c = 0; c < STORE_N_CLASSES; c++) {
        int64_t n = sqlite3_column_int64(s, 4 + c);

        r->by_class[c] += n;
        r->total_opens += STORE_CLASS_IS_OPEN(c) ? n : 0;
        r->fetches += c != STORE_HEAD_PROBE ? n : 0;
    }
    if (last > r->last_open_at_ms) {
        r->last_open_at_ms = last;
    }
}


/* Adds every row of statement which over [lo, hi) to t. */
static int
sum_domain_rows(struct store *st, enum stmt_id which, int64_t lo,
                int64_t hi, struct domain_sums *t)
{
    sqlite3_stmt *s = st->stmt[which];
    int rc;

    if (sqlite3_bind_int64(s, 1, lo) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, hi) != SQLITE_OK) {
        return bind_failed(st, s, "domains");
    }

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *domain = (const char *) sqlite3_column_text(s, 0);
        struct store_domain_row *r;

        r = sums_row(t, domain != NULL ? domain : "");
        if (r == NULL) {
            finish(s);
            set_err(st, "domains: out of memory");
            return STORE_ERR;
        }
        add_domain_row(s, r);
    }

    rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "domains");
    finish(s);
    return rc;
}


/* t / SLICE_MS rounded down and up (C division rounds toward zero). */
static int64_t
slice_floor(int64_t t)
{
    return t / SLICE_MS - (t % SLICE_MS < 0);
}


static int64_t
slice_ceil(int64_t t)
{
    return t / SLICE_MS + (t % SLICE_MS > 0);
}


/*
 * Sums [since, until) into t: the slices it covers whole, [s0, s1), from
 * domain_slices, and the edges before and after them from messages:
 * [since, s0 * SLICE_MS) and [s1 * SLICE_MS, until).  A window that
 * covers no whole slice is one edge.  When s0 < s1 both products lie in
 * [since, until]: no overflow.
 */
static int
sum_domain_window(struct store *st, int64_t since, int64_t until,
                  struct domain_sums *t)
{
    int64_t s0 = slice_ceil(since);
    int64_t s1 = slice_floor(until);
    int rc;

    if (s0 >= s1) {
        return sum_domain_rows(st, S_DOMAINS_EDGE, since, until, t);
    }

    rc = sum_domain_rows(st, S_DOMAINS_SLICES, s0, s1, t);
    if (rc == STORE_OK) {
        rc = sum_domain_rows(st, S_DOMAINS_EDGE, since, s0 * SLICE_MS, t);
    }
    if (rc == STORE_OK) {
        rc = sum_domain_rows(st, S_DOMAINS_EDGE, s1 * SLICE_MS, until, t);
    }
    return rc;
}


/* Most messages first, then by name. */
static int
by_sent_then_name(const void *pa, const void *pb)
{
    const struct store_domain_row *a, *b;

    a = *(const struct store_domain_row *const *) pa;
    b = *(const struct store_domain_row *const *) pb;

    if (a->sent != b->sent) {
        return a->sent > b->sent ? -1 : 1;
    }
    return strcmp(a->domain, b->domain);
}


int
store_domains(struct store *st, int64_t since_ms, int64_t until_ms,
              int (*cb)(void *ctx, const struct store_domain_row *r),
              void *ctx)
{
    struct domain_sums t = { NULL, 0, 0 };
    const struct store_domain_row **order = NULL;
    size_t n = 0;
    int rc;

    rc = sum_domain_window(st, since_ms, until_ms, &t);
    if (rc == STORE_OK && t.n > 0) {
        order = malloc(t.n * sizeof(*order));
        if (order == NULL) {
            set_err(st, "domains: out of memory");
            rc = STORE_ERR;
        }
    }

    /* A slice row left at sent 0 (the delete trigger drops them) must
     * not show as a domain. */
    for (size_t i = 0; rc == STORE_OK && i < t.cap; i++) {
        if (t.slot[i].domain != NULL && t.slot[i].row.sent > 0) {
            order[n++] = &t.slot[i].row;
        }
    }
    if (n > 1) {
        qsort(order, n, sizeof(*order), by_sent_then_name);
    }
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        rc = cb(ctx, order[i]);
    }

    free(order);
    sums_free(&t);
    return rc;
}


/* Edges strictly ascending, at least two of them. */
static int
edges_ok(const int64_t *edges, size_t n_edges)
{
    if (edges == NULL || n_edges < 2) {
        return 0;
    }
    for (size_t i = 1; i < n_edges; i++) {
        if (edges[i] <= edges[i - 1]) {
            return 0;
        }
    }
    return 1;
}


/*
 * Adds the current row of the series statement to its bucket.  Rows come
 * in sent_at order, so the bucket index *at only moves forward.
 */
static void
bin_row(sqlite3_stmt *s, const int64_t *edges, size_t n_edges, size_t *at,
        struct store_series_point *out)
{
    int64_t sent_at = sqlite3_column_int64(s, 0);

    while (*at + 2 < n_edges && sent_at >= edges[*at + 1]) {
        (*at)++;
    }
    out[*at].sent++;
    out[*at].reached += sqlite3_column_int(s, 1) != 0;
    out[*at].opened += sqlite3_column_int(s, 2) != 0;
}


int
store_domain_series(struct store *st, const char *domain,
                    const int64_t *edges, size_t n_edges,
                    struct store_series_point *out)
{
    sqlite3_stmt *s = st->stmt[S_DOMAIN_SERIES];
    size_t at = 0;
    int rc;

    if (domain == NULL || out == NULL || !edges_ok(edges, n_edges)) {
        set_err(st, "domain series: no domain, or edges not ascending");
        return STORE_ERR;
    }
    memset(out, 0, (n_edges - 1) * sizeof(*out));
    if (sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, edges[0]) != SQLITE_OK
        || sqlite3_bind_int64(s, 3, edges[n_edges - 1]) != SQLITE_OK) {
        return bind_failed(st, s, "domain series");
    }

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        bin_row(s, edges, n_edges, &at, out);
    }
    rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "domain series");
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


/*
 * Fills l with the distinct tickets of the customer's unopened replies,
 * those sent after the newest opened one (column lo_col of the call-list
 * statement u, NULL when none was opened), first reply first.
 */
static int
load_tickets(struct store *st, sqlite3_stmt *u, int lo_col,
             struct strlist *l)
{
    sqlite3_stmt *s = st->stmt[S_UNOPENED_TICKETS];
    const char *t;
    int rc;

    strlist_clear(l);
    if (sqlite3_bind_int64(s, 1, sqlite3_column_int64(u, 0)) != SQLITE_OK
        || sqlite3_bind_value(s, 2, sqlite3_column_value(u, lo_col))
           != SQLITE_OK) {
        return bind_failed(st, s, "unopened");
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


/*
 * Why a listed customer is on the call list: opened_nothing_recent when
 * any of their replies was opened (a human or proxy fetch, or a reply of
 * theirs); else machine_only when an unopened one was reached (a fetch
 * of any class but internal); else never_fetched.  UNOPENED_FROM says
 * the same in SQL.
 */
static int
call_reason(int any_opened, int64_t unopened_reached)
{
    if (any_opened) {
        return STORE_OPENED_NOTHING_RECENT;
    }
    return unopened_reached > 0 ? STORE_MACHINE_ONLY : STORE_NEVER_FETCHED;
}


/* Loads the call-list row under the cursor of s into r, but for its
 * figures (load_detail()) and tickets. */
static void
read_unopened_row(sqlite3_stmt *s, struct store_unopened_row *r)
{
    memset(r, 0, sizeof(*r));
    r->recipient = (const char *) sqlite3_column_text(s, 1);
    r->name = (const char *) sqlite3_column_text(s, 2);
    r->phone = (const char *) sqlite3_column_text(s, 3);
    r->value = sqlite3_column_double(s, 4);
    r->oldest_ms = sqlite3_column_int64(s, 6);
    r->reason = call_reason(sqlite3_column_type(s, 5) != SQLITE_NULL,
                            sqlite3_column_int64(s, 7));
    r->last_call_at_ms = sqlite3_column_int64(s, 8);
    r->last_call_outcome = (const char *) sqlite3_column_text(s, 9);
    r->last_call_note = (const char *) sqlite3_column_text(s, 10);
}


/* The listed customer's reply counts and times (S_UNOPENED_DETAIL). */
static int
load_detail(struct store *st, sqlite3_stmt *u, struct store_unopened_row *r)
{
    sqlite3_stmt *s = st->stmt[S_UNOPENED_DETAIL];
    int rc;

    if (sqlite3_bind_int64(s, 1, sqlite3_column_int64(u, 0)) != SQLITE_OK
        || sqlite3_bind_value(s, 2, sqlite3_column_value(u, 5))
           != SQLITE_OK) {
        return bind_failed(st, s, "unopened");
    }

    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->replies = sqlite3_column_int64(s, 0);
        r->unopened = sqlite3_column_int64(s, 1);
        r->newest_ms = sqlite3_column_int64(s, 2);
        r->last_open_at_ms = sqlite3_column_int64(s, 3);
        rc = STORE_OK;
    } else {
        rc = fail(st, rc, "unopened");
    }
    finish(s);
    return rc;
}


/* Binds the query's filters, ?1 to ?4 of UNOPENED_FROM. */
static int
bind_unopened(struct store *st, sqlite3_stmt *s,
              const struct store_unopened_query *q)
{
    unsigned all = (1u << STORE_N_REASONS) - 1;

    if (sqlite3_bind_double(s, 1, q->min_value) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, q->sent_before_ms) != SQLITE_OK
        || sqlite3_bind_int64(s, 3, q->reasons != 0 ? q->reasons : all)
           != SQLITE_OK
        || sqlite3_bind_int64(s, 4, q->hide_reached_after_ms)
           != SQLITE_OK) {
        return bind_failed(st, s, "unopened");
    }
    return STORE_OK;
}


int
store_unopened_count(struct store *st,
                     const struct store_unopened_query *q, int64_t *total)
{
    sqlite3_stmt *s = st->stmt[S_UNOPENED_COUNT];
    int rc;

    *total = 0;
    if (q == NULL) {
        set_err(st, "unopened: no query");
        return STORE_ERR;
    }
    rc = bind_unopened(st, s, q);
    if (rc == STORE_OK) {
        rc = step_int64(st, s, "unopened", STORE_ERR, total);
    }
    return rc;
}


int
store_unopened(struct store *st, const struct store_unopened_query *q,
               int (*cb)(void *ctx, const struct store_unopened_row *r),
               void *ctx)
{
    sqlite3_stmt *s = st->stmt[S_UNOPENED];
    struct store_unopened_row r;
    struct strlist tickets = { NULL, 0, 0 };
    int stop = 0;
    int rc = SQLITE_DONE;

    if (q == NULL) {
        set_err(st, "unopened: no query");
        return STORE_ERR;
    }
    rc = bind_unopened(st, s, q);
    if (rc != STORE_OK) {
        return rc;
    }
    if (sqlite3_bind_int64(s, 5, q->limit > 0 ? q->limit : -1) != SQLITE_OK
        || sqlite3_bind_int64(s, 6, q->offset) != SQLITE_OK) {
        return bind_failed(st, s, "unopened");
    }

    /* The detail and ticket queries run inside the outer statement's
     * read, so all three see the same snapshot of the database. */
    while (stop == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_unopened_row(s, &r);
        stop = load_detail(st, s, &r);
        if (stop == STORE_OK) {
            stop = load_tickets(st, s, 5, &tickets);
        }
        if (stop == STORE_OK) {
            r.ticket_ids = (const char *const *) tickets.v;
            r.n_ticket_ids = tickets.n;
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


/* Makes call id the last call of its customer. */
static int
link_call(struct store *st, int64_t customer_id, int64_t id)
{
    const int64_t v[2] = { customer_id, id };

    return run_ids(st, S_CALL_LINK, v, 2, "call");
}


/* Inserts the call; sets *id and *customer_id.  NOTFOUND: no customer. */
static int
insert_call(struct store *st, const struct store_call_in *c,
            const char *key, int64_t *id, int64_t *customer_id)
{
    sqlite3_stmt *s = st->stmt[S_CALL_INSERT];
    int rc;

    if (sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, c->at_ms) != SQLITE_OK
        || sqlite3_bind_text(s, 3, c->outcome, -1, SQLITE_STATIC)
           != SQLITE_OK
        || bind_text_or_null(s, 4, c->note) != SQLITE_OK) {
        return bind_failed(st, s, "call");
    }

    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        *customer_id = sqlite3_column_int64(s, 1);
        rc = sqlite3_step(s);
    }
    if (rc == SQLITE_DONE) {
        rc = *id != 0 ? STORE_OK : STORE_NOTFOUND;
    } else {
        rc = fail(st, rc, "call");
    }
    finish(s);
    if (rc == STORE_NOTFOUND) {
        set_err(st, "call: no customer has that address");
    }
    return rc;
}


int
store_call_add(struct store *st, const struct store_call_in *c, int64_t *id)
{
    const char *at;
    int64_t customer_id = 0;
    char *key;
    int rc;

    *id = 0;
    if (c == NULL || c->recipient == NULL || c->outcome == NULL) {
        set_err(st, "call: no recipient or no outcome");
        return STORE_ERR;
    }
    at = strrchr(c->recipient, '@');
    key = address_key(c->recipient, at != NULL ? at + 1 : "");
    if (key == NULL) {
        set_err(st, "call: out of memory");
        return STORE_ERR;
    }

    rc = run(st, S_BEGIN, "begin");
    if (rc == STORE_OK) {
        rc = insert_call(st, c, key, id, &customer_id);
    }
    if (rc == STORE_OK) {
        rc = link_call(st, customer_id, *id);
    }
    rc = end_txn(st, rc);
    if (rc != STORE_OK) {
        *id = 0;
    }

    free(key);
    return rc;
}


/*
 * Runs statement which on message id (?1), cut-off (?2), and for rows
 * the burst window's end (?3) and whether the early rows go (?4), and
 * adds to *rows the rows it deleted and to *fetches their counts
 * (the statement returns each deleted row's count).
 */
static int
drop_details(struct store *st, enum stmt_id which, const int64_t v[4],
             int n, int64_t *rows, int64_t *fetches)
{
    sqlite3_stmt *s = st->stmt[which];
    int rc;

    for (int i = 0; i < n; i++) {
        if (sqlite3_bind_int64(s, i + 1, v[i]) != SQLITE_OK) {
            return bind_failed(st, s, "purge");
        }
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        *rows += 1;
        *fetches += sqlite3_column_int64(s, 0);
    }
    rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "purge");
    finish(s);
    return rc;
}


/*
 * The end of message id's burst window (see burst_window()) by the
 * classes stored now: its rows before it are judged on each other by
 * store_reclassify(), so they are purged together or not at all.
 * INT64_MAX when it has no delivery yet (every row is early).
 */
static int
early_end(struct store *st, int64_t id, int64_t *end)
{
    int64_t delivered = INT64_MAX;
    int rc = first_delivery(st, id, 1, &delivered);

    *end = delivered > INT64_MAX - STORE_BURST_MS ? INT64_MAX
           : delivered + STORE_BURST_MS;
    return rc;
}


/* Purges the old details of message id (store_purge_details()). */
static int
purge_message(struct store *st, int64_t id, int64_t cutoff,
              struct store_purge_result *res)
{
    int64_t v[4] = { id, cutoff, 0, 0 };
    int64_t fresh = 0;
    int64_t rows = 0;
    int rc;

    rc = early_end(st, id, &v[2]);
    if (rc == STORE_OK) {
        const int64_t q[3] = { id, v[2], cutoff };
        sqlite3_stmt *s = st->stmt[S_PURGE_EARLY_FRESH];

        for (int i = 0; i < 3; i++) {
            if (sqlite3_bind_int64(s, i + 1, q[i]) != SQLITE_OK) {
                return bind_failed(st, s, "purge");
            }
        }
        rc = step_int64(st, s, "purge", STORE_ERR, &fresh);
        v[3] = !fresh;
    }
    if (rc == STORE_OK) {
        rc = run_ids(st, S_PURGE_FOLD_ROWS, v, 4, "purge");
    }
    if (rc == STORE_OK) {
        rc = drop_details(st, S_PURGE_DROP_ROWS, v, 4, &rows,
                          &res->fetches);
    }
    if (rc == STORE_OK) {
        rc = run_ids(st, S_PURGE_FOLD_UNKEPT, v, 2, "purge");
    }
    if (rc == STORE_OK) {
        rc = drop_details(st, S_PURGE_DROP_UNKEPT, v, 2, &rows,
                          &res->fetches);
    }
    res->rows += rows;
    res->messages += rows > 0;
    return rc;
}


/* The next message after cursor with details older than cutoff; 0: none. */
static int
purge_next(struct store *st, int64_t cursor, int64_t cutoff, int64_t *id)
{
    sqlite3_stmt *s = st->stmt[S_PURGE_NEXT];

    *id = 0;
    if (sqlite3_bind_int64(s, 1, cursor) != SQLITE_OK
        || sqlite3_bind_int64(s, 2, cutoff) != SQLITE_OK) {
        return bind_failed(st, s, "purge");
    }
    return step_int64(st, s, "purge", STORE_ERR, id);
}


int
store_purge_details(struct store *st, int64_t cutoff_ms, int max_messages,
                    int64_t *cursor, struct store_purge_result *res)
{
    struct store_purge_result sum = { 0, 0, 0 };
    int64_t id = *cursor;
    int rc;

    rc = run(st, S_BEGIN, "begin");
    for (int i = 0; rc == STORE_OK && i < max_messages; i++) {
        rc = purge_next(st, id, cutoff_ms, &id);
        if (rc != STORE_OK || id == 0) {
            break;
        }
        rc = purge_message(st, id, cutoff_ms, &sum);
    }
    rc = end_txn(st, rc);
    if (rc != STORE_OK) {
        return rc;
    }

    *cursor = id;
    if (res != NULL) {
        res->messages += sum.messages;
        res->rows += sum.rows;
        res->fetches += sum.fetches;
    }
    return STORE_OK;
}


/* Runs statement which on customer id and adds its changes to *n. */
static int
erase_step(struct store *st, enum stmt_id which, int64_t id, int64_t *n)
{
    int rc = run_ids(st, which, &id, 1, "erase");

    if (rc == STORE_OK && n != NULL) {
        *n += sqlite3_changes64(st->db);
    }
    return rc;
}


/* Finds customer key's id and what their messages hold. */
static int
erase_find(struct store *st, const char *key, int64_t *id,
           struct store_erase_result *res)
{
    sqlite3_stmt *s = st->stmt[S_ERASE_FIND];
    int rc;

    if (sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) != SQLITE_OK) {
        return bind_failed(st, s, "erase");
    }
    rc = step_int64(st, s, "erase", STORE_NOTFOUND, id);
    if (rc != STORE_OK) {
        return rc;
    }

    s = st->stmt[S_ERASE_FIGURES];
    if (sqlite3_bind_int64(s, 1, *id) != SQLITE_OK) {
        return bind_failed(st, s, "erase");
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        res->fetches = sqlite3_column_int64(s, 1);
        rc = STORE_OK;
    } else {
        rc = fail(st, rc, "erase");
    }
    finish(s);
    return rc;
}


/* Deletes everything of customer id, children first (foreign keys). */
static int
erase_customer(struct store *st, int64_t id, struct store_erase_result *res)
{
    int64_t gone = 0;
    int rc;

    rc = erase_step(st, S_ERASE_FETCHES, id, &res->fetch_rows);
    if (rc == STORE_OK) {
        rc = erase_step(st, S_ERASE_UNKEPT, id, &res->fetch_rows);
    }
    if (rc == STORE_OK) {
        rc = erase_step(st, S_ERASE_OVERFLOW, id, NULL);
    }
    if (rc == STORE_OK) {
        rc = erase_step(st, S_ERASE_MESSAGES, id, &res->messages);
    }
    if (rc == STORE_OK) {
        rc = erase_step(st, S_ERASE_CALLS, id, &res->calls);
    }
    if (rc == STORE_OK) {
        rc = erase_step(st, S_ERASE_CUSTOMER, id, &gone);
    }
    res->customer = gone > 0;
    return rc;
}


int
store_recipient_erase(struct store *st, const char *recipient,
                      struct store_erase_result *res)
{
    const char *at;
    int64_t id = 0;
    char *key;
    int rc;

    memset(res, 0, sizeof(*res));
    if (recipient == NULL) {
        set_err(st, "erase: no recipient");
        return STORE_ERR;
    }
    at = strrchr(recipient, '@');
    key = address_key(recipient, at != NULL ? at + 1 : "");
    if (key == NULL) {
        set_err(st, "erase: out of memory");
        return STORE_ERR;
    }

    rc = run(st, S_BEGIN, "begin");
    if (rc == STORE_OK) {
        rc = erase_find(st, key, &id, res);
    }
    if (rc == STORE_OK) {
        rc = erase_customer(st, id, res);
    }
    rc = end_txn(st, rc);
    if (rc != STORE_OK) {
        memset(res, 0, sizeof(*res));
    }
    if (rc == STORE_NOTFOUND) {
        set_err(st, "erase: no customer has that address");
    }

    free(key);
    return rc;
}


int
store_api_key_add(struct store *st,
                  const unsigned char hash[STORE_API_KEY_HASH_BYTES],
                  int scope, int64_t now_ms, int64_t *id)
{
    sqlite3_stmt *s = st->stmt[S_APIKEY_INSERT];
    const char *name = scope == STORE_SCOPE_WRITE ? "write" : "read";

    *id = 0;
    if (scope != STORE_SCOPE_READ && scope != STORE_SCOPE_WRITE) {
        set_err(st, "api key: no such scope");
        return STORE_ERR;
    }
    if (sqlite3_bind_blob(s, 1, hash, STORE_API_KEY_HASH_BYTES,
                          SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC) != SQLITE_OK
        || sqlite3_bind_int64(s, 3, now_ms) != SQLITE_OK) {
        return bind_failed(st, s, "api key");
    }
    return step_int64(st, s, "api key", STORE_ERR, id);
}


int
store_api_key_revoke(struct store *st, int64_t id, int64_t now_ms)
{
    const int64_t v[2] = { id, now_ms };
    int rc;

    rc = run_ids(st, S_APIKEY_REVOKE, v, 2, "api key revoke");
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0) {
        set_err(st, "api key revoke: no key in force has that id");
        rc = STORE_NOTFOUND;
    }
    return rc;
}


/* Reads the row s is on; -1 when its hash or scope is not well-formed. */
static int
read_api_key(sqlite3_stmt *s, struct store_api_key *k)
{
    const void *hash = sqlite3_column_blob(s, 1);
    const char *scope = (const char *) sqlite3_column_text(s, 2);

    memset(k, 0, sizeof(*k));
    k->id = sqlite3_column_int64(s, 0);
    k->created_at_ms = sqlite3_column_int64(s, 3);
    k->revoked_at_ms = sqlite3_column_int64(s, 4);
    if (hash == NULL || scope == NULL
        || sqlite3_column_bytes(s, 1) != STORE_API_KEY_HASH_BYTES) {
        return -1;
    }
    memcpy(k->hash, hash, STORE_API_KEY_HASH_BYTES);
    k->scope = strcmp(scope, "write") == 0 ? STORE_SCOPE_WRITE
                                           : STORE_SCOPE_READ;
    return 0;
}


int
store_api_keys(struct store *st, int in_force_only,
               int (*cb)(void *ctx, const struct store_api_key *k),
               void *ctx)
{
    sqlite3_stmt *s = st->stmt[S_APIKEY_LIST];
    struct store_api_key k;
    int rc, stop = 0;

    if (sqlite3_bind_int(s, 1, in_force_only != 0) != SQLITE_OK) {
        return bind_failed(st, s, "api keys");
    }
    while (stop == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        /* The schema's CHECKs make a bad row impossible short of a
         * hand-edited file; such a row is skipped, never trusted. */
        if (read_api_key(s, &k) == 0) {
            stop = cb(ctx, &k);
        }
    }

    if (stop != 0) {
        rc = stop;
    } else {
        rc = rc == SQLITE_DONE ? STORE_OK : fail(st, rc, "api keys");
    }
    finish(s);
    memset(&k, 0, sizeof(k));
    return rc;
}
