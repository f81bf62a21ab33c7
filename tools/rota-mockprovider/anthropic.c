/*
 * anthropic.c - rota-mockprovider's Anthropic: POST /v1/messages (and GET /v1/models, which
 * counts nothing), with
 * anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}
 * headers (resets in RFC 3339, token remainders rounded down to thousands once the limit
 * is that large), a 429 rate_limit_error with retry-after, and 529 overloaded_error when a
 * fault asks for status 529. A message that declares tools, carries tool blocks or
 * enables thinking is the scripted tool-using model's (tools_anthropic.c), streamed or
 * not; any other answers "ok".
 *
 * DESIGN
 * Called by main with mock.lock held; builds the whole answer in the reply and keeps no
 * state of its own. The input and output token buckets mirror the account's one token
 * limit: the fake keeps a single token count.
 */
#include <stdio.h>
#include <string.h>

#include "mock.h"

static void bucket_headers(struct mock_reply *r, const char *what, const struct mock_view *v,
                           bool round)
{
    char name[64], reset[48];
    uint64_t remaining = round && v->limit >= 10000 ? v->remaining / 1000 * 1000 : v->remaining;
    mock_rfc3339(reset, sizeof(reset), v->reset_ms, false);
    snprintf(name, sizeof(name), "anthropic-ratelimit-%s-limit", what);
    mock_reply_header(r, name, "%llu", (unsigned long long)v->limit);
    snprintf(name, sizeof(name), "anthropic-ratelimit-%s-remaining", what);
    mock_reply_header(r, name, "%llu", (unsigned long long)remaining);
    snprintf(name, sizeof(name), "anthropic-ratelimit-%s-reset", what);
    mock_reply_header(r, name, "%s", reset);
}

static void ratelimit_headers(struct mock_account *a, int64_t now, struct mock_reply *r)
{
    struct mock_view v;
    mock_bucket_view(&a->limits, now, false, &v);
    if (v.limit)
        bucket_headers(r, "requests", &v, false);
    mock_bucket_view(&a->limits, now, true, &v);
    if (v.limit) {
        bucket_headers(r, "tokens", &v, true);
        bucket_headers(r, "input-tokens", &v, true);
        bucket_headers(r, "output-tokens", &v, true);
    }
}

static void error(struct mock_reply *r, int status, const char *message)
{
    const char *type = "api_error";
    if (status == 400) {
        type = "invalid_request_error";
    } else if (status == 401) {
        type = "authentication_error";
        message = "invalid x-api-key";
    } else if (status == 404) {
        type = "not_found_error";
    } else if (status == 413) {
        type = "request_too_large";
    } else if (status == 529) {
        type = "overloaded_error";
        message = "Overloaded";
    }
    mock_reply_json(r, status,
                    json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type,
                              "message", message));
}

static void limited(struct mock_call *c, struct mock_account *a, const struct mock_hit *h,
                    struct mock_reply *r)
{
    char msg[320];
    bool tok = strcmp(h->what, "tokens") == 0;
    snprintf(msg, sizeof(msg),
             "This request would exceed the rate limit for your organization (mock) of %llu "
             "%s per window. For details, refer to: "
             "https://docs.claude.com/en/api/rate-limits.",
             (unsigned long long)h->limit, tok ? "input tokens" : "requests");
    mock_reply_json(r, 429,
                    json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                              "rate_limit_error", "message", msg));
    ratelimit_headers(a, c->now_ms, r);
    mock_reply_header(r, "retry-after", "%lld", (long long)mock_ceil_s(h->retry_ms));
}

static void serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    if (mock_path_is(c, "GET", "/v1/models")) { /* what a probe asks: counts nothing */
        mock_reply_json(r, 200,
                        json_pack("{s:[{s:s, s:s}], s:b}", "data", "type", "model", "id",
                                  "claude-sonnet-4-5", "has_more", 0));
        ratelimit_headers(a, c->now_ms, r);
        return;
    }
    if (!mock_path_is(c, "POST", "/v1/messages")) {
        error(r, 404, "Not found");
        return;
    }
    const char *model = json_string_value(json_object_get(c->body, "model"));
    struct mock_hit hit;
    struct mock_turn t;
    bool scripted = mock_anthropic_turn(c, &t);
    unsigned tokens = scripted ? t.use.in + t.use.out : c->m->tokens_per_call, out = tokens / 2;
    if (scripted && t.error[0]) {
        error(r, 400, t.error);
    } else if (mock_charge(a, NULL, tokens, c->now_ms, &hit)) {
        limited(c, a, &hit, r);
    } else if (scripted) {
        mock_anthropic_answer(c, &t, model ? model : "claude-sonnet-4-5", a->calls + 1, r);
        mock_usage_count(a, &t.use);
        ratelimit_headers(a, c->now_ms, r);
    }
    mock_turn_free(&t);
    if (scripted || r->status)
        return;
    mock_usage_count(a, &(struct mock_usage){.in = tokens - out, .out = out});
    if (json_is_true(json_object_get(c->body, "stream"))) {
        mock_stream_anthropic(c, model ? model : "claude-sonnet-4-5", tokens, a->calls + 1,
                              c->chunks, r);
        ratelimit_headers(a, c->now_ms, r);
        return;
    }
    char id[48];
    snprintf(id, sizeof(id), "msg_mock_%llu", (unsigned long long)a->calls + 1);
    mock_reply_json(r, 200,
                    json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s}], s:s, s:n, s:{s:i, s:i}}",
                              "id", id, "type", "message", "role", "assistant", "model",
                              model ? model : "claude-sonnet-4-5", "content", "type", "text",
                              "text", "ok", "stop_reason", "end_turn", "stop_sequence", "usage",
                              "input_tokens", tokens - out, "output_tokens", out));
    ratelimit_headers(a, c->now_ms, r);
}

const struct mock_provider_ops mock_anthropic_ops = {
    .name = "anthropic",
    .type = "application/json",
    .default_window_s = 60,
    .serve = serve,
    .error = error,
    .limited = limited,
};
