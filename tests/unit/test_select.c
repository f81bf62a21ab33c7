/* test_select: the chain walk over a real table, with an injected clock: eligibility,
 * fall-through with each reason, the seed's six fallback edge cases (RJ-2), exhaustion. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "breaker.h"
#include "clock.h"
#include "fixture.h"
#include "hash.h"
#include "select.h"

#define MS ROTA_NS_PER_MS
#define S  ROTA_NS_PER_S

struct ctx {
    struct fx f;
    struct rota_rng rng;
    uint64_t now; /* the injected clock */
};

static int setup_chain(void **state)
{
    static struct ctx c;
    memset(&c, 0, sizeof(c));
    if (fx_chain(&c.f, "sel", ROTA_STRAT_HYBRID, 100))
        return -1;
    c.rng.s = 42;
    c.now = rota_clock_mono();
    rota_shm_heartbeat(c.f.w, c.now);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    fx_close(&c->f);
    return 0;
}

static int sel(struct ctx *c, struct rota_sel_res *r)
{
    struct rota_sel_req q = {.route = 0, .est_tokens = 10, .now = c->now};
    return rota_select_route(c->f.m, &q, &c->rng, r);
}

static void report(struct ctx *c, const struct rota_sel_res *r, int status, uint64_t retry_ms)
{
    struct rota_outcome_in o = {.status = status,
                                .pool = r->pool,
                                .trial = r->trial,
                                .est_tokens = 10,
                                .tokens = 10,
                                .retry_after_ms = retry_ms};
    rota_report_apply(c->f.m, r->account, &o, c->now, 12345);
}

/* Report a status on account "a" as if it had been selected. */
static void report_on(struct ctx *c, uint32_t a, int status)
{
    struct rota_sel_res r = {.account = a};
    report(c, &r, status, 0);
}

static uint32_t tier_of(uint32_t a)
{
    static const uint32_t t[] = {0, 0, 0, 1, 1, 2, 2, 3};
    return t[a];
}

static void test_select_healthy_chain_uses_first_tier(void **state)
{
    struct ctx *c = *state;
    for (int i = 0; i < 200; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.tier, 0);
        assert_int_equal(tier_of(r.account), 0);
        assert_true(r.why == ROTA_WHY_SCORE || r.why == ROTA_WHY_FORCED_LRU);
        report(c, &r, 200, 0);
    }
}

/* RJ-2 (1): all Antigravity accounts above 80 % -> Copilot. */
static void test_select_rj2_antigravity_over_ceiling_falls_to_copilot(void **state)
{
    struct ctx *c = *state;
    for (uint32_t a = 0; a < 3; a++)
        fx_used(&c->f, a, 81);
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, FX_COPILOT);
    assert_int_equal(r.skipped[0], ROTA_SKIP_CEILING);
    /* One account back under the ceiling: the first tier serves again. */
    fx_used(&c->f, 1, 50);
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.account, 1);
}

/* RJ-2 (2): Antigravity API down -> circuit breaker opens, then half-open trials. */
static void test_select_rj2_provider_down_opens_breaker_then_recovers(void **state)
{
    struct ctx *c = *state;
    for (uint32_t a = 0; a < 3; a++)
        for (int k = 0; k < 3; k++)
            report_on(c, a, 503);
    struct rota_sel_res r;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.tier, FX_COPILOT);
        assert_true(r.skipped[0] & ROTA_SKIP_BREAKER);
        report(c, &r, 200, 0);
    }
    c->now += 1200 * MS; /* past the first open period (1 s, jittered by 10 %) */
    rota_shm_heartbeat(c->f.w, c->now);
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, 0);
    assert_true(r.why & ROTA_WHY_TRIAL);
    report(c, &r, 200, 0);
    /* Two trial successes (halfopen_permits = 2) close a breaker: keep calling until the
     * provider's and every account's have closed. */
    int i = 0;
    for (; i < 1000; i++) {
        bool open = rota_breaker_state_of(rota_load(&c->f.m->phot[0].breaker)) != 0;
        for (uint32_t a = 0; a < 3; a++)
            open |= rota_breaker_state_of(rota_load(&c->f.m->hot[a].breaker)) != 0;
        if (!open)
            break;
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.tier, 0);
        report(c, &r, 200, 0);
    }
    assert_true(i < 1000);
    for (i = 0; i < 20; i++) {
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.tier, 0);
        assert_false(r.why & ROTA_WHY_TRIAL);
        report(c, &r, 200, 0);
    }
}

/* RJ-2 (3): Copilot's probe cannot run (CLI missing) -> pessimistic -> next tier. */
static void test_select_rj2_copilot_pessimistic_falls_to_opencode(void **state)
{
    struct ctx *c = *state;
    for (uint32_t a = 0; a < 3; a++)
        fx_used(&c->f, a, 95);
    fx_flags(&c->f, 3, ROTA_SNAP_PESSIMISTIC);
    fx_flags(&c->f, 4, ROTA_SNAP_PESSIMISTIC);
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, FX_OPENCODE);
    assert_int_equal(r.skipped[FX_COPILOT], ROTA_SKIP_CEILING);
    /* The probe works again: Copilot is back. */
    fx_flags(&c->f, 3, 0);
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.account, 3);
}

/* RJ-2 (4): a 429 during fallback cascades to the next tier, and comes back after the
 * Retry-After. */
static void test_select_rj2_rate_limit_during_fallback_cascades(void **state)
{
    struct ctx *c = *state;
    for (uint32_t a = 0; a < 3; a++)
        fx_used(&c->f, a, 90);
    struct rota_sel_res r;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.tier, FX_COPILOT);
        report(c, &r, 429, 5000);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.tier, FX_OPENCODE);
        assert_int_equal(r.skipped[FX_COPILOT], ROTA_SKIP_COOLDOWN);
        assert_int_equal(r.skipped[0], ROTA_SKIP_CEILING);
        report(c, &r, 200, 0);
    }
    c->now += 5001 * MS;
    rota_shm_heartbeat(c->f.w, c->now);
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, FX_COPILOT);
}

/* RJ-2 (5): rapid failures spread over a provider's accounts: the provider's breaker
 * opens although no single account failed enough to trip its own. */
static void test_select_rj2_rapid_exhaustion_provider_breaker(void **state)
{
    struct ctx *c = *state;
    report_on(c, 0, 500);
    report_on(c, 1, 500);
    report_on(c, 2, 529);
    for (uint32_t a = 0; a < 3; a++)
        assert_int_equal(rota_load(&c->f.m->hot[a].breaker) & ~ROTA_BREAKER_EPOCH_MASK, 0);
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, FX_COPILOT);
    assert_int_equal(r.skipped[0], ROTA_SKIP_BREAKER);
}

/* RJ-2 (6): every provider fails -> the local model; then it fails too -> exhausted,
 * with the earliest time something frees up. */
static void test_select_rj2_all_providers_fail_local_fallback(void **state)
{
    struct ctx *c = *state;
    for (uint32_t a = 0; a < 7; a++)
        for (int k = 0; k < 3; k++)
            report_on(c, a, 502);
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, FX_LOCAL);
    assert_int_equal(r.account, 7);
    for (int k = 0; k < 3; k++)
        report_on(c, 7, 0); /* connection refused */
    assert_int_equal(sel(c, &r), ROTA_EEXHAUSTED);
    for (int t = 0; t < 4; t++)
        assert_int_equal(r.skipped[t], ROTA_SKIP_BREAKER);
    assert_true(r.retry_at > c->now + 800 * MS);
    assert_true(r.retry_at <= c->now + 1100 * MS);
}

static void test_select_auth_failure_disables_account(void **state)
{
    struct ctx *c = *state;
    report_on(c, 0, 401);
    report_on(c, 1, 402);
    for (int i = 0; i < 50; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        assert_int_equal(r.account, 2);
        report(c, &r, 200, 0);
    }
    report_on(c, 2, 403);
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, FX_COPILOT);
    assert_int_equal(r.skipped[0], ROTA_SKIP_DISABLED);
}

static void test_select_supervisor_disable_with_expiry(void **state)
{
    struct ctx *c = *state;
    for (uint32_t a = 0; a < 3; a++) {
        struct rota_shm_snap *s = rota_shm_snap_begin(c->f.m, a);
        rota_store(&s->flags, rota_load(&s->flags) | ROTA_SNAP_DISABLED);
        rota_store(&s->disabled_until, c->now + 2 * S);
        rota_shm_snap_end(s);
    }
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, FX_COPILOT);
    assert_int_equal(r.skipped[0], ROTA_SKIP_DISABLED);
    c->now += 2 * S + 1;
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, 0);
}

static void test_select_escalating_cooldown_without_hint(void **state)
{
    struct ctx *c = *state;
    const struct rota_shm_hot *h = &c->f.m->hot[0];
    uint64_t prev = 0;
    for (int k = 0; k < 4; k++) {
        report_on(c, 0, 429);
        uint64_t cd = rota_load((_Atomic uint64_t *)&h->cooldown_until) - c->now;
        assert_true(cd > prev); /* 1 s, 2 s, 4 s, 8 s */
        assert_int_equal(cd, (1000ull << (k + 1)) * MS / 2);
        prev = cd;
    }
    report_on(c, 0, 200);
    assert_int_equal(rota_load((_Atomic uint32_t *)&h->consec_429), 0);
}

static void test_select_stale_heartbeat_is_pessimistic(void **state)
{
    struct ctx *c = *state;
    c->now += 31 * S; /* the table's stale_after is 30 s; no heartbeat since */
    struct rota_sel_res r;
    assert_int_equal(sel(c, &r), 0);
    /* Every quota-bearing account is assumed 85 % used, over the 80 % ceilings; the
     * local model has no quota to be pessimistic about. */
    assert_int_equal(r.tier, FX_LOCAL);
    for (int t = 0; t < 3; t++)
        assert_int_equal(r.skipped[t], ROTA_SKIP_CEILING);
    rota_shm_heartbeat(c->f.w, c->now);
    assert_int_equal(sel(c, &r), 0);
    assert_int_equal(r.tier, 0);
}

static void test_select_local_counts_move_quota(void **state)
{
    struct ctx *c = *state;
    /* limit 100 per account: after 80 selections on the first tier in total, with the
     * observed use 0, every account there sits at or past the ceiling. */
    int tier0 = 0;
    for (int i = 0; i < 300; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        report(c, &r, 200, 0);
        if (r.tier == 0)
            tier0++;
        else
            assert_true(r.skipped[0] & ROTA_SKIP_CEILING);
    }
    assert_int_equal(tier0, 3 * 80);
    for (uint32_t a = 0; a < 3; a++)
        assert_int_equal(rota_selections(c->f.m, a), 80);
}

static void test_select_rpm_limit_and_retry_at(void **state)
{
    (void)state;
    struct fx f = {0};
    struct rota_desc_provider p = {.name = "p", .kind = "openai"};
    struct rota_desc_account a = {.id = 7, .name = "only", .rpm = 2};
    assert_int_equal(fx_one(&f, "rpm", &p, &a), 0);
    struct rota_rng rng = {1};
    uint64_t now = rota_clock_mono();
    struct rota_sel_req q = {.route = 0, .now = now};
    struct rota_sel_res r;
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.skipped[0], ROTA_SKIP_RATE);
    assert_int_equal(r.retry_at, now + 30 * S); /* one request per 30 s after the burst */
    q.now = r.retry_at;
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    fx_close(&f);
}

static void test_select_empty_tier_falls_through(void **state)
{
    (void)state;
    struct fx f = {0};
    struct rota_desc_provider p = {.name = "p"};
    struct rota_desc_account a = {.id = 7, .name = "only"};
    uint32_t m0 = 0;
    struct rota_desc_tier t[2] = {
        {.strategy = ROTA_STRAT_GREEDY, .provider = ROTA_NONE, .nmembers = 0},
        {.strategy = ROTA_STRAT_GREEDY, .provider = 0, .nmembers = 1, .members = &m0},
    };
    struct rota_desc_route rt = {.name = "r", .ntiers = 2, .tiers = t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 1,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = &a,
                          .routes = &rt};
    assert_int_equal(fx_publish(&f, "empty", &d), 0);
    struct rota_rng rng = {1};
    struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
    struct rota_sel_res r;
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    assert_int_equal(r.tier, 1);
    assert_int_equal(r.skipped[0], ROTA_SKIP_EMPTY);
    assert_int_equal(r.why, ROTA_WHY_GREEDY);
    fx_close(&f);
}

static void test_select_sticky_key_survives_and_returns(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "stk", 8, ROTA_STRAT_STICKY, NULL), 0);
    struct rota_rng rng = {9};
    uint64_t now = rota_clock_mono();
    rota_shm_heartbeat(f.w, now);
    struct rota_sel_req q = {.route = 0, .key_hash = 0xfeedbeefcafe1234ull, .now = now};
    struct rota_sel_res r;
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    uint32_t home = r.account;
    assert_int_equal(r.why, ROTA_WHY_STICKY);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        assert_int_equal(r.account, home);
    }
    struct rota_outcome_in o = {.status = 429, .retry_after_ms = 1000};
    rota_report_apply(f.m, home, &o, now, 1);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    assert_int_not_equal(r.account, home);
    q.now += 1001 * MS;
    rota_shm_heartbeat(f.w, q.now);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    assert_int_equal(r.account, home);
    fx_close(&f);
}

/* Sticky over a tier too large to scan: keys keep their account, spread over many, and an
 * account leaving moves only the keys that were on it. */
static void test_select_sticky_large_tier_survives_leaving(void **state)
{
    (void)state;
    enum { N = 200, KEYS = 2000, GONE = 150 };
    static char names[N][8];
    static uint32_t members[N];
    static struct rota_desc_account acc[N];
    uint64_t before[KEYS];
    struct fx f = {0};
    for (int round = 0; round < 2; round++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < N; i++) {
            if (round == 1 && i == GONE)
                continue;
            snprintf(names[n], sizeof(names[n]), "s%u", i);
            acc[n] = (struct rota_desc_account){.id = 1000 + i, .name = names[n]};
            members[n] = n;
            n++;
        }
        struct rota_desc_provider p = {.name = "p"};
        struct rota_desc_tier t = {
            .strategy = ROTA_STRAT_STICKY, .provider = 0, .nmembers = n, .members = members};
        struct rota_desc_route rt = {.name = "r", .ntiers = 1, .tiers = &t};
        struct rota_desc d = {.nproviders = 1,
                              .naccounts = n,
                              .nroutes = 1,
                              .providers = &p,
                              .accounts = acc,
                              .routes = &rt};
        assert_int_equal(fx_publish(&f, "bigstk", &d), 0);
        struct rota_rng rng = {7};
        struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
        rota_shm_heartbeat(f.w, q.now);
        uint32_t used[N] = {0}, moved = 0, distinct = 0;
        for (uint32_t k = 0; k < KEYS; k++) {
            q.key_hash = rota_hash_mix(k + 1) | 1;
            struct rota_sel_res r;
            assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
            assert_int_equal(r.why, ROTA_WHY_STICKY);
            uint64_t id = f.m->accounts[r.account].id;
            struct rota_sel_res again;
            assert_int_equal(rota_select_route(f.m, &q, &rng, &again), 0);
            assert_int_equal(again.account, r.account);
            if (round == 0) {
                before[k] = id;
            } else if (before[k] != id) {
                assert_int_equal(before[k], 1000 + GONE); /* only its keys move */
                moved++;
            }
            distinct += used[id - 1000]++ == 0;
        }
        assert_true(distinct > N * 3 / 4);
        if (round == 1)
            assert_true(moved > 0 && moved < KEYS / 20);
    }
    fx_close(&f);
}

/* Fill-first on a large tier resumes where it found room, and comes back to an earlier
 * account that frees up once its list is refreshed. */
static void test_select_fill_first_resumes_and_returns(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "ffl", 200, ROTA_STRAT_FILL_FIRST, NULL), 0);
    struct rota_rng rng = {2};
    struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
    rota_shm_heartbeat(f.w, q.now);
    for (uint32_t a = 0; a < 150; a++)
        fx_used(&f, a, 1000000);
    struct rota_sel_res r;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        assert_int_equal(r.account, 150);
    }
    fx_used(&f, 150, 1000000);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    assert_int_equal(r.account, 151);
    fx_used(&f, 10, 0); /* its window reset */
    int k = 0;
    for (; k < 1000; k++) {
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        if (r.account == 10)
            break;
        assert_int_equal(r.account, 151);
    }
    assert_true(k < 1000);
    fx_close(&f);
}

static void test_select_round_robin_and_fill_first(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "rr", 5, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_rng rng = {3};
    struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
    rota_shm_heartbeat(f.w, q.now);
    uint32_t seen[5] = {0};
    struct rota_sel_res r;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        seen[r.account]++;
    }
    for (int a = 0; a < 5; a++)
        assert_int_equal(seen[a], 10);
    fx_close(&f);

    assert_int_equal(fx_pool(&f, "ff", 5, ROTA_STRAT_FILL_FIRST, NULL), 0);
    rota_shm_heartbeat(f.w, q.now);
    fx_used(&f, 0, 1000000); /* the first account is full: stay on the second */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        assert_int_equal(r.account, 1);
        assert_int_equal(r.why, ROTA_WHY_FILL_FIRST);
    }
    fx_close(&f);
}

static void test_select_large_tier_samples_and_stays_fair(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "big", 200, ROTA_STRAT_HYBRID, NULL), 0);
    struct rota_rng rng = {5};
    struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
    rota_shm_heartbeat(f.w, q.now);
    for (int i = 0; i < 200000; i++) {
        struct rota_sel_res r;
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        struct rota_outcome_in o = {.status = 200};
        rota_report_apply(f.m, r.account, &o, q.now, 0);
        q.now += 1000;
    }
    /* Every account of the 200 gets traffic: sampling plus the forced-LRU share. */
    for (uint32_t a = 0; a < 200; a++)
        assert_true(rota_selections(f.m, a) > 0);
    fx_close(&f);
}

struct lane_thread {
    struct fx *f;
    uint64_t now;
    uint32_t count[8];
    pthread_t tid;
};

static void *lane_main(void *arg)
{
    struct lane_thread *lt = arg;
    struct rota_rng rng = {(uint64_t)(uintptr_t)lt};
    struct rota_sel_cache cache = {0}; /* the thread's shortlists */
    struct rota_sel_req q = {.route = 0, .cache = &cache, .now = lt->now};
    for (int i = 0; i < 20; i++) {
        struct rota_sel_res r;
        if (rota_select_route(lt->f->m, &q, &rng, &r) == 0 && i > 0) /* 0: the full scan */
            lt->count[r.account]++;
    }
    return NULL;
}

/* Hybrid in steady state (every account used moments ago, equal quota): a selector's
 * shortlist is dealt a lane of the top three from the tier's cursor, so two selectors
 * (threads here, processes in service) settle on different accounts. */
static void test_select_concurrent_selectors_take_different_lanes(void **state)
{
    (void)state;
    struct fx_pool_opts o = {.n = 8, .strategy = ROTA_STRAT_HYBRID, .lru_share = -1};
    for (int round = 0; round < 20; round++) {
        struct fx f = {0};
        assert_int_equal(fx_pool_with(&f, "lane", &o), 0);
        uint64_t now = rota_clock_mono();
        rota_shm_heartbeat(f.w, now);
        for (uint32_t a = 0; a < 8; a++)
            rota_store(&f.m->hot[a].last_used, now - 1000);
        struct lane_thread th[2] = {{.f = &f, .now = now}, {.f = &f, .now = now}};
        uint32_t favourite[2];
        for (int k = 0; k < 2; k++) {
            assert_int_equal(pthread_create(&th[k].tid, NULL, lane_main, &th[k]), 0);
            pthread_join(th[k].tid, NULL); /* one after the other: the lanes, not timing */
            favourite[k] = 0;
            for (uint32_t a = 1; a < 8; a++)
                if (th[k].count[a] > th[k].count[favourite[k]])
                    favourite[k] = a;
            assert_true(th[k].count[favourite[k]] >= 15);
        }
        assert_int_not_equal(favourite[0], favourite[1]);
        fx_close(&f);
    }
}

/* A shortlist lives for many picks, but not once its account's quota has moved: an
 * observation that the chosen account is suddenly much fuller re-ranks the tier. */
static void test_select_shortlist_follows_quota(void **state)
{
    (void)state;
    struct fx_pool_opts o = {
        .n = 8, .strategy = ROTA_STRAT_HYBRID, .lru_share = -1, .limit = 1000000};
    struct fx f = {0};
    assert_int_equal(fx_pool_with(&f, "drift", &o), 0);
    struct rota_rng rng = {3};
    struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
    rota_shm_heartbeat(f.w, q.now);
    struct rota_sel_res r;
    for (int i = 0; i < 10; i++)
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
    uint32_t x = r.account;
    for (int i = 0; i < 10; i++) { /* settled on x: the list keeps it */
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        assert_int_equal(r.account, x);
    }
    fx_used(&f, x, 700000); /* 70 % used: still under the ceiling, far behind the rest */
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0); /* notices the move */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rota_select_route(f.m, &q, &rng, &r), 0);
        assert_int_not_equal(r.account, x);
    }
    fx_close(&f);
}

/* ---- TPM refunds: a report gives back at most what its admission still holds ---- */

#define TPM_THREADS 4

struct tpm_race {
    struct fx f;
    uint64_t now;             /* the one instant every selection and report happens at */
    pthread_barrier_t phase;  /* fill, then the late report, then fill again */
    _Atomic uint64_t tokens;  /* tokens admitted at "now" */
    struct rota_sel_res late; /* the admission reported at "now" */
};

/* Select 10-token calls at r->now until the TPM limit refuses one. */
static void fill(struct tpm_race *r, struct rota_rng *rng)
{
    struct rota_sel_req q = {.route = 0, .est_tokens = 10, .now = r->now};
    struct rota_sel_res res;
    while (rota_select_route(r->f.m, &q, rng, &res) == 0)
        atomic_fetch_add(&r->tokens, 10);
}

static void *tpm_filler(void *arg)
{
    struct tpm_race *r = arg;
    struct rota_rng rng = {(uint64_t)(uintptr_t)&rng | 1};
    fill(r, &rng);
    pthread_barrier_wait(&r->phase);
    pthread_barrier_wait(&r->phase); /* the late report has been applied */
    fill(r, &rng);
    return NULL;
}

/* Threads fill the burst at "now" while "late" (admitted earlier, est 50) reports 1 token
 * used; returns the tokens admitted at that one instant. */
static uint64_t tpm_instant(struct tpm_race *r)
{
    pthread_t th[TPM_THREADS];
    atomic_store(&r->tokens, 0);
    pthread_barrier_init(&r->phase, NULL, TPM_THREADS + 1);
    for (int i = 0; i < TPM_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, tpm_filler, r), 0);
    pthread_barrier_wait(&r->phase);
    struct rota_outcome_in o = {.status = 200,
                                .tokens = 1,
                                .est_tokens = 50,
                                .tok_tat = r->late.tok_tat,
                                .tok_back = r->late.tok_back};
    rota_report_apply(r->f.m, 0, &o, r->now, 1);
    pthread_barrier_wait(&r->phase);
    for (int i = 0; i < TPM_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r->phase);
    return atomic_load(&r->tokens);
}

/* A TPM limit of 6000 a minute with a burst of 100 admits at most 100 tokens at one
 * instant, whatever reports arrive then. An admission whose time has drained, or whose
 * place in the TPM word other refunds have moved into the past, has nothing left to give
 * back: a report that subtracted est - actual anyway handed out 40 to 50 tokens of
 * capacity that was no longer its own. */
static void test_select_tpm_refund_never_exceeds_burst(void **state)
{
    (void)state;
    static struct tpm_race r;
    struct rota_desc_provider p = {.name = "p", .kind = "openai"};
    struct rota_desc_account a = {.id = 5, .name = "a", .tpm = 6000, .tpm_burst = 100};
    struct rota_rng rng = {7};
    for (int moved = 0; moved < 2; moved++) {
        memset(&r, 0, sizeof(r));
        r.f.mono = r.now = 1000 * S;
        assert_int_equal(fx_one(&r.f, "tpm", &p, &a), 0);
        struct rota_sel_req q = {.route = 0, .est_tokens = 50, .now = r.now};
        struct rota_sel_res first;
        if (moved) /* an earlier admission, given back in full before "late" reports */
            assert_int_equal(rota_select_route(r.f.m, &q, &rng, &first), 0);
        assert_int_equal(rota_select_route(r.f.m, &q, &rng, &r.late), 0);
        if (moved) {
            struct rota_outcome_in o = {.status = 200,
                                        .tokens = 1,
                                        .est_tokens = 50,
                                        .tok_tat = first.tok_tat,
                                        .tok_back = first.tok_back};
            rota_report_apply(r.f.m, 0, &o, r.now, 1);
        }
        /* Until the TPM word has drained to "now": nothing of "late" is left ahead. */
        r.now = rota_load(&r.f.m->hot[0].gcra_tok);
        rota_shm_heartbeat(r.f.w, r.now);
        uint64_t got = tpm_instant(&r);
        print_message("%s: %llu tokens admitted at one instant, burst 100\n",
                      moved ? "refund moved by another" : "drained admission",
                      (unsigned long long)got);
        assert_int_equal(got, 100);
        fx_close(&r.f);
    }
    /* What an admission still holds is given back: est 50, used 10, at the same instant
     * leaves room for 90 more. */
    memset(&r, 0, sizeof(r));
    r.f.mono = r.now = 1000 * S;
    assert_int_equal(fx_one(&r.f, "tpm", &p, &a), 0);
    struct rota_sel_req q = {.route = 0, .est_tokens = 50, .now = r.now};
    struct rota_sel_res res;
    assert_int_equal(rota_select_route(r.f.m, &q, &rng, &res), 0);
    struct rota_outcome_in o = {.status = 200,
                                .tokens = 10,
                                .est_tokens = 50,
                                .tok_tat = res.tok_tat,
                                .tok_back = res.tok_back};
    rota_report_apply(r.f.m, 0, &o, r.now, 1);
    fill(&r, &rng);
    assert_int_equal(atomic_load(&r.tokens), 90);
    fx_close(&r.f);
}

/* The dispatch pool's exclusions: accounts already tried are passed over (the tier's
 * others first, then the next tier), and so is a tier asked to be skipped; both say
 * ROTA_SKIP_EXCLUDED. */
static void test_select_except_tried_and_skipped_tiers(void **state)
{
    struct ctx *c = *state;
    uint64_t tried[8];
    uint32_t n = 0;
    for (int k = 0; k < 3; k++) { /* tier 0 holds accounts 0..2: each once */
        struct rota_sel_req q = {.route = 0, .est_tokens = 10, .now = c->now,
                                 .except = tried, .nexcept = n};
        struct rota_sel_res r;
        assert_int_equal(rota_select_route(c->f.m, &q, &c->rng, &r), 0);
        assert_int_equal(r.tier, 0);
        for (uint32_t j = 0; j < n; j++)
            assert_int_not_equal(c->f.m->accounts[r.account].id, tried[j]);
        tried[n++] = c->f.m->accounts[r.account].id;
        report(c, &r, 500, 0);
    }
    struct rota_sel_req q = {.route = 0, .est_tokens = 10, .now = c->now,
                             .except = tried, .nexcept = n};
    struct rota_sel_res r;
    assert_int_equal(rota_select_route(c->f.m, &q, &c->rng, &r), 0);
    assert_int_equal(r.tier, 1); /* every tier-0 account tried: the next tier */
    assert_int_equal(r.skipped[0], ROTA_SKIP_EXCLUDED);
    report(c, &r, 200, 0);
    q = (struct rota_sel_req){.route = 0, .est_tokens = 10, .now = c->now, .skip_tiers = 3};
    assert_int_equal(rota_select_route(c->f.m, &q, &c->rng, &r), 0);
    assert_int_equal(r.tier, 2); /* tiers 0 and 1 asked to be skipped */
    assert_int_equal(r.skipped[0], ROTA_SKIP_EXCLUDED);
    assert_int_equal(r.skipped[1], ROTA_SKIP_EXCLUDED);
    report(c, &r, 200, 0);
}

/* Accounts passed over for one request still say when they may be asked again: the
 * exhausted answer's retry_at is the earliest of their cooldowns, or now when one has
 * none (this request may not take it, the next may); the reason stays "excluded". */
static void test_select_except_keeps_retry_at(void **state)
{
    struct ctx *c = *state;
    uint64_t ids[8];
    for (uint32_t a = 0; a < 8; a++) {
        ids[a] = c->f.m->accounts[a].id;
        if (a < 7) {
            struct rota_sel_res r = {.account = a};
            report(c, &r, 429, 60000);
        }
    }
    struct rota_sel_req q = {
        .route = 0, .est_tokens = 10, .now = c->now, .except = ids, .nexcept = 8};
    struct rota_sel_res r;
    assert_int_equal(rota_select_route(c->f.m, &q, &c->rng, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.retry_at, c->now); /* account 7 is free but for this request */
    for (int k = 0; k < 4; k++)
        assert_int_equal(r.skipped[k], ROTA_SKIP_EXCLUDED);
    struct rota_sel_res r7 = {.account = 7};
    report(c, &r7, 429, 30000);
    uint64_t cd = rota_load((_Atomic uint64_t *)&c->f.m->hot[7].cooldown_until);
    assert_true(cd > c->now);
    assert_int_equal(rota_select_route(c->f.m, &q, &c->rng, &r), ROTA_EEXHAUSTED);
    assert_int_equal(r.retry_at, cd); /* the earliest cooldown: 30 s, not the others' 60 */
    for (int k = 0; k < 4; k++)
        assert_int_equal(r.skipped[k], ROTA_SKIP_EXCLUDED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_select_except_keeps_retry_at, setup_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_select_except_tried_and_skipped_tiers, setup_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_select_healthy_chain_uses_first_tier, setup_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_select_rj2_antigravity_over_ceiling_falls_to_copilot, setup_chain, teardown),
        cmocka_unit_test_setup_teardown(
            test_select_rj2_provider_down_opens_breaker_then_recovers, setup_chain, teardown),
        cmocka_unit_test_setup_teardown(test_select_rj2_copilot_pessimistic_falls_to_opencode,
                                        setup_chain, teardown),
        cmocka_unit_test_setup_teardown(test_select_rj2_rate_limit_during_fallback_cascades,
                                        setup_chain, teardown),
        cmocka_unit_test_setup_teardown(test_select_rj2_rapid_exhaustion_provider_breaker,
                                        setup_chain, teardown),
        cmocka_unit_test_setup_teardown(test_select_rj2_all_providers_fail_local_fallback,
                                        setup_chain, teardown),
        cmocka_unit_test_setup_teardown(test_select_auth_failure_disables_account, setup_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_select_supervisor_disable_with_expiry, setup_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_select_escalating_cooldown_without_hint,
                                        setup_chain, teardown),
        cmocka_unit_test_setup_teardown(test_select_stale_heartbeat_is_pessimistic, setup_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_select_local_counts_move_quota, setup_chain,
                                        teardown),
        cmocka_unit_test(test_select_rpm_limit_and_retry_at),
        cmocka_unit_test(test_select_empty_tier_falls_through),
        cmocka_unit_test(test_select_sticky_key_survives_and_returns),
        cmocka_unit_test(test_select_sticky_large_tier_survives_leaving),
        cmocka_unit_test(test_select_round_robin_and_fill_first),
        cmocka_unit_test(test_select_fill_first_resumes_and_returns),
        cmocka_unit_test(test_select_large_tier_samples_and_stays_fair),
        cmocka_unit_test(test_select_concurrent_selectors_take_different_lanes),
        cmocka_unit_test(test_select_shortlist_follows_quota),
        cmocka_unit_test(test_select_tpm_refund_never_exceeds_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
