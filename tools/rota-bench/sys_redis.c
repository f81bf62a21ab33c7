/*
 * sys_redis.c - rota-bench's Redis peer: selection as a Lua script on a real
 * redis-server, the design that shares state between processes (and hosts) through Redis.
 *
 * DESIGN
 * setup starts redis-server on a free loopback port (no persistence), loads every
 * account as a hash "a:<i>" and the two scripts. A selection is one EVALSHA of SELECT:
 * for each tier, read the candidates (all up to 64, else 8 sampled with seeds the caller
 * passes), apply the same eligibility and the same hybrid pick, and commit (last use, in
 * flight, GCRA, count) atomically inside the script. A report is one EVALSHA of REPORT.
 * The writer rewrites "used" and "base" with HSET. Each selector has its own connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "rng.h"

static const char select_lua[] =
    "local now, ntiers, r = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local seed = tonumber(ARGV[4])\n"
    "for t = 0, ntiers - 1 do\n"
    "  local lo, hi = tonumber(ARGV[5 + 2 * t]), tonumber(ARGV[6 + 2 * t])\n"
    "  local idx = {}\n"
    "  if hi - lo <= 64 then for i = lo, hi - 1 do idx[#idx + 1] = i end\n"
    "  else for j = 1, 8 do seed = (seed * 1103515245 + 12345) % 2147483648\n"
    "    idx[#idx + 1] = lo + seed % (hi - lo) end end\n"
    "  local cand = {}\n"
    "  for _, i in ipairs(idx) do\n"
    "    local v = redis.call('HMGET', 'a:' .. i, 'used', 'limit', 'base', 'usage', 'last',\n"
    "                         'cd', 'fails', 'greq', 'gtok')\n"
    "    local used, limit, base, usage = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), "
    "tonumber(v[4])\n"
    "    local last, cd, fails = tonumber(v[5]), tonumber(v[6]), tonumber(v[7])\n"
    "    local greq, gtok = tonumber(v[8]), tonumber(v[9])\n"
    "    local f = (used + usage - base) / limit\n"
    "    if cd <= now and fails < 5 and f < 0.8 and math.max(greq, now) + 60 - now <= 60e9\n"
    "       and math.max(gtok, now) + 1.5 - now <= 60e9 then\n"
    "      local rec = 0\n"
    "      if last > 0 then rec = math.max(0, 1 - (now - last) / 86400e9) end\n"
    "      cand[#cand + 1] = {i, 0.6 * (1 - f) + 0.4 * rec, last, greq, gtok}\n"
    "    end\n"
    "  end\n"
    "  if #cand > 0 then\n"
    "    local pick\n"
    "    if r < 0.1 then\n"
    "      pick = cand[1]\n"
    "      for _, c in ipairs(cand) do if c[3] < pick[3] then pick = c end end\n"
    "    else\n"
    "      table.sort(cand, function(a, b) return a[2] > b[2] end)\n"
    "      local best = -1\n"
    "      for k = 1, math.min(3, #cand) do\n"
    "        seed = (seed * 1103515245 + 12345) % 2147483648\n"
    "        local s = cand[k][2] * (0.95 + 0.1 * seed / 2147483648)\n"
    "        if s > best then best = s; pick = cand[k] end\n"
    "      end\n"
    "    end\n"
    "    local key = 'a:' .. pick[1]\n"
    "    redis.call('HSET', key, 'last', now, 'greq', math.max(pick[4], now) + 60,\n"
    "               'gtok', math.max(pick[5], now) + 1.5)\n"
    "    redis.call('HINCRBY', key, 'inflight', 1)\n"
    "    redis.call('HINCRBY', key, 'sel', 1)\n"
    "    return pick[1]\n"
    "  end\n"
    "end\n"
    "return -1\n";

static const char report_lua[] = "local key = 'a:' .. ARGV[1]\n"
                                 "redis.call('HINCRBY', key, 'inflight', -1)\n"
                                 "redis.call('HINCRBY', key, 'usage', 1)\n"
                                 "redis.call('HINCRBY', key, 'tokens', tonumber(ARGV[2]))\n"
                                 "redis.call('HINCRBY', key, 'succ', 1)\n"
                                 "redis.call('HSET', key, 'fails', 0)\n"
                                 "return 0\n";

struct rd_state {
    const struct bench_cfg *c;
    pid_t server;
    int port;
    char sha_select[48], sha_report[48];
    char tiers_arg[8 * 2][16];
};

struct rd_ctx {
    struct rd_state *s;
    redisContext *rc;
    struct rota_rng rng;
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (void *)&a, sizeof(a)) || getsockname(fd, (void *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *connect_to(int port)
{
    struct timeval tv = {1, 0};
    for (int i = 0; i < 100; i++) {
        redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (rc && !rc->err)
            return rc;
        if (rc)
            redisFree(rc);
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int load_script(redisContext *rc, const char *src, char *sha)
{
    redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", src);
    int ok = r && r->type == REDIS_REPLY_STRING && r->len < 48;
    if (ok)
        memcpy(sha, r->str, r->len + 1);
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -EPROTO;
}

static void stop_server(struct rd_state *s)
{
    if (s->server > 0) {
        kill(s->server, SIGTERM);
        waitpid(s->server, NULL, 0);
        s->server = 0;
    }
}

static int setup(const struct bench_cfg *c, void **state, char *err, size_t n)
{
    struct rd_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->c = c;
    s->port = free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    s->server = fork();
    if (s->server == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--protected-mode", "yes", (char *)NULL);
        _exit(127);
    }
    redisContext *rc = s->port > 0 && s->server > 0 ? connect_to(s->port) : NULL;
    if (!rc) {
        snprintf(err, n,
                 "cannot start or reach redis-server on 127.0.0.1:%d (is it installed?)",
                 s->port);
        stop_server(s);
        free(s);
        return -ECONNREFUSED;
    }
    for (uint32_t i = 0; i < c->accounts; i++)
        redisAppendCommand(rc,
                           "HSET a:%u used 0 limit %llu base 0 usage 0 last 0 cd 0 fails 0 "
                           "greq 0 gtok 0 inflight 0 sel 0",
                           i, (unsigned long long)BENCH_LIMIT);
    int rcode = 0;
    for (uint32_t i = 0; i < c->accounts; i++) {
        redisReply *r;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
            rcode = -EPROTO;
        else
            freeReplyObject(r);
    }
    if (!rcode)
        rcode = load_script(rc, select_lua, s->sha_select);
    if (!rcode)
        rcode = load_script(rc, report_lua, s->sha_report);
    redisFree(rc);
    for (uint32_t t = 0; t < c->tiers; t++) {
        snprintf(s->tiers_arg[2 * t], 16, "%u", bench_tier_start(c, t));
        snprintf(s->tiers_arg[2 * t + 1], 16, "%u", bench_tier_start(c, t + 1));
    }
    if (rcode) {
        snprintf(err, n, "loading redis: protocol error");
        stop_server(s);
        free(s);
        return rcode;
    }
    *state = s;
    return 0;
}

static int worker_init(void *state, int id, void **ctx)
{
    struct rd_state *s = state;
    struct rd_ctx *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->s = s;
    x->rc = connect_to(s->port);
    x->rng.s = 0x2545f4914f6cdd1dull * (uint64_t)(id + 1);
    if (!x->rc) {
        free(x);
        return -ECONNREFUSED;
    }
    *ctx = x;
    return 0;
}

static int op(void *ctx)
{
    struct rd_ctx *x = ctx;
    struct rd_state *s = x->s;
    const char *argv[4 + 4 + 16];
    char now[24], ntiers[8], r[24], seed[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)rota_clock_mono());
    snprintf(ntiers, sizeof(ntiers), "%u", s->c->tiers);
    snprintf(r, sizeof(r), "%.6f", rota_rng_unit(&x->rng));
    snprintf(seed, sizeof(seed), "%u", (unsigned)(rota_rng_next(&x->rng) & 0x7fffffff));
    int argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = s->sha_select;
    argv[argc++] = "0";
    argv[argc++] = now;
    argv[argc++] = ntiers;
    argv[argc++] = r;
    argv[argc++] = seed;
    for (uint32_t t = 0; t < 2 * s->c->tiers; t++)
        argv[argc++] = s->tiers_arg[t];
    redisReply *rep = redisCommandArgv(x->rc, argc, argv, NULL);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    long long chosen = rep->integer;
    freeReplyObject(rep);
    if (chosen < 0)
        return 1;
    rep = redisCommand(x->rc, "EVALSHA %s 0 %lld %d", s->sha_report, chosen, BENCH_TOKENS);
    int ok = rep && rep->type == REDIS_REPLY_INTEGER;
    if (rep)
        freeReplyObject(rep);
    return ok ? 0 : -1;
}

static int writer_init(void *state, void **wctx)
{
    struct rd_state *s = state;
    redisContext *rc = connect_to(s->port);
    *wctx = rc;
    return rc ? 0 : -ECONNREFUSED;
}

static void write_one(void *wctx, uint32_t i, uint64_t round)
{
    uint64_t used = bench_used(i, round);
    redisReply *r = redisCommand(wctx, "EVAL %s 1 a:%u %llu",
                                 "redis.call('HSET', KEYS[1], 'used', ARGV[1], 'base', "
                                 "redis.call('HGET', KEYS[1], 'usage')) return 0",
                                 i, (unsigned long long)used);
    if (r)
        freeReplyObject(r);
}

static void counts(void *state, uint64_t *out)
{
    struct rd_state *s = state;
    redisContext *rc = connect_to(s->port);
    for (uint32_t i = 0; rc && i < s->c->accounts; i++) {
        redisReply *r = redisCommand(rc, "HGET a:%u sel", i);
        out[i] = r && r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
        if (r)
            freeReplyObject(r);
    }
    if (rc)
        redisFree(rc);
}

static size_t bytes(void *state)
{
    struct rd_state *s = state;
    redisContext *rc = connect_to(s->port);
    size_t used = 0;
    redisReply *r = rc ? redisCommand(rc, "MEMORY STATS") : NULL;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            !strcmp(r->element[i]->str, "dataset.bytes"))
            used = (size_t)r->element[i + 1]->integer;
    if (r)
        freeReplyObject(r);
    if (rc)
        redisFree(rc);
    return used;
}

static void teardown(void *state)
{
    struct rd_state *s = state;
    stop_server(s);
    free(s);
}

const struct bench_sys bench_redis = {
    .name = "redis",
    .setup = setup,
    .worker_init = worker_init,
    .op = op,
    .writer_init = writer_init,
    .write_one = write_one,
    .counts = counts,
    .bytes = bytes,
    .teardown = teardown,
};
