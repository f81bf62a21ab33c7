/*
 * parse_generic.c - any JSON quota endpoint, read with the RFC 6901 pointers an account's
 * configuration names (rota_parse_opts), plus the status codes every HTTP API shares.
 *
 * DESIGN
 * A pure function (see parse.h), called by probe threads and by the report path. On a
 * 2xx answer (or an exec probe's output, status 0) the body is parsed once and each
 * configured pointer (used, limit, remaining, reset; any may be NULL) is resolved; the
 * figures found make one account-wide window named "quota" in the configured metric.
 * A figure is a JSON number or a string of decimal digits (a fraction is cut to its
 * whole part, except for ROTA_METRIC_FRACTION, whose figures are fractions of 1 stored in
 * millionths with limit 1000000). JSON numbers are decoded as doubles, so that one huge
 * integer elsewhere in the body does not spoil the document: figures are exact up to
 * 2^53 as numbers, and exact up to 2^64 - 1 as strings. A reset is epoch seconds, epoch
 * milliseconds when above 10^12, or an RFC 3339 string; 0 means "not said"; a fraction
 * is rounded up (rota_json_ns), never down, so a bucket is not thought full before it
 * is. A pointer that names nothing, or a value of the wrong type, is a problem; null is
 * "not said". Error answers are not searched for figures: 429 is a rate limit, 401
 * disables for auth, 402 disables for billing, 5xx is the provider's capacity, each with
 * the retry hints of its headers.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"

#define NS_PER_SEC  UINT64_C(1000000000)
#define NS_PER_MS   UINT64_C(1000000)
#define EPOCH_MS_AT UINT64_C(1000000000000) /* above: a reset in ms (10^12 s: year 33658) */
#define TOKEN_MAX   256

enum { FIG_USED, FIG_LIMIT, FIG_REMAINING, FIG_RESET, NFIG };

/* Resolve RFC 6901 pointer "ptr" in "doc". NULL when it names nothing; *bad is set when
 * the pointer itself is malformed. */
static json_t *resolve(json_t *doc, const char *ptr, bool *bad)
{
    *bad = false;
    if (*ptr == 0)
        return doc;
    if (*ptr != '/') {
        *bad = true;
        return NULL;
    }
    json_t *cur = doc;
    while (*ptr == '/' && cur) {
        char tok[TOKEN_MAX];
        size_t n = 0;
        for (ptr++; *ptr && *ptr != '/'; ptr++) {
            char c = *ptr;
            if (c == '~') {
                c = ptr[1] == '0' ? '~' : ptr[1] == '1' ? '/' : 0;
                if (!c) {
                    *bad = true;
                    return NULL;
                }
                ptr++;
            }
            if (n + 1 >= sizeof(tok)) {
                *bad = true;
                return NULL;
            }
            tok[n++] = c;
        }
        tok[n] = 0;
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, n);
        } else if (json_is_array(cur)) {
            /* an index: "0" or digits without a leading zero; "-" names nothing */
            size_t idx = 0;
            bool ok = n > 0 && (n == 1 || tok[0] != '0') && n < 10;
            for (size_t i = 0; ok && i < n; i++) {
                ok = tok[i] >= '0' && tok[i] <= '9';
                idx = idx * 10 + (size_t)(tok[i] - '0');
            }
            cur = ok ? json_array_get(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
    }
    return cur;
}

/* A decimal string ("123", "12.5") times "scale", the fraction cut below 1. */
static bool decimal_string(const char *s, uint64_t scale, uint64_t *v)
{
    uint64_t whole = 0, frac = 0, u = scale;
    bool any = false;
    for (; *s >= '0' && *s <= '9'; s++, any = true) {
        unsigned d = (unsigned)(*s - '0');
        if (whole > (UINT64_MAX - d) / 10)
            return false;
        whole = whole * 10 + d;
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, any = true) {
            u /= 10;
            frac += (uint64_t)(*s - '0') * u;
        }
    if (!any || *s || whole > UINT64_MAX / scale || whole * scale > UINT64_MAX - frac)
        return false;
    *v = whole * scale + frac;
    return true;
}

/* A figure (number or numeric string) times "scale" into *v. 1 read, 0 null, -1 bad.
 * Numbers are cut to whole units, or rounded to the nearest when scaled (0.29 of 1 is
 * 290000 millionths, not 289999). */
static int figure(json_t *j, uint64_t scale, uint64_t *v)
{
    if (json_is_null(j))
        return 0;
    if (json_is_string(j))
        return decimal_string(json_string_value(j), scale, v) ? 1 : -1;
    if (!json_is_number(j))
        return -1;
    double d = json_number_value(j) * (double)scale;
    if (!isfinite(d) || d < 0)
        return -1;
    if (scale > 1)
        d += 0.5; /* rounded by the cut below */
    if (d >= 18446744073709551616.0)
        return -1;
    *v = (uint64_t)d;
    return 1;
}

/* An epoch count "j" (a number, or a string of decimal digits) into ns, rounded up, never
 * down: seconds, or ms when the count is above 10^12. 1 read, 0 when it is 0 ("not
 * said"), -1 when it is not a count or does not fit. */
static int epoch_of(json_t *j, int64_t *ns)
{
    uint64_t milli, v;
    if (rota_json_ns(j, 1000, &milli) != 0) /* in thousandths: seconds or ms? */
        return -1;
    if (milli == 0)
        return 0;
    uint64_t unit = milli > UINT64_C(1000) * EPOCH_MS_AT ? NS_PER_MS : NS_PER_SEC;
    if (rota_json_ns(j, unit, &v) != 0 || v > INT64_MAX)
        return -1;
    *ns = (int64_t)v;
    return 1;
}

/* A reset: epoch number, numeric string, or RFC 3339. 1 read, 0 not said, -1 bad. */
static int reset_of(json_t *j, int64_t *ns)
{
    if (json_is_null(j))
        return 0;
    if (rota_json_instant(j, ns) == 0) /* never a string of digits */
        return 1;
    return epoch_of(j, ns);
}

static void read_body(const struct rota_http_in *in, const struct rota_parse_opts *o,
                      uint8_t metric, struct rota_obs *out)
{
    const char *ptrs[NFIG] = {o->used_ptr, o->limit_ptr, o->remaining_ptr, o->reset_ptr};
    static const char *const names[NFIG] = {"used", "limit", "remaining", "reset"};
    if (!ptrs[0] && !ptrs[1] && !ptrs[2] && !ptrs[3])
        return;
    json_error_t jerr;
    json_t *doc = in->body && in->body_len
                      ? json_loadb(in->body, in->body_len,
                                   JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY, &jerr)
                      : NULL;
    if (!doc) {
        rota_obs_problem(out, "body: not JSON: %s", in->body_len ? jerr.text : "empty");
        return;
    }
    uint64_t scale = metric == ROTA_METRIC_FRACTION ? 1000000 : 1, v[NFIG] = {0};
    int64_t reset_at = 0;
    bool has[NFIG] = {false}, any = false;
    for (int f = 0; f < NFIG; f++) {
        if (!ptrs[f])
            continue;
        bool bad;
        json_t *j = resolve(doc, ptrs[f], &bad);
        int rc = !j ? -2 : f == FIG_RESET ? reset_of(j, &reset_at) : figure(j, scale, &v[f]);
        if (rc == -2)
            rota_obs_problem(out, "%s pointer \"%.60s\": %s", names[f], ptrs[f],
                             bad ? "not an RFC 6901 pointer" : "names nothing in the body");
        else if (rc < 0)
            rota_obs_problem(out, "body: %.60s: not a %s", ptrs[f],
                             f == FIG_RESET ? "reset instant" : "non-negative figure");
        else if (rc == 1 && metric == ROTA_METRIC_FRACTION && f != FIG_RESET && v[f] > 1000000)
            rota_obs_problem(out, "body: %.60s: a fraction above 1", ptrs[f]);
        else
            has[f] = rc == 1;
        any |= has[f];
    }
    json_decref(doc);
    if (!any)
        return;
    struct rota_obs_window *w = rota_obs_window_add(out, "", "quota", metric);
    if (!w)
        return;
    w->has_used = has[FIG_USED];
    w->used = v[FIG_USED];
    w->has_limit = has[FIG_LIMIT] || metric == ROTA_METRIC_FRACTION;
    w->limit = metric == ROTA_METRIC_FRACTION ? 1000000 : v[FIG_LIMIT];
    w->has_remaining = has[FIG_REMAINING];
    w->remaining = v[FIG_REMAINING];
    w->reset_at = has[FIG_RESET] ? reset_at : 0;
}

static void read_status(const struct rota_http_in *in, struct rota_obs *out)
{
    int st = in->status;
    if (st == 429) {
        out->cause = ROTA_CAUSE_RATE;
        rota_obs_detail(out, "429 rate limit");
    } else if (st == 401) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        rota_obs_detail(out, "401 key refused");
    } else if (st == 402) {
        out->cause = ROTA_CAUSE_BILLING;
        out->disable = true;
        rota_obs_detail(out, "402 payment required");
    } else if (st >= 500 && st < 600) {
        out->cause = ROTA_CAUSE_CAPACITY;
        rota_obs_detail(out, "%d provider unavailable", st);
    }
    if (out->cause && !out->disable)
        out->retry_at = rota_http_retry_at(in, out);
}

int rota_parse_generic(const struct rota_http_in *in, const struct rota_parse_opts *o,
                       struct rota_obs *out)
{
    rota_obs_init(out);
    if (!in)
        return 0;
    if (in->status >= 200 && in->status < 300)
        out->reachable = true;
    if (o && (in->status == 0 || out->reachable)) {
        uint8_t metric = o->metric;
        if (metric > ROTA_METRIC_FRACTION) {
            rota_obs_problem(out, "opts: metric %u unknown, counting requests", metric);
            metric = ROTA_METRIC_REQUESTS;
        }
        read_body(in, o, metric, out);
    }
    read_status(in, out);
    if (out->nwin || out->cause || out->retry_at || out->disable)
        return 1;
    return out->problems ? -EINVAL : 0;
}
