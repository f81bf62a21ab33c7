/*
 * rota-mockprovider - a fake of every provider rota talks to (docs: PROVIDERS.md), for
 * tests, the demo and benchmarks; the product never uses it.
 *
 *   rota-mockprovider --config FILE.json [--port N] [--tls-cert PEM --tls-key PEM]
 *
 * Listens on 127.0.0.1 only (--port 0, the default, picks a free port) and prints
 * "listening on 127.0.0.1:PORT" as its first line. With --tls-cert and --tls-key (a
 * certificate chain and its private key, PEM files) it speaks HTTPS only, control
 * endpoints included (libmicrohttpd's GnuTLS; a build without TLS refuses the options).
 * Each configured account is found by its credential wherever its provider sends it
 * (Authorization: Bearer or token, x-api-key, x-goog-api-key or ?key=, api-key), answers
 * that provider's endpoints in that provider's shapes, counts each call against its
 * limits and refuses in the provider's own 429 once they are reached. An unknown
 * credential gets a 401 in the shape of the provider the request looks like. Control
 * endpoints on the same port:
 *   POST /_mock/fault?...   inject a fault (faults.c lists the parameters)
 *   POST /_mock/clear       remove every fault
 *   GET  /_mock/stats       calls per account and per status, the usage its answers
 *                           reported (in all, and per answer for the latest), credentials
 *                           a call carried besides its account's, and what the latest call
 *                           asked for (model, X-Request-Id, include_usage) (accounts.c)
 *   POST /_mock/reset       zero every counter, window use and credits used included
 * OpenAI chat completions and Anthropic messages with "stream": true, and Gemini's and
 * Code Assist's :streamGenerateContent?alt=sse, answer in SSE (stream.c). A chat that
 * declares tools, carries tool calls or results, or asks for thinking is answered by a
 * scripted tool-using model, which checks the history as each provider does (tools.c). SIGTERM
 * or SIGINT ends it with status 0. Keys are never printed, nor echoed but by the echo_key fault
 * (faults.c), which is there to echo one.
 *
 * The config (accounts.c reads it; each provider's file says what it makes of it):
 *   {"latency_ms": 0, "tokens_per_call": 50, "accounts": [{
 *     "key": "sk-...", "provider": "openai" | "azure-openai" | "anthropic" | "gemini" |
 *       "github-copilot" | "github" | "antigravity" | "openrouter" | "llamacpp",
 *     "name": "...",                    (default PROVIDER-INDEX; what stats and faults use)
 *     "limits": {"requests": N, "tokens": N, "window": "1m", "reset_at": "RFC 3339"},
 *     "models": {"MODEL": {...as limits...}},     (gemini, antigravity: per-model quotas)
 *     "credits": {"limit": 10.0 | null, "usage": 2.5, "per_call": 0.01},   (openrouter)
 *     "plan": "paid" | "free",                    (github-copilot)
 *     "tier": "free" | "paid",                    (gemini quotaId, openrouter is_free_tier)
 *     "details_order": ["QuotaFailure", "Help", "RetryInfo"],   (gemini 429 details)
 *     "project": "...",                           (antigravity)
 *     "limit_status": 403 | 429,                  (github)
 *     "slots": N | {"total": N, "busy": N, "exposed": bool}, "loading": bool  (llamacpp)
 *   }]}
 * Windows are fixed, counted from the start of the process or from "reset_at"; each
 * provider has its own default window (1m; gemini 1d, github 1h, copilot 30d,
 * antigravity 7d). A call counts one request and "tokens_per_call" tokens.
 *
 * DESIGN
 * libmicrohttpd runs a polling thread that accepts and one thread per connection, which
 * calls on_request; a handler may therefore sleep (latency) or hold its connection (a
 * "hang" fault) without delaying anyone else. SIGTERM and SIGINT are blocked in every
 * thread and taken by sigwait in main, which then sets mock.stopping (every sleep and
 * hold looks at it at least every 50 ms) and stops the daemon, joining the threads. All
 * counters and the fault table are under mock.lock; a call takes it twice: once to find
 * its account and fault, once to count and build its answer, never while it waits.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mock.h"
#include "rota_version.h"

#define BODY_MAX (1u << 20)
#define SLICE_MS 50

/* A request being received: its body so far. */
struct req {
    char *body;
    size_t len, cap;
    bool too_big;
};

/* ---- helpers the modules use ---- */

const char *mock_call_query(const struct mock_call *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool mock_path_is(const struct mock_call *c, const char *method, const char *path)
{
    return strcmp(c->method, method) == 0 && strcmp(c->path, path) == 0;
}

static const char *header(const struct mock_call *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

static bool starts(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- waiting ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep "ms", or less if the server is stopping. */
static void pause_ms(struct mock *m, unsigned ms)
{
    int64_t end = mono_ms() + ms;
    for (int64_t now = mono_ms();
         now < end && !atomic_load_explicit(&m->stopping, memory_order_relaxed);
         now = mono_ms()) {
        int64_t left = end - now < SLICE_MS ? end - now : SLICE_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Hold "conn" for hang fault "f" until the fault ends. Returns false when the client went
 * away or the server is stopping (drop the connection), true to answer as usual. */
static bool hold(struct mock *m, struct MHD_Connection *conn, const struct mock_fault *f)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    int64_t start = mono_ms();
    for (;;) {
        if (atomic_load_explicit(&m->stopping, memory_order_relaxed))
            return false;
        if (f->ms && mono_ms() - start >= f->ms)
            return true;
        pthread_mutex_lock(&m->lock);
        bool alive = mock_fault_alive(m, f->id, mock_now_ms());
        pthread_mutex_unlock(&m->lock);
        if (!alive)
            return true;
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};
        if (poll(&p, fd >= 0, SLICE_MS) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return false;
    }
}

/* ---- finding the account ---- */

/* The provider a request without a known credential looks like, for the shape of its
 * 401. */
static const struct mock_provider_ops *guess(const struct mock_call *c)
{
    const char *auth = header(c, "Authorization"), *p = c->path;
    if (header(c, "api-key") || strstr(p, "/openai/deployments/"))
        return &mock_azure_ops;
    if (header(c, "x-api-key") || strcmp(p, "/v1/messages") == 0)
        return &mock_anthropic_ops;
    if (starts(p, "/v1internal:"))
        return &mock_antigravity_ops;
    if (header(c, "x-goog-api-key") || mock_call_query(c, "key") || starts(p, "/v1beta/"))
        return &mock_gemini_ops;
    if (starts(p, "/api/v1/"))
        return &mock_openrouter_ops;
    if (starts(p, "/copilot_internal/") || strcmp(p, "/chat/completions") == 0)
        return &mock_copilot_ops;
    if ((auth && strncasecmp(auth, "token ", 6) == 0) || strcmp(p, "/rate_limit") == 0)
        return &mock_github_ops;
    if (!strcmp(p, "/completion") || !strcmp(p, "/slots") || !strcmp(p, "/health"))
        return &mock_llamacpp_ops;
    return &mock_openai_ops;
}

/* The account whose credential the request carries, wherever its provider puts it; a
 * request with no credential at all reaches a keyless llama.cpp account, and the health
 * and slot endpoints reach the first llama.cpp account. Sets "*presented" when some
 * credential was sent. Lock held. */
static struct mock_account *find(struct mock *m, const struct mock_call *c, bool *presented)
{
    const char *auth = header(c, "Authorization");
    const char *keys[5] = {NULL, header(c, "x-api-key"), header(c, "x-goog-api-key"),
                           header(c, "api-key"), mock_call_query(c, "key")};
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        keys[0] = auth + 7;
    else if (auth && strncasecmp(auth, "token ", 6) == 0)
        keys[0] = auth + 6;
    *presented = false;
    for (size_t i = 0; i < 5; i++) {
        *presented |= keys[i] != NULL;
        struct mock_account *a = mock_account_find(m, keys[i]);
        if (!a)
            continue;
        for (size_t k = 0; k < 5; k++) /* a client's own key that came along */
            m->foreign_credentials += k != i && keys[k] && strcmp(keys[k], a->key) != 0;
        return a;
    }
    bool probe = strcmp(c->path, "/health") == 0 || strcmp(c->path, "/slots") == 0;
    for (size_t i = 0; i < m->naccounts; i++) {
        struct mock_account *a = &m->accounts[i];
        if (a->provider == MOCK_LLAMACPP && ((!*presented && !a->key[0]) || probe))
            return a;
    }
    return NULL;
}

/* ---- answering ---- */

static void count(struct mock *m, struct mock_account *a, int status)
{
    int s = status > 0 && status < MOCK_STATUS_MAX ? status : 0;
    m->status[s]++;
    if (a) {
        a->calls++;
        a->status[s]++;
    }
}

/* Build the answer for account "a" under fault "f" (NULL: none). Lock held. */
static void answer(struct mock_call *c, struct mock_account *a, const struct mock_fault *f,
                   struct mock_reply *r)
{
    const struct mock_provider_ops *ops = mock_providers[a->provider];
    bool shaped = f && (f->kind == MOCK_FAULT_DRIP || f->kind == MOCK_FAULT_HOLD);
    c->chunks = shaped && f->chunks ? f->chunks : 3;
    c->pad = shaped ? f->pad : 0;
    if (f && f->kind == MOCK_FAULT_5XX) {
        ops->error(r, f->status, "injected fault: the server failed");
    } else if (f && f->kind == MOCK_FAULT_ECHO_KEY) {
        static const char *const creds[] = {"Authorization", "x-api-key", "x-goog-api-key",
                                            "api-key"};
        const char *cred = NULL;
        for (size_t i = 0; !cred && i < sizeof(creds) / sizeof(creds[0]); i++)
            cred = header(c, creds[i]);
        char msg[600];
        snprintf(msg, sizeof(msg), "Incorrect API key provided: %s", cred ? cred : "");
        ops->error(r, f->status, msg);
    } else if (f && f->kind == MOCK_FAULT_429) {
        struct mock_view v;
        mock_bucket_view(&a->limits, c->now_ms, false, &v);
        struct mock_hit h = {.what = "requests",
                             .reason = f->reason[0] ? f->reason : NULL,
                             .limit = v.limit,
                             .used = v.used,
                             .window_ms = a->limits.window_ms,
                             .reset_ms = c->now_ms + (int64_t)f->retry_after * 1000,
                             .retry_ms = (int64_t)f->retry_after * 1000};
        ops->limited(c, a, &h, r);
        if (f->bare) {
            mock_reply_unheader(r, "retry-after");
            mock_reply_unheader(r, "retry-after-ms");
        }
    } else {
        ops->serve(c, a, r);
    }
    if (f && f->kind == MOCK_FAULT_MALFORMED)
        mock_fault_garble(r);
    if (f && f->kind == MOCK_FAULT_BADSSE && r->stream.n)
        mock_stream_garble(r);
    if (f && f->kind == MOCK_FAULT_OVERSIZED)
        mock_fault_inflate(r, f->size);
    if (!r->type)
        r->type = ops->type;
    r->stream.cut_after = f && f->kind == MOCK_FAULT_CUT ? (long)f->after : -1;
    r->stream.gap_ms = shaped ? f->ms : 0;
    r->stream.hold_after = f && f->kind == MOCK_FAULT_HOLD ? (long)f->after : -1;
    r->stream.hold_id = f ? f->id : 0;
}

/* A provider call: find the account, apply the fault, wait, answer, count. Returns
 * false to drop the connection unanswered. */
static bool provider_call(struct mock *m, struct mock_call *c, struct MHD_Connection *conn,
                          struct mock_reply *r)
{
    bool presented, post = strcmp(c->method, "POST") == 0;
    struct mock_fault f;
    pthread_mutex_lock(&m->lock);
    struct mock_account *a = find(m, c, &presented);
    if (!a) {
        const struct mock_provider_ops *ops = guess(c);
        ops->error(r, 401, presented ? "invalid credentials" : "missing credentials");
        r->type = ops->type;
        m->unknown_key++;
        count(m, NULL, r->status);
        pthread_mutex_unlock(&m->lock);
        return true;
    }
    bool faulted = mock_fault_take(m, a, c->now_ms, &f);
    if (post) { /* a call, not a probe's look */
        const char *model = json_string_value(json_object_get(c->body, "model"));
        const char *rid = header(c, "X-Request-Id");
        snprintf(m->last_model, sizeof(m->last_model), "%s", model ? model : "");
        snprintf(m->last_request_id, sizeof(m->last_request_id), "%s", rid ? rid : "");
        m->last_usage_asked = json_is_true(
            json_object_get(json_object_get(c->body, "stream_options"), "include_usage"));
    }
    a->inflight += post;
    pthread_mutex_unlock(&m->lock);

    pause_ms(m, m->latency_ms);
    if (faulted && (f.kind == MOCK_FAULT_LATENCY || f.kind == MOCK_FAULT_ECHO_KEY))
        pause_ms(m, f.ms);
    bool keep = !(faulted && f.kind == MOCK_FAULT_HANG) || hold(m, conn, &f);

    pthread_mutex_lock(&m->lock);
    c->now_ms = mock_now_ms();
    if (keep) {
        answer(c, a, faulted ? &f : NULL, r);
        count(m, a, r->status);
    } else {
        a->dropped++;
    }
    a->inflight -= post;
    pthread_mutex_unlock(&m->lock);
    return keep;
}

static void ok(struct mock_reply *r)
{
    mock_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

/* /_mock/...: faults, stats, reset. */
static void control(struct mock *m, struct mock_call *c, struct mock_reply *r)
{
    if (mock_path_is(c, "POST", "/_mock/fault")) {
        mock_fault_add(c, r);
        return;
    }
    pthread_mutex_lock(&m->lock);
    if (mock_path_is(c, "POST", "/_mock/clear")) {
        mock_fault_clear(m);
        ok(r);
    } else if (mock_path_is(c, "POST", "/_mock/reset")) {
        mock_counts_reset(m);
        ok(r);
    } else if (mock_path_is(c, "GET", "/_mock/stats")) {
        mock_reply_json(r, 200, mock_stats(m));
    } else {
        mock_reply_json(r, 404,
                        json_pack("{s:{s:s}}", "error", "message", "no such control endpoint"));
    }
    pthread_mutex_unlock(&m->lock);
}

/* A streamed answer being sent: the events, which one and how far into it. */
struct sending {
    struct mock *m;
    struct mock_stream s;
    size_t i, off, len; /* the event being sent, how far, its length */
};

/* A hold fault's stream: wait until the fault ends. False when the server is stopping. */
static bool held(struct sending *x)
{
    struct mock *m = x->m;
    pthread_mutex_lock(&m->lock);
    m->holding++;
    pthread_mutex_unlock(&m->lock);
    bool alive = true;
    while (alive && !atomic_load_explicit(&m->stopping, memory_order_relaxed)) {
        pause_ms(m, SLICE_MS);
        pthread_mutex_lock(&m->lock);
        alive = mock_fault_alive(m, x->s.hold_id, mock_now_ms());
        pthread_mutex_unlock(&m->lock);
    }
    pthread_mutex_lock(&m->lock);
    m->holding--;
    pthread_mutex_unlock(&m->lock);
    return !alive;
}

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sending *x = cls;
    if (x->s.cut_after >= 0 && x->i >= (size_t)x->s.cut_after)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* dropped mid-answer */
    if (x->i >= x->s.n)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (x->off == 0 && x->i > 0 && x->s.gap_ms)
        pause_ms(x->m, x->s.gap_ms);
    if (x->off == 0 && x->s.hold_after >= 0 && x->i == (size_t)x->s.hold_after) {
        x->s.hold_after = -1; /* once */
        if (!held(x))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (atomic_load_explicit(&x->m->stopping, memory_order_relaxed))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    const char *ev = x->s.ev[x->i];
    if (x->off == 0)
        x->len = strlen(ev);
    size_t left = x->len - x->off, n = left < max ? left : max;
    memcpy(buf, ev + x->off, n);
    x->off += n;
    if (x->off == x->len) {
        x->i++;
        x->off = 0;
    }
    return (ssize_t)n;
}

static void sent(void *cls)
{
    struct sending *x = cls;
    for (size_t i = 0; i < x->s.n; i++)
        free(x->s.ev[i]);
    free(x);
}

static struct MHD_Response *stream_response(struct mock *m, struct mock_reply *r)
{
    struct sending *x = calloc(1, sizeof(*x));
    if (!x) {
        for (size_t i = 0; i < r->stream.n; i++)
            free(r->stream.ev[i]);
        return NULL;
    }
    x->m = m;
    x->s = r->stream;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 65536, read_events, x, sent);
    if (!resp)
        sent(x);
    return resp;
}

static enum MHD_Result respond(struct mock *m, struct MHD_Connection *conn,
                               struct mock_reply *r)
{
    struct MHD_Response *resp =
        r->stream.n ? stream_response(m, r)
        : r->body   ? MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE)
                    : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r->stream.n)
        free(r->body);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->type ? r->type : "application/json");
    for (size_t i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result rc =
        MHD_queue_response(conn, (unsigned)(r->status ? r->status : 500), resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct mock *m = cls;
    struct req *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof(*q));
        *con_cls = q;
        return q ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (q->too_big || q->len + n > BODY_MAX) {
            q->too_big = true;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n + 1)
                cap *= 2;
            char *b = realloc(q->body, cap);
            if (!b)
                return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload_data, n);
        q->len += n;
        return MHD_YES;
    }
    struct mock_call c = {
        .m = m, .method = method, .path = url, .now_ms = mock_now_ms(), .conn = conn};
    struct mock_reply r = {0};
    c.body = q->len ? json_loadb(q->body, q->len, JSON_DECODE_ANY, NULL) : NULL;
    c.body_len = q->len;
    bool keep = true;
    if (starts(url, "/_mock/")) {
        control(m, &c, &r);
    } else if (q->too_big) {
        const struct mock_provider_ops *ops = guess(&c);
        ops->error(&r, 413, "request body too large");
        r.type = ops->type;
    } else {
        keep = provider_call(m, &c, conn, &r);
    }
    json_decref(c.body);
    if (!keep) {
        free(r.body);
        for (size_t i = 0; i < r.stream.n; i++)
            free(r.stream.ev[i]);
        return MHD_NO;
    }
    return respond(m, conn, &r);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct req *q = *con_cls;
    if (q) {
        free(q->body);
        free(q);
        *con_cls = NULL;
    }
}

/* ---- startup ---- */

static int listen_on(unsigned port, unsigned *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 512) ||
        getsockname(fd, (struct sockaddr *)&a, &alen)) {
        int e = -errno;
        close(fd);
        return e;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rota-mockprovider --config FILE.json [--port N] [--tls-cert PEM "
               "--tls-key PEM]\n"
               "  --config FILE    accounts, limits and latency (see the top of main.c)\n"
               "  --port N         loopback port to listen on; 0 (default) picks one\n"
               "  --tls-cert PEM   serve HTTPS with this certificate (chain)...\n"
               "  --tls-key PEM    ...and its private key\n"
               "  --version        print the version and exit\n");
}

struct args {
    const char *config, *tls_cert, *tls_key;
    unsigned port;
};

/* Parse the command line into "a"; returns -1 to go on, else an exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"tls-cert", required_argument, NULL, 'C'},
                                         {"tls-key", required_argument, NULL, 'K'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        if (o == 'V') {
            printf("rota-mockprovider %s\n", ROTA_VERSION);
            return 0;
        }
        if (o == 'c' || o == 'C' || o == 'K') {
            *(o == 'c' ? &a->config : o == 'C' ? &a->tls_cert : &a->tls_key) = optarg;
            continue;
        }
        if (o == 'p') {
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!errno && end != optarg && !*end && optarg[0] != '-' && v <= 65535) {
                a->port = (unsigned)v;
                continue;
            }
        }
        usage(o == 'h' ? stdout : stderr);
        return o == 'h' ? 0 : 2;
    }
    if (optind != argc || !a->config || !a->tls_cert != !a->tls_key) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* The whole of the small file "path", NUL-terminated (malloc'd), or NULL with a
 * message. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = f ? malloc(BODY_MAX + 1) : NULL;
    size_t n = buf ? fread(buf, 1, BODY_MAX, f) : 0;
    bool ok = buf && !ferror(f) && feof(f) && n > 0;
    int e = errno;
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "rota-mockprovider: %s: %s\n", path,
                f && buf ? "empty, unreadable or larger than 1 MiB" : strerror(e));
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Start the daemon on listening socket "fd", with TLS when "a" asks for it. */
static struct MHD_Daemon *start(struct mock *m, const struct args *a, int fd)
{
    char *cert = NULL, *key = NULL;
    if (a->tls_cert && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        fprintf(stderr, "rota-mockprovider: this libmicrohttpd has no TLS\n");
        return NULL;
    }
    if (a->tls_cert && (!(cert = slurp(a->tls_cert)) || !(key = slurp(a->tls_key)))) {
        free(cert);
        return NULL;
    }
    struct MHD_OptionItem tls[] = {{MHD_OPTION_HTTPS_MEM_KEY, 0, key},
                                   {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
                                   {MHD_OPTION_END, 0, NULL}};
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
                     (a->tls_cert ? MHD_USE_TLS : 0);
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_ARRAY,
                         a->tls_cert ? tls : tls + 2, MHD_OPTION_END);
    if (key) /* libmicrohttpd has parsed them by now */
        explicit_bzero(key, strlen(key));
    free(key);
    free(cert);
    return d;
}

int main(int argc, char **argv)
{
    static struct mock m = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct args a = {0};
    unsigned bound = 0;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    m.start_ms = mock_now_ms();
    if (mock_config_load(&m, a.config)) {
        mock_config_free(&m);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int fd = listen_on(a.port, &bound);
    struct MHD_Daemon *d = NULL;
    if (fd >= 0)
        d = start(&m, &a, fd);
    if (!d) {
        fprintf(stderr, "rota-mockprovider: cannot serve on 127.0.0.1:%u: %s\n", a.port,
                strerror(fd < 0 ? -fd : EIO));
        if (fd >= 0)
            close(fd);
        mock_config_free(&m);
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", bound);
    fflush(stdout);
    int sig;
    while (sigwait(&set, &sig) != 0)
        ;
    atomic_store_explicit(&m.stopping, true, memory_order_relaxed);
    MHD_stop_daemon(d);
    mock_config_free(&m);
    return 0;
}
