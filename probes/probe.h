/*
 * probe.h - the probe thread: asks each provider for its accounts' quota, on a schedule
 * (private to rota).
 *
 * DESIGN
 * One thread runs a libcurl multi handle over every probe target. Each target is probed
 * every "interval" plus a random share of "jitter"; after a failure the next try comes
 * sooner, backing off exponentially (10 s, 20 s, 40 s, ... up to the interval). Answers
 * are capped at "max_bytes" and "timeout"; a provider that hangs or sends garbage costs
 * its own targets a failed probe and stalls nothing else. The thread never touches the
 * table: it parses each answer with the provider's parser and queues the result; rotad's
 * main thread, the snapshot writer, is woken through an eventfd, drains the queue and
 * applies the results (probes/observe.h). Targets carry credentials: they live in this
 * thread's memory only and are wiped when replaced; nothing here logs a request.
 */
#ifndef ROTA_PROBES_PROBE_H
#define ROTA_PROBES_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "parse.h"

/* What to ask, for one account. */
struct rota_probe_target {
    uint64_t account_id;
    char kind[32]; /* the parser's provider kind */
    char url[512];
    char method[8];              /* "GET" or "POST" */
    char body[512];              /* POST body; "" = none */
    char auth[1024];             /* the whole authorization header line; secret; "" = none */
    char extra[128];             /* another header line the provider wants; "" = none */
    struct rota_parse_opts opts; /* the generic probe's pointers (strings owned below) */
    char pointers[4][128];
    uint64_t interval_ns, jitter_ns, timeout_ns;
    uint32_t max_bytes;
};

/* One probe's outcome. */
struct rota_probe_result {
    uint64_t account_id;
    bool ok;             /* an answer arrived and the parser could read it */
    int status;          /* HTTP status; 0 = no answer */
    int parsed;          /* the parser's return */
    char error[160];     /* why not ok: "timeout after 5s", "answer over 1048576 bytes", ... */
    struct rota_obs obs; /* what the parser read */
    int64_t wall;        /* when it arrived */
    uint64_t elapsed_ns;
};

struct rota_prober;

/* Fill "t" for an account of provider "kind" at "base_url": the kind's usual probe request
 * (or "path", "method" and "body" when given), its auth header in "auth_style" with
 * "credential" (NULL = none). Returns 0, or -ENOENT when the kind has no probe endpoint
 * (gemini: its state comes from answers only) or no base URL to probe. */
int rota_probe_plan(struct rota_probe_target *t, const char *kind, const char *base_url,
                    const char *auth_style, const char *credential, const char *path,
                    const char *method, const char *body);

/* Start the thread. *notify_fd becomes readable (an eventfd) when results are queued. */
int rota_prober_start(struct rota_prober **out, int *notify_fd);

/* Replace the targets (on start and reload). A target whose account id was there before
 * keeps its schedule; new ones are probed within a few seconds, spread out. */
int rota_prober_set(struct rota_prober *p, const struct rota_probe_target *t, uint32_t n);

/* Probe "account_id" now (0: every target). Returns how many were scheduled. */
uint32_t rota_prober_now(struct rota_prober *p, uint64_t account_id);

/* Take up to "max" queued results; returns how many. Clears the eventfd. */
uint32_t rota_prober_take(struct rota_prober *p, struct rota_probe_result *out, uint32_t max);

/* Stop the thread and free everything (credentials wiped). */
void rota_prober_stop(struct rota_prober *p);

#endif
