/* test_parse_util: the parsers' shared helpers: observations, header lookup, Go durations,
 * RFC 3339 and HTTP dates, integers, times with fractions and retry hints, on good and
 * hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"
#include "parse_json.h"
#include "../probes/sample.h"

#define S  INT64_C(1000000000)
#define MS INT64_C(1000000)
/* 2025-11-24T16:00:00Z, the fixed arrival time of every answer here */
#define NOW (INT64_C(1764000000) * S)

static struct rota_http_in hdrs(const char *h)
{
    struct rota_http_in in = {429, h, strlen(h), "", 0, NOW};
    return in;
}

static void test_parse_util_obs_windows_and_texts(void **state)
{
    (void)state;
    struct rota_obs o;
    memset(&o, 0xa5, sizeof(o));
    rota_obs_init(&o);
    assert_int_equal(o.nwin, 0);
    assert_int_equal(o.problems, 0);
    assert_int_equal(o.retry_at, 0);
    assert_false(o.disable);
    assert_string_equal(o.detail, "");

    char longpool[200];
    memset(longpool, 'p', sizeof(longpool) - 1);
    longpool[sizeof(longpool) - 1] = 0;
    struct rota_obs_window *w = rota_obs_window_add(&o, longpool, "requests", 0);
    assert_non_null(w);
    assert_int_equal(strlen(w->pool), sizeof(w->pool) - 1);
    assert_string_equal(w->what, "requests");
    assert_false(w->has_limit);
    assert_int_equal(w->reset_at, 0);
    for (int i = 1; i < ROTA_OBS_WINDOWS; i++)
        assert_non_null(rota_obs_window_add(&o, NULL, "tokens", 1));
    assert_string_equal(o.win[5].pool, "");
    assert_int_equal(o.win[5].metric, 1);
    assert_int_equal(o.problems, 0);
    assert_null(rota_obs_window_add(&o, "", "seventeenth", 0));
    assert_int_equal(o.nwin, ROTA_OBS_WINDOWS);
    assert_int_equal(o.problems, 1);
    assert_non_null(strstr(o.problem, "seventeenth"));

    /* the first problem is kept, later ones only counted; control bytes and broken UTF-8
     * never reach the text */
    rota_obs_init(&o);
    rota_obs_problem(&o, "body: bad \"%s\"", "a\x01\xff\n");
    rota_obs_problem(&o, "second");
    assert_int_equal(o.problems, 2);
    assert_string_equal(o.problem, "body: bad \"a???\"");

    rota_obs_detail(&o, "429 %s", "tokens");
    rota_obs_detail(&o, "retry in %ds", 2);
    assert_string_equal(o.detail, "429 tokens; retry in 2s");
    for (int i = 0; i < 40; i++)
        rota_obs_detail(&o, "part %d", i);
    assert_int_equal(strlen(o.detail) < sizeof(o.detail), 1);
    assert_memory_equal(o.detail, "429 tokens; retry in 2s; part 0; part 1", 39);
    size_t len = strlen(o.detail);
    rota_obs_detail(&o, "more");
    assert_int_equal(strlen(o.detail), len);
}

static void test_parse_util_header_lookup(void **state)
{
    (void)state;
    char v[64];
    struct rota_http_in in = hdrs("HTTP/1.1 429 Too Many Requests\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Retry-After-Ms: 250\r\n"
                                  "RETRY-AFTER:2\r\n"
                                  "x-ratelimit-limit-requests :   500   \r\n"
                                  "X-Folded: first\r\n"
                                  "   second\r\n"
                                  "\tthird\r\n"
                                  "x-empty:\r\n"
                                  "x-twice: one\r\n"
                                  "x-twice: two\r\n"
                                  "x-last: end");
    assert_int_equal(rota_http_header(&in, "retry-after", v, sizeof(v)), 1);
    assert_string_equal(v, "2");
    assert_int_equal(rota_http_header(&in, "retry-after-ms", v, sizeof(v)), 3);
    assert_string_equal(v, "250");
    assert_int_equal(rota_http_header(&in, "X-RateLimit-Limit-Requests", v, sizeof(v)), 3);
    assert_string_equal(v, "500");
    assert_int_equal(rota_http_header(&in, "x-folded", v, sizeof(v)), 18);
    assert_string_equal(v, "first second third");
    assert_int_equal(rota_http_header(&in, "x-empty", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    assert_int_equal(rota_http_header(&in, "x-twice", v, sizeof(v)), 3);
    assert_string_equal(v, "one");
    assert_int_equal(rota_http_header(&in, "x-last", v, sizeof(v)), 3);
    assert_string_equal(v, "end");
    /* absent names, and names that are only a prefix or a longer form of one present */
    assert_int_equal(rota_http_header(&in, "retry", v, sizeof(v)), -1);
    assert_int_equal(rota_http_header(&in, "x-ratelimit-limit", v, sizeof(v)), -1);
    assert_int_equal(rota_http_header(&in, "content-type-x", v, sizeof(v)), -1);
    assert_int_equal(rota_http_header(&in, "second", v, sizeof(v)), -1);
    assert_int_equal(rota_http_header(&in, "HTTP/1.1 429 Too Many Requests", v, sizeof(v)), -1);
    assert_int_equal(rota_http_header(&in, "", v, sizeof(v)), -1);
    /* a value longer than cap - 1 is absent */
    assert_int_equal(rota_http_header(&in, "content-type", v, 17), 16);
    assert_int_equal(rota_http_header(&in, "content-type", v, 16), -1);
    assert_int_equal(rota_http_header(&in, "content-type", v, 0), -1);

    /* bare LF, a block cut mid-line, NUL bytes: read by length only */
    static const char raw[] = "a: 1\nretry-after: 7\0junk\nb:\t 2 \t\nc: 3";
    struct rota_http_in in2 = {429, raw, sizeof(raw) - 1, NULL, 0, NOW};
    assert_int_equal(rota_http_header(&in2, "a", v, sizeof(v)), 1);
    assert_string_equal(v, "1");
    assert_int_equal(rota_http_header(&in2, "retry-after", v, sizeof(v)), -1);
    assert_int_equal(rota_http_header(&in2, "b", v, sizeof(v)), 1);
    assert_string_equal(v, "2");
    in2.headers_len = sizeof(raw) - 2; /* "c: " without its value */
    assert_int_equal(rota_http_header(&in2, "c", v, sizeof(v)), 0);
    in2.headers_len = 2; /* "a:" */
    assert_int_equal(rota_http_header(&in2, "a", v, sizeof(v)), 0);
    in2.headers_len = 1;
    assert_int_equal(rota_http_header(&in2, "a", v, sizeof(v)), -1);
    in2.headers = NULL;
    assert_int_equal(rota_http_header(&in2, "a", v, sizeof(v)), -1);
}

static void test_parse_util_header_from_sample(void **state)
{
    (void)state;
    struct sample s;
    assert_int_equal(sample_load("util", "headers_only", &s), 0);
    assert_int_equal(s.status, 503);
    assert_int_equal(s.body_len, 0);
    struct rota_http_in in = {s.status, s.headers, s.headers_len, s.body, s.body_len, NOW};
    char v[64];
    assert_int_equal(rota_http_header(&in, "retry-after", v, sizeof(v)), 2);
    assert_string_equal(v, "30");
    assert_int_equal(rota_http_retry_at(&in, NULL), NOW + 30 * S);
    sample_free(&s);
    assert_int_equal(sample_load("util", "no_such_sample", &s), -ENOENT);
}

static void expect_dur(const char *s, bool bare, int64_t ns)
{
    uint64_t v = 12345;
    int rc = rota_parse_go_duration(s, bare, &v);
    if (ns < 0) {
        if (rc != -EINVAL)
            fail_msg("\"%s\" should be refused, got %d (%llu)", s, rc, (unsigned long long)v);
        assert_int_equal(v, 12345);
    } else {
        if (rc != 0 || v != (uint64_t)ns)
            fail_msg("\"%s\": rc %d, %llu ns, want %lld", s, rc, (unsigned long long)v,
                     (long long)ns);
    }
}

static void test_parse_util_go_duration(void **state)
{
    (void)state;
    expect_dur("1s", false, S);
    expect_dur("6m0s", false, 360 * S);
    expect_dur("20ms", false, 20 * MS);
    expect_dur("150us", false, 150000);
    expect_dur("150\xc2\xb5s", false, 150000);
    expect_dur("3\xce\xbcs", false, 3000);
    expect_dur("7ns", false, 7);
    expect_dur("1h2m3.5s", false, 3723 * S + S / 2);
    expect_dur("1.78s", false, 1780 * MS);
    expect_dur("1.78s", true, 1780 * MS);
    expect_dur("1.78", true, 1780 * MS);
    expect_dur("60", true, 60 * S);
    expect_dur("0", false, 0);
    expect_dur("0", true, 0);
    expect_dur("0s", false, 0);
    expect_dur("+2s", false, 2 * S);
    expect_dur(".5s", false, S / 2);
    expect_dur("2.s", false, 2 * S);
    expect_dur("1.5h", false, 5400 * S);
    expect_dur("0.000000001s", false, 1);
    expect_dur("0.0000000019s", false, 2); /* below 1 ns is rounded up */
    expect_dur("149h50m20.17s", false, (149 * 3600 + 50 * 60 + 20) * S + 170 * MS);
    expect_dur("1m1m", false, 120 * S); /* Go adds repeated units */
    uint64_t v;
    assert_int_equal(rota_parse_go_duration("18446744073709551615ns", false, &v), 0);
    assert_true(v == UINT64_MAX);
    expect_dur("18446744073709551616ns", false, -1);
    expect_dur("5124096h", false, -1); /* 1.8e22 ns */
    assert_int_equal(rota_parse_go_duration("5124095h34m33.709551615s", false, &v), 0);
    assert_true(v == UINT64_MAX);
    expect_dur("5124095h34m33.709551616s", false, -1);
    expect_dur("99999999999999999999999s", false, -1);
    expect_dur("-1s", false, -1);
    expect_dur("-1", true, -1);
    expect_dur("-0s", false, -1);
    expect_dur("1", false, -1); /* a unit is needed unless bare seconds are allowed */
    expect_dur("", false, -1);
    expect_dur("", true, -1);
    expect_dur("s", false, -1);
    expect_dur(".s", false, -1);
    expect_dur("1x", false, -1);
    expect_dur("1 s", false, -1);
    expect_dur(" 1s", false, -1);
    expect_dur("1s ", false, -1);
    expect_dur("1.2.3s", false, -1);
    expect_dur("1d", false, -1);
    expect_dur("1e3s", false, -1);
    expect_dur("1.78s.", true, -1);
    expect_dur("\xc2s", false, -1);
    assert_int_equal(rota_parse_go_duration(NULL, true, &v), -EINVAL);
}

static void expect_time(const char *s, int (*fn)(const char *, int64_t *), int64_t ns, bool ok)
{
    int64_t v = 777;
    int rc = fn(s, &v);
    if (!ok) {
        if (rc != -EINVAL || v != 777)
            fail_msg("\"%s\" should be refused, got %d (%lld)", s, rc, (long long)v);
    } else if (rc != 0 || v != ns) {
        fail_msg("\"%s\": rc %d, %lld, want %lld", s, rc, (long long)v, (long long)ns);
    }
}

#define RFC_OK(s, ns) expect_time(s, rota_parse_rfc3339, ns, true)
#define RFC_BAD(s)    expect_time(s, rota_parse_rfc3339, 0, false)

static void test_parse_util_rfc3339(void **state)
{
    (void)state;
    const int64_t t = INT64_C(1755780059) * S; /* 2025-08-21T12:40:59Z */
    RFC_OK("2025-08-21T12:40:59Z", t);
    RFC_OK("2025-08-21t12:40:59z", t);
    RFC_OK("2025-08-21 12:40:59Z", t);
    RFC_OK("2025-08-21T12:40:59", t); /* no zone: UTC */
    RFC_OK("2025-08-21T12:40:59.123Z", t + 123 * MS);
    RFC_OK("2025-08-21T12:40:59.000000001Z", t + 1);
    RFC_OK("2025-08-21T12:40:59.1234567891234Z", t + 123456790); /* below 1 ns: up */
    RFC_OK("2025-08-21T14:40:59.123+02:00", t + 123 * MS);
    RFC_OK("2025-08-21T07:10:59-05:30", t);
    RFC_OK("2025-08-21T12:40:59+00:00", t);
    RFC_OK("2025-08-21T12:40:59-00:00", t);
    RFC_OK("2026-04-01", INT64_C(1775001600) * S);
    RFC_OK("2026-04-01T00:00:00Z", INT64_C(1775001600) * S);
    RFC_OK("2024-02-29T00:00:00Z", INT64_C(1709164800) * S);
    RFC_OK("2024-02-29", INT64_C(1709164800) * S);
    RFC_OK("2000-02-29", INT64_C(951782400) * S);
    RFC_OK("1970-01-01T00:00:00Z", 0);
    RFC_OK("1969-12-31T23:59:59Z", -S);
    RFC_OK("2016-12-31T23:59:60Z", INT64_C(1483228800) * S); /* a leap second */
    RFC_OK("2262-04-11T23:47:16.854775807Z", INT64_MAX);
    RFC_BAD("2262-04-11T23:47:16.854775808Z");
    RFC_BAD("2262-04-11T23:47:17Z");
    RFC_BAD("9999-12-31T23:59:59Z");
    RFC_BAD("0000-01-01T00:00:00Z");
    RFC_BAD("2025-02-29");
    RFC_BAD("1900-02-29");
    RFC_BAD("2025-04-31");
    RFC_BAD("2025-13-01");
    RFC_BAD("2025-00-10");
    RFC_BAD("2025-01-00");
    RFC_BAD("2025-01-32");
    RFC_BAD("2025-08-21T24:00:00Z");
    RFC_BAD("2025-08-21T12:60:00Z");
    RFC_BAD("2025-08-21T12:40:61Z");
    RFC_BAD("2025-08-21T12:40:59+24:00");
    RFC_BAD("2025-08-21T12:40:59+02:60");
    RFC_BAD("2025-08-21T12:40:59+0200");
    RFC_BAD("2025-08-21T12:40:59+02");
    RFC_BAD("2025-08-21T12:40:59.Z");
    RFC_BAD("2025-08-21T12:40:59ZZ");
    RFC_BAD("2025-08-21T12:40:59Z ");
    RFC_BAD(" 2025-08-21T12:40:59Z");
    RFC_BAD("2025-08-21T12:40Z");
    RFC_BAD("2025-08-21T");
    RFC_BAD("2025-08-21X12:40:59Z");
    RFC_BAD("2025-8-21");
    RFC_BAD("25-08-21");
    RFC_BAD("20250821T124059Z");
    RFC_BAD("2025-08-2");
    RFC_BAD("2025-08-21T12:4");
    RFC_BAD("");
    RFC_BAD("\xff\xfe");
    int64_t v;
    assert_int_equal(rota_parse_rfc3339(NULL, &v), -EINVAL);
}

#define DATE_OK(s, ns) expect_time(s, rota_parse_http_date, ns, true)
#define DATE_BAD(s)    expect_time(s, rota_parse_http_date, 0, false)

static void test_parse_util_http_date(void **state)
{
    (void)state;
    const int64_t t = INT64_C(1445412480) * S; /* 2015-10-21T07:28:00Z */
    const int64_t t94 = INT64_C(784111777) * S;
    DATE_OK("Wed, 21 Oct 2015 07:28:00 GMT", t);
    DATE_OK("Sun, 06 Nov 1994 08:49:37 GMT", t94);
    DATE_OK("Sunday, 06-Nov-94 08:49:37 GMT", t94);
    DATE_OK("Sun Nov  6 08:49:37 1994", t94);
    DATE_OK("Sun Nov 16 08:49:37 1994", t94 + 10 * 86400 * S);
    DATE_OK("Thursday, 01-Jan-30 00:00:00 GMT", INT64_C(1893456000) * S);
    DATE_OK("Thu, 29 Feb 2024 00:00:00 GMT", INT64_C(1709164800) * S);
    DATE_OK("Mon, 21 oct 2015 07:28:00 GMT", t); /* day name not checked against the date */
    DATE_BAD("Wed, 21 Oct 2015 07:28:00 UTC");
    DATE_BAD("Wed, 21 Oct 2015 07:28:00");
    DATE_BAD("Wed, 21 Oct 2015 07:28:00 GMT ");
    DATE_BAD("Wed, 21 Oct 2015 7:28:00 GMT");
    DATE_BAD("Wed, 1 Oct 2015 07:28:00 GMT");
    DATE_BAD("Wed, 21 Okt 2015 07:28:00 GMT");
    DATE_BAD("Wed, 31 Nov 2015 07:28:00 GMT");
    DATE_BAD("Wed, 29 Feb 2015 07:28:00 GMT");
    DATE_BAD("Wed, 21 Oct 2015 25:28:00 GMT");
    DATE_BAD("Wed, 21 Oct 15 07:28:00 GMT");
    DATE_BAD("Xyz, 21 Oct 2015 07:28:00 GMT");
    DATE_BAD("Wed 21 Oct 2015 07:28:00 GMT");
    DATE_BAD("Wed, 21 Oct 2015 07:28:00 GMT\xff");
    DATE_BAD("Sun Nov  6 08:49:37 94");
    DATE_BAD("Sun Nov 6 08:49:37 1994");
    DATE_BAD("Wed, 21 Oct");
    DATE_BAD("2015-10-21T07:28:00Z");
    DATE_BAD("120");
    DATE_BAD("");
}

static void test_parse_util_u64(void **state)
{
    (void)state;
    uint64_t v = 9;
    assert_int_equal(rota_parse_u64("0", &v), 0);
    assert_true(v == 0);
    assert_int_equal(rota_parse_u64("007", &v), 0);
    assert_true(v == 7);
    assert_int_equal(rota_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rota_parse_u64("\"1500\"", &v), 0);
    assert_true(v == 1500);
    v = 9;
    static const char *const bad[] = {"18446744073709551616",
                                      "99999999999999999999999",
                                      "-1",
                                      "+1",
                                      "",
                                      "\"\"",
                                      "\"",
                                      "\"12",
                                      "12\"",
                                      " 12",
                                      "12 ",
                                      "1.0",
                                      "1e3",
                                      "0x10",
                                      "12abc",
                                      "\xef\xbc\x91"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rota_parse_u64(bad[i], &v) != -EINVAL || v != 9)
            fail_msg("\"%s\" should be refused", bad[i]);
    assert_int_equal(rota_parse_u64(NULL, &v), -EINVAL);
}

static void expect_retry(const char *h, int64_t at, uint32_t problems)
{
    struct rota_http_in in = hdrs(h);
    struct rota_obs o;
    rota_obs_init(&o);
    int64_t got = rota_http_retry_at(&in, &o);
    if (got != at || o.problems != problems)
        fail_msg("%s: got %lld (%u problems: %s), want %lld (%u)", h, (long long)got,
                 o.problems, o.problem, (long long)at, problems);
    assert_int_equal(o.retry_at, 0); /* the caller decides what to keep */
}

static void test_parse_util_retry_at(void **state)
{
    (void)state;
    expect_retry("", 0, 0);
    expect_retry("content-type: application/json\n", 0, 0);
    expect_retry("retry-after: 20\n", NOW + 20 * S, 0);
    expect_retry("Retry-After: 1.5\r\n", NOW + 1500 * MS, 0);
    expect_retry("retry-after: 0\n", NOW, 0);
    expect_retry("retry-after-ms: 250\nretry-after: 1\n", NOW + 250 * MS, 0);
    expect_retry("retry-after: 1\nretry-after-ms: 250.5\n", NOW + 250500000, 0);
    expect_retry("retry-after: Mon, 24 Nov 2025 16:01:00 GMT\n", NOW + 60 * S, 0);
    expect_retry("retry-after: Mon, 24 Nov 2025 15:00:00 GMT\n", NOW, 0); /* in the past */
    expect_retry("retry-after: 10\nretry-after: 99\n", NOW + 10 * S, 0);
    /* malformed hints are counted and the next one is tried */
    expect_retry("retry-after-ms: soon\nretry-after: 3\n", NOW + 3 * S, 1);
    expect_retry("retry-after-ms: -5\n", 0, 1);
    expect_retry("retry-after: -5\n", 0, 1);
    expect_retry("retry-after: 1e3\n", 0, 1);
    expect_retry("retry-after: \n", 0, 1);
    expect_retry("retry-after: 99999999999999999999999\n", 0, 1);
    expect_retry("retry-after: 9300000000\n", 0, 1); /* past the year 2262 */
    expect_retry("retry-after-ms: x\nretry-after: y\n", 0, 2);
    struct rota_http_in in = hdrs("retry-after: bad\n");
    assert_int_equal(rota_http_retry_at(&in, NULL), 0);
}

/* Times with a fraction finer than a ns round up, never down; exact ones stay exact. */
static void test_parse_util_fractions_round_up(void **state)
{
    (void)state;
    expect_dur("41s", false, 41 * S);
    expect_dur("41.000s", false, 41 * S);
    expect_dur("41.7s", false, 41 * S + 700 * MS);
    expect_dur("0.5s", false, S / 2);
    expect_dur("41.000000001s", false, 41 * S + 1);
    expect_dur("41.0000000001s", false, 41 * S + 1);
    expect_dur("41.0000000000000000000000001s", false, 41 * S + 1);
    expect_dur("41.0000000000", true, 41 * S);
    expect_dur("0.0000000001", true, 1);
    expect_dur("1.5ns", false, 2);
    expect_dur("0.0005us", false, 1);
    expect_dur("6m0.5s", false, 360 * S + 500 * MS);
    expect_dur("1.00000000001m", false, 60 * S + 1);         /* 0.6 ns */
    expect_dur("1.0000000000001h", false, 3600 * S + 1);     /* 0.36 ns */
    expect_dur("0.1666666666666666666666h", false, 600 * S); /* a hair under 600 s */
    expect_dur("0.9999999999s", false, S);
    /* rounding up may be what no longer fits */
    uint64_t v;
    assert_int_equal(rota_parse_go_duration("5124095h34m33.7095516150s", false, &v), 0);
    assert_true(v == UINT64_MAX);
    expect_dur("5124095h34m33.7095516151s", false, -1);

    const int64_t t = INT64_C(1796644800) * S; /* 2026-12-07T12:00:00Z */
    RFC_OK("2026-12-07T12:00:00.5Z", t + 500 * MS);
    RFC_OK("2026-12-07T12:00:00.000Z", t);
    RFC_OK("2026-12-07T12:00:00.5000000001Z", t + 500 * MS + 1);
    RFC_OK("2026-12-07T12:00:00.0000000000000001Z", t + 1);
    RFC_OK("2026-12-07T11:59:59.99999999999Z", t);
    RFC_OK("2026-12-07T13:00:00.0000000001+01:00", t + 1);
    RFC_OK("1969-12-31T23:59:59.0000000001Z", -S + 1);
    RFC_OK("2262-04-11T23:47:16.8547758070Z", INT64_MAX);
    RFC_BAD("2262-04-11T23:47:16.8547758071Z");

    expect_retry("retry-after: 41.7\n", NOW + 41 * S + 700 * MS, 0);
    expect_retry("retry-after: 41.0000000001\n", NOW + 41 * S + 1, 0);
    expect_retry("retry-after: 41.000\n", NOW + 41 * S, 0);
    expect_retry("retry-after-ms: 1.0000005\n", NOW + MS + 1, 0);
    expect_retry("retry-after-ms: 0.0000001\n", NOW + 1, 0); /* not "now" */
}

static void expect_decimal(const char *s, uint64_t unit, int64_t ns)
{
    uint64_t v = 12345;
    int rc = rota_parse_decimal_ns(s, unit, &v);
    if (ns < 0 ? rc != -EINVAL || v != 12345 : rc != 0 || v != (uint64_t)ns)
        fail_msg("\"%s\" of %llu ns: rc %d, %llu ns, want %lld", s, (unsigned long long)unit,
                 rc, (unsigned long long)v, (long long)ns);
}

/* rota_json_ns on the JSON text "text" in "unit"; -1 = refused. */
static void expect_json_ns(const char *text, uint64_t unit, int64_t ns)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    uint64_t v = 12345;
    assert_non_null(j);
    int rc = rota_json_ns(j, unit, &v);
    json_decref(j);
    if (ns < 0 ? rc != -EINVAL || v != 12345 : rc != 0 || v != (uint64_t)ns)
        fail_msg("%s of %llu ns: rc %d, %llu ns, want %lld", text, (unsigned long long)unit, rc,
                 (unsigned long long)v, (long long)ns);
}

static void test_parse_util_decimal_and_json_ns(void **state)
{
    (void)state;
    const int64_t epoch = INT64_C(1764003600) * S;
    expect_decimal("1764003600.5", S, epoch + 500 * MS);
    expect_decimal("1764003600", S, epoch);
    expect_decimal("1764003600.000", S, epoch);
    expect_decimal("1764003600.0000000001", S, epoch + 1);
    expect_decimal("1764003600000.25", MS, epoch + 250000);
    expect_decimal("0.0001", 1000, 1);
    expect_decimal(".5", S, S / 2);
    expect_decimal("2.", S, 2 * S);
    uint64_t v;
    assert_int_equal(rota_parse_decimal_ns("18446744073709551615", 1, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rota_parse_decimal_ns("18446744073709551614.01", 1, &v), 0);
    assert_true(v == UINT64_MAX);
    expect_decimal("18446744073709551615.01", 1, -1); /* rounded up past UINT64_MAX */
    expect_decimal("18446744073709551616", 1, -1);
    expect_decimal("18446744074", S, -1);
    static const char *const bad[] = {"",   ".",     "-1", "+1",     "1e3", " 1",
                                      "1 ", "1.2.3", "1s", "\"12\"", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_decimal(bad[i], S, -1);
    assert_int_equal(rota_parse_decimal_ns(NULL, S, &v), -EINVAL);

    /* integers and strings exactly; reals to the thousandth of the unit, rounded up, and a
     * real that stands for a whole thousandth (.3 is not a binary fraction) is that one */
    expect_json_ns("1764003600", S, epoch);
    expect_json_ns("\"1764003600.0000000001\"", S, epoch + 1);
    expect_json_ns("1764003600.0", S, epoch);
    expect_json_ns("1764003600.25", S, epoch + 250 * MS);
    expect_json_ns("1764003600.3", S, epoch + 300 * MS);
    expect_json_ns("1764003600.7", S, epoch + 700 * MS);
    expect_json_ns("1764003600.0004", S, epoch + MS);
    expect_json_ns("1764003600000.5", MS, epoch + 500000);
    expect_json_ns("1764003600000.001", MS, epoch + 1000);
    expect_json_ns("41.7", S, 41 * S + 700 * MS);
    expect_json_ns("0.0000001", S, MS);
    expect_json_ns("0", S, 0);
    expect_json_ns("0.0", S, 0);
    expect_json_ns("1e3", S, 1000 * S);
    expect_json_ns("9223372036", S, INT64_C(9223372036) * S);
    expect_json_ns("18446744074", S, -1);
    expect_json_ns("1e300", S, -1);
    expect_json_ns("-1", S, -1);
    expect_json_ns("-0.5", S, -1);
    expect_json_ns("\"-1\"", S, -1);
    expect_json_ns("\"soon\"", S, -1);
    expect_json_ns("true", S, -1);
    expect_json_ns("null", S, -1);
    expect_json_ns("[1]", S, -1);
    /* a unit the thousandths cannot divide is refused, not divided by zero */
    expect_json_ns("1.5", 500, -1);
    expect_json_ns("1.5", 1500, -1);
    expect_json_ns("1", 0, -1);

    /* a wait told in whole seconds is never shorter than it is */
    assert_int_equal(rota_ns_secs_up(41 * S + 700 * MS), 42);
    assert_int_equal(rota_ns_secs_up(41 * S), 41);
    assert_int_equal(rota_ns_secs_up(41 * S + 1), 42);
    assert_int_equal(rota_ns_secs_up(1), 1);
    assert_int_equal(rota_ns_secs_up(0), 0);
    assert_int_equal(rota_ns_secs_up(-S - S / 2), -1);
    assert_int_equal(rota_ns_secs_up(INT64_MAX), INT64_MAX / S + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_util_obs_windows_and_texts),
        cmocka_unit_test(test_parse_util_header_lookup),
        cmocka_unit_test(test_parse_util_header_from_sample),
        cmocka_unit_test(test_parse_util_go_duration),
        cmocka_unit_test(test_parse_util_rfc3339),
        cmocka_unit_test(test_parse_util_http_date),
        cmocka_unit_test(test_parse_util_u64),
        cmocka_unit_test(test_parse_util_retry_at),
        cmocka_unit_test(test_parse_util_fractions_round_up),
        cmocka_unit_test(test_parse_util_decimal_and_json_ns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
