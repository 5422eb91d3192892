/*
 * test_zone.c - api/zone.c: local day and week starts in a time zone,
 * across the daylight-saving changes of Europe/Berlin in 2026 (Sunday 29
 * March: 23 hours; Sunday 25 October: 25 hours), a midnight that does
 * not exist, and names ICU must refuse.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/parse.h"
#include "api/zone.h"
#include "tests/unit/check.h"

#define HOUR_MS INT64_C(3600000)

/* An RFC 3339 time as ms; the tests' times are all valid. */
static int64_t
at(const char *s)
{
    int64_t ms = 0;
    int was_date;

    if (parse_time(s, 0, &ms, &was_date) != 0)
        fprintf(stderr, "bad test time %s\n", s);
    return ms;
}


static struct zone *
open_zone(const char *name)
{
    struct zone *z = NULL;
    char err[128] = "";

    if (zone_open(&z, name, err, sizeof err) != 0)
        fprintf(stderr, "zone_open %s: %s\n", name, err);
    return z;
}


/* The start of the day of s, moved by add days, as an RFC 3339 string. */
static const char *
day_start(struct zone *z, const char *s, int add)
{
    static char out[32];
    int64_t ms = 0;

    if (zone_day_start(z, at(s), add, &ms) != 0)
        return "<error>";
    format_time(ms, out, sizeof out);
    return out;
}


static const char *
week_start(struct zone *z, const char *s)
{
    static char out[32];
    int64_t ms = 0;

    if (zone_week_start(z, at(s), &ms) != 0)
        return "<error>";
    format_time(ms, out, sizeof out);
    return out;
}


static void
zone_should_cut_berlin_days_at_local_midnight(void)
{
    struct zone *z = open_zone("Europe/Berlin");
    int64_t a = 0, b = 0;

    /* CET (+01:00) until 01:00Z on 29 March, CEST (+02:00) after. */
    CHECK_STR(day_start(z, "2026-03-29T12:00:00Z", 0),
              "2026-03-28T23:00:00.000Z");
    CHECK_STR(day_start(z, "2026-03-29T12:00:00Z", 1),
              "2026-03-29T22:00:00.000Z");
    CHECK_STR(day_start(z, "2026-03-28T23:00:00Z", 0),
              "2026-03-28T23:00:00.000Z");
    CHECK_STR(day_start(z, "2026-03-28T22:59:59.999Z", 0),
              "2026-03-27T23:00:00.000Z");
    CHECK(zone_day_start(z, at("2026-03-29T05:00:00Z"), 0, &a) == 0);
    CHECK(zone_day_start(z, at("2026-03-29T05:00:00Z"), 1, &b) == 0);
    CHECK(b - a == 23 * HOUR_MS);

    /* Back to CET at 01:00Z on 25 October: a 25-hour day. */
    CHECK_STR(day_start(z, "2026-10-25T00:30:00Z", 0),
              "2026-10-24T22:00:00.000Z");
    CHECK_STR(day_start(z, "2026-10-25T01:30:00Z", 1),
              "2026-10-25T23:00:00.000Z");
    CHECK(zone_day_start(z, at("2026-10-25T12:00:00Z"), 0, &a) == 0);
    CHECK(zone_day_start(z, at("2026-10-25T12:00:00Z"), 1, &b) == 0);
    CHECK(b - a == 25 * HOUR_MS);

    /* Days added across a month's end and backwards. */
    CHECK_STR(day_start(z, "2026-03-29T12:00:00Z", 3),
              "2026-03-31T22:00:00.000Z");
    CHECK_STR(day_start(z, "2026-03-01T12:00:00Z", -1),
              "2026-02-27T23:00:00.000Z");
    zone_close(z);
}


static void
zone_should_start_weeks_on_monday(void)
{
    struct zone *berlin = open_zone("Europe/Berlin");
    struct zone *utc = open_zone("UTC");
    int64_t a = 0, b = 0;

    /* Sunday 29 March belongs to the week of Monday 23 March (CET). */
    CHECK_STR(week_start(berlin, "2026-03-29T12:00:00Z"),
              "2026-03-22T23:00:00.000Z");
    /* 00:30 on Monday 30 March, CEST: its own Monday. */
    CHECK_STR(week_start(berlin, "2026-03-29T22:30:00Z"),
              "2026-03-29T22:00:00.000Z");
    /* That week is 167 hours long. */
    CHECK(zone_week_start(berlin, at("2026-03-25T12:00:00Z"), &a) == 0);
    CHECK(zone_week_start(berlin, at("2026-03-30T12:00:00Z"), &b) == 0);
    CHECK(b - a == 167 * HOUR_MS);

    CHECK_STR(week_start(utc, "2026-03-29T23:59:59.999Z"),
              "2026-03-23T00:00:00.000Z");
    CHECK_STR(week_start(utc, "2026-03-30T00:00:00Z"),
              "2026-03-30T00:00:00.000Z");
    /* 1 January 2026 is a Thursday; its week starts in 2025. */
    CHECK_STR(week_start(utc, "2026-01-01T08:00:00Z"),
              "2025-12-29T00:00:00.000Z");
    zone_close(berlin);
    zone_close(utc);
}


/*
 * Chile moves its clocks at local midnight: on Sunday 6 September 2026
 * 00:00 -04:00 becomes 01:00 -03:00, so that day starts at 01:00 local
 * (04:00Z) and is 23 hours long.
 */
static void
zone_should_start_a_day_without_midnight_at_its_first_instant(void)
{
    struct zone *z = open_zone("America/Santiago");

    CHECK_STR(day_start(z, "2026-09-06T12:00:00Z", 0),
              "2026-09-06T04:00:00.000Z");
    CHECK_STR(day_start(z, "2026-09-05T12:00:00Z", 0),
              "2026-09-05T04:00:00.000Z");
    CHECK_STR(day_start(z, "2026-09-05T12:00:00Z", 1),
              "2026-09-06T04:00:00.000Z");
    zone_close(z);
}


static void
zone_should_name_local_dates(void)
{
    struct zone *z = open_zone("Europe/Berlin");
    struct zone *utc = open_zone("UTC");
    char d[ZONE_DATE_MAX] = "";

    CHECK(zone_date(z, at("2026-03-28T23:00:00Z"), d) == 0);
    CHECK_STR(d, "2026-03-29");
    CHECK(zone_date(z, at("2026-03-28T22:59:59.999Z"), d) == 0);
    CHECK_STR(d, "2026-03-28");
    /* Proleptic Gregorian: no jump at the 1582 reform. */
    CHECK(zone_date(utc, INT64_C(-12219724800000), d) == 0);
    CHECK_STR(d, "1582-10-10");
    zone_close(z);
    zone_close(utc);
}


static void
zone_should_refuse_unknown_names(void)
{
    static const char *const bad[] = {
        "Nowhere/City", "europe/berlin", "GMT+05:00", "Etc/Unknown", "",
        "Europe/Berlin ", "../../etc/passwd", "Europe/\xc3\xa9",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    };
    struct zone *z;
    char err[128];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        z = (struct zone *) 1;
        err[0] = '\0';
        CHECK(zone_open(&z, bad[i], err, sizeof err) == -1);
        CHECK(z == NULL);
        CHECK_STR(err, "unknown time zone");
    }
    CHECK(zone_open(&z, NULL, err, sizeof err) == -1);

    /* Aliases of the database are zones too. */
    z = open_zone("US/Pacific");
    CHECK(z != NULL);
    zone_close(z);
    zone_close(NULL);
}


/* Times ICU's calendar cannot hold fail instead of wrapping. */
static void
zone_should_fail_outside_its_range(void)
{
    struct zone *z = open_zone("UTC");
    char d[ZONE_DATE_MAX];
    int64_t out = 42;

    CHECK(zone_day_start(z, INT64_MAX, 0, &out) == -1);
    CHECK(zone_day_start(z, INT64_MIN, 0, &out) == -1);
    CHECK(zone_week_start(z, INT64_MAX, &out) == -1);
    CHECK(zone_date(z, INT64_MIN, d) == -1);
    CHECK(out == 42);
    zone_close(z);
}


int
main(void)
{
    zone_should_cut_berlin_days_at_local_midnight();
    zone_should_start_weeks_on_monday();
    zone_should_start_a_day_without_midnight_at_its_first_instant();
    zone_should_name_local_dates();
    zone_should_refuse_unknown_names();
    zone_should_fail_outside_its_range();
    return check_done();
}
