/*
 * librota.c - the worker-side library: attach, select, report, credentials.
 *
 * DESIGN
 * A handle maps the instance's current generation and is shared by any number of the
 * caller's threads. The select and report paths load the current generation pointer
 * (acquire), check its state word, and call into core/select; they take no lock,
 * allocate nothing and make no system call (clock_gettime is served by the vDSO).
 *
 * Generation changes: when a thread sees its generation SUPERSEDED it tries to re-attach
 * under the handle's mutex with trylock: the one thread that gets it maps the new
 * generation and publishes it with a release store; the others carry on with the old
 * generation for this call, which stays mapped and valid. Old maps are retired, not
 * unmapped, because another thread may still be inside a selection on them; the handle
 * keeps up to RETIRED_MAX of them and unmaps the oldest beyond that (a thread would have
 * to stall inside one selection across that many reloads to be hurt).
 *
 * A choice names its generation, account index and account id. Reported on the same
 * generation it goes straight to the index; on a later one the account is found by id,
 * so nothing is counted against the wrong account and nothing is lost across a reload.
 *
 * Per-thread state: the generator for jitter and sampling (thread-local, seeded from
 * the thread's stack address and the clock unless rota_seed was called).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "clock.h"
#include "hash.h"
#include "observe.h"
#include "rota.h"
#include "select.h"

#define RETIRED_MAX 16

struct gen {
    struct rota_shm_map map;
    uint64_t generation;
    struct gen *older;
};

struct rota {
    struct rota *next_handle; /* all handles of the process, for fork (under handles_lock) */
    char instance[ROTA_MAX_NAME];
    _Atomic(struct gen *) cur;
    pthread_mutex_t lock; /* re-attach and detach only */
    struct gen *retired;  /* newest first; guarded by "lock" */
    unsigned nretired;
    struct rota_shm_clients *clients; /* leases; NULL when the instance keeps none */
    struct rota_shm_client *slot;     /* this handle's, in "clients" */
    int slot_index;
};

/* Every handle of the process: a child of fork() claims lease slots of its own for
 * them, so the parent's exit never ends the child's calls (and the reverse). */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rota *handles;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&handles_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&handles_lock);
}

static void atfork_child(void)
{
    for (struct rota *h = handles; h; h = h->next_handle) {
        if (!h->clients)
            continue;
        int slot = rota_shm_client_claim(h->clients);
        h->slot_index = slot;
        h->slot = slot >= 0 ? rota_shm_client_at(h->clients, slot) : NULL;
    }
    pthread_mutex_unlock(&handles_lock);
}

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static _Thread_local struct rota_rng tl_rng;
static _Thread_local int tl_seeded;

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

static int map_current(const char *instance, struct gen **out, char *err, size_t errlen)
{
    struct gen *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    int rc = rota_shm_attach(instance, &g->map, err, errlen);
    if (rc) {
        free(g);
        return rc;
    }
    g->generation = g->map.hdr->generation;
    *out = g;
    return 0;
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
    struct rota *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    snprintf(h->instance, sizeof(h->instance), "%s", instance);
    pthread_mutex_init(&h->lock, NULL);
    struct gen *g;
    int rc = map_current(instance, &g, err, errlen);
    if (rc) {
        pthread_mutex_destroy(&h->lock);
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
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&handles_lock);
    h->next_handle = handles;
    handles = h;
    pthread_mutex_unlock(&handles_lock);
    *out = h;
    return 0;
}

/* Called when the current generation is no longer READY. Never blocks. */
static struct gen *reattach(struct rota *h, struct gen *seen)
{
    if (pthread_mutex_trylock(&h->lock) != 0)
        return seen;
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_relaxed), *fresh;
    if (g == seen && map_current(h->instance, &fresh, NULL, 0) == 0) {
        if (fresh->generation == g->generation) {
            rota_shm_detach(&fresh->map);
            free(fresh);
        } else {
            g->older = h->retired;
            h->retired = g;
            if (++h->nretired > RETIRED_MAX) {
                struct gen **pp = &h->retired;
                while ((*pp)->older)
                    pp = &(*pp)->older;
                rota_shm_detach(&(*pp)->map);
                free(*pp);
                *pp = NULL;
                h->nretired--;
            }
            atomic_store_explicit(&h->cur, fresh, memory_order_release);
            g = fresh;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return g;
}

static struct gen *current(struct rota *h)
{
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
    if (__builtin_expect(atomic_load_explicit(&g->map.hdr->state, memory_order_acquire) !=
                             ROTA_GEN_READY,
                         0))
        g = reattach(h, g);
    return g;
}

int rota_route(rota_t *h, const char *name, rota_route_t *out)
{
    if (!h || !name || !out)
        return -EINVAL;
    struct gen *g = current(h);
    uint64_t key = rota_hash_str(name);
    uint32_t i = rota_shm_find(&g->map, ROTA_IDX_ROUTE, key);
    if (i == ROTA_NONE)
        return ROTA_ENOROUTE;
    *out = (rota_route_t){.key = key, .generation = g->generation, .index = i};
    return 0;
}

int rota_select(rota_t *h, const rota_route_t *route, const char *key, size_t key_len,
                uint64_t est_tokens, rota_choice *out)
{
    if (!h || !route || !out || (key_len && !key))
        return -EINVAL;
    struct gen *g = current(h);
    uint32_t ri = route->index;
    if (route->generation != g->generation || ri >= g->map.nroutes) {
        ri = rota_shm_find(&g->map, ROTA_IDX_ROUTE, route->key);
        if (ri == ROTA_NONE)
            return ROTA_ENOROUTE;
    }
    struct rota_sel_req q = {
        .route = ri,
        .key_hash = key_len ? rota_hash_bytes(key, key_len) | 1 : 0,
        .est_tokens = est_tokens,
        .now = rota_clock_fast(),
        .lease = h->slot,
        .lease_slot = (uint32_t)h->slot_index,
    };
    struct rota_sel_res r;
    int rc = rota_select_route(&g->map, &q, rng(), &r);
    out->generation = g->generation;
    out->tier = r.tier;
    memcpy(out->skipped, r.skipped, sizeof(out->skipped));
    out->est_tokens = est_tokens;
    out->selected_at = q.now;
    if (rc) {
        out->account = ROTA_NONE;
        out->account_id = 0;
        out->pool = 0;
        out->retry_at = r.retry_at;
        out->why = 0;
        out->trial = 0;
        return rc;
    }
    out->account = r.account;
    out->account_id = g->map.accounts[r.account].id;
    out->pool = r.pool;
    out->why = r.why;
    out->trial = r.trial;
    out->retry_at = 0;
    out->lease = r.lease;
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

/* Passive tracking: what the answer's headers and error body say about the account's
 * quota, read by the provider's parser here, in the reporting process. */
static void observe_answer(const struct gen *g, uint32_t ai, const rota_outcome *o,
                           uint64_t now)
{
    const struct rota_shm_map *m = &g->map;
    const char *kind = rota_shm_str(m, m->providers[m->accounts[ai].provider].kind);
    const struct rota_parser *p = rota_parser_find(kind);
    if (!p)
        return;
    size_t hl = o->headers ? o->headers_len : 0, bl = o->body ? o->body_len : 0;
    struct rota_http_in in = {o->status,
                              hl ? o->headers : "",
                              hl,
                              bl ? o->body : "",
                              bl < ROTA_PARSE_MAX_BODY ? bl : ROTA_PARSE_MAX_BODY,
                              rota_clock_wall()};
    struct rota_parse_opts none = {0};
    struct rota_obs ob;
    if (p->parse(&in, &none, &ob) > 0)
        rota_passive_publish(m, ai, &ob, now, in.now);
}

int rota_report(rota_t *h, const rota_choice *c, const rota_outcome *o)
{
    if (!h || !c || !o || c->account_id == 0)
        return -EINVAL;
    struct gen *g = current(h);
    uint32_t ai = resolve(g, c);
    if (ai == ROTA_NONE) {
        /* The account left the table: no count to settle; its tag is most likely the one
         * its id hashes to (a tag probed on past a collision is left held, harmlessly). */
        if (h->slot)
            rota_client_drop(h->slot, (uint32_t)h->slot_index, c->lease,
                             rota_client_tag(c->account_id));
        return ROTA_ESTALE;
    }
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
    };
    rota_report_apply(&g->map, ai, &in, now, rota_rng_next(rng()));
    /* The lease after the count: killed in between, the call is ended twice (early for
     * another call), never left in flight. */
    if (h->slot)
        rota_client_drop(h->slot, (uint32_t)h->slot_index, c->lease,
                         g->map.accounts[ai].lease_tag);
    if ((o->headers && o->headers_len) || (o->body && o->body_len))
        observe_answer(g, ai, o, now);
    return 0;
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
    struct gen *g = current(h);
    uint32_t ai = resolve(g, c);
    if (ai == ROTA_NONE)
        return ROTA_ESTALE;
    const struct rota_shm_account *a = &g->map.accounts[ai];
    if (credential)
        return copy_out(buf, cap, g->map.creds + a->cred, a->cred_len);
    const char *name = rota_shm_str(&g->map, a->name);
    return copy_out(buf, cap, name, strlen(name));
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
    return h ? current(h)->generation : 0;
}

void rota_detach(rota_t *h)
{
    if (!h)
        return;
    struct gen *g = atomic_load_explicit(&h->cur, memory_order_acquire);
    g->older = h->retired;
    while (g) {
        struct gen *next = g->older;
        rota_shm_detach(&g->map);
        free(g);
        g = next;
    }
    pthread_mutex_lock(&handles_lock);
    for (struct rota **p = &handles; *p; p = &(*p)->next_handle)
        if (*p == h) {
            *p = h->next_handle;
            break;
        }
    pthread_mutex_unlock(&handles_lock);
    if (h->clients) {
        if (h->slot)
            rota_shm_client_leave(h->clients, h->slot_index);
        rota_shm_clients_close(h->clients);
    }
    pthread_mutex_destroy(&h->lock);
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
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *s = strerrordesc_np(-err);
        return s ? s : "unknown error";
    }
    return "unknown error";
}
