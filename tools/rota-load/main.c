/*
 * rota-load - drive calls through librota at a set rate and show where they went.
 *
 *   rota-load -i INSTANCE --route ROUTE [--upstream URL] [--model M] [--threads N]
 *             [--rate R] [--duration D] [--timeout-ms MS] [--every D] [--json FILE]
 *             [--label TEXT] [--plain]
 *   rota-load --summary FILE...
 *
 * Each call: rota_select on ROUTE; when every tier is exhausted, count it and wait until
 * the answer's retry_at (at most a second) or 50 ms; otherwise POST a small request
 * where rota_target_of says the call goes, for a client asking for model M (demo-model):
 * the provider's base URL (or URL, with --upstream: every provider played by one mock)
 * and endpoint, its wire format (shape.c), the key in the provider's auth header, its
 * extra headers, the model the chosen tier sends; with --plain, every call to
 * URL/v1/chat/completions with a bearer token. Always with the account's "provider/name"
 * in X-Rota-Account, then rota_report the status, the latency, the tokens of the answer's
 * usage, any Retry-After, the answer's raw headers (passive quota tracking) and an
 * error's body.
 * Every --every (1s) it prints a line: calls,
 * 2xx, 429, 5xx, exhausted selections and each tier's share of the calls. At the end: the
 * totals, calls per account, and with --json a summary file; --summary prints one table
 * over several such files. A credential is never printed.
 *
 * DESIGN
 * N calling threads share one librota handle; each has its own libcurl easy handle, so
 * connections are kept alive per thread. Pacing is a shared ticket counter: call k is due
 * at start + k / R, whichever thread takes it. The main thread holds SIGINT and SIGTERM
 * blocked like every thread and waits for them with sigtimedwait between interval lines,
 * so a signal ends the run early with the same report. Every call's timeout ends before
 * the hard stop (the duration + 5 s); a thread still busy then is reported and left.
 * Account and tier names come from the table itself (shm, read-only use), once, at start.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"
#include "rota.h"
#include "rota_version.h"
#include "table.h"

#define BODY_CAP    65536
#define HEAD_CAP    16384 /* raw response headers kept for the report */
#define KEY_MAX     8192  /* longest credential sent */
#define HARD_STOP_S 5
#define LAG_MAX_NS  100000000u /* pacing: how late a call may still be made */

struct options {
    const char *upstream, *json;
    uint64_t every_ns;
    long timeout_ms;
    bool plain;        /* every call in the plain shape, whatever the provider */
    const char *model; /* the client's model, for rota_target_of */
};

struct worker {
    pthread_t tid;
    struct load *l;
    CURL *curl;
    uint32_t *lat_us; /* latencies of this thread's calls */
    size_t nlat, caplat;
    char body[BODY_CAP];
    size_t body_len;
    char head[HEAD_CAP]; /* the last answer's header lines, status line first */
    size_t head_len;
    uint64_t est_tokens;
    _Atomic int done;
};

static rota_t *g_rota;
static rota_route_t g_route;
static struct options g_opt = {
    .every_ns = 1000000000u, .timeout_ms = 5000, .model = LOAD_MODEL};
static char g_upstream[1024]; /* the upstream without its trailing slashes */
static uint64_t g_start, g_end, g_hard;
static _Atomic uint64_t g_ticket;
static _Atomic int g_stop;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u),
                          .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* "250ms", "8s", "1.5m", "1h" or plain seconds; false if malformed or not positive. */
static bool parse_duration(const char *s, uint64_t *ns)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    double unit = 1e9;
    if (strcmp(e, "ms") == 0)
        unit = 1e6;
    else if (strcmp(e, "m") == 0)
        unit = 60e9;
    else if (strcmp(e, "h") == 0)
        unit = 3600e9;
    else if (*e && strcmp(e, "s") != 0)
        return false;
    if (e == s || errno || !(v > 0) || v * unit > 1e9 * 86400 * 7)
        return false;
    *ns = (uint64_t)(v * unit);
    return true;
}

/* ---- names from the table ---- */

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
    return x < y ? -1 : x > y;
}

/* The route named (or serving model) "name" in "m", or ROTA_NONE. */
static uint32_t find_route(const struct rota_shm_map *m, const char *name)
{
    for (uint32_t r = 0; r < m->nroutes; r++) {
        if (strcmp(rota_shm_str(m, m->routes[r].name), name) == 0)
            return r;
        for (const char *p = rota_shm_str(m, m->routes[r].models); *p; p += strlen(p) + 1)
            if (strcmp(p, name) == 0)
                return r;
    }
    return ROTA_NONE;
}

/* Label accounts "provider/name" and the route's tiers by provider (or their accounts). */
static int read_names(struct load *l)
{
    struct rota_shm_map m;
    char err[256];
    int rc = rota_shm_attach(l->instance, &m, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "rota-load: %s\n", err);
        return rc;
    }
    struct names *n = &l->names;
    uint64_t(*pairs)[2] = calloc(m.naccounts + 1, sizeof(*pairs));
    n->ids = calloc(m.naccounts + 1, sizeof(*n->ids));
    n->labels = calloc(m.naccounts + 1, sizeof(*n->labels));
    n->order = calloc(m.naccounts + 1, sizeof(*n->order));
    l->account = calloc(m.naccounts + 1, sizeof(*l->account));
    if (!pairs || !n->ids || !n->labels || !n->order || !l->account) {
        free(pairs);
        rota_shm_detach(&m);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < m.naccounts; i++) {
        pairs[i][0] = m.accounts[i].id;
        pairs[i][1] = i;
    }
    qsort(pairs, m.naccounts, sizeof(*pairs), by_id);
    for (uint32_t k = 0; k < m.naccounts; k++) {
        const struct rota_shm_account *a = &m.accounts[pairs[k][1]];
        n->ids[k] = a->id;
        n->order[pairs[k][1]] = k;
        snprintf(n->labels[k], sizeof(n->labels[k]), "%s/%s",
                 rota_shm_str(&m, m.providers[a->provider].name), rota_shm_str(&m, a->name));
    }
    n->naccounts = m.naccounts;
    n->order[m.naccounts] = m.naccounts;
    snprintf(n->labels[m.naccounts], sizeof(n->labels[0]), "(other)");
    free(pairs);
    uint32_t r = find_route(&m, l->route);
    for (uint32_t t = 0; r != ROTA_NONE && t < m.routes[r].ntiers && t < ROTA_MAX_TIERS; t++) {
        const struct rota_shm_tier *tier = &m.tiers[m.routes[r].tier0 + t];
        char *out = n->tiers[t];
        if (tier->provider != ROTA_NONE) {
            snprintf(out, sizeof(n->tiers[t]), "%s",
                     rota_shm_str(&m, m.providers[tier->provider].name));
            continue;
        }
        size_t len = 0;
        for (uint32_t k = 0; k < tier->nmembers && len + 1 < sizeof(n->tiers[t]); k++) {
            const struct rota_shm_account *a =
                &m.accounts[m.members[tier->member0 + k].account];
            len += (size_t)snprintf(out + len, sizeof(n->tiers[t]) - len, "%s%s", k ? "+" : "",
                                    rota_shm_str(&m, a->name));
        }
    }
    if (r != ROTA_NONE)
        n->ntiers = m.routes[r].ntiers < ROTA_MAX_TIERS ? m.routes[r].ntiers : ROTA_MAX_TIERS;
    rota_shm_detach(&m);
    return 0;
}

/* Position of account "id" in the names, or naccounts ("(other)"). */
static uint32_t account_slot(const struct names *n, uint64_t id)
{
    uint32_t lo = 0, hi = n->naccounts;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (n->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n->naccounts && n->ids[lo] == id ? lo : n->naccounts;
}

/* ---- one call ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct worker *w = arg;
    size_t n = size * nmemb;
    size_t room = sizeof(w->body) - 1 - w->body_len;
    memcpy(w->body + w->body_len, p, n < room ? n : room);
    w->body_len += n < room ? n : room;
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct worker *w = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0)
        w->head_len = 0; /* a new answer (after a 100 Continue, say) */
    size_t room = sizeof(w->head) - w->head_len;
    memcpy(w->head + w->head_len, p, n < room ? n : room);
    w->head_len += n < room ? n : room;
    return n;
}

static void count(struct tally *t, int status, int result)
{
    tally_add(&t->calls);
    if (result)
        tally_add(&t->failed);
    else if (status >= 200 && status < 300)
        tally_add(&t->ok);
    else if (status == 429)
        tally_add(&t->r429);
    else if (status >= 500)
        tally_add(&t->r5xx);
    else
        tally_add(&t->other);
}

/* Append target "t"'s extra headers ("Name: value\r\n" each) to "h". */
static struct curl_slist *extra_headers(struct curl_slist *h, const rota_target *t)
{
    for (const char *p = t->headers; *p;) {
        char line[600];
        size_t len = strcspn(p, "\r");
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        h = curl_slist_append(h, line);
        p += len + (p[len] ? 2 : 0);
    }
    return h;
}

/* POST where "t" says (or in the plain shape) with "key" as "label"; fills the outcome's
 * status or result, and points its headers (and an error's body) at the worker's
 * buffers. */
static void call(struct worker *w, const rota_target *t, const char *key, const char *label,
                 rota_outcome *o)
{
    char auth[KEY_MAX + 128], who[160], body[1024];
    char url[sizeof(g_upstream) + sizeof(t->base_url) + sizeof(t->path)];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    const char *header = g_opt.plain ? "Authorization" : t->auth_header;
    if (*key && *header) {
        snprintf(auth, sizeof(auth), "%s: %s%s", header,
                 g_opt.plain ? "Bearer " : t->auth_scheme, key);
        h = curl_slist_append(h, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    if (!g_opt.plain)
        h = extra_headers(h, t);
    snprintf(who, sizeof(who), "X-Rota-Account: %s", label);
    h = curl_slist_append(h, who);
    snprintf(url, sizeof(url), "%s%s", *g_upstream ? g_upstream : t->base_url,
             g_opt.plain ? "/v1/chat/completions" : t->path);
    load_body(g_opt.plain ? "openai" : t->format, t->model, body, sizeof(body));
    curl_easy_setopt(w->curl, CURLOPT_URL, url);
    curl_easy_setopt(w->curl, CURLOPT_COPYPOSTFIELDS, body);
    uint64_t now = mono_ns();
    long left_ms = now < g_hard ? (long)((g_hard - now) / 1000000u) - 1000 : 1;
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS,
                     g_opt.timeout_ms < left_ms ? g_opt.timeout_ms
                                                : (left_ms > 1 ? left_ms : 1));
    w->body_len = 0;
    w->head_len = 0;
    CURLcode rc = curl_easy_perform(w->curl);
    o->latency_ns = mono_ns() - now;
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        o->result = ROTA_RESULT_TIMEOUT;
    } else if (rc != CURLE_OK) {
        o->result = ROTA_RESULT_CONNECT;
    } else {
        long status = 0;
        curl_off_t retry = 0;
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(w->curl, CURLINFO_RETRY_AFTER, &retry);
        o->status = (int)status;
        o->retry_after_ms = retry > 0 ? (uint64_t)retry * 1000 : 0;
        o->headers = w->head; /* quota headers feed passive tracking */
        o->headers_len = w->head_len;
        if (status >= 200 && status < 300) {
            o->tokens = load_answer_tokens(w->body, w->body_len);
        } else {
            o->body = w->body; /* error bodies feed passive quota tracking */
            o->body_len = w->body_len;
        }
    }
}

static void keep_latency(struct worker *w, uint64_t ns)
{
    if (w->nlat == w->caplat) {
        size_t cap = w->caplat ? w->caplat * 2 : 4096;
        uint32_t *p = cap < (1u << 26) ? realloc(w->lat_us, cap * sizeof(*p)) : NULL;
        if (!p)
            return;
        w->lat_us = p;
        w->caplat = cap;
    }
    w->lat_us[w->nlat++] = ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns / 1000);
}

/* One selection and, when it gives an account, one call and its report. */
static void one(struct worker *w)
{
    struct load *l = w->l;
    rota_choice c;
    int rc = rota_select(g_rota, &g_route, NULL, 0, w->est_tokens, &c);
    if (rc == ROTA_EEXHAUSTED) {
        tally_add(&l->exhausted);
        uint64_t now = mono_ns();
        uint64_t until = c.retry_at > now ? c.retry_at : now + 50000000u;
        if (until > now + 1000000000u)
            until = now + 1000000000u;
        sleep_until(until < g_end ? until : g_end);
        return;
    }
    if (rc) {
        tally_add(&l->select_errors);
        sleep_until(mono_ns() + 50000000u);
        return;
    }
    char key[KEY_MAX];
    uint32_t slot = account_slot(&l->names, c.account_id);
    char label[2 * ROTA_MAX_NAME];
    snprintf(label, sizeof(label), "%s", l->names.labels[slot]);
    if (slot == l->names.naccounts && rota_account_name(g_rota, &c, key, ROTA_MAX_NAME) > 0)
        snprintf(label, sizeof(label), "?/%.*s", ROTA_MAX_NAME, key);
    rota_outcome o = {0};
    rota_target t;
    if (rota_target_of(g_rota, &c, g_opt.model, strlen(g_opt.model), &t) != 0 ||
        rota_credential(g_rota, &c, key, sizeof(key)) < 0) {
        tally_add(&l->select_errors);
        o.result = ROTA_RESULT_CANCELLED;
        rota_report(g_rota, &c, &o);
        return;
    }
    call(w, &t, key, label, &o);
    explicit_bzero(key, sizeof(key));
    rota_report(g_rota, &c, &o);
    if (o.tokens)
        w->est_tokens = o.tokens;
    int failed = o.result;
    count(&l->total, o.status, failed);
    count(&l->account[slot], o.status, failed);
    if (c.tier < ROTA_MAX_TIERS)
        count(&l->tier[c.tier], o.status, failed);
    if (o.result == ROTA_RESULT_TIMEOUT)
        tally_add(&l->timeouts);
    else if (o.result)
        tally_add(&l->connects);
    else if (o.status > 0 && o.status < 600)
        tally_add(&l->status[o.status]);
    keep_latency(w, o.latency_ns);
}

/* Wait for the next paced slot; false when it would fall after the end. Slots more than
 * LAG_MAX_NS overdue (every thread was busy or waiting) are given up, not made up for in
 * a burst: the rate is a ceiling. */
static bool pace(double rate)
{
    uint64_t k = atomic_fetch_add_explicit(&g_ticket, 1, memory_order_relaxed);
    uint64_t now = mono_ns();
    uint64_t due = g_start + (uint64_t)((double)k * 1e9 / rate);
    if (now > due + LAG_MAX_NS) {
        uint64_t k_now = (uint64_t)((double)(now - g_start) * rate / 1e9);
        uint64_t cur = k + 1;
        while (cur < k_now && !atomic_compare_exchange_weak_explicit(&g_ticket, &cur, k_now,
                                                                     memory_order_relaxed,
                                                                     memory_order_relaxed))
            ;
        due = now;
    }
    if (due >= g_end)
        return false;
    sleep_until(due);
    return true;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        if (w->l->rate > 0 && !pace(w->l->rate))
            break;
        if (mono_ns() >= g_end)
            break;
        one(w);
    }
    atomic_store_explicit(&w->done, 1, memory_order_release);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the run ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: rota-load -i INSTANCE --route ROUTE [options]\n"
               "       rota-load --summary FILE...\n"
               "  -i, --instance NAME   the rota instance to attach to\n"
               "  -r, --route ROUTE     a route, or a model a route serves\n"
               "  -u, --upstream URL    calls go to URL instead of each provider's base URL\n"
               "      --model M         the model clients ask for (" LOAD_MODEL ")\n"
               "  -t, --threads N       calling threads (4)\n"
               "      --rate R          calls per second in total; 0 = unpaced (0)\n"
               "  -d, --duration D      how long, e.g. 8s, 500ms, 2m (10s)\n"
               "      --timeout-ms MS   per call (5000)\n"
               "      --every D         one line per interval (1s)\n"
               "      --json FILE       write a summary of the run to FILE\n"
               "      --label TEXT      the run's name in the summary\n"
               "      --plain           every call to URL/v1/chat/completions, bearer key\n"
               "                        (needs --upstream)\n"
               "      --summary         print one table over --json files\n"
               "      --version         print the version and exit\n");
}

/* Take option "o" with its argument "arg"; false if the value is bad. */
static bool set_option(int o, const char *arg, struct load *l, uint64_t *ns, bool *summary)
{
    char *e = NULL;
    switch (o) {
    case 'i':
        l->instance = arg;
        return true;
    case 'r':
        l->route = arg;
        return true;
    case 'u':
        g_opt.upstream = arg;
        return true;
    case 'j':
        g_opt.json = arg;
        return true;
    case 'l':
        l->label = arg;
        return true;
    case 'S':
        *summary = true;
        return true;
    case 'P':
        g_opt.plain = true;
        return true;
    case 'M':
        g_opt.model = arg;
        return strlen(arg) < 256;
    case 'd':
        return parse_duration(arg, ns);
    case 'e':
        return parse_duration(arg, &g_opt.every_ns);
    case 't':
        l->threads = (unsigned)strtoul(arg, &e, 10);
        return !*e && l->threads > 0 && l->threads <= 256;
    case 'R':
        l->rate = strtod(arg, &e);
        return !*e && l->rate >= 0 && l->rate <= 1e6;
    case 'T':
        g_opt.timeout_ms = strtol(arg, &e, 10);
        return !*e && g_opt.timeout_ms > 0 && g_opt.timeout_ms <= 600000;
    default:
        return false;
    }
}

/* -1 to go on, or the exit status (usage printed). */
static int parse_args(int argc, char **argv, struct load *l, bool *summary)
{
    static const struct option opts[] = {{"instance", required_argument, NULL, 'i'},
                                         {"route", required_argument, NULL, 'r'},
                                         {"upstream", required_argument, NULL, 'u'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"rate", required_argument, NULL, 'R'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"timeout-ms", required_argument, NULL, 'T'},
                                         {"every", required_argument, NULL, 'e'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"label", required_argument, NULL, 'l'},
                                         {"summary", no_argument, NULL, 'S'},
                                         {"plain", no_argument, NULL, 'P'},
                                         {"model", required_argument, NULL, 'M'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    uint64_t ns = 10000000000u;
    int o;
    while ((o = getopt_long(argc, argv, "i:r:u:t:d:h", opts, NULL)) != -1) {
        if (o == 'h') {
            usage(stdout);
            return 0;
        }
        if (o == 'V') {
            printf("rota-load %s\n", ROTA_VERSION);
            return 0;
        }
        if (!set_option(o, optarg, l, &ns, summary)) {
            if (o != '?')
                fprintf(stderr, "rota-load: bad value \"%s\"\n", optarg ? optarg : "");
            usage(stderr);
            return 2;
        }
    }
    l->seconds = (double)ns / 1e9;
    if (*summary && optind < argc)
        return -1;
    if (*summary || !l->instance || !l->route || (g_opt.plain && !g_opt.upstream) ||
        optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Attach, resolve the route, read the names; prepare each worker's curl handle. */
static int setup(struct load *l, struct worker *w)
{
    char err[256] = "";
    int rc = rota_attach(l->instance, &g_rota, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "rota-load: attach %s: %s\n", l->instance,
                *err ? err : rota_strerror(rc));
        return 1;
    }
    if ((rc = rota_route(g_rota, l->route, &g_route))) {
        fprintf(stderr, "rota-load: route %s: %s\n", l->route, rota_strerror(rc));
        return 1;
    }
    if ((rc = read_names(l)))
        return 1;
    size_t ulen = g_opt.upstream ? strlen(g_opt.upstream) : 0;
    while (ulen && g_opt.upstream[ulen - 1] == '/')
        ulen--;
    snprintf(g_upstream, sizeof(g_upstream), "%.*s", (int)ulen, ulen ? g_opt.upstream : "");
    for (unsigned i = 0; i < l->threads; i++) {
        w[i].l = l;
        w[i].est_tokens = 100;
        if (!(w[i].curl = curl_easy_init()))
            return 1;
        curl_easy_setopt(w[i].curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(w[i].curl, CURLOPT_WRITEDATA, &w[i]);
        curl_easy_setopt(w[i].curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(w[i].curl, CURLOPT_HEADERDATA, &w[i]);
        curl_easy_setopt(w[i].curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(w[i].curl, CURLOPT_CONNECTTIMEOUT_MS,
                         g_opt.timeout_ms < 2000 ? g_opt.timeout_ms : 2000L);
    }
    return 0;
}

/* Print interval lines until the end or a signal; returns when the run is over. */
static void watch(struct load *l, const sigset_t *sigs)
{
    struct load_snap prev, cur;
    load_take(l, &prev);
    uint64_t tick = g_start + g_opt.every_ns;
    for (;;) {
        uint64_t now = mono_ns();
        uint64_t until = tick < g_end ? tick : g_end;
        if (now < until) {
            uint64_t d = until - now;
            struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
            int sig = sigtimedwait(sigs, NULL, &ts);
            if (sig > 0) {
                fprintf(stderr, "rota-load: stopped by signal %d\n", sig);
                return;
            }
            continue; /* timed out (or EINTR): look at the clock again */
        }
        load_take(l, &cur);
        if (now >= tick || cur.calls + cur.exhausted > prev.calls + prev.exhausted)
            load_print_interval(l, &prev, &cur, (double)(now - g_start) / 1e9);
        prev = cur;
        if (now >= g_end)
            return;
        tick += g_opt.every_ns;
    }
}

/* Stop the threads and join those that finish by the hard stop; the number left. */
static unsigned finish(struct load *l, struct worker *w)
{
    atomic_store_explicit(&g_stop, 1, memory_order_relaxed);
    uint64_t deadline = mono_ns() + (uint64_t)HARD_STOP_S * 1000000000u;
    if (deadline > g_hard)
        deadline = g_hard > mono_ns() ? g_hard : mono_ns();
    unsigned left;
    do {
        left = 0;
        for (unsigned i = 0; i < l->threads; i++)
            left += !atomic_load_explicit(&w[i].done, memory_order_acquire);
        if (left)
            sleep_until(mono_ns() + 10000000u);
    } while (left && mono_ns() < deadline);
    for (unsigned i = 0; i < l->threads; i++)
        if (atomic_load_explicit(&w[i].done, memory_order_acquire))
            pthread_join(w[i].tid, NULL);
    if (left)
        fprintf(stderr, "rota-load: %u thread(s) still in a call at the hard stop\n", left);
    return left;
}

/* All finished threads' latencies, sorted; *n of them. */
static uint32_t *latencies(struct load *l, struct worker *w, size_t *n)
{
    size_t total = 0;
    for (unsigned i = 0; i < l->threads; i++)
        if (atomic_load_explicit(&w[i].done, memory_order_acquire))
            total += w[i].nlat;
    uint32_t *all = malloc((total ? total : 1) * sizeof(*all));
    *n = 0;
    for (unsigned i = 0; all && i < l->threads; i++)
        if (atomic_load_explicit(&w[i].done, memory_order_acquire)) {
            memcpy(all + *n, w[i].lat_us, w[i].nlat * sizeof(*all));
            *n += w[i].nlat;
        }
    if (all)
        qsort(all, *n, sizeof(*all), by_value);
    return all;
}

int main(int argc, char **argv)
{
    static struct load l = {.threads = 4};
    bool summary = false;
    int rc = parse_args(argc, argv, &l, &summary);
    if (rc >= 0)
        return rc;
    if (summary)
        return load_summary(argc - optind, argv + optind);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread; the main one waits for them */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct worker *w = calloc(l.threads, sizeof(*w));
    if (!w || setup(&l, w))
        return 1;
    printf("rota-load: route %s of instance %s, %u threads, ", l.route, l.instance, l.threads);
    if (l.rate > 0)
        printf("%g calls/s", l.rate);
    else
        printf("unpaced");
    printf(", %gs; tiers:", l.seconds);
    for (uint32_t t = 0; t < l.names.ntiers; t++)
        printf("%s%s", t ? " > " : " ", l.names.tiers[t]);
    printf("\n");
    fflush(stdout);
    unsigned made = l.threads; /* curl handles; l.threads becomes the threads started */
    g_start = mono_ns();
    g_end = g_start + (uint64_t)(l.seconds * 1e9);
    g_hard = g_end + (uint64_t)HARD_STOP_S * 1000000000u;
    for (unsigned i = 0; i < l.threads; i++)
        if (pthread_create(&w[i].tid, NULL, run, &w[i])) {
            fprintf(stderr, "rota-load: cannot start thread %u of %u\n", i + 1, l.threads);
            l.threads = i; /* carry on with those that started */
            break;
        }
    watch(&l, &sigs);
    unsigned left = finish(&l, w);
    double secs = (double)(mono_ns() - g_start) / 1e9;
    size_t nlat;
    uint32_t *lat = latencies(&l, w, &nlat);
    load_print_totals(&l, lat, lat ? nlat : 0, secs);
    rc = g_opt.json && load_write_json(&l, g_opt.json, lat, lat ? nlat : 0) ? 1 : 0;
    free(lat);
    if (left) {
        fflush(NULL);
        _exit(rc); /* a thread is still inside libcurl: leave it all to the exit */
    }
    for (unsigned i = 0; i < made; i++) {
        curl_easy_cleanup(w[i].curl);
        free(w[i].lat_us);
    }
    free(w);
    rota_detach(g_rota);
    curl_global_cleanup();
    free(l.names.ids);
    free(l.names.labels);
    free(l.names.order);
    free(l.account);
    return rc;
}
