/* test_view: what an operator sees of a real table, after real selections and reports put
 * its accounts into each state (quota, cooldown, breaker, disable, in flight, stale). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "breaker.h"
#include "clock.h"
#include "fixture.h"
#include "select.h"
#include "view.h"
#include "view_json.h"

#define MS ROTA_NS_PER_MS
#define S  ROTA_NS_PER_S

struct ctx {
    struct fx f;
    struct rota_rng rng;
    uint64_t now; /* the injected clock */
    int64_t wall;
};

static struct ctx the_ctx;

static int setup_chain(void **state)
{
    struct ctx *c = &the_ctx;
    memset(c, 0, sizeof(*c));
    if (fx_chain(&c->f, "view", ROTA_STRAT_HYBRID, 100))
        return -1;
    c->rng.s = 7;
    c->now = rota_clock_mono();
    c->wall = rota_clock_wall();
    rota_shm_heartbeat(c->f.w, c->now);
    *state = c;
    return 0;
}

/* One account, one provider with the defaults (5 failures open the breaker for 30 s). */
static int setup_single(void **state)
{
    struct ctx *c = &the_ctx;
    memset(c, 0, sizeof(*c));
    struct fx_pool_opts o = {.n = 1, .strategy = ROTA_STRAT_GREEDY, .limit = 1000};
    if (fx_pool_with(&c->f, "view1", &o))
        return -1;
    c->rng.s = 7;
    c->now = rota_clock_mono();
    c->wall = rota_clock_wall();
    rota_shm_heartbeat(c->f.w, c->now);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    fx_close(&c->f);
    return 0;
}

/* Select on route 0 through the real chain walk; returns the account chosen. */
static uint32_t sel(struct ctx *c, struct rota_sel_res *r)
{
    struct rota_sel_req q = {.route = 0, .est_tokens = 10, .now = c->now};
    assert_int_equal(rota_select_route(c->f.m, &q, &c->rng, r), 0);
    return r->account;
}

static void report(struct ctx *c, const struct rota_sel_res *r, int status, uint64_t retry_ms)
{
    struct rota_outcome_in o = {.status = status,
                                .pool = r->pool,
                                .trial = r->trial,
                                .est_tokens = 10,
                                .tokens = 10,
                                .latency_ns = 200 * MS,
                                .retry_after_ms = retry_ms};
    rota_report_apply(c->f.m, r->account, &o, c->now, 12345);
}

static struct rota_view_account view(struct ctx *c, uint32_t a)
{
    struct rota_view_account v;
    assert_int_equal(rota_view_account(c->f.m, a, c->now, c->wall, &v), 0);
    return v;
}

static struct rota_view_instance inst(struct ctx *c)
{
    struct rota_view_instance vi;
    rota_view_instance(c->f.m, c->now, c->wall, &vi);
    return vi;
}

static void test_view_fresh_table_names_and_quota(void **state)
{
    struct ctx *c = *state;
    struct rota_view_account v = view(c, 3);
    assert_string_equal(v.name, "cp-a");
    assert_string_equal(v.provider, "copilot");
    assert_int_equal(v.id, 13);
    assert_int_equal(v.status, ROTA_STATUS_HEALTHY);
    assert_int_equal(v.nwin, 1);
    assert_string_equal(v.win[0].pool, "*");
    assert_int_equal(v.win[0].metric, ROTA_METRIC_REQUESTS);
    assert_int_equal(v.win[0].used, 0);
    assert_int_equal(v.win[0].limit, 100);
    assert_true(v.win[0].fraction == 0.0);
    assert_int_equal(v.off, ROTA_OFF_NONE);
    assert_int_equal(v.breaker, ROTA_BREAKER_CLOSED);
    assert_false(v.provider_breaker_open);
    assert_int_equal(v.cooldown_left_ns, 0);
    assert_int_equal(v.in_flight, 0);
    assert_true(v.last_used_ago_ns == UINT64_MAX);
    assert_false(v.stale);
    assert_false(v.pessimistic);
    /* The local model has no quota window: nothing known about it. */
    v = view(c, 7);
    assert_int_equal(v.nwin, 0);
    assert_int_equal(v.status, ROTA_STATUS_UNKNOWN);
    assert_true(v.fraction < 0);
}

static void test_view_quota_status_follows_used_fraction(void **state)
{
    struct ctx *c = *state;
    fx_used(&c->f, 0, 50);
    fx_used(&c->f, 1, 85);
    fx_used(&c->f, 2, 100);
    fx_used(&c->f, 3, 75);
    assert_int_equal(view(c, 0).status, ROTA_STATUS_HEALTHY);
    assert_int_equal(view(c, 1).status, ROTA_STATUS_CRITICAL);
    assert_int_equal(view(c, 2).status, ROTA_STATUS_EXHAUSTED);
    assert_int_equal(view(c, 3).status, ROTA_STATUS_WARNING);
    struct rota_view_account v = view(c, 1);
    assert_int_equal(v.win[0].used, 85);
    assert_true(v.win[0].fraction > 0.849 && v.win[0].fraction < 0.851);
    assert_true(v.fraction == v.win[0].fraction);
    /* Selections count locally on top of the observation, as the selection sees it. */
    struct rota_sel_res r;
    uint32_t a = sel(c, &r);
    assert_int_equal(a, 0); /* the only tier-0 account under the 0.80 ceiling */
    v = view(c, 0);
    assert_int_equal(v.win[0].used, 51);
    double f;
    assert_true(rota_account_fraction(c->f.m, 0, 0, &f, NULL));
    assert_true(f == v.fraction);
    struct rota_view_instance vi = inst(c);
    assert_int_equal(vi.healthy, 4); /* accounts 0, 4, 5, 6 */
    assert_int_equal(vi.warning, 1);
    assert_int_equal(vi.critical, 1);
    assert_int_equal(vi.exhausted, 1);
    assert_int_equal(vi.unknown, 1); /* the local model */
}

static void test_view_reset_times_come_from_the_snapshot(void **state)
{
    struct ctx *c = *state;
    int64_t at = c->wall + 3600 * (int64_t)S;
    struct rota_shm_snap *s = rota_shm_snap_begin(c->f.m, 4);
    rota_store(&s->win[0].reset_at, at);
    rota_store(&s->probe_at, c->wall);
    rota_shm_snap_end(s);
    struct rota_view_account v = view(c, 4);
    assert_true(v.win[0].reset_at == at);
    assert_true(v.probe_at == c->wall);
    assert_true(view(c, 3).win[0].reset_at == 0);
}

static void test_view_in_flight_until_reported(void **state)
{
    struct ctx *c = *state;
    struct rota_sel_res r;
    uint32_t a = sel(c, &r);
    struct rota_view_account v = view(c, a);
    assert_int_equal(v.in_flight, 1);
    assert_int_equal(v.selections, 1);
    assert_int_equal(v.done, 0);
    assert_int_equal(v.last_used_ago_ns, 0);
    assert_int_equal(v.win[0].used, 1);
    assert_int_equal(inst(c).in_flight, 1);
    c->now += 3 * S;
    assert_int_equal(view(c, a).last_used_ago_ns, 3 * S);
    report(c, &r, 200, 0);
    v = view(c, a);
    assert_int_equal(v.in_flight, 0);
    assert_int_equal(v.done, 1);
    assert_int_equal(v.tokens, 10);
    assert_int_equal(v.latency_ns, 200 * MS);
    assert_int_equal(inst(c).in_flight, 0);
}

static void test_view_cooldown_after_429(void **state)
{
    struct ctx *c = *state;
    struct rota_sel_res r;
    uint32_t a = sel(c, &r);
    report(c, &r, 429, 5000);
    struct rota_view_account v = view(c, a);
    assert_int_equal(v.cooldown_left_ns, 5 * S);
    assert_int_equal(v.rate_limited, 1);
    assert_int_equal(v.off, ROTA_OFF_NONE);
    assert_int_equal(inst(c).cooling, 1);
    c->now += 2 * S;
    assert_int_equal(view(c, a).cooldown_left_ns, 3 * S);
    c->now += 3 * S;
    assert_int_equal(view(c, a).cooldown_left_ns, 0);
    assert_int_equal(inst(c).cooling, 0);
}

static void test_view_breaker_open_after_failures(void **state)
{
    struct ctx *c = *state;
    for (int i = 0; i < 5; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        report(c, &r, 503, 0);
    }
    struct rota_view_account v = view(c, 0);
    assert_int_equal(v.breaker, ROTA_BREAKER_OPEN);
    assert_int_equal(v.breaker_trips, 1);
    /* 30 s, +-10 % jitter */
    assert_true(v.breaker_left_ns >= 27 * S && v.breaker_left_ns <= 33 * S);
    assert_true(v.provider_breaker_open);
    assert_int_equal(v.failures, 5);
    assert_int_equal(inst(c).open, 1);
    c->now += 34 * S;
    v = view(c, 0);
    assert_int_equal(v.breaker_left_ns, 0);
    assert_false(v.provider_breaker_open); /* its period is over: a trial may go */
}

static void test_view_provider_breaker_marks_its_accounts(void **state)
{
    struct ctx *c = *state;
    /* Three failures in a row in tier 0 (antigravity) open the provider's breaker. */
    for (int i = 0; i < 3; i++) {
        struct rota_sel_res r;
        assert_true(sel(c, &r) <= 2);
        report(c, &r, 500, 0);
    }
    for (uint32_t a = 0; a < 3; a++)
        assert_true(view(c, a).provider_breaker_open);
    assert_false(view(c, 3).provider_breaker_open);
    assert_int_equal(inst(c).open, 3);
}

static void test_view_auth_and_billing_disable(void **state)
{
    struct ctx *c = *state;
    struct rota_sel_res r;
    uint32_t a = sel(c, &r);
    report(c, &r, 401, 0);
    uint32_t b = sel(c, &r);
    assert_int_not_equal(a, b); /* the disabled one is out of rotation */
    report(c, &r, 402, 0);
    struct rota_view_account v = view(c, a);
    assert_int_equal(v.off, ROTA_OFF_AUTH);
    assert_int_equal(v.off_left_ns, 0); /* until enabled: the fixture has no period */
    assert_int_equal(v.auth_failures, 1);
    assert_string_equal(rota_off_name(v.off), "auth");
    v = view(c, b);
    assert_int_equal(v.off, ROTA_OFF_BILLING);
    assert_string_equal(rota_off_name(v.off), "billing");
    assert_int_equal(inst(c).off, 2);
}

/* Disable account "a" as the supervisor does: snapshot flag, reason, period. */
static void sup_disable(struct ctx *c, uint32_t a, enum rota_off why, uint64_t until)
{
    struct rota_shm_snap *s = rota_shm_snap_begin(c->f.m, a);
    rota_store(&s->flags, rota_load(&s->flags) | ROTA_SNAP_DISABLED);
    rota_store(&s->reason, (uint32_t)why);
    rota_store(&s->disabled_until, until);
    rota_shm_snap_end(s);
}

static void test_view_operator_disable_and_drain(void **state)
{
    struct ctx *c = *state;
    sup_disable(c, 1, ROTA_OFF_OPERATOR, c->now + 60 * S);
    sup_disable(c, 2, ROTA_OFF_DRAIN, 0);
    struct rota_view_account v = view(c, 1);
    assert_int_equal(v.off, ROTA_OFF_OPERATOR);
    assert_int_equal(v.off_left_ns, 60 * S);
    assert_string_equal(rota_off_name(v.off), "operator");
    v = view(c, 2);
    assert_int_equal(v.off, ROTA_OFF_DRAIN);
    assert_int_equal(v.off_left_ns, 0);
    /* The selection agrees: only account 0 is left in tier 0. */
    for (int i = 0; i < 20; i++) {
        struct rota_sel_res r;
        assert_int_equal(sel(c, &r), 0);
        report(c, &r, 200, 0);
    }
    /* A timed disable ends on its own. */
    c->now += 61 * S;
    assert_int_equal(view(c, 1).off, ROTA_OFF_NONE);
    assert_int_equal(view(c, 2).off, ROTA_OFF_DRAIN);
}

static void test_view_stale_heartbeat_is_pessimistic(void **state)
{
    struct ctx *c = *state;
    c->now += 31 * S; /* the fixture's stale_after is the default 30 s */
    struct rota_view_account v = view(c, 0);
    assert_true(v.stale);
    assert_true(v.pessimistic);
    assert_false(view(c, 7).pessimistic); /* no quota data to be pessimistic about */
    struct rota_view_instance vi = inst(c);
    assert_true(vi.stale);
    assert_true(vi.heartbeat_age_ns >= 31 * S);
}

static void test_view_busy_snapshot_is_reported(void **state)
{
    struct ctx *c = *state;
    struct rota_view_account v;
    struct rota_shm_snap *s = rota_shm_snap_begin(c->f.m, 0);
    assert_int_equal(rota_view_account(c->f.m, 0, c->now, c->wall, &v), -EBUSY);
    rota_shm_snap_end(s);
    assert_int_equal(rota_view_account(c->f.m, 0, c->now, c->wall, &v), 0);
}

static void test_view_instance_summary(void **state)
{
    struct ctx *c = *state;
    for (int i = 0; i < 30; i++) {
        struct rota_sel_res r;
        sel(c, &r);
        report(c, &r, 200, 0);
    }
    struct rota_view_instance vi = inst(c);
    assert_string_equal(vi.instance, c->f.instance);
    assert_int_equal(vi.generation, c->f.m->hdr->generation);
    assert_int_equal(vi.sup_pid, getpid());
    assert_true(vi.sup_alive);
    assert_false(vi.stale);
    assert_int_equal(vi.nproviders, 4);
    assert_int_equal(vi.naccounts, 8);
    assert_int_equal(vi.nroutes, 1);
    assert_int_equal(vi.selections, 30);
    assert_int_equal(vi.table_bytes, c->f.m->hdr->total_size);
    assert_int_equal(vi.healthy + vi.warning + vi.critical + vi.exhausted + vi.unknown +
                         vi.off + vi.cooling + vi.open,
                     vi.naccounts);
    /* Only tier 0's three accounts were chosen: far from even over eight. */
    assert_true(vi.gini > 0.5);
}

static void test_view_never_exposes_the_credential(void **state)
{
    struct ctx *c = *state;
    const struct rota_shm_map *m = c->f.m;
    const char *lo = m->creds, *hi = m->creds + m->hdr->sec[ROTA_SEC_CREDS].size;
    for (uint32_t a = 0; a < m->naccounts; a++) {
        struct rota_view_account v = view(c, a);
        const char *strs[3 + ROTA_MAX_WINDOWS] = {v.name, v.provider, v.kind};
        for (uint32_t w = 0; w < v.nwin; w++)
            strs[3 + w] = v.win[w].pool;
        for (uint32_t k = 0; k < 3 + v.nwin; k++) {
            assert_non_null(strs[k]);
            assert_false(strs[k] >= lo && strs[k] < hi);
            assert_null(strstr(strs[k], "sk-test-secret"));
        }
        assert_null(memmem(&v, sizeof(v), "sk-test", 7));
    }
    struct rota_view_instance vi = inst(c);
    assert_null(strstr(vi.instance, "sk-test"));
}

static void test_view_off_names(void **state)
{
    assert_string_equal(rota_off_name(ROTA_OFF_NONE), "");
    assert_string_equal(rota_off_name(ROTA_OFF_AUTH), "auth");
    assert_string_equal(rota_off_name(ROTA_OFF_BILLING), "billing");
    assert_string_equal(rota_off_name(ROTA_OFF_OPERATOR), "operator");
    assert_string_equal(rota_off_name(ROTA_OFF_DRAIN), "drain");
    assert_string_equal(rota_off_name(ROTA_OFF_CREDENTIAL), "credential");
    assert_string_equal(rota_off_name(99), "?");
}

/* A name that is not UTF-8 stays in the JSON view, its stray bytes as \xNN, its valid
 * characters as they are; a UTF-8 name is unchanged. */
static void test_view_json_keeps_names_that_are_not_utf8(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},               /* é */
        {"\xe6\x97\xa5", "\xe6\x97\xa5"},             /* 日 */
        {"a\x9bz", "a\\x9bz"},                        /* a lone continuation byte */
        {"\xc0\xaf", "\\xc0\\xaf"},                   /* an overlong '/' */
        {"\xed\xa0\x80", "\\xed\\xa0\\x80"},          /* a surrogate */
        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"}, /* past U+10FFFF */
        {"ab\xe6\x97", "ab\\xe6\\x97"},               /* cut short at the end */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = rota_json_text(cases[i].in);
        assert_non_null(v);
        assert_string_equal(json_string_value(v), cases[i].out);
        json_decref(v);
    }
    struct rota_view_account a = {.name = "k\xff", .provider = "p", .kind = "openai"};
    json_t *o = rota_view_account_json(&a);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "k\\xff");
    json_decref(o);
}

int main(void)
{
#define T(f)  cmocka_unit_test_setup_teardown(f, setup_chain, teardown)
#define T1(f) cmocka_unit_test_setup_teardown(f, setup_single, teardown)
    const struct CMUnitTest tests[] = {
        T(test_view_fresh_table_names_and_quota),
        T(test_view_quota_status_follows_used_fraction),
        T(test_view_reset_times_come_from_the_snapshot),
        T(test_view_in_flight_until_reported),
        T(test_view_cooldown_after_429),
        T1(test_view_breaker_open_after_failures),
        T(test_view_provider_breaker_marks_its_accounts),
        T(test_view_auth_and_billing_disable),
        T(test_view_operator_disable_and_drain),
        T(test_view_stale_heartbeat_is_pessimistic),
        T(test_view_busy_snapshot_is_reported),
        T(test_view_instance_summary),
        T(test_view_never_exposes_the_credential),
        cmocka_unit_test(test_view_off_names),
        cmocka_unit_test(test_view_json_keeps_names_that_are_not_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
