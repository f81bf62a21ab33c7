/*
 * openai.c - rota-mockprovider's OpenAI and Azure OpenAI: POST /v1/chat/completions
 * (Azure also POST /openai/deployments/NAME/chat/completions), with x-ratelimit-*
 * headers on every answer (resets as Go durations for OpenAI, integer seconds for Azure)
 * and each one's 429: OpenAI's rate_limit_exceeded saying "Please try again in 1.78s",
 * Azure's "Please retry after N seconds", both with retry-after and retry-after-ms.
 * OpenAI also answers POST /v1/embeddings: one embedding [0.5, -0.25, 1.0] per input, as
 * floats or, for "encoding_format": "base64", as their little-endian float32 bytes.
 * A chat that declares tools or carries tool calls is the scripted tool-using model's
 * (tools_openai.c), streamed or not; any other answers "ok". OpenAI also answers POST
 * /v1/responses, the Responses API, likewise (tools_responses.c).
 *
 * DESIGN
 * Called by main with mock.lock held; builds the whole answer in the reply and keeps no
 * state of its own. The completion body is shared with OpenRouter and llama.cpp.
 */
#include <stdio.h>
#include <string.h>

#include "mock.h"

/* An OpenAI chat.completion answering "ok", with "tokens" of usage. */
json_t *mock_openai_completion(const char *model, unsigned tokens, uint64_t serial,
                               int64_t now_ms)
{
    char id[48];
    snprintf(id, sizeof(id), "chatcmpl-mock-%llu", (unsigned long long)serial);
    unsigned out = tokens / 2, in = tokens - out;
    return json_pack(
        "{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i, s:i, s:i}}", "id", id,
        "object", "chat.completion", "created", (json_int_t)(now_ms / 1000), "model", model,
        "choices", "index", 0, "message", "role", "assistant", "content", "ok", "finish_reason",
        "stop", "usage", "prompt_tokens", in, "completion_tokens", out, "total_tokens", tokens);
}

/* An embeddings list for "c"'s input (a string, or an array of them), "tokens" of usage. */
static json_t *embeddings(const struct mock_call *c, const char *model, unsigned tokens)
{
    const json_t *input = json_object_get(c->body, "input");
    size_t n = json_is_array(input) ? json_array_size(input) : 1;
    const char *fmt = json_string_value(json_object_get(c->body, "encoding_format"));
    bool b64 = fmt && strcmp(fmt, "base64") == 0;
    json_t *data = json_array();
    for (size_t i = 0; i < n && i < 256; i++) {
        /* 0.5, -0.25, 1.0 as float32, little-endian, in base64 */
        json_t *v =
            b64 ? json_string("AAAAPwAAgL4AAIA/") : json_pack("[f, f, f]", 0.5, -0.25, 1.0);
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", v));
    }
    return json_pack("{s:s, s:o, s:s, s:{s:i, s:i}}", "object", "list", "data", data, "model",
                     model, "usage", "prompt_tokens", tokens, "total_tokens", tokens);
}

static bool azure(const struct mock_account *a)
{
    return a->provider == MOCK_AZURE;
}

/* x-ratelimit-{limit,remaining,reset}-{requests,tokens} for each configured limit. */
static void ratelimit_headers(struct mock_account *a, int64_t now, struct mock_reply *r)
{
    for (int tok = 0; tok < 2; tok++) {
        struct mock_view v;
        mock_bucket_view(&a->limits, now, tok, &v);
        if (!v.limit)
            continue;
        const char *what = tok ? "tokens" : "requests";
        char name[48], reset[48];
        int64_t left = v.used ? v.reset_ms - now : 0;
        if (azure(a))
            snprintf(reset, sizeof(reset), "%lld", (long long)(v.used ? mock_ceil_s(left) : 0));
        else
            mock_go_duration(reset, sizeof(reset), left);
        snprintf(name, sizeof(name), "x-ratelimit-limit-%s", what);
        mock_reply_header(r, name, "%llu", (unsigned long long)v.limit);
        snprintf(name, sizeof(name), "x-ratelimit-remaining-%s", what);
        mock_reply_header(r, name, "%llu", (unsigned long long)v.remaining);
        snprintf(name, sizeof(name), "x-ratelimit-reset-%s", what);
        mock_reply_header(r, name, "%s", reset);
    }
}

/* The model a call names: Azure's deployment from the path, else the body's "model". */
static void call_model(const struct mock_call *c, char *buf, size_t n)
{
    const char *d = "/openai/deployments/";
    if (strncmp(c->path, d, strlen(d)) == 0) {
        const char *name = c->path + strlen(d), *slash = strchr(name, '/');
        snprintf(buf, n, "%.*s", (int)(slash ? slash - name : (long)strlen(name)), name);
        return;
    }
    const char *m = json_string_value(json_object_get(c->body, "model"));
    snprintf(buf, n, "%s", m ? m : "gpt-4o-mini");
}

static bool chat_path(const struct mock_call *c, bool is_azure)
{
    const char *d = "/openai/deployments/", *tail = "/chat/completions";
    size_t len = strlen(c->path);
    if (strcmp(c->method, "POST") != 0)
        return false;
    if (strcmp(c->path, "/v1/chat/completions") == 0)
        return true;
    return is_azure && strncmp(c->path, d, strlen(d)) == 0 && len > strlen(d) + strlen(tail) &&
           strcmp(c->path + len - strlen(tail), tail) == 0;
}

static void openai_error(struct mock_reply *r, int status, const char *message)
{
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    const char *code = status == 401 ? "invalid_api_key" : status == 404 ? "unknown_url" : NULL;
    if (status == 401)
        message = "Incorrect API key provided. You can find your API key at "
                  "https://platform.openai.com/account/api-keys.";
    mock_reply_json(r, status,
                    json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message, "type",
                              type, "param", "code", code));
}

static void azure_error(struct mock_reply *r, int status, const char *message)
{
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    if (status == 401)
        message = "Access denied due to invalid subscription key or wrong API endpoint. Make "
                  "sure to provide a valid key for an active subscription and use a correct "
                  "regional API endpoint for your resource.";
    mock_reply_json(r, status,
                    json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

static void limited(struct mock_call *c, struct mock_account *a, const struct mock_hit *h,
                    struct mock_reply *r)
{
    char model[96], wait[48], msg[512];
    call_model(c, model, sizeof(model));
    bool tok = strcmp(h->what, "tokens") == 0;
    if (azure(a)) {
        snprintf(msg, sizeof(msg),
                 "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                 "version 2024-10-21 have exceeded %s rate limit of your current OpenAI S0 "
                 "pricing tier. Please retry after %lld seconds.",
                 tok ? "token" : "call", (long long)mock_ceil_s(h->retry_ms));
        mock_reply_json(r, 429,
                        json_pack("{s:{s:s, s:s}}", "error", "code", "429", "message", msg));
    } else {
        mock_go_duration(wait, sizeof(wait), h->retry_ms);
        snprintf(msg, sizeof(msg),
                 "Rate limit reached for %s in organization org-mock on %s per min (%s): "
                 "Limit %llu, Used %llu, Requested 1. Please try again in %s. Visit "
                 "https://platform.openai.com/account/rate-limits to learn more.",
                 model, h->what, tok ? "TPM" : "RPM", (unsigned long long)h->limit,
                 (unsigned long long)h->used, wait);
        mock_reply_json(r, 429,
                        json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type",
                                  h->what, "param", "code", "rate_limit_exceeded"));
    }
    ratelimit_headers(a, c->now_ms, r);
    mock_reply_header(r, "retry-after-ms", "%lld",
                      (long long)(h->retry_ms > 0 ? h->retry_ms : 0));
    mock_reply_header(r, "retry-after", "%lld", (long long)mock_ceil_s(h->retry_ms));
}

/* Count a call of "tokens" against "a"'s limits, or refuse it in "r". */
static bool charge(struct mock_call *c, struct mock_account *a, unsigned tokens,
                   struct mock_reply *r)
{
    struct mock_hit hit;
    if (!mock_charge(a, NULL, tokens, c->now_ms, &hit))
        return true;
    limited(c, a, &hit, r);
    return false;
}

static void serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    const struct mock_provider_ops *ops = mock_providers[a->provider];
    if (mock_path_is(c, "GET", azure(a) ? "/openai/models" : "/v1/models")) {
        /* what a probe asks: the limits in the headers, nothing counted */
        mock_reply_json(r, 200,
                        json_pack("{s:s, s:[{s:s, s:s}]}", "object", "list", "data", "object",
                                  "model", "id", "gpt-4o-mini"));
        ratelimit_headers(a, c->now_ms, r);
        return;
    }
    bool embed = !azure(a) && mock_path_is(c, "POST", "/v1/embeddings");
    if (!azure(a) && mock_path_is(c, "POST", "/v1/responses")) {
        const char *model = json_string_value(json_object_get(c->body, "model"));
        if (mock_responses(c, a, model ? model : "gpt-4o-mini", charge, r))
            ratelimit_headers(a, c->now_ms, r);
        return;
    }
    if (!embed && !chat_path(c, azure(a))) {
        ops->error(r, 404, "no such endpoint");
        return;
    }
    char model[96];
    call_model(c, model, sizeof(model));
    if (!embed) {
        if (mock_openai_chat(c, a, model, charge, r))
            ratelimit_headers(a, c->now_ms, r);
        return;
    }
    if (!charge(c, a, c->m->tokens_per_call, r))
        return;
    mock_reply_json(r, 200, embeddings(c, model, c->m->tokens_per_call));
    mock_usage_count(a, &(struct mock_usage){.in = c->m->tokens_per_call});
    ratelimit_headers(a, c->now_ms, r);
}

const struct mock_provider_ops mock_openai_ops = {
    .name = "openai",
    .type = "application/json",
    .default_window_s = 60,
    .serve = serve,
    .error = openai_error,
    .limited = limited,
};

const struct mock_provider_ops mock_azure_ops = {
    .name = "azure-openai",
    .type = "application/json",
    .default_window_s = 60,
    .serve = serve,
    .error = azure_error,
    .limited = limited,
};
