/*
 * front.c - the dispatch worker's HTTP/1.1 server: connections, reading, parsing,
 * timeouts (front.h says what it promises; front_int.h draws the states).
 *
 * DESIGN
 * Everything runs on the front's loop thread. A connection keeps one receive armed
 * whenever it may read: always, but while an answer is in progress with IN_MAX bytes
 * already waiting, so a client that leaves mid-answer is seen at once (its receive
 * ends) and the handler told. Bytes are parsed straight from the loop's receive buffer
 * when nothing waits in "in"; what is left over (the start of a pipelined request) is
 * copied there and parsed after the answer. An answer completes inside the handler's
 * call or later; either way the work after it (releasing the request, parsing the next)
 * runs deferred, outside the caller's stack, so a handler never re-enters itself.
 *
 * One timer per connection, at the nearest of two deadlines: reading (idle, head or
 * body, by state) and sending (no progress for send_timeout_ms).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "front_int.h"

#define container_of(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

static void on_recv(struct rota_loop_op *op, int res, uint32_t flags);
static void on_timer(struct rota_loop_timer *t);
static void after_answer(struct rota_loop_defer *d);

/* ---- pools ---- */

void *rota_front_pool_get(struct pool *p)
{
    if (p->n)
        return p->items[--p->n];
    return malloc(p->size);
}

void rota_front_pool_put(struct pool *p, void *item)
{
    if (p->n < POOL_MAX)
        p->items[p->n++] = item;
    else
        free(item);
}

static void pool_drain(struct pool *p)
{
    while (p->n)
        free(p->items[--p->n]);
}

/* ---- connection lifecycle ---- */

static void link_conn(struct rota_front *f, struct rota_front_conn *c)
{
    c->list_next = f->conns;
    if (f->conns)
        f->conns->prev = c;
    f->conns = c;
}

static void unlink_conn(struct rota_front *f, struct rota_front_conn *c)
{
    if (c->prev)
        c->prev->list_next = c->list_next;
    else
        f->conns = c->list_next;
    if (c->list_next)
        c->list_next->prev = c->prev;
}

static void put_req(struct rota_front *f, struct req_ctx **rq)
{
    if (!*rq)
        return;
    rota_http_end((*rq)->h);
    rota_front_pool_put(&f->reqs, *rq);
    *rq = NULL;
}

static void release_req(struct rota_front_conn *c)
{
    put_req(c->f, &c->rq);
}

static void conn_free(struct rota_front_conn *c)
{
    struct rota_front *f = c->f;
    rota_loop_timer_stop(f->l, &c->timer);
    rota_loop_undefer(f->l, &c->next);
    close(c->fd);
    release_req(c);
    put_req(f, &c->held);
    rota_front_buf_release(f, &c->in);
    rota_front_buf_release(f, &c->fl);
    rota_front_buf_release(f, &c->wq);
    unlink_conn(f, c);
    if (c->refusing)
        f->nrefusing--;
    else
        f->nconns--;
    free(c);
}

static bool freeable(const struct rota_front_conn *c)
{
    if (!c->closing || c->rop.busy || c->sop.busy)
        return false;
    return c->state != S_ANSWER || c->answered; /* else the handler's answer frees it */
}

/* Free "c" once it is closing, nothing is in flight and no handler holds it: deferred,
 * as whoever closes it may still be on a stack that holds it. */
static void maybe_free(struct rota_front_conn *c)
{
    if (freeable(c))
        rota_loop_defer(c->f->l, &c->next);
}

void rota_front_close(struct rota_front_conn *c)
{
    if (!c->closing) {
        c->closing = true;
        /* Ends a pending receive (0) and send (EPIPE) by itself; no cancellation, which
         * could reach a new connection's operation once this one's memory is reused. */
        shutdown(c->fd, SHUT_RDWR);
        rota_loop_timer_stop(c->f->l, &c->timer);
    }
    maybe_free(c);
}

/* The client has left, or stopped reading: a handler still answering is told. */
void rota_front_gone(struct rota_front_conn *c)
{
    if (c->gone)
        return;
    c->gone = true;
    if (c->state == S_ANSWER && !c->answered && c->rq && c->rq->on_close) {
        rota_front_conn_fn fn = c->rq->on_close;
        c->rq->on_close = NULL;
        fn(c->rq->close_arg, c); /* "c" stays valid: the answer is still owed */
    }
    rota_front_close(c);
}

static void conn_init(struct rota_front *f, struct rota_front_conn *c, int fd)
{
    c->f = f;
    c->fd = fd;
    c->rop.fn = on_recv;
    c->sop.fn = rota_front_on_send;
    c->timer.fn = on_timer;
    c->next.fn = after_answer;
    link_conn(f, c);
}

/* ---- timers ---- */

void rota_front_timer(struct rota_front_conn *c)
{
    uint64_t due = c->read_due;
    if (c->send_due && (!due || c->send_due < due))
        due = c->send_due;
    struct rota_loop *l = c->f->l;
    if (!due || c->closing) {
        rota_loop_timer_stop(l, &c->timer);
        return;
    }
    uint64_t now = rota_loop_now(l);
    if (rota_loop_timer_set(l, &c->timer, due > now ? due - now : 0) < 0)
        rota_front_close(c); /* no memory for the timer: a connection without one is
                              * one that could stay forever */
}

static void set_read_due(struct rota_front_conn *c, uint32_t ms)
{
    c->read_due = ms ? rota_loop_now(c->f->l) + ms : 0;
}

static void on_timer(struct rota_loop_timer *t)
{
    struct rota_front_conn *c = container_of(t, struct rota_front_conn, timer);
    uint64_t now = rota_loop_now(c->f->l);
    if (c->send_due && now >= c->send_due) {
        rota_front_gone(c); /* the client reads nothing of what it is sent */
        return;
    }
    if (!c->read_due || now < c->read_due) {
        rota_front_timer(c);
        return;
    }
    c->read_due = 0;
    switch (c->state) {
    case S_HEAD:
        rota_front_refuse(c, 408, NULL, "request headers not received in time");
        break;
    case S_BODY:
        rota_front_refuse(c, 408, c->rq->h->path, "request body not received in time");
        break;
    default: /* idle keep-alive, lingering, or a refusal that was never read */
        rota_front_close(c);
        break;
    }
}

/* ---- reading ---- */

/* Keep a receive armed while the connection may read (top of this file). */
static void arm_recv(struct rota_front_conn *c)
{
    if (c->closing || c->rop.busy)
        return;
    if (c->state == S_ANSWER && c->in.len - c->in.off + BUF_BLOCK > IN_MAX)
        return;
    size_t len;
    char *at = c->state == S_BODY && c->in.off == c->in.len
                   ? rota_http_body_room(c->rq->h, DIRECT_MIN, &len)
                   : NULL;
    c->direct = at != NULL;
    if (at)
        rota_loop_recv_into(c->f->l, &c->rop, c->fd, at, len);
    else
        rota_loop_recv(c->f->l, &c->rop, c->fd);
}

/* A receive straight into the request's body has completed with "res" bytes. */
static void took_direct(struct rota_front_conn *c, int res)
{
    c->direct = false;
    if (c->held) { /* refused meanwhile: the body can go now */
        put_req(c->f, &c->held);
        if (res > 0 && !c->closing)
            arm_recv(c); /* read and dropped from now on */
        return;
    }
    rota_http_body_took(c->rq->h, (size_t)res);
    set_read_due(c, c->f->o.body_timeout_ms);
    rota_front_timer(c);
    arm_recv(c);
}

static int start_request(struct rota_front_conn *c)
{
    struct rota_front *f = c->f;
    struct req_ctx *rq = rota_front_pool_get(&f->reqs);
    if (!rq)
        return -ENOMEM;
    memset(rq, 0, sizeof(*rq));
    rq->h = (struct rota_http *)(void *)(rq + 1);
    memset(rq->h, 0, sizeof(*rq->h));
    rota_http_begin(rq->h, &f->lim);
    c->rq = rq;
    c->state = S_HEAD;
    c->continued = false;
    set_read_due(c, f->o.header_timeout_ms);
    return 0;
}

/* A client's X-Request-Id if it is sane to echo, else one made here. */
static const char *request_id(struct rota_front *f, struct rota_http *h)
{
    const char *id = rota_http_get(h->headers, h->nheaders, "x-request-id");
    if (id) {
        size_t n = 0;
        while (id[n] > 0x20 && id[n] < 0x7f && id[n] != '"' && id[n] != '\\')
            n++;
        if (n && n <= 128 && !id[n])
            return id;
    }
    char *mine = rota_http_spare(h, 24); /* http.h keeps at least 64 spare */
    uint64_t x = f->id_seed + 0x9e3779b97f4a7c15ull * ++f->id_next; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    snprintf(mine, 24, "req_%016llx", (unsigned long long)x);
    return mine;
}

/* A whole request: to the handler, or answered here. */
static void dispatch(struct rota_front_conn *c)
{
    struct rota_front *f = c->f;
    struct rota_http *h = c->rq->h;
    f->requests++;
    c->state = S_ANSWER;
    c->answered = c->streaming = false;
    c->head_only = !strcmp(h->method, "HEAD");
    c->keep = h->keep_alive;
    c->read_due = 0;
    rota_front_timer(c);
    c->rq->r = (struct rota_front_req){.method = h->method,
                                       .path = h->path,
                                       .query = h->query,
                                       .headers = h->headers,
                                       .nheaders = h->nheaders,
                                       .body = h->body,
                                       .body_len = (size_t)h->body_len,
                                       .request_id = request_id(f, h),
                                       .http_minor = h->http_minor};
    if (!strcmp(h->path, "/healthz") && (c->head_only || !strcmp(h->method, "GET")))
        rota_front_health(c);
    else
        f->o.handler(f->o.arg, c, &c->rq->r);
}

/* The head check (rota_front_opts.head_check): true if the request was refused. */
static bool refused_on_head(struct rota_front_conn *c)
{
    struct rota_front *f = c->f;
    struct rota_http *h = c->rq->h;
    if (!f->o.head_check)
        return false;
    struct rota_front_req r = {.method = h->method,
                               .path = h->path,
                               .query = h->query,
                               .headers = h->headers,
                               .nheaders = h->nheaders,
                               .body = "",
                               .request_id = request_id(f, h),
                               .http_minor = h->http_minor};
    const char *why = NULL;
    int status = f->o.head_check(f->o.arg, &r, &why);
    if (!status)
        return false;
    f->requests++;
    rota_front_refuse(c, status, h->path, why ? why : "refused");
    return true;
}

/* Parse "n" bytes at "data" while the connection is reading a request; returns how
 * many were taken (all of them on a refusal: the rest is not read). */
static size_t parse(struct rota_front_conn *c, const char *data, size_t n)
{
    size_t used = 0;
    while (used < n && c->state <= S_BODY && !c->closing) {
        if (c->state == S_IDLE) {
            while (used < n && (data[used] == '\r' || data[used] == '\n'))
                used++; /* stray line ends between requests, as RFC 9112 allows */
            if (used == n)
                break;
            if (start_request(c) < 0) {
                rota_front_close(c);
                return n;
            }
        }
        struct rota_http *h = c->rq->h;
        used += rota_http_feed(h, data + used, n - used);
        switch (h->state) {
        case ROTA_HTTP_HEAD:
            if (refused_on_head(c))
                return n;
            c->state = S_BODY;
            set_read_due(c, c->f->o.body_timeout_ms);
            break;
        case ROTA_HTTP_DONE:
            dispatch(c);
            return used;
        case ROTA_HTTP_ERROR:
            rota_front_refuse(c, h->status, h->headers ? h->path : NULL, h->why);
            return n;
        default:
            if (c->state == S_BODY)
                set_read_due(c, c->f->o.body_timeout_ms);
            break;
        }
    }
    struct rota_http *h = c->rq ? c->rq->h : NULL;
    if (c->state == S_BODY && h->expect_continue && !h->body_len && !c->continued) {
        c->continued = true; /* the client waits for this before sending the body */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (rota_front_put(c, cont, sizeof(cont) - 1) == 0)
            rota_front_flush(c);
    }
    return used;
}

static int keep_input(struct rota_front_conn *c, const char *data, size_t n)
{
    struct buf *b = &c->in;
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->off && b->len + n > b->cap) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (rota_front_buf_reserve(c->f, b, n) < 0)
        return -ENOMEM;
    memcpy(b->p + b->len, data, n);
    b->len += (uint32_t)n;
    return 0;
}

/* Parse what waits in "in". */
static void parse_kept(struct rota_front_conn *c)
{
    struct buf *b = &c->in;
    while (b->off < b->len && c->state <= S_BODY && !c->closing)
        b->off += (uint32_t)parse(c, b->p + b->off, b->len - b->off);
    if (b->off == b->len && c->state != S_ANSWER)
        rota_front_buf_release(c->f, b);
}

static void on_recv(struct rota_loop_op *op, int res, uint32_t flags)
{
    struct rota_front_conn *c = container_of(op, struct rota_front_conn, rop);
    if (c->closing) {
        maybe_free(c);
        return;
    }
    if (res <= 0) {
        c->direct = false;
        put_req(c->f, &c->held);
        if (c->state == S_IDLE || c->state >= S_CLOSING)
            rota_front_close(c); /* a client done with its connection */
        else
            rota_front_gone(c);
        return;
    }
    if (c->direct) {
        took_direct(c, res);
        return;
    }
    const char *data = rota_loop_recv_data(c->f->l, flags);
    size_t n = (size_t)res;
    if (c->state >= S_CLOSING || !data) {
        arm_recv(c); /* read and dropped, so the client sees the answer, not a reset */
        return;
    }
    if (c->in.off < c->in.len || c->state == S_ANSWER) { /* keep the order */
        if (keep_input(c, data, n) < 0) {
            rota_front_close(c);
            return;
        }
        if (c->state != S_ANSWER)
            parse_kept(c);
    } else {
        size_t used = parse(c, data, n);
        if (used < n && !c->closing && keep_input(c, data + used, n - used) < 0) {
            rota_front_close(c);
            return;
        }
    }
    if (c->closing)
        return;
    rota_front_timer(c);
    arm_recv(c);
}

/* ---- after an answer ---- */

/* The handler has completed its answer (deferred from the call that did). */
static void after_answer(struct rota_loop_defer *d)
{
    struct rota_front_conn *c = container_of(d, struct rota_front_conn, next);
    if (c->closing) {
        if (freeable(c))
            conn_free(c);
        return;
    }
    if (c->state == S_IDLE) { /* output drained with input waiting */
        parse_kept(c);
        if (!c->closing) {
            rota_front_timer(c);
            arm_recv(c);
        }
        return;
    }
    if (c->state != S_ANSWER || !c->answered)
        return;
    release_req(c);
    if (!c->keep) {
        c->state = S_CLOSING;
        rota_front_flush(c); /* and once sent: lingering close (rota_front_drained) */
        return;
    }
    c->state = S_IDLE;
    set_read_due(c, c->f->o.idle_timeout_ms);
    if (!c->sop.busy && !c->wq.len) { /* all sent already: an idle connection holds none */
        rota_front_buf_release(c->f, &c->fl);
        rota_front_buf_release(c->f, &c->wq);
    }
    uint32_t unsent = c->fl.len - c->fl.off + c->wq.len;
    if (unsent <= ROTA_FRONT_STREAM_HIGH) /* else the next waits for the drain */
        parse_kept(c);
    if (c->closing)
        return;
    rota_front_timer(c);
    arm_recv(c);
}

/* Everything queued has been sent. */
void rota_front_drained(struct rota_front_conn *c)
{
    c->send_due = 0;
    if (c->state == S_CLOSING) { /* a final answer is out: let the client see it */
        shutdown(c->fd, SHUT_WR);
        c->state = S_LINGER;
        set_read_due(c, LINGER_MS);
        rota_front_timer(c);
        arm_recv(c);
        return;
    }
    if (c->state == S_ANSWER && c->want_writable && c->rq && c->rq->on_writable) {
        c->want_writable = false;
        c->rq->on_writable(c->rq->writable_arg, c);
        return;
    }
    if (c->state != S_ANSWER) {
        rota_front_buf_release(c->f, &c->fl);
        rota_front_buf_release(c->f, &c->wq);
        if (c->state == S_IDLE && c->in.off < c->in.len)
            rota_loop_defer(c->f->l, &c->next);
    }
    rota_front_timer(c);
}

/* ---- accepting ---- */

void rota_front_conn_new(struct rota_front *f, int fd, bool tcp)
{
    struct rota_front_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    if (tcp)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    f->nconns++;
    f->accepted++;
    conn_init(f, c, fd);
    c->state = S_IDLE;
    set_read_due(c, f->o.idle_timeout_ms);
    rota_front_timer(c);
    arm_recv(c);
}

/* One connection past max_conns: a 503 with Retry-After, then close. */
void rota_front_refuse_conn(struct rota_front *f, int fd)
{
    f->refused++;
    struct rota_front_conn *c = NULL;
    if (f->nrefusing < MAX_REFUSING)
        c = calloc(1, sizeof(*c));
    if (!c) { /* too many being refused already: no answer at all */
        close(fd);
        return;
    }
    f->nrefusing++;
    c->refusing = true;
    conn_init(f, c, fd);
    c->state = S_HEAD;
    char why[96];
    snprintf(why, sizeof(why), "too many connections on this worker; retry in %u s",
             f->o.retry_after_s);
    rota_front_refuse(c, 503, NULL, why);
    arm_recv(c);
}

/* ---- the front ---- */

int rota_front_new(struct rota_front **out, struct rota_loop *l,
                   const struct rota_front_opts *o)
{
    if (!o->handler)
        return -EINVAL;
    struct rota_front *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->l = l;
    f->o = *o;
#define DEFAULT(field, v)                                                                      \
    if (!f->o.field)                                                                           \
    f->o.field = (v)
    DEFAULT(max_head, 16384);
    DEFAULT(max_headers, 100);
    DEFAULT(max_body, 32u << 20);
    DEFAULT(header_timeout_ms, 10000);
    DEFAULT(body_timeout_ms, 30000);
    DEFAULT(idle_timeout_ms, 75000);
    DEFAULT(send_timeout_ms, 60000);
    DEFAULT(max_conns, 16384);
    DEFAULT(retry_after_s, 1);
#undef DEFAULT
    f->lim = (struct rota_http_limits){
        .max_head = f->o.max_head, .max_headers = f->o.max_headers, .max_body = f->o.max_body};
    f->bufs.size = BUF_BLOCK;
    f->reqs.size = sizeof(struct req_ctx) + rota_http_size(&f->lim);
    if (getrandom(&f->id_seed, sizeof(f->id_seed), GRND_NONBLOCK) != sizeof(f->id_seed))
        f->id_seed = (uint64_t)(uintptr_t)f ^ rota_loop_now(l) << 20;
    *out = f;
    return 0;
}

void rota_front_free(struct rota_front *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->nlis; i++)
        if (f->lis[i].own && f->lis[i].fd >= 0)
            close(f->lis[i].fd);
    while (f->conns) {
        struct rota_front_conn *c = f->conns;
        c->gone = true; /* writes from the callback below fail with -EPIPE */
        if (c->state == S_ANSWER && !c->answered && c->rq && c->rq->on_close) {
            rota_front_conn_fn fn = c->rq->on_close;
            c->rq->on_close = NULL;
            fn(c->rq->close_arg, c);
        }
        c->rop.busy = c->sop.busy = false; /* the loop runs no more: nothing completes */
        c->answered = true;
        c->closing = true;
        conn_free(c);
    }
    pool_drain(&f->bufs);
    pool_drain(&f->reqs);
    free(f);
}

struct rota_loop *rota_front_loop(const struct rota_front *f)
{
    return f->l;
}

const char *rota_front_header(const struct rota_front_req *r, const char *name)
{
    return rota_http_get(r->headers, r->nheaders, name);
}

int rota_front_peer(const struct rota_front_conn *c, struct sockaddr_storage *ss,
                    socklen_t *len)
{
    *len = sizeof(*ss);
    return getpeername(c->fd, (struct sockaddr *)ss, len) < 0 ? -errno : 0;
}

void rota_front_on_close(struct rota_front_conn *c, rota_front_conn_fn fn, void *arg)
{
    if (!c->rq)
        return;
    c->rq->on_close = fn;
    c->rq->close_arg = arg;
}

void rota_front_on_writable(struct rota_front_conn *c, rota_front_conn_fn fn, void *arg)
{
    if (!c->rq)
        return;
    c->rq->on_writable = fn;
    c->rq->writable_arg = arg;
}

void rota_front_stats(const struct rota_front *f, struct rota_front_stats *s)
{
    *s = (struct rota_front_stats){.conns = f->nconns,
                                   .accepted = f->accepted,
                                   .refused = f->refused,
                                   .requests = f->requests};
    for (const struct rota_front_conn *c = f->conns; c; c = c->list_next) {
        s->bytes_conns +=
            sizeof(*c) + c->in.cap + c->fl.cap + c->wq.cap + (c->rq ? f->reqs.size : 0);
        s->unsent +=
            (uint64_t)(c->wq.len - c->wq.off) + (c->fl.len - c->fl.off) + (c->sop.busy ? 1 : 0);
    }
    s->bytes_pool = f->bufs.n * f->bufs.size + f->reqs.n * f->reqs.size;
}
