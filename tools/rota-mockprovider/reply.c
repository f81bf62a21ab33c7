/*
 * reply.c - rota-mockprovider's replies and the time formats providers speak: Go
 * durations ("1h2m3.5s"), seconds with a fraction ("34.4s"), RFC 3339 instants, and the
 * window lengths of the config ("1m", "7d").
 *
 * DESIGN
 * Pure functions and a reply builder; no shared state, so any connection thread may call
 * them with or without mock.lock. A reply owns its body (malloc'd); headers are copied
 * into the reply's fixed table and a header that does not fit is dropped, which an
 * assertion says never happens with the headers the modules send.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mock.h"

/* Set "r"'s status and body to "v" serialized compactly; takes "v". An unserializable
 * value (out of memory) leaves an empty body. */
void mock_reply_json(struct mock_reply *r, int status, json_t *v)
{
    free(r->body);
    r->status = status;
    r->body =
        v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(v);
}

/* Add header "name" with a printf-formatted value to "r". */
void mock_reply_header(struct mock_reply *r, const char *name, const char *fmt, ...)
{
    assert(r->nheaders < MOCK_HEADERS_MAX);
    if (r->nheaders == MOCK_HEADERS_MAX)
        return;
    struct mock_header *h = &r->headers[r->nheaders++];
    snprintf(h->name, sizeof(h->name), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->value, sizeof(h->value), fmt, ap);
    va_end(ap);
}

/* Remove every header "name" (ASCII case-insensitive) from "r". */
void mock_reply_unheader(struct mock_reply *r, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) != 0)
            r->headers[k++] = r->headers[i];
    r->nheaders = k;
}

/* Seconds and milliseconds as "S" or "S.f" with trailing zeros dropped. */
static int fraction(char *buf, size_t n, int64_t ms)
{
    int64_t s = ms / 1000, f = ms % 1000;
    if (f == 0)
        return snprintf(buf, n, "%lld", (long long)s);
    if (f % 100 == 0)
        return snprintf(buf, n, "%lld.%lld", (long long)s, (long long)(f / 100));
    if (f % 10 == 0)
        return snprintf(buf, n, "%lld.%02lld", (long long)s, (long long)(f / 10));
    return snprintf(buf, n, "%lld.%03lld", (long long)s, (long long)f);
}

/* "ms" as Go prints a time.Duration: "0s", "20ms", "1.78s", "6m0s", "149h50m20.17s". */
void mock_go_duration(char *buf, size_t n, int64_t ms)
{
    if (ms <= 0) {
        snprintf(buf, n, "0s");
        return;
    }
    if (ms < 1000) {
        snprintf(buf, n, "%lldms", (long long)ms);
        return;
    }
    int64_t h = ms / 3600000, m = ms / 60000 % 60, rest = ms % 60000;
    char sec[32];
    fraction(sec, sizeof(sec), rest);
    if (h)
        snprintf(buf, n, "%lldh%lldm%ss", (long long)h, (long long)m, sec);
    else if (m)
        snprintf(buf, n, "%lldm%ss", (long long)m, sec);
    else
        snprintf(buf, n, "%ss", sec);
}

/* "ms" as Google's Duration JSON: "25s", "34.4s". */
void mock_seconds(char *buf, size_t n, int64_t ms)
{
    char sec[32];
    fraction(sec, sizeof(sec), ms < 0 ? 0 : ms);
    snprintf(buf, n, "%ss", sec);
}

/* Whole seconds, rounded up, never below 1: what a retry-after says. */
int64_t mock_ceil_s(int64_t ms)
{
    return ms <= 1000 ? 1 : (ms + 999) / 1000;
}

/* The wall-clock instant "ms" as "2025-08-21T12:40:59Z" (with ".000" if "millis"). */
void mock_rfc3339(char *buf, size_t n, int64_t ms, bool millis)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[40];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    if (millis)
        snprintf(buf, n, "%s.%03dZ", day, (int)(ms % 1000));
    else
        snprintf(buf, n, "%sZ", day);
}

/* Parse an RFC 3339 instant ("2026-04-01T00:00:00Z", "...T00:00:00.5+02:00") into
 * wall-clock milliseconds in "ms". Returns 0 or -EINVAL. */
int mock_parse_rfc3339(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    int64_t frac = 0, scale = 100;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    int64_t offset = 0;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6)
            return -EINVAL;
        offset = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
    } else if ((*p != 'Z' && *p != 'z') || p[1]) {
        return -EINVAL;
    }
    *ms = ((int64_t)timegm(&tm) - offset) * 1000 + frac;
    return 0;
}

/* Parse a window length: a positive number and a unit (ms, s, m, h, d, w), e.g. "1m",
 * "30s", "7d", "1.5h". Returns 0 with the length in "ms", or -EINVAL. */
int mock_parse_window(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1},    {"s", 1e3},    {"m", 6e4},
                 {"h", 3.6e6}, {"d", 8.64e7}, {"w", 6.048e8}};
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0))
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].unit) == 0) {
            double total = v * units[i].ms;
            if (total < 1 || total > 4e12)
                return -EINVAL;
            *ms = (int64_t)total;
            return 0;
        }
    return -EINVAL;
}
