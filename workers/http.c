/*
 * http.c - one HTTP/1.1 request from bytes (http.h says what it promises).
 *
 * DESIGN
 * http-parser calls back with pieces of the URL, header names and values, in as many
 * calls as the bytes arrived in. Pieces are appended to the arena; a change of kind
 * (URL to name, name to value, value to name) ends the previous string with a NUL and,
 * for a name, opens a header entry. Entries sit at the arena's end as offsets while the
 * head arrives (the arena is the struct's own, but offsets keep the code honest should
 * it ever move) and become pointers when the head is complete. The parser is paused at
 * the end of the head and at the end of the message, so the owner can answer
 * "100 Continue" or take the request before anything further is read.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define SPARE 128 /* arena bytes beyond max_head: NULs, the owner's request id */

enum { L_NONE, L_URL, L_FIELD, L_VALUE };

struct ent {
    uint32_t name, value; /* arena offsets; value UINT32_MAX until one arrives */
    uint64_t unused;      /* the size of a struct rota_http_hdr, which replaces it */
};
_Static_assert(sizeof(struct ent) == sizeof(struct rota_http_hdr), "entries become headers");

static char empty[1];

static size_t strings_cap(const struct rota_http_limits *lim)
{
    return ((size_t)lim->max_head + SPARE + 15) & ~(size_t)15;
}

size_t rota_http_size(const struct rota_http_limits *lim)
{
    return sizeof(struct rota_http) + strings_cap(lim) +
           (size_t)lim->max_headers * sizeof(struct ent);
}

static struct ent *ents(struct rota_http *h)
{
    return (struct ent *)(void *)(h->arena + h->cap);
}

static int fail(struct rota_http *h, int status, const char *why)
{
    h->status = status;
    h->why = why;
    return -1;
}

/* Append "n" bytes to the arena, keeping SPARE bytes for NULs and the owner. */
static int put(struct rota_http *h, const char *at, size_t n)
{
    if (n > h->cap - SPARE - h->used)
        return h->last == L_URL ? fail(h, 414, "request target too long")
                                : fail(h, 431, "request headers too large");
    memcpy(h->arena + h->used, at, n);
    h->used += (uint32_t)n;
    return 0;
}

static void terminate(struct rota_http *h)
{
    h->arena[h->used++] = '\0'; /* room is kept by put() */
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct rota_http *h = p->data;
    h->last = L_URL;
    return put(h, at, n);
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct rota_http *h = p->data;
    if (h->headers)
        return 0; /* a chunked body's trailer: not kept */
    if (h->last != L_FIELD) {
        if (h->nheaders == h->lim->max_headers)
            return fail(h, 431, "too many request headers");
        terminate(h); /* the URL or the previous value */
        ents(h)[h->nheaders++] = (struct ent){.name = h->used, .value = UINT32_MAX};
        h->last = L_FIELD;
    }
    return put(h, at, n);
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct rota_http *h = p->data;
    if (h->headers)
        return 0;
    if (h->last != L_VALUE) {
        terminate(h); /* the name */
        ents(h)[h->nheaders - 1].value = h->used;
        h->last = L_VALUE;
    }
    return put(h, at, n);
}

/* The head is in: entries become headers, the URL becomes path and query. */
static void finish_head(struct rota_http *h)
{
    terminate(h);
    struct ent *e = ents(h);
    h->headers = (struct rota_http_hdr *)(void *)e;
    for (uint32_t i = 0; i < h->nheaders; i++) {
        struct ent x = e[i];
        h->headers[i] =
            (struct rota_http_hdr){.name = h->arena + x.name,
                                   .value = x.value == UINT32_MAX ? empty : h->arena + x.value};
    }
    char *url = h->arena; /* the URL is the arena's first string */
    if (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8)) {
        char *slash = strchr(strstr(url, "//") + 2, '/'); /* absolute-form */
        url = slash ? slash : empty;
    }
    char *q = strchr(url, '?');
    if (q)
        *q++ = '\0';
    char *frag = strchr(q ? q : url, '#');
    if (frag)
        *frag = '\0';
    h->path = *url ? url : "/";
    h->query = q ? q : empty;
}

static int check_expect(struct rota_http *h)
{
    const char *ex = rota_http_get(h->headers, h->nheaders, "expect");
    if (!ex)
        return 0;
    if (strcasecmp(ex, "100-continue") != 0)
        return fail(h, 417, "only \"Expect: 100-continue\" is supported");
    h->expect_continue = h->has_body && h->http_minor >= 1;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct rota_http *h = p->data;
    finish_head(h);
    h->http_minor = (uint8_t)p->http_minor;
    h->method = http_method_str((enum http_method)p->method);
    /* http-parser takes "Transfer-Encoding : chunked" as chunked; RFC 9112 (5.1) says a
     * server must refuse whitespace between a field name and its colon, or a proxy in
     * front of the pool and the pool could frame the message differently. */
    for (uint32_t i = 0; i < h->nheaders; i++)
        if (strpbrk(h->headers[i].name, " \t"))
            return fail(h, 400, "whitespace between a header's name and its colon");
    if (p->http_major != 1)
        return fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    if (p->method == HTTP_CONNECT)
        return fail(h, 405, "CONNECT is not supported");
    h->keep_alive = http_should_keep_alive(p);
    bool chunked = p->flags & F_CHUNKED;
    h->content_length = (p->flags & F_CONTENTLENGTH) ? p->content_length : UINT64_MAX;
    h->has_body = chunked || (h->content_length != UINT64_MAX && h->content_length > 0);
    if (h->content_length != UINT64_MAX && h->content_length > h->lim->max_body)
        return fail(h, 413, "request body too large");
    if (check_expect(h))
        return -1;
    /* the body's memory is taken when its first bytes come (grow_body), so a request
     * refused on its head (a missing client key) costs none */
    h->state = ROTA_HTTP_HEAD;
    http_parser_pause(p, 1);
    return 0;
}

static int grow_body(struct rota_http *h, uint64_t need)
{
    uint64_t cap = h->body_cap                       ? h->body_cap
                   : h->content_length != UINT64_MAX ? h->content_length + 1
                                                     : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > h->lim->max_body + 1)
        cap = h->lim->max_body + 1;
    char *b = realloc(h->body, cap);
    if (!b)
        return fail(h, 503, "out of memory");
    h->body = b;
    h->body_cap = cap;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct rota_http *h = p->data;
    if (h->body_len + n > h->lim->max_body)
        return fail(h, 413, "request body too large");
    if (h->body_len + n + 1 > h->body_cap && grow_body(h, h->body_len + n + 1))
        return -1;
    memcpy(h->body + h->body_len, at, n);
    h->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct rota_http *h = p->data;
    if (h->body)
        h->body[h->body_len] = '\0';
    else
        h->body = empty;
    h->state = ROTA_HTTP_DONE;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void rota_http_end(struct rota_http *h)
{
    if (h->body != empty)
        free(h->body);
    h->body = NULL;
}

void rota_http_begin(struct rota_http *h, const struct rota_http_limits *lim)
{
    if (h->lim)
        rota_http_end(h);
    memset(h, 0, sizeof(*h));
    h->lim = lim;
    h->cap = (uint32_t)strings_cap(lim);
    h->content_length = UINT64_MAX;
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
}

/* What a parser error means to the client. */
static void parse_error(struct rota_http *h)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
    h->status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    h->why = e == HPE_HEADER_OVERFLOW          ? "request headers too large"
             : e == HPE_INVALID_CONTENT_LENGTH ? "invalid Content-Length"
             : e == HPE_UNEXPECTED_CONTENT_LENGTH
                 ? "Content-Length given twice, or with Transfer-Encoding"
             : e == HPE_INVALID_CHUNK_SIZE ? "invalid chunk size"
             : e == HPE_INVALID_METHOD     ? "invalid method"
             : e == HPE_INVALID_URL        ? "invalid request target"
             : e == HPE_INVALID_VERSION    ? "invalid HTTP version"
                                           : "malformed request";
}

size_t rota_http_feed(struct rota_http *h, const char *data, size_t len)
{
    if (h->state == ROTA_HTTP_DONE || h->state == ROTA_HTTP_ERROR || len == 0)
        return 0;
    bool in_head = h->state == ROTA_HTTP_MORE && !h->headers;
    if (h->state == ROTA_HTTP_HEAD) {
        http_parser_pause(&h->p, 0);
        h->state = ROTA_HTTP_MORE;
    }
    size_t n = http_parser_execute(&h->p, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
    if (h->status) {
        h->state = ROTA_HTTP_ERROR;
    } else if (e != HPE_OK && e != HPE_PAUSED) {
        parse_error(h);
        h->state = ROTA_HTTP_ERROR;
    } else if (in_head && h->head_bytes + n > h->lim->max_head) {
        if (h->last == L_URL)
            fail(h, 414, "request target too long");
        else
            fail(h, 431, "request headers too large");
        h->state = ROTA_HTTP_ERROR;
    }
    if (in_head)
        h->head_bytes += (uint32_t)(n < len ? n : len);
    return n;
}

/* The parser counts a Content-Length body down in p.content_length once it is in the
 * body (after its first byte): bytes received past it are taken off that count, and
 * the last byte is always left to the parser, which then ends the request itself. */
char *rota_http_body_room(struct rota_http *h, size_t min, size_t *len)
{
    if (h->state != ROTA_HTTP_MORE || !h->headers || h->content_length == UINT64_MAX ||
        !h->body_len || h->p.content_length == ULLONG_MAX || h->p.content_length <= min ||
        h->body_len + h->p.content_length + 1 > h->body_cap)
        return NULL;
    *len = (size_t)h->p.content_length - 1;
    if (*len > (1u << 30)) /* a receive's length is 32 bits */
        *len = 1u << 30;
    return h->body + h->body_len;
}

void rota_http_body_took(struct rota_http *h, size_t n)
{
    h->body_len += n;
    h->p.content_length -= n;
}

char *rota_http_spare(struct rota_http *h, size_t n)
{
    if (n > h->cap - h->used)
        return NULL;
    char *p = h->arena + h->used;
    h->used += (uint32_t)n;
    return p;
}

const char *rota_http_get(const struct rota_http_hdr *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(h[i].name, name))
            return h[i].value;
    return NULL;
}
