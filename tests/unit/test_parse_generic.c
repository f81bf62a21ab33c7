/* test_parse_generic: JSON bodies read with configured RFC 6901 pointers
 * (tests/probes/generic), figures as numbers and strings, resets in s, ms and RFC 3339,
 * hostile values, and the shared 429/401/402/5xx handling. */
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

static const struct rota_parse_opts data_opts = {"/data/used", "/data/limit", "/data/remaining",
                                                 "/data/reset", ROTA_METRIC_CREDITS};

static int gen(const char *name, const struct rota_parse_opts *opts, struct rota_obs *o)
{
    return sample_parse(rota_parse_generic, "generic", name, opts, NOW, o);
}

/* A 200 without headers whose body is "body". */
static int gen_body(const char *body, const struct rota_parse_opts *opts, struct rota_obs *o)
{
    return sample_parse_mem(rota_parse_generic, opts, 200, NULL, body, strlen(body), NOW, o);
}

/* The one window, account-wide and named "quota". */
static void expect_win(const struct rota_obs *o, int metric, int64_t used, int64_t limit,
                       int64_t remaining, int64_t reset_at)
{
    assert_int_equal(o->nwin, 1);
    sample_expect_win(o, 0, "", "quota", metric, limit, remaining, used, reset_at);
}

static void test_parse_generic_shapes(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(gen("ok", &data_opts, &o), 1);
    expect_win(&o, ROTA_METRIC_CREDITS, 120, 1000, 880, NOW + 3600 * S);
    assert_true(o.reachable);
    assert_int_equal(o.cause, ROTA_CAUSE_NONE);
    assert_int_equal(o.problems, 0);

    /* strings, another order, a fraction cut, a reset in ms */
    assert_int_equal(gen("ok_strings", &data_opts, &o), 1);
    expect_win(&o, ROTA_METRIC_CREDITS, 120, 1000, 880, NOW + 3600 * S + 500 * MS);
    assert_int_equal(o.problems, 0);

    /* no used pointer; exponent and fraction numbers; an RFC 3339 reset; an integer past
     * 2^64 elsewhere in the body spoils nothing */
    struct rota_parse_opts o2 = data_opts;
    o2.used_ptr = NULL;
    o2.metric = ROTA_METRIC_TOKENS;
    assert_int_equal(gen("ok_rfc3339", &o2, &o), 1);
    expect_win(&o, ROTA_METRIC_TOKENS, NO, 5000, 4999, NOW + 3600 * S + 125 * MS);
    assert_int_equal(o.problems, 0);

    /* an exec probe's output: no status line */
    assert_int_equal(gen("exec", &data_opts, &o), 1);
    expect_win(&o, ROTA_METRIC_CREDITS, 5, 10, NO, 0);
    assert_int_equal(o.problems, 2); /* remaining and reset name nothing */
    assert_false(o.reachable);
}

static void test_parse_generic_pointers(void **state)
{
    (void)state;
    struct rota_obs o;
    /* ~1 is '/', ~0 is '~', array indices, the empty key */
    struct rota_parse_opts e = {"/a~1b/m~0n/1/left", "/a~1b/m~0n/1/total", "//",
                                "/a~1b/m~0n/1/at", ROTA_METRIC_REQUESTS};
    assert_int_equal(gen("escapes", &e, &o), 1);
    expect_win(&o, ROTA_METRIC_REQUESTS, 42, 100, 7, NOW + 3600 * S);
    assert_int_equal(o.problems, 0);

    /* malformed pointers, and ones naming nothing */
    struct rota_parse_opts bad = {"data/used", "/a/01", "/a/-", "/a/~2", ROTA_METRIC_REQUESTS};
    assert_int_equal(gen_body("{\"a\":[10,20,30],\"data\":{\"used\":1}}", &bad, &o), -EINVAL);
    assert_int_equal(o.problems, 4);
    assert_string_equal(o.problem, "used pointer \"data/used\": not an RFC 6901 pointer");
    assert_int_equal(o.nwin, 0);

    struct rota_parse_opts idx = {"/a/0", "/a/2", "/a/3", "/a/99999999999", 0};
    assert_int_equal(gen_body("{\"a\":[10,20,30]}", &idx, &o), 1);
    expect_win(&o, ROTA_METRIC_REQUESTS, 10, 30, NO, 0);
    assert_int_equal(o.problems, 2);
    assert_string_equal(o.problem, "remaining pointer \"/a/3\": names nothing in the body");

    /* a pointer through a number, and a token longer than any key we keep */
    char longptr[400] = "/";
    memset(longptr + 1, 'k', 300);
    struct rota_parse_opts deep = {"/a/0/x", longptr, NULL, NULL, 0};
    assert_int_equal(gen_body("{\"a\":[10]}", &deep, &o), -EINVAL);
    assert_int_equal(o.problems, 2);

    /* the whole document is "" */
    struct rota_parse_opts whole = {"", NULL, NULL, NULL, 0};
    assert_int_equal(gen_body("17", &whole, &o), 1);
    expect_win(&o, ROTA_METRIC_REQUESTS, 17, NO, NO, 0);
}

static void test_parse_generic_fraction(void **state)
{
    (void)state;
    struct rota_obs o;
    struct rota_parse_opts f = {"/quota/fraction_used", NULL, "/quota/fraction_left",
                                "/quota/reset", ROTA_METRIC_FRACTION};
    assert_int_equal(gen("fraction", &f, &o), 1);
    expect_win(&o, ROTA_METRIC_FRACTION, 290000, 1000000, 710000, NOW + 3600 * S + 250 * MS);
    assert_int_equal(o.problems, 0);

    f.reset_ptr = NULL;
    assert_int_equal(gen("fraction_bad", &f, &o), -EINVAL);
    assert_int_equal(o.problems, 2);
    assert_string_equal(o.problem, "body: /quota/fraction_used: a fraction above 1");
}

/* A reset with a fraction is rounded up, never down: in s or ms, as a number or a string,
 * or as RFC 3339; exact resets stay exact. */
static void test_parse_generic_fractional_reset_rounds_up(void **state)
{
    (void)state;
    struct rota_obs o;
    struct rota_parse_opts r = {NULL, NULL, "/left", "/at", ROTA_METRIC_REQUESTS};
    static const struct {
        const char *body;
        int64_t reset_at;
    } cases[] = {
        {"{\"left\":0,\"at\":1764003600}", NOW + 3600 * S},
        {"{\"left\":0,\"at\":1764003600.25}", NOW + 3600 * S + 250 * MS},
        {"{\"left\":0,\"at\":1764003600.3}", NOW + 3600 * S + 300 * MS},
        {"{\"left\":0,\"at\":1764003600.0004}", NOW + 3600 * S + MS},
        {"{\"left\":0,\"at\":\"1764003600.0000005\"}", NOW + 3600 * S + 500},
        {"{\"left\":0,\"at\":\"1764003600.000\"}", NOW + 3600 * S},
        {"{\"left\":0,\"at\":1764003600000.5}", NOW + 3600 * S + 500000},
        {"{\"left\":0,\"at\":\"1764003600000.25\"}", NOW + 3600 * S + 250000},
        {"{\"left\":0,\"at\":\"2025-11-24T17:00:00.0000000001Z\"}", NOW + 3600 * S + 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(gen_body(cases[i].body, &r, &o), 1);
        if (o.problems || o.nwin != 1 || o.win[0].reset_at != cases[i].reset_at)
            fail_msg("%s: %u problems (%s), reset %lld ns from now, want %lld", cases[i].body,
                     o.problems, o.problem, (long long)(o.win[0].reset_at - NOW),
                     (long long)(cases[i].reset_at - NOW));
    }
    /* a 429's Retry-After */
    assert_int_equal(sample_parse_mem(rota_parse_generic, &r, 429,
                                      "retry-after: 30.0000000001\n", "", 0, NOW, &o),
                     1);
    assert_int_equal(o.retry_at, NOW + 30 * S + 1);
}

static void test_parse_generic_hostile_values(void **state)
{
    (void)state;
    struct rota_obs o;
    static const char *const four_bad[] = {"wrong_types", "huge", "negative", "not_object",
                                           "bad_strings"};
    for (size_t i = 0; i < sizeof(four_bad) / sizeof(four_bad[0]); i++) {
        if (gen(four_bad[i], &data_opts, &o) != -EINVAL || o.problems != 4 || o.nwin != 0)
            fail_msg("%s: %u problems, %u windows", four_bad[i], o.problems, o.nwin);
        assert_true(o.reachable);
    }
    assert_int_equal(gen("wrong_types", &data_opts, &o), -EINVAL);
    assert_string_equal(o.problem, "body: /data/used: not a non-negative figure");
    assert_int_equal(gen("negative", &data_opts, &o), -EINVAL);
    assert_string_equal(o.problem, "body: /data/used: not a non-negative figure");

    /* zero is a figure; a zero reset is "not said" */
    assert_int_equal(gen("zero", &data_opts, &o), 1);
    expect_win(&o, ROTA_METRIC_CREDITS, 0, 0, 0, 0);
    assert_int_equal(o.problems, 0);

    /* null says nothing and is no problem */
    assert_int_equal(gen("nulls", &data_opts, &o), 0);
    assert_int_equal(o.nwin, 0);
    assert_int_equal(o.problems, 0);

    /* one figure missing: the others are kept */
    assert_int_equal(gen("missing", &data_opts, &o), 1);
    expect_win(&o, ROTA_METRIC_CREDITS, NO, 1000, NO, 0);
    assert_int_equal(o.problems, 3);
    assert_string_equal(o.problem, "used pointer \"/data/used\": names nothing in the body");

    static const char *const broken[] = {"truncated", "bad_utf8", "empty"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(gen(broken[i], &data_opts, &o), -EINVAL);
        assert_int_equal(o.problems, 1);
        assert_memory_equal(o.problem, "body: not JSON: ", 16);
    }
    assert_int_equal(gen("empty", &data_opts, &o), -EINVAL);
    assert_string_equal(o.problem, "body: not JSON: empty");
}

static void test_parse_generic_statuses(void **state)
{
    (void)state;
    struct rota_obs o;
    /* an error answer's body is not searched for figures */
    assert_int_equal(gen("429", &data_opts, &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, NOW + 30 * S);
    assert_int_equal(o.nwin, 0);
    assert_false(o.disable);
    assert_false(o.reachable);

    assert_int_equal(gen("429_date", &data_opts, &o), 1);
    assert_int_equal(o.retry_at, NOW + 300 * S);

    assert_int_equal(gen("429_bad_hint", &data_opts, &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_RATE);
    assert_int_equal(o.retry_at, 0);
    assert_int_equal(o.problems, 1);

    assert_int_equal(gen("401", &data_opts, &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);

    assert_int_equal(gen("402", &data_opts, &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_BILLING);
    assert_true(o.disable);

    assert_int_equal(gen("503", &data_opts, &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o.retry_at, NOW + 120 * S);
    assert_int_equal(o.problems, 0);
}

static void test_parse_generic_opts(void **state)
{
    (void)state;
    struct rota_obs o;
    /* no opts, or no pointers: a 2xx says nothing */
    assert_int_equal(gen("ok", NULL, &o), 0);
    assert_true(o.reachable);
    struct rota_parse_opts none = {NULL, NULL, NULL, NULL, ROTA_METRIC_REQUESTS};
    assert_int_equal(gen("ok", &none, &o), 0);
    assert_int_equal(o.problems, 0);
    /* an unknown metric is counted and replaced */
    struct rota_parse_opts m = data_opts;
    m.metric = 9;
    assert_int_equal(gen("ok", &m, &o), 1);
    assert_int_equal(o.problems, 1);
    expect_win(&o, ROTA_METRIC_REQUESTS, 120, 1000, 880, NOW + 3600 * S);
    assert_int_equal(rota_parse_generic(NULL, &data_opts, &o), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_generic_shapes),
        cmocka_unit_test(test_parse_generic_pointers),
        cmocka_unit_test(test_parse_generic_fraction),
        cmocka_unit_test(test_parse_generic_fractional_reset_rounds_up),
        cmocka_unit_test(test_parse_generic_hostile_values),
        cmocka_unit_test(test_parse_generic_statuses),
        cmocka_unit_test(test_parse_generic_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
