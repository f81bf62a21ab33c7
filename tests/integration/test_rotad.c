/* test_rotad: the supervisor as a real process: start and stop, reload under load,
 * kill -9 and adoption, refusals, leases, and a control socket that survives garbage. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "rota.h"
#include "rotad_harness.h"
#include "select.h"
#include "table.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static uint64_t generation(struct it *t)
{
    uint64_t g = 0;
    rota_shm_current(t->instance, &g, NULL, 0);
    return g;
}

/* Wait up to 30 s for "cond" to hold (a bound for slow machines, not a measure). */
#define WAIT_FOR(cond)                                                                         \
    do {                                                                                       \
        for (int w_ = 0; w_ < 600 && !(cond); w_++)                                            \
            sleep_ms(50);                                                                      \
    } while (0)

/* Selections counted on account "name" of the current generation. */
static uint64_t selections_of(struct it *t, const char *name)
{
    struct rota_shm_map m;
    if (rota_shm_attach(t->instance, &m, NULL, 0) != 0)
        return 0;
    uint64_t n = UINT64_MAX;
    for (uint32_t a = 0; a < m.naccounts; a++)
        if (strcmp(rota_shm_str(&m, m.accounts[a].name), name) == 0)
            n = rota_selections(&m, a);
    rota_shm_detach(&m);
    return n;
}

static void test_rotad_start_status_stop(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "start");
    it_config(&t, 3, 1000, NULL);
    assert_int_equal(it_start(&t), 0);
    json_t *r = it_ctl(&t, "status", NULL, NULL);
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_t *d = json_object_get(r, "data");
    assert_string_equal(json_string_value(json_object_get(d, "instance")), t.instance);
    assert_int_equal(json_integer_value(json_object_get(d, "accounts")), 6);
    assert_int_equal(json_integer_value(json_object_get(d, "pid")), t.rotad);
    json_decref(r);
    uint64_t g = generation(&t);
    assert_true(g >= 1);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_true(it_log_has(&t, "stopped"));
    /* The table stays readable at its last state, and selectable. */
    rota_t *h;
    assert_int_equal(rota_attach(t.instance, &h, NULL, 0), 0);
    rota_route_t rt;
    rota_choice c;
    assert_int_equal(rota_route(h, "chat-model", &rt), 0);
    assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c), 0);
    rota_outcome o = {.status = 200};
    assert_int_equal(rota_report(h, &c, &o), 0);
    rota_detach(h);
    assert_int_equal(generation(&t), g);
    /* Nothing secret reached the log. */
    assert_false(it_log_has(&t, "sk-it-secret"));
    it_cleanup(&t);
}

static uint64_t in_flight_total(const struct rota_shm_map *m)
{
    uint64_t s = 0;
    for (uint32_t a = 0; a < m->naccounts; a++)
        s += rota_in_flight(m, a);
    return s;
}

static void test_rotad_reload_under_load_carries_counters(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "reload");
    it_config(&t, 3, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    uint64_t g0 = generation(&t);
    struct it_load l;
    it_load_start(&l, t.instance, 2);
    WAIT_FOR(it_load_ok(&l) > 5000);
    uint64_t a1_before = selections_of(&t, "a1");
    assert_true(a1_before > 0);
    /* SIGHUP: add two accounts. */
    it_config(&t, 5, 0, NULL);
    kill(t.rotad, SIGHUP);
    WAIT_FOR(generation(&t) > g0);
    assert_true(generation(&t) > g0);
    uint64_t ok1 = it_load_ok(&l);
    WAIT_FOR(it_load_ok(&l) > ok1 + 5000 && selections_of(&t, "a4") > 0);
    assert_true(selections_of(&t, "a4") > 0);          /* the new accounts take traffic */
    assert_true(selections_of(&t, "a1") >= a1_before); /* carried over, not reset */
    /* rotactl reload: remove accounts a3 and a4 again. */
    uint64_t g1 = generation(&t);
    it_config(&t, 3, 0, NULL);
    char out[4096];
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "reloaded"));
    assert_true(generation(&t) > g1);
    assert_int_equal(selections_of(&t, "a4"), UINT64_MAX); /* gone */
    uint64_t ok2 = it_load_ok(&l);
    WAIT_FOR(it_load_ok(&l) > ok2 + 5000);
    it_load_stop(&l);
    for (int i = 0; i < l.n; i++) {
        assert_int_equal(l.c[i].errors, 0);
        assert_int_equal(l.c[i].exhausted, 0);
        assert_true(l.c[i].reattached >= 1);
    }
    /* Every selection was counted somewhere and every report came back. A report
     * that landed on a retired generation reaches the current one at rotad's next
     * settle (every second): until then a call carried over counts as in flight. */
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(t.instance, &m, NULL, 0), 0);
    WAIT_FOR(in_flight_total(&m) == 0);
    for (uint32_t a = 0; a < m.naccounts; a++)
        assert_int_equal(rota_in_flight(&m, a), 0);
    rota_shm_detach(&m);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* A rotad killed with SIGKILL leaves its control socket answering for a moment (the
 * kernel tears its io_uring down in the background): a rotad started at once takes the
 * socket over rather than refuse it as another rotad's. Each round races that teardown,
 * as a supervisor restarting rotad does; on one CPU (the test and the rotads it starts),
 * the teardown is seldom done before the next rotad looks. */
static void test_rotad_restart_right_after_kill9(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "rekill");
    it_config(&t, 1, 0, NULL);
    cpu_set_t all, one;
    assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    for (int i = 0; i < 15; i++) {
        assert_int_equal(it_start(&t), 0);
        usleep(200000); /* its loop settled: the accept pending in the ring */
        assert_int_equal(it_stop(&t, SIGKILL), 128 + SIGKILL);
    }
    assert_int_equal(it_start(&t), 0);
    assert_false(it_log_has(&t, "in use by another rotad"));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
    it_cleanup(&t);
}

static void test_rotad_kill9_then_restart_adopts(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "kill");
    it_config(&t, 3, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    uint64_t g = generation(&t);
    struct it_load l;
    it_load_start(&l, t.instance, 2);
    WAIT_FOR(it_load_ok(&l) > 5000);
    assert_int_equal(it_stop(&t, SIGKILL), 128 + SIGKILL);
    /* With no supervisor, selectors go on. */
    uint64_t at_kill = it_load_ok(&l);
    WAIT_FOR(it_load_ok(&l) > at_kill + 10000);
    assert_true(it_load_ok(&l) > at_kill + 10000);
    uint64_t a0 = selections_of(&t, "a0");
    /* Restart: same config, the live table is adopted, nothing reset. */
    assert_int_equal(it_start(&t), 0);
    assert_true(it_log_has(&t, "adopted the live table"));
    assert_int_equal(generation(&t), g);
    assert_true(selections_of(&t, "a0") >= a0);
    uint64_t after = it_load_ok(&l);
    WAIT_FOR(it_load_ok(&l) > after + 5000);
    it_load_stop(&l);
    for (int i = 0; i < l.n; i++)
        assert_int_equal(l.c[i].errors, 0);
    json_t *r = it_ctl(&t, "status", NULL, NULL);
    assert_non_null(r);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "data"), "state_origin")),
        "adopted the live table");
    json_decref(r);
    /* Restart with a changed config: adopted, then a new generation. */
    assert_int_equal(it_stop(&t, SIGKILL), 128 + SIGKILL);
    it_config(&t, 4, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    assert_true(generation(&t) > g);
    assert_true(selections_of(&t, "a0") >= a0);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

static void test_rotad_invalid_reload_keeps_old_config(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "badreload");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    uint64_t g = generation(&t);
    it_config_text(&t, "instance: x\nproviders: [\n");
    kill(t.rotad, SIGHUP);
    WAIT_FOR(it_log_has(&t, "reload refused"));
    assert_true(it_log_has(&t, "reload refused"));
    assert_int_equal(generation(&t), g);
    json_t *r = it_ctl(&t, "reload", NULL, NULL);
    assert_non_null(r);
    assert_false(json_is_true(json_object_get(r, "ok")));
    const char *e = json_string_value(json_object_get(r, "error"));
    assert_non_null(strstr(e, "rota.yaml:")); /* file:line:column */
    json_decref(r);
    /* An unknown key is refused too, and a different instance name. */
    it_config(&t, 2, 0, "bogus_key: 1");
    char out[4096];
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "bogus_key"));
    assert_int_equal(generation(&t), g);
    r = it_ctl(&t, "status", NULL, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "data"), "reload_failures")), 3);
    json_decref(r);
    /* A reload with arguments is a malformed request, whatever client sent it: refused,
     * and the good config now on disk is not loaded by it. */
    it_config(&t, 3, 0, NULL);
    r = it_ctl(&t, "reload", "--help", NULL);
    assert_false(json_is_true(json_object_get(r, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "no arguments"));
    json_decref(r);
    assert_int_equal(generation(&t), g);
    /* The daemon still serves, and a good config reloads. */
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    assert_true(generation(&t) > g);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

static void test_rotad_credential_change_makes_a_new_generation(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "cred");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    uint64_t g = generation(&t);
    /* Same file, a new key in the environment rotad reads at reload: not "unchanged". */
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    setenv("ROTA_IT_KEY", "sk-it-secret-rotated-999", 1);
    assert_int_equal(it_start(&t), 0);
    assert_true(generation(&t) > g);
    rota_t *h;
    rota_route_t rt;
    rota_choice c;
    char key[64];
    assert_int_equal(rota_attach(t.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "chat", &rt), 0);
    assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c), 0);
    assert_true(rota_credential(h, &c, key, sizeof(key)) > 0);
    assert_string_equal(key, "sk-it-secret-rotated-999");
    rota_outcome o = {.status = 200};
    rota_report(h, &c, &o);
    rota_detach(h);
    setenv("ROTA_IT_KEY", "sk-it-secret-0123456789", 1);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

static void test_rotad_socket_of_another_instance_is_not_taken(void **state)
{
    (void)state;
    struct it a, b;
    it_init(&a, "sockA");
    it_init(&b, "sockB");
    char extra[256];
    snprintf(extra, sizeof(extra), "socket: %s/state/rotad.sock", a.dir);
    it_config(&a, 1, 0, NULL);
    it_config(&b, 1, 0, extra); /* instance B pointed at A's socket */
    assert_int_equal(it_start(&a), 0);
    assert_int_equal(it_start(&b), 1);
    assert_true(it_log_has(&b, "in use by another rotad"));
    json_t *r = it_ctl(&a, "status", NULL, NULL); /* A still answers, as A */
    assert_non_null(r);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "data"), "instance")), a.instance);
    json_decref(r);
    assert_int_equal(it_stop(&a, SIGTERM), 0);
    it_cleanup(&a);
    it_cleanup(&b);
}

static void test_rotad_second_instance_refused(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "second");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    struct it t2 = t;
    snprintf(t2.log, sizeof(t2.log), "%s/second.log", t.dir);
    pid_t p = it_spawn(&t2);
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_true(it_log_has(&t2, "already supervised by rotad pid"));
    /* The first one is untouched. */
    json_t *r = it_ctl(&t, "status", NULL, NULL);
    assert_non_null(r);
    json_decref(r);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* Two configs naming one instance with different state directories: each would take
 * the lock in its own directory, so the table's directory stops the second, naming the
 * first's pid; once the first is killed, the second starts and adopts its table. */
static void test_rotad_same_instance_other_state_dir_refused(void **state)
{
    (void)state;
    struct it t, t2;
    it_init(&t, "samei");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    it_init(&t2, "samei2");
    snprintf(t2.instance, sizeof(t2.instance), "%s", t.instance);
    it_config(&t2, 2, 0, NULL);
    assert_int_equal(it_start(&t2), 1);
    char msg[128];
    snprintf(msg, sizeof(msg), "already supervised by rotad pid %d", (int)t.rotad);
    assert_true(it_log_has(&t2, msg));
    json_t *r = it_ctl(&t, "status", NULL, NULL); /* the first is untouched */
    assert_non_null(r);
    json_decref(r);
    assert_int_equal(it_stop(&t, SIGKILL), 128 + SIGKILL);
    assert_int_equal(it_start(&t2), 0);
    assert_true(it_log_has(&t2, "adopted the live table"));
    assert_int_equal(it_stop(&t2, SIGTERM), 0);
    it_cleanup(&t2);
    it_cleanup(&t);
}

/* The table's directory records its supervisor's pid, which any process may come to
 * hold once rotad has stopped (pids are reused; a stranger can fork until she gets it and
 * name her process "rotad"). A process of that name at the recorded pid is no supervisor:
 * rotad starts. */
static void test_rotad_recorded_pid_held_by_an_impostor_is_no_supervisor(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "impostor");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    pid_t imp = fork();
    assert_true(imp >= 0);
    if (imp == 0) {
        prctl(PR_SET_NAME, "rotad");
        pause();
        _exit(0);
    }
    char name[160];
    snprintf(name, sizeof(name), "/rota.%s", t.instance);
    int fd = shm_open(name, O_RDWR, 0);
    assert_true(fd >= 0);
    struct rota_shm_dir *d = mmap(NULL, sizeof(*d), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(d != MAP_FAILED);
    close(fd);
    atomic_store(&d->sup_pid, (int32_t)imp);
    munmap(d, sizeof(*d));
    usleep(100000); /* its name is set */
    int rc = it_start(&t);
    kill(imp, SIGKILL);
    waitpid(imp, NULL, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

static void test_rotad_bad_config_refused_at_start(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "badstart");
    it_config_text(&t, "instance: ok\nstate_dir: /tmp\nproviders:\n  - name: p\n"
                       "    kind: nonsense\n");
    assert_int_equal(it_start(&t), 1);
    assert_true(it_log_has(&t, "rota.yaml:5:"));
    it_cleanup(&t);
}

/* Raw bytes to the control socket; returns the connection (caller closes). */
static int raw_connect(struct it *t)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s/state/rotad.sock", t->dir);
    assert_true(len < (int)sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Read until the peer closes; returns bytes read. */
static size_t drain(int fd, char *buf, size_t n)
{
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k <= 0 || (got += (size_t)k) == n)
            return got;
    }
}

static void test_rotad_malformed_frames_leave_it_healthy(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "frames");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    char buf[4096];
    /* A huge length prefix: an error reply naming the size, then the connection closes. */
    int fd = raw_connect(&t);
    unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(send(fd, huge, 4, 0), 4);
    size_t n = drain(fd, buf, sizeof(buf));
    assert_true(n > 4);
    assert_non_null(memmem(buf, n, "bytes", 5));
    close(fd);
    /* Random bytes, many times. */
    srand(7);
    for (int k = 0; k < 50; k++) {
        fd = raw_connect(&t);
        unsigned char junk[600];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (unsigned char)rand();
        junk[0] = 0;
        junk[1] = 0; /* a plausible length, so the body is parsed */
        junk[2] = (unsigned char)(k % 3);
        send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
        drain(fd, buf, sizeof(buf));
        close(fd);
    }
    /* A valid length with a body that is msgpack but not a request. */
    fd = raw_connect(&t);
    unsigned char notreq[] = {0, 0, 0, 3, 0x93, 0x01, 0x02}; /* a 3-array, truncated */
    send(fd, notreq, sizeof(notreq), 0);
    shutdown(fd, SHUT_WR);
    drain(fd, buf, sizeof(buf));
    close(fd);
    fd = raw_connect(&t);
    unsigned char arr[] = {0, 0, 0, 4, 0x93, 0x01, 0x02, 0x03};
    send(fd, arr, sizeof(arr), 0);
    n = drain(fd, buf, sizeof(buf));
    assert_non_null(memmem(buf, n, "bad request", 11));
    close(fd);
    /* A 5-byte body claiming an array of two billion elements. */
    fd = raw_connect(&t);
    unsigned char claim[] = {0, 0, 0, 5, 0xdd, 0x7f, 0xff, 0xff, 0xff};
    send(fd, claim, sizeof(claim), 0);
    n = drain(fd, buf, sizeof(buf));
    assert_non_null(memmem(buf, n, "runs past", 9));
    close(fd);
    /* Truncated: announces 100 bytes, sends 10, hangs up. */
    fd = raw_connect(&t);
    unsigned char trunc[14] = {0, 0, 0, 100, 0x82};
    send(fd, trunc, sizeof(trunc), 0);
    close(fd);
    /* Text that must be cut inside a multi-byte character when echoed back. */
    char longname[700];
    for (int i = 0; i < 300; i++)
        memcpy(longname + 2 * i, "\xc3\xa9", 2); /* é */
    longname[600] = 0;
    json_t *r = it_ctl(&t, "disable", longname, NULL);
    assert_non_null(r);
    assert_false(json_is_true(json_object_get(r, "ok")));
    assert_non_null(json_string_value(json_object_get(r, "error")));
    json_decref(r);
    r = it_ctl(&t, longname, NULL, NULL); /* as the command's name: refused as a frame */
    json_decref(r);
    /* The daemon carries on. */
    r = it_ctl(&t, "status", NULL, NULL);
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "ok")));
    assert_true(
        json_integer_value(json_object_get(json_object_get(r, "data"), "frames_refused")) >= 3);
    json_decref(r);
    r = it_ctl(&t, "no-such-command", NULL, NULL);
    assert_false(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}


static void test_rotad_reclaims_calls_of_killed_workers(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "lease");
    it_config(&t, 3, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t p = fork();
    if (p == 0) {
        rota_t *h;
        rota_route_t rt;
        rota_choice c;
        if (rota_attach(t.instance, &h, NULL, 0) || rota_route(h, "chat", &rt))
            _exit(1);
        for (int i = 0; i < 9; i++)
            if (rota_select(h, &rt, NULL, 0, 0, &c) != 0)
                _exit(2);
        char x = 'x';
        if (write(ready[1], &x, 1) != 1)
            _exit(3);
        pause();
        _exit(0);
    }
    char x;
    assert_int_equal(read(ready[0], &x, 1), 1);
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(t.instance, &m, NULL, 0), 0);
    assert_int_equal(in_flight_total(&m), 9);
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    WAIT_FOR(in_flight_total(&m) == 0);
    for (uint32_t a = 0; a < m.naccounts; a++)
        assert_int_equal(rota_in_flight(&m, a), 0);
    rota_shm_detach(&m);
    json_t *r = it_ctl(&t, "status", NULL, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "data"), "leases_reclaimed")), 9);
    json_decref(r);
    assert_true(it_log_has(&t, "leases: 9 calls"));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* Window usage of account "name" (window 0) as the table reports it. */
static uint64_t used_of(struct it *t, const char *name, int64_t *reset_at)
{
    struct rota_shm_map m;
    if (rota_shm_attach(t->instance, &m, NULL, 0) != 0)
        return UINT64_MAX;
    uint64_t used = UINT64_MAX;
    for (uint32_t a = 0; a < m.naccounts; a++) {
        if (strcmp(rota_shm_str(&m, m.accounts[a].name), name) != 0)
            continue;
        struct rota_shm_snap *sn = &m.snaps[a];
        uint64_t counter = rota_load(&m.hot[a].use0[0]), base = rota_load(&sn->win[0].base);
        used = rota_load(&sn->win[0].used) + (counter > base ? counter - base : 0);
        *reset_at = rota_load(&sn->win[0].reset_at);
    }
    rota_shm_detach(&m);
    return used;
}

static void test_rotad_resets_quota_at_midnight_of_its_clock(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "midnight");
    it_config_reset(&t, 1, 1000, NULL, "00:00"); /* a0: 1000 requests a day, from 00:00 UTC */
    /* The clock seam: rotad's calendar runs 8 s before the next UTC midnight. */
    time_t now = time(NULL);
    int64_t midnight = ((int64_t)now / 86400 + 1) * 86400;
    char shift[32];
    snprintf(shift, sizeof(shift), "%lld", (long long)(midnight - now - 8));
    setenv("ROTA_CLOCK_SHIFT", shift, 1);
    int started = it_start(&t);
    unsetenv("ROTA_CLOCK_SHIFT");
    assert_int_equal(started, 0);
    int64_t reset_at = 0;
    WAIT_FOR(used_of(&t, "a0", &reset_at) != UINT64_MAX && reset_at != 0);
    /* Shifted wall ns of the next midnight, as rotad computed it. */
    assert_int_equal(reset_at, midnight * 1000000000ll);
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(t.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "chat", &rt), 0);
    for (int i = 0; i < 40; i++) {
        rota_choice c;
        assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c), 0);
        rota_outcome o = {.status = 200};
        rota_report(h, &c, &o);
    }
    rota_detach(h);
    assert_true(used_of(&t, "a0", &reset_at) >= 40 || reset_at != midnight * 1000000000ll);
    WAIT_FOR(used_of(&t, "a0", &reset_at) == 0);
    assert_int_equal(used_of(&t, "a0", &reset_at), 0);
    assert_int_equal(reset_at, (midnight + 86400) * 1000000000ll);
    assert_true(it_log_has(&t, "windows reset on schedule"));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* How many lines of rotad's log contain "text". */
static int log_count(struct it *t, const char *text)
{
    FILE *f = fopen(t->log, "r");
    char line[2048];
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* Select on "chat" "n" times, reporting success; counts per account name in "names"
 * (a0, a1, a2) and, for a1, the key it was given in "a1_key". */
static void select_many(struct it *t, int n, int counts[3], char *a1_key, size_t cap)
{
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(t->instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "chat", &rt), 0);
    for (int i = 0; i < n; i++) {
        rota_choice c;
        char name[64];
        assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c), 0);
        assert_true(rota_account_name(h, &c, name, sizeof(name)) > 0);
        int k = name[strlen(name) - 1] - '0';
        assert_true(k >= 0 && k < 3);
        counts[k]++;
        if (k == 1 && a1_key)
            assert_true(rota_credential(h, &c, a1_key, cap) > 0);
        rota_outcome o = {.status = 200};
        rota_report(h, &c, &o);
    }
    rota_detach(h);
}

/* The reason rotad's view gives for "account" being out of rotation ("" when in). */
static char *off_of(struct it *t, const char *account)
{
    static char off[32];
    json_t *r = it_ctl(t, "show", account, NULL);
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "ok")));
    const char *s = json_string_value(json_object_get(json_object_get(r, "data"), "off"));
    assert_non_null(s);
    snprintf(off, sizeof(off), "%s", s);
    json_decref(r);
    return off;
}

static void write_token(const char *path, const char *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", key);
    assert_int_equal(fclose(f), 0);
}

/* One account's credential that does not resolve is that account's problem: the table is
 * published without it in rotation (reason "credential", logged once, naming the variable
 * or file), rotactl enable cannot put it back, and it comes back when the credential
 * resolves at a reload, or at a restart that restores the journal. */
static void test_rotad_unresolved_credential_keeps_only_that_account_out(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "nocred");
    char token[256], text[2048], out[4096];
    snprintf(token, sizeof(token), "%s/a1.token", t.dir);
    unsetenv("ROTA_IT_UNSET_CRED");
    snprintf(text, sizeof(text),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: alpha\n    kind: openai\n    probe: {enabled: false}\n"
             "    accounts:\n"
             "      - {name: a0, credential: env:ROTA_IT_KEY}\n"
             "      - {name: a1, credential: 'file:%s'}\n"
             "      - {name: a2, credential: env:ROTA_IT_UNSET_CRED}\n"
             "routes:\n  - name: chat\n    tiers: [{provider: alpha, strategy: round-robin}]\n",
             t.instance, t.dir, token);
    it_config_text(&t, text);
    assert_int_equal(it_start(&t), 0);

    /* Selections go to a0 only; a1 and a2 are out with reason "credential". */
    int counts[3] = {0};
    select_many(&t, 60, counts, NULL, 0);
    assert_int_equal(counts[0], 60);
    assert_string_equal(off_of(&t, "alpha/a1"), "credential");
    assert_string_equal(off_of(&t, "alpha/a2"), "credential");
    assert_string_equal(off_of(&t, "alpha/a0"), "");
    assert_int_equal(it_rotactl(&t, "show alpha/a2", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "credential"));
    /* Logged once each, naming the file and the variable. */
    char what[320];
    snprintf(what, sizeof(what), "credential file:%s cannot be read", token);
    assert_int_equal(log_count(&t, what), 1);
    assert_int_equal(log_count(&t, "credential env:ROTA_IT_UNSET_CRED is not set"), 1);
    /* rotactl enable is refused while the credential is missing. */
    assert_int_equal(it_rotactl(&t, "enable alpha/a1", out, sizeof(out)), 1);
    assert_non_null(strstr(out, token));
    assert_string_equal(off_of(&t, "alpha/a1"), "credential");
    /* So is a disable for a while: when it ended, a2 would be back without a key. */
    assert_int_equal(it_rotactl(&t, "disable alpha/a2 --for 1s", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "until its credential"));
    assert_string_equal(off_of(&t, "alpha/a2"), "credential");
    /* An unchanged reload logs nothing new. */
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    assert_int_equal(log_count(&t, what), 1);

    /* The file appears; a reload brings a1 back, with its key; a2 stays out. */
    write_token(token, "sk-it-secret-a1-file");
    uint64_t g = generation(&t);
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    assert_true(generation(&t) > g);
    assert_string_equal(off_of(&t, "alpha/a1"), "");
    assert_string_equal(off_of(&t, "alpha/a2"), "credential");
    char key[64] = "";
    memset(counts, 0, sizeof(counts));
    select_many(&t, 60, counts, key, sizeof(key));
    assert_true(counts[0] > 0 && counts[1] > 0);
    assert_int_equal(counts[2], 0);
    assert_string_equal(key, "sk-it-secret-a1-file");
    assert_true(it_log_has(&t, "back in rotation"));

    /* The file goes again while the operator has a1 out for an hour: out at the next
     * reload for its credential, as the operator's disable would end first, and the
     * journal records it so. */
    assert_int_equal(it_rotactl(&t, "disable alpha/a1 --for 1h", out, sizeof(out)), 0);
    assert_string_equal(off_of(&t, "alpha/a1"), "operator");
    assert_int_equal(unlink(token), 0);
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    assert_string_equal(off_of(&t, "alpha/a1"), "credential");
    assert_int_equal(log_count(&t, what), 2);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    /* Restored from the journal with the file back: a credential-off state is no
     * operator's decision, so it does not outlive the credential's return. */
    it_drop_table(&t);
    write_token(token, "sk-it-secret-a1-file");
    assert_int_equal(it_start(&t), 0);
    assert_true(it_log_has(&t, "restored from the journal"));
    assert_string_equal(off_of(&t, "alpha/a1"), "");
    assert_string_equal(off_of(&t, "alpha/a2"), "credential");
    assert_false(it_log_has(&t, "sk-it-secret"));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* Run "rotad --check -c FILE" with the environment "env" (a shell fragment before the
 * command, such as "env -u NAME"); stdout and stderr apart; the exit status. */
static int run_check(const char *env, const char *file, char *out, size_t on, char *err,
                     size_t en)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s/tools/rotad/rotad --check -c '%s'", env, it_bin(), file);
    return it_sh(cmd, out, on, err, en);
}

static int count_lines(const char *s, const char *prefix)
{
    int n = 0;
    for (const char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += strncmp(l, prefix, strlen(prefix)) == 0;
    return n;
}

/* The shipped example passes --check where none of its credentials is set: the file is
 * valid; each credential that does not resolve is one warning naming what to provide. */
static void test_rotad_check_example_names_missing_credentials(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "check");
    char example[600], dir[512], out[1 << 16], err[8192];
    snprintf(dir, sizeof(dir), "%s", __FILE__); /* <src>/tests/integration/test_rotad.c */
    *strrchr(dir, '/') = 0;
    *strrchr(dir, '/') = 0;
    *strrchr(dir, '/') = 0;
    snprintf(example, sizeof(example), "%s/examples/rota.yaml", dir);
    int rc = run_check("env -u ROTA_EXAMPLE_AG1 -u ROTA_EXAMPLE_AG2", example, out, sizeof(out),
                       err, sizeof(err));
    if (rc != 0)
        fail_msg("rotad --check %s exited %d: %s", example, rc, err);
    assert_non_null(strstr(out, "provider antigravity"));
    assert_non_null(strstr(out, "\n  tier 0 "));
    assert_non_null(strstr(err, "warning: ")); /* each warning names the file's place */
    assert_non_null(strstr(err, "examples/rota.yaml:"));
    assert_non_null(strstr(err, ": account 'ag-1' of provider 'antigravity': credential "
                                "env:ROTA_EXAMPLE_AG1 is not set; until it resolves, the "
                                "account stays out of rotation\n"));
    assert_non_null(strstr(err, "account 'ag-2' of provider 'antigravity': credential "
                                "env:ROTA_EXAMPLE_AG2 is not set"));
    bool gh = access("/etc/rota/example/gh-1.token", R_OK) != 0;
    if (gh)
        assert_non_null(strstr(err, "account 'gh-1' of provider 'copilot': credential "
                                    "file:/etc/rota/example/gh-1.token cannot be read"));
    assert_int_equal(count_lines(err, "warning: "), 2 + gh);
    assert_int_equal(count_lines(err, ""), 2 + gh); /* nothing else */
    /* With them set, nothing to warn about (the file's account aside). */
    rc = run_check("ROTA_EXAMPLE_AG1=sk-check-1 ROTA_EXAMPLE_AG2=sk-check-2", example, out,
                   sizeof(out), err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(count_lines(err, "warning: "), gh);
    assert_null(strstr(out, "sk-check"));
    assert_null(strstr(err, "sk-check"));
    /* A section of a feature to come is an error of the file. */
    char text[1 << 14], bad[256];
    FILE *f = fopen(example, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
    snprintf(bad, sizeof(bad), "%s/metrics.yaml", t.dir);
    f = fopen(bad, "w");
    assert_non_null(f);
    fprintf(f, "%smetrics: {enabled: true, listen: 127.0.0.1:9464}\n", text);
    fclose(f);
    rc = run_check("", bad, out, sizeof(out), err, sizeof(err));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "'metrics' is not available in this version of rota"));
    it_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rotad_start_status_stop, it_teardown),
        cmocka_unit_test_teardown(test_rotad_reload_under_load_carries_counters, it_teardown),
        cmocka_unit_test_teardown(test_rotad_kill9_then_restart_adopts, it_teardown),
        cmocka_unit_test_teardown(test_rotad_restart_right_after_kill9, it_teardown),
        cmocka_unit_test_teardown(test_rotad_invalid_reload_keeps_old_config, it_teardown),
        cmocka_unit_test_teardown(test_rotad_second_instance_refused, it_teardown),
        cmocka_unit_test_teardown(test_rotad_same_instance_other_state_dir_refused,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotad_recorded_pid_held_by_an_impostor_is_no_supervisor,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotad_credential_change_makes_a_new_generation,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotad_socket_of_another_instance_is_not_taken,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotad_bad_config_refused_at_start, it_teardown),
        cmocka_unit_test_teardown(test_rotad_malformed_frames_leave_it_healthy, it_teardown),
        cmocka_unit_test_teardown(test_rotad_reclaims_calls_of_killed_workers, it_teardown),
        cmocka_unit_test_teardown(test_rotad_resets_quota_at_midnight_of_its_clock,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotad_unresolved_credential_keeps_only_that_account_out,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotad_check_example_names_missing_credentials,
                                  it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
