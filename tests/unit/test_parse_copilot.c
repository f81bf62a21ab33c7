/* test_parse_copilot: GitHub Copilot's copilot_internal/user (paid and free plans, the
 * endpoint and `gh api`) and x-quota-snapshot-* headers (tests/probes/github-copilot)
 * into windows, causes and disables; malformed bodies and headers. */
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

#define S INT64_C(1000000000)
/* 2025-10-15T12:00:00Z, the fixed arrival time of every answer */
#define NOW      (INT64_C(1760529600) * S)
#define NOV_1    (INT64_C(1761955200) * S) /* 2025-11-01T00:00:00Z */
#define NOV_8    (INT64_C(1762560000) * S) /* 2025-11-08T00:00:00Z */
#define RST      "&rst=2025-11-01T00%3A00%3A00Z"
#define FRACTION ROTA_METRIC_FRACTION

static int sample(const char *name, struct rota_obs *o)
{
    return sample_parse(rota_parse_copilot, "github-copilot", name, NULL, NOW, o);
}

/* Parse an answer given as strings. */
static int raw(int status, const char *headers, const char *body, struct rota_obs *o)
{
    return sample_parse_mem(rota_parse_copilot, NULL, status, headers, body, strlen(body), NOW,
                            o);
}

/* A window of "pool", in requests (or a percentage for FRACTION), with no used figure. */
static void expect_win(const struct rota_obs *o, uint32_t i, const char *pool, int metric,
                       int64_t limit, int64_t remaining, int64_t reset_at)
{
    sample_expect_win(o, i, pool, metric == FRACTION ? "percent" : "requests", metric, limit,
                      remaining, NO, reset_at);
}

/* ---- realistic answers ---- */

static void test_parse_copilot_paid_plan(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("paid_pro", &o), 1);
    assert_int_equal(o.nwin, 3); /* the REST rate-limit headers are not Copilot's quota */
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, NO, NO, NOV_1);
    expect_win(&o, 1, "completions", ROTA_METRIC_REQUESTS, NO, NO, NOV_1);
    expect_win(&o, 2, "premium_interactions", ROTA_METRIC_REQUESTS, 1500, 469, NOV_1);
    assert_true(o.reachable);
    sample_expect_calm(&o);
    assert_int_equal(o.problems, 0);
    assert_string_equal(o.problem, "");
    assert_string_equal(o.detail, "plan individual_pro; chat unlimited; completions unlimited; "
                                  "premium_interactions 469/1500 left");
}

static void test_parse_copilot_exec_business(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("business_exec", &o), 1); /* status 0: gh's output */
    assert_int_equal(o.nwin, 3);
    /* the body lists premium_interactions first; windows keep the fixed order */
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, NO, NO, NOV_1);
    expect_win(&o, 1, "completions", ROTA_METRIC_REQUESTS, NO, NO, NOV_1);
    expect_win(&o, 2, "premium_interactions", ROTA_METRIC_REQUESTS, 300, 0, NOV_1);
    assert_true(o.reachable);
    sample_expect_calm(&o);
    assert_int_equal(o.problems, 0);
    sample_expect_detail(&o, "plan business");
    sample_expect_detail(&o, "premium_interactions overage permitted (12 used)");
}

static void test_parse_copilot_free_plan(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("free_limited", &o), 1);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 500, 410, NOV_8);
    expect_win(&o, 1, "completions", ROTA_METRIC_REQUESTS, 4000, 3712, NOV_8);
    assert_true(o.reachable);
    sample_expect_calm(&o);
    assert_int_equal(o.problems, 0);
    assert_string_equal(o.detail,
                        "plan individual; chat 410/500 left; completions 3712/4000 left");
}

static void test_parse_copilot_headers_passive(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("chat_stream_200", &o), 1);
    assert_int_equal(o.nwin, 3);
    /* 31.3% of 1500 is 469.5: rounded down */
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 1500, 469, NOV_1);
    expect_win(&o, 1, "chat", ROTA_METRIC_REQUESTS, NO, NO, NOV_1);
    expect_win(&o, 2, "premium_models", ROTA_METRIC_REQUESTS, 1500, 469, NOV_1);
    assert_true(o.reachable);
    sample_expect_calm(&o);
    assert_int_equal(o.problems, 0); /* an event stream is not a malformed user body */
    assert_string_equal(o.detail, "premium_interactions 469/1500 left; chat unlimited; "
                                  "premium_models 469/1500 left");
}

static void test_parse_copilot_rate_limited(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("chat_429", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 37 * S);
    assert_false(o.disable);
    assert_false(o.reachable);
    assert_int_equal(o.nwin, 1);
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 1500, 180, NOV_1);
    assert_int_equal(o.problems, 0);
    sample_expect_detail(&o, "429: Sorry, you have been rate-limited");

    /* without Retry-After: a minute */
    assert_int_equal(raw(429, "", "", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 60 * S);
    assert_int_equal(o.nwin, 0);
    /* a 403 that says rate limit is one, not a refusal */
    assert_int_equal(
        raw(403, "", "{\"message\":\"You have exceeded a secondary rate limit.\"}", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 60 * S);
    assert_false(o.disable);
    assert_int_equal(raw(403, "x-ratelimit-remaining: 0\n", "", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(raw(403, "retry-after: 9\n", "", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 9 * S);
}

static void test_parse_copilot_premium_exhausted(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("chat_402_premium", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(o.retry_at, NOV_1); /* when the premium allowance comes back */
    assert_false(o.disable);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 300, 0, NOV_1);
    expect_win(&o, 1, "chat", ROTA_METRIC_REQUESTS, NO, NO, NOV_1);
    assert_int_equal(o.problems, 0);

    /* a 429 about the quota, with nothing that says when it returns: a minute */
    assert_int_equal(raw(429, "", "{\"error\":{\"message\":\"premium quota exceeded\"}}", &o),
                     1);
    assert_int_equal(o.cause, ROTA_CAUSE_QUOTA);
    assert_int_equal(o.retry_at, NOW + 60 * S);
}

static void test_parse_copilot_refused(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("user_401", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.nwin, 0);
    assert_false(o.reachable);
    assert_string_equal(o.detail, "401: Bad credentials");

    assert_int_equal(sample("exec_bad_credentials", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_false(o.reachable);

    assert_int_equal(sample("user_403_no_copilot", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_int_equal(o.retry_at, 0);
    sample_expect_detail(&o, "Resource not accessible");
}

static void test_parse_copilot_unavailable(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("chat_503", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.retry_at, NOW + 5 * S);
    assert_false(o.disable);
    assert_int_equal(o.problems, 0);

    assert_int_equal(sample("user_404", &o), -EINVAL);
    sample_expect_problem(&o, 1, "status: 404");
    assert_int_equal(o.cause, ROTA_CAUSE_NONE);
    assert_false(o.reachable);
    assert_int_equal(raw(418, "", "", &o), -EINVAL);
    sample_expect_problem(&o, 1, "status: 418");
}

/* ---- malformed bodies ---- */

static void test_parse_copilot_empty_and_broken(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(raw(0, "", "", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: empty");
    assert_false(o.reachable);
    /* a 200 with nothing in it says nothing */
    assert_int_equal(raw(200, "", "", &o), 0);
    assert_int_equal(o.problems, 0);
    assert_int_equal(o.nwin, 0);
    /* a chat answer's JSON is not the user body, and not malformed */
    assert_int_equal(raw(200, "", "{\"id\":\"chatcmpl-1\",\"choices\":[]}", &o), 0);
    assert_int_equal(o.problems, 0);

    assert_int_equal(raw(0, "", "{\"copilot_plan\":\"individual\",\"quota_snap", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
    assert_int_equal(raw(200, "", "{\"quota_snapshots\":{\"chat\":{\"entitlement\":5", &o),
                     -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
    assert_int_equal(o.nwin, 0);
    assert_int_equal(raw(0, "", "{\"copilot_plan\":\"ind\xff\xfe\"}", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
    assert_int_equal(raw(0, "", "not json at all", &o), -EINVAL);
    assert_int_equal(raw(0, "", "[1,2]", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: an array, not an object");
    assert_int_equal(raw(0, "", "\"chat\"", &o), -EINVAL);
    assert_int_equal(raw(0, "", "{\"message\":\"Not Found\"}", &o), -EINVAL);
    sample_expect_problem(&o, 1,
                          "body: neither quota_snapshots nor limited_user_quotas: Not Found");
    /* quota_snapshots of the wrong type, and nothing else */
    assert_int_equal(raw(0, "", "{\"quota_snapshots\":[1]}", &o), -EINVAL);
    sample_expect_problem(&o, 2, "quota_snapshots: an array, not an object");
    /* a plan without figures is understood: the token works */
    assert_int_equal(
        raw(0, "", "{\"copilot_plan\":\"enterprise\",\"quota_snapshots\":null}", &o), 1);
    assert_true(o.reachable);
    assert_int_equal(o.nwin, 0);
    assert_int_equal(o.problems, 0);
    assert_string_equal(o.detail, "plan enterprise; no quota figures");
}

static void test_parse_copilot_wrong_types(void **state)
{
    (void)state;
    struct rota_obs o;
    /* entitlement as a string of digits is read; unlimited as a string is not */
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"premium_interactions\":{\"entitlement\":"
                         "\"1500\",\"remaining\":469,\"unlimited\":\"no\"}}}",
                         &o),
                     1);
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 1500, 469, 0);
    sample_expect_problem(&o, 1,
                          "quota_snapshots.premium_interactions.unlimited: a string, not a "
                          "boolean");
    /* remaining unusable: quota_remaining (rounded down), then the percentage */
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"chat\":{\"entitlement\":300,\"remaining\":"
                         "true,\"quota_remaining\":12.9}}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 300, 12, 0);
    sample_expect_problem(&o, 1, "quota_snapshots.chat.remaining: a boolean, not a number");
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"chat\":{\"entitlement\":1500,"
                         "\"percent_remaining\":31.3}}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 1500, 469, 0);
    assert_int_equal(o.problems, 0);
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"chat\":{\"entitlement\":1500,"
                         "\"percent_remaining\":150}}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 1500, 1500, 0);
    sample_expect_problem(&o, 1,
                          "quota_snapshots.chat.percent_remaining: 150 is not a percentage");
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"chat\":{\"entitlement\":{},"
                         "\"percent_remaining\":\"31%\",\"remaining\":[]}}}",
                         &o),
                     1);
    assert_int_equal(o.nwin, 1); /* the pool was named, even with no figure */
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, NO, NO, 0);
    sample_expect_problem(&o, 3, "quota_snapshots.chat.entitlement: an object, not a number");
    /* a snapshot that is not an object; one that is null is simply absent */
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"chat\":\"lots\",\"completions\":null,"
                         "\"premium_interactions\":{\"entitlement\":50,\"remaining\":5}}}",
                         &o),
                     1);
    assert_int_equal(o.nwin, 1);
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 50, 5, 0);
    sample_expect_problem(&o, 1, "quota_snapshots.chat: a string, not an object");
    /* free plan with a wrong type on one side */
    assert_int_equal(raw(0, "",
                         "{\"monthly_quotas\":{\"chat\":\"many\",\"completions\":4000},"
                         "\"limited_user_quotas\":{\"chat\":10,\"completions\":false},"
                         "\"limited_user_reset_date\":7}",
                         &o),
                     1);
    assert_int_equal(o.nwin, 2);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, NO, 10, 0);
    expect_win(&o, 1, "completions", ROTA_METRIC_REQUESTS, 4000, NO, 0);
    sample_expect_problem(&o, 3, "limited_user_reset_date: a number, not a date");
}

static void test_parse_copilot_numbers(void **state)
{
    (void)state;
    struct rota_obs o;
    /* a negative remainder is none left, and said */
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"premium_interactions\":{\"entitlement\":300,"
                         "\"remaining\":-12,\"overage_permitted\":true,\"overage_count\":12}}}",
                         &o),
                     1);
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 300, 0, 0);
    sample_expect_problem(&o, 1,
                          "quota_snapshots.premium_interactions.remaining: negative (-12)");
    assert_int_equal(
        raw(0, "", "{\"quota_snapshots\":{\"chat\":{\"entitlement\":-5,\"remaining\":3}}}", &o),
        1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, NO, 3, 0);
    sample_expect_problem(&o, 1, "quota_snapshots.chat.entitlement: negative (-5)");
    /* beyond 2^64: that field is refused, the rest of the document still read */
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"chat\":{\"entitlement\":"
                         "100000000000000000000,\"remaining\":469}}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, NO, 469, 0);
    sample_expect_problem(&o, 1, "quota_snapshots.chat.entitlement: beyond 2^64");
    /* between 2^63 and 2^64 still fits */
    assert_int_equal(raw(0, "",
                         "{\"quota_snapshots\":{\"chat\":{\"entitlement\":"
                         "18000000000000000000,\"remaining\":0}}}",
                         &o),
                     1);
    assert_int_equal(o.nwin, 1);
    assert_true(o.win[0].has_limit);
    assert_int_equal(o.win[0].limit, UINT64_C(18000000000000000000));
    assert_true(o.win[0].has_remaining);
    assert_int_equal(o.win[0].remaining, 0);
    assert_int_equal(o.problems, 0);
    assert_int_equal(raw(0, "", "{\"monthly_quotas\":{\"chat\":1e999}}", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
}

static void test_parse_copilot_reset_dates(void **state)
{
    (void)state;
    struct rota_obs o;
    /* a broken first date falls back to the second, and is said */
    assert_int_equal(raw(0, "",
                         "{\"quota_reset_date_utc\":\"2025-13-01T00:00:00Z\",\"quota_reset_"
                         "date\":\"2025-11-01\",\"quota_snapshots\":{\"chat\":{\"unlimited\":"
                         "true}}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, NO, NO, NOV_1);
    sample_expect_problem(&o, 1, "quota_reset_date_utc: not a date after 1970");
    /* zero and negative instants are refused */
    assert_int_equal(raw(0, "",
                         "{\"quota_reset_date\":\"1970-01-01\",\"quota_snapshots\":{\"chat\":"
                         "{\"entitlement\":5,\"remaining\":5}}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 5, 5, 0);
    sample_expect_problem(&o, 1, "quota_reset_date: not a date after 1970");
    assert_int_equal(raw(0, "",
                         "{\"limited_user_reset_date\":\"1969-12-31\",\"monthly_quotas\":{"
                         "\"chat\":5}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 5, NO, 0);
    sample_expect_problem(&o, 1, "limited_user_reset_date: not a date after 1970");
    /* an empty date is no date */
    assert_int_equal(raw(0, "",
                         "{\"quota_reset_date\":\"\",\"quota_snapshots\":{\"chat\":"
                         "{\"entitlement\":5,\"remaining\":1}}}",
                         &o),
                     1);
    assert_int_equal(o.problems, 0);
    assert_int_equal(o.win[0].reset_at, 0);
}

static void test_parse_copilot_many_snapshots(void **state)
{
    (void)state;
    struct rota_obs o;
    char body[4096];
    int n = snprintf(body, sizeof(body), "{\"quota_snapshots\":{");
    for (int i = 0; i < 20; i++)
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "%s\"pool%02d\":{\"entitlement\":%d,\"remaining\":1}", i ? "," : "", i,
                      i + 1);
    snprintf(body + n, sizeof(body) - (size_t)n, ",\"chat\":{\"entitlement\":9}}}");
    assert_int_equal(raw(0, "", body, &o), 1);
    assert_int_equal(o.nwin, ROTA_OBS_WINDOWS);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 9, NO, 0); /* known names first */
    expect_win(&o, 1, "pool00", ROTA_METRIC_REQUESTS, 1, 1, 0);
    sample_expect_problem(&o, 5, "windows: more than 16 buckets");
}

/* ---- malformed headers ---- */

static void test_parse_copilot_header_variants(void **state)
{
    (void)state;
    struct rota_obs o;
    /* percentage only: a fraction of the whole */
    assert_int_equal(raw(200, "X-Quota-Snapshot-Chat: rem=31.3" RST "\r\n", "", &o), 1);
    expect_win(&o, 0, "chat", FRACTION, 1000000, 313000, NOV_1);
    assert_int_equal(o.problems, 0);
    /* entitlement only, fractional, keys reordered, empty pairs */
    assert_int_equal(raw(200, "x-quota-snapshot-chat: &&ovPerm=true&ent=1500.7&&\n", "", &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 1500, NO, 0);
    assert_int_equal(o.problems, 0);
    /* '+' is a space, so this instant is broken */
    assert_int_equal(raw(200,
                         "x-quota-snapshot-chat: ent=10&rem=50&rst=2025-11-01T00:00:00+01:00\n",
                         "", &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 10, 5, 0);
    sample_expect_problem(&o, 1, "header chat: rst is not an instant");
    /* out-of-range percentages are clamped and said */
    assert_int_equal(raw(200, "x-quota-snapshot-chat: ent=10&rem=-5\n", "", &o), 1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 10, 0, 0);
    sample_expect_problem(&o, 1, "header chat: rem -5 is not a percentage");
    assert_int_equal(raw(200, "x-quota-snapshot-chat: ent=10&rem=250\n", "", &o), 1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 10, 10, 0);
    assert_int_equal(o.problems, 1);
    /* broken escapes, an encoded NUL, not numbers */
    assert_int_equal(
        raw(200, "x-quota-snapshot-chat: ent=10&rem=5&rst=2025-11-01T00%3A00%ZZ00Z\n", "", &o),
        1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 10, 0, 0);
    sample_expect_problem(&o, 1, "header chat: rst has a broken %-escape");
    assert_int_equal(raw(200, "x-quota-snapshot-chat: ent=1%00&rem=5%2\n", "", &o), -EINVAL);
    sample_expect_problem(&o, 3, "header chat: ent has a broken %-escape");
    assert_int_equal(o.nwin, 0);
    assert_true(o.reachable);
    assert_int_equal(raw(200, "x-quota-snapshot-chat: ent=lots&rem=1e3\n", "", &o), -EINVAL);
    sample_expect_problem(&o, 3, "header chat: ent is not a number");
    assert_int_equal(
        raw(200, "x-quota-snapshot-chat: ent=99999999999999999999999&rem=5\n", "", &o), 1);
    expect_win(&o, 0, "chat", FRACTION, 1000000, 50000, 0);
    sample_expect_problem(&o, 1, "header chat: ent is not a number");
    assert_int_equal(raw(200, "x-quota-snapshot-chat: ent=-7&rem=5\n", "", &o), 1);
    sample_expect_problem(&o, 1, "header chat: ent is negative");
    /* not key=value at all; an empty value */
    assert_int_equal(raw(429, "x-quota-snapshot-chat: garbage\n", "", &o), 1);
    sample_expect_problem(&o, 2, "header chat: \"garbage\" is not key=value");
    assert_int_equal(o.cause, ROTA_CAUSE_RATE); /* the status still speaks */
    assert_int_equal(raw(200, "x-quota-snapshot-chat:\n", "", &o), -EINVAL);
    sample_expect_problem(&o, 1, "header chat: neither ent nor rem");
    /* an unknown suffix is not read; a repeated header: the first wins */
    assert_int_equal(raw(200,
                         "x-quota-snapshot-other: ent=1&rem=1\nx-quota-snapshot-chat: "
                         "ent=20&rem=50\nx-quota-snapshot-chat: ent=30&rem=50\n",
                         "", &o),
                     1);
    assert_int_equal(o.nwin, 1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 20, 10, 0);
    /* an oversized value is ignored rather than cut */
    char big[700];
    memset(big, 'a', sizeof(big));
    memcpy(big, "x-quota-snapshot-chat: ", 23);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(raw(200, big, "", &o), 0);
    assert_int_equal(o.nwin, 0);
}

/* Resets and retry hints with a fraction are waited in full, never cut short. */
static void test_parse_copilot_fractional_resets_round_up(void **state)
{
    (void)state;
    struct rota_obs o;
    /* the snapshot header's rst, and the user body's reset date */
    assert_int_equal(raw(200,
                         "x-quota-snapshot-premium_interactions: ent=300&rem=0"
                         "&rst=2025-11-01T00%3A00%3A00.0000000001Z\n",
                         "", &o),
                     1);
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 300, 0, NOV_1 + 1);
    assert_int_equal(raw(200,
                         "x-quota-snapshot-premium_interactions: ent=300&rem=0"
                         "&rst=2025-11-01T00%3A00%3A00.000Z\n",
                         "", &o),
                     1);
    expect_win(&o, 0, "premium_interactions", ROTA_METRIC_REQUESTS, 300, 0, NOV_1);
    assert_int_equal(raw(0, "",
                         "{\"quota_reset_date_utc\":\"2025-10-31T23:59:59.9999999999Z\","
                         "\"quota_snapshots\":{\"chat\":{\"entitlement\":5,\"remaining\":0}}}",
                         &o),
                     1);
    expect_win(&o, 0, "chat", ROTA_METRIC_REQUESTS, 5, 0, NOV_1);
    /* a 402 waits for the premium reset; a 429 for Retry-After */
    assert_int_equal(raw(402,
                         "x-quota-snapshot-premium_interactions: ent=300&rem=0"
                         "&rst=2025-11-01T00%3A00%3A00.0000000001Z\n",
                         "", &o),
                     1);
    assert_int_equal(o.retry_at, NOV_1 + 1);
    assert_int_equal(raw(429, "retry-after: 37.0000000001\n", "", &o), 1);
    assert_int_equal(o.retry_at, NOW + 37 * S + 1);
    assert_int_equal(o.problems, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_copilot_paid_plan),
        cmocka_unit_test(test_parse_copilot_exec_business),
        cmocka_unit_test(test_parse_copilot_free_plan),
        cmocka_unit_test(test_parse_copilot_headers_passive),
        cmocka_unit_test(test_parse_copilot_rate_limited),
        cmocka_unit_test(test_parse_copilot_premium_exhausted),
        cmocka_unit_test(test_parse_copilot_refused),
        cmocka_unit_test(test_parse_copilot_unavailable),
        cmocka_unit_test(test_parse_copilot_empty_and_broken),
        cmocka_unit_test(test_parse_copilot_wrong_types),
        cmocka_unit_test(test_parse_copilot_numbers),
        cmocka_unit_test(test_parse_copilot_reset_dates),
        cmocka_unit_test(test_parse_copilot_many_snapshots),
        cmocka_unit_test(test_parse_copilot_header_variants),
        cmocka_unit_test(test_parse_copilot_fractional_resets_round_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
