/*
 * view.c - what an operator sees of a table (see view.h).
 *
 * DESIGN
 * Called by rotactl (any process, any time) and by rotad's control thread; never on a
 * selection path, so it may allocate (the fairness figure sorts a copy of the counts) and
 * make a system call (is the supervisor alive?). Everything else is read exactly as
 * core/select.c reads it, so the view says what a selection at the same instant would
 * see:
 *
 *   snapshot (supervisor, seqlock)   flags, reason, windows, disabled_until, probe_at,
 *                                    together with the usage counters the windows add:
 *                                    one consistent attempt, at most ROTA_SEQ_MAX_TRIES
 *   hot words (any worker, relaxed)  cooldown, worker-side disable, breakers, counters
 *
 * Hot words are read one by one with relaxed loads: each is valid on its own, and a view
 * is a picture of a moving table, not a transaction. No credential is ever read.
 *
 * Which one thing an account is, for the per-instance counts: out of rotation (off),
 * else cooling down, else behind an open breaker (its own or its provider's), else its
 * quota status. So the counts add up to the number of accounts.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "clients.h"
#include "clock.h"
#include "fairness.h"
#include "select.h"
#include "view.h"

/* Time from "now" until "until" (both in the same clock), 0 when passed. */
static uint64_t left(uint64_t until, uint64_t now)
{
    return until > now ? until - now : 0;
}

/* Requests (or tokens) per minute of a GCRA emission interval: the table stores the
 * interval rounded up, so round to the nearest. */
static uint32_t per_minute(uint64_t interval_ns)
{
    if (interval_ns == 0)
        return 0;
    uint64_t v = (60 * ROTA_NS_PER_S + interval_ns / 2) / interval_ns;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static bool heartbeat_stale(const struct rota_shm_map *m, uint64_t now)
{
    uint64_t hb = rota_load(&m->hdr->heartbeat);
    return now > hb && now - hb > m->hdr->stale_after_ns;
}

/* What the snapshot says, read as one: the seqlock attempt covers the usage counters the
 * windows add, as in select.c's read_fraction. */
struct snap_copy {
    uint32_t flags, reason;
    uint64_t disabled_until;
    int64_t probe_at;
    struct rota_view_window win[ROTA_MAX_WINDOWS];
};

static bool read_snap(const struct rota_shm_map *m, uint32_t ai, struct snap_copy *c)
{
    const struct rota_shm_account *a = &m->accounts[ai];
    struct rota_shm_snap *sn = &m->snaps[ai];
    struct rota_shm_hot *h = &m->hot[ai];
    for (int tries = 0; tries < ROTA_SEQ_MAX_TRIES; tries++) {
        uint32_t start;
        if (!rota_seq_read_begin(&sn->seq, &start))
            continue;
        c->flags = rota_load(&sn->flags);
        c->reason = rota_load(&sn->reason);
        c->disabled_until = rota_load(&sn->disabled_until);
        c->probe_at = rota_load(&sn->probe_at);
        for (uint32_t w = 0; w < a->nwin; w++) {
            uint32_t pool = a->win_mp[w] & 15u, metric = a->win_mp[w] >> 4;
            struct rota_view_window *vw = &c->win[w];
            uint64_t used = rota_load(&sn->win[w].used), base = rota_load(&sn->win[w].base);
            uint64_t counter = base;
            /* Only requests and tokens are counted locally; credits and fractions come
             * from observations alone. */
            if (metric <= ROTA_METRIC_TOKENS)
                counter = rota_load(rota_shm_usage(h, pool, metric));
            vw->metric = metric;
            vw->limit = rota_load(&sn->win[w].limit);
            vw->used = used + (counter > base ? counter - base : 0);
            vw->fraction = rota_window_fraction(used, vw->limit, base, counter);
            vw->reset_at = rota_load(&sn->win[w].reset_at);
        }
        if (rota_seq_read_ok(&sn->seq, start))
            return true;
    }
    return false;
}

/* Out of rotation? The supervisor's disable (operator, drain, credential) first, then a
 * worker's (auth, billing), each only while its period lasts. */
static void read_off(const struct rota_shm_map *m, uint32_t ai, const struct snap_copy *c,
                     uint64_t now, struct rota_view_account *out)
{
    if ((c->flags & ROTA_SNAP_DISABLED) &&
        (c->disabled_until == 0 || c->disabled_until > now)) {
        out->off = c->reason >= ROTA_OFF_AUTH && c->reason < ROTA_OFF_COUNT ? c->reason
                                                                            : ROTA_OFF_OPERATOR;
        out->off_left_ns = c->disabled_until ? c->disabled_until - now : 0;
        return;
    }
    uint64_t dis = rota_load(&m->hot[ai].disabled), until = (dis >> 8) * ROTA_NS_PER_MS;
    if (dis && (until == 0 || until > now)) {
        unsigned reason = (unsigned)(dis & 0xff);
        out->off = reason == ROTA_OFF_BILLING ? ROTA_OFF_BILLING : ROTA_OFF_AUTH;
        out->off_left_ns = until ? until - now : 0;
    }
}

static void read_hot(const struct rota_shm_map *m, uint32_t ai, uint64_t now,
                     struct rota_view_account *out)
{
    struct rota_shm_hot *h = &m->hot[ai];
    uint64_t bw = rota_load(&h->breaker);
    uint64_t pw = rota_load(&m->phot[m->accounts[ai].provider].breaker);
    out->cooldown_left_ns = left(rota_load(&h->cooldown_until), now);
    out->breaker = rota_breaker_state_of(bw);
    out->breaker_trips = rota_breaker_trips(bw);
    out->breaker_left_ns = out->breaker == ROTA_BREAKER_OPEN
                               ? left(rota_breaker_until_ms(bw) * ROTA_NS_PER_MS, now)
                               : 0;
    out->provider_breaker_open = pw && rota_breaker_gate(pw, now, NULL) == ROTA_GATE_BLOCKED;
    out->in_flight = rota_in_flight(m, ai);
    uint64_t last = rota_load(&h->last_used);
    out->last_used_ago_ns = last ? left(now, last) : UINT64_MAX;
    out->selections = rota_load(&h->use0[0]);
    out->tokens = rota_load(&h->use0[1]);
    out->done = rota_load(&h->done);
    out->failures = rota_load(&h->failures);
    out->rate_limited = rota_load(&h->rate_limited);
    out->auth_failures = rota_load(&h->auth_failures);
    out->latency_ns = rota_load(&h->latency_ns);
}

int rota_view_account(const struct rota_shm_map *m, uint32_t ai, uint64_t now, int64_t wall,
                      struct rota_view_account *out)
{
    const struct rota_shm_account *a = &m->accounts[ai];
    const struct rota_shm_provider *p = &m->providers[a->provider];
    memset(out, 0, sizeof(*out));
    out->index = ai;
    out->id = a->id;
    out->name = rota_shm_str(m, a->name);
    out->provider = rota_shm_str(m, p->name);
    out->kind = rota_shm_str(m, p->kind);
    out->weight = a->weight;
    out->rpm = per_minute(a->req_interval_ns);
    out->tpm = per_minute(a->tok_interval_ns);
    out->stale = heartbeat_stale(m, now);
    out->fraction = -1.0;
    read_hot(m, ai, now, out);

    struct snap_copy c;
    memset(&c, 0, sizeof(c));
    if (!read_snap(m, ai, &c))
        return -EBUSY;
    read_off(m, ai, &c, now, out);
    out->probe_at = c.probe_at;
    out->nwin = a->nwin;
    double pool0 = -1.0;
    for (uint32_t w = 0; w < a->nwin; w++) {
        out->win[w] = c.win[w];
        out->win[w].pool = rota_shm_str(m, a->pool_name[a->win_mp[w] & 15u]);
        double f = c.win[w].fraction;
        out->fraction = f > out->fraction ? f : out->fraction;
        if ((a->win_mp[w] & 15u) == 0 && f > pool0)
            pool0 = f;
    }
    /* The account-wide windows decide; an account with only per-model pools is as full
     * as its fullest pool. */
    out->status = rota_quota_status(pool0 >= 0 ? pool0 : out->fraction, p->warn, p->crit);
    /* As the selection does: pessimism is about quota, so only with quota data. */
    bool pess = c.flags & ROTA_SNAP_PESSIMISTIC;
    out->pessimistic = (pess || out->stale) && (c.flags & ROTA_SNAP_HAS_DATA);
    out->pess_reason = pess ? c.reason : 0;
    return 0;
}

/* Which one thing "v" counts as (see DESIGN). */
static void count(struct rota_view_instance *out, const struct rota_view_account *v)
{
    if (v->off)
        out->off++;
    else if (v->cooldown_left_ns)
        out->cooling++;
    else if ((v->breaker == ROTA_BREAKER_OPEN && v->breaker_left_ns) ||
             v->provider_breaker_open)
        out->open++;
    else if (v->status == ROTA_STATUS_HEALTHY)
        out->healthy++;
    else if (v->status == ROTA_STATUS_WARNING)
        out->warning++;
    else if (v->status == ROTA_STATUS_CRITICAL)
        out->critical++;
    else if (v->status == ROTA_STATUS_EXHAUSTED)
        out->exhausted++;
    else
        out->unknown++;
}

void rota_view_instance(const struct rota_shm_map *m, uint64_t now, int64_t wall,
                        struct rota_view_instance *out)
{
    const struct rota_shm_header *h = m->hdr;
    memset(out, 0, sizeof(*out));
    out->instance = h->instance;
    out->generation = h->generation;
    out->config_hash = h->config_hash;
    out->sup_pid = rota_load(&m->hdr->sup_pid);
    out->sup_alive = rota_client_alive(out->sup_pid, 0);
    out->sup_start = (int64_t)rota_load(&m->hdr->sup_start);
    out->heartbeat_age_ns = left(now, rota_load(&m->hdr->heartbeat));
    out->stale = heartbeat_stale(m, now);
    out->created_at = h->created_at;
    out->nproviders = m->nproviders;
    out->naccounts = m->naccounts;
    out->nroutes = m->nroutes;
    out->table_bytes = h->total_size;

    uint64_t *sel = malloc((m->naccounts ? m->naccounts : 1) * sizeof(*sel));
    for (uint32_t ai = 0; ai < m->naccounts; ai++) {
        struct rota_view_account v;
        if (rota_view_account(m, ai, now, wall, &v))
            v.status = ROTA_STATUS_UNKNOWN; /* the hot half is filled all the same */
        count(out, &v);
        out->selections += v.selections;
        out->in_flight += v.in_flight;
        if (sel)
            sel[ai] = v.selections;
    }
    out->gini = sel ? rota_gini(sel, m->naccounts) : 0;
    free(sel);
}
