/*
 * target.c - where a chosen call goes (rota_target_of): the provider's name, kind, wire
 * format, base URL and path, auth header and scheme, extra headers, the model the
 * choice's tier sends for the client's model, what that model takes (tools, images, its
 * context window) and whether the route lets the pool translate formats, copied out of a
 * mapped generation.
 *
 * DESIGN
 * Copies, not pointers: a choice outlives the generation it was made on, and what the
 * caller holds must not point into a segment the handle may unmap. Each field is bounded
 * by the caller's struct (-ERANGE when one does not fit). Like select and report, this
 * runs on the caller's thread inside a generation librota.c has entered: no lock, no
 * allocation, no system call.
 */
#include <errno.h>
#include <string.h>

#include "handle.h"

/* Copy "s" into the field "dst" of "cap" bytes: false when it does not fit. */
static bool put(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        return false;
    memcpy(dst, s, len);
    dst[len] = 0;
    return true;
}

static bool put_str(char *dst, size_t cap, const char *s)
{
    return put(dst, cap, s, strlen(s));
}

/* The model tier "t" sends for the client's "model": its map's pair, else its model,
 * else the client's own. */
static void upstream_model(const struct rota_shm_map *m, const struct rota_shm_tier *t,
                           const char *model, size_t len, const char **out, size_t *out_len)
{
    for (const char *k = rota_shm_str(m, t->models); *k;) {
        size_t kl = strlen(k);
        const char *v = k + kl + 1;
        size_t vl = strlen(v);
        if (kl == len && memcmp(k, model, len) == 0) {
            *out = v;
            *out_len = vl;
            return;
        }
        k = v + vl + 1;
    }
    const char *all = rota_shm_str(m, t->model);
    *out = *all ? all : model;
    *out_len = *all ? strlen(all) : len;
}

/* The provider's path with every "{model}" replaced by the model. */
static bool put_path(char *dst, size_t cap, const char *path, const char *model, size_t ml)
{
    static const char mark[] = "{model}";
    size_t n = 0;
    for (const char *p = path; *p;) {
        const char *at = strstr(p, mark);
        size_t lit = at ? (size_t)(at - p) : strlen(p);
        if (n + lit + (at ? ml : 0) >= cap)
            return false;
        memcpy(dst + n, p, lit);
        n += lit;
        if (!at)
            break;
        memcpy(dst + n, model, ml);
        n += ml;
        p = at + sizeof(mark) - 1;
    }
    dst[n] = 0;
    return true;
}

int rota_target_fill(const struct rota_shm_map *m, uint32_t ai, const rota_choice *c,
                     const char *model, size_t len, rota_target *out)
{
    if (c->route >= m->nroutes || c->tier >= m->routes[c->route].ntiers)
        return ROTA_ESTALE;
    const struct rota_shm_provider *p = &m->providers[m->accounts[ai].provider];
    const struct rota_shm_tier *t = &m->tiers[m->routes[c->route].tier0 + c->tier];
    const char *up;
    size_t ul;
    upstream_model(m, t, model ? model : "", model ? len : 0, &up, &ul);
    if (!put(out->model, sizeof(out->model), up, ul) ||
        !put_str(out->provider, sizeof(out->provider), rota_shm_str(m, p->name)) ||
        !put_str(out->kind, sizeof(out->kind), rota_shm_str(m, p->kind)) ||
        !put_str(out->format, sizeof(out->format), rota_shm_str(m, p->format)) ||
        !put_str(out->base_url, sizeof(out->base_url), rota_shm_str(m, p->base_url)) ||
        !put_path(out->path, sizeof(out->path), rota_shm_str(m, p->path), up, ul) ||
        !put_str(out->auth_header, sizeof(out->auth_header), rota_shm_str(m, p->auth_header)) ||
        !put_str(out->auth_scheme, sizeof(out->auth_scheme), rota_shm_str(m, p->auth_scheme)) ||
        !put_str(out->headers, sizeof(out->headers), rota_shm_str(m, p->headers)))
        return -ERANGE;
    out->context = t->context;
    out->tools = !(t->caps & ROTA_TIER_NO_TOOLS);
    out->images = !(t->caps & ROTA_TIER_NO_IMAGES);
    out->cross_format = !(m->routes[c->route].flags & ROTA_ROUTE_NO_XLATE);
    return 0;
}
