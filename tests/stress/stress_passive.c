/* stress_passive.c - the passive-observation slot under racing workers and a supervisor
 * that frees a slot it finds held for two folds: its sequence never moves backwards, and
 * the supervisor never folds a record mixed from two writers. */
/*
 * DESIGN
 * WRITERS threads publish observations of one account as workers do after reading an
 * answer's headers; thread k writes used = k * 1000 + n and limit = 1000000 + k, so a
 * folded (used, limit) whose two k differ was mixed from two writers. One thread folds
 * as the supervisor does, with no pause between folds, so a writer preempted inside the
 * slot (two threads per core) is soon taken for dead and its slot forced free, the case
 * where a late release used to store an older sequence over a newer writer's. The
 * folding thread checks that the sequence it reads never decreases and every folded
 * record is one writer's. Runs about a second; ROTA_STRESS_SCALE multiplies it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "observe.h"

#define WRITERS 3

struct run {
    struct fx f;
    _Atomic int stop;
    _Atomic int64_t stamp; /* every observation newer than the last */
};

struct wctx {
    struct run *r;
    uint64_t k;
};

static void *publisher(void *arg)
{
    struct wctx *w = arg;
    struct rota_obs o = {.nwin = 1};
    o.win[0].metric = ROTA_METRIC_REQUESTS;
    o.win[0].has_limit = o.win[0].has_used = true;
    o.win[0].limit = 1000000 + w->k;
    for (uint64_t n = 0; !atomic_load(&w->r->stop); n = (n + 1) % 1000) {
        o.win[0].used = w->k * 1000 + n;
        int64_t wall = atomic_fetch_add(&w->r->stamp, 1) + 1;
        rota_passive_publish(w->r->f.m, 0, &o, rota_clock_mono(), wall);
    }
    return NULL;
}

static void test_stress_passive_slot_forced_free_by_the_supervisor(void **state)
{
    (void)state;
    static struct run r;
    struct fx_pool_opts po = {.n = 1, .strategy = ROTA_STRAT_GREEDY, .limit = 2000000};
    assert_int_equal(fx_pool_with(&r.f, "pslot", &po), 0);
    atomic_store(&r.stamp, rota_clock_wall());
    struct wctx w[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct wctx){.r = &r, .k = (uint64_t)i + 1};
        assert_int_equal(pthread_create(&th[i], NULL, publisher, &w[i]), 0);
    }
    const char *scale = getenv("ROTA_STRESS_SCALE");
    uint64_t end = rota_clock_mono() +
                   (uint64_t)(scale && atoi(scale) > 0 ? atoi(scale) : 1) * 1000000000ull;
    uint64_t seen_odd = 0, last = 0, folded = 0, backwards = 0, mixed = 0;
    while (rota_clock_mono() < end) {
        uint64_t seq = atomic_load(&r.f.m->hot[0].obs[0]);
        backwards += seq < last;
        last = seq > last ? seq : last;
        if (rota_passive_fold(r.f.m, &seen_odd) == 0)
            continue;
        folded++;
        uint64_t used = rota_load(&r.f.m->snaps[0].win[0].used);
        uint64_t limit = rota_load(&r.f.m->snaps[0].win[0].limit);
        mixed += used / 1000 != limit - 1000000;
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    fx_close(&r.f);
    print_message("%llu folds; the sequence went backwards %llu times; %llu mixed records\n",
                  (unsigned long long)folded, (unsigned long long)backwards,
                  (unsigned long long)mixed);
    assert_true(folded > 0);
    assert_int_equal(backwards, 0);
    assert_int_equal(mixed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_passive_slot_forced_free_by_the_supervisor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
