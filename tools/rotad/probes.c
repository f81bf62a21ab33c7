/*
 * probes.c - rotad's side of the probes: targets from the config, results into the table.
 *
 * DESIGN
 * The probe thread (probes/probe.c) asks the providers; this file, on the main thread
 * (the snapshot writer), tells it what to ask and applies what it learnt: a result
 * understood updates the account's snapshot (probes/observe.c); a failed one, or no good
 * answer for two intervals and the jitter, makes the account pessimistic (the provider's
 * pessimistic figure is assumed) with the reason kept for `rotactl show`. Accounts are
 * followed by id, so a reload keeps their probe history. A provider with a probe command
 * gets exec targets: the command runs instead of the request, the account's credential
 * in its environment (ROTA_CREDENTIAL).
 *
 * Redaction: each time the targets are set (start, reload), a set of every resolved
 * credential of the config, all accounts' and not only the probed ones', is built once
 * (probes/redact.h) and handed to the probe thread with the targets; rotad keeps a
 * reference in d->redact. The thread redacts a result before queuing it; rotad redacts
 * again before logging or keeping it, with the set of the config it runs now, which
 * covers a result probed with the keys of the generation before. A failed probe is
 * logged with its status, the parser's verdict and a bounded, redacted excerpt of the
 * answer; never the raw body.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "observe.h"
#include "rotad.h"
#include "view.h"

#define RESULTS_BATCH 64

static struct rotad_probed *probed_of(struct rotad *d, uint64_t id)
{
    for (uint32_t i = 0; i < d->nprobed; i++)
        if (d->probed[i].id == id)
            return &d->probed[i];
    return NULL;
}

/* The redaction set of every credential of "c", and of the last generation's ("prev"),
 * into *out: 0 or -ENOMEM. */
static int redact_set(const struct rota_config *c, const struct rota_redact *prev,
                      struct rota_redact **out)
{
    const char **keys = calloc(c->desc.naccounts + 1, sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    for (uint32_t a = 0; a < c->desc.naccounts; a++)
        keys[a] = c->desc.accounts[a].credential; /* pointers only: the set copies */
    int rc = rota_redact_new(keys, c->desc.naccounts, prev, out);
    free(keys);
    return rc;
}

int rotad_probes_configure(struct rotad *d)
{
    const struct rota_config *c = d->cfg;
    struct rota_probe_target *t = calloc(c->desc.naccounts + 1, sizeof(*t));
    struct rotad_probed *pr = calloc(c->desc.naccounts + 1, sizeof(*pr));
    struct rota_redact *redact = NULL;
    if (!t || !pr || redact_set(c, d->redact, &redact)) {
        free(t);
        free(pr);
        return -ENOMEM;
    }
    uint32_t n = 0;
    for (uint32_t a = 0; a < c->desc.naccounts; a++) {
        const struct rota_desc_account *acc = &c->desc.accounts[a];
        const struct rota_config_provider *p = &c->providers[acc->provider];
        if (!p->probe_enabled || c->accounts[a].cred_problem)
            continue; /* no key to probe with: the account is out of rotation */
        struct rota_probe_target *x = &t[n];
        if (p->probe_command) { /* the credential goes in ROTA_CREDENTIAL, not in argv */
            int rc = rota_probe_plan_exec(x, p->kind, p->probe_command, acc->credential);
            if (rc) {
                rota_warn("probe %s/%s: not probed: %s", p->name, acc->name,
                          rc == -ENOENT ? "no parser reads the output of this kind"
                                        : "its credential is over 1023 bytes");
                continue;
            }
        } else if (rota_probe_plan(x, p->kind, p->base_url, p->auth, acc->credential,
                                   p->probe_path, p->probe_method, p->probe_body) != 0) {
            continue; /* a kind without a probe endpoint, or no base URL */
        }
        x->account_id = acc->id;
        x->interval_ns = p->probe_interval_ns;
        x->jitter_ns = p->probe_jitter_ns;
        x->timeout_ns = p->probe_timeout_ns;
        x->max_bytes = p->probe_max_bytes;
        x->opts.metric = (uint8_t)p->probe_metric;
        for (int k = 0; k < 4; k++)
            if (p->pointers[k])
                snprintf(x->pointers[k], sizeof(x->pointers[k]), "%s", p->pointers[k]);
        struct rotad_probed *old = probed_of(d, acc->id);
        pr[n] = old ? *old : (struct rotad_probed){.id = acc->id};
        pr[n].stale_ns = 2 * (x->interval_ns + x->jitter_ns) + x->timeout_ns;
        n++;
    }
    int rc = 0;
    if (n && !d->prober)
        rc = rota_prober_start(&d->prober, &d->probe_fd);
    if (!rc && d->prober)
        rc = rota_prober_set(d->prober, t, n, redact);
    explicit_bzero(t, (c->desc.naccounts + 1) * sizeof(*t)); /* auth headers */
    free(t);
    if (rc) {
        rota_redact_unref(redact);
        free(pr);
        return rc;
    }
    rota_redact_unref(d->redact);
    d->redact = redact;
    free(d->probed);
    d->probed = pr;
    d->nprobed = n;
    if (n)
        rota_info("probes: %u accounts, first answers within a few seconds", n);
    return 0;
}

static void apply(struct rotad *d, const struct rota_probe_result *in)
{
    struct rota_probe_result copy = *in, *r = &copy; /* what is logged, redacted */
    rota_redact_text(d->redact, r->error, sizeof(r->error));
    rota_redact_text(d->redact, r->excerpt, sizeof(r->excerpt));
    rota_redact_text(d->redact, r->obs.detail, sizeof(r->obs.detail));
    rota_redact_text(d->redact, r->obs.problem, sizeof(r->obs.problem));
    struct rota_shm_map *m = rotad_map(d);
    uint32_t a = rota_shm_find(m, ROTA_IDX_ACCOUNT, r->account_id);
    struct rotad_probed *pr = probed_of(d, r->account_id);
    if (a == ROTA_NONE || !pr)
        return; /* the account left with a reload */
    char name[160];
    snprintf(name, sizeof(name), "%s/%s",
             rota_shm_str(m, m->providers[m->accounts[a].provider].name),
             rota_shm_str(m, m->accounts[a].name));
    if (r->ok) {
        struct rota_apply_result res;
        rota_probe_apply(m, a, &r->obs, rota_clock_mono(), r->wall, &res);
        d->probes_ok++;
        if (pr->fails || pr->pessimistic)
            rota_info("probe %s: answering again (%u windows)", name, res.windows);
        pr->last_ok = rota_clock_mono();
        pr->fails = 0;
        pr->pessimistic = false;
        pr->error[0] = 0;
        if (res.disabled)
            rota_warn("probe %s: %s; out of rotation (%s)", name,
                      r->obs.cause == ROTA_CAUSE_BILLING ? "billing" : "key refused",
                      r->obs.detail);
        char how[16] = "command output"; /* status 0: an exec probe */
        if (r->status)
            snprintf(how, sizeof(how), "HTTP %d", r->status);
        rota_debug("probe %s: %s, %u windows (%u unmatched)%s%s", name, how, res.windows,
                   res.unmatched, r->obs.detail[0] ? ": " : "", r->obs.detail);
        return;
    }
    d->probes_failed++;
    pr->fails++;
    snprintf(pr->error, sizeof(pr->error), "%.*s", (int)sizeof(r->error) - 1, r->error);
    rota_probe_pessimistic(m, a, ROTA_PESS_PROBE_FAILED);
    pr->pessimistic = true;
    if (pr->fails == 1 || (pr->fails & (pr->fails - 1)) == 0) /* 1, 2, 4, 8, ... */
        rota_warn("probe %s failed (%u in a row): %s; assuming the pessimistic figure%s%s%s",
                  name, pr->fails, r->error, r->excerpt[0] ? " (answer: '" : "", r->excerpt,
                  r->excerpt[0] ? "')" : "");
}

void rotad_probes_drain(struct rotad *d)
{
    static struct rota_probe_result batch[RESULTS_BATCH];
    uint32_t n;
    while (d->prober && (n = rota_prober_take(d->prober, batch, RESULTS_BATCH)) > 0)
        for (uint32_t i = 0; i < n; i++)
            apply(d, &batch[i]);
}

void rotad_probes_tick(struct rotad *d, uint64_t now)
{
    struct rota_shm_map *m = rotad_map(d);
    for (uint32_t i = 0; i < d->nprobed; i++) {
        struct rotad_probed *pr = &d->probed[i];
        uint64_t since = pr->last_ok ? pr->last_ok : d->started_mono;
        if (pr->pessimistic || now - since < pr->stale_ns)
            continue;
        uint32_t a = rota_shm_find(m, ROTA_IDX_ACCOUNT, pr->id);
        if (a == ROTA_NONE)
            continue;
        rota_probe_pessimistic(m, a, ROTA_PESS_PROBE_STALE);
        pr->pessimistic = true;
        rota_warn("probe %s/%s: no good answer for %llus; assuming the pessimistic figure",
                  rota_shm_str(m, m->providers[m->accounts[a].provider].name),
                  rota_shm_str(m, m->accounts[a].name),
                  (unsigned long long)((now - since) / 1000000000ull));
    }
}

int rotad_probes_now(struct rotad *d, uint64_t account_id, uint32_t provider)
{
    if (!d->prober)
        return -1;
    struct rota_shm_map *m = rotad_map(d);
    int n = 0;
    for (uint32_t i = 0; i < d->nprobed; i++) {
        uint32_t a = rota_shm_find(m, ROTA_IDX_ACCOUNT, d->probed[i].id);
        if (a == ROTA_NONE)
            continue;
        if ((account_id && d->probed[i].id == account_id) ||
            (!account_id && m->accounts[a].provider == provider))
            n += (int)rota_prober_now(d->prober, d->probed[i].id);
    }
    return n;
}
