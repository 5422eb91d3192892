/*
 * parse.c - strict parsers for times, durations and numbers typed by
 * callers.
 *
 * Exports parse_time(), parse_duration(), parse_number() and
 * format_time().  Calendar arithmetic is done here in proleptic
 * Gregorian days, so the result does not depend on the time zone of the
 * process or on timegm(), which POSIX does not have.
 */
#include "api/parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_PER_SEC INT64_C(1000)
#define MS_PER_MIN (60 * MS_PER_SEC)
#define MS_PER_HOUR (60 * MS_PER_MIN)
#define MS_PER_DAY (24 * MS_PER_HOUR)
#define MS_PER_WEEK (7 * MS_PER_DAY)

/* The most fraction digits accepted (nanoseconds); only 3 are kept. */
#define FRACTION_DIGITS_MAX 9

struct civil {
    int year;
    int month;
    int day;
};

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}


/*
 * Reads exactly n decimal digits from s into *out.  Returns a pointer
 * just past them, or NULL when any of the n characters is not a digit.
 */
static const char *
read_digits(const char *s, int n, int *out)
{
    int value = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return NULL;
        value = value * 10 + (s[i] - '0');
    }
    *out = value;
    return s + n;
}


static int
is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}


static int
days_in_month(int year, int month)
{
    static const int days[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (month == 2 && is_leap(year))
        return 29;
    return days[month - 1];
}


/*
 * Days from 1970-01-01 to the given date (negative before it), after
 * Howard Hinnant's days_from_civil: years are counted from March so the
 * leap day falls at the end, in 400-year eras of 146097 days.
 */
static int64_t
days_from_civil(const struct civil *c)
{
    int64_t y = c->year - (c->month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (c->month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + c->day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


/* The inverse of days_from_civil(). */
static void
civil_from_days(int64_t z, struct civil *c)
{
    int64_t era, doe, yoe, doy, mp, y;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    c->day = (int) (doy - (153 * mp + 2) / 5 + 1);
    c->month = (int) (mp < 10 ? mp + 3 : mp - 9);
    c->year = (int) (y + (c->month <= 2));
}


/* Reads "YYYY-MM-DD" and checks it names a real day.  NULL if not. */
static const char *
read_date(const char *s, struct civil *c)
{
    s = read_digits(s, 4, &c->year);
    if (s == NULL || *s++ != '-')
        return NULL;
    s = read_digits(s, 2, &c->month);
    if (s == NULL || *s++ != '-')
        return NULL;
    s = read_digits(s, 2, &c->day);
    if (s == NULL || c->month < 1 || c->month > 12)
        return NULL;
    if (c->day < 1 || c->day > days_in_month(c->year, c->month))
        return NULL;
    return s;
}


/*
 * Reads an optional ".ddd..." fraction of a second, keeping milliseconds
 * (further digits are truncated).  A dot without digits is an error.
 */
static const char *
read_fraction(const char *s, int64_t *ms)
{
    int64_t scale = 100;
    int n = 0;

    *ms = 0;
    if (*s != '.')
        return s;
    s++;
    while (is_digit(*s)) {
        if (++n > FRACTION_DIGITS_MAX)
            return NULL;
        *ms += (*s - '0') * scale;
        scale /= 10;
        s++;
    }
    return n > 0 ? s : NULL;
}


/*
 * Reads "HH:MM:SS[.frac]" into milliseconds since midnight.  A leap
 * second (60) is rejected: the store keeps plain UTC milliseconds.
 */
static const char *
read_clock(const char *s, int64_t *ms)
{
    int hour, min, sec;
    int64_t frac;

    s = read_digits(s, 2, &hour);
    if (s == NULL || *s++ != ':')
        return NULL;
    s = read_digits(s, 2, &min);
    if (s == NULL || *s++ != ':')
        return NULL;
    s = read_digits(s, 2, &sec);
    if (s == NULL || hour > 23 || min > 59 || sec > 59)
        return NULL;
    s = read_fraction(s, &frac);
    if (s == NULL)
        return NULL;
    *ms = hour * MS_PER_HOUR + min * MS_PER_MIN + sec * MS_PER_SEC + frac;
    return s;
}


/* Reads "Z", "z", "+hh:mm" or "-hh:mm" into an offset east of UTC. */
static const char *
read_zone(const char *s, int64_t *offset_ms)
{
    int sign, hour, min;

    if (*s == 'Z' || *s == 'z') {
        *offset_ms = 0;
        return s + 1;
    }
    if (*s != '+' && *s != '-')
        return NULL;
    sign = *s++ == '-' ? -1 : 1;
    s = read_digits(s, 2, &hour);
    if (s == NULL || *s++ != ':')
        return NULL;
    s = read_digits(s, 2, &min);
    if (s == NULL || hour > 23 || min > 59)
        return NULL;
    *offset_ms = sign * (hour * MS_PER_HOUR + min * MS_PER_MIN);
    return s;
}


int
parse_time(const char *s, int date_ok, int64_t *ms, int *was_date)
{
    struct civil date;
    int64_t day_ms, clock_ms, offset_ms;

    if (was_date != NULL)
        *was_date = 0;
    if (s == NULL)
        return -1;

    s = read_date(s, &date);
    if (s == NULL)
        return -1;
    day_ms = days_from_civil(&date) * MS_PER_DAY;
    if (*s == '\0') {
        if (!date_ok)
            return -1;
        *ms = day_ms;
        if (was_date != NULL)
            *was_date = 1;
        return 0;
    }

    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s = read_clock(s + 1, &clock_ms);
    if (s == NULL)
        return -1;
    s = read_zone(s, &offset_ms);
    if (s == NULL || *s != '\0')
        return -1;

    *ms = day_ms + clock_ms - offset_ms;
    return 0;
}


/* Milliseconds in one unit, or 0 for an unknown unit character. */
static int64_t
unit_ms(char unit)
{
    switch (unit) {
    case 's':
        return MS_PER_SEC;
    case 'm':
        return MS_PER_MIN;
    case 'h':
        return MS_PER_HOUR;
    case 'd':
        return MS_PER_DAY;
    case 'w':
        return MS_PER_WEEK;
    default:
        return 0;
    }
}


/*
 * Zero is rejected: "unopened for 0m" would list every reply, which is
 * never what a caller means.  Signs, spaces and upper-case units are
 * rejected too, and so is anything that overflows int64 milliseconds.
 */
int
parse_duration(const char *s, int64_t *ms)
{
    int64_t n = 0;
    int64_t unit;
    int digit;

    if (s == NULL || !is_digit(*s))
        return -1;

    while (is_digit(*s)) {
        digit = *s++ - '0';
        if (n > (INT64_MAX - digit) / 10)
            return -1;
        n = n * 10 + digit;
    }

    unit = unit_ms(*s);
    if (unit == 0 || s[1] != '\0' || n == 0 || n > INT64_MAX / unit)
        return -1;
    *ms = n * unit;
    return 0;
}


void
format_time(int64_t ms, char *out, size_t outlen)
{
    struct civil c;
    int64_t days, rem;

    /* Floor division, so times before 1970 land on the right day. */
    days = ms / MS_PER_DAY;
    rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    civil_from_days(days, &c);

    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             c.year, c.month, c.day,
             (int) (rem / MS_PER_HOUR),
             (int) (rem / MS_PER_MIN % 60),
             (int) (rem / MS_PER_SEC % 60),
             (int) (rem % MS_PER_SEC));
}


int
parse_number(const char *s, double *out)
{
    size_t n = s != NULL ? strlen(s) : 0;
    double v;
    char *end;

    if (n == 0 || n > PARSE_NUMBER_MAX
        || strspn(s, "0123456789+-.eE") != n)
        return -1;
    v = strtod(s, &end);
    if (*end != '\0' || end == s || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}
