/* test_pool_hostile: the dispatch pool against clients that misbehave, end to end: a
 * real rota-worker (with rotad and rota-mockprovider behind it, pool_it.h) driven by the
 * test's own sockets and the curl CLI. Malformed request lines, bad Content-Length,
 * oversized and too many headers, bodies that are not JSON (each refused with its status,
 * in the endpoint's error shape, nothing sent upstream), pipelined requests answered in
 * order, a client sending a byte a second (408), 10,000 idle keep-alive connections on
 * one worker; after each the worker still serves. (A client leaving mid-stream is
 * test_pool's; the front's own limits against rota-front-echo are test_front's.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "front_it.h"
#include "pool_it.h"

#define IDLE 10000

static int group_setup(void **state)
{
    return pool_setup(false);
}

/* "req" on a new connection to the worker gets "status", an error body in JSON, and the
 * connection closed. Returns the body's "error" member's "type" (static). */
static const char *refused(const char *req, int status)
{
    static char type[64];
    struct reader r = {.fd = dial(pool_it.worker_port)};
    send_str(r.fd, req);
    struct resp p;
    if (!read_resp(&r, &p) || p.status != status)
        fail_msg("%.60s...: status %d, wanted %d", req, p.status, status);
    json_t *v = json_loads(p.body, 0, NULL);
    if (!json_is_object(json_object_get(v, "error")))
        fail_msg("%.60s...: not a JSON error: %s", req, p.body);
    const char *ty = json_string_value(json_object_get(json_object_get(v, "error"), "type"));
    snprintf(type, sizeof(type), "%s", ty ? ty : "");
    json_decref(v);
    if (status != 400 || strncmp(req, "POST /v1", 8) != 0) { /* a refusal by the front */
        assert_non_null(strcasestr(p.head, "connection: close"));
        assert_true(closed_by_peer(r.fd));
    }
    close(r.fd);
    return type;
}

static void test_hostile_requests(void **state)
{
    struct it t;
    pool_faults_up(&t, "hostile-req");
    /* request lines and framing the parser refuses */
    refused("GARBAGE\r\n\r\n", 400);
    refused("GET / FOO/1.1\r\n\r\n", 400);
    refused("G@T /v1/models HTTP/1.1\r\n\r\n", 400);
    refused("GET /v1/models HTTP/1.1 trailing\r\n\r\n", 400);
    refused("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    refused("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
    refused("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6"
            "\r\n\r\nhello",
            400);
    refused("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999999999999"
            "\r\n\r\n",
            400);
    /* oversized and too many headers */
    static char big[32768];
    snprintf(big, sizeof(big), "GET /v1/models HTTP/1.1\r\nX-Big: %020000d\r\n\r\n", 0);
    refused(big, 431);
    strcpy(big, "GET /v1/models HTTP/1.1\r\n");
    for (int i = 0; i < 101; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "X-H%d: v\r\n", i);
    strcat(big, "\r\n");
    refused(big, 431);
    /* bodies that are not JSON objects: 400 in the endpoint's own shape */
    static const char *const bodies[] = {"{not json", "[1,2]", "\"text\"", "{\"model\":",
                                         "{\"model\":\"chat-model\",\"model\":\"x\"}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req),
                 "POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 strlen(bodies[i]), bodies[i]);
        assert_string_equal(refused(req, 400), "invalid_request_error");
    }
    assert_string_equal(
        refused("POST /v1/messages HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400),
        "invalid_request_error");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out), "-i -d 'abc' %s", at("/v1/messages")), 0);
    assert_non_null(strstr(out, "{\"type\":\"error\",\"error\":{")); /* Anthropic's */
    assert_int_equal(
        pool(out, sizeof(out), "-i -d 'abc' %s", at("/v1beta/models/x:generateContent")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    assert_non_null(strstr(out, "\"status\":\"INVALID_ARGUMENT\"")); /* Gemini's */
    /* none of it reached an upstream, and the worker serves on */
    assert_int_equal(table(&t, "oa-1", "done") + table(&t, "oa-2", "done") +
                         table(&t, "ob-1", "done") + table(&t, "an-1", "done"),
                     0);
    healthy();
    it_cleanup(&t);
}

/* Three requests in one write, to two routes, the first slow upstream: answered in the
 * order asked, each its own. */
static void test_hostile_pipelined(void **state)
{
    struct it t;
    pool_faults_up(&t, "hostile-pipe");
    mock_fault("match=oa-&kind=latency&ms=500&count=1");
    static const char body1[] = "{\"model\":\"chat-model\",\"messages\":[]}",
                      body2[] = "{\"model\":\"claude-model\",\"max_tokens\":5,\"messages\":[]}";
    char req[2048];
    snprintf(req, sizeof(req),
             "POST /v1/chat/completions HTTP/1.1\r\nX-Request-Id: pipe-1\r\n"
             "Content-Length: %zu\r\n\r\n%s"
             "POST /v1/messages HTTP/1.1\r\nX-Request-Id: pipe-2\r\n"
             "Content-Length: %zu\r\n\r\n%s"
             "GET /v1/models HTTP/1.1\r\nX-Request-Id: pipe-3\r\n\r\n",
             strlen(body1), body1, strlen(body2), body2);
    struct reader r = {.fd = dial(pool_it.worker_port)};
    send_str(r.fd, req);
    static const char *const ids[] = {"pipe-1", "pipe-2", "pipe-3"};
    static const char *const has[] = {"\"model\":\"gpt-a\"", "\"model\":\"claude-up\"",
                                      "\"id\":\"chat-model\""};
    for (int i = 0; i < 3; i++) {
        struct resp p;
        char id[64];
        assert_true(read_resp(&r, &p));
        assert_int_equal(p.status, 200);
        assert_true(resp_header(&p, "x-request-id", id, sizeof(id)));
        assert_string_equal(id, ids[i]);
        if (!strstr(p.body, has[i]))
            fail_msg("answer %d has no %s: %s", i + 1, has[i], p.body);
    }
    close(r.fd);
    it_cleanup(&t);
}

/* A client sending its head a byte a second: 408 once the header timeout (--header-ms,
 * 2 s here) has passed since the first byte, and the connection closed. */
static void test_hostile_slow_client(void **state)
{
    struct it t;
    pool_it.worker_extra[0] = "--header-ms";
    pool_it.worker_extra[1] = "2000";
    pool_faults_up(&t, "hostile-slow");
    struct reader r = {.fd = dial(pool_it.worker_port)};
    struct timeval tv = {30, 0};
    setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const char *req = "GET /v1/models HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    uint64_t t0 = now_ms();
    int sent = 0;
    while (req[sent]) { /* "sent": the bytes sent */
        if (send(r.fd, req + sent, 1, MSG_NOSIGNAL) != 1)
            break;
        sent++;
        struct pollfd pf = {.fd = r.fd, .events = POLLIN};
        if (poll(&pf, 1, 1000) == 1)
            break; /* an answer */
    }
    struct resp p;
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 408);
    uint64_t took = now_ms() - t0;
    if (took < 1900 || sent < 2) /* not before the timeout: bounded below, never above */
        fail_msg("408 after %llu ms and %d bytes", (unsigned long long)took, sent);
    assert_true(closed_by_peer(r.fd));
    close(r.fd);
    healthy();
    it_cleanup(&t);
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* 10,000 idle keep-alive connections on one worker (one thread): all accepted, a request
 * among them answered, and the worker's memory per connection printed (asserted only
 * under a generous 100 KiB). */
static void test_hostile_idle_10k(void **state)
{
    if (!nofile_allows(IDLE + 500)) {
        printf("skipped: the hard RLIMIT_NOFILE is below %d; %d idle connections need more\n",
               IDLE + 500, IDLE);
        skip();
    }
    struct it t;
    pool_faults_up(&t, "hostile-idle");
    healthy(); /* the first request's buffers and connections are part of the baseline */
    long rss0 = rss_kib(pool_it.worker);
    int hold;
    pid_t pid = idle_clients(pool_it.worker_port, IDLE, &hold);
    /* every one accepted: a request on one more connection is answered, after them all */
    struct resp p;
    assert_int_equal(request(pool_it.worker_port, "GET /healthz HTTP/1.1\r\n\r\n", &p), 200);
    char out[16384];
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    long rss1 = rss_kib(pool_it.worker);
    long per = (rss1 - rss0) * 1024 / IDLE;
    printf("rota-worker with %d idle connections: RSS %ld KiB -> %ld KiB, %ld B per "
           "connection\n",
           IDLE, rss0, rss1, per);
    assert_true(per < 100 * 1024);
    close(hold);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    healthy();
    it_cleanup(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_hostile_requests, pool_teardown),
        cmocka_unit_test_teardown(test_hostile_pipelined, pool_teardown),
        cmocka_unit_test_teardown(test_hostile_slow_client, pool_teardown),
        cmocka_unit_test_teardown(test_hostile_idle_10k, pool_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, pool_group_teardown);
}
