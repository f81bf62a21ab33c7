/* test_journal: capture and restore of an account's durable state on real tables (jstate),
 * the journal thread writing a file that recovery restores, recovery taking the file's
 * last record, and the thread keeping the file within its bound. Real files in a
 * temporary directory, real shared memory; nothing mocked. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "breaker.h"
#include "journal_util.h"
#include "select.h"
#include "supervise.h"
#include "view.h"

#define WAIT_NS (5 * S) /* how long a condition may take to hold, at most: far beyond need */
#define NACC    5       /* accounts of the state tests' table */

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void assert_near(int64_t got, int64_t want, int64_t tolerance)
{
    int64_t d = got > want ? got - want : want - got;
    if (d > tolerance)
        fail_msg("%" PRId64 " is %" PRId64 " away from %" PRId64 " (tolerance %" PRId64 ")",
                 got, d, want, tolerance);
}

/* ---- capture and restore on real tables ---- */

static const struct rota_breaker_cfg BCFG = {3, 2, 4000, 60000, 0};

/* The state tests' table: provider "prov" and NACC accounts (ids 500 + i):
 *   a0  requests/day 1000, tokens/day 100000 (pool 0)
 *   a1  requests/day 500 (pool 0), tokens/day 50000 (pool 1 "big")
 *   a2  requests/day with a limit learnt from observations
 *   a3  no windows
 *   a4  credits/day 1000 (observed only)
 * With "changed", a0's second window counts requests, a1's tokens window is pool 0 and a3
 * has a requests/day window of 100: the config changed under the saved state. */
static int publish(struct fx *f, const char *tag, bool changed)
{
    static const char *const names[NACC] = {"a0", "a1", "a2", "a3", "a4"};
    static const uint32_t members[NACC] = {0, 1, 2, 3, 4};
    struct rota_desc_provider p = {.name = "prov",
                                   .kind = "openai",
                                   .fail_threshold = BCFG.fail_threshold,
                                   .halfopen_permits = BCFG.permits,
                                   .open_base_ms = BCFG.base_ms,
                                   .open_cap_ms = BCFG.cap_ms,
                                   .cooldown_base_ms = 1000};
    struct rota_desc_account a[NACC];
    memset(a, 0, sizeof(a));
    for (uint32_t i = 0; i < NACC; i++)
        a[i] = (struct rota_desc_account){
            .id = 500 + i, .name = names[i], .credential = "sk-test-secret"};
    struct rota_shm_reset day = {.kind = ROTA_RESET_DAY};
    a[0].nwin = 2;
    a[0].win[0] = (struct rota_desc_window){ROTA_METRIC_REQUESTS, 0, 1000, day, NULL};
    a[0].win[1] = (struct rota_desc_window){changed ? ROTA_METRIC_REQUESTS : ROTA_METRIC_TOKENS,
                                            0, 100000, day, NULL};
    a[1].pools[1] = "big";
    a[1].nwin = 2;
    a[1].win[0] = (struct rota_desc_window){ROTA_METRIC_REQUESTS, 0, 500, day, NULL};
    a[1].win[1] =
        (struct rota_desc_window){ROTA_METRIC_TOKENS, changed ? 0 : 1, 50000, day, NULL};
    a[2].nwin = 1;
    a[2].win[0] = (struct rota_desc_window){ROTA_METRIC_REQUESTS, 0, 0, day, NULL};
    if (changed) {
        a[3].nwin = 1;
        a[3].win[0] = (struct rota_desc_window){ROTA_METRIC_REQUESTS, 0, 100, day, NULL};
    }
    a[4].nwin = 1;
    a[4].win[0] = (struct rota_desc_window){ROTA_METRIC_CREDITS, 0, 1000, day, NULL};
    struct rota_desc_tier t = {
        .strategy = ROTA_STRAT_HYBRID, .provider = 0, .nmembers = NACC, .members = members};
    struct rota_desc_route r = {.name = "r", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = NACC,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = a,
                          .routes = &r};
    return fx_publish(f, tag, &d);
}

/* "n" calls on account "a" through "pool", "tokens" each, "done" of them reported: the
 * counters a worker moves. */
static void calls(struct fx *f, uint32_t a, uint32_t pool, uint64_t n, uint64_t tokens,
                  uint64_t done)
{
    struct rota_shm_hot *h = &f->m->hot[a];
    rota_add(&h->use0[0], n);
    rota_add(&h->use0[1], n * tokens);
    if (pool) {
        rota_add(rota_shm_usage(h, pool, 0), n);
        rota_add(rota_shm_usage(h, pool, 1), n * tokens);
    }
    rota_add(&h->done, done);
}

/* An observation of window "w" as the supervisor writes it: "used" at the counter's
 * current value. */
static void observe(struct fx *f, uint32_t a, uint32_t w, uint64_t used, uint64_t limit,
                    int64_t reset_at, int64_t probe_at)
{
    const struct rota_shm_window *win = &f->m->accounts[a].win[w];
    uint64_t counter = rota_load(
        rota_shm_usage(&f->m->hot[a], win->pool, win->metric == ROTA_METRIC_TOKENS ? 1 : 0));
    struct rota_shm_snap *s = rota_shm_snap_begin(f->m, a);
    rota_shm_snap_window(s, w, used, limit, counter);
    rota_store(&s->win[w].reset_at, reset_at);
    rota_store(&s->probe_at, probe_at);
    rota_store(&s->flags, rota_load(&s->flags) | ROTA_SNAP_HAS_DATA);
    rota_shm_snap_end(s);
}

static void set_flags(struct fx *f, uint32_t a, uint32_t flags)
{
    struct rota_shm_snap *s = rota_shm_snap_begin(f->m, a);
    rota_store(&s->flags, flags);
    rota_shm_snap_end(s);
}

static struct rota_jaccount capture(struct fx *f, uint32_t a, int64_t offset)
{
    struct rota_jaccount s;
    assert_int_equal(rota_jstate_capture(f->m, a, offset, &s), 0);
    return s;
}

/* Through the codec, as the journal stores it. */
static struct rota_jaccount through_codec(const struct rota_jaccount *a)
{
    struct rota_jrec r, back;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_ACCOUNT;
    r.at = rota_clock_wall();
    r.u.acc = *a;
    uint8_t buf[ROTA_JREC_MAX];
    char err[200];
    size_t len = ju_enc(&r, buf);
    if (ju_dec(buf, len, &back, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    ju_assert_account_eq(a, &back.u.acc);
    return back.u.acc;
}

static uint32_t find(struct fx *f, uint64_t id)
{
    uint32_t a = rota_shm_find(f->m, ROTA_IDX_ACCOUNT, id);
    assert_int_not_equal(a, ROTA_NONE);
    return a;
}

/* Capture every account of "from" (and its provider) through the codec and apply it to
 * the account of the same id in "to", with a separately read clock offset as a restart
 * would. */
static void save_and_restore(struct fx *from, struct fx *to)
{
    int64_t off1 = rota_jclock_offset();
    struct rota_jaccount saved[NACC];
    for (uint32_t a = 0; a < NACC; a++) {
        struct rota_jaccount s = capture(from, a, off1);
        saved[a] = through_codec(&s);
    }
    struct rota_jprovider pv;
    rota_jstate_capture_provider(from->m, 0, off1, &pv);
    assert_string_equal(pv.name, "prov");
    struct rota_jrec r = {.type = ROTA_JREC_PROVIDER, .at = 1}, back;
    r.u.prov = pv;
    uint8_t buf[ROTA_JREC_MAX];
    char err[200];
    assert_int_equal(ju_dec(buf, ju_enc(&r, buf), &back, err, sizeof(err)), 0);
    assert_true(rota_jstate_provider_same(&pv, &back.u.prov));

    int64_t off2 = rota_jclock_offset();
    for (uint32_t a = 0; a < NACC; a++)
        rota_jstate_apply(to->m, find(to, saved[a].id), &saved[a], off2);
    rota_jstate_apply_provider(to->m, 0, &back.u.prov, off2);
}

static double fraction(struct fx *f, uint32_t a, uint32_t pool)
{
    double x;
    assert_true(rota_account_fraction(f->m, a, pool, &x, NULL));
    return x;
}

static void test_journal_state_survives_capture_and_apply(void **state)
{
    struct ju_ctx *c = *state;
    assert_int_equal(publish(&c->f, "js", false), 0);
    struct fx *f = &c->f;
    uint64_t now = rota_clock_mono();
    int64_t wall = rota_clock_wall();
    uint64_t now_ms = now / MS;

    /* a0: calls, an observation between them, failures, a cooldown, a breaker opened
     * twice; 10 calls still in flight */
    calls(f, 0, 0, 60, 50, 60);
    observe(f, 0, 0, 40, 1000, wall + DAY_NS, wall - 5 * (int64_t)S);
    calls(f, 0, 0, 40, 50, 30);
    rota_add(&f->m->hot[0].failures, 3);
    rota_add(&f->m->hot[0].rate_limited, 2);
    rota_add(&f->m->hot[0].auth_failures, 1);
    rota_max_u64(&f->m->hot[0].cooldown_until, now + 30 * S);
    rota_store(&f->m->hot[0].consec_429, 2);
    rota_breaker_force_open(&f->m->hot[0].breaker, &BCFG, now, 12345);
    rota_breaker_force_open(&f->m->hot[0].breaker, &BCFG, now, 67890);
    rota_store(&f->m->hot[0].consec_fail, 3);
    /* a1: tokens in pool 1; disabled by the operator for a minute, and by a worker after a
     * billing error for two */
    calls(f, 1, 1, 20, 350, 20);
    rota_sup_disable(f->m, 1, ROTA_OFF_OPERATOR, now + 60 * S);
    rota_store(&f->m->hot[1].disabled, rota_disable_word(ROTA_OFF_BILLING, now_ms + 120000));
    /* a2: a learnt limit, a worker's auth disable until enabled, a half-open breaker */
    observe(f, 2, 0, 1500, 2000, wall + DAY_NS, wall);
    calls(f, 2, 0, 9, 0, 9);
    rota_store(&f->m->hot[2].disabled, rota_disable_word(ROTA_OFF_AUTH, 0));
    rota_store(&f->m->hot[2].breaker,
               rota_breaker_word(ROTA_BREAKER_HALF_OPEN, 3, 1, 0, 1, (now_ms + 5000) * MS));
    /* a3: every deadline already passed */
    rota_store(&f->m->hot[3].cooldown_until, now - MS);
    rota_store(&f->m->hot[3].consec_429, 1);
    rota_sup_disable(f->m, 3, ROTA_OFF_OPERATOR, now - MS);
    rota_store(&f->m->hot[3].disabled, rota_disable_word(ROTA_OFF_AUTH, now_ms - 1));
    /* when a0 was last used */
    rota_store(&f->m->hot[0].last_used, now - 2 * S);
    /* the provider's breaker */
    rota_breaker_force_open(&f->m->phot[0].breaker, &BCFG, now, 555);
    rota_store(&f->m->phot[0].consec_fail, 5);

    assert_int_equal(publish(&c->g, "jsr", false), 0);
    struct fx *g = &c->g;
    save_and_restore(f, g);

    /* windows: the same use of the same limits, the same reset times */
    for (uint32_t a = 0; a < NACC; a++)
        for (uint32_t pool = 0; pool < 2; pool++) {
            double want = fraction(f, a, pool), have = fraction(g, a, pool);
            if (have < want - 1e-12 || have > want + 1e-12)
                fail_msg("account %u pool %u: used %g restored as %g", a, pool, want, have);
        }
    assert_true(fraction(g, 0, 0) > 0.079 && fraction(g, 0, 0) < 0.081); /* 80 / 1000 */
    assert_true(fraction(g, 1, 1) > 0.139 && fraction(g, 1, 1) < 0.141); /* 7000 / 50000 */
    assert_true(fraction(g, 2, 0) > 0.754 && fraction(g, 2, 0) < 0.756); /* 1509 / 2000 */
    assert_int_equal(rota_load(&g->m->snaps[2].win[0].limit), 2000);
    assert_true(rota_load(&g->m->snaps[2].flags) & ROTA_SNAP_HAS_DATA);
    assert_int_equal(rota_load(&g->m->snaps[0].win[0].reset_at), wall + DAY_NS);
    assert_int_equal(rota_load(&g->m->snaps[0].probe_at), wall - 5 * (int64_t)S);
    int64_t off = rota_jclock_offset();
    for (uint32_t a = 0; a < NACC; a++) {
        struct rota_jaccount x = capture(f, a, off), y = capture(g, a, off);
        assert_int_equal(x.nwin, y.nwin);
        for (uint32_t w = 0; w < x.nwin; w++) {
            assert_int_equal(x.win[w].used, y.win[w].used);
            assert_int_equal(x.win[w].limit, y.win[w].limit);
            assert_int_equal(x.win[w].reset_at, y.win[w].reset_at);
        }
    }

    /* counters, with nothing in flight */
    struct rota_shm_hot *h = &g->m->hot[0];
    assert_int_equal(rota_load(&h->use0[0]), 100);
    assert_int_equal(rota_load(&h->done), 100);
    assert_int_equal(rota_in_flight(g->m, 0), 0);
    assert_int_equal(rota_load(&h->use0[1]), 5000);
    assert_int_equal(rota_load(&h->failures), 3);
    assert_int_equal(rota_load(&h->rate_limited), 2);
    assert_int_equal(rota_load(&h->auth_failures), 1);

    assert_near((int64_t)rota_load(&h->last_used), (int64_t)(now - 2 * S), (int64_t)(50 * MS));
    assert_int_equal(rota_load(&g->m->hot[4].last_used), 0);

    /* the cooldown: still ahead, about as far */
    assert_near((int64_t)rota_load(&h->cooldown_until),
                (int64_t)rota_load(&f->m->hot[0].cooldown_until), (int64_t)(50 * MS));
    assert_true(rota_load(&h->cooldown_until) > rota_clock_mono() + 20 * S);
    assert_int_equal(rota_load(&h->consec_429), 2);

    /* the breaker: open, as often tripped, until about the same time */
    uint64_t fw = rota_load(&f->m->hot[0].breaker), gw = rota_load(&h->breaker);
    assert_int_equal(rota_breaker_state_of(gw), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_trips(gw), 2);
    assert_int_equal(rota_breaker_trips(fw), 2);
    assert_near((int64_t)rota_breaker_until_ms(gw), (int64_t)rota_breaker_until_ms(fw), 50);
    assert_int_equal(rota_load(&h->consec_fail), 3);
    /* a half-open one comes back open until its time, its trial to start over */
    gw = rota_load(&g->m->hot[2].breaker);
    assert_int_equal(rota_breaker_state_of(gw), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_trips(gw), 3);
    assert_near((int64_t)rota_breaker_until_ms(gw), (int64_t)(now_ms + 5000), 50);
    /* the provider's */
    gw = rota_load(&g->m->phot[0].breaker);
    fw = rota_load(&f->m->phot[0].breaker);
    assert_int_equal(rota_breaker_state_of(gw), ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_trips(gw), 1);
    assert_near((int64_t)rota_breaker_until_ms(gw), (int64_t)rota_breaker_until_ms(fw), 50);
    assert_int_equal(rota_load(&g->m->phot[0].consec_fail), 5);

    /* disables: the operator's with its reason and time, the workers' with theirs */
    struct rota_shm_snap *sn = &g->m->snaps[1];
    assert_true(rota_load(&sn->flags) & ROTA_SNAP_DISABLED);
    assert_int_equal(rota_load(&sn->reason), ROTA_OFF_OPERATOR);
    assert_near((int64_t)rota_load(&sn->disabled_until), (int64_t)(now + 60 * S),
                (int64_t)(50 * MS));
    uint64_t dis = rota_load(&g->m->hot[1].disabled);
    assert_int_equal(dis & 0xff, ROTA_OFF_BILLING);
    assert_near((int64_t)(dis >> 8), (int64_t)(now_ms + 120000), 50);
    assert_int_equal(rota_load(&g->m->hot[2].disabled), rota_disable_word(ROTA_OFF_AUTH, 0));
    assert_false(rota_load(&g->m->snaps[2].flags) & ROTA_SNAP_DISABLED);

    /* deadlines already passed are not restored */
    assert_int_equal(rota_load(&g->m->hot[3].cooldown_until), 0);
    assert_false(rota_load(&g->m->snaps[3].flags) & ROTA_SNAP_DISABLED);
    assert_int_equal(rota_load(&g->m->hot[3].disabled), 0);
    assert_int_equal(rota_load(&g->m->hot[3].consec_429), 1);

    /* untouched accounts stay as a fresh table has them */
    assert_int_equal(rota_load(&g->m->hot[4].use0[0]), 0);
    assert_int_equal(rota_load(&g->m->hot[4].breaker) & ~ROTA_BREAKER_EPOCH_MASK, 0);
    assert_int_equal(rota_load(&g->m->hot[4].disabled), 0);
}

/* A window of the saved state that no longer matches the config (its metric or pool
 * changed) starts afresh: nothing of the old use shows in it. */
static void test_journal_state_window_that_changed_starts_fresh(void **state)
{
    struct ju_ctx *c = *state;
    assert_int_equal(publish(&c->f, "jw", false), 0);
    struct fx *f = &c->f;
    int64_t wall = rota_clock_wall();
    calls(f, 0, 0, 100, 50, 100);
    observe(f, 0, 1, 20000, 100000, wall + DAY_NS, wall); /* tokens: 20000 + 0 */
    calls(f, 1, 1, 20, 350, 20);
    calls(f, 3, 0, 30, 0, 30);
    assert_int_equal(publish(&c->g, "jwr", true), 0);
    struct fx *g = &c->g;
    save_and_restore(f, g);
    int64_t off = rota_jclock_offset();
    struct rota_jaccount a0 = capture(g, 0, off), a1 = capture(g, 1, off),
                         a3 = capture(g, 3, off);
    /* the windows that still match come back */
    assert_int_equal(a0.win[0].used, 100);
    assert_int_equal(a1.win[0].used, 20);
    /* a0's second window counts requests now, a1's second is pool 0: both fresh */
    assert_int_equal(a0.win[1].metric, ROTA_METRIC_REQUESTS);
    assert_int_equal(a0.win[1].reset_at, 0);
    assert_int_equal(rota_load(&g->m->hot[3].use0[0]), 30);
    if (a0.win[1].used != 0 || a1.win[1].used != 0 || a3.win[0].used != 0)
        fail_msg("windows whose metric or pool changed show %" PRIu64 " and %" PRIu64
                 " used after the restore, a new window %" PRIu64
                 ", not 0: the restored counters count in them",
                 a0.win[1].used, a1.win[1].used, a3.win[0].used);
    assert_true(fraction(g, 0, 0) > 0.099 && fraction(g, 0, 0) < 0.101);
    assert_true(fraction(g, 3, 0) < 0.001);
}

/* One account with a per-minute and a per-day requests window; "inserted": a tokens
 * window before them. */
static int publish_one(struct fx *f, const char *tag, bool inserted)
{
    struct rota_desc_provider p = {.name = "prov", .kind = "openai"};
    struct rota_desc_account a = {.id = 900, .name = "w", .credential = "sk-test-secret"};
    struct rota_desc_window rpm = {
        ROTA_METRIC_REQUESTS, 0, 60, {.kind = ROTA_RESET_MINUTE}, NULL};
    struct rota_desc_window rpd = {
        ROTA_METRIC_REQUESTS, 0, 1000, {.kind = ROTA_RESET_DAY}, NULL};
    struct rota_desc_window tok = {
        ROTA_METRIC_TOKENS, 0, 100000, {.kind = ROTA_RESET_DAY}, NULL};
    uint32_t k = 0;
    if (inserted)
        a.win[k++] = tok;
    a.win[k++] = rpm;
    a.win[k++] = rpd;
    a.nwin = k;
    static const uint32_t members[1] = {0};
    struct rota_desc_tier t = {
        .strategy = ROTA_STRAT_HYBRID, .provider = 0, .nmembers = 1, .members = members};
    struct rota_desc_route r = {.name = "r", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 1,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = &a,
                          .routes = &r};
    return fx_publish(f, tag, &d);
}

/* Windows keep their use when the config puts another before them, even two that count
 * the same thing on the same pool: matched by metric, pool and reset rule, not position. */
static void test_journal_state_window_moved_keeps_its_use(void **state)
{
    struct ju_ctx *c = *state;
    assert_int_equal(publish_one(&c->f, "jm", false), 0);
    int64_t wall = rota_clock_wall();
    observe(&c->f, 0, 0, 10, 60, wall + 30 * S, wall);        /* this minute: 10 */
    observe(&c->f, 0, 1, 700, 1000, wall + DAY_NS / 2, wall); /* today: 700 */
    assert_int_equal(publish_one(&c->g, "jmr", true), 0);
    int64_t off = rota_jclock_offset();
    struct rota_jaccount s = capture(&c->f, 0, off);
    s = through_codec(&s);
    rota_jstate_apply(c->g.m, 0, &s, rota_jclock_offset());
    struct rota_jaccount back = capture(&c->g, 0, off);
    if (back.win[1].used != 10 || back.win[2].used != 700)
        fail_msg("after the restore the minute window shows %" PRIu64
                 " and the day window %" PRIu64 " (want 10 and 700)",
                 back.win[1].used, back.win[2].used);
    assert_int_equal(back.win[1].reset_at, wall + 30 * S);
    assert_int_equal(back.win[2].reset_at, wall + DAY_NS / 2);
    assert_int_equal(back.win[0].used, 0); /* the new tokens window starts empty */
}

/* Credits and fractions come from observations alone (core/admin/view.c): the calls made since
 * the last observation are no use of such a window, before a restart or after. */
static void test_journal_state_observed_only_window_keeps_its_use(void **state)
{
    struct ju_ctx *c = *state;
    assert_int_equal(publish(&c->f, "jc", false), 0);
    struct fx *f = &c->f;
    int64_t wall = rota_clock_wall();
    observe(f, 4, 0, 300, 1000, wall + DAY_NS, wall);
    calls(f, 4, 0, 50, 10, 50);
    assert_true(fraction(f, 4, 0) > 0.299 && fraction(f, 4, 0) < 0.301);
    struct rota_jaccount s = capture(f, 4, rota_jclock_offset());
    if (s.win[0].used != 300)
        fail_msg("a credits window observed at 300 is captured as %" PRIu64
                 " after 50 calls: requests counted as credits",
                 s.win[0].used);
    assert_int_equal(publish(&c->g, "jcr", false), 0);
    save_and_restore(f, &c->g);
    assert_true(fraction(&c->g, 4, 0) > 0.299 && fraction(&c->g, 4, 0) < 0.301);
}

/* Each kind of change, made as workers and the supervisor make it, is named by diff. */
static void test_journal_state_diff_names_each_change(void **state)
{
    struct ju_ctx *c = *state;
    assert_int_equal(publish(&c->f, "jd", false), 0);
    struct fx *f = &c->f;
    struct rota_shm_map *m = f->m;
    int64_t off = rota_jclock_offset();
    uint64_t now = rota_clock_mono();
    struct rota_jaccount prev = capture(f, 0, off), cur;
#define CHANGE(action, want)                                                                   \
    do {                                                                                       \
        prev = capture(f, 0, off);                                                             \
        action;                                                                                \
        cur = capture(f, 0, off);                                                              \
        char names_[128], wnames_[128];                                                        \
        uint32_t got_ = rota_jstate_diff(&prev, &cur);                                         \
        if (got_ != (want))                                                                    \
            fail_msg("%s: diff says \"%s\", want \"%s\"", #action,                             \
                     rota_jchg_names(got_, names_, sizeof(names_)),                            \
                     rota_jchg_names((want), wnames_, sizeof(wnames_)));                       \
    } while (0)

    CHANGE((void)0, 0);
    CHANGE(calls(f, 0, 0, 5, 10, 0), ROTA_JCHG_USAGE);     /* in flight */
    CHANGE(rota_add(&m->hot[0].done, 5), ROTA_JCHG_USAGE); /* reported */
    CHANGE(rota_add(&m->hot[0].failures, 1), ROTA_JCHG_USAGE);
    /* the supervisor resets window 0: its use goes back */
    CHANGE(observe(f, 0, 0, 0, 1000, 0, 0), ROTA_JCHG_RESET);
    CHANGE(observe(f, 0, 0, 0, 1200, 0, 0), ROTA_JCHG_OBSERVED); /* a new limit */
    CHANGE(observe(f, 0, 0, 0, 1200, rota_clock_wall() + DAY_NS, 0), ROTA_JCHG_OBSERVED);
    CHANGE(
        observe(f, 0, 0, 0, 1200, rota_load(&m->snaps[0].win[0].reset_at), rota_clock_wall()),
        ROTA_JCHG_OBSERVED); /* a probe */
    CHANGE(observe(f, 0, 0, 7, 1200, rota_load(&m->snaps[0].win[0].reset_at),
                   rota_load(&m->snaps[0].probe_at)),
           ROTA_JCHG_USAGE); /* observed use above the counted */
    CHANGE(rota_max_u64(&m->hot[0].cooldown_until, now + 10 * S), ROTA_JCHG_COOLDOWN);
    CHANGE(rota_add(&m->hot[0].consec_429, 1), ROTA_JCHG_COOLDOWN);
    CHANGE(rota_breaker_force_open(&m->hot[0].breaker, &BCFG, now, 1), ROTA_JCHG_BREAKER);
    CHANGE(rota_add(&m->hot[0].consec_fail, 1), ROTA_JCHG_BREAKER);
    CHANGE(rota_breaker_reset(&m->hot[0].breaker, &m->hot[0].consec_fail), ROTA_JCHG_BREAKER);
    CHANGE(rota_sup_disable(m, 0, ROTA_OFF_OPERATOR, 0), ROTA_JCHG_DISABLE);
    CHANGE(rota_sup_disable(m, 0, ROTA_OFF_DRAIN, 0), ROTA_JCHG_DISABLE); /* another reason */
    CHANGE(rota_sup_disable(m, 0, ROTA_OFF_DRAIN, 0), 0);                 /* the same again */
    CHANGE(rota_sup_enable(m, 0), ROTA_JCHG_ENABLE);
    CHANGE(rota_store(&m->hot[0].disabled, rota_disable_word(ROTA_OFF_AUTH, 0)),
           ROTA_JCHG_DISABLE); /* a worker's */
    CHANGE(rota_store(&m->hot[0].disabled, 0), ROTA_JCHG_ENABLE);
    CHANGE(set_flags(f, 0, 0), ROTA_JCHG_OBSERVED); /* no data any more */
    CHANGE(set_flags(f, 0, ROTA_SNAP_HAS_DATA | ROTA_SNAP_PESSIMISTIC), ROTA_JCHG_OBSERVED);
    CHANGE(set_flags(f, 0, ROTA_SNAP_HAS_DATA), 0); /* "pessimistic" is not kept */
#undef CHANGE

    /* between records of different shapes */
    prev = capture(f, 0, off);
    cur = prev;
    cur.nwin = prev.nwin - 1;
    assert_int_equal(rota_jstate_diff(&prev, &cur), ROTA_JCHG_OBSERVED);
    cur = prev;
    cur.win[0].used += 1;
    cur.win[1].used -= 1;
    assert_int_equal(rota_jstate_diff(&prev, &cur), ROTA_JCHG_USAGE | ROTA_JCHG_RESET);
    cur = prev;
    cur.what = ROTA_JCHG_FULL; /* "what" itself is no change */
    assert_int_equal(rota_jstate_diff(&prev, &cur), 0);

    struct rota_jprovider p1, p2;
    rota_jstate_capture_provider(m, 0, off, &p1);
    rota_breaker_force_open(&m->phot[0].breaker, &BCFG, now, 1);
    rota_jstate_capture_provider(m, 0, off, &p2);
    assert_false(rota_jstate_provider_same(&p1, &p2));
    assert_true(rota_jstate_provider_same(&p2, &p2));
}

/* ---- the journal thread and recovery ---- */

static void journal_cfg(struct ju_ctx *c, struct rota_config_journal *cfg, uint64_t max_bytes)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->file_enabled = true;
    cfg->file_path = c->path;
    cfg->fsync = ROTA_FSYNC_INTERVAL;
    cfg->fsync_interval_ns = 10 * MS;
    cfg->snapshot_every_ns = 3600 * S;
    cfg->max_bytes = max_bytes;
}

/* The latest record per account id of a journal file (ids 500 + i). */
static struct {
    struct rota_jaccount acc[NACC];
    bool have[NACC];
} latest;

static int keep_latest(void *arg, const struct rota_jrec *r)
{
    if (r->type == ROTA_JREC_ACCOUNT && r->u.acc.id >= 500 && r->u.acc.id < 500 + NACC) {
        latest.acc[r->u.acc.id - 500] = r->u.acc;
        latest.have[r->u.acc.id - 500] = true;
    }
    return 0;
}

/* Does the file hold the changes test_journal_thread_records_and_recovery makes? */
static bool file_has_changes(const char *path)
{
    memset(&latest, 0, sizeof(latest));
    struct rota_jfile_scan sc;
    char err[256];
    if (rota_jfile_read(path, &ju_key, keep_latest, NULL, &sc, err, sizeof(err)) != 0)
        return false;
    return latest.have[0] && latest.acc[0].requests == 7 && latest.acc[0].done == 7 &&
           latest.have[1] && latest.acc[1].cooldown_until > 0 && latest.have[2] &&
           (latest.acc[2].flags & ROTA_SNAP_DISABLED);
}

static void copy_file(const char *from, const char *to)
{
    size_t size;
    uint8_t *p = ju_slurp(from, &size);
    ju_spit(to, p, size);
    free(p);
}

/* Recover "cfg"'s file into "to" and check what test_journal_thread_records_and_recovery
 * changed came back. */
static void assert_recovered(struct rota_config_journal *cfg, struct fx *from, struct fx *to)
{
    struct rota_journal_opts o = {.instance = to->instance, .cfg = cfg, .key = &ju_key};
    struct rota_journal_restore rs;
    char err[256] = "";
    int rc = rota_journal_recover(&o, to->m, &rs, err, sizeof(err));
    if (rc)
        fail_msg("recover: %d %s", rc, err);
    assert_string_equal(rs.source, "file");
    assert_int_equal(rs.accounts, NACC);
    assert_int_equal(rs.providers, 1);
    assert_int_equal(rs.unknown, 0);
    assert_int_equal(rs.file.corrupt, 0);
    assert_true(rs.at > 0 && rs.at == rs.file_at);
    assert_int_equal(rs.redis_at, 0);
    assert_int_equal(rota_load(&to->m->hot[0].use0[0]), 7);
    assert_int_equal(rota_load(&to->m->hot[0].use0[1]), 77);
    assert_int_equal(rota_load(&to->m->hot[0].done), 7);
    assert_near((int64_t)rota_load(&to->m->hot[1].cooldown_until),
                (int64_t)rota_load(&from->m->hot[1].cooldown_until), (int64_t)(50 * MS));
    assert_true(rota_load(&to->m->snaps[2].flags) & ROTA_SNAP_DISABLED);
    assert_int_equal(rota_load(&to->m->snaps[2].reason), ROTA_OFF_OPERATOR);
    assert_int_equal(rota_load(&to->m->snaps[2].disabled_until), 0);
    assert_int_equal(rota_load(&to->m->hot[3].use0[0]), 0);
}

static void test_journal_thread_records_and_recovery_restores(void **state)
{
    struct ju_ctx *c = *state;
    assert_int_equal(publish(&c->f, "jt", false), 0);
    struct rota_config_journal cfg;
    journal_cfg(c, &cfg, 64 * 1024);
    struct rota_journal_opts o = {
        .instance = c->f.instance, .cfg = &cfg, .scan_ns = 10 * MS, .key = &ju_key};
    char err[256] = "";
    int rc = rota_journal_start(&o, &c->j, err, sizeof(err));
    if (rc)
        fail_msg("journal start: %d %s", rc, err);

    /* the first pass writes a snapshot of the whole table */
    struct rota_journal_stats st;
    uint64_t t0 = rota_clock_mono();
    do {
        rota_journal_stats(c->j, &st);
        if (st.passes >= 1 && st.file.snapshots >= 1)
            break;
        nap_ms(5);
    } while (rota_clock_mono() - t0 < WAIT_NS);
    assert_true(st.file.snapshots >= 1);
    assert_true(st.file_enabled);
    assert_false(st.redis_enabled);
    assert_string_equal(st.file_path, c->path);
    assert_int_equal(st.generation, c->f.m->hdr->generation);
    assert_true(st.changes >= NACC + 1); /* every account and the provider, in full */
    assert_int_equal(st.file.errors, 0);

    /* a worker's calls, a cooldown, an operator's disable */
    uint64_t before = st.changes, now = rota_clock_mono();
    calls(&c->f, 0, 0, 7, 11, 7);
    rota_max_u64(&c->f.m->hot[1].cooldown_until, now + 60 * S);
    rota_sup_disable(c->f.m, 2, ROTA_OFF_OPERATOR, 0);
    rota_journal_nudge(c->j);
    t0 = rota_clock_mono();
    bool seen = false;
    do {
        rota_journal_stats(c->j, &st);
        if (st.changes >= before + 3 && st.lag_ns == 0 && file_has_changes(c->path)) {
            seen = true;
            break;
        }
        nap_ms(5);
    } while (rota_clock_mono() - t0 < WAIT_NS);
    if (!seen)
        fail_msg("changes %" PRIu64 " (from %" PRIu64 "), lag %" PRIu64 " ns, file %s",
                 st.changes, before, st.lag_ns,
                 file_has_changes(c->path) ? "has them" : "does not have them");
    assert_int_equal(st.file_dropped, 0);
    assert_true(st.last_change_at > 0);

    /* the file as a crash would leave it, the journal still running */
    char crash[160];
    snprintf(crash, sizeof(crash), "%s/crashed", c->dir);
    copy_file(c->path, crash);

    rota_journal_stop(c->j);
    c->j = NULL;
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    assert_false(ju_exists(tmp));

    /* a fresh table recovers from the file a clean stop left */
    assert_int_equal(publish(&c->g, "jtr", false), 0);
    assert_recovered(&cfg, &c->f, &c->g);
    /* ... and from the crashed one */
    struct rota_config_journal cfg2 = cfg;
    struct rota_journal_restore rs;
    struct rota_journal_opts o2 = {.instance = c->g.instance, .cfg = &cfg2, .key = &ju_key};
    cfg2.file_path = crash;
    assert_int_equal(publish(&c->h, "jtc", false), 0);
    assert_recovered(&cfg2, &c->f, &c->h);

    /* no file: nothing restored, no error; a foreign file: refused */
    cfg2.file_path = tmp;
    assert_int_equal(rota_journal_recover(&o2, c->g.m, &rs, err, sizeof(err)), 0);
    assert_string_equal(rs.source, "");
    assert_int_equal(rs.accounts, 0);
    ju_spit(crash, "not a journal, a text file\n", 27);
    cfg2.file_path = crash;
    err[0] = 0;
    assert_int_equal(rota_journal_recover(&o2, c->g.m, &rs, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, crash));
}

/* Records are appended in the order their states were captured: a later one in the file
 * is the newer state even when the wall clock stepped back between them. */
static void test_journal_recover_takes_the_last_record_in_the_file(void **state)
{
    struct ju_ctx *c = *state;
    assert_int_equal(publish(&c->f, "jo", false), 0);
    char err[256] = "";
    assert_int_equal(rota_jfile_open(c->path, ROTA_FSYNC_ALWAYS, 0, &c->jf, err, sizeof(err)),
                     0);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    int64_t t = rota_clock_wall();
    struct rota_jrec r = ju_rec_snapshot(1);
    r.at = t;
    ju_put(c->jf, &r, NULL);
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_ACCOUNT;
    r.seq = 2;
    r.at = t;
    r.u.acc.id = 500;
    r.u.acc.requests = r.u.acc.done = 100;
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    r.seq = 3;
    r.at = t - (int64_t)S; /* the clock was stepped back a second */
    r.u.acc.requests = r.u.acc.done = 200;
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), true), 0);
    rota_jfile_close(c->jf);
    c->jf = NULL;

    struct rota_config_journal cfg;
    journal_cfg(c, &cfg, 64 * 1024);
    struct rota_journal_opts o = {.instance = c->f.instance, .cfg = &cfg, .key = &ju_key};
    struct rota_journal_restore rs;
    assert_int_equal(rota_journal_recover(&o, c->f.m, &rs, err, sizeof(err)), 0);
    assert_string_equal(rs.source, "file");
    assert_int_equal(rs.accounts, 1);
    uint64_t got_requests = rota_load(&c->f.m->hot[0].use0[0]);
    if (got_requests != 200)
        fail_msg("recovery restored %" PRIu64 " requests from the earlier record, not 200 "
                 "from the last one: records are ordered by their wall-clock time",
                 got_requests);
}

static void test_journal_thread_keeps_the_file_bounded(void **state)
{
    struct ju_ctx *c = *state;
    enum { N = 32 };
    const uint64_t max_bytes = 16 * 1024;
    assert_int_equal(fx_pool(&c->f, "jb", N, ROTA_STRAT_HYBRID, NULL), 0);
    struct rota_config_journal cfg;
    journal_cfg(c, &cfg, max_bytes);
    struct rota_journal_opts o = {
        .instance = c->f.instance, .cfg = &cfg, .scan_ns = 10 * MS, .key = &ju_key};
    char err[256] = "";
    int rc = rota_journal_start(&o, &c->j, err, sizeof(err));
    if (rc)
        fail_msg("journal start: %d %s", rc, err);
    uint64_t t0 = rota_clock_mono(), largest = 0, rounds = 0;
    while (rota_clock_mono() - t0 < 1500 * MS) {
        for (uint32_t a = 0; a < N; a++)
            calls(&c->f, a, 0, 1, 3, 1);
        rounds++;
        struct stat sb;
        if (stat(c->path, &sb) == 0) {
            if ((uint64_t)sb.st_size > largest)
                largest = (uint64_t)sb.st_size;
            if ((uint64_t)sb.st_size > max_bytes)
                fail_msg("the journal grew to %jd bytes (max_bytes %" PRIu64 ")",
                         (intmax_t)sb.st_size, max_bytes);
        }
        nap_ms(2);
    }
    struct rota_journal_stats st;
    rota_journal_stats(c->j, &st);
    rota_journal_stop(c->j);
    c->j = NULL;
    assert_true(largest > 0);
    assert_true(st.file.snapshots > 1);
    assert_int_equal(st.file.errors, 0);
    assert_int_equal(st.file_dropped, 0);
    assert_true(st.passes > 10);

    /* what the file holds after the stop: every account's last count */
    struct rota_jfile_scan sc;
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_true(sc.size <= max_bytes);
    assert_int_equal(sc.corrupt + sc.torn_bytes, 0);
    assert_int_equal(sc.snapshots, 1);
    for (uint64_t k = 0; k < ju_got.n && k < 1024; k++)
        if (ju_got.type[k] == ROTA_JREC_ACCOUNT)
            assert_true(ju_got.id[k] >= 100 && ju_got.id[k] < 100 + N);
    assert_int_equal(fx_pool(&c->g, "jbr", N, ROTA_STRAT_HYBRID, NULL), 0);
    struct rota_journal_restore rs;
    o.instance = c->g.instance;
    assert_int_equal(rota_journal_recover(&o, c->g.m, &rs, err, sizeof(err)), 0);
    assert_int_equal(rs.accounts, N);
    for (uint32_t a = 0; a < N; a++)
        assert_int_equal(rota_load(&c->g.m->hot[a].use0[0]), rounds);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, ju_setup, ju_teardown)
    const struct CMUnitTest tests[] = {
        T(test_journal_state_survives_capture_and_apply),
        T(test_journal_state_window_that_changed_starts_fresh),
        T(test_journal_state_observed_only_window_keeps_its_use),
        T(test_journal_state_window_moved_keeps_its_use),
        T(test_journal_state_diff_names_each_change),
        T(test_journal_thread_records_and_recovery_restores),
        T(test_journal_recover_takes_the_last_record_in_the_file),
        T(test_journal_thread_keeps_the_file_bounded),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
