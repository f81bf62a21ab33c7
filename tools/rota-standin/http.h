/*
 * http.h - rota-standin's HTTP/1.1 request parsing (private to rota-standin).
 *
 * Pure functions over a buffer: no I/O, no allocation, no state between calls, so a
 * request that arrives a byte at a time is simply parsed again when more has come.
 */
#ifndef ROTA_STANDIN_HTTP_H
#define ROTA_STANDIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HEAD_MAX    16384      /* request line and headers */
#define BODY_MAX    (1u << 20) /* a Content-Length body */
#define ACCOUNT_MAX 128        /* X-Rota-Account, with its NUL */

/* A parsed request head; pointers into the parsed buffer. */
struct request {
    const char *method, *path, *query;
    size_t method_len, path_len, query_len;
    bool keep_alive;
    bool expect_continue;
    bool has_length;
    size_t head_len, body_len;
    char account[ACCOUNT_MAX];
};

/* Parse the head at the start of "buf": its length, 0 while incomplete, or a negated
 * HTTP status (400 malformed or chunked, 413 body too large, 431 head too large). */
int http_parse_head(const char *buf, size_t len, struct request *r);

/* Percent-decode "n" bytes of "src" into "dst" (capacity "cap"); false if malformed. */
bool http_url_decode(const char *src, size_t n, char *dst, size_t cap);

/* A non-negative decimal of at most "max"; false if malformed. */
bool http_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
