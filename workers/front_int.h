/*
 * front_int.h - private to front*.c: the connection and its buffers, shared by the
 * reading side (front.c), the writing side (front_write.c) and the listeners
 * (front_listen.c). Nothing outside workers/front*.c includes it.
 *
 * DESIGN
 * A connection moves through these states:
 *
 *   IDLE ──first byte──▶ HEAD ──head ok──▶ BODY ──request──▶ ANSWER ──answered──▶ IDLE
 *     │                   │                 │                  │  (keep-alive)
 *     │ idle timeout      └─ 400/408/413/431/... ─▶ CLOSING ◀──┘  (close)
 *     ▼                                              │ output sent: shutdown(SHUT_WR)
 *   closed ◀──────────── EOF or LINGER_MS ─────── LINGER  (reads discarded)
 *
 * At most one receive and one send are in flight (rop, sop). Output goes to "wq"; the
 * send in flight reads "fl", which nothing touches until the send completes, when the
 * two swap: appends never move bytes the kernel is reading. "in" holds bytes received
 * but not yet parsed: a pipelined request waiting for the answer before it, or what
 * arrived while parsing was paused. The connection's memory is freed once it is closing,
 * nothing is in flight, and no handler still holds it (ANSWER not yet answered).
 */
#ifndef ROTA_FRONT_INT_H
#define ROTA_FRONT_INT_H

#include "front.h"

#define BUF_BLOCK    16384 /* pooled I/O buffer size */
#define IN_MAX       65536 /* unparsed bytes kept while an answer is in progress */
#define LINGER_MS    2000  /* reading after a final answer, so the client sees it */
#define POOL_MAX     64    /* spare blocks of each kind kept per thread */
#define MAX_REFUSING 64    /* connections being refused (503) at once */
#define MAX_LISTEN   18
#define DIRECT_MIN   16384 /* body bytes due past which they are received into the body */

enum cstate { S_IDLE, S_HEAD, S_BODY, S_ANSWER, S_CLOSING, S_LINGER };

struct buf {
    char *p;
    uint32_t len, off, cap;
};

/* A pool of same-sized blocks. */
struct pool {
    void *items[POOL_MAX];
    uint32_t n;
    size_t size;
};

/* What a request in progress holds; from a pool, taken at its first byte. */
struct req_ctx {
    struct rota_front_req r;
    rota_front_conn_fn on_close, on_writable;
    void *close_arg, *writable_arg;
    struct rota_http *h; /* right after this struct, in the same block */
};

struct listener {
    struct rota_loop_op op;
    struct rota_loop_timer pause; /* accept paused (out of fds) until it fires */
    struct rota_front *f;
    int fd;
    bool tcp, own;
    bool closed; /* rota_front_unlisten: accepts no more */
};

struct rota_front_conn {
    struct rota_front *f;
    struct rota_loop_op rop, sop;
    struct rota_loop_timer timer; /* at min(read_due, send_due) */
    struct rota_loop_defer next;  /* after an answer: finish it, parse what waits */
    struct rota_front_conn *prev, *list_next;
    struct req_ctx *rq; /* a request in progress, else NULL */
    struct req_ctx *held; /* a refused request whose body a receive still fills */
    struct buf in, fl, wq;
    uint64_t read_due, send_due; /* loop ms; 0 = none */
    int fd;
    uint8_t state;      /* enum cstate */
    bool answered;      /* ANSWER: the handler has completed its answer */
    bool streaming;     /* ANSWER: a stream was begun */
    bool chunked;       /* the stream is chunked (else close-delimited) */
    bool head_only;     /* a HEAD request: no body goes out */
    bool keep;          /* the connection stays open after this answer */
    bool continued;     /* "100 Continue" sent for this request */
    bool gone;          /* the client has left (or will not read); no more I/O */
    bool closing;       /* being closed: freed once nothing holds it */
    bool refusing;      /* a 503 at max_conns: counted apart from conns */
    bool want_writable; /* a stream write was refused: tell the handler at drain */
    bool direct;        /* the receive in flight writes into the request's body */
};

struct rota_front {
    struct rota_loop *l;
    bool draining; /* rota_front_unlisten: every answer from now on closes its connection */
    struct rota_front_opts o;
    struct rota_http_limits lim;
    struct listener lis[MAX_LISTEN];
    int nlis;
    struct rota_front_conn *conns; /* every open connection */
    uint32_t nconns, nrefusing;
    struct pool bufs, reqs;
    uint64_t accepted, refused, requests;
    uint64_t id_seed, id_next;
    char date[64]; /* "Date: ...\r\n", remade each second */
    int64_t date_sec;
};

/* front.c */
void rota_front_conn_new(struct rota_front *f, int fd, bool tcp);
void rota_front_refuse_conn(struct rota_front *f, int fd);
void rota_front_timer(struct rota_front_conn *c);
void rota_front_gone(struct rota_front_conn *c);
void rota_front_close(struct rota_front_conn *c);
void rota_front_drained(struct rota_front_conn *c);
void *rota_front_pool_get(struct pool *p);
void rota_front_pool_put(struct pool *p, void *item);

/* front_write.c */
int rota_front_buf_reserve(struct rota_front *f, struct buf *b, size_t more);
void rota_front_buf_release(struct rota_front *f, struct buf *b);
int rota_front_put(struct rota_front_conn *c, const void *data, size_t n);
void rota_front_flush(struct rota_front_conn *c);
void rota_front_on_send(struct rota_loop_op *op, int res, uint32_t flags);
/* A refusal from the front: "status" with a JSON error for "path" (may be NULL), then
 * close. */
void rota_front_refuse(struct rota_front_conn *c, int status, const char *path,
                       const char *why);
/* Answer GET /healthz. */
void rota_front_health(struct rota_front_conn *c);

/* front_error.c */
const char *rota_front_reason(int status);

#endif
