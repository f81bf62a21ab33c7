/*
 * select.c - the chain walk: from a route to one admitted account.
 *
 * DESIGN
 * Runs in every worker thread of every attached process, concurrently with the
 * supervisor rewriting snapshots and with other workers changing hot blocks. It takes no
 * lock, allocates nothing and makes no system call; each candidate costs a few relaxed
 * loads of its hot line, one seqlock read of its snapshot and two GCRA peeks.
 *
 * For each tier in order: scan the members (all of them up to 64; beyond that a random
 * sample, or for sticky the key's bucket of accounts, so the cost stays flat as accounts
 * grow), drop the ineligible ones with a reason bit, let the tier's strategy pick, then
 * commit the pick with atomics: take a half-open trial permit if the breaker needs one,
 * admit through the GCRA words, count the selection. A commit that loses a race (the last
 * permit, the last unit of rate) drops that candidate and picks again. A tier with no
 * eligible candidate falls through to the next with its reason bits; when every tier is
 * empty the answer is ROTA_EEXHAUSTED with the earliest time something frees up.
 *
 * Round-robin and fill-first do not need every candidate: they walk in tier order from
 * their start and stop at the first eligible one. Hybrid and greedy keep a per-thread
 * shortlist of the ranking between full passes and evaluate only the account they take
 * (see "the shortlist" below), which is what keeps the common selection to one candidate.
 */
#include <string.h>

#include "breaker.h"
#include "clock.h"
#include "gcra.h"
#include "hash.h"
#include "quota.h"
#include "select.h"
#include "strategy.h"

#define SCAN_MAX ROTA_SAMPLE_MAX

/* Initial-exec: a few bytes of static TLS, never allocated on a thread's first use. */
_Thread_local uint64_t rota_select_retries __attribute__((tls_model("initial-exec")));

struct scan {
    const struct rota_shm_map *m;
    const struct rota_sel_req *q;
    const struct rota_shm_tier *t;
    const struct rota_shm_member *members; /* the tier's */
    uint64_t now, tok_units;
    double ceiling;
    bool fixed_provider; /* the tier is one provider: its breaker word is "pw" */
    uint64_t pw;
    bool stale;         /* supervisor heartbeat stale: be pessimistic */
    uint16_t skip;      /* reasons seen in this tier */
    uint64_t free_at;   /* earliest monotonic ns something frees */
    int64_t reset_wall; /* earliest quota reset among ceiling skips, wall ns */
};

static void note(struct scan *s, uint64_t at)
{
    if (at && (s->free_at == 0 || at < s->free_at))
        s->free_at = at;
}

/* Used fraction of account "a" for "pool": the largest over its windows of (observed +
 * counted locally since) * (1 / limit), read under the snapshot's seqlock. */
static inline bool read_fraction(const struct rota_shm_account *a, struct rota_shm_snap *sn,
                                 struct rota_shm_hot *h, uint32_t pool, double *frac,
                                 uint32_t *flags)
{
    for (int tries = 0; tries < ROTA_SEQ_MAX_TRIES; tries++) {
        uint32_t start;
        if (rota_seq_read_begin(&sn->seq, &start)) {
            uint32_t fl = rota_load(&sn->flags);
            double f = -1.0;
            for (uint32_t w = 0; w < a->nwin; w++) {
                uint32_t wp = a->win_mp[w] & 15u, metric = a->win_mp[w] >> 4;
                if (wp != 0 && wp != pool)
                    continue;
                double scale = rota_load(&sn->win[w].scale);
                uint64_t used = rota_load(&sn->win[w].used);
                if (metric <= ROTA_METRIC_TOKENS) {
                    uint64_t counter = rota_load(rota_shm_usage(h, wp, metric));
                    uint64_t base = rota_load(&sn->win[w].base);
                    used += counter > base ? counter - base : 0;
                }
                double fw = scale > 0 ? (double)used * scale : -1.0;
                f = fw > f ? fw : f;
            }
            if (rota_seq_read_ok(&sn->seq, start)) {
                *frac = f;
                *flags = fl;
                return true;
            }
        }
        rota_select_retries++;
    }
    return false;
}

bool rota_account_fraction(const struct rota_shm_map *m, uint32_t ai, uint32_t pool,
                           double *frac, uint32_t *flags)
{
    uint32_t fl;
    bool ok = read_fraction(&m->accounts[ai], &m->snaps[ai], &m->hot[ai], pool, frac, &fl);
    if (ok && flags)
        *flags = fl;
    return ok;
}

/* Earliest reset among the windows of "ai" (wall ns), for the exhausted answer: the
 * first moment its quota may free up. Read without the seqlock: an estimate is all it
 * feeds, and an early one only makes a caller ask again. */
static int64_t earliest_reset(const struct rota_shm_map *m, uint32_t ai)
{
    int64_t best = 0;
    const struct rota_shm_account *a = &m->accounts[ai];
    for (uint32_t w = 0; w < a->nwin; w++) {
        int64_t r = rota_load(&m->snaps[ai].win[w].reset_at);
        if (r > 0 && (best == 0 || r < best))
            best = r;
    }
    return best;
}

static struct rota_gcra req_gcra(const struct rota_shm_account *a)
{
    return (struct rota_gcra){a->req_interval_ns, a->req_limit_ns};
}

static struct rota_gcra tok_gcra(const struct rota_shm_account *a)
{
    return (struct rota_gcra){a->tok_interval_ns, a->tok_limit_ns};
}

/* The gates in an account's hot line that are closed at "now": cooldown, worker-side
 * disable, breakers. The common case (all open) costs three loads and one branch. */
static bool gates_open(struct scan *s, struct rota_shm_hot *h, uint64_t pw, uint32_t *gates)
{
    uint64_t now = s->now, cd = rota_load(&h->cooldown_until);
    uint64_t dis = rota_load(&h->disabled), bw = rota_load(&h->breaker);
    *gates = 0;
    /* a closed breaker's word is its epoch alone */
    if (__builtin_expect(cd <= now && (dis | ((bw | pw) & ~ROTA_BREAKER_EPOCH_MASK)) == 0, 1))
        return true;
    uint64_t until = 0;
    if (cd > now) {
        s->skip |= ROTA_SKIP_COOLDOWN;
        note(s, cd);
        return false;
    }
    if (dis && ((dis >> 8) == 0 || (dis >> 8) * ROTA_NS_PER_MS > now)) {
        s->skip |= ROTA_SKIP_DISABLED;
        note(s, (dis >> 8) * ROTA_NS_PER_MS);
        return false;
    }
    enum rota_breaker_gate g = bw ? rota_breaker_gate(bw, now, &until) : ROTA_GATE_PASS;
    enum rota_breaker_gate pg = pw ? rota_breaker_gate(pw, now, &until) : ROTA_GATE_PASS;
    if (g == ROTA_GATE_BLOCKED || pg == ROTA_GATE_BLOCKED) {
        s->skip |= ROTA_SKIP_BREAKER;
        note(s, until);
        return false;
    }
    *gates = (g == ROTA_GATE_TRIAL ? ROTA_TRIAL_ACCOUNT : 0) |
             (pg == ROTA_GATE_TRIAL ? ROTA_TRIAL_PROVIDER : 0);
    return true;
}

/* Snapshot flags that need a closer look: a supervisor disable, pessimism. Returns false
 * if the account is disabled; raises *f to the pessimistic figure if it must. */
static bool flags_allow(struct scan *s, uint32_t ai, uint32_t flags, double *f)
{
    const struct rota_shm_map *m = s->m;
    if (flags & ROTA_SNAP_DISABLED) {
        uint64_t du = rota_load(&m->snaps[ai].disabled_until);
        if (du == 0 || du > s->now) {
            s->skip |= ROTA_SKIP_DISABLED;
            note(s, du);
            return false;
        }
    }
    /* Pessimism is about quota: an account with no quota data (a local model) has none
     * to be pessimistic about. */
    if (((flags & ROTA_SNAP_PESSIMISTIC) || s->stale) && (flags & ROTA_SNAP_HAS_DATA)) {
        double p = m->providers[m->accounts[ai].provider].pessimistic;
        if (*f < p)
            *f = p;
    }
    return true;
}

/* Would the RPM and TPM words admit one call of "tok" tokens now? Read-only. */
static bool rate_open(struct scan *s, const struct rota_shm_account *a, struct rota_shm_hot *h)
{
    uint64_t now = s->now;
    if (a->req_limit_ns &&
        !rota_gcra_fits(rota_load(&h->gcra_req), a->req_interval_ns, a->req_limit_ns, now))
        goto closed;
    if (a->tok_limit_ns) {
        struct rota_gcra tk = tok_gcra(a);
        if (!rota_gcra_fits(rota_load(&h->gcra_tok), rota_gcra_cost(&tk, s->tok_units),
                            a->tok_limit_ns, now))
            goto closed;
    }
    return true;
closed:
    s->skip |= ROTA_SKIP_RATE;
    struct rota_gcra rq = req_gcra(a), tk = tok_gcra(a);
    uint64_t a1 = rota_gcra_next(&h->gcra_req, &rq), a2 = rota_gcra_next(&h->gcra_tok, &tk);
    note(s, a1 > a2 ? a1 : a2);
    return false;
}

/* Is account "id" among those the caller asked not to be given (already tried)? */
static bool excepted(const struct rota_sel_req *q, uint64_t id)
{
    for (uint32_t k = 0; k < q->nexcept; k++)
        if (q->except[k] == id)
            return true;
    return false;
}

/* Is tier member "pos" eligible? Fills "c" if so, else adds a reason to s->skip. */
static bool eval(struct scan *s, uint32_t pos, struct rota_cand *c)
{
    const struct rota_shm_map *m = s->m;
    const struct rota_shm_member *mb = &s->members[pos];
    uint32_t ai = mb->account, gates, flags;
    const struct rota_shm_account *a = &m->accounts[ai];
    struct rota_shm_hot *h = &m->hot[ai];
    uint64_t pw = s->fixed_provider ? s->pw : rota_load(&m->phot[a->provider].breaker);
    double f;
    if (__builtin_expect(s->q->nexcept != 0, 0) && excepted(s->q, a->id)) {
        /* passed over for this request only: when it may be asked again (its cooldown,
         * disable or breaker, else now) still counts for the exhausted answer's retry_at */
        uint32_t skip = s->skip, g;
        if (gates_open(s, h, pw, &g))
            note(s, s->now);
        s->skip = skip | ROTA_SKIP_EXCLUDED;
        return false;
    }
    if (!gates_open(s, h, pw, &gates))
        return false;
    if (!read_fraction(a, &m->snaps[ai], h, mb->pool, &f, &flags)) {
        s->skip |= ROTA_SKIP_BUSY;
        return false;
    }
    if (__builtin_expect((flags & (ROTA_SNAP_DISABLED | ROTA_SNAP_PESSIMISTIC)) || s->stale,
                         0) &&
        !flags_allow(s, ai, flags, &f))
        return false;
    if (f >= s->ceiling) {
        s->skip |= ROTA_SKIP_CEILING;
        int64_t r = earliest_reset(m, ai);
        if (r > 0 && (s->reset_wall == 0 || r < s->reset_wall))
            s->reset_wall = r;
        return false;
    }
    if (!rate_open(s, a, h))
        return false;
    c->member = pos;
    c->weight = a->weight;
    c->left = f <= 0 ? 1.f : (f >= 1 ? 0.f : (float)(1.0 - f));
    c->gates = gates;
    c->last_used = rota_load(&h->last_used);
    c->id = a->id;
    return true;
}

/* Take the trial permits "gates" asks for: one from each half-open breaker. True with
 * *trial the trial word (only permits actually taken, a breaker that closed meanwhile
 * gives none); false if either was denied, having given back only what this call took
 * (a permit returned that was never taken is a second trial). */
static bool take_trials(_Atomic uint64_t *acct, _Atomic uint64_t *prov,
                        const struct rota_breaker_cfg *bc, uint32_t gates, uint64_t now,
                        uint32_t *trial)
{
    unsigned ae = 0, pe = 0;
    enum rota_breaker_take ta = ROTA_BREAKER_NO_TRIAL, tp = ROTA_BREAKER_NO_TRIAL;
    if (gates & ROTA_TRIAL_ACCOUNT)
        ta = rota_breaker_acquire(acct, bc, now, &ae);
    if (ta != ROTA_BREAKER_DENIED && (gates & ROTA_TRIAL_PROVIDER))
        tp = rota_breaker_acquire(prov, bc, now, &pe);
    if (ta == ROTA_BREAKER_DENIED || tp == ROTA_BREAKER_DENIED) {
        if (ta == ROTA_BREAKER_PERMIT)
            rota_breaker_release(acct, bc, ae);
        return false;
    }
    *trial = rota_trial_word(ta == ROTA_BREAKER_PERMIT, ae, tp == ROTA_BREAKER_PERMIT, pe);
    return true;
}

/* Make the pick real. False if a race took what it needed (permit, rate). */
/* Hand back a lease commit() took for a call it then did not make. */
static void unhold(const struct scan *s, uint32_t held, const struct rota_shm_account *a)
{
    if (s->q->lease)
        rota_client_drop(s->q->lease, s->q->lease_slot, held, a->lease_tag);
}

static bool commit(struct scan *s, const struct rota_cand *c, struct rota_sel_res *r)
{
    const struct rota_shm_map *m = s->m;
    const struct rota_shm_member *mb = &m->members[s->t->member0 + c->member];
    const struct rota_shm_account *a = &m->accounts[mb->account];
    const struct rota_shm_provider *p = &m->providers[a->provider];
    struct rota_shm_hot *h = &m->hot[mb->account];
    uint64_t now = s->q->now, at = 0, tat = 0, back = 0;
    uint32_t trial = 0;
    struct rota_breaker_cfg bc = {p->fail_threshold, p->halfopen_permits, p->open_base_ms,
                                  p->open_cap_ms, p->trial_timeout_ms};
    /* The lease first, before anything is counted: a process killed after counting the
     * call leaves a lease the reaper ends (early at worst), never a count nobody ends. It
     * is taken before the rate words, so the hot line's atomics below run back to back
     * (a lost race hands it back). */
    struct rota_shm_client *lease = s->q->lease;
    uint32_t held = lease ? rota_client_hold(lease, s->q->lease_slot, a->lease_tag) : 0;
    /* Rate first: an admission can be given back exactly; a trial permit only roughly. */
    struct rota_gcra rq = req_gcra(a), tk = tok_gcra(a);
    if (!rota_gcra_admit(&h->gcra_req, &rq, now, 1, &at)) {
        unhold(s, held, a);
        s->skip |= ROTA_SKIP_RATE;
        note(s, at);
        return false;
    }
    /* What was given back before the admission: a report bounds its refund by what this
     * admission still holds after the refunds made since (rota_gcra_refund). */
    if (a->tok_limit_ns)
        back = rota_load_acq(&h->tok_back);
    if (!rota_gcra_admit_to(&h->gcra_tok, &tk, now, s->q->est_tokens, &at, &tat)) {
        unhold(s, held, a);
        rota_gcra_adjust(&h->gcra_req, &rq, now, -1);
        s->skip |= ROTA_SKIP_RATE;
        note(s, at);
        return false;
    }
    if (c->gates &&
        !take_trials(&h->breaker, &m->phot[a->provider].breaker, &bc, c->gates, now, &trial)) {
        unhold(s, held, a);
        rota_gcra_adjust(&h->gcra_req, &rq, now, -1);
        rota_gcra_refund(&h->gcra_tok, &h->tok_giving, &h->tok_back, now, tat, back,
                         rota_gcra_cost(&tk, s->q->est_tokens));
        s->skip |= ROTA_SKIP_BREAKER;
        return false;
    }
    r->lease = held;
    rota_add(&h->use0[0], 1);
    if (mb->pool)
        rota_add(rota_shm_usage(h, mb->pool, 0), 1);
    rota_store(&h->last_used, now);
    r->account = mb->account;
    r->pool = mb->pool;
    r->trial = trial;
    r->tok_tat = tat;
    r->tok_back = back;
    if (trial)
        rota_add(&h->halfopen, 1);
    return true;
}

/* Pick among "n" candidates and commit, dropping losers of commit races. */
static bool pick_commit(struct scan *s, struct rota_pick *pk, struct rota_cand *c, uint32_t n,
                        struct rota_sel_res *r)
{
    while (n > 0) {
        uint32_t why = 0, i = rota_strategy_pick(pk, c, n, &why);
        if (commit(s, &c[i], r)) {
            r->why = why | (r->trial ? ROTA_WHY_TRIAL : 0);
            return true;
        }
        c[i] = c[--n];
    }
    return false;
}

/* Round-robin and fill-first: the first eligible member from "start", in tier order. */
static bool walk_in_order(struct scan *s, struct rota_pick *pk, uint32_t start,
                          struct rota_sel_res *r, uint32_t *found)
{
    uint32_t n = s->t->nmembers, pos = start;
    for (uint32_t k = 0; k < n; k++, pos = pos + 1 == n ? 0 : pos + 1) {
        struct rota_cand c;
        if (eval(s, pos, &c) && pick_commit(s, pk, &c, 1, r)) {
            if (found)
                *found = pos;
            return true;
        }
    }
    return false;
}

/* Start loading what eval reads of member "pos": line 0 of its settings, of its snapshot
 * (all of it for an account with one window) and of its hot block (shm/layout.h). */
static void prefetch(const struct scan *s, uint32_t pos)
{
    uint32_t ai = s->members[pos].account;
    __builtin_prefetch(&s->m->accounts[ai]);
    __builtin_prefetch(&s->m->snaps[ai]);
    __builtin_prefetch(&s->m->hot[ai], 1);
}

/* ---- the shortlist ----
 * Hybrid and greedy rank every candidate, but only the best few can win. After a full
 * scan (or sample) each thread keeps the tier's best top_k + 1 positions with their
 * scores, and its LRU_MAX least recently used positions. Until the list goes stale it
 * chooses from it as the strategy would from the whole tier (hybrid: the account dealt to
 * it among the top k; greedy: the best; forced LRU: one of the oldest not yet taken, at
 * random, so that processes forced at the same time do not all take the same one) and
 * evaluates only that one, live: every gate, quota and rate check runs before the commit,
 * exactly as after a full scan, so limits are never at stake. A chosen account that fails
 * them leaves the list; with fewer than top_k left, or none in the LRU part when one is
 * wanted, the next pick scans in full. The list goes stale after SHORT_USES picks, after
 * SHORT_AGE_NS, or as soon as the chosen account's quota has moved SHORT_DRIFT since the
 * ranking: quota keeps steering the choice.
 *
 * Hybrid's choice among its top k is made when the list is built (deal_lane), so within
 * one list's life a thread keeps to it, and threads and processes choosing at the same
 * time spread over the top k instead of all writing one account's cache lines, which is
 * what the jitter is for. */
#define SHORT_SLOTS  ROTA_SHORT_SLOTS
#define SHORT_MAX    ROTA_SHORT_MAX
#define LRU_MAX      ROTA_LRU_MAX
#define SHORT_USES   512
#define SHORT_DRIFT  0.01f /* quota used since the list was built that makes it stale */
#define SHORT_AGE_NS (4 * ROTA_NS_PER_MS)

/* The thread's list for tier "t", or "scratch" (cleared: never valid) without a cache. */
static struct rota_shortlist *short_slot(const struct scan *s, const struct rota_shm_tier *t,
                                         struct rota_shortlist *scratch)
{
    /* A request with exclusions (the pool's retry) works on a list of its own: what it
     * passes over must stay in the thread's list for the requests after it. */
    if (!s->q->cache || __builtin_expect(s->q->nexcept != 0, 0)) {
        memset(scratch, 0, sizeof(*scratch));
        return scratch;
    }
    return &s->q->cache->list[(t - s->m->tiers) & (SHORT_SLOTS - 1)];
}

static uint32_t short_len(const struct rota_shm_tier *t)
{
    uint32_t k = t->strategy == ROTA_STRAT_GREEDY ? 2 : t->top_k + 1u;
    return k > SHORT_MAX ? SHORT_MAX : k;
}

static bool short_valid(const struct scan *s, const struct rota_shortlist *sl)
{
    return sl->table == s->m->hdr->nonce && sl->tier == (uint32_t)(s->t - s->m->tiers) &&
           sl->size == s->t->nmembers && sl->uses < SHORT_USES &&
           s->now - sl->at < SHORT_AGE_NS;
}

/* Hybrid's jitter lets any of the top k whose score is within the jitter of the best win.
 * Drawn independently, concurrent selectors would land on the same one a third of the
 * time and fight over its cache lines; instead they take those candidates in turn, from
 * the tier's shared cursor (one atomic per list built), and the one dealt goes first. */
static void deal_lane(struct scan *s, struct rota_shortlist *sl)
{
    const struct rota_shm_tier *t = s->t;
    uint32_t k = t->top_k < sl->n ? t->top_k : sl->n, reach = 1;
    float floor = sl->score[0] * (1.f - t->jitter) / (1.f + t->jitter);
    while (reach < k && sl->score[reach] >= floor)
        reach++;
    if (reach > 1) {
        uint32_t lane = (uint32_t)(rota_add(&s->m->thot[t - s->m->tiers].cursor, 1) % reach);
        uint32_t p = sl->pos[lane];
        float sc = sl->score[lane], left = sl->left[lane];
        sl->pos[lane] = sl->pos[0];
        sl->score[lane] = sl->score[0];
        sl->left[lane] = sl->left[0];
        sl->pos[0] = p;
        sl->score[0] = sc;
        sl->left[0] = left;
    }
    sl->score[0] = 2.f; /* above any score: taken first while it stays eligible */
}

static void short_build(struct scan *s, struct rota_shortlist *sl, const struct rota_pick *pk,
                        const struct rota_cand *c, uint32_t n)
{
    uint32_t idx[SHORT_MAX];
    sl->n = rota_strategy_rank(pk, c, n, short_len(s->t), idx, sl->score);
    for (uint32_t k = 0; k < sl->n; k++) {
        sl->pos[k] = c[idx[k]].member;
        sl->left[k] = c[idx[k]].left;
    }
    if (s->t->strategy == ROTA_STRAT_HYBRID)
        deal_lane(s, sl);
    /* The LRU_MAX oldest last uses, by insertion. */
    sl->nlru = 0;
    uint64_t age[LRU_MAX];
    for (uint32_t i = 0; i < n; i++) {
        if (sl->nlru == LRU_MAX && c[i].last_used >= age[LRU_MAX - 1])
            continue;
        uint32_t j = sl->nlru < LRU_MAX ? sl->nlru++ : LRU_MAX - 1;
        while (j > 0 && age[j - 1] > c[i].last_used) {
            age[j] = age[j - 1];
            sl->lru[j] = sl->lru[j - 1];
            j--;
        }
        age[j] = c[i].last_used;
        sl->lru[j] = c[i].member;
    }
    sl->table = s->m->hdr->nonce;
    sl->tier = (uint32_t)(s->t - s->m->tiers);
    sl->size = s->t->nmembers;
    sl->at = s->now;
    sl->uses = 0;
}

static void drop_best(struct rota_shortlist *sl, uint32_t k)
{
    for (uint32_t j = k + 1; j < sl->n; j++) {
        sl->pos[j - 1] = sl->pos[j];
        sl->score[j - 1] = sl->score[j];
        sl->left[j - 1] = sl->left[j];
    }
    sl->n--;
}

static void drop_lru(struct rota_shortlist *sl, uint32_t k)
{
    for (uint32_t j = k + 1; j < sl->nlru; j++)
        sl->lru[j - 1] = sl->lru[j];
    sl->nlru--;
}

static bool from_shortlist(struct scan *s, struct rota_shortlist *sl, struct rota_pick *pk,
                           struct rota_sel_res *r)
{
    const struct rota_shm_tier *t = s->t;
    uint16_t skip = s->skip;
    struct rota_cand c;
    sl->uses++;
    if (pk->force == 1) { /* forced LRU: the oldest not yet taken */
        while (sl->nlru > 0) {
            uint32_t k = rota_rng_below(pk->rng, sl->nlru), pos = sl->lru[k];
            drop_lru(sl, k);
            prefetch(s, pos); /* least recently used: its lines are likely cold */
            if (eval(s, pos, &c) && commit(s, &c, r)) {
                r->why = ROTA_WHY_FORCED_LRU | (r->trial ? ROTA_WHY_TRIAL : 0);
                return true;
            }
        }
    } else {
        uint32_t need = t->strategy == ROTA_STRAT_GREEDY ? 1 : t->top_k;
        while (sl->n >= need && sl->n > 0) {
            uint32_t k = 0; /* the best score among the top "need": the dealt one first */
            for (uint32_t j = 1; j < need; j++)
                k = sl->score[j] > sl->score[k] ? j : k;
            uint32_t pos = sl->pos[k];
            if (eval(s, pos, &c) && commit(s, &c, r)) {
                r->why = (t->strategy == ROTA_STRAT_GREEDY ? ROTA_WHY_GREEDY : ROTA_WHY_SCORE) |
                         (r->trial ? ROTA_WHY_TRIAL : 0);
                if (c.left < sl->left[k] - SHORT_DRIFT)
                    sl->uses = SHORT_USES; /* its quota moved: rank again next time */
                return true;
            }
            drop_best(sl, k);
        }
    }
    s->skip = skip; /* the full scan will say why */
    sl->uses = SHORT_USES;
    return false;
}

/* Sticky over a tier too large to scan: rendezvous over the key's bucket of accounts
 * (grouped by account id, so membership changes move only the keys on the account that
 * changed); if none there is eligible, the next buckets the key hashes to. */
static bool sticky_buckets(struct scan *s, struct rota_pick *pk, struct rota_sel_res *r)
{
    const struct rota_shm_tier *t = s->t;
    const uint32_t *off = s->m->buckets + t->bucket0, *perm = off + t->nbuckets + 1;
    for (uint64_t probe = 0; probe < 4; probe++) {
        uint32_t b = (uint32_t)(rota_hash_mix(pk->key_hash + probe) & (t->nbuckets - 1));
        uint32_t lo = off[b], hi = off[b + 1], n = 0;
        if (hi - lo > SCAN_MAX)
            hi = lo + SCAN_MAX;
        struct rota_cand c[SCAN_MAX];
        for (uint32_t k = lo; k < hi; k++)
            prefetch(s, perm[k]);
        for (uint32_t k = lo; k < hi; k++)
            n += eval(s, perm[k], &c[n]);
        if (n > 0 && pick_commit(s, pk, c, n, r))
            return true;
    }
    return false;
}

/* Fill-first: the first eligible account in tier order. Accounts before the one found
 * last were full a moment ago, so a thread resumes its walk there (the shortlist slot
 * holds the position) and walks from the start again when the list would go stale: a
 * large tier whose first thousands of accounts are full costs one evaluation per pick,
 * and an earlier account that frees up is back within SHORT_USES picks or SHORT_AGE_NS. */
static bool fill_first(struct scan *s, struct rota_pick *pk, struct rota_sel_res *r)
{
    struct rota_shortlist scratch, *sl = short_slot(s, s->t, &scratch);
    uint32_t start = 0, found;
    if (short_valid(s, sl) && sl->n == 1) {
        start = sl->pos[0];
        sl->uses++;
    } else {
        *sl = (struct rota_shortlist){.table = s->m->hdr->nonce,
                                      .tier = (uint32_t)(s->t - s->m->tiers),
                                      .size = s->t->nmembers,
                                      .at = s->now};
    }
    if (!walk_in_order(s, pk, start, r, &found))
        return false;
    sl->pos[0] = found;
    sl->n = 1;
    return true;
}

static bool select_tier(struct scan *s, struct rota_rng *rng, struct rota_sel_res *r)
{
    const struct rota_shm_tier *t = s->t;
    struct rota_pick pk = {.tier = t, .rng = rng, .now = s->q->now, .key_hash = s->q->key_hash};
    s->members = &s->m->members[t->member0];
    s->ceiling = t->ceiling;
    s->fixed_provider = t->provider != ROTA_NONE;
    s->pw = s->fixed_provider ? rota_load(&s->m->phot[t->provider].breaker) : 0;
    if (t->nmembers == 0) {
        s->skip |= ROTA_SKIP_EMPTY;
        return false;
    }
    if (t->strategy == ROTA_STRAT_ROUND_ROBIN) {
        uint32_t cur = (uint32_t)rota_add(&s->m->thot[t - s->m->tiers].cursor, 1);
        pk.cursor = cur;
        return walk_in_order(s, &pk, cur % t->nmembers, r, NULL);
    }
    if (t->strategy == ROTA_STRAT_FILL_FIRST)
        return fill_first(s, &pk, r);
    bool ranked = t->strategy == ROTA_STRAT_HYBRID || t->strategy == ROTA_STRAT_GREEDY;
    if (t->strategy == ROTA_STRAT_HYBRID || (t->strategy == ROTA_STRAT_STICKY && !pk.key_hash))
        pk.force = t->lru_share > 0 && rota_rng_unit(rng) < t->lru_share ? 1 : 2;
    struct rota_shortlist scratch, *sl = short_slot(s, t, &scratch);
    if (ranked && short_valid(s, sl) && from_shortlist(s, sl, &pk, r))
        return true;
    if (t->strategy == ROTA_STRAT_STICKY && pk.key_hash && t->nbuckets)
        return sticky_buckets(s, &pk, r);
    struct rota_cand c[SCAN_MAX];
    uint32_t n = 0;
    if (t->nmembers <= SCAN_MAX) {
        for (uint32_t pos = 0; pos < t->nmembers; pos++)
            n += eval(s, pos, &c[n]);
    } else {
        /* Sample: choose the positions, start every cache miss at once, then evaluate. */
        uint32_t pos[SCAN_MAX];
        for (uint32_t k = 0; k < t->sample; k++) {
            pos[k] = rota_rng_below(rng, t->nmembers);
            prefetch(s, pos[k]);
        }
        for (uint32_t k = 0; k < t->sample; k++)
            n += eval(s, pos[k], &c[n]);
    }
    if (ranked && n > short_len(t))
        short_build(s, sl, &pk, c, n);
    return n > 0 && pick_commit(s, &pk, c, n, r);
}

int rota_select_route(const struct rota_shm_map *m, const struct rota_sel_req *q,
                      struct rota_rng *rng, struct rota_sel_res *r)
{
    const struct rota_shm_route *rt = &m->routes[q->route];
    uint64_t hb = rota_load(&m->hdr->heartbeat);
    struct scan s = {.m = m,
                     .q = q,
                     .now = q->now,
                     .tok_units = q->est_tokens ? q->est_tokens : 1,
                     .stale = q->now > hb && q->now - hb > m->hdr->stale_after_ns};
    memset(r->skipped, 0, sizeof(r->skipped));
    r->retry_at = 0;
    r->lease = 0;
    for (uint32_t k = 0; k < rt->ntiers; k++) {
        if (__builtin_expect(k < 32 && (q->skip_tiers >> k & 1), 0)) {
            r->skipped[k] = ROTA_SKIP_EXCLUDED;
            continue;
        }
        s.t = &m->tiers[rt->tier0 + k];
        s.skip = 0;
        if (select_tier(&s, rng, r)) {
            r->tier = k;
            return 0;
        }
        r->skipped[k] = s.skip;
    }
    if (s.reset_wall) {
        int64_t in = s.reset_wall - (q->wall ? q->wall : rota_clock_wall());
        note(&s, q->now + (uint64_t)(in > 0 ? in : 0));
    }
    r->retry_at = s.free_at;
    r->tier = rt->ntiers;
    return ROTA_EEXHAUSTED;
}
