/*
 * carry.h - carrying state from one generation to the next (private to shm/).
 */
#ifndef ROTA_SHM_CARRY_H
#define ROTA_SHM_CARRY_H

#include <stdint.h>

#include "table.h"

/* Copy hot blocks and matching snapshot windows of the accounts of "m" that "old" also
 * has (by id); "seen" (one per account of "old") records the hot blocks as copied. */
void rota_shm_carry_over(struct rota_shm_map *m, const struct rota_shm_map *old,
                         struct rota_shm_hot *seen);

/* Add to "m" what workers did on "old" since "seen" (counters by difference, cooldowns by
 * maximum, rate words by their advance past "since", other words if changed), and
 * update "seen". */
void rota_shm_catch_up(struct rota_shm_map *m, const struct rota_shm_map *old,
                       struct rota_shm_hot *seen, uint64_t since);

#endif
