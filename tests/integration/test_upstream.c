/* test_upstream: the dispatch pool's outbound HTTP (workers/upstream.h) on a real loop
 * in the test's thread, against a scripted server on 127.0.0.1 (upstream_it.h). Every
 * case runs on both engines, rota's own HTTP/1.1 client (the default for plain HTTP to
 * an address) and libcurl (curl_only), and checks what a caller sees (the status and
 * header block on_head gets, the body on_data takes, on_done's error, no callback after
 * a cancel or the end) and what the server got (the request line, Host,
 * Content-Length, the body from its pieces, the target's key and never the client's
 * credentials). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "upstream_it.h"

/* ---- answers as they should be read ---- */

static void test_upstream_content_length(void **state)
{
    static const struct answer a[] = {{{P("HTTP/1.1 200 OK\r\nContent-Ty"),
                                        PD("pe: application/json\r\nContent-Length: 11\r\n\r\n"
                                           "{\"ok\"",
                                           20),
                                        PD(":true}", 20)},
                                       CLOSE}};
    struct run *r = up_run_new(state, a, 1, 1);
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Type: application/json\r\nContent-Length: 11\r\n",
             BODY("{\"ok\":true}"));
    up_run_free(r);
}

/* Split inside the chunk-size line, between its CR and LF, before a chunk's CRLF, and
 * inside the trailer section; then another answer on the same connection (the chunked
 * one was read to its very end). */
static const struct answer chunked[] = {
    {{P("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1"), PD("a;name=v\r", 20),
      PD("\nabcdefghijklmnopqrstuvwxyz", 20), PD("\r", 20),
      PD("\n5\r\nHELLO\r\n0\r\nX-Trailer: t\r", 20), PD("\n\r", 20), PD("\n", 20)},
     KEEP},
    {{P("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")}, CLOSE}};

static void check_chunked(void **state, const struct run *r)
{
    up_check(&r->calls[0], 0, 200, "Transfer-Encoding: chunked\r\n",
             BODY("abcdefghijklmnopqrstuvwxyzHELLO"));
    up_check(&r->calls[1], 0, 200, "Content-Length: 4\r\n", BODY("next"));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
}

static void test_upstream_chunked(void **state)
{
    struct run *r = up_run_new(state, chunked, 2, 2);
    up_run_go(r);
    check_chunked(state, r);
    up_run_free(r);
}

static void test_upstream_until_close(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst "), PD("second", 20)},
         CLOSE}};
    struct run *r = up_run_new(state, a, 1, 1);
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Type: text/plain\r\n", BODY("first second"));
    up_run_free(r);
}

static void test_upstream_continue(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 100 Continue\r\n\r\n"),
          PD("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 20)},
         CLOSE}};
    struct run *r = up_run_new(state, a, 1, 1);
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Length: 2\r\n", BODY("ok"));
    up_run_free(r);
}

/* A 204 has no body: the connection goes on to the next answer. */
static void test_upstream_no_content(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n")}, KEEP},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes")}, CLOSE}};
    struct run *r = up_run_new(state, a, 2, 2);
    up_run_go(r);
    up_check(&r->calls[0], 0, 204, "X-A: b\r\n", NULL, 0);
    up_check(&r->calls[1], 0, 200, "Content-Length: 3\r\n", BODY("yes"));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
    up_run_free(r);
}

/* Two calls in turn: one connection (rota's client; libcurl's count is its own). */
static void test_upstream_keep_alive(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")}, KEEP},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")}, CLOSE}};
    struct run *r = up_run_new(state, a, 2, 2);
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Length: 5\r\n", BODY("first"));
    up_check(&r->calls[1], 0, 200, "Content-Length: 6\r\n", BODY("second"));
    print_message("keep-alive: %d connection(s)\n", atomic_load(&r->srv.nconn));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
    assert_int_equal(r->srv.req_len[0], r->srv.req_len[1]);
    up_run_free(r);
}

/* The server closes a kept connection right after the first answer: the second call,
 * started later (the close seen first) or from inside on_done (the request goes on the
 * closed connection and must be sent again), succeeds on a new connection. */
static void stale(void **state, enum next next)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")}, CLOSE},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")}, CLOSE}};
    struct run *r = up_run_new(state, a, 2, 2);
    r->next = next;
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Length: 5\r\n", BODY("first"));
    up_check(&r->calls[1], 0, 200, "Content-Length: 6\r\n", BODY("second"));
    assert_int_equal(atomic_load(&r->srv.nconn), 2);
    up_run_free(r);
}

static void test_upstream_stale_later(void **state)
{
    stale(state, NEXT_LATER);
}

static void test_upstream_stale_at_once(void **state)
{
    stale(state, NEXT_IN_DONE);
}

/* An answer that says "Connection: close", or one with bytes after its end: the next
 * call goes on a new connection (the server would have kept the first). */
static void not_kept(void **state, const char *first)
{
    struct answer a[] = {{{P(first)}, KEEP},
                         {{P("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")}, CLOSE}};
    struct run *r = up_run_new(state, a, 2, 2);
    up_run_go(r);
    assert_int_equal(r->calls[0].err, 0);
    assert_int_equal(r->calls[0].body_len, 2);
    assert_memory_equal(r->calls[0].body, "ok", 2);
    up_check(&r->calls[1], 0, 200, "Content-Length: 6\r\n", BODY("second"));
    print_message("%d connection(s)\n", atomic_load(&r->srv.nconn));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 2);
    up_run_free(r);
}

static void test_upstream_answer_says_close(void **state)
{
    not_kept(state, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
}

static void test_upstream_bytes_after_answer(void **state)
{
    not_kept(state, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK");
}

/* Bytes that come after an answer in a later read (the answer ended exactly where a
 * receive did: an upstream whose Content-Length was short): the next call, started from
 * on_done at once, must not take them for its answer. */
static void test_upstream_stray_after_answer(void **state)
{
    static char first[16384 + 1];
    static const char stray[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged";
    const char *h = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: ";
    size_t hl = strlen(h) + 9; /* "NNNNN\r\n\r\n" */
    snprintf(first, sizeof(first), "%s%05zu\r\n\r\n", h, sizeof(first) - 1 - hl);
    memset(first + hl, 'z', sizeof(first) - 1 - hl);
    first[sizeof(first) - 1] = 0;
    struct answer a[] = {{{P(first), PD(stray, 50)}, KEEP},
                         {{P("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")}, CLOSE}};
    struct run *r = up_run_new(state, a, 2, 2);
    r->next = NEXT_LATER;
    up_run_go(r);
    assert_int_equal(r->calls[0].status, 429);
    assert_int_equal(r->calls[0].body_len, sizeof(first) - 1 - hl);
    if (*state == &CURL) { /* libcurl (7.88) may reuse it: the stray bytes the answer */
        print_message("libcurl: second call's body %.6s on %d connection(s)\n",
                      r->calls[1].body, atomic_load(&r->srv.nconn));
        assert_int_equal(r->calls[1].status, 200);
        assert_int_equal(r->calls[1].body_len, 6);
    } else {
        up_check(&r->calls[1], 0, 200, "Content-Length: 6\r\n", BODY("second"));
        assert_int_equal(atomic_load(&r->srv.nconn), 2);
    }
    up_run_free(r);
}

/* Both framings at once: Transfer-Encoding is read, and the connection is not kept. */
static void test_upstream_length_and_chunked(void **state)
{
    not_kept(state, "HTTP/1.1 200 OK\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n2\r\nok\r\n0\r\n\r\n");
}

/* A head whose lines end with a bare LF (RFC 9112 2.2 lets a client take them). */
static void test_upstream_bare_lf_head(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok")}, CLOSE}};
    struct run *r = up_run_new(state, a, 1, 1);
    up_run_go(r);
    assert_int_equal(r->calls[0].err, 0);
    assert_int_equal(r->calls[0].status, 200);
    assert_int_equal(r->calls[0].body_len, 2);
    assert_memory_equal(r->calls[0].body, "ok", 2);
    up_run_free(r);
}

/* ---- answers that fail ---- */

static void test_upstream_closed_mid_body(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")}, CLOSE}};
    struct run *r = up_run_new(state, a, 1, 1);
    up_run_go(r);
    up_check(&r->calls[0], -EPIPE, 200, "Content-Length: 100\r\n", BODY("0123456789"));
    up_run_free(r);
}

static void test_upstream_refused(void **state)
{
    struct run *r = up_run_new(state, NULL, 0, 1);
    up_run_go(r);
    up_check(&r->calls[0], -ECONNREFUSED, 0, NULL, NULL, 0);
    up_run_free(r);
}

static void test_upstream_silent(void **state)
{
    static const struct answer a[] = {{{P(NULL)}, HOLD}};
    struct run *r = up_run_new(state, a, 1, 1);
    r->q.first_byte_ms = 300;
    up_run_go(r);
    up_check(&r->calls[0], -ETIMEDOUT, 0, NULL, NULL, 0);
    assert_int_equal(r->srv.held_eof, 1); /* the connection was closed */
    up_run_free(r);
}

static void test_upstream_idle(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")}, HOLD}};
    struct run *r = up_run_new(state, a, 1, 1);
    r->q.idle_ms = 300;
    up_run_go(r);
    up_check(&r->calls[0], -ETIMEDOUT, 200, "Content-Length: 100\r\n", BODY("0123456789"));
    assert_int_equal(r->srv.held_eof, 1);
    up_run_free(r);
}

/* The body trickles in, each piece within the idle timeout, past the total one. */
static void test_upstream_total(void **state)
{
    static const char d[] = "0123456789";
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"), PD(d, 100), PD(d, 100),
          PD(d, 100), PD(d, 100), PD(d, 100), PD(d, 100), PD(d, 100)},
         HOLD}};
    struct run *r = up_run_new(state, a, 1, 1);
    r->q.total_ms = 300;
    up_run_go(r);
    const struct call *k = &r->calls[0];
    assert_int_equal(k->late, 0);
    assert_int_equal(k->ndone, 1);
    assert_int_equal(k->err, -ETIMEDOUT);
    assert_int_equal(k->nhead, 1);
    assert_true(k->body_len >= 10 && k->body_len < 100);
    for (size_t i = 0; i < k->body_len; i++)
        assert_int_equal(k->body[i], d[i % 10]);
    assert_int_equal(r->srv.held_eof, 1);
    up_run_free(r);
}

/* A malformed answer ends the call with an error on rota's client: -EIO, with nothing
 * handed on that it could not read ("head_ok": the head was good, only the body is
 * not). libcurl's ending is its own: "curl_err", "curl_head" heads and "curl_body" body
 * bytes. */
static void malformed(void **state, const char *answer, bool head_ok, int curl_err,
                      int curl_head, size_t curl_body)
{
    struct answer a[] = {{{P(answer)}, CLOSE}};
    struct run *r = up_run_new(state, a, 1, 1);
    up_run_go(r);
    const struct call *k = &r->calls[0];
    print_message("%s: err %d (%s), %d head(s), %zu body bytes\n",
                  *state == &H1 ? "h1" : "curl", k->err, k->why, k->nhead, k->body_len);
    assert_int_equal(k->late, 0);
    assert_int_equal(k->ndone, 1);
    if (*state == &H1) {
        assert_int_equal(k->err, -EIO);
        assert_int_equal(k->nhead, head_ok);
        assert_int_equal(k->body_len, 0);
    } else {
        assert_int_equal(k->err, curl_err);
        assert_int_equal(k->nhead, curl_head);
        assert_int_equal(k->body_len, curl_body);
    }
    up_run_free(r);
}

static void test_upstream_bad_status(void **state)
{
    malformed(state, "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", false, -EIO, 0, 0);
}

/* libcurl (7.88) takes the last of two Content-Lengths that differ, and the answer as
 * good. */
static void test_upstream_two_lengths(void **state)
{
    malformed(state, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
              false, 0, 1, 3);
}

static void test_upstream_bad_chunk(void **state)
{
    malformed(state,
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
              true, -EPIPE, 1, 0);
}

/* A CR inside a chunk-size line ("1\r0" is not 0x10). */
static void test_upstream_bare_cr_chunk(void **state)
{
    malformed(state,
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r0\r\n0123456789abcdef"
              "\r\n0\r\n\r\n",
              true, -EPIPE, 1, 1);
}

static void test_upstream_head_too_large(void **state)
{
    size_t cap = 80 * 1024, n = 0;
    char *h = malloc(cap);
    n += (size_t)snprintf(h, cap, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    for (int i = 0; n < 70 * 1024; i++) {
        n += (size_t)snprintf(h + n, cap - n, "X-Pad-%d: ", i);
        memset(h + n, 'a', 1000);
        n += 1000;
        n += (size_t)snprintf(h + n, cap - n, "\r\n");
    }
    snprintf(h + n, cap - n, "\r\nok");
    malformed(state, h, false, -EIO, 0, 0);
    free(h);
}

/* ---- the caller pausing and cancelling ---- */

#define BIG (100 * 1000)

/* A Content-Length answer of BIG bytes in three writes. */
static void big_answer(struct answer *a, const char *body, char *head, enum after after)
{
    snprintf(head, 64, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG);
    *a = (struct answer){
        {P(head), {body, 30000, 0}, {body + 30000, 40000, 20}, {body + 70000, BIG - 70000, 20}},
        after};
}

/* Every other piece is paused, the first for longer than the idle timeout (which does
 * not count while paused): the body comes whole, in order, each byte once; and the
 * connection carries the next call. */
static void test_upstream_pause(void **state)
{
    char *body = up_pattern(BIG), head[64];
    struct answer a[2];
    big_answer(a, body, head, KEEP);
    a[1] = (struct answer){{P("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")}, CLOSE};
    struct run *r = up_run_new(state, a, 2, 2);
    r->q.idle_ms = 200;
    r->calls[0].pause = true;
    up_run_go(r);
    char want[64];
    snprintf(want, sizeof(want), "Content-Length: %d\r\n", BIG);
    up_check(&r->calls[0], 0, 200, want, body, BIG);
    up_check(&r->calls[1], 0, 200, "Content-Length: 4\r\n", BODY("next"));
    print_message("%u pauses\n", r->calls[0].npause);
    assert_true(r->calls[0].npause >= 2);
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
    up_run_free(r);
    free(body);
}

/* The same with chunks split at awkward points. */
static void test_upstream_pause_chunked(void **state)
{
    struct run *r = up_run_new(state, chunked, 2, 2);
    r->calls[0].pause = true;
    up_run_go(r);
    check_chunked(state, r);
    assert_true(r->calls[0].npause >= 2);
    up_run_free(r);
}

/* A cancel: no callback after it, though more of the answer was in the same read (two
 * chunks in the first write), and the connection closed (the server sees it end). */
static void cancelled(void **state, int at)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nfirst\r\n6\r\nsecond\r\n"),
          PD("5\r\nthird\r\n", 20), PD("6\r\nfourth\r\n", 20), PD("0\r\n\r\n", 20)},
         HOLD}};
    struct run *r = up_run_new(state, a, 1, 1);
    r->calls[0].cancel_at = at;
    up_run_go(r);
    const struct call *k = &r->calls[0];
    assert_true(k->cancelled);
    assert_int_equal(k->late, 0);
    assert_int_equal(k->ndone, 0);
    assert_int_equal(k->nhead, 1);
    assert_int_equal(k->ndata, at < 0 ? 0 : at);
    assert_int_equal(r->srv.held_eof, 1);
    up_run_free(r);
}

static void test_upstream_cancel_in_head(void **state)
{
    cancelled(state, -1);
}

static void test_upstream_cancel_in_data(void **state)
{
    cancelled(state, 1);
}

static void test_upstream_cancel_later(void **state)
{
    cancelled(state, 3);
}

/* ---- the request as the server got it ---- */

/* The body in "npieces" pieces of "piece" bytes each reaches the server whole, with the
 * head as it should be. */
static void request(void **state, size_t npieces, size_t piece, bool localhost)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")}, CLOSE}};
    size_t len = npieces * piece;
    char *body = up_pattern(len);
    struct iovec *iov = calloc(npieces, sizeof(*iov));
    for (size_t i = 0; i < npieces; i++)
        iov[i] = (struct iovec){body + i * piece, piece};
    struct run *r = up_run_new(state, a, 1, 1);
    r->q.body = NULL;
    r->q.body_len = 0;
    r->q.body_iov = iov;
    r->q.nbody_iov = npieces;
    const char *host = localhost ? "localhost" : "127.0.0.1",
               *path = localhost ? "/v1/chat/completions?alt=sse" : "/v1/chat/completions";
    snprintf(r->url, sizeof(r->url), "http://%s:%d%s", host, r->srv.port, path);
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Length: 2\r\n", BODY("ok"));
    const char *q = r->srv.req[0];
    size_t head = r->srv.head_len[0];
    char v[256], want[128];
    assert_non_null(q);
    snprintf(want, sizeof(want), "POST %s HTTP/1.1\r\n", path);
    assert_memory_equal(q, want, strlen(want));
    snprintf(want, sizeof(want), "%s:%d", host, r->srv.port);
    assert_int_equal(up_header(q, head, "Host", v, sizeof(v)), 1);
    assert_string_equal(v, want);
    assert_int_equal(up_header(q, head, "Content-Length", v, sizeof(v)), 1);
    assert_int_equal(strtoul(v, NULL, 10), len);
    assert_int_equal(r->srv.req_len[0] - head, len);
    assert_memory_equal(q + head, body, len);
    assert_int_equal(up_header(q, head, "Authorization", v, sizeof(v)), 1);
    assert_string_equal(v, "Bearer sk-target-1234");
    assert_int_equal(up_header(q, head, "x-api-key", v, sizeof(v)), 0);
    assert_null(memmem(q, head, "client-secret", 13));
    assert_int_equal(up_header(q, head, "Connection", v, sizeof(v)), 0); /* hop-by-hop */
    assert_int_equal(up_header(q, head, "X-Custom", v, sizeof(v)), 1);
    assert_string_equal(v, "kept");
    assert_int_equal(up_header(q, head, "X-Provider", v, sizeof(v)), 1);
    assert_string_equal(v, "p1");
    assert_int_equal(up_header(q, head, "X-Request-Id", v, sizeof(v)), 1);
    assert_string_equal(v, "rid-1");
    assert_int_equal(up_header(q, head, "Content-Type", v, sizeof(v)), 1);
    assert_string_equal(v, "application/json");
    up_run_free(r);
    free(iov);
    free(body);
}

static void test_upstream_request_pieces(void **state)
{
    request(state, 3, 11, false);
}

static void test_upstream_request_localhost(void **state)
{
    request(state, 3, 11, true);
}

/* A server on ::1 alone, called as localhost: found there once 127.0.0.1 refuses. */
static void test_upstream_localhost_v6(void **state)
{
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    bool v6 = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof(a6)) == 0;
    if (probe >= 0)
        close(probe);
    if (!v6)
        skip(); /* no IPv6 loopback on this host */
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")}, KEEP},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")}, CLOSE}};
    up_listen_v6 = true;
    struct run *r = up_run_new(state, a, 2, 2);
    up_listen_v6 = false;
    snprintf(r->url, sizeof(r->url), "http://localhost:%d/v1/chat/completions", r->srv.port);
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Length: 3\r\n", BODY("one"));
    up_check(&r->calls[1], 0, 200, "Content-Length: 3\r\n", BODY("two"));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
    up_run_free(r);
}

/* The provider's own Accept and User-Agent replace the defaults: one line each. */
static void test_upstream_provider_defaults(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")}, CLOSE}};
    struct run *r = up_run_new(state, a, 1, 1);
    snprintf(r->target.headers, sizeof(r->target.headers),
             "Accept: application/json\r\nUser-Agent: provider-sdk/1\r\n");
    up_run_go(r);
    up_check(&r->calls[0], 0, 200, "Content-Length: 2\r\n", BODY("ok"));
    char v[128];
    assert_int_equal(up_header(r->srv.req[0], r->srv.head_len[0], "Accept", v, sizeof(v)), 1);
    assert_string_equal(v, "application/json");
    assert_int_equal(up_header(r->srv.req[0], r->srv.head_len[0], "User-Agent", v, sizeof(v)),
                     1);
    assert_string_equal(v, "provider-sdk/1");
    up_run_free(r);
}

static void test_upstream_request_many_pieces(void **state)
{
    request(state, 9, 1000, false); /* more pieces than one sendmsg of rota's client takes */
}

static void test_upstream_request_large(void **state)
{
    request(state, 5, 120 * 1000, false); /* read from the pieces as sent, maybe in parts */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_upstream_content_length),
        BOTH(test_upstream_chunked),
        BOTH(test_upstream_until_close),
        BOTH(test_upstream_continue),
        BOTH(test_upstream_no_content),
        BOTH(test_upstream_keep_alive),
        BOTH(test_upstream_stale_later),
        BOTH(test_upstream_stale_at_once),
        BOTH(test_upstream_answer_says_close),
        BOTH(test_upstream_bytes_after_answer),
        BOTH(test_upstream_stray_after_answer),
        BOTH(test_upstream_length_and_chunked),
        BOTH(test_upstream_bare_lf_head),
        BOTH(test_upstream_closed_mid_body),
        BOTH(test_upstream_refused),
        BOTH(test_upstream_silent),
        BOTH(test_upstream_idle),
        BOTH(test_upstream_total),
        BOTH(test_upstream_bad_status),
        BOTH(test_upstream_two_lengths),
        BOTH(test_upstream_bad_chunk),
        BOTH(test_upstream_bare_cr_chunk),
        BOTH(test_upstream_head_too_large),
        BOTH(test_upstream_pause),
        BOTH(test_upstream_pause_chunked),
        BOTH(test_upstream_cancel_in_head),
        BOTH(test_upstream_cancel_in_data),
        BOTH(test_upstream_cancel_later),
        BOTH(test_upstream_request_pieces),
        BOTH(test_upstream_request_localhost),
        BOTH(test_upstream_localhost_v6),
        BOTH(test_upstream_provider_defaults),
        BOTH(test_upstream_request_many_pieces),
        BOTH(test_upstream_request_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
