/*
 * zone.h - local days and weeks in an IANA time zone.
 *
 * The trend report cuts its buckets at local midnights, which are 23 or
 * 25 hours apart around a daylight-saving change.  A struct zone is one
 * ICU calendar in one zone: cheap to open, owned by one thread (ICU
 * calendars are not shared between threads), closed after the request.
 * Times are UTC milliseconds since the Unix epoch, as everywhere else.
 */
#ifndef BEACON_ZONE_H
#define BEACON_ZONE_H

#include <stddef.h>
#include <stdint.h>

#define ZONE_NAME_MAX 64        /* bytes of a zone name, NUL included */
#define ZONE_DATE_MAX 40        /* "2026-03-29", room for any int fields */

struct zone;

/*
 * Opens the zone named name ("Europe/Berlin", "UTC", "US/Pacific"): one
 * of the zone database's own names, as ICU knows them (case matters).
 * Returns 0, or -1 with a reason in err: "unknown time zone" for a name
 * ICU does not know, a custom offset ("GMT+05:00") included.
 */
int zone_open(struct zone **out, const char *name, char *err,
              size_t errlen);

/* Accepts NULL. */
void zone_close(struct zone *z);

/*
 * The first instant of the local day add_days days after the one that
 * holds ms (add_days may be negative).  A day whose midnight does not
 * exist (a change at 00:00) starts at its first valid time.  0, or -1
 * when the result falls outside the calendar's range.
 */
int zone_day_start(struct zone *z, int64_t ms, int add_days, int64_t *out);

/* The first instant of the local Monday on or before the day of ms. */
int zone_week_start(struct zone *z, int64_t ms, int64_t *out);

/* The local date of ms as YYYY-MM-DD (proleptic Gregorian).  0 or -1. */
int zone_date(struct zone *z, int64_t ms, char out[ZONE_DATE_MAX]);

#endif
