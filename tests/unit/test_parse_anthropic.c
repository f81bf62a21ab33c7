/* test_parse_anthropic: Anthropic answers (tests/probes/anthropic) into windows, causes,
 * retry instants and disables; malformed headers and bodies. */
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

static int anth(const char *name, struct rota_obs *o)
{
    return sample_parse(rota_parse_anthropic, "anthropic", name, NULL, NOW, o);
}

/* An account-wide window, with no used figure. */
static void expect_win(const struct rota_obs *o, uint32_t i, const char *what, int metric,
                       int64_t limit, int64_t remaining, int64_t reset_at)
{
    sample_expect_win(o, i, "", what, metric, limit, remaining, NO, reset_at);
}

static void test_parse_anthropic_ok(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(anth("ok", &o), 1);
    assert_int_equal(o.nwin, 4);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 4000, 3999, NOW + S);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, 2400000, 2398000, NOW);
    expect_win(&o, 2, "input-tokens", ROTA_METRIC_TOKENS, 2000000, 1998000, NOW);
    expect_win(&o, 3, "output-tokens", ROTA_METRIC_TOKENS, 400000, 400000, NOW);
    assert_true(o.reachable);
    assert_int_equal(o.cause, ROTA_CAUSE_NONE);
    assert_int_equal(o.retry_at, 0);
    assert_false(o.disable);
    assert_int_equal(o.problems, 0);

    assert_int_equal(anth("ok_no_headers", &o), 0);
    assert_int_equal(o.nwin, 0);
    assert_true(o.reachable);
}

static void test_parse_anthropic_odd_headers(void **state)
{
    (void)state;
    struct rota_obs o;
    /* CRLF, mixed case, blanks before ':', repeated (first wins), a longer name sharing the
     * prefix, offsets, lower-case 't', a space for 'T', a folded value */
    assert_int_equal(anth("odd_headers", &o), 1);
    assert_int_equal(o.problems, 0);
    assert_int_equal(o.nwin, 3);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 50, 7, NOW + 30250 * MS);
    expect_win(&o, 1, "input-tokens", ROTA_METRIC_TOKENS, NO, 1000, 0);
    expect_win(&o, 2, "output-tokens", ROTA_METRIC_TOKENS, NO, NO, NOW + 60 * S);
}

static void test_parse_anthropic_429(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(anth("429_rate", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 12 * S);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 50, 49, NOW + S);
    expect_win(&o, 1, "output-tokens", ROTA_METRIC_TOKENS, 8000, 0, NOW + 12 * S);
    assert_false(o.disable);
    assert_false(o.reachable);
    assert_string_equal(o.detail, "429 rate limit");
    assert_int_equal(o.problems, 0);

    /* no retry-after: the latest reset among the buckets at zero (tokens, at 5000 and
     * resetting later, does not count) */
    assert_int_equal(anth("429_no_retry_after", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 45500 * MS);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, 50, 0, NOW + 20 * S);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, 48000, 5000, NOW + 59 * S);
    expect_win(&o, 2, "input-tokens", ROTA_METRIC_TOKENS, 40000, 0, NOW + 45500 * MS);
}

static void test_parse_anthropic_spend_limit(void **state)
{
    (void)state;
    struct rota_obs o;
    /* disabled until the latest reset: 2025-12-01T00:00:00Z, 6 days 8 hours on */
    assert_int_equal(anth("429_spend_limit", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_BILLING);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, NOW + (6 * 86400 + 8 * 3600) * S);
    assert_int_equal(o.retry_at, 0);
    assert_string_equal(o.detail, "429 spend limit reached");

    /* no reset said: until re-enabled; the body's fields in another order */
    assert_int_equal(anth("429_spend_limit_no_reset", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_BILLING);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);
    assert_int_equal(o.problems, 0);
}

static void test_parse_anthropic_capacity_auth_billing(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(anth("529_overloaded", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.retry_at, NOW + 8 * S);
    assert_false(o.disable);
    assert_string_equal(o.detail, "529 overloaded_error");

    assert_int_equal(anth("500_api_error", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.retry_at, 0);

    assert_int_equal(anth("529_html", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.problems, 1);
    assert_string_equal(o.detail, "529 provider unavailable");

    assert_int_equal(anth("401", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);

    assert_int_equal(anth("400_credit", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_BILLING);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);

    assert_int_equal(anth("400_invalid", &o), 0);
    assert_int_equal(o.cause, ROTA_CAUSE_NONE);
    assert_false(o.disable);
    assert_int_equal(o.problems, 0);
}

static void test_parse_anthropic_malformed(void **state)
{
    (void)state;
    struct rota_obs o;
    /* above 2^64, negative, exponent, quoted word, a leap day that is not, epoch seconds,
     * instants before and at 1970 */
    assert_int_equal(anth("malformed_headers", &o), -EINVAL);
    assert_int_equal(o.nwin, 0);
    assert_int_equal(o.problems, 8);
    assert_string_equal(
        o.problem,
        "anthropic-ratelimit-requests-limit: not a count: \"99999999999999999999999\"");
    assert_true(o.reachable);

    assert_int_equal(anth("429_truncated", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 3 * S);
    assert_int_equal(o.problems, 1);
    assert_non_null(strstr(o.problem, "body: not JSON"));

    assert_int_equal(anth("429_bad_utf8", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.problems, 1);
    assert_non_null(strstr(o.problem, "body: not JSON"));

    assert_int_equal(anth("429_empty", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.problems, 0);

    /* a spend-limit code in the wrong place is not believed */
    assert_int_equal(anth("429_wrong_types", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_false(o.disable);
    assert_int_equal(o.problems, 3);
    assert_string_equal(o.problem, "body: error.type is not a string");

    assert_int_equal(anth("429_wrong_code_type", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_false(o.disable);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.problems, 2);
    assert_string_equal(o.problem, "body: error.details.error_code is not a string");
}

static void test_parse_anthropic_in_memory(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(rota_parse_anthropic(NULL, NULL, &o), 0);
    /* a reset already past is kept as it is, but is no retry hint; a bare date is its
     * midnight */
    const char *h = "anthropic-ratelimit-requests-remaining: 0\n"
                    "anthropic-ratelimit-requests-reset: 2025-11-24T15:59:00Z\n"
                    "anthropic-ratelimit-tokens-reset: 2025-11-25\n";
    struct rota_http_in in = {429, h, strlen(h), NULL, 0, NOW};
    assert_int_equal(rota_parse_anthropic(&in, NULL, &o), 1);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, NO, 0, NOW - 60 * S);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, NO, NO, NOW + 8 * 3600 * S);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    /* status 0 (no HTTP answer) says nothing */
    in.status = 0;
    in.headers_len = 0;
    assert_int_equal(rota_parse_anthropic(&in, NULL, &o), 0);
    assert_false(o.reachable);
}

/* Resets and retry hints with a fraction are waited in full, never cut short. */
static void test_parse_anthropic_fractional_resets_round_up(void **state)
{
    (void)state;
    struct rota_obs o;
    static const char body[] = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}";
    /* exact fractions stay exact; finer than a ns is one more ns */
    const char *h = "anthropic-ratelimit-requests-remaining: 0\n"
                    "anthropic-ratelimit-requests-reset: 2025-11-24T16:00:41.5Z\n"
                    "anthropic-ratelimit-tokens-remaining: 0\n"
                    "anthropic-ratelimit-tokens-reset: 2025-11-24T16:00:41.5000000001Z\n";
    assert_int_equal(
        sample_parse_mem(rota_parse_anthropic, NULL, 429, h, body, sizeof(body) - 1, NOW, &o),
        1);
    expect_win(&o, 0, "requests", ROTA_METRIC_REQUESTS, NO, 0, NOW + 41500 * MS);
    expect_win(&o, 1, "tokens", ROTA_METRIC_TOKENS, NO, 0, NOW + 41500 * MS + 1);
    assert_int_equal(o.retry_at, NOW + 41500 * MS + 1); /* the latest reset at zero */
    assert_int_equal(o.problems, 0);
    /* retry-after in seconds with a fraction */
    h = "retry-after: 12.0000000001\n";
    assert_int_equal(
        sample_parse_mem(rota_parse_anthropic, NULL, 429, h, body, sizeof(body) - 1, NOW, &o),
        1);
    assert_int_equal(o.retry_at, NOW + 12 * S + 1);
    h = "retry-after: 12.000\n";
    assert_int_equal(
        sample_parse_mem(rota_parse_anthropic, NULL, 429, h, body, sizeof(body) - 1, NOW, &o),
        1);
    assert_int_equal(o.retry_at, NOW + 12 * S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_anthropic_ok),
        cmocka_unit_test(test_parse_anthropic_odd_headers),
        cmocka_unit_test(test_parse_anthropic_429),
        cmocka_unit_test(test_parse_anthropic_spend_limit),
        cmocka_unit_test(test_parse_anthropic_capacity_auth_billing),
        cmocka_unit_test(test_parse_anthropic_malformed),
        cmocka_unit_test(test_parse_anthropic_in_memory),
        cmocka_unit_test(test_parse_anthropic_fractional_resets_round_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
