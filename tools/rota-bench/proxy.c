/*
 * proxy.c - rota-bench --proxy: the same load against the upstream directly, nginx as
 * a plain reverse proxy and rota's dispatch pool, row by row, in one run.
 *
 * DESIGN
 * Everything runs on 127.0.0.1 from a temporary directory: the fixed-answer upstream
 * (proxy_upstream.c); nginx from Debian with as many worker processes as the pool has
 * loops (processes x threads), SO_REUSEPORT listeners like the pool's, HTTP/1.1 and an
 * upstream keep-alive pool, an access log like the pool's; rotad on a table of two
 * routes, each over one provider at the upstream (route PROXY_MODEL over a provider of
 * OpenAI's format, passed through; route PROXY_MODEL_X over one of Anthropic's format,
 * which the pool translates to), their accounts given a dummy credential through
 * rotad's environment; and the rota-worker processes on one port (SO_REUSEPORT). Then
 * proxy_rows.c runs the rows. Every child is told to die with rota-bench
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

/* What was started, for stop_all (and the signal handler). */
static struct {
    pid_t pid[MAX_CHILDREN];
    int n;
    char dir[64];
    char instance[64];
} run;

volatile sig_atomic_t proxy_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    proxy_interrupted = 1;
    for (int i = run.n - 1; i >= 0; i--)
        if (run.pid[i] > 0)
            kill(run.pid[i], SIGTERM);
}

void proxy_sleep_ms(int ms)
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
            proxy_sleep_ms(10);
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

int proxy_write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t w = fwrite(text, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
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
    if (proxy_write_file(path, conf, (size_t)k) != 0)
        return snprintf(err, n, "cannot write %s", path), -1;
    char log[192];
    snprintf(log, sizeof(log), "%s/stderr.log", dir);
    char *argv[] = {(char *)nginx, "-p", dir, "-e", log, "-c", path, NULL};
    if (spawn(argv, log, NULL, NULL) < 0)
        return snprintf(err, n, "cannot start nginx"), -1;
    for (int i = 0; i < 200 && !proxy_interrupted; i++) {
        if (load_get_status(port, "/") == 200)
            return 0;
        proxy_sleep_ms(50);
    }
    return snprintf(err, n, "nginx did not answer on port %u (see its log)", port), -1;
}

/* rotad on a table of two routes over the upstream on "up": "bench" (model PROXY_MODEL)
 * over provider "up" of OpenAI's format, "bench-xl" (model PROXY_MODEL_X) over provider "upx"
 * of Anthropic's, each with four accounts. */
static int start_rotad(const char *rotad, uint16_t up, char *err, size_t n)
{
    static const char *const kind[2] = {"openai", "anthropic"}, *const name[2] = {"up", "upx"};
    char conf[2048], path[192], log[192];
    int k = snprintf(conf, sizeof(conf), "instance: %s\nstate_dir: %s/state\nproviders:\n",
                     run.instance, run.dir);
    for (int p = 0; p < 2; p++) {
        k += snprintf(conf + k, sizeof(conf) - (size_t)k,
                      "  - name: %s\n    kind: %s\n    base_url: http://127.0.0.1:%u\n"
                      "    probe: {enabled: false}\n    accounts:\n",
                      name[p], kind[p], up);
        for (int i = 0; i < 4; i++)
            k += snprintf(conf + k, sizeof(conf) - (size_t)k,
                          "      - {name: %s-%d, credential: env:ROTA_BENCH_KEY}\n", name[p],
                          i + 1);
    }
    k += snprintf(conf + k, sizeof(conf) - (size_t)k,
                  "routes:\n  - name: bench\n    models: [%s]\n    tiers:\n"
                  "      - {provider: up, model: bench-up}\n"
                  "  - name: bench-xl\n    models: [%s]\n    tiers:\n"
                  "      - {provider: upx, model: bench-up}\n",
                  PROXY_MODEL, PROXY_MODEL_X);
    snprintf(path, sizeof(path), "%s/rota.yaml", run.dir);
    snprintf(log, sizeof(log), "%s/rotad.log", run.dir);
    if (proxy_write_file(path, conf, (size_t)k) != 0)
        return snprintf(err, n, "cannot write %s", path), -1;
    char *argv[] = {(char *)rotad, "-c", path, NULL};
    /* a dummy key: the upstream takes any; it reaches rotad through its environment */
    if (spawn(argv, log, "ROTA_BENCH_KEY=sk-bench-dummy", NULL) < 0)
        return snprintf(err, n, "cannot start rotad"), -1;
    for (int i = 0; i < 200 && !proxy_interrupted; i++) {
        rota_t *h;
        char e[256];
        if (rota_attach(run.instance, &h, e, sizeof(e)) == 0) {
            rota_detach(h);
            return 0;
        }
        proxy_sleep_ms(50);
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
    for (int i = 0; i < 200 && !proxy_interrupted; i++) {
        if (load_get_status(*port, "/readyz") == 200)
            return 0;
        proxy_sleep_ms(50);
    }
    return snprintf(err, n, "the pool is not ready (see %s/worker-*.log)", run.dir), -1;
}

/* Start everything, then measure. */
static int proxy_rows(const struct proxy_cfg *c, const char *nginx, const char *wrkp,
                      const char *rotad, const char *worker, char *err, size_t n)
{
    struct proxy_run p = {.c = c, .dir = run.dir, .wrk = wrkp};
    pid_t up = bench_upstream_start(c->up_threads, &p.port[DIRECT], err, n);
    if (up < 0)
        return -1;
    run.pid[run.n++] = up;
    uint32_t loops = c->procs * c->threads;
    p.port[NGINX] = free_port();
    if (start_nginx(nginx, loops, p.port[NGINX], p.port[DIRECT], err, n))
        return -1;
    pid_t nginx_pid = run.pid[run.n - 1], pool[64];
    if (start_rotad(rotad, p.port[DIRECT], err, n) ||
        start_pool(worker, c, &p.port[ROTA], pool, err, n))
        return -1;
    printf("rota-bench --proxy: upstream (fixed 1 KB answer, %u thread%s) direct; nginx "
           "(%u worker%s, upstream keepalive %d); rota (%u process%s x %u thread%s); "
           "%.1f s per target and row\n",
           c->up_threads, c->up_threads > 1 ? "s" : "", loops, loops > 1 ? "s" : "",
           NGINX_KEEPIDLE, c->procs, c->procs > 1 ? "es" : "", c->threads,
           c->threads > 1 ? "s" : "", c->duration);
    p.mem[DIRECT] = (struct mem_src){NULL, 0, false};
    p.mem[NGINX] = (struct mem_src){&nginx_pid, 1, true};
    p.mem[ROTA] = (struct mem_src){pool, c->procs, false};
    return proxy_measure(&p, err, n);
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
        fprintf(stderr, "rota-bench: %s\n", proxy_interrupted ? "interrupted" : err);
    stop_all();
    return rc != 0;
}
