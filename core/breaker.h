/*
 * breaker.h - the circuit breaker in one CAS-able word.
 *
 * DESIGN
 * A breaker (per account, and per provider) is a single 64-bit word in a hot block, so
 * every transition is one CAS and a process killed anywhere leaves a valid state:
 *
 *   bits  0..1   state: CLOSED, OPEN, HALF_OPEN
 *   bits  2..7   trips: opens since the breaker last closed (the escalation)
 *   bits  8..15  trial permits left (HALF_OPEN)
 *   bits 16..23  trial successes so far (HALF_OPEN)
 *   bits 24..63  until, monotonic ms: end of OPEN; in HALF_OPEN, when unreturned
 *                permits are re-armed (a trial caller that never reports leaks none)
 *
 *   CLOSED --N consecutive failures--> OPEN(base * 2^(trips-1), capped, +-10 % jitter)
 *   OPEN --until passes, first caller takes a permit--> HALF_OPEN(K permits)
 *   HALF_OPEN --K successes--> CLOSED (trips 0);  --any failure--> OPEN (trips + 1)
 *
 * Consecutive failures live in a separate counter word (fetch_add), so the common path
 * (a success while CLOSED) only reads the breaker. Callers pass "now"; a random word for
 * jitter comes from the caller's generator.
 */
#ifndef ROTA_CORE_BREAKER_H
#define ROTA_CORE_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum rota_breaker_state {
    ROTA_BREAKER_CLOSED = 0,
    ROTA_BREAKER_OPEN = 1,
    ROTA_BREAKER_HALF_OPEN = 2,
};

struct rota_breaker_cfg {
    uint32_t fail_threshold; /* N */
    uint32_t permits;        /* K */
    uint32_t base_ms, cap_ms;
};

/* What a selection may do with an account behind this breaker at "now". */
enum rota_breaker_gate {
    ROTA_GATE_PASS = 0,    /* closed */
    ROTA_GATE_TRIAL = 1,   /* a trial permit may be taken (rota_breaker_acquire) */
    ROTA_GATE_BLOCKED = 2, /* open, or half-open with no permit left; see *until_ns */
};

static inline unsigned rota_breaker_state_of(uint64_t w)
{
    return (unsigned)(w & 3);
}
static inline unsigned rota_breaker_trips(uint64_t w)
{
    return (unsigned)(w >> 2) & 63;
}
static inline unsigned rota_breaker_permits(uint64_t w)
{
    return (unsigned)(w >> 8) & 255;
}
static inline unsigned rota_breaker_successes(uint64_t w)
{
    return (unsigned)(w >> 16) & 255;
}
static inline uint64_t rota_breaker_until_ms(uint64_t w)
{
    return w >> 24;
}

/* Read-only: may the breaker word "w" let a call through at "now_ns"? */
enum rota_breaker_gate rota_breaker_gate(uint64_t w, uint64_t now_ns, uint64_t *until_ns);

/* Take a trial permit (the gate said TRIAL). False if another caller took the last. */
bool rota_breaker_acquire(_Atomic uint64_t *w, const struct rota_breaker_cfg *c,
                          uint64_t now_ns);

/* Give back a trial permit taken by rota_breaker_acquire and not used (the call was
 * never made, or its outcome says nothing about the provider: a 429, a 4xx). */
void rota_breaker_release(_Atomic uint64_t *w, const struct rota_breaker_cfg *c);

/* A call succeeded; "trial" if it held a permit. */
void rota_breaker_success(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, bool trial);

/* A call failed (5xx, timeout, connection). Returns true if this call opened the breaker. */
bool rota_breaker_failure(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, uint64_t now_ns, uint64_t rnd,
                          bool trial);

/* Open period for the given trip number (1-based), before jitter. */
uint64_t rota_breaker_period_ms(const struct rota_breaker_cfg *c, unsigned trips);

/* Force a state (operator reset, supervisor failure-rate tick). */
void rota_breaker_force_open(_Atomic uint64_t *w, const struct rota_breaker_cfg *c,
                             uint64_t now_ns, uint64_t rnd);
void rota_breaker_reset(_Atomic uint64_t *w, _Atomic uint32_t *consec);

#endif
