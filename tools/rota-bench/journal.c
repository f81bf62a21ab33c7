/*
 * journal.c - rota-bench and the journal: the cost of journaling to selections
 * (--journal DIR, the "rota+jnl" row) and the journal's own capacity (--journal-load).
 *
 * DESIGN
 * The journal runs exactly as in rotad (core/journal/journal.c): a thread in the benchmark's
 * parent maps the table, captures every account each 100 ms and writes what changed to
 * <dir>/journal with the chosen fsync policy. --journal-load gives it the worst case: a
 * thread changes every account's counters without pause, so every account is a change
 * in every pass; the figure is changes recorded per second and the time a pass takes
 * against its 100 ms budget.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "config.h"
#include "jident.h"
#include "journal.h"

int bench_journal_start(const struct bench_cfg *c, const char *instance,
                        struct rota_journal **out, char *err, size_t n)
{
    static char path[4096];
    if (mkdir(c->journal_dir, 0700) < 0 && errno != EEXIST)
        return snprintf(err, n, "%s: %s", c->journal_dir, strerror(errno)), -errno;
    snprintf(path, sizeof(path), "%s/journal", c->journal_dir);
    static struct rota_config_journal jc;
    jc = (struct rota_config_journal){.file_enabled = true,
                                      .file_path = path,
                                      .fsync = (enum rota_fsync)c->journal_fsync,
                                      .fsync_interval_ns = 100 * ROTA_NS_PER_MS,
                                      .snapshot_every_ns = 300 * ROTA_NS_PER_S,
                                      .max_bytes = 64ull << 20};
    /* records signed as rotad signs them; the key lives and dies with the benchmark */
    static struct rota_jkey key;
    int rc = rota_jident_random(&key);
    if (rc)
        return snprintf(err, n, "getrandom: %s", strerror(-rc)), rc;
    struct rota_journal_opts o = {.instance = instance, .cfg = &jc, .key = &key};
    return rota_journal_start(&o, out, err, n);
}

void bench_journal_stop(struct rota_journal *j, const struct bench_cfg *c, double seconds)
{
    struct rota_journal_stats s;
    rota_journal_stats(j, &s);
    rota_journal_stop(j);
    if (c->json)
        printf("{\"journal\":true,\"seconds\":%.2f,\"passes\":%llu,\"changes\":%llu,"
               "\"changes_per_s\":%.0f,\"file_bytes\":%llu,\"snapshots\":%llu,\"syncs\":%llu,"
               "\"max_pass_ms\":%.3f,\"errors\":%llu}\n",
               seconds, (unsigned long long)s.passes, (unsigned long long)s.changes,
               (double)s.changes / seconds, (unsigned long long)s.file.bytes,
               (unsigned long long)s.file.snapshots, (unsigned long long)s.file.syncs,
               (double)s.max_pass_ns / 1e6, (unsigned long long)s.file.errors);
    else
        printf("         journal: %llu passes, %.0f changes/s recorded, %llu syncs, "
               "%llu snapshots, longest pass %.2f ms, file %llu bytes, %llu errors\n",
               (unsigned long long)s.passes, (double)s.changes / seconds,
               (unsigned long long)s.file.syncs, (unsigned long long)s.file.snapshots,
               (double)s.max_pass_ns / 1e6, (unsigned long long)s.file.bytes,
               (unsigned long long)s.file.errors);
}

struct churn {
    struct rota_shm_map m;
    atomic_bool stop;
    uint64_t touches;
};

/* Change every account, over and over: usage (a call and its tokens) and, one account
 * in 16, a cooldown a little later each time. */
static void *churn(void *arg)
{
    struct churn *ch = arg;
    uint64_t round = 0;
    while (!atomic_load_explicit(&ch->stop, memory_order_relaxed)) {
        uint64_t now = rota_clock_mono();
        for (uint32_t a = 0; a < ch->m.naccounts; a++) {
            struct rota_shm_hot *h = &ch->m.hot[a];
            rota_add(&h->use0[0], 1);
            rota_add(&h->done, 1);
            rota_add(&h->use0[1], BENCH_TOKENS);
            if ((a + round) % 16 == 0)
                rota_max_u64(&h->cooldown_until, now + 60 * ROTA_NS_PER_S);
        }
        ch->touches += ch->m.naccounts;
        round++;
    }
    return NULL;
}

int bench_journal_load(const struct bench_cfg *c)
{
    char err[512] = "";
    void *state = NULL;
    if (bench_rota.setup(c, &state, err, sizeof(err))) {
        fprintf(stderr, "rota-bench: %s\n", err);
        return 1;
    }
    struct churn ch = {0};
    struct rota_journal *j = NULL;
    int rc = rota_shm_attach(c->instance, &ch.m, err, sizeof(err));
    if (rc == 0)
        rc = bench_journal_start(c, c->instance, &j, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "rota-bench: %s\n", err);
        bench_rota.teardown(state);
        return 1;
    }
    static const char *const pol[] = {"always", "interval 100 ms", "never"};
    if (!c->json)
        printf("rota-bench: journal load, %u accounts changing without pause, fsync %s, "
               "%.1f s\n",
               c->accounts, pol[c->journal_fsync % 3], c->duration);
    pthread_t t;
    pthread_create(&t, NULL, churn, &ch);
    uint64_t t0 = rota_clock_mono();
    struct rota_journal_stats s0;
    rota_journal_stats(j, &s0);
    while (rota_clock_mono() - t0 < (uint64_t)(c->duration * 1e9))
        usleep(10000);
    struct rota_journal_stats s;
    rota_journal_stats(j, &s);
    double secs = (double)(rota_clock_mono() - t0) / 1e9;
    atomic_store(&ch.stop, true);
    pthread_join(t, NULL);
    uint64_t changes = s.changes - s0.changes, passes = s.passes - s0.passes;
    if (c->json)
        printf("{\"journal_load\":true,\"accounts\":%u,\"seconds\":%.2f,\"passes\":%llu,"
               "\"changes_per_s\":%.0f,\"mean_changes_per_pass\":%.0f,\"max_pass_ms\":%.3f,"
               "\"file_bytes\":%llu,\"snapshots\":%llu,\"errors\":%llu}\n",
               c->accounts, secs, (unsigned long long)passes, (double)changes / secs,
               passes ? (double)changes / (double)passes : 0.0, (double)s.max_pass_ns / 1e6,
               (unsigned long long)s.file.bytes, (unsigned long long)s.file.snapshots,
               (unsigned long long)s.file.errors);
    else
        printf("recorded %.0f changes/s over %.1f s: %llu passes of %.0f changes, longest "
               "pass %.1f ms (budget %.0f ms); file %llu bytes after %llu snapshots; "
               "%llu write errors\n",
               (double)changes / secs, secs, (unsigned long long)passes,
               passes ? (double)changes / (double)passes : 0.0, (double)s.max_pass_ns / 1e6,
               (double)ROTA_JOURNAL_SCAN_NS / 1e6, (unsigned long long)s.file.bytes,
               (unsigned long long)s.file.snapshots, (unsigned long long)s.file.errors);
    rota_journal_stop(j);
    rota_shm_detach(&ch.m);
    bench_rota.teardown(state);
    return s.file.errors ? 1 : 0;
}
