/* test_pool_pure: the dispatch pool's pure parts on bytes: the request scanner
 * (workers/formats.h) and which client headers pass upstream (workers/upstream.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "formats.h"
#include "upstream.h"

/* A NUL is no JSON: not in a key (escaped, it would end the key early and make
 * "stream\u0000" the same as "stream"), not among a number's bytes. */
static void test_scan_refuses_nul(void **state)
{
    struct rota_fmt_req r;
    static const char ok[] = "{\"model\":\"m\",\"stream\":true}";
    assert_int_equal(rota_fmt_scan_request(ok, sizeof(ok) - 1, &r), 0);
    assert_true(r.stream);
    static const char esc[] = "{\"model\":\"m\",\"stream\\u0000\":true}";
    assert_int_equal(rota_fmt_scan_request(esc, sizeof(esc) - 1, &r), 0);
    assert_false(r.stream); /* another key, not "stream" */
    static const char raw[] = "{\"model\":\"m\",\"max_tokens\":5\0}";
    assert_int_equal(rota_fmt_scan_request(raw, sizeof(raw) - 1, &r), -EINVAL);
}

/* Headers that choose who is billed stay with the client, like its credentials. */
static void test_billing_headers_kept(void **state)
{
    static const char *const kept[] = {"OpenAI-Organization", "openai-project",
                                       "X-Goog-User-Project", "Authorization", "x-api-key"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        assert_false(rota_upstream_passes(kept[i], "", NULL));
    assert_true(rota_upstream_passes("anthropic-version", "", NULL));
    assert_true(rota_upstream_passes("OpenAI-Beta", "", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_refuses_nul),
        cmocka_unit_test(test_billing_headers_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
