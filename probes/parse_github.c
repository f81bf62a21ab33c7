/*
 * parse_github.c - GitHub REST rate limits: the x-ratelimit-* headers every answer of
 * api.github.com carries, the body of GET /rate_limit, and the primary and secondary
 * limits a 403 or 429 stands for.
 *
 * DESIGN
 * A pure function of its input like every parser (parse.h): no I/O, no globals, the JSON
 * document freed before returning. The headers describe the one resource the call
 * counted against (x-ratelimit-resource, "core" when unsaid) and become a window of that
 * pool; a /rate_limit body (status 0 when an exec probe ran `gh api /rate_limit`) becomes
 * a window per resources.<name>, "core" first, and then the headers' window is dropped
 * when the body already holds its resource. Resets are epoch seconds, a fraction rounded
 * up to the ns, never down. A 403 or 429 with x-ratelimit-remaining 0 is the primary
 * limit: wait until the reset (or a later Retry-After). Any other 403 or 429 is a
 * secondary limit: Retry-After when given, else a minute; backing off further is the
 * caller's business. 401 disables the account, 5xx is GitHub's capacity.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"

#define NS_PER_SEC INT64_C(1000000000)
#define RATE_WAIT  (60 * NS_PER_SEC) /* a secondary limit without Retry-After */

/* ---- JSON values ---- */

/* A count at o[key] (an integer, an integral real or a string of digits) into *n: true
 * when read; a present but unusable value counts a problem named "where.key". */
static bool count_of(json_t *o, const char *key, const char *where, struct rota_obs *out,
                     uint64_t *n)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return false;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *n = (uint64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v) && json_real_value(v) >= 0 &&
        json_real_value(v) < 18446744073709551616.0) {
        *n = (uint64_t)json_real_value(v);
        return true;
    }
    if (json_is_string(v) && rota_parse_u64(json_string_value(v), n) == 0)
        return true;
    if (json_is_number(v))
        rota_obs_problem(out, "%s.%s: %g is not a count", where, key, json_number_value(v));
    else if (json_is_string(v))
        rota_obs_problem(out, "%s.%s: not a count: \"%.32s\"", where, key,
                         json_string_value(v));
    else
        rota_obs_problem(out, "%s.%s: %s, not a number", where, key, rota_json_type_name(v));
    return false;
}

/* ---- windows ---- */

/* A reset of "ns" since the epoch as wall ns into *at; false (a problem naming "text",
 * the reset as given) for 0 or beyond int64 ns. */
static bool reset_ns(uint64_t ns, const char *text, const char *where, struct rota_obs *out,
                     int64_t *at)
{
    if (ns == 0 || ns > INT64_MAX) {
        rota_obs_problem(out, "%s: reset %.32s is not an instant", where, text);
        return false;
    }
    *at = (int64_t)ns;
    return true;
}

/* o.reset, epoch seconds (a fraction rounded up to the ns), into *at: true when read; a
 * present but unusable value counts a problem named "where.reset". */
static bool body_reset(json_t *o, const char *where, struct rota_obs *out, int64_t *at)
{
    json_t *v = json_object_get(o, "reset");
    char text[32];
    uint64_t ns;
    if (!v || json_is_null(v))
        return false;
    if (json_is_string(v))
        snprintf(text, sizeof(text), "%s", json_string_value(v));
    else
        snprintf(text, sizeof(text), "%.17g", json_number_value(v));
    if (rota_json_ns(v, NS_PER_SEC, &ns) == 0)
        return reset_ns(ns, text, where, out, at);
    if (json_is_number(v))
        rota_obs_problem(out, "%s.reset: %s is not a count", where, text);
    else if (json_is_string(v))
        rota_obs_problem(out, "%s.reset: not a count: \"%.32s\"", where, text);
    else
        rota_obs_problem(out, "%s.reset: %s, not a number", where, rota_json_type_name(v));
    return false;
}

/* The figures of one resource, as the headers or the body give them. */
struct figures {
    bool has_limit, has_remaining, has_used, has_reset;
    uint64_t limit, remaining, used;
    int64_t reset_at;
};

static void add_window(const char *pool, const struct figures *f, struct rota_obs *out)
{
    struct rota_obs_window *w =
        rota_obs_window_add(out, pool, "requests", ROTA_METRIC_REQUESTS);
    if (!w)
        return;
    w->has_limit = f->has_limit;
    w->limit = f->limit;
    w->has_remaining = f->has_remaining;
    w->remaining = f->remaining;
    w->has_used = f->has_used;
    w->used = f->used;
    w->reset_at = f->reset_at;
}

/* resources.<name> of a /rate_limit body into a window of pool "name". */
static void resource(const char *name, json_t *r, struct rota_obs *out)
{
    char where[96];
    struct figures f = {0};
    snprintf(where, sizeof(where), "resources.%.60s", name);
    if (!json_is_object(r)) {
        rota_obs_problem(out, "%s: %s, not an object", where, rota_json_type_name(r));
        return;
    }
    f.has_limit = count_of(r, "limit", where, out, &f.limit);
    f.has_remaining = count_of(r, "remaining", where, out, &f.remaining);
    f.has_used = count_of(r, "used", where, out, &f.used);
    f.has_reset = body_reset(r, where, out, &f.reset_at);
    if (!f.has_limit && !f.has_remaining && !f.has_used)
        rota_obs_problem(out, "%s: no limit, remaining or used", where);
    else
        add_window(name, &f, out);
}

/* A /rate_limit body: true when it was one. */
static bool rate_limit_body(json_t *root, struct rota_obs *out)
{
    json_t *res = json_object_get(root, "resources"), *r;
    const char *name;
    if (!res || json_is_null(res)) {
        /* "rate" repeats resources.core; it is all that very old answers have */
        if (!json_is_object(json_object_get(root, "rate")))
            return false;
        resource("core", json_object_get(root, "rate"), out);
        return true;
    }
    if (!json_is_object(res)) {
        rota_obs_problem(out, "resources: %s, not an object", rota_json_type_name(res));
        return false;
    }
    if ((r = json_object_get(res, "core")))
        resource("core", r, out);
    json_object_foreach(res, name, r)
    {
        if (strcmp(name, "core") != 0)
            resource(name, r, out);
    }
    return true;
}

/* x-ratelimit-<name> as a count, or with a "unit" as a time of that many ns each (into ns,
 * rounded up), into *v; its text into "buf". True when present and read (else a
 * problem). */
static bool header_count(const struct rota_http_in *in, const char *name, uint64_t unit,
                         struct rota_obs *out, uint64_t *v, char *buf, size_t cap)
{
    char h[64];
    snprintf(h, sizeof(h), "x-ratelimit-%s", name);
    if (rota_http_header(in, h, buf, cap) < 0)
        return false;
    if ((unit ? rota_parse_decimal_ns(buf, unit, v) : rota_parse_u64(buf, v)) == 0)
        return true;
    rota_obs_problem(out, "%s: not a count: \"%.32s\"", h, buf);
    return false;
}

/* The x-ratelimit-* headers into *f and their resource into "pool"; true when any figure
 * was read. */
static bool header_figures(const struct rota_http_in *in, struct figures *f, char *pool,
                           size_t cap, struct rota_obs *out)
{
    char buf[64];
    uint64_t ns;
    f->has_limit = header_count(in, "limit", 0, out, &f->limit, buf, sizeof(buf));
    f->has_remaining = header_count(in, "remaining", 0, out, &f->remaining, buf, sizeof(buf));
    f->has_used = header_count(in, "used", 0, out, &f->used, buf, sizeof(buf));
    if (header_count(in, "reset", NS_PER_SEC, out, &ns, buf, sizeof(buf)))
        f->has_reset = reset_ns(ns, buf, "x-ratelimit-reset", out, &f->reset_at);
    if (rota_http_header(in, "x-ratelimit-resource", pool, cap) <= 0)
        snprintf(pool, cap, "core");
    return f->has_limit || f->has_remaining || f->has_used;
}

static bool has_pool(const struct rota_obs *out, const char *pool)
{
    for (uint32_t i = 0; i < out->nwin; i++)
        if (strcmp(out->win[i].pool, pool) == 0)
            return true;
    return false;
}

/* ---- statuses ---- */

/* What a 401, 403, 429 or 5xx says (or `gh`'s output of a 401: status 0, "Bad
 * credentials"); "f" holds the headers' figures. */
static void error_status(const struct rota_http_in *in, const struct figures *f, json_t *root,
                         struct rota_obs *out)
{
    const char *msg = json_string_value(json_object_get(root, "message"));
    int s = in->status;
    if (msg)
        rota_obs_detail(out, "%d: %.80s", s, msg);
    if (s == 401 || (s == 0 && msg && strcasestr(msg, "bad credentials"))) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        return;
    }
    if (s != 403 && s != 429 && (s < 500 || s > 599))
        return;
    int64_t hint = rota_http_retry_at(in, out);
    if (s >= 500) {
        out->cause = ROTA_CAUSE_CAPACITY;
        out->retry_at = hint;
    } else if (f->has_remaining && f->remaining == 0) {
        out->cause = ROTA_CAUSE_RATE;
        out->retry_at = f->has_reset && f->reset_at > hint ? f->reset_at : hint;
        if (out->retry_at <= in->now) /* a reset already past: the clocks disagree */
            out->retry_at = rota_ns_later(in->now, RATE_WAIT);
        rota_obs_detail(out, "primary rate limit");
    } else {
        out->cause = ROTA_CAUSE_RATE;
        out->retry_at = hint ? hint : rota_ns_later(in->now, RATE_WAIT);
        rota_obs_detail(out, "secondary rate limit");
    }
}

int rota_parse_github(const struct rota_http_in *in, const struct rota_parse_opts *o,
                      struct rota_obs *out)
{
    struct figures f = {0};
    char pool[256]; /* longer than a window's pool: cut there rather than refused */
    rota_obs_init(out);
    bool ok = in->status >= 200 && in->status <= 299;
    bool headers = header_figures(in, &f, pool, sizeof(pool), out);
    json_t *root = NULL;
    if (in->status == 0 || rota_json_looks_like_object(in))
        root = rota_json_body_or_null(in, !(in->status == 0 || ok), out);
    bool body = json_is_object(root) && rate_limit_body(root, out);
    if (in->status == 0 && !body)
        rota_obs_problem(out, "body: not a /rate_limit answer");
    if (headers && !has_pool(out, pool))
        add_window(pool, &f, out);
    if (ok || (in->status == 0 && body))
        out->reachable = true;
    else
        error_status(in, &f, root, out);
    json_decref(root);
    if (out->nwin || out->cause || out->disable)
        return 1;
    return out->problems ? -EINVAL : 0;
}
