/*
 * stats.c - rota-worker's figures for rotad: once a second, the threads' counts added
 * up and sent as one struct rota_pool_stats on the --stats-fd socket (pool_stats.h).
 *
 * DESIGN
 * Runs on the main thread, between signal waits. Counts that live on a loop thread are
 * read through the atomics the thread publishes (the dispatch's counts; the front's
 * connections, copied by the thread's own once-a-second timer, main.c). Percentiles
 * cover the last minute: a ring of 60 per-second sums of the histograms, the newest
 * minus the oldest. A send that fails because rotad has gone is left at that: the
 * parent-death signal (main.c) stops the process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker.h"

#define RING 61

struct rota_worker_stats {
    uint64_t (*ring)[ROTA_LAT_BUCKETS]; /* cumulative histograms, one per second */
    unsigned at;                        /* where this second's goes */
    unsigned filled; /* how many seconds back the oldest kept one is (1..RING-1) */
};

struct rota_worker_stats *rota_worker_stats_new(void)
{
    struct rota_worker_stats *s = calloc(1, sizeof(*s));
    if (s && !(s->ring = calloc(RING, sizeof(*s->ring)))) {
        free(s);
        return NULL;
    }
    if (s) { /* ring[0], all zeros, is the process's start */
        s->at = 1;
        s->filled = 1;
    }
    return s;
}

void rota_worker_stats_free(struct rota_worker_stats *s)
{
    if (s)
        free(s->ring);
    free(s);
}

void rota_worker_stats_send(struct rota_worker_stats *s, int fd, const struct worker_thread *th,
                            unsigned n, bool draining)
{
    struct rota_pool_stats m = {
        .magic = ROTA_POOL_STATS_MAGIC, .pid = getpid(), .threads = n, .draining = draining};
    uint64_t *now = s->ring[s->at];
    memset(now, 0, sizeof(s->ring[0]));
    for (unsigned i = 0; i < n; i++) {
        const struct rota_pool_counts *c = rota_dispatch_counts(th[i].d);
        m.conns += atomic_load_explicit(&th[i].conns, memory_order_relaxed);
        m.accepted += atomic_load_explicit(&th[i].accepted, memory_order_relaxed);
        m.requests += atomic_load_explicit(&c->requests, memory_order_relaxed);
        m.errors += atomic_load_explicit(&c->errors, memory_order_relaxed);
        m.exhausted += atomic_load_explicit(&c->exhausted, memory_order_relaxed);
        m.inflight += atomic_load_explicit(&c->inflight, memory_order_relaxed);
        for (unsigned b = 0; b < ROTA_LAT_BUCKETS; b++)
            now[b] += atomic_load_explicit(&c->lat[b], memory_order_relaxed);
    }
    /* the last minute: this second's sums less those of 60 seconds ago (or of the
     * start, in the first minute) */
    const uint64_t *old = s->ring[(s->at + RING - s->filled) % RING];
    uint64_t win[ROTA_LAT_BUCKETS], total = 0;
    for (unsigned b = 0; b < ROTA_LAT_BUCKETS; b++) {
        win[b] = now[b] - old[b];
        total += win[b];
    }
    m.p50_added_us = rota_lat_quantile(win, total, 0.50);
    m.p99_added_us = rota_lat_quantile(win, total, 0.99);
    s->at = (s->at + 1) % RING;
    if (s->filled < RING - 1)
        s->filled++;
    if (fd >= 0)
        (void)!send(fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL);
}
