/*
 * front_it.h - for the front's integration tests: start and stop a rota-front-echo
 * process, talk to it over real sockets, read HTTP/1.1 responses as a client does.
 * Header-only (static functions), included by test_front.c, test_front_idle.c and
 * test_pool_hostile.c.
 */
#ifndef ROTA_FRONT_IT_H
#define ROTA_FRONT_IT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct server {
    pid_t pid;
    int port;
};

/* Start rota-front-echo with "args" (NULL-terminated); fails the test if it does not
 * say its port. */
static inline void server_start(struct server *s, const char *const *args)
{
    const char *dir = getenv("ROTA_TEST_BIN");
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/tests/rota-front-echo", dir ? dir : ".");
    int p[2];
    assert_int_equal(pipe(p), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        const char *argv[32] = {bin};
        int n = 1;
        for (; args && args[n - 1] && n < 31; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    assert_non_null(f);
    if (fscanf(f, "port %d", &s->port) != 1)
        fail_msg("%s did not start", bin);
    fclose(f);
}

/* Stop it with SIGTERM: it must exit 0 (under ASan, with no leak). */
static inline void server_stop(struct server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int st;
    assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
    s->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("rota-front-echo ended with status %#x", st);
}

static inline int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        fail_msg("connect to port %d: %s", port, strerror(errno));
    struct timeval tv = {10, 0}; /* a test that waits longer has failed */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static inline void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0)
            fail_msg("send: %s", strerror(errno));
        c += k;
        n -= (size_t)k;
    }
}

static inline void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* A client's reading side: bytes received and not yet consumed. */
struct reader {
    int fd;
    char buf[1 << 16];
    size_t len;
};

struct resp {
    int status;
    char head[8192]; /* status line and headers, NUL-terminated */
    char body[1 << 15];
    size_t body_len;
};

/* Receive more; false at end of stream (or error, or the 10 s timeout). */
static inline bool more(struct reader *r)
{
    if (r->len == sizeof(r->buf))
        return false;
    ssize_t k = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
    if (k <= 0)
        return false;
    r->len += (size_t)k;
    return true;
}

static inline void consume(struct reader *r, size_t n)
{
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

/* The value of header "name" in "p"'s head, into "out"; false if absent. */
static inline bool resp_header(const struct resp *p, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(p->head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        if (!strncasecmp(l + 2, name, nl) && l[2 + nl] == ':') {
            const char *v = l + 3 + nl;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
            return true;
        }
    }
    return false;
}

/* Read one response (1xx ones included) as a client does: Content-Length, chunked, or
 * to the end of the stream. Returns false if the stream ended first. */
static inline bool read_resp(struct reader *r, struct resp *p)
{
    memset(p, 0, sizeof(*p));
    char *end;
    while (!(end = memmem(r->buf, r->len, "\r\n\r\n", 4)))
        if (!more(r))
            return false;
    size_t hl = (size_t)(end - r->buf) + 4;
    if (hl >= sizeof(p->head))
        return false;
    memcpy(p->head, r->buf, hl);
    consume(r, hl);
    if (sscanf(p->head, "HTTP/1.%*d %d", &p->status) != 1)
        return false;
    char v[64];
    if (p->status < 200 || p->status == 204 || p->status == 304)
        return true;
    if (resp_header(p, "content-length", v, sizeof(v))) {
        size_t want = strtoul(v, NULL, 10);
        while (r->len < want)
            if (!more(r))
                return false;
        p->body_len = want < sizeof(p->body) ? want : sizeof(p->body) - 1;
        memcpy(p->body, r->buf, p->body_len);
        consume(r, want);
    } else if (resp_header(p, "transfer-encoding", v, sizeof(v))) {
        for (;;) {
            char *crlf;
            while (!(crlf = memmem(r->buf, r->len, "\r\n", 2)))
                if (!more(r))
                    return false;
            size_t sz = strtoul(r->buf, NULL, 16), line = (size_t)(crlf - r->buf) + 2;
            while (r->len < line + sz + 2)
                if (!more(r))
                    return false;
            if (p->body_len + sz < sizeof(p->body)) {
                memcpy(p->body + p->body_len, r->buf + line, sz);
                p->body_len += sz;
            }
            consume(r, line + sz + 2);
            if (sz == 0)
                break;
        }
    } else {
        while (more(r))
            ;
        p->body_len = r->len < sizeof(p->body) ? r->len : sizeof(p->body) - 1;
        memcpy(p->body, r->buf, p->body_len);
        r->len = 0;
    }
    p->body[p->body_len] = '\0';
    return true;
}

/* Whether the server has closed the connection (end of stream or reset) by now. */
static inline bool closed_by_peer(int fd)
{
    char c;
    ssize_t k = recv(fd, &c, 1, 0);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* One request on a new connection; the response into "p". */
static inline int request(int port, const char *req, struct resp *p)
{
    struct reader r = {.fd = dial(port)};
    send_str(r.fd, req);
    bool ok = read_resp(&r, p);
    close(r.fd);
    return ok ? p->status : -1;
}

static inline uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A number in the server's /stats ("name":N), read through a new connection. */
static inline long stat_of(int port, const char *name)
{
    struct resp p;
    if (request(port, "GET /stats HTTP/1.1\r\n\r\n", &p) != 200)
        return -1;
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *at = strstr(p.body, key);
    return at ? strtol(at + strlen(key), NULL, 10) : -1;
}

/* A child process that opens "n" idle connections to "port" (its RLIMIT_NOFILE raised
 * to the hard limit first) and holds them until "*hold" (the parent's end of a pipe) is
 * closed. Returns its pid once every connection is open; fails the test if the child
 * could not open them all (it says why on stderr). */
static inline pid_t idle_clients(int port, int n, int *hold)
{
    int ready[2], h[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(h), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(h[1]);
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        for (int i = 0; i < n; i++) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
                fprintf(stderr, "idle client: connection %d: %s\n", i, strerror(errno));
                _exit(1);
            }
        }
        (void)!write(ready[1], "R", 1);
        char c;
        (void)!read(h[0], &c, 1); /* until the parent closes its end */
        _exit(0);
    }
    close(ready[1]);
    close(h[0]);
    char c;
    if (read(ready[0], &c, 1) != 1)
        fail_msg("the idle clients could not open %d connections", n);
    close(ready[0]);
    *hold = h[1];
    return pid;
}

/* Whether this process may raise its RLIMIT_NOFILE to "n" descriptors. */
static inline bool nofile_allows(rlim_t n)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= n;
}

#endif
