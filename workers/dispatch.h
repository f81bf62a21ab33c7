/*
 * dispatch.h - the dispatch pool's middle: a client's request (from the front) is sent
 * where the table says (librota), retried on the next choice when it may be, reported,
 * and its answer passed back (to the front), streamed chunk by chunk.
 *
 * Private to the dispatch pool. One struct rota_dispatch per thread, beside that
 * thread's loop, front and upstream; everything here runs on that thread. The rota
 * handle is the process's, shared by every thread (rota.h allows it).
 *
 * Endpoints (pass-through: a request goes only to tiers whose provider speaks the
 * endpoint's format; the others are passed over with the reason "format"):
 *   POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses  (OpenAI)
 *   POST /v1/messages, /v1/messages/count_tokens                              (Anthropic)
 *   POST /v1beta/models/MODEL:generateContent, :streamGenerateContent          (Gemini)
 *   GET  /v1/models   the routes and the models they serve, in OpenAI's list shape
 *   GET  /readyz      200 when the table is attached, its heartbeat fresh, and a route
 *                     has an account that could be chosen; else 503 saying which failed
 *
 * Errors: 0 or a negative errno.
 */
#ifndef ROTA_DISPATCH_H
#define ROTA_DISPATCH_H

#include <stdint.h>

#include "front.h"
#include "loop.h"
#include "rota.h"
#include "upstream.h"

struct rota_dispatch;

struct rota_dispatch_opts {
    rota_t *h; /* attached to "instance" */
    const char *instance;
    uint32_t attempts;      /* upstream calls per request, at most (3) */
    uint32_t deadline_ms;   /* a request's whole life before its answer begins (120 s) */
    uint32_t connect_ms;    /* upstream connect (10 s) */
    uint32_t first_byte_ms; /* upstream head after the request is sent (60 s) */
    uint32_t idle_ms;       /* upstream silence between pieces of an answer (60 s) */
    uint32_t keepalive_ms;  /* SSE comment to a streaming client while upstream is slow
                               to start (10 s) */
    uint32_t drain_ms;      /* reading on for the usage after a streaming client left (10 s) */
    uint64_t drain_bytes;   /* ... and at most this many bytes (1 MiB) */
    uint64_t max_answer;    /* a whole (not streamed) answer held, bytes (64 MiB) */
    int log_fd;             /* the access log, a JSON line per request (2); -1: none */
};

int rota_dispatch_new(struct rota_dispatch **out, struct rota_loop *l, struct rota_upstream *u,
                      const struct rota_dispatch_opts *o);
/* Free it, once the loop no longer runs and the front is freed. */
void rota_dispatch_free(struct rota_dispatch *d);

/* The front's head check (rota_front_opts.head_check): 401 for a request without a client
 * key the table knows, when the table has keys. "arg" is the struct rota_dispatch. */
int rota_dispatch_head(void *arg, const struct rota_front_req *r, const char **why);
/* The front's handler (rota_front_opts.handler), with "arg" the struct rota_dispatch. */
void rota_dispatch_handle(void *arg, struct rota_front_conn *c, const struct rota_front_req *r);

/* Requests being answered on this thread. */
/* Out of time to stop: end every call in flight, each reported cancelled and logged. */
void rota_dispatch_stop(struct rota_dispatch *d);
unsigned rota_dispatch_inflight(const struct rota_dispatch *d);
/* The thread's figures, for its process's main thread to read (pool_stats.h). */
const struct rota_pool_counts *rota_dispatch_counts(const struct rota_dispatch *d);
/* Call fn(arg) whenever the requests in flight drop to none (a drain waits for it). */
void rota_dispatch_on_idle(struct rota_dispatch *d, void (*fn)(void *arg), void *arg);

#endif
