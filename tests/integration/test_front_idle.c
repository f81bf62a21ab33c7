/* test_front_idle: 10,000 idle keep-alive connections from a child process on one
 * rota-front-echo thread; a normal request is still answered at once, and all 10,000
 * are released when the client goes. Prints (does not assert) the memory each idle
 * connection costs: the worker's heap, the front's own count, and the kernel's slab. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "front_it.h"

#define IDLE 10000

/* A field of /proc/meminfo, in kB. */
static long meminfo(const char *name)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(name);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, name, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Pages the kernel holds in TCP socket buffers ("TCP: ... mem N"). */
static long tcp_mem_pages(void)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f)) {
        const char *m = strstr(line, " mem ");
        if (!strncmp(line, "TCP:", 4) && m)
            v = strtol(m + 5, NULL, 10);
    }
    if (f)
        fclose(f);
    return v;
}

static long wait_conns(int port, long want, int tries)
{
    long n = -1;
    for (int i = 0; i < tries; i++) {
        n = stat_of(port, "conns") - 1; /* less the connection asking */
        if (n == want)
            break;
        usleep(50000);
    }
    return n;
}

static void test_front_idle_10k(void **state)
{
    if (!nofile_allows(IDLE + 200)) {
        printf("skipped: the hard RLIMIT_NOFILE is below %d; %d idle connections need more\n",
               IDLE + 200, IDLE);
        skip();
    }
    struct server s;
    static const char *const args[] = {"--threads", "1", "--max-conns", "12000", NULL};
    server_start(&s, args);
    long heap0 = stat_of(s.port, "heap"), slab0 = meminfo("Slab"), tcp0 = tcp_mem_pages();
    int hold;
    pid_t pid = idle_clients(s.port, IDLE, &hold);
    assert_int_equal(wait_conns(s.port, IDLE, 200), IDLE);

    /* a normal request among them, answered */
    uint64_t t0 = now_ms();
    struct resp p;
    assert_int_equal(
        request(s.port, "POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nbusy", &p), 200);
    assert_string_equal(p.body, "busy");
    uint64_t took = now_ms() - t0;

    long heap1 = stat_of(s.port, "heap"), front = stat_of(s.port, "bytes_conns");
    long slab1 = meminfo("Slab"), tcp1 = tcp_mem_pages();
    printf("idle connections: %d; a request among them answered in %llu ms\n", IDLE,
           (unsigned long long)took);
    printf("  worker heap per idle connection:  %ld B (the front's own count: %ld B)\n",
           (heap1 - heap0) / IDLE, front / (IDLE + 1));
    printf("  kernel slab per connection:       %ld B for both ends on loopback, so about "
           "%ld B on the worker's side\n",
           (slab1 - slab0) * 1024 / IDLE, (slab1 - slab0) * 1024 / IDLE / 2);
    printf("  TCP buffer pages held:            %ld (before: %ld)\n", tcp1, tcp0);
    printf("  total on the worker's side:       about %ld B per idle connection (target "
           "20480)\n",
           (heap1 - heap0) / IDLE + (slab1 - slab0) * 1024 / IDLE / 2);

    close(hold); /* the client goes: every connection is released */
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(wait_conns(s.port, 0, 200), 0);
    server_stop(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_front_idle_10k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
