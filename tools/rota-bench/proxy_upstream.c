/*
 * proxy_upstream.c - rota-bench --proxy's upstream: one fast fixed-answer HTTP/1.1
 * server that the direct runs, nginx and rota's pool all call.
 *
 * DESIGN
 * A child process (it dies with its parent: PR_SET_PDEATHSIG) with T threads, each with
 * its own SO_REUSEPORT listener on 127.0.0.1 and its own epoll loop; no disk, no
 * allocation per request. Any request is answered once its head and body are in (the
 * body's length from Content-Length; the body is read and dropped; a chunked body is
 * refused with 411 and the connection closed): a fixed 1 KB chat completion, or, when
 * the first bytes of the body hold "stream":true, a chunked text/event-stream of
 * PROXY_SSE_EVENTS chat chunks PROXY_SSE_GAP_NS apart on absolute deadlines (a timerfd
 * per stream), each carrying "t", the CLOCK_MONOTONIC instant it was written, so a
 * client on this machine knows each event's delay; then a usage chunk and [DONE]. The
 * stream's answer sends "X-Accel-Buffering: no", which tells nginx to pass it on
 * unbuffered (proxy_buffering off for that answer only). Keep-alive; pipelined requests
 * are answered in order.
 *
 * POST /v1/messages is answered in Anthropic's format, for the pool's translated rows: a
 * fixed 1 KB message (its text of 'b's, where the chat completion's is of 'a's, so a
 * client can tell which one was translated to it), or, when the body holds
 * "stream":true anywhere (a translated request says it last; the whole body, up to the
 * input buffer, is looked at), the same PROXY_SSE_EVENTS events as Anthropic frames
 * them: message_start and content_block_start with the first text_delta, a
 * content_block_delta each, and content_block_stop, message_delta and message_stop with
 * the last. The instant goes into each delta's text ("tok@NANOSECONDS "), not beside it:
 * a translation carries a format's own fields only, and the text is what reaches the
 * client of any format.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

#define IN_CAP 16384
#define PEEK   256 /* a chat body's bytes looked at for "stream":true */

enum { KIND_LISTEN, KIND_SOCK, KIND_TIMER };

struct conn;
struct ref {
    struct conn *c;
    int kind;
};

struct conn {
    int fd, tfd, ep;
    struct ref sock, timer;
    size_t in_len;
    uint64_t body_left; /* body bytes still to drop */
    bool streaming;
    bool anth;     /* the request was POST /v1/messages: answer in Anthropic's format */
    uint32_t sent; /* events of the stream written */
    uint64_t t0;   /* the stream's first event */
    char *out;     /* what the socket did not take yet */
    size_t out_len, out_cap;
    char in[IN_CAP];
};

static char answer[2048], anth_answer[2048];
static size_t answer_len, anth_answer_len;

static const char sse_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A fixed answer of "out": the head and a body of 1024 bytes, "pre", a text of "fill"
 * and "post". */
static size_t make_one(char *out, size_t cap, const char *pre, char fill, const char *post)
{
    char body[1025];
    size_t a = strlen(pre), b = strlen(post), k = 1024 - a - b;
    memcpy(body, pre, a);
    memset(body + a, fill, k);
    memcpy(body + a + k, post, b + 1);
    return (size_t)snprintf(out, cap,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: 1024\r\n\r\n%s",
                            body);
}

/* The fixed answers: a chat completion and an Anthropic message, each body 1024 bytes. */
static void make_answers(void)
{
    answer_len = make_one(
        answer, sizeof(answer),
        "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
        "\"model\":\"bench-up\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"",
        'a',
        "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":256,"
        "\"completion_tokens\":64,\"total_tokens\":320}}");
    anth_answer_len =
        make_one(anth_answer, sizeof(anth_answer),
                 "{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                 "\"bench-up\",\"content\":[{\"type\":\"text\",\"text\":\"",
                 'b',
                 "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":"
                 "{\"input_tokens\":256,\"cache_creation_input_tokens\":0,"
                 "\"cache_read_input_tokens\":0,\"output_tokens\":64}}");
}

static void conn_close(struct conn *c)
{
    if (c->tfd >= 0)
        close(c->tfd);
    close(c->fd);
    free(c->out);
    free(c);
}

/* Send "n" bytes after what waits already; false when the connection broke. */
static bool put(struct conn *c, const char *p, size_t n)
{
    if (!c->out_len) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
            return false;
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
        if (!n)
            return true;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = (c->out_len + n) * 2;
        char *o = realloc(c->out, cap);
        if (!o)
            return false;
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &c->sock};
    epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
    return true;
}

static bool flush_out(struct conn *c)
{
    while (c->out_len) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN;
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->sock};
    epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
    return true;
}

/* Event k of the chat stream (the last one followed by usage and [DONE]) into "ev". */
static int chat_event(char *ev, size_t cap, uint32_t k)
{
    int n = snprintf(ev, cap,
                     "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1700000000,\"model\":\"bench-up\",\"t\":%llu,\"choices\":"
                     "[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}"
                     "\n\n",
                     (unsigned long long)now_ns());
    if (k + 1 == PROXY_SSE_EVENTS)
        n += snprintf(ev + n, cap - (size_t)n,
                      "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
                      "\"created\":1700000000,\"model\":\"bench-up\",\"choices\":[],\"usage\":"
                      "{\"prompt_tokens\":16,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n"
                      "data: [DONE]\n\n",
                      PROXY_SSE_EVENTS, PROXY_SSE_EVENTS + 16);
    return n;
}

/* Event k of the Anthropic stream: its text_delta, the message's and block's starts
 * before the first, the block's stop, message_delta and message_stop after the last. */
static int anth_event(char *ev, size_t cap, uint32_t k)
{
    int n = 0;
    if (k == 0)
        n = snprintf(ev, cap,
                     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
                     "{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\","
                     "\"model\":\"bench-up\",\"content\":[],\"stop_reason\":null,"
                     "\"stop_sequence\":null,\"usage\":{\"input_tokens\":16,"
                     "\"output_tokens\":1}}}\n\n"
                     "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                     "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    n += snprintf(ev + n, cap - (size_t)n,
                  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                  "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok@%llu \"}}"
                  "\n\n",
                  (unsigned long long)now_ns());
    if (k + 1 == PROXY_SSE_EVENTS)
        n += snprintf(ev + n, cap - (size_t)n,
                      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                      "\"index\":0}\n\n"
                      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
                      "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":"
                      "{\"output_tokens\":%d}}\n\n"
                      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                      PROXY_SSE_EVENTS);
    return n;
}

/* Event k of the stream, in the request's format, as one chunk (the last one followed
 * by the chunked end). */
static bool send_event(struct conn *c, uint32_t k)
{
    char ev[1024], chunk[1100];
    int n = c->anth ? anth_event(ev, sizeof(ev), k) : chat_event(ev, sizeof(ev), k);
    int m = snprintf(chunk, sizeof(chunk), "%x\r\n%s\r\n%s", n, ev,
                     k + 1 == PROXY_SSE_EVENTS ? "0\r\n\r\n" : "");
    return put(c, chunk, (size_t)m);
}

static bool arm(struct conn *c)
{
    uint64_t at = c->t0 + (uint64_t)c->sent * PROXY_SSE_GAP_NS;
    struct itimerspec its = {.it_value = {(time_t)(at / 1000000000ull),
                                          (long)(at % 1000000000ull)}};
    return timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0;
}

static bool stream_begin(struct conn *c)
{
    c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->timer};
    if (c->tfd < 0 || epoll_ctl(c->ep, EPOLL_CTL_ADD, c->tfd, &ev) != 0)
        return false;
    c->streaming = true;
    c->t0 = now_ns();
    c->sent = 1;
    if (!put(c, sse_head, sizeof(sse_head) - 1) || !send_event(c, 0))
        return false;
    return arm(c);
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* The value of header "name" (with its colon) in head "h", or NULL. */
static const char *header(const char *h, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = h; p && p + nl < h + len; p = memchr(p, '\n', (size_t)(h + len - p))) {
        p++;
        if (!strncasecmp(p, name, nl))
            return p + nl;
    }
    return NULL;
}

/* Answer every whole request in "in"; false to close. */
static bool serve(struct conn *c)
{
    for (;;) {
        if (c->body_left) {
            size_t take = c->body_left < c->in_len ? (size_t)c->body_left : c->in_len;
            consume(c, take);
            c->body_left -= take;
            if (c->body_left)
                return true;
        }
        if (c->streaming || !c->in_len)
            return true;
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end)
            return c->in_len < IN_CAP;
        size_t head = (size_t)(end - c->in) + 4;
        const char *v = header(c->in, head, "transfer-encoding:");
        if (v) {
            static const char refuse[] = "HTTP/1.1 411 Length Required\r\n"
                                         "Content-Length: 0\r\nConnection: close\r\n\r\n";
            put(c, refuse, sizeof(refuse) - 1);
            return false;
        }
        v = header(c->in, head, "content-length:");
        uint64_t len = v ? strtoull(v, NULL, 10) : 0;
        c->anth = head > 18 && !memcmp(c->in, "POST /v1/messages", 17) &&
                  (c->in[17] == ' ' || c->in[17] == '?');
        size_t room = IN_CAP - head, most = c->anth || room < PEEK ? room : PEEK;
        size_t peek = len < most ? (size_t)len : most;
        if (c->in_len - head < peek)
            return true; /* the body's bytes looked at are not in yet */
        bool stream = memmem(c->in + head, peek, "\"stream\":true", 13) ||
                      memmem(c->in + head, peek, "\"stream\": true", 14);
        consume(c, head);
        c->body_left = len;
        if (stream) {
            size_t take = c->body_left < c->in_len ? (size_t)c->body_left : c->in_len;
            consume(c, take);
            c->body_left -= take;
            if (!stream_begin(c))
                return false;
        } else if (!(c->anth ? put(c, anth_answer, anth_answer_len)
                             : put(c, answer, answer_len))) {
            return false;
        }
    }
}

static bool on_timer(struct conn *c)
{
    uint64_t x;
    if (read(c->tfd, &x, sizeof(x)) < 0 && errno == EAGAIN)
        return true;
    if (!send_event(c, c->sent))
        return false;
    if (++c->sent < PROXY_SSE_EVENTS)
        return arm(c);
    epoll_ctl(c->ep, EPOLL_CTL_DEL, c->tfd, NULL);
    close(c->tfd);
    c->tfd = -1;
    c->streaming = false;
    return serve(c);
}

static bool on_sock(struct conn *c, uint32_t events)
{
    if ((events & EPOLLOUT) && !flush_out(c))
        return false;
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return true;
    for (;;) {
        if (c->in_len == IN_CAP && !c->body_left)
            return false;
        ssize_t r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (r == 0)
            return false;
        if (r < 0)
            return errno == EAGAIN || errno == EINTR;
        c->in_len += (size_t)r;
        if (!serve(c))
            return false;
    }
}

static void on_accept(int lfd, int ep)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->tfd = -1;
        c->ep = ep;
        c->sock = (struct ref){c, KIND_SOCK};
        c->timer = (struct ref){c, KIND_TIMER};
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->sock};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_close(c);
    }
}

static void *run(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    static struct ref listener = {NULL, KIND_LISTEN};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener}, evs[256];
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
        _exit(1);
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < k; i++) {
            struct ref *r = evs[i].data.ptr;
            bool ok = true;
            if (r->kind == KIND_LISTEN)
                on_accept(lfd, ep);
            else if (r->kind == KIND_SOCK)
                ok = on_sock(r->c, evs[i].events);
            else
                ok = on_timer(r->c);
            if (!ok) {
                /* later events of this round for it: none, epoll drops closed fds, but
                 * the timer's may be in "evs" already: forget it first */
                for (int j = i + 1; j < k; j++)
                    if (evs[j].data.ptr && ((struct ref *)evs[j].data.ptr)->c == r->c)
                        evs[j].data.ptr = &listener, evs[j].events = 0;
                conn_close(r->c);
            }
        }
    }
    return NULL;
}

static int listen_on(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4096) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

pid_t bench_upstream_start(uint32_t threads, uint16_t *port, char *err, size_t n)
{
    int p[2];
    if (pipe(p) != 0)
        return snprintf(err, n, "upstream: pipe: %s", strerror(errno)), -1;
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        snprintf(err, n, "upstream: fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        signal(SIGPIPE, SIG_IGN);
        make_answers();
        int first = listen_on(0);
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        if (first < 0 || getsockname(first, (struct sockaddr *)&a, &al) != 0)
            _exit(1);
        uint16_t got = ntohs(a.sin_port);
        for (uint32_t i = 1; i < threads; i++) {
            int fd = listen_on(got);
            pthread_t t;
            if (fd < 0 || pthread_create(&t, NULL, run, (void *)(intptr_t)fd) != 0)
                _exit(1);
        }
        if (write(p[1], &got, sizeof(got)) != sizeof(got))
            _exit(1);
        close(p[1]);
        run((void *)(intptr_t)first);
        _exit(0);
    }
    close(p[1]);
    ssize_t r = read(p[0], port, sizeof(*port));
    close(p[0]);
    if (r != sizeof(*port)) {
        snprintf(err, n, "upstream: did not start");
        kill(pid, SIGKILL);
        return -1;
    }
    return pid;
}
