/*
 * sys_rwlock.c - rota-bench's rwlock peer: the same table and policy behind a
 * process-shared pthread rwlock, the design a careful engineer reaches for first.
 *
 * DESIGN
 * One shared anonymous mapping holds the lock and plain (non-atomic) account records:
 * everything the lock protects is ordinary data, as in any lock-based table. A selection
 * mutates the table (last use, in flight, the GCRA arrival time, counts), so it holds the
 * write lock for scan + pick + commit; a report holds it for its counter updates; the
 * writer holds it to rewrite a snapshot. Eligibility (cooldown, breaker, ceiling, GCRA)
 * and the pick (core/strategy's hybrid, with 64-candidate sampling) are rota's own, so
 * the difference measured is the concurrency design alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "clock.h"
#include "rng.h"
#include "strategy.h"

struct rw_acct {
    uint64_t used, limit, base, usage, tokens;
    uint64_t last_used, cooldown_until, gcra_req, gcra_tok;
    uint64_t in_flight, consec_fail, selections, successes;
};

struct rw_table {
    pthread_rwlock_t lock;
    uint32_t n, tiers;
    uint32_t tier0[9];
    struct rota_shm_tier tier;
    struct rw_acct a[];
};

struct rw_state {
    struct rw_table *t;
    size_t size;
};

struct rw_ctx {
    struct rw_table *t;
    struct rota_rng rng;
};

#define REQ_T_NS 60 /* 60 s / 1e9 requests per minute */
#define TOK_T_PS 15 /* 60 s / 4e9 tokens per minute, in ps */

static int setup(const struct bench_cfg *c, void **state, char *err, size_t n)
{
    struct rw_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->size = sizeof(struct rw_table) + c->accounts * sizeof(struct rw_acct);
    s->t = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->t == MAP_FAILED) {
        free(s);
        return -errno;
    }
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    pthread_rwlockattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(&s->t->lock, &at);
    pthread_rwlockattr_destroy(&at);
    s->t->n = c->accounts;
    s->t->tiers = c->tiers;
    for (uint32_t t = 0; t <= c->tiers; t++)
        s->t->tier0[t] = bench_tier_start(c, t);
    s->t->tier = (struct rota_shm_tier){.strategy = ROTA_STRAT_HYBRID,
                                        .top_k = 3,
                                        .sample = 8,
                                        .ceiling = 0.8,
                                        .w_quota = 0.6f,
                                        .w_recency = 0.4f,
                                        .jitter = 0.05f,
                                        .lru_share = 0.1f,
                                        .recency_s = 86400};
    for (uint32_t i = 0; i < c->accounts; i++)
        s->t->a[i].limit = BENCH_LIMIT;
    (void)err, (void)n;
    *state = s;
    return 0;
}

static int worker_init(void *state, int id, void **ctx)
{
    struct rw_state *s = state;
    struct rw_ctx *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->t = s->t;
    x->rng.s = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    *ctx = x;
    return 0;
}

static bool eligible(struct rw_acct *a, uint64_t now, struct rota_cand *c, uint32_t pos)
{
    if (a->cooldown_until > now || a->consec_fail >= 5)
        return false;
    double f = (double)(a->used + (a->usage - a->base)) / (double)a->limit;
    if (f >= 0.8)
        return false;
    uint64_t tr = a->gcra_req > now ? a->gcra_req : now;
    uint64_t tt = a->gcra_tok > now ? a->gcra_tok : now;
    if (tr + REQ_T_NS - now > 60ull * ROTA_NS_PER_S ||
        tt + BENCH_TOKENS * TOK_T_PS / 1000 - now > 60ull * ROTA_NS_PER_S)
        return false;
    *c = (struct rota_cand){.member = pos,
                            .weight = 1,
                            .left = (float)(1 - f),
                            .last_used = a->last_used,
                            .id = pos};
    return true;
}

static int op(void *ctx)
{
    struct rw_ctx *x = ctx;
    struct rw_table *t = x->t;
    struct rota_cand c[64];
    int chosen = -1;
    pthread_rwlock_wrlock(&t->lock);
    uint64_t now = rota_clock_mono();
    for (uint32_t k = 0; k < t->tiers && chosen < 0; k++) {
        uint32_t lo = t->tier0[k], size = t->tier0[k + 1] - lo, n = 0;
        if (size <= 64) {
            for (uint32_t p = 0; p < size; p++)
                n += eligible(&t->a[lo + p], now, &c[n], p);
        } else {
            for (uint32_t j = 0; j < 8; j++) {
                uint32_t p = rota_rng_below(&x->rng, size);
                n += eligible(&t->a[lo + p], now, &c[n], p);
            }
        }
        if (n) {
            struct rota_pick pk = {.tier = &t->tier, .rng = &x->rng, .now = now};
            uint32_t why, i = rota_strategy_pick(&pk, c, n, &why);
            struct rw_acct *a = &t->a[lo + c[i].member];
            a->gcra_req = (a->gcra_req > now ? a->gcra_req : now) + REQ_T_NS;
            a->gcra_tok =
                (a->gcra_tok > now ? a->gcra_tok : now) + BENCH_TOKENS * TOK_T_PS / 1000;
            a->in_flight++;
            a->selections++;
            a->last_used = now;
            chosen = (int)(lo + c[i].member);
        }
    }
    pthread_rwlock_unlock(&t->lock);
    if (chosen < 0)
        return 1;
    pthread_rwlock_wrlock(&t->lock);
    struct rw_acct *a = &t->a[chosen];
    a->in_flight--;
    a->usage++;
    a->tokens += BENCH_TOKENS;
    a->successes++;
    a->consec_fail = 0;
    pthread_rwlock_unlock(&t->lock);
    return 0;
}

static int writer_init(void *state, void **wctx)
{
    *wctx = state;
    return 0;
}

static void write_one(void *wctx, uint32_t i, uint64_t round)
{
    struct rw_state *s = wctx;
    uint64_t used = bench_used(i, round);
    pthread_rwlock_wrlock(&s->t->lock);
    s->t->a[i].used = used;
    s->t->a[i].base = s->t->a[i].usage;
    pthread_rwlock_unlock(&s->t->lock);
}

static void counts(void *state, uint64_t *out)
{
    struct rw_state *s = state;
    for (uint32_t i = 0; i < s->t->n; i++)
        out[i] = s->t->a[i].selections;
}

static size_t bytes(void *state)
{
    return ((struct rw_state *)state)->size;
}

static void teardown(void *state)
{
    struct rw_state *s = state;
    munmap(s->t, s->size);
    free(s);
}

const struct bench_sys bench_rwlock = {
    .name = "rwlock",
    .setup = setup,
    .worker_init = worker_init,
    .op = op,
    .writer_init = writer_init,
    .write_one = write_one,
    .counts = counts,
    .bytes = bytes,
    .teardown = teardown,
};
