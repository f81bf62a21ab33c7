/*
 * clientkey.c - the dispatch pool's client keys: who sends a request, whether that key
 * may use the route, and its own RPM and TPM (rota_int.h).
 *
 * DESIGN
 * The table holds each key's SHA-256, name, allowed routes and limits (shm/ckeys.c). A
 * request's key is hashed with libcrypto's SHA-256 (fetched once per process) straight
 * from the request's bytes: no copy of the key is made here, and the digest context,
 * which held it, is wiped when freed (EVP_MD_CTX_free cleanses). The hash is looked up
 * with one probe of the table's index and compared whole in constant time. A table
 * without keys lets every request in and hashes nothing.
 *
 * Limits are GCRA words in the key's hot line, as an account's: a request costs one
 * unit of RPM and its estimated tokens of TPM, admitted by CAS so every thread and
 * process of the pool together never let a key past its limit. When the request is over,
 * rota_client_key_done turns the estimate into the tokens it used: more charged, or the
 * part of the estimate the word still holds given back with rota_gcra_refund (so a
 * refund never hands out what other requests' charges hold). A refused request costs
 * nothing: the RPM unit taken before a TPM refusal is given back at once.
 *
 * Any thread, any number at once. These calls enter the handle's current generation as
 * select does (no lock); the hashing allocates (libcrypto's digest context).
 */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "clock.h"
#include "gcra.h"
#include "handle.h"
#include "rota_int.h"

static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int rota_client_key_hash(const void *data, size_t len, uint8_t out[32])
{
    pthread_once(&sha_once, sha_fetch);
    if (!sha256_md)
        return -ENOSYS;
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, sha256_md, NULL) != 1 || n != 32)
        return -EIO;
    return 0;
}

/* Does the current generation have client keys? 0 with *any, or a negative code. */
static int table_has_keys(rota_t *h, bool *any, uint64_t *generation)
{
    struct reader *rd;
    int rc = 0;
    struct gen *g = rota_gen_enter(h, &rd, rota_clock_fast(), &rc);
    if (!g)
        return rc;
    *any = g->map.nckeys > 0;
    *generation = g->generation;
    rota_gen_leave(rd, g);
    return 0;
}

int rota_client_key_find(rota_t *h, const char *key, size_t len, rota_client_key *out)
{
    if (!h || !out || (len && !key))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->index = ROTA_NONE;
    bool any = false;
    int rc = table_has_keys(h, &any, &out->generation);
    if (rc || !any)
        return rc;
    if (len == 0)
        return 401;
    rc = rota_client_key_hash(key, len, out->sha256);
    if (rc)
        return rc;
    struct reader *rd;
    struct gen *g = rota_gen_enter(h, &rd, rota_clock_fast(), &rc);
    if (!g)
        return rc;
    const struct rota_shm_map *m = &g->map;
    uint32_t k = rota_shm_ckey_find(m, out->sha256);
    out->generation = g->generation;
    if (k != ROTA_NONE) {
        out->index = k;
        snprintf(out->name, sizeof(out->name), "%s", rota_shm_str(m, m->ckeys[k].name));
    } else if (m->nckeys == 0) { /* a reload took every key away meanwhile */
        memset(out->sha256, 0, sizeof(out->sha256));
    } else {
        rc = 401;
    }
    rota_gen_leave(rd, g);
    return rc;
}

/* The index of "ck" in "g": found again by hash after a reload, or ROTA_NONE. */
static uint32_t key_in(const struct gen *g, const rota_client_key *ck)
{
    if (ck->generation == g->generation)
        return ck->index < g->map.nckeys ? ck->index : ROTA_NONE;
    return rota_shm_ckey_find(&g->map, ck->sha256);
}

static uint64_t ms_until(uint64_t at, uint64_t now)
{
    return at > now ? (at - now + 999999) / 1000000 : 1;
}

/* Charge "ck"'s RPM and TPM at "now", or say when they would admit. */
static int charge(struct rota_shm_khot *hot, const struct rota_shm_ckey *c, rota_client_key *ck,
                  uint64_t est, uint64_t now, uint64_t *retry_after_ms)
{
    struct rota_gcra rq = {c->req_interval_ns, c->req_limit_ns};
    struct rota_gcra tk = {c->tok_interval_ns, c->tok_limit_ns};
    uint64_t at = 0, back = rota_load_acq(&hot->tok_back), after = 0;
    if (!rota_gcra_admit(&hot->gcra_req, &rq, now, 1, &at)) {
        rota_add(&hot->limited, 1);
        *retry_after_ms = ms_until(at, now);
        return 429;
    }
    if (!rota_gcra_admit_to(&hot->gcra_tok, &tk, now, est, &at, &after)) {
        rota_gcra_adjust(&hot->gcra_req, &rq, now, -1);
        rota_add(&hot->limited, 1);
        *retry_after_ms = ms_until(at, now);
        return 429;
    }
    rota_add(&hot->admitted, 1);
    ck->admitted = true;
    ck->est = est;
    ck->tok_tat = after;
    ck->tok_back = back;
    return 0;
}

int rota_client_key_admit(rota_t *h, rota_client_key *ck, const rota_route_t *route,
                          uint64_t est_tokens, uint64_t *retry_after_ms)
{
    if (!h || !ck || !route || !retry_after_ms)
        return -EINVAL;
    *retry_after_ms = 0;
    if (ck->index == ROTA_NONE)
        return 0; /* let in when the table had no keys */
    uint64_t now = rota_clock_fast();
    struct reader *rd;
    int rc = 0;
    struct gen *g = rota_gen_enter(h, &rd, now, &rc);
    if (!g)
        return rc;
    const struct rota_shm_map *m = &g->map;
    uint32_t k = key_in(g, ck);
    uint32_t ri = route->generation == g->generation && route->index < m->nroutes
                      ? route->index
                      : rota_shm_find(m, ROTA_IDX_ROUTE, route->key);
    if (k == ROTA_NONE) {
        rc = 401;
    } else if (ri == ROTA_NONE) {
        rc = ROTA_ENOROUTE;
    } else if (!rota_shm_ckey_allows(m, k, ri)) {
        rota_add(&m->khot[k].refused, 1);
        rc = 403;
    } else {
        ck->generation = g->generation;
        ck->index = k;
        rc = charge(&m->khot[k], &m->ckeys[k], ck, est_tokens, now, retry_after_ms);
    }
    rota_gen_leave(rd, g);
    return rc;
}

void rota_client_key_done(rota_t *h, rota_client_key *ck, uint64_t tokens)
{
    if (!h || !ck || !ck->admitted)
        return;
    ck->admitted = false;
    uint64_t now = rota_clock_fast();
    struct reader *rd;
    int rc = 0;
    struct gen *g = rota_gen_enter(h, &rd, now, &rc);
    if (!g)
        return;
    uint32_t k = key_in(g, ck);
    if (k != ROTA_NONE) {
        const struct rota_shm_ckey *c = &g->map.ckeys[k];
        struct rota_shm_khot *hot = &g->map.khot[k];
        struct rota_gcra tk = {c->tok_interval_ns, c->tok_limit_ns};
        rota_add(&hot->tokens, tokens);
        uint64_t held = rota_gcra_cost(&tk, ck->est), used = rota_gcra_cost(&tk, tokens);
        if (tokens > ck->est)
            rota_gcra_adjust(&hot->gcra_tok, &tk, now,
                             tokens - ck->est > INT64_MAX ? INT64_MAX
                                                          : (int64_t)(tokens - ck->est));
        else if (tk.interval_ns && held > used)
            rota_gcra_refund(&hot->gcra_tok, &hot->tok_giving, &hot->tok_back, now, ck->tok_tat,
                             ck->tok_back, held - used);
    }
    rota_gen_leave(rd, g);
}
