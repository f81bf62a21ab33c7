/*
 * report.c - what the table learns from the outcome of a call.
 *
 * DESIGN
 * Runs in worker threads of any process right after a call, concurrently with selections
 * and the supervisor; every change is one atomic operation on the account's hot block
 * (or its provider's), so a worker killed half-way leaves each word valid.
 *
 *   success        consecutive counters cleared (only if set: no needless line writes),
 *                  a half-open trial counts towards closing the breaker
 *   429            cooldown until Retry-After, else base * 2^(429s in a row), capped
 *   5xx, 529,      a breaker failure for the account and its provider; N in a row open
 *   timeout, conn  the breaker (the worker that crosses N does the CAS)
 *   401, 403, 402, the account is disabled with the reason, until re-enabled or the
 *   billing        provider's disable period passes
 *   other 4xx      the request's fault, not the account's: counted, nothing else
 *
 * Usage is counted per pool (pool 0 counts everything), and the TPM admission is
 * corrected from the estimate to the reported token count: a shortfall is given back
 * only as far as the admission still holds it (core/gcra.h rota_gcra_refund), since the
 * TPM word has moved on with other callers' charges and the passing of time. A trial's
 * outcome counts only in the half-open period its permit was taken in.
 */
#include "breaker.h"
#include "clock.h"
#include "gcra.h"
#include "select.h"

#define RETRY_AFTER_MAX_MS (30ull * 86400 * 1000) /* a month: longer is a bogus header */

enum rota_verdict rota_outcome_verdict(int status, int result)
{
    switch (result) {
    case ROTA_RESULT_TIMEOUT:
    case ROTA_RESULT_CONNECT:
        return ROTA_VERDICT_FAILURE;
    case ROTA_RESULT_AUTH:
    case ROTA_RESULT_BILLING:
        return ROTA_VERDICT_DISABLE;
    case ROTA_RESULT_CANCELLED:
        return ROTA_VERDICT_NEUTRAL;
    default:
        break;
    }
    if (status >= 200 && status < 400)
        return ROTA_VERDICT_SUCCESS;
    if (status == 429)
        return ROTA_VERDICT_RATE_LIMITED;
    if (status == 401 || status == 402 || status == 403)
        return ROTA_VERDICT_DISABLE;
    if (status >= 500 || status == 408)
        return ROTA_VERDICT_FAILURE;
    if (status == 0)
        return ROTA_VERDICT_FAILURE; /* no response and no reason: a connection problem */
    return ROTA_VERDICT_NEUTRAL;
}

/* An outcome that says nothing about the provider's health hands a trial permit back,
 * to the half-open period it was taken in (core/breaker.h: a later one ignores it). */
static void release_trial(struct rota_shm_hot *h, struct rota_shm_phot *ph,
                          const struct rota_breaker_cfg *bc, uint32_t trial)
{
    if (trial & ROTA_TRIAL_ACCOUNT)
        rota_breaker_release(&h->breaker, bc, rota_trial_account_epoch(trial));
    if (trial & ROTA_TRIAL_PROVIDER)
        rota_breaker_release(&ph->breaker, bc, rota_trial_provider_epoch(trial));
}

/* Correct the TPM admission from the estimate to the reported count: more is charged,
 * less is given back, at most what the admission still holds (rota_gcra_refund). */
static void correct_tokens(const struct rota_shm_account *a, struct rota_shm_hot *h,
                           const struct rota_outcome_in *o, uint64_t now)
{
    struct rota_gcra tk = {a->tok_interval_ns, a->tok_limit_ns};
    if (o->tokens > o->est_tokens) {
        uint64_t d = o->tokens - o->est_tokens;
        rota_gcra_adjust(&h->gcra_tok, &tk, now, d > INT64_MAX ? INT64_MAX : (int64_t)d);
        return;
    }
    uint64_t est = rota_gcra_cost(&tk, o->est_tokens), act = rota_gcra_cost(&tk, o->tokens);
    if (tk.interval_ns && est > act)
        rota_gcra_refund(&h->gcra_tok, &h->tok_giving, &h->tok_back, now, o->tok_tat,
                         o->tok_back, est - act);
}

static void cooldown(struct rota_shm_hot *h, const struct rota_shm_provider *p,
                     const struct rota_outcome_in *o, uint64_t now)
{
    uint32_t n = rota_add(&h->consec_429, 1);
    uint64_t ms =
        o->retry_after_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : o->retry_after_ms;
    if (ms == 0) {
        ms = p->cooldown_base_ms;
        for (uint32_t i = 0; i < n && ms < p->cooldown_cap_ms; i++)
            ms *= 2;
        if (ms > p->cooldown_cap_ms)
            ms = p->cooldown_cap_ms;
    }
    rota_max_u64(&h->cooldown_until, now + ms * ROTA_NS_PER_MS);
    rota_add(&h->rate_limited, 1);
}

static void disable(struct rota_shm_hot *h, const struct rota_shm_provider *p,
                    const struct rota_outcome_in *o, uint64_t now)
{
    uint32_t reason = o->result == ROTA_RESULT_BILLING || o->status == 402 ? 2 : 1;
    uint64_t until_ms =
        p->disable_for_s ? now / ROTA_NS_PER_MS + p->disable_for_s * 1000ull : 0;
    rota_store(&h->disabled, rota_disable_word(reason, until_ms));
    rota_add(&h->auth_failures, 1);
}

void rota_report_apply(const struct rota_shm_map *m, uint32_t ai,
                       const struct rota_outcome_in *o, uint64_t now, uint64_t rnd)
{
    const struct rota_shm_account *a = &m->accounts[ai];
    const struct rota_shm_provider *p = &m->providers[a->provider];
    struct rota_shm_hot *h = &m->hot[ai];
    struct rota_shm_phot *ph = &m->phot[a->provider];
    struct rota_breaker_cfg bc = {p->fail_threshold, p->halfopen_permits, p->open_base_ms,
                                  p->open_cap_ms, p->trial_timeout_ms};
    /* A trial that outlived the trial deadline lost its permit to a re-arm: its outcome
     * is an ordinary one (however many half-open periods went by, so its period number
     * can never alias a later one's). */
    struct rota_outcome_in late;
    if (o->trial && o->selected_at && now > o->selected_at &&
        now - o->selected_at > (uint64_t)p->trial_timeout_ms * ROTA_NS_PER_MS) {
        late = *o;
        late.trial = 0;
        o = &late;
    }
    enum rota_verdict v = rota_outcome_verdict(o->status, o->result);
    uint64_t tokens = o->tokens ? o->tokens : o->est_tokens;
    uint32_t pool = o->pool < a->npools ? o->pool : 0;

    rota_add(&h->done, 1);
    rota_add(&h->use0[1], tokens);
    if (pool)
        rota_add(rota_shm_usage(h, pool, 1), tokens);
    if (o->tokens && o->tokens != o->est_tokens)
        correct_tokens(a, h, o, now);
    /* A moving average with a plain load and store: a lost update among racing reports
     * only skips one sample. */
    uint64_t avg = rota_load(&h->latency_ns);
    rota_store(&h->latency_ns, avg ? avg - avg / 8 + o->latency_ns / 8 : o->latency_ns);

    switch (v) {
    case ROTA_VERDICT_SUCCESS:
        if (rota_load(&h->consec_429))
            rota_store(&h->consec_429, 0);
        rota_breaker_success(&h->breaker, &h->consec_fail, &bc, o->trial & ROTA_TRIAL_ACCOUNT,
                             rota_trial_account_epoch(o->trial));
        rota_breaker_success(&ph->breaker, &ph->consec_fail, &bc,
                             o->trial & ROTA_TRIAL_PROVIDER,
                             rota_trial_provider_epoch(o->trial));
        break;
    case ROTA_VERDICT_RATE_LIMITED:
        cooldown(h, p, o, now);
        release_trial(h, ph, &bc, o->trial);
        break;
    case ROTA_VERDICT_FAILURE:
        rota_add(&h->failures, 1);
        rota_breaker_failure(&h->breaker, &h->consec_fail, &bc, now, rnd,
                             o->trial & ROTA_TRIAL_ACCOUNT, rota_trial_account_epoch(o->trial));
        rota_breaker_failure(&ph->breaker, &ph->consec_fail, &bc, now, rnd >> 17,
                             o->trial & ROTA_TRIAL_PROVIDER,
                             rota_trial_provider_epoch(o->trial));
        break;
    case ROTA_VERDICT_DISABLE:
        disable(h, p, o, now);
        release_trial(h, ph, &bc, o->trial);
        break;
    case ROTA_VERDICT_NEUTRAL:
        rota_add(&h->neutral, 1);
        release_trial(h, ph, &bc, o->trial);
        break;
    }
}
