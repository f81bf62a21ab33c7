/* test_parse_llamacpp: the llama.cpp server's /health and /slots answers
 * (tests/probes/llamacpp) into reachability, free slots and capacity cooldowns; malformed
 * bodies. */
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
#define NOW (INT64_C(1760529600) * S)

static int sample(const char *name, struct rota_obs *o)
{
    return sample_parse(rota_parse_llamacpp, "llamacpp", name, NULL, NOW, o);
}

/* Parse an answer given as strings. */
static int raw(int status, const char *headers, const char *body, struct rota_obs *o)
{
    return sample_parse_mem(rota_parse_llamacpp, NULL, status, headers, body, strlen(body), NOW,
                            o);
}

/* A ready server: reachable, no cause, no window, "detail" exactly. */
static void expect_ready(const struct rota_obs *o, const char *detail)
{
    assert_true(o->reachable);
    assert_int_equal(o->cause, ROTA_CAUSE_NONE);
    assert_int_equal(o->retry_at, 0);
    assert_false(o->disable);
    assert_int_equal(o->nwin, 0);
    assert_string_equal(o->detail, detail);
}

/* A server that cannot take a call now: capacity until "retry_at", never disabled. */
static void expect_busy(const struct rota_obs *o, int64_t retry_at, const char *detail)
{
    assert_false(o->reachable);
    assert_int_equal(o->cause, ROTA_CAUSE_CAPACITY);
    assert_int_equal(o->retry_at, retry_at);
    assert_false(o->disable);
    assert_int_equal(o->nwin, 0);
    assert_string_equal(o->detail, detail);
}

/* ---- realistic answers ---- */

static void test_parse_llamacpp_health(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("health_ok", &o), 1);
    expect_ready(&o, "ready");
    assert_int_equal(o.problems, 0);
    assert_string_equal(o.problem, "");
    assert_int_equal(sample("health_ok_old_slots", &o), 1);
    expect_ready(&o, "ready; 3/4 slots free");
    assert_int_equal(o.problems, 0);
    /* an exec probe's output (status 0) reads the same */
    assert_int_equal(raw(0, "", "{\"status\":\"ok\"}\n", &o), 1);
    expect_ready(&o, "ready");
}

static void test_parse_llamacpp_loading(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("health_loading", &o), 1);
    expect_busy(&o, NOW + 5 * S, "loading the model");
    assert_int_equal(o.problems, 0);
    assert_int_equal(sample("health_loading_old", &o), 1);
    expect_busy(&o, NOW + 5 * S, "loading the model");
    assert_int_equal(sample("health_error_500", &o), 1);
    expect_busy(&o, NOW + 5 * S, "unavailable (500: error)");
    /* a Retry-After is honoured */
    assert_int_equal(raw(503, "Retry-After: 30\r\n", "{\"status\":\"loading model\"}", &o), 1);
    expect_busy(&o, NOW + 30 * S, "loading the model");
}

static void test_parse_llamacpp_slots(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("slots_200", &o), 1);
    expect_ready(&o, "2/4 slots free");
    assert_int_equal(o.problems, 0);
    assert_int_equal(sample("slots_old_state", &o), 1);
    expect_ready(&o, "1/2 slots free");
    assert_int_equal(o.problems, 0);
    /* every slot busy without fail_on_no_slot: reachable, and the detail says so */
    assert_int_equal(raw(200, "", "[{\"id\":0,\"is_processing\":true}]", &o), 1);
    expect_ready(&o, "0/1 slots free");
    assert_int_equal(raw(200, "", "[]", &o), 1);
    expect_ready(&o, "0/0 slots free");
}

static void test_parse_llamacpp_no_free_slot(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("slots_busy_503", &o), 1);
    expect_busy(&o, NOW + 1 * S, "no free slot");
    assert_int_equal(o.problems, 0);
    assert_int_equal(raw(503, "retry-after-ms: 250\n", "", &o), 1);
    expect_busy(&o, NOW + 250000000, "unavailable (503)");
    /* the old /health said it with a 503 and a status */
    assert_int_equal(
        raw(503, "",
            "{\"status\":\"no slot available\",\"slots_idle\":0,\"slots_processing\":2}", &o),
        1);
    expect_busy(&o, NOW + 1 * S, "no free slot");
    /* a 503 that is not JSON still means busy */
    assert_int_equal(raw(503, "", "<html>Service Unavailable</html>", &o), 1);
    expect_busy(&o, NOW + 5 * S, "unavailable (503)");
    assert_int_equal(o.problems, 0);
}

static void test_parse_llamacpp_not_exposed(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("slots_404", &o), 0);
    assert_int_equal(o.problems, 0);
    assert_false(o.reachable);
    assert_int_equal(o.cause, ROTA_CAUSE_NONE);
    assert_false(o.disable);
    assert_string_equal(o.detail, "slots not exposed (404)");
    assert_int_equal(sample("slots_501", &o), 0);
    assert_int_equal(o.problems, 0);
    assert_string_equal(o.detail, "slots not exposed (501)");
}

static void test_parse_llamacpp_refused(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(sample("unauthorized_401", &o), 1);
    assert_int_equal(o.cause, ROTA_CAUSE_AUTH);
    assert_true(o.disable);
    assert_int_equal(o.disable_until, 0);
    assert_false(o.reachable);
    assert_string_equal(o.detail, "API key refused (401: Invalid API Key)");
    assert_int_equal(raw(403, "", "", &o), 1);
    assert_true(o.disable);
    assert_string_equal(o.detail, "API key refused (403)");
}

/* ---- malformed answers ---- */

static void test_parse_llamacpp_malformed(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(raw(200, "", "", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: empty");
    assert_false(o.reachable);
    assert_int_equal(raw(200, "", "{\"status\":\"o", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
    assert_int_equal(raw(200, "", "{\"status\":\"\xff\xfe\"}", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
    assert_int_equal(raw(200, "", "OK", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
    assert_int_equal(raw(200, "", "{\"status\":\"sleeping\"}", &o), -EINVAL);
    sample_expect_problem(&o, 1, "status: \"sleeping\" is not a state /health reports");
    assert_int_equal(raw(200, "", "{\"status\":5}", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: an object that is neither /health nor /slots");
    assert_int_equal(raw(200, "", "42", &o), -EINVAL); /* JSON, but not a document */
    sample_expect_problem(&o, 1, "body: not JSON");
    assert_int_equal(raw(418, "", "", &o), -EINVAL);
    sample_expect_problem(&o, 1, "status: 418");
    /* old counts of the wrong type or absurd size are left out of the detail */
    assert_int_equal(
        raw(200, "", "{\"status\":\"OK\",\"slots_idle\":\"3\",\"slots_processing\":1}", &o), 1);
    expect_ready(&o, "ready");
    assert_int_equal(
        raw(200, "", "{\"status\":\"ok\",\"slots_idle\":-3,\"slots_processing\":1}", &o), 1);
    expect_ready(&o, "ready");
}

static void test_parse_llamacpp_bad_slots(void **state)
{
    (void)state;
    struct rota_obs o;
    /* unreadable slots count as busy; what is not an object is not a slot */
    assert_int_equal(raw(200, "",
                         "[1,{\"id\":0},{\"is_processing\":\"no\"},{\"state\":\"idle\"},"
                         "{\"is_processing\":false},null]",
                         &o),
                     1);
    expect_ready(&o, "1/4 slots free");
    sample_expect_problem(&o, 5, "slots[0]: a number, not an object");
    /* reordered fields, is_processing wins over state */
    assert_int_equal(raw(200, "", "[{\"state\":0,\"is_processing\":true},{\"state\":1}]", &o),
                     1);
    expect_ready(&o, "0/2 slots free");
    /* a number beyond 2^64 elsewhere does not sink the answer */
    assert_int_equal(raw(200, "",
                         "[{\"id\":0,\"n_ctx\":100000000000000000000,\"state\":0},"
                         "{\"id\":1,\"state\":1}]",
                         &o),
                     1);
    expect_ready(&o, "1/2 slots free");
    assert_int_equal(o.problems, 0);
    assert_int_equal(raw(200, "", "[{\"state\":1e999}]", &o), -EINVAL);
    sample_expect_problem(&o, 1, "body: not JSON");
}

/* A Retry-After with a fraction is waited in full, never cut short. */
static void test_parse_llamacpp_fractional_retry_rounds_up(void **state)
{
    (void)state;
    struct rota_obs o;
    assert_int_equal(raw(503, "Retry-After: 1.5\r\n", "{\"status\":\"loading model\"}", &o), 1);
    expect_busy(&o, NOW + 1500000000, "loading the model");
    assert_int_equal(
        raw(503, "Retry-After: 30.0000000001\r\n", "{\"status\":\"loading model\"}", &o), 1);
    expect_busy(&o, NOW + 30 * S + 1, "loading the model");
    /* half a ns is a ns, not "now" */
    assert_int_equal(raw(503, "retry-after-ms: 0.0000005\n", "", &o), 1);
    expect_busy(&o, NOW + 1, "unavailable (503)");
    assert_int_equal(o.problems, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_llamacpp_health),
        cmocka_unit_test(test_parse_llamacpp_loading),
        cmocka_unit_test(test_parse_llamacpp_slots),
        cmocka_unit_test(test_parse_llamacpp_no_free_slot),
        cmocka_unit_test(test_parse_llamacpp_not_exposed),
        cmocka_unit_test(test_parse_llamacpp_refused),
        cmocka_unit_test(test_parse_llamacpp_malformed),
        cmocka_unit_test(test_parse_llamacpp_bad_slots),
        cmocka_unit_test(test_parse_llamacpp_fractional_retry_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
