/*
 * mover.c - a handle's own thread: it follows the table from generation to generation,
 * so that no selection ever maps, validates or unmaps anything.
 *
 * DESIGN
 * Following reloads: the mover. Each handle has one thread of its own, the mover, which
 * sleeps on the current generation's state word (a futex shared by every process: the
 * writer wakes it when it supersedes the generation, and a 50 ms timeout covers a writer
 * that died before waking anyone). Woken, it maps and validates the new generation,
 * publishes it with a release store, and retires the old one. Selections never map,
 * validate or unmap anything: until the mover has moved, they go on with the superseded
 * generation, which the writer keeps merging into the new one for ROTA_SHM_SETTLE_NS
 * (table.h). They may do so for ROTA_SHM_FOLLOW_NS, less than that (or not at all once
 * the writer has let the generation go early and zeroed its time of supersession); past
 * it, a handle still behind (mapping failed: EMFILE, ENOMEM, EACCES...) fails closed:
 * selections return ROTA_EBEHIND rather than admit on words nobody merges any more, and
 * the mover keeps trying every poll. rota_move_error says why it is behind. A report is
 * never refused for being behind: the call happened. It waits in one of the handle's
 * cells for the mover, which applies it (by account id) as soon as it follows, and only
 * then ends the call's lease; with every cell taken, the lease keeps the call in flight
 * until the process exits and the supervisor reaps it.
 *
 * A thread stalled for longer than the follow window between its check and its last
 * atomic write still writes to a generation nobody merges: one call's counts at most.
 *
 * Retired generations: a grace period. Every thread that selects has a reader slot (a
 * static array, claimed on the thread's first call, freed when it exits) where it
 * announces the generation it is using: store the pointer, then load the current one
 * again, retrying if it moved. The mover unmaps a retired generation only when, after a
 * process-wide memory barrier (membarrier(2); without it, readers pay a full fence), no
 * slot names it: a thread stalled inside a selection across any number of reloads keeps
 * its generation mapped. Threads beyond the slots count themselves in the generation's
 * own counter instead (a full-barrier increment, then the same re-check); a generation's
 * "struct gen" is kept for reuse, never freed before detach, so a thread counting itself
 * into one that was just retired touches valid memory and then moves on.
 *
 * The latest retired generations also stay mapped for ROTA_SHM_FOLLOW_NS in the handle's
 * "recent" slots, where rota_target_of finds the generation a choice was made on (its tier
 * and provider settings are that generation's). Readers announce such a generation in
 * their slot as above, then load the "recent" slot again; the mover empties the slot
 * before its barrier, so either it sees the announcement or the reader sees the slot
 * empty (and answers ROTA_ESTALE).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "handle.h"
#include "observe.h"

/* Map the current generation into "g" (a spare, or a new one when "g" is NULL). */
int rota_map_current(const char *instance, struct gen *g, struct gen **out, char *err,
                     size_t errlen)
{
    struct gen *fresh = g ? g : calloc(1, sizeof(*fresh));
    if (!fresh) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = rota_shm_attach(instance, &fresh->map, err, errlen);
    if (rc) {
        if (!g)
            free(fresh);
        return rc;
    }
    fresh->generation = fresh->map.hdr->generation;
    fresh->older = NULL;
    *out = fresh;
    return 0;
}

/* The mover, under h->lock: keep "g", just retired, where rota_target_of looks, in a free
 * slot or in that of the oldest there (which reclaim then treats as any retired one). */
static void keep_recent(struct rota *h, struct gen *g)
{
    uint32_t at = 0;
    uint64_t oldest = UINT64_MAX;
    g->retired_at = rota_clock_mono();
    for (uint32_t i = 0; i < RECENT_MAX; i++) {
        struct gen *r = atomic_load_explicit(&h->recent[i], memory_order_relaxed);
        if (!r) {
            at = i;
            break;
        }
        if (r->retired_at < oldest) {
            oldest = r->retired_at;
            at = i;
        }
    }
    atomic_store_explicit(&h->recent[at], g, memory_order_release);
}

/* The mover, under h->lock, before its barrier: let go of the recent generations retired
 * for longer than a worker may use one. */
static void expire_recent(struct rota *h, uint64_t now)
{
    for (uint32_t i = 0; i < RECENT_MAX; i++) {
        struct gen *r = atomic_load_explicit(&h->recent[i], memory_order_relaxed);
        if (r && now - r->retired_at >= ROTA_SHM_FOLLOW_NS)
            atomic_store_explicit(&h->recent[i], NULL, memory_order_relaxed);
    }
}

static bool kept_recent(struct rota *h, const struct gen *g)
{
    for (uint32_t i = 0; i < RECENT_MAX; i++)
        if (atomic_load_explicit(&h->recent[i], memory_order_relaxed) == g)
            return true;
    return false;
}

/* The mover, under h->lock: follow the table to its current generation. */
static void move(struct rota *h)
{
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_relaxed), *fresh;
    if (atomic_load_explicit(&g->map.hdr->state, memory_order_acquire) == ROTA_GEN_READY)
        return;
    char err[sizeof(h->move_msg)];
    struct gen *spare = h->spare, *rest = spare ? spare->older : NULL;
    int rc = rota_map_current(h->instance, spare, &fresh, err, sizeof(err));
    if (rc == 0 && spare)
        h->spare = rest; /* (map_current cleared spare->older) */
    /* The same segment (by its nonce: a new table may reuse a generation number), marked
     * ready again meanwhile: nothing to move to. */
    if (rc == 0 && fresh->map.hdr->nonce == g->map.hdr->nonce) {
        rota_shm_detach(&fresh->map);
        fresh->older = h->spare;
        h->spare = fresh;
        return;
    }
    if (rc) {
        h->move_rc = rc;
        snprintf(h->move_msg, sizeof(h->move_msg), "%s", err);
        atomic_store_explicit(&h->behind, rc, memory_order_relaxed);
        return;
    }
    g->older = h->retired;
    h->retired = g;
    keep_recent(h, g);
    atomic_store_explicit(&h->cur, fresh, memory_order_release);
    h->move_rc = 0;
    h->move_msg[0] = 0;
    atomic_store_explicit(&h->behind, 0, memory_order_relaxed);
}

/* The mover, under h->lock: unmap the retired generations no thread is inside. Their
 * "struct gen" goes to the spares, never back to malloc: a slot-less thread may still
 * count itself in (and at once out of) one it loaded just before the move. */
static void reclaim(struct rota *h)
{
    if (!h->retired)
        return;
    expire_recent(h, rota_clock_mono());
    /* Every thread of the process passes a full barrier: a reader that announced a
     * retired generation is seen below; one that did not will load the new one. Without
     * membarrier readers fence themselves; if it fails now, readers did not: wait. */
    if (!rota_membarrier_ok)
        atomic_thread_fence(memory_order_seq_cst);
    else if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        return;
    for (struct gen **pp = &h->retired; *pp;) {
        struct gen *g = *pp;
        bool used =
            kept_recent(h, g) || atomic_load_explicit(&g->inside, memory_order_acquire) != 0;
        for (uint32_t i = 0; i < READERS_MAX && !used; i++)
            used = atomic_load_explicit(&rota_readers[i].using, memory_order_acquire) == g;
        if (used) {
            pp = &g->older;
            continue;
        }
        *pp = g->older;
        rota_shm_detach(&g->map);
        g->older = h->spare;
        h->spare = g;
    }
}

/* End the lease of a call whose report is counted. A choice the parent of a fork made is
 * ended in the parent's slot while the parent still owns it (after that, the reaper
 * ends it with the parent's others). */
void rota_lease_end(struct rota *h, uint32_t lease, uint64_t tag)
{
    if (!h->clients)
        return;
    uint32_t slot = (lease >> ROTA_LEASE_SLOT_SHIFT) - 1;
    if (h->slot && slot == (uint32_t)h->slot_index) {
        rota_client_drop(h->slot, slot, lease, tag);
    } else if (h->parent_slot >= 0 && slot == (uint32_t)h->parent_slot) {
        struct rota_shm_client *ps = rota_shm_client_at(h->clients, h->parent_slot);
        uint64_t own = atomic_load_explicit(&ps->own, memory_order_acquire);
        if (rota_client_state(own) == ROTA_CLIENT_LIVE && rota_client_pid(own) == h->parent_pid)
            rota_client_drop(ps, slot, lease, tag);
    }
}

/* The mover, under h->lock: apply the reports made while the handle was behind, now
 * that it follows (on the account by id; one that left the table is dropped), and only
 * then end their leases. */
void rota_apply_pending(struct rota *h)
{
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_relaxed);
    if (atomic_load_explicit(&g->map.hdr->state, memory_order_acquire) != ROTA_GEN_READY)
        return;
    for (uint32_t k = 0; k < PENDING_MAX; k++) {
        struct pending *p = &h->pending[k];
        if (atomic_load_explicit(&p->state, memory_order_acquire) != CELL_READY)
            continue;
        uint32_t ai = rota_shm_find(&g->map, ROTA_IDX_ACCOUNT, p->c.account_id);
        /* Applied now, at the time it is applied: a refund bounded by what the
         * admission held at report time would give back what has drained since. */
        if (ai != ROTA_NONE)
            rota_report_apply(&g->map, ai, &p->in, rota_clock_fast(), p->rnd);
        rota_lease_end(h, p->c.lease,
                       ai != ROTA_NONE ? g->map.accounts[ai].lease_tag
                                       : rota_client_tag(p->c.account_id));
        atomic_store_explicit(&p->state, CELL_FREE, memory_order_release);
    }
}

/* The mover, under h->lock: read the answers waiting with a body. */
static void drain_passive(struct rota *h)
{
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_relaxed);
    for (uint32_t k = 0; h->passive && k < PASSIVE_CELLS; k++) {
        struct passive_cell *c = &h->passive[k];
        if (atomic_load_explicit(&c->state, memory_order_acquire) != CELL_READY)
            continue;
        const struct rota_shm_map *m = &g->map;
        uint32_t ai = rota_shm_find(m, ROTA_IDX_ACCOUNT, c->account_id);
        const struct rota_parser *p =
            ai == ROTA_NONE ? NULL
                            : rota_parser_find(
                                  rota_shm_str(m, m->providers[m->accounts[ai].provider].kind));
        if (p) {
            struct rota_http_in in = {c->status, c->headers,  c->headers_len,
                                      c->body,   c->body_len, c->wall};
            struct rota_parse_opts none = {0};
            struct rota_obs ob;
            if (p->parse(&in, &none, &ob) > 0)
                rota_passive_publish(m, ai, &ob, c->now, c->wall);
        }
        atomic_store_explicit(&c->state, CELL_FREE, memory_order_release);
    }
}

static void *mover_main(void *arg)
{
    struct rota *h = arg;
    while (!atomic_load_explicit(&h->stop, memory_order_acquire)) {
        struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
        struct timespec poll = {0, MOVER_POLL_MS * 1000000L};
        if (atomic_load_explicit(&g->map.hdr->state, memory_order_acquire) == ROTA_GEN_READY)
            syscall(SYS_futex, &g->map.hdr->state, FUTEX_WAIT, ROTA_GEN_READY, &poll, NULL, 0);
        else if (atomic_load_explicit(&h->behind, memory_order_relaxed))
            nanosleep(&poll, NULL); /* the last move failed: try again after a poll */
        if (atomic_load_explicit(&h->stop, memory_order_acquire))
            break;
        pthread_mutex_lock(&h->lock);
        move(h);
        rota_apply_pending(h);
        drain_passive(h);
        reclaim(h);
        pthread_mutex_unlock(&h->lock);
    }
    return NULL;
}

int rota_mover_start(struct rota *h)
{
    sigset_t all, old;
    sigfillset(&all);
    /* The mover takes none of the process's signals (it inherits this mask). */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    atomic_store_explicit(&h->stop, false, memory_order_relaxed);
    int rc = pthread_create(&h->mover, NULL, mover_main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    h->mover_up = rc == 0;
    return -rc;
}
