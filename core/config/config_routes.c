/*
 * config_routes.c - resolve routes and their tiers into the desc.
 *
 * DESIGN
 * Runs on the loading thread after the providers (it looks accounts up by name and
 * needs their pools). A tier names either a provider, meaning every account of it in
 * document order, or a list of accounts, each "provider/name" or a bare name that only
 * one provider has. Every member must have the quota pool the tier spends. Route names
 * and models share one namespace: workers address a route by either.
 *
 * What a tier's model takes (tools:, images:, context:) and a route's cross_format: are
 * for the dispatch pool; absent, a model takes tools and images, its context window is
 * not said (0), and the pool may translate a route's requests between wire formats.
 *
 * The desc reads 0 as "the default" for the hybrid tuning values; a tier that asks for
 * 0 explicitly gets lru_share -1 (what the table reads as none) or, for the weights and
 * jitter, ZERO_WEIGHT, a positive value too small to change any score.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "strategy.h"

#define NS_PER_S    1000000000ull
#define MAX_MODEL   255
#define ZERO_WEIGHT 1e-20f

struct routes {
    struct cfg *x;
    struct cfg_key *names; /* every account by bare name, sorted */
    uint32_t na;
    uint32_t *stamp; /* per account: the serial of the last tier that listed it */
    uint32_t serial;
};

static int check_text(struct cfg *x, const char *s, size_t max, const char *path)
{
    size_t len = strlen(s);
    if (len > max)
        return cfg_bad(x, path, "is %zu bytes long; expected at most %zu", len, max);
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return cfg_bad(x, path,
                           "has a space or control character; expected a name such "
                           "as gemini-2.5-pro");
    return 0;
}

/* Names and models: one namespace, each at most once. */
static int check_route_names(struct cfg *x)
{
    const struct raw_config *raw = x->raw;
    uint32_t n = 0, first, again;
    for (uint32_t r = 0; r < raw->routes_count; r++)
        n += 1 + raw->routes[r].models_count;
    struct cfg_key *v = cfg_array(x, n, sizeof(*v));
    uint32_t *route = cfg_array(x, n, sizeof(*route));
    int32_t *model = cfg_array(x, n, sizeof(*model)); /* -1: the route's name */
    if (!v || !route || !model)
        return cfg_nomem(x);
    n = 0;
    for (uint32_t r = 0; r < raw->routes_count; r++)
        for (int32_t m = -1; m < (int32_t)raw->routes[r].models_count; m++, n++) {
            char path[64];
            const char *s = m < 0 ? raw->routes[r].name : raw->routes[r].models[m];
            if (m < 0)
                snprintf(path, sizeof(path), "routes[%u].name", r);
            else
                snprintf(path, sizeof(path), "routes[%u].models[%d]", r, m);
            if (check_text(x, s, m < 0 ? ROTA_MAX_NAME - 1 : MAX_MODEL, path))
                return -EINVAL;
            v[n] = (struct cfg_key){.s = s, .idx = n};
            route[n] = r;
            model[n] = m;
        }
    if (!cfg_dup(v, n, &first, &again))
        return 0;
    char path[64], q[64];
    const char *other = cfg_quote(q, sizeof(q), raw->routes[route[first]].name);
    if (model[again] < 0)
        snprintf(path, sizeof(path), "routes[%u].name", route[again]);
    else
        snprintf(path, sizeof(path), "routes[%u].models[%d]", route[again], model[again]);
    if (model[first] < 0 && model[again] < 0)
        return cfg_bad(x, path,
                       "repeats the name of route %u (line %zu); expected unique "
                       "route names",
                       route[first], cfg_at(x, "routes[%u]", route[first]).line + 1);
    if (model[first] < 0)
        return cfg_bad(x, path,
                       "is also the name of route '%s'; expected models distinct "
                       "from route names",
                       other);
    return cfg_bad(x, path,
                   "is also a model of route '%s'; expected each model in one route "
                   "and distinct from route names",
                   other);
}

/* ---- tier members ---- */

/* The first of the accounts named "name" in the sorted list, and how many there are. */
static uint32_t find_name(const struct routes *rs, const char *name, uint32_t *count)
{
    uint32_t lo = 0, hi = rs->na;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (strcmp(rs->names[mid].s, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t end = lo;
    while (end < rs->na && strcmp(rs->names[end].s, name) == 0)
        end++;
    *count = end - lo;
    return lo;
}

static int find_provider(struct cfg *x, const char *name, size_t len, uint32_t *out)
{
    const struct rota_desc *d = &x->out->pub.desc;
    for (uint32_t p = 0; p < d->nproviders; p++)
        if (strlen(d->providers[p].name) == len &&
            memcmp(d->providers[p].name, name, len) == 0) {
            *out = p;
            return 0;
        }
    return -ENOENT;
}

/* "a, b, c" of the providers' names, cut short with "..." to fit "n". */
static const char *provider_names(struct cfg *x, char *out, size_t n)
{
    const struct rota_desc *d = &x->out->pub.desc;
    size_t len = 0;
    out[0] = 0;
    for (uint32_t p = 0; p < d->nproviders; p++) {
        size_t need = strlen(d->providers[p].name) + 2;
        if (len + need + 4 >= n) {
            snprintf(out + len, n - len, "%s...", p ? ", " : "");
            break;
        }
        len +=
            (size_t)snprintf(out + len, n - len, "%s%s", p ? ", " : "", d->providers[p].name);
    }
    return out;
}

/* The account "ref" ("provider/name" or "name") names, at "path". */
static int find_account(struct routes *rs, const char *ref, const char *path, uint32_t *out)
{
    struct cfg *x = rs->x;
    const struct rota_desc *d = &x->out->pub.desc;
    const char *slash = strchr(ref, '/'), *name = slash ? slash + 1 : ref;
    uint32_t p = ROTA_NONE, count, at;
    char q[64], names[200];
    if (slash && find_provider(x, ref, (size_t)(slash - ref), &p))
        return cfg_bad(x, path,
                       "is '%s', whose provider does not exist; expected provider/account "
                       "with a provider among: %s",
                       cfg_quote(q, sizeof(q), ref), provider_names(x, names, sizeof(names)));
    at = find_name(rs, name, &count);
    for (uint32_t i = at; slash && i < at + count; i++)
        if (d->accounts[rs->names[i].idx].provider == p) {
            *out = rs->names[i].idx;
            return 0;
        }
    if (slash || count == 0)
        return cfg_bad(x, path,
                       "is '%s', which names no account; expected an account name "
                       "or provider/account",
                       cfg_quote(q, sizeof(q), ref));
    if (count > 1) {
        char a[64], b[64];
        return cfg_bad(
            x, path,
            "is '%s', which providers '%s' and '%s' both have; expected "
            "provider/account",
            cfg_quote(q, sizeof(q), ref),
            cfg_quote(a, sizeof(a), d->providers[d->accounts[rs->names[at].idx].provider].name),
            cfg_quote(b, sizeof(b),
                      d->providers[d->accounts[rs->names[at + 1].idx].provider].name));
    }
    *out = rs->names[at].idx;
    return 0;
}

static int tier_members(struct routes *rs, const struct raw_tier *rt, const char *base,
                        struct rota_desc_tier *d)
{
    struct cfg *x = rs->x;
    const struct rota_desc *desc = &x->out->pub.desc;
    char path[96], q[64], names[200];
    uint32_t p, *m;
    if (rt->provider && rt->accounts)
        return cfg_bad(x, base, "has both 'provider' and 'accounts'; expected one of them");
    if (!rt->provider && !rt->accounts)
        return cfg_bad(x, base,
                       "has neither 'provider' nor 'accounts'; expected provider: NAME "
                       "or accounts: [NAME, ...]");
    if (rt->provider) {
        snprintf(path, sizeof(path), "%s.provider", base);
        if (find_provider(x, rt->provider, strlen(rt->provider), &p))
            return cfg_bad(x, path, "is '%s', which names no provider; expected one of: %s",
                           cfg_quote(q, sizeof(q), rt->provider),
                           provider_names(x, names, sizeof(names)));
        d->nmembers = x->raw->providers[p].accounts_count;
        if (!d->nmembers)
            return cfg_bad(x, path,
                           "is '%s', which has no accounts; expected a provider with "
                           "accounts",
                           cfg_quote(q, sizeof(q), rt->provider));
        if (!(m = cfg_array(x, d->nmembers, sizeof(*m))))
            return cfg_nomem(x);
        for (uint32_t i = 0; i < d->nmembers; i++)
            m[i] = x->first[p] + i;
        d->provider = p;
        d->members = m;
        return 0;
    }
    d->nmembers = rt->accounts_count;
    if (!(m = cfg_array(x, d->nmembers, sizeof(*m))))
        return cfg_nomem(x);
    rs->serial++;
    for (uint32_t i = 0; i < d->nmembers; i++) {
        snprintf(path, sizeof(path), "%s.accounts[%u]", base, i);
        if (find_account(rs, rt->accounts[i], path, &m[i]))
            return -EINVAL;
        if (rs->stamp[m[i]] == rs->serial)
            return cfg_bad(x, path,
                           "is '%s', already listed in this tier; expected each "
                           "account once",
                           cfg_quote(q, sizeof(q), rt->accounts[i]));
        rs->stamp[m[i]] = rs->serial;
        p = desc->accounts[m[i]].provider;
        d->provider = i == 0 || d->provider == p ? p : ROTA_NONE;
    }
    d->members = m;
    return 0;
}

/* ---- tier settings ---- */

static int tier_pool(struct cfg *x, const struct raw_tier *rt, const char *base,
                     struct rota_desc_tier *d)
{
    const struct rota_desc *desc = &x->out->pub.desc;
    char path[96], q[64], who[2 * ROTA_MAX_NAME];
    if (!rt->pool || strcmp(rt->pool, "*") == 0)
        return 0;
    uint32_t *pools = cfg_array(x, d->nmembers, sizeof(*pools));
    if (!pools)
        return cfg_nomem(x);
    snprintf(path, sizeof(path), "%s.pool", base);
    for (uint32_t i = 0; i < d->nmembers; i++) {
        const struct rota_desc_account *a = &desc->accounts[d->members[i]];
        uint32_t p = 1;
        while (p < ROTA_MAX_POOLS && !(a->pools[p] && strcmp(a->pools[p], rt->pool) == 0))
            p++;
        if (p == ROTA_MAX_POOLS) {
            snprintf(who, sizeof(who), "%s/%s", desc->providers[a->provider].name, a->name);
            return cfg_bad(x, path,
                           "is '%s', but account %s has no such pool; expected a pool "
                           "that a window of every member names",
                           cfg_quote(q, sizeof(q), rt->pool), who);
        }
        pools[i] = p;
    }
    d->pools = pools;
    return 0;
}

static int tier_tuning(struct cfg *x, const struct raw_tier *rt, const char *base,
                       struct rota_desc_tier *d)
{
    const double *in[] = {rt->w_quota, rt->w_recency, rt->jitter, rt->lru_share};
    static const char *const key[] = {"w_quota", "w_recency", "jitter", "lru_share"};
    float *out[] = {&d->w_quota, &d->w_recency, &d->jitter, &d->lru_share};
    uint64_t recency;
    for (int i = 0; i < 4; i++) {
        double v;
        if (cfg_fraction(x, in[i], 0, true, &v, "%s.%s", base, key[i]))
            return -EINVAL;
        *out[i] = in[i] && v == 0 ? (i == 3 ? -1.f : ZERO_WEIGHT) : (float)v;
    }
    if (cfg_uint(x, rt->top_k, 0, 1, 8, &d->top_k, "%s.top_k", base) ||
        cfg_uint(x, rt->sample, 0, 1, ROTA_SAMPLE_MAX, &d->sample, "%s.sample", base) ||
        cfg_duration(x, rt->recency, 0, rt->recency ? NS_PER_S : 0, UINT32_MAX * NS_PER_S,
                     &recency, "%s.recency", base))
        return -EINVAL;
    d->recency_s = (uint32_t)(recency / NS_PER_S);
    return 0;
}

/* ---- models ---- */

/* Is "s" ("len" bytes) a name route "r" answers to (its name, or one of its models)? True
 * for any name when the route lists no models: a worker may send any through it. */
static bool route_serves(const struct raw_route *r, const char *s)
{
    if (!r->models_count || strcmp(r->name, s) == 0)
        return true;
    for (unsigned m = 0; m < r->models_count; m++)
        if (strcmp(r->models[m], s) == 0)
            return true;
    return false;
}

/* A name of the tier's model map at node "n", checked as check_text does. */
static int check_model(struct cfg *x, const yaml_node_t *n, const char *what, const char *role)
{
    const char *s = (const char *)n->data.scalar.value;
    char q[64];
    if (n->data.scalar.length > MAX_MODEL)
        return cfg_fail(x, n->start_mark,
                        "%s '%s' in models of %s is %zu bytes long; expected at most %d", role,
                        cfg_quote(q, sizeof(q), s), what, n->data.scalar.length, MAX_MODEL);
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return cfg_fail(x, n->start_mark,
                            "%s '%s' in models of %s has a space or control character; "
                            "expected a model name such as gemini-2.5-pro",
                            role, cfg_quote(q, sizeof(q), (const char *)n->data.scalar.value),
                            what);
    return 0;
}

/* The tier's "model" (for every client model) and "models" (client: upstream), as pairs. */
static int tier_models(struct cfg *x, uint32_t r, const struct raw_tier *rt, const char *base,
                       struct rota_desc_tier *d)
{
    const struct raw_route *rr = &x->raw->routes[r];
    char path[96], what[320], q[64], rq[64];
    snprintf(path, sizeof(path), "%s.model", base);
    if (rt->model && check_text(x, rt->model, MAX_MODEL, path))
        return -EINVAL;
    d->model = rt->model;
    const yaml_node_pair_t *pairs = NULL;
    snprintf(path, sizeof(path), "%s.models", base);
    size_t n = cfg_map(x, path, &pairs);
    if (!n)
        return 0;
    const char **v = cfg_array(x, 2 * n + 1, sizeof(*v));
    if (!v)
        return cfg_nomem(x);
    cfg_what(x, base, what, sizeof(what)); /* "tier 0 of route 'r'" */
    for (size_t k = 0; k < n; k++) {
        const yaml_node_t *kn = cfg_node(x, pairs[k].key), *vn = cfg_node(x, pairs[k].value);
        if (check_model(x, kn, what, "model") || check_model(x, vn, what, "upstream model"))
            return -EINVAL;
        const char *client = (const char *)kn->data.scalar.value;
        if (!route_serves(rr, client))
            return cfg_fail(x, kn->start_mark,
                            "model '%s' in models of %s is not one route '%s' serves; "
                            "expected the route's name or one of its models",
                            cfg_quote(q, sizeof(q), client), what,
                            cfg_quote(rq, sizeof(rq), rr->name));
        if (!(v[2 * k] = cfg_strdup(x, client)) ||
            !(v[2 * k + 1] = cfg_strdup(x, (const char *)vn->data.scalar.value)))
            return cfg_nomem(x);
    }
    d->models = v;
    return 0;
}

/* ---- tiers ---- */

static int resolve_tier(struct routes *rs, uint32_t r, uint32_t t, struct rota_desc_tier *d)
{
    struct cfg *x = rs->x;
    const struct raw_tier *rt = &x->raw->routes[r].tiers[t];
    char base[48], q[64];
    snprintf(base, sizeof(base), "routes[%u].tiers[%u]", r, t);
    if (tier_members(rs, rt, base, d))
        return -EINVAL;
    int s = rota_strategy_parse(rt->strategy ? rt->strategy : "hybrid");
    if (s < 0) {
        char names[160], path[64];
        size_t len = 0;
        for (unsigned i = 0; i < ROTA_STRAT_COUNT && len < sizeof(names); i++)
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                                    rota_strategy_name(i));
        snprintf(path, sizeof(path), "%s.strategy", base);
        return cfg_bad(x, path, "is '%s', unknown; expected one of: %s",
                       cfg_quote(q, sizeof(q), rt->strategy), names);
    }
    d->strategy = (enum rota_strategy)s;
    if (cfg_fraction(x, rt->ceiling, 0, false, &d->ceiling, "%s.ceiling", base) ||
        tier_pool(x, rt, base, d) || tier_tuning(x, rt, base, d) ||
        tier_models(x, r, rt, base, d) ||
        cfg_uint(x, rt->context, 0, 1, UINT32_MAX, &d->context, "%s.context", base))
        return -EINVAL;
    d->no_tools = rt->tools && !*rt->tools;
    d->no_images = rt->images && !*rt->images;
    return 0;
}

int cfg_resolve_routes(struct cfg *x)
{
    const struct raw_config *raw = x->raw;
    struct rota_desc *d = &x->out->pub.desc;
    uint32_t nr = raw->routes_count;
    if (check_route_names(x))
        return -EINVAL;
    struct routes rs = {.x = x, .na = d->naccounts};
    struct rota_desc_route *routes = cfg_array(x, nr, sizeof(*routes));
    rs.names = cfg_array(x, rs.na, sizeof(*rs.names));
    rs.stamp = cfg_array(x, rs.na, sizeof(*rs.stamp));
    if (!routes || !rs.names || !rs.stamp)
        return cfg_nomem(x);
    for (uint32_t k = 0; k < rs.na; k++)
        rs.names[k] = (struct cfg_key){.s = d->accounts[k].name, .idx = k};
    cfg_sort(rs.names, rs.na);
    d->routes = routes;
    d->nroutes = nr;
    for (uint32_t r = 0; r < nr; r++) {
        const struct raw_route *rr = &raw->routes[r];
        struct rota_desc_tier *tiers = cfg_array(x, rr->tiers_count, sizeof(*tiers));
        const char **models =
            rr->models_count ? cfg_array(x, rr->models_count + 1, sizeof(*models)) : NULL;
        if (!tiers || (rr->models_count && !models))
            return cfg_nomem(x);
        for (uint32_t m = 0; m < rr->models_count; m++)
            models[m] = rr->models[m];
        routes[r].name = rr->name;
        routes[r].models = models;
        routes[r].tiers = tiers;
        routes[r].ntiers = rr->tiers_count;
        routes[r].no_cross_format = rr->cross_format && !*rr->cross_format;
        for (uint32_t t = 0; t < rr->tiers_count; t++)
            if (resolve_tier(&rs, r, t, &tiers[t]))
                return -EINVAL;
    }
    return 0;
}
