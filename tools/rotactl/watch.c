/*
 * watch.c - rotactl watch: the accounts table, redrawn.
 *
 * DESIGN
 * One thread. Every interval a frame is rendered into memory (a one-line summary of the
 * instance, then the accounts table) and written at once: on a terminal after clearing
 * the screen, otherwise appended with a blank line between frames and no escape codes.
 * Before each frame the instance's directory is read: when its current generation moved
 * on (a reload), the new one is mapped and the old let go; when the directory is gone or
 * the new generation cannot be mapped (rotad stopped, or is mid-publish), the last map
 * stays in use and the frame says so. SIGINT and SIGTERM only set a flag: the sleep
 * between frames wakes, the loop ends, the cursor comes back.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "quota.h"
#include "rotactl.h"
#include "supervise.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = sig;
}

struct watch {
    const struct rotactl_opts *o;
    const char *route_name; /* NULL = every account */
    uint64_t interval_ns;
    long count; /* frames; 0 = until stopped */
    struct rota_shm_map m;
    char note[300]; /* why the frame shows what it shows, "" when all is well */
};

static int parse_args(struct watch *w, int argc, char **argv)
{
    w->interval_ns = ROTA_NS_PER_S;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        size_t len = strcspn(a, "=");
        bool interval = strncmp(a, "--interval", len) == 0 && len == 10;
        bool count = strncmp(a, "--count", len) == 0 && len == 7;
        if (interval || count) {
            val = a[len] == '=' ? a + len + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val)
                return rotactl_usage_error("watch: %.*s needs a value", (int)len, a);
        }
        if (interval) {
            if (rota_parse_duration(val, &w->interval_ns) || w->interval_ns < ROTA_NS_PER_MS)
                return rotactl_usage_error("watch: --interval wants a duration of at least "
                                           "1ms (500ms, 2s, 1m), not '%s'",
                                           val);
        } else if (count) {
            char *end;
            errno = 0;
            w->count = strtol(val, &end, 10);
            if (*end || errno || w->count < 1)
                return rotactl_usage_error("watch: --count wants a positive number, not '%s'",
                                           val);
        } else if (a[0] == '-' && a[1]) {
            return rotactl_usage_error("watch: unknown option '%s'", a);
        } else if (!w->route_name) {
            w->route_name = a;
        } else {
            return rotactl_usage_error("watch takes at most one route");
        }
    }
    return ROTACTL_OK;
}

/* Follow the instance to its current generation, keeping the map we have when there is
 * nothing better. */
static void follow(struct watch *w)
{
    char err[256];
    uint64_t gen = 0;
    w->note[0] = 0;
    if (rota_shm_current(w->o->instance, &gen, err, sizeof(err)) || gen == 0) {
        snprintf(w->note, sizeof(w->note),
                 "instance directory gone or empty: showing generation %llu as last mapped",
                 (unsigned long long)w->m.hdr->generation);
        return;
    }
    if (gen == w->m.hdr->generation)
        return;
    struct rota_shm_map next;
    if (rota_shm_attach(w->o->instance, &next, err, sizeof(err))) {
        snprintf(w->note, sizeof(w->note), "generation %llu not mapped yet (%s)",
                 (unsigned long long)gen, err);
        return;
    }
    rota_shm_detach(&w->m);
    w->m = next;
}

static void render(struct watch *w, FILE *out)
{
    uint64_t now = rota_clock_mono();
    int64_t wall = rota_clock_wall();
    struct rota_view_instance vi;
    char iso[40];
    rota_view_instance(&w->m, now, wall, &vi);
    fprintf(out, "%s  every ", rotactl_iso(wall, iso, sizeof(iso)));
    char d[32];
    fprintf(out, "%s\n", rotactl_dur(w->interval_ns, d, sizeof(d)));
    rotactl_instance_line(out, &vi);
    if (w->note[0])
        fprintf(out, "note: %s\n", w->note);
    uint32_t route = ROTA_NONE;
    if (w->route_name) {
        route = rota_sup_find_route(&w->m, w->route_name);
        if (route == ROTA_NONE) {
            fprintf(out, "\nno route or model '%s' in generation %llu\n", w->route_name,
                    (unsigned long long)w->m.hdr->generation);
            return;
        }
    }
    fputc('\n', out);
    rotactl_accounts_text(out, &w->m, route, now, wall);
}

/* Sleep until "until" (monotonic ns) or a signal. */
static void pause_until(uint64_t until)
{
    for (uint64_t now = rota_clock_mono(); !stop && now < until; now = rota_clock_mono()) {
        uint64_t left = until - now;
        struct timespec ts = {(time_t)(left / ROTA_NS_PER_S), (long)(left % ROTA_NS_PER_S)};
        nanosleep(&ts, NULL);
    }
}

int rotactl_watch(const struct rotactl_opts *o, int argc, char **argv)
{
    struct watch w = {.o = o};
    int rc = parse_args(&w, argc, argv);
    if (rc)
        return rc;
    if (o->json)
        return rotactl_usage_error("watch draws text; use 'accounts --json' in a loop");
    if ((rc = rotactl_attach(o, &w.m)))
        return rc;
    if (w.route_name && rota_sup_find_route(&w.m, w.route_name) == ROTA_NONE) {
        fprintf(stderr, "rotactl: no route or model '%s' in instance '%s'\n", w.route_name,
                o->instance);
        rota_shm_detach(&w.m);
        return ROTACTL_REFUSED;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: the sleep wakes */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO);
    if (tty)
        fputs("\033[?25l", stdout); /* hide the cursor while redrawing */
    uint64_t next = rota_clock_mono();
    for (long frame = 0; !stop && (w.count == 0 || frame < w.count); frame++) {
        if (frame > 0)
            follow(&w);
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (!mem) {
            fprintf(stderr, "rotactl: out of memory\n");
            rc = ROTACTL_UNREACHABLE;
            break;
        }
        render(&w, mem);
        fclose(mem);
        if (tty)
            fputs("\033[H\033[2J", stdout);
        else if (frame > 0)
            fputc('\n', stdout);
        fwrite(buf, 1, len, stdout);
        fflush(stdout);
        free(buf);
        if (w.count && frame + 1 == w.count)
            break;
        next += w.interval_ns;
        if (next < rota_clock_mono()) /* a slow frame: no burst of catching up */
            next = rota_clock_mono() + w.interval_ns;
        pause_until(next);
    }
    if (tty) {
        fputs("\033[?25h", stdout);
        fflush(stdout);
    }
    rota_shm_detach(&w.m);
    return rc;
}
