/*
 * llamacpp.c - rota-mockprovider's llama.cpp server: GET /health (200 {"status":"ok"},
 * or 503 while "loading"), GET /slots (the configured slots; 503 with
 * ?fail_on_no_slot=1 when none is free; 404 when "exposed" is false), POST /completion
 * and POST /v1/chat/completions (503 when no slot is free; OpenAI's chat, streamed or not,
 * the scripted tool-using model's when it uses tools: tools_openai.c). Config: "slots": N or
 * {"total": N, "busy": N, "exposed": bool}, "loading": bool.
 *
 * DESIGN
 * Called by main with mock.lock held. A slot is busy when configured so or while a POST
 * to this account is being answered (main counts those in "inflight", the call asking
 * included), so a latency or hang fault keeps a slot taken for as long as it lasts. The
 * server has no quota; configured limits, if any, still answer 429.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static const char *error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 404:
        return "not_found_error";
    case 429:
    case 503:
        return "unavailable_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static void error(struct mock_reply *r, int status, const char *message)
{
    if (status == 401)
        message = "Invalid API Key";
    mock_reply_json(r, status,
                    json_pack("{s:{s:i, s:s, s:s}}", "error", "code", status, "message",
                              message, "type", error_type(status)));
}

static void limited(struct mock_call *c, struct mock_account *a, const struct mock_hit *h,
                    struct mock_reply *r)
{
    error(r, 429, "rate limit reached");
    mock_reply_header(r, "retry-after", "%lld", (long long)mock_ceil_s(h->retry_ms));
}

/* Slots busy now; "asking" is 1 when the caller is itself one of the inflight calls. */
static unsigned busy(const struct mock_account *a, unsigned asking)
{
    unsigned n = a->slots_busy + a->inflight - asking;
    return n < a->slots_total ? n : a->slots_total;
}

static json_t *slots(const struct mock_account *a)
{
    json_t *list = json_array();
    unsigned taken = busy(a, 0);
    for (unsigned i = 0; i < a->slots_total; i++)
        json_array_append_new(list,
                              json_pack("{s:i, s:i, s:i, s:b, s:b}", "id", (int)i, "id_task",
                                        i < taken ? (int)i + 1 : -1, "n_ctx", 4096,
                                        "speculative", 0, "is_processing", i < taken));
    return list;
}

/* A call takes a slot and counts against the limits, if any: or it is refused, 503
 * while loading or with no slot free, 429 past a limit. */
static bool charge(struct mock_call *c, struct mock_account *a, unsigned tokens,
                   struct mock_reply *r)
{
    struct mock_hit hit;
    if (a->loading) {
        error(r, 503, "Loading model");
        return false;
    }
    if (busy(a, 1) >= a->slots_total) {
        error(r, 503, "no slot available");
        return false;
    }
    if (mock_charge(a, NULL, tokens, c->now_ms, &hit)) {
        limited(c, a, &hit, r);
        return false;
    }
    return true;
}

static void complete(struct mock_call *c, struct mock_account *a, bool chat,
                     struct mock_reply *r)
{
    unsigned tokens = c->m->tokens_per_call, out = tokens / 2;
    if (chat) {
        mock_openai_chat(c, a, "mock.gguf", charge, r);
        return;
    }
    if (!charge(c, a, tokens, r))
        return;
    mock_usage_count(a, &(struct mock_usage){.in = tokens - out, .out = out});
    mock_reply_json(r, 200,
                    json_pack("{s:s, s:i, s:b, s:s, s:i, s:i}", "content", "ok", "id_slot",
                              (int)busy(a, 1), "stop", 1, "model", "mock.gguf",
                              "tokens_predicted", out, "tokens_evaluated", tokens - out));
}

static void serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    if (mock_path_is(c, "GET", "/health")) {
        if (a->loading)
            error(r, 503, "Loading model");
        else
            mock_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
    } else if (mock_path_is(c, "GET", "/slots")) {
        const char *fail = mock_call_query(c, "fail_on_no_slot");
        if (a->slots_hidden)
            error(r, 404, "This server does not support slots endpoint.");
        else if (fail && strcmp(fail, "0") != 0 && busy(a, 0) >= a->slots_total)
            error(r, 503, "no slot available");
        else
            mock_reply_json(r, 200, slots(a));
    } else if (mock_path_is(c, "POST", "/completion") ||
               mock_path_is(c, "POST", "/v1/chat/completions")) {
        complete(c, a, strcmp(c->path, "/completion") != 0, r);
    } else {
        error(r, 404, "File Not Found");
    }
}

const struct mock_provider_ops mock_llamacpp_ops = {
    .name = "llamacpp",
    .type = "application/json; charset=utf-8",
    .default_window_s = 60,
    .serve = serve,
    .error = error,
    .limited = limited,
};
