/*
 * rota-worker - the dispatch pool: an OpenAI-, Anthropic- and Gemini-compatible HTTP
 * endpoint that sends each call to an account rota chooses, retries on the next one,
 * and reports what happened (DESIGN.md section 7).
 *
 *   rota-worker -i INSTANCE [--listen HOST:PORT] [--unix PATH] [--threads N]
 *               [--attempts N] [--deadline-ms MS] [--connect-ms MS] [--first-byte-ms MS]
 *               [--idle-ms MS] [--keepalive-ms MS] [--drain-ms MS] [--drain-bytes N]
 *               [--stop-ms MS]
 *
 * Listens on 127.0.0.1:8080 by default (port 0 takes a free one) and prints
 * "listening on HOST:PORT" once every thread accepts. SIGTERM or SIGINT drains: no new
 * connections, requests in flight finish within --stop-ms (30 s), then exit 0. One
 * JSON line per request on stderr (dispatch_table.c); no key, header value or body.
 *
 * DESIGN
 * T threads, each with its own loop, front (its own SO_REUSEPORT socket), curl multi
 * and dispatch; they share only the rota handle. Signals are blocked everywhere and
 * taken by a thread of their own with sigwait, which wakes each loop through an
 * eventfd it watches; the loop thread itself stops accepting and stops its loop once
 * its requests are done or the time is up. main.c wires the parts and nothing calls
 * back into it.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dispatch.h"
#include "front.h"
#include "rota_version.h"
#include "upstream.h"

struct thread {
    pthread_t tid;
    struct rota_loop *l;
    struct rota_front *f;
    struct rota_upstream *u;
    struct rota_dispatch *d;
    int wake;
    struct rota_loop_watch *w;
    struct rota_loop_timer stop, flush;
    uint32_t stop_ms;
};

static sigset_t stop_set;

static void usage(FILE *f)
{
    fprintf(f, "usage: rota-worker -i INSTANCE [--listen HOST:PORT] [--unix PATH] "
               "[--threads N]\n"
               "       [--attempts N] [--deadline-ms MS] [--connect-ms MS] "
               "[--first-byte-ms MS]\n"
               "       [--idle-ms MS] [--keepalive-ms MS] [--drain-ms MS] [--drain-bytes N]\n"
               "       [--stop-ms MS]\n");
}

/* Every call is done: stop once the front has sent what it queued (the last answers),
 * looking every 10 ms; the stop timer bounds the wait. */
static void on_flush_timer(struct rota_loop_timer *t)
{
    struct thread *th = (struct thread *)((char *)t - offsetof(struct thread, flush));
    struct rota_front_stats s;
    rota_front_stats(th->f, &s);
    if (s.unsent == 0)
        rota_loop_stop(th->l);
    else
        rota_loop_timer_set(th->l, &th->flush, 10);
}

static void stop_now(void *arg)
{
    on_flush_timer(&((struct thread *)arg)->flush);
}

static void on_hard_stop(struct rota_loop_timer *t)
{
    struct thread *th = (struct thread *)((char *)t - offsetof(struct thread, stop));
    rota_loop_stop(th->l);
}

/* Out of time: what is still in flight is reported cancelled and answered 503; those
 * answers get one more second to go out. */
static void on_stop_timer(struct rota_loop_timer *t)
{
    struct thread *th = (struct thread *)((char *)t - offsetof(struct thread, stop));
    rota_dispatch_on_idle(th->d, NULL, NULL);
    rota_dispatch_stop(th->d);
    th->stop.fn = on_hard_stop;
    rota_loop_timer_set(th->l, &th->stop, 1000);
    stop_now(th);
}

/* SIGTERM reached this thread: accept no more, stop once idle or out of time. */
static void on_wake(void *arg, int fd, unsigned revents)
{
    struct thread *th = arg;
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));
    rota_loop_watch_del(th->l, th->w);
    rota_front_unlisten(th->f);
    rota_loop_timer_set(th->l, &th->stop, th->stop_ms);
    if (rota_dispatch_inflight(th->d) == 0)
        stop_now(th);
    else
        rota_dispatch_on_idle(th->d, stop_now, th);
}

static void *run(void *arg)
{
    struct thread *th = arg;
    int rc = rota_loop_run(th->l);
    if (rc < 0)
        fprintf(stderr, "rota-worker: loop: %s\n", strerror(-rc));
    return NULL;
}

struct args {
    const char *instance, *unix_path;
    char host[128];
    int port, threads;
    uint32_t stop_ms;
    struct rota_dispatch_opts o;
};

static int parse(int argc, char **argv, struct args *a)
{
    enum {
        LISTEN = 256,
        UNIX,
        THREADS,
        ATTEMPTS,
        DEADLINE,
        CONNECT,
        FIRST,
        IDLE,
        KEEP,
        DRAIN,
        DRAIN_BYTES,
        STOP,
        VERSION
    };
    static const struct option opts[] = {{"instance", required_argument, NULL, 'i'},
                                         {"listen", required_argument, NULL, LISTEN},
                                         {"unix", required_argument, NULL, UNIX},
                                         {"threads", required_argument, NULL, THREADS},
                                         {"attempts", required_argument, NULL, ATTEMPTS},
                                         {"deadline-ms", required_argument, NULL, DEADLINE},
                                         {"connect-ms", required_argument, NULL, CONNECT},
                                         {"first-byte-ms", required_argument, NULL, FIRST},
                                         {"idle-ms", required_argument, NULL, IDLE},
                                         {"keepalive-ms", required_argument, NULL, KEEP},
                                         {"drain-ms", required_argument, NULL, DRAIN},
                                         {"drain-bytes", required_argument, NULL, DRAIN_BYTES},
                                         {"stop-ms", required_argument, NULL, STOP},
                                         {"version", no_argument, NULL, VERSION},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
        unsigned long n = optarg ? strtoul(optarg, NULL, 10) : 0;
        switch (o) {
        case 'i':
            a->instance = optarg;
            break;
        case LISTEN: {
            const char *colon = strrchr(optarg, ':');
            if (!colon) {
                fprintf(stderr, "rota-worker: --listen wants HOST:PORT, not %s\n", optarg);
                return 2;
            }
            snprintf(a->host, sizeof(a->host), "%.*s", (int)(colon - optarg), optarg);
            a->port = atoi(colon + 1);
            break;
        }
        case UNIX:
            a->unix_path = optarg;
            break;
        case THREADS:
            a->threads = (int)n;
            break;
        case ATTEMPTS:
            a->o.attempts = (uint32_t)n;
            break;
        case DEADLINE:
            a->o.deadline_ms = (uint32_t)n;
            break;
        case CONNECT:
            a->o.connect_ms = (uint32_t)n;
            break;
        case FIRST:
            a->o.first_byte_ms = (uint32_t)n;
            break;
        case IDLE:
            a->o.idle_ms = (uint32_t)n;
            break;
        case KEEP:
            a->o.keepalive_ms = (uint32_t)n;
            break;
        case DRAIN:
            a->o.drain_ms = (uint32_t)n;
            break;
        case DRAIN_BYTES:
            a->o.drain_bytes = n;
            break;
        case STOP:
            a->stop_ms = (uint32_t)n;
            break;
        case VERSION:
            printf("rota-worker %s\n", ROTA_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!a->instance || optind != argc || a->threads < 1 || a->threads > 256) {
        usage(stderr);
        return 2;
    }
    return -1;
}

static int setup(struct thread *th, struct args *a, int ufd, char *err, size_t n)
{
    int rc;
    struct rota_front_opts fo = {.handler = rota_dispatch_handle};
    if ((rc = rota_loop_new(&th->l, NULL)) < 0)
        return snprintf(err, n, "loop: %s", strerror(-rc)), rc;
    if ((rc = rota_upstream_new(&th->u, th->l, NULL)) < 0)
        return snprintf(err, n, "upstream: %s", strerror(-rc)), rc;
    if ((rc = rota_dispatch_new(&th->d, th->l, th->u, &a->o)) < 0)
        return snprintf(err, n, "dispatch: %s", strerror(-rc)), rc;
    fo.arg = th->d;
    if ((rc = rota_front_new(&th->f, th->l, &fo)) < 0)
        return snprintf(err, n, "front: %s", strerror(-rc)), rc;
    if (a->port >= 0 &&
        (rc = rota_front_listen_tcp(th->f, a->host, (uint16_t)a->port, err, n)) < 0)
        return rc;
    if (a->port >= 0)
        a->port = rc; /* the other threads share it (SO_REUSEPORT) */
    if (ufd >= 0 && (rc = rota_front_adopt(th->f, ufd)) < 0)
        return snprintf(err, n, "unix listener: %s", strerror(-rc)), rc;
    th->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    th->w = th->wake >= 0 ? rota_loop_watch_add(th->l, th->wake, POLLIN, on_wake, th) : NULL;
    if (!th->w)
        return snprintf(err, n, "eventfd: %s", strerror(errno)), -ENOMEM;
    th->stop.fn = on_stop_timer;
    th->flush.fn = on_flush_timer;
    th->stop_ms = a->stop_ms;
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {.threads = 1, .port = -2, .stop_ms = 30000, .o = {.log_fd = 2}};
    snprintf(a.host, sizeof(a.host), "127.0.0.1");
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.port == -2) /* no --listen: 127.0.0.1:8080, unless --unix alone was asked */
        a.port = a.unix_path ? -1 : 8080;
    char err[256];
    rota_t *h;
    if ((rc = rota_attach(a.instance, &h, err, sizeof(err))) != 0) {
        fprintf(stderr, "rota-worker: attach %s: %s\n", a.instance, err);
        return 1;
    }
    a.o.h = h;
    a.o.instance = a.instance;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int ufd = -1;
    if (a.unix_path &&
        (ufd = rota_front_listen_unix(a.unix_path, 0660, err, sizeof(err))) < 0) {
        fprintf(stderr, "rota-worker: %s\n", err);
        return 1;
    }
    struct thread *th = calloc((size_t)a.threads, sizeof(*th));
    for (int i = 0; th && i < a.threads; i++)
        if (setup(&th[i], &a, ufd, err, sizeof(err)) < 0) {
            fprintf(stderr, "rota-worker: %s\n", err);
            return 1;
        }
    if (!th)
        return 1;
    if (a.port >= 0)
        printf("listening on %s:%d\n", a.host, a.port);
    if (a.unix_path)
        printf("listening on unix:%s\n", a.unix_path);
    fflush(stdout);
    for (int i = 0; i < a.threads; i++)
        pthread_create(&th[i].tid, NULL, run, &th[i]);
    int sig;
    while (sigwait(&stop_set, &sig) != 0)
        ;
    for (int i = 0; i < a.threads; i++) {
        uint64_t one = 1;
        (void)!write(th[i].wake, &one, sizeof(one));
    }
    for (int i = 0; i < a.threads; i++)
        pthread_join(th[i].tid, NULL);
    for (int i = 0; i < a.threads; i++) {
        rota_front_free(th[i].f);
        rota_dispatch_free(th[i].d);
        rota_upstream_free(th[i].u);
        close(th[i].wake);
        rota_loop_free(th[i].l);
    }
    if (ufd >= 0) {
        close(ufd);
        unlink(a.unix_path);
    }
    free(th);
    rota_detach(h);
    return 0;
}
