/*
 * upstream.c - the dispatch pool's outbound HTTP on libcurl's multi socket interface
 * (upstream.h says what it offers).
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
 * The credential lives in one header line of the call's curl_slist; every line is
 * wiped before the list is freed, and the stack copy once it is appended.
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream.h"

#define HEAD_MAX (64 * 1024) /* a head past this ends the call: -EIO */

struct rota_upstream {
    struct rota_loop *l;
    CURLM *m;
    struct rota_loop_timer timer;
    struct rota_loop_defer reap;
    struct rota_loop_defer kick;     /* collect what a resume finished */
    struct rota_upstream_call *dead; /* cancelled, to remove and free */
    struct rota_upstream_call *all;  /* every call not yet freed */
    unsigned active;
    char ua[64];
    char *ca_file; /* NULL: the system's CA certificates */
};

struct rota_upstream_call {
    struct rota_upstream *u;
    CURL *e;
    struct curl_slist *hdrs;
    const struct rota_upstream_cbs *cb;
    void *arg;
    struct rota_loop_timer timer; /* first byte, then idle */
    struct rota_upstream_call *next_dead, *prev, *next;
    char *head;
    size_t head_len;
    int status;
    uint32_t first_byte_ms, idle_ms;
    bool headed, paused, cancelled, removed;
    char err[CURL_ERROR_SIZE];
};

#define container_of(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

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

static void wipe_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static void call_free(struct rota_upstream_call *c)
{
    struct rota_upstream *u = c->u;
    rota_loop_timer_stop(u->l, &c->timer);
    if (!c->removed) {
        curl_multi_remove_handle(u->m, c->e);
        u->active--;
    }
    curl_easy_cleanup(c->e);
    wipe_headers(c->hdrs);
    if (c->prev)
        c->prev->next = c->next;
    else
        u->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->head);
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
        call_free(c);
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
        call_free(c);
    }
}

static void on_call_timer(struct rota_loop_timer *t)
{
    struct rota_upstream_call *c = container_of(t, struct rota_upstream_call, timer);
    char why[64];
    if (c->headed)
        snprintf(why, sizeof(why), "no data from upstream for %u ms", c->idle_ms);
    else
        snprintf(why, sizeof(why), "no answer from upstream within %u ms", c->first_byte_ms);
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
    if (c->head_len + len > HEAD_MAX)
        return 0;
    char *h = realloc(c->head, c->head_len + len + 1);
    if (!h)
        return 0;
    memcpy(h + c->head_len, p, len);
    c->head = h;
    c->head_len += len;
    h[c->head_len] = 0;
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

/* ---- headers ---- */

static bool listed(const char *name, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(name, *names) == 0)
            return true;
    return false;
}

/* Does the "Name: value\r\n" list "list" (or a comma-separated token list, with
 * "comma") hold "name"? */
static bool in_list(const char *list, const char *name, bool comma)
{
    size_t nl = strlen(name);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t k = comma ? strcspn(p, ", \t") : strcspn(p, ":\r\n");
        if (k == nl && strncasecmp(p, name, nl) == 0)
            return true;
        p += k;
        if (!comma) {
            p = strchr(p, '\n');
            p = p ? p + 1 : NULL;
        }
    }
    return false;
}

bool rota_upstream_passes(const char *name, const char *extra, const char *connection)
{
    static const char *const never[] = {
        /* the client's credentials */
        "authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization",
        "openai-organization", "openai-project", "x-goog-user-project", /* who pays */
        /* hop-by-hop (RFC 9110 7.6.1) */
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "proxy-authenticate",
        /* framing and encoding libcurl and the pool own */
        "host", "content-length", "expect", "accept-encoding", "x-request-id", NULL};
    if (listed(name, never) || strncasecmp(name, "x-rota-", 7) == 0)
        return false;
    if (connection && in_list(connection, name, true))
        return false;
    return !in_list(extra, name, false);
}

static bool sane(const char *s)
{
    return !strpbrk(s, "\r\n");
}

static int add(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        return -ENOMEM;
    *l = n;
    return 0;
}

/* The request's headers into "*out": the client's that pass, the provider's, the key. */
static int build_headers(const struct rota_upstream_req *q, const char *ua,
                         struct curl_slist **out)
{
    struct curl_slist *l = NULL;
    const rota_target *t = q->target;
    const char *conn = rota_http_get(q->client_headers, q->nclient_headers, "connection");
    bool typed = false, agent = false;
    char line[1024];
    int rc = add(&l, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; !rc && i < q->nclient_headers; i++) {
        const struct rota_http_hdr *h = &q->client_headers[i];
        if (!rota_upstream_passes(h->name, t->headers, conn) || !sane(h->value))
            continue;
        typed |= strcasecmp(h->name, "content-type") == 0;
        agent |= strcasecmp(h->name, "user-agent") == 0;
        if ((size_t)snprintf(line, sizeof(line), "%s: %s", h->name, h->value) < sizeof(line))
            rc = add(&l, line);
    }
    if (!rc && !typed)
        rc = add(&l, "Content-Type: application/json");
    if (!rc && !agent &&
        (size_t)snprintf(line, sizeof(line), "User-Agent: %s", ua) < sizeof(line))
        rc = add(&l, line);
    if (!rc && q->request_id && sane(q->request_id) &&
        (size_t)snprintf(line, sizeof(line), "X-Request-Id: %s", q->request_id) < sizeof(line))
        rc = add(&l, line);
    for (const char *p = t->headers; !rc && *p;) { /* "Name: value\r\n" each */
        size_t k = strcspn(p, "\r\n");
        if (k && k < sizeof(line)) {
            memcpy(line, p, k);
            line[k] = 0;
            rc = add(&l, line);
        }
        p += k;
        p += strspn(p, "\r\n");
    }
    if (!rc && t->auth_header[0] && q->key && q->key[0]) {
        char auth[4096];
        if (!sane(q->key) || (size_t)snprintf(auth, sizeof(auth), "%s: %s%s", t->auth_header,
                                              t->auth_scheme, q->key) >= sizeof(auth))
            rc = -EINVAL;
        else
            rc = add(&l, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    if (rc) {
        wipe_headers(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* ---- calls ---- */

int rota_upstream_start(struct rota_upstream *u, const struct rota_upstream_req *q,
                        const struct rota_upstream_cbs *cb, void *arg,
                        struct rota_upstream_call **out)
{
    struct rota_upstream_call *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (struct rota_upstream_call){
        .u = u, .cb = cb, .arg = arg, .first_byte_ms = q->first_byte_ms, .idle_ms = q->idle_ms};
    c->timer.fn = on_call_timer;
    int rc = build_headers(q, u->ua, &c->hdrs);
    if (rc || !(c->e = curl_easy_init())) {
        wipe_headers(c->hdrs);
        free(c);
        return rc ? rc : -ENOMEM;
    }
    CURL *e = c->e;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
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
    if (curl_multi_add_handle(u->m, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        wipe_headers(c->hdrs);
        free(c);
        return -ENOMEM;
    }
    u->active++;
    c->next = u->all;
    if (u->all)
        u->all->prev = c;
    u->all = c;
    if (c->first_byte_ms)
        rota_loop_timer_set(u->l, &c->timer, c->first_byte_ms);
    *out = c;
    return 0;
}

void rota_upstream_resume(struct rota_upstream_call *c)
{
    if (!c->paused || c->cancelled)
        return;
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
    c->next_dead = c->u->dead;
    c->u->dead = c;
    rota_loop_defer(c->u->l, &c->u->reap);
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
    u->m = curl_multi_init();
    if (!u->m || (o && o->ca_file && !u->ca_file)) {
        if (u->m)
            curl_multi_cleanup(u->m);
        free(u);
        return -ENOMEM;
    }
    long keep = o && o->max_host_conns ? (long)o->max_host_conns : 64;
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
        call_free(u->all);
    }
    rota_loop_timer_stop(u->l, &u->timer);
    curl_multi_cleanup(u->m);
    free(u->ca_file);
    free(u);
}
