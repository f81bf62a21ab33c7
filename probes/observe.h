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

/* The account's window an observed bucket stands for (same pool by name, same metric),
 * with the used figure and limit it implies. False when the account has no such window
 * or the bucket gives no figure. */
bool rota_obs_match(const struct rota_shm_map *m, uint32_t a, const struct rota_obs_window *ow,
                    uint32_t *w, uint64_t *used, uint64_t *limit);

/* Worker side, from rota_report: what a parser read in the answer a worker got. A retry
 * hint cools the account down at once (atomic max); the window nearest its limit goes to
 * the account's passive slot for the supervisor. Lock-free; drops the observation when
 * another worker is writing the slot. */
void rota_passive_publish(const struct rota_shm_map *m, uint32_t a, const struct rota_obs *o,
                          uint64_t now, int64_t wall);

/* Read what publishing needs of the process (its pid) now, so that rota_passive_publish
 * makes no system call; librota calls it when attaching. */
void rota_passive_prepare(void);

/* Supervisor side: fold every account's passive slot that is newer than its snapshot's
 * latest observation into the snapshot. "seen_odd" (one word per account, zeroed, kept
 * between calls; may be NULL) lets it repair a slot a dead worker left mid-write.
 * Returns how many it folded. */
uint32_t rota_passive_fold(struct rota_shm_map *m, uint64_t *seen_odd);

#endif
