/*
 * librota.c - the worker-side library: attach, select, report, credentials.
 *
 * DESIGN
 * A handle maps the instance's current generation and is shared by any number of the
 * caller's threads. The select and report paths load the current generation pointer
 * (acquire), check its state word, and call into core/select; they take no lock,
 * allocate nothing and make no system call (clock_gettime is served by the vDSO).
 *
 * Following reloads and retired generations: mover.c.
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

#include "clock.h"
#include "handle.h"
#include "rota_int.h"
#include "hash.h"
#include "observe.h"

ROTA_HIDDEN struct reader rota_readers[READERS_MAX];
static _Thread_local uint32_t tl_reader TLS_IE; /* index + 1; 0 = none yet */
static _Thread_local bool tl_no_reader TLS_IE;  /* every slot was taken: count instead */
static pthread_key_t reader_key;
ROTA_HIDDEN bool rota_membarrier_ok;

/* Every handle of the process: a child of fork() claims lease slots of its own for
 * them, so the parent's exit never ends the child's calls (and the reverse). */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rota *handles;
static pthread_once_t once = PTHREAD_ONCE_INIT;

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
            atomic_store_explicit(&rota_readers[i].using, NULL, memory_order_relaxed);
            atomic_store_explicit(&rota_readers[i].taken, 0, memory_order_relaxed);
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
        rota_mover_start(h); /* without one the child fails closed after the next reload */
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
        atomic_store_explicit(&rota_readers[i - 1].using, NULL, memory_order_release);
        atomic_store_explicit(&rota_readers[i - 1].taken, 0, memory_order_release);
    }
}

static void init_once(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    pthread_key_create(&reader_key, reader_exit);
    rota_membarrier_ok =
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
        return &rota_readers[i - 1];
    if (tl_no_reader)
        return NULL;
    for (i = 0; i < READERS_MAX; i++) {
        uint32_t free_ = 0;
        if (atomic_load_explicit(&rota_readers[i].taken, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&rota_readers[i].taken, &free_, 1,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            memset(&rota_readers[i].cache, 0, sizeof(rota_readers[i].cache));
            tl_reader = i + 1;
            pthread_setspecific(reader_key, (void *)(uintptr_t)(i + 1));
            return &rota_readers[i];
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
            if (rota_membarrier_ok)
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
        struct reader *rd = &rota_readers[i - 1];
        struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
        atomic_store_explicit(&rd->using, g, memory_order_relaxed);
        if (__builtin_expect(rota_membarrier_ok, 1))
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

struct gen *rota_gen_enter(struct rota *h, struct reader **rdp, uint64_t now, int *rc)
{
    return enter(h, rdp, now, rc);
}

void rota_gen_leave(struct reader *rd, struct gen *g)
{
    leave(rd, g);
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
    int rc = rota_map_current(instance, NULL, &g, err, errlen);
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
    rc = rota_mover_start(h);
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
    return rota_select_except(h, route, key, key_len, est_tokens, 0, NULL, 0, out);
}

int rota_select_except(rota_t *h, const rota_route_t *route, const char *key, size_t key_len,
                       uint64_t est_tokens, uint32_t skip_tiers, const uint64_t *except,
                       uint32_t nexcept, rota_choice *out)
{
    if (!h || !route || !out || (key_len && !key) || (nexcept && !except))
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
        .skip_tiers = skip_tiers,
        .except = except,
        .nexcept = nexcept,
    };
    struct rota_sel_res r;
    rc = rota_select_route(&g->map, &q, rng(), &r);
    out->generation = g->generation;
    out->route = ri;
    out->pad_ = 0;
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
    rota_lease_end(h, c->lease, tag);
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

/* ---- where the call goes ---- */

/* Enter the retired generation "generation" if the handle still keeps it mapped (mover.c):
 * announced like the current one, then confirmed by loading its slot again. */
static struct gen *enter_recent(struct rota *h, uint64_t generation, struct reader **rdp)
{
    struct reader *rd = reader();
    for (uint32_t i = 0; i < RECENT_MAX; i++) {
        struct gen *g = atomic_load_explicit(&h->recent[i], memory_order_acquire);
        if (!g)
            continue;
        if (rd) {
            atomic_store_explicit(&rd->using, g, memory_order_relaxed);
            if (rota_membarrier_ok)
                atomic_signal_fence(memory_order_seq_cst); /* the mover's membarrier pairs */
            else
                atomic_thread_fence(memory_order_seq_cst);
        } else {
            atomic_fetch_add(&g->inside, 1);
        }
        if (atomic_load_explicit(&h->recent[i], memory_order_acquire) == g &&
            g->generation == generation) {
            *rdp = rd;
            return g;
        }
        leave(rd, g);
    }
    return NULL;
}

/* Fill "out" from generation "g", where "c" was made. */
static int fill_target(const struct gen *g, const rota_choice *c, const char *model, size_t len,
                       rota_target *out)
{
    uint32_t ai = resolve(g, c);
    if (ai == ROTA_NONE)
        return ROTA_ESTALE;
    return rota_target_fill(&g->map, ai, c, model, len, out);
}

int rota_target_of(rota_t *h, const rota_choice *c, const char *model, size_t model_len,
                   rota_target *out)
{
    if (!h || !c || !out || (model_len && !model) || c->account_id == 0)
        return -EINVAL;
    struct reader *rd;
    int rc = 0;
    struct gen *g = enter(h, &rd, rota_clock_fast(), &rc);
    if (g && g->generation != c->generation) {
        leave(rd, g);
        g = enter_recent(h, c->generation, &rd);
        rc = ROTA_ESTALE;
    }
    if (!g)
        return rc;
    rc = fill_target(g, c, model, model_len, out);
    leave(rd, g);
    return rc;
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
        rota_apply_pending(h); /* what the mover had not applied yet, if it can be */
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
