/*
 * config_schema.c - the YAML schema of a rota config, as libcyaml tables.
 *
 * DESIGN
 * One table per mapping of examples/rota.yaml, read by two consumers: libcyaml, which
 * loads a checked document into struct raw_config, and cfg_walk (config_walk.c), which
 * checks the libyaml document against the same tables first so that every unknown key,
 * wrong type and bad count is reported with its line and column. A key added here is
 * known to both at once. Constant data, shared by every thread.
 *
 * Sections of features to come (cfg_unavailable) are not in the tables: the walk refuses
 * them by name, whatever they hold.
 *
 * What the tables cannot say (ranges, durations, references between sections) is
 * checked when the raw structs are resolved (config.c, config_providers.c,
 * config_routes.c).
 */
#include <stddef.h>

#include "config_int.h"

#define OPT CYAML_FLAG_OPTIONAL
#define PTR CYAML_FLAG_POINTER

const cyaml_strval_t cfg_kinds[] = {
    {"openai", 0},         {"azure-openai", 1}, {"anthropic", 2},   {"gemini", 3},
    {"github-copilot", 4}, {"github", 5},       {"antigravity", 6}, {"openrouter", 7},
    {"llamacpp", 8},       {"generic", 9},      {"exec", 10},
};
const cyaml_strval_t cfg_auths[] = {
    {"bearer", 0}, {"x-api-key", 1}, {"x-goog-api-key", 2},
    {"token", 3},  {"api-key", 4},   {"none", 5},
};
const cyaml_strval_t cfg_formats[] = {
    {"openai", 0},
    {"anthropic", 1},
    {"gemini", 2},
    {"code-assist", 3},
};
const cyaml_strval_t cfg_metrics[] = {
    {"requests", ROTA_METRIC_REQUESTS},
    {"tokens", ROTA_METRIC_TOKENS},
    {"credits", ROTA_METRIC_CREDITS},
    {"fraction", ROTA_METRIC_FRACTION},
};
const cyaml_strval_t cfg_fsyncs[] = {
    {"always", ROTA_FSYNC_ALWAYS},
    {"interval", ROTA_FSYNC_INTERVAL},
    {"never", ROTA_FSYNC_NEVER},
};

/* Names: what rota_shm_publish accepts (ROTA_MAX_NAME - 1 bytes). */
#define NAME_MAX_LEN (ROTA_MAX_NAME - 1)

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(PTR, char, 1, CYAML_UNLIMITED),
};

/* ---- providers ---- */

static const cyaml_schema_field_t thresholds_fields[] = {
    CYAML_FIELD_FLOAT_PTR("warn", OPT, struct raw_thresholds, warn),
    CYAML_FIELD_FLOAT_PTR("critical", OPT, struct raw_thresholds, critical),
    CYAML_FIELD_FLOAT_PTR("pessimistic", OPT, struct raw_thresholds, pessimistic),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t breaker_fields[] = {
    CYAML_FIELD_UINT_PTR("failures", OPT, struct raw_breaker, failures),
    CYAML_FIELD_UINT_PTR("half_open", OPT, struct raw_breaker, half_open),
    CYAML_FIELD_STRING_PTR("open_for", OPT, struct raw_breaker, open_for, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("open_max", OPT, struct raw_breaker, open_max, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("trial_timeout", OPT, struct raw_breaker, trial_timeout, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT_PTR("failure_rate", OPT, struct raw_breaker, failure_rate),
    CYAML_FIELD_UINT_PTR("min_calls", OPT, struct raw_breaker, min_calls),
    CYAML_FIELD_STRING_PTR("window", OPT, struct raw_breaker, window, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cooldown_fields[] = {
    CYAML_FIELD_STRING_PTR("base", OPT, struct raw_cooldown, base, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max", OPT, struct raw_cooldown, max, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t pointer_fields[] = {
    CYAML_FIELD_STRING_PTR("used", OPT, struct raw_pointers, used, 1, 255),
    CYAML_FIELD_STRING_PTR("limit", OPT, struct raw_pointers, limit, 1, 255),
    CYAML_FIELD_STRING_PTR("remaining", OPT, struct raw_pointers, remaining, 1, 255),
    CYAML_FIELD_STRING_PTR("reset", OPT, struct raw_pointers, reset, 1, 255),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t probe_fields[] = {
    CYAML_FIELD_BOOL_PTR("enabled", OPT, struct raw_probe, enabled),
    CYAML_FIELD_STRING_PTR("interval", OPT, struct raw_probe, interval, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("jitter", OPT, struct raw_probe, jitter, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("timeout", OPT, struct raw_probe, timeout, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_bytes", OPT, struct raw_probe, max_bytes, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("path", OPT, struct raw_probe, path, 1, 255),
    CYAML_FIELD_STRING_PTR("method", OPT, struct raw_probe, method, 1, 8),
    CYAML_FIELD_STRING_PTR("body", OPT, struct raw_probe, body, 0, 511),
    CYAML_FIELD_STRING_PTR("command", OPT, struct raw_probe, command, 1, 1023),
    CYAML_FIELD_MAPPING_PTR("pointers", OPT, struct raw_probe, pointers, pointer_fields),
    CYAML_FIELD_ENUM_PTR("metric", OPT | CYAML_FLAG_STRICT, struct raw_probe, metric,
                         cfg_metrics, CYAML_ARRAY_LEN(cfg_metrics)),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t window_fields[] = {
    CYAML_FIELD_STRING_PTR("pool", OPT, struct raw_window, pool, 1, NAME_MAX_LEN),
    CYAML_FIELD_ENUM("metric", CYAML_FLAG_STRICT, struct raw_window, metric, cfg_metrics,
                     CYAML_ARRAY_LEN(cfg_metrics)),
    CYAML_FIELD_UINT_PTR("limit", OPT, struct raw_window, limit),
    CYAML_FIELD_STRING_PTR("reset", OPT, struct raw_window, reset, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("tz", OPT, struct raw_window, tz, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t window_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_window, window_fields),
};

static const cyaml_schema_field_t account_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_DEFAULT, struct raw_account, name, 1,
                           NAME_MAX_LEN),
    CYAML_FIELD_UINT_PTR("id", OPT, struct raw_account, id),
    CYAML_FIELD_STRING_PTR("credential", CYAML_FLAG_DEFAULT, struct raw_account, credential, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("weight", OPT, struct raw_account, weight),
    CYAML_FIELD_UINT("rpm", OPT, struct raw_account, rpm),
    CYAML_FIELD_UINT("tpm", OPT, struct raw_account, tpm),
    CYAML_FIELD_UINT("rpm_burst", OPT, struct raw_account, rpm_burst),
    CYAML_FIELD_UINT("tpm_burst", OPT, struct raw_account, tpm_burst),
    CYAML_FIELD_SEQUENCE("windows", PTR | OPT, struct raw_account, windows, &window_entry, 0,
                         ROTA_MAX_WINDOWS),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t account_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_account, account_fields),
};

static const cyaml_schema_field_t provider_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_DEFAULT, struct raw_provider, name, 1,
                           NAME_MAX_LEN),
    CYAML_FIELD_ENUM("kind", CYAML_FLAG_STRICT, struct raw_provider, kind, cfg_kinds,
                     CYAML_ARRAY_LEN(cfg_kinds)),
    CYAML_FIELD_STRING_PTR("base_url", OPT, struct raw_provider, base_url, 1, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM_PTR("auth", OPT | CYAML_FLAG_STRICT, struct raw_provider, auth, cfg_auths,
                         CYAML_ARRAY_LEN(cfg_auths)),
    CYAML_FIELD_ENUM_PTR("format", OPT | CYAML_FLAG_STRICT, struct raw_provider, format,
                         cfg_formats, CYAML_ARRAY_LEN(cfg_formats)),
    CYAML_FIELD_STRING_PTR("path", OPT, struct raw_provider, path, 1, 255),
    /* name: value, names of the user's choosing: checked by the walk and read from the
     * document (config_providers.c) */
    CYAML_FIELD_IGNORE("headers", OPT),
    CYAML_FIELD_MAPPING_PTR("thresholds", OPT, struct raw_provider, thresholds,
                            thresholds_fields),
    CYAML_FIELD_MAPPING_PTR("breaker", OPT, struct raw_provider, breaker, breaker_fields),
    CYAML_FIELD_MAPPING_PTR("cooldown", OPT, struct raw_provider, cooldown, cooldown_fields),
    CYAML_FIELD_STRING_PTR("disable_for", OPT, struct raw_provider, disable_for, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("probe", OPT, struct raw_provider, probe, probe_fields),
    CYAML_FIELD_SEQUENCE("accounts", PTR | OPT, struct raw_provider, accounts, &account_entry,
                         0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t provider_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_provider, provider_fields),
};

/* ---- routes ---- */

static const cyaml_schema_field_t tier_fields[] = {
    CYAML_FIELD_STRING_PTR("provider", OPT, struct raw_tier, provider, 1, NAME_MAX_LEN),
    CYAML_FIELD_SEQUENCE("accounts", PTR | OPT, struct raw_tier, accounts, &string_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("strategy", OPT, struct raw_tier, strategy, 1, CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT_PTR("ceiling", OPT, struct raw_tier, ceiling),
    CYAML_FIELD_STRING_PTR("pool", OPT, struct raw_tier, pool, 1, NAME_MAX_LEN),
    CYAML_FIELD_FLOAT_PTR("w_quota", OPT, struct raw_tier, w_quota),
    CYAML_FIELD_FLOAT_PTR("w_recency", OPT, struct raw_tier, w_recency),
    CYAML_FIELD_FLOAT_PTR("jitter", OPT, struct raw_tier, jitter),
    CYAML_FIELD_FLOAT_PTR("lru_share", OPT, struct raw_tier, lru_share),
    CYAML_FIELD_UINT_PTR("top_k", OPT, struct raw_tier, top_k),
    CYAML_FIELD_UINT_PTR("sample", OPT, struct raw_tier, sample),
    CYAML_FIELD_STRING_PTR("recency", OPT, struct raw_tier, recency, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("model", OPT, struct raw_tier, model, 1, 255),
    CYAML_FIELD_IGNORE("models", OPT), /* client model: upstream model (config_routes.c) */
    CYAML_FIELD_BOOL_PTR("tools", OPT, struct raw_tier, tools),
    CYAML_FIELD_BOOL_PTR("images", OPT, struct raw_tier, images),
    CYAML_FIELD_UINT_PTR("context", OPT, struct raw_tier, context),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t tier_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_tier, tier_fields),
};

static const cyaml_schema_field_t route_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_DEFAULT, struct raw_route, name, 1, NAME_MAX_LEN),
    CYAML_FIELD_SEQUENCE("models", PTR | OPT, struct raw_route, models, &string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("tiers", PTR, struct raw_route, tiers, &tier_entry, 1, ROTA_MAX_TIERS),
    CYAML_FIELD_BOOL_PTR("cross_format", OPT, struct raw_route, cross_format),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t route_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_route, route_fields),
};

/* ---- journal ---- */

static const cyaml_schema_field_t file_fields[] = {
    CYAML_FIELD_BOOL_PTR("enabled", OPT, struct raw_file_journal, enabled),
    CYAML_FIELD_STRING_PTR("path", OPT, struct raw_file_journal, path, 1, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM_PTR("fsync", OPT | CYAML_FLAG_STRICT, struct raw_file_journal, fsync,
                         cfg_fsyncs, CYAML_ARRAY_LEN(cfg_fsyncs)),
    CYAML_FIELD_STRING_PTR("interval", OPT, struct raw_file_journal, interval, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("snapshot_every", OPT, struct raw_file_journal, snapshot_every, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_bytes", OPT, struct raw_file_journal, max_bytes, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t redis_fields[] = {
    CYAML_FIELD_BOOL_PTR("enabled", OPT, struct raw_redis, enabled),
    CYAML_FIELD_STRING_PTR("host", OPT, struct raw_redis, host, 1, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("port", OPT, struct raw_redis, port),
    CYAML_FIELD_STRING_PTR("socket", OPT, struct raw_redis, socket, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("user", OPT, struct raw_redis, user, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("password", OPT, struct raw_redis, password, 1, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("db", OPT, struct raw_redis, db),
    CYAML_FIELD_STRING_PTR("prefix", OPT, struct raw_redis, prefix, 1, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("stream_max", OPT, struct raw_redis, stream_max),
    CYAML_FIELD_STRING_PTR("ttl", OPT, struct raw_redis, ttl, 1, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("buffer", OPT, struct raw_redis, buffer),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t journal_fields[] = {
    CYAML_FIELD_MAPPING_PTR("file", OPT, struct raw_journal, file, file_fields),
    CYAML_FIELD_MAPPING_PTR("redis", OPT, struct raw_journal, redis, redis_fields),
    CYAML_FIELD_END,
};

/* ---- workers ---- */

static const cyaml_schema_field_t listener_fields[] = {
    CYAML_FIELD_STRING_PTR("tcp", OPT, struct raw_listener, tcp, 1, 255),
    CYAML_FIELD_STRING_PTR("unix", OPT, struct raw_listener, unix_path, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("mode", OPT, struct raw_listener, mode, 1, 8),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t listener_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_listener, listener_fields),
};

static const cyaml_schema_field_t client_key_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_DEFAULT, struct raw_client_key, name, 1,
                           NAME_MAX_LEN),
    CYAML_FIELD_STRING_PTR("sha256", CYAML_FLAG_DEFAULT, struct raw_client_key, sha256, 1, 255),
    /* absent: every route; a list names at least one */
    CYAML_FIELD_SEQUENCE("routes", PTR | OPT, struct raw_client_key, routes, &string_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_UINT("rpm", OPT, struct raw_client_key, rpm),
    CYAML_FIELD_UINT("tpm", OPT, struct raw_client_key, tpm),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t client_key_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_client_key, client_key_fields),
};

static const cyaml_schema_field_t worker_limit_fields[] = {
    CYAML_FIELD_STRING_PTR("header_bytes", OPT, struct raw_worker_limits, header_bytes, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("headers", OPT, struct raw_worker_limits, headers),
    CYAML_FIELD_STRING_PTR("body_bytes", OPT, struct raw_worker_limits, body_bytes, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("connections", OPT, struct raw_worker_limits, connections),
    CYAML_FIELD_END,
};

#define TIMEOUT(key)                                                                           \
    CYAML_FIELD_STRING_PTR(#key, OPT, struct raw_worker_timeouts, key, 1, CYAML_UNLIMITED)
static const cyaml_schema_field_t worker_timeout_fields[] = {
    TIMEOUT(header),  TIMEOUT(body),       TIMEOUT(keepalive),
    TIMEOUT(connect), TIMEOUT(first_byte), TIMEOUT(idle),
    TIMEOUT(request), TIMEOUT(drain),      CYAML_FIELD_END,
};
#undef TIMEOUT

static const cyaml_schema_field_t workers_fields[] = {
    CYAML_FIELD_STRING_PTR("program", OPT, struct raw_workers, program, 1, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("processes", OPT, struct raw_workers, processes),
    CYAML_FIELD_UINT_PTR("threads", OPT, struct raw_workers, threads),
    CYAML_FIELD_SEQUENCE("listen", PTR | OPT, struct raw_workers, listen, &listener_entry, 1,
                         16),
    CYAML_FIELD_STRING_PTR("access_log", OPT, struct raw_workers, access_log, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("ca_file", OPT, struct raw_workers, ca_file, 1, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("attempts", OPT, struct raw_workers, attempts),
    CYAML_FIELD_MAPPING_PTR("limits", OPT, struct raw_workers, limits, worker_limit_fields),
    CYAML_FIELD_MAPPING_PTR("timeouts", OPT, struct raw_workers, timeouts,
                            worker_timeout_fields),
    CYAML_FIELD_SEQUENCE("keys", PTR | OPT, struct raw_workers, keys, &client_key_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

/* ---- the document ---- */

static const cyaml_schema_field_t top_fields[] = {
    CYAML_FIELD_STRING_PTR("instance", CYAML_FLAG_DEFAULT, struct raw_config, instance, 1,
                           NAME_MAX_LEN),
    CYAML_FIELD_STRING_PTR("state_dir", OPT, struct raw_config, state_dir, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("socket", OPT, struct raw_config, socket, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("group", OPT, struct raw_config, group, 1, CYAML_UNLIMITED),
    CYAML_FIELD_BOOL_PTR("strict", OPT, struct raw_config, strict),
    CYAML_FIELD_STRING_PTR("heartbeat", OPT, struct raw_config, heartbeat, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("stale_after", OPT, struct raw_config, stale_after, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("providers", PTR, struct raw_config, providers, &provider_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("routes", PTR | OPT, struct raw_config, routes, &route_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("journal", OPT, struct raw_config, journal, journal_fields),
    CYAML_FIELD_MAPPING_PTR("workers", OPT, struct raw_config, workers, workers_fields),
    CYAML_FIELD_END,
};

/* Top-level sections that name a feature this version does not have: refused, so that no
 * one believes something listens or runs because the file says so. */
const struct cfg_unavailable cfg_unavailable[] = {
    {"metrics", "nothing in rotad serves /metrics yet"},
    {NULL, NULL},
};

const cyaml_schema_value_t cfg_schema = {
    CYAML_VALUE_MAPPING(PTR, struct raw_config, top_fields),
};

/* Quiet: every problem libcyaml could log has been reported with its position already. */
const cyaml_config_t cfg_cyaml = {
    .log_fn = NULL,
    .mem_fn = cyaml_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_DEFAULT,
};
