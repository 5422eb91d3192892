/*
 * fuzz_parse.c - the strict parsers of api/parse.h and time-zone names
 * (api/zone.h) on the same string.
 *
 * Beyond "no crash": a time that parses formats back (format_time()) to
 * a string that parses to the same instant; a duration is positive; a
 * number is finite; a zone that opens answers for a fixed instant.
 */
#include "tests/fuzz/fuzz.h"

#include <math.h>

#include "api/parse.h"
#include "api/zone.h"

/* 2026-12-03T12:00:00Z */
#define NOW INT64_C(1796299200000)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    return 0;
}


/*
 * format_time() output of a year 0000-9999 parses back to ms (other
 * years print as "-999-..." or "12345-...", which parse_time() rightly
 * refuses).
 */
static void
check_round_trip(int64_t ms)
{
    char text[64];
    int64_t back = 0;

    format_time(ms, text, sizeof text);
    if (strlen(text) != 24 || text[0] < '0' || text[0] > '9') {
        return;
    }
    FUZZ_ASSERT(parse_time(text, 0, &back, NULL) == 0);
    FUZZ_ASSERT(back == ms);
}


static void
check_times(const char *s)
{
    int64_t ms = 0;
    int was_date = 0;

    if (parse_time(s, 0, &ms, NULL) == 0) {
        check_round_trip(ms);
    }
    if (parse_time(s, 1, &ms, &was_date) == 0) {
        check_round_trip(ms);
    }
    if (parse_duration(s, &ms) == 0) {
        FUZZ_ASSERT(ms > 0);
    }
}


static void
check_zone(const char *s)
{
    struct zone *z = NULL;
    char err[128];
    char date[ZONE_DATE_MAX];
    int64_t start = 0;

    if (zone_open(&z, s, err, sizeof err) != 0) {
        return;
    }
    FUZZ_ASSERT(zone_day_start(z, NOW, 0, &start) == 0);
    FUZZ_ASSERT(start <= NOW && NOW - start < INT64_C(86400000) * 2);
    FUZZ_ASSERT(zone_week_start(z, NOW, &start) == 0);
    FUZZ_ASSERT(zone_date(z, NOW, date) == 0);
    zone_close(z);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    double d;

    check_times(s);
    if (parse_number(s, &d) == 0) {
        FUZZ_ASSERT(isfinite(d));
    }
    check_zone(s);

    /* Any 8 bytes are an instant format_time() must print safely. */
    if (size >= 8) {
        int64_t ms;

        memcpy(&ms, data, sizeof ms);
        check_round_trip(ms);
    }
    free(s);
    return 0;
}
