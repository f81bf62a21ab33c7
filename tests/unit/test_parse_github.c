/* test_parse_github: GitHub REST rate limits (tests/probes/github): x-ratelimit-* headers,
 * GET /rate_limit bodies, primary and secondary limits, refusals; malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"
#include "../probes/sample.h"

#define S  INT64_C(1000000000)
#define MS INT64_C(1000000)
/* 2025-10-15T12:00:00Z, the fixed arrival time of every answer */
#define NOW        (INT64_C(1760529600) * S)
#define CORE_RESET (INT64_C(1760530834) * S) /* NOW + 1234 s */

static int sample(const char *name, struct rota_obs *o)
{
    return sample_parse(rota_parse_github, "github", name, NULL, NOW, o);
}

/* Parse an answer given as strings. */
static int raw(int status, const char *headers, const char *body, struct rota_obs *o)
{
    return sample_parse_mem(rota_parse_github, NULL, status, headers, body, strlen(body), NOW,
                            o);
}

/* A window of "pool", counted in requests. */
static void expect_win(const struct rota_obs *o, uint32_t i, const char *pool, int64_t limit,
                       int64_t remaining, int64_t used, int64_t reset_at)
{
    sample_expect_win(o, i, pool, "requests", ROTA_METRIC_REQUESTS, limit, remaining, used,
                      reset_at);
}

/* ---- realistic answers ---- */

static void check_rate_limit_body(const struct rota_obs *o)
{
    static const char *const pools[] = {"core",
                                        "search",
                                        "graphql",
                                        "integration_manifest",
                                        "source_import",
                                        "code_scanning_upload",
                                        "actions_runner_registration",
                                        "scim",
                                        "dependency_snapshots",
                                        "dependency_sbom",
                                        "audit_log",
                                        "audit_log_streaming",
                                        "code_search",
                                        "code_scanning_autofix"};
    assert_int_equal(o->nwin, 14); /* the headers' core is the body's core: not twice */
    for (uint32_t i = 0; i < 14; i++)
        assert_string_equal(o->win[i].pool, pools[i]);
    expect_win(o, 0, "core", 5000, 4987, 13, CORE_RESET);
    expect_win(o, 1, "search", 30, 28, 2, NOW + 42 * S);
    expect_win(o, 12, "code_search", 10, 9, 1, NOW + 50 * S);
    assert_true(o->reachable);
    sample_expect_calm(o);
    assert_int_equal(o->problems, 0);
}

static void test_parse_github_rate_limit(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("rate_limit_200", &o), 1);
    check_rate_limit_body(&o);
    assert_int_equal(sample("rate_limit_exec", &o), 1); /* gh api /rate_limit: status 0 */
    check_rate_limit_body(&o);
}

static void test_parse_github_headers(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("repo_200", &o), 1);
    assert_int_equal(o.nwin, 1);
    expect_win(&o, 0, "core", 5000, 4986, 14, CORE_RESET);
    assert_true(o.reachable);
    sample_expect_calm(&o);
    assert_int_equal(o.problems, 0);

    assert_int_equal(sample("search_200", &o), 1);
    assert_int_equal(o.nwin, 1);
    expect_win(&o, 0, "search", 30, 27, 3, NOW + 42 * S);
    assert_int_equal(o.problems, 0);

    /* a 200 without rate-limit headers says nothing */
    assert_int_equal(raw(200, "content-type: text/html\n", "<html></html>", &o), 0);
    assert_int_equal(o.nwin, 0);
    assert_int_equal(o.problems, 0);
    assert_int_equal(raw(200, "", "{\"id\":1}", &o), 0);
    assert_int_equal(o.problems, 0);
    /* no resource header: core; one figure is enough */
    assert_int_equal(raw(204, "X-RATELIMIT-USED: 7\r\n", "", &o), 1);
    expect_win(&o, 0, "core", NO, NO, 7, 0);
}

static void test_parse_github_primary(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("primary_403", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, CORE_RESET);
    assert_false(o.disable);
    assert_false(o.reachable);
    assert_int_equal(o.nwin, 1);
    expect_win(&o, 0, "core", 5000, 0, 5000, CORE_RESET);
    assert_int_equal(o.problems, 0);
    sample_expect_detail(&o, "403: API rate limit exceeded");
    sample_expect_detail(&o, "primary rate limit");

    assert_int_equal(sample("primary_429_unauth", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 3600 * S);
    expect_win(&o, 0, "core", 60, 0, 60, NOW + 3600 * S);

    /* a later Retry-After wins over the reset */
    assert_int_equal(
        raw(403, "x-ratelimit-remaining: 0\nx-ratelimit-reset: 1760530834\nretry-after: 2000\n",
            "", &o),
        1);
    assert_int_equal(o.retry_at, NOW + 2000 * S);
    /* a reset already past (clocks disagree): a minute */
    assert_int_equal(
        raw(429, "x-ratelimit-remaining: 0\nx-ratelimit-reset: 1760529000\n", "", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 60 * S);
    /* remaining 0 and no reset at all: a minute */
    assert_int_equal(raw(403, "x-ratelimit-remaining: 0\n", "", &o), 1);
    assert_int_equal(o.retry_at, NOW + 60 * S);
}

static void test_parse_github_secondary(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("secondary_403", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 30 * S);
    assert_false(o.disable);
    expect_win(&o, 0, "core", 5000, 4700, 300, CORE_RESET);
    sample_expect_detail(&o, "secondary rate limit");
    assert_int_equal(o.problems, 0);

    assert_int_equal(sample("secondary_429", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 60 * S);

    /* no headers at all */
    assert_int_equal(raw(403, "", "", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 60 * S);
    assert_int_equal(o.nwin, 0);
    /* Retry-After as an HTTP-date */
    assert_int_equal(raw(429, "retry-after: Wed, 15 Oct 2025 12:05:00 GMT\n", "", &o), 1);
    assert_int_equal(o.retry_at, NOW + 300 * S);
    /* an unreadable Retry-After: said, and a minute */
    assert_int_equal(raw(429, "retry-after: soon\n", "", &o), 1);
    assert_int_equal(o.retry_at, NOW + 60 * S);
    sample_expect_problem(&o, 1, "retry-after: neither seconds nor an HTTP-date");
}

static void test_parse_github_refused_and_down(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("unauthorized_401", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);
    assert_int_equal(o.retry_at, 0);
    assert_false(o.reachable);
    expect_win(&o, 0, "core", 60, 57, 3, NOW + 3600 * S);
    assert_string_equal(o.detail, "401: Bad credentials");

    assert_int_equal(raw(0, "", "{\"message\":\"Bad credentials\",\"status\":\"401\"}", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    sample_expect_problem(&o, 1, "body: not a /rate_limit answer");

    assert_int_equal(sample("bad_gateway_502", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.retry_at, NOW + 10 * S);
    assert_false(o.disable);
    assert_int_equal(o.nwin, 0);
    assert_int_equal(o.problems, 0);

    /* a 404 with no figures says nothing */
    assert_int_equal(raw(404, "", "{\"message\":\"Not Found\"}", &o), 0);
    assert_int_equal(o.problems, 0);
}

/* ---- malformed headers ---- */

static void test_parse_github_bad_headers(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(raw(200, "x-ratelimit-limit: abc\nx-ratelimit-remaining: 5\n", "", &o), 1);
    expect_win(&o, 0, "core", NO, 5, NO, 0);
    sample_expect_problem(&o, 1, "x-ratelimit-limit: not a count: \"abc\"");
    /* every figure broken: nothing to say, and said */
    assert_int_equal(raw(200,
                         "x-ratelimit-limit: -1\nx-ratelimit-remaining: 1.5\n"
                         "x-ratelimit-used: 99999999999999999999\n",
                         "", &o),
                     -EINVAL);
    sample_expect_problem(&o, 3, "x-ratelimit-limit: not a count: \"-1\"");
    assert_int_equal(o.nwin, 0);
    assert_true(o.reachable);
    /* zero, huge and negative resets */
    assert_int_equal(raw(200, "x-ratelimit-remaining: 5\nx-ratelimit-reset: 0\n", "", &o), 1);
    expect_win(&o, 0, "core", NO, 5, NO, 0);
    sample_expect_problem(&o, 1, "x-ratelimit-reset: reset 0 is not an instant");
    assert_int_equal(
        raw(200, "x-ratelimit-remaining: 5\nx-ratelimit-reset: 9300000000\n", "", &o), 1);
    sample_expect_problem(&o, 1, "x-ratelimit-reset: reset 9300000000 is not an instant");
    assert_int_equal(raw(200, "x-ratelimit-remaining: 5\nx-ratelimit-reset: -60\n", "", &o), 1);
    sample_expect_problem(&o, 1, "x-ratelimit-reset: not a count");
    assert_int_equal(o.win[0].reset_at, 0);
    /* an empty resource is core; a long one is cut to the pool's size */
    assert_int_equal(raw(200, "x-ratelimit-remaining: 5\nx-ratelimit-resource:\n", "", &o), 1);
    assert_string_equal(o.win[0].pool, "core");
    assert_int_equal(
        raw(200,
            "x-ratelimit-remaining: 5\nx-ratelimit-resource: "
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            "", &o),
        1);
    assert_int_equal(strlen(o.win[0].pool), 63);
    /* header names with odd spacing and a folded value */
    assert_int_equal(raw(200,
                         "X-RateLimit-Remaining : 12\r\nx-ratelimit-resource: \r\n graphql\r\n",
                         "", &o),
                     1);
    expect_win(&o, 0, "graphql", NO, 12, NO, 0);
}

/* ---- malformed bodies ---- */

static void test_parse_github_bad_bodies(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(raw(0, "", "", &o), -EINVAL);
    sample_expect_problem(&o, 2, "body: empty");
    assert_false(o.reachable);
    assert_int_equal(raw(0, "", "{\"resources\":{\"core\":{\"limit\":5000,", &o), -EINVAL);
    sample_expect_problem(&o, 2, "body: not JSON");
    assert_int_equal(raw(0, "", "{\"resources\":{\"core\":{\"limit\":\"\xc3\x28\"}}}", &o),
                     -EINVAL);
    sample_expect_problem(&o, 2, "body: not JSON");
    assert_int_equal(raw(0, "", "{}", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not a /rate_limit answer");
    assert_int_equal(raw(0, "", "{\"resources\":[]}", &o), -EINVAL);
    sample_expect_problem(&o, 2, "resources: an array, not an object");
    /* a truncated 200 with good headers: the headers still count */
    assert_int_equal(raw(200, "x-ratelimit-remaining: 5\n", "{\"resources\":{\"co", &o), 1);
    expect_win(&o, 0, "core", NO, 5, NO, 0);
    sample_expect_problem(&o, 1, "body: not JSON");
    /* a broken error body is not a problem: the status speaks */
    assert_int_equal(raw(403, "", "{\"message\":", &o), 1);
    assert_int_equal(o.problems, 0);
    /* only the old "rate" */
    assert_int_equal(
        raw(0, "", "{\"rate\":{\"limit\":60,\"used\":1,\"remaining\":59,\"reset\":1760533200}}",
            &o),
        1);
    expect_win(&o, 0, "core", 60, 59, 1, NOW + 3600 * S);
}

static void test_parse_github_body_fields(void **state)
{
    (void)state;
    struct rota_obs o;
    /* core last in the body is still first; wrong types skip one field each */
    assert_int_equal(raw(0, "",
                         "{\"resources\":{\"search\":{\"limit\":\"30\",\"remaining\":true,"
                         "\"used\":null,\"reset\":-5},\"graphql\":[],\"scim\":{\"reset\":1},"
                         "\"core\":{\"reset\":1760530834,\"remaining\":4000,\"used\":1000,"
                         "\"limit\":5000}}}",
                         &o),
                     1);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "core", 5000, 4000, 1000, CORE_RESET);
    expect_win(&o, 1, "search", 30, NO, NO, 0);
    sample_expect_problem(&o, 4, "resources.search.remaining: a boolean, not a number");
    assert_true(o.reachable);
    /* beyond 2^64 refuses that field only; between 2^63 and 2^64 fits */
    assert_int_equal(
        raw(0, "",
            "{\"resources\":{\"core\":{\"limit\":100000000000000000000,"
            "\"remaining\":18000000000000000000,\"used\":3,\"reset\":1760530834}}}",
            &o),
        1);
    assert_int_equal(o.nwin, 1);
    assert_false(o.win[0].has_limit);
    assert_true(o.win[0].has_remaining);
    assert_int_equal(o.win[0].remaining, UINT64_C(18000000000000000000));
    assert_int_equal(o.win[0].used, 3);
    assert_int_equal(o.win[0].reset_at, CORE_RESET);
    sample_expect_problem(&o, 1, "resources.core.limit: 1e+20 is not a count");
    /* more resources than windows */
    char body[4096];
    int n = snprintf(body, sizeof(body), "{\"resources\":{");
    for (int i = 0; i < 20; i++)
        n += snprintf(body + n, sizeof(body) - (size_t)n, "%s\"r%02d\":{\"limit\":%d}",
                      i ? "," : "", i, i + 1);
    snprintf(body + n, sizeof(body) - (size_t)n, "}}");
    assert_int_equal(raw(0, "", body, &o), 1);
    assert_int_equal(o.nwin, ROTA_OBS_WINDOWS);
    expect_win(&o, 15, "r15", 16, NO, NO, 0);
    sample_expect_problem(&o, 4, "windows: more than 16 buckets");
}

/* Resets and retry hints with a fraction are waited in full, never cut short. */
static void test_parse_github_fractional_resets_round_up(void **state)
{
    (void)state;
    struct rota_obs o;
    /* a /rate_limit body: a real, a string, and an integral real that stays exact */
    assert_int_equal(raw(0, "",
                         "{\"resources\":{\"core\":{\"limit\":5000,\"remaining\":0,"
                         "\"reset\":1760530834.5},\"search\":{\"limit\":30,\"reset\":"
                         "\"1760529642.0000000001\"},\"graphql\":{\"limit\":5000,"
                         "\"reset\":1760530834.0}}}",
                         &o),
                     1);
    assert_int_equal(o.problems, 0);
    expect_win(&o, 0, "core", 5000, 0, NO, CORE_RESET + 500 * MS);
    expect_win(&o, 1, "search", 30, NO, NO, NOW + 42 * S + 1);
    expect_win(&o, 2, "graphql", 5000, NO, NO, CORE_RESET);
    /* the header, and the primary limit that waits for it */
    assert_int_equal(raw(403,
                         "x-ratelimit-remaining: 0\nx-ratelimit-reset: 1760530834.0000000001\n",
                         "", &o),
                     1);
    assert_int_equal(o.problems, 0);
    expect_win(&o, 0, "core", NO, 0, NO, CORE_RESET + 1);
    assert_int_equal(o.retry_at, CORE_RESET + 1);
    /* a secondary limit's Retry-After */
    assert_int_equal(raw(429, "retry-after: 30.0000000001\n", "", &o), 1);
    assert_int_equal(o.retry_at, NOW + 30 * S + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_github_rate_limit),
        cmocka_unit_test(test_parse_github_headers),
        cmocka_unit_test(test_parse_github_primary),
        cmocka_unit_test(test_parse_github_secondary),
        cmocka_unit_test(test_parse_github_refused_and_down),
        cmocka_unit_test(test_parse_github_bad_headers),
        cmocka_unit_test(test_parse_github_bad_bodies),
        cmocka_unit_test(test_parse_github_body_fields),
        cmocka_unit_test(test_parse_github_fractional_resets_round_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
