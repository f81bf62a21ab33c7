/*
 * http.h - one HTTP/1.1 request, parsed from bytes with http-parser: request line,
 * headers, body (chunked decoded), and the limits a client may not pass.
 *
 * Private to the dispatch pool: the front (front.c) feeds it what a connection
 * receives; fuzz_http feeds it raw bytes. It knows nothing of sockets.
 *
 * DESIGN
 * A struct rota_http holds one request at a time. Its strings (the URL, header names
 * and values, each NUL-terminated) live in an arena at the end of the struct, of a
 * fixed size that rota_http_size computes from the limits: the header limit bounds it,
 * so a request never makes the arena grow and the owner can keep these structs in a
 * pool. The body is the one allocation per request (malloc'd at its declared length, or
 * grown while chunks arrive, never past the body limit).
 *
 * Feeding stops at two points so the owner can act in between:
 *   ROTA_HTTP_HEAD  the head is complete and acceptable: the request line, the headers,
 *                   keep_alive and expect_continue are set; answer "100 Continue" now if
 *                   asked, then feed the rest;
 *   ROTA_HTTP_DONE  the request is complete (body included); bytes after it belong to
 *                   the next request, which the owner feeds only after rota_http_begin.
 * ROTA_HTTP_ERROR says "status" to answer (400, 405, 413, 414, 417, 431, 505) and
 * "why"; the connection is then not reusable, as the rest of the stream cannot be
 * framed.
 *
 * Limits: max_head bounds the request line and headers as sent (431; a URL alone past
 * it is 414), max_headers the header lines (431), max_body the body after chunked
 * decoding (413, at once when a Content-Length declares more). Content-Length must be
 * one non-negative decimal (http-parser refuses a second one, and one next to
 * Transfer-Encoding). Expect other than 100-continue is 417. HTTP versions other than
 * 1.x are 505; CONNECT is 405.
 *
 * Not thread-safe; a struct belongs to whoever feeds it.
 */
#ifndef ROTA_HTTP_H
#define ROTA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

struct rota_http_hdr {
    const char *name, *value;
};

struct rota_http_limits {
    uint32_t max_head;    /* bytes of request line and headers */
    uint32_t max_headers; /* header lines */
    uint64_t max_body;    /* body bytes */
};

enum rota_http_state { ROTA_HTTP_MORE, ROTA_HTTP_HEAD, ROTA_HTTP_DONE, ROTA_HTTP_ERROR };

struct rota_http {
    enum rota_http_state state;
    int status;      /* ROTA_HTTP_ERROR: the status to answer */
    const char *why; /* ROTA_HTTP_ERROR: a reason for the client, static */
    /* The request: the head from ROTA_HTTP_HEAD on, the body from ROTA_HTTP_DONE on,
     * until rota_http_begin or rota_http_end. */
    const char *method;            /* "POST" */
    const char *path;              /* "/v1/chat/completions", decoded no further */
    const char *query;             /* after '?', "" if none */
    struct rota_http_hdr *headers; /* in the order sent */
    uint32_t nheaders;
    uint8_t http_minor;      /* HTTP/1.0 or 1.1 */
    bool keep_alive;         /* the connection may carry another request after */
    bool expect_continue;    /* "Expect: 100-continue" on a request with a body */
    bool has_body;           /* a Content-Length above 0, or chunked */
    uint64_t content_length; /* as declared, UINT64_MAX if none (chunked or absent) */
    char *body;              /* NUL-terminated; "" when none */
    uint64_t body_len;
    /* private */
    http_parser p;
    const struct rota_http_limits *lim;
    uint64_t body_cap;
    uint32_t used, cap, head_bytes;
    uint8_t last;             /* which kind of string the parser delivered last */
    _Alignas(8) char arena[]; /* header entries at its end hold pointers */
};

/* Bytes a struct rota_http needs (arena included) for limits "lim". */
size_t rota_http_size(const struct rota_http_limits *lim);
/* Start a request on "h" (rota_http_size(lim) bytes, zeroed before its first use),
 * ending any previous one. */
void rota_http_begin(struct rota_http *h, const struct rota_http_limits *lim);
/* Free what the request holds (its body); "h" may then be freed or begun again. */
void rota_http_end(struct rota_http *h);
/* Parse up to "len" bytes at "data"; returns how many were taken, and h->state says
 * what to do next (top of this file). */
size_t rota_http_feed(struct rota_http *h, const char *data, size_t len);
/* Where the rest of a Content-Length body may be received straight into the body,
 * past the parser ("*len" bytes: all but the last, which the parser must see), once
 * the parser is in the body and more than "min" bytes are due; else NULL. */
char *rota_http_body_room(struct rota_http *h, size_t min, size_t *len);
/* "n" bytes were received at rota_http_body_room's place. */
void rota_http_body_took(struct rota_http *h, size_t n);
/* "n" bytes of the arena's spare room (at least 64 are always left), or NULL. */
char *rota_http_spare(struct rota_http *h, size_t n);

/* The value of header "name" (ASCII case-insensitive) among "n" at "h": the first one
 * sent, or NULL. */
const char *rota_http_get(const struct rota_http_hdr *h, size_t n, const char *name);

#endif
