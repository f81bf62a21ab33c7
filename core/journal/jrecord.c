/*
 * jrecord.c - journal records in msgpack: encode with msgpack-c, decode with a bounded
 * reader of our own, and CRC-32C.
 *
 * DESIGN
 * The encoder packs into a caller's fixed buffer (no allocation on the journal's path).
 * The decoder walks the bytes with a cursor that checks every length against what is
 * left before reading, allocates nothing, and reports the byte offset of the first
 * thing it did not expect. Record layout (msgpack arrays, fields in this order):
 *
 *   [2, id, type, seq, at, body..., mac]     id, mac: bin 8 of 16 bytes; mac is
 *                                            SipHash-2-4-128 of the bytes before it
 *   [1, type, seq, at, body...]              version 1: from the local file only
 *   ACCOUNT     id, what, flags, reason, disabled_until, wdisable, wdisable_until,
 *               cooldown_until, consec_429, breaker, counters, probe_at, windows,
 *               last_used
 *               breaker  = [state, trips, until, consec]
 *               counters = [requests, done, tokens, failures, rate_limited, auth_failures]
 *               windows  = [[metric, pool, used, limit, reset_at, reset_kind,
 *                             period_s], ...]
 *   PROVIDER    name, breaker
 *   GENERATION  generation, naccounts
 *   SNAPSHOT    count
 *
 * Fields appended by a later writer of the same version are skipped (they sit before the
 * MAC); a record with fewer fields than this reader expects is refused. The MAC is always
 * the record's last 18 bytes (c4 10 and 16 bytes), so it is checked before the body is
 * read: a body no one could have MAC'd is never interpreted.
 */
#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "jrecord.h"
#include "siphash.h"

const char *rota_jrec_type_name(unsigned type)
{
    switch (type) {
    case ROTA_JREC_ACCOUNT:
        return "account";
    case ROTA_JREC_PROVIDER:
        return "provider";
    case ROTA_JREC_GENERATION:
        return "generation";
    case ROTA_JREC_SNAPSHOT:
        return "snapshot";
    default:
        return "unknown";
    }
}

const char *rota_jchg_names(uint32_t what, char *buf, size_t n)
{
    static const char *const names[] = {"usage",   "observed", "cooldown", "breaker",
                                        "disable", "enable",   "reset",    "full"};
    size_t len = 0;
    if (n == 0)
        return buf;
    buf[0] = 0;
    for (unsigned i = 0; i < 8 && len < n; i++)
        if (what & (1u << i))
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "", names[i]);
    return buf;
}

const char *rota_jid_hex(const uint8_t id[ROTA_JID_LEN], char *buf, size_t n)
{
    size_t len = 0;
    if (n)
        buf[0] = 0;
    for (unsigned i = 0; i < ROTA_JID_LEN && len + 3 <= n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%02x", id[i]);
    return buf;
}

/* ---- encoding ---- */

struct fixed {
    char *p;
    size_t len, cap;
    bool full;
};

static int fixed_write(void *data, const char *buf, size_t len)
{
    struct fixed *f = data;
    if (len > f->cap - f->len) {
        f->full = true;
        return -1;
    }
    memcpy(f->p + f->len, buf, len);
    f->len += len;
    return 0;
}

static void pack_breaker(msgpack_packer *pk, const struct rota_jbreaker *b)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, b->state);
    msgpack_pack_uint8(pk, b->trips);
    msgpack_pack_int64(pk, b->until);
    msgpack_pack_uint32(pk, b->consec);
}

static void pack_account(msgpack_packer *pk, const struct rota_jaccount *a)
{
    msgpack_pack_uint64(pk, a->id);
    msgpack_pack_uint32(pk, a->what);
    msgpack_pack_uint32(pk, a->flags);
    msgpack_pack_uint32(pk, a->reason);
    msgpack_pack_int64(pk, a->disabled_until);
    msgpack_pack_uint32(pk, a->wdisable);
    msgpack_pack_int64(pk, a->wdisable_until);
    msgpack_pack_int64(pk, a->cooldown_until);
    msgpack_pack_uint32(pk, a->consec_429);
    pack_breaker(pk, &a->breaker);
    msgpack_pack_array(pk, 6);
    msgpack_pack_uint64(pk, a->requests);
    msgpack_pack_uint64(pk, a->done);
    msgpack_pack_uint64(pk, a->tokens);
    msgpack_pack_uint64(pk, a->failures);
    msgpack_pack_uint64(pk, a->rate_limited);
    msgpack_pack_uint64(pk, a->auth_failures);
    msgpack_pack_int64(pk, a->probe_at);
    uint32_t nwin = a->nwin > ROTA_MAX_WINDOWS ? ROTA_MAX_WINDOWS : a->nwin;
    msgpack_pack_array(pk, nwin);
    for (uint32_t w = 0; w < nwin; w++) {
        const struct rota_jwin *x = &a->win[w];
        msgpack_pack_array(pk, 7);
        msgpack_pack_uint8(pk, x->metric);
        msgpack_pack_uint8(pk, x->pool);
        msgpack_pack_uint64(pk, x->used);
        msgpack_pack_uint64(pk, x->limit);
        msgpack_pack_int64(pk, x->reset_at);
        msgpack_pack_uint8(pk, x->reset_kind);
        msgpack_pack_uint32(pk, x->period_s);
    }
    msgpack_pack_int64(pk, a->last_used);
}

static const unsigned body_fields[] = {
    [ROTA_JREC_ACCOUNT] = 14,
    [ROTA_JREC_PROVIDER] = 2,
    [ROTA_JREC_GENERATION] = 2,
    [ROTA_JREC_SNAPSHOT] = 1,
};

#define MAC_FIELD (2 + ROTA_JMAC_LEN) /* c4 10 and the MAC */

size_t rota_jrec_encode(const struct rota_jrec *r, const struct rota_jkey *k, void *buf,
                        size_t cap)
{
    if (r->type < ROTA_JREC_ACCOUNT || r->type > ROTA_JREC_SNAPSHOT)
        return 0;
    struct fixed f = {buf, 0, cap, false};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f, fixed_write);
    msgpack_pack_array(&pk, 6 + body_fields[r->type]);
    msgpack_pack_uint32(&pk, ROTA_JREC_VERSION);
    msgpack_pack_bin(&pk, ROTA_JID_LEN);
    msgpack_pack_bin_body(&pk, k->id, ROTA_JID_LEN);
    msgpack_pack_uint32(&pk, r->type);
    msgpack_pack_uint64(&pk, r->seq);
    msgpack_pack_int64(&pk, r->at);
    switch (r->type) {
    case ROTA_JREC_ACCOUNT:
        pack_account(&pk, &r->u.acc);
        break;
    case ROTA_JREC_PROVIDER: {
        size_t len = strnlen(r->u.prov.name, ROTA_MAX_NAME - 1);
        msgpack_pack_str(&pk, len);
        msgpack_pack_str_body(&pk, r->u.prov.name, len);
        pack_breaker(&pk, &r->u.prov.breaker);
        break;
    }
    case ROTA_JREC_GENERATION:
        msgpack_pack_uint64(&pk, r->u.gen.generation);
        msgpack_pack_uint32(&pk, r->u.gen.naccounts);
        break;
    case ROTA_JREC_SNAPSHOT:
        msgpack_pack_uint32(&pk, r->u.count);
        break;
    }
    if (f.full || f.cap - f.len < MAC_FIELD)
        return 0;
    uint8_t *mac = (uint8_t *)buf + f.len;
    mac[0] = 0xc4;
    mac[1] = ROTA_JMAC_LEN;
    rota_siphash(k->secret, buf, f.len, mac + 2, ROTA_JMAC_LEN);
    return f.len + MAC_FIELD;
}

/* ---- decoding ---- */

struct cur {
    const uint8_t *p;
    size_t len, off;
    char *err;
    size_t n;
    bool bad;
};

static bool fail(struct cur *c, const char *what)
{
    if (!c->bad)
        snprintf(c->err, c->n, "byte %zu: %s", c->off, what);
    c->bad = true;
    return false;
}

static uint64_t be(const uint8_t *p, unsigned k)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

/* Take "k" bytes; false (and an error) when fewer are left. */
static bool take(struct cur *c, size_t k, const uint8_t **out)
{
    if (c->bad)
        return false;
    if (k > c->len - c->off)
        return fail(c, "record ends inside a value");
    *out = c->p + c->off;
    c->off += k;
    return true;
}

/* An integer of any msgpack width. "neg" is set for negative values (v holds the
 * two's-complement bits). */
static bool integer(struct cur *c, uint64_t *v, bool *neg)
{
    const uint8_t *t, *b;
    if (!take(c, 1, &t))
        return false;
    *neg = false;
    uint8_t m = *t;
    if (m <= 0x7f) {
        *v = m;
        return true;
    }
    if (m >= 0xe0) {
        *v = (uint64_t)(int64_t)(int8_t)m;
        *neg = true;
        return true;
    }
    static const unsigned width[] = {1, 2, 4, 8};
    if (m >= 0xcc && m <= 0xcf) {
        unsigned k = width[m - 0xcc];
        if (!take(c, k, &b))
            return false;
        *v = be(b, k);
        return true;
    }
    if (m >= 0xd0 && m <= 0xd3) {
        unsigned k = width[m - 0xd0];
        if (!take(c, k, &b))
            return false;
        uint64_t u = be(b, k);
        unsigned shift = 64 - 8 * k; /* sign-extend */
        int64_t s = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
        *v = (uint64_t)s;
        *neg = s < 0;
        return true;
    }
    c->off--;
    return fail(c, "expected an integer");
}

static bool u64(struct cur *c, uint64_t *v)
{
    bool neg;
    if (!integer(c, v, &neg))
        return false;
    if (neg) {
        c->off--;
        return fail(c, "expected a non-negative integer");
    }
    return true;
}

static bool u32(struct cur *c, uint32_t *v, uint32_t max)
{
    uint64_t x;
    if (!u64(c, &x))
        return false;
    if (x > max)
        return fail(c, "integer out of range");
    *v = (uint32_t)x;
    return true;
}

static bool u8(struct cur *c, uint8_t *v, uint32_t max)
{
    uint32_t x;
    if (!u32(c, &x, max))
        return false;
    *v = (uint8_t)x;
    return true;
}

static bool i64(struct cur *c, int64_t *v)
{
    uint64_t x;
    bool neg;
    if (!integer(c, &x, &neg))
        return false;
    if (!neg && x > INT64_MAX)
        return fail(c, "integer out of range");
    *v = (int64_t)x;
    return true;
}

/* An array header; its element count in *count. */
static bool array(struct cur *c, uint32_t *count)
{
    const uint8_t *t, *b;
    if (!take(c, 1, &t))
        return false;
    if ((*t & 0xf0) == 0x90) {
        *count = *t & 0x0f;
    } else if (*t == 0xdc || *t == 0xdd) {
        unsigned k = *t == 0xdc ? 2 : 4;
        if (!take(c, k, &b))
            return false;
        *count = (uint32_t)be(b, k);
    } else {
        c->off--;
        return fail(c, "expected an array");
    }
    /* every element takes at least one byte */
    if (*count > c->len - c->off)
        return fail(c, "array longer than the record");
    return true;
}

static bool array_of(struct cur *c, uint32_t want, uint32_t *count)
{
    if (!array(c, count))
        return false;
    if (*count < want)
        return fail(c, "array has too few fields");
    return true;
}

/* Skip one value of any type (trailing fields from a newer writer), depth-bounded. */
static bool skip(struct cur *c, int depth)
{
    const uint8_t *t, *b;
    if (depth > 8)
        return fail(c, "nested too deep");
    if (!take(c, 1, &t))
        return false;
    uint8_t m = *t;
    size_t k = 0;
    uint64_t items = 0;
    if (m <= 0x7f || m >= 0xe0 || m == 0xc0 || m == 0xc2 || m == 0xc3)
        return true;
    if ((m & 0xe0) == 0xa0)
        return take(c, m & 0x1f, &b);
    if ((m & 0xf0) == 0x90 || (m & 0xf0) == 0x80) {
        items = (uint64_t)(m & 0x0f) * ((m & 0xf0) == 0x80 ? 2 : 1);
    } else {
        switch (m) {
        case 0xcc:
        case 0xd0:
            k = 1;
            break;
        case 0xcd:
        case 0xd1:
            k = 2;
            break;
        case 0xca:
        case 0xce:
        case 0xd2:
            k = 4;
            break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
            k = 8;
            break;
        case 0xd4:
            k = 2;
            break;
        case 0xd5:
            k = 3;
            break;
        case 0xd6:
            k = 5;
            break;
        case 0xd7:
            k = 9;
            break;
        case 0xd8:
            k = 17;
            break;
        case 0xc4:
        case 0xd9:
        case 0xc7:
        case 0xc5:
        case 0xda:
        case 0xc8:
        case 0xc6:
        case 0xdb:
        case 0xc9: {
            unsigned w = (m == 0xc4 || m == 0xd9 || m == 0xc7)   ? 1
                         : (m == 0xc5 || m == 0xda || m == 0xc8) ? 2
                                                                 : 4;
            if (!take(c, w, &b))
                return false;
            k = (size_t)be(b, w) + (m >= 0xc7 && m <= 0xc9 ? 1 : 0);
            break;
        }
        case 0xdc:
        case 0xde:
            if (!take(c, 2, &b))
                return false;
            items = be(b, 2) * (m == 0xde ? 2 : 1);
            break;
        case 0xdd:
        case 0xdf:
            if (!take(c, 4, &b))
                return false;
            items = be(b, 4) * (m == 0xdf ? 2 : 1);
            break;
        default:
            c->off--;
            return fail(c, "not a msgpack value");
        }
        if (k)
            return take(c, k, &b);
    }
    if (items > c->len - c->off)
        return fail(c, "container longer than the record");
    for (uint64_t i = 0; i < items; i++)
        if (!skip(c, depth + 1))
            return false;
    return true;
}

/* Skip the fields of an array beyond the "used" this reader knows. */
static bool rest(struct cur *c, uint32_t count, uint32_t used)
{
    for (uint32_t i = used; i < count; i++)
        if (!skip(c, 1))
            return false;
    return true;
}

static bool breaker(struct cur *c, struct rota_jbreaker *b)
{
    uint32_t n;
    return array_of(c, 4, &n) && u8(c, &b->state, 2) && u8(c, &b->trips, 63) &&
           i64(c, &b->until) && u32(c, &b->consec, UINT32_MAX) && rest(c, n, 4);
}

static bool window(struct cur *c, struct rota_jwin *w)
{
    uint32_t n;
    return array_of(c, 7, &n) && u8(c, &w->metric, ROTA_METRIC_FRACTION) &&
           u8(c, &w->pool, ROTA_MAX_POOLS - 1) && u64(c, &w->used) && u64(c, &w->limit) &&
           i64(c, &w->reset_at) && u8(c, &w->reset_kind, ROTA_RESET_ROLLING) &&
           u32(c, &w->period_s, UINT32_MAX) && rest(c, n, 7);
}

static bool account(struct cur *c, struct rota_jaccount *a)
{
    uint32_t n, nwin;
    if (!(u64(c, &a->id) && u32(c, &a->what, UINT32_MAX) && u32(c, &a->flags, UINT32_MAX) &&
          u32(c, &a->reason, 255) && i64(c, &a->disabled_until) && u32(c, &a->wdisable, 255) &&
          i64(c, &a->wdisable_until) && i64(c, &a->cooldown_until) &&
          u32(c, &a->consec_429, UINT32_MAX) && breaker(c, &a->breaker) && array_of(c, 6, &n) &&
          u64(c, &a->requests) && u64(c, &a->done) && u64(c, &a->tokens) &&
          u64(c, &a->failures) && u64(c, &a->rate_limited) && u64(c, &a->auth_failures) &&
          rest(c, n, 6) && i64(c, &a->probe_at) && array(c, &nwin)))
        return false;
    if (a->id == 0)
        return fail(c, "account id 0");
    if (nwin > ROTA_MAX_WINDOWS)
        return fail(c, "more windows than an account has");
    a->nwin = nwin;
    for (uint32_t w = 0; w < nwin; w++)
        if (!window(c, &a->win[w]))
            return false;
    return i64(c, &a->last_used);
}

static bool provider(struct cur *c, struct rota_jprovider *p)
{
    const uint8_t *t, *s;
    if (!take(c, 1, &t))
        return false;
    size_t len;
    if ((*t & 0xe0) == 0xa0) {
        len = *t & 0x1f;
    } else if (*t == 0xd9) {
        const uint8_t *b;
        if (!take(c, 1, &b))
            return false;
        len = *b;
    } else {
        c->off--;
        return fail(c, "expected the provider's name");
    }
    if (len == 0 || len >= ROTA_MAX_NAME)
        return fail(c, "provider name empty or too long");
    if (!take(c, len, &s))
        return false;
    if (memchr(s, 0, len))
        return fail(c, "provider name holds a NUL byte");
    memcpy(p->name, s, len);
    p->name[len] = 0;
    return breaker(c, &p->breaker);
}

/* Equal, in a time that does not depend on where the first difference is. */
static bool same_mac(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (unsigned i = 0; i < ROTA_JMAC_LEN; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* A version 2 record's id (next at the cursor) and MAC (its last bytes), checked against
 * "k"; on success the cursor ends before the MAC. 0 or a negative rota_jrec_decode code. */
static int authenticate(struct cur *c, const struct rota_jkey *k, struct rota_jrec *r)
{
    const uint8_t *t, *id;
    if (!take(c, 2, &t))
        return -EINVAL;
    if (t[0] != 0xc4 || t[1] != ROTA_JID_LEN) {
        c->off -= 2;
        fail(c, "expected the instance's identity (16 bytes)");
        return -EINVAL;
    }
    if (!take(c, ROTA_JID_LEN, &id))
        return -EINVAL;
    memcpy(r->id, id, ROTA_JID_LEN);
    if (c->len - c->off < MAC_FIELD) {
        fail(c, "record ends before its MAC");
        return -EINVAL;
    }
    const uint8_t *mac = c->p + c->len - ROTA_JMAC_LEN;
    if (mac[-2] != 0xc4 || mac[-1] != ROTA_JMAC_LEN) {
        c->off = c->len - MAC_FIELD;
        fail(c, "expected the record's MAC (16 bytes) at its end");
        return -EINVAL;
    }
    if (!k || memcmp(id, k->id, ROTA_JID_LEN) != 0) {
        char hex[2 * ROTA_JID_LEN + 1];
        snprintf(c->err, c->n, "a record of another instance (identity %s)",
                 rota_jid_hex(id, hex, sizeof(hex)));
        return -EXDEV;
    }
    uint8_t want[ROTA_JMAC_LEN];
    rota_siphash(k->secret, c->p, c->len - MAC_FIELD, want, ROTA_JMAC_LEN);
    if (!same_mac(want, mac)) {
        snprintf(c->err, c->n,
                 "this instance's identity with a MAC that does not match: "
                 "forged or corrupt");
        return -EBADMSG;
    }
    c->len -= MAC_FIELD;
    return 0;
}

/* The header up to the type: [version, (id,) type, seq, at. The fields before the
 * body in *head, those after it in *tail. */
static int header(struct cur *c, const struct rota_jkey *k, unsigned flags, struct rota_jrec *r,
                  uint32_t *count, uint32_t *head, uint32_t *tail)
{
    if (!array_of(c, 4, count) || !u32(c, &r->version, UINT32_MAX))
        return -EINVAL;
    if (r->version == 0) {
        fail(c, "record version 0");
        return -EINVAL;
    }
    if (r->version > ROTA_JREC_VERSION) {
        snprintf(c->err, c->n, "record version %u (this build reads up to %u)", r->version,
                 ROTA_JREC_VERSION);
        return -ENOTSUP;
    }
    *head = 4;
    *tail = 0;
    if (r->version == 1 && !(flags & ROTA_JREC_FROM_FILE)) {
        snprintf(c->err, c->n,
                 "a version 1 record (no identity, no MAC): taken only from "
                 "rotad's own journal file");
        return -EPERM;
    }
    if (r->version >= 2) {
        int rc = authenticate(c, k, r);
        if (rc)
            return rc;
        *head = 5;
        *tail = 1;
    }
    if (!u32(c, &r->type, UINT32_MAX) || !u64(c, &r->seq) || !i64(c, &r->at))
        return -EINVAL;
    if (r->type < ROTA_JREC_ACCOUNT || r->type > ROTA_JREC_SNAPSHOT) {
        snprintf(c->err, c->n, "record type %u unknown", r->type);
        return -ENOTSUP;
    }
    if (*count < *head + body_fields[r->type] + *tail) {
        fail(c, "record has too few fields for its type");
        return -EINVAL;
    }
    return 0;
}

int rota_jrec_decode(const void *buf, size_t len, const struct rota_jkey *k, unsigned flags,
                     struct rota_jrec *r, char *err, size_t n)
{
    char dummy[8];
    struct cur c = {buf, len, 0, err ? err : dummy, err ? n : sizeof(dummy), false};
    memset(r, 0, sizeof(*r));
    uint32_t count, head, tail;
    int rc = header(&c, k, flags, r, &count, &head, &tail);
    if (rc)
        return rc;
    bool ok = false;
    switch (r->type) {
    case ROTA_JREC_ACCOUNT:
        ok = account(&c, &r->u.acc);
        break;
    case ROTA_JREC_PROVIDER:
        ok = provider(&c, &r->u.prov);
        break;
    case ROTA_JREC_GENERATION:
        ok = u64(&c, &r->u.gen.generation) && u32(&c, &r->u.gen.naccounts, UINT32_MAX);
        break;
    case ROTA_JREC_SNAPSHOT:
        ok = u32(&c, &r->u.count, UINT32_MAX);
        break;
    }
    if (!ok || !rest(&c, count - tail, head + body_fields[r->type]))
        return -EINVAL;
    if (c.off != c.len) {
        fail(&c, "trailing bytes after the record");
        return -EINVAL;
    }
    return 0;
}

/* ---- CRC-32C, reflected polynomial 0x82F63B78, a table per byte ---- */

static uint32_t crc_table[256];
static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t rota_crc32c(uint32_t crc, const void *p, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    const uint8_t *b = p;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
