/*
 * upstream.h - the dispatch pool's outbound HTTP, driven by a thread's loop: one call
 * per struct rota_upstream_call, the answer handed back piece by piece. Plain HTTP to
 * an address goes through rota's own HTTP/1.1 client, the rest through libcurl's multi
 * interface (upstream_int.h says which and why); the contract below is both's.
 *
 * Private to the dispatch pool. Everything here is called on the loop's thread.
 *
 * DESIGN
 * A call is built from where rota says it goes (rota_target: URL, the header the key
 * goes in and its scheme, the provider's extra headers) and from the client's headers,
 * which pass except for what must not: the client's own credentials (Authorization,
 * x-api-key, x-goog-api-key, api-key), the headers that choose who is billed
 * (OpenAI-Organization, OpenAI-Project, x-goog-user-project), the hop-by-hop headers of RFC
 * 9110 section 7.6.1 and those the Connection header names, the framing ones libcurl sets
 * itself (Host, Content-Length, Expect), Accept-Encoding (the pool reads the answer: it must
 * come as is), the pool's own X-Rota-* headers, and any header the provider's extra headers set
 * (the provider's value wins). X-Request-Id passes. The key goes from the caller's
 * buffer into one header line that is wiped before it is freed.
 *
 * The answer is delivered as it arrives: on_head once with the status and the raw
 * header block (the lines after the status line; 1xx heads left out), on_data for each
 * piece of the body, its framing undone (which may ask to pause: the client is behind),
 * on_done exactly once at the end, unless the call was cancelled. Timeouts: connect,
 * first byte (from the start to the head), idle (between pieces, not counted while
 * paused by the caller) and total. Connections are kept and reused across calls to the
 * same host and port on the thread. An https upstream is
 * verified (certificate chain and name) against the system's CA certificates, or only
 * against those of opts.ca_file when given; one that fails verification ends the call
 * like a connection that could not be made (-ECONNREFUSED).
 *
 * Callbacks run from the loop, never from inside rota_upstream_start; a callback may
 * start other calls and may cancel its own (the call's memory is freed later, on the
 * loop, once libcurl has let go of it).
 *
 * Errors: 0 or a negative errno. A call's end says why in on_done's "err": 0 (the
 * answer is complete), -ETIMEDOUT (with which timeout in "why"), -ECONNREFUSED (no
 * connection), -EPIPE (the connection broke mid-answer), -EIO (anything else).
 */
#ifndef ROTA_UPSTREAM_H
#define ROTA_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "http.h"
#include "loop.h"
#include "rota.h"

struct rota_upstream;
struct rota_upstream_call;

struct rota_upstream_opts {
    uint32_t max_host_conns; /* connections kept per host (0 = 64) */
    const char *user_agent;  /* NULL: "rota-worker" */
    const char *ca_file;     /* PEM CA certificates to verify upstreams against, instead
                                of the system's; NULL: the system's (libcurl's default) */
    bool curl_only;          /* every call through libcurl, plain HTTP to an address too */
};

/* What a call sends: every pointer must live until on_done (or the cancel). */
struct rota_upstream_req {
    const char *url;
    const char *body; /* the body, in one piece; or, when "nbody_iov", in pieces: */
    size_t body_len;
    const struct iovec *body_iov; /* the pieces (read, never written) */
    size_t nbody_iov;
    const rota_target *target;                  /* auth header and scheme, extra headers */
    const char *key;                            /* the credential; NULL or "" for none */
    const struct rota_http_hdr *client_headers; /* to pass, filtered as above */
    size_t nclient_headers;
    const char *request_id; /* sent as X-Request-Id; NULL for none */
    uint32_t connect_ms, first_byte_ms, idle_ms, total_ms; /* 0 = no limit */
};

#define ROTA_UPSTREAM_PAUSE 1 /* on_data: hold the rest until rota_upstream_resume */

struct rota_upstream_cbs {
    /* The head: the status and the header block as received ("Name: value\r\n" each). */
    void (*on_head)(void *arg, int status, const char *headers, size_t len);
    /* A piece of the body: 0 to go on (the piece was taken), ROTA_UPSTREAM_PAUSE to
     * pause (it was not: libcurl keeps it and hands it over again on the resume, maybe
     * from inside rota_upstream_resume). */
    int (*on_data)(void *arg, const char *data, size_t len);
    /* The end: "err" as at the top of this file, "why" a message for the log. */
    void (*on_done)(void *arg, int err, const char *why);
};

/* Make the upstream side of a thread, on loop "l" ("o" may be NULL). */
int rota_upstream_new(struct rota_upstream **out, struct rota_loop *l,
                      const struct rota_upstream_opts *o);
/* Free it: calls in flight are cancelled without their on_done. */
void rota_upstream_free(struct rota_upstream *u);

/* Start a call; its callbacks begin on a later turn of the loop. Returns 0 with the
 * call in "*out", -ENOMEM, -EMFILE or -ENFILE (no socket for a new connection), or
 * -EINVAL (a header would hold CR or LF). */
int rota_upstream_start(struct rota_upstream *u, const struct rota_upstream_req *q,
                        const struct rota_upstream_cbs *cb, void *arg,
                        struct rota_upstream_call **out);
/* Go on with a call paused by on_data (its data may arrive before this returns). */
void rota_upstream_resume(struct rota_upstream_call *c);
/* Stop a call: no callback is made for it from now on; "c" may not be used after. */
void rota_upstream_cancel(struct rota_upstream_call *c);

/* Whether call "c" no longer reads the caller's body pieces (all of them sent, or they
 * were copied at the start): they may go. */
bool rota_upstream_body_sent(const struct rota_upstream_call *c);

/* Calls in flight on this thread. */
unsigned rota_upstream_active(const struct rota_upstream *u);

/* Whether the client's header "name" is passed upstream, given that the provider's
 * extra headers are "extra" ("Name: value\r\n" each) and the Connection header the
 * client sent is "connection" (NULL if none). */
bool rota_upstream_passes(const char *name, const char *extra, const char *connection);

#endif
