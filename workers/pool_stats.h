/*
 * pool_stats.h - what a rota-worker process tells rotad about itself every second, and
 * the latency histogram behind its percentiles (private to rota).
 *
 * DESIGN
 * rotad spawns each worker with one end of a SOCK_SEQPACKET socketpair (rota-worker
 * --stats-fd); once a second the worker's main thread adds up its threads' figures and
 * sends one struct rota_pool_stats as one message. rotad keeps the last one per process
 * for `rotactl workers`. The message holds counts and timings only: no name, key or
 * address. Both ends are built from this header, and rotad drops a message of another
 * size or magic.
 *
 * Added latency (the time a request spent in the pool, upstream time excluded) goes
 * into a histogram per thread: 16 exact buckets for 0-15 us, then 8 per power of two
 * (12.5 % wide) up to about 2^44 us. A thread writes only its own histogram, with
 * relaxed stores (no locked instruction on the request path); the main thread reads
 * every thread's with relaxed loads. A count read while its thread adds to it is off by
 * at most that one request.
 */
#ifndef ROTA_POOL_STATS_H
#define ROTA_POOL_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#define ROTA_POOL_STATS_MAGIC 0x3154415453504bull /* "KPSTAT1" */
#define ROTA_LAT_BUCKETS      344

struct rota_pool_stats {
    uint64_t magic;
    int64_t pid;
    uint64_t threads;
    uint64_t conns;        /* client connections open now */
    uint64_t accepted;     /* since the process started */
    uint64_t requests;     /* answered by the dispatch (not /healthz, not front refusals) */
    uint64_t inflight;     /* being answered now */
    uint64_t errors;       /* answered 5xx, or a stream ended by an error */
    uint64_t exhausted;    /* answered 429 because no account could take the call */
    uint64_t p50_added_us; /* over the last minute; UINT64_MAX: no request in it */
    uint64_t p99_added_us;
    uint64_t draining; /* 1 once the process stops accepting */
};

/* Per dispatch thread; written only by that thread. */
struct rota_pool_counts {
    _Atomic uint64_t requests, errors, exhausted, inflight;
    _Atomic uint64_t lat[ROTA_LAT_BUCKETS];
};

static inline unsigned rota_lat_bucket(uint64_t us)
{
    if (us < 16)
        return (unsigned)us;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned b = 16u + (msb - 4u) * 8u + (unsigned)((us >> (msb - 3u)) & 7u);
    return b < ROTA_LAT_BUCKETS ? b : ROTA_LAT_BUCKETS - 1;
}

/* The smallest value bucket "b" holds. */
static inline uint64_t rota_lat_floor(unsigned b)
{
    if (b < 16)
        return b;
    unsigned msb = (b - 16u) / 8u + 4u;
    return (8ull | ((b - 16u) % 8u)) << (msb - 3u);
}

static inline void rota_pool_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The value below which fraction "q" of the "n" counts in "lat" lie (the floor of the
 * bucket it falls in); UINT64_MAX when n is 0. */
static inline uint64_t rota_lat_quantile(const uint64_t *lat, uint64_t n, double q)
{
    if (n == 0)
        return UINT64_MAX;
    uint64_t want = (uint64_t)(q * (double)n), seen = 0;
    for (unsigned b = 0; b < ROTA_LAT_BUCKETS; b++) {
        seen += lat[b];
        if (seen > want)
            return rota_lat_floor(b);
    }
    return rota_lat_floor(ROTA_LAT_BUCKETS - 1);
}

#endif
