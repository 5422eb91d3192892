/*
 * parse.h - the strict parsers for what callers type into query strings
 * and JSON bodies: times, durations and plain numbers.  All reject
 * trailing junk.
 */
#ifndef BEACON_PARSE_H
#define BEACON_PARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses an RFC 3339 date-time ("2026-12-03T17:40:41Z",
 * "2026-12-03T18:40:41.5+01:00"; 't'/'z' and a space for 'T' accepted)
 * or, when date_ok, a bare date "2026-12-03" (midnight UTC; *was_date is
 * set to 1).  Returns 0 and sets *ms, or -1.
 */
int parse_time(const char *s, int date_ok, int64_t *ms, int *was_date);

/*
 * Parses a duration: a positive integer then one unit, s m h d or w
 * ("90m", "24h", "3d").  Returns 0 and sets *ms, or -1.
 */
int parse_duration(const char *s, int64_t *ms);

/*
 * Parses a plain decimal number ("0.01", "30", "1e-3"; no hex, inf or
 * nan, at most PARSE_NUMBER_MAX bytes) as strtod() reads it in the C
 * locale.  Returns 0 and sets *out, or -1.
 */
#define PARSE_NUMBER_MAX 32
int parse_number(const char *s, double *out);

/*
 * The times format_time() writes as RFC 3339 wants them, years 0001 to
 * 9999: [PARSE_TIME_MIN_MS, PARSE_TIME_END_MS).
 */
#define PARSE_TIME_MIN_MS INT64_C(-62135596800000)   /* 0001-01-01 */
#define PARSE_TIME_END_MS INT64_C(253402300800000)   /* 10000-01-01 */

/* Formats ms as "2026-12-03T17:40:41.123Z" into out (>= 25 bytes). */
void format_time(int64_t ms, char *out, size_t outlen);

#endif
