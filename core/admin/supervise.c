/*
 * supervise.c - the supervisor's work on its table: reset schedules, the failure-rate
 * breaker, operator actions and dry-run selections.
 *
 * DESIGN
 * Called from rotad's main thread only: it is the one writer of snapshots, so each
 * snapshot change is one seqlock write section here. A window's reset keeps what workers
 * counted honest without stopping them: the window's "used" goes to zero and its "base"
 * to the usage counter's current value, so only calls counted after the reset count
 * against the new period. The failure-rate tick compares each account's calls done and
 * failures with their values one window ago (kept here, per account index; a new
 * generation gets a new rota_sup).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "hash.h"
#include "quota.h"
#include "supervise.h"
#include "tz.h"
#include "view.h"

#define NS_PER_S 1000000000ll

struct rate_mark {
    uint64_t at, done, failures;
};

struct rota_sup {
    uint32_t naccounts, nproviders;
    struct rota_sup_rate *rates;
    struct rate_mark *marks;
    struct rota_tz **tz; /* per account window: loaded zone, NULL = UTC */
    uint32_t nzones;
    struct rota_tz **zones; /* distinct zones, owned */
};

static struct rota_tz *zone_for(struct rota_sup *s, const char *name)
{
    if (!name || !*name || strcmp(name, "UTC") == 0)
        return NULL;
    for (uint32_t i = 0; i < s->nzones; i++)
        if (strcmp(rota_tz_name(s->zones[i]), name) == 0)
            return s->zones[i];
    struct rota_tz *tz = NULL;
    if (rota_tz_load(name, &tz) != 0)
        return NULL; /* the config loader checked it; a zone gone since counts as UTC */
    struct rota_tz **z = realloc(s->zones, (s->nzones + 1) * sizeof(*z));
    if (!z) {
        rota_tz_free(tz);
        return NULL;
    }
    s->zones = z;
    s->zones[s->nzones++] = tz;
    return tz;
}

int rota_sup_new(const struct rota_shm_map *m, const struct rota_sup_rate *rates,
                 struct rota_sup **out)
{
    struct rota_sup *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->naccounts = m->naccounts;
    s->nproviders = m->nproviders;
    s->rates = calloc(m->nproviders + 1, sizeof(*s->rates));
    s->marks = calloc(m->naccounts + 1, sizeof(*s->marks));
    s->tz = calloc((size_t)m->naccounts * ROTA_MAX_WINDOWS + 1, sizeof(*s->tz));
    if (!s->rates || !s->marks || !s->tz) {
        rota_sup_free(s);
        return -ENOMEM;
    }
    if (rates)
        memcpy(s->rates, rates, m->nproviders * sizeof(*rates));
    for (uint32_t a = 0; a < m->naccounts; a++)
        for (uint32_t w = 0; w < m->accounts[a].nwin; w++)
            s->tz[a * ROTA_MAX_WINDOWS + w] =
                zone_for(s, rota_shm_str(m, m->accounts[a].win[w].reset.tz));
    *out = s;
    return 0;
}

void rota_sup_free(struct rota_sup *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nzones; i++)
        rota_tz_free(s->zones[i]);
    free(s->zones);
    free(s->tz);
    free(s->marks);
    free(s->rates);
    free(s);
}

/* The usage counter a window counts with. */
static uint64_t window_counter(struct rota_shm_map *m, uint32_t a, uint32_t w)
{
    const struct rota_shm_window *win = &m->accounts[a].win[w];
    return rota_load(
        rota_shm_usage(&m->hot[a], win->pool, win->metric == ROTA_METRIC_TOKENS ? 1 : 0));
}

static int64_t next_reset(struct rota_sup *s, const struct rota_shm_map *m, uint32_t a,
                          uint32_t w, int64_t wall)
{
    const struct rota_shm_window *win = &m->accounts[a].win[w];
    int64_t at =
        rota_quota_next_reset(&win->reset, s->tz[a * ROTA_MAX_WINDOWS + w], wall / NS_PER_S);
    return at >= INT64_MAX / NS_PER_S ? 0 : at * NS_PER_S;
}

uint32_t rota_sup_resets(struct rota_sup *s, struct rota_shm_map *m, int64_t wall)
{
    uint32_t n = 0;
    for (uint32_t a = 0; a < m->naccounts && a < s->naccounts; a++) {
        const struct rota_shm_account *acc = &m->accounts[a];
        struct rota_shm_snap *sn = &m->snaps[a];
        for (uint32_t w = 0; w < acc->nwin; w++) {
            if (acc->win[w].reset.kind == ROTA_RESET_NONE)
                continue;
            int64_t at = rota_load(&sn->win[w].reset_at);
            if (at != 0 && wall < at)
                continue;
            int64_t next = next_reset(s, m, a, w, wall);
            rota_shm_snap_begin(m, a);
            if (at != 0) { /* due: a new period starts from zero */
                rota_store(&sn->win[w].used, 0);
                rota_store(&sn->win[w].base, window_counter(m, a, w));
                n++;
            }
            rota_store(&sn->win[w].reset_at, next);
            rota_shm_snap_end(sn);
        }
    }
    return n;
}

uint32_t rota_sup_rate_tick(struct rota_sup *s, struct rota_shm_map *m, uint64_t now,
                            uint64_t rnd)
{
    uint32_t opened = 0;
    for (uint32_t a = 0; a < m->naccounts && a < s->naccounts; a++) {
        const struct rota_shm_provider *p = &m->providers[m->accounts[a].provider];
        const struct rota_sup_rate *r = &s->rates[m->accounts[a].provider];
        struct rota_shm_hot *h = &m->hot[a];
        struct rate_mark *mk = &s->marks[a];
        if (r->fail_rate <= 0 || r->window_ns == 0)
            continue;
        uint64_t done = rota_load(&h->done), failures = rota_load(&h->failures);
        if (mk->at == 0 || done < mk->done || failures < mk->failures) {
            *mk = (struct rate_mark){now, done, failures};
            continue;
        }
        if (now - mk->at < r->window_ns)
            continue;
        uint64_t calls = done - mk->done, bad = failures - mk->failures;
        *mk = (struct rate_mark){now, done, failures};
        if (calls == 0 || calls < r->min_calls || (double)bad < r->fail_rate * (double)calls)
            continue;
        uint64_t bw = rota_load(&h->breaker);
        if (rota_breaker_state_of(bw) != 0)
            continue; /* already open or half-open */
        struct rota_breaker_cfg bc = {p->fail_threshold, p->halfopen_permits, p->open_base_ms,
                                      p->open_cap_ms, p->trial_timeout_ms};
        rota_breaker_force_open(&h->breaker, &bc, now, rnd ^ a);
        opened++;
    }
    return opened;
}

void rota_sup_disable(struct rota_shm_map *m, uint32_t a, unsigned off, uint64_t until)
{
    struct rota_shm_snap *sn = rota_shm_snap_begin(m, a);
    rota_store(&sn->flags, rota_load(&sn->flags) | ROTA_SNAP_DISABLED);
    rota_store(&sn->reason, off);
    rota_store(&sn->disabled_until, until);
    rota_shm_snap_end(sn);
}

void rota_sup_enable(struct rota_shm_map *m, uint32_t a)
{
    struct rota_shm_snap *sn = rota_shm_snap_begin(m, a);
    rota_store(&sn->flags, rota_load(&sn->flags) & ~ROTA_SNAP_DISABLED);
    rota_store(&sn->reason, 0);
    rota_store(&sn->disabled_until, 0);
    rota_shm_snap_end(sn);
    rota_store(&m->hot[a].disabled, 0); /* a worker's auth or billing disable, too */
}

uint32_t rota_sup_reset(struct rota_sup *s, struct rota_shm_map *m, uint32_t a, int pool,
                        int64_t wall)
{
    const struct rota_shm_account *acc = &m->accounts[a];
    struct rota_shm_snap *sn = &m->snaps[a];
    uint32_t n = 0;
    rota_shm_snap_begin(m, a);
    for (uint32_t w = 0; w < acc->nwin; w++) {
        if (pool >= 0 && acc->win[w].pool != (uint32_t)pool)
            continue;
        rota_store(&sn->win[w].used, 0);
        rota_store(&sn->win[w].base, window_counter(m, a, w));
        if (acc->win[w].reset.kind != ROTA_RESET_NONE && s && a < s->naccounts)
            rota_store(&sn->win[w].reset_at, next_reset(s, m, a, w, wall));
        n++;
    }
    rota_shm_snap_end(sn);
    if (pool < 0) {
        struct rota_shm_hot *h = &m->hot[a];
        rota_store(&h->cooldown_until, 0);
        rota_store(&h->consec_429, 0);
        rota_breaker_reset(&h->breaker, &h->consec_fail);
    }
    return n;
}

void rota_sup_cooldown(struct rota_shm_map *m, uint32_t a, uint64_t until)
{
    rota_store(&m->hot[a].cooldown_until, until);
}

int rota_sup_dry_select(const struct rota_shm_map *m, uint32_t route, uint64_t key_hash,
                        uint64_t est_tokens, uint64_t now, struct rota_sel_res *r)
{
    if (route >= m->nroutes)
        return ROTA_ENOROUTE;
    void *copy = aligned_alloc(ROTA_SHM_ALIGN,
                               (m->size + ROTA_SHM_ALIGN - 1) & ~(size_t)(ROTA_SHM_ALIGN - 1));
    if (!copy)
        return -ENOMEM;
    /* Workers change hot words while this copies: every word is read with a relaxed
     * atomic load, as the selection itself reads them (the segment is a whole number of
     * 128-byte blocks). */
    const _Atomic uint64_t *src = (const _Atomic uint64_t *)m->base;
    uint64_t *dst = copy;
    for (size_t i = 0; i < m->size / sizeof(uint64_t); i++)
        dst[i] = atomic_load_explicit(&src[i], memory_order_relaxed);
    struct rota_shm_map c;
    int rc = rota_shm_validate(copy, m->size, &c, NULL, 0);
    if (rc == 0) {
        struct rota_sel_req q = {
            .route = route, .key_hash = key_hash, .est_tokens = est_tokens, .now = now};
        struct rota_rng rng = {rota_hash_mix(now ^ key_hash)};
        rc = rota_select_route(&c, &q, &rng, r);
    }
    explicit_bzero(copy, m->size); /* it held every credential */
    free(copy);
    return rc;
}

uint32_t rota_sup_find_account(const struct rota_shm_map *m, const char *name)
{
    if (!name || !*name)
        return ROTA_NONE;
    if (name[0] == '0' && (name[1] == 'x' || name[1] == 'X')) {
        char *end;
        unsigned long long id = strtoull(name + 2, &end, 16);
        if (*end == 0 && end != name + 2)
            return rota_shm_find(m, ROTA_IDX_ACCOUNT, id);
    }
    const char *slash = strchr(name, '/');
    uint32_t found = ROTA_NONE;
    for (uint32_t a = 0; a < m->naccounts; a++) {
        const char *an = rota_shm_str(m, m->accounts[a].name);
        const char *pn = rota_shm_str(m, m->providers[m->accounts[a].provider].name);
        bool hit;
        if (slash) {
            size_t pl = (size_t)(slash - name);
            hit = strlen(pn) == pl && strncmp(pn, name, pl) == 0 && strcmp(an, slash + 1) == 0;
        } else {
            hit = strcmp(an, name) == 0;
        }
        if (hit) {
            if (found != ROTA_NONE)
                return ROTA_NONE - 1;
            found = a;
        }
    }
    return found;
}

uint32_t rota_sup_find_provider(const struct rota_shm_map *m, const char *name)
{
    for (uint32_t p = 0; name && p < m->nproviders; p++)
        if (strcmp(rota_shm_str(m, m->providers[p].name), name) == 0)
            return p;
    return ROTA_NONE;
}

uint32_t rota_sup_find_route(const struct rota_shm_map *m, const char *name)
{
    if (!name)
        return ROTA_NONE;
    for (uint32_t r = 0; r < m->nroutes; r++)
        if (strcmp(rota_shm_str(m, m->routes[r].name), name) == 0)
            return r;
    for (uint32_t r = 0; r < m->nroutes; r++)
        for (const char *mo = rota_shm_str(m, m->routes[r].models); *mo; mo += strlen(mo) + 1)
            if (strcmp(mo, name) == 0)
                return r;
    return ROTA_NONE;
}
