/* test_shm: building, publishing, attaching to and validating tables; carrying hot state
 * across generations; refusing every kind of bad segment with a message that names it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "breaker.h"
#include "clock.h"
#include "fixture.h"
#include "hash.h"
#include "select.h"

static void test_shm_publish_then_attach(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "pub", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_shm_map m;
    char err[256];
    assert_int_equal(rota_shm_attach(f.instance, &m, err, sizeof(err)), 0);
    assert_int_equal(m.naccounts, 8);
    assert_int_equal(m.nproviders, 4);
    assert_int_equal(m.nroutes, 1);
    assert_int_equal(m.ntiers, 4);
    assert_int_equal(m.hdr->generation, 1);
    assert_int_equal(atomic_load(&m.hdr->state), ROTA_GEN_READY);
    assert_string_equal(rota_shm_str(&m, m.accounts[3].name), "cp-a");
    assert_string_equal(rota_shm_str(&m, m.providers[1].name), "copilot");
    assert_int_equal(rota_shm_find(&m, ROTA_IDX_ROUTE, rota_hash_str("code")), 0);
    assert_int_equal(rota_shm_find(&m, ROTA_IDX_ROUTE, rota_hash_str("code-model")), 0);
    assert_int_equal(rota_shm_find(&m, ROTA_IDX_ROUTE, rota_hash_str("nope")), ROTA_NONE);
    assert_int_equal(rota_shm_find(&m, ROTA_IDX_ACCOUNT, 13), 3);
    assert_int_equal(m.accounts[3].cred_len, strlen("sk-test-secret"));
    assert_memory_equal(m.creds + m.accounts[3].cred, "sk-test-secret", 14);
    struct stat st;
    char name[128];
    rota_shm_name(name, sizeof(name), f.instance, 1);
    int fd = shm_open(name, O_RDONLY, 0);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    close(fd);
    rota_shm_detach(&m);
    fx_close(&f);
}

static void test_shm_new_generation_carries_state_by_id(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "gen", 4, ROTA_STRAT_HYBRID, NULL), 0);
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    rota_store(&f.m->hot[2].use0[0], 77);
    rota_store(&f.m->hot[2].done, 70);
    rota_store(&f.m->hot[2].cooldown_until, 123456789);
    fx_used(&f, 2, 500);
    /* The next generation adds an account (ids 100..104). */
    assert_int_equal(fx_pool(&f, "gen", 5, ROTA_STRAT_HYBRID, NULL), 0);
    assert_int_equal(f.m->hdr->generation, 2);
    assert_int_equal(atomic_load(&old.hdr->state), ROTA_GEN_SUPERSEDED);
    uint32_t i = rota_shm_find(f.m, ROTA_IDX_ACCOUNT, 102);
    assert_int_equal(i, 2);
    assert_int_equal(rota_load(&f.m->hot[i].use0[0]), 77);
    assert_int_equal(rota_in_flight(f.m, i), 7);
    assert_int_equal(rota_load(&f.m->hot[i].cooldown_until), 123456789);
    assert_int_equal(rota_load(&f.m->snaps[i].win[0].used), 500);
    /* Counts made on the old generation after the copy are not lost: a worker that has
     * not switched yet still counts there, and the writer folds them in at the switch.
     * (Here: counted before the publish, so exactly what was copied.) */
    assert_int_equal(rota_load(&f.m->hot[4].use0[0]), 0);
    /* The old generation's name is gone, its mapping still valid. */
    char name[128];
    rota_shm_name(name, sizeof(name), f.instance, 1);
    assert_int_equal(shm_open(name, O_RDONLY, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(old.naccounts, 4);
    rota_shm_detach(&old);
    fx_close(&f);
}

static void test_shm_catch_up_counts_on_old_generation(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "cu", 2, ROTA_STRAT_HYBRID, NULL), 0);
    /* A worker process keeps counting on generation 1 while the writer publishes 2. */
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    pid_t pid = fork();
    if (pid == 0) {
        for (int k = 0; k < 2000000; k++)
            rota_add(&old.hot[1].use0[0], 1);
        _exit(0);
    }
    while (rota_load(&old.hot[1].use0[0]) < 100000)
        ;
    uint64_t before = rota_load(&old.hot[1].use0[0]);
    assert_int_equal(fx_pool(&f, "cu", 2, ROTA_STRAT_HYBRID, NULL), 0);
    uint64_t after = rota_load(&old.hot[1].use0[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(rota_load(&old.hot[1].use0[0]), 2000000);
    /* Everything counted before the publish began reached the new generation, and
     * nothing counted after it returned (that lands on a superseded table, as a stale
     * worker's would, and the worker re-reports by id). */
    uint64_t carried = rota_load(&f.m->hot[1].use0[0]);
    assert_true(carried >= before);
    assert_true(carried <= after);
    rota_shm_detach(&old);
    fx_close(&f);
}

/* What a worker still on the old generation does after the copy reaches the new one: a
 * reload never lets a rate limit admit twice, nor forgets a cooldown or a disable. */
static void test_shm_reload_merges_rate_and_gates(void **state)
{
    (void)state;
    struct fx f = {0};
    struct rota_desc_provider p = {.name = "p"};
    struct rota_desc_account a[2] = {{.id = 1, .name = "limited", .rpm = 10},
                                     {.id = 2, .name = "other"}};
    uint32_t m0[1] = {0};
    struct rota_desc_tier t = {
        .strategy = ROTA_STRAT_GREEDY, .provider = 0, .nmembers = 1, .members = m0};
    struct rota_desc_route r = {.name = "r", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 2,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = a,
                          .routes = &r};
    assert_int_equal(fx_publish(&f, "merge", &d), 0);
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    assert_int_equal(fx_publish(&f, "merge", &d), 0); /* reload: same accounts */
    struct rota_rng rng = {1};
    uint64_t now = rota_clock_mono();
    struct rota_sel_req q = {.route = 0, .now = now};
    struct rota_sel_res res;
    for (int i = 0; i < 10; i++) /* a stale worker spends the whole minute on the old map */
        assert_int_equal(rota_select_route(&old, &q, &rng, &res), 0);
    assert_int_equal(rota_select_route(&old, &q, &rng, &res), ROTA_EEXHAUSTED);
    struct rota_outcome_in o429 = {.status = 429, .retry_after_ms = 60000};
    rota_report_apply(&old, 1, &o429, now, 0);
    struct rota_outcome_in o401 = {.status = 401};
    rota_report_apply(&old, 1, &o401, now, 0);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_select_route(f.m, &q, &rng, &res), ROTA_EEXHAUSTED);
    assert_int_equal(res.skipped[0], ROTA_SKIP_RATE);
    assert_true(rota_load(&f.m->hot[1].cooldown_until) >= now + 60000 * ROTA_NS_PER_MS);
    assert_int_not_equal(rota_load(&f.m->hot[1].disabled), 0);
    assert_int_equal(rota_load(&f.m->hot[0].use0[0]), 10);
    rota_shm_detach(&old);
    fx_close(&f);
}

/* A provider's breaker and failure streak survive a reload, by the provider's name: a
 * reload with the same config must not send full traffic to a provider that is down. A
 * worker still on the old generation that changes them after the copy is caught up. */
static void test_shm_reload_keeps_provider_breakers(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "pbrk", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_breaker_cfg bc = {3, 1, 30000, 600000, 0};
    uint64_t now = rota_clock_mono();
    rota_breaker_force_open(&f.m->phot[1].breaker, &bc, now, 0); /* copilot */
    rota_store(&f.m->phot[1].consec_fail, 3);
    uint64_t open_word = rota_load(&f.m->phot[1].breaker);
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    assert_int_equal(fx_chain(&f, "pbrk", ROTA_STRAT_HYBRID, 100), 0); /* a reload */
    assert_int_equal(f.m->hdr->generation, 2);
    assert_int_equal(rota_load(&f.m->phot[1].breaker), open_word);
    assert_int_equal(rota_load(&f.m->phot[1].consec_fail), 3);
    assert_int_equal(rota_breaker_state_of(rota_load(&f.m->phot[0].breaker)),
                     ROTA_BREAKER_CLOSED);
    /* A worker on generation 1 opens antigravity's breaker after the copy. */
    rota_breaker_force_open(&old.phot[0].breaker, &bc, now, 0);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_breaker_state_of(rota_load(&f.m->phot[0].breaker)),
                     ROTA_BREAKER_OPEN);
    assert_int_equal(rota_load(&f.m->phot[1].breaker), open_word);
    rota_shm_detach(&old);
    fx_close(&f);
}

/* During the settle window a worker still on the old generation may change a breaker
 * word that workers on the new one have moved further: the provider's and the account's
 * breakers were half-open at the reload, a trial on the new generation failed and opened
 * them, and a stale trial of the same period then closed the old generation's words. The
 * catch-up must not close the new generation's breakers: they stay open. */
static void test_shm_reload_stale_breaker_does_not_close_new(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "sbrk", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_breaker_cfg bc = {3, 1, 30000, 600000, 0};
    uint64_t now = rota_clock_mono();
    _Atomic uint32_t consec = 0;
    uint64_t half =
        rota_breaker_word(ROTA_BREAKER_HALF_OPEN, 1, 0, 0, 1, now + 60 * ROTA_NS_PER_S);
    rota_store(&f.m->phot[0].breaker, half); /* antigravity, one trial out in period 1 */
    rota_store(&f.m->hot[0].breaker, half);
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    assert_int_equal(fx_chain(&f, "sbrk", ROTA_STRAT_HYBRID, 100), 0); /* a reload */
    assert_int_equal(rota_load(&f.m->phot[0].breaker), half);
    /* On the new generation a trial of period 1 fails: open. */
    assert_true(rota_breaker_failure(&f.m->phot[0].breaker, &consec, &bc, now, 0, true, 1));
    assert_true(rota_breaker_failure(&f.m->hot[0].breaker, &consec, &bc, now, 0, true, 1));
    /* On the old one, a stale worker's trial of period 1 succeeds: closed there. */
    rota_breaker_success(&old.phot[0].breaker, &consec, &bc, true, 1);
    rota_breaker_success(&old.hot[0].breaker, &consec, &bc, true, 1);
    assert_int_equal(rota_breaker_state_of(rota_load(&old.phot[0].breaker)),
                     ROTA_BREAKER_CLOSED);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_breaker_state_of(rota_load(&f.m->phot[0].breaker)),
                     ROTA_BREAKER_OPEN);
    assert_int_equal(rota_breaker_state_of(rota_load(&f.m->hot[0].breaker)), ROTA_BREAKER_OPEN);
    /* A change on the old generation that is further along (a later period) is taken. */
    uint64_t later =
        rota_breaker_word(ROTA_BREAKER_HALF_OPEN, 2, 1, 0, 2, now + 60 * ROTA_NS_PER_S);
    rota_store(&old.phot[0].breaker, later);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_load(&f.m->phot[0].breaker), later);
    rota_shm_detach(&old);
    fx_close(&f);
}

/* An operator's reset on the new generation survives a stale worker on the old one that
 * half-opens and fails a trial there meanwhile (a period that, counted on its own, the
 * old generation reaches too). */
static void test_shm_reload_keeps_an_operator_reset(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "rbrk", ROTA_STRAT_HYBRID, 100), 0);
    struct rota_breaker_cfg bc = {3, 1, 30000, 600000, 0};
    uint64_t now = rota_clock_mono();
    _Atomic uint32_t consec = 0;
    uint64_t open = rota_breaker_word(ROTA_BREAKER_OPEN, 1, 0, 0, 7, now - ROTA_NS_PER_S);
    rota_store(&f.m->phot[0].breaker, open); /* open in period 7, its time up */
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    assert_int_equal(fx_chain(&f, "rbrk", ROTA_STRAT_HYBRID, 100), 0); /* a reload */
    rota_breaker_reset(&f.m->phot[0].breaker, NULL); /* the operator, on the new one */
    /* On the old one a stale worker takes the trial of period 8 and it fails: open. */
    unsigned epoch = 0;
    assert_int_equal(rota_breaker_acquire(&old.phot[0].breaker, &bc, now, &epoch),
                     ROTA_BREAKER_PERMIT);
    assert_true(rota_breaker_failure(&old.phot[0].breaker, &consec, &bc, now, 0, true, epoch));
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_breaker_state_of(rota_load(&f.m->phot[0].breaker)),
                     ROTA_BREAKER_CLOSED);
    rota_shm_detach(&old);
    fx_close(&f);
}

/* A worker killed inside a TPM refund (after raising tok_giving, before tok_back) would
 * cut every later refund on the account by the gap: the writer's settle closes a gap
 * that stood still for a second. */
static void test_shm_settle_closes_a_dead_refunds_gap(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "rgap", 2, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    rota_store(&f.m->hot[0].tok_giving, 5000); /* the dead refund's step */
    rota_store(&f.m->hot[1].tok_giving, 7000);
    rota_store(&f.m->hot[1].tok_back, 7000);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_load(&f.m->hot[0].tok_back), 0); /* once is not enough */
    struct timespec ts = {1, 50 * 1000000L};
    nanosleep(&ts, NULL);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_load(&f.m->hot[0].tok_back), 5000);
    assert_int_equal(rota_load(&f.m->hot[0].tok_giving), 5000);
    assert_int_equal(rota_load(&f.m->hot[1].tok_back), 7000); /* no gap: untouched */
    fx_close(&f);
}

/* TPM time given back on the old generation after the copy reaches the new one, so a
 * choice made before a reload and reported after it is still bounded by the refunds
 * made in between. */
static void test_shm_reload_carries_tok_back(void **state)
{
    (void)state;
    struct fx f = {0};
    struct fx_pool_opts o = {.n = 2, .strategy = ROTA_STRAT_GREEDY};
    assert_int_equal(fx_pool_with(&f, "tokb", &o), 0);
    rota_store(&f.m->hot[1].tok_giving, 700);
    rota_store(&f.m->hot[1].tok_back, 700);
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    assert_int_equal(fx_pool_with(&f, "tokb", &o), 0); /* a reload */
    assert_int_equal(rota_load(&f.m->hot[1].tok_back), 700);
    rota_add(&old.hot[1].tok_giving, 50); /* a refund on the old generation, after the copy */
    rota_add(&old.hot[1].tok_back, 50);
    rota_add(&f.m->hot[1].tok_giving, 5); /* and one on the new */
    rota_add(&f.m->hot[1].tok_back, 5);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_load(&f.m->hot[1].tok_giving), 755);
    assert_int_equal(rota_load(&f.m->hot[1].tok_back), 755);
    rota_shm_detach(&old);
    fx_close(&f);
}

/* A window added by a reload starts empty, whatever the account counted before. */
static void test_shm_reload_new_window_starts_empty(void **state)
{
    (void)state;
    struct fx f = {0};
    struct fx_pool_opts o = {.n = 2, .strategy = ROTA_STRAT_GREEDY}; /* no windows */
    assert_int_equal(fx_pool_with(&f, "win", &o), 0);
    rota_store(&f.m->hot[0].use0[0], 1000);
    o.limit = 100; /* the reload adds a daily window of 100 requests */
    assert_int_equal(fx_pool_with(&f, "win", &o), 0);
    double frac = -2;
    assert_true(rota_account_fraction(f.m, 0, 0, &frac, NULL));
    assert_true(frac == 0.0);
    rota_store(&f.m->hot[0].use0[0], 1030);
    assert_true(rota_account_fraction(f.m, 0, 0, &frac, NULL));
    assert_true(frac > 0.29 && frac < 0.31);
    fx_close(&f);
}

static void test_shm_attach_missing_instance(void **state)
{
    (void)state;
    struct rota_shm_map m;
    char err[256] = "";
    int rc = rota_shm_attach("no-such-instance-xyz", &m, err, sizeof(err));
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "/rota.no-such-instance-xyz"));
    assert_non_null(strstr(err, "no such instance"));
}

static void test_shm_bad_instance_names(void **state)
{
    (void)state;
    struct rota_shm_map m;
    char err[256];
    static const char *const bad[] = {"", "a/b", "../x", "sp ace", "dot.ted", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(rota_shm_attach(bad[i], &m, err, sizeof(err)), -EINVAL);
    char longname[100];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[99] = 0;
    assert_int_equal(rota_shm_attach(longname, &m, err, sizeof(err)), -EINVAL);
    assert_int_equal(rota_shm_attach(NULL, &m, err, sizeof(err)), -EINVAL);
    assert_int_equal(rota_shm_attach("x", NULL, err, sizeof(err)), -EINVAL);
}

/* Copy generation 1 of a fresh table into a plain buffer to damage it. */
static void *copy_table(struct fx *f, size_t *size)
{
    assert_int_equal(fx_chain(f, "bad", ROTA_STRAT_HYBRID, 100), 0);
    *size = f->m->size;
    void *p = malloc(*size);
    memcpy(p, f->m->base, *size);
    return p;
}

static void expect_refused(void *p, size_t size, int code, const char *words)
{
    struct rota_shm_map m;
    char err[256] = "";
    assert_int_equal(rota_shm_validate(p, size, &m, err, sizeof(err)), code);
    if (!strstr(err, words))
        fail_msg("message \"%s\" does not say \"%s\"", err, words);
}

static void test_shm_validate_refuses_damage(void **state)
{
    (void)state;
    struct fx f = {0};
    size_t size;
    char *p = copy_table(&f, &size);
    struct rota_shm_header *h = (void *)p;
    struct rota_shm_map m;
    assert_int_equal(rota_shm_validate(p, size, &m, NULL, 0), 0);

    h->magic ^= 1;
    expect_refused(p, size, ROTA_EMAGIC, "magic");
    h->magic ^= 1;
    h->abi = ROTA_SHM_ABI + 1;
    expect_refused(p, size, ROTA_EABI, "ABI");
    h->abi = ROTA_SHM_ABI;
    h->header_size += 8;
    expect_refused(p, size, ROTA_EABI, "header");
    h->header_size -= 8;
    expect_refused(p, size - 1, ROTA_ETRUNC, "its header says");
    expect_refused(p, 100, ROTA_ETRUNC, "smaller than a header");
    h->sec[ROTA_SEC_HOT].elem = 64;
    expect_refused(p, size, ROTA_EABI, "section hot");
    h->sec[ROTA_SEC_HOT].elem = sizeof(struct rota_shm_hot);
    h->sec[ROTA_SEC_SNAPS].off += 8;
    expect_refused(p, size, ROTA_ELAYOUT, "misaligned");
    h->sec[ROTA_SEC_SNAPS].off -= 8;
    h->sec[ROTA_SEC_STRINGS].off = h->total_size;
    expect_refused(p, size, ROTA_ELAYOUT, "runs past");
    h->sec[ROTA_SEC_STRINGS].off = h->sec[ROTA_SEC_CREDS].off;
    h->sec[ROTA_SEC_HOT].off = h->sec[ROTA_SEC_MEMBERS].off; /* workers would write members */
    expect_refused(p, size, ROTA_ELAYOUT, "overlaps");
    fx_close(&f);
    free(p);

    /* Contents: indices and offsets stored in the immutable sections. */
    p = copy_table(&f, &size);
    h = (void *)p;
    struct rota_shm_account *a = (void *)(p + h->sec[ROTA_SEC_ACCOUNTS].off);
    a[2].provider = 99;
    expect_refused(p, size, ROTA_ELAYOUT, "account 2: provider 99");
    a[2].provider = 0;
    a[5].name = 0xfffffff;
    expect_refused(p, size, ROTA_ELAYOUT, "account 5: bad name");
    a[5].name = 1;
    a[1].nwin = ROTA_MAX_WINDOWS + 1;
    expect_refused(p, size, ROTA_ELAYOUT, "windows");
    a[1].nwin = 1;
    a[1].cred_len = 1u << 30;
    expect_refused(p, size, ROTA_ELAYOUT, "credential");
    a[1].cred_len = 0;
    struct rota_shm_member *mb = (void *)(p + h->sec[ROTA_SEC_MEMBERS].off);
    mb[4].account = 1000;
    expect_refused(p, size, ROTA_ELAYOUT, "member 4");
    mb[4].account = 4;
    struct rota_shm_tier *t = (void *)(p + h->sec[ROTA_SEC_TIERS].off);
    t[1].strategy = 99;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 1");
    t[1].strategy = 0;
    t[1].nmembers = 1000;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 1");
    t[1].nmembers = 2;
    t[2].ceiling = 0.0 / 0.0;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 2");
    t[2].ceiling = 0.8;
    t[2].recency_s = 0;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 2");
    t[2].recency_s = 86400;
    t[2].sample = 65;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 2");
    t[2].sample = 8;
    t[3].caps = ROTA_TIER_CAPS + 1; /* a capability this build does not know */
    expect_refused(p, size, ROTA_ELAYOUT, "tier 3: unknown model capability bits 0x4");
    t[3].caps = ROTA_TIER_NO_TOOLS | ROTA_TIER_NO_IMAGES;
    t[3].context = UINT32_MAX; /* any context is a context */
    struct rota_shm_route *r = (void *)(p + h->sec[ROTA_SEC_ROUTES].off);
    r[0].ntiers = 9;
    expect_refused(p, size, ROTA_ELAYOUT, "route 0");
    r[0].ntiers = 4;
    r[0].flags = 0x80;
    expect_refused(p, size, ROTA_ELAYOUT, "route 0: unknown flags 0x80");
    r[0].flags = ROTA_ROUTE_NO_XLATE;
    assert_int_equal(rota_shm_validate(p, size, &m, NULL, 0), 0);
    p[h->sec[ROTA_SEC_STRINGS].off + h->sec[ROTA_SEC_STRINGS].count - 1] = 'x';
    expect_refused(p, size, ROTA_ELAYOUT, "NUL");
    fx_close(&f);
    free(p);

    /* Where calls go: every string offset of a provider, a tier's model and its map. */
    p = copy_table(&f, &size);
    h = (void *)p;
    uint32_t ns = h->sec[ROTA_SEC_STRINGS].count;
    const char *strs = p + h->sec[ROTA_SEC_STRINGS].off;
    struct rota_shm_provider *pv = (void *)(p + h->sec[ROTA_SEC_PROVIDERS].off);
    uint32_t *field[] = {&pv[1].format,      &pv[1].base_url,    &pv[1].path,
                         &pv[1].auth_header, &pv[1].auth_scheme, &pv[1].headers};
    for (size_t k = 0; k < sizeof(field) / sizeof(field[0]); k++) {
        uint32_t keep = *field[k];
        *field[k] = ns; /* one past the strings */
        expect_refused(p, size, ROTA_ELAYOUT, "provider 1: bad target string");
        *field[k] = keep;
    }
    t = (void *)(p + h->sec[ROTA_SEC_TIERS].off);
    t[3].model = ns + 100;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 3: bad model");
    t[3].model = 0;
    /* a list must end with an empty string inside the section: one starting at the last
     * string, "x", runs off its end */
    uint32_t last = ns - 2;
    char keep = strs[last];
    p[h->sec[ROTA_SEC_STRINGS].off + last] = 'x';
    t[3].models = last;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 3: bad model");
    r = (void *)(p + h->sec[ROTA_SEC_ROUTES].off);
    uint32_t models0 = r[0].models;
    r[0].models = last;
    expect_refused(p, size, ROTA_ELAYOUT, "route 0");
    r[0].models = models0;
    p[h->sec[ROTA_SEC_STRINGS].off + last] = keep;
    /* pairs: an odd count is refused (the route's model list is one string long) */
    t[3].models = r[0].models;
    expect_refused(p, size, ROTA_ELAYOUT, "tier 3: bad model");
    t[3].models = 0; /* "": an empty map */
    struct rota_shm_map m2;
    assert_int_equal(rota_shm_validate(p, size, &m2, NULL, 0), 0);
    fx_close(&f);
    free(p);
}

/* Random damage anywhere in the immutable part: never a crash, never a false accept of
 * an out-of-range index (the selection path trusts a validated map). */
static void test_shm_validate_random_damage(void **state)
{
    (void)state;
    struct fx f = {0};
    size_t size;
    char *orig = copy_table(&f, &size);
    char *p = malloc(size);
    struct rota_rng rng = {77};
    uint64_t immut = ((struct rota_shm_header *)orig)->sec[ROTA_SEC_SNAPS].off;
    int refused = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(p, orig, size);
        for (int k = 0; k < 1 + (int)rota_rng_below(&rng, 4); k++)
            p[rota_rng_below(&rng, (uint32_t)immut)] ^= (char)(1 + rota_rng_below(&rng, 255));
        struct rota_shm_map m;
        if (rota_shm_validate(p, size, &m, NULL, 0) != 0) {
            refused++;
            continue;
        }
        for (uint32_t k = 0; k < m.nmembers; k++)
            assert_true(m.members[k].account < m.naccounts);
        for (uint32_t k = 0; k < m.naccounts; k++)
            assert_true(m.accounts[k].provider < m.nproviders);
    }
    assert_true(refused > 1000);
    free(p);
    free(orig);
    fx_close(&f);
}

static void put_segment(const char *name, const void *data, size_t n)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void test_shm_attach_refuses_bad_segments(void **state)
{
    (void)state;
    struct fx f = {0};
    size_t size;
    char *p = copy_table(&f, &size);
    char inst[64], name[128], err[256];
    fx_name(inst, sizeof(inst), "seg");
    /* The copy is of another instance's table: made this one's, as its writer would. */
    snprintf(((struct rota_shm_header *)p)->instance, ROTA_MAX_NAME, "%s", inst);
    struct rota_shm_writer *w;
    assert_int_equal(rota_shm_writer_open(inst, 0600, &w, err, sizeof(err)), 0);
    /* The directory points at generation 1, which we lay down by hand. */
    struct rota_shm_dir *dir;
    rota_shm_name(name, sizeof(name), inst, 0);
    int fd = shm_open(name, O_RDWR, 0);
    dir = mmap(NULL, sizeof(*dir), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    atomic_store(&dir->generation, 1);
    rota_shm_name(name, sizeof(name), inst, 1);
    struct rota_shm_map m;

    put_segment(name, p, 64); /* truncated below a header */
    assert_int_equal(rota_shm_attach(inst, &m, err, sizeof(err)), ROTA_ETRUNC);
    assert_non_null(strstr(err, name));
    put_segment(name, p, size / 2); /* truncated mid-table */
    assert_int_equal(rota_shm_attach(inst, &m, err, sizeof(err)), ROTA_ETRUNC);
    ((struct rota_shm_header *)p)->magic = 0x1234;
    put_segment(name, p, size);
    assert_int_equal(rota_shm_attach(inst, &m, err, sizeof(err)), ROTA_EMAGIC);
    ((struct rota_shm_header *)p)->magic = ROTA_SHM_MAGIC;
    ((struct rota_shm_header *)p)->abi = 99;
    put_segment(name, p, size);
    assert_int_equal(rota_shm_attach(inst, &m, err, sizeof(err)), ROTA_EABI);
    assert_non_null(strstr(err, "ABI 99"));
    ((struct rota_shm_header *)p)->abi = ROTA_SHM_ABI;
    atomic_store(&((struct rota_shm_header *)p)->state, ROTA_GEN_INITIALIZING);
    put_segment(name, p, size);
    assert_int_equal(rota_shm_attach(inst, &m, err, sizeof(err)), ROTA_ENOTREADY);
    atomic_store(&((struct rota_shm_header *)p)->state, ROTA_GEN_READY);
    put_segment(name, p, size);
    assert_int_equal(rota_shm_attach(inst, &m, err, sizeof(err)), 0);
    rota_shm_detach(&m);

    /* A directory that is not one. */
    dir->magic = 42;
    assert_int_equal(rota_shm_attach(inst, &m, err, sizeof(err)), ROTA_EMAGIC);
    assert_non_null(strstr(err, "directory"));
    munmap(dir, sizeof(*dir));
    shm_unlink(name);
    rota_shm_writer_close(w, true);
    free(p);
    fx_close(&f);
}

static void test_shm_publish_refuses_bad_descriptions(void **state)
{
    (void)state;
    char inst[64], err[256];
    fx_name(inst, sizeof(inst), "desc");
    struct rota_shm_writer *w;
    assert_int_equal(rota_shm_writer_open(inst, 0600, &w, err, sizeof(err)), 0);
    struct rota_desc_provider p = {.name = "p"};
    struct rota_desc_account a[2] = {{.id = 5, .name = "a"}, {.id = 5, .name = "b"}};
    uint32_t mem[2] = {0, 1};
    struct rota_desc_tier t = {.provider = 0, .nmembers = 2, .members = mem};
    struct rota_desc_route r = {.name = "r", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 2,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = a,
                          .routes = &r};
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "id 5 is used twice"));
    a[1].id = 0;
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "id 0"));
    a[1].id = 6;
    a[1].provider = 3;
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "provider 3"));
    a[1].provider = 0;
    mem[1] = 9;
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "account 9"));
    mem[1] = 1;
    r.ntiers = 0;
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), -EINVAL);
    r.ntiers = 1;
    a[0].nwin = 1;
    a[0].win[0].pool = 2;
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "pool 2"));
    a[0].nwin = 0;
    assert_int_equal(rota_shm_publish(w, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(rota_shm_publish(NULL, &d, err, sizeof(err)), -EINVAL);
    /* After all of that, nothing was published; then a good one is. */
    uint64_t gen = 1;
    assert_int_equal(rota_shm_current(inst, &gen, NULL, 0), 0);
    assert_int_equal(gen, 0);
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), 0);
    assert_int_equal(rota_shm_current(inst, &gen, NULL, 0), 0);
    assert_int_equal(gen, 1);
    rota_shm_writer_close(w, true);
}

static uintptr_t line_of(const volatile void *p)
{
    return (uintptr_t)p / 64;
}

/* A scan of an account with one window reads one cache line of its settings and one of
 * its snapshot, whatever its index; the supervisor's write of an observation stamp never
 * lands on the line of the next snapshot's sequence. */
static void test_shm_scan_reads_one_line_per_record(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "lines", 40, ROTA_STRAT_HYBRID, NULL), 0);
    const struct rota_shm_map *m = f.m;
    for (uint32_t i = 0; i < m->naccounts; i++) {
        const struct rota_shm_account *a = &m->accounts[i];
        uintptr_t line = line_of(&a->id);
        if (line_of(&a->req_limit_ns) != line || line_of(&a->tok_limit_ns) != line ||
            line_of(&a->win_mp[ROTA_MAX_WINDOWS - 1]) != line || line_of(&a->nwin) != line)
            fail_msg("account %u: a scan reads two lines of its settings", i);
        struct rota_shm_snap *sn = &m->snaps[i];
        line = line_of(&sn->seq);
        if (line_of(&sn->flags) != line || line_of(&sn->win[0].used) != line ||
            line_of(&sn->win[0].base) != line || line_of(&sn->win[0].scale) != line ||
            line_of(&sn->disabled_until) != line)
            fail_msg("account %u: a scan reads two lines of its snapshot", i);
        if (i + 1 < m->naccounts && line_of(&sn->probe_at) == line_of(&m->snaps[i + 1].seq))
            fail_msg("account %u: its observation stamp shares account %u's sequence line", i,
                     i + 1);
    }
    fx_close(&f);
}

static void test_shm_adopt_repairs_open_write_section(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "adopt", 3, ROTA_STRAT_HYBRID, NULL), 0);
    rota_shm_snap_begin(f.m, 1); /* and the writer "dies" here */
    assert_true(rota_load(&f.m->snaps[1].seq) & 1);
    struct rota_shm_writer *w2;
    char err[256];
    assert_int_equal(rota_shm_writer_open(f.instance, 0600, &w2, err, sizeof(err)), 0);
    assert_int_equal(rota_shm_adopt(w2, err, sizeof(err)), 0);
    struct rota_shm_map *m2 = rota_shm_writer_map(w2);
    assert_false(rota_load(&m2->snaps[1].seq) & 1);
    double frac;
    assert_true(rota_account_fraction(m2, 1, 0, &frac, NULL));
    rota_shm_writer_close(w2, false);
    fx_close(&f);
}

/* A supervisor killed inside a write section, with a new "used" stored and the old
 * "limit" and "scale" still there (a mix that reads as almost nothing used), does not
 * hand that mix to the next one: after adoption the account reads at least the
 * pessimistic share and is not chosen over its ceiling, until observed again. */
static void test_shm_adopt_does_not_publish_a_torn_snapshot(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "torn", 1, ROTA_STRAT_HYBRID, NULL), 0); /* limit 10^6 */
    fx_used(&f, 0, 950000); /* 95 %: over the 80 % ceiling */
    struct rota_sel_req q = {.route = 0, .now = rota_clock_mono()};
    struct rota_sel_res r;
    struct rota_rng rng = {7};
    assert_int_equal(rota_select_route(f.m, &q, &rng, &r), ROTA_EEXHAUSTED);
    /* The writer starts the next observation (5 used of a new limit of 10) and dies
     * after storing "used". */
    struct rota_shm_snap *s = rota_shm_snap_begin(f.m, 0);
    rota_store(&s->win[0].used, 5);
    struct rota_shm_writer *w2;
    char err[256];
    assert_int_equal(rota_shm_writer_open(f.instance, 0600, &w2, err, sizeof(err)), 0);
    assert_int_equal(rota_shm_adopt(w2, err, sizeof(err)), 0);
    struct rota_shm_map *m2 = rota_shm_writer_map(w2);
    assert_false(rota_load(&m2->snaps[0].seq) & 1);
    double frac;
    assert_true(rota_account_fraction(m2, 0, 0, &frac, NULL));
    if (frac < m2->providers[0].pessimistic)
        fail_msg("after adoption the torn snapshot reads %.6f used", frac);
    q.now = rota_clock_mono();
    assert_int_equal(rota_select_route(m2, &q, &rng, &r), ROTA_EEXHAUSTED);
    /* The supervisor observes again: the account is back. */
    s = rota_shm_snap_begin(m2, 0);
    rota_shm_snap_window(s, 0, 5, 10, rota_load(&m2->hot[0].use0[0]));
    rota_shm_snap_end(s);
    assert_int_equal(rota_select_route(m2, &q, &rng, &r), 0);
    rota_shm_writer_close(w2, false);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shm_publish_then_attach),
        cmocka_unit_test(test_shm_new_generation_carries_state_by_id),
        cmocka_unit_test(test_shm_catch_up_counts_on_old_generation),
        cmocka_unit_test(test_shm_reload_merges_rate_and_gates),
        cmocka_unit_test(test_shm_reload_new_window_starts_empty),
        cmocka_unit_test(test_shm_reload_keeps_provider_breakers),
        cmocka_unit_test(test_shm_reload_stale_breaker_does_not_close_new),
        cmocka_unit_test(test_shm_reload_keeps_an_operator_reset),
        cmocka_unit_test(test_shm_reload_carries_tok_back),
        cmocka_unit_test(test_shm_settle_closes_a_dead_refunds_gap),
        cmocka_unit_test(test_shm_attach_missing_instance),
        cmocka_unit_test(test_shm_bad_instance_names),
        cmocka_unit_test(test_shm_validate_refuses_damage),
        cmocka_unit_test(test_shm_validate_random_damage),
        cmocka_unit_test(test_shm_attach_refuses_bad_segments),
        cmocka_unit_test(test_shm_publish_refuses_bad_descriptions),
        cmocka_unit_test(test_shm_adopt_repairs_open_write_section),
        cmocka_unit_test(test_shm_scan_reads_one_line_per_record),
        cmocka_unit_test(test_shm_adopt_does_not_publish_a_torn_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
