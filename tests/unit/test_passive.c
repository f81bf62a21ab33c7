/* test_passive: what workers read in the answers they report moves an account's quota
 * between probes: headers through librota's report, the parser, the account's passive
 * slot, and the supervisor's fold into the snapshot; selection then follows. All on the
 * host's clocks, which librota reads itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "observe.h"
#include "rota.h"
#include "select.h"

/* A two-account pool of kind "openai", each with a daily window of 100 requests. */
static void pool2(struct fx *f, const char *tag)
{
    struct fx_pool_opts o = {.n = 2, .strategy = ROTA_STRAT_FILL_FIRST, .limit = 100};
    assert_int_equal(fx_pool_with(f, tag, &o), 0);
}

static double fraction(struct fx *f, uint32_t a)
{
    double fr;
    uint32_t flags;
    assert_true(rota_account_fraction(f->m, a, 0, &fr, &flags));
    return fr;
}

static void select_report(rota_t *h, const rota_route_t *rt, const char *headers, int status,
                          uint32_t *account)
{
    rota_choice c;
    assert_int_equal(rota_select(h, rt, NULL, 0, 0, &c), 0);
    *account = c.account;
    rota_outcome o = {
        .status = status, .headers = headers, .headers_len = headers ? strlen(headers) : 0};
    assert_int_equal(rota_report(h, &c, &o), 0);
}

static const char limits95[] = "HTTP/1.1 200 OK\r\n"
                               "x-ratelimit-limit-requests: 100\r\n"
                               "x-ratelimit-remaining-requests: 5\r\n"
                               "x-ratelimit-reset-requests: 30s\r\n"
                               "content-type: application/json\r\n";

static void test_passive_headers_move_quota_and_traffic(void **state)
{
    (void)state;
    struct fx f = {0};
    pool2(&f, "pas1");
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "pool", &rt), 0);
    uint32_t a;
    select_report(h, &rt, NULL, 200, &a); /* fill-first: account 0 */
    assert_int_equal(a, 0);
    assert_int_equal(rota_load(&f.m->hot[0].obs[0]), 0); /* no headers: nothing published */
    assert_true(fraction(&f, 0) < 0.05);
    select_report(h, &rt, limits95, 200, &a);
    assert_int_equal(a, 0);
    uint64_t seq = rota_load(&f.m->hot[0].obs[0]);
    assert_int_equal(seq & 0xffffffff, 2); /* one observation, released */
    assert_int_equal(seq >> 32, getpid()); /* by this process */
    assert_int_equal(rota_passive_fold(f.m, NULL), 1);
    assert_true(fraction(&f, 0) >= 0.95);              /* the provider's figure */
    assert_int_equal(rota_passive_fold(f.m, NULL), 0); /* folded once */
    /* Account 0 is now over the ceiling: traffic moves to account 1. */
    for (int i = 0; i < 10; i++) {
        select_report(h, &rt, NULL, 200, &a);
        assert_int_equal(a, 1);
    }
    rota_detach(h);
    fx_close(&f);
}

static void test_passive_retry_hint_cools_down_at_once(void **state)
{
    (void)state;
    struct fx f = {0};
    pool2(&f, "pas2");
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "pool", &rt), 0);
    /* A 429 whose only hint is in the headers: the report itself had no retry_after_ms. */
    static const char hint[] = "retry-after-ms: 45000\r\n"
                               "x-ratelimit-limit-requests: 100\r\n"
                               "x-ratelimit-remaining-requests: 0\r\n";
    uint32_t a;
    select_report(h, &rt, hint, 429, &a);
    uint64_t until = rota_load(&f.m->hot[a].cooldown_until);
    /* at least 40 s of cooldown, not the 1 s a bare 429 gives */
    rota_choice c;
    assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c), 0);
    assert_int_not_equal(c.account, a);
    rota_outcome o = {.status = 200};
    rota_report(h, &c, &o);
    assert_true(until > c.selected_at + 40ull * 1000000000ull);
    rota_detach(h);
    fx_close(&f);
}

static void test_passive_slot_left_mid_write_is_repaired(void **state)
{
    (void)state;
    struct fx f = {0};
    pool2(&f, "pas3");
    uint64_t seen[2] = {0, 0};
    rota_store(&f.m->hot[1].obs[0], 7); /* a writer died holding the slot */
    assert_int_equal(rota_passive_fold(f.m, seen), 0);
    assert_int_equal(rota_load(&f.m->hot[1].obs[0]), 7); /* once: it may still be writing */
    assert_int_equal(rota_passive_fold(f.m, seen), 0);
    assert_int_equal(rota_load(&f.m->hot[1].obs[0]), 8); /* twice: released */
    /* A holder that is alive keeps the slot however long it takes (it may be preempted
     * mid-write); one whose process is gone loses it at the second fold. */
    uint64_t alive = (uint64_t)getpid() << 32 | 9;
    rota_store(&f.m->hot[1].obs[0], alive);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rota_passive_fold(f.m, seen), 0);
    assert_int_equal(rota_load(&f.m->hot[1].obs[0]), alive);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    uint64_t dead = (uint64_t)(uint32_t)child << 32 | 11;
    rota_store(&f.m->hot[1].obs[0], dead);
    assert_int_equal(rota_passive_fold(f.m, seen), 0);
    assert_int_equal(rota_load(&f.m->hot[1].obs[0]), dead);
    assert_int_equal(rota_passive_fold(f.m, seen), 0);
    assert_int_equal(rota_load(&f.m->hot[1].obs[0]), dead + 1);
    /* and the next observation gets through */
    struct rota_obs o;
    memset(&o, 0, sizeof(o));
    o.nwin = 1;
    o.win[0].metric = ROTA_METRIC_REQUESTS;
    o.win[0].has_limit = o.win[0].has_remaining = true;
    o.win[0].limit = 100;
    o.win[0].remaining = 50;
    rota_passive_publish(f.m, 1, &o, rota_clock_mono(), rota_clock_wall());
    assert_int_equal(rota_passive_fold(f.m, seen), 1);
    assert_true(fraction(&f, 1) >= 0.5);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passive_headers_move_quota_and_traffic),
        cmocka_unit_test(test_passive_retry_hint_cools_down_at_once),
        cmocka_unit_test(test_passive_slot_left_mid_write_is_repaired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
