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

#define NS_PER_MS        1000000ull
#define TRIAL_DEFAULT_MS 120000u

static unsigned permits_of(const struct rota_breaker_cfg *c)
{
    unsigned k = c->permits ? c->permits : 1;
    return k > ROTA_BREAKER_PERMITS_MAX ? ROTA_BREAKER_PERMITS_MAX : k;
}

static uint64_t trial_ns(const struct rota_breaker_cfg *c)
{
    return (uint64_t)(c->trial_ms ? c->trial_ms : TRIAL_DEFAULT_MS) * NS_PER_MS;
}

/* Whether "cur" is the half-open period "epoch" a trial was taken in. */
static bool in_period(uint64_t cur, unsigned epoch)
{
    return rota_breaker_state_of(cur) == ROTA_BREAKER_HALF_OPEN &&
           rota_breaker_epoch(cur) == (epoch & 255);
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
    uint64_t until = rota_breaker_until_ns(w);
    switch (rota_breaker_state_of(w)) {
    case ROTA_BREAKER_CLOSED:
        return ROTA_GATE_PASS;
    case ROTA_BREAKER_OPEN:
        if (now_ns >= until)
            return ROTA_GATE_TRIAL;
        break;
    default:
        if (rota_breaker_permits(w) > 0 || now_ns >= until)
            return ROTA_GATE_TRIAL;
        break;
    }
    if (until_ns)
        *until_ns = until;
    return ROTA_GATE_BLOCKED;
}

enum rota_breaker_take rota_breaker_acquire(_Atomic uint64_t *w,
                                            const struct rota_breaker_cfg *c, uint64_t now_ns,
                                            unsigned *epoch)
{
    uint64_t cur = rota_load(w), deadline = now_ns + trial_ns(c);
    unsigned k = permits_of(c);
    for (;;) {
        unsigned st = rota_breaker_state_of(cur), trips = rota_breaker_trips(cur);
        unsigned ep = rota_breaker_epoch(cur), left = rota_breaker_permits(cur);
        uint64_t next;
        if (st == ROTA_BREAKER_CLOSED)
            return ROTA_BREAKER_NO_TRIAL;
        if (st == ROTA_BREAKER_OPEN) {
            if (now_ns < rota_breaker_until_ns(cur))
                return ROTA_BREAKER_DENIED;
            next = rota_breaker_word(ROTA_BREAKER_HALF_OPEN, trips, k - 1, 0, ep + 1, deadline);
        } else if (left > 0) {
            /* the deadline follows the latest permit: no re-arm while it may report */
            next = rota_breaker_word(ROTA_BREAKER_HALF_OPEN, trips, left - 1,
                                     rota_breaker_successes(cur), ep, deadline);
        } else if (now_ns >= rota_breaker_until_ns(cur)) {
            /* Every permit taken, none reported by the deadline: the trials are abandoned
             * and a new period begins, whose epoch their late outcomes do not match. */
            next = rota_breaker_word(ROTA_BREAKER_HALF_OPEN, trips, k - 1, 0, ep + 1, deadline);
        } else {
            return ROTA_BREAKER_DENIED;
        }
        if (rota_cas(w, &cur, next)) {
            if (epoch)
                *epoch = rota_breaker_epoch(next);
            return ROTA_BREAKER_PERMIT;
        }
    }
}

void rota_breaker_release(_Atomic uint64_t *w, const struct rota_breaker_cfg *c, unsigned epoch)
{
    uint64_t cur = rota_load(w);
    unsigned k = permits_of(c);
    while (in_period(cur, epoch) && rota_breaker_permits(cur) < k &&
           !rota_cas(w, &cur, cur + ((uint64_t)1 << 7)))
        ;
}

void rota_breaker_success(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, bool trial, unsigned epoch)
{
    if (consec && rota_load(consec) != 0)
        rota_store(consec, 0);
    if (!trial)
        return;
    uint64_t cur = rota_load(w);
    unsigned k = permits_of(c);
    while (in_period(cur, epoch)) {
        unsigned succ = rota_breaker_successes(cur) + 1;
        uint64_t next = succ >= k ? rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0,
                                                      rota_breaker_epoch(cur), 0)
                                  : cur + ((uint64_t)1 << 14);
        if (rota_cas(w, &cur, next))
            return;
    }
}

bool rota_breaker_failure(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, uint64_t now_ns, uint64_t rnd,
                          bool trial, unsigned epoch)
{
    uint32_t n = consec ? rota_add(consec, 1) + 1 : 0;
    uint64_t cur = rota_load(w);
    for (;;) {
        unsigned st = rota_breaker_state_of(cur), trips = rota_breaker_trips(cur);
        if (st == ROTA_BREAKER_OPEN)
            return false; /* already open: a late report from before it opened */
        if (st == ROTA_BREAKER_CLOSED && n < c->fail_threshold)
            return false;
        if (st == ROTA_BREAKER_HALF_OPEN && !(trial && in_period(cur, epoch)))
            return false; /* not a trial of this period: a call chosen before it began */
        uint64_t next =
            rota_breaker_word(ROTA_BREAKER_OPEN, trips + 1, 0, 0, rota_breaker_epoch(cur),
                              now_ns + jittered(c, trips + 1, rnd) * NS_PER_MS);
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
            rota_breaker_word(ROTA_BREAKER_OPEN, trips, 0, 0, rota_breaker_epoch(cur),
                              now_ns + jittered(c, trips, rnd) * NS_PER_MS);
        if (rota_cas(w, &cur, next))
            return;
    }
}

/* A new epoch: trials still in flight from before the reset count for nothing, and a
 * reload's carry sees the reset as newer than the word it replaced. */
/* An operator's reset moves the period on by half the epoch's range: a reload's carry
 * (shm/carry.c) then takes it as further along than anything a stale worker on the old
 * generation can reach in the few periods of the settle window, and no trial from
 * before it counts. */
#define RESET_EPOCH_STEP 128u

void rota_breaker_reset(_Atomic uint64_t *w, _Atomic uint32_t *consec)
{
    uint64_t cur = rota_load(w);
    while (!rota_cas(w, &cur,
                     rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0,
                                       rota_breaker_epoch(cur) + RESET_EPOCH_STEP - 1, 0)))
        ;
    if (consec)
        rota_store(consec, 0);
}
