/* test_clientkey: the dispatch pool's client keys, in the table (built, found, validated,
 * carried across generations) and through librota (who sends, which route, RPM/TPM). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "gcra.h"
#include "hash.h"
#include "rota_int.h"

/* Three routes ("chat" serving model "gpt-x", "code", "embed") over one account, and
 * the keys "team-a" (key "sk-a": chat only, RPM 2) and "team-b" ("sk-b": every route,
 * TPM 1000). */
struct kt {
    struct rota_desc_provider p;
    struct rota_desc_account a;
    uint32_t member;
    struct rota_desc_tier t;
    struct rota_desc_route r[3];
    uint32_t a_routes[1];
    struct rota_desc_client_key k[2];
    struct rota_desc d;
};

static const char *const chat_models[] = {"gpt-x", NULL};

static void kt_init(struct kt *x)
{
    memset(x, 0, sizeof(*x));
    x->p = (struct rota_desc_provider){.name = "prov", .kind = "openai"};
    x->a = (struct rota_desc_account){.id = 7, .name = "acct", .credential = "sk-upstream"};
    x->t = (struct rota_desc_tier){.provider = 0, .nmembers = 1, .members = &x->member};
    x->r[0] = (struct rota_desc_route){
        .name = "chat", .models = chat_models, .ntiers = 1, .tiers = &x->t};
    x->r[1] = (struct rota_desc_route){.name = "code", .ntiers = 1, .tiers = &x->t};
    x->r[2] = (struct rota_desc_route){.name = "embed", .ntiers = 1, .tiers = &x->t};
    x->d = (struct rota_desc){.nproviders = 1,
                              .naccounts = 1,
                              .nroutes = 3,
                              .providers = &x->p,
                              .accounts = &x->a,
                              .routes = x->r,
                              .nkeys = 2,
                              .keys = x->k};
    const char *names[] = {"gpt-x"};
    assert_int_equal(rota_desc_key_routes(&x->d, names, 1, x->a_routes, NULL, 0), 0);
    x->k[0] = (struct rota_desc_client_key){
        .name = "team-a", .routes = x->a_routes, .nroutes = 1, .rpm = 2};
    x->k[1] = (struct rota_desc_client_key){.name = "team-b", .tpm = 1000};
    assert_int_equal(rota_client_key_hash("sk-a", 4, x->k[0].sha256), 0);
    assert_int_equal(rota_client_key_hash("sk-b", 4, x->k[1].sha256), 0);
}

static void test_clientkey_hash_is_sha256(void **state)
{
    (void)state;
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41,
                                    0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03,
                                    0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff,
                                    0x61, 0xf2, 0x00, 0x15, 0xad}; /* FIPS 180-2 */
    uint8_t out[32];
    assert_int_equal(rota_client_key_hash("abc", 3, out), 0);
    assert_memory_equal(out, abc, 32);
}

static void test_clientkey_routes_by_name_or_model(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    const char *names[] = {"embed", "gpt-x", "code"};
    uint32_t out[3];
    assert_int_equal(rota_desc_key_routes(&x.d, names, 3, out, NULL, 0), 0);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 0);
    assert_int_equal(out[2], 1);
    const char *bad[] = {"chat", "nope"};
    char err[200];
    assert_int_equal(rota_desc_key_routes(&x.d, bad, 2, out, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "\"nope\""));
}

static void test_clientkey_table_holds_and_finds_keys(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "ckfind", &x.d), 0);
    struct rota_shm_map m;
    char err[256];
    assert_int_equal(rota_shm_attach(f.instance, &m, err, sizeof(err)), 0);
    assert_int_equal(m.nckeys, 2);
    assert_int_equal(rota_shm_ckey_find(&m, x.k[0].sha256), 0);
    assert_int_equal(rota_shm_ckey_find(&m, x.k[1].sha256), 1);
    assert_string_equal(rota_shm_str(&m, m.ckeys[1].name), "team-b");
    uint8_t near[32]; /* the same first 8 bytes (the index's key), another hash */
    memcpy(near, x.k[0].sha256, 32);
    near[31] ^= 1;
    assert_int_equal(rota_shm_ckey_find(&m, near), ROTA_NONE);
    assert_true(rota_shm_ckey_allows(&m, 0, 0));
    assert_false(rota_shm_ckey_allows(&m, 0, 1));
    assert_true(rota_shm_ckey_allows(&m, 1, 2));
    assert_int_not_equal(m.ckeys[0].req_interval_ns, 0);
    assert_int_equal(m.ckeys[0].tok_interval_ns, 0);
    assert_int_equal((uintptr_t)&m.khot[1] % 64, 0);
    /* nothing of a key but its hash: "sk-a" is nowhere in the segment */
    assert_null(memmem(m.base, m.size, "sk-a", 4));
    rota_shm_detach(&m);
    fx_close(&f);
}

static void test_clientkey_publish_refuses_bad_keys(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    struct fx f = {0};
    char err[256];
    fx_name(f.instance, sizeof(f.instance), "ckbad");
    assert_int_equal(rota_shm_writer_open(f.instance, 0600, &f.w, err, sizeof(err)), 0);
    memcpy(x.k[1].sha256, x.k[0].sha256, 32); /* the same key twice */
    assert_int_equal(rota_shm_publish(f.w, &x.d, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "team-b"));
    kt_init(&x);
    x.k[1].name = "team-a";
    assert_int_equal(rota_shm_publish(f.w, &x.d, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "name used twice"));
    kt_init(&x);
    x.a_routes[0] = 3;
    assert_int_equal(rota_shm_publish(f.w, &x.d, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "team-a"));
    kt_init(&x);
    x.k[0].name = NULL;
    assert_int_equal(rota_shm_publish(f.w, &x.d, err, sizeof(err)), -EINVAL);
    rota_shm_writer_close(f.w, true);
}

static void expect_refused(void *p, size_t size, const char *what)
{
    struct rota_shm_map m;
    char err[256] = "";
    assert_int_equal(rota_shm_validate(p, size, &m, err, sizeof(err)), ROTA_ELAYOUT);
    if (!strstr(err, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err);
}

static void test_clientkey_validate_refuses_a_damaged_key_section(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "ckdmg", &x.d), 0);
    size_t size = f.m->size;
    char *p = malloc(size);
    memcpy(p, f.m->base, size);
    struct rota_shm_header *h = (void *)p;
    struct rota_shm_map m;
    assert_int_equal(rota_shm_validate(p, size, &m, NULL, 0), 0);
    struct rota_shm_ckey *k = (void *)(p + h->sec[ROTA_SEC_CKEYS].off), orig[2];
    uint32_t *kr = (void *)(p + h->sec[ROTA_SEC_CKROUTES].off);
    memcpy(orig, k, sizeof(orig));

    kr[0] = 3; /* a route the table does not have */
    expect_refused(p, size, "client key 0: route 3 out of range");
    kr[0] = 0;
    k[0].nroutes = 2; /* past the routes section */
    expect_refused(p, size, "client key 0: routes");
    k[0].nroutes = 1;
    k[1].name = h->sec[ROTA_SEC_STRINGS].count;
    expect_refused(p, size, "client key 1: bad name offset");
    k[1].name = orig[1].name;
    k[1].sha256[0] ^= 1; /* no longer where the index says */
    expect_refused(p, size, "client key 1: not where the index says");
    k[1].sha256[0] ^= 1;
    k[0].req_limit_ns = k[0].req_interval_ns - 1;
    expect_refused(p, size, "client key 0: bad rate limits");
    k[0].req_limit_ns = orig[0].req_limit_ns;
    h->sec[ROTA_SEC_KHOT].count = 1;
    expect_refused(p, size, "per-key sections disagree");
    h->sec[ROTA_SEC_KHOT].count = 2;
    struct rota_shm_index *ix = (void *)(p + h->sec[ROTA_SEC_INDEX].off);
    uint32_t slot = rota_index_home(rota_shm_ckey_word(x.k[0].sha256), h->index_mask);
    while (ix[slot].kind != ROTA_IDX_CKEY || ix[slot].value != 0)
        slot = (slot + 1) & h->index_mask;
    ix[slot].value = 2; /* a key past the section */
    expect_refused(p, size, "index slot");
    ix[slot].value = 0;
    assert_int_equal(rota_shm_validate(p, size, &m, NULL, 0), 0);
    free(p);
    fx_close(&f);
}

/* A reload keeps a key's rate words (by hash, wherever the key now is), and what a worker
 * still on the old generation admits after the copy is charged to the new one. */
static void test_clientkey_reload_keeps_rate_state(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "ckcarry", &x.d), 0);
    struct rota_shm_map old;
    assert_int_equal(rota_shm_attach(f.instance, &old, NULL, 0), 0);
    uint64_t now = rota_clock_mono();
    struct rota_gcra rq = {old.ckeys[0].req_interval_ns, old.ckeys[0].req_limit_ns};
    assert_true(rota_gcra_admit(&old.khot[0].gcra_req, &rq, now, 1, NULL));
    rota_add(&old.khot[0].admitted, 1);
    struct rota_desc_client_key swapped[2] = {x.k[1], x.k[0]}; /* team-a is now key 1 */
    x.d.keys = swapped;
    assert_int_equal(fx_publish(&f, "ckcarry", &x.d), 0);
    assert_int_equal(rota_shm_ckey_find(f.m, x.k[0].sha256), 1);
    assert_int_equal(rota_load(&f.m->khot[1].gcra_req), rota_load(&old.khot[0].gcra_req));
    assert_int_equal(rota_load(&f.m->khot[1].admitted), 1);
    assert_int_equal(rota_load(&f.m->khot[0].gcra_req), 0);
    /* a stale worker spends the rest of the minute on the old generation */
    assert_true(rota_gcra_admit(&old.khot[0].gcra_req, &rq, now, 1, NULL));
    assert_false(rota_gcra_admit(&old.khot[0].gcra_req, &rq, now, 1, NULL));
    rota_shm_settle(f.w, false);
    assert_false(rota_gcra_admit(&f.m->khot[1].gcra_req, &rq, now, 1, NULL));
    rota_shm_detach(&old);
    fx_close(&f);
}

/* A worker killed inside a key's TPM refund leaves tok_giving ahead of tok_back: the
 * writer closes the gap once it has stood still for a second, as for accounts. */
static void test_clientkey_settle_closes_a_dead_refunds_gap(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "ckgap", &x.d), 0);
    rota_store(&f.m->khot[1].tok_giving, 4000); /* the dead refund's step */
    rota_store(&f.m->hot[0].tok_giving, 900);   /* and an account's: both are closed */
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_load(&f.m->khot[1].tok_back), 0); /* once is not enough */
    struct timespec ts = {1, 50 * 1000000L};
    nanosleep(&ts, NULL);
    rota_shm_settle(f.w, false);
    assert_int_equal(rota_load(&f.m->khot[1].tok_back), 4000);
    assert_int_equal(rota_load(&f.m->hot[0].tok_back), 900);
    assert_int_equal(rota_load(&f.m->khot[0].tok_back), 0); /* no gap: untouched */
    fx_close(&f);
}

static void test_clientkey_without_keys_everything_is_let_in(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    x.d.nkeys = 0;
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "ckopen", &x.d), 0);
    rota_t *h;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    rota_route_t r;
    assert_int_equal(rota_route(h, "code", &r), 0);
    rota_client_key ck;
    uint64_t ra = 0;
    assert_int_equal(rota_client_key_find(h, NULL, 0, &ck), 0);
    assert_int_equal(ck.index, ROTA_NONE);
    assert_string_equal(ck.name, "");
    assert_int_equal(rota_client_key_admit(h, &ck, &r, 100, &ra), 0);
    assert_int_equal(rota_client_key_find(h, "anything", 8, &ck), 0);
    assert_int_equal(rota_client_key_admit(h, &ck, &r, 100, &ra), 0);
    rota_client_key_done(h, &ck, 10);
    rota_detach(h);
    fx_close(&f);
}

static void test_clientkey_who_which_route_how_fast(void **state)
{
    (void)state;
    struct kt x;
    kt_init(&x);
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "ckadmit", &x.d), 0);
    rota_t *h;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    rota_route_t chat, code;
    assert_int_equal(rota_route(h, "gpt-x", &chat), 0);
    assert_int_equal(rota_route(h, "code", &code), 0);
    rota_client_key ck;
    uint64_t ra = 0;
    assert_int_equal(rota_client_key_find(h, NULL, 0, &ck), 401);
    assert_int_equal(rota_client_key_find(h, "sk-c", 4, &ck), 401);
    assert_int_equal(rota_client_key_find(h, "sk-a", 3, &ck), 401); /* a prefix is not it */
    assert_int_equal(rota_client_key_find(h, "sk-a", 4, &ck), 0);
    assert_string_equal(ck.name, "team-a");
    assert_int_equal(rota_client_key_admit(h, &ck, &code, 10, &ra), 403);
    /* RPM 2: two requests, then the third waits about 30 s */
    assert_int_equal(rota_client_key_admit(h, &ck, &chat, 10, &ra), 0);
    rota_client_key_done(h, &ck, 10);
    assert_int_equal(rota_client_key_find(h, "sk-a", 4, &ck), 0);
    assert_int_equal(rota_client_key_admit(h, &ck, &chat, 10, &ra), 0);
    rota_client_key_done(h, &ck, 10);
    assert_int_equal(rota_client_key_find(h, "sk-a", 4, &ck), 0);
    assert_int_equal(rota_client_key_admit(h, &ck, &chat, 10, &ra), 429);
    assert_true(ra > 0 && ra <= 30000);
    assert_false(ck.admitted);
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(f.instance, &m, NULL, 0), 0);
    assert_int_equal(rota_load(&m.khot[0].admitted), 2);
    assert_int_equal(rota_load(&m.khot[0].refused), 1);
    assert_int_equal(rota_load(&m.khot[0].limited), 1);
    assert_int_equal(rota_load(&m.khot[0].tokens), 20);
    /* TPM 1000: 600 estimated, 100 used, the rest given back: 600 more fit; without the
     * refund they would not */
    assert_int_equal(rota_client_key_find(h, "sk-b", 4, &ck), 0);
    assert_string_equal(ck.name, "team-b");
    assert_int_equal(rota_client_key_admit(h, &ck, &code, 600, &ra), 0);
    rota_client_key_done(h, &ck, 100);
    rota_client_key_done(h, &ck, 100); /* once only */
    assert_int_equal(rota_load(&m.khot[1].tokens), 100);
    rota_client_key ck2;
    assert_int_equal(rota_client_key_find(h, "sk-b", 4, &ck2), 0);
    assert_int_equal(rota_client_key_admit(h, &ck2, &code, 600, &ra), 0);
    rota_client_key ck3; /* 100 + 600 held: 600 more do not fit */
    assert_int_equal(rota_client_key_find(h, "sk-b", 4, &ck3), 0);
    assert_int_equal(rota_client_key_admit(h, &ck3, &code, 600, &ra), 429);
    assert_true(ra > 0);
    /* more used than estimated is charged: 600 held become 900, and the minute is full
     * (100 + 600 held would have let 50 more in) */
    rota_client_key_done(h, &ck2, 900);
    assert_int_equal(rota_client_key_admit(h, &ck3, &code, 50, &ra), 429);
    rota_shm_detach(&m);
    rota_detach(h);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clientkey_hash_is_sha256),
        cmocka_unit_test(test_clientkey_routes_by_name_or_model),
        cmocka_unit_test(test_clientkey_table_holds_and_finds_keys),
        cmocka_unit_test(test_clientkey_publish_refuses_bad_keys),
        cmocka_unit_test(test_clientkey_validate_refuses_a_damaged_key_section),
        cmocka_unit_test(test_clientkey_reload_keeps_rate_state),
        cmocka_unit_test(test_clientkey_settle_closes_a_dead_refunds_gap),
        cmocka_unit_test(test_clientkey_without_keys_everything_is_let_in),
        cmocka_unit_test(test_clientkey_who_which_route_how_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
