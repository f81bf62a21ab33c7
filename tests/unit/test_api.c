/* test_api: librota as a worker uses it: arguments, errors, credentials, choices that
 * outlive a generation, and threads sharing one handle across reloads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "rota.h"
#include "select.h"

static void test_api_null_and_range_arguments(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "api", ROTA_STRAT_HYBRID, 100), 0);
    rota_t *h;
    rota_route_t rt;
    rota_choice c;
    rota_outcome o = {.status = 200};
    char buf[64], err[128];
    assert_int_equal(rota_attach(NULL, &h, err, sizeof(err)), -EINVAL);
    assert_int_equal(rota_attach(f.instance, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(rota_attach("bad/name", &h, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "bad instance name"));
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(NULL, "code", &rt), -EINVAL);
    assert_int_equal(rota_route(h, NULL, &rt), -EINVAL);
    assert_int_equal(rota_route(h, "code", NULL), -EINVAL);
    assert_int_equal(rota_route(h, "nope", &rt), ROTA_ENOROUTE);
    assert_int_equal(rota_route(h, "code", &rt), 0);
    assert_int_equal(rota_select(NULL, &rt, NULL, 0, 0, &c), -EINVAL);
    assert_int_equal(rota_select(h, NULL, NULL, 0, 0, &c), -EINVAL);
    assert_int_equal(rota_select(h, &rt, NULL, 0, 0, NULL), -EINVAL);
    assert_int_equal(rota_select(h, &rt, NULL, 5, 0, &c), -EINVAL); /* length, no key */
    rota_route_t bogus = {.key = 1, .generation = 99, .index = 12345};
    assert_int_equal(rota_select(h, &bogus, NULL, 0, 0, &c), ROTA_ENOROUTE);
    assert_int_equal(rota_select(h, &rt, "user-7", 6, 100, &c), 0);
    assert_int_equal(rota_report(NULL, &c, &o), -EINVAL);
    assert_int_equal(rota_report(h, NULL, &o), -EINVAL);
    assert_int_equal(rota_report(h, &c, NULL), -EINVAL);
    rota_choice zero = {0};
    assert_int_equal(rota_report(h, &zero, &o), -EINVAL);
    rota_choice forged = c;
    forged.account = 1000; /* out of range in this generation */
    assert_int_equal(rota_report(h, &forged, &o), ROTA_ESTALE);
    assert_int_equal(rota_credential(h, &c, NULL, 10), -EINVAL);
    assert_int_equal(rota_credential(NULL, &c, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(rota_credential(h, &c, buf, 3), -ERANGE);
    assert_int_equal(rota_credential(h, &c, buf, sizeof(buf)), 14);
    assert_string_equal(buf, "sk-test-secret");
    int len = rota_account_name(h, &c, buf, sizeof(buf));
    assert_int_equal(len, 4);
    assert_int_equal(strncmp(buf, "ag-", 3), 0);
    assert_int_equal(rota_account_name(h, &c, buf, 1), -ERANGE);
    assert_int_equal(rota_report(h, &c, &o), 0);
    assert_int_equal(rota_generation(NULL), 0);
    assert_int_equal(rota_generation(h), 1);
    rota_detach(NULL);
    rota_detach(h);
    fx_close(&f);
}

static void test_api_attach_errors_say_what(void **state)
{
    (void)state;
    rota_t *h = NULL;
    char err[200] = "";
    assert_int_equal(rota_attach("nobody-home", &h, err, sizeof(err)), -ENOENT);
    assert_null(h);
    assert_non_null(strstr(err, "nobody-home"));
    assert_non_null(strstr(err, "rotad"));
}

static void test_api_strerror_names_every_code(void **state)
{
    (void)state;
    static const int codes[] = {ROTA_EEXHAUSTED, ROTA_EMAGIC,    ROTA_EABI,     ROTA_ELAYOUT,
                                ROTA_ETRUNC,     ROTA_ENOTREADY, ROTA_ENOROUTE, ROTA_ESTALE};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = rota_strerror(codes[i]);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, rota_strerror(codes[j]));
    }
    assert_string_equal(rota_strerror(-ENOENT), "No such file or directory");
    assert_string_equal(rota_strerror(-99999), "unknown error");
    assert_string_equal(rota_strerror(7), "unknown error");
}

static void test_api_route_by_model_and_exhaustion(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "mdl", ROTA_STRAT_HYBRID, 100), 0);
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "code-model", &rt), 0);
    for (uint32_t a = 0; a < 8; a++) {
        struct rota_outcome_in o = {.status = 429, .retry_after_ms = 60000};
        rota_report_apply(f.m, a, &o, rota_clock_mono(), 0);
    }
    rota_choice c;
    assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c), ROTA_EEXHAUSTED);
    assert_int_equal(c.tier, 4);
    for (int t = 0; t < 4; t++)
        assert_int_equal(c.skipped[t], ROTA_SKIP_COOLDOWN);
    assert_true(c.retry_at > rota_clock_mono() + 50 * ROTA_NS_PER_S);
    rota_detach(h);
    fx_close(&f);
}

/* Handles follow reloads on their own thread: wait (at most 5 s) until "h" is on "gen". */
static void follow(rota_t *h, uint64_t gen)
{
    for (int i = 0; i < 5000 && rota_generation(h) < gen; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rota_generation(h), gen);
}

static void test_api_choice_survives_generation_change(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "surv", 6, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "pool", &rt), 0);
    rota_choice c[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c[i]), 0);
    /* The new generation has fewer accounts: ids 100..103 stay, 104 and 105 go. */
    assert_int_equal(fx_pool(&f, "surv", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    follow(h, 2);
    int stale = 0;
    for (int i = 0; i < 6; i++) {
        rota_outcome o = {.status = 200, .tokens = 5};
        int rc = rota_report(h, &c[i], &o);
        if (c[i].account_id >= 104) {
            assert_int_equal(rc, ROTA_ESTALE);
            stale++;
        } else {
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(stale, 2);
    rota_shm_settle(f.w, true);
    for (uint32_t a = 0; a < 4; a++) {
        assert_int_equal(rota_load(&f.m->hot[a].done), 1);
        assert_int_equal(rota_in_flight(f.m, a), 0);
        assert_int_equal(rota_load(&f.m->hot[a].use0[1]), 5);
    }
    /* The route resolved on generation 1 still works. */
    rota_choice d;
    assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &d), 0);
    assert_int_equal(d.generation, 2);
    rota_detach(h);
    fx_close(&f);
}

#define THREADS 4

static _Atomic int stop;

struct worker {
    rota_t *h;
    rota_route_t rt;
    int errors;
    uint64_t calls;
    pthread_t tid;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (; !atomic_load_explicit(&stop, memory_order_relaxed); w->calls++) {
        rota_choice c;
        int rc = rota_select(w->h, &w->rt, NULL, 0, 3, &c);
        rota_outcome o = {.status = 200, .tokens = 3, .latency_ns = 1000};
        if (rc || rota_report(w->h, &c, &o))
            w->errors++;
    }
    return NULL;
}

static void test_api_threads_share_a_handle_across_reloads(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "thr", 16, ROTA_STRAT_HYBRID, NULL), 0);
    rota_t *h;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.h = h};
        assert_int_equal(rota_route(h, "pool", &w[i].rt), 0);
        assert_int_equal(pthread_create(&w[i].tid, NULL, worker_main, &w[i]), 0);
    }
    /* Reload five times while they run: same accounts, new generation each time. */
    for (int k = 0; k < 5; k++) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        assert_int_equal(fx_pool(&f, "thr", 16, ROTA_STRAT_HYBRID, NULL), 0);
    }
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    uint64_t calls = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
        assert_int_equal(w[i].errors, 0);
        assert_true(w[i].calls > 1000);
        calls += w[i].calls;
    }
    follow(h, 6);
    rota_shm_settle(f.w, true);
    uint64_t sel = 0, done = 0, tokens = 0;
    for (uint32_t a = 0; a < 16; a++) {
        sel += rota_load(&f.m->hot[a].use0[0]);
        done += rota_load(&f.m->hot[a].done);
        tokens += rota_load(&f.m->hot[a].use0[1]);
    }
    assert_int_equal(sel, calls);
    assert_int_equal(done, calls);
    assert_int_equal(tokens, 3 * calls);
    rota_detach(h);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_null_and_range_arguments),
        cmocka_unit_test(test_api_attach_errors_say_what),
        cmocka_unit_test(test_api_strerror_names_every_code),
        cmocka_unit_test(test_api_route_by_model_and_exhaustion),
        cmocka_unit_test(test_api_choice_survives_generation_change),
        cmocka_unit_test(test_api_threads_share_a_handle_across_reloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
