/*
 * github.c - rota-mockprovider's GitHub REST API and GitHub Copilot.
 *
 * GitHub: GET /rate_limit (counts nothing) answers resources.core with the account's
 * use; every other path counts a call (GET /user answers a user; POST
 * /inference/chat/completions, GitHub Models, answers OpenAI's chat, streamed or not, the
 * scripted tool-using model's when it uses tools (tools_openai.c); the rest 404, as
 * GitHub counts those too). Every answer carries x-ratelimit-{limit,remaining,used,reset,
 * resource}; a spent limit answers "limit_status" (403, or 429) with remaining 0.
 *
 * Copilot: GET /copilot_internal/user (counts nothing) in the paid shape
 * (quota_snapshots; the account's request limit is the premium_interactions
 * entitlement, none = unlimited) or the free shape (limited_user_quotas and
 * monthly_quotas; the limit is the monthly chat quota); POST /chat/completions counts a
 * call and carries x-quota-snapshot-* headers; once spent it answers 429. Chats are
 * OpenAI's, streamed or not, the scripted tool-using model's when they use tools
 * (tools_openai.c).
 *
 * DESIGN
 * Called by main with mock.lock held; builds the whole answer in the reply and keeps no
 * state of its own. Copilot's monthly reset is the end of the account's window (30 days
 * from the start unless "reset_at" says otherwise).
 */
#include <stdio.h>
#include <string.h>

#include "mock.h"

#define DOCS "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"

static void error(struct mock_reply *r, int status, const char *message)
{
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    if (status == 401)
        message = "Bad credentials";
    else if (status == 404)
        message = "Not Found";
    mock_reply_json(r, status,
                    json_pack("{s:s, s:s, s:s}", "message", message, "documentation_url",
                              "https://docs.github.com/rest", "status", code));
}

/* ---- GitHub REST ---- */

static void rate_headers(struct mock_account *a, int64_t now, struct mock_reply *r)
{
    struct mock_view v;
    mock_bucket_view(&a->limits, now, false, &v);
    mock_reply_header(r, "x-ratelimit-limit", "%llu", (unsigned long long)v.limit);
    mock_reply_header(r, "x-ratelimit-remaining", "%llu", (unsigned long long)v.remaining);
    mock_reply_header(r, "x-ratelimit-used", "%llu", (unsigned long long)v.used);
    mock_reply_header(r, "x-ratelimit-reset", "%lld", (long long)(v.reset_ms / 1000));
    mock_reply_header(r, "x-ratelimit-resource", "core");
}

static json_t *resource(uint64_t limit, uint64_t used, int64_t reset_ms)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "limit", (json_int_t)limit, "used",
                     (json_int_t)used, "remaining", (json_int_t)(limit - used), "reset",
                     (json_int_t)(reset_ms / 1000));
}

static void gh_limited(struct mock_call *c, struct mock_account *a, const struct mock_hit *h,
                       struct mock_reply *r)
{
    mock_reply_json(r, a->limit_status,
                    json_pack("{s:s, s:s}", "message",
                              "API rate limit exceeded for user ID 1. If you reach out to "
                              "GitHub Support for help, please include the request ID.",
                              "documentation_url", DOCS));
    rate_headers(a, c->now_ms, r);
    /* An injected refusal before the limit is spent is a secondary limit: retry-after. */
    if (h->used < h->limit)
        mock_reply_header(r, "retry-after", "%lld", (long long)mock_ceil_s(h->retry_ms));
}

static bool gh_charge(struct mock_call *c, struct mock_account *a, unsigned tokens,
                      struct mock_reply *r)
{
    struct mock_hit hit;
    if (!mock_charge(a, NULL, tokens, c->now_ms, &hit))
        return true;
    gh_limited(c, a, &hit, r);
    return false;
}

static void gh_serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    if (mock_path_is(c, "GET", "/rate_limit")) {
        struct mock_view v;
        mock_bucket_view(&a->limits, c->now_ms, false, &v);
        int64_t minute = c->now_ms + 60000;
        mock_reply_json(r, 200,
                        json_pack("{s:{s:o, s:o, s:o}, s:o}", "resources", "core",
                                  resource(v.limit, v.used, v.reset_ms), "search",
                                  resource(30, 0, minute), "graphql",
                                  resource(5000, 0, c->now_ms + 3600000), "rate",
                                  resource(v.limit, v.used, v.reset_ms)));
        rate_headers(a, c->now_ms, r);
        return;
    }
    if (mock_path_is(c, "POST", "/inference/chat/completions")) {
        const char *model = json_string_value(json_object_get(c->body, "model"));
        if (mock_openai_chat(c, a, model ? model : "openai/gpt-4.1", gh_charge, r))
            rate_headers(a, c->now_ms, r);
        return;
    }
    struct mock_hit hit;
    if (mock_charge(a, NULL, 0, c->now_ms, &hit)) {
        gh_limited(c, a, &hit, r);
        return;
    }
    if (mock_path_is(c, "GET", "/user"))
        mock_reply_json(
            r, 200, json_pack("{s:s, s:i, s:s}", "login", a->name, "id", 1, "type", "User"));
    else
        error(r, 404, "Not Found");
    rate_headers(a, c->now_ms, r);
}

/* ---- Copilot ---- */

static double percent(const struct mock_view *v)
{
    return v->limit ? 100.0 * (double)v->remaining / (double)v->limit : 100.0;
}

static json_t *snapshot(const char *id, const struct mock_view *v, const char *now)
{
    bool unlimited = !v->limit;
    return json_pack("{s:I, s:I, s:f, s:f, s:b, s:b, s:i, s:s, s:s}", "entitlement",
                     (json_int_t)v->limit, "remaining", (json_int_t)v->remaining,
                     "quota_remaining", (double)v->remaining, "percent_remaining", percent(v),
                     "unlimited", unlimited, "overage_permitted", 0, "overage_count", 0,
                     "quota_id", id, "timestamp_utc", now);
}

static json_t *copilot_user(struct mock_account *a, int64_t now)
{
    struct mock_view v, none = {0};
    char day[16], reset[48], stamp[48];
    mock_bucket_view(&a->limits, now, false, &v);
    mock_rfc3339(reset, sizeof(reset), v.reset_ms, true);
    mock_rfc3339(stamp, sizeof(stamp), now, true);
    snprintf(day, sizeof(day), "%.10s", reset);
    if (a->free_plan)
        return json_pack("{s:s, s:s, s:s, s:b, s:{s:I, s:i}, s:{s:I, s:i}, s:s}", "login",
                         a->name, "access_type_sku", "free_limited_copilot", "copilot_plan",
                         "free", "chat_enabled", 1, "limited_user_quotas", "chat",
                         (json_int_t)v.remaining, "completions", 2000, "monthly_quotas", "chat",
                         (json_int_t)v.limit, "completions", 2000, "limited_user_reset_date",
                         day);
    return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:{s:o, s:o, s:o}}", "login", a->name,
                     "access_type_sku", "copilot_individual", "copilot_plan", "individual",
                     "chat_enabled", 1, "quota_reset_date", day, "quota_reset_date_utc", reset,
                     "quota_snapshots", "chat", snapshot("chat", &none, stamp), "completions",
                     snapshot("completions", &none, stamp), "premium_interactions",
                     snapshot("premium_interactions", &v, stamp));
}

/* x-quota-snapshot-NAME: ent=1500&ov=0.0&ovPerm=false&rem=31.3&rst=2026-04-01T00%3A00%3A00Z */
static void snapshot_header(struct mock_reply *r, const char *name, const struct mock_view *v)
{
    char reset[48], enc[64], header[64];
    mock_rfc3339(reset, sizeof(reset), v->reset_ms, false);
    size_t k = 0;
    for (const char *p = reset; *p && k + 4 < sizeof(enc); p++)
        k += (size_t)(*p == ':' ? snprintf(enc + k, sizeof(enc) - k, "%%3A")
                                : snprintf(enc + k, sizeof(enc) - k, "%c", *p));
    snprintf(header, sizeof(header), "x-quota-snapshot-%s", name);
    mock_reply_header(r, header, "ent=%lld&ov=0.0&ovPerm=false&rem=%.1f&rst=%s",
                      v->limit ? (long long)v->limit : -1LL, percent(v), enc);
}

static void snapshot_headers(struct mock_account *a, int64_t now, struct mock_reply *r)
{
    struct mock_view v, none = {0};
    mock_bucket_view(&a->limits, now, false, &v);
    none.reset_ms = v.reset_ms;
    if (a->free_plan) {
        snapshot_header(r, "chat", &v);
        return;
    }
    snapshot_header(r, "chat", &none);
    snapshot_header(r, "premium_interactions", &v);
    snapshot_header(r, "premium_models", &v);
}

static void copilot_limited(struct mock_call *c, struct mock_account *a,
                            const struct mock_hit *h, struct mock_reply *r)
{
    bool spent = h->limit && h->used >= h->limit;
    mock_reply_json(
        r, 429,
        json_pack("{s:{s:s, s:s}}", "error", "message",
                  spent ? "You have exceeded your premium request allowance. Your allowance "
                          "resets at the start of next month."
                        : "Sorry, you have been rate-limited. Please wait a moment before "
                          "trying again.",
                  "code", spent ? "quota_exceeded" : "rate_limited"));
    snapshot_headers(a, c->now_ms, r);
    mock_reply_header(r, "retry-after", "%lld", (long long)mock_ceil_s(h->retry_ms));
}

static bool copilot_charge(struct mock_call *c, struct mock_account *a, unsigned tokens,
                           struct mock_reply *r)
{
    struct mock_hit hit;
    if (!mock_charge(a, NULL, tokens, c->now_ms, &hit))
        return true;
    copilot_limited(c, a, &hit, r);
    return false;
}

static void copilot_serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    if (mock_path_is(c, "GET", "/copilot_internal/user")) {
        mock_reply_json(r, 200, copilot_user(a, c->now_ms));
        return;
    }
    if (!mock_path_is(c, "POST", "/chat/completions")) {
        error(r, 404, "Not Found");
        return;
    }
    const char *model = json_string_value(json_object_get(c->body, "model"));
    if (mock_openai_chat(c, a, model ? model : "gpt-4.1", copilot_charge, r))
        snapshot_headers(a, c->now_ms, r);
}

const struct mock_provider_ops mock_github_ops = {
    .name = "github",
    .type = "application/json; charset=utf-8",
    .default_window_s = 3600,
    .serve = gh_serve,
    .error = error,
    .limited = gh_limited,
};

const struct mock_provider_ops mock_copilot_ops = {
    .name = "github-copilot",
    .type = "application/json; charset=utf-8",
    .default_window_s = 30 * 86400,
    .serve = copilot_serve,
    .error = error,
    .limited = copilot_limited,
};
