/*
 * journal.c - `rotactl journal`: how far behind each backend of the journal is.
 *
 * Paths, targets and errors come from rotad and are printed escaped (escape.c).
 */
#include <stdio.h>
#include <string.h>

#include "rotactl.h"

#define TEXT_MAX 512 /* bytes of a string shown */

/* String field "k" of "o", escaped, in "buf" of ROTACTL_ESC_SIZE(TEXT_MAX) bytes; "-"
 * when absent or empty. */
static const char *s(const json_t *o, const char *k, char *buf)
{
    const char *v = json_string_value(json_object_get(o, k));
    return rotactl_esc(v && *v ? v : "-", buf, ROTACTL_ESC_SIZE(TEXT_MAX));
}

static long long i(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static double ms(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

void rotactl_print_journal(const json_t *d)
{
    char a[ROTACTL_ESC_SIZE(TEXT_MAX)], b[ROTACTL_ESC_SIZE(TEXT_MAX)],
        c[ROTACTL_ESC_SIZE(TEXT_MAX)], e[ROTACTL_ESC_SIZE(TEXT_MAX)];
    if (!json_is_true(json_object_get(d, "enabled"))) {
        printf("journal: off (neither journal.file nor journal.redis is enabled)\n");
        return;
    }
    printf("journal: %lld passes, %lld changes, %lld records; last pass %.2f ms (max %.2f)\n"
           "  last change      %s\n",
           i(d, "passes"), i(d, "changes"), i(d, "records"), ms(d, "last_pass_ms"),
           ms(d, "max_pass_ms"), s(d, "last_change_at", a));
    const json_t *f = json_object_get(d, "file");
    if (json_is_true(json_object_get(f, "enabled"))) {
        printf("file %s\n"
               "  fsync            %s\n"
               "  size             %lld bytes (snapshot at %lld)\n"
               "  lag              %.1f ms, %lld bytes queued, %lld records dropped\n"
               "  writes           %lld (%lld syncs, %lld snapshots, %lld errors)\n"
               "  last write       %s\n"
               "  last sync        %s\n",
               s(f, "path", a), s(f, "fsync", b), i(f, "bytes"), i(f, "max_bytes") / 2,
               ms(f, "lag_ms"), i(f, "queue_bytes"), i(f, "dropped"), i(f, "writes"),
               i(f, "syncs"), i(f, "snapshots"), i(f, "errors"), s(f, "last_write", c),
               s(f, "last_sync", e));
        printf("  last snapshot    %s\n", s(f, "last_snapshot", a));
        if (strcmp(s(f, "last_error", a), "-"))
            printf("  last error       %s\n", a);
    } else {
        printf("file: off\n");
    }
    const json_t *r = json_object_get(d, "redis");
    if (json_is_true(json_object_get(r, "enabled"))) {
        printf("redis %s (%s)\n"
               "  lag              %.1f ms, %lld records queued of %lld, %lld dropped\n"
               "  written          %lld records (%lld reconnects, %lld errors)\n"
               "  last write       %s\n",
               s(r, "target", a),
               json_is_true(json_object_get(r, "connected")) ? "connected" : "NOT CONNECTED",
               ms(r, "lag_ms"), i(r, "queue"), i(r, "capacity"), i(r, "dropped"),
               i(r, "written"), i(r, "reconnects"), i(r, "errors"), s(r, "last_write", b));
        if (strcmp(s(r, "last_error", a), "-"))
            printf("  last error       %s\n", a);
    } else {
        printf("redis: off\n");
    }
}
