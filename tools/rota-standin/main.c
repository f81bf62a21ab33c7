/*
 * rota-standin - a stand-in for LLM providers on loopback, for tests and the demo.
 *
 *   rota-standin [--port N] [--tokens N] [--latency-ms MS] [--max-conns N]
 *
 * Listens on 127.0.0.1 only (--port 0, the default, picks a free port) and prints
 * "listening on 127.0.0.1:PORT" as its first line. It answers:
 *   POST /v1/chat/completions   200, an OpenAI-shaped completion whose usage.total_tokens
 *                               is --tokens (50), after --latency-ms (0)
 *   POST /v1/messages           the same, shaped as Anthropic's Messages API answers
 *   POST /_inject?match=PREFIX&status=CODE[&seconds=S][&count=N][&retry_after=S]
 *                               calls whose X-Rota-Account header starts with PREFIX get
 *                               CODE instead, for S seconds and/or N calls (neither: until
 *                               cleared); a 429 carries Retry-After: 2 unless told otherwise
 *   POST /_clear                remove every injection
 *   GET  /_stats                {"calls": {"provider/name": n, ...}, "status": {"200": n},
 *                               "injections": n}
 * Callers name their account in X-Rota-Account ("provider/name"; "-" when absent); calls
 * to the two completion endpoints are counted per account and per status returned. When
 * several injections match a call, the earliest added applies. SIGTERM or SIGINT ends it
 * with status 0. Nothing it receives is ever printed.
 *
 * DESIGN
 * One thread, one ppoll loop; SIGTERM and SIGINT are blocked except inside ppoll, so a
 * signal always ends the wait. Sockets are non-blocking. Each connection owns an input
 * buffer (a request head of at most HEAD_MAX, a Content-Length body of at most BODY_MAX)
 * and an output buffer, and has at most one request in progress: once a request is whole
 * its response is written to the output buffer at once, but held there until the
 * connection's deadline ("hold_until") when a latency is configured. The loop's timeout
 * is the earliest deadline, so a slow answer never delays another connection. Pipelined
 * requests wait in the input buffer until the one before them is answered. A request the
 * stand-in cannot parse gets 400 (chunked bodies too; an oversized body 413, an oversized
 * head 431) and the connection is closed after the answer.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#define OUT_HIGH     65536 /* stop parsing pipelined requests above this much output */
#define MAX_ACCOUNTS 1024
#define MAX_RULES    64

struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    uint64_t hold_until; /* monotonic ns; 0 = the output may go now */
    bool close_after;    /* close once the output is sent; read nothing more */
    bool eof;            /* the peer closed its side */
    bool continued;      /* "100 Continue" sent for the request in progress */
    bool dead;
};

/* An injected fault: calls of accounts starting with "prefix" answer "status". */
struct rule {
    char prefix[ACCOUNT_MAX];
    int status;
    int retry_after; /* seconds; 0 = no header */
    uint64_t until;  /* monotonic ns; 0 = no time limit */
    long remaining;  /* calls left; -1 = no count limit */
};

struct account_count {
    char name[ACCOUNT_MAX];
    uint64_t calls;
};

struct standin {
    unsigned tokens, latency_ms, max_conns;
    struct conn *conns;
    size_t nconns;
    struct rule rules[MAX_RULES];
    size_t nrules;
    struct account_count accounts[MAX_ACCOUNTS];
    size_t naccounts;
    uint64_t other_calls; /* accounts beyond MAX_ACCOUNTS */
    uint64_t status[600];
    uint64_t served;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- output ---- */

/* Append to "c"'s output; on allocation failure the connection is dropped. */
static void out_append(struct conn *c, const char *p, size_t n)
{
    if (c->dead)
        return;
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        char *q = realloc(c->out, cap);
        if (!q) {
            c->dead = true;
            return;
        }
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void out_printf(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_printf(struct conn *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        out_append(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static const struct {
    int status;
    const char *text;
} reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {413, "Content Too Large"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {529, "Overloaded"},
};

static const char *reason(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Status";
}

/* Write a whole response head; "extra" holds further header lines (may be ""). */
static void respond_head(struct conn *c, int status, const char *extra, size_t body_len)
{
    out_printf(c,
               "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
               "%s%s\r\n",
               status, reason(status), body_len, extra,
               c->close_after ? "Connection: close\r\n" : "");
}

static void respond(struct conn *c, int status, const char *extra, const char *body)
{
    respond_head(c, status, extra, strlen(body));
    out_append(c, body, strlen(body));
}

/* Answer a request that cannot be understood, then close. */
static void reject(struct conn *c, int status)
{
    c->close_after = true;
    c->in_len = 0;
    char body[96];
    snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\",\"code\":%d}}\n",
             reason(status), status);
    respond(c, status, "", body);
}

/* ---- injections and counts ---- */

/* POST /_inject?match=PREFIX&status=CODE[&seconds=S][&count=N][&retry_after=S]. */
static void inject(struct standin *s, struct conn *c, const struct request *r, uint64_t now)
{
    struct rule rule = {.remaining = -1, .retry_after = -1};
    bool have_match = false, have_status = false;
    const char *p = r->query, *end = r->query + r->query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        char value[ACCOUNT_MAX];
        unsigned long v = 0;
        if (!eq || !http_url_decode(eq + 1, (size_t)(pe - eq - 1), value, sizeof(value)))
            goto bad;
        size_t klen = (size_t)(eq - p);
        if (klen == 5 && memcmp(p, "match", 5) == 0) {
            memcpy(rule.prefix, value, strlen(value) + 1);
            have_match = true;
        } else if (klen == 6 && memcmp(p, "status", 6) == 0 &&
                   http_parse_uint(value, 599, &v) && v >= 200) {
            rule.status = (int)v;
            have_status = true;
        } else if (klen == 7 && memcmp(p, "seconds", 7) == 0 &&
                   http_parse_uint(value, 86400, &v) && v > 0) {
            rule.until = now + (uint64_t)v * 1000000000u;
        } else if (klen == 5 && memcmp(p, "count", 5) == 0 &&
                   http_parse_uint(value, 1000000000, &v) && v > 0) {
            rule.remaining = (long)v;
        } else if (klen == 11 && memcmp(p, "retry_after", 11) == 0 &&
                   http_parse_uint(value, 86400, &v)) {
            rule.retry_after = (int)v;
        } else {
            goto bad;
        }
        p = amp ? amp + 1 : end;
    }
    if (!have_match || !have_status || s->nrules == MAX_RULES)
        goto bad;
    if (rule.retry_after < 0)
        rule.retry_after = rule.status == 429 ? 2 : 0;
    s->rules[s->nrules++] = rule;
    respond(c, 200, "", "{\"ok\":true}\n");
    return;
bad:
    respond(c, 400, "",
            "{\"error\":{\"message\":\"expected match=PREFIX&status=200..599, optionally "
            "seconds=S, count=N, retry_after=S\"}}\n");
}

/* The injected rule that applies to "account" now, or NULL; consumes one of its calls.
 * Rules are tried in the order they were added; spent ones are dropped on the way. */
static const struct rule *injected(struct standin *s, const char *account, uint64_t now)
{
    size_t i = 0;
    while (i < s->nrules) {
        struct rule *u = &s->rules[i];
        if ((u->until && now >= u->until) || u->remaining == 0) {
            memmove(u, u + 1, (s->nrules - i - 1) * sizeof(*u)); /* spent: forget it */
            s->nrules--;
            continue;
        }
        if (strncmp(account, u->prefix, strlen(u->prefix)) == 0) {
            if (u->remaining > 0)
                u->remaining--;
            return u;
        }
        i++;
    }
    return NULL;
}

static void count_call(struct standin *s, const char *account, int status)
{
    s->status[status]++;
    for (size_t i = 0; i < s->naccounts; i++)
        if (strcmp(s->accounts[i].name, account) == 0) {
            s->accounts[i].calls++;
            return;
        }
    if (s->naccounts == MAX_ACCOUNTS) {
        s->other_calls++;
        return;
    }
    struct account_count *a = &s->accounts[s->naccounts++];
    snprintf(a->name, sizeof(a->name), "%s", account);
    a->calls = 1;
}

/* POST /v1/chat/completions or /v1/messages: count, then answer as told. */
static void complete(struct standin *s, struct conn *c, const struct request *r, bool messages,
                     uint64_t now)
{
    const struct rule *u = injected(s, r->account, now);
    int status = u ? u->status : 200;
    count_call(s, r->account, status);
    char body[512], extra[64] = "";
    unsigned out_tok = s->tokens / 2, in_tok = s->tokens - out_tok;
    unsigned long long id = ++s->served;
    if (u) {
        if (u->retry_after)
            snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", u->retry_after);
        snprintf(body, sizeof(body),
                 "{\"error\":{\"message\":\"injected by rota-standin\",\"type\":\"standin\","
                 "\"code\":%d}}\n",
                 status);
    } else if (messages) {
        snprintf(body, sizeof(body),
                 "{\"id\":\"msg_standin_%llu\",\"type\":\"message\",\"role\":\"assistant\","
                 "\"model\":\"standin\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],"
                 "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":%u,"
                 "\"output_tokens\":%u}}\n",
                 id, in_tok, out_tok);
    } else {
        snprintf(body, sizeof(body),
                 "{\"id\":\"chatcmpl-standin-%llu\",\"object\":\"chat.completion\","
                 "\"model\":\"standin\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                 "\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
                 "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u,"
                 "\"total_tokens\":%u}}\n",
                 id, in_tok, out_tok, s->tokens);
    }
    respond(c, status, extra, body);
    if (s->latency_ms)
        c->hold_until = now + (uint64_t)s->latency_ms * 1000000u;
}

/* GET /_stats. */
static void stats(struct standin *s, struct conn *c)
{
    struct conn tmp = {.fd = -1};
    out_printf(&tmp, "{\"calls\":{");
    for (size_t i = 0; i < s->naccounts; i++)
        out_printf(&tmp, "%s\"%s\":%llu", i ? "," : "", s->accounts[i].name,
                   (unsigned long long)s->accounts[i].calls);
    if (s->other_calls)
        out_printf(&tmp, "%s\"(other)\":%llu", s->naccounts ? "," : "",
                   (unsigned long long)s->other_calls);
    out_printf(&tmp, "},\"status\":{");
    bool first = true;
    for (int i = 0; i < 600; i++)
        if (s->status[i]) {
            out_printf(&tmp, "%s\"%d\":%llu", first ? "" : ",", i,
                       (unsigned long long)s->status[i]);
            first = false;
        }
    out_printf(&tmp, "},\"injections\":%zu}\n", s->nrules);
    if (tmp.dead) {
        respond(c, 500, "", "{\"error\":{\"message\":\"out of memory\"}}\n");
    } else {
        respond_head(c, 200, "", tmp.out_len);
        out_append(c, tmp.out, tmp.out_len);
    }
    free(tmp.out);
}

/* Answer one whole request. Only calls to the two completion endpoints are counted. */
static void handle(struct standin *s, struct conn *c, const struct request *r, uint64_t now)
{
    bool post = r->method_len == 4 && memcmp(r->method, "POST", 4) == 0;
    bool get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
    bool chat = r->path_len == 20 && memcmp(r->path, "/v1/chat/completions", 20) == 0;
    bool messages = r->path_len == 12 && memcmp(r->path, "/v1/messages", 12) == 0;
    bool is_inject = r->path_len == 8 && memcmp(r->path, "/_inject", 8) == 0;
    bool is_clear = r->path_len == 7 && memcmp(r->path, "/_clear", 7) == 0;
    bool is_stats = r->path_len == 7 && memcmp(r->path, "/_stats", 7) == 0;
    if (!r->keep_alive)
        c->close_after = true;
    if (!chat && !messages && !is_inject && !is_clear && !is_stats) {
        respond(c, 404, "", "{\"error\":{\"message\":\"no such endpoint\"}}\n");
    } else if ((is_stats && !get) || (!is_stats && !post)) {
        respond(c, 405, "", "{\"error\":{\"message\":\"method not allowed\"}}\n");
    } else if (chat || messages) {
        complete(s, c, r, messages, now);
    } else if (is_inject) {
        inject(s, c, r, now);
    } else if (is_stats) {
        stats(s, c);
    } else {
        s->nrules = 0;
        respond(c, 200, "", "{\"ok\":true}\n");
    }
}

/* ---- connections ---- */

/* Parse and answer what the input holds, one request at a time. */
static void advance(struct standin *s, struct conn *c, uint64_t now)
{
    while (!c->dead && !c->close_after && !c->hold_until &&
           c->out_len - c->out_off < OUT_HIGH) {
        struct request r;
        int n = http_parse_head(c->in, c->in_len, &r);
        if (n < 0) {
            reject(c, -n);
            return;
        }
        if (n == 0)
            return;
        size_t need = (size_t)n + r.body_len;
        if (c->in_len < need) {
            if (r.expect_continue && !c->continued) {
                out_printf(c, "HTTP/1.1 100 Continue\r\n\r\n");
                c->continued = true;
            }
            return;
        }
        handle(s, c, &r, now);
        memmove(c->in, c->in + need, c->in_len - need);
        c->in_len -= need;
        c->continued = false;
    }
}

static bool wants_read(const struct conn *c)
{
    return !c->close_after && !c->eof && c->in_len < HEAD_MAX + BODY_MAX;
}

static bool wants_write(const struct conn *c)
{
    return c->out_off < c->out_len && !c->hold_until;
}

static void conn_read(struct conn *c)
{
    for (;;) {
        if (c->in_len == c->in_cap) {
            if (c->in_cap == HEAD_MAX + BODY_MAX)
                return;
            size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
            if (cap > HEAD_MAX + BODY_MAX)
                cap = HEAD_MAX + BODY_MAX;
            char *p = realloc(c->in, cap);
            if (!p) {
                c->dead = true;
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0)
            c->eof = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            c->dead = true;
        return;
    }
}

static void conn_write(struct conn *c)
{
    while (wants_write(c)) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                c->dead = true;
            return;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->close_after) {
            shutdown(c->fd, SHUT_WR);
            c->dead = true;
        }
    }
}

/* One connection's turn after poll: read, release a due answer, parse, write. */
static void conn_step(struct standin *s, struct conn *c, short revents, uint64_t now)
{
    if (revents & POLLERR) {
        c->dead = true;
    } else if (revents & (POLLIN | POLLHUP)) {
        if (wants_read(c))
            conn_read(c);
        else if (revents & POLLHUP)
            c->dead = true;
    }
    if (c->hold_until && now >= c->hold_until)
        c->hold_until = 0;
    advance(s, c, now);
    conn_write(c);
    if (c->eof && !c->hold_until && c->out_len == c->out_off)
        c->dead = true; /* the peer is gone and owed nothing */
}

static void accept_all(struct standin *s, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a connection that died in the backlog (max_conns keeps
                       us clear of EMFILE, which would leave the listener readable) */
        if (s->nconns == s->max_conns) {
            close(fd); /* full: refuse rather than leave it hanging */
            continue;
        }
        s->conns[s->nconns++] = (struct conn){.fd = fd};
    }
}

static void conn_free(struct conn *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
}

/* ---- the loop ---- */

static int listen_on(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 512)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The ppoll timeout: until the earliest held answer, or none. */
static bool next_deadline(const struct standin *s, uint64_t now, struct timespec *ts)
{
    uint64_t soonest = 0;
    for (size_t i = 0; i < s->nconns; i++) {
        uint64_t h = s->conns[i].hold_until;
        if (h && (!soonest || h < soonest))
            soonest = h;
    }
    if (!soonest)
        return false;
    uint64_t wait = soonest > now ? soonest - now : 0;
    ts->tv_sec = (time_t)(wait / 1000000000u);
    ts->tv_nsec = (long)(wait % 1000000000u);
    return true;
}

static int serve(struct standin *s, int lfd, const sigset_t *waitmask)
{
    struct pollfd *pfd = calloc(s->max_conns + 1, sizeof(*pfd));
    s->conns = calloc(s->max_conns, sizeof(*s->conns));
    if (!pfd || !s->conns) {
        fprintf(stderr, "rota-standin: out of memory\n");
        free(pfd);
        return 1;
    }
    while (!stopping) {
        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        size_t polled = s->nconns;
        for (size_t i = 0; i < polled; i++) {
            struct conn *c = &s->conns[i];
            pfd[i + 1] = (struct pollfd){.fd = c->fd,
                                         .events = (short)((wants_read(c) ? POLLIN : 0) |
                                                           (wants_write(c) ? POLLOUT : 0))};
        }
        struct timespec ts;
        bool timed = next_deadline(s, mono_ns(), &ts);
        int rc = ppoll(pfd, polled + 1, timed ? &ts : NULL, waitmask);
        if (rc < 0 && errno != EINTR) {
            perror("rota-standin: ppoll");
            break;
        }
        if (rc < 0)
            continue;
        uint64_t now = mono_ns();
        for (size_t i = 0; i < polled; i++)
            conn_step(s, &s->conns[i], pfd[i + 1].revents, now);
        if (pfd[0].revents & POLLIN)
            accept_all(s, lfd);
        for (size_t i = 0; i < s->nconns;) {
            if (s->conns[i].dead) {
                conn_free(&s->conns[i]);
                s->conns[i] = s->conns[--s->nconns];
            } else {
                i++;
            }
        }
    }
    for (size_t i = 0; i < s->nconns; i++)
        conn_free(&s->conns[i]);
    free(s->conns);
    free(pfd);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rota-standin [--port N] [--tokens N] [--latency-ms MS] "
               "[--max-conns N]\n"
               "  --port N        loopback port to listen on; 0 (default) picks one\n"
               "  --tokens N      usage.total_tokens of each answer (50)\n"
               "  --latency-ms MS hold each answer this long (0)\n"
               "  --max-conns N   connections served at once (1024; fewer if the open-file\n"
               "                  limit is lower)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"tokens", required_argument, NULL, 't'},
                                         {"latency-ms", required_argument, NULL, 'l'},
                                         {"max-conns", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static struct standin s = {.tokens = 50, .max_conns = 1024};
    unsigned long port = 0, v;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = o != '?' && o != 'h';
        if (o == 'p')
            ok = http_parse_uint(optarg, 65535, &port);
        else if (o == 't' && (ok = http_parse_uint(optarg, 100000000, &v)))
            s.tokens = (unsigned)v;
        else if (o == 'l' && (ok = http_parse_uint(optarg, 600000, &v)))
            s.latency_ms = (unsigned)v;
        else if (o == 'm' && (ok = http_parse_uint(optarg, 60000, &v) && v > 0))
            s.max_conns = (unsigned)v;
        if (!ok) {
            usage(o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (rlim_t)s.max_conns + 16)
        s.max_conns = nofile.rlim_cur > 32 ? (unsigned)nofile.rlim_cur - 16 : 16;
    int lfd = listen_on((unsigned)port);
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&a, &alen)) {
        fprintf(stderr, "rota-standin: cannot listen on 127.0.0.1:%lu: %s\n", port,
                strerror(errno));
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", ntohs(a.sin_port));
    fflush(stdout);
    int rc = serve(&s, lfd, &waitmask);
    close(lfd);
    return rc;
}
