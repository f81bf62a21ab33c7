/*
 * dispatch_answer.c - what the pool answers a client: an upstream's answer passed on,
 * a failure in the endpoint's shape (an error event once a stream has begun), or 429
 * when nothing can be chosen, with which tiers were passed over and why.
 *
 * DESIGN
 * An upstream's error body may quote the key it was sent (a 401's "Incorrect API key
 * provided: ..."): before any upstream body (status 400 or more, whole or an excerpt in
 * an error event) reaches the client, every key this request used is fetched again,
 * one at a time into a stack buffer wiped after, into a redaction set (core/redact.h),
 * and taken out of a copy of the text. A set that cannot be made keeps the body back.
 * Runs on the thread's loop, as the rest of dispatch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dispatch_int.h"
#include "redact.h"
#include "rota_int.h"

void rota_dispatch_fail(struct call *k, int status, const char *type, const char *message)
{
    k->final_status = status;
    if (!k->c) {
    } else if (k->begun) { /* a stream already begun: end it with an error event */
        struct dbuf xe = {0};
        if (rota_dispatch_xl_fail(k, message, &xe)) { /* its blocks closed first */
            if (xe.p && rota_front_stream_write(k->c, xe.p, xe.len) == 0)
                k->bytes_out += xe.len;
            free(xe.p);
        } else {
            char ev[700];
            size_t n = rota_fmt_stream_error(k->ep->fmt, ev, sizeof(ev), message);
            if (rota_front_stream_write(k->c, ev, n) == 0)
                k->bytes_out += n;
        }
        rota_front_stream_end(k->c);
    } else {
        char body[1024]; /* what rota_front_error sends, for the log's count */
        k->bytes_out +=
            rota_front_error_json(body, sizeof(body), k->path, status, type, message);
        rota_front_error(k->c, status, type, message);
    }
    k->c = NULL;
    k->r = NULL;
    rota_dispatch_finish(k);
}

/* Take every key this request sent upstream out of "text" (a string in "cap" bytes).
 * False when that could not be done (the text is then emptied). */
static bool redact_keys(struct call *k, char *text, size_t cap)
{
    struct rota_redact *set = NULL;
    bool ok = true;
    char key[4096];
    for (uint32_t i = 0; i < k->natt && ok; i++) {
        int kl = rota_credential(k->d->o.h, &k->att[i].ch, key, sizeof(key));
        if (kl <= 0)
            continue; /* none, or that generation is gone: it cannot be fetched again */
        const char *one = key;
        struct rota_redact *next;
        ok = rota_redact_new(&one, 1, set, &next) == 0;
        explicit_bzero(key, sizeof(key));
        if (ok) {
            rota_redact_unref(set);
            set = next;
        }
    }
    explicit_bzero(key, sizeof(key));
    if (ok)
        rota_redact_text(set, text, cap);
    else if (cap)
        text[0] = 0;
    rota_redact_unref(set);
    return ok;
}

/* A copy of the answer's body, keys taken out (malloc'd; NULL when out of memory). */
static char *redacted_answer(struct call *k, size_t *len)
{
    size_t n = k->answer.len, cap = 2 * n + 64; /* "[redacted]" may be longer than a run */
    char *b = malloc(cap);
    if (!b)
        return NULL;
    memcpy(b, k->answer.p ? k->answer.p : "", n);
    b[n] = 0;
    if (!redact_keys(k, b, cap))
        snprintf(b, cap, "{\"error\":{\"message\":\"upstream answered %d\"}}", k->status);
    *len = strlen(b);
    return b;
}

/* A 2xx that is not an event stream, to a client whose stream comments began: the body
 * as the data of one event. */
static void pass_as_event(struct call *k)
{
    struct dbuf ev = {0};
    const char *p = k->answer.p ? k->answer.p : "", *e = p + k->answer.len;
    do {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(e - p);
        if (n && p[n - 1] == '\r')
            n--;
        rota_dispatch_put(&ev, "data: ", 6, SIZE_MAX);
        rota_dispatch_put(&ev, p, n, SIZE_MAX);
        rota_dispatch_put(&ev, "\n", 1, SIZE_MAX);
        p = nl ? nl + 1 : e;
    } while (p < e);
    rota_dispatch_put(&ev, "\n", 1, SIZE_MAX);
    k->final_status = k->status;
    if (k->c && ev.p && rota_front_stream_write(k->c, ev.p, ev.len) == 0)
        k->bytes_out += ev.len;
    free(ev.p);
    rota_dispatch_end_answer(k);
    rota_dispatch_finish(k);
}

/* Pass the upstream answer held in "k" (its status and body) to the client. */
void rota_dispatch_pass_answer(struct call *k)
{
    bool err = k->status >= 400;
    if (!k->c || (k->begun && err)) {
        char msg[512];
        int at = snprintf(msg, sizeof(msg), "upstream answered %d: ", k->status);
        snprintf(msg + at, sizeof(msg) - (size_t)at, "%.200s", k->answer.p ? k->answer.p : "");
        if (!redact_keys(k, msg + at, sizeof(msg) - (size_t)at))
            msg[at - 2] = 0;
        rota_dispatch_fail(k, k->status, NULL, msg);
        return;
    }
    if (k->xlating && err) { /* the provider's error, in the client's shape */
        char msg[600];
        int at = snprintf(msg, sizeof(msg), "upstream %s answered %d: ", k->t.provider,
                          k->status);
        rota_dispatch_xl_message(k, msg + at, sizeof(msg) - (size_t)at);
        if (!redact_keys(k, msg + at, sizeof(msg) - (size_t)at))
            msg[at - 2] = 0;
        rota_dispatch_fail(k, k->status, NULL, msg);
        return;
    }
    if (k->xlating && !rota_dispatch_xl_answer(k)) {
        char msg[400];
        snprintf(msg, sizeof(msg), "the answer of %s could not be translated: %s",
                 k->t.provider, rota_dispatch_xl_why(k));
        k->note = "translation";
        rota_dispatch_fail(k, 502, NULL, msg);
        return;
    }
    if (k->begun) {
        pass_as_event(k);
        return;
    }
    char ct[128] = "application/json";
    for (const char *p = k->head.p; p && *p;) {
        if (strncasecmp(p, "content-type:", 13) == 0) {
            const char *s = p + 13 + strspn(p + 13, " \t");
            snprintf(ct, sizeof(ct), "%.*s", (int)strcspn(s, "\r\n"), s);
            break;
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    if (k->xlating)
        snprintf(ct, sizeof(ct), "application/json");
    const char *dropped = rota_dispatch_xl_dropped(k);
    struct rota_http_hdr h[] = {{"Content-Type", ct}, {"X-Rota-Schema-Dropped", dropped}};
    const char *body = k->answer.p ? k->answer.p : "";
    size_t len = k->answer.len;
    char *clean = NULL;
    if (err) {
        clean = redacted_answer(k, &len);
        body = clean ? clean : "";
        if (!clean)
            len = 0;
    }
    k->final_status = k->status;
    k->bytes_out += len;
    rota_front_reply(k->c, k->status, h, dropped ? 2 : 1, body, len);
    free(clean);
    k->c = NULL;
    k->r = NULL;
    rota_dispatch_finish(k);
}

static void describe_skips(struct call *k, char *buf, size_t n)
{
    static const char *const why[] = {"disabled", "cooldown", "breaker", "ceiling",
                                      "rate",     "busy",     "empty",   "tried"};
#define ADD(...)                                                                               \
    do {                                                                                       \
        int w_ = snprintf(buf + at, n - at, __VA_ARGS__);                                      \
        at = w_ < 0 || (size_t)w_ >= n - at ? n - 1 : at + (size_t)w_;                         \
    } while (0)
    size_t at = 0;
    if (!n)
        return;
    ADD("no account available for model %s:", k->model);
    for (uint32_t t = 0; t < k->ntiers_seen && at < n - 1; t++) {
        ADD(" tier %u:", t);
        if (k->skip_tiers >> t & 1) {
            ADD(" %s,", rota_dispatch_fit_name((enum fit)k->skip_why[t]));
            continue;
        }
        for (int b = 0; b < 8 && at < n - 1; b++)
            if (k->skipped[t] >> b & 1)
                ADD(" %s,", why[b]);
    }
#undef ADD
    if (at < n && at > 0 && buf[at - 1] == ',')
        buf[at - 1] = 0;
}

/* Was every tier of the route passed over because it cannot serve this request (its
 * format, its model)? Then no wait helps: the request is refused (400), not told to
 * come back (429). */
static bool no_tier_serves(const struct call *k)
{
    uint32_t n = k->route_tiers;
    return !k->natt && n > 0 && n <= 32 &&
           (k->skip_tiers & (n == 32 ? UINT32_MAX : (1u << n) - 1)) ==
               (n == 32 ? UINT32_MAX : (1u << n) - 1);
}

void rota_dispatch_exhausted(struct call *k)
{
    if (no_tier_serves(k) && !k->begun) {
        char msg[1000], why[600];
        describe_skips(k, why, sizeof(why));
        bool format = true; /* every tier passed over for its format alone */
        for (uint32_t t = 0; t < k->route_tiers && t < 32; t++)
            format &= k->skip_why[t] == FIT_FORMAT;
        if (format)
            snprintf(msg, sizeof(msg),
                     "model %s: no tier of its route speaks the %s API of %s, and %s", k->model,
                     rota_fmt_name(k->ep->fmt), k->path,
                     k->ep->xl == ROTA_XL_FORMATS ? "requests to that endpoint are not translated"
                                                  : "its route does not let the pool translate "
                                                    "(cross_format: false)");
        else if (k->refusal[0])
            snprintf(msg, sizeof(msg), "%.256s (%.600s)", k->refusal, why);
        else
            snprintf(msg, sizeof(msg), "%.600s", why);
        k->note = format ? "format" : k->refusal[0] ? "translation refused" : "no tier serves it";
        rota_dispatch_fail(k, 400, "invalid_request_error", msg);
        return;
    }
    rota_pool_count(&k->d->counts.exhausted, 1);
    if (k->natt && k->status >= 500 && k->answer.p) {
        k->note = "exhausted after 5xx";
        rota_dispatch_pass_answer(k);
        return;
    }
    char msg[600], ra[32];
    describe_skips(k, msg, sizeof(msg));
    uint64_t now = rota_dispatch_ns(), secs = 1;
    if (k->retry_at > now)
        secs = (k->retry_at - now + 999999999) / 1000000000;
    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)secs);
    k->note = "exhausted";
    k->final_status = 429;
    if (k->begun) {
        rota_dispatch_fail(k, 429, "rate_limit_error", msg);
        return;
    }
    char body[1024];
    size_t len = rota_front_error_json(body, sizeof(body), k->path, 429, NULL, msg);
    struct rota_http_hdr h[] = {{"Content-Type", "application/json"}, {"Retry-After", ra}};
    if (k->c && rota_front_reply(k->c, 429, h, 2, body, len) == 0)
        k->bytes_out += len;
    k->c = NULL;
    k->r = NULL;
    rota_dispatch_finish(k);
}
