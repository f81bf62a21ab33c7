/* test_jrecord: the journal's records: the msgpack codec (every type round-tripped at its
 * extremes, every truncation and every out-of-range field refused, a newer writer's extra
 * fields skipped), the instance's identity and MAC (SipHash against the reference vectors,
 * any flipped byte refused, another instance's records refused, version 1 taken from the
 * file only), CRC-32C against its check values, and the names of changes and record
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
#include "siphash.h"

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

/* Packs records field by field as jrecord.c lays them out (as ju_key's instance), with
 * "extra" values a newer writer of the same version might append to every array, and
 * scalar number "override" (0 version, 1 type, 2 seq, 3 at, then the body's scalars in
 * order) replaced by "raw". sh_seal ends a record with its MAC (sh_record does). */
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
    sh_array(s, 6 + nbody); /* version, id, type, seq, at, body, mac */
    sh_u(s, ROTA_JREC_VERSION);
    msgpack_pack_bin(&s->pk, ROTA_JID_LEN);
    msgpack_pack_bin_body(&s->pk, ju_key.id, ROTA_JID_LEN);
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

/* The MAC of everything packed so far, as the record's last field. */
static void sh_seal(struct shaped *s)
{
    uint8_t mac[ROTA_JMAC_LEN];
    rota_siphash(ju_key.secret, s->sb.data, s->sb.size, mac, sizeof(mac));
    msgpack_pack_bin(&s->pk, sizeof(mac));
    msgpack_pack_bin_body(&s->pk, mac, sizeof(mac));
}

static void sh_record(struct shaped *s, const struct rota_jrec *r)
{
    switch (r->type) {
    case ROTA_JREC_ACCOUNT:
        sh_account(s, r, r->u.acc.nwin);
        sh_seal(s);
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
    sh_seal(s);
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
            assert_int_equal(rota_jrec_encode(&recs[i], &ju_key, again, cap), 0);
        struct rota_jrec back;
        char err[200];
        int rc = ju_dec(buf, len, &back, err, sizeof(err));
        if (rc)
            fail_msg("record %zu (%s): %s", i, rota_jrec_type_name(recs[i].type), err);
        assert_rec_eq(&recs[i], &back);
        /* and canonical: the decoded record encodes to the same bytes */
        assert_int_equal(rota_jrec_encode(&back, &ju_key, again, sizeof(again)), len);
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
    assert_int_equal(rota_jrec_encode(&bad, &ju_key, buf, sizeof(buf)), 0);
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
            /* (-EBADMSG: the cut left what looks like a MAC at the end, and it is wrong) */
            if (rc != -EINVAL && rc != -EBADMSG)
                fail_msg("record %zu cut to %zu of %zu bytes: %d", i, cut, len, rc);
            assert_true(err[0] != 0);
        }
    }
}

/* Refused with "want" and "why", read as from the file: the hand-made records below are
 * of version 1, which shares version 2's body and is read by the same code. */
static void expect_refused(const void *bytes, size_t len, int want, const char *why)
{
    struct rota_jrec r;
    char err[200];
    int rc = ju_dec_flags(bytes, len, ROTA_JREC_FROM_FILE, &r, err, sizeof(err));
    if (rc != want || !strstr(err, why))
        fail_msg("got %d \"%s\", want %d with \"%s\"", rc, err, want, why);
}

static void test_journal_codec_refuses_what_it_cannot_read(void **state)
{
    /* [version, type, seq, at, count]: a SNAPSHOT record, then variations */
    static const char ok[] = "\x95\x01\x04\x01\x00\x03";
    struct rota_jrec r;
    char err[200];
    assert_int_equal(ju_dec_flags(ok, 6, ROTA_JREC_FROM_FILE, &r, err, sizeof(err)), 0);
    assert_int_equal(r.type, ROTA_JREC_SNAPSHOT);
    assert_int_equal(r.u.count, 3);
    expect_refused("\x95\x03\x04\x01\x00\x03", 6, -ENOTSUP, "version 3");
    expect_refused("\x95\x02\x04\x01\x00\x03", 6, -EINVAL, "identity");
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
    sh_seal(&s);
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
        sh_seal(&s);
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
        sh_seal(&s);
        expect_refused(s.sb.data, s.sb.size, -EINVAL, names[i].why);
        msgpack_sbuffer_destroy(&s.sb);
    }
    sh_init(&s, 0, -1, false, 0);
    sh_header(&s, &prov, 2);
    msgpack_pack_uint8(&s.pk, 7);
    sh_breaker(&s, &prov.u.prov.breaker);
    sh_seal(&s);
    expect_refused(s.sb.data, s.sb.size, -EINVAL, "provider's name");
    msgpack_sbuffer_destroy(&s.sb);

    /* no error buffer: the same answer */
    assert_int_equal(rota_jrec_decode("\x95\x03\x04\x01\x00\x03", 6, &ju_key,
                                      ROTA_JREC_FROM_FILE, &r, NULL, 0),
                     -ENOTSUP);
    assert_int_equal(
        rota_jrec_decode("\x95\x01\x04\x01\x00", 5, &ju_key, ROTA_JREC_FROM_FILE, &r, NULL, 0),
        -EINVAL);
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

/* ---- identity and MAC ---- */

/* The reference implementation's vectors (github.com/veorq/SipHash, vectors.h): key
 * 00 01 .. 0f, message i the i bytes 00 01 .. i-1. Entry 15 of the 64-bit ones is the
 * paper's worked example (Appendix A): a129ca6149be45e5. */
static void test_journal_siphash_matches_the_reference_vectors(void **state)
{
    static const struct {
        size_t len;
        uint8_t h64[8], h128[16];
    } v[] = {
        {0,
         {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72},
         {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55,
          0x02, 0x93}},
        {1,
         {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74},
         {0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22,
          0xfc, 0x45}},
        {7,
         {0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab},
         {0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0,
          0x82, 0x39}},
        {8,
         {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93},
         {0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14,
          0x97, 0xb4}},
        {15,
         {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1},
         {0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf,
          0xc3, 0xd9}},
        {16,
         {0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f},
         {0x6e, 0xe2, 0xa4, 0xca, 0x67, 0xb0, 0x54, 0xbb, 0xfd, 0x33, 0x15, 0xbf, 0x85, 0x23,
          0x05, 0x77}},
        {63,
         {0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95},
         {0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f,
          0xbd, 0x7c}},
    };
    uint8_t key[16], msg[64], out[16];
    for (unsigned i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (unsigned i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        rota_siphash(key, msg, v[i].len, out, 8);
        assert_memory_equal(out, v[i].h64, 8);
        rota_siphash(key, msg, v[i].len, out, 16);
        assert_memory_equal(out, v[i].h128, 16);
    }
}

/* Every record carries the instance's id, and flipping any bit of it anywhere makes it
 * refused: the id's bytes as another instance's, the MAC's and the body's as forged or
 * corrupt, the framing's as malformed. Never taken, never a crash. */
static void test_journal_codec_refuses_any_flipped_byte(void **state)
{
    static struct rota_jrec recs[64];
    size_t n = all_records(recs, 64);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[ROTA_JREC_MAX];
        size_t len = ju_enc(&recs[i], buf);
        struct rota_jrec r;
        char err[200];
        assert_int_equal(ju_dec(buf, len, &r, err, sizeof(err)), 0);
        assert_int_equal(r.version, ROTA_JREC_VERSION);
        assert_memory_equal(r.id, ju_key.id, ROTA_JID_LEN);
        size_t hlen = (buf[0] & 0xf0) == 0x90 ? 1 : 3, id = hlen + 3, body = id + ROTA_JID_LEN;
        assert_memory_equal(buf + id, ju_key.id, ROTA_JID_LEN); /* where it says it is */
        for (size_t at = 0; at < len; at++)
            for (unsigned bit = 0; bit < 8; bit += 7) {
                buf[at] ^= (uint8_t)(1u << bit);
                int rc = ju_dec(buf, len, &r, err, sizeof(err));
                buf[at] ^= (uint8_t)(1u << bit);
                int want = at >= id && at < body         ? -EXDEV
                           : at >= body && at < len - 18 ? -EBADMSG
                           : at >= len - ROTA_JMAC_LEN   ? -EBADMSG
                                                         : 0;
                if (rc == 0 || (want && rc != want) || !err[0])
                    fail_msg("record %zu, byte %zu of %zu, bit %u: %d (%s), want %d", i, at,
                             len, bit, rc, err, want ? want : -EINVAL);
            }
    }
}

/* A record of another instance (two rotads sharing a Redis prefix) is refused as such,
 * naming its identity; one with this instance's id whose MAC was made without the secret
 * (a writer of Redis who read the id from a record there) as forged. */
static void test_journal_codec_refuses_another_instances_records(void **state)
{
    struct rota_jrec rec = rec_account(3), r;
    uint8_t buf[ROTA_JREC_MAX];
    char err[200], hex[2 * ROTA_JID_LEN + 1];
    size_t len = rota_jrec_encode(&rec, &ju_other_key, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(ju_dec(buf, len, &r, err, sizeof(err)), -EXDEV);
    assert_non_null(strstr(err, "another instance"));
    assert_non_null(strstr(err, rota_jid_hex(ju_other_key.id, hex, sizeof(hex))));
    assert_memory_equal(r.id, ju_other_key.id, ROTA_JID_LEN);
    /* from the file too: the file's owner does not vouch for another instance */
    assert_int_equal(ju_dec_flags(buf, len, ROTA_JREC_FROM_FILE, &r, err, sizeof(err)), -EXDEV);

    struct rota_jkey forger = ju_other_key;
    memcpy(forger.id, ju_key.id, ROTA_JID_LEN);
    len = rota_jrec_encode(&rec, &forger, buf, sizeof(buf));
    assert_int_equal(ju_dec(buf, len, &r, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "forged or corrupt"));
    assert_int_equal(ju_dec_flags(buf, len, ROTA_JREC_FROM_FILE, &r, err, sizeof(err)),
                     -EBADMSG);
    /* nor does the message quote the record: no field of it shows */
    char id[32];
    snprintf(id, sizeof(id), "%" PRIx64, rec.u.acc.id);
    assert_null(strstr(err, id));
}

/* A record as rota wrote it before records carried an identity (version 1): taken from
 * rotad's own file, whose owner was checked, and never from anywhere else. */
static void test_journal_codec_takes_version_1_from_the_file_only(void **state)
{
    static struct rota_jrec recs[64];
    size_t n = all_records(recs, 64);
    for (size_t i = 0; i < n; i++) {
        uint8_t v2[ROTA_JREC_MAX], v1[ROTA_JREC_MAX];
        size_t len = ju_v1_of(v2, ju_enc(&recs[i], v2), v1);
        struct rota_jrec r;
        char err[200];
        assert_int_equal(ju_dec(v1, len, &r, err, sizeof(err)), -EPERM);
        assert_non_null(strstr(err, "version 1"));
        int rc = ju_dec_flags(v1, len, ROTA_JREC_FROM_FILE, &r, err, sizeof(err));
        if (rc)
            fail_msg("record %zu as version 1: %s", i, err);
        assert_int_equal(r.version, 1);
        assert_rec_eq(&recs[i], &r);
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
        cmocka_unit_test(test_journal_siphash_matches_the_reference_vectors),
        cmocka_unit_test(test_journal_codec_refuses_any_flipped_byte),
        cmocka_unit_test(test_journal_codec_refuses_another_instances_records),
        cmocka_unit_test(test_journal_codec_takes_version_1_from_the_file_only),
        cmocka_unit_test(test_journal_crc32c_matches_the_check_value),
        cmocka_unit_test(test_journal_change_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
