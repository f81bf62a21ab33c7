/*
 * breaker.h - the circuit breaker in one CAS-able word.
 *
 * DESIGN
 * A breaker (per account, and per provider) is a single 64-bit word in a hot block, so
 * every transition is one CAS and a process killed anywhere leaves a valid state
 * (accessors in shm/breaker_word.h, which the carry across reloads reads too):
 *
 *   bits  0..1   state: CLOSED, OPEN, HALF_OPEN
 *   bits  2..6   trips: opens since the breaker last closed (the escalation), up to 31
 *   bits  7..13  trial permits left (HALF_OPEN), up to 127
 *   bits 14..20  trial successes so far in this half-open period (HALF_OPEN)
 *   bits 21..28  epoch: half-open periods entered, mod 256
 *   bits 29..63  until, monotonic time in 16 ms units rounded up (35 bits: 17 years
 *                after boot): end of OPEN; in HALF_OPEN the trial deadline, when permits
 *                all taken and none reported are re-armed
 *
 *   CLOSED --N consecutive failures--> OPEN(base * 2^(trips-1), capped, +-10 % jitter)
 *   OPEN --until passes, first caller takes a permit--> HALF_OPEN(K permits, epoch + 1)
 *   HALF_OPEN --K trial successes--> CLOSED (trips 0, epoch kept)
 *   HALF_OPEN --a trial failure--> OPEN (trips + 1, epoch kept)
 *   HALF_OPEN, no permit left, trial deadline passed --> HALF_OPEN(K permits, epoch + 1)
 *   any --operator reset--> CLOSED (epoch + 1)
 *
 * A trial permit is taken in an epoch, and the choice records it; its success, failure or
 * release counts only while the word is HALF_OPEN in that same epoch. A late outcome of an
 * earlier period (its trials were abandoned by a re-arm, or the breaker has opened and
 * half-opened again since) therefore changes nothing. Each permit taken moves the trial
 * deadline to "now + trial timeout" (two minutes by default, far longer than a call), so
 * a re-arm never hands out permits while a trial may still report; a trial caller that
 * never reports still leaks nothing for longer than the deadline.
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

#include "breaker_word.h"

struct rota_breaker_cfg {
    uint32_t fail_threshold; /* N */
    uint32_t permits;        /* K, at most ROTA_BREAKER_PERMITS_MAX */
    uint32_t base_ms, cap_ms;
    uint32_t trial_ms; /* trial deadline after the latest permit taken; 0 = 120 s */
};

/* What a selection may do with an account behind this breaker at "now". */
enum rota_breaker_gate {
    ROTA_GATE_PASS = 0,    /* closed */
    ROTA_GATE_TRIAL = 1,   /* a trial permit may be taken (rota_breaker_acquire) */
    ROTA_GATE_BLOCKED = 2, /* open, or half-open with no permit left; see *until_ns */
};

/* What rota_breaker_acquire did. */
enum rota_breaker_take {
    ROTA_BREAKER_DENIED = 0,  /* open, or another caller took the last permit */
    ROTA_BREAKER_PERMIT = 1,  /* took a trial permit in *epoch */
    ROTA_BREAKER_NO_TRIAL = 2 /* closed meanwhile: the call passes, holding no permit */
};

/* Read-only: may the breaker word "w" let a call through at "now_ns"? */
enum rota_breaker_gate rota_breaker_gate(uint64_t w, uint64_t now_ns, uint64_t *until_ns);

/* Take a trial permit (the gate said TRIAL): ROTA_BREAKER_PERMIT with the half-open
 * period's epoch in *epoch, ROTA_BREAKER_NO_TRIAL if the breaker has closed, or
 * ROTA_BREAKER_DENIED. */
enum rota_breaker_take rota_breaker_acquire(_Atomic uint64_t *w,
                                            const struct rota_breaker_cfg *c, uint64_t now_ns,
                                            unsigned *epoch);

/* Give back a trial permit taken in "epoch" and not used (the call was never made, or its
 * outcome says nothing about the provider: a 429, a 4xx). Nothing if the period is over. */
void rota_breaker_release(_Atomic uint64_t *w, const struct rota_breaker_cfg *c,
                          unsigned epoch);

/* A call succeeded; "trial" if it held a permit taken in "epoch". */
void rota_breaker_success(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, bool trial, unsigned epoch);

/* A call failed (5xx, timeout, connection); "trial" if it held a permit taken in "epoch".
 * Returns true if this call opened the breaker. */
bool rota_breaker_failure(_Atomic uint64_t *w, _Atomic uint32_t *consec,
                          const struct rota_breaker_cfg *c, uint64_t now_ns, uint64_t rnd,
                          bool trial, unsigned epoch);

/* Open period for the given trip number (1-based), before jitter. */
uint64_t rota_breaker_period_ms(const struct rota_breaker_cfg *c, unsigned trips);

/* Force a state (operator reset, supervisor failure-rate tick). */
void rota_breaker_force_open(_Atomic uint64_t *w, const struct rota_breaker_cfg *c,
                             uint64_t now_ns, uint64_t rnd);
void rota_breaker_reset(_Atomic uint64_t *w, _Atomic uint32_t *consec);

#endif
