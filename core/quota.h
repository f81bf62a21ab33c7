/*
 * quota.h - quota status, window arithmetic and reset schedules.
 *
 * DESIGN
 * Pure functions, safe from any thread. A window's used fraction is what the latest
 * observation said plus what workers counted locally since ("base" is the usage counter's
 * value when the observation was true). Status follows the seed's thresholds: HEALTHY
 * below warn (0.70), WARNING, CRITICAL from crit (0.80), EXHAUSTED at 1.0, UNKNOWN with
 * no data. Reset schedules are calendar rules in a named time zone (core/tz), computed
 * by the supervisor; the selection path never touches the calendar.
 */
#ifndef ROTA_CORE_QUOTA_H
#define ROTA_CORE_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"

struct rota_tz;

enum rota_status {
    ROTA_STATUS_UNKNOWN = 0,
    ROTA_STATUS_HEALTHY = 1,
    ROTA_STATUS_WARNING = 2,
    ROTA_STATUS_CRITICAL = 3,
    ROTA_STATUS_EXHAUSTED = 4,
};

#define ROTA_WARN_DEFAULT        0.70
#define ROTA_CRIT_DEFAULT        0.80
#define ROTA_PESSIMISTIC_DEFAULT 0.85

/* Status of a used fraction; a negative fraction means no data. */
enum rota_status rota_quota_status(double used_fraction, double warn, double crit);
const char *rota_quota_status_name(enum rota_status s);

/* Used fraction of one window: (used + (counter - base)) / limit, or -1 without a limit.
 * A counter behind its base (a restart) counts nothing locally. */
static inline double rota_window_fraction(uint64_t used, uint64_t limit, uint64_t base,
                                          uint64_t counter)
{
    if (limit == 0)
        return -1.0;
    uint64_t local = counter > base ? counter - base : 0;
    return (double)(used + local) / (double)limit;
}

/* The next reset strictly after "now_s" (UTC seconds) for schedule "r" in zone "tz" (NULL
 * = UTC). ROLLING returns now_s + period_s; NONE returns INT64_MAX. */
int64_t rota_quota_next_reset(const struct rota_shm_reset *r, const struct rota_tz *tz,
                              int64_t now_s);

/* Parse a schedule: "minute", "hourly [:MM]", "daily [HH:MM]", "weekly DAY [HH:MM]",
 * "monthly [D] [HH:MM]", "rolling DURATION" (90s, 5m, 5h, 7d, 1h30m), "none". Returns 0,
 * or -EINVAL with "err" saying what was expected at which character. */
int rota_quota_parse_reset(const char *text, struct rota_shm_reset *out, char *err, size_t n);

/* Parse a duration ("250ms", "30s", "5m", "1h30m", "7d"); returns 0 and *ns. */
int rota_parse_duration(const char *text, uint64_t *ns);

#endif
