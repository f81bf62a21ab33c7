/*
 * config_print.c - the resolved config as a readable table (rotad --check).
 *
 * DESIGN
 * Called on any thread with a loaded, immutable config. Prints every value after
 * defaults were applied, so what rotad will do can be read off it. A credential is shown
 * only as its source ("env:NAME", "file:PATH", "literal", "none"), never as its value,
 * with what is wrong when it did not resolve.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"
#include "strategy.h"

#define NS_PER_MS 1000000ull

static const char *dur(uint64_t ns, char *buf, size_t n)
{
    return cfg_fmt_duration(ns, buf, n);
}

static void print_provider(const struct rota_config *c, uint32_t i, FILE *f)
{
    const struct rota_desc_provider *d = &c->desc.providers[i];
    const struct rota_config_provider *p = &c->providers[i];
    char a[48], b[48], e[48];
    fprintf(f, "\nprovider %s\n", d->name);
    fprintf(f, "  kind        %s\n  auth        %s\n  base_url    %s\n", d->kind, p->auth,
            p->base_url ? p->base_url : "-");
    fprintf(f, "  format      %s, calls to %s\n", d->format, d->path);
    for (const char *h = d->headers;
         h && *h;) { /* values are no secrets (config_providers.c) */
        size_t n = strcspn(h, "\r");
        fprintf(f, "  header      %.*s\n", (int)n, h);
        h += n + (h[n] ? 2 : 0);
    }
    fprintf(f, "  thresholds  warn %.2f  critical %.2f  pessimistic %.2f\n", d->warn, d->crit,
            d->pessimistic);
    fprintf(f, "  breaker     opens after %u failures in a row", d->fail_threshold);
    if (p->fail_rate > 0)
        fprintf(f, " or a failure rate of %.2f over %u calls in %s", p->fail_rate,
                p->fail_min_calls, dur(p->rate_window_ns, a, sizeof(a)));
    fprintf(f, "; open %s doubling to %s; half-open trials %u, abandoned after %s\n",
            dur(d->open_base_ms * NS_PER_MS, a, sizeof(a)),
            dur(d->open_cap_ms * NS_PER_MS, b, sizeof(b)), d->halfopen_permits,
            dur(d->trial_timeout_ms * NS_PER_MS, e, sizeof(e)));
    fprintf(f, "  cooldown    %s doubling to %s\n",
            dur(d->cooldown_base_ms * NS_PER_MS, a, sizeof(a)),
            dur(d->cooldown_cap_ms * NS_PER_MS, b, sizeof(b)));
    if (d->disable_for_s)
        fprintf(f, "  disable_for %s\n", dur(d->disable_for_s * 1000000000ull, a, sizeof(a)));
    else
        fprintf(f, "  disable_for until re-enabled\n");
    if (p->probe_enabled)
        fprintf(f, "  probe       every %s + up to %s jitter, timeout %s, at most %u bytes\n",
                dur(p->probe_interval_ns, a, sizeof(a)), dur(p->probe_jitter_ns, b, sizeof(b)),
                dur(p->probe_timeout_ns, e, sizeof(e)), p->probe_max_bytes);
    else
        fprintf(f, "  probe       off\n");
    if (p->probe_enabled && p->probe_command) { /* one line: control characters as spaces */
        fprintf(f, "  command     ");
        for (const char *s = p->probe_command; *s; s++)
            fputc((unsigned char)*s < ' ' || *s == 0x7f ? ' ' : *s, f);
        fprintf(f, " (sh -c, credential in ROTA_CREDENTIAL)\n");
    }
}

static void print_account(const struct rota_config *c, uint32_t k, FILE *f)
{
    const struct rota_desc_account *a = &c->desc.accounts[k];
    const struct rota_config_account *ca = &c->accounts[k];
    fprintf(f, "  account %s\n    id          0x%016" PRIx64 "\n    weight      %u\n", a->name,
            a->id, a->weight);
    fprintf(f, "    rpm         %u%s", a->rpm, a->rpm ? "" : " (no limit)");
    if (a->rpm_burst)
        fprintf(f, ", burst %u", a->rpm_burst);
    fprintf(f, "\n    tpm         %u%s", a->tpm, a->tpm ? "" : " (no limit)");
    if (a->tpm_burst)
        fprintf(f, ", burst %u", a->tpm_burst);
    fprintf(f, "\n    credential  %s", ca->cred_source);
    if (ca->cred_problem)
        fprintf(f, ", which %s: out of rotation until it resolves", ca->cred_problem);
    fprintf(f, "\n");
    for (uint32_t w = 0; w < a->nwin; w++) {
        const struct rota_desc_window *win = &a->win[w];
        fprintf(f, "    window      pool %s  %s  limit ", a->pools[win->pool],
                cfg_metrics[win->metric].str);
        if (win->limit)
            fprintf(f, "%" PRIu64, win->limit);
        else
            fprintf(f, "learned");
        fprintf(f, "  reset %s  tz %s\n", ca->reset[w], win->tz ? win->tz : "UTC");
    }
}

static void print_tier(const struct rota_config *c, uint32_t t, const struct rota_desc_tier *d,
                       FILE *f)
{
    const struct rota_desc *desc = &c->desc;
    const struct rota_desc_account *a0 = &desc->accounts[d->members[0]];
    fprintf(f, "  tier %u      %s", t, rota_strategy_name(d->strategy)); /* from 0 */
    if (d->ceiling > 0)
        fprintf(f, "  ceiling %.2f", d->ceiling);
    else if (d->provider != ROTA_NONE)
        fprintf(f, "  ceiling %.2f (critical)", desc->providers[d->provider].crit);
    else
        fprintf(f, "  ceiling 0.80");
    fprintf(f, "  pool %s", a0->pools[d->pools ? d->pools[0] : 0]);
    if (d->provider != ROTA_NONE)
        fprintf(f, "  provider %s", desc->providers[d->provider].name);
    if (d->no_tools || d->no_images || d->context) {
        fprintf(f, "\n    takes    %s, %s, context ", d->no_tools ? "no tools" : "tools",
                d->no_images ? "no images" : "images");
        if (d->context)
            fprintf(f, "%u tokens", d->context);
        else
            fprintf(f, "not said");
    }
    fprintf(f, "\n    members  ");
    for (uint32_t m = 0; m < d->nmembers; m++) {
        const struct rota_desc_account *a = &desc->accounts[d->members[m]];
        fprintf(f, "%s%s/%s", m ? ", " : "", desc->providers[a->provider].name, a->name);
    }
    fprintf(f, "\n    model    ");
    for (const char *const *m = d->models; m && m[0] && m[1]; m += 2)
        fprintf(f, "%s -> %s, ", m[0], m[1]);
    fprintf(f, "%s%s%s\n", d->models ? "others " : "", d->model ? "-> " : "as asked",
            d->model ? d->model : "");
    if (d->strategy == ROTA_STRAT_HYBRID &&
        (d->w_quota || d->w_recency || d->jitter || d->lru_share || d->top_k || d->sample ||
         d->recency_s))
        fprintf(f,
                "    hybrid   w_quota %.2f  w_recency %.2f  jitter %.2f  lru_share %.2f  "
                "top_k %u  sample %u  recency %us (0 = default)\n",
                d->w_quota, d->w_recency, d->jitter, d->lru_share < 0 ? 0 : d->lru_share,
                d->top_k, d->sample, d->recency_s);
}

static void print_services(const struct rota_config *c, FILE *f)
{
    const struct rota_config_journal *j = &c->journal;
    char a[48], b[48];
    fprintf(f, "\njournal\n  file        %s", j->file_enabled ? j->file_path : "off");
    if (j->file_enabled)
        fprintf(f, "  fsync %s%s%s  snapshot every %s  at most %" PRIu64 " bytes",
                cfg_fsyncs[j->fsync].str, j->fsync == ROTA_FSYNC_INTERVAL ? " " : "",
                j->fsync == ROTA_FSYNC_INTERVAL ? dur(j->fsync_interval_ns, a, sizeof(a)) : "",
                dur(j->snapshot_every_ns, b, sizeof(b)), j->max_bytes);
    fprintf(f, "\n  redis       ");
    if (j->redis_enabled) {
        if (j->redis_socket)
            fprintf(f, "unix:%s", j->redis_socket);
        else
            fprintf(f, "%s:%u", j->redis_host, j->redis_port);
        fprintf(f,
                "  db %u  prefix %s  user %s  password %s  stream_max %u  ttl %s  buffer %u\n",
                j->redis_db, j->redis_prefix, j->redis_user ? j->redis_user : "default",
                j->redis_password_source ? j->redis_password_source : "none",
                j->redis_stream_max, dur(j->redis_ttl_ns, a, sizeof(a)), j->redis_buffer);
    } else {
        fprintf(f, "off\n");
    }
}

static void print_workers(const struct rota_config_workers *w, FILE *f)
{
    if (!w->enabled) {
        fprintf(f, "\nworkers       none (no workers: section)\n");
        return;
    }
    fprintf(f, "\nworkers       %u processes x %u threads  program %s\n", w->processes,
            w->threads, w->program ? w->program : "rota-worker beside rotad");
    for (uint32_t i = 0; i < w->nlisteners; i++) {
        const struct rota_config_listener *l = &w->listeners[i];
        if (l->tcp)
            fprintf(f, "  listen      tcp %s%s\n", l->tcp,
                    l->loopback ? "" : " (off loopback)");
        else
            fprintf(f, "  listen      unix %s mode %04o\n", l->unix_path, l->unix_mode);
    }
    fprintf(f, "  access_log  %s\n  ca_file     %s\n  attempts    %u\n", w->access_log,
            w->ca_file ? w->ca_file : "the system's", w->attempts);
    fprintf(f,
            "  limits      header_bytes %u  headers %u  body_bytes %" PRIu64
            "  connections %u (per thread)\n",
            w->max_header_bytes, w->max_headers, w->max_body_bytes, w->max_connections);
    fprintf(f,
            "  timeouts    header %ums  body %ums  keepalive %ums  connect %ums  "
            "first_byte %ums  idle %ums  request %ums  drain %ums\n",
            w->header_timeout_ms, w->body_timeout_ms, w->keepalive_timeout_ms,
            w->connect_timeout_ms, w->first_byte_timeout_ms, w->idle_timeout_ms,
            w->request_timeout_ms, w->drain_timeout_ms);
    if (!w->nkeys)
        fprintf(f, "  keys        none (every client on the listeners is served)\n");
    for (uint32_t i = 0; i < w->nkeys; i++) {
        const struct rota_config_client_key *k = &w->keys[i];
        fprintf(f, "  key         %s  sha256 %02x%02x%02x%02x...  routes ", k->name,
                k->sha256[0], k->sha256[1], k->sha256[2], k->sha256[3]);
        if (!k->nroutes)
            fprintf(f, "all");
        for (uint32_t j = 0; j < k->nroutes; j++)
            fprintf(f, "%s%s", j ? "," : "", k->routes[j]);
        fprintf(f, "  rpm %u  tpm %u (0 = no limit)\n", k->rpm, k->tpm);
    }
}

void rota_config_print(const struct rota_config *c, FILE *f)
{
    char a[48], b[48];
    if (!c || !f)
        return;
    fprintf(f, "config        %s (hash 0x%016" PRIx64 ")\n", c->path, c->desc.config_hash);
    fprintf(f, "instance      %s\nstate_dir     %s\nsocket        %s\ngroup         %s\n",
            c->instance, c->state_dir, c->socket, c->group ? c->group : "- (mode 0600)");
    fprintf(f, "strict        %s\n",
            c->strict ? "yes (keys other users could read are errors)" : "no");
    fprintf(f, "heartbeat     %s, stale after %s\n", dur(c->heartbeat_ns, a, sizeof(a)),
            dur(c->desc.stale_after_ns, b, sizeof(b)));
    for (uint32_t i = 0, k = 0; i < c->desc.nproviders; i++) {
        print_provider(c, i, f);
        for (; k < c->desc.naccounts && c->desc.accounts[k].provider == i; k++)
            print_account(c, k, f);
    }
    for (uint32_t r = 0; r < c->desc.nroutes; r++) {
        const struct rota_desc_route *rt = &c->desc.routes[r];
        fprintf(f, "\nroute %s\n  models      ", rt->name);
        if (!rt->models)
            fprintf(f, "-");
        for (const char *const *m = rt->models; m && *m; m++)
            fprintf(f, "%s%s", m == rt->models ? "" : ", ", *m);
        fprintf(f, "\n");
        if (rt->no_cross_format)
            fprintf(f, "  formats     the client's own only (cross_format: false)\n");
        for (uint32_t t = 0; t < rt->ntiers; t++)
            print_tier(c, t, &rt->tiers[t], f);
    }
    print_services(c, f);
    print_workers(&c->workers, f);
}
