/*
 * pool.c - the dispatch pool's processes: rotad opens the listeners, spawns the
 * rota-worker processes on them, restarts one that dies, and rolls the pool over when a
 * reload changes it (DESIGN.md section 7).
 *
 * DESIGN
 * rotad holds every listening socket and workers inherit them, so a worker that dies
 * loses nothing waiting in its accept queue: its successor goes on from there. A TCP
 * listener is one SO_REUSEPORT socket per slot and thread (the kernel spreads
 * connections over them; a socket every thread shared would hand them all to whichever
 * waited first); a Unix listener, one socket they all accept on. A rotad that restarts
 * while its old workers still drain binds beside them (SO_REUSEPORT, same user).
 *
 * A "set" is one configuration of the pool: the listeners and every option a worker is
 * started with. Its processes are slots 0..processes-1. A slot whose process exits
 * while its set is current is restarted: at once if it had run for 10 s or is the
 * first to die quickly, otherwise after a backoff that doubles from 100 ms to 30 s, so a
 * worker that cannot start does not spin. Its calls in flight are reclaimed by the lease reaper
 * (shm/clients.h) within a second. A reload that leaves the set as it was touches no process
 * (workers follow generations through librota, and client keys live in the table); one that
 * changes it starts the new set, then sends the old one SIGTERM: they stop accepting and finish
 * what they hold within the drain timeout (rota-worker --stop-ms), and are killed if
 * still there 2 s after it. A listener in both sets keeps its sockets (open_listeners);
 * an old worker closes its own as it starts to drain, so the kernel stops queueing
 * connections where nobody accepts on a socket the new set does not use. Trade-off: connections
 * hashed to the socket of a slot waiting out its restart backoff wait with it.
 *
 * Each worker gets one end of a SOCK_SEQPACKET socketpair and sends its figures once a
 * second (workers/pool_stats.h); the last are kept for `rotactl workers`. Children are
 * waited for by pid only: the probe thread waits for its own exec probes.
 *
 * All of it runs on rotad's main thread (spawn at start and reload, reap at SIGCHLD and
 * each tick, stop at exit). Creating a Unix listener sets the umask for a moment, while
 * the probe and journal threads may create files: theirs are created 0600 or chmod-ed
 * after, which that umask (never wider than 0177) does not change.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "front.h"
#include "log.h"
#include "pool_stats.h"
#include "rotad.h"

#define MAX_LISTENERS 16
#define HIGH_FD       1100 /* rotad's copies live above what a child's dup2 targets */
#define NS_PER_MS     1000000ull

extern char **environ;

struct listener {
    char spec[320]; /* "tcp HOST:PORT" or "unix PATH MODE": what identifies it */
    bool tcp;
    int *fds; /* tcp: one SO_REUSEPORT socket per slot and thread (slot-major);
                 unix: one socket every thread of every slot accepts on */
    uint32_t nfds;
    char *unix_path; /* unlinked when the listener is closed */
};

struct worker {
    pid_t pid; /* 0: the entry is free */
    uint32_t set, slot;
    int stats_fd;
    uint64_t started; /* monotonic ns */
    uint64_t kill_at; /* draining: SIGKILL after this; 0 while serving */
    struct rota_pool_stats last;
    bool have_last;
};

struct slot {
    uint32_t fails;   /* quick deaths in a row */
    uint64_t next_at; /* restart due (monotonic ns); 0 = none waiting */
    uint64_t restarts;
};

struct rotad_pool {
    char set_key[2048]; /* every option of the current set, to tell a change */
    uint32_t set;
    char program[PATH_MAX];
    struct listener ls[MAX_LISTENERS];
    uint32_t nls;
    int log_fd; /* the access log: -1 off, 2 rotad's stderr, or a file */
    struct worker *w;
    uint32_t nw;
    struct slot *slots;
    uint32_t processes;
    char args[24][48]; /* the set's options, as strings */
    uint32_t nargs;
    uint64_t restarts, exits;
};

static uint64_t mono(void)
{
    return rota_clock_mono();
}

/* ---- listeners ---- */

static int high(int fd)
{
    if (fd < 0 || fd >= HIGH_FD)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD), e = errno;
    close(fd);
    return h < 0 ? -e : h;
}

static int open_tcp(const char *hostport, char *err, size_t n)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV},
                    *ai = NULL;
    int g = getaddrinfo(h, colon + 1, &hints, &ai);
    if (g != 0)
        return snprintf(err, n, "listen %s: %s", hostport, gai_strerror(g)), -EINVAL;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    int rc = fd < 0 ? -errno : 0;
    if (!rc && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
                bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0))
        rc = -errno;
    freeaddrinfo(ai);
    if (rc) {
        if (fd >= 0)
            close(fd);
        return snprintf(err, n, "listen %s: %s", hostport, strerror(-rc)), rc;
    }
    return high(fd);
}

static void spec_of(const struct rota_config_listener *l, char *out, size_t n)
{
    if (l->tcp)
        snprintf(out, n, "tcp %s", l->tcp);
    else
        snprintf(out, n, "unix %s %04o", l->unix_path, l->unix_mode);
}

static void close_listener(struct listener *l)
{
    for (uint32_t i = 0; i < l->nfds; i++)
        if (l->fds[i] >= 0)
            close(l->fds[i]);
    if (l->unix_path)
        unlink(l->unix_path);
    free(l->unix_path);
    free(l->fds);
    *l = (struct listener){0};
}

static void free_listeners(struct listener *ls, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (ls[i].fds)
            close_listener(&ls[i]);
}

/* Open the sockets of "out" from index "from" on ("out" sized for "nfds" of them). */
static int open_listener(const struct rota_config_listener *l, uint32_t nfds, uint32_t from,
                         struct listener *out, char *err, size_t n)
{
    out->tcp = l->tcp != NULL;
    out->nfds = l->tcp ? nfds : 1;
    if (!(out->fds = malloc(out->nfds * sizeof(int))))
        return snprintf(err, n, "workers: out of memory"), -ENOMEM;
    for (uint32_t i = 0; i < out->nfds; i++)
        out->fds[i] = -1;
    for (uint32_t i = from; i < out->nfds; i++) {
        int fd = l->tcp ? open_tcp(l->tcp, err, n)
                        : high(rota_front_listen_unix(l->unix_path, l->unix_mode, err, n));
        if (fd < 0) {
            close_listener(out);
            return fd;
        }
        out->fds[i] = fd;
    }
    out->unix_path = l->unix_path ? strdup(l->unix_path) : NULL;
    return 0;
}

static int find_listener(const struct rotad_pool *p, const char *spec)
{
    for (uint32_t j = 0; j < p->nls; j++)
        if (p->ls[j].fds && strcmp(p->ls[j].spec, spec) == 0)
            return (int)j;
    return -1;
}

/* The listeners of "w" into "out". Sockets open in "p" are kept: a listener in both has
 * the same sockets, as many as both need (a TCP listener of more slots or threads gets
 * the rest new, one of fewer closes its extra ones, which the old workers that accepted
 * on them let go as they drain); the others are opened. On failure nothing of "p" has
 * moved and "out" is closed. */
static int open_listeners(struct rotad_pool *p, const struct rota_config_workers *w,
                          struct listener *out, char *err, size_t n)
{
    uint32_t per = w->processes * w->threads;
    for (uint32_t i = 0; i < w->nlisteners; i++)
        out[i] = (struct listener){0};
    for (uint32_t i = 0; i < w->nlisteners; i++) {
        const struct rota_config_listener *l = &w->listeners[i];
        spec_of(l, out[i].spec, sizeof(out[i].spec));
        int j = find_listener(p, out[i].spec);
        uint32_t have = j < 0 ? 0 : p->ls[j].nfds;
        if (j >= 0 && (!l->tcp || have >= per))
            continue; /* taken over below, once every new one is open */
        int rc = open_listener(l, per, have, &out[i], err, n);
        if (rc) {
            free_listeners(out, i);
            return rc;
        }
    }
    for (uint32_t i = 0; i < w->nlisteners; i++) {
        int j = find_listener(p, out[i].spec);
        if (j < 0)
            continue;
        struct listener *old = &p->ls[j];
        if (!out[i].fds) {
            if (old->tcp) /* of fewer: close the extra ones */
                for (uint32_t k = per; k < old->nfds; k++)
                    close(old->fds[k]);
            out[i] = *old;
            if (old->tcp)
                out[i].nfds = per;
        } else { /* of more: the first ones are the old */
            memcpy(out[i].fds, old->fds, old->nfds * sizeof(int));
            free(old->fds);
        }
        *old = (struct listener){0};
    }
    return 0;
}

/* ---- the set ---- */

/* The program to run: the config's, else rota-worker beside rotad (or, in a build
 * tree, in tools/rota-worker beside tools/rotad). It must be a file rotad's user or
 * root owns that nobody else may write: it will run with every key. */
static int find_program(const struct rota_config_workers *w, char *out, size_t n, char *err,
                        size_t en)
{
    char self[PATH_MAX];
    struct stat st;
    if (w->program) {
        snprintf(out, n, "%s", w->program);
    } else {
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len <= 0)
            return snprintf(err, en, "workers: cannot find rotad's own path: %s",
                            strerror(errno)),
                   -ENOENT;
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        *slash = '\0';
        if ((size_t)snprintf(out, n, "%.*s/rota-worker", PATH_MAX - 64, self) < n &&
            stat(out, &st) != 0)
            snprintf(out, n, "%.*s/../rota-worker/rota-worker", PATH_MAX - 64, self);
    }
    if (stat(out, &st) != 0)
        return snprintf(err, en, "workers: %s: %s; set workers.program", out, strerror(errno)),
               -ENOENT;
    if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
        return snprintf(err, en, "workers: %s is not an executable file", out), -EACCES;
    if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022))
        return snprintf(err, en,
                        "workers: %s is owned by uid %u or writable by others (mode %04o); "
                        "it would run with every key: expected a file of root or rotad's "
                        "user, writable by its owner only",
                        out, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777)),
               -EPERM;
    return 0;
}

static void add_arg(struct rotad_pool *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_arg(struct rotad_pool *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->args[p->nargs++], sizeof(p->args[0]), fmt, ap);
    va_end(ap);
}

static void set_args(struct rotad_pool *p, const struct rota_config_workers *w)
{
    p->nargs = 0;
    add_arg(p, "--threads=%u", w->threads);
    add_arg(p, "--attempts=%u", w->attempts);
    add_arg(p, "--deadline-ms=%u", w->request_timeout_ms);
    add_arg(p, "--connect-ms=%u", w->connect_timeout_ms);
    add_arg(p, "--first-byte-ms=%u", w->first_byte_timeout_ms);
    add_arg(p, "--idle-ms=%u", w->idle_timeout_ms);
    add_arg(p, "--stop-ms=%u", w->drain_timeout_ms);
    add_arg(p, "--max-header-bytes=%u", w->max_header_bytes);
    add_arg(p, "--max-headers=%u", w->max_headers);
    add_arg(p, "--max-body-bytes=%llu", (unsigned long long)w->max_body_bytes);
    add_arg(p, "--max-conns=%u", w->max_connections);
    add_arg(p, "--header-ms=%u", w->header_timeout_ms);
    add_arg(p, "--body-ms=%u", w->body_timeout_ms);
    add_arg(p, "--client-idle-ms=%u", w->keepalive_timeout_ms);
}

/* Everything that, changed, needs new processes. */
static void set_key(const struct rota_config_workers *w, const char *program, char *out,
                    size_t n)
{
    int at = snprintf(out, n, "%s|%u|%u|%u|%u|%u|%u|%u|%u|%u|%u|%llu|%u|%u|%u|%u|%s|%s",
                      program, w->processes, w->threads, w->attempts, w->request_timeout_ms,
                      w->connect_timeout_ms, w->first_byte_timeout_ms, w->idle_timeout_ms,
                      w->drain_timeout_ms, w->max_header_bytes, w->max_headers,
                      (unsigned long long)w->max_body_bytes, w->max_connections,
                      w->header_timeout_ms, w->body_timeout_ms, w->keepalive_timeout_ms,
                      w->access_log, w->ca_file ? w->ca_file : "");
    for (uint32_t i = 0; i < w->nlisteners && at > 0 && (size_t)at < n; i++) {
        char s[320];
        spec_of(&w->listeners[i], s, sizeof(s));
        at += snprintf(out + at, n - (size_t)at, "|%s", s);
    }
}

/* The access log: stderr, off, or a file opened for appending that rotad's user owns,
 * not a symlink, writable by nobody else. */
static int open_log(const char *path, char *err, size_t n)
{
    if (strcmp(path, "off") == 0)
        return -1;
    if (strcmp(path, "stderr") == 0)
        return 2;
    int fd =
        open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);
    struct stat st;
    if (fd < 0)
        return snprintf(err, n, "workers.access_log %s: %s", path, strerror(errno)), -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022)) {
        close(fd);
        return snprintf(err, n,
                        "workers.access_log %s is not a regular file of rotad's user "
                        "writable by it alone; remove it or fix its owner and mode",
                        path),
               -EPERM;
    }
    return high(fd);
}

static struct worker *free_entry(struct rotad_pool *p)
{
    for (uint32_t i = 0; i < p->nw; i++)
        if (!p->w[i].pid)
            return &p->w[i];
    struct worker *nw = realloc(p->w, (p->nw + 8) * sizeof(*nw));
    if (!nw)
        return NULL;
    memset(nw + p->nw, 0, 8 * sizeof(*nw));
    p->w = nw;
    p->nw += 8;
    return &p->w[p->nw - 8];
}

/* Does "entry" ("NAME=value") set a variable the config reads a secret from (env:NAME)? */
static bool secret_var(const struct rota_config *c, const char *entry)
{
    size_t len = strcspn(entry, "=");
    for (uint32_t i = 0; i <= c->desc.naccounts; i++) {
        const char *r = i < c->desc.naccounts ? c->accounts[i].cred_source
                                              : c->journal.redis_password_source;
        if (r && strncmp(r, "env:", 4) == 0 && strlen(r + 4) == len &&
            strncmp(r + 4, entry, len) == 0)
            return true;
    }
    return false;
}

/* rotad's environment less the variables holding keys: a worker reads credentials from
 * the table, and needs the rest (TZ, proxies, CA paths for libcurl). */
static char **worker_env(const struct rota_config *c)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    for (size_t i = 0; env && i < n; i++)
        if (!secret_var(c, environ[i]))
            env[k++] = environ[i];
    return env;
}

/* Start slot "slot" of the current set. Its descriptors go to 3, 4, ...: each TCP
 * listener's sockets of this slot (one per thread), each Unix listener, the figures'
 * socket, the access log. */
static int spawn(struct rotad *d, uint32_t slot)
{
    struct rotad_pool *p = d->pool;
    struct worker *w = free_entry(p);
    uint32_t threads = d->cfg->workers.threads, nfd = 2;
    for (uint32_t i = 0; i < p->nls; i++)
        nfd += p->ls[i].tcp ? threads : 1;
    char **argv = calloc(p->nargs + nfd + 8, sizeof(*argv));
    char(*fdargs)[40] = calloc(nfd, sizeof(*fdargs));
    int sv[2] = {-1, -1};
    if (!w || !argv || !fdargs ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ||
        (sv[0] = high(sv[0])) < 0 || (sv[1] = high(sv[1])) < 0) {
        free(argv);
        free(fdargs);
        if (sv[0] >= 0)
            close(sv[0]);
        if (sv[1] >= 0)
            close(sv[1]);
        return -ENOMEM;
    }
    int argc = 0, target = 3;
    uint32_t k = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    argv[argc++] = p->program;
    argv[argc++] = "-i";
    argv[argc++] = (char *)d->cfg->instance;
    for (uint32_t i = 0; i < p->nargs; i++)
        argv[argc++] = p->args[i];
    for (uint32_t i = 0; i < p->nls; i++) {
        const struct listener *l = &p->ls[i];
        for (uint32_t t = 0; t < (l->tcp ? threads : 1); t++, k++, target++) {
            posix_spawn_file_actions_adddup2(&fa, l->fds[l->tcp ? slot * threads + t : 0],
                                             target);
            snprintf(fdargs[k], sizeof(fdargs[k]), "--%slisten-fd=%d", l->tcp ? "thread-" : "",
                     target);
            argv[argc++] = fdargs[k];
        }
    }
    posix_spawn_file_actions_adddup2(&fa, sv[1], target);
    snprintf(fdargs[k], sizeof(fdargs[k]), "--stats-fd=%d", target++);
    argv[argc++] = fdargs[k++];
    if (p->log_fd > 2)
        posix_spawn_file_actions_adddup2(&fa, p->log_fd, target);
    snprintf(fdargs[k], sizeof(fdargs[k]), "--log-fd=%d", p->log_fd > 2 ? target : p->log_fd);
    argv[argc++] = fdargs[k];
    if (d->cfg->workers.ca_file) {
        argv[argc++] = "--ca-file";
        argv[argc++] = (char *)d->cfg->workers.ca_file;
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* its stdout: rotad's log */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&defaults, sigs[i]);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &defaults);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    char **env = worker_env(d->cfg);
    int rc = env ? posix_spawn(&pid, p->program, &fa, &at, argv, env) : ENOMEM;
    free(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    free(argv);
    free(fdargs);
    if (rc != 0) {
        close(sv[0]);
        rota_error("workers: cannot start %s: %s", p->program, strerror(rc));
        return -rc;
    }
    *w = (struct worker){
        .pid = pid, .set = p->set, .slot = slot, .stats_fd = sv[0], .started = mono()};
    p->slots[slot].next_at = 0;
    return 0;
}

/* Send the processes of sets before the current one SIGTERM, to finish and exit. */
static void drain_old(struct rotad *d, uint64_t now)
{
    struct rotad_pool *p = d->pool;
    uint64_t by = now + (d->cfg->workers.drain_timeout_ms + 2000ull) * NS_PER_MS;
    for (uint32_t i = 0; i < p->nw; i++)
        if (p->w[i].pid && p->w[i].set != p->set && !p->w[i].kill_at) {
            kill(p->w[i].pid, SIGTERM);
            p->w[i].kill_at = by;
        }
}

int rotad_pool_configure(struct rotad *d, char *err, size_t n)
{
    const struct rota_config_workers *w = &d->cfg->workers;
    struct rotad_pool *p = d->pool;
    char program[PATH_MAX], key[sizeof(p->set_key)];
    if (!w->enabled) {
        if (p && p->processes) {
            rota_info("workers: the section is gone; the pool's processes stop");
            p->set++;
            p->processes = 0;
            drain_old(d, mono());
            free_listeners(p->ls, p->nls);
            p->nls = 0;
            p->set_key[0] = '\0';
        }
        return 0;
    }
    int rc = find_program(w, program, sizeof(program), err, n);
    if (rc)
        return rc;
    struct rlimit rl; /* room above HIGH_FD for every socket the pool holds */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    set_key(w, program, key, sizeof(key));
    if (p && strcmp(key, p->set_key) == 0)
        return 0; /* the same pool: the workers follow the new generation themselves */
    if (!p && !(p = d->pool = calloc(1, sizeof(*p))))
        return snprintf(err, n, "workers: out of memory"), -ENOMEM;
    if (!p->set)
        p->log_fd = -1;
    struct listener ls[MAX_LISTENERS];
    struct slot *slots = calloc(w->processes, sizeof(*slots));
    int log_fd = slots ? open_log(w->access_log, err, n) : -ENOMEM;
    if (log_fd < -1 || (rc = open_listeners(p, w, ls, err, n))) {
        free(slots);
        if (log_fd > 2)
            close(log_fd);
        return log_fd < -1 ? log_fd : rc;
    }
    free_listeners(p->ls, p->nls); /* those the new set does not use */
    memcpy(p->ls, ls, w->nlisteners * sizeof(ls[0]));
    p->nls = w->nlisteners;
    if (p->log_fd > 2)
        close(p->log_fd);
    p->log_fd = log_fd;
    free(p->slots);
    p->slots = slots;
    p->processes = w->processes;
    snprintf(p->program, sizeof(p->program), "%s", program);
    snprintf(p->set_key, sizeof(p->set_key), "%s", key);
    set_args(p, w);
    p->set++;
    for (uint32_t s = 0; s < p->processes; s++)
        if (spawn(d, s))
            p->slots[s].next_at = mono() + 100 * NS_PER_MS;
    drain_old(d, mono());
    rota_info("workers: %u processes x %u threads on %u listeners (set %u)", w->processes,
              w->threads, p->nls, p->set);
    return 0;
}

/* ---- while running ---- */

static void read_stats(struct worker *w)
{
    struct rota_pool_stats m;
    ssize_t got;
    while ((got = recv(w->stats_fd, &m, sizeof(m), MSG_DONTWAIT)) > 0)
        if (got == (ssize_t)sizeof(m) && m.magic == ROTA_POOL_STATS_MAGIC && m.pid == w->pid) {
            w->last = m;
            w->have_last = true;
        }
}

static void exited(struct rotad *d, struct worker *w, int status, uint64_t now)
{
    struct rotad_pool *p = d->pool;
    bool current = w->set == p->set && w->slot < p->processes;
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
    p->exits++;
    close(w->stats_fd);
    if (!current) {
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            rota_warn("workers: old process %d %s while draining", (int)w->pid, how);
        *w = (struct worker){0};
        return;
    }
    struct slot *s = &p->slots[w->slot];
    s->fails = now - w->started >= 10000 * NS_PER_MS ? 0 : s->fails + 1;
    uint64_t wait_ms = s->fails <= 1 ? 0 : 100ull << (s->fails > 10 ? 8 : s->fails - 2);
    if (wait_ms > 30000)
        wait_ms = 30000;
    s->next_at = now + wait_ms * NS_PER_MS + 1;
    rota_warn("workers: process %d (slot %u) %s; restarting it in %llu ms", (int)w->pid,
              w->slot, how, (unsigned long long)wait_ms);
    *w = (struct worker){0};
}

void rotad_pool_tick(struct rotad *d, uint64_t now)
{
    struct rotad_pool *p = d->pool;
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nw; i++) {
        struct worker *w = &p->w[i];
        if (!w->pid)
            continue;
        read_stats(w);
        int status;
        pid_t r = waitpid(w->pid, &status, WNOHANG);
        if (r == w->pid) {
            exited(d, w, status, now);
            continue;
        }
        if (w->kill_at && now >= w->kill_at) {
            rota_warn("workers: old process %d still there after the drain timeout; killed",
                      (int)w->pid);
            kill(w->pid, SIGKILL);
            w->kill_at = UINT64_MAX;
        }
    }
    for (uint32_t s = 0; s < p->processes; s++)
        if (p->slots[s].next_at && now >= p->slots[s].next_at) {
            p->slots[s].restarts++;
            p->restarts++;
            if (spawn(d, s))
                p->slots[s].next_at = now + 1000 * NS_PER_MS;
        }
}

void rotad_pool_stop(struct rotad *d)
{
    struct rotad_pool *p = d->pool;
    if (!p)
        return;
    p->set++;
    p->processes = 0;
    drain_old(d, mono());
    /* rotad's own end: wait for them, so their last calls are reported to a table rotad
     * still keeps */
    for (;;) {
        bool any = false;
        uint64_t now = mono();
        rota_shm_heartbeat(d->w, now); /* they still select while they finish */
        rotad_pool_tick(d, now);
        for (uint32_t i = 0; i < p->nw; i++)
            any |= p->w[i].pid != 0;
        if (!any)
            break;
        nanosleep(&(struct timespec){0, 10 * NS_PER_MS}, NULL);
    }
    free_listeners(p->ls, p->nls);
    if (p->log_fd > 2)
        close(p->log_fd);
    free(p->w);
    free(p->slots);
    free(p);
    d->pool = NULL;
}

json_t *rotad_pool_json(struct rotad *d)
{
    struct rotad_pool *p = d->pool;
    json_t *o = json_object(), *ws = json_array(), *ls = json_array();
    uint64_t now = mono();
    json_object_set_new(o, "enabled", json_boolean(p && p->processes));
    for (uint32_t i = 0; p && i < p->nls; i++)
        json_array_append_new(ls, json_string(p->ls[i].spec));
    for (uint32_t i = 0; p && i < p->nw; i++) {
        const struct worker *w = &p->w[i];
        if (!w->pid)
            continue;
        json_t *j = json_object();
        json_object_set_new(j, "pid", json_integer(w->pid));
        json_object_set_new(j, "slot", json_integer(w->slot));
        json_object_set_new(j, "state",
                            json_string(w->kill_at      ? "draining"
                                        : !w->have_last ? "starting"
                                                        : "serving"));
        json_object_set_new(j, "uptime_s",
                            json_integer((json_int_t)((now - w->started) / 1000000000ull)));
        json_object_set_new(j, "restarts",
                            json_integer(w->slot < p->processes && w->set == p->set
                                             ? (json_int_t)p->slots[w->slot].restarts
                                             : 0));
        if (w->have_last) {
            const struct rota_pool_stats *m = &w->last;
            json_object_set_new(j, "threads", json_integer((json_int_t)m->threads));
            json_object_set_new(j, "connections", json_integer((json_int_t)m->conns));
            json_object_set_new(j, "accepted", json_integer((json_int_t)m->accepted));
            json_object_set_new(j, "requests", json_integer((json_int_t)m->requests));
            json_object_set_new(j, "in_flight", json_integer((json_int_t)m->inflight));
            json_object_set_new(j, "errors", json_integer((json_int_t)m->errors));
            json_object_set_new(j, "exhausted", json_integer((json_int_t)m->exhausted));
            if (m->p50_added_us != UINT64_MAX) {
                json_object_set_new(j, "p50_added_us",
                                    json_integer((json_int_t)m->p50_added_us));
                json_object_set_new(j, "p99_added_us",
                                    json_integer((json_int_t)m->p99_added_us));
            }
        }
        json_array_append_new(ws, j);
    }
    json_object_set_new(o, "listeners", ls);
    json_object_set_new(o, "processes", ws);
    json_object_set_new(o, "restarts", json_integer(p ? (json_int_t)p->restarts : 0));
    return o;
}
