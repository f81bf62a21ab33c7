/*
 * openrouter.c - rota-mockprovider's OpenRouter: GET /api/v1/key (counts nothing) shows
 * the credits ("credits": {"limit": 10.0 or null, "usage": 2.5, "per_call": 0.01} in the
 * config); POST /api/v1/chat/completions spends "per_call" credits per call, answers 402
 * once the credits are gone and 429 with error.metadata.headers (X-RateLimit-Reset in
 * epoch milliseconds) once the request limit is reached. Chats are OpenAI's, streamed or
 * not, the scripted tool-using model's when they use tools (tools_openai.c).
 *
 * DESIGN
 * Called by main with mock.lock held; the credits used live in the account, under that
 * lock, and /_mock/reset puts them back to the configured usage.
 */
#include <stdio.h>

#include "mock.h"

static void error(struct mock_reply *r, int status, const char *message)
{
    if (status == 401)
        message = "No auth credentials found";
    mock_reply_json(r, status,
                    json_pack("{s:{s:i, s:s}}", "error", "code", status, "message", message));
}

static void limited(struct mock_call *c, struct mock_account *a, const struct mock_hit *h,
                    struct mock_reply *r)
{
    char limit[24], remaining[24], reset[24];
    snprintf(limit, sizeof(limit), "%llu", (unsigned long long)h->limit);
    snprintf(remaining, sizeof(remaining), "%llu",
             (unsigned long long)(h->limit > h->used ? h->limit - h->used : 0));
    snprintf(reset, sizeof(reset), "%lld", (long long)h->reset_ms);
    mock_reply_json(r, 429,
                    json_pack("{s:{s:i, s:s, s:{s:{s:s, s:s, s:s}, s:n}}, s:s}", "error",
                              "code", 429, "message", "Rate limit exceeded: limit_rpm/mock",
                              "metadata", "headers", "X-RateLimit-Limit", limit,
                              "X-RateLimit-Remaining", remaining, "X-RateLimit-Reset", reset,
                              "provider_name", "user_id", "user_mock"));
}

static json_t *key_info(const struct mock_account *a)
{
    char label[160];
    snprintf(label, sizeof(label), "mock-%s", a->name);
    json_t *limit = a->has_credit_limit ? json_real(a->credit_limit) : json_null();
    json_t *left =
        a->has_credit_limit ? json_real(a->credit_limit - a->credit_usage) : json_null();
    return json_pack("{s:{s:s, s:o, s:o, s:n, s:f, s:f, s:f, s:f, s:b, s:b}}", "data", "label",
                     label, "limit", limit, "limit_remaining", left, "limit_reset", "usage",
                     a->credit_usage, "usage_daily", a->credit_usage, "usage_weekly",
                     a->credit_usage, "usage_monthly", a->credit_usage, "is_free_tier",
                     a->free_plan, "is_provisioning_key", 0);
}

/* Spend the credits and count the call, or refuse it: 402 without credits, 429. */
static bool charge(struct mock_call *c, struct mock_account *a, unsigned tokens,
                   struct mock_reply *r)
{
    if (a->has_credit_limit && a->credit_usage + a->credit_per_call > a->credit_limit + 1e-9) {
        error(r, 402,
              "Insufficient credits. Add more using https://openrouter.ai/settings/credits");
        return false;
    }
    struct mock_hit hit;
    if (mock_charge(a, NULL, tokens, c->now_ms, &hit)) {
        limited(c, a, &hit, r);
        return false;
    }
    a->credit_usage += a->credit_per_call;
    return true;
}

static void serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    if (mock_path_is(c, "GET", "/api/v1/key")) {
        mock_reply_json(r, 200, key_info(a));
        return;
    }
    if (!mock_path_is(c, "POST", "/api/v1/chat/completions")) {
        error(r, 404, "Not Found");
        return;
    }
    const char *model = json_string_value(json_object_get(c->body, "model"));
    if (!mock_openai_chat(c, a, model ? model : "openai/gpt-4o-mini", charge, r) || r->stream.n)
        return;
    json_t *body = json_loadb(r->body, r->len, 0, NULL); /* OpenRouter names who served */
    if (body) {
        json_object_set_new(body, "provider", json_string("Mock"));
        mock_reply_json(r, 200, body);
    }
}

const struct mock_provider_ops mock_openrouter_ops = {
    .name = "openrouter",
    .type = "application/json",
    .default_window_s = 60,
    .serve = serve,
    .error = error,
    .limited = limited,
};
