/*
 * clients.h - who holds which reservations: leases for calls in flight (private to rota).
 *
 * DESIGN
 * A selection counts a call in flight on its account (use0[0] - done); the report ends
 * it. A worker killed between the two would leave the count up for ever. So each
 * attached handle claims a slot in a per-instance segment, /rota.<instance>.clients, and
 * records there, by account tag, how many calls it holds; the supervisor checks the
 * slots' processes every second and, for one that is gone, reports the calls it held as
 * done (rota_shm_clients_reap). Tags, not indices, so leases survive reloads.
 *
 *   +--------------------------+ 0
 *   | header: magic, ABI, slots |
 *   +--------------------------+ 64
 *   | slot 0: 2 KiB             |  line 0: state|pid, start time, untracked
 *   |   entries[252]: tag|held  |  open addressing by the tag; freed at 0 held
 *   | slot 1 ...                |
 *   +--------------------------+
 *
 * Ordering: a call's lease is held before the call is counted in flight (core/select.c,
 * commit, right before use0[0]) and dropped only after its report counted it done
 * (librota, rota_report). A process killed between the two steps of either therefore
 * dies holding a lease for a call whose count is already settled (not yet counted, or
 * already done): the reaper counts it done once more, which ends another call of that
 * account early (done runs one ahead of selections) at worst, and never leaves a call in
 * flight that nobody will end (a drain would wait for it for ever).
 *
 * Tags: the writer gives every account of a table a tag unique in that table (struct
 * rota_shm_account.lease_tag: its id's hash, probed on to the next free value on a
 * collision) and keeps an account's tag across generations by id, so an entry names one
 * account exactly and goes on naming it after a reload; the reaper maps tag to account.
 *
 * Writers: a slot's own handle (CAS to claim, fetch_add/sub on "held"), and the
 * supervisor (CAS LIVE, GONE or a dead owner's CLAIMING -> REAPING, then clears the slot
 * and frees it). The state and the owner's pid share one word, set by one CAS, so a slot
 * is never CLAIMING without naming its owner. A handle that cannot find room for an
 * account counts the call in "untracked": still counted in flight, just not
 * reclaimable. The segment is created by the table's writer; a handle attached while it
 * does not exist tracks nothing.
 */
#ifndef ROTA_SHM_CLIENTS_H
#define ROTA_SHM_CLIENTS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hash.h"
#include "seqlock.h"
#include "table.h"

#define ROTA_CLIENTS_MAGIC  0x3243494c41544f52ull /* "ROTACLI2" */
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

/* A slot's "own" word: the state in the low 32 bits, the owner's pid above. */
static inline uint64_t rota_client_own(uint32_t state, int32_t pid)
{
    return (uint64_t)(uint32_t)pid << 32 | state;
}

static inline uint32_t rota_client_state(uint64_t own)
{
    return (uint32_t)own;
}

static inline int32_t rota_client_pid(uint64_t own)
{
    return (int32_t)(uint32_t)(own >> 32);
}

/* An entry is one word: the account's tag (high 44 bits, never 0) and the calls held
 * (the low 20). A word whose count drops to 0 is freed by CAS, so a process that uses
 * thousands of accounts over its life needs entries only for those it holds at once. */
#define ROTA_CLIENT_COUNT_BITS 20
#define ROTA_CLIENT_COUNT_MASK ((1ull << ROTA_CLIENT_COUNT_BITS) - 1)

/* The tag account "id" hashes to: the one the writer gives it unless another account of
 * the table has it already (then the next free one; see rota_client_tag_next). */
static inline uint64_t rota_client_tag(uint64_t id)
{
    uint64_t t = rota_hash_mix(id ^ 0x6c62272e07bb0142ull) & ~ROTA_CLIENT_COUNT_MASK;
    return t ? t : 1ull << ROTA_CLIENT_COUNT_BITS;
}

/* The tag after "tag", never 0: where the writer probes on a collision. */
static inline uint64_t rota_client_tag_next(uint64_t tag)
{
    uint64_t t = tag + (1ull << ROTA_CLIENT_COUNT_BITS);
    return t ? t : 1ull << ROTA_CLIENT_COUNT_BITS;
}

/* A lease as a choice carries it: the slot (index + 1) above bit 16, and below it the
 * entry (index + 1) or 0 for a call counted untracked. 0 = no lease. */
#define ROTA_LEASE_SLOT_SHIFT 16

struct rota_shm_client {
    alignas(64) _Atomic uint64_t own; /* state | pid << 32 (rota_client_own) */
    _Atomic uint64_t start;           /* the process's start time (clock ticks after boot) */
    _Atomic uint64_t untracked;       /* calls held that found no entry */
    _Atomic uint64_t reaped;          /* sup: calls this slot's previous owners left behind */
    _Atomic uint64_t ent[ROTA_CLIENT_ENTRIES]; /* tag | count; 0 = free */
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

/* Record one call held on the account tagged "tag" in slot "s" (index "slot"): returns
 * the lease to give back to rota_client_drop. */
static inline uint32_t rota_client_hold(struct rota_shm_client *s, uint32_t slot, uint64_t tag)
{
    uint32_t lease = (slot + 1) << ROTA_LEASE_SLOT_SHIFT;
    uint32_t i = (uint32_t)((tag >> ROTA_CLIENT_COUNT_BITS) % ROTA_CLIENT_ENTRIES);
    for (uint32_t k = 0; k < ROTA_CLIENT_PROBES; k++) {
        uint64_t w = rota_load(&s->ent[i]);
        for (;;) {
            uint64_t want;
            if (w == 0)
                want = tag | 1;
            else if ((w & ~ROTA_CLIENT_COUNT_MASK) == tag &&
                     (w & ROTA_CLIENT_COUNT_MASK) != ROTA_CLIENT_COUNT_MASK)
                want = w + 1;
            else
                break; /* another account's entry: probe on */
            if (atomic_compare_exchange_weak_explicit(
                    &s->ent[i], &w, want, memory_order_relaxed, memory_order_relaxed))
                return lease | (i + 1);
        }
        if (++i == ROTA_CLIENT_ENTRIES)
            i = 0;
    }
    rota_add(&s->untracked, 1);
    return lease;
}

/* One call held under "lease" on the account tagged "tag" ended; "s" is slot "slot". A
 * lease another slot gave (a choice carried over a fork into a child, which has a slot
 * of its own) is left alone, and so is an entry that holds another account or is already
 * at zero; the last call frees the entry in the same CAS. */
static inline void rota_client_drop(struct rota_shm_client *s, uint32_t slot, uint32_t lease,
                                    uint64_t tag)
{
    if (lease >> ROTA_LEASE_SLOT_SHIFT != slot + 1)
        return;
    uint32_t entry = lease & ((1u << ROTA_LEASE_SLOT_SHIFT) - 1);
    if (entry > ROTA_CLIENT_ENTRIES)
        return;
    bool tracked = entry != 0;
    _Atomic uint64_t *e = tracked ? &s->ent[entry - 1] : &s->untracked;
    uint64_t w = rota_load(e), want;
    do {
        uint64_t held = tracked ? w & ROTA_CLIENT_COUNT_MASK : w;
        if (held == 0 || (tracked && (w & ~ROTA_CLIENT_COUNT_MASK) != tag))
            return;
        want = !tracked || held > 1 ? w - 1 : 0;
    } while (!atomic_compare_exchange_weak_explicit(e, &w, want, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* Is the process "pid" that started at "start" still there (not a zombie)? A "start" of
 * 0 skips the start-time check. */
bool rota_client_alive(int32_t pid, uint64_t start);

/* This process's start time, as the slots record it. */
uint64_t rota_client_start_time(int32_t pid);

/* Supervisor: for every slot whose process is gone (a live slot's, a slot left, a
 * claiming slot's), report the calls it held as done on "m" (each entry's account found
 * by its tag), clear the slot and free it. "alive" decides (tests pass their own;
 * NULL = rota_client_alive). Returns the calls reclaimed. */
uint64_t rota_shm_clients_reap(struct rota_shm_clients *c, const struct rota_shm_map *m,
                               bool (*alive)(int32_t pid, uint64_t start));

/* Slots in use and calls held by live slots (for status). */
void rota_shm_clients_count(struct rota_shm_clients *c, uint32_t *live, uint64_t *held);

#endif
