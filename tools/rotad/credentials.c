/*
 * credentials.c - accounts whose credential does not resolve stay out of rotation.
 *
 * DESIGN
 * The config loader gives an account whose env: variable is unset or empty, or whose
 * file: cannot be read, no credential and says why (rota_config_account.cred_problem):
 * that is the environment's matter, one account's, and the rest of the table runs. rotad
 * keeps such an account out of rotation with reason ROTA_OFF_CREDENTIAL, a state derived
 * from the config, never a decision:
 *
 *   - it is written into each new generation by the publish's prepare hook (main.c),
 *     after the state carried over and the journal restored and before the generation
 *     is READY, so no worker can select the account without its key; into the live
 *     table when rotad adopts it unchanged;
 *   - once the credential resolves (a file at a reload; a variable only at a restart,
 *     as rotad reads its own environment), a disable with this reason ends, however it
 *     came into the table (carried over, restored from a journal that recorded it like
 *     any disable); an operator's disable or drain for good is a decision and stays,
 *     also while the credential is missing (the account is out either way);
 *   - a disable that ends by itself (an operator's for a while, a provider's auth or
 *     billing verdict on the key that is now missing) cannot stand in for this one: the
 *     account would come back without a key when it ended. It is replaced by the
 *     credential disable, and `rotactl disable --for` is refused (commands.c);
 *   - `rotactl enable` is refused while the credential is missing (commands.c), and
 *     the probes skip the account (probes.c): a probe with no key would be refused and
 *     would disable the account for "auth" instead;
 *   - each account is logged once when its credential stops resolving, naming the
 *     variable or file (never a value), and once when it resolves again: rotad keeps
 *     the ids of the accounts whose credential did not resolve at the last publish.
 *
 * Main thread only: the table's single writer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reason.h"
#include "rotad.h"

/* Index in "c" of the account with "id"; "hint" first (a table built from "c" has the
 * same order). ROTA_NONE when "c" has none. */
static uint32_t config_account(const struct rota_config *c, uint64_t id, uint32_t hint)
{
    if (hint < c->desc.naccounts && c->desc.accounts[hint].id == id)
        return hint;
    for (uint32_t k = 0; k < c->desc.naccounts; k++)
        if (c->desc.accounts[k].id == id)
            return k;
    return ROTA_NONE;
}

static bool was_unresolved(const struct rotad *d, uint64_t id)
{
    for (uint32_t i = 0; i < d->ncred_off; i++)
        if (d->cred_off[i] == id)
            return true;
    return false;
}

/* End a credential disable: the snapshot's alone (a worker's auth or billing disable in
 * the hot block is another matter, and stays). */
static void end_off(struct rota_shm_map *m, uint32_t a)
{
    struct rota_shm_snap *sn = rota_shm_snap_begin(m, a);
    rota_store(&sn->flags, rota_load(&sn->flags) & ~(uint32_t)ROTA_SNAP_DISABLED);
    rota_store(&sn->reason, 0);
    rota_store(&sn->disabled_until, 0);
    rota_shm_snap_end(sn);
}

void rotad_credentials_apply(struct rotad *d, const struct rota_config *c,
                             struct rota_shm_map *m)
{
    uint64_t *now_off = calloc(m->naccounts + 1, sizeof(*now_off));
    uint32_t n = 0;
    for (uint32_t a = 0; a < m->naccounts; a++) {
        uint64_t id = m->accounts[a].id;
        uint32_t k = config_account(c, id, a);
        if (k == ROTA_NONE)
            continue;
        const struct rota_config_account *ca = &c->accounts[k];
        const struct rota_shm_snap *sn = &m->snaps[a];
        bool off = rota_load(&sn->flags) & ROTA_SNAP_DISABLED;
        uint32_t reason = rota_load(&sn->reason);
        bool for_good = rota_load(&sn->disabled_until) == 0;
        bool decided =
            off && for_good && (reason == ROTA_OFF_OPERATOR || reason == ROTA_OFF_DRAIN);
        char name[2 * ROTA_MAX_NAME];
        snprintf(name, sizeof(name), "%s/%s",
                 rota_shm_str(m, m->providers[m->accounts[a].provider].name),
                 rota_shm_str(m, m->accounts[a].name));
        if (ca->cred_problem) {
            if (now_off)
                now_off[n++] = id;
            if (!decided && !(off && for_good && reason == ROTA_OFF_CREDENTIAL))
                rota_sup_disable(m, a, ROTA_OFF_CREDENTIAL, 0);
            if (!was_unresolved(d, id))
                rota_warn("account %s: credential %s %s (%s); out of rotation until then: "
                          "%s",
                          name, ca->cred_source, ca->cred_problem, ca->cred_where,
                          rotad_credential_remedy(ca));
            continue;
        }
        bool ended = off && reason == ROTA_OFF_CREDENTIAL;
        if (ended)
            end_off(m, a);
        if (ended || was_unresolved(d, id)) {
            if (decided)
                rota_info("account %s: credential %s resolves; still out of rotation (%s)",
                          name, ca->cred_source, rota_off_name(reason));
            else
                rota_info("account %s: credential %s resolves; back in rotation", name,
                          ca->cred_source);
        }
    }
    if (!now_off) { /* out of memory: the next publish may log the same accounts again */
        rota_error("credentials: out of memory noting the accounts out of rotation");
        n = 0;
    }
    free(d->cred_off);
    d->cred_off = now_off;
    d->ncred_off = n;
}

const char *rotad_credential_remedy(const struct rota_config_account *ca)
{
    /* rotad reads its own environment, which no reload changes */
    return strncmp(ca->cred_source, "env:", 4) == 0
               ? "set the variable in rotad's environment and restart rotad"
               : "make it a readable regular file (not a link) owned by root or rotad's "
                 "user, then reload (rotactl reload)";
}

const struct rota_config_account *rotad_credential_unresolved(const struct rotad *d,
                                                              uint64_t id)
{
    uint32_t k = config_account(d->cfg, id, ROTA_NONE);
    if (k == ROTA_NONE || !d->cfg->accounts[k].cred_problem)
        return NULL;
    return &d->cfg->accounts[k];
}
