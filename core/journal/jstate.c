/*
 * jstate.c - an account's durable state: read from the table, compared, written back.
 *
 * DESIGN
 * Capture reads the way any worker does (seqlock for the snapshot, relaxed loads for hot
 * words), so the journal thread can run beside workers and the supervisor. Monotonic
 * deadlines (cooldown, breaker, disables) become wall-clock ns through one offset read
 * when the journal starts, so the same deadline captures to the same value every time
 * and only real changes make records.
 *
 * Apply is the supervisor's (it writes snapshots). A deadline already passed is dropped;
 * a half-open breaker comes back open until its recorded time, so its trial starts over
 * with every permit; counters are added (the table may have counted already) with every
 * call done, since no call survives a restart in flight.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "breaker.h"
#include "clock.h"
#include "jrecord.h"
#include "select.h"
#include "view.h"

int64_t rota_jclock_offset(void)
{
    return rota_clock_wall() - (int64_t)rota_clock_mono();
}

static int64_t to_wall(uint64_t mono, int64_t offset)
{
    return mono ? (int64_t)mono + offset : 0;
}

/* Wall ns back to monotonic now; 0 when it has passed (or was 0). */
/* Wall ns back to monotonic now; 0 when it has passed (or was 0). A deadline further
 * than MAX_AHEAD away (a record from a broken clock, or not ours) is held to that. */
#define MAX_AHEAD (400 * 86400 * (int64_t)ROTA_NS_PER_S)
static uint64_t to_mono(int64_t wall, int64_t offset)
{
    int64_t now = (int64_t)rota_clock_mono();
    if (wall <= 0 || wall <= offset)
        return 0;
    int64_t mono = wall - offset; /* no overflow: both positive */
    if (mono <= now)
        return 0;
    return (uint64_t)(mono - now > MAX_AHEAD ? now + MAX_AHEAD : mono);
}

static void capture_breaker(uint64_t w, uint32_t consec, int64_t offset,
                            struct rota_jbreaker *b)
{
    b->state = (uint8_t)rota_breaker_state_of(w);
    b->trips = (uint8_t)rota_breaker_trips(w);
    uint64_t until_ms = rota_breaker_until_ms(w);
    b->until = b->state == ROTA_BREAKER_CLOSED ? 0 : to_wall(until_ms * ROTA_NS_PER_MS, offset);
    b->consec = consec;
}

int rota_jstate_capture(const struct rota_shm_map *m, uint32_t a, int64_t offset,
                        struct rota_jaccount *out)
{
    const struct rota_shm_account *acc = &m->accounts[a];
    struct rota_shm_snap *sn = &m->snaps[a];
    struct rota_shm_hot *h = &m->hot[a];
    memset(out, 0, sizeof(*out));
    out->id = acc->id;
    out->nwin = acc->nwin;
    uint64_t base[ROTA_MAX_WINDOWS];
    uint64_t disabled_until = 0;
    bool ok = false;
    for (int tries = 0; tries < ROTA_SEQ_MAX_TRIES && !ok; tries++) {
        uint32_t start;
        if (!rota_seq_read_begin(&sn->seq, &start))
            continue;
        out->flags = rota_load(&sn->flags);
        out->reason = rota_load(&sn->reason);
        disabled_until = rota_load(&sn->disabled_until);
        out->probe_at = rota_load(&sn->probe_at);
        for (uint32_t w = 0; w < acc->nwin; w++) {
            out->win[w].used = rota_load(&sn->win[w].used);
            base[w] = rota_load(&sn->win[w].base);
            out->win[w].limit = rota_load(&sn->win[w].limit);
            out->win[w].reset_at = rota_load(&sn->win[w].reset_at);
        }
        ok = rota_seq_read_ok(&sn->seq, start);
    }
    if (!ok)
        return -EBUSY;
    out->flags &= ROTA_SNAP_DISABLED | ROTA_SNAP_HAS_DATA;
    if (!(out->flags & ROTA_SNAP_DISABLED))
        out->reason = 0;
    out->disabled_until = to_wall(disabled_until, offset);
    for (uint32_t w = 0; w < acc->nwin; w++) {
        const struct rota_shm_window *win = &acc->win[w];
        uint64_t counter =
            rota_load(rota_shm_usage(h, win->pool, win->metric == ROTA_METRIC_TOKENS ? 1 : 0));
        out->win[w].metric = win->metric;
        out->win[w].pool = win->pool;
        out->win[w].reset_kind = win->reset.kind;
        out->win[w].period_s = win->reset.period_s;
        /* as the selection reads it: calls and tokens count locally, credits and
         * fractions only through observations */
        if (win->metric <= ROTA_METRIC_TOKENS)
            out->win[w].used += counter > base[w] ? counter - base[w] : 0;
    }
    uint64_t dis = rota_load(&h->disabled);
    out->wdisable = dis ? (uint32_t)(dis & 0xff) : 0;
    if (dis && out->wdisable == 0)
        out->wdisable = ROTA_OFF_OPERATOR; /* a reasonless word: keep it off */
    out->wdisable_until = to_wall((dis >> 8) * ROTA_NS_PER_MS, offset);
    out->cooldown_until = to_wall(rota_load(&h->cooldown_until), offset);
    out->consec_429 = rota_load(&h->consec_429);
    capture_breaker(rota_load(&h->breaker), rota_load(&h->consec_fail), offset, &out->breaker);
    out->last_used = to_wall(rota_load(&h->last_used), offset);
    out->requests = rota_load(&h->use0[0]);
    out->tokens = rota_load(&h->use0[1]);
    out->done = rota_load(&h->done);
    out->failures = rota_load(&h->failures);
    out->rate_limited = rota_load(&h->rate_limited);
    out->auth_failures = rota_load(&h->auth_failures);
    return 0;
}

void rota_jstate_capture_provider(const struct rota_shm_map *m, uint32_t p, int64_t offset,
                                  struct rota_jprovider *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", rota_shm_str(m, m->providers[p].name));
    capture_breaker(rota_load(&m->phot[p].breaker), rota_load(&m->phot[p].consec_fail), offset,
                    &out->breaker);
}

static bool breaker_same(const struct rota_jbreaker *a, const struct rota_jbreaker *b)
{
    return a->state == b->state && a->trips == b->trips && a->until == b->until &&
           a->consec == b->consec;
}

uint32_t rota_jstate_diff(const struct rota_jaccount *p, const struct rota_jaccount *c)
{
    uint32_t what = 0;
    if (c->requests != p->requests || c->done != p->done || c->tokens != p->tokens ||
        c->failures != p->failures || c->rate_limited != p->rate_limited ||
        c->auth_failures != p->auth_failures)
        what |= ROTA_JCHG_USAGE;
    if (c->probe_at != p->probe_at || c->nwin != p->nwin)
        what |= ROTA_JCHG_OBSERVED;
    for (uint32_t w = 0; w < c->nwin && w < p->nwin; w++) {
        if (c->win[w].used > p->win[w].used)
            what |= ROTA_JCHG_USAGE;
        else if (c->win[w].used < p->win[w].used)
            what |= ROTA_JCHG_RESET;
        if (c->win[w].limit != p->win[w].limit || c->win[w].reset_at != p->win[w].reset_at)
            what |= ROTA_JCHG_OBSERVED;
    }
    if (c->cooldown_until != p->cooldown_until || c->consec_429 != p->consec_429)
        what |= ROTA_JCHG_COOLDOWN;
    if (!breaker_same(&c->breaker, &p->breaker))
        what |= ROTA_JCHG_BREAKER;
    bool was_off = (p->flags & ROTA_SNAP_DISABLED) || p->wdisable;
    bool is_off = (c->flags & ROTA_SNAP_DISABLED) || c->wdisable;
    if (is_off &&
        (!was_off || c->reason != p->reason || c->wdisable != p->wdisable ||
         c->disabled_until != p->disabled_until || c->wdisable_until != p->wdisable_until))
        what |= ROTA_JCHG_DISABLE;
    else if (was_off && !is_off)
        what |= ROTA_JCHG_ENABLE;
    if ((c->flags ^ p->flags) & ROTA_SNAP_HAS_DATA)
        what |= ROTA_JCHG_OBSERVED;
    return what;
}

bool rota_jstate_provider_same(const struct rota_jprovider *a, const struct rota_jprovider *b)
{
    return strcmp(a->name, b->name) == 0 && breaker_same(&a->breaker, &b->breaker);
}

/* The breaker word for a saved breaker: OPEN until its time (a half-open one too, with
 * its trial starting over); CLOSED when that time has passed and nothing was open. */
static uint64_t breaker_word(const struct rota_jbreaker *b, int64_t offset)
{
    /* A random half-open period, as a new table's breakers have (shm/build.c). */
    unsigned epoch = (unsigned)(rota_hash_mix(rota_clock_mono() ^ (uintptr_t)b) >> 56);
    if (b->state == ROTA_BREAKER_CLOSED)
        return rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0, epoch, 0);
    uint64_t until = to_mono(b->until, offset);
    /* OPEN with its trips: once "until" passes the next caller half-opens it with a full
     * set of permits, as after any open period. The word rounds "until" up and bounds it;
     * to_mono already keeps it near. */
    return rota_breaker_word(ROTA_BREAKER_OPEN, b->trips, 0, 0, epoch,
                             until ? until : rota_clock_mono());
}

static bool same_window(const struct rota_jwin *x, const struct rota_shm_window *win)
{
    return x->metric == win->metric && x->pool == win->pool &&
           x->reset_kind == win->reset.kind &&
           (win->reset.kind != ROTA_RESET_ROLLING || x->period_s == win->reset.period_s);
}

/* The saved window that table window "w" continues: the same metric, pool and reset
 * rule, and among windows alike the same rank (the second of two alike continues the
 * second); ROTA_NONE if none. */
static uint32_t saved_window(const struct rota_jaccount *s, const struct rota_shm_account *acc,
                             uint32_t w)
{
    uint32_t rank = 0, n = s->nwin < ROTA_MAX_WINDOWS ? s->nwin : ROTA_MAX_WINDOWS;
    for (uint32_t v = 0; v < w; v++)
        rank += acc->win[v].metric == acc->win[w].metric &&
                acc->win[v].pool == acc->win[w].pool &&
                acc->win[v].reset.kind == acc->win[w].reset.kind &&
                acc->win[v].reset.period_s == acc->win[w].reset.period_s;
    for (uint32_t k = 0; k < n; k++)
        if (same_window(&s->win[k], &acc->win[w]) && rank-- == 0)
            return k;
    return ROTA_NONE;
}

void rota_jstate_apply(struct rota_shm_map *m, uint32_t a, const struct rota_jaccount *s,
                       int64_t offset)
{
    const struct rota_shm_account *acc = &m->accounts[a];
    struct rota_shm_hot *h = &m->hot[a];
    /* counters first: the windows' bases are taken after them */
    rota_add(&h->use0[0], s->requests);
    rota_add(&h->use0[1], s->tokens);
    rota_add(&h->done, s->requests);
    rota_add(&h->failures, s->failures);
    rota_add(&h->rate_limited, s->rate_limited);
    rota_add(&h->auth_failures, s->auth_failures);

    struct rota_shm_snap *sn = rota_shm_snap_begin(m, a);
    uint32_t flags = rota_load(&sn->flags);
    for (uint32_t w = 0; w < acc->nwin; w++) {
        const struct rota_shm_window *win = &acc->win[w];
        uint64_t counter =
            rota_load(rota_shm_usage(h, win->pool, win->metric == ROTA_METRIC_TOKENS ? 1 : 0));
        uint32_t k = saved_window(s, acc, w);
        const struct rota_jwin *x = k < s->nwin ? &s->win[k] : NULL;
        if (!x) {
            /* a window the config added or changed starts afresh, not with the counts
             * restored above */
            rota_store(&sn->win[w].base, counter);
            continue;
        }
        /* a configured limit stands; a learnt one comes back */
        uint64_t limit = win->limit ? win->limit : x->limit;
        rota_shm_snap_window(sn, w, x->used, limit, counter);
        rota_store(&sn->win[w].reset_at, x->reset_at);
        if (limit)
            flags |= ROTA_SNAP_HAS_DATA;
    }
    if (s->probe_at > rota_load(&sn->probe_at))
        rota_store(&sn->probe_at, s->probe_at);
    uint64_t du = to_mono(s->disabled_until, offset);
    if ((s->flags & ROTA_SNAP_DISABLED) && (s->disabled_until == 0 || du)) {
        flags |= ROTA_SNAP_DISABLED;
        rota_store(&sn->reason, s->reason);
        rota_store(&sn->disabled_until, du);
    }
    rota_store(&sn->flags, flags);
    rota_shm_snap_end(sn);

    uint64_t wu = to_mono(s->wdisable_until, offset);
    if (s->wdisable && (s->wdisable_until == 0 || wu))
        rota_store(&h->disabled, rota_disable_word(s->wdisable, wu / ROTA_NS_PER_MS));
    uint64_t cd = to_mono(s->cooldown_until, offset);
    if (cd)
        rota_max_u64(&h->cooldown_until, cd);
    rota_store(&h->consec_429, s->consec_429);
    /* a use before this boot cannot be placed on this boot's clock: it reads as none,
     * which the hybrid strategy scores as least recent, as it was */
    if (s->last_used > offset)
        rota_max_u64(&h->last_used, (uint64_t)(s->last_used - offset));
    rota_store(&h->breaker, breaker_word(&s->breaker, offset));
    rota_store(&h->consec_fail, s->breaker.consec);
}

void rota_jstate_apply_provider(struct rota_shm_map *m, uint32_t p,
                                const struct rota_jprovider *s, int64_t offset)
{
    rota_store(&m->phot[p].breaker, breaker_word(&s->breaker, offset));
    rota_store(&m->phot[p].consec_fail, s->breaker.consec);
}
