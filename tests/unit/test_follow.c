/* test_follow: a handle follows the table from generation to generation without any
 * selection doing the work, never stays behind for longer than a worker may, and never
 * unmaps a generation a thread is still inside.
 *
 * Three system functions are wrapped here (this executable links librota statically, so
 * its calls land on these): clock_gettime and shm_open, to hold a thread at a chosen
 * point for as long as the test needs; everything else is real, down to the kernel
 * refusing descriptors under a lowered RLIMIT_NOFILE. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "rota.h"
#include "select.h"

/* ---- the wrapped functions ---- */

static _Thread_local bool stall_on_wall; /* this thread's next CLOCK_REALTIME read waits */
static sem_t wall_entered, wall_release;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    if (id == CLOCK_REALTIME && stall_on_wall) {
        stall_on_wall = false;
        sem_post(&wall_entered);
        sem_wait(&wall_release);
    }
    return real(id, ts);
}

static pthread_t main_thread;
static atomic_int shm_stall; /* the next shm_open off the main thread waits (at most 300 ms) */
static sem_t shm_entered, shm_release;

int shm_open(const char *name, int flags, mode_t mode)
{
    static int (*real)(const char *, int, mode_t);
    if (!real)
        real = (int (*)(const char *, int, mode_t))dlsym(RTLD_NEXT, "shm_open");
    if (!pthread_equal(pthread_self(), main_thread) && atomic_exchange(&shm_stall, 0)) {
        sem_post(&shm_entered);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 300000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (sem_timedwait(&shm_release, &until) != 0 && errno == EINTR)
            ;
    }
    return real(name, flags, mode);
}

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool sem_wait_5s(sem_t *sem)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    int rc;
    while ((rc = sem_timedwait(sem, &until)) != 0 && errno == EINTR)
        ;
    return rc == 0;
}

/* Wait (at most "ms") until "h" is on generation "gen". */
static bool follows(rota_t *h, uint64_t gen, long ms)
{
    for (long i = 0; i < ms && rota_generation(h) < gen; i++)
        sleep_ms(1);
    return rota_generation(h) >= gen;
}

/* ---- the tests ---- */

/* ---- a worker in a child process that runs out of descriptors ---- */

/* The child: attached, on the route, then denied any new descriptor; it says "ready" and
 * waits for "go". The parent: told "ready", publishes, says "go". */
struct kid {
    pid_t pid;
    int go[2], ready[2];
    rota_t *h; /* the child's */
    rota_route_t rt;
    struct rlimit old; /* the child's descriptor limit before */
};

/* From here on this process gets no new descriptor: the lowest free one is the limit. */
static void no_more_fds(struct rlimit *old)
{
    int lowest = dup(0);
    close(lowest);
    getrlimit(RLIMIT_NOFILE, old);
    struct rlimit low = {(rlim_t)lowest, old->rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &low))
        _exit(11);
}

/* Fork; true in the child, which is attached, short of descriptors, and past "go". */
static bool kid_start(struct kid *k, struct fx *f, rota_choice *first)
{
    assert_int_equal(pipe(k->go), 0);
    assert_int_equal(pipe(k->ready), 0);
    k->pid = fork();
    assert_true(k->pid >= 0);
    if (k->pid == 0) {
        char b;
        if (rota_attach(f->instance, &k->h, NULL, 0) || rota_route(k->h, "pool", &k->rt) ||
            (first && rota_select(k->h, &k->rt, NULL, 0, 0, first)))
            _exit(10);
        no_more_fds(&k->old);
        if (write(k->ready[1], "r", 1) != 1 || read(k->go[0], &b, 1) != 1)
            _exit(12);
        return true;
    }
    close(k->ready[1]); /* the child's ends: a child that dies unblocks the reads */
    close(k->go[0]);
    char b;
    assert_int_equal(read(k->ready[0], &b, 1), 1);
    return false;
}

/* The parent: "go", after publishing. */
static void kid_go(struct kid *k)
{
    assert_int_equal(write(k->go[1], "g", 1), 1);
}

/* The parent: the child exited 0. */
static void kid_end(struct kid *k)
{
    int st;
    assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(k->go[1]);
    close(k->ready[0]);
}

static uint64_t selected_total(struct fx *f)
{
    uint64_t n = 0;
    for (uint32_t a = 0; a < f->m->naccounts; a++)
        n += rota_selections(f->m, a);
    return n;
}

static uint64_t in_flight_total(struct fx *f)
{
    uint64_t n = 0;
    for (uint32_t a = 0; a < f->m->naccounts; a++)
        n += rota_in_flight(f->m, a);
    return n;
}

/* A handle whose process cannot map the new generation (no descriptor left) fails
 * closed within the follow window instead of admitting on words nobody merges, says
 * why, and follows as soon as it can. The child is the worker; the parent publishes. */
static void test_follow_fails_closed_when_it_cannot_map(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "fcl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct kid k;
    if (kid_start(&k, &f, NULL)) {
        /* Generation 2 is out. Within the follow window selections may go on; past it
         * they must stop. */
        rota_choice c;
        char why[256];
        uint64_t t0 = rota_clock_mono();
        int rc = 0;
        while (rota_clock_mono() - t0 < 3 * ROTA_NS_PER_S) {
            rc = rota_select(k.h, &k.rt, NULL, 0, 0, &c);
            if (rc == 0) {
                rota_outcome o = {.status = 200};
                rota_report(k.h, &c, &o);
            }
            if (rc == ROTA_EBEHIND)
                break;
            sleep_ms(5);
        }
        uint64_t took = rota_clock_mono() - t0;
        if (rc != ROTA_EBEHIND)
            _exit(13); /* still selecting on a superseded generation */
        if (took < ROTA_SHM_FOLLOW_NS - 100 * ROTA_NS_PER_MS)
            _exit(14); /* stopped before the window */
        if (rota_move_error(k.h, why, sizeof(why)) != -EMFILE || !why[0])
            _exit(15);
        if (rota_generation(k.h) != 0 && rota_generation(k.h) != 1)
            _exit(16);
        setrlimit(RLIMIT_NOFILE, &k.old);
        if (!follows(k.h, 2, 3000))
            _exit(17);
        if (rota_select(k.h, &k.rt, NULL, 0, 0, &c) != 0 || c.generation != 2)
            _exit(18);
        if (rota_move_error(k.h, why, sizeof(why)) != 0)
            _exit(19);
        rota_detach(k.h);
        _exit(0);
    }
    assert_int_equal(fx_pool(&f, "fcl", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    kid_go(&k);
    kid_end(&k);
    fx_close(&f);
}

struct staller {
    rota_t *h;
    rota_route_t rt;
    int rc;
    pthread_t tid;
};

/* Selects on a route with nothing eligible until a quota reset: the answer reads the
 * wall clock to place the reset, which is where this thread is held. */
static void *stall_main(void *arg)
{
    struct staller *s = arg;
    rota_choice c;
    rota_select(s->h, &s->rt, NULL, 0, 0, &c); /* the thread's first call, unheld */
    stall_on_wall = true;
    s->rc = rota_select(s->h, &s->rt, NULL, 0, 0, &c);
    return NULL;
}

/* A thread held inside a selection while the table moves on by more generations than a
 * handle keeps: its generation stays mapped, and its selection ends normally. */
static void test_follow_keeps_a_stalled_selection_mapped(void **state)
{
    (void)state;
    struct fx f = {0};
    struct fx_pool_opts o = {.n = 8, .strategy = ROTA_STRAT_HYBRID, .limit = 100};
    assert_int_equal(fx_pool_with(&f, "stl", &o), 0);
    for (uint32_t a = 0; a < o.n; a++) { /* every account at its limit until an hour on */
        fx_used(&f, a, 100);
        struct rota_shm_snap *sn = rota_shm_snap_begin(f.m, a);
        rota_store(&sn->win[0].reset_at, rota_clock_wall() + 3600 * (int64_t)ROTA_NS_PER_S);
        rota_shm_snap_end(sn);
    }
    struct staller s = {0};
    assert_int_equal(rota_attach(f.instance, &s.h, NULL, 0), 0);
    assert_int_equal(rota_route(s.h, "pool", &s.rt), 0);
    assert_int_equal(pthread_create(&s.tid, NULL, stall_main, &s), 0);
    assert_true(sem_wait_5s(&wall_entered));
    /* Held. 20 reloads, each followed by a selection (which is where a handle used to
     * move), each table larger than the last so no new one lands where an old one was. */
    rota_choice c;
    for (uint32_t k = 0; k < 20; k++) {
        struct fx_pool_opts more = {.n = 8 + 8 * (k + 1), .strategy = ROTA_STRAT_HYBRID};
        assert_int_equal(fx_pool_with(&f, "stl", &more), 0);
        assert_true(follows(s.h, k + 2, 3000));
        assert_int_equal(rota_select(s.h, &s.rt, NULL, 0, 0, &c), 0);
        rota_outcome out = {.status = 200};
        assert_int_equal(rota_report(s.h, &c, &out), 0);
    }
    sleep_ms(100); /* the mover had every chance to let old generations go */
    sem_post(&wall_release);
    assert_int_equal(pthread_join(s.tid, NULL), 0);
    assert_int_equal(s.rc, ROTA_EEXHAUSTED);
    rota_detach(s.h);
    fx_close(&f);
}

struct spinner {
    rota_t *h;
    rota_route_t rt;
    atomic_int stop;
    pthread_t tid;
};

static void *spin_main(void *arg)
{
    struct spinner *s = arg;
    while (!atomic_load(&s->stop)) {
        rota_choice c;
        if (rota_select(s->h, &s->rt, NULL, 0, 0, &c) == 0) {
            rota_outcome o = {.status = 200};
            rota_report(s->h, &c, &o);
        }
        sleep_ms(1);
    }
    return NULL;
}

/* fork() while the handle is half-way through a move (held in shm_open): the child
 * still follows the next reload. */
static void test_follow_fork_while_moving(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "frk", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct spinner s = {0};
    assert_int_equal(rota_attach(f.instance, &s.h, NULL, 0), 0);
    assert_int_equal(rota_route(s.h, "pool", &s.rt), 0);
    assert_int_equal(pthread_create(&s.tid, NULL, spin_main, &s), 0);
    atomic_store(&shm_stall, 1);
    assert_int_equal(fx_pool(&f, "frk", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    assert_true(
        sem_wait_5s(&shm_entered)); /* someone is moving the handle, and is held there */
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char b;
        if (read(go[0], &b, 1) != 1)
            _exit(10);
        _exit(follows(s.h, 3, 3000) ? 0 : 11);
    }
    sem_post(&shm_release);
    assert_true(follows(s.h, 2, 3000));
    assert_int_equal(fx_pool(&f, "frk", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    assert_int_equal(write(go[1], "g", 1), 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    atomic_store(&s.stop, 1);
    assert_int_equal(pthread_join(s.tid, NULL), 0);
    close(go[0]);
    close(go[1]);
    rota_detach(s.h);
    fx_close(&f);
}

/* A report made while the handle is behind is not refused: the mover applies it once
 * the handle follows, and the call ends. */
static void test_follow_report_while_behind_is_applied_later(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "rwb", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct kid k;
    rota_choice c;
    if (kid_start(&k, &f, &c)) {
        rota_choice d;
        char b;
        sleep_ms((long)(ROTA_SHM_FOLLOW_NS / ROTA_NS_PER_MS) + 200);
        if (rota_select(k.h, &k.rt, NULL, 0, 0, &d) != ROTA_EBEHIND)
            _exit(13);
        rota_outcome o = {.status = 200, .tokens = 7};
        if (rota_report(k.h, &c, &o) != 0)
            _exit(14);
        setrlimit(RLIMIT_NOFILE, &k.old);
        if (!follows(k.h, 2, 3000))
            _exit(15);
        sleep_ms(200); /* the mover applies it at its next wake */
        _exit(write(k.ready[1], "d", 1) == 1 && read(k.go[0], &b, 1) == 1 ? 0 : 16);
    }
    assert_int_equal(fx_pool(&f, "rwb", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    kid_go(&k);
    char b;
    assert_int_equal(read(k.ready[0], &b, 1), 1);
    rota_shm_settle(f.w, true);
    assert_int_equal(selected_total(&f), 1);
    assert_int_equal(in_flight_total(&f), 0); /* the call ended */
    kid_go(&k);
    kid_end(&k);
    fx_close(&f);
}

/* More reloads at once than the writer keeps merging: the generation it lets go early
 * stops taking counts at once, so every selection the worker made is in the table. */
static void test_follow_burst_of_reloads_loses_no_count(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "brs", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    struct kid k;
    if (kid_start(&k, &f, NULL)) {
        uint32_t ok = 0;
        for (int i = 0; i < 100; i++) {
            rota_choice c;
            if (rota_select(k.h, &k.rt, NULL, 0, 0, &c) == 0) {
                ok++;
                rota_outcome o = {.status = 200};
                rota_report(k.h, &c, &o);
            }
        }
        _exit(write(k.ready[1], &ok, sizeof(ok)) == sizeof(ok) ? 0 : 13);
    }
    for (int n = 0; n < 40; n++)
        assert_int_equal(fx_pool(&f, "brs", 4, ROTA_STRAT_ROUND_ROBIN, NULL), 0);
    kid_go(&k);
    uint32_t ok = 0;
    assert_int_equal(read(k.ready[0], &ok, sizeof(ok)), sizeof(ok));
    kid_end(&k);
    rota_shm_settle(f.w, true);
    assert_int_equal(selected_total(&f), ok);
    fx_close(&f);
}

/* Generations of "instance" this process maps. */
static int mapped_generations(const char *instance)
{
    char needle[128], line[512];
    snprintf(needle, sizeof(needle), "/rota.%s.g", instance);
    FILE *fp = fopen("/proc/self/maps", "r");
    int n = 0;
    while (fp && fgets(line, sizeof(line), fp))
        n += strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return n;
}

#define HOLDERS 256 /* threads that take every reader slot */

struct crowd {
    rota_t *h;
    rota_route_t rt;
    atomic_int stop;
};

/* Takes a reader slot (its first selection) and keeps it until told to stop. */
static void *holder_main(void *arg)
{
    struct crowd *c = arg;
    rota_choice ch;
    rota_select(c->h, &c->rt, NULL, 0, 0, &ch);
    while (!atomic_load(&c->stop))
        sleep_ms(5);
    return NULL;
}

/* With every reader slot taken, a thread held inside a selection keeps only its own
 * generation mapped: the retired generations nobody is in still go. */
static void test_follow_slotless_thread_holds_only_its_generation(void **state)
{
    (void)state;
    struct fx f = {0};
    struct fx_pool_opts o = {.n = 8, .strategy = ROTA_STRAT_HYBRID, .limit = 100};
    assert_int_equal(fx_pool_with(&f, "sll", &o), 0);
    for (uint32_t a = 0; a < o.n; a++) {
        fx_used(&f, a, 100);
        struct rota_shm_snap *sn = rota_shm_snap_begin(f.m, a);
        rota_store(&sn->win[0].reset_at, rota_clock_wall() + 3600 * (int64_t)ROTA_NS_PER_S);
        rota_shm_snap_end(sn);
    }
    struct crowd c = {0};
    assert_int_equal(rota_attach(f.instance, &c.h, NULL, 0), 0);
    assert_int_equal(rota_route(c.h, "pool", &c.rt), 0);
    static pthread_t tid[HOLDERS];
    for (int i = 0; i < HOLDERS; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, holder_main, &c), 0);
    sleep_ms(300); /* every slot taken */
    struct staller s = {.h = c.h, .rt = c.rt};
    assert_int_equal(pthread_create(&s.tid, NULL, stall_main, &s), 0);
    assert_true(sem_wait_5s(&wall_entered)); /* held inside, without a slot */
    for (uint64_t k = 0; k < 20; k++) {
        assert_int_equal(fx_pool_with(&f, "sll", &o), 0);
        assert_true(follows(c.h, k + 2, 3000));
    }
    rota_shm_settle(f.w, true); /* the writer's own retired maps go */
    /* a few mover polls after the handle let go of the generations it keeps for
     * rota_target_of (ROTA_SHM_FOLLOW_NS after each was retired) */
    sleep_ms(ROTA_SHM_FOLLOW_NS / 1000000 + 200);
    int mapped = mapped_generations(f.instance);
    sem_post(&wall_release);
    assert_int_equal(pthread_join(s.tid, NULL), 0);
    assert_int_equal(s.rc, ROTA_EEXHAUSTED);
    atomic_store(&c.stop, 1);
    for (int i = 0; i < HOLDERS; i++)
        assert_int_equal(pthread_join(tid[i], NULL), 0);
    /* the writer's current one, the handle's, and the held thread's */
    assert_int_equal(mapped, 3);
    rota_detach(c.h);
    fx_close(&f);
}

int main(void)
{
    main_thread = pthread_self();
    sem_init(&wall_entered, 0, 0);
    sem_init(&wall_release, 0, 0);
    sem_init(&shm_entered, 0, 0);
    sem_init(&shm_release, 0, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follow_fails_closed_when_it_cannot_map),
        cmocka_unit_test(test_follow_keeps_a_stalled_selection_mapped),
        cmocka_unit_test(test_follow_fork_while_moving),
        cmocka_unit_test(test_follow_report_while_behind_is_applied_later),
        cmocka_unit_test(test_follow_burst_of_reloads_loses_no_count),
        cmocka_unit_test(test_follow_slotless_thread_holds_only_its_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
