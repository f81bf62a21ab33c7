/* test_upstream: the dispatch pool's outbound HTTP (workers/upstream.h) on a real loop
 * in the test's thread, against a scripted server on 127.0.0.1: a thread of the test's
 * that reads each request whole and answers with exact bytes, in pieces with pauses
 * between them. Every case runs on both engines, rota's own HTTP/1.1 client (the default
 * for plain HTTP to an address) and libcurl (curl_only), and checks what a caller sees
 * (the status and header block on_head gets, the body on_data takes, on_done's error,
 * no callback after a cancel or the end) and what the server got (the request line,
 * Host, Content-Length, the body from its pieces, the target's key and never the
 * client's credentials). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "upstream.h"

#define MAXANS   2
#define MAXPIECE 8
#define WAIT_MS  8000 /* the server's wait for anything; the loop's guard is longer */

#define OWNER(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

struct engine {
    bool curl_only;
};
static const struct engine H1 = {false}, CURL = {true};

/* ---- the scripted server ---- */

struct piece {
    const char *p;
    size_t n;          /* 0: strlen(p) */
    unsigned delay_ms; /* before it is written */
};
#define P(s)        {s, 0, 0}
#define PD(s, ms)   {s, 0, ms} /* written "ms" after the piece before it */
enum after { KEEP, CLOSE, HOLD }; /* after the answer: the next request, close, wait */
struct answer {
    struct piece piece[MAXPIECE];
    enum after after;
};

struct server {
    int lfd, stopfd, port;
    const struct answer *ans;
    size_t nans;
    pthread_t th;
    atomic_int nconn;    /* connections accepted */
    atomic_bool finished; /* every answer given (or the server gave up) */
    char *req[MAXANS];   /* each request as received: head and body */
    size_t req_len[MAXANS], head_len[MAXANS];
    int held_eof;        /* HOLDs the client ended by closing (read after the join) */
    const char *fail;    /* what the server gave up on (read after the join) */
};

/* Wait until "fd" is readable: 1, or 0 on a stop or after WAIT_MS. */
static int wait_in(struct server *s, int fd)
{
    struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stopfd, POLLIN, 0}};
    int n = poll(p, 2, WAIT_MS);
    return n > 0 && !(p[1].revents & POLLIN) && p[0].revents ? 1 : 0;
}

/* Read one request (head, then Content-Length bytes): 1, 0 if the client closed before
 * a byte of it, -1 otherwise. */
static int read_request(struct server *s, int fd, size_t r)
{
    size_t cap = 4096, len = 0, head = 0, want = SIZE_MAX;
    char *b = malloc(cap);
    while (b && len < want) {
        if (len == cap && !(b = realloc(b, cap *= 2)))
            break;
        if (!wait_in(s, fd))
            break;
        ssize_t k = read(fd, b + len, cap - len);
        if (k <= 0) {
            if (len == 0) {
                free(b);
                return 0;
            }
            break;
        }
        len += (size_t)k;
        char *e = head ? NULL : memmem(b, len, "\r\n\r\n", 4);
        if (e) {
            head = (size_t)(e + 4 - b);
            const char *cl = memmem(b, head, "\r\nContent-Length:", 17);
            want = head + (cl ? strtoul(cl + 17, NULL, 10) : 0);
        }
    }
    if (!b || len != want) {
        free(b);
        return -1;
    }
    s->req[r] = b;
    s->req_len[r] = len;
    s->head_len[r] = head;
    return 1;
}

static void *serve(void *arg)
{
    struct server *s = arg;
    int fd = -1, one = 1;
    for (size_t r = 0; r < s->nans;) {
        if (fd < 0) {
            if (!wait_in(s, s->lfd) || (fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
                s->fail = "no connection came";
                break;
            }
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            atomic_fetch_add(&s->nconn, 1);
        }
        int rc = read_request(s, fd, r);
        if (rc <= 0) { /* a connection the client let go before asking: the next */
            close(fd);
            fd = -1;
            if (rc < 0) {
                s->fail = "a request did not come whole";
                break;
            }
            continue;
        }
        const struct answer *a = &s->ans[r++];
        for (size_t i = 0; i < MAXPIECE && a->piece[i].p; i++) {
            const struct piece *pc = &a->piece[i];
            if (pc->delay_ms)
                usleep(pc->delay_ms * 1000);
            (void)!send(fd, pc->p, pc->n ? pc->n : strlen(pc->p), MSG_NOSIGNAL);
        }
        if (a->after == KEEP)
            continue;
        if (a->after == HOLD) { /* until the client closes */
            char sink[4096];
            ssize_t k = 1;
            while (wait_in(s, fd) && (k = read(fd, sink, sizeof(sink))) > 0)
                ;
            s->held_eof += k <= 0;
        }
        close(fd);
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    atomic_store(&s->finished, true);
    return NULL;
}

/* Listen on 127.0.0.1 and serve "ans" (none: a port bound but not listening, which
 * refuses connections). */
static void server_start(struct server *s, const struct answer *ans, size_t nans)
{
    memset(s, 0, sizeof(*s));
    s->ans = ans;
    s->nans = nans;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    s->stopfd = eventfd(0, EFD_CLOEXEC);
    assert_true(s->stopfd >= 0);
    if (!nans) {
        atomic_store(&s->finished, true);
        return;
    }
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    uint64_t one = 1;
    (void)!write(s->stopfd, &one, sizeof(one));
    if (s->nans)
        pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stopfd);
}

/* ---- the client side: calls on a loop ---- */

struct run;

struct call {
    struct run *r;
    int idx;
    struct rota_upstream_call *c;
    int status, nhead, ndata, ndone, late, err;
    char *head, *body;
    size_t head_len, body_len, body_cap;
    char why[160];
    int cancel_at;       /* -1: cancel in on_head; n > 0: in the nth on_data */
    bool pause;          /* pause every other piece, resume from a timer */
    bool paused, take_next, cancelled;
    unsigned npause;
    struct rota_loop_timer resume;
};

enum next { NEXT_LATER, NEXT_IN_DONE }; /* the second call: from a timer, from on_done */

struct run {
    struct rota_loop *l;
    struct rota_upstream *u;
    struct server srv;
    rota_target target;
    char url[96];
    struct rota_http_hdr hdrs[5];
    struct rota_upstream_req q;
    struct call calls[MAXANS];
    int ncalls;
    enum next next;
    struct rota_loop_timer guard, later, settle;
    unsigned settle_ticks;
    bool timed_out;
};

static void on_head(void *arg, int status, const char *h, size_t len);
static int on_data(void *arg, const char *p, size_t n);
static void on_done(void *arg, int err, const char *why);
static const struct rota_upstream_cbs cbs = {on_head, on_data, on_done};

static void start_call(struct run *r, int i)
{
    struct call *k = &r->calls[i];
    assert_int_equal(rota_upstream_start(r->u, &r->q, &cbs, k, &k->c), 0);
}

/* The end of the run: stop once the server is through and a few turns passed (any
 * callback that should not come has had its chance). */
static void on_settle(struct rota_loop_timer *t)
{
    struct run *r = OWNER(t, struct run, settle);
    if (++r->settle_ticks >= 5 && atomic_load(&r->srv.finished))
        rota_loop_stop(r->l);
    else
        rota_loop_timer_set(r->l, t, 10);
}

static void ended(struct call *k)
{
    struct run *r = k->r;
    if (k->idx + 1 >= r->ncalls) {
        rota_loop_timer_set(r->l, &r->settle, 10);
    } else if (r->next == NEXT_IN_DONE) {
        start_call(r, k->idx + 1);
    } else {
        rota_loop_timer_set(r->l, &r->later, 100);
    }
}

static void on_later(struct rota_loop_timer *t)
{
    struct run *r = OWNER(t, struct run, later);
    start_call(r, 1);
}

static void on_guard(struct rota_loop_timer *t)
{
    struct run *r = OWNER(t, struct run, guard);
    r->timed_out = true;
    rota_loop_stop(r->l);
}

static void cancel_call(struct call *k)
{
    k->cancelled = true;
    rota_loop_timer_stop(k->r->l, &k->resume);
    rota_upstream_cancel(k->c);
    ended(k);
}

static void on_head(void *arg, int status, const char *h, size_t len)
{
    struct call *k = arg;
    if (k->cancelled || k->ndone || k->nhead) {
        k->late++;
        return;
    }
    k->nhead++;
    k->status = status;
    k->head = malloc(len + 1);
    memcpy(k->head, h, len);
    k->head[len] = 0;
    k->head_len = len;
    if (k->cancel_at < 0)
        cancel_call(k);
}

static void on_resume(struct rota_loop_timer *t)
{
    struct call *k = OWNER(t, struct call, resume);
    k->paused = false;
    rota_upstream_resume(k->c); /* the held piece may come before this returns */
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct call *k = arg;
    if (k->cancelled || k->ndone || !k->nhead || k->paused || n == 0) {
        k->late++;
        return 0;
    }
    k->ndata++;
    if (k->cancel_at > 0 && k->ndata == k->cancel_at) {
        cancel_call(k);
        return 0;
    }
    if (k->pause && !k->take_next) { /* not taken: the same bytes come on the resume */
        k->take_next = true;
        k->paused = true;
        rota_loop_timer_set(k->r->l, &k->resume, k->npause++ ? 5 : 400);
        return ROTA_UPSTREAM_PAUSE;
    }
    k->take_next = false;
    if (k->body_len + n > k->body_cap) {
        k->body_cap = (k->body_len + n) * 2;
        k->body = realloc(k->body, k->body_cap);
    }
    memcpy(k->body + k->body_len, p, n);
    k->body_len += n;
    return 0;
}

static void on_done(void *arg, int err, const char *why)
{
    struct call *k = arg;
    if (k->cancelled || k->ndone || k->paused) {
        k->late++;
        return;
    }
    k->ndone++;
    k->err = err;
    snprintf(k->why, sizeof(k->why), "%s", why ? why : "(null)");
    ended(k);
}

/* A run against answers "ans" (none: a port that refuses), with "ncalls" calls of the
 * default request (tweak r->q and r->calls before run_go). */
static struct run *run_new(void **state, const struct answer *ans, size_t nans, int ncalls)
{
    const struct engine *eng = *state;
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    server_start(&r->srv, ans, nans);
    assert_int_equal(rota_loop_new(&r->l, NULL), 0);
    struct rota_upstream_opts o = {.curl_only = eng->curl_only};
    assert_int_equal(rota_upstream_new(&r->u, r->l, &o), 0);
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d/v1/chat/completions", r->srv.port);
    snprintf(r->target.auth_header, sizeof(r->target.auth_header), "Authorization");
    snprintf(r->target.auth_scheme, sizeof(r->target.auth_scheme), "Bearer ");
    snprintf(r->target.headers, sizeof(r->target.headers), "X-Provider: p1\r\n");
    r->hdrs[0] = (struct rota_http_hdr){"Authorization", "Bearer client-secret-1"};
    r->hdrs[1] = (struct rota_http_hdr){"x-api-key", "client-secret-2"};
    r->hdrs[2] = (struct rota_http_hdr){"Content-Type", "application/json"};
    r->hdrs[3] = (struct rota_http_hdr){"X-Custom", "kept"};
    r->hdrs[4] = (struct rota_http_hdr){"Connection", "keep-alive"};
    r->q = (struct rota_upstream_req){
        .url = r->url, .body = "{\"model\":\"m\"}", .body_len = 13, .target = &r->target,
        .key = "sk-target-1234", .client_headers = r->hdrs, .nclient_headers = 5,
        .request_id = "rid-1", .connect_ms = 5000, .first_byte_ms = 5000, .idle_ms = 5000};
    r->ncalls = ncalls;
    for (int i = 0; i < ncalls; i++)
        r->calls[i] = (struct call){.r = r, .idx = i, .resume = {.fn = on_resume}};
    r->guard.fn = on_guard;
    r->later.fn = on_later;
    r->settle.fn = on_settle;
    return r;
}

/* Start the first call, run the loop to the end, tear the client side down, join the
 * server. */
static void run_go(struct run *r)
{
    start_call(r, 0);
    rota_loop_timer_set(r->l, &r->guard, 12000);
    assert_int_equal(rota_loop_run(r->l), 0);
    rota_upstream_free(r->u);
    rota_loop_free(r->l);
    server_stop(&r->srv);
    assert_false(r->timed_out);
    assert_null(r->srv.fail);
}

static void run_free(struct run *r)
{
    for (int i = 0; i < r->ncalls; i++) {
        free(r->calls[i].head);
        free(r->calls[i].body);
    }
    for (int i = 0; i < MAXANS; i++)
        free(r->srv.req[i]);
    free(r);
}

/* Call "k" ended with "err" after a head of "status" and "head" and the body "body" (a
 * NULL head: no on_head at all). */
static void check_call(const struct call *k, int err, int status, const char *head,
                       const char *body, size_t blen)
{
    if (k->err != err)
        print_error("err %d (%s), want %d\n", k->err, k->why, err);
    assert_int_equal(k->late, 0);
    assert_int_equal(k->ndone, 1);
    assert_int_equal(k->err, err);
    if (!head) {
        assert_int_equal(k->nhead, 0);
    } else {
        assert_int_equal(k->nhead, 1);
        assert_int_equal(k->status, status);
        assert_string_equal(k->head, head);
    }
    assert_int_equal(k->body_len, blen);
    if (blen)
        assert_memory_equal(k->body, body, blen);
}

#define BODY(s) s, sizeof(s) - 1

/* ---- answers as they should be read ---- */

static void test_upstream_content_length(void **state)
{
    static const struct answer a[] = {{{P("HTTP/1.1 200 OK\r\nContent-Ty"),
                                        PD("pe: application/json\r\nContent-Length: 11\r\n\r\n"
                                         "{\"ok\"", 20),
                                        PD(":true}", 20)},
                                       CLOSE}};
    struct run *r = run_new(state, a, 1, 1);
    run_go(r);
    check_call(&r->calls[0], 0, 200, "Content-Type: application/json\r\nContent-Length: 11\r\n",
               BODY("{\"ok\":true}"));
    run_free(r);
}

/* Split inside the chunk-size line, between its CR and LF, before a chunk's CRLF, and
 * inside the trailer section; then another answer on the same connection (the chunked
 * one was read to its very end). */
static const struct answer chunked[] = {
    {{P("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1"),
      PD("a;name=v\r", 20),
      PD("\nabcdefghijklmnopqrstuvwxyz", 20),
      PD("\r", 20),
      PD("\n5\r\nHELLO\r\n0\r\nX-Trailer: t\r", 20),
      PD("\n\r", 20),
      PD("\n", 20)},
     KEEP},
    {{P("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")}, CLOSE}};

static void check_chunked(void **state, const struct run *r)
{
    check_call(&r->calls[0], 0, 200, "Transfer-Encoding: chunked\r\n",
               BODY("abcdefghijklmnopqrstuvwxyzHELLO"));
    check_call(&r->calls[1], 0, 200, "Content-Length: 4\r\n", BODY("next"));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
}

static void test_upstream_chunked(void **state)
{
    struct run *r = run_new(state, chunked, 2, 2);
    run_go(r);
    check_chunked(state, r);
    run_free(r);
}

static void test_upstream_until_close(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst "), PD("second", 20)},
         CLOSE}};
    struct run *r = run_new(state, a, 1, 1);
    run_go(r);
    check_call(&r->calls[0], 0, 200, "Content-Type: text/plain\r\n", BODY("first second"));
    run_free(r);
}

static void test_upstream_continue(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 100 Continue\r\n\r\n"),
          PD("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 20)},
         CLOSE}};
    struct run *r = run_new(state, a, 1, 1);
    run_go(r);
    check_call(&r->calls[0], 0, 200, "Content-Length: 2\r\n", BODY("ok"));
    run_free(r);
}

/* A 204 has no body: the connection goes on to the next answer. */
static void test_upstream_no_content(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n")}, KEEP},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes")}, CLOSE}};
    struct run *r = run_new(state, a, 2, 2);
    run_go(r);
    check_call(&r->calls[0], 0, 204, "X-A: b\r\n", NULL, 0);
    check_call(&r->calls[1], 0, 200, "Content-Length: 3\r\n", BODY("yes"));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
    run_free(r);
}

/* Two calls in turn: one connection (rota's client; libcurl's count is its own). */
static void test_upstream_keep_alive(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")}, KEEP},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")}, CLOSE}};
    struct run *r = run_new(state, a, 2, 2);
    run_go(r);
    check_call(&r->calls[0], 0, 200, "Content-Length: 5\r\n", BODY("first"));
    check_call(&r->calls[1], 0, 200, "Content-Length: 6\r\n", BODY("second"));
    print_message("keep-alive: %d connection(s)\n", atomic_load(&r->srv.nconn));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
    assert_int_equal(r->srv.req_len[0], r->srv.req_len[1]);
    run_free(r);
}

/* The server closes a kept connection right after the first answer: the second call,
 * started later (the close seen first) or from inside on_done (the request goes on the
 * closed connection and must be sent again), succeeds on a new connection. */
static void stale(void **state, enum next next)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")}, CLOSE},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")}, CLOSE}};
    struct run *r = run_new(state, a, 2, 2);
    r->next = next;
    run_go(r);
    check_call(&r->calls[0], 0, 200, "Content-Length: 5\r\n", BODY("first"));
    check_call(&r->calls[1], 0, 200, "Content-Length: 6\r\n", BODY("second"));
    assert_int_equal(atomic_load(&r->srv.nconn), 2);
    run_free(r);
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
    struct answer a[] = {
        {{P(first)}, KEEP},
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")}, CLOSE}};
    struct run *r = run_new(state, a, 2, 2);
    run_go(r);
    assert_int_equal(r->calls[0].err, 0);
    assert_int_equal(r->calls[0].body_len, 2);
    assert_memory_equal(r->calls[0].body, "ok", 2);
    check_call(&r->calls[1], 0, 200, "Content-Length: 6\r\n", BODY("second"));
    print_message("%d connection(s)\n", atomic_load(&r->srv.nconn));
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 2);
    run_free(r);
}

static void test_upstream_answer_says_close(void **state)
{
    not_kept(state, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
}

static void test_upstream_bytes_after_answer(void **state)
{
    not_kept(state, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK");
}

/* ---- answers that fail ---- */

static void test_upstream_closed_mid_body(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")}, CLOSE}};
    struct run *r = run_new(state, a, 1, 1);
    run_go(r);
    check_call(&r->calls[0], -EPIPE, 200, "Content-Length: 100\r\n", BODY("0123456789"));
    run_free(r);
}

static void test_upstream_refused(void **state)
{
    struct run *r = run_new(state, NULL, 0, 1);
    run_go(r);
    check_call(&r->calls[0], -ECONNREFUSED, 0, NULL, NULL, 0);
    run_free(r);
}

static void test_upstream_silent(void **state)
{
    static const struct answer a[] = {{{P(NULL)}, HOLD}};
    struct run *r = run_new(state, a, 1, 1);
    r->q.first_byte_ms = 300;
    run_go(r);
    check_call(&r->calls[0], -ETIMEDOUT, 0, NULL, NULL, 0);
    assert_int_equal(r->srv.held_eof, 1); /* the connection was closed */
    run_free(r);
}

static void test_upstream_idle(void **state)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")}, HOLD}};
    struct run *r = run_new(state, a, 1, 1);
    r->q.idle_ms = 300;
    run_go(r);
    check_call(&r->calls[0], -ETIMEDOUT, 200, "Content-Length: 100\r\n", BODY("0123456789"));
    assert_int_equal(r->srv.held_eof, 1);
    run_free(r);
}

/* The body trickles in, each piece within the idle timeout, past the total one. */
static void test_upstream_total(void **state)
{
    static const char d[] = "0123456789";
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"), PD(d, 100),
          PD(d, 100), PD(d, 100), PD(d, 100), PD(d, 100), PD(d, 100), PD(d, 100)},
         HOLD}};
    struct run *r = run_new(state, a, 1, 1);
    r->q.total_ms = 300;
    run_go(r);
    const struct call *k = &r->calls[0];
    assert_int_equal(k->late, 0);
    assert_int_equal(k->ndone, 1);
    assert_int_equal(k->err, -ETIMEDOUT);
    assert_int_equal(k->nhead, 1);
    assert_true(k->body_len >= 10 && k->body_len < 100);
    for (size_t i = 0; i < k->body_len; i++)
        assert_int_equal(k->body[i], d[i % 10]);
    assert_int_equal(r->srv.held_eof, 1);
    run_free(r);
}

/* A malformed answer ends the call with an error on rota's client: -EIO, with nothing
 * handed on that it could not read ("head_ok": the head was good, only the body is
 * not). libcurl's ending is its own: "curl_err", "curl_head" heads and "curl_body" body
 * bytes. */
static void malformed(void **state, const char *answer, bool head_ok, int curl_err,
                      int curl_head, size_t curl_body)
{
    struct answer a[] = {{{P(answer)}, CLOSE}};
    struct run *r = run_new(state, a, 1, 1);
    run_go(r);
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
    run_free(r);
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

static char *pattern(size_t n)
{
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('A' + (i * 7 + i / 251) % 26);
    return b;
}

/* A Content-Length answer of BIG bytes in three writes. */
static void big_answer(struct answer *a, const char *body, char *head, enum after after)
{
    snprintf(head, 64, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG);
    *a = (struct answer){{P(head),
                          {body, 30000, 0},
                          {body + 30000, 40000, 20},
                          {body + 70000, BIG - 70000, 20}},
                         after};
}

/* Every other piece is paused, the first for longer than the idle timeout (which does
 * not count while paused): the body comes whole, in order, each byte once; and the
 * connection carries the next call. */
static void test_upstream_pause(void **state)
{
    char *body = pattern(BIG), head[64];
    struct answer a[2];
    big_answer(a, body, head, KEEP);
    a[1] = (struct answer){{P("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")}, CLOSE};
    struct run *r = run_new(state, a, 2, 2);
    r->q.idle_ms = 200;
    r->calls[0].pause = true;
    run_go(r);
    char want[64];
    snprintf(want, sizeof(want), "Content-Length: %d\r\n", BIG);
    check_call(&r->calls[0], 0, 200, want, body, BIG);
    check_call(&r->calls[1], 0, 200, "Content-Length: 4\r\n", BODY("next"));
    print_message("%u pauses\n", r->calls[0].npause);
    assert_true(r->calls[0].npause >= 2);
    if (*state == &H1)
        assert_int_equal(atomic_load(&r->srv.nconn), 1);
    run_free(r);
    free(body);
}

/* The same with chunks split at awkward points. */
static void test_upstream_pause_chunked(void **state)
{
    struct run *r = run_new(state, chunked, 2, 2);
    r->calls[0].pause = true;
    run_go(r);
    check_chunked(state, r);
    assert_true(r->calls[0].npause >= 2);
    run_free(r);
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
    struct run *r = run_new(state, a, 1, 1);
    r->calls[0].cancel_at = at;
    run_go(r);
    const struct call *k = &r->calls[0];
    assert_true(k->cancelled);
    assert_int_equal(k->late, 0);
    assert_int_equal(k->ndone, 0);
    assert_int_equal(k->nhead, 1);
    assert_int_equal(k->ndata, at < 0 ? 0 : at);
    assert_int_equal(r->srv.held_eof, 1);
    run_free(r);
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

/* Header "name" of the request's head: its value (NUL-ended into "out") and how many
 * times it came. */
static int header_of(const char *req, size_t head, const char *name, char *out, size_t cap)
{
    int count = 0;
    size_t nl = strlen(name);
    out[0] = 0;
    for (const char *p = (const char *)memchr(req, '\n', head) + 1; p < req + head;) {
        const char *e = memchr(p, '\n', (size_t)(req + head - p));
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            v += strspn(v, " ");
            snprintf(out, cap, "%.*s", (int)(e - v - 1), v);
            count++;
        }
        p = e + 1;
    }
    return count;
}

/* The body in "npieces" pieces of "piece" bytes each reaches the server whole, with the
 * head as it should be. */
static void request(void **state, size_t npieces, size_t piece, bool localhost)
{
    static const struct answer a[] = {
        {{P("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")}, CLOSE}};
    size_t len = npieces * piece;
    char *body = pattern(len);
    struct iovec *iov = calloc(npieces, sizeof(*iov));
    for (size_t i = 0; i < npieces; i++)
        iov[i] = (struct iovec){body + i * piece, piece};
    struct run *r = run_new(state, a, 1, 1);
    r->q.body = NULL;
    r->q.body_len = 0;
    r->q.body_iov = iov;
    r->q.nbody_iov = npieces;
    const char *host = localhost ? "localhost" : "127.0.0.1",
               *path = localhost ? "/v1/chat/completions?alt=sse" : "/v1/chat/completions";
    snprintf(r->url, sizeof(r->url), "http://%s:%d%s", host, r->srv.port, path);
    run_go(r);
    check_call(&r->calls[0], 0, 200, "Content-Length: 2\r\n", BODY("ok"));
    const char *q = r->srv.req[0];
    size_t head = r->srv.head_len[0];
    char v[256], want[128];
    assert_non_null(q);
    snprintf(want, sizeof(want), "POST %s HTTP/1.1\r\n", path);
    assert_memory_equal(q, want, strlen(want));
    snprintf(want, sizeof(want), "%s:%d", host, r->srv.port);
    assert_int_equal(header_of(q, head, "Host", v, sizeof(v)), 1);
    assert_string_equal(v, want);
    assert_int_equal(header_of(q, head, "Content-Length", v, sizeof(v)), 1);
    assert_int_equal(strtoul(v, NULL, 10), len);
    assert_int_equal(r->srv.req_len[0] - head, len);
    assert_memory_equal(q + head, body, len);
    assert_int_equal(header_of(q, head, "Authorization", v, sizeof(v)), 1);
    assert_string_equal(v, "Bearer sk-target-1234");
    assert_int_equal(header_of(q, head, "x-api-key", v, sizeof(v)), 0);
    assert_null(memmem(q, head, "client-secret", 13));
    assert_int_equal(header_of(q, head, "X-Custom", v, sizeof(v)), 1);
    assert_string_equal(v, "kept");
    assert_int_equal(header_of(q, head, "X-Provider", v, sizeof(v)), 1);
    assert_string_equal(v, "p1");
    assert_int_equal(header_of(q, head, "X-Request-Id", v, sizeof(v)), 1);
    assert_string_equal(v, "rid-1");
    assert_int_equal(header_of(q, head, "Content-Type", v, sizeof(v)), 1);
    assert_string_equal(v, "application/json");
    run_free(r);
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

static void test_upstream_request_many_pieces(void **state)
{
    request(state, 9, 1000, false); /* more pieces than one sendmsg of rota's client takes */
}

static void test_upstream_request_large(void **state)
{
    request(state, 5, 120 * 1000, false); /* read from the pieces as sent, maybe in parts */
}

#define BOTH(f)                                                                         \
    {#f " (h1)", f, NULL, NULL, (void *)&H1}, {#f " (curl)", f, NULL, NULL, (void *)&CURL}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_upstream_content_length),   BOTH(test_upstream_chunked),
        BOTH(test_upstream_until_close),      BOTH(test_upstream_continue),
        BOTH(test_upstream_no_content),       BOTH(test_upstream_keep_alive),
        BOTH(test_upstream_stale_later),      BOTH(test_upstream_stale_at_once),
        BOTH(test_upstream_answer_says_close), BOTH(test_upstream_bytes_after_answer),
        BOTH(test_upstream_closed_mid_body),  BOTH(test_upstream_refused),
        BOTH(test_upstream_silent),           BOTH(test_upstream_idle),
        BOTH(test_upstream_total),
        BOTH(test_upstream_bad_status),       BOTH(test_upstream_two_lengths),
        BOTH(test_upstream_bad_chunk),        BOTH(test_upstream_head_too_large),
        BOTH(test_upstream_pause),            BOTH(test_upstream_pause_chunked),
        BOTH(test_upstream_cancel_in_head),   BOTH(test_upstream_cancel_in_data),
        BOTH(test_upstream_cancel_later),
        BOTH(test_upstream_request_pieces),   BOTH(test_upstream_request_localhost),
        BOTH(test_upstream_request_many_pieces),
        BOTH(test_upstream_request_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
