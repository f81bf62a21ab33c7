/*
 * dispatch_xlate.c - whether a chosen tier can serve a request, and, when the tier
 * speaks another wire format, the request translated for it and its answer translated
 * back (xlate.h); and the URL every call goes to.
 *
 * DESIGN
 * A request whose tier speaks its format passes through untouched (dispatch.c splices
 * the model, nothing more). Only when a choice lands on a tier of another format is the
 * body read into the representation, once per request, into the request's arena
 * (struct xlstate); each tier's body is written from it, and kept while the next
 * attempt is for the same format and model. A tier is passed over, with its reason,
 * when its model cannot take the request: tools to a model configured without them,
 * images to a text-only one, an estimate above its context, another format on a route
 * that forbids translation, or a request the target format cannot carry (the reason
 * kept: if no tier serves the request, the client is answered 400 with it, naming the
 * field and the target). A request that is not valid in its own format is answered 400
 * at once.
 *
 * Answers: a whole 2xx answer is translated back; an upstream error's message is
 * answered in the client's shape with the upstream's status; a stream goes through
 * rota_xl_stream (event by event, bounded), its usage read from the translation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch_int.h"
#include "rota_int.h"

#define ARENA_MAX   (256u << 20) /* what one request's translation may hold, at most ... */
#define ARENA_PER_BYTE 16        /* ... and per byte of its body (a parsed value's node is
                                    56 bytes: a body of tiny values grows about 13 times) */
#define BODY_MAX    (256u << 20)

struct xlstate {
    struct rota_arena a;
    struct rota_xl x;
    struct rota_xl_req req;
    int read_rc;        /* rota_xl_read's: 0, or why the request cannot be read */
    bool read;          /* tried */
    enum rota_xl_fmt to; /* the body below is for this format and model */
    char model[256];
    struct rota_jbuf body;
    bool have_body;
    struct rota_xl_stream *xs; /* a stream's, made when its first piece comes */
};

static const char *const fit_names[] = {"pass", "translate", "format", "tools",
                                        "images", "context", "translation"};

const char *rota_dispatch_fit_name(enum fit f)
{
    return (unsigned)f < sizeof(fit_names) / sizeof(fit_names[0]) ? fit_names[f] : "?";
}

static enum rota_xl_fmt xl_of(const char *format)
{
    static const char *const names[ROTA_XL_FORMATS] = {"openai", "responses", "anthropic",
                                                       "gemini", "code-assist"};
    for (int i = 0; i < ROTA_XL_FORMATS; i++)
        if (strcmp(format, names[i]) == 0)
            return (enum rota_xl_fmt)i;
    return ROTA_XL_FORMATS;
}

static struct xlstate *state(struct call *k)
{
    if (!k->xl) {
        k->xl = calloc(1, sizeof(*k->xl));
        if (!k->xl)
            return NULL;
        size_t cap = (size_t)1 << 20;
        cap += k->r->body_len < ARENA_MAX / ARENA_PER_BYTE ? k->r->body_len * ARENA_PER_BYTE
                                                           : ARENA_MAX;
        rota_arena_init(&k->xl->a, cap < ARENA_MAX ? cap : ARENA_MAX);
        rota_jbuf_init(&k->xl->body, BODY_MAX);
        k->xl->x.a = &k->xl->a;
        k->xl->x.from = k->ep->xl;
        k->xl->to = ROTA_XL_FORMATS;
    }
    return k->xl;
}

/* The request read into the representation (once). 0, or why not. */
static int read_request(struct call *k)
{
    struct xlstate *s = state(k);
    if (!s)
        return -ENOMEM;
    if (s->read)
        return s->read_rc;
    s->read = true;
    s->x.to = k->ep->xl;
    s->read_rc = rota_xl_read(&s->x, k->r->body, k->r->body_len, &s->req);
    if (!s->read_rc && k->ep->stream)
        s->req.stream = true; /* Gemini's :streamGenerateContent says it in the path */
    return s->read_rc;
}

void rota_dispatch_xl_free(struct call *k)
{
    struct xlstate *s = k->xl;
    if (!s)
        return;
    if (s->xs) {
        rota_xl_stream_free(s->xs);
        free(s->xs);
    }
    rota_jbuf_free(&s->body);
    rota_arena_free(&s->a);
    free(s);
    k->xl = NULL;
}

/* The body for target "to" with model "model" in s->body. 0, or x.err says why. */
static int write_body(struct call *k, enum rota_xl_fmt to)
{
    struct xlstate *s = k->xl;
    if (s->have_body && s->to == to && strcmp(s->model, k->t.model) == 0)
        return 0;
    s->have_body = false;
    rota_jbuf_reset(&s->body);
    s->x.to = to;
    s->x.model = k->t.model;
    s->x.status = 0;
    s->x.err[0] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->x.now_s = (uint64_t)ts.tv_sec;
    int rc = rota_xl_write(&s->x, &s->req, &s->body);
    if (rc)
        return rc;
    s->to = to;
    snprintf(s->model, sizeof(s->model), "%s", k->t.model);
    s->have_body = true;
    return 0;
}

enum fit rota_dispatch_fit(struct call *k)
{
    const rota_target *t = &k->t;
    bool same = rota_fmt_parse(t->format) == k->ep->fmt;
    enum rota_xl_fmt to = xl_of(t->format);
    if (k->ep->xl == ROTA_XL_RESPONSES && to == ROTA_XL_OPENAI)
        same = strcmp(t->kind, "openai") == 0; /* others serve chat completions only */
    if (!same && (k->ep->xl == ROTA_XL_FORMATS || to == ROTA_XL_FORMATS || !t->cross_format))
        return FIT_FORMAT;
    if (t->context && k->est > t->context)
        return FIT_CONTEXT;
    if ((!t->tools || !t->images) && k->ep->xl != ROTA_XL_FORMATS) {
        int rc = read_request(k);
        if (!t->tools && (rc || k->xl->req.ntool)) /* unread: it may hold them */
            return FIT_TOOLS;
        if (!t->images && (rc || k->xl->req.has_images))
            return FIT_IMAGES;
    }
    if (same)
        return FIT_PASS;
    if (k->ep->stream && !rota_dispatch_alt_sse(k->r->query)) {
        snprintf(k->refusal, sizeof(k->refusal),
                 ":streamGenerateContent without alt=sse (a JSON array) cannot be translated "
                 "for %s; ask with ?alt=sse",
                 t->format);
        return FIT_REFUSED;
    }
    int rc = read_request(k);
    if (rc == -ENOMEM || (!rc && (rc = write_body(k, to)) == -ENOMEM)) {
        snprintf(k->refusal, sizeof(k->refusal), "out of memory translating the request");
        return FIT_REFUSED;
    }
    if (rc) {
        snprintf(k->refusal, sizeof(k->refusal), "%s", k->xl->x.err);
        return FIT_REFUSED;
    }
    return FIT_XLATE;
}

bool rota_dispatch_xl_bad_request(const struct call *k)
{
    return k->xl && k->xl->read && k->xl->read_rc == -EINVAL;
}

/* ---- the call ---- */

bool rota_dispatch_alt_sse(const char *q)
{
    for (const char *p = q; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL)
        if (strncmp(p, "alt=sse", 7) == 0 && (p[7] == 0 || p[7] == '&'))
            return true;
    return false;
}

int rota_dispatch_xl_body(struct call *k)
{
    struct xlstate *s = k->xl;
    int rc = s ? write_body(k, xl_of(k->t.format)) : -EINVAL;
    if (rc)
        return rc;
    k->iov[0] = (struct iovec){s->body.p, s->body.len};
    k->body.npieces = 1;
    k->body.len = s->body.len;
    if (s->xs) { /* a new attempt: its stream starts afresh */
        rota_xl_stream_free(s->xs);
        free(s->xs);
        s->xs = NULL;
    }
    return 0;
}

/* The upstream URL: a translated call goes to the target format's endpoint (a stream
 * to Google's :streamGenerateContent with alt=sse); a passed-through one to the
 * provider's endpoint where the client asked for the format's main one, else beside
 * it, at the client's path. */
int rota_dispatch_url(struct call *k)
{
    const rota_target *t = &k->t;
    const char *path = t->path, *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    const char *qs = q ? q + 1 : "";
    char p[700], qbuf[600];
    const char *cp = k->r->path;
    if (k->xlating) {
        enum rota_xl_fmt to = xl_of(t->format);
        const char *colon = memchr(path, ':', plen);
        if ((to == ROTA_XL_GEMINI || to == ROTA_XL_CODE_ASSIST) && k->xl->req.stream && colon &&
            strncmp(colon, ":generateContent", plen - (size_t)(colon - path)) == 0) {
            snprintf(p, sizeof(p), "%.*s:streamGenerateContent", (int)(colon - path), path);
            snprintf(qbuf, sizeof(qbuf), "%s%salt=sse", qs, *qs ? "&" : "");
            qs = qbuf;
        } else {
            snprintf(p, sizeof(p), "%.*s", (int)plen, path);
        }
    } else if (k->ep->fmt == ROTA_FMT_GEMINI) {
        const char *colon = memchr(path, ':', plen);
        size_t stem = colon ? (size_t)(colon - path) : plen;
        snprintf(p, sizeof(p), "%.*s%s", (int)stem, path, k->ep->path);
        if (k->ep->stream && rota_dispatch_alt_sse(k->r->query))
            qs = *qs ? qs : "alt=sse"; /* the provider's own query, else SSE as asked */
    } else if (strcmp(cp, "/v1/chat/completions") == 0 || strcmp(cp, "/v1/messages") == 0) {
        snprintf(p, sizeof(p), "%.*s", (int)plen, path);
    } else if (k->ep->fmt == ROTA_FMT_OPENAI) {
        /* /v1/embeddings goes beside the provider's .../chat/completions */
        static const char chat[] = "/chat/completions";
        size_t tl = strlen(chat);
        if (plen < tl || strncmp(path + plen - tl, chat, tl) != 0)
            return -EINVAL;
        snprintf(p, sizeof(p), "%.*s%s", (int)(plen - tl), path, cp + strlen("/v1"));
    } else { /* /v1/messages/count_tokens: under the provider's .../messages */
        snprintf(p, sizeof(p), "%.*s%s", (int)plen, path, cp + strlen("/v1/messages"));
    }
    int n = snprintf(k->url, sizeof(k->url), "%s%s%s%s", t->base_url, p, *qs ? "?" : "", qs);
    return n > 0 && (size_t)n < sizeof(k->url) ? 0 : -ENAMETOOLONG;
}

/* The client's headers a translated call passes: none of the client's format's own
 * (its version, its betas), but what the target's format requires. */
size_t rota_dispatch_xl_headers(const struct call *k, struct rota_http_hdr *h, size_t max)
{
    size_t n = 0;
    if (xl_of(k->t.format) == ROTA_XL_ANTHROPIC && n < max)
        h[n++] = (struct rota_http_hdr){"anthropic-version", "2023-06-01"};
    return n;
}

const char *rota_dispatch_xl_dropped(const struct call *k)
{
    return k->xlating && k->xl && k->xl->x.dropped[0] ? k->xl->x.dropped : NULL;
}

/* ---- answers ---- */

bool rota_dispatch_xl_answer(struct call *k)
{
    struct xlstate *s = k->xl;
    struct rota_jbuf out;
    rota_jbuf_init(&out, k->d->o.max_answer);
    s->x.status = 0;
    int rc = rota_xl_answer(&s->x, k->answer.p ? k->answer.p : "", k->answer.len, &out);
    if (rc) {
        rota_jbuf_free(&out);
        return false;
    }
    free(k->answer.p);
    k->answer.p = rota_jbuf_take(&out, &k->answer.len);
    k->answer.cap = k->answer.len + 1;
    if (s->x.usage.in > k->usage.in) /* read in the provider's terms, not guessed */
        k->usage.in = s->x.usage.in;
    if (s->x.usage.out > k->usage.out)
        k->usage.out = s->x.usage.out;
    return true;
}

const char *rota_dispatch_xl_why(const struct call *k)
{
    return k->xl ? k->xl->x.err : "";
}

/* The message of an upstream error body, in any format: error.message, else message,
 * else the body's start. */
void rota_dispatch_xl_message(const struct call *k, char *out, size_t n)
{
    struct rota_arena a;
    rota_arena_init(&a, 1u << 20);
    const char *body = k->answer.p ? k->answer.p : "";
    struct rota_json *j = rota_json_parse(&a, body, k->answer.len, NULL);
    const struct rota_json *m = rota_json_path(j, "error.message");
    if (!m)
        m = rota_json_get(j, "message");
    if (j && j->type == ROTA_JSON_ARRAY && j->kid) /* Gemini's stream: [ {error} ] */
        m = rota_json_path(j->kid, "error.message");
    size_t len;
    const char *t = m ? rota_json_text(&a, m, &len) : NULL;
    if (t)
        snprintf(out, n, "%.*s", (int)len, t);
    else
        snprintf(out, n, "%.200s", body);
    rota_arena_free(&a);
}

/* ---- streams ---- */

static struct rota_xl_stream *stream_new(struct xlstate *s)
{
    struct rota_xl_stream *xs = malloc(sizeof(*xs));
    if (xs)
        rota_xl_stream_init(xs, &s->x);
    return xs;
}

int rota_dispatch_xl_stream(struct call *k, const char *p, size_t n, struct dbuf *out)
{
    struct xlstate *s = k->xl;
    if (!s->xs && !(s->xs = stream_new(s)))
        return -ENOMEM;
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    int rc = rota_xl_stream_data(s->xs, p, n, &b);
    if (b.len)
        rota_dispatch_put(out, b.p, b.len, SIZE_MAX);
    rota_jbuf_free(&b);
    const struct rota_xl_usage *u = &s->xs->out.usage;
    if (u->in > k->usage.in)
        k->usage.in = u->in;
    if (u->out > k->usage.out)
        k->usage.out = u->out;
    if (rota_xl_stream_ended(s->xs)) {
        k->usage.final = true;
        k->end_seen = true;
    }
    return rc;
}

bool rota_dispatch_xl_fail(struct call *k, const char *message, struct dbuf *out)
{
    struct xlstate *s = k->xl;
    if (!k->xlating || !s)
        return false;
    if (!s->xs && !(s->xs = stream_new(s)))
        return false;
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    rota_xl_stream_fail(s->xs, message, &b);
    if (b.len)
        rota_dispatch_put(out, b.p, b.len, SIZE_MAX);
    rota_jbuf_free(&b);
    return true;
}
