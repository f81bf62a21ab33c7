/* test_journal_rotad: rotad's journal end to end: state written to the file and to a real
 * redis-server, and restored from the newer of them after a stop, a kill -9, a torn tail
 * or a damaged record; Redis going away under load; a bounded file; secrets kept out. */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "jfile.h"
#include "jrecord.h"
#include "rota.h"
#include "rotad_harness.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait up to 30 s for "cond" to hold (a bound for slow machines, not a measure). */
#define WAIT_FOR(cond)                                                                         \
    do {                                                                                       \
        for (int w_ = 0; w_ < 600 && !(cond); w_++)                                            \
            sleep_ms(50);                                                                      \
    } while (0)

/* ---- the instance ---- */

/* The test's config: provider alpha with "nalpha" (>= 4) accounts a0.. (a daily window of
 * 100000 requests each; 3 failures in a row open a breaker for 10 minutes), beta with b0
 * and b1, local with l0; route "chat" over the three, and routes "pin0" and "pin3" over
 * alpha/a0 and alpha/a3 alone, so a test can aim its failures. Probes are off: nothing
 * but the test changes the state. "journal" is the journal section, verbatim (NULL =
 * none: the default file journal). */
static void jconfig(struct it *t, int nalpha, const char *journal)
{
    size_t cap = 64 * 1024;
    char *s = malloc(cap);
    assert_non_null(s);
    int n = snprintf(s, cap,
                     "instance: %s\nstate_dir: %s/state\n%s\nproviders:\n"
                     "  - name: alpha\n    kind: openai\n"
                     "    breaker: {failures: 3, half_open: 1, open_for: 10m, open_max: 1h}\n"
                     "    probe: {enabled: false}\n"
                     "    accounts:\n",
                     t->instance, t->dir, journal ? journal : "");
    for (int i = 0; i < nalpha; i++)
        n += snprintf(s + n, cap - (size_t)n,
                      "      - name: a%d\n        credential: env:ROTA_IT_KEY\n"
                      "        windows: [{metric: requests, limit: 100000, reset: daily "
                      "00:00}]\n",
                      i);
    snprintf(
        s + n, cap - (size_t)n,
        "  - name: beta\n    kind: anthropic\n    probe: {enabled: false}\n"
        "    accounts:\n"
        "      - {name: b0, credential: env:ROTA_IT_KEY}\n"
        "      - {name: b1, credential: env:ROTA_IT_KEY}\n"
        "  - name: local\n    kind: llamacpp\n    auth: none\n"
        "    probe: {enabled: false}\n"
        "    accounts:\n      - {name: l0, credential: none}\n"
        "routes:\n  - name: chat\n    models: [chat-model]\n    tiers:\n"
        "      - {provider: alpha, strategy: hybrid}\n"
        "      - {provider: beta, strategy: round-robin}\n"
        "      - {provider: local, strategy: fill-first, ceiling: 1.0}\n"
        "  - name: pin0\n    tiers:\n      - {accounts: [alpha/a0], strategy: fill-first}\n"
        "  - name: pin3\n    tiers:\n      - {accounts: [alpha/a3], strategy: fill-first}\n");
    it_config_text(t, s);
    free(s);
}

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

static void journal_path(const struct it *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/state/journal", t->dir);
}

/* ---- rotactl ---- */

static char out[256 * 1024];

/* "rotactl -i <instance> --json ARGS": exit 0 and JSON, parsed (caller frees). */
static json_t *ctl_json(struct it *t, const char *args)
{
    char full[512];
    snprintf(full, sizeof(full), "--json %s", args);
    int rc = it_rotactl(t, full, out, sizeof(out));
    if (rc != 0)
        fail_msg("rotactl %s: exit %d; output:\n%s", full, rc, out);
    json_error_t e;
    json_t *v = json_loads(out, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("rotactl %s: not JSON (%s):\n%s", full, e.text, out);
    return v;
}

/* "rotactl ARGS" in words: must exit 0. */
static void ctl(struct it *t, const char *args)
{
    int rc = it_rotactl(t, args, out, sizeof(out));
    if (rc != 0)
        fail_msg("rotactl %s: exit %d; output:\n%s", args, rc, out);
}

/* The value at "a.b.c" in "o", or NULL. */
static json_t *at(json_t *o, const char *path)
{
    char key[64];
    while (o && *path) {
        size_t k = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)k, path);
        o = json_object_get(o, key);
        path += k + (path[k] == '.');
    }
    return o;
}

static double num(json_t *o, const char *path)
{
    return json_number_value(at(o, path));
}

static const char *str(json_t *o, const char *path)
{
    const char *s = json_string_value(at(o, path));
    return s ? s : "";
}

/* The account named "name" in an `accounts --json` array. */
static json_t *account(json_t *arr, const char *name)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (strcmp(str(json_array_get(arr, i), "name"), name) == 0)
            return json_array_get(arr, i);
    fail_msg("no account %s", name);
    return NULL;
}

static uint64_t account_id(json_t *a)
{
    return strtoull(str(a, "id"), NULL, 16);
}

/* ---- making state ---- */

/* "n" calls on route "route", each reported with "status". */
static void calls(struct it *t, const char *route, int n, int status)
{
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(t->instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, route, &rt), 0);
    for (int i = 0; i < n; i++) {
        rota_choice c;
        assert_int_equal(rota_select(h, &rt, NULL, 0, 10, &c), 0);
        rota_outcome o = {.status = status, .tokens = 7};
        assert_int_equal(rota_report(h, &c, &o), 0);
    }
    rota_detach(h);
}

static double journal_num(struct it *t, const char *path)
{
    json_t *j = ctl_json(t, "journal");
    double v = num(j, path);
    json_decref(j);
    return v;
}

static bool journal_true(struct it *t, const char *path)
{
    json_t *j = ctl_json(t, "journal");
    bool v = json_is_true(at(j, path));
    json_decref(j);
    return v;
}

/* Wait for "n" more passes of the journal than it had made when called. */
static void wait_passes(struct it *t, int n)
{
    double p0 = journal_num(t, "passes");
    WAIT_FOR(journal_num(t, "passes") >= p0 + n);
    assert_true(journal_num(t, "passes") >= p0 + n);
}

/* Usage on every alpha account, a1 cooling down for 10 minutes, a2 disabled by the
 * operator for an hour, a3's breaker open (three failures in a row; the successes on a0
 * between them keep alpha's own breaker closed). The usage is journaled before the
 * operator's actions, so each of them makes a record of its own. Returns the second
 * (wall clock) of the last action. */
static time_t make_state(struct it *t)
{
    calls(t, "chat", 300, 200);
    for (int k = 0; k < 3; k++) {
        calls(t, "pin3", 1, 503);
        if (k < 2)
            calls(t, "pin0", 1, 200);
    }
    wait_passes(t, 2);
    ctl(t, "cooldown a1 10m");
    time_t last = time(NULL);
    ctl(t, "disable a2 --for 1h");
    json_t *j = ctl_json(t, "accounts");
    assert_string_equal(str(account(j, "a3"), "breaker"), "open");
    assert_int_equal(num(account(j, "a3"), "breaker_trips"), 1);
    assert_false(json_is_true(at(account(j, "a0"), "provider_breaker_open")));
    assert_string_equal(str(account(j, "a2"), "off"), "operator");
    assert_true(num(account(j, "a1"), "cooldown_left_ms") > 590000);
    json_decref(j);
    return last;
}

/* Is the time at "path" of "j" (an ISO 8601 UTC second) "since" or later? */
static bool written_since(json_t *j, const char *path, time_t since)
{
    struct tm tm = {0};
    const char *s = str(j, path);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end && !*end && timegm(&tm) >= since;
}

/* What wait_journaled waits for besides the file. */
enum { FILE_ONLY, REDIS_TOO, REDIS_DROPS_OK };

/* Wait until the journal has written everything done so far: two passes that started
 * after this call, nothing waiting for the file (and, with REDIS_TOO, nothing waiting
 * for Redis, connected, nothing ever dropped; REDIS_DROPS_OK allows drops). Fails the
 * test if it does not happen. */
static void wait_journaled(struct it *t, int redis)
{
    json_t *j = ctl_json(t, "journal");
    assert_true(json_is_true(at(j, "enabled")));
    double passes = num(j, "passes");
    json_decref(j);
    bool done = false;
    for (int i = 0; i < 300 && !done; i++) {
        sleep_ms(50);
        j = ctl_json(t, "journal");
        bool file = json_is_true(at(j, "file.enabled"));
        done = num(j, "passes") >= passes + 2 &&
               (!file ||
                (num(j, "file.lag_ms") == 0 && num(j, "file.queue_bytes") == 0 &&
                 json_is_string(at(j, "file.last_write")) && num(j, "file.errors") == 0)) &&
               (!redis || (json_is_true(at(j, "redis.connected")) &&
                           num(j, "redis.queue") == 0 && num(j, "redis.written") > 0 &&
                           (redis == REDIS_DROPS_OK || num(j, "redis.dropped") == 0) &&
                           json_is_string(at(j, "redis.last_write"))));
        if (!done && i == 299)
            fail_msg("the journal did not catch up: %s", json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }
}

/* ---- comparing state ---- */

/* "after" has the durable state of every account of "before", "elapsed_ms" later: the
 * same usage and counters, the same off reason and breaker, and deadlines that ran on
 * by the wall clock. Accounts named in "skip" ("a1,b0") are left out. */
static void assert_restored(json_t *before, json_t *after, uint64_t elapsed_ms,
                            const char *skip)
{
    size_t i;
    json_t *b;
    assert_int_equal(json_array_size(before), json_array_size(after));
    json_array_foreach(before, i, b)
    {
        const char *name = str(b, "name");
        char key[32];
        snprintf(key, sizeof(key), ",%s,", name);
        char list[256];
        snprintf(list, sizeof(list), ",%s,", skip ? skip : "");
        if (strstr(list, key))
            continue;
        json_t *a = account(after, name);
        static const char *const same[] = {"selections",    "failures",      "rate_limited",
                                           "auth_failures", "tokens",        "breaker_trips",
                                           "in_flight",     "windows.0.used"};
        for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++) {
            double x = 0, y = 0;
            if (strcmp(same[k], "windows.0.used") == 0) {
                json_t *wb = json_array_get(json_object_get(b, "windows"), 0);
                json_t *wa = json_array_get(json_object_get(a, "windows"), 0);
                if (!wb)
                    continue;
                x = num(wb, "used");
                y = num(wa, "used");
                if (strcmp(str(wb, "reset_at"), str(wa, "reset_at")) != 0)
                    fail_msg("%s: window reset_at %s, was %s", name, str(wa, "reset_at"),
                             str(wb, "reset_at"));
            } else {
                x = num(b, same[k]);
                y = num(a, same[k]);
            }
            if (x != y)
                fail_msg("%s: %s is %.0f after the restart, was %.0f", name, same[k], y, x);
        }
        if (strcmp(str(b, "off"), str(a, "off")) ||
            strcmp(str(b, "breaker"), str(a, "breaker")))
            fail_msg("%s: off '%s' breaker '%s' after the restart, was off '%s' breaker '%s'",
                     name, str(a, "off"), str(a, "breaker"), str(b, "off"), str(b, "breaker"));
        static const char *const left[] = {"cooldown_left_ms", "off_left_ms",
                                           "breaker_left_ms"};
        for (size_t k = 0; k < 3; k++) {
            double x = num(b, left[k]), y = num(a, left[k]);
            if (x == 0 ? y != 0 : (y > x + 1000 || y < x - (double)elapsed_ms - 2000))
                fail_msg("%s: %s is %.0f after the restart, was %.0f %llu ms before", name,
                         left[k], y, x, (unsigned long long)elapsed_ms);
        }
    }
}

static json_t *status(struct it *t)
{
    json_t *s = ctl_json(t, "status");
    json_t *d = json_incref(json_object_get(s, "daemon"));
    json_decref(s);
    assert_true(json_is_object(d));
    return d;
}

/* rotad's status says it restored from "from" ("file" or "redis"). */
static void assert_restored_from(struct it *t, const char *from)
{
    json_t *d = status(t);
    const char *origin = str(d, "state_origin");
    const char *want =
        strcmp(from, "redis") ? "restored from the journal file " : "restored from Redis ";
    if (strncmp(origin, want, strlen(want)) != 0 || strcmp(str(d, "state_from"), from) != 0 ||
        !*str(d, "state_at"))
        fail_msg("wanted a state restored from %s; status says origin '%s', from '%s'", from,
                 origin, str(d, "state_from"));
    json_decref(d);
}

/* ---- the file ---- */

static size_t slurp(const char *path, unsigned char **p)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *p = malloc((size_t)n + 1);
    assert_non_null(*p);
    assert_int_equal(fread(*p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return (size_t)n;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The whole frames of a journal file, in order: their offsets and payload lengths. */
struct frame {
    size_t off;
    uint32_t len;
};
static int frames(const unsigned char *p, size_t n, struct frame *f, int max)
{
    int k = 0;
    assert_true(n >= ROTA_JFILE_HEADER && memcmp(p, "ROTAJNL1", 8) == 0);
    for (size_t off = ROTA_JFILE_HEADER; off + ROTA_JFILE_FRAME <= n && k < max;) {
        assert_memory_equal(p + off, "ROTJ", 4);
        uint32_t len = le32(p + off + 4);
        assert_true(off + ROTA_JFILE_FRAME + len <= n);
        f[k++] = (struct frame){off, len};
        off += ROTA_JFILE_FRAME + len;
    }
    return k;
}

static int count_rec(void *arg, const struct rota_jrec *r)
{
    (void)r;
    ++*(int *)arg;
    return 0;
}

/* The file reads whole: no torn tail, no damage, some records. */
static void assert_file_clean(const char *path)
{
    struct rota_jfile_scan s;
    char err[256] = "";
    int n = 0;
    assert_int_equal(rota_jfile_read(path, count_rec, &n, &s, err, sizeof(err)), 0);
    if (s.torn_bytes || s.corrupt || s.first_problem[0])
        fail_msg("%s: %s", path, s.first_problem);
    assert_true(n > 0);
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

/* The record in field "field" of hash "key", decoded; false when there is none. */
static bool redis_record(redisContext *c, const char *key, const char *field,
                         struct rota_jrec *r)
{
    redisReply *x = redisCommand(c, "HGET %s %s", key, field);
    assert_non_null(x);
    bool ok =
        x->type == REDIS_REPLY_STRING && rota_jrec_decode(x->str, x->len, r, NULL, 0) == 0;
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
        sleep_ms(50);
        json_t *j = ctl_json(t, "journal");
        back = json_is_true(at(j, "redis.connected")) && num(j, "redis.queue") == 0 &&
               num(j, "redis.reconnects") >= 1;
        if (!back && i == 299)
            fail_msg("Redis did not come back: %s", json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }
}

/* Does the hash hold every account of "accs" at its state there (selections and whether
 * it is off)? The first difference in "why". */
static bool redis_holds(redisContext *c, const char *key, json_t *accs, char *why, size_t n)
{
    size_t i;
    json_t *a;
    json_array_foreach(accs, i, a)
    {
        char field[32];
        snprintf(field, sizeof(field), "a:%" PRIx64, account_id(a));
        struct rota_jrec r;
        if (!redis_record(c, key, field, &r)) {
            snprintf(why, n, "%s (%s): no record", str(a, "name"), field);
            return false;
        }
        bool off = (r.u.acc.flags & ROTA_SNAP_DISABLED) || r.u.acc.wdisable;
        if (r.type != ROTA_JREC_ACCOUNT || r.u.acc.id != account_id(a) ||
            r.u.acc.requests != (uint64_t)num(a, "selections") ||
            off != (*str(a, "off") != 0)) {
            snprintf(why, n, "%s: the record says %" PRIu64 " requests%s, the table %.0f%s%s",
                     str(a, "name"), r.u.acc.requests, off ? ", off" : "", num(a, "selections"),
                     *str(a, "off") ? ", off " : "", str(a, "off"));
            return false;
        }
    }
    return true;
}

/* ---- the cases ---- */

/* 1: the file alone, the default journal: a stop, the table gone, everything back. */
static void test_journal_file_restores_after_stop(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jfile");
    jconfig(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    json_t *d = status(&t);
    assert_string_equal(str(d, "state_origin"),
                        "cold start: nothing journaled yet; quotas come from the probes");
    json_decref(d);
    time_t since = make_state(&t);
    wait_journaled(&t, FILE_ONLY);
    json_t *j = ctl_json(&t, "journal");
    assert_true(written_since(j, "file.last_write", since));
    assert_false(json_is_true(at(j, "redis.enabled")));
    char path[256];
    journal_path(&t, path, sizeof(path));
    assert_string_equal(str(j, "file.path"), path);
    assert_true(num(j, "changes") > 0 && num(j, "file.records") > 0);
    json_decref(j);
    json_t *before = ctl_json(&t, "accounts");
    uint64_t t0 = mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_restored_from(&t, "file");
    assert_true(it_log_has(&t, "journal: restored from the journal file"));
    json_t *after = ctl_json(&t, "accounts");
    assert_restored(before, after, mono_ms() - t0, NULL);
    assert_true(num(account(after, "a0"), "selections") > 0); /* not a trivial equality */
    json_decref(before);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* 2: Redis alone: the file and the table gone, Redis has it all. */
static void test_journal_redis_restores_without_file(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    it_init(&t, "jredis");
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, NULL), 0);
    char journal[512];
    redis_journal(journal, sizeof(journal), &r, true, true, NULL);
    jconfig(&t, 4, journal);
    assert_int_equal(it_start(&t), 0);
    time_t since = make_state(&t);
    wait_journaled(&t, REDIS_TOO);
    json_t *j = ctl_json(&t, "journal");
    assert_true(written_since(j, "redis.last_write", since));
    assert_true(written_since(j, "file.last_write", since));
    json_decref(j);
    json_t *before = ctl_json(&t, "accounts");
    uint64_t t0 = mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    char path[256];
    journal_path(&t, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_restored_from(&t, "redis");
    json_t *after = ctl_json(&t, "accounts");
    assert_restored(before, after, mono_ms() - t0, NULL);
    json_decref(before);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* One run of case 3: the table dropped, rotad started on "journal", the state it
 * restored checked by "check" (may be NULL), then "actions" (rotactl commands, ";"
 * between), journaled, and rotad stopped. */
static void run_once(struct it *t, const char *journal, const char *from,
                     void (*check)(json_t *accs), const char *actions, bool redis)
{
    it_drop_table(t);
    jconfig(t, 4, journal);
    assert_int_equal(it_start(t), 0);
    if (from)
        assert_restored_from(t, from);
    if (check) {
        json_t *a = ctl_json(t, "accounts");
        check(a);
        json_decref(a);
    }
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", actions ? actions : "");
    for (char *save = NULL, *c = strtok_r(buf, ";", &save); c; c = strtok_r(NULL, ";", &save))
        ctl(t, c);
    wait_journaled(t, redis ? REDIS_TOO : FILE_ONLY);
    assert_int_equal(it_stop(t, SIGTERM), 0);
}

/* X: a1 off for an hour. */
static void is_x(json_t *a)
{
    assert_string_equal(str(account(a, "a1"), "off"), "operator");
    assert_string_equal(str(account(a, "a2"), "off"), "");
    assert_int_equal(num(account(a, "a0"), "cooldown_left_ms"), 0);
}

/* Y: a1 back on, a2 off for two hours. */
static void is_y(json_t *a)
{
    assert_string_equal(str(account(a, "a1"), "off"), "");
    assert_string_equal(str(account(a, "a2"), "off"), "operator");
    assert_true(num(account(a, "a2"), "off_left_ms") > 2 * 3600000 - 120000);
    assert_int_equal(num(account(a, "a0"), "cooldown_left_ms"), 0);
}

/* Z: a2 back on, a0 cooling down for 15 minutes. */
static void is_z(json_t *a)
{
    assert_string_equal(str(account(a, "a1"), "off"), "");
    assert_string_equal(str(account(a, "a2"), "off"), "");
    assert_true(num(account(a, "a0"), "cooldown_left_ms") > 15 * 60000 - 120000);
}

/* 3: file and Redis both configured: the newer one wins, whichever it is. */
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
    jconfig(&t, 4, both);
    assert_int_equal(it_start(&t), 0);
    assert_restored_from(&t, "redis");
    json_t *a = ctl_json(&t, "accounts");
    is_z(a);
    json_decref(a);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* 4: kill -9: no last pass, what the journal had written comes back. */
static void test_journal_survives_kill9(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jkill");
    jconfig(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    time_t since = make_state(&t);
    wait_journaled(&t, FILE_ONLY);
    json_t *j = ctl_json(&t, "journal");
    assert_true(written_since(j, "file.last_write", since));
    json_decref(j);
    json_t *before = ctl_json(&t, "accounts");
    uint64_t t0 = mono_ms();
    assert_int_equal(it_stop(&t, SIGKILL), 128 + SIGKILL);
    assert_false(it_log_has(&t, "stopped;")); /* it really had no chance to finish */
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_restored_from(&t, "file");
    json_t *after = ctl_json(&t, "accounts");
    assert_restored(before, after, mono_ms() - t0, NULL);
    json_decref(before);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* 5: Redis killed under load and started again: dispatch goes on, the buffer stays
 * within its bound and drops the oldest, and once Redis is back the hash holds every
 * account's latest state, which only the full resend after drops can bring: alpha is
 * drained while Redis is away and more than a buffer of newer records (beta's, which
 * the load falls to) pushes the drain's records out. */
static void test_journal_redis_outage_under_load(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    it_init(&t, "joutage");
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, NULL), 0);
    char journal[512];
    redis_journal(journal, sizeof(journal), &r, true, true, ", buffer: 50");
    jconfig(&t, 32, journal); /* 35 accounts: a pass fits in the buffer */
    assert_int_equal(it_start(&t), 0);
    struct it_load l;
    it_load_start(&l, t.instance, 2);
    WAIT_FOR(it_load_ok(&l) > 5000 && journal_num(&t, "redis.written") > 100);
    json_t *j = ctl_json(&t, "journal");
    assert_true(json_is_true(at(j, "redis.connected")));
    assert_int_equal(num(j, "redis.capacity"), 50);
    assert_int_equal(num(j, "redis.dropped"), 0); /* Redis keeps up */
    json_decref(j);

    assert_int_equal(it_redis_stop(&r, SIGKILL), 128 + SIGKILL);
    uint64_t ok0 = it_load_ok(&l);
    double passes0 = -1, max_queue = 0, dropped = 0;
    bool down = false, full = false;
    for (int i = 0; i < 300 && !(down && full && dropped > 0); i++) {
        sleep_ms(50);
        j = ctl_json(&t, "journal");
        if (passes0 < 0)
            passes0 = num(j, "passes");
        down = !json_is_true(at(j, "redis.connected"));
        double q = num(j, "redis.queue");
        max_queue = q > max_queue ? q : max_queue;
        full = q == 50;
        dropped = num(j, "redis.dropped");
        json_decref(j);
    }
    assert_true(down);
    assert_int_equal(max_queue, 50); /* up to its bound, never past it */
    assert_true(dropped > 0);
    WAIT_FOR(it_load_ok(&l) > ok0 + 5000);
    assert_true(it_load_ok(&l) > ok0 + 5000); /* dispatch never waited for Redis */
    WAIT_FOR(journal_num(&t, "passes") > passes0 + 10);
    j = ctl_json(&t, "journal");
    assert_true(num(j, "passes") > passes0 + 10); /* nor did the journal */
    assert_false(json_is_true(at(j, "redis.connected")));
    assert_true(num(j, "redis.queue") <= 50);
    assert_true(num(j, "redis.errors") > 0);
    assert_true(*str(j, "redis.last_error"));
    json_decref(j);

    ctl(&t, "drain alpha");
    wait_passes(&t, 2);
    double records = journal_num(&t, "records"), ok1 = (double)it_load_ok(&l);
    WAIT_FOR(journal_num(&t, "records") > records + 60);
    assert_true(journal_num(&t, "records") > records + 60);
    assert_true((double)it_load_ok(&l) > ok1); /* on beta now */
    it_load_stop(&l);
    for (int i = 0; i < l.n; i++)
        assert_int_equal(l.c[i].errors, 0);
    wait_journaled(&t, FILE_ONLY);
    j = ctl_json(&t, "journal");
    assert_true(num(j, "redis.dropped") > dropped + 32);
    assert_true(num(j, "redis.queue") <= 50);
    json_decref(j);

    assert_int_equal(it_redis_restart(&r), 0);
    wait_redis_back(&t);
    json_t *accs = ctl_json(&t, "accounts");
    assert_int_equal(json_array_size(accs), 35);
    assert_string_equal(str(account(accs, "a7"), "off"), "drain");
    char key[160], why[256] = "";
    snprintf(key, sizeof(key), "rota:%s:state", t.instance);
    redisContext *c = redis_open(&r);
    WAIT_FOR(redis_holds(c, key, accs, why, sizeof(why)));
    if (!redis_holds(c, key, accs, why, sizeof(why)))
        fail_msg("%s does not hold the latest state: %s", key, why);
    assert_int_equal(redis_fields(c, key, "a:"), 35);
    j = ctl_json(&t, "journal");
    assert_int_equal(num(j, "redis.queue"), 0);
    assert_true(num(j, "redis.reconnects") >= 1);
    json_decref(j);
    redisFree(c);
    json_decref(accs);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* 5b: the full resend after drops covers the providers too. Redis is paused (SIGSTOP, a
 * network partition: it keeps its data) while alpha's own breaker opens and then more
 * records than the buffer holds (a drain, then load on the next tiers) push that record
 * out; once Redis answers again the hash must say alpha's breaker is open, as the table
 * does. */
static void test_journal_redis_resend_after_drops_has_providers(void **state)
{
    (void)state;
    struct it t;
    struct it_redis r;
    it_init(&t, "jprov");
    assert_int_equal(it_redis_start(&r, t.dir, 0, NULL, NULL), 0);
    char journal[512];
    redis_journal(journal, sizeof(journal), &r, true, true, ", buffer: 50");
    jconfig(&t, 32, journal); /* 35 accounts: a pass fits in the buffer */
    assert_int_equal(it_start(&t), 0);
    calls(&t, "chat", 100, 200);
    wait_journaled(&t, REDIS_TOO);
    char key[160];
    snprintf(key, sizeof(key), "rota:%s:state", t.instance);
    redisContext *c = redis_open(&r);
    struct rota_jrec p;
    assert_true(redis_record(c, key, "p:alpha", &p));
    assert_int_equal(p.u.prov.breaker.state, 0); /* closed */
    redisFree(c);

    assert_int_equal(kill(r.pid, SIGSTOP), 0);
    /* A change the paused Redis cannot answer: the sender gives up on it and is
     * disconnected before the breaker's record exists (so no batch holding that record
     * waits in Redis's socket for it to wake up). */
    ctl(&t, "cooldown l0 1m");
    WAIT_FOR(!journal_true(&t, "redis.connected"));
    assert_false(journal_true(&t, "redis.connected"));
    calls(&t, "pin0", 3, 503); /* alpha's own breaker opens */
    json_t *accs = ctl_json(&t, "accounts");
    assert_true(json_is_true(at(account(accs, "a5"), "provider_breaker_open")));
    json_decref(accs);
    wait_journaled(&t, FILE_ONLY);
    double dropped = journal_num(&t, "redis.dropped");
    /* 32 records in one pass, then beta's and the local model's under load, pass after
     * pass: more than the buffer holds, so the breaker's record is dropped */
    ctl(&t, "drain alpha");
    struct it_load l;
    it_load_start(&l, t.instance, 1);
    sleep_ms(2500);
    it_load_stop(&l);
    wait_journaled(&t, FILE_ONLY);
    json_t *j = ctl_json(&t, "journal");
    assert_false(json_is_true(at(j, "redis.connected")));
    assert_true(num(j, "redis.dropped") > dropped);
    json_decref(j);
    assert_int_equal(kill(r.pid, SIGCONT), 0);
    wait_redis_back(&t);

    c = redis_open(&r);
    char why[256] = "";
    accs = ctl_json(&t, "accounts");
    WAIT_FOR(redis_holds(c, key, accs, why, sizeof(why))); /* the accounts were resent */
    if (!redis_holds(c, key, accs, why, sizeof(why)))
        fail_msg("%s does not hold the latest state: %s", key, why);
    json_decref(accs);
    assert_true(redis_record(c, key, "p:alpha", &p));
    bool in_hash = p.u.prov.breaker.state != 0;
    redisFree(c);
    /* What a user notices: restored from Redis, alpha's breaker must still be open. */
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    char path[256];
    journal_path(&t, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_restored_from(&t, "redis");
    accs = ctl_json(&t, "accounts");
    bool restored = json_is_true(at(account(accs, "a5"), "provider_breaker_open"));
    assert_string_equal(str(account(accs, "a7"), "off"), "drain");
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

/* 6: a torn tail (a write cut by a crash) is cut, the rest restored, and the next file
 * is whole. */
static void test_journal_torn_tail_is_cut(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jtear"); /* not "torn": the log names the instance */
    jconfig(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    make_state(&t);
    wait_journaled(&t, FILE_ONLY);
    json_t *before = ctl_json(&t, "accounts");
    uint64_t t0 = mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    char path[256];
    journal_path(&t, path, sizeof(path));
    unsigned char *p;
    size_t n = slurp(path, &p);
    struct frame f[4096];
    int k = frames(p, n, f, 4096);
    assert_true(k > 10);
    assert_true(f[k - 1].len > 8);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fwrite(p + f[k - 1].off, 1, 20, fp), 20); /* its first 20 bytes */
    fclose(fp);
    free(p);
    assert_false(it_log_has(&t, "torn"));
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_true(it_log_has(&t, "torn tail"));
    assert_restored_from(&t, "file");
    json_t *after = ctl_json(&t, "accounts");
    assert_restored(before, after, mono_ms() - t0, NULL);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_file_clean(path);
    /* Again, with a log of its own: nothing torn any more. */
    snprintf(t.log, sizeof(t.log), "%s/rotad-2.log", t.dir);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_restored_from(&t, "file");
    assert_false(it_log_has(&t, "torn"));
    after = ctl_json(&t, "accounts");
    assert_restored(before, after, mono_ms() - t0, NULL);
    json_decref(after);
    json_decref(before);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* 7: a damaged record in the middle is skipped and reported with its offset, never
 * half replayed; the rest is restored and the damaged file is kept. */
static void test_journal_damaged_record_is_skipped(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jdamage");
    jconfig(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    make_state(&t);
    wait_journaled(&t, FILE_ONLY);
    json_t *before = ctl_json(&t, "accounts");
    uint64_t a1 = account_id(account(before, "a1"));
    uint64_t t0 = mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    /* The damage: a1's last record, the one with its cooldown (a2's disable follows). */
    char path[256], damaged[300];
    journal_path(&t, path, sizeof(path));
    snprintf(damaged, sizeof(damaged), "%s.damaged", path);
    unsigned char *p;
    size_t n = slurp(path, &p);
    struct frame f[4096];
    int k = frames(p, n, f, 4096), hit = -1;
    for (int i = 0; i < k; i++) {
        struct rota_jrec r;
        assert_int_equal(
            rota_jrec_decode(p + f[i].off + ROTA_JFILE_FRAME, f[i].len, &r, NULL, 0), 0);
        if (r.type == ROTA_JREC_ACCOUNT && r.u.acc.id == a1)
            hit = i;
    }
    assert_true(hit >= 0 && hit < k - 1);
    struct rota_jrec r;
    rota_jrec_decode(p + f[hit].off + ROTA_JFILE_FRAME, f[hit].len, &r, NULL, 0);
    assert_true(r.u.acc.cooldown_until != 0);
    size_t flip = f[hit].off + ROTA_JFILE_FRAME + f[hit].len / 2;
    p[flip] ^= 0x5a;
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, (long)flip, SEEK_SET);
    assert_int_equal(fwrite(p + flip, 1, 1, fp), 1);
    fclose(fp);

    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    char msg[96];
    snprintf(msg, sizeof(msg), "offset %zu: a checksum mismatch", f[hit].off);
    assert_true(it_log_has(&t, msg));
    assert_true(it_log_has(&t, "1 damaged regions"));
    assert_true(it_log_has(&t, "the damaged file is kept as"));
    assert_restored_from(&t, "file");
    json_t *after = ctl_json(&t, "accounts");
    assert_restored(before, after, mono_ms() - t0, "a1");
    /* a1: its record before the damaged one stands, so no cooldown, the same usage. */
    assert_int_equal(num(account(after, "a1"), "cooldown_left_ms"), 0);
    assert_int_equal(num(account(after, "a1"), "selections"),
                     num(account(before, "a1"), "selections"));
    json_decref(after);
    json_decref(before);
    /* The damaged file is kept as it was. */
    unsigned char *q;
    assert_int_equal(slurp(damaged, &q), n);
    assert_memory_equal(p, q, n);
    free(q);
    free(p);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_file_clean(path);
    it_cleanup(&t);
}

/* 8: the file stays within max_bytes under load: snapshots rewrite it. */
static void test_journal_file_stays_bounded(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jbound");
    jconfig(&t, 64, "journal:\n  file: {max_bytes: 64KiB, snapshot_every: 1h}\n");
    assert_int_equal(it_start(&t), 0);
    char path[256];
    journal_path(&t, path, sizeof(path));
    struct it_load l;
    it_load_start(&l, t.instance, 2);
    off_t biggest = 0;
    for (uint64_t t0 = mono_ms(); mono_ms() - t0 < 8000;) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > biggest)
            biggest = st.st_size;
        sleep_ms(100);
    }
    it_load_stop(&l);
    json_t *j = ctl_json(&t, "journal");
    if (biggest > 64 * 1024)
        fail_msg("the journal reached %lld bytes, max_bytes is 65536", (long long)biggest);
    assert_true(biggest > 0);
    assert_int_equal(num(j, "file.max_bytes"), 64 * 1024);
    assert_true(num(j, "file.bytes") <= 64 * 1024);
    if (num(j, "file.snapshots") <= 1)
        fail_msg("no snapshot kept the file bounded: %s", json_dumps(j, JSON_COMPACT));
    assert_int_equal(num(j, "file.errors"), 0);
    json_decref(j);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_file_clean(path);
    it_cleanup(&t);
}

/* Does "text" appear in rotactl's output for "args"? */
static bool ctl_says(struct it *t, const char *args, const char *text)
{
    it_rotactl(t, args, out, sizeof(out));
    return strstr(out, text) != NULL;
}

/* 9: Redis behind a password on a Unix socket: the state gets there, the password never
 * shows, and a wrong one is refused without being repeated. */
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
    jconfig(&t, 4, journal);
    assert_int_equal(it_start(&t), 0);
    make_state(&t);
    wait_journaled(&t, REDIS_TOO);
    json_t *j = ctl_json(&t, "journal");
    char target[160];
    snprintf(target, sizeof(target), "unix:%s", sock);
    assert_string_equal(str(j, "redis.target"), target);
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
            fail_msg("rotactl %s shows the Redis password:\n%s", views[i], out);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_false(it_log_has(&t, pw));
    /* A wrong password: refused, said so, and not repeated either. */
    char wrong[80];
    snprintf(wrong, sizeof(wrong), "wrong-%s", pw);
    setenv("ROTA_IT_REDIS_PW", wrong, 1);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_true(it_log_has(&t, "Redis could not be read at start"));
    WAIT_FOR(ctl_says(&t, "--json journal", "AUTH"));
    j = ctl_json(&t, "journal");
    assert_false(json_is_true(at(j, "redis.connected")));
    assert_non_null(strstr(str(j, "redis.last_error"), "AUTH"));
    json_decref(j);
    for (size_t i = 0; i < 4; i++)
        if (ctl_says(&t, views[i], "Zq8vX3kT"))
            fail_msg("rotactl %s shows the Redis password:\n%s", views[i], out);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_false(it_log_has(&t, "Zq8vX3kT"));
    unsetenv("ROTA_IT_REDIS_PW");
    it_redis_stop(&r, SIGTERM);
    it_cleanup(&t);
}

/* 10: a file that is not a journal at the configured path: rotad refuses to start, names
 * the path, and leaves the file as it was. */
static void test_journal_refuses_a_file_that_is_not_a_journal(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jnot");
    char path[256], journal[512];
    snprintf(path, sizeof(path), "%s/notes.txt", t.dir);
    const char text[] = "Not a journal: somebody's notes, which must survive.\n";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    snprintf(journal, sizeof(journal), "journal:\n  file: {path: %s}\n", path);
    jconfig(&t, 4, journal);
    sleep_ms(20); /* a write would move the mtime */
    assert_int_equal(it_start(&t), 1);
    char msg[300];
    snprintf(msg, sizeof(msg), "%s: not a rota journal", path);
    assert_true(it_log_has(&t, msg));
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(st1.st_size, sizeof(text) - 1);
    assert_true(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec &&
                st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec);
    unsigned char *p;
    assert_int_equal(slurp(path, &p), sizeof(text) - 1);
    assert_memory_equal(p, text, sizeof(text) - 1);
    free(p);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);
    it_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_journal_file_restores_after_stop, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_restores_without_file, it_teardown),
        cmocka_unit_test_teardown(test_journal_newer_of_file_and_redis_wins, it_teardown),
        cmocka_unit_test_teardown(test_journal_survives_kill9, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_outage_under_load, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_resend_after_drops_has_providers,
                                  it_teardown),
        cmocka_unit_test_teardown(test_journal_torn_tail_is_cut, it_teardown),
        cmocka_unit_test_teardown(test_journal_damaged_record_is_skipped, it_teardown),
        cmocka_unit_test_teardown(test_journal_file_stays_bounded, it_teardown),
        cmocka_unit_test_teardown(test_journal_redis_password_and_socket, it_teardown),
        cmocka_unit_test_teardown(test_journal_refuses_a_file_that_is_not_a_journal,
                                  it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
