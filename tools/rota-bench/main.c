/*
 * rota-bench - measure selection: rota's shared table against the designs a user would
 * otherwise pick, in one run, on one workload.
 *
 * DESIGN
 * For each system: setup in the parent, then fork P selector processes and one writer
 * process. Selectors wait at a start flag, then loop select + report, timing every
 * operation with the TSC (calibrated against CLOCK_MONOTONIC) into a per-process
 * histogram in a shared results area; the writer rewrites R snapshots per second. The
 * parent sleeps for the duration, raises the stop flag, reaps everyone and prints
 * percentiles, throughput, seqlock retries and the Gini coefficient of selections per
 * account over the first tier (the tier that serves while it has quota). Every process
 * stops by itself at the deadline even if the parent dies.
 *
 * Reloads (--reload-rate R, rota only): the parent, instead of sleeping, publishes R new
 * generations a second through the system's reload(), marking each in the shared area
 * (its number, the TSC when the publish began and when it returned). Selectors then time
 * every operation, not one in TIME_EVERY (the percentiles still come from the same one in
 * TIME_EVERY), and keep three maxima: over the run, over the operations that overlap a
 * reload window (from the start of a publish to RELOAD_WINDOW_NS after it returned) with
 * one maximum per reload, and over the rest. They also keep the time of each operation
 * after which the handle was on a new generation (op() says so): the operation that met
 * the switch; their median has the least scheduling noise of all these figures.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "config.h"
#include "clock.h"
#include "fairness.h"
#include "proxy.h"
#include "rota_version.h"
#include "strategy.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t ticks(void)
{
    return __rdtsc();
}
#else
static inline uint64_t ticks(void)
{
    return rota_clock_mono();
}
#endif

/* One operation in TIME_EVERY is timed for the percentiles; all count for throughput. */
#define TIME_EVERY 4

/* With reloads: what counts as "just after a reload", and how many reloads keep their own
 * maximum (later ones still count in the overall figures). */
#define RELOAD_WINDOW_NS (10 * ROTA_NS_PER_MS)
#define RELOAD_SLOTS     1024

struct proc_result {
    uint64_t ops, timed, exhausted, errors, retries;
    uint64_t worst, worst_reload, worst_other;    /* TSC ticks, with reloads only */
    uint64_t reload_worst[RELOAD_SLOTS];          /* by reload number */
    uint64_t nswitch, switch_ticks[RELOAD_SLOTS]; /* operations that met a new generation */
    uint64_t hist[HIST_BUCKETS];
};

struct shared {
    _Atomic int start, stop;
    /* the latest reload: its number, and the TSC at its publish's start and return
     * (end < begin while it is under way); written by the parent only */
    _Atomic uint64_t reload_seq, reload_begin, reload_end;
    struct proc_result r[];
};

struct measured {
    const char *system;
    double ops_per_s, p50, p90, p99, p999, gini;
    uint64_t ops, timed, exhausted, errors, retries;
    size_t bytes;
    /* with reloads: how many were published, what publishing took, and the worst
     * operation overall, within a reload window (the worst of all and the median of each
     * reload's worst) and outside them, in ns */
    uint64_t reloads;
    double publish_max_ms, publish_mean_ms;
    double worst, worst_reload, worst_reload_median, worst_other;
    uint64_t switches; /* operations that met a new generation */
    double switch_median, switch_worst;
};

static double ns_per_tick = 1.0;

static void calibrate(void)
{
    uint64_t t0 = rota_clock_mono(), c0 = ticks();
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    uint64_t t1 = rota_clock_mono(), c1 = ticks();
    ns_per_tick = c1 > c0 ? (double)(t1 - t0) / (double)(c1 - c0) : 1.0;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / ROTA_NS_PER_S), (long)(ns % ROTA_NS_PER_S)};
    nanosleep(&ts, NULL);
}

/* Time one operation; with reloads, fold it into the maxima. "window" is
 * RELOAD_WINDOW_NS in ticks. */
static int timed_op(const struct bench_sys *s, void *ctx, struct shared *sh,
                    struct proc_result *r, bool sample, bool reloads, uint64_t window)
{
    uint64_t t0 = ticks();
    int rc = s->op(ctx);
    uint64_t t1 = ticks(), dt = t1 - t0;
    if (sample) {
        r->hist[hist_bucket((uint64_t)((double)dt * ns_per_tick))]++;
        r->timed++;
    }
    if (!reloads)
        return rc;
    if (dt > r->worst)
        r->worst = dt;
    if (rc == 2 && r->nswitch < RELOAD_SLOTS)
        r->switch_ticks[r->nswitch++] = dt;
    uint64_t end = atomic_load_explicit(&sh->reload_end, memory_order_acquire);
    uint64_t begin = atomic_load_explicit(&sh->reload_begin, memory_order_acquire);
    uint64_t seq = atomic_load_explicit(&sh->reload_seq, memory_order_relaxed);
    if (begin && t1 >= begin && (end < begin || t0 <= end + window)) {
        if (dt > r->worst_reload)
            r->worst_reload = dt;
        if (seq < RELOAD_SLOTS && dt > r->reload_worst[seq])
            r->reload_worst[seq] = dt;
    } else if (dt > r->worst_other) {
        r->worst_other = dt;
    }
    return rc;
}

static void selector(const struct bench_sys *s, const struct bench_cfg *c, void *state, int id,
                     struct shared *sh, uint64_t deadline)
{
    void *ctx;
    struct proc_result *r = &sh->r[id];
    bool reloads = c->reload_rate > 0;
    uint64_t window = (uint64_t)((double)RELOAD_WINDOW_NS / ns_per_tick);
    if (s->worker_init(state, id, &ctx)) {
        r->errors = 1;
        _exit(1);
    }
    while (!atomic_load_explicit(&sh->start, memory_order_acquire))
        if (rota_clock_mono() > deadline)
            _exit(1);
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        for (int k = 0; k < 256; k++) {
            int rc;
            bool sample = k % TIME_EVERY == 0; /* reading the TSC costs ~10 ns: a sample */
            if (sample || reloads)
                rc = timed_op(s, ctx, sh, r, sample, reloads, window);
            else
                rc = s->op(ctx);
            r->ops++;
            r->exhausted += rc == 1;
            r->errors += rc < 0;
        }
        if (rota_clock_mono() > deadline)
            break;
    }
    r->retries = s->retries ? s->retries(ctx) : 0;
    _exit(0);
}

static void writer(const struct bench_sys *s, void *state, const struct bench_cfg *c,
                   struct shared *sh, uint64_t deadline)
{
    void *w;
    if (!s->write_one || s->writer_init(state, &w))
        _exit(0);
    uint64_t done = 0, t0 = rota_clock_mono(), round = 0;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        uint64_t now = rota_clock_mono();
        if (now > deadline)
            break;
        uint64_t due = (now - t0) * c->writer_rate / ROTA_NS_PER_S;
        for (; done < due; done++)
            s->write_one(w, (uint32_t)(done % c->accounts), round = done / c->accounts);
        sleep_ns(ROTA_NS_PER_MS);
    }
    (void)round;
    _exit(0);
}

static double percentile(const uint64_t *h, uint64_t total, double q)
{
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h[b];
        if (seen > want)
            return hist_value(b);
    }
    return 0;
}

static double median(double *v, uint32_t n);

/* What the parent's reloads did. */
struct reloads {
    uint64_t done, failed;
    uint64_t publish_max, publish_sum; /* ns */
};

/* Publish c->reload_rate generations a second from "t0" until the run's end, marking each
 * in "sh" for the selectors. Stops at the first failed publish, saying why. */
static void reload_for(const struct bench_sys *s, void *state, const struct bench_cfg *c,
                       struct shared *sh, uint64_t t0, struct reloads *rl)
{
    uint64_t period = (uint64_t)(1e9 / c->reload_rate);
    uint64_t until = t0 + (uint64_t)(c->duration * 1e9);
    for (uint64_t k = 1;; k++) {
        uint64_t due = t0 + k * period, now = rota_clock_mono();
        if (due >= until || now >= until) /* a publish slower than the period: fewer */
            break;
        if (now < due)
            sleep_ns(due - now);
        char err[256] = "";
        atomic_store_explicit(&sh->reload_seq, k, memory_order_relaxed);
        atomic_store_explicit(&sh->reload_begin, ticks(), memory_order_release);
        uint64_t p0 = rota_clock_mono();
        int rc = s->reload(state, k, err, sizeof(err));
        uint64_t took = rota_clock_mono() - p0;
        atomic_store_explicit(&sh->reload_end, ticks(), memory_order_release);
        if (rc) {
            fprintf(stderr, "rota-bench: %s: reload %llu: %s\n", s->name, (unsigned long long)k,
                    err);
            rl->failed++;
            break;
        }
        rl->done++;
        rl->publish_sum += took;
        if (took > rl->publish_max)
            rl->publish_max = took;
    }
}

/* The reload figures of "m" from the "n" selectors' results and the reloads "rl". */
static void reload_figures(const struct shared *sh, uint32_t n, const struct reloads *rl,
                           struct measured *m)
{
    uint64_t worst = 0, wr = 0, wo = 0;
    static double per[RELOAD_SLOTS];
    uint32_t nper = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct proc_result *r = &sh->r[i];
        worst = r->worst > worst ? r->worst : worst;
        wr = r->worst_reload > wr ? r->worst_reload : wr;
        wo = r->worst_other > wo ? r->worst_other : wo;
    }
    for (uint64_t k = 1; k <= rl->done && k < RELOAD_SLOTS; k++) {
        uint64_t w = 0;
        for (uint32_t i = 0; i < n; i++)
            w = sh->r[i].reload_worst[k] > w ? sh->r[i].reload_worst[k] : w;
        per[nper++] = (double)w * ns_per_tick;
    }
    m->reloads = rl->done;
    m->publish_max_ms = (double)rl->publish_max / 1e6;
    m->publish_mean_ms = rl->done ? (double)rl->publish_sum / (double)rl->done / 1e6 : 0;
    m->worst = (double)worst * ns_per_tick;
    m->worst_reload = (double)wr * ns_per_tick;
    m->worst_other = (double)wo * ns_per_tick;
    m->worst_reload_median = nper ? median(per, nper) : 0;
    nper = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t k = 0; k < sh->r[i].nswitch && nper < RELOAD_SLOTS; k++)
            per[nper++] = (double)sh->r[i].switch_ticks[k] * ns_per_tick;
    m->switches = nper;
    m->switch_median = nper ? median(per, nper) : 0;
    m->switch_worst = nper ? per[nper - 1] : 0; /* median() sorted them */
    m->errors += rl->failed; /* said on stderr; the exit status says it too */
}

static int run(const struct bench_sys *s, const struct bench_cfg *c, struct measured *m)
{
    char err[256] = "";
    void *state;
    if (s->setup(c, &state, err, sizeof(err))) {
        fprintf(stderr, "rota-bench: %s: %s\n", s->name, err);
        return -1;
    }
    size_t shsize = sizeof(struct shared) + c->procs * sizeof(struct proc_result);
    struct shared *sh =
        mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        s->teardown(state);
        return -1;
    }
    uint64_t deadline = rota_clock_mono() + (uint64_t)((c->duration + 10) * 1e9);
    pid_t pids[65];
    uint32_t n = 0;
    for (; n < c->procs; n++) {
        pids[n] = fork();
        if (pids[n] == 0)
            selector(s, c, state, (int)n, sh, deadline);
    }
    pid_t wpid = 0;
    if (c->writer_rate && !c->attach) {
        wpid = fork();
        if (wpid == 0)
            writer(s, state, c, sh, deadline);
    }
    sleep_ns(100 * ROTA_NS_PER_MS); /* let everyone map and fault in the table */
    uint64_t t0 = rota_clock_mono();
    atomic_store_explicit(&sh->start, 1, memory_order_release);
    struct reloads rl = {0};
    if (c->reload_rate > 0 && s->reload)
        reload_for(s, state, c, sh, t0, &rl);
    uint64_t until = t0 + (uint64_t)(c->duration * 1e9), now = rota_clock_mono();
    if (now < until)
        sleep_ns(until - now);
    atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);
    uint64_t elapsed = rota_clock_mono() - t0;
    for (uint32_t i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
    if (wpid > 0)
        waitpid(wpid, NULL, 0);

    memset(m, 0, sizeof(*m));
    m->system = s->name;
    static uint64_t hist[HIST_BUCKETS];
    memset(hist, 0, sizeof(hist));
    for (uint32_t i = 0; i < n; i++) {
        m->ops += sh->r[i].ops;
        m->timed += sh->r[i].timed;
        m->exhausted += sh->r[i].exhausted;
        m->errors += sh->r[i].errors;
        m->retries += sh->r[i].retries;
        for (unsigned b = 0; b < HIST_BUCKETS; b++)
            hist[b] += sh->r[i].hist[b];
    }
    m->ops_per_s = (double)m->ops / ((double)elapsed / 1e9);
    m->p50 = percentile(hist, m->timed, 0.50);
    m->p90 = percentile(hist, m->timed, 0.90);
    m->p99 = percentile(hist, m->timed, 0.99);
    m->p999 = percentile(hist, m->timed, 0.999);
    m->bytes = s->bytes ? s->bytes(state) : 0;
    if (c->reload_rate > 0 && s->reload)
        reload_figures(sh, n, &rl, m);
    if (s->counts && !c->attach) {
        uint64_t *cnt = calloc(c->accounts, sizeof(*cnt));
        uint32_t first = 0;
        if (cnt) {
            s->counts(state, cnt);
            while (first < c->accounts && bench_tier_of(c, first) == 0)
                first++;
            m->gini = rota_gini(cnt, first);
            free(cnt);
        }
    }
    munmap(sh, shsize);
    s->teardown(state);
    return 0;
}

static void print(const struct bench_cfg *c, const struct measured *m)
{
    if (c->json) {
        printf(
            "{\"system\":\"%s\",\"accounts\":%u,\"tiers\":%u,\"procs\":%u,\"writer_rate\":%u,"
            "\"duration_s\":%.1f,\"ops\":%llu,\"ops_per_s\":%.0f,\"p50_ns\":%.0f,"
            "\"p90_ns\":%.0f,\"p99_ns\":%.0f,\"p999_ns\":%.0f,\"seqlock_retries\":%llu,"
            "\"exhausted\":%llu,\"errors\":%llu,\"gini\":%.4f,\"table_bytes\":%zu",
            m->system, c->accounts, c->tiers, c->procs, c->writer_rate, c->duration,
            (unsigned long long)m->ops, m->ops_per_s, m->p50, m->p90, m->p99, m->p999,
            (unsigned long long)m->retries, (unsigned long long)m->exhausted,
            (unsigned long long)m->errors, m->gini, m->bytes);
        if (c->reload_rate > 0)
            printf(",\"reload_rate\":%g,\"reloads\":%llu,\"publish_mean_ms\":%.2f,"
                   "\"publish_max_ms\":%.2f,\"worst_ns\":%.0f,\"worst_reload_ns\":%.0f,"
                   "\"worst_reload_median_ns\":%.0f,\"worst_other_ns\":%.0f,"
                   "\"switches\":%llu,\"switch_median_ns\":%.0f,\"switch_worst_ns\":%.0f",
                   c->reload_rate, (unsigned long long)m->reloads, m->publish_mean_ms,
                   m->publish_max_ms, m->worst, m->worst_reload, m->worst_reload_median,
                   m->worst_other, (unsigned long long)m->switches, m->switch_median,
                   m->switch_worst);
        printf("}\n");
        return;
    }
    printf("%-8s %12.0f %8.0f %8.0f %8.0f %9.0f %10llu %9llu %6llu %7.4f %10zu\n", m->system,
           m->ops_per_s, m->p50, m->p90, m->p99, m->p999, (unsigned long long)m->retries,
           (unsigned long long)m->exhausted, (unsigned long long)m->errors, m->gini, m->bytes);
    if (c->reload_rate == 0)
        return;
    printf("%-8s reloads: %llu (%.1f/s), publish %.1f ms mean, %.1f ms max\n", m->system,
           (unsigned long long)m->reloads, (double)m->reloads / c->duration, m->publish_mean_ms,
           m->publish_max_ms);
    printf("%-8s worst select + report: %.0f ns over the run; within %llu ms of a reload %.0f "
           "ns (median of each reload's worst %.0f ns); elsewhere %.0f ns\n",
           m->system, m->worst, (unsigned long long)(RELOAD_WINDOW_NS / ROTA_NS_PER_MS),
           m->worst_reload, m->worst_reload_median, m->worst_other);
    printf("%-8s select + report that met a new generation: %llu, median %.0f ns, worst "
           "%.0f ns\n",
           m->system, (unsigned long long)m->switches, m->switch_median, m->switch_worst);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --journal: rota and rota+jnl alternately, then the medians side by side. */
static int journal_rounds(const struct bench_cfg *c)
{
    calibrate();
    if (!c->json) {
        printf("rota-bench: %u accounts, %u tiers, %u selector processes, writer %u/s, "
               "%.1f s each, %u rounds, journal in %s\n",
               c->accounts, c->tiers, c->procs, c->writer_rate, c->duration, c->rounds,
               c->journal_dir);
        printf("%-8s %12s %8s %8s %8s %9s %10s %9s %6s %7s %10s\n", "system", "ops/s", "p50 ns",
               "p90 ns", "p99 ns", "p99.9 ns", "retries", "exhausted", "errors", "gini",
               "bytes");
    }
    double ops[2][100], p50[2][100], p99[2][100];
    int rc = 0;
    for (uint32_t r = 0; r < c->rounds; r++) {
        const struct bench_sys *sys[2] = {&bench_rota, &bench_rota_journal};
        for (int k = 0; k < 2; k++) {
            struct measured m;
            if (run(sys[k], c, &m) != 0)
                return 1;
            print(c, &m);
            ops[k][r] = m.ops_per_s;
            p50[k][r] = m.p50;
            p99[k][r] = m.p99;
            rc |= m.errors ? 1 : 0;
        }
    }
    double o0 = median(ops[0], c->rounds), o1 = median(ops[1], c->rounds);
    double a0 = median(p50[0], c->rounds), a1 = median(p50[1], c->rounds);
    double b0 = median(p99[0], c->rounds), b1 = median(p99[1], c->rounds);
    if (c->json)
        printf("{\"journal_compare\":true,\"rounds\":%u,\"ops_per_s\":[%.0f,%.0f],"
               "\"p50_ns\":[%.0f,%.0f],\"p99_ns\":[%.0f,%.0f],\"p99_ratio\":%.3f}\n",
               c->rounds, o0, o1, a0, a1, b0, b1, b1 / b0);
    else
        printf("medians over %u rounds, journal off -> on: %.1f -> %.1f M ops/s, "
               "p50 %.0f -> %.0f ns, p99 %.0f -> %.0f ns (p99 on/off %.3f)\n",
               c->rounds, o0 / 1e6, o1 / 1e6, a0, a1, b0, b1, b1 / b0);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rota-bench [options]\n"
            "  --accounts N      accounts in the table (64)\n"
            "  --tiers T         tiers in the route (3)\n"
            "  --procs P         selector processes (2)\n"
            "  --duration S      seconds per system (5)\n"
            "  --writer-rate R   snapshot rewrites per second (10000)\n"
            "  --reload-rate R   rota: publish R new generations per second during the run\n"
            "                    (a reload, the same table or one more model alias); time\n"
            "                    every select + report and print the worst, the worst within\n"
            "                    10 ms of a reload and the reloads done (0 = none)\n"
            "  --peer P          none, rwlock, redis, no-lease (rota with leases off)\n"
            "                    or all (none)\n"
            "  --attach NAME     measure a running instance instead (with --route); its\n"
            "                    accounts count the selections as real ones\n"
            "  --route NAME      route or model to select on (bench)\n"
            "  --strategy S      rota's strategy: hybrid, greedy, round-robin, weighted,\n"
            "                    sticky, lru, fill-first (hybrid; the peers are hybrid)\n"
            "  --lru-share F     hybrid's forced least-recently-used share (0.10; 0 = none)\n"
            "  --journal DIR     also run rota with its journal writing DIR/journal\n"
            "                    (\"rota+jnl\"), alternating with rota for --rounds rounds,\n"
            "                    and compare the medians\n"
            "  --fsync P         the journal's fsync: always, interval (100 ms) or never\n"
            "                    (interval)\n"
            "  --rounds R        rounds of rota and rota+jnl with --journal (3)\n"
            "  --journal-load    the journal alone: every account changes without pause\n"
            "                    (use with --accounts, --duration, --journal, --fsync)\n"
            "  --json            one JSON object per line per system\n"
            "  --proxy           the dispatch pool instead: the same HTTP load against a\n"
            "                    fixed-answer upstream directly, nginx as a reverse proxy\n"
            "                    and rota's pool (rotad, rota-worker), and a request the\n"
            "                    pool translates (OpenAI to Anthropic) beside one it passes\n"
            "                    through; needs nginx and wrk.\n"
            "                    --duration is then per target and row (3)\n"
            "  --xlate           the translation between wire formats instead: a 10 KB\n"
            "                    request and a stream's events, format to format\n"
            "  --pool-procs N    --proxy: rota-worker processes (2); nginx gets N x T workers\n"
            "  --pool-threads T  --proxy: threads per rota-worker process (1)\n"
            "  --conns N         --proxy: connections of the throughput rows (64)\n"
            "  --idle-conns N    --proxy: idle keep-alive connections held (10000)\n"
            "  --upstream-threads N  --proxy: the fixed-answer upstream's threads (1)\n"
            "  --seed N          generator seed\n"
            "  --version         print the version and exit\n");
}

int main(int argc, char **argv)
{
    struct bench_cfg c = {.accounts = 64,
                          .tiers = 3,
                          .procs = 2,
                          .duration = 5,
                          .writer_rate = 10000,
                          .route = "bench",
                          .seed = 1,
                          .journal_fsync = ROTA_FSYNC_INTERVAL,
                          .rounds = 3};
    const char *peer = "none";
    static const struct option opts[] = {{"accounts", 1, 0, 'a'},     {"tiers", 1, 0, 't'},
                                         {"procs", 1, 0, 'p'},        {"duration", 1, 0, 'd'},
                                         {"writer-rate", 1, 0, 'w'},  {"peer", 1, 0, 'P'},
                                         {"attach", 1, 0, 'A'},       {"route", 1, 0, 'r'},
                                         {"json", 0, 0, 'j'},         {"seed", 1, 0, 's'},
                                         {"help", 0, 0, 'h'},         {"strategy", 1, 0, 'S'},
                                         {"lru-share", 1, 0, 'L'},    {"journal", 1, 0, 'J'},
                                         {"fsync", 1, 0, 'F'},        {"rounds", 1, 0, 'R'},
                                         {"journal-load", 0, 0, 'G'}, {"version", 0, 0, 'V'},
                                         {"reload-rate", 1, 0, 'X'},  {"proxy", 0, 0, 'x'}, {"xlate", 0, 0, 'T'},
                                         {"pool-procs", 1, 0, 'y'},   {"pool-threads", 1, 0, 'z'},
                                         {"conns", 1, 0, 'C'},        {"idle-conns", 1, 0, 'I'},
                                         {"upstream-threads", 1, 0, 'U'}, {0, 0, 0, 0}};
    struct proxy_cfg pc = {.duration = 3, .procs = 2, .threads = 1, .conns = 64,
                           .idle = 10000, .up_threads = 1};
    bool journal_load = false, proxy = false, duration_set = false;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            c.accounts = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            c.tiers = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            c.procs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            c.duration = strtod(optarg, NULL);
            duration_set = true;
            break;
        case 'x':
            proxy = true;
            break;
        case 'T':
            return bench_xlate();
        case 'y':
            pc.procs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'z':
            pc.threads = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'C':
            pc.conns = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'I':
            pc.idle = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'U':
            pc.up_threads = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'w':
            c.writer_rate = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'P':
            peer = optarg;
            break;
        case 'A':
            c.attach = optarg;
            break;
        case 'r':
            c.route = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 's':
            c.seed = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            c.strategy = rota_strategy_parse(optarg);
            if (c.strategy < 0) {
                fprintf(stderr, "rota-bench: unknown strategy \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'L':
            c.lru_share = strtod(optarg, NULL);
            c.lru_share = c.lru_share <= 0 ? -1 : c.lru_share;
            break;
        case 'J':
            c.journal_dir = optarg;
            break;
        case 'F':
            c.journal_fsync = !strcmp(optarg, "always")     ? ROTA_FSYNC_ALWAYS
                              : !strcmp(optarg, "interval") ? ROTA_FSYNC_INTERVAL
                              : !strcmp(optarg, "never")    ? ROTA_FSYNC_NEVER
                                                            : -1;
            if (c.journal_fsync < 0) {
                fprintf(stderr, "rota-bench: --fsync is always, interval or never\n");
                return 2;
            }
            break;
        case 'R':
            c.rounds = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'G':
            journal_load = true;
            break;
        case 'X':
            c.reload_rate = strtod(optarg, NULL);
            if (!(c.reload_rate >= 0 && c.reload_rate <= 1000)) {
                fprintf(stderr, "rota-bench: 0 <= reload-rate <= 1000\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("rota-bench %s\n", ROTA_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (proxy) {
        pc.duration = duration_set ? c.duration : pc.duration;
        if (pc.procs < 1 || pc.procs > 64 || pc.threads < 1 || pc.threads > 64 ||
            pc.procs * pc.threads > 256 || pc.conns < 1 || pc.conns > 10000 || pc.idle < 1 ||
            pc.idle > 100000 || pc.up_threads < 1 || pc.up_threads > 64 ||
            !(pc.duration > 0) || pc.duration > 3600) {
            fprintf(stderr, "rota-bench: --proxy needs 1 <= pool-procs <= 64, 1 <= "
                            "pool-threads <= 64, 1 <= conns <= 10000, 1 <= idle-conns <= "
                            "100000, 1 <= upstream-threads <= 64, 0 < duration <= 3600\n");
            return 2;
        }
        return bench_proxy(&pc);
    }
    if (c.accounts < 1 || c.accounts > 1000000 || c.tiers < 1 || c.tiers > 8 ||
        c.tiers > c.accounts || c.procs < 1 || c.procs > 64 || !(c.duration > 0) ||
        c.duration > 3600) {
        fprintf(stderr, "rota-bench: need 1 <= tiers <= min(8, accounts), accounts <= 1000000, "
                        "1 <= procs <= 64, 0 < duration <= 3600\n");
        return 2;
    }
    bool rw = !strcmp(peer, "rwlock") || !strcmp(peer, "all");
    bool rd = !strcmp(peer, "redis") || !strcmp(peer, "all");
    bool nl = !strcmp(peer, "no-lease") || !strcmp(peer, "all");
    if (!rw && !rd && !nl && strcmp(peer, "none")) {
        fprintf(stderr,
                "rota-bench: --peer is none, rwlock, redis, no-lease or all, not \"%s\"\n",
                peer);
        return 2;
    }
    if ((rw || rd) && (c.strategy != ROTA_STRAT_HYBRID || c.lru_share)) {
        fprintf(stderr, "rota-bench: the peers implement hybrid with the default share only\n");
        return 2;
    }
    if (c.attach && (rw || rd || nl)) {
        fprintf(stderr,
                "rota-bench: --attach measures a running instance; peers need a built table\n");
        return 2;
    }
    char inst[64];
    snprintf(inst, sizeof(inst), "bench%d", (int)getpid());
    c.instance = inst;
    if ((journal_load || c.journal_dir) && (c.attach || rw || rd || nl)) {
        fprintf(stderr, "rota-bench: --journal and --journal-load run rota alone, on a built "
                        "table\n");
        return 2;
    }
    if (c.reload_rate > 0 && (rw || rd || c.attach || c.journal_dir || journal_load)) {
        fprintf(stderr, "rota-bench: --reload-rate runs on a built rota table (peers none or "
                        "no-lease); the rwlock and Redis peers have no generations\n");
        return 2;
    }
    if (c.rounds < 1 || c.rounds > 100) {
        fprintf(stderr, "rota-bench: 1 <= rounds <= 100\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (journal_load) {
        char dir[64];
        if (!c.journal_dir) {
            snprintf(dir, sizeof(dir), "/tmp/rota-bench-journal.%d", (int)getpid());
            c.journal_dir = dir;
        }
        return bench_journal_load(&c);
    }
    if (c.journal_dir)
        return journal_rounds(&c);
    calibrate();
    if (!c.json && c.attach)
        printf("rota-bench: instance %s, route %s, %u selector processes, %.1f s\n", c.attach,
               c.route, c.procs, c.duration);
    else if (!c.json)
        printf("rota-bench: %u accounts, %u tiers, %u selector processes, writer %u/s, %.1f s "
               "each\n",
               c.accounts, c.tiers, c.procs, c.writer_rate, c.duration);
    if (!c.json && c.reload_rate > 0)
        printf("rota-bench: %g reloads/s during each run; every select + report timed\n",
               c.reload_rate);
    if (!c.json) {
        printf("%-8s %12s %8s %8s %8s %9s %10s %9s %6s %7s %10s\n", "system", "ops/s", "p50 ns",
               "p90 ns", "p99 ns", "p99.9 ns", "retries", "exhausted", "errors", "gini",
               "bytes");
    }
    struct measured m[4];
    int nm = 0, rc = 0;
    const struct bench_sys *sys[4] = {&bench_rota, nl ? &bench_rota_nolease : NULL,
                                      rw ? &bench_rwlock : NULL, rd ? &bench_redis : NULL};
    for (int i = 0; i < 4; i++) {
        if (!sys[i])
            continue;
        if (run(sys[i], &c, &m[nm]) == 0)
            print(&c, &m[nm++]);
        else
            rc = 1;
    }
    for (int i = 1; i < nm && !c.json; i++)
        printf("rota vs %-7s throughput %.1fx, p50 %.1fx, p99 %.1fx\n", m[i].system,
               m[0].ops_per_s / m[i].ops_per_s, m[i].p50 / m[0].p50, m[i].p99 / m[0].p99);
    for (int i = 0; i < nm; i++)
        if (m[i].errors)
            rc = 1;
    return rc;
}
