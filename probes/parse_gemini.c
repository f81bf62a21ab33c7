/*
 * parse_gemini.c - the Google Gemini API (generativelanguage.googleapis.com): what its
 * 429s, auth refusals and overload answers say about an API key.
 *
 * DESIGN
 * A pure function of one answer, callable from any thread (see parse.h). Gemini has no
 * quota-status endpoint, so everything is learned from errors: a 429 RESOURCE_EXHAUSTED
 * body carries error.details[] in any order, of which QuotaFailure (one window per
 * violation: pool = quotaDimensions.model, limit = quotaValue, remaining 0) and RetryInfo
 * (retryDelay) matter; Help and unknown types are ignored. Without RetryInfo the message
 * text ("Please retry in 25.08s.") and then Retry-After stand in. The cause is QUOTA when
 * a violated quota is per day, its limit is 0 (no access to the model on this tier) or
 * the delay exceeds 300 s; otherwise RATE, a per-minute quota without any hint waiting
 * 60 s. Per-day quotas reset at midnight Pacific time (Google's documentation), so a
 * day's exhaustion waits until then, never less than the retry delay. 401, 403 and a 400
 * refusing the key disable the account; 5xx is the provider's capacity. Errors may come
 * wrapped in a one-element array (streamed answers). The JSON tree lives only during the
 * call.
 */
#include <errno.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"
#include "tz.h"

#define NS_PER_SEC     INT64_C(1000000000)
#define DAILY_DELAY_NS (UINT64_C(300) * 1000000000u) /* a longer delay means a day's quota */
#define MINUTE_WAIT_NS (UINT64_C(60) * 1000000000u)

enum period { P_OTHER, P_MINUTE, P_DAY };

/* What a 429's details said, gathered before the windows' resets are known. */
struct hints {
    bool have_delay;
    uint64_t delay_ns;
    bool daily, minute, zero; /* some violation was per day, per minute, of limit 0 */
    uint32_t first_win;       /* windows from here on came from violations */
    enum period period[ROTA_OBS_WINDOWS];
};

/* ---- JSON ---- */

/* How much a body must be JSON: a 429's or an exec probe's must; another answer's only
 * when it starts like JSON (a proxy's HTML 503 is no problem); a success's never. */
static enum rota_json_want want_of(int status)
{
    if (status == 429 || status == 0)
        return ROTA_JSON_WANT_ALWAYS;
    return status >= 200 && status <= 299 ? ROTA_JSON_WANT_NONE : ROTA_JSON_WANT_IF_LIKE;
}

/* ---- time ---- */

/* Is the UTC instant "t" (seconds) in Pacific daylight time? US rules since 2007: from the
 * second Sunday of March, 02:00 PST (10:00 UTC), to the first Sunday of November, 02:00
 * PDT (09:00 UTC). The year is the UTC one: no switch is near a year's end. */
static bool pacific_dst(int64_t t)
{
    int y, m, d;
    rota_civil_from_days(t / 86400, &y, &m, &d);
    int64_t mar1 = rota_days_from_civil(y, 3, 1), nov1 = rota_days_from_civil(y, 11, 1);
    int64_t start = mar1 + (7 - rota_weekday(mar1)) % 7 + 7;
    int64_t end = nov1 + (7 - rota_weekday(nov1)) % 7;
    return t >= start * 86400 + 10 * 3600 && t < end * 86400 + 9 * 3600;
}

/* The next midnight in Pacific time after "now" (ns), when Gemini's daily quotas reset;
 * 0 when "now" is not a plausible instant. */
static int64_t next_pacific_midnight(int64_t now)
{
    if (now < 8 * 3600 * NS_PER_SEC || now / NS_PER_SEC > INT64_MAX / NS_PER_SEC - 3 * 86400)
        return 0;
    int64_t s = now / NS_PER_SEC;
    int64_t local = s - (pacific_dst(s) ? 7 : 8) * 3600;
    int64_t day = local / 86400 + 1; /* the next local date (local > 0 past 1970-01-01) */
    /* its midnight is 07:00 or 08:00 UTC, hours before either switch (09:00, 10:00 UTC),
     * so asking at 08:00 UTC tells which offset it has */
    int64_t mid = day * 86400 + (pacific_dst(day * 86400 + 8 * 3600) ? 7 : 8) * 3600;
    return mid * NS_PER_SEC;
}

/* ---- 429 details ---- */

static enum period period_of(const char *id, const char *metric)
{
    if (strstr(id, "PerDay") || strstr(metric, "per_day"))
        return P_DAY;
    if (strstr(id, "PerMinute") || strstr(metric, "per_minute"))
        return P_MINUTE;
    return P_OTHER;
}

/* A short bucket name from a quota id ("GenerateContentInputTokensPerModelPerMinute")
 * and metric: "input-tokens-per-minute", "requests-per-day", ...; its metric too. */
static uint8_t bucket_name(const char *id, const char *metric, enum period p, char *what,
                           size_t cap)
{
    bool tokens = strstr(id, "Token") || strstr(metric, "token");
    bool input = strstr(id, "Input") || strstr(metric, "input");
    snprintf(what, cap, "%s%s", tokens ? (input ? "input-tokens" : "tokens") : "requests",
             p == P_DAY      ? "-per-day"
             : p == P_MINUTE ? "-per-minute"
                             : "");
    return tokens ? ROTA_METRIC_TOKENS : ROTA_METRIC_REQUESTS;
}

static void read_violation(json_t *v, size_t i, struct hints *h, struct rota_obs *out)
{
    if (!json_is_object(v)) {
        rota_obs_problem(out, "QuotaFailure.violations[%zu]: not an object", i);
        return;
    }
    const char *id = json_string_value(json_object_get(v, "quotaId"));
    const char *metric = json_string_value(json_object_get(v, "quotaMetric"));
    json_t *dims = json_object_get(v, "quotaDimensions");
    json_t *jmodel = json_object_get(dims, "model");
    const char *model = json_string_value(jmodel);
    if (!id && !metric) {
        rota_obs_problem(out, "QuotaFailure.violations[%zu]: no quotaId or quotaMetric", i);
        return;
    }
    if ((dims && !json_is_object(dims)) || (jmodel && !model)) {
        rota_obs_problem(out,
                         "QuotaFailure.violations[%zu]: quotaDimensions.model not a "
                         "string",
                         i);
        model = NULL;
    }
    if (model && strlen(model) >= sizeof(out->win[0].pool)) {
        rota_obs_problem(out, "QuotaFailure.violations[%zu]: model name too long", i);
        return;
    }
    enum period p = period_of(id ? id : "", metric ? metric : "");
    char what[32];
    uint8_t m = bucket_name(id ? id : "", metric ? metric : "", p, what, sizeof(what));
    struct rota_obs_window *w = rota_obs_window_add(out, model ? model : "", what, m);
    if (!w)
        return;
    h->period[out->nwin - 1] = p;
    h->daily |= p == P_DAY;
    h->minute |= p == P_MINUTE;
    w->has_remaining = true; /* the violated quota is used up */
    json_t *jv = json_object_get(v, "quotaValue");
    uint64_t limit;
    if (jv && rota_json_u64(jv, &limit) == 0) {
        w->has_limit = true;
        w->limit = limit;
        h->zero |= limit == 0;
        if (limit == 0)
            rota_obs_detail(out, "no access to %s on this tier", model ? model : "the model");
    } else if (jv) {
        rota_obs_problem(out, "QuotaFailure.violations[%zu].quotaValue: not a count", i);
    }
    rota_obs_detail(out, "%.60s%s%.40s", id ? id : metric, model ? " " : "",
                    model ? model : "");
}

static void read_quota_failure(json_t *d, struct hints *h, struct rota_obs *out)
{
    json_t *vs = json_object_get(d, "violations");
    if (!json_is_array(vs)) {
        rota_obs_problem(out, "QuotaFailure.violations: not an array");
        return;
    }
    for (size_t i = 0; i < json_array_size(vs); i++)
        read_violation(json_array_get(vs, i), i, h, out);
}

static void read_retry_info(json_t *d, struct hints *h, struct rota_obs *out)
{
    const char *s = json_string_value(json_object_get(d, "retryDelay"));
    uint64_t ns;
    if (!s || rota_parse_go_duration(s, false, &ns) != 0) {
        rota_obs_problem(out, "RetryInfo.retryDelay: not a duration");
        return;
    }
    h->have_delay = true;
    h->delay_ns = ns;
}

/* The delay in a message's "Please retry in 25.08s." (any unit Go writes). */
static bool delay_in_message(const char *msg, uint64_t *ns)
{
    const char *p = msg ? strstr(msg, "retry in ") : NULL;
    if (!p)
        return false;
    p += strlen("retry in ");
    char tok[32];
    size_t n = 0;
    while (n + 1 < sizeof(tok) && ((*p >= '0' && *p <= '9') || *p == '.'))
        tok[n++] = *p++;
    while (n + 1 < sizeof(tok) && ((*p >= 'a' && *p <= 'z') || (unsigned char)*p >= 0x80))
        tok[n++] = *p++;
    tok[n] = 0;
    return rota_parse_go_duration(tok, false, ns) == 0;
}

/* Details first (RetryInfo may follow QuotaFailure), then the fall-backs. */
static void read_details(json_t *err, struct hints *h, struct rota_obs *out)
{
    json_t *ds = json_object_get(err, "details");
    if (ds && !json_is_array(ds))
        rota_obs_problem(out, "error.details: not an array");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < json_array_size(ds); i++) {
            json_t *d = json_array_get(ds, i);
            const char *type = json_string_value(json_object_get(d, "@type"));
            if (!type) {
                if (pass == 0)
                    rota_obs_problem(out, "error.details[%zu]: no @type", i);
                continue;
            }
            if (pass == 0 && rota_str_ends_with(type, "google.rpc.RetryInfo"))
                read_retry_info(d, h, out);
            else if (pass == 1 && rota_str_ends_with(type, "google.rpc.QuotaFailure"))
                read_quota_failure(d, h, out);
        }
        if (pass == 0)
            h->first_win = out->nwin;
    }
}

static int on_429(const struct rota_http_in *in, json_t *err, struct rota_obs *out)
{
    struct hints h = {0};
    out->cause = ROTA_CAUSE_RATE;
    read_details(err, &h, out);
    int64_t base = 0;
    if (!h.have_delay &&
        delay_in_message(json_string_value(json_object_get(err, "message")), &h.delay_ns))
        h.have_delay = true;
    if (h.have_delay) {
        base = rota_ns_after(in->now, h.delay_ns);
    } else if ((base = rota_http_retry_at(in, out)) != 0) {
        h.have_delay = true;
        h.delay_ns = (uint64_t)(base - in->now);
    } else if (h.minute && !h.daily) {
        base = rota_ns_after(in->now, MINUTE_WAIT_NS);
        rota_obs_detail(out, "per-minute quota without a hint: 60 s");
    }
    bool quota = h.daily || h.zero || (h.have_delay && h.delay_ns > DAILY_DELAY_NS);
    int64_t midnight = h.daily ? next_pacific_midnight(in->now) : 0;
    out->cause = quota ? ROTA_CAUSE_QUOTA : ROTA_CAUSE_RATE;
    out->retry_at = midnight > base ? midnight : base;
    for (uint32_t i = h.first_win; i < out->nwin; i++)
        out->win[i].reset_at = h.period[i] == P_DAY && midnight > base ? midnight : base;
    if (out->retry_at)
        rota_obs_detail(out, "%s: retry in %llds", quota ? "quota used up" : "rate limited",
                        (long long)rota_ns_secs_up(out->retry_at - in->now));
    else
        rota_obs_detail(out, "%s, no retry hint", quota ? "quota used up" : "rate limited");
    return 1;
}

/* Does a 400/403 body refuse the key itself (not the request)? */
static bool refuses_key(json_t *err)
{
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (msg && strstr(msg, "API key"))
        return true;
    json_t *ds = json_object_get(err, "details");
    for (size_t i = 0; i < json_array_size(ds); i++) {
        const char *r = json_string_value(json_object_get(json_array_get(ds, i), "reason"));
        if (r && (strstr(r, "API_KEY") || strcmp(r, "CONSUMER_SUSPENDED") == 0 ||
                  strcmp(r, "SERVICE_DISABLED") == 0))
            return true;
    }
    return false;
}

/* The status an answer stands for: an error inside a 200 (or an exec probe's output)
 * speaks with its own code. */
static int status_of(const struct rota_http_in *in, json_t *err, struct rota_obs *out)
{
    static const struct {
        const char *status;
        int code;
    } codes[] = {{"RESOURCE_EXHAUSTED", 429}, {"UNAUTHENTICATED", 401},
                 {"PERMISSION_DENIED", 403},  {"INVALID_ARGUMENT", 400},
                 {"UNAVAILABLE", 503},        {"INTERNAL", 500}};
    int status = rota_json_status(in, err);
    if (status >= 0)
        return status;
    const char *st = json_string_value(json_object_get(err, "status"));
    for (size_t i = 0; st && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(st, codes[i].status) == 0)
            return codes[i].code;
    rota_obs_problem(out, "error: neither a code nor a known status");
    return 500;
}

int rota_parse_gemini(const struct rota_http_in *in, const struct rota_parse_opts *o,
                      struct rota_obs *out)
{
    (void)o;
    rota_obs_init(out);
    json_t *root;
    int lrc = rota_json_body(in, want_of(in->status), out, &root);
    json_t *err = rota_json_error_of(root);
    int status = status_of(in, err, out), rc = 1;
    if (status >= 200 && status <= 299) {
        out->reachable = true;
        rc = 0;
    } else if (status == 429 && err) {
        rc = on_429(in, err, out);
    } else if (status == 429) {
        out->cause = ROTA_CAUSE_RATE;
        out->retry_at = rota_http_retry_at(in, out);
        rota_obs_detail(out, "rate limited, no error in the body");
        if (lrc == 0)
            rota_obs_problem(out, "body: no error object in a 429");
        lrc = -EINVAL;
    } else if (status == 401 || status == 403 || (status == 400 && refuses_key(err))) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        rota_obs_detail(out, "key refused (HTTP %d)", status);
    } else if (status >= 500 && status <= 599) {
        out->cause = ROTA_CAUSE_CAPACITY;
        out->retry_at = rota_http_retry_at(in, out);
        rota_obs_detail(out, "provider unavailable (HTTP %d)", status);
    } else {
        rc = 0; /* the request's own fault (400, 404, ...): nothing about the account */
    }
    json_decref(root);
    return lrc == -EINVAL ? -EINVAL : rc;
}
