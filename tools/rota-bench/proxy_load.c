/*
 * proxy_load.c - rota-bench --proxy's own load, for what wrk cannot measure: requests
 * in sequence on one connection (each one's time), SSE streams (each event's delay and
 * each stream's first byte) and idle keep-alive connections held open.
 *
 * DESIGN
 * Blocking sockets on loopback with TCP_NODELAY and a 10 s receive timeout, so a target
 * that stops answering ends the measure instead of hanging it. An answer is read with a
 * small HTTP/1.1 reader: the head, then a body framed by Content-Length or chunked,
 * handed on piece by piece with the instant of the read that brought it. An event's
 * delay is the instant the read that completed it returned, less the instant the
 * upstream wrote into it (proxy_upstream.c): its "t" in a chat chunk passed through, the
 * "tok@" in its text in an event translated from Anthropic's; both read CLOCK_MONOTONIC
 * on this machine.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "proxy.h"

#define RD_CAP   (128 * 1024)
#define WARM_UPS 100

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int lat_init(struct lat *l)
{
    memset(l, 0, sizeof(*l));
    l->hist = calloc(HIST_BUCKETS, sizeof(*l->hist));
    return l->hist ? 0 : -ENOMEM;
}

void lat_reset(struct lat *l)
{
    l->n = l->errors = 0;
    memset(l->hist, 0, HIST_BUCKETS * sizeof(*l->hist));
}

void lat_free(struct lat *l)
{
    free(l->hist);
    l->hist = NULL;
}

static void lat_add(struct lat *l, uint64_t ns)
{
    l->hist[hist_bucket(ns)]++;
    l->n++;
}

double lat_q(const struct lat *l, double q)
{
    uint64_t want = (uint64_t)(q * (double)l->n), seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += l->hist[b];
        if (seen > want)
            return hist_value(b);
    }
    return 0;
}

char *load_request(const char *body, size_t len, size_t *out_len)
{
    char head[256];
    int h = snprintf(head, sizeof(head),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer bench-client\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     len);
    char *r = malloc((size_t)h + len);
    if (!r)
        return NULL;
    memcpy(r, head, (size_t)h);
    memcpy(r + h, body, len);
    *out_len = (size_t)h + len;
    return r;
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The reader of one connection's answers. */
struct rd {
    int fd;
    size_t len, off;
    uint64_t t;     /* when the last read returned */
    uint64_t first; /* when the first read of this answer returned (0: none yet) */
    char buf[RD_CAP];
};

/* Read more; -1 when the peer closed, failed or timed out. */
static int fill(struct rd *r)
{
    if (r->off) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->len == RD_CAP)
        return -1;
    ssize_t k;
    do
        k = read(r->fd, r->buf + r->len, RD_CAP - r->len);
    while (k < 0 && errno == EINTR);
    r->t = now_ns();
    if (k <= 0)
        return -1;
    if (!r->first)
        r->first = r->t;
    r->len += (size_t)k;
    return 0;
}

/* A line ending in CRLF from the reader (NUL-terminated in place), or NULL. */
static char *line(struct rd *r)
{
    for (;;) {
        char *e = memmem(r->buf + r->off, r->len - r->off, "\r\n", 2);
        if (e) {
            char *s = r->buf + r->off;
            *e = 0;
            r->off = (size_t)(e + 2 - r->buf);
            return s;
        }
        if (fill(r) < 0)
            return NULL;
    }
}

typedef void (*on_data)(void *arg, const char *p, size_t n, uint64_t t);

/* "n" body bytes to "fn"; -1 when the connection broke. */
static int take(struct rd *r, uint64_t n, on_data fn, void *arg)
{
    while (n) {
        if (r->off == r->len && fill(r) < 0)
            return -1;
        size_t k = r->len - r->off < n ? r->len - r->off : (size_t)n;
        if (fn)
            fn(arg, r->buf + r->off, k, r->t);
        r->off += k;
        n -= k;
    }
    return 0;
}

/* One whole answer: its status, or -1 when the connection broke or it made no sense. */
static int answer(struct rd *r, on_data fn, void *arg)
{
    r->first = r->off < r->len ? now_ns() : 0;
    char *s = line(r);
    int status;
    if (!s || sscanf(s, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    uint64_t len = 0;
    bool chunked = false;
    while ((s = line(r)) && *s) {
        if (!strncasecmp(s, "content-length:", 15))
            len = strtoull(s + 15, NULL, 10);
        else if (!strncasecmp(s, "transfer-encoding:", 18) && strcasestr(s, "chunked"))
            chunked = true;
    }
    if (!s)
        return -1;
    if (!chunked)
        return take(r, len, fn, arg) < 0 ? -1 : status;
    for (;;) {
        if (!(s = line(r)))
            return -1;
        uint64_t n = strtoull(s, NULL, 16);
        if (!n)
            break;
        if (take(r, n, fn, arg) < 0 || !(s = line(r)))
            return -1;
    }
    while ((s = line(r)) && *s) /* trailers */
        ;
    return s ? status : -1;
}

int load_sequence(uint16_t port, const char *req, size_t len, double seconds, struct lat *l,
                  char *err, size_t n)
{
    struct rd *r = malloc(sizeof(*r));
    if (!r)
        return snprintf(err, n, "out of memory"), -ENOMEM;
    r->fd = -1;
    uint64_t end = 0;
    for (uint64_t i = 0;; i++) {
        if (r->fd < 0) {
            if ((r->fd = dial(port)) < 0) {
                snprintf(err, n, "connect to port %u: %s", port, strerror(-r->fd));
                free(r);
                return -1;
            }
            r->len = r->off = 0;
        }
        if (i == WARM_UPS)
            end = now_ns() + (uint64_t)(seconds * 1e9);
        uint64_t t0 = now_ns();
        int st = send_all(r->fd, req, len) < 0 ? -1 : answer(r, NULL, NULL);
        uint64_t t1 = now_ns();
        if (st != 200) {
            l->errors++;
            close(r->fd);
            r->fd = -1;
            if (l->errors > 100) {
                snprintf(err, n, "port %u: %llu failed requests (last: %d)", port,
                         (unsigned long long)l->errors, st);
                free(r);
                return -1;
            }
        } else if (i >= WARM_UPS) {
            lat_add(l, t1 - t0);
        }
        if (end && t1 >= end)
            break;
    }
    close(r->fd);
    free(r);
    return 0;
}

/* An answer's body, as much as fits. */
struct body {
    char *p;
    size_t len, cap;
};

static void on_body(void *arg, const char *p, size_t n, uint64_t t)
{
    struct body *b = arg;
    (void)t;
    size_t k = b->cap - 1 - b->len < n ? b->cap - 1 - b->len : n;
    memcpy(b->p + b->len, p, k);
    b->len += k;
    b->p[b->len] = 0;
}

int load_one(uint16_t port, const char *req, size_t len, char *body, size_t cap)
{
    int fd = dial(port);
    if (fd < 0)
        return -1;
    struct rd *r = malloc(sizeof(*r));
    struct body b = {body, 0, cap};
    int st = -1;
    body[0] = 0;
    if (r && send_all(fd, req, len) == 0) {
        r->fd = fd;
        r->len = r->off = 0;
        st = answer(r, on_body, &b);
    }
    free(r);
    close(fd);
    return st;
}

/* An SSE stream's events as they arrive: each one's delay. */
struct sse {
    struct lat *ev;
    size_t len;
    uint64_t events;
    char buf[4096];
};

static void on_sse(void *arg, const char *p, size_t n, uint64_t t)
{
    struct sse *s = arg;
    while (n) {
        size_t k = sizeof(s->buf) - 1 - s->len < n ? sizeof(s->buf) - 1 - s->len : n;
        memcpy(s->buf + s->len, p, k);
        s->len += k;
        s->buf[s->len] = 0;
        p += k;
        n -= k;
        char *e;
        while ((e = strstr(s->buf, "\n\n"))) {
            *e = 0;
            const char *v = strstr(s->buf, "\"t\":");
            if (!v)
                v = strstr(s->buf, "tok@");
            if (v) {
                uint64_t at = strtoull(v + 4, NULL, 10);
                lat_add(s->ev, t > at ? t - at : 0);
                s->events++;
            }
            size_t used = (size_t)(e + 2 - s->buf);
            memmove(s->buf, e + 2, s->len - used + 1);
            s->len -= used;
        }
        if (s->len == sizeof(s->buf) - 1)
            s->len = 0; /* an event this long is not the upstream's: drop it */
    }
}

int load_streams(uint16_t port, const char *req, size_t len, double seconds, struct lat *ev,
                 struct lat *first, char *err, size_t n)
{
    struct rd *r = malloc(sizeof(*r));
    struct sse *s = malloc(sizeof(*s));
    int rc = 0;
    if (!r || !s) {
        free(r);
        free(s);
        return snprintf(err, n, "out of memory"), -ENOMEM;
    }
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    for (int k = 0; k < 1 || now_ns() < end; k++) {
        if ((r->fd = dial(port)) < 0) {
            snprintf(err, n, "connect to port %u: %s", port, strerror(-r->fd));
            rc = -1;
            break;
        }
        r->len = r->off = 0;
        s->ev = ev;
        s->len = 0;
        s->events = 0;
        uint64_t t0 = now_ns();
        int st = send_all(r->fd, req, len) < 0 ? -1 : answer(r, on_sse, s);
        close(r->fd);
        if (st != 200 || s->events != PROXY_SSE_EVENTS) {
            snprintf(err, n, "port %u: stream answered %d with %llu of %d events", port, st,
                     (unsigned long long)s->events, PROXY_SSE_EVENTS);
            rc = -1;
            break;
        }
        lat_add(first, r->first - t0);
    }
    free(r);
    free(s);
    return rc;
}

int *load_idle_open(uint16_t port, const char *req, size_t len, uint32_t count, char *err,
                    size_t n)
{
    enum { BATCH = 100 };
    int *fds = malloc(count * sizeof(*fds));
    struct rd *r = malloc(sizeof(*r));
    if (!fds || !r) {
        free(fds);
        free(r);
        snprintf(err, n, "out of memory");
        return NULL;
    }
    uint32_t open = 0;
    while (open < count) {
        uint32_t b = count - open < BATCH ? count - open : BATCH;
        for (uint32_t i = 0; i < b; i++) {
            int fd = dial(port);
            if (fd < 0 || send_all(fd, req, len) < 0) {
                snprintf(err, n, "connection %u of %u to port %u: %s", open + i + 1, count,
                         port, fd < 0 ? strerror(-fd) : "send failed");
                if (fd >= 0)
                    close(fd);
                load_close(fds, open + i);
                free(r);
                return NULL;
            }
            fds[open + i] = fd;
        }
        for (uint32_t i = 0; i < b; i++) {
            r->fd = fds[open + i];
            r->len = r->off = 0;
            int st = answer(r, NULL, NULL);
            if (st != 200) {
                snprintf(err, n, "connection %u of %u to port %u: answered %d", open + i + 1,
                         count, port, st);
                load_close(fds, open + b);
                free(r);
                return NULL;
            }
        }
        open += b;
    }
    free(r);
    return fds;
}

void load_close(int *fds, uint32_t count)
{
    for (uint32_t i = 0; fds && i < count; i++)
        close(fds[i]);
    free(fds);
}

int load_get_status(uint16_t port, const char *path)
{
    int fd = dial(port);
    if (fd < 0)
        return -1;
    char req[256];
    int k = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    struct rd *r = malloc(sizeof(*r));
    int st = -1;
    if (r && send_all(fd, req, (size_t)k) == 0) {
        r->fd = fd;
        r->len = r->off = 0;
        st = answer(r, NULL, NULL);
    }
    free(r);
    close(fd);
    return st;
}
