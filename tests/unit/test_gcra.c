/*
 * test_gcra.c - GCRA admission against a token-bucket model, with an injected clock.
 *
 * DESIGN
 * core/gcra.h takes "now" from its caller, so every test drives a clock of its own: no
 * sleeping, nothing read from the system. The reference is a token bucket in exact
 * integer nanoseconds (credit refills one ns per ns up to the limit L; n units cost
 * min(n T, L)), a different formulation of the same contract; random sequences of
 * (time step, units) must get the same decisions and the same retry times from both.
 * Limits are {T, B * T} in whole ns, or per-minute rates through rota_gcra_make, which is
 * held to the configured rate itself. One test runs four threads on one word; the rest
 * are single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "gcra.h"
#include "rng.h"

#define SEC   1000000000ull
#define START (1000 * SEC) /* monotonic ns of the first request */

#define MINUTE (60 * SEC)

/* A limit of "burst" units, one per "T" ns. */
static struct rota_gcra limit_of(uint64_t T, uint64_t burst)
{
    return (struct rota_gcra){T, burst * T};
}

/* The reference: a token bucket of "L" ns of credit, T ns per unit (T integral). */
struct bucket {
    uint64_t T, L, credit, last;
};

static void bucket_init(struct bucket *b, uint64_t T, uint64_t burst, uint64_t now)
{
    *b = (struct bucket){.T = T, .L = burst * T, .credit = burst * T, .last = now};
}

static uint64_t bucket_cost(const struct bucket *b, uint64_t n)
{
    unsigned __int128 c = (unsigned __int128)(n ? n : 1) * b->T;
    return c > b->L ? b->L : (uint64_t)c;
}

static void bucket_refill(struct bucket *b, uint64_t now)
{
    uint64_t c = b->credit + (now - b->last);
    b->credit = c > b->L ? b->L : c;
    b->last = now;
}

/* Admit n units at "now" (never earlier than the last call); else *retry_at. */
static bool bucket_admit(struct bucket *b, uint64_t now, uint64_t n, uint64_t *retry_at)
{
    bucket_refill(b, now);
    uint64_t cost = bucket_cost(b, n);
    if (cost <= b->credit) {
        b->credit -= cost;
        return true;
    }
    *retry_at = now + (cost - b->credit);
    return false;
}

static uint64_t draw_units(struct rota_rng *r, uint64_t burst)
{
    switch (rota_rng_below(r, 16)) {
    case 0:
        return UINT64_MAX;
    case 1:
        return rota_rng_next(r); /* anything, mostly oversized */
    case 2:
        return 0;
    case 3:
    case 4:
        return burst + rota_rng_below(r, 3);
    default:
        return 1 + rota_rng_next(r) % (burst < 4 ? burst : burst / 4);
    }
}

static void run_against_model(uint64_t T, uint64_t burst, uint64_t seed)
{
    struct rota_gcra g = limit_of(T, burst);
    struct bucket b;
    struct rota_rng r = {seed};
    _Atomic uint64_t word = 0;
    uint64_t now = START;
    unsigned admitted = 0, denied = 0;
    bucket_init(&b, T, burst, now);
    for (int i = 0; i < 20000; i++) {
        uint32_t kind = rota_rng_below(&r, 8);
        if (kind >= 3) /* else: the same instant again */
            now += rota_rng_next(&r) % (kind == 7 ? 4 * burst * T : 2 * T);
        uint64_t n = draw_units(&r, burst), retry = 0, want_retry = 0;

        /* rota_gcra_next: the earliest time one unit fits, agrees with the model. */
        struct bucket probe = b;
        uint64_t one_retry = 0;
        bool one_fits = bucket_admit(&probe, now, 1, &one_retry);
        uint64_t next = rota_gcra_next(&word, &g);
        if (one_fits)
            assert_true(next <= now);
        else
            assert_true(next == one_retry);

        bool want = bucket_admit(&b, now, n, &want_retry);
        assert_int_equal(rota_gcra_peek(&word, &g, now, n), want);
        bool got = rota_gcra_admit(&word, &g, now, n, &retry);
        if (got != want)
            fail_msg("step %d at %llu, %llu units: gcra %d, model %d", i,
                     (unsigned long long)now, (unsigned long long)n, got, want);
        if (!got) {
            assert_true(retry == want_retry);
            denied++;
        } else {
            admitted++;
        }
    }
    /* The sequence exercised both outcomes. */
    assert_true(admitted > 1000);
    assert_true(denied > 1000);
}

static void test_gcra_matches_token_bucket(void **state)
{
    static const struct {
        uint64_t T, burst;
    } cfg[] = {
        {1, 1},           {7, 5},    {1000, 1},     {1000, 10},
        {60000000, 1000}, {SEC, 60}, {60 * SEC, 3}, {3, 100000},
    };
    for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++)
        for (uint64_t seed = 1; seed <= 4; seed++)
            run_against_model(cfg[i].T, cfg[i].burst, seed * 1000 + i);
}

/* Admit single units at frozen "now" until one is denied; returns how many. */
static uint64_t drain(_Atomic uint64_t *word, const struct rota_gcra *g, uint64_t now,
                      uint64_t most)
{
    uint64_t n = 0, retry;
    while (n <= most && rota_gcra_admit(word, g, now, 1, &retry))
        n++;
    return n;
}

static void test_gcra_burst_at_frozen_time(void **state)
{
    static const uint64_t bursts[] = {1, 2, 3, 10, 60, 1000, 10000};
    static const uint64_t T[] = {1, 1000, 6000000, SEC, 60 * SEC};
    for (size_t i = 0; i < sizeof(bursts) / sizeof(bursts[0]); i++)
        for (size_t j = 0; j < sizeof(T) / sizeof(T[0]); j++) {
            struct rota_gcra g = limit_of(T[j], bursts[i]);
            _Atomic uint64_t word = 0;
            assert_int_equal(drain(&word, &g, START, bursts[i] + 10), bursts[i]);
            assert_false(rota_gcra_peek(&word, &g, START, 1));
            /* One interval later, exactly one more. */
            assert_int_equal(drain(&word, &g, START + T[j], 10), 1);
            /* After the whole bucket's time, the whole burst again. */
            assert_int_equal(drain(&word, &g, START + T[j] + bursts[i] * T[j], bursts[i] + 10),
                             bursts[i]);
        }
}

static void test_gcra_burst_exact_for_any_rate(void **state)
{
    /* Per-minute rates whose interval is not a whole number of ns (60 s / 7 is
     * 8571428571.43 ns): a configured burst of B still admits exactly B at once, and
     * burst 0 means the whole minute's allowance. */
    static const uint64_t rates[] = {1,    7,    13,    60,    90,      600,     1000,
                                     3500, 7000, 90000, 12345, 1000000, 4000000, 9999999};
    int wrong = 0;
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        for (int b = 0; b < 3; b++) {
            uint64_t burst = b == 0 ? 1 : rates[i] < 5000 ? rates[i] : 5000;
            struct rota_gcra g =
                rota_gcra_make(rates[i], b == 2 && rates[i] < 5000 ? 0 : burst);
            _Atomic uint64_t word = 0;
            uint64_t got = drain(&word, &g, START, burst + 10);
            if (got != burst) {
                print_error("%llu per minute, burst %llu: %llu admitted at once\n",
                            (unsigned long long)rates[i], (unsigned long long)burst,
                            (unsigned long long)got);
                wrong++;
            }
        }
    assert_int_equal(wrong, 0);
}

struct event {
    uint64_t t, units;
};

/* Every window [t_i, t_j] of admitted events holds at most
 * burst + (t_j - t_i) * per_minute / 60 s units. */
static void check_windows(const struct event *e, size_t m, uint64_t per_minute, uint64_t burst)
{
    for (size_t i = 0; i < m; i++) {
        unsigned __int128 units = 0;
        for (size_t j = i; j < m; j++) {
            units += e[j].units;
            if (units > burst &&
                (units - burst) * MINUTE > (unsigned __int128)(e[j].t - e[i].t) * per_minute)
                fail_msg("%llu units in [%llu, %llu] at %llu per minute, burst %llu",
                         (unsigned long long)units, (unsigned long long)e[i].t,
                         (unsigned long long)e[j].t, (unsigned long long)per_minute,
                         (unsigned long long)burst);
        }
    }
}

static void test_gcra_never_exceeds_rate_in_any_window(void **state)
{
    static const struct {
        uint64_t per_minute, burst;
    } cfg[] = {
        {60000000, 5},          /* one per us exactly */
        {7, 7},                 /* 8571428571.43 ns rounded up */
        {3500, 50},             /* 17142857.14 ns */
        {40000000000ull, 20},   /* 1.5 ns rounded to 2: rounding dominates */
        {900, 100},             /* 66666666.67 ns */
        {60000000000ull, 1000}, /* one per ns, the fastest */
    };
    enum { EVENTS = 3000 };
    static struct event e[EVENTS];
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            struct rota_gcra g = rota_gcra_make(cfg[c].per_minute, cfg[c].burst);
            struct rota_rng r = {seed + 100 * c};
            _Atomic uint64_t word = 0;
            uint64_t now = START, T = MINUTE / cfg[c].per_minute + 1, retry;
            size_t m = 0;
            for (int tries = 0; m < EVENTS; tries++) {
                assert_true(tries < 100 * EVENTS); /* the limit lets requests through */
                if (rota_rng_below(&r, 3))
                    now += rota_rng_next(&r) % (T * (1 + rota_rng_below(&r, 4)));
                uint64_t n = 1 + rota_rng_below(&r, (uint32_t)(cfg[c].burst / 2 + 1));
                if (rota_gcra_admit(&word, &g, now, n, &retry))
                    e[m++] = (struct event){now, n};
            }
            check_windows(e, m, cfg[c].per_minute, cfg[c].burst);
        }
}

static void test_gcra_make_never_faster_than_configured(void **state)
{
    /* rota_gcra_make's interval is 60 s / rate rounded up to whole ns: never faster than
     * configured, slower by less than a ns per unit; the bound is exactly burst * T. */
    struct rota_rng r = {53};
    for (int i = 0; i < 100000; i++) {
        uint64_t rate = 1 + (rota_rng_next(&r) >> (4 + rota_rng_below(&r, 60)));
        rate = rate > 60 * SEC ? 60 * SEC : rate;
        uint64_t burst = rota_rng_below(&r, 4) ? 1 + rota_rng_below(&r, 100000) : 0;
        struct rota_gcra g = rota_gcra_make(rate, burst);
        assert_true((unsigned __int128)g.interval_ns * rate >= MINUTE);
        assert_true((unsigned __int128)(g.interval_ns - 1) * rate < MINUTE);
        assert_true(g.limit_ns == (burst ? burst : rate) * g.interval_ns);
    }
    /* No limit at all. */
    struct rota_gcra none = rota_gcra_make(0, 10);
    _Atomic uint64_t word = 0;
    for (int i = 0; i < 1000; i++)
        assert_true(rota_gcra_admit(&word, &none, START, UINT64_MAX, NULL));
    /* A burst too large to represent still admits and does not wrap. */
    struct rota_gcra big = rota_gcra_make(1, UINT64_MAX);
    assert_true(big.limit_ns >= UINT64_MAX / 4);
    assert_int_equal(drain(&word, &big, START, 100000), 100001);
    assert_true(rota_gcra_admit(&word, &big, START, 1u << 20, NULL));
    uint64_t retry = 0;
    assert_false(rota_gcra_admit(&word, &big, START, UINT64_MAX, &retry));
    assert_true(retry == rota_load(&word) && retry > START); /* when the bucket is full */
}

static void test_gcra_sustains_the_rate(void **state)
{
    /* A client asking every T/4 gets the burst plus one unit per T: not fewer. */
    static const uint64_t T[] = {4, 1000, 6000000, SEC};
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
        const uint64_t burst = 10, periods = 5000;
        struct rota_gcra g = limit_of(T[i], burst);
        _Atomic uint64_t word = 0;
        uint64_t admitted = 0, retry;
        for (uint64_t t = START; t <= START + periods * T[i]; t += T[i] / 4)
            admitted += rota_gcra_admit(&word, &g, t, 1, &retry);
        assert_int_equal(admitted, burst + periods);
    }
}

/* Fill "word" by a random history, then check a denied request's retry time. */
static void check_retry(const struct rota_gcra *g, uint64_t burst, struct rota_rng *r)
{
    _Atomic uint64_t word = 0;
    uint64_t now = START, retry = 0;
    for (int i = 0; i < 50; i++) {
        now += rota_rng_next(r) % (g->limit_ns / 4 + 1);
        rota_gcra_admit(&word, g, now, 1 + rota_rng_next(r) % burst, &retry);
    }
    uint64_t n = draw_units(r, burst);
    if (rota_gcra_peek(&word, g, now, n))
        return;
    assert_false(rota_gcra_admit(&word, g, now, n, &retry));
    assert_true(retry > now);
    /* The request fits at retry_at, not a nanosecond earlier; and admitting it there
     * (on a copy of the word) succeeds. */
    assert_true(rota_gcra_peek(&word, g, retry, n));
    assert_false(rota_gcra_peek(&word, g, retry - 1, n));
    _Atomic uint64_t copy = rota_load(&word);
    uint64_t again = 0;
    assert_false(rota_gcra_admit(&copy, g, retry - 1, n, &again));
    assert_true(again == retry);
    assert_true(rota_gcra_admit(&copy, g, retry, n, &again));
}

static void test_gcra_retry_at_is_earliest(void **state)
{
    struct rota_rng r = {59};
    static const struct {
        uint64_t per_minute, burst;
    } cfg[] = {
        {60000000000ull, 1}, {60000000, 10}, {7, 7}, {40000000000ull, 20}, {1000, 1000},
    };
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        struct rota_gcra g = rota_gcra_make(cfg[c].per_minute, cfg[c].burst);
        for (int i = 0; i < 2000; i++)
            check_retry(&g, cfg[c].burst, &r);
    }
}

static void test_gcra_adjust_gives_back_and_charges(void **state)
{
    const uint64_t T = 1000, burst = 10;
    struct rota_gcra g = limit_of(T, burst);
    _Atomic uint64_t word = 0;
    uint64_t now = START;

    /* Empty the bucket; giving 3 back lets exactly 3 more in. */
    assert_int_equal(drain(&word, &g, now, 20), burst);
    rota_gcra_adjust(&word, &g, now, -3);
    assert_int_equal(drain(&word, &g, now, 20), 3);

    /* Charging 4 more after admitting 1 leaves room for 5. */
    now += burst * T; /* full again */
    uint64_t retry;
    assert_true(rota_gcra_admit(&word, &g, now, 1, &retry));
    rota_gcra_adjust(&word, &g, now, 4);
    assert_int_equal(drain(&word, &g, now, 20), 5);

    /* Giving back more than is outstanding fills the bucket and no more: the TAT does
     * not go below now. */
    now += 3 * T;
    rota_gcra_adjust(&word, &g, now, -1000);
    assert_true(rota_load(&word) == now);
    assert_int_equal(drain(&word, &g, now, 20), burst);

    /* Giving back with nothing outstanding changes nothing. */
    now += 100 * T;
    uint64_t before = rota_load(&word);
    rota_gcra_adjust(&word, &g, now, -5);
    assert_true(rota_load(&word) == before);
    assert_int_equal(drain(&word, &g, now, 20), burst);

    /* A huge charge does not wrap: nothing fits now, the bucket is full again within L. */
    now += 100 * T;
    rota_gcra_adjust(&word, &g, now, INT64_MAX);
    assert_false(rota_gcra_peek(&word, &g, now, 1));
    assert_true(rota_gcra_peek(&word, &g, now + g.limit_ns, burst));
}

static void test_gcra_adjust_extreme_delta(void **state)
{
    const uint64_t T = 1000, burst = 10;
    struct rota_gcra g = limit_of(T, burst);
    _Atomic uint64_t word = 0;
    assert_int_equal(drain(&word, &g, START, 20), burst);
    rota_gcra_adjust(&word, &g, START, INT64_MIN);
    assert_true(rota_load(&word) == START);
    assert_int_equal(drain(&word, &g, START, 20), burst);
}

static void test_gcra_no_limit_always_admits(void **state)
{
    /* The word still holds a TAT from when a limit was configured; it no longer counts. */
    struct rota_gcra g = {0, 0};
    _Atomic uint64_t word = START + 3600 * SEC;
    struct rota_rng r = {61};
    uint64_t now = START;
    for (int i = 0; i < 100000; i++) {
        uint64_t n = rota_rng_below(&r, 2) ? rota_rng_next(&r) : 1, retry = 0;
        now += rota_rng_below(&r, 2);
        assert_true(rota_gcra_peek(&word, &g, now, n));
        assert_true(rota_gcra_admit(&word, &g, now, n, &retry));
        rota_gcra_adjust(&word, &g, now, (int64_t)(rota_rng_next(&r) >> 1));
    }
    assert_true(rota_gcra_next(&word, &g) == 0);
    assert_true(rota_load(&word) == START + 3600 * SEC);
}

static void test_gcra_cost_is_capped(void **state)
{
    /* n units cost n T, at most L, and exactly L once n T reaches L, however large n is
     * (no wrap at 2^64). Zero units cost as much as one. */
    struct rota_rng r = {67};
    static const uint64_t T[] = {1, 2, 1000, 8571428572ull, 60 * SEC, 3600 * SEC};
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
        /* A burst of 1000, plus a few ns of slack. */
        struct rota_gcra g = {T[i], 1000 * T[i] + 5};
        assert_true(rota_gcra_cost(&g, 0) == rota_gcra_cost(&g, 1));
        for (int j = 0; j < 10000; j++) {
            uint64_t n = j < 5
                             ? (uint64_t[]){1, 1000, 1001, UINT64_MAX / T[i] + 1, UINT64_MAX}[j]
                             : rota_rng_next(&r) >> rota_rng_below(&r, 64);
            n = n ? n : 1;
            unsigned __int128 want = (unsigned __int128)n * T[i];
            want = want > g.limit_ns ? g.limit_ns : want;
            assert_true(rota_gcra_cost(&g, n) == (uint64_t)want);
        }
    }
}

static void test_gcra_huge_request_needs_full_bucket(void **state)
{
    const uint64_t T = 1000000, burst = 10;
    struct rota_gcra g = limit_of(T, burst);
    static const uint64_t huge[] = {UINT64_MAX, UINT64_MAX / T + 1, 1ull << 63, burst + 1};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        _Atomic uint64_t word = 0;
        uint64_t now = START, retry = 0;
        /* Into a full bucket: admitted, and it takes the whole bucket. */
        assert_true(rota_gcra_admit(&word, &g, now, huge[i], &retry));
        assert_false(rota_gcra_admit(&word, &g, now, 1, &retry));
        assert_true(retry == now + T);
        /* With one unit out, denied until the bucket is full again. */
        now += burst * T;
        assert_true(rota_gcra_admit(&word, &g, now, 1, &retry));
        assert_false(rota_gcra_admit(&word, &g, now, huge[i], &retry));
        assert_true(retry == now + T);
        assert_false(rota_gcra_peek(&word, &g, now + T - 1, huge[i]));
        assert_true(rota_gcra_admit(&word, &g, now + T, huge[i], &retry));
    }
}

struct racer {
    _Atomic uint64_t *word;
    const struct rota_gcra *g;
    pthread_barrier_t *go;
    uint64_t admitted;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    uint64_t retry;
    pthread_barrier_wait(x->go);
    for (int i = 0; i < 100000; i++)
        x->admitted += rota_gcra_admit(x->word, x->g, START, 1, &retry);
    return NULL;
}

static void test_gcra_threads_share_one_limit(void **state)
{
    /* Bursts of 1000, then of 200000 (the threads overlap longer while it drains). */
    const uint64_t T = 1000000;
    for (int round = 0; round < 10; round++) {
        const uint64_t burst = round < 5 ? 1000 : 200000;
        struct rota_gcra g = limit_of(T, burst);
        _Atomic uint64_t word = 0;
        pthread_barrier_t go;
        pthread_t th[4];
        struct racer x[4];
        assert_int_equal(pthread_barrier_init(&go, NULL, 4), 0);
        for (int i = 0; i < 4; i++) {
            x[i] = (struct racer){&word, &g, &go, 0};
            assert_int_equal(pthread_create(&th[i], NULL, race, &x[i]), 0);
        }
        uint64_t total = 0;
        for (int i = 0; i < 4; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            total += x[i].admitted;
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(total, burst);
        assert_true(rota_load(&word) == START + burst * T);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcra_matches_token_bucket),
        cmocka_unit_test(test_gcra_burst_at_frozen_time),
        cmocka_unit_test(test_gcra_burst_exact_for_any_rate),
        cmocka_unit_test(test_gcra_never_exceeds_rate_in_any_window),
        cmocka_unit_test(test_gcra_make_never_faster_than_configured),
        cmocka_unit_test(test_gcra_sustains_the_rate),
        cmocka_unit_test(test_gcra_retry_at_is_earliest),
        cmocka_unit_test(test_gcra_adjust_gives_back_and_charges),
        cmocka_unit_test(test_gcra_no_limit_always_admits),
        cmocka_unit_test(test_gcra_cost_is_capped),
        cmocka_unit_test(test_gcra_huge_request_needs_full_bucket),
        cmocka_unit_test(test_gcra_threads_share_one_limit),
        /* Last: a sanitizer build stops at undefined behaviour, the others still run. */
        cmocka_unit_test(test_gcra_adjust_extreme_delta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
