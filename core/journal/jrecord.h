/*
 * jrecord.h - journal records: what of an account's state survives a restart, and its
 * msgpack form (private to rota).
 *
 * DESIGN
 * The durable state of an account is everything the table would lose with its shared
 * memory and could not learn again at once: each window's use, limit and reset time,
 * the cooldown, the breaker, the disables, the call counters, when it was last observed.
 * Never a credential, never a name that could hold one: accounts are keyed by their
 * stable id, providers by name. Times in a record are wall-clock ns (the monotonic
 * clock restarts with the host); rota_jstate_capture and rota_jstate_apply convert.
 *
 * A record is one msgpack array: [version, id, type, seq, at, body..., mac]. "id" is the
 * instance's identity (16 random bytes made with its state directory, rota_jident) and
 * "mac" SipHash-2-4-128 (core/journal/siphash.h), keyed with the instance's secret, of
 * every byte of the record before it: whoever can write Redis, or the journal's bytes
 * without the state directory's identity file, cannot make a record this instance takes.
 * The decoder looks at the id first, so a record of another instance (two rotads sharing
 * a Redis prefix by mistake) is told apart from a forged or damaged one; neither is
 * taken. Version 1 records ([1, type, seq, at, body...]: no id, no MAC) are what rota
 * wrote before; the decoder takes them only when its caller says they come from the
 * local file (ROTA_JREC_FROM_FILE), whose owner and mode were checked, never from Redis;
 * the first snapshot rewrites the file in version 2.
 *
 * The decoder refuses a version newer than ROTA_JREC_VERSION and ignores trailing fields
 * a newer writer of the same version added (before the MAC); it reads any bytes without
 * allocating and bounds every length by the record, so it may be fed anything
 * (tests/fuzz/fuzz_journal.c does). It checks the MAC before it reads the body.
 *
 * Each account record carries the account's whole durable state plus "what" changed
 * since its previous record: replaying is idempotent and the latest record per id wins.
 */
#ifndef ROTA_CORE_JRECORD_H
#define ROTA_CORE_JRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"

#define ROTA_JREC_VERSION 2
#define ROTA_JREC_MAX     1024 /* bytes: an encoded record never exceeds this */

#define ROTA_JID_LEN  16 /* bytes of an instance's identity */
#define ROTA_JKEY_LEN 16 /* bytes of its secret: SipHash's key */
#define ROTA_JMAC_LEN 16 /* bytes of a record's MAC */

/* An instance's identity and the key of its records' MACs (rota_jident reads or makes
 * them). The secret stays in the process: never logged, journaled, sent or shown. */
struct rota_jkey {
    uint8_t id[ROTA_JID_LEN];
    uint8_t secret[ROTA_JKEY_LEN];
};

/* "id" in hexadecimal (2 * ROTA_JID_LEN + 1 bytes) into "buf". */
const char *rota_jid_hex(const uint8_t id[ROTA_JID_LEN], char *buf, size_t n);

enum rota_jrec_type {
    ROTA_JREC_ACCOUNT = 1,    /* an account's durable state */
    ROTA_JREC_PROVIDER = 2,   /* a provider's breaker */
    ROTA_JREC_GENERATION = 3, /* the table's generation and config */
    ROTA_JREC_SNAPSHOT = 4,   /* a complete state follows: "count" account records */
};
const char *rota_jrec_type_name(unsigned type);

/* What changed since an account's previous record (rota_jaccount.what). */
#define ROTA_JCHG_USAGE    0x01u /* a window's use, or the call counters */
#define ROTA_JCHG_OBSERVED 0x02u /* a window's limit or reset time, or the probe time */
#define ROTA_JCHG_COOLDOWN 0x04u
#define ROTA_JCHG_BREAKER  0x08u /* state or trips */
#define ROTA_JCHG_DISABLE  0x10u /* disabled by an operator or after an auth/billing error */
#define ROTA_JCHG_ENABLE   0x20u
#define ROTA_JCHG_RESET    0x40u /* a window's use went back: a reset */
#define ROTA_JCHG_FULL     0x80u /* no previous record: part of a snapshot or a first pass */
/* "usage,cooldown,..." for "what" into "buf". */
const char *rota_jchg_names(uint32_t what, char *buf, size_t n);

struct rota_jwin {
    uint8_t metric, pool; /* which window of the account (matched on restore) */
    uint64_t used;        /* observed plus counted since */
    uint64_t limit;       /* 0 = unknown */
    int64_t reset_at;     /* wall ns of the next reset; 0 = unknown */
    uint8_t reset_kind;   /* enum rota_reset_kind, matched on restore too */
    uint32_t period_s;    /* ROLLING's period */
};

struct rota_jbreaker {
    uint8_t state;   /* enum rota_breaker_state */
    uint8_t trips;   /* escalation */
    int64_t until;   /* wall ns: end of OPEN; 0 = none */
    uint32_t consec; /* consecutive failures */
};

struct rota_jaccount {
    uint64_t id;
    uint32_t what;          /* ROTA_JCHG_* */
    uint32_t flags;         /* snapshot flags kept: ROTA_SNAP_DISABLED | ROTA_SNAP_HAS_DATA */
    uint32_t reason;        /* enum rota_off of a supervisor disable */
    int64_t disabled_until; /* wall ns; 0 = until enabled */
    uint32_t wdisable;      /* a worker's disable (enum rota_off: auth, billing); 0 = none */
    int64_t wdisable_until; /* wall ns; 0 = until enabled */
    int64_t cooldown_until; /* wall ns; 0 = none */
    uint32_t consec_429;    /* 429s in a row: the cooldown's escalation */
    struct rota_jbreaker breaker;
    uint64_t requests, done, tokens, failures, rate_limited, auth_failures;
    int64_t probe_at;  /* wall ns of the latest observation; 0 = none */
    int64_t last_used; /* wall ns of the latest selection; 0 = never */
    uint32_t nwin;
    struct rota_jwin win[ROTA_MAX_WINDOWS];
};

struct rota_jprovider {
    char name[ROTA_MAX_NAME];
    struct rota_jbreaker breaker;
};

/* (No config hash: the table's covers the credentials, and nothing derived from a
 * credential is journaled.) */
struct rota_jgeneration {
    uint64_t generation;
    uint32_t naccounts;
};

struct rota_jrec {
    uint32_t version;         /* as read: 1 (no id, no MAC) or 2; encode writes 2 */
    uint8_t id[ROTA_JID_LEN]; /* as read: the writer's identity (zero in version 1) */
    uint32_t type;            /* enum rota_jrec_type */
    uint64_t seq;             /* increasing within one writer's run */
    int64_t at;               /* wall ns the record was made */
    union {
        struct rota_jaccount acc;
        struct rota_jprovider prov;
        struct rota_jgeneration gen;
        uint32_t count; /* SNAPSHOT */
    } u;
};

/* Encode "r" as a version 2 record of the instance "k" (its id, a MAC with its secret;
 * r->version and r->id are not read) into "buf" (ROTA_JREC_MAX bytes suffice). Returns the
 * length, or 0 when "cap" is too small. */
size_t rota_jrec_encode(const struct rota_jrec *r, const struct rota_jkey *k, void *buf,
                        size_t cap);

/* rota_jrec_decode's "flags". */
#define ROTA_JREC_FROM_FILE                                                                    \
    0x1u /* the bytes come from rotad's own journal file (its                                  \
            owner and mode checked): version 1 is taken too */

/* Decode one record of exactly "len" bytes, written by the instance "k". 0, or with
 * "err" saying what was wrong (never the record's content):
 *   -EINVAL   not a record: what and at which byte
 *   -ENOTSUP  a newer version or an unknown type
 *   -EXDEV    a record of another instance (r->id holds its identity)
 *   -EBADMSG  this instance's id but a MAC that does not match: forged or corrupt
 *   -EPERM    version 1 (no identity, no MAC) without ROTA_JREC_FROM_FILE */
int rota_jrec_decode(const void *buf, size_t len, const struct rota_jkey *k, unsigned flags,
                     struct rota_jrec *r, char *err, size_t n);

/* CRC-32C (Castagnoli) of "n" bytes, continuing from "crc" (start with 0). */
uint32_t rota_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- the table side: capture and restore (the supervisor's thread for apply) ---- */

/* Offset from the monotonic clock to the wall clock (wall - mono, ns), read once. */
int64_t rota_jclock_offset(void);

/* Account "a"'s durable state from "m" ("what" left 0). Monotonic times are converted
 * with "offset" (rota_jclock_offset). Returns -EBUSY when the snapshot stayed under
 * rewrite (try again later). */
int rota_jstate_capture(const struct rota_shm_map *m, uint32_t a, int64_t offset,
                        struct rota_jaccount *out);
void rota_jstate_capture_provider(const struct rota_shm_map *m, uint32_t p, int64_t offset,
                                  struct rota_jprovider *out);

/* "what" changed from "prev" to "cur" (ROTA_JCHG_*; 0 when nothing durable changed). */
uint32_t rota_jstate_diff(const struct rota_jaccount *prev, const struct rota_jaccount *cur);
bool rota_jstate_provider_same(const struct rota_jprovider *a, const struct rota_jprovider *b);

/* Write a saved state into account "a" of "m": windows matched by position, metric and
 * pool; times that have passed are dropped; counters are added to those of "m", and
 * nothing is counted as in flight. Only the table's writer may call it. */
void rota_jstate_apply(struct rota_shm_map *m, uint32_t a, const struct rota_jaccount *s,
                       int64_t offset);
void rota_jstate_apply_provider(struct rota_shm_map *m, uint32_t p,
                                const struct rota_jprovider *s, int64_t offset);

#endif
