/*
 * sys_rota.c - rota-bench's rota system: the shared table through librota.
 *
 * DESIGN
 * setup builds the workload's table as a supervisor would (shm writer API): one provider
 * per tier, one route "bench" whose tier k holds the accounts of provider k, hybrid
 * strategy, a daily request window and RPM/TPM limits high enough never to refuse (the
 * admission CAS still runs on every call). Selectors attach with rota_attach like any
 * worker. The writer rewrites snapshots through the seqlock like the supervisor.
 *
 * Reloads (--reload-rate): the parent publishes the kept description again as a new
 * generation, every other time with one more model alias on the route (a harmless
 * change, as an edited rota.yaml would make). The writer process, forked before, maps
 * each new generation itself when it sees its own superseded, as a second observer of
 * the table would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "clock.h"
#include "rota.h"
#include "select.h"
#include "table.h"

struct rota_state {
    const struct bench_cfg *c;
    struct rota_shm_writer *w;
    char instance[64];
    struct rota_journal *journal; /* rota+jnl only */
    uint64_t journal_started;     /* monotonic ns */
    /* the description, kept for reloads */
    struct rota_desc d;
    struct rota_desc_provider prov[8];
    struct rota_desc_tier tiers[8];
    struct rota_desc_route route;
    char pnames[8][16];
    struct rota_desc_account *acc;
    uint32_t *members;
    char (*names)[24];
};

/* The writer process's view: the generation it writes snapshots into. */
struct rota_wctx {
    struct rota_state *s;
    struct rota_shm_map map;
    bool own; /* "map" is this process's own mapping, not the one fork handed down */
};

static void free_desc(struct rota_state *s)
{
    free(s->acc), free(s->members), free(s->names);
}

struct rota_ctx {
    rota_t *h;
    rota_route_t route;
    bool track;          /* with reloads: say which operation met a new generation */
    uint64_t generation; /* the handle's, after the last operation */
};

static int setup(const struct bench_cfg *c, void **state, char *err, size_t n)
{
    struct rota_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->c = c;
    *state = s;
    if (c->attach) { /* check here, once, so that a typo fails before anything forks */
        snprintf(s->instance, sizeof(s->instance), "%s", c->attach);
        rota_t *h = NULL;
        int rc = rota_attach(c->attach, &h, err, n);
        if (!rc) {
            rota_route_t r;
            rc = rota_route(h, c->route, &r);
            if (rc)
                snprintf(err, n, "instance %s has no route or model \"%s\"", c->attach,
                         c->route);
            rota_detach(h);
        }
        if (rc)
            free(s);
        return rc;
    }
    snprintf(s->instance, sizeof(s->instance), "%s", c->instance);
    s->acc = calloc(c->accounts, sizeof(*s->acc));
    s->members = calloc(c->accounts, sizeof(*s->members));
    s->names = calloc(c->accounts, sizeof(*s->names));
    if (!s->acc || !s->members || !s->names) {
        free_desc(s);
        free(s);
        return -ENOMEM;
    }
    for (uint32_t t = 0; t < c->tiers; t++) {
        snprintf(s->pnames[t], sizeof(s->pnames[t]), "p%u", t);
        s->prov[t].name = s->pnames[t];
        s->prov[t].kind = "openai";
        s->tiers[t].strategy = (enum rota_strategy)c->strategy;
        s->tiers[t].lru_share = c->lru_share;
        s->tiers[t].provider = t;
        s->tiers[t].members = s->members;
    }
    for (uint32_t i = 0; i < c->accounts; i++) {
        uint32_t t = bench_tier_of(c, i);
        snprintf(s->names[i], sizeof(s->names[i]), "acct%u", i);
        s->acc[i] = (struct rota_desc_account){.id = 1000 + i,
                                               .name = s->names[i],
                                               .provider = t,
                                               .rpm = 1000000000u,
                                               .tpm = 4000000000u,
                                               .nwin = 1,
                                               .credential = "sk-bench-not-a-secret"};
        s->acc[i].win[0] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                                     .limit = BENCH_LIMIT,
                                                     .reset = {.kind = ROTA_RESET_DAY}};
        s->members[i] = i;
        if (s->tiers[t].nmembers == 0)
            s->tiers[t].members = &s->members[i];
        s->tiers[t].nmembers++;
    }
    static const char *const models[] = {"bench-model", NULL};
    s->route = (struct rota_desc_route){
        .name = "bench", .models = models, .ntiers = c->tiers, .tiers = s->tiers};
    s->d = (struct rota_desc){.nproviders = c->tiers,
                              .naccounts = c->accounts,
                              .nroutes = 1,
                              .providers = s->prov,
                              .accounts = s->acc,
                              .routes = &s->route};
    int rc = rota_shm_writer_open(s->instance, 0600, &s->w, err, n);
    if (!rc)
        rc = rota_shm_publish(s->w, &s->d, err, n);
    if (rc && s->w)
        rota_shm_writer_close(s->w, true);
    if (rc) {
        free_desc(s);
        free(s);
    }
    return rc;
}

/* Publish reload "k": the same description, with a second model alias when "k" is odd. */
static int reload(void *state, uint64_t k, char *err, size_t n)
{
    struct rota_state *s = state;
    static const char *const one[] = {"bench-model", NULL};
    static const char *const two[] = {"bench-model", "bench-model-b", NULL};
    s->route.models = k % 2 ? two : one;
    return rota_shm_publish(s->w, &s->d, err, n);
}

static int worker_init(void *state, int id, void **ctx)
{
    struct rota_state *s = state;
    struct rota_ctx *x = calloc(1, sizeof(*x));
    char err[256];
    if (!x)
        return -ENOMEM;
    int rc = rota_attach(s->instance, &x->h, err, sizeof(err));
    if (!rc)
        rc = rota_route(x->h, s->c->route, &x->route);
    if (rc) {
        fprintf(stderr, "rota-bench: attach %s: %s\n", s->instance,
                rc == ROTA_ENOROUTE ? "no such route" : err);
        free(x);
        return rc;
    }
    rota_seed(s->c->seed * 7919 + (uint64_t)id);
    x->track = s->c->reload_rate > 0;
    *ctx = x;
    return 0;
}

static int op(void *ctx)
{
    struct rota_ctx *x = ctx;
    rota_choice c;
    int rc = rota_select(x->h, &x->route, NULL, 0, BENCH_TOKENS, &c);
    if (rc)
        return rc == ROTA_EEXHAUSTED ? 1 : -1;
    rota_outcome o = {.status = 200, .tokens = BENCH_TOKENS, .latency_ns = 1};
    if (rota_report(x->h, &c, &o))
        return -1;
    if (!x->track)
        return 0;
    /* The switch may happen in the select or the report: ask the handle afterwards. */
    uint64_t g = rota_generation(x->h);
    bool first = x->generation && g != x->generation;
    x->generation = g;
    return first ? 2 : 0;
}

static uint64_t retries(void *ctx)
{
    (void)ctx;
    return rota_select_retries;
}

static int writer_init(void *state, void **wctx)
{
    struct rota_wctx *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->s = state;
    x->map = *rota_shm_writer_map(x->s->w);
    *wctx = x;
    return 0;
}

/* After a reload: map the generation that superseded ours (the old one stays if that
 * fails, and the next rewrite tries again). */
static void follow(struct rota_wctx *x)
{
    if (rota_load(&x->map.hdr->state) == ROTA_GEN_READY)
        return;
    struct rota_shm_map m;
    if (rota_shm_attach(x->s->instance, &m, NULL, 0) != 0)
        return;
    if (x->own)
        rota_shm_detach(&x->map);
    x->map = m;
    x->own = true;
}

/* Rewrite one snapshot as the supervisor does after an observation: the used count
 * observed now (a quarter to a half of the limit), with the local counter as its base. */
static void write_one(void *wctx, uint32_t i, uint64_t round)
{
    struct rota_wctx *x = wctx;
    follow(x);
    struct rota_shm_map *m = &x->map;
    uint64_t used = bench_used(i, round);
    struct rota_shm_snap *sn = rota_shm_snap_begin(m, i);
    rota_store(&sn->win[0].used, used);
    rota_store(&sn->win[0].limit, BENCH_LIMIT);
    rota_store(&sn->win[0].base, rota_load(&m->hot[i].use0[0]));
    rota_store(&sn->probe_at, rota_clock_wall());
    rota_shm_snap_end(sn);
    if (i % 64 == 0)
        rota_store(&m->hdr->heartbeat, rota_clock_mono());
}

static void counts(void *state, uint64_t *out)
{
    struct rota_state *s = state;
    struct rota_shm_map *m = rota_shm_writer_map(s->w);
    for (uint32_t i = 0; m && i < m->naccounts; i++)
        out[i] = rota_selections(m, i);
}

static size_t bytes(void *state)
{
    struct rota_state *s = state;
    struct rota_shm_map *m = s->w ? rota_shm_writer_map(s->w) : NULL;
    return m ? m->size : 0;
}

/* The three rota rows differ only in their setup. */
#define ROTA_SYS(label, setup_fn)                                                              \
    {                                                                                          \
        .name = label, .setup = setup_fn, .worker_init = worker_init, .op = op,                \
        .retries = retries, .writer_init = writer_init, .write_one = write_one,                \
        .counts = counts, .bytes = bytes, .teardown = teardown, .reload = reload,              \
    }

static void teardown(void *state)
{
    struct rota_state *s = state;
    if (s->journal)
        bench_journal_stop(s->journal, s->c,
                           (double)(rota_clock_mono() - s->journal_started) / 1e9);
    if (s->w)
        rota_shm_writer_close(s->w, true);
    free_desc(s);
    free(s);
}

const struct bench_sys bench_rota = ROTA_SYS("rota", setup);

/* The same table with leases off: handles find no clients segment and record nothing, so
 * the two rows show what the lease costs a select + report. */
static int setup_nolease(const struct bench_cfg *c, void **state, char *err, size_t n)
{
    int rc = setup(c, state, err, n);
    if (rc == 0) {
        char name[96];
        snprintf(name, sizeof(name), "/rota.%s.clients",
                 ((struct rota_state *)*state)->instance);
        shm_unlink(name);
    }
    return rc;
}

const struct bench_sys bench_rota_nolease = ROTA_SYS("no-lease", setup_nolease);

/* The same table journaled to a file as rotad would: the row to hold against "rota". */
static int setup_journal(const struct bench_cfg *c, void **state, char *err, size_t n)
{
    int rc = setup(c, state, err, n);
    if (rc)
        return rc;
    struct rota_state *s = *state;
    rc = bench_journal_start(c, s->instance, &s->journal, err, n);
    if (rc) {
        teardown(s);
        return rc;
    }
    s->journal_started = rota_clock_mono();
    return 0;
}

const struct bench_sys bench_rota_journal = ROTA_SYS("rota+jnl", setup_journal);
