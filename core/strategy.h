/*
 * strategy.h - choosing one account among a tier's eligible candidates.
 *
 * DESIGN
 * Pure functions over an array the selection scan filled: no table access, no clock, no
 * allocation, so each strategy's distribution can be tested over many seeded draws. The
 * caller owns the generator (one per thread). Hybrid is the seed's: score = w_quota *
 * quota_left + w_recency * recency, recency = max(0, 1 - age / horizon); a "lru_share" of
 * picks go to the least recently used candidate (starvation prevention); the rest go to
 * the best of the top k scores, each multiplied by a jitter in [1 - j, 1 + j] so that
 * processes choosing at the same instant spread out.
 */
#ifndef ROTA_CORE_STRATEGY_H
#define ROTA_CORE_STRATEGY_H

#include <stdint.h>

#include "layout.h"
#include "rng.h"

struct rota_cand {
    uint32_t member;    /* position in the tier */
    uint32_t weight;    /* configured weight, >= 1 */
    float left;         /* 1 - used fraction, clamped to [0, 1] */
    uint32_t gates;     /* the caller's: trial permits this candidate needs */
    uint64_t last_used; /* monotonic ns; 0 = never used */
    uint64_t id;        /* account id (sticky hashing) */
};

struct rota_pick {
    const struct rota_shm_tier *tier;
    struct rota_rng *rng;
    uint64_t now;      /* monotonic ns */
    uint64_t key_hash; /* sticky: hash of the caller's key; 0 = no key */
    uint32_t cursor;   /* round-robin: the shared cursor's value for this pick */
    uint8_t force;     /* hybrid: 0 = draw the forced-LRU share here, 1 = forced LRU,
                          2 = by score (the caller drew) */
};

/* Index into "c" (n >= 1) of the chosen candidate; *why gets a ROTA_WHY_* code. */
uint32_t rota_strategy_pick(const struct rota_pick *p, const struct rota_cand *c, uint32_t n,
                            uint32_t *why);

/* Up to "k" (<= 8) candidates in the strategy's order of preference (hybrid: score,
 * greedy: quota left), best first, as indices into "c". Returns how many. */
uint32_t rota_strategy_rank(const struct rota_pick *p, const struct rota_cand *c, uint32_t n,
                            uint32_t k, uint32_t *out, float *score);

/* Hybrid's last step: multiply each of "n" scores by a jitter in [1 - j, 1 + j] and
 * return the index of the largest. */
uint32_t rota_strategy_jitter(const struct rota_shm_tier *t, const float *score, uint32_t n,
                              struct rota_rng *rng);

/* Hybrid score of one candidate (without jitter). */
float rota_hybrid_score(const struct rota_shm_tier *t, const struct rota_cand *c, uint64_t now);

const char *rota_strategy_name(unsigned s);
int rota_strategy_parse(const char *name); /* enum rota_strategy, or -EINVAL */

#endif
