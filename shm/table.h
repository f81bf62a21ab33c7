/*
 * table.h - create, publish, attach to and validate rota tables (private to rota).
 *
 * A reader maps the current generation of an instance with rota_shm_attach, which
 * validates every offset, size and index before handing out a map; after that, readers
 * index the sections through the map without further checks.
 *
 * The writer (the supervisor, tests and rota-bench) opens an instance with
 * rota_shm_writer_open, describes the table in plain C (struct rota_desc) and calls
 * rota_shm_publish: a new generation is built, hot state and snapshots are carried over
 * by account id, the generation is marked READY, the directory switched to it, and the
 * old generation marked SUPERSEDED and unlinked (processes that map it keep their map).
 */
#ifndef ROTA_SHM_TABLE_H
#define ROTA_SHM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "layout.h"
#include "rota_codes.h"

/* A mapped, validated generation. Section pointers are derived from the header once. */
struct rota_shm_map {
    void *base;
    size_t size;
    struct rota_shm_header *hdr;
    const struct rota_shm_provider *providers;
    const struct rota_shm_account *accounts;
    const struct rota_shm_route *routes;
    const struct rota_shm_tier *tiers;
    const struct rota_shm_member *members;
    const uint32_t *buckets;
    const struct rota_shm_index *index;
    const char *strings;
    const char *creds;
    struct rota_shm_snap *snaps;
    struct rota_shm_hot *hot;
    struct rota_shm_phot *phot;
    struct rota_shm_thot *thot;
    const struct rota_shm_ckey *ckeys;
    const uint32_t *ckroutes;
    struct rota_shm_khot *khot;
    uint32_t nproviders, naccounts, nroutes, ntiers, nmembers, nckeys;
};

/* ---- plain C description of a table, for rota_shm_publish ---- */

struct rota_desc_provider {
    const char *name, *kind;
    /* Where a call goes; NULL = "" (base_url, headers), a bearer token (auth_header), or
     * the kind's default (format and path: rota_shm_wire_format, rota_shm_wire_path). */
    const char *format, *base_url, *path;
    const char *auth_header, *auth_scheme; /* "Authorization" and "Bearer ", say */
    const char *headers;                   /* "Name: value\r\n" each */
    uint32_t fail_threshold, halfopen_permits, open_base_ms, open_cap_ms;
    uint32_t trial_timeout_ms; /* half-open trial deadline; 0 = 120 s */
    uint32_t cooldown_base_ms, cooldown_cap_ms, disable_for_s;
    double warn, crit, pessimistic; /* 0 = the seed's 0.70, 0.80, 0.85 */
};

struct rota_desc_window {
    enum rota_metric metric;
    uint32_t pool;
    uint64_t limit;
    struct rota_shm_reset reset; /* "tz" is ignored here; see tz below */
    const char *tz;              /* zone name; NULL = "UTC" */
};

struct rota_desc_account {
    uint64_t id; /* stable, non-zero, unique */
    const char *name;
    uint32_t provider;
    uint32_t weight;                   /* 0 = 1 */
    uint32_t rpm, tpm;                 /* 0 = no limit */
    uint32_t rpm_burst, tpm_burst;     /* 0 = the full minute's allowance */
    const char *pools[ROTA_MAX_POOLS]; /* pools[0] is account-wide; NULL = unused */
    uint32_t nwin;
    struct rota_desc_window win[ROTA_MAX_WINDOWS];
    const char *credential; /* may be NULL */
};

struct rota_desc_tier {
    enum rota_strategy strategy;
    uint32_t provider; /* ROTA_NONE: an explicit account set */
    uint32_t nmembers;
    const uint32_t *members;                     /* account indices */
    const uint32_t *pools;                       /* per member; NULL = pool 0 for all */
    double ceiling;                              /* 0 = the provider's crit (0.80) */
    float w_quota, w_recency, jitter, lru_share; /* 0 = defaults */
    uint32_t top_k, sample, recency_s;           /* 0 = defaults */
    const char *model;                           /* for every client model; NULL = pass */
    const char *const *models; /* pairs client, upstream, ..., NULL; may be NULL */
    /* What the tier's model can serve, for the dispatch pool: no tool definitions, no
     * images (false: it takes them), its context window in tokens (0 = not said). */
    bool no_tools, no_images;
    uint32_t context;
};

struct rota_desc_route {
    const char *name;
    const char *const *models; /* NULL-terminated; may be NULL */
    uint32_t ntiers;
    const struct rota_desc_tier *tiers;
    bool no_cross_format; /* the pool never translates its requests between wire formats */
};

/* A client key of the dispatch pool: its SHA-256 (never the key), a name for the access
 * log, the routes it may use and its own limits. */
struct rota_desc_client_key {
    const char *name; /* unique among the keys */
    uint8_t sha256[32];
    const uint32_t *routes; /* route indexes (rota_desc_key_routes); nroutes 0 = every one */
    uint32_t nroutes;
    uint32_t rpm, tpm; /* requests and tokens per minute; 0 = no limit */
};

struct rota_desc {
    uint32_t nproviders, naccounts, nroutes;
    const struct rota_desc_provider *providers;
    const struct rota_desc_account *accounts;
    const struct rota_desc_route *routes;
    uint64_t config_hash;
    uint64_t stale_after_ns; /* 0 = 30 s */
    /* Called on the new generation once state is carried over and before it is READY,
     * while no other process can see it (the supervisor restores its journal here); a
     * non-zero return abandons the generation and is returned by rota_shm_publish. */
    int (*prepare)(void *arg, struct rota_shm_map *m, char *err, size_t errlen);
    void *prepare_arg;
    /* The dispatch pool's client keys; none = the pool lets every request in. */
    uint32_t nkeys;
    const struct rota_desc_client_key *keys;
};

/* The route indexes of "d" that "names" (route names, or models a route serves) stand
 * for, into "out" (n of them): what a config fills rota_desc_client_key.routes with. A
 * name no route has: -ENOENT, "err" naming it. */
int rota_desc_key_routes(const struct rota_desc *d, const char *const *names, uint32_t n,
                         uint32_t *out, char *err, size_t errlen);

/* The wire format a provider of "kind" speaks unless its config says otherwise: "openai",
 * "anthropic", "gemini" or "code-assist". Never NULL. */
const char *rota_shm_wire_format(const char *kind);

/* The call's endpoint on the base URL of a provider of "kind" speaking "format" ("{model}"
 * stands for the model): the kind's own when it speaks its usual format (Copilot's
 * /chat/completions, OpenRouter's /api/v1/chat/completions), else the format's. */
const char *rota_shm_wire_path(const char *kind, const char *format);

/* ---- readers ---- */

/* Map the current generation of "instance" read-write (hot blocks are shared) and
 * validate it: owned by the supervisor uid its directory records (else -EPERM), its
 * header naming "instance" and the generation (else ROTA_ELAYOUT), then every offset.
 * On failure, "err" (if not NULL) says what and where. */
int rota_shm_attach(const char *instance, struct rota_shm_map *out, char *err, size_t errlen);

/* Map generation "gen" of "instance" whatever its state (for tools and tests). */
int rota_shm_attach_gen(const char *instance, uint64_t gen, struct rota_shm_map *out, char *err,
                        size_t errlen);

/* Validate "size" bytes at "base" as a table and fill "out". Checks magic, ABI, every
 * section's offset, size and element size, every index and string offset. */
int rota_shm_validate(void *base, size_t size, struct rota_shm_map *out, char *err,
                      size_t errlen);

void rota_shm_detach(struct rota_shm_map *m);

/* Current generation named by the instance's directory; 0 when none. */
int rota_shm_current(const char *instance, uint64_t *gen, char *err, size_t errlen);

/* The supervisor user this process trusts besides root and itself: ROTA_SUPERVISOR_USER
 * (a name or a uid), or (uid_t)-1 when unset. -EINVAL with "err" for an unknown name. */
int rota_shm_trusted_uid(uid_t *extra, char *err, size_t errlen);

/* What an instance's directory says: the current generation (0 = none), the pid and uid
 * of the supervisor that last opened it, and its control socket ("" = none). Refused
 * (-EPERM) unless the directory object is owned by the uid it records. */
struct rota_shm_dir_info {
    uint64_t generation;
    int32_t sup_pid;
    uid_t sup_uid;
    char control[108];
};
int rota_shm_dir_read(const char *instance, struct rota_shm_dir_info *out, char *err,
                      size_t errlen);

/* Index lookups: the slot value, or ROTA_NONE. */
uint32_t rota_shm_find(const struct rota_shm_map *m, uint32_t kind, uint64_t key);

/* Client keys (shm/ckeys.c): the key of "sha256" in the index, the first 8 bytes. */
static inline uint64_t rota_shm_ckey_word(const uint8_t sha256[32])
{
    uint64_t w;
    __builtin_memcpy(&w, sha256, sizeof(w));
    return w;
}

/* The client key whose SHA-256 is "sha256" (the whole hash compared, in constant time),
 * or ROTA_NONE. */
uint32_t rota_shm_ckey_find(const struct rota_shm_map *m, const uint8_t sha256[32]);

/* May client key "k" use route "route"? */
bool rota_shm_ckey_allows(const struct rota_shm_map *m, uint32_t k, uint32_t route);

static inline const char *rota_shm_str(const struct rota_shm_map *m, uint32_t off)
{
    return m->strings + off;
}

/* Element size of each section (enum rota_shm_section) in this build. */
extern const uint32_t rota_shm_elem_size[ROTA_SEC_COUNT];

/* Write a message to "err" (if any) and return "code": how shm reports failures. */
int rota_shm_fail(char *err, size_t n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Open the existing object "name" with shm_open "flags" and return its descriptor, its
 * stat in "st", if it is a regular file owned by "uid" ("whose", for the message: "the
 * supervisor"); else -EPERM and a message naming the object and its owner, or -errno. */
int rota_shm_open_owned_by(const char *name, int flags, uid_t uid, const char *whose,
                           struct stat *st, char *err, size_t errlen);

/* The writer's way to an object: create "name" with O_EXCL and "mode" ("*created" true),
 * or open the one there read-write if this process's uid owns it (a stale object of an
 * earlier supervisor, "*created" false). An object of any other owner is refused with
 * -EPERM, untouched, with a message naming it and its owner. Returns the descriptor. */
int rota_shm_open_own(const char *name, mode_t mode, bool *created, struct stat *st, char *err,
                      size_t errlen);

/* POSIX shm names: "/rota.<instance>" and "/rota.<instance>.g<gen>". */
int rota_shm_name(char *buf, size_t n, const char *instance, uint64_t gen);
bool rota_shm_instance_ok(const char *instance);

/* ---- the writer ---- */

struct rota_shm_writer;

/* Create the instance's directory and leases segment (O_EXCL), or take over those an
 * earlier supervisor of this uid left; -EPERM, naming the object and its owner, when one
 * is there owned by anyone else. "mode" is the segments' mode (0600). */
int rota_shm_writer_open(const char *instance, mode_t mode, struct rota_shm_writer **out,
                         char *err, size_t errlen);

/* Build and publish a new generation from "d". */
int rota_shm_publish(struct rota_shm_writer *w, const struct rota_desc *d, char *err,
                     size_t errlen);

/* How long the writer keeps adding what workers count on a superseded generation to the
 * current one, and how long a worker may go on using a superseded generation (while its
 * handle's mover maps the new one): less, so nothing a worker counts is lost. */
#define ROTA_SHM_SETTLE_NS 2000000000ull
#define ROTA_SHM_FOLLOW_NS 1000000000ull

/* Mark "m" superseded at monotonic "now" and wake every process's mover waiting on it. */
void rota_shm_supersede(struct rota_shm_map *m, uint64_t now);

/* A superseded "m" is no longer merged: workers must not count on it any more (its time
 * of supersession goes back to 0, so every follow window is over). */
void rota_shm_expire(struct rota_shm_map *m);

/* Add the counts workers made on superseded generations since they were last looked at
 * to the current one, and let go of those superseded for more than two seconds (or of
 * all of them with "all"). The supervisor calls it every second; publish and close do. */
void rota_shm_settle(struct rota_shm_writer *w, bool all);

/* Take over the live current generation (after a writer died): closes write sections a
 * dead writer left open, their figures rewritten consistent and pessimistic first (see
 * settle_torn in build.c). Returns -ENOENT when there is none. */
int rota_shm_adopt(struct rota_shm_writer *w, char *err, size_t errlen);

/* The writer's current generation (NULL before publish or adopt). */
struct rota_shm_map *rota_shm_writer_map(struct rota_shm_writer *w);

void rota_shm_heartbeat(struct rota_shm_writer *w, uint64_t mono_ns);

/* Give every segment of the instance (and those made later) to group "gid", mode as
 * opened (0660 for a group). 0 or -errno with "err". */
int rota_shm_writer_group(struct rota_shm_writer *w, gid_t gid, char *err, size_t errlen);

/* The directory names a generation that could not be adopted (damaged): mark it
 * SUPERSEDED if its header is readable, so workers on it move on, and unlink it. */
void rota_shm_abandon(struct rota_shm_writer *w);

/* The leases segment the writer created (shm/clients.h), for reaping. */
struct rota_shm_clients *rota_shm_writer_clients(struct rota_shm_writer *w);

/* Record the control socket's path in the directory, for rotactl. */
void rota_shm_set_control(struct rota_shm_writer *w, const char *path);

/* Close; with "unlink", remove the directory and the current generation. */
void rota_shm_writer_close(struct rota_shm_writer *w, bool unlink);

/* Write account "i"'s snapshot: begin, store fields with rota_store, end. */
static inline struct rota_shm_snap *rota_shm_snap_begin(struct rota_shm_map *m, uint32_t i);
static inline void rota_shm_snap_end(struct rota_shm_snap *s);

#include "seqlock.h"

static inline struct rota_shm_snap *rota_shm_snap_begin(struct rota_shm_map *m, uint32_t i)
{
    struct rota_shm_snap *s = &m->snaps[i];
    rota_seq_write_begin(&s->seq);
    return s;
}

static inline void rota_shm_snap_end(struct rota_shm_snap *s)
{
    rota_seq_write_end(&s->seq);
}

/* Inside a write section: set window "w" (keeps "scale" = 1 / limit in step). */
static inline void rota_shm_snap_window(struct rota_shm_snap *s, uint32_t w, uint64_t used,
                                        uint64_t limit, uint64_t base)
{
    rota_store(&s->win[w].used, used);
    rota_store(&s->win[w].base, base);
    rota_store(&s->win[w].limit, limit);
    rota_store(&s->win[w].scale, limit ? 1.0 / (double)limit : 0.0);
}

#endif
