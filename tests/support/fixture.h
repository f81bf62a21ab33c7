/*
 * fixture.h - tables for tests: build one through the writer API, change snapshots as
 * the supervisor would, tear it down. Real shared memory, real segments; nothing mocked.
 *
 * DESIGN
 * A test runs on one clock. rota_shm_publish stamps each generation from the host's
 * clocks (the heartbeat from CLOCK_MONOTONIC, creation and supervisor start from
 * CLOCK_REALTIME); a test that reads the real clocks, or calls what reads them (librota,
 * the journal), leaves fx.mono and fx.wall at 0 and keeps those stamps. A test that
 * injects fixed instants sets fx.mono and fx.wall to its "now" before its first publish:
 * every publish then restamps the table at those instants, as a supervisor living on the
 * test's clock would, so nothing in the table is seconds or days away from the test's
 * "now" because of how long the host has been up or what day it is.
 */
#ifndef ROTA_TEST_FIXTURE_H
#define ROTA_TEST_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "table.h"

struct fx {
    char instance[64];
    struct rota_shm_writer *w;
    struct rota_shm_map *m;
    uint64_t mono; /* the test's monotonic "now" for the table's stamps; 0 = real clock */
    int64_t wall;  /* the test's wall-clock "now" likewise; 0 = real clock */
};

/* A fresh instance name unique to this process and call. */
void fx_name(char *buf, size_t n, const char *tag);

/* Publish "d" as a new instance (or a new generation of "f" if already open), stamped at
 * f->mono and f->wall when they are set. */
int fx_publish(struct fx *f, const char *tag, const struct rota_desc *d);

/* The seed's fallback chain (RJ-2): route "code" (model "code-model") with tiers
 *   0 antigravity: accounts 0..2      1 copilot: accounts 3..4
 *   2 opencode:    accounts 5..6      3 local:   account 7
 * each account but the local one with a daily request window of "limit" (0 = none). Provider i
 * trips its breaker after 3 consecutive failures, for 1 s at first. */
#define FX_ANTIGRAVITY 0
#define FX_COPILOT     1
#define FX_OPENCODE    2
#define FX_LOCAL       3
int fx_chain(struct fx *f, const char *tag, enum rota_strategy strategy, uint64_t limit);

/* A one-tier route "pool" over n accounts (ids 100 + i, key "sk-test-secret"). */
struct fx_pool_opts {
    uint32_t n; /* accounts, at most 256 */
    enum rota_strategy strategy;
    const uint32_t *weights; /* NULL = 1 each */
    double lru_share;        /* hybrid's; 0 = default, < 0 = none */
    uint64_t limit;          /* a daily request window of this limit; 0 = no window */
};
int fx_pool_with(struct fx *f, const char *tag, const struct fx_pool_opts *o);

/* fx_pool_with, each account with a 10^6-request daily window. */
int fx_pool(struct fx *f, const char *tag, uint32_t n, enum rota_strategy strategy,
            const uint32_t *weights);

/* One account "a" behind one provider "p": route "r" of one hybrid tier over it. */
int fx_one(struct fx *f, const char *tag, const struct rota_desc_provider *p,
           const struct rota_desc_account *a);

/* Set window 0 of account "a" as the supervisor does after an observation. */
void fx_used(struct fx *f, uint32_t a, uint64_t used);

/* Set snapshot flags of account "a" (ROTA_SNAP_*). */
void fx_flags(struct fx *f, uint32_t a, uint32_t flags);

/* Remove the table; f->mono and f->wall stay for the next one. */
void fx_close(struct fx *f);

#endif
