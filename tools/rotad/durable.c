/*
 * durable.c - rotad and its journal: recovery at start, the journal thread, and what
 * `rotactl journal` shows.
 *
 * DESIGN
 * Recovery runs only when rotad did not adopt a live table: while the new generation is
 * built from the config and before it is READY (rota_desc.prepare), the newer of the
 * journal file and Redis is written into it by account id (core/journal/journal.c). No worker
 * sees the table before that, and a failure or a kill -9 during recovery leaves no
 * cold table that a later rotad would adopt instead of the journal. The journal thread starts
 * after, and its first pass writes a fresh snapshot of the table, whatever it came from.
 *
 * The Redis password is resolved here, once, from its reference; a reference that does
 * not resolve stops rotad at start with the reference named (never the secret).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "jident.h"
#include "log.h"
#include "rotad.h"
#include "view_json.h"

static int journal_opts(struct rotad *d, struct rota_journal_opts *o, char *err, size_t n)
{
    const struct rota_config_journal *c = &d->cfg->journal;
    *o = (struct rota_journal_opts){.instance = d->cfg->instance, .cfg = c, .key = &d->jkey};
    if (c->redis_enabled && c->redis_password_source && !d->redis_password) {
        int rc = rota_jredis_password(c->redis_password_source, &d->redis_password, err, n);
        if (rc)
            return rc;
    }
    o->redis_password = d->redis_password;
    return 0;
}

/* "12.3 s", "4 min", "2.5 h", "3 d": how old a state is, for people. */
static void age_text(int64_t ns, char *buf, size_t n)
{
    double s = (double)(ns > 0 ? ns : 0) / 1e9;
    if (s < 120)
        snprintf(buf, n, "%.1f s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.0f min", s / 60);
    else if (s < 172800)
        snprintf(buf, n, "%.1f h", s / 3600);
    else
        snprintf(buf, n, "%.1f d", s / 86400);
}

/* Say once, with counts, which records recovery refused and why (never their content):
 * each of them is left out of the restored state. */
static void report_refused(struct rotad *d, const struct rota_journal_restore *r)
{
    const struct rota_config_journal *c = &d->cfg->journal;
    char mine[2 * ROTA_JID_LEN + 1], theirs[2 * ROTA_JID_LEN + 1];
    rota_jid_hex(d->jkey.id, mine, sizeof(mine));
    if (r->file.foreign)
        rota_warn("journal %s: %llu records of another instance (identity %s; this one is %s) "
                  "refused: not restored. Was the state directory's identity file replaced, or "
                  "this journal copied from another instance? A copy of the file is kept",
                  c->file_path, (unsigned long long)r->file.foreign,
                  rota_jid_hex(r->file.foreign_id, theirs, sizeof(theirs)), mine);
    if (r->file.forged)
        rota_warn("journal %s: %llu records with this instance's identity but a MAC that does "
                  "not match (forged or corrupt) refused: not restored. A copy of the file is "
                  "kept",
                  c->file_path, (unsigned long long)r->file.forged);
    if (r->file.v1)
        rota_info("journal %s: %llu version 1 records (written before records carried the "
                  "instance's identity) taken from the file, which rotad owns; the first "
                  "snapshot rewrites them in version 2",
                  c->file_path, (unsigned long long)r->file.v1);
    if (r->redis_foreign)
        rota_warn("journal: Redis %s:state holds %u records of another instance (identity %s; "
                  "this one is %s): refused, not restored. Do two rotads share the key prefix "
                  "%s? Give each its own journal.redis.prefix",
                  c->redis_prefix, r->redis_foreign,
                  rota_jid_hex(r->redis_foreign_id, theirs, sizeof(theirs)), mine,
                  c->redis_prefix);
    if (r->redis_forged)
        rota_warn("journal: Redis %s:state holds %u records with this instance's identity but "
                  "a MAC that does not match (forged or corrupt): refused, not restored; "
                  "someone other than this rotad wrote its keys",
                  c->redis_prefix, r->redis_forged);
    if (r->redis_v1)
        rota_warn("journal: Redis %s:state holds %u version 1 records (no identity, no MAC): "
                  "refused, not restored (they are taken from the local file only); rotad "
                  "writes every state again in version 2",
                  c->redis_prefix, r->redis_v1);
    if (r->redis_bad)
        rota_warn("journal: Redis %s:state holds %u values that are not records this rota "
                  "reads: refused, not restored",
                  c->redis_prefix, r->redis_bad);
}

int rotad_journal_recover(void *arg, struct rota_shm_map *m, char *err, size_t n)
{
    struct rotad *d = arg;
    struct rota_journal_opts o;
    int rc = journal_opts(d, &o, err, n);
    if (rc)
        return rc;
    const struct rota_config_journal *c = &d->cfg->journal;
    if (!c->file_enabled && !c->redis_enabled) {
        snprintf(d->origin_buf, sizeof(d->origin_buf), "%s; no journal configured", d->origin);
        d->origin = d->origin_buf;
        return 0;
    }
    struct rota_journal_restore *r = &d->restore;
    rc = rota_journal_recover(&o, m, r, err, n);
    if (rc)
        return rc;
    if (r->file.first_problem[0])
        rota_warn("journal %s: %s; %llu records recovered, %llu damaged regions (%llu bytes) "
                  "skipped, %llu bytes of torn tail cut",
                  c->file_path, r->file.first_problem, (unsigned long long)r->file.records,
                  (unsigned long long)r->file.corrupt,
                  (unsigned long long)r->file.corrupt_bytes,
                  (unsigned long long)r->file.torn_bytes);
    report_refused(d, r);
    if (r->file.corrupt || r->file.foreign || r->file.forged)
        rotad_keep_damaged(d);
    if (r->redis_error[0])
        rota_warn("journal: Redis could not be read at start (%s); recovering from the file "
                  "alone",
                  r->redis_error);
    if (!r->source[0]) {
        snprintf(d->origin_buf, sizeof(d->origin_buf),
                 "cold start: nothing journaled yet; quotas come from the probes");
        d->origin = d->origin_buf;
        rota_info("journal: %s", d->origin);
        return 0;
    }
    char age[32], when[32];
    age_text(rotad_wall(d) - r->at, age, sizeof(age));
    rota_iso_time(r->at, when, sizeof(when));
    char from[512];
    if (!strcmp(r->source, "file"))
        snprintf(from, sizeof(from), "the journal file %s", c->file_path);
    else if (!strcmp(r->source, "redis"))
        snprintf(from, sizeof(from), "Redis %s", c->redis_prefix);
    else
        snprintf(from, sizeof(from),
                 "the journal file %s (%u accounts) and Redis %s (%u), each account from the "
                 "newer",
                 c->file_path, r->from_file, c->redis_prefix, r->from_redis);
    snprintf(d->origin_buf, sizeof(d->origin_buf),
             "restored from %s (state of %s, %s old at start; %u accounts)", from, when, age,
             r->accounts);
    d->origin = d->origin_buf;
    rota_info("journal: %s", d->origin);
    if (r->unknown)
        rota_info("journal: %u records were of accounts no longer configured", r->unknown);
    return 0;
}

/* A file with damage in the middle is rewritten by the first snapshot: keep a copy of
 * it as it was, for whoever wants to look (nothing is lost). A hard link, so the journal
 * itself stays in place until the snapshot replaces it whole. */
void rotad_keep_damaged(struct rotad *d)
{
    const char *path = d->cfg->journal.file_path;
    char copy[4096];
    long long now = (long long)(rota_clock_wall() / 1000000000);
    int rc = -1;
    for (int k = 0; k < 100 && rc < 0; k++) {
        if (k == 0)
            snprintf(copy, sizeof(copy), "%s.damaged.%lld", path, now);
        else
            snprintf(copy, sizeof(copy), "%s.damaged.%lld.%d", path, now, k);
        rc = link(path, copy);
        if (rc < 0 && errno != EEXIST)
            break;
    }
    if (rc == 0)
        rota_warn("journal: the damaged file is kept as %s", copy);
    else
        rota_warn("journal: cannot keep the damaged file as %s: %s", copy, strerror(errno));
}

static int count_rec(void *arg, const struct rota_jrec *r)
{
    (void)r;
    (*(uint64_t *)arg)++;
    return 0;
}

/* After adopting a live table the journal was not read, but its first snapshot replaces
 * the file: refuse a file that is not a journal, and keep a damaged one. */
static int check_file(struct rotad *d, char *err, size_t n)
{
    const char *path = d->cfg->journal.file_path;
    uint64_t records = 0;
    struct rota_jfile_scan scan;
    int rc = rota_jfile_read(path, &d->jkey, count_rec, &records, &scan, err, n);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0 && (scan.foreign || scan.forged))
        rota_warn("journal %s: %llu records of another instance and %llu with a MAC that does "
                  "not match (forged or corrupt)",
                  path, (unsigned long long)scan.foreign, (unsigned long long)scan.forged);
    if (rc == 0 && (scan.corrupt || scan.foreign || scan.forged)) {
        if (scan.first_problem[0])
            rota_warn("journal %s: %s", path, scan.first_problem);
        rotad_keep_damaged(d);
    }
    return rc;
}

int rotad_journal_start(struct rotad *d, char *err, size_t n)
{
    const struct rota_config_journal *c = &d->cfg->journal;
    if (!c->file_enabled && !c->redis_enabled)
        return 0;
    if (d->adopted && c->file_enabled) {
        int rc = check_file(d, err, n);
        if (rc)
            return rc;
    }
    struct rota_journal_opts o;
    int rc = journal_opts(d, &o, err, n);
    if (rc == 0)
        rc = rota_journal_start(&o, &d->journal, err, n);
    if (rc == 0)
        rota_info("journal: %s%s%s", c->file_enabled ? "file " : "",
                  c->file_enabled ? c->file_path : "",
                  c->redis_enabled ? (c->file_enabled ? ", Redis" : "Redis") : "");
    return rc;
}

/* Journal settings are read at start: say so when a reload changes them. */
void rotad_journal_reload(struct rotad *d, const struct rota_config *next)
{
    const struct rota_config_journal *a = &d->cfg->journal, *b = &next->journal;
#define SAME_STR(x) ((a->x == NULL) == (b->x == NULL) && (!a->x || strcmp(a->x, b->x) == 0))
    bool same = a->file_enabled == b->file_enabled && SAME_STR(file_path) &&
                a->fsync == b->fsync && a->fsync_interval_ns == b->fsync_interval_ns &&
                a->snapshot_every_ns == b->snapshot_every_ns && a->max_bytes == b->max_bytes &&
                a->redis_enabled == b->redis_enabled && SAME_STR(redis_host) &&
                a->redis_port == b->redis_port && SAME_STR(redis_socket) &&
                SAME_STR(redis_password_source) && SAME_STR(redis_user) && a->redis_db == b->redis_db &&
                SAME_STR(redis_prefix) && a->redis_stream_max == b->redis_stream_max &&
                a->redis_ttl_ns == b->redis_ttl_ns && a->redis_buffer == b->redis_buffer;
#undef SAME_STR
    if (!same)
        rota_warn("reload: the journal settings changed; they take effect when rotad restarts "
                  "(the journal goes on as it started)");
}

void rotad_journal_stop(struct rotad *d)
{
    rota_journal_stop(d->journal);
    d->journal = NULL;
    rota_jkey_wipe(&d->jkey);
    if (d->redis_password) {
        explicit_bzero(d->redis_password, strlen(d->redis_password));
        free(d->redis_password);
        d->redis_password = NULL;
    }
}

static json_t *ns_ms(uint64_t ns)
{
    return json_real((double)ns / 1e6);
}

static json_t *iso(int64_t at)
{
    char buf[32];
    if (!at)
        return json_null();
    rota_iso_time(at, buf, sizeof(buf));
    return json_string(buf);
}

json_t *rotad_journal_json(struct rotad *d)
{
    json_t *o = json_object();
    if (!d->journal) {
        json_object_set_new(o, "enabled", json_false());
        return o;
    }
    struct rota_journal_stats s;
    rota_journal_stats(d->journal, &s);
    int64_t now = rota_clock_wall();
    json_object_set_new(o, "enabled", json_true());
    json_object_set_new(o, "passes", json_integer((json_int_t)s.passes));
    json_object_set_new(o, "changes", json_integer((json_int_t)s.changes));
    json_object_set_new(o, "records", json_integer((json_int_t)s.records));
    json_object_set_new(o, "last_pass_ms", ns_ms(s.last_pass_ns));
    json_object_set_new(o, "max_pass_ms", ns_ms(s.max_pass_ns));
    json_object_set_new(o, "last_change_at", iso(s.last_change_at));
    json_object_set_new(o, "generation", json_integer((json_int_t)s.generation));
    json_t *f = json_object();
    json_object_set_new(f, "enabled", json_boolean(s.file_enabled));
    if (s.file_enabled) {
        static const char *const pol[] = {"always", "interval", "never"};
        json_object_set_new(f, "path", json_string(s.file_path));
        json_object_set_new(f, "fsync", json_string(pol[s.fsync % 3]));
        json_object_set_new(f, "bytes", json_integer((json_int_t)s.file.bytes));
        json_object_set_new(f, "max_bytes", json_integer((json_int_t)s.max_bytes));
        json_object_set_new(f, "records", json_integer((json_int_t)s.file.records));
        json_object_set_new(f, "lag_ms", ns_ms(s.lag_ns));
        json_object_set_new(f, "queue_bytes", json_integer((json_int_t)s.file_queue_bytes));
        json_object_set_new(f, "dropped", json_integer((json_int_t)s.file_dropped));
        json_object_set_new(f, "writes", json_integer((json_int_t)s.file.writes));
        json_object_set_new(f, "syncs", json_integer((json_int_t)s.file.syncs));
        json_object_set_new(f, "snapshots", json_integer((json_int_t)s.file.snapshots));
        json_object_set_new(f, "errors", json_integer((json_int_t)s.file.errors));
        json_object_set_new(f, "last_write", iso(s.file.last_write));
        json_object_set_new(f, "last_sync", iso(s.file.last_sync));
        json_object_set_new(f, "last_snapshot", iso(s.file.last_snapshot));
        json_object_set_new(f, "last_error", json_string(s.file.last_error));
    }
    json_object_set_new(o, "file", f);
    json_t *r = json_object();
    json_object_set_new(r, "enabled", json_boolean(s.redis_enabled));
    if (s.redis_enabled) {
        json_object_set_new(r, "target", json_string(s.redis.target));
        json_object_set_new(r, "connected", json_boolean(s.redis.connected));
        json_object_set_new(r, "queue", json_integer((json_int_t)s.redis.queued));
        json_object_set_new(r, "capacity", json_integer((json_int_t)s.redis.capacity));
        json_object_set_new(r, "dropped", json_integer((json_int_t)s.redis.dropped));
        json_object_set_new(r, "written", json_integer((json_int_t)s.redis.written));
        json_object_set_new(r, "reconnects", json_integer((json_int_t)s.redis.reconnects));
        json_object_set_new(r, "errors", json_integer((json_int_t)s.redis.errors));
        json_object_set_new(r, "lag_ms",
                            ns_ms(s.redis.oldest_queued && now > s.redis.oldest_queued
                                      ? (uint64_t)(now - s.redis.oldest_queued)
                                      : 0));
        json_object_set_new(r, "last_write", iso(s.redis.last_write_at));
        json_object_set_new(r, "last_error", json_string(s.redis.last_error));
    }
    json_object_set_new(o, "redis", r);
    return o;
}
