/*
 * handle.h - a librota handle and what its threads share (private to workers/).
 *
 * librota.c holds the calls (attach, select, report, ...) and the reader slots; mover.c
 * the handle's own thread, which follows reloads, lets retired generations go, applies
 * reports made while behind and reads answers' bodies.
 */
#ifndef ROTA_WORKERS_HANDLE_H
#define ROTA_WORKERS_HANDLE_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clients.h"
#include "rota.h"
#include "select.h"

#define ROTA_HIDDEN __attribute__((visibility("hidden")))

#define MOVER_POLL_MS       50
#define READERS_MAX         256
#define PASSIVE_CELLS       8
#define PASSIVE_HEADERS_MAX 8192
#define PASSIVE_BODY_MAX    (24 * 1024)
#define PENDING_MAX         64
#define RECENT_MAX          4 /* retired generations kept mapped for rota_target_of */

#define TLS_IE __attribute__((tls_model("initial-exec")))

struct gen {
    struct rota_shm_map map;
    uint64_t generation;
    struct gen *older;
    _Atomic uint64_t inside; /* selections in it by threads without a reader slot */
    uint64_t retired_at;     /* monotonic ns it stopped being current (the mover's) */
};

/* A thread that selects: the generation it is inside (NULL between calls). */
struct reader {
    alignas(64) _Atomic(struct gen *) using;
    _Atomic uint32_t taken;
    alignas(64) struct rota_sel_cache cache;
};

enum { CELL_FREE, CELL_FILLING, CELL_READY };

/* A report made while the handle was behind: the mover applies it once it follows. */
struct pending {
    _Atomic uint32_t state; /* CELL_* */
    rota_choice c;
    struct rota_outcome_in in;
    uint64_t now, rnd;
};

/* An answer with a body, waiting for the mover to parse it. */
struct passive_cell {
    _Atomic uint32_t state;
    int status;
    uint32_t headers_len, body_len;
    uint64_t account_id;
    uint64_t now; /* monotonic and wall-clock ns of the report */
    int64_t wall;
    char headers[PASSIVE_HEADERS_MAX];
    char body[PASSIVE_BODY_MAX];
};

struct rota {
    struct rota *next_handle; /* all handles of the process, for fork (under handles_lock) */
    char instance[ROTA_MAX_NAME];
    _Atomic(struct gen *) cur;
    pthread_mutex_t lock; /* the mover's work, fork and detach */
    struct gen *retired;  /* newest first; guarded by "lock" */
    struct gen *spare;    /* unmapped, for the next move: a gen is never freed while a
                             thread without a slot may still touch its "inside" */
    int move_rc;          /* the latest failed move, and what failed; "lock" */
    char move_msg[200];
    _Atomic int behind; /* move_rc, for the select path */
    /* The latest retired generations, for ROTA_SHM_FOLLOW_NS after each was retired, so
     * that rota_target_of finds the generation a choice was made on. Mover: stores (it
     * empties a slot before the barrier that precedes an unmap); readers: announce the one
     * they load in their reader slot, then load it again (librota.c enter_recent). */
    _Atomic(struct gen *) recent[RECENT_MAX];
    pthread_t mover;
    bool mover_up;
    pid_t pid; /* the process the mover runs in */
    struct pending pending[PENDING_MAX];
    _Atomic bool stop;
    struct passive_cell *passive;     /* PASSIVE_CELLS of them */
    struct rota_shm_clients *clients; /* leases; NULL when the instance keeps none */
    struct rota_shm_client *slot;     /* this handle's, in "clients" */
    int slot_index;
    int parent_slot;    /* in a child of fork: the parent's slot, which holds the leases */
    int32_t parent_pid; /* of choices made before the fork; -1 = none */
};

/* Every selecting thread's slot (librota.c), and whether membarrier(2) pairs with the
 * readers' compiler-only barrier. */
extern struct reader rota_readers[READERS_MAX];
extern bool rota_membarrier_ok;

/* Map the instance's current generation into "g" (a spare, or a new one when NULL). */
ROTA_HIDDEN int rota_map_current(const char *instance, struct gen *g, struct gen **out,
                                 char *err, size_t errlen);

/* Start the handle's mover thread: 0 or a negated errno. */
ROTA_HIDDEN int rota_mover_start(struct rota *h);

/* target.c: fill "out" for choice "c" on account index "ai" of the entered map "m". */
ROTA_HIDDEN int rota_target_fill(const struct rota_shm_map *m, uint32_t ai, const rota_choice *c,
                                 const char *model, size_t len, rota_target *out);

/* Enter the handle's current generation as select does (NULL with *rc when the handle
 * is too far behind), and leave it: for librota's calls in other files (clientkey.c). */
ROTA_HIDDEN struct gen *rota_gen_enter(struct rota *h, struct reader **rdp, uint64_t now,
                                       int *rc);
ROTA_HIDDEN void rota_gen_leave(struct reader *rd, struct gen *g);

/* Apply the reports made while the handle was behind, once it follows (mover.c). */
ROTA_HIDDEN void rota_apply_pending(struct rota *h);

/* End the lease of a call whose report is counted. */
ROTA_HIDDEN void rota_lease_end(struct rota *h, uint32_t lease, uint64_t tag);

#endif
