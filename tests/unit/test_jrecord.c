/* test_jrecord: the journal's records: the msgpack codec (every type round-tripped at its
 * extremes, every truncation and every out-of-range field refused, a newer writer's extra
 * fields skipped), CRC-32C against its check values, and the names of changes and record
 * types. Records built by hand where the encoder would never make them; nothing mocked. */
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "breaker.h"
#include "journal_util.h"

/* ---- records: comparing ---- */

static void assert_rec_eq(const struct rota_jrec *a, const struct rota_jrec *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->at, b->at);
    switch (a->type) {
    case ROTA_JREC_ACCOUNT:
        ju_assert_account_eq(&a->u.acc, &b->u.acc);
        break;
    case ROTA_JREC_PROVIDER:
        assert_string_equal(a->u.prov.name, b->u.prov.name);
        ju_assert_breaker_eq(&a->u.prov.breaker, &b->u.prov.breaker);
        break;
    case ROTA_JREC_GENERATION:
        assert_int_equal(a->u.gen.generation, b->u.gen.generation);
        assert_int_equal(a->u.gen.naccounts, b->u.gen.naccounts);
        break;
    case ROTA_JREC_SNAPSHOT:
        assert_int_equal(a->u.count, b->u.count);
        break;
    default:
        fail_msg("record type %u", a->type);
    }
}

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
                                           .reset_at = w & 1 ? INT64_MIN + w : INT64_MAX - w,
                                           .reset_kind = (uint8_t)(w % 7),
                                           .period_s = UINT32_MAX - w};
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
        x->reset_kind = (uint8_t)((k + w) % 7);
        x->period_s = (uint32_t)u_at(u++, UINT32_MAX);
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
    r.u.gen = max ? (struct rota_jgeneration){UINT64_MAX, UINT32_MAX}
                  : (struct rota_jgeneration){0, 0};
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
    out[n++] = ju_rec_snapshot(0);
    out[n++] = ju_rec_snapshot(UINT32_MAX);
    assert_true(n <= cap);
    return n;
}

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
        sh_array(s, 7);
        sh_u(s, x->metric);
        sh_u(s, x->pool);
        sh_u(s, x->used);
        sh_u(s, x->limit);
        sh_i(s, x->reset_at);
        sh_u(s, x->reset_kind);
        sh_u(s, x->period_s);
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
        sh_header(s, r, 2);
        sh_u(s, r->u.gen.generation);
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
        size_t len = ju_enc(&recs[i], buf);
        /* too small a buffer: 0, never a partial record */
        for (size_t cap = 0; cap < len; cap++)
            assert_int_equal(rota_jrec_encode(&recs[i], again, cap), 0);
        struct rota_jrec back;
        char err[200];
        int rc = ju_dec(buf, len, &back, err, sizeof(err));
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
    assert_true(ju_enc(&recs[0], buf) < ROTA_JREC_MAX / 2);
    struct rota_jrec bad = ju_rec_snapshot(1);
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
            len = ju_enc(&recs[i], buf);
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
            int rc = ju_dec(buf, cut, &r, err, sizeof(err));
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
    int rc = ju_dec(bytes, len, &r, err, sizeof(err));
    if (rc != want || !strstr(err, why))
        fail_msg("got %d \"%s\", want %d with \"%s\"", rc, err, want, why);
}

static void test_journal_codec_refuses_what_it_cannot_read(void **state)
{
    /* [version, type, seq, at, count]: a SNAPSHOT record, then variations */
    static const char ok[] = "\x95\x01\x04\x01\x00\x03";
    struct rota_jrec r;
    char err[200];
    assert_int_equal(ju_dec(ok, 6, &r, err, sizeof(err)), 0);
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
    expect_refused(buf, ju_enc(&acc, buf), -EINVAL, "account id 0");

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
        int rc = ju_dec(s.sb.data, s.sb.size, &r, err, sizeof(err));
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
            int rc = ju_dec(s.sb.data, s.sb.size, &back, err, sizeof(err));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_codec_round_trips_every_type_at_extremes),
        cmocka_unit_test(test_journal_codec_refuses_every_truncation),
        cmocka_unit_test(test_journal_codec_refuses_what_it_cannot_read),
        cmocka_unit_test(test_journal_codec_accepts_a_newer_writers_extra_fields),
        cmocka_unit_test(test_journal_crc32c_matches_the_check_value),
        cmocka_unit_test(test_journal_change_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
