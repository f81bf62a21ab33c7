/*
 * rng.h - a small, fast, seedable generator for selection jitter and sampling.
 *
 * DESIGN
 * One state per thread of a handle (never shared between threads: no atomics needed).
 * wyrand: one multiply per draw, passes BigCrush, 2^64 period; plenty for choosing among
 * accounts. Seeded from the caller, so tests draw reproducible distributions.
 */
#ifndef ROTA_CORE_RNG_H
#define ROTA_CORE_RNG_H

#include <stdint.h>

struct rota_rng {
    uint64_t s;
};

static inline uint64_t rota_rng_next(struct rota_rng *r)
{
    r->s += 0xa0761d6478bd642full;
    __uint128_t t = (__uint128_t)r->s * (r->s ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* Uniform in [0, n) without division (Lemire's multiply-shift; bias < n / 2^64). */
static inline uint32_t rota_rng_below(struct rota_rng *r, uint32_t n)
{
    return (uint32_t)(((__uint128_t)rota_rng_next(r) * n) >> 64);
}

/* Uniform double in [0, 1). */
static inline double rota_rng_unit(struct rota_rng *r)
{
    return (double)(rota_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
