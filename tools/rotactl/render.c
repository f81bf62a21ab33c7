/*
 * render.c - rotactl's views of a table as text and as JSON.
 *
 * DESIGN
 * Single-threaded, called by main.c and watch.c with a mapped generation. Every figure
 * comes from core/view (rota_view_account, rota_view_instance), which reads the table
 * with the selection's own protocols and never touches a credential; this file only
 * formats. Every name is escaped (escape.c) before it goes into text: a table's names
 * are whatever its writer put there. Text tables are built in memory first (one malloc'd
 * string per cell) so each column is as wide as its widest cell, counted in the columns
 * a terminal gives it, not in bytes. JSON is written in ASCII (\uXXXX for the rest, C1
 * controls and DEL included) and takes core/view_json's shape (the one rotad
 * answers with): field names of struct rota_view_account, times in ms, wall-clock
 * instants as ISO-8601 UTC.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "clock.h"
#include "rotactl.h"
#include "strategy.h"
#include "view_json.h"

#define MS ((uint64_t)ROTA_NS_PER_MS)

const char *rotactl_dur(uint64_t ns, char *buf, size_t n)
{
    uint64_t s = ns / ROTA_NS_PER_S;
    if (ns < ROTA_NS_PER_S)
        snprintf(buf, n, "%" PRIu64 "ms", ns / MS);
    else if (s < 60)
        snprintf(buf, n, "%" PRIu64 "s", s);
    else if (s < 3600 && s % 60)
        snprintf(buf, n, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
    else if (s < 3600)
        snprintf(buf, n, "%" PRIu64 "m", s / 60);
    else if (s < 86400 && s / 60 % 60)
        snprintf(buf, n, "%" PRIu64 "h%" PRIu64 "m", s / 3600, s / 60 % 60);
    else if (s < 86400)
        snprintf(buf, n, "%" PRIu64 "h", s / 3600);
    else if (s / 3600 % 24)
        snprintf(buf, n, "%" PRIu64 "d%" PRIu64 "h", s / 86400, s / 3600 % 24);
    else
        snprintf(buf, n, "%" PRIu64 "d", s / 86400);
    return buf;
}

const char *rotactl_ago(uint64_t ns, char *buf, size_t n)
{
    if (ns == UINT64_MAX) {
        snprintf(buf, n, "never");
        return buf;
    }
    char d[32];
    snprintf(buf, n, "%s ago", rotactl_dur(ns, d, sizeof(d)));
    return buf;
}

const char *rotactl_iso(int64_t wall_ns, char *buf, size_t n)
{
    rota_iso_time(wall_ns, buf, n);
    return buf;
}

/* 1234, 12.3k, 456k, 1.2M: counts an eye can take in. */
static const char *count(uint64_t v, char *buf, size_t n)
{
    static const char units[] = "kMGTPE";
    if (v < 10000) {
        snprintf(buf, n, "%" PRIu64, v);
        return buf;
    }
    double x = (double)v;
    int u = -1;
    while (x >= 1000 && u < 5) {
        x /= 1000;
        u++;
    }
    snprintf(buf, n, x < 10 ? "%.1f%c" : "%.0f%c", x, units[u]);
    return buf;
}

static const char *metric_name(unsigned metric)
{
    static const char *const names[] = {"requests", "tokens", "credits", "fraction"};
    return metric < 4 ? names[metric] : "?";
}

static const char *breaker_name(unsigned st)
{
    static const char *const names[] = {"closed", "open", "half-open"};
    return st < 3 ? names[st] : "?";
}

/* ---- cells ---- */

static char *xfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s) {
        fprintf(stderr, "rotactl: out of memory\n");
        exit(ROTACTL_UNREACHABLE);
    }
    return s;
}

static char *status_cell(const struct rota_view_account *v)
{
    if (v->off)
        return xfmt("OFF:%s", rota_off_name(v->off));
    if (v->cooldown_left_ns)
        return xfmt("COOLDOWN");
    return xfmt("%s%s", rota_quota_status_name(v->status), v->pessimistic ? "~" : "");
}

static char *quota_cell(const struct rota_view_account *v)
{
    if (v->nwin == 0)
        return xfmt("?");
    char out[ROTA_MAX_WINDOWS * (ROTACTL_ESC_NAME + 64)] = ""; /* never cut */
    size_t len = 0;
    for (uint32_t w = 0; w < v->nwin && len < sizeof(out); w++) {
        const struct rota_view_window *x = &v->win[w];
        char u[16], l[16], pct[16] = "";
        char pool[ROTACTL_ESC_NAME];
        rotactl_esc(x->pool, pool, sizeof(pool));
        const char *unit = x->metric == ROTA_METRIC_TOKENS    ? " tok"
                           : x->metric == ROTA_METRIC_CREDITS ? " cr"
                                                              : "";
        if (x->fraction >= 0)
            snprintf(pct, sizeof(pct), " %.0f%%", x->fraction * 100);
        if (x->metric == ROTA_METRIC_FRACTION)
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s%s", w ? ", " : "", pool,
                                    x->fraction >= 0 ? pct : " ?");
        else
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s/%s%s %s%s",
                                    w ? ", " : "", count(x->used, u, sizeof(u)),
                                    x->limit ? count(x->limit, l, sizeof(l)) : "?", unit, pool,
                                    pct);
    }
    return xfmt("%s", out);
}

/* Time until the earliest reset still ahead, or "-". */
static char *resets_cell(const struct rota_view_account *v, int64_t wall)
{
    int64_t best = 0;
    for (uint32_t w = 0; w < v->nwin; w++)
        if (v->win[w].reset_at > wall && (best == 0 || v->win[w].reset_at < best))
            best = v->win[w].reset_at;
    char d[32];
    return best ? xfmt("%s", rotactl_dur((uint64_t)(best - wall), d, sizeof(d))) : xfmt("-");
}

static char *breaker_cell(const struct rota_view_account *v)
{
    char d[32];
    const char *prov = v->provider_breaker_open ? ", provider open" : "";
    if (v->breaker == ROTA_BREAKER_OPEN && v->breaker_left_ns)
        return xfmt("open %s%s", rotactl_dur(v->breaker_left_ns, d, sizeof(d)), prov);
    if (v->breaker == ROTA_BREAKER_OPEN)
        return xfmt("open, trial due%s", prov);
    return xfmt("%s%s", breaker_name(v->breaker), prov);
}

enum {
    C_NAME,
    C_STATUS,
    C_QUOTA,
    C_RESETS,
    C_COOL,
    C_BREAKER,
    C_INFLIGHT,
    C_LAST,
    C_SEL,
    NCOL
};
static const char *const col_head[NCOL] = {"NAME",     "STATUS",    "QUOTA",
                                           "RESETS",   "COOLDOWN",  "BREAKER",
                                           "INFLIGHT", "LAST USED", "SELECTED"};

struct row {
    char *heading; /* a tier heading instead of cells */
    char *cell[NCOL];
};

static void fill_row(struct row *r, const struct rota_view_account *v, int busy, int64_t wall,
                     bool *pess)
{
    *pess |= !busy && v->pessimistic;
    char d[32], p[ROTACTL_ESC_NAME], n[ROTACTL_ESC_NAME];
    r->cell[C_NAME] = xfmt("%s/%s", rotactl_esc(v->provider, p, sizeof(p)),
                           rotactl_esc(v->name, n, sizeof(n)));
    r->cell[C_STATUS] = busy ? xfmt("busy") : status_cell(v);
    r->cell[C_QUOTA] = busy ? xfmt("?") : quota_cell(v);
    r->cell[C_RESETS] = resets_cell(v, wall);
    r->cell[C_COOL] = v->cooldown_left_ns
                          ? xfmt("%s", rotactl_dur(v->cooldown_left_ns, d, sizeof(d)))
                          : xfmt("-");
    r->cell[C_BREAKER] = breaker_cell(v);
    r->cell[C_INFLIGHT] = xfmt("%" PRIu32, v->in_flight);
    r->cell[C_LAST] = xfmt("%s", rotactl_ago(v->last_used_ago_ns, d, sizeof(d)));
    r->cell[C_SEL] = xfmt("%" PRIu64, v->selections);
}

static void print_head(FILE *out, const size_t *w)
{
    for (int c = 0; c < NCOL; c++)
        fprintf(out, "%-*s%s", c == NCOL - 1 ? 0 : (int)w[c], col_head[c],
                c == NCOL - 1 ? "\n" : "  ");
}

/* Every row, columns as wide as their widest cell; a tier heading starts a group with the
 * column heads under it. Frees the cells. */
static void print_rows(FILE *out, struct row *rows, size_t n)
{
    size_t w[NCOL];
    for (int c = 0; c < NCOL; c++)
        w[c] = strlen(col_head[c]);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < NCOL && !rows[i].heading; c++)
            if (rotactl_width(rows[i].cell[c]) > w[c])
                w[c] = rotactl_width(rows[i].cell[c]);
    if (n == 0 || !rows[0].heading)
        print_head(out, w);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].heading) {
            fprintf(out, "%s%s\n", i ? "\n" : "", rows[i].heading);
            print_head(out, w);
            free(rows[i].heading);
            continue;
        }
        for (int c = 0; c < NCOL; c++) {
            rotactl_pad(out, rows[i].cell[c], w[c], c == C_INFLIGHT || c == C_SEL);
            fputs(c == NCOL - 1 ? "\n" : "  ", out);
            free(rows[i].cell[c]);
        }
    }
}

/* Calls "fn" for each account of route "route" (with its tier), or for every account. */
typedef void (*each_fn)(void *arg, uint32_t account, uint32_t tier);
static void each_account(const struct rota_shm_map *m, uint32_t route, each_fn fn, void *arg)
{
    if (route == ROTA_NONE) {
        for (uint32_t a = 0; a < m->naccounts; a++)
            fn(arg, a, ROTA_NONE);
        return;
    }
    const struct rota_shm_route *rt = &m->routes[route];
    for (uint32_t k = 0; k < rt->ntiers; k++) {
        const struct rota_shm_tier *t = &m->tiers[rt->tier0 + k];
        fn(arg, ROTA_NONE, k);
        for (uint32_t i = 0; i < t->nmembers; i++)
            fn(arg, m->members[t->member0 + i].account, k);
    }
}

struct text_acc {
    const struct rota_shm_map *m;
    uint32_t route;
    uint64_t now;
    int64_t wall;
    struct row *rows;
    size_t n;
    bool pess; /* some row is marked pessimistic */
};

static void text_one(void *arg, uint32_t a, uint32_t k)
{
    struct text_acc *t = arg;
    struct row *r = &t->rows[t->n++];
    memset(r, 0, sizeof(*r));
    if (a == ROTA_NONE) {
        const struct rota_shm_tier *tr = &t->m->tiers[t->m->routes[t->route].tier0 + k];
        char prov[ROTACTL_ESC_NAME];
        rotactl_esc(tr->provider == ROTA_NONE
                        ? "mixed"
                        : rota_shm_str(t->m, t->m->providers[tr->provider].name),
                    prov, sizeof(prov));
        const struct rota_shm_route *rt = &t->m->routes[t->route];
        char ctx[40] = "";
        if (tr->context)
            snprintf(ctx, sizeof(ctx), ", context %" PRIu32, tr->context);
        r->heading = xfmt("tier %u: %s, %s, ceiling %.2f%s%s%s%s", k, prov,
                          rota_strategy_name(tr->strategy), tr->ceiling,
                          tr->caps & ROTA_TIER_NO_TOOLS ? ", no tools" : "",
                          tr->caps & ROTA_TIER_NO_IMAGES ? ", no images" : "", ctx,
                          rt->flags & ROTA_ROUTE_NO_XLATE ? ", own format only" : "");
        return;
    }
    struct rota_view_account v;
    int rc = rota_view_account(t->m, a, t->now, t->wall, &v);
    fill_row(r, &v, rc != 0, t->wall, &t->pess);
}

void rotactl_accounts_text(FILE *out, const struct rota_shm_map *m, uint32_t route,
                           uint64_t now, int64_t wall)
{
    size_t cap = m->naccounts;
    if (route != ROTA_NONE) {
        const struct rota_shm_route *rt = &m->routes[route];
        cap = rt->ntiers;
        for (uint32_t k = 0; k < rt->ntiers; k++)
            cap += m->tiers[rt->tier0 + k].nmembers;
    }
    struct text_acc t = {.m = m, .route = route, .now = now, .wall = wall};
    t.rows = calloc(cap ? cap : 1, sizeof(*t.rows));
    if (!t.rows) {
        fprintf(stderr, "rotactl: out of memory\n");
        exit(ROTACTL_UNREACHABLE);
    }
    each_account(m, route, text_one, &t);
    print_rows(out, t.rows, t.n);
    if (t.pess)
        fprintf(out, "~ pessimistic: selections assume the provider's pessimistic figure "
                     "(stale heartbeat or failed probe)\n");
    free(t.rows);
}

/* ---- JSON ----
 * The shape is core/view_json's, the one rotad's control socket answers with; rotactl
 * adds what only a table reader has to say (the index, the pessimism reason, the tier). */

json_t *rotactl_account_json(const struct rota_view_account *v)
{
    json_t *o = rota_view_account_json(v);
    json_object_set_new(o, "index", json_integer(v->index));
    json_object_set_new(o, "pess_reason", json_integer(v->pess_reason));
    if (v->pessimistic)
        json_object_set_new(o, "pessimistic_why",
                            json_string(v->pess_reason ? rota_pess_name(v->pess_reason)
                                        : v->stale     ? "supervisor heartbeat stale"
                                                       : ""));
    return o;
}

struct json_acc {
    const struct rota_shm_map *m;
    uint64_t now;
    int64_t wall;
    json_t *arr;
};

static void json_one(void *arg, uint32_t a, uint32_t k)
{
    struct json_acc *j = arg;
    struct rota_view_account v;
    if (a == ROTA_NONE)
        return;
    bool busy = rota_view_account(j->m, a, j->now, j->wall, &v) != 0;
    json_t *o = rotactl_account_json(&v);
    if (busy) /* the snapshot stayed under rewrite: its half is missing */
        json_object_set_new(o, "status", json_string("busy"));
    if (k != ROTA_NONE)
        json_object_set_new(o, "tier", json_integer(k));
    json_array_append_new(j->arr, o);
}

json_t *rotactl_accounts_json(const struct rota_shm_map *m, uint32_t route, uint64_t now,
                              int64_t wall)
{
    struct json_acc j = {.m = m, .now = now, .wall = wall, .arr = json_array()};
    each_account(m, route, json_one, &j);
    return j.arr;
}

/* ---- one account as text ---- */

static void kv(FILE *out, const char *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kv(FILE *out, const char *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(out, "%-22s ", k);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    va_end(ap);
}

static void window_text(FILE *out, uint32_t w, const struct rota_view_window *x, int64_t wall)
{
    char key[32], pct[16] = "?", reset[96] = "no reset known", iso[40], d[32];
    char pool[ROTACTL_ESC_NAME];
    snprintf(key, sizeof(key), "window %u:", w);
    if (x->fraction >= 0)
        snprintf(pct, sizeof(pct), "%.1f%%", x->fraction * 100);
    if (x->reset_at > 0)
        snprintf(reset, sizeof(reset), "resets %s (%s %s)",
                 rotactl_iso(x->reset_at, iso, sizeof(iso)), x->reset_at > wall ? "in" : "due",
                 rotactl_dur(x->reset_at > wall ? (uint64_t)(x->reset_at - wall)
                                                : (uint64_t)(wall - x->reset_at),
                             d, sizeof(d)));
    char lim[24] = "?";
    if (x->limit)
        snprintf(lim, sizeof(lim), "%" PRIu64, x->limit);
    kv(out, key, "pool %s, %s %" PRIu64 " of %s (%s), %s",
       rotactl_esc(x->pool, pool, sizeof(pool)), metric_name(x->metric), x->used, lim, pct,
       reset);
}

void rotactl_account_text(FILE *out, const struct rota_view_account *v, int64_t wall)
{
    char d[32], e[40], p[ROTACTL_ESC_NAME], n[ROTACTL_ESC_NAME], k[ROTACTL_ESC_NAME];
    rotactl_esc(v->provider, p, sizeof(p));
    kv(out, "account:", "%s/%s", p, rotactl_esc(v->name, n, sizeof(n)));
    kv(out, "id:", "0x%016" PRIx64, v->id);
    kv(out, "index:", "%" PRIu32, v->index);
    kv(out, "provider:", "%s (kind %s)", p, rotactl_esc(v->kind, k, sizeof(k)));
    kv(out, "status:", "%s", rota_quota_status_name(v->status));
    if (v->fraction >= 0)
        kv(out, "used:", "%.1f%% (most used window)", v->fraction * 100);
    else
        kv(out, "used:", "unknown");
    if (!v->off)
        kv(out, "in rotation:", "yes");
    else if (v->off_left_ns)
        kv(out, "in rotation:", "no: %s, %s left", rota_off_name(v->off),
           rotactl_dur(v->off_left_ns, d, sizeof(d)));
    else if (v->off == ROTA_OFF_CREDENTIAL)
        kv(out, "in rotation:", "no: credential, until it resolves (rotad's log says which)");
    else
        kv(out, "in rotation:", "no: %s, until enabled", rota_off_name(v->off));
    kv(out, "cooldown:", "%s",
       v->cooldown_left_ns ? rotactl_dur(v->cooldown_left_ns, d, sizeof(d)) : "-");
    if (v->breaker == ROTA_BREAKER_OPEN)
        kv(out, "breaker:", "open, %s left, trip %u",
           rotactl_dur(v->breaker_left_ns, d, sizeof(d)), v->breaker_trips);
    else
        kv(out, "breaker:", "%s, trips %u", breaker_name(v->breaker), v->breaker_trips);
    kv(out, "provider breaker:", "%s", v->provider_breaker_open ? "open" : "closed");
    if (v->pessimistic && v->pess_reason)
        kv(out, "pessimistic:", "yes (%s%s)", rota_pess_name(v->pess_reason),
           v->stale ? "; supervisor heartbeat stale" : "");
    else if (v->pessimistic)
        kv(out, "pessimistic:", "yes (%s)",
           v->stale ? "supervisor heartbeat stale" : "the supervisor says so");
    else
        kv(out, "pessimistic:", "no");
    kv(out, "stale:", "%s", v->stale ? "yes" : "no");
    kv(out, "in flight:", "%" PRIu32, v->in_flight);
    kv(out, "last used:", "%s", rotactl_ago(v->last_used_ago_ns, d, sizeof(d)));
    kv(out, "selections:", "%" PRIu64, v->selections);
    kv(out, "done:", "%" PRIu64, v->done);
    kv(out, "failures:", "%" PRIu64, v->failures);
    kv(out, "rate limited:", "%" PRIu64, v->rate_limited);
    kv(out, "auth failures:", "%" PRIu64, v->auth_failures);
    kv(out, "tokens:", "%" PRIu64, v->tokens);
    kv(out, "latency:", "%s", v->latency_ns ? rotactl_dur(v->latency_ns, d, sizeof(d)) : "-");
    kv(out, "weight:", "%" PRIu32, v->weight);
    if (v->rpm)
        kv(out, "rpm:", "%" PRIu32, v->rpm);
    else
        kv(out, "rpm:", "-");
    if (v->tpm)
        kv(out, "tpm:", "%" PRIu32, v->tpm);
    else
        kv(out, "tpm:", "-");
    if (v->probe_at > 0)
        kv(out, "last observation:", "%s (%s)", rotactl_iso(v->probe_at, e, sizeof(e)),
           rotactl_ago(wall > v->probe_at ? (uint64_t)(wall - v->probe_at) : 0, d, sizeof(d)));
    else
        kv(out, "last observation:", "never");
    kv(out, "windows:", "%" PRIu32, v->nwin);
    for (uint32_t w = 0; w < v->nwin; w++)
        window_text(out, w, &v->win[w], wall);
}

/* ---- the instance ---- */

static const char *bytes(uint64_t b, char *buf, size_t n)
{
    if (b < 10240)
        snprintf(buf, n, "%" PRIu64 " B", b);
    else if (b < 10 * 1024 * 1024)
        snprintf(buf, n, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, n, "%.1f MiB", (double)b / (1024 * 1024));
    return buf;
}

void rotactl_instance_text(FILE *out, const struct rota_view_instance *vi)
{
    char d[32], e[40], b[32], inst[ROTACTL_ESC_NAME];
    int64_t wall = rota_clock_wall();
    kv(out, "instance:", "%s", rotactl_esc(vi->instance, inst, sizeof(inst)));
    kv(out, "generation:", "%" PRIu64 " (built %s, %s)", vi->generation,
       rotactl_iso(vi->created_at, e, sizeof(e)),
       rotactl_ago(wall > vi->created_at ? (uint64_t)(wall - vi->created_at) : 0, d,
                   sizeof(d)));
    kv(out, "config hash:", "0x%016" PRIx64, vi->config_hash);
    kv(out, "supervisor:", "pid %" PRId32 ", %s, started %s", vi->sup_pid,
       vi->sup_alive ? "alive" : "NOT RUNNING", rotactl_iso(vi->sup_start, e, sizeof(e)));
    kv(out, "heartbeat:", "%s%s", rotactl_ago(vi->heartbeat_age_ns, d, sizeof(d)),
       vi->stale ? "  STALE (workers are pessimistic)" : "");
    kv(out, "accounts:", "%" PRIu32 " (%" PRIu32 " providers, %" PRIu32 " routes)",
       vi->naccounts, vi->nproviders, vi->nroutes);
    kv(out, "status:",
       "%" PRIu32 " healthy, %" PRIu32 " warning, %" PRIu32 " critical, %" PRIu32
       " exhausted, %" PRIu32 " unknown",
       vi->healthy, vi->warning, vi->critical, vi->exhausted, vi->unknown);
    kv(out, "out of rotation:",
       "%" PRIu32 " off, %" PRIu32 " cooling down, %" PRIu32 " breaker open", vi->off,
       vi->cooling, vi->open);
    kv(out, "in flight:", "%" PRIu64, vi->in_flight);
    kv(out, "selections:", "%" PRIu64, vi->selections);
    kv(out, "fairness (gini):", "%.3f", vi->gini);
    kv(out, "table size:", "%s", bytes(vi->table_bytes, b, sizeof(b)));
}

void rotactl_instance_line(FILE *out, const struct rota_view_instance *vi)
{
    char d[32], inst[ROTACTL_ESC_NAME];
    fprintf(out,
            "%s gen %" PRIu64 "  rotad pid %" PRId32 " %s  heartbeat %s%s  %" PRIu32
            " accounts: %" PRIu32 " healthy %" PRIu32 " warning %" PRIu32 " critical %" PRIu32
            " exhausted %" PRIu32 " unknown %" PRIu32 " off %" PRIu32 " cooling %" PRIu32
            " open  in flight %" PRIu64 "\n",
            rotactl_esc(vi->instance, inst, sizeof(inst)), vi->generation, vi->sup_pid,
            vi->sup_alive ? "up" : "DOWN", rotactl_ago(vi->heartbeat_age_ns, d, sizeof(d)),
            vi->stale ? " STALE" : "", vi->naccounts, vi->healthy, vi->warning, vi->critical,
            vi->exhausted, vi->unknown, vi->off, vi->cooling, vi->open, vi->in_flight);
}

int rotactl_print_json(json_t *j)
{
    /* ASCII, jansson escaping the rest, except DEL, which it leaves raw: it can only stand
     * inside a string, where \u007f is the same character. */
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    for (const char *p = s ? s : "null"; *p; p++)
        if (*p == 0x7f)
            fputs("\\u007f", stdout);
        else
            fputc(*p, stdout);
    fputc('\n', stdout);
    free(s);
    json_decref(j);
    return ROTACTL_OK;
}
