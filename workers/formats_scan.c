/*
 * formats_scan.c - the bounded scan of a JSON object's top-level members and the splices
 * into a body (formats.h says what and why).
 *
 * DESIGN
 * One pass over the bytes. skip_value steps over any value: strings 32 bytes at a time
 * (AVX2, where the CPU has it), else sixteen (SSE2), else eight (a 64-bit word), to the
 * first byte that is a quote, a backslash or a control character, then byte by
 * byte (an escape takes the next byte with it, control characters are refused; a
 * prompt is most of a body, and this is its whole cost), containers by
 * recursion bounded by ROTA_FMT_DEPTH, scalars up to the next delimiter. Nothing is
 * copied but the keys compared (at most KEY_MAX bytes, decoded), so the cost is the
 * body's length and the stack the depth bound. Pure; any thread.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define KEY_MAX 64

struct cur {
    const char *p, *end;
};

static void ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hexval(char h)
{
    return h >= '0' && h <= '9'                 ? h - '0'
           : (h | 32) >= 'a' && (h | 32) <= 'f' ? (h | 32) - 'a' + 10
                                                : -1;
}

/* None of the eight bytes at "p" is a quote, a backslash or below 0x20 (each test is
 * the word-wide "has a zero byte" trick, exact for the word as a whole). */
static bool plain8(const char *p)
{
    const uint64_t lo = 0x0101010101010101ull, hi = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    uint64_t q = x ^ (lo * '"'), b = x ^ (lo * '\\');
    return !((((q - lo) & ~q) | ((b - lo) & ~b) | ((x - lo * 0x20) & ~x)) & hi);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define SCAN_AVX2 1
/* The plain bytes at "p", 32 at a time, up to the exact first byte that is not: AVX2,
 * where the CPU has it (most of today's x86-64; chosen at run time). */
__attribute__((target("avx2"))) static size_t plain_run_avx2(const char *p, const char *end)
{
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\'),
                  ctl = _mm256_set1_epi8(0x1f);
    size_t n = 0;
    while (end - p - (ptrdiff_t)n >= 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + n));
        __m256i bad = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(x, quote), _mm256_cmpeq_epi8(x, bslash)),
            _mm256_cmpeq_epi8(_mm256_max_epu8(x, ctl), ctl)); /* x <= 0x1f */
        unsigned m = (unsigned)_mm256_movemask_epi8(bad);
        if (m)
            return n + (size_t)__builtin_ctz(m);
        n += 32;
    }
    return n;
}
#endif

size_t rota_fmt_plain_run(const char *p, const char *end)
{
    size_t n = 0;
#ifdef SCAN_AVX2
    if (__builtin_cpu_supports("avx2")) {
        n = plain_run_avx2(p, end);
        if (end - p - (ptrdiff_t)n >= 32)
            return n; /* stopped at a byte that is not plain */
    }
#endif
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  ctl = _mm_set1_epi8(0x1f);
    while (end - p - (ptrdiff_t)n >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + n));
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                _mm_cmpeq_epi8(x, bslash)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(x, ctl), ctl)); /* x <= 0x1f */
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m)
            return n + (size_t)__builtin_ctz(m);
        n += 16;
    }
#endif
    while (end - p - (ptrdiff_t)n >= 8 && plain8(p + n))
        n += 8;
    return n;
}

/* Step over a string (c->p at its opening quote). False if malformed. */
static bool skip_string(struct cur *c)
{
    c->p++;
    while (c->p < c->end) {
        c->p += rota_fmt_plain_run(c->p, c->end);
        if (c->p >= c->end)
            break;
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return true;
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            if (c->p >= c->end)
                return false;
            c->p++;
        }
    }
    return false;
}

/* Decode the string at "s".."e" (quotes included) into "out" (n bytes). Returns its
 * length, or -1 if it does not fit or an escape is malformed. Non-ASCII escapes come
 * out as UTF-8. */
static int decode(const char *s, const char *e, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = s + 1; p < e - 1; p++) {
        char ch = *p;
        if (ch == '\\') {
            char x = *++p;
            if (x == 'u') {
                if (e - 1 - p < 5)
                    return -1;
                int v = 0;
                for (int i = 1; i <= 4; i++) {
                    int h = hexval(p[i]);
                    if (h < 0)
                        return -1;
                    v = v * 16 + h;
                }
                p += 4;
                if (v == 0)
                    return -1; /* a NUL would end the key early: "stream\u0000" */
                unsigned char u8[3];
                size_t m = v < 0x80 ? 1 : v < 0x800 ? 2 : 3;
                if (m == 1)
                    u8[0] = (unsigned char)v;
                else if (m == 2)
                    u8[0] = (unsigned char)(0xc0 | v >> 6),
                    u8[1] = (unsigned char)(0x80 | (v & 63));
                else
                    u8[0] = (unsigned char)(0xe0 | v >> 12),
                    u8[1] = (unsigned char)(0x80 | ((v >> 6) & 63)),
                    u8[2] = (unsigned char)(0x80 | (v & 63));
                if (k + m >= n)
                    return -1;
                memcpy(out + k, u8, m);
                k += m;
                continue;
            }
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *at = strchr(from, x);
            if (!x || !at)
                return -1;
            ch = to[at - from];
        }
        if (k + 1 >= n)
            return -1;
        out[k++] = ch;
    }
    out[k] = 0;
    return (int)k;
}

static bool skip_value(struct cur *c, int depth);

/* Step over the members of an object or the items of an array (c->p after the
 * bracket), up to and including "close". */
static bool skip_container(struct cur *c, char close, int depth)
{
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        ws(c);
        if (close == '}') {
            if (c->p >= c->end || *c->p != '"' || !skip_string(c))
                return false;
            ws(c);
            if (c->p >= c->end || *c->p++ != ':')
                return false;
        }
        if (!skip_value(c, depth))
            return false;
        ws(c);
        if (c->p >= c->end)
            return false;
        char ch = *c->p++;
        if (ch == close)
            return true;
        if (ch != ',')
            return false;
    }
}

static bool skip_value(struct cur *c, int depth)
{
    ws(c);
    if (c->p >= c->end)
        return false;
    char ch = *c->p;
    if (ch == '"')
        return skip_string(c);
    if (ch == '{' || ch == '[') {
        if (depth >= ROTA_FMT_DEPTH)
            return false;
        c->p++;
        return skip_container(c, ch == '{' ? '}' : ']', depth + 1);
    }
    const char *start = c->p;
    while (c->p < c->end &&
           ((*c->p && strchr("+-.0123456789eE", *c->p)) || (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    return c->p > start;
}

int rota_fmt_members(const char *buf, size_t len, const char *const *keys, size_t n,
                     struct rota_fmt_span *out)
{
    struct cur c = {buf, buf + len};
    for (size_t i = 0; i < n; i++)
        out[i] = (struct rota_fmt_span){0, 0};
    ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return -EINVAL;
    ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        ws(&c);
        return c.p == c.end ? 0 : -EINVAL;
    }
    for (;;) {
        ws(&c);
        const char *ks = c.p;
        if (c.p >= c.end || *c.p != '"' || !skip_string(&c))
            return -EINVAL;
        char key[KEY_MAX];
        int kl = decode(ks, c.p, key, sizeof(key));
        ws(&c);
        if (c.p >= c.end || *c.p++ != ':')
            return -EINVAL;
        ws(&c);
        const char *vs = c.p;
        if (!skip_value(&c, 1))
            return -EINVAL;
        for (size_t i = 0; kl >= 0 && i < n; i++) {
            if (strcmp(key, keys[i]) != 0)
                continue;
            if (out[i].len)
                return -EINVAL; /* the same key twice */
            out[i] = (struct rota_fmt_span){(size_t)(vs - buf), (size_t)(c.p - vs)};
        }
        ws(&c);
        if (c.p >= c.end)
            return -EINVAL;
        char ch = *c.p++;
        if (ch == '}') {
            ws(&c); /* nothing but whitespace after the object */
            return c.p == c.end ? 0 : -EINVAL;
        }
        if (ch != ',')
            return -EINVAL;
    }
}

int rota_fmt_string(const char *buf, struct rota_fmt_span s, char *out, size_t n)
{
    if (s.len < 2 || buf[s.off] != '"' || n == 0)
        return -EINVAL;
    int k = decode(buf + s.off, buf + s.off + s.len, out, n);
    return k < 0 ? -EINVAL : k;
}

static bool is_true(const char *buf, struct rota_fmt_span s)
{
    return s.len == 4 && memcmp(buf + s.off, "true", 4) == 0;
}

/* A non-negative integer value, or 0. */
static uint64_t number(const char *buf, struct rota_fmt_span s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < s.len && i < 19; i++) {
        char ch = buf[s.off + i];
        if (ch < '0' || ch > '9')
            break;
        v = v * 10 + (uint64_t)(ch - '0');
    }
    return v;
}

/* Member "key" of the object at span "s" (absolute span back, len 0 if absent). */
static struct rota_fmt_span member(const char *buf, struct rota_fmt_span s, const char *key)
{
    struct rota_fmt_span v = {0, 0};
    if (s.len && buf[s.off] == '{' && rota_fmt_members(buf + s.off, s.len, &key, 1, &v) == 0 &&
        v.len)
        v.off += s.off;
    return v;
}

int rota_fmt_scan_request(const char *buf, size_t len, struct rota_fmt_req *r)
{
    enum { MODEL, STREAM, OPTS, USER, META, MAXT, MAXC, MAXO, GEN, N };
    static const char *const keys[N] = {
        "model",           "stream",     "stream_options",        "user",
        "metadata",        "max_tokens", "max_completion_tokens", "max_output_tokens",
        "generationConfig"};
    struct rota_fmt_span v[N];
    *r = (struct rota_fmt_req){0};
    int rc = rota_fmt_members(buf, len, keys, N, v);
    if (rc)
        return rc;
    r->model = v[MODEL];
    r->stream = is_true(buf, v[STREAM]);
    r->stream_options = v[OPTS];
    if (v[OPTS].len && buf[v[OPTS].off] == '{') {
        r->include_usage = member(buf, v[OPTS], "include_usage");
        r->usage_asked = is_true(buf, r->include_usage);
    }
    struct rota_fmt_span uid = member(buf, v[META], "user_id");
    struct rota_fmt_span sticky = v[USER].len && buf[v[USER].off] == '"' ? v[USER] : uid;
    if (sticky.len >= 2 && buf[sticky.off] == '"')
        r->sticky = (struct rota_fmt_span){sticky.off + 1, sticky.len - 2};
    struct rota_fmt_span mo = member(buf, v[GEN], "maxOutputTokens");
    r->max_tokens = v[MAXT].len   ? number(buf, v[MAXT])
                    : v[MAXC].len ? number(buf, v[MAXC])
                    : v[MAXO].len ? number(buf, v[MAXO])
                                  : number(buf, mo);
    return 0;
}

char *rota_fmt_apply(const char *buf, size_t len, const struct rota_fmt_edit *e, size_t n,
                     size_t *out_len)
{
    size_t total = len;
    for (size_t i = 0; i < n; i++)
        total = total - e[i].len + e[i].tlen;
    char *out = malloc(total + 1);
    if (!out)
        return NULL;
    size_t at = 0, from = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + at, buf + from, e[i].off - from);
        at += e[i].off - from;
        memcpy(out + at, e[i].text, e[i].tlen);
        at += e[i].tlen;
        from = e[i].off + e[i].len;
    }
    memcpy(out + at, buf + from, len - from);
    at += len - from;
    out[at] = 0;
    *out_len = at;
    return out;
}
