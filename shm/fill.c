/*
 * fill.c - see fill.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "fill.h"
#include "hash.h"

#define fail rota_shm_fail

static uint64_t align_up(uint64_t v)
{
    return (v + ROTA_SHM_ALIGN - 1) & ~(uint64_t)(ROTA_SHM_ALIGN - 1);
}

/* ---- string blob ---- */

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

uint32_t rota_fill_blob_str(struct blob *b, const char *s)
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

int rota_fill_check(const struct rota_desc *d, char *err, size_t n)
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
    return rota_fill_check_keys(d, err, n);
}

/* A random-looking byte per record of "m", from the segment's nonce. */
uint64_t rota_fill_nonce_byte(const struct rota_shm_map *m, uint32_t i)
{
    return rota_hash_mix(m->hdr->nonce + i) >> 56;
}

/* ---- index ---- */

int rota_fill_index_put(struct rota_shm_index *ix, uint32_t mask, uint32_t kind, uint64_t key,
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

void rota_fill_plan(struct layout *L, const struct rota_desc *d, uint32_t ntiers,
                    uint32_t nmembers, uint32_t nbuckets, uint32_t slots, uint32_t nckroutes,
                    size_t nstr, size_t ncred)
{
    uint32_t count[ROTA_SEC_COUNT] = {
        [ROTA_SEC_PROVIDERS] = d->nproviders,
        [ROTA_SEC_ACCOUNTS] = d->naccounts,
        [ROTA_SEC_ROUTES] = d->nroutes,
        [ROTA_SEC_TIERS] = ntiers,
        [ROTA_SEC_MEMBERS] = nmembers,
        [ROTA_SEC_BUCKETS] = nbuckets,
        [ROTA_SEC_INDEX] = slots,
        [ROTA_SEC_CKEYS] = d->nkeys,
        [ROTA_SEC_CKROUTES] = nckroutes,
        [ROTA_SEC_STRINGS] = (uint32_t)nstr,
        [ROTA_SEC_CREDS] = (uint32_t)ncred,
        [ROTA_SEC_SNAPS] = d->naccounts,
        [ROTA_SEC_HOT] = d->naccounts,
        [ROTA_SEC_PHOT] = d->nproviders,
        [ROTA_SEC_THOT] = ntiers,
        [ROTA_SEC_KHOT] = d->nkeys,
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

/* ---- wire defaults ---- */

/* Each kind's usual wire format and, where it differs from the format's, its endpoint. */
static const struct {
    const char *kind, *format, *path;
} wires[] = {
    {"openai", "openai", NULL},
    {"azure-openai", "openai",
     "/openai/deployments/{model}/chat/completions?api-version=2024-10-21"},
    {"anthropic", "anthropic", NULL},
    {"gemini", "gemini", NULL},
    {"github-copilot", "openai", "/chat/completions"},
    {"github", "openai", "/inference/chat/completions"},
    {"antigravity", "code-assist", NULL},
    {"openrouter", "openai", "/api/v1/chat/completions"},
    {"llamacpp", "openai", NULL},
};

static const struct {
    const char *format, *path;
} format_paths[] = {
    {"openai", "/v1/chat/completions"},
    {"anthropic", "/v1/messages"},
    {"gemini", "/v1beta/models/{model}:generateContent"},
    {"code-assist", "/v1internal:generateContent"},
};

const char *rota_shm_wire_format(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof(wires) / sizeof(wires[0]); i++)
        if (strcmp(wires[i].kind, kind) == 0)
            return wires[i].format;
    return "openai"; /* generic, exec: most servers speak OpenAI's chat completions */
}

const char *rota_shm_wire_path(const char *kind, const char *format)
{
    if (!format)
        format = rota_shm_wire_format(kind);
    for (size_t i = 0; kind && i < sizeof(wires) / sizeof(wires[0]); i++)
        if (strcmp(wires[i].kind, kind) == 0 && wires[i].path &&
            strcmp(wires[i].format, format) == 0)
            return wires[i].path;
    for (size_t i = 0; i < sizeof(format_paths) / sizeof(format_paths[0]); i++)
        if (strcmp(format_paths[i].format, format) == 0)
            return format_paths[i].path;
    return "";
}

void rota_fill_fill_provider(struct rota_shm_provider *p, const struct rota_desc_provider *s,
                             struct blob *str)
{
    const char *kind = s->kind ? s->kind : "generic";
    const char *format = s->format ? s->format : rota_shm_wire_format(kind);
    p->name = rota_fill_blob_str(str, s->name);
    p->kind = rota_fill_blob_str(str, kind);
    p->format = rota_fill_blob_str(str, format);
    p->base_url = rota_fill_blob_str(str, s->base_url);
    p->path = rota_fill_blob_str(str, s->path ? s->path : rota_shm_wire_path(kind, format));
    /* no auth given: the config's default, a bearer token */
    p->auth_header = rota_fill_blob_str(str, s->auth_header ? s->auth_header : "Authorization");
    p->auth_scheme = rota_fill_blob_str(str, s->auth_header ? s->auth_scheme : "Bearer ");
    p->headers = rota_fill_blob_str(str, s->headers);
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

void rota_fill_fill_account(struct rota_shm_account *a, const struct rota_desc_account *s,
                            struct blob *str, struct blob *cred)
{
    a->id = s->id;
    a->name = rota_fill_blob_str(str, s->name);
    a->provider = s->provider;
    a->weight = (uint16_t)(s->weight > 65535 ? 65535 : or_default_u(s->weight, 1));
    a->nwin = (uint8_t)s->nwin;
    a->npools = 1;
    for (uint32_t p = 0; p < ROTA_MAX_POOLS; p++) {
        a->pool_name[p] =
            rota_fill_blob_str(str, p == 0 ? (s->pools[0] ? s->pools[0] : "*") : s->pools[p]);
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
        a->win[w].reset.tz = rota_fill_blob_str(str, s->win[w].tz ? s->win[w].tz : "UTC");
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
    t->caps = (uint8_t)((s->no_tools ? ROTA_TIER_NO_TOOLS : 0) |
                        (s->no_images ? ROTA_TIER_NO_IMAGES : 0));
    t->context = s->context;
}

/* A tier's model and its map of client models: pairs, then the empty string. */
void rota_fill_tier_strings(struct rota_shm_tier *t, const struct rota_desc_tier *s,
                            struct blob *str)
{
    t->model = rota_fill_blob_str(str, s->model);
    t->models = (uint32_t)str->len;
    for (const char *const *mo = s->models; mo && mo[0] && mo[1]; mo += 2) {
        rota_fill_blob_str(str, mo[0]);
        rota_fill_blob_str(str, mo[1]);
    }
    rota_fill_blob_str(str, "");
}

/* Words of the buckets section a tier needs: sticky tiers too large to scan. */
uint32_t rota_fill_bucket_words(const struct rota_desc_tier *t)
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
int rota_fill_fill_routes(struct rota_shm_map *m, const struct rota_desc *d, struct blob *str,
                          char *err, size_t n)
{
    struct rota_shm_route *routes = (void *)m->routes;
    struct rota_shm_tier *tiers = (void *)m->tiers;
    struct rota_shm_member *members = (void *)m->members;
    struct rota_shm_index *ix = (void *)m->index;
    uint32_t mask = m->hdr->index_mask, tier = 0, member = 0, bucket = 0;
    uint32_t *buckets = (void *)m->buckets;
    for (uint32_t i = 0; i < d->naccounts; i++)
        if (rota_fill_index_put(ix, mask, ROTA_IDX_ACCOUNT, d->accounts[i].id, i))
            return fail(err, n, -EEXIST, "account %s: id %llu is used twice",
                        d->accounts[i].name, (unsigned long long)d->accounts[i].id);
    for (uint32_t r = 0; r < d->nroutes; r++) {
        const struct rota_desc_route *rt = &d->routes[r];
        routes[r].name = rota_fill_blob_str(str, rt->name);
        routes[r].tier0 = tier;
        routes[r].ntiers = rt->ntiers;
        routes[r].models = (uint32_t)str->len;
        routes[r].flags = rt->no_cross_format ? ROTA_ROUTE_NO_XLATE : 0;
        if (rota_fill_index_put(ix, mask, ROTA_IDX_ROUTE, rota_hash_str(rt->name), r))
            return fail(err, n, -EEXIST, "route %s: name used twice", rt->name);
        for (const char *const *mo = rt->models; mo && *mo; mo++) {
            rota_fill_blob_str(str, *mo);
            if (rota_fill_index_put(ix, mask, ROTA_IDX_ROUTE, rota_hash_str(*mo), r))
                return fail(err, n, -EEXIST, "route %s: model %s is served by another route",
                            rt->name, *mo);
        }
        rota_fill_blob_str(str, "");
        for (uint32_t t = 0; t < rt->ntiers; t++, tier++) {
            const struct rota_desc_tier *s = &rt->tiers[t];
            fill_tier(&tiers[tier], s, d, member);
            rota_fill_tier_strings(&tiers[tier], s, str);
            if (rota_fill_bucket_words(s)) {
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

void rota_fill_write_header(struct rota_shm_header *h, const struct layout *L,
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
int rota_fill_assign_tags(struct rota_shm_account *acct, uint32_t n,
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
