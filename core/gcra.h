/*
 * gcra.h - admission for requests-per-minute and tokens-per-minute limits.
 *
 * DESIGN
 * The generic cell rate algorithm keeps one word per limit: the theoretical arrival time
 * (TAT, monotonic ns) of the next unit if traffic flowed at exactly the allowed rate. With
 * emission interval T and burst B, the bound L = tau + T = B * T:
 *
 *   admit n units at t  <=>  max(TAT, t) + n*T - t <= L,  then TAT = max(TAT, t) + n*T
 *
 * so a limit that has been idle admits B units at once and then one per T. The word is
 * changed by CAS only, so any number of processes together never admit more than the
 * limit allows, and a process killed between load and CAS changes nothing.
 *
 * T is a whole number of nanoseconds, rounded up from 60 s / limit (rota_gcra_make):
 * every cost is then exact integer arithmetic, B units fit the bound exactly, and the
 * rounding only ever admits less (7 per minute becomes one per 8571428572 ns). The
 * fastest limit this represents is one unit per ns, 6e10 per minute. Callers pass "now";
 * nothing here reads a clock.
 */
#ifndef ROTA_CORE_GCRA_H
#define ROTA_CORE_GCRA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "seqlock.h"

struct rota_gcra {
    uint64_t interval_ns; /* T; 0 = no limit */
    uint64_t limit_ns;    /* L = B * T */
};

/* A limit of "per_minute" units with a burst of "burst" (0 = per_minute). */
static inline struct rota_gcra rota_gcra_make(uint64_t per_minute, uint64_t burst)
{
    struct rota_gcra g;
    rota_shm_rate(per_minute, burst, &g.interval_ns, &g.limit_ns);
    return g;
}

/* Cost of n units in ns: at least one unit, at most L (an oversized call is admitted
 * only into a full bucket, rather than never). */
static inline uint64_t rota_gcra_cost(const struct rota_gcra *g, uint64_t n)
{
    uint64_t c;
    if (n == 0)
        n = 1;
    if (__builtin_mul_overflow(n, g->interval_ns, &c) || c > g->limit_ns)
        return g->limit_ns;
    return c;
}

static inline bool rota_gcra_fits(uint64_t tat, uint64_t cost, uint64_t limit, uint64_t now)
{
    uint64_t base = tat > now ? tat : now;
    return base + cost - now <= limit;
}

/* Would "n" units be admitted at "now"? Read-only. */
static inline bool rota_gcra_peek(_Atomic uint64_t *tat, const struct rota_gcra *g,
                                  uint64_t now, uint64_t n)
{
    return !g->interval_ns ||
           rota_gcra_fits(rota_load(tat), rota_gcra_cost(g, n), g->limit_ns, now);
}

/* Admit "n" units at "now". Returns true and advances the TAT (its new value in *after,
 * if not NULL; 0 without a limit), or false and sets *retry_at (if not NULL) to the
 * earliest time they would be admitted. */
static inline bool rota_gcra_admit_to(_Atomic uint64_t *tat, const struct rota_gcra *g,
                                      uint64_t now, uint64_t n, uint64_t *retry_at,
                                      uint64_t *after)
{
    if (after)
        *after = 0;
    if (!g->interval_ns)
        return true;
    uint64_t cost = rota_gcra_cost(g, n), t = rota_load(tat);
    for (;;) {
        uint64_t base = t > now ? t : now;
        if (base + cost - now > g->limit_ns) {
            if (retry_at)
                *retry_at = base + cost - g->limit_ns;
            return false;
        }
        if (rota_cas(tat, &t, base + cost)) {
            if (after)
                *after = base + cost;
            return true;
        }
    }
}

static inline bool rota_gcra_admit(_Atomic uint64_t *tat, const struct rota_gcra *g,
                                   uint64_t now, uint64_t n, uint64_t *retry_at)
{
    return rota_gcra_admit_to(tat, g, now, n, retry_at, NULL);
}

/* Correct an admission by "delta" units (negative gives units back, never below now). */
static inline void rota_gcra_adjust(_Atomic uint64_t *tat, const struct rota_gcra *g,
                                    uint64_t now, int64_t delta)
{
    if (!g->interval_ns || delta == 0)
        return;
    uint64_t mag = delta < 0 ? 0 - (uint64_t)delta : (uint64_t)delta, cost;
    if (__builtin_mul_overflow(mag, g->interval_ns, &cost) || cost > g->limit_ns)
        cost = g->limit_ns;
    uint64_t t = rota_load(tat);
    for (;;) {
        uint64_t nt;
        if (delta > 0)
            nt = (t > now ? t : now) + cost;
        else if (t <= now)
            return; /* nothing outstanding to give back */
        else
            nt = t - now > cost ? t - cost : now;
        if (rota_cas(tat, &t, nt))
            return;
    }
}

/* Give back up to "ns" of one admission's charge to "tat", but never more than that
 * admission still holds at "now": the word has moved since (other callers' charges lie
 * on top of it, the part before "now" has drained), so est - actual subtracted blindly
 * would hand out capacity that is no longer this admission's. "tat_after" is the word
 * right after the admission and "back_before" the account's "back" counter read before
 * it. Refunds since then ("giving" now minus "back_before") may have moved the
 * admission's slice of the word down by as much; it holds at most
 * tat_after - that - now. "giving" is raised before the word is lowered and "back" after
 * it, so a refund in progress is always counted against this one (a process killed in
 * between leaves "giving" ahead: refunds are then smaller, never larger, until the
 * table's writer sees the gap stand still and closes it). Returns the ns given back. */
static inline uint64_t rota_gcra_refund(_Atomic uint64_t *tat, _Atomic uint64_t *giving,
                                        _Atomic uint64_t *back, uint64_t now,
                                        uint64_t tat_after, uint64_t back_before, uint64_t ns)
{
    uint64_t moved = atomic_load_explicit(giving, memory_order_acquire) - back_before;
    if (ns == 0 || moved >= tat_after || tat_after - moved <= now)
        return 0; /* ("moved" wraps to a huge value if the counter restarted: nothing) */
    uint64_t held = tat_after - moved - now;
    ns = ns < held ? ns : held;
    atomic_fetch_add_explicit(giving, ns, memory_order_release);
    uint64_t t = rota_load(tat);
    while (t > now && !rota_cas(tat, &t, t - now > ns ? t - ns : now))
        ;
    atomic_fetch_add_explicit(back, ns, memory_order_release);
    return ns;
}

/* Earliest time one unit would be admitted (0 = now). */
static inline uint64_t rota_gcra_next(_Atomic uint64_t *tat, const struct rota_gcra *g)
{
    uint64_t t = rota_load(tat), one = rota_gcra_cost(g, 1);
    return g->interval_ns && t + one > g->limit_ns ? t + one - g->limit_ns : 0;
}

#endif
