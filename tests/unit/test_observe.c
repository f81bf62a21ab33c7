/* test_observe: what a parser read, folded into the table as the supervisor does: windows
 * by pool and metric, limits, resets, cooldowns, disables, pessimism, and what selection
 * then does with them. */
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"
#include "observe.h"
#include "select.h"
#include "view.h"

/* The test's clocks, fixed; the fixture stamps its tables with them too. A heartbeat from
 * the host's clock would lie anywhere from hours before NOW (a young host: the table
 * looks stale, every account pessimistic) to days after it. */
#define NOW  5000000000000ull      /* monotonic ns */
#define WALL 1764000000000000000ll /* wall-clock ns */
#define SEC  1000000000ll

static void obs_empty(struct rota_obs *o)
{
    memset(o, 0, sizeof(*o));
}

static struct rota_obs_window *win(struct rota_obs *o, const char *pool, uint8_t metric)
{
    struct rota_obs_window *w = &o->win[o->nwin++];
    memset(w, 0, sizeof(*w));
    strcpy(w->pool, pool);
    strcpy(w->what, "requests");
    w->metric = metric;
    return w;
}

static double fraction(struct fx *f, uint32_t a)
{
    double fr;
    uint32_t flags;
    assert_true(rota_account_fraction(f->m, a, 0, &fr, &flags));
    return fr;
}

static void test_observe_remaining_sets_used_limit_and_reset(void **state)
{
    (void)state;
    struct fx f = {.mono = NOW, .wall = WALL};
    assert_int_equal(fx_chain(&f, "obs1", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_obs o;
    obs_empty(&o);
    struct rota_obs_window *w = win(&o, "", ROTA_METRIC_REQUESTS);
    w->has_limit = w->has_remaining = true;
    w->limit = 200;
    w->remaining = 50;
    w->reset_at = WALL + 3600 * SEC;
    struct rota_apply_result r;
    rota_probe_apply(f.m, 0, &o, NOW, WALL, &r);
    assert_int_equal(r.windows, 1);
    assert_int_equal(r.unmatched, 0);
    assert_true(fabs(fraction(&f, 0) - 0.75) < 1e-9); /* 150 of 200 used */
    assert_int_equal(rota_load(&f.m->snaps[0].win[0].reset_at), WALL + 3600 * SEC);
    assert_int_equal(rota_load(&f.m->snaps[0].probe_at), WALL);
    /* Calls counted after the observation add to the provider's figure. */
    for (int i = 0; i < 20; i++)
        rota_add(&f.m->hot[0].use0[0], 1);
    assert_true(fabs(fraction(&f, 0) - 0.85) < 1e-9);
    /* A used figure wins over remaining; an unknown pool is counted, not applied. */
    obs_empty(&o);
    w = win(&o, "", ROTA_METRIC_REQUESTS);
    w->has_used = true;
    w->used = 10;
    win(&o, "no-such-model", ROTA_METRIC_REQUESTS)->has_used = true;
    win(&o, "", ROTA_METRIC_TOKENS)->has_used = true; /* the account counts no tokens */
    rota_probe_apply(f.m, 0, &o, NOW, WALL, &r);
    assert_int_equal(r.windows, 1);
    assert_int_equal(r.unmatched, 2);
    assert_true(fabs(fraction(&f, 0) - 0.05) < 1e-9); /* 10 of 200 */
    fx_close(&f);
}

static void test_observe_exhausted_account_falls_to_next_tier(void **state)
{
    (void)state;
    struct fx f = {.mono = NOW, .wall = WALL};
    assert_int_equal(fx_chain(&f, "obs2", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_obs o;
    for (uint32_t a = 0; a < 3; a++) { /* all of antigravity's accounts: 95 % used */
        obs_empty(&o);
        struct rota_obs_window *w = win(&o, "", ROTA_METRIC_REQUESTS);
        w->has_remaining = true;
        w->remaining = 5;
        struct rota_apply_result r;
        rota_probe_apply(f.m, a, &o, NOW, WALL, &r);
        assert_int_equal(r.windows, 1);
    }
    struct rota_sel_req q = {.route = 0, .now = NOW};
    struct rota_rng rng = {7};
    struct rota_sel_res res;
    assert_int_equal(rota_select_route(f.m, &q, &rng, &res), 0);
    assert_int_equal(res.tier, 1);
    assert_true(res.skipped[0] & ROTA_SKIP_CEILING);
    fx_close(&f);
}

static void test_observe_retry_hint_cools_down(void **state)
{
    (void)state;
    struct fx f = {.mono = NOW, .wall = WALL};
    assert_int_equal(fx_chain(&f, "obs3", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_obs o;
    obs_empty(&o);
    o.retry_at = WALL + 30 * SEC;
    o.cause = ROTA_CAUSE_RATE;
    struct rota_apply_result r;
    rota_probe_apply(f.m, 1, &o, NOW, WALL, &r);
    assert_true(r.cooled);
    assert_int_equal(rota_load(&f.m->hot[1].cooldown_until), NOW + 30 * SEC);
    /* A hint in the past cools nothing; a shorter one never shortens a cooldown. */
    o.retry_at = WALL - SEC;
    rota_probe_apply(f.m, 2, &o, NOW, WALL, &r);
    assert_false(r.cooled);
    o.retry_at = WALL + SEC;
    rota_probe_apply(f.m, 1, &o, NOW, WALL, &r);
    assert_int_equal(rota_load(&f.m->hot[1].cooldown_until), NOW + 30 * SEC);
    fx_close(&f);
}

static void test_observe_disable_and_recover(void **state)
{
    (void)state;
    struct fx f = {.mono = NOW, .wall = WALL};
    assert_int_equal(fx_chain(&f, "obs4", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_obs o;
    obs_empty(&o);
    o.disable = true;
    o.cause = ROTA_CAUSE_BILLING;
    o.disable_until = WALL + 3600 * SEC;
    struct rota_apply_result r;
    rota_probe_apply(f.m, 0, &o, NOW, WALL, &r);
    assert_true(r.disabled);
    struct rota_view_account v;
    assert_int_equal(rota_view_account(f.m, 0, NOW, WALL, &v), 0);
    assert_int_equal(v.off, ROTA_OFF_BILLING);
    assert_int_equal(rota_load(&f.m->snaps[0].disabled_until), NOW + 3600 * SEC);
    /* A later answer that proves the key works ends the provider's disable. */
    obs_empty(&o);
    o.reachable = true;
    rota_probe_apply(f.m, 0, &o, NOW + SEC, WALL + SEC, &r);
    assert_int_equal(rota_view_account(f.m, 0, NOW + SEC, WALL + SEC, &v), 0);
    assert_int_equal(v.off, ROTA_OFF_NONE);
    /* An operator's disable is never lifted or replaced by an observation. */
    struct rota_shm_snap *sn = rota_shm_snap_begin(f.m, 1);
    rota_store(&sn->flags, rota_load(&sn->flags) | ROTA_SNAP_DISABLED);
    rota_store(&sn->reason, ROTA_OFF_OPERATOR);
    rota_shm_snap_end(sn);
    obs_empty(&o);
    o.disable = true;
    o.cause = ROTA_CAUSE_AUTH;
    rota_probe_apply(f.m, 1, &o, NOW, WALL, &r);
    o.disable = false;
    o.reachable = true;
    rota_probe_apply(f.m, 1, &o, NOW, WALL, &r);
    assert_int_equal(rota_view_account(f.m, 1, NOW, WALL, &v), 0);
    assert_int_equal(v.off, ROTA_OFF_OPERATOR);
    fx_close(&f);
}

static void test_observe_pessimistic_until_next_observation(void **state)
{
    (void)state;
    struct fx f = {.mono = NOW, .wall = WALL};
    assert_int_equal(fx_chain(&f, "obs5", ROTA_STRAT_HYBRID, 100), 0);
    rota_probe_pessimistic(f.m, 0, 7);
    uint32_t flags = rota_load(&f.m->snaps[0].flags);
    assert_true(flags & ROTA_SNAP_PESSIMISTIC);
    assert_int_equal(rota_load(&f.m->snaps[0].reason), 7);
    struct rota_view_account v;
    assert_int_equal(rota_view_account(f.m, 0, NOW, WALL, &v), 0);
    assert_true(v.pessimistic);
    struct rota_obs o;
    obs_empty(&o);
    struct rota_obs_window *w = win(&o, "", ROTA_METRIC_REQUESTS);
    w->has_used = true;
    w->used = 1;
    struct rota_apply_result r;
    rota_probe_apply(f.m, 0, &o, NOW, WALL, &r);
    flags = rota_load(&f.m->snaps[0].flags);
    assert_false(flags & ROTA_SNAP_PESSIMISTIC);
    assert_int_equal(rota_load(&f.m->snaps[0].reason), 0);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observe_remaining_sets_used_limit_and_reset),
        cmocka_unit_test(test_observe_exhausted_account_falls_to_next_tier),
        cmocka_unit_test(test_observe_retry_hint_cools_down),
        cmocka_unit_test(test_observe_disable_and_recover),
        cmocka_unit_test(test_observe_pessimistic_until_next_observation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
