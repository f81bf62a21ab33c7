/* test_parse_openai: OpenAI and Azure OpenAI answers (tests/probes/openai, azure-openai)
 * into windows, causes, retry instants and disables; malformed headers and bodies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"
#include "../probes/sample.h"

#define S  INT64_C(1000000000)
#define MS INT64_C(1000000)
/* 2025-11-24T16:00:00Z, the fixed arrival time of every sample */
#define NOW (INT64_C(1764000000) * S)

static int oai(const char *name, struct rota_obs *o)
{
    return sample_parse(rota_parse_openai, "openai", name, NULL, NOW, o);
}

static int azure(const char *name, struct rota_obs *o)
{
    return sample_parse(rota_parse_azure, "azure-openai", name, NULL, NOW, o);
}

/* An account-wide window, with no used figure. */
static void expect_win(const struct rota_obs *o, uint32_t i, const char *what, int metric,
                       int64_t limit, int64_t remaining, int64_t reset_at)
{
    sample_expect_win(o, i, "", what, metric, limit, remaining, NO, reset_at);
}

static void test_parse_openai_ok_headers(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(oai("ok_headers", &o), 1);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 10000, 9999, NOW + 6 * MS);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, 2000000, 1999975, NOW);
    assert_true(o.reachable);
    assert_int_equal(o.cause, ROTA_CAUSE_NONE);
    assert_int_equal(o.retry_at, 0);
    assert_false(o.disable);
    assert_int_equal(o.problems, 0);
    assert_string_equal(o.problem, "");

    assert_int_equal(oai("ok_no_headers", &o), 0);
    assert_int_equal(o.nwin, 0);
    assert_true(o.reachable);
    assert_int_equal(o.problems, 0);
}

static void test_parse_openai_odd_headers(void **state)
{
    (void)state;
    struct rota_obs o;
    /* CRLF, upper case, blanks before ':', a tab, a repeated header (first wins), a longer
     * name sharing the prefix, a folded value */
    assert_int_equal(oai("odd_headers", &o), 1);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 10000, 42,
               NOW + (3600 + 120 + 3) * S + 500 * MS);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, 90000, 89000, 0);
    assert_int_equal(o.problems, 0);
}

static void test_parse_openai_429_rate(void **state)
{
    (void)state;
    struct rota_obs o;
    /* no retry header: the message's "try again in 1.78s" */
    assert_int_equal(oai("429_tokens", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 1780 * MS);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 500, 499, NOW + 120 * MS);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, 30000, 0, NOW + 62500 * MS);
    assert_false(o.disable);
    assert_false(o.reachable);
    assert_int_equal(o.problems, 0);
    assert_string_equal(o.detail, "429 rate limit on tokens");

    /* retry-after-ms before retry-after and before the message */
    assert_int_equal(oai("429_requests_retry_ms", &o), 1);
    assert_int_equal(o.retry_at, NOW + 350 * MS);
    assert_int_equal(o.nwin, 1);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 3, 0, NOW + 20 * S);

    /* a per-day limit is a quota, not a rate */
    assert_int_equal(oai("429_requests_per_day", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(o.retry_at, NOW + (7 * 60 + 12) * S);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 200, 0, NOW + (7 * 3600 + 720) * S);

    /* no hint at all: the latest reset among the buckets at zero */
    assert_int_equal(oai("429_no_hint", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 90 * S);

    assert_int_equal(oai("429_retry_after_date", &o), 1);
    assert_int_equal(o.retry_at, NOW + 120 * S);
    assert_int_equal(o.nwin, 0);

    /* fields in another order, unknown ones among them */
    assert_int_equal(oai("429_reordered", &o), 1);
    assert_int_equal(o.retry_at, NOW + 20 * MS);
    assert_string_equal(o.detail, "429 rate limit on requests");
    assert_int_equal(o.problems, 0);
}

static void test_parse_openai_billing_and_auth(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(oai("429_insufficient_quota", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_BILLING);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);
    assert_int_equal(o.retry_at, 0);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 500, 499, 0);

    /* the older form: only the type says it, and a retry-after must not bring it back */
    assert_int_equal(oai("429_insufficient_quota_old", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_BILLING);
    assert_true(o.disable);
    assert_int_equal(o.retry_at, 0);

    assert_int_equal(oai("401_invalid_key", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);
    assert_null(strstr(o.detail, "sk-")); /* the message quotes part of the key */
    assert_null(strstr(o.problem, "sk-"));

    /* a plain client error says nothing about quota */
    assert_int_equal(oai("400_bad_request", &o), 0);
    assert_int_equal(o.cause, ROTA_CAUSE_NONE);
    assert_false(o.disable);
    assert_int_equal(o.problems, 0);
}

static void test_parse_openai_capacity(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(oai("503_overloaded", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.retry_at, NOW + 12 * S);
    assert_false(o.disable);
    /* an HTML page from a proxy: still capacity, the body counted as a problem */
    assert_int_equal(oai("502_html", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.problems, 1);
    assert_non_null(strstr(o.problem, "body: not JSON"));
}

static void test_parse_openai_malformed_headers(void **state)
{
    (void)state;
    struct rota_obs o;
    /* above 2^64, negative, hex, fractional counts; negative and overflowing durations */
    assert_int_equal(oai("malformed_headers", &o), -EINVAL);
    assert_int_equal(o.nwin, 0);
    assert_int_equal(o.problems, 6);
    assert_string_equal(o.problem,
                        "x-ratelimit-limit-requests: not a count: \"18446744073709551616\"");

    /* what can be read is kept: 2^64 - 1 is a count; a reset past the year 2262 is not */
    assert_int_equal(oai("partly_malformed", &o), 1);
    assert_int_equal(o.problems, 3);
    assert_string_equal(o.problem, "x-ratelimit-remaining-requests: not a count: \"soon\"");
    assert_int_equal(o.nwin, 2);
    assert_true(o.win[0].limit == UINT64_MAX);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, 1000, NO, 0);
    assert_false(o.win[0].has_remaining);
    assert_int_equal(o.win[0].reset_at, 0);
}

static void test_parse_openai_malformed_bodies(void **state)
{
    (void)state;
    struct rota_obs o;
    static const char *const broken[] = {"429_truncated", "429_bad_utf8"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(oai(broken[i], &o), 1);
        assert_int_equal(o.cause, ROTA_CAUSE_RATE);
        assert_int_equal(o.retry_at, 0);
        assert_int_equal(o.problems, 1);
        assert_non_null(strstr(o.problem, "body: not JSON"));
    }
    assert_int_equal(oai("429_empty", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.problems, 0);

    assert_int_equal(oai("429_wrong_types", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.problems, 3);
    assert_string_equal(o.problem, "body: error.type is not a string");
    assert_string_equal(o.detail, "429 rate limit");

    assert_int_equal(oai("429_error_array", &o), 1);
    assert_int_equal(o.problems, 1);
    assert_string_equal(o.problem, "body: no error object");

    /* retry-after-ms "1e5" and a wait past 2^64 ns: both counted, neither used */
    assert_int_equal(oai("429_huge_hint", &o), 1);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.problems, 2);
    assert_string_equal(o.problem, "retry-after-ms: not a number of ms: \"1e5\"");
}

static void test_parse_openai_in_memory(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(rota_parse_openai(NULL, NULL, &o), 0);
    assert_int_equal(o.nwin, 0);
    /* a body that is not NUL-terminated and a status without headers */
    char body[] = {'{', '"', 'e', 'r', 'r', 'o', 'r', '"', ':', '{', '}', '}'};
    struct rota_http_in in = {429, NULL, 0, body, sizeof(body), NOW};
    assert_int_equal(rota_parse_openai(&in, NULL, &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.problems, 0);
    /* a zero reset is "full now"; the message's wait in plain seconds */
    const char *h = "x-ratelimit-remaining-tokens: 0\nx-ratelimit-reset-tokens: 0\n";
    const char *b = "{\"error\":{\"message\":\"Please retry after 3 seconds.\"}}";
    struct rota_http_in in2 = {429, h, strlen(h), b, strlen(b), NOW};
    assert_int_equal(rota_parse_openai(&in2, NULL, &o), 1);
    expect_win(&o, 0, "tokens", ROTA_METRIC_TOKENS, NO, 0, NOW);
    assert_int_equal(o.retry_at, NOW + 3 * S);
    /* Azure reads the same "0" as "not said" */
    assert_int_equal(rota_parse_azure(&in2, NULL, &o), 1);
    expect_win(&o, 0, "tokens", ROTA_METRIC_TOKENS, NO, 0, 0);
}

/* Parse a 429 of "headers" and "body" with "fn" into "o". */
static int parse_429(rota_parse_fn fn, const char *headers, const char *body,
                     struct rota_obs *o)
{
    return sample_parse_mem(fn, NULL, 429, headers, body, strlen(body), NOW, o);
}

/* Resets and retry hints with a fraction are waited in full, never cut short. */
static void test_parse_openai_fractional_waits_round_up(void **state)
{
    (void)state;
    struct rota_obs o;
    /* Go durations: exact ones stay exact, a part of a ns is a whole one */
    assert_int_equal(parse_429(rota_parse_openai,
                               "x-ratelimit-remaining-requests: 0\n"
                               "x-ratelimit-reset-requests: 6m0.5s\n"
                               "x-ratelimit-remaining-tokens: 0\n"
                               "x-ratelimit-reset-tokens: 1.2s\n",
                               "{}", &o),
                     1);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, NO, 0, NOW + 360 * S + 500 * MS);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, NO, 0, NOW + 1200 * MS);
    assert_int_equal(parse_429(rota_parse_openai,
                               "x-ratelimit-remaining-requests: 0\n"
                               "x-ratelimit-reset-requests: 6m0.0000000001s\n"
                               "x-ratelimit-remaining-tokens: 0\n"
                               "x-ratelimit-reset-tokens: 20.0000001ms\n",
                               "{}", &o),
                     1);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, NO, 0, NOW + 360 * S + 1);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, NO, 0, NOW + 20 * MS + 1);
    assert_int_equal(o.retry_at, NOW + 360 * S + 1); /* the latest reset at zero */
    /* retry-after in seconds, retry-after-ms, and the message's wait */
    assert_int_equal(parse_429(rota_parse_openai, "retry-after: 1.0000000001\n", "{}", &o), 1);
    assert_int_equal(o.retry_at, NOW + S + 1);
    assert_int_equal(parse_429(rota_parse_openai, "retry-after-ms: 0.0000005\n", "{}", &o), 1);
    assert_int_equal(o.retry_at, NOW + 1); /* not "now" */
    assert_int_equal(parse_429(rota_parse_openai, "",
                               "{\"error\":{\"message\":\"Please try again in "
                               "1.7800000001s.\",\"type\":\"tokens\"}}",
                               &o),
                     1);
    assert_int_equal(o.retry_at, NOW + 1780 * MS + 1);
    /* Azure's bare seconds */
    assert_int_equal(parse_429(rota_parse_azure,
                               "x-ratelimit-remaining-tokens: 0\n"
                               "x-ratelimit-reset-tokens: 6.0000000001\n",
                               "{\"error\":{}}", &o),
                     1);
    expect_win(&o, 0, "tokens", ROTA_METRIC_TOKENS, NO, 0, NOW + 6 * S + 1);
    assert_int_equal(o.problems, 0);
}

static void test_parse_azure_samples(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(azure("ok", &o), 1);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 100, 99, NOW + 6 * S);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, 100000, 99850, NOW + 60 * S);
    assert_true(o.reachable);
    assert_int_equal(o.problems, 0);

    /* -1 and 0 say nothing, and are not problems */
    assert_int_equal(azure("ok_minus_one", &o), 1);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, NO, 119, 0);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, NO, 19880, 0);
    assert_int_equal(o.problems, 0);

    assert_int_equal(azure("429", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 5400 * MS);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, NO, 0, 0);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, NO, 0, NOW + 6 * S);

    assert_int_equal(azure("429_message_only", &o), 1);
    assert_int_equal(o.retry_at, NOW + 27 * S);
    assert_int_equal(o.problems, 0);

    assert_int_equal(azure("429_insufficient_quota", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_BILLING);
    assert_true(o.disable);

    assert_int_equal(azure("401", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);

    assert_int_equal(azure("500", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);

    /* other negatives are problems; a fractional second is read */
    assert_int_equal(azure("bad_resets", &o), 1);
    assert_int_equal(o.problems, 2);
    assert_string_equal(o.problem, "x-ratelimit-reset-requests: not a duration: \"-7\"");
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, NO, 5, 0);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, NO, NO, NOW + 1500 * MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_openai_ok_headers),
        cmocka_unit_test(test_parse_openai_odd_headers),
        cmocka_unit_test(test_parse_openai_429_rate),
        cmocka_unit_test(test_parse_openai_billing_and_auth),
        cmocka_unit_test(test_parse_openai_capacity),
        cmocka_unit_test(test_parse_openai_malformed_headers),
        cmocka_unit_test(test_parse_openai_malformed_bodies),
        cmocka_unit_test(test_parse_openai_in_memory),
        cmocka_unit_test(test_parse_azure_samples),
        cmocka_unit_test(test_parse_openai_fractional_waits_round_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
