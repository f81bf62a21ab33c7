/*
 * observe.c - folding what a parser read into the table.
 *
 * DESIGN
 * Runs on rotad's main thread only (the snapshot writer). A provider's figure replaces
 * what rota counted locally: the window's "used" becomes the provider's and its "base"
 * the usage counter's current value, so calls counted after this moment add to it until
 * the next observation. Instants arrive in wall-clock ns and become monotonic ns for the
 * hot words (cooldown, disable) by their distance from "wall".
 */
#include <string.h>

#include "observe.h"
#include "seqlock.h"
#include "view.h"

/* The account's pool index named "name" ("" and "*" are pool 0), or ROTA_NONE. */
static uint32_t pool_index(const struct rota_shm_map *m, const struct rota_shm_account *acc,
                           const char *name)
{
    if (!*name || strcmp(name, "*") == 0)
        return 0;
    for (uint32_t p = 1; p < acc->npools; p++)
        if (strcmp(rota_shm_str(m, acc->pool_name[p]), name) == 0)
            return p;
    return ROTA_NONE;
}

/* Monotonic ns of wall-clock instant "at", given that "wall" is "now". */
static uint64_t to_mono(int64_t at, uint64_t now, int64_t wall)
{
    return at <= wall ? now : now + (uint64_t)(at - wall);
}

/* The used figure an observed window implies, in the table's units; false if none. */
static bool observed_used(const struct rota_obs_window *w, uint64_t limit, uint64_t *used)
{
    if (w->has_used) {
        *used = w->used;
        return true;
    }
    if (w->has_remaining && limit) {
        *used = w->remaining >= limit ? 0 : limit - w->remaining;
        return true;
    }
    return false;
}

void rota_probe_apply(struct rota_shm_map *m, uint32_t a, const struct rota_obs *o,
                      uint64_t now, int64_t wall, struct rota_apply_result *res)
{
    const struct rota_shm_account *acc = &m->accounts[a];
    struct rota_shm_snap *sn = &m->snaps[a];
    struct rota_shm_hot *h = &m->hot[a];
    memset(res, 0, sizeof(*res));
    rota_shm_snap_begin(m, a);
    for (uint32_t i = 0; i < o->nwin; i++) {
        const struct rota_obs_window *ow = &o->win[i];
        uint32_t pool = pool_index(m, acc, ow->pool);
        uint32_t w = 0;
        while (w < acc->nwin && !(acc->win[w].pool == pool && acc->win[w].metric == ow->metric))
            w++;
        if (pool == ROTA_NONE || w == acc->nwin) {
            res->unmatched++;
            continue;
        }
        uint64_t limit = ow->has_limit ? ow->limit : rota_load(&sn->win[w].limit), used;
        if (!observed_used(ow, limit, &used)) {
            res->unmatched++;
            continue;
        }
        uint32_t metric = acc->win[w].metric == ROTA_METRIC_TOKENS ? 1 : 0;
        rota_shm_snap_window(sn, w, used, limit,
                             rota_load(rota_shm_usage(h, acc->win[w].pool, metric)));
        if (ow->reset_at > 0)
            rota_store(&sn->win[w].reset_at, ow->reset_at);
        res->windows++;
    }
    uint32_t flags = rota_load(&sn->flags) & ~ROTA_SNAP_PESSIMISTIC;
    uint32_t reason = rota_load(&sn->reason);
    bool off = flags & ROTA_SNAP_DISABLED;
    bool operator_off = off && (reason == ROTA_OFF_OPERATOR || reason == ROTA_OFF_DRAIN);
    if (res->windows)
        flags |= ROTA_SNAP_HAS_DATA;
    if (o->disable && !operator_off) {
        flags |= ROTA_SNAP_DISABLED;
        reason = o->cause == ROTA_CAUSE_BILLING ? ROTA_OFF_BILLING : ROTA_OFF_AUTH;
        rota_store(&sn->disabled_until,
                   o->disable_until ? to_mono(o->disable_until, now, wall) : 0);
        res->disabled = true;
    } else if (off && !operator_off && o->reachable) {
        /* the key works again: a disable the provider caused ends */
        flags &= ~ROTA_SNAP_DISABLED;
        reason = 0;
        rota_store(&sn->disabled_until, 0);
    } else if (!off) {
        reason = 0; /* no longer pessimistic for a reason */
    }
    rota_store(&sn->reason, reason);
    rota_store(&sn->flags, flags);
    rota_store(&sn->probe_at, wall);
    rota_shm_snap_end(sn);
    if (o->retry_at > wall) {
        rota_max_u64(&h->cooldown_until, to_mono(o->retry_at, now, wall));
        res->cooled = true;
    }
}

void rota_probe_pessimistic(struct rota_shm_map *m, uint32_t a, uint32_t reason)
{
    struct rota_shm_snap *sn = rota_shm_snap_begin(m, a);
    rota_store(&sn->flags, rota_load(&sn->flags) | ROTA_SNAP_PESSIMISTIC);
    if (!(rota_load(&sn->flags) & ROTA_SNAP_DISABLED))
        rota_store(&sn->reason, reason);
    rota_shm_snap_end(sn);
}
