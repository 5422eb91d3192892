/*
 * api_internal.h - what the API's handler files share with api.c.
 *
 * Not an interface for the rest of Beacon: only the sources in api/
 * include it.
 */
#ifndef BEACON_API_INTERNAL_H
#define BEACON_API_INTERNAL_H

#include "api/api.h"

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/store.h"

#define API_TICKET_ID_MAX 128   /* bytes */
#define API_ERR_MAX 256         /* longest error message in a reply */

/*
 * Gmail clips a mail whose HTML is larger than about 102 kB and hides
 * what follows the cut, pixel included; 90000 bytes leaves room for the
 * headers and encoding the help-desk app adds after measuring.
 */
#define API_CLIP_THRESHOLD_DEFAULT 90000u

/* How long a call that reached a customer keeps them off the call list
 * when api_config says nothing: a week, time for the reply to be read. */
#define API_CALL_HIDE_DEFAULT_MS (INT64_C(7) * 24 * 3600 * 1000)

/*
 * Reading what the request carries; NULL when absent (or when the server
 * gave no look-up function).
 */
const char *api_header(const struct api_request *req, const char *name);
const char *api_query(const struct api_request *req, const char *name);

/*
 * Writes a formatted reason into err (errlen bytes, may be 0) and returns
 * -1, so a check can end in "return api_fail(err, errlen, ...)".
 */
int api_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Takes a store handle from the pool, waiting while all are in use.  It
 * must go back through api_store_give() on every path.
 */
struct store *api_store_take(struct api *api);
void api_store_give(struct api *api, struct store *st);

/*
 * The configuration api_new() was given (strings are private copies,
 * clip_threshold is never 0).
 */
const struct api_config *api_config(const struct api *api);

/*
 * Parses a request body as JSON, rejecting trailing data.  Returns the
 * document (free with cJSON_Delete), or NULL with a message in err.
 */
cJSON *api_parse_json(struct api *api, const char *body, size_t len,
                      char *err, size_t errlen);

/*
 * Fills reply with doc printed as JSON and deletes doc (also when doc is
 * NULL, which means building it ran out of memory: the reply is a 500).
 */
void api_reply_json(struct api_reply *reply, unsigned status, cJSON *doc);

/* Fills reply with {"error": message}. */
void api_reply_error(struct api_reply *reply, unsigned status,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Answers a failed store call: 503 when the store was busy, 500 otherwise.
 * The detail goes to the log, not to the client.
 */
void api_reply_store_error(struct api_reply *reply, struct store *st,
                           int rc, const char *op);

/* Adds s, or JSON null when s is NULL.  0, or -1 when out of memory. */
int api_add_string_or_null(cJSON *obj, const char *name, const char *s);

/* Adds ms as an RFC 3339 string.  0, or -1 when out of memory. */
int api_add_time(cJSON *obj, const char *name, int64_t ms);

/* As api_add_time(), but JSON null when ms is 0 (the store's "never"). */
int api_add_time_or_null(cJSON *obj, const char *name, int64_t ms);

/* Adds an integer count.  0, or -1 when out of memory. */
int api_add_count(cJSON *obj, const char *name, int64_t n);

/*
 * Adds {"human": n, "proxy": n, ...}: one member per class, in the order
 * of enum store_class, named by store_class_name().  0, or -1.
 */
int api_add_by_class(cJSON *obj, const char *name,
                     const int64_t by_class[STORE_N_CLASSES]);

#define API_ECHO_MAX 40         /* bytes of a bad parameter quoted back */

/* The query parameter name, or NULL when absent or empty. */
const char *api_param(const struct api_request *req, const char *name);

/*
 * Reads a since/until bound: an RFC 3339 time, or a bare date (its UTC
 * midnight; as an until bound, is_until, the next midnight, so the day
 * is included).  *given is 0 when absent and *ms is then untouched.
 * 0, or -1 with a message naming the parameter.
 */
int api_read_bound(const struct api_request *req, const char *name,
                   int is_until, int64_t *ms, int *given, char *err,
                   size_t errlen);

/*
 * A window [since, until) a reply can state: both ends in the years 0001
 * to 9999, and since before until (or equal, when empty_ok).  0, or -1
 * with a message.
 */
int api_check_window(int64_t since, int64_t until, int empty_ok, char *err,
                     size_t errlen);

/*
 * The first n bytes of s, fit to quote in an error: at most API_ECHO_MAX
 * of them, anything but printable ASCII shown as '?' (the reply must
 * stay valid UTF-8), and "..." when cut.
 */
void api_echo_text(const char *s, size_t n, char out[API_ECHO_MAX + 4]);

/*
 * part / whole rounded to 4 decimals; 0 when whole <= 0 (a caller whose
 * whole can be 0 says null instead: api_add_rate_or_null()).
 */
double api_rate(int64_t part, int64_t whole);

/* Adds api_rate(part, whole), or JSON null when whole <= 0.  0 or -1. */
int api_add_rate_or_null(cJSON *obj, const char *name, int64_t part,
                         int64_t whole);

/* The handlers.  arg is the rest of the path after a prefix route. */
void api_messages_post(struct api *api, const struct api_request *req,
                       const char *arg, struct api_reply *reply);
void api_events_post(struct api *api, const struct api_request *req,
                     const char *arg, struct api_reply *reply);
void api_ticket_get(struct api *api, const struct api_request *req,
                    const char *arg, struct api_reply *reply);
void api_calls_post(struct api *api, const struct api_request *req,
                    const char *arg, struct api_reply *reply);
void api_domains_get(struct api *api, const struct api_request *req,
                     const char *arg, struct api_reply *reply);
void api_unopened_get(struct api *api, const struct api_request *req,
                      const char *arg, struct api_reply *reply);
void api_trend_get(struct api *api, const struct api_request *req,
                   const char *arg, struct api_reply *reply);
void api_alerts_get(struct api *api, const struct api_request *req,
                    const char *arg, struct api_reply *reply);
void api_recipients_delete(struct api *api, const struct api_request *req,
                           const char *arg, struct api_reply *reply);

#endif
