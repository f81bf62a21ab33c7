/*
 * google.c - rota-mockprovider's Google providers.
 *
 * Gemini API: POST /v1beta/models/MODEL:generateContent (or :streamGenerateContent, as
 * server-sent events with ?alt=sse, else a JSON array of the events: stream.c); no quota
 * endpoint, no quota headers. A request that declares functions, carries function calls
 * or asks includeThoughts is the scripted tool-using model's (tools_gemini.c); any other
 * answers "ok". A reached limit answers 429 RESOURCE_EXHAUSTED whose details
 * (QuotaFailure, RetryInfo, Help) come in the order the account's "details_order" lists
 * them (those not listed are left out); the quotaId says PerMinute for windows under an
 * hour, else PerDay, with "-FreeTier" for "tier":"free".
 *
 * Antigravity (Code Assist): POST /v1internal:loadCodeAssist, :fetchAvailableModels,
 * :retrieveUserQuota (the probes; they count nothing) and :generateContent (or
 * :streamGenerateContent, framed as the Gemini API's), whose body
 * {"project", "model", "request": {Gemini request}} names the model; each answer, each
 * event, is {"response": {Gemini answer}}. Quotas are per
 * model ("models" in the config); a spent one answers 429 with an ErrorInfo whose reason
 * is QUOTA_EXHAUSTED (RATE_LIMIT_EXCEEDED for the account-wide limit, or what a fault
 * says) with metadata quotaResetDelay and quotaResetTimeStamp, and a RetryInfo.
 *
 * DESIGN
 * Called by main with mock.lock held; builds the whole answer in the reply and keeps no
 * state of its own. Both share Google's error envelope {"error": {code, message, status,
 * details}}.
 */
#include <stdio.h>
#include <string.h>

#include "mock.h"

#define TYPE_PREFIX "type.googleapis.com/google.rpc."

static const char *status_name(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

/* Google's error envelope; takes "details" (may be NULL). */
static void envelope(struct mock_reply *r, int status, const char *message, json_t *details)
{
    mock_reply_json(r, status,
                    json_pack("{s:{s:i, s:s, s:s, s:o*}}", "error", "code", status, "message",
                              message, "status", status_name(status), "details", details));
}

void mock_google_error(struct mock_reply *r, int status, const char *message)
{
    if (status == 401)
        envelope(r, status, "API key not valid. Please pass a valid API key.",
                 json_pack("[{s:s, s:s, s:s}]", "@type", TYPE_PREFIX "ErrorInfo", "reason",
                           "API_KEY_INVALID", "domain", "googleapis.com"));
    else
        envelope(r, status, message, NULL);
}

/* A generateContent answer "ok" from "model". */
static json_t *generated(const char *model, unsigned tokens, uint64_t serial)
{
    char id[48];
    snprintf(id, sizeof(id), "mock-%llu", (unsigned long long)serial);
    unsigned out = tokens / 2;
    return json_pack("{s:[{s:{s:[{s:s}], s:s}, s:s, s:i}], s:{s:i, s:i, s:i}, s:s, s:s}",
                     "candidates", "content", "parts", "text", "ok", "role", "model",
                     "finishReason", "STOP", "index", 0, "usageMetadata", "promptTokenCount",
                     tokens - out, "candidatesTokenCount", out, "totalTokenCount", tokens,
                     "modelVersion", model, "responseId", id);
}

/* ---- Gemini API ---- */

/* The model of /v1beta/models/MODEL:generateContent into "buf"; false if not that path. */
static bool gemini_model(const struct mock_call *c, char *buf, size_t n)
{
    const char *pre = "/v1beta/models/";
    if (strcmp(c->method, "POST") != 0 || strncmp(c->path, pre, strlen(pre)) != 0)
        return false;
    const char *name = c->path + strlen(pre), *colon = strchr(name, ':');
    if (!colon || colon == name ||
        (strcmp(colon, ":generateContent") != 0 &&
         strcmp(colon, ":streamGenerateContent") != 0))
        return false;
    snprintf(buf, n, "%.*s", (int)(colon - name), name);
    return true;
}

/* The quotaMetric and quotaId of the limit "h" describes. */
static void quota_names(const struct mock_account *a, const struct mock_hit *h, char *metric,
                        size_t metric_n, char *quota_id, size_t quota_id_n)
{
    bool tok = strcmp(h->what, "tokens") == 0, free_tier = a->free_plan;
    const char *per = h->window_ms < 3600000 ? "Minute" : "Day";
    snprintf(quota_id, quota_id_n, "%sPer%sPerProjectPerModel%s",
             tok ? "GenerateContentInputTokens" : "GenerateRequests", per,
             free_tier ? "-FreeTier" : "");
    snprintf(metric, metric_n, "generativelanguage.googleapis.com/generate_content_%s%s",
             free_tier ? "free_tier_" : "", tok ? "input_token_count" : "requests");
}

static json_t *gemini_detail(enum mock_detail d, const struct mock_account *a,
                             const struct mock_hit *h, const char *model)
{
    char retry[32], quota_id[96], metric[96], value[24];
    switch (d) {
    case MOCK_RETRY_INFO:
        mock_seconds(retry, sizeof(retry), h->retry_ms);
        return json_pack("{s:s, s:s}", "@type", TYPE_PREFIX "RetryInfo", "retryDelay", retry);
    case MOCK_HELP:
        return json_pack("{s:s, s:[{s:s, s:s}]}", "@type", TYPE_PREFIX "Help", "links",
                         "description", "Learn more about Gemini API quotas", "url",
                         "https://ai.google.dev/gemini-api/docs/rate-limits");
    case MOCK_QUOTA_FAILURE:
        break;
    }
    quota_names(a, h, metric, sizeof(metric), quota_id, sizeof(quota_id));
    snprintf(value, sizeof(value), "%llu", (unsigned long long)h->limit);
    return json_pack("{s:s, s:[{s:s, s:s, s:{s:s, s:s}, s:s}]}", "@type",
                     TYPE_PREFIX "QuotaFailure", "violations", "quotaMetric", metric, "quotaId",
                     quota_id, "quotaDimensions", "location", "global", "model", model,
                     "quotaValue", value);
}

static void gemini_limited(struct mock_call *c, struct mock_account *a,
                           const struct mock_hit *h, struct mock_reply *r)
{
    char model[96], retry[32], msg[512], metric[96], quota_id[96];
    if (!gemini_model(c, model, sizeof(model)))
        snprintf(model, sizeof(model), "%s", h->model ? h->model : "gemini-2.5-flash");
    json_t *details = json_array();
    for (size_t i = 0; i < a->ndetails; i++)
        json_array_append_new(details, gemini_detail(a->details[i], a, h, model));
    mock_seconds(retry, sizeof(retry), h->retry_ms);
    quota_names(a, h, metric, sizeof(metric), quota_id, sizeof(quota_id));
    snprintf(msg, sizeof(msg),
             "You exceeded your current quota, please check your plan and billing details. "
             "For more information on this error, head to: "
             "https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: "
             "%s, limit: %llu, model: %s\nPlease retry in %s.",
             metric, (unsigned long long)h->limit, model, retry);
    envelope(r, 429, msg, details);
}

/* How the call asks its answer framed: :generateContent whole, :streamGenerateContent
 * as server-sent events with alt=sse, else as a JSON array of the events. */
static enum mock_framing framing(const struct mock_call *c)
{
    const char *alt = mock_call_query(c, "alt");
    if (!strstr(c->path, ":streamGenerateContent"))
        return MOCK_WHOLE;
    return alt && strcmp(alt, "sse") == 0 ? MOCK_SSE : MOCK_ARRAY;
}

/* Answer Gemini request "request" as "model" for "a": the scripted tool-using model's
 * answer, its refusal, or "ok"; Code Assist's "envelope" around it. Returns the limit
 * a call reached (h->what set) for the caller's own 429. */
static void generate(struct mock_call *c, struct mock_account *a, const json_t *request,
                     const char *model, bool envelope, struct mock_hit *h, struct mock_reply *r)
{
    struct mock_turn t;
    bool scripted = mock_gemini_turn(c, request, &t);
    unsigned tokens = scripted ? t.use.in + t.use.out : c->m->tokens_per_call;
    enum mock_framing f = framing(c);
    h->what = NULL;
    if (scripted && t.error[0]) {
        mock_google_error(r, 400, t.error);
    } else if (mock_charge(a, mock_model_find(a, model), tokens, c->now_ms, h)) {
        /* the caller refuses */
    } else if (scripted) {
        mock_gemini_answer(c, &t, model, a->calls + 1, f, envelope, r);
        mock_usage_count(a, &t.use);
    } else {
        unsigned out = tokens / 2;
        mock_usage_count(a, &(struct mock_usage){.in = tokens - out, .out = out});
        if (f == MOCK_WHOLE) {
            json_t *v = generated(model, tokens, a->calls + 1);
            mock_reply_json(r, 200,
                            envelope ? json_pack("{s:o, s:s}", "response", v, "traceId", "mock")
                                     : v);
        } else {
            mock_stream_gemini(c, model, tokens, a->calls + 1, c->chunks, r);
            if (envelope)
                mock_stream_envelope(r);
            if (f == MOCK_ARRAY)
                mock_stream_whole(r);
        }
    }
    mock_turn_free(&t);
}

static void gemini_serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    char model[96];
    if (!gemini_model(c, model, sizeof(model))) {
        mock_google_error(r, 404, "Requested entity was not found.");
        return;
    }
    struct mock_hit hit;
    generate(c, a, c->body, model, false, &hit, r);
    if (hit.what)
        gemini_limited(c, a, &hit, r);
}

/* ---- Antigravity ---- */

static void ag_error(struct mock_reply *r, int status, const char *message)
{
    if (status == 401)
        envelope(r, status,
                 "Request had invalid authentication credentials. Expected OAuth 2 access "
                 "token, login cookie or other valid authentication credential.",
                 NULL);
    else
        envelope(r, status, message, NULL);
}

static const char *ag_model(const struct mock_call *c, const struct mock_account *a)
{
    const char *m = json_string_value(json_object_get(c->body, "model"));
    return m ? m : a->nmodels ? a->models[0].name : "gemini-2.5-pro";
}

static void ag_limited(struct mock_call *c, struct mock_account *a, const struct mock_hit *h,
                       struct mock_reply *r)
{
    const char *model = h->model ? h->model : ag_model(c, a);
    const char *reason = h->reason  ? h->reason
                         : h->model ? "QUOTA_EXHAUSTED"
                                    : "RATE_LIMIT_EXCEEDED";
    char delay[48], stamp[48], retry[32], msg[256];
    mock_go_duration(delay, sizeof(delay), h->retry_ms);
    mock_rfc3339(stamp, sizeof(stamp), h->reset_ms, false);
    mock_seconds(retry, sizeof(retry), h->retry_ms);
    json_t *info;
    if (strcmp(reason, "MODEL_CAPACITY_EXHAUSTED") == 0) {
        snprintf(msg, sizeof(msg), "No capacity available for model %s on the server", model);
        info = json_pack("{s:s, s:s, s:s, s:{s:s}}", "@type", TYPE_PREFIX "ErrorInfo", "reason",
                         reason, "domain", "cloudcode-pa.googleapis.com", "metadata", "model",
                         model);
    } else {
        snprintf(msg, sizeof(msg),
                 "You have exhausted your capacity on this model. Your quota will reset after "
                 "%s.",
                 delay);
        info =
            json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "@type", TYPE_PREFIX "ErrorInfo",
                      "reason", reason, "domain", "cloudcode-pa.googleapis.com", "metadata",
                      "model", model, "quotaResetDelay", delay, "quotaResetTimeStamp", stamp);
    }
    envelope(r, 429, msg,
             json_pack("[o, {s:s, s:s}]", info, "@type", TYPE_PREFIX "RetryInfo", "retryDelay",
                       retry));
}

/* A model's remaining fraction of its request quota (1 when it has none). */
static double fraction(const struct mock_view *v)
{
    return v->limit ? (double)v->remaining / (double)v->limit : 1.0;
}

static json_t *available_models(struct mock_account *a, int64_t now)
{
    char reset[48];
    json_t *models = json_object();
    for (size_t i = 0; i < a->nmodels; i++) {
        struct mock_view v;
        mock_bucket_view(&a->models[i].b, now, false, &v);
        mock_rfc3339(reset, sizeof(reset), v.reset_ms, false);
        json_t *quota = json_pack("{s:s}", "resetTime", reset);
        if (!v.limit || v.remaining) /* a spent quota has no remainingFraction */
            json_object_set_new(quota, "remainingFraction", json_real(fraction(&v)));
        json_object_set_new(
            models, a->models[i].name,
            json_pack("{s:s, s:o}", "displayName", a->models[i].name, "quotaInfo", quota));
    }
    mock_rfc3339(reset, sizeof(reset), now + 5 * 3600 * 1000, false);
    json_object_set_new(
        models, "chat_20706", /* internal: not a quota pool */
        json_pack("{s:{s:f, s:s}}", "quotaInfo", "remainingFraction", 1.0, "resetTime", reset));
    return json_pack("{s:o}", "models", models);
}

static json_t *user_quota(struct mock_account *a, int64_t now)
{
    json_t *buckets = json_array();
    for (size_t i = 0; i < a->nmodels; i++) {
        struct mock_view v;
        char reset[48], amount[24];
        mock_bucket_view(&a->models[i].b, now, false, &v);
        mock_rfc3339(reset, sizeof(reset), v.reset_ms, false);
        snprintf(amount, sizeof(amount), "%llu", (unsigned long long)v.remaining);
        json_array_append_new(buckets,
                              json_pack("{s:s, s:f, s:s, s:s, s:s}", "remainingAmount", amount,
                                        "remainingFraction", fraction(&v), "resetTime", reset,
                                        "tokenType", "REQUESTS", "modelId", a->models[i].name));
    }
    return json_pack("{s:o}", "buckets", buckets);
}

static void ag_serve(struct mock_call *c, struct mock_account *a, struct mock_reply *r)
{
    const char *tier = a->free_plan ? "free-tier" : "standard-tier";
    if (mock_path_is(c, "POST", "/v1internal:loadCodeAssist")) {
        mock_reply_json(r, 200,
                        json_pack("{s:{s:s, s:s}, s:[{s:s, s:b}], s:s}", "currentTier", "id",
                                  tier, "name", "Gemini Code Assist", "allowedTiers", "id",
                                  tier, "isDefault", 1, "cloudaicompanionProject", a->project));
    } else if (mock_path_is(c, "POST", "/v1internal:fetchAvailableModels")) {
        mock_reply_json(r, 200, available_models(a, c->now_ms));
    } else if (mock_path_is(c, "POST", "/v1internal:retrieveUserQuota")) {
        mock_reply_json(r, 200, user_quota(a, c->now_ms));
    } else if (mock_path_is(c, "POST", "/v1internal:generateContent") ||
               mock_path_is(c, "POST", "/v1internal:streamGenerateContent")) {
        struct mock_hit hit;
        generate(c, a, json_object_get(c->body, "request"), ag_model(c, a), true, &hit, r);
        if (hit.what)
            ag_limited(c, a, &hit, r);
    } else {
        ag_error(r, 404, "Requested entity was not found.");
    }
}

const struct mock_provider_ops mock_gemini_ops = {
    .name = "gemini",
    .type = "application/json; charset=UTF-8",
    .default_window_s = 86400,
    .serve = gemini_serve,
    .error = mock_google_error,
    .limited = gemini_limited,
};

const struct mock_provider_ops mock_antigravity_ops = {
    .name = "antigravity",
    .type = "application/json; charset=UTF-8",
    .default_window_s = 7 * 86400,
    .serve = ag_serve,
    .error = ag_error,
    .limited = ag_limited,
};
