/*
 * upstream_int.h - private to upstream*.c: a thread's upstream side and a call, shared
 * by the public functions and libcurl's engine (upstream.c), the request's header lines
 * (upstream_headers.c) and rota's own HTTP/1.1 client (upstream_h1.c).
 *
 * DESIGN
 * A call goes one of two ways, chosen at its start by its URL:
 *
 *   http://  + a numeric address or "localhost"  ─▶ upstream_h1.c (rota's own client)
 *   anything else (https, HTTP/2, names to resolve) ─▶ libcurl's multi (upstream.c)
 *
 * Plain HTTP to an address needs no resolver, TLS or HTTP/2, and is what a local model
 * (llama.cpp, vLLM, Ollama) and a sidecar on the host speak: rota's client sends it with
 * one sendmsg of the head and the caller's body pieces, reads the answer from the
 * loop's receive buffers without a copy, and keeps the connection for the next call.
 * opts.curl_only sends every call through libcurl; both keep the contract of
 * upstream.h, callback for callback.
 */
#ifndef ROTA_UPSTREAM_INT_H
#define ROTA_UPSTREAM_INT_H

#include <curl/curl.h>
#include <netinet/in.h>

#include "upstream.h"

#define container_of(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

#define UP_HEAD_MAX (64 * 1024) /* an answer's head past this ends the call: -EIO */

struct h1_pool;
struct h1_conn;

struct rota_upstream {
    struct rota_loop *l;
    CURLM *m;
    struct rota_loop_timer timer;
    struct rota_loop_defer reap;
    struct rota_loop_defer kick;     /* collect what a resume finished */
    struct rota_upstream_call *dead; /* cancelled, to remove and free */
    struct rota_upstream_call *all;  /* every call not yet freed */
    struct rota_upstream_call *spare; /* ended, kept for the next ones */
    unsigned active, nspare;
    char ua[64];
    char *ca_file; /* NULL: the system's CA certificates */
    bool curl_only; /* opts.engine: every call through libcurl */
    struct h1_pool *h1;
};

/* An HTTP/1.1 answer as rota's client reads it (upstream_h1_answer.c). */
enum h1_body { H1_HEAD, H1_LENGTH, H1_CHUNK_SIZE, H1_CHUNK_DATA, H1_CHUNK_CRLF,
               H1_TRAILER, H1_UNTIL_CLOSE, H1_DONE };

struct rota_h1_answer {
    char *head; /* the head so far; once whole, its header lines (NUL after) */
    size_t head_len, head_cap;
    int status;
    enum h1_body state;
    uint64_t left;   /* body bytes still due (length, or this chunk); trailer bytes */
    size_t line_len; /* bytes of a chunk-size or trailer line so far */
    uint8_t ext;     /* chunk-size line: 0 nothing yet, 1 digits, 2 an extension */
    bool keep;       /* the connection may carry another request after this answer */
    bool cr;         /* a CR was the last byte of a chunk-size, CRLF or trailer line */
    bool headed;
};

struct rota_h1_answer_cbs {
    /* The head (not 1xx): the status and its header lines ("Name: value\r\n" each);
     * false to stop. */
    bool (*on_head)(void *arg, int status, const char *lines, size_t len);
    /* Body bytes: 0 taken, 1 not taken (a pause: the same bytes come again), -1 stop. */
    int (*on_body)(void *arg, const char *p, size_t n);
};

enum { H1_MORE, H1_PAUSE, H1_END, H1_ERR };

/* Feed "n" answer bytes at "p"; "*used" says how many were taken. H1_MORE: all were,
 * the answer goes on; H1_PAUSE: on_body paused; H1_END: the answer is whole (or a
 * callback stopped); H1_ERR: malformed, "*why" says how. */
int rota_h1_feed(struct rota_h1_answer *a, const char *p, size_t n, size_t *used,
                 const char **why, const struct rota_h1_answer_cbs *cb, void *arg);
/* Ready "a" for a new answer (its head buffer is kept). */
void rota_h1_answer_reset(struct rota_h1_answer *a);

struct rota_upstream_call {
    struct rota_upstream *u;
    CURL *e; /* libcurl's calls only (kept on spares once made) */
    const struct rota_upstream_cbs *cb;
    void *arg;
    struct rota_loop_timer timer; /* connect (h1), first byte, then idle */
    struct rota_upstream_call *next_dead, *prev, *next;
    /* the request's header lines: "lines", each ended by NUL (libcurl's, chained by
     * "nodes") or by CRLF after the request line (rota's client, sent as they are) */
    char *lines;
    size_t lines_len, lines_cap;
    struct curl_slist *nodes;
    size_t nnodes, nodes_cap;
    char *head;
    size_t head_len, head_cap;
    /* the body: gathered into "body", or read from the caller's pieces at "up_off" */
    char *body;
    size_t body_cap;
    const struct iovec *iov;
    size_t niov, up_off, up_len;
    int status;
    uint32_t first_byte_ms, idle_ms;
    bool headed, paused, cancelled, removed;
    bool h1;   /* rota's client, not libcurl */
    char err[CURL_ERROR_SIZE];
    /* rota's client: the connection, what is left to send, and the answer's framing */
    struct h1_conn *conn;
    struct iovec *send_iov; /* the head, then the body's pieces */
    size_t send_niov, send_cap, send_at; /* pieces, room, first piece not all sent */
    uint32_t connect_ms, total_ms;
    struct rota_loop_timer total;
    struct rota_loop_defer pump; /* hand over what a pause held */
    struct rota_h1_answer ans;
    bool got_any;    /* a byte of the answer has arrived */
    bool reused;     /* the connection was kept from an earlier call */
    bool localhost;  /* the URL said "localhost": 127.0.0.1 or ::1 */
    bool other_tried; /* localhost's other address was tried */
    bool sent_all, retried;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char hostport[64]; /* the Host header's value */
    const char *path;  /* into the caller's URL */
};

/* upstream_headers.c: the request's header lines into c->lines (rota's client: its
 * request line and Host first, all CRLF-ended, the blank line not yet). */
int rota_upstream_build_headers(struct rota_upstream_call *c,
                                const struct rota_upstream_req *q, const char *ua);
/* Wipe the lines (the key is in them) and forget the caller's pieces. */
void rota_upstream_wipe_lines(struct rota_upstream_call *c);

/* upstream_h1.c */
/* Whether rota's client takes "url" (http:// to a numeric address or localhost); if
 * so, the address, the Host value and the path into "c". */
bool rota_h1_takes(struct rota_upstream_call *c, const char *url);
int rota_h1_start(struct rota_upstream_call *c, const struct rota_upstream_req *q);
void rota_h1_resume(struct rota_upstream_call *c);
void rota_h1_cancel(struct rota_upstream_call *c);
bool rota_h1_body_sent(const struct rota_upstream_call *c);
int rota_h1_pool_new(struct rota_upstream *u, uint32_t max_idle);
void rota_h1_pool_free(struct rota_upstream *u);
/* upstream.c: a call of either engine is over; keep its memory for the next. */
void rota_upstream_call_free(struct rota_upstream_call *c);
/* Which of its timeouts call "c" ran into (first byte, or idle once headed), for "why". */
void rota_upstream_timeout_why(const struct rota_upstream_call *c, char *why, size_t n);

#endif
