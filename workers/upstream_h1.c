/*
 * upstream_h1.c - rota's own HTTP/1.1 client for plain HTTP to an address: the calls
 * upstream_int.h says it takes, on the thread's loop, with upstream.h's contract.
 *
 * DESIGN
 * A connection (struct h1_conn) is a socket with two operations of the loop's: a
 * receive, armed for as long as the connection lives and its call is not paused, and a
 * connect-then-send. A call takes an idle connection to its address (the last one kept
 * first) or makes one; sends its head and body in one sendmsg (the head is the call's
 * header lines, the body the caller's pieces, copied nowhere); and reads the answer
 * from the loop's receive buffers: the head gathered into the call's head buffer, the
 * body handed to on_data where it lies. Only what a pause holds back is copied, into
 * the connection's "pend", and handed over again on the resume.
 *
 * The answer is read by upstream_h1_answer.c. The connection is kept for the next call
 * when the answer came whole, framed, with nothing after it, the request was all sent,
 * and the upstream did not say "Connection: close" (HTTP/1.0: only with keep-alive).
 *
 * A kept connection has nothing armed. Before a call takes it, a peek (MSG_PEEK,
 * MSG_DONTWAIT) must find nothing to read: a connection the upstream closed, or one
 * with bytes after the last answer (an answer longer than its Content-Length said), is
 * ended there, so no call reads another's answer. A call whose kept connection ends
 * or fails before a byte of the answer anyway (the upstream closed it as we sent) goes
 * once more on a new connection, as libcurl does; the request may then reach the
 * upstream twice, as with libcurl. A send that fails leaves the verdict to the receive,
 * armed for as long as the call runs: an answer the upstream sent before closing (an
 * early 413) is still read.
 *
 * Ending a connection shuts the socket down first: an operation in flight then fails at
 * once and the kernel reads no more of the call's buffers, which the caller may free
 * when the call ends. The memory goes when both operations have completed. A callback
 * may cancel its own call (and so end the connection) while the connection's receive
 * is handing over: "busy" keeps it until the handing is over.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "upstream_int.h"

#define H1_IOV      8          /* the head and up to 7 body pieces (more are gathered) */
#define IDLE_MS     30000      /* a kept connection unused this long is closed */

struct h1_conn {
    struct h1_pool *pool;
    struct rota_upstream_call *call; /* NULL while kept */
    struct h1_conn *prev, *next;     /* the pool's kept connections */
    struct h1_conn *aprev, *anext;   /* all the pool's connections */
    struct rota_loop_op rop, sop;    /* receive; connect, then send */
    struct rota_loop_timer timer;    /* connect, then (kept) idle */
    struct msghdr msg;
    struct iovec iov[H1_IOV];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int fd;
    char *pend; /* answer bytes a pause held: pend[pend_off, pend_len) */
    size_t pend_off, pend_len, pend_cap;
    bool kept, dead, busy;
};

struct h1_pool {
    struct rota_upstream *u;
    struct h1_conn *kept; /* most recently kept first */
    struct h1_conn *all;
    unsigned nkept, max_kept;
    bool localhost6; /* "localhost" answered on ::1 last */
};

static void conn_kill(struct h1_conn *k);
static void on_recv(struct rota_loop_op *op, int res, uint32_t flags);
static void on_send(struct rota_loop_op *op, int res, uint32_t flags);
static void start_send(struct rota_upstream_call *c);

/* ---- the URL ---- */

/* The call's address: the loopback of IPv6 or IPv4, port "port". */
static void set_loopback(struct rota_upstream_call *c, bool v6, uint16_t port)
{
    memset(&c->addr, 0, sizeof(c->addr));
    if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&c->addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
        a6->sin6_port = htons(port);
        c->addr_len = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addr;
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a4->sin_port = htons(port);
        c->addr_len = sizeof(*a4);
    }
}

bool rota_h1_takes(struct rota_upstream_call *c, const char *url)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7, *end = h + strcspn(h, "/?#"), *port = NULL;
    char host[64];
    size_t hl;
    if (*end != '/' || memchr(h, '@', (size_t)(end - h)) || strchr(end, '#'))
        return false; /* no path, a user or a fragment: libcurl's */
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb || (rb + 1 != end && rb[1] != ':'))
            return false;
        hl = (size_t)(rb - h - 1);
        if (hl >= sizeof(host))
            return false;
        memcpy(host, h + 1, hl);
        port = rb + 1 != end ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        hl = (size_t)((colon ? colon : end) - h);
        if (hl >= sizeof(host))
            return false;
        memcpy(host, h, hl);
        port = colon ? colon + 1 : NULL;
    }
    host[hl] = 0;
    unsigned long pn = 80;
    if (port) {
        char *pe;
        if (port == end || *port < '0' || *port > '9')
            return false;
        pn = strtoul(port, &pe, 10);
        if (pe != end || pn == 0 || pn > 65535)
            return false;
    }
    memset(&c->addr, 0, sizeof(c->addr));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&c->addr;
    c->localhost = strcasecmp(host, "localhost") == 0;
    c->other_tried = false;
    if (c->localhost) { /* 127.0.0.1, or ::1 where that is where it was found */
        set_loopback(c, c->u->h1->localhost6, (uint16_t)pn);
    } else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)pn);
        c->addr_len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)pn);
        c->addr_len = sizeof(*a6);
    } else {
        return false; /* a name to resolve: libcurl's */
    }
    if ((size_t)(end - h) >= sizeof(c->hostport))
        return false;
    memcpy(c->hostport, h, (size_t)(end - h));
    c->hostport[end - h] = 0;
    c->path = end;
    return true;
}

/* ---- a call's end ---- */

/* End call "c" with "err" (its connection kept when "keep" says so, else ended). */
static void finish(struct rota_upstream_call *c, int err, const char *why)
{
    struct rota_upstream *u = c->u;
    struct h1_conn *k = c->conn;
    c->removed = true;
    u->active--;
    rota_loop_timer_stop(u->l, &c->timer);
    rota_loop_timer_stop(u->l, &c->total);
    rota_loop_undefer(u->l, &c->pump);
    c->conn = NULL;
    if (k) {
        k->call = NULL;
        if (err || !c->ans.keep || !c->sent_all || k->pend_off < k->pend_len)
            conn_kill(k);
        else {
            struct h1_pool *p = k->pool;
            k->pend_off = k->pend_len = 0;
            k->kept = true;
            k->next = p->kept;
            k->prev = NULL;
            if (p->kept)
                p->kept->prev = k;
            p->kept = k;
            p->nkept++;
            rota_loop_timer_set(u->l, &k->timer, IDLE_MS);
            if (p->nkept > p->max_kept) { /* the oldest goes */
                struct h1_conn *last = p->kept;
                while (last->next)
                    last = last->next;
                conn_kill(last);
            }
        }
    }
    c->cb->on_done(c->arg, err, why);
    rota_upstream_call_free(c);
}

/* ---- connections ---- */

static void conn_unkeep(struct h1_conn *k)
{
    if (!k->kept)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        k->pool->kept = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    k->kept = false;
    k->pool->nkept--;
}

/* Free a dead connection whose operations have all completed. */
static void conn_reap(struct h1_conn *k)
{
    if (!k->dead || k->busy || k->rop.busy || k->sop.busy)
        return;
    if (k->aprev)
        k->aprev->anext = k->anext;
    else
        k->pool->all = k->anext;
    if (k->anext)
        k->anext->aprev = k->aprev;
    if (k->fd >= 0)
        close(k->fd);
    free(k->pend);
    free(k);
}

static void conn_kill(struct h1_conn *k)
{
    if (k->dead)
        return;
    struct rota_loop *l = k->pool->u->l;
    k->dead = true;
    conn_unkeep(k);
    rota_loop_timer_stop(l, &k->timer);
    if (k->call)
        k->call->conn = NULL;
    k->call = NULL;
    if (k->fd >= 0)
        shutdown(k->fd, SHUT_RDWR); /* what is in flight fails now and reads nothing */
    rota_loop_cancel(l, &k->rop);
    rota_loop_cancel(l, &k->sop);
    conn_reap(k);
}

static void on_conn_timer(struct rota_loop_timer *t);
static void on_connect(struct rota_loop_op *op, int res, uint32_t flags);

/* A new connection for "c": a socket, connecting. 0 or a negative errno. */
static int conn_new(struct rota_upstream_call *c)
{
    struct rota_upstream *u = c->u;
    struct h1_conn *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        int rc = -errno;
        free(k);
        return rc;
    }
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    k->pool = u->h1;
    k->anext = k->pool->all;
    if (k->anext)
        k->anext->aprev = k;
    k->pool->all = k;
    k->rop.fn = on_recv;
    k->sop.fn = on_connect;
    k->timer.fn = on_conn_timer;
    memcpy(&k->addr, &c->addr, c->addr_len);
    k->addr_len = c->addr_len;
    k->call = c;
    c->conn = k;
    c->reused = false;
    rota_loop_connect(u->l, &k->sop, k->fd, (const struct sockaddr *)&k->addr, k->addr_len);
    if (c->connect_ms)
        rota_loop_timer_set(u->l, &k->timer, c->connect_ms);
    return 0;
}

/* Whether kept connection "k" is as it was left: nothing to read, not closed. Bytes
 * waiting on one (an answer longer than it said, a close) would be taken for the next
 * call's answer. */
static bool conn_quiet(const struct h1_conn *k)
{
    char b;
    return recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* A kept connection to the call's address, taken and receiving; NULL if there is none
 * (those found closed or with bytes waiting are ended on the way). */
static struct h1_conn *conn_take(struct rota_upstream_call *c)
{
    struct rota_loop *l = c->u->l;
    for (struct h1_conn *k = c->u->h1->kept, *next; k; k = next) {
        next = k->next;
        if (k->addr_len != c->addr_len || memcmp(&k->addr, &c->addr, c->addr_len) != 0)
            continue;
        if (!conn_quiet(k)) {
            conn_kill(k);
            continue;
        }
        conn_unkeep(k);
        rota_loop_timer_stop(l, &k->timer);
        k->call = c;
        c->conn = k;
        c->reused = true;
        if (!k->busy) /* else its handing over is on the stack: go_on arms it */
            rota_loop_recv(l, &k->rop, k->fd);
        return k;
    }
    return NULL;
}

/* The call's connection failed before a byte of the answer: once more on a new one if
 * the failed one was kept from before (it may have closed as we sent), else "err". */
static void conn_failed(struct rota_upstream_call *c, int err, const char *why)
{
    if (c->reused && !c->got_any && !c->retried) {
        c->retried = true;
        conn_kill(c->conn);
        c->send_at = 0;
        c->sent_all = false;
        if (conn_new(c) == 0)
            return;
        err = -ECONNREFUSED;
        why = "no socket for upstream";
    }
    finish(c, err, why);
}

static void on_conn_timer(struct rota_loop_timer *t)
{
    struct h1_conn *k = container_of(t, struct h1_conn, timer);
    struct rota_upstream_call *c = k->call;
    if (!c) { /* kept, unused for IDLE_MS */
        conn_kill(k);
        return;
    }
    char why[64];
    snprintf(why, sizeof(why), "no connection to upstream within %u ms", c->connect_ms);
    finish(c, -ETIMEDOUT, why);
}

static void on_connect(struct rota_loop_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct h1_conn *k = container_of(op, struct h1_conn, sop);
    if (k->dead) {
        conn_reap(k);
        return;
    }
    struct rota_upstream_call *c = k->call;
    rota_loop_timer_stop(k->pool->u->l, &k->timer);
    if (res < 0 && c->localhost && !c->other_tried) {
        /* localhost is 127.0.0.1 or ::1, and a server may listen on one alone: the
         * other once, and the one that answered first for the thread's next calls */
        bool v6 = c->addr.ss_family != AF_INET6;
        c->other_tried = true;
        set_loopback(c, v6, ntohs(((struct sockaddr_in *)&c->addr)->sin_port));
        conn_kill(k);
        if (conn_new(c) == 0)
            return;
    }
    if (res < 0) {
        char why[96];
        snprintf(why, sizeof(why), "cannot connect to upstream: %s", strerror(-res));
        finish(c, -ECONNREFUSED, why);
        return;
    }
    if (c->localhost)
        k->pool->localhost6 = c->addr.ss_family == AF_INET6;
    k->sop.fn = on_send;
    rota_loop_recv(k->pool->u->l, &k->rop, k->fd);
    start_send(c);
}

/* ---- the request ---- */

/* Send what is left of the head and body. */
static void start_send(struct rota_upstream_call *c)
{
    struct h1_conn *k = c->conn;
    size_t n = 0, skip = c->send_at;
    for (size_t i = 0; i < c->send_niov && n < H1_IOV; i++) {
        size_t len = c->send_iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        k->iov[n++] = (struct iovec){(char *)c->send_iov[i].iov_base + skip, len - skip};
        skip = 0;
    }
    k->msg = (struct msghdr){.msg_iov = k->iov, .msg_iovlen = n};
    rota_loop_sendmsg(c->u->l, &k->sop, k->fd, &k->msg);
    rota_loop_urgent(c->u->l);
}

static void on_send(struct rota_loop_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct h1_conn *k = container_of(op, struct h1_conn, sop);
    if (k->dead) {
        conn_reap(k);
        return;
    }
    struct rota_upstream_call *c = k->call;
    if (res <= 0) {
        /* the rest is not sent; what the upstream answered (an early 413, a close) is
         * the receive's to tell, and it is armed while the call runs */
        if (!k->rop.busy) {
            char why[96];
            snprintf(why, sizeof(why), "upstream connection failed while sending: %s",
                     strerror(res ? -res : EPIPE));
            conn_failed(c, -EPIPE, why);
        }
        return;
    }
    c->send_at += (size_t)res;
    if (c->send_at < c->up_len)
        start_send(c);
    else
        c->sent_all = true;
}

/* ---- the answer ---- */

static bool on_answer_head(void *arg, int status, const char *block, size_t len)
{
    struct rota_upstream_call *c = arg;
    c->headed = true;
    c->status = status;
    if (c->idle_ms)
        rota_loop_timer_set(c->u->l, &c->timer, c->idle_ms);
    else
        rota_loop_timer_stop(c->u->l, &c->timer);
    c->cb->on_head(c->arg, status, block, len);
    return !c->cancelled;
}

/* Body bytes to the caller: 0 taken, 1 paused (not taken), -1 the call was cancelled. */
static int on_answer_body(void *arg, const char *p, size_t n)
{
    struct rota_upstream_call *c = arg;
    if (c->cb->on_data(c->arg, p, n) == ROTA_UPSTREAM_PAUSE) {
        if (c->cancelled)
            return -1;
        c->paused = true;
        rota_loop_timer_stop(c->u->l, &c->timer);
        return 1;
    }
    if (c->cancelled)
        return -1;
    if (c->idle_ms)
        rota_loop_timer_set(c->u->l, &c->timer, c->idle_ms);
    return 0;
}

static const struct rota_h1_answer_cbs answer_cbs = {on_answer_head, on_answer_body};

/* Answer bytes for connection "k" (from a receive, or held by a pause): handed on, the
 * rest held if the caller paused. */
static void deliver(struct h1_conn *k, const char *p, size_t n, bool held)
{
    struct rota_upstream_call *c = k->call;
    const char *why = "";
    size_t used = 0;
    c->got_any = true;
    int r = rota_h1_feed(&c->ans, p, n, &used, &why, &answer_cbs, c);
    if (c->cancelled) /* the connection went with it */
        return;
    if (held)
        k->pend_off += used;
    switch (r) {
    case H1_PAUSE:
        if (!held) {
            size_t rest = n - used;
            if (rest > k->pend_cap) {
                char *b = realloc(k->pend, rest);
                if (!b) {
                    finish(c, -EIO, "out of memory for a paused answer");
                    return;
                }
                k->pend = b;
                k->pend_cap = rest;
            }
            memcpy(k->pend, p + used, rest);
            k->pend_off = 0;
            k->pend_len = rest;
        }
        return;
    case H1_ERR:
        finish(c, -EIO, why);
        return;
    case H1_END:
        if (!held && used < n)
            c->ans.keep = false; /* bytes after the answer: not a connection to keep */
        finish(c, 0, "");
        return;
    default:
        if (held)
            k->pend_off = k->pend_len = 0;
    }
}

/* After handing over: free "k" if it died, else receive again for its call unless the
 * call paused (a kept connection waits with nothing armed: conn_take looks at it). */
static void go_on(struct h1_conn *k)
{
    k->busy = false;
    if (k->dead)
        conn_reap(k);
    else if (k->call && !k->rop.busy && !k->call->paused)
        rota_loop_recv(k->pool->u->l, &k->rop, k->fd);
}

static void on_recv(struct rota_loop_op *op, int res, uint32_t flags)
{
    struct h1_conn *k = container_of(op, struct h1_conn, rop);
    struct rota_loop *l = k->pool->u->l;
    if (k->dead) {
        conn_reap(k);
        return;
    }
    struct rota_upstream_call *c = k->call;
    if (!c) { /* not armed while kept: nothing should come */
        conn_kill(k);
        return;
    }
    if (res <= 0) {
        if (res == 0 && c->ans.state == H1_UNTIL_CLOSE) {
            c->ans.state = H1_DONE;
            finish(c, 0, "");
            return;
        }
        char why[96];
        snprintf(why, sizeof(why), "upstream closed the connection %s%s%s",
                 c->headed ? "mid-answer" : "before answering", res ? ": " : "",
                 res ? strerror(-res) : "");
        if (!c->got_any)
            conn_failed(c, -EPIPE, why);
        else
            finish(c, -EPIPE, why);
        return;
    }
    k->busy = true;
    deliver(k, rota_loop_recv_data(l, flags), (size_t)res, false);
    go_on(k);
}

static void on_pump(struct rota_loop_defer *d)
{
    struct rota_upstream_call *c = container_of(d, struct rota_upstream_call, pump);
    struct h1_conn *k = c->conn;
    if (!k || c->paused || c->cancelled)
        return;
    k->busy = true;
    if (k->pend_off < k->pend_len)
        deliver(k, k->pend + k->pend_off, k->pend_len - k->pend_off, true);
    go_on(k);
}

/* ---- calls ---- */

static void on_call_timer(struct rota_loop_timer *t)
{
    struct rota_upstream_call *c = container_of(t, struct rota_upstream_call, timer);
    char why[64];
    rota_upstream_timeout_why(c, why, sizeof(why));
    finish(c, -ETIMEDOUT, why);
}

static void on_total_timer(struct rota_loop_timer *t)
{
    struct rota_upstream_call *c = container_of(t, struct rota_upstream_call, total);
    char why[64];
    snprintf(why, sizeof(why), "upstream took longer than %u ms", c->total_ms);
    finish(c, -ETIMEDOUT, why);
}

int rota_h1_start(struct rota_upstream_call *c, const struct rota_upstream_req *q)
{
    struct rota_upstream *u = c->u;
    const struct iovec one = {(void *)(uintptr_t)q->body, q->body_len};
    const struct iovec *iov = q->nbody_iov ? q->body_iov : &one;
    size_t niov = q->nbody_iov ? q->nbody_iov : 1, len = 0;
    for (size_t i = 0; i < niov; i++)
        len += iov[i].iov_len;
    c->timer = (struct rota_loop_timer){.fn = on_call_timer};
    c->total = (struct rota_loop_timer){.fn = on_total_timer};
    c->pump = (struct rota_loop_defer){.fn = on_pump};
    rota_h1_answer_reset(&c->ans);
    c->got_any = c->sent_all = c->retried = c->reused = false;
    c->connect_ms = q->connect_ms;
    c->total_ms = q->total_ms;
    c->conn = NULL;
    char cl[48];
    int n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", len);
    if (c->lines_len + (size_t)n > c->lines_cap) {
        size_t cap = c->lines_len + (size_t)n + 256;
        char *p = malloc(cap);
        if (!p)
            return -ENOMEM;
        memcpy(p, c->lines, c->lines_len);
        explicit_bzero(c->lines, c->lines_len);
        free(c->lines);
        c->lines = p;
        c->lines_cap = cap;
    }
    memcpy(c->lines + c->lines_len, cl, (size_t)n);
    c->lines_len += (size_t)n;
    if (niov + 1 > H1_IOV) { /* more pieces than a sendmsg takes here: gather them */
        if (len > c->body_cap) {
            char *b = malloc(len);
            if (!b)
                return -ENOMEM;
            free(c->body);
            c->body = b;
            c->body_cap = len;
        }
        size_t at = 0;
        for (size_t i = 0; i < niov; i++) {
            memcpy(c->body + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        niov = 1;
    }
    if (niov + 1 > c->send_cap) {
        struct iovec *v = realloc(c->send_iov, H1_IOV * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->send_iov = v;
        c->send_cap = H1_IOV;
    }
    c->send_iov[0] = (struct iovec){c->lines, c->lines_len};
    if (q->nbody_iov + 1 > H1_IOV)
        c->send_iov[1] = (struct iovec){c->body, len};
    else
        for (size_t i = 0; i < niov; i++)
            c->send_iov[1 + i] = iov[i];
    c->send_niov = niov + 1;
    c->send_at = 0;
    c->up_len = c->lines_len + len; /* every byte to send */
    if (!conn_take(c)) {
        int rc = conn_new(c);
        if (rc)
            return rc;
    } else {
        start_send(c);
    }
    if (c->first_byte_ms)
        rota_loop_timer_set(u->l, &c->timer, c->first_byte_ms);
    if (c->total_ms)
        rota_loop_timer_set(u->l, &c->total, c->total_ms);
    return 0;
}

void rota_h1_resume(struct rota_upstream_call *c)
{
    c->paused = false;
    if (c->idle_ms)
        rota_loop_timer_set(c->u->l, &c->timer, c->idle_ms);
    rota_loop_defer(c->u->l, &c->pump);
}

void rota_h1_cancel(struct rota_upstream_call *c)
{
    struct rota_upstream *u = c->u;
    rota_loop_timer_stop(u->l, &c->total);
    rota_loop_undefer(u->l, &c->pump);
    if (c->conn)
        conn_kill(c->conn);
    c->conn = NULL;
    c->removed = true;
    u->active--;
}

bool rota_h1_body_sent(const struct rota_upstream_call *c)
{
    return c->sent_all && (c->got_any || !c->reused || c->retried);
}

/* ---- the thread's connections ---- */

int rota_h1_pool_new(struct rota_upstream *u, uint32_t max_kept)
{
    struct h1_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->u = u;
    p->max_kept = max_kept;
    u->h1 = p;
    return 0;
}

void rota_h1_pool_free(struct rota_upstream *u)
{
    struct h1_pool *p = u->h1;
    if (!p)
        return;
    while (p->all) { /* the loop goes too: what is in flight is dropped */
        struct h1_conn *k = p->all;
        p->all = k->anext;
        rota_loop_timer_stop(u->l, &k->timer);
        if (k->fd >= 0)
            close(k->fd);
        free(k->pend);
        free(k);
    }
    free(p);
    u->h1 = NULL;
}
