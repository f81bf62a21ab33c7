/*
 * parse_anthropic.c - Anthropic's Messages API: rate-limit headers and error bodies into
 * quota observations.
 *
 * DESIGN
 * A pure function (see parse.h), called by probe threads on probe answers and by the
 * report path on what a worker passes in. Each of the four buckets Anthropic reports
 * (requests, tokens, input-tokens, output-tokens) becomes an account-wide window when
 * any of its anthropic-ratelimit-<bucket>-{limit,remaining,reset} headers can be read;
 * resets are RFC 3339 instants, taken as they are (a reset already past stays past: the
 * consumer knows the bucket has refilled). The status and the error body then say why
 * the account waits: rate_limit_error is a rate limit, except when
 * error.details.error_code is enforced_spend_limit_reached, which is billing and disables
 * the account until the latest reset any bucket names (until re-enabled when none does);
 * overloaded_error (529) and api_error (5xx) are the provider's capacity; 401 and
 * authentication_error disable the account; billing_error, 402 and a 400 saying the
 * credit balance is too low disable it for billing. The retry instant is retry-after,
 * else the latest future reset among the buckets at zero. Messages are never copied out.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"

struct bucket {
    const char *names[3]; /* its headers: limit, remaining, reset (spelt out: no
                             formatting on every answer) */
    const char *what;
    uint8_t metric;
};

#define HEADERS(w)                                                                       \
    {"anthropic-ratelimit-" w "-limit", "anthropic-ratelimit-" w "-remaining",           \
     "anthropic-ratelimit-" w "-reset"}
static const struct bucket buckets[] = {
    {HEADERS("requests"), "requests", ROTA_METRIC_REQUESTS},
    {HEADERS("tokens"), "tokens", ROTA_METRIC_TOKENS},
    {HEADERS("input-tokens"), "input-tokens", ROTA_METRIC_TOKENS},
    {HEADERS("output-tokens"), "output-tokens", ROTA_METRIC_TOKENS},
};
#undef HEADERS

/* The window of one bucket, when any of its three headers is readable. */
static void read_bucket(const struct rota_http_in *in, const struct bucket *b,
                        struct rota_obs *out)
{
    bool has[3] = {false, false, false};
    uint64_t num[2] = {0, 0};
    int64_t reset_at = 0;
    for (int k = 0; k < 3; k++) {
        char v[128];
        const char *name = b->names[k];
        if (rota_http_header(in, name, v, sizeof(v)) < 0)
            continue;
        if (k < 2) {
            has[k] = rota_parse_u64(v, &num[k]) == 0;
            if (!has[k])
                rota_obs_problem(out, "%s: not a count: \"%.40s\"", name, v);
        } else if (rota_parse_rfc3339(v, &reset_at) != 0 || reset_at <= 0) {
            rota_obs_problem(out, "%s: not an instant after 1970: \"%.40s\"", name, v);
            reset_at = 0;
        } else {
            has[k] = true;
        }
    }
    if (!has[0] && !has[1] && !has[2])
        return;
    struct rota_obs_window *w = rota_obs_window_add(out, "", b->what, b->metric);
    if (!w)
        return;
    w->has_limit = has[0];
    w->limit = num[0];
    w->has_remaining = has[1];
    w->remaining = num[1];
    w->reset_at = reset_at;
}

/* The latest reset among the windows (only those at zero when "empty_only"); 0 if none. */
static int64_t latest_reset(const struct rota_obs *out, bool empty_only)
{
    int64_t at = 0;
    for (uint32_t i = 0; i < out->nwin; i++) {
        const struct rota_obs_window *w = &out->win[i];
        if (empty_only && !(w->has_remaining && w->remaining == 0))
            continue;
        if (w->reset_at > at)
            at = w->reset_at;
    }
    return at;
}

/* The strings an error body carries; NULL where absent. */
struct anth_error {
    const char *type, *message, *error_code;
};

/* A string member "key" of "obj" into *dst; a problem when present but not a string. */
static void string_of(json_t *obj, const char *key, const char *where, const char **dst,
                      struct rota_obs *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        *dst = json_string_value(v);
    else if (v && !json_is_null(v))
        rota_obs_problem(out, "body: %s is not a string", where);
}

/* Parse the error body into "e"; returns the document to release (NULL if none). */
static json_t *read_error(const struct rota_http_in *in, struct anth_error *e,
                          struct rota_obs *out)
{
    memset(e, 0, sizeof(*e));
    if (!in->body || in->body_len == 0)
        return NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(in->body, in->body_len, 0, &jerr);
    if (!doc) {
        rota_obs_problem(out, "body: not JSON: %s", jerr.text);
        return NULL;
    }
    json_t *err = json_object_get(doc, "error");
    if (!json_is_object(err)) {
        rota_obs_problem(out, "body: no error object");
        return doc;
    }
    string_of(err, "type", "error.type", &e->type, out);
    string_of(err, "message", "error.message", &e->message, out);
    json_t *details = json_object_get(err, "details");
    if (json_is_object(details))
        string_of(details, "error_code", "error.details.error_code", &e->error_code, out);
    else if (details && !json_is_null(details))
        rota_obs_problem(out, "body: error.details is not an object");
    return doc;
}

static bool is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

static void read_status(const struct rota_http_in *in, struct rota_obs *out)
{
    int st = in->status;
    if (st >= 200 && st < 300) {
        out->reachable = true;
        return;
    }
    if (st < 400)
        return;
    struct anth_error e;
    json_t *doc = read_error(in, &e, out);
    bool low_credit = st == 400 && e.message && strstr(e.message, "credit balance is too low");
    if (is(e.error_code, "enforced_spend_limit_reached")) {
        out->cause = ROTA_CAUSE_BILLING;
        out->disable = true;
        out->disable_until = latest_reset(out, false);
        rota_obs_detail(out, "%d spend limit reached", st);
    } else if (st == 402 || is(e.type, "billing_error") || low_credit) {
        out->cause = ROTA_CAUSE_BILLING;
        out->disable = true;
        rota_obs_detail(out, "%d billing: %s", st,
                        low_credit ? "credit balance too low" : "payment required");
    } else if (st == 401 || is(e.type, "authentication_error")) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        rota_obs_detail(out, "%d key refused", st);
    } else if (st == 529 || st >= 500 || is(e.type, "overloaded_error")) {
        out->cause = ROTA_CAUSE_CAPACITY;
        rota_obs_detail(out, "%d %s", st, e.type ? e.type : "provider unavailable");
    } else if (st == 429) {
        out->cause = ROTA_CAUSE_RATE;
        rota_obs_detail(out, "429 rate limit");
    }
    if (out->cause && !out->disable) {
        out->retry_at = rota_http_retry_at(in, out);
        int64_t reset = latest_reset(out, true); /* one already past is no hint */
        if (!out->retry_at && out->cause == ROTA_CAUSE_RATE && reset > in->now)
            out->retry_at = reset;
    }
    json_decref(doc);
}

int rota_parse_anthropic(const struct rota_http_in *in, const struct rota_parse_opts *o,
                         struct rota_obs *out)
{
    (void)o;
    rota_obs_init(out);
    if (!in)
        return 0;
    for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++)
        read_bucket(in, &buckets[i], out);
    read_status(in, out);
    if (out->nwin || out->cause || out->retry_at || out->disable)
        return 1;
    return out->problems ? -EINVAL : 0;
}
