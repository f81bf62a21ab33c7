/*
 * supervise.h - the supervisor's work on its table: reset schedules, the failure-rate
 * breaker, operator actions and dry-run selections (private to rota).
 *
 * DESIGN
 * Every function here writes snapshots, so only the table's single writer (rotad's main
 * thread) may call them. Hot words are changed with the same atomics workers use, so
 * workers never wait. Time comes in as arguments ("now" monotonic ns, "wall" wall-clock
 * ns): tests drive the calendar with any clock they like.
 */
#ifndef ROTA_CORE_SUPERVISE_H
#define ROTA_CORE_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>

#include "select.h"
#include "table.h"

/* Failure-rate breaker settings of one provider (0 rate = off). */
struct rota_sup_rate {
    double fail_rate;
    uint32_t min_calls;
    uint64_t window_ns;
};

struct rota_sup;

/* State kept between ticks for the accounts of "m" (time zones of its windows, counters
 * at the start of each rate window). "rates" has one entry per provider; it is copied. */
int rota_sup_new(const struct rota_shm_map *m, const struct rota_sup_rate *rates,
                 struct rota_sup **out);
void rota_sup_free(struct rota_sup *s);

/* Apply quota resets due at "wall": a window whose reset time has passed starts again
 * from zero (its base moves to the usage counter's value) and gets its next reset time;
 * a window without a reset time gets one. Returns how many windows were reset. */
uint32_t rota_sup_resets(struct rota_sup *s, struct rota_shm_map *m, int64_t wall);

/* Open the breaker of each account whose failures over the provider's window reached
 * its failure rate (over at least min_calls calls). Returns how many it opened. */
uint32_t rota_sup_rate_tick(struct rota_sup *s, struct rota_shm_map *m, uint64_t now,
                            uint64_t rnd);

/* Operator actions on account "a". "off" is enum rota_off (core/reason.h). */
void rota_sup_disable(struct rota_shm_map *m, uint32_t a, unsigned off, uint64_t until);
void rota_sup_enable(struct rota_shm_map *m, uint32_t a);
/* Start windows of "pool" (all pools when pool < 0) from zero now; with all pools, clear
 * the cooldown and the breaker too. Returns the windows reset. */
uint32_t rota_sup_reset(struct rota_sup *s, struct rota_shm_map *m, uint32_t a, int pool,
                        int64_t wall);
void rota_sup_cooldown(struct rota_shm_map *m, uint32_t a, uint64_t until);

/* Choose as rota_select would on route "route", changing nothing in "m": the selection
 * runs on a private copy of the generation. 0, ROTA_EEXHAUSTED, or -errno. */
int rota_sup_dry_select(const struct rota_shm_map *m, uint32_t route, uint64_t key_hash,
                        uint64_t est_tokens, uint64_t now, struct rota_sel_res *r);

/* Find an account by "provider/name", a bare name (when unambiguous) or "0x<id>".
 * Returns its index, ROTA_NONE when none, or ROTA_NONE - 1 when ambiguous. */
uint32_t rota_sup_find_account(const struct rota_shm_map *m, const char *name);

/* Find a provider by name; ROTA_NONE when none. */
uint32_t rota_sup_find_provider(const struct rota_shm_map *m, const char *name);

/* Find a route by name or by a model it serves; ROTA_NONE when none. */
uint32_t rota_sup_find_route(const struct rota_shm_map *m, const char *name);

#endif
