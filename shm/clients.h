/*
 * clients.h - who holds which reservations: leases for calls in flight (private to rota).
 *
 * DESIGN
 * A selection counts a call in flight on its account (use0[0] - done); the report ends
 * it. A worker killed between the two would leave the count up for ever. So each
 * attached handle claims a slot in a per-instance segment, /rota.<instance>.clients, and
 * records there, by account id, how many calls it holds; the supervisor checks the
 * slots' processes every second and, for one that is gone, reports the calls it held as
 * done (rota_shm_clients_reap). Ids, not indices, so leases survive reloads.
 *
 *   +--------------------------+ 0
 *   | header: magic, ABI, slots |
 *   +--------------------------+ 64
 *   | slot 0: 4 KiB             |  line 0: state, pid, start time, untracked
 *   |   entries[252]: id, held  |  open addressing by id; an entry's id is set once
 *   | slot 1 ...                |
 *   +--------------------------+
 *
 * Writers: a slot's own handle (CAS to claim, fetch_add/sub on "held"), and the
 * supervisor (CAS LIVE -> REAPING on a dead owner, then clears the slot and frees it).
 * A handle that cannot find room for an id counts the call in "untracked": still counted
 * in flight, just not reclaimable. The segment is created by the table's writer; a
 * handle attached while it does not exist tracks nothing.
 */
#ifndef ROTA_SHM_CLIENTS_H
#define ROTA_SHM_CLIENTS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "seqlock.h"
#include "table.h"

#define ROTA_CLIENTS_MAGIC  0x3143494c41544f52ull /* "ROTACLI1" */
#define ROTA_CLIENTS_SLOTS  256
#define ROTA_CLIENT_ENTRIES 252
#define ROTA_CLIENT_PROBES  16

enum rota_client_state {
    ROTA_CLIENT_FREE = 0,
    ROTA_CLIENT_CLAIMING = 1,
    ROTA_CLIENT_LIVE = 2,
    ROTA_CLIENT_REAPING = 3,
    ROTA_CLIENT_GONE = 4, /* detached: reap what it still holds */
};

struct rota_shm_client {
    alignas(64) _Atomic uint32_t state; /* enum rota_client_state */
    _Atomic int32_t pid;
    _Atomic uint64_t start;     /* the process's start time (clock ticks after boot) */
    _Atomic uint64_t untracked; /* calls held that found no entry */
    _Atomic uint64_t reaped;    /* sup: calls this slot's previous owners left behind */
    struct {
        _Atomic uint64_t id;  /* account id; 0 = unused; set once by CAS */
        _Atomic int64_t held; /* calls selected and not yet reported */
    } ent[ROTA_CLIENT_ENTRIES];
};

struct rota_shm_clients_seg {
    uint64_t magic;
    uint32_t abi, nslots;
    uint8_t pad[48];
    struct rota_shm_client slot[ROTA_CLIENTS_SLOTS];
};

struct rota_shm_clients;

/* Map the instance's clients segment, creating it (mode "mode") when "create". */
int rota_shm_clients_open(const char *instance, bool create, mode_t mode,
                          struct rota_shm_clients **out);
void rota_shm_clients_close(struct rota_shm_clients *c);

/* Claim a slot for this process: its index, or -ENOSPC. */
int rota_shm_client_claim(struct rota_shm_clients *c);

/* Give the slot up (clean detach): what it still holds is reaped by the supervisor. */
void rota_shm_client_leave(struct rota_shm_clients *c, int slot);

/* The slot's memory, for the hot-path helpers below. */
struct rota_shm_client *rota_shm_client_at(struct rota_shm_clients *c, int slot);

/* Record one call held on account "id": returns the entry + 1 to give back to
 * rota_client_drop, or 0 when it is counted untracked. */
static inline uint32_t rota_client_hold(struct rota_shm_client *s, uint64_t id, uint64_t hash)
{
    uint32_t i = (uint32_t)(hash % ROTA_CLIENT_ENTRIES);
    for (uint32_t k = 0; k < ROTA_CLIENT_PROBES; k++) {
        uint64_t cur = rota_load(&s->ent[i].id);
        if (cur == 0) {
            uint64_t zero = 0;
            if (atomic_compare_exchange_strong_explicit(
                    &s->ent[i].id, &zero, id, memory_order_relaxed, memory_order_relaxed))
                cur = id;
            else
                cur = zero;
        }
        if (cur == id) {
            atomic_fetch_add_explicit(&s->ent[i].held, 1, memory_order_relaxed);
            return i + 1;
        }
        if (++i == ROTA_CLIENT_ENTRIES)
            i = 0;
    }
    rota_add(&s->untracked, 1);
    return 0;
}

static inline void rota_client_drop(struct rota_shm_client *s, uint32_t entry)
{
    if (entry == 0 || entry > ROTA_CLIENT_ENTRIES)
        atomic_fetch_sub_explicit(&s->untracked, 1, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&s->ent[entry - 1].held, 1, memory_order_relaxed);
}

/* Is the process "pid" that started at "start" still there (not a zombie)? A "start" of
 * 0 skips the start-time check. */
bool rota_client_alive(int32_t pid, uint64_t start);

/* This process's start time, as the slots record it. */
uint64_t rota_client_start_time(int32_t pid);

/* Supervisor: for every slot whose process is gone, report the calls it held as done on
 * "m" (found by id), clear the slot and free it. "alive" decides (tests pass their own;
 * NULL = rota_client_alive). Returns the calls reclaimed. */
uint64_t rota_shm_clients_reap(struct rota_shm_clients *c, const struct rota_shm_map *m,
                               bool (*alive)(int32_t pid, uint64_t start));

/* Slots in use and calls held by live slots (for status). */
void rota_shm_clients_count(struct rota_shm_clients *c, uint32_t *live, uint64_t *held);

#endif
