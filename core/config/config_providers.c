/*
 * config_providers.c - resolve providers and their accounts into the desc.
 *
 * DESIGN
 * Runs on the loading thread after the schema walk and libcyaml. Providers keep document
 * order; accounts are laid out provider by provider in document order, so provider i's
 * accounts are desc.accounts[first[i] ..] and a provider tier lists them in that order.
 *
 * An account's id is what carries its state across reloads (rota_shm_publish matches
 * generations by id): by default a hash of "provider/name", so it survives reordering;
 * an explicit id survives renaming. Ids must be unique across the config.
 *
 * Credentials: "env:NAME" reads the variable, "file:PATH" the first line of a regular
 * file, "none" is none, and anything else is taken literally with a warning. A key file
 * is trusted only as itself (O_NOFOLLOW: a symbolic link is refused) and only when it is
 * owned by root or by rotad's user; one that others may read draws a warning, once per
 * file and load however many accounts name it (at start, at each reload and in --check,
 * as each loads the config anew). With strict: true (config.c) what would be a warning
 * about a key other local users can see is an error that refuses the whole config: a key
 * file readable by group or others (named with its mode), a literal key in a config file
 * so readable, an exec probe that puts the key on a command line. The value
 * is copied into memory the config owns and wiped on free; messages name the variable or
 * the path, never the value. A variable unset or empty, or a file that cannot be read,
 * is not an error of the config: the account loads without a credential and its
 * cred_problem says what is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "breaker_word.h"
#include "config_int.h"
#include "hash.h"
#include "quota.h"
#include "tz.h"

#define NS_PER_MS     1000000ull
#define NS_PER_S      1000000000ull
#define MAX_CRED_LINE 65536
#define ZONE_CACHE    32

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static int check_name(struct cfg *x, const char *s, const char *path)
{
    for (const char *p = s; *p; p++)
        if (!name_char(*p))
            return cfg_bad(x, path,
                           "has a character other than letters, digits, '.', '-' "
                           "and '_'; expected a name such as main-1");
    return 0;
}

/* ---- credentials ---- */

/* A key file readable by others, already warned about in this load (by device and inode:
 * several accounts may share one file, and the warning is about the file). */
struct cfg_file_seen {
    struct cfg_file_seen *next;
    dev_t dev;
    ino_t ino;
};

/* Has "st" been warned about in this load? Notes it when not (no memory: false). */
static bool seen_before(struct cfg *x, const struct stat *st)
{
    for (const struct cfg_file_seen *f = x->seen; f; f = f->next)
        if (f->dev == st->st_dev && f->ino == st->st_ino)
            return true;
    struct cfg_file_seen *f = cfg_alloc(x, sizeof(*f));
    if (f) {
        *f = (struct cfg_file_seen){x->seen, st->st_dev, st->st_ino};
        x->seen = f;
    }
    return false;
}

static const char *readers(unsigned mode)
{
    return mode & S_IROTH ? "every user" : "its group";
}

/* Why the key file open on "fd" ("st" its status) is not to be trusted: 0, or 1 with
 * *why set. It must be a regular file owned by root or by the user rotad runs as
 * (whoever else owns it can change the key, or made it a link to a file of someone
 * else's). One that others may read draws a warning, once per file and load (at "path",
 * for account "who"), or with strict: true is an error of the config (-EINVAL). */
static int untrusted(struct cfg *x, const struct stat *st, const char *path, const char *who,
                     const char *file, const char **why)
{
    if (!S_ISREG(st->st_mode))
        return *why = "is not a regular file", 1;
    /* A second name elsewhere may be a hard link another user made to a file of root's
     * (where the kernel does not protect hard links): its owner then proves nothing. */
    if (st->st_nlink > 1) {
        *why = cfg_printf(x, "has %lu names (hard links); refused (keep a key in one file)",
                          (unsigned long)st->st_nlink);
        return 1;
    }
    uid_t me = geteuid();
    if (st->st_uid != 0 && st->st_uid != me) {
        *why = cfg_printf(x,
                          "is owned by uid %u, neither root nor rotad's user (uid %u); "
                          "refused",
                          (unsigned)st->st_uid, (unsigned)me);
        return 1;
    }
    unsigned mode = (unsigned)(st->st_mode & 07777);
    if (!(mode & (S_IRGRP | S_IROTH)))
        return 0;
    if (x->strict)
        return cfg_bad(x, path,
                       "names key file %s, readable by %s (mode %04o); refused with strict: "
                       "true; expected a key file only its owner can read (chmod 600 it)",
                       file, readers(mode), mode);
    if (!seen_before(x, st))
        cfg_warn(x, cfg_at(x, "%s", path),
                 "account %s: key file %s is readable by %s (mode %04o); chmod 600 it", who,
                 file, readers(mode), mode);
    return 0;
}

/* Read the first line of the key file "file" (see untrusted) into memory the config
 * owns: 0 with *out set, or 0 with *problem saying why not (a file is the environment's
 * matter, not the config's), or -ENOMEM, or -EINVAL (strict: a file others may read).
 * A symbolic link is refused, not followed. */
static int read_first_line(struct cfg *x, const char *file, const char *path, const char *who,
                           const char **out, const char **problem)
{
    char *buf = malloc(MAX_CRED_LINE + 1);
    ssize_t n = 0, k;
    struct stat st;
    int fd = -1;
    const char *why = NULL;
    int rc = 0;
    if (!buf)
        return cfg_nomem(x);
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) {
        why = "is a symbolic link; refused (name the file itself)";
        goto out;
    }
    if (fd < 0 || fstat(fd, &st) != 0) {
        why = cfg_printf(x, "cannot be read (%s)", strerror(errno));
        goto out;
    }
    if ((rc = untrusted(x, &st, path, who, file, &why)))
        goto out;
    while (n < MAX_CRED_LINE + 1 &&
           (k = read(fd, buf + n, (size_t)(MAX_CRED_LINE + 1 - n))) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            why = cfg_printf(x, "cannot be read (%s)", strerror(errno));
            goto out;
        }
        if (memchr(buf + n, '\n', (size_t)k)) {
            n += k;
            break;
        }
        n += k;
    }
    char *nl = memchr(buf, '\n', (size_t)n);
    size_t len = nl ? (size_t)(nl - buf) : (size_t)n;
    if (len > MAX_CRED_LINE) {
        why = cfg_printf(x, "has a first line over %d bytes", MAX_CRED_LINE);
        goto out;
    }
    if (len && buf[len - 1] == '\r')
        len--;
    if (len == 0 || memchr(buf, 0, len)) {
        why = len ? "has a first line that is not text" : "has an empty first line";
        goto out;
    }
    char *cred = cfg_alloc(x, len + 1);
    if (cred)
        *out = memcpy(cred, buf, len);
out:
    if (fd >= 0)
        close(fd);
    explicit_bzero(buf, (size_t)n);
    free(buf);
    *problem = why;
    if (rc < 0)
        return rc;
    return *out || why ? 0 : cfg_nomem(x);
}

static bool env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Resolve credential text "v" (at "path", of account "who") into *cred (NULL for none or
 * when it does not resolve) and ca's source, and its problem when it does not resolve. */
static int credential(struct cfg *x, const char *v, const char *path, const char *who,
                      const char **cred, struct rota_config_account *ca)
{
    *cred = NULL;
    if (strcmp(v, "none") == 0) {
        ca->cred_source = "none";
        return 0;
    }
    if (strncmp(v, "env:", 4) != 0 && strncmp(v, "file:", 5) != 0) {
        unsigned mode = x->file_mode & 07777;
        if (x->strict && (mode & (S_IRGRP | S_IROTH)))
            return cfg_bad(x, path,
                           "is a literal key in a file readable by %s (mode %04o); refused "
                           "with strict: true; expected env:NAME or file:PATH (or chmod go-r "
                           "the config)",
                           readers(mode), mode);
        cfg_warn(x, cfg_at(x, "%s", path),
                 "account %s: literal credential; use env:NAME or file:PATH", who);
        ca->cred_source = "literal";
        return (*cred = cfg_strdup(x, v)) ? 0 : cfg_nomem(x);
    }
    if (!(ca->cred_source = cfg_strdup(x, v))) /* the raw text is wiped after loading */
        return cfg_nomem(x);
    if (strncmp(v, "env:", 4) == 0) {
        if (!env_name_ok(v + 4))
            return cfg_bad(x, path,
                           "names no valid variable after env:; expected env:NAME with "
                           "letters, digits and '_'");
        const char *e = getenv(v + 4);
        if (e && *e && !(*cred = cfg_strdup(x, e)))
            return cfg_nomem(x);
        ca->cred_problem = !e ? "is not set" : !*e ? "is empty" : NULL;
    } else {
        if (!v[5])
            return cfg_bad(x, path, "names no file after file:; expected file:PATH");
        int rc = read_first_line(x, v + 5, path, who, cred, &ca->cred_problem);
        if (rc)
            return rc;
    }
    if (ca->cred_problem) {
        yaml_mark_t m = cfg_at(x, "%s", path);
        if (!(ca->cred_where = cfg_printf(x, "%s:%zu:%zu", x->name, m.line + 1, m.column + 1)))
            return cfg_nomem(x);
    }
    return 0;
}

/* ---- windows ---- */

struct zones {
    const char *name[ZONE_CACHE]; /* zones that loaded */
    unsigned n;
};

static int check_zone(struct cfg *x, struct zones *z, const char *name, const char *path)
{
    char q[64];
    for (unsigned i = 0; i < z->n; i++)
        if (strcmp(z->name[i], name) == 0)
            return 0;
    struct rota_tz *tz = NULL;
    int rc = rota_tz_load(name, &tz);
    rota_tz_free(tz);
    if (rc == -ENOMEM)
        return cfg_nomem(x);
    if (rc)
        return cfg_bad(x, path,
                       "is '%s', which names no time zone (%s); expected a zone "
                       "such as UTC or America/Los_Angeles",
                       cfg_quote(q, sizeof(q), name), strerror(-rc));
    if (z->n < ZONE_CACHE)
        z->name[z->n++] = name;
    return 0;
}

static int resolve_window(struct cfg *x, struct zones *z, const struct raw_window *w,
                          struct rota_desc_account *a, struct rota_config_account *ca,
                          uint32_t k, const char *base)
{
    char path[160], q[64], msg[256];
    struct rota_desc_window *d = &a->win[k];
    const char *pool = w->pool ? w->pool : "*";
    uint32_t p = 0;
    snprintf(path, sizeof(path), "%s.windows[%u].pool", base, k);
    if (strcmp(pool, "*") != 0) {
        for (p = 1; p < ROTA_MAX_POOLS && a->pools[p] && strcmp(a->pools[p], pool); p++)
            ;
        if (p == ROTA_MAX_POOLS)
            return cfg_bad(x, path,
                           "adds a fifth pool ('%s'); expected at most %d pools per "
                           "account ('*' and %d named)",
                           cfg_quote(q, sizeof(q), pool), ROTA_MAX_POOLS, ROTA_MAX_POOLS - 1);
        for (const char *c = pool; *c; c++)
            if ((unsigned char)*c <= ' ' || *c == 0x7f)
                return cfg_bad(x, path,
                               "has a space or control character; expected a pool "
                               "name such as gemini-pro");
        a->pools[p] = pool;
    }
    d->pool = p;
    d->metric = (enum rota_metric)w->metric;
    d->limit = w->limit ? *w->limit : 0;
    if (d->metric == ROTA_METRIC_FRACTION) {
        snprintf(path, sizeof(path), "%s.windows[%u].limit", base, k);
        if (d->limit && d->limit != 1000000)
            return cfg_bad(x, path,
                           "is set on a fraction window; expected it left out (a "
                           "fraction counts millionths of 1000000)");
        d->limit = 1000000;
    }
    ca->reset[k] = w->reset ? w->reset : "none";
    snprintf(path, sizeof(path), "%s.windows[%u].reset", base, k);
    if (rota_quota_parse_reset(ca->reset[k], &d->reset, msg, sizeof(msg))) {
        char *ex = strstr(msg, ": expected ");
        if (ex)
            *ex = 0;
        return cfg_bad(x, path, "is not a schedule: %s; expected %s", msg,
                       ex ? ex + 11 : "a schedule such as daily 00:00");
    }
    d->tz = w->tz ? w->tz : "UTC";
    snprintf(path, sizeof(path), "%s.windows[%u].tz", base, k);
    return check_zone(x, z, d->tz, path);
}

/* ---- accounts ---- */

static int resolve_account(struct cfg *x, struct zones *z, uint32_t i, uint32_t j, uint32_t k)
{
    const struct raw_provider *rp = &x->raw->providers[i];
    const struct raw_account *r = &rp->accounts[j];
    struct rota_desc_account *a = &x->da[k];
    struct rota_config_account *ca = &x->ca[k];
    char base[64], path[160], who[2 * ROTA_MAX_NAME];
    snprintf(base, sizeof(base), "providers[%u].accounts[%u]", i, j);
    snprintf(who, sizeof(who), "%s/%s", rp->name, r->name);
    snprintf(path, sizeof(path), "%s.name", base);
    if (check_name(x, r->name, path))
        return -EINVAL;
    a->name = r->name;
    a->provider = i;
    ca->line = (uint32_t)cfg_at(x, "%s", base).line + 1;
    if (r->id && !*r->id) {
        snprintf(path, sizeof(path), "%s.id", base);
        return cfg_bad(x, path, "is 0; expected a non-zero id (0 is reserved)");
    }
    a->id = r->id ? *r->id : rota_hash_str(who);
    if (!a->id) /* a hash of 0: the id must not be */
        a->id = 1;
    snprintf(path, sizeof(path), "%s.credential", base);
    if (credential(x, r->credential, path, who, &a->credential, ca))
        return -EINVAL;
    if (cfg_uint(x, r->weight, 1, 1, 65535, &a->weight, "%s.weight", base))
        return -EINVAL;
    a->rpm = r->rpm;
    a->tpm = r->tpm;
    a->rpm_burst = r->rpm_burst;
    a->tpm_burst = r->tpm_burst;
    if ((a->rpm_burst && !a->rpm) || (a->tpm_burst && !a->tpm)) {
        const char *which = a->rpm_burst && !a->rpm ? "rpm" : "tpm";
        snprintf(path, sizeof(path), "%s.%s_burst", base, which);
        return cfg_bad(x, path, "is set without %s; expected %s as well", which, which);
    }
    a->pools[0] = "*";
    a->nwin = r->windows_count;
    for (uint32_t w = 0; w < r->windows_count; w++)
        if (resolve_window(x, z, &r->windows[w], a, ca, w, base))
            return -EINVAL;
    return 0;
}

/* Account names repeated within a provider, then ids repeated anywhere. */
static int check_accounts_unique(struct cfg *x, uint32_t na)
{
    const struct rota_desc_account *a = x->out->pub.desc.accounts;
    struct cfg_key *v = cfg_array(x, na, sizeof(*v));
    uint32_t first, again;
    char q[64];
    if (!v)
        return cfg_nomem(x);
    for (uint32_t k = 0; k < na; k++)
        v[k] = (struct cfg_key){.s = a[k].name, .group = a[k].provider, .idx = k};
    if (cfg_dup(v, na, &first, &again)) {
        char path[96];
        uint32_t p = a[again].provider;
        snprintf(path, sizeof(path), "providers[%u].accounts[%u].name", p, again - x->first[p]);
        return cfg_bad(x, path,
                       "repeats the name of an account of this provider (line %u); "
                       "expected unique names within a provider",
                       x->out->pub.accounts[first].line);
    }
    for (uint32_t k = 0; k < na; k++)
        v[k] = (struct cfg_key){.n = a[k].id, .idx = k};
    if (cfg_dup(v, na, &first, &again)) {
        uint32_t p = a[again].provider, j = again - x->first[p];
        bool explicit_id = x->raw->providers[p].accounts[j].id != NULL;
        char path[96], who[2 * ROTA_MAX_NAME];
        snprintf(path, sizeof(path), "providers[%u].accounts[%u].%s", p, j,
                 explicit_id ? "id" : "name");
        snprintf(who, sizeof(who), "%s/%s", x->out->pub.desc.providers[a[first].provider].name,
                 a[first].name);
        return cfg_bad(x, path,
                       "gives id 0x%016llx, which account %s (line %u) has; expected "
                       "unique ids",
                       (unsigned long long)a[again].id, cfg_quote(q, sizeof(q), who),
                       x->out->pub.accounts[first].line);
    }
    return 0;
}

/* ---- providers ---- */

static int resolve_limits(struct cfg *x, uint32_t i, const char *base)
{
    const struct raw_provider *r = &x->raw->providers[i];
    struct rota_desc_provider *d = &x->dp[i];
    struct rota_config_provider *c = &x->cp[i];
    const struct raw_thresholds *t = r->thresholds;
    const struct raw_breaker *b = r->breaker;
    const struct raw_cooldown *cd = r->cooldown;
    const struct raw_probe *p = r->probe;
    uint64_t open_for, open_max, trial, cd_base, cd_max, disable, size;
    if (cfg_fraction(x, t ? t->warn : NULL, ROTA_WARN_DEFAULT, false, &d->warn,
                     "%s.thresholds.warn", base) ||
        cfg_fraction(x, t ? t->critical : NULL, ROTA_CRIT_DEFAULT, false, &d->crit,
                     "%s.thresholds.critical", base) ||
        cfg_fraction(x, t ? t->pessimistic : NULL, ROTA_PESSIMISTIC_DEFAULT, false,
                     &d->pessimistic, "%s.thresholds.pessimistic", base))
        return -EINVAL;
    if (d->warn > d->crit) {
        char path[96];
        snprintf(path, sizeof(path), "%s.thresholds.%s", base,
                 t && t->warn ? "warn" : "critical");
        return cfg_bad(x, path, "puts warn (%g) above critical (%g); expected warn <= critical",
                       d->warn, d->crit);
    }
    if (cfg_uint(x, b ? b->failures : NULL, 5, 1, 1000000, &d->fail_threshold,
                 "%s.breaker.failures", base) ||
        /* the breaker word counts permits and successes in 7 bits (core/breaker.h) */
        cfg_uint(x, b ? b->half_open : NULL, 1, 1, ROTA_BREAKER_PERMITS_MAX,
                 &d->halfopen_permits, "%s.breaker.half_open", base) ||
        cfg_duration(x, b ? b->open_for : NULL, 30 * NS_PER_S, NS_PER_MS,
                     UINT32_MAX * NS_PER_MS, &open_for, "%s.breaker.open_for", base) ||
        cfg_duration(x, b ? b->open_max : NULL, 600 * NS_PER_S, open_for,
                     UINT32_MAX * NS_PER_MS, &open_max, "%s.breaker.open_max", base) ||
        cfg_duration(x, b ? b->trial_timeout : NULL, 120 * NS_PER_S, NS_PER_S,
                     UINT32_MAX * NS_PER_MS, &trial, "%s.breaker.trial_timeout", base) ||
        cfg_fraction(x, b ? b->failure_rate : NULL, 0, true, &c->fail_rate,
                     "%s.breaker.failure_rate", base) ||
        cfg_uint(x, b ? b->min_calls : NULL, 20, 1, UINT32_MAX, &c->fail_min_calls,
                 "%s.breaker.min_calls", base) ||
        cfg_duration(x, b ? b->window : NULL, 10 * NS_PER_S, NS_PER_MS, 86400 * NS_PER_S,
                     &c->rate_window_ns, "%s.breaker.window", base) ||
        cfg_duration(x, cd ? cd->base : NULL, NS_PER_S, NS_PER_MS, UINT32_MAX * NS_PER_MS,
                     &cd_base, "%s.cooldown.base", base) ||
        cfg_duration(x, cd ? cd->max : NULL, 300 * NS_PER_S, cd_base, UINT32_MAX * NS_PER_MS,
                     &cd_max, "%s.cooldown.max", base) ||
        cfg_duration(x, r->disable_for, 0, 0, UINT32_MAX * NS_PER_S, &disable, "%s.disable_for",
                     base))
        return -EINVAL;
    if (disable && disable < NS_PER_S) {
        char path[96];
        snprintf(path, sizeof(path), "%s.disable_for", base);
        return cfg_bad(x, path, "is below 1s; expected 0s (until re-enabled) or at least 1s");
    }
    d->open_base_ms = (uint32_t)(open_for / NS_PER_MS);
    d->open_cap_ms = (uint32_t)(open_max / NS_PER_MS);
    d->trial_timeout_ms = (uint32_t)(trial / NS_PER_MS);
    d->cooldown_base_ms = (uint32_t)(cd_base / NS_PER_MS);
    d->cooldown_cap_ms = (uint32_t)(cd_max / NS_PER_MS);
    d->disable_for_s = (uint32_t)(disable / NS_PER_S);
    c->probe_enabled = p && p->enabled ? *p->enabled : true;
    if (cfg_duration(x, p ? p->interval : NULL, 300 * NS_PER_S, NS_PER_S, 7 * 86400 * NS_PER_S,
                     &c->probe_interval_ns, "%s.probe.interval", base) ||
        cfg_duration(x, p ? p->jitter : NULL,
                     c->probe_interval_ns < 300 * NS_PER_S ? c->probe_interval_ns
                                                           : 300 * NS_PER_S,
                     0, 7 * 86400 * NS_PER_S, &c->probe_jitter_ns, "%s.probe.jitter", base) ||
        cfg_duration(x, p ? p->timeout : NULL, 5 * NS_PER_S, NS_PER_MS, 3600 * NS_PER_S,
                     &c->probe_timeout_ns, "%s.probe.timeout", base) ||
        cfg_size(x, p ? p->max_bytes : NULL, 1u << 20, 1, UINT32_MAX, &size,
                 "%s.probe.max_bytes", base))
        return -EINVAL;
    c->probe_max_bytes = (uint32_t)size;
    char at[160], q[64];
    if (p && p->method && strcmp(p->method, "GET") && strcmp(p->method, "POST")) {
        snprintf(at, sizeof(at), "%s.probe.method", base);
        return cfg_bad(x, at, "is '%s'; expected GET or POST",
                       cfg_quote(q, sizeof(q), p->method));
    }
    if (p && p->path && p->path[0] != '/') {
        snprintf(at, sizeof(at), "%s.probe.path", base);
        return cfg_bad(x, at, "does not start with '/'; expected a path such as /v1/usage");
    }
    if (p && p->path && strlen(p->path) > PROBE_PATH_MAX) {
        snprintf(at, sizeof(at), "%s.probe.path", base);
        return cfg_bad(x, at, "is %zu bytes long; expected at most %d", strlen(p->path),
                       PROBE_PATH_MAX);
    }
    if (p && p->command) {
        static const char *const http_only[3] = {"path", "method", "body"};
        const char *set[3] = {p->path, p->method, p->body};
        snprintf(at, sizeof(at), "%s.probe.command", base);
        if (!p->command[strspn(p->command, " \t\r\n")])
            return cfg_bad(x, at,
                           "is blank; expected a command such as gh api "
                           "/copilot_internal/user");
        for (int k = 0; k < 3; k++)
            if (set[k]) {
                snprintf(at, sizeof(at), "%s.probe.%s", base, http_only[k]);
                return cfg_bad(x, at,
                               "is set beside command; expected one of them (%s shapes "
                               "the HTTP probe, which command replaces)",
                               http_only[k]);
            }
        if (cfg_exec_exposes_credential(p->command)) {
            snprintf(at, sizeof(at), "%s.probe.command", base);
            if (x->strict)
                return cfg_bad(x, at,
                               "puts the key on a command line, readable by every user in "
                               "/proc; refused with strict: true; expected a command that "
                               "reads ROTA_CREDENTIAL inside the program or passes it on "
                               "stdin");
            cfg_warn(x, cfg_at(x, "%s", at),
                     "exec probe for the accounts of provider %s puts the key on a command "
                     "line, readable by every user in /proc: read ROTA_CREDENTIAL inside the "
                     "program or pass it on stdin",
                     r->name);
        }
        if (!(c->probe_command = cfg_strdup(x, p->command)))
            return cfg_nomem(x);
    }
    const char *raw[4] = {p && p->pointers ? p->pointers->used : NULL,
                          p && p->pointers ? p->pointers->limit : NULL,
                          p && p->pointers ? p->pointers->remaining : NULL,
                          p && p->pointers ? p->pointers->reset : NULL};
    static const char *const pname[4] = {"used", "limit", "remaining", "reset"};
    for (int k = 0; k < 4; k++) {
        if (raw[k] && raw[k][0] != '/' && raw[k][0] != 0) {
            snprintf(at, sizeof(at), "%s.probe.pointers.%s", base, pname[k]);
            return cfg_bad(x, at, "is not a JSON pointer; expected one such as /data/used");
        }
        if (raw[k] && !(c->pointers[k] = cfg_strdup(x, raw[k])))
            return cfg_nomem(x);
    }
    if ((p && p->path && !(c->probe_path = cfg_strdup(x, p->path))) ||
        (p && p->method && !(c->probe_method = cfg_strdup(x, p->method))) ||
        (p && p->body && !(c->probe_body = cfg_strdup(x, p->body))))
        return cfg_nomem(x);
    c->probe_metric = p && p->metric ? (unsigned)*p->metric : ROTA_METRIC_REQUESTS;
    return 0;
}

static int resolve_provider(struct cfg *x, uint32_t i)
{
    const struct raw_provider *r = &x->raw->providers[i];
    struct rota_desc_provider *d = &x->dp[i];
    struct rota_config_provider *c = &x->cp[i];
    char base[32], path[64];
    snprintf(base, sizeof(base), "providers[%u]", i);
    snprintf(path, sizeof(path), "%s.name", base);
    if (check_name(x, r->name, path))
        return -EINVAL;
    d->name = c->name = r->name;
    d->kind = c->kind = cfg_kinds[r->kind].str;
    snprintf(path, sizeof(path), "%s.base_url", base);
    if (r->base_url && cfg_check_base_url(x, r->base_url, path))
        return -EINVAL;
    c->base_url = r->base_url;
    c->auth = cfg_auths[r->auth ? *r->auth : 0].str;
    int rc = cfg_resolve_wire(x, i, base);
    return rc ? rc : resolve_limits(x, i, base);
}

int cfg_resolve_providers(struct cfg *x)
{
    const struct raw_config *raw = x->raw;
    struct rota_config *c = &x->out->pub;
    uint32_t np = raw->providers_count, na = 0, first, again;
    for (uint32_t i = 0; i < np; i++)
        na += raw->providers[i].accounts_count;
    if (na > (1u << 22))
        return cfg_bad(x, "providers", "hold %u accounts; expected at most %u", na, 1u << 22);
    struct cfg_key *v = cfg_array(x, np, sizeof(*v));
    x->dp = cfg_array(x, np, sizeof(*x->dp));
    x->cp = cfg_array(x, np, sizeof(*x->cp));
    x->da = cfg_array(x, na, sizeof(*x->da));
    x->ca = cfg_array(x, na, sizeof(*x->ca));
    x->first = cfg_array(x, np, sizeof(*x->first));
    if (!v || !x->dp || !x->cp || !x->da || !x->ca || !x->first)
        return cfg_nomem(x);
    c->desc.providers = x->dp;
    c->desc.nproviders = np;
    c->providers = x->cp;
    c->desc.accounts = x->da;
    c->accounts = x->ca;
    for (uint32_t i = 0; i < np; i++)
        v[i] = (struct cfg_key){.s = raw->providers[i].name, .idx = i};
    if (cfg_dup(v, np, &first, &again)) {
        char path[48];
        snprintf(path, sizeof(path), "providers[%u].name", again);
        return cfg_bad(x, path,
                       "repeats the name of provider %u (line %zu); expected unique "
                       "provider names",
                       first, cfg_at(x, "providers[%u]", first).line + 1);
    }
    c->desc.naccounts = na; /* from here, rota_config_free wipes what was resolved */
    struct zones z = {.n = 0};
    for (uint32_t i = 0, k = 0; i < np; i++) {
        if (resolve_provider(x, i))
            return -EINVAL;
        x->first[i] = k;
        for (uint32_t j = 0; j < raw->providers[i].accounts_count; j++, k++)
            if (resolve_account(x, &z, i, j, k))
                return -EINVAL;
    }
    return check_accounts_unique(x, na);
}
