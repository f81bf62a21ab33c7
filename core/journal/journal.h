/*
 * journal.h - the journal: every durable change of the table, to a file and to Redis,
 * and recovery from them at start (private to rota).
 *
 * DESIGN
 * Workers change the table with single atomics and never talk to the supervisor, so
 * changes are found where they land: the journal thread maps the table as any reader
 * does and, every "scan" interval (100 ms) or at once when nudged, captures each
 * account's durable state (core/journal/jrecord.h) and compares it with what it last recorded.
 * Each account that changed becomes one record saying what changed; the records of a
 * pass go to the file (core/journal/jfile.h, synced by policy) and are queued for Redis
 * (core/journal/jredis.h, which never makes the journal wait). A change is thus durable within
 * one scan interval plus the fsync policy's delay; a call rate of millions per second
 * costs at most one record per account per pass.
 *
 * The file is rewritten as a snapshot (all accounts, then appends) when rotad starts,
 * every snapshot_every, and when it reaches half of max_bytes, so it stays bounded.
 *
 * Recovery (rota_journal_recover) reads the file (snapshot, then the records after it;
 * the last record per account wins) and Redis's state hash, takes each account from the
 * one whose record of it is newer, and writes it into a new table by account id. Records of
 * accounts no longer configured are counted and left. Every record is checked against the
 * instance's identity and secret (core/journal/jrecord.h): those of another instance, forged
 * or damaged ones, and version 1 records from Redis are counted and never restored.
 */
#ifndef ROTA_CORE_JOURNAL_H
#define ROTA_CORE_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "jfile.h"
#include "jredis.h"
#include "table.h"

#define ROTA_JOURNAL_SCAN_NS (100 * 1000000ull)

struct rota_journal_opts {
    const char *instance;
    const struct rota_config_journal *cfg;
    const char *redis_password;  /* resolved; NULL = none */
    const struct rota_jkey *key; /* the instance's identity and secret (rota_jident):
                                    records are signed and checked with it; copied */
    uint64_t scan_ns;            /* 0 = ROTA_JOURNAL_SCAN_NS */
};

struct rota_journal_stats {
    uint64_t passes, changes, records;
    uint64_t last_pass_ns; /* how long the last pass took, capture to write */
    uint64_t max_pass_ns;
    uint64_t lag_ns;           /* age of the oldest change not yet written to the file */
    uint64_t file_queue_bytes; /* framed records waiting for the file */
    uint64_t file_dropped;     /* records a failed write dropped (rewritten by a snapshot) */
    int64_t last_change_at;    /* wall ns of the newest change recorded */
    uint64_t generation;       /* of the map it scans */
    bool file_enabled, redis_enabled;
    char file_path[256];
    enum rota_fsync fsync; /* as the journal runs (a reload does not change it) */
    uint64_t max_bytes;
    struct rota_jfile_stats file;
    struct rota_jredis_stats redis;
};

struct rota_journal;

/* Start the journal thread on the instance's current generation. Its first pass writes
 * a snapshot of the whole table. 0, or -errno with "err". */
int rota_journal_start(const struct rota_journal_opts *o, struct rota_journal **out, char *err,
                       size_t n);

/* Run a pass now rather than at the next interval (after an operator's action). */
void rota_journal_nudge(struct rota_journal *j);

void rota_journal_stats(struct rota_journal *j, struct rota_journal_stats *out);

/* A last pass, a sync, at most a second for Redis to take what is queued; then stop.
 * NULL is fine. */
void rota_journal_stop(struct rota_journal *j);

/* Where a recovered state came from. */
struct rota_journal_restore {
    char source[32]; /* "file", "redis", "file+redis" (each account from the one with
                        its newer record), or "" when nothing was restored */
    uint32_t from_file, from_redis; /* accounts restored from each */
    int64_t at;                     /* wall ns of its newest record */
    uint32_t accounts;              /* restored into the table */
    uint32_t providers;
    uint32_t unknown;          /* records of accounts the table does not have */
    int64_t file_at, redis_at; /* newest record of each; 0 = none or unread */
    struct rota_jfile_scan file;
    char redis_error[200]; /* why Redis could not be read; "" = fine or not configured */
    /* Records in Redis's hash refused (never restored): of another instance, with a MAC
     * that does not match (forged or corrupt), of version 1 (no identity: the file's
     * alone are taken), or not records at all. */
    uint32_t redis_foreign, redis_forged, redis_v1, redis_bad;
    uint8_t redis_foreign_id[ROTA_JID_LEN]; /* the first foreign record's identity */
};

/* Restore the newer of the file's and Redis's record of each account into "m" (the supervisor's
 * new generation). 0 (also when there was nothing to restore: out->source is ""), or -errno
 * with "err" when the file cannot be used (not a journal, unreadable): rotad refuses to start
 * rather than overwrite it. */
int rota_journal_recover(const struct rota_journal_opts *o, struct rota_shm_map *m,
                         struct rota_journal_restore *out, char *err, size_t n);

#endif
