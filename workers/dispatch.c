/*
 * dispatch.c - a request's way through the pool: its endpoint and body read, an
 * account chosen, the call made upstream, its outcome reported, retried on the next
 * choice while nothing has reached the client, and the answer given (dispatch.h says
 * what is served; dispatch_int.h draws the phases).
 *
 * DESIGN
 * Everything runs on the thread's loop: the front calls rota_dispatch_handle, the
 * upstream calls back on_head, on_data and on_done, a timer fires keep-alives and the
 * drain's limit. A request holds one choice at a time and reports it exactly once,
 * before the next selection, so an account that failed is cooled down or counted
 * against its breaker before anyone (this request included) chooses again; the
 * request never takes the same account twice (rota_select_except) and passes over
 * a tier that cannot serve it once it has seen one (dispatch_xlate.c: another format
 * where translation is forbidden or impossible, a model without tools, images or the
 * context the request needs). A tier of another format is served translated.
 *
 * Retry rules, before the first byte reached the client: a connect error, a timeout,
 * 408, 429, 5xx and 529 are reported and tried on the next choice; 401, 402 and 403 are
 * reported (the table disables the account) and tried on the next choice; other 4xx
 * pass through. Within "attempts" upstream calls and "deadline_ms" of the request's
 * life. When nothing can be chosen: 429 with Retry-After and which tiers were passed
 * over and why, unless the last answer was a 5xx, which is passed on.
 *
 * Keys: taken with rota_credential into a stack buffer, handed to the upstream (which
 * copies it into one header line it wipes), wiped here at once. Never logged. What the
 * client is answered, and the keys taken out of an upstream's body first, is in
 * dispatch_answer.c.
 *
 * Client keys (when the table has any): the client's own key, from "Authorization:
 * Bearer K", "x-api-key: K" (Anthropic), "x-goog-api-key: K" or "?key=K" (Gemini), is
 * looked up by its hash (clientkey.c) as soon as the head is in (rota_dispatch_head, the
 * front's head check), before any of the body is read or asked for: none or an unknown
 * one is answered 401 and the connection closed; GET /v1/models wants one too. Once the route
 * is known, a key that may not use it is answered 403, one past its own RPM or TPM 429 with
 * Retry-After; all three in the endpoint's shape. The key's name goes to the access log, the
 * key nowhere: the upstream never forwards these headers (rota_upstream_passes) nor the
 * client's query, and nothing here copies the key.
 *
 * Keep-alive comments (": keep-alive") are written while upstream is slow to answer,
 * but only where the answer is known to be an event stream: OpenAI and Anthropic with
 * "stream": true, Gemini's :streamGenerateContent with alt=sse. Any head stops them.
 * A 2xx that is not an event stream after comments began the client's stream (an
 * upstream that ignored "stream") is passed as one event whose data is the body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dispatch_int.h"
#include "rota_int.h"

static const struct endpoint endpoints[] = {
    {"/v1/chat/completions", ROTA_FMT_OPENAI, ROTA_XL_OPENAI, true, false},
    {"/v1/completions", ROTA_FMT_OPENAI, ROTA_XL_FORMATS, true, false},
    {"/v1/embeddings", ROTA_FMT_OPENAI, ROTA_XL_FORMATS, false, false},
    {"/v1/responses", ROTA_FMT_OPENAI, ROTA_XL_RESPONSES, false, false},
    {"/v1/messages", ROTA_FMT_ANTHROPIC, ROTA_XL_ANTHROPIC, false, false},
    {"/v1/messages/count_tokens", ROTA_FMT_ANTHROPIC, ROTA_XL_FORMATS, false, false},
};
static const struct endpoint gemini_generate = {":generateContent", ROTA_FMT_GEMINI,
                                                ROTA_XL_GEMINI, false, false};
static const struct endpoint gemini_stream = {":streamGenerateContent", ROTA_FMT_GEMINI,
                                              ROTA_XL_GEMINI, false, true};
#define GEMINI_PREFIX "/v1beta/models/"

uint64_t rota_dispatch_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int rota_dispatch_put(struct dbuf *b, const char *p, size_t n, size_t max)
{
    if (b->len + n > max)
        return -EFBIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void dbuf_free(struct dbuf *b)
{
    free(b->p);
    *b = (struct dbuf){0};
}

/* ---- endpoints ---- */

/* The endpoint of "path", with the model Gemini puts in it into "model". */
static const struct endpoint *endpoint_of(const char *path, char *model, size_t n)
{
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
        if (strcmp(path, endpoints[i].path) == 0)
            return &endpoints[i];
    if (strncmp(path, GEMINI_PREFIX, strlen(GEMINI_PREFIX)) != 0)
        return NULL;
    const char *m = path + strlen(GEMINI_PREFIX), *colon = strrchr(m, ':');
    if (!colon || colon == m || (size_t)(colon - m) >= n || memchr(m, '/', (size_t)(colon - m)))
        return NULL;
    const struct endpoint *ep = strcmp(colon, gemini_generate.path) == 0 ? &gemini_generate
                                : strcmp(colon, gemini_stream.path) == 0 ? &gemini_stream
                                                                         : NULL;
    if (ep)
        snprintf(model, n, "%.*s", (int)(colon - m), m);
    return ep;
}

/* ---- client keys ---- */

/* "v" without trailing blanks: its length. */
static size_t trimmed(const char *v)
{
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n;
}

/* The key the client sent, and its length in *len (0 = none). */
static const char *sent_key(const struct rota_front_req *r, size_t *len)
{
    static const char *const headers[] = {"authorization", "x-api-key", "x-goog-api-key"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        const char *v = rota_front_header(r, headers[i]);
        if (v && i == 0)
            v = strncasecmp(v, "Bearer ", 7) == 0 ? v + 7 + strspn(v + 7, " \t") : NULL;
        if (v && (*len = trimmed(v)) > 0)
            return v;
    }
    for (const char *p = r->query; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL)
        if (strncmp(p, "key=", 4) == 0 && (*len = strcspn(p + 4, "&")) > 0)
            return p + 4;
    *len = 0;
    return NULL;
}

/* Who sends request "r": 0 (k->ck says), or the answer was given (401, 503). With "k"
 * NULL (GET /v1/models) only the answer is given, on "c". */
static int authenticate(struct rota_dispatch *d, struct call *k, struct rota_front_conn *c,
                        const struct rota_front_req *r)
{
    rota_client_key tmp, *ck = k ? &k->ck : &tmp;
    size_t len;
    const char *key = sent_key(r, &len);
    int rc = rota_client_key_find(d->o.h, key, len, ck);
    if (rc == 0)
        return 0;
    int status = rc == 401 ? 401 : 503;
    char msg[200];
    snprintf(msg, sizeof(msg), "%s",
             rc != 401 ? "the account table cannot be read"
             : len     ? "the API key is not one of this pool's keys"
                       : "an API key is required (Authorization: Bearer, x-api-key, "
                         "x-goog-api-key or ?key=)");
    if (k) {
        k->note = rc == 401 ? "client key" : "table";
        rota_dispatch_fail(k, status, NULL, msg);
    } else {
        rota_front_error(c, status, NULL, msg);
    }
    return -1;
}

int rota_dispatch_head(void *arg, const struct rota_front_req *r, const char **why)
{
    struct rota_dispatch *d = arg;
    if (!strcmp(r->path, "/healthz") || !strcmp(r->path, "/readyz"))
        return 0;
    rota_client_key ck;
    size_t len;
    const char *key = sent_key(r, &len);
    if (rota_client_key_find(d->o.h, key, len, &ck) != 401)
        return 0; /* known, or no keys, or the table unreadable: the handler says */
    *why = len ? "the API key is not one of this pool's keys"
               : "an API key is required (Authorization: Bearer, x-api-key, x-goog-api-key "
                 "or ?key=)";
    /* its line in the access log, as for any request */
    struct call *k = calloc(1, sizeof(*k));
    if (k) {
        k->d = d;
        snprintf(k->rid, sizeof(k->rid), "%s", r->request_id ? r->request_id : "");
        snprintf(k->path, sizeof(k->path), "%s", r->path);
        k->final_status = 401;
        k->note = "client key";
        k->t0_ns = rota_dispatch_ns();
        rota_dispatch_log(k);
        free(k);
    }
    return 401;
}

/* Answer 429 for the client key's own limit, with Retry-After. */
static void key_limited(struct call *k, uint64_t retry_ms)
{
    char body[512], ra[32];
    size_t len = rota_front_error_json(body, sizeof(body), k->path, 429, NULL,
                                       "this API key is over its own rate limit");
    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)((retry_ms + 999) / 1000));
    struct rota_http_hdr h[] = {{"Content-Type", "application/json"}, {"Retry-After", ra}};
    k->note = "client key limit";
    k->final_status = 429;
    rota_front_reply(k->c, 429, h, 2, body, len);
    k->c = NULL;
    k->r = NULL;
    rota_dispatch_finish(k);
}

/* May the client key send this request to its route now? 0, or the answer was given. */
static int authorize(struct call *k)
{
    uint64_t retry_ms = 0;
    int rc = rota_client_key_admit(k->d->o.h, &k->ck, &k->route, k->est, &retry_ms);
    if (rc == 0)
        return 0;
    if (rc == 429) {
        key_limited(k, retry_ms);
        return -1;
    }
    k->note = rc == 401 || rc == 403 ? "client key" : "table";
    rota_dispatch_fail(k, rc == 401 || rc == 403 ? rc : 503, NULL,
                       rc == 403   ? "this API key may not use this model"
                       : rc == 401 ? "the API key is not one of this pool's keys"
                                   : "the account table cannot be read");
    return -1;
}

/* ---- reporting ---- */

/* The response's retry hint: retry-after-ms, else retry-after in seconds. */
static uint64_t retry_hint(const char *h, size_t len)
{
    uint64_t ms = 0;
    for (const char *p = h; p && p < h + len;) {
        if (strncasecmp(p, "retry-after-ms:", 15) == 0)
            return strtoull(p + 15, NULL, 10);
        if (strncasecmp(p, "retry-after:", 12) == 0 && !ms)
            ms = (uint64_t)(strtod(p + 12, NULL) * 1000);
        p = memchr(p, '\n', (size_t)(h + len - p));
        p = p ? p + 1 : NULL;
    }
    return ms;
}

void rota_dispatch_report(struct call *k, int status, int result)
{
    if (!k->chosen)
        return;
    uint64_t now = rota_dispatch_ns();
    rota_outcome o = {.status = status,
                      .result = result,
                      .latency_ns = now - k->att_ns,
                      .tokens = k->usage.in + k->usage.out,
                      .retry_after_ms = retry_hint(k->head.p, k->head.len),
                      .headers = k->head.p,
                      .headers_len = k->head.len};
    if (status >= 400 && k->answer.len) {
        o.body = k->answer.p;
        o.body_len = k->answer.len;
    }
    rota_report(k->d->o.h, &k->ch, &o);
    k->chosen = false;
    k->upstream_ns += now - k->att_ns;
    if (k->natt) {
        struct attempt *a = &k->att[k->natt - 1];
        a->ms = (now - k->att_ns) / 1000000;
    }
}

/* Report a choice that made no call (a tier of another format, a stale choice). */
static void report_unused(struct call *k)
{
    rota_outcome o = {.result = ROTA_RESULT_CANCELLED, .tokens = 1};
    rota_report(k->d->o.h, &k->ch, &o);
    k->chosen = false;
}

static int result_of(int err)
{
    return err == -ETIMEDOUT ? ROTA_RESULT_TIMEOUT : ROTA_RESULT_CONNECT;
}

/* ---- the upstream's callbacks ---- */

static bool retryable(int status)
{
    return status == 408 || status == 429 || status >= 500 || status == 401 || status == 402 ||
           status == 403;
}

static void on_head(void *arg, int status, const char *headers, size_t len)
{
    struct call *k = arg;
    k->status = status;
    k->head.len = 0;
    rota_dispatch_put(&k->head, headers, len > 16384 ? 16384 : len, 16384);
    k->att[k->natt - 1].status = status;
    const char *ct = NULL;
    for (const char *p = headers; p && p < headers + len;) {
        if (strncasecmp(p, "content-type:", 13) == 0)
            ct = p + 13 + strspn(p + 13, " \t");
        p = memchr(p, '\n', (size_t)(headers + len - p));
        p = p ? p + 1 : NULL;
    }
    k->sse =
        status >= 200 && status < 300 && ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    rota_loop_timer_stop(k->d->l, &k->timer); /* no keep-alive past a head */
    if (k->sse)
        rota_dispatch_stream_head(k);
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct call *k = arg;
    if (k->sse)
        return rota_dispatch_stream_data(k, p, n);
    size_t max = k->status >= 300 ? (1u << 20) : k->d->o.max_answer;
    if (rota_dispatch_put(&k->answer, p, n, max) == 0)
        return 0;
    /* too large to hold: the call ends as failed (the rest is not read) */
    rota_upstream_cancel(k->up);
    k->up = NULL;
    rota_dispatch_report(k, 0, ROTA_RESULT_CONNECT);
    k->note = "answer too large";
    rota_dispatch_fail(k, 502, NULL, "the upstream answer is larger than the pool holds");
    return 0;
}

static void on_done(void *arg, int err, const char *why)
{
    struct call *k = arg;
    k->up = NULL;
    if (k->sse) {
        rota_dispatch_stream_done(k, err, why);
        return;
    }
    struct attempt *a = &k->att[k->natt - 1];
    a->err = err;
    if (err) {
        rota_dispatch_report(k, 0, result_of(err));
        k->note = err == -ETIMEDOUT ? "upstream timeout" : "upstream connection failed";
        k->status = 0;
        rota_dispatch_retry(k);
        return;
    }
    if (k->status >= 200 && k->status < 300)
        rota_fmt_usage(k->answer.p ? k->answer.p : "", k->answer.len, &k->usage);
    if (retryable(k->status) && !k->gone) {
        rota_dispatch_report(k, k->status, ROTA_RESULT_HTTP);
        rota_dispatch_retry(k);
        return;
    }
    k->note = k->gone ? "client gone" : NULL;
    k->report_status = k->status; /* reported once the answer is on its way (finish) */
    rota_dispatch_pass_answer(k);
}

static const struct rota_upstream_cbs upstream_cbs = {on_head, on_data, on_done};

/* ---- choosing and calling ---- */

static void note_skips(struct call *k, const rota_choice *ch)
{
    uint32_t n = ch->tier < ROTA_MAX_TIERS_SEEN ? ch->tier : ROTA_MAX_TIERS_SEEN;
    for (uint32_t t = 0; t < n; t++)
        k->skipped[t] |= ch->skipped[t];
    if (n > k->ntiers_seen)
        k->ntiers_seen = n;
}

/* Select until a choice that can serve the request comes (its tier speaks the
 * endpoint's format, or the request can be translated for it, and its model can take
 * the request), into k->ch and k->t. 0, ROTA_EEXHAUSTED, -EINVAL (the request is not
 * valid in its own format: k->xl says why), or another error. */
static int choose(struct call *k)
{
    struct rota_dispatch *d = k->d;
    for (int pick = 0; pick < PICKS_MAX; pick++) {
        int rc = rota_select_except(d->o.h, &k->route, k->sticky, k->sticky_len, k->est,
                                    k->skip_tiers, k->tried, k->ntried, &k->ch);
        note_skips(k, &k->ch);
        if (rc == ROTA_EEXHAUSTED) {
            k->retry_at = k->ch.retry_at;
            k->route_tiers = k->ch.tier;
        }
        if (rc)
            return rc;
        k->chosen = true;
        rc = rota_target_of(d->o.h, &k->ch, k->model, strlen(k->model), &k->t);
        enum fit f = rc == 0 ? rota_dispatch_fit(k) : FIT_FORMAT;
        if (rc == 0 && (f == FIT_PASS || f == FIT_XLATE)) {
            k->xlating = f == FIT_XLATE;
            return 0;
        }
        report_unused(k);
        if (rc == 0 && rota_dispatch_xl_bad_request(k))
            return -EINVAL;
        if (rc == 0 && k->ch.tier < 32) { /* it cannot serve this: never this tier again */
            k->skip_tiers |= 1u << k->ch.tier;
            k->skip_why[k->ch.tier] = (uint8_t)f;
            if (k->ch.tier + 1 > k->ntiers_seen)
                k->ntiers_seen = k->ch.tier + 1;
        } else if (rc != ROTA_ESTALE && k->ntried < TRIED_MAX - ATTEMPTS_MAX) {
            k->tried[k->ntried++] = k->ch.account_id;
        }
    }
    return ROTA_EEXHAUSTED;
}

/* Send the request to the choice in k->ch. 0, or an error (the choice is reported). */
static int call_upstream(struct call *k)
{
    struct rota_dispatch *d = k->d;
    struct attempt *a = &k->att[k->natt++];
    *a = (struct attempt){.ch = k->ch, .tier = k->ch.tier};
    rota_account_name(d->o.h, &k->ch, a->account, sizeof(a->account));
    if (k->ntried < TRIED_MAX) /* always: choose() leaves ATTEMPTS_MAX places */
        k->tried[k->ntried++] = k->ch.account_id;
    k->status = 0;
    k->head.len = k->answer.len = 0;
    k->sse = false;
    k->usage = (struct rota_fmt_usage){0};
    k->ask_usage =
        !k->xlating && k->ep->usage_opts && k->scan.stream && !k->scan.usage_asked;
    int rc = 0;
    struct rota_http_hdr xh[2];
    size_t nxh = 0;
    if (k->xlating) { /* the body written for the tier's format */
        rc = rota_dispatch_xl_body(k);
        nxh = rota_dispatch_xl_headers(k, xh, 2);
    } else { /* the body as pieces of the client's and the edits: nothing copied here */
        rota_fmt_splice_pieces(k->ep->fmt, k->r->body, k->r->body_len, &k->scan, k->t.model,
                               k->ask_usage, &k->body);
        for (size_t i = 0; i < k->body.npieces; i++)
            k->iov[i] =
                (struct iovec){(void *)(uintptr_t)k->body.piece[i].p, k->body.piece[i].len};
    }
    if (!rc)
        rc = rota_dispatch_url(k);
    char key[4096];
    int kl = rc ? rc : rota_credential(d->o.h, &k->ch, key, sizeof(key));
    if (kl < 0) {
        explicit_bzero(key, sizeof(key));
        a->err = kl;
        report_unused(k);
        return kl;
    }
    uint64_t now_ms = rota_loop_now(d->l),
             left = k->deadline_ms > now_ms ? k->deadline_ms - now_ms : 1;
    struct rota_upstream_req q = {.url = k->url,
                                  .body_iov = k->iov,
                                  .nbody_iov = k->body.npieces,
                                  .target = &k->t,
                                  .key = key,
                                  .client_headers = k->xlating ? xh : k->r->headers,
                                  .nclient_headers = k->xlating ? nxh : k->r->nheaders,
                                  .request_id = k->r->request_id,
                                  .connect_ms = d->o.connect_ms,
                                  .first_byte_ms = d->o.first_byte_ms,
                                  .idle_ms = d->o.idle_ms,
                                  .total_ms = k->wants_stream ? 0 : (uint32_t)left};
    k->att_ns = rota_dispatch_ns();
    rc = rota_upstream_start(d->u, &q, &upstream_cbs, k, &k->up);
    explicit_bzero(key, sizeof(key));
    if (rc) {
        a->err = rc;
        report_unused(k);
    } else if (k->keepalive && !k->committed && d->o.keepalive_ms) {
        rota_loop_timer_set(d->l, &k->timer, d->o.keepalive_ms);
    }
    return rc;
}

void rota_dispatch_retry(struct call *k)
{
    struct rota_dispatch *d = k->d;
    while (!k->gone) {
        if (k->natt >= d->o.attempts || rota_loop_now(d->l) >= k->deadline_ms) {
            k->note = k->natt >= d->o.attempts ? "attempts spent" : "deadline passed";
            if (k->status)
                rota_dispatch_pass_answer(k);
            else
                rota_dispatch_fail(k, k->natt >= d->o.attempts ? 502 : 504, NULL,
                                   "no upstream answered in time");
            return;
        }
        int rc = choose(k);
        if (rc == -EINVAL) {
            k->note = "invalid request";
            rota_dispatch_fail(k, 400, "invalid_request_error", rota_dispatch_xl_why(k));
            return;
        }
        if (rc == ROTA_EEXHAUSTED) {
            rota_dispatch_exhausted(k);
            return;
        }
        if (rc) {
            char msg[160];
            snprintf(msg, sizeof(msg), "the account table cannot be read: %s",
                     rota_strerror(rc));
            k->note = "table";
            rota_dispatch_fail(k, 503, NULL, msg);
            return;
        }
        if (call_upstream(k) == 0)
            return;
        if (k->natt >= ATTEMPTS_MAX)
            break;
    }
    k->note = "client gone";
    k->final_status = 499;
    rota_dispatch_finish(k);
}

/* ---- a request's life ---- */

/* The client left: what to do waits for the loop (the front may say so from inside a
 * write of ours). */
static void on_client_close(void *arg, struct rota_front_conn *c)
{
    struct call *k = arg;
    k->gone = true;
    rota_loop_defer(k->d->l, &k->gone_d);
}

static void after_gone(struct rota_loop_defer *dd)
{
    struct call *k = (struct call *)((char *)dd - offsetof(struct call, gone_d));
    if (k->sse && k->up) {
        rota_dispatch_stream_gone(k); /* reads on for the usage, bounded */
        return;
    }
    if (k->up) {
        rota_upstream_cancel(k->up);
        k->up = NULL;
        rota_dispatch_report(k, 0, ROTA_RESULT_CANCELLED);
    }
    k->note = "client gone";
    k->final_status = 499;
    rota_dispatch_end_answer(k);
    rota_dispatch_finish(k);
}

/* Complete the client's answer if it is not: a begun stream ends, else a 499 (which
 * nobody reads). "c" and "r" are not used after. */
void rota_dispatch_end_answer(struct call *k)
{
    if (!k->c)
        return;
    if (k->begun)
        rota_front_stream_end(k->c);
    else
        rota_front_error(k->c, 499, NULL, "client closed the request");
    k->c = NULL;
    k->r = NULL;
}

static void on_timer(struct rota_loop_timer *t)
{
    struct call *k = (struct call *)((char *)t - offsetof(struct call, timer));
    rota_dispatch_keepalive(k);
}

void rota_dispatch_finish(struct call *k)
{
    struct rota_dispatch *d = k->d;
    if (k->up) {
        rota_upstream_cancel(k->up);
        k->up = NULL;
    }
    if (k->chosen && k->report_status)
        rota_dispatch_report(k, k->report_status, ROTA_RESULT_HTTP);
    else if (k->chosen)
        rota_dispatch_report(k, 0, ROTA_RESULT_CANCELLED);
    rota_loop_timer_stop(d->l, &k->timer);
    rota_loop_undefer(d->l, &k->gone_d);
    rota_loop_undefer(d->l, &k->xl_d);
    rota_dispatch_end_answer(k); /* every path answered already; this one says so */
    rota_client_key_done(d->o.h, &k->ck, k->usage.in + k->usage.out);
    rota_dispatch_log(k);
    if (k->prev)
        k->prev->next = k->next;
    else
        d->calls = k->next;
    if (k->next)
        k->next->prev = k->prev;
    dbuf_free(&k->head);
    dbuf_free(&k->answer);
    dbuf_free(&k->carry);
    dbuf_free(&k->pend);
    rota_dispatch_xl_free(k);
    free(k);
    atomic_store_explicit(&d->counts.inflight, --d->inflight, memory_order_relaxed);
    if (d->inflight == 0 && d->idle_fn)
        d->idle_fn(d->idle_arg);
}

/* Read the request: its endpoint, model, route, sticky key and estimate. 0, or an
 * answer was given. */
static int admit(struct call *k)
{
    struct rota_dispatch *d = k->d;
    const struct rota_front_req *r = k->r;
    if (rota_fmt_scan_request(r->body, r->body_len, &k->scan)) {
        rota_dispatch_fail(k, 400, "invalid_request_error",
                           "the body is not a JSON object (or nests deeper than 128, or "
                           "repeats a key)");
        return -1;
    }
    if (k->ep->fmt != ROTA_FMT_GEMINI &&
        (!k->scan.model.len ||
         rota_fmt_string(r->body, k->scan.model, k->model, sizeof(k->model)) <= 0)) {
        rota_dispatch_fail(k, 400, "invalid_request_error", "\"model\" must be a string");
        return -1;
    }
    int rc = rota_route(d->o.h, k->model, &k->route);
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof(msg), "model %.256s: %s", k->model,
                 rc == ROTA_ENOROUTE ? "no route serves it" : rota_strerror(rc));
        rota_dispatch_fail(k, rc == ROTA_ENOROUTE ? 404 : 503,
                           rc == ROTA_ENOROUTE ? "not_found_error" : NULL, msg);
        return -1;
    }
    k->wants_stream = k->ep->stream || k->scan.stream;
    k->keepalive =
        k->ep->stream ? rota_dispatch_alt_sse(r->query) : k->ep->fmt != ROTA_FMT_GEMINI && k->scan.stream;
    k->est = k->scan.max_tokens + r->body_len / 4;
    const char *s = rota_front_header(r, "x-rota-session");
    if (s && *s) {
        k->sticky = s;
        k->sticky_len = strlen(s);
    } else if (k->scan.sticky.len) {
        k->sticky = r->body + k->scan.sticky.off;
        k->sticky_len = k->scan.sticky.len;
    }
    return authorize(k);
}

void rota_dispatch_handle(void *arg, struct rota_front_conn *c, const struct rota_front_req *r)
{
    struct rota_dispatch *d = arg;
    bool get = strcmp(r->method, "GET") == 0;
    if (get && strcmp(r->path, "/v1/models") == 0) {
        if (authenticate(d, NULL, c, r) == 0)
            rota_dispatch_models(d, c);
        return;
    }
    if (get && strcmp(r->path, "/readyz") == 0) {
        rota_dispatch_ready(d, c);
        return;
    }
    char model[256] = "";
    const struct endpoint *ep = endpoint_of(r->path, model, sizeof(model));
    if (!ep) {
        rota_front_error(c, 404, "not_found_error", "no such endpoint");
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        rota_front_error(c, 405, NULL, "use POST");
        return;
    }
    struct call *k = calloc(1, sizeof(*k));
    if (!k) {
        rota_front_error(c, 503, NULL, "out of memory");
        return;
    }
    k->d = d;
    k->c = c;
    k->r = r;
    k->ep = ep;
    k->t0_ns = rota_dispatch_ns();
    k->deadline_ms = rota_loop_now(d->l) + d->o.deadline_ms;
    k->timer.fn = on_timer;
    k->gone_d.fn = after_gone;
    k->bytes_in = r->body_len;
    snprintf(k->rid, sizeof(k->rid), "%s", r->request_id ? r->request_id : "");
    snprintf(k->path, sizeof(k->path), "%s", r->path);
    snprintf(k->model, sizeof(k->model), "%s", model);
    k->next = d->calls;
    if (d->calls)
        d->calls->prev = k;
    d->calls = k;
    atomic_store_explicit(&d->counts.inflight, ++d->inflight, memory_order_relaxed);
    if (authenticate(d, k, c, r) || admit(k))
        return;
    rota_front_on_close(c, on_client_close, k);
    rota_dispatch_retry(k);
}

/* ---- the thread's dispatch ---- */

int rota_dispatch_new(struct rota_dispatch **out, struct rota_loop *l, struct rota_upstream *u,
                      const struct rota_dispatch_opts *o)
{
    struct rota_dispatch *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->l = l;
    d->u = u;
    d->o = *o;
#define DEFAULT(f, v) d->o.f = d->o.f ? d->o.f : (v)
    DEFAULT(attempts, 3);
    DEFAULT(deadline_ms, 120000);
    DEFAULT(connect_ms, 10000);
    DEFAULT(first_byte_ms, 60000);
    DEFAULT(idle_ms, 60000);
    DEFAULT(keepalive_ms, 10000);
    DEFAULT(drain_ms, 10000);
    DEFAULT(drain_bytes, 1u << 20);
    DEFAULT(max_answer, 64u << 20);
#undef DEFAULT
    if (d->o.attempts > ATTEMPTS_MAX)
        d->o.attempts = ATTEMPTS_MAX;
    d->log_flush.fn = rota_dispatch_log_flush;
    *out = d;
    return 0;
}

void rota_dispatch_stop(struct rota_dispatch *d)
{
    while (d->calls) {
        struct call *k = d->calls;
        k->note = "stopped";
        if (k->c) /* the choice reported cancelled, the answer ended */
            rota_dispatch_fail(k, 503, NULL, "the pool is stopping");
        else
            rota_dispatch_finish(k);
    }
}

void rota_dispatch_free(struct rota_dispatch *d)
{
    if (d) {
        rota_loop_undefer(d->l, &d->log_flush);
        rota_dispatch_log_flush(&d->log_flush); /* the lines of the last turn */
        dbuf_free(&d->log);
        dbuf_free(&d->logq);
    }
    free(d);
}

unsigned rota_dispatch_inflight(const struct rota_dispatch *d)
{
    return d->inflight;
}

const struct rota_pool_counts *rota_dispatch_counts(const struct rota_dispatch *d)
{
    return &d->counts;
}

void rota_dispatch_on_idle(struct rota_dispatch *d, void (*fn)(void *), void *arg)
{
    d->idle_fn = fn;
    d->idle_arg = arg;
}
