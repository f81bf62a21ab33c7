/*
 * view.h - what an operator sees of a table: per-account and per-instance summaries
 * (private to rota; rotactl and rotad's control socket print them).
 *
 * DESIGN
 * Read-only: every figure is read from a mapped generation with the same protocols the
 * selection uses (seqlock for snapshots, relaxed atomic loads for hot words), so a view
 * works from any process, with or without a supervisor running. No credential is ever
 * read. Names point into the map's string section: valid while the map is.
 */
#ifndef ROTA_CORE_VIEW_H
#define ROTA_CORE_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "quota.h"
#include "reason.h"
#include "table.h"

struct rota_view_window {
    const char *pool; /* "*" for the account-wide pool */
    unsigned metric;  /* enum rota_metric */
    uint64_t used;    /* observed + counted since */
    uint64_t limit;   /* 0 = unknown */
    double fraction;  /* used / limit, -1 when unknown */
    int64_t reset_at; /* wall-clock ns of the next reset; 0 = none known */
};

struct rota_view_account {
    uint32_t index;
    uint64_t id;
    const char *name, *provider, *kind;
    enum rota_status status; /* over the account-wide pool's windows */
    double fraction;         /* max used fraction over all windows; -1 unknown */
    bool pessimistic;        /* assumed at the provider's pessimistic figure */
    uint32_t pess_reason;    /* snapshot reason when pessimistic */
    bool stale;              /* the supervisor's heartbeat is older than stale_after */
    unsigned off;            /* enum rota_off; ROTA_OFF_NONE when in rotation */
    uint64_t off_left_ns;    /* time left of a timed disable; 0 = until enabled */
    uint64_t cooldown_left_ns;
    unsigned breaker;           /* enum rota_breaker_state (core/breaker.h) */
    unsigned breaker_trips;     /* consecutive trips */
    uint64_t breaker_left_ns;   /* open: time until half-open */
    bool provider_breaker_open; /* the provider as a whole is open */
    uint32_t in_flight;
    uint64_t last_used_ago_ns; /* UINT64_MAX = never */
    uint64_t selections, done, failures, rate_limited, auth_failures, tokens;
    uint64_t latency_ns; /* moving average */
    uint32_t weight, rpm, tpm;
    int64_t probe_at; /* wall-clock ns of the latest observation; 0 = none */
    uint32_t nwin;
    struct rota_view_window win[ROTA_MAX_WINDOWS];
};

/* Fill "out" for account "a". "now" is monotonic ns, "wall" wall-clock ns. Returns 0, or
 * -EBUSY when the snapshot stayed under rewrite (try again). */
int rota_view_account(const struct rota_shm_map *m, uint32_t a, uint64_t now, int64_t wall,
                      struct rota_view_account *out);

struct rota_view_instance {
    const char *instance;
    uint64_t generation, config_hash;
    int32_t sup_pid;
    bool sup_alive;    /* a process with that pid exists */
    int64_t sup_start; /* wall-clock ns */
    uint64_t heartbeat_age_ns;
    bool stale;         /* heartbeat older than stale_after */
    int64_t created_at; /* wall-clock ns the generation was built */
    uint32_t nproviders, naccounts, nroutes;
    uint32_t healthy, warning, critical, exhausted, unknown, off, cooling, open;
    uint64_t selections, in_flight;
    double gini; /* of selections over accounts */
    uint64_t table_bytes;
};

void rota_view_instance(const struct rota_shm_map *m, uint64_t now, int64_t wall,
                        struct rota_view_instance *out);

#endif
