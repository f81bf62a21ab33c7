/*
 * log.h - one line per event on stderr (private to rota).
 *
 * "2026-11-28T17:33:54.123Z rotad[812] info: published generation 4 (12 accounts)".
 * Levels: debug, info, warn, error; lines under the configured level are dropped. A
 * line is written with one write(2), so lines from several threads never interleave.
 * Callers never pass a credential: messages name accounts, never keys.
 */
#ifndef ROTA_CORE_LOG_H
#define ROTA_CORE_LOG_H

enum rota_log_level {
    ROTA_LOG_DEBUG = 0,
    ROTA_LOG_INFO = 1,
    ROTA_LOG_WARN = 2,
    ROTA_LOG_ERROR = 3,
};

/* Name the program in every line and set the lowest level written. */
void rota_log_init(const char *prog, enum rota_log_level level);

/* Parse "debug", "info", "warn" or "error"; -1 if none of them. */
int rota_log_parse_level(const char *s);

void rota_log(enum rota_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define rota_debug(...) rota_log(ROTA_LOG_DEBUG, __VA_ARGS__)
#define rota_info(...)  rota_log(ROTA_LOG_INFO, __VA_ARGS__)
#define rota_warn(...)  rota_log(ROTA_LOG_WARN, __VA_ARGS__)
#define rota_error(...) rota_log(ROTA_LOG_ERROR, __VA_ARGS__)

#endif
