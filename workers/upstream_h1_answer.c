/*
 * upstream_h1_answer.c - reading an HTTP/1.1 answer for rota's client (upstream_h1.c):
 * the head, then the body by its framing, fed in pieces as they arrive.
 *
 * DESIGN
 * The framing follows RFC 9112 section 6: no body for 1xx, 204 and 304; chunked when
 * Transfer-Encoding ends with chunked (the chunks undone, extensions and trailers
 * dropped); else by Content-Length (one value; two that differ are an error); else
 * until the connection closes. A 1xx head is skipped whole, a 101 is an error. "keep"
 * says whether the connection may carry another request after this answer: framed, and
 * no "Connection: close" (for HTTP/1.0, only with "keep-alive").
 *
 * The parser is a state machine over bytes that may arrive split anywhere: the head
 * is gathered into a buffer of the answer's (bounded by UP_HEAD_MAX), the body is
 * handed on where it lies, and a pause leaves the state as it was before the piece the
 * caller did not take. Everything it is fed is bounded: header bytes, chunk-size lines,
 * trailers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream_int.h"

#define LINE_CAP    4096       /* a chunk-size line longer than this is an error */
#define TRAILER_CAP (64 * 1024) /* trailer bytes past this are an error */

static bool token_in(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, tok, tl) == 0 && (i == 0 || memchr(" \t,", v[i - 1], 3)) &&
            (i + tl == n || memchr(" \t,", v[i + tl], 3)))
            return true;
    return false;
}

/* The head in a->head[0, len) (an empty line at its end): status, framing, keep. 0 or
 * an error message. */
static const char *parse_head(struct rota_h1_answer *a, size_t len, size_t *block)
{
    const char *h = a->head, *end = h + len;
    for (size_t i = 0; i < len; i++)
        if (h[i] == 0 || (h[i] == '\r' && (i + 1 == len || h[i + 1] != '\n')))
            return "NUL or bare CR in the head from upstream";
    if (len < 14 || memcmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') ||
        h[8] != ' ' || h[9] < '1' || h[9] > '5' || h[10] < '0' || h[10] > '9' ||
        h[11] < '0' || h[11] > '9' || (h[12] != ' ' && h[12] != '\r' && h[12] != '\n'))
        return "malformed status line from upstream";
    a->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    bool http10 = h[7] == '0', chunked = false, te = false, cl = false, close = http10;
    uint64_t length = 0;
    const char *p = memchr(h, '\n', len);
    *block = (size_t)(p + 1 - h);
    for (p++; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        if (*p == ' ' || *p == '\t')
            return "folded header line from upstream";
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p)
            return "malformed header line from upstream";
        size_t nl_ = (size_t)(colon - p);
        const char *v = colon + 1, *ve = p + n;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vn = (size_t)(ve - v);
        if (nl_ == 14 && strncasecmp(p, "content-length", 14) == 0) {
            uint64_t x = 0;
            if (vn == 0 || vn > 18)
                return "bad Content-Length from upstream";
            for (size_t i = 0; i < vn; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return "bad Content-Length from upstream";
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            if (cl && x != length)
                return "two Content-Lengths from upstream";
            cl = true;
            length = x;
        } else if (nl_ == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
            te = true;
            size_t t = vn;
            while (t && (v[t - 1] == ' ' || v[t - 1] == '\t' || v[t - 1] == ','))
                t--;
            chunked = t >= 7 && strncasecmp(v + t - 7, "chunked", 7) == 0 &&
                      (t == 7 || memchr(" \t,", v[t - 8], 3));
        } else if (nl_ == 10 && strncasecmp(p, "connection", 10) == 0) {
            if (token_in(v, vn, "close"))
                close = true;
            else if (http10 && token_in(v, vn, "keep-alive"))
                close = false;
        }
        p = nl + 1;
    }
    a->keep = !close;
    if (a->status < 200 || a->status == 204 || a->status == 304) {
        a->state = H1_DONE;
    } else if (te) { /* Transfer-Encoding wins over Content-Length (RFC 9112 6.3) */
        a->state = chunked ? H1_CHUNK_SIZE : H1_UNTIL_CLOSE;
        a->keep &= chunked && !cl && !http10; /* both, or on 1.0: not to be trusted after */
        a->line_len = 0;
        a->left = 0;
    } else if (cl) {
        a->state = length ? H1_LENGTH : H1_DONE;
        a->left = length;
    } else {
        a->state = H1_UNTIL_CLOSE;
        a->keep = false;
    }
    return NULL;
}

/* Take head bytes from "p"; *used says how many. H1_MORE until the head is whole. */
static int feed_head(struct rota_h1_answer *a, const char *p, size_t n, size_t *used,
                     const char **why, const struct rota_h1_answer_cbs *cb, void *arg)
{
    size_t old = a->head_len, take = n;
    if (old + take > UP_HEAD_MAX)
        take = UP_HEAD_MAX - old;
    if (old + take + 1 > a->head_cap) {
        size_t cap = a->head_cap ? a->head_cap : 1024;
        while (cap < old + take + 1)
            cap *= 2;
        char *h = realloc(a->head, cap);
        if (!h) {
            *why = "out of memory for the answer's head";
            return H1_ERR;
        }
        a->head = h;
        a->head_cap = cap;
    }
    memcpy(a->head + old, p, take);
    a->head_len = old + take;
    /* the end: the first empty line, CRLF or a bare LF (RFC 9112 2.2) */
    size_t from = old > 2 ? old - 2 : 0, end = 0, lines_end = 0;
    const char *h = a->head;
    for (size_t i = from; i + 1 < a->head_len; i++) {
        if (h[i] != '\n')
            continue;
        if (h[i + 1] == '\n')
            end = i + 2;
        else if (h[i + 1] == '\r' && i + 2 < a->head_len && h[i + 2] == '\n')
            end = i + 3;
        if (end) {
            lines_end = i + 1;
            break;
        }
    }
    if (!end) {
        *used = take;
        if (a->head_len >= UP_HEAD_MAX) {
            *why = "answer's head from upstream too large";
            return H1_ERR;
        }
        return H1_MORE;
    }
    *used = end - old;
    size_t block;
    if ((*why = parse_head(a, end, &block)))
        return H1_ERR;
    if (a->status < 200) { /* 1xx: dropped whole; 101 is not what was asked */
        a->head_len = 0;
        a->state = H1_HEAD;
        if (a->status == 101) {
            *why = "upstream switched protocols";
            return H1_ERR;
        }
        return H1_MORE;
    }
    size_t blen = lines_end - block; /* without the status line and the empty one */
    memmove(a->head, a->head + block, blen);
    a->head[blen] = 0;
    a->head_len = blen;
    a->headed = true;
    return cb->on_head(arg, a->status, a->head, blen) ? H1_MORE : H1_END;
}

/* Parse "n" answer bytes at "p": *used says how many were taken. */
int rota_h1_feed(struct rota_h1_answer *a, const char *p, size_t n, size_t *used,
                 const char **why, const struct rota_h1_answer_cbs *cb, void *arg)
{
    size_t i = 0;
    int h;
    while (i < n && a->state != H1_DONE) {
        size_t k = 0;
        switch (a->state) {
        case H1_HEAD:
            if ((h = feed_head(a, p + i, n - i, &k, why, cb, arg)) != H1_MORE) {
                *used = i + k;
                return h;
            }
            i += k;
            break;
        case H1_LENGTH:
        case H1_CHUNK_DATA:
        case H1_UNTIL_CLOSE:
            k = n - i;
            if (a->state != H1_UNTIL_CLOSE && k > a->left)
                k = (size_t)a->left;
            if ((h = cb->on_body(arg, p + i, k)) != 0) {
                *used = i;
                return h > 0 ? H1_PAUSE : H1_END;
            }
            i += k;
            if (a->state != H1_UNTIL_CLOSE && !(a->left -= k))
                a->state = a->state == H1_LENGTH ? H1_DONE : H1_CHUNK_CRLF;
            break;
        case H1_CHUNK_SIZE: {
            char ch = p[i++];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (++a->line_len > LINE_CAP) {
                *why = "chunk-size line from upstream too long";
                return H1_ERR;
            }
            if (ch == '\n') {
                if (a->ext == 0) {
                    *why = "malformed chunk size from upstream";
                    return H1_ERR;
                }
                a->state = a->left ? H1_CHUNK_DATA : H1_TRAILER;
                a->line_len = 0;
                a->ext = 0;
                a->cr = false;
                break;
            }
            if (a->cr) {
                *why = "bare CR in a chunk-size line from upstream";
                return H1_ERR;
            }
            if (ch == '\r' && a->ext) { /* the line's end, LF next */
                a->cr = true;
                break;
            }
            if (a->ext == 2 && ch) /* an extension, dropped */
                break;
            if (d >= 0 && a->ext <= 1) {
                if (a->left >> 59) {
                    *why = "chunk size from upstream too large";
                    return H1_ERR;
                }
                a->left = a->left * 16 + (uint64_t)d;
                a->ext = 1; /* a digit seen */
            } else if ((ch == ';' || ch == ' ' || ch == '\t') && a->ext == 1) {
                a->ext = 2;
            } else {
                *why = "malformed chunk size from upstream";
                return H1_ERR;
            }
            break;
        }
        case H1_CHUNK_CRLF: {
            char ch = p[i++];
            if (ch == '\n') {
                a->state = H1_CHUNK_SIZE;
                a->line_len = 0;
                a->cr = false;
            } else if (ch != '\r' || a->cr) {
                *why = "chunk not ended by CRLF from upstream";
                return H1_ERR;
            } else {
                a->cr = true;
            }
            break;
        }
        case H1_TRAILER: {
            char ch = p[i++];
            if (++a->left > TRAILER_CAP) {
                *why = "trailer from upstream too large";
                return H1_ERR;
            }
            if (ch == '\n') {
                if (a->line_len == 0)
                    a->state = H1_DONE;
                a->line_len = 0;
                a->cr = false;
            } else if (a->cr) {
                *why = "bare CR in a trailer from upstream";
                return H1_ERR;
            } else if (ch == '\r') {
                a->cr = true;
            } else {
                a->line_len++;
            }
            break;
        }
        case H1_DONE:
            break;
        }
    }
    *used = i;
    return a->state == H1_DONE ? H1_END : H1_MORE;
}

void rota_h1_answer_reset(struct rota_h1_answer *a)
{
    a->head_len = 0;
    a->status = 0;
    a->state = H1_HEAD;
    a->left = 0;
    a->line_len = 0;
    a->ext = 0;
    a->keep = a->headed = a->cr = false;
}
