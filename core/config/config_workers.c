/*
 * config_workers.c - resolve the "workers:" section: the dispatch pool rotad runs.
 *
 * DESIGN
 * Runs last on the loading thread (it names routes). Every default is filled in here, so
 * what rotad passes to each rota-worker, and what --check prints, is the whole of what
 * the workers run with:
 *
 *   processes    the CPU count (sysconf), threads 1 per process
 *   listen       tcp 127.0.0.1:8080
 *   access_log   stderr (rotad's log); "off", or a file path rotad opens for appending
 *   limits       header_bytes 16KiB, headers 100, body_bytes 32MiB, connections 16384
 *                (per worker thread)
 *   timeouts     header 10s, body 30s, keepalive 75s (an idle client connection),
 *                connect 10s, first_byte 60s, idle 60s (between pieces of an answer),
 *                request 120s (every attempt of a request), drain 30s (old workers
 *                finishing their requests after a listener change or at stop)
 *   attempts     3
 *
 * A listener off loopback needs client keys: a pool that spends the accounts' quota for
 * anyone who can reach it is refused, naming the listener. Client keys hold only the
 * SHA-256 of the key (64 hex digits, as `sha256sum` prints it), so a config readable by
 * others gives away no key; each may be limited to routes (by route name or model) and
 * to requests and tokens per minute.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config_int.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

/* A duration in ms in [min_ms, max_ms]. */
static int timeout_ms(struct cfg *x, const char *text, uint32_t def_ms, uint32_t min_ms,
                      uint32_t max_ms, uint32_t *out, const char *key)
{
    uint64_t ns;
    if (cfg_duration(x, text, def_ms * NS_PER_MS, min_ms * NS_PER_MS, max_ms * NS_PER_MS, &ns,
                     "workers.timeouts.%s", key))
        return -EINVAL;
    *out = (uint32_t)(ns / NS_PER_MS);
    return 0;
}

static int resolve_timeouts(struct cfg *x, struct rota_config_workers *w)
{
    const struct raw_worker_timeouts *t = x->raw->workers->timeouts;
    const uint32_t day = 86400 * 1000;
#define T(key, def, field) timeout_ms(x, t ? t->key : NULL, def, 1, day, &w->field, #key)
    if (T(header, 10000, header_timeout_ms) || T(body, 30000, body_timeout_ms) ||
        T(keepalive, 75000, keepalive_timeout_ms) || T(connect, 10000, connect_timeout_ms) ||
        T(first_byte, 60000, first_byte_timeout_ms) || T(idle, 60000, idle_timeout_ms) ||
        T(request, 120000, request_timeout_ms) || T(drain, 30000, drain_timeout_ms))
        return -EINVAL;
#undef T
    return 0;
}

static int resolve_limits(struct cfg *x, struct rota_config_workers *w)
{
    const struct raw_worker_limits *l = x->raw->workers->limits;
    uint64_t head;
    if (cfg_size(x, l ? l->header_bytes : NULL, 16384, 1024, 1u << 20, &head,
                 "workers.limits.header_bytes") ||
        cfg_size(x, l ? l->body_bytes : NULL, 32u << 20, 1024, UINT64_C(1) << 32,
                 &w->max_body_bytes, "workers.limits.body_bytes") ||
        cfg_uint(x, l ? l->headers : NULL, 100, 1, 10000, &w->max_headers,
                 "workers.limits.headers") ||
        cfg_uint(x, l ? l->connections : NULL, 16384, 1, 1u << 20, &w->max_connections,
                 "workers.limits.connections"))
        return -EINVAL;
    w->max_header_bytes = (uint32_t)head;
    return 0;
}

/* "host:port" or "[v6]:port", the port 1..65535 (0 is refused: every process of the pool
 * must listen on the same one). Sets *loop when the host is this machine. */
static int check_tcp(struct cfg *x, const char *s, bool *loop, const char *path)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    size_t hl = colon ? (size_t)(colon - s) : 0;
    if (!colon || hl == 0 || hl >= sizeof(host))
        return cfg_bad(x, path, "is not HOST:PORT; expected 127.0.0.1:8080 or [::1]:8080");
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']')
            return cfg_bad(x, path, "has an unclosed '['; expected [::1]:8080");
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535)
        return cfg_bad(x, path, "has port '%s'; expected 1 to 65535", colon + 1);
    *loop = cfg_loopback(host);
    return 0;
}

static int resolve_listener(struct cfg *x, uint32_t i, struct rota_config_listener *o)
{
    const struct raw_listener *l = &x->raw->workers->listen[i];
    char path[64];
    snprintf(path, sizeof(path), "workers.listen[%u]", i);
    if (!!l->tcp == !!l->unix_path)
        return cfg_bad(x, path, "has %s; expected one of tcp: HOST:PORT or unix: PATH",
                       l->tcp ? "both tcp and unix" : "neither tcp nor unix");
    if (l->tcp) {
        o->tcp = l->tcp;
        snprintf(path, sizeof(path), "workers.listen[%u].tcp", i);
        if (l->mode)
            return cfg_bad(x, path, "has a mode; expected mode only beside unix");
        return check_tcp(x, l->tcp, &o->loopback, path);
    }
    o->unix_path = l->unix_path;
    o->loopback = true;
    o->unix_mode = 0660;
    snprintf(path, sizeof(path), "workers.listen[%u].unix", i);
    if (l->unix_path[0] != '/')
        return cfg_bad(x, path, "is a relative path; expected an absolute one");
    if (strlen(l->unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return cfg_bad(x, path, "is %zu bytes long; expected at most %zu", strlen(l->unix_path),
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    if (l->mode) {
        char *end;
        unsigned long m = strtoul(l->mode, &end, 8);
        snprintf(path, sizeof(path), "workers.listen[%u].mode", i);
        if (*end || m > 0777 || (m & 0600) != 0600)
            return cfg_bad(x, path,
                           "is '%s'; expected an octal mode such as \"0660\" that lets "
                           "its owner read and write",
                           l->mode);
        o->unix_mode = (uint32_t)m;
    }
    return 0;
}

static int resolve_listeners(struct cfg *x, struct rota_config_workers *w)
{
    const struct raw_workers *r = x->raw->workers;
    uint32_t n = r->listen_count ? r->listen_count : 1;
    struct rota_config_listener *ls = cfg_array(x, n, sizeof(*ls));
    if (!ls)
        return cfg_nomem(x);
    w->listeners = ls;
    w->nlisteners = n;
    if (!r->listen_count) {
        ls[0] = (struct rota_config_listener){.tcp = "127.0.0.1:8080", .loopback = true};
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (resolve_listener(x, i, &ls[i]))
            return -EINVAL;
        for (uint32_t j = 0; j < i; j++) {
            const char *a = ls[i].tcp ? ls[i].tcp : ls[i].unix_path;
            const char *b = ls[j].tcp ? ls[j].tcp : ls[j].unix_path;
            if (!!ls[i].tcp == !!ls[j].tcp && strcmp(a, b) == 0) {
                char p[48];
                snprintf(p, sizeof(p), "workers.listen[%u]", i);
                return cfg_bad(x, p, "repeats workers.listen[%u]; expected each once", j);
            }
        }
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Does a route have "name" as its name or one of its models? */
static bool names_route(const struct rota_desc *d, const char *name)
{
    for (uint32_t r = 0; r < d->nroutes; r++) {
        if (strcmp(d->routes[r].name, name) == 0)
            return true;
        for (const char *const *m = d->routes[r].models; m && *m; m++)
            if (strcmp(*m, name) == 0)
                return true;
    }
    return false;
}

static int resolve_key(struct cfg *x, uint32_t i, struct rota_config_client_key *o)
{
    const struct raw_client_key *k = &x->raw->workers->keys[i];
    const struct rota_desc *d = &x->out->pub.desc;
    char path[64], q[64];
    snprintf(path, sizeof(path), "workers.keys[%u].name", i);
    for (const char *s = k->name; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '"' || *s == '\\')
            return cfg_bad(x, path,
                           "has a space, quote or control character; expected a "
                           "name such as team-a");
    o->name = k->name;
    snprintf(path, sizeof(path), "workers.keys[%u].sha256", i);
    size_t len = strlen(k->sha256);
    for (size_t j = 0; len == 64 && j < 32; j++) {
        int hi = hexval(k->sha256[2 * j]), lo = hexval(k->sha256[2 * j + 1]);
        if (hi < 0 || lo < 0)
            len = 0;
        else
            o->sha256[j] = (uint8_t)(hi << 4 | lo);
    }
    if (len != 64)
        return cfg_bad(x, path,
                       "is not 64 hexadecimal digits; expected the key's SHA-256, as "
                       "`printf %%s KEY | sha256sum` prints it (never the key itself)");
    o->routes = (const char **)k->routes;
    o->nroutes = k->routes_count;
    for (uint32_t j = 0; j < k->routes_count; j++)
        if (!names_route(d, k->routes[j])) {
            snprintf(path, sizeof(path), "workers.keys[%u].routes[%u]", i, j);
            return cfg_bad(x, path,
                           "is '%s', which names no route; expected a route's name "
                           "or one of its models",
                           cfg_quote(q, sizeof(q), k->routes[j]));
        }
    o->rpm = k->rpm;
    o->tpm = k->tpm;
    o->line = (uint32_t)cfg_at(x, "workers.keys[%u]", i).line + 1;
    return 0;
}

static int resolve_keys(struct cfg *x, struct rota_config_workers *w)
{
    const struct raw_workers *r = x->raw->workers;
    uint32_t n = r->keys_count;
    if (!n)
        return 0;
    struct rota_config_client_key *ks = cfg_array(x, n, sizeof(*ks));
    struct cfg_key *names = cfg_array(x, n, sizeof(*names));
    if (!ks || !names)
        return cfg_nomem(x);
    for (uint32_t i = 0; i < n; i++) {
        if (resolve_key(x, i, &ks[i]))
            return -EINVAL;
        names[i] = (struct cfg_key){.s = ks[i].name, .idx = i};
        for (uint32_t j = 0; j < i; j++)
            if (memcmp(ks[i].sha256, ks[j].sha256, 32) == 0) {
                char p[48];
                snprintf(p, sizeof(p), "workers.keys[%u].sha256", i);
                return cfg_bad(x, p,
                               "is the hash of workers.keys[%u] too; expected one entry "
                               "per key",
                               j);
            }
    }
    uint32_t first, again;
    if (cfg_dup(names, n, &first, &again)) {
        char p[48], q[64];
        snprintf(p, sizeof(p), "workers.keys[%u].name", again);
        return cfg_bad(x, p, "repeats '%s' of workers.keys[%u]; expected each name once",
                       cfg_quote(q, sizeof(q), ks[again].name), first);
    }
    w->keys = ks;
    w->nkeys = n;
    /* The table's copy (shm/table.h): allowed routes as route indexes. */
    struct rota_desc *d = &x->out->pub.desc;
    struct rota_desc_client_key *dk = cfg_array(x, n, sizeof(*dk));
    if (!dk)
        return cfg_nomem(x);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t *idx = cfg_array(x, ks[i].nroutes, sizeof(*idx));
        if (!idx)
            return cfg_nomem(x);
        if (rota_desc_key_routes(d, ks[i].routes, ks[i].nroutes, idx, NULL, 0))
            return cfg_bad(x, "workers.keys", "names a route that is not there");
        dk[i] = (struct rota_desc_client_key){.name = ks[i].name,
                                              .routes = idx,
                                              .nroutes = ks[i].nroutes,
                                              .rpm = ks[i].rpm,
                                              .tpm = ks[i].tpm};
        memcpy(dk[i].sha256, ks[i].sha256, sizeof(dk[i].sha256));
    }
    d->keys = dk;
    d->nkeys = n;
    return 0;
}

int cfg_resolve_workers(struct cfg *x)
{
    const struct raw_workers *r = x->raw->workers;
    struct rota_config_workers *w = &x->out->pub.workers;
    if (!r)
        return 0;
    w->enabled = true;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t def_procs = cpus < 1 ? 1 : cpus > 64 ? 64 : (uint32_t)cpus;
    w->program = r->program;
    w->ca_file = r->ca_file;
    w->access_log = r->access_log ? r->access_log : "stderr";
    if (strcmp(w->access_log, "stderr") != 0 && strcmp(w->access_log, "off") != 0 &&
        w->access_log[0] != '/')
        return cfg_bad(x, "workers.access_log",
                       "is '%s'; expected stderr, off, or an absolute file path",
                       w->access_log);
    if (w->program && w->program[0] != '/')
        return cfg_bad(x, "workers.program", "is a relative path; expected an absolute one");
    if (w->ca_file && w->ca_file[0] != '/')
        return cfg_bad(x, "workers.ca_file", "is a relative path; expected an absolute one");
    if (cfg_uint(x, r->processes, def_procs, 1, 64, &w->processes, "workers.processes") ||
        cfg_uint(x, r->threads, 1, 1, 64, &w->threads, "workers.threads") ||
        cfg_uint(x, r->attempts, 3, 1, 16, &w->attempts, "workers.attempts") ||
        resolve_limits(x, w) || resolve_timeouts(x, w) || resolve_listeners(x, w) ||
        resolve_keys(x, w))
        return -EINVAL;
    for (uint32_t i = 0; i < w->nlisteners; i++)
        if (!w->listeners[i].loopback && !w->nkeys) {
            char p[48];
            snprintf(p, sizeof(p), "workers.listen[%u].tcp", i);
            return cfg_bad(x, p,
                           "is '%s', off loopback, and workers.keys is empty: anyone who can "
                           "reach it would spend the accounts; expected client keys, or a "
                           "loopback address",
                           w->listeners[i].tcp);
        }
    return 0;
}
