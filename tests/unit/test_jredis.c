/* test_jredis: the journal's Redis backend against a real redis-server on loopback: batches
 * reaching the stream and the hash, recovery with load, passwords, a Unix socket, the
 * buffer's bound, and an outage (SIGKILL, then a restart) that push never waits for. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "jredis.h"

#define MS     1000000ull
#define S      1000000000ull
#define WAIT_S 10 /* how long a condition may take to hold, at most: far beyond need */
/* A push that takes this long waited on the network (the sender's timeout is 1 s): it
 * must never. A correctness bound with a wide margin for a loaded host, not a measure of
 * speed. */
#define PUSH_BOUND_NS (400 * MS)
#define PASSWORD      "s3cret-pass-9f2c"

/* A redis-server child of the test, and what the test may leave behind. */
struct env {
    pid_t pid;
    int port;               /* 0 = none */
    char dir[64];           /* per-test directory: the socket, password files */
    char sock[128];         /* Unix socket path, "" = none */
    const char *pass;       /* --requirepass, or NULL */
    struct rota_jredis *jr; /* stopped at teardown */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback port nothing listens on (as far as anyone can know). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (void *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (void *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A connection of the test's own to the server, authenticated. */
static redisContext *connect_own(const struct env *e)
{
    struct timeval tv = {1, 0};
    redisContext *c = e->sock[0] ? redisConnectUnixWithTimeout(e->sock, tv)
                                 : redisConnectWithTimeout("127.0.0.1", e->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (e->pass) {
        redisReply *r = redisCommand(c, "AUTH %s", e->pass);
        if (r)
            freeReplyObject(r);
    }
    return c;
}

/* Start redis-server as "e" says (port, socket, password): no persistence, dies with
 * the test. Waits until it answers. */
static void server_start(struct env *e)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", e->sock[0] ? 0 : e->port);
    char *argv[20] = {"redis-server", "--port", port,    "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no",     "--dir", e->dir};
    int argc = 11;
    if (e->sock[0]) {
        argv[argc++] = "--unixsocket";
        argv[argc++] = e->sock;
    }
    if (e->pass) {
        argv[argc++] = "--requirepass";
        argv[argc++] = (char *)e->pass;
    }
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *null = freopen("/dev/null", "w", stdout);
        (void)null;
        execvp("redis-server", argv);
        _exit(127);
    }
    uint64_t t0 = mono_ns();
    for (;;) {
        int status;
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = 0;
            fail_msg("redis-server exited at once (status %d): is it installed?", status);
        }
        redisContext *c = connect_own(e);
        redisReply *r = c ? redisCommand(c, "PING") : NULL;
        bool up = r != NULL; /* any answer, even NOAUTH */
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        if (up)
            return;
        if (mono_ns() - t0 > WAIT_S * S)
            fail_msg("redis-server did not answer within %d s", WAIT_S);
        nap_ms(10);
    }
}

static void server_kill(struct env *e)
{
    if (e->pid > 0) {
        kill(e->pid, SIGKILL);
        waitpid(e->pid, NULL, 0);
    }
    e->pid = 0;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_jredis.XXXXXX");
    if (!mkdtemp(e->dir)) {
        free(e);
        return -1;
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    rota_jredis_stop(e->jr, 0);
    server_kill(e);
    char path[128];
    const char *files[] = {"r.sock", "pw", "empty"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", e->dir, files[i]);
        unlink(path);
    }
    rmdir(e->dir);
    free(e);
    return 0;
}

/* ---- helpers ---- */

static struct rota_jredis_opts opts(const struct env *e, const char *prefix)
{
    return (struct rota_jredis_opts){
        .host = "127.0.0.1",
        .port = (uint32_t)e->port,
        .socket = e->sock[0] ? e->sock : NULL,
        .password = e->pass,
        .prefix = prefix,
        .stream_max = 100000,
        .ttl_ns = 60 * S,
        .buffer = 10000,
    };
}

static void start(struct env *e, const struct rota_jredis_opts *o)
{
    char err[256] = "";
    int rc = rota_jredis_start(o, &e->jr, err, sizeof(err));
    if (rc)
        fail_msg("rota_jredis_start: %d %s", rc, err);
}

/* Record "i" of field "field": the field's name, a NUL, the number (binary-safe). */
static size_t record(char *buf, size_t n, const char *field, unsigned i)
{
    int k = snprintf(buf, n, "%s", field ? field : "-") + 1;
    return (size_t)k + (size_t)snprintf(buf + k, n - (size_t)k, "%u", i);
}

static void field_of(char *buf, size_t n, unsigned id)
{
    snprintf(buf, n, "a:%x", id);
}

/* Push and check that it did not wait. */
static void push(struct rota_jredis *jr, const char *field, unsigned i, int64_t at, bool force)
{
    char rec[64];
    size_t len = record(rec, sizeof(rec), field, i);
    uint64_t t0 = mono_ns();
    rota_jredis_push(jr, field, rec, len, at, force);
    uint64_t took = mono_ns() - t0;
    if (took > PUSH_BOUND_NS)
        fail_msg("push %u took %llu ms: it waited on Redis", i,
                 (unsigned long long)(took / MS));
}

/* Poll the stats of "jr" into "st" until "cond" holds, failing after WAIT_S. */
#define WAIT_FOR(jr, st, cond)                                                                 \
    do {                                                                                       \
        uint64_t t0_ = mono_ns();                                                              \
        for (;;) {                                                                             \
            rota_jredis_stats(jr, &(st));                                                      \
            if (cond)                                                                          \
                break;                                                                         \
            if (mono_ns() - t0_ > WAIT_S * S)                                                  \
                fail_msg("line %d: no \"%s\" within %d s: connected %d queued %llu written "   \
                         "%llu dropped %llu errors %llu, last error \"%s\"",                   \
                         __LINE__, #cond, WAIT_S, (st).connected,                              \
                         (unsigned long long)(st).queued, (unsigned long long)(st).written,    \
                         (unsigned long long)(st).dropped, (unsigned long long)(st).errors,    \
                         (st).last_error);                                                     \
            nap_ms(5);                                                                         \
        }                                                                                      \
    } while (0)

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r)
        fail_msg("%s: %s", fmt, c->errstr);
    return r;
}

static long long int_of(redisContext *c, const char *fmt, const char *key)
{
    redisReply *r = cmd(c, fmt, key);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* HGET "key" "field" equals "want" of "len" bytes. */
static void assert_hget(redisContext *c, const char *key, const char *field, const void *want,
                        size_t len)
{
    redisReply *r = cmd(c, "HGET %s %s", key, field);
    if (r->type != REDIS_REPLY_STRING || r->len != len || memcmp(r->str, want, len))
        fail_msg("HGET %s %s: type %d, %zu bytes, not the %zu expected", key, field, r->type,
                 r->type == REDIS_REPLY_STRING ? r->len : 0, len);
    freeReplyObject(r);
}

/* The latest record of each of "ids" fields among records 0..n-1, record i being of
 * field i % ids except every 7th, which has none. */
static unsigned latest_of(unsigned id, unsigned ids, unsigned n)
{
    unsigned last = 0;
    for (unsigned i = 0; i < n; i++)
        if (i % 7 != 3 && i % ids == id)
            last = i;
    return last;
}

/* Push records 0..n-1 as latest_of describes, at "base" + i. */
static void push_many(struct rota_jredis *jr, unsigned first, unsigned n, unsigned ids,
                      int64_t base)
{
    char f[16];
    for (unsigned i = first; i < first + n; i++) {
        field_of(f, sizeof(f), i % ids);
        push(jr, i % 7 == 3 ? NULL : f, i, base + i, false);
    }
}

/* ---- cases ---- */

static void test_jredis_batches_reach_stream_and_hash(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    server_start(e);
    struct rota_jredis_opts o = opts(e, "rota:t1");
    start(e, &o);
    const unsigned n = 1000, ids = 16;
    const int64_t base = 1700000000000000000;
    push_many(e->jr, 0, n, ids, base);
    rota_jredis_flush(e->jr);
    struct rota_jredis_stats st;
    WAIT_FOR(e->jr, st, st.written == n);
    assert_true(st.connected);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.capacity, 10000);
    assert_true(st.batches >= 1);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.oldest_queued, 0);
    assert_true(st.last_write_at > 0);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", e->port);
    assert_string_equal(st.target, target);
    assert_string_equal(st.last_error, "");
    assert_false(rota_jredis_want_full(e->jr));

    redisContext *c = connect_own(e);
    assert_non_null(c);
    assert_int_equal(int_of(c, "XLEN %s", "rota:t1:stream"), n);
    /* The stream's first entry: field "r", the record byte for byte (a NUL inside). */
    redisReply *r = cmd(c, "XRANGE rota:t1:stream - + COUNT 1");
    char rec[64], f[16];
    field_of(f, sizeof(f), 0);
    size_t len = record(rec, sizeof(rec), f, 0);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    redisReply *kv = r->element[0]->element[1];
    assert_int_equal(kv->elements, 2);
    assert_string_equal(kv->element[0]->str, "r");
    assert_int_equal(kv->element[1]->len, len);
    assert_memory_equal(kv->element[1]->str, rec, len);
    freeReplyObject(r);
    /* The hash: the latest record per field, and "at" the newest record's. */
    assert_int_equal(int_of(c, "HLEN %s", "rota:t1:state"), ids + 1);
    for (unsigned id = 0; id < ids; id++) {
        field_of(f, sizeof(f), id);
        unsigned last = latest_of(id, ids, n);
        len = record(rec, sizeof(rec), f, last);
        assert_hget(c, "rota:t1:state", f, rec, len);
    }
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)(base + n - 1)); /* 999 % 7 != 3 */
    assert_hget(c, "rota:t1:state", "at", at, strlen(at));
    long long ttl = int_of(c, "TTL %s", "rota:t1:stream");
    assert_true(ttl > 0 && ttl <= 60);
    ttl = int_of(c, "TTL %s", "rota:t1:state");
    assert_true(ttl > 0 && ttl <= 60);
    redisFree(c);
}

static void test_jredis_stream_is_capped(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    server_start(e);
    struct rota_jredis_opts o = opts(e, "rota:cap");
    o.stream_max = 10;
    start(e, &o);
    push_many(e->jr, 0, 2000, 4, 1);
    rota_jredis_flush(e->jr);
    struct rota_jredis_stats st;
    WAIT_FOR(e->jr, st, st.written == 2000);
    redisContext *c = connect_own(e);
    assert_non_null(c);
    /* MAXLEN ~ trims whole nodes (100 entries each by default): far below 2000. */
    long long len = int_of(c, "XLEN %s", "rota:cap:stream");
    assert_true(len >= 10 && len <= 300);
    redisFree(c);
}

/* What load handed over: one record per field, the latest. */
struct got {
    unsigned calls;
    int stop_after; /* return 42 after this many calls; 0 = never */
    char rec[32][64];
    size_t len[32];
};

static int collect(void *arg, const void *rec, size_t len)
{
    struct got *g = arg;
    if (g->calls < 32 && len <= sizeof(g->rec[0])) {
        memcpy(g->rec[g->calls], rec, len);
        g->len[g->calls] = len;
    }
    g->calls++;
    return g->stop_after && (int)g->calls >= g->stop_after ? 42 : 0;
}

static void test_jredis_load_returns_every_field(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    server_start(e);
    struct rota_jredis_opts o = opts(e, "rota:ld");
    start(e, &o);
    const unsigned n = 500, ids = 20;
    push_many(e->jr, 0, n, ids, 5000);
    rota_jredis_flush(e->jr);
    struct rota_jredis_stats st;
    WAIT_FOR(e->jr, st, st.written == n);

    struct got g = {0};
    int64_t at = -1;
    char err[256] = "";
    int rc = rota_jredis_load(&o, 1000, collect, &g, &at, err, sizeof(err));
    if (rc)
        fail_msg("load: %d %s", rc, err);
    assert_int_equal(g.calls, ids);
    assert_int_equal(at, 5000 + n - 1);
    bool seen[20] = {0};
    for (unsigned k = 0; k < g.calls; k++) {
        unsigned id;
        assert_int_equal(sscanf(g.rec[k], "a:%x", &id), 1);
        assert_true(id < ids && !seen[id]);
        seen[id] = true;
        char f[16], rec[64];
        field_of(f, sizeof(f), id);
        size_t len = record(rec, sizeof(rec), f, latest_of(id, ids, n));
        assert_int_equal(g.len[k], len);
        assert_memory_equal(g.rec[k], rec, len);
    }

    /* A non-zero return from the callback stops the walk and is returned. */
    struct got g2 = {.stop_after = 3};
    assert_int_equal(rota_jredis_load(&o, 1000, collect, &g2, &at, err, sizeof(err)), 42);
    assert_int_equal(g2.calls, 3);

    /* A prefix nothing was written under. */
    struct rota_jredis_opts none = opts(e, "rota:nothing");
    struct got g3 = {0};
    assert_int_equal(rota_jredis_load(&none, 1000, collect, &g3, &at, err, sizeof(err)),
                     -ENOENT);
    assert_int_equal(g3.calls, 0);
}

static void test_jredis_load_unreachable_fails_fast(void **state)
{
    struct env *e = *state;
    e->port = free_port(); /* nothing listens */
    struct rota_jredis_opts o = opts(e, "rota:x");
    struct got g = {0};
    int64_t at = 0;
    char err[256] = "", target[64];
    uint64_t t0 = mono_ns();
    int rc = rota_jredis_load(&o, 5000, collect, &g, &at, err, sizeof(err));
    uint64_t took = mono_ns() - t0;
    assert_int_equal(rc, -ECONNREFUSED);
    snprintf(target, sizeof(target), "redis 127.0.0.1:%d: connect:", e->port);
    if (strncmp(err, target, strlen(target)))
        fail_msg("error \"%s\" does not start with \"%s\"", err, target);
    assert_non_null(strstr(err, "refused"));
    assert_true(took < 2 * S); /* refused at once, not after the 5 s timeout */
    assert_int_equal(g.calls, 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_jredis_password_references(void **state)
{
    struct env *e = *state;
    char *pw = NULL, err[256] = "", ref[160];

    setenv("TEST_JREDIS_PW", PASSWORD, 1);
    assert_int_equal(rota_jredis_password("env:TEST_JREDIS_PW", &pw, err, sizeof(err)), 0);
    assert_string_equal(pw, PASSWORD);
    free(pw);
    pw = NULL;

    unsetenv("TEST_JREDIS_UNSET");
    assert_true(rota_jredis_password("env:TEST_JREDIS_UNSET", &pw, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "env:TEST_JREDIS_UNSET"));
    assert_null(pw);

    write_file(e->dir, "pw", PASSWORD "\r\nsecond line\n");
    snprintf(ref, sizeof(ref), "file:%s/pw", e->dir);
    assert_int_equal(rota_jredis_password(ref, &pw, err, sizeof(err)), 0);
    assert_string_equal(pw, PASSWORD);
    free(pw);
    pw = NULL;

    snprintf(ref, sizeof(ref), "file:%s/missing", e->dir);
    assert_int_equal(rota_jredis_password(ref, &pw, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, ref));
    assert_null(pw);

    write_file(e->dir, "empty", "");
    snprintf(ref, sizeof(ref), "file:%s/empty", e->dir);
    assert_true(rota_jredis_password(ref, &pw, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, ref));

    /* Not a reference: perhaps the secret itself, which must not be repeated. */
    assert_int_equal(rota_jredis_password(PASSWORD, &pw, err, sizeof(err)), -EINVAL);
    assert_null(strstr(err, PASSWORD));
    assert_null(pw);
}

static void test_jredis_password_auth(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    e->pass = PASSWORD;
    server_start(e);
    char *pw = NULL, err[256] = "";
    setenv("TEST_JREDIS_PW", PASSWORD, 1);
    assert_int_equal(rota_jredis_password("env:TEST_JREDIS_PW", &pw, err, sizeof(err)), 0);

    /* The right password: records arrive, load reads them. */
    struct rota_jredis_opts o = opts(e, "rota:pw");
    o.password = pw;
    start(e, &o);
    push_many(e->jr, 0, 50, 5, 1);
    rota_jredis_flush(e->jr);
    struct rota_jredis_stats st;
    WAIT_FOR(e->jr, st, st.written == 50);
    rota_jredis_stop(e->jr, 0);
    e->jr = NULL;
    struct got g = {0};
    int64_t at;
    assert_int_equal(rota_jredis_load(&o, 1000, collect, &g, &at, err, sizeof(err)), 0);
    assert_int_equal(g.calls, 5);

    /* A wrong one: the sender says AUTH was refused, never what it sent. */
    const char *wrong = "wrong-pass-77e1";
    o.password = wrong;
    start(e, &o);
    WAIT_FOR(e->jr, st, st.errors >= 1);
    assert_false(st.connected);
    assert_non_null(strstr(st.last_error, "AUTH"));
    assert_null(strstr(st.last_error, wrong));
    assert_null(strstr(st.target, wrong));
    assert_int_equal(rota_jredis_load(&o, 1000, collect, &g, &at, err, sizeof(err)), -EACCES);
    assert_non_null(strstr(err, "AUTH refused"));
    assert_null(strstr(err, wrong));

    /* None at all: refused too, with Redis' reason. */
    o.password = NULL;
    assert_int_equal(rota_jredis_load(&o, 1000, collect, &g, &at, err, sizeof(err)), -EACCES);
    assert_non_null(strstr(err, "NOAUTH"));
    free(pw);
}

static void test_jredis_unix_socket(void **state)
{
    struct env *e = *state;
    snprintf(e->sock, sizeof(e->sock), "%s/r.sock", e->dir);
    server_start(e);
    struct rota_jredis_opts o = opts(e, "rota:unix");
    o.ttl_ns = 0;
    o.host = NULL;
    start(e, &o);
    push_many(e->jr, 0, 100, 10, 1);
    rota_jredis_flush(e->jr);
    struct rota_jredis_stats st;
    WAIT_FOR(e->jr, st, st.written == 100);
    char target[160];
    snprintf(target, sizeof(target), "unix:%s", e->sock);
    assert_string_equal(st.target, target);
    struct got g = {0};
    int64_t at;
    char err[256] = "";
    assert_int_equal(rota_jredis_load(&o, 1000, collect, &g, &at, err, sizeof(err)), 0);
    assert_int_equal(g.calls, 10);
    assert_int_equal(at, 100);
    redisContext *c = connect_own(e);
    assert_non_null(c);
    assert_int_equal(int_of(c, "TTL %s", "rota:unix:state"), -1); /* no ttl: no expiry */
    redisFree(c);
}

static void test_jredis_outage_drops_oldest_then_resyncs(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    server_start(e);
    struct rota_jredis_opts o = opts(e, "rota:out");
    o.buffer = 100;
    start(e, &o);
    const unsigned ids = 10, before = 200, during = 1000;
    struct rota_jredis_stats st;
    for (unsigned i = 0; i < before; i += 50) { /* within the bound: nothing dropped */
        push_many(e->jr, i, 50, ids, 1);
        rota_jredis_flush(e->jr);
        WAIT_FOR(e->jr, st, st.written == i + 50 && st.queued == 0);
    }
    assert_int_equal(st.dropped, 0);

    /* Redis dies; pushes go on, none waits, the oldest records give way. */
    server_kill(e);
    push_many(e->jr, before, during, ids, 1);
    WAIT_FOR(e->jr, st, !st.connected && st.queued == 100 && st.dropped == during - 100);
    assert_int_equal(st.written, before);
    assert_int_equal(st.oldest_queued, 1 + before + during - 100);
    assert_true(st.errors >= 1);
    assert_true(st.last_error[0] != 0);
    assert_false(rota_jredis_want_full(e->jr)); /* not while Redis is away */
    nap_ms(150);
    assert_false(rota_jredis_want_full(e->jr));

    /* Back on the same port: the buffer drains, then one call for a full resync. */
    server_start(e);
    WAIT_FOR(e->jr, st, st.connected && st.queued == 0 && st.written == before + 100);
    assert_int_equal(st.dropped, during - 100);
    assert_true(st.reconnects >= 1);
    assert_true(rota_jredis_want_full(e->jr));
    assert_false(rota_jredis_want_full(e->jr));

    redisContext *c = connect_own(e);
    assert_non_null(c);
    assert_int_equal(int_of(c, "XLEN %s", "rota:out:stream"), 100);
    for (unsigned id = 0; id < ids; id++) {
        char f[16], rec[64];
        field_of(f, sizeof(f), id);
        size_t len = record(rec, sizeof(rec), f, latest_of(id, ids, before + during));
        assert_hget(c, "rota:out:state", f, rec, len);
    }
    redisFree(c);
}

static void test_jredis_push_never_waits_for_a_hung_redis(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    server_start(e);
    struct rota_jredis_opts o = opts(e, "rota:hung");
    start(e, &o);
    struct rota_jredis_stats st;
    WAIT_FOR(e->jr, st, st.connected);

    /* Redis stops answering (its sockets stay open): the sender's batch waits for its
     * 1 s timeout, its reconnection too; pushes and stats do not. */
    assert_int_equal(kill(e->pid, SIGSTOP), 0);
    unsigned n = 0;
    uint64_t t0 = mono_ns();
    while (mono_ns() - t0 < 1500 * MS) {
        push_many(e->jr, n, 5, 5, 1);
        rota_jredis_flush(e->jr);
        rota_jredis_stats(e->jr, &st);
        n += 5;
        nap_ms(10);
    }
    WAIT_FOR(e->jr, st, !st.connected && st.errors >= 1);
    assert_non_null(strstr(st.last_error, "timed out"));
    assert_int_equal(st.written, 0);
    assert_int_equal(st.queued, n);

    assert_int_equal(kill(e->pid, SIGCONT), 0);
    WAIT_FOR(e->jr, st, st.connected && st.queued == 0 && st.written == n);
    assert_int_equal(st.dropped, 0);
    /* nothing dropped, but the connection was made again: Redis may have lost what it
     * had, so the journal is asked once for every state */
    assert_true(st.reconnects >= 1);
    assert_true(rota_jredis_want_full(e->jr));
    assert_false(rota_jredis_want_full(e->jr));
    redisContext *c = connect_own(e);
    assert_non_null(c);
    for (unsigned id = 0; id < 5; id++) {
        char f[16], rec[64];
        field_of(f, sizeof(f), id);
        size_t len = record(rec, sizeof(rec), f, latest_of(id, 5, n));
        assert_hget(c, "rota:hung:state", f, rec, len);
    }
    redisFree(c);
}

static void test_jredis_force_goes_over_the_bound(void **state)
{
    struct env *e = *state;
    e->port = free_port(); /* nothing listens: the records stay */
    struct rota_jredis_opts o = opts(e, "rota:force");
    o.buffer = 10;
    start(e, &o);
    char f[16];
    field_of(f, sizeof(f), 1);
    for (unsigned i = 0; i < 10; i++)
        push(e->jr, f, i, 100 + i, false);
    for (unsigned i = 10; i < 15; i++)
        push(e->jr, f, i, 100 + i, true);
    struct rota_jredis_stats st;
    rota_jredis_stats(e->jr, &st);
    assert_int_equal(st.queued, 15);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.oldest_queued, 100);
    /* Over the bound, a plain push drops one, the oldest: the excess stays. */
    push(e->jr, f, 15, 115, false);
    rota_jredis_stats(e->jr, &st);
    assert_int_equal(st.queued, 15);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.oldest_queued, 101);
    assert_false(st.connected);
}

static void test_jredis_stop_flushes_what_is_queued(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    server_start(e);
    struct rota_jredis_opts o = opts(e, "rota:stop");
    start(e, &o);
    push_many(e->jr, 0, 3000, 8, 1);
    rota_jredis_stop(e->jr, 5 * S);
    e->jr = NULL;
    redisContext *c = connect_own(e);
    assert_non_null(c);
    assert_int_equal(int_of(c, "XLEN %s", "rota:stop:stream"), 3000);
    redisFree(c);
}

static void test_jredis_stop_is_bounded_when_unreachable(void **state)
{
    struct env *e = *state;
    e->port = free_port();
    struct rota_jredis_opts o = opts(e, "rota:gone");
    start(e, &o);
    push_many(e->jr, 0, 100, 8, 1);
    nap_ms(50);
    uint64_t t0 = mono_ns();
    rota_jredis_stop(e->jr, 300 * MS);
    e->jr = NULL;
    uint64_t took = mono_ns() - t0;
    assert_true(took < 300 * MS + 700 * MS); /* the bound, not a backoff of up to 5 s */

    start(e, &o);
    push_many(e->jr, 0, 100, 8, 1);
    t0 = mono_ns();
    rota_jredis_stop(e->jr, 0);
    e->jr = NULL;
    assert_true(mono_ns() - t0 < 500 * MS);

    /* NULL is fine everywhere. */
    rota_jredis_stop(NULL, 0);
    rota_jredis_push(NULL, "a:1", "x", 1, 1, false);
    rota_jredis_flush(NULL);
    assert_false(rota_jredis_want_full(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jredis_batches_reach_stream_and_hash, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_jredis_stream_is_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jredis_load_returns_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jredis_load_unreachable_fails_fast, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_jredis_password_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jredis_password_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jredis_unix_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jredis_outage_drops_oldest_then_resyncs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_jredis_push_never_waits_for_a_hung_redis, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_jredis_force_goes_over_the_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jredis_stop_flushes_what_is_queued, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_jredis_stop_is_bounded_when_unreachable, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
