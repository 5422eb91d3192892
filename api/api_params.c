/*
 * api_params.c - reading query parameters and shaping the numbers the
 * report handlers share (api_reports.c, api_trend.c, api_alerts.c).
 *
 * Exports the api_param(), api_read_bound(), api_echo_text(),
 * api_rate() and api_add_rate_or_null() of api_internal.h.
 */
#include "api/api_internal.h"

#include <string.h>

#include "api/parse.h"

#define MS_PER_DAY INT64_C(86400000)

const char *
api_param(const struct api_request *req, const char *name)
{
    const char *s = api_query(req, name);

    return s != NULL && s[0] != '\0' ? s : NULL;
}


/*
 * A bare date means its midnight (UTC); as an until bound it means
 * through the end of that day, so the exclusive bound becomes the next
 * midnight.
 */
int
api_read_bound(const struct api_request *req, const char *name,
               int is_until, int64_t *ms, int *given, char *err,
               size_t errlen)
{
    const char *s = api_param(req, name);
    int was_date;

    *given = s != NULL;
    if (s == NULL)
        return 0;
    if (parse_time(s, 1, ms, &was_date) != 0)
        return api_fail(err, errlen, "%s must be an RFC 3339 date-time or a "
                    "date (YYYY-MM-DD); in a URL, write '+' as %%2B", name);
    if (was_date && is_until)
        *ms += MS_PER_DAY;
    return 0;
}


int
api_check_window(int64_t since, int64_t until, int empty_ok, char *err,
                 size_t errlen)
{
    if (since < PARSE_TIME_MIN_MS || until >= PARSE_TIME_END_MS)
        return api_fail(err, errlen, "since, until: the window must lie "
                        "within the years 0001 to 9999");
    if (since > until || (since == until && !empty_ok))
        return api_fail(err, errlen, "since: must be before until");
    return 0;
}


void
api_echo_text(const char *s, size_t n, char out[API_ECHO_MAX + 4])
{
    size_t i, m = n < API_ECHO_MAX ? n : API_ECHO_MAX;

    for (i = 0; i < m; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[m] = '\0';
    if (m < n)
        strcat(out, "...");
}


double
api_rate(int64_t part, int64_t whole)
{
    double r;

    if (whole <= 0)
        return 0;
    r = (double) part / (double) whole;
    return (double) (int64_t) (r * 10000.0 + 0.5) / 10000.0;
}


int
api_add_rate_or_null(cJSON *obj, const char *name, int64_t part,
                     int64_t whole)
{
    cJSON *item;

    if (whole <= 0)
        item = cJSON_AddNullToObject(obj, name);
    else
        item = cJSON_AddNumberToObject(obj, name, api_rate(part, whole));
    return item != NULL ? 0 : -1;
}
