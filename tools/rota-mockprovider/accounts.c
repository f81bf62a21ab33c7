/*
 * accounts.c - rota-mockprovider's accounts: the JSON config that declares them, their
 * limits over fixed windows, the counting of calls against those limits, and the
 * statistics GET /_mock/stats shows.
 *
 * DESIGN
 * mock_config_load runs once in main before the server starts; everything configured is
 * read-only afterwards. The counters (window use, credits, calls per status) are touched
 * only with mock.lock held, by the connection threads and the /_mock endpoints. A window
 * is fixed: counts are kept for window index k and dropped when the clock enters another
 * window, so no timer runs; windows are anchored at the process start, or at a configured
 * "reset_at". Error messages name an account by its name or position, never its key;
 * the file holds the keys, and one that other users may read draws a warning.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mock.h"

const struct mock_provider_ops *const mock_providers[MOCK_PROVIDERS] = {
    [MOCK_OPENAI] = &mock_openai_ops,           [MOCK_AZURE] = &mock_azure_ops,
    [MOCK_ANTHROPIC] = &mock_anthropic_ops,     [MOCK_GEMINI] = &mock_gemini_ops,
    [MOCK_COPILOT] = &mock_copilot_ops,         [MOCK_GITHUB] = &mock_github_ops,
    [MOCK_ANTIGRAVITY] = &mock_antigravity_ops, [MOCK_OPENROUTER] = &mock_openrouter_ops,
    [MOCK_LLAMACPP] = &mock_llamacpp_ops,
};

int64_t mock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- config ---- */

static int bad(const char *where, const char *what)
{
    fprintf(stderr, "rota-mockprovider: config: %s: %s\n", where, what);
    return -EINVAL;
}

static int get_uint(json_t *o, const char *field, uint64_t *out, const char *where)
{
    json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bad(where, "a limit must be a non-negative integer");
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Read {"requests","tokens","window","reset_at"} from "o" into "b". */
static int load_bucket(struct mock *m, json_t *o, int default_window_s, struct mock_bucket *b,
                       const char *where)
{
    *b = (struct mock_bucket){.window_ms = (int64_t)default_window_s * 1000,
                              .anchor_ms = m->start_ms};
    if (!o)
        return 0;
    if (!json_is_object(o))
        return bad(where, "limits must be an object");
    if (get_uint(o, "requests", &b->requests, where) ||
        get_uint(o, "tokens", &b->tokens, where))
        return -EINVAL;
    const char *w = json_string_value(json_object_get(o, "window"));
    if (json_object_get(o, "window") && (!w || mock_parse_window(w, &b->window_ms)))
        return bad(where, "window must look like \"30s\", \"1m\", \"5h\", \"1d\" or \"7d\"");
    const char *at = json_string_value(json_object_get(o, "reset_at"));
    if (json_object_get(o, "reset_at") && (!at || mock_parse_rfc3339(at, &b->anchor_ms)))
        return bad(where, "reset_at must be an RFC 3339 instant");
    return 0;
}

static int load_models(struct mock *m, struct mock_account *a, json_t *o, int window_s,
                       const char *where)
{
    if (!o)
        return 0;
    if (!json_is_object(o))
        return bad(where, "models must be an object of per-model limits");
    a->models = calloc(json_object_size(o) + 1, sizeof(*a->models));
    if (!a->models)
        return -ENOMEM;
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v)
    {
        struct mock_model *mm = &a->models[a->nmodels++];
        mm->name = strdup(name);
        if (!mm->name)
            return -ENOMEM;
        if (load_bucket(m, v, window_s, &mm->b, where))
            return -EINVAL;
    }
    return 0;
}

static int load_provider(json_t *o, struct mock_account *a, const char *where)
{
    const char *p = json_string_value(json_object_get(o, "provider"));
    for (int i = 0; p && i < MOCK_PROVIDERS; i++)
        if (strcmp(p, mock_providers[i]->name) == 0) {
            a->provider = (enum mock_provider)i;
            return 0;
        }
    return bad(where, "provider must be one of openai, azure-openai, anthropic, gemini, "
                      "github-copilot, github, antigravity, openrouter, llamacpp");
}

static int load_details(json_t *o, struct mock_account *a, const char *where)
{
    static const char *const names[] = {"QuotaFailure", "RetryInfo", "Help"};
    json_t *list = json_object_get(o, "details_order");
    if (!list) {
        a->details[0] = MOCK_QUOTA_FAILURE;
        a->details[1] = MOCK_HELP;
        a->details[2] = MOCK_RETRY_INFO;
        a->ndetails = 3;
        return 0;
    }
    size_t i;
    json_t *v;
    if (!json_is_array(list) || json_array_size(list) > MOCK_DETAILS_MAX)
        return bad(where, "details_order must list QuotaFailure, RetryInfo, Help");
    json_array_foreach(list, i, v)
    {
        size_t k = 0;
        while (k < 3 && !(json_is_string(v) && strcmp(json_string_value(v), names[k]) == 0))
            k++;
        if (k == 3)
            return bad(where, "details_order must list QuotaFailure, RetryInfo, Help");
        a->details[a->ndetails++] = (enum mock_detail)k;
    }
    return 0;
}

static int load_credits(json_t *o, struct mock_account *a, const char *where)
{
    json_t *c = json_object_get(o, "credits");
    a->credit_per_call = 0.01;
    if (!c)
        return 0;
    json_t *limit = json_object_get(c, "limit"), *usage = json_object_get(c, "usage");
    json_t *per = json_object_get(c, "per_call");
    if (!json_is_object(c) || (limit && !json_is_null(limit) && !json_is_number(limit)) ||
        (usage && !json_is_number(usage)) || (per && !json_is_number(per)))
        return bad(where, "credits must be {\"limit\": number|null, \"usage\": number, "
                          "\"per_call\": number}");
    a->has_credit_limit = json_is_number(limit);
    a->credit_limit = json_number_value(limit);
    a->credit_usage0 = a->credit_usage = json_number_value(usage);
    if (per)
        a->credit_per_call = json_number_value(per);
    return 0;
}

static int load_slots(json_t *o, struct mock_account *a, const char *where)
{
    json_t *s = json_object_get(o, "slots");
    uint64_t total = 1, busy = 0;
    if (json_is_integer(s)) {
        total = (uint64_t)json_integer_value(s);
    } else if (s) {
        json_t *exposed = json_object_get(s, "exposed");
        if (!json_is_object(s) || get_uint(s, "total", &total, where) ||
            get_uint(s, "busy", &busy, where) || (exposed && !json_is_boolean(exposed)))
            return bad(where, "slots must be N or {\"total\": N, \"busy\": N, \"exposed\": "
                              "bool}");
        a->slots_hidden = exposed && !json_is_true(exposed);
    }
    if (total > 1024 || busy > total)
        return bad(where, "slots: at most 1024, and busy <= total");
    a->slots_total = (unsigned)total;
    a->slots_busy = (unsigned)busy;
    a->loading = json_is_true(json_object_get(o, "loading"));
    return 0;
}

static int load_account(struct mock *m, json_t *o, size_t i, struct mock_account *a)
{
    char where[160];
    snprintf(where, sizeof(where), "accounts[%zu]", i);
    if (!json_is_object(o))
        return bad(where, "an account must be an object");
    if (load_provider(o, a, where))
        return -EINVAL;
    const char *key = json_string_value(json_object_get(o, "key"));
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!key && a->provider != MOCK_LLAMACPP)
        return bad(where, "key is required");
    char fallback[64];
    snprintf(fallback, sizeof(fallback), "%s-%zu", mock_providers[a->provider]->name, i);
    a->key = strdup(key ? key : "");
    a->name = strdup(name ? name : fallback);
    if (!a->key || !a->name)
        return -ENOMEM;
    snprintf(where, sizeof(where), "account %s", a->name);
    int window_s = mock_providers[a->provider]->default_window_s;
    const char *plan = json_string_value(json_object_get(o, "plan"));
    const char *tier = json_string_value(json_object_get(o, "tier"));
    const char *project = json_string_value(json_object_get(o, "project"));
    a->free_plan = (plan && strcmp(plan, "free") == 0) || (tier && strcmp(tier, "free") == 0);
    json_t *ls = json_object_get(o, "limit_status");
    a->limit_status = json_is_integer(ls) && json_integer_value(ls) == 429 ? 429 : 403;
    char fallback_project[200];
    snprintf(fallback_project, sizeof(fallback_project), "mock-project-%s", a->name);
    a->project = strdup(project ? project : fallback_project);
    if (!a->project)
        return -ENOMEM;
    if (load_bucket(m, json_object_get(o, "limits"), window_s, &a->limits, where) ||
        load_models(m, a, json_object_get(o, "models"), window_s, where) ||
        load_details(o, a, where) || load_credits(o, a, where) || load_slots(o, a, where))
        return -EINVAL;
    if (a->provider == MOCK_GITHUB && !a->limits.requests)
        a->limits.requests = 5000; /* GitHub always has a primary limit */
    return 0;
}

/* Read the config at "path" into "m" (whose start_ms is set). Returns 0, or a negative
 * errno after saying what is wrong on stderr. */
int mock_config_load(struct mock *m, const char *path)
{
    json_error_t e;
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        fprintf(stderr,
                "rota-mockprovider: warning: %s holds the accounts' keys and other users "
                "may read it (mode %04o); chmod 600 it\n",
                path, (unsigned)(st.st_mode & 07777));
    json_t *root = json_load_file(path, 0, &e);
    if (!root) {
        fprintf(stderr, "rota-mockprovider: %s:%d: %s\n", path, e.line, e.text);
        return -EINVAL;
    }
    int rc = 0;
    json_t *list = json_object_get(root, "accounts");
    json_t *lat = json_object_get(root, "latency_ms"),
           *tpc = json_object_get(root, "tokens_per_call");
    m->tokens_per_call = 50;
    if (!json_is_array(list) || (lat && !json_is_integer(lat)) ||
        (tpc && !json_is_integer(tpc)) || json_integer_value(lat) < 0 ||
        json_integer_value(lat) > 600000 || json_integer_value(tpc) < 0 ||
        json_integer_value(tpc) > 100000000) {
        rc = bad(path, "expected {\"accounts\": [...], \"latency_ms\": N, "
                       "\"tokens_per_call\": N}");
        goto out;
    }
    m->latency_ms = (unsigned)json_integer_value(lat);
    if (tpc)
        m->tokens_per_call = (unsigned)json_integer_value(tpc);
    m->accounts = calloc(json_array_size(list) + 1, sizeof(*m->accounts));
    if (!m->accounts) {
        rc = -ENOMEM;
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        rc = load_account(m, v, i, &m->accounts[m->naccounts++]);
        if (rc)
            goto out;
        for (size_t k = 0; k + 1 < m->naccounts; k++)
            if (strcmp(m->accounts[k].name, m->accounts[i].name) == 0 ||
                (m->accounts[i].key[0] &&
                 strcmp(m->accounts[k].key, m->accounts[i].key) == 0)) {
                rc = bad(m->accounts[i].name, "two accounts share a name or a key");
                goto out;
            }
    }
out:
    json_decref(root);
    return rc;
}

void mock_config_free(struct mock *m)
{
    for (size_t i = 0; i < m->naccounts; i++) {
        struct mock_account *a = &m->accounts[i];
        for (size_t k = 0; k < a->nmodels; k++)
            free(a->models[k].name);
        free(a->models);
        free(a->key);
        free(a->name);
        free(a->project);
    }
    free(m->accounts);
    m->accounts = NULL;
    m->naccounts = 0;
}

/* The account whose credential is "key", or NULL. */
struct mock_account *mock_account_find(struct mock *m, const char *key)
{
    for (size_t i = 0; key && key[0] && i < m->naccounts; i++)
        if (strcmp(m->accounts[i].key, key) == 0)
            return &m->accounts[i];
    return NULL;
}

struct mock_model *mock_model_find(struct mock_account *a, const char *name)
{
    for (size_t i = 0; name && i < a->nmodels; i++)
        if (strcmp(a->models[i].name, name) == 0)
            return &a->models[i];
    return NULL;
}

/* ---- counting ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Enter the window holding "now", dropping the counts of an earlier one. */
static void roll(struct mock_bucket *b, int64_t now)
{
    int64_t k = floor_div(now - b->anchor_ms, b->window_ms);
    if (k != b->index) {
        b->index = k;
        b->used_requests = b->used_tokens = 0;
    }
}

static int64_t window_end(const struct mock_bucket *b)
{
    return b->anchor_ms + (b->index + 1) * b->window_ms;
}

/* The request bucket of "b" at "now_ms", or its token bucket if "tokens". */
void mock_bucket_view(struct mock_bucket *b, int64_t now_ms, bool tokens, struct mock_view *v)
{
    roll(b, now_ms);
    v->limit = tokens ? b->tokens : b->requests;
    v->used = tokens ? b->used_tokens : b->used_requests;
    v->remaining = v->limit > v->used ? v->limit - v->used : 0;
    v->reset_ms = window_end(b);
}

/* Would one more call of "tokens" overrun "b"? Then describe it in "hit". */
static bool overruns(struct mock_bucket *b, uint64_t tokens, int64_t now, struct mock_hit *hit)
{
    roll(b, now);
    bool req = b->requests && b->used_requests + 1 > b->requests;
    bool tok = !req && b->tokens && b->used_tokens + tokens > b->tokens;
    if (!req && !tok)
        return false;
    *hit = (struct mock_hit){.what = req ? "requests" : "tokens",
                             .limit = req ? b->requests : b->tokens,
                             .used = req ? b->used_requests : b->used_tokens,
                             .window_ms = b->window_ms,
                             .reset_ms = window_end(b),
                             .retry_ms = window_end(b) - now};
    return true;
}

/* Count one call of "tokens" tokens against "a"'s limits and, if not NULL, "model"'s.
 * Returns 0 when within them, or -EAGAIN with the limit reached in "hit" (nothing is
 * counted then). Lock held. */
int mock_charge(struct mock_account *a, struct mock_model *model, uint64_t tokens,
                int64_t now_ms, struct mock_hit *hit)
{
    if (overruns(&a->limits, tokens, now_ms, hit))
        return -EAGAIN;
    if (model && overruns(&model->b, tokens, now_ms, hit)) {
        hit->model = model->name;
        return -EAGAIN;
    }
    a->limits.used_requests++;
    a->limits.used_tokens += tokens;
    if (model) {
        model->b.used_requests++;
        model->b.used_tokens += tokens;
    }
    return 0;
}

/* Zero every counter: window use, credits used, calls and statuses. Lock held. */
void mock_counts_reset(struct mock *m)
{
    for (size_t i = 0; i < m->naccounts; i++) {
        struct mock_account *a = &m->accounts[i];
        a->limits.used_requests = a->limits.used_tokens = 0;
        for (size_t k = 0; k < a->nmodels; k++)
            a->models[k].b.used_requests = a->models[k].b.used_tokens = 0;
        a->credit_usage = a->credit_usage0;
        a->calls = a->dropped = 0;
        memset(a->status, 0, sizeof(a->status));
        a->tokens_in = a->tokens_out = a->nrecent = 0;
    }
    m->unknown_key = m->foreign_credentials = 0;
    memset(m->status, 0, sizeof(m->status));
}

static json_t *status_object(const uint64_t *status)
{
    json_t *o = json_object();
    for (int s = 0; s < MOCK_STATUS_MAX; s++)
        if (status[s]) {
            char k[8];
            snprintf(k, sizeof(k), "%d", s);
            json_object_set_new(o, k, json_integer((json_int_t)status[s]));
        }
    return o;
}

/* Count the usage an answer of "a" reported. Lock held. */
void mock_usage_count(struct mock_account *a, const struct mock_usage *u)
{
    a->tokens_in += u->in;
    a->tokens_out += u->out;
    a->recent[a->nrecent++ % MOCK_RECENT] = *u;
}

/* The latest answers' usage, oldest first: [{"in", "out", "thoughts"}]. */
static json_t *recent(const struct mock_account *a)
{
    json_t *list = json_array();
    uint64_t first = a->nrecent > MOCK_RECENT ? a->nrecent - MOCK_RECENT : 0;
    for (uint64_t i = first; i < a->nrecent; i++) {
        const struct mock_usage *u = &a->recent[i % MOCK_RECENT];
        json_array_append_new(list, json_pack("{s:i, s:i, s:i}", "in", (int)u->in, "out",
                                              (int)u->out, "thoughts", (int)u->thoughts));
    }
    return list;
}

/* GET /_mock/stats: {"accounts": {name: {"provider", "calls", "status": {code: n},
 * "dropped", "requests_used", "tokens_used", "tokens_in", "tokens_out", "usage"}},
 * "status": {...}, "unknown_key": n, "faults": n}. tokens_in and tokens_out add up the
 * usage the account's answers reported since the last reset (what a client was told);
 * usage lists it per answer, the latest MOCK_RECENT. Lock held. */
json_t *mock_stats(struct mock *m)
{
    int64_t now = mock_now_ms();
    json_t *accounts = json_object();
    for (size_t i = 0; i < m->naccounts; i++) {
        struct mock_account *a = &m->accounts[i];
        roll(&a->limits, now);
        json_t *o = json_pack(
            "{s:s, s:I, s:o, s:I, s:I, s:I}", "provider", mock_providers[a->provider]->name,
            "calls", (json_int_t)a->calls, "status", status_object(a->status), "dropped",
            (json_int_t)a->dropped, "requests_used", (json_int_t)a->limits.used_requests,
            "tokens_used", (json_int_t)a->limits.used_tokens);
        json_object_set_new(o, "tokens_in", json_integer((json_int_t)a->tokens_in));
        json_object_set_new(o, "tokens_out", json_integer((json_int_t)a->tokens_out));
        json_object_set_new(o, "usage", recent(a));
        json_object_set_new(accounts, a->name, o);
    }
    return json_pack("{s:o, s:o, s:I, s:I, s:I, s:s, s:s, s:b, s:I}", "accounts", accounts,
                     "status", status_object(m->status), "unknown_key",
                     (json_int_t)m->unknown_key, "faults", (json_int_t)mock_fault_count(m, now),
                     "foreign_credentials", (json_int_t)m->foreign_credentials, "last_model",
                     m->last_model, "last_request_id", m->last_request_id, "last_usage_asked",
                     m->last_usage_asked, "holding", (json_int_t)m->holding);
}
