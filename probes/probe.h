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
 *
 * An exec target runs a command instead of a request (the "CLI-first" check, e.g.
 * `gh api /copilot_internal/user`): /bin/sh -c COMMAND in its own process group, stdin
 * and stderr on /dev/null, a minimal environment (PATH, HOME, LANG, nothing else of
 * rotad's, where other accounts' keys may live) plus ROTA_CREDENTIAL holding the
 * account's credential (never on the command line, never logged). Its stdout, capped at
 * "max_bytes", is parsed by the kind's parser as the body of an answer with status 0 and
 * no headers. It runs on the same thread beside the HTTP transfers, bounded by the same
 * "timeout" (the whole group is then killed); a non-zero exit or a signal is a failed
 * probe. Every child is reaped, also when the thread stops.
 *
 * What a result says (its error, the parser's detail and problem, an excerpt of a failed
 * answer) never holds a credential of the instance, whole or a run of 8 bytes of one: it
 * is redacted (redact.h) before it is queued.
 */
#ifndef ROTA_PROBES_PROBE_H
#define ROTA_PROBES_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse.h"
#include "redact.h"

/* What to ask, for one account. */
struct rota_probe_target {
    uint64_t account_id;
    char kind[32]; /* the parser's provider kind */
    char url[512];
    char method[8];     /* "GET" or "POST" */
    char body[512];     /* POST body; "" = none */
    char auth[1024];    /* secret; "" = none. HTTP: the whole authorization header line;
                           exec: the credential alone, for ROTA_CREDENTIAL */
    char extra[128];    /* another header line the provider wants; "" = none */
    char command[1024]; /* run with /bin/sh -c instead of a request; "" = HTTP */
    struct rota_parse_opts opts; /* the generic probe's pointers (strings owned below) */
    char pointers[4][128];
    uint64_t interval_ns, jitter_ns, timeout_ns;
    uint32_t max_bytes;
};

/* One probe's outcome. */
struct rota_probe_result {
    uint64_t account_id;
    bool ok;             /* an answer arrived and the parser could read it */
    int status;          /* HTTP status; 0 = no answer, or an exec probe */
    int parsed;          /* the parser's return */
    char error[160];     /* why not ok: "timed out", "answer over 1048576 bytes",
                            "command exited with status 1", ...; never a credential */
    char excerpt[96];    /* not ok: the answer's (the output's) first bytes, printable
                            ASCII only, redacted; "" when there was none */
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

/* Fill "t" for an account of provider "kind" probed by running "command" (/bin/sh -c),
 * "credential" (NULL = none) to be passed in the environment variable ROTA_CREDENTIAL.
 * Returns 0, -ENOENT when the kind has no parser to read the output, or -ENAMETOOLONG
 * when the command or the credential is over 1023 bytes. */
int rota_probe_plan_exec(struct rota_probe_target *t, const char *kind, const char *command,
                         const char *credential);

/* Start the thread. *notify_fd becomes readable (an eventfd) when results are queued. */
int rota_prober_start(struct rota_prober **out, int *notify_fd);

/* Replace the targets (on start and reload). A target whose account id was there before
 * keeps its schedule; new ones are probed within a few seconds, spread out. What a result
 * says is redacted with "redact" (the thread takes a reference: every credential of the
 * instance, see redact.h), or when it is NULL with the targets' own credentials. */
int rota_prober_set(struct rota_prober *p, const struct rota_probe_target *t, uint32_t n,
                    struct rota_redact *redact);

/* Probe "account_id" now (0: every target). Returns how many were scheduled. */
uint32_t rota_prober_now(struct rota_prober *p, uint64_t account_id);

/* Take up to "max" queued results; returns how many. Clears the eventfd. */
uint32_t rota_prober_take(struct rota_prober *p, struct rota_probe_result *out, uint32_t max);

/* Stop the thread and free everything (credentials wiped). */
void rota_prober_stop(struct rota_prober *p);

/* The credential alone in "t" (within its auth header line); "" when none. */
const char *rota_probe_secret(const struct rota_probe_target *t);

#endif
