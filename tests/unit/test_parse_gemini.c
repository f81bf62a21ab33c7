/*
 * test_parse_gemini.c - the Gemini API parser on recorded answers and malformed ones.
 *
 * DESIGN
 * Each test feeds rota_parse_gemini one answer (a sample from tests/probes/gemini/ or a
 * body written inline) with a fixed arrival time, and checks the figures a user would
 * see: causes, windows, limits, retry instants in ns worked out by hand. Inline bodies
 * are copied into buffers of exactly their length so a read past the end trips ASan.
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

/* 2025-06-15T12:00:00Z: Pacific daylight time, 05:00 local; next midnight is
 * 2025-06-16T07:00:00Z. */
#define NOW      (INT64_C(1749988800) * SEC)
#define MIDNIGHT (INT64_C(1750057200) * SEC)

static int parse_sample(const char *name, int64_t now, struct rota_obs *obs)
{
    return sample_parse(rota_parse_gemini, "gemini", name, NULL, now, obs);
}

static int parse_mem(int status, const char *headers, const char *body, size_t len,
                     struct rota_obs *obs)
{
    return sample_parse_mem(rota_parse_gemini, NULL, status, headers, body, len, NOW, obs);
}

static int parse_str(int status, const char *headers, const char *body, struct rota_obs *obs)
{
    return parse_mem(status, headers, body, strlen(body), obs);
}

/* A 429 whose details are "details" (a JSON array's inside). */
static int parse_details(const char *details, struct rota_obs *obs)
{
    char body[4096];
    snprintf(body, sizeof(body),
             "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\","
             "\"message\":\"quota\",\"details\":[%s]}}",
             details);
    return parse_str(429, "", body, obs);
}

#define VIOLATION(id, model, value)                                                            \
    "{\"quotaMetric\":\"generativelanguage.googleapis.com/generate_content_free_tier_"         \
    "requests\",\"quotaId\":\"" id "\",\"quotaDimensions\":{\"location\":\"global\","          \
    "\"model\":" model "},\"quotaValue\":" value "}"
#define QUOTA_FAILURE(v)                                                                       \
    "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[" v "]}"
#define RETRY_INFO(d)                                                                          \
    "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":" d "}"
#define PER_MINUTE "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"

/* ---- realistic answers ---- */

static void test_parse_gemini_free_tier_day(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_free_day", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_false(obs.disable);
    assert_false(obs.reachable);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, MIDNIGHT); /* the day's quota: not 25 s */
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].pool, "gemini-2.5-pro");
    assert_string_equal(obs.win[0].what, "requests-per-day");
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_REQUESTS);
    assert_true(obs.win[0].has_limit && obs.win[0].has_remaining && !obs.win[0].has_used);
    assert_int_equal(obs.win[0].limit, 50);
    assert_int_equal(obs.win[0].remaining, 0);
    assert_int_equal(obs.win[0].reset_at, MIDNIGHT);
    assert_non_null(strstr(obs.detail, "GenerateRequestsPerDayPerProjectPerModel-FreeTier"));
}

/* Midnight Pacific across the year and both switches of daylight time. */
static void test_parse_gemini_day_resets_at_pacific_midnight(void **state)
{
    (void)state;
    static const struct {
        int64_t now_s, midnight_s;
    } cases[] = {
        {1764590400, 1764662400}, /* 2025-12-01T12:00Z (PST) -> 2025-12-02T08:00Z */
        {1741512600, 1741590000}, /* 2025-03-09T09:30Z, 01:30 PST -> 03-10T07:00Z (PDT) */
        {1762072200, 1762156800}, /* 2025-11-02T08:30Z, 01:30 PDT -> 11-03T08:00Z (PST) */
        {1762075800, 1762156800}, /* 2025-11-02T09:30Z, 01:30 PST again -> the same */
        {1750057200, 1750143600}, /* exactly midnight 06-16 PDT -> 06-17T07:00Z */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rota_obs obs;
        assert_int_equal(parse_sample("429_free_day", cases[i].now_s * SEC, &obs), 1);
        assert_int_equal(obs.retry_at, cases[i].midnight_s * SEC);
        assert_int_equal(obs.win[0].reset_at, cases[i].midnight_s * SEC);
    }
    /* one second before midnight the 25 s delay is the longer wait */
    struct rota_obs obs;
    int64_t now = (INT64_C(1750057200) - 1) * SEC;
    assert_int_equal(parse_sample("429_free_day", now, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, now + 25 * SEC);
    assert_int_equal(obs.win[0].reset_at, now + 25 * SEC);
}

static void test_parse_gemini_minute_two_violations(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_minute_two", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, NOW + 34 * SEC + 400 * MS); /* RetryInfo, not message */
    assert_int_equal(obs.nwin, 2);
    assert_string_equal(obs.win[0].pool, "gemini-2.0-flash");
    assert_string_equal(obs.win[0].what, "input-tokens-per-minute");
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_TOKENS);
    assert_int_equal(obs.win[0].limit, 250000);
    assert_int_equal(obs.win[0].reset_at, NOW + 34 * SEC + 400 * MS);
    assert_string_equal(obs.win[1].pool, "gemini-2.0-flash");
    assert_string_equal(obs.win[1].what, "requests-per-minute");
    assert_int_equal(obs.win[1].metric, ROTA_METRIC_REQUESTS);
    assert_int_equal(obs.win[1].limit, 15);
    assert_int_equal(obs.win[1].remaining, 0);
    assert_int_equal(obs.win[1].reset_at, NOW + 34 * SEC + 400 * MS);
}

static void test_parse_gemini_minute_without_hint_waits_60s(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_minute_nohint", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, NOW + 60 * SEC);
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].pool, "gemini-2.5-flash");
    assert_int_equal(obs.win[0].limit, 1000);
    assert_int_equal(obs.win[0].reset_at, NOW + 60 * SEC);
}

static void test_parse_gemini_message_fallback(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_message_only", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.retry_at, NOW + 25 * SEC + 80 * MS);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(obs.problems, 0);
    /* "ms" in the message, and a header when the message says nothing */
    assert_int_equal(
        parse_str(429, "", "{\"error\":{\"message\":\"Please retry in 713.5ms.\"}}", &obs), 1);
    assert_int_equal(obs.retry_at, NOW + 713 * MS + 500000);
    assert_int_equal(parse_str(429, "Retry-After: 7\r\n",
                               "{\"error\":{\"code\":429,\"message\":\"exhausted\"}}", &obs),
                     1);
    assert_int_equal(obs.retry_at, NOW + 7 * SEC);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
}

static void test_parse_gemini_no_access_on_tier(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_no_access", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, NOW + 8 * SEC);
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].pool, "gemini-2.5-pro-exp");
    assert_true(obs.win[0].has_limit);
    assert_int_equal(obs.win[0].limit, 0);
    assert_non_null(strstr(obs.detail, "no access to gemini-2.5-pro-exp"));
}

static void test_parse_gemini_long_delay_is_quota(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_long_delay", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, NOW + 3600 * SEC);
    /* 300 s exactly is still a rate limit, 301 s is not */
    assert_int_equal(parse_details(RETRY_INFO("\"300s\""), &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(parse_details(RETRY_INFO("\"301s\""), &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, NOW + 301 * SEC);
}

static void test_parse_gemini_streamed_array(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_stream_array", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.retry_at, NOW + 12 * SEC);
}

static void test_parse_gemini_auth(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("400_key_invalid", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
    assert_true(obs.disable);
    assert_int_equal(obs.disable_until, 0);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_sample("403_leaked", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
    assert_true(obs.disable);
    /* 401 with no body at all still refuses the key */
    assert_int_equal(parse_str(401, "", "", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
    assert_true(obs.disable);
    assert_int_equal(obs.problems, 0);
    /* a 400 about the request is not the key's */
    assert_int_equal(parse_sample("400_bad_request", NOW, &obs), 0);
    assert_int_equal(obs.cause, ROTA_CAUSE_NONE);
    assert_false(obs.disable);
}

static void test_parse_gemini_capacity_and_success(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("503_overloaded", NOW, &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_false(obs.disable);
    assert_int_equal(obs.retry_at, NOW + 30 * SEC);
    assert_int_equal(parse_str(502, "", "<html><body>Bad Gateway</body></html>", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_sample("200_ok", NOW, &obs), 0);
    assert_true(obs.reachable);
    assert_int_equal(obs.cause, ROTA_CAUSE_NONE);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(parse_str(200, "", "data: {\"candidates\":[]}\n\n", &obs), 0);
    assert_int_equal(obs.problems, 0);
    /* an error inside a 200 speaks with its own code */
    assert_int_equal(parse_str(200, "",
                               "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\","
                               "\"message\":\"Please retry in 3s.\"}}",
                               &obs),
                     1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.retry_at, NOW + 3 * SEC);
    assert_int_equal(parse_str(200, "", "{\"error\":{\"status\":\"UNAUTHENTICATED\"}}", &obs),
                     1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
}

/* ---- malformed answers ---- */

static void test_parse_gemini_unreadable_bodies(void **state)
{
    (void)state;
    struct rota_obs obs;
    const char *bad[] = {
        "",
        "   \n",
        "{\"error\":{\"code\":429,\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.Ret",
        "{\"error\":{\"code\":429,\"message\":\"bad \xff\xfe utf-8\"}}",
        "{\"error\":\"RESOURCE_EXHAUSTED\"}",
        "[]",
        "null",
        "<html>Too Many Requests</html>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_str(429, "Retry-After: 5\n", bad[i], &obs), -EINVAL);
        assert_int_equal(obs.cause, ROTA_CAUSE_RATE); /* the status still says so */
        assert_int_equal(obs.retry_at, NOW + 5 * SEC);
        assert_true(obs.problems >= 1);
        assert_true(obs.problem[0] != 0);
    }
    /* a NUL byte inside the JSON */
    static const char nul[] = "{\"error\":{\"code\":429,\"message\":\"a\0b\"}}";
    assert_int_equal(parse_mem(429, "", nul, sizeof(nul) - 1, &obs), -EINVAL);
    assert_int_equal(obs.problems, 1);
    /* an exec probe's output (status 0) that is not JSON */
    assert_int_equal(parse_str(0, "", "gemini: command not found", &obs), -EINVAL);
    /* a broken JSON body on a 5xx still means capacity */
    assert_int_equal(parse_str(503, "", "{\"error\":{\"code\":503", &obs), -EINVAL);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
}

static void test_parse_gemini_truncated_sample(void **state)
{
    (void)state;
    struct sample s;
    assert_int_equal(sample_load("gemini", "429_free_day", &s), 0);
    struct rota_obs obs;
    for (size_t cut = 0; cut < s.body_len - 2; cut += 7) {
        struct rota_http_in in = {429, s.headers, s.headers_len, s.body, cut, NOW};
        assert_int_equal(rota_parse_gemini(&in, NULL, &obs), -EINVAL);
        assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
        assert_true(obs.problems >= 1);
    }
    sample_free(&s);
}

static void test_parse_gemini_bad_fields(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* details of the wrong type: the message still gives the delay */
    assert_int_equal(
        parse_str(429, "",
                  "{\"error\":{\"details\":{\"a\":1},\"message\":\"Please retry in "
                  "2s.\"}}",
                  &obs),
        1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.retry_at, NOW + 2 * SEC);
    /* a detail without @type, violations not an array, a violation not an object */
    assert_int_equal(parse_details("{\"retryDelay\":\"5s\"}, 7, " RETRY_INFO("\"4s\""), &obs),
                     1);
    assert_int_equal(obs.problems, 2);
    assert_string_equal(obs.problem, "error.details[0]: no @type");
    assert_int_equal(obs.retry_at, NOW + 4 * SEC);
    assert_int_equal(parse_details("{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
                                   "\"violations\":\"x\"}",
                                   &obs),
                     1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(parse_details(QUOTA_FAILURE("3, {}"), &obs), 1);
    assert_int_equal(obs.problems, 2);
    assert_int_equal(obs.nwin, 0);
}

static void test_parse_gemini_bad_quota_values(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* a number where a string is expected is still read */
    assert_int_equal(parse_details(QUOTA_FAILURE(VIOLATION(PER_MINUTE, "\"m\"", "15")), &obs),
                     1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].limit, 15);
    static const char *const bad[] = {
        "\"-5\"", "\"99999999999999999999999\"", "1e30",   "-3", "\"15 requests\"", "true",
        "\"\"",   "18446744073709551616",        "\"1.5\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char d[1024];
        snprintf(d, sizeof(d),
                 QUOTA_FAILURE("{\"quotaId\":\"" PER_MINUTE "\",\"quotaDimensions\":{\"model\":"
                               "\"m\"},\"quotaValue\":%s}") "," RETRY_INFO("\"9s\""),
                 bad[i]);
        assert_int_equal(parse_details(d, &obs), 1);
        assert_int_equal(obs.problems, 1);
        assert_int_equal(obs.nwin, 1); /* the window stays: it is used up */
        assert_false(obs.win[0].has_limit);
        assert_true(obs.win[0].has_remaining);
        assert_int_equal(obs.win[0].remaining, 0);
        assert_int_equal(obs.retry_at, NOW + 9 * SEC);
    }
    /* the largest count there is */
    assert_int_equal(
        parse_details(QUOTA_FAILURE(VIOLATION(PER_MINUTE, "\"m\"", "\"18446744073709551615\"")),
                      &obs),
        1);
    assert_int_equal(obs.problems, 0);
    assert_true(obs.win[0].limit == UINT64_MAX);
}

static void test_parse_gemini_bad_models(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_details(QUOTA_FAILURE(VIOLATION(PER_MINUTE, "42", "\"10\"")), &obs),
                     1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].pool, ""); /* the account as a whole */
    assert_int_equal(
        parse_details(
            QUOTA_FAILURE(VIOLATION(
                PER_MINUTE,
                "\"a-model-name-much-longer-than-sixty-three-bytes-xxxxxxxxxxxxxxxxxxxx\"",
                "\"10\"")),
            &obs),
        1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    /* no quotaId and no metric */
    assert_int_equal(parse_details(QUOTA_FAILURE("{\"quotaValue\":\"10\"}"), &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    /* seventeen violations: sixteen windows, one problem */
    char d[8192] =
        "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[";
    for (int i = 0; i < 17; i++)
        snprintf(d + strlen(d), sizeof(d) - strlen(d),
                 "%s{\"quotaId\":\"" PER_MINUTE
                 "\",\"quotaDimensions\":{\"model\":\"m%d\"},\"quotaValue\":\"%d\"}",
                 i ? "," : "", i, i + 1);
    snprintf(d + strlen(d), sizeof(d) - strlen(d), "]}");
    assert_int_equal(parse_details(d, &obs), 1);
    assert_int_equal(obs.nwin, ROTA_OBS_WINDOWS);
    assert_int_equal(obs.problems, 1);
    assert_string_equal(obs.win[15].pool, "m15");
    assert_int_equal(obs.win[15].limit, 16);
    assert_int_equal(obs.win[15].reset_at, NOW + 60 * SEC);
}

static void test_parse_gemini_bad_delays(void **state)
{
    (void)state;
    struct rota_obs obs;
    static const char *const bad[] = {
        "\"-5s\"", "25", "\"abc\"", "\"99999999999999999999s\"", "null", "\"25\"", "\"\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char d[256];
        snprintf(d, sizeof(d), RETRY_INFO("%s"), bad[i]);
        assert_int_equal(parse_details(d, &obs), 1);
        assert_int_equal(obs.problems, 1);
        assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
        assert_int_equal(obs.retry_at, 0); /* nothing else says when */
    }
    /* a zero delay is a delay: now */
    assert_int_equal(parse_details(RETRY_INFO("\"0s\""), &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, NOW);
    /* an odd header is a problem too, not a crash */
    assert_int_equal(parse_str(429, "Retry-After: soon\r\nX-Odd\r\n: \r\n",
                               "{\"error\":{\"code\":429}}", &obs),
                     1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.retry_at, 0);
    assert_int_equal(parse_str(429, "retry-after: Sun, 15 Jun 2025 12:01:00 GMT\n",
                               "{\"error\":{\"code\":429}}", &obs),
                     1);
    assert_int_equal(obs.retry_at, NOW + 60 * SEC);
}

/* A delay with a fraction is waited in full: never a retry before the provider said. */
static void test_parse_gemini_fractional_delay_rounds_up(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_fraction_delay", NOW, &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, NOW + 41 * SEC + 700 * MS);
    assert_int_equal(obs.win[1].reset_at, NOW + 41 * SEC + 700 * MS);
    static const struct {
        const char *delay;
        int64_t ns;
        const char *detail;
    } cases[] = {
        {"\"41.7s\"", 41 * SEC + 700 * MS, "rate limited: retry in 42s"}, /* not 41 */
        {"\"41s\"", 41 * SEC, "retry in 41s"},
        {"\"41.000s\"", 41 * SEC, "retry in 41s"},
        {"\"0.5s\"", 500 * MS, "retry in 1s"},
        {"\"41.000000001s\"", 41 * SEC + 1, "retry in 42s"},
        {"\"41.0000000001s\"", 41 * SEC + 1, "retry in 42s"}, /* 0.1 ns is 1 ns */
        {"\"0.0000000001s\"", 1, "retry in 1s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char d[256];
        snprintf(d, sizeof(d), RETRY_INFO("%s"), cases[i].delay);
        assert_int_equal(parse_details(d, &obs), 1);
        if (obs.retry_at != NOW + cases[i].ns)
            fail_msg("%s: retry in %lld ns, want %lld", cases[i].delay,
                     (long long)(obs.retry_at - NOW), (long long)cases[i].ns);
        sample_expect_detail(&obs, cases[i].detail);
    }
    /* just over 300 s is a day's quota, not a rate limit */
    assert_int_equal(parse_details(RETRY_INFO("\"300.0000000001s\""), &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, NOW + 300 * SEC + 1);
    /* the message's delay and Retry-After the same */
    assert_int_equal(parse_str(429, "",
                               "{\"error\":{\"message\":\"Please retry in 25.0000000001s.\"}}",
                               &obs),
                     1);
    assert_int_equal(obs.retry_at, NOW + 25 * SEC + 1);
    assert_int_equal(parse_str(429, "Retry-After: 7.0000000001\r\n",
                               "{\"error\":{\"code\":429,\"message\":\"exhausted\"}}", &obs),
                     1);
    assert_int_equal(obs.retry_at, NOW + 7 * SEC + 1);
    sample_expect_detail(&obs, "retry in 8s");
}

static void test_parse_gemini_huge_numbers_elsewhere(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* an integer past 2^64 in a field nobody reads costs nothing */
    assert_int_equal(parse_str(429, "",
                               "{\"error\":{\"code\":123456789012345678901234567890,"
                               "\"details\":[" RETRY_INFO("\"1s\"") "]}}",
                               &obs),
                     1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, NOW + SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_gemini_free_tier_day),
        cmocka_unit_test(test_parse_gemini_day_resets_at_pacific_midnight),
        cmocka_unit_test(test_parse_gemini_minute_two_violations),
        cmocka_unit_test(test_parse_gemini_minute_without_hint_waits_60s),
        cmocka_unit_test(test_parse_gemini_message_fallback),
        cmocka_unit_test(test_parse_gemini_no_access_on_tier),
        cmocka_unit_test(test_parse_gemini_long_delay_is_quota),
        cmocka_unit_test(test_parse_gemini_streamed_array),
        cmocka_unit_test(test_parse_gemini_auth),
        cmocka_unit_test(test_parse_gemini_capacity_and_success),
        cmocka_unit_test(test_parse_gemini_unreadable_bodies),
        cmocka_unit_test(test_parse_gemini_truncated_sample),
        cmocka_unit_test(test_parse_gemini_bad_fields),
        cmocka_unit_test(test_parse_gemini_bad_quota_values),
        cmocka_unit_test(test_parse_gemini_bad_models),
        cmocka_unit_test(test_parse_gemini_bad_delays),
        cmocka_unit_test(test_parse_gemini_huge_numbers_elsewhere),
        cmocka_unit_test(test_parse_gemini_fractional_delay_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
