/*
 * carry.c - what a new generation inherits from the one it replaces.
 *
 * DESIGN
 * Called by the writer only (rota_shm_publish, rota_shm_settle), on its own thread, while
 * workers keep changing the old generation's hot blocks with atomics. Copying therefore
 * reads every word with an atomic load, and what workers do on the old generation after
 * the copy is carried later, relative to a "seen" copy: counters by their difference
 * (exact, since they only grow), cooldowns by maximum, GCRA arrival times by their
 * advance (so a limit is never spent twice across a reload), and single-valued words
 * (disable, consecutive counts) when they changed. Snapshot windows are carried when the
 * window kept its metric and pool; a window the reload adds starts empty. Providers keep
 * their breaker and failure streak by name the same way: a reload must not close the
 * breaker of a provider that is down. The TPM given-back counters (tok_giving, tok_back)
 * are counters like the others, so a choice made before the reload and reported after it
 * still tells how far refunds have moved its admission. The dispatch pool's client keys
 * keep their rate words, refund counters and statistics by SHA-256 the same way.
 *
 * Breaker words are not taken merely because they changed on the old generation: workers
 * already on the new one may have moved its word too (a trial failed there and opened it)
 * while a stale worker closed the old one. When only the old word changed, it is the
 * news and replaces the new one (by CAS, so a change made meanwhile is decided again).
 * When both changed since the copy, the one further along wins: the later half-open
 * period (epoch, compared as serial numbers modulo 256), and in the same period OPEN
 * over the others, since opening ends a period and a close or a trial from it is older
 * news; on a tie the new generation's word stays.
 */
#include <string.h>

#include "breaker_word.h"
#include "carry.h"
#include "seqlock.h"

/* Word by word, each an atomic load: workers may be writing "src". */
static void copy_hot(struct rota_shm_hot *dst, struct rota_shm_hot *src)
{
    _Atomic uint64_t *d = (void *)dst, *s = (void *)src;
    for (size_t w = 0; w < sizeof(*dst) / sizeof(uint64_t); w++)
        rota_store(&d[w], rota_load(&s[w]));
    /* The refund counters again, "back" before "giving" (a refund raises giving first):
     * the copy never has back ahead of giving, which would let a refund overreach. */
    uint64_t back = rota_load_acq(&src->tok_back);
    rota_store(&dst->tok_back, back);
    rota_store(&dst->tok_giving, rota_load_acq(&src->tok_giving));
}

size_t rota_shm_seen_size(const struct rota_shm_map *old)
{
    return sizeof(struct rota_shm_hot) * (old->naccounts ? old->naccounts : 1) +
           sizeof(struct rota_shm_phot) * old->nproviders +
           sizeof(struct rota_shm_khot) * old->nckeys;
}

/* The providers' part of "seen", after the accounts'. */
static struct rota_shm_phot *seen_providers(struct rota_shm_hot *seen,
                                            const struct rota_shm_map *old)
{
    return (struct rota_shm_phot *)(seen + (old->naccounts ? old->naccounts : 1));
}

/* The client keys' part of "seen", after the providers'. */
static struct rota_shm_khot *seen_keys(struct rota_shm_hot *seen,
                                       const struct rota_shm_map *old)
{
    return (struct rota_shm_khot *)(seen_providers(seen, old) + old->nproviders);
}

/* Word by word, each an atomic load; "back" before "giving", as in copy_hot. */
static void copy_khot(struct rota_shm_khot *dst, struct rota_shm_khot *src)
{
    _Atomic uint64_t *d = (void *)dst, *s = (void *)src;
    for (size_t w = 0; w < sizeof(*dst) / sizeof(uint64_t); w++)
        rota_store(&d[w], rota_load(&s[w]));
    rota_store(&dst->tok_back, rota_load_acq(&src->tok_back));
    rota_store(&dst->tok_giving, rota_load_acq(&src->tok_giving));
}

/* Index in "m" of the provider "old" calls "p", or ROTA_NONE. */
static uint32_t same_provider(const struct rota_shm_map *m, const struct rota_shm_map *old,
                              uint32_t p)
{
    const char *name = rota_shm_str(old, old->providers[p].name);
    for (uint32_t i = 0; i < m->nproviders; i++)
        if (strcmp(rota_shm_str(m, m->providers[i].name), name) == 0)
            return i;
    return ROTA_NONE;
}

static void copy_phot(struct rota_shm_phot *dst, struct rota_shm_phot *src)
{
    rota_store(&dst->breaker, rota_load(&src->breaker));
    rota_store(&dst->consec_fail, rota_load(&src->consec_fail));
}

/* Copy hot state and snapshot windows of surviving accounts from "old", and surviving
 * providers' hot blocks; "seen" records them as copied. */
void rota_shm_carry_over(struct rota_shm_map *m, const struct rota_shm_map *old,
                         struct rota_shm_hot *seen)
{
    struct rota_shm_phot *pseen = seen_providers(seen, old);
    for (uint32_t j = 0; j < old->nproviders; j++) {
        uint32_t i = same_provider(m, old, j);
        if (i == ROTA_NONE)
            continue;
        copy_phot(&m->phot[i], &old->phot[j]);
        copy_phot(&pseen[j], &m->phot[i]);
    }
    struct rota_shm_khot *kseen = seen_keys(seen, old);
    for (uint32_t i = 0; i < m->nckeys; i++) {
        uint32_t j = rota_shm_ckey_find(old, m->ckeys[i].sha256);
        if (j == ROTA_NONE)
            continue;
        copy_khot(&m->khot[i], &old->khot[j]);
        copy_khot(&kseen[j], &m->khot[i]);
    }
    for (uint32_t i = 0; i < m->naccounts; i++) {
        uint32_t j = rota_shm_find(old, ROTA_IDX_ACCOUNT, m->accounts[i].id);
        if (j == ROTA_NONE)
            continue;
        copy_hot(&m->hot[i], &old->hot[j]);
        copy_hot(&seen[j], &m->hot[i]);
        const struct rota_shm_account *na = &m->accounts[i], *oa = &old->accounts[j];
        struct rota_shm_snap *ns = &m->snaps[i], *os = &old->snaps[j];
        rota_store(&ns->flags, rota_load(&os->flags));
        rota_store(&ns->reason, rota_load(&os->reason));
        rota_store(&ns->disabled_until, rota_load(&os->disabled_until));
        rota_store(&ns->probe_at, rota_load(&os->probe_at));
        for (uint32_t w = 0; w < na->nwin; w++) {
            const struct rota_shm_window *cw = &na->win[w];
            if (w >= oa->nwin || cw->metric != oa->win[w].metric ||
                cw->pool != oa->win[w].pool) {
                /* A new window starts empty now: its base is what was counted so far. */
                uint64_t base =
                    cw->metric <= ROTA_METRIC_TOKENS
                        ? rota_load(rota_shm_usage(&m->hot[i], cw->pool, cw->metric))
                        : 0;
                rota_shm_snap_window(ns, w, 0, cw->limit, base);
                continue;
            }
            uint64_t limit = cw->limit ? cw->limit : rota_load(&os->win[w].limit);
            rota_shm_snap_window(ns, w, rota_load(&os->win[w].used), limit,
                                 rota_load(&os->win[w].base));
            rota_store(&ns->win[w].reset_at, rota_load(&os->win[w].reset_at));
        }
    }
}

static void add_since(_Atomic uint64_t *dst, _Atomic uint64_t *src, _Atomic uint64_t *seen)
{
    uint64_t now = rota_load(src);
    rota_add(dst, now - rota_load(seen));
    rota_store(seen, now);
}

/* A word that is not a counter (disable, consecutive counts): if a worker on the old
 * generation changed it since it was seen, the old value is the news. */
static void take_if_changed(_Atomic uint64_t *dst, _Atomic uint64_t *src,
                            _Atomic uint64_t *seen)
{
    uint64_t now = rota_load(src);
    if (now != rota_load(seen)) {
        rota_store(dst, now);
        rota_store(seen, now);
    }
}

static void take_if_changed32(_Atomic uint32_t *dst, _Atomic uint32_t *src,
                              _Atomic uint32_t *seen)
{
    uint32_t now = rota_load(src);
    if (now != rota_load(seen)) {
        rota_store(dst, now);
        rota_store(seen, now);
    }
}

/* A breaker word: the old generation's change is taken if the new word has not moved
 * since it was carried, or if it is further along than the new word (see DESIGN). */
static void merge_breaker(_Atomic uint64_t *dst, _Atomic uint64_t *src, _Atomic uint64_t *seen)
{
    uint64_t old = rota_load(src), was = rota_load(seen), cur = rota_load(dst);
    if (old == was)
        return;
    rota_store(seen, old);
    while ((cur == was || rota_breaker_ahead(old, cur)) && !rota_cas(dst, &cur, old))
        ;
}

/* A GCRA word: what was admitted on the old generation since it was seen (its arrival
 * time's advance past the later of the seen value and "since", when the copy was made)
 * is charged to the new one too, so a reload never lets a limit admit twice. */
static void merge_tat(_Atomic uint64_t *dst, _Atomic uint64_t *src, _Atomic uint64_t *seen,
                      uint64_t since)
{
    uint64_t now = rota_load(src), from = rota_load(seen);
    from = from > since ? from : since;
    if (now > from) {
        uint64_t d = now - from, cur = rota_load(dst);
        while (!rota_cas(dst, &cur, (cur > since ? cur : since) + d))
            ;
    }
    rota_store(seen, now);
}

/* After the switch: add what workers did on "old" since it was last seen (at the copy,
 * made at "since", or the previous catch-up): counters by their difference, cooldowns by
 * maximum, rate words by their advance, breakers by which is further along, other words
 * if they changed. */
void rota_shm_catch_up(struct rota_shm_map *m, const struct rota_shm_map *old,
                       struct rota_shm_hot *seen, uint64_t since)
{
    for (uint32_t j = 0; j < old->naccounts; j++) {
        uint32_t i = rota_shm_find(m, ROTA_IDX_ACCOUNT, old->accounts[j].id);
        if (i == ROTA_NONE)
            continue;
        struct rota_shm_hot *o = &old->hot[j], *n = &m->hot[i], *c = &seen[j];
        for (uint32_t p = 0; p < ROTA_MAX_POOLS; p++)
            for (uint32_t k = 0; k < 2; k++)
                add_since(rota_shm_usage(n, p, k), rota_shm_usage(o, p, k),
                          rota_shm_usage(c, p, k));
        add_since(&n->done, &o->done, &c->done);
        add_since(&n->failures, &o->failures, &c->failures);
        add_since(&n->rate_limited, &o->rate_limited, &c->rate_limited);
        add_since(&n->auth_failures, &o->auth_failures, &c->auth_failures);
        add_since(&n->halfopen, &o->halfopen, &c->halfopen);
        add_since(&n->neutral, &o->neutral, &c->neutral);
        add_since(&n->tok_back, &o->tok_back, &c->tok_back); /* back first: see copy_hot */
        add_since(&n->tok_giving, &o->tok_giving, &c->tok_giving);
        rota_max_u64(&n->cooldown_until, rota_load(&o->cooldown_until));
        rota_max_u64(&n->last_used, rota_load(&o->last_used));
        merge_tat(&n->gcra_req, &o->gcra_req, &c->gcra_req, since);
        merge_tat(&n->gcra_tok, &o->gcra_tok, &c->gcra_tok, since);
        merge_breaker(&n->breaker, &o->breaker, &c->breaker);
        take_if_changed(&n->disabled, &o->disabled, &c->disabled);
        take_if_changed32(&n->consec_fail, &o->consec_fail, &c->consec_fail);
        take_if_changed32(&n->consec_429, &o->consec_429, &c->consec_429);
    }
    struct rota_shm_phot *pseen = seen_providers(seen, old);
    for (uint32_t j = 0; j < old->nproviders; j++) {
        uint32_t i = same_provider(m, old, j);
        if (i == ROTA_NONE)
            continue;
        merge_breaker(&m->phot[i].breaker, &old->phot[j].breaker, &pseen[j].breaker);
        take_if_changed32(&m->phot[i].consec_fail, &old->phot[j].consec_fail,
                          &pseen[j].consec_fail);
    }
    struct rota_shm_khot *kseen = seen_keys(seen, old);
    for (uint32_t j = 0; j < old->nckeys; j++) {
        uint32_t i = rota_shm_ckey_find(m, old->ckeys[j].sha256);
        if (i == ROTA_NONE)
            continue;
        struct rota_shm_khot *o = &old->khot[j], *n = &m->khot[i], *c = &kseen[j];
        add_since(&n->admitted, &o->admitted, &c->admitted);
        add_since(&n->refused, &o->refused, &c->refused);
        add_since(&n->limited, &o->limited, &c->limited);
        add_since(&n->tokens, &o->tokens, &c->tokens);
        add_since(&n->tok_back, &o->tok_back, &c->tok_back); /* back first: see copy_hot */
        add_since(&n->tok_giving, &o->tok_giving, &c->tok_giving);
        merge_tat(&n->gcra_req, &o->gcra_req, &c->gcra_req, since);
        merge_tat(&n->gcra_tok, &o->gcra_tok, &c->gcra_tok, since);
    }
}
