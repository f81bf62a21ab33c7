/*
 * tz.c - time zones without TZ: parse TZif files and POSIX TZ rules, convert instants.
 *
 * DESIGN
 * Called by the supervisor (quota reset times), tools and tests, from any thread. Nothing
 * here touches TZ, tzset, localtime or mktime, and there is no global state: rota_tz_load
 * reads $ROTA_ZONEINFO once, reads the zone file into a private buffer, validates it and
 * builds one heap block (struct rota_tz, its transition arrays and its name) that is never
 * written again. Every other function is pure and reentrant.
 *
 * A zone is a sorted list of UTC transition instants, each with the UTC offset in effect
 * from it on, the offset before the first transition (TZif time type 0), and an optional
 * POSIX rule (the TZif footer, or the name itself when it is a TZ string) that decides
 * the offset at and after the last transition. Debian's "slim" files list transitions only
 * until the rule can take over, so the rule gives every later DST change. Rule changes
 * are computed per query for the years around the instant: there is no cache to share.
 *
 * TZif input is untrusted (RFC 8536): counts are capped, the file size must equal exactly
 * what the header counts describe, transitions must ascend, every type index, offset and
 * abbreviation index is range-checked before use, and the footer must parse completely.
 * The 64-bit (v2+) data block is used when present; leap second records are skipped, so
 * "right/" zones are off by the leap seconds they count.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tz.h"

#define MAX_FILE    (1 << 20) /* bytes; real zone files are below 4 KiB */
#define MAX_TIMES   65535     /* transitions per data block */
#define MAX_TYPES   256       /* the format's own limit: indexes are one byte */
#define MAX_CHARS   4096      /* abbreviation bytes */
#define MAX_LEAPS   4096      /* leap second records */
#define MAX_FOOTER  256       /* bytes of the POSIX footer string */
#define MAX_OFFSET  93599     /* |UTC offset| <= 25:59:59, RFC 8536 */
#define MAX_RULE_H  167       /* rule transition times within +-167 hours (TZif v3) */
#define HEADER_SIZE 44
#define DAY         86400

/* When a POSIX rule switches: on a date (Jn, n or Mm.w.d) at a local time of day. */
struct tz_date {
    char kind;           /* 'J': Jn, day 1..365 without Feb 29; 'N': n, day 0..365; 'M' */
    int day;             /* J and N forms */
    int month, week, wd; /* M form: month 1..12, week 1..5 (5 = last), weekday 0..6 */
    int32_t time;        /* seconds after local midnight, may be negative or above 24h */
};

/* A POSIX TZ rule with offsets already turned to "local = utc + off". */
struct tz_rule {
    int32_t std_off, dst_off;
    int has_dst;
    struct tz_date start, end; /* start: std -> dst (std time); end: dst -> std (dst time) */
};

struct rota_tz {
    const char *name;  /* points into this block */
    uint32_t ntrans;   /* entries in trans and off */
    int64_t *trans;    /* strictly ascending UTC instants */
    int32_t *off;      /* offset in effect from trans[i] on */
    int32_t first_off; /* offset before trans[0] (time type 0) */
    int32_t max_off;   /* largest |offset| the zone can yield; bounds from_civil */
    int has_rule;      /* rule decides the offset from the last transition on */
    struct tz_rule rule;
};

/* ---- calendar ------------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t clamp_sec(int64_t t)
{
    return t < ROTA_TZ_MIN_SEC ? ROTA_TZ_MIN_SEC : t > ROTA_TZ_MAX_SEC ? ROTA_TZ_MAX_SEC : t;
}

static int32_t max_abs(int32_t max, int32_t v)
{
    v = v < 0 ? -v : v;
    return v > max ? v : max;
}

/* Days since 1970-01-01 of year "y", month "m" (any value, normalised), day "d" (any). */
static int64_t days_from_ymd(int64_t y, int64_t m, int64_t d)
{
    int64_t mon = y * 12 + (m - 1);
    y = floor_div(mon, 12);
    m = mon - y * 12 + 1;
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468 + (d - 1);
}

static void ymd_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t rota_days_from_civil(int year, int month, int day)
{
    return days_from_ymd(year, month, day);
}

void rota_civil_from_days(int64_t days, int *year, int *month, int *day)
{
    int64_t lim = ROTA_TZ_MAX_SEC / DAY, y;
    days = days < -lim ? -lim : days > lim ? lim : days;
    ymd_from_days(days, &y, month, day);
    *year = (int)y;
}

int rota_weekday(int64_t days)
{
    return (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
}

int rota_days_in_month(int year, int month)
{
    return (int)(days_from_ymd(year, (int64_t)month + 1, 1) - days_from_ymd(year, month, 1));
}

/* ---- POSIX TZ rules ------------------------------------------------------------------ */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Parse an unsigned decimal at "*sp" no larger than "max" into "*out". */
static int parse_num(const char **sp, int max, int *out)
{
    const char *s = *sp;
    int v = 0;
    if (!is_digit(*s))
        return -1;
    while (is_digit(*s)) {
        v = v * 10 + (*s++ - '0');
        if (v > max)
            return -1;
    }
    *sp = s;
    *out = v;
    return 0;
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static int parse_abbr(const char **sp)
{
    const char *s = *sp, *b;
    if (*s == '<') {
        for (b = ++s; is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-'; s++)
            ;
        if (*s != '>' || s - b < 3)
            return -1;
        *sp = s + 1;
        return 0;
    }
    for (b = s; is_alpha(*s); s++)
        ;
    if (s - b < 3)
        return -1;
    *sp = s;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh <= "max_h", as signed seconds. */
static int parse_hms(const char **sp, int max_h, int32_t *out)
{
    const char *s = *sp;
    int neg = *s == '-', h, ms[2] = {0, 0};
    if (*s == '-' || *s == '+')
        s++;
    if (parse_num(&s, max_h, &h) < 0)
        return -1;
    for (int i = 0; i < 2 && *s == ':'; i++) {
        s++;
        if (parse_num(&s, 59, &ms[i]) < 0)
            return -1;
    }
    *out = (neg ? -1 : 1) * (h * 3600 + ms[0] * 60 + ms[1]);
    *sp = s;
    return 0;
}

/* Jn, n or Mm.w.d, then an optional /time (default 02:00). */
static int parse_date(const char **sp, struct tz_date *d)
{
    const char *s = *sp;
    memset(d, 0, sizeof(*d));
    d->kind = *s == 'J' || *s == 'M' ? *s++ : 'N';
    if (d->kind == 'M') {
        if (parse_num(&s, 12, &d->month) < 0 || d->month < 1 || *s++ != '.' ||
            parse_num(&s, 5, &d->week) < 0 || d->week < 1 || *s++ != '.' ||
            parse_num(&s, 6, &d->wd) < 0)
            return -1;
    } else if (parse_num(&s, 365, &d->day) < 0 || (d->kind == 'J' && d->day < 1)) {
        return -1;
    }
    d->time = 7200;
    if (*s == '/') {
        s++;
        if (parse_hms(&s, MAX_RULE_H, &d->time) < 0)
            return -1;
    }
    *sp = s;
    return 0;
}

/*
 * Parse the whole string "s" as "std offset [dst [offset] [,start[/time],end[/time]]]".
 * A DST name without a rule gets the US rule M3.2.0,M11.1.0. Returns 0 or -1.
 */
static int parse_posix(const char *s, struct tz_rule *r)
{
    int32_t v;
    memset(r, 0, sizeof(*r));
    if (parse_abbr(&s) < 0 || parse_hms(&s, 24, &v) < 0)
        return -1;
    r->std_off = r->dst_off = -v;
    if (*s == '\0')
        return 0;
    if (parse_abbr(&s) < 0)
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (parse_hms(&s, 24, &v) < 0)
            return -1;
        r->dst_off = -v;
    }
    if (*s == '\0')
        s = ",M3.2.0,M11.1.0";
    if (*s++ != ',' || parse_date(&s, &r->start) < 0 || *s++ != ',' ||
        parse_date(&s, &r->end) < 0 || *s != '\0')
        return -1;
    return 0;
}

/* Days since the epoch of the local date on which "d" falls in "year". */
static int64_t rule_day(const struct tz_date *d, int64_t year)
{
    if (d->kind == 'J') /* J60 is March 1 in every year */
        return days_from_ymd(year, d->day >= 60 ? 3 : 1, d->day >= 60 ? d->day - 59 : d->day);
    if (d->kind == 'N')
        return days_from_ymd(year, 1, 1) + d->day;
    int64_t first = days_from_ymd(year, d->month, 1);
    int64_t day = first + (d->wd - rota_weekday(first) + 7) % 7 + (d->week - 1) * 7;
    if (day >= days_from_ymd(year, d->month + 1, 1))
        day -= 7; /* week 5 means the last such weekday */
    return day;
}

/*
 * The offset rule "r" gives at "t": the latest change at or before "t" among the years
 * around it decides. Transition times may reach into the neighbouring year, hence the
 * window; when a year's end and the next year's start coincide, DST wins (all-year DST).
 */
static int32_t rule_offset(const struct tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y, best = INT64_MIN;
    int m, d, dst = 0;
    ymd_from_days(floor_div(t + r->std_off, DAY), &y, &m, &d);
    for (int64_t yy = y - 2; yy <= y + 1; yy++) {
        int64_t on = rule_day(&r->start, yy) * DAY + r->start.time - r->std_off;
        int64_t off = rule_day(&r->end, yy) * DAY + r->end.time - r->dst_off;
        if (off <= t && off > best) {
            best = off;
            dst = 0;
        }
        if (on <= t && on >= best) {
            best = on;
            dst = 1;
        }
    }
    return dst ? r->dst_off : r->std_off;
}

/* ---- TZif ---------------------------------------------------------------------------- */

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_time(const unsigned char *p, int size)
{
    if (size == 4)
        return (int32_t)be32(p);
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Check one header at "p" ("len" bytes left) and return its data block size in "*size". */
static int parse_header(const unsigned char *p, size_t len, int tsize, struct tzif_counts *c,
                        size_t *size)
{
    if (len < HEADER_SIZE || memcmp(p, "TZif", 4) != 0)
        return -EBADMSG;
    if (p[4] != '\0' && (p[4] < '2' || p[4] > '9'))
        return -EBADMSG;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->time > MAX_TIMES || c->type == 0 || c->type > MAX_TYPES || c->chars == 0 ||
        c->chars > MAX_CHARS || c->leap > MAX_LEAPS || (c->isut && c->isut != c->type) ||
        (c->isstd && c->isstd != c->type))
        return -EBADMSG;
    *size = (size_t)c->time * (size_t)(tsize + 1) + (size_t)c->type * 6 + c->chars +
            (size_t)c->leap * (size_t)(tsize + 4) + c->isstd + c->isut;
    if (len - HEADER_SIZE < *size)
        return -EBADMSG;
    return 0;
}

/* A zone block with room for "ntrans" transitions and a copy of "name". */
static struct rota_tz *tz_alloc(const char *name, size_t name_len, uint32_t ntrans)
{
    struct rota_tz *tz = calloc(1, sizeof(*tz) + (size_t)ntrans * 12 + name_len + 1);
    if (!tz)
        return NULL;
    tz->trans = (int64_t *)(void *)(tz + 1); /* sizeof(*tz) is a multiple of 8 */
    tz->off = (int32_t *)(void *)(tz->trans + ntrans);
    tz->name = memcpy(tz->off + ntrans, name, name_len);
    tz->ntrans = ntrans;
    return tz;
}

/* Validate the data block at "p" described by "c" and fill a new zone from it. */
static int parse_block(const unsigned char *p, const struct tzif_counts *c, int tsize,
                       const char *name, size_t name_len, struct rota_tz **out)
{
    const unsigned char *times = p, *idx = p + (size_t)c->time * tsize;
    const unsigned char *types = idx + c->time;
    const unsigned char *flags =
        types + (size_t)c->type * 6 + c->chars + (size_t)c->leap * (size_t)(tsize + 4);
    int32_t max = 0;

    for (uint32_t i = 0; i < c->type; i++) {
        int32_t off = (int32_t)be32(types + i * 6);
        if (off < -MAX_OFFSET || off > MAX_OFFSET || types[i * 6 + 4] > 1 ||
            types[i * 6 + 5] >= c->chars)
            return -EBADMSG;
        max = max_abs(max, off);
    }
    for (uint32_t i = 0; i < c->isstd + c->isut; i++)
        if (flags[i] > 1)
            return -EBADMSG;
    for (uint32_t i = 0; i < c->time; i++)
        if (idx[i] >= c->type || (i > 0 && be_time(times + (size_t)i * tsize, tsize) <=
                                               be_time(times + (size_t)(i - 1) * tsize, tsize)))
            return -EBADMSG;

    struct rota_tz *tz = tz_alloc(name, name_len, c->time);
    if (!tz)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->time; i++) {
        tz->trans[i] = be_time(times + (size_t)i * tsize, tsize);
        tz->off[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
    }
    tz->first_off = (int32_t)be32(types);
    tz->max_off = max;
    *out = tz;
    return 0;
}

/* Parse TZif data "buf" of "len" bytes into "*out". */
static int parse_tzif(const unsigned char *buf, size_t len, const char *name, size_t name_len,
                      struct rota_tz **out)
{
    struct tzif_counts c;
    size_t size, pos;
    int err = parse_header(buf, len, 4, &c, &size);
    if (err < 0)
        return err;
    pos = HEADER_SIZE + size;
    if (buf[4] == '\0') {
        if (pos != len)
            return -EBADMSG;
        return parse_block(buf + HEADER_SIZE, &c, 4, name, name_len, out);
    }

    err = parse_header(buf + pos, len - pos, 8, &c, &size);
    if (err < 0)
        return err;
    const unsigned char *block = buf + pos + HEADER_SIZE;
    pos += HEADER_SIZE + size;

    /* Footer: '\n', a POSIX TZ string (maybe empty), '\n', and nothing after it. */
    char footer[MAX_FOOTER + 1];
    size_t n = 0;
    if (pos >= len || buf[pos] != '\n')
        return -EBADMSG;
    for (pos++; pos < len && buf[pos] != '\n'; pos++) {
        if (n == MAX_FOOTER || buf[pos] == '\0')
            return -EBADMSG;
        footer[n++] = (char)buf[pos];
    }
    footer[n] = '\0';
    if (pos + 1 != len)
        return -EBADMSG;
    struct tz_rule rule;
    if (n > 0 && parse_posix(footer, &rule) < 0)
        return -EBADMSG;

    err = parse_block(block, &c, 8, name, name_len, out);
    if (err == 0 && n > 0) {
        (*out)->has_rule = 1;
        (*out)->rule = rule;
        (*out)->max_off = max_abs(max_abs((*out)->max_off, rule.std_off), rule.dst_off);
    }
    return err;
}

/* Read the regular file "path" into a new buffer. Directories count as missing. */
static int read_file(const char *path, unsigned char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOTDIR ? -ENOENT : -errno;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) < 0)
        err = -errno;
    else if (!S_ISREG(st.st_mode))
        err = -ENOENT;
    else if (st.st_size > MAX_FILE)
        err = -EBADMSG;
    size_t cap = err ? 0 : (size_t)st.st_size, got = 0;
    unsigned char *b = err ? NULL : malloc(cap + 1);
    if (!err && !b)
        err = -ENOMEM;
    while (!err && got <= cap) {
        ssize_t r = read(fd, b + got, cap + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = -errno;
        else if (r == 0)
            break;
        else
            got += (size_t)r;
    }
    close(fd);
    if (!err && got > cap)
        err = -EBADMSG; /* grew while we read it */
    if (err) {
        free(b);
        return err;
    }
    *buf = b;
    *len = got;
    return 0;
}

/* ---- public -------------------------------------------------------------------------- */

/* Only letters, digits, '_', '+', '-' and '/' may reach the file system. */
static int file_name_ok(const char *name)
{
    for (const char *p = name; *p; p++)
        if (!is_alpha(*p) && !is_digit(*p) && *p != '_' && *p != '+' && *p != '-' && *p != '/')
            return 0;
    return 1;
}

static int load_file(const char *name, size_t name_len, struct rota_tz **out)
{
    const char *dir = getenv("ROTA_ZONEINFO");
    char path[PATH_MAX];
    if (!dir || !*dir)
        dir = ROTA_TZ_DEFAULT_DIR;
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    unsigned char *buf = NULL;
    size_t len = 0;
    int err = read_file(path, &buf, &len);
    if (err < 0)
        return err;
    err = parse_tzif(buf, len, name, name_len, out);
    free(buf);
    return err;
}

int rota_tz_parse(const void *buf, size_t len, const char *name, struct rota_tz **out)
{
    if (!buf || !name || !out)
        return -EINVAL;
    return parse_tzif(buf, len, name, strlen(name), out);
}

int rota_tz_load(const char *name, struct rota_tz **out)
{
    if (!name || !out)
        return -EINVAL;
    size_t len = strnlen(name, ROTA_TZ_NAME_MAX + 1);
    if (len == 0 || len > ROTA_TZ_NAME_MAX || name[0] == '/' || strstr(name, ".."))
        return -EINVAL;
    int as_file = file_name_ok(name);
    if (as_file) {
        int err = load_file(name, len, out);
        if (err != -ENOENT)
            return err;
    }
    struct tz_rule rule;
    if (parse_posix(name, &rule) < 0)
        return as_file ? -ENOENT : -EINVAL;
    struct rota_tz *tz = tz_alloc(name, len, 0);
    if (!tz)
        return -ENOMEM;
    tz->first_off = rule.std_off;
    tz->has_rule = 1;
    tz->rule = rule;
    tz->max_off = max_abs(max_abs(0, rule.std_off), rule.dst_off);
    *out = tz;
    return 0;
}

void rota_tz_free(struct rota_tz *tz)
{
    free(tz);
}

const char *rota_tz_name(const struct rota_tz *tz)
{
    return tz->name;
}

int32_t rota_tz_offset(const struct rota_tz *tz, int64_t utc_sec)
{
    int64_t t = clamp_sec(utc_sec);
    uint32_t n = tz->ntrans;
    if (n == 0 || t < tz->trans[0])
        return n == 0 && tz->has_rule ? rule_offset(&tz->rule, t) : tz->first_off;
    uint32_t lo = 0, hi = n - 1; /* trans[lo] <= t; find the last such index */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == n - 1 && tz->has_rule)
        return rule_offset(&tz->rule, t);
    return tz->off[lo];
}

void rota_tz_to_civil(const struct rota_tz *tz, int64_t utc_sec, struct rota_civil *out)
{
    int64_t t = clamp_sec(utc_sec);
    int64_t local = t + rota_tz_offset(tz, t);
    int64_t days = floor_div(local, DAY), sod = local - days * DAY, y;
    ymd_from_days(days, &y, &out->month, &out->day);
    out->year = (int)y;
    out->hour = (int)(sod / 3600);
    out->min = (int)(sod / 60 % 60);
    out->sec = (int)(sod % 60);
}

/*
 * Every instant u with u + offset(u) == local lies within max_off of "local". Probe the
 * offsets at both ends of that window: a candidate is valid when the offset at it is the
 * one it was computed with. Two valid candidates are an overlap (take the earlier), none
 * is a gap (keep the offset from before it, moving the wall clock forward). This assumes
 * at most one offset change inside the window, as in real zones; otherwise the result is
 * still an instant near "local", not necessarily the earliest.
 */
int64_t rota_tz_from_civil(const struct rota_tz *tz, const struct rota_civil *local)
{
    int64_t l = days_from_ymd(local->year, local->month, local->day) * DAY +
                (int64_t)local->hour * 3600 + (int64_t)local->min * 60 + local->sec;
    l = clamp_sec(l);
    int32_t before = rota_tz_offset(tz, l - tz->max_off);
    int32_t after = rota_tz_offset(tz, l + tz->max_off);
    int64_t ub = l - before, ua = l - after;
    int ok_b = rota_tz_offset(tz, ub) == before, ok_a = rota_tz_offset(tz, ua) == after;
    if (ok_b && ok_a)
        return ub < ua ? ub : ua;
    if (ok_a)
        return ua;
    return ub;
}
