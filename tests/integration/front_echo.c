/* rota-front-echo: the HTTP front (workers/front.h) on T loop threads with a handler
 * that echoes, streams and answers late, for the integration tests (test_front*).
 *
 *   rota-front-echo [--listen HOST:PORT] [--unix PATH] [--threads T] [--max-conns N]
 *                   [--max-body B] [--max-head B] [--max-headers N] [--header-ms MS]
 *                   [--body-ms MS] [--idle-ms MS] [--send-ms MS]
 *
 * Prints "port N" once every thread listens; stops on SIGTERM or SIGINT, exit 0.
 * Endpoints (any method):
 *   /echo              200, the body back; X-Body-Len, X-Method, the Content-Type sent
 *   /hdr?name=H        200, the value of request header H (404 if absent)
 *   /slow?ms=M         200 "slow" after M ms (answered from a timer, not the handler)
 *   /stream?n=N&ms=M   SSE, N events ("data: i"), one every M ms; n=0: until the client
 *                      leaves
 *   .../error?status=S rota_front_error(S, NULL, the request body): the path picks the
 *                      shape (/v1/messages/error, /v1beta/error, /error)
 *   /stats             this thread's figures and the process's (JSON)
 *   anything else      404 via rota_front_error
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "front.h"

struct thread {
    pthread_t tid;
    struct rota_loop *l;
    struct rota_front *f;
};

static atomic_ulong closes, streams_ended;

/* The value of "name" in query "q" into "out" (n bytes); false if absent. */
static bool qparam(const char *q, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            size_t k = strcspn(p + nl + 1, "&");
            snprintf(out, n, "%.*s", (int)k, p + nl + 1);
            return true;
        }
    }
    return false;
}

static long qnum(const char *q, const char *name, long dflt)
{
    char v[32];
    return qparam(q, name, v, sizeof(v)) ? strtol(v, NULL, 10) : dflt;
}

/* ---- late answers: /slow and /stream ---- */

struct late {
    struct rota_loop_timer t;
    struct rota_front_conn *c;
    struct rota_loop *l;
    long n, i, ms;
    bool stream;
};

static void late_closed(void *arg, struct rota_front_conn *c)
{
    struct late *x = arg;
    atomic_fetch_add(&closes, 1);
    rota_loop_timer_stop(x->l, &x->t);
    if (x->stream)
        rota_front_stream_end(c); /* -EPIPE: the answer is complete all the same */
    else
        rota_front_reply(c, 200, NULL, 0, "late", 4);
    free(x);
}

static void late_tick(struct rota_loop_timer *t)
{
    struct late *x = (struct late *)t;
    if (!x->stream) {
        rota_front_reply(x->c, 200, NULL, 0, "slow", 4);
        free(x);
        return;
    }
    char ev[64];
    int k = snprintf(ev, sizeof(ev), "data: %ld\n\n", x->i);
    int rc = rota_front_stream_write(x->c, ev, (size_t)k);
    if (rc == 0 || rc == -EAGAIN)
        x->i += rc == 0;
    if (x->n && x->i >= x->n) {
        rota_front_stream_end(x->c);
        atomic_fetch_add(&streams_ended, 1);
        free(x);
        return;
    }
    rota_loop_timer_set(x->l, &x->t, (uint64_t)x->ms);
}

static void late_start(struct thread *th, struct rota_front_conn *c, const char *q, bool stream)
{
    struct late *x = calloc(1, sizeof(*x));
    if (!x) {
        rota_front_error(c, 503, NULL, "out of memory");
        return;
    }
    *x = (struct late){.c = c,
                       .l = th->l,
                       .stream = stream,
                       .n = qnum(q, "n", 10),
                       .ms = qnum(q, "ms", stream ? 10 : 100)};
    x->t.fn = late_tick;
    rota_front_on_close(c, late_closed, x);
    if (stream) {
        static const struct rota_http_hdr h[] = {{"Content-Type", "text/event-stream"}};
        rota_front_stream_begin(c, 200, h, 1);
    }
    rota_loop_timer_set(th->l, &x->t, (uint64_t)x->ms);
}

/* ---- the handler ---- */

static void stats(struct thread *th, struct rota_front_conn *c)
{
    struct rota_front_stats s;
    rota_front_stats(th->f, &s);
    struct mallinfo2 mi = mallinfo2();
    char body[512];
    int k =
        snprintf(body, sizeof(body),
                 "{\"conns\":%llu,\"accepted\":%llu,\"refused\":%llu,\"requests\":%llu,"
                 "\"bytes_conns\":%llu,\"bytes_pool\":%llu,\"heap\":%zu,"
                 "\"closes\":%lu,\"streams_ended\":%lu}",
                 (unsigned long long)s.conns, (unsigned long long)s.accepted,
                 (unsigned long long)s.refused, (unsigned long long)s.requests,
                 (unsigned long long)s.bytes_conns, (unsigned long long)s.bytes_pool,
                 mi.uordblks + mi.hblkhd, atomic_load(&closes), atomic_load(&streams_ended));
    static const struct rota_http_hdr h[] = {{"Content-Type", "application/json"}};
    rota_front_reply(c, 200, h, 1, body, (size_t)k);
}

static void handle(void *arg, struct rota_front_conn *c, const struct rota_front_req *r)
{
    struct thread *th = arg;
    if (!strcmp(r->path, "/echo")) {
        char len[32];
        snprintf(len, sizeof(len), "%zu", r->body_len);
        const char *ct = rota_front_header(r, "content-type");
        struct rota_http_hdr h[] = {{"X-Body-Len", len},
                                    {"X-Method", r->method},
                                    {"Content-Type", ct ? ct : "application/octet-stream"}};
        rota_front_reply(c, 200, h, 3, r->body, r->body_len);
    } else if (!strcmp(r->path, "/hdr")) {
        char name[128];
        const char *v =
            qparam(r->query, "name", name, sizeof(name)) ? rota_front_header(r, name) : NULL;
        if (v)
            rota_front_reply(c, 200, NULL, 0, v, strlen(v));
        else
            rota_front_error(c, 404, NULL, "no such header");
    } else if (!strcmp(r->path, "/slow")) {
        late_start(th, c, r->query, false);
    } else if (!strcmp(r->path, "/stream")) {
        late_start(th, c, r->query, true);
    } else if (strlen(r->path) >= 6 && !strcmp(r->path + strlen(r->path) - 6, "/error")) {
        rota_front_error(c, (int)qnum(r->query, "status", 400), NULL, r->body);
    } else if (!strcmp(r->path, "/stats")) {
        stats(th, c);
    } else {
        rota_front_error(c, 404, NULL, "no such endpoint");
    }
}

/* ---- main ---- */

static void *run(void *arg)
{
    struct thread *th = arg;
    int rc = rota_loop_run(th->l);
    if (rc < 0)
        fprintf(stderr, "rota-front-echo: loop: %s\n", strerror(-rc));
    return NULL;
}

static sigset_t stop_set;
static struct thread *threads;
static int nthreads;

static void *signals(void *arg)
{
    int sig;
    sigwait(&stop_set, &sig);
    for (int i = 0; i < nthreads; i++)
        rota_loop_stop(threads[i].l);
    return NULL;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "rota-front-echo: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
    exit(1);
}

int main(int argc, char **argv)
{
    struct rota_front_opts o = {.handler = handle};
    char host[128] = "127.0.0.1", err[256];
    const char *unix_path = NULL;
    int port = 0;
    nthreads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        unsigned long n = strtoul(v, NULL, 10);
        if (!strcmp(k, "--listen")) {
            const char *colon = strrchr(v, ':');
            snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - v) : 0, v);
            port = colon ? atoi(colon + 1) : 0;
        } else if (!strcmp(k, "--unix"))
            unix_path = v;
        else if (!strcmp(k, "--threads"))
            nthreads = (int)n;
        else if (!strcmp(k, "--max-conns"))
            o.max_conns = (uint32_t)n;
        else if (!strcmp(k, "--max-body"))
            o.max_body = n;
        else if (!strcmp(k, "--max-head"))
            o.max_head = (uint32_t)n;
        else if (!strcmp(k, "--max-headers"))
            o.max_headers = (uint32_t)n;
        else if (!strcmp(k, "--header-ms"))
            o.header_timeout_ms = (uint32_t)n;
        else if (!strcmp(k, "--body-ms"))
            o.body_timeout_ms = (uint32_t)n;
        else if (!strcmp(k, "--idle-ms"))
            o.idle_timeout_ms = (uint32_t)n;
        else if (!strcmp(k, "--send-ms"))
            o.send_timeout_ms = (uint32_t)n;
        else {
            fprintf(stderr, "rota-front-echo: unknown option %s\n", k);
            return 2;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { /* as many connections as allowed */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int ufd = -1;
    if (unix_path && (ufd = rota_front_listen_unix(unix_path, 0600, err, sizeof(err))) < 0) {
        fprintf(stderr, "rota-front-echo: %s\n", err);
        return 1;
    }
    threads = calloc((size_t)nthreads, sizeof(*threads));
    for (int i = 0; i < nthreads; i++) {
        struct thread *th = &threads[i];
        int rc = rota_loop_new(&th->l, NULL);
        if (rc < 0)
            die("loop", rc);
        o.arg = th;
        if ((rc = rota_front_new(&th->f, th->l, &o)) < 0)
            die("front", rc);
        if ((rc = rota_front_listen_tcp(th->f, host, (uint16_t)port, err, sizeof(err))) < 0) {
            fprintf(stderr, "rota-front-echo: %s\n", err);
            return 1;
        }
        port = rc; /* the other threads share it (SO_REUSEPORT) */
        if (ufd >= 0 && (rc = rota_front_adopt(th->f, ufd, false)) < 0)
            die("unix listener", rc);
    }
    printf("port %d\n", port);
    fflush(stdout);
    pthread_t sig;
    pthread_create(&sig, NULL, signals, NULL);
    for (int i = 1; i < nthreads; i++)
        pthread_create(&threads[i].tid, NULL, run, &threads[i]);
    run(&threads[0]); /* on the main thread: its allocations are mallinfo2's arena */
    for (int i = 1; i < nthreads; i++)
        pthread_join(threads[i].tid, NULL);
    pthread_join(sig, NULL);
    for (int i = 0; i < nthreads; i++) {
        rota_front_free(threads[i].f);
        rota_loop_free(threads[i].l);
    }
    if (ufd >= 0) {
        close(ufd);
        unlink(unix_path);
    }
    free(threads);
    return 0;
}
