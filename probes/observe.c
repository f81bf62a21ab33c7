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
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "clients.h"
#include "observe.h"
#include "seqlock.h"
#include "reason.h"

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

bool rota_obs_match(const struct rota_shm_map *m, uint32_t a, const struct rota_obs_window *ow,
                    uint32_t *wi, uint64_t *used, uint64_t *limit)
{
    const struct rota_shm_account *acc = &m->accounts[a];
    uint32_t pool = pool_index(m, acc, ow->pool), w = 0;
    if (pool == ROTA_NONE)
        return false;
    while (w < acc->nwin && !(acc->win[w].pool == pool && acc->win[w].metric == ow->metric))
        w++;
    if (w == acc->nwin)
        return false;
    /* No limit in the answer: the one the table has (configured, or learnt before). */
    *limit = ow->has_limit ? ow->limit : rota_load(&m->snaps[a].win[w].limit);
    *wi = w;
    return observed_used(ow, *limit, used);
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
        uint32_t w;
        uint64_t used, limit;
        if (!rota_obs_match(m, a, ow, &w, &used, &limit)) {
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
    /* disables the provider's answers neither cause nor end: the operator's, and rotad's
     * for a credential that does not resolve */
    bool operator_off = off && (reason == ROTA_OFF_OPERATOR || reason == ROTA_OFF_DRAIN ||
                                reason == ROTA_OFF_CREDENTIAL);
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

/* ---- passive observations ----
 *
 * The account's hot line 3 is a one-writer-at-a-time slot for the latest observation a
 * worker read in an answer: any worker may take it (CAS on the sequence word from even to
 * odd; a worker that finds it taken drops its observation: a newer one follows), write
 * the words, and release it (CAS from its odd value to the next even one). The
 * supervisor reads it with the seqlock protocol and folds it into the snapshot when it is
 * newer than the snapshot's latest observation. Words: 0 sequence, 1 window index, 2
 * used, 3 limit, 4 reset (wall ns), 5 the window's usage counter when it was read, 6 when
 * it was read (wall ns).
 *
 * The sequence word holds the counter in its low 32 bits and, in its high 32, the pid of
 * the process that last took the slot. A slot held across two folds is freed by the
 * supervisor only when that process is gone (or unknown, 0): a writer that is merely
 * slow (preempted mid-write) keeps it, since freeing it would let its late stores land
 * in the next writer's record and its release move the sequence backwards. */
enum { P_SEQ, P_WIN, P_USED, P_LIMIT, P_RESET, P_BASE, P_STAMP };

#define SEQ_LOW 0xffffffffull

/* This process's pid, read once (at attach: rota_passive_prepare) and again in a child
 * of fork, so that publishing never asks the kernel. */
static _Atomic int32_t self_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_read(void)
{
    atomic_store_explicit(&self_pid, (int32_t)getpid(), memory_order_relaxed);
}

static void pid_register(void)
{
    pthread_atfork(NULL, NULL, pid_read);
    pid_read();
}

void rota_passive_prepare(void)
{
    pthread_once(&pid_once, pid_register);
}

static uint64_t owner_bits(void)
{
    int32_t pid = atomic_load_explicit(&self_pid, memory_order_relaxed);
    if (pid == 0) { /* a process that publishes without having attached */
        rota_passive_prepare();
        pid = atomic_load_explicit(&self_pid, memory_order_relaxed);
    }
    return (uint64_t)(uint32_t)pid << 32;
}

/* The sequence word after "w" with the counter moved on by one, owned by "owner". */
static uint64_t seq_next(uint64_t w, uint64_t owner)
{
    return owner | ((w + 1) & SEQ_LOW);
}

void rota_passive_publish(const struct rota_shm_map *m, uint32_t a, const struct rota_obs *o,
                          uint64_t now, int64_t wall)
{
    struct rota_shm_hot *h = &m->hot[a];
    if (o->retry_at > wall)
        rota_max_u64(&h->cooldown_until, to_mono(o->retry_at, now, wall));
    /* The window nearest its limit is the one that decides. */
    uint32_t best = ROTA_NONE;
    uint64_t bu = 0, bl = 0;
    int64_t reset = 0;
    double bf = -1;
    for (uint32_t i = 0; i < o->nwin; i++) {
        uint32_t w;
        uint64_t used, limit;
        if (!rota_obs_match(m, a, &o->win[i], &w, &used, &limit) || limit == 0)
            continue;
        double f = (double)used / (double)limit;
        if (f > bf) {
            bf = f;
            best = w;
            bu = used;
            bl = limit;
            reset = o->win[i].reset_at;
        }
    }
    if (best == ROTA_NONE)
        return;
    const struct rota_shm_window *win = &m->accounts[a].win[best];
    uint64_t base =
        rota_load(rota_shm_usage(h, win->pool, win->metric == ROTA_METRIC_TOKENS ? 1 : 0));
    uint64_t seq = rota_load(&h->obs[P_SEQ]), owner = owner_bits();
    uint64_t held = seq_next(seq, owner);
    if ((seq & 1) ||
        !atomic_compare_exchange_strong_explicit(&h->obs[P_SEQ], &seq, held,
                                                 memory_order_relaxed, memory_order_relaxed))
        return; /* another worker is writing: its observation is as fresh */
    atomic_thread_fence(memory_order_release);
    rota_store(&h->obs[P_WIN], best);
    rota_store(&h->obs[P_USED], bu);
    rota_store(&h->obs[P_LIMIT], bl);
    rota_store(&h->obs[P_RESET], (uint64_t)reset);
    rota_store(&h->obs[P_BASE], base);
    rota_store(&h->obs[P_STAMP], (uint64_t)wall);
    /* Only the holder releases: a slot freed meanwhile (this process was taken for dead:
     * its pid reused) keeps the newer sequence. */
    atomic_compare_exchange_strong_explicit(&h->obs[P_SEQ], &held, seq_next(held, owner),
                                            memory_order_release, memory_order_relaxed);
}

/* May the supervisor free a slot held in "seq"? Only when its holder is gone (exited,
 * a zombie included), or unknown. */
static bool holder_gone(uint64_t seq)
{
    return !rota_client_alive((int32_t)(seq >> 32), 0);
}

uint32_t rota_passive_fold(struct rota_shm_map *m, uint64_t *seen_odd)
{
    uint32_t folded = 0;
    for (uint32_t a = 0; a < m->naccounts; a++) {
        struct rota_shm_hot *h = &m->hot[a];
        uint64_t seq = atomic_load_explicit(&h->obs[P_SEQ], memory_order_acquire);
        if (seq == 0)
            continue;
        if (seq & 1) {
            /* Odd twice in a row, a fold apart, and its writer's process gone: it died in
             * the slot. */
            if (seen_odd && seen_odd[a] == seq && holder_gone(seq))
                atomic_compare_exchange_strong_explicit(
                    &h->obs[P_SEQ], &seq, seq_next(seq, seq & ~SEQ_LOW), memory_order_relaxed,
                    memory_order_relaxed);
            if (seen_odd)
                seen_odd[a] = seq;
            continue;
        }
        uint64_t w = rota_load(&h->obs[P_WIN]), used = rota_load(&h->obs[P_USED]);
        uint64_t limit = rota_load(&h->obs[P_LIMIT]), base = rota_load(&h->obs[P_BASE]);
        int64_t reset = (int64_t)rota_load(&h->obs[P_RESET]);
        int64_t stamp = (int64_t)rota_load(&h->obs[P_STAMP]);
        atomic_thread_fence(memory_order_acquire);
        if (rota_load(&h->obs[P_SEQ]) != seq || w >= m->accounts[a].nwin)
            continue; /* rewritten meanwhile: the next fold takes the newer one */
        struct rota_shm_snap *sn = &m->snaps[a];
        if (stamp <= rota_load(&sn->probe_at))
            continue; /* not newer than what the snapshot has */
        rota_shm_snap_begin(m, (uint32_t)a);
        rota_shm_snap_window(sn, (uint32_t)w, used, limit, base);
        if (reset > 0)
            rota_store(&sn->win[w].reset_at, reset);
        rota_store(&sn->flags, rota_load(&sn->flags) | ROTA_SNAP_HAS_DATA);
        rota_store(&sn->probe_at, stamp);
        rota_shm_snap_end(sn);
        folded++;
    }
    return folded;
}
