/* stress_seqlock.c - readers in other processes never accept a torn snapshot. */
/*
 * DESIGN
 * The parent publishes a 16-account table (fx_pool) and forks one writer and three
 * readers; nothing is mocked: real processes, a real POSIX shm segment, each reader
 * mapping it with rota_shm_attach at its own address. The writer rewrites snapshots
 * as fast as it can through rota_shm_snap_begin / rota_shm_snap_window / rota_shm_snap_end,
 * with fields spread over the snapshot's cache lines that must agree with one value v:
 *
 *   win[0]: used = v, base = 3v + 7, limit = LIMIT, scale = 1 / LIMIT, reset_at = cs(v, base)
 *   win[1].used = v        win[3].base = 3v + 7        win[7].used = v, win[7].reset_at = cs
 *
 * Readers follow the selection path's protocol exactly (rota_seq_read_begin, relaxed
 * rota_load of each field, rota_seq_read_ok, at most ROTA_SEQ_MAX_TRIES attempts, then
 * "busy") and count the accepted reads whose fields disagree: the proof is that count
 * staying zero over 3 x 10^7 accepted reads (times ROTA_STRESS_SCALE), while each
 * reader keeps going until it has seen MIN_DISTINCT values change under it and the
 * readers' attempts collided with open write sections: the writer really ran among
 * them. A control test runs the same loads without the protocol and must see tears:
 * the checker can fail. Results come back through a MAP_SHARED anonymous mapping;
 * children leave with _exit. Every loop is bounded in count and in time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "seqlock.h"
#include "table.h"

#define NACCOUNTS      16
#define NREADERS       3
#define LIMIT          1000003ull
#define READS_CI       30000000ull /* accepted reads over all readers, times the scale */
#define READER_SECONDS 30          /* a reader gives up after this (times the scale) */
#define WRITER_SECONDS 90          /* the writer stops by itself after this */
#define CONTROL_TORN   1000        /* the control test stops after this many tears */
#define MIN_DISTINCT   10000       /* values each reader must see change, times the scale */

/* One reader's figures, a cache line pair of its own. */
struct reader_res {
    _Alignas(128) _Atomic uint64_t accepted; /* reads rota_seq_read_ok accepted */
    _Atomic uint64_t torn;                   /* ... whose fields disagreed */
    _Atomic uint64_t retries;                /* attempts repeated (odd or changed seq) */
    _Atomic uint64_t busy;                   /* reads abandoned after ROTA_SEQ_MAX_TRIES */
    _Atomic uint64_t distinct;               /* accepted values new for their account */
    _Atomic int done;
};

struct shared {
    _Alignas(128) _Atomic int stop; /* parent: the writer may stop */
    _Atomic int go;                 /* parent: readers may start */
    _Alignas(128) _Atomic uint64_t writes;
    struct reader_res r[NREADERS];
};

static unsigned scale(void)
{
    const char *s = getenv("ROTA_STRESS_SCALE");
    unsigned long v = s ? strtoul(s, NULL, 10) : 1;
    return v < 1 ? 1 : v > 1000 ? 1000 : (unsigned)v;
}

static uint64_t checksum(uint64_t used, uint64_t base)
{
    uint64_t x = used * 0x9e3779b97f4a7c15ull ^ (base + 0x632be59bd9b4e019ull);
    x ^= x >> 29;
    return (x * 0xbf58476d1ce4e5b9ull) >> 1; /* fits an int64_t reset_at */
}

/* Writer side: one whole snapshot for value "v". */
static void write_snap(struct rota_shm_map *m, uint32_t i, uint64_t v)
{
    uint64_t base = v * 3 + 7;
    int64_t cs = (int64_t)checksum(v, base);
    struct rota_shm_snap *s = rota_shm_snap_begin(m, i);
    rota_shm_snap_window(s, 0, v, LIMIT, base);
    rota_store(&s->win[0].reset_at, cs);
    rota_store(&s->win[1].used, v);
    rota_store(&s->win[3].base, base);
    rota_store(&s->win[7].used, v);
    rota_store(&s->win[7].reset_at, cs);
    rota_shm_snap_end(s);
}

/* The fields a reader took, and whether they are one snapshot's. */
struct view {
    uint64_t used0, base0, limit0, used1, base3, used7;
    double scale0;
    int64_t reset0, reset7;
};

static void load_view(struct rota_shm_snap *s, struct view *x)
{
    x->used0 = rota_load(&s->win[0].used);
    x->base0 = rota_load(&s->win[0].base);
    x->limit0 = rota_load(&s->win[0].limit);
    x->scale0 = rota_load(&s->win[0].scale);
    x->reset0 = rota_load(&s->win[0].reset_at);
    x->used1 = rota_load(&s->win[1].used);
    x->base3 = rota_load(&s->win[3].base);
    x->used7 = rota_load(&s->win[7].used);
    x->reset7 = rota_load(&s->win[7].reset_at);
}

static bool view_agrees(const struct view *x)
{
    uint64_t v = x->used0, base = v * 3 + 7;
    int64_t cs = (int64_t)checksum(v, base);
    return x->base0 == base && x->limit0 == LIMIT && x->scale0 == 1.0 / (double)LIMIT &&
           x->reset0 == cs && x->used1 == v && x->base3 == base && x->used7 == v &&
           x->reset7 == cs;
}

/* Writer process: rewrite every account in turn until told to stop (or out of time). */
static void writer_main(struct rota_shm_map *m, struct shared *sh)
{
    uint64_t deadline = rota_clock_mono() + (uint64_t)WRITER_SECONDS * scale() * ROTA_NS_PER_S;
    uint64_t v = NACCOUNTS;
    for (;;) {
        for (uint32_t k = 0; k < 256; k++, v++)
            write_snap(m, (uint32_t)(v % NACCOUNTS), v);
        atomic_store_explicit(&sh->writes, v - NACCOUNTS, memory_order_relaxed);
        if (atomic_load_explicit(&sh->stop, memory_order_relaxed) ||
            rota_clock_mono() > deadline)
            _exit(0);
    }
}

/* Reader process: random accounts, the selection path's protocol, figures into "res".
 * With "checked" false the seqlock is ignored (the control). Stops once it has "target"
 * accepted reads and has seen MIN_DISTINCT values change under it (so it really ran
 * while the writer did), at "max_torn" tears, or at the deadline. */
static void reader_main(const char *instance, struct shared *sh, struct reader_res *res,
                        bool checked, uint64_t target, uint64_t max_torn, uint64_t seed)
{
    struct rota_shm_map m;
    char err[256];
    if (rota_shm_attach(instance, &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "reader: attach: %s\n", err);
        _exit(2);
    }
    while (!atomic_load_explicit(&sh->go, memory_order_acquire))
        sched_yield();
    uint64_t deadline = rota_clock_mono() + (uint64_t)READER_SECONDS * scale() * ROTA_NS_PER_S;
    uint64_t last[NACCOUNTS] = {0}, acc = 0, torn = 0, retries = 0, busy = 0, distinct = 0;
    uint64_t rng = seed | 1;
    uint64_t min_distinct = (uint64_t)MIN_DISTINCT * scale();
    while ((acc < target || distinct < min_distinct) && torn < max_torn) {
        for (uint32_t n = 0; n < 4096; n++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            uint32_t i = (uint32_t)(rng % NACCOUNTS);
            struct rota_shm_snap *s = &m.snaps[i];
            struct view x;
            int tries = 0;
            for (; tries < ROTA_SEQ_MAX_TRIES; tries++) {
                uint32_t start;
                if (!checked) {
                    load_view(s, &x);
                    break;
                }
                if (rota_seq_read_begin(&s->seq, &start)) {
                    load_view(s, &x);
                    if (rota_seq_read_ok(&s->seq, start))
                        break;
                }
                retries++;
            }
            if (tries == ROTA_SEQ_MAX_TRIES) {
                busy++;
                continue;
            }
            acc++;
            torn += !view_agrees(&x);
            distinct += x.used0 != last[i];
            last[i] = x.used0;
        }
        atomic_store_explicit(&res->accepted, acc, memory_order_relaxed);
        if (rota_clock_mono() > deadline)
            break;
    }
    atomic_store_explicit(&res->accepted, acc, memory_order_relaxed);
    atomic_store_explicit(&res->torn, torn, memory_order_relaxed);
    atomic_store_explicit(&res->retries, retries, memory_order_relaxed);
    atomic_store_explicit(&res->busy, busy, memory_order_relaxed);
    atomic_store_explicit(&res->distinct, distinct, memory_order_relaxed);
    atomic_store_explicit(&res->done, 1, memory_order_release);
    rota_shm_detach(&m);
    _exit(0);
}

/* Wait for "pid" at most "seconds"; on timeout kill it and return -ETIMEDOUT. */
static int wait_bounded(pid_t pid, unsigned seconds, int *status)
{
    uint64_t deadline = rota_clock_mono() + (uint64_t)seconds * ROTA_NS_PER_S;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0)
            return -errno;
        if (rota_clock_mono() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return -ETIMEDOUT;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static bool exited_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct totals {
    uint64_t accepted, torn, retries, busy, distinct, min_distinct, writes;
};

/* Publish 16 accounts, seed every snapshot consistently, run the writer and readers. */
static void run(bool checked, uint64_t target_total, uint64_t max_torn, struct totals *t)
{
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "sq", NACCOUNTS, ROTA_STRAT_HYBRID, NULL), 0);
    for (uint32_t i = 0; i < NACCOUNTS; i++)
        write_snap(f.m, i, i);
    struct shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    memset(sh, 0, sizeof(*sh));

    pid_t rd[NREADERS], wr;
    uint64_t per_reader = (target_total + NREADERS - 1) / NREADERS;
    for (int k = 0; k < NREADERS; k++) {
        rd[k] = fork();
        assert_true(rd[k] >= 0);
        if (rd[k] == 0)
            reader_main(f.instance, sh, &sh->r[k], checked, per_reader, max_torn,
                        0x5eed0000ull + (uint64_t)k * 7919 + (uint64_t)getpid());
    }
    wr = fork();
    assert_true(wr >= 0);
    if (wr == 0)
        writer_main(f.m, sh);
    atomic_store_explicit(&sh->go, 1, memory_order_release);

    int st, failed = 0;
    for (int k = 0; k < NREADERS; k++) {
        int rc = wait_bounded(rd[k], READER_SECONDS * scale() + 10, &st);
        failed |= rc != 0 || !exited_ok(st) ||
                  !atomic_load_explicit(&sh->r[k].done, memory_order_acquire);
    }
    atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);
    int wrc = wait_bounded(wr, 10, &st);

    memset(t, 0, sizeof(*t));
    t->min_distinct = UINT64_MAX;
    for (int k = 0; k < NREADERS; k++) {
        struct reader_res *r = &sh->r[k];
        uint64_t distinct = atomic_load_explicit(&r->distinct, memory_order_relaxed);
        t->accepted += atomic_load_explicit(&r->accepted, memory_order_relaxed);
        t->torn += atomic_load_explicit(&r->torn, memory_order_relaxed);
        t->retries += atomic_load_explicit(&r->retries, memory_order_relaxed);
        t->busy += atomic_load_explicit(&r->busy, memory_order_relaxed);
        t->distinct += distinct;
        t->min_distinct = distinct < t->min_distinct ? distinct : t->min_distinct;
    }
    t->writes = atomic_load_explicit(&sh->writes, memory_order_relaxed);
    printf("# %s readers: accepted %llu torn %llu retries %llu busy %llu distinct %llu "
           "(min %llu per reader), writer snapshots %llu\n",
           checked ? "seqlock" : "unchecked", (unsigned long long)t->accepted,
           (unsigned long long)t->torn, (unsigned long long)t->retries,
           (unsigned long long)t->busy, (unsigned long long)t->distinct,
           (unsigned long long)t->min_distinct, (unsigned long long)t->writes);
    munmap(sh, sizeof(*sh));
    fx_close(&f);
    assert_int_equal(failed, 0);
    assert_int_equal(wrc, 0);
    assert_true(exited_ok(st));
}

/* Over 3 x 10^7 accepted reads racing a writer, not one mixes two snapshots. */
static void test_seqlock_no_torn_reads_across_processes(void **state)
{
    (void)state;
    struct totals t;
    uint64_t target = READS_CI * scale();
    run(true, target, UINT64_MAX, &t);
    assert_int_equal(t.torn, 0);
    assert_true(t.accepted >= target);
    /* The writer really ran among the readers: every reader saw values change under it
     * many times, and attempts collided with open write sections. */
    assert_true(t.writes >= 100000);
    assert_true(t.min_distinct >= (uint64_t)MIN_DISTINCT * scale());
    assert_true(t.retries > 0);
}

/* The control: the same loads without the protocol do see torn snapshots, so the
 * checker above is able to catch one. */
static void test_seqlock_unchecked_reads_do_tear(void **state)
{
    (void)state;
    struct totals t;
    run(false, READS_CI * scale(), CONTROL_TORN, &t);
    assert_true(t.torn > 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seqlock_no_torn_reads_across_processes),
        cmocka_unit_test(test_seqlock_unchecked_reads_do_tear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
