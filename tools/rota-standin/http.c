/*
 * http.c - see http.h.
 *
 * DESIGN
 * A head is parsed only once its blank line is in the buffer (searched within HEAD_MAX
 * bytes). Request line: a token method, an origin-form target of visible ASCII, HTTP/1.0
 * or HTTP/1.1. Header names are tokens, values have no control characters; folded lines
 * are refused. Of the headers only Content-Length (digits, repeated only with the same
 * value), Transfer-Encoding (refused: no chunked bodies), Connection, Expect and
 * X-Rota-Account matter; the rest are checked for shape and skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static bool token_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Characters an account name may have; anything else is counted as "(invalid)". */
static bool account_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("._-/:@+", ch));
}

static bool name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* Whether a comma-separated header value holds "tok" (case-insensitive). */
static bool value_has(const char *v, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++)
        if (strncasecmp(v + i, tok, t) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + t == n || v[i + t] == ',' || v[i + t] == ' '))
            return true;
    return false;
}

/* "METHOD SP /target SP HTTP/1.x": 0, or a negated status. */
static int parse_request_line(const char *p, const char *end, struct request *r)
{
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || sp - p > 16)
        return -400;
    for (const char *q = p; q < sp; q++)
        if (!token_char(*q))
            return -400;
    r->method = p;
    r->method_len = (size_t)(sp - p);
    const char *t = sp + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || *t != '/')
        return -400;
    for (const char *q = t; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            return -400;
    const char *qm = memchr(t, '?', (size_t)(sp2 - t));
    r->path = t;
    r->path_len = (size_t)((qm ? qm : sp2) - t);
    r->query = qm ? qm + 1 : sp2;
    r->query_len = qm ? (size_t)(sp2 - qm - 1) : 0;
    const char *v = sp2 + 1;
    if (end - v != 8 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1'))
        return -400;
    r->keep_alive = v[7] == '1';
    return 0;
}

/* One "Name: value" line; 0, or a negated status. */
static int parse_header(const char *p, const char *end, struct request *r)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (!colon || colon == p)
        return -400;
    for (const char *q = p; q < colon; q++)
        if (!token_char(*q))
            return -400;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    const char *ve = end;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    for (const char *q = v; q < ve; q++)
        if ((unsigned char)*q < 0x20 && *q != '\t')
            return -400;
    size_t vlen = (size_t)(ve - v);
    if (name_is(p, nlen, "content-length")) {
        if (vlen == 0 || vlen > 10)
            return vlen > 10 ? -413 : -400;
        size_t n = 0;
        for (const char *q = v; q < ve; q++) {
            if (*q < '0' || *q > '9')
                return -400;
            n = n * 10 + (size_t)(*q - '0');
        }
        if (r->has_length && n != r->body_len)
            return -400;
        if (n > BODY_MAX)
            return -413;
        r->has_length = true;
        r->body_len = n;
    } else if (name_is(p, nlen, "transfer-encoding")) {
        return -400; /* chunked bodies are not supported */
    } else if (name_is(p, nlen, "connection")) {
        if (value_has(v, vlen, "close"))
            r->keep_alive = false;
        else if (value_has(v, vlen, "keep-alive"))
            r->keep_alive = true;
    } else if (name_is(p, nlen, "expect")) {
        if (!value_has(v, vlen, "100-continue"))
            return -400;
        r->expect_continue = true;
    } else if (name_is(p, nlen, "x-rota-account")) {
        bool ok = vlen > 0 && vlen < ACCOUNT_MAX;
        for (const char *q = v; ok && q < ve; q++)
            ok = account_char(*q);
        snprintf(r->account, sizeof(r->account), "%.*s", ok ? (int)vlen : 9,
                 ok ? v : "(invalid)");
    }
    return 0;
}

int http_parse_head(const char *buf, size_t len, struct request *r)
{
    size_t scan = len < HEAD_MAX ? len : HEAD_MAX;
    const char *end = NULL;
    for (size_t i = 0; i + 4 <= scan; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i;
            break;
        }
    if (!end)
        return len >= HEAD_MAX ? -431 : 0;
    if (memchr(buf, '\0', (size_t)(end - buf)))
        return -400;
    memset(r, 0, sizeof(*r));
    strcpy(r->account, "-");
    const char *line = buf;
    const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
    int rc = parse_request_line(line, eol, r);
    while (rc == 0 && eol < end) {
        line = eol + 2;
        eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (*line == ' ' || *line == '\t')
            return -400; /* folded header lines are obsolete */
        rc = parse_header(line, eol, r);
    }
    if (rc)
        return rc;
    r->head_len = (size_t)(end - buf) + 4;
    return (int)r->head_len;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "%00" is refused: a value is a C string. */
bool http_url_decode(const char *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hex_value(src[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(src[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return false;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return false;
        dst[o++] = ch;
    }
    dst[o] = '\0';
    return true;
}

bool http_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *e;
    errno = 0;
    unsigned long v = strtoul(s, &e, 10);
    if (*e || errno || v > max)
        return false;
    *out = v;
    return true;
}
