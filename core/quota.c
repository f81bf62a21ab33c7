/*
 * quota.c - quota status and reset schedules.
 *
 * DESIGN
 * Called by the supervisor (reset timers, observations), rotactl (display) and tests;
 * never on the select path. Reset computation works in local civil time: take "now" in
 * the window's zone, step to the next boundary of the schedule on the calendar, convert
 * back to UTC. Where the boundary falls in a DST gap the wall clock is carried forward
 * (a 02:30 reset on a day that skips 02:00-03:00 happens at 03:30); in an overlap the
 * earlier instant wins. Months shorter than the scheduled day reset on their last day.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"
#include "tz.h"

enum rota_status rota_quota_status(double f, double warn, double crit)
{
    if (f < 0)
        return ROTA_STATUS_UNKNOWN;
    if (f >= 1.0)
        return ROTA_STATUS_EXHAUSTED;
    if (f >= crit)
        return ROTA_STATUS_CRITICAL;
    if (f >= warn)
        return ROTA_STATUS_WARNING;
    return ROTA_STATUS_HEALTHY;
}

const char *rota_quota_status_name(enum rota_status s)
{
    static const char *const names[] = {"unknown", "healthy", "warning", "critical",
                                        "exhausted"};
    return (unsigned)s < 5 ? names[s] : "?";
}

static int64_t to_utc(const struct rota_tz *tz, struct rota_civil c)
{
    if (tz)
        return rota_tz_from_civil(tz, &c);
    return rota_days_from_civil(c.year, c.month, c.day) * 86400 + c.hour * 3600 + c.min * 60 +
           c.sec;
}

static void to_civil(const struct rota_tz *tz, int64_t t, struct rota_civil *c)
{
    if (tz) {
        rota_tz_to_civil(tz, t, c);
        return;
    }
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sec = t - days * 86400;
    rota_civil_from_days(days, &c->year, &c->month, &c->day);
    c->hour = (int)(sec / 3600);
    c->min = (int)(sec / 60 % 60);
    c->sec = (int)(sec % 60);
}

/* Candidate boundary "step" periods after the one on the civil date of "c". */
static int64_t candidate(const struct rota_shm_reset *r, const struct rota_tz *tz,
                         struct rota_civil c, int step)
{
    c.sec = 0;
    switch (r->kind) {
    case ROTA_RESET_MINUTE:
        c.min += step;
        break;
    case ROTA_RESET_HOUR:
        c.min = r->minute;
        c.hour += step;
        break;
    case ROTA_RESET_DAY:
        c.hour = r->hour;
        c.min = r->minute;
        c.day += step;
        break;
    case ROTA_RESET_WEEK: {
        int64_t days = rota_days_from_civil(c.year, c.month, c.day);
        days += (r->wday - rota_weekday(days) + 7) % 7 + 7 * (int64_t)step;
        rota_civil_from_days(days, &c.year, &c.month, &c.day);
        c.hour = r->hour;
        c.min = r->minute;
        break;
    }
    default: { /* MONTH */
        int m = c.month - 1 + step;
        c.year += m >= 0 ? m / 12 : -((11 - m) / 12);
        c.month = (m % 12 + 12) % 12 + 1;
        int dim = rota_days_in_month(c.year, c.month);
        c.day = r->mday < 1 ? 1 : (r->mday > dim ? dim : r->mday);
        c.hour = r->hour;
        c.min = r->minute;
        break;
    }
    }
    /* Normalise minute/hour/day overflow through the calendar, in local time. */
    int64_t days = rota_days_from_civil(c.year, c.month, 1) + (c.day - 1);
    int64_t mins = (int64_t)c.hour * 60 + c.min;
    days += mins >= 0 ? mins / 1440 : -((1439 - mins) / 1440);
    mins = ((mins % 1440) + 1440) % 1440;
    rota_civil_from_days(days, &c.year, &c.month, &c.day);
    c.hour = (int)(mins / 60);
    c.min = (int)(mins % 60);
    return to_utc(tz, c);
}

int64_t rota_quota_next_reset(const struct rota_shm_reset *r, const struct rota_tz *tz,
                              int64_t now_s)
{
    if (!r || r->kind == ROTA_RESET_NONE || r->kind > ROTA_RESET_ROLLING)
        return INT64_MAX;
    if (r->kind == ROTA_RESET_ROLLING)
        return now_s + (r->period_s ? r->period_s : 1);
    struct rota_civil c;
    to_civil(tz, now_s, &c);
    /* The boundary in the current period may still be ahead; otherwise step on. A DST
     * shift can make one candidate land at or before now, so keep stepping. */
    for (int step = 0; step < 8; step++) {
        int64_t t = candidate(r, tz, c, step);
        if (t > now_s)
            return t;
    }
    return INT64_MAX;
}

/* ---- parsing ---- */

/* The error names the character and quotes the schedule, printable and at most 40
 * characters of it, so a binary or huge value cannot flood a log line. */
static int perr(char *err, size_t n, const char *text, const char *at, const char *what)
{
    char quoted[48 * 4];
    size_t q = 0;
    for (const char *p = text; *p && p - text < 40; p++) {
        unsigned char c = (unsigned char)*p;
        q += (size_t)snprintf(quoted + q, sizeof(quoted) - q,
                              c >= 0x20 && c < 0x7f && c != '"' ? "%c" : "\\x%02x", c);
    }
    if (strlen(text) > 40)
        snprintf(quoted + q, sizeof(quoted) - q, "...");
    if (err && n)
        snprintf(err, n, "reset schedule \"%s\", at character %d: expected %s", quoted,
                 (int)(at - text) + 1, what);
    return -EINVAL;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* "HH:MM" or ":MM" (minute_only). */
static const char *parse_hhmm(const char *p, int *h, int *m, int minute_only)
{
    char *end;
    *h = 0;
    if (!minute_only) {
        if (!isdigit((unsigned char)*p))
            return NULL;
        long v = strtol(p, &end, 10);
        if (v < 0 || v > 23 || *end != ':')
            return NULL;
        *h = (int)v;
        p = end;
    }
    if (*p != ':' || !isdigit((unsigned char)p[1]))
        return NULL;
    long v = strtol(p + 1, &end, 10);
    if (v < 0 || v > 59)
        return NULL;
    *m = (int)v;
    return end;
}

static const char *word(const char *p, const char *w)
{
    size_t n = strlen(w);
    return strncasecmp(p, w, n) == 0 && !isalpha((unsigned char)p[n]) ? p + n : NULL;
}

int rota_parse_duration(const char *text, uint64_t *ns)
{
    static const struct {
        const char *u;
        uint64_t mul;
    } units[] = {{"ms", 1000000ull},      {"s", 1000000000ull},     {"m", 60000000000ull},
                 {"h", 3600000000000ull}, {"d", 86400000000000ull}, {"w", 604800000000000ull}};
    if (!text || !ns || !*text)
        return -EINVAL;
    const char *p = text;
    double total = 0;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -EINVAL;
        double v = strtod(p, &end);
        if (end == p || v < 0)
            return -EINVAL;
        p = end;
        size_t k = 0;
        for (; k < sizeof(units) / sizeof(units[0]); k++) {
            size_t l = strlen(units[k].u);
            if (strncmp(p, units[k].u, l) == 0 && !isalpha((unsigned char)p[l]))
                break;
        }
        if (k == sizeof(units) / sizeof(units[0]))
            return -EINVAL;
        total += v * (double)units[k].mul;
        p += strlen(units[k].u);
    }
    if (total > 1e18)
        return -ERANGE;
    *ns = (uint64_t)total;
    return 0;
}

int rota_quota_parse_reset(const char *text, struct rota_shm_reset *r, char *err, size_t n)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (!text || !r)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    const char *p = skip_ws(text), *q;
    int h = 0, m = 0;
    if ((q = word(p, "none"))) {
        r->kind = ROTA_RESET_NONE;
    } else if ((q = word(p, "minute")) || (q = word(p, "minutely"))) {
        r->kind = ROTA_RESET_MINUTE;
    } else if ((q = word(p, "hourly"))) {
        r->kind = ROTA_RESET_HOUR;
        p = skip_ws(q);
        if (*p && !(q = parse_hhmm(p, &h, &m, 1)))
            return perr(err, n, text, p, "\":MM\" after hourly");
        r->minute = (uint8_t)m;
    } else if ((q = word(p, "daily"))) {
        r->kind = ROTA_RESET_DAY;
        p = skip_ws(q);
        if (*p && !(q = parse_hhmm(p, &h, &m, 0)))
            return perr(err, n, text, p, "\"HH:MM\" after daily");
    } else if ((q = word(p, "weekly"))) {
        r->kind = ROTA_RESET_WEEK;
        p = skip_ws(q);
        int d = 0;
        while (d < 7 && !(q = word(p, days[d])))
            d++;
        if (d == 7) /* also accept full names: "sunday" */
            for (d = 0; d < 7 && strncasecmp(p, days[d], 3) != 0; d++)
                ;
        if (d == 7)
            return perr(err, n, text, p, "a weekday (sun, mon, ... sat)");
        r->wday = (uint8_t)d;
        while (isalpha((unsigned char)*p))
            p++;
        p = skip_ws(p);
        q = p;
        if (*p && !(q = parse_hhmm(p, &h, &m, 0)))
            return perr(err, n, text, p, "\"HH:MM\" after the weekday");
    } else if ((q = word(p, "monthly"))) {
        r->kind = ROTA_RESET_MONTH;
        r->mday = 1;
        p = skip_ws(q);
        q = p;
        if (isdigit((unsigned char)*p)) {
            char *end;
            long d = strtol(p, &end, 10);
            if (*end != ':') {
                if (d < 1 || d > 31)
                    return perr(err, n, text, p, "a day of the month, 1 to 31");
                r->mday = (uint8_t)d;
                p = skip_ws(end);
                q = p;
            }
        }
        if (*p && !(q = parse_hhmm(p, &h, &m, 0)))
            return perr(err, n, text, p, "\"HH:MM\"");
    } else if ((q = word(p, "rolling"))) {
        r->kind = ROTA_RESET_ROLLING;
        p = skip_ws(q);
        uint64_t ns;
        if (rota_parse_duration(p, &ns) || ns < 1000000000ull ||
            ns / 1000000000ull > UINT32_MAX)
            return perr(err, n, text, p, "a duration of at least 1s (30s, 5m, 5h, 7d)");
        r->period_s = (uint32_t)(ns / 1000000000ull);
        q = p + strlen(p);
    } else {
        return perr(err, n, text, p, "none, minute, hourly, daily, weekly, monthly or rolling");
    }
    r->hour = (uint8_t)h;
    r->minute = (uint8_t)m;
    q = skip_ws(q);
    if (*q)
        return perr(err, n, text, q, "the end of the schedule");
    return 0;
}
