/* test_loop: the dispatch pool's event loop (workers/loop.h): timers fire in order and
 * can be moved and stopped, fd watches report readiness level-triggered and can be
 * changed and removed from their own callback, deferred calls run in order, and another
 * thread stops a loop that waits on nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "loop.h"

static struct rota_loop *l;
static char order[16];
static int norder;

static int setup(void **state)
{
    norder = 0;
    memset(order, 0, sizeof(order));
    return rota_loop_new(&l, NULL);
}

static int teardown(void **state)
{
    rota_loop_free(l);
    return 0;
}

struct tm_ {
    struct rota_loop_timer t;
    char name;
};

static void on_tm(struct rota_loop_timer *t)
{
    order[norder++] = ((struct tm_ *)t)->name;
    if (norder == 3)
        rota_loop_stop(l);
}

static void test_loop_timers(void **state)
{
    struct tm_ a = {{.fn = on_tm}, 'a'}, b = {{.fn = on_tm}, 'b'}, c = {{.fn = on_tm}, 'c'},
               d = {{.fn = on_tm}, 'd'};
    assert_int_equal(rota_loop_timer_set(l, &a.t, 30), 0);
    assert_int_equal(rota_loop_timer_set(l, &b.t, 10), 0);
    assert_int_equal(rota_loop_timer_set(l, &c.t, 60), 0);
    assert_int_equal(rota_loop_timer_set(l, &d.t, 20), 0);
    rota_loop_timer_stop(l, &d.t);                        /* never fires */
    assert_int_equal(rota_loop_timer_set(l, &c.t, 5), 0); /* moved to the front */
    uint64_t t0 = rota_loop_now(l);
    assert_int_equal(rota_loop_run(l), 0);
    assert_string_equal(order, "cba");
    assert_true(rota_loop_now(l) - t0 >= 30);
}

struct pipe_w {
    int fds[2];
    int seen;
    struct rota_loop_watch *w;
};

static void on_readable(void *arg, int fd, unsigned revents)
{
    struct pipe_w *p = arg;
    assert_true(revents & POLLIN);
    p->seen++;
    if (p->seen == 3) { /* not read: level-triggered, so it came back each time */
        char buf[8];
        assert_int_equal(read(fd, buf, sizeof(buf)), 1);
        rota_loop_watch_del(l, p->w); /* from its own callback */
        rota_loop_stop(l);
    }
}

static void test_loop_watch(void **state)
{
    struct pipe_w p = {0};
    assert_int_equal(pipe(p.fds), 0);
    p.w = rota_loop_watch_add(l, p.fds[0], POLLIN, on_readable, &p);
    assert_non_null(p.w);
    assert_int_equal(write(p.fds[1], "x", 1), 1);
    assert_int_equal(rota_loop_run(l), 0);
    assert_int_equal(p.seen, 3);
    close(p.fds[0]);
    close(p.fds[1]);
}

static int writable;
static void on_writable(void *arg, int fd, unsigned revents)
{
    if (revents & POLLOUT)
        writable++;
    rota_loop_watch_del(l, arg ? *(struct rota_loop_watch **)arg : NULL);
    rota_loop_stop(l);
}

static void test_loop_watch_mod(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct rota_loop_watch *w = NULL;
    /* waits to read from a pipe nobody writes to; then is changed to wait to write */
    w = rota_loop_watch_add(l, fds[1], POLLIN, on_writable, &w);
    assert_non_null(w);
    rota_loop_watch_mod(l, w, POLLOUT);
    writable = 0;
    assert_int_equal(rota_loop_run(l), 0);
    assert_int_equal(writable, 1);
    close(fds[0]);
    close(fds[1]);
}

struct df {
    struct rota_loop_defer d;
    char name;
};

static void on_defer(struct rota_loop_defer *d)
{
    order[norder++] = ((struct df *)d)->name;
    if (((struct df *)d)->name == 'x')
        rota_loop_stop(l);
}

static void test_loop_defer(void **state)
{
    struct df x = {{.fn = on_defer}, 'x'}, y = {{.fn = on_defer}, 'y'},
              z = {{.fn = on_defer}, 'z'};
    rota_loop_defer(l, &y.d);
    rota_loop_defer(l, &z.d);
    rota_loop_defer(l, &y.d); /* queued already: once */
    rota_loop_defer(l, &x.d);
    rota_loop_undefer(l, &z.d);
    assert_int_equal(rota_loop_run(l), 0);
    assert_string_equal(order, "yx");
}

static void *stopper(void *arg)
{
    usleep(50000);
    rota_loop_stop(arg);
    return NULL;
}

static void test_loop_stop_from_another_thread(void **state)
{
    pthread_t t;
    pthread_create(&t, NULL, stopper, l);
    assert_int_equal(rota_loop_run(l), 0); /* nothing to wait for but the stop */
    pthread_join(t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_watch_mod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_stop_from_another_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
