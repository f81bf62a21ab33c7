/*
 * journal.c - `rotactl journal`: how far behind each backend of the journal is.
 */
#include <stdio.h>
#include <string.h>

#include "remote.h"

static const char *s(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v && *v ? v : "-";
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
    if (!json_is_true(json_object_get(d, "enabled"))) {
        printf("journal: off (neither journal.file nor journal.redis is enabled)\n");
        return;
    }
    printf("journal: %lld passes, %lld changes, %lld records; last pass %.2f ms (max %.2f)\n"
           "  last change      %s\n",
           i(d, "passes"), i(d, "changes"), i(d, "records"), ms(d, "last_pass_ms"),
           ms(d, "max_pass_ms"), s(d, "last_change_at"));
    const json_t *f = json_object_get(d, "file");
    if (json_is_true(json_object_get(f, "enabled"))) {
        printf("file %s\n"
               "  fsync            %s\n"
               "  size             %lld bytes (snapshot at %lld)\n"
               "  lag              %.1f ms, %lld bytes queued, %lld records dropped\n"
               "  writes           %lld (%lld syncs, %lld snapshots, %lld errors)\n"
               "  last write       %s\n"
               "  last sync        %s\n"
               "  last snapshot    %s\n",
               s(f, "path"), s(f, "fsync"), i(f, "bytes"), i(f, "max_bytes") / 2,
               ms(f, "lag_ms"), i(f, "queue_bytes"), i(f, "dropped"), i(f, "writes"),
               i(f, "syncs"), i(f, "snapshots"), i(f, "errors"), s(f, "last_write"),
               s(f, "last_sync"), s(f, "last_snapshot"));
        if (strcmp(s(f, "last_error"), "-"))
            printf("  last error       %s\n", s(f, "last_error"));
    } else {
        printf("file: off\n");
    }
    const json_t *r = json_object_get(d, "redis");
    if (json_is_true(json_object_get(r, "enabled"))) {
        printf("redis %s (%s)\n"
               "  lag              %.1f ms, %lld records queued of %lld, %lld dropped\n"
               "  written          %lld records (%lld reconnects, %lld errors)\n"
               "  last write       %s\n",
               s(r, "target"),
               json_is_true(json_object_get(r, "connected")) ? "connected" : "NOT CONNECTED",
               ms(r, "lag_ms"), i(r, "queue"), i(r, "capacity"), i(r, "dropped"),
               i(r, "written"), i(r, "reconnects"), i(r, "errors"), s(r, "last_write"));
        if (strcmp(s(r, "last_error"), "-"))
            printf("  last error       %s\n", s(r, "last_error"));
    } else {
        printf("redis: off\n");
    }
}
