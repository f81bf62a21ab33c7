/* test_breaker: the one-word circuit breaker: trips, escalation, half-open permits under
 * contention, recovery, leaked permits. Time is injected. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "breaker.h"

#define MS 1000000ull

static const struct rota_breaker_cfg cfg = {
    .fail_threshold = 5, .permits = 3, .base_ms = 1000, .cap_ms = 16000};

static void test_breaker_opens_after_n_consecutive_failures(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = 1000 * MS;
    for (int i = 0; i < 4; i++)
        assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false));
    rota_breaker_success(&w, &consec, &cfg, false); /* a success in between resets */
    assert_int_equal(atomic_load(&consec), 0);
    for (int i = 0; i < 4; i++)
        assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false));
    assert_int_equal(rota_breaker_gate(atomic_load(&w), now, NULL), ROTA_GATE_PASS);
    assert_true(rota_breaker_failure(&w, &consec, &cfg, now, 0, false));
    uint64_t word = atomic_load(&w), until;
    assert_int_equal(rota_breaker_state_of(word), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_trips(word), 1);
    assert_int_equal(rota_breaker_gate(word, now, &until), ROTA_GATE_BLOCKED);
    assert_true(until >= now + 900 * MS && until <= now + 1100 * MS);
    /* Late failures of calls made before it opened change nothing. */
    assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false));
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
    assert_true(lo >= 900 && hi <= 1100);
    assert_true(hi - lo > 150);
}

/* Open it, let the period pass, and return the time. */
static uint64_t open_and_expire(_Atomic uint64_t *w, _Atomic uint32_t *consec)
{
    uint64_t now = 5000 * MS;
    for (int i = 0; i < 5; i++)
        rota_breaker_failure(w, consec, &cfg, now, 0, false);
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
    for (int k = 0; k < 3; k++)
        assert_true(rota_breaker_acquire(&w, &cfg, now));
    assert_false(rota_breaker_acquire(&w, &cfg, now));
    assert_int_equal(rota_breaker_gate(atomic_load(&w), now, NULL), ROTA_GATE_BLOCKED);
    rota_breaker_success(&w, &consec, &cfg, true);
    rota_breaker_success(&w, &consec, &cfg, false); /* not a trial: does not count */
    rota_breaker_success(&w, &consec, &cfg, true);
    assert_int_equal(rota_breaker_state_of(atomic_load(&w)), ROTA_BREAKER_HALF_OPEN);
    rota_breaker_success(&w, &consec, &cfg, true);
    assert_int_equal(atomic_load(&w), 0); /* closed, escalation forgotten */
}

static void test_breaker_trial_failure_reopens_longer(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    assert_true(rota_breaker_acquire(&w, &cfg, now));
    /* A failure from a call that was not a trial does not decide anything. */
    assert_false(rota_breaker_failure(&w, &consec, &cfg, now, 0, false));
    assert_int_equal(rota_breaker_state_of(atomic_load(&w)), ROTA_BREAKER_HALF_OPEN);
    assert_true(rota_breaker_failure(&w, &consec, &cfg, now, 0, true));
    uint64_t word = atomic_load(&w);
    assert_int_equal(rota_breaker_state_of(word), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_trips(word), 2);
    uint64_t period = rota_breaker_until_ms(word) * MS - now;
    assert_true(period >= 1800 * MS && period <= 2200 * MS);
}

static void test_breaker_leaked_permits_are_rearmed(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    uint64_t now = open_and_expire(&w, &consec);
    for (int k = 0; k < 3; k++)
        assert_true(rota_breaker_acquire(&w, &cfg, now)); /* and never report */
    assert_false(rota_breaker_acquire(&w, &cfg, now + 999 * MS));
    assert_true(rota_breaker_acquire(&w, &cfg, now + 1000 * MS));
    assert_int_equal(rota_breaker_permits(atomic_load(&w)), 2);
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
        if (rota_breaker_acquire(r->w, &cfg, r->now))
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
    for (int k = 0; k < 3; k++)
        assert_true(rota_breaker_acquire(&w, &cfg, now));
    assert_false(rota_breaker_acquire(&w, &cfg, now));
    rota_breaker_release(&w, &cfg); /* e.g. the trial call got a 429 */
    assert_true(rota_breaker_acquire(&w, &cfg, now));
    for (int k = 0; k < 5; k++) /* never more than K permits */
        rota_breaker_release(&w, &cfg);
    assert_int_equal(rota_breaker_permits(atomic_load(&w)), 3);
    _Atomic uint64_t closed = 0;
    rota_breaker_release(&closed, &cfg);
    assert_int_equal(atomic_load(&closed), 0);
}

static void test_breaker_reset(void **state)
{
    (void)state;
    _Atomic uint64_t w = 0;
    _Atomic uint32_t consec = 0;
    open_and_expire(&w, &consec);
    rota_breaker_reset(&w, &consec);
    assert_int_equal(atomic_load(&w), 0);
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
        cmocka_unit_test(test_breaker_half_open_permits_under_contention),
        cmocka_unit_test(test_breaker_unused_permit_is_given_back),
        cmocka_unit_test(test_breaker_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
