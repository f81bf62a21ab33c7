/*
 * test_parse_antigravity.c - the Antigravity / Code Assist parser on recorded answers
 * (fetchAvailableModels, retrieveUserQuota, 429s) and malformed ones.
 *
 * DESIGN
 * Each test feeds rota_parse_antigravity one answer (a sample from
 * tests/probes/antigravity/ or a body written inline) with a fixed arrival time, and
 * checks windows, causes and instants in ns worked out by hand. Inline bodies are copied
 * into buffers of exactly their length so a read past the end trips ASan.
 * Single-threaded; no clock is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "../probes/sample.h"

#define SEC INT64_C(1000000000)
#define MS  INT64_C(1000000)
#define NOW (INT64_C(1764590400) * SEC) /* 2025-12-01T12:00:00Z */

static int parse_sample(const char *name, struct rota_obs *obs)
{
    return sample_parse(rota_parse_antigravity, "antigravity", name, NULL, NOW, obs);
}

static int parse_mem(int status, const char *headers, const char *body, size_t len,
                     struct rota_obs *obs)
{
    return sample_parse_mem(rota_parse_antigravity, NULL, status, headers, body, len, NOW, obs);
}

static int parse_str(int status, const char *headers, const char *body, struct rota_obs *obs)
{
    return parse_mem(status, headers, body, strlen(body), obs);
}

/* A fetchAvailableModels answer with one model whose quotaInfo is "qi". */
static int parse_model(const char *qi, struct rota_obs *obs)
{
    char body[1024];
    snprintf(body, sizeof(body), "{\"models\":{\"m\":{\"quotaInfo\":%s}}}", qi);
    return parse_str(200, "", body, obs);
}

/* A retrieveUserQuota answer with one bucket "b". */
static int parse_bucket(const char *b, struct rota_obs *obs)
{
    char body[1024];
    snprintf(body, sizeof(body), "{\"buckets\":[%s]}", b);
    return parse_str(200, "", body, obs);
}

/* A 429 with an ErrorInfo of "reason" and "metadata", and then "more" details. */
static int parse_429(const char *headers, const char *reason, const char *metadata,
                     const char *more, struct rota_obs *obs)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\",\"details\":["
             "{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":%s,"
             "\"metadata\":%s}%s]}}",
             reason, metadata, more);
    return parse_str(429, headers, body, obs);
}

#define RETRY_INFO(d)                                                                          \
    ",{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":" d "}"

/* ---- realistic answers ---- */

static void test_parse_antigravity_models(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("fetch_models", &obs), 1);
    assert_true(obs.reachable);
    assert_int_equal(obs.cause, ROTA_CAUSE_NONE);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.nwin, 4); /* chat_*, tab_* and the model without quota skipped */
    static const struct {
        const char *pool;
        uint64_t remaining;
        int64_t reset_at;
    } want[] = {
        {"gemini-2.5-pro", 800000, INT64_C(1764608400) * SEC},
        {"claude-sonnet-4-5", 0, INT64_C(1765098000) * SEC + 500 * MS}, /* used up */
        {"gemini-3-pro-high", 333333, INT64_C(1764603730) * SEC},       /* +01:00 */
        {"gemini-2.5-flash", 1000000, INT64_C(1764608400) * SEC},
    };
    for (int i = 0; i < 4; i++) {
        assert_string_equal(obs.win[i].pool, want[i].pool);
        assert_string_equal(obs.win[i].what, "quota");
        assert_int_equal(obs.win[i].metric, ROTA_METRIC_FRACTION);
        assert_true(obs.win[i].has_limit && obs.win[i].has_remaining && !obs.win[i].has_used);
        assert_int_equal(obs.win[i].limit, 1000000);
        assert_int_equal(obs.win[i].remaining, want[i].remaining);
        assert_int_equal(obs.win[i].reset_at, want[i].reset_at);
    }
    assert_non_null(strstr(obs.detail, "claude-sonnet-4-5 used up"));
}

static void test_parse_antigravity_user_quota(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("user_quota", &obs), 1);
    assert_true(obs.reachable);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.nwin, 4);
    assert_string_equal(obs.win[0].pool, "gemini-2.5-pro");
    assert_string_equal(obs.win[0].what, "requests");
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_REQUESTS);
    assert_int_equal(obs.win[0].remaining, 870);
    assert_true(obs.win[0].has_limit);
    assert_int_equal(obs.win[0].limit, 1000); /* 870 / 0.87 */
    assert_int_equal(obs.win[0].reset_at, INT64_C(1764633600) * SEC);
    assert_string_equal(obs.win[1].pool, "gemini-2.5-flash");
    assert_string_equal(obs.win[1].what, "tokens");
    assert_int_equal(obs.win[1].metric, ROTA_METRIC_TOKENS);
    assert_int_equal(obs.win[1].remaining, 1500000);
    assert_int_equal(obs.win[1].limit, 2000000);
    assert_int_equal(obs.win[1].reset_at, INT64_C(1764590460) * SEC);
    assert_string_equal(obs.win[2].pool, "gemini-2.5-flash-lite"); /* a fraction only */
    assert_int_equal(obs.win[2].metric, ROTA_METRIC_FRACTION);
    assert_int_equal(obs.win[2].limit, 1000000);
    assert_int_equal(obs.win[2].remaining, 500000);
    assert_string_equal(obs.win[3].pool, "gemini-3-pro-preview"); /* used up */
    assert_int_equal(obs.win[3].metric, ROTA_METRIC_REQUESTS);
    assert_true(obs.win[3].has_remaining);
    assert_int_equal(obs.win[3].remaining, 0);
    assert_false(obs.win[3].has_limit); /* 0 / 0 says nothing */
}

static void test_parse_antigravity_quota_exhausted(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* the timestamp wins over the delay (which would add 0.170961 s) */
    assert_int_equal(parse_sample("429_quota", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_false(obs.disable);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, INT64_C(1765129820) * SEC);
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].pool, "claude-opus-4-5-thinking");
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_FRACTION);
    assert_int_equal(obs.win[0].limit, 1000000);
    assert_int_equal(obs.win[0].remaining, 0);
    assert_int_equal(obs.win[0].reset_at, INT64_C(1765129820) * SEC);
    /* without a timestamp, quotaResetDelay beats RetryInfo and Retry-After */
    assert_int_equal(parse_sample("429_quota_delay", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, NOW + 7205 * SEC + 500 * MS);
    assert_int_equal(obs.win[0].reset_at, NOW + 7205 * SEC + 500 * MS);
    assert_string_equal(obs.win[0].pool, "gemini-2.5-pro");
}

static void test_parse_antigravity_rate_and_capacity(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_rate", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.retry_at, NOW + 1203 * MS);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_sample("429_capacity", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.retry_at, 0);
    assert_int_equal(obs.nwin, 0);
    assert_false(obs.disable);
    assert_int_equal(obs.problems, 0);
    /* capacity on a 503, with Retry-After */
    assert_int_equal(parse_str(503, "Retry-After: 3\r\n",
                               "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}", &obs),
                     1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.retry_at, NOW + 3 * SEC);
}

static void test_parse_antigravity_auth(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("401_unauthenticated", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
    assert_true(obs.disable);
    assert_int_equal(obs.disable_until, 0);
    assert_int_equal(parse_sample("403_permission", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
    assert_true(obs.disable);
    assert_int_equal(parse_str(401, "", "", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
    assert_int_equal(obs.problems, 0);
}

static void test_parse_antigravity_other_answers(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("load_code_assist", &obs), 0);
    assert_true(obs.reachable);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(
        parse_str(400, "", "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\"}}", &obs),
        0);
    assert_int_equal(obs.cause, ROTA_CAUSE_NONE);
    /* an exec probe's output: a quota answer proves the token works; other output not */
    assert_int_equal(parse_str(0, "", "{\"models\":{\"m\":{\"quotaInfo\":{}}}}", &obs), 1);
    assert_true(obs.reachable);
    assert_int_equal(obs.nwin, 1);
    assert_int_equal(obs.win[0].remaining, 0);
    assert_int_equal(parse_str(0, "", "{\"cloudaicompanionProject\":\"p\"}", &obs), 0);
    assert_false(obs.reachable);
    /* an error inside a 200 */
    assert_int_equal(parse_str(200, "",
                               "[{\"error\":{\"code\":429,\"details\":[{\"@type\":\"type."
                               "googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"QUOTA_"
                               "EXHAUSTED\"}]}}]",
                               &obs),
                     1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.nwin, 0); /* no model named */
}

/* ---- malformed answers ---- */

static void test_parse_antigravity_unreadable_bodies(void **state)
{
    (void)state;
    struct rota_obs obs;
    static const char *const bad[] = {
        "{\"models\":{\"m\":{\"quotaInfo\":{\"remainingFraction\":0.5",
        "{\"models\":{\"m\xff\xfe\":{}}}",
        "{\"models\":[]}",
        "{\"buckets\":{}}",
        "{\"buckets\":[{\"remainingAmount\":\"5\"}]} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_str(200, "", bad[i], &obs), -EINVAL);
        assert_true(obs.problems >= 1);
        assert_int_equal(obs.nwin, 0);
    }
    /* a 200 that is not JSON at all says nothing, and is no problem */
    assert_int_equal(parse_str(200, "", "data: {\"response\":{}}\n\n", &obs), 0);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_str(200, "", "", &obs), 0);
    assert_int_equal(parse_str(200, "", "{}", &obs), 0);
    /* a 429 must be readable; the status still says rate */
    static const char *const bad429[] = {"", "{", "\"RESOURCE_EXHAUSTED\"", "{\"error\":5}",
                                         "<html></html>"};
    for (size_t i = 0; i < sizeof(bad429) / sizeof(bad429[0]); i++) {
        assert_int_equal(parse_str(429, "Retry-After: 9\n", bad429[i], &obs), -EINVAL);
        assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
        assert_int_equal(obs.retry_at, NOW + 9 * SEC);
        assert_true(obs.problems >= 1);
    }
}

static void test_parse_antigravity_truncated_sample(void **state)
{
    (void)state;
    struct sample s;
    assert_int_equal(sample_load("antigravity", "fetch_models", &s), 0);
    struct rota_obs obs;
    for (size_t cut = 1; cut < s.body_len - 2; cut += 5) {
        struct rota_http_in in = {200, s.headers, s.headers_len, s.body, cut, NOW};
        assert_int_equal(rota_parse_antigravity(&in, NULL, &obs), -EINVAL);
        assert_true(obs.problems >= 1);
    }
    sample_free(&s);
}

static void test_parse_antigravity_bad_models(void **state)
{
    (void)state;
    struct rota_obs obs;
    static const char *const bad_fraction[] = {"\"0.5\"", "1.5",  "-0.1",
                                               "true",    "null", "1e400"};
    for (size_t i = 0; i < sizeof(bad_fraction) / sizeof(bad_fraction[0]); i++) {
        char qi[128];
        snprintf(qi, sizeof(qi), "{\"remainingFraction\":%s}", bad_fraction[i]);
        int rc = parse_model(qi, &obs);
        if (strcmp(bad_fraction[i], "1e400") == 0) { /* jansson refuses the whole body */
            assert_int_equal(rc, -EINVAL);
            continue;
        }
        assert_int_equal(rc, 1);
        assert_int_equal(obs.problems, 1);
        assert_int_equal(obs.nwin, 0); /* a fraction that cannot be read is not "used up" */
    }
    static const char *const bad_reset[] = {
        "\"soon\"", "1764608400", "\"1969-12-31T23:59:59Z\"", "\"1970-01-01T00:00:00Z\"",
        "\"2025-13-01T00:00:00Z\""};
    for (size_t i = 0; i < sizeof(bad_reset) / sizeof(bad_reset[0]); i++) {
        char qi[128];
        snprintf(qi, sizeof(qi), "{\"remainingFraction\":0.25,\"resetTime\":%s}", bad_reset[i]);
        assert_int_equal(parse_model(qi, &obs), 1);
        assert_int_equal(obs.problems, 1);
        assert_int_equal(obs.nwin, 1); /* the figure stays, the reset goes */
        assert_int_equal(obs.win[0].remaining, 250000);
        assert_int_equal(obs.win[0].reset_at, 0);
    }
    assert_int_equal(parse_model("[0.5]", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(parse_model("{\"remainingFraction\":0}", &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].remaining, 0);
    /* a model name too long for a pool */
    assert_int_equal(
        parse_str(200, "",
                  "{\"models\":{\"a-model-name-much-longer-than-sixty-three-bytes-"
                  "xxxxxxxxxxxxxxxxxxxxxx"
                  "\":{\"quotaInfo\":{\"remainingFraction\":1}},\"b\":{\"quotaInfo\":{}}}}",
                  &obs),
        1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].pool, "b");
    /* seventeen models: sixteen windows, one problem */
    char body[4096] = "{\"models\":{";
    for (int i = 0; i < 17; i++)
        snprintf(body + strlen(body), sizeof(body) - strlen(body),
                 "%s\"m%d\":{\"quotaInfo\":{\"remainingFraction\":0.5}}", i ? "," : "", i);
    snprintf(body + strlen(body), sizeof(body) - strlen(body), "}}");
    assert_int_equal(parse_str(200, "", body, &obs), 1);
    assert_int_equal(obs.nwin, ROTA_OBS_WINDOWS);
    assert_int_equal(obs.problems, 1);
    assert_string_equal(obs.win[15].pool, "m15");
}

static void test_parse_antigravity_bad_buckets(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* an amount that cannot be read falls back to the fraction */
    static const char *const bad_amount[] = {
        "\"-5\"", "\"99999999999999999999\"", "-5", "\"12.5\"", "true", "1e20"};
    for (size_t i = 0; i < sizeof(bad_amount) / sizeof(bad_amount[0]); i++) {
        char b[256];
        snprintf(b, sizeof(b),
                 "{\"remainingAmount\":%s,\"remainingFraction\":0.5,\"tokenType\":\"REQUESTS\","
                 "\"modelId\":\"m\"}",
                 bad_amount[i]);
        assert_int_equal(parse_bucket(b, &obs), 1);
        assert_int_equal(obs.problems, 1);
        assert_int_equal(obs.nwin, 1);
        assert_int_equal(obs.win[0].metric, ROTA_METRIC_FRACTION);
        assert_int_equal(obs.win[0].remaining, 500000);
    }
    /* a number where a string is expected is still a count */
    assert_int_equal(parse_bucket("{\"remainingAmount\":40,\"tokenType\":\"TOKENS\"}", &obs),
                     1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_TOKENS);
    assert_int_equal(obs.win[0].remaining, 40);
    assert_false(obs.win[0].has_limit);
    assert_string_equal(obs.win[0].pool, "");
    /* a count of an unknown unit keeps only the fraction */
    assert_int_equal(parse_bucket("{\"remainingAmount\":\"4\",\"remainingFraction\":0.25,"
                                  "\"tokenType\":\"WIDGETS\"}",
                                  &obs),
                     1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_FRACTION);
    assert_int_equal(obs.win[0].remaining, 250000);
    assert_int_equal(parse_bucket("{\"remainingAmount\":\"4\"}", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    /* neither figure: used up, as fetchAvailableModels means it */
    assert_int_equal(
        parse_bucket("{\"modelId\":\"m\",\"resetTime\":\"2025-12-02T00:00:00Z\"}", &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].remaining, 0);
    assert_int_equal(obs.win[0].reset_at, INT64_C(1764633600) * SEC);
    /* wrong types */
    assert_int_equal(parse_bucket("7, \"x\", {\"modelId\":5}", &obs), 1);
    assert_int_equal(obs.problems, 3);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(parse_bucket("{\"remainingFraction\":0.5,\"resetTime\":\"-1\"}", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.win[0].reset_at, 0);
}

static void test_parse_antigravity_bad_errors(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* each bad reset falls back to the next in order */
    assert_int_equal(
        parse_429("Retry-After: 30\n", "\"QUOTA_EXHAUSTED\"",
                  "{\"quotaResetTimeStamp\":\"tomorrow\",\"quotaResetDelay\":\"-1s\"}",
                  RETRY_INFO("\"2s\""), &obs),
        1);
    assert_int_equal(obs.problems, 2);
    assert_int_equal(obs.retry_at, NOW + 2 * SEC);
    assert_int_equal(parse_429("Retry-After: 30\n", "\"QUOTA_EXHAUSTED\"",
                               "{\"quotaResetTimeStamp\":5,\"quotaResetDelay\":[]}",
                               RETRY_INFO("2"), &obs),
                     1);
    assert_int_equal(obs.problems, 3);
    assert_int_equal(obs.retry_at, NOW + 30 * SEC);
    assert_int_equal(parse_429("", "\"QUOTA_EXHAUSTED\"",
                               "{\"quotaResetDelay\":\"99999999999999999999h\"}", "", &obs),
                     1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.retry_at, 0);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    /* a zero delay is now */
    assert_int_equal(
        parse_429("", "\"RATE_LIMIT_EXCEEDED\"", "{\"quotaResetDelay\":\"0s\"}", "", &obs), 1);
    assert_int_equal(obs.retry_at, NOW);
    assert_int_equal(obs.problems, 0);
    /* unknown or mistyped reasons: a rate limit, said so */
    assert_int_equal(parse_429("", "\"SOMETHING_NEW\"", "{}", RETRY_INFO("\"1s\""), &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.retry_at, NOW + SEC);
    assert_int_equal(parse_429("", "42", "{}", "", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.problems, 1);
    /* metadata of the wrong type, a model of the wrong type */
    assert_int_equal(parse_429("", "\"QUOTA_EXHAUSTED\"", "\"x\"", "", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(parse_429("", "\"QUOTA_EXHAUSTED\"", "{\"model\":{}}", "", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    /* no ErrorInfo at all: RetryInfo alone */
    assert_int_equal(
        parse_str(429, "",
                  "{\"error\":{\"code\":429,\"details\":[5,{\"@type\":\"type."
                  "googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"4s\"}]}}",
                  &obs),
        1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.retry_at, NOW + 4 * SEC);
}

/* A reset or a delay with a fraction is waited in full, in every place it may be read. */
static void test_parse_antigravity_fractional_reset_rounds_up(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* RetryInfo: the instant, and the wait told to an operator */
    assert_int_equal(
        parse_429("", "\"RATE_LIMIT_EXCEEDED\"", "{}", RETRY_INFO("\"41.7s\""), &obs), 1);
    assert_int_equal(obs.retry_at, NOW + 41 * SEC + 700 * MS);
    sample_expect_detail(&obs, "retry in 42s"); /* not 41 */
    assert_int_equal(
        parse_429("", "\"RATE_LIMIT_EXCEEDED\"", "{}", RETRY_INFO("\"41.0000000001s\""), &obs),
        1);
    assert_int_equal(obs.retry_at, NOW + 41 * SEC + 1);
    assert_int_equal(
        parse_429("", "\"RATE_LIMIT_EXCEEDED\"", "{}", RETRY_INFO("\"41.000s\""), &obs), 1);
    assert_int_equal(obs.retry_at, NOW + 41 * SEC);
    sample_expect_detail(&obs, "retry in 41s");
    /* quotaResetDelay and quotaResetTimeStamp */
    assert_int_equal(parse_429("", "\"QUOTA_EXHAUSTED\"",
                               "{\"model\":\"m\",\"quotaResetDelay\":\"2h0m5.0000000001s\"}",
                               "", &obs),
                     1);
    assert_int_equal(obs.retry_at, NOW + 7205 * SEC + 1);
    assert_int_equal(obs.win[0].reset_at, NOW + 7205 * SEC + 1);
    sample_expect_detail(&obs, "retry in 7206s");
    assert_int_equal(parse_429("", "\"QUOTA_EXHAUSTED\"",
                               "{\"quotaResetTimeStamp\":\"2025-12-01T12:00:41.7000000001Z\"}",
                               "", &obs),
                     1);
    assert_int_equal(obs.retry_at, NOW + 41 * SEC + 700 * MS + 1);
    /* Retry-After, when the body names no reset */
    assert_int_equal(
        parse_429("Retry-After: 1.0000000001\r\n", "\"RATE_LIMIT_EXCEEDED\"", "{}", "", &obs),
        1);
    assert_int_equal(obs.retry_at, NOW + SEC + 1);
    /* a model's and a bucket's resetTime */
    assert_int_equal(parse_model("{\"remainingFraction\":0.5,"
                                 "\"resetTime\":\"2025-12-01T13:00:00.0000000001Z\"}",
                                 &obs),
                     1);
    assert_int_equal(obs.win[0].reset_at, NOW + 3600 * SEC + 1);
    assert_int_equal(parse_bucket("{\"remainingFraction\":0.5,"
                                  "\"resetTime\":\"2025-12-01T13:00:00.9999999999Z\"}",
                                  &obs),
                     1);
    assert_int_equal(obs.win[0].reset_at, NOW + 3601 * SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_antigravity_models),
        cmocka_unit_test(test_parse_antigravity_user_quota),
        cmocka_unit_test(test_parse_antigravity_quota_exhausted),
        cmocka_unit_test(test_parse_antigravity_rate_and_capacity),
        cmocka_unit_test(test_parse_antigravity_auth),
        cmocka_unit_test(test_parse_antigravity_other_answers),
        cmocka_unit_test(test_parse_antigravity_unreadable_bodies),
        cmocka_unit_test(test_parse_antigravity_truncated_sample),
        cmocka_unit_test(test_parse_antigravity_bad_models),
        cmocka_unit_test(test_parse_antigravity_bad_buckets),
        cmocka_unit_test(test_parse_antigravity_bad_errors),
        cmocka_unit_test(test_parse_antigravity_fractional_reset_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
