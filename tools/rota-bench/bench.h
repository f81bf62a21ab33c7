/*
 * bench.h - rota-bench's pieces: the systems it measures side by side, the run
 * configuration and the latency histogram (private to rota-bench).
 *
 * DESIGN
 * A system is a set of callbacks. setup() runs once in the parent (build the table, start
 * redis-server); worker_init() and op() run in each forked selector process, op() being
 * one select + admit + report; write_one() runs in the writer process, rewriting one
 * account's quota snapshot; counts() reads selections per account for the fairness
 * figure; reload() (rota only) publishes a new generation of the table, from the parent;
 * teardown() stops and removes what setup() made. All systems run the same
 * workload: one route of "tiers" tiers over "accounts" accounts, hybrid strategy,
 * ceiling 0.80, RPM/TPM admission, a success report of 100 tokens per call.
 */
#ifndef ROTA_BENCH_H
#define ROTA_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_cfg {
    uint32_t accounts, tiers, procs;
    double duration;      /* seconds per system */
    uint32_t writer_rate; /* snapshot rewrites per second */
    const char *attach;   /* attach to a running instance instead of building one */
    const char *route;    /* route or model to select on (attach mode) */
    const char *instance; /* instance name for a built table */
    bool json;
    uint64_t seed;
    int strategy;            /* enum rota_strategy; peers only implement hybrid */
    double lru_share;        /* hybrid's forced least-recently-used share; < 0 = none */
    const char *journal_dir; /* journal the table to <dir>/journal ("rota+jnl") */
    int journal_fsync;       /* enum rota_fsync */
    uint32_t rounds;         /* with a journal: rounds of rota then rota+jnl */
    double reload_rate;      /* new generations published per second; 0 = none */
};

struct bench_sys {
    const char *name;
    int (*setup)(const struct bench_cfg *c, void **state, char *err, size_t n);
    int (*worker_init)(void *state, int id, void **ctx);
    int (*op)(void *ctx); /* 0 chosen, 1 exhausted, < 0 error; 2 chosen, and the handle
                           * moved to a new generation meanwhile (with reloads) */
    uint64_t (*retries)(void *ctx);
    int (*writer_init)(void *state, void **wctx);
    void (*write_one)(void *wctx, uint32_t account, uint64_t round);
    void (*counts)(void *state, uint64_t *per_account);
    size_t (*bytes)(void *state); /* memory the table takes */
    void (*teardown)(void *state);
    int (*reload)(void *state, uint64_t k, char *err, size_t n); /* NULL: no generations */
};

extern const struct bench_sys bench_rota, bench_rota_nolease, bench_rota_journal, bench_rwlock,
    bench_redis;

/* journal.c: the journal's side of the benchmark. */
struct rota_journal;
/* Start a journal on the built table "instance" writing <dir>/journal. */
int bench_journal_start(const struct bench_cfg *c, const char *instance,
                        struct rota_journal **out, char *err, size_t n);
/* Print what the journal did over "seconds" (records, bytes, passes, lag), then stop it. */
void bench_journal_stop(struct rota_journal *j, const struct bench_cfg *c, double seconds);
/* --journal-load: every account changes all the time; how many changes a second the
 * journal records, and how long its passes take. Returns the exit status. */
int bench_journal_load(const struct bench_cfg *c);

/* The workload's table, shared by the systems: tier of account i, and its quota limit. */
static inline uint32_t bench_tier_of(const struct bench_cfg *c, uint32_t i)
{
    return (uint32_t)((uint64_t)i * c->tiers / c->accounts);
}

#define BENCH_LIMIT  1000000000ull /* requests per day: never reached in a run */
#define BENCH_TOKENS 100

/* The use the writer reports for account i in its "round"-th pass: a quarter to a half of
 * the limit, varying by account and pass, so rankings change as they would in service. */
static inline uint64_t bench_used(uint32_t i, uint64_t round)
{
    return BENCH_LIMIT / 4 + ((i * 2654435761u + round) % 1000) * (BENCH_LIMIT / 4000);
}

/* First account of tier t (t == tiers gives the account count). */
static inline uint32_t bench_tier_start(const struct bench_cfg *c, uint32_t t)
{
    uint32_t i = 0;
    while (i < c->accounts && bench_tier_of(c, i) < t)
        i++;
    return i;
}

/* Latency histogram: exact below 64 ns, then 32 buckets per power of two (3 %). */
#define HIST_BUCKETS (64 + 58 * 32)

static inline unsigned hist_bucket(uint64_t v)
{
    if (v < 64)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    return 64u + (msb - 6u) * 32u + (unsigned)((v >> (msb - 5u)) & 31u);
}

static inline double hist_value(unsigned b)
{
    if (b < 64)
        return b;
    unsigned msb = (b - 64) / 32 + 6, m = (b - 64) % 32;
    double lo = (double)((uint64_t)(32 + m) << (msb - 5));
    return lo + (double)((uint64_t)1 << (msb - 5)) / 2;
}

#endif
