/*
 * journal.c - the journal thread and recovery (see journal.h).
 *
 * DESIGN
 * The thread owns everything below the mutex line: its own map of the table (re-attached
 * when the generation changes), the last state it recorded per account, the file writer
 * and the Redis sender's handle. The mutex guards only what other threads touch: the
 * stop and nudge flags and the published stats.
 *
 * A file write that fails drops the pending records and asks for a snapshot on the
 * next pass: the last recorded states are all in memory, so the snapshot rewrites every
 * one of them and nothing is lost but time. Redis gets every record as it is made;
 * after it dropped some, it gets every account's state again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "jident.h"
#include "journal.h"
#include "log.h"

struct rota_journal {
    /* settings, copied: the config may be freed by a reload */
    char *instance, *file_path; /* (the Redis sender keeps its own copies) */
    struct rota_config_journal cfg;
    uint64_t scan_ns;
    struct rota_jkey key; /* signs every record; wiped when the journal stops */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, nudged;
    struct rota_journal_stats st; /* published copy */

    /* ---- the thread's own ---- */
    struct rota_shm_map map;
    bool mapped;
    struct rota_jaccount *last; /* per account of "map": the state last recorded */
    bool *have;
    struct rota_jprovider *plast;
    bool *phave;
    struct rota_jfile *file;
    struct rota_jredis *redis;
    int64_t offset; /* wall - mono */
    uint64_t seq;
    bool want_snapshot;
    uint64_t next_snapshot;   /* mono ns */
    uint64_t unwritten_since; /* mono ns of the oldest change not yet in the file; 0 */
    uint64_t written_records; /* run.records when the file last took them all */
    uint64_t snapshot_bytes;  /* size of the file right after its last snapshot */
    uint64_t next_redis_full; /* mono ns of the next full resend to Redis */
    uint64_t snapshot_retry_at, snapshot_backoff; /* after a failed snapshot */
    bool warned_size;
    uint64_t warned_at;
    struct rota_journal_stats run; /* this thread's counters, published after each pass */
};

static void warn_limited(struct rota_journal *j, const char *what)
{
    uint64_t now = rota_clock_mono();
    if (j->warned_at && now - j->warned_at < 10 * ROTA_NS_PER_S)
        return;
    j->warned_at = now;
    rota_warn("journal: %s", what);
}

/* ---- records ---- */

static void emit(struct rota_journal *j, struct rota_jrec *r, const char *field)
{
    unsigned char buf[ROTA_JREC_MAX];
    r->seq = ++j->seq;
    size_t len = rota_jrec_encode(r, &j->key, buf, sizeof(buf));
    if (!len)
        return; /* cannot happen: every record fits ROTA_JREC_MAX */
    j->run.records++;
    if (j->file && rota_jfile_put(j->file, buf, len) == 0 && !j->unwritten_since)
        j->unwritten_since = rota_clock_mono();
    if (j->redis)
        rota_jredis_push(j->redis, field, buf, len, r->at, false);
}

static void emit_account(struct rota_journal *j, const struct rota_jaccount *a, int64_t at,
                         bool redis_force)
{
    struct rota_jrec r = {.type = ROTA_JREC_ACCOUNT, .at = at};
    r.u.acc = *a;
    char field[24];
    snprintf(field, sizeof(field), "a:%" PRIx64, a->id);
    if (!redis_force) {
        emit(j, &r, field);
        return;
    }
    unsigned char buf[ROTA_JREC_MAX];
    r.seq = ++j->seq;
    size_t len = rota_jrec_encode(&r, &j->key, buf, sizeof(buf));
    if (len)
        rota_jredis_push(j->redis, field, buf, len, at, true);
}

static void provider_field(const struct rota_jprovider *p, char *field, size_t n)
{
    snprintf(field, n, "p:%s", p->name);
}

/* How often every state goes to Redis again: every snapshot_every, and at least twice
 * per ttl, so the keys never expire while rotad runs. */
static uint64_t redis_full_every(const struct rota_journal *j)
{
    uint64_t every = j->cfg.snapshot_every_ns;
    if (j->cfg.redis_ttl_ns && j->cfg.redis_ttl_ns / 2 < every)
        every = j->cfg.redis_ttl_ns / 2;
    return every > ROTA_NS_PER_S ? every : ROTA_NS_PER_S;
}

/* Every state to Redis again: after drops or a reconnection, and every
 * redis_full_every (which also keeps the keys from expiring while nothing changes). */
static void redis_full(struct rota_journal *j)
{
    int64_t at = rota_clock_wall();
    for (uint32_t a = 0; a < j->map.naccounts; a++)
        if (j->have[a])
            emit_account(j, &j->last[a], at, true);
    for (uint32_t p = 0; p < j->map.nproviders; p++) {
        if (!j->phave[p])
            continue;
        struct rota_jrec r = {.type = ROTA_JREC_PROVIDER, .at = at, .seq = ++j->seq};
        r.u.prov = j->plast[p];
        unsigned char buf[ROTA_JREC_MAX];
        char field[ROTA_MAX_NAME + 4];
        provider_field(&j->plast[p], field, sizeof(field));
        size_t len = rota_jrec_encode(&r, &j->key, buf, sizeof(buf));
        if (len)
            rota_jredis_push(j->redis, field, buf, len, at, true);
    }
}

static void emit_generation(struct rota_journal *j, int64_t at)
{
    struct rota_jrec r = {.type = ROTA_JREC_GENERATION, .at = at};
    r.u.gen.generation = j->map.hdr->generation;
    r.u.gen.naccounts = j->map.naccounts;
    emit(j, &r, NULL);
}

/* ---- the table ---- */

static void free_state(struct rota_journal *j)
{
    free(j->last);
    free(j->have);
    free(j->plast);
    free(j->phave);
    j->last = NULL;
    j->have = j->phave = NULL;
    j->plast = NULL;
}

/* Map the current generation when it changed; carry the last states over by id. */
static int refresh_map(struct rota_journal *j)
{
    uint64_t gen = 0;
    char err[256];
    if (rota_shm_current(j->instance, &gen, err, sizeof(err)) != 0 || gen == 0)
        return -ENOENT;
    if (j->mapped && gen == j->map.hdr->generation)
        return 0;
    struct rota_shm_map m;
    int rc = rota_shm_attach(j->instance, &m, err, sizeof(err));
    if (rc) {
        warn_limited(j, err);
        return rc;
    }
    struct rota_jaccount *last = calloc(m.naccounts + 1, sizeof(*last));
    bool *have = calloc(m.naccounts + 1, sizeof(*have));
    struct rota_jprovider *plast = calloc(m.nproviders + 1, sizeof(*plast));
    bool *phave = calloc(m.nproviders + 1, sizeof(*phave));
    if (!last || !have || !plast || !phave) {
        free(last);
        free(have);
        free(plast);
        free(phave);
        rota_shm_detach(&m);
        return -ENOMEM;
    }
    if (j->mapped) {
        for (uint32_t a = 0; a < j->map.naccounts; a++) {
            uint32_t to = rota_shm_find(&m, ROTA_IDX_ACCOUNT, j->last[a].id);
            if (j->have[a] && to != ROTA_NONE) {
                last[to] = j->last[a];
                have[to] = true;
            }
        }
        for (uint32_t p = 0; p < j->map.nproviders; p++)
            for (uint32_t q = 0; j->phave[p] && q < m.nproviders; q++)
                if (strcmp(rota_shm_str(&m, m.providers[q].name), j->plast[p].name) == 0) {
                    plast[q] = j->plast[p];
                    phave[q] = true;
                }
        rota_shm_detach(&j->map);
    }
    free_state(j);
    j->map = m;
    j->mapped = true;
    j->last = last;
    j->have = have;
    j->plast = plast;
    j->phave = phave;
    j->run.generation = gen;
    /* room for a whole pass: a busy pass must not drop records while Redis keeps up */
    rota_jredis_reserve(j->redis, (size_t)m.naccounts + m.nproviders + 8);
    emit_generation(j, rota_clock_wall());
    return 0;
}

/* Record every account and provider whose durable state changed. */
static void capture_all(struct rota_journal *j)
{
    int64_t at = rota_clock_wall();
    for (uint32_t a = 0; a < j->map.naccounts; a++) {
        struct rota_jaccount cur;
        if (rota_jstate_capture(&j->map, a, j->offset, &cur) != 0)
            continue; /* under rewrite all along: the next pass has it */
        cur.what = j->have[a] ? rota_jstate_diff(&j->last[a], &cur) : ROTA_JCHG_FULL;
        if (!cur.what)
            continue;
        j->last[a] = cur;
        j->have[a] = true;
        j->run.changes++;
        j->run.last_change_at = at;
        emit_account(j, &cur, at, false);
    }
    for (uint32_t p = 0; p < j->map.nproviders; p++) {
        struct rota_jprovider cur;
        rota_jstate_capture_provider(&j->map, p, j->offset, &cur);
        if (j->phave[p] && rota_jstate_provider_same(&j->plast[p], &cur))
            continue;
        j->plast[p] = cur;
        j->phave[p] = true;
        j->run.changes++;
        struct rota_jrec r = {.type = ROTA_JREC_PROVIDER, .at = at};
        r.u.prov = cur;
        char field[ROTA_MAX_NAME + 4];
        provider_field(&cur, field, sizeof(field));
        emit(j, &r, field);
    }
}

/* A new file: everything recorded so far, then appends go on after it. */
static int snapshot(struct rota_journal *j)
{
    int rc = rota_jfile_snapshot_begin(j->file);
    if (rc)
        return rc;
    int64_t at = rota_clock_wall();
    uint32_t count = 0;
    for (uint32_t a = 0; a < j->map.naccounts; a++)
        count += j->have[a];
    unsigned char buf[ROTA_JREC_MAX];
    struct rota_jrec r = {.type = ROTA_JREC_SNAPSHOT, .at = at, .seq = ++j->seq};
    r.u.count = count;
    size_t len = rota_jrec_encode(&r, &j->key, buf, sizeof(buf));
    rc = rota_jfile_put(j->file, buf, len);
    r = (struct rota_jrec){.type = ROTA_JREC_GENERATION, .at = at, .seq = ++j->seq};
    r.u.gen = (struct rota_jgeneration){j->map.hdr->generation, j->map.naccounts};
    len = rota_jrec_encode(&r, &j->key, buf, sizeof(buf));
    rc = rc ? rc : rota_jfile_put(j->file, buf, len);
    for (uint32_t a = 0; a < j->map.naccounts && !rc; a++) {
        if (!j->have[a])
            continue;
        r = (struct rota_jrec){.type = ROTA_JREC_ACCOUNT, .at = at, .seq = ++j->seq};
        r.u.acc = j->last[a];
        len = rota_jrec_encode(&r, &j->key, buf, sizeof(buf));
        rc = rota_jfile_put(j->file, buf, len);
    }
    for (uint32_t p = 0; p < j->map.nproviders && !rc; p++) {
        if (!j->phave[p])
            continue;
        r = (struct rota_jrec){.type = ROTA_JREC_PROVIDER, .at = at, .seq = ++j->seq};
        r.u.prov = j->plast[p];
        len = rota_jrec_encode(&r, &j->key, buf, sizeof(buf));
        rc = rota_jfile_put(j->file, buf, len);
    }
    if (rc) {
        rota_jfile_snapshot_abort(j->file, rc);
        return rc;
    }
    return rota_jfile_snapshot_end(j->file);
}

static void write_file(struct rota_journal *j, uint64_t now, bool last)
{
    struct rota_jfile_stats fs;
    rota_jfile_stats(j->file, &fs);
    /* by size: at half the bound, or at twice the last snapshot when the state alone
     * takes half the bound or more (then the bound cannot hold; said once) */
    uint64_t at_size = j->cfg.max_bytes / 2;
    if (j->snapshot_bytes * 2 > at_size) {
        at_size = j->snapshot_bytes * 2;
        if (!j->warned_size) {
            rota_warn("journal: a snapshot takes %llu bytes, more than half of max_bytes "
                      "(%llu): the file will grow to %llu bytes; raise "
                      "journal.file.max_bytes",
                      (unsigned long long)j->snapshot_bytes,
                      (unsigned long long)j->cfg.max_bytes, (unsigned long long)at_size);
            j->warned_size = true;
        }
    }
    bool due = j->want_snapshot || now >= j->next_snapshot ||
               fs.bytes + rota_jfile_pending(j->file) >= at_size;
    if (now < j->snapshot_retry_at)
        due = false; /* the last one failed: appends go on meanwhile */
    /* This pass's records go to the journal first, whatever a snapshot then does. */
    uint64_t pending = j->run.records - j->written_records;
    int rc = rota_jfile_write(j->file, now, last || due);
    j->written_records = j->run.records;
    if (rc == -EBADF) {
        j->want_snapshot = true; /* no file yet: the first snapshot holds them */
    } else if (rc) {
        j->run.file_dropped += pending;
        rota_jfile_stats(j->file, &fs);
        warn_limited(j, fs.last_error);
        j->want_snapshot = true; /* the states are all in memory: rewrite them all */
    } else if (!j->want_snapshot) {
        j->unwritten_since = 0; /* else records dropped earlier wait for the snapshot */
    }
    if (!due)
        return;
    if (snapshot(j) != 0) {
        rota_jfile_stats(j->file, &fs);
        warn_limited(j, fs.last_error);
        j->want_snapshot = true;
        j->snapshot_backoff = j->snapshot_backoff ? 2 * j->snapshot_backoff : ROTA_NS_PER_S;
        if (j->snapshot_backoff > 60 * ROTA_NS_PER_S)
            j->snapshot_backoff = 60 * ROTA_NS_PER_S;
        j->snapshot_retry_at = now + j->snapshot_backoff;
        return;
    }
    j->want_snapshot = false;
    j->snapshot_backoff = 0;
    j->snapshot_retry_at = 0;
    j->next_snapshot = now + j->cfg.snapshot_every_ns;
    rota_jfile_stats(j->file, &fs);
    j->snapshot_bytes = fs.bytes;
    j->unwritten_since = 0;
}

static void publish_stats(struct rota_journal *j)
{
    if (j->file) {
        rota_jfile_stats(j->file, &j->run.file);
        j->run.file_queue_bytes = rota_jfile_pending(j->file);
    }
    if (j->redis)
        rota_jredis_stats(j->redis, &j->run.redis);
    pthread_mutex_lock(&j->mu);
    j->st = j->run;
    pthread_mutex_unlock(&j->mu);
}

static void pass(struct rota_journal *j, bool last)
{
    uint64_t t0 = rota_clock_mono();
    /* A step of the wall clock (NTP at boot, a resumed VM) moves every deadline's wall
     * time: follow it, so a restore gives each what it had left. Jitter of the two
     * clock reads stays under the threshold and makes no records. */
    int64_t off = rota_jclock_offset();
    if (off - j->offset > (int64_t)ROTA_NS_PER_S || j->offset - off > (int64_t)ROTA_NS_PER_S) {
        rota_info("journal: the wall clock moved by %+.3f s; deadlines follow it",
                  (double)(off - j->offset) / 1e9);
        j->offset = off;
    }
    if (refresh_map(j) != 0)
        return;
    capture_all(j);
    if (j->file)
        write_file(j, rota_clock_mono(), last);
    if (j->redis) {
        uint64_t now = rota_clock_mono();
        if (rota_jredis_want_full(j->redis) || now >= j->next_redis_full) {
            redis_full(j);
            j->next_redis_full = now + redis_full_every(j);
        }
        rota_jredis_flush(j->redis);
    }
    uint64_t took = rota_clock_mono() - t0;
    j->run.passes++;
    j->run.last_pass_ns = took;
    if (took > j->run.max_pass_ns)
        j->run.max_pass_ns = took;
    j->run.lag_ns = j->unwritten_since ? rota_clock_mono() - j->unwritten_since : 0;
    publish_stats(j);
}

static void *run(void *arg)
{
    struct rota_journal *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        bool stop = j->stop;
        j->nudged = false;
        pthread_mutex_unlock(&j->mu);
        /* passes start every scan_ns; one that ran over starts the next at once */
        uint64_t next = rota_clock_mono() + j->scan_ns;
        pass(j, stop);
        pthread_mutex_lock(&j->mu);
        if (stop)
            break;
        struct timespec ts = {(time_t)(next / ROTA_NS_PER_S), (long)(next % ROTA_NS_PER_S)};
        while (!j->stop && !j->nudged && rota_clock_mono() < next &&
               pthread_cond_timedwait(&j->cv, &j->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- lifecycle ---- */

static void free_journal(struct rota_journal *j)
{
    rota_jfile_close(j->file);
    if (j->mapped)
        rota_shm_detach(&j->map);
    free_state(j);
    free(j->instance);
    free(j->file_path);
    rota_jkey_wipe(&j->key);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void redis_opts(const struct rota_journal_opts *o, struct rota_jredis_opts *r)
{
    const struct rota_config_journal *c = o->cfg;
    *r = (struct rota_jredis_opts){.host = c->redis_host,
                                   .port = c->redis_port,
                                   .socket = c->redis_socket,
                                   .user = c->redis_user,
                                   .password = o->redis_password,
                                   .db = c->redis_db,
                                   .prefix = c->redis_prefix,
                                   .stream_max = c->redis_stream_max,
                                   .ttl_ns = c->redis_ttl_ns,
                                   .buffer = c->redis_buffer};
}

int rota_journal_start(const struct rota_journal_opts *o, struct rota_journal **out, char *err,
                       size_t n)
{
    struct rota_journal *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->cfg = *o->cfg;
    j->instance = strdup(o->instance);
    j->file_path = o->cfg->file_path ? strdup(o->cfg->file_path) : NULL;
    bool oom = !j->instance || (o->cfg->file_path && !j->file_path);
    j->cfg.file_path = j->file_path;
    /* the strings below are the caller's: only the start of the Redis sender reads them */
    j->cfg.redis_host = j->cfg.redis_socket = j->cfg.redis_prefix = j->cfg.redis_user = NULL;
    j->cfg.redis_password_source = NULL;
    j->scan_ns = o->scan_ns ? o->scan_ns : ROTA_JOURNAL_SCAN_NS;
    j->offset = rota_jclock_offset();
    j->want_snapshot = true;
    j->next_redis_full = rota_clock_mono() + redis_full_every(j);
    j->run.file_enabled = j->cfg.file_enabled;
    j->run.redis_enabled = j->cfg.redis_enabled;
    j->run.fsync = j->cfg.fsync;
    j->run.max_bytes = j->cfg.max_bytes;
    snprintf(j->run.file_path, sizeof(j->run.file_path), "%s",
             j->cfg.file_enabled && j->file_path ? j->file_path : "");
    int rc = oom ? -ENOMEM : 0;
    if (o->key) {
        j->key = *o->key;
    } else if (rc == 0) {
        snprintf(err, n, "journal: no instance identity to sign records with");
        rc = -EINVAL;
    }
    if (rc == 0 && j->cfg.file_enabled)
        rc = rota_jfile_open(j->file_path, j->cfg.fsync, j->cfg.fsync_interval_ns, &j->file,
                             err, n);
    if (rc == 0 && j->cfg.redis_enabled) {
        struct rota_jredis_opts ro;
        redis_opts(o, &ro);
        rc = rota_jredis_start(&ro, &j->redis, err, n);
    }
    if (rc == 0 && (rc = -pthread_create(&j->thread, NULL, run, j)) != 0)
        snprintf(err, n, "journal thread: %s", strerror(-rc));
    if (rc) {
        if (rc == -ENOMEM && !err[0])
            snprintf(err, n, "journal: out of memory");
        rota_jredis_stop(j->redis, 0);
        free_journal(j);
        return rc;
    }
    *out = j;
    return 0;
}

void rota_journal_nudge(struct rota_journal *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->nudged = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void rota_journal_stats(struct rota_journal *j, struct rota_journal_stats *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->st;
    pthread_mutex_unlock(&j->mu);
}

void rota_journal_stop(struct rota_journal *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    rota_jredis_stop(j->redis, ROTA_NS_PER_S);
    free_journal(j);
}

/* ---- recovery ---- */

/* States read from one source, indexed like the table's accounts. */
struct loaded {
    struct rota_shm_map *m;
    const struct rota_jkey *key;
    struct rota_journal_restore *out; /* Redis's refusals are counted there */
    struct rota_jaccount *acc;
    int64_t *acc_at;
    struct rota_jprovider *prov;
    int64_t *prov_at; /* 0 = none */
    uint32_t unknown;
};

static int load_rec(void *arg, const struct rota_jrec *r)
{
    struct loaded *l = arg;
    if (r->type == ROTA_JREC_ACCOUNT) {
        uint32_t a = rota_shm_find(l->m, ROTA_IDX_ACCOUNT, r->u.acc.id);
        if (a == ROTA_NONE) {
            l->unknown++;
            return 0;
        }
        /* the last record read wins: a file is in the order it was written (whatever
         * the clock did), and Redis's hash holds one record per account */
        l->acc[a] = r->u.acc;
        l->acc_at[a] = r->at > 0 ? r->at : 1;
    } else if (r->type == ROTA_JREC_PROVIDER) {
        for (uint32_t p = 0; p < l->m->nproviders; p++)
            if (strcmp(rota_shm_str(l->m, l->m->providers[p].name), r->u.prov.name) == 0) {
                l->prov[p] = r->u.prov;
                l->prov_at[p] = r->at > 0 ? r->at : 1;
            }
    }
    return 0;
}

/* A record from Redis's hash: taken only when it is this instance's, version 2, its MAC
 * good; anything else is counted (never logged here: the caller says it once). */
static int load_redis_rec(void *arg, const void *rec, size_t len)
{
    struct loaded *l = arg;
    struct rota_journal_restore *o = l->out;
    struct rota_jrec r;
    int rc = rota_jrec_decode(rec, len, l->key, 0, &r, NULL, 0);
    if (rc == -EXDEV && !o->redis_foreign++)
        memcpy(o->redis_foreign_id, r.id, ROTA_JID_LEN);
    o->redis_forged += rc == -EBADMSG;
    o->redis_v1 += rc == -EPERM;
    o->redis_bad += rc && rc != -EXDEV && rc != -EBADMSG && rc != -EPERM;
    return rc ? 0 : load_rec(arg, &r);
}

static int loaded_init(struct loaded *l, struct rota_shm_map *m, const struct rota_jkey *key,
                       struct rota_journal_restore *out)
{
    *l = (struct loaded){.m = m, .key = key, .out = out};
    l->acc = calloc(m->naccounts + 1, sizeof(*l->acc));
    l->acc_at = calloc(m->naccounts + 1, sizeof(*l->acc_at));
    l->prov = calloc(m->nproviders + 1, sizeof(*l->prov));
    l->prov_at = calloc(m->nproviders + 1, sizeof(*l->prov_at));
    return l->acc && l->acc_at && l->prov && l->prov_at ? 0 : -ENOMEM;
}

static void loaded_free(struct loaded *l)
{
    free(l->acc);
    free(l->acc_at);
    free(l->prov);
    free(l->prov_at);
}

int rota_journal_recover(const struct rota_journal_opts *o, struct rota_shm_map *m,
                         struct rota_journal_restore *out, char *err, size_t n)
{
    const struct rota_config_journal *c = o->cfg;
    memset(out, 0, sizeof(*out));
    if (!o->key) {
        snprintf(err, n, "journal recovery: no instance identity to check records with");
        return -EINVAL;
    }
    struct loaded fl, rl;
    int rc = loaded_init(&fl, m, o->key, out);
    int rc2 = loaded_init(&rl, m, o->key, out);
    if (rc || rc2) {
        loaded_free(&fl);
        loaded_free(&rl);
        rc = -ENOMEM;
        snprintf(err, n, "journal recovery: out of memory");
        return rc;
    }
    if (c->file_enabled) {
        rc = rota_jfile_read(c->file_path, o->key, load_rec, &fl, &out->file, err, n);
        if (rc == -ENOENT)
            rc = 0;
        out->file_at = out->file.newest_at;
    }
    if (rc == 0 && c->redis_enabled) {
        struct rota_jredis_opts ro;
        redis_opts(o, &ro);
        int64_t at = 0;
        int r = rota_jredis_load(&ro, 1000, load_redis_rec, &rl, &at, out->redis_error,
                                 sizeof(out->redis_error));
        if (r == 0)
            out->redis_at = at;
        else if (r == -ENOENT)
            out->redis_error[0] = 0;
    }
    if (rc == 0) {
        /* each account and provider from whichever holds its newer record: a source
         * that lost part of its state (keys expired, a file damaged) gives only what it
         * still has the latest of */
        int64_t offset = rota_jclock_offset();
        uint32_t from_file = 0, from_redis = 0;
        for (uint32_t a = 0; a < m->naccounts; a++) {
            if (!fl.acc_at[a] && !rl.acc_at[a])
                continue;
            bool redis = rl.acc_at[a] > fl.acc_at[a];
            rota_jstate_apply(m, a, redis ? &rl.acc[a] : &fl.acc[a], offset);
            out->accounts++;
            from_redis += redis;
            from_file += !redis;
        }
        for (uint32_t p = 0; p < m->nproviders; p++) {
            if (!fl.prov_at[p] && !rl.prov_at[p])
                continue;
            bool redis = rl.prov_at[p] > fl.prov_at[p];
            rota_jstate_apply_provider(m, p, redis ? &rl.prov[p] : &fl.prov[p], offset);
            out->providers++;
        }
        out->unknown = fl.unknown > rl.unknown ? fl.unknown : rl.unknown;
        out->from_file = from_file;
        out->from_redis = from_redis;
        const char *src = from_file && from_redis ? "file+redis"
                          : from_redis            ? "redis"
                          : from_file             ? "file"
                                                  : "";
        snprintf(out->source, sizeof(out->source), "%s", src);
        out->at = !*src                  ? 0
                  : !strcmp(src, "file") ? out->file_at
                  : !strcmp(src, "redis")
                      ? out->redis_at
                      : (out->file_at > out->redis_at ? out->file_at : out->redis_at);
    }
    loaded_free(&fl);
    loaded_free(&rl);
    return rc;
}
