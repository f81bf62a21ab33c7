/* test_journal_redis: rotad's journal with a real redis-server: the state restored from
 * Redis alone, and from the newer of the file and Redis; Redis killed under load while
 * dispatch and the journal go on, and the full resend once it is back, providers
 * included; Redis behind a password on a Unix socket, the password never shown; records
 * a real second user forged in Redis, and another instance's records under a shared
 * prefix, never restored. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "journal_it.h"
#include "jrecord.h"
#include "reason.h"
#include "rotad_harness.h"
#include "stranger.h"

/* ---- the journal's config and status ---- */

/* A journal section with Redis at "r" (TCP), the file on or off, and "more" (e.g.
 * ", buffer: 50") inside the redis map. */
static void redis_journal(char *buf, size_t n, const struct it_redis *r, bool file, bool redis,
                          const char *more)
{
    snprintf(buf, n,
             "journal:\n  file: {enabled: %s}\n"
             "  redis: {enabled: %s, host: 127.0.0.1, port: %d%s}\n",
             file ? "true" : "false", redis ? "true" : "false", r->port, more ? more : "");
}

/* The value at "path" in `rotactl --json journal` is true. */
static bool journal_true(struct it *t, const char *path)
{
    json_t *j = jit_ctl_json(t, "journal");
    bool v = json_is_true(jit_at(j, path));
    json_decref(j);
    return v;
}

/* ---- Redis ---- */

static redisContext *redis_open(const struct it_redis *r)
{
    struct timeval tv = {2, 0};
    redisContext *c = r->socket[0] ? redisConnectUnixWithTimeout(r->socket, tv)
                                   : redisConnectWithTimeout("127.0.0.1", r->port, tv);
    assert_non_null(c);
    if (c->err)
        fail_msg("redis: %s", c->errstr);
    if (r->password[0]) {
        redisReply *x = redisCommand(c, "AUTH %s", r->password);
        assert_non_null(x);
        assert_int_equal(x->type, REDIS_REPLY_STATUS);
        freeReplyObject(x);
    }
    return c;
}

static long long redis_hlen(redisContext *c, const char *key)
{
    redisReply *x = redisCommand(c, "HLEN %s", key);
    assert_non_null(x);
    long long n = x->type == REDIS_REPLY_INTEGER ? x->integer : -1;
    freeReplyObject(x);
    return n;
}

/* The record in field "field" of hash "key", decoded as instance "t"'s; false when there
 * is none. */
static bool redis_record(struct it *t, redisContext *c, const char *key, const char *field,
                         struct rota_jrec *r)
{
    struct rota_jkey k;
    jit_identity(t, &k);
    redisReply *x = redisCommand(c, "HGET %s %s", key, field);
    assert_non_null(x);
    bool ok = x->type == REDIS_REPLY_STRING &&
              rota_jrec_decode(x->str, x->len, &k, 0, r, NULL, 0) == 0;
    freeReplyObject(x);
    return ok;
}

/* How many fields of hash "key" start with "prefix". */
static int redis_fields(redisContext *c, const char *key, const char *prefix)
{
    redisReply *x = redisCommand(c, "HKEYS %s", key);
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    int n = 0;
    for (size_t i = 0; i < x->elements; i++)
        n += strncmp(x->element[i]->str, prefix, strlen(prefix)) == 0;
    freeReplyObject(x);
    return n;
}

/* Wait until the journal is connected to Redis again, after a reconnect, with nothing
 * waiting; fails the test if that does not happen. */
static void wait_redis_back(struct it *t)
{
    bool back = false;
    for (int i = 0; i < 300 && !back; i++) {
        jit_sleep_ms(50);
        json_t *j = jit_ctl_json(t, "journal");
        back = json_is_true(jit_at(j, "redis.connected")) && jit_num(j, "redis.queue") == 0 &&
               jit_num(j, "redis.reconnects") >= 1;
        if (!back && i == 299)
            fail_msg("Redis did not come back: %s", json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }
}

/* Does the hash hold every account of "accs" at its state there (selections and whether
 * it is off)? The first difference in "why". */
static bool redis_holds(struct it *t, redisContext *c, const char *key, json_t *accs, char *why,
                        size_t n)
{
    size_t i;
    json_t *a;
    json_array_foreach(accs, i, a)
    {
        char field[32];
        snprintf(field, sizeof(field), "a:%" PRIx64, jit_account_id(a));
        struct rota_jrec r;
        if (!redis_record(t, c, key, field, &r)) {
            snprintf(why, n, "%s (%s): no record", jit_str(a, "name"), field);
            return false;
        }
        bool off = (r.u.acc.flags & ROTA_SNAP_DISABLED) || r.u.acc.wdisable;
        if (r.type != ROTA_JREC_ACCOUNT || r.u.acc.id != jit_account_id(a) ||
            r.u.acc.requests != (uint64_t)jit_num(a, "selections") ||
            off != (*jit_str(a, "off") != 0)) {
            snprintf(why, n, "%s: the record says %" PRIu64 " requests%s, the table %.0f%s%s",
                     jit_str(a, "name"), r.u.acc.requests, off ? ", off" : "",
                     jit_num(a, "selections"), *jit_str(a, "off") ? ", off " : "",
                     jit_str(a, "off"));
            return false;
        }
    }
    return true;
}

/* ---- the cases ---- */

/* Redis alone: the file and the table gone, Redis has it all. */
static void test_journal_redis_restores_without_file(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    it_init(&t, "jredis");
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, NULL), 0);
    char journal[512];
    redis_journal(journal, sizeof(journal), &r, true, true, NULL);
    jit_config(&t, 4, journal);
    assert_int_equal(it_start(&t), 0);
    time_t since = jit_make_state(&t);
    jit_wait_journaled(&t, JIT_REDIS_TOO);
    json_t *j = jit_ctl_json(&t, "journal");
    assert_true(jit_written_since(j, "redis.last_write", since));
    assert_true(jit_written_since(j, "file.last_write", since));
    json_decref(j);
    json_t *before = jit_ctl_json(&t, "accounts");
    uint64_t t0 = jit_mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    char path[256];
    jit_journal_path(&t, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "redis");
    json_t *after = jit_ctl_json(&t, "accounts");
    jit_assert_restored(before, after, jit_mono_ms() - t0, NULL);
    json_decref(before);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* One run of test_journal_newer_of_file_and_redis_wins: the table dropped, rotad
 * started on "journal", the state it restored checked by "check" (may be NULL), then "actions"
 * (rotactl commands, ";" between), journaled, and rotad stopped. */
static void run_once(struct it *t, const char *journal, const char *from,
                     void (*check)(json_t *accs), const char *actions, bool redis)
{
    it_drop_table(t);
    jit_config(t, 4, journal);
    assert_int_equal(it_start(t), 0);
    if (from)
        jit_assert_restored_from(t, from);
    if (check) {
        json_t *a = jit_ctl_json(t, "accounts");
        check(a);
        json_decref(a);
    }
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", actions ? actions : "");
    for (char *save = NULL, *c = strtok_r(buf, ";", &save); c; c = strtok_r(NULL, ";", &save))
        jit_ctl(t, c);
    jit_wait_journaled(t, redis ? JIT_REDIS_TOO : JIT_FILE_ONLY);
    assert_int_equal(it_stop(t, SIGTERM), 0);
}

/* X: a1 off for an hour. */
static void is_x(json_t *a)
{
    assert_string_equal(jit_str(jit_account(a, "a1"), "off"), "operator");
    assert_string_equal(jit_str(jit_account(a, "a2"), "off"), "");
    assert_int_equal(jit_num(jit_account(a, "a0"), "cooldown_left_ms"), 0);
}

/* Y: a1 back on, a2 off for two hours. */
static void is_y(json_t *a)
{
    assert_string_equal(jit_str(jit_account(a, "a1"), "off"), "");
    assert_string_equal(jit_str(jit_account(a, "a2"), "off"), "operator");
    assert_true(jit_num(jit_account(a, "a2"), "off_left_ms") > 2 * 3600000 - 120000);
    assert_int_equal(jit_num(jit_account(a, "a0"), "cooldown_left_ms"), 0);
}

/* Z: a2 back on, a0 cooling down for 15 minutes. */
static void is_z(json_t *a)
{
    assert_string_equal(jit_str(jit_account(a, "a1"), "off"), "");
    assert_string_equal(jit_str(jit_account(a, "a2"), "off"), "");
    assert_true(jit_num(jit_account(a, "a0"), "cooldown_left_ms") > 15 * 60000 - 120000);
}

/* File and Redis both configured: the newer one wins, whichever it is. */
static void test_journal_newer_of_file_and_redis_wins(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    it_init(&t, "jnewer");
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, NULL), 0);
    char both[512], file_only[512], redis_only[512];
    redis_journal(both, sizeof(both), &r, true, true, NULL);
    redis_journal(file_only, sizeof(file_only), &r, true, false, NULL);
    redis_journal(redis_only, sizeof(redis_only), &r, false, true, NULL);
    /* (a) X to both; Y to the file alone; then both configured: the file is newer. */
    run_once(&t, both, NULL, NULL, "disable a1 --for 1h", true);
    run_once(&t, file_only, "file", is_x, "enable a1;disable a2 --for 2h", false);
    run_once(&t, both, "file", is_y, NULL, true);
    /* (b) Z to Redis alone; then both configured: Redis is newer. */
    run_once(&t, redis_only, "redis", is_y, "enable a2;cooldown a0 15m", true);
    it_drop_table(&t);
    jit_config(&t, 4, both);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "redis");
    json_t *a = jit_ctl_json(&t, "accounts");
    is_z(a);
    json_decref(a);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* A redis-server and rotad journaling to it and to the file, with a buffer of 50
 * records over 35 accounts (a whole pass fits). */
static void start_small_buffer(struct it *t, struct it_redis *r, const char *tag)
{
    it_init(t, tag);
    assert_int_equal(it_redis_start(r, t->dir, 0, NULL, NULL), 0);
    char journal[512];
    redis_journal(journal, sizeof(journal), r, true, true, ", buffer: 50");
    jit_config(t, 32, journal);
    assert_int_equal(it_start(t), 0);
}

/* Redis killed under load and started again: dispatch goes on, the buffer stays
 * within its bound and drops the oldest, and once Redis is back the hash holds every
 * account's latest state, which only the full resend after drops can bring: alpha is
 * drained while Redis is away and more than a buffer of newer records (beta's, which
 * the load falls to) pushes the drain's records out. */
static void test_journal_redis_outage_under_load(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    start_small_buffer(&t, &r, "joutage");
    struct it_load l;
    it_load_start(&l, t.instance, 2);
    JIT_WAIT_FOR(it_load_ok(&l) > 5000 && jit_journal_num(&t, "redis.written") > 100);
    json_t *j = jit_ctl_json(&t, "journal");
    assert_true(json_is_true(jit_at(j, "redis.connected")));
    assert_int_equal(jit_num(j, "redis.capacity"), 50);
    assert_int_equal(jit_num(j, "redis.dropped"), 0); /* Redis keeps up */
    json_decref(j);

    assert_int_equal(it_redis_stop(&r, SIGKILL), 128 + SIGKILL);
    uint64_t ok0 = it_load_ok(&l);
    double passes0 = -1, max_queue = 0, dropped = 0;
    bool down = false, full = false;
    for (int i = 0; i < 300 && !(down && full && dropped > 0); i++) {
        jit_sleep_ms(50);
        j = jit_ctl_json(&t, "journal");
        if (passes0 < 0)
            passes0 = jit_num(j, "passes");
        down = !json_is_true(jit_at(j, "redis.connected"));
        double q = jit_num(j, "redis.queue");
        max_queue = q > max_queue ? q : max_queue;
        full = q == 50;
        dropped = jit_num(j, "redis.dropped");
        json_decref(j);
    }
    assert_true(down);
    assert_int_equal(max_queue, 50); /* up to its bound, never past it */
    assert_true(dropped > 0);
    JIT_WAIT_FOR(it_load_ok(&l) > ok0 + 5000);
    assert_true(it_load_ok(&l) > ok0 + 5000); /* dispatch never waited for Redis */
    JIT_WAIT_FOR(jit_journal_num(&t, "passes") > passes0 + 10);
    j = jit_ctl_json(&t, "journal");
    assert_true(jit_num(j, "passes") > passes0 + 10); /* nor did the journal */
    assert_false(json_is_true(jit_at(j, "redis.connected")));
    assert_true(jit_num(j, "redis.queue") <= 50);
    assert_true(jit_num(j, "redis.errors") > 0);
    assert_true(*jit_str(j, "redis.last_error"));
    json_decref(j);

    jit_ctl(&t, "drain alpha");
    jit_wait_passes(&t, 2);
    double records = jit_journal_num(&t, "records"), ok1 = (double)it_load_ok(&l);
    JIT_WAIT_FOR(jit_journal_num(&t, "records") > records + 60);
    assert_true(jit_journal_num(&t, "records") > records + 60);
    assert_true((double)it_load_ok(&l) > ok1); /* on beta now */
    it_load_stop(&l);
    for (int i = 0; i < l.n; i++)
        assert_int_equal(l.c[i].errors, 0);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    j = jit_ctl_json(&t, "journal");
    assert_true(jit_num(j, "redis.dropped") > dropped + 32);
    assert_true(jit_num(j, "redis.queue") <= 50);
    json_decref(j);

    assert_int_equal(it_redis_restart(&r), 0);
    wait_redis_back(&t);
    json_t *accs = jit_ctl_json(&t, "accounts");
    assert_int_equal(json_array_size(accs), 35);
    assert_string_equal(jit_str(jit_account(accs, "a7"), "off"), "drain");
    char key[160], why[256] = "";
    snprintf(key, sizeof(key), "rota:%s:state", t.instance);
    redisContext *c = redis_open(&r);
    JIT_WAIT_FOR(redis_holds(&t, c, key, accs, why, sizeof(why)));
    if (!redis_holds(&t, c, key, accs, why, sizeof(why)))
        fail_msg("%s does not hold the latest state: %s", key, why);
    assert_int_equal(redis_fields(c, key, "a:"), 35);
    j = jit_ctl_json(&t, "journal");
    assert_int_equal(jit_num(j, "redis.queue"), 0);
    assert_true(jit_num(j, "redis.reconnects") >= 1);
    json_decref(j);
    redisFree(c);
    json_decref(accs);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* The full resend after drops covers the providers too. Redis is paused (SIGSTOP, a
 * network partition: it keeps its data) while alpha's own breaker opens and then more
 * records than the buffer holds (a drain, then load on the next tiers) push that record
 * out; once Redis answers again the hash must say alpha's breaker is open, as the table
 * does. */
static void test_journal_redis_resend_after_drops_has_providers(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    start_small_buffer(&t, &r, "jprov");
    jit_calls(&t, "chat", 100, 200);
    jit_wait_journaled(&t, JIT_REDIS_TOO);
    char key[160];
    snprintf(key, sizeof(key), "rota:%s:state", t.instance);
    redisContext *c = redis_open(&r);
    struct rota_jrec p;
    assert_true(redis_record(&t, c, key, "p:alpha", &p));
    assert_int_equal(p.u.prov.breaker.state, 0); /* closed */
    redisFree(c);

    assert_int_equal(kill(r.pid, SIGSTOP), 0);
    /* A change the paused Redis cannot answer: the sender gives up on it and is
     * disconnected before the breaker's record exists (so no batch holding that record
     * waits in Redis's socket for it to wake up). */
    jit_ctl(&t, "cooldown l0 1m");
    JIT_WAIT_FOR(!journal_true(&t, "redis.connected"));
    assert_false(journal_true(&t, "redis.connected"));
    jit_calls(&t, "pin0", 3, 503); /* alpha's own breaker opens */
    json_t *accs = jit_ctl_json(&t, "accounts");
    assert_true(json_is_true(jit_at(jit_account(accs, "a5"), "provider_breaker_open")));
    json_decref(accs);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    double dropped = jit_journal_num(&t, "redis.dropped");
    /* 32 records in one pass, then beta's and the local model's under load, pass after
     * pass: more than the buffer holds, so the breaker's record is dropped */
    jit_ctl(&t, "drain alpha");
    struct it_load l;
    it_load_start(&l, t.instance, 1);
    jit_sleep_ms(2500);
    it_load_stop(&l);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    json_t *j = jit_ctl_json(&t, "journal");
    assert_false(json_is_true(jit_at(j, "redis.connected")));
    assert_true(jit_num(j, "redis.dropped") > dropped);
    json_decref(j);
    assert_int_equal(kill(r.pid, SIGCONT), 0);
    wait_redis_back(&t);

    c = redis_open(&r);
    char why[256] = "";
    accs = jit_ctl_json(&t, "accounts");
    JIT_WAIT_FOR(
        redis_holds(&t, c, key, accs, why, sizeof(why))); /* the accounts were resent */
    if (!redis_holds(&t, c, key, accs, why, sizeof(why)))
        fail_msg("%s does not hold the latest state: %s", key, why);
    json_decref(accs);
    assert_true(redis_record(&t, c, key, "p:alpha", &p));
    bool in_hash = p.u.prov.breaker.state != 0;
    redisFree(c);
    /* What a user notices: restored from Redis, alpha's breaker must still be open. */
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    char path[256];
    jit_journal_path(&t, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "redis");
    accs = jit_ctl_json(&t, "accounts");
    bool restored = json_is_true(jit_at(jit_account(accs, "a5"), "provider_breaker_open"));
    assert_string_equal(jit_str(jit_account(accs, "a7"), "off"), "drain");
    json_decref(accs);
    if (!in_hash || !restored)
        fail_msg("alpha's breaker was open when rotad stopped; restored from Redis it is %s, "
                 "and %s p:alpha says %s (its record was dropped while Redis was away, and "
                 "the resend after drops covers accounts only)",
                 restored ? "open" : "closed", key, in_hash ? "open" : "closed");
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* ---- records nobody but the instance can make ---- */

/* What the stranger forges: every account of the victim off, in its state hash. */
struct forge {
    int port;
    char key[160];   /* the victim's state hash */
    char ident[256]; /* the victim's identity file, which she must not be able to read */
    uint64_t ids[16];
    int n;
};

/* The version 1 form of the version 2 record "v2" ([n, 2, c4 10 id, ..., c4 10 mac] to
 * [n - 2, 1, ...]): what rota wrote before records carried an identity. */
static size_t v1_of(const uint8_t *v2, size_t len, uint8_t *out)
{
    size_t h = (v2[0] & 0xf0) == 0x90 ? 1 : 3, o = 0;
    uint32_t count = h == 1 ? v2[0] & 0x0f : (uint32_t)v2[1] << 8 | v2[2];
    if (count - 2 <= 15) {
        out[o++] = (uint8_t)(0x90 | (count - 2));
    } else {
        out[o++] = 0xdc;
        out[o++] = (uint8_t)((count - 2) >> 8);
        out[o++] = (uint8_t)(count - 2);
    }
    out[o++] = 1;
    memcpy(out + o, v2 + h + 1 + 18, len - 18 - (h + 1 + 18));
    return o + len - 18 - (h + 1 + 18);
}

/* As the stranger: read the victim's identity from a record of hers in Redis (anyone who
 * can read Redis can), then write, for every account, a record saying it is off an hour
 * from now: in turn with her identity and a MAC made with a guessed secret, with another
 * instance's identity, and in version 1 (no identity, no MAC). 0, or which step failed. */
static int forge(void *arg)
{
    const struct forge *f = arg;
    int fd = open(f->ident, O_RDONLY);
    if (fd >= 0 || errno != EACCES)
        return 10; /* the secret must be out of her reach */
    redisContext *c = redisConnect("127.0.0.1", f->port);
    if (!c || c->err)
        return 11;
    char field[32];
    snprintf(field, sizeof(field), "a:%" PRIx64, f->ids[0]);
    redisReply *x = redisCommand(c, "HGET %s %s", f->key, field);
    if (!x || x->type != REDIS_REPLY_STRING)
        return 12;
    struct rota_jkey guess = {.secret = "guessed-secret!"}, other = {.id = "some-other-inst!"};
    const char *id = memmem(x->str, x->len, "\xc4\x10", 2);
    if (!id)
        return 13;
    memcpy(guess.id, id + 2, ROTA_JID_LEN);
    freeReplyObject(x);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t at = ((int64_t)now.tv_sec + 3600) * 1000000000;
    for (int i = 0; i < f->n; i++) {
        struct rota_jrec r = {.type = ROTA_JREC_ACCOUNT, .seq = 1, .at = at};
        r.u.acc.id = f->ids[i];
        r.u.acc.what = ROTA_JCHG_DISABLE | ROTA_JCHG_FULL;
        r.u.acc.flags = ROTA_SNAP_DISABLED;
        r.u.acc.reason = ROTA_OFF_OPERATOR;
        uint8_t v2[ROTA_JREC_MAX], v1[ROTA_JREC_MAX];
        size_t len = rota_jrec_encode(&r, i % 3 == 1 ? &other : &guess, v2, sizeof(v2));
        const uint8_t *rec = v2;
        if (i % 3 == 2) {
            len = v1_of(v2, len, v1);
            rec = v1;
        }
        snprintf(field, sizeof(field), "a:%" PRIx64, f->ids[i]);
        x = redisCommand(c, "HSET %s %s %b", f->key, field, rec, len);
        if (!x || x->type != REDIS_REPLY_INTEGER)
            return 14;
        freeReplyObject(x);
    }
    x = redisCommand(c, "HSET %s at %lld", f->key, (long long)at);
    bool ok = x && x->type == REDIS_REPLY_INTEGER;
    freeReplyObject(x);
    redisFree(c);
    return ok ? 0 : 15;
}

/* Every account of "t" is in rotation, and a call on each tier goes through. */
static void assert_all_selectable(struct it *t)
{
    json_t *accs = jit_ctl_json(t, "accounts");
    size_t i;
    json_t *a;
    json_array_foreach(accs, i, a)
    {
        if (*jit_str(a, "off"))
            fail_msg("%s is off (%s): a forged record was restored", jit_str(a, "name"),
                     jit_str(a, "off"));
    }
    json_decref(accs);
    jit_calls(t, "chat", 10, 200);
    jit_calls(t, "pin0", 1, 200);
    jit_calls(t, "pin3", 1, 200);
}

/* A real second user who can write the password-less Redis on loopback (but not read
 * rotad's state directory) writes records saying every account is off, newer than
 * anything rotad wrote: with the victim's identity (read from Redis) and a guessed MAC,
 * with another instance's identity, and in version 1. The victim, restarted without its
 * table, restores none of them, says so in its log, and every account stays selectable. */
static void test_journal_redis_forged_records_are_not_restored(void **state)
{
    (void)state;
    uid_t su;
    gid_t sg;
    char why[160];
    if (!stranger_ids(&su, &sg, why, sizeof(why))) {
        print_message("skipped: %s\n", why);
        skip();
    }
    struct it t;
    struct it_redis r;
    it_init(&t, "jforge");
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, NULL), 0);
    char journal[512];
    redis_journal(journal, sizeof(journal), &r, true, true, NULL);
    jit_config(&t, 4, journal);
    assert_int_equal(it_start(&t), 0);
    jit_calls(&t, "chat", 20, 200);
    jit_wait_journaled(&t, JIT_REDIS_TOO);
    struct forge f = {.port = r.port};
    snprintf(f.key, sizeof(f.key), "rota:%s:state", t.instance);
    snprintf(f.ident, sizeof(f.ident), "%s/state/identity", t.dir);
    json_t *accs = jit_ctl_json(&t, "accounts");
    size_t i;
    json_t *a;
    json_array_foreach(accs, i, a)
    {
        if (f.n < 16)
            f.ids[f.n++] = jit_account_id(a);
    }
    json_decref(accs);
    assert_int_equal(f.n, 7);
    assert_int_equal(it_stop(&t, SIGTERM), 0);

    int rc = as_stranger(forge, &f);
    if (rc != 0)
        fail_msg("the stranger's forging failed at step %d", rc);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_all_selectable(&t);
    char msg[256];
    snprintf(msg, sizeof(msg),
             "Redis %s holds 3 records with this instance's identity but a MAC", f.key);
    assert_true(it_log_has(&t, msg));
    assert_true(it_log_has(&t, "forged or corrupt"));
    snprintf(msg, sizeof(msg), "Redis %s holds 2 records of another instance (identity %s",
             f.key, "736f6d652d6f746865722d696e737421"); /* "some-other-inst!" */
    assert_true(it_log_has(&t, msg));
    snprintf(msg, sizeof(msg), "Redis %s holds 2 version 1 records (no identity, no MAC)",
             f.key);
    assert_true(it_log_has(&t, msg));
    assert_false(it_log_has(&t, "restored from Redis"));
    assert_false(it_log_has(&t, "guessed-secret"));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* Two rotads given one Redis key prefix by mistake: the second refuses the first one's
 * records (which would turn a2 off), warns naming the prefix, and carries on with its own
 * state; its own records, written over the first one's, restore it later. */
static void test_journal_redis_another_instances_records_are_refused(void **state)
{
    (void)state;
    struct it t, u;
    struct it_redis r;
    it_init(&t, "jshare1");
    it_init(&u, "jshare2");
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, NULL), 0);
    char journal[512];
    redis_journal(journal, sizeof(journal), &r, false, true, ", prefix: 'rota:shared'");
    jit_config(&t, 4, journal);
    assert_int_equal(it_start(&t), 0);
    jit_ctl(&t, "disable a2 --for 1h");
    jit_wait_journaled(&t, JIT_REDIS_TOO);
    assert_int_equal(it_stop(&t, SIGTERM), 0);

    jit_config(&u, 4, journal);
    assert_int_equal(it_start(&u), 0);
    assert_true(it_log_has(&u, "Redis rota:shared:state holds"));
    assert_true(it_log_has(&u, "records of another instance"));
    assert_true(it_log_has(&u, "Do two rotads share the key prefix rota:shared?"));
    json_t *accs = jit_ctl_json(&u, "accounts");
    assert_string_equal(jit_str(jit_account(accs, "a2"), "off"), "");
    json_decref(accs);
    /* it carries on: its own state goes to Redis, and comes back from there */
    jit_ctl(&u, "disable a1 --for 1h");
    jit_wait_journaled(&u, JIT_REDIS_TOO);
    assert_int_equal(it_stop(&u, SIGTERM), 0);
    it_drop_table(&u);
    assert_int_equal(it_start(&u), 0);
    jit_assert_restored_from(&u, "redis");
    accs = jit_ctl_json(&u, "accounts");
    assert_string_equal(jit_str(jit_account(accs, "a1"), "off"), "operator");
    assert_string_equal(jit_str(jit_account(accs, "a2"), "off"), "");
    json_decref(accs);
    assert_int_equal(it_stop(&u, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&u);
    it_cleanup(&t);
}

static char said[256 * 1024]; /* rotactl's output, as ctl_says last saw it */

/* Does "text" appear in rotactl's output for "args"? */
static bool ctl_says(struct it *t, const char *args, const char *text)
{
    it_rotactl(t, args, said, sizeof(said));
    return strstr(said, text) != NULL;
}

/* Redis behind a password on a Unix socket: the state gets there, the password never
 * shows, and a wrong one is refused without being repeated. */
/* The README's lockdown: an ACL user of rota's own, limited to the instance's keys and
 * the commands rota uses. rotad journals and restores through it, and the user can touch
 * nothing else. A command rota starts to use without the README's line saying so fails
 * here. */
static void test_journal_redis_acl_user_of_its_own(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    it_init(&t, "jacl");
    char admin[64], pw[64], journal[512];
    snprintf(admin, sizeof(admin), "admin-%d-Rk2wQ7", (int)getpid());
    snprintf(pw, sizeof(pw), "rota-%d-Pv5nH1", (int)getpid());
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, admin), 0);
    redisContext *c = redis_open(&r);
    redisReply *x = redisCommand(c,
                                 "ACL SETUSER rota-it on >%s resetkeys ~rota:%s:* resetchannels "
                                 "-@all +multi +exec +xadd +hset +expire +hgetall +ping +select",
                                 pw, t.instance);
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_STATUS);
    freeReplyObject(x);
    redisFree(c);
    setenv("ROTA_IT_REDIS_PW", pw, 1);
    snprintf(journal, sizeof(journal),
             "journal:\n  redis: {enabled: true, port: %d, user: rota-it, "
             "password: env:ROTA_IT_REDIS_PW}\n",
             r.port);
    jit_config(&t, 4, journal);
    assert_int_equal(it_start(&t), 0);
    jit_make_state(&t);
    jit_wait_journaled(&t, JIT_REDIS_TOO);
    json_t *before = jit_ctl_json(&t, "accounts");
    uint64_t t0 = jit_mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    char path[256];
    jit_journal_path(&t, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "redis");
    json_t *after = jit_ctl_json(&t, "accounts");
    jit_assert_restored(before, after, jit_mono_ms() - t0, NULL);
    json_decref(before);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_false(it_log_has(&t, pw));
    /* The user reaches nothing but the instance's keys. */
    struct it_redis as_rota = r;
    as_rota.password[0] = 0;
    c = redis_open(&as_rota);
    x = redisCommand(c, "AUTH rota-it %s", pw);
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_STATUS);
    freeReplyObject(x);
    x = redisCommand(c, "HSET elsewhere:state a 1");
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_ERROR);
    freeReplyObject(x);
    redisFree(c);
    unsetenv("ROTA_IT_REDIS_PW");
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

static void test_journal_redis_password_and_socket(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    it_init(&t, "jpw");
    char sock[128], pw[64], journal[512];
    snprintf(sock, sizeof(sock), "%.96s/redis.sock", t.dir);
    snprintf(pw, sizeof(pw), "pw-%d-Zq8vX3kT", (int)getpid());
    assert_int_equal(it_redis_start(&r, t.dir, -1, sock, pw), 0);
    setenv("ROTA_IT_REDIS_PW", pw, 1);
    snprintf(journal, sizeof(journal),
             "journal:\n  redis: {enabled: true, socket: %s, password: env:ROTA_IT_REDIS_PW}\n",
             sock);
    jit_config(&t, 4, journal);
    assert_int_equal(it_start(&t), 0);
    jit_make_state(&t);
    jit_wait_journaled(&t, JIT_REDIS_TOO);
    json_t *j = jit_ctl_json(&t, "journal");
    char target[160];
    snprintf(target, sizeof(target), "unix:%s", sock);
    assert_string_equal(jit_str(j, "redis.target"), target);
    json_decref(j);
    /* Redis refuses without the password, and has the state with it. */
    char key[160];
    snprintf(key, sizeof(key), "rota:%s:state", t.instance);
    struct it_redis anon = r;
    anon.password[0] = 0;
    redisContext *c = redis_open(&anon);
    redisReply *x = redisCommand(c, "HLEN %s", key);
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_ERROR);
    freeReplyObject(x);
    redisFree(c);
    c = redis_open(&r);
    assert_int_equal(redis_hlen(c, key), 7 + 3 + 1); /* accounts, providers, "at" */
    redisFree(c);
    /* The password shows nowhere. */
    const char *views[] = {"journal", "--json journal", "status", "--json status"};
    for (size_t i = 0; i < 4; i++)
        if (ctl_says(&t, views[i], pw))
            fail_msg("rotactl %s shows the Redis password:\n%s", views[i], said);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_false(it_log_has(&t, pw));
    /* A wrong password: refused, said so, and not repeated either. */
    char wrong[80];
    snprintf(wrong, sizeof(wrong), "wrong-%s", pw);
    setenv("ROTA_IT_REDIS_PW", wrong, 1);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_true(it_log_has(&t, "Redis could not be read at start"));
    JIT_WAIT_FOR(ctl_says(&t, "--json journal", "AUTH"));
    j = jit_ctl_json(&t, "journal");
    assert_false(json_is_true(jit_at(j, "redis.connected")));
    assert_non_null(strstr(jit_str(j, "redis.last_error"), "AUTH"));
    json_decref(j);
    for (size_t i = 0; i < 4; i++)
        if (ctl_says(&t, views[i], "Zq8vX3kT"))
            fail_msg("rotactl %s shows the Redis password:\n%s", views[i], said);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_false(it_log_has(&t, "Zq8vX3kT"));
    unsetenv("ROTA_IT_REDIS_PW");
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_journal_redis_restores_without_file, it_teardown),
        cmocka_unit_test_teardown(test_journal_newer_of_file_and_redis_wins, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_outage_under_load, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_resend_after_drops_has_providers,
                                  it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_password_and_socket, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_acl_user_of_its_own, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_forged_records_are_not_restored,
                                  it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_another_instances_records_are_refused,
                                  it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
