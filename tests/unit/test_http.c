/* test_http: one HTTP/1.1 request from bytes (workers/http.h), fed whole and a byte at
 * a time: request line, headers, bodies (chunked too), pipelining, and every limit and
 * malformation a client may send, with the status it gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

static const struct rota_http_limits lim = {.max_head = 1024, .max_headers = 8, .max_body = 64};

static struct rota_http *h;
static int heads; /* times ROTA_HTTP_HEAD was seen */

static int setup(void **state)
{
    h = calloc(1, rota_http_size(&lim));
    rota_http_begin(h, &lim);
    heads = 0;
    return 0;
}

static int teardown(void **state)
{
    rota_http_end(h);
    free(h);
    return 0;
}

/* Feed "s" in pieces of "step" bytes until the request is done or refused; returns
 * the bytes taken. */
static size_t feed(const char *s, size_t len, size_t step)
{
    size_t used = 0;
    while (used < len) {
        size_t n = len - used < step ? len - used : step;
        size_t k = rota_http_feed(h, s + used, n);
        used += k;
        if (h->state == ROTA_HTTP_HEAD)
            heads++;
        if (h->state == ROTA_HTTP_DONE || h->state == ROTA_HTTP_ERROR)
            break;
        assert_true(k == n || h->state == ROTA_HTTP_HEAD);
    }
    return used;
}

static void expect_status(const char *req, int status)
{
    for (size_t step = 1; step <= strlen(req); step = step * 3 + 1) {
        rota_http_begin(h, &lim);
        feed(req, strlen(req), step);
        if (h->state != ROTA_HTTP_ERROR || h->status != status)
            fail_msg("step %zu: %s -> state %d status %d, wanted %d", step, req, h->state,
                     h->status, status);
        assert_non_null(h->why);
    }
}

static void test_http_get(void **state)
{
    const char req[] = "GET /v1/models?limit=2&x=y HTTP/1.1\r\nHost: a\r\n"
                       "X-Empty:\r\nAuthorization: Bearer k\r\n\r\n";
    for (size_t step = 1; step <= sizeof(req); step++) {
        rota_http_begin(h, &lim);
        assert_int_equal(feed(req, sizeof(req) - 1, step), sizeof(req) - 1);
        assert_int_equal(h->state, ROTA_HTTP_DONE);
        assert_string_equal(h->method, "GET");
        assert_string_equal(h->path, "/v1/models");
        assert_string_equal(h->query, "limit=2&x=y");
        assert_int_equal(h->nheaders, 3);
        assert_string_equal(rota_http_get(h->headers, h->nheaders, "HOST"), "a");
        assert_string_equal(rota_http_get(h->headers, h->nheaders, "x-empty"), "");
        assert_string_equal(rota_http_get(h->headers, h->nheaders, "authorization"),
                            "Bearer k");
        assert_null(rota_http_get(h->headers, h->nheaders, "cookie"));
        assert_true(h->keep_alive);
        assert_false(h->has_body);
        assert_int_equal(h->body_len, 0);
        assert_string_equal(h->body, "");
    }
}

static void test_http_body_and_pipelining(void **state)
{
    const char two[] = "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                       "GET /next HTTP/1.1\r\n\r\n";
    size_t first = strstr(two, "GET") - two;
    assert_int_equal(feed(two, sizeof(two) - 1, 4096), first);
    assert_int_equal(h->state, ROTA_HTTP_DONE);
    assert_int_equal(heads, 1);
    assert_int_equal(h->body_len, 5);
    assert_string_equal(h->body, "hello");
    rota_http_begin(h, &lim); /* the next request starts where the first ended */
    assert_int_equal(feed(two + first, sizeof(two) - 1 - first, 4096), sizeof(two) - 1 - first);
    assert_int_equal(h->state, ROTA_HTTP_DONE);
    assert_string_equal(h->path, "/next");
}

static void test_http_chunked(void **state)
{
    const char req[] = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: t\r\n\r\n";
    for (size_t step = 1; step < sizeof(req); step += 7) {
        rota_http_begin(h, &lim);
        assert_int_equal(feed(req, sizeof(req) - 1, step), sizeof(req) - 1);
        assert_int_equal(h->state, ROTA_HTTP_DONE);
        assert_string_equal(h->body, "hello world");
        assert_int_equal(h->nheaders, 1); /* the trailer is not a header */
    }
}

static void test_http_expect(void **state)
{
    const char req[] = "POST /e HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
    feed(req, sizeof(req) - 1, 4096);
    assert_int_equal(h->state, ROTA_HTTP_MORE);
    assert_int_equal(heads, 1);
    assert_true(h->expect_continue);
    assert_int_equal(rota_http_feed(h, "ok", 2), 2);
    assert_int_equal(h->state, ROTA_HTTP_DONE);
    expect_status("POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n",
                  413);
    expect_status("POST /e HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\n",
                  417);
}

static void test_http_http10(void **state)
{
    const char a[] = "GET / HTTP/1.0\r\n\r\n";
    feed(a, sizeof(a) - 1, 4096);
    assert_int_equal(h->state, ROTA_HTTP_DONE);
    assert_false(h->keep_alive);
    assert_int_equal(h->http_minor, 0);
    rota_http_begin(h, &lim);
    const char b[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    feed(b, sizeof(b) - 1, 4096);
    assert_true(h->keep_alive);
    rota_http_begin(h, &lim);
    const char c[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    feed(c, sizeof(c) - 1, 4096);
    assert_false(h->keep_alive);
}

static void test_http_malformed(void **state)
{
    expect_status("GARBAGE\r\n\r\n", 400);
    expect_status("GET / FOO/1.1\r\n\r\n", 400);
    expect_status("G@T / HTTP/1.1\r\n\r\n", 400);
    expect_status("GET / HTTP/2.0\r\n\r\n", 505);
    expect_status("CONNECT a:443 HTTP/1.1\r\n\r\n", 405);
    expect_status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    expect_status("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
    expect_status("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
    expect_status("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                  400);
    expect_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400);
    /* RFC 9112 5.1: whitespace between a field name and its colon is refused, lest a
     * proxy in front and the pool frame the message differently. */
    expect_status("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400);
}

static void test_http_limits(void **state)
{
    char big[2048];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: %01100d\r\n\r\n", 0);
    expect_status(big, 431);
    snprintf(big, sizeof(big), "GET /%01100d HTTP/1.1\r\n\r\n", 0);
    expect_status(big, 414);
    char many[1024] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 9; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "H%d: v\r\n", i);
    strcat(many, "\r\n");
    expect_status(many, 431);
    expect_status("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413);
    char chunks[512] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; i++)
        strcat(chunks, "10\r\n0123456789abcdef\r\n"); /* 80 bytes in all, past 64 */
    strcat(chunks, "0\r\n\r\n");
    expect_status(chunks, 413);
    /* at the limits exactly: accepted */
    rota_http_begin(h, &lim);
    char body[200] = "POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n";
    memset(body + strlen(body), 'x', 64);
    feed(body, strlen(body), 4096);
    assert_int_equal(h->state, ROTA_HTTP_DONE);
    assert_int_equal(h->body_len, 64);
}

static void test_http_absolute_form(void **state)
{
    const char req[] = "GET http://example.com/v1/models?a=b HTTP/1.1\r\n\r\n";
    feed(req, sizeof(req) - 1, 4096);
    assert_int_equal(h->state, ROTA_HTTP_DONE);
    assert_string_equal(h->path, "/v1/models");
    assert_string_equal(h->query, "a=b");
    char *spare = rota_http_spare(h, 64);
    assert_non_null(spare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_body_and_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_expect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_absolute_form, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
