/* test_pool_faults: the dispatch pool against failing upstreams, end to end: a real
 * rota-worker between the curl CLI and rota-mockprovider (plain, and serving HTTPS with a
 * certificate the test makes), with a real rotad keeping the table (pool_it.h). Each case
 * is asserted on what the client receives and on what reached the table (rotactl --json
 * show: failures, rate limits, cooldowns): a port refusing connections, an upstream
 * silent before its head (the first-byte timeout) and mid-stream (the idle timeout),
 * 429 with and without a retry hint, 529, 500, malformed SSE, TLS trusted through
 * --ca-file and not trusted. (test_pool has 503, a stream cut mid-way and a client
 * leaving; test_pool_hostile the clients that misbehave.) */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pool_it.h"

static int group_setup(void **state)
{
    return pool_setup(true);
}

/* The first tier's port refuses connections: the next tier answers, the refusing account
 * is charged a failure. */
static void test_faults_refused(void **state)
{
    struct it t;
    pool_faults_up(&t, "faults-refused");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"model\":\"refuse-model\",\"messages\":[]}' %s",
                          at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"model\":\"gpt-b\""));
    WAIT_FOR(logged("\"account\":\"gone-1\"", NULL));
    assert_true(logged("\"account\":\"gone-1\",\"status\":0", "\"error\":\"connect\"",
                       "\"account\":\"ob-1\",\"status\":200", "\"status\":200", NULL));
    assert_int_equal(table(&t, "gone-1", "failures"), 1);
    assert_int_equal(table(&t, "gone-1", "done"), 1);
    assert_int_equal(table(&t, "ob-1", "failures"), 0);
    assert_int_equal(table(&t, "ob-1", "done"), 1);
    it_cleanup(&t);
}

/* An upstream that accepts the call and says nothing: the first-byte timeout ends the
 * attempt, another account answers, the silent one is charged a timeout (a failure). */
static void test_faults_silent_before_head(void **state)
{
    struct it t;
    pool_it.worker_extra[0] = "--first-byte-ms";
    pool_it.worker_extra[1] = "700";
    pool_faults_up(&t, "faults-hang");
    mock_fault("match=oa-&kind=hang&count=1");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    WAIT_FOR(logged("\"error\":\"timeout\"", NULL));
    assert_true(logged("\"status\":0", "\"error\":\"timeout\"", "\"status\":200", NULL));
    int64_t f1 = table(&t, "oa-1", "failures"), f2 = table(&t, "oa-2", "failures");
    assert_int_equal(f1 + f2, 1);
    assert_int_equal(table(&t, f1 ? "oa-1" : "oa-2", "done"), 1);
    /* the pool hung up on the silent call: the mock saw its client go */
    WAIT_FOR(mock_calls(false, f1 ? "oa-1" : "oa-2", "dropped") == 1);
    assert_int_equal(mock_calls(false, f1 ? "oa-1" : "oa-2", "dropped"), 1);
    it_cleanup(&t);
}

/* A stream that goes silent after its first events: the idle timeout ends it with the
 * endpoint's error event (never a clean end), and the account is charged a failure. */
static void test_faults_silent_mid_stream(void **state)
{
    struct it t;
    pool_it.worker_extra[0] = "--idle-ms";
    pool_it.worker_extra[1] = "700";
    pool_faults_up(&t, "faults-idle");
    static char out[32768];
    mock_fault("match=oa-&kind=hold&after=2&count=1");
    assert_int_equal(pool(out, sizeof(out), "%s %s", chat_stream, at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "ok0"));
    assert_null(strstr(out, "ok1"));
    assert_non_null(strstr(out, "data: {\"error\":{"));
    assert_non_null(strstr(out, "no data from upstream for 700 ms"));
    assert_null(strstr(out, "[DONE]"));
    int64_t f1 = table(&t, "oa-1", "failures"), f2 = table(&t, "oa-2", "failures");
    assert_int_equal(f1 + f2, 1); /* and no retry after the first byte: */
    assert_int_equal(table(&t, "ob-1", "done"), 0);
    mock_ctl(false, "POST", "/_mock/clear", out, sizeof(out));
    /* Anthropic's shape */
    mock_fault("match=an-&kind=hold&after=3&count=1");
    assert_int_equal(pool(out, sizeof(out), "%s %s", claude_stream, at("/v1/messages")), 0);
    assert_non_null(strstr(out, "event: message_start"));
    assert_non_null(strstr(out, "event: error\ndata: {\"type\":\"error\""));
    assert_null(strstr(out, "message_stop"));
    assert_int_equal(table(&t, "an-1", "failures") + table(&t, "an-2", "failures"), 1);
    WAIT_FOR(logged("stream failed midway", "\"path\":\"/v1/messages\"", NULL));
    assert_true(
        logged("\"status\":502", "stream failed midway", "\"path\":\"/v1/messages\"", NULL));
    mock_ctl(false, "POST", "/_mock/clear", out, sizeof(out));
    it_cleanup(&t);
}

/* A 429 with Retry-After: retried invisibly, and the account cools down for as long as
 * it was told; every account of a route so told: the client's 429 carries that wait. */
static void test_faults_429_with_hint(void **state)
{
    struct it t;
    pool_faults_up(&t, "faults-429");
    char out[16384];
    mock_fault("match=oa-&kind=429&count=1&retry_after=30");
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    const char *hit = mock_calls(false, "oa-1", "429") ? "oa-1" : "oa-2";
    assert_int_equal(mock_calls(false, hit, "429"), 1);
    assert_int_equal(table(&t, hit, "rate_limited"), 1);
    assert_int_equal(table(&t, hit, "failures"), 0);
    int64_t cool = table(&t, hit, "cooldown_left_ms");
    if (cool <= 20000 || cool > 30000)
        fail_msg("%s cools down for %lld ms after a 429 with retry-after 30", hit,
                 (long long)cool);
    /* both Anthropic accounts told to wait 40 s: nothing left to try */
    mock_fault("match=an-&kind=429&count=2&retry_after=40");
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", claude, at("/v1/messages")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 429"));
    assert_non_null(strstr(out, "\"type\":\"error\"")); /* Anthropic's shape */
    const char *ra = strcasestr(out, "retry-after: ");
    assert_non_null(ra);
    long s = strtol(ra + 13, NULL, 10);
    if (s < 30 || s > 40)
        fail_msg("Retry-After %ld after every account was told 40 s", s);
    assert_int_equal(table(&t, "an-1", "rate_limited") + table(&t, "an-2", "rate_limited"), 2);
    it_cleanup(&t);
}

/* A 429 with no retry hint at all: the account cools down for rota's own backoff (the
 * provider's cooldown base, 1 s, doubled for the first 429 in a row), not longer. */
static void test_faults_429_without_hint(void **state)
{
    struct it t;
    pool_faults_up(&t, "faults-429-bare");
    char out[16384];
    mock_fault("match=an-&kind=429&count=2&bare=1");
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", claude, at("/v1/messages")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 429"));
    assert_null(strstr(out, "retry-after: 40"));
    const char *ra = strcasestr(out, "retry-after: ");
    assert_non_null(ra);
    long s = strtol(ra + 13, NULL, 10);
    if (s > 2)
        fail_msg("Retry-After %ld after 429s without a hint (the backoff is 2 s)", s);
    for (int i = 1; i <= 2; i++) {
        char name[8];
        snprintf(name, sizeof(name), "an-%d", i);
        assert_int_equal(mock_calls(false, name, "429"), 1);
        assert_int_equal(table(&t, name, "rate_limited"), 1);
        assert_true(table(&t, name, "cooldown_left_ms") <= 2000);
    }
    /* once the backoff has passed, the route answers again */
    int status = 0;
    for (int i = 0; i < 40 && status != 200; i++) {
        sleep_ms(100);
        assert_int_equal(pool(out, sizeof(out), "-o /dev/null -w '%%{http_code}' %s %s", claude,
                              at("/v1/messages")),
                         0);
        status = atoi(out);
    }
    assert_int_equal(status, 200);
    it_cleanup(&t);
}

/* 529 (Anthropic overloaded) and 500: retried on another account, the failing one charged
 * a failure; when every account fails, the last answer is passed on as it came. */
static void test_faults_529_and_500(void **state)
{
    struct it t;
    pool_faults_up(&t, "faults-5xx");
    char out[16384];
    mock_fault("match=an-&kind=5xx&status=529&count=1");
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", claude, at("/v1/messages")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"model\":\"claude-up\""));
    assert_int_equal(table(&t, "an-1", "failures") + table(&t, "an-2", "failures"), 1);
    assert_int_equal(table(&t, "an-1", "rate_limited") + table(&t, "an-2", "rate_limited"), 0);
    mock_fault("match=an-&kind=5xx&status=529&count=2");
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", claude, at("/v1/messages")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 529"));
    assert_non_null(strstr(out, "\"overloaded_error\""));
    assert_int_equal(table(&t, "an-1", "failures") + table(&t, "an-2", "failures"), 3);

    mock_fault("match=oa-&kind=5xx&status=500&count=1");
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    const char *hit = mock_calls(false, "oa-1", "500") ? "oa-1" : "oa-2";
    assert_int_equal(mock_calls(false, hit, "500"), 1);
    assert_int_equal(table(&t, hit, "failures"), 1);
    WAIT_FOR(logged("\"status\":500", NULL));
    assert_true(logged("\"status\":500", "\"status\":200", "\"path\":\"/v1/chat", NULL));
    it_cleanup(&t);
}

/* An event stream that turns malformed (data that is not JSON, a usage of strings, bytes
 * that are not UTF-8, lone CRs, an event never ended) and stops without [DONE]: passed on
 * as it came, then ended by an error event, nothing counted from it, and the worker goes
 * on serving. */
static void test_faults_malformed_sse(void **state)
{
    struct it t;
    pool_faults_up(&t, "faults-sse");
    static char out[32768];
    mock_fault("match=oa-&kind=badsse&count=1");
    assert_int_equal(pool(out, sizeof(out), "%s %s", chat_stream, at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "ok0"));
    assert_non_null(strstr(out, "data: {not json at all\n\n"));
    assert_non_null(strstr(out, ": bytes that are not UTF-8: \xff\xfe\n\n"));
    assert_non_null(strstr(out, "data: line ended by a lone CR\rdata: another\r\r"));
    assert_non_null(strstr(out, "\"content\":\"never ends")); /* the unended event too */
    assert_null(strstr(out, "[DONE]"));
    /* a stream that ends without its closing event is no clean end: an error event, so
     * the client's SDK raises; the account is reported by its status (what a client asks
     * for must not open breakers) */
    assert_non_null(strstr(out, "never ends"));
    assert_non_null(strstr(out, "\n\ndata: {\"error\":"));
    assert_non_null(strstr(out, "without its closing event"));
    const char *hit = mock_calls(false, "oa-1", "200") ? "oa-1" : "oa-2";
    assert_int_equal(table(&t, hit, "done"), 1);
    assert_int_equal(table(&t, hit, "failures"), 0);
    assert_true(table(&t, hit, "tokens") < 1000); /* no nonsense counted */
    WAIT_FOR(logged("\"stream\":true", NULL));
    assert_true(
        logged("\"stream\":true", "\"tokens_in\":0,\"tokens_out\":0", "\"status\":502", NULL));
    healthy();
    it_cleanup(&t);
}

/* An HTTPS upstream whose certificate the worker trusts through --ca-file: answered, over
 * TLS, plain and streamed. */
static void test_faults_tls_trusted(void **state)
{
    struct it t;
    char ca[160];
    snprintf(ca, sizeof(ca), "%s/ca.pem", pool_it.ca_dir);
    pool_it.worker_extra[0] = "--ca-file";
    pool_it.worker_extra[1] = ca;
    pool_it.want_tls = true;
    pool_faults_up(&t, "faults-tls");
    static char out[32768];
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"model\":\"secure-model\",\"messages\":[]}' %s",
                          at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"model\":\"gpt-t\""));
    assert_int_equal(
        pool(out, sizeof(out),
             "-d '{\"model\":\"secure-model\",\"stream\":true,\"messages\":[]}' %s",
             at("/v1/chat/completions")),
        0);
    assert_non_null(strstr(out, "ok2"));
    assert_non_null(strstr(out, "data: [DONE]"));
    assert_int_equal(mock_calls(true, "ts-1", "200"), 2);
    assert_int_equal(mock_calls(false, "ob-1", "200"), 0);
    assert_int_equal(table(&t, "ts-1", "done"), 2);
    assert_int_equal(table(&t, "ts-1", "failures"), 0);
    it_cleanup(&t);
}

/* The same upstream, its CA not trusted (the system's CAs only): the handshake fails, the
 * attempt is reported as a connection failure and the next tier answers; nothing reached
 * the untrusted server. */
static void test_faults_tls_untrusted(void **state)
{
    struct it t;
    pool_it.want_tls = true;
    pool_faults_up(&t, "faults-tls-no");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"model\":\"secure-model\",\"messages\":[]}' %s",
                          at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"model\":\"gpt-b\""));
    assert_int_equal(mock_calls(true, "ts-1", "200"), 0);
    assert_int_equal(table(&t, "ts-1", "failures"), 1);
    assert_int_equal(table(&t, "ob-1", "done"), 1);
    WAIT_FOR(logged("\"account\":\"ts-1\"", NULL));
    assert_true(logged("\"account\":\"ts-1\",\"status\":0", "\"error\":\"connect\"", NULL));
    it_cleanup(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_faults_refused, pool_teardown),
        cmocka_unit_test_teardown(test_faults_silent_before_head, pool_teardown),
        cmocka_unit_test_teardown(test_faults_silent_mid_stream, pool_teardown),
        cmocka_unit_test_teardown(test_faults_429_with_hint, pool_teardown),
        cmocka_unit_test_teardown(test_faults_429_without_hint, pool_teardown),
        cmocka_unit_test_teardown(test_faults_529_and_500, pool_teardown),
        cmocka_unit_test_teardown(test_faults_malformed_sse, pool_teardown),
        cmocka_unit_test_teardown(test_faults_tls_trusted, pool_teardown),
        cmocka_unit_test_teardown(test_faults_tls_untrusted, pool_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, pool_group_teardown);
}
