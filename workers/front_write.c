/*
 * front_write.c - the writing side of a connection: answers (whole, streamed, errors,
 * the front's own refusals) and the output queue that sends them.
 *
 * DESIGN
 * An answer is formatted straight into the connection's queue ("wq"): status line,
 * Date, X-Request-Id, the handler's headers, framing (Content-Length, chunked, or
 * close-delimited for an HTTP/1.0 stream), Connection when it is not the version's
 * default. One send is in flight at a time, from "fl"; when it completes the queue
 * becomes the next flight (front_int.h). A streamed piece is queued and sent at once;
 * a writer that gets ROTA_FRONT_STREAM_HIGH bytes ahead of the client is told -EAGAIN
 * and called back when the client has caught up, so nothing buffers without bound.
 *
 * Framing headers are the front's: a handler that sets Content-Length, Transfer-Encoding
 * or Connection, or puts CR or LF in a header, is refused (-EINVAL) rather than allowed
 * to split the response.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "front_int.h"

#define container_of(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

enum framing { FR_LENGTH, FR_CHUNKED, FR_CLOSE };

/* ---- buffers ---- */

int rota_front_buf_reserve(struct rota_front *f, struct buf *b, size_t more)
{
    size_t need = (size_t)b->len + more;
    if (need <= b->cap)
        return 0;
    if (need > UINT32_MAX / 2)
        return -ENOMEM;
    if (!b->p && need <= BUF_BLOCK) {
        b->p = rota_front_pool_get(&f->bufs);
        if (!b->p)
            return -ENOMEM;
        b->cap = BUF_BLOCK;
        return 0;
    }
    size_t cap = b->cap ? b->cap : BUF_BLOCK;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = (uint32_t)cap;
    return 0;
}

void rota_front_buf_release(struct rota_front *f, struct buf *b)
{
    if (b->p) {
        if (b->cap == BUF_BLOCK)
            rota_front_pool_put(&f->bufs, b->p);
        else
            free(b->p);
    }
    *b = (struct buf){0};
}

int rota_front_put(struct rota_front_conn *c, const void *data, size_t n)
{
    if (rota_front_buf_reserve(c->f, &c->wq, n) < 0)
        return -ENOMEM;
    memcpy(c->wq.p + c->wq.len, data, n);
    c->wq.len += (uint32_t)n;
    return 0;
}

/* ---- sending ---- */

void rota_front_flush(struct rota_front_conn *c)
{
    if (c->closing || c->sop.busy)
        return;
    if (c->fl.off == c->fl.len) {
        c->fl.off = c->fl.len = 0;
        if (!c->wq.len) {
            if (c->state == S_CLOSING)
                rota_front_drained(c);
            return;
        }
        struct buf t = c->fl;
        c->fl = c->wq;
        c->wq = t;
    }
    rota_loop_send(c->f->l, &c->sop, c->fd, c->fl.p + c->fl.off, c->fl.len - c->fl.off);
    c->send_due = rota_loop_now(c->f->l) + c->f->o.send_timeout_ms;
    rota_front_timer(c);
    rota_loop_urgent(c->f->l);
}

void rota_front_on_send(struct rota_loop_op *op, int res, uint32_t flags)
{
    struct rota_front_conn *c = container_of(op, struct rota_front_conn, sop);
    if (c->closing) {
        rota_front_close(c);
        return;
    }
    if (res < 0) {
        rota_front_gone(c); /* EPIPE, ECONNRESET: the client has gone */
        return;
    }
    c->fl.off += (uint32_t)res;
    if (c->fl.off < c->fl.len || c->wq.len) {
        rota_front_flush(c);
        return;
    }
    c->fl.off = c->fl.len = 0;
    rota_front_drained(c);
}

/* ---- formatting ---- */

static const char *date_line(struct rota_front *f)
{
    time_t now = time(NULL);
    if (now != f->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(f->date, sizeof(f->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        f->date_sec = now;
    }
    return f->date;
}

static bool is_framing(const char *name)
{
    return !strcasecmp(name, "content-length") || !strcasecmp(name, "transfer-encoding") ||
           !strcasecmp(name, "connection");
}

/* Whether headers "h" may go out as they are; their byte count into "*bytes". */
static bool headers_ok(const struct rota_http_hdr *h, size_t nh, size_t *bytes)
{
    *bytes = 0;
    for (size_t i = 0; i < nh; i++) {
        if (!h[i].name || !h[i].value || !h[i].name[0] || is_framing(h[i].name) ||
            strpbrk(h[i].name, "\r\n: \t") || strpbrk(h[i].value, "\r\n"))
            return false;
        *bytes += strlen(h[i].name) + strlen(h[i].value) + 4;
    }
    return true;
}

struct w {
    char *p;
    size_t len;
};

static void w_str(struct w *w, const char *s)
{
    size_t n = strlen(s);
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void w_hdr(struct w *w, const char *name, const char *value)
{
    w_str(w, name);
    w_str(w, ": ");
    w_str(w, value);
    w_str(w, "\r\n");
}

/* Queue the status line and headers of an answer. */
static int head(struct rota_front_conn *c, int status, const struct rota_http_hdr *h, size_t nh,
                size_t hbytes, enum framing fr, size_t len, const char *extra)
{
    const char *id = c->rq && c->rq->r.request_id ? c->rq->r.request_id : NULL;
    size_t need = 256 + hbytes + (id ? strlen(id) : 0) + (extra ? strlen(extra) : 0);
    if (rota_front_buf_reserve(c->f, &c->wq, need) < 0)
        return -ENOMEM;
    struct w w = {c->wq.p + c->wq.len, 0};
    char line[96];
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, rota_front_reason(status));
    w_str(&w, line);
    w_str(&w, date_line(c->f));
    if (id)
        w_hdr(&w, "X-Request-Id", id);
    for (size_t i = 0; i < nh; i++)
        w_hdr(&w, h[i].name, h[i].value);
    if (extra)
        w_str(&w, extra);
    if (fr == FR_LENGTH && status != 204 && status != 304) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", len);
        w_str(&w, line);
    } else if (fr == FR_CHUNKED) {
        w_str(&w, "Transfer-Encoding: chunked\r\n");
    }
    bool http10 = c->rq && c->rq->h->http_minor == 0;
    if (c->f->draining)
        c->keep = false; /* stopping: the client goes elsewhere for its next request */
    if (!c->keep)
        w_str(&w, "Connection: close\r\n");
    else if (http10)
        w_str(&w, "Connection: keep-alive\r\n");
    w_str(&w, "\r\n");
    c->wq.len += (uint32_t)w.len;
    return 0;
}

/* ---- answers ---- */

/* The handler's answer is complete: what follows runs deferred (front.c). */
static void answered(struct rota_front_conn *c)
{
    c->answered = true;
    rota_loop_defer(c->f->l, &c->next);
}

static int check_answer(struct rota_front_conn *c, int status)
{
    if (c->state != S_ANSWER || c->answered || c->streaming)
        return -EALREADY;
    if (status < 200 || status > 599)
        return -EINVAL;
    return 0;
}

int rota_front_reply(struct rota_front_conn *c, int status, const struct rota_http_hdr *h,
                     size_t nh, const void *body, size_t len)
{
    size_t hbytes;
    int rc = check_answer(c, status);
    if (rc)
        return rc;
    if (!headers_ok(h, nh, &hbytes))
        return -EINVAL;
    if (c->gone) {
        answered(c);
        return -EPIPE;
    }
    bool nobody = c->head_only || status == 204 || status == 304;
    rc = head(c, status, h, nh, hbytes, FR_LENGTH, len, NULL);
    if (!rc && !nobody && len)
        rc = rota_front_put(c, body, len);
    answered(c);
    if (rc) {
        rota_front_close(c);
        return rc;
    }
    rota_front_flush(c);
    return 0;
}

int rota_front_error(struct rota_front_conn *c, int status, const char *type,
                     const char *message)
{
    if (c->state != S_ANSWER || c->answered || c->streaming)
        return -EALREADY;
    char body[1536];
    size_t n = rota_front_error_json(body, sizeof(body), c->rq ? c->rq->r.path : NULL, status,
                                     type, message);
    static const struct rota_http_hdr ct = {"Content-Type", "application/json"};
    return rota_front_reply(c, status, &ct, 1, body, n);
}

void rota_front_health(struct rota_front_conn *c)
{
    static const struct rota_http_hdr ct = {"Content-Type", "application/json"};
    rota_front_reply(c, 200, &ct, 1, "{\"ok\":true}", 11);
}

int rota_front_stream_begin(struct rota_front_conn *c, int status,
                            const struct rota_http_hdr *h, size_t nh)
{
    size_t hbytes;
    int rc = check_answer(c, status);
    if (rc)
        return rc;
    if (!headers_ok(h, nh, &hbytes))
        return -EINVAL;
    c->streaming = true;
    if (c->gone)
        return -EPIPE;
    c->chunked = c->rq->h->http_minor >= 1;
    if (!c->chunked)
        c->keep = false; /* HTTP/1.0: the end of the stream is the end of the connection */
    const char *ct = rota_http_get(h, nh, "content-type");
    bool sse = ct && !strncasecmp(ct, "text/event-stream", 17);
    const char *extra = sse && !rota_http_get(h, nh, "cache-control")
                            ? "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                            : NULL;
    rc = head(c, status, h, nh, hbytes, c->chunked ? FR_CHUNKED : FR_CLOSE, 0, extra);
    if (rc) {
        rota_front_gone(c); /* out of memory: end it as if the client had left */
        return rc;
    }
    rota_front_flush(c);
    return 0;
}

int rota_front_stream_write(struct rota_front_conn *c, const void *data, size_t len)
{
    if (c->state != S_ANSWER || c->answered || !c->streaming)
        return -EALREADY;
    if (c->gone)
        return -EPIPE;
    if (!len || c->head_only)
        return 0;
    if (c->fl.len - c->fl.off + c->wq.len >= ROTA_FRONT_STREAM_HIGH) {
        c->want_writable = true;
        return -EAGAIN;
    }
    char size[24];
    int k = c->chunked ? snprintf(size, sizeof(size), "%zx\r\n", len) : 0;
    if (rota_front_buf_reserve(c->f, &c->wq, (size_t)k + len + 2) < 0) {
        rota_front_gone(c);
        return -ENOMEM;
    }
    rota_front_put(c, size, (size_t)k); /* reserved above: cannot fail */
    rota_front_put(c, data, len);
    if (c->chunked)
        rota_front_put(c, "\r\n", 2);
    rota_front_flush(c);
    return 0;
}

int rota_front_stream_end(struct rota_front_conn *c)
{
    if (c->state != S_ANSWER || c->answered || !c->streaming)
        return -EALREADY;
    if (c->gone) {
        answered(c);
        return -EPIPE;
    }
    int rc = 0;
    if (c->chunked && !c->head_only)
        rc = rota_front_put(c, "0\r\n\r\n", 5);
    answered(c);
    if (rc) {
        rota_front_close(c);
        return rc;
    }
    rota_front_flush(c);
    return 0;
}

/* ---- the front's own refusals ---- */

void rota_front_refuse(struct rota_front_conn *c, int status, const char *path, const char *why)
{
    char body[1024], extra[128] = "Content-Type: application/json\r\n";
    size_t n = rota_front_error_json(body, sizeof(body), path, status, NULL, why);
    if (status == 503)
        snprintf(extra, sizeof(extra), "Content-Type: application/json\r\nRetry-After: %u\r\n",
                 c->f->o.retry_after_s);
    c->keep = false;
    struct req_ctx *rq = c->rq;
    c->rq = NULL; /* no X-Request-Id: the request was never whole */
    int rc = head(c, status, NULL, 0, 0, FR_LENGTH, n, extra);
    if (!rc)
        rc = rota_front_put(c, body, n);
    if (rq && c->direct && c->rop.busy)
        c->held = rq; /* the receive writing into its body frees it when it completes */
    else if (rq) {
        rota_http_end(rq->h);
        rota_front_pool_put(&c->f->reqs, rq);
    }
    c->state = S_CLOSING;
    c->read_due = 0;
    if (rc) {
        rota_front_close(c);
        return;
    }
    rota_front_timer(c);
    rota_front_flush(c);
}
