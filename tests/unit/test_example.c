/* test_example: the example libcurl worker, run as a real process against a real HTTP
 * server on loopback: it sends each account's key, and the table learns from 200, 429
 * (with Retry-After) and 500 answers. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "select.h"

/* A one-connection-at-a-time HTTP server: answers requests with the statuses in
 * "script" in turn (then 200), and counts requests whose bearer token was the key. */
struct server {
    int fd, port;
    pid_t pid;
    int pipe[2]; /* child -> parent: requests seen, requests with the right key */
};

static void serve(int fd, const char *script, const char *key, int wfd)
{
    int seen = 0, keyed = 0;
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            break;
        char req[8192];
        ssize_t n = 0, r;
        /* read until the end of headers and the small body */
        while (n < (ssize_t)sizeof(req) - 1 &&
               (r = read(c, req + n, sizeof(req) - 1 - (size_t)n)) > 0) {
            n += r;
            req[n] = 0;
            char *end = strstr(req, "\r\n\r\n");
            char *cl = strcasestr(req, "content-length:");
            if (end && (!cl || (ssize_t)(end + 4 - req) + atoi(cl + 15) <= n))
                break;
        }
        char want[256];
        snprintf(want, sizeof(want), "Authorization: Bearer %s\r\n", key);
        keyed += strstr(req, want) != NULL;
        int status = script[seen] ? (script[seen] == 'R'   ? 429
                                     : script[seen] == 'E' ? 500
                                                           : 200)
                                  : 200;
        seen++;
        char resp[256];
        int len =
            snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n%s\r\n{}",
                     status, status == 429 ? "Retry-After: 30\r\n" : "");
        if (write(c, resp, (size_t)len) < 0)
            break;
        close(c);
        int counts[2] = {seen, keyed};
        if (write(wfd, counts, sizeof(counts)) < 0)
            break;
    }
    _exit(0);
}

static void server_start(struct server *s, const char *script, const char *key)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s->fd, (void *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    assert_int_equal(getsockname(s->fd, (void *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pipe(s->pipe), 0);
    s->pid = fork();
    if (s->pid == 0) {
        close(s->pipe[0]);
        serve(s->fd, script, key, s->pipe[1]);
    }
    close(s->pipe[1]);
}

/* Stop the server; returns the last counts it reported. */
static void server_stop(struct server *s, int counts[2])
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    close(s->fd);
    counts[0] = counts[1] = 0;
    int c[2];
    while (read(s->pipe[0], c, sizeof(c)) == (ssize_t)sizeof(c))
        memcpy(counts, c, sizeof(c));
    close(s->pipe[0]);
}

static int run_worker(const char *instance, const char *route, int port, int calls)
{
    const char *bin = getenv("ROTA_TEST_BIN");
    char path[512], url[64], n[16];
    snprintf(path, sizeof(path), "%s/workers/rota-example-worker", bin ? bin : ".");
    if (access(path, X_OK) != 0)
        return -1;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port);
    snprintf(n, sizeof(n), "%d", calls);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execl(path, path, instance, route, url, n, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_example_worker_calls_and_reports(void **state)
{
    (void)state;
    struct fx f = {0};
    struct rota_desc_provider p = {.name = "p", .kind = "openai"};
    struct rota_desc_account a[2] = {
        {.id = 1, .name = "first", .credential = "sk-test-one"},
        {.id = 2, .name = "second", .credential = "sk-test-one"},
    };
    uint32_t m0[1] = {0}, m1[1] = {1};
    struct rota_desc_tier t[2] = {
        {.strategy = ROTA_STRAT_HYBRID, .provider = 0, .nmembers = 1, .members = m0},
        {.strategy = ROTA_STRAT_HYBRID, .provider = 0, .nmembers = 1, .members = m1},
    };
    struct rota_desc_route r = {.name = "chat", .ntiers = 2, .tiers = t};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 2,
                          .nroutes = 1,
                          .providers = &p,
                          .accounts = a,
                          .routes = &r};
    assert_int_equal(fx_publish(&f, "ex", &d), 0);

    /* 3 successes on "first", then a 429 (Retry-After: 30) moves the next 2 calls to
     * "second", one of which gets a 500. */
    struct server s;
    server_start(&s, "OOORE", "sk-test-one");
    int rc = run_worker(f.instance, "chat", s.port, 6);
    int counts[2];
    server_stop(&s, counts);
    if (rc == -1)
        skip(); /* built without libcurl: no example worker */
    assert_int_equal(rc, 0);
    assert_int_equal(counts[0], 6);
    assert_int_equal(counts[1], 6); /* every request carried the account's key */
    struct rota_shm_map *m = f.m;
    assert_int_equal(rota_load(&m->hot[0].done), 4);
    assert_int_equal(rota_load(&m->hot[1].done), 2);
    assert_int_equal(rota_load(&m->hot[0].rate_limited), 1);
    assert_int_equal(rota_load(&m->hot[1].failures), 1);
    uint64_t cd = rota_load(&m->hot[0].cooldown_until), now = rota_clock_mono();
    assert_true(cd > now + 25 * ROTA_NS_PER_S && cd <= now + 31 * ROTA_NS_PER_S);
    assert_true(rota_load(&m->hot[0].latency_ns) > 0);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_worker_calls_and_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
