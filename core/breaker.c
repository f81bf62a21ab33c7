/*
 * breaker.c - transitions of the one-word circuit breaker (see breaker.h for the word).
 *
 * DESIGN
 * Called by any worker thread in any process on the report path (failure, success) and
 * on the select path (gate, acquire), and by the supervisor's tick. Every transition is a
 * CAS loop on the breaker word with acq_rel ordering; no loop waits on another process:
 * a failed CAS means someone else moved the state, and the loop re-decides from the new
 * value. Lock-free, allocation-free, no system calls.
 */
#include "breaker.h"

#include "seqlock.h"

#define NS_PER_MS 1000000ull

static uint64_t pack(unsigned state, unsigned trips, unsigned permits, unsigned succ,
                     uint64_t until_ms)
{
    return (uint64_t)state | (uint64_t)(trips > 63 ? 63 : trips) << 2 |
           (uint64_t)(permits & 255) << 8 | (uint64_t)(succ & 255) << 16 | until_ms << 24;
}

uint64_t rota_breaker_period_ms(const struct rota_breaker_cfg *c, unsigned trips)
{
    uint64_t p = c->base_ms ? c->base_ms : 1;
    for (unsigned i = 1; i < trips && p < c->cap_ms; i++)
        p *= 2;
    return p > c->cap_ms && c->cap_ms ? c->cap_ms : p;
}

/* The open period with +-10 % jitter from "rnd", so breakers opened together do not all
 * send their trial calls at the same instant. */
static uint64_t jittered(const struct rota_breaker_cfg *c, unsigned trips, uint64_t rnd)
{
    uint64_t p = rota_breaker_period_ms(c, trips);
    uint64_t span = p / 5; /* 20 % wide */
    return span ? p - span / 2 + (rnd % (span + 1)) : p;
}

enum rota_breaker_gate rota_breaker_gate(uint64_t w, uint64_t now_ns, uint64_t *until_ns)
{
    uint64_t now_ms = now_ns / NS_PER_MS, until = rota_breaker_until_ms(w);
    switch (rota_breaker_state_of(w)) {
    case ROTA_BREAKER_CLOSED:
        return ROTA_GATE_PASS;
    case ROTA_BREAKER_OPEN:
        if (now_ms >= until)
            return ROTA_GATE_TRIAL;
        break;
    default:
        if (rota_breaker_permits(w) > 0 || now_ms >= until)
            return ROTA_GATE_TRIAL;
        break;
    }
    if (until_ns)
        *until_ns = until * NS_PER_MS;
    return ROTA_GATE_BLOCKED;
}

bool rota_breaker_acquire(_Atomic uint64_t *w, const struct rota_breaker_cfg *c,
                          uint64_t now_ns)
{
    uint64_t now_ms = now_ns / NS_PER_MS, cur = rota_load(w);
    unsigned k = c->permits ? c->permits : 1;
    /* A trial that never reports would hold its permit forever: re-arm after one base
     * period (kept in "until" while half-open). */
    uint64_t rearm = now_ms + (c->base_ms ? c->base_ms : 1000);
    for (;;) {
        unsigned st = rota_breaker_state_of(cur), trips = rota_breaker_trips(cur);
        uint64_t next;
        if (st == ROTA_BREAKER_CLOSED)
            return true;
        if (st == ROTA_BREAKER_OPEN) {
            if (now_ms < rota_breaker_until_ms(cur))
                return false;
            next = pack(ROTA_BREAKER_HALF_OPEN, trips, k - 1, 0, rearm);
        } else if (rota_breaker_permits(cur) > 0) {
            next = cur - ((uint64_t)1 << 8);
        } else if (now_ms >= rota_breaker_until_ms(cur)) {
            next =
                pack(ROTA_BREAKER_HALF_OPEN, trips, k - 1, rota_breaker_successes(cur), rearm);
        } else {
            return false;
        }
        if (rota_cas(w, &cur, next))
            return true;
    }
}

void rota_breaker_release(_Atomic uint64_t *w, const struct rota_breaker_cfg *c)
{
    uint64_t cur = rota_load(w);
    unsigned k = c->permits ? c->permits : 1;
    while (rota_breaker_state_of(cur) == ROTA_BREAKER_HALF_OPEN &&
           rota_breaker_permits(cur) < k && !rota_cas(w, &cur, cur + ((uint64_t)1 << 8)))
        ;
}

void rota_breaker_success(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, bool trial)
{
    if (consec && rota_load(consec) != 0)
        rota_store(consec, 0);
    uint64_t cur = rota_load(w);
    unsigned k = c->permits ? c->permits : 1;
    while (rota_breaker_state_of(cur) == ROTA_BREAKER_HALF_OPEN && trial) {
        unsigned succ = rota_breaker_successes(cur) + 1;
        uint64_t next =
            succ >= k ? pack(ROTA_BREAKER_CLOSED, 0, 0, 0, 0) : cur + ((uint64_t)1 << 16);
        if (rota_cas(w, &cur, next))
            return;
    }
}

bool rota_breaker_failure(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, uint64_t now_ns, uint64_t rnd,
                          bool trial)
{
    uint32_t n = consec ? rota_add(consec, 1) + 1 : 0;
    uint64_t now_ms = now_ns / NS_PER_MS, cur = rota_load(w);
    for (;;) {
        unsigned st = rota_breaker_state_of(cur), trips = rota_breaker_trips(cur);
        if (st == ROTA_BREAKER_OPEN)
            return false; /* already open: a late report from before it opened */
        if (st == ROTA_BREAKER_CLOSED && n < c->fail_threshold)
            return false;
        if (st == ROTA_BREAKER_HALF_OPEN && !trial)
            return false; /* a call chosen before the breaker opened: not a trial */
        uint64_t next =
            pack(ROTA_BREAKER_OPEN, trips + 1, 0, 0, now_ms + jittered(c, trips + 1, rnd));
        if (rota_cas(w, &cur, next)) {
            if (consec)
                rota_store(consec, 0);
            return true;
        }
    }
}

void rota_breaker_force_open(_Atomic uint64_t *w, const struct rota_breaker_cfg *c,
                             uint64_t now_ns, uint64_t rnd)
{
    uint64_t cur = rota_load(w);
    for (;;) {
        unsigned trips = rota_breaker_trips(cur) + 1;
        uint64_t next =
            pack(ROTA_BREAKER_OPEN, trips, 0, 0, now_ns / NS_PER_MS + jittered(c, trips, rnd));
        if (rota_cas(w, &cur, next))
            return;
    }
}

void rota_breaker_reset(_Atomic uint64_t *w, _Atomic uint32_t *consec)
{
    rota_store(w, 0);
    if (consec)
        rota_store(consec, 0);
}
