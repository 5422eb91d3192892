/*
 * api_trend.c - GET /api/v1/domains/trend: one domain's sent, reached
 * and opened messages per local day or week of the caller's time zone.
 *
 * The store keeps UTC; the buckets are cut here at query time (zone.c),
 * so a Berlin day around a daylight-saving change is 23 or 25 hours and
 * the reply says so.  The store bins the domain's messages into the
 * edges in one walk (store_domain_series()).
 */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/domain.h"
#include "api/parse.h"
#include "api/zone.h"
#include "store/store.h"

#define MS_PER_HOUR INT64_C(3600000)
#define MS_PER_DAY (24 * MS_PER_HOUR)
#define TREND_DEFAULT_DAYS 30
#define TREND_DEFAULT_WEEKS 12
#define TREND_BUCKETS_MAX 400
#define TREND_DOMAIN_MAX 256    /* a normalised domain is <= 253 bytes */

struct trend_query {
    char domain[TREND_DOMAIN_MAX];
    int week;                   /* bucket=week; else days */
    char tz[ZONE_NAME_MAX];     /* as given, or "UTC" */
    int64_t since, until;       /* as asked, before widening */
};

/* The edges of the buckets and their counts; too big for a stack. */
struct trend {
    int64_t edges[TREND_BUCKETS_MAX + 1];
    size_t n_edges;
    struct store_series_point points[TREND_BUCKETS_MAX];
};


static int
read_domain(const struct api_request *req, struct trend_query *q,
            char *err, size_t errlen)
{
    const char *d = api_param(req, "domain");
    char why[API_ERR_MAX];

    if (d == NULL)
        return api_fail(err, errlen, "domain: required");
    if (domain_normalize(d, q->domain, sizeof q->domain, why,
                         sizeof why) != 0)
        return api_fail(err, errlen, "domain: %s", why);
    return 0;
}


static int
read_bucket(const struct api_request *req, struct trend_query *q,
            char *err, size_t errlen)
{
    const char *b = api_param(req, "bucket");

    if (b == NULL || strcmp(b, "day") == 0)
        q->week = 0;
    else if (strcmp(b, "week") == 0)
        q->week = 1;
    else
        return api_fail(err, errlen, "bucket: must be \"day\" or \"week\"");
    return 0;
}


/*
 * since/until as for /domains; the default window is 30 days (day
 * buckets) or 12 weeks back from until, which defaults to now.
 */
static int
read_span(const struct api_request *req, struct trend_query *q,
          char *err, size_t errlen)
{
    int64_t back = q->week ? TREND_DEFAULT_WEEKS * 7 * MS_PER_DAY
                           : TREND_DEFAULT_DAYS * MS_PER_DAY;
    int has_since, has_until;

    if (api_read_bound(req, "since", 0, &q->since, &has_since, err, errlen)
            != 0
        || api_read_bound(req, "until", 1, &q->until, &has_until, err,
                          errlen) != 0)
        return -1;
    if (!has_until)
        q->until = req->now_ms;
    if (!has_since)
        q->since = q->until - back;
    return api_check_window(q->since, q->until, 0, err, errlen);
}


/*
 * The zone named by tz (default UTC); an error quotes the name.  The
 * name is copied: a later query look-up may reuse the string, and a
 * known name is shorter than ZONE_NAME_MAX.
 */
static int
read_zone(const struct api_request *req, struct trend_query *q,
          struct zone **z, char *err, size_t errlen)
{
    const char *tz = api_param(req, "tz");
    char echo[API_ECHO_MAX + 4];

    if (tz == NULL)
        tz = "UTC";
    if (zone_open(z, tz, NULL, 0) == 0) {
        snprintf(q->tz, sizeof q->tz, "%s", tz);
        return 0;
    }
    api_echo_text(tz, strlen(tz), echo);
    return api_fail(err, errlen, "tz: unknown time zone \"%s\"", echo);
}


static int
read_trend_query(const struct api_request *req, struct trend_query *q,
                 struct zone **z, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    *z = NULL;
    if (read_domain(req, q, err, errlen) != 0
        || read_bucket(req, q, err, errlen) != 0
        || read_span(req, q, err, errlen) != 0)
        return -1;
    return read_zone(req, q, z, err, errlen);
}


/*
 * Cuts [since, until) into local days or weeks: the first edge is the
 * local midnight (Monday) on or before since, the last the first edge at
 * or after until.  At most TREND_BUCKETS_MAX buckets.
 */
static int
cut_buckets(struct zone *z, const struct trend_query *q, struct trend *t,
            char *err, size_t errlen)
{
    int64_t *e = t->edges;
    int rc;

    rc = q->week ? zone_week_start(z, q->since, &e[0])
                 : zone_day_start(z, q->since, 0, &e[0]);
    t->n_edges = 1;
    while (rc == 0 && e[t->n_edges - 1] < q->until) {
        if (t->n_edges > TREND_BUCKETS_MAX)
            return api_fail(err, errlen, "since: window too long: more "
                            "than %d %s buckets", TREND_BUCKETS_MAX,
                            q->week ? "week" : "day");
        rc = zone_day_start(z, e[t->n_edges - 1], q->week ? 7 : 1,
                            &e[t->n_edges]);
        if (rc == 0 && e[t->n_edges] <= e[t->n_edges - 1])
            rc = -1;
        t->n_edges++;
    }
    if (rc != 0)
        return api_fail(err, errlen, "since: outside the calendar's range");
    return 0;
}


/* One bucket: its local date, UTC edges, length and counts. */
static int
add_point(cJSON *points, struct zone *z, const struct trend *t, size_t i)
{
    const struct store_series_point *p = &t->points[i];
    int64_t start = t->edges[i], end = t->edges[i + 1];
    char date[ZONE_DATE_MAX];
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(points, o)) {
        cJSON_Delete(o);
        return -1;
    }
    if (zone_date(z, start, date) != 0
        || cJSON_AddStringToObject(o, "date", date) == NULL
        || api_add_time(o, "start", start) != 0
        || api_add_time(o, "end", end) != 0
        || cJSON_AddNumberToObject(o, "hours",
                                   (double) (end - start)
                                       / (double) MS_PER_HOUR) == NULL
        || api_add_count(o, "sent", p->sent) != 0
        || api_add_count(o, "reached", p->reached) != 0
        || api_add_count(o, "opened", p->opened) != 0
        || api_add_rate_or_null(o, "open_rate", p->opened, p->sent) != 0)
        return -1;
    return 0;
}


static cJSON *
trend_doc(const struct trend_query *q, struct zone *z, const struct trend *t)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *points;
    size_t i;

    if (doc == NULL
        || cJSON_AddStringToObject(doc, "domain", q->domain) == NULL
        || cJSON_AddStringToObject(doc, "bucket",
                                   q->week ? "week" : "day") == NULL
        || cJSON_AddStringToObject(doc, "tz", q->tz) == NULL
        || api_add_time(doc, "since", t->edges[0]) != 0
        || api_add_time(doc, "until", t->edges[t->n_edges - 1]) != 0
        || (points = cJSON_AddArrayToObject(doc, "points")) == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    for (i = 0; i + 1 < t->n_edges; i++) {
        if (add_point(points, z, t, i) != 0) {
            cJSON_Delete(doc);
            return NULL;
        }
    }
    return doc;
}


/* Fills t->points from the store; reply is set on failure. */
static int
read_series(struct api *api, const struct trend_query *q, struct trend *t,
            struct api_reply *reply)
{
    struct store *st = api_store_take(api);
    int rc;

    rc = store_domain_series(st, q->domain, t->edges, t->n_edges,
                             t->points);
    if (rc != STORE_OK)
        api_reply_store_error(reply, st, rc, "domain series");
    api_store_give(api, st);
    return rc == STORE_OK ? 0 : -1;
}


/* GET /api/v1/domains/trend?domain=&bucket=&since=&until=&tz= */
void
api_trend_get(struct api *api, const struct api_request *req,
              const char *arg, struct api_reply *reply)
{
    char err[API_ERR_MAX];
    struct trend_query q;
    struct zone *z = NULL;
    struct trend *t = NULL;

    (void) arg;
    if (read_trend_query(req, &q, &z, err, sizeof err) != 0) {
        api_reply_error(reply, 400, "%s", err);
        goto out;
    }
    t = malloc(sizeof *t);
    if (t == NULL) {
        api_reply_json(reply, 500, NULL);
        goto out;
    }
    if (cut_buckets(z, &q, t, err, sizeof err) != 0) {
        api_reply_error(reply, 400, "%s", err);
        goto out;
    }
    if (read_series(api, &q, t, reply) == 0)
        api_reply_json(reply, 200, trend_doc(&q, z, t));

out:
    free(t);
    zone_close(z);
}
