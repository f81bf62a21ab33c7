/*
 * dispatch_int.h - private to dispatch*.c: a request in flight and the thread's
 * dispatch state, shared by the attempt loop (dispatch.c), the streamed answer
 * (dispatch_stream.c) and the table's views and the access log (dispatch_table.c).
 *
 * DESIGN
 * A request moves through these phases, all on its thread:
 *
 *   scan ─▶ choose ─▶ call ─▶ head ─┬─ 2xx event stream ─▶ stream ─▶ done
 *             ▲                     ├─ 2xx whole ─────────▶ body ──▶ reply
 *             └── retry (not yet ───┴─ 408/429/5xx/529, connect, timeout, 401/402/403
 *                 committed)           (each reported; others passed through)
 *
 * "committed" is set by the first upstream byte written to the client: from then on
 * there is no retry, and a failure ends the stream with the format's error event. The
 * struct call lives from the handler until the answer is complete and the last report
 * made; the front's request and connection are valid for as long.
 */
#ifndef ROTA_DISPATCH_INT_H
#define ROTA_DISPATCH_INT_H

#include <stdbool.h>

#include "dispatch.h"
#include "pool_stats.h"
#include "formats.h"
#include "xlate.h"
#include "rota_int.h"

#define ATTEMPTS_MAX        16
#define TRIED_MAX           (2 * ATTEMPTS_MAX) /* each call's account, and stale choices */
#define PICKS_MAX           16 /* selections per attempt (wrong-format tiers passed over) */
#define NOTE_MAX            192
#define ROTA_MAX_TIERS_SEEN 8

struct endpoint {
    const char *path; /* exact, or for Gemini the part after the model */
    enum rota_fmt fmt;
    enum rota_xl_fmt xl; /* its format for translation; ROTA_XL_FORMATS: not translated */
    bool usage_opts; /* OpenAI stream_options.include_usage applies */
    bool stream;     /* always a stream (Gemini's :streamGenerateContent) */
};

struct attempt {
    rota_choice ch; /* to fetch its key again, to take it out of what upstream says */
    uint32_t tier;
    char account[64];
    int status; /* upstream's; 0 = none */
    int err;    /* upstream.h's, 0 = the answer came */
    uint64_t ms;
};

struct dbuf {
    char *p;
    size_t len, cap;
};

struct call {
    struct rota_dispatch *d;
    struct rota_front_conn *c;
    const struct rota_front_req *r;
    const struct endpoint *ep;
    struct call *prev, *next;
    uint64_t t0_ns, deadline_ms, upstream_ns;
    /* the request */
    struct rota_fmt_req scan;
    char model[256];
    rota_route_t route;
    const char *sticky;
    size_t sticky_len;
    uint64_t est;
    rota_client_key ck; /* who sends it (dispatch.c, rota_int.h) */
    bool wants_stream;
    bool keepalive; /* the answer will be an event stream: comments may come first */
    /* attempts */
    struct attempt att[ATTEMPTS_MAX];
    uint32_t natt;
    uint64_t tried[TRIED_MAX];
    uint32_t ntried;
    uint32_t skip_tiers; /* passed over: another format, or a model that cannot serve it */
    uint8_t skip_why[32]; /* each passed-over tier's reason (enum fit) */
    char refusal[256];    /* why the request cannot be translated for a tier passed over */
    struct xlstate *xl;   /* the translation, when a tier speaks another format */
    uint16_t skipped[ROTA_MAX_TIERS_SEEN];
    uint32_t ntiers_seen;
    uint32_t route_tiers; /* the route's tier count, once a select said exhausted */
    uint64_t retry_at;
    /* the attempt in flight */
    rota_choice ch;
    bool chosen;
    bool xlating; /* this attempt's tier speaks another format: translated */
    int report_status; /* the last call's status, to report in finish (after the answer) */
    rota_target t;
    char url[1200];
    struct rota_fmt_body body; /* what goes upstream: pieces of r->body and the edits */
    struct iovec iov[5];       /* the same pieces, for the upstream */
    struct rota_upstream_call *up;
    uint64_t att_ns;
    int status;
    struct dbuf head, answer; /* upstream's head and (whole or error) body */
    bool sse;                 /* the answer is an event stream, passed through */
    bool ask_usage;           /* the pool asked for OpenAI's usage chunk, not the client */
    struct rota_fmt_usage usage;
    /* the client side */
    bool begun, committed, gone, blocked, ended;
    int end_err; /* upstream's end while output waits (blocked) */
    bool end_seen; /* the stream's closing event came ([DONE], message_stop, ...) */
    char end_why[NOTE_MAX];
    struct dbuf carry, pend; /* an event's start; output the front did not take */
    uint64_t bytes_in, bytes_out, drained;
    struct rota_loop_timer timer;  /* keep-alive comments, then the drain's limit */
    struct rota_loop_defer gone_d; /* the client left: acted on from the loop */
    struct rota_loop_defer xl_d;   /* a stream the translation cannot read: ended (and
                                      perhaps retried) from the loop, not inside the
                                      upstream's callback */
    char rid[128], path[256];      /* for the log, once "r" is gone */
    int final_status;
    const char *note; /* why the request ended as it did, for the log */
};

struct rota_dispatch {
    struct rota_loop *l;
    struct rota_upstream *u;
    struct rota_dispatch_opts o;
    struct call *calls;
    unsigned inflight;
    struct rota_pool_counts counts; /* read by the process's main thread (pool_stats.h) */
    void (*idle_fn)(void *);
    void *idle_arg;
    struct dbuf log;  /* the access log's line, its room kept (dispatch_table.c) */
    struct dbuf logq; /* lines of this turn of the loop, written once its answers are out */
    struct rota_loop_defer log_flush;
};

/* dispatch.c */
uint64_t rota_dispatch_ns(void);
void rota_dispatch_report(struct call *k, int status, int result);
void rota_dispatch_retry(struct call *k);
void rota_dispatch_finish(struct call *k);
void rota_dispatch_end_answer(struct call *k);
int rota_dispatch_put(struct dbuf *b, const char *p, size_t n, size_t max);

/* dispatch_answer.c */
void rota_dispatch_fail(struct call *k, int status, const char *type, const char *message);
void rota_dispatch_pass_answer(struct call *k);
void rota_dispatch_exhausted(struct call *k);

/* dispatch_xlate.c: a tier's fit, the translated body and URL, and the answer back */
enum fit { FIT_PASS, FIT_XLATE, FIT_FORMAT, FIT_TOOLS, FIT_IMAGES, FIT_CONTEXT, FIT_REFUSED };
const char *rota_dispatch_fit_name(enum fit f);
enum fit rota_dispatch_fit(struct call *k);
int rota_dispatch_xl_body(struct call *k);
int rota_dispatch_url(struct call *k);
bool rota_dispatch_xl_bad_request(const struct call *k);
size_t rota_dispatch_xl_headers(const struct call *k, struct rota_http_hdr *h, size_t max);
bool rota_dispatch_alt_sse(const char *query);
bool rota_dispatch_xl_answer(struct call *k);
const char *rota_dispatch_xl_why(const struct call *k);
void rota_dispatch_xl_message(const struct call *k, char *out, size_t n);
int rota_dispatch_xl_stream(struct call *k, const char *p, size_t n, struct dbuf *out);
bool rota_dispatch_xl_fail(struct call *k, const char *message, struct dbuf *out);
const char *rota_dispatch_xl_dropped(const struct call *k);
void rota_dispatch_xl_free(struct call *k);

/* dispatch_stream.c */
void rota_dispatch_stream_head(struct call *k);
int rota_dispatch_stream_data(struct call *k, const char *p, size_t n);
void rota_dispatch_stream_done(struct call *k, int err, const char *why);
void rota_dispatch_stream_gone(struct call *k);
void rota_dispatch_keepalive(struct call *k);

/* dispatch_table.c */
void rota_dispatch_log_flush(struct rota_loop_defer *df);
void rota_dispatch_models(struct rota_dispatch *d, struct rota_front_conn *c);
void rota_dispatch_ready(struct rota_dispatch *d, struct rota_front_conn *c);
void rota_dispatch_log(struct call *k);

#endif
