/* stress_admit.c - many processes together never admit past a limit, and lose no count. */
/*
 * DESIGN
 * Real processes (fork) race on one real shm table; results come back through a
 * MAP_SHARED anonymous mapping and children leave with _exit.
 *
 * 1. Frozen clock: P processes call rota_gcra_admit directly on an account's RPM word
 *    (&m->hot[i].gcra_req, with the account's {req_interval_ns, req_limit_ns}) with one
 *    "now" shared by all, M times each, on each of NACC accounts with rpm = burst = L
 *    (L = 5000 on half of them: a short, dense race; 10^6 on the others: a fill that
 *    outlasts a scheduler time slice, so the processes interleave even on a busy
 *    machine). With time standing still the only admissions are the burst: the total
 *    per account must be L exactly. More would be a CAS race lost; fewer, a unit wasted.
 *    A barrier per account starts every process on it together, and the test checks
 *    that several processes did win admissions on some account (the race was real).
 * 2. Real clock: P processes admit on one account (burst B, interval T) for about a
 *    second with the monotonic clock. The parent reads the clock before it lets them go
 *    (t0) and after they all exited (t1); GCRA promises admitted <= B + (t1 - t0) / T + 1,
 *    and more than B (the clock really refilled the bucket).
 * 3. Counters: P processes each make K complete rota_select + rota_report cycles through
 *    librota on an 8-account pool without rate limits or quota windows. Afterwards,
 *    summed over accounts, the hot block's request count (use0[0], counted at
 *    selection), "done" and the token count (use0[1]) are exactly P*K, P*K and
 *    P*K*TOKENS, and per account they match what the processes were handed: no
 *    fetch_add was lost.
 *
 * ROTA_STRESS_SCALE (default 1) multiplies M, K and the real-clock duration. Every wait
 * is bounded; the parent heartbeats the table while it waits.
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
#include "gcra.h"
#include "rota.h"
#include "table.h"

#define NPROC        4
#define NACC         8        /* accounts in the frozen-clock test, one after another */
#define FROZEN_SHORT 5000u    /* rpm = burst of accounts 0 .. NACC/2 - 1 there */
#define FROZEN_LONG  1000000u /* ... and of the others */
#define FROZEN_M     1000000u /* admissions each process attempts per account (> L) */
#define REAL_RPM     600000u  /* T = 100 us */
#define REAL_BURST   100u
#define CYCLES_K     50000u /* select + report cycles per process */
#define TOKENS       7u     /* tokens every report says the call used */
#define POOL_N       8u     /* accounts in the counters test (<= NACC) */
#define WAIT_SECONDS 30     /* bound on any child, beyond its own run time */

struct slot {
    _Alignas(128) _Atomic uint64_t n[NACC]; /* per account: admitted, or chosen (test 3) */
    _Atomic uint64_t fail;
};

struct shared {
    _Alignas(128) _Atomic int go;
    _Alignas(128) _Atomic uint32_t arrive[NACC];
    struct slot s[NPROC];
};

static unsigned scale(void)
{
    const char *s = getenv("ROTA_STRESS_SCALE");
    unsigned long v = s ? strtoul(s, NULL, 10) : 1;
    return v < 1 ? 1 : v > 1000 ? 1000 : (unsigned)v;
}

static struct shared *shared_new(void)
{
    struct shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    return sh;
}

/* Wait for every pid until "deadline" (monotonic ns), heartbeating the table of "f".
 * Children still alive then are killed. Returns how many did not exit with status 0. */
static int wait_all(struct fx *f, const pid_t *pid, int n, uint64_t deadline)
{
    int bad = 0, left = n;
    bool done[16] = {false};
    while (left > 0) {
        for (int k = 0; k < n; k++) {
            int st;
            if (done[k] || waitpid(pid[k], &st, WNOHANG) != pid[k])
                continue;
            done[k] = true;
            left--;
            bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        if (left > 0 && rota_clock_mono() > deadline) {
            for (int k = 0; k < n; k++)
                if (!done[k]) {
                    kill(pid[k], SIGKILL);
                    waitpid(pid[k], NULL, 0);
                    bad++;
                }
            break;
        }
        rota_shm_heartbeat(f->w, rota_clock_mono());
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return bad;
}

/* Spin (yielding) until "want" is reached or the deadline passes. */
static bool spin_until(_Atomic uint32_t *v, uint32_t want, uint64_t deadline)
{
    while (atomic_load_explicit(v, memory_order_acquire) < want) {
        if (rota_clock_mono() > deadline)
            return false;
        sched_yield();
    }
    return true;
}

/* A one-tier hybrid route "pool" over POOL_N accounts with neither quota windows nor rate
 * limits, for runs whose length ROTA_STRESS_SCALE sets (a quota would fill up). */
static void publish_open_pool(struct fx *f, const char *tag)
{
    struct fx_pool_opts o = {.n = POOL_N, .strategy = ROTA_STRAT_HYBRID};
    assert_int_equal(fx_pool_with(f, tag, &o), 0);
}

/* A table of "n" accounts with RPM limits rpm[i] (burst the same, or "burst" if not 0),
 * and no route. */
static void publish_limited(struct fx *f, uint32_t n, const uint32_t *rpm, uint32_t burst)
{
    static char names[NACC][16];
    struct rota_desc_account a[NACC];
    memset(a, 0, sizeof(a));
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "lim%u", i);
        a[i] = (struct rota_desc_account){
            .id = 500 + i, .name = names[i], .rpm = rpm[i], .rpm_burst = burst};
    }
    struct rota_desc_provider p = {.name = "prov", .kind = "openai"};
    struct rota_desc d = {.nproviders = 1, .naccounts = n, .providers = &p, .accounts = a};
    assert_int_equal(fx_publish(f, "adm", &d), 0);
}

static struct rota_gcra req_gcra(const struct rota_shm_map *m, uint32_t i)
{
    return (struct rota_gcra){m->accounts[i].req_interval_ns, m->accounts[i].req_limit_ns};
}

static void frozen_child(struct rota_shm_map *m, struct shared *sh, struct slot *out,
                         uint64_t now, uint64_t attempts)
{
    uint64_t deadline = rota_clock_mono() + WAIT_SECONDS * ROTA_NS_PER_S;
    for (uint32_t i = 0; i < NACC; i++) {
        struct rota_gcra g = req_gcra(m, i);
        atomic_fetch_add_explicit(&sh->arrive[i], 1, memory_order_acq_rel);
        if (!spin_until(&sh->arrive[i], NPROC, deadline))
            _exit(3);
        uint64_t won = 0;
        for (uint64_t k = 0; k < attempts; k++)
            won += rota_gcra_admit(&m->hot[i].gcra_req, &g, now, 1, NULL);
        atomic_store_explicit(&out->n[i], won, memory_order_relaxed);
    }
    _exit(0);
}

/* With "now" frozen, P x M admissions on an account with burst L admit exactly L. */
static void test_admit_frozen_clock_exact(void **state)
{
    (void)state;
    struct fx f = {0};
    uint32_t limit[NACC];
    for (uint32_t i = 0; i < NACC; i++)
        limit[i] = i < NACC / 2 ? FROZEN_SHORT : FROZEN_LONG;
    publish_limited(&f, NACC, limit, 0);
    struct shared *sh = shared_new();
    uint64_t now = rota_clock_mono(), attempts = (uint64_t)FROZEN_M * scale();
    pid_t pid[NPROC];
    for (int k = 0; k < NPROC; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0)
            frozen_child(f.m, sh, &sh->s[k], now, attempts);
    }
    int bad = wait_all(&f, pid, NPROC, rota_clock_mono() + WAIT_SECONDS * ROTA_NS_PER_S);

    uint64_t total = 0, want = 0;
    uint32_t shared_accounts = 0, wrong = 0;
    for (uint32_t i = 0; i < NACC; i++) {
        uint64_t sum = 0;
        uint32_t winners = 0;
        for (int k = 0; k < NPROC; k++) {
            uint64_t n = atomic_load_explicit(&sh->s[k].n[i], memory_order_relaxed);
            sum += n;
            winners += n > 0;
        }
        shared_accounts += winners >= 2;
        total += sum;
        /* The word says the same: L units of cost past "now", no more. */
        struct rota_gcra g = req_gcra(f.m, i);
        uint64_t tat = rota_load(&f.m->hot[i].gcra_req);
        want += limit[i];
        if (sum != limit[i] || tat != now + limit[i] * rota_gcra_cost(&g, 1)) {
            print_error("account %u: %llu admitted (limit %u), TAT now + %llu ns\n", i,
                        (unsigned long long)sum, limit[i], (unsigned long long)(tat - now));
            wrong++;
        }
    }
    printf("# frozen clock: %u accounts x %u processes x %llu attempts: %llu admitted "
           "(%u or %u each, as limited), %u accounts won by two or more processes\n",
           NACC, NPROC, (unsigned long long)attempts, (unsigned long long)total, FROZEN_SHORT,
           FROZEN_LONG, shared_accounts);
    munmap(sh, sizeof(*sh));
    fx_close(&f);
    assert_int_equal(bad, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(total, want);
    assert_true(shared_accounts >= 1);
}

static void real_child(struct rota_shm_map *m, struct shared *sh, struct slot *out,
                       uint64_t run_ns)
{
    struct rota_gcra g = req_gcra(m, 0);
    while (!atomic_load_explicit(&sh->go, memory_order_acquire))
        sched_yield();
    uint64_t start = rota_clock_mono(), won = 0, now = start;
    for (uint64_t k = 0; k < 4000000000ull && now - start < run_ns; k++) {
        now = rota_clock_mono();
        won += rota_gcra_admit(&m->hot[0].gcra_req, &g, now, 1, NULL);
    }
    atomic_store_explicit(&out->n[0], won, memory_order_relaxed);
    _exit(0);
}

/* With a real clock, P processes admitting for ~1 s stay within burst + elapsed / T + 1. */
static void test_admit_real_clock_bounded(void **state)
{
    (void)state;
    struct fx f = {0};
    const uint32_t rpm = REAL_RPM;
    publish_limited(&f, 1, &rpm, REAL_BURST);
    struct shared *sh = shared_new();
    uint64_t run_ns = ROTA_NS_PER_S * scale(), interval_ns = f.m->accounts[0].req_interval_ns;
    pid_t pid[NPROC];
    for (int k = 0; k < NPROC; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0)
            real_child(f.m, sh, &sh->s[k], run_ns);
    }
    uint64_t t0 = rota_clock_mono();
    atomic_store_explicit(&sh->go, 1, memory_order_release);
    int bad = wait_all(&f, pid, NPROC, t0 + run_ns + WAIT_SECONDS * ROTA_NS_PER_S);
    uint64_t t1 = rota_clock_mono(), total = 0;
    for (int k = 0; k < NPROC; k++)
        total += atomic_load_explicit(&sh->s[k].n[0], memory_order_relaxed);
    uint64_t bound = REAL_BURST + (t1 - t0) / interval_ns + 1;
    printf("# real clock: %llu admitted over %.3f s by %d processes, bound %llu "
           "(burst %u + elapsed / %llu ns + 1)\n",
           (unsigned long long)total, (double)(t1 - t0) / 1e9, NPROC, (unsigned long long)bound,
           REAL_BURST, (unsigned long long)interval_ns);
    munmap(sh, sizeof(*sh));
    fx_close(&f);
    assert_int_equal(bad, 0);
    assert_true(total <= bound);
    assert_true(total > REAL_BURST);
}

static void cycles_child(const char *instance, struct slot *out, uint64_t cycles, int k)
{
    rota_t *h;
    rota_route_t route;
    char err[256];
    if (rota_attach(instance, &h, err, sizeof(err)) != 0 || rota_route(h, "pool", &route) != 0)
        _exit(2);
    rota_seed(0xc0ffee00ull + (uint64_t)k);
    uint64_t fail = 0, per[POOL_N] = {0};
    for (uint64_t n = 0; n < cycles; n++) {
        rota_choice c;
        if (rota_select(h, &route, NULL, 0, 0, &c) != 0) {
            fail++;
            continue;
        }
        rota_outcome o = {.status = 200, .tokens = TOKENS};
        fail += rota_report(h, &c, &o) != 0 || c.account >= POOL_N;
        per[c.account % POOL_N]++;
    }
    for (uint32_t i = 0; i < POOL_N; i++)
        atomic_store_explicit(&out->n[i], per[i], memory_order_relaxed);
    atomic_store_explicit(&out->fail, fail, memory_order_relaxed);
    _exit(fail ? 1 : 0);
}

/* P x K select + report cycles: request, done and token counters exact across processes. */
static void test_admit_counters_exact(void **state)
{
    (void)state;
    struct fx f = {0};
    publish_open_pool(&f, "cnt");
    struct shared *sh = shared_new();
    uint64_t cycles = (uint64_t)CYCLES_K * scale();
    pid_t pid[NPROC];
    for (int k = 0; k < NPROC; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0)
            cycles_child(f.instance, &sh->s[k], cycles, k);
    }
    uint64_t deadline = rota_clock_mono() + (uint64_t)WAIT_SECONDS * scale() * ROTA_NS_PER_S;
    int bad = wait_all(&f, pid, NPROC, deadline);

    uint64_t req = 0, done = 0, tok = 0, fail = 0, seen[POOL_N] = {0};
    for (int k = 0; k < NPROC; k++) {
        fail += atomic_load_explicit(&sh->s[k].fail, memory_order_relaxed);
        for (uint32_t i = 0; i < POOL_N; i++)
            seen[i] += atomic_load_explicit(&sh->s[k].n[i], memory_order_relaxed);
    }
    uint32_t used_accounts = 0, wrong = 0;
    for (uint32_t i = 0; i < POOL_N; i++) {
        struct rota_shm_hot *h = &f.m->hot[i];
        req += rota_load(&h->use0[0]);
        done += rota_load(&h->done);
        tok += rota_load(&h->use0[1]);
        used_accounts += rota_load(&h->use0[0]) > 0;
        /* Per account too: what the processes counted is what the table counted. */
        wrong += rota_load(&h->use0[0]) != seen[i] || rota_load(&h->done) != seen[i];
    }
    uint64_t want = cycles * NPROC;
    printf("# counters: %llu cycles over %u accounts; requests %llu, done %llu, tokens %llu "
           "(want %llu, %llu, %llu)\n",
           (unsigned long long)want, used_accounts, (unsigned long long)req,
           (unsigned long long)done, (unsigned long long)tok, (unsigned long long)want,
           (unsigned long long)want, (unsigned long long)want * TOKENS);
    munmap(sh, sizeof(*sh));
    fx_close(&f);
    assert_int_equal(bad, 0);
    assert_int_equal(fail, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(req, want);
    assert_int_equal(done, want);
    assert_int_equal(tok, want * TOKENS);
    assert_true(used_accounts >= 2);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_frozen_clock_exact),
        cmocka_unit_test(test_admit_real_clock_bounded),
        cmocka_unit_test(test_admit_counters_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
