/*
 * seqlock.h - the memory model of the shared table, in one place.
 *
 * DESIGN
 * Everything that more than one process touches in the table is an _Atomic object and
 * every access names its memory order; nothing is defaulted to seq_cst by accident, and
 * nothing racing is ever read with a plain load or memcpy (that would be undefined
 * behaviour, and compilers do exploit it).
 *
 * Snapshots (one writer: the supervisor) use a sequence lock in the C11 form of DPDK's
 * rte_seqcount:
 *
 *   writer                                   reader
 *   ------                                   ------
 *   s = seq (relaxed)                        s1 = seq (acquire); odd -> retry
 *   seq = s + 1 (relaxed)                    fields (relaxed loads)
 *   fence(release)                           fence(acquire)
 *   fields (relaxed stores)                  s2 = seq (relaxed)
 *   seq = s + 2 (release)                    s1 == s2 -> the fields are one snapshot
 *
 * The release fence after the odd store keeps the field stores from becoming visible
 * before the odd value; the acquire fence in the reader keeps the field loads from
 * moving after the re-load of seq. A reader never waits for a writer: it makes a bounded
 * number of attempts and reports "busy", so a writer killed inside its write section
 * (sequence left odd) costs readers a few loads, never a hang. Whoever next owns the
 * table rewrites such a record's fields while its sequence is still odd (they may mix
 * old and new values: a new "used" with an old "scale") and only then closes the
 * section (rota_seq_repair); closing it alone would publish the mix.
 *
 * Hot state (written by any worker) is never seqlocked: each word is changed by a single
 * atomic operation (fetch_add, CAS, store) and read relaxed, so a process killed at any
 * instruction leaves every word valid.
 */
#ifndef ROTA_SHM_SEQLOCK_H
#define ROTA_SHM_SEQLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* How often a reader tries before it reports the record busy. */
#define ROTA_SEQ_MAX_TRIES 64

#define rota_load(p)         atomic_load_explicit((p), memory_order_relaxed)
#define rota_store(p, v)     atomic_store_explicit((p), (v), memory_order_relaxed)
#define rota_add(p, v)       atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define rota_sub(p, v)       atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define rota_load_acq(p)     atomic_load_explicit((p), memory_order_acquire)
#define rota_store_rel(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define rota_cas(p, expp, v)                                                                   \
    atomic_compare_exchange_weak_explicit((p), (expp), (v), memory_order_acq_rel,              \
                                          memory_order_relaxed)

/* Writer: open a write section. Only one writer per sequence, ever. */
static inline void rota_seq_write_begin(_Atomic uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

/* Writer: close the write section opened by rota_seq_write_begin. */
static inline void rota_seq_write_end(_Atomic uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, s + 1, memory_order_release);
}

/* Reader: start an attempt; returns false while a write is in progress. */
static inline bool rota_seq_read_begin(_Atomic uint32_t *seq, uint32_t *start)
{
    *start = atomic_load_explicit(seq, memory_order_acquire);
    return (*start & 1u) == 0;
}

/* Reader: true when the loads since rota_seq_read_begin saw one consistent snapshot. */
static inline bool rota_seq_read_ok(_Atomic uint32_t *seq, uint32_t start)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(seq, memory_order_relaxed) == start;
}

/* New owner of a table: close a write section a dead writer left open. Returns true if
 * it had to. The fields may hold a mix of old and new values: the caller rewrites them
 * before, never after, closing the section. */
static inline bool rota_seq_repair(_Atomic uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
    if ((s & 1u) == 0)
        return false;
    atomic_store_explicit(seq, s + 1, memory_order_release);
    return true;
}

/* Raise *p to at least v (atomic max). Returns the value now stored. */
static inline uint64_t rota_max_u64(_Atomic uint64_t *p, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
    while (cur < v && !rota_cas(p, &cur, v))
        ;
    return cur < v ? v : cur;
}

#endif
