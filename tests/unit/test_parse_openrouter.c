/*
 * test_parse_openrouter.c - the OpenRouter parser on recorded answers (/api/v1/key,
 * /api/v1/credits, 402, 429, errors inside a 200) and malformed ones.
 *
 * DESIGN
 * Each test feeds rota_parse_openrouter one answer (a sample from tests/probes/openrouter/
 * or a body written inline) with a fixed arrival time, and checks credit windows in
 * micro-dollars, causes and instants in ns worked out by hand. Inline bodies are copied
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
#define NOW (INT64_C(1741262400) * SEC) /* Thursday 2025-03-06T12:00:00Z */

#define NEXT_DAY   (INT64_C(1741305600) * SEC) /* 2025-03-07T00:00:00Z */
#define NEXT_WEEK  (INT64_C(1741564800) * SEC) /* Monday 2025-03-10T00:00:00Z */
#define NEXT_MONTH (INT64_C(1743465600) * SEC) /* 2025-04-01T00:00:00Z */

static int parse_sample(const char *name, struct rota_obs *obs)
{
    return sample_parse(rota_parse_openrouter, "openrouter", name, NULL, NOW, obs);
}

static int parse_mem(int status, const char *headers, const char *body, size_t len,
                     struct rota_obs *obs)
{
    return sample_parse_mem(rota_parse_openrouter, NULL, status, headers, body, len, NOW, obs);
}

static int parse_str(int status, const char *headers, const char *body, struct rota_obs *obs)
{
    return parse_mem(status, headers, body, strlen(body), obs);
}

/* A /api/v1/key answer whose data object holds "fields". */
static int parse_key(const char *fields, struct rota_obs *obs)
{
    char body[1024];
    snprintf(body, sizeof(body), "{\"data\":{%s}}", fields);
    return parse_str(200, "", body, obs);
}

/* A 429 whose error.metadata.headers object is "hdrs". */
static int parse_429(const char *http_headers, const char *hdrs, struct rota_obs *obs)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"error\":{\"message\":\"Rate limit exceeded: free-models-per-min. \","
             "\"code\":429,\"metadata\":{\"headers\":%s,\"provider_name\":null}}}",
             hdrs);
    return parse_str(429, http_headers, body, obs);
}

/* ---- realistic answers ---- */

static void test_parse_openrouter_key_monthly(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("key_monthly", &obs), 1);
    assert_true(obs.reachable);
    assert_int_equal(obs.cause, ROTA_CAUSE_NONE);
    assert_false(obs.disable);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].pool, "");
    assert_string_equal(obs.win[0].what, "credits");
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_CREDITS);
    assert_true(obs.win[0].has_limit && obs.win[0].has_remaining && obs.win[0].has_used);
    assert_int_equal(obs.win[0].limit, 25000000);     /* $25 */
    assert_int_equal(obs.win[0].remaining, 11248800); /* $11.2488 */
    assert_int_equal(obs.win[0].used, 13751200);
    assert_int_equal(obs.win[0].reset_at, NEXT_MONTH);
    assert_null(strstr(obs.detail, "sk-or")); /* never a key, not even its label */
}

static void test_parse_openrouter_key_unlimited_and_free(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("key_unlimited", &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.nwin, 1);
    assert_false(obs.win[0].has_limit);
    assert_false(obs.win[0].has_remaining);
    assert_true(obs.win[0].has_used);
    assert_int_equal(obs.win[0].used, 5400); /* $0.0054 */
    assert_int_equal(obs.win[0].reset_at, 0);
    assert_non_null(strstr(obs.detail, "no credit limit"));
    assert_int_equal(parse_sample("key_free", &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].used, 0);
    assert_non_null(strstr(obs.detail, "free tier"));
}

static void test_parse_openrouter_key_weekly_spent(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("key_weekly_spent", &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].limit, 10000000);
    assert_int_equal(obs.win[0].remaining, 0);
    assert_int_equal(obs.win[0].used, 10000000); /* limit - remaining, not all-time usage */
    assert_int_equal(obs.win[0].reset_at, NEXT_WEEK);
    /* daily, and the period's usage when no remaining is given */
    assert_int_equal(parse_key("\"limit\":5,\"limit_reset\":\"daily\",\"usage\":9,"
                               "\"usage_daily\":1.25",
                               &obs),
                     1);
    assert_int_equal(obs.problems, 0);
    assert_false(obs.win[0].has_remaining);
    assert_int_equal(obs.win[0].used, 1250000);
    assert_int_equal(obs.win[0].reset_at, NEXT_DAY);
    /* a Monday's week ends on the next Monday; a December's month in January */
    struct rota_http_in in = {200, "",
                              0,   "{\"data\":{\"limit\":1,\"limit_reset\":\"weekly\"}}",
                              0,   INT64_C(1741564800) * SEC};
    in.body_len = strlen(in.body);
    assert_int_equal(rota_parse_openrouter(&in, NULL, &obs), 1);
    assert_int_equal(obs.win[0].reset_at, (INT64_C(1741564800) + 7 * 86400) * SEC);
    in.body = "{\"data\":{\"limit\":1,\"limit_reset\":\"monthly\"}}";
    in.body_len = strlen(in.body);
    in.now = INT64_C(1767139200) * SEC; /* 2025-12-31T00:00:00Z */
    assert_int_equal(rota_parse_openrouter(&in, NULL, &obs), 1);
    assert_int_equal(obs.win[0].reset_at, INT64_C(1767225600) * SEC); /* 2026-01-01 */
}

static void test_parse_openrouter_credits(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("credits", &obs), 1);
    assert_true(obs.reachable);
    assert_int_equal(obs.problems, 0);
    assert_string_equal(obs.win[0].what, "account-credits");
    assert_int_equal(obs.win[0].limit, 50000000);
    assert_int_equal(obs.win[0].used, 42123456);
    assert_int_equal(obs.win[0].remaining, 7876544);
}

static void test_parse_openrouter_billing_and_auth(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("402_credits", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_BILLING);
    assert_true(obs.disable);
    assert_int_equal(obs.disable_until, 0);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_sample("403_key_limit", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_BILLING);
    assert_true(obs.disable);
    assert_int_equal(parse_sample("401_no_auth", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_AUTH);
    assert_true(obs.disable);
    /* moderation is about the request, not the key */
    assert_int_equal(parse_sample("403_moderation", &obs), 0);
    assert_int_equal(obs.cause, ROTA_CAUSE_NONE);
    assert_false(obs.disable);
    assert_int_equal(parse_str(402, "", "", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_BILLING);
    assert_int_equal(obs.problems, 0);
}

static void test_parse_openrouter_429_day_and_minute(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_free_day", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, NEXT_DAY); /* 1741305600000 ms */
    assert_int_equal(obs.nwin, 1);
    assert_string_equal(obs.win[0].what, "free-models-per-day");
    assert_int_equal(obs.win[0].metric, ROTA_METRIC_REQUESTS);
    assert_int_equal(obs.win[0].limit, 50);
    assert_true(obs.win[0].has_remaining);
    assert_int_equal(obs.win[0].remaining, 0);
    assert_int_equal(obs.win[0].reset_at, NEXT_DAY);
    assert_int_equal(parse_sample("429_free_min", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.retry_at, NOW + 42 * SEC);
    assert_string_equal(obs.win[0].what, "free-models-per-min");
    assert_int_equal(obs.win[0].limit, 20);
    assert_int_equal(obs.win[0].reset_at, NOW + 42 * SEC);
    /* the same error inside an HTTP 200 */
    assert_int_equal(parse_sample("200_json_error", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
    assert_int_equal(obs.retry_at, NOW + 42 * SEC);
    assert_false(obs.reachable);
}

static void test_parse_openrouter_capacity(void **state)
{
    (void)state;
    struct rota_obs obs;
    assert_int_equal(parse_sample("429_upstream", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.nwin, 0);
    assert_int_equal(obs.retry_at, 0);
    assert_false(obs.disable);
    assert_int_equal(parse_sample("502_provider", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(parse_sample("200_stream_error", &obs), 1); /* 502 mid-stream */
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_sample("200_completion", &obs), 0);
    assert_true(obs.reachable);
    assert_int_equal(obs.cause, ROTA_CAUSE_NONE);
    assert_int_equal(obs.nwin, 0);
    /* a stream without an error says nothing */
    assert_int_equal(parse_str(200, "", ": OPENROUTER PROCESSING\n\ndata: [DONE]\n\n", &obs),
                     0);
    assert_int_equal(obs.problems, 0);
    /* a word for a code is the provider's failure; no code at all is a problem */
    assert_int_equal(parse_str(200, "", "{\"error\":{\"code\":\"server_error\"}}", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_str(200, "", "{\"error\":{\"message\":\"x\"}}", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(parse_str(200, "", "{\"error\":{\"code\":\"402\"}}", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_BILLING);
}

/* ---- malformed answers ---- */

static void test_parse_openrouter_bad_key_fields(void **state)
{
    (void)state;
    struct rota_obs obs;
    static const char *const bad_limit[] = {"\"25\"", "-5", "1e300",
                                            "true",   "[]", "123456789012345678901234567890"};
    for (size_t i = 0; i < sizeof(bad_limit) / sizeof(bad_limit[0]); i++) {
        char f[256];
        snprintf(f, sizeof(f), "\"limit\":%s,\"limit_remaining\":2,\"usage\":3", bad_limit[i]);
        assert_int_equal(parse_key(f, &obs), 1);
        assert_int_equal(obs.problems, 1);
        assert_int_equal(obs.nwin, 1);
        assert_false(obs.win[0].has_limit);
        assert_int_equal(obs.win[0].remaining, 2000000);
        assert_int_equal(obs.win[0].used, 3000000); /* all-time usage stands in */
    }
    /* overdrawn: a negative remaining is read as nothing left, and said */
    assert_int_equal(parse_key("\"limit\":10,\"limit_remaining\":-0.25", &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].remaining, 0);
    assert_int_equal(obs.win[0].used, 10000000);
    assert_non_null(strstr(obs.detail, "overdrawn"));
    /* remaining above the limit: nothing used */
    assert_int_equal(parse_key("\"limit\":1,\"limit_remaining\":2", &obs), 1);
    assert_int_equal(obs.win[0].used, 0);
    /* bad periods, flags and usage */
    assert_int_equal(
        parse_key("\"limit\":1,\"limit_remaining\":1,\"limit_reset\":\"yearly\"", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.win[0].reset_at, 0);
    assert_int_equal(parse_key("\"limit\":1,\"limit_remaining\":1,\"limit_reset\":5", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(parse_key("\"limit\":null,\"usage\":true,\"is_free_tier\":\"yes\"", &obs),
                     0);
    assert_int_equal(obs.problems, 2);
    assert_int_equal(obs.nwin, 0);
    /* the smallest amounts round to the nearest micro-dollar */
    assert_int_equal(parse_key("\"limit\":0.0000004,\"limit_remaining\":0.0000006", &obs), 1);
    assert_int_equal(obs.win[0].limit, 0);
    assert_int_equal(obs.win[0].remaining, 1);
}

static void test_parse_openrouter_unreadable_bodies(void **state)
{
    (void)state;
    struct rota_obs obs;
    static const char *const bad[] = {
        "{\"data\":{\"limit\":25,\"usage\":13.75",
        "{\"data\":{\"label\":\"sk-or-v1-\xc3\x28\",\"limit\":25}}",
        "{\"data\":5}",
        "{\"error\":\"Rate limit\"}",
        "[{\"data\":",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_str(200, "", bad[i], &obs), -EINVAL);
        assert_true(obs.problems >= 1);
        assert_int_equal(obs.nwin, 0);
    }
    static const char nul[] = "{\"data\":{\"limit\":1,\"x\":\"\0\"}}";
    assert_int_equal(parse_mem(200, "", nul, sizeof(nul) - 1, &obs), -EINVAL);
    /* no problem: an empty success, a listing, HTML from a proxy */
    assert_int_equal(parse_str(200, "", "", &obs), 0);
    assert_int_equal(parse_str(200, "", "{\"data\":[{\"id\":\"openai/gpt-4o\"}]}", &obs), 0);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(parse_str(503, "", "<html>502 Bad Gateway</html>", &obs), 1);
    assert_int_equal(obs.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(obs.problems, 0);
    /* a 429 must be readable; the status still says rate */
    static const char *const bad429[] = {"", "{\"error\":", "<html></html>", "{}"};
    for (size_t i = 0; i < sizeof(bad429) / sizeof(bad429[0]); i++) {
        assert_int_equal(parse_str(429, "Retry-After: 6\r\n", bad429[i], &obs), -EINVAL);
        assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
        assert_int_equal(obs.retry_at, NOW + 6 * SEC);
        assert_true(obs.problems >= 1);
    }
}

static void test_parse_openrouter_truncated_sample(void **state)
{
    (void)state;
    struct sample s;
    assert_int_equal(sample_load("openrouter", "key_monthly", &s), 0);
    struct rota_obs obs;
    for (size_t cut = 1; cut < s.body_len - 2; cut += 3) {
        struct rota_http_in in = {200, s.headers, s.headers_len, s.body, cut, NOW};
        assert_int_equal(rota_parse_openrouter(&in, NULL, &obs), -EINVAL);
        assert_true(obs.problems >= 1);
    }
    sample_free(&s);
}

static void test_parse_openrouter_bad_429_figures(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* resets that are not instants: zero, negative, seconds instead of ms, past int64 */
    static const char *const bad_reset[] = {"\"0\"",
                                            "\"-1\"",
                                            "-1",
                                            "\"1741262442\"",
                                            "\"18446744073709551615\"",
                                            "\"99999999999999999999\"",
                                            "\"soon\"",
                                            "1.5"};
    for (size_t i = 0; i < sizeof(bad_reset) / sizeof(bad_reset[0]); i++) {
        char h[256];
        snprintf(h, sizeof(h),
                 "{\"X-RateLimit-Limit\":\"20\",\"X-RateLimit-Remaining\":\"0\","
                 "\"X-RateLimit-Reset\":%s}",
                 bad_reset[i]);
        assert_int_equal(parse_429("Retry-After: 11\n", h, &obs), 1);
        assert_int_equal(obs.problems, 1);
        assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
        assert_int_equal(obs.retry_at, NOW + 11 * SEC); /* the header stands in */
        assert_int_equal(obs.nwin, 1);
        assert_int_equal(obs.win[0].limit, 20);
        assert_int_equal(obs.win[0].reset_at, 0);
    }
    /* numbers instead of strings, names in any case */
    assert_int_equal(parse_429("",
                               "{\"x-ratelimit-limit\":20,\"x-ratelimit-remaining\":3,"
                               "\"x-ratelimit-reset\":1741262430000}",
                               &obs),
                     1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.win[0].remaining, 3);
    assert_int_equal(obs.retry_at, NOW + 30 * SEC);
    /* a reset just past is no problem and no wait */
    assert_int_equal(parse_429("", "{\"X-RateLimit-Reset\":\"1741262399000\"}", &obs), 1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, 0);
    assert_int_equal(obs.win[0].reset_at, NOW - SEC);
    /* figures of the wrong type, headers of the wrong type */
    assert_int_equal(parse_429("",
                               "{\"X-RateLimit-Limit\":\"many\",\"X-RateLimit-Remaining\":"
                               "-2,\"X-RateLimit-Reset\":\"1741262442000\"}",
                               &obs),
                     1);
    assert_int_equal(obs.problems, 2);
    assert_false(obs.win[0].has_limit);
    assert_false(obs.win[0].has_remaining);
    assert_int_equal(obs.retry_at, NOW + 42 * SEC);
    assert_int_equal(parse_429("", "\"X-RateLimit-Limit: 20\"", &obs), 1);
    assert_int_equal(obs.problems, 1);
    assert_int_equal(obs.nwin, 0);
    /* no metadata: the answer's own headers, and a long wait is a quota */
    assert_int_equal(parse_str(429,
                               "X-RateLimit-Limit: 200\r\nX-RateLimit-Remaining: 0\r\n"
                               "X-RateLimit-Reset: 1741263000000\r\n",
                               "{\"error\":{\"code\":429,\"message\":\"Rate limit exceeded\"}}",
                               &obs),
                     1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, NOW + 600 * SEC);
    assert_string_equal(obs.win[0].what, "requests");
    assert_int_equal(obs.win[0].limit, 200);
    assert_int_equal(parse_str(429, "Retry-After: 400\n", "{\"error\":{\"code\":429}}", &obs),
                     1);
    assert_int_equal(obs.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(obs.retry_at, NOW + 400 * SEC);
    assert_int_equal(obs.nwin, 0);
}

/* A reset in ms with a fraction is waited in full, and so is the wait told to operators. */
static void test_parse_openrouter_fractional_reset_rounds_up(void **state)
{
    (void)state;
    struct rota_obs obs;
    /* NOW is 1741262400000 ms; a reset 41.7005 s later, as a number and as a string */
    static const char *const resets[] = {"1741262441700.5", "\"1741262441700.5\""};
    for (size_t i = 0; i < 2; i++) {
        char h[256];
        snprintf(h, sizeof(h),
                 "{\"X-RateLimit-Limit\":\"20\",\"X-RateLimit-Remaining\":\"0\","
                 "\"X-RateLimit-Reset\":%s}",
                 resets[i]);
        assert_int_equal(parse_429("", h, &obs), 1);
        assert_int_equal(obs.problems, 0);
        assert_int_equal(obs.cause, ROTA_CAUSE_RATE);
        assert_int_equal(obs.win[0].reset_at, NOW + 41700 * MS + 500000);
        assert_int_equal(obs.retry_at, NOW + 41700 * MS + 500000);
        sample_expect_detail(&obs, "retry in 42s"); /* not 41 */
    }
    /* the answer's own header, finer than a ns */
    assert_int_equal(parse_str(429, "X-RateLimit-Reset: 1741262430000.0000001\r\n",
                               "{\"error\":{\"code\":429,\"message\":\"Rate limit exceeded\"}}",
                               &obs),
                     1);
    assert_int_equal(obs.problems, 0);
    assert_int_equal(obs.retry_at, NOW + 30 * SEC + 1);
    /* Retry-After when no reset is said */
    assert_int_equal(
        parse_str(429, "Retry-After: 11.0000000001\n", "{\"error\":{\"code\":429}}", &obs), 1);
    assert_int_equal(obs.retry_at, NOW + 11 * SEC + 1);
    sample_expect_detail(&obs, "retry in 12s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_openrouter_key_monthly),
        cmocka_unit_test(test_parse_openrouter_key_unlimited_and_free),
        cmocka_unit_test(test_parse_openrouter_key_weekly_spent),
        cmocka_unit_test(test_parse_openrouter_credits),
        cmocka_unit_test(test_parse_openrouter_billing_and_auth),
        cmocka_unit_test(test_parse_openrouter_429_day_and_minute),
        cmocka_unit_test(test_parse_openrouter_capacity),
        cmocka_unit_test(test_parse_openrouter_bad_key_fields),
        cmocka_unit_test(test_parse_openrouter_unreadable_bodies),
        cmocka_unit_test(test_parse_openrouter_truncated_sample),
        cmocka_unit_test(test_parse_openrouter_bad_429_figures),
        cmocka_unit_test(test_parse_openrouter_fractional_reset_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
