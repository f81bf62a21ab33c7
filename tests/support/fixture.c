/*
 * fixture.c - see fixture.h.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"

void fx_name(char *buf, size_t n, const char *tag)
{
    static _Atomic unsigned seq;
    snprintf(buf, n, "t%s%d_%u", tag, (int)getpid(), atomic_fetch_add(&seq, 1));
}

/* Restamp the generation just published on the test's clock: the heartbeat a supervisor
 * beating at f->mono wrote, and its creation and start at f->wall. Plain stores after the
 * READY one: a test on a fixed clock reads its table from its own thread alone. */
static void stamp(struct fx *f)
{
    if (f->mono)
        rota_shm_heartbeat(f->w, f->mono);
    if (f->wall) {
        f->m->hdr->created_at = f->wall;
        rota_store(&f->m->hdr->sup_start, (uint64_t)f->wall);
    }
}

int fx_publish(struct fx *f, const char *tag, const struct rota_desc *d)
{
    char err[256];
    int rc = 0;
    if (!f->w) {
        fx_name(f->instance, sizeof(f->instance), tag);
        rc = rota_shm_writer_open(f->instance, 0600, &f->w, err, sizeof(err));
    }
    if (!rc)
        rc = rota_shm_publish(f->w, d, err, sizeof(err));
    if (rc)
        fprintf(stderr, "fixture: %s\n", err);
    f->m = rota_shm_writer_map(f->w);
    if (!rc)
        stamp(f);
    return rc;
}

int fx_chain(struct fx *f, const char *tag, enum rota_strategy strategy, uint64_t limit)
{
    static const char *const names[] = {"antigravity", "copilot", "opencode", "local"};
    static const char *const acct[] = {"ag-a", "ag-b", "ag-c", "cp-a",
                                       "cp-b", "oc-a", "oc-b", "llama"};
    static const uint32_t prov_of[] = {0, 0, 0, 1, 1, 2, 2, 3};
    static const uint32_t members[] = {0, 1, 2, 3, 4, 5, 6, 7};
    struct rota_desc_provider p[4];
    struct rota_desc_account a[8];
    struct rota_desc_tier t[4];
    memset(p, 0, sizeof(p));
    memset(a, 0, sizeof(a));
    memset(t, 0, sizeof(t));
    for (uint32_t i = 0; i < 4; i++)
        p[i] = (struct rota_desc_provider){.name = names[i],
                                           .kind = names[i],
                                           .fail_threshold = 3,
                                           .halfopen_permits = 2,
                                           .open_base_ms = 1000,
                                           .open_cap_ms = 8000,
                                           .cooldown_base_ms = 1000};
    for (uint32_t i = 0; i < 8; i++) {
        a[i] = (struct rota_desc_account){.id = 10 + i,
                                          .name = acct[i],
                                          .provider = prov_of[i],
                                          .credential = "sk-test-secret"};
        if (limit && prov_of[i] != FX_LOCAL) { /* a local model has no quota */
            a[i].nwin = 1;
            a[i].win[0] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                                    .limit = limit,
                                                    .reset = {.kind = ROTA_RESET_DAY}};
        }
    }
    t[0] = (struct rota_desc_tier){
        .strategy = strategy, .provider = 0, .nmembers = 3, .members = &members[0]};
    t[1] = (struct rota_desc_tier){
        .strategy = strategy, .provider = 1, .nmembers = 2, .members = &members[3]};
    t[2] = (struct rota_desc_tier){
        .strategy = strategy, .provider = 2, .nmembers = 2, .members = &members[5]};
    t[3] = (struct rota_desc_tier){
        .strategy = strategy, .provider = 3, .nmembers = 1, .members = &members[7]};
    static const char *const models[] = {"code-model", NULL};
    struct rota_desc_route r = {.name = "code", .models = models, .ntiers = 4, .tiers = t};
    struct rota_desc d = {.nproviders = 4,
                          .naccounts = 8,
                          .nroutes = 1,
                          .providers = p,
                          .accounts = a,
                          .routes = &r};
    return fx_publish(f, tag, &d);
}

int fx_pool_with(struct fx *f, const char *tag, const struct fx_pool_opts *o)
{
    static char names[256][16];
    static uint32_t members[256];
    struct rota_desc_account a[256];
    if (o->n > 256)
        return -1;
    memset(a, 0, sizeof(a));
    for (uint32_t i = 0; i < o->n; i++) {
        snprintf(names[i], sizeof(names[i]), "acct%u", i);
        members[i] = i;
        a[i] = (struct rota_desc_account){.id = 100 + i,
                                          .name = names[i],
                                          .weight = o->weights ? o->weights[i] : 1,
                                          .credential = "sk-test-secret"};
        if (o->limit) {
            a[i].nwin = 1;
            a[i].win[0] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                                    .limit = o->limit,
                                                    .reset = {.kind = ROTA_RESET_DAY}};
        }
    }
    struct rota_desc_provider p = {.name = "prov", .kind = "openai"};
    struct rota_desc_tier t = {.strategy = o->strategy,
                               .provider = 0,
                               .nmembers = o->n,
                               .members = members,
                               .lru_share = o->lru_share};
    struct rota_desc_route r = {.name = "pool", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = o->n,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = a,
                          .routes = &r};
    return fx_publish(f, tag, &d);
}

int fx_pool(struct fx *f, const char *tag, uint32_t n, enum rota_strategy strategy,
            const uint32_t *weights)
{
    struct fx_pool_opts o = {
        .n = n, .strategy = strategy, .weights = weights, .limit = 1000000};
    return fx_pool_with(f, tag, &o);
}

int fx_one(struct fx *f, const char *tag, const struct rota_desc_provider *p,
           const struct rota_desc_account *a)
{
    static const uint32_t member = 0;
    struct rota_desc_tier t = {
        .strategy = ROTA_STRAT_HYBRID, .provider = 0, .nmembers = 1, .members = &member};
    struct rota_desc_route rt = {.name = "r", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 1,
                          .nroutes = 1,
                          .providers = p,
                          .accounts = a,
                          .routes = &rt};
    return fx_publish(f, tag, &d);
}

void fx_used(struct fx *f, uint32_t a, uint64_t used)
{
    struct rota_shm_snap *s = rota_shm_snap_begin(f->m, a);
    rota_shm_snap_window(s, 0, used, rota_load(&s->win[0].limit),
                         rota_load(&f->m->hot[a].use0[0]));
    rota_shm_snap_end(s);
}

void fx_flags(struct fx *f, uint32_t a, uint32_t flags)
{
    struct rota_shm_snap *s = rota_shm_snap_begin(f->m, a);
    rota_store(&s->flags, (rota_load(&s->flags) & ROTA_SNAP_HAS_DATA) | flags);
    rota_shm_snap_end(s);
}

void fx_close(struct fx *f)
{
    if (f->w)
        rota_shm_writer_close(f->w, true);
    *f = (struct fx){.mono = f->mono, .wall = f->wall};
}
