/* test_pool_xlate_retry: a translated stream whose first event cannot be translated (nothing
 * reached the client yet) is retried on the next account, whether the upstream is
 * called through the pool's own HTTP/1 client (an address) or through libcurl (a name
 * to resolve). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pool_it.h"

static const struct pool_account accounts[] = {
    {"gm-1", "gemini", "sk-it-gm1-secret"},
    {"gm-2", "gemini", "sk-it-gm2-secret"},
};

static void up(struct it *t, const char *tag)
{
    it_init(t, tag);
    pool_mock_start(t->dir, 50, accounts, 2, false);
    char rest[2048];
    snprintf(rest, sizeof(rest),
             "  - name: gx\n    kind: gemini\n    auth: x-goog-api-key\n"
             "    base_url: http://127.1:%d\n    probe: {enabled: false}\n"
             "    accounts:\n      - {name: gx-1, credential: env:ROTA_IT_GM1}\n"
             "      - {name: gx-2, credential: env:ROTA_IT_GM2}\n"
             "routes:\n"
             "  - name: h1\n    models: [h1-model]\n    tiers:\n"
             "      - {provider: gm, strategy: round-robin, model: gem-up}\n"
             "  - name: viacurl\n    models: [curl-model]\n    tiers:\n"
             "      - {provider: gx, strategy: round-robin, model: gem-up}\n",
             pool_it.mock_port);
    pool_rotad_start(t, "ROTA_IT_", accounts, 2, rest);
    pool_worker_start(t, "--attempts", "3", NULL);
}

static void run(const char *tag, const char *model)
{
    struct it t;
    up(&t, tag);
    /* the first call's first event is larger than a translated stream holds (4 MiB) */
    mock_fault("match=gm&kind=drip&ms=1&chunks=1&pad=5000000&count=1");
    char body[256], out[65536];
    snprintf(body, sizeof(body),
             "-i -N -d '{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\","
             "\"content\":\"hi\"}]}'",
             model);
    pool(out, sizeof(out), "%s %s", body, at("/v1/chat/completions"));
    json_t *s = mock_stats();
    int64_t calls = calls_of(s, "gm-1", "200") + calls_of(s, "gm-2", "200");
    json_decref(s);
    print_message("%s: %lld upstream calls; client saw: %.600s\n", model, (long long)calls,
                  strstr(out, "\r\n\r\n") ? strstr(out, "\r\n\r\n") + 4 : out);
    assert_int_equal(calls, 2);                  /* retried on the other account */
    assert_non_null(strstr(out, "data: [DONE]")); /* and that one's stream passed on */
    assert_null(strstr(out, "\"error\""));
    it_cleanup(&t);
}

static void test_retry_h1(void **state)
{
    (void)state;
    run("rxl-h1", "h1-model");
}

static void test_retry_curl(void **state)
{
    (void)state;
    run("rxl-curl", "curl-model");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_retry_h1, pool_teardown),
        cmocka_unit_test_teardown(test_retry_curl, pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
