/*
 * rota-worker - the dispatch pool: an OpenAI-, Anthropic- and Gemini-compatible HTTP
 * endpoint that sends each call to an account rota chooses, retries on the next one,
 * and reports what happened (DESIGN.md section 7).
 *
 *   rota-worker -i INSTANCE [--listen HOST:PORT] [--unix PATH] [--listen-fd FD]...
 *               [--threads N] [--attempts N] [--deadline-ms MS] [--connect-ms MS]
 *               [--first-byte-ms MS] [--idle-ms MS] [--keepalive-ms MS] [--drain-ms MS]
 *               [--drain-bytes N] [--stop-ms MS] [--max-header-bytes N] [--max-headers N]
 *               [--max-body-bytes N] [--max-conns N] [--header-ms MS] [--body-ms MS]
 *               [--client-idle-ms MS] [--log-fd FD] [--stats-fd FD] [--ca-file PATH]
 *               [--thread-listen-fd FD]... [--parent-pid PID]
 *
 * Run by hand, it listens on 127.0.0.1:8080 by default (port 0 takes a free one) and
 * prints "listening on HOST:PORT" once every thread accepts. Run by rotad (the workers:
 * section), it is given listening sockets rotad holds (--thread-listen-fd: a TCP
 * listener's SO_REUSEPORT socket per thread; --listen-fd: a Unix listener every thread
 * accepts on, each on its own copy; all closed as the process drains), the access log
 * (--log-fd) and a socket for its figures (--stats-fd, stats.c); it then stops when
 * rotad (--parent-pid) goes (the parent-death signal).
 *
 * SIGTERM or SIGINT drains: no new connections, requests in flight finish within
 * --stop-ms (30 s), then exit 0. One JSON line per request on the access log (stderr
 * by default; dispatch_table.c); no key, header value or body. --ca-file: the PEM CA
 * certificates https upstreams are verified against, instead of the system's.
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
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rota_version.h"
#include "worker.h"

#define MAX_FDS  16
#define MAX_TFDS 1024

static sigset_t stop_set;

static void usage(FILE *f)
{
    fprintf(f, "usage: rota-worker -i INSTANCE [--listen HOST:PORT] [--unix PATH] "
               "[--listen-fd FD]...\n"
               "       [--threads N] [--attempts N] [--deadline-ms MS] [--connect-ms MS]\n"
               "       [--first-byte-ms MS] [--idle-ms MS] [--keepalive-ms MS] "
               "[--drain-ms MS]\n"
               "       [--drain-bytes N] [--stop-ms MS] [--max-header-bytes N] "
               "[--max-headers N]\n"
               "       [--max-body-bytes N] [--max-conns N] [--header-ms MS] [--body-ms MS]\n"
               "       [--client-idle-ms MS] [--log-fd FD] [--stats-fd FD] "
               "[--ca-file PATH]\n"
               "       [--thread-listen-fd FD]... [--parent-pid PID]\n");
}

/* Every call is done: stop once the front has sent what it queued (the last answers)
 * and every connection is closed (one whose request was still arriving is answered
 * first), looking every 10 ms; the stop timer bounds the wait. */
static void on_flush_timer(struct rota_loop_timer *t)
{
    struct worker_thread *th =
        (struct worker_thread *)((char *)t - offsetof(struct worker_thread, flush));
    struct rota_front_stats s;
    rota_front_stats(th->f, &s);
    if (s.unsent == 0 && s.conns == 0)
        rota_loop_stop(th->l);
    else
        rota_loop_timer_set(th->l, &th->flush, 10);
}

/* Every second: the front's figures, for the main thread (stats.c). */
static void on_tick(struct rota_loop_timer *t)
{
    struct worker_thread *th =
        (struct worker_thread *)((char *)t - offsetof(struct worker_thread, tick));
    struct rota_front_stats s;
    rota_front_stats(th->f, &s);
    atomic_store_explicit(&th->conns, s.conns, memory_order_relaxed);
    atomic_store_explicit(&th->accepted, s.accepted, memory_order_relaxed);
    rota_loop_timer_set(th->l, &th->tick, 1000);
}

static void stop_now(void *arg)
{
    on_flush_timer(&((struct worker_thread *)arg)->flush);
}

static void on_hard_stop(struct rota_loop_timer *t)
{
    struct worker_thread *th =
        (struct worker_thread *)((char *)t - offsetof(struct worker_thread, stop));
    rota_loop_stop(th->l);
}

/* Out of time: what is still in flight is reported cancelled and answered 503; those
 * answers get one more second to go out. */
static void on_stop_timer(struct rota_loop_timer *t)
{
    struct worker_thread *th =
        (struct worker_thread *)((char *)t - offsetof(struct worker_thread, stop));
    rota_dispatch_on_idle(th->d, NULL, NULL);
    rota_dispatch_stop(th->d);
    th->stop.fn = on_hard_stop;
    rota_loop_timer_set(th->l, &th->stop, 1000);
    stop_now(th);
}

/* SIGTERM reached this thread: accept no more, stop once idle or out of time. */
static void on_wake(void *arg, int fd, unsigned revents)
{
    struct worker_thread *th = arg;
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
    struct worker_thread *th = arg;
    int rc = rota_loop_run(th->l);
    if (rc < 0)
        fprintf(stderr, "rota-worker: loop: %s\n", strerror(-rc));
    return NULL;
}

struct args {
    const char *instance, *unix_path, *ca_file;
    char host[128];
    int port, threads;
    uint32_t stop_ms;
    int fds[MAX_FDS]; /* --listen-fd: every thread accepts on each */
    unsigned nfds;
    int tfds[MAX_TFDS]; /* --thread-listen-fd: the i-th is thread (i mod threads)'s own */
    unsigned ntfds;
    int stats_fd;
    int parent; /* --parent-pid: rotad's */
    struct rota_dispatch_opts o;
    struct rota_front_opts fo;
};

/* A descriptor given by the parent: open, and (for --listen-fd) a listening socket. */
static int given_fd(const char *arg, bool listening, int *out)
{
    char *end;
    long fd = strtol(arg, &end, 10);
    int on = 0;
    socklen_t len = sizeof(on);
    if (*end || fd < 0 || fd > INT32_MAX || fcntl((int)fd, F_GETFD) < 0)
        return fprintf(stderr, "rota-worker: %s is not an open descriptor\n", arg), -1;
    if (listening && (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on))
        return fprintf(stderr, "rota-worker: descriptor %s is not a listening socket\n", arg),
               -1;
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    *out = (int)fd;
    return 0;
}

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
        LISTEN_FD,
        THREAD_FD,
        STATS_FD,
        PARENT,
        LOG_FD,
        MAX_HEAD,
        MAX_HEADERS,
        MAX_BODY,
        MAX_CONNS,
        HEADER_MS,
        BODY_MS,
        CLIENT_IDLE,
        CA_FILE,
        VERSION
    };
    static const struct option opts[] = {
        {"instance", required_argument, NULL, 'i'},
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
        {"listen-fd", required_argument, NULL, LISTEN_FD},
        {"thread-listen-fd", required_argument, NULL, THREAD_FD},
        {"stats-fd", required_argument, NULL, STATS_FD},
        {"parent-pid", required_argument, NULL, PARENT},
        {"log-fd", required_argument, NULL, LOG_FD},
        {"max-header-bytes", required_argument, NULL, MAX_HEAD},
        {"max-headers", required_argument, NULL, MAX_HEADERS},
        {"max-body-bytes", required_argument, NULL, MAX_BODY},
        {"max-conns", required_argument, NULL, MAX_CONNS},
        {"header-ms", required_argument, NULL, HEADER_MS},
        {"body-ms", required_argument, NULL, BODY_MS},
        {"client-idle-ms", required_argument, NULL, CLIENT_IDLE},
        {"ca-file", required_argument, NULL, CA_FILE},
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
        case LISTEN_FD:
            if (a->nfds == MAX_FDS) {
                fprintf(stderr, "rota-worker: at most %d --listen-fd\n", MAX_FDS);
                return 2;
            }
            if (given_fd(optarg, true, &a->fds[a->nfds++]) < 0)
                return 2;
            break;
        case THREAD_FD:
            if (a->ntfds == MAX_TFDS) {
                fprintf(stderr, "rota-worker: at most %d --thread-listen-fd\n", MAX_TFDS);
                return 2;
            }
            if (given_fd(optarg, true, &a->tfds[a->ntfds++]) < 0)
                return 2;
            break;
        case PARENT:
            a->parent = (int)n;
            break;
        case STATS_FD:
            if (given_fd(optarg, false, &a->stats_fd) < 0)
                return 2;
            break;
        case LOG_FD:
            if (strcmp(optarg, "-1") == 0) /* no access log */
                a->o.log_fd = -1;
            else if (given_fd(optarg, false, &a->o.log_fd) < 0)
                return 2;
            break;
        case MAX_HEAD:
            a->fo.max_head = (uint32_t)n;
            break;
        case MAX_HEADERS:
            a->fo.max_headers = (uint32_t)n;
            break;
        case MAX_BODY:
            a->fo.max_body = n;
            break;
        case MAX_CONNS:
            a->fo.max_conns = (uint32_t)n;
            break;
        case HEADER_MS:
            a->fo.header_timeout_ms = (uint32_t)n;
            break;
        case BODY_MS:
            a->fo.body_timeout_ms = (uint32_t)n;
            break;
        case CLIENT_IDLE:
            a->fo.idle_timeout_ms = (uint32_t)n;
            break;
        case CA_FILE:
            if (access(optarg, R_OK) != 0) {
                fprintf(stderr, "rota-worker: --ca-file %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            a->ca_file = optarg;
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
    if (!a->instance || optind != argc || a->threads < 1 || a->threads > 256 ||
        a->ntfds % (unsigned)a->threads) {
        usage(stderr);
        return 2;
    }
    return -1;
}

static int setup(struct worker_thread *th, unsigned idx, struct args *a, int ufd, char *err,
                 size_t n)
{
    int rc;
    struct rota_front_opts fo = a->fo;
    fo.handler = rota_dispatch_handle;
    fo.head_check = rota_dispatch_head;
    struct rota_upstream_opts uo = {.ca_file = a->ca_file};
    if ((rc = rota_loop_new(&th->l, NULL)) < 0)
        return snprintf(err, n, "loop: %s", strerror(-rc)), rc;
    if ((rc = rota_upstream_new(&th->u, th->l, &uo)) < 0)
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
    if (ufd >= 0 && (rc = rota_front_adopt(th->f, ufd, false)) < 0)
        return snprintf(err, n, "unix listener: %s", strerror(-rc)), rc;
    for (unsigned i = 0; i < a->nfds; i++)
        if ((rc = fcntl(a->fds[i], F_DUPFD_CLOEXEC, 3)) < 0 ||
            (rc = rota_front_adopt(th->f, rc, true)) < 0)
            return snprintf(err, n, "listener %d: %s", a->fds[i], strerror(-rc)), rc;
    for (unsigned i = idx; i < a->ntfds; i += (unsigned)a->threads)
        if ((rc = rota_front_adopt(th->f, a->tfds[i], true)) < 0)
            return snprintf(err, n, "listener %d: %s", a->tfds[i], strerror(-rc)), rc;
    th->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    th->w = th->wake >= 0 ? rota_loop_watch_add(th->l, th->wake, POLLIN, on_wake, th) : NULL;
    if (!th->w)
        return snprintf(err, n, "eventfd: %s", strerror(errno)), -ENOMEM;
    th->stop.fn = on_stop_timer;
    th->flush.fn = on_flush_timer;
    th->tick.fn = on_tick;
    rota_loop_timer_set(th->l, &th->tick, 1000);
    th->stop_ms = a->stop_ms;
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {
        .threads = 1, .port = -2, .stop_ms = 30000, .stats_fd = -1, .o = {.log_fd = 2}};
    snprintf(a.host, sizeof(a.host), "127.0.0.1");
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.port == -2) /* no --listen: 127.0.0.1:8080, unless given other listeners */
        a.port = a.unix_path || a.nfds || a.ntfds ? -1 : 8080;
    /* rotad's worker: stop when rotad goes (checked again after asking, in case it
     * went before) */
    if (a.parent > 0 && (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != a.parent))
        return 1;
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
    /* A request body is taken and given back each request: keep freed memory rather
     * than hand it to the kernel and fault it in again (up to 16 MiB per arena). */
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
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
    struct worker_thread *th = calloc((size_t)a.threads, sizeof(*th));
    for (int i = 0; th && i < a.threads; i++)
        if (setup(&th[i], (unsigned)i, &a, ufd, err, sizeof(err)) < 0) {
            fprintf(stderr, "rota-worker: %s\n", err);
            return 1;
        }
    if (!th)
        return 1;
    if (a.port >= 0)
        printf("listening on %s:%d\n", a.host, a.port);
    if (a.unix_path)
        printf("listening on unix:%s\n", a.unix_path);
    if ((a.nfds || a.ntfds) && a.parent <= 0) /* rotad's own say nothing of it */
        printf("listening on %u given sockets\n", a.nfds + a.ntfds);
    fflush(stdout);
    /* each thread took its own copy of the shared listeners (closed as it drains) */
    for (unsigned i = 0; i < a.nfds; i++)
        close(a.fds[i]);
    for (int i = 0; i < a.threads; i++)
        if ((rc = pthread_create(&th[i].tid, NULL, run, &th[i])) != 0) {
            fprintf(stderr, "rota-worker: thread: %s\n", strerror(rc));
            return 1;
        }
    struct rota_worker_stats *st = rota_worker_stats_new();
    if (!st)
        return 1;
    /* Wait for SIGTERM or SIGINT; every second, the figures for rotad. */
    struct timespec second = {1, 0};
    while (sigtimedwait(&stop_set, NULL, &second) < 0)
        rota_worker_stats_send(st, a.stats_fd, th, (unsigned)a.threads, false);
    rota_worker_stats_send(st, a.stats_fd, th, (unsigned)a.threads, true);
    for (int i = 0; i < a.threads; i++) {
        uint64_t one = 1;
        (void)!write(th[i].wake, &one, sizeof(one));
    }
    for (int i = 0; i < a.threads; i++)
        pthread_join(th[i].tid, NULL);
    rota_worker_stats_free(st);
    for (int i = 0; i < a.threads; i++) {
        rota_dispatch_stop(th[i].d); /* calls begun in the last second: reported, logged */
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
