/*
 * layout.h - the bytes of the shared account table.
 *
 * DESIGN
 * Two kinds of POSIX shared-memory object per instance:
 *
 *   /rota.<instance>            the directory: small, stable, names the current generation
 *   /rota.<instance>.g<N>       generation N: the whole table, shape immutable once READY
 *
 * A generation segment, every section 128-byte aligned, offsets from the segment start
 * (no pointers anywhere, so every process may map it at a different address):
 *
 *   +--------------------------------------------------------------+ 0
 *   | header: magic, ABI, section table, generation, state,       |
 *   |         supervisor pid/start, heartbeat, config hash         |
 *   +-------------------- immutable after READY -------------------+
 *   | providers[P]     breaker, cooldown, threshold settings       |
 *   | accounts[A]      384 B each: line 0 is all a scan reads;     |
 *   |                  then lease tag, pool names, window settings |
 *   | routes[R]        name, tiers, whether the pool may translate |
 *   | tiers[T]         strategy, ceiling, member range, what the   |
 *   |                  tier's model takes                          |
 *   | members[M]       account index + quota pool                  |
 *   | buckets[B]       large sticky tiers: members grouped by id hash  |
 *   | index[I]         open-addressing hash: account id, route key,|
 *   |                  client key (its SHA-256's first 8 bytes)    |
 *   | ckeys[K]         client keys: SHA-256, name, limits, routes  |
 *   | ckroutes[KR]     route indexes client keys may use           |
 *   | strings          NUL-terminated names                        |
 *   | creds            credentials (workers need them)             |
 *   +-------------------- supervisor, seqlock ---------------------+
 *   | snaps[A]         384 B each: seq, flags, window 0 on line 0; |
 *   |                  then windows 1..7, the observation stamp    |
 *   +-------------------- workers, single atomics -----------------+
 *   | hot[A]           256 B each: line 0 is all a selection reads |
 *   | phot[P]          provider breaker                            |
 *   | thot[T]          round-robin cursors                         |
 *   | khot[K]          64 B each: a client key's rate words, counts|
 *   +--------------------------------------------------------------+ total_size
 *
 * Field comments say who writes each field and how: "sup" is the supervisor (the only
 * writer of shape and snapshots), "any" is any attached process. Memory model: seqlock.h.
 */
#ifndef ROTA_SHM_LAYOUT_H
#define ROTA_SHM_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ROTA_SHM_MAGIC     0x314c425441544f52ull /* "ROTATBL1" */
#define ROTA_SHM_DIR_MAGIC 0x3152494441544f52ull /* "ROTADIR1" */
#define ROTA_SHM_ABI       7u

#define ROTA_MAX_WINDOWS 8  /* quota windows per account, over all its pools */
#define ROTA_MAX_POOLS   4  /* quota pools per account; pool 0 is account-wide */
#define ROTA_MAX_TIERS   8  /* tiers per route */
#define ROTA_MAX_NAME    64 /* instance, provider, account, route names */
#define ROTA_SAMPLE_MAX  64 /* candidates a tier may sample; tiers up to this are scanned */
#define ROTA_SHM_ALIGN   128
#define ROTA_NONE        UINT32_MAX

enum rota_gen_state {
    ROTA_GEN_INITIALIZING = 1,
    ROTA_GEN_READY = 2,
    ROTA_GEN_SUPERSEDED = 3,
};

enum rota_metric {
    ROTA_METRIC_REQUESTS = 0,
    ROTA_METRIC_TOKENS = 1,
    ROTA_METRIC_CREDITS = 2,
    ROTA_METRIC_FRACTION = 3, /* used/limit in millionths, limit 1000000 */
};

enum rota_reset_kind {
    ROTA_RESET_NONE = 0,    /* never resets by schedule (observations only) */
    ROTA_RESET_MINUTE = 1,  /* at second 0 of every minute */
    ROTA_RESET_HOUR = 2,    /* at minute "minute" of every hour */
    ROTA_RESET_DAY = 3,     /* at hour:minute every day */
    ROTA_RESET_WEEK = 4,    /* on weekday "wday" (0 = Sunday) at hour:minute */
    ROTA_RESET_MONTH = 5,   /* on day "mday" (clamped to the month's end) at hour:minute */
    ROTA_RESET_ROLLING = 6, /* a window of "period_s" seconds sliding with use */
};

enum rota_strategy {
    ROTA_STRAT_HYBRID = 0,
    ROTA_STRAT_GREEDY = 1,
    ROTA_STRAT_ROUND_ROBIN = 2,
    ROTA_STRAT_WEIGHTED = 3,
    ROTA_STRAT_STICKY = 4,
    ROTA_STRAT_LRU = 5,
    ROTA_STRAT_FILL_FIRST = 6,
    ROTA_STRAT_COUNT
};

/* Snapshot flags (struct rota_shm_snap.flags). */
#define ROTA_SNAP_HAS_DATA    0x1u /* at least one observation or configured limit */
#define ROTA_SNAP_DISABLED    0x2u /* supervisor disabled the account */
#define ROTA_SNAP_PESSIMISTIC 0x4u /* probe failed or stale: assume the pessimistic figure */

/* Reset schedule of a window: plain data, interpreted by core/quota. */
struct rota_shm_reset {
    uint8_t kind; /* enum rota_reset_kind */
    uint8_t wday; /* 0..6, Sunday first */
    uint8_t mday; /* 1..31 */
    uint8_t hour; /* 0..23 */
    uint8_t minute;
    uint8_t pad[3];
    uint32_t period_s; /* ROLLING only */
    uint32_t tz;       /* string offset of the zone name ("UTC" by default) */
};

struct rota_shm_window {
    uint8_t metric; /* enum rota_metric */
    uint8_t pool;   /* 0 = account-wide, counts every request */
    uint8_t pad[6];
    uint64_t limit; /* configured limit; 0 = learn from observations */
    struct rota_shm_reset reset;
};

struct rota_shm_provider {
    uint32_t name, kind;       /* string offsets */
    uint32_t fail_threshold;   /* consecutive failures that open the breaker */
    uint32_t halfopen_permits; /* trial calls, and successes needed to close */
    uint32_t open_base_ms;     /* first open period; doubles per trip */
    uint32_t open_cap_ms;      /* longest open period */
    uint32_t cooldown_base_ms; /* 429 without a hint: base, doubling per 429 in a row */
    uint32_t cooldown_cap_ms;
    uint32_t disable_for_s;    /* auth/billing disable; 0 = until re-enabled */
    uint32_t trial_timeout_ms; /* half-open trial deadline after the latest permit */
    double warn, crit;         /* status thresholds (used fractions) */
    double pessimistic;        /* the used fraction assumed without fresh data */
    /* Where a call goes (rota_target_of), string offsets; "" = none:
     *   format       wire format: openai, anthropic, gemini, code-assist
     *   base_url     the provider's URL, without the endpoint's path
     *   path         the call's endpoint after base_url; "{model}" stands for the model
     *   auth_header  the header that carries the key ("Authorization", "x-api-key")
     *   auth_scheme  what precedes the key in it ("Bearer ", "token ", "")
     *   headers      extra headers, "Name: value\r\n" each (no secret among them) */
    uint32_t format, base_url, path;
    uint32_t auth_header, auth_scheme, headers;
};

/* Per-account settings. Writer: sup, before READY; immutable after. Each record starts
 * on a cache line: line 0 holds everything a selection scan reads (eval's gates, the
 * windows' pools and metrics, the rate limits), the rest only commit, reports and tools. */
struct rota_shm_account {
    /* line 0: everything a selection scan reads */
    alignas(64) uint64_t id;  /* stable across generations */
    uint32_t provider;        /* provider index */
    uint16_t weight;          /* weighted random; >= 1 */
    uint8_t nwin;             /* windows in use */
    uint8_t npools;           /* pools in use, >= 1 */
    uint64_t req_interval_ns; /* GCRA emission interval per request; 0 = no RPM limit */
    uint64_t req_limit_ns;    /* GCRA bound: burst * interval */
    uint64_t tok_interval_ns; /* per token; 0 = no TPM limit */
    uint64_t tok_limit_ns;
    uint8_t win_mp[ROTA_MAX_WINDOWS]; /* per window: pool | metric << 4 */
    uint32_t name;                    /* string offset */
    uint32_t cred_len;
    /* the rest */
    uint32_t cred; /* offset into creds */
    uint32_t pad;
    /* The account's tag in lease entries (shm/clients.h): unique among the table's
     * accounts, kept by id across generations. Read by commit (once per selection) and
     * the reaper, never by a scan. */
    uint64_t lease_tag;
    uint32_t pool_name[ROTA_MAX_POOLS]; /* string offsets; pool 0 is "*" */
    struct rota_shm_window win[ROTA_MAX_WINDOWS];
};
_Static_assert(_Alignof(struct rota_shm_account) == 64 &&
                   sizeof(struct rota_shm_account) % 64 == 0,
               "each account record starts on a cache line");
_Static_assert(offsetof(struct rota_shm_account, win_mp) + ROTA_MAX_WINDOWS <= 64,
               "line 0 holds everything a scan reads of an account");
_Static_assert(offsetof(struct rota_shm_account, lease_tag) >= 64,
               "the lease tag stays off the line a scan reads");

struct rota_shm_route {
    uint32_t name;  /* string offset */
    uint32_t tier0; /* first tier */
    uint32_t ntiers;
    uint32_t models; /* string offset of a "\0"-separated list ended by an empty string */
    uint32_t flags;  /* ROTA_ROUTE_* */
};

/* Route flags: ROTA_ROUTE_NO_XLATE, the dispatch pool never translates a request of the
 * route between wire formats (cross_format: false). ROTA_ROUTE_FLAGS: every flag there is. */
#define ROTA_ROUTE_NO_XLATE 1u
#define ROTA_ROUTE_FLAGS    1u

struct rota_shm_tier {
    uint32_t provider; /* provider index, or ROTA_NONE for a mixed set */
    uint32_t member0, nmembers;
    uint8_t strategy; /* enum rota_strategy */
    uint8_t top_k;    /* hybrid: pick among the best k (3) */
    uint8_t sample;   /* candidates sampled when nmembers > 64 */
    uint8_t caps;     /* ROTA_TIER_NO_*: what its model cannot take (the dispatch pool) */
    double ceiling;   /* leave the tier at this used fraction (0.80) */
    float w_quota, w_recency; /* hybrid weights (0.6, 0.4) */
    float jitter;             /* hybrid jitter half-width (0.05) */
    float lru_share;          /* hybrid forced least-recently-used share (0.10) */
    uint32_t recency_s;       /* hybrid recency horizon (86400) */
    uint32_t nbuckets;        /* sticky over SAMPLE_MAX members: buckets, a power of 2 */
    uint32_t bucket0;         /* ... at buckets[bucket0]: nbuckets + 1 offsets, then the
                                 tier's member positions grouped by bucket */
    /* The model this tier's provider is asked for (rota_target_of), string offsets: "models"
     * a list of pairs "client\0upstream\0...\0" ended by "\0" (a client's model found there
     * is sent as its pair), else "model" unless "" (every model of the route), else the
     * client's model unchanged. */
    uint32_t model, models;
    uint32_t context; /* its model's context window in tokens; 0 = not said */
};

#define ROTA_TIER_NO_TOOLS  1u /* the tier's model takes no tool definitions (tools: false) */
#define ROTA_TIER_NO_IMAGES 2u /* ... no images (images: false) */
#define ROTA_TIER_CAPS      3u /* every bit there is */

/* Sticky tiers too large to scan hash each account by id into one of "nbuckets" buckets
 * (about 8 accounts each) and a key into a bucket, then rendezvous-hash the key over that
 * bucket: an account leaving moves only the keys that were on it. */
static inline uint32_t rota_shm_buckets_for(uint32_t nmembers)
{
    uint32_t b = 1;
    while (b * 8 < nmembers)
        b *= 2;
    return b;
}

struct rota_shm_member {
    uint32_t account;
    uint32_t pool; /* the account's pool this route uses */
};

/* A per-minute limit as the table stores it for GCRA (core/gcra.h): the emission interval
 * in whole ns, rounded up (so rounding only ever admits less), and the bound burst * T.
 * per_minute 0 = no limit; burst 0 = the full minute's allowance. */
static inline void rota_shm_rate(uint64_t per_minute, uint64_t burst, uint64_t *interval_ns,
                                 uint64_t *limit_ns)
{
    *interval_ns = *limit_ns = 0;
    if (per_minute == 0)
        return;
    *interval_ns = (60000000000ull + per_minute - 1) / per_minute;
    if (__builtin_mul_overflow(burst ? burst : per_minute, *interval_ns, limit_ns))
        *limit_ns = UINT64_MAX / 2;
}

/* Hash index slot: keys are account ids and route keys (hash of a route or model name). */
#define ROTA_IDX_EMPTY   0u
#define ROTA_IDX_ACCOUNT 1u
#define ROTA_IDX_ROUTE   2u
#define ROTA_IDX_CKEY    3u /* key: rota_shm_ckey_word of a client key's SHA-256 */
struct rota_shm_index {
    uint64_t key;
    uint32_t kind;
    uint32_t value;
};

/* Per-account snapshot. Writer: sup, under "seq". Readers: any, seqlock protocol.
 * Each record starts on a cache line, and line 0 holds all a scan reads of an account
 * with one window (most have one): the sequence, the flags, the disable deadline and the
 * first window whole. Later windows and the observation stamp follow on lines of their
 * own, so no write to one record touches the line of the next one's sequence. */
struct rota_shm_snap {
    alignas(64) _Atomic uint32_t seq;
    _Atomic uint32_t flags;  /* ROTA_SNAP_* */
    _Atomic uint32_t reason; /* why disabled or pessimistic (ROTA_WHY_*) */
    _Atomic uint32_t pad;
    _Atomic uint64_t disabled_until; /* monotonic ns; 0 with DISABLED = until enabled */
    struct {
        _Atomic uint64_t used;    /* observed use at "base" */
        _Atomic uint64_t base;    /* the hot usage counter's value when "used" was true */
        _Atomic double scale;     /* 1 / limit, 0 when unknown: no division when reading */
        _Atomic uint64_t limit;   /* observed or configured limit; 0 = unknown */
        _Atomic int64_t reset_at; /* wall-clock ns of the next reset; 0 = unknown */
    } win[ROTA_MAX_WINDOWS];
    _Atomic int64_t probe_at; /* wall-clock ns of the latest observation */
};
_Static_assert(_Alignof(struct rota_shm_snap) == 64 && sizeof(struct rota_shm_snap) % 64 == 0,
               "each snapshot starts on a cache line");
_Static_assert(offsetof(struct rota_shm_snap, win) +
                       sizeof(((struct rota_shm_snap *)0)->win[0]) <=
                   64,
               "line 0 holds the sequence, the flags and the first window whole");
_Static_assert(offsetof(struct rota_shm_snap, probe_at) >= 64,
               "the observation stamp stays off line 0");

/* Per-account hot block. Writers: any, one atomic operation per word.
 *   line 0: all a selection scan reads (gates, rate words, pool 0's usage); a selection
 *           writes only here: last use, the rate words, the request count;
 *   line 1: what a report writes besides the token count (calls done, latency, TPM
 *           given back) and the rare-path counters; a selection under a TPM limit reads
 *           tok_back here;
 *   line 2: usage of pools 1..3, trial count;  line 3: the latest passive observation. */
struct rota_shm_hot {
    alignas(ROTA_SHM_ALIGN) _Atomic uint64_t last_used; /* any: store, monotonic ns */
    _Atomic uint64_t cooldown_until; /* any: atomic max; sup: store 0 on reset */
    _Atomic uint64_t breaker;        /* any: CAS (core/breaker) */
    _Atomic uint64_t gcra_req;       /* any: CAS, theoretical arrival time ns */
    _Atomic uint64_t gcra_tok;       /* any: CAS */
    _Atomic uint64_t disabled;       /* any: store (reason | until_ms << 8); sup: store 0 */
    /* usage since the account entered the table: requests (counted when selected, so
     * other processes see a call while it is in flight) and tokens (when reported); pool
     * 0 counts every call. Snapshots keep a base to subtract. any: fetch_add */
    _Atomic uint64_t use0[2];

    alignas(
        64) _Atomic uint64_t done; /* any: fetch_add on report; in flight = use0[0] - done */
    _Atomic uint32_t consec_fail;  /* any: fetch_add on failure, store 0 on success */
    _Atomic uint32_t consec_429;   /* any: fetch_add on 429, store 0 on success */
    _Atomic uint64_t latency_ns;   /* any: load + store, moving average of 1/8 per report */
    /* statistics, any: fetch_add. Successes are done minus the others. */
    _Atomic uint64_t failures, rate_limited, auth_failures;
    /* TPM time (ns of gcra_tok) given back by reports and lost commits, so that a report
     * can tell how far other refunds have moved its admission down (core/gcra.h
     * rota_gcra_refund). any: fetch_add, tok_giving before the CAS on gcra_tok that
     * gives it back, tok_back after it; a selection reads tok_back before admitting */
    _Atomic uint64_t tok_giving, tok_back;

    alignas(64) _Atomic uint64_t use_pool[ROTA_MAX_POOLS - 1][2]; /* pools 1.. */
    _Atomic uint64_t halfopen, neutral; /* statistics as above (trials, other 4xx) */

    alignas(64) _Atomic uint64_t obs[8]; /* reserved: latest passive observation */
};

_Static_assert(sizeof(struct rota_shm_hot) == 256, "a hot block is four cache lines");
_Static_assert(offsetof(struct rota_shm_hot, tok_back) < 128, "tok_back is on line 1");

/* The usage counter of "pool" and "metric" (0 requests, 1 tokens). */
static inline _Atomic uint64_t *rota_shm_usage(struct rota_shm_hot *h, uint32_t pool,
                                               uint32_t metric)
{
    return pool == 0 ? &h->use0[metric] : &h->use_pool[pool - 1][metric];
}

/* Per-provider hot block: a breaker for the provider as a whole. Writers: any. Every
 * selection reads the breaker; the failure streak, written on reports, has a line of its
 * own so that writing it does not take that line from every selector. */
struct rota_shm_phot {
    alignas(ROTA_SHM_ALIGN) _Atomic uint64_t breaker; /* any: CAS (core/breaker) */
    alignas(64) _Atomic uint32_t consec_fail;         /* any: fetch_add on failure, store 0 */
    _Atomic uint32_t pad;
};

/* Per-tier hot block. Writers: any. */
struct rota_shm_thot {
    alignas(ROTA_SHM_ALIGN) _Atomic uint64_t cursor; /* round-robin: fetch_add */
};

/* A client key of the dispatch pool (DESIGN.md section 7): only its SHA-256 is here.
 * Writer: sup, before READY; immutable after. Found through the index (ROTA_IDX_CKEY),
 * then its whole hash compared. */
struct rota_shm_ckey {
    uint8_t sha256[32];
    uint32_t name;    /* string offset */
    uint32_t route0;  /* its allowed routes: ckroutes[route0 .. route0 + nroutes) */
    uint32_t nroutes; /* 0 = every route */
    uint32_t pad;
    uint64_t req_interval_ns, req_limit_ns; /* GCRA of its RPM (rota_shm_rate); 0 = none */
    uint64_t tok_interval_ns, tok_limit_ns; /* ... of its TPM */
};

/* A client key's hot words, a cache line each. Writers: any, one atomic operation per
 * word; the same protocol as an account's gcra_req, gcra_tok, tok_giving and tok_back
 * (core/gcra.h). Carried to the next generation by SHA-256 (shm/carry.c). */
struct rota_shm_khot {
    alignas(64) _Atomic uint64_t gcra_req; /* any: CAS, theoretical arrival time ns */
    _Atomic uint64_t gcra_tok;             /* any: CAS */
    _Atomic uint64_t tok_giving, tok_back; /* any: fetch_add (rota_gcra_refund) */
    /* statistics since the key entered the table, any: fetch_add */
    _Atomic uint64_t admitted; /* requests let through */
    _Atomic uint64_t refused;  /* 403: a route the key may not use */
    _Atomic uint64_t limited;  /* 429: its RPM or TPM */
    _Atomic uint64_t tokens;   /* reported by the requests it let through */
};
_Static_assert(sizeof(struct rota_shm_khot) == 64, "a client key's hot words: one line");

enum rota_shm_section {
    ROTA_SEC_PROVIDERS,
    ROTA_SEC_ACCOUNTS,
    ROTA_SEC_ROUTES,
    ROTA_SEC_TIERS,
    ROTA_SEC_MEMBERS,
    ROTA_SEC_BUCKETS,
    ROTA_SEC_INDEX,
    ROTA_SEC_CKEYS,
    ROTA_SEC_CKROUTES,
    ROTA_SEC_STRINGS,
    ROTA_SEC_CREDS,
    ROTA_SEC_SNAPS,
    ROTA_SEC_HOT,
    ROTA_SEC_PHOT,
    ROTA_SEC_THOT,
    ROTA_SEC_KHOT,
    ROTA_SEC_COUNT
};

struct rota_shm_section_desc {
    uint64_t off;   /* from the segment start, ROTA_SHM_ALIGN aligned */
    uint64_t size;  /* bytes */
    uint32_t count; /* elements (bytes for strings and creds) */
    uint32_t elem;  /* element size; 1 for strings and creds */
};

struct rota_shm_header {
    uint64_t magic;       /* ROTA_SHM_MAGIC */
    uint32_t abi;         /* ROTA_SHM_ABI */
    uint32_t header_size; /* sizeof(struct rota_shm_header) */
    uint64_t total_size;  /* bytes of the segment */
    uint64_t generation;  /* N of /rota.<instance>.gN */
    uint64_t config_hash;
    uint64_t nonce;          /* random, different for every segment ever built */
    int64_t created_at;      /* wall-clock ns */
    uint64_t stale_after_ns; /* heartbeat older than this: workers turn pessimistic */
    char instance[ROTA_MAX_NAME];
    struct rota_shm_section_desc sec[ROTA_SEC_COUNT];
    uint32_t index_mask; /* index slots - 1, a power of two minus one */
    uint32_t pad0;
    alignas(64) _Atomic uint32_t state; /* sup: release store; READY last of all */
    _Atomic int32_t sup_pid;            /* sup */
    _Atomic uint64_t sup_start;         /* sup: wall-clock ns the supervisor started */
    _Atomic uint64_t heartbeat;         /* sup: monotonic ns, relaxed store */
    /* sup: monotonic ns this generation was superseded, stored before the state; workers
     * keep using it for less than the writer keeps merging it, then fail closed */
    _Atomic uint64_t superseded_at;
};

/* The directory object. Writer: sup. Readers trust it, and the segments it leads to,
 * only when the object is owned by the uid it records (shm/attach.c). */
struct rota_shm_dir {
    uint64_t magic; /* ROTA_SHM_DIR_MAGIC */
    uint32_t abi;
    uint32_t size; /* sizeof(struct rota_shm_dir) */
    char instance[ROTA_MAX_NAME];
    char control[108]; /* sup: the control socket's path, set before any generation */
    uint32_t sup_uid;  /* sup: its uid, before the magic; owns every object of the instance */
    alignas(64) _Atomic uint64_t generation; /* current generation; 0 = none yet */
    _Atomic int32_t sup_pid;
    _Atomic uint32_t pad;
};
_Static_assert(offsetof(struct rota_shm_dir, sup_uid) == 188 &&
                   offsetof(struct rota_shm_dir, generation) == 192 &&
                   sizeof(struct rota_shm_dir) == 256,
               "the supervisor's uid fills a gap: the directory's layout is unchanged");

#endif
