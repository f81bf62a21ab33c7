/* test_rotactl_trust: the control socket against a hostile local user (a real second
 * user, rota-stranger): rotactl sends nothing to a listener that is not rotad, rotad
 * answers no stranger, and idle connections do not lock an operator out. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "control.h"
#include "rotad_harness.h"
#include "stranger.h"

#define IDLE_CONNS 80

static char out[64 * 1024], errs[16 * 1024];

/* The stranger's uid, or skip the test saying why there is none. */
static bool stranger_or_skip(uid_t *uid)
{
    gid_t gid;
    char why[160];
    if (stranger_ids(uid, &gid, why, sizeof(why)))
        return true;
    printf("skipped: %s\n", why);
    return false;
}

static void sock_path(const struct it *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/state/rotad.sock", t->dir);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Run "rotactl ARGS" as root: stdout in "out", stderr in "errs"; its exit status. */
static int rotactl(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/tools/rotactl/rotactl %s", it_bin(), args);
    out[0] = errs[0] = 0;
    return it_sh(cmd, out, sizeof(out), errs, sizeof(errs));
}

/* A listener in place of rotad's socket: it takes "conns" connections and exits with the
 * bytes they sent (at most 200), or 250 when fewer came within 15 s, 251 when it could
 * not listen. */
struct fake {
    const char *path;
    int conns;
};

static int fake_listener(void *arg)
{
    const struct fake *f = arg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(f->path) >= sizeof(sa.sun_path))
        return 251;
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    unlink(f->path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8))
        return 251;
    chmod(f->path, 0666);
    long bytes = 0;
    for (int i = 0; i < f->conns; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 15000) != 1)
            return 250;
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            return 250;
        char buf[4096];
        ssize_t k;
        struct pollfd q = {c, POLLIN, 0};
        while (poll(&q, 1, 5000) == 1 && (k = read(c, buf, sizeof(buf))) > 0)
            bytes += k;
        close(c);
    }
    return bytes > 200 ? 200 : (int)bytes;
}

/* Start fake_listener in a child, as the stranger or (stranger false) as root; returns
 * once the socket at "path" is the child's. */
static pid_t fake_start(struct fake *f, bool stranger, uid_t owner)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(stranger ? as_stranger(fake_listener, f) & 0xff : fake_listener(f));
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if (lstat(f->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == owner &&
            (st.st_mode & 0777) == 0666)
            return pid;
        sleep_ms(20);
    }
    fail_msg("the fake listener did not come up at %s", f->path);
    return -1;
}

static int fake_wait(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Attack 2: a stranger who can write the state directory swaps rotad.sock for her own
 * listener. rotactl, found there through the instance or given --socket, refuses to
 * talk to her and sends her nothing. */
static void test_rotactl_sends_nothing_to_a_strangers_listener(void **state)
{
    (void)state;
    uid_t su;
    if (!stranger_or_skip(&su))
        return;
    struct it t;
    it_init(&t, "trust-a");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    char path[256], state_dir[200], args[512];
    sock_path(&t, path, sizeof(path));
    snprintf(state_dir, sizeof(state_dir), "%s/state", t.dir);
    assert_int_equal(chmod(t.dir, 0711), 0);
    assert_int_equal(chown(state_dir, su, (gid_t)-1), 0); /* as if she had made it */

    struct fake f = {path, 2};
    pid_t pid = fake_start(&f, true, su);
    snprintf(args, sizeof(args), "-i %s disable alpha/a0", t.instance);
    assert_int_not_equal(rotactl(args), 0);
    assert_non_null(strstr(errs, path));
    assert_non_null(strstr(errs, "refusing"));
    char uid_text[32];
    snprintf(uid_text, sizeof(uid_text), "uid %ld", (long)su);
    assert_non_null(strstr(errs, uid_text));
    snprintf(args, sizeof(args), "-i %s --socket %s disable alpha/a0", t.instance, path);
    assert_int_not_equal(rotactl(args), 0);
    assert_non_null(strstr(errs, "refusing"));
    assert_int_equal(fake_wait(pid), 0); /* two connections, not a byte */
}

/* A listener of the right uid that is not the instance's rotad (its pid differs from the
 * one in the instance's directory) gets nothing either. */
static void test_rotactl_sends_nothing_to_a_listener_that_is_not_rotad(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "trust-pid");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    char path[256], args[512];
    sock_path(&t, path, sizeof(path));
    struct fake f = {path, 1};
    pid_t pid = fake_start(&f, false, geteuid());
    snprintf(args, sizeof(args), "-i %s disable alpha/a0", t.instance);
    assert_int_not_equal(rotactl(args), 0);
    assert_non_null(strstr(errs, "refusing"));
    char pid_text[48];
    snprintf(pid_text, sizeof(pid_text), "rotad is pid %ld", (long)t.rotad);
    assert_non_null(strstr(errs, pid_text));
    assert_int_equal(fake_wait(pid), 0);
}

/* The stranger's part of attack 2 the other way: disable alpha/a0 through rotad's socket.
 * 0 refused with a reply, 1 done, 2 no reply, 10 the socket cannot be reached. */
static int stranger_disable(void *arg)
{
    json_t *reply = NULL;
    char err[256];
    char *argv[] = {"alpha/a0"};
    int rc = rota_ctl_call(arg, "disable", 1, argv, 5000, &reply, err, sizeof(err));
    if (rc == -EACCES)
        return 10;
    if (rc) {
        fprintf(stderr, "stranger: %s\n", err);
        return 2;
    }
    int done = json_is_true(json_object_get(reply, "ok"));
    if (!done)
        fprintf(stderr, "stranger: refused: %s\n",
                json_string_value(json_object_get(reply, "error")));
    json_decref(reply);
    return done;
}

/* Attack 9 as the stranger, on a socket she can reach: IDLE_CONNS + 4 connections that
 * send nothing. rotad must close every one of them at once (it asks the kernel who
 * connected), so none is left to crowd out an operator. 0 when all were closed. */
static int stranger_idles(void *arg)
{
    const char *path = arg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fds[IDLE_CONNS + 4], open_ = 0;
    for (int i = 0; i < IDLE_CONNS + 4; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0)
            return 2;
    }
    for (int i = 0; i < IDLE_CONNS + 4; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char buf[512];
        ssize_t k = 1;
        while (k > 0 && poll(&p, 1, 3000) == 1) /* its refusal, if any, then the end */
            k = recv(fds[i], buf, sizeof(buf), 0);
        open_ += k != 0; /* still open after 3 s */
        close(fds[i]);
    }
    return open_ ? 1 : 0;
}

/* Lines of rotad's log holding "text". */
static int log_count(const struct it *t, const char *text)
{
    FILE *f = fopen(t->log, "r");
    assert_non_null(f);
    char buf[2048];
    int n = 0;
    while (fgets(buf, sizeof(buf), f))
        n += strstr(buf, text) != NULL;
    fclose(f);
    return n;
}

static void assert_a0_enabled(struct it *t)
{
    json_t *r = it_ctl(t, "show", "alpha/a0", NULL);
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "ok")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "data"), "off")),
                        "");
    json_decref(r);
}

/* A stranger cannot reach root's rotad socket through its modes; given permissive modes
 * anyway, rotad refuses her at accept and the table stays as it was. */
static void test_rotad_refuses_a_stranger(void **state)
{
    (void)state;
    uid_t su;
    if (!stranger_or_skip(&su))
        return;
    struct it t;
    it_init(&t, "trust-b");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    char path[256], state_dir[200];
    sock_path(&t, path, sizeof(path));
    snprintf(state_dir, sizeof(state_dir), "%s/state", t.dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    assert_int_equal(stat(state_dir, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    assert_int_equal(as_stranger(stranger_disable, path), 10);

    assert_int_equal(chmod(t.dir, 0711), 0);
    assert_int_equal(chmod(state_dir, 0711), 0);
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(as_stranger(stranger_disable, path), 0);
    assert_int_equal(as_stranger(stranger_disable, path), 0);
    assert_int_equal(as_stranger(stranger_idles, path), 0);
    char args[256];
    snprintf(args, sizeof(args), "-i %s --json status", t.instance);
    assert_int_equal(rotactl(args), 0);
    assert_a0_enabled(&t);
    char line[96];
    snprintf(line, sizeof(line), "refused a connection from uid %ld", (long)su);
    assert_int_equal(log_count(&t, line), 1); /* all refused, logged once */
}

/* In group mode the group's members are operators: the stranger, put in the group the
 * config names, gets her command done. */
static void test_rotad_answers_its_group(void **state)
{
    (void)state;
    uid_t su;
    if (!stranger_or_skip(&su))
        return;
    struct it t;
    it_init(&t, "trust-g");
    it_config(&t, 2, 0, "group: " STRANGER_NAME);
    assert_int_equal(it_start(&t), 0);
    char path[256];
    sock_path(&t, path, sizeof(path));
    assert_int_equal(chmod(t.dir, 0711), 0);
    assert_int_equal(as_stranger(stranger_disable, path), 1);
    json_t *r = it_ctl(&t, "show", "alpha/a0", NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "data"), "off")),
                        "operator");
    json_decref(r);
}

/* Attack 9: IDLE_CONNS connections that send nothing, then an operator's status. */
static void test_rotad_idle_connections_do_not_starve_status(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "trust-c");
    it_config(&t, 2, 0, NULL);
    assert_int_equal(it_start(&t), 0);
    char path[256], args[256];
    sock_path(&t, path, sizeof(path));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fds[IDLE_CONNS + 4];
    snprintf(args, sizeof(args), "-i %s --json status", t.instance);
    for (int i = 0; i < IDLE_CONNS + 4; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        if (i + 1 < IDLE_CONNS)
            continue;
        sleep_ms(200); /* rotad has taken them all */
        assert_int_equal(rotactl(args), 0);
        json_error_t e;
        json_t *j = json_loads(out, 0, &e);
        assert_non_null(j);
        if (!json_is_object(json_object_get(j, "daemon")))
            fail_msg("after %d idle connections, status did not reach rotad: %s", i + 1,
                     json_string_value(json_object_get(j, "daemon_error")));
        json_decref(j);
    }
    assert_a0_enabled(&t);
    for (int i = 0; i < IDLE_CONNS + 4; i++)
        close(fds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rotactl_sends_nothing_to_a_strangers_listener,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotactl_sends_nothing_to_a_listener_that_is_not_rotad,
                                  it_teardown),
        cmocka_unit_test_teardown(test_rotad_refuses_a_stranger, it_teardown),
        cmocka_unit_test_teardown(test_rotad_answers_its_group, it_teardown),
        cmocka_unit_test_teardown(test_rotad_idle_connections_do_not_starve_status,
                                  it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
