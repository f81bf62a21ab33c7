/*
 * load.h - what rota-load's driver (main.c) and its reports (report.c) share (private to
 * rota-load).
 *
 * Counters are changed by the calling threads and read by the main thread, each a
 * relaxed atomic: a figure may be one call behind another, never torn.
 */
#ifndef ROTA_LOAD_H
#define ROTA_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* Outcomes of calls, for the run, a tier or an account. */
struct tally {
    _Atomic uint64_t calls;  /* calls made (a selection that got an account) */
    _Atomic uint64_t ok;     /* 2xx */
    _Atomic uint64_t r429;   /* 429 */
    _Atomic uint64_t r5xx;   /* 5xx */
    _Atomic uint64_t other;  /* any other status */
    _Atomic uint64_t failed; /* no answer: timeout or connection error */
};

#define LOAD_MODEL "demo-model" /* the model calls ask for, unless --model says */

/* Who is who in the table, read once at start: accounts sorted by id. */
struct names {
    uint32_t naccounts;
    uint64_t *ids;
    char (*labels)[2 * ROTA_MAX_NAME]; /* "provider/name" */
    uint32_t *order;                   /* positions in table order, for printing */
    uint32_t ntiers;
    char tiers[ROTA_MAX_TIERS][2 * ROTA_MAX_NAME]; /* the tier's provider, or its accounts */
};

struct load {
    const char *instance, *route, *label;
    double seconds; /* how long to run */
    double rate;    /* calls per second in total; 0 = as fast as possible */
    unsigned threads;
    struct names names;
    struct tally total, tier[ROTA_MAX_TIERS];
    struct tally *account; /* names.naccounts + 1: the last one for accounts not named */
    _Atomic uint64_t exhausted, select_errors, timeouts, connects;
    _Atomic uint64_t status[600];
};

static inline void tally_add(_Atomic uint64_t *x)
{
    atomic_fetch_add_explicit(x, 1, memory_order_relaxed);
}

static inline uint64_t tally_get(_Atomic uint64_t *x)
{
    return atomic_load_explicit(x, memory_order_relaxed);
}

/* A small request in wire format "format" (rota_target.format; "openai" for any other)
 * asking for "model", into "buf" (shape.c). */
void load_body(const char *format, const char *model, char *buf, size_t n);

/* Tokens an answer says it used (OpenAI, Anthropic, Gemini and Antigravity, llama.cpp
 * shapes); 0 when it says nothing. */
uint64_t load_answer_tokens(const char *body, size_t len);

/* What the counters say at one moment (report.c). */
struct load_snap {
    uint64_t calls, ok, r429, r5xx, other, failed, exhausted;
    uint64_t tier[ROTA_MAX_TIERS];
};
void load_take(struct load *l, struct load_snap *s);
/* One interval's line: what happened between "a" and "b", ending "at" seconds in. */
void load_print_interval(const struct load *l, const struct load_snap *a,
                         const struct load_snap *b, double at);
/* The end of the run: totals (latencies "lat" in us, sorted), then calls per account. */
void load_print_totals(struct load *l, const uint32_t *lat, size_t nlat, double secs);

/* Write the run's summary as JSON to "path" ("lat_us": the calls' latencies in us, sorted).
 * Returns 0 or -1 with a message on stderr. */
int load_write_json(struct load *l, const char *path, const uint32_t *lat_us, size_t n);

/* Print one table summing the --json files "paths" (tiers by name); 0, or 1 on error. */
int load_summary(int n, char **paths);

#endif
