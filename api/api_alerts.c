/*
 * api_alerts.c - GET /api/v1/alerts: domains whose open rate in the
 * current window fell significantly below their own baseline.
 *
 * Reads the domains report (store_domains()) over the two windows,
 * merges the rows per domain, and judges each with alert_judge()
 * (alerts.c); this file reads the parameters and shapes the reply.
 */
#include "api/api_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/alerts.h"
#include "api/parse.h"
#include "store/store.h"

#define MS_PER_DAY INT64_C(86400000)
#define WEEK_MS (7 * MS_PER_DAY)
#define SPAN_MAX_DAYS 3660          /* about ten years: window, baseline */
#define MIN_SENT_MAX 1000000000

struct alert_query {
    char window_text[API_ECHO_MAX + 4];     /* as given, for the message */
    int64_t window_ms, baseline_ms;
    int64_t until;
    struct alert_params params;
};

/* One domain's figures over both windows. */
struct alert_row {
    char *domain;
    struct alert_sample cur, base;
    enum alert_verdict verdict;
    struct alert_test test;
};

struct alert_set {
    struct alert_row *v;
    size_t n, cap;
    int baseline;                   /* store_domains() is reading it */
};


/*
 * A duration no longer than SPAN_MAX_DAYS; text (may be NULL) gets it as
 * given, copied: a later query look-up may reuse the string.
 */
static int
read_span(const struct api_request *req, const char *name, const char *dflt,
          int64_t *ms, char text[API_ECHO_MAX + 4], char *err,
          size_t errlen)
{
    const char *s = api_param(req, name);

    if (s == NULL)
        s = dflt;
    if (parse_duration(s, ms) != 0 || *ms > SPAN_MAX_DAYS * MS_PER_DAY)
        return api_fail(err, errlen, "%s: must be a positive duration such "
                        "as 24h, 7d or 4w, at most %dd", name,
                        SPAN_MAX_DAYS);
    if (text != NULL)
        api_echo_text(s, strlen(s), text);
    return 0;
}


/* The number in the query, or dflt when absent.  0, or -1. */
static int
read_number(const struct api_request *req, const char *name, double dflt,
            double *out)
{
    const char *s = api_param(req, name);

    *out = dflt;
    return s != NULL ? parse_number(s, out) : 0;
}


static int
read_params(const struct api_request *req, struct alert_params *p,
            char *err, size_t errlen)
{
    double min_sent;

    if (read_number(req, "min_sent", 30, &min_sent) != 0
        || min_sent < 1 || min_sent > MIN_SENT_MAX
        || min_sent != floor(min_sent))
        return api_fail(err, errlen, "min_sent: must be a whole number "
                        "from 1 to %d", MIN_SENT_MAX);
    p->min_sent = (int64_t) min_sent;
    if (read_number(req, "alpha", 0.01, &p->alpha) != 0
        || !(p->alpha > 0 && p->alpha < 1))
        return api_fail(err, errlen, "alpha: must be a number between 0 "
                        "and 1, both excluded");
    if (read_number(req, "min_drop", 0.10, &p->min_drop) != 0
        || !(p->min_drop >= 0 && p->min_drop <= 1))
        return api_fail(err, errlen, "min_drop: must be a number from 0 "
                        "to 1");
    return 0;
}


static int
read_alert_query(const struct api_request *req, struct alert_query *q,
                 char *err, size_t errlen)
{
    int has_until;

    memset(q, 0, sizeof *q);
    if (read_span(req, "window", "7d", &q->window_ms, q->window_text, err,
                  errlen) != 0
        || read_span(req, "baseline", "28d", &q->baseline_ms, NULL, err,
                     errlen) != 0
        || api_read_bound(req, "until", 1, &q->until, &has_until, err,
                          errlen) != 0)
        return -1;
    if (!has_until)
        q->until = req->now_ms;
    if (q->until - q->window_ms - q->baseline_ms < PARSE_TIME_MIN_MS
        || q->until >= PARSE_TIME_END_MS)
        return api_fail(err, errlen, "until, window, baseline: the "
                        "baseline and window must lie within the years "
                        "0001 to 9999");
    return read_params(req, &q->params, err, errlen);
}


/* store_domains() callback: one row per domain and window. */
static int
collect_row(void *ctx, const struct store_domain_row *r)
{
    struct alert_set *set = ctx;
    struct alert_row *row, *v;
    size_t cap;

    if (set->n == set->cap) {
        cap = set->cap != 0 ? set->cap * 2 : 64;
        v = realloc(set->v, cap * sizeof *v);
        if (v == NULL)
            return 1;
        set->v = v;
        set->cap = cap;
    }
    row = &set->v[set->n];
    memset(row, 0, sizeof *row);
    row->domain = strdup(r->domain);
    if (row->domain == NULL)
        return 1;
    set->n++;
    if (set->baseline)
        row->base = (struct alert_sample) { r->sent, r->opened };
    else
        row->cur = (struct alert_sample) { r->sent, r->opened };
    return 0;
}


static void
set_free(struct alert_set *set)
{
    size_t i;

    for (i = 0; i < set->n; i++)
        free(set->v[i].domain);
    free(set->v);
}


static int
by_domain(const void *a, const void *b)
{
    const struct alert_row *x = a, *y = b;

    return strcmp(x->domain, y->domain);
}


/* Sorts by domain and folds each domain's two rows into one. */
static void
merge_rows(struct alert_set *set)
{
    size_t i, out = 0;

    if (set->n > 0)
        qsort(set->v, set->n, sizeof set->v[0], by_domain);
    for (i = 0; i < set->n; i++) {
        if (out > 0 && strcmp(set->v[out - 1].domain, set->v[i].domain)
                           == 0) {
            set->v[out - 1].cur.sent += set->v[i].cur.sent;
            set->v[out - 1].cur.opened += set->v[i].cur.opened;
            set->v[out - 1].base.sent += set->v[i].base.sent;
            set->v[out - 1].base.opened += set->v[i].base.opened;
            free(set->v[i].domain);
            continue;
        }
        set->v[out++] = set->v[i];
    }
    set->n = out;
}


/* Reads both windows into set; reply is set on failure. */
static int
read_windows(struct api *api, const int64_t w[3], struct alert_set *set,
             struct api_reply *reply)
{
    struct store *st = api_store_take(api);
    int rc;

    set->baseline = 0;
    rc = store_domains(st, w[1], w[2], collect_row, set);
    if (rc == STORE_OK) {
        set->baseline = 1;
        rc = store_domains(st, w[0], w[1], collect_row, set);
    }
    if (rc < 0)
        api_reply_store_error(reply, st, rc, "alerts");
    api_store_give(api, st);
    if (rc > 0)
        api_reply_json(reply, 500, NULL);
    return rc == STORE_OK ? 0 : -1;
}


/* x rounded to places decimals, or to 3 significant digits when -1. */
static double
rounded(double x, int places)
{
    char text[32];
    double scale;

    if (places < 0) {
        snprintf(text, sizeof text, "%.3g", x);
        return strtod(text, NULL);
    }
    scale = pow(10.0, places);
    return floor(x * scale + 0.5) / scale;
}


static int
add_sample(cJSON *o, const char *name, const struct alert_sample *s)
{
    cJSON *w = cJSON_AddObjectToObject(o, name);

    if (w == NULL || api_add_count(w, "sent", s->sent) != 0
        || api_add_count(w, "opened", s->opened) != 0
        || api_add_rate_or_null(w, "open_rate", s->opened, s->sent) != 0)
        return -1;
    return 0;
}


/* "this week" for a window of exactly 7 days, else "in the last 3d". */
static void
window_words(const struct alert_query *q, char *out, size_t len)
{
    if (q->window_ms == WEEK_MS)
        snprintf(out, len, "this week");
    else
        snprintf(out, len, "in the last %s", q->window_text);
}


static int
add_alert(cJSON *list, const struct alert_row *r, const char *words)
{
    char message[ALERT_MESSAGE_MAX];
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return -1;
    }
    alert_message(message, sizeof message, r->domain, &r->cur, &r->base,
                  words);
    if (cJSON_AddStringToObject(o, "domain", r->domain) == NULL
        || add_sample(o, "current", &r->cur) != 0
        || add_sample(o, "baseline", &r->base) != 0
        || cJSON_AddNumberToObject(o, "drop", rounded(r->test.drop, 4))
               == NULL
        || cJSON_AddNumberToObject(o, "z", rounded(r->test.z, 3)) == NULL
        || cJSON_AddNumberToObject(o, "p_value",
                                   rounded(r->test.p_value, -1)) == NULL
        || cJSON_AddStringToObject(o, "message", message) == NULL)
        return -1;
    return 0;
}


static int
add_not_enough(cJSON *list, const struct alert_row *r)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return -1;
    }
    if (cJSON_AddStringToObject(o, "domain", r->domain) == NULL
        || add_sample(o, "current", &r->cur) != 0
        || add_sample(o, "baseline", &r->base) != 0)
        return -1;
    return 0;
}


/* Flagged first by p_value, ties by domain; the rest sort to the end. */
static int
by_flag_then_p(const void *a, const void *b)
{
    const struct alert_row *x = a, *y = b;
    int fx = x->verdict == ALERT_FLAGGED, fy = y->verdict == ALERT_FLAGGED;

    if (fx != fy)
        return fy - fx;
    if (fx && x->test.p_value != y->test.p_value)
        return x->test.p_value < y->test.p_value ? -1 : 1;
    return strcmp(x->domain, y->domain);
}


/* Not enough data first, by current sent descending, then domain. */
static int
by_thin_then_sent(const void *a, const void *b)
{
    const struct alert_row *x = a, *y = b;
    int tx = x->verdict == ALERT_NOT_ENOUGH_DATA;
    int ty = y->verdict == ALERT_NOT_ENOUGH_DATA;

    if (tx != ty)
        return ty - tx;
    if (tx && x->cur.sent != y->cur.sent)
        return x->cur.sent > y->cur.sent ? -1 : 1;
    return strcmp(x->domain, y->domain);
}


/* Judges every row; returns how many had enough data. */
static int64_t
judge_all(struct alert_set *set, const struct alert_params *p)
{
    int64_t checked = 0;
    size_t i;

    for (i = 0; i < set->n; i++) {
        set->v[i].verdict = alert_judge(&set->v[i].cur, &set->v[i].base, p,
                                        &set->v[i].test);
        checked += set->v[i].verdict != ALERT_NOT_ENOUGH_DATA;
    }
    return checked;
}


/* The "alerts" and "not_enough_data" lists, each in its order. */
static int
add_lists(cJSON *doc, struct alert_set *set, const struct alert_query *q)
{
    cJSON *alerts = cJSON_AddArrayToObject(doc, "alerts");
    cJSON *thin = cJSON_AddArrayToObject(doc, "not_enough_data");
    char words[API_ECHO_MAX + 32];
    size_t i;

    if (alerts == NULL || thin == NULL)
        return -1;
    window_words(q, words, sizeof words);
    if (set->n > 0)
        qsort(set->v, set->n, sizeof set->v[0], by_flag_then_p);
    for (i = 0; i < set->n && set->v[i].verdict == ALERT_FLAGGED; i++)
        if (add_alert(alerts, &set->v[i], words) != 0)
            return -1;
    if (set->n > 0)
        qsort(set->v, set->n, sizeof set->v[0], by_thin_then_sent);
    for (i = 0; i < set->n && set->v[i].verdict == ALERT_NOT_ENOUGH_DATA;
         i++)
        if (add_not_enough(thin, &set->v[i]) != 0)
            return -1;
    return 0;
}


static int
add_range(cJSON *doc, const char *name, int64_t since, int64_t until)
{
    cJSON *o = cJSON_AddObjectToObject(doc, name);

    if (o == NULL || api_add_time(o, "since", since) != 0
        || api_add_time(o, "until", until) != 0)
        return -1;
    return 0;
}


static cJSON *
alerts_doc(const struct alert_query *q, const int64_t w[3],
           struct alert_set *set)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *params;
    int64_t checked = judge_all(set, &q->params);

    if (doc == NULL || add_range(doc, "window", w[1], w[2]) != 0
        || add_range(doc, "baseline", w[0], w[1]) != 0
        || (params = cJSON_AddObjectToObject(doc, "params")) == NULL
        || api_add_count(params, "min_sent", q->params.min_sent) != 0
        || cJSON_AddNumberToObject(params, "alpha", q->params.alpha)
               == NULL
        || cJSON_AddNumberToObject(params, "min_drop", q->params.min_drop)
               == NULL
        || add_lists(doc, set, q) != 0
        || api_add_count(doc, "checked", checked) != 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/*
 * GET /api/v1/alerts?window=&baseline=&until=&min_sent=&alpha=&min_drop=
 *
 * The current window is [until - window, until), the baseline the
 * baseline duration right before it.  Both are at most SPAN_MAX_DAYS,
 * so the edges stay far inside int64 for any until parse_time() reads.
 */
void
api_alerts_get(struct api *api, const struct api_request *req,
               const char *arg, struct api_reply *reply)
{
    char err[API_ERR_MAX];
    struct alert_query q;
    struct alert_set set;
    int64_t w[3];               /* baseline since, window since, until */

    (void) arg;
    if (read_alert_query(req, &q, err, sizeof err) != 0) {
        api_reply_error(reply, 400, "%s", err);
        return;
    }
    w[2] = q.until;
    w[1] = q.until - q.window_ms;
    w[0] = w[1] - q.baseline_ms;

    memset(&set, 0, sizeof set);
    if (read_windows(api, w, &set, reply) == 0) {
        merge_rows(&set);
        api_reply_json(reply, 200, alerts_doc(&q, w, &set));
    }
    set_free(&set);
}
