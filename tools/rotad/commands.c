/*
 * commands.c - what rotad answers on its control socket.
 *
 * DESIGN
 * One function per command, each taking the request's arguments (the command line after
 * the command's name) and returning a reply {"ok": true, "data": ...} or {"ok": false,
 * "error": "..."}. Runs on the main thread, the table's only writer, so operator actions
 * write snapshots directly (core/supervise). Every action is logged, by account name.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "control.h"
#include "hash.h"
#include "log.h"
#include "quota.h"
#include "rotad.h"
#include "strategy.h"
#include "view_json.h"

#define ARGS_MAX ROTA_CTL_MAX_ARGS

struct args {
    int n;
    const char *v[ARGS_MAX];
};

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rota_ctl_error(msg); /* cleaned: a cut client string is not UTF-8 */
}

static json_t *ok(json_t *data)
{
    return json_pack("{s:b, s:o}", "ok", 1, "data", data ? data : json_object());
}

/* Take "--name VALUE" out of "a"; NULL if absent. "*bad" when the value is missing.
 * Options follow the command's one positional argument (rotactl sends them so), which is
 * never read as an option: a name may start with '-'. */
static const char *take_opt(struct args *a, const char *name, bool *bad)
{
    for (int i = 1; i < a->n; i++) {
        if (strcmp(a->v[i], name) != 0)
            continue;
        if (i + 1 >= a->n) {
            *bad = true;
            return NULL;
        }
        const char *v = a->v[i + 1];
        memmove(&a->v[i], &a->v[i + 2], (size_t)(a->n - i - 2) * sizeof(a->v[0]));
        a->n -= 2;
        return v;
    }
    return NULL;
}

/* The account named by the first argument, or a reply saying why not. */
static uint32_t account_arg(struct rotad *d, const struct args *a, json_t **err)
{
    if (a->n < 1) {
        *err = fail("which account? (provider/name, name or 0x<id>)");
        return ROTA_NONE;
    }
    uint32_t i = rota_sup_find_account(rotad_map(d), a->v[0]);
    if (i == ROTA_NONE)
        *err = fail("no account '%s'", a->v[0]);
    else if (i == ROTA_NONE - 1)
        *err = fail("'%s' names more than one account; say provider/name", a->v[0]);
    return i >= ROTA_NONE - 1 ? ROTA_NONE : i;
}

static const char *acct_name(struct rotad *d, uint32_t i, char *buf, size_t n)
{
    struct rota_shm_map *m = rotad_map(d);
    snprintf(buf, n, "%s/%s", rota_shm_str(m, m->providers[m->accounts[i].provider].name),
             rota_shm_str(m, m->accounts[i].name));
    return buf;
}

static struct rotad_note *note_of(struct rotad *d, uint64_t id)
{
    for (struct rotad_note *x = d->notes; x; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

static void note_set(struct rotad *d, uint64_t id, const char *text)
{
    struct rotad_note *x = note_of(d, id);
    if (!text) {
        if (x)
            x->text[0] = 0;
        return;
    }
    if (!x && (x = calloc(1, sizeof(*x)))) {
        x->id = id;
        x->next = d->notes;
        d->notes = x;
    }
    if (x) {
        snprintf(x->text, sizeof(x->text), "%s", text);
        x->at = rotad_wall(d);
    }
}

void rotad_notes_free(struct rotad *d)
{
    while (d->notes) {
        struct rotad_note *x = d->notes;
        d->notes = x->next;
        free(x);
    }
}

static json_t *account_json(struct rotad *d, uint32_t i)
{
    struct rota_view_account v;
    struct rota_shm_map *m = rotad_map(d);
    for (int tries = 0; rota_view_account(m, i, rota_clock_mono(), rotad_wall(d), &v); tries++)
        if (tries > 100)
            return NULL;
    json_t *o = rota_view_account_json(&v);
    if (v.pessimistic)
        json_object_set_new(o, "pessimistic_why", json_string(rota_pess_name(v.pess_reason)));
    for (uint32_t k = 0; k < d->nprobed; k++)
        if (d->probed[k].id == v.id && d->probed[k].fails)
            json_object_set_new(o, "probe_error",
                                json_pack("{s:i, s:s}", "failures", (int)d->probed[k].fails,
                                          "last", d->probed[k].error));
    struct rotad_note *x = note_of(d, v.id);
    if (x && x->text[0])
        json_object_set_new(o, "note", json_string(x->text));
    return o;
}

static json_t *cmd_status(struct rotad *d, struct args *a)
{
    struct rota_shm_map *m = rotad_map(d);
    struct rota_view_instance v;
    rota_view_instance(m, rota_clock_mono(), rotad_wall(d), &v);
    uint32_t live;
    uint64_t held;
    rota_shm_clients_count(rota_shm_writer_clients(d->w), &live, &held);
    char started[32];
    rota_iso_time(d->started_wall, started, sizeof(started));
    json_t *o = rota_view_instance_json(&v);
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "config", json_string(d->config_path));
    json_object_set_new(o, "socket", json_string(d->cfg->socket));
    json_object_set_new(o, "state_origin", json_string(d->origin));
    if (d->restore.at) {
        char at[32];
        rota_iso_time(d->restore.at, at, sizeof(at));
        json_object_set_new(o, "state_from", json_string(d->restore.source));
        json_object_set_new(o, "state_at", json_string(at));
        json_object_set_new(o, "state_age_s",
                            json_real((double)(rotad_wall(d) - d->restore.at) / 1e9));
    }
    json_object_set_new(o, "started_at", json_string(started));
    json_object_set_new(
        o, "uptime_s",
        json_integer((json_int_t)((rota_clock_mono() - d->started_mono) / 1000000000)));
    json_object_set_new(o, "reloads", json_integer((json_int_t)d->reloads));
    json_object_set_new(o, "reload_failures", json_integer((json_int_t)d->reload_failures));
    json_object_set_new(o, "last_reload_error", json_string(d->last_reload_error));
    json_object_set_new(o, "quota_resets", json_integer((json_int_t)d->resets));
    json_object_set_new(o, "rate_trips", json_integer((json_int_t)d->rate_trips));
    json_object_set_new(o, "leases_reclaimed", json_integer((json_int_t)d->leases_reclaimed));
    json_object_set_new(o, "workers_attached", json_integer(live));
    json_object_set_new(o, "calls_held", json_integer((json_int_t)held));
    json_object_set_new(o, "requests", json_integer((json_int_t)d->requests));
    json_object_set_new(o, "frames_refused", json_integer((json_int_t)d->frames_refused));
    json_object_set_new(o, "probed_accounts", json_integer(d->nprobed));
    json_object_set_new(o, "probes_ok", json_integer((json_int_t)d->probes_ok));
    json_object_set_new(o, "probes_failed", json_integer((json_int_t)d->probes_failed));
    json_object_set_new(o, "passive_folded", json_integer((json_int_t)d->passive_folded));
    return ok(o);
}

static json_t *cmd_accounts(struct rotad *d, struct args *a)
{
    struct rota_shm_map *m = rotad_map(d);
    json_t *list = json_array();
    if (a->n > 1)
        return json_decref(list), fail("usage: accounts [ROUTE]");
    if (a->n == 1) {
        uint32_t r = rota_sup_find_route(m, a->v[0]);
        if (r == ROTA_NONE)
            return json_decref(list), fail("no route or model '%s'", a->v[0]);
        const struct rota_shm_route *rt = &m->routes[r];
        for (uint32_t k = 0; k < rt->ntiers; k++) {
            const struct rota_shm_tier *t = &m->tiers[rt->tier0 + k];
            for (uint32_t j = 0; j < t->nmembers; j++) {
                json_t *o = account_json(d, m->members[t->member0 + j].account);
                if (o) {
                    json_object_set_new(o, "tier", json_integer(k));
                    json_array_append_new(list, o);
                }
            }
        }
        return ok(list);
    }
    for (uint32_t i = 0; i < m->naccounts; i++) {
        json_t *o = account_json(d, i);
        if (o)
            json_array_append_new(list, o);
    }
    return ok(list);
}

static json_t *cmd_show(struct rotad *d, struct args *a)
{
    json_t *err = NULL;
    uint32_t i = account_arg(d, a, &err);
    if (i == ROTA_NONE)
        return err;
    json_t *o = account_json(d, i);
    return o ? ok(o) : fail("the account's snapshot stayed busy; try again");
}

static json_t *cmd_enable(struct rotad *d, struct args *a)
{
    json_t *err = NULL;
    uint32_t i = account_arg(d, a, &err);
    if (i == ROTA_NONE)
        return err;
    char name[160];
    const struct rota_config_account *ca =
        rotad_credential_unresolved(d, rotad_map(d)->accounts[i].id);
    if (ca)
        return fail("%s stays out of rotation: its credential %s %s; %s",
                    acct_name(d, i, name, sizeof(name)), ca->cred_source, ca->cred_problem,
                    rotad_credential_remedy(ca));
    rota_sup_enable(rotad_map(d), i);
    note_set(d, rotad_map(d)->accounts[i].id, NULL);
    rota_info("control: enabled %s", acct_name(d, i, name, sizeof(name)));
    return ok(json_pack("{s:s}", "enabled", name));
}

static json_t *cmd_disable(struct rotad *d, struct args *a, unsigned off)
{
    bool bad = false;
    const char *dur = take_opt(a, "--for", &bad);
    const char *why = take_opt(a, "--reason", &bad);
    if (bad || a->n != 1)
        return fail("usage: %s ACCOUNT [--for DURATION] [--reason TEXT]",
                    off == ROTA_OFF_DRAIN ? "drain" : "disable");
    uint64_t ns = 0;
    if (dur && (rota_parse_duration(dur, &ns) != 0 || ns == 0))
        return fail("--for '%s': expected a duration such as 90s, 10m, 2h", dur);
    json_t *err = NULL;
    struct rota_shm_map *m = rotad_map(d);
    uint32_t i = account_arg(d, a, &err);
    if (i == ROTA_NONE)
        return err;
    char name[160];
    const struct rota_config_account *ca = rotad_credential_unresolved(d, m->accounts[i].id);
    if (ca && dur) /* when it ended, the account would be back in rotation without a key */
        return fail("%s is out of rotation until its credential %s resolves; a disable "
                    "--for would end before that: %s",
                    acct_name(d, i, name, sizeof(name)), ca->cred_source,
                    rotad_credential_remedy(ca));
    rota_sup_disable(m, i, off, dur ? rota_clock_mono() + ns : 0);
    note_set(d, m->accounts[i].id, why ? why : (off == ROTA_OFF_DRAIN ? "draining" : ""));
    rota_info("control: %s %s%s%s%s", off == ROTA_OFF_DRAIN ? "draining" : "disabled",
              acct_name(d, i, name, sizeof(name)), dur ? " for " : "", dur ? dur : "",
              why ? " (reason given)" : "");
    return ok(json_pack("{s:s, s:s, s:I}", off == ROTA_OFF_DRAIN ? "draining" : "disabled",
                        name, "for", dur ? dur : "until enabled", "in_flight",
                        (json_int_t)rota_in_flight(m, i)));
}

static json_t *cmd_drain(struct rotad *d, struct args *a)
{
    struct rota_shm_map *m = rotad_map(d);
    if (a->n != 1)
        return fail("usage: drain ACCOUNT|PROVIDER");
    uint32_t p = rota_sup_find_provider(m, a->v[0]);
    if (p == ROTA_NONE || strchr(a->v[0], '/'))
        return cmd_disable(d, a, ROTA_OFF_DRAIN);
    json_t *names = json_array();
    uint64_t in_flight = 0;
    char name[160];
    for (uint32_t i = 0; i < m->naccounts; i++) {
        if (m->accounts[i].provider != p)
            continue;
        rota_sup_disable(m, i, ROTA_OFF_DRAIN, 0);
        note_set(d, m->accounts[i].id, "draining with its provider");
        json_array_append_new(names, json_string(acct_name(d, i, name, sizeof(name))));
        in_flight += rota_in_flight(m, i);
    }
    rota_info("control: draining provider %s (%zu accounts)", a->v[0], json_array_size(names));
    return ok(json_pack("{s:o, s:I}", "draining", names, "in_flight", (json_int_t)in_flight));
}

static json_t *cmd_reset(struct rotad *d, struct args *a)
{
    if (a->n < 1 || a->n > 2)
        return fail("usage: reset ACCOUNT [POOL]");
    json_t *err = NULL;
    struct rota_shm_map *m = rotad_map(d);
    uint32_t i = account_arg(d, a, &err);
    if (i == ROTA_NONE)
        return err;
    int pool = -1;
    if (a->n == 2) {
        const struct rota_shm_account *acc = &m->accounts[i];
        for (uint32_t p = 0; p < acc->npools; p++)
            if (strcmp(rota_shm_str(m, acc->pool_name[p]), a->v[1]) == 0)
                pool = (int)p;
        if (pool < 0)
            return fail("account '%s' has no pool '%s'", a->v[0], a->v[1]);
    }
    char name[160];
    uint32_t n = rota_sup_reset(d->sup, m, i, pool, rotad_wall(d));
    rota_info("control: reset %s%s%s (%u windows)", acct_name(d, i, name, sizeof(name)),
              pool >= 0 ? " pool " : "", pool >= 0 ? a->v[1] : "", n);
    return ok(json_pack("{s:s, s:i}", "reset", name, "windows", (int)n));
}

static json_t *cmd_cooldown(struct rotad *d, struct args *a)
{
    uint64_t ns = 0;
    if (a->n != 2 || rota_parse_duration(a->v[1], &ns) != 0)
        return fail(
            "usage: cooldown ACCOUNT DURATION (a duration such as 30s, 5m; 0s ends it)");
    json_t *err = NULL;
    uint32_t i = account_arg(d, a, &err);
    if (i == ROTA_NONE)
        return err;
    char name[160];
    rota_sup_cooldown(rotad_map(d), i, ns ? rota_clock_mono() + ns : 0);
    rota_info("control: cooldown %s for %s", acct_name(d, i, name, sizeof(name)), a->v[1]);
    return ok(json_pack("{s:s, s:s}", "cooldown", name, "for", a->v[1]));
}

static const char *const skip_name[] = {"disabled", "cooldown", "breaker", "ceiling",
                                        "rate",     "busy",     "empty"};

static json_t *skips(uint16_t bits)
{
    json_t *o = json_array();
    for (unsigned b = 0; b < 7; b++)
        if (bits & (1u << b))
            json_array_append_new(o, json_string(skip_name[b]));
    return o;
}

static const char *why_name(uint32_t why)
{
    static const char *const names[] = {"",       "score",       "forced-lru",
                                        "greedy", "round-robin", "weighted",
                                        "sticky", "lru",         "fill-first"};
    return (why & 0xff) < 9 ? names[why & 0xff] : "?";
}

static json_t *cmd_select(struct rotad *d, struct args *a)
{
    bool bad = false;
    const char *key = take_opt(a, "--key", &bad), *tok = take_opt(a, "--tokens", &bad);
    if (bad || a->n != 1)
        return fail("usage: select ROUTE [--key K] [--tokens N]");
    struct rota_shm_map *m = rotad_map(d);
    uint32_t r = rota_sup_find_route(m, a->v[0]);
    if (r == ROTA_NONE)
        return fail("no route or model '%s'", a->v[0]);
    struct rota_sel_res res;
    uint64_t now = rota_clock_mono();
    int rc = rota_sup_dry_select(m, r, key ? rota_hash_bytes(key, strlen(key)) | 1 : 0,
                                 tok ? strtoull(tok, NULL, 10) : 0, now, &res);
    if (rc != 0 && rc != ROTA_EEXHAUSTED)
        return fail("dry run failed: %s", strerror(rc < 0 && rc > -4096 ? -rc : EINVAL));
    const struct rota_shm_route *rt = &m->routes[r];
    json_t *tiers = json_array();
    for (uint32_t k = 0; k < rt->ntiers; k++) {
        const struct rota_shm_tier *t = &m->tiers[rt->tier0 + k];
        json_t *o = json_pack(
            "{s:i, s:s, s:s, s:f}", "tier", (int)k, "provider",
            t->provider == ROTA_NONE ? "(mixed)"
                                     : rota_shm_str(m, m->providers[t->provider].name),
            "strategy", rota_strategy_name(t->strategy), "ceiling", t->ceiling);
        if (rc == 0 && k == res.tier)
            json_object_set_new(o, "chosen", json_true());
        else if (rc != 0 || k < res.tier)
            json_object_set_new(o, "skipped", skips(res.skipped[k]));
        json_array_append_new(tiers, o);
    }
    json_t *o = json_pack("{s:s, s:b, s:o}", "route", rota_shm_str(m, rt->name), "exhausted",
                          rc == ROTA_EEXHAUSTED, "tiers", tiers);
    if (rc == 0) {
        char name[160];
        json_object_set_new(o, "account",
                            json_string(acct_name(d, res.account, name, sizeof(name))));
        json_object_set_new(o, "tier", json_integer(res.tier));
        json_object_set_new(o, "why", json_string(why_name(res.why)));
        json_object_set_new(o, "trial", json_boolean(res.why & ROTA_WHY_TRIAL));
    } else if (res.retry_at) {
        json_object_set_new(
            o, "retry_in_ms",
            json_integer((
                json_int_t)(res.retry_at > now ? (res.retry_at - now + 999999) / 1000000 : 0)));
    }
    return ok(o);
}

static json_t *cmd_probe(struct rotad *d, struct args *a)
{
    if (a->n != 1)
        return fail("usage: probe ACCOUNT|PROVIDER");
    struct rota_shm_map *m = rotad_map(d);
    uint32_t p = rota_sup_find_provider(m, a->v[0]);
    int n;
    if (p != ROTA_NONE && !strchr(a->v[0], '/')) {
        n = rotad_probes_now(d, 0, p);
    } else {
        json_t *err = NULL;
        uint32_t i = account_arg(d, a, &err);
        if (i == ROTA_NONE)
            return err;
        n = rotad_probes_now(d, m->accounts[i].id, ROTA_NONE);
    }
    if (n <= 0)
        return fail("'%s' has no probe (its provider kind has no probe endpoint, no base_url, "
                    "or probes are off)",
                    a->v[0]);
    rota_info("control: probing %s now (%d accounts)", a->v[0], n);
    return ok(json_pack("{s:s, s:i}", "probing", a->v[0], "accounts", n));
}

static json_t *cmd_reload(struct rotad *d, struct args *a)
{
    if (a->n)
        return fail("usage: reload (it takes no arguments; '%.32s' given)", a->v[0]);
    char err[1024];
    uint64_t before = rotad_map(d)->hdr->generation;
    if (rotad_reload(d, err, sizeof(err)) != 0)
        return fail("reload refused, the running config stays: %s", err);
    uint64_t after = rotad_map(d)->hdr->generation;
    return ok(json_pack("{s:I, s:b, s:I}", "generation", (json_int_t)after, "changed",
                        after != before, "accounts", (json_int_t)rotad_map(d)->naccounts));
}

static json_t *dispatch(struct rotad *d, const char *cmd, const json_t *args);

/* Operator actions reach the journal at once, not at its next pass. */
json_t *rotad_command(struct rotad *d, const char *cmd, const json_t *args)
{
    static const char *const actions[] = {"enable", "disable",  "drain",
                                          "reset",  "cooldown", "reload"};
    json_t *reply = dispatch(d, cmd, args);
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(cmd, actions[i]) == 0)
            rota_journal_nudge(d->journal);
    return reply;
}

static json_t *dispatch(struct rotad *d, const char *cmd, const json_t *args)
{
    struct args a = {0};
    size_t i;
    json_t *v;
    json_array_foreach(args, i, v) a.v[a.n++] = json_string_value(v);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(d, &a);
    if (strcmp(cmd, "accounts") == 0)
        return cmd_accounts(d, &a);
    if (strcmp(cmd, "show") == 0)
        return cmd_show(d, &a);
    if (strcmp(cmd, "enable") == 0)
        return cmd_enable(d, &a);
    if (strcmp(cmd, "disable") == 0)
        return cmd_disable(d, &a, ROTA_OFF_OPERATOR);
    if (strcmp(cmd, "drain") == 0)
        return cmd_drain(d, &a);
    if (strcmp(cmd, "reset") == 0)
        return cmd_reset(d, &a);
    if (strcmp(cmd, "cooldown") == 0)
        return cmd_cooldown(d, &a);
    if (strcmp(cmd, "select") == 0)
        return cmd_select(d, &a);
    if (strcmp(cmd, "reload") == 0)
        return cmd_reload(d, &a);
    if (strcmp(cmd, "probe") == 0)
        return cmd_probe(d, &a);
    if (strcmp(cmd, "workers") == 0)
        return ok(rotad_pool_json(d));
    if (strcmp(cmd, "journal") == 0)
        return a.n ? fail("usage: journal") : ok(rotad_journal_json(d));
    return fail("unknown command '%.32s' (status, accounts, show, enable, disable, reset, "
                "cooldown, select, reload, drain, probe, journal, workers)",
                cmd);
}
