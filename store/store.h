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
 * recipient compared case-insensitively; only the fields flagged in
 * customer_fields are updated).  One transaction: nothing is stored on
 * failure.  Sets *id to the new message id.
 */
int store_message_add(struct store *st, const struct store_message_in *m,
                      int64_t *id);

/* One fetch of a pixel, as the writer hands it to the store. */
struct store_open_rec {
    int64_t message_id;
    int64_t at_ms;
    char addr[STORE_ADDR_MAX];          /* already truncated */
    char user_agent[STORE_UA_MAX + 1];
};

/*
 * Writes n opens in one transaction.  An open whose message does not
 * exist is skipped and counted in *unknown.  On failure nothing of the
 * batch is written and the caller may retry it.
 */
int store_opens_write(struct store *st, const struct store_open_rec *v,
                      size_t n, size_t *unknown);

/*
 * One row of a ticket: a message, and at most one of its opens
 * (has_open is 0 for a message with no opens).  Rows come ordered by
 * message sent_at then id, and by open time within a message.
 */
struct store_ticket_row {
    int64_t message_id;
    const char *recipient;
    const char *kind;
    int64_t sent_at_ms;
    const char *header_message_id;      /* NULL when not given */
    int has_open;
    int64_t open_at_ms;
    const char *open_addr;
    const char *open_user_agent;
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
 * sent is the number of messages, opened the number with at least one
 * open, fetches every recorded open of them, last_open_at_ms the newest
 * open (0 when none).  Rows come sorted by sent descending, then domain.
 */
struct store_domain_row {
    const char *domain;
    int64_t sent;
    int64_t opened;
    int64_t fetches;
    int64_t last_open_at_ms;
};

int store_domains(struct store *st, int64_t since_ms, int64_t until_ms,
                  int (*cb)(void *ctx, const struct store_domain_row *r),
                  void *ctx);

/*
 * The call list: customers with value >= min_value who were sent at least
 * one reply with sent_at <= sent_before_ms and have never opened any
 * reply.  replies counts all their replies; oldest/newest are the send
 * times of their oldest and newest reply; ticket_ids are distinct, in
 * order of first reply.  Sorted by value descending, then oldest first.
 */
struct store_unopened_row {
    const char *recipient;
    const char *name;                   /* NULL when unknown */
    const char *phone;                  /* NULL when unknown */
    double value;
    int64_t replies;
    int64_t oldest_ms;
    int64_t newest_ms;
    const char *const *ticket_ids;
    size_t n_ticket_ids;
};

int store_unopened(struct store *st, double min_value,
                   int64_t sent_before_ms,
                   int (*cb)(void *ctx, const struct store_unopened_row *r),
                   void *ctx);

#endif
