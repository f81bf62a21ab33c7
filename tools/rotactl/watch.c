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
    char note[ROTACTL_ESC_SIZE(300)]; /* why the frame shows what it shows, escaped; "" when
                                       * all is well */
};

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
        char e[ROTACTL_ESC_SIZE(sizeof(err))];
        snprintf(w->note, sizeof(w->note), "generation %llu not mapped yet (%s)",
                 (unsigned long long)gen, rotactl_esc(err, e, sizeof(e)));
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
            char e[ROTACTL_ESC_NAME];
            fprintf(out, "\nno route or model '%s' in generation %llu\n",
                    rotactl_esc(w->route_name, e, sizeof(e)),
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

int rotactl_watch(const struct rotactl_opts *o, const struct rotactl_line *l)
{
    struct watch w = {.o = o,
                      .route_name = l->npos ? l->pos[0] : NULL,
                      .interval_ns = rotactl_line_num(l, "--interval", ROTA_NS_PER_S),
                      .count = (long)rotactl_line_num(l, "--count", 0)};
    int rc = rotactl_attach(o, &w.m);
    if (rc)
        return rc;
    if (w.route_name && rota_sup_find_route(&w.m, w.route_name) == ROTA_NONE) {
        char e[ROTACTL_ESC_NAME];
        fprintf(stderr, "rotactl: no route or model '%s' in instance '%s'\n",
                rotactl_esc(w.route_name, e, sizeof(e)), o->instance);
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
