/* stress_trials.c - a half-open breaker lets through exactly its trial permits, however
 * selectors race, also when the account and its provider are both half-open, when it
 * closes under them, and whatever reports arrive late from an earlier half-open period. */
/*
 * DESIGN
 * One account behind one provider, both half-open: one of them with one permit left,
 * the other with four (each way round in turn). A selection must take a permit from
 * each, so at most one trial goes through per round, and each breaker's permits left
 * plus the trials granted is exactly what it had. Each round the main thread re-arms both
 * breaker words, then THREADS threads, released together by a barrier, select once each. A
 * selector that wins the provider's permit but loses the account's, or the reverse, must give
 * back exactly what it took: a permit given back that was never taken lets a second trial
 * through. A breaker that closes between a selector's scan and its commit gives it no
 * permit, and the choice must not claim one. ROTA_STRESS_SCALE (default 1) multiplies the
 * rounds.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "breaker.h"
#include "clock.h"
#include "fixture.h"
#include "select.h"

#define THREADS 4
#define ROUNDS  20000

struct race {
    struct fx f;
    pthread_barrier_t go, done;
    int rounds;
    _Atomic int granted; /* trials granted this round */
    _Atomic int chosen;  /* selections this round */
};

static void *selector(void *arg)
{
    struct race *r = arg;
    struct rota_rng rng = {(uint64_t)(uintptr_t)&rng};
    for (int i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(&r->go);
        struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
        struct rota_sel_res res;
        if (rota_select_route(r->f.m, &q, &rng, &res) == 0) {
            atomic_fetch_add(&r->chosen, 1);
            if (res.trial)
                atomic_fetch_add(&r->granted, 1);
        }
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

/* A half-open word with "permits" left, re-armed an hour from now. */
static uint64_t half_open(unsigned permits)
{
    return rota_breaker_word(ROTA_BREAKER_HALF_OPEN, 1, permits, 0, 1,
                             rota_clock_mono() + 3600 * ROTA_NS_PER_S);
}

/* Rounds with the account's breaker at "acct_permits" and the provider's at
 * "prov_permits". */
static void race_rounds(unsigned acct_permits, unsigned prov_permits)
{
    static struct race r;
    memset(&r, 0, sizeof(r));
    const char *scale = getenv("ROTA_STRESS_SCALE");
    r.rounds = ROUNDS * (scale && atoi(scale) > 0 ? atoi(scale) : 1);
    struct rota_desc_provider p = {
        .name = "prov", .kind = "openai", .fail_threshold = 1, .halfopen_permits = 4};
    struct rota_desc_account a = {.id = 7, .name = "acct", .credential = "sk-test-secret"};
    assert_int_equal(fx_one(&r.f, "trials", &p, &a), 0);
    _Atomic uint64_t *acct = &r.f.m->hot[0].breaker, *prov = &r.f.m->phot[0].breaker;
    pthread_barrier_init(&r.go, NULL, THREADS + 1);
    pthread_barrier_init(&r.done, NULL, THREADS + 1);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, selector, &r), 0);
    int over = 0, wrong = 0, any = 0;
    for (int i = 0; i < r.rounds; i++) {
        atomic_store(acct, half_open(acct_permits));
        atomic_store(prov, half_open(prov_permits));
        atomic_store(&r.granted, 0);
        rota_shm_heartbeat(r.f.w, rota_clock_mono());
        pthread_barrier_wait(&r.go);
        pthread_barrier_wait(&r.done);
        int g = atomic_load(&r.granted);
        unsigned a_left = rota_breaker_permits(atomic_load(acct));
        unsigned p_left = rota_breaker_permits(atomic_load(prov));
        over += g > 1;
        wrong += a_left + (unsigned)g != acct_permits || p_left + (unsigned)g != prov_permits;
        any += g;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.go);
    pthread_barrier_destroy(&r.done);
    fx_close(&r.f);
    print_message("account %u, provider %u permits, %d rounds: %d trials, %d rounds "
                  "over-granted, %d with permits miscounted\n",
                  acct_permits, prov_permits, r.rounds, any, over, wrong);
    assert_true(any > 0); /* the selections really ran into the breaker */
    assert_int_equal(over, 0);
    assert_int_equal(wrong, 0);
}

static void test_stress_trials_account_and_provider_half_open(void **state)
{
    (void)state;
    race_rounds(1, 4); /* the account's one permit decides */
    race_rounds(4, 1); /* the provider's: an account permit taken is given back */
}

/* The account's breaker flips between half-open with one permit and closed (its trial
 * succeeded elsewhere) while selectors select: a selection is a trial only if it took a
 * permit, so the trials granted are exactly the permits found taken at each close. One
 * that scanned the half-open word and committed after the close holds nothing; marked a
 * trial, its report would release a permit never taken, or count a success, in whatever
 * half-open period comes next. */
struct flip {
    struct fx f;
    _Atomic int running;  /* selectors still selecting */
    _Atomic long granted; /* trials granted */
};

static void *flip_selector(void *arg)
{
    struct flip *r = arg;
    struct rota_rng rng = {(uint64_t)(uintptr_t)&rng};
    for (int i = 0; i < ROUNDS * 10; i++) {
        struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
        struct rota_sel_res res;
        if (rota_select_route(r->f.m, &q, &rng, &res) == 0 && res.trial)
            atomic_fetch_add(&r->granted, 1);
    }
    atomic_fetch_sub(&r->running, 1);
    return NULL;
}

static void test_stress_trials_breaker_closes_under_selectors(void **state)
{
    (void)state;
    static struct flip r;
    memset(&r, 0, sizeof(r));
    struct rota_desc_provider p = {
        .name = "prov", .kind = "openai", .fail_threshold = 1, .halfopen_permits = 1};
    struct rota_desc_account a = {.id = 7, .name = "acct", .credential = "sk-test-secret"};
    assert_int_equal(fx_one(&r.f, "closes", &p, &a), 0);
    rota_shm_heartbeat(r.f.w, rota_clock_mono() + 3600 * ROTA_NS_PER_S);
    _Atomic uint64_t *acct = &r.f.m->hot[0].breaker;
    atomic_store(acct, half_open(1));
    atomic_store(&r.running, THREADS);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, flip_selector, &r), 0);
    long taken = 0, flips = 0;
    for (;; flips++) {
        bool last = atomic_load(&r.running) == 0;
        /* close it, as a trial success does, noting whether the permit was taken */
        uint64_t w = atomic_load(acct);
        while (!atomic_compare_exchange_weak(
            acct, &w,
            rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0, rota_breaker_epoch(w), 0)))
            ;
        taken += rota_breaker_state_of(w) == ROTA_BREAKER_HALF_OPEN && !rota_breaker_permits(w);
        if (last)
            break;
        atomic_store(acct, half_open(1));
        for (volatile int k = 0; k < 500; k++) /* a while for selectors to see it */
            ;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    fx_close(&r.f);
    long g = atomic_load(&r.granted);
    print_message("%ld flips: %ld permits taken, %ld trials granted\n", flips, taken, g);
    assert_true(taken > 0); /* the selections really ran into the breaker */
    assert_int_equal(g, taken);
}

/* A trial outcome from an earlier half-open period counts for nothing in a later one:
 * one trial of the first period fails and re-opens the breaker, the breaker half-opens
 * again, and the first period's other trial then reports a success. The second period
 * still needs its own two successes. Single-threaded, on an injected clock. */
static void test_stress_trials_late_outcome_of_earlier_period(void **state)
{
    (void)state;
    struct fx f = {0};
    uint64_t now = 1000 * ROTA_NS_PER_S;
    f.mono = now;
    struct rota_desc_provider p = {.name = "prov",
                                   .kind = "openai",
                                   .fail_threshold = 1,
                                   .halfopen_permits = 2,
                                   .open_base_ms = 1000,
                                   .open_cap_ms = 1000};
    struct rota_desc_account a = {.id = 7, .name = "acct", .credential = "sk-test-secret"};
    assert_int_equal(fx_one(&f, "late", &p, &a), 0);
    struct rota_rng rng = {3};
    struct rota_sel_res first, second, third, res;
    struct rota_outcome_in o = {.status = 503};
    rota_report_apply(f.m, 0, &o, now, 1); /* account and provider open */
    _Atomic uint64_t *acct = &f.m->hot[0].breaker, *prov = &f.m->phot[0].breaker;
    assert_int_equal(rota_breaker_state_of(atomic_load(acct)), ROTA_BREAKER_OPEN);
    now += 2000 * ROTA_NS_PER_MS;
    struct rota_sel_req q = {.route = 0, .now = now};
    rota_shm_heartbeat(f.w, now);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &first), 0);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &second), 0);
    assert_true(first.trial && second.trial);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &res), ROTA_EEXHAUSTED);
    o = (struct rota_outcome_in){.status = 503, .trial = second.trial};
    rota_report_apply(f.m, 0, &o, now, 1); /* a trial failure: open again */
    assert_int_equal(rota_breaker_state_of(atomic_load(acct)), ROTA_BREAKER_OPEN);
    now += 2000 * ROTA_NS_PER_MS;
    q.now = now;
    rota_shm_heartbeat(f.w, now);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &third), 0); /* the second period */
    assert_true(third.trial);
    o = (struct rota_outcome_in){.status = 200, .trial = first.trial};
    rota_report_apply(f.m, 0, &o, now, 1); /* late, from the first period */
    o.trial = third.trial;
    rota_report_apply(f.m, 0, &o, now, 1);
    print_message("after one trial success of the second period: account %s, provider %s\n",
                  rota_breaker_state_of(atomic_load(acct)) ? "half-open" : "closed",
                  rota_breaker_state_of(atomic_load(prov)) ? "half-open" : "closed");
    assert_int_equal(rota_breaker_state_of(atomic_load(acct)), ROTA_BREAKER_HALF_OPEN);
    assert_int_equal(rota_breaker_state_of(atomic_load(prov)), ROTA_BREAKER_HALF_OPEN);
    /* a neutral outcome of the first period gives nothing back to the second */
    o = (struct rota_outcome_in){.status = 404, .trial = first.trial};
    rota_report_apply(f.m, 0, &o, now, 1);
    assert_int_equal(rota_breaker_permits(atomic_load(acct)), 1);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &res), 0);
    assert_true(res.trial);
    o = (struct rota_outcome_in){.status = 200, .trial = res.trial};
    rota_report_apply(f.m, 0, &o, now, 1);
    assert_int_equal(rota_breaker_state_of(atomic_load(acct)), ROTA_BREAKER_CLOSED);
    assert_int_equal(rota_breaker_state_of(atomic_load(prov)), ROTA_BREAKER_CLOSED);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_trials_account_and_provider_half_open),
        cmocka_unit_test(test_stress_trials_breaker_closes_under_selectors),
        cmocka_unit_test(test_stress_trials_late_outcome_of_earlier_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
