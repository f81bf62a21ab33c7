/* test_journal: the journal's records (msgpack codec, CRC-32C), its file (framing, torn
 * tails, corruption, fsync policies, snapshots), capture and restore of an account's
 * durable state on real tables, and the journal thread writing a file that recovery
 * restores. Real files in a temporary directory, real shared memory; nothing mocked. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "breaker.h"
#include "clock.h"
#include "fixture.h"
#include "jfile.h"
#include "journal.h"
#include "jrecord.h"
#include "select.h"
#include "supervise.h"
#include "view.h"

#define MS      ROTA_NS_PER_MS
#define S       ROTA_NS_PER_S
#define DAY_NS  (86400 * (int64_t)ROTA_NS_PER_S)
#define AT0     INT64_C(1750000000000000000) /* 2025-06-15 15:06:40 UTC: file records' times */
#define WAIT_NS (5 * S) /* how long a condition may take to hold, at most: far beyond need */
#define NACC    5       /* accounts of the state tests' table */

struct ctx {
    char dir[64];
    char path[128];    /* <dir>/journal */
    struct fx f, g, h; /* the table, and fresh ones to restore into */
    struct rota_journal *j;
    struct rota_jfile *jf;
};

/* ---- fixtures: temporary directory, segments ---- */

static int setup(void **state)
{
    static struct ctx c;
    memset(&c, 0, sizeof(c));
    snprintf(c.dir, sizeof(c.dir), "/tmp/rota-tj%d-XXXXXX", (int)getpid());
    if (!mkdtemp(c.dir))
        return -1;
    snprintf(c.path, sizeof(c.path), "%s/journal", c.dir);
    *state = &c;
    return 0;
}

/* Remove /dev/shm/rota.<instance> and every rota.<instance>.* a test may have left. */
static void unlink_segments(const char *instance)
{
    if (!instance[0])
        return;
    char base[96];
    int blen = snprintf(base, sizeof(base), "rota.%s", instance);
    DIR *d = opendir("/dev/shm");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, (size_t)blen) != 0 ||
            (e->d_name[blen] != 0 && e->d_name[blen] != '.'))
            continue;
        char name[320];
        snprintf(name, sizeof(name), "/%s", e->d_name);
        shm_unlink(name);
    }
    closedir(d);
}

static void close_fx(struct fx *f)
{
    char instance[sizeof(f->instance)];
    memcpy(instance, f->instance, sizeof(instance));
    fx_close(f);
    unlink_segments(instance);
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    rota_journal_stop(c->j);
    c->j = NULL;
    rota_jfile_close(c->jf);
    c->jf = NULL;
    close_fx(&c->f);
    close_fx(&c->g);
    close_fx(&c->h);
    DIR *d = opendir(c->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[400];
            snprintf(p, sizeof(p), "%s/%s", c->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(c->dir);
    return 0;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void assert_near(int64_t got, int64_t want, int64_t tolerance)
{
    int64_t d = got > want ? got - want : want - got;
    if (d > tolerance)
        fail_msg("%" PRId64 " is %" PRId64 " away from %" PRId64 " (tolerance %" PRId64 ")",
                 got, d, want, tolerance);
}

/* ---- records: comparing ---- */

static void assert_breaker_eq(const struct rota_jbreaker *a, const struct rota_jbreaker *b)
{
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->trips, b->trips);
    assert_int_equal(a->until, b->until);
    assert_int_equal(a->consec, b->consec);
}

static void assert_account_eq(const struct rota_jaccount *a, const struct rota_jaccount *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->what, b->what);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->reason, b->reason);
    assert_int_equal(a->disabled_until, b->disabled_until);
    assert_int_equal(a->wdisable, b->wdisable);
    assert_int_equal(a->wdisable_until, b->wdisable_until);
    assert_int_equal(a->cooldown_until, b->cooldown_until);
    assert_int_equal(a->consec_429, b->consec_429);
    assert_breaker_eq(&a->breaker, &b->breaker);
    assert_int_equal(a->requests, b->requests);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->tokens, b->tokens);
    assert_int_equal(a->failures, b->failures);
    assert_int_equal(a->rate_limited, b->rate_limited);
    assert_int_equal(a->auth_failures, b->auth_failures);
    assert_int_equal(a->probe_at, b->probe_at);
    assert_int_equal(a->last_used, b->last_used);
    assert_int_equal(a->nwin, b->nwin);
    for (uint32_t w = 0; w < a->nwin; w++) {
        assert_int_equal(a->win[w].metric, b->win[w].metric);
        assert_int_equal(a->win[w].pool, b->win[w].pool);
        assert_int_equal(a->win[w].used, b->win[w].used);
        assert_int_equal(a->win[w].limit, b->win[w].limit);
        assert_int_equal(a->win[w].reset_at, b->win[w].reset_at);
    }
}

static void assert_rec_eq(const struct rota_jrec *a, const struct rota_jrec *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->at, b->at);
    switch (a->type) {
    case ROTA_JREC_ACCOUNT:
        assert_account_eq(&a->u.acc, &b->u.acc);
        break;
    case ROTA_JREC_PROVIDER:
        assert_string_equal(a->u.prov.name, b->u.prov.name);
        assert_breaker_eq(&a->u.prov.breaker, &b->u.prov.breaker);
        break;
    case ROTA_JREC_GENERATION:
        assert_int_equal(a->u.gen.generation, b->u.gen.generation);
        assert_int_equal(a->u.gen.config_hash, b->u.gen.config_hash);
        assert_int_equal(a->u.gen.naccounts, b->u.gen.naccounts);
        break;
    case ROTA_JREC_SNAPSHOT:
        assert_int_equal(a->u.count, b->u.count);
        break;
    default:
        fail_msg("record type %u", a->type);
    }
}

/* ---- records: the ones the codec tests use ---- */

/* Values on every msgpack width boundary. */
static const uint64_t U64S[] = {0,          1,
                                127,        128,
                                255,        256,
                                65535,      65536,
                                UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                                INT64_MAX,  (uint64_t)INT64_MAX + 1,
                                UINT64_MAX};
static const int64_t I64S[] = {0,         -1,     -32,    -33,       -128,
                               -129,      -32768, -32769, INT32_MIN, (int64_t)INT32_MIN - 1,
                               INT64_MIN, 127,    128,    65536,     INT64_MAX};
#define NU64 (sizeof(U64S) / sizeof(U64S[0]))
#define NI64 (sizeof(I64S) / sizeof(I64S[0]))

static uint64_t u_at(unsigned k, uint64_t max)
{
    uint64_t v = U64S[k % NU64];
    return v > max ? max : v;
}

/* An account record with extreme values: all at their largest ("k" < 0), or the
 * boundary values shifted by "k" through the fields. */
static struct rota_jrec rec_account(int k)
{
    struct rota_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_ACCOUNT;
    struct rota_jaccount *a = &r.u.acc;
    if (k < 0) {
        r.seq = UINT64_MAX;
        r.at = INT64_MIN;
        a->id = UINT64_MAX;
        a->what = a->flags = UINT32_MAX;
        a->reason = a->wdisable = 255;
        a->disabled_until = INT64_MAX;
        a->wdisable_until = INT64_MIN;
        a->cooldown_until = -1;
        a->consec_429 = UINT32_MAX;
        a->breaker = (struct rota_jbreaker){ROTA_BREAKER_HALF_OPEN, 63, INT64_MIN, UINT32_MAX};
        a->requests = a->done = a->tokens = UINT64_MAX;
        a->failures = a->rate_limited = a->auth_failures = UINT64_MAX;
        a->probe_at = INT64_MAX;
        a->last_used = INT64_MIN;
        a->nwin = ROTA_MAX_WINDOWS;
        for (uint32_t w = 0; w < ROTA_MAX_WINDOWS; w++)
            a->win[w] = (struct rota_jwin){.metric = (uint8_t)(w % 4),
                                           .pool = (uint8_t)(3 - w % 4),
                                           .used = UINT64_MAX - w,
                                           .limit = w & 1 ? UINT64_MAX : 0,
                                           .reset_at = w & 1 ? INT64_MIN + w : INT64_MAX - w};
        return r;
    }
    unsigned u = (unsigned)k, i = (unsigned)k;
    r.seq = u_at(u++, UINT64_MAX);
    r.at = I64S[i++ % NI64];
    a->id = u_at(u++, UINT64_MAX);
    if (a->id == 0)
        a->id = 1; /* id 0 is refused */
    a->what = (uint32_t)u_at(u++, UINT32_MAX);
    a->flags = (uint32_t)u_at(u++, UINT32_MAX);
    a->reason = (uint32_t)u_at(u++, 255);
    a->disabled_until = I64S[i++ % NI64];
    a->wdisable = (uint32_t)u_at(u++, 255);
    a->wdisable_until = I64S[i++ % NI64];
    a->cooldown_until = I64S[i++ % NI64];
    a->consec_429 = (uint32_t)u_at(u++, UINT32_MAX);
    a->breaker.state = (uint8_t)(k % 3);
    a->breaker.trips = (uint8_t)u_at(u++, 63);
    a->breaker.until = I64S[i++ % NI64];
    a->breaker.consec = (uint32_t)u_at(u++, UINT32_MAX);
    a->requests = u_at(u++, UINT64_MAX);
    a->done = u_at(u++, UINT64_MAX);
    a->tokens = u_at(u++, UINT64_MAX);
    a->failures = u_at(u++, UINT64_MAX);
    a->rate_limited = u_at(u++, UINT64_MAX);
    a->auth_failures = u_at(u++, UINT64_MAX);
    a->probe_at = I64S[i++ % NI64];
    a->last_used = I64S[i++ % NI64];
    a->nwin = (uint32_t)k % (ROTA_MAX_WINDOWS + 1);
    for (uint32_t w = 0; w < a->nwin; w++) {
        struct rota_jwin *x = &a->win[w];
        x->metric = (uint8_t)((k + w) % 4);
        x->pool = (uint8_t)(w % ROTA_MAX_POOLS);
        x->used = u_at(u++, UINT64_MAX);
        x->limit = u_at(u++, UINT64_MAX);
        x->reset_at = I64S[i++ % NI64];
    }
    return r;
}

static struct rota_jrec rec_provider(size_t namelen, uint8_t state)
{
    struct rota_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_PROVIDER;
    r.seq = namelen;
    r.at = -(int64_t)namelen;
    for (size_t i = 0; i < namelen; i++)
        r.u.prov.name[i] = (char)('a' + i % 26);
    r.u.prov.breaker = (struct rota_jbreaker){state, (uint8_t)(namelen & 63), INT64_MAX - 5,
                                              (uint32_t)namelen * 1000};
    return r;
}

static struct rota_jrec rec_generation(bool max)
{
    struct rota_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_GENERATION;
    r.seq = max ? UINT64_MAX : 0;
    r.at = max ? INT64_MAX : 0;
    r.u.gen = max ? (struct rota_jgeneration){UINT64_MAX, UINT64_MAX, UINT32_MAX}
                  : (struct rota_jgeneration){0, 0, 0};
    return r;
}

static struct rota_jrec rec_snapshot(uint32_t count)
{
    struct rota_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_SNAPSHOT;
    r.seq = count;
    r.at = count ? INT64_MIN : 0;
    r.u.count = count;
    return r;
}

/* Every record the codec tests run: each type at its extremes. */
static size_t all_records(struct rota_jrec *out, size_t cap)
{
    size_t n = 0;
    out[n++] = rec_account(-1);
    for (int k = 0; k < 24; k++)
        out[n++] = rec_account(k);
    struct rota_jrec min = rec_account(0);
    memset(&min.u.acc, 0, sizeof(min.u.acc));
    min.u.acc.id = 1;
    out[n++] = min;
    static const size_t names[] = {1, 2, 31, 32, ROTA_MAX_NAME - 1};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        out[n++] = rec_provider(names[i], (uint8_t)(i % 3));
    out[n++] = rec_generation(false);
    out[n++] = rec_generation(true);
    out[n++] = rec_snapshot(0);
    out[n++] = rec_snapshot(UINT32_MAX);
    assert_true(n <= cap);
    return n;
}

static size_t enc(const struct rota_jrec *r, uint8_t *buf)
{
    size_t n = rota_jrec_encode(r, buf, ROTA_JREC_MAX);
    assert_true(n > 0 && n <= ROTA_JREC_MAX);
    return n;
}

/* Decode from an allocation of exactly "len" bytes, so a read past the end is caught by
 * the address sanitizer. */
static int dec(const void *bytes, size_t len, struct rota_jrec *r, char *err, size_t n)
{
    void *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, bytes, len);
    err[0] = 0;
    int rc = rota_jrec_decode(p, len, r, err, n);
    free(p);
    return rc;
}

/* ---- records: a hand packer for shapes the encoder never makes ---- */

/* Packs records field by field as jrecord.c lays them out, with "extra" values a newer
 * writer of the same version might append to every array, and scalar number "override"
 * (0 version, 1 type, 2 seq, 3 at, then the body's scalars in order) replaced by "raw". */
struct shaped {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned extra;
    int field, override;
    bool raw_signed;
    uint64_t raw;
};

static void sh_init(struct shaped *s, unsigned extra, int override, bool raw_signed,
                    uint64_t raw)
{
    memset(s, 0, sizeof(*s));
    msgpack_sbuffer_init(&s->sb);
    msgpack_packer_init(&s->pk, &s->sb, msgpack_sbuffer_write);
    s->extra = extra;
    s->override = override;
    s->raw_signed = raw_signed;
    s->raw = raw;
}

static void sh_raw(struct shaped *s)
{
    if (s->raw_signed)
        msgpack_pack_int64(&s->pk, (int64_t)s->raw);
    else
        msgpack_pack_uint64(&s->pk, s->raw);
}

static void sh_u(struct shaped *s, uint64_t v)
{
    if (s->field++ == s->override)
        sh_raw(s);
    else
        msgpack_pack_uint64(&s->pk, v);
}

static void sh_i(struct shaped *s, int64_t v)
{
    if (s->field++ == s->override)
        sh_raw(s);
    else
        msgpack_pack_int64(&s->pk, v);
}

static void sh_array(struct shaped *s, uint32_t n)
{
    msgpack_pack_array(&s->pk, n + s->extra);
}

/* What a newer writer might append: a value of each msgpack family in turn. */
static void sh_extra(struct shaped *s)
{
    static const char big[300] = "a long string";
    for (unsigned i = 0; i < s->extra; i++) {
        msgpack_packer *pk = &s->pk;
        switch (i % 9) {
        case 0:
            msgpack_pack_nil(pk);
            break;
        case 1:
            msgpack_pack_str(pk, 4);
            msgpack_pack_str_body(pk, "next", 4);
            break;
        case 2:
            msgpack_pack_map(pk, 1);
            msgpack_pack_uint8(pk, 1);
            msgpack_pack_array(pk, 3);
            msgpack_pack_true(pk);
            msgpack_pack_double(pk, -1.5);
            msgpack_pack_array(pk, 0);
            break;
        case 3:
            msgpack_pack_bin(pk, 3);
            msgpack_pack_bin_body(pk, "\x00\x01\x02", 3);
            break;
        case 4:
            msgpack_pack_ext(pk, 1, 7);
            msgpack_pack_ext_body(pk, "x", 1);
            break;
        case 5:
            msgpack_pack_float(pk, 2.5f);
            break;
        case 6:
            msgpack_pack_int64(pk, INT64_MIN);
            break;
        case 7:
            msgpack_pack_ext(pk, 20, -3);
            msgpack_pack_ext_body(pk, big, 20);
            break;
        case 8:
            msgpack_pack_str(pk, sizeof(big));
            msgpack_pack_str_body(pk, big, sizeof(big));
            break;
        }
    }
}

static void sh_header(struct shaped *s, const struct rota_jrec *r, uint32_t nbody)
{
    sh_array(s, 4 + nbody);
    sh_u(s, ROTA_JREC_VERSION);
    sh_u(s, r->type);
    sh_u(s, r->seq);
    sh_i(s, r->at);
}

static void sh_breaker(struct shaped *s, const struct rota_jbreaker *b)
{
    sh_array(s, 4);
    sh_u(s, b->state);
    sh_u(s, b->trips);
    sh_i(s, b->until);
    sh_u(s, b->consec);
    sh_extra(s);
}

/* An account record with "nwin" windows (beyond 8, the first ones again). */
static void sh_account(struct shaped *s, const struct rota_jrec *r, uint32_t nwin)
{
    const struct rota_jaccount *a = &r->u.acc;
    sh_header(s, r, 14);
    sh_u(s, a->id);
    sh_u(s, a->what);
    sh_u(s, a->flags);
    sh_u(s, a->reason);
    sh_i(s, a->disabled_until);
    sh_u(s, a->wdisable);
    sh_i(s, a->wdisable_until);
    sh_i(s, a->cooldown_until);
    sh_u(s, a->consec_429);
    sh_breaker(s, &a->breaker);
    sh_array(s, 6);
    sh_u(s, a->requests);
    sh_u(s, a->done);
    sh_u(s, a->tokens);
    sh_u(s, a->failures);
    sh_u(s, a->rate_limited);
    sh_u(s, a->auth_failures);
    sh_extra(s);
    sh_i(s, a->probe_at);
    msgpack_pack_array(&s->pk, nwin); /* more elements here would be more windows */
    for (uint32_t w = 0; w < nwin; w++) {
        const struct rota_jwin *x = &a->win[w % ROTA_MAX_WINDOWS];
        sh_array(s, 5);
        sh_u(s, x->metric);
        sh_u(s, x->pool);
        sh_u(s, x->used);
        sh_u(s, x->limit);
        sh_i(s, x->reset_at);
        sh_extra(s);
    }
    sh_i(s, a->last_used);
    sh_extra(s);
}

static void sh_record(struct shaped *s, const struct rota_jrec *r)
{
    switch (r->type) {
    case ROTA_JREC_ACCOUNT:
        sh_account(s, r, r->u.acc.nwin);
        return;
    case ROTA_JREC_PROVIDER: {
        size_t len = strlen(r->u.prov.name);
        sh_header(s, r, 2);
        msgpack_pack_str(&s->pk, len);
        msgpack_pack_str_body(&s->pk, r->u.prov.name, len);
        sh_breaker(s, &r->u.prov.breaker);
        break;
    }
    case ROTA_JREC_GENERATION:
        sh_header(s, r, 3);
        sh_u(s, r->u.gen.generation);
        sh_u(s, r->u.gen.config_hash);
        sh_u(s, r->u.gen.naccounts);
        break;
    case ROTA_JREC_SNAPSHOT:
        sh_header(s, r, 1);
        sh_u(s, r->u.count);
        break;
    }
    sh_extra(s);
}

/* ---- record codec ---- */

static void test_journal_codec_round_trips_every_type_at_extremes(void **state)
{
    static struct rota_jrec recs[64];
    size_t n = all_records(recs, 64);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[ROTA_JREC_MAX], again[ROTA_JREC_MAX];
        size_t len = enc(&recs[i], buf);
        /* too small a buffer: 0, never a partial record */
        for (size_t cap = 0; cap < len; cap++)
            assert_int_equal(rota_jrec_encode(&recs[i], again, cap), 0);
        struct rota_jrec back;
        char err[200];
        int rc = dec(buf, len, &back, err, sizeof(err));
        if (rc)
            fail_msg("record %zu (%s): %s", i, rota_jrec_type_name(recs[i].type), err);
        assert_rec_eq(&recs[i], &back);
        /* and canonical: the decoded record encodes to the same bytes */
        assert_int_equal(rota_jrec_encode(&back, again, sizeof(again)), len);
        assert_memory_equal(buf, again, len);
        /* the hand packer lays records out as the encoder does */
        struct shaped s;
        sh_init(&s, 0, -1, false, 0);
        sh_record(&s, &recs[i]);
        assert_int_equal(s.sb.size, len);
        assert_memory_equal(s.sb.data, buf, len);
        msgpack_sbuffer_destroy(&s.sb);
    }
    /* the largest record fits the bound with room to spare */
    uint8_t buf[ROTA_JREC_MAX];
    assert_true(enc(&recs[0], buf) < ROTA_JREC_MAX / 2);
    struct rota_jrec bad = rec_snapshot(1);
    bad.type = 9;
    assert_int_equal(rota_jrec_encode(&bad, buf, sizeof(buf)), 0);
}

static void test_journal_codec_refuses_every_truncation(void **state)
{
    static struct rota_jrec recs[64];
    size_t n = all_records(recs, 64);
    for (size_t i = 0; i <= n; i++) {
        static uint8_t buf[8192];
        size_t len;
        struct shaped s;
        if (i < n) {
            len = enc(&recs[i], buf);
        } else { /* a newer writer's record: every skipped value cut too */
            sh_init(&s, 9, -1, false, 0);
            sh_record(&s, &recs[0]);
            assert_true(s.sb.size <= sizeof(buf));
            len = s.sb.size;
            memcpy(buf, s.sb.data, len);
            msgpack_sbuffer_destroy(&s.sb);
        }
        for (size_t cut = 0; cut < len; cut++) {
            struct rota_jrec r;
            char err[200];
            int rc = dec(buf, cut, &r, err, sizeof(err));
            if (rc != -EINVAL)
                fail_msg("record %zu cut to %zu of %zu bytes: %d", i, cut, len, rc);
            assert_true(err[0] != 0);
        }
    }
}

static void expect_refused(const void *bytes, size_t len, int want, const char *why)
{
    struct rota_jrec r;
    char err[200];
    int rc = dec(bytes, len, &r, err, sizeof(err));
    if (rc != want || !strstr(err, why))
        fail_msg("got %d \"%s\", want %d with \"%s\"", rc, err, want, why);
}

static void test_journal_codec_refuses_what_it_cannot_read(void **state)
{
    /* [version, type, seq, at, count]: a SNAPSHOT record, then variations */
    static const char ok[] = "\x95\x01\x04\x01\x00\x03";
    struct rota_jrec r;
    char err[200];
    assert_int_equal(dec(ok, 6, &r, err, sizeof(err)), 0);
    assert_int_equal(r.type, ROTA_JREC_SNAPSHOT);
    assert_int_equal(r.u.count, 3);
    expect_refused("\x95\x02\x04\x01\x00\x03", 6, -ENOTSUP, "version 2");
    expect_refused("\x95\xcd\x01\x00\x04\x01\x00\x03", 8, -ENOTSUP, "version 256");
    expect_refused("\x95\x01\x05\x01\x00\x03", 6, -ENOTSUP, "type 5");
    expect_refused("\x95\x01\x00\x01\x00\x03", 6, -ENOTSUP, "type 0");
    expect_refused("\x95\x01\x04\x01\x00\x03\xc0", 7, -EINVAL, "trailing bytes");
    expect_refused("\x95\x01\x04\x01\x00\x03\x00", 7, -EINVAL, "trailing bytes");
    expect_refused("\x94\x01\x04\x01\x00", 5, -EINVAL, "too few fields");
    expect_refused("\x95\x01\x03\x01\x00\x03", 6, -EINVAL, "too few fields");
    expect_refused("\x01", 1, -EINVAL, "expected an array");
    expect_refused("\x95\x01\x04\xff\x00\x03", 6, -EINVAL, "non-negative");
    expect_refused("\x95\x01\x04\x01\xc0\x03", 6, -EINVAL, "expected an integer");
    expect_refused("\x95\x01\x04\x01\x00\xce\x00\x00\x00\x01", 10, 0, ""); /* u32: fine */
    expect_refused("\x95\x01\x04\x01\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 14, -EINVAL,
                   "out of range");
    expect_refused("\x95\x01\x04\x01\xcf\x80\x00\x00\x00\x00\x00\x00\x00\x03", 14, -EINVAL,
                   "out of range"); /* "at" past INT64_MAX */
    expect_refused("\xdd\xff\xff\xff\xff\x01\x04\x01\x00\x03", 10, -EINVAL,
                   "array longer than the record");
    /* a newer writer's extra field that is not msgpack at all */
    expect_refused("\x96\x01\x04\x01\x00\x03\xc1", 7, -EINVAL, "not a msgpack value");

    uint8_t buf[ROTA_JREC_MAX];
    struct rota_jrec acc = rec_account(-1);
    acc.u.acc.id = 0;
    expect_refused(buf, enc(&acc, buf), -EINVAL, "account id 0");

    struct shaped s;
    acc = rec_account(-1);
    sh_init(&s, 0, -1, false, 0);
    sh_account(&s, &acc, ROTA_MAX_WINDOWS + 1);
    expect_refused(s.sb.data, s.sb.size, -EINVAL, "more windows");
    msgpack_sbuffer_destroy(&s.sb);

    /* each field just out of its range */
    static const struct {
        int field;
        bool neg;
        uint64_t raw;
        const char *why;
    } bad[] = {
        {2, true, (uint64_t)-1, "non-negative"},                /* seq */
        {4, true, (uint64_t)-1, "non-negative"},                /* id */
        {5, false, (uint64_t)1 << 32, "out of range"},          /* what */
        {6, false, (uint64_t)1 << 32, "out of range"},          /* flags */
        {7, false, 256, "out of range"},                        /* reason */
        {8, false, (uint64_t)1 << 63, "out of range"},          /* disabled_until */
        {9, false, 256, "out of range"},                        /* wdisable */
        {12, false, (uint64_t)1 << 32, "out of range"},         /* consec_429 */
        {13, false, 3, "out of range"},                         /* breaker state */
        {14, false, 64, "out of range"},                        /* breaker trips */
        {15, false, UINT64_MAX, "out of range"},                /* breaker until */
        {16, false, (uint64_t)1 << 32, "out of range"},         /* breaker consec */
        {17, true, (uint64_t)-5, "non-negative"},               /* requests */
        {22, true, (uint64_t)INT64_MIN, "non-negative"},        /* auth_failures */
        {24, false, ROTA_METRIC_FRACTION + 1, "out of range"},  /* window metric */
        {25, false, ROTA_MAX_POOLS, "out of range"},            /* window pool */
        {26, true, (uint64_t)-1, "non-negative"},               /* window used */
        {28 + 5 * 7, false, (uint64_t)1 << 63, "out of range"}, /* last window reset_at */
        {24 + 5 * 8, false, (uint64_t)1 << 63, "out of range"}, /* last_used */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sh_init(&s, 0, bad[i].field, bad[i].neg, bad[i].raw);
        sh_account(&s, &acc, acc.u.acc.nwin);
        int rc = dec(s.sb.data, s.sb.size, &r, err, sizeof(err));
        if (rc != -EINVAL || !strstr(err, bad[i].why))
            fail_msg("field %d = %" PRIu64 ": %d \"%s\"", bad[i].field, bad[i].raw, rc, err);
        msgpack_sbuffer_destroy(&s.sb);
    }

    /* provider names: empty, too long, holding a NUL, not a string */
    char name[ROTA_MAX_NAME + 1];
    memset(name, 'p', sizeof(name));
    static const struct {
        size_t len;
        bool nul;
        const char *why;
    } names[] = {{0, false, "empty or too long"},
                 {ROTA_MAX_NAME, false, "empty or too long"},
                 {5, true, "NUL"}};
    struct rota_jrec prov = rec_provider(3, 1);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        name[2] = names[i].nul ? 0 : 'p';
        sh_init(&s, 0, -1, false, 0);
        sh_header(&s, &prov, 2);
        msgpack_pack_str(&s.pk, names[i].len);
        msgpack_pack_str_body(&s.pk, name, names[i].len);
        sh_breaker(&s, &prov.u.prov.breaker);
        expect_refused(s.sb.data, s.sb.size, -EINVAL, names[i].why);
        msgpack_sbuffer_destroy(&s.sb);
    }
    sh_init(&s, 0, -1, false, 0);
    sh_header(&s, &prov, 2);
    msgpack_pack_uint8(&s.pk, 7);
    sh_breaker(&s, &prov.u.prov.breaker);
    expect_refused(s.sb.data, s.sb.size, -EINVAL, "provider's name");
    msgpack_sbuffer_destroy(&s.sb);

    /* no error buffer: the same answer */
    assert_int_equal(rota_jrec_decode("\x95\x02\x04\x01\x00\x03", 6, &r, NULL, 0), -ENOTSUP);
    assert_int_equal(rota_jrec_decode("\x95\x01\x04\x01\x00", 5, &r, NULL, 0), -EINVAL);
}

static void test_journal_codec_accepts_a_newer_writers_extra_fields(void **state)
{
    static struct rota_jrec recs[64];
    size_t n = all_records(recs, 64);
    for (unsigned extra = 1; extra <= 9; extra += 4) {
        for (size_t i = 0; i < n; i++) {
            struct shaped s;
            sh_init(&s, extra, -1, false, 0);
            sh_record(&s, &recs[i]);
            struct rota_jrec back;
            char err[200];
            int rc = dec(s.sb.data, s.sb.size, &back, err, sizeof(err));
            if (rc)
                fail_msg("record %zu with %u extra fields per array: %s", i, extra, err);
            assert_rec_eq(&recs[i], &back);
            msgpack_sbuffer_destroy(&s.sb);
        }
    }
}

static void test_journal_crc32c_matches_the_check_value(void **state)
{
    assert_int_equal(rota_crc32c(0, "123456789", 9), 0xE3069283u);
    /* in pieces: the same */
    assert_int_equal(rota_crc32c(rota_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(rota_crc32c(0, "", 0), 0);
    /* 32 zero bytes (RFC 3720, B.4) */
    uint8_t zeros[32] = {0};
    assert_int_equal(rota_crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
}

static void test_journal_change_names(void **state)
{
    char buf[128];
    assert_string_equal(rota_jchg_names(0, buf, sizeof(buf)), "");
    assert_string_equal(rota_jchg_names(ROTA_JCHG_USAGE | ROTA_JCHG_COOLDOWN | ROTA_JCHG_FULL,
                                        buf, sizeof(buf)),
                        "usage,cooldown,full");
    assert_string_equal(rota_jchg_names(0xffu, buf, sizeof(buf)),
                        "usage,observed,cooldown,breaker,disable,enable,reset,full");
    char small[8];
    rota_jchg_names(0xffu, small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
    assert_string_equal(rota_jrec_type_name(ROTA_JREC_GENERATION), "generation");
    assert_string_equal(rota_jrec_type_name(77), "unknown");
}

/* ---- the file ---- */

/* A file test's account record "i". */
static struct rota_jrec file_rec(uint32_t i, uint64_t id0)
{
    struct rota_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_ACCOUNT;
    r.seq = id0 + i;
    r.at = AT0 + (int64_t)i * (int64_t)MS;
    r.u.acc.id = id0 + i;
    r.u.acc.what = ROTA_JCHG_USAGE;
    r.u.acc.requests = r.u.acc.done = i * 7;
    r.u.acc.nwin = 1;
    r.u.acc.win[0] = (struct rota_jwin){0, 0, i * 3, 1000, AT0 + DAY_NS};
    return r;
}

static void put(struct rota_jfile *f, const struct rota_jrec *r, size_t *len)
{
    uint8_t buf[ROTA_JREC_MAX];
    size_t n = enc(r, buf);
    assert_int_equal(rota_jfile_put(f, buf, n), 0);
    if (len)
        *len = n;
}

/* Write "n" account records (ids 1000..) to the journal: a snapshot of the first "nsnap"
 * after its SNAPSHOT record, the rest appended in writes of 3. off[k] is where frame k
 * starts (frame 0 the SNAPSHOT record, frame k > 0 account record k - 1); off[n + 1] is
 * the end of the file. */
static void write_journal(struct ctx *c, enum rota_fsync policy, uint32_t nsnap, uint32_t n,
                          uint64_t *off)
{
    char err[256] = "";
    assert_int_equal(rota_jfile_open(c->path, policy, 10 * MS, &c->jf, err, sizeof(err)), 0);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    struct rota_jrec r = rec_snapshot(nsnap);
    r.at = AT0 - 1;
    size_t len;
    put(c->jf, &r, &len);
    off[0] = ROTA_JFILE_HEADER;
    off[1] = off[0] + ROTA_JFILE_FRAME + len;
    for (uint32_t i = 0; i < n; i++) {
        if (i == nsnap)
            assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
        else if (i > nsnap && (i - nsnap) % 3 == 0)
            assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
        r = file_rec(i, 1000);
        put(c->jf, &r, &len);
        off[i + 2] = off[i + 1] + ROTA_JFILE_FRAME + len;
    }
    if (nsnap >= n)
        assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    else
        assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
    struct rota_jfile_stats st;
    rota_jfile_stats(c->jf, &st);
    assert_int_equal(st.bytes, off[n + 1]);
    assert_int_equal(st.records, n + 1);
    assert_int_equal(st.errors, 0);
    assert_int_equal(rota_jfile_pending(c->jf), 0);
    rota_jfile_close(c->jf);
    c->jf = NULL;
}

/* What a read passed on, in order. */
static struct {
    uint64_t n;
    uint32_t type[1024];
    uint64_t id[1024]; /* account id, or the SNAPSHOT's count */
} got;

static int collect(void *arg, const struct rota_jrec *r)
{
    (void)arg;
    if (got.n < 1024) {
        got.type[got.n] = r->type;
        got.id[got.n] = r->type == ROTA_JREC_ACCOUNT ? r->u.acc.id : r->u.count;
    }
    got.n++;
    return 0;
}

static int read_journal(const char *path, struct rota_jfile_scan *sc, char *err, size_t n)
{
    memset(&got, 0, sizeof(got));
    err[0] = 0;
    return rota_jfile_read(path, collect, NULL, sc, err, n);
}

static uint8_t *slurp(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *size = (size_t)st.st_size;
    return p;
}

static void spit(const char *path, const void *p, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, size), (ssize_t)size);
    close(fd);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void assert_offset(const struct rota_jfile_scan *sc, uint64_t off)
{
    char want[32];
    snprintf(want, sizeof(want), "offset %" PRIu64 ":", off);
    if (strncmp(sc->first_problem, want, strlen(want)) != 0)
        fail_msg("first_problem \"%s\", want it at %s", sc->first_problem, want);
}

/* Records 0..n-1 of write_journal read back, in order, without "skip" (-1 = none). */
static void assert_got(uint32_t n, int skip)
{
    uint64_t k = 0;
    assert_int_equal(got.type[k++], ROTA_JREC_SNAPSHOT);
    for (uint32_t i = 0; i < n; i++) {
        if ((int)i == skip)
            continue;
        assert_int_equal(got.type[k], ROTA_JREC_ACCOUNT);
        assert_int_equal(got.id[k], 1000 + i);
        k++;
    }
    assert_int_equal(got.n, k);
}

static void test_journal_file_reads_back_what_was_written(void **state)
{
    struct ctx *c = *state;
    enum { N = 50, NSNAP = 10 };
    uint64_t off[N + 2];
    write_journal(c, ROTA_FSYNC_INTERVAL, NSNAP, N, off);
    struct rota_jfile_scan sc;
    char err[256];
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N + 1);
    assert_int_equal(sc.snapshots, 1);
    assert_int_equal(sc.corrupt, 0);
    assert_int_equal(sc.corrupt_bytes, 0);
    assert_int_equal(sc.torn_bytes, 0);
    assert_int_equal(sc.size, off[N + 1]);
    assert_int_equal(sc.newest_at, AT0 + (N - 1) * (int64_t)MS);
    assert_string_equal(sc.first_problem, "");
    assert_got(N, -1);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    assert_false(exists(tmp));
}

static int stop_at_third(void *arg, const struct rota_jrec *r)
{
    int *n = arg;
    return ++*n == 3 ? 42 : 0;
}

static void test_journal_file_callback_stops_the_walk(void **state)
{
    struct ctx *c = *state;
    uint64_t off[12];
    write_journal(c, ROTA_FSYNC_NEVER, 4, 10, off);
    struct rota_jfile_scan sc;
    char err[256] = "";
    int n = 0;
    assert_int_equal(rota_jfile_read(c->path, stop_at_third, &n, &sc, err, sizeof(err)), 42);
    assert_int_equal(n, 3);
    assert_int_equal(sc.records, 3);
}

static void test_journal_file_torn_tail_is_cut(void **state)
{
    struct ctx *c = *state;
    enum { N = 12 };
    uint64_t off[N + 2];
    write_journal(c, ROTA_FSYNC_ALWAYS, 4, N, off);
    size_t size;
    uint8_t *orig = slurp(c->path, &size);
    assert_int_equal(size, off[N + 1]);
    uint64_t last = off[N]; /* the last frame: account record N - 1 */
    struct rota_jfile_scan sc;
    char err[256];

    /* cut anywhere inside the last frame, its header included */
    for (uint64_t cut = 1; cut < size - last; cut++) {
        spit(c->path, orig, last + cut);
        assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
        assert_int_equal(sc.records, N);
        assert_got(N - 1, -1);
        assert_int_equal(sc.torn_bytes, cut);
        assert_int_equal(sc.corrupt, 0);
        assert_int_equal(sc.newest_at, AT0 + (N - 2) * (int64_t)MS);
        assert_non_null(strstr(sc.first_problem, "torn"));
        assert_offset(&sc, last);
    }
    /* cut at a frame's boundary: nothing torn */
    spit(c->path, orig, last);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N);
    assert_int_equal(sc.torn_bytes, 0);
    assert_string_equal(sc.first_problem, "");

    /* garbage after the last frame: random bytes, then zeros (a preallocated tail) */
    uint8_t *buf = malloc(size + 4096);
    assert_non_null(buf);
    memcpy(buf, orig, size);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int trial = 0; trial < 40; trial++) {
        size_t glen = 1 + xorshift(&rng) % 300;
        for (size_t i = 0; i < glen; i++)
            buf[size + i] = (uint8_t)xorshift(&rng);
        spit(c->path, buf, size + glen);
        assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
        assert_int_equal(sc.records, N + 1);
        assert_got(N, -1);
        assert_int_equal(sc.torn_bytes, glen);
        assert_int_equal(sc.corrupt, 0);
        assert_non_null(strstr(sc.first_problem, "torn"));
        assert_offset(&sc, size);
    }
    memset(buf + size, 0, 4096);
    spit(c->path, buf, size + 4096);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N + 1);
    assert_int_equal(sc.torn_bytes, 4096);
    assert_int_equal(sc.corrupt, 0);
    assert_non_null(strstr(sc.first_problem, "torn"));
    free(buf);
    free(orig);
}

static void test_journal_file_corrupt_record_is_skipped_alone(void **state)
{
    struct ctx *c = *state;
    enum { N = 20, K = 10 }; /* frame K: account record K - 1 */
    uint64_t off[N + 2];
    write_journal(c, ROTA_FSYNC_INTERVAL, 5, N, off);
    size_t size;
    uint8_t *orig = slurp(c->path, &size);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    struct rota_jfile_scan sc;
    char err[256];
    /* every byte of the frame: sync word, length, checksum, payload */
    for (uint64_t b = off[K]; b < off[K + 1]; b++) {
        memcpy(buf, orig, size);
        buf[b] ^= 0x5a;
        spit(c->path, buf, size);
        assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
        if (sc.records != N || sc.corrupt != 1)
            fail_msg("byte %" PRIu64 " of frame %d flipped: records %" PRIu64
                     ", corrupt %" PRIu64 " (%s)",
                     b - off[K], K, sc.records, sc.corrupt, sc.first_problem);
        assert_got(N, K - 1);
        assert_int_equal(sc.corrupt_bytes, off[K + 1] - off[K]);
        assert_int_equal(sc.torn_bytes, 0);
        assert_int_equal(sc.newest_at, AT0 + (N - 1) * (int64_t)MS);
        assert_offset(&sc, off[K]);
        if (b < off[K] + 4)
            assert_non_null(strstr(sc.first_problem, "no frame starts here"));
        else if (b >= off[K] + ROTA_JFILE_FRAME)
            assert_non_null(strstr(sc.first_problem, "checksum"));
        assert_null(strstr(sc.first_problem, "torn"));
    }
    /* two bad frames: both skipped, the first reported */
    memcpy(buf, orig, size);
    buf[off[3] + 20] ^= 1;
    buf[off[15] + 20] ^= 1;
    spit(c->path, buf, size);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N - 1);
    assert_int_equal(sc.corrupt, 2);
    assert_offset(&sc, off[3]);
    free(buf);
    free(orig);
}

static void test_journal_file_refuses_what_is_not_a_journal(void **state)
{
    struct ctx *c = *state;
    struct rota_jfile_scan sc;
    char err[256];

    static const char text[] = "this is a text file, certainly not a rota journal\n";
    spit(c->path, text, sizeof(text) - 1);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, c->path));
    assert_non_null(strstr(err, "not a rota journal"));
    assert_int_equal(got.n, 0);

    /* a newer format */
    uint8_t hdr[ROTA_JFILE_HEADER + 4] = "ROTAJNL1\x02";
    spit(c->path, hdr, sizeof(hdr));
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, c->path));
    assert_non_null(strstr(err, "newer"));

    /* empty: created, never written */
    spit(c->path, "", 0);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 0);
    assert_int_equal(sc.torn_bytes, 0);
    assert_string_equal(sc.first_problem, "");

    /* the header itself torn */
    spit(c->path, "ROTAJN", 6);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 0);
    assert_int_equal(sc.torn_bytes, 6);
    assert_non_null(strstr(sc.first_problem, "torn"));

    /* only the header */
    spit(c->path, "ROTAJNL1\x01\0\0\0\0\0\0\0", ROTA_JFILE_HEADER);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 0);
    assert_string_equal(sc.first_problem, "");

    unlink(c->path);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), -ENOENT);

    /* a directory in its place */
    assert_int_equal(mkdir(c->path, 0700), 0);
    assert_true(read_journal(c->path, &sc, err, sizeof(err)) < 0);
    rmdir(c->path);
}

/* journal.h: "-errno with err when the file cannot be used (not a journal, unreadable):
 * rotad refuses to start rather than overwrite it". A file shorter than the header whose
 * bytes are not a prefix of it is no torn journal either. */
static void test_journal_file_short_foreign_file_is_not_a_journal(void **state)
{
    struct ctx *c = *state;
    struct rota_jfile_scan sc;
    char err[256];
    spit(c->path, "hello\n", 6);
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, c->path));
}

static void test_journal_file_every_fsync_policy_writes_a_readable_file(void **state)
{
    struct ctx *c = *state;
    static const enum rota_fsync policies[] = {ROTA_FSYNC_ALWAYS, ROTA_FSYNC_INTERVAL,
                                               ROTA_FSYNC_NEVER};
    for (size_t p = 0; p < 3; p++) {
        enum rota_fsync pol = policies[p];
        char err[256] = "";
        unlink(c->path);
        assert_int_equal(rota_jfile_open(c->path, pol, 3600 * S, &c->jf, err, sizeof(err)), 0);
        assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
        struct rota_jrec r = rec_snapshot(2);
        put(c->jf, &r, NULL);
        for (uint32_t i = 0; i < 2; i++) {
            r = file_rec(i, 1000);
            put(c->jf, &r, NULL);
        }
        assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
        struct rota_jfile_stats st;
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, 1); /* a snapshot is synced whatever the policy */
        assert_int_equal(st.snapshots, 1);

        /* an append now: synced only by "always" (the interval is an hour) */
        uint64_t now = rota_clock_mono();
        r = file_rec(2, 1000);
        put(c->jf, &r, NULL);
        assert_int_equal(rota_jfile_write(c->jf, now, false), 0);
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, pol == ROTA_FSYNC_ALWAYS ? 2 : 1);
        assert_int_equal(st.writes, 1);

        /* two hours on: "interval" syncs too, even with nothing new to write */
        assert_int_equal(rota_jfile_write(c->jf, now + 7200 * S, false), 0);
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, pol == ROTA_FSYNC_NEVER ? 1 : 2);

        /* a forced sync: all but "never" */
        r = file_rec(3, 1000);
        put(c->jf, &r, NULL);
        assert_int_equal(rota_jfile_write(c->jf, now + 7200 * S, true), 0);
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, pol == ROTA_FSYNC_NEVER ? 1 : 3);
        assert_int_equal(st.writes, 2);
        assert_int_equal(st.errors, 0);
        rota_jfile_close(c->jf);
        c->jf = NULL;

        struct rota_jfile_scan sc;
        assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
        assert_int_equal(sc.records, 5);
        assert_got(4, -1);
        assert_int_equal(sc.torn_bytes + sc.corrupt, 0);
    }
}

static void test_journal_file_snapshot_replaces_the_file(void **state)
{
    struct ctx *c = *state;
    char err[256] = "", tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    assert_int_equal(rota_jfile_open(c->path, ROTA_FSYNC_ALWAYS, 0, &c->jf, err, sizeof(err)),
                     0);
    /* nothing to append to before the first snapshot */
    struct rota_jrec r = file_rec(0, 1000);
    put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), -EBADF);
    assert_false(exists(c->path));

    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    r = rec_snapshot(10);
    put(c->jf, &r, NULL);
    for (uint32_t i = 0; i < 30; i++) {
        if (i == 10)
            assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
        r = file_rec(i, 1000);
        put(c->jf, &r, NULL);
        if (i >= 10 && i % 4 == 0)
            assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
    }
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
    assert_false(exists(tmp));
    struct stat big;
    assert_int_equal(stat(c->path, &big), 0);

    /* pending records when a snapshot begins belong to the file it replaces */
    r = file_rec(99, 1000);
    put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    assert_true(exists(tmp));
    /* the old file is whole meanwhile */
    struct rota_jfile_scan sc;
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 31);
    r = rec_snapshot(5);
    put(c->jf, &r, NULL);
    for (uint32_t i = 0; i < 5; i++) {
        r = file_rec(i, 2000);
        put(c->jf, &r, NULL);
    }
    assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    assert_false(exists(tmp));
    for (uint32_t i = 5; i < 8; i++) {
        r = file_rec(i, 2000);
        put(c->jf, &r, NULL);
    }
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);

    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 1 + 5 + 3);
    assert_int_equal(sc.snapshots, 1);
    assert_int_equal(got.type[0], ROTA_JREC_SNAPSHOT);
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(got.id[1 + i], 2000 + i);
    struct rota_jfile_stats st;
    rota_jfile_stats(c->jf, &st);
    assert_int_equal(st.snapshots, 2);
    assert_int_equal(st.bytes, sc.size);
    assert_true(sc.size < (uint64_t)big.st_size);

    /* closed in the middle of a snapshot: the new file goes, the old one stays */
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    r = rec_snapshot(0);
    put(c->jf, &r, NULL);
    rota_jfile_close(c->jf);
    c->jf = NULL;
    assert_false(exists(tmp));
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 9);
}

/* ---- capture and restore on real tables ---- */

static const struct rota_breaker_cfg BCFG = {3, 2, 4000, 60000};

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
    size_t len = enc(&r, buf);
    if (dec(buf, len, &back, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_account_eq(a, &back.u.acc);
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
    assert_int_equal(dec(buf, enc(&r, buf), &back, err, sizeof(err)), 0);
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
    struct ctx *c = *state;
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
               (uint64_t)ROTA_BREAKER_HALF_OPEN | 3u << 2 | 1u << 8 | (now_ms + 5000) << 24);
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
    assert_int_equal(rota_load(&g->m->hot[4].breaker), 0);
    assert_int_equal(rota_load(&g->m->hot[4].disabled), 0);
}

/* A window of the saved state that no longer matches the config (its metric or pool
 * changed) starts afresh: nothing of the old use shows in it. */
static void test_journal_state_window_that_changed_starts_fresh(void **state)
{
    struct ctx *c = *state;
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

/* Credits and fractions come from observations alone (core/view.c): the calls made since
 * the last observation are no use of such a window, before a restart or after. */
static void test_journal_state_observed_only_window_keeps_its_use(void **state)
{
    struct ctx *c = *state;
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
    struct ctx *c = *state;
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

static void journal_cfg(struct ctx *c, struct rota_config_journal *cfg, uint64_t max_bytes)
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
    if (rota_jfile_read(path, keep_latest, NULL, &sc, err, sizeof(err)) != 0)
        return false;
    return latest.have[0] && latest.acc[0].requests == 7 && latest.acc[0].done == 7 &&
           latest.have[1] && latest.acc[1].cooldown_until > 0 && latest.have[2] &&
           (latest.acc[2].flags & ROTA_SNAP_DISABLED);
}

static void copy_file(const char *from, const char *to)
{
    size_t size;
    uint8_t *p = slurp(from, &size);
    spit(to, p, size);
    free(p);
}

/* Recover "cfg"'s file into "to" and check what test_journal_thread_records_and_recovery
 * changed came back. */
static void assert_recovered(struct rota_config_journal *cfg, struct fx *from, struct fx *to)
{
    struct rota_journal_opts o = {.instance = to->instance, .cfg = cfg};
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
    struct ctx *c = *state;
    assert_int_equal(publish(&c->f, "jt", false), 0);
    struct rota_config_journal cfg;
    journal_cfg(c, &cfg, 64 * 1024);
    struct rota_journal_opts o = {.instance = c->f.instance, .cfg = &cfg, .scan_ns = 10 * MS};
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
    assert_false(exists(tmp));

    /* a fresh table recovers from the file a clean stop left */
    assert_int_equal(publish(&c->g, "jtr", false), 0);
    assert_recovered(&cfg, &c->f, &c->g);
    /* ... and from the crashed one */
    struct rota_config_journal cfg2 = cfg;
    struct rota_journal_restore rs;
    struct rota_journal_opts o2 = {.instance = c->g.instance, .cfg = &cfg2};
    cfg2.file_path = crash;
    assert_int_equal(publish(&c->h, "jtc", false), 0);
    assert_recovered(&cfg2, &c->f, &c->h);

    /* no file: nothing restored, no error; a foreign file: refused */
    cfg2.file_path = tmp;
    assert_int_equal(rota_journal_recover(&o2, c->g.m, &rs, err, sizeof(err)), 0);
    assert_string_equal(rs.source, "");
    assert_int_equal(rs.accounts, 0);
    spit(crash, "not a journal, a text file\n", 27);
    cfg2.file_path = crash;
    err[0] = 0;
    assert_int_equal(rota_journal_recover(&o2, c->g.m, &rs, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, crash));
}

/* Records are appended in the order their states were captured: a later one in the file
 * is the newer state even when the wall clock stepped back between them. */
static void test_journal_recover_takes_the_last_record_in_the_file(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(publish(&c->f, "jo", false), 0);
    char err[256] = "";
    assert_int_equal(rota_jfile_open(c->path, ROTA_FSYNC_ALWAYS, 0, &c->jf, err, sizeof(err)),
                     0);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    int64_t t = rota_clock_wall();
    struct rota_jrec r = rec_snapshot(1);
    r.at = t;
    put(c->jf, &r, NULL);
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_ACCOUNT;
    r.seq = 2;
    r.at = t;
    r.u.acc.id = 500;
    r.u.acc.requests = r.u.acc.done = 100;
    put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    r.seq = 3;
    r.at = t - (int64_t)S; /* the clock was stepped back a second */
    r.u.acc.requests = r.u.acc.done = 200;
    put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), true), 0);
    rota_jfile_close(c->jf);
    c->jf = NULL;

    struct rota_config_journal cfg;
    journal_cfg(c, &cfg, 64 * 1024);
    struct rota_journal_opts o = {.instance = c->f.instance, .cfg = &cfg};
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
    struct ctx *c = *state;
    enum { N = 32 };
    const uint64_t max_bytes = 16 * 1024;
    assert_int_equal(fx_pool(&c->f, "jb", N, ROTA_STRAT_HYBRID, NULL), 0);
    struct rota_config_journal cfg;
    journal_cfg(c, &cfg, max_bytes);
    struct rota_journal_opts o = {.instance = c->f.instance, .cfg = &cfg, .scan_ns = 10 * MS};
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
    assert_int_equal(read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_true(sc.size <= max_bytes);
    assert_int_equal(sc.corrupt + sc.torn_bytes, 0);
    assert_int_equal(sc.snapshots, 1);
    for (uint64_t k = 0; k < got.n && k < 1024; k++)
        if (got.type[k] == ROTA_JREC_ACCOUNT)
            assert_true(got.id[k] >= 100 && got.id[k] < 100 + N);
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
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_journal_codec_round_trips_every_type_at_extremes),
        T(test_journal_codec_refuses_every_truncation),
        T(test_journal_codec_refuses_what_it_cannot_read),
        T(test_journal_codec_accepts_a_newer_writers_extra_fields),
        T(test_journal_crc32c_matches_the_check_value),
        T(test_journal_change_names),
        T(test_journal_file_reads_back_what_was_written),
        T(test_journal_file_callback_stops_the_walk),
        T(test_journal_file_torn_tail_is_cut),
        T(test_journal_file_corrupt_record_is_skipped_alone),
        T(test_journal_file_refuses_what_is_not_a_journal),
        T(test_journal_file_short_foreign_file_is_not_a_journal),
        T(test_journal_file_every_fsync_policy_writes_a_readable_file),
        T(test_journal_file_snapshot_replaces_the_file),
        T(test_journal_state_survives_capture_and_apply),
        T(test_journal_state_window_that_changed_starts_fresh),
        T(test_journal_state_observed_only_window_keeps_its_use),
        T(test_journal_state_diff_names_each_change),
        T(test_journal_thread_records_and_recovery_restores),
        T(test_journal_recover_takes_the_last_record_in_the_file),
        T(test_journal_thread_keeps_the_file_bounded),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
