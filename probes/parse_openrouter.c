/*
 * parse_openrouter.c - OpenRouter: a key's credit limit from GET /api/v1/key (and the
 * account's from /api/v1/credits), and what its 402s and 429s say.
 *
 * DESIGN
 * A pure function of one answer, callable from any thread (see parse.h). The shape is
 * told by the body: an "error" object (also inside an HTTP 200, where a stream that had
 * started reports its failure, possibly as a server-sent "data:" event) is read as its
 * code says; "data" with the key's fields is a CREDITS window. Credit amounts are
 * dollars in the API and micro-dollars here (multiplied by 1e6 and rounded), so a window
 * holds whole numbers without losing cents. The window's "used" is limit - remaining when
 * both are said (limit_remaining already counts only the current period), else the
 * period's usage_* (or all-time usage). A limit_reset period ends at midnight UTC
 * (weeks start on Monday). A 429's error.metadata.headers carry X-RateLimit-* figures,
 * Reset in epoch milliseconds (a fraction rounded up, never down); a 429 from the
 * upstream provider (metadata.provider_name, no figures) is capacity, not the key's
 * limit. 402 disables for billing; 401 for auth. The JSON tree lives only during the
 * call.
 */
#include <errno.h>
#include <strings.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"
#include "tz.h"

#define NS_PER_SEC    INT64_C(1000000000)
#define NS_PER_MS     UINT64_C(1000000)
#define MICRO         1e6                           /* micro-dollars per dollar */
#define QUOTA_WAIT_NS (INT64_C(300) * NS_PER_SEC)   /* a longer wait is a quota, not a rate */
#define STALE_NS      (INT64_C(86400) * NS_PER_SEC) /* a reset this far back is not one */

/* ---- JSON ---- */

/* The first server-sent "data:" event of "body" that holds an "error" object; NULL when
 * none. Each line is parsed on its own, so the work stays linear in the body. */
static json_t *sse_error(const char *body, size_t len)
{
    for (const char *p = body, *end = body + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if (eol - p > 5 && memcmp(p, "data:", 5) == 0) {
            json_t *j = json_loadb(p + 5, (size_t)(eol - p - 5), 0, NULL);
            if (json_is_object(json_object_get(j, "error")))
                return j;
            json_decref(j);
        }
        p = nl ? nl + 1 : end;
    }
    return NULL;
}

/* The body as JSON into *root, as rota_json_body reads it ("want": how much it must be
 * JSON), except that a body not starting with '{' or '[' (a NUL byte included) may be a
 * stream whose error came as a server-sent event, and is otherwise no JSON to look for
 * unless "want" is ROTA_JSON_WANT_ALWAYS. */
static int load_body(const struct rota_http_in *in, enum rota_json_want want,
                     struct rota_obs *out, json_t **root)
{
    const char *start = rota_json_body_start(in);
    size_t len = in->body_len < ROTA_PARSE_MAX_BODY ? in->body_len : ROTA_PARSE_MAX_BODY;
    if (start && *start != '{' && *start != '[') {
        /* no JSON document: maybe an event stream; a problem only if JSON was a must */
        if ((*root = sse_error(in->body, len)) || want != ROTA_JSON_WANT_ALWAYS)
            return 0;
    }
    return rota_json_body(in, want, out, root);
}

/* Dollars (a JSON number) as micro-dollars, rounded. 0, or -EINVAL when not a number or
 * out of range; -ERANGE when negative (into *x as its magnitude). */
static int json_micro(const json_t *v, uint64_t *x)
{
    double d = json_number_value(v) * MICRO, a = (d < 0 ? -d : d) + 0.5; /* rounded */
    if (!json_is_number(v) || !(a < 18446744073709551616.0))
        return -EINVAL;
    *x = (uint64_t)a;
    return d < 0 && *x ? -ERANGE : 0;
}

/* ---- GET /api/v1/key and /api/v1/credits ---- */

/* The end of the current "daily", "weekly" or "monthly" period after "now" (midnight UTC,
 * weeks from Monday); 0 with a problem for another word. */
static int64_t period_end(const char *period, int64_t now, struct rota_obs *out)
{
    int64_t day = now / NS_PER_SEC / 86400, next;
    int y, m, d;
    if (strcmp(period, "daily") == 0) {
        next = day + 1;
    } else if (strcmp(period, "weekly") == 0) {
        int to_monday = (8 - rota_weekday(day)) % 7;
        next = day + (to_monday ? to_monday : 7);
    } else if (strcmp(period, "monthly") == 0) {
        rota_civil_from_days(day, &y, &m, &d);
        next = rota_days_from_civil(y, m + 1, 1);
    } else {
        rota_obs_problem(out, "data.limit_reset: unknown period \"%.20s\"", period);
        return 0;
    }
    if (now <= 0 || next > INT64_MAX / NS_PER_SEC / 86400)
        return 0;
    return next * 86400 * NS_PER_SEC;
}

/* Field "name" of "data" as micro-dollars into *x; false when absent, null or malformed
 * (a problem counted), "null_ok" saying whether null is expected. Negative amounts are
 * read as 0 into *x, with *neg set. */
static bool amount(json_t *data, const char *name, bool null_ok, uint64_t *x, bool *neg,
                   struct rota_obs *out)
{
    json_t *v = json_object_get(data, name);
    if (!v || (null_ok && json_is_null(v)))
        return false;
    int rc = json_micro(v, x);
    if (rc == -ERANGE && neg) {
        *neg = true;
        *x = 0;
        return true;
    }
    if (rc != 0) {
        rota_obs_problem(out, "data.%s: not an amount of dollars", name);
        return false;
    }
    return true;
}

static int read_key(const struct rota_http_in *in, json_t *data, struct rota_obs *out)
{
    uint64_t limit = 0, rem = 0, used = 0;
    bool overdrawn = false;
    bool has_limit = amount(data, "limit", true, &limit, NULL, out);
    bool has_rem = amount(data, "limit_remaining", true, &rem, &overdrawn, out);
    json_t *jr = json_object_get(data, "limit_reset"),
           *jf = json_object_get(data, "is_free_tier");
    const char *period = json_string_value(jr);
    if (jr && !period && !json_is_null(jr))
        rota_obs_problem(out, "data.limit_reset: not a string");
    char usage_name[32] = "usage";
    if (period && strlen(period) < 16)
        snprintf(usage_name, sizeof(usage_name), "usage_%s", period);
    bool has_used = has_limit && has_rem;
    if (has_used)
        used = rem < limit ? limit - rem : 0;
    else
        has_used = amount(data, json_object_get(data, usage_name) ? usage_name : "usage", false,
                          &used, NULL, out);
    if (jf && !json_is_boolean(jf))
        rota_obs_problem(out, "data.is_free_tier: not a boolean");
    if (json_is_true(jf))
        rota_obs_detail(out, "free tier");
    if (!json_object_get(data, "limit") || json_is_null(json_object_get(data, "limit")))
        rota_obs_detail(out, "no credit limit");
    if (!has_limit && !has_rem && !has_used)
        return 0;
    struct rota_obs_window *w = rota_obs_window_add(out, "", "credits", ROTA_METRIC_CREDITS);
    if (!w)
        return 1;
    *w = (struct rota_obs_window){.metric = ROTA_METRIC_CREDITS,
                                  .has_limit = has_limit,
                                  .has_remaining = has_rem,
                                  .has_used = has_used,
                                  .limit = limit,
                                  .remaining = rem,
                                  .used = used};
    snprintf(w->what, sizeof(w->what), "credits");
    if (period && has_limit)
        w->reset_at = period_end(period, in->now, out);
    if (overdrawn)
        rota_obs_detail(out, "credit limit overdrawn");
    else if (has_limit && has_rem)
        rota_obs_detail(out, "%llu of %llu micro-dollars left", (unsigned long long)rem,
                        (unsigned long long)limit);
    return 1;
}

/* /api/v1/credits: what the account bought and spent, over all keys. */
static int read_credits(json_t *data, struct rota_obs *out)
{
    uint64_t total, spent;
    bool has_total = amount(data, "total_credits", false, &total, NULL, out);
    bool has_spent = amount(data, "total_usage", false, &spent, NULL, out);
    if (!has_total && !has_spent)
        return 0;
    struct rota_obs_window *w =
        rota_obs_window_add(out, "", "account-credits", ROTA_METRIC_CREDITS);
    if (!w)
        return 1;
    w->has_limit = has_total;
    w->limit = has_total ? total : 0;
    w->has_used = has_spent;
    w->used = has_spent ? spent : 0;
    w->has_remaining = has_total && has_spent;
    w->remaining = w->has_remaining && spent < total ? total - spent : 0;
    return 1;
}

/* ---- errors ---- */

/* X-RateLimit figure "name" from the error's metadata.headers (any case), else from the
 * answer's own headers: a count, or with a "unit" a time of that many ns each, into ns
 * rounded up (a reset in ms may carry a fraction). 1 when found, 0 when absent, -EINVAL
 * (a problem) when malformed. */
static int rl_figure(const struct rota_http_in *in, json_t *hdrs, const char *name,
                     uint64_t unit, uint64_t *v, struct rota_obs *out)
{
    const char *key;
    json_t *val;
    json_object_foreach(hdrs, key, val)
    {
        if (strcasecmp(key, name) != 0)
            continue;
        if ((unit ? rota_json_ns(val, unit, v) : rota_json_u64(val, v)) == 0)
            return 1;
        rota_obs_problem(out, "error.metadata.headers.%s: not a count", name);
        return -EINVAL;
    }
    char buf[32];
    if (!hdrs && rota_http_header(in, name, buf, sizeof(buf)) >= 0) {
        if ((unit ? rota_parse_decimal_ns(buf, unit, v) : rota_parse_u64(buf, v)) == 0)
            return 1;
        rota_obs_problem(out, "%s: not a count: \"%.30s\"", name, buf);
        return -EINVAL;
    }
    return 0;
}

/* The bucket a message names: "Rate limit exceeded: free-models-per-day. ..." */
static void bucket_name(const char *msg, char *what, size_t cap)
{
    const char *p = msg ? strstr(msg, "limit exceeded: ") : NULL;
    size_t n = 0;
    if (p)
        for (p += strlen("limit exceeded: ");
             n + 1 < cap && (*p == '-' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'));
             p++)
            what[n++] = *p;
    what[n] = 0;
    if (n == 0)
        snprintf(what, cap, "requests");
}

static int on_429(const struct rota_http_in *in, json_t *err, struct rota_obs *out)
{
    json_t *meta = json_object_get(err, "metadata");
    json_t *hdrs = json_object_get(meta, "headers");
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (hdrs && !json_is_object(hdrs)) {
        rota_obs_problem(out, "error.metadata.headers: not an object");
        hdrs = NULL;
    }
    out->cause = ROTA_CAUSE_RATE;
    const char *provider = json_string_value(json_object_get(meta, "provider_name"));
    if (!hdrs && provider) { /* the upstream provider's limit, shared by everyone */
        out->cause = ROTA_CAUSE_CAPACITY;
        out->retry_at = rota_http_retry_at(in, out);
        rota_obs_detail(out, "rate limited upstream by %.40s", provider);
        return 1;
    }
    uint64_t limit, rem, reset_ns;
    int hl = rl_figure(in, hdrs, "X-RateLimit-Limit", 0, &limit, out);
    int hr = rl_figure(in, hdrs, "X-RateLimit-Remaining", 0, &rem, out);
    int hz = rl_figure(in, hdrs, "X-RateLimit-Reset", NS_PER_MS, &reset_ns, out);
    int64_t reset = 0;
    if (hz == 1 && (reset_ns == 0 || reset_ns > INT64_MAX))
        rota_obs_problem(out, "X-RateLimit-Reset: not an instant in ms: %llu",
                         (unsigned long long)(reset_ns / NS_PER_MS));
    else if (hz == 1 && (reset = (int64_t)reset_ns) < in->now && in->now - reset > STALE_NS)
        rota_obs_problem(out, "X-RateLimit-Reset: a day or more in the past"), reset = 0;
    char what[32];
    bucket_name(msg, what, sizeof(what));
    if (hl == 1 || hr == 1 || reset) {
        struct rota_obs_window *w = rota_obs_window_add(out, "", what, ROTA_METRIC_REQUESTS);
        if (w) {
            w->has_limit = hl == 1;
            w->limit = hl == 1 ? limit : 0;
            w->has_remaining = hr == 1;
            w->remaining = hr == 1 ? rem : 0;
            w->reset_at = reset;
        }
    }
    out->retry_at = reset > in->now ? reset : rota_http_retry_at(in, out);
    if (strstr(what, "per-day") || (out->retry_at && out->retry_at - in->now > QUOTA_WAIT_NS))
        out->cause = ROTA_CAUSE_QUOTA;
    rota_obs_detail(out, "%s: %s",
                    out->cause == ROTA_CAUSE_QUOTA ? "quota used up" : "rate limited", what);
    if (out->retry_at)
        rota_obs_detail(out, "retry in %llds",
                        (long long)rota_ns_secs_up(out->retry_at - in->now));
    return 1;
}

/* The status an answer stands for: an error inside a 200 (or an exec probe's output)
 * speaks with its own code; a word for a code ("server_error") is the provider's. */
static int status_of(const struct rota_http_in *in, json_t *err, struct rota_obs *out)
{
    int status = rota_json_status(in, err);
    if (status >= 0)
        return status;
    if (!json_is_string(json_object_get(err, "code")))
        rota_obs_problem(out, "error.code: not an HTTP status");
    return 500;
}

static int on_error(const struct rota_http_in *in, int status, json_t *err,
                    struct rota_obs *out)
{
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (status == 429)
        return on_429(in, err, out);
    if (status == 402 || (status == 403 && msg && strstr(msg, "limit"))) {
        out->cause = ROTA_CAUSE_BILLING; /* out of credits, or the key's limit reached */
        out->disable = true;
        rota_obs_detail(out, "out of credits (HTTP %d)", status);
    } else if (status == 401) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        rota_obs_detail(out, "key refused");
    } else if (status >= 500 && status <= 599) {
        out->cause = ROTA_CAUSE_CAPACITY;
        out->retry_at = rota_http_retry_at(in, out);
        rota_obs_detail(out, "provider unavailable (HTTP %d)", status);
    } else {
        return 0; /* 400, 403 moderation, 404, 408: the request's own fault */
    }
    return 1;
}

int rota_parse_openrouter(const struct rota_http_in *in, const struct rota_parse_opts *o,
                          struct rota_obs *out)
{
    (void)o;
    rota_obs_init(out);
    json_t *root;
    /* a 429's or an exec probe's body must be JSON; another answer's only when it starts
     * like JSON (a proxy's HTML 503 is no problem) */
    bool strict = in->status == 0 || in->status == 429;
    enum rota_json_want want = strict ? ROTA_JSON_WANT_ALWAYS : ROTA_JSON_WANT_IF_LIKE;
    int lrc = load_body(in, want, out, &root), rc = 0;
    json_t *err = json_object_get(root, "error"), *data = json_object_get(root, "data");
    if (err && !json_is_object(err)) {
        rota_obs_problem(out, "error: not an object");
        err = NULL;
        lrc = -EINVAL;
    }
    int status = status_of(in, err, out);
    if (err || (status != 0 && (status < 200 || status > 299))) {
        rc = on_error(in, status, err, out);
        if (status == 429 && !err && lrc == 0) {
            rota_obs_problem(out, "body: no error object in a 429");
            lrc = -EINVAL;
        }
    } else if (json_object_get(data, "total_credits") || json_object_get(data, "total_usage")) {
        out->reachable = true; /* the key worked, whoever ran the request */
        rc = read_credits(data, out);
    } else if (json_object_get(data, "limit") || json_object_get(data, "limit_remaining")) {
        out->reachable = true;
        rc = read_key(in, data, out);
    } else if (data && !json_is_object(data) && !json_is_array(data) && !json_is_null(data)) {
        rota_obs_problem(out, "data: not an object"); /* an array is a listing: no quota */
        lrc = -EINVAL;
    } else {
        out->reachable = status != 0;
    }
    json_decref(root);
    return lrc == -EINVAL ? -EINVAL : rc;
}
