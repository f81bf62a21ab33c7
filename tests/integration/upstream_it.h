/*
 * upstream_it.h - for test_upstream: a scripted HTTP server on 127.0.0.1 (a thread that
 * reads each request whole and answers with exact bytes, in pieces with pauses between
 * them) and a run of calls through workers/upstream.h on a real loop in the test's
 * thread, recording what each callback got.
 *
 * DESIGN
 * A case describes its answers (struct answer: the pieces, then what the server does:
 * wait for the next request on the connection, close, or hold it until the client
 * closes), makes a run (up_run_new: the server, a loop, an upstream of the engine the
 * case's cmocka state names), adjusts the request or the calls' behaviour (pause,
 * cancel), and runs it (up_run_go): the first call starts, a second one (if any) when
 * the first ends, and the loop stops once the server is through (every answer given,
 * every held connection closed by the client) and a few more turns have passed, so a
 * callback that should not come has had its chance. A guard ends a run that hangs.
 * The server thread shares only atomics with the test's thread until it is joined.
 */
#ifndef ROTA_UPSTREAM_IT_H
#define ROTA_UPSTREAM_IT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "upstream.h"

#define MAXANS   2
#define MAXPIECE 8

struct engine {
    bool curl_only;
};
extern const struct engine H1, CURL; /* rota's own HTTP/1.1 client; libcurl */

/* ---- the scripted server ---- */

struct piece {
    const char *p;
    size_t n;          /* 0: strlen(p) */
    unsigned delay_ms; /* before it is written */
};
#define P(s)                                                                                   \
    {                                                                                          \
        s, 0, 0                                                                                \
    }
#define PD(s, ms)                                                                              \
    {                                                                                          \
        s, 0, ms                                                                               \
    }                             /* written "ms" after the piece before it */
enum after { KEEP, CLOSE, HOLD }; /* after the answer: the next request, close, wait */
struct answer {
    struct piece piece[MAXPIECE];
    enum after after;
};

struct server {
    int lfd, stopfd, port;
    const struct answer *ans;
    size_t nans;
    pthread_t th;
    atomic_int nconn;     /* connections accepted */
    atomic_bool finished; /* every answer given (or the server gave up) */
    char *req[MAXANS];    /* each request as received: head and body */
    size_t req_len[MAXANS], head_len[MAXANS];
    int held_eof;     /* HOLDs the client ended by closing (read after the join) */
    const char *fail; /* what the server gave up on (read after the join) */
};

/* The next servers listen on ::1 alone, not 127.0.0.1. */
extern bool up_listen_v6;

/* ---- calls on a loop ---- */

struct run;

struct call {
    struct run *r;
    int idx;
    struct rota_upstream_call *c;
    int status, nhead, ndata, ndone, late, err; /* late: callbacks that must not come */
    char *head, *body;
    size_t head_len, body_len, body_cap;
    char why[160];
    int cancel_at; /* -1: cancel in on_head; n > 0: in the nth on_data */
    bool pause;    /* pause every other piece, resume from a timer */
    bool paused, take_next, cancelled;
    unsigned npause;
    struct rota_loop_timer resume;
};

enum next { NEXT_LATER, NEXT_IN_DONE }; /* the second call: from a timer, from on_done */

struct run {
    struct rota_loop *l;
    struct rota_upstream *u;
    struct server srv;
    rota_target target;
    char url[96];
    struct rota_http_hdr hdrs[5];
    struct rota_upstream_req q; /* the calls' request: change it before up_run_go */
    struct call calls[MAXANS];
    int ncalls;
    enum next next;
    struct rota_loop_timer guard, later, settle;
    unsigned settle_ticks;
    bool timed_out;
};

/* A run against answers "ans" (none: a port that refuses), with "ncalls" calls of the
 * default request, on the engine "*state" points at. */
struct run *up_run_new(void **state, const struct answer *ans, size_t nans, int ncalls);
/* Start the first call, run the loop to the end, tear the client side down, join the
 * server. */
void up_run_go(struct run *r);
void up_run_free(struct run *r);

/* Call "k" ended with "err" after a head of "status" and "head" and the body "body" (a
 * NULL head: no on_head at all). */
void up_check(const struct call *k, int err, int status, const char *head, const char *body,
              size_t blen);
#define BODY(s) s, sizeof(s) - 1

/* Header "name" of the request's head: its value (NUL-ended into "out") and how many
 * times it came. */
int up_header(const char *req, size_t head, const char *name, char *out, size_t cap);
/* "n" bytes of a pattern that repeats seldom (freed by the caller). */
char *up_pattern(size_t n);

#define BOTH(f)                                                                                \
    {#f " (h1)", f, NULL, NULL, (void *)&H1},                                                  \
    {                                                                                          \
#f " (curl)", f, NULL, NULL, (void *)&CURL                                             \
    }

#endif
