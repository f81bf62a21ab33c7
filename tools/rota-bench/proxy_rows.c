/*
 * proxy_rows.c - rota-bench --proxy's rows: the load run against the targets that
 * proxy.c started, and the figures printed.
 *
 * DESIGN
 * Each row runs its load against direct, nginx and rota in turn: throughput with wrk
 * (64 keep-alive connections, a 1 KB and a 100 KB POST from a Lua script; beside each,
 * the CPU time nginx's and the pool's processes spent per request, from /proc over the
 * run), the rest with proxy_load.c; the latency rows take turns in rounds (a slice of
 * requests in sequence, or one stream, per target and round), so that a busy moment of
 * the shared host falls on all three alike.
 *
 * The translated rows are rota's alone (nginx cannot translate; its cells are left
 * empty): the same 1 KB POST in OpenAI's format for route PROXY_MODEL_X, whose only tier
 * speaks Anthropic's format, so the pool writes the request as Anthropic's, the upstream
 * answers at /v1/messages and the pool writes the answer back as a chat completion.
 * Checked once first (the answer must be a chat completion holding the Anthropic
 * answer's text). Its throughput takes turns with the pass-through 1 KB POST on the pool
 * (wrk, PROXY_XL_ROUNDS rounds of pass-through then translated), and each prints the
 * median of its turns, the ratio of the medians and the CPU time per request over all
 * its turns. The translated stream is a fourth target of the SSE rounds: rota's port,
 * the stream's request for PROXY_MODEL_X.
 */
#include <glob.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"

#define PROXY_XL_ROUNDS 5
#define EMPTY           INFINITY /* a cell that has no figure by nature (not "-") */

/* The requests of proxy_load.c's rows: pass-through and translated. */
enum { RQ_1K, RQ_SSE, RQ_1K_X, RQ_SSE_X, RQS };

/* The SSE rows' targets: the three, and rota translating. */
enum { ROTA_X = TARGETS, SSE_TARGETS };

static const char *const target_name[TARGETS] = {"direct", "nginx", "rota"};

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

/* a / b, or NaN where it means nothing (a figure missing, or either one below zero: an
 * "added" figure below zero is the host's noise) */
static double ratio(double a, double b)
{
    return b > 0 && a >= 0 && !isinf(a) ? a / b : NAN;
}

static void cell(double v, int prec)
{
    if (isinf(v))
        printf(" %10s", "");
    else if (v != v)
        printf(" %10s", "-");
    else
        printf(" %10.*f", prec, v);
}

/* One printed row: the three figures, rota's ratio to nginx's (or, in a translated row,
 * to pass-through's) and the target, "ok" (1), "MISS" (0) or nothing (-1) after it. */
static void row(const char *name, double d, double ng, double r, int prec, double x,
                const char *target, int ok)
{
    printf("%-50s", name);
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

/* A chat request body of exactly "size" bytes for "model"; "stream" asks for a stream
 * (first key, where the upstream looks for it in a chat request). */
static char *make_body(size_t size, bool stream, const char *model)
{
    char pre[192];
    const char *post = "\"}]}";
    size_t a = (size_t)snprintf(pre, sizeof(pre),
                                "{%s\"model\":\"%s\",%s\"messages\":[{\"role\":\"user\","
                                "\"content\":\"",
                                stream ? "\"stream\":true," : "", model,
                                stream ? "" : "\"max_tokens\":64,");
    size_t b = strlen(post);
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

/* Files wrk needs in the run's directory: a body and a script, for each of the 1 KB
 * and 100 KB POSTs and the translated 1 KB POST ("post-NAME.lua"). */
static int write_load_files(const struct proxy_run *p, char *err, size_t n)
{
    static const struct {
        const char *name, *model;
        size_t size;
    } f[] = {{"1k", PROXY_MODEL, 1024},
             {"100k", PROXY_MODEL, 100 * 1024},
             {"1k-x", PROXY_MODEL_X, 1024}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        char path[192], script[512];
        char *body = make_body(f[i].size, false, f[i].model);
        snprintf(path, sizeof(path), "%s/body-%s.json", p->dir, f[i].name);
        int rc = body ? proxy_write_file(path, body, f[i].size) : -1;
        free(body);
        if (rc != 0)
            return snprintf(err, n, "cannot write %s", path), -1;
        int k = snprintf(script, sizeof(script),
                         "wrk.method = \"POST\"\n"
                         "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
                         "wrk.headers[\"Authorization\"] = \"Bearer bench-client\"\n"
                         "local f = io.open(\"%s\", \"rb\")\nwrk.body = f:read(\"*a\")\n"
                         "f:close()\n",
                         path);
        snprintf(path, sizeof(path), "%s/post-%s.lua", p->dir, f[i].name);
        if (proxy_write_file(path, script, (size_t)k) != 0)
            return snprintf(err, n, "cannot write %s", path), -1;
    }
    return 0;
}

/* The requests proxy_load.c sends (RQ_*), each a whole HTTP request; 0 or -1. */
static int make_requests(char *req[RQS], size_t len[RQS])
{
    static const struct {
        size_t size;
        bool stream;
        const char *model;
    } r[RQS] = {{1024, false, PROXY_MODEL},
                {256, true, PROXY_MODEL},
                {1024, false, PROXY_MODEL_X},
                {256, true, PROXY_MODEL_X}};
    int rc = 0;
    for (int i = 0; i < RQS; i++) {
        char *body = make_body(r[i].size, r[i].stream, r[i].model);
        req[i] = body ? load_request(body, r[i].size, &len[i]) : NULL;
        free(body);
        if (!req[i])
            rc = -1;
    }
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Throughput with wrk against each target: "rps", and the CPU time nginx's and the
 * pool's processes spent per request, microseconds, into "cpu" (NaN for direct). */
static int throughput(const struct proxy_run *p, const char *script, double *rps, double *cpu,
                      char *err, size_t n)
{
    for (int t = 0; t < TARGETS && !proxy_interrupted; t++) {
        uint64_t errors = 0, done = 0;
        const struct mem_src *m = &p->mem[t];
        double t0 = m->n ? cpu_total(m) : 0;
        rps[t] = wrk(p->wrk, script, p->port[t], p->c->conns, p->c->duration, &errors, &done);
        cpu[t] = m->n && done ? (cpu_total(m) - t0) / (double)done : NAN;
        if (rps[t] < 0)
            return snprintf(err, n, "wrk against %s failed", target_name[t]), -1;
        if (errors)
            return snprintf(err, n, "wrk against %s: %llu failed requests", target_name[t],
                            (unsigned long long)errors),
                   -1;
    }
    return proxy_interrupted ? -1 : 0;
}

/* Idle keep-alive connections held by nginx and the pool: their memory each. */
static int idle_row(const struct proxy_run *p, const char *req, size_t rlen, char *err,
                    size_t n)
{
    const struct proxy_cfg *c = p->c;
    double pss[TARGETS] = {NAN, NAN, NAN}, rss[TARGETS] = {NAN, NAN, NAN};
    for (int t = NGINX; t <= ROTA && !proxy_interrupted; t++) {
        double p0, r0, p1, r1;
        mem_total(&p->mem[t], &p0, &r0);
        int *fds = load_idle_open(p->port[t], req, rlen, c->idle, err, n);
        if (!fds)
            return -1;
        proxy_sleep_ms(500);
        mem_total(&p->mem[t], &p1, &r1);
        load_close(fds, c->idle);
        pss[t] = (p1 - p0) / c->idle;
        rss[t] = (r1 - r0) / c->idle;
        proxy_sleep_ms(500); /* let the closes land before the next target */
    }
    if (proxy_interrupted)
        return -1;
    char name[64];
    snprintf(name, sizeof(name), "%u idle conns: KiB each (PSS)", c->idle);
    row(name, NAN, pss[NGINX], pss[ROTA], 1, ratio(pss[ROTA], pss[NGINX]), "<= 20 KiB",
        pss[ROTA] <= 20);
    row("  (RSS)", NAN, rss[NGINX], rss[ROTA], 1, ratio(rss[ROTA], rss[NGINX]), NULL, -1);
    return 0;
}

/* The throughput row of the POST "name" (post-NAME.lua), "label" its size. */
static int throughput_rows(const struct proxy_run *p, const char *name, const char *label,
                           char *err, size_t n)
{
    char path[192], title[64];
    double v[TARGETS], cpu[TARGETS];
    snprintf(path, sizeof(path), "%s/post-%s.lua", p->dir, name);
    if (throughput(p, path, v, cpu, err, n))
        return -1;
    snprintf(title, sizeof(title), "%u conns, %s POST: req/s", p->c->conns, label);
    row(title, v[0], v[1], v[2], 0, ratio(v[2], v[1]), ">= 0.9x nginx", v[2] >= 0.9 * v[1]);
    row("  CPU per request, us", NAN, cpu[1], cpu[2], 1, ratio(cpu[2], cpu[1]), NULL, -1);
    return 0;
}

/* One translated request first: the pool must answer it with a chat completion that
 * holds the Anthropic answer's text (the upstream's 'b's), or the rows measure nothing. */
static int xlate_check(const struct proxy_run *p, const char *req, size_t len, char *err,
                       size_t n)
{
    char body[4096];
    int st = load_one(p->port[ROTA], req, len, body, sizeof(body));
    if (st == 200 && strstr(body, "\"chat.completion\"") && strstr(body, "bbbbbbbbbbbb"))
        return 0;
    return snprintf(err, n,
                    "the translated request: rota answered %d, not the Anthropic "
                    "answer as a chat completion: %.300s",
                    st, body),
           -1;
}

/* The 1 KB POST on the pool, pass-through and translated in turns: the medians of the
 * turns' req/s, their ratio, and each one's CPU time per request over all its turns. */
static int xlate_rows(const struct proxy_run *p, char *err, size_t n)
{
    static const char *const kind[2] = {"pass-through", "translated"};
    char script[2][192];
    double rps[2][PROXY_XL_ROUNDS], cpu[2] = {0, 0};
    uint64_t done[2] = {0, 0};
    double secs = p->c->duration < 2 ? 1 : (double)(uint32_t)(p->c->duration / 2 + 0.5);
    snprintf(script[0], sizeof(script[0]), "%s/post-1k.lua", p->dir);
    snprintf(script[1], sizeof(script[1]), "%s/post-1k-x.lua", p->dir);
    for (int k = 0; k < PROXY_XL_ROUNDS; k++)
        for (int x = 0; x < 2; x++) {
            uint64_t errors = 0, d = 0;
            double t0 = cpu_total(&p->mem[ROTA]);
            if (proxy_interrupted)
                return -1;
            rps[x][k] = wrk(p->wrk, script[x], p->port[ROTA], p->c->conns, secs, &errors, &d);
            cpu[x] += cpu_total(&p->mem[ROTA]) - t0;
            done[x] += d;
            if (rps[x][k] < 0)
                return snprintf(err, n, "wrk against rota, %s, failed", kind[x]), -1;
            if (errors)
                return snprintf(err, n, "wrk against rota, %s: %llu failed requests", kind[x],
                                (unsigned long long)errors),
                       -1;
        }
    double pass = median(rps[0], PROXY_XL_ROUNDS), xl = median(rps[1], PROXY_XL_ROUNDS);
    double cp = done[0] ? cpu[0] / (double)done[0] : NAN;
    double cx = done[1] ? cpu[1] / (double)done[1] : NAN;
    char title[64];
    printf("rota alone, %d rounds of %.0f s pass-through then %.0f s translated; medians; "
           "the ratio is to pass-through\n",
           PROXY_XL_ROUNDS, secs, secs);
    snprintf(title, sizeof(title), "%u conns, 1 KB POST, pass-through, req/s", p->c->conns);
    row(title, EMPTY, EMPTY, pass, 0, NAN, NULL, -1);
    row("1 KB POST, translated (OpenAI to Anthropic), req/s", EMPTY, EMPTY, xl, 0,
        ratio(xl, pass), ">= 0.8x pass-through", xl >= 0.8 * pass);
    row("  CPU per request, us, pass-through", EMPTY, EMPTY, cp, 1, NAN, NULL, -1);
    row("  CPU per request, us, translated", EMPTY, EMPTY, cx, 1, ratio(cx, cp), NULL, -1);
    return 0;
}

/* Requests in sequence on one connection, the targets taking turns in rounds. */
static int sequence_rows(const struct proxy_run *p, const char *req, size_t len, char *err,
                         size_t n)
{
    struct lat a[TARGETS];
    double v[TARGETS], w[TARGETS];
    int rc = 0;
    for (int t = 0; t < TARGETS; t++) /* each one lat_free can take, made or not */
        rc |= lat_init(&a[t]);
    if (rc) {
        snprintf(err, n, "out of memory");
        rc = -1;
    }
    /* the latency rows take turns, in rounds, so the host's noise falls on all three */
    uint32_t rounds = p->c->duration < 2 ? 2 : (uint32_t)p->c->duration;
    for (uint32_t k = 0; !rc && k < rounds; k++)
        for (int t = 0; !rc && t < TARGETS && !proxy_interrupted; t++)
            rc = load_sequence(p->port[t], req, len, p->c->duration / rounds, &a[t], err, n);
    rc = rc || proxy_interrupted ? -1 : 0;
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
    }
    for (int t = 0; t < TARGETS; t++)
        lat_free(&a[t]);
    return rc;
}

/* Streams, one each in turn (direct, nginx, rota, rota translated), twice the rounds of
 * the sequence: each event's delay and each stream's first byte. */
static int stream_rows(const struct proxy_run *p, char *const req[RQS], const size_t len[RQS],
                       char *err, size_t n)
{
    struct lat a[SSE_TARGETS], b[SSE_TARGETS];
    double v[SSE_TARGETS], w[SSE_TARGETS];
    int rc = 0;
    for (int t = 0; t < SSE_TARGETS; t++) /* each one lat_free can take, made or not */
        rc |= lat_init(&a[t]) | lat_init(&b[t]);
    if (rc) {
        snprintf(err, n, "out of memory");
        rc = -1;
    }
    uint32_t rounds = p->c->duration < 2 ? 2 : (uint32_t)p->c->duration;
    for (uint32_t k = 0; !rc && k < 2 * rounds; k++)
        for (int t = 0; !rc && t < SSE_TARGETS && !proxy_interrupted; t++) {
            int q = t == ROTA_X ? RQ_SSE_X : RQ_SSE;
            rc = load_streams(p->port[t == ROTA_X ? ROTA : t], req[q], len[q], 0, &a[t], &b[t],
                              err, n);
        }
    rc = rc || proxy_interrupted ? -1 : 0;
    if (!rc) {
        char name[64];
        for (int t = 0; t < SSE_TARGETS; t++)
            v[t] = lat_q(&a[t], 0.99) / 1e3, w[t] = lat_q(&b[t], 0.5) / 1e3;
        snprintf(name, sizeof(name), "SSE %d x %llu ms: event delay p99 us", PROXY_SSE_EVENTS,
                 PROXY_SSE_GAP_NS / 1000000);
        row(name, v[0], v[1], v[2], 1, NAN, NULL, -1);
        row("  added over direct, p99 us", NAN, v[1] - v[0], v[2] - v[0], 1,
            ratio(v[2] - v[0], v[1] - v[0]), "<= 100 us", v[2] - v[0] <= 100);
        row("SSE event delay p99 added, translated", EMPTY, EMPTY, v[ROTA_X] - v[0], 1,
            ratio(v[ROTA_X] - v[0], v[2] - v[0]), "(ratio to pass-through)", -1);
        row("SSE first byte, median us", w[0], w[1], w[2], 1, NAN, NULL, -1);
        row("  added over direct us", NAN, w[1] - w[0], w[2] - w[0], 1,
            ratio(w[2] - w[0], w[1] - w[0]), "<= 100 us", w[2] - w[0] <= 100);
        row("SSE first byte added, translated", EMPTY, EMPTY, w[ROTA_X] - w[0], 1,
            ratio(w[ROTA_X] - w[0], w[2] - w[0]), "(ratio to pass-through)", -1);
    }
    for (int t = 0; t < SSE_TARGETS; t++)
        lat_free(&a[t]), lat_free(&b[t]);
    return rc;
}

int proxy_measure(const struct proxy_run *p, char *err, size_t n)
{
    char *req[RQS] = {NULL};
    size_t len[RQS] = {0};
    int rc = make_requests(req, len) ? (snprintf(err, n, "out of memory"), -1)
                                     : write_load_files(p, err, n);
    printf("%-50s %10s %10s %10s %10s  %s\n", "", "direct", "nginx", "rota", "rota/nginx",
           "target");
    /* memory first, on processes fresh from their start: the memory the later rows'
     * bodies leave to the allocator would hold the connections unseen */
    if (!rc)
        rc = idle_row(p, req[RQ_1K], len[RQ_1K], err, n);
    if (!rc)
        rc = throughput_rows(p, "1k", "1 KB", err, n);
    if (!rc)
        rc = xlate_check(p, req[RQ_1K_X], len[RQ_1K_X], err, n);
    if (!rc)
        rc = xlate_rows(p, err, n);
    if (!rc)
        rc = sequence_rows(p, req[RQ_1K], len[RQ_1K], err, n);
    if (!rc)
        rc = throughput_rows(p, "100k", "100 KB", err, n);
    if (!rc)
        rc = stream_rows(p, req, len, err, n);
    for (int i = 0; i < RQS; i++)
        free(req[i]);
    return rc;
}
