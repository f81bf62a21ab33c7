/*
 * config.c - load a rota config: YAML in, checked struct rota_config out.
 *
 * DESIGN
 * Called by rotad at start and on SIGHUP, by rotactl --check and by tests, on one thread
 * per load; nothing here is global but constant tables. The pipeline (config_int.h) runs
 * libyaml's document loader, the schema walk (config_walk.c), libcyaml, then the resolve
 * steps: this file's for the top level and the journal, config_providers.c
 * for providers and accounts, config_routes.c for routes. The first problem stops the
 * load with one line "file:line:col: what; expected what" and nothing is kept.
 *
 * Ownership: a loaded config owns libcyaml's raw structs (names point into them) and a
 * list of allocations for everything derived (arrays of the desc, default paths,
 * credentials). rota_config_free wipes every credential, then frees both. The input bytes
 * and libyaml's copies of the scalars are wiped before they are freed too, as a literal
 * credential may be among them.
 *
 * Trust: rota_config_load reads a file only when it is owned by root or by the user rotad
 * runs as and writable by its owner alone; otherwise it is refused, naming the owner or
 * the mode. Whoever can write the config decides what rotad runs (exec probes) and where
 * the keys go (base_url), so such a file would hand rotad's user to them. Who may read
 * it matters only when it holds a literal key: with strict: true such a file readable by
 * its group or others is refused (config_providers.c; the load passes the file's mode).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config_int.h"
#include "hash.h"
#include "quota.h"

#define MAX_FILE  (64u << 20) /* bytes */
#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

/* ---- memory owned by the config ---- */

struct cfg_mem {
    struct cfg_mem *next;
    max_align_t data[];
};

void *cfg_alloc(struct cfg *x, size_t n)
{
    struct cfg_mem *m = calloc(1, sizeof(*m) + n);
    if (!m)
        return NULL;
    m->next = x->out->mem;
    x->out->mem = m;
    return m->data;
}

void *cfg_array(struct cfg *x, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n))
        return NULL;
    return cfg_alloc(x, n ? n : 1);
}

char *cfg_strdup(struct cfg *x, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cfg_alloc(x, n);
    return d ? memcpy(d, s, n) : NULL;
}

char *cfg_printf(struct cfg *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = n >= 0 ? cfg_alloc(x, (size_t)n + 1) : NULL;
    if (d) {
        va_start(ap, fmt);
        vsnprintf(d, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return d;
}

/* ---- values ---- */

const char *cfg_fmt_duration(uint64_t ns, char *out, size_t n)
{
    static const struct {
        const char *u;
        uint64_t ns;
    } units[] = {{"d", 86400 * NS_PER_S},
                 {"h", 3600 * NS_PER_S},
                 {"m", 60 * NS_PER_S},
                 {"s", NS_PER_S},
                 {"ms", NS_PER_MS},
                 {"us", 1000},
                 {"ns", 1}};
    size_t len = 0;
    out[0] = 0;
    if (ns == 0)
        snprintf(out, n, "0s");
    for (size_t i = 0; ns && i < sizeof(units) / sizeof(units[0]) && len < n; i++)
        if (ns >= units[i].ns) {
            len += (size_t)snprintf(out + len, n - len, "%" PRIu64 "%s", ns / units[i].ns,
                                    units[i].u);
            ns %= units[i].ns;
        }
    return out;
}

int cfg_duration(struct cfg *x, const char *text, uint64_t def, uint64_t min, uint64_t max,
                 uint64_t *out, const char *fmt, ...)
{
    char path[256], q[64], a[48], b[48];
    uint64_t ns = def;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    if (text && rota_parse_duration(text, &ns))
        return cfg_bad(x, path,
                       "is '%s', not a duration; expected a duration such as 250ms, "
                       "30s, 5m, 1h30m or 7d",
                       cfg_quote(q, sizeof(q), text));
    if (ns < min || ns > max)
        return cfg_bad(x, path, "is %s, out of range; expected %s to %s",
                       cfg_fmt_duration(ns, q, sizeof(q)), cfg_fmt_duration(min, a, sizeof(a)),
                       cfg_fmt_duration(max, b, sizeof(b)));
    *out = ns;
    return 0;
}

/* "1048576", "64MiB", "512 KiB": bytes; -EINVAL on anything else or overflow. */
static int parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *u;
        unsigned shift;
    } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
            return -EINVAL;
    if (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(p, units[i].u) == 0) {
            if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
                return -EINVAL;
            *out = v << units[i].shift;
            return 0;
        }
    return -EINVAL;
}

int cfg_size(struct cfg *x, const char *text, uint64_t def, uint64_t min, uint64_t max,
             uint64_t *out, const char *fmt, ...)
{
    char path[256], q[64];
    uint64_t v = def;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    if (text && parse_size(text, &v))
        return cfg_bad(x, path,
                       "is '%s', not a size; expected bytes with an optional KiB, "
                       "MiB or GiB suffix, such as 64MiB",
                       cfg_quote(q, sizeof(q), text));
    if (v < min || v > max)
        return cfg_bad(x, path, "is %" PRIu64 " bytes; expected %" PRIu64 " to %" PRIu64, v,
                       min, max);
    *out = v;
    return 0;
}

int cfg_uint(struct cfg *x, const uint32_t *v, uint32_t def, uint32_t min, uint32_t max,
             uint32_t *out, const char *fmt, ...)
{
    if (v && (*v < min || *v > max)) {
        char path[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(path, sizeof(path), fmt, ap);
        va_end(ap);
        return cfg_bad(x, path, "is %u, out of range; expected %u to %u", *v, min, max);
    }
    *out = v ? *v : def;
    return 0;
}

int cfg_fraction(struct cfg *x, const double *v, double def, bool zero_ok, double *out,
                 const char *fmt, ...)
{
    if (v && !((zero_ok ? *v >= 0 : *v > 0) && *v <= 1)) {
        char path[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(path, sizeof(path), fmt, ap);
        va_end(ap);
        return cfg_bad(x, path, "is %g; expected a fraction %s 0 and at most 1", *v,
                       zero_ok ? "from" : "above");
    }
    *out = v ? *v : def;
    return 0;
}

/* ---- sorting names to find repeats ---- */

static int key_cmp(const void *pa, const void *pb)
{
    const struct cfg_key *a = pa, *b = pb;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    int c = strcmp(a->s ? a->s : "", b->s ? b->s : "");
    if (c)
        return c;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

void cfg_sort(struct cfg_key *v, uint32_t count)
{
    if (count > 1)
        qsort(v, count, sizeof(*v), key_cmp);
}

static bool same_key(const struct cfg_key *a, const struct cfg_key *b)
{
    return a->group == b->group && a->n == b->n &&
           strcmp(a->s ? a->s : "", b->s ? b->s : "") == 0;
}

bool cfg_dup(struct cfg_key *v, uint32_t count, uint32_t *first, uint32_t *again)
{
    bool found = false;
    cfg_sort(v, count);
    for (uint32_t i = 0, j; i < count; i = j) {
        for (j = i + 1; j < count && same_key(&v[i], &v[j]); j++)
            ;
        if (j - i > 1 && (!found || v[i + 1].idx < *again)) {
            *first = v[i].idx;
            *again = v[i + 1].idx;
            found = true;
        }
    }
    return found;
}

/* ---- the top level and the journal ---- */

static int check_socket_path(struct cfg *x, const char *s, const char *path)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (strlen(s) > max)
        return cfg_bad(x, path, "makes a socket path of %zu bytes; expected at most %zu",
                       strlen(s), max);
    return 0;
}

/* Where the state lives when the config does not say: never under /tmp, where anyone
 * may make the directory first. Root's is /var/lib/rota/<instance>; another user's is
 * under $XDG_STATE_HOME (an absolute path), else ~/.local/state, as the XDG base
 * directory specification says. */
static const char *default_state_dir(struct cfg *x, const char *instance)
{
    if (geteuid() == 0)
        return cfg_printf(x, "/var/lib/rota/%s", instance);
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        return cfg_printf(x, "%s/rota/%s", xdg, instance);
    if (home && home[0] == '/')
        return cfg_printf(x, "%s/.local/state/rota/%s", home, instance);
    cfg_bad(x, "state_dir",
            "is not set, and neither XDG_STATE_HOME nor HOME names an absolute directory "
            "for the default; expected state_dir: PATH");
    return NULL;
}

static int resolve_top(struct cfg *x)
{
    const struct raw_config *r = x->raw;
    struct rota_config *c = &x->out->pub;
    char q[64];
    if (!rota_shm_instance_ok(r->instance))
        return cfg_bad(x, "instance", "is '%s'; expected 1 to %d letters, digits, '-' or '_'",
                       cfg_quote(q, sizeof(q), r->instance), ROTA_MAX_NAME - 1);
    c->instance = r->instance;
    c->state_dir = r->state_dir ? r->state_dir : default_state_dir(x, r->instance);
    if (!c->state_dir)
        return -EINVAL;
    c->state_dir_default = !r->state_dir;
    c->strict = x->strict = r->strict && *r->strict;
    c->socket = r->socket ? r->socket : cfg_printf(x, "%s/rotad.sock", c->state_dir);
    if (!c->socket)
        return cfg_nomem(x);
    if (check_socket_path(x, c->socket, r->socket ? "socket" : "state_dir"))
        return -EINVAL;
    if (r->group) {
        struct group g, *res = NULL;
        char buf[16384];
        if (getgrnam_r(r->group, &g, buf, sizeof(buf), &res) != 0 || !res)
            return cfg_bad(x, "group",
                           "is '%s', which names no group here; expected an "
                           "existing group",
                           cfg_quote(q, sizeof(q), r->group));
        c->group = r->group;
    }
    uint64_t stale;
    if (cfg_duration(x, r->heartbeat, NS_PER_S, NS_PER_MS, 3600 * NS_PER_S, &c->heartbeat_ns,
                     "heartbeat") ||
        cfg_duration(x, r->stale_after, 30 * NS_PER_S, NS_PER_MS, 86400 * NS_PER_S, &stale,
                     "stale_after"))
        return -EINVAL;
    if (stale <= c->heartbeat_ns) {
        char a[48], b[48];
        cfg_fmt_duration(stale, a, sizeof(a));
        cfg_fmt_duration(c->heartbeat_ns, b, sizeof(b));
        if (r->stale_after)
            return cfg_bad(x, "stale_after",
                           "is %s, not longer than heartbeat (%s); "
                           "expected stale_after above heartbeat",
                           a, b);
        return cfg_bad(x, "heartbeat",
                       "is %s, not shorter than stale_after (%s); expected "
                       "heartbeat below stale_after",
                       b, a);
    }
    c->desc.stale_after_ns = stale;
    return 0;
}

static bool is_reference(const char *s)
{
    return (strncmp(s, "env:", 4) == 0 && s[4]) || (strncmp(s, "file:", 5) == 0 && s[5]);
}

bool cfg_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

/* Redis over TCP without a password: whoever can reach it (on loopback, every local
 * user) can write its keys and so change the table rotad restores (their records are
 * refused, but they can delete the state, or put back an old one of this instance). A
 * unix socket is left to its file mode. Said at start, in --check and at each reload;
 * the address, never anything else. */
static void warn_open_redis(struct cfg *x, const struct rota_config_journal *o)
{
    if (!o->redis_enabled || o->redis_password_source || o->redis_socket)
        return;
    bool local = cfg_loopback(o->redis_host);
    cfg_warn(x, cfg_at(x, x->raw->journal->redis->host ? "journal.redis.host" : "journal.redis"),
             "journal.redis at %s:%u has no password and %s can write the journal's keys "
             "(%s:*) and delete or roll back the state rotad restores (forged records are "
             "refused); set journal.redis.password, ideally for an ACL user limited to those "
             "keys, or use a unix socket only rotad's user may open (README, \"Security\")",
             o->redis_host, o->redis_port,
             local ? "is on loopback: every local user" : "is not on loopback: whoever can reach it",
             o->redis_prefix);
}

static int resolve_journal(struct cfg *x)
{
    const struct raw_journal *j = x->raw->journal;
    const struct raw_file_journal *f = j ? j->file : NULL;
    const struct raw_redis *r = j ? j->redis : NULL;
    struct rota_config_journal *o = &x->out->pub.journal;
    o->file_enabled = f && f->enabled ? *f->enabled : true;
    o->file_path = f && f->path ? f->path : cfg_printf(x, "%s/journal", x->out->pub.state_dir);
    o->fsync = f && f->fsync ? (enum rota_fsync)(*f->fsync) : ROTA_FSYNC_INTERVAL;
    if (!o->file_path)
        return cfg_nomem(x);
    if (cfg_duration(x, f ? f->interval : NULL, 100 * NS_PER_MS, NS_PER_MS, 3600 * NS_PER_S,
                     &o->fsync_interval_ns, "journal.file.interval") ||
        cfg_duration(x, f ? f->snapshot_every : NULL, 300 * NS_PER_S, NS_PER_S,
                     7 * 86400 * NS_PER_S, &o->snapshot_every_ns,
                     "journal.file.snapshot_every") ||
        cfg_size(x, f ? f->max_bytes : NULL, 64u << 20, 64u << 10, UINT64_C(1) << 40,
                 &o->max_bytes, "journal.file.max_bytes"))
        return -EINVAL;

    o->redis_enabled = r && r->enabled ? *r->enabled : false;
    o->redis_host = r && r->host ? r->host : "127.0.0.1";
    o->redis_socket = r ? r->socket : NULL;
    o->redis_prefix = r && r->prefix ? r->prefix : cfg_printf(x, "rota:%s", x->raw->instance);
    if (!o->redis_prefix)
        return cfg_nomem(x);
    if (r && r->password && !is_reference(r->password))
        return cfg_bad(x, "journal.redis.password",
                       "is not a reference; expected env:NAME or file:PATH (a literal password "
                       "is not accepted here)");
    o->redis_password_source = r ? r->password : NULL;
    o->redis_user = r ? r->user : NULL;
    if (o->redis_user && !o->redis_password_source)
        return cfg_bad(x, "journal.redis.user",
                       "is set without a password; expected journal.redis.password too (Redis "
                       "authenticates a user by its password)");
    for (const char *u = o->redis_user; u && *u; u++)
        if ((unsigned char)*u <= ' ' || *u == 0x7f)
            return cfg_bad(x, "journal.redis.user",
                           "holds a space or a control character; expected an ACL user name");
    if (cfg_uint(x, r ? r->port : NULL, 6379, 1, 65535, &o->redis_port, "journal.redis.port") ||
        cfg_uint(x, r ? r->db : NULL, 0, 0, INT32_MAX, &o->redis_db, "journal.redis.db") ||
        cfg_uint(x, r ? r->stream_max : NULL, 100000, 1, UINT32_MAX, &o->redis_stream_max,
                 "journal.redis.stream_max") ||
        cfg_uint(x, r ? r->buffer : NULL, 10000, 1, UINT32_MAX, &o->redis_buffer,
                 "journal.redis.buffer") ||
        cfg_duration(x, r ? r->ttl : NULL, 7 * 86400 * NS_PER_S, 0, 3650 * 86400 * NS_PER_S,
                     &o->redis_ttl_ns, "journal.redis.ttl"))
        return -EINVAL;
    if (o->redis_socket && check_socket_path(x, o->redis_socket, "journal.redis.socket"))
        return -EINVAL;
    warn_open_redis(x, o);
    return 0;
}

/* ---- the pipeline ---- */

/* Line and column of byte "off" of the input (libyaml gives reader errors as offsets). */
static yaml_mark_t mark_of(const unsigned char *text, size_t len, size_t off)
{
    yaml_mark_t m = {0, 0, 0};
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

static int syntax_error(struct cfg *x, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return cfg_nomem(x);
    yaml_mark_t m = p->error == YAML_READER_ERROR ? mark_of(x->text, x->len, p->problem_offset)
                                                  : p->problem_mark;
    const char *want = "valid YAML";
    if (p->error == YAML_READER_ERROR)
        want = "UTF-8 text";
    else if ((p->problem && strstr(p->problem, "tab")) ||
             (m.index < x->len && x->text[m.index] == '\t')) /* index: exact in ASCII */
        want = "spaces, not tabs, for indentation";
    char ctx[160] = "";
    if (p->context && p->error != YAML_READER_ERROR)
        snprintf(ctx, sizeof(ctx), " %s started at %zu:%zu", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    return cfg_fail(x, m, "%s%s; expected %s", p->problem ? p->problem : "invalid YAML", ctx,
                    want);
}

/* Load the one document of the input into x->doc. */
static int load_document(struct cfg *x)
{
    yaml_parser_t p;
    yaml_document_t more;
    int rc = 0;
    if (!yaml_parser_initialize(&p))
        return cfg_nomem(x);
    yaml_parser_set_input_string(&p, x->text, x->len);
    if (!yaml_parser_load(&p, &x->doc)) {
        memset(&x->doc, 0, sizeof(x->doc));
        rc = syntax_error(x, &p);
    } else if (!yaml_document_get_root_node(&x->doc)) {
        rc = cfg_fail(x, (yaml_mark_t){0, 0, 0},
                      "the file holds no document; expected a mapping with instance "
                      "and providers");
    } else if (!yaml_parser_load(&p, &more)) {
        rc = syntax_error(x, &p);
    } else {
        if (yaml_document_get_root_node(&more))
            rc = cfg_fail(x, more.start_mark,
                          "a second document starts here; expected one document per file");
        yaml_document_delete(&more);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Wipe libyaml's copies of the scalars, then free the document. */
static void drop_document(yaml_document_t *d)
{
    for (yaml_node_t *n = d->nodes.start; n && n < d->nodes.top; n++)
        if (n->type == YAML_SCALAR_NODE)
            explicit_bzero(n->data.scalar.value, n->data.scalar.length);
    yaml_document_delete(d);
}

static void wipe_raw(struct raw_config *r)
{
    for (unsigned i = 0; r && i < r->providers_count; i++)
        for (unsigned j = 0; j < r->providers[i].accounts_count; j++) {
            char *s = r->providers[i].accounts[j].credential;
            if (s)
                explicit_bzero(s, strlen(s));
        }
}

static int run(struct cfg *x)
{
    int rc = load_document(x);
    if (rc)
        return rc;
    if ((rc = cfg_walk(x)))
        return rc;
    struct raw_config *raw = NULL;
    cyaml_err_t e =
        cyaml_load_data(x->text, x->len, &cfg_cyaml, &cfg_schema, (cyaml_data_t **)&raw, NULL);
    if (e != CYAML_OK || !raw) {
        yaml_node_t *root = yaml_document_get_root_node(&x->doc);
        return e == CYAML_ERR_OOM
                   ? cfg_nomem(x)
                   : cfg_fail(x, root->start_mark,
                              "libcyaml refused the document (%s); expected a document "
                              "like examples/rota.yaml",
                              cyaml_strerror(e));
    }
    x->out->raw = raw;
    x->raw = raw;
    x->out->pub.desc.config_hash = rota_hash_bytes(x->text, x->len);
    if ((rc = resolve_top(x)) || (rc = cfg_resolve_providers(x)) ||
        (rc = cfg_resolve_routes(x)) || (rc = resolve_journal(x)) ||
        (rc = cfg_resolve_workers(x)))
        return rc;
    /* A credential behind env: or file: is part of what the table holds: a changed key
     * must make a new generation even when the file's text is the same. */
    struct rota_desc *d = &x->out->pub.desc;
    for (uint32_t i = 0; i < d->naccounts; i++) {
        const char *cred = d->accounts[i].credential;
        uint64_t h = cred ? rota_hash_bytes(cred, strlen(cred)) : 0;
        d->config_hash =
            rota_hash_mix(d->config_hash ^ h ^ (uint64_t)i * 0x9e3779b97f4a7c15ull);
    }
    return 0;
}

/* rota_config_parse of the text of a file whose st_mode is "mode" (0: none). */
static int parse(const char *name, const char *text, size_t len, unsigned mode,
                 rota_config_warn_fn warn, void *warn_arg, struct rota_config **out, char *err,
                 size_t errlen)
{
    if (!name || (!text && len) || !out)
        return -EINVAL;
    if (err && errlen)
        err[0] = 0;
    *out = NULL;
    struct cfg x = {.name = name,
                    .text = (const unsigned char *)(text ? text : ""),
                    .len = len,
                    .err = err,
                    .errlen = errlen,
                    .warn = warn,
                    .warn_arg = warn_arg,
                    .file_mode = mode};
    x.out = calloc(1, sizeof(*x.out));
    if (!x.out)
        return cfg_nomem(&x);
    int rc = run(&x);
    if (!rc && !(x.out->pub.path = cfg_strdup(&x, name)))
        rc = cfg_nomem(&x);
    drop_document(&x.doc);
    wipe_raw(x.out->raw);
    if (rc) {
        rota_config_free(&x.out->pub);
        return rc;
    }
    *out = &x.out->pub;
    return 0;
}

int rota_config_parse(const char *name, const char *text, size_t len, rota_config_warn_fn warn,
                      void *warn_arg, struct rota_config **out, char *err, size_t errlen)
{
    return parse(name, text, len, 0, warn, warn_arg, out, err, errlen);
}

/* Whoever may write the config decides what rotad runs (an exec probe's command) and
 * where its keys go (a base_url): the file "path" ("st") must be owned by root or by the
 * user rotad runs as, and writable by its owner only. True, with "err" saying why, when
 * it is not. */
static bool untrusted(const char *path, const struct stat *st, char *err, size_t errlen)
{
    uid_t me = geteuid();
    if (st->st_uid != 0 && st->st_uid != me) {
        if (err && errlen)
            snprintf(err, errlen,
                     "%s:1:1: is owned by uid %u, neither root nor rotad's user (uid %u); "
                     "refused: whoever can write the config decides what rotad runs "
                     "(chown it)",
                     path, (unsigned)st->st_uid, (unsigned)me);
        return true;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "%s:1:1: is writable by %s (mode %04o); refused: whoever can write the "
                     "config decides what rotad runs (chmod go-w it)",
                     path, st->st_mode & S_IWOTH ? "every user" : "its group",
                     (unsigned)(st->st_mode & 07777));
        return true;
    }
    return false;
}

int rota_config_load(const char *path, rota_config_warn_fn warn, void *warn_arg,
                     struct rota_config **out, char *err, size_t errlen)
{
    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    int rc = fd < 0 ? -errno : fstat(fd, &st) ? -errno : 0;
    if (!rc && !S_ISREG(st.st_mode))
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    if (!rc && (uint64_t)st.st_size > MAX_FILE)
        rc = -EFBIG;
    if (!rc && untrusted(path, &st, err, errlen)) {
        close(fd);
        return -EPERM;
    }
    char *buf = rc ? NULL : malloc((size_t)st.st_size + 1);
    size_t n = 0;
    if (!rc && !buf)
        rc = -ENOMEM;
    while (!rc && n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = k < 0 ? -errno : 0;
            break;
        }
        n += (size_t)k;
    }
    if (fd >= 0)
        close(fd);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen,
                     "%s:1:1: cannot read the file (%s); expected a readable YAML "
                     "file of at most %u MiB",
                     path, strerror(-rc), MAX_FILE >> 20);
        free(buf);
        return rc;
    }
    rc = parse(path, buf, n, (unsigned)st.st_mode, warn, warn_arg, out, err, errlen);
    explicit_bzero(buf, n);
    free(buf);
    return rc;
}

void rota_config_free(struct rota_config *c)
{
    if (!c)
        return;
    struct cfg_owned *o = (struct cfg_owned *)c;
    for (uint32_t i = 0; c->desc.accounts && i < c->desc.naccounts; i++) {
        char *cred = (char *)c->desc.accounts[i].credential;
        if (cred)
            explicit_bzero(cred, strlen(cred));
    }
    wipe_raw(o->raw);
    if (o->raw)
        cyaml_free(&cfg_cyaml, &cfg_schema, o->raw, 0);
    for (struct cfg_mem *m = o->mem, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    free(o);
}
