/*
 * json.c - the arena, the value tree's parser and readers, and the writer (json.h says
 * what and why).
 *
 * DESIGN
 * The parser is recursive descent over one cursor, one node per value allocated from
 * the arena; a container's members are linked as they come (a tail pointer, no
 * second pass). Strings are stepped over with rota_fmt_plain_run (formats_scan.c), many
 * bytes a step, and their escapes only checked. Numbers are checked against the RFC's
 * grammar. Depth is bounded by ROTA_JSON_DEPTH, so the stack is too.
 *
 * The writer keeps one bit per open container for "nothing in it yet", so commas are
 * its business, not the caller's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "json.h"

/* ---- arena ---- */

struct rota_arena_chunk {
    struct rota_arena_chunk *next;
    size_t size;
    max_align_t data[];
};

#define CHUNK_MIN (16 * 1024)

void rota_arena_init(struct rota_arena *a, size_t limit)
{
    *a = (struct rota_arena){.limit = limit};
}

void *rota_arena_alloc(struct rota_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    if ((size_t)(a->end - a->p) < n || !a->p) {
        if (a->limit && a->used + n > a->limit)
            return NULL;
        size_t size = n > CHUNK_MIN / 2 ? n : CHUNK_MIN;
        if (a->chunk && a->chunk->size * 2 <= 1024 * 1024 && size < a->chunk->size * 2)
            size = a->chunk->size * 2;
        struct rota_arena_chunk *c = malloc(sizeof(*c) + size);
        if (!c)
            return NULL;
        c->next = a->chunk;
        c->size = size;
        a->chunk = c;
        a->p = (char *)c->data;
        a->end = a->p + size;
    }
    if (a->limit && a->used + n > a->limit)
        return NULL;
    void *r = a->p;
    a->p += n;
    a->used += n;
    return r;
}

char *rota_arena_dup(struct rota_arena *a, const char *p, size_t n)
{
    char *s = rota_arena_alloc(a, n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

void rota_arena_reset(struct rota_arena *a)
{
    struct rota_arena_chunk *c = a->chunk;
    if (!c)
        return;
    /* keep the newest (largest) chunk */
    struct rota_arena_chunk *rest = c->next;
    while (rest) {
        struct rota_arena_chunk *n = rest->next;
        free(rest);
        rest = n;
    }
    c->next = NULL;
    a->p = (char *)c->data;
    a->end = a->p + c->size;
    a->used = 0;
}

void rota_arena_free(struct rota_arena *a)
{
    for (struct rota_arena_chunk *c = a->chunk, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    rota_arena_init(a, a->limit);
}

/* ---- parser ---- */

struct cur {
    const char *start, *p, *end;
    struct rota_arena *a;
    struct rota_json_err *e;
};

static bool fail(struct cur *c, const char *what)
{
    c->e->at = (size_t)(c->p - c->start);
    snprintf(c->e->what, sizeof(c->e->what), "%s", what);
    return false;
}

static void ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static bool ishex(char h)
{
    return (h >= '0' && h <= '9') || ((h | 32) >= 'a' && (h | 32) <= 'f');
}

/* Step over the string at c->p (its opening quote); "*esc" says whether it held an
 * escape. */
static bool string(struct cur *c, bool *esc)
{
    *esc = false;
    c->p++;
    for (;;) {
        c->p += rota_fmt_plain_run(c->p, c->end);
        if (c->p >= c->end)
            return fail(c, "a string is not closed");
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch < 0x20)
            return fail(c, "a control character inside a string");
        c->p++;
        if (ch != '\\')
            continue;
        *esc = true;
        if (c->p >= c->end)
            return fail(c, "a string is not closed");
        switch (*c->p) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            c->p++;
            break;
        case 'u':
            if (c->end - c->p < 5 || !ishex(c->p[1]) || !ishex(c->p[2]) || !ishex(c->p[3]) ||
                !ishex(c->p[4]))
                return fail(c, "a \\u escape needs four hex digits");
            c->p += 5;
            break;
        default:
            return fail(c, "an unknown escape in a string");
        }
    }
}

static bool digits(struct cur *c)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s;
}

static bool number(struct cur *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!digits(c))
        return fail(c, "a number is malformed");
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return fail(c, "a number's fraction has no digit");
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return fail(c, "a number's exponent has no digit");
    }
    return true;
}

static bool word(struct cur *c, const char *w, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return fail(c, "an unexpected character");
    c->p += n;
    return true;
}

static struct rota_json *value(struct cur *c, int depth);

static struct rota_json *container(struct cur *c, struct rota_json *v, int depth)
{
    bool obj = *c->p == '{';
    char close = obj ? '}' : ']';
    if (depth >= ROTA_JSON_DEPTH)
        return fail(c, "nested too deep"), NULL;
    c->p++;
    ws(c);
    struct rota_json **tail = &v->kid;
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        uint32_t klen = 0;
        bool kesc = false;
        if (obj) {
            if (c->p >= c->end || *c->p != '"')
                return fail(c, "expected a key in quotes"), NULL;
            key = c->p;
            if (!string(c, &kesc))
                return NULL;
            if ((size_t)(c->p - key) > UINT32_MAX)
                return fail(c, "a key is too long"), NULL;
            klen = (uint32_t)(c->p - key);
            ws(c);
            if (c->p >= c->end || *c->p != ':')
                return fail(c, "expected ':' after a key"), NULL;
            c->p++;
        }
        struct rota_json *m = value(c, depth + 1);
        if (!m)
            return NULL;
        if (obj) {
            m->key = key;
            m->klen = klen;
            m->kescaped = kesc;
        }
        *tail = m;
        tail = &m->next;
        if (v->n == UINT32_MAX)
            return fail(c, "too many members"), NULL;
        v->n++;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            ws(c);
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return v;
        }
        return fail(c, obj ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array"),
               NULL;
    }
}

static struct rota_json *value(struct cur *c, int depth)
{
    ws(c);
    if (c->p >= c->end)
        return fail(c, "the text ends where a value is expected"), NULL;
    struct rota_json *v = rota_arena_alloc(c->a, sizeof(*v));
    if (!v)
        return fail(c, "out of memory"), NULL;
    memset(v, 0, sizeof(*v));
    v->p = c->p;
    bool ok;
    switch (*c->p) {
    case '{':
    case '[':
        v->type = *c->p == '{' ? ROTA_JSON_OBJECT : ROTA_JSON_ARRAY;
        ok = container(c, v, depth) != NULL;
        break;
    case '"':
        v->type = ROTA_JSON_STRING;
        ok = string(c, &v->escaped);
        break;
    case 't':
        v->type = ROTA_JSON_TRUE;
        ok = word(c, "true", 4);
        break;
    case 'f':
        v->type = ROTA_JSON_FALSE;
        ok = word(c, "false", 5);
        break;
    case 'n':
        v->type = ROTA_JSON_NULL;
        ok = word(c, "null", 4);
        break;
    default:
        v->type = ROTA_JSON_NUMBER;
        ok = (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) ? number(c)
                                                              : fail(c, "an unexpected character");
    }
    if (!ok)
        return NULL;
    v->len = (size_t)(c->p - v->p);
    return v;
}

struct rota_json *rota_json_parse(struct rota_arena *a, const char *buf, size_t len,
                                  struct rota_json_err *e)
{
    struct rota_json_err scratch;
    struct cur c = {buf, buf, buf + len, a, e ? e : &scratch};
    struct rota_json *v = value(&c, 0);
    if (!v)
        return NULL;
    ws(&c);
    if (c.p != c.end)
        return fail(&c, "more after the value"), NULL;
    return v;
}

/* ---- readers ---- */

static int hexval(char h)
{
    return h <= '9' ? h - '0' : (h | 32) - 'a' + 10;
}

static unsigned hex4(const char *p)
{
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

/* Decode the (well-formed) string token "s" of "n" bytes into "out" (room for n bytes:
 * decoding never grows it). Returns the decoded length. */
static size_t decode(const char *s, size_t n, char *out)
{
    const char *p = s + 1, *e = s + n - 1;
    size_t k = 0;
    while (p < e) {
        if (*p != '\\') {
            out[k++] = *p++;
            continue;
        }
        p++;
        char ch = *p++;
        switch (ch) {
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'u': {
            unsigned u = hex4(p);
            p += 4;
            if (u >= 0xd800 && u < 0xdc00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = hex4(p + 2);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (u >= 0xd800 && u < 0xe000)
                u = 0xfffd; /* a lone surrogate */
            if (u < 0x80) {
                out[k++] = (char)u;
            } else if (u < 0x800) {
                out[k++] = (char)(0xc0 | u >> 6);
                out[k++] = (char)(0x80 | (u & 0x3f));
            } else if (u < 0x10000) {
                out[k++] = (char)(0xe0 | u >> 12);
                out[k++] = (char)(0x80 | ((u >> 6) & 0x3f));
                out[k++] = (char)(0x80 | (u & 0x3f));
            } else {
                out[k++] = (char)(0xf0 | u >> 18);
                out[k++] = (char)(0x80 | ((u >> 12) & 0x3f));
                out[k++] = (char)(0x80 | ((u >> 6) & 0x3f));
                out[k++] = (char)(0x80 | (u & 0x3f));
            }
            break;
        }
        default: out[k++] = ch; /* " \ / */
        }
    }
    return k;
}

/* Does token "tok" ("n" bytes, quotes included, "esc" when it holds an escape) say
 * "s"? */
static bool token_is(const char *tok, size_t n, bool esc, const char *s)
{
    size_t sl = strlen(s);
    if (!esc)
        return n == sl + 2 && memcmp(tok + 1, s, sl) == 0;
    if (n - 2 < sl)
        return false; /* an escape never makes a text longer than its token */
    char tmp[256];
    if (n > sizeof(tmp))
        return false; /* keys we look for are short */
    size_t k = decode(tok, n, tmp);
    return k == sl && memcmp(tmp, s, sl) == 0;
}

const struct rota_json *rota_json_get(const struct rota_json *o, const char *key)
{
    if (!o || o->type != ROTA_JSON_OBJECT)
        return NULL;
    for (const struct rota_json *m = o->kid; m; m = m->next)
        if (token_is(m->key, m->klen, m->kescaped, key))
            return m;
    return NULL;
}

const struct rota_json *rota_json_path(const struct rota_json *o, const char *path)
{
    char k[128];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(k))
            return NULL;
        memcpy(k, path, n);
        k[n] = 0;
        o = rota_json_get(o, k);
        path += n + (path[n] == '.');
    }
    return o;
}

bool rota_json_is(const struct rota_json *v, const char *s)
{
    return v && v->type == ROTA_JSON_STRING && token_is(v->p, v->len, v->escaped, s);
}

bool rota_json_key_is(const struct rota_json *m, const char *key)
{
    return m && m->key && token_is(m->key, m->klen, m->kescaped, key);
}

static const char *text_of(struct rota_arena *a, const char *tok, size_t n, bool esc,
                           size_t *len)
{
    if (!esc) {
        *len = n - 2;
        return tok + 1;
    }
    char *out = rota_arena_alloc(a, n);
    if (!out)
        return NULL;
    *len = decode(tok, n, out);
    out[*len] = 0;
    return out;
}

const char *rota_json_text(struct rota_arena *a, const struct rota_json *v, size_t *len)
{
    if (!v || v->type != ROTA_JSON_STRING)
        return NULL;
    return text_of(a, v->p, v->len, v->escaped, len);
}

const char *rota_json_key(struct rota_arena *a, const struct rota_json *m, size_t *len)
{
    if (!m || !m->key)
        return NULL;
    return text_of(a, m->key, m->klen, m->kescaped, len);
}

bool rota_json_uint(const struct rota_json *v, uint64_t *out)
{
    if (!v || v->type != ROTA_JSON_NUMBER || v->len > 19)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < v->len; i++) {
        char ch = v->p[i];
        if (ch < '0' || ch > '9')
            return false;
        x = x * 10 + (uint64_t)(ch - '0');
    }
    if (x >> 63)
        return false;
    *out = x;
    return true;
}

bool rota_json_double(const struct rota_json *v, double *out)
{
    if (!v || v->type != ROTA_JSON_NUMBER || v->len >= 64)
        return false;
    char tmp[64];
    memcpy(tmp, v->p, v->len);
    tmp[v->len] = 0;
    *out = strtod(tmp, NULL);
    return true;
}

bool rota_json_true(const struct rota_json *v)
{
    return v && v->type == ROTA_JSON_TRUE;
}

/* ---- writer ---- */

void rota_jbuf_init(struct rota_jbuf *b, size_t max)
{
    *b = (struct rota_jbuf){.max = max};
}

void rota_jbuf_reset(struct rota_jbuf *b)
{
    b->len = 0;
    b->err = 0;
    b->depth = 0;
    b->after_key = false;
    b->first = b->is_obj = 0;
}

void rota_jbuf_free(struct rota_jbuf *b)
{
    free(b->p);
    rota_jbuf_init(b, b->max);
}

char *rota_jbuf_take(struct rota_jbuf *b, size_t *len)
{
    char *p = b->p;
    *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    rota_jbuf_reset(b);
    return p;
}

static bool room(struct rota_jbuf *b, size_t n)
{
    if (b->err)
        return false;
    if (b->max && b->len + n > b->max) {
        b->err = -EFBIG;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
        b->err = -ENOMEM;
        return false;
    }
    b->p = q;
    b->cap = cap;
    return true;
}

void rota_jbuf_raw(struct rota_jbuf *b, const char *p, size_t n)
{
    if (!room(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

void rota_jbuf_rawz(struct rota_jbuf *b, const char *s)
{
    rota_jbuf_raw(b, s, strlen(s));
}

/* The comma a value or key needs. */
static void sep(struct rota_jbuf *b)
{
    if (b->after_key) {
        b->after_key = false;
        return;
    }
    if (!b->depth)
        return;
    uint64_t bit = 1ull << (b->depth - 1);
    if (b->first & bit)
        b->first &= ~bit;
    else
        rota_jbuf_raw(b, ",", 1);
}

static void open_(struct rota_jbuf *b, bool obj)
{
    sep(b);
    if (b->depth >= 64) {
        b->err = b->err ? b->err : -EFBIG;
        return;
    }
    rota_jbuf_raw(b, obj ? "{" : "[", 1);
    uint64_t bit = 1ull << b->depth;
    b->first |= bit;
    b->is_obj = obj ? b->is_obj | bit : b->is_obj & ~bit;
    b->depth++;
}

void rota_jbuf_obj(struct rota_jbuf *b)
{
    open_(b, true);
}

void rota_jbuf_arr(struct rota_jbuf *b)
{
    open_(b, false);
}

void rota_jbuf_end(struct rota_jbuf *b)
{
    if (!b->depth)
        return;
    b->depth--;
    rota_jbuf_raw(b, (b->is_obj >> b->depth) & 1 ? "}" : "]", 1);
}

void rota_jbuf_esc(struct rota_jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const char *p = s, *end = s + n;
    while (p < end) {
        size_t run = rota_fmt_plain_run(p, end);
        while (p + run < end) {
            unsigned char ch = (unsigned char)p[run];
            if (ch == '"' || ch == '\\' || ch < 0x20)
                break;
            run++;
        }
        rota_jbuf_raw(b, p, run);
        p += run;
        if (p >= end)
            break;
        unsigned char ch = (unsigned char)*p++;
        char e[6] = {'\\', 0};
        switch (ch) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[ch >> 4], e[5] = hex[ch & 15];
            rota_jbuf_raw(b, e, 6);
            continue;
        }
        rota_jbuf_raw(b, e, 2);
    }
}

void rota_jbuf_key(struct rota_jbuf *b, const char *key)
{
    sep(b);
    rota_jbuf_raw(b, "\"", 1);
    rota_jbuf_esc(b, key, strlen(key));
    rota_jbuf_raw(b, "\":", 2);
    b->after_key = true;
}

void rota_jbuf_val(struct rota_jbuf *b, const struct rota_json *v)
{
    if (v)
        rota_jbuf_json(b, v->p, v->len);
    else
        rota_jbuf_null(b);
}

void rota_jbuf_json(struct rota_jbuf *b, const char *p, size_t n)
{
    sep(b);
    rota_jbuf_raw(b, p, n);
}

void rota_jbuf_str(struct rota_jbuf *b, const char *s, size_t n)
{
    sep(b);
    rota_jbuf_raw(b, "\"", 1);
    rota_jbuf_esc(b, s, n);
    rota_jbuf_raw(b, "\"", 1);
}

void rota_jbuf_strz(struct rota_jbuf *b, const char *s)
{
    rota_jbuf_str(b, s, strlen(s));
}

void rota_jbuf_quote(struct rota_jbuf *b, const char *p, size_t n)
{
    rota_jbuf_str(b, p, n);
}

void rota_jbuf_u64(struct rota_jbuf *b, uint64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    rota_jbuf_json(b, t + i, sizeof(t) - i);
}

void rota_jbuf_bool(struct rota_jbuf *b, bool v)
{
    rota_jbuf_json(b, v ? "true" : "false", v ? 4 : 5);
}

void rota_jbuf_null(struct rota_jbuf *b)
{
    rota_jbuf_json(b, "null", 4);
}

void rota_jbuf_kstr(struct rota_jbuf *b, const char *key, const char *s)
{
    rota_jbuf_key(b, key);
    rota_jbuf_strz(b, s);
}

void rota_jbuf_ku64(struct rota_jbuf *b, const char *key, uint64_t v)
{
    rota_jbuf_key(b, key);
    rota_jbuf_u64(b, v);
}

void rota_jbuf_kval(struct rota_jbuf *b, const char *key, const struct rota_json *v)
{
    rota_jbuf_key(b, key);
    rota_jbuf_val(b, v);
}
