/*
 * test_tz.c - rota_tz against glibc's localtime_r, DST edges, calendar helpers, bad input.
 *
 * DESIGN
 * glibc is the reference: each test sets TZ and calls tzset in this process only, then
 * compares rota_tz_offset and rota_tz_to_civil with localtime_r at many instants from 1975
 * to 2090 and at both sides of every transition it finds. Broken zone files are written to
 * a temporary directory that $ROTA_ZONEINFO points at for the duration of one test. Runs
 * single-threaded except test_tz_concurrent_readers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tz.h"

#define HOUR 3600
#define DAY  86400

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    return rota_days_from_civil(y, mo, d) * DAY + h * HOUR + mi * 60 + s;
}

static void glibc_zone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static long glibc_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(localtime_r(&tt, &tm));
    return tm.tm_gmtoff;
}

/* Compare one instant with glibc and check the civil round trip; returns mismatches. */
static int check(const struct rota_tz *tz, int64_t t, int *printed)
{
    time_t tt = (time_t)t;
    struct tm tm;
    struct rota_civil c, back;
    int bad = 0;
    assert_non_null(localtime_r(&tt, &tm));
    int32_t off = rota_tz_offset(tz, t);
    rota_tz_to_civil(tz, t, &c);
    if (off != tm.tm_gmtoff || c.year != tm.tm_year + 1900 || c.month != tm.tm_mon + 1 ||
        c.day != tm.tm_mday || c.hour != tm.tm_hour || c.min != tm.tm_min || c.sec != tm.tm_sec)
        bad++;
    /* Back to UTC: the same instant, or the earlier one of an overlap. */
    int64_t r = rota_tz_from_civil(tz, &c);
    rota_tz_to_civil(tz, r, &back);
    if (r > t || memcmp(&c, &back, sizeof(c)) != 0 || (r < t && rota_tz_offset(tz, r) <= off))
        bad++;
    if (bad && (*printed)++ < 5)
        print_message("%s at %lld: rota %+d %04d-%02d-%02d %02d:%02d:%02d (back %lld), "
                      "glibc %+ld %04d-%02d-%02d %02d:%02d:%02d\n",
                      rota_tz_name(tz), (long long)t, off, c.year, c.month, c.day, c.hour,
                      c.min, c.sec, (long long)r, tm.tm_gmtoff, tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return bad;
}

/*
 * Compare zone "name" with glibc every 3h37m over a few 3-year windows,
 * about daily from 1975 to 2090, and at +-2 s of every transition found on the way.
 * Returns the number of transitions seen.
 */
static int compare_zone(const char *name)
{
    static const int dense[] = {1975, 2006, 2024, 2036, 2088};
    struct rota_tz *tz;
    int bad = 0, printed = 0, transitions = 0;
    assert_int_equal(rota_tz_load(name, &tz), 0);
    glibc_zone(name);
    for (size_t i = 0; i < sizeof(dense) / sizeof(dense[0]); i++) {
        int64_t end = utc(dense[i] + 3, 1, 1, 0, 0, 0);
        for (int64_t t = utc(dense[i], 1, 1, 0, 0, 0); t < end; t += 3 * HOUR + 37 * 60)
            bad += check(tz, t, &printed);
    }
    int64_t prev = utc(1975, 1, 1, 0, 0, 0), end = utc(2091, 1, 1, 0, 0, 0);
    long prev_off = glibc_offset(prev);
    for (int64_t t = prev + DAY + 37 * 60 + 13; t < end; t += DAY + 37 * 60 + 13) {
        long off = glibc_offset(t);
        bad += check(tz, t, &printed);
        if (off != prev_off) {
            int64_t lo = prev, hi = t;
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (glibc_offset(mid) == prev_off)
                    lo = mid;
                else
                    hi = mid;
            }
            for (int64_t d = -2; d <= 2; d++)
                bad += check(tz, hi + d, &printed);
            transitions++;
        }
        prev = t;
        prev_off = off;
    }
    rota_tz_free(tz);
    assert_int_equal(bad, 0);
    return transitions;
}

/* One zone against glibc; the state names it and bounds its transitions 1975..2090. */
struct zone_case {
    const char *name;
    int min_transitions, max_transitions;
};

static void zone_matches_glibc(void **state)
{
    const struct zone_case *z = *state;
    int n = compare_zone(z->name);
    if (n < z->min_transitions || n > z->max_transitions)
        fail_msg("%s: %d transitions", z->name, n);
}

/* Every zone in zone1970.tab, sampled every 23 days and some hours from 1975 to 2090. */
static void test_tz_all_zones_match_glibc(void **state)
{
    (void)state;
    FILE *f = fopen("/usr/share/zoneinfo/zone1970.tab", "r");
    if (!f)
        skip();
    char line[512];
    int zones = 0, bad = 0, printed = 0;
    while (fgets(line, sizeof(line), f)) {
        char *save, *name;
        if (line[0] == '#' || !strtok_r(line, "\t\n", &save) ||
            !strtok_r(NULL, "\t\n", &save) || !(name = strtok_r(NULL, "\t\n", &save)))
            continue;
        struct rota_tz *tz;
        assert_int_equal(rota_tz_load(name, &tz), 0);
        glibc_zone(name);
        for (int64_t t = utc(1975, 1, 1, 0, 0, 0); t < utc(2091, 1, 1, 0, 0, 0);
             t += 23 * DAY + 3 * HOUR + 17 * 60 + 11)
            bad += check(tz, t, &printed);
        rota_tz_free(tz);
        zones++;
    }
    fclose(f);
    assert_true(zones > 300);
    assert_int_equal(bad, 0);
}

static void test_tz_posix_rules_match_glibc(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        int min_transitions;
    } rules[] = {
        {"CET-1CEST,M3.5.0,M10.5.0/3", 230},
        {"XST5XDT,M3.2.0,M11.1.0", 230},
        {"<+03>-3", 0},
        {"<-0330>3:30", 0},
        {"AAA-5:30", 0},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", 230},         /* negative transition time */
        {"IST-2IDT,M3.4.4/26,M10.5.0", 230},              /* transition time past 24h */
        {"<+1030>-10:30<+11>-11:00,M10.1.0,M4.1.0", 230}, /* southern, half-hour DST */
        {"NZST-12NZDT,M9.5.0,M4.1.0/3", 230},
        {"XXX3YYY,J60/2,J300/1:30:15", 230}, /* Jn: Feb 29 never counted */
        {"XXX3YYY,59/2,300/2", 230},         /* n: Feb 29 counted */
        {"AAA+4:15:30BBB+3:15,M4.5.6/23:59:59,M9.1.1/0", 230},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        int n = compare_zone(rules[i].rule);
        if (n < rules[i].min_transitions)
            fail_msg("%s: %d transitions", rules[i].rule, n);
    }
}

static void test_tz_posix_rule_forms(void **state)
{
    (void)state;
    struct rota_tz *a, *b;
    /* A DST name without a rule gets the US rule. */
    assert_int_equal(rota_tz_load("AAA5BBB", &a), 0);
    assert_int_equal(rota_tz_load("AAA5BBB,M3.2.0,M11.1.0", &b), 0);
    for (int64_t t = utc(2020, 1, 1, 0, 0, 0); t < utc(2030, 1, 1, 0, 0, 0); t += 7777)
        assert_int_equal(rota_tz_offset(a, t), rota_tz_offset(b, t));
    assert_int_equal(rota_tz_offset(a, utc(2026, 7, 1, 0, 0, 0)), -4 * HOUR);
    assert_string_equal(rota_tz_name(a), "AAA5BBB");
    rota_tz_free(a);
    rota_tz_free(b);

    /*
     * DST all year (RFC 8536 3.3.1). glibc gets this wrong in the hours where the UTC year
     * differs from the local one, so it is checked here instead of against glibc.
     */
    assert_int_equal(rota_tz_load("EST5EDT,0/0,J365/25", &a), 0);
    for (int y = 1975; y < 2090; y++)
        for (int64_t d = -6 * HOUR; d <= 6 * HOUR; d += 1800)
            assert_int_equal(rota_tz_offset(a, utc(y, 1, 1, 0, 0, 0) + d), -4 * HOUR);
    assert_int_equal(rota_tz_offset(a, utc(2026, 7, 1, 0, 0, 0)), -4 * HOUR);
    rota_tz_free(a);

    assert_int_equal(rota_tz_load("<+0545>-5:45", &a), 0);
    assert_int_equal(rota_tz_offset(a, 0), 5 * HOUR + 45 * 60);
    assert_int_equal(rota_tz_offset(a, ROTA_TZ_MAX_SEC), 5 * HOUR + 45 * 60);
    rota_tz_free(a);

    static const char *const bad[] = {
        "AB5",
        "<AB>5",
        "ABC",
        "CET-25",
        "CET-1:60",
        "CET-1CEST,M3.5.0",
        "<+03-3",
        "CET-1CEST,M13.5.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "CET-1CEST,J0,J100",
        "CET-1CEST,366,100",
        "CET-1CEST,M3.5.0/168,M10.5.0",
        "CET-1CEST,M3.5.0,M10.5.0x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a = NULL;
        int err = rota_tz_load(bad[i], &a);
        if (err != -ENOENT && err != -EINVAL)
            fail_msg("%s loaded: %d", bad[i], err);
        assert_null(a);
    }
}

static void expect_from_civil(const struct rota_tz *tz, struct rota_civil in, int64_t want,
                              int hour_after, int min_after)
{
    int64_t got = rota_tz_from_civil(tz, &in);
    struct rota_civil c;
    if (got != want)
        fail_msg("%s %04d-%02d-%02d %02d:%02d: %lld, want %lld", rota_tz_name(tz), in.year,
                 in.month, in.day, in.hour, in.min, (long long)got, (long long)want);
    rota_tz_to_civil(tz, got, &c);
    assert_int_equal(c.hour, hour_after);
    assert_int_equal(c.min, min_after);
}

static void test_tz_from_civil_berlin_gap_and_overlap(void **state)
{
    (void)state;
    struct rota_tz *tz;
    assert_int_equal(rota_tz_load("Europe/Berlin", &tz), 0);
    /* 2026-03-29 02:00 CET -> 03:00 CEST. */
    expect_from_civil(tz, (struct rota_civil){2026, 3, 29, 1, 59, 0},
                      utc(2026, 3, 29, 0, 59, 0), 1, 59);
    expect_from_civil(tz, (struct rota_civil){2026, 3, 29, 2, 0, 0}, utc(2026, 3, 29, 1, 0, 0),
                      3, 0);
    expect_from_civil(tz, (struct rota_civil){2026, 3, 29, 2, 30, 0},
                      utc(2026, 3, 29, 1, 30, 0), 3, 30);
    expect_from_civil(tz, (struct rota_civil){2026, 3, 29, 3, 0, 0}, utc(2026, 3, 29, 1, 0, 0),
                      3, 0);
    /* 2026-10-25 03:00 CEST -> 02:00 CET: 02:xx happens twice, the first one wins. */
    expect_from_civil(tz, (struct rota_civil){2026, 10, 25, 2, 30, 0},
                      utc(2026, 10, 25, 0, 30, 0), 2, 30);
    expect_from_civil(tz, (struct rota_civil){2026, 10, 25, 2, 0, 0},
                      utc(2026, 10, 25, 0, 0, 0), 2, 0);
    expect_from_civil(tz, (struct rota_civil){2026, 10, 25, 3, 0, 0},
                      utc(2026, 10, 25, 2, 0, 0), 3, 0);
    expect_from_civil(tz, (struct rota_civil){2026, 10, 25, 1, 59, 59},
                      utc(2026, 10, 24, 23, 59, 59), 1, 59);
    rota_tz_free(tz);
}

static void test_tz_from_civil_new_york_gap_and_overlap(void **state)
{
    (void)state;
    struct rota_tz *tz;
    assert_int_equal(rota_tz_load("America/New_York", &tz), 0);
    /* 2026-03-08 02:00 EST -> 03:00 EDT. */
    expect_from_civil(tz, (struct rota_civil){2026, 3, 8, 2, 30, 0}, utc(2026, 3, 8, 7, 30, 0),
                      3, 30);
    expect_from_civil(tz, (struct rota_civil){2026, 3, 8, 1, 30, 0}, utc(2026, 3, 8, 6, 30, 0),
                      1, 30);
    expect_from_civil(tz, (struct rota_civil){2026, 3, 8, 3, 30, 0}, utc(2026, 3, 8, 7, 30, 0),
                      3, 30);
    /* 2026-11-01 02:00 EDT -> 01:00 EST. */
    expect_from_civil(tz, (struct rota_civil){2026, 11, 1, 1, 30, 0},
                      utc(2026, 11, 1, 5, 30, 0), 1, 30);
    expect_from_civil(tz, (struct rota_civil){2026, 11, 1, 2, 0, 0}, utc(2026, 11, 1, 7, 0, 0),
                      2, 0);
    expect_from_civil(tz, (struct rota_civil){2026, 11, 1, 0, 59, 59},
                      utc(2026, 11, 1, 4, 59, 59), 0, 59);
    rota_tz_free(tz);
}

static void test_tz_from_civil_normalises_fields(void **state)
{
    (void)state;
    struct rota_tz *tz;
    assert_int_equal(rota_tz_load("Asia/Tokyo", &tz), 0);
    int64_t jan1 = utc(2027, 1, 1, 0, 0, 0) - 9 * HOUR;
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2026, 13, 1, 0, 0, 0}), jan1);
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2026, 12, 32, 0, 0, 0}), jan1);
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2026, 12, 31, 24, 0, 0}),
                     jan1);
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2027, 1, 1, 1, -60, 0}), jan1);
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2027, 1, 1, 0, 0, 0}), jan1);
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2027, 0, 32, 0, 0, 0}), jan1);
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2028, -11, 1, 0, 0, 0}), jan1);
    assert_int_equal(rota_tz_from_civil(tz, &(struct rota_civil){2027, 3, 1, 0, 0, -1}),
                     utc(2027, 2, 28, 23, 59, 59) - 9 * HOUR);
    /* Extremes are clamped, never overflow. */
    struct rota_civil c;
    rota_tz_to_civil(tz, INT64_MAX, &c);
    assert_true(c.year > 1000000000);
    rota_tz_to_civil(tz, INT64_MIN, &c);
    assert_true(c.year < -1000000000);
    int64_t t = rota_tz_from_civil(tz, &(struct rota_civil){INT32_MAX, INT32_MAX, INT32_MAX,
                                                            INT32_MAX, INT32_MAX, INT32_MAX});
    assert_true(t <= ROTA_TZ_MAX_SEC);
    rota_tz_free(tz);
}

/* The next instant after "now" at "hour":00 local on a day "want" accepts. */
static int64_t next_reset(const struct rota_tz *tz, int64_t now, int hour,
                          int (*want)(int64_t days, int mday, int arg), int arg)
{
    struct rota_civil c;
    rota_tz_to_civil(tz, now, &c);
    for (int add = 0; add < 62; add++) {
        int64_t days = rota_days_from_civil(c.year, c.month, c.day + add);
        int y, m, d;
        rota_civil_from_days(days, &y, &m, &d);
        int64_t t = rota_tz_from_civil(tz, &(struct rota_civil){y, m, d, hour, 0, 0});
        if (t > now && want(days, d, arg))
            return t;
    }
    fail_msg("no reset");
    return 0;
}

static int any_day(int64_t days, int mday, int arg)
{
    (void)days, (void)mday, (void)arg;
    return 1;
}

static int on_weekday(int64_t days, int mday, int wd)
{
    (void)mday;
    return rota_weekday(days) == wd;
}

static int on_mday(int64_t days, int mday, int want)
{
    (void)days;
    return mday == want;
}

static void test_tz_reset_times(void **state)
{
    (void)state;
    struct rota_tz *la, *berlin, *tokyo;
    assert_int_equal(rota_tz_load("America/Los_Angeles", &la), 0);
    assert_int_equal(rota_tz_load("Europe/Berlin", &berlin), 0);
    assert_int_equal(rota_tz_load("Asia/Tokyo", &tokyo), 0);
    /* daily at 00:00 America/Los_Angeles, across the 23-hour day of 2026-03-08 */
    assert_int_equal(next_reset(la, utc(2026, 3, 8, 7, 59, 59), 0, any_day, 0),
                     utc(2026, 3, 8, 8, 0, 0));
    assert_int_equal(next_reset(la, utc(2026, 3, 8, 8, 0, 0), 0, any_day, 0),
                     utc(2026, 3, 9, 7, 0, 0));
    /* weekly sun 00:00 Europe/Berlin, before and after the spring change */
    assert_int_equal(next_reset(berlin, utc(2026, 3, 25, 12, 0, 0), 0, on_weekday, 0),
                     utc(2026, 3, 28, 23, 0, 0));
    assert_int_equal(next_reset(berlin, utc(2026, 3, 28, 23, 0, 0), 0, on_weekday, 0),
                     utc(2026, 4, 4, 22, 0, 0));
    /* monthly 1 00:00 Asia/Tokyo */
    assert_int_equal(next_reset(tokyo, utc(2026, 1, 31, 14, 59, 59), 0, on_mday, 1),
                     utc(2026, 1, 31, 15, 0, 0));
    assert_int_equal(next_reset(tokyo, utc(2026, 1, 31, 15, 30, 0), 0, on_mday, 1),
                     utc(2026, 2, 28, 15, 0, 0));
    rota_tz_free(la);
    rota_tz_free(berlin);
    rota_tz_free(tokyo);
}

static void test_tz_calendar_helpers(void **state)
{
    (void)state;
    int y, m, d;
    assert_int_equal(rota_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(rota_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(rota_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(rota_days_from_civil(2026, 3, 0), rota_days_from_civil(2026, 2, 28));
    assert_int_equal(rota_days_from_civil(2026, 14, 1), rota_days_from_civil(2027, 2, 1));
    assert_int_equal(rota_days_from_civil(2026, 0, 1), rota_days_from_civil(2025, 12, 1));
    rota_civil_from_days(-1, &y, &m, &d);
    assert_true(y == 1969 && m == 12 && d == 31);
    assert_int_equal(rota_weekday(0), 4);
    assert_int_equal(rota_weekday(-1), 3);
    assert_int_equal(rota_weekday(rota_days_from_civil(2026, 3, 29)), 0);
    assert_int_equal(rota_weekday(rota_days_from_civil(1600, 1, 1)), 6);
    assert_int_equal(rota_days_in_month(2024, 2), 29);
    assert_int_equal(rota_days_in_month(2026, 2), 28);
    assert_int_equal(rota_days_in_month(2100, 2), 28);
    assert_int_equal(rota_days_in_month(2000, 2), 29);
    assert_int_equal(rota_days_in_month(2026, 4), 30);
    assert_int_equal(rota_days_in_month(2026, 13), 31);
    assert_int_equal(rota_days_in_month(2026, 14), 28);
    /* Last Sunday of March 2026 and of October 2026, from the helpers alone. */
    int64_t last = rota_days_from_civil(2026, 3, rota_days_in_month(2026, 3));
    assert_int_equal(last - rota_weekday(last), rota_days_from_civil(2026, 3, 29));
    last = rota_days_from_civil(2026, 10, rota_days_in_month(2026, 10));
    assert_int_equal(last - rota_weekday(last), rota_days_from_civil(2026, 10, 25));
    /* Round trip and agreement with timegm across 1600..2400. */
    int64_t prev = rota_days_from_civil(1600, 1, 1) - 1;
    for (int64_t days = prev + 1; days < rota_days_from_civil(2400, 1, 1); days += 13) {
        rota_civil_from_days(days, &y, &m, &d);
        assert_int_equal(rota_days_from_civil(y, m, d), days);
        assert_true(m >= 1 && m <= 12 && d >= 1 && d <= rota_days_in_month(y, m));
        struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
        assert_int_equal((int64_t)timegm(&tm), days * DAY);
        assert_int_equal(tm.tm_wday, rota_weekday(days));
    }
}

static void test_tz_bad_names_are_einval(void **state)
{
    (void)state;
    char longname[ROTA_TZ_NAME_MAX + 2];
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    static const char *const bad[] = {
        "",      "../etc/passwd",   "/etc/localtime", "Europe/../Europe/Berlin",
        "..",    "Europe/Ber lin",  "Europe/Berlin;", "Europe\\Berlin",
        "./UTC", "Europe/Berlin\n", "Europe/.Berlin", "UTC*",
    };
    struct rota_tz *tz = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = rota_tz_load(bad[i], &tz);
        if (err != -EINVAL)
            fail_msg("\"%s\": %d", bad[i], err);
    }
    assert_int_equal(rota_tz_load(longname, &tz), -EINVAL);
    assert_int_equal(rota_tz_load(NULL, &tz), -EINVAL);
    assert_int_equal(rota_tz_load("UTC", NULL), -EINVAL);
    assert_null(tz);
}

static void test_tz_missing_zone_is_enoent(void **state)
{
    (void)state;
    static const char *const missing[] = {
        "Mars/Olympus_Mons", "Europe/Nowhere", "Nowhere", "Europe", "Europe/", "UTC/UTC",
    };
    struct rota_tz *tz = NULL;
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        int err = rota_tz_load(missing[i], &tz);
        if (err != -ENOENT)
            fail_msg("\"%s\": %d", missing[i], err);
    }
    assert_null(tz);
}

/* ---- hand-made zone files ------------------------------------------------------------- */

static char tmpdir[64];

static int tmpdir_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_tz.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("ROTA_ZONEINFO", tmpdir, 1);
    return 0;
}

static int tmpdir_teardown(void **state)
{
    (void)state;
    char cmd[128];
    unsetenv("ROTA_ZONEINFO");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_zone(const char *name, const void *buf, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static size_t read_zone(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    assert_true(n > 0 && n < cap);
    return n;
}

struct spec {
    int n; /* transitions */
    const int64_t *times;
    const unsigned char *idx;
    int ntypes;
    const int32_t *offs;
    const char *footer; /* written between the two newlines */
};

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *put_header(unsigned char *p, uint32_t ntime, uint32_t ntype)
{
    memcpy(p, "TZif3", 5);
    memset(p + 5, 0, 15);
    p += 20;
    p = put32(p, 0), p = put32(p, 0), p = put32(p, 0);
    p = put32(p, ntime), p = put32(p, ntype);
    return put32(p, 1);
}

/* A slim TZif v3 file as zic -b slim writes it: a minimal v1 block, then v2+ data. */
static size_t build(unsigned char *buf, const struct spec *s)
{
    unsigned char *p = put_header(buf, 0, 1);
    memset(p, 0, 7);
    p += 7;
    p = put_header(p, (uint32_t)s->n, (uint32_t)s->ntypes);
    for (int i = 0; i < s->n; i++) {
        p = put32(p, (uint32_t)((uint64_t)s->times[i] >> 32));
        p = put32(p, (uint32_t)s->times[i]);
    }
    for (int i = 0; i < s->n; i++)
        *p++ = s->idx[i];
    for (int i = 0; i < s->ntypes; i++) {
        p = put32(p, (uint32_t)s->offs[i]);
        *p++ = 0;
        *p++ = 0;
    }
    *p++ = '\0';
    p += sprintf((char *)p, "\n%s\n", s->footer);
    return (size_t)(p - buf);
}

static void test_tz_slim_file_uses_footer(void **state)
{
    (void)state;
    static const int64_t times[] = {946684800, 978307200}; /* 2000-01-01, 2001-01-01 */
    static const unsigned char idx[] = {1, 0};
    static const int32_t offs[] = {3600, 5 * HOUR};
    struct spec s = {2, times, idx, 2, offs, "CET-1CEST,M3.5.0,M10.5.0/3"};
    unsigned char buf[512];
    struct rota_tz *tz;
    write_zone("Slim", buf, build(buf, &s));
    assert_int_equal(rota_tz_load("Slim", &tz), 0);
    assert_int_equal(rota_tz_offset(tz, utc(1999, 7, 1, 0, 0, 0)), 3600);
    assert_int_equal(rota_tz_offset(tz, utc(2000, 7, 1, 0, 0, 0)), 5 * HOUR);
    assert_int_equal(rota_tz_offset(tz, utc(2001, 1, 1, 0, 0, 0)), 3600);
    rota_tz_free(tz);

    /* No transitions at all: the footer decides everything, like Europe/Berlin. */
    struct spec none = {0, NULL, NULL, 1, offs, "CET-1CEST,M3.5.0,M10.5.0/3"};
    write_zone("Slim", buf, build(buf, &none));
    assert_int_equal(rota_tz_load("Slim", &tz), 0);
    assert_string_equal(rota_tz_name(tz), "Slim");
    glibc_zone("Europe/Berlin");
    int printed = 0, bad = 0;
    for (int64_t t = utc(1997, 1, 1, 0, 0, 0); t < utc(2090, 1, 1, 0, 0, 0); t += 5 * DAY + 7)
        bad += check(tz, t, &printed);
    assert_int_equal(bad, 0);
    rota_tz_free(tz);

    /* An empty footer: the last transition's type holds forever. */
    struct spec bare = {2, times, idx, 2, offs, ""};
    write_zone("Bare", buf, build(buf, &bare));
    assert_int_equal(rota_tz_load("Bare", &tz), 0);
    assert_int_equal(rota_tz_offset(tz, utc(2060, 7, 1, 0, 0, 0)), 3600);
    rota_tz_free(tz);
}

static void test_tz_zoneinfo_dir_from_env(void **state)
{
    (void)state;
    unsigned char buf[8192];
    size_t len = read_zone("/usr/share/zoneinfo/Europe/Berlin", buf, sizeof(buf));
    struct rota_tz *tz;
    write_zone("Copy", buf, len);
    assert_int_equal(rota_tz_load("Copy", &tz), 0);
    rota_tz_free(tz);
    assert_int_equal(rota_tz_load("Europe/Berlin", &tz), -ENOENT);
    assert_int_equal(rota_tz_load("UTC0", &tz), 0); /* still a POSIX rule */
    rota_tz_free(tz);

    /* The version 1 part alone is a valid v1 file with 32-bit transitions. */
    size_t v1 = 44 + 0x8f * 5 + 9 * 6 + 0x12 + 9 + 9; /* this file's v1 header counts */
    assert_int_equal(buf[35], 0x8f);
    buf[4] = '\0';
    write_zone("V1", buf, v1);
    assert_int_equal(rota_tz_load("V1", &tz), 0);
    glibc_zone("Europe/Berlin");
    int printed = 0, bad = 0;
    for (int64_t t = utc(1920, 1, 1, 0, 0, 0); t < utc(2037, 1, 1, 0, 0, 0); t += DAY + 3)
        bad += check(tz, t, &printed);
    assert_int_equal(bad, 0);
    rota_tz_free(tz);
}

static void expect_badmsg(const char *what, const void *buf, size_t len)
{
    struct rota_tz *tz = NULL;
    write_zone("Bad", buf, len);
    int err = rota_tz_load("Bad", &tz);
    if (err != -EBADMSG)
        fail_msg("%s: %d", what, err);
    assert_null(tz);
}

static void test_tz_corrupt_files_are_ebadmsg(void **state)
{
    (void)state;
    unsigned char real[8192], buf[8192];
    size_t len = read_zone("/usr/share/zoneinfo/America/New_York", real, sizeof(real));
    for (size_t n = 0; n < len; n++)
        expect_badmsg("truncated", real, n);
    memcpy(buf, real, len);
    buf[len] = 'x';
    expect_badmsg("trailing byte", buf, len + 1);

    static const int64_t times[] = {100, 200, 300};
    static const unsigned char idx[] = {1, 0, 1};
    static const int32_t offs[] = {3600, 7200};
    struct spec s = {3, times, idx, 2, offs, "CET-1CEST,M3.5.0,M10.5.0/3"};
    size_t n = build(buf, &s);
    size_t v2 = 44 + 7, data = v2 + 44, types = data + 3 * 9;
    struct rota_tz *tz;
    write_zone("Good", buf, n);
    assert_int_equal(rota_tz_load("Good", &tz), 0);
    rota_tz_free(tz);

#define MUTATE(what, off, val)                                                                 \
    do {                                                                                       \
        memcpy(real, buf, n);                                                                  \
        real[off] = (unsigned char)(val);                                                      \
        expect_badmsg(what, real, n);                                                          \
    } while (0)
    MUTATE("bad magic", 0, 'X');
    MUTATE("bad v2 magic", v2 + 3, 'g');
    MUTATE("version 1", 4, '1');
    MUTATE("timecnt huge", v2 + 32, 0xff);
    MUTATE("timecnt off by one", v2 + 35, 4);
    MUTATE("typecnt zero", v2 + 39, 0);
    MUTATE("charcnt zero", v2 + 43, 0);
    MUTATE("isutcnt not typecnt", v2 + 23, 1);
    MUTATE("type index", data + 3 * 8 + 1, 2);
    MUTATE("descending", data + 15, 50);
    MUTATE("offset too large", types + 1, 0x7f);
    MUTATE("isdst 2", types + 4, 2);
    MUTATE("abbreviation index", types + 5, 1);
    MUTATE("footer start", types + 12 + 1, 'x');
    MUTATE("footer end", n - 1, 'x');
    MUTATE("footer rule", types + 12 + 2 + 4, 'x');
    MUTATE("footer NUL", types + 12 + 2 + 2, '\0');
#undef MUTATE

    char footer[400];
    memset(footer, 'A', sizeof(footer) - 1);
    footer[sizeof(footer) - 1] = '\0';
    s.footer = footer;
    expect_badmsg("long footer", buf, build(buf, &s));

    /* Random damage: any answer but a crash or a read out of bounds. */
    srand(7);
    n = read_zone("/usr/share/zoneinfo/Europe/Berlin", real, sizeof(real));
    for (int i = 0; i < 3000; i++) {
        memcpy(buf, real, n);
        for (int k = 0; k < 1 + i % 4; k++)
            buf[(size_t)rand() % n] = (unsigned char)rand();
        write_zone("Fuzz", buf, n);
        tz = NULL;
        int err = rota_tz_load("Fuzz", &tz);
        assert_true(err == 0 || err == -EBADMSG);
        if (err == 0) {
            for (int64_t t = -5000000000; t < 5000000000; t += 123456789) {
                struct rota_civil c;
                rota_tz_to_civil(tz, t, &c);
                rota_tz_from_civil(tz, &c);
            }
            rota_tz_free(tz);
        }
    }

    /* Not a regular file: a directory is a missing zone. */
    char path[256];
    snprintf(path, sizeof(path), "%s/Dir", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(rota_tz_load("Dir", &tz), -ENOENT);
}

/* ---- threads ------------------------------------------------------------------------- */

#define SAMPLES 4000

struct reader {
    const struct rota_tz *tz;
    const int64_t *t;
    const long *want;
    int bad;
};

static void *read_zone_offsets(void *arg)
{
    struct reader *r = arg;
    for (int rep = 0; rep < 5; rep++)
        for (int i = 0; i < SAMPLES; i++) {
            struct rota_civil c;
            rota_tz_to_civil(r->tz, r->t[i], &c);
            if (rota_tz_offset(r->tz, r->t[i]) != r->want[i] ||
                rota_tz_from_civil(r->tz, &c) > r->t[i])
                r->bad++;
        }
    return NULL;
}

static void test_tz_concurrent_readers(void **state)
{
    (void)state;
    static int64_t t[SAMPLES];
    static long want[2][SAMPLES];
    const char *names[2] = {"Europe/Berlin", "America/Los_Angeles"};
    struct rota_tz *tz[2];
    for (int z = 0; z < 2; z++) {
        assert_int_equal(rota_tz_load(names[z], &tz[z]), 0);
        glibc_zone(names[z]);
        for (int i = 0; i < SAMPLES; i++) {
            t[i] = utc(2020, 1, 1, 0, 0, 0) + (int64_t)i * (7 * DAY + 1234);
            want[z][i] = glibc_offset(t[i]);
        }
    }
    pthread_t th[8];
    struct reader r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct reader){tz[i % 2], t, want[i % 2], 0};
        assert_int_equal(pthread_create(&th[i], NULL, read_zone_offsets, &r[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < 8; i++) /* join all before any assertion may leave this frame */
        bad += pthread_join(th[i], NULL) != 0 || r[i].bad != 0;
    assert_int_equal(bad, 0);
    rota_tz_free(tz[0]);
    rota_tz_free(tz[1]);
}

#define ZONE_TEST(test, zone, lo, hi)                                                          \
    {                                                                                          \
        .name = #test, .test_func = zone_matches_glibc,                                        \
        .initial_state = &(struct zone_case){zone, lo, hi},                                    \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        ZONE_TEST(test_tz_utc_matches_glibc, "UTC", 0, 0),
        ZONE_TEST(test_tz_etc_utc_matches_glibc, "Etc/UTC", 0, 0),
        ZONE_TEST(test_tz_berlin_matches_glibc, "Europe/Berlin", 220, 232),
        ZONE_TEST(test_tz_new_york_matches_glibc, "America/New_York", 230, 234),
        ZONE_TEST(test_tz_los_angeles_matches_glibc, "America/Los_Angeles", 230, 232),
        ZONE_TEST(test_tz_lord_howe_matches_glibc, "Australia/Lord_Howe", 215, 222),
        ZONE_TEST(test_tz_kolkata_matches_glibc, "Asia/Kolkata", 0, 0),
        ZONE_TEST(test_tz_sao_paulo_matches_glibc, "America/Sao_Paulo", 60, 72),
        ZONE_TEST(test_tz_chatham_matches_glibc, "Pacific/Chatham", 225, 234),
        cmocka_unit_test(test_tz_all_zones_match_glibc),
        cmocka_unit_test(test_tz_posix_rules_match_glibc),
        cmocka_unit_test(test_tz_posix_rule_forms),
        cmocka_unit_test(test_tz_from_civil_berlin_gap_and_overlap),
        cmocka_unit_test(test_tz_from_civil_new_york_gap_and_overlap),
        cmocka_unit_test(test_tz_from_civil_normalises_fields),
        cmocka_unit_test(test_tz_reset_times),
        cmocka_unit_test(test_tz_calendar_helpers),
        cmocka_unit_test(test_tz_bad_names_are_einval),
        cmocka_unit_test(test_tz_missing_zone_is_enoent),
        cmocka_unit_test_setup_teardown(test_tz_slim_file_uses_footer, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_tz_zoneinfo_dir_from_env, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_tz_corrupt_files_are_ebadmsg, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test(test_tz_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
