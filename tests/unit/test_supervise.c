/* test_supervise: the supervisor's work on a real table with injected clocks: reset
 * schedules, the failure-rate breaker, operator actions, dry selections and lookups.
 * Both clocks are fixed (NOW, and the calendar instants below) and the fixture stamps
 * its tables with them: the tests take no instant from the host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "breaker.h"
#include "clock.h"
#include "fixture.h"
#include "quota.h"
#include "select.h"
#include "supervise.h"
#include "view.h"

#define MS     ROTA_NS_PER_MS
#define S      ROTA_NS_PER_S
#define DAY_NS (86400 * (int64_t)ROTA_NS_PER_S)

/* Wall-clock instants (UTC seconds) the calendar tests use. */
#define JUN15_134530 INT64_C(1749995130) /* 2025-06-15 13:45:30 UTC */
#define JUN16_0000   INT64_C(1750032000) /* 2025-06-16 00:00 UTC */
#define MAR05_1200   INT64_C(1741176000) /* 2025-03-05 12:00 UTC, a Wednesday */
#define MAR09_0800   INT64_C(1741507200) /* Sun 2025-03-09 00:00 PST; DST starts 02:00 */
#define MAR16_0700   INT64_C(1742108400) /* Sun 2025-03-16 00:00 PDT */
#define OCT29_1200   INT64_C(1761739200) /* 2025-10-29 12:00 UTC, a Wednesday */
#define NOV02_0700   INT64_C(1762066800) /* Sun 2025-11-02 00:00 PDT; DST ends 02:00 */
#define NOV09_0800   INT64_C(1762675200) /* Sun 2025-11-09 00:00 PST */

#define NOW (5000 * S) /* monotonic ns the tests start at */

struct ctx {
    struct fx f;
    struct rota_sup *s;
    struct rota_rng rng;
    uint64_t now; /* the injected monotonic clock */
};

/* Each test's table lives in its state, so a failed test still removes its segments. */
static int setup(void **state)
{
    static struct ctx c;
    memset(&c, 0, sizeof(c));
    c.f.mono = NOW;
    c.f.wall = JUN15_134530 * (int64_t)S;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    rota_sup_free(c->s);
    c->s = NULL;
    fx_close(&c->f);
    return 0;
}

/* After publishing c->f: the supervisor's state for it, the clock, a fresh heartbeat. */
static struct ctx *start(struct ctx *c, const struct rota_sup_rate *rates)
{
    assert_int_equal(rota_sup_new(c->f.m, rates, &c->s), 0);
    c->rng.s = 7;
    c->now = NOW;
    rota_shm_heartbeat(c->f.w, c->now);
    return c;
}

/* A one-tier pool of "n" accounts, each with a daily request window of "limit". */
static struct ctx *open_pool(void **state, uint32_t n, enum rota_strategy strategy,
                             uint64_t limit, const struct rota_sup_rate *rates)
{
    struct ctx *c = *state;
    teardown(state);
    struct fx_pool_opts o = {.n = n, .strategy = strategy, .limit = limit};
    assert_int_equal(fx_pool_with(&c->f, "sup", &o), 0);
    return start(c, rates);
}

/* Move the injected clock on, keeping the table's heartbeat fresh. */
static void advance(struct ctx *c, uint64_t ns)
{
    c->now += ns;
    rota_shm_heartbeat(c->f.w, c->now);
}

static int sel(struct ctx *c, struct rota_sel_res *r)
{
    struct rota_sel_req q = {.route = 0, .est_tokens = 10, .now = c->now};
    return rota_select_route(c->f.m, &q, &c->rng, r);
}

static void report(struct ctx *c, const struct rota_sel_res *r, int status)
{
    struct rota_outcome_in o = {
        .status = status, .pool = r->pool, .trial = r->trial, .est_tokens = 10, .tokens = 10};
    rota_report_apply(c->f.m, r->account, &o, c->now, rota_rng_next(&c->rng));
}

/* One call on the route, reported with "status"; returns the account it went to. */
static uint32_t call(struct ctx *c, int status)
{
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    report(c, &r, status);
    return r.account;
}

static double fraction(struct ctx *c, uint32_t a)
{
    double f;
    assert_true(rota_account_fraction(c->f.m, a, 0, &f, NULL));
    return f;
}

#define assert_fraction(c, a, want) assert_near(fraction(c, a), want)

static void assert_near(double got, double want)
{
    if (got - want > 1e-12 || want - got > 1e-12)
        fail_msg("used fraction %.15g, expected %.15g", got, want);
}

static int64_t reset_at(struct ctx *c, uint32_t a, uint32_t w)
{
    return rota_load(&c->f.m->snaps[a].win[w].reset_at);
}

/* ---- resets ---- */

static void test_supervise_daily_reset_at_utc_midnight(void **state)
{
    struct ctx *c = open_pool(state, 3, ROTA_STRAT_ROUND_ROBIN, 100, NULL);
    int64_t wall = JUN15_134530 * (int64_t)S + 250 * (int64_t)MS;
    int64_t midnight = JUN16_0000 * (int64_t)S;

    /* The first pass only schedules: nothing is due yet. */
    assert_int_equal(rota_sup_resets(c->s, c->f.m, wall), 0);
    for (uint32_t a = 0; a < 3; a++)
        assert_int_equal(reset_at(c, a, 0), midnight);

    for (int i = 0; i < 30; i++)
        call(c, 200);
    uint64_t before[3];
    for (uint32_t a = 0; a < 3; a++) {
        before[a] = rota_selections(c->f.m, a);
        assert_true(before[a] > 0);
        assert_fraction(c, a, (double)before[a] / 100.0);
    }

    /* A nanosecond before midnight: nothing is due. */
    assert_int_equal(rota_sup_resets(c->s, c->f.m, midnight - 1), 0);
    for (uint32_t a = 0; a < 3; a++) {
        assert_fraction(c, a, (double)before[a] / 100.0);
        assert_int_equal(reset_at(c, a, 0), midnight);
    }

    /* At midnight every window starts again; the counters themselves do not move. */
    assert_int_equal(rota_sup_resets(c->s, c->f.m, midnight), 3);
    for (uint32_t a = 0; a < 3; a++) {
        assert_fraction(c, a, 0.0);
        assert_int_equal(rota_selections(c->f.m, a), before[a]);
        assert_int_equal(reset_at(c, a, 0), midnight + DAY_NS);
    }
    /* Done once: the same instant again resets nothing. */
    assert_int_equal(rota_sup_resets(c->s, c->f.m, midnight + 5 * (int64_t)S), 0);

    /* Calls counted after the reset count against the new period only. */
    for (int i = 0; i < 12; i++)
        call(c, 200);
    for (uint32_t a = 0; a < 3; a++) {
        uint64_t since = rota_selections(c->f.m, a) - before[a];
        assert_true(since > 0);
        assert_fraction(c, a, (double)since / 100.0);
    }

    /* Late (the supervisor was away): one reset, the next from the late instant. */
    int64_t late = midnight + DAY_NS + 3 * DAY_NS / 2;
    assert_int_equal(rota_sup_resets(c->s, c->f.m, late), 3);
    assert_int_equal(reset_at(c, 0, 0), midnight + 3 * DAY_NS);
    assert_fraction(c, 0, 0.0);
}

static void test_supervise_window_full_then_reset_is_eligible_again(void **state)
{
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 10, NULL);
    int64_t midnight = JUN16_0000 * (int64_t)S;
    rota_sup_resets(c->s, c->f.m, midnight - 3600 * (int64_t)S);
    for (int i = 0; i < 4; i++)
        call(c, 200);
    assert_fraction(c, 0, 0.4);
    /* The provider says 9 of 10 are used (other clients of the key): past the tier's
     * ceiling (0.80). */
    fx_used(&c->f, 0, 9);
    assert_fraction(c, 0, 0.9);
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.skipped[0], ROTA_SKIP_CEILING);
    /* When the test's wall clock says an hour to midnight, the answer says the window
     * frees in an hour, on the test's monotonic clock: no real clock is read. */
    struct rota_sel_req q = {
        .route = 0, .est_tokens = 10, .now = c->now, .wall = midnight - 3600 * (int64_t)S};
    assert_int_equal(rota_select_route(c->f.m, &q, &c->rng, &r), ROTA_EEXHAUSTED);
    assert_true(r.retry_at == c->now + 3600 * S);
    assert_int_equal(rota_sup_resets(c->s, c->f.m, midnight), 1);
    assert_fraction(c, 0, 0.0);
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.account, 0);
}

/* One account with a weekly window "weekly sun 00:00" in America/Los_Angeles, and a
 * daily UTC window beside it. */
static int publish_weekly_la(struct fx *f)
{
    struct rota_shm_reset weekly, daily;
    char err[128];
    if (rota_quota_parse_reset("weekly sun 00:00", &weekly, err, sizeof(err)) ||
        rota_quota_parse_reset("daily 00:00", &daily, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    struct rota_desc_provider p = {.name = "prov", .kind = "openai"};
    struct rota_desc_account a = {.id = 77, .name = "weekly", .credential = "sk-test-secret"};
    a.nwin = 2;
    a.win[0] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                         .limit = 1000,
                                         .reset = weekly,
                                         .tz = "America/Los_Angeles"};
    a.win[1] =
        (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS, .limit = 500, .reset = daily};
    static const uint32_t members[] = {0};
    struct rota_desc_tier t = {
        .strategy = ROTA_STRAT_GREEDY, .provider = 0, .nmembers = 1, .members = members};
    struct rota_desc_route r = {.name = "pool", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 1,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = &a,
                          .routes = &r};
    return fx_publish(f, "supwk", &d);
}

static void test_supervise_weekly_reset_in_a_zone_across_dst(void **state)
{
    if (access("/usr/share/zoneinfo/America/Los_Angeles", R_OK) != 0 &&
        !getenv("ROTA_ZONEINFO")) {
        print_message("no zoneinfo for America/Los_Angeles\n");
        skip();
    }
    struct ctx *c = *state;
    assert_int_equal(publish_weekly_la(&c->f), 0);
    start(c, NULL);

    /* Spring forward: Sunday midnight is still PST (-8) on 9 March, PDT (-7) a week on. */
    assert_int_equal(rota_sup_resets(c->s, c->f.m, MAR05_1200 * (int64_t)S), 0);
    assert_int_equal(reset_at(c, 0, 0), MAR09_0800 * (int64_t)S);
    assert_int_equal(reset_at(c, 0, 1), (MAR05_1200 + 12 * 3600) * (int64_t)S);
    for (int i = 0; i < 20; i++)
        call(c, 200);
    assert_fraction(c, 0, 20.0 / 500.0); /* the daily window is the fuller */
    /* Just before: only the daily window, due since 6 March 00:00 UTC. */
    assert_int_equal(rota_sup_resets(c->s, c->f.m, MAR09_0800 * (int64_t)S - 1), 1);
    assert_fraction(c, 0, 20.0 / 1000.0);
    assert_int_equal(reset_at(c, 0, 0), MAR09_0800 * (int64_t)S);
    assert_int_equal(rota_sup_resets(c->s, c->f.m, MAR09_0800 * (int64_t)S), 1);
    assert_fraction(c, 0, 0.0);
    assert_int_equal(reset_at(c, 0, 0), MAR16_0700 * (int64_t)S); /* 7 days less 1 h */
    assert_int_equal(reset_at(c, 0, 1), (MAR09_0800 + 16 * 3600) * (int64_t)S);

    /* Fall back: 2 November midnight is PDT, 9 November PST: 7 days and 1 h. */
    assert_int_equal(rota_sup_resets(c->s, c->f.m, OCT29_1200 * (int64_t)S), 2);
    assert_int_equal(reset_at(c, 0, 0), NOV02_0700 * (int64_t)S);
    assert_int_equal(rota_sup_resets(c->s, c->f.m, NOV02_0700 * (int64_t)S - 1), 1);
    assert_int_equal(reset_at(c, 0, 0), NOV02_0700 * (int64_t)S);
    assert_int_equal(rota_sup_resets(c->s, c->f.m, NOV02_0700 * (int64_t)S), 1);
    assert_int_equal(reset_at(c, 0, 0), NOV09_0800 * (int64_t)S);
}

/* ---- the failure-rate breaker ---- */

/* Calls on a one-account pool, "fails" of "n" answered 500, never more than two in a row
 * (the ordinary breaker opens at five). */
static void calls_with_failures(struct ctx *c, uint32_t n, uint32_t fails)
{
    uint32_t run = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool fail = fails > 0 && run < 2;
        call(c, fail ? 500 : 200);
        fails -= fail;
        run = fail ? run + 1 : 0;
    }
    assert_int_equal(fails, 0);
}

static uint64_t breaker(struct ctx *c, uint32_t a)
{
    return rota_load(&c->f.m->hot[a].breaker);
}

static void test_supervise_rate_tick_opens_at_the_failure_rate(void **state)
{
    struct rota_sup_rate rate = {0.5, 10, 10 * S};
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 1000, &rate);

    /* The first tick only takes its mark. */
    calls_with_failures(c, 10, 6);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 1), 0);

    /* Fewer than min_calls in the window: 8 calls, 6 of them failures. */
    calls_with_failures(c, 8, 6);
    advance(c, 10 * S + 1);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 2), 0);
    assert_int_equal(rota_breaker_state_of(breaker(c, 0)), 0);

    /* Below the rate: 8 failures in 20. */
    calls_with_failures(c, 20, 8);
    advance(c, 10 * S + 1);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 3), 0);
    assert_int_equal(rota_breaker_state_of(breaker(c, 0)), 0);

    /* 12 failures in 20, the ordinary breaker still closed: not before the window ends.
     * Ten more calls are under way meanwhile. */
    calls_with_failures(c, 20, 12);
    struct rota_sel_res late[10];
    for (int i = 0; i < 10; i++)
        assert_int_equal(sel(c, &late[i]), 0);
    assert_int_equal(rota_load(&c->f.m->hot[0].failures), 6 + 6 + 8 + 12);
    assert_int_equal(rota_breaker_state_of(breaker(c, 0)), 0);
    advance(c, 5 * S);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 4), 0);
    advance(c, 5 * S + 1);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 5), 1);
    assert_int_not_equal(rota_breaker_state_of(breaker(c, 0)), 0);
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    assert_true(r.skipped[0] & ROTA_SKIP_BREAKER);
    assert_true(r.retry_at > c->now);

    /* The calls under way fail too; the breaker is already open: the next tick leaves
     * it as it is (no second trip). */
    for (int i = 0; i < 10; i++)
        report(c, &late[i], 500);
    uint64_t open = breaker(c, 0);
    advance(c, 10 * S + 1);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 6), 0);
    assert_int_equal(breaker(c, 0), open);
    assert_int_equal(rota_breaker_trips(open), 1);
}

static void test_supervise_rate_tick_opens_at_exactly_rate_and_min_calls(void **state)
{
    struct rota_sup_rate rate = {0.5, 10, 10 * S};
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 1000, &rate);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 1), 0);
    calls_with_failures(c, 10, 5); /* min_calls calls, half of them failed */
    advance(c, 10 * S);            /* the window, to the nanosecond */
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 2), 1);
    assert_int_equal(rota_breaker_state_of(breaker(c, 0)), ROTA_BREAKER_OPEN);
}

static void test_supervise_rate_tick_opens_only_the_failing_account(void **state)
{
    struct rota_sup_rate rate = {0.5, 10, 10 * S};
    struct ctx *c = open_pool(state, 2, ROTA_STRAT_ROUND_ROBIN, 1000, &rate);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 1), 0);
    /* Round robin alternates: account 0's calls fail two in three, account 1's never. */
    uint32_t n[2] = {0, 0};
    for (int i = 0; i < 40; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        report(c, &r, r.account == 0 && n[0]++ % 3 != 2 ? 500 : 200);
        n[1] += r.account == 1;
    }
    assert_int_equal(n[0], 20);
    assert_int_equal(n[1], 20);
    advance(c, 10 * S);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 2), 1);
    assert_int_not_equal(rota_breaker_state_of(breaker(c, 0)), 0);
    assert_int_equal(rota_breaker_state_of(breaker(c, 1)), 0);
    for (int i = 0; i < 20; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.account, 1);
    }
}

static void test_supervise_rate_zero_is_off(void **state)
{
    struct rota_sup_rate off = {0, 10, 10 * S};
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 1000, &off);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 1), 0);
    calls_with_failures(c, 20, 12);
    advance(c, 10 * S + 1);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 2), 0);
    assert_int_equal(rota_breaker_state_of(breaker(c, 0)), 0);

    /* No rates at all (NULL): off for every provider. */
    c = open_pool(state, 1, ROTA_STRAT_GREEDY, 1000, NULL);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 1), 0);
    calls_with_failures(c, 20, 14);
    advance(c, 10 * S + 1);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 2), 0);
    assert_int_equal(rota_breaker_state_of(breaker(c, 0)), 0);
}

/* ---- operator actions ---- */

static void test_supervise_disable_until_enabled_exhausts_a_lone_account(void **state)
{
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 1000, NULL);
    struct rota_sel_res r;
    rota_sup_disable(c->f.m, 0, ROTA_OFF_OPERATOR, 0);
    assert_int_equal(rota_load(&c->f.m->snaps[0].reason), ROTA_OFF_OPERATOR);
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.skipped[0], ROTA_SKIP_DISABLED);
    advance(c, 3600 * S); /* until enabled means no expiry */
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    rota_sup_enable(c->f.m, 0);
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.account, 0);
}

static void test_supervise_disable_with_until(void **state)
{
    struct ctx *c = open_pool(state, 2, ROTA_STRAT_GREEDY, 1000, NULL);
    struct rota_sel_res r;
    /* An "until" already past: eligible. */
    rota_sup_disable(c->f.m, 0, ROTA_OFF_OPERATOR, c->now - 1);
    rota_sup_disable(c->f.m, 1, ROTA_OFF_OPERATOR, c->now - 1);
    assert_int_equal(sel(c, &r), 0);
    /* One second ahead: both skipped until then. */
    rota_sup_disable(c->f.m, 0, ROTA_OFF_OPERATOR, c->now + S);
    rota_sup_disable(c->f.m, 1, ROTA_OFF_OPERATOR, c->now + 2 * S);
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.skipped[0], ROTA_SKIP_DISABLED);
    assert_int_equal(r.retry_at, c->now + S);
    advance(c, S);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.account, 0);
    }
}

static void test_supervise_enable_clears_a_worker_auth_disable(void **state)
{
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 1000, NULL);
    struct rota_sel_res r;
    call(c, 401);
    assert_int_not_equal(rota_load(&c->f.m->hot[0].disabled), 0);
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.skipped[0], ROTA_SKIP_DISABLED);
    rota_sup_enable(c->f.m, 0);
    assert_int_equal(rota_load(&c->f.m->hot[0].disabled), 0);
    assert_int_equal(rota_load(&c->f.m->snaps[0].flags) & ROTA_SNAP_DISABLED, 0);
    assert_int_equal(sel(c, &r), 0);
}

static void test_supervise_reset_all_pools_clears_windows_cooldown_breaker(void **state)
{
    struct rota_sup_rate rate = {0.5, 10, 10 * S};
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 100, &rate);
    int64_t wall = JUN15_134530 * (int64_t)S;
    rota_sup_resets(c->s, c->f.m, wall);
    /* 20 calls, 12 failed: the rate tick opens the breaker; a call selected before that
     * comes back 429: a cooldown too. */
    rota_sup_rate_tick(c->s, c->f.m, c->now, 1);
    calls_with_failures(c, 20, 12);
    struct rota_sel_res held, r;
    assert_int_equal(sel(c, &held), 0);
    advance(c, 10 * S);
    assert_int_equal(rota_sup_rate_tick(c->s, c->f.m, c->now, 2), 1);
    report(c, &held, 429);
    assert_true(rota_load(&c->f.m->hot[0].cooldown_until) > c->now);
    assert_int_not_equal(rota_breaker_state_of(breaker(c, 0)), 0);
    assert_fraction(c, 0, 21.0 / 100.0);
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);

    assert_int_equal(rota_sup_reset(c->s, c->f.m, 0, -1, wall + 60 * (int64_t)S), 1);
    assert_fraction(c, 0, 0.0);
    assert_int_equal(rota_selections(c->f.m, 0), 21);
    assert_int_equal(rota_load(&c->f.m->hot[0].cooldown_until), 0);
    assert_int_equal(rota_load(&c->f.m->hot[0].consec_429), 0);
    assert_int_equal(rota_load(&c->f.m->hot[0].consec_fail), 0);
    assert_int_equal(rota_breaker_state_of(breaker(c, 0)), ROTA_BREAKER_CLOSED);
    assert_int_equal(reset_at(c, 0, 0), JUN16_0000 * (int64_t)S);
    assert_int_equal(sel(c, &r), 0);
    assert_fraction(c, 0, 1.0 / 100.0);
}

/* One account with a window on the account-wide pool and one on pool 1 ("fast"), over a
 * route that uses pool 1. */
static int publish_two_pools(struct fx *f)
{
    struct rota_desc_provider p = {.name = "prov", .kind = "openai"};
    struct rota_desc_account a = {.id = 5, .name = "pooled", .credential = "sk-test-secret"};
    a.pools[0] = "*";
    a.pools[1] = "fast";
    a.nwin = 2;
    a.win[0] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                         .pool = 0,
                                         .limit = 100,
                                         .reset = {.kind = ROTA_RESET_DAY}};
    a.win[1] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                         .pool = 1,
                                         .limit = 50,
                                         .reset = {.kind = ROTA_RESET_DAY}};
    static const uint32_t members[] = {0}, pools[] = {1};
    struct rota_desc_tier t = {.strategy = ROTA_STRAT_GREEDY,
                               .provider = 0,
                               .nmembers = 1,
                               .members = members,
                               .pools = pools};
    struct rota_desc_route r = {.name = "fast", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 1,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = &a,
                          .routes = &r};
    return fx_publish(f, "suppl", &d);
}

static void test_supervise_reset_one_pool_touches_only_its_windows(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(publish_two_pools(&c->f), 0);
    start(c, NULL);
    int64_t wall = JUN15_134530 * (int64_t)S;
    for (int i = 0; i < 10; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.pool, 1);
        report(c, &r, 200);
    }
    double f0, f1;
    assert_true(rota_account_fraction(c->f.m, 0, 0, &f0, NULL));
    assert_true(rota_account_fraction(c->f.m, 0, 1, &f1, NULL));
    assert_near(f0, 10.0 / 100.0);
    assert_near(f1, 10.0 / 50.0); /* pool 1 reads both windows; its own is fuller */
    call(c, 429);
    uint64_t cooldown = rota_load(&c->f.m->hot[0].cooldown_until);
    assert_true(cooldown > c->now);

    assert_int_equal(rota_sup_reset(c->s, c->f.m, 0, 1, wall), 1);
    /* Only pool 1's window got its next reset time. */
    assert_int_equal(reset_at(c, 0, 1), JUN16_0000 * (int64_t)S);
    assert_int_equal(reset_at(c, 0, 0), 0);
    assert_true(rota_account_fraction(c->f.m, 0, 0, &f0, NULL));
    assert_near(f0, 11.0 / 100.0); /* pool 0's window kept its count */
    assert_true(rota_account_fraction(c->f.m, 0, 1, &f1, NULL));
    assert_near(f1, 11.0 / 100.0); /* now the account-wide window is the fuller */
    /* A pool reset leaves the cooldown alone. */
    assert_int_equal(rota_load(&c->f.m->hot[0].cooldown_until), cooldown);
    assert_int_equal(rota_sup_reset(c->s, c->f.m, 0, 0, wall), 1);
    assert_int_equal(reset_at(c, 0, 0), JUN16_0000 * (int64_t)S);
    assert_true(rota_account_fraction(c->f.m, 0, 1, &f1, NULL));
    assert_near(f1, 0.0);
    assert_int_equal(rota_sup_reset(c->s, c->f.m, 0, 3, wall), 0); /* no window there */
}

static void test_supervise_cooldown_sets_and_zero_clears(void **state)
{
    struct ctx *c = open_pool(state, 1, ROTA_STRAT_GREEDY, 1000, NULL);
    struct rota_sel_res r;
    rota_sup_cooldown(c->f.m, 0, c->now + 5 * S);
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.skipped[0], ROTA_SKIP_COOLDOWN);
    assert_int_equal(r.retry_at, c->now + 5 * S);
    rota_sup_cooldown(c->f.m, 0, 0);
    assert_int_equal(sel(c, &r), 0);
    rota_sup_cooldown(c->f.m, 0, c->now + 5 * S);
    advance(c, 5 * S);
    assert_int_equal(sel(c, &r), 0);
}

/* ---- dry selection ---- */

static void test_supervise_dry_select_changes_nothing(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(fx_chain(&c->f, "supdry", ROTA_STRAT_HYBRID, 100), 0);
    start(c, NULL);
    for (int i = 0; i < 9; i++) /* some history: last use, counters, cursors */
        call(c, 200);
    struct rota_shm_map *m = c->f.m;
    size_t hot_bytes = m->naccounts * sizeof(struct rota_shm_hot);
    void *hot = malloc(hot_bytes), *all = malloc(m->size);
    assert_non_null(hot);
    assert_non_null(all);
    memcpy(hot, m->hot, hot_bytes);
    memcpy(all, m->base, m->size);
    for (uint64_t i = 0; i < 200; i++) {
        struct rota_sel_res r;
        assert_int_equal(rota_sup_dry_select(m, 0, i & 1 ? i : 0, 10, c->now + i * MS, &r), 0);
        assert_int_equal(r.tier, 0);
        assert_true(r.account <= 2); /* the antigravity tier */
    }
    assert_memory_equal(m->hot, hot, hot_bytes);
    assert_memory_equal(m->base, all, m->size);

    /* Tier 0 disabled: the answer comes from tier 1, saying why tier 0 was passed. */
    for (uint32_t a = 0; a < 3; a++)
        rota_sup_disable(m, a, ROTA_OFF_OPERATOR, 0);
    memcpy(hot, m->hot, hot_bytes);
    struct rota_sel_res r;
    assert_int_equal(rota_sup_dry_select(m, 0, 0, 10, c->now, &r), 0);
    assert_int_equal(r.tier, 1);
    assert_true(r.account == 3 || r.account == 4);
    assert_int_equal(r.skipped[0], ROTA_SKIP_DISABLED);

    for (uint32_t a = 3; a < m->naccounts; a++)
        rota_sup_disable(m, a, ROTA_OFF_OPERATOR, 0);
    memcpy(all, m->base, m->size);
    assert_int_equal(rota_sup_dry_select(m, 0, 0, 10, c->now, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.tier, 4);
    for (uint32_t k = 0; k < 4; k++)
        assert_int_equal(r.skipped[k], ROTA_SKIP_DISABLED);
    assert_int_equal(rota_sup_dry_select(m, 1, 0, 10, c->now, &r), ROTA_ENOROUTE);
    assert_memory_equal(m->hot, hot, hot_bytes);
    assert_memory_equal(m->base, all, m->size);
    free(hot);
    free(all);
}

/* ---- lookups ---- */

static int publish_names(struct fx *f)
{
    struct rota_desc_provider p[2] = {{.name = "alpha", .kind = "openai"},
                                      {.name = "beta", .kind = "anthropic"}};
    struct rota_desc_account a[3] = {
        {.id = 0x2a, .name = "main", .provider = 0},
        {.id = 0xbeef, .name = "main", .provider = 1},
        {.id = 0x10, .name = "solo", .provider = 1},
    };
    static const uint32_t m0[] = {0}, m1[] = {1, 2};
    struct rota_desc_tier t0 = {.provider = 0, .nmembers = 1, .members = m0};
    struct rota_desc_tier t1 = {.provider = 1, .nmembers = 2, .members = m1};
    static const char *const models0[] = {"gpt-x", "gpt-x-mini", NULL};
    static const char *const models1[] = {"claude-y", NULL};
    struct rota_desc_route r[2] = {
        {.name = "fast", .models = models0, .ntiers = 1, .tiers = &t0},
        {.name = "smart", .models = models1, .ntiers = 1, .tiers = &t1}};
    struct rota_desc d = {.nproviders = 2,
                          .naccounts = 3,
                          .nroutes = 2,
                          .providers = p,
                          .accounts = a,
                          .routes = r};
    return fx_publish(f, "supnm", &d);
}

static void test_supervise_find_by_name_id_and_model(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(publish_names(&c->f), 0);
    const struct rota_shm_map *m = c->f.m;
    assert_int_equal(rota_sup_find_account(m, "alpha/main"), 0);
    assert_int_equal(rota_sup_find_account(m, "beta/main"), 1);
    assert_int_equal(rota_sup_find_account(m, "main"), ROTA_NONE - 1); /* ambiguous */
    assert_int_equal(rota_sup_find_account(m, "solo"), 2);
    assert_int_equal(rota_sup_find_account(m, "beta/solo"), 2);
    assert_int_equal(rota_sup_find_account(m, "alpha/solo"), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, "alph/main"), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, "alphaa/main"), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, "gamma/main"), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, "nobody"), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, ""), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, NULL), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, "0x2a"), 0);
    assert_int_equal(rota_sup_find_account(m, "0xBEEF"), 1);
    assert_int_equal(rota_sup_find_account(m, "0X10"), 2);
    assert_int_equal(rota_sup_find_account(m, "0x99"), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, "0x"), ROTA_NONE);
    assert_int_equal(rota_sup_find_account(m, "0x2ag"), ROTA_NONE);

    assert_int_equal(rota_sup_find_provider(m, "alpha"), 0);
    assert_int_equal(rota_sup_find_provider(m, "beta"), 1);
    assert_int_equal(rota_sup_find_provider(m, "gamma"), ROTA_NONE);
    assert_int_equal(rota_sup_find_provider(m, NULL), ROTA_NONE);

    assert_int_equal(rota_sup_find_route(m, "fast"), 0);
    assert_int_equal(rota_sup_find_route(m, "smart"), 1);
    assert_int_equal(rota_sup_find_route(m, "gpt-x"), 0);
    assert_int_equal(rota_sup_find_route(m, "gpt-x-mini"), 0);
    assert_int_equal(rota_sup_find_route(m, "claude-y"), 1);
    assert_int_equal(rota_sup_find_route(m, "gpt"), ROTA_NONE);
    assert_int_equal(rota_sup_find_route(m, "nope"), ROTA_NONE);
    assert_int_equal(rota_sup_find_route(m, NULL), ROTA_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_supervise_daily_reset_at_utc_midnight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_supervise_window_full_then_reset_is_eligible_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervise_weekly_reset_in_a_zone_across_dst, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_supervise_rate_tick_opens_at_the_failure_rate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_supervise_rate_tick_opens_at_exactly_rate_and_min_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervise_rate_tick_opens_only_the_failing_account,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervise_rate_zero_is_off, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_supervise_disable_until_enabled_exhausts_a_lone_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervise_disable_with_until, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervise_enable_clears_a_worker_auth_disable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_supervise_reset_all_pools_clears_windows_cooldown_breaker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervise_reset_one_pool_touches_only_its_windows,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervise_cooldown_sets_and_zero_clears, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_supervise_dry_select_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_supervise_find_by_name_id_and_model, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
