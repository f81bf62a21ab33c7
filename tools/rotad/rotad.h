/*
 * rotad.h - the supervisor's state, shared by its files (private to rotad).
 *
 * DESIGN
 * One main thread owns everything here: the config, the table writer, the io_uring
 * loop, the control connections. Nothing in this struct is touched by another thread.
 */
#ifndef ROTAD_H
#define ROTAD_H

#include <jansson.h>
#include <liburing.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clients.h"
#include "config.h"
#include "journal.h"
#include "probe.h"
#include "supervise.h"
#include "table.h"

#define ROTAD_MAX_CONNS  64 /* control connections open at once; the idle make room */
#define ROTAD_CONN_SLOTS (2 * ROTAD_MAX_CONNS) /* room for those being closed, too */

struct rotad_note {
    uint64_t id; /* account id */
    char text[160];
    int64_t at; /* wall ns */
    struct rotad_note *next;
};

struct rotad_conn {
    int fd;               /* -1 = free */
    unsigned char hdr[4]; /* the frame's length, as received */
    char *body;           /* the frame's body while receiving */
    uint32_t got, want;   /* bytes received of the header + body */
    char *out;            /* reply frame being sent */
    size_t out_len, out_off;
    bool close_after;     /* close once the reply is out */
    bool pending;         /* an operation is in flight for it */
    bool closing;         /* shut down; closed when its pending operation ends */
    uint64_t last_io;     /* monotonic ns; idle connections are closed */
    uint64_t frame_start; /* monotonic ns of a request's first byte; 0 between requests */
};

/* What rotad remembers of each account it probes (by id, across reloads). */
struct rotad_probed {
    uint64_t id;
    uint64_t last_ok;  /* monotonic ns of the last answer understood; 0 = none yet */
    uint64_t stale_ns; /* with no good answer for this long, the account is pessimistic */
    bool pessimistic;  /* marked so by rotad */
    uint32_t fails;    /* failed probes in a row */
    char error[160];   /* the last failure */
};

struct rotad {
    const char *config_path;
    struct rota_config *cfg;
    struct rota_shm_writer *w;
    struct rota_sup *sup;
    int lock_fd;
    int table_fd; /* the table's directory object, held with flock (main.c) */
    int state_fd;          /* the state directory, checked (statedir.c); -1 before */
    struct rota_jkey jkey; /* the instance's identity and secret (statedir.c); wiped at exit */
    int sig_fd, listen_fd;
    char *socket_path;      /* the socket bound at start (reloads cannot move it) */
    bool accept_paused;     /* accept failed for want of descriptors: retry at the next tick */
    uint64_t accept_warned; /* monotonic ns of the last such warning */
    struct io_uring ring;
    struct rotad_conn conns[ROTAD_CONN_SLOTS];
    gid_t ctl_gid;           /* group mode: its members may use the socket; -1 = none */
    uint64_t peer_warned;    /* monotonic ns a refused client was last logged */
    uint64_t peers_unwarned; /* refused since, not logged */
    struct rotad_note *notes;
    struct rota_prober *prober;
    struct rota_redact *redact; /* every credential of d->cfg (probes.c); shared with the
                                   probe thread */
    int probe_fd;
    struct rotad_probed *probed;
    uint32_t nprobed;
    uint64_t probes_ok, probes_failed;
    uint64_t *seen_odd; /* per account index: passive slots seen mid-write (probes/observe) */
    uint32_t nseen;
    uint64_t passive_folded;
    bool stopping;
    bool reload_requested;
    uint64_t started_mono;
    int64_t started_wall;
    const char *origin; /* where the table's state came from at start */
    char origin_buf[640];
    bool adopted; /* the live table was adopted at start: nothing to recover */
    struct rota_journal *journal;
    struct rota_journal_restore restore;
    char *redis_password; /* resolved once at start; wiped at stop */
    uint64_t *cred_off;   /* ids of the accounts whose credential did not resolve at the */
    uint32_t ncred_off;   /* last publish (credentials.c logs what changes) */
    uint64_t reloads, reload_failures, resets, rate_trips, leases_reclaimed;
    uint64_t frames_refused, requests;
    char last_reload_error[512];
    uint64_t next_heartbeat, next_second; /* monotonic ns */
    int64_t clock_shift_ns;               /* ROTA_CLOCK_SHIFT: wall-clock offset, for tests */
    struct rotad_pool *pool;              /* the dispatch pool's processes (pool.c) */
};

/* main.c */
int rotad_reload(struct rotad *d, char *err, size_t errlen);
int64_t rotad_wall(const struct rotad *d);
struct rota_shm_map *rotad_map(struct rotad *d);

/* loop.c */
/* Block SIGTERM, SIGINT and SIGHUP (the loop reads them from a signalfd; "set" gets
 * them) and ignore SIGPIPE. */
void rotad_block_signals(sigset_t *set);
int rotad_listen(struct rotad *d, char *err, size_t errlen);
int rotad_run(struct rotad *d);
void rotad_tick(struct rotad *d, uint64_t now);

/* statedir.c: create or check the state directory (and the journal's, when elsewhere)
 * by the rule written there; its descriptor in d->state_fd; the instance's identity read
 * or made there, in d->jkey. 0, or -errno with "err" naming the path and the problem:
 * rotad must not start. */
int rotad_state_open(struct rotad *d, char *err, size_t errlen);

/* Read or make the instance's identity in the state directory (core/journal/jident.h),
 * into d->jkey. Called with the instance's lock held: two rotads starting at once must
 * not both make one. */
int rotad_identity_open(struct rotad *d, char *err, size_t errlen);

/* probes.c: start or retarget the probe thread from the config; apply its results. */
int rotad_probes_configure(struct rotad *d);
void rotad_probes_drain(struct rotad *d);
void rotad_probes_tick(struct rotad *d, uint64_t now);
/* Probe an account or all accounts of a provider now; how many were asked, or -1. */
int rotad_probes_now(struct rotad *d, uint64_t account_id, uint32_t provider);

/* durable.c: recovery at start (when no live table was adopted), the journal thread,
 * and the journal's figures for `rotactl journal`. */
/* A rota_desc.prepare hook ("arg" is the rotad): restore the journal into "m". */
int rotad_journal_recover(void *arg, struct rota_shm_map *m, char *err, size_t errlen);
void rotad_keep_damaged(struct rotad *d);
int rotad_journal_start(struct rotad *d, char *err, size_t errlen);
void rotad_journal_stop(struct rotad *d);
void rotad_journal_reload(struct rotad *d, const struct rota_config *next);
json_t *rotad_journal_json(struct rotad *d);

/* credentials.c: keep the accounts of "c" whose credential did not resolve out of
 * rotation in "m" (a generation being published from "c", or the live one built from
 * it), and end the credential disable of those whose credential resolves; logs each
 * change once. */
void rotad_credentials_apply(struct rotad *d, const struct rota_config *c,
                             struct rota_shm_map *m);
/* What an operator does about "ca"'s unresolved credential, for messages: "set the
 * variable in rotad's environment and restart rotad", or for a file, "... then reload". */
const char *rotad_credential_remedy(const struct rota_config_account *ca);
/* The running config's account with "id" when its credential did not resolve; NULL
 * otherwise. */
const struct rota_config_account *rotad_credential_unresolved(const struct rotad *d,
                                                              uint64_t id);

/* pool.c: the rota-worker processes of the workers: section. Prepare makes the set
 * "c" describes ready (program, access log, the listeners the running set lacks) and
 * changes nothing: 0, or -errno with "err" saying why. Commit starts it (its processes,
 * then the old ones drained), or does nothing when it is the running set; abort drops
 * it. Tick reaps, restarts and reads the figures; stop drains them all and waits. */
struct rotad_pool;
int rotad_pool_prepare(struct rotad *d, const struct rota_config *c, char *err, size_t errlen);
void rotad_pool_commit(struct rotad *d);
void rotad_pool_abort(struct rotad *d);
/* Does the running set listen off loopback (where client keys are required)? */
bool rotad_pool_off_loopback(const struct rotad *d);
void rotad_pool_tick(struct rotad *d, uint64_t now);
void rotad_pool_stop(struct rotad *d);
json_t *rotad_pool_json(struct rotad *d);

/* commands.c: answer one request (never NULL). */
json_t *rotad_command(struct rotad *d, const char *cmd, const json_t *args);
void rotad_notes_free(struct rotad *d);

#endif
