/*
 * parse_openai.c - OpenAI, Azure OpenAI and OpenAI-compatible servers: rate-limit headers
 * and error bodies into quota observations.
 *
 * DESIGN
 * Pure functions (see parse.h), called by probe threads on probe answers and by the
 * report path on what a worker passes in. Every answer may carry
 * x-ratelimit-{limit,remaining,reset}-{requests,tokens}; each present family becomes one
 * account-wide window ("requests" or "tokens") whose reset is now + the header's duration.
 * OpenAI writes Go durations ("6m0s", "20ms"); Azure writes integer seconds and sends -1
 * or 0 when it has nothing to say, which both read as "not said". The status then says
 * why the account must wait: 429 is a rate limit (a daily one when the message names a
 * per-day limit), insufficient_quota in any error body is billing and disables the
 * account, 401 disables it for auth, 402 for billing, 5xx is the provider's capacity.
 * The retry instant comes from retry-after-ms / retry-after, else from the message's
 * "try again in 1.78s" / "retry after 6 seconds", else from the latest reset among the
 * buckets at zero. Error messages are never copied into the observation: OpenAI's 401
 * message quotes part of the key.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"

#define NS_PER_SEC INT64_C(1000000000)

struct family {
    const char *what;
    uint8_t metric;
};

static const struct family families[] = {
    {"requests", ROTA_METRIC_REQUESTS},
    {"tokens", ROTA_METRIC_TOKENS},
};

/* now + d, or 0 (with a problem) when it does not fit an int64. */
static int64_t after(const struct rota_http_in *in, uint64_t d, struct rota_obs *out,
                     const char *where)
{
    if (in->now < 0 || d > (uint64_t)(INT64_MAX - in->now)) {
        rota_obs_problem(out, "%s: too far in the future", where);
        return 0;
    }
    return in->now + (int64_t)d;
}

/* A reset header: Go duration (or bare seconds); for Azure, "-1" and "0" say nothing. */
static int64_t reset_of(const struct rota_http_in *in, const char *name, const char *v,
                        bool azure, struct rota_obs *out)
{
    uint64_t d;
    if (azure && (strcmp(v, "-1") == 0 || strcmp(v, "0") == 0))
        return 0;
    if (rota_parse_go_duration(v, true, &d) != 0) {
        rota_obs_problem(out, "%s: not a duration: \"%.40s\"", name, v);
        return 0;
    }
    return after(in, d, out, name);
}

/* The window of one header family, when any of its three headers is readable. */
static void read_family(const struct rota_http_in *in, const struct family *f, bool azure,
                        struct rota_obs *out)
{
    static const char *const kinds[] = {"limit", "remaining", "reset"};
    bool has[3] = {false, false, false};
    uint64_t num[2] = {0, 0};
    int64_t reset_at = 0;
    for (int k = 0; k < 3; k++) {
        char name[64], v[128];
        snprintf(name, sizeof(name), "x-ratelimit-%s-%s", kinds[k], f->what);
        if (rota_http_header(in, name, v, sizeof(v)) < 0)
            continue;
        if (k < 2) {
            /* Azure's -1 on a count means the same as on a reset: nothing to say */
            if (azure && strcmp(v, "-1") == 0)
                continue;
            has[k] = rota_parse_u64(v, &num[k]) == 0;
            if (!has[k])
                rota_obs_problem(out, "%s: not a count: \"%.40s\"", name, v);
        } else {
            reset_at = reset_of(in, name, v, azure, out);
            has[k] = reset_at != 0;
        }
    }
    if (!has[0] && !has[1] && !has[2])
        return;
    struct rota_obs_window *w = rota_obs_window_add(out, "", f->what, f->metric);
    if (!w)
        return;
    w->has_limit = has[0];
    w->limit = num[0];
    w->has_remaining = has[1];
    w->remaining = num[1];
    w->reset_at = reset_at;
}

/* Lower-case letters of "s" without '_' and '-': "InsufficientQuota" and
 * "insufficient_quota" read alike. */
static bool same_word(const char *s, const char *word)
{
    for (; *s; s++) {
        if (*s == '_' || *s == '-')
            continue;
        char c = *s >= 'A' && *s <= 'Z' ? (char)(*s + 32) : *s;
        if (c != *word++)
            return false;
    }
    return *word == 0;
}

/* A wait the message names: "try again in 1.78s", "try again in 20ms", "retry after 6
 * seconds", "retry in 25.08s". */
static int64_t message_hint(const struct rota_http_in *in, const char *msg,
                            struct rota_obs *out)
{
    static const char *const phrases[] = {"try again in ", "retry after ", "retry in "};
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++) {
        const char *p = strstr(msg, phrases[i]);
        if (!p)
            continue;
        p += strlen(phrases[i]);
        char tok[48];
        size_t n = strcspn(p, " ,;)");
        if (n == 0 || n >= sizeof(tok) || !((*p >= '0' && *p <= '9') || *p == '.'))
            continue; /* "retry after some time" names no wait */
        memcpy(tok, p, n);
        tok[n] = 0;
        bool seconds = strncmp(p + n, " second", 7) == 0;
        if (n > 1 && tok[n - 1] == '.') /* the sentence's full stop */
            tok[n - 1] = 0;
        uint64_t d;
        if (rota_parse_go_duration(tok, seconds, &d) == 0)
            return after(in, d, out, "body: error.message");
        rota_obs_problem(out, "body: error.message: unreadable wait \"%.40s\"", tok);
        return 0;
    }
    return 0;
}

/* The strings of an error body's "error" object; NULL where absent. */
struct oai_error {
    const char *type, *code, *message;
};

static void read_error(const struct rota_http_in *in, struct rota_obs *out, json_t **root,
                       struct oai_error *e)
{
    memset(e, 0, sizeof(*e));
    *root = NULL;
    if (in->body_len == 0 || !in->body)
        return;
    json_error_t jerr;
    json_t *doc = json_loadb(in->body, in->body_len, 0, &jerr);
    if (!doc) {
        rota_obs_problem(out, "body: not JSON: %s", jerr.text);
        return;
    }
    *root = doc;
    json_t *err = json_object_get(doc, "error");
    if (!json_is_object(err)) {
        if (json_is_string(err)) /* some compatible servers: {"error":"message"} */
            e->message = json_string_value(err);
        else
            rota_obs_problem(out, "body: no error object");
        return;
    }
    static const char *const keys[] = {"type", "code", "message"};
    const char **dst[] = {&e->type, &e->code, &e->message};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(err, keys[i]);
        if (json_is_string(v))
            *dst[i] = json_string_value(v);
        else if (v && !json_is_null(v) && !(i == 1 && json_is_integer(v)))
            rota_obs_problem(out, "body: error.%s is not a string", keys[i]);
    }
}

/* The latest reset among the windows that are at zero; 0 when none is. */
static int64_t latest_empty_reset(const struct rota_obs *out)
{
    int64_t at = 0;
    for (uint32_t i = 0; i < out->nwin; i++)
        if (out->win[i].has_remaining && out->win[i].remaining == 0 &&
            out->win[i].reset_at > at)
            at = out->win[i].reset_at;
    return at;
}

static void read_status(const struct rota_http_in *in, struct rota_obs *out)
{
    json_t *root;
    struct oai_error e;
    int st = in->status;
    if (st >= 200 && st < 300) {
        out->reachable = true;
        return;
    }
    if (st < 400)
        return;
    read_error(in, out, &root, &e);
    bool billing = (e.code && same_word(e.code, "insufficientquota")) ||
                   (e.type && same_word(e.type, "insufficientquota"));
    if (billing || st == 402) {
        out->cause = ROTA_CAUSE_BILLING;
        out->disable = true;
        rota_obs_detail(out, "%d billing: %s", st, billing ? "insufficient_quota" : "payment");
    } else if (st == 401) {
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        rota_obs_detail(out, "401 key refused");
    } else if (st == 429) {
        bool daily = e.message && (strstr(e.message, "per day") || strstr(e.message, "(RPD)") ||
                                   strstr(e.message, "(TPD)"));
        out->cause = daily ? ROTA_CAUSE_QUOTA : ROTA_CAUSE_RATE;
        rota_obs_detail(out, "429 %s%s%s", daily ? "daily quota" : "rate limit",
                        e.type ? " on " : "", e.type ? e.type : "");
    } else if (st >= 500) {
        out->cause = ROTA_CAUSE_CAPACITY;
        rota_obs_detail(out, "%d provider unavailable", st);
    }
    if (out->cause && !out->disable) {
        out->retry_at = rota_http_retry_at(in, out);
        if (!out->retry_at && e.message)
            out->retry_at = message_hint(in, e.message, out);
        if (!out->retry_at && out->cause != ROTA_CAUSE_CAPACITY)
            out->retry_at = latest_empty_reset(out);
    }
    json_decref(root);
}

static int parse(const struct rota_http_in *in, bool azure, struct rota_obs *out)
{
    rota_obs_init(out);
    if (!in)
        return 0;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        read_family(in, &families[i], azure, out);
    read_status(in, out);
    if (out->nwin || out->cause || out->retry_at || out->disable)
        return 1;
    return out->problems ? -EINVAL : 0;
}

int rota_parse_openai(const struct rota_http_in *in, const struct rota_parse_opts *o,
                      struct rota_obs *out)
{
    (void)o;
    return parse(in, false, out);
}

int rota_parse_azure(const struct rota_http_in *in, const struct rota_parse_opts *o,
                     struct rota_obs *out)
{
    (void)o;
    return parse(in, true, out);
}
