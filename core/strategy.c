/*
 * strategy.c - the selection strategies (see strategy.h for the contract).
 *
 * DESIGN
 * Runs on the select path of every worker thread: no allocation, no lock, no system
 * call; O(n) in the candidates (n <= 64: larger tiers are sampled by the caller).
 */
#include <errno.h>
#include <stdbool.h>
#include <strings.h>

#include "hash.h"
#include "rota_codes.h"
#include "strategy.h"

static const char *const names[ROTA_STRAT_COUNT] = {
    "hybrid", "greedy", "round-robin", "weighted", "sticky", "lru", "fill-first",
};

const char *rota_strategy_name(unsigned s)
{
    return s < ROTA_STRAT_COUNT ? names[s] : "?";
}

int rota_strategy_parse(const char *name)
{
    for (int i = 0; name && i < ROTA_STRAT_COUNT; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -EINVAL;
}

static inline float hscore(const struct rota_shm_tier *t, const struct rota_cand *c,
                           uint64_t now, float per_ns)
{
    float recency = 0;
    if (c->last_used) {
        float age = c->last_used >= now ? 0.f : (float)(int64_t)(now - c->last_used);
        recency = 1.f - age * per_ns;
        recency = recency < 0 ? 0 : recency;
    }
    return t->w_quota * c->left + t->w_recency * recency;
}

/* 1 / horizon, per nanosecond of age. */
static inline float per_ns(const struct rota_shm_tier *t)
{
    return 1e-9f / (float)t->recency_s;
}

float rota_hybrid_score(const struct rota_shm_tier *t, const struct rota_cand *c, uint64_t now)
{
    return hscore(t, c, now, per_ns(t));
}

/* Least recently used; never used counts as oldest; ties go to the first. */
static uint32_t lru(const struct rota_cand *c, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (c[i].last_used < c[best].last_used)
            best = i;
    return best;
}

#define TOP_MAX 8

/* The k best by rank_key, sorted, by insertion: O(n k), k <= 8. */
static uint32_t top(const struct rota_pick *p, const struct rota_cand *c, uint32_t n,
                    uint32_t k, uint32_t *idx, float *score)
{
    uint32_t have = 0;
    bool greedy = p->tier->strategy == ROTA_STRAT_GREEDY;
    float inv = per_ns(p->tier);
    k = k > TOP_MAX ? TOP_MAX : k;
    for (uint32_t i = 0; i < n; i++) {
        float s = greedy ? c[i].left : hscore(p->tier, &c[i], p->now, inv);
        if (have == k && s <= score[k - 1])
            continue;
        uint32_t j = have < k ? have++ : k - 1;
        while (j > 0 && score[j - 1] < s) {
            score[j] = score[j - 1];
            idx[j] = idx[j - 1];
            j--;
        }
        score[j] = s;
        idx[j] = i;
    }
    return have;
}

uint32_t rota_strategy_rank(const struct rota_pick *p, const struct rota_cand *c, uint32_t n,
                            uint32_t k, uint32_t *out, float *score)
{
    return top(p, c, n, k, out, score);
}

static uint32_t hybrid(const struct rota_pick *p, const struct rota_cand *c, uint32_t n,
                       uint32_t *why)
{
    const struct rota_shm_tier *t = p->tier;
    bool lru_pick = p->force == 1 ||
                    (p->force == 0 && t->lru_share > 0 && rota_rng_unit(p->rng) < t->lru_share);
    if (lru_pick) {
        *why = ROTA_WHY_FORCED_LRU;
        return lru(c, n);
    }
    uint32_t idx[TOP_MAX] = {0};
    float score[TOP_MAX];
    uint32_t have = top(p, c, n, t->top_k, idx, score);
    *why = ROTA_WHY_SCORE;
    return idx[rota_strategy_jitter(t, score, have, p->rng)];
}

uint32_t rota_strategy_jitter(const struct rota_shm_tier *t, const float *score, uint32_t n,
                              struct rota_rng *rng)
{
    uint32_t best = 0;
    float best_s = -1;
    for (uint32_t j = 0; j < n; j++) {
        float jit = 1.f + t->jitter * (2.f * (float)rota_rng_unit(rng) - 1.f);
        if (score[j] * jit > best_s) {
            best_s = score[j] * jit;
            best = j;
        }
    }
    return best;
}

static uint32_t greedy(const struct rota_cand *c, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (c[i].left > c[best].left ||
            (c[i].left == c[best].left && c[i].last_used < c[best].last_used))
            best = i;
    return best;
}

static uint32_t weighted(const struct rota_pick *p, const struct rota_cand *c, uint32_t n)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += c[i].weight;
    uint64_t r = (uint64_t)(rota_rng_unit(p->rng) * (double)total);
    for (uint32_t i = 0; i < n; i++) {
        if (r < c[i].weight)
            return i;
        r -= c[i].weight;
    }
    return n - 1;
}

/* Rendezvous (highest random weight) hashing: each candidate's score depends only on the
 * key and its own id, so removing an account moves only the keys that were on it. */
static uint32_t sticky(const struct rota_pick *p, const struct rota_cand *c, uint32_t n)
{
    uint32_t best = 0;
    uint64_t best_h = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t h = rota_hash_mix(p->key_hash ^ rota_hash_mix(c[i].id));
        if (i == 0 || h > best_h) {
            best_h = h;
            best = i;
        }
    }
    return best;
}

/* The first candidate at or after the cursor, in tier order. */
static uint32_t round_robin(const struct rota_pick *p, const struct rota_cand *c, uint32_t n)
{
    uint32_t size = p->tier->nmembers, start = size ? p->cursor % size : 0;
    uint32_t best = 0, best_d = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t d = (c[i].member + size - start) % (size ? size : 1);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    return best;
}

static uint32_t fill_first(const struct rota_cand *c, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (c[i].member < c[best].member)
            best = i;
    return best;
}

uint32_t rota_strategy_pick(const struct rota_pick *p, const struct rota_cand *c, uint32_t n,
                            uint32_t *why)
{
    switch (p->tier->strategy) {
    case ROTA_STRAT_GREEDY:
        *why = ROTA_WHY_GREEDY;
        return greedy(c, n);
    case ROTA_STRAT_ROUND_ROBIN:
        *why = ROTA_WHY_ROUND_ROBIN;
        return round_robin(p, c, n);
    case ROTA_STRAT_WEIGHTED:
        *why = ROTA_WHY_WEIGHTED;
        return weighted(p, c, n);
    case ROTA_STRAT_STICKY:
        if (p->key_hash) {
            *why = ROTA_WHY_STICKY;
            return sticky(p, c, n);
        }
        return hybrid(p, c, n, why); /* no key: nothing to stick to */
    case ROTA_STRAT_LRU:
        *why = ROTA_WHY_LRU;
        return lru(c, n);
    case ROTA_STRAT_FILL_FIRST:
        *why = ROTA_WHY_FILL_FIRST;
        return fill_first(c, n);
    default:
        return hybrid(p, c, n, why);
    }
}
