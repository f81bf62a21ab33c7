/*
 * breaker_word.h - the bits of a circuit breaker word in the hot blocks (private).
 *
 * The word and its transitions are drawn in core/breaker.h; its fields are read here, in
 * shm/, because carrying state across a reload (shm/carry.c) must tell which of two
 * breaker words is further along.
 */
#ifndef ROTA_SHM_BREAKER_WORD_H
#define ROTA_SHM_BREAKER_WORD_H

#include <stdbool.h>
#include <stdint.h>

enum rota_breaker_state {
    ROTA_BREAKER_CLOSED = 0,
    ROTA_BREAKER_OPEN = 1,
    ROTA_BREAKER_HALF_OPEN = 2,
};

#define ROTA_BREAKER_TRIPS_MAX   31u
#define ROTA_BREAKER_PERMITS_MAX 127u /* also the most successes a breaker may need */
#define ROTA_BREAKER_EPOCH_MASK  (255ull << 21)
#define ROTA_BREAKER_UNTIL_NS    16000000ull /* "until" counts 16 ms units */
#define ROTA_BREAKER_UNTIL_MAX   ((1ull << 35) - 1)

static inline unsigned rota_breaker_state_of(uint64_t w)
{
    return (unsigned)(w & 3);
}
static inline unsigned rota_breaker_trips(uint64_t w)
{
    return (unsigned)(w >> 2) & 31;
}
static inline unsigned rota_breaker_permits(uint64_t w)
{
    return (unsigned)(w >> 7) & 127;
}
static inline unsigned rota_breaker_successes(uint64_t w)
{
    return (unsigned)(w >> 14) & 127;
}
static inline unsigned rota_breaker_epoch(uint64_t w)
{
    return (unsigned)(w >> 21) & 255;
}
/* "until" in monotonic ns (a multiple of 16 ms) and in ms. */
static inline uint64_t rota_breaker_until_ns(uint64_t w)
{
    return (w >> 29) * ROTA_BREAKER_UNTIL_NS;
}
static inline uint64_t rota_breaker_until_ms(uint64_t w)
{
    return (w >> 29) * (ROTA_BREAKER_UNTIL_NS / 1000000);
}

/* A word from its fields: counts saturate, "until_ns" is rounded up to the word's 16 ms
 * (an open period never ends early) and saturates about 17 years after boot. */
static inline uint64_t rota_breaker_word(unsigned state, unsigned trips, unsigned permits,
                                         unsigned succ, unsigned epoch, uint64_t until_ns)
{
    uint64_t u = until_ns / ROTA_BREAKER_UNTIL_NS + (until_ns % ROTA_BREAKER_UNTIL_NS != 0);
    if (u > ROTA_BREAKER_UNTIL_MAX)
        u = ROTA_BREAKER_UNTIL_MAX;
    return (uint64_t)(state & 3) |
           (uint64_t)(trips > ROTA_BREAKER_TRIPS_MAX ? ROTA_BREAKER_TRIPS_MAX : trips) << 2 |
           (uint64_t)(permits & 127) << 7 | (uint64_t)(succ & 127) << 14 |
           (uint64_t)(epoch & 255) << 21 | u << 29;
}

/* Is breaker word "a" further along than "b"? A later half-open period (epoch, compared
 * as serial numbers) first; in the same period OPEN, which ends it, over the others. */
static inline bool rota_breaker_ahead(uint64_t a, uint64_t b)
{
    int8_t d = (int8_t)(uint8_t)(rota_breaker_epoch(a) - rota_breaker_epoch(b));
    if (d != 0)
        return d > 0;
    return rota_breaker_state_of(a) == ROTA_BREAKER_OPEN &&
           rota_breaker_state_of(b) != ROTA_BREAKER_OPEN;
}

#endif
