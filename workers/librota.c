/*
 * librota.c - the worker-side library: attach, select, report, credentials.
 *
 * DESIGN
 * A handle maps the instance's current generation and is shared by any number of the
 * caller's threads. The select and report paths load the current generation pointer
 * (acquire), check its state word, and call into core/select; they take no lock,
 * allocate nothing and make no system call (clock_gettime is served by the vDSO).
 *
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
 * A choice names its generation, account index and account id. Reported on the same
 * generation it goes straight to the index; on a later one the account is found by id,
 * so nothing is counted against the wrong account and nothing is lost across a reload.
 *
 * Passive tracking: a report with headers is read by the provider's parser inline (the
 * header readers allocate nothing). A report with a body is copied into one of the
 * handle's few preallocated cells and parsed by the mover at its next wake (bodies are
 * JSON, and the JSON reader allocates); with every cell busy, the headers alone are read.
 *
 * Per-thread state: the generator for jitter and sampling, seeded from the thread's
 * stack address and the clock unless rota_seed was called, and the reader slot's index;
 * both initial-exec thread-locals of a few bytes, which glibc places in static TLS even
 * when the library is loaded with dlopen (no allocation on a thread's first call). The
 * selection's shortlists live in the reader slot.
 *
 * fork: the handlers hold every handle's lock across fork, so no mover is half-way
 * through a move (a fork waits for one in progress); the child gets a mover of its own,
 * its own lease slot (a choice its parent made is ended in the parent's slot while the
 * parent owns it, so the reaper never ends that call a second time), frees the reader slots of
 * the threads it does not have, and drops the cells its parent's threads were filling or had
 * handed over (the parent handles them). The functions are not async-signal-safe: a selection
 * from a signal handler would take the interrupted one's reader slot.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "clock.h"
#include "hash.h"
#include "observe.h"
#include "rota.h"
#include "select.h"

#define MOVER_POLL_MS       50
#define READERS_MAX         256
#define PASSIVE_CELLS       8
#define PASSIVE_HEADERS_MAX 8192
#define PASSIVE_BODY_MAX    (24 * 1024)
#define PENDING_MAX         64

#define TLS_IE __attribute__((tls_model("initial-exec")))

struct gen {
    struct rota_shm_map map;
    uint64_t generation;
    struct gen *older;
    _Atomic uint64_t inside; /* selections in it by threads without a reader slot */
};

/* A thread that selects: the generation it is inside (NULL between calls). */
struct reader {
    alignas(64) _Atomic(struct gen *) using;
    _Atomic uint32_t taken;
    alignas(64) struct rota_sel_cache cache;
};

enum { CELL_FREE, CELL_FILLING, CELL_READY };

/* A report made while the handle was behind: the mover applies it once it follows. */
struct pending {
    _Atomic uint32_t state; /* CELL_* */
    rota_choice c;
    struct rota_outcome_in in;
    uint64_t now, rnd;
};

/* An answer with a body, waiting for the mover to parse it. */
struct passive_cell {
    _Atomic uint32_t state;
    int status;
    uint32_t headers_len, body_len;
    uint64_t account_id;
    uint64_t now; /* monotonic and wall-clock ns of the report */
    int64_t wall;
    char headers[PASSIVE_HEADERS_MAX];
    char body[PASSIVE_BODY_MAX];
};

struct rota {
    struct rota *next_handle; /* all handles of the process, for fork (under handles_lock) */
    char instance[ROTA_MAX_NAME];
    _Atomic(struct gen *) cur;
    pthread_mutex_t lock; /* the mover's work, fork and detach */
    struct gen *retired;  /* newest first; guarded by "lock" */
    struct gen *spare;    /* unmapped, for the next move: a gen is never freed while a
                             thread without a slot may still touch its "inside" */
    int move_rc;          /* the latest failed move, and what failed; "lock" */
    char move_msg[200];
    _Atomic int behind; /* move_rc, for the select path */
    pthread_t mover;
    bool mover_up;
    pid_t pid; /* the process the mover runs in */
    struct pending pending[PENDING_MAX];
    _Atomic bool stop;
    struct passive_cell *passive;     /* PASSIVE_CELLS of them */
    struct rota_shm_clients *clients; /* leases; NULL when the instance keeps none */
    struct rota_shm_client *slot;     /* this handle's, in "clients" */
    int slot_index;
    int parent_slot;    /* in a child of fork: the parent's slot, which holds the leases */
    int32_t parent_pid; /* of choices made before the fork; -1 = none */
};

static struct reader readers[READERS_MAX];
static _Thread_local uint32_t tl_reader TLS_IE; /* index + 1; 0 = none yet */
static _Thread_local bool tl_no_reader TLS_IE;  /* every slot was taken: count instead */
static pthread_key_t reader_key;
static bool membarrier_ok;

/* Every handle of the process: a child of fork() claims lease slots of its own for
 * them, so the parent's exit never ends the child's calls (and the reverse). */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rota *handles;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *mover_main(void *arg);

static int start_mover(struct rota *h)
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

static void atfork_prepare(void)
{
    pthread_mutex_lock(&handles_lock);
    for (struct rota *h = handles; h; h = h->next_handle)
        pthread_mutex_lock(&h->lock);
}

static void atfork_parent(void)
{
    for (struct rota *h = handles; h; h = h->next_handle)
        pthread_mutex_unlock(&h->lock);
    pthread_mutex_unlock(&handles_lock);
}

static void atfork_child(void)
{
    /* Only the forking thread lives on: the other threads' reader slots are free. */
    for (uint32_t i = 0; i < READERS_MAX; i++)
        if (i + 1 != tl_reader) {
            atomic_store_explicit(&readers[i].using, NULL, memory_order_relaxed);
            atomic_store_explicit(&readers[i].taken, 0, memory_order_relaxed);
        }
    for (struct rota *h = handles; h; h = h->next_handle) {
        /* What the parent's threads were counting or handing over is the parent's. */
        atomic_store_explicit(&atomic_load(&h->cur)->inside, 0, memory_order_relaxed);
        for (struct gen *g = h->retired; g; g = g->older)
            atomic_store_explicit(&g->inside, 0, memory_order_relaxed);
        for (uint32_t k = 0; h->passive && k < PASSIVE_CELLS; k++)
            atomic_store_explicit(&h->passive[k].state, CELL_FREE, memory_order_relaxed);
        for (uint32_t k = 0; k < PENDING_MAX; k++)
            atomic_store_explicit(&h->pending[k].state, CELL_FREE, memory_order_relaxed);
        h->parent_slot = h->slot ? h->slot_index : -1;
        h->parent_pid = (int32_t)h->pid;
        h->pid = getpid();
        h->mover_up = false;
        if (h->clients) {
            int slot = rota_shm_client_claim(h->clients);
            h->slot_index = slot;
            h->slot = slot >= 0 ? rota_shm_client_at(h->clients, slot) : NULL;
        }
        pthread_mutex_unlock(&h->lock);
        start_mover(h); /* without one the child fails closed after the next reload */
    }
    pthread_mutex_unlock(&handles_lock);
}

static void reader_exit(void *v)
{
    uint32_t i = (uint32_t)(uintptr_t)v;
    if (i > 0 && i <= READERS_MAX) {
        /* A later destructor calling rota must not use the slot another thread may take. */
        tl_reader = 0;
        tl_no_reader = true;
        atomic_store_explicit(&readers[i - 1].using, NULL, memory_order_release);
        atomic_store_explicit(&readers[i - 1].taken, 0, memory_order_release);
    }
}

static void init_once(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    pthread_key_create(&reader_key, reader_exit);
    membarrier_ok =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* At load: the thread-exit key is then among the process's first (glibc keeps the first
 * 32 of a thread in place; a later one would allocate on a thread's first selection). */
__attribute__((constructor)) static void librota_load(void)
{
    pthread_once(&once, init_once);
}

/* The calling thread's reader slot, claimed on its first call; NULL when all are taken. */
static struct reader *reader(void)
{
    uint32_t i = tl_reader;
    if (__builtin_expect(i != 0, 1))
        return &readers[i - 1];
    if (tl_no_reader)
        return NULL;
    for (i = 0; i < READERS_MAX; i++) {
        uint32_t free_ = 0;
        if (atomic_load_explicit(&readers[i].taken, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(
                &readers[i].taken, &free_, 1, memory_order_acquire, memory_order_relaxed)) {
            memset(&readers[i].cache, 0, sizeof(readers[i].cache));
            tl_reader = i + 1;
            pthread_setspecific(reader_key, (void *)(uintptr_t)(i + 1));
            return &readers[i];
        }
    }
    tl_no_reader = true;
    return NULL;
}

static inline __attribute__((always_inline)) void leave(struct reader *rd, struct gen *g)
{
    if (__builtin_expect(rd != NULL, 1))
        atomic_store_explicit(&rd->using, NULL, memory_order_release);
    else
        atomic_fetch_sub_explicit(&g->inside, 1, memory_order_release);
}

/* Enter the handle's current generation: announced in the thread's reader slot (or its
 * count of slot-less threads), so the mover leaves it mapped until leave(). NULL, with
 * *rc, when the handle has been behind the table for longer than a worker may be. */
__attribute__((noinline, cold)) static struct gen *
enter_slow(struct rota *h, struct reader **rdp, uint64_t now, int *rc)
{
    struct reader *rd = reader();
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
    for (;;) {
        if (__builtin_expect(rd != NULL, 1)) {
            atomic_store_explicit(&rd->using, g, memory_order_relaxed);
            if (membarrier_ok)
                atomic_signal_fence(memory_order_seq_cst); /* the mover's membarrier pairs */
            else
                atomic_thread_fence(memory_order_seq_cst);
        } else {
            atomic_fetch_add(&g->inside, 1); /* a gen is never freed: see "spare" */
        }
        struct gen *again = atomic_load_explicit(&h->cur, memory_order_acquire);
        if (again == g)
            break;
        if (!rd)
            atomic_fetch_sub_explicit(&g->inside, 1, memory_order_release);
        g = again;
    }
    *rdp = rd;
    uint32_t st = atomic_load_explicit(&g->map.hdr->state, memory_order_acquire);
    if (__builtin_expect(st == ROTA_GEN_READY, 1))
        return g;
    uint64_t at = atomic_load_explicit(&g->map.hdr->superseded_at, memory_order_relaxed);
    if (st == ROTA_GEN_SUPERSEDED && (now < at || now - at < ROTA_SHM_FOLLOW_NS))
        return g; /* the mover is on it, and the writer still merges this generation */
    leave(rd, g);
    *rc = ROTA_EBEHIND;
    return NULL;
}

/* The common case inline: a thread with its slot, the generation current and ready. */
static inline __attribute__((always_inline)) struct gen *
enter(struct rota *h, struct reader **rdp, uint64_t now, int *rc)
{
    uint32_t i = tl_reader;
    if (__builtin_expect(i != 0, 1)) {
        struct reader *rd = &readers[i - 1];
        struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
        atomic_store_explicit(&rd->using, g, memory_order_relaxed);
        if (__builtin_expect(membarrier_ok, 1))
            atomic_signal_fence(memory_order_seq_cst); /* the mover's membarrier pairs */
        else
            atomic_thread_fence(memory_order_seq_cst);
        if (__builtin_expect(atomic_load_explicit(&h->cur, memory_order_acquire) == g &&
                                 atomic_load_explicit(&g->map.hdr->state,
                                                      memory_order_acquire) == ROTA_GEN_READY,
                             1)) {
            *rdp = rd;
            return g;
        }
        atomic_store_explicit(&rd->using, NULL, memory_order_release);
    }
    return enter_slow(h, rdp, now, rc);
}

static _Thread_local struct rota_rng tl_rng TLS_IE;
static _Thread_local bool tl_seeded TLS_IE;

static struct rota_rng *rng(void)
{
    if (!tl_seeded) {
        int local;
        tl_rng.s = rota_hash_mix((uint64_t)(uintptr_t)&local ^ rota_clock_mono());
        tl_seeded = 1;
    }
    return &tl_rng;
}

void rota_seed(uint64_t seed)
{
    tl_rng.s = seed;
    tl_seeded = 1;
}

/* Map the current generation into "g" (a spare, or a new one when "g" is NULL). */
static int map_current(const char *instance, struct gen *g, struct gen **out, char *err,
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

/* The mover, under h->lock: follow the table to its current generation. */
static void move(struct rota *h)
{
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_relaxed), *fresh;
    if (atomic_load_explicit(&g->map.hdr->state, memory_order_acquire) == ROTA_GEN_READY)
        return;
    char err[sizeof(h->move_msg)];
    struct gen *spare = h->spare, *rest = spare ? spare->older : NULL;
    int rc = map_current(h->instance, spare, &fresh, err, sizeof(err));
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
    /* Every thread of the process passes a full barrier: a reader that announced a
     * retired generation is seen below; one that did not will load the new one. Without
     * membarrier readers fence themselves; if it fails now, readers did not: wait. */
    if (!membarrier_ok)
        atomic_thread_fence(memory_order_seq_cst);
    else if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        return;
    for (struct gen **pp = &h->retired; *pp;) {
        struct gen *g = *pp;
        bool used = atomic_load_explicit(&g->inside, memory_order_acquire) != 0;
        for (uint32_t i = 0; i < READERS_MAX && !used; i++)
            used = atomic_load_explicit(&readers[i].using, memory_order_acquire) == g;
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
static void drop_lease(struct rota *h, uint32_t lease, uint64_t tag)
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
static void apply_pending(struct rota *h)
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
        drop_lease(h, p->c.lease,
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
        apply_pending(h);
        drain_passive(h);
        reclaim(h);
        pthread_mutex_unlock(&h->lock);
    }
    return NULL;
}

int rota_attach(const char *instance, rota_t **out, char *err, size_t errlen)
{
    if (!instance || !out) {
        if (err && errlen)
            snprintf(err, errlen, "rota_attach: %s is NULL", instance ? "out" : "instance");
        return -EINVAL;
    }
    if (!rota_shm_instance_ok(instance)) {
        if (err && errlen)
            snprintf(err, errlen, "bad instance name \"%.80s\" (letters, digits, '_', '-')",
                     instance);
        return -EINVAL;
    }
    pthread_once(&once, init_once);
    rota_passive_prepare();
    struct rota *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    snprintf(h->instance, sizeof(h->instance), "%s", instance);
    pthread_mutex_init(&h->lock, NULL);
    h->passive = calloc(PASSIVE_CELLS, sizeof(*h->passive)); /* NULL: headers only */
    struct gen *g;
    h->pid = getpid();
    h->parent_slot = -1;
    int rc = map_current(instance, NULL, &g, err, errlen);
    if (rc) {
        pthread_mutex_destroy(&h->lock);
        free(h->passive);
        free(h);
        return rc;
    }
    atomic_store_explicit(&h->cur, g, memory_order_release);
    /* Leases let the supervisor end the calls of a process that dies holding them. */
    if (rota_shm_clients_open(instance, false, 0, &h->clients) == 0) {
        h->slot_index = rota_shm_client_claim(h->clients);
        if (h->slot_index >= 0) {
            h->slot = rota_shm_client_at(h->clients, h->slot_index);
        } else {
            rota_shm_clients_close(h->clients);
            h->clients = NULL;
        }
    }
    pthread_mutex_lock(&handles_lock);
    rc = start_mover(h);
    if (rc == 0) {
        h->next_handle = handles;
        handles = h;
    }
    pthread_mutex_unlock(&handles_lock);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "cannot start the thread that follows reloads: %s",
                     strerror(-rc));
        h->mover_up = false;
        rota_detach(h);
        return rc;
    }
    *out = h;
    return 0;
}

int rota_route(rota_t *h, const char *name, rota_route_t *out)
{
    if (!h || !name || !out)
        return -EINVAL;
    struct reader *rd;
    int rc = 0;
    struct gen *g = enter(h, &rd, rota_clock_fast(), &rc);
    if (!g)
        return rc;
    uint64_t key = rota_hash_str(name);
    uint32_t i = rota_shm_find(&g->map, ROTA_IDX_ROUTE, key);
    if (i == ROTA_NONE)
        rc = ROTA_ENOROUTE;
    else
        *out = (rota_route_t){.key = key, .generation = g->generation, .index = i};
    leave(rd, g);
    return rc;
}

int rota_select(rota_t *h, const rota_route_t *route, const char *key, size_t key_len,
                uint64_t est_tokens, rota_choice *out)
{
    if (!h || !route || !out || (key_len && !key))
        return -EINVAL;
    uint64_t now = rota_clock_fast();
    struct reader *rd;
    int rc = 0;
    struct gen *g = enter(h, &rd, now, &rc);
    if (!g)
        return rc;
    uint32_t ri = route->index;
    if (route->generation != g->generation || ri >= g->map.nroutes) {
        ri = rota_shm_find(&g->map, ROTA_IDX_ROUTE, route->key);
        if (ri == ROTA_NONE) {
            leave(rd, g);
            return ROTA_ENOROUTE;
        }
    }
    struct rota_sel_req q = {
        .route = ri,
        .cache = rd ? &rd->cache : NULL,
        .key_hash = key_len ? rota_hash_bytes(key, key_len) | 1 : 0,
        .est_tokens = est_tokens,
        .now = now,
        .lease = h->slot,
        .lease_slot = (uint32_t)h->slot_index,
    };
    struct rota_sel_res r;
    rc = rota_select_route(&g->map, &q, rng(), &r);
    out->generation = g->generation;
    out->tier = r.tier;
    memcpy(out->skipped, r.skipped, sizeof(out->skipped));
    out->est_tokens = est_tokens;
    out->selected_at = q.now;
    if (rc) {
        leave(rd, g);
        out->account = ROTA_NONE;
        out->account_id = 0;
        out->pool = 0;
        out->retry_at = r.retry_at;
        out->why = 0;
        out->trial = 0;
        out->tok_tat = out->tok_back = 0;
        return rc;
    }
    out->account = r.account;
    out->account_id = g->map.accounts[r.account].id;
    out->pool = r.pool;
    out->why = r.why;
    out->trial = r.trial;
    out->tok_tat = r.tok_tat;
    out->tok_back = r.tok_back;
    out->retry_at = 0;
    out->lease = r.lease;
    leave(rd, g);
    return 0;
}

/* The account index of "c" in generation "g", or ROTA_NONE. */
static uint32_t resolve(const struct gen *g, const rota_choice *c)
{
    if (c->generation == g->generation)
        return c->account < g->map.naccounts && g->map.accounts[c->account].id == c->account_id
                   ? c->account
                   : ROTA_NONE;
    return rota_shm_find(&g->map, ROTA_IDX_ACCOUNT, c->account_id);
}

/* Hand an answer with a body to the mover: false when every cell is busy or it is too
 * long for one. */
static bool defer_answer(struct rota *h, uint64_t id, const rota_outcome *o, size_t hl,
                         size_t bl, uint64_t now, int64_t wall)
{
    if (!h->passive || hl > PASSIVE_HEADERS_MAX || bl > PASSIVE_BODY_MAX)
        return false;
    for (uint32_t k = 0; k < PASSIVE_CELLS; k++) {
        struct passive_cell *c = &h->passive[k];
        uint32_t free_ = CELL_FREE;
        if (atomic_load_explicit(&c->state, memory_order_relaxed) != CELL_FREE ||
            !atomic_compare_exchange_strong_explicit(
                &c->state, &free_, CELL_FILLING, memory_order_acquire, memory_order_relaxed))
            continue;
        c->status = o->status;
        c->account_id = id;
        c->now = now;
        c->wall = wall;
        c->headers_len = (uint32_t)hl;
        c->body_len = (uint32_t)bl;
        memcpy(c->headers, hl ? o->headers : "", hl);
        memcpy(c->body, o->body, bl);
        atomic_store_explicit(&c->state, CELL_READY, memory_order_release);
        return true;
    }
    return false;
}

/* Passive tracking: what the answer's headers (here) and error body (the mover, which
 * may allocate) say about the account's quota. */
static void observe_answer(struct rota *h, const struct gen *g, uint32_t ai,
                           const rota_outcome *o, uint64_t now)
{
    const struct rota_shm_map *m = &g->map;
    const char *kind = rota_shm_str(m, m->providers[m->accounts[ai].provider].kind);
    const struct rota_parser *p = rota_parser_find(kind);
    if (!p)
        return;
    size_t hl = o->headers ? o->headers_len : 0, bl = o->body ? o->body_len : 0;
    int64_t wall = rota_clock_wall();
    if (bl && defer_answer(h, m->accounts[ai].id, o, hl, bl, now, wall))
        return;
    struct rota_http_in in = {o->status, hl ? o->headers : "", hl, "", 0, wall};
    struct rota_parse_opts none = {0};
    struct rota_obs ob;
    if (hl && p->parse(&in, &none, &ob) > 0)
        rota_passive_publish(m, ai, &ob, now, wall);
}

/* Hand a report to the mover, to apply once the handle follows the table. */
static bool defer_report(struct rota *h, const rota_choice *c, const struct rota_outcome_in *in,
                         uint64_t now, uint64_t rnd)
{
    for (uint32_t k = 0; k < PENDING_MAX; k++) {
        struct pending *p = &h->pending[k];
        uint32_t free_ = CELL_FREE;
        if (atomic_load_explicit(&p->state, memory_order_relaxed) != CELL_FREE ||
            !atomic_compare_exchange_strong_explicit(
                &p->state, &free_, CELL_FILLING, memory_order_acquire, memory_order_relaxed))
            continue;
        p->c = *c;
        p->in = *in;
        p->now = now;
        p->rnd = rnd;
        atomic_store_explicit(&p->state, CELL_READY, memory_order_release);
        return true;
    }
    return false;
}

int rota_report(rota_t *h, const rota_choice *c, const rota_outcome *o)
{
    if (!h || !c || !o || c->account_id == 0)
        return -EINVAL;
    uint64_t now = rota_clock_fast();
    struct rota_outcome_in in = {
        .status = o->status,
        .result = o->result,
        .pool = c->pool,
        .trial = c->trial,
        .latency_ns = o->latency_ns ? o->latency_ns : now - c->selected_at,
        .tokens = o->tokens,
        .est_tokens = c->est_tokens,
        .retry_after_ms = o->retry_after_ms,
        .tok_tat = c->tok_tat,
        .tok_back = c->tok_back,
        .selected_at = c->selected_at,
    };
    uint64_t rnd = rota_rng_next(rng());
    struct reader *rd;
    int rc = 0;
    struct gen *g = enter(h, &rd, now, &rc);
    if (!g) {
        /* Behind the table: the call still ends. The mover applies it when it follows;
         * with every cell taken it stays held until this process exits (its lease). */
        return rc == ROTA_EBEHIND && defer_report(h, c, &in, now, rnd) ? 0 : rc;
    }
    uint32_t ai = resolve(g, c);
    /* An account that left the table: no count to settle; its tag is most likely the one
     * its id hashes to (a tag probed on past a collision is left held, harmlessly). */
    uint64_t tag =
        ai != ROTA_NONE ? g->map.accounts[ai].lease_tag : rota_client_tag(c->account_id);
    if (ai != ROTA_NONE) {
        rota_report_apply(&g->map, ai, &in, now, rnd);
        if ((o->headers && o->headers_len) || (o->body && o->body_len))
            observe_answer(h, g, ai, o, now);
    }
    leave(rd, g);
    /* The lease after the count: killed in between, the call is ended twice (early for
     * another call), never left in flight. */
    drop_lease(h, c->lease, tag);
    return ai == ROTA_NONE ? ROTA_ESTALE : 0;
}

static int copy_out(char *buf, size_t cap, const char *src, size_t len)
{
    if (len > INT32_MAX)
        return -EOVERFLOW;
    if (cap < len + 1)
        return -ERANGE;
    memcpy(buf, src, len);
    buf[len] = 0;
    return (int)len;
}

/* Copy the credential (or the name) of the account "c" chose. */
static int copy_field(rota_t *h, const rota_choice *c, char *buf, size_t cap, bool credential)
{
    if (!h || !c || !buf)
        return -EINVAL;
    struct reader *rd;
    int rc = 0;
    struct gen *g = enter(h, &rd, rota_clock_fast(), &rc);
    if (!g)
        return rc;
    uint32_t ai = resolve(g, c);
    if (ai == ROTA_NONE) {
        rc = ROTA_ESTALE;
    } else {
        const struct rota_shm_account *a = &g->map.accounts[ai];
        if (credential) {
            rc = copy_out(buf, cap, g->map.creds + a->cred, a->cred_len);
        } else {
            const char *name = rota_shm_str(&g->map, a->name);
            rc = copy_out(buf, cap, name, strlen(name));
        }
    }
    leave(rd, g);
    return rc;
}

int rota_credential(rota_t *h, const rota_choice *c, char *buf, size_t cap)
{
    return copy_field(h, c, buf, cap, true);
}

int rota_account_name(rota_t *h, const rota_choice *c, char *buf, size_t cap)
{
    return copy_field(h, c, buf, cap, false);
}

uint64_t rota_generation(rota_t *h)
{
    if (!h)
        return 0;
    struct reader *rd;
    int rc = 0;
    struct gen *g = enter(h, &rd, rota_clock_fast(), &rc);
    if (!g)
        return 0;
    uint64_t n = g->generation;
    leave(rd, g);
    return n;
}

int rota_move_error(rota_t *h, char *buf, size_t cap)
{
    if (!h)
        return -EINVAL;
    pthread_mutex_lock(&h->lock);
    int rc = h->move_rc;
    if (buf && cap)
        snprintf(buf, cap, "%s", rc ? h->move_msg : "");
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void rota_detach(rota_t *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&handles_lock);
    for (struct rota **p = &handles; *p; p = &(*p)->next_handle)
        if (*p == h) {
            *p = h->next_handle;
            break;
        }
    pthread_mutex_unlock(&handles_lock);
    /* A child made without the fork handlers (_Fork, clone) has no mover to stop. */
    if (h->mover_up && h->pid == getpid()) {
        struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
        atomic_store_explicit(&h->stop, true, memory_order_release);
        syscall(SYS_futex, &g->map.hdr->state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        pthread_join(h->mover, NULL);
        apply_pending(h); /* what the mover had not applied yet, if it can be */
    }
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
    g->older = h->retired;
    while (g) {
        struct gen *next = g->older;
        rota_shm_detach(&g->map);
        free(g);
        g = next;
    }
    for (struct gen *sp = h->spare, *next; sp; sp = next) {
        next = sp->older;
        free(sp);
    }
    if (h->clients) {
        if (h->slot)
            rota_shm_client_leave(h->clients, h->slot_index);
        rota_shm_clients_close(h->clients);
    }
    pthread_mutex_destroy(&h->lock);
    free(h->passive);
    free(h);
}

const char *rota_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case ROTA_EEXHAUSTED:
        return "no eligible account in any tier of the route";
    case ROTA_EMAGIC:
        return "not a rota table (bad magic)";
    case ROTA_EABI:
        return "table written by an incompatible rota (ABI or layout size mismatch)";
    case ROTA_ELAYOUT:
        return "table sections are inconsistent (corrupt segment)";
    case ROTA_ETRUNC:
        return "table segment is truncated";
    case ROTA_ENOTREADY:
        return "table is not ready (no generation published yet)";
    case ROTA_ENOROUTE:
        return "no route has that name or serves that model";
    case ROTA_ESTALE:
        return "the chosen account is no longer in the table";
    case ROTA_EBEHIND:
        return "the table moved to a new generation this process could not map "
               "(rota_move_error says why)";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *s = strerrordesc_np(-err);
        return s ? s : "unknown error";
    }
    return "unknown error";
}
