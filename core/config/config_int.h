/*
 * config_int.h - what the config_*.c files share (private to core/config).
 *
 * DESIGN
 * Loading a config is a pipeline over one struct cfg, on the caller's thread:
 *
 *   bytes --libyaml--> yaml_document_t (nodes with line:column marks)
 *         --cfg_walk--> the document checked against the cyaml schema (keys, types, counts)
 *         --libcyaml--> struct raw_config (the YAML as plain C, absent optionals NULL)
 *         --resolve---> struct rota_config (defaults, ranges, references, credentials)
 *
 * libcyaml reports no positions, so every message that concerns a value takes its
 * position from the libyaml document, by the value's path (cfg_at). The raw structs keep
 * document order, so raw index i is the document's sequence entry i.
 *
 * Optional scalars whose absence means something other than zero are pointers (NULL when
 * absent); durations, sizes, schedules and credentials are strings parsed during resolve.
 */
#ifndef ROTA_CORE_CONFIG_INT_H
#define ROTA_CORE_CONFIG_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <cyaml/cyaml.h>
#include <yaml.h>

#include "config.h"

/* ---- the YAML as libcyaml loads it ---- */

struct raw_thresholds {
    double *warn, *critical, *pessimistic;
};

struct raw_breaker {
    uint32_t *failures, *half_open;
    char *open_for, *open_max, *trial_timeout;
    double *failure_rate;
    uint32_t *min_calls;
    char *window;
};

struct raw_cooldown {
    char *base, *max;
};

struct raw_pointers {
    char *used, *limit, *remaining, *reset;
};

struct raw_probe {
    bool *enabled;
    char *interval, *jitter, *timeout, *max_bytes;
    char *path, *method, *body;
    char *command; /* run instead of the HTTP probe */
    struct raw_pointers *pointers;
    int *metric; /* enum rota_metric */
};

struct raw_window {
    char *pool;
    int metric; /* enum rota_metric */
    uint64_t *limit;
    char *reset, *tz;
};

struct raw_account {
    char *name;
    uint64_t *id;
    char *credential;
    uint32_t *weight;
    uint32_t rpm, tpm, rpm_burst, tpm_burst;
    struct raw_window *windows;
    unsigned windows_count;
};

struct raw_provider {
    char *name;
    int kind; /* index into cfg_kinds */
    char *base_url;
    int *auth;   /* index into cfg_auths */
    int *format; /* index into cfg_formats */
    char *path;  /* the call's endpoint; headers: read from the document (cfg_map) */
    struct raw_thresholds *thresholds;
    struct raw_breaker *breaker;
    struct raw_cooldown *cooldown;
    char *disable_for;
    struct raw_probe *probe;
    struct raw_account *accounts;
    unsigned accounts_count;
};

struct raw_tier {
    char *provider;
    char **accounts;
    unsigned accounts_count;
    char *strategy;
    double *ceiling;
    char *pool;
    double *w_quota, *w_recency, *jitter, *lru_share;
    uint32_t *top_k, *sample;
    char *recency;
    char *model; /* models: read from the document (cfg_map) */
    bool *tools, *images; /* what the tier's model takes (true) */
    uint32_t *context;    /* its context window, tokens */
};

struct raw_route {
    char *name;
    char **models;
    unsigned models_count;
    struct raw_tier *tiers;
    unsigned tiers_count;
    bool *cross_format; /* the pool may translate between wire formats (true) */
};

struct raw_file_journal {
    bool *enabled;
    char *path;
    int *fsync; /* enum rota_fsync */
    char *interval, *snapshot_every, *max_bytes;
};

struct raw_redis {
    bool *enabled;
    char *host;
    uint32_t *port;
    char *socket, *user, *password;
    uint32_t *db;
    char *prefix;
    uint32_t *stream_max;
    char *ttl;
    uint32_t *buffer;
};

struct raw_journal {
    struct raw_file_journal *file;
    struct raw_redis *redis;
};

struct raw_listener {
    char *tcp, *unix_path, *mode;
};
struct raw_client_key {
    char *name, *sha256;
    char **routes;
    unsigned routes_count;
    uint32_t rpm, tpm;
};
struct raw_worker_limits {
    char *header_bytes, *body_bytes;
    uint32_t *headers, *connections;
};
struct raw_worker_timeouts {
    char *header, *body, *keepalive, *connect, *first_byte, *idle, *request, *drain;
};
struct raw_workers {
    char *program;
    uint32_t *processes, *threads, *attempts;
    struct raw_listener *listen;
    unsigned listen_count;
    char *access_log, *ca_file;
    struct raw_worker_limits *limits;
    struct raw_worker_timeouts *timeouts;
    struct raw_client_key *keys;
    unsigned keys_count;
};
struct raw_config {
    char *instance, *state_dir, *socket, *group, *heartbeat, *stale_after;
    bool *strict;
    struct raw_provider *providers;
    unsigned providers_count;
    struct raw_route *routes;
    unsigned routes_count;
    struct raw_journal *journal;
    struct raw_workers *workers;
};

/* The document's schema (config_schema.c) and the names its enums take. */
extern const cyaml_schema_value_t cfg_schema;
extern const cyaml_config_t cfg_cyaml;
extern const cyaml_strval_t cfg_kinds[];   /* provider kinds, by raw_provider.kind */
extern const cyaml_strval_t cfg_auths[];   /* auth styles; [0] "bearer" is the default */
extern const cyaml_strval_t cfg_formats[]; /* wire formats */
extern const cyaml_strval_t cfg_metrics[]; /* enum rota_metric order */
extern const cyaml_strval_t cfg_fsyncs[];  /* enum rota_fsync order */

/* A top-level section of a feature this version does not have; the list ends with NULL. */
struct cfg_unavailable {
    const char *key;
    const char *why; /* "nothing in rotad serves /metrics yet" */
};
extern const struct cfg_unavailable cfg_unavailable[];

/* ---- one load in progress ---- */

struct cfg_mem;       /* allocations owned by the config */
struct cfg_file_seen; /* key files warned about in this load (config_providers.c) */

/* The config handed out, with what it owns. */
struct cfg_owned {
    struct rota_config pub; /* first: rota_config_free casts back */
    struct raw_config *raw;
    struct cfg_mem *mem;
};

struct cfg {
    const char *name; /* the file, in messages */
    const unsigned char *text;
    size_t len;
    yaml_document_t doc;
    char *err;
    size_t errlen;
    bool failed; /* "err" holds the first error; later ones are dropped */
    rota_config_warn_fn warn;
    void *warn_arg;
    struct cfg_owned *out;
    const struct raw_config *raw;
    unsigned file_mode; /* the config file's st_mode; 0 for text held in memory */
    bool strict;        /* strict: true (set by the top level's resolve, before the rest) */
    struct cfg_file_seen *seen; /* key files readable by others, warned about once each */
    /* what resolve fills: writable views of out->pub's arrays */
    struct rota_desc_provider *dp;
    struct rota_config_provider *cp;
    struct rota_desc_account *da;
    struct rota_config_account *ca;
    uint32_t *first; /* per provider: its first account in desc.accounts */
};

/* Write "name:line:col: <fmt>" to the error buffer (the first error only) and return
 * -EINVAL. "m" is a libyaml mark (0-based). */
int cfg_fail(struct cfg *x, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Pass "name:line:col: <fmt>" to the warning callback, if any. */
void cfg_warn(struct cfg *x, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -ENOMEM, saying so. */
int cfg_nomem(struct cfg *x);

/* The mark of the node at a path such as "providers[2].accounts[0].credential". Where the
 * path leaves the document (an absent optional key), the mark of the deepest node on it:
 * the mapping that lacks the key. */
yaml_mark_t cfg_at(struct cfg *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Words for the node at "path", for messages: "'open_for' in breaker of provider 'x'". */
const char *cfg_what(struct cfg *x, const char *path, char *out, size_t n);

/* cfg_fail at the node at "path", the message starting with cfg_what of it. */
int cfg_bad(struct cfg *x, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The pairs of the mapping at "path", a key whose names the schema cannot list (a
 * provider's headers, a tier's models; the walk checked it maps names to strings): their
 * count, 0 when the key is absent. cfg_node gives a pair's key or value. */
size_t cfg_map(struct cfg *x, const char *path, const yaml_node_pair_t **pairs);
yaml_node_t *cfg_node(struct cfg *x, int id);

/* Check the whole document against cfg_schema; 0 or -EINVAL with the first problem. */
int cfg_walk(struct cfg *x);

/* Copy "s" into "out" for a message: printable ASCII only, at most 48 characters. */
const char *cfg_quote(char *out, size_t n, const char *s);

/* Zeroed memory / an array / a copy / a formatted string owned by the config; NULL when
 * out of memory. */
void *cfg_alloc(struct cfg *x, size_t n);
void *cfg_array(struct cfg *x, size_t count, size_t size);
char *cfg_strdup(struct cfg *x, const char *s);
char *cfg_printf(struct cfg *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Value checks shared by the resolve steps. Each takes the value as libcyaml loaded it
 * (NULL: absent, use "def"), checks it against [min, max], stores it in *out and returns
 * 0, or returns -EINVAL having reported the node at the path "fmt" formats. */
int cfg_duration(struct cfg *x, const char *text, uint64_t def, uint64_t min, uint64_t max,
                 uint64_t *out, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int cfg_size(struct cfg *x, const char *text, uint64_t def, uint64_t min, uint64_t max,
             uint64_t *out, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int cfg_uint(struct cfg *x, const uint32_t *v, uint32_t def, uint32_t min, uint32_t max,
             uint32_t *out, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* A fraction in (0, 1], or [0, 1] with "zero_ok". */
int cfg_fraction(struct cfg *x, const double *v, double def, bool zero_ok, double *out,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* "1h30m", "250ms", "0s": a duration as the config writes it. */
const char *cfg_fmt_duration(uint64_t ns, char *out, size_t n);

/* Keys to sort: by group, then string, then number, then idx (document order). */
struct cfg_key {
    const char *s;
    uint64_t n;
    uint32_t group, idx;
};
void cfg_sort(struct cfg_key *v, uint32_t count);

/* Sort "v" and look for keys equal but for idx: true with the idx of the first and of the
 * earliest repeat in document order. */
bool cfg_dup(struct cfg_key *v, uint32_t count, uint32_t *first, uint32_t *again);

/* Does exec probe command "cmd" (for /bin/sh -c) expand $ROTA_CREDENTIAL into a program's
 * argument, where every local user can read it in /proc (config_exec.c)? */
bool cfg_exec_exposes_credential(const char *cmd);

/* The resolve steps, in order (config_providers.c, config_routes.c). */
int cfg_resolve_providers(struct cfg *x);
/* The longest base_url and probe path: together, with the probe's own path, they fit the
 * probe's URL (struct rota_probe_target.url, 512 bytes). */
#define BASE_URL_MAX   384
#define PROBE_PATH_MAX 127

/* config_wire.c: base_url at "path" checked; provider "i"'s format, path, auth and extra
 * headers (at "base", "providers[i]") into the desc. */
int cfg_check_base_url(struct cfg *x, const char *url, const char *path);
int cfg_resolve_wire(struct cfg *x, uint32_t i, const char *base);
int cfg_resolve_routes(struct cfg *x);
int cfg_resolve_workers(struct cfg *x); /* config_workers.c */
/* Is "host" this machine (127.0.0.0/8, ::1, an IPv4-mapped loopback, "localhost")? */
bool cfg_loopback(const char *host);

#endif
