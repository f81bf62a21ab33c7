/* stress_crash.c - a process killed at any point leaves the table usable and consistent. */
/*
 * DESIGN
 * Real processes, real SIGKILL, one real shm table per test; nothing mocked. Children
 * report through a MAP_SHARED anonymous mapping (and a pipe where the parent must know
 * the exact moment to kill) and leave with _exit; every wait in the parent is bounded
 * (a child that outlives its bound is killed and the test fails), and the parent
 * heartbeats the table while it waits, as the supervisor would.
 *
 * (a) Selectors loop rota_select + rota_report; one is killed with SIGKILL at a random
 *     moment (random victim, random delay; the seed is printed). Told of the kill, each
 *     survivor must complete AFTER_CYCLES more cycles and leave on its own within the
 *     bound; the table's counters may differ from what the processes counted by the
 *     victim's one unfinished cycle at most; the table still attaches (validates) and
 *     selects. Several rounds on one table.
 * (b) A writer (rota_shm_writer_open + rota_shm_adopt on the live instance) opens a
 *     write section on account 0's snapshot and is killed inside it, leaving the
 *     sequence odd. Selections in another process must keep returning, each within a
 *     generous bound: alone in its tier, account 0 is reported ROTA_SKIP_BUSY
 *     (ROTA_EEXHAUSTED); in a pool of 4 the other three keep being chosen. After a new
 *     writer adopts the table (repairing the sequence) and rewrites the snapshot,
 *     account 0 is chosen again.
 * (c) A selector is killed between rota_select and rota_report, many times. The table
 *     stays valid; each leaked choice shows as exactly one call in flight
 *     (use0[0] - done) on the account it chose, and nothing else changed: no breaker,
 *     cooldown or disable, and selection works as before.
 *
 * (a) and (c) use a pool without quota windows, so that no count of cycles can reach a
 * ceiling; (b) uses fx_pool, whose one window per account makes "busy" the only reason
 * left to skip account 0. ROTA_STRESS_SCALE (default 1) multiplies rounds and cycle
 * counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
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

#include "breaker_word.h"
#include "clock.h"
#include "fixture.h"
#include "rota.h"
#include "select.h"
#include "table.h"

#define NSEL          4        /* selectors in (a) */
#define POOL_N        8        /* accounts in (a) and (c) */
#define TOKENS        3u       /* tokens every report says the call used */
#define WARM_CYCLES   1000u    /* cycles each selector completes before the kill in (a) */
#define PRE_CAP       1000000u /* most cycles a selector makes before the kill in (a) */
#define AFTER_CYCLES  50000u   /* cycles each survivor must complete after it */
#define KILL_ROUNDS_A 8u       /* rounds of (a), each with fresh selectors */
#define PROBE_SELECTS 20000u   /* selections of each probe in (b) */
#define PROBE_MAX     200000u  /* ... at most, whatever the scale: fx_pool's quota is 10^6 */
#define LEAK_ROUNDS   100u     /* kills between select and report in (c) */
#define LEAK_WARM     100u     /* complete cycles the victim makes before its last select */
#define BOUND_S       10u      /* generous bound on any wait, times the scale */
#define SELECT_MAX_NS ROTA_NS_PER_S /* one selection must return within this, however busy */

static unsigned scale(void)
{
    const char *s = getenv("ROTA_STRESS_SCALE");
    unsigned long v = s ? strtoul(s, NULL, 10) : 1;
    return v < 1 ? 1 : v > 1000 ? 1000 : (unsigned)v;
}

static uint64_t probe_selects(void)
{
    uint64_t n = (uint64_t)PROBE_SELECTS * scale();
    return n < PROBE_MAX ? n : PROBE_MAX;
}

static uint64_t bound_ns(void)
{
    return (uint64_t)BOUND_S * scale() * ROTA_NS_PER_S;
}

static void *shared_new(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 0, size);
    return p;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Reap "pid" within "ns", heartbeating "f"'s table meanwhile. On timeout it is killed
 * and -ETIMEDOUT returned. */
static int wait_bounded(struct fx *f, pid_t pid, uint64_t ns, int *status)
{
    uint64_t deadline = rota_clock_mono() + ns;
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
        rota_shm_heartbeat(f->w, rota_clock_mono());
        nap_ms(1);
    }
}

static bool exited_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool killed_by_sigkill(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* Read exactly "n" bytes from "fd" within "ns". */
static int read_bounded(int fd, void *buf, size_t n, uint64_t ns)
{
    size_t got = 0;
    uint64_t deadline = rota_clock_mono() + ns;
    while (got < n) {
        uint64_t now = rota_clock_mono();
        if (now > deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)((deadline - now) / ROTA_NS_PER_MS) + 1);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r <= 0)
            continue;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k <= 0)
            return k == 0 ? -EPIPE : -errno;
        got += (size_t)k;
    }
    return 0;
}

struct sums {
    uint64_t req, done, tok;
};

static struct sums table_sums(const struct rota_shm_map *m)
{
    struct sums s = {0};
    for (uint32_t i = 0; i < m->naccounts; i++) {
        s.req += rota_load(&m->hot[i].use0[0]);
        s.done += rota_load(&m->hot[i].done);
        s.tok += rota_load(&m->hot[i].use0[1]);
    }
    return s;
}

/* A one-tier hybrid route "pool" over POOL_N accounts with neither quota windows nor rate
 * limits, for runs whose length ROTA_STRESS_SCALE sets (a quota would fill up). */
static void publish_open_pool(struct fx *f, const char *tag)
{
    struct fx_pool_opts o = {.n = POOL_N, .strategy = ROTA_STRAT_HYBRID};
    assert_int_equal(fx_pool_with(f, tag, &o), 0);
}

/* A fresh attach validates the table and a few cycles select and report normally. */
static int still_usable(const char *instance, uint32_t cycles)
{
    struct rota_shm_map m;
    char err[256] = "";
    int rc = rota_shm_attach(instance, &m, err, sizeof(err));
    if (rc) {
        print_error("attach after the kill: %s\n", err);
        return rc;
    }
    rota_shm_detach(&m);
    rota_t *h;
    rota_route_t route;
    if ((rc = rota_attach(instance, &h, err, sizeof(err))) != 0)
        return rc;
    if ((rc = rota_route(h, "pool", &route)) == 0)
        for (uint32_t k = 0; k < cycles && rc == 0; k++) {
            rota_choice c;
            rota_outcome o = {.status = 200, .tokens = TOKENS};
            rc = rota_select(h, &route, NULL, 0, 0, &c);
            if (rc == 0)
                rc = rota_report(h, &c, &o);
        }
    rota_detach(h);
    return rc;
}

/* ---- (a) a selector killed mid-loop ---- */

struct sel_slot {
    _Alignas(128) _Atomic uint64_t progress; /* cycles completed (stored after report) */
    _Atomic uint64_t after;                  /* ... of them after the kill was announced */
    _Atomic uint64_t fail;
};

struct sel_shared {
    _Alignas(128) _Atomic int killed; /* parent: the victim is dead */
    struct sel_slot s[NSEL];
};

/* Selector: complete cycles until the parent announces the kill (at most PRE_CAP of
 * them, then wait for it), then exactly AFTER_CYCLES more, then leave on its own. */
static void selector_main(const char *instance, struct sel_shared *sh, int k)
{
    rota_t *h;
    rota_route_t route;
    if (rota_attach(instance, &h, NULL, 0) != 0 || rota_route(h, "pool", &route) != 0)
        _exit(2);
    rota_seed(0xabcd0000ull + (uint64_t)k * 977 + (uint64_t)getpid());
    struct sel_slot *me = &sh->s[k];
    uint64_t deadline = rota_clock_mono() + 3 * bound_ns();
    uint64_t n = 0, after = 0, fail = 0, cap = (uint64_t)PRE_CAP * scale();
    uint64_t want = (uint64_t)AFTER_CYCLES * scale();
    for (uint64_t it = 1;; it++) {
        bool killed = atomic_load_explicit(&sh->killed, memory_order_acquire);
        if (killed && after >= want)
            break;
        if ((it & 1023) == 0 && rota_clock_mono() > deadline)
            _exit(4);
        if (!killed && n >= cap) {
            sched_yield();
            continue;
        }
        rota_choice c;
        rota_outcome o = {.status = 200, .tokens = TOKENS};
        if (rota_select(h, &route, NULL, 0, 0, &c) != 0 || rota_report(h, &c, &o) != 0) {
            atomic_store_explicit(&me->fail, ++fail, memory_order_relaxed);
            continue;
        }
        after += killed;
        atomic_store_explicit(&me->progress, ++n, memory_order_release);
    }
    atomic_store_explicit(&me->after, after, memory_order_relaxed);
    _exit(fail ? 1 : 0);
}

/* Wait until every selector has completed "floor" cycles, within the bound. */
static bool all_warm(struct fx *f, struct sel_shared *sh, uint64_t floor)
{
    uint64_t deadline = rota_clock_mono() + bound_ns();
    for (;;) {
        bool all = true;
        for (int k = 0; k < NSEL; k++)
            all &= atomic_load_explicit(&sh->s[k].progress, memory_order_acquire) >= floor;
        if (all)
            return true;
        if (rota_clock_mono() > deadline)
            return false;
        rota_shm_heartbeat(f->w, rota_clock_mono());
        nap_ms(1);
    }
}

/* One round of (a); returns the number of failed checks (printed). */
static int kill_round(struct fx *f, unsigned round, unsigned seed)
{
    struct sel_shared *sh = shared_new(sizeof(*sh));
    struct sums before = table_sums(f->m);
    pid_t pid[NSEL];
    int bad = 0, st;
    for (int k = 0; k < NSEL; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0)
            selector_main(f->instance, sh, k);
    }
    if (!all_warm(f, sh, WARM_CYCLES)) {
        print_error("round %u: selectors did not warm up\n", round);
        bad++;
    }
    srand(seed);
    int victim = rand() % NSEL;
    nap_ms(1 + (unsigned)(rand() % 40)); /* a random moment in the loop */
    kill(pid[victim], SIGKILL);
    if (wait_bounded(f, pid[victim], bound_ns(), &st) != 0 || !killed_by_sigkill(st)) {
        print_error("round %u: victim not killed\n", round);
        bad++;
    }
    uint64_t at_kill = atomic_load_explicit(&sh->s[victim].progress, memory_order_acquire);
    atomic_store_explicit(&sh->killed, 1, memory_order_release);
    uint64_t prog = 0, after = 0, want = (uint64_t)AFTER_CYCLES * scale();
    for (int k = 0; k < NSEL; k++) {
        if (k == victim)
            continue;
        int rc = wait_bounded(f, pid[k], bound_ns(), &st);
        uint64_t a = atomic_load_explicit(&sh->s[k].after, memory_order_relaxed);
        after += a;
        if (rc != 0 || !exited_ok(st) || a != want) {
            print_error(
                "round %u: survivor %d %s: %llu cycles after the kill, %llu failed\n", round, k,
                rc              ? "hung"
                : exited_ok(st) ? "stopped short"
                                : "failed",
                (unsigned long long)a,
                (unsigned long long)atomic_load_explicit(&sh->s[k].fail, memory_order_relaxed));
            bad++;
        }
    }
    for (int k = 0; k < NSEL; k++)
        prog += atomic_load_explicit(&sh->s[k].progress, memory_order_acquire);
    struct sums now = table_sums(f->m);
    uint64_t dreq = now.req - before.req, ddone = now.done - before.done;
    uint64_t dtok = now.tok - before.tok;
    printf("# round %u: killed selector %d after %llu cycles; survivors completed %llu more; "
           "table: %llu selected, %llu done, %llu tokens; processes counted %llu\n",
           round, victim, (unsigned long long)at_kill, (unsigned long long)after,
           (unsigned long long)dreq, (unsigned long long)ddone, (unsigned long long)dtok,
           (unsigned long long)prog);
    /* The victim's one unfinished cycle is all that may be missing or extra. */
    if (dreq < prog || dreq > prog + 1 || ddone < prog || ddone > prog + 1 || ddone > dreq ||
        (ddone * TOKENS != dtok && (ddone - 1) * TOKENS != dtok)) {
        print_error("round %u: counters inconsistent\n", round);
        bad++;
    }
    munmap(sh, sizeof(*sh));
    return bad;
}

/* SIGKILL one of several selectors at random moments: the rest carry on, the table holds. */
static void test_crash_selector_killed_midloop(void **state)
{
    (void)state;
    struct fx f = {0};
    publish_open_pool(&f, "ck");
    unsigned seed = (unsigned)(rota_clock_mono() ^ (uint64_t)getpid());
    printf("# seed %u\n", seed);
    int bad = 0;
    for (unsigned r = 0; r < KILL_ROUNDS_A * scale(); r++)
        bad += kill_round(&f, r, seed + r);
    int usable = still_usable(f.instance, 1000);
    fx_close(&f);
    assert_int_equal(bad, 0);
    assert_int_equal(usable, 0);
}

/* ---- (b) the writer killed inside a write section ---- */

/* A writer that adopts the live instance, opens account "a"'s write section, half-writes
 * it, says so on the pipe and waits to be killed. Returns its pid, or -1. */
static pid_t writer_stuck_in_section(const char *instance, uint32_t a)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        struct rota_shm_writer *w;
        close(fd[0]);
        if (rota_shm_writer_open(instance, 0600, &w, NULL, 0) || rota_shm_adopt(w, NULL, 0))
            _exit(2);
        struct rota_shm_snap *s = rota_shm_snap_begin(rota_shm_writer_map(w), a);
        rota_store(&s->win[0].used, 999999999); /* a write the reader must never trust */
        if (write(fd[1], "x", 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(fd[1]);
    char c;
    int rc = pid > 0 ? read_bounded(fd[0], &c, 1, bound_ns()) : -1;
    close(fd[0]);
    if (rc != 0 && pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

/* What a probe process saw; written once, when it is done (read after it is reaped). */
struct probe {
    uint64_t ok, exhausted, busy, other, done, max_ns;
    uint64_t per[8]; /* successes per account */
};

/* Probe process: "n" selections on route "pool", each timed, successes reported. */
static void probe_main(const char *instance, struct probe *p, uint64_t n)
{
    rota_t *h;
    rota_route_t route;
    if (rota_attach(instance, &h, NULL, 0) != 0 || rota_route(h, "pool", &route) != 0)
        _exit(2);
    struct probe r = {0};
    for (uint64_t k = 0; k < n; k++) {
        rota_choice c;
        uint64_t t = rota_clock_mono();
        int rc = rota_select(h, &route, NULL, 0, 0, &c);
        t = rota_clock_mono() - t;
        r.max_ns = t > r.max_ns ? t : r.max_ns;
        if (rc == 0) {
            rota_outcome o = {.status = 200, .tokens = TOKENS};
            r.other += rota_report(h, &c, &o) != 0;
            r.ok++;
            r.per[c.account & 7]++;
        } else if (rc == ROTA_EEXHAUSTED) {
            r.exhausted++;
            r.busy += (c.skipped[0] & ROTA_SKIP_BUSY) != 0;
        } else {
            r.other++;
        }
    }
    r.done = 1;
    *p = r;
    _exit(0);
}

/* Run a probe to completion within the bound; false if it hung or failed. */
static bool run_probe(struct fx *f, struct probe *p, uint64_t n)
{
    memset(p, 0, sizeof(*p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        probe_main(f->instance, p, n);
    int st, rc = wait_bounded(f, pid, bound_ns(), &st);
    printf("# probe: %llu selections: %llu ok (accounts %llu %llu %llu %llu), %llu exhausted "
           "(%llu busy), %llu other; slowest %llu ns%s\n",
           (unsigned long long)n, (unsigned long long)p->ok, (unsigned long long)p->per[0],
           (unsigned long long)p->per[1], (unsigned long long)p->per[2],
           (unsigned long long)p->per[3], (unsigned long long)p->exhausted,
           (unsigned long long)p->busy, (unsigned long long)p->other,
           (unsigned long long)p->max_ns, rc ? " (HUNG: killed)" : "");
    return rc == 0 && exited_ok(st) && p->done && p->max_ns < SELECT_MAX_NS;
}

/* A restarted supervisor: adopt (repairs the odd sequence), rewrite account "a". */
static int new_writer_adopts(struct fx *f, uint32_t a)
{
    struct rota_shm_writer *w;
    char err[256] = "";
    int rc = rota_shm_writer_open(f->instance, 0600, &w, err, sizeof(err));
    if (rc == 0)
        rc = rota_shm_adopt(w, err, sizeof(err));
    if (rc) {
        print_error("adopt: %s\n", err);
        return rc;
    }
    struct rota_shm_map *m = rota_shm_writer_map(w);
    rc = rota_load(&m->snaps[a].seq) & 1u ? -EBUSY : 0; /* adopt must have closed it */
    struct rota_shm_snap *s = rota_shm_snap_begin(m, a);
    rota_shm_snap_window(s, 0, 0, rota_load(&s->win[0].limit), rota_load(&m->hot[a].use0[0]));
    rota_shm_snap_end(s);
    rota_shm_heartbeat(w, rota_clock_mono());
    rota_shm_writer_close(w, false);
    return rc;
}

/* Kill a writer inside account 0's write section of an "n"-account pool; probe before
 * and after a new writer adopts. */
static void writer_killed_scenario(uint32_t n, struct probe *dead, struct probe *adopted,
                                   bool *dead_ok, bool *adopted_ok, bool *seq_odd,
                                   int *adopt_rc)
{
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "wk", n, ROTA_STRAT_HYBRID, NULL), 0);
    uint64_t selects = probe_selects();
    pid_t w = writer_stuck_in_section(f.instance, 0);
    int st = 0;
    bool killed = w > 0 && kill(w, SIGKILL) == 0 && wait_bounded(&f, w, bound_ns(), &st) == 0 &&
                  killed_by_sigkill(st);
    *seq_odd = killed && (rota_load(&f.m->snaps[0].seq) & 1u);
    *dead_ok = *seq_odd && run_probe(&f, dead, selects);
    *adopt_rc = new_writer_adopts(&f, 0);
    *adopted_ok = *adopt_rc == 0 && run_probe(&f, adopted, selects);
    fx_close(&f);
}

/* Alone in its tier, the account a dead writer left mid-write is skipped as busy, at
 * once and every time; after adoption it is chosen again. */
static void test_crash_writer_killed_single_account_busy(void **state)
{
    (void)state;
    struct probe *dead = shared_new(sizeof(*dead)), *adopted = shared_new(sizeof(*adopted));
    bool dead_ok, adopted_ok, odd;
    int adopt_rc;
    writer_killed_scenario(1, dead, adopted, &dead_ok, &adopted_ok, &odd, &adopt_rc);
    uint64_t selects = probe_selects();
    struct probe d = *dead, a = *adopted;
    munmap(dead, sizeof(*dead));
    munmap(adopted, sizeof(*adopted));
    assert_true(odd);
    assert_true(dead_ok);
    assert_int_equal(d.exhausted, selects);
    assert_int_equal(d.busy, selects);
    assert_int_equal(adopt_rc, 0);
    assert_true(adopted_ok);
    assert_int_equal(a.ok, selects);
    assert_int_equal(a.per[0], selects);
}

/* In a pool of 4, selection routes around the dead writer's account, never hanging;
 * after adoption the account is back in rotation. */
static void test_crash_writer_killed_pool_routes_around(void **state)
{
    (void)state;
    struct probe *dead = shared_new(sizeof(*dead)), *adopted = shared_new(sizeof(*adopted));
    bool dead_ok, adopted_ok, odd;
    int adopt_rc;
    writer_killed_scenario(4, dead, adopted, &dead_ok, &adopted_ok, &odd, &adopt_rc);
    uint64_t selects = probe_selects();
    struct probe d = *dead, a = *adopted;
    munmap(dead, sizeof(*dead));
    munmap(adopted, sizeof(*adopted));
    assert_true(odd);
    assert_true(dead_ok);
    assert_int_equal(d.ok, selects);
    assert_int_equal(d.per[0], 0);
    assert_true(d.per[1] > 0 && d.per[2] > 0 && d.per[3] > 0);
    assert_int_equal(adopt_rc, 0);
    assert_true(adopted_ok);
    assert_int_equal(a.ok, selects);
    assert_true(a.per[0] > 0);
}

/* ---- (c) killed between select and report ---- */

/* Victim: a few complete cycles, then one select; tell the parent the account and wait. */
static void leaker_main(const char *instance, int fd, uint64_t seed)
{
    rota_t *h;
    rota_route_t route;
    if (rota_attach(instance, &h, NULL, 0) != 0 || rota_route(h, "pool", &route) != 0)
        _exit(2);
    rota_seed(seed);
    for (uint32_t k = 0; k < LEAK_WARM; k++) {
        rota_choice c;
        rota_outcome o = {.status = 200, .tokens = TOKENS};
        if (rota_select(h, &route, NULL, 0, 0, &c) != 0 || rota_report(h, &c, &o) != 0)
            _exit(3);
    }
    rota_choice c;
    if (rota_select(h, &route, NULL, 0, 0, &c) != 0)
        _exit(4);
    uint32_t a = c.account;
    if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
        _exit(5);
    for (;;)
        pause();
}

/* Leaked choices show as calls in flight on their accounts, and as nothing else. */
static void test_crash_killed_between_select_and_report(void **state)
{
    (void)state;
    struct fx f = {0};
    publish_open_pool(&f, "lk");
    uint32_t rounds = LEAK_ROUNDS * scale(), killed = 0, leaked[POOL_N] = {0};
    int bad = 0;
    for (uint32_t r = 0; r < rounds; r++) {
        int fd[2];
        assert_int_equal(pipe(fd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fd[0]);
            leaker_main(f.instance, fd[1], 0x1eaf0000ull + r);
        }
        close(fd[1]);
        uint32_t a = UINT32_MAX;
        int rc = read_bounded(fd[0], &a, sizeof(a), bound_ns());
        close(fd[0]);
        kill(pid, SIGKILL);
        int st;
        if (wait_bounded(&f, pid, bound_ns(), &st) != 0 || rc != 0 || !killed_by_sigkill(st) ||
            a >= POOL_N) {
            print_error("round %u: victim failed before its kill (read %d)\n", r, rc);
            bad++;
            continue;
        }
        leaked[a]++;
        killed++;
    }

    struct rota_shm_map m;
    char err[256] = "";
    int attach_rc = rota_shm_attach(f.instance, &m, err, sizeof(err));
    if (attach_rc)
        print_error("attach: %s\n", err);
    uint32_t wrong = 0;
    struct sums s = {0};
    if (attach_rc == 0) {
        s = table_sums(&m);
        for (uint32_t i = 0; i < POOL_N; i++) {
            struct rota_shm_hot *h = &m.hot[i];
            wrong += rota_in_flight(&m, i) != leaked[i];
            wrong += (rota_load(&h->breaker) & ~ROTA_BREAKER_EPOCH_MASK) != 0 || rota_load(&h->cooldown_until) != 0 ||
                     rota_load(&h->disabled) != 0 || rota_load(&h->consec_fail) != 0 ||
                     rota_load(&h->failures) != 0 || (rota_load(&m.snaps[i].seq) & 1u);
        }
        wrong += (rota_load(&m.phot[0].breaker) & ~ROTA_BREAKER_EPOCH_MASK) != 0;
    }
    int usable = still_usable(f.instance, 1000);
    uint32_t after_use = 0; /* the leaks stay what they were; new cycles leak nothing */
    for (uint32_t i = 0; attach_rc == 0 && i < POOL_N; i++)
        after_use += rota_in_flight(&m, i) != leaked[i];
    printf("# %u selectors killed between select and report; in flight per account:", killed);
    for (uint32_t i = 0; i < POOL_N; i++)
        printf(" %u", leaked[i]);
    printf("; table: %llu selected, %llu done, %llu tokens\n", (unsigned long long)s.req,
           (unsigned long long)s.done, (unsigned long long)s.tok);
    if (attach_rc == 0)
        rota_shm_detach(&m);
    fx_close(&f);

    uint64_t full = (uint64_t)killed * LEAK_WARM;
    assert_int_equal(bad, 0);
    assert_int_equal(killed, rounds);
    assert_int_equal(attach_rc, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(s.req - s.done, killed);
    assert_int_equal(s.req, full + killed);
    assert_int_equal(s.done, full);
    assert_int_equal(s.tok, full * TOKENS);
    assert_int_equal(usable, 0);
    assert_int_equal(after_use, 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_selector_killed_midloop),
        cmocka_unit_test(test_crash_writer_killed_single_account_busy),
        cmocka_unit_test(test_crash_writer_killed_pool_routes_around),
        cmocka_unit_test(test_crash_killed_between_select_and_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
