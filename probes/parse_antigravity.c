/*
 * parse_antigravity.c - Google Antigravity / Gemini Code Assist (cloudcode-pa): per-model
 * quota from fetchAvailableModels and retrieveUserQuota, and what its 429s say.
 *
 * DESIGN
 * A pure function of one answer, callable from any thread (see parse.h). The shape is
 * told by the body, never by the URL (the same parser reads probe answers and what
 * workers report): an "error" object is an error; "models" is fetchAvailableModels (one
 * FRACTION window per model, pool = the model, a missing remainingFraction meaning used
 * up; the internal chat_* and tab_* entries are not quota pools); "buckets" is
 * retrieveUserQuota (one window per bucket, counted in its tokenType when
 * remainingAmount is given, else as a fraction). Errors carry google.rpc.ErrorInfo whose
 * reason gives the cause (QUOTA_EXHAUSTED, RATE_LIMIT_EXCEEDED, MODEL_CAPACITY_EXHAUSTED:
 * the provider's capacity, not the account's) and whose reset is read in this order:
 * metadata.quotaResetTimeStamp, metadata.quotaResetDelay, RetryInfo.retryDelay,
 * Retry-After. A malformed field costs that field (counted in out->problems); a body that
 * is not JSON, or a success of no known shape, costs the answer. The JSON tree lives only
 * during the call.
 */
#include <errno.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"

#define PPM 1000000u /* a FRACTION window's limit */

/* ---- JSON ---- */

/* How much a body must be JSON: a 429's or an exec probe's must; another answer's only
 * when it starts like JSON (a proxy's HTML 503 is no problem). */
static enum rota_json_want want_of(int status)
{
    if (status == 429 || status == 0)
        return ROTA_JSON_WANT_ALWAYS;
    return ROTA_JSON_WANT_IF_LIKE;
}

/* A fraction in [0, 1] as millionths. 0 or -EINVAL. */
static int json_ppm(const json_t *v, uint64_t *ppm)
{
    double f = json_number_value(v);
    if (!json_is_number(v) || !(f >= 0 && f <= 1))
        return -EINVAL;
    *ppm = (uint64_t)(f * PPM + 0.5); /* rounded; no libm */
    return 0;
}

/* ---- fetchAvailableModels ---- */

static void read_model(const char *name, json_t *m, struct rota_obs *out)
{
    if (strncmp(name, "chat_", 5) == 0 || strncmp(name, "tab_", 4) == 0)
        return; /* internal models, not quota pools */
    json_t *qi = json_object_get(m, "quotaInfo");
    if (!qi)
        return; /* a model without a quota says nothing */
    if (!json_is_object(qi)) {
        rota_obs_problem(out, "models.%.40s.quotaInfo: not an object", name);
        return;
    }
    if (strlen(name) >= sizeof(out->win[0].pool)) {
        rota_obs_problem(out, "models: a model name of %zu bytes", strlen(name));
        return;
    }
    json_t *jf = json_object_get(qi, "remainingFraction"),
           *jr = json_object_get(qi, "resetTime");
    uint64_t ppm = 0; /* missing: used up */
    if (jf && json_ppm(jf, &ppm) != 0) {
        rota_obs_problem(out, "models.%.40s.remainingFraction: not a fraction", name);
        return;
    }
    struct rota_obs_window *w = rota_obs_window_add(out, name, "quota", ROTA_METRIC_FRACTION);
    if (!w)
        return;
    w->has_limit = w->has_remaining = true;
    w->limit = PPM;
    w->remaining = ppm;
    if (jr && rota_json_instant(jr, &w->reset_at) != 0)
        rota_obs_problem(out, "models.%.40s.resetTime: not an instant", name);
    if (ppm == 0)
        rota_obs_detail(out, "%.40s used up", name);
}

static int read_models(json_t *models, struct rota_obs *out)
{
    const char *name;
    json_t *m;
    json_object_foreach(models, name, m)
    {
        read_model(name, m, out);
    }
    rota_obs_detail(out, "%u models with quota", out->nwin);
    return 1;
}

/* ---- retrieveUserQuota ---- */

static void read_bucket(json_t *b, size_t i, struct rota_obs *out)
{
    if (!json_is_object(b)) {
        rota_obs_problem(out, "buckets[%zu]: not an object", i);
        return;
    }
    json_t *jm = json_object_get(b, "modelId"), *ja = json_object_get(b, "remainingAmount");
    json_t *jf = json_object_get(b, "remainingFraction"), *jr = json_object_get(b, "resetTime");
    const char *model = json_string_value(jm),
               *type = json_string_value(json_object_get(b, "tokenType"));
    if ((jm && !model) || (model && strlen(model) >= sizeof(out->win[0].pool))) {
        rota_obs_problem(out, "buckets[%zu].modelId: not a model name", i);
        return;
    }
    uint64_t amount = 0, ppm = 0;
    bool has_amount = ja && rota_json_u64(ja, &amount) == 0,
         has_ppm = jf && json_ppm(jf, &ppm) == 0;
    if (ja && !has_amount)
        rota_obs_problem(out, "buckets[%zu].remainingAmount: not a count", i);
    if (jf && !has_ppm)
        rota_obs_problem(out, "buckets[%zu].remainingFraction: not a fraction", i);
    uint8_t metric = ROTA_METRIC_FRACTION;
    if (type && strcmp(type, "REQUESTS") == 0)
        metric = ROTA_METRIC_REQUESTS;
    else if (type && strcmp(type, "TOKENS") == 0)
        metric = ROTA_METRIC_TOKENS;
    else if (has_amount) /* a count of what? only the fraction can be kept */
        rota_obs_problem(out, "buckets[%zu].tokenType: unknown", i);
    if (!has_amount || metric == ROTA_METRIC_FRACTION) {
        metric = ROTA_METRIC_FRACTION;
        if (!has_ppm && (ja || jf))
            return; /* what was said is unusable; said nothing: used up, as below */
    }
    const char *what = metric == ROTA_METRIC_REQUESTS ? "requests"
                       : metric == ROTA_METRIC_TOKENS ? "tokens"
                                                      : "quota";
    struct rota_obs_window *w = rota_obs_window_add(out, model ? model : "", what, metric);
    if (!w)
        return;
    w->has_remaining = true;
    if (metric != ROTA_METRIC_FRACTION) {
        w->remaining = amount;
        /* the limit is what remains over the fraction remaining, when both are said */
        double limit = has_ppm && ppm > 0 ? (double)amount * PPM / (double)ppm + 0.5 : -1;
        if (limit >= 0 && limit < 18446744073709551616.0) {
            w->has_limit = true;
            w->limit = (uint64_t)limit; /* rounded by the 0.5 above */
        }
    } else {
        w->has_limit = true;
        w->limit = PPM;
        w->remaining = ppm; /* neither amount nor fraction: used up (0), like a model's */
    }
    if (jr && rota_json_instant(jr, &w->reset_at) != 0)
        rota_obs_problem(out, "buckets[%zu].resetTime: not an instant", i);
}

static int read_buckets(json_t *buckets, struct rota_obs *out)
{
    for (size_t i = 0; i < json_array_size(buckets); i++)
        read_bucket(json_array_get(buckets, i), i, out);
    rota_obs_detail(out, "%u quota buckets", out->nwin);
    return 1;
}

/* ---- errors ---- */

/* The first detail of "@type" ending in "type"; NULL when none. */
static json_t *detail_of(json_t *err, const char *type)
{
    json_t *ds = json_object_get(err, "details");
    for (size_t i = 0; i < json_array_size(ds); i++) {
        json_t *d = json_array_get(ds, i);
        const char *t = json_string_value(json_object_get(d, "@type"));
        if (t && rota_str_ends_with(t, type))
            return d;
    }
    return NULL;
}

/* The reset an error names, in the documented order of trust; 0 when none. */
static int64_t reset_of(const struct rota_http_in *in, json_t *meta, json_t *err,
                        struct rota_obs *out)
{
    json_t *ts = json_object_get(meta, "quotaResetTimeStamp");
    int64_t at;
    if (ts && rota_json_instant(ts, &at) == 0)
        return at;
    if (ts)
        rota_obs_problem(out, "ErrorInfo.metadata.quotaResetTimeStamp: not an instant");
    const char *names[] = {"quotaResetDelay", "retryDelay"};
    json_t *holders[] = {meta, detail_of(err, "google.rpc.RetryInfo")};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(holders[i], names[i]);
        const char *s = json_string_value(v);
        uint64_t d;
        if (s && rota_parse_go_duration(s, false, &d) == 0 && (at = rota_ns_after(in->now, d)))
            return at;
        if (v)
            rota_obs_problem(out, "%s: not a duration", names[i]);
    }
    return rota_http_retry_at(in, out);
}

static int on_error(const struct rota_http_in *in, int status, json_t *err,
                    struct rota_obs *out)
{
    json_t *info = detail_of(err, "google.rpc.ErrorInfo");
    json_t *meta = json_object_get(info, "metadata");
    const char *reason = json_string_value(json_object_get(info, "reason"));
    if (meta && !json_is_object(meta)) {
        rota_obs_problem(out, "ErrorInfo.metadata: not an object");
        meta = NULL;
    }
    if (status == 401 || status == 403) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        rota_obs_detail(out, "token refused (HTTP %d)", status);
        return 1;
    }
    if (reason && strcmp(reason, "QUOTA_EXHAUSTED") == 0)
        out->cause = ROTA_CAUSE_QUOTA;
    else if (reason && strcmp(reason, "RATE_LIMIT_EXCEEDED") == 0)
        out->cause = ROTA_CAUSE_RATE;
    else if (reason && strcmp(reason, "MODEL_CAPACITY_EXHAUSTED") == 0)
        out->cause = ROTA_CAUSE_CAPACITY;
    else if (status == 429)
        out->cause = ROTA_CAUSE_RATE;
    else if (status >= 500 && status <= 599)
        out->cause = ROTA_CAUSE_CAPACITY;
    else
        return 0; /* the request's own fault (400, 404, ...): nothing about the account */
    if (info && !reason)
        rota_obs_problem(out, "ErrorInfo.reason: not a string");
    else if (reason && status == 429 && out->cause == ROTA_CAUSE_RATE &&
             strcmp(reason, "RATE_LIMIT_EXCEEDED") != 0)
        rota_obs_problem(out, "ErrorInfo.reason: unknown \"%.40s\"", reason);
    out->retry_at = reset_of(in, meta, err, out);
    json_t *jm = json_object_get(meta, "model");
    const char *model = json_string_value(jm);
    if (jm && (!model || strlen(model) >= sizeof(out->win[0].pool))) {
        rota_obs_problem(out, "ErrorInfo.metadata.model: not a model name");
        model = NULL;
    }
    struct rota_obs_window *w;
    if (out->cause == ROTA_CAUSE_QUOTA && model &&
        (w = rota_obs_window_add(out, model, "quota", ROTA_METRIC_FRACTION))) {
        w->has_limit = w->has_remaining = true;
        w->limit = PPM;
        w->reset_at = out->retry_at;
    }
    static const char *const causes[] = {"", "rate limited", "quota used up", "no capacity", "",
                                         ""};
    rota_obs_detail(out, "%s%s%.50s", causes[out->cause], model ? " on " : "",
                    model ? model : "");
    if (out->retry_at)
        rota_obs_detail(out, "retry in %llds",
                        (long long)rota_ns_secs_up(out->retry_at - in->now));
    return 1;
}

/* The status an answer stands for: an error inside a 200 (or an exec probe's output)
 * speaks with its own code. */
static int status_of(const struct rota_http_in *in, json_t *err, struct rota_obs *out)
{
    int status = rota_json_status(in, err);
    if (status >= 0)
        return status;
    const char *st = json_string_value(json_object_get(err, "status"));
    if (st && strcmp(st, "RESOURCE_EXHAUSTED") == 0)
        return 429;
    rota_obs_problem(out, "error.code: not an HTTP status");
    return 500;
}

int rota_parse_antigravity(const struct rota_http_in *in, const struct rota_parse_opts *o,
                           struct rota_obs *out)
{
    (void)o;
    rota_obs_init(out);
    json_t *root;
    int lrc = rota_json_body(in, want_of(in->status), out, &root), rc;
    json_t *err = rota_json_error_of(root), *models = json_object_get(root, "models"),
           *buckets = json_object_get(root, "buckets");
    int status = status_of(in, err, out);
    if (err || (status != 0 && (status < 200 || status > 299))) {
        rc = on_error(in, status, err, out);
        if (status == 429 && !err && lrc == 0) {
            rota_obs_problem(out, "body: no error object in a 429");
            lrc = -EINVAL;
        }
    } else if (json_is_object(models)) {
        out->reachable = true;
        rc = read_models(models, out);
    } else if (json_is_array(buckets)) {
        out->reachable = true;
        rc = read_buckets(buckets, out);
    } else if (models || buckets) {
        rota_obs_problem(out, "body: \"%s\" of the wrong type", models ? "models" : "buckets");
        rc = lrc = -EINVAL;
    } else {
        out->reachable = status != 0; /* loadCodeAssist and the like: the token works */
        rc = 0;
    }
    json_decref(root);
    return lrc == -EINVAL ? -EINVAL : rc;
}
