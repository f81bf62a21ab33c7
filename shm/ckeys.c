/*
 * ckeys.c - the dispatch pool's client keys in a generation: checked in a description,
 * filled in by the writer, validated by readers, found by their SHA-256.
 *
 * DESIGN
 * A client key is stored as its SHA-256 only: the table (and the config it comes from)
 * can be read by whoever may read it without handing out a key. Each key's record
 * (ckeys[K], immutable after READY) holds the hash, a name for the access log, its
 * allowed routes (a range of ckroutes, route indexes; none = every route) and its RPM
 * and TPM as GCRA interval and bound, as accounts hold theirs (rota_shm_rate). Its hot
 * words (khot[K], a cache line each) are written by workers with single atomics and
 * carried to the next generation by hash (shm/carry.c), so a reload does not give a
 * key its minute again.
 *
 * Lookup is one probe of the table's index: the key is the hash's first 8 bytes (a
 * SHA-256 is already uniform; rota_index_home mixes it anyway), the value the record;
 * the whole hash is then compared in constant time. Two keys whose hashes share their
 * first 8 bytes (the same key configured twice) are refused when the table is built.
 *
 * The fill functions run on the writer's thread (build.c); rota_shm_ckeys_check on any
 * thread mapping a generation (attach.c); find and allows on the pool's threads: no
 * allocation, no lock, no system call.
 */
#include <errno.h>
#include <string.h>

#include "fill.h"
#include "hash.h"
#include "table.h"

#define fail rota_shm_fail

/* ---- lookups ---- */

static bool same_hash(const uint8_t *a, const uint8_t *b)
{
    unsigned d = 0;
    for (int i = 0; i < 32; i++)
        d |= (unsigned)(a[i] ^ b[i]);
    return d == 0;
}

uint32_t rota_shm_ckey_find(const struct rota_shm_map *m, const uint8_t sha256[32])
{
    if (m->nckeys == 0)
        return ROTA_NONE;
    uint32_t k = rota_shm_find(m, ROTA_IDX_CKEY, rota_shm_ckey_word(sha256));
    return k < m->nckeys && same_hash(m->ckeys[k].sha256, sha256) ? k : ROTA_NONE;
}

bool rota_shm_ckey_allows(const struct rota_shm_map *m, uint32_t k, uint32_t route)
{
    const struct rota_shm_ckey *c = &m->ckeys[k];
    if (c->nroutes == 0)
        return true;
    for (uint32_t i = 0; i < c->nroutes; i++)
        if (m->ckroutes[c->route0 + i] == route)
            return true;
    return false;
}

/* ---- the description ---- */

int rota_desc_key_routes(const struct rota_desc *d, const char *const *names, uint32_t n,
                         uint32_t *out, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t hit = ROTA_NONE;
        for (uint32_t r = 0; names[i] && hit == ROTA_NONE && r < d->nroutes; r++) {
            if (d->routes[r].name && strcmp(d->routes[r].name, names[i]) == 0)
                hit = r;
            for (const char *const *mo = d->routes[r].models; hit == ROTA_NONE && mo && *mo;
                 mo++)
                if (strcmp(*mo, names[i]) == 0)
                    hit = r;
        }
        if (hit == ROTA_NONE)
            return fail(err, errlen, -ENOENT, "no route or model is called \"%.64s\"",
                        names[i] ? names[i] : "");
        out[i] = hit;
    }
    return 0;
}

int rota_fill_check_keys(const struct rota_desc *d, char *err, size_t n)
{
    if (d->nkeys && !d->keys)
        return fail(err, n, -EINVAL, "description: missing array of client keys");
    if (d->nkeys > 65535)
        return fail(err, n, -E2BIG, "description: %u client keys, at most 65535", d->nkeys);
    for (uint32_t i = 0; i < d->nkeys; i++) {
        const struct rota_desc_client_key *k = &d->keys[i];
        if (!k->name || !*k->name || strlen(k->name) >= ROTA_MAX_NAME)
            return fail(err, n, -EINVAL, "client key %u: name missing or longer than %d", i,
                        ROTA_MAX_NAME - 1);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(d->keys[j].name, k->name) == 0)
                return fail(err, n, -EEXIST, "client key %s: name used twice", k->name);
        if (k->nroutes > d->nroutes || (k->nroutes && !k->routes))
            return fail(err, n, -EINVAL, "client key %s: %u routes, the table has %u", k->name,
                        k->nroutes, d->nroutes);
        for (uint32_t r = 0; r < k->nroutes; r++)
            if (k->routes[r] >= d->nroutes)
                return fail(err, n, -EINVAL, "client key %s: route %u out of range", k->name,
                            k->routes[r]);
    }
    return 0;
}

uint32_t rota_fill_ckroute_words(const struct rota_desc *d)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < d->nkeys; i++)
        w += d->keys[i].nroutes;
    return w;
}

void rota_fill_ckey_strings(const struct rota_desc *d, struct blob *str)
{
    for (uint32_t i = 0; i < d->nkeys; i++)
        rota_fill_blob_str(str, d->keys[i].name);
}

int rota_fill_fill_ckeys(struct rota_shm_map *m, struct rota_shm_ckey *keys, uint32_t *ckroutes,
                         const struct rota_desc *d, struct blob *str, char *err, size_t n)
{
    struct rota_shm_index *ix = (void *)m->index;
    uint32_t mask = m->hdr->index_mask, at = 0;
    for (uint32_t i = 0; i < d->nkeys; i++) {
        const struct rota_desc_client_key *s = &d->keys[i];
        struct rota_shm_ckey *k = &keys[i];
        memcpy(k->sha256, s->sha256, sizeof(k->sha256));
        k->name = rota_fill_blob_str(str, s->name);
        k->route0 = at;
        k->nroutes = s->nroutes;
        for (uint32_t r = 0; r < s->nroutes; r++)
            ckroutes[at++] = s->routes[r];
        rota_shm_rate(s->rpm, 0, &k->req_interval_ns, &k->req_limit_ns);
        rota_shm_rate(s->tpm, 0, &k->tok_interval_ns, &k->tok_limit_ns);
        if (rota_fill_index_put(ix, mask, ROTA_IDX_CKEY, rota_shm_ckey_word(s->sha256), i))
            return fail(err, n, -EEXIST,
                        "client key %s: its SHA-256 begins as another key's (the same key "
                        "twice?)",
                        s->name);
    }
    return 0;
}

/* ---- readers' validation ---- */

int rota_shm_ckeys_check(const struct rota_shm_map *m, char *err, size_t n)
{
    uint32_t nstr = m->hdr->sec[ROTA_SEC_STRINGS].count;
    uint32_t nkr = m->hdr->sec[ROTA_SEC_CKROUTES].count;
    for (uint32_t i = 0; i < m->nckeys; i++) {
        const struct rota_shm_ckey *k = &m->ckeys[i];
        if (k->name >= nstr || !memchr(m->strings + k->name, 0, nstr - k->name))
            return fail(err, n, ROTA_ELAYOUT, "client key %u: bad name offset", i);
        if (k->route0 > nkr || k->nroutes > nkr - k->route0)
            return fail(err, n, ROTA_ELAYOUT, "client key %u: routes [%u, +%u) out of range", i,
                        k->route0, k->nroutes);
        for (uint32_t r = 0; r < k->nroutes; r++)
            if (m->ckroutes[k->route0 + r] >= m->nroutes)
                return fail(err, n, ROTA_ELAYOUT, "client key %u: route %u out of range", i,
                            m->ckroutes[k->route0 + r]);
        if ((k->req_interval_ns && k->req_limit_ns < k->req_interval_ns) ||
            (k->tok_interval_ns && k->tok_limit_ns < k->tok_interval_ns) ||
            k->req_limit_ns > UINT64_MAX / 2 || k->tok_limit_ns > UINT64_MAX / 2)
            return fail(err, n, ROTA_ELAYOUT, "client key %u: bad rate limits", i);
        /* Every key is found where the index says, and only one key has its hash. */
        if (rota_shm_ckey_find(m, k->sha256) != i)
            return fail(err, n, ROTA_ELAYOUT, "client key %u: not where the index says", i);
    }
    return 0;
}
