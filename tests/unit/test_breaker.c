/* test_breaker: the one-word circuit breaker: trips, escalation, half-open permits under
 * contention, recovery, leaked permits, half-open periods (epochs). Time is injected. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "breaker.h"

#define MS 1000000ull
#define Q  16 /* ms: the granularity of the word's "until" */

static const struct rota_breaker_cfg cfg = {
    .fail_threshold = 5, .permits = 3, .base_ms = 1000, .cap_ms = 16000};

static void test_breaker_opens_after_n_consecutive_failures(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = 1000 * MS;
    for (int i = 0; i < 4; i++)
        assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false, 0));
    rota_breaker_success(&w, &consec, &cfg, false, 0); /* a success in between resets */
    assert_int_equal(atomic_load(&consec), 0);
    for (int i = 0; i < 4; i++)
        assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false, 0));
    assert_int_equal(rota_breaker_gate(atomic_load(&w), now, NULL), ROTA_GATE_PASS);
    assert_true(rota_breaker_failure(&w, &consec, &cfg, now, 0, false, 0));
    uint64_t word = atomic_load(&w), until;
    assert_int_equal(rota_breaker_state_of(word), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_trips(word), 1);
    assert_int_equal(rota_breaker_gate(word, now, &until), ROTA_GATE_BLOCKED);
    assert_true(until >= now + 900 * MS && until <= now + (1100 + Q) * MS);
    /* Late failures of calls made before it opened change nothing. */
    assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false, 0));
    assert_int_equal(atomic_load(&w), word);
}

static void test_breaker_period_escalates_and_caps(void **state)
{
    (void)state;
    assert_int_equal(rota_breaker_period_ms(&cfg, 1), 1000);
    assert_int_equal(rota_breaker_period_ms(&cfg, 2), 2000);
    assert_int_equal(rota_breaker_period_ms(&cfg, 4), 8000);
    assert_int_equal(rota_breaker_period_ms(&cfg, 5), 16000);
    assert_int_equal(rota_breaker_period_ms(&cfg, 30), 16000);
    /* Jitter: +-10 % around the period, and actually spread. */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t r = 0; r < 1000; r++) {
        _Atomic uint64_t w = 0;
        rota_breaker_force_open(&w, &cfg, 0, r * 2654435761u);
        uint64_t until = rota_breaker_until_ms(atomic_load(&w));
        lo = until < lo ? until : lo;
        hi = until > hi ? until : hi;
    }
    assert_true(lo >= 900 && hi <= 1100 + Q);
    assert_true(hi - lo > 150);
}

/* Open it, let the period pass, and return the time. */
static uint64_t open_and_expire(_Atomic uint64_t *w, _Atomic uint32_t *consec)
{
    uint64_t now = 5000 * MS;
    for (int i = 0; i < 5; i++)
        rota_breaker_failure(w, consec, &cfg, now, 0, false, 0);
    uint64_t until = rota_breaker_until_ms(atomic_load(w)) * MS;
    return until;
}

static void test_breaker_half_open_closes_after_k_successes(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    assert_int_equal(rota_breaker_gate(atomic_load(&w), now - 1 * MS, NULL), ROTA_GATE_BLOCKED);
    assert_int_equal(rota_breaker_gate(atomic_load(&w), now, NULL), ROTA_GATE_TRIAL);
    unsigned ep = 99;
    for (int k = 0; k < 3; k++)
        assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &ep), ROTA_BREAKER_PERMIT);
    assert_int_equal(ep, 1); /* the first half-open period */
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, NULL), ROTA_BREAKER_DENIED);
    assert_int_equal(rota_breaker_gate(atomic_load(&w), now, NULL), ROTA_GATE_BLOCKED);
    rota_breaker_success(&w, &consec, &cfg, true, ep);
    rota_breaker_success(&w, &consec, &cfg, false, 0); /* not a trial: does not count */
    rota_breaker_success(&w, &consec, &cfg, true, ep);
    assert_int_equal(rota_breaker_state_of(atomic_load(&w)), ROTA_BREAKER_HALF_OPEN);
    rota_breaker_success(&w, &consec, &cfg, true, ep);
    uint64_t word = atomic_load(&w); /* closed, escalation forgotten, the period kept */
    assert_int_equal(rota_breaker_state_of(word), ROTA_BREAKER_CLOSED);
    assert_int_equal(word & ~ROTA_BREAKER_EPOCH_MASK, 0);
    assert_int_equal(rota_breaker_epoch(word), 1);
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, NULL), ROTA_BREAKER_NO_TRIAL);
    assert_int_equal(atomic_load(&w), word); /* a closed breaker hands out no permit */
}

static void test_breaker_trial_failure_reopens_longer(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    unsigned ep;
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &ep), ROTA_BREAKER_PERMIT);
    /* A failure from a call that was not a trial does not decide anything. */
    assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false, 0));
    assert_int_equal(rota_breaker_state_of(atomic_load(&w)), ROTA_BREAKER_HALF_OPEN);
    assert_true(rota_breaker_failure(&w, &consec, &cfg, now, 0, true, ep));
    uint64_t word = atomic_load(&w);
    assert_int_equal(rota_breaker_state_of(word), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_trips(word), 2);
    uint64_t period = rota_breaker_until_ms(word) * MS - now;
    assert_true(period >= 1800 * MS && period <= (2200 + Q) * MS);
}

/* Trials that never report are abandoned at the trial deadline (two minutes after the
 * latest permit by default), never after the open period: an LLM call outlasts that, and
 * permits handed out again while it runs would let more trials through than K. */
static void test_breaker_leaked_permits_are_rearmed(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    unsigned first, ep;
    for (int k = 0; k < 3; k++) /* and never report */
        assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &first), ROTA_BREAKER_PERMIT);
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now + 1000 * MS, NULL),
                     ROTA_BREAKER_DENIED); /* one base period: the trials may still run */
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now + 119999 * MS, NULL),
                     ROTA_BREAKER_DENIED);
    uint64_t until = 0;
    assert_int_equal(rota_breaker_gate(atomic_load(&w), now + 60000 * MS, &until),
                     ROTA_GATE_BLOCKED);
    assert_true(until >= now + 120000 * MS && until < now + (120000 + Q) * MS);
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now + (120000 + Q) * MS, &ep),
                     ROTA_BREAKER_PERMIT);
    assert_int_equal(ep, (first + 1) & 255); /* a new half-open period */
    assert_int_equal(rota_breaker_permits(atomic_load(&w)), 2);
    /* A trial deadline of its own: 10 s after the latest permit. */
    struct rota_breaker_cfg quick = cfg;
    quick.trial_ms = 10000;
    _Atomic uint64_t v = 0;
    now = open_and_expire(&v, &consec);
    assert_int_equal(rota_breaker_acquire(&v, &quick, now, NULL), ROTA_BREAKER_PERMIT);
    assert_int_equal(rota_breaker_acquire(&v, &quick, now + 5000 * MS, NULL),
                     ROTA_BREAKER_PERMIT);
    assert_int_equal(rota_breaker_acquire(&v, &quick, now + 9000 * MS, NULL),
                     ROTA_BREAKER_PERMIT);
    assert_int_equal(rota_breaker_acquire(&v, &quick, now + 11000 * MS, NULL),
                     ROTA_BREAKER_DENIED); /* the latest permit's deadline, not the first's */
    assert_int_equal(rota_breaker_acquire(&v, &quick, now + (19000 + Q) * MS, NULL),
                     ROTA_BREAKER_PERMIT);
}

/* The outcome of a trial taken in one half-open period counts in no other: neither after
 * a re-arm abandoned it, nor after the breaker opened and half-opened again. */
static void test_breaker_late_outcome_of_earlier_period_ignored(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    unsigned old, a, b;
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &old), ROTA_BREAKER_PERMIT);
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &a), ROTA_BREAKER_PERMIT);
    /* Another trial of the same period fails: open again, then half-open again. */
    assert_true(rota_breaker_failure(&w, &consec, &cfg, now, 0, true, a));
    now = rota_breaker_until_ns(atomic_load(&w));
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &b), ROTA_BREAKER_PERMIT);
    assert_int_not_equal(b, old);
    uint64_t word = atomic_load(&w);
    /* The first period's trial reports late: success, release, failure all count for
     * nothing in the second. */
    rota_breaker_success(&w, &consec, &cfg, true, old);
    rota_breaker_success(&w, &consec, &cfg, true, old);
    rota_breaker_success(&w, &consec, &cfg, true, old);
    assert_int_equal(atomic_load(&w), word);
    rota_breaker_release(&w, &cfg, old);
    assert_int_equal(atomic_load(&w), word);
    assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, true, old));
    assert_int_equal(atomic_load(&w), word);
    /* The second period's own trials still decide it. */
    rota_breaker_release(&w, &cfg, b);
    assert_int_equal(rota_breaker_permits(atomic_load(&w)), 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &b), ROTA_BREAKER_PERMIT);
        rota_breaker_success(&w, &consec, &cfg, true, b);
    }
    assert_int_equal(rota_breaker_state_of(atomic_load(&w)), ROTA_BREAKER_CLOSED);
}

/* Epochs survive 256 half-open periods: the counter wraps, the comparison with it. */
static void test_breaker_epoch_wraps(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    unsigned ep = 0, prev;
    for (int k = 0; k < 300; k++) {
        prev = ep;
        assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &ep), ROTA_BREAKER_PERMIT);
        if (k)
            assert_int_equal(ep, (prev + 1) & 255);
        assert_true(rota_breaker_failure(&w, &consec, &cfg, now, 0, true, ep));
        now = rota_breaker_until_ns(atomic_load(&w));
    }
    uint64_t a = rota_breaker_word(ROTA_BREAKER_HALF_OPEN, 1, 0, 0, 255, 0);
    uint64_t b = rota_breaker_word(ROTA_BREAKER_HALF_OPEN, 1, 0, 0, 0, 0);
    assert_true(rota_breaker_ahead(b, a)); /* 0 follows 255 */
    assert_false(rota_breaker_ahead(a, b));
}

/* "until" counts 16 ms units over 35 bits: a host up for ten years still opens for the
 * configured period, and the period is never cut short by the rounding. */
static void test_breaker_until_covers_years(void **state)
{
    (void)state;
    uint64_t ten_years = 10ull * 366 * 86400 * 1000 * MS + 7 * MS;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    for (int i = 0; i < 5; i++)
        rota_breaker_failure(&w, &consec, &cfg, ten_years, 0, false, 0);
    uint64_t word = atomic_load(&w), until = 0;
    assert_int_equal(rota_breaker_state_of(word), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_gate(word, ten_years + 800 * MS, &until), ROTA_GATE_BLOCKED);
    assert_true(until >= ten_years + 900 * MS && until <= ten_years + (1100 + Q) * MS);
    assert_int_equal(rota_breaker_gate(word, until, NULL), ROTA_GATE_TRIAL);
    assert_int_equal(rota_breaker_gate(word, until - 1, NULL), ROTA_GATE_BLOCKED);
}

#define THREADS 8

struct race {
    _Atomic uint64_t *w;
    uint64_t now;
    _Atomic int go;
    _Atomic int granted;
};

static void *contender(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->go))
        ;
    for (int i = 0; i < 1000; i++)
        if (rota_breaker_acquire(r->w, &cfg, r->now, NULL) == ROTA_BREAKER_PERMIT)
            atomic_fetch_add(&r->granted, 1);
    return NULL;
}

static void test_breaker_half_open_permits_under_contention(void **state)
{
    (void)state;
    for (int round = 0; round < 50; round++) {
        _Atomic uint64_t w = 0;
        _Atomic uint32_t consec = 0;
        struct race r = {.w = &w};
        r.now = open_and_expire(&w, &consec);
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, contender, &r), 0);
        atomic_store(&r.go, 1);
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        assert_int_equal(atomic_load(&r.granted), 3);
        assert_int_equal(rota_breaker_permits(atomic_load(&w)), 0);
    }
}

static void test_breaker_unused_permit_is_given_back(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    unsigned ep;
    for (int k = 0; k < 3; k++)
        assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &ep), ROTA_BREAKER_PERMIT);
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, NULL), ROTA_BREAKER_DENIED);
    rota_breaker_release(&w, &cfg, ep); /* e.g. the trial call got a 429 */
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &ep), ROTA_BREAKER_PERMIT);
    for (int k = 0; k < 5; k++) /* never more than K permits */
        rota_breaker_release(&w, &cfg, ep);
    assert_int_equal(rota_breaker_permits(atomic_load(&w)), 3);
    _Atomic uint64_t closed = 0;
    rota_breaker_release(&closed, &cfg, 0);
    assert_int_equal(atomic_load(&closed), 0);
}

static void test_breaker_reset(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    unsigned ep;
    assert_int_equal(rota_breaker_acquire(&w, &cfg, now, &ep), ROTA_BREAKER_PERMIT);
    rota_breaker_reset(&w, &consec);
    uint64_t word = atomic_load(&w);
    assert_int_equal(rota_breaker_state_of(word), ROTA_BREAKER_CLOSED);
    assert_int_equal(word & ~ROTA_BREAKER_EPOCH_MASK, 0);
    assert_true(rota_breaker_ahead(word, rota_breaker_word(ROTA_BREAKER_OPEN, 1, 0, 0, ep, 0)));
    assert_int_equal(atomic_load(&consec), 0);
    assert_int_equal(rota_breaker_gate(word, 0, NULL), ROTA_GATE_PASS);
    assert_int_equal(rota_breaker_gate(0, 0, NULL), ROTA_GATE_PASS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_opens_after_n_consecutive_failures),
        cmocka_unit_test(test_breaker_period_escalates_and_caps),
        cmocka_unit_test(test_breaker_half_open_closes_after_k_successes),
        cmocka_unit_test(test_breaker_trial_failure_reopens_longer),
        cmocka_unit_test(test_breaker_leaked_permits_are_rearmed),
        cmocka_unit_test(test_breaker_late_outcome_of_earlier_period_ignored),
        cmocka_unit_test(test_breaker_epoch_wraps),
        cmocka_unit_test(test_breaker_until_covers_years),
        cmocka_unit_test(test_breaker_half_open_permits_under_contention),
        cmocka_unit_test(test_breaker_unused_permit_is_given_back),
        cmocka_unit_test(test_breaker_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
