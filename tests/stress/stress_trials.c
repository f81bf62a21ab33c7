/* stress_trials.c - a half-open breaker lets through exactly its trial permits, however
 * selectors race, also when the account and its provider are both half-open. */
/*
 * DESIGN
 * One account behind one provider, both half-open: one of them with one permit left,
 * the other with four (each way round in turn). A selection must take a permit from
 * each, so at most one trial goes through per round, and each breaker's permits left
 * plus the trials granted is exactly what it had. Each round the main thread re-arms both
 * breaker words, then THREADS threads, released together by a barrier, select once each. A
 * selector that wins the provider's permit but loses the account's, or the reverse, must give
 * back exactly what it took: a permit given back that was never taken lets a second trial
 * through. ROTA_STRESS_SCALE (default 1) multiplies the rounds.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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
};

static void *selector(void *arg)
{
    struct race *r = arg;
    struct rota_rng rng = {(uint64_t)(uintptr_t)&rng};
    for (int i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(&r->go);
        struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
        struct rota_sel_res res;
        if (rota_select_route(r->f.m, &q, &rng, &res) == 0 && res.trial)
            atomic_fetch_add(&r->granted, 1);
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

/* A half-open word with "permits" left, re-armed an hour from now. */
static uint64_t half_open(unsigned permits)
{
    uint64_t until_ms = rota_clock_mono() / 1000000 + 3600 * 1000;
    return ROTA_BREAKER_HALF_OPEN | (1ull << 2) | ((uint64_t)permits << 8) | (until_ms << 24);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_trials_account_and_provider_half_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
