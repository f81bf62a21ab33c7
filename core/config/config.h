/*
 * config.h - the YAML configuration of a rota instance (private to rota).
 *
 * DESIGN
 * rota_config_load reads a file with libcyaml into plain structs (the schema lives in
 * config_schema.c), checks every value and cross-reference, resolves credential references
 * (env:NAME, file:PATH; a literal is accepted with a warning) and fills a struct rota_desc
 * ready for rota_shm_publish. A reference that does not resolve (a variable unset, a file
 * unreadable) is no error in the file: the account loads without its credential and says
 * why in cred_problem, and its user decides (rotad keeps it out of rotation). Any error names
 * the file, line and column and says what was expected there. libcyaml 1.3 reports no
 * positions, so the loader also walks the document with libyaml and locates each problem by the
 * path of the node it concerns.
 *
 * One thread at a time per config; a loaded config is immutable and owns every string
 * the desc points to. Credentials are held only in "desc" (and freed with the config,
 * wiped first); nothing here prints them.
 */
#ifndef ROTA_CORE_CONFIG_H
#define ROTA_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "table.h"

enum rota_fsync {
    ROTA_FSYNC_ALWAYS = 0,
    ROTA_FSYNC_INTERVAL = 1,
    ROTA_FSYNC_NEVER = 2,
};

/* Per provider, what the table does not hold (probes, later issues). */
struct rota_config_provider {
    const char *name, *kind, *base_url, *auth; /* auth: "bearer", "x-api-key", ... */
    bool probe_enabled;
    uint64_t probe_interval_ns, probe_jitter_ns, probe_timeout_ns;
    uint32_t probe_max_bytes;
    const char *probe_path, *probe_method, *probe_body; /* NULL = the kind's usual probe */
    const char *probe_command; /* run with /bin/sh -c instead of the HTTP probe; NULL */
    const char *pointers[4];   /* generic: used, limit, remaining, reset (RFC 6901); NULL */
    unsigned probe_metric;     /* generic: what its figures count (enum rota_metric) */
    /* failure-rate breaker, evaluated by rotad every "rate_window_ns" */
    double fail_rate;        /* open when failures / calls reach this; 0 = off */
    uint32_t fail_min_calls; /* ... over at least this many calls in the window */
    uint64_t rate_window_ns;
};

/* Per account, where its credential came from, for printing ("env:NAME", "file:PATH",
 * "literal", "none"), and whether it resolved. Never the credential itself. */
struct rota_config_account {
    const char *cred_source;
    /* NULL when the credential resolved (or is "none" or a literal). Otherwise what is
     * wrong with its source, to follow cred_source in a message ("is not set", "is
     * empty", "cannot be read (No such file or directory)", "is not a regular file",
     * ...): the account's desc credential is NULL and rotad keeps it out of rotation. */
    const char *cred_problem;
    const char *cred_where; /* "file:line:col" of the credential's value, for messages */
    uint32_t line;          /* where the account is defined, for messages */
    const char *reset[ROTA_MAX_WINDOWS]; /* each window's schedule as written */
};

struct rota_config_journal {
    bool file_enabled;
    const char *file_path; /* default <state_dir>/journal */
    enum rota_fsync fsync;
    uint64_t fsync_interval_ns;
    uint64_t snapshot_every_ns;
    uint64_t max_bytes;
    bool redis_enabled;
    const char *redis_host; /* or a Unix socket path in redis_socket */
    uint32_t redis_port, redis_db;
    const char *redis_socket;
    const char *redis_user;            /* ACL user (Redis 6+); NULL = the default user */
    const char *redis_password_source; /* env:/file: reference; resolved by the journal */
    const char *redis_prefix;
    uint32_t redis_stream_max;
    uint64_t redis_ttl_ns;
    uint32_t redis_buffer;
};

/* A listener of the dispatch pool: TCP "host:port", or a Unix socket path. */
struct rota_config_listener {
    const char *tcp;       /* "127.0.0.1:8080", "[::1]:8080"; NULL for a Unix socket */
    const char *unix_path; /* NULL for TCP */
    uint32_t unix_mode;    /* the socket file's mode (0660) */
    bool loopback;         /* a TCP address on 127.0.0.0/8 or ::1, or a Unix socket */
};

/* A client key of the dispatch pool: only its SHA-256 is in the config. */
struct rota_config_client_key {
    const char *name;
    uint8_t sha256[32];
    const char **routes; /* route or model names this key may use; nroutes 0 = every one */
    uint32_t nroutes;
    uint32_t rpm, tpm; /* requests and tokens per minute; 0 = no limit */
    uint32_t line;     /* where the key is defined, for messages */
};

/* The "workers:" section: the rota-worker processes rotad spawns and supervises. */
struct rota_config_workers {
    bool enabled;        /* the section is present */
    const char *program; /* rota-worker to run; default the one beside rotad */
    uint32_t processes;  /* default: the CPU count */
    uint32_t threads;    /* per process; default 1 */
    const struct rota_config_listener *listeners;
    uint32_t nlisteners;
    const struct rota_config_client_key *keys;
    uint32_t nkeys;
    const char *access_log; /* a file path, "stderr" (the default) or "off" */
    const char *ca_file;    /* CA bundle for upstream TLS; NULL = the system's */
    /* limits: 0 takes the worker's default */
    uint32_t max_header_bytes, max_headers, max_connections;
    uint64_t max_body_bytes;
    /* timeouts, ms */
    uint32_t header_timeout_ms, body_timeout_ms, keepalive_timeout_ms;
    uint32_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    uint32_t request_timeout_ms; /* the whole request, every attempt */
    uint32_t attempts;
    uint32_t drain_timeout_ms; /* old workers finish in-flight requests within this */
};

struct rota_config {
    const char *path;      /* the file it came from */
    const char *instance;  /* names /dev/shm/rota.<instance>* */
    const char *state_dir; /* journal, lock and default socket live here; default
                              /var/lib/rota/<instance> as root, else under
                              $XDG_STATE_HOME or ~/.local/state */
    bool state_dir_default; /* not in the file: rotad may create its parents */
    const char *socket;    /* control socket path; default <state_dir>/rotad.sock */
    const char *group;     /* NULL, or segments and socket are 0660 for this group */
    bool strict;           /* what draws a warning about keys exposed to other local
                              users is an error (a readable key file, a literal in a
                              readable config, a key on an exec probe's command line) */
    uint64_t heartbeat_ns; /* how often rotad writes the heartbeat (1 s) */
    struct rota_desc desc; /* providers, accounts, routes; desc.config_hash set */
    const struct rota_config_provider *providers; /* desc.nproviders of them */
    const struct rota_config_account *accounts;   /* desc.naccounts of them */
    struct rota_config_journal journal;
    struct rota_config_workers workers;
};

/* Called once per warning (a literal credential, ...): "msg" is "file:line:col: text". */
typedef void (*rota_config_warn_fn)(void *arg, const char *msg);

/* Load and check "path". Returns 0 and *out, or a negative errno with "err" holding
 * "file:line:column: what was wrong, what was expected" (one line, no secret); -EPERM
 * when the file is owned by another user than root or the caller's effective one, or is
 * writable by its group or every user. With strict: true, what would otherwise be a
 * warning about a key other local users can read is such an error (-EINVAL). */
int rota_config_load(const char *path, rota_config_warn_fn warn, void *warn_arg,
                     struct rota_config **out, char *err, size_t errlen);

/* Parse a YAML document held in memory ("name" is used in messages); as above. */
int rota_config_parse(const char *name, const char *text, size_t len, rota_config_warn_fn warn,
                      void *warn_arg, struct rota_config **out, char *err, size_t errlen);

/* Print the resolved instance: providers with their settings, accounts (id, weight,
 * limits, windows with schedules, where the credential comes from), routes and tiers,
 * journal. Never a credential. */
void rota_config_print(const struct rota_config *c, FILE *f);

/* Wipe the credentials and free everything. NULL is fine. */
void rota_config_free(struct rota_config *c);

#endif
