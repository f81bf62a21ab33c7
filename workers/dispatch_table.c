/*
 * dispatch_table.c - what the pool answers from the table itself (GET /v1/models, GET
 * /readyz) and the access log: one JSON line per request.
 *
 * DESIGN
 * The two views map the instance's current generation read-only for the length of the
 * answer (rota_shm_attach: a few system calls; these endpoints are for humans and
 * orchestrators, not the hot path) and read names and hot words; they never read a
 * credential. The access log holds ids, names, statuses, timings and counts: never a
 * key, a header value or a body. The lines of one turn of the loop are gathered and
 * written once the turn's answers have been handed to the kernel (rota_loop_after_submit),
 * so a write to the log never holds an answer back; each write(2) is at most PIPE_BUF
 * bytes and ends at a line's end (a longer line alone), so the lines of other threads and
 * processes on the same pipe or file never interleave with them.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "breaker_word.h"
#include "clock.h"
#include "dispatch_int.h"
#include "layout.h"
#include "seqlock.h"
#include "table.h"

#define LOGQ_MAX  (1u << 20) /* lines gathered in a turn before they are written at once */
#define LOGQ_KEEP (64u << 10) /* room kept for the next turn's lines */

static const struct rota_http_hdr json_head[] = {{"Content-Type", "application/json"}};

/* Append to "b" what printf makes of "fmt". */
static void add(struct dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct dbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        rota_dispatch_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1,
                          1u << 24);
}

static void add_str(struct dbuf *b, const char *s)
{
    char esc[600];
    esc[rota_json_escape(esc, sizeof(esc) - 1, s)] = 0;
    add(b, "\"%s\"", esc);
}

void rota_dispatch_models(struct rota_dispatch *d, struct rota_front_conn *c)
{
    struct rota_shm_map m;
    char err[200];
    if (rota_shm_attach(d->o.instance, &m, err, sizeof(err)) != 0) {
        rota_front_error(c, 503, NULL, "the account table is not available");
        return;
    }
    struct dbuf b = {0};
    add(&b, "{\"object\":\"list\",\"data\":[");
    bool first = true;
    for (uint32_t i = 0; i < m.nroutes; i++) {
        const char *route = rota_shm_str(&m, m.routes[i].name);
        add(&b, "%s{\"id\":", first ? "" : ",");
        add_str(&b, route);
        add(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"rota\"}");
        first = false;
        for (const char *k = rota_shm_str(&m, m.routes[i].models); *k; k += strlen(k) + 1) {
            add(&b, ",{\"id\":");
            add_str(&b, k);
            add(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":");
            add_str(&b, route);
            add(&b, "}");
        }
    }
    add(&b, "]}");
    rota_shm_detach(&m);
    rota_front_reply(c, 200, json_head, 1, b.p ? b.p : "", b.len);
    free(b.p);
}

/* Could account "a" be chosen now, as far as its hot words say? */
static bool eligible(const struct rota_shm_map *m, uint32_t a, uint64_t now)
{
    struct rota_shm_hot *h = &m->hot[a];
    uint64_t cd = rota_load(&h->cooldown_until), dis = rota_load(&h->disabled);
    uint64_t bw = rota_load(&h->breaker);
    if (cd > now || (dis && ((dis >> 8) == 0 || (dis >> 8) * ROTA_NS_PER_MS > now)))
        return false;
    return (bw & ~ROTA_BREAKER_EPOCH_MASK) == 0;
}

void rota_dispatch_ready(struct rota_dispatch *d, struct rota_front_conn *c)
{
    struct rota_shm_map m;
    char err[200];
    if (rota_shm_attach(d->o.instance, &m, err, sizeof(err)) != 0) {
        rota_front_error(c, 503, NULL, "not ready: the account table is not attached");
        return;
    }
    uint64_t now = rota_clock_fast(), hb = rota_load(&m.hdr->heartbeat);
    const char *why = NULL;
    if (now > hb && now - hb > m.hdr->stale_after_ns)
        why = "not ready: rotad's heartbeat is stale";
    bool any = false;
    for (uint32_t r = 0; !why && !any && r < m.nroutes; r++)
        for (uint32_t t = 0; !any && t < m.routes[r].ntiers; t++) {
            const struct rota_shm_tier *tr = &m.tiers[m.routes[r].tier0 + t];
            for (uint32_t k = 0; !any && k < tr->nmembers; k++)
                any = eligible(&m, m.members[tr->member0 + k].account, now);
        }
    if (!why && !any)
        why = "not ready: no route has an account that can be chosen";
    rota_shm_detach(&m);
    if (why)
        rota_front_error(c, 503, NULL, why);
    else
        rota_front_reply(c, 200, json_head, 1, "{\"ready\":true}", 14);
}

/* Count the request in the thread's figures (pool_stats.h). */
static void count(struct call *k, uint64_t added_us)
{
    struct rota_pool_counts *c = &k->d->counts;
    rota_pool_count(&c->requests, 1);
    if (k->final_status >= 500 || k->end_err)
        rota_pool_count(&c->errors, 1);
    rota_pool_count(&c->lat[rota_lat_bucket(added_us)], 1);
}

/* The access log's line is written straight into the thread's buffer (d->log), kept
 * from one line to the next: pieces, escaped strings and numbers, no format strings. */
static void lput(struct dbuf *b, const char *s, size_t n)
{
    rota_dispatch_put(b, s, n, 1u << 24);
}
#define LIT(b, s) lput(b, s, sizeof(s) - 1)

static void lnum(struct dbuf *b, unsigned long long v, bool neg)
{
    char t[24], *e = t + sizeof(t), *p = e;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    if (neg)
        *--p = '-';
    lput(b, p, (size_t)(e - p));
}

static void lint(struct dbuf *b, long long v)
{
    lnum(b, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, v < 0);
}

/* "s" as a JSON string, escaped as rota_json_escape does, at most 599 bytes of it. */
static void lstr(struct dbuf *b, const char *s)
{
    char esc[602];
    esc[0] = '"';
    size_t n = rota_json_escape(esc + 1, 599, s);
    esc[n + 1] = '"';
    lput(b, esc, n + 2);
}

void rota_dispatch_log(struct call *k)
{
    uint64_t total_us = (rota_dispatch_ns() - k->t0_ns) / 1000;
    uint64_t up_us = k->upstream_ns / 1000;
    uint64_t added_us = total_us > up_us ? total_us - up_us : 0;
    count(k, added_us);
    int fd = k->d->o.log_fd;
    if (fd < 0)
        return;
    struct dbuf *b = &k->d->log;
    b->len = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long msec = ts.tv_nsec / 1000000; /* three digits after the point */
    char ms[4] = {'.', (char)('0' + msec / 100), (char)('0' + msec / 10 % 10),
                  (char)('0' + msec % 10)};
    LIT(b, "{\"ts\":");
    lint(b, (long long)ts.tv_sec);
    lput(b, ms, 4);
    LIT(b, ",\"id\":");
    lstr(b, k->rid);
    LIT(b, ",\"path\":");
    lstr(b, k->path);
    LIT(b, ",\"model\":");
    lstr(b, k->model);
    LIT(b, ",\"key\":");
    if (k->ck.name[0])
        lstr(b, k->ck.name);
    else
        LIT(b, "null");
    if (k->wants_stream)
        LIT(b, ",\"stream\":true,\"attempts\":[");
    else
        LIT(b, ",\"stream\":false,\"attempts\":[");
    for (uint32_t i = 0; i < k->natt; i++) {
        const struct attempt *a = &k->att[i];
        if (i)
            LIT(b, ",");
        LIT(b, "{\"tier\":");
        lnum(b, a->tier, false);
        LIT(b, ",\"account\":");
        lstr(b, a->account);
        LIT(b, ",\"status\":");
        lint(b, a->status);
        LIT(b, ",\"ms\":");
        lnum(b, a->ms, false);
        if (a->err == -ETIMEDOUT)
            LIT(b, ",\"error\":\"timeout\"");
        else if (a->err == -ECONNREFUSED)
            LIT(b, ",\"error\":\"connect\"");
        else if (a->err == -EPIPE)
            LIT(b, ",\"error\":\"broken\"");
        else if (a->err)
            LIT(b, ",\"error\":\"failed\"");
        LIT(b, "}");
    }
    LIT(b, "],\"status\":");
    lint(b, k->final_status);
    LIT(b, ",\"added_us\":");
    lnum(b, added_us, false);
    LIT(b, ",\"tokens_in\":");
    lnum(b, k->usage.in, false);
    LIT(b, ",\"tokens_out\":");
    lnum(b, k->usage.out, false);
    LIT(b, ",\"bytes_in\":");
    lnum(b, k->bytes_in, false);
    LIT(b, ",\"bytes_out\":");
    lnum(b, k->bytes_out, false);
    if (k->note) {
        LIT(b, ",\"note\":");
        lstr(b, k->note);
    }
    LIT(b, "}\n");
    struct rota_dispatch *d = k->d;
    if (b->p && d->logq.len + b->len > LOGQ_MAX)
        rota_dispatch_log_flush(&d->log_flush); /* a burst: write what waits now */
    if (b->p)
        lput(&d->logq, b->p, b->len);
    if (d->logq.len)
        rota_loop_after_submit(d->l, &d->log_flush);
    if (b->cap > 65536) { /* an unusually long line: do not keep its room */
        free(b->p);
        *b = (struct dbuf){0};
    }
}

/* Write "n" bytes at "p" to "fd", all of them unless it fails. */
static void write_all(int fd, const char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the log is gone or full: its lines go, the answers do not wait */
        off += (size_t)w;
    }
}

void rota_dispatch_log_flush(struct rota_loop_defer *df)
{
    struct rota_dispatch *d = (struct rota_dispatch *)(void *)((char *)df -
                                                             offsetof(struct rota_dispatch,
                                                                      log_flush));
    const char *p = d->logq.p, *end = p + d->logq.len;
    while (p && p < end) { /* whole lines, PIPE_BUF at most, a longer line alone */
        size_t n = (size_t)(end - p);
        if (n > PIPE_BUF) {
            const char *cut = p + PIPE_BUF;
            while (cut > p && cut[-1] != '\n')
                cut--;
            if (cut == p) { /* one line longer than PIPE_BUF */
                const char *nl = memchr(p, '\n', n);
                cut = nl ? nl + 1 : end;
            }
            n = (size_t)(cut - p);
        }
        write_all(d->o.log_fd, p, n);
        p += n;
    }
    d->logq.len = 0;
    if (d->logq.cap > LOGQ_KEEP) {
        free(d->logq.p);
        d->logq = (struct dbuf){0};
    }
}
