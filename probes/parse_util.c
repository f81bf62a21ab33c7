/*
 * parse_util.c - what the provider parsers share: building a struct rota_obs, finding a
 * header in a raw block, reading durations, instants and integers as providers write
 * them, and reading a JSON body and its values (parse_json.h).
 *
 * DESIGN
 * Pure functions, safe from any thread: no globals, no locale, no TZ (the calendar comes
 * from rota_days_from_civil), and no allocation but the JSON trees the rota_json_body*
 * helpers return, which their caller frees before its own return. Input is untrusted:
 * header blocks and bodies are read by length only and may hold NUL bytes; header blocks
 * may have bare LF or CRLF, folded lines and repeated names; every number is checked for
 * overflow before it is multiplied. Instants are wall-clock ns in int64 (years
 * 1678..2261); anything outside is refused as -EINVAL. A time written with a fraction
 * finer than the unit it is kept in (a retry hint, a reset) is rounded up, never down:
 * a wait cut short is a call the provider refuses again. Texts kept in an observation
 * (detail, problem) are cut at their size and have bytes outside printable ASCII
 * replaced by '?', so a hostile answer cannot put control characters or broken UTF-8
 * into an operator's log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"
#include "tz.h"

#define NS_PER_SEC INT64_C(1000000000)
#define SEC_MAX    (INT64_MAX / NS_PER_SEC) /* last whole second an int64 ns can hold */

/* ---- observations ---- */

static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

void rota_obs_init(struct rota_obs *out)
{
    memset(out, 0, sizeof(*out));
}

struct rota_obs_window *rota_obs_window_add(struct rota_obs *out, const char *pool,
                                            const char *what, uint8_t metric)
{
    if (out->nwin >= ROTA_OBS_WINDOWS) {
        rota_obs_problem(out, "windows: more than %d buckets, \"%.40s\" skipped",
                         ROTA_OBS_WINDOWS, what ? what : "");
        return NULL;
    }
    struct rota_obs_window *w = &out->win[out->nwin++];
    memset(w, 0, sizeof(*w));
    snprintf(w->pool, sizeof(w->pool), "%s", pool ? pool : "");
    snprintf(w->what, sizeof(w->what), "%s", what ? what : "");
    w->metric = metric;
    return w;
}

void rota_obs_problem(struct rota_obs *out, const char *fmt, ...)
{
    if (out->problems++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->problem, sizeof(out->problem), fmt, ap);
        va_end(ap);
        sanitize(out->problem);
        if (!out->problem[0])
            snprintf(out->problem, sizeof(out->problem), "?");
    }
}

void rota_obs_detail(struct rota_obs *out, const char *fmt, ...)
{
    size_t used = strnlen(out->detail, sizeof(out->detail) - 1);
    if (used + (used ? 3 : 1) >= sizeof(out->detail))
        return; /* full: a separator with nothing after it would say nothing */
    if (used) {
        memcpy(out->detail + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail + used, sizeof(out->detail) - used, fmt, ap);
    va_end(ap);
    sanitize(out->detail + used);
}

/* ---- headers ---- */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The end of the line starting at "p" (its '\n', or "end"); the line's content ends before
 * any '\r' that precedes it. */
static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

static const char *content_end(const char *p, const char *eol)
{
    while (eol > p && (eol[-1] == '\r' || is_blank(eol[-1])))
        eol--;
    return eol;
}

/* Append the bytes [a, b) to buf at *n (with a space before a folded part); false when it
 * does not fit or holds a NUL. */
static bool append(char *buf, size_t cap, size_t *n, const char *a, const char *b, bool sp)
{
    while (a < b && is_blank(*a))
        a++;
    size_t len = (size_t)(b - a);
    if (a == b)
        return true;
    if (memchr(a, 0, len))
        return false;
    size_t need = *n + (sp && *n ? 1 : 0) + len;
    if (need + 1 > cap)
        return false;
    if (sp && *n)
        buf[(*n)++] = ' ';
    memcpy(buf + *n, a, len);
    *n += len;
    buf[*n] = 0;
    return true;
}

/* Does the line [p, eol) name header "name"? Sets *val to the first byte after ':'.
 * Blanks between the name and ':' are tolerated; a line starting with a blank continues
 * the line before and never names a header. */
static bool names(const char *p, const char *eol, const char *name, size_t nlen,
                  const char **val)
{
    if ((size_t)(eol - p) <= nlen || is_blank(*p))
        return false;
    for (size_t i = 0; i < nlen; i++)
        if (lower((unsigned char)p[i]) != lower((unsigned char)name[i]))
            return false;
    const char *q = p + nlen;
    while (q < eol && is_blank(*q))
        q++;
    if (q == eol || *q != ':')
        return false;
    *val = q + 1;
    return true;
}

int rota_http_header(const struct rota_http_in *in, const char *name, char *buf, size_t cap)
{
    if (!in || !in->headers || !name || !buf || cap == 0)
        return -1;
    size_t nlen = strlen(name);
    if (nlen == 0)
        return -1;
    const char *p = in->headers, *end = in->headers + in->headers_len;
    while (p < end) {
        const char *eol = line_end(p, end), *val;
        if (!names(p, eol, name, nlen, &val)) {
            p = eol < end ? eol + 1 : end;
            continue;
        }
        size_t n = 0;
        buf[0] = 0;
        if (!append(buf, cap, &n, val, content_end(val, eol), false))
            return -1;
        /* obs-fold: following lines that start with a blank continue this value */
        for (p = eol < end ? eol + 1 : end; p < end && is_blank(*p);) {
            eol = line_end(p, end);
            if (!append(buf, cap, &n, p, content_end(p, eol), true))
                return -1;
            p = eol < end ? eol + 1 : end;
        }
        return (int)n;
    }
    return -1;
}

/* ---- numbers and durations ---- */

int rota_parse_u64(const char *s, uint64_t *v)
{
    if (!s || !v)
        return -EINVAL;
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    if (len == 0)
        return -EINVAL;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -EINVAL;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* "unit" ns times the fraction 0.<the digits [a, b)>, rounded up to a whole ns: a wait
 * cut short by a part of a ns would be a call made before the provider said. Exact for
 * any number of digits and any "unit" up to UINT64_MAX / 10: Horner's rule from the last
 * digit, where x stays below "unit" and what each division by ten drops (always below
 * 1 ns) only decides whether one ns is added at the end. */
static uint64_t fraction_up(const char *a, const char *b, uint64_t unit)
{
    uint64_t x = 0;
    bool dropped = false;
    while (b > a) {
        uint64_t n = unit * (uint64_t)(*--b - '0') + x;
        dropped |= n % 10 != 0;
        x = n / 10;
    }
    return x + dropped;
}

/* A decimal number with an optional fraction ("12", "1.78", ".5", "3.") at *p, times
 * "unit" ns, into *ns, rounded up to a whole ns; advances *p. */
static int decimal(const char **p, uint64_t unit, uint64_t *ns)
{
    const char *s = *p;
    uint64_t whole = 0, frac = 0;
    bool digits = false;
    for (; *s >= '0' && *s <= '9'; s++, digits = true) {
        unsigned d = (unsigned)(*s - '0');
        if (whole > (UINT64_MAX - d) / 10)
            return -EINVAL;
        whole = whole * 10 + d;
    }
    if (*s == '.') {
        const char *first = ++s;
        for (; *s >= '0' && *s <= '9'; s++)
            digits = true;
        frac = fraction_up(first, s, unit);
    }
    if (!digits || (unit && whole > UINT64_MAX / unit) || whole * unit > UINT64_MAX - frac)
        return -EINVAL;
    *ns = whole * unit + frac;
    *p = s;
    return 0;
}

int rota_parse_decimal_ns(const char *s, uint64_t unit, uint64_t *ns)
{
    uint64_t v;
    if (!s || !ns || decimal(&s, unit, &v) != 0 || *s != 0)
        return -EINVAL;
    *ns = v;
    return 0;
}

static uint64_t go_unit(const char **p)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000}, /* U+03BC greek mu */
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", UINT64_C(60000000000)},
        {"h", UINT64_C(3600000000000)},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].name);
        /* "m" must not eat the "m" of "ms": longer names come first in the table */
        if (strncmp(*p, units[i].name, n) == 0) {
            *p += n;
            return units[i].ns;
        }
    }
    return 0;
}

int rota_parse_go_duration(const char *s, bool bare_seconds, uint64_t *ns)
{
    if (!s || !ns)
        return -EINVAL;
    if (*s == '+')
        s++;
    if (*s == 0 || *s == '-')
        return -EINVAL;
    if (bare_seconds || strcmp(s, "0") == 0) {
        const char *p = s;
        uint64_t v;
        if (decimal(&p, 1000000000, &v) == 0 && *p == 0) {
            *ns = v;
            return 0;
        }
    }
    uint64_t total = 0;
    while (*s) {
        /* the number is read once its unit is known: scan to the unit first */
        const char *num = s;
        while ((*s >= '0' && *s <= '9') || *s == '.')
            s++;
        const char *num_end = s, *q = num;
        uint64_t unit = go_unit(&s), part;
        if (!unit || decimal(&q, unit, &part) != 0 || q != num_end || total > UINT64_MAX - part)
            return -EINVAL;
        total += part;
    }
    *ns = total;
    return 0;
}

/* ---- instants ---- */

/* Exactly "n" digits at *p into *v; advances *p. */
static bool digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

/* Seconds since the epoch of a valid civil UTC time, plus "frac_ns" (at most one
 * second), into *out. */
static int make_instant(int y, int mo, int d, int h, int mi, int sec, int64_t off_s,
                        int64_t frac_ns, int64_t *out)
{
    if (mo < 1 || mo > 12 || d < 1 || d > rota_days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60)
        return -EINVAL;
    int64_t t = rota_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    if (t > SEC_MAX || t < -SEC_MAX || (t == SEC_MAX && frac_ns > INT64_MAX % NS_PER_SEC))
        return -EINVAL;
    *out = t * NS_PER_SEC + frac_ns;
    return 0;
}

int rota_parse_rfc3339(const char *s, int64_t *ns)
{
    if (!s || !ns)
        return -EINVAL;
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    int64_t frac = 0, sign = 0;
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return -EINVAL;
    if (*s == 0)
        return make_instant(y, mo, d, 0, 0, 0, 0, 0, ns);
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -EINVAL;
    s++;
    if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) || *s++ != ':' ||
        !digits(&s, 2, &sec))
        return -EINVAL;
    if (*s == '.') {
        const char *first = ++s;
        if (*s < '0' || *s > '9')
            return -EINVAL;
        while (*s >= '0' && *s <= '9')
            s++;
        frac = (int64_t)fraction_up(first, s, NS_PER_SEC); /* at most NS_PER_SEC */
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om) || oh > 23 || om > 59)
            return -EINVAL;
    } /* no zone at all: read as UTC (providers' "_utc" fields are written so) */
    if (*s != 0)
        return -EINVAL;
    return make_instant(y, mo, d, h, mi, sec, sign * (oh * 3600 + om * 60), frac, ns);
}

static int month_of(const char *s)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    for (int m = 0; m < 12; m++)
        if (lower((unsigned char)s[0]) == names[3 * m] &&
            lower((unsigned char)s[1]) == names[3 * m + 1] &&
            lower((unsigned char)s[2]) == names[3 * m + 2])
            return m + 1;
    return 0;
}

/* A day name at *p, short ("Wed") or long ("Wednesday") as "longform" says; advances. */
static bool weekday(const char **p, bool longform)
{
    static const char *const days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
    for (int i = 0; i < 7; i++) {
        size_t n = longform ? strlen(days[i]) : 3;
        if (strncmp(*p, days[i], n) == 0) {
            *p += n;
            return true;
        }
    }
    return false;
}

static bool clock_of(const char **p, int *h, int *mi, int *sec)
{
    return digits(p, 2, h) && *(*p)++ == ':' && digits(p, 2, mi) && *(*p)++ == ':' &&
           digits(p, 2, sec);
}

/* Accepts the three forms HTTP recipients must: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
 * GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37
 * 1994"). The day name is checked for spelling, not against the date. */
int rota_parse_http_date(const char *s, int64_t *ns)
{
    if (!s || !ns)
        return -EINVAL;
    int y, mo, d, h, mi, sec;
    const char *p = s;
    if (weekday(&p, false) && p[0] == ',' && p[1] == ' ') { /* IMF-fixdate */
        p += 2;
        if (!digits(&p, 2, &d) || *p++ != ' ' || !(mo = month_of(p)) || p[3] != ' ')
            return -EINVAL;
        p += 4;
        if (!digits(&p, 4, &y) || *p++ != ' ' || !clock_of(&p, &h, &mi, &sec) ||
            strcmp(p, " GMT") != 0)
            return -EINVAL;
    } else if (p = s, weekday(&p, true) && p[0] == ',' && p[1] == ' ') { /* RFC 850 */
        p += 2;
        if (!digits(&p, 2, &d) || *p++ != '-' || !(mo = month_of(p)) || p[3] != '-')
            return -EINVAL;
        p += 4;
        if (!digits(&p, 2, &y) || *p++ != ' ' || !clock_of(&p, &h, &mi, &sec) ||
            strcmp(p, " GMT") != 0)
            return -EINVAL;
        y += y < 70 ? 2000 : 1900;
    } else if (p = s, weekday(&p, false) && *p == ' ') { /* asctime */
        p++;
        if (!(mo = month_of(p)) || p[3] != ' ')
            return -EINVAL;
        p += 4;
        if (!(*p == ' ' ? (p++, digits(&p, 1, &d)) : digits(&p, 2, &d)))
            return -EINVAL; /* the day is padded with a space: "Nov  6" */
        if (*p++ != ' ' || !clock_of(&p, &h, &mi, &sec) || *p++ != ' ' || !digits(&p, 4, &y) ||
            *p != 0)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    return make_instant(y, mo, d, h, mi, sec, 0, 0, ns);
}

/* ---- retry hints and waits ---- */

/* now + d into *at; false when it does not fit an int64. */
static bool add_ns(int64_t now, uint64_t d, int64_t *at)
{
    if (d > (uint64_t)(INT64_MAX - (now > 0 ? now : 0)))
        return false;
    *at = now + (int64_t)d;
    return true;
}

int64_t rota_http_retry_at(const struct rota_http_in *in, struct rota_obs *out)
{
    char v[128];
    uint64_t d;
    if (rota_http_header(in, "retry-after-ms", v, sizeof(v)) >= 0) {
        const char *p = v;
        int64_t at;
        if (decimal(&p, 1000000, &d) == 0 && *p == 0 && add_ns(in->now, d, &at))
            return at;
        if (out)
            rota_obs_problem(out, "retry-after-ms: not a number of ms: \"%.40s\"", v);
    }
    if (rota_http_header(in, "retry-after", v, sizeof(v)) >= 0) {
        const char *p = v;
        int64_t at;
        if (decimal(&p, 1000000000, &d) == 0 && *p == 0 && add_ns(in->now, d, &at))
            return at;
        if (rota_parse_http_date(v, &at) == 0)
            return at > in->now ? at : in->now;
        if (out)
            rota_obs_problem(out, "retry-after: neither seconds nor an HTTP-date: \"%.40s\"",
                             v);
    }
    return 0;
}

int64_t rota_ns_after(int64_t now, uint64_t d)
{
    int64_t at;
    return add_ns(now, d, &at) ? at : 0;
}

int64_t rota_ns_later(int64_t now, int64_t d)
{
    return now > INT64_MAX - d ? INT64_MAX : now + d;
}

int64_t rota_ns_secs_up(int64_t d)
{
    return d / NS_PER_SEC + (d % NS_PER_SEC > 0); /* C division truncates toward 0 */
}

/* ---- strings ---- */

bool rota_str_ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* ---- JSON bodies and values ---- */

/* "len" bytes at "buf" as JSON; read again with every integer as a real when one
 * overflowed jansson's int64. */
static json_t *load_json(const char *buf, size_t len, json_error_t *e)
{
    json_t *j = json_loadb(buf, len, 0, e);
    if (!j && json_error_code(e) == json_error_numeric_overflow)
        j = json_loadb(buf, len, JSON_DECODE_INT_AS_REAL, e);
    return j;
}

const char *rota_json_body_start(const struct rota_http_in *in)
{
    size_t len = in->body_len < ROTA_PARSE_MAX_BODY ? in->body_len : ROTA_PARSE_MAX_BODY;
    for (size_t i = 0; in->body && i < len; i++)
        if (!in->body[i] || !strchr(" \t\r\n", in->body[i]))
            return in->body + i;
    return NULL;
}

int rota_json_body(const struct rota_http_in *in, enum rota_json_want want,
                   struct rota_obs *out, json_t **root)
{
    *root = NULL;
    const char *start = rota_json_body_start(in);
    if (!start) {
        if (want != ROTA_JSON_WANT_ALWAYS)
            return 0;
        rota_obs_problem(out, "body: empty");
        return -EINVAL;
    }
    size_t len = in->body_len < ROTA_PARSE_MAX_BODY ? in->body_len : ROTA_PARSE_MAX_BODY;
    json_error_t e;
    json_t *j = load_json(in->body, len, &e);
    if (!j) {
        if (want == ROTA_JSON_WANT_NONE ||
            (want == ROTA_JSON_WANT_IF_LIKE && *start != '{' && *start != '[' && *start))
            return 0;
        rota_obs_problem(out, "body: not JSON at byte %d: %.80s", e.position, e.text);
        return -EINVAL;
    }
    *root = j;
    return 0;
}

json_t *rota_json_body_or_null(const struct rota_http_in *in, bool quiet, struct rota_obs *out)
{
    json_error_t e;
    if (!in->body || in->body_len == 0) {
        if (!quiet)
            rota_obs_problem(out, "body: empty");
        return NULL;
    }
    if (in->body_len > ROTA_PARSE_MAX_BODY) {
        if (!quiet)
            rota_obs_problem(out, "body: %zu bytes, over the cap", in->body_len);
        return NULL;
    }
    json_t *j = load_json(in->body, in->body_len, &e);
    if (!j && !quiet)
        rota_obs_problem(out, "body: not JSON (%.80s at byte %d)", e.text, e.position);
    return j;
}

bool rota_json_looks_like_object(const struct rota_http_in *in)
{
    for (size_t i = 0; in->body && i < in->body_len; i++) {
        char c = in->body[i];
        if (!is_blank(c) && c != '\r' && c != '\n')
            return c == '{';
    }
    return false;
}

const char *rota_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

json_t *rota_json_error_of(json_t *root)
{
    if (json_is_array(root))
        root = json_array_get(root, 0);
    json_t *e = json_object_get(root, "error");
    return json_is_object(e) ? e : NULL;
}

int rota_json_u64(const json_t *v, uint64_t *x)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *x = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d < 18446744073709551616.0 && d == (double)(uint64_t)d) {
            *x = (uint64_t)d;
            return 0;
        }
        return -EINVAL;
    }
    return json_is_string(v) ? rota_parse_u64(json_string_value(v), x) : -EINVAL;
}

int rota_json_ns(const json_t *v, uint64_t unit, uint64_t *ns)
{
    /* a real is kept to a thousandth of "unit", so "unit" is a whole number of those */
    if (unit < 1000 || unit % 1000 != 0 || unit > UINT64_MAX / 10)
        return -EINVAL;
    if (json_is_string(v))
        return rota_parse_decimal_ns(json_string_value(v), unit, ns);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (uint64_t)i > UINT64_MAX / unit)
            return -EINVAL;
        *ns = (uint64_t)i * unit;
        return 0;
    }
    if (!json_is_real(v))
        return -EINVAL;
    /* thousandths of "unit", rounded up; what the decoder and the product rounded puts x
     * at most two units of its last place (x * 2^-51) from the text's figure, so a part
     * of a thousandth no larger than that is their error, not the provider's */
    double x = json_real_value(v) * 1000.0;
    if (!(x >= 0 && x < 18446744073709551616.0))
        return -EINVAL;
    uint64_t k = (uint64_t)x, grain = unit / 1000;
    if (x - (double)k > x * 0x1p-51)
        k++;
    if (k > UINT64_MAX / grain)
        return -EINVAL;
    *ns = k * grain;
    return 0;
}

int rota_json_instant(const json_t *v, int64_t *ns)
{
    const char *s = json_string_value(v);
    int64_t t;
    if (!s || rota_parse_rfc3339(s, &t) != 0 || t <= 0)
        return -EINVAL;
    *ns = t;
    return 0;
}

int rota_json_status(const struct rota_http_in *in, json_t *err)
{
    if (!err || (in->status != 0 && (in->status < 200 || in->status > 299)))
        return in->status;
    uint64_t c;
    if (rota_json_u64(json_object_get(err, "code"), &c) == 0 && c >= 100 && c <= 599)
        return (int)c;
    return -1;
}
