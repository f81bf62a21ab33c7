/*
 * upstream_headers.c - the request's header lines for either engine (upstream_int.h):
 * which of the client's headers pass (upstream.h says which do not), the provider's
 * extra headers, the key.
 *
 * The lines are written into one buffer of the call's: for libcurl each ends with a
 * NUL and is chained by an array of curl_slist nodes pointing into the buffer; for
 * rota's client each ends with CRLF after the request line and Host, so the buffer is
 * the head as sent. The credential is in one line of it; the buffer is wiped when the
 * call ends and whenever it moves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream_int.h"

static bool listed(const char *name, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(name, *names) == 0)
            return true;
    return false;
}

/* Does the "Name: value\r\n" list "list" (or a comma-separated token list, with
 * "comma") hold "name"? */
static bool in_list(const char *list, const char *name, bool comma)
{
    size_t nl = strlen(name);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t k = comma ? strcspn(p, ", \t") : strcspn(p, ":\r\n");
        if (k == nl && strncasecmp(p, name, nl) == 0)
            return true;
        p += k;
        if (!comma) {
            p = strchr(p, '\n');
            p = p ? p + 1 : NULL;
        }
    }
    return false;
}

bool rota_upstream_passes(const char *name, const char *extra, const char *connection)
{
    static const char *const never[] = {
        /* the client's credentials */
        "authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization",
        "openai-organization", "openai-project", "x-goog-user-project", /* who pays */
        /* hop-by-hop (RFC 9110 7.6.1) */
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "proxy-authenticate",
        /* framing and encoding libcurl and the pool own */
        "host", "content-length", "expect", "accept-encoding", "x-request-id", NULL};
    if (listed(name, never) || strncasecmp(name, "x-rota-", 7) == 0)
        return false;
    if (connection && in_list(connection, name, true))
        return false;
    return !in_list(extra, name, false);
}

static bool sane(const char *s)
{
    return !strpbrk(s, "\r\n");
}

#define LINE_MAX_ 1024 /* a header line this long or longer is not sent (the key's: 4096) */

/* Room for "more" bytes in the call's lines. A move wipes the old place: the key may
 * be in it. */
static int lines_room(struct rota_upstream_call *c, size_t more)
{
    if (c->lines_len + more <= c->lines_cap)
        return 0;
    size_t cap = c->lines_cap ? c->lines_cap : 2048;
    while (cap < c->lines_len + more)
        cap *= 2;
    char *p = malloc(cap);
    if (!p)
        return -ENOMEM;
    if (c->lines_len) {
        memcpy(p, c->lines, c->lines_len);
        explicit_bzero(c->lines, c->lines_len);
    }
    free(c->lines);
    c->lines = p;
    c->lines_cap = cap;
    return 0;
}

/* Append the line made of "n" parts: 0 or -ENOMEM. */
static int line(struct rota_upstream_call *c, size_t n, const char *const *part,
                const size_t *len)
{
    size_t total = c->h1 ? 2 : 1; /* CRLF, or NUL */
    for (size_t i = 0; i < n; i++)
        total += len[i];
    if (lines_room(c, total))
        return -ENOMEM;
    char *p = c->lines + c->lines_len;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, part[i], len[i]);
        p += len[i];
    }
    if (c->h1)
        memcpy(p, "\r\n", 2);
    else
        *p = 0;
    c->lines_len += total;
    c->nnodes++;
    return 0;
}

/* "Name: value" if it is shorter than LINE_MAX_ (else nothing, as a line too long). */
static int header(struct rota_upstream_call *c, const char *name, const char *value)
{
    const char *part[] = {name, ": ", value};
    size_t len[] = {strlen(name), 2, strlen(value)};
    return len[0] + 2 + len[2] < LINE_MAX_ ? line(c, 3, part, len) : 0;
}

/* Chain the lines into the call's curl_slist nodes. */
static int link_lines(struct rota_upstream_call *c)
{
    if (c->nnodes > c->nodes_cap) {
        size_t cap = c->nodes_cap ? c->nodes_cap : 16;
        while (cap < c->nnodes)
            cap *= 2;
        struct curl_slist *n = realloc(c->nodes, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        c->nodes = n;
        c->nodes_cap = cap;
    }
    char *p = c->lines;
    for (size_t i = 0; i < c->nnodes; i++) {
        c->nodes[i] = (struct curl_slist){p, i + 1 < c->nnodes ? &c->nodes[i + 1] : NULL};
        p += strlen(p) + 1;
    }
    return 0;
}

/* The first lines: rota's client's request line and Host; libcurl's empty Expect (no
 * 100-continue round trip). */
static int first_lines(struct rota_upstream_call *c, const char *extra)
{
    if (!c->h1) {
        const char *expect = "Expect:";
        size_t elen = 7;
        return line(c, 1, &expect, &elen);
    }
    const char *part[] = {"POST ", c->path, " HTTP/1.1"};
    size_t len[] = {5, strlen(c->path), 9};
    if (!sane(c->path) || strchr(c->path, ' '))
        return -EINVAL;
    int rc = line(c, 3, part, len);
    if (rc || in_list(extra, "host", false))
        return rc; /* the provider's Host, with its other headers */
    return header(c, "Host", c->hostport);
}

int rota_upstream_build_headers(struct rota_upstream_call *c,
                                const struct rota_upstream_req *q, const char *ua)
{
    const rota_target *t = q->target;
    const char *conn = rota_http_get(q->client_headers, q->nclient_headers, "connection");
    /* a default goes only where neither the client nor the provider gave the header */
    bool typed = in_list(t->headers, "content-type", false),
         agent = in_list(t->headers, "user-agent", false),
         accept = in_list(t->headers, "accept", false);
    int rc = first_lines(c, t->headers);
    for (size_t i = 0; !rc && i < q->nclient_headers; i++) {
        const struct rota_http_hdr *h = &q->client_headers[i];
        if (!rota_upstream_passes(h->name, t->headers, conn) || !sane(h->value))
            continue;
        typed |= strcasecmp(h->name, "content-type") == 0;
        agent |= strcasecmp(h->name, "user-agent") == 0;
        accept |= strcasecmp(h->name, "accept") == 0;
        rc = header(c, h->name, h->value);
    }
    if (!rc && !typed)
        rc = header(c, "Content-Type", "application/json");
    if (!rc && !agent)
        rc = header(c, "User-Agent", ua);
    if (!rc && !accept && c->h1) /* libcurl's own default */
        rc = header(c, "Accept", "*/*");
    if (!rc && q->request_id && sane(q->request_id))
        rc = header(c, "X-Request-Id", q->request_id);
    for (const char *p = t->headers; !rc && *p;) { /* "Name: value\r\n" each */
        size_t k = strcspn(p, "\r\n");
        if (k && k < LINE_MAX_)
            rc = line(c, 1, &p, &k);
        p += k;
        p += strspn(p, "\r\n");
    }
    if (!rc && t->auth_header[0] && q->key && q->key[0]) {
        const char *part[] = {t->auth_header, ": ", t->auth_scheme, q->key};
        size_t len[] = {strlen(t->auth_header), 2, strlen(t->auth_scheme), strlen(q->key)};
        if (!sane(q->key) || len[0] + 2 + len[2] + len[3] >= 4096)
            rc = -EINVAL;
        else
            rc = line(c, 4, part, len);
    }
    return rc || c->h1 ? rc : link_lines(c);
}

void rota_upstream_wipe_lines(struct rota_upstream_call *c)
{
    if (c->lines_len)
        explicit_bzero(c->lines, c->lines_len);
    c->lines_len = 0;
    c->nnodes = 0;
    c->iov = NULL;
    c->niov = 0;
}
