/*
 * api_reports.c - the two reports: what people and machines did with the
 * mail per recipient domain, and the call list of valuable customers who
 * have not opened their recent replies.
 *
 * The figures are computed by the store (store_domains(),
 * store_unopened()); this file reads the query parameters, states the
 * definitions, and shapes the rows as JSON or CSV.  group=registrable
 * merges the domains report's hosts with domain_group.c.
 */
#include "api/api_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/csv.h"
#include "api/domain_group.h"
#include "api/parse.h"
#include "store/store.h"

#define MS_PER_DAY INT64_C(86400000)
#define DOMAINS_DEFAULT_DAYS 30
#define UNOPENED_DEFAULT_AGE "24h"
#define UNOPENED_DEFAULT_LIMIT 1000
#define UNOPENED_LIMIT_MAX 100000
#define ROW_OFFSET_MAX INT64_C(1000000000)
#define NUMBER_TEXT_MAX 32      /* bytes; longer is never a sane number */
#define REASON_NAME_MAX 32      /* bytes; longer is never a reason name */

/*
 * The window [since, until) over sent_at.  Defaults: until is now, since
 * is 30 days before until.
 */
static int
read_window(const struct api_request *req, int64_t *since, int64_t *until,
            char *err, size_t errlen)
{
    int has_since, has_until;

    if (api_read_bound(req, "since", 0, since, &has_since, err, errlen)
            != 0
        || api_read_bound(req, "until", 1, until, &has_until, err, errlen)
               != 0)
        return -1;
    if (!has_until)
        *until = req->now_ms;
    if (!has_since)
        *since = *until - DOMAINS_DEFAULT_DAYS * MS_PER_DAY;
    return api_check_window(*since, *until, 1, err, errlen);
}


/*
 * One domain's row.  The definitions (the store computes them, over the
 * messages sent to the domain in the window):
 *   sent          the messages;
 *   reached       messages with delivery evidence: a fetch of any class
 *                 but internal (HEAD probes included), or a customer
 *                 reply;
 *   opened        messages a person opened: a human or proxy fetch, or a
 *                 customer reply.  Each message counts once, so opened
 *                 never exceeds sent; unique_opens is the same number,
 *                 named for readers who compare it with total_opens;
 *   open_rate     opened / sent;  reach_rate  reached / sent;
 *   total_opens   every human and proxy fetch (a mail read three times
 *                 counts three; proxies cache, so a lower bound there);
 *   fetches       every recorded GET, whatever its class;
 *   fetches_by_class  every recorded fetch per class, HEADs under
 *                 head_probe;
 *   last_open_at  the newest human or proxy fetch or reply, or null.
 * Internal fetches count only in fetches and fetches_by_class.
 */
static int
add_domain(cJSON *o, const struct store_domain_row *r)
{
    if (cJSON_AddStringToObject(o, "domain", r->domain) == NULL
        || api_add_count(o, "sent", r->sent) != 0
        || api_add_count(o, "reached", r->reached) != 0
        || api_add_count(o, "opened", r->opened) != 0
        || cJSON_AddNumberToObject(o, "open_rate",
                                   api_rate(r->opened, r->sent)) == NULL
        || cJSON_AddNumberToObject(o, "reach_rate",
                                   api_rate(r->reached, r->sent)) == NULL
        || api_add_count(o, "unique_opens", r->opened) != 0
        || api_add_count(o, "total_opens", r->total_opens) != 0
        || api_add_count(o, "fetches", r->fetches) != 0
        || api_add_by_class(o, "fetches_by_class", r->by_class) != 0
        || api_add_time_or_null(o, "last_open_at", r->last_open_at_ms) != 0)
        return -1;
    return 0;
}


/* Walking the domains report, per host or grouped (group=registrable). */
struct domains_walk {
    int grouped;
    cJSON *domains;
    struct domain_grouping g;
};

/* Appends a new object to list; NULL when out of memory. */
static cJSON *
new_item(cJSON *list)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}


/* store_domains() callback: one object per host, or the row kept for
 * grouping; 1 when out of memory. */
static int
domain_row(void *ctx, const struct store_domain_row *r)
{
    struct domains_walk *w = ctx;
    cJSON *o;

    if (w->grouped)
        return domain_grouping_add(&w->g, r) != 0;
    o = new_item(w->domains);
    return o == NULL || add_domain(o, r) != 0;
}


/*
 * The grouped rows: each registrable domain with its hosts' figures
 * summed (the rates recomputed from the sums), and its hosts as today's
 * rows under "hosts".  0, or -1 when out of memory.
 */
static int
add_groups(cJSON *domains, struct domain_grouping *g)
{
    const struct domain_group *grp;
    cJSON *o, *hosts;
    size_t i, k;

    if (domain_grouping_finish(g) != 0)
        return -1;
    for (i = 0; i < g->n_groups; i++) {
        grp = &g->groups[i];
        o = new_item(domains);
        if (o == NULL || add_domain(o, &grp->total) != 0
            || (hosts = cJSON_AddArrayToObject(o, "hosts")) == NULL)
            return -1;
        for (k = grp->first; k < grp->first + grp->n; k++) {
            o = new_item(hosts);
            if (o == NULL || add_domain(o, &g->hosts[k].row) != 0)
                return -1;
        }
    }
    return 0;
}


static int
read_group(const struct api_request *req, int *grouped, char *err,
           size_t errlen)
{
    const char *g = api_param(req, "group");

    *grouped = g != NULL && strcmp(g, "registrable") == 0;
    if (g != NULL && !*grouped && strcmp(g, "host") != 0)
        return api_fail(err, errlen, "group: must be \"host\" or "
                        "\"registrable\"");
    return 0;
}


static cJSON *
domains_doc(int64_t since, int64_t until, cJSON **domains)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL || api_add_time(doc, "since", since) != 0
        || api_add_time(doc, "until", until) != 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    *domains = cJSON_AddArrayToObject(doc, "domains");
    if (*domains == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/* Reads the report into w; reply is set on failure. */
static int
walk_domains(struct api *api, int64_t since, int64_t until,
             struct domains_walk *w, struct api_reply *reply)
{
    struct store *st = api_store_take(api);
    int rc;

    rc = store_domains(st, since, until, domain_row, w);
    if (rc < 0)
        api_reply_store_error(reply, st, rc, "domains");
    api_store_give(api, st);

    if (rc == STORE_OK && w->grouped && add_groups(w->domains, &w->g) != 0)
        rc = 1;
    if (rc > 0)
        api_reply_json(reply, 500, NULL);
    return rc == STORE_OK ? 0 : -1;
}


/* GET /api/v1/domains?since=&until=&group= */
void
api_domains_get(struct api *api, const struct api_request *req,
                const char *arg, struct api_reply *reply)
{
    char err[API_ERR_MAX];
    int64_t since, until;
    struct domains_walk w;
    cJSON *doc;

    (void) arg;
    memset(&w, 0, sizeof w);
    if (read_window(req, &since, &until, err, sizeof err) != 0
        || read_group(req, &w.grouped, err, sizeof err) != 0) {
        api_reply_error(reply, 400, "%s", err);
        return;
    }
    doc = domains_doc(since, until, &w.domains);
    if (doc == NULL) {
        api_reply_json(reply, 500, NULL);
        return;
    }

    if (walk_domains(api, since, until, &w, reply) == 0)
        api_reply_json(reply, 200, doc);
    else
        cJSON_Delete(doc);
    domain_grouping_free(&w.g);
}


/*
 * The weight ("q") an Accept header gives to the media type want
 * ("text/csv"): its own entry, else its type's wildcard ("text" then
 * "/" then "*"), else the all-types wildcard, else 0.
 * Entries are "type/subtype;q=0.5" separated by commas.
 */
static double
accept_weight(const char *accept, const char *want)
{
    size_t type_len = strcspn(want, "/");
    double exact = -1, group = -1, any = -1;

    while (*accept != '\0') {
        size_t len = strcspn(accept, ",");
        size_t range_len = strcspn(accept, ";,");
        const char *q = strstr(accept, ";q=");
        double weight = 1.0;

        while (*accept == ' ') {
            accept++;
            len--;
            range_len--;
        }
        if (q != NULL && q < accept + len) {
            weight = strtod(q + 3, NULL);
        }
        while (range_len > 0 && accept[range_len - 1] == ' ') {
            range_len--;
        }

        if (range_len == strlen(want)
            && strncasecmp(accept, want, range_len) == 0) {
            exact = weight;
        } else if (range_len == type_len + 2
                   && strncasecmp(accept, want, type_len + 1) == 0
                   && accept[type_len + 1] == '*') {
            group = weight;
        } else if (range_len == 3 && strncmp(accept, "*/*", 3) == 0) {
            any = weight;
        }
        accept += len + (accept[len] == ',');
    }
    return exact >= 0 ? exact : group >= 0 ? group : any >= 0 ? any : 0;
}


/* The parameters of the call list. */
struct unopened_query {
    struct store_unopened_query store;
    int csv;
};

/*
 * CSV when ?format=csv, or with no format when Accept weighs text/csv
 * above application/json.
 */
static int
read_format(const struct api_request *req, int *csv, char *err,
            size_t errlen)
{
    const char *format = api_param(req, "format");
    const char *accept = api_header(req, "Accept");

    if (format == NULL) {
        *csv = accept != NULL && accept_weight(accept, "text/csv")
                                 > accept_weight(accept, "application/json");
        return 0;
    }
    if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
        return api_fail(err, errlen, "format must be \"json\" or \"csv\"");
    *csv = strcmp(format, "csv") == 0;
    return 0;
}


/*
 * A whole number in [min, max] written in plain decimal digits; *out
 * keeps dflt when the parameter is absent.
 */
static int
read_count(const struct api_request *req, const char *name, int64_t min,
           int64_t max, int64_t dflt, int64_t *out, char *err,
           size_t errlen)
{
    const char *s = api_param(req, name);
    size_t n = s != NULL ? strlen(s) : 0;

    *out = dflt;
    if (s == NULL)
        return 0;
    if (n > 10 || strspn(s, "0123456789") != n)
        return api_fail(err, errlen, "%s must be a whole number from %"
                        PRId64 " to %" PRId64, name, min, max);
    *out = strtoll(s, NULL, 10);
    if (*out < min || *out > max)
        return api_fail(err, errlen, "%s must be a whole number from %"
                        PRId64 " to %" PRId64, name, min, max);
    return 0;
}


/*
 * reason: a comma-separated list of reason names; the mask has bit
 * 1u << reason for each (0, all reasons, when the parameter is absent).
 * An unknown or empty name is an error that names it.
 */
static int
read_reasons(const struct api_request *req, unsigned *mask, char *err,
             size_t errlen)
{
    const char *p = api_param(req, "reason");
    char name[REASON_NAME_MAX + 1], echo[API_ECHO_MAX + 4];
    size_t n;
    int reason;

    *mask = 0;
    while (p != NULL) {
        n = strcspn(p, ",");
        reason = -1;
        if (n <= REASON_NAME_MAX) {
            memcpy(name, p, n);
            name[n] = '\0';
            reason = store_reason_parse(name);
        }
        if (reason < 0 || reason >= STORE_N_REASONS) {
            api_echo_text(p, n, echo);
            return api_fail(err, errlen, "reason: unknown reason \"%s\"; use "
                        "never_fetched, machine_only or "
                        "opened_nothing_recent", echo);
        }
        *mask |= 1u << reason;
        p = p[n] == ',' ? p + n + 1 : NULL;
    }
    return 0;
}


static int
read_unopened_query(const struct api_request *req, int64_t hide_ms,
                    struct unopened_query *q, char *err, size_t errlen)
{
    const char *min = api_param(req, "min_value");
    const char *age = api_param(req, "older_than");
    int64_t age_ms = 0;

    memset(q, 0, sizeof *q);
    if (min != NULL && parse_number(min, &q->store.min_value) != 0)
        return api_fail(err, errlen, "min_value must be a finite number");
    if (parse_duration(age != NULL ? age : UNOPENED_DEFAULT_AGE,
                       &age_ms) != 0)
        return api_fail(err, errlen, "older_than must be a positive duration "
                    "such as 90m, 24h, 3d or 1w");
    if (req->now_ms < INT64_MIN + age_ms)
        q->store.sent_before_ms = INT64_MIN;
    else
        q->store.sent_before_ms = req->now_ms - age_ms;
    if (read_reasons(req, &q->store.reasons, err, errlen) != 0
        || read_count(req, "limit", 1, UNOPENED_LIMIT_MAX,
                      UNOPENED_DEFAULT_LIMIT, &q->store.limit, err,
                      errlen) != 0
        || read_count(req, "offset", 0, ROW_OFFSET_MAX, 0,
                      &q->store.offset, err, errlen) != 0)
        return -1;
    q->store.hide_reached_after_ms = req->now_ms - hide_ms;
    return read_format(req, &q->csv, err, errlen);
}


/* Walking the call list into JSON or CSV. */
struct unopened_walk {
    int csv;
    cJSON *customers;
    struct csv_buf buf;
};

static int
add_ticket_ids(cJSON *o, const struct store_unopened_row *r)
{
    cJSON *ids = cJSON_AddArrayToObject(o, "ticket_ids");
    cJSON *id;
    size_t i;

    if (ids == NULL)
        return -1;
    for (i = 0; i < r->n_ticket_ids; i++) {
        id = cJSON_CreateString(r->ticket_ids[i]);
        if (id == NULL || !cJSON_AddItemToArray(ids, id)) {
            cJSON_Delete(id);
            return -1;
        }
    }
    return 0;
}


/* "last_call": {"at", "outcome", "note"}, or null when never called. */
static int
add_last_call(cJSON *o, const struct store_unopened_row *r)
{
    cJSON *call;

    if (r->last_call_outcome == NULL)
        return cJSON_AddNullToObject(o, "last_call") != NULL ? 0 : -1;
    call = cJSON_AddObjectToObject(o, "last_call");
    if (call == NULL
        || api_add_time(call, "at", r->last_call_at_ms) != 0
        || cJSON_AddStringToObject(call, "outcome",
                                   r->last_call_outcome) == NULL
        || api_add_string_or_null(call, "note", r->last_call_note) != 0)
        return -1;
    return 0;
}


static int
customer_json(cJSON *customers, const struct store_unopened_row *r)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(customers, o)) {
        cJSON_Delete(o);
        return 1;
    }
    if (cJSON_AddStringToObject(o, "recipient", r->recipient) == NULL
        || api_add_string_or_null(o, "name", r->name) != 0
        || api_add_string_or_null(o, "phone", r->phone) != 0
        || cJSON_AddNumberToObject(o, "value", r->value) == NULL
        || api_add_string_or_null(o, "reason",
                                  store_reason_name(r->reason)) != 0
        || api_add_count(o, "replies", r->replies) != 0
        || api_add_count(o, "unopened", r->unopened) != 0
        || api_add_time(o, "oldest_unopened_at", r->oldest_ms) != 0
        || api_add_time(o, "newest_unopened_at", r->newest_ms) != 0
        || api_add_time_or_null(o, "last_open_at", r->last_open_at_ms) != 0
        || add_ticket_ids(o, r) != 0
        || add_last_call(o, r) != 0)
        return 1;
    return 0;
}


/*
 * The ticket ids joined by single spaces.  Free with free().
 * Limitation: a ticket id that itself holds a space cannot be told apart
 * in the CSV column; the JSON form keeps them as an array.
 */
static char *
join_ticket_ids(const struct store_unopened_row *r)
{
    size_t n = 1, i;
    char *out;

    for (i = 0; i < r->n_ticket_ids; i++)
        n += strlen(r->ticket_ids[i]) + 1;
    out = malloc(n);
    if (out == NULL)
        return NULL;

    out[0] = '\0';
    for (i = 0; i < r->n_ticket_ids; i++) {
        if (i > 0)
            strcat(out, " ");
        strcat(out, r->ticket_ids[i]);
    }
    return out;
}


static void
csv_header(struct csv_buf *b)
{
    static const char *const names[] = {
        "recipient", "name", "phone", "value", "reason", "replies",
        "unopened", "oldest_unopened_at", "newest_unopened_at",
        "last_open_at", "ticket_ids", "last_call_at", "last_call_outcome"
    };
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        csv_field(b, names[i], i == 0);
    csv_end_record(b);
}


/* The columns of csv_header(); an empty field where JSON has null. */
static int
customer_csv(struct csv_buf *b, const struct store_unopened_row *r)
{
    char value[NUMBER_TEXT_MAX], replies[NUMBER_TEXT_MAX];
    char unopened[NUMBER_TEXT_MAX];
    char oldest[32], newest[32], last_open[32] = "", last_call[32] = "";
    char *ids = join_ticket_ids(r);

    if (ids == NULL)
        return 1;
    snprintf(value, sizeof value, "%.15g", r->value);
    snprintf(replies, sizeof replies, "%" PRId64, r->replies);
    snprintf(unopened, sizeof unopened, "%" PRId64, r->unopened);
    format_time(r->oldest_ms, oldest, sizeof oldest);
    format_time(r->newest_ms, newest, sizeof newest);
    if (r->last_open_at_ms != 0)
        format_time(r->last_open_at_ms, last_open, sizeof last_open);
    if (r->last_call_outcome != NULL)
        format_time(r->last_call_at_ms, last_call, sizeof last_call);

    csv_field(b, r->recipient, 1);
    csv_field(b, r->name, 0);
    csv_field(b, r->phone, 0);
    csv_field(b, value, 0);
    csv_field(b, store_reason_name(r->reason), 0);
    csv_field(b, replies, 0);
    csv_field(b, unopened, 0);
    csv_field(b, oldest, 0);
    csv_field(b, newest, 0);
    csv_field(b, last_open, 0);
    csv_field(b, ids, 0);
    csv_field(b, last_call, 0);
    csv_field(b, r->last_call_outcome, 0);
    csv_end_record(b);
    free(ids);
    return b->failed ? 1 : 0;
}


/* store_unopened() callback; 1 stops the walk when out of memory. */
static int
unopened_row(void *ctx, const struct store_unopened_row *r)
{
    struct unopened_walk *w = ctx;

    if (w->csv)
        return customer_csv(&w->buf, r);
    return customer_json(w->customers, r);
}


/* Hands the finished CSV to reply; the buffer becomes the body. */
static void
reply_csv(struct api_reply *reply, struct csv_buf *b)
{
    if (b->failed || b->data == NULL) {
        csv_free(b);
        api_reply_json(reply, 500, NULL);
        return;
    }
    reply->status = 200;
    reply->content_type = "text/csv; charset=utf-8";
    reply->body = b->data;
    reply->len = b->len;
    b->data = NULL;
    csv_free(b);
}


/* "total": the rows the query lists before its limit and offset. */
static int
add_total(struct store *st, const struct store_unopened_query *q,
          cJSON *doc)
{
    int64_t total = 0;
    int rc = store_unopened_count(st, q, &total);

    if (rc != STORE_OK)
        return rc;
    return api_add_count(doc, "total", total) != 0 ? 1 : STORE_OK;
}


/* Sets up the walk: the CSV header line, or {"customers": []}. */
static cJSON *
start_walk(struct unopened_walk *w)
{
    cJSON *doc;

    if (w->csv) {
        csv_header(&w->buf);
        return NULL;
    }
    doc = cJSON_CreateObject();
    if (doc == NULL)
        return NULL;
    w->customers = cJSON_AddArrayToObject(doc, "customers");
    if (w->customers == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/*
 * GET /api/v1/unopened?min_value=&older_than=&reason=&limit=&offset=
 *                      &format=
 *
 * The call list.  A customer's unopened replies are those sent after
 * their newest opened reply (all of them when none was opened), opened
 * meaning a human or proxy fetch or their own reply.  Listed: customers
 * with value >= min_value who have an unopened reply sent more than
 * older_than ago and have not replied since the oldest unopened one.
 * reason: opened_nothing_recent when they opened some reply, else
 * machine_only when an unopened one reached a mailbox (a fetch of any
 * class but internal), else never_fetched.  replies counts all their
 * replies; unopened, the oldest/newest times and ticket_ids describe the
 * unopened ones; last_open_at is when they last opened a reply, or null.
 * Confirmations neither qualify a customer nor count as opened.  A call
 * that reached the customer hides them for the configured time; the
 * last call shows on the row.  limit and offset page the rows; "total"
 * counts them all (JSON only).
 */
void
api_unopened_get(struct api *api, const struct api_request *req,
                 const char *arg, struct api_reply *reply)
{
    char err[API_ERR_MAX];
    struct unopened_query q;
    struct unopened_walk w;
    struct store *st;
    cJSON *doc;
    int rc;

    (void) arg;
    if (read_unopened_query(req, api_config(api)->call_hide_ms, &q, err,
                            sizeof err) != 0) {
        api_reply_error(reply, 400, "%s", err);
        return;
    }
    memset(&w, 0, sizeof w);
    w.csv = q.csv;
    doc = start_walk(&w);
    if (!w.csv && doc == NULL) {
        api_reply_json(reply, 500, NULL);
        return;
    }

    st = api_store_take(api);
    rc = store_unopened(st, &q.store, unopened_row, &w);
    if (rc == STORE_OK && !w.csv)
        rc = add_total(st, &q.store, doc);
    if (rc < 0)
        api_reply_store_error(reply, st, rc, "unopened");
    api_store_give(api, st);

    if (rc == STORE_OK && w.csv)
        reply_csv(reply, &w.buf);
    else if (rc == STORE_OK)
        api_reply_json(reply, 200, doc);
    else if (rc > 0)
        api_reply_json(reply, 500, NULL);
    if (rc != STORE_OK) {
        cJSON_Delete(doc);
        csv_free(&w.buf);
    }
}
