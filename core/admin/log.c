/*
 * log.c - one line per event on stderr.
 *
 * DESIGN
 * The program name and level are set once at start (before threads); each line is
 * formatted into a stack buffer, cut at its size, and written with one write(2).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "rota";
static enum rota_log_level log_level = ROTA_LOG_INFO;
static const char *const level_name[] = {"debug", "info", "warn", "error"};

void rota_log_init(const char *prog, enum rota_log_level level)
{
    log_prog = prog;
    log_level = level;
}

int rota_log_parse_level(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, level_name[i]) == 0)
            return i;
    return -1;
}

void rota_log(enum rota_log_level level, const char *fmt, ...)
{
    if (level < log_level || level > ROTA_LOG_ERROR)
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_prog, (int)getpid(), level_name[level]);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (k < 0 ? 0 : (size_t)k);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* One line per event: a message's own newlines would start lines of their own. */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
