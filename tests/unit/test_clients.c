/* test_clients: leases of calls in flight across real processes: hold, drop, leave, and
 * the supervisor's reaping of workers killed with SIGKILL, across a reload too. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clients.h"
#include "clock.h"
#include "fixture.h"
#include "hash.h"
#include "rota.h"
#include "select.h"

/* Calls in flight over every account of "m". */
static uint64_t in_flight(const struct rota_shm_map *m)
{
    uint64_t n = 0;
    for (uint32_t a = 0; a < m->naccounts; a++)
        n += rota_in_flight(m, a);
    return n;
}

#define assert_count(f, live, held) check_count(f, live, held, __LINE__)

static void check_count(struct fx *f, uint32_t live, uint64_t held, int line)
{
    uint32_t l;
    uint64_t h;
    rota_shm_clients_count(rota_shm_writer_clients(f->w), &l, &h);
    if (l != live || h != held)
        fail_msg("line %d: %u live slots holding %llu, expected %u holding %llu", line, l,
                 (unsigned long long)h, live, (unsigned long long)held);
}

static uint64_t tracked(struct rota_shm_client *s);

/* The live slot of process "pid" holding the most calls (a forked worker also has the
 * slot its inherited handle claimed at fork), or NULL. */
static struct rota_shm_client *slot_of(struct fx *f, pid_t pid)
{
    struct rota_shm_clients *c = rota_shm_writer_clients(f->w);
    struct rota_shm_client *best = NULL;
    for (int i = 0; i < ROTA_CLIENTS_SLOTS; i++) {
        struct rota_shm_client *s = rota_shm_client_at(c, i);
        uint64_t own = rota_load(&s->own);
        if (rota_client_state(own) == ROTA_CLIENT_LIVE &&
            rota_client_pid(own) == (int32_t)pid &&
            (!best || tracked(s) + rota_load(&s->untracked) >
                          tracked(best) + rota_load(&best->untracked)))
            best = s;
    }
    return best;
}

/* A lease held as untracked (no entry): its entry part is 0. */
static bool untracked_lease(uint32_t lease)
{
    return (lease & ((1u << ROTA_LEASE_SLOT_SHIFT) - 1)) == 0;
}

static uint64_t tracked(struct rota_shm_client *s)
{
    uint64_t n = 0;
    for (uint32_t k = 0; k < ROTA_CLIENT_ENTRIES; k++)
        n += rota_load(&s->ent[k]) & ROTA_CLIENT_COUNT_MASK;
    return n;
}

/* Select "n" calls on route "pool" without reporting them. */
static int select_n(rota_t *h, uint32_t n, rota_choice *out)
{
    rota_route_t rt;
    int rc = rota_route(h, "pool", &rt);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        rc = rota_select(h, &rt, NULL, 0, 1, &out[i]);
    return rc;
}

static void report_all(rota_t *h, const rota_choice *c, uint32_t n)
{
    rota_outcome o = {.status = 200};
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(rota_report(h, &c[i], &o), 0);
}

/* ---- a worker process ---- */

struct kid {
    pid_t pid;
    int up;   /* kid -> test: one byte per step done ('e' on error) */
    int down; /* test -> kid: one byte per step to take; closed = exit */
};

/* The worker: attach, hold "first" calls, say so; on the next byte hold "then" more and
 * say so; then wait until told to go or killed. Exits without detaching. */
static void kid_main(const char *instance, uint32_t first, uint32_t then, int up, int down)
{
    static rota_choice c[1024];
    rota_t *h;
    char b = 'e';
    if (rota_attach(instance, &h, NULL, 0) == 0 && select_n(h, first, c) == 0)
        b = 'a';
    if (write(up, &b, 1) != 1 || b == 'e')
        _exit(1);
    if (then && read(down, &b, 1) == 1) {
        b = select_n(h, then, c + first) == 0 ? 'b' : 'e';
        if (write(up, &b, 1) != 1)
            _exit(1);
    }
    while (read(down, &b, 1) > 0)
        ;
    _exit(0);
}

static struct kid kid_start(struct fx *f, uint32_t first, uint32_t then)
{
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only its own pipe ends: another worker's would keep that one from seeing EOF. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != up[1] && fd != down[0])
                close(fd);
        kid_main(f->instance, first, then, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    struct kid k = {pid, up[0], down[1]};
    char b = 0;
    assert_int_equal(read(k.up, &b, 1), 1);
    assert_int_equal(b, 'a');
    return k;
}

static void kid_step(struct kid *k)
{
    char b = 's';
    assert_int_equal(write(k->down, &b, 1), 1);
    assert_int_equal(read(k->up, &b, 1), 1);
    assert_int_equal(b, 'b');
}

/* SIGKILL (or, with sig 0, let it exit) and wait for it. */
static void kid_end(struct kid *k, int sig)
{
    int st;
    if (sig)
        assert_int_equal(kill(k->pid, sig), 0);
    close(k->down);
    assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
    if (sig)
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == sig);
    else
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(k->up);
}

/* ---- tests ---- */

/* Each test's table lives in its state, so a failed test still removes its segments. */
static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx_close(*state);
    return 0;
}

static void test_clients_select_holds_report_drops(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    assert_count(f, 0, 0);
    rota_t *h;
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_count(f, 1, 0);
    assert_non_null(slot_of(f, getpid()));
    rota_choice c[5];
    assert_int_equal(select_n(h, 5, c), 0);
    assert_count(f, 1, 5);
    assert_int_equal(in_flight(f->m), 5);
    report_all(h, c, 2);
    assert_count(f, 1, 3);
    assert_int_equal(in_flight(f->m), 3);
    /* Nothing to reap: this process is alive. */
    assert_int_equal(rota_shm_clients_reap(rota_shm_writer_clients(f->w), f->m, NULL), 0);
    report_all(h, c + 2, 3);
    assert_count(f, 1, 0);
    assert_int_equal(in_flight(f->m), 0);
    rota_detach(h);
}

static void test_clients_killed_worker_is_reaped(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    rota_t *h;
    rota_choice mine[2];
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(select_n(h, 2, mine), 0);

    struct kid k = kid_start(f, 7, 0);
    assert_count(f, 3, 9); /* ours, the worker's, and the one its copy of ours took at fork */
    assert_int_equal(in_flight(f->m), 9);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 0); /* it still runs */
    kid_end(&k, SIGKILL);
    assert_int_equal(in_flight(f->m), 9); /* nobody reported them */

    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 7);
    assert_int_equal(in_flight(f->m), 2); /* what this process still holds */
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 0);
    assert_count(f, 1, 2);
    assert_null(slot_of(f, k.pid));

    /* The freed slot serves the next worker. */
    struct kid k2 = kid_start(f, 3, 0);
    assert_count(f, 3, 5);
    kid_end(&k2, SIGKILL);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 3);
    report_all(h, mine, 2);
    assert_int_equal(in_flight(f->m), 0);
    assert_count(f, 1, 0);
    rota_detach(h);
}

static pid_t g_dead; /* the pid the injected liveness check calls dead */

static bool alive_but_one(int32_t pid, uint64_t start)
{
    return pid != g_dead && rota_client_alive(pid, start);
}

static void test_clients_live_worker_is_not_reaped(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    struct kid a = kid_start(f, 4, 0), b = kid_start(f, 5, 0);
    assert_count(f, 2, 9);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 0);
    assert_count(f, 2, 9);
    assert_int_equal(in_flight(f->m), 9);

    /* The seam: a liveness check that says "a" is gone reaps "a" alone. */
    g_dead = a.pid;
    assert_int_equal(rota_shm_clients_reap(clients, f->m, alive_but_one), 4);
    assert_count(f, 1, 5);
    assert_int_equal(in_flight(f->m), 5);
    assert_non_null(slot_of(f, b.pid));
    kid_end(&a, 0);
    kid_end(&b, 0); /* exits without detaching: as good as dead */
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 5);
    assert_int_equal(in_flight(f->m), 0);
}

static void test_clients_leave_hands_held_calls_to_the_reaper(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    int slot = rota_shm_client_claim(clients);
    assert_true(slot >= 0);
    struct rota_shm_client *s = rota_shm_client_at(clients, slot);
    struct rota_rng rng = {1};
    uint64_t now = rota_clock_mono();
    for (int i = 0; i < 3; i++) { /* as librota selects */
        struct rota_sel_req q = {
            .route = 0, .now = now, .lease = s, .lease_slot = (uint32_t)slot};
        struct rota_sel_res r;
        assert_int_equal(rota_select_route(f->m, &q, &rng, &r), 0);
        assert_false(untracked_lease(r.lease));
    }
    assert_count(f, 1, 3);
    rota_shm_client_leave(clients, slot);
    assert_int_equal(rota_client_state(rota_load(&s->own)), ROTA_CLIENT_GONE);
    assert_count(f, 0, 0);
    assert_int_equal(in_flight(f->m), 3);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 3);
    assert_int_equal(rota_client_state(rota_load(&s->own)), ROTA_CLIENT_FREE);
    assert_int_equal(in_flight(f->m), 0);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 0);
}

static void test_clients_detach_leaves_the_slot(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    rota_t *h;
    rota_choice c[3];
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(select_n(h, 3, c), 0);
    assert_count(f, 1, 3);
    rota_detach(h); /* with three calls never reported */
    assert_count(f, 0, 0);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 3);
    assert_int_equal(in_flight(f->m), 0);
    /* Attach and detach many times over: each handle gives its slot back. */
    for (int i = 0; i < ROTA_CLIENTS_SLOTS + 8; i++) {
        assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
        rota_detach(h);
    }
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 0);
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(select_n(h, 2, c), 0);
    assert_count(f, 1, 2);
    report_all(h, c, 2);
    rota_detach(h);
}

static void test_clients_reap_after_reload(void **state)
{
    struct fx *f = *state;
    struct fx_pool_opts o = {.n = 4, .strategy = ROTA_STRAT_ROUND_ROBIN, .limit = 1000000};
    assert_int_equal(fx_pool_with(f, "cl", &o), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    rota_t *h;
    rota_choice mine[2];
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(select_n(h, 2, mine), 0);

    /* The worker holds 4 calls on generation 1, then 3 on generation 2. */
    struct kid k = kid_start(f, 4, 3);
    uint64_t gen = f->m->hdr->generation;
    o.n = 5; /* a reload that adds an account */
    assert_int_equal(fx_pool_with(f, "cl", &o), 0);
    assert_int_equal(f->m->hdr->generation, gen + 1);
    kid_step(&k);
    /* The kid may have counted them on generation 1 before its handle followed: the
     * writer carries them over, as the supervisor's every-second settle would. */
    rota_shm_settle(f->w, false);
    assert_count(f, 3, 9);
    assert_int_equal(in_flight(f->m), 9);
    kid_end(&k, SIGKILL);

    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 7);
    rota_shm_settle(f->w, true);
    assert_int_equal(in_flight(f->m), 2);
    assert_count(f, 1, 2);
    /* choices made on generation 1, reported on 2 once the handle follows (reported
     * before, they would wait for its mover: generation 1 is let go already) */
    for (int i = 0; i < 5000 && rota_generation(h) != gen + 1; i++)
        usleep(1000);
    assert_int_equal(rota_generation(h), gen + 1);
    report_all(h, mine, 2);
    rota_shm_settle(f->w, true);
    assert_int_equal(in_flight(f->m), 0);
    assert_count(f, 1, 0);
    rota_detach(h);
}

static void test_clients_hold_beyond_the_table_is_untracked(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    int slot = rota_shm_client_claim(clients);
    assert_true(slot >= 0);
    struct rota_shm_client *s = rota_shm_client_at(clients, slot);
    /* 2,000 distinct accounts held at once: the entries fill up, the rest is untracked,
     * and every hold is still counted once. */
    static uint32_t got[2000];
    uint64_t untracked = 0;
    for (uint32_t i = 0; i < 2000; i++) {
        got[i] = rota_client_hold(s, (uint32_t)slot, rota_client_tag(1000 + i));
        untracked += untracked_lease(got[i]);
    }
    assert_true(untracked >= 2000 - ROTA_CLIENT_ENTRIES);
    assert_int_equal(rota_load(&s->untracked), untracked);
    assert_int_equal(tracked(s) + untracked, 2000);
    assert_count(f, 1, 2000);
    for (uint32_t i = 0; i < 2000; i++)
        rota_client_drop(s, (uint32_t)slot, got[i], rota_client_tag(1000 + i));
    assert_int_equal(rota_load(&s->untracked), 0);
    assert_int_equal(tracked(s), 0);
    assert_count(f, 1, 0);
    /* Entries free themselves at zero: a long life over many accounts, a few at a time,
     * never runs out. */
    for (uint32_t i = 0; i < 20000; i++) {
        uint64_t ta = rota_client_tag(50000 + i), tb = rota_client_tag(90000 + i);
        uint32_t a = rota_client_hold(s, (uint32_t)slot, ta);
        uint32_t b = rota_client_hold(s, (uint32_t)slot, tb);
        assert_false(untracked_lease(a));
        assert_false(untracked_lease(b));
        rota_client_drop(s, (uint32_t)slot, a, ta);
        rota_client_drop(s, (uint32_t)slot, b, tb);
    }
    for (uint32_t k = 0; k < ROTA_CLIENT_ENTRIES; k++)
        assert_int_equal(rota_load(&s->ent[k]), 0);
    /* A drop names its account: an entry that holds another (a choice made in another
     * slot, carried over a fork, whose entry number here is someone else's) is left. */
    uint64_t t7 = rota_client_tag(7777);
    uint32_t x = rota_client_hold(s, (uint32_t)slot, t7);
    rota_client_drop(s, (uint32_t)slot, x, rota_client_tag(8888));
    assert_int_equal(tracked(s), 1);
    /* Nor is a lease another slot gave, for the same account. */
    uint32_t other = (uint32_t)slot + 1;
    rota_client_drop(s, (uint32_t)slot, (other + 1) << ROTA_LEASE_SLOT_SHIFT | (x & 0xffff),
                     t7);
    assert_int_equal(tracked(s), 1);
    rota_client_drop(s, (uint32_t)slot, x, t7);
    assert_int_equal(tracked(s), 0);
    rota_shm_client_leave(clients, slot);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 0);
}

static void test_clients_more_accounts_than_entries(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 256, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    enum { N = 512 };
    static rota_choice c[N];
    rota_t *h;
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(select_n(h, N, c), 0);
    uint32_t distinct = 0, untracked_choices = 0;
    for (uint32_t a = 0; a < f->m->naccounts; a++)
        distinct += rota_in_flight(f->m, a) > 0;
    for (uint32_t i = 0; i < N; i++)
        untracked_choices += untracked_lease(c[i].lease);
    assert_true(distinct > ROTA_CLIENT_ENTRIES);
    struct rota_shm_client *s = slot_of(f, getpid());
    assert_non_null(s);
    uint64_t untracked = rota_load(&s->untracked);
    assert_true(untracked > 0);
    assert_int_equal(untracked, untracked_choices);
    assert_int_equal(tracked(s) + untracked, N);
    assert_count(f, 1, N);
    report_all(h, c, N);
    assert_int_equal(rota_load(&s->untracked), 0);
    assert_int_equal(tracked(s), 0);
    assert_int_equal(in_flight(f->m), 0);

    /* A worker killed holding them: the tracked calls come back, the rest stay. */
    struct kid k = kid_start(f, N, 0);
    struct rota_shm_client *ks = slot_of(f, k.pid);
    assert_non_null(ks);
    uint64_t kid_untracked = rota_load(&ks->untracked), kid_tracked = tracked(ks);
    assert_true(kid_untracked > 0);
    assert_int_equal(kid_tracked + kid_untracked, N);
    kid_end(&k, SIGKILL);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), kid_tracked);
    assert_int_equal(in_flight(f->m), kid_untracked);
    rota_detach(h);
}

/* A handle inherited over fork() takes a slot of its own in the child: the child's calls
 * are reaped with the child, the parent's stay with the parent. */
/* The parent's side of a child's one-byte answer: it must be 'a' (all went well). */
static void child_said_a(int up[2])
{
    close(up[1]);
    char b = 0;
    assert_int_equal(read(up[0], &b, 1), 1);
    assert_int_equal(b, 'a');
    close(up[0]);
}

static void test_clients_fork_gives_the_child_its_own_slot(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    rota_t *h;
    rota_choice mine[3];
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(select_n(h, 3, mine), 0);
    int up[2];
    assert_int_equal(pipe(up), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rota_choice c[2];
        char b = select_n(h, 2, c) == 0 ? 'a' : 'x';
        if (write(up[1], &b, 1) != 1)
            _exit(2);
        pause();
        _exit(0);
    }
    child_said_a(up);
    struct rota_shm_client *theirs = slot_of(f, pid), *ours = slot_of(f, getpid());
    assert_non_null(theirs);
    assert_ptr_not_equal(theirs, ours);
    assert_int_equal(tracked(theirs), 2);
    assert_int_equal(tracked(ours), 3);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 2);
    assert_int_equal(tracked(ours), 3);
    assert_int_equal(in_flight(f->m), 3);
    report_all(h, mine, 3);
    assert_int_equal(in_flight(f->m), 0);
    rota_detach(h);
}

/* ---- killed at the step that takes or gives back a lease ---- */

static void kill_self(int sig)
{
    (void)sig;
    kill(getpid(), SIGKILL);
}

/* Make this process's mappings of the shared object whose name contains "part" read-only
 * and turn the fault of the next write to them into SIGKILL: the process dies, by a real
 * SIGKILL, at the exact instruction of that write and nowhere else. */
static bool die_at_next_write(const char *part)
{
    struct sigaction sa = {.sa_handler = kill_self};
    if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
        return false;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512], path[256];
    bool found = false;
    while (maps && fgets(line, sizeof(line), maps)) {
        unsigned long lo, hi;
        path[0] = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &lo, &hi, path) >= 2 &&
            strstr(path, part) && mprotect((void *)lo, hi - lo, PROT_READ) == 0)
            found = true;
    }
    if (maps)
        fclose(maps);
    return found;
}

/* A worker that selects one call on route "pool" and, with "at_report", reports it; the
 * step named by "part" (the leases segment or the table) is where it is killed. */
static void gap_main(const char *instance, bool at_report, const char *part)
{
    rota_t *h;
    rota_route_t rt;
    rota_choice c;
    if (rota_attach(instance, &h, NULL, 0) || rota_route(h, "pool", &rt))
        _exit(2);
    if (at_report && rota_select(h, &rt, NULL, 0, 1, &c))
        _exit(3);
    if (!die_at_next_write(part))
        _exit(4);
    if (at_report) {
        rota_outcome o = {.status = 200};
        rota_report(h, &c, &o);
    } else {
        rota_select(h, &rt, NULL, 0, 1, &c);
    }
    _exit(5); /* never: the step writes where it may not */
}

static void gap_run(struct fx *f, bool at_report, const char *what)
{
    char part[128];
    snprintf(part, sizeof(part), "rota.%s.%s", f->instance, what);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        gap_main(f->instance, at_report, part);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        fail_msg("the worker was not killed at the step (status %#x)", st);
}

/* Killed as its selection takes the lease (the leases segment refuses the write): the
 * call was not counted yet, so nothing is left in flight for anyone to end. Taking the
 * lease after counting the call left it in flight for ever. */
static void test_clients_killed_taking_the_lease_leaves_no_call(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 1, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    gap_run(f, false, "clients");
    rota_shm_clients_reap(rota_shm_writer_clients(f->w), f->m, NULL);
    assert_int_equal(in_flight(f->m), 0);
    assert_count(f, 0, 0);
}

/* Killed as its report counts the call done (the table refuses the write): the lease is
 * still held, and the reaper ends the call. Dropping the lease before counting left it
 * in flight for ever. */
static void test_clients_killed_reporting_leaves_no_call(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 1, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    gap_run(f, true, "g");
    assert_int_equal(in_flight(f->m), 1);
    assert_int_equal(rota_shm_clients_reap(rota_shm_writer_clients(f->w), f->m, NULL), 1);
    assert_int_equal(in_flight(f->m), 0);
    assert_count(f, 0, 0);
}

/* A choice made before fork() and reported in the child is not dropped from the child's
 * slot (where an entry for the same account holds the child's own call): killed, the
 * child's call is still ended by the reaper. */
static void test_clients_choice_carried_over_fork_keeps_the_childs_lease(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 1, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    rota_t *h;
    rota_choice before;
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(select_n(h, 1, &before), 0);
    int up[2];
    assert_int_equal(pipe(up), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rota_choice mine;
        rota_outcome o = {.status = 200};
        char b = select_n(h, 1, &mine) == 0 && rota_report(h, &before, &o) == 0 ? 'a' : 'x';
        if (write(up[1], &b, 1) != 1)
            _exit(2);
        pause();
        _exit(0);
    }
    child_said_a(up);
    struct rota_shm_client *theirs = slot_of(f, pid), *ours = slot_of(f, getpid());
    uint64_t held = theirs ? tracked(theirs) : 0;
    /* the call the parent chose and the child reported ended in the parent's slot */
    uint64_t parents = ours ? tracked(ours) : 99;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_int_equal(held, 1); /* the child's own call */
    assert_int_equal(parents, 0);
    assert_int_equal(rota_shm_clients_reap(rota_shm_writer_clients(f->w), f->m, NULL), 1);
    assert_int_equal(in_flight(f->m), 0);
    rota_detach(h); /* nothing left for the reaper to end twice */
    assert_int_equal(rota_shm_clients_reap(rota_shm_writer_clients(f->w), f->m, NULL), 0);
}

/* ---- tags ---- */

/* The inverse of rota_hash_mix (a bijection), to build ids whose tags collide. */
static uint64_t inverse_mul(uint64_t c)
{
    uint64_t x = c;
    for (int i = 0; i < 6; i++)
        x *= 2 - c * x;
    return x;
}

static uint64_t unxorshift(uint64_t y, int k)
{
    uint64_t x = y;
    for (int i = 0; i < 64 / k + 1; i++)
        x = y ^ (x >> k);
    return x;
}

static uint64_t unmix(uint64_t x)
{
    x = unxorshift(x, 31);
    x *= inverse_mul(0x94d049bb133111ebull);
    x = unxorshift(x, 27);
    x *= inverse_mul(0xbf58476d1ce4e5b9ull);
    return unxorshift(x, 30);
}

/* Two accounts whose ids hash to the same tag: each is credited its own calls. */
static void test_clients_colliding_ids_are_credited_exactly(void **state)
{
    struct fx *f = *state;
    uint64_t mixed = 0x5eed0000c0ffee00ull, key = 0x6c62272e07bb0142ull;
    uint64_t ids[2] = {unmix(mixed) ^ key, unmix(mixed | 7) ^ key};
    assert_int_equal(rota_hash_mix(ids[0] ^ key), mixed);
    assert_int_not_equal(ids[0], ids[1]);
    assert_int_equal(rota_client_tag(ids[0]), rota_client_tag(ids[1]));
    struct rota_desc_account a[2] = {
        {.id = ids[0], .name = "one", .credential = "k"},
        {.id = ids[1], .name = "two", .credential = "k"},
    };
    static const uint32_t members[2] = {0, 1};
    struct rota_desc_provider p = {.name = "prov", .kind = "openai"};
    struct rota_desc_tier t = {
        .strategy = ROTA_STRAT_ROUND_ROBIN, .provider = 0, .nmembers = 2, .members = members};
    struct rota_desc_route r = {.name = "pool", .ntiers = 1, .tiers = &t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 2,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = a,
                          .routes = &r};
    assert_int_equal(fx_publish(f, "tag", &d), 0);
    assert_int_not_equal(f->m->accounts[0].lease_tag, f->m->accounts[1].lease_tag);
    /* A reload keeps each account's tag, whichever order the accounts come in. */
    uint64_t tags[2] = {f->m->accounts[0].lease_tag, f->m->accounts[1].lease_tag};
    struct rota_desc_account swapped[2] = {a[1], a[0]};
    d.accounts = swapped;
    assert_int_equal(fx_publish(f, "tag", &d), 0);
    assert_int_equal(f->m->accounts[0].lease_tag, tags[1]);
    assert_int_equal(f->m->accounts[1].lease_tag, tags[0]);

    /* This process holds 2 calls on one account and 1 on the other, then is taken for
     * dead (the reaper's liveness seam). */
    rota_t *h;
    rota_route_t rt;
    rota_choice c[4];
    assert_int_equal(rota_attach(f->instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "pool", &rt), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rota_select(h, &rt, NULL, 0, 1, &c[i]), 0);
    rota_outcome o = {.status = 200};
    assert_int_equal(rota_report(h, &c[0], &o), 0);
    uint32_t first = c[0].account;
    assert_int_equal(rota_in_flight(f->m, first), 1);
    assert_int_equal(rota_in_flight(f->m, 1 - first), 2);
    g_dead = getpid();
    assert_int_equal(rota_shm_clients_reap(rota_shm_writer_clients(f->w), f->m, alive_but_one),
                     3);
    assert_int_equal(rota_in_flight(f->m, 0), 0);
    assert_int_equal(rota_in_flight(f->m, 1), 0);
    assert_int_equal(rota_load(&f->m->hot[0].done), rota_load(&f->m->hot[0].use0[0]));
    assert_int_equal(rota_load(&f->m->hot[1].done), rota_load(&f->m->hot[1].use0[0]));
    rota_detach(h);
}

/* ---- claiming ---- */

/* A process killed while it claims a slot, at the first instruction its slot shows it
 * claiming, leaves a slot that names it, and the reaper frees it once it is gone. The
 * claimer runs traced, one instruction at a time. */
static void test_clients_killed_while_claiming_is_reaped(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_pool(f, "cl", 1, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct rota_shm_clients *clients = rota_shm_writer_clients(f->w);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rota_shm_clients *c;
        if (rota_shm_clients_open(f->instance, false, 0, &c))
            _exit(2);
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        rota_shm_client_claim(c);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSTOPPED(st));
    struct rota_shm_client *claimed = NULL;
    for (long steps = 0; !claimed && steps < 50000000; steps++) {
        for (int i = 0; i < ROTA_CLIENTS_SLOTS && !claimed; i++) {
            struct rota_shm_client *s = rota_shm_client_at(clients, i);
            if (rota_client_state(rota_load(&s->own)) == ROTA_CLIENT_CLAIMING)
                claimed = s;
        }
        if (claimed)
            break;
        assert_int_equal(ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL), 0);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFSTOPPED(st))
            fail_msg("the claimer ended (status %#x) before its slot showed it", st);
    }
    assert_non_null(claimed);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_int_equal(rota_client_state(rota_load(&claimed->own)), ROTA_CLIENT_CLAIMING);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 0);
    assert_int_equal(rota_client_state(rota_load(&claimed->own)), ROTA_CLIENT_FREE);
}

static void test_clients_start_time_identifies_the_process(void **state)
{
    (void)state;
    int32_t me = (int32_t)getpid();
    uint64_t start = rota_client_start_time(me);
    assert_int_not_equal(start, 0);
    assert_int_equal(rota_client_start_time(me), start);
    assert_true(rota_client_alive(me, start));
    assert_false(rota_client_alive(me, start + 1)); /* the pid reused by another process */
    assert_true(rota_client_alive(me, 0));          /* start not known yet */
    assert_false(rota_client_alive(0, start));
    assert_false(rota_client_alive(-1, start));

    int down[2];
    assert_int_equal(pipe(down), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char b;
        close(down[1]);
        while (read(down[0], &b, 1) > 0)
            ;
        _exit(0);
    }
    close(down[0]);
    uint64_t kid_start_time = rota_client_start_time(pid);
    assert_int_not_equal(kid_start_time, 0);
    assert_true(rota_client_alive(pid, kid_start_time));
    close(down[1]);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_false(rota_client_alive(pid, kid_start_time));
    assert_int_equal(rota_client_start_time(pid), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clients_select_holds_report_drops, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clients_killed_worker_is_reaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_fork_gives_the_child_its_own_slot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clients_live_worker_is_not_reaped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clients_leave_hands_held_calls_to_the_reaper,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_detach_leaves_the_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_reap_after_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_hold_beyond_the_table_is_untracked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clients_more_accounts_than_entries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clients_killed_taking_the_lease_leaves_no_call,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_killed_reporting_leaves_no_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_clients_choice_carried_over_fork_keeps_the_childs_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_colliding_ids_are_credited_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clients_killed_while_claiming_is_reaped, setup,
                                        teardown),
        cmocka_unit_test(test_clients_start_time_identifies_the_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
