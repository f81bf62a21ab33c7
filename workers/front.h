/*
 * front.h - the dispatch worker's HTTP/1.1 server: listeners, connections, limits, and
 * an asynchronous handler interface for the dispatch layer.
 *
 * Private to the dispatch pool. One struct rota_front per thread, on that thread's
 * loop (loop.h); everything here is called on that thread.
 *
 * DESIGN
 * A connection reads one request at a time (http.h): a pipelined request is parsed
 * only once the answer to the one before is complete, so answers go out in order. The
 * front answers by itself what needs no handler: GET /healthz (200 {"ok":true}), and
 * every refusal a client expects from a server:
 *   400  a request that cannot be parsed (request line, Content-Length, chunks)
 *   408  the head not complete within header_timeout_ms of its first byte, or a body
 *        silent for body_timeout_ms
 *   413  a body past max_body (at once when Content-Length says so, before
 *        "100 Continue")
 *   417  an Expect other than 100-continue
 *   431  a head past max_head bytes, or more than max_headers header lines
 *   503  max_conns connections already open on this thread (with Retry-After)
 * and closes, after the refusal is sent, reading what the client still sends for a
 * moment so it sees the answer rather than a reset. A keep-alive connection idle for
 * idle_timeout_ms is closed quietly; a client that reads nothing of an answer for
 * send_timeout_ms is dropped (and the handler told, if it is still answering).
 *
 * Every other request goes to the handler, which may answer at once or later (after
 * upstream calls on the same loop), with exactly one of:
 *   rota_front_reply      a whole answer; the front adds Content-Length;
 *   rota_front_error      a JSON error in the shape of the API the path belongs to;
 *   rota_front_stream_*   an answer written piece by piece, each piece sent as soon as
 *                         it is written (chunked; close-delimited for HTTP/1.0).
 * The request ("r") and the connection ("c") stay valid until that answer is complete
 * (the reply, error or stream_end call), even when the client has gone: the front
 * tells the handler at once (rota_front_on_close; a client that shuts down its sending
 * side mid-answer counts as gone, as nginx takes it), after which writes fail with -EPIPE
 * and the handler still ends its answer. After the call that completes the answer,
 * neither "r" nor "c" may be used.
 *
 * Memory: an idle connection holds its struct (a few hundred bytes) and no buffer;
 * receive buffers are the loop's, and a request's head, body and output buffers are
 * taken when it starts and given back when its answer is sent (the fixed-size ones to
 * a per-thread pool, so a steady stream of requests allocates only bodies).
 *
 * Errors: 0 or a negative errno; listeners write what went wrong into "err".
 */
#ifndef ROTA_FRONT_H
#define ROTA_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "http.h"
#include "loop.h"

struct rota_front;
struct rota_front_conn;

/* A request, as the handler sees it. Strings are NUL-terminated. */
struct rota_front_req {
    const char *method;                  /* "POST" */
    const char *path;                    /* "/v1/chat/completions" */
    const char *query;                   /* after '?'; "" if none */
    const struct rota_http_hdr *headers; /* as sent; see rota_front_header */
    size_t nheaders;
    const char *body; /* after chunked decoding; NUL-terminated, "" if none */
    size_t body_len;
    const char *request_id; /* X-Request-Id as sent (if sane), else made here */
    int http_minor;         /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
};

typedef void (*rota_front_handler)(void *arg, struct rota_front_conn *c,
                                   const struct rota_front_req *r);
typedef void (*rota_front_conn_fn)(void *arg, struct rota_front_conn *c);

/* Judge a request on its head alone (no body yet: r->body is "" and r->body_len 0):
 * 0 to go on, or an HTTP status to refuse it with at once, "*why" its message; the body
 * is then neither read nor asked for (no "100 Continue"). */
typedef int (*rota_front_head_check)(void *arg, const struct rota_front_req *r,
                                     const char **why);

struct rota_front_opts {
    rota_front_handler handler;
    void *arg;
    rota_front_head_check head_check; /* NULL: every head goes on */
    uint32_t max_head;                /* request line and headers, bytes (16384) -> 431 */
    uint32_t max_headers;             /* header lines (100) -> 431 */
    uint64_t max_body;                /* body bytes (32 MiB) -> 413 */
    uint32_t header_timeout_ms; /* from a request's first byte to its last header (10 s) */
    uint32_t body_timeout_ms;   /* longest silence while a body arrives (30 s) */
    uint32_t idle_timeout_ms;   /* a kept-alive connection waiting for a request (75 s) */
    uint32_t send_timeout_ms;   /* longest a client may leave an answer unread (60 s) */
    uint32_t max_conns;         /* connections on this thread (16384) -> 503 */
    uint32_t retry_after_s;     /* Retry-After of that 503 (1) */
};

/* Make a front on loop "l" ("o": zeros take the defaults above). */
int rota_front_new(struct rota_front **out, struct rota_loop *l,
                   const struct rota_front_opts *o);
/* Close listeners and connections. Call when the loop no longer runs; a handler still
 * answering hears rota_front_on_close, and must not touch "c" after it. */
void rota_front_free(struct rota_front *f);
struct rota_loop *rota_front_loop(const struct rota_front *f);

/* Listen on TCP "host":"port" with SO_REUSEPORT (each thread its own socket, the
 * kernel spreading connections over them); port 0 takes a free one. Returns the port
 * (> 0) or a negative errno. */
int rota_front_listen_tcp(struct rota_front *f, const char *host, uint16_t port, char *err,
                          size_t n);
/* Make a listening Unix socket at "path" with mode "mode", exactly, from its creation.
 * An existing file there is replaced only if it is a socket of this user that nobody
 * answers on; a symlink, anything else, or a live socket is refused. Sets the umask for
 * a moment: call before starting threads. Returns the fd, for rota_front_adopt on each
 * thread, or a negative errno. */
int rota_front_listen_unix(const char *path, mode_t mode, char *err, size_t n);
/* Accept no more connections (a drain): accepts are cancelled, this front's own
 * listening sockets closed, idle kept-alive connections closed; a connection with a
 * request under way is answered, then closed. rota_front_stats' "conns" falls to 0. */
void rota_front_unlisten(struct rota_front *f);
/* Accept connections on listening socket "fd" too. With "own", the front closes it at
 * rota_front_unlisten (a SO_REUSEPORT socket of this thread alone: once closed, the
 * kernel hands its share of connections to the group's other sockets); otherwise it
 * stays the caller's to close (a socket every thread accepts on). */
int rota_front_adopt(struct rota_front *f, int fd, bool own);

/* The value of request header "name", ASCII case-insensitive; NULL if absent. */
const char *rota_front_header(const struct rota_front_req *r, const char *name);
/* The peer of "c" (getpeername): 0 or a negative errno. */
int rota_front_peer(const struct rota_front_conn *c, struct sockaddr_storage *ss,
                    socklen_t *len);

/* Answer with "status", headers "h" (Content-Length, Transfer-Encoding and Connection
 * are the front's own and are refused), and "len" bytes of "body" (copied). Returns 0,
 * -EPIPE if the client has gone (the answer is still complete), -EINVAL for a bad status
 * or a header holding CR or LF (nothing sent; the answer is still owed), -EALREADY if the
 * request was answered. */
int rota_front_reply(struct rota_front_conn *c, int status, const struct rota_http_hdr *h,
                     size_t nh, const void *body, size_t len);
/* Answer with a JSON error shaped for the API of the request's path: Anthropic's for
 * /v1/messages..., Gemini's for /v1beta/..., OpenAI's for the rest. "type" may be NULL
 * (one is chosen from the status); "message" is escaped as JSON (invalid UTF-8 becomes
 * U+FFFD). Returns as rota_front_reply. */
int rota_front_error(struct rota_front_conn *c, int status, const char *type,
                     const char *message);

/* Begin a streamed answer; "Content-Type: text/event-stream" in "h" makes it SSE (the
 * front adds Cache-Control: no-cache). Returns as rota_front_reply. */
int rota_front_stream_begin(struct rota_front_conn *c, int status,
                            const struct rota_http_hdr *h, size_t nh);
/* Write "len" bytes (one chunk), sent at once. 0: taken; -EAGAIN: not taken, the
 * client is that far behind (ROTA_FRONT_STREAM_HIGH bytes unsent): write again after
 * the rota_front_on_writable callback; -EPIPE: the client has gone. */
int rota_front_stream_write(struct rota_front_conn *c, const void *data, size_t len);
/* End the streamed answer. Returns 0 or -EPIPE; either way the answer is complete. */
int rota_front_stream_end(struct rota_front_conn *c);
#define ROTA_FRONT_STREAM_HIGH 65536

/* Call fn(arg, c) once, if the client goes away (or the front is freed) before the
 * answer is complete. One per request; NULL to cancel. */
void rota_front_on_close(struct rota_front_conn *c, rota_front_conn_fn fn, void *arg);
/* Call fn(arg, c) when everything written so far has been sent, after a write that
 * returned -EAGAIN. */
void rota_front_on_writable(struct rota_front_conn *c, rota_front_conn_fn fn, void *arg);

/* Figures for tests and /metrics: this thread's front. */
struct rota_front_stats {
    uint64_t conns;       /* open now */
    uint64_t accepted;    /* since start */
    uint64_t refused;     /* 503s for max_conns */
    uint64_t requests;    /* parsed, answered by the front or the handler */
    uint64_t bytes_conns; /* bytes held by open connections, buffers included */
    uint64_t bytes_pool;  /* bytes held by the pool of request buffers */
    uint64_t unsent;      /* answer bytes queued or in flight, not yet sent */
};
void rota_front_stats(const struct rota_front *f, struct rota_front_stats *s);

/* The JSON error body rota_front_error sends, into "buf" of "n" bytes (NUL-terminated,
 * the message shortened to fit). Returns its length. */
size_t rota_front_error_json(char *buf, size_t n, const char *path, int status,
                             const char *type, const char *message);
/* "s" as the inside of a JSON string, into "buf" of "n" bytes, never cutting an escape
 * or a character; returns the bytes written (no NUL). Control characters are escaped,
 * valid UTF-8 passes, invalid bytes become U+FFFD. */
size_t rota_json_escape(char *buf, size_t n, const char *s);

#endif
