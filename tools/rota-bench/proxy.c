/*
 * proxy.c - rota-bench --proxy: the same load against the upstream directly, nginx as
 * a plain reverse proxy and rota's dispatch pool, row by row, in one run.
 *
 * DESIGN
 * Everything runs on 127.0.0.1 from a temporary directory: the fixed-answer upstream
 * (proxy_upstream.c); nginx from Debian with as many worker processes as the pool has
 * loops (processes x threads), SO_REUSEPORT listeners like the pool's, HTTP/1.1 and an
 * upstream keep-alive pool, an access log like the pool's; rotad on a table of one
 * route over one provider at the upstream, its accounts given a dummy credential
 * through rotad's environment; and the rota-worker processes on one port
 * (SO_REUSEPORT). Each row runs its load against direct, nginx and rota in turn:
 * throughput with wrk (64 keep-alive connections, a 1 KB and a 100 KB POST from a Lua
 * script; beside each, the CPU time nginx's and the pool's processes spent per request,
 * from /proc over the run), the rest with proxy_load.c; the latency rows take turns in rounds (a slice of
 * requests in sequence, or one stream, per target and round), so that a busy moment of
 * the shared host falls on all three alike. Every child is told to die with rota-bench
 * (PR_SET_PDEATHSIG); at the end, or on SIGINT/SIGTERM, each is stopped (SIGTERM, then
 * SIGKILL after 5 s), the table's segments and the directory removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"
#include "rota.h"

#define MAX_CHILDREN  80
#define NGINX_KEEPIDLE 64 /* idle upstream connections nginx keeps per worker */

enum { DIRECT, NGINX, ROTA, TARGETS };
static const char *const target_name[TARGETS] = {"direct", "nginx", "rota"};

/* What was started, for stop_all (and the signal handler). */
static struct {
    pid_t pid[MAX_CHILDREN];
    int n;
    char dir[64];
    char instance[64];
} run;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    for (int i = run.n - 1; i >= 0; i--)
        if (run.pid[i] > 0)
            kill(run.pid[i], SIGTERM);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *f)
{
    (void)s, (void)flag, (void)f;
    return remove(p) != 0 && errno != ENOENT;
}

/* Stop every child (the last started first), remove the table and the directory. */
static void stop_all(void)
{
    for (int i = run.n - 1; i >= 0; i--) {
        pid_t p = run.pid[i];
        if (p <= 0)
            continue;
        kill(p, SIGTERM);
        int k = 0;
        while (waitpid(p, NULL, WNOHANG) == 0 && k++ < 500)
            sleep_ms(10);
        if (k > 500) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
        }
        run.pid[i] = 0;
    }
    run.n = 0;
    if (run.instance[0]) {
        char pat[128];
        glob_t g;
        snprintf(pat, sizeof(pat), "/dev/shm/rota.%s*", run.instance);
        if (glob(pat, 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++)
                unlink(g.gl_pathv[i]);
            globfree(&g);
        }
    }
    if (run.dir[0] && nftw(run.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "rota-bench: cannot remove %s\n", run.dir);
    run.dir[0] = 0;
}

/* Run argv[0] with "argv" ("env": one NAME=VALUE more, or NULL), stderr to "log";
 * stdout to a pipe whose read end is *out when "out", else to the log too. */
static pid_t spawn(char *const argv[], const char *log, const char *env, int *out)
{
    int p[2] = {-1, -1};
    if (out && pipe2(p, O_CLOEXEC) != 0)
        return -1;
    if (run.n == MAX_CHILDREN)
        return -1;
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            _exit(127);
        dup2(out ? p[1] : fd, 1);
        dup2(fd, 2);
        signal(SIGPIPE, SIG_DFL);
        if (env)
            putenv((char *)env);
        execv(argv[0], argv);
        _exit(127);
    }
    if (out) {
        close(p[1]);
        *out = pid > 0 ? p[0] : (close(p[0]), -1);
    }
    if (pid > 0)
        run.pid[run.n++] = pid;
    return pid;
}

/* The first line of "fd" within "ms" (NUL-terminated, newline dropped): 0 or -1. */
static int read_line(int fd, char *buf, size_t n, int ms)
{
    size_t got = 0;
    while (got + 1 < n) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, ms) != 1 || read(fd, buf + got, 1) != 1)
            return -1;
        if (buf[got] == '\n')
            break;
        got++;
    }
    buf[got] = 0;
    return 0;
}

/* A free TCP port of 127.0.0.1 (for nginx, which cannot take port 0 and say). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* "prog" on PATH or in the sbin directories ("out": its path), true when found. */
static bool find_program(const char *prog, char *out, size_t n)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin:/sbin", path ? path : "");
    for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/%s", d, prog);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

/* Our own program "name" (rotad, rota-worker) beside rota-bench: installed together, or
 * in the build tree's tools/NAME/. */
static bool find_ours(const char *name, char *out, size_t n)
{
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (k <= 0)
        return false;
    self[k] = 0;
    const char *dir = dirname(self);
    snprintf(out, n, "%s/%s", dir, name);
    if (access(out, X_OK) == 0)
        return true;
    snprintf(out, n, "%s/../%s/%s", dir, name, name);
    return access(out, X_OK) == 0;
}

static int write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t w = fwrite(text, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* A chat request body of exactly "size" bytes; "stream" asks for a stream (first key,
 * where the upstream looks for it). */
static char *make_body(size_t size, bool stream)
{
    const char *pre = stream ? "{\"stream\":true,\"model\":\"bench-model\",\"messages\":"
                               "[{\"role\":\"user\",\"content\":\""
                             : "{\"model\":\"bench-model\",\"max_tokens\":64,\"messages\":"
                               "[{\"role\":\"user\",\"content\":\"";
    const char *post = "\"}]}";
    size_t a = strlen(pre), b = strlen(post);
    char *s = malloc(size + 1);
    if (!s || size < a + b + 1) {
        free(s);
        return NULL;
    }
    memcpy(s, pre, a);
    for (size_t i = a; i < size - b; i++)
        s[i] = "lorem ipsum dolor sit amet "[(i - a) % 27];
    memcpy(s + size - b, post, b + 1);
    return s;
}

/* Start nginx on "port", proxying to the upstream on "up" with "workers" processes. */
static int start_nginx(const char *nginx, uint32_t workers, uint16_t port, uint16_t up,
                       char *err, size_t n)
{
    char dir[128], conf[4096], path[192];
    struct rlimit rl;
    rlim_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024; /* ours */
    snprintf(dir, sizeof(dir), "%s/nginx", run.dir);
    if (mkdir(dir, 0711) != 0)
        return snprintf(err, n, "mkdir %s: %s", dir, strerror(errno)), -1;
    int k = snprintf(
        conf, sizeof(conf),
        "daemon off;\nworker_processes %u;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
        "worker_rlimit_nofile %llu;\nevents { worker_connections %llu; }\nhttp {\n"
        "  access_log %s/access.log;\n  client_body_temp_path %s/body;\n"
        "  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fastcgi;\n"
        "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
        "  client_max_body_size 32m;\n  client_body_buffer_size 128k;\n"
        "  keepalive_timeout 120s;\n  keepalive_requests 100000000;\n"
        "  upstream up {\n    server 127.0.0.1:%u;\n    keepalive %d;\n"
        "    keepalive_requests 100000000;\n  }\n"
        "  server {\n    listen 127.0.0.1:%u reuseport backlog=4096;\n"
        "    location / {\n      proxy_pass http://up;\n      proxy_http_version 1.1;\n"
        "      proxy_set_header Connection \"\";\n    }\n  }\n}\n",
        workers, dir, dir, (unsigned long long)nofile, (unsigned long long)nofile, dir, dir,
        dir, dir, dir, dir, up, NGINX_KEEPIDLE, port);
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    if (write_file(path, conf, (size_t)k) != 0)
        return snprintf(err, n, "cannot write %s", path), -1;
    char log[192];
    snprintf(log, sizeof(log), "%s/stderr.log", dir);
    char *argv[] = {(char *)nginx, "-p", dir, "-e", log, "-c", path, NULL};
    if (spawn(argv, log, NULL, NULL) < 0)
        return snprintf(err, n, "cannot start nginx"), -1;
    for (int i = 0; i < 200 && !interrupted; i++) {
        if (load_get_status(port, "/") == 200)
            return 0;
        sleep_ms(50);
    }
    return snprintf(err, n, "nginx did not answer on port %u (see its log)", port), -1;
}

/* rotad on a table of route "bench" (model bench-model) over the upstream on "up". */
static int start_rotad(const char *rotad, uint16_t up, char *err, size_t n)
{
    char conf[2048], path[192], log[192];
    int k = snprintf(conf, sizeof(conf),
                     "instance: %s\nstate_dir: %s/state\nproviders:\n"
                     "  - name: up\n    kind: openai\n    base_url: http://127.0.0.1:%u\n"
                     "    probe: {enabled: false}\n    accounts:\n",
                     run.instance, run.dir, up);
    for (int i = 0; i < 4; i++)
        k += snprintf(conf + k, sizeof(conf) - (size_t)k,
                      "      - {name: up-%d, credential: env:ROTA_BENCH_KEY}\n", i + 1);
    k += snprintf(conf + k, sizeof(conf) - (size_t)k,
                  "routes:\n  - name: bench\n    models: [bench-model]\n    tiers:\n"
                  "      - {provider: up, model: bench-up}\n");
    snprintf(path, sizeof(path), "%s/rota.yaml", run.dir);
    snprintf(log, sizeof(log), "%s/rotad.log", run.dir);
    if (write_file(path, conf, (size_t)k) != 0)
        return snprintf(err, n, "cannot write %s", path), -1;
    char *argv[] = {(char *)rotad, "-c", path, NULL};
    /* a dummy key: the upstream takes any; it reaches rotad through its environment */
    if (spawn(argv, log, "ROTA_BENCH_KEY=sk-bench-dummy", NULL) < 0)
        return snprintf(err, n, "cannot start rotad"), -1;
    for (int i = 0; i < 200 && !interrupted; i++) {
        rota_t *h;
        char e[256];
        if (rota_attach(run.instance, &h, e, sizeof(e)) == 0) {
            rota_detach(h);
            return 0;
        }
        sleep_ms(50);
    }
    return snprintf(err, n, "rotad did not make the table (see %s)", log), -1;
}

/* "procs" rota-worker processes of "threads" threads on one port (*port). */
static int start_pool(const char *worker, const struct proxy_cfg *c, uint16_t *port,
                      pid_t *pids, char *err, size_t n)
{
    char listen[64] = "127.0.0.1:0", threads[16], log[192], line[128];
    snprintf(threads, sizeof(threads), "%u", c->threads);
    for (uint32_t i = 0; i < c->procs; i++) {
        snprintf(log, sizeof(log), "%s/worker-%u.log", run.dir, i + 1);
        char *argv[] = {(char *)worker, "-i",       run.instance, "--listen",
                        listen,         "--threads", threads,     NULL};
        int out;
        if ((pids[i] = spawn(argv, log, NULL, &out)) < 0)
            return snprintf(err, n, "cannot start rota-worker"), -1;
        int rc = read_line(out, line, sizeof(line), 10000);
        close(out);
        unsigned p;
        if (rc != 0 || sscanf(line, "listening on 127.0.0.1:%u", &p) != 1)
            return snprintf(err, n, "rota-worker %u did not listen (see %s)", i + 1, log), -1;
        *port = (uint16_t)p;
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", p);
    }
    for (int i = 0; i < 200 && !interrupted; i++) {
        if (load_get_status(*port, "/readyz") == 200)
            return 0;
        sleep_ms(50);
    }
    return snprintf(err, n, "the pool is not ready (see %s/worker-*.log)", run.dir), -1;
}

/* wrk: "conns" connections for "seconds" with "script": requests per second, or -1;
 * the requests made into "*done". */
static double wrk(const char *prog, const char *script, uint16_t port, uint32_t conns,
                  double seconds, uint64_t *errors, uint64_t *done)
{
    char cmd[1024], line[512];
    uint32_t threads = conns < 2 ? 1 : 2;
    snprintf(cmd, sizeof(cmd),
             "%s -t%u -c%u -d%.0fs -s %s http://127.0.0.1:%u/v1/chat/completions 2>&1", prog,
             threads, conns, seconds < 1 ? 1 : seconds + 0.5, script, port);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    double rps = -1;
    unsigned long long a, b, c, d;
    while (fgets(line, sizeof(line), p)) {
        if (sscanf(line, "Requests/sec: %lf", &rps) == 1)
            continue;
        if (sscanf(line, " %llu requests in", &a) == 1) {
            *done = a;
            continue;
        }
        if (sscanf(line, " Non-2xx or 3xx responses: %llu", &a) == 1)
            *errors += a;
        else if (sscanf(line, " Socket errors: connect %llu, read %llu, write %llu, timeout "
                              "%llu",
                        &a, &b, &c, &d) == 4)
            *errors += a + b + c + d;
    }
    int st = pclose(p);
    return st == 0 ? rps : -1;
}

/* The summed PSS and RSS of "pid" (and, with "kids", its children), KiB. */
static void mem_of(pid_t pid, bool kids, double *pss, double *rss)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long v;
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Pss: %llu kB", &v) == 1)
            *pss += (double)v;
        else if (sscanf(line, "Rss: %llu kB", &v) == 1)
            *rss += (double)v;
    }
    if (f)
        fclose(f);
    if (!kids)
        return;
    glob_t g;
    if (glob("/proc/[0-9]*/stat", 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *s = fopen(g.gl_pathv[i], "r");
        int child, parent;
        if (s && fscanf(s, "%d (%*[^)]) %*c %d", &child, &parent) == 2 && parent == pid)
            mem_of(child, false, pss, rss);
        if (s)
            fclose(s);
    }
    globfree(&g);
}

/* The pool's or nginx's memory (PSS, RSS in KiB) */
struct mem_src {
    pid_t *pids;
    uint32_t n;
    bool kids;
};

static void mem_total(const struct mem_src *m, double *pss, double *rss)
{
    *pss = *rss = 0;
    for (uint32_t i = 0; i < m->n; i++)
        mem_of(m->pids[i], m->kids, pss, rss);
}

/* The CPU time (user and system, all threads) of "pid" and, with "kids", its children,
 * in microseconds. */
static double cpu_of(pid_t pid, bool kids)
{
    char path[64];
    double us = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long ut, st;
    if (f && fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                    &ut, &st) == 2)
        us = (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
    if (f)
        fclose(f);
    glob_t g;
    if (!kids || glob("/proc/[0-9]*/stat", 0, NULL, &g) != 0)
        return us;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *s = fopen(g.gl_pathv[i], "r");
        int child, parent;
        if (s && fscanf(s, "%d (%*[^)]) %*c %d", &child, &parent) == 2 && parent == pid)
            us += cpu_of(child, false);
        if (s)
            fclose(s);
    }
    globfree(&g);
    return us;
}

static double cpu_total(const struct mem_src *m)
{
    double us = 0;
    for (uint32_t i = 0; i < m->n; i++)
        us += cpu_of(m->pids[i], m->kids);
    return us;
}

/* The row's figures: one per target, NaN where not measured. */
struct row {
    const char *name, *unit;
    double v[TARGETS];
};


static double ratio(double a, double b)
{
    return b > 0 && a == a ? a / b : NAN;
}

static void cell(double v, int prec)
{
    if (v != v)
        printf(" %10s", "-");
    else
        printf(" %10.*f", prec, v);
}

/* One printed row: the three figures, rota's ratio to nginx's and the target, "ok"
 * (1), "MISS" (0) or nothing (-1) after it. */
static void row(const char *name, double d, double ng, double r, int prec, double x,
                const char *target, int ok)
{
    printf("%-36s", name);
    cell(d, prec);
    cell(ng, prec);
    cell(r, prec);
    if (x == x)
        printf(" %9.2fx", x);
    else
        printf(" %10s", target ? "-" : "");
    if (target)
        printf("  %-26s %s", target, ok < 0 ? "" : ok ? "ok" : "MISS");
    printf("\n");
    fflush(stdout);
}

/* Files the load needs in the run's directory: bodies and wrk's scripts. */
static int write_load_files(char *const bodies[2], char *err, size_t n)
{
    static const char *const names[2] = {"1k", "100k"};
    for (int i = 0; i < 2; i++) {
        char path[192], script[512];
        snprintf(path, sizeof(path), "%s/body-%s.json", run.dir, names[i]);
        if (write_file(path, bodies[i], strlen(bodies[i])) != 0)
            return snprintf(err, n, "cannot write %s", path), -1;
        int k = snprintf(script, sizeof(script),
                         "wrk.method = \"POST\"\n"
                         "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
                         "wrk.headers[\"Authorization\"] = \"Bearer bench-client\"\n"
                         "local f = io.open(\"%s\", \"rb\")\nwrk.body = f:read(\"*a\")\n"
                         "f:close()\n",
                         path);
        snprintf(path, sizeof(path), "%s/post-%s.lua", run.dir, names[i]);
        if (write_file(path, script, (size_t)k) != 0)
            return snprintf(err, n, "cannot write %s", path), -1;
    }
    return 0;
}

/* Throughput with wrk against each target: "rps", and the CPU time nginx's and the
 * pool's processes spent per request, microseconds, into "cpu" (NaN for direct). */
static int throughput(const char *wrkp, const char *script, const uint16_t *port,
                      const struct proxy_cfg *c, const struct mem_src *procs, double *rps,
                      double *cpu, char *err, size_t n)
{
    for (int t = 0; t < TARGETS && !interrupted; t++) {
        uint64_t errors = 0, done = 0;
        double t0 = procs[t].n ? cpu_total(&procs[t]) : 0;
        rps[t] = wrk(wrkp, script, port[t], c->conns, c->duration, &errors, &done);
        cpu[t] = procs[t].n && done ? (cpu_total(&procs[t]) - t0) / (double)done : NAN;
        if (rps[t] < 0)
            return snprintf(err, n, "wrk against %s failed", target_name[t]), -1;
        if (errors)
            return snprintf(err, n, "wrk against %s: %llu failed requests", target_name[t],
                            (unsigned long long)errors),
                   -1;
    }
    return interrupted ? -1 : 0;
}

/* Idle keep-alive connections held by nginx and the pool: their memory each. */
static int idle_row(const struct proxy_cfg *c, const uint16_t *port, const struct mem_src *mem,
                    const char *req, size_t rlen, char *err, size_t n)
{
    double pss[TARGETS] = {NAN, NAN, NAN}, rss[TARGETS] = {NAN, NAN, NAN};
    for (int t = NGINX; t <= ROTA && !interrupted; t++) {
        double p0, r0, p1, r1;
        mem_total(&mem[t], &p0, &r0);
        int *fds = load_idle_open(port[t], req, rlen, c->idle, err, n);
        if (!fds)
            return -1;
        sleep_ms(500);
        mem_total(&mem[t], &p1, &r1);
        load_close(fds, c->idle);
        pss[t] = (p1 - p0) / c->idle;
        rss[t] = (r1 - r0) / c->idle;
        sleep_ms(500); /* let the closes land before the next target */
    }
    if (interrupted)
        return -1;
    char name[64];
    snprintf(name, sizeof(name), "%u idle conns: KiB each (PSS)", c->idle);
    row(name, NAN, pss[NGINX], pss[ROTA], 1, ratio(pss[ROTA], pss[NGINX]), "<= 20 KiB",
        pss[ROTA] <= 20);
    row("  (RSS)", NAN, rss[NGINX], rss[ROTA], 1, ratio(rss[ROTA], rss[NGINX]), NULL, -1);
    return 0;
}

/* Every row, against the targets in turn. */
static int measure(const struct proxy_cfg *c, const char *wrkp, const uint16_t *port,
                   const struct mem_src *mem, char *err, size_t n)
{
    char path[192], name[64];
    double v[TARGETS], w[TARGETS];
    double cpu[TARGETS];
    char *body = make_body(1024, false), *sse = make_body(256, true);
    size_t rlen = 0, slen = 0;
    char *req = body ? load_request(body, 1024, &rlen) : NULL;
    char *sreq = sse ? load_request(sse, 256, &slen) : NULL;
    free(body);
    free(sse);
    /* memory first, on processes fresh from their start: the memory the later rows'
     * bodies leave to the allocator would hold the connections unseen */
    if (!req || !sreq || idle_row(c, port, mem, req, rlen, err, n)) {
        free(req);
        free(sreq);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/post-1k.lua", run.dir);
    if (throughput(wrkp, path, port, c, mem, v, cpu, err, n)) {
        free(req);
        free(sreq);
        return -1;
    }
    snprintf(name, sizeof(name), "%u conns, 1 KB POST: req/s", c->conns);
    row(name, v[0], v[1], v[2], 0, ratio(v[2], v[1]), ">= 0.9x nginx", v[2] >= 0.9 * v[1]);
    row("  CPU per request, us", NAN, cpu[1], cpu[2], 1, ratio(cpu[2], cpu[1]), NULL, -1);

    struct lat a[TARGETS], b[TARGETS];
    int rc = 0;
    for (int t = 0; t < TARGETS; t++)
        if (lat_init(&a[t]) || lat_init(&b[t]))
            rc = -1;
    /* the latency rows take turns, in rounds, so the host's noise falls on all three */
    uint32_t rounds = c->duration < 2 ? 2 : (uint32_t)c->duration;
    for (uint32_t k = 0; !rc && req && sreq && k < rounds; k++)
        for (int t = 0; !rc && t < TARGETS && !interrupted; t++)
            rc = load_sequence(port[t], req, rlen, c->duration / rounds, &a[t], err, n);
    rc = rc || !req || !sreq || interrupted ? -1 : 0;
    if (!rc) {
        for (int t = 0; t < TARGETS; t++)
            v[t] = lat_q(&a[t], 0.5) / 1e3, w[t] = lat_q(&a[t], 0.99) / 1e3;
        row("1 conn in sequence: p50 us", v[0], v[1], v[2], 1, NAN, NULL, -1);
        row("  added over direct, p50 us", NAN, v[1] - v[0], v[2] - v[0], 1,
            ratio(v[2] - v[0], v[1] - v[0]), "<= 50 us, <= 1.1x nginx",
            v[2] - v[0] <= 50 && v[2] - v[0] <= 1.1 * (v[1] - v[0]));
        row("1 conn in sequence: p99 us", w[0], w[1], w[2], 1, NAN, NULL, -1);
        row("  added over direct, p99 us", NAN, w[1] - w[0], w[2] - w[0], 1,
            ratio(w[2] - w[0], w[1] - w[0]), "<= 250 us, <= 1.1x nginx",
            w[2] - w[0] <= 250 && w[2] - w[0] <= 1.1 * (w[1] - w[0]));
        snprintf(path, sizeof(path), "%s/post-100k.lua", run.dir);
        rc = throughput(wrkp, path, port, c, mem, v, cpu, err, n);
    }
    if (!rc) {
        snprintf(name, sizeof(name), "%u conns, 100 KB POST: req/s", c->conns);
        row(name, v[0], v[1], v[2], 0, ratio(v[2], v[1]), ">= 0.9x nginx", v[2] >= 0.9 * v[1]);
        row("  CPU per request, us", NAN, cpu[1], cpu[2], 1, ratio(cpu[2], cpu[1]), NULL, -1);
        for (int t = 0; t < TARGETS; t++)
            lat_reset(&a[t]), lat_reset(&b[t]);
        for (uint32_t k = 0; !rc && k < 2 * rounds; k++) /* a stream each, in turn */
            for (int t = 0; !rc && t < TARGETS && !interrupted; t++)
                rc = load_streams(port[t], sreq, slen, 0, &a[t], &b[t], err, n);
        rc = rc || interrupted ? -1 : 0;
    }
    if (!rc) {
        for (int t = 0; t < TARGETS; t++)
            v[t] = lat_q(&a[t], 0.99) / 1e3, w[t] = lat_q(&b[t], 0.5) / 1e3;
        snprintf(name, sizeof(name), "SSE %d x %llu ms: event delay p99 us", PROXY_SSE_EVENTS,
                 PROXY_SSE_GAP_NS / 1000000);
        row(name, v[0], v[1], v[2], 1, NAN, NULL, -1);
        row("  added over direct, p99 us", NAN, v[1] - v[0], v[2] - v[0], 1,
            ratio(v[2] - v[0], v[1] - v[0]), "<= 100 us", v[2] - v[0] <= 100);
        row("SSE first byte, median us", w[0], w[1], w[2], 1, NAN, NULL, -1);
        row("  added over direct us", NAN, w[1] - w[0], w[2] - w[0], 1,
            ratio(w[2] - w[0], w[1] - w[0]), "<= 100 us", w[2] - w[0] <= 100);
    }
    for (int t = 0; t < TARGETS; t++)
        lat_free(&a[t]), lat_free(&b[t]);
    free(req);
    free(sreq);
    return rc;
}

/* Start everything, then measure. */
static int proxy_rows(const struct proxy_cfg *c, const char *nginx, const char *wrkp,
                      const char *rotad, const char *worker, char *err, size_t n)
{
    uint16_t port[TARGETS];
    pid_t up = bench_upstream_start(c->up_threads, &port[DIRECT], err, n);
    if (up < 0)
        return -1;
    run.pid[run.n++] = up;
    uint32_t loops = c->procs * c->threads;
    port[NGINX] = free_port();
    if (start_nginx(nginx, loops, port[NGINX], port[DIRECT], err, n))
        return -1;
    pid_t nginx_pid = run.pid[run.n - 1], pool[64];
    if (start_rotad(rotad, port[DIRECT], err, n) ||
        start_pool(worker, c, &port[ROTA], pool, err, n))
        return -1;
    char *bodies[2] = {make_body(1024, false), make_body(100 * 1024, false)};
    int rc = bodies[0] && bodies[1] ? write_load_files(bodies, err, n) : -1;
    free(bodies[0]);
    free(bodies[1]);
    if (rc)
        return -1;
    printf("rota-bench --proxy: upstream (fixed 1 KB answer, %u thread%s) direct; nginx "
           "(%u worker%s, upstream keepalive %d); rota (%u process%s x %u thread%s); "
           "%.1f s per target and row\n",
           c->up_threads, c->up_threads > 1 ? "s" : "", loops, loops > 1 ? "s" : "",
           NGINX_KEEPIDLE, c->procs, c->procs > 1 ? "es" : "", c->threads,
           c->threads > 1 ? "s" : "", c->duration);
    printf("%-36s %10s %10s %10s %10s  %s\n", "", "direct", "nginx", "rota", "rota/nginx",
           "target");
    struct mem_src mem[TARGETS] = {{NULL, 0, false}, {&nginx_pid, 1, true}, {pool, c->procs,
                                                                            false}};
    return measure(c, wrkp, port, mem, err, n);
}

int bench_proxy(const struct proxy_cfg *c)
{
    char nginx[256], wrkp[256], rotad[PATH_MAX], worker[PATH_MAX], err[512] = "";
    bool has_nginx = find_program("nginx", nginx, sizeof(nginx));
    bool has_wrk = find_program("wrk", wrkp, sizeof(wrkp));
    if (!has_nginx || !has_wrk) {
        fprintf(stderr, "rota-bench: --proxy needs %s%s%s; on Debian: apt-get install%s%s\n",
                has_nginx ? "" : "nginx", !has_nginx && !has_wrk ? " and " : "",
                has_wrk ? "" : "wrk", has_nginx ? "" : " nginx-light", has_wrk ? "" : " wrk");
        return 1;
    }
    if (!find_ours("rotad", rotad, sizeof(rotad)) ||
        !find_ours("rota-worker", worker, sizeof(worker))) {
        fprintf(stderr, "rota-bench: rotad and rota-worker are not beside rota-bench\n");
        return 1;
    }
    struct rlimit rl;
    rlim_t want = (rlim_t)c->idle + 1024; /* ours: the idle connections and a few */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? (rl.rlim_max = want) : want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "rota-bench: cannot raise the open files limit to %llu (%s); "
                            "try ulimit -n or a smaller --idle-conns\n",
                    (unsigned long long)want, strerror(errno));
            return 1;
        }
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    snprintf(run.dir, sizeof(run.dir), "/tmp/rota-bench-proxy-XXXXXX");
    snprintf(run.instance, sizeof(run.instance), "benchproxy%d", (int)getpid());
    if (!mkdtemp(run.dir)) {
        fprintf(stderr, "rota-bench: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    chmod(run.dir, 0711); /* nginx's workers run as nobody under root */
    int rc = proxy_rows(c, nginx, wrkp, rotad, worker, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "rota-bench: %s\n", interrupted ? "interrupted" : err);
    stop_all();
    return rc != 0;
}
