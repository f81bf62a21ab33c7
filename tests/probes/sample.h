/*
 * sample.h - load a recorded provider answer (tests/probes/<kind>/<name>.http) for the
 * parser tests.
 *
 * DESIGN
 * A sample is a raw HTTP response: a status line ("HTTP/1.1 429 Too Many Requests"),
 * header lines, a blank line, then the body, byte for byte. A file whose first line does
 * not start with "HTTP/" is an exec probe's output: status 0, no headers, all body.
 * Header lines keep their line ends; the body keeps every byte after the blank line
 * (a trailing newline included). Headers and body are copied into buffers of exactly
 * their size, with no NUL after them, so a parser reading one byte too far trips ASan.
 * Header-only, for test binaries compiled with ROTA_SAMPLES (tests/probes/).
 */
#ifndef ROTA_TESTS_SAMPLE_H
#define ROTA_TESTS_SAMPLE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
