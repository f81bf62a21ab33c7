/*
 * jredis_conn.c - the Redis backend's connections: dialling with AUTH and SELECT, errors
 * in words, SIGPIPE kept away, password references, and reading the state at recovery.
 * The sender (jredis.c) and rota_jredis_load share these.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "jredis_int.h"

/* ---- hiredis errors and SIGPIPE ---- */

int rota_jr_ctx_error(const redisContext *c, int saved, const char *what, char *msg, size_t n)
{
    if (c->err == REDIS_ERR_IO && (saved == EAGAIN || saved == EWOULDBLOCK)) {
        snprintf(msg, n, "%s: timed out", what);
        return -ETIMEDOUT;
    }
    snprintf(msg, n, "%s: %s", what, c->errstr[0] ? c->errstr : "connection lost");
    switch (c->err) {
    case REDIS_ERR_IO:
        return saved > 0 ? -saved : -EIO;
    case REDIS_ERR_EOF:
        return -ECONNRESET;
    case REDIS_ERR_PROTOCOL:
        return -EPROTO;
    case REDIS_ERR_OOM:
        return -ENOMEM;
#ifdef REDIS_ERR_TIMEOUT /* hiredis 1.x */
    case REDIS_ERR_TIMEOUT:
        return -ETIMEDOUT;
#endif
    default:
        return -EIO;
    }
}

void rota_jr_pipe_block(sigset_t *old, bool *pending)
{
    sigset_t s, p;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigpending(&p);
    *pending = sigismember(&p, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, old);
}

void rota_jr_pipe_restore(const sigset_t *old, bool pending)
{
    sigset_t s, p;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigpending(&p);
    if (!pending && sigismember(&p, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- connecting ---- */

char *rota_jr_key(const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(suffix) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s:%s", prefix, suffix);
    return k;
}

void rota_jr_fmt_target(const struct rota_jredis_opts *o, char *buf, size_t n)
{
    if (o->socket)
        snprintf(buf, n, "unix:%s", o->socket);
    else
        snprintf(buf, n, "%s:%u", o->host ? o->host : "127.0.0.1", o->port);
}

int rota_jr_call(redisContext *c, int argc, const char **argv, const char *what, int refused,
                 char *msg, size_t n)
{
    size_t len[3]; /* AUTH user password, the longest */
    if (argc < 1 || argc > 3)
        return snprintf(msg, n, "%s: %d arguments", what, argc), -EINVAL;
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    redisReply *rep = redisCommandArgv(c, argc, argv, len);
    if (!rep)
        return rota_jr_ctx_error(c, errno, what, msg, n);
    int rc = 0;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(msg, n, "%s refused: %.*s", what, (int)rep->len, rep->str);
        rc = refused;
    }
    freeReplyObject(rep);
    return rc;
}

int rota_jr_dial(const struct rota_jredis_opts *o, struct timeval tv, redisContext **out,
                 char *msg, size_t n)
{
    redisContext *c =
        o->socket ? redisConnectUnixWithTimeout(o->socket, tv)
                  : redisConnectWithTimeout(o->host ? o->host : "127.0.0.1", (int)o->port, tv);
    int saved = errno;
    if (!c) {
        snprintf(msg, n, "connect: out of memory");
        return -ENOMEM;
    }
    int rc = c->err ? rota_jr_ctx_error(c, saved, "connect", msg, n) : 0;
    if (!rc && redisSetTimeout(c, tv) != REDIS_OK)
        rc = rota_jr_ctx_error(c, errno, "connect", msg, n);
    if (!rc && o->password) { /* AUTH [user] password: a user needs Redis 6 */
        const char *argv[] = {"AUTH", o->user ? o->user : o->password, o->password};
        rc = rota_jr_call(c, o->user ? 3 : 2, argv, "AUTH", -EACCES, msg, n);
    }
    if (!rc && o->db) {
        char db[16];
        snprintf(db, sizeof(db), "%u", o->db);
        const char *argv[] = {"SELECT", db};
        rc = rota_jr_call(c, 2, argv, "SELECT", -EINVAL, msg, n);
    }
    if (!rc && !o->password && !o->db) {
        const char *argv[] = {"PING"};
        rc = rota_jr_call(c, 1, argv, "PING", -EACCES, msg, n);
    }
    if (rc) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- password references ---- */

static int read_first_line(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    int rc = len < 0 && ferror(f) ? -EIO : 0;
    fclose(f);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = 0;
    if (!rc && len <= 0)
        rc = -ENODATA;
    if (rc) {
        if (line)
            explicit_bzero(line, cap);
        free(line);
        return rc;
    }
    *out = line;
    return 0;
}

int rota_jredis_password(const char *source, char **out, char *err, size_t n)
{
    if (source && !strncmp(source, "env:", 4) && source[4]) {
        const char *v = getenv(source + 4);
        if (!v || !v[0]) {
            snprintf(err, n, "redis password %s: %s", source, v ? "empty" : "not set");
            return v ? -ENODATA : -ENOENT;
        }
        *out = strdup(v);
        if (!*out) {
            snprintf(err, n, "redis password %s: out of memory", source);
            return -ENOMEM;
        }
        return 0;
    }
    if (source && !strncmp(source, "file:", 5) && source[5]) {
        int rc = read_first_line(source + 5, out);
        if (rc)
            snprintf(err, n, "redis password %s: %s", source,
                     rc == -ENODATA ? "empty" : strerror(-rc));
        return rc;
    }
    /* Not a reference: it may be the secret itself, so it is not repeated. */
    snprintf(err, n, "redis password: expected env:NAME or file:PATH");
    return -EINVAL;
}

/* ---- recovery ---- */

/* Walk HGETALL's reply "rep" (its shape checked). */
static int walk(const redisReply *rep, int (*fn)(void *, const void *, size_t), void *arg,
                int64_t *at, char *msg, size_t n)
{
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type != REDIS_REPLY_STRING) {
            snprintf(msg, n, "HGETALL: a reply of the wrong shape");
            return -EPROTO;
        }
    *at = 0;
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *k = rep->element[i], *v = rep->element[i + 1];
        if (k->len == 2 && !memcmp(k->str, "at", 2)) {
            char *end;
            errno = 0;
            long long x = strtoll(v->str, &end, 10);
            if (errno || end == v->str || *end || v->len != (size_t)(end - v->str)) {
                snprintf(msg, n, "HGETALL: field \"at\" is not a number");
                return -EPROTO;
            }
            *at = x;
            continue;
        }
        int rc = fn(arg, v->str, v->len);
        if (rc)
            return rc;
    }
    return 0;
}

static int load_from(redisContext *c, const char *k, int (*fn)(void *, const void *, size_t),
                     void *arg, int64_t *at, char *msg, size_t n)
{
    const char *argv[] = {"HGETALL", k};
    size_t len[] = {7, strlen(k)};
    redisReply *rep = redisCommandArgv(c, 2, argv, len);
    if (!rep)
        return rota_jr_ctx_error(c, errno, "HGETALL", msg, n);
    int rc;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(msg, n, "HGETALL %s refused: %.*s", k, (int)rep->len, rep->str);
        rc = -EPROTO;
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
        snprintf(msg, n, "HGETALL %s: a reply of the wrong shape", k);
        rc = -EPROTO;
    } else if (!rep->elements) {
        snprintf(msg, n, "%s does not exist", k); /* a hash is never empty */
        rc = -ENOENT;
    } else {
        rc = walk(rep, fn, arg, at, msg, n);
    }
    freeReplyObject(rep);
    return rc;
}

int rota_jredis_load(const struct rota_jredis_opts *o, int timeout_ms,
                     int (*fn)(void *arg, const void *rec, size_t len), void *arg, int64_t *at,
                     char *err, size_t n)
{
    char target[160], msg[200] = "";
    rota_jr_fmt_target(o, target, sizeof(target));
    if (!o->prefix || !o->prefix[0]) {
        snprintf(err, n, "redis %s: no key prefix", target);
        return -EINVAL;
    }
    char *k = rota_jr_key(o->prefix, "state");
    if (!k) {
        snprintf(err, n, "redis %s: out of memory", target);
        return -ENOMEM;
    }
    int ms = timeout_ms > 0 ? timeout_ms : 1;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    sigset_t old;
    bool pending;
    rota_jr_pipe_block(&old, &pending);
    redisContext *c = NULL;
    int rc = rota_jr_dial(o, tv, &c, msg, sizeof(msg));
    if (!rc)
        rc = load_from(c, k, fn, arg, at, msg, sizeof(msg));
    if (c)
        redisFree(c);
    rota_jr_pipe_restore(&old, pending);
    free(k);
    if (rc && rc != -ENOENT && msg[0] == 0)
        snprintf(msg, sizeof(msg), "stopped by the caller (%d)", rc);
    if (rc)
        snprintf(err, n, "redis %s: %s", target, msg);
    return rc;
}
