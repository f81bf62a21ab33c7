/*
 * workers.c - `rotactl workers`: the dispatch pool's processes as rotad sees them.
 *
 * Figures are each process's last report (once a second, workers/pool_stats.h);
 * listeners come from rotad and are printed escaped (escape.c).
 */
#include <stdio.h>

#include "rotactl.h"

static long long i(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* "-" for a figure the process has not reported yet. */
static const char *fig(const json_t *o, const char *k, char *buf, size_t n)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        return "-";
    snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    return buf;
}

void rotactl_print_workers(const json_t *d)
{
    char a[ROTACTL_ESC_SIZE(320)];
    if (!json_is_true(json_object_get(d, "enabled")) &&
        json_array_size(json_object_get(d, "processes")) == 0) {
        printf("workers: none (the config has no workers: section)\n");
        return;
    }
    size_t k;
    const json_t *v;
    printf("listeners:");
    json_array_foreach(json_object_get(d, "listeners"), k, v)
        printf(" %s%s", k ? "| " : "", rotactl_esc(json_string_value(v), a, sizeof(a)));
    printf("\nrestarts: %lld\n", i(d, "restarts"));
    printf("%-8s %-4s %-9s %8s %7s %6s %9s %9s %7s %9s %9s %9s\n", "PID", "SLOT", "STATE",
           "UPTIME_S", "THREADS", "CONNS", "REQUESTS", "IN_FLIGHT", "ERRORS", "EXHAUSTED",
           "P50_US", "P99_US");
    json_array_foreach(json_object_get(d, "processes"), k, v)
    {
        char b[8][24];
        printf("%-8lld %-4lld %-9s %8lld %7s %6s %9s %9s %7s %9s %9s %9s\n", i(v, "pid"),
               i(v, "slot"),
               rotactl_esc(json_string_value(json_object_get(v, "state")), a, sizeof(a)),
               i(v, "uptime_s"), fig(v, "threads", b[0], 24), fig(v, "connections", b[1], 24),
               fig(v, "requests", b[2], 24), fig(v, "in_flight", b[3], 24),
               fig(v, "errors", b[4], 24), fig(v, "exhausted", b[5], 24),
               fig(v, "p50_added_us", b[6], 24), fig(v, "p99_added_us", b[7], 24));
    }
}
