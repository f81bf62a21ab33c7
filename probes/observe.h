/*
 * observe.h - folding what a parser read into the table (private to rota).
 *
 * DESIGN
 * The supervisor's main thread, the table's one snapshot writer, applies observations
 * here: from its probes, and (later) from the workers' passive reports. Each call is one
 * seqlock write section on the account's snapshot plus single atomic stores on its hot
 * words, so workers never wait.
 */
#ifndef ROTA_PROBES_OBSERVE_H
#define ROTA_PROBES_OBSERVE_H

#include <stdint.h>

#include "parse.h"
#include "table.h"

/* What rota_probe_apply did, for logs and tests. */
struct rota_apply_result {
    uint32_t windows;   /* table windows updated */
    uint32_t unmatched; /* observed windows the account has no window for */
    bool cooled, disabled;
};

/* Apply "o" to account "a" of "m". An observed window updates the account's window of
 * the same pool (by name; "" is the account-wide pool) and metric: its used figure (the
 * provider's, counting from now: the usage counter's value becomes the base), its limit
 * when the provider says one, its reset instant. A retry hint becomes a cooldown, a
 * disable a supervisor disable (auth or billing, until the instant given or until
 * enabled). Any observation clears the pessimistic flag and stamps the probe time.
 * "now" is monotonic ns, "wall" wall-clock ns. */
void rota_probe_apply(struct rota_shm_map *m, uint32_t a, const struct rota_obs *o,
                      uint64_t now, int64_t wall, struct rota_apply_result *res);

/* A probe of account "a" failed or its data went stale: assume the provider's
 * pessimistic figure until the next good observation. "reason" is kept for rotactl. */
void rota_probe_pessimistic(struct rota_shm_map *m, uint32_t a, uint32_t reason);

#endif
