/*
 * upstream_it.c - test_upstream's scripted server and runs of calls (upstream_it.h says
 * what they do).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "upstream_it.h"

#define WAIT_MS 8000 /* the server's wait for anything; the loop's guard is longer */

#define OWNER(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

const struct engine H1 = {false}, CURL = {true};

/* ---- the scripted server ---- */
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

bool up_listen_v6;

/* Listen on 127.0.0.1 (or ::1) and serve "ans" (none: a port bound but not listening, which
 * refuses connections). */
static void server_start(struct server *s, const struct answer *ans, size_t nans)
{
    memset(s, 0, sizeof(*s));
    s->ans = ans;
    s->nans = nans;
    if (up_listen_v6) {
        s->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->lfd >= 0);
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
        socklen_t al = sizeof(a);
        assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
        s->port = ntohs(a.sin6_port);
    } else {
        s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->lfd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
        s->port = ntohs(a.sin_port);
    }
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

struct run *up_run_new(void **state, const struct answer *ans, size_t nans, int ncalls)
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
    r->q = (struct rota_upstream_req){.url = r->url,
                                      .body = "{\"model\":\"m\"}",
                                      .body_len = 13,
                                      .target = &r->target,
                                      .key = "sk-target-1234",
                                      .client_headers = r->hdrs,
                                      .nclient_headers = 5,
                                      .request_id = "rid-1",
                                      .connect_ms = 5000,
                                      .first_byte_ms = 5000,
                                      .idle_ms = 5000};
    r->ncalls = ncalls;
    for (int i = 0; i < ncalls; i++)
        r->calls[i] = (struct call){.r = r, .idx = i, .resume = {.fn = on_resume}};
    r->guard.fn = on_guard;
    r->later.fn = on_later;
    r->settle.fn = on_settle;
    return r;
}

void up_run_go(struct run *r)
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

void up_run_free(struct run *r)
{
    for (int i = 0; i < r->ncalls; i++) {
        free(r->calls[i].head);
        free(r->calls[i].body);
    }
    for (int i = 0; i < MAXANS; i++)
        free(r->srv.req[i]);
    free(r);
}

void up_check(const struct call *k, int err, int status, const char *head, const char *body,
              size_t blen)
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

char *up_pattern(size_t n)
{
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('A' + (i * 7 + i / 251) % 26);
    return b;
}

int up_header(const char *req, size_t head, const char *name, char *out, size_t cap)
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
