/*
 * upstream.c - the dispatch pool's outbound HTTP (upstream.h says what it offers): the
 * calls, which engine takes each (upstream_int.h), and libcurl's engine on its multi
 * socket interface.
 *
 * DESIGN
 * One CURLM per thread. libcurl tells us which sockets to wait on
 * (CURLMOPT_SOCKETFUNCTION: a loop watch per socket, its address kept with
 * curl_multi_assign) and when to call it back (CURLMOPT_TIMERFUNCTION: one loop timer);
 * each readiness or timeout goes to curl_multi_socket_action, after which finished
 * transfers are collected with curl_multi_info_read.
 *
 * A call's own timer runs the first-byte and idle timeouts (libcurl has neither): set
 * to first_byte_ms at the start, to idle_ms at each piece, stopped while the caller has
 * the transfer paused. When it fires the transfer is taken out of the multi and ended
 * with -ETIMEDOUT, outside any libcurl callback.
 *
 * A cancel may come from inside a libcurl callback (the caller's on_data), where the
 * easy handle may not be removed: the call is marked, its callbacks turn into no-ops
 * (its writes refuse the data, which ends the transfer), and a deferred call on the
 * loop removes and frees it. Everything else that ends a call does so from the loop
 * (a watch, a timer), never from inside libcurl.
 *
 * A call's memory is kept for the next one: a call that ends goes, easy handle and
 * buffers with it, on the thread's spare list (at most SPARE_MAX), and a new call takes
 * one from there, its easy handle reset (curl_easy_reset keeps the handle's buffers;
 * connections live in the multi, not the handle). The header lines are written into
 * one buffer of the call's and chained by an array of curl_slist nodes pointing into
 * it, so a call allocates nothing once the thread has warmed up.
 *
 * A body in pieces (the client's bytes with the pool's edits between them) is gathered
 * into the call's buffer when small, as libcurl copies a small body into the request it
 * sends anyway; a large one is read from the pieces by CURLOPT_READFUNCTION (with a seek
 * for a resend), so it is copied once, into libcurl's upload buffer.
 *
 * The credential lives in one header line of that buffer; the lines are wiped when the
 * call ends, before the call is kept or freed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream_int.h"

#define SPARE_MAX 64          /* ended calls kept for reuse per thread */
#define GATHER_MAX (64 * 1024) /* a body in pieces below this is gathered into one */
#define KEEP_MAX  (16 * 1024)  /* a spare keeps a gathered body's room up to this */

/* ---- the multi handle on the loop ---- */

static void check_done(struct rota_upstream *u);

static void on_socket_ready(void *arg, int fd, unsigned revents)
{
    struct rota_upstream *u = arg;
    int flags = (revents & POLLIN ? CURL_CSELECT_IN : 0) |
                (revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                (revents & (POLLERR | POLLHUP) ? CURL_CSELECT_ERR : 0);
    int running;
    curl_multi_socket_action(u->m, fd, flags, &running);
    check_done(u);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct rota_upstream *u = userp;
    struct rota_loop_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w)
            rota_loop_watch_del(u->l, w);
        curl_multi_assign(u->m, s, NULL);
        return 0;
    }
    unsigned ev = (what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0);
    if (w) {
        rota_loop_watch_mod(u->l, w, ev);
        return 0;
    }
    w = rota_loop_watch_add(u->l, s, ev, on_socket_ready, u);
    if (!w)
        return -1; /* libcurl fails the transfer */
    curl_multi_assign(u->m, s, w);
    return 0;
}

static void on_multi_timer(struct rota_loop_timer *t)
{
    struct rota_upstream *u = container_of(t, struct rota_upstream, timer);
    int running;
    curl_multi_socket_action(u->m, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(u);
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
    struct rota_upstream *u = userp;
    if (ms < 0)
        rota_loop_timer_stop(u->l, &u->timer);
    else
        rota_loop_timer_set(u->l, &u->timer, (uint64_t)ms);
    return 0;
}

/* ---- a call's end ---- */

/* What a call's end leaves: the header lines wiped, the caller's pieces forgotten, a
 * large gathered body's room given back. */
static void wipe_lines(struct rota_upstream_call *c)
{
    rota_upstream_wipe_lines(c);
    if (c->body_cap > KEEP_MAX) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
}

/* Free a call's memory for good. */
static void call_destroy(struct rota_upstream_call *c)
{
    if (c->e)
        curl_easy_cleanup(c->e);
    free(c->lines);
    free(c->nodes);
    free(c->head);
    free(c->ans.head);
    free(c->send_iov);
    free(c->body);
    free(c);
}

/* End call "c" with "err": out of the multi, on_done told, freed. */
static void finish(struct rota_upstream_call *c, int err, const char *why)
{
    struct rota_upstream *u = c->u;
    curl_multi_remove_handle(u->m, c->e);
    c->removed = true;
    u->active--;
    rota_loop_timer_stop(u->l, &c->timer);
    if (!c->cancelled)
        c->cb->on_done(c->arg, err, why);
    if (!c->cancelled) /* a cancelled one is freed by reap, from the dead list */
        rota_upstream_call_free(c);
}

static int translate(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR: /* no TLS session: no connection */
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return -ECONNREFUSED;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        return -EPIPE;
    default:
        return -EIO;
    }
}

static void check_done(struct rota_upstream *u)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->m, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct rota_upstream_call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (!c || c->cancelled || c->removed)
            continue;
        CURLcode rc = msg->data.result;
        if (rc == CURLE_OK && !c->headed)
            rc = CURLE_GOT_NOTHING; /* no head at all: nothing to hand on */
        finish(c, translate(rc),
               rc == CURLE_OK ? ""
               : c->err[0]    ? c->err
                              : curl_easy_strerror(rc));
    }
}

static void on_reap(struct rota_loop_defer *d)
{
    struct rota_upstream *u = container_of(d, struct rota_upstream, reap);
    while (u->dead) {
        struct rota_upstream_call *c = u->dead;
        u->dead = c->next_dead;
        rota_upstream_call_free(c);
    }
}

void rota_upstream_timeout_why(const struct rota_upstream_call *c, char *why, size_t n)
{
    if (c->headed)
        snprintf(why, n, "no data from upstream for %u ms", c->idle_ms);
    else
        snprintf(why, n, "no answer from upstream within %u ms", c->first_byte_ms);
}

static void on_call_timer(struct rota_loop_timer *t)
{
    struct rota_upstream_call *c = container_of(t, struct rota_upstream_call, timer);
    char why[64];
    rota_upstream_timeout_why(c, why, sizeof(why));
    finish(c, -ETIMEDOUT, why);
}

/* ---- the answer, from libcurl's callbacks ---- */

static void arm_idle(struct rota_upstream_call *c)
{
    if (c->idle_ms)
        rota_loop_timer_set(c->u->l, &c->timer, c->idle_ms);
    else
        rota_loop_timer_stop(c->u->l, &c->timer);
}

/* One header line: a status line starts a head (a 1xx one is dropped whole), the
 * empty line ends it. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct rota_upstream_call *c = arg;
    size_t len = size * n;
    if (c->cancelled)
        return 0;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        c->status = sp ? atoi(sp + 1) : 0;
        c->head_len = 0;
        return len;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (c->status >= 200 && !c->headed) {
            c->headed = true;
            arm_idle(c);
            c->cb->on_head(c->arg, c->status, c->head ? c->head : "", c->head_len);
        }
        return len;
    }
    if (c->head_len + len > UP_HEAD_MAX)
        return 0;
    if (c->head_len + len + 1 > c->head_cap) {
        size_t cap = c->head_cap ? c->head_cap : 1024;
        while (cap < c->head_len + len + 1)
            cap *= 2;
        char *h = realloc(c->head, cap);
        if (!h)
            return 0;
        c->head = h;
        c->head_cap = cap;
    }
    memcpy(c->head + c->head_len, p, len);
    c->head_len += len;
    c->head[c->head_len] = 0;
    return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    struct rota_upstream_call *c = arg;
    size_t len = size * n;
    if (c->cancelled)
        return 0;
    if (!c->headed) { /* a server that sent no head we could read: take it as is */
        c->headed = true;
        c->cb->on_head(c->arg, c->status, "", 0);
        if (c->cancelled)
            return 0;
    }
    if (c->cb->on_data(c->arg, p, len) == ROTA_UPSTREAM_PAUSE) {
        if (c->cancelled)
            return 0;
        c->paused = true;
        rota_loop_timer_stop(c->u->l, &c->timer);
        return CURL_WRITEFUNC_PAUSE;
    }
    if (c->cancelled)
        return 0;
    arm_idle(c);
    return len;
}

/* The body from the caller's pieces, as libcurl sends it. */
static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct rota_upstream_call *c = arg;
    if (c->cancelled)
        return CURL_READFUNC_ABORT; /* the pieces may be gone */
    size_t want = size * n, got = 0, at = 0;
    for (size_t i = 0; i < c->niov && got < want; i++) {
        size_t len = c->iov[i].iov_len;
        if (c->up_off + got < at + len) {
            size_t from = c->up_off + got - at, k = len - from;
            k = k < want - got ? k : want - got;
            memcpy(buf + got, (const char *)c->iov[i].iov_base + from, k);
            got += k;
        }
        at += len;
    }
    c->up_off += got;
    return got;
}

/* libcurl sends the body again (a reused connection that had closed). */
static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct rota_upstream_call *c = arg;
    if (origin != SEEK_SET || off < 0 || (size_t)off > c->up_len || c->cancelled)
        return CURL_SEEKFUNC_FAIL;
    c->up_off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* The body options: one piece as it is; pieces gathered into the call's buffer when
 * small (libcurl copies a small body into the request anyway), else read from them. */
static int set_body(struct rota_upstream_call *c, const struct rota_upstream_req *q)
{
    CURL *e = c->e;
    const char *body = q->body;
    size_t len = q->body_len;
    if (q->nbody_iov) {
        len = 0;
        for (size_t i = 0; i < q->nbody_iov; i++)
            len += q->body_iov[i].iov_len;
    }
    if (q->nbody_iov && len >= GATHER_MAX) {
        c->iov = q->body_iov;
        c->niov = q->nbody_iov;
        c->up_off = 0;
        c->up_len = len;
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, c);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, c);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        return 0;
    }
    if (q->nbody_iov) {
        if (len + 1 > c->body_cap) {
            char *b = malloc(len + 1);
            if (!b)
                return -ENOMEM;
            free(c->body);
            c->body = b;
            c->body_cap = len + 1;
        }
        size_t at = 0;
        for (size_t i = 0; i < q->nbody_iov; i++) {
            memcpy(c->body + at, q->body_iov[i].iov_base, q->body_iov[i].iov_len);
            at += q->body_iov[i].iov_len;
        }
        c->body[at] = 0;
        body = c->body;
    }
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    return 0;
}

/* ---- calls ---- */

/* A call to fill: a spare one, or a new one. NULL when out of memory. */
static struct rota_upstream_call *call_take(struct rota_upstream *u)
{
    struct rota_upstream_call *c = u->spare;
    if (c) {
        u->spare = c->next;
        u->nspare--;
        return c;
    }
    return calloc(1, sizeof(*c));
}

/* Keep "c" (out of every list, its lines wiped) for the next call, or free it. */
static void call_keep(struct rota_upstream *u, struct rota_upstream_call *c)
{
    wipe_lines(c);
    if (u->nspare >= SPARE_MAX) {
        call_destroy(c);
        return;
    }
    if (c->e)
        curl_easy_reset(c->e); /* its options go; its buffers, the multi's connections stay */
    c->next = u->spare;
    u->spare = c;
    u->nspare++;
}

void rota_upstream_call_free(struct rota_upstream_call *c)
{
    struct rota_upstream *u = c->u;
    rota_loop_timer_stop(u->l, &c->timer);
    if (!c->removed) {
        if (c->h1) {
            rota_h1_cancel(c);
        } else {
            curl_multi_remove_handle(u->m, c->e);
            u->active--;
        }
    }
    if (c->h1) {
        rota_loop_timer_stop(u->l, &c->total);
        rota_loop_undefer(u->l, &c->pump);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        u->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    call_keep(u, c);
}

/* libcurl's options for call "c". 0 or -ENOMEM. */
static int curl_setup(struct rota_upstream *u, struct rota_upstream_call *c,
                      const struct rota_upstream_req *q)
{
    if (!c->e && !(c->e = curl_easy_init()))
        return -ENOMEM;
    int rc = set_body(c, q);
    if (rc)
        return rc;
    CURL *e = c->e;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->nodes);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)q->connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)q->total_ms);
    if (u->ca_file) { /* these CAs alone: no directory of the system's beside them */
        curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (curl_multi_add_handle(u->m, e) != CURLM_OK)
        return -ENOMEM;
    if (c->first_byte_ms)
        rota_loop_timer_set(u->l, &c->timer, c->first_byte_ms);
    return 0;
}

int rota_upstream_start(struct rota_upstream *u, const struct rota_upstream_req *q,
                        const struct rota_upstream_cbs *cb, void *arg,
                        struct rota_upstream_call **out)
{
    struct rota_upstream_call *c = call_take(u);
    if (!c)
        return -ENOMEM;
    c->u = u;
    c->cb = cb;
    c->arg = arg;
    c->timer = (struct rota_loop_timer){.fn = on_call_timer};
    c->next_dead = c->prev = c->next = NULL;
    c->head_len = 0;
    c->status = 0;
    c->first_byte_ms = q->first_byte_ms;
    c->idle_ms = q->idle_ms;
    c->headed = c->paused = c->cancelled = c->removed = false;
    c->err[0] = 0;
    c->h1 = !u->curl_only && rota_h1_takes(c, q->url);
    int rc = rota_upstream_build_headers(c, q, u->ua);
    if (!rc)
        rc = c->h1 ? rota_h1_start(c, q) : curl_setup(u, c, q);
    if (rc) {
        c->removed = true; /* in no multi, and no connection of rota's client's */
        call_keep(u, c);
        return rc;
    }
    u->active++;
    c->next = u->all;
    if (u->all)
        u->all->prev = c;
    u->all = c;
    *out = c;
    return 0;
}

void rota_upstream_resume(struct rota_upstream_call *c)
{
    if (!c->paused || c->cancelled)
        return;
    if (c->h1) {
        rota_h1_resume(c);
        return;
    }
    c->paused = false;
    arm_idle(c);
    curl_easy_pause(c->e, CURLPAUSE_CONT); /* may deliver data before it returns */
    rota_loop_defer(c->u->l, &c->u->kick);
}

void rota_upstream_cancel(struct rota_upstream_call *c)
{
    if (c->cancelled)
        return;
    c->cancelled = true;
    rota_loop_timer_stop(c->u->l, &c->timer);
    if (c->h1)
        rota_h1_cancel(c);
    c->next_dead = c->u->dead;
    c->u->dead = c;
    rota_loop_defer(c->u->l, &c->u->reap);
}

bool rota_upstream_body_sent(const struct rota_upstream_call *c)
{
    if (c->h1)
        return rota_h1_body_sent(c);
    return !c->niov || c->up_off >= c->up_len;
}

unsigned rota_upstream_active(const struct rota_upstream *u)
{
    return u->active;
}

/* ---- the thread's multi ---- */

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void on_kick(struct rota_loop_defer *d)
{
    check_done(container_of(d, struct rota_upstream, kick));
}

int rota_upstream_new(struct rota_upstream **out, struct rota_loop *l,
                      const struct rota_upstream_opts *o)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_curl);
    struct rota_upstream *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->l = l;
    u->timer.fn = on_multi_timer;
    u->reap.fn = on_reap;
    u->kick.fn = on_kick;
    snprintf(u->ua, sizeof(u->ua), "%s", o && o->user_agent ? o->user_agent : "rota-worker");
    u->ca_file = o && o->ca_file ? strdup(o->ca_file) : NULL;
    u->curl_only = o && o->curl_only;
    long keep = o && o->max_host_conns ? (long)o->max_host_conns : 64;
    u->m = curl_multi_init();
    if (!u->m || (o && o->ca_file && !u->ca_file) || rota_h1_pool_new(u, (uint32_t)keep * 4)) {
        if (u->m)
            curl_multi_cleanup(u->m);
        free(u->ca_file);
        free(u);
        return -ENOMEM;
    }
    curl_multi_setopt(u->m, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->m, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->m, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->m, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->m, CURLMOPT_MAXCONNECTS, keep * 4);
    *out = u;
    return 0;
}

void rota_upstream_free(struct rota_upstream *u)
{
    if (!u)
        return;
    on_reap(&u->reap);
    rota_loop_undefer(u->l, &u->reap);
    rota_loop_undefer(u->l, &u->kick);
    while (u->all) {
        u->all->cancelled = true;
        rota_upstream_call_free(u->all);
    }
    while (u->spare) {
        struct rota_upstream_call *c = u->spare;
        u->spare = c->next;
        call_destroy(c);
    }
    rota_loop_timer_stop(u->l, &u->timer);
    curl_multi_cleanup(u->m);
    rota_h1_pool_free(u);
    free(u->ca_file);
    free(u);
}
