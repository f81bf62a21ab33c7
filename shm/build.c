/*
 * build.c - the table's writer: build a generation from a plain C description, publish
 * it, carry hot state across, supersede the old one.
 *
 * DESIGN
 * One writer per instance (the supervisor; tests and rota-bench stand in for it). All
 * functions here run on the writer's own thread and may allocate and make system calls.
 *
 * Publishing generation N+1:
 *   1. validate the description (ids unique and non-zero, every index in range);
 *   2. create /rota.<instance>.g<N+1> (O_EXCL, the configured mode), size and map it;
 *      a name another user took first is left to her and the next number taken (whom
 *      shared memory trusts, and how: shm/attach.c);
 *   3. write the header (state INITIALIZING) and the immutable sections with plain
 *      stores, each account's lease tag kept by id from generation N (new accounts get
 *      a tag no other account of N or N+1 has: shm/clients.h); initialise snapshots
 *      from the configured limits;
 *   4. copy each surviving account's hot block and matching snapshot windows from
 *      generation N, by account id;
 *   5. store state READY (release), then the directory's generation (release), then
 *      generation N's time of supersession and its state SUPERSEDED (release), and wake
 *      the movers sleeping on that state word (every attached handle has one, a thread
 *      that maps the new generation off the select path): a reader that sees READY sees
 *      all of step 3 and 4; a worker that sees SUPERSEDED finds N+1 in the directory;
 *   6. add to N+1 what workers counted on N since step 4 (monotonic counters only) and
 *      unlink N's name. Processes that map N keep their mapping, and a worker that was
 *      inside a selection on N may still count there for a moment: the writer keeps N
 *      as "retired" for SETTLE_GRACE_NS, adding whatever appears on it to the current
 *      generation at every publish and rota_shm_settle, and lets it go after the grace
 *      (or when RETIRED_MAX are kept, or on close).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "breaker_word.h"
#include "carry.h"
#include "clients.h"
#include "hash.h"
#include "table.h"

#define RETIRED_MAX     32 /* 16 reloads a second within the grace */
#define SETTLE_GRACE_NS ROTA_SHM_SETTLE_NS

/* A superseded generation still watched for late counts. */
struct retired {
    struct rota_shm_map map;
    struct rota_shm_hot *seen; /* rota_shm_seen_size: what was carried on so far */
    uint64_t at;               /* monotonic ns it was superseded */
};

struct rota_shm_writer {
    char instance[ROTA_MAX_NAME];
    mode_t mode;
    gid_t gid; /* group of every segment; (gid_t)-1 = the process's */
    struct rota_shm_dir *dir;
    struct rota_shm_clients *clients; /* leases of attached handles */
    struct rota_shm_map cur;
    bool have_cur;
    struct retired ret[RETIRED_MAX]; /* superseded generations, oldest first */
    unsigned nret;
    uint64_t *refunds;   /* per current account: its TPM refund counters at the last look */
    uint64_t refunds_at; /* monotonic ns of that look */
};

static void settle(struct rota_shm_writer *w, bool all);
static void release_expired(struct rota_shm_writer *w);

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static void release_oldest(struct rota_shm_writer *w);

#define fail rota_shm_fail

static uint64_t align_up(uint64_t v)
{
    return (v + ROTA_SHM_ALIGN - 1) & ~(uint64_t)(ROTA_SHM_ALIGN - 1);
}

/* ---- string blob ---- */

struct blob {
    char *p;
    size_t len, cap;
};

static uint32_t blob_add(struct blob *b, const char *s, size_t n, bool nul)
{
    size_t need = b->len + n + (nul ? 1 : 0);
    if (need > UINT32_MAX)
        return ROTA_NONE;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < need)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return ROTA_NONE;
        b->p = q;
        b->cap = cap;
    }
    uint32_t off = (uint32_t)b->len;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    if (nul)
        b->p[b->len++] = 0;
    return off;
}

static uint32_t blob_str(struct blob *b, const char *s)
{
    return blob_add(b, s ? s : "", s ? strlen(s) : 0, true);
}

/* ---- description checks ---- */

static int check_name(const char *what, uint32_t i, const char *name, char *err, size_t n)
{
    if (!name || !*name || strlen(name) >= ROTA_MAX_NAME)
        return fail(err, n, -EINVAL, "%s %u: name missing or longer than %d", what, i,
                    ROTA_MAX_NAME - 1);
    return 0;
}

static int check_desc(const struct rota_desc *d, char *err, size_t n)
{
    if (!d || (d->nproviders && !d->providers) || (d->naccounts && !d->accounts) ||
        (d->nroutes && !d->routes))
        return fail(err, n, -EINVAL, "description: missing array");
    if (d->nproviders > 65535 || d->naccounts > (1u << 22) || d->nroutes > 65535)
        return fail(err, n, -E2BIG, "description: too many providers, accounts or routes");
    for (uint32_t i = 0; i < d->nproviders; i++)
        if (check_name("provider", i, d->providers[i].name, err, n))
            return -EINVAL;
    for (uint32_t i = 0; i < d->naccounts; i++) {
        const struct rota_desc_account *a = &d->accounts[i];
        if (check_name("account", i, a->name, err, n))
            return -EINVAL;
        if (a->id == 0)
            return fail(err, n, -EINVAL, "account %s: id 0 is reserved", a->name);
        if (a->provider >= d->nproviders)
            return fail(err, n, -EINVAL, "account %s: provider %u out of range", a->name,
                        a->provider);
        if (a->nwin > ROTA_MAX_WINDOWS)
            return fail(err, n, -EINVAL, "account %s: %u windows, at most %d", a->name, a->nwin,
                        ROTA_MAX_WINDOWS);
        for (uint32_t w = 0; w < a->nwin; w++)
            if (a->win[w].pool >= ROTA_MAX_POOLS ||
                (a->win[w].pool && !a->pools[a->win[w].pool]))
                return fail(err, n, -EINVAL, "account %s window %u: pool %u not defined",
                            a->name, w, a->win[w].pool);
    }
    for (uint32_t r = 0; r < d->nroutes; r++) {
        const struct rota_desc_route *rt = &d->routes[r];
        if (check_name("route", r, rt->name, err, n))
            return -EINVAL;
        if (rt->ntiers == 0 || rt->ntiers > ROTA_MAX_TIERS || !rt->tiers)
            return fail(err, n, -EINVAL, "route %s: %u tiers, need 1 to %d", rt->name,
                        rt->ntiers, ROTA_MAX_TIERS);
        for (uint32_t t = 0; t < rt->ntiers; t++) {
            const struct rota_desc_tier *tr = &rt->tiers[t];
            if (tr->strategy >= ROTA_STRAT_COUNT)
                return fail(err, n, -EINVAL, "route %s tier %u: unknown strategy", rt->name, t);
            if (tr->provider != ROTA_NONE && tr->provider >= d->nproviders)
                return fail(err, n, -EINVAL, "route %s tier %u: provider out of range",
                            rt->name, t);
            if (tr->nmembers && !tr->members)
                return fail(err, n, -EINVAL, "route %s tier %u: no member array", rt->name, t);
            for (uint32_t m = 0; m < tr->nmembers; m++) {
                uint32_t a = tr->members[m], p = tr->pools ? tr->pools[m] : 0;
                if (a >= d->naccounts)
                    return fail(err, n, -EINVAL, "route %s tier %u: account %u out of range",
                                rt->name, t, a);
                if (p >= ROTA_MAX_POOLS || (p && !d->accounts[a].pools[p]))
                    return fail(err, n, -EINVAL, "route %s tier %u: account %s has no pool %u",
                                rt->name, t, d->accounts[a].name, p);
            }
        }
    }
    return 0;
}

/* A random-looking byte per record of "m", from the segment's nonce. */
static uint64_t h_nonce_mix(const struct rota_shm_map *m, uint32_t i)
{
    return rota_hash_mix(m->hdr->nonce + i) >> 56;
}

/* ---- index ---- */

static int index_put(struct rota_shm_index *ix, uint32_t mask, uint32_t kind, uint64_t key,
                     uint32_t value)
{
    for (uint32_t i = rota_index_home(key, mask);; i = (i + 1) & mask) {
        if (ix[i].kind == ROTA_IDX_EMPTY) {
            ix[i] = (struct rota_shm_index){.key = key, .kind = kind, .value = value};
            return 0;
        }
        if (ix[i].kind == kind && ix[i].key == key)
            return ix[i].value == value ? 0 : -EEXIST;
    }
}

/* ---- filling a generation ---- */

struct layout {
    uint64_t off[ROTA_SEC_COUNT], size[ROTA_SEC_COUNT];
    uint32_t count[ROTA_SEC_COUNT];
    uint64_t total;
};

static void plan(struct layout *L, const struct rota_desc *d, uint32_t ntiers,
                 uint32_t nmembers, uint32_t nbuckets, uint32_t slots, size_t nstr,
                 size_t ncred)
{
    uint32_t count[ROTA_SEC_COUNT] = {
        d->nproviders, d->naccounts,  d->nroutes,     ntiers,          nmembers,
        nbuckets,      slots,         (uint32_t)nstr, (uint32_t)ncred, d->naccounts,
        d->naccounts,  d->nproviders, ntiers,
    };
    uint64_t off = align_up(sizeof(struct rota_shm_header));
    for (int i = 0; i < ROTA_SEC_COUNT; i++) {
        L->count[i] = count[i];
        L->off[i] = off;
        L->size[i] = align_up((uint64_t)count[i] * rota_shm_elem_size[i]);
        off += L->size[i];
    }
    L->total = off;
}

static double or_default(double v, double def)
{
    return v > 0 ? v : def;
}

static uint32_t or_default_u(uint32_t v, uint32_t def)
{
    return v ? v : def;
}

static void fill_provider(struct rota_shm_provider *p, const struct rota_desc_provider *s,
                          struct blob *str)
{
    p->name = blob_str(str, s->name);
    p->kind = blob_str(str, s->kind ? s->kind : "generic");
    p->fail_threshold = or_default_u(s->fail_threshold, 5);
    p->halfopen_permits = or_default_u(s->halfopen_permits, 3);
    p->open_base_ms = or_default_u(s->open_base_ms, 30000);
    p->open_cap_ms = or_default_u(s->open_cap_ms, 600000);
    p->trial_timeout_ms = or_default_u(s->trial_timeout_ms, 120000);
    p->cooldown_base_ms = or_default_u(s->cooldown_base_ms, 1000);
    p->cooldown_cap_ms = or_default_u(s->cooldown_cap_ms, 300000);
    p->disable_for_s = s->disable_for_s;
    p->warn = or_default(s->warn, 0.70);
    p->crit = or_default(s->crit, 0.80);
    p->pessimistic = or_default(s->pessimistic, 0.85);
}

static void fill_account(struct rota_shm_account *a, const struct rota_desc_account *s,
                         struct blob *str, struct blob *cred)
{
    a->id = s->id;
    a->name = blob_str(str, s->name);
    a->provider = s->provider;
    a->weight = (uint16_t)(s->weight > 65535 ? 65535 : or_default_u(s->weight, 1));
    a->nwin = (uint8_t)s->nwin;
    a->npools = 1;
    for (uint32_t p = 0; p < ROTA_MAX_POOLS; p++) {
        a->pool_name[p] =
            blob_str(str, p == 0 ? (s->pools[0] ? s->pools[0] : "*") : s->pools[p]);
        if (s->pools[p] && p + 1 > a->npools)
            a->npools = (uint8_t)(p + 1);
    }
    if (s->credential) {
        size_t len = strlen(s->credential);
        a->cred = blob_add(cred, s->credential, len, true);
        a->cred_len = (uint32_t)len;
    }
    rota_shm_rate(s->rpm, s->rpm_burst, &a->req_interval_ns, &a->req_limit_ns);
    rota_shm_rate(s->tpm, s->tpm_burst, &a->tok_interval_ns, &a->tok_limit_ns);
    for (uint32_t w = 0; w < s->nwin; w++) {
        a->win[w].metric = (uint8_t)s->win[w].metric;
        a->win[w].pool = (uint8_t)s->win[w].pool;
        a->win[w].limit = s->win[w].limit;
        a->win[w].reset = s->win[w].reset;
        a->win[w].reset.tz = blob_str(str, s->win[w].tz ? s->win[w].tz : "UTC");
        a->win_mp[w] = (uint8_t)(s->win[w].pool | (unsigned)s->win[w].metric << 4);
    }
}

static void fill_tier(struct rota_shm_tier *t, const struct rota_desc_tier *s,
                      const struct rota_desc *d, uint32_t member0)
{
    t->provider = s->provider;
    t->member0 = member0;
    t->nmembers = s->nmembers;
    t->strategy = (uint8_t)s->strategy;
    t->top_k = (uint8_t)or_default_u(s->top_k > 255 ? 255 : s->top_k, 3);
    t->sample =
        (uint8_t)or_default_u(s->sample > ROTA_SAMPLE_MAX ? ROTA_SAMPLE_MAX : s->sample, 8);
    double crit = s->provider != ROTA_NONE && d->providers[s->provider].crit > 0
                      ? d->providers[s->provider].crit
                      : 0.80;
    t->ceiling = or_default(s->ceiling, crit);
    t->w_quota = (float)or_default(s->w_quota, 0.6);
    t->w_recency = (float)or_default(s->w_recency, 0.4);
    t->jitter = (float)or_default(s->jitter, 0.05);
    t->lru_share = s->lru_share < 0 ? 0 : (float)or_default(s->lru_share, 0.10);
    t->recency_s = or_default_u(s->recency_s, 86400);
}

/* Words of the buckets section a tier needs: sticky tiers too large to scan. */
static uint32_t bucket_words(const struct rota_desc_tier *t)
{
    if (t->strategy != ROTA_STRAT_STICKY || t->nmembers <= ROTA_SAMPLE_MAX)
        return 0;
    return rota_shm_buckets_for(t->nmembers) + 1 + t->nmembers;
}

/* Group a sticky tier's members by the hash of their account id (a counting sort):
 * offsets first, then positions. Returns the words written. */
static uint32_t fill_buckets(uint32_t *out, struct rota_shm_tier *t,
                             const struct rota_desc_tier *s, const struct rota_desc *d)
{
    uint32_t nb = rota_shm_buckets_for(s->nmembers), *off = out, *perm = out + nb + 1;
    memset(off, 0, (nb + 1) * sizeof(*off));
    for (uint32_t k = 0; k < s->nmembers; k++)
        off[(rota_hash_mix(d->accounts[s->members[k]].id) & (nb - 1)) + 1]++;
    for (uint32_t b = 0; b < nb; b++)
        off[b + 1] += off[b];
    for (uint32_t k = 0; k < s->nmembers; k++) {
        uint32_t b = (uint32_t)(rota_hash_mix(d->accounts[s->members[k]].id) & (nb - 1));
        perm[off[b]++] = k;
    }
    for (uint32_t b = nb; b > 0; b--) /* the fill moved each start to the next one's */
        off[b] = off[b - 1];
    off[0] = 0;
    t->nbuckets = nb;
    return nb + 1 + s->nmembers;
}

/* Routes, tiers, members and the index. */
static int fill_routes(struct rota_shm_map *m, const struct rota_desc *d, struct blob *str,
                       char *err, size_t n)
{
    struct rota_shm_route *routes = (void *)m->routes;
    struct rota_shm_tier *tiers = (void *)m->tiers;
    struct rota_shm_member *members = (void *)m->members;
    struct rota_shm_index *ix = (void *)m->index;
    uint32_t mask = m->hdr->index_mask, tier = 0, member = 0, bucket = 0;
    uint32_t *buckets = (void *)m->buckets;
    for (uint32_t i = 0; i < d->naccounts; i++)
        if (index_put(ix, mask, ROTA_IDX_ACCOUNT, d->accounts[i].id, i))
            return fail(err, n, -EEXIST, "account %s: id %llu is used twice",
                        d->accounts[i].name, (unsigned long long)d->accounts[i].id);
    for (uint32_t r = 0; r < d->nroutes; r++) {
        const struct rota_desc_route *rt = &d->routes[r];
        routes[r].name = blob_str(str, rt->name);
        routes[r].tier0 = tier;
        routes[r].ntiers = rt->ntiers;
        routes[r].models = (uint32_t)str->len;
        if (index_put(ix, mask, ROTA_IDX_ROUTE, rota_hash_str(rt->name), r))
            return fail(err, n, -EEXIST, "route %s: name used twice", rt->name);
        for (const char *const *mo = rt->models; mo && *mo; mo++) {
            blob_str(str, *mo);
            if (index_put(ix, mask, ROTA_IDX_ROUTE, rota_hash_str(*mo), r))
                return fail(err, n, -EEXIST, "route %s: model %s is served by another route",
                            rt->name, *mo);
        }
        blob_str(str, "");
        for (uint32_t t = 0; t < rt->ntiers; t++, tier++) {
            const struct rota_desc_tier *s = &rt->tiers[t];
            fill_tier(&tiers[tier], s, d, member);
            if (bucket_words(s)) {
                tiers[tier].bucket0 = bucket;
                bucket += fill_buckets(buckets + bucket, &tiers[tier], s, d);
            }
            for (uint32_t k = 0; k < s->nmembers; k++, member++) {
                members[member].account = s->members[k];
                members[member].pool = s->pools ? s->pools[k] : 0;
            }
        }
    }
    return 0;
}

/* At most this many generation names taken by objects of other owners are passed over
 * before a publish gives up. */
#define FOREIGN_SKIP_MAX 16

/* Create the segment of generation "*gen" (O_EXCL): a stale one of this uid under that
 * name (a writer died mid-build) is removed; one of another owner is left alone, and the
 * next generation number taken instead ("*gen" says which). */
static int create_segment(const char *instance, uint64_t *gen, mode_t mode, gid_t gid,
                          uint64_t size, struct rota_shm_map *out, char *err, size_t n)
{
    char name[ROTA_MAX_NAME + 32];
    int fd = -1;
    for (int skipped = 0, tries = 0; fd < 0; tries++) {
        if (tries > FOREIGN_SKIP_MAX + 8)
            return fail(err, n, -EAGAIN, "%s: keeps appearing and vanishing", name);
        rota_shm_name(name, sizeof(name), instance, *gen);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0)
            break;
        if (errno != EEXIST)
            return fail(err, n, -errno, "%s: create: %s", name, strerror(errno));
        struct stat st;
        int old = rota_shm_open_owned_by(name, O_RDONLY, geteuid(), "this rotad", &st, err, n);
        if (old >= 0) { /* ours, left by a writer that died mid-build */
            close(old);
            shm_unlink(name);
        } else if (old == -EPERM && ++skipped <= FOREIGN_SKIP_MAX) {
            ++*gen;
        } else if (old != -ENOENT) {
            return old;
        }
    }
    if ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0 ||
        ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        shm_unlink(name);
        return fail(err, n, -e, "%s: size %llu: %s", name, (unsigned long long)size,
                    strerror(e));
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        shm_unlink(name);
        return fail(err, n, -e, "%s: mmap: %s", name, strerror(e));
    }
    memset(out, 0, sizeof(*out));
    out->base = p;
    out->size = size;
    out->hdr = p;
    return 0;
}

static void write_header(struct rota_shm_header *h, const struct layout *L,
                         const char *instance, uint64_t gen, const struct rota_desc *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->magic = ROTA_SHM_MAGIC;
    h->abi = ROTA_SHM_ABI;
    h->header_size = sizeof(*h);
    h->total_size = L->total;
    h->generation = gen;
    h->config_hash = d->config_hash;
    if (getrandom(&h->nonce, sizeof(h->nonce), 0) != sizeof(h->nonce))
        h->nonce = (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)h;
    h->created_at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    h->stale_after_ns = d->stale_after_ns ? d->stale_after_ns : 30000000000ull;
    snprintf(h->instance, sizeof(h->instance), "%s", instance);
    for (int i = 0; i < ROTA_SEC_COUNT; i++)
        h->sec[i] = (struct rota_shm_section_desc){.off = L->off[i],
                                                   .size = L->size[i],
                                                   .count = L->count[i],
                                                   .elem = rota_shm_elem_size[i]};
    h->index_mask = L->count[ROTA_SEC_INDEX] - 1;
    atomic_store_explicit(&h->state, ROTA_GEN_INITIALIZING, memory_order_relaxed);
    atomic_store_explicit(&h->sup_pid, (int32_t)getpid(), memory_order_relaxed);
    atomic_store_explicit(&h->sup_start, (uint64_t)h->created_at, memory_order_relaxed);
}

/* Unmap and remove a generation that was never published. */
static void drop_segment(struct rota_shm_writer *w, struct rota_shm_map *m)
{
    char name[ROTA_MAX_NAME + 32];
    rota_shm_name(name, sizeof(name), w->instance, m->hdr->generation);
    munmap(m->base, m->size);
    shm_unlink(name);
    memset(m, 0, sizeof(*m));
}

/* ---- lease tags ---- */

/* Add "tag" to the open-addressing set "set" of "cap" slots (a power of two); false if
 * it is there already. */
static bool tag_add(uint64_t *set, uint32_t cap, uint64_t tag)
{
    for (uint32_t i = (uint32_t)rota_hash_mix(tag) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (set[i] == tag)
            return false;
        if (set[i] == 0) {
            set[i] = tag;
            return true;
        }
    }
}

/* Give every account of "acct" its lease tag, unique in the table: the tag it had in
 * "old" (found by id), so entries held across the reload go on naming it; else the tag
 * its id hashes to, or the next one free, passing over those of "old"'s accounts too
 * (a removed account's held entries never come to name a new one). */
static int assign_tags(struct rota_shm_account *acct, uint32_t n,
                       const struct rota_shm_map *old)
{
    uint32_t nold = old ? old->naccounts : 0, cap = 16;
    while (cap < 2 * ((uint64_t)n + nold))
        cap *= 2;
    uint64_t *set = calloc(cap, sizeof(*set));
    if (!set)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = nold ? rota_shm_find(old, ROTA_IDX_ACCOUNT, acct[i].id) : ROTA_NONE;
        uint64_t t = j != ROTA_NONE ? old->accounts[j].lease_tag : 0;
        acct[i].lease_tag = t && tag_add(set, cap, t) ? t : 0;
    }
    for (uint32_t j = 0; j < nold; j++)
        if (old->accounts[j].lease_tag)
            tag_add(set, cap, old->accounts[j].lease_tag);
    for (uint32_t i = 0; i < n; i++) {
        if (acct[i].lease_tag)
            continue;
        uint64_t t = rota_client_tag(acct[i].id);
        while (!tag_add(set, cap, t))
            t = rota_client_tag_next(t);
        acct[i].lease_tag = t;
    }
    free(set);
    return 0;
}

/* Strings and credentials first (their sizes fix the layout), then everything else. */
static int build(struct rota_shm_writer *w, const struct rota_desc *d, uint64_t *genp,
                 struct rota_shm_map *m, char *err, size_t n)
{
    struct blob str = {0}, cred = {0};
    uint32_t ntiers = 0, nmembers = 0, nbuckets = 0;
    blob_str(&str, "");
    for (uint32_t r = 0; r < d->nroutes; r++)
        for (uint32_t t = 0; t < d->routes[r].ntiers; t++, ntiers++)
            nmembers += d->routes[r].tiers[t].nmembers;
    for (uint32_t r = 0; r < d->nroutes; r++)
        for (uint32_t t = 0; t < d->routes[r].ntiers; t++)
            nbuckets += bucket_words(&d->routes[r].tiers[t]);
    uint32_t keys = d->naccounts + d->nroutes, slots = 16;
    for (uint32_t r = 0; r < d->nroutes; r++)
        for (const char *const *mo = d->routes[r].models; mo && *mo; mo++)
            keys++;
    while (slots < 2 * keys)
        slots *= 2;
    /* A dry run of the string blob to learn its size. */
    struct rota_shm_provider ptmp;
    struct rota_shm_account atmp;
    for (uint32_t i = 0; i < d->nproviders; i++)
        fill_provider(&ptmp, &d->providers[i], &str);
    for (uint32_t i = 0; i < d->naccounts; i++)
        fill_account(&atmp, &d->accounts[i], &str, &cred);
    for (uint32_t r = 0; r < d->nroutes; r++) {
        blob_str(&str, d->routes[r].name);
        for (const char *const *mo = d->routes[r].models; mo && *mo; mo++)
            blob_str(&str, *mo);
        blob_str(&str, "");
    }
    if (!str.p || (d->naccounts && str.len == 0)) {
        free(str.p);
        free(cred.p);
        return fail(err, n, -ENOMEM, "out of memory building strings");
    }
    struct layout L;
    plan(&L, d, ntiers, nmembers, nbuckets ? nbuckets : 1, slots, str.len,
         cred.len ? cred.len : 1);
    str.len = cred.len = 0;
    int rc = create_segment(w->instance, genp, w->mode, w->gid, L.total, m, err, n);
    if (rc) {
        free(str.p);
        free(cred.p);
        return rc;
    }
    write_header(m->hdr, &L, w->instance, *genp, d);
    char *b = m->base;
    struct rota_shm_provider *prov = (void *)(b + L.off[ROTA_SEC_PROVIDERS]);
    struct rota_shm_account *acct = (void *)(b + L.off[ROTA_SEC_ACCOUNTS]);
    blob_str(&str, "");
    for (uint32_t i = 0; i < d->nproviders; i++)
        fill_provider(&prov[i], &d->providers[i], &str);
    for (uint32_t i = 0; i < d->naccounts; i++)
        fill_account(&acct[i], &d->accounts[i], &str, &cred);
    /* Routes go through a provisional map so fill_routes can use the section pointers. */
    m->routes = (void *)(b + L.off[ROTA_SEC_ROUTES]);
    m->tiers = (void *)(b + L.off[ROTA_SEC_TIERS]);
    m->members = (void *)(b + L.off[ROTA_SEC_MEMBERS]);
    m->buckets = (void *)(b + L.off[ROTA_SEC_BUCKETS]);
    m->index = (void *)(b + L.off[ROTA_SEC_INDEX]);
    rc = fill_routes(m, d, &str, err, n);
    if (!rc && assign_tags(acct, d->naccounts, w->have_cur ? &w->cur : NULL))
        rc = fail(err, n, -ENOMEM, "out of memory assigning lease tags");
    if (!rc) {
        memcpy(b + L.off[ROTA_SEC_STRINGS], str.p, str.len);
        if (cred.len)
            memcpy(b + L.off[ROTA_SEC_CREDS], cred.p, cred.len);
        char why[200];
        rc = rota_shm_validate(m->base, m->size, m, why, sizeof(why));
        if (rc)
            fail(err, n, rc, "built table does not validate: %s", why);
    }
    free(str.p);
    free(cred.p);
    if (rc) {
        drop_segment(w, m);
        return rc;
    }
    for (uint32_t i = 0; i < m->naccounts; i++) {
        const struct rota_shm_account *a = &m->accounts[i];
        uint32_t flags = a->nwin ? ROTA_SNAP_HAS_DATA : 0;
        for (uint32_t k = 0; k < a->nwin; k++)
            rota_shm_snap_window(&m->snaps[i], k, 0, a->win[k].limit, 0);
        rota_store(&m->snaps[i].flags, flags);
    }
    /* Breakers start closed in a random half-open period: a worker's late trial outcome
     * from an earlier table (a restart, a journal restore) then almost never matches the
     * period of this one's first trials. Carried breakers keep theirs. */
    for (uint32_t i = 0; i < m->naccounts; i++)
        rota_store(&m->hot[i].breaker, rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0,
                                                         (unsigned)(h_nonce_mix(m, i)), 0));
    for (uint32_t i = 0; i < m->nproviders; i++)
        rota_store(&m->phot[i].breaker,
                   rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0,
                                     (unsigned)(h_nonce_mix(m, m->naccounts + i)), 0));
    return 0;
}

/* Map the instance's directory "name" for the writer: created afresh (O_EXCL), or one an
 * earlier supervisor of this uid left, kept when it is a directory of this rota (so
 * workers on its table go on reading it) and replaced otherwise. "*created" says which. */
static int open_dir(struct rota_shm_writer *w, const char *name, bool *created, char *err,
                    size_t n)
{
    for (int tries = 0; tries < 4; tries++) {
        struct stat st;
        int fd = rota_shm_open_own(name, w->mode, created, &st, err, n);
        if (fd < 0)
            return fd;
        int rc = 0;
        if (*created && ftruncate(fd, sizeof(struct rota_shm_dir)) < 0)
            rc = -errno;
        if (!rc && !*created && (size_t)st.st_size != sizeof(struct rota_shm_dir))
            rc = -EEXIST; /* not a directory of this rota: replaced below */
        if (!rc && fchmod(fd, w->mode) < 0)
            rc = -errno;
        if (!rc) {
            w->dir = mmap(NULL, sizeof(*w->dir), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            rc = w->dir == MAP_FAILED ? -errno : 0;
        }
        close(fd);
        struct rota_shm_dir *d = rc ? NULL : w->dir;
        if (d && !*created &&
            (d->magic != ROTA_SHM_DIR_MAGIC || d->abi != ROTA_SHM_ABI ||
             d->size != sizeof(*d))) {
            munmap(d, sizeof(*d));
            rc = -EEXIST;
        }
        if (rc == -EEXIST) {
            shm_unlink(name);
            continue;
        }
        if (rc) {
            if (*created)
                shm_unlink(name);
            return fail(err, n, rc, "%s: %s", name, strerror(-rc));
        }
        if (*created) {
            d->abi = ROTA_SHM_ABI;
            d->size = sizeof(*d);
            snprintf(d->instance, sizeof(d->instance), "%s", w->instance);
            atomic_store_explicit(&d->generation, 0, memory_order_relaxed);
        }
        /* Ours by the object's owner: readers check that owner against this. */
        d->sup_uid = (uint32_t)geteuid();
        atomic_thread_fence(memory_order_release);
        d->magic = ROTA_SHM_DIR_MAGIC;
        return 0;
    }
    return fail(err, n, -EAGAIN, "%s: cannot replace it", name);
}

int rota_shm_writer_open(const char *instance, mode_t mode, struct rota_shm_writer **out,
                         char *err, size_t n)
{
    char name[ROTA_MAX_NAME + 32], cname[ROTA_MAX_NAME + 32];
    if (!out || rota_shm_name(name, sizeof(name), instance, 0))
        return fail(err, n, -EINVAL,
                    "bad instance name (letters, digits, '_' and '-', at most %d)",
                    ROTA_MAX_NAME - 1);
    snprintf(cname, sizeof(cname), "/rota.%s.clients", instance);
    struct rota_shm_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    snprintf(w->instance, sizeof(w->instance), "%s", instance);
    w->mode = mode ? mode : 0600;
    w->gid = (gid_t)-1;
    bool created = false, ccreated = false;
    int rc = open_dir(w, name, &created, err, n);
    if (rc) {
        free(w);
        return rc;
    }
    atomic_store_explicit(&w->dir->sup_pid, (int32_t)getpid(), memory_order_relaxed);
    /* The leases segment: created here, or refused, by the same rule as the directory. */
    struct stat st;
    int fd = rota_shm_open_own(cname, w->mode, &ccreated, &st, err, n);
    if (fd >= 0) {
        close(fd);
        rc = rota_shm_clients_open(instance, true, w->mode, &w->clients);
        if (rc) {
            fail(err, n, rc, "%s: %s", cname, strerror(-rc));
            if (ccreated)
                shm_unlink(cname);
        }
    } else {
        rc = fd;
    }
    if (rc) {
        munmap(w->dir, sizeof(*w->dir));
        if (created)
            shm_unlink(name);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int rota_shm_writer_group(struct rota_shm_writer *w, gid_t gid, char *err, size_t n)
{
    w->gid = gid;
    char name[ROTA_MAX_NAME + 32];
    for (int k = 0; k < 2; k++) {
        if (k == 0)
            rota_shm_name(name, sizeof(name), w->instance, 0);
        else
            snprintf(name, sizeof(name), "/rota.%s.clients", w->instance);
        struct stat st;
        int fd = rota_shm_open_owned_by(name, O_RDWR, geteuid(), "this rotad", &st, err, n);
        if (fd < 0)
            return fd;
        int rc = fchown(fd, (uid_t)-1, gid) < 0 || fchmod(fd, w->mode) < 0 ? -errno : 0;
        close(fd);
        if (rc)
            return fail(err, n, rc, "%s: group %u: %s", name, (unsigned)gid, strerror(-rc));
    }
    return 0;
}

void rota_shm_abandon(struct rota_shm_writer *w)
{
    uint64_t gen = atomic_load_explicit(&w->dir->generation, memory_order_acquire);
    if (!gen || (w->have_cur && w->cur.hdr->generation == gen))
        return;
    char name[ROTA_MAX_NAME + 32];
    rota_shm_name(name, sizeof(name), w->instance, gen);
    struct stat st;
    int fd = rota_shm_open_owned_by(name, O_RDWR, geteuid(), "this rotad", &st, NULL, 0);
    if (fd == -EPERM)
        return; /* not ours: never written to, and never attached to by anyone */
    if (fd >= 0) {
        if ((size_t)st.st_size >= sizeof(struct rota_shm_header)) {
            struct rota_shm_header *h =
                mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (h != MAP_FAILED) {
                if (h->magic == ROTA_SHM_MAGIC)
                    atomic_store_explicit(&h->state, ROTA_GEN_SUPERSEDED, memory_order_release);
                munmap(h, sizeof(*h));
            }
        }
        close(fd);
    }
    shm_unlink(name);
}

struct rota_shm_clients *rota_shm_writer_clients(struct rota_shm_writer *w)
{
    return w ? w->clients : NULL;
}

void rota_shm_expire(struct rota_shm_map *m)
{
    atomic_store_explicit(&m->hdr->superseded_at, 0, memory_order_relaxed);
}

void rota_shm_supersede(struct rota_shm_map *m, uint64_t now)
{
    atomic_store_explicit(&m->hdr->superseded_at, now, memory_order_relaxed);
    atomic_store_explicit(&m->hdr->state, ROTA_GEN_SUPERSEDED, memory_order_release);
    /* Every process's mover sleeps on this word (a shared futex): wake them all. */
    syscall(SYS_futex, &m->hdr->state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int rota_shm_publish(struct rota_shm_writer *w, const struct rota_desc *d, char *err, size_t n)
{
    if (!w)
        return fail(err, n, -EINVAL, "no writer");
    int rc = check_desc(d, err, n);
    if (rc)
        return rc;
    uint64_t gen = atomic_load_explicit(&w->dir->generation, memory_order_relaxed);
    if (w->have_cur && w->cur.hdr->generation > gen)
        gen = w->cur.hdr->generation;
    gen++;
    struct rota_shm_map m;
    rc = build(w, d, &gen, &m, err, n);
    if (rc)
        return rc;
    struct rota_shm_hot *seen = NULL;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (w->have_cur) {
        size_t bytes = rota_shm_seen_size(&w->cur);
        seen = aligned_alloc(alignof(struct rota_shm_hot), bytes);
        if (!seen)
            rc = fail(err, n, -ENOMEM, "out of memory carrying state over");
        else
            rota_shm_carry_over(&m, &w->cur, memset(seen, 0, bytes));
    }
    if (rc == 0 && d->prepare)
        rc = d->prepare(d->prepare_arg, &m, err, n);
    if (rc) { /* nobody has seen the new generation: it goes */
        free(seen);
        drop_segment(w, &m);
        return rc;
    }
    rota_store(&m.hdr->heartbeat, now);
    atomic_store_explicit(&m.hdr->state, ROTA_GEN_READY, memory_order_release);
    atomic_store_explicit(&w->dir->generation, gen, memory_order_release);
    if (w->have_cur) {
        rota_shm_supersede(&w->cur, now);
        char name[ROTA_MAX_NAME + 32];
        rota_shm_name(name, sizeof(name), w->instance, w->cur.hdr->generation);
        shm_unlink(name);
        if (w->nret == RETIRED_MAX)
            release_oldest(w);
        w->ret[w->nret++] = (struct retired){.map = w->cur, .seen = seen, .at = now};
    }
    w->cur = m;
    w->have_cur = true;
    free(w->refunds); /* indexed by the current generation's accounts */
    w->refunds = NULL;
    release_expired(w);
    return 0;
}

static void release_oldest(struct rota_shm_writer *w)
{
    /* Released before its grace is over (too many reloads at once): workers still on it
     * must stop counting there now, not when the follow window would have ended. */
    rota_shm_expire(&w->ret[0].map);
    rota_shm_catch_up(&w->cur, &w->ret[0].map, w->ret[0].seen, w->ret[0].at);
    rota_shm_detach(&w->ret[0].map);
    free(w->ret[0].seen);
    memmove(&w->ret[0], &w->ret[1], (w->nret - 1) * sizeof(w->ret[0]));
    w->nret--;
}

/* Let go of the retired generations past their grace, adding their late counts first.
 * The others' counts wait for the next settle (every second): each is added relative to
 * what was seen of it, so how often does not matter, and a publish does not pay for
 * every retired generation's every account. */
static void release_expired(struct rota_shm_writer *w)
{
    uint64_t now = mono_ns();
    while (w->nret > 0 && now - w->ret[0].at >= SETTLE_GRACE_NS)
        release_oldest(w);
}

/* Carry late counts from every retired generation to the current one (oldest first, so
 * each is added once), releasing those past the grace period, or all of them. */
static void settle(struct rota_shm_writer *w, bool all)
{
    uint64_t now = mono_ns();
    for (unsigned k = 0; k < w->nret; k++)
        rota_shm_catch_up(&w->cur, &w->ret[k].map, w->ret[k].seen, w->ret[k].at);
    while (w->nret > 0 && (all || now - w->ret[0].at >= SETTLE_GRACE_NS))
        release_oldest(w);
}

/* A TPM refund raises "tok_giving", lowers the rate word, then raises "tok_back"; a
 * worker killed between the first and the last leaves them apart for ever, and every
 * later refund on the account is cut by the gap (core/gcra.h). Apart at two looks a
 * second or more apart with neither moving, no refund is in progress: the writer closes
 * the gap (by CAS, so a refund starting meanwhile keeps its own step). */
#define ROTA_NS_PER_S_BUILD 1000000000ull
static void close_refund_gaps(struct rota_shm_writer *w)
{
    const struct rota_shm_map *m = &w->cur;
    uint64_t now = mono_ns();
    if (w->refunds && now - w->refunds_at < ROTA_NS_PER_S_BUILD)
        return;
    if (!w->refunds)
        w->refunds = calloc((size_t)(m->naccounts ? m->naccounts : 1) * 2, sizeof(uint64_t));
    w->refunds_at = now;
    for (uint32_t i = 0; w->refunds && i < m->naccounts; i++) {
        struct rota_shm_hot *h = &m->hot[i];
        uint64_t back = rota_load_acq(&h->tok_back), giving = rota_load_acq(&h->tok_giving);
        uint64_t *seen = &w->refunds[2 * (size_t)i];
        if (giving != back && seen[0] == giving && seen[1] == back) {
            if (giving > back)
                rota_cas(&h->tok_back, &back, giving);
            else
                rota_cas(&h->tok_giving, &giving, back);
            back = rota_load_acq(&h->tok_back);
            giving = rota_load_acq(&h->tok_giving);
        }
        seen[0] = giving;
        seen[1] = back;
    }
}

void rota_shm_settle(struct rota_shm_writer *w, bool all)
{
    if (w && w->have_cur) {
        settle(w, all);
        close_refund_gaps(w);
    }
}

/* Adoption of a snapshot a dead writer left mid-write (its sequence odd). Its fields may
 * mix old and new values, each word whole but not together: a new "used" with an old
 * "limit" and "scale" can read as almost nothing used. Closing the sequence alone would
 * make that mix readable until the next observation, so before closing it every window
 * is rewritten self-consistent and pessimistic, inside the section the dead writer left
 * open (readers keep skipping it until then): "scale" from "limit"; the use it showed
 * (its "used" plus the counter past its "base", the larger of the two readings a mix can
 * give) raised to at least the provider's pessimistic share of the limit, counted from
 * the counter now. A window whose limit is not known cannot be given a figure: the
 * account is flagged PESSIMISTIC, which selection turns into the pessimistic share and
 * the next probe answer clears. The next observation, a scheduled reset or rotactl reset
 * replaces the figures as for any other account, so nothing stays pessimistic for
 * longer than the supervisor takes to look again. Returns true if it had to. */
static bool settle_torn(struct rota_shm_map *m, uint32_t i)
{
    struct rota_shm_snap *sn = &m->snaps[i];
    if (!(rota_load(&sn->seq) & 1u))
        return false;
    const struct rota_shm_account *a = &m->accounts[i];
    double p = m->providers[a->provider].pessimistic;
    p = p > 1 ? 1 : p;
    uint32_t flags = rota_load(&sn->flags);
    for (uint32_t w = 0; w < a->nwin; w++) {
        const struct rota_shm_window *cw = &a->win[w];
        uint64_t limit = rota_load(&sn->win[w].limit), used = rota_load(&sn->win[w].used);
        uint64_t base = rota_load(&sn->win[w].base), counter = base;
        if (cw->metric <= ROTA_METRIC_TOKENS) {
            counter = rota_load(rota_shm_usage(&m->hot[i], cw->pool, cw->metric));
            used += counter > base ? counter - base : 0;
        }
        if (limit == 0) {
            flags |= ROTA_SNAP_PESSIMISTIC;
        } else {
            double share = p * (double)limit;
            uint64_t least = share >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)share;
            least += (double)least < share;
            used = used > least ? used : least;
        }
        rota_shm_snap_window(sn, w, used, limit, counter);
    }
    rota_store(&sn->flags, flags | (a->nwin ? ROTA_SNAP_HAS_DATA : 0));
    return rota_seq_repair(&sn->seq);
}

int rota_shm_adopt(struct rota_shm_writer *w, char *err, size_t n)
{
    if (!w)
        return fail(err, n, -EINVAL, "no writer");
    uint64_t gen = atomic_load_explicit(&w->dir->generation, memory_order_acquire);
    if (!gen)
        return fail(err, n, -ENOENT, "instance %s has no table to adopt", w->instance);
    struct rota_shm_map m;
    int rc = rota_shm_attach_gen(w->instance, gen, &m, err, n);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < m.naccounts; i++)
        settle_torn(&m, i);
    /* A writer that died between switching the directory and superseding the previous
     * generation left it READY: workers on it would never move. */
    for (uint64_t g = gen - 1; g > 0 && g + 4 > gen; g--) {
        struct rota_shm_map old;
        if (rota_shm_attach_gen(w->instance, g, &old, NULL, 0) != 0)
            continue;
        /* Nobody merges it from here on: workers on it stop counting there at once (a
         * time of supersession of 0 is a follow window long over). */
        if (atomic_load_explicit(&old.hdr->state, memory_order_acquire) != ROTA_GEN_SUPERSEDED)
            rota_shm_supersede(&old, 0);
        else
            rota_shm_expire(&old);
        char name[ROTA_MAX_NAME + 32];
        rota_shm_name(name, sizeof(name), w->instance, g);
        shm_unlink(name);
        rota_shm_detach(&old);
    }
    atomic_store_explicit(&m.hdr->sup_pid, (int32_t)getpid(), memory_order_relaxed);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    atomic_store_explicit(&m.hdr->sup_start,
                          (uint64_t)wall.tv_sec * 1000000000u + (uint64_t)wall.tv_nsec,
                          memory_order_relaxed);
    atomic_store_explicit(&m.hdr->state, ROTA_GEN_READY, memory_order_release);
    if (w->have_cur) {
        settle(w, true);
        rota_shm_detach(&w->cur);
    }
    free(w->refunds);
    w->refunds = NULL;
    w->cur = m;
    w->have_cur = true;
    return 0;
}

struct rota_shm_map *rota_shm_writer_map(struct rota_shm_writer *w)
{
    return w && w->have_cur ? &w->cur : NULL;
}

void rota_shm_set_control(struct rota_shm_writer *w, const char *path)
{
    if (w)
        snprintf(w->dir->control, sizeof(w->dir->control), "%s", path ? path : "");
}

void rota_shm_heartbeat(struct rota_shm_writer *w, uint64_t mono_ns)
{
    if (w && w->have_cur)
        rota_store(&w->cur.hdr->heartbeat, mono_ns);
}

void rota_shm_writer_close(struct rota_shm_writer *w, bool unlink)
{
    if (!w)
        return;
    rota_shm_settle(w, true);
    char name[ROTA_MAX_NAME + 32];
    if (unlink && w->have_cur) {
        rota_shm_name(name, sizeof(name), w->instance, w->cur.hdr->generation);
        shm_unlink(name);
    }
    if (w->have_cur)
        rota_shm_detach(&w->cur);
    if (unlink) {
        rota_shm_name(name, sizeof(name), w->instance, 0);
        shm_unlink(name);
        snprintf(name, sizeof(name), "/rota.%s.clients", w->instance);
        shm_unlink(name);
    }
    rota_shm_clients_close(w->clients);
    munmap(w->dir, sizeof(*w->dir));
    free(w->refunds);
    free(w);
}
