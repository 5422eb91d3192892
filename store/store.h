/*
 * store.h - the narrow interface between Beacon and its database.
 *
 * The HTTP and API layers speak only this header; store_sqlite.c is the
 * embedded backend.  A handle is one connection and is not thread-safe:
 * each thread that needs the store opens its own handle (the writer thread
 * has one, API worker threads share a small pool).
 *
 * Times are UTC milliseconds since the Unix epoch.  Strings handed to
 * callbacks live only for the duration of the callback, and a callback
 * must not call back into the same handle (its walk is still running).
 */
#ifndef BEACON_STORE_H
#define BEACON_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_rc {
    STORE_OK = 0,
    STORE_ERR = -1,         /* detail in store_errmsg() */
    STORE_NOTFOUND = -2,
    STORE_BUSY = -3         /* locked longer than the busy timeout */
};

#define STORE_ADDR_MAX 48   /* truncated client address, NUL included */
#define STORE_UA_MAX 512    /* User-Agent bytes kept, NUL excluded */

struct store;

/*
 * Opens (creating and migrating if needed) the database at path.  On
 * failure returns STORE_ERR, *out is NULL and err holds a message.
 */
int store_open(struct store **out, const char *path, char *err,
               size_t errlen);

/* Closes the handle; accepts NULL. */
void store_close(struct store *st);

/* The last error on this handle, never NULL. */
const char *store_errmsg(const struct store *st);

/*
 * True once the handle met an error a new connection may not meet: the
 * file read-only, unreadable or damaged.  Its owner should close it and
 * open a new one (the API pool does; the writer reopens on failure).
 */
int store_stale(const struct store *st);

/* STORE_OK while the database answers a trivial query. */
int store_ping(struct store *st);

/* Which optional customer fields a registration carries. */
enum store_customer_field {
    STORE_CUSTOMER_NAME = 1u << 0,
    STORE_CUSTOMER_PHONE = 1u << 1,
    STORE_CUSTOMER_VALUE = 1u << 2
};

/* A message to register.  All strings are NUL-terminated UTF-8. */
struct store_message_in {
    const char *ticket_id;
    const char *recipient;      /* as given, e.g. "Name@Example.COM" */
    const char *domain;         /* normalised: lower-case ASCII (xn--) */
    const char *kind;           /* "reply" or "confirmation" */
    int64_t sent_at_ms;         /* as given by the caller */
    int64_t registered_at_ms;   /* the server's clock */
    const char *header_message_id;  /* may be NULL */
    unsigned customer_fields;   /* enum store_customer_field bits */
    const char *customer_name;
    const char *customer_phone;
    double customer_value;
};

/*
 * Registers a message, creating or updating its customer (keyed by the
 * recipient's local part and its normalised domain, compared in ASCII
 * lower case; only the fields flagged in customer_fields are updated).
 * One transaction: nothing is stored on failure.  Sets *id to the new
 * message id.
 */
int store_message_add(struct store *st, const struct store_message_in *m,
                      int64_t *id);

/*
 * What a fetch is, once classified.  The names (store_class_name) are what
 * the API shows and the rules file uses.  HEAD requests are recorded as
 * head_probe and are never opens.
 */
enum store_class {
    STORE_HUMAN = 0,            /* a person's mail client */
    STORE_PROXY,                /* a provider's image proxy, for a person */
    STORE_PRIVACY_PREFETCH,     /* Apple MPP and the like: delivered only */
    STORE_SCANNER,              /* security gateway, link checker, script */
    STORE_INTERNAL,             /* the team's own view of the sent copy */
    STORE_HEAD_PROBE,           /* a HEAD request */
    STORE_N_CLASSES
};

/* "human", "proxy", ...; NULL for a value out of range. */
const char *store_class_name(int cls);

/* The class named s, or -1. */
int store_class_parse(const char *s);

/* A class that counts as a person opening the mail (human, proxy). */
#define STORE_CLASS_IS_OPEN(c) ((c) == STORE_HUMAN || (c) == STORE_PROXY)

#define STORE_REFERER_MAX 256       /* referer host, NUL included */
#define STORE_RULE_MAX 48           /* rule id, NUL included */
#define STORE_REASON_MAX 160        /* reason text, NUL included */

/* Identical fetches (message, network, User-Agent) within this collapse. */
#define STORE_COLLAPSE_MS 60000
/* A burst: fetches from one network within this of delivery (the
 * message's first fetch of any class but internal). */
#define STORE_BURST_MS 60000
/* Rows kept per message unless store_set_fetch_rows_max() says else. */
#define STORE_FETCH_ROWS_DEFAULT 100

/* One fetch of a pixel, as the writer hands it to the store. */
struct store_fetch_rec {
    int64_t message_id;
    int64_t at_ms;
    int is_head;
    char addr[STORE_ADDR_MAX];          /* already truncated */
    char user_agent[STORE_UA_MAX + 1];
    char referer_host[STORE_REFERER_MAX];   /* "" when none */
};

/*
 * The evidence a classifier sees.  Everything here is stored with the
 * fetch, so a later reclassification sees the same.
 */
struct store_fetch_facts {
    int is_head;
    const char *user_agent;         /* "" when none */
    const char *network;            /* the truncated address */
    const char *referer_host;       /* "" when none */
    int64_t secs_since_send;        /* since registration, server clock,
                                     * never negative */
    unsigned burst_clients;         /* distinct User-Agents that fetched
                                     * this message from this network
                                     * within STORE_BURST_MS of delivery
                                     * (the message's first fetch of any
                                     * class but internal; this fetch
                                     * when none came before it), this
                                     * one included; 0 for a fetch after
                                     * that window */
};

struct store_verdict {
    int cls;                        /* enum store_class */
    char rule[STORE_RULE_MAX];
    char reason[STORE_REASON_MAX];

    /*
     * Set when a burst rule holds for this fetch, whichever rule gave its
     * own verdict: the earlier human fetches of the burst then take the
     * burst verdict (burst_cls, burst_rule, burst_reason).  When these
     * are left empty, the fetch's own verdict serves.
     */
    int whole_burst;
    int burst_cls;
    char burst_rule[STORE_RULE_MAX];
    char burst_reason[STORE_REASON_MAX];
};

/* Fills *out for the fetch described by f.  Must not fail. */
typedef void store_classify_fn(void *ctx, const struct store_fetch_facts *f,
                               struct store_verdict *out);

/* Stored fetch rows per message; beyond it fetches are only counted. */
void store_set_fetch_rows_max(struct store *st, unsigned n);

struct store_write_result {
    size_t unknown;                 /* no such message: skipped */
    size_t collapsed;               /* counted on an identical earlier row */
    size_t not_kept;                /* over the rows cap: counted only */
};

/*
 * Writes n fetches in one transaction, classifying each with classify.
 * Every fetch of a known message is counted exactly on its message, by
 * class.  A fetch identical to one within STORE_COLLAPSE_MS (same message,
 * network, User-Agent, HEAD-ness) adds to that row's count; past the rows
 * cap only the counts grow.  A whole_burst verdict relabels the earlier
 * fetches of its burst.  On failure nothing of the batch is written and
 * the caller may retry it.
 */
int store_fetches_write(struct store *st, const struct store_fetch_rec *v,
                        size_t n, store_classify_fn *classify, void *ctx,
                        struct store_write_result *res);

/*
 * Classifies every stored fetch row again, in order, with the same
 * evidence (bursts recomputed from the rows), and brings every message's
 * counts and open times in line.  Fetches that were only counted (over
 * the rows cap) keep their class.  *changed counts rows whose class
 * changed.  One transaction.
 */
int store_reclassify(struct store *st, store_classify_fn *classify,
                     void *ctx, int64_t *rows, int64_t *changed);

/*
 * A customer answered a ticket: every message of ticket_id to recipient
 * (its domain normalised as in store_message_in; compared as the
 * customer key is) sent at or before at_ms counts as opened
 * (reason "replied") and reached; the customer's last reply time moves
 * to at_ms if later.  *marked is the number of messages marked.
 * STORE_NOTFOUND when the ticket has no message to that recipient.
 */
int store_reply_record(struct store *st, const char *ticket_id,
                       const char *recipient, int64_t at_ms,
                       int64_t *marked);

/*
 * One row of a ticket: a message with its figures, and at most one of its
 * stored fetch rows (has_fetch is 0 for a message with none).  Rows come
 * ordered by message sent_at then id, and by fetch time within a message.
 */
struct store_ticket_row {
    int64_t message_id;
    const char *recipient;
    const char *kind;
    int64_t sent_at_ms;
    int64_t registered_at_ms;
    const char *header_message_id;      /* NULL when not given */
    int64_t first_open_at_ms;           /* 0: never opened */
    int64_t reached_at_ms;              /* 0: no delivery evidence */
    int64_t replied_at_ms;              /* 0: no reply recorded */
    int64_t by_class[STORE_N_CLASSES];  /* every fetch, counted */
    int64_t not_kept;                   /* fetches over the rows cap */

    int has_fetch;
    int64_t fetch_at_ms;                /* first of the collapsed run */
    int64_t fetch_last_at_ms;           /* last of the collapsed run */
    int64_t fetch_count;
    int fetch_class;
    const char *fetch_rule;
    const char *fetch_reason;
    const char *fetch_addr;
    const char *fetch_user_agent;
    const char *fetch_referer_host;
    int64_t fetch_secs_since_send;
};

/*
 * Calls cb for every row of the ticket.  STORE_NOTFOUND when the ticket
 * has no messages.  A non-zero return from cb stops the walk and is
 * returned.
 */
int store_ticket_read(struct store *st, const char *ticket_id,
                      int (*cb)(void *ctx, const struct store_ticket_row *r),
                      void *ctx);

/*
 * Per recipient domain, over messages with since_ms <= sent_at < until_ms:
 *   sent          messages;
 *   reached       messages with delivery evidence: a fetch of any class
 *                 but internal, or a customer reply;
 *   opened        messages a person opened: a human or proxy fetch, or a
 *                 customer reply (unique opens);
 *   total_opens   human and proxy fetches, every one counted;
 *   fetches       every recorded GET, any class;
 *   by_class      every recorded fetch per class (head_probe: HEADs);
 *   last_open_at  the newest human or proxy fetch or reply, 0 when none.
 * Rows come sorted by sent descending, then domain.
 */
struct store_domain_row {
    const char *domain;
    int64_t sent;
    int64_t reached;
    int64_t opened;
    int64_t total_opens;
    int64_t fetches;
    int64_t by_class[STORE_N_CLASSES];
    int64_t last_open_at_ms;
};

int store_domains(struct store *st, int64_t since_ms, int64_t until_ms,
                  int (*cb)(void *ctx, const struct store_domain_row *r),
                  void *ctx);

/*
 * One bucket of store_domain_series(): the messages to the domain sent in
 * it, and of those the reached and the opened ones (the definitions of
 * store_domains()).
 */
struct store_series_point {
    int64_t sent, reached, opened;
};

/*
 * Counts messages to domain with edges[0] <= sent_at < edges[n_edges-1]
 * into out[i] for edges[i] <= sent_at < edges[i+1]; edges ascending,
 * n_edges >= 2; out has n_edges - 1 entries, zeroed by the store.
 */
int store_domain_series(struct store *st, const char *domain,
                        const int64_t *edges, size_t n_edges,
                        struct store_series_point *out);

/* Why a customer is on the call list. */
enum store_call_reason {
    STORE_NEVER_FETCHED = 0,        /* no fetch of any kind */
    STORE_MACHINE_ONLY,             /* reached a mailbox, never opened */
    STORE_OPENED_NOTHING_RECENT,    /* opened earlier replies only */
    STORE_N_REASONS
};

const char *store_reason_name(int reason);
int store_reason_parse(const char *s);

/*
 * The call list.  A customer's unopened replies are their replies sent
 * after the newest reply of theirs that was opened (all replies when none
 * was).  Listed: customers with value >= min_value, with an unopened
 * reply sent at or before sent_before_ms, and no customer reply recorded
 * at or after the oldest unopened one; only reasons in the reasons mask
 * (bit 1u << reason; 0 means all).  Reason: opened_nothing_recent when
 * any reply of theirs was opened, else machine_only when an unopened one
 * was reached, else never_fetched.  replies counts all their replies;
 * unopened, oldest/newest and ticket_ids (distinct, in order of first
 * reply) describe the unopened ones.  A customer whose last call
 * reached them after hide_reached_after_ms is left out; the row shows the
 * last call either way.  Sorted by value descending, then oldest
 * unopened first; limit and offset take a page of that order, which
 * costs the page, not the list (the backend keeps each customer's place).
 */
struct store_unopened_query {
    double min_value;
    int64_t sent_before_ms;
    unsigned reasons;
    int64_t hide_reached_after_ms;      /* a call that reached them later
                                         * than this hides them;
                                         * INT64_MAX: none does */
    int64_t limit;                      /* rows at most; 0 or less: all */
    int64_t offset;                     /* rows skipped first */
};

struct store_unopened_row {
    const char *recipient;
    const char *name;                   /* NULL when unknown */
    const char *phone;                  /* NULL when unknown */
    double value;
    int reason;                         /* enum store_call_reason */
    int64_t replies;
    int64_t unopened;
    int64_t oldest_ms;
    int64_t newest_ms;
    int64_t last_open_at_ms;            /* 0: never opened a reply */
    const char *const *ticket_ids;
    size_t n_ticket_ids;
    int64_t last_call_at_ms;            /* 0: never called */
    const char *last_call_outcome;      /* NULL when never called */
    const char *last_call_note;         /* NULL when none */
};

int store_unopened(struct store *st, const struct store_unopened_query *q,
                   int (*cb)(void *ctx, const struct store_unopened_row *r),
                   void *ctx);

/* How many customers the query lists, before its limit and offset. */
int store_unopened_count(struct store *st,
                         const struct store_unopened_query *q,
                         int64_t *total);

/*
 * A call the team made.  recipient is keyed as in store_message_in
 * (local part @ normalised domain); outcome is one of "reached",
 * "voicemail", "no_answer" and "wrong_number".  The call becomes the
 * customer's last call (store_unopened_row).  STORE_NOTFOUND when no
 * customer has that address.
 */
struct store_call_in {
    const char *recipient;
    int64_t at_ms;
    const char *outcome;
    const char *note;                   /* NULL when none */
};

int store_call_add(struct store *st, const struct store_call_in *c,
                   int64_t *id);

/*
 * Retention.  What store_purge_details() deleted: messages that lost
 * details, rows (fetch rows and burst entries, each a network, a
 * User-Agent, a Referer host, a rule and reason) and the fetches those
 * rows stood for.
 */
struct store_purge_result {
    int64_t messages;
    int64_t rows;
    int64_t fetches;
};

/*
 * Deletes the stored details of fetches last seen before cutoff_ms, for
 * at most max_messages messages with ids above *cursor, in one short
 * transaction, and moves *cursor past them.  A pass starts with *cursor
 * 0 and is over when it comes back 0.  Every count a report reads stays
 * as it was: each deleted row's count moves to its message's fetches
 * that are only counted (as over the rows cap), with its class and
 * times, so store_reclassify() keeps them in that class and rebuilds the
 * same figures.  A message's rows in its burst window (STORE_BURST_MS
 * from delivery) go together, once all are older than cutoff_ms: each is
 * judged on the others.  Adds what it deleted to *res (may be NULL).
 */
int store_purge_details(struct store *st, int64_t cutoff_ms,
                        int max_messages, int64_t *cursor,
                        struct store_purge_result *res);

/* What store_recipient_erase() deleted. */
struct store_erase_result {
    int64_t messages;
    int64_t fetches;            /* every fetch counted on those messages */
    int64_t fetch_rows;         /* stored fetch rows and burst entries */
    int64_t calls;
    int customer;               /* the customer row went */
};

/*
 * Erases a recipient: the customer keyed by recipient (as in
 * store_call_in: local part @ normalised domain), their messages with
 * every fetch stored or counted, their calls and the customer row, in
 * one transaction.  The domains report loses exactly those messages'
 * figures; message ids are never handed out again, so their pixel
 * tokens keep naming no message.  STORE_NOTFOUND when no customer has
 * that address.
 */
int store_recipient_erase(struct store *st, const char *recipient,
                          struct store_erase_result *res);

/*
 * API keys.  Only a hash of each key is stored (the caller hashes; see
 * api.c), with its scope: read keys may use the GET routes, write keys
 * every route.  A revoked key keeps its row, marked revoked.
 */
#define STORE_API_KEY_HASH_BYTES 32

enum store_api_scope {
    STORE_SCOPE_READ = 0,
    STORE_SCOPE_WRITE = 1
};

struct store_api_key {
    int64_t id;
    int scope;                          /* enum store_api_scope */
    int64_t created_at_ms;
    int64_t revoked_at_ms;              /* 0: in force */
    unsigned char hash[STORE_API_KEY_HASH_BYTES];
};

/* Stores a new key's hash; *id is its id (never reused). */
int store_api_key_add(struct store *st,
                      const unsigned char hash[STORE_API_KEY_HASH_BYTES],
                      int scope, int64_t now_ms, int64_t *id);

/* Revokes key id at now_ms.  STORE_NOTFOUND when no key in force has
 * that id (unknown or already revoked). */
int store_api_key_revoke(struct store *st, int64_t id, int64_t now_ms);

/*
 * Calls cb for every key (in_force_only: those not revoked), by id.  A
 * non-zero return from cb stops the walk and is returned.
 */
int store_api_keys(struct store *st, int in_force_only,
                   int (*cb)(void *ctx, const struct store_api_key *k),
                   void *ctx);

#endif
