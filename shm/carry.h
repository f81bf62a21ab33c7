/*
 * carry.h - carrying state from one generation to the next (private to shm/).
 */
#ifndef ROTA_SHM_CARRY_H
#define ROTA_SHM_CARRY_H

#include <stdint.h>

#include "table.h"

/* Bytes of the "seen" record for carrying from "old": a hot block per account, then a
 * provider hot block per provider (aligned as hot blocks are), then a client key's hot
 * words per key. */
size_t rota_shm_seen_size(const struct rota_shm_map *old);

/* Copy hot blocks and matching snapshot windows of the accounts of "m" that "old" also
 * has (by id), the hot blocks (breaker, failure streak) of the providers it also has
 * (by name) and those of the client keys it also has (by SHA-256); "seen"
 * (rota_shm_seen_size bytes, zeroed) records them as copied. */
void rota_shm_carry_over(struct rota_shm_map *m, const struct rota_shm_map *old,
                         struct rota_shm_hot *seen);

/* Add to "m" what workers did on "old" since "seen" (counters by difference, cooldowns by
 * maximum, rate words by their advance past "since", other words if changed), and
 * update "seen". */
void rota_shm_catch_up(struct rota_shm_map *m, const struct rota_shm_map *old,
                       struct rota_shm_hot *seen, uint64_t since);

#endif
