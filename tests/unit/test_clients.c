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
        if (rota_load(&s->state) == ROTA_CLIENT_LIVE && rota_load(&s->pid) == (int32_t)pid &&
            (!best || tracked(s) + rota_load(&s->untracked) >
                          tracked(best) + rota_load(&best->untracked)))
            best = s;
    }
    return best;
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
        struct rota_sel_req q = {.route = 0, .now = now};
        struct rota_sel_res r;
        assert_int_equal(rota_select_route(f->m, &q, &rng, &r), 0);
        uint64_t id = f->m->accounts[r.account].id;
        assert_int_not_equal(rota_client_hold(s, id), 0);
    }
    assert_count(f, 1, 3);
    rota_shm_client_leave(clients, slot);
    assert_int_equal(rota_load(&s->state), ROTA_CLIENT_GONE);
    assert_count(f, 0, 0);
    assert_int_equal(in_flight(f->m), 3);
    assert_int_equal(rota_shm_clients_reap(clients, f->m, NULL), 3);
    assert_int_equal(rota_load(&s->state), ROTA_CLIENT_FREE);
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
    report_all(h, mine, 2); /* choices made on generation 1, reported on 2 */
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
        got[i] = rota_client_hold(s, 1000 + i);
        untracked += got[i] == 0;
    }
    assert_true(untracked >= 2000 - ROTA_CLIENT_ENTRIES);
    assert_int_equal(rota_load(&s->untracked), untracked);
    assert_int_equal(tracked(s) + untracked, 2000);
    assert_count(f, 1, 2000);
    for (uint32_t i = 0; i < 2000; i++)
        rota_client_drop(s, got[i], 1000 + i);
    assert_int_equal(rota_load(&s->untracked), 0);
    assert_int_equal(tracked(s), 0);
    assert_count(f, 1, 0);
    /* Entries free themselves at zero: a long life over many accounts, a few at a time,
     * never runs out. */
    for (uint32_t i = 0; i < 20000; i++) {
        uint32_t a = rota_client_hold(s, 50000 + i), b = rota_client_hold(s, 90000 + i);
        assert_int_not_equal(a, 0);
        assert_int_not_equal(b, 0);
        rota_client_drop(s, a, 50000 + i);
        rota_client_drop(s, b, 90000 + i);
    }
    for (uint32_t k = 0; k < ROTA_CLIENT_ENTRIES; k++)
        assert_int_equal(rota_load(&s->ent[k]), 0);
    /* A drop names its account: an entry that holds another (a choice made in another
     * slot, carried over a fork, whose entry number here is someone else's) is left. */
    uint32_t x = rota_client_hold(s, 7777);
    rota_client_drop(s, x, 8888);
    assert_int_equal(tracked(s), 1);
    rota_client_drop(s, x, 7777);
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
        untracked_choices += c[i].lease == 0;
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
    close(up[1]);
    char b = 0;
    assert_int_equal(read(up[0], &b, 1), 1);
    assert_int_equal(b, 'a');
    close(up[0]);
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
        cmocka_unit_test(test_clients_start_time_identifies_the_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
