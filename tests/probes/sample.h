/*
 * sample.h - load a recorded provider answer (tests/probes/<kind>/<name>.http), feed it
 * or an answer written inline to a parser, and check what came out, for the parser
 * tests.
 *
 * DESIGN
 * A sample is a raw HTTP response: a status line ("HTTP/1.1 429 Too Many Requests"),
 * header lines, a blank line, then the body, byte for byte. A file whose first line does
 * not start with "HTTP/" is an exec probe's output: status 0, no headers, all body.
 * Header lines keep their line ends; the body keeps every byte after the blank line
 * (a trailing newline included). Headers and body are copied into buffers of exactly
 * their size, with no NUL after them, so a parser reading one byte too far trips ASan;
 * answers written inline are copied the same way. The observation a parser fills is
 * first filled with garbage, so a field it forgets to set shows. The sample_expect_*
 * checks are cmocka assertions. Header-only, for test binaries compiled with
 * ROTA_SAMPLES (tests/probes/) and linked with the parsers.
 */
#ifndef ROTA_TESTS_SAMPLE_H
#define ROTA_TESTS_SAMPLE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"

#ifndef ROTA_SAMPLES
#error "ROTA_SAMPLES must name the tests/probes directory"
#endif

struct sample {
    int status;
    char *headers;
    size_t headers_len;
    char *body;
    size_t body_len;
};

/* A copy of "n" bytes at "p" in a buffer of exactly "n" bytes (1 when n is 0). */
static inline char *sample_dup(const char *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (c && n)
        memcpy(c, p, n);
    return c;
}

static inline void sample_free(struct sample *s)
{
    free(s->headers);
    free(s->body);
    memset(s, 0, sizeof(*s));
}

/* Read the whole file "path" into a new buffer; its size into *n. */
static inline char *sample_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf; len += got) {
        if (len == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        if ((got = fread(buf + len, 1, cap - len, f)) == 0)
            break;
    }
    fclose(f);
    *n = len;
    return buf;
}

/* Load sample "kind"/"name" into "s". 0, -ENOENT when the file is missing, -ENOMEM. */
static inline int sample_load(const char *kind, const char *name, struct sample *s)
{
    char path[1024];
    size_t n;
    memset(s, 0, sizeof(*s));
    snprintf(path, sizeof(path), "%s/%s/%s.http", ROTA_SAMPLES, kind, name);
    char *buf = sample_read(path, &n);
    if (!buf)
        return errno == ENOENT ? -ENOENT : -ENOMEM;
    const char *p = buf, *end = buf + n, *hdr = p, *body = end;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        s->status = sp ? atoi(sp + 1) : 0;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        hdr = nl ? nl + 1 : end;
        /* the headers end at the first empty line ("\n" or "\r\n"), or at the end */
        for (p = hdr; p < end;) {
            if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
                body = p + (*p == '\n' ? 1 : 2);
                break;
            }
            nl = memchr(p, '\n', (size_t)(end - p));
            p = nl ? nl + 1 : end;
        }
        s->headers_len = (size_t)((p < end ? p : end) - hdr);
    } else {
        body = buf;
    }
    s->headers = sample_dup(hdr, s->headers_len);
    s->body_len = (size_t)(end - body);
    s->body = sample_dup(body, s->body_len);
    free(buf);
    if (!s->headers || !s->body) {
        sample_free(s);
        return -ENOMEM;
    }
    return 0;
}

/* ---- parsing ---- */

/* A figure sample_expect_win must find not said. */
#define NO (-1)

/* Parse an answer of "status" whose headers are "headers" (NULL: none) and whose body is
 * the "len" bytes at "body", arrived at "now", with "fn" and options "opts" into "o".
 * Returns what "fn" returns. */
static inline int sample_parse_mem(rota_parse_fn fn, const struct rota_parse_opts *opts,
                                   int status, const char *headers, const char *body,
                                   size_t len, int64_t now, struct rota_obs *o)
{
    size_t hl = headers ? strlen(headers) : 0;
    char *h = headers ? sample_dup(headers, hl) : NULL, *b = sample_dup(body, len);
    struct rota_http_in in = {status, h, hl, b, len, now};
    memset(o, 0x5a, sizeof(*o)); /* the parser must initialise everything */
    int rc = fn(&in, opts, o);
    free(h);
    free(b);
    return rc;
}

/* Parse sample "kind"/"name", arrived at "now", with "fn" and options "opts" into "o";
 * a sample that cannot be loaded fails the test. Returns what "fn" returns. */
static inline int sample_parse(rota_parse_fn fn, const char *kind, const char *name,
                               const struct rota_parse_opts *opts, int64_t now,
                               struct rota_obs *o)
{
    struct sample s;
    int rc = sample_load(kind, name, &s);
    if (rc != 0)
        print_error("sample %s/%s: %s\n", kind, name, strerror(-rc));
    assert_int_equal(rc, 0);
    struct rota_http_in in = {s.status, s.headers, s.headers_len, s.body, s.body_len, now};
    memset(o, 0x5a, sizeof(*o));
    rc = fn(&in, opts, o);
    sample_free(&s);
    return rc;
}

/* ---- checks ---- */

/* Window "i" of "o" is "pool", "what", "metric" with exactly these figures: each NO
 * must not be said. */
static inline void sample_expect_win(const struct rota_obs *o, uint32_t i, const char *pool,
                                     const char *what, int metric, int64_t limit,
                                     int64_t remaining, int64_t used, int64_t reset_at)
{
    assert_true(i < o->nwin);
    const struct rota_obs_window *w = &o->win[i];
    assert_string_equal(w->pool, pool);
    assert_string_equal(w->what, what);
    assert_int_equal(w->metric, metric);
    assert_int_equal(w->has_limit, limit != NO);
    if (limit != NO)
        assert_int_equal(w->limit, (uint64_t)limit);
    assert_int_equal(w->has_remaining, remaining != NO);
    if (remaining != NO)
        assert_int_equal(w->remaining, (uint64_t)remaining);
    assert_int_equal(w->has_used, used != NO);
    if (used != NO)
        assert_int_equal(w->used, (uint64_t)used);
    assert_int_equal(w->reset_at, reset_at);
}

/* "o" counts "n" problems, the first of which starts with "first". */
static inline void sample_expect_problem(const struct rota_obs *o, uint32_t n,
                                         const char *first)
{
    assert_int_equal(o->problems, n);
    if (strncmp(o->problem, first, strlen(first)) != 0)
        fail_msg("problem \"%s\" does not start with \"%s\"", o->problem, first);
}

/* The detail of "o" holds "part". */
static inline void sample_expect_detail(const struct rota_obs *o, const char *part)
{
    if (!strstr(o->detail, part))
        fail_msg("detail \"%s\" lacks \"%s\"", o->detail, part);
}

/* "o" gives no cause, no retry instant and no disable. */
static inline void sample_expect_calm(const struct rota_obs *o)
{
    assert_int_equal(o->cause, ROTA_CAUSE_NONE);
    assert_int_equal(o->retry_at, 0);
    assert_false(o->disable);
    assert_int_equal(o->disable_until, 0);
}

#endif
