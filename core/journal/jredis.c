/*
 * jredis.c - the journal's Redis backend: a sender thread, its buffer, MULTI/EXEC batches.
 *
 * DESIGN
 * The journal thread calls rota_jredis_push; the sender thread (started by
 * rota_jredis_start, the only user of the hiredis connection) sends. They share the
 * buffer under one mutex, which neither holds across I/O: the sender takes a batch
 * (pointers to up to BATCH records at the front, left in place), sends it without the
 * lock, then takes the lock again to remove what Redis acknowledged. Records carry
 * consecutive sequence numbers, so a push that had to drop the oldest record while it was
 * in flight is seen: such a record leaves the buffer at once but its memory passes to the
 * sender ("busy_end" marks the batch), which frees it after the batch and counts it as
 * dropped only if the batch failed. So, whenever nothing is in flight,
 * pushed = written + dropped + queued.
 *
 * A push does not wake the sender, except when the buffer passes half its bound: the
 * sender sleeps up to TICK_NS while the buffer is empty, and once awake sends batch after
 * batch until it is empty, so records pushed during a round trip go out together.
 * rota_jredis_flush wakes it early. Without a connection it connects (eagerly, even with
 * nothing to send) unless backing off: 100 ms after a failure, doubling to 5 s. A
 * non-forced push into a full buffer drops the oldest record; a forced one goes over the
 * bound, and later non-forced pushes each drop one, so the excess drains but stays.
 *
 * Delivery is at least once: a batch whose replies time out may still be applied when a
 * stalled Redis resumes, and is sent again, so the stream may hold a record twice; the
 * hash converges all the same (the later write of a field carries the same or a newer
 * record).
 *
 * rota_jredis_stop gives the sender "flush_ns" to empty the buffer, clamping its connect
 * and command timeouts to what is left; an operation already under way when stop is
 * called may add up to its own timeout (1 s) to that. The sender runs with signals
 * blocked (but for faults): hiredis writes with write(2), which raises SIGPIPE when
 * Redis has gone. rota_jredis_load runs in the caller's thread and blocks SIGPIPE around
 * its work, taking back one it raised itself.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "jredis_int.h"

#define TICK_NS     (50 * ROTA_NS_PER_MS)
#define BACKOFF_MIN (100 * ROTA_NS_PER_MS)
#define BACKOFF_MAX (5000 * ROTA_NS_PER_MS)
#define OP_MS       1000                    /* connect and command timeout of the sender */
#define BATCH       512                     /* records per MULTI/EXEC */
#define PING_NS     (1000 * ROTA_NS_PER_MS) /* idle this long: check the connection */

/* One queued record in one allocation: its bytes, then its field's name. */
struct rec {
    int64_t at;
    size_t len;
    const char *field; /* into data, or NULL */
    unsigned char data[];
};

/* A record of a batch with a field, for keeping the latest per field. */
struct pick {
    const struct rec *rec;
    size_t i;
};

struct rota_jredis {
    /* Set by start, read-only after. */
    struct rota_jredis_opts o; /* strings point to the copies below */
    char *host, *socket, *user, *password, *k_stream, *k_state;
    char maxlen[24], ttl[24]; /* decimal; "" = no cap, no expiry */
    size_t bound;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu. The buffer: "count" records from ring[head] in a ring of "slots"; the one
     * at head has sequence number "head_seq". */
    struct rec **ring;
    size_t slots, head, count;
    uint64_t head_seq;
    uint64_t busy_end;     /* records numbered below are in the sender's batch */
    uint64_t busy_dropped; /* of those, how many pushes dropped from the buffer */
    bool lost;             /* records lost since rota_jredis_want_full said so */
    uint64_t lost_mark;    /* the sequence number past the newest one queued then */
    bool stopping;
    uint64_t deadline; /* monotonic ns: stop sending at this time */
    struct rota_jredis_stats st;

    /* The sender thread's own. */
    redisContext *c;
    bool ever;        /* connected once */
    uint64_t last_io; /* monotonic ns of the last exchange with Redis */
    struct rec *batch[BATCH];
    struct pick picks[BATCH];
    const char *argv[2 * BATCH + 4];
    size_t argl[2 * BATCH + 4];
};

/* ---- the buffer (under mu) ---- */

static void mark_lost(struct rota_jredis *r)
{
    r->lost = true;
    r->lost_mark = r->head_seq + r->count;
}

/* Remove the oldest record: freed and counted as dropped, or, when it is in the sender's
 * batch, left to the sender. */
static void drop_oldest(struct rota_jredis *r)
{
    struct rec *x = r->ring[r->head];
    r->ring[r->head] = NULL;
    r->head = (r->head + 1) % r->slots;
    r->count--;
    if (r->head_seq++ < r->busy_end) {
        r->busy_dropped++;
        return;
    }
    free(x);
    r->st.dropped++;
    mark_lost(r);
}

static int grow(struct rota_jredis *r)
{
    size_t slots = r->slots ? 2 * r->slots : 64;
    struct rec **ring = calloc(slots, sizeof(*ring));
    if (!ring)
        return -ENOMEM;
    for (size_t i = 0; i < r->count; i++)
        ring[i] = r->ring[(r->head + i) % r->slots];
    free(r->ring);
    r->ring = ring;
    r->slots = slots;
    r->head = 0;
    return 0;
}

/* The sender's batch of "k" records from number "lo" is done: remove what is still in
 * the buffer if Redis took it ("ok"), free what pushes dropped meanwhile. */
static void finish(struct rota_jredis *r, uint64_t lo, size_t k, bool ok)
{
    for (size_t i = 0; i < k; i++) {
        if (lo + i < r->head_seq) {
            free(r->batch[i]);
            continue;
        }
        if (!ok)
            break;
        r->ring[r->head] = NULL;
        r->head = (r->head + 1) % r->slots;
        r->count--;
        r->head_seq++;
        free(r->batch[i]);
    }
    if (ok) {
        r->st.written += k;
        r->st.batches++;
        r->st.last_write_at = rota_clock_wall();
    } else if (r->busy_dropped) {
        r->st.dropped += r->busy_dropped;
        mark_lost(r);
    }
    r->busy_dropped = 0;
    r->busy_end = 0;
}

/* ---- the sender ---- */

/* Remember a failure (mu held). */
static void failed(struct rota_jredis *r, const char *msg)
{
    r->st.connected = false;
    r->st.errors++;
    snprintf(r->st.last_error, sizeof(r->st.last_error), "%s", msg);
}

/* The timeout of the next operation (mu held): OP_MS, or what is left before the
 * deadline when stopping. */
static struct timeval op_timeout(const struct rota_jredis *r)
{
    uint64_t ns = OP_MS * ROTA_NS_PER_MS, now = rota_clock_mono();
    if (r->stopping)
        ns = r->deadline > now + ns ? ns : r->deadline > now ? r->deadline - now : 0;
    if (ns < ROTA_NS_PER_MS)
        ns = ROTA_NS_PER_MS;
    return (struct timeval){(time_t)(ns / ROTA_NS_PER_S),
                            (suseconds_t)(ns % ROTA_NS_PER_S / 1000)};
}

/* Connect (mu held, released meanwhile). 0 or -1. */
static int sender_connect(struct rota_jredis *r)
{
    struct timeval tv = op_timeout(r);
    char msg[160];
    pthread_mutex_unlock(&r->mu);
    int rc = rota_jr_dial(&r->o, tv, &r->c, msg, sizeof(msg));
    pthread_mutex_lock(&r->mu);
    if (rc) {
        failed(r, msg);
        return -1;
    }
    r->st.connected = true;
    r->st.reconnects += r->ever;
    /* After a reconnection Redis may have lost what it had (restarted empty, flushed):
     * once what is queued has gone out, the journal sends every state again. */
    if (r->ever)
        mark_lost(r);
    r->ever = true;
    r->last_io = rota_clock_mono();
    return 0;
}

/* Idle: check the connection is alive (mu held, released meanwhile), so a Redis that
 * went away while nothing was sent shows as disconnected. 0 or -1. */
static int sender_ping(struct rota_jredis *r)
{
    static const char *const ping[] = {"PING"};
    char msg[160];
    pthread_mutex_unlock(&r->mu);
    int rc = rota_jr_call(r->c, 1, (const char **)ping, "PING", -EIO, msg, sizeof(msg));
    if (rc) {
        redisFree(r->c);
        r->c = NULL;
    }
    pthread_mutex_lock(&r->mu);
    r->last_io = rota_clock_mono();
    if (rc)
        failed(r, msg);
    return rc ? -1 : 0;
}

/* Append argument "p" of "len" bytes to a command's argv and lengths. */
static void arg(const char **argv, size_t *lens, int *argc, const void *p, size_t len)
{
    argv[*argc] = p;
    lens[(*argc)++] = len;
}

static int cmp_pick(const void *a, const void *b)
{
    const struct pick *x = a, *y = b;
    int c = strcmp(x->rec->field, y->rec->field);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* HSET's arguments for the "k" records of the batch into r->argv: the latest record per
 * field, then "at" (written to "at_s"). The number of arguments; 0 when no record has a
 * field. */
static int hset_args(struct rota_jredis *r, size_t k, char *at_s, size_t at_n)
{
    size_t np = 0;
    int64_t newest = INT64_MIN;
    for (size_t i = 0; i < k; i++)
        if (r->batch[i]->field) {
            r->picks[np++] = (struct pick){r->batch[i], i};
            if (r->batch[i]->at > newest)
                newest = r->batch[i]->at;
        }
    if (!np)
        return 0;
    qsort(r->picks, np, sizeof(r->picks[0]), cmp_pick);
    int argc = 0;
    arg(r->argv, r->argl, &argc, "HSET", 4);
    arg(r->argv, r->argl, &argc, r->k_state, strlen(r->k_state));
    for (size_t i = 0; i < np; i++) {
        const struct rec *x = r->picks[i].rec;
        if (i + 1 < np && !strcmp(x->field, r->picks[i + 1].rec->field))
            continue; /* a later record has the same field */
        arg(r->argv, r->argl, &argc, x->field, strlen(x->field));
        arg(r->argv, r->argl, &argc, x->data, x->len);
    }
    snprintf(at_s, at_n, "%lld", (long long)newest);
    arg(r->argv, r->argl, &argc, "at", 2);
    arg(r->argv, r->argl, &argc, at_s, strlen(at_s));
    return argc;
}

/* Queue MULTI, the batch's commands and EXEC on the connection. The number of replies
 * to read, or -1 (out of memory). */
static int append_batch(struct rota_jredis *r, size_t k, char *at_s, size_t at_n)
{
    redisContext *c = r->c;
    int sent = 0, bad = 0;
    bad |= redisAppendCommand(c, "MULTI");
    sent++;
    for (size_t i = 0; i < k; i++) {
        const char *argv[8];
        size_t len[8];
        int argc = 0;
        arg(argv, len, &argc, "XADD", 4);
        arg(argv, len, &argc, r->k_stream, strlen(r->k_stream));
        if (r->maxlen[0]) {
            arg(argv, len, &argc, "MAXLEN", 6);
            arg(argv, len, &argc, "~", 1);
            arg(argv, len, &argc, r->maxlen, strlen(r->maxlen));
        }
        arg(argv, len, &argc, "*", 1);
        arg(argv, len, &argc, "r", 1);
        arg(argv, len, &argc, r->batch[i]->data, r->batch[i]->len);
        bad |= redisAppendCommandArgv(c, argc, argv, len);
        sent++;
    }
    int argc = hset_args(r, k, at_s, at_n);
    if (argc) {
        bad |= redisAppendCommandArgv(c, argc, r->argv, r->argl);
        sent++;
    }
    if (r->ttl[0]) {
        bad |= redisAppendCommand(c, "EXPIRE %s %s", r->k_stream, r->ttl);
        bad |= redisAppendCommand(c, "EXPIRE %s %s", r->k_state, r->ttl);
        sent += 2;
    }
    bad |= redisAppendCommand(c, "EXEC");
    sent++;
    return bad ? -1 : sent;
}

/* Whether reply "i" of "sent" is what it should be; else the reason into "msg". */
static bool reply_ok(const redisReply *rep, int i, int sent, char *msg, size_t n)
{
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(msg, n, "%s refused: %.*s", i == sent - 1 ? "EXEC" : "batch", (int)rep->len,
                 rep->str);
        return false;
    }
    if (i < sent - 1) {
        if (rep->type == REDIS_REPLY_STATUS)
            return true;
        snprintf(msg, n, "batch: a reply of type %d before EXEC", rep->type);
        return false;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        snprintf(msg, n, "EXEC: aborted (a reply of type %d)", rep->type);
        return false;
    }
    for (size_t e = 0; e < rep->elements; e++)
        if (rep->element[e]->type == REDIS_REPLY_ERROR) {
            snprintf(msg, n, "EXEC: %.*s", (int)rep->element[e]->len, rep->element[e]->str);
            return false;
        }
    return true;
}

/* Send the batch's "k" records as one MULTI/EXEC and read every reply. 0, or -1 with
 * the reason in "msg". */
static int send_pipeline(struct rota_jredis *r, size_t k, char *msg, size_t n)
{
    char at_s[24];
    int sent = append_batch(r, k, at_s, sizeof(at_s));
    if (sent < 0) {
        snprintf(msg, n, "batch: out of memory");
        return -1;
    }
    for (int i = 0; i < sent; i++) {
        redisReply *rep;
        if (redisGetReply(r->c, (void **)&rep) != REDIS_OK) {
            rota_jr_ctx_error(r->c, errno, "batch", msg, n);
            return -1;
        }
        bool ok = reply_ok(rep, i, sent, msg, n);
        freeReplyObject(rep);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Send one batch from the front of the buffer (mu held, released meanwhile). 0 or -1. */
static int sender_batch(struct rota_jredis *r)
{
    size_t k = r->count < BATCH ? r->count : BATCH;
    uint64_t lo = r->head_seq;
    for (size_t i = 0; i < k; i++)
        r->batch[i] = r->ring[(r->head + i) % r->slots];
    r->busy_end = lo + k;
    bool clamp = r->stopping;
    struct timeval tv = op_timeout(r);
    pthread_mutex_unlock(&r->mu);

    char msg[160];
    int rc = 0;
    if (clamp && redisSetTimeout(r->c, tv) != REDIS_OK) {
        rota_jr_ctx_error(r->c, errno, "batch", msg, sizeof(msg));
        rc = -1;
    }
    if (!rc)
        rc = send_pipeline(r, k, msg, sizeof(msg));
    if (rc) {
        redisFree(r->c);
        r->c = NULL;
    }

    pthread_mutex_lock(&r->mu);
    finish(r, lo, k, rc == 0);
    r->last_io = rota_clock_mono();
    if (rc)
        failed(r, msg);
    return rc;
}

/* Wait on the condition variable until monotonic "until" or a signal (mu held). */
static void sender_wait(struct rota_jredis *r, uint64_t until)
{
    struct timespec ts = {(time_t)(until / ROTA_NS_PER_S), (long)(until % ROTA_NS_PER_S)};
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void *sender(void *arg)
{
    struct rota_jredis *r = arg;
    uint64_t retry_at = 0, backoff = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        uint64_t now = rota_clock_mono();
        if (r->stopping && (r->count == 0 || now >= r->deadline))
            break;
        if (now >= retry_at && (!r->c || r->count > 0)) {
            /* Only an acknowledged batch ends the backoff: a Redis that accepts
             * connections but refuses every batch is retried ever more slowly too. */
            bool batch = r->c != NULL;
            int rc = batch ? sender_batch(r) : sender_connect(r);
            if (rc == 0 && batch)
                backoff = 0;
            if (rc) {
                backoff = backoff ? 2 * backoff : BACKOFF_MIN;
                backoff = backoff < BACKOFF_MAX ? backoff : BACKOFF_MAX;
                retry_at = rota_clock_mono() + backoff;
            }
            continue;
        }
        if (r->c && !r->stopping && now - r->last_io >= PING_NS) {
            if (sender_ping(r) != 0) {
                backoff = BACKOFF_MIN;
                retry_at = rota_clock_mono() + backoff;
            }
            continue;
        }
        uint64_t until = r->c ? now + TICK_NS : retry_at;
        if (r->stopping && until > r->deadline)
            until = r->deadline;
        sender_wait(r, until);
    }
    r->st.connected = false;
    pthread_mutex_unlock(&r->mu);
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
    return NULL;
}

/* ---- the API ---- */

static void destroy(struct rota_jredis *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->ring[(r->head + i) % r->slots]);
    free(r->ring);
    if (r->password)
        explicit_bzero(r->password, strlen(r->password));
    free(r->password);
    free(r->user);
    free(r->host);
    free(r->socket);
    free(r->k_stream);
    free(r->k_state);
    free(r);
}

static char *dup_or_null(const char *s, bool *bad)
{
    char *d = s ? strdup(s) : NULL;
    *bad |= s && !d;
    return d;
}

/* Copy "o" into "r": strings, keys, the decimal arguments. */
static int setup(struct rota_jredis *r, const struct rota_jredis_opts *o)
{
    bool bad = false;
    r->o = *o;
    r->o.host = r->host = dup_or_null(o->host ? o->host : "127.0.0.1", &bad);
    r->o.socket = r->socket = dup_or_null(o->socket, &bad);
    r->o.user = r->user = dup_or_null(o->user, &bad);
    r->o.password = r->password = dup_or_null(o->password, &bad);
    r->o.prefix = NULL;
    r->k_stream = rota_jr_key(o->prefix, "stream");
    r->k_state = rota_jr_key(o->prefix, "state");
    if (bad || !r->k_stream || !r->k_state)
        return -ENOMEM;
    if (o->stream_max)
        snprintf(r->maxlen, sizeof(r->maxlen), "%u", o->stream_max);
    if (o->ttl_ns) {
        uint64_t s = o->ttl_ns / ROTA_NS_PER_S;
        snprintf(r->ttl, sizeof(r->ttl), "%llu", (unsigned long long)(s ? s : 1));
    }
    r->bound = o->buffer ? o->buffer : 1;
    r->st.capacity = r->bound;
    rota_jr_fmt_target(o, r->st.target, sizeof(r->st.target));
    return 0;
}

/* Start the sender with every signal blocked but those of a fault. 0 or -errno. */
static int spawn(struct rota_jredis *r)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return -rc;
    pthread_mutex_init(&r->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT};
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
        sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&r->thread, NULL, sender, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
    }
    return -rc;
}

int rota_jredis_start(const struct rota_jredis_opts *o, struct rota_jredis **out, char *err,
                      size_t n)
{
    if (!o->prefix || !o->prefix[0]) {
        snprintf(err, n, "redis: no key prefix");
        return -EINVAL;
    }
    struct rota_jredis *r = calloc(1, sizeof(*r));
    int rc = r ? setup(r, o) : -ENOMEM;
    if (!rc) {
        rc = spawn(r);
        if (rc)
            snprintf(err, n, "redis: cannot start the sender thread: %s", strerror(-rc));
    } else {
        snprintf(err, n, "redis: out of memory");
    }
    if (rc) {
        if (r)
            destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

void rota_jredis_push(struct rota_jredis *r, const char *field, const void *rec, size_t len,
                      int64_t at, bool force)
{
    if (!r)
        return;
    size_t fl = field ? strlen(field) + 1 : 0;
    struct rec *x = malloc(sizeof(*x) + len + fl);
    if (x) {
        x->at = at;
        x->len = len;
        if (len)
            memcpy(x->data, rec, len);
        x->field = field ? memcpy(x->data + len, field, fl) : NULL;
    }
    pthread_mutex_lock(&r->mu);
    if (!force && r->count >= r->bound)
        drop_oldest(r);
    if (!x || (r->count == r->slots && grow(r))) {
        free(x);
        r->st.dropped++;
        mark_lost(r);
    } else {
        r->ring[(r->head + r->count) % r->slots] = x;
        r->count++;
        if (r->count == r->bound / 2 + 1)
            pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

void rota_jredis_flush(struct rota_jredis *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void rota_jredis_reserve(struct rota_jredis *r, size_t records)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    if (records > r->bound) {
        r->bound = records;
        r->st.capacity = records;
    }
    pthread_mutex_unlock(&r->mu);
}

bool rota_jredis_want_full(struct rota_jredis *r)
{
    if (!r)
        return false;
    pthread_mutex_lock(&r->mu);
    bool yes = r->lost && r->st.connected && r->head_seq >= r->lost_mark;
    if (yes)
        r->lost = false;
    pthread_mutex_unlock(&r->mu);
    return yes;
}

void rota_jredis_stats(struct rota_jredis *r, struct rota_jredis_stats *out)
{
    if (!r) {
        memset(out, 0, sizeof(*out));
        return;
    }
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    out->queued = r->count;
    out->oldest_queued = r->count ? r->ring[r->head]->at : 0;
    pthread_mutex_unlock(&r->mu);
}

void rota_jredis_stop(struct rota_jredis *r, uint64_t flush_ns)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    r->deadline = rota_clock_mono() + flush_ns;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    destroy(r);
}
