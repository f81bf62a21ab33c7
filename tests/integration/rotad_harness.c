/*
 * rotad_harness.c - real rotad and rotactl processes for tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "rota.h"
#include "rotad_harness.h"
#include "table.h"

static const char *bin_dir(void)
{
    const char *b = getenv("ROTA_TEST_BIN");
    return b ? b : ".";
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* What the running test started, by value (the test's own structs are gone by the time
 * its teardown runs): processes to kill, instances to clean up. */
#define LIVE_MAX 32
static pid_t live_pids[LIVE_MAX];
static struct {
    char instance[64], dir[128];
} live_inst[LIVE_MAX];

static void pid_track(pid_t pid, bool on)
{
    for (int i = 0; i < LIVE_MAX; i++)
        if (on ? live_pids[i] == 0 : live_pids[i] == pid) {
            live_pids[i] = on ? pid : 0;
            return;
        }
}

static void remove_instance(const char *instance, const char *dir);

void it_init(struct it *t, const char *tag)
{
    static int seq;
    memset(t, 0, sizeof(*t));
    snprintf(t->instance, sizeof(t->instance), "it-%s-%d-%d", tag, (int)getpid(), seq++);
    snprintf(t->dir, sizeof(t->dir), "/tmp/rota-%s-XXXXXX", tag);
    if (!mkdtemp(t->dir))
        abort();
    snprintf(t->config, sizeof(t->config), "%s/rota.yaml", t->dir);
    snprintf(t->log, sizeof(t->log), "%s/rotad.log", t->dir);
    for (int i = 0; i < LIVE_MAX; i++)
        if (!live_inst[i].instance[0]) {
            snprintf(live_inst[i].instance, sizeof(live_inst[i].instance), "%s", t->instance);
            snprintf(live_inst[i].dir, sizeof(live_inst[i].dir), "%s", t->dir);
            break;
        }
    setenv("ROTA_IT_KEY", "sk-it-secret-0123456789", 1);
}

void it_config_text(struct it *t, const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", t->config);
    FILE *f = fopen(tmp, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
    rename(tmp, t->config);
}

const char *it_reset_hhmm(void)
{
    static char hhmm[8];
    if (!hhmm[0]) {
        long m = (long)((time(NULL) + 43200) % 86400 / 60);
        snprintf(hhmm, sizeof(hhmm), "%02ld:%02ld", m / 60, m % 60);
    }
    return hhmm;
}

void it_config(struct it *t, int nalpha, uint64_t limit, const char *extra)
{
    it_config_reset(t, nalpha, limit, extra, it_reset_hhmm());
}

void it_config_reset(struct it *t, int nalpha, uint64_t limit, const char *extra,
                     const char *hhmm)
{
    size_t cap = 64 * 1024;
    char *s = malloc(cap);
    int n = snprintf(s, cap,
                     "instance: %s\nstate_dir: %s/state\n%s\nproviders:\n"
                     "  - name: alpha\n    kind: openai\n"
                     "    breaker: {failures: 3, half_open: 1, open_for: 1s}\n"
                     "    accounts:\n",
                     t->instance, t->dir, extra ? extra : "");
    for (int i = 0; i < nalpha; i++) {
        n += snprintf(s + n, cap - (size_t)n,
                      "      - name: a%d\n        credential: env:ROTA_IT_KEY\n", i);
        if (limit)
            n += snprintf(s + n, cap - (size_t)n,
                          "        windows: [{metric: requests, limit: %llu, reset: daily "
                          "%s}]\n",
                          (unsigned long long)limit, hhmm);
    }
    snprintf(s + n, cap - (size_t)n,
             "  - name: beta\n    kind: anthropic\n    accounts:\n"
             "      - {name: b0, credential: env:ROTA_IT_KEY}\n"
             "      - {name: b1, credential: env:ROTA_IT_KEY}\n"
             "  - name: local\n    kind: llamacpp\n    auth: none\n"
             "    accounts:\n      - {name: l0, credential: none}\n"
             "routes:\n  - name: chat\n    models: [chat-model]\n    tiers:\n"
             "      - {provider: alpha, strategy: hybrid}\n"
             "      - {provider: beta, strategy: round-robin}\n"
             "      - {provider: local, strategy: fill-first, ceiling: 1.0}\n");
    it_config_text(t, s);
    free(s);
}

pid_t it_spawn(struct it *t)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tools/rotad/rotad", bin_dir());
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        execl(path, "rotad", "-c", t->config, (char *)NULL);
        _exit(127);
    }
    pid_track(pid, true);
    return pid;
}

int it_start(struct it *t)
{
    t->rotad = it_spawn(t);
    for (int i = 0; i < 400; i++) {
        int st;
        if (waitpid(t->rotad, &st, WNOHANG) == t->rotad) {
            pid_track(t->rotad, false);
            t->rotad = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        json_t *r = it_ctl(t, "status", NULL, NULL);
        if (r) {
            json_decref(r);
            return 0;
        }
        sleep_ms(50);
    }
    return -1;
}

int it_stop(struct it *t, int sig)
{
    if (t->rotad <= 0)
        return -1;
    kill(t->rotad, sig ? sig : SIGTERM);
    for (int i = 0; i < 400; i++) {
        int st;
        if (waitpid(t->rotad, &st, WNOHANG) == t->rotad) {
            pid_track(t->rotad, false);
            t->rotad = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_ms(50);
    }
    kill(t->rotad, SIGKILL);
    waitpid(t->rotad, NULL, 0);
    pid_track(t->rotad, false);
    t->rotad = 0;
    return -1;
}

/* Keep what rotactl and the control socket said in <dir>/<file>: with the rest of the
 * test's directory it is swept for keys after the suite (tests/sweep_keys). */
static void transcript(const struct it *t, const char *file, const char *what,
                       const char *said)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", t->dir, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "a");
    if (!f) {
        close(fd);
        return;
    }
    fprintf(f, "$ %s\n%s\n", what, said ? said : "(nothing)");
    fclose(f);
}

json_t *it_ctl(struct it *t, const char *cmd, const char *arg1, const char *arg2)
{
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/state/rotad.sock", t->dir);
    char *argv[2] = {(char *)arg1, (char *)arg2};
    int argc = arg2 ? 2 : arg1 ? 1 : 0;
    json_t *reply = NULL;
    char err[256];
    if (rota_ctl_call(sock, cmd, argc, argv, 5000, &reply, err, sizeof(err)) != 0) {
        transcript(t, "control.out", cmd, err);
        return NULL;
    }
    char *text = json_dumps(reply, JSON_COMPACT);
    transcript(t, "control.out", cmd, text);
    free(text);
    return reply;
}

/* Read "f" into "buf" (at most "n" - 1 bytes, NUL-terminated); the rest is drained. */
static void slurp(FILE *f, char *buf, size_t n)
{
    size_t got = 0, k;
    while (got + 1 < n && (k = fread(buf + got, 1, n - 1 - got, f)) > 0)
        got += k;
    buf[got] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof(sink), f) > 0)
        ;
}

int it_sh(const char *cmd, char *out, size_t on, char *err, size_t en)
{
    char errf[] = "/tmp/rota-it-XXXXXX", full[16384];
    if (err) { /* made here, exclusively: the shell then writes to a file that is ours */
        int fd = mkstemp(errf);
        if (fd < 0)
            return -1;
        close(fd);
    }
    FILE *p = NULL;
    if ((size_t)snprintf(full, sizeof(full), "%s 2>%s", cmd, err ? errf : "&1") < sizeof(full))
        p = popen(full, "r");
    if (!p) {
        if (err)
            unlink(errf);
        return -1;
    }
    slurp(p, out, on);
    int st = pclose(p);
    if (err) {
        FILE *f = fopen(errf, "r");
        err[0] = 0;
        if (f) {
            slurp(f, err, en);
            fclose(f);
        }
        unlink(errf);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *it_bin(void)
{
    return bin_dir();
}

int it_rotactl(struct it *t, const char *args, char *out, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/tools/rotactl/rotactl -i %s %s", bin_dir(), t->instance,
             args);
    int rc = it_sh(cmd, out, n, NULL, 0);
    transcript(t, "rotactl.out", args, out);
    return rc;
}

bool it_log_has(struct it *t, const char *text)
{
    FILE *f = fopen(t->log, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static void remove_instance(const char *instance, const char *dir)
{
    char pat[160];
    snprintf(pat, sizeof(pat), "/dev/shm/rota.%s*", instance);
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
        globfree(&g);
    }
    /* Under tools/test the directory (logs, transcripts, journal, Redis dumps) is kept
     * for the sweep for keys that follows the suite. */
    const char *keep = getenv("ROTA_TEST_ARTIFACTS");
    char cmd[512];
    if (keep && keep[0])
        snprintf(cmd, sizeof(cmd), "mv '%s' '%s'/ 2>/dev/null || rm -rf '%s'", dir, keep, dir);
    else
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    for (int i = 0; i < LIVE_MAX; i++)
        if (strcmp(live_inst[i].instance, instance) == 0)
            live_inst[i].instance[0] = 0;
}

void it_cleanup(struct it *t)
{
    if (t->rotad > 0)
        it_stop(t, SIGKILL);
    remove_instance(t->instance, t->dir);
}

void it_drop_table(struct it *t)
{
    char pat[2][160];
    snprintf(pat[0], sizeof(pat[0]), "/dev/shm/rota.%s", t->instance);
    snprintf(pat[1], sizeof(pat[1]), "/dev/shm/rota.%s.*", t->instance);
    char lock[160];
    snprintf(lock, sizeof(lock), "/dev/shm/rota.%s.lock", t->instance);
    for (int k = 0; k < 2; k++) {
        glob_t g;
        if (glob(pat[k], 0, NULL, &g) != 0)
            continue;
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (strcmp(g.gl_pathv[i], lock) != 0)
                unlink(g.gl_pathv[i]);
        globfree(&g);
    }
}

/* ---- redis-server ---- */

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A connection to it, or -1. */
static int redis_connect(const struct it_redis *r)
{
    int fd;
    if (r->socket[0]) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->socket);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            close(fd);
            fd = -1;
        }
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)r->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            close(fd);
            fd = -1;
        }
    }
    return fd;
}

/* Send "cmds" (inline commands, AUTH first when it has a password); true once the reply
 * holds "want". */
static bool redis_says(const struct it_redis *r, const char *cmds, const char *want, int secs)
{
    int fd = redis_connect(r);
    if (fd < 0)
        return false;
    struct timeval tv = {secs, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char cmd[512];
    int n = r->password[0] ? snprintf(cmd, sizeof(cmd), "AUTH %s\r\n%s", r->password, cmds)
                           : snprintf(cmd, sizeof(cmd), "%s", cmds);
    bool ok = false;
    if (n > 0 && (size_t)n < sizeof(cmd) && send(fd, cmd, (size_t)n, MSG_NOSIGNAL) == n) {
        char buf[1024];
        size_t got = 0;
        while (!ok && got + 1 < sizeof(buf)) {
            ssize_t k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
            if (k <= 0)
                break;
            got += (size_t)k;
            buf[got] = 0;
            ok = strstr(buf, want) != NULL;
        }
    }
    close(fd);
    return ok;
}

/* Does it answer PING (after AUTH when it has a password)? */
static bool redis_pings(const struct it_redis *r)
{
    return redis_says(r, "PING\r\n", "+PONG", 1);
}

/* Under tools/test, what the server holds is kept as <dir>/kept-<port>-<n>.rdb,
 * uncompressed, before it stops, for the sweep for keys after the suite. Renamed from
 * dump.rdb at once: a restarted server must come back empty, as the tests expect. */
static void redis_keep(const struct it_redis *r)
{
    static int seq;
    const char *keep = getenv("ROTA_TEST_ARTIFACTS");
    if (!keep || !keep[0])
        return;
    char dump[400], kept[400];
    snprintf(dump, sizeof(dump), "%s/dump.rdb", r->dir);
    snprintf(kept, sizeof(kept), "%s/kept-%d-%d.rdb", r->dir, r->port, seq++);
    if (!redis_says(r, "CONFIG SET rdbcompression no\r\nSAVE\r\nPING\r\n", "+PONG", 5) ||
        rename(dump, kept) != 0)
        fprintf(stderr, "redis on port %d: could not keep its data for the sweep\n", r->port);
}

/* Fork and exec redis-server as "r" says; 0 once it answers, -1 if it exits first. */
static int redis_spawn(struct it_redis *r)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(r->log, sizeof(r->log), "%s/redis-%d.log", r->dir, r->port);
    const char *argv[24];
    int k = 0;
    argv[k++] = "redis-server";
    argv[k++] = "--port";
    argv[k++] = port;
    argv[k++] = "--bind";
    argv[k++] = "127.0.0.1";
    argv[k++] = "--save";
    argv[k++] = "";
    argv[k++] = "--appendonly";
    argv[k++] = "no";
    argv[k++] = "--dir";
    argv[k++] = r->dir;
    argv[k++] = "--logfile";
    argv[k++] = r->log;
    if (r->password[0]) {
        argv[k++] = "--requirepass";
        argv[k++] = r->password;
    }
    if (r->socket[0]) {
        argv[k++] = "--unixsocket";
        argv[k++] = r->socket;
        argv[k++] = "--unixsocketperm";
        argv[k++] = "700";
    }
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            close(fd);
        }
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    pid_track(pid, true);
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            pid_track(pid, false);
            r->pid = 0;
            return -1;
        }
        if (redis_pings(r))
            return 0;
        sleep_ms(50);
    }
    it_redis_stop(r, SIGKILL);
    return -1;
}

int it_redis_start(struct it_redis *r, const char *dir, int port, const char *socket,
                   const char *password)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    snprintf(r->socket, sizeof(r->socket), "%s", socket ? socket : "");
    snprintf(r->password, sizeof(r->password), "%s", password ? password : "");
    for (int tries = 0; tries < 5; tries++) {
        r->port = port > 0 ? port : port == 0 ? free_port() : 0;
        if (r->port < 0)
            return -1;
        if (redis_spawn(r) == 0)
            return 0;
        if (port != 0)
            break; /* a given port: no other to try */
    }
    return -1;
}

int it_redis_restart(struct it_redis *r)
{
    if (r->pid > 0)
        return -1;
    for (int tries = 0; tries < 20; tries++) { /* the port may linger a moment */
        if (redis_spawn(r) == 0)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

int it_redis_stop(struct it_redis *r, int sig)
{
    pid_t pid = r->pid;
    if (pid <= 0)
        return -1;
    redis_keep(r);
    kill(pid, sig ? sig : SIGTERM);
    int st = 0;
    pid_t got = 0;
    for (int i = 0; i < 200 && (got = waitpid(pid, &st, WNOHANG)) == 0; i++)
        sleep_ms(50);
    bool forced = got == 0;
    if (forced) {
        kill(pid, SIGKILL);
        got = waitpid(pid, &st, 0);
    }
    pid_track(pid, false);
    r->pid = 0;
    if (got != pid || forced)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int it_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < LIVE_MAX; i++) {
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
        }
        live_pids[i] = 0;
    }
    for (int i = 0; i < LIVE_MAX; i++)
        if (live_inst[i].instance[0])
            remove_instance(live_inst[i].instance, live_inst[i].dir);
    return 0;
}

/* One selector process: select, report 200, until told to stop. */
static void selector(const char *instance, struct it_counts *c, _Atomic int *stop)
{
    rota_t *h = NULL;
    char err[256];
    if (rota_attach(instance, &h, err, sizeof(err)) != 0) {
        atomic_store(&c->last_error, -1);
        atomic_fetch_add(&c->errors, 1);
        _exit(1);
    }
    rota_route_t route;
    if (rota_route(h, "chat", &route) != 0)
        _exit(2);
    uint64_t gen = rota_generation(h);
    while (!atomic_load(stop)) {
        rota_choice ch;
        int rc = rota_select(h, &route, NULL, 0, 10, &ch);
        if (rc == 0) {
            rota_outcome o = {.status = 200, .tokens = 10};
            int rr = rota_report(h, &ch, &o);
            if (rr != 0 && rr != ROTA_ESTALE) {
                atomic_store(&c->last_error, rr);
                atomic_fetch_add(&c->errors, 1);
            }
            atomic_fetch_add(&c->ok, 1);
        } else if (rc == ROTA_EEXHAUSTED) {
            atomic_fetch_add(&c->exhausted, 1);
        } else {
            atomic_store(&c->last_error, rc);
            atomic_fetch_add(&c->errors, 1);
        }
        if (rota_generation(h) != gen) {
            gen = rota_generation(h);
            atomic_fetch_add(&c->reattached, 1);
        }
        if ((atomic_load(&c->ok) & 63) == 0)
            usleep(100); /* leave the machine some air */
    }
    rota_detach(h);
    _exit(0);
}

void it_load_start(struct it_load *l, const char *instance, int procs)
{
    memset(l, 0, sizeof(*l));

    size_t size = sizeof(struct it_counts) * 8 + 64;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        abort();
    l->c = p;
    l->stop = (_Atomic int *)((char *)p + sizeof(struct it_counts) * 8);
    l->n = procs;
    for (int i = 0; i < procs; i++) {
        l->pid[i] = fork();
        if (l->pid[i] == 0)
            selector(instance, &l->c[i], l->stop);
        pid_track(l->pid[i], true);
    }
}

uint64_t it_load_ok(const struct it_load *l)
{
    uint64_t n = 0;
    for (int i = 0; i < l->n; i++)
        n += atomic_load(&l->c[i].ok);
    return n;
}

void it_load_stop(struct it_load *l)
{
    if (!l->stop)
        return;
    atomic_store(l->stop, 1);
    for (int i = 0; i < l->n; i++) {
        waitpid(l->pid[i], NULL, 0);
        pid_track(l->pid[i], false);
    }
    l->n = 0;
}
