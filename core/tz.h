/*
 * tz.h - time zones without TZ: TZif files and POSIX TZ rules (private to rota).
 *
 * The supervisor computes quota reset times such as "daily at 00:00 America/Los_Angeles"
 * or "monthly 1 00:00 Asia/Tokyo" from many threads at once. The process-global
 * TZ/tzset/localtime/mktime machinery cannot serve that, so this module reads the zone
 * itself: rota_tz_load parses a TZif file (or a POSIX TZ rule string) into an immutable
 * struct rota_tz, and every query afterwards is a pure function of that struct and its
 * arguments. A loaded zone may be shared by any number of threads without a lock; it is
 * freed once, by its owner, after the last reader is done.
 *
 * Functions that can fail return 0 or a negative errno. Instants are seconds since the
 * Unix epoch without leap seconds; they are clamped to [ROTA_TZ_MIN_SEC, ROTA_TZ_MAX_SEC]
 * (about +-1.1e9 years) so every derived year fits an int.
 */
#ifndef ROTA_CORE_TZ_H
#define ROTA_CORE_TZ_H

#include <stdint.h>
#include <stddef.h>

#define ROTA_TZ_NAME_MAX    255                /* longest name rota_tz_load accepts */
#define ROTA_TZ_MAX_SEC     (INT64_C(1) << 55) /* instants are clamped to this range */
#define ROTA_TZ_MIN_SEC     (-ROTA_TZ_MAX_SEC)
#define ROTA_TZ_DEFAULT_DIR "/usr/share/zoneinfo" /* used when $ROTA_ZONEINFO is unset */

/* A civil (wall clock) time: month 1..12, day 1..31, hour 0..23, min and sec 0..59. */
struct rota_civil {
    int year, month, day, hour, min, sec;
};

struct rota_tz; /* opaque, immutable once loaded */

/*
 * Load zone "name" ("UTC", "Etc/UTC", "Europe/Berlin", ...) from the TZif file under the
 * zoneinfo directory ($ROTA_ZONEINFO if set and not empty, else ROTA_TZ_DEFAULT_DIR).
 * When "name" is not an existing file, it is parsed as a POSIX TZ rule string instead
 * (e.g. "CET-1CEST,M3.5.0,M10.5.0/3" or "<+0545>-5:45").
 *
 * Returns 0 and stores a new zone in "*out", or:
 *   -EINVAL   "name" or "out" is NULL, or "name" is empty, longer than
 *             ROTA_TZ_NAME_MAX, starts with '/', contains "..", or has characters other
 *             than letters, digits, '_', '+', '-' and '/' and is not a POSIX TZ string;
 *   -ENOENT   no such zone file, and "name" is not a valid POSIX TZ string;
 *   -EBADMSG  the zone file is truncated, oversized or malformed;
 *   -ENOMEM, or another negative errno from opening or reading the file.
 * Reads $ROTA_ZONEINFO with getenv: do not call while another thread changes the
 * environment.
 */
int rota_tz_load(const char *name, struct rota_tz **out);

/* Free a zone returned by rota_tz_load. NULL is ignored. */
void rota_tz_free(struct rota_tz *tz);

/* Parse a TZif image already in memory (what rota_tz_load does after reading the file);
 * "name" only labels the zone. Same errors. */
int rota_tz_parse(const void *buf, size_t len, const char *name, struct rota_tz **out);

/* The name the zone was loaded with; valid until rota_tz_free. */
const char *rota_tz_name(const struct rota_tz *tz);

/* UTC offset in seconds (local = utc + offset) in effect at the UTC instant "utc_sec". */
int32_t rota_tz_offset(const struct rota_tz *tz, int64_t utc_sec);

/* The local civil time in "tz" at the UTC instant "utc_sec", stored in "*out". */
void rota_tz_to_civil(const struct rota_tz *tz, int64_t utc_sec, struct rota_civil *out);

/*
 * The UTC instant at which the wall clock in "tz" shows "*local".
 *
 * A local time that does not exist (DST gap) maps to the instant just after the gap as if
 * the wall clock moved forward by the gap (02:30 in a 02:00->03:00 gap gives 03:30 local);
 * an ambiguous local time (DST overlap) gives the earlier instant. Fields out of range
 * (month 13, day 32, hour 24, negative minutes) are normalised like mktime.
 */
int64_t rota_tz_from_civil(const struct rota_tz *tz, const struct rota_civil *local);

/*
 * Pure calendar helpers, proleptic Gregorian, no zone. Days count from 1970-01-01.
 * rota_days_from_civil and rota_days_in_month normalise an out-of-range "month" (month 13
 * of 2025 is January 2026); rota_days_from_civil also accepts any "day" (day 0 is the
 * last day of the month before).
 */
int64_t rota_days_from_civil(int year, int month, int day);
void rota_civil_from_days(int64_t days, int *year, int *month, int *day);
int rota_weekday(int64_t days); /* 0 = Sunday .. 6 = Saturday */
int rota_days_in_month(int year, int month);

#endif
