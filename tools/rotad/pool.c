/*
 * pool.c - the dispatch pool's processes: rotad opens the listeners, spawns the
 * rota-worker processes on them, restarts one that dies, and rolls the pool over when a
 * reload changes it (DESIGN.md section 7).
 *
 * DESIGN
 * rotad holds every listening socket and workers inherit them, so a worker that dies
 * loses nothing waiting in its accept queue: its successor goes on from there
 * (pool_listen.c has the sockets).
 *
 * A "set" is one configuration of the pool: the listeners and every option a worker is
 * started with, copied into the set when it starts (a restart never reads a config
 * that came later). Its processes are slots 0..processes-1. A slot whose process exits
 * while its set is current is restarted: at once if it had run for 10 s or is the first
 * to die quickly, otherwise after a backoff that doubles from 100 ms to 25.6 s, so a
 * worker that cannot start does not spin. Its calls in flight are reclaimed by the lease
 * reaper (shm/clients.h) within a second.
 *
 * A reload prepares the new set before the table changes (program, access log, the
 * listeners it lacks: a failure refuses the reload and changes nothing) and commits it
 * once the table has: a set like the running one touches no process (workers follow
 * generations through librota, and client keys live in the table); another starts its
 * processes, then sends the old ones SIGTERM: they stop accepting, close their own
 * copies of the sockets, finish what they hold within the drain timeout they were
 * started with (rota-worker --stop-ms), and are killed if still there 2 s after it.
 * rotad_reload refuses a table without client keys while the running set listens off
 * loopback, so no listener off loopback ever serves without keys.
 *
 * Each worker gets one end of a SOCK_SEQPACKET socketpair and sends its figures once a
 * second (workers/pool_stats.h); the last are kept for `rotactl workers`. A worker gets
 * no descriptor of rotad's but those given (closefrom), nor the environment variables
 * the config reads keys from, and stops when rotad goes (--parent-pid, the parent-death
 * signal). Children are waited for by pid only: the probe thread waits for its own exec
 * probes. All of it runs on rotad's main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "hash.h"
#include "log.h"
#include "pool_stats.h"
#include "pool_int.h"
#include "rotad.h"

#define NS_PER_MS 1000000ull
#define MAX_ARGS  24

extern char **environ;

struct worker {
    pid_t pid; /* 0: the entry is free */
    uint32_t set, slot;
    int stats_fd;
    uint64_t started;  /* monotonic ns */
    uint32_t stop_ms;  /* the drain timeout it was started with */
    bool off_loopback; /* its set listened off loopback: it may hold such clients */
    uint64_t kill_at;  /* draining: SIGKILL after this; 0 while serving */
    struct rota_pool_stats last;
    bool have_last;
};

struct slot {
    uint32_t fails;   /* quick deaths in a row */
    uint64_t next_at; /* restart due (monotonic ns); 0 = none waiting */
    uint64_t restarts;
};

/* What a set's processes are started with: all of it copied from its config. */
struct set {
    uint64_t key; /* a hash of every option, to tell a change */
    char program[PATH_MAX];
    struct pool_listener ls[POOL_MAX_LISTENERS];
    uint32_t nls;
    int log_fd; /* the access log: -1 off, 2 rotad's stderr, or a file */
    uint32_t processes, threads, drain_ms;
    char *ca_file;
    char **env; /* rotad's environment less the variables holding keys */
    char args[MAX_ARGS][48];
    uint32_t nargs;
    struct slot *slots;
};

struct rotad_pool {
    char instance[64];
    uint32_t set; /* the current set's number */
    struct set cur, next;
    bool next_ready; /* "next" prepared, not yet committed */
    bool next_same;  /* ... and it is the running set */
    struct worker *w;
    uint32_t nw;
    uint64_t restarts, exits;
};

static uint64_t mono(void)
{
    return rota_clock_mono();
}

/* ---- the set ---- */

/* Is "path" a file (or, with "dir", a directory) nobody but root or rotad's user may
 * change? */
static bool trusted(const char *path, bool dir, char *err, size_t en)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return snprintf(err, en, "workers: %s: %s; set workers.program", path, strerror(errno)),
               false;
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
        return snprintf(err, en, "workers: %s is not an executable file", path), false;
    if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
        ((st.st_mode & 022) && !(dir && (st.st_mode & S_ISVTX) && st.st_uid == 0)))
        return snprintf(err, en,
                        "workers: %s is owned by uid %u or writable by others (mode %04o): "
                        "the program it leads to would run with every key; expected root's "
                        "or rotad's user's, writable by its owner only",
                        path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777)),
               false;
    return true;
}

/* The program and every directory above it (sticky root-owned ones like /tmp pass on
 * the owner rule: only their owners may rename what is in them). */
static bool program_trusted(const char *program, char *err, size_t en)
{
    char real[PATH_MAX];
    if (!realpath(program, real))
        return snprintf(err, en, "workers: %s: %s; set workers.program", program,
                        strerror(errno)),
               false;
    if (!trusted(real, false, err, en))
        return false;
    for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
        *slash = '\0';
        if (!trusted(real[0] ? real : "/", true, err, en))
            return false;
        if (!real[0])
            break;
    }
    return true;
}

/* The program to run: the config's, else rota-worker beside rotad (or, in a build
 * tree, in tools/rota-worker beside tools/rotad). */
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
    return program_trusted(out, err, en) ? 0 : -EPERM;
}

static void add_arg(struct set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_arg(struct set *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->args[s->nargs++], sizeof(s->args[0]), fmt, ap);
    va_end(ap);
}

static void set_args(struct set *s, const struct rota_config_workers *w)
{
    s->nargs = 0;
    add_arg(s, "--threads=%u", w->threads);
    add_arg(s, "--attempts=%u", w->attempts);
    add_arg(s, "--deadline-ms=%u", w->request_timeout_ms);
    add_arg(s, "--connect-ms=%u", w->connect_timeout_ms);
    add_arg(s, "--first-byte-ms=%u", w->first_byte_timeout_ms);
    add_arg(s, "--idle-ms=%u", w->idle_timeout_ms);
    add_arg(s, "--stop-ms=%u", w->drain_timeout_ms);
    add_arg(s, "--max-header-bytes=%u", w->max_header_bytes);
    add_arg(s, "--max-headers=%u", w->max_headers);
    add_arg(s, "--max-body-bytes=%llu", (unsigned long long)w->max_body_bytes);
    add_arg(s, "--max-conns=%u", w->max_connections);
    add_arg(s, "--header-ms=%u", w->header_timeout_ms);
    add_arg(s, "--body-ms=%u", w->body_timeout_ms);
    add_arg(s, "--client-idle-ms=%u", w->keepalive_timeout_ms);
    add_arg(s, "--parent-pid=%d", (int)getpid());
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    return rota_hash_mix(h ^ rota_hash_bytes(p, n));
}

/* A hash of everything that, changed, needs new processes. */
static uint64_t set_key(const struct set *s, const struct rota_config_workers *w)
{
    uint64_t h = mix(0, s->program, strlen(s->program));
    for (uint32_t i = 0; i < s->nargs; i++)
        h = mix(h, s->args[i], strlen(s->args[i]));
    h = mix(h, &w->processes, sizeof(w->processes));
    h = mix(h, w->access_log, strlen(w->access_log));
    h = mix(h, w->ca_file ? w->ca_file : "", w->ca_file ? strlen(w->ca_file) : 0);
    for (uint32_t i = 0; i < s->nls; i++) {
        h = mix(h, s->ls[i].spec, strlen(s->ls[i].spec));
        h = mix(h, &s->ls[i].mode, sizeof(s->ls[i].mode));
    }
    return h;
}

/* The access log: stderr, off, or a regular file opened for appending that rotad's user
 * owns, has one name, and nobody else may write (opened without waiting: a FIFO put
 * there does not block rotad). */
static int open_log(const char *path, char *err, size_t n)
{
    if (strcmp(path, "off") == 0)
        return -1;
    if (strcmp(path, "stderr") == 0)
        return 2;
    int fd = open(
        path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        0640);
    struct stat st;
    if (fd < 0)
        return snprintf(err, n, "workers.access_log %s: %s", path, strerror(errno)), -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        st.st_nlink != 1 || (st.st_mode & 022)) {
        close(fd);
        return snprintf(err, n,
                        "workers.access_log %s is not a regular file of rotad's user with "
                        "one name, writable by it alone; remove it or fix its owner and mode",
                        path),
               -EPERM;
    }
    fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
    int h = pool_high_fd(fd);
    if (h < 0)
        snprintf(err, n, "workers.access_log %s: %s", path, strerror(-h));
    return h;
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

static void set_free(struct set *s)
{
    pool_listen_close(s->ls, s->nls);
    if (s->log_fd > 2)
        close(s->log_fd);
    free(s->ca_file);
    free(s->env);
    free(s->slots);
    *s = (struct set){.log_fd = -1};
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

/* Start slot "slot" of the current set. Its descriptors go to 3, 4, ...: each TCP
 * listener's sockets of this slot (one per thread), each Unix listener, the figures'
 * socket, the access log; every other descriptor is closed in the child. */
static int spawn(struct rotad_pool *p, uint32_t slot)
{
    struct set *s = &p->cur;
    struct worker *w = free_entry(p);
    uint32_t nfd = 2;
    for (uint32_t i = 0; i < s->nls; i++)
        nfd += s->ls[i].tcp ? s->threads : 1;
    char **argv = calloc(s->nargs + nfd + 8, sizeof(*argv));
    char(*fdargs)[40] = calloc(nfd, sizeof(*fdargs));
    int sv[2] = {-1, -1};
    if (!w || !argv || !fdargs ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ||
        (sv[0] = pool_high_fd(sv[0])) < 0 || (sv[1] = pool_high_fd(sv[1])) < 0) {
        free(argv);
        free(fdargs);
        if (sv[0] >= 0)
            close(sv[0]);
        if (sv[1] >= 0)
            close(sv[1]);
        return -ENOMEM;
    }
    char err[256];
    if (!program_trusted(s->program, err, sizeof(err))) { /* again: it may have changed */
        rota_error("%s", err);
        free(argv);
        free(fdargs);
        close(sv[0]);
        close(sv[1]);
        return -EPERM;
    }
    int argc = 0, target = 3;
    uint32_t k = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    argv[argc++] = s->program;
    argv[argc++] = "-i";
    argv[argc++] = p->instance;
    for (uint32_t i = 0; i < s->nargs; i++)
        argv[argc++] = s->args[i];
    for (uint32_t i = 0; i < s->nls; i++) {
        const struct pool_listener *l = &s->ls[i];
        for (uint32_t t = 0; t < (l->tcp ? s->threads : 1); t++, k++, target++) {
            posix_spawn_file_actions_adddup2(&fa, l->fds[l->tcp ? slot * s->threads + t : 0],
                                             target);
            snprintf(fdargs[k], sizeof(fdargs[k]), "--%slisten-fd=%d", l->tcp ? "thread-" : "",
                     target);
            argv[argc++] = fdargs[k];
        }
    }
    posix_spawn_file_actions_adddup2(&fa, sv[1], target);
    snprintf(fdargs[k], sizeof(fdargs[k]), "--stats-fd=%d", target++);
    argv[argc++] = fdargs[k++];
    if (s->log_fd > 2)
        posix_spawn_file_actions_adddup2(&fa, s->log_fd, target);
    snprintf(fdargs[k], sizeof(fdargs[k]), "--log-fd=%d", s->log_fd > 2 ? target++ : s->log_fd);
    argv[argc++] = fdargs[k];
    if (s->ca_file) {
        argv[argc++] = "--ca-file";
        argv[argc++] = s->ca_file;
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* its stdout: rotad's log */
    /* rotad's other descriptors (hiredis' and libcurl's sockets are not close-on-exec) */
    posix_spawn_file_actions_addclosefrom_np(&fa, target);
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
    int rc = posix_spawn(&pid, s->program, &fa, &at, argv, s->env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    free(argv);
    free(fdargs);
    if (rc != 0) {
        close(sv[0]);
        rota_error("workers: cannot start %s: %s", s->program, strerror(rc));
        return -rc;
    }
    bool off = false;
    for (uint32_t i = 0; i < s->nls; i++)
        off |= !s->ls[i].loopback;
    *w = (struct worker){.pid = pid,
                         .set = p->set,
                         .slot = slot,
                         .stats_fd = sv[0],
                         .started = mono(),
                         .stop_ms = s->drain_ms,
                         .off_loopback = off};
    s->slots[slot].next_at = 0;
    return 0;
}

/* Send the processes of sets before the current one SIGTERM, to finish and exit. */
static void drain_old(struct rotad_pool *p, uint64_t now)
{
    for (uint32_t i = 0; i < p->nw; i++)
        if (p->w[i].pid && p->w[i].set != p->set && !p->w[i].kill_at) {
            kill(p->w[i].pid, SIGTERM);
            p->w[i].kill_at = now + (p->w[i].stop_ms + 2000ull) * NS_PER_MS;
        }
}

/* Make "s" from "c"'s workers: section: "cur"'s listeners taken into account. */
static int prepare(struct rotad_pool *p, const struct rota_config *c, struct set *s, char *err,
                   size_t n)
{
    const struct rota_config_workers *w = &c->workers;
    *s = (struct set){.log_fd = -1,
                      .processes = w->processes,
                      .threads = w->threads,
                      .drain_ms = w->drain_timeout_ms};
    int rc = find_program(w, s->program, sizeof(s->program), err, n);
    if (rc)
        return rc;
    set_args(s, w);
    /* compare before opening anything: listeners as specs only */
    s->nls = w->nlisteners;
    for (uint32_t i = 0; i < s->nls; i++) {
        const struct rota_config_listener *l = &w->listeners[i];
        if (l->tcp)
            snprintf(s->ls[i].spec, sizeof(s->ls[i].spec), "tcp %s", l->tcp);
        else
            snprintf(s->ls[i].spec, sizeof(s->ls[i].spec), "unix %s", l->unix_path);
        s->ls[i].mode = l->unix_mode;
    }
    s->key = set_key(s, w);
    memset(s->ls, 0, sizeof(s->ls));
    if (p->cur.key == s->key && p->cur.processes)
        return 1; /* the running set */
    s->slots = calloc(w->processes, sizeof(*s->slots));
    s->env = worker_env(c);
    s->ca_file = w->ca_file ? strdup(w->ca_file) : NULL;
    if (!s->slots || !s->env || (w->ca_file && !s->ca_file)) {
        set_free(s);
        return snprintf(err, n, "workers: out of memory"), -ENOMEM;
    }
    if ((s->log_fd = open_log(w->access_log, err, n)) < -1 ||
        (rc = pool_listen_prepare(p->cur.ls, p->cur.nls, w, w->processes * w->threads, s->ls,
                                  err, n))) {
        rc = s->log_fd < -1 ? s->log_fd : rc;
        s->log_fd = -1;
        set_free(s);
        return rc;
    }
    return 0;
}

int rotad_pool_prepare(struct rotad *d, const struct rota_config *c, char *err, size_t n)
{
    struct rotad_pool *p = d->pool;
    if (!p) {
        if (!c->workers.enabled)
            return 0;
        if (!(p = d->pool = calloc(1, sizeof(*p))))
            return snprintf(err, n, "workers: out of memory"), -ENOMEM;
        p->cur.log_fd = p->next.log_fd = -1;
        snprintf(p->instance, sizeof(p->instance), "%s", c->instance);
        struct rlimit rl; /* room above POOL_HIGH_FD for every socket the pool holds */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    rotad_pool_abort(d);
    if (!c->workers.enabled) { /* an empty set: the running one stops */
        p->next = (struct set){.log_fd = -1};
        p->next_ready = true;
        p->next_same = !p->cur.processes;
        return 0;
    }
    int rc = prepare(p, c, &p->next, err, n);
    if (rc < 0)
        return rc;
    p->next_ready = true;
    p->next_same = rc == 1;
    return 0;
}

void rotad_pool_abort(struct rotad *d)
{
    struct rotad_pool *p = d->pool;
    if (p && p->next_ready) {
        if (!p->next_same)
            set_free(&p->next);
        p->next = (struct set){.log_fd = -1};
        p->next_ready = false;
    }
}

void rotad_pool_commit(struct rotad *d)
{
    struct rotad_pool *p = d->pool;
    if (!p || !p->next_ready)
        return;
    p->next_ready = false;
    if (p->next_same) {
        p->next = (struct set){.log_fd = -1};
        return;
    }
    struct set *s = &p->next;
    pool_listen_commit(p->cur.ls, p->cur.nls, s->ls, s->nls,
                       s->processes * s->threads); /* closes what "s" does not use */
    p->cur.nls = 0;
    set_free(&p->cur);
    p->cur = *s;
    p->next = (struct set){.log_fd = -1};
    p->set++;
    uint64_t now = mono();
    uint32_t started = 0;
    pool_listen_commit_listen(p->cur.ls, p->cur.nls);
    for (uint32_t i = 0; i < p->cur.processes; i++)
        if (spawn(p, i))
            p->cur.slots[i].next_at = now + 100 * NS_PER_MS;
        else
            started++;
    /* the old set goes once the new one has a process (a set that cannot start at all
     * leaves the old serving while its slots retry) */
    if (started || !p->cur.processes)
        drain_old(p, now);
    else
        rota_error("workers: no process of the new set started; the old ones go on serving "
                   "until one does");
    if (p->cur.processes)
        rota_info("workers: %u processes x %u threads on %u listeners (set %u)",
                  p->cur.processes, p->cur.threads, p->cur.nls, p->set);
    else
        rota_info("workers: the section is gone; the pool's processes stop");
}

bool rotad_pool_off_loopback(const struct rotad *d)
{
    const struct rotad_pool *p = d->pool;
    for (uint32_t i = 0; p && i < p->cur.nls; i++)
        if (!p->cur.ls[i].loopback)
            return true;
    for (uint32_t i = 0; p && i < p->nw; i++) /* old ones still draining such clients */
        if (p->w[i].pid && p->w[i].off_loopback)
            return true;
    return false;
}

/* ---- while running ---- */

static void read_stats(struct worker *w)
{
    struct rota_pool_stats m;
    ssize_t got;
    for (int i = 0; i < 64 && (got = recv(w->stats_fd, &m, sizeof(m), MSG_DONTWAIT)) > 0; i++)
        if (got == (ssize_t)sizeof(m) && m.magic == ROTA_POOL_STATS_MAGIC && m.pid == w->pid) {
            w->last = m;
            w->have_last = true;
        }
}

static void exited(struct rotad_pool *p, struct worker *w, int status, uint64_t now)
{
    bool current = w->set == p->set && w->slot < p->cur.processes;
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
    struct slot *s = &p->cur.slots[w->slot];
    s->fails = now - w->started >= 10000 * NS_PER_MS ? 0 : s->fails + 1;
    uint64_t wait_ms = s->fails <= 1 ? 0 : 100ull << (s->fails > 10 ? 8 : s->fails - 2);
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
            exited(p, w, status, now);
            continue;
        }
        if (w->kill_at && now >= w->kill_at) {
            rota_warn("workers: old process %d still there after the drain timeout; killed",
                      (int)w->pid);
            kill(w->pid, SIGKILL);
            w->kill_at = UINT64_MAX;
        }
    }
    for (uint32_t s = 0; s < p->cur.processes; s++)
        if (p->cur.slots[s].next_at && now >= p->cur.slots[s].next_at) {
            p->cur.slots[s].restarts++;
            p->restarts++;
            if (spawn(p, s))
                p->cur.slots[s].next_at = now + 1000 * NS_PER_MS;
            else
                drain_old(p, now); /* no-op unless the old set waited for this one */
        }
}

void rotad_pool_stop(struct rotad *d)
{
    struct rotad_pool *p = d->pool;
    if (!p)
        return;
    rotad_pool_abort(d);
    p->set++;
    p->cur.processes = 0;
    drain_old(p, mono());
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
    set_free(&p->cur);
    free(p->w);
    free(p);
    d->pool = NULL;
}

json_t *rotad_pool_json(struct rotad *d)
{
    struct rotad_pool *p = d->pool;
    json_t *o = json_object(), *ws = json_array(), *ls = json_array();
    uint64_t now = mono();
    json_object_set_new(o, "enabled", json_boolean(p && p->cur.processes));
    for (uint32_t i = 0; p && i < p->cur.nls; i++)
        json_array_append_new(ls, json_string(p->cur.ls[i].spec));
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
                            json_integer(w->slot < p->cur.processes && w->set == p->set
                                             ? (json_int_t)p->cur.slots[w->slot].restarts
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
