/*
 * sys_rota.c - rota-bench's rota system: the shared table through librota.
 *
 * DESIGN
 * setup builds the workload's table as a supervisor would (shm writer API): one provider
 * per tier, one route "bench" whose tier k holds the accounts of provider k, hybrid
 * strategy, a daily request window and RPM/TPM limits high enough never to refuse (the
 * admission CAS still runs on every call). Selectors attach with rota_attach like any
 * worker. The writer rewrites snapshots through the seqlock like the supervisor.
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
};

struct rota_ctx {
    rota_t *h;
    rota_route_t route;
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
    struct rota_desc_provider prov[8];
    struct rota_desc_tier tiers[8];
    struct rota_desc_account *acc = calloc(c->accounts, sizeof(*acc));
    uint32_t *members = calloc(c->accounts, sizeof(*members));
    char(*names)[24] = calloc(c->accounts, sizeof(*names));
    char pnames[8][16];
    if (!acc || !members || !names) {
        free(acc), free(members), free(names);
        return -ENOMEM;
    }
    memset(prov, 0, sizeof(prov));
    memset(tiers, 0, sizeof(tiers));
    for (uint32_t t = 0; t < c->tiers; t++) {
        snprintf(pnames[t], sizeof(pnames[t]), "p%u", t);
        prov[t].name = pnames[t];
        prov[t].kind = "openai";
        tiers[t].strategy = (enum rota_strategy)c->strategy;
        tiers[t].lru_share = c->lru_share;
        tiers[t].provider = t;
        tiers[t].members = members;
    }
    for (uint32_t i = 0; i < c->accounts; i++) {
        uint32_t t = bench_tier_of(c, i);
        snprintf(names[i], sizeof(names[i]), "acct%u", i);
        acc[i] = (struct rota_desc_account){.id = 1000 + i,
                                            .name = names[i],
                                            .provider = t,
                                            .rpm = 1000000000u,
                                            .tpm = 4000000000u,
                                            .nwin = 1,
                                            .credential = "sk-bench-not-a-secret"};
        acc[i].win[0] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                                  .limit = BENCH_LIMIT,
                                                  .reset = {.kind = ROTA_RESET_DAY}};
        members[i] = i;
        if (tiers[t].nmembers == 0)
            tiers[t].members = &members[i];
        tiers[t].nmembers++;
    }
    static const char *const models[] = {"bench-model", NULL};
    struct rota_desc_route route = {
        .name = "bench", .models = models, .ntiers = c->tiers, .tiers = tiers};
    struct rota_desc d = {.nproviders = c->tiers,
                          .naccounts = c->accounts,
                          .nroutes = 1,
                          .providers = prov,
                          .accounts = acc,
                          .routes = &route};
    int rc = rota_shm_writer_open(s->instance, 0600, &s->w, err, n);
    if (!rc)
        rc = rota_shm_publish(s->w, &d, err, n);
    free(acc), free(members), free(names);
    if (rc && s->w)
        rota_shm_writer_close(s->w, true);
    if (rc)
        free(s);
    return rc;
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
    return rota_report(x->h, &c, &o) ? -1 : 0;
}

static uint64_t retries(void *ctx)
{
    (void)ctx;
    return rota_select_retries;
}

static int writer_init(void *state, void **wctx)
{
    *wctx = state;
    return 0;
}

/* Rewrite one snapshot as the supervisor does after an observation: the used count
 * observed now (a quarter to a half of the limit), with the local counter as its base. */
static void write_one(void *wctx, uint32_t i, uint64_t round)
{
    struct rota_state *s = wctx;
    struct rota_shm_map *m = rota_shm_writer_map(s->w);
    uint64_t used = bench_used(i, round);
    struct rota_shm_snap *sn = rota_shm_snap_begin(m, i);
    rota_store(&sn->win[0].used, used);
    rota_store(&sn->win[0].limit, BENCH_LIMIT);
    rota_store(&sn->win[0].base, rota_load(&m->hot[i].use0[0]));
    rota_store(&sn->probe_at, rota_clock_wall());
    rota_shm_snap_end(sn);
    if (i % 64 == 0)
        rota_shm_heartbeat(s->w, rota_clock_mono());
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
        .counts = counts, .bytes = bytes, .teardown = teardown,                                \
    }

static void teardown(void *state)
{
    struct rota_state *s = state;
    if (s->journal)
        bench_journal_stop(s->journal, s->c,
                           (double)(rota_clock_mono() - s->journal_started) / 1e9);
    if (s->w)
        rota_shm_writer_close(s->w, true);
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
