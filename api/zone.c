/*
 * zone.c - local days and weeks in an IANA time zone, with ICU's C
 * calendar (ucal_*).
 *
 * Exports zone.h.  ICU rather than TZ and localtime_r(): switching TZ
 * means setenv(), which is not thread-safe, and the API answers on many
 * threads.  Each struct zone has its own UCalendar, so no state is
 * shared.  The calendar is proleptic Gregorian (parse_time()'s dates
 * are), and a local time skipped by a change maps to the first valid
 * one after it.
 */
#include "api/zone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "api/api_internal.h"

/* ICU's own bounds on a calendar's time (about +-5.8 million years);
 * a proleptic calendar starts its Gregorian rules at the lower one. */
#define ICU_MIN_MILLIS (-184303902528000000.0)
#define ICU_MAX_MILLIS (183882168921600000.0)

struct zone {
    UCalendar *cal;
};


/*
 * A name worth asking ICU about: 1..ZONE_NAME_MAX-1 bytes of the
 * characters zone names use.  They are all in ICU's invariant set, so
 * u_charsToUChars() converts them.
 */
static int
name_ok(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n < ZONE_NAME_MAX
           && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "abcdefghijklmnopqrstuvwxyz0123456789/_+-") == n;
}


/*
 * True when ICU knows id as a zone of the database.  Custom ids
 * ("GMT+05:00") and "Etc/Unknown" are valid to ICU but not system zones.
 */
static int
is_system_zone(const UChar *id)
{
    UChar canon[ZONE_NAME_MAX];
    UErrorCode st = U_ZERO_ERROR;
    UBool system = 0;

    ucal_getCanonicalTimeZoneID(id, -1, canon, ZONE_NAME_MAX, &system, &st);
    return U_SUCCESS(st) && system;
}


int
zone_open(struct zone **out, const char *name, char *err, size_t errlen)
{
    UChar id[ZONE_NAME_MAX];
    UErrorCode st = U_ZERO_ERROR;
    struct zone *z;

    *out = NULL;
    if (name == NULL || !name_ok(name))
        return api_fail(err, errlen, "unknown time zone");
    u_charsToUChars(name, id, (int32_t) strlen(name) + 1);
    if (!is_system_zone(id))
        return api_fail(err, errlen, "unknown time zone");

    z = calloc(1, sizeof *z);
    if (z == NULL)
        return api_fail(err, errlen, "out of memory");
    z->cal = ucal_open(id, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st)) {
        free(z);
        return api_fail(err, errlen, "time zone: %s", u_errorName(st));
    }
    ucal_setGregorianChange(z->cal, ICU_MIN_MILLIS, &st);
    ucal_setAttribute(z->cal, UCAL_SKIPPED_WALL_TIME,
                      UCAL_WALLTIME_NEXT_VALID);
    if (U_FAILURE(st)) {
        zone_close(z);
        return api_fail(err, errlen, "time zone: %s", u_errorName(st));
    }
    *out = z;
    return 0;
}


void
zone_close(struct zone *z)
{
    if (z == NULL)
        return;
    ucal_close(z->cal);
    free(z);
}


/* Points the calendar at ms; 0, or -1 outside ICU's range. */
static int
set_time(struct zone *z, int64_t ms)
{
    UErrorCode st = U_ZERO_ERROR;
    double d = (double) ms;

    if (d < ICU_MIN_MILLIS || d > ICU_MAX_MILLIS)
        return -1;
    ucal_setMillis(z->cal, d, &st);
    return U_SUCCESS(st) ? 0 : -1;
}


/* The calendar's field f at the time set last; 0, or -1. */
static int
get_field(struct zone *z, UCalendarDateFields f, int32_t *out)
{
    UErrorCode st = U_ZERO_ERROR;

    *out = ucal_get(z->cal, f, &st);
    return U_SUCCESS(st) ? 0 : -1;
}


/*
 * The calendar's time as whole milliseconds.  The result is a whole
 * number of ms within ICU's range, hence within int64_t.
 */
static int
get_time(struct zone *z, int64_t *out)
{
    UErrorCode st = U_ZERO_ERROR;
    double d = ucal_getMillis(z->cal, &st);

    if (U_FAILURE(st) || !(d >= ICU_MIN_MILLIS && d <= ICU_MAX_MILLIS))
        return -1;
    *out = (int64_t) d;
    return 0;
}


int
zone_day_start(struct zone *z, int64_t ms, int add_days, int64_t *out)
{
    int32_t year, month, day;

    if (set_time(z, ms) != 0 || get_field(z, UCAL_EXTENDED_YEAR, &year) != 0
        || get_field(z, UCAL_MONTH, &month) != 0
        || get_field(z, UCAL_DATE, &day) != 0)
        return -1;

    /* Cleared fields are 0 (midnight); the calendar is lenient, so a
     * day past the month's end rolls into the next month. */
    ucal_clear(z->cal);
    ucal_set(z->cal, UCAL_EXTENDED_YEAR, year);
    ucal_set(z->cal, UCAL_MONTH, month);
    ucal_set(z->cal, UCAL_DATE, day + add_days);
    return get_time(z, out);
}


int
zone_week_start(struct zone *z, int64_t ms, int64_t *out)
{
    int32_t dow;

    if (set_time(z, ms) != 0 || get_field(z, UCAL_DAY_OF_WEEK, &dow) != 0)
        return -1;
    /* UCAL_SUNDAY is 1 ... UCAL_SATURDAY 7: days back to Monday. */
    return zone_day_start(z, ms, -((dow + 5) % 7), out);
}


int
zone_date(struct zone *z, int64_t ms, char out[ZONE_DATE_MAX])
{
    int32_t year, month, day;

    if (set_time(z, ms) != 0 || get_field(z, UCAL_EXTENDED_YEAR, &year) != 0
        || get_field(z, UCAL_MONTH, &month) != 0
        || get_field(z, UCAL_DATE, &day) != 0)
        return -1;
    snprintf(out, ZONE_DATE_MAX, "%04d-%02d-%02d", (int) year,
             (int) month + 1, (int) day);
    return 0;
}
