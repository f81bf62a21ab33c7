/*
 * select.h - walking a route's chain of tiers over the shared table, and applying the
 * outcome of a call (private to rota; librota wraps it).
 */
#ifndef ROTA_CORE_SELECT_H
#define ROTA_CORE_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include "clients.h"
#include "rng.h"
#include "rota_codes.h"
#include "table.h"

/* The trial word of a choice: which breakers' trial permits it holds (bits 0..1) and the
 * half-open period each was taken in (the account's epoch in bits 8..15, the provider's
 * in bits 16..23). 0 = no permit. */
#define ROTA_TRIAL_ACCOUNT  1u /* the choice holds the account breaker's trial permit */
#define ROTA_TRIAL_PROVIDER 2u /* ... and/or the provider breaker's */

static inline uint32_t rota_trial_word(bool acct, unsigned acct_epoch, bool prov,
                                       unsigned prov_epoch)
{
    return (acct ? ROTA_TRIAL_ACCOUNT | (acct_epoch & 255u) << 8 : 0) |
           (prov ? ROTA_TRIAL_PROVIDER | (prov_epoch & 255u) << 16 : 0);
}
static inline unsigned rota_trial_account_epoch(uint32_t trial)
{
    return (trial >> 8) & 255u;
}
static inline unsigned rota_trial_provider_epoch(uint32_t trial)
{
    return (trial >> 16) & 255u;
}

/* What a thread remembers between its selections: the ranking of each tier it chose from
 * lately (select.c, "the shortlist"). The caller keeps one per thread and passes it in
 * every request, so the selection itself has no thread-local storage: a library loaded
 * with dlopen would otherwise have glibc allocate that storage on a thread's first call. */
#define ROTA_SHORT_SLOTS 8
#define ROTA_SHORT_MAX   8
#define ROTA_LRU_MAX     32

struct rota_shortlist {
    uint64_t table; /* the segment's nonce: a map address or generation number may recur */
    uint64_t at;
    uint32_t tier, n, nlru, uses;
    uint32_t size; /* the tier's member count: positions are below it whatever the table */
    uint32_t pos[ROTA_SHORT_MAX];
    float score[ROTA_SHORT_MAX]; /* the preferred one's raised to 2 */
    float left[ROTA_SHORT_MAX];  /* quota left when the list was built */
    uint32_t lru[ROTA_LRU_MAX];
};

struct rota_sel_cache {
    struct rota_shortlist list[ROTA_SHORT_SLOTS];
};

struct rota_sel_req {
    uint32_t route;               /* route index in this generation */
    struct rota_sel_cache *cache; /* the calling thread's; NULL: rank afresh every time */
    uint64_t key_hash;            /* sticky key's hash; 0 = none */
    uint64_t est_tokens;          /* charged to the TPM limit now, corrected on report */
    uint64_t now;                 /* monotonic ns */
    int64_t wall; /* wall-clock ns at "now", to place a quota reset on the monotonic
                   * clock when nothing is eligible; 0 = read the clock then */
    struct rota_shm_client *lease; /* the caller's lease slot (shm/clients.h); NULL = none */
    uint32_t lease_slot;           /* ... and its index */
    uint32_t skip_tiers;           /* bit k: pass over tier k (ROTA_SKIP_EXCLUDED) */
    const uint64_t *except;        /* account ids not to choose (ROTA_SKIP_EXCLUDED) */
    uint32_t nexcept;
};

struct rota_sel_res {
    uint32_t account, pool, tier, why;
    uint32_t trial; /* trial word: permits taken and their periods */
    uint32_t lease; /* the lease held for the call (rota_client_hold); 0 = none */
    uint16_t skipped[ROTA_MAX_TIERS]; /* ROTA_SKIP_* bits per tier passed over */
    uint64_t retry_at; /* exhausted: monotonic ns when something may free up; 0 unknown */
    uint64_t tok_tat;  /* the TPM word right after this admission (0 = no TPM limit) */
    uint64_t tok_back; /* the account's tok_back read before the admission */
};

/* Seqlock read attempts that had to be repeated, by this thread (for rota-bench). */
extern _Thread_local uint64_t rota_select_retries __attribute__((tls_model("initial-exec")));

/* Choose an account for route "q->route". 0, or ROTA_EEXHAUSTED with r->retry_at. */
int rota_select_route(const struct rota_shm_map *m, const struct rota_sel_req *q,
                      struct rota_rng *rng, struct rota_sel_res *r);

struct rota_outcome_in {
    int status;           /* HTTP status, 0 = none */
    int result;           /* enum rota_result */
    uint32_t pool, trial; /* trial: the selection's trial word */
    uint64_t latency_ns;
    uint64_t tokens; /* actual; 0 = the estimate stands */
    uint64_t est_tokens;
    uint64_t retry_after_ms;
    uint64_t tok_tat, tok_back; /* the selection's, to bound the TPM refund */
    uint64_t selected_at;       /* monotonic ns of the selection; 0 = unknown */
};

/* How an outcome is classified. */
enum rota_verdict {
    ROTA_VERDICT_SUCCESS,
    ROTA_VERDICT_RATE_LIMITED, /* 429: cooldown */
    ROTA_VERDICT_FAILURE,      /* 5xx, 529, timeout, connection: breaker */
    ROTA_VERDICT_DISABLE,      /* 401, 403, 402, billing: disable */
    ROTA_VERDICT_NEUTRAL,      /* other 4xx, cancelled: not the account's fault */
};
enum rota_verdict rota_outcome_verdict(int status, int result);

/* Apply an outcome to account "a" (any process, lock-free). "rnd" feeds jitter. */
void rota_report_apply(const struct rota_shm_map *m, uint32_t a,
                       const struct rota_outcome_in *o, uint64_t now, uint64_t rnd);

/* An account's used fraction for "pool" (max over its windows), seqlock-read. Returns
 * false when the snapshot stayed busy. *frac is -1 without data. */
bool rota_account_fraction(const struct rota_shm_map *m, uint32_t a, uint32_t pool,
                           double *frac, uint32_t *flags);

/* Calls selected and not yet reported on account "a" (never negative). */
static inline uint32_t rota_in_flight(const struct rota_shm_map *m, uint32_t a)
{
    int64_t v = (int64_t)(rota_load(&m->hot[a].use0[0]) - rota_load(&m->hot[a].done));
    return v > 0 ? (uint32_t)v : 0;
}

/* Calls ever selected on account "a". */
static inline uint64_t rota_selections(const struct rota_shm_map *m, uint32_t a)
{
    return rota_load(&m->hot[a].use0[0]);
}

/* Hot-word encoding of a worker-side disable: reason in the low byte, until (monotonic
 * ms, 0 = until re-enabled) above it. */
static inline uint64_t rota_disable_word(uint32_t reason, uint64_t until_ms)
{
    return (until_ms << 8) | (reason & 0xff) | (reason & 0xff ? 0 : 1);
}

#endif
