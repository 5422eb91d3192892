/*
 * test_parse.c - parse_time(), parse_duration() and format_time().
 *
 * Table-driven: every case has an id that a failure prints.  Expected
 * milliseconds were computed independently (Python's datetime).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/parse.h"
#include "tests/unit/check.h"

#define T_2026_12_03_174041 INT64_C(1796319641000)
#define T_2026_12_03 INT64_C(1796256000000)

struct time_case {
    const char *id;
    const char *in;
    int date_ok;
    int ok;
    int64_t ms;
    int was_date;
};

static const struct time_case time_cases[] = {
    { "t-epoch", "1970-01-01T00:00:00Z", 0, 1, 0, 0 },
    { "t-z", "2026-12-03T17:40:41Z", 0, 1, T_2026_12_03_174041, 0 },
    { "t-lower", "2026-12-03t17:40:41z", 0, 1, T_2026_12_03_174041, 0 },
    { "t-space", "2026-12-03 17:40:41Z", 0, 1, T_2026_12_03_174041, 0 },
    { "t-plus", "2026-12-03T18:40:41+01:00", 0, 1,
      T_2026_12_03_174041, 0 },
    { "t-minus", "2026-12-03T12:10:41-05:30", 0, 1,
      T_2026_12_03_174041, 0 },
    { "t-zero-off", "2026-12-03T17:40:41-00:00", 0, 1,
      T_2026_12_03_174041, 0 },
    { "t-frac1", "2026-12-03T18:40:41.5+01:00", 0, 1,
      T_2026_12_03_174041 + 500, 0 },
    { "t-frac3", "2026-12-03T17:40:41.123Z", 0, 1,
      T_2026_12_03_174041 + 123, 0 },
    { "t-frac9", "2026-12-03T17:40:41.123999999Z", 0, 1,
      T_2026_12_03_174041 + 123, 0 },
    { "t-frac10", "2026-12-03T17:40:41.1239999999Z", 0, 0, 0, 0 },
    { "t-frac-empty", "2026-12-03T17:40:41.Z", 0, 0, 0, 0 },
    { "t-leap-2024", "2024-02-29T00:00:00Z", 0, 1,
      INT64_C(1709164800000), 0 },
    { "t-leap-2000", "2000-02-29T12:00:00Z", 0, 1,
      INT64_C(951825600000), 0 },
    { "t-noleap-2023", "2023-02-29T00:00:00Z", 0, 0, 0, 0 },
    { "t-noleap-2100", "2100-02-29T00:00:00Z", 0, 0, 0, 0 },
    { "t-feb30", "2024-02-30T00:00:00Z", 0, 0, 0, 0 },
    { "t-apr31", "2026-04-31T00:00:00Z", 0, 0, 0, 0 },
    { "t-month0", "2026-00-10T00:00:00Z", 0, 0, 0, 0 },
    { "t-month13", "2026-13-01T00:00:00Z", 0, 0, 0, 0 },
    { "t-day0", "2026-12-00T00:00:00Z", 0, 0, 0, 0 },
    { "t-hour24", "2026-12-03T24:00:00Z", 0, 0, 0, 0 },
    { "t-min60", "2026-12-03T23:60:00Z", 0, 0, 0, 0 },
    { "t-sec60", "2026-12-03T23:59:60Z", 0, 0, 0, 0 },
    { "t-no-zone", "2026-12-03T17:40:41", 0, 0, 0, 0 },
    { "t-no-zone-date-ok", "2026-12-03T17:40:41", 1, 0, 0, 0 },
    { "t-off-hour24", "2026-12-03T17:40:41+24:00", 0, 0, 0, 0 },
    { "t-off-min60", "2026-12-03T17:40:41+01:60", 0, 0, 0, 0 },
    { "t-off-no-colon", "2026-12-03T17:40:41+0100", 0, 0, 0, 0 },
    { "t-junk", "2026-12-03T17:40:41Zx", 0, 0, 0, 0 },
    { "t-junk-space", "2026-12-03T17:40:41Z ", 0, 0, 0, 0 },
    { "t-lead-space", " 2026-12-03T17:40:41Z", 0, 0, 0, 0 },
    { "t-no-seconds", "2026-12-03T17:40Z", 0, 0, 0, 0 },
    { "t-short-year", "226-12-03T17:40:41Z", 0, 0, 0, 0 },
    { "t-short-month", "2026-1-03T17:40:41Z", 0, 0, 0, 0 },
    { "t-bad-sep", "2026/12/03T17:40:41Z", 0, 0, 0, 0 },
    { "t-x-sep", "2026-12-03X17:40:41Z", 0, 0, 0, 0 },
    { "t-empty", "", 0, 0, 0, 0 },
    { "t-empty-date-ok", "", 1, 0, 0, 0 },
    { "t-word", "yesterday", 1, 0, 0, 0 },
    { "t-before-epoch", "1969-12-31T23:59:59.999Z", 0, 1, -1, 0 },
    { "t-year1", "0001-01-01T00:00:00Z", 0, 1,
      INT64_C(-62135596800000), 0 },
    { "t-year9999", "9999-12-31T23:59:59.999Z", 0, 1,
      INT64_C(253402300799999), 0 },
    { "d-date-ok", "2026-12-03", 1, 1, T_2026_12_03, 1 },
    { "d-date-not-ok", "2026-12-03", 0, 0, 0, 0 },
    { "d-feb29", "2024-02-29", 1, 1, INT64_C(1709164800000), 1 },
    { "d-feb30", "2024-02-30", 1, 0, 0, 0 },
    { "d-zone", "2026-12-03Z", 1, 0, 0, 0 },
    { "d-junk", "2026-12-03x", 1, 0, 0, 0 },
    { "d-t-only", "2026-12-03T", 1, 0, 0, 0 },
};

static void
parse_time_should_follow_table(void)
{
    size_t i;

    for (i = 0; i < sizeof time_cases / sizeof time_cases[0]; i++) {
        const struct time_case *c = &time_cases[i];
        int64_t ms = 12345;
        int was_date = -1;
        int rc = parse_time(c->in, c->date_ok, &ms, &was_date);

        if ((rc == 0) != c->ok || (c->ok && ms != c->ms)
            || (c->ok && was_date != c->was_date)) {
            fprintf(stderr, "case %s: rc=%d ms=%" PRId64 " was_date=%d\n",
                    c->id, rc, ms, was_date);
        }
        CHECK((rc == 0) == c->ok);
        if (c->ok) {
            CHECK(ms == c->ms);
            CHECK(was_date == c->was_date);
        } else {
            CHECK(rc == -1);
        }
    }
}


static void
parse_time_should_accept_null_was_date(void)
{
    int64_t ms = 0;

    CHECK(parse_time("2026-12-03", 1, &ms, NULL) == 0);
    CHECK(ms == T_2026_12_03);
    CHECK(parse_time(NULL, 1, &ms, NULL) == -1);
}


struct duration_case {
    const char *id;
    const char *in;
    int ok;
    int64_t ms;
};

static const struct duration_case duration_cases[] = {
    { "u-90m", "90m", 1, INT64_C(5400000) },
    { "u-24h", "24h", 1, INT64_C(86400000) },
    { "u-3d", "3d", 1, INT64_C(259200000) },
    { "u-1w", "1w", 1, INT64_C(604800000) },
    { "u-45s", "45s", 1, INT64_C(45000) },
    { "u-lead-zero", "007h", 1, INT64_C(25200000) },
    { "u-max-w", "15250284452w", 1, INT64_C(15250284452) * 604800000 },
    { "u-over-w", "15250284453w", 0, 0 },
    { "u-over-d", "99999999999999999d", 0, 0 },
    { "u-over-digits", "99999999999999999999s", 0, 0 },
    { "u-zero", "0m", 0, 0 },
    { "u-zeros", "000h", 0, 0 },
    { "u-negative", "-5m", 0, 0 },
    { "u-plus", "+5m", 0, 0 },
    { "u-no-unit", "5", 0, 0 },
    { "u-no-number", "m", 0, 0 },
    { "u-bad-unit", "5x", 0, 0 },
    { "u-upper-unit", "5M", 0, 0 },
    { "u-two-units", "5mm", 0, 0 },
    { "u-compound", "1h30m", 0, 0 },
    { "u-space", "5 m", 0, 0 },
    { "u-lead-space", " 5m", 0, 0 },
    { "u-trail-space", "5m ", 0, 0 },
    { "u-fraction", "1.5h", 0, 0 },
    { "u-empty", "", 0, 0 },
};

static void
parse_duration_should_follow_table(void)
{
    size_t i;

    for (i = 0; i < sizeof duration_cases / sizeof duration_cases[0]; i++) {
        const struct duration_case *c = &duration_cases[i];
        int64_t ms = 12345;
        int rc = parse_duration(c->in, &ms);

        if ((rc == 0) != c->ok || (c->ok && ms != c->ms))
            fprintf(stderr, "case %s: rc=%d ms=%" PRId64 "\n", c->id, rc,
                    ms);
        CHECK((rc == 0) == c->ok);
        CHECK(c->ok ? ms == c->ms : rc == -1);
    }
}


static void
parse_duration_should_reject_null(void)
{
    int64_t ms = 0;

    CHECK(parse_duration(NULL, &ms) == -1);
}


static void
format_time_should_write_utc_millis(void)
{
    char out[32];

    format_time(0, out, sizeof out);
    CHECK_STR(out, "1970-01-01T00:00:00.000Z");
    format_time(-1, out, sizeof out);
    CHECK_STR(out, "1969-12-31T23:59:59.999Z");
    format_time(T_2026_12_03_174041 + 123, out, sizeof out);
    CHECK_STR(out, "2026-12-03T17:40:41.123Z");
    format_time(INT64_C(1709164800000), out, sizeof out);
    CHECK_STR(out, "2024-02-29T00:00:00.000Z");
    format_time(INT64_C(253402300799999), out, sizeof out);
    CHECK_STR(out, "9999-12-31T23:59:59.999Z");
    CHECK(strlen(out) == 24);
}


/*
 * Every formatted time parses back to itself: a sweep over 1601..2399
 * in steps that are not a whole number of days, hours or seconds.
 */
static void
format_time_should_round_trip(void)
{
    const int64_t from = INT64_C(-11644473600000);     /* 1601-01-01 */
    const int64_t to = INT64_C(13569465600000);        /* 2400-01-01 */
    const int64_t step = INT64_C(7777777777);
    int64_t ms, back;
    char out[32];
    int bad = 0;

    for (ms = from; ms < to; ms += step) {
        format_time(ms, out, sizeof out);
        if (parse_time(out, 0, &back, NULL) != 0 || back != ms) {
            if (bad++ < 5)
                fprintf(stderr, "round trip %" PRId64 " -> %s\n", ms, out);
        }
    }
    CHECK(bad == 0);
}


static void
parse_number_should_accept_plain_decimals_only(void)
{
    static const char *const bad[] = {
        "", "abc", "0x10", "inf", "nan", "1e999", "1,5", " 1", "1 ",
        "--1", "1.2.3", "123456789012345678901234567890123"
    };
    double v = 42;
    size_t i;

    CHECK(parse_number("0.01", &v) == 0 && v == 0.01);
    CHECK(parse_number("30", &v) == 0 && v == 30);
    CHECK(parse_number("-2.5e-1", &v) == 0 && v == -0.25);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        CHECK(parse_number(bad[i], &v) == -1);
        CHECK(v == 42);
    }
    CHECK(parse_number(NULL, &v) == -1);
}


int
main(void)
{
    parse_time_should_follow_table();
    parse_time_should_accept_null_was_date();
    parse_duration_should_follow_table();
    parse_duration_should_reject_null();
    format_time_should_write_utc_millis();
    format_time_should_round_trip();
    parse_number_should_accept_plain_decimals_only();
    return check_done();
}
