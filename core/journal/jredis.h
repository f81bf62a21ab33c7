/*
 * jredis.h - the journal's Redis backend (private to rota).
 *
 * DESIGN
 * A sender thread owns one hiredis connection (TCP or a Unix socket, AUTH and SELECT
 * when configured) and a bounded buffer of encoded records. The journal thread pushes
 * records and never waits for Redis: when the buffer is full the oldest record is
 * dropped and counted. Each batch goes out as one MULTI/EXEC pipeline:
 *
 *   XADD  <prefix>:stream MAXLEN ~ <stream_max> * r <record>      every record
 *   HSET  <prefix>:state <field> <record> ... at <newest at>       records with a field
 *   EXPIRE <prefix>:stream <ttl>, EXPIRE <prefix>:state <ttl>      when ttl > 0
 *
 * so the hash always holds the latest record per account ("a:<id in hex>") and per
 * provider ("p:<name>"), and its "at" field the wall-clock ns of the newest record in it.
 * A batch leaves the buffer only once Redis acknowledged it. On any error the connection
 * is dropped and retried with backoff (100 ms doubling to 5 s); the records wait, within
 * the buffer's bound. After drops, and after every reconnection (Redis may have come
 * back empty), rota_jredis_want_full says so once the queue has gone out, and the
 * journal pushes every state again with "force" so the hash converges. An idle
 * connection is checked with PING every second.
 *
 * Records are opaque bytes here (core/journal/jrecord.h makes them, each signed with the
 * instance's identity and MAC, and checks them when they are read back at recovery:
 * nothing in Redis is trusted for having been found there). The password is never
 * logged, stored in stats, or put in an error message.
 */
#ifndef ROTA_CORE_JREDIS_H
#define ROTA_CORE_JREDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rota_jredis_opts {
    const char *host; /* used when "socket" is NULL */
    uint32_t port;
    const char *socket;   /* Unix socket path, or NULL */
    const char *user;     /* ACL user, or NULL: the default user */
    const char *password; /* resolved (rota_jredis_password), or NULL */
    uint32_t db;
    const char *prefix;  /* key prefix, "rota:<instance>" */
    uint32_t stream_max; /* approximate cap of the stream (MAXLEN ~) */
    uint64_t ttl_ns;     /* expiry of both keys, refreshed per batch; 0 = none */
    uint32_t buffer;     /* records held while Redis is away */
};

struct rota_jredis_stats {
    bool connected;
    uint64_t queued;       /* records waiting */
    uint64_t capacity;     /* the buffer's bound */
    uint64_t dropped;      /* records dropped because the buffer was full */
    uint64_t written;      /* records Redis acknowledged */
    uint64_t batches;      /* MULTI/EXEC pipelines acknowledged */
    uint64_t reconnects;   /* connections made after the first */
    uint64_t errors;       /* failed connects and batches */
    int64_t last_write_at; /* wall ns Redis last acknowledged a batch; 0 = never */
    int64_t oldest_queued; /* "at" of the oldest waiting record; 0 = none */
    char target[160];      /* "127.0.0.1:6379" or "unix:/path", never the password */
    char last_error[160];  /* "" = none */
};

struct rota_jredis;

/* Resolve a password reference: "env:NAME" or "file:PATH" (the file's first line).
 * 0 with a malloc'd *out, or -errno with "err" naming the reference (not the secret). */
int rota_jredis_password(const char *source, char **out, char *err, size_t n);

/* Start the sender thread. It connects in the background: an unreachable Redis is not
 * an error here. 0, or -errno (-ENOMEM, thread creation) with "err". */
int rota_jredis_start(const struct rota_jredis_opts *o, struct rota_jredis **out, char *err,
                      size_t n);

/* Queue one record (copied). "field" is its hash field ("a:<id hex>", "p:<name>") or
 * NULL for records kept only in the stream; "at" is its wall-clock ns. Never blocks on
 * Redis. With "force" the record is queued even over the bound (a full resync). */
void rota_jredis_push(struct rota_jredis *r, const char *field, const void *rec, size_t len,
                      int64_t at, bool force);

/* Raise the buffer's bound to at least "records" (the journal: room for a whole pass,
 * so a pass that changes every account drops nothing while Redis keeps up). */
void rota_jredis_reserve(struct rota_jredis *r, size_t records);

/* Wake the sender: records pushed since are sent now rather than at its next tick. */
void rota_jredis_flush(struct rota_jredis *r);

/* True once each time records had been dropped, or the connection was made again, and
 * Redis has taken what was queued then: the caller pushes every state with "force". */
bool rota_jredis_want_full(struct rota_jredis *r);

void rota_jredis_stats(struct rota_jredis *r, struct rota_jredis_stats *out);

/* Send what is queued for at most "flush_ns", then stop the thread and free. NULL is
 * fine. */
void rota_jredis_stop(struct rota_jredis *r, uint64_t flush_ns);

/* Recovery: read <prefix>:state, calling "fn" with each record in it (any order), and
 * set *at to its "at" field. 0; -ENOENT when the hash does not exist; or -errno with
 * "err" (unreachable, refused password, a reply of the wrong shape). Connects and
 * answers within "timeout_ms" per operation. A non-zero return from "fn" stops the walk
 * and is returned. */
int rota_jredis_load(const struct rota_jredis_opts *o, int timeout_ms,
                     int (*fn)(void *arg, const void *rec, size_t len), void *arg, int64_t *at,
                     char *err, size_t n);

#endif
