/* test_front_error: the JSON error bodies of workers/front.h: each API's shape chosen
 * by path, and messages escaped so that a JSON parser reads back what was meant
 * (quotes, control characters, UTF-8 passed, invalid UTF-8 replaced). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "front.h"

static json_t *error_of(const char *path, int status, const char *type, const char *msg)
{
    char buf[2048];
    size_t n = rota_front_error_json(buf, sizeof(buf), path, status, type, msg);
    assert_int_equal(n, strlen(buf));
    json_error_t e;
    json_t *v = json_loads(buf, 0, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, buf);
    return v;
}

static void test_front_error_shapes(void **state)
{
    json_t *v = error_of("/v1/chat/completions", 429, NULL, "slow down");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "error"), "message")),
        "slow down");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                        "rate_limit_error");
    assert_true(json_is_null(json_object_get(json_object_get(v, "error"), "param")));
    assert_true(json_is_null(json_object_get(json_object_get(v, "error"), "code")));
    json_decref(v);

    v = error_of("/v1/messages", 413, NULL, "too big");
    assert_string_equal(json_string_value(json_object_get(v, "type")), "error");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                        "request_too_large");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "error"), "message")), "too big");
    json_decref(v);
    v = error_of("/v1/messages/count_tokens", 400, "invalid_request_error", "x");
    assert_string_equal(json_string_value(json_object_get(v, "type")), "error");
    json_decref(v);
    v = error_of("/v1/messagesx", 400, NULL, "x"); /* not Anthropic's */
    assert_null(json_object_get(v, "type"));
    json_decref(v);

    v = error_of("/v1beta/models/gemini-2.0-flash:generateContent", 429, NULL, "quota");
    json_t *e = json_object_get(v, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 429);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "RESOURCE_EXHAUSTED");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "quota");
    json_decref(v);
    v = error_of(NULL, 503, NULL, NULL); /* no path yet: OpenAI's; no message: the reason */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "error"), "message")),
        "Service Unavailable");
    json_decref(v);
}

static void test_front_error_escaping(void **state)
{
    const char *msg = "say \"hi\"\\ \n\t\x01\x1f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    json_t *v = error_of("/x", 400, NULL, msg);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "error"), "message")), msg);
    json_decref(v);
    /* invalid: a lone continuation byte, an overlong "/", a surrogate, a cut sequence */
    v = error_of("/x", 400, NULL,
                 "a\x80"
                 "b\xc0\xaf"
                 "c\xed\xa0\x80"
                 "d\xe2\x82");
    const char *got =
        json_string_value(json_object_get(json_object_get(v, "error"), "message"));
    assert_non_null(got);
    assert_non_null(strstr(got, "a\xef\xbf\xbd"
                                "b\xef\xbf\xbd\xef\xbf\xbd"
                                "c"));
    assert_int_equal(got[strlen(got) - 1], (char)0xbd); /* ends in U+FFFD */
    json_decref(v);
}

static void test_front_error_truncates(void **state)
{
    char long_msg[5000];
    memset(long_msg, '"', sizeof(long_msg) - 1); /* each becomes two bytes */
    long_msg[sizeof(long_msg) - 1] = '\0';
    char buf[600];
    size_t n = rota_front_error_json(buf, sizeof(buf), "/v1/messages", 400, NULL, long_msg);
    assert_true(n < sizeof(buf));
    json_t *v = json_loads(buf, 0, NULL);
    assert_non_null(v); /* shortened, still whole JSON */
    json_decref(v);
    char esc[5];
    assert_int_equal(rota_json_escape(esc, sizeof(esc), "\x01"), 0); /* never half an escape */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_front_error_shapes),
        cmocka_unit_test(test_front_error_escaping),
        cmocka_unit_test(test_front_error_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
