/*
 * parse_copilot.c - GitHub Copilot's quotas: the copilot_internal/user answer (from the
 * endpoint, or `gh api /copilot_internal/user` run by an exec probe) and the
 * x-quota-snapshot-* headers that Copilot's own answers carry.
 *
 * DESIGN
 * A pure function of its input like every parser (parse.h): no I/O, no globals, the JSON
 * document freed before returning. Three sources share one entry point and are told apart
 * by what is there. The user body (status 0 from an exec probe, or a 2xx) comes in two
 * plan shapes: paid plans carry quota_snapshots.{chat,completions,premium_interactions},
 * free plans limited_user_quotas (what is left) beside monthly_quotas (the allowance).
 * The x-quota-snapshot-<pool> headers come with chat answers of any status (the passive
 * path) as a URL-encoded "ent=1500&ov=0.0&ovPerm=false&rem=31.3&rst=<RFC 3339>".
 * Each snapshot becomes one window whose pool is the snapshot's name, counted in
 * requests: limit = the entitlement, remaining as given or derived from the percentage
 * (rounded down: never promise a request that is not there). An unlimited pool gets a
 * window with neither, and the detail says so. Every window resets at the plan's reset
 * date. Error statuses become a cause: 401 and a refused 403 disable the account, 429 and
 * rate-limited 403s wait for Retry-After (else a minute), 402 waits for the premium
 * reset, 5xx is Copilot's capacity.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"

#define NS_PER_SEC INT64_C(1000000000)
#define RATE_WAIT  (60 * NS_PER_SEC) /* a limit without Retry-After waits this long */
#define MICRO      INT64_C(1000000)

/* Snapshots in the order their windows are listed; other names follow in body order. */
static const char *const body_pools[] = {"chat", "completions", "premium_interactions"};
static const char *const header_pools[] = {"premium_interactions", "chat", "premium_models"};
#define NPOOLS 3

/* ---- JSON values ---- */

/* A count at o[key]: an integer, a real (rounded down) or a string of digits, into *n.
 * 1 when read, 0 when absent or null, -1 when unusable, -2 when negative (*n = 0); both
 * count a problem named "where.key". */
static int count_of(json_t *o, const char *key, const char *where, struct rota_obs *out,
                    uint64_t *n)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *n = (uint64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v) && json_real_value(v) >= 0) {
        if (json_real_value(v) >= 18446744073709551616.0) {
            rota_obs_problem(out, "%s.%s: beyond 2^64", where, key);
            return -1;
        }
        *n = (uint64_t)json_real_value(v);
        return 1;
    }
    if (json_is_number(v)) {
        rota_obs_problem(out, "%s.%s: negative (%g)", where, key, json_number_value(v));
        *n = 0;
        return -2;
    }
    if (json_is_string(v) && rota_parse_u64(json_string_value(v), n) == 0)
        return 1;
    if (json_is_string(v))
        rota_obs_problem(out, "%s.%s: not a count: \"%.32s\"", where, key,
                         json_string_value(v));
    else
        rota_obs_problem(out, "%s.%s: %s, not a number", where, key, rota_json_type_name(v));
    return -1;
}

/* A boolean at o[key] into *b: 1 when read, 0 when absent or null, -1 (a problem). */
static int bool_of(json_t *o, const char *key, const char *where, struct rota_obs *out, bool *b)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_boolean(v)) {
        *b = json_is_true(v);
        return 1;
    }
    rota_obs_problem(out, "%s.%s: %s, not a boolean", where, key, rota_json_type_name(v));
    return -1;
}

/* A percentage at o[key] as millionths of the whole (100% = 1000000), clamped to 0..100%.
 * 1 when read, 0 when absent or null, -1 when not a number (a problem). */
static int percent_of(json_t *o, const char *key, const char *where, struct rota_obs *out,
                      uint64_t *millionths)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        rota_obs_problem(out, "%s.%s: %s, not a number", where, key, rota_json_type_name(v));
        return -1;
    }
    double p = json_number_value(v);
    if (p < 0 || p > 100) {
        rota_obs_problem(out, "%s.%s: %g is not a percentage", where, key, p);
        p = p < 0 ? 0 : 100;
    }
    *millionths = (uint64_t)(p * 10000.0);
    return 1;
}

/* The message of an error body (Copilot's error.message, GitHub's message), or NULL. */
static const char *message_of(json_t *root)
{
    json_t *e = json_object_get(root, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!m)
        m = json_string_value(json_object_get(root, "message"));
    return m ? m : json_string_value(e);
}

/* The first valid instant among root[keys], or 0 (bad ones count a problem). */
static int64_t reset_of(json_t *root, const char *const *keys, size_t nkeys,
                        struct rota_obs *out)
{
    for (size_t i = 0; i < nkeys; i++) {
        json_t *v = json_object_get(root, keys[i]);
        int64_t at;
        if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
            continue;
        if (!json_is_string(v))
            rota_obs_problem(out, "%s: %s, not a date", keys[i], rota_json_type_name(v));
        else if (rota_json_instant(v, &at) != 0)
            rota_obs_problem(out, "%s: not a date after 1970: \"%.40s\"", keys[i],
                             json_string_value(v));
        else
            return at;
    }
    return 0;
}

/* ---- the user body ---- */

/* Paid plans: quota_snapshots.<name> into a window of pool "name". */
static void snapshot(const char *name, json_t *s, int64_t reset_at, struct rota_obs *out)
{
    char where[96];
    uint64_t ent = 0, rem = 0, pct = 0, over = 0;
    bool unlimited = false, permitted = false;
    snprintf(where, sizeof(where), "quota_snapshots.%.40s", name);
    if (!json_is_object(s)) {
        if (!json_is_null(s))
            rota_obs_problem(out, "%s: %s, not an object", where, rota_json_type_name(s));
        return;
    }
    bool_of(s, "unlimited", where, out, &unlimited);
    struct rota_obs_window *w =
        rota_obs_window_add(out, name, "requests", ROTA_METRIC_REQUESTS);
    if (!w)
        return;
    w->reset_at = reset_at;
    if (unlimited) {
        rota_obs_detail(out, "%.40s unlimited", name);
        return;
    }
    int has_ent = count_of(s, "entitlement", where, out, &ent);
    if (has_ent == 1) {
        w->has_limit = true;
        w->limit = ent;
    }
    /* what is left: the count, else the fractional count, else the percentage */
    int has_rem = count_of(s, "remaining", where, out, &rem);
    if (has_rem == 0 || has_rem == -1)
        has_rem = count_of(s, "quota_remaining", where, out, &rem);
    if ((has_rem == 0 || has_rem == -1) && has_ent == 1 &&
        percent_of(s, "percent_remaining", where, out, &pct) == 1) {
        rem = (uint64_t)(((unsigned __int128)ent * pct) / MICRO);
        has_rem = 1;
    }
    if (has_rem == 1 || has_rem == -2) { /* a negative remainder is none left */
        w->has_remaining = true;
        w->remaining = rem;
    }
    if (!w->has_limit && !w->has_remaining)
        rota_obs_problem(out, "%s: neither entitlement nor remaining", where);
    else if (w->has_limit && w->has_remaining)
        rota_obs_detail(out, "%.40s %llu/%llu left", name, (unsigned long long)rem,
                        (unsigned long long)ent);
    if (bool_of(s, "overage_permitted", where, out, &permitted) == 1 && permitted) {
        count_of(s, "overage_count", where, out, &over);
        rota_obs_detail(out, "%.40s overage permitted (%llu used)", name,
                        (unsigned long long)over);
    }
}

static bool is_known(const char *name)
{
    for (size_t i = 0; i < NPOOLS; i++)
        if (strcmp(name, body_pools[i]) == 0)
            return true;
    return false;
}

static void paid_plan(json_t *root, json_t *snaps, struct rota_obs *out)
{
    static const char *const keys[] = {"quota_reset_date_utc", "quota_reset_date"};
    int64_t reset_at = reset_of(root, keys, 2, out);
    const char *name;
    json_t *s;
    for (size_t i = 0; i < NPOOLS; i++)
        if ((s = json_object_get(snaps, body_pools[i])))
            snapshot(body_pools[i], s, reset_at, out);
    json_object_foreach(snaps, name, s)
    {
        if (!is_known(name))
            snapshot(name, s, reset_at, out);
    }
}

/* Free plans: one window per name in monthly_quotas (limit) or limited_user_quotas
 * (remaining). */
static void free_pool(const char *name, json_t *monthly, json_t *left, int64_t reset_at,
                      struct rota_obs *out)
{
    uint64_t v;
    struct rota_obs_window *w =
        rota_obs_window_add(out, name, "requests", ROTA_METRIC_REQUESTS);
    if (!w)
        return;
    w->reset_at = reset_at;
    if (count_of(monthly, name, "monthly_quotas", out, &v) == 1) {
        w->has_limit = true;
        w->limit = v;
    }
    int r = count_of(left, name, "limited_user_quotas", out, &v);
    if (r == 1 || r == -2) {
        w->has_remaining = true;
        w->remaining = v;
    }
    if (w->has_limit && w->has_remaining)
        rota_obs_detail(out, "%.40s %llu/%llu left", name, (unsigned long long)w->remaining,
                        (unsigned long long)w->limit);
}

static void free_plan(json_t *root, json_t *monthly, json_t *left, struct rota_obs *out)
{
    static const char *const keys[] = {"limited_user_reset_date", "quota_reset_date_utc",
                                       "quota_reset_date"};
    int64_t reset_at = reset_of(root, keys, 3, out);
    const char *name;
    json_t *v;
    for (size_t i = 0; i < NPOOLS; i++)
        if (json_object_get(monthly, body_pools[i]) || json_object_get(left, body_pools[i]))
            free_pool(body_pools[i], monthly, left, reset_at, out);
    json_object_foreach(monthly, name, v)
    {
        if (!is_known(name))
            free_pool(name, monthly, left, reset_at, out);
    }
    json_object_foreach(left, name, v)
    {
        if (!is_known(name) && !json_object_get(monthly, name))
            free_pool(name, monthly, left, reset_at, out);
    }
}

/* root[key] when it is an object; NULL when absent or null, and a problem otherwise. */
static json_t *object_at(json_t *root, const char *key, struct rota_obs *out)
{
    json_t *v = json_object_get(root, key);
    if (v && !json_is_object(v) && !json_is_null(v))
        rota_obs_problem(out, "%s: %s, not an object", key, rota_json_type_name(v));
    return json_is_object(v) ? v : NULL;
}

/* The user body of a 2xx or of an exec probe (status 0). True when it was understood. */
static bool user_body(const struct rota_http_in *in, json_t *root, struct rota_obs *out)
{
    if (!root)
        return false;
    if (!json_is_object(root)) {
        rota_obs_problem(out, "body: %s, not an object", rota_json_type_name(root));
        return false;
    }
    const char *plan = json_string_value(json_object_get(root, "copilot_plan"));
    const char *msg = message_of(root);
    json_t *snaps = object_at(root, "quota_snapshots", out);
    json_t *monthly = object_at(root, "monthly_quotas", out);
    json_t *left = object_at(root, "limited_user_quotas", out);
    if (plan)
        rota_obs_detail(out, "plan %.32s", plan);
    if (snaps) {
        paid_plan(root, snaps, out);
    } else if (monthly || left) {
        free_plan(root, monthly, left, out);
    } else if (plan) {
        rota_obs_detail(out, "no quota figures");
    } else if (in->status == 0 && msg && strcasestr(msg, "bad credentials")) {
        out->cause = ROTA_CAUSE_AUTH; /* gh prints GitHub's 401 body and fails */
        out->disable = true;
        rota_obs_detail(out, "token refused: %.60s", msg);
        return false;
    } else {
        if (in->status == 0)
            rota_obs_problem(out,
                             "body: neither quota_snapshots nor limited_user_quotas%s%.60s",
                             msg ? ": " : "", msg ? msg : "");
        return false;
    }
    out->reachable = true;
    return true;
}

/* ---- the x-quota-snapshot-* headers ---- */

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode the URL-encoded "s" ('+' is a space) into "buf"; false on a broken escape, an
 * encoded NUL or no room. */
static bool url_decode(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            int hi = hex(s[1]), lo = hi < 0 ? -1 : hex(s[2]);
            if (lo < 0 || (hi | lo) == 0)
                return false;
            c = hi * 16 + lo;
            s += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (n + 1 >= cap)
            return false;
        buf[n++] = (char)c;
    }
    buf[n] = 0;
    return true;
}

/* A decimal ("31.3", "-1", "0.0") in millionths: 31300000. False when it is not one or
 * its size is beyond 9e11. Digits below a millionth are dropped. */
static bool micro_of(const char *s, int64_t *v)
{
    bool neg = *s == '-', digits = false;
    int64_t whole = 0, frac = 0, scale = MICRO;
    if (*s == '-' || *s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++, digits = true) {
        if (whole > INT64_C(90000000000))
            return false;
        whole = whole * 10 + (*s - '0');
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits = true) {
            scale /= 10;
            frac += (*s - '0') * scale;
        }
    if (!digits || *s)
        return false;
    *v = (whole * MICRO + frac) * (neg ? -1 : 1);
    return true;
}

/* What one header says, field by field. */
struct snap_header {
    bool has_ent, has_rem, permitted;
    int64_t ent, rem; /* millionths: of requests, of a percent */
    int64_t reset_at;
};

static void header_field(const char *where, const char *key, const char *val,
                         struct snap_header *h, struct rota_obs *out)
{
    if (strcmp(key, "ent") == 0 || strcmp(key, "rem") == 0) {
        bool ent = key[0] == 'e';
        int64_t v;
        if (!micro_of(val, &v)) {
            rota_obs_problem(out, "%s: %s is not a number: \"%.32s\"", where, key, val);
        } else if (ent && v < 0 && v != -MICRO) {
            rota_obs_problem(out, "%s: ent is negative: \"%.32s\"", where, val);
        } else if (!ent && (v < 0 || v > 100 * MICRO)) {
            rota_obs_problem(out, "%s: rem %.32s is not a percentage", where, val);
            h->has_rem = true;
            h->rem = v < 0 ? 0 : 100 * MICRO;
        } else {
            *(ent ? &h->has_ent : &h->has_rem) = true;
            *(ent ? &h->ent : &h->rem) = v;
        }
    } else if (strcmp(key, "rst") == 0) {
        if (rota_parse_rfc3339(val, &h->reset_at) != 0 || h->reset_at <= 0) {
            rota_obs_problem(out, "%s: rst is not an instant after 1970: \"%.40s\"", where,
                             val);
            h->reset_at = 0;
        }
    } else if (strcmp(key, "ovPerm") == 0) {
        h->permitted = strcmp(val, "true") == 0;
    } /* ov (the overage used) and unknown keys say nothing about what is left */
}

/* x-quota-snapshot-<pool>, when present, into a window of "pool". */
static void snapshot_header(const struct rota_http_in *in, const char *pool,
                            struct rota_obs *out)
{
    char name[64], where[64], v[512], val[128];
    struct snap_header h = {0};
    snprintf(name, sizeof(name), "x-quota-snapshot-%s", pool);
    snprintf(where, sizeof(where), "header %s", pool);
    if (rota_http_header(in, name, v, sizeof(v)) < 0)
        return;
    for (char *p = v, *next; p; p = next) {
        char *amp = strchr(p, '&'), *eq = strchr(p, '=');
        next = amp ? amp + 1 : NULL;
        if (amp)
            *amp = 0;
        if (!*p)
            continue;
        if (!eq || (amp && eq > amp)) {
            rota_obs_problem(out, "%s: \"%.32s\" is not key=value", where, p);
            continue;
        }
        *eq = 0;
        if (!url_decode(eq + 1, val, sizeof(val)))
            rota_obs_problem(out, "%s: %.16s has a broken %%-escape", where, p);
        else
            header_field(where, p, val, &h, out);
    }
    if (!h.has_ent && !h.has_rem) {
        rota_obs_problem(out, "%s: neither ent nor rem", where);
        return;
    }
    bool unlimited = h.has_ent && h.ent == -MICRO;
    bool counted = h.has_ent && !unlimited;
    struct rota_obs_window *w =
        rota_obs_window_add(out, pool, counted || unlimited ? "requests" : "percent",
                            counted || unlimited ? ROTA_METRIC_REQUESTS : ROTA_METRIC_FRACTION);
    if (!w)
        return;
    w->reset_at = h.reset_at;
    if (unlimited) {
        rota_obs_detail(out, "%s unlimited", pool);
        return;
    }
    uint64_t frac = h.has_rem ? (uint64_t)(h.rem / 100) : 0; /* millionths of the whole */
    w->has_limit = true;
    w->limit = counted ? (uint64_t)(h.ent / MICRO) : (uint64_t)MICRO;
    w->has_remaining = h.has_rem;
    w->remaining = counted ? (uint64_t)(((unsigned __int128)w->limit * frac) / MICRO) : frac;
    if (h.has_rem)
        rota_obs_detail(out, "%s %llu/%llu left%s", pool, (unsigned long long)w->remaining,
                        (unsigned long long)w->limit, h.permitted ? ", overage permitted" : "");
}

/* ---- error statuses ---- */

/* The reset of a premium pool already read, or 0. */
static int64_t premium_reset(const struct rota_obs *out)
{
    for (uint32_t i = 0; i < out->nwin; i++)
        if (strncmp(out->win[i].pool, "premium_", 8) == 0 && out->win[i].reset_at > 0)
            return out->win[i].reset_at;
    return 0;
}

/* Is this 403 a rate limit (GitHub's, on the endpoint) rather than a refusal? */
static bool rate_limited(const struct rota_http_in *in, const char *msg, int64_t hint)
{
    char v[32];
    return hint || (msg && strcasestr(msg, "rate limit")) ||
           (rota_http_header(in, "x-ratelimit-remaining", v, sizeof(v)) >= 0 &&
            strcmp(v, "0") == 0);
}

static void error_status(const struct rota_http_in *in, json_t *root, struct rota_obs *out)
{
    const char *msg = message_of(root);
    int64_t hint = rota_http_retry_at(in, out);
    int s = in->status;
    if (msg)
        rota_obs_detail(out, "%d: %.60s", s, msg);
    if (s == 401 || (s == 403 && !rate_limited(in, msg, hint))) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
    } else if (s == 403 || (s == 429 && !(msg && strcasestr(msg, "quota")))) {
        out->cause = ROTA_CAUSE_RATE;
        out->retry_at = hint ? hint : rota_ns_later(in->now, RATE_WAIT);
    } else if (s == 402 || s == 429) { /* the premium allowance is used up */
        out->cause = ROTA_CAUSE_QUOTA;
        out->retry_at = hint ? hint : premium_reset(out);
        if (!out->retry_at)
            out->retry_at = rota_ns_later(in->now, RATE_WAIT);
    } else if (s >= 500 && s <= 599) {
        out->cause = ROTA_CAUSE_CAPACITY;
        out->retry_at = hint;
    } else if (s == 404) {
        rota_obs_problem(out, "status: 404, no Copilot for this token or the endpoint moved");
    } else {
        rota_obs_problem(out, "status: %d is not an answer Copilot gives", s);
    }
}

int rota_parse_copilot(const struct rota_http_in *in, const struct rota_parse_opts *o,
                       struct rota_obs *out)
{
    rota_obs_init(out);
    bool ok = in->status >= 200 && in->status <= 299, understood = false;
    for (size_t i = 0; i < NPOOLS; i++)
        snapshot_header(in, header_pools[i], out);
    if (in->status == 0 || ok) {
        /* a 2xx that is not a JSON object is a chat answer, not the user body */
        json_t *root = in->status == 0 || rota_json_looks_like_object(in)
                           ? rota_json_body_or_null(in, false, out)
                           : NULL;
        understood = user_body(in, root, out);
        out->reachable = ok || understood;
        json_decref(root);
    } else {
        json_t *root =
            rota_json_looks_like_object(in) ? rota_json_body_or_null(in, true, out) : NULL;
        error_status(in, root, out);
        json_decref(root);
    }
    if (out->nwin || out->cause || out->disable || understood)
        return 1;
    return out->problems ? -EINVAL : 0;
}
