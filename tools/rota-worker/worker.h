/*
 * worker.h - what rota-worker's files share (private to the program).
 */
#ifndef ROTA_WORKER_H
#define ROTA_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "dispatch.h"
#include "front.h"
#include "loop.h"
#include "pool_stats.h"
#include "upstream.h"

/* One loop thread: its loop, front, upstream and dispatch, and nothing shared. */
struct worker_thread {
    pthread_t tid;
    struct rota_loop *l;
    struct rota_front *f;
    struct rota_upstream *u;
    struct rota_dispatch *d;
    int wake;
    struct rota_loop_watch *w;
    struct rota_loop_timer stop, flush, tick;
    uint32_t stop_ms;
    /* the front's figures, copied by the thread every second for the main thread */
    _Atomic uint64_t conns, accepted;
};

/* stats.c */
struct rota_worker_stats;
struct rota_worker_stats *rota_worker_stats_new(void);
void rota_worker_stats_free(struct rota_worker_stats *s);
/* Add up the "n" threads' figures and send them on "fd" (-1: only keep the minute). */
void rota_worker_stats_send(struct rota_worker_stats *s, int fd, const struct worker_thread *th,
                            unsigned n, bool draining);

#endif
