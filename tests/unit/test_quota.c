/* test_quota: the seed's status thresholds, window arithmetic, and reset schedules across
 * DST changes, week and month ends, in real time zones. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "quota.h"
#include "tz.h"

static void test_quota_status_thresholds(void **state)
{
    (void)state;
    assert_int_equal(rota_quota_status(-1, 0.7, 0.8), ROTA_STATUS_UNKNOWN);
    assert_int_equal(rota_quota_status(0, 0.7, 0.8), ROTA_STATUS_HEALTHY);
    assert_int_equal(rota_quota_status(0.6999, 0.7, 0.8), ROTA_STATUS_HEALTHY);
    assert_int_equal(rota_quota_status(0.70, 0.7, 0.8), ROTA_STATUS_WARNING);
    assert_int_equal(rota_quota_status(0.7999, 0.7, 0.8), ROTA_STATUS_WARNING);
    assert_int_equal(rota_quota_status(0.80, 0.7, 0.8), ROTA_STATUS_CRITICAL);
    assert_int_equal(rota_quota_status(0.9999, 0.7, 0.8), ROTA_STATUS_CRITICAL);
    assert_int_equal(rota_quota_status(1.0, 0.7, 0.8), ROTA_STATUS_EXHAUSTED);
    assert_int_equal(rota_quota_status(3.5, 0.7, 0.8), ROTA_STATUS_EXHAUSTED);
    assert_string_equal(rota_quota_status_name(ROTA_STATUS_CRITICAL), "critical");
}

static void test_quota_window_fraction(void **state)
{
    (void)state;
    assert_true(rota_window_fraction(10, 0, 0, 0) < 0); /* no limit known */
    assert_float_equal(rota_window_fraction(50, 100, 0, 0), 0.5, 1e-12);
    /* 30 counted locally since the observation (counter 130, base 100). */
    assert_float_equal(rota_window_fraction(50, 100, 100, 130), 0.8, 1e-12);
    /* A counter behind its base (restarted) counts nothing locally. */
    assert_float_equal(rota_window_fraction(50, 100, 100, 20), 0.5, 1e-12);
}

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    return rota_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static struct rota_shm_reset sched(const char *text)
{
    struct rota_shm_reset r;
    char err[200];
    int rc = rota_quota_parse_reset(text, &r, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    return r;
}

static void test_quota_reset_simple_utc(void **state)
{
    (void)state;
    struct rota_shm_reset r = sched("minute");
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 11, 28, 10, 5) + 17),
                     utc(2026, 11, 28, 10, 6));
    r = sched("hourly :30");
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 11, 28, 10, 5)),
                     utc(2026, 11, 28, 10, 30));
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 11, 28, 10, 30)),
                     utc(2026, 11, 28, 11, 30)); /* strictly after */
    r = sched("daily 00:00");
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 12, 31, 23, 59)),
                     utc(2027, 1, 1, 0, 0));
    r = sched("rolling 5h");
    assert_int_equal(rota_quota_next_reset(&r, NULL, 1000), 1000 + 5 * 3600);
    r = sched("none");
    assert_int_equal(rota_quota_next_reset(&r, NULL, 1000), INT64_MAX);
}

static void test_quota_reset_weekly_sunday_and_week_end(void **state)
{
    (void)state;
    struct rota_shm_reset r = sched("weekly sun 00:00");
    /* Saturday 2026-11-28 -> Sunday 2026-11-29 00:00 UTC */
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 11, 28, 12, 0)),
                     utc(2026, 11, 29, 0, 0));
    /* Exactly at the reset: the next week's. */
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 11, 29, 0, 0)),
                     utc(2026, 12, 6, 0, 0));
    /* Across a year end: Thursday 2026-12-31 -> Sunday 2027-01-03. */
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 12, 31, 9, 0)),
                     utc(2027, 1, 3, 0, 0));
    r = sched("weekly Monday 09:30");
    assert_int_equal(r.wday, 1);
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 11, 30, 9, 29)),
                     utc(2026, 11, 30, 9, 30));
}

static void test_quota_reset_monthly_clamps_to_month_end(void **state)
{
    (void)state;
    struct rota_shm_reset r = sched("monthly 31 00:00");
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 1, 31, 0, 0)),
                     utc(2026, 2, 28, 0, 0));
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2028, 2, 1, 0, 0)),
                     utc(2028, 2, 29, 0, 0)); /* leap year */
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 4, 30, 0, 0)),
                     utc(2026, 5, 31, 0, 0));
    r = sched("monthly");
    assert_int_equal(rota_quota_next_reset(&r, NULL, utc(2026, 12, 15, 0, 0)),
                     utc(2027, 1, 1, 0, 0));
}

static void test_quota_reset_across_dst(void **state)
{
    (void)state;
    struct rota_tz *ny, *berlin, *la;
    assert_int_equal(rota_tz_load("America/New_York", &ny), 0);
    assert_int_equal(rota_tz_load("Europe/Berlin", &berlin), 0);
    assert_int_equal(rota_tz_load("America/Los_Angeles", &la), 0);

    /* Daily 00:00 Los Angeles over the spring-forward day (2026-03-08): 08:00 UTC
     * (PST), then 07:00 UTC (PDT): a 23-hour day. */
    struct rota_shm_reset r = sched("daily 00:00");
    int64_t a = rota_quota_next_reset(&r, la, utc(2026, 3, 7, 12, 0));
    assert_int_equal(a, utc(2026, 3, 8, 8, 0));
    int64_t b = rota_quota_next_reset(&r, la, a);
    assert_int_equal(b, utc(2026, 3, 9, 7, 0));
    assert_int_equal(b - a, 23 * 3600);

    /* Daily 02:30 New York on 2026-03-08: 02:30 does not exist; the wall clock is
     * carried forward to 03:30 EDT = 07:30 UTC. */
    r = sched("daily 02:30");
    assert_int_equal(rota_quota_next_reset(&r, ny, utc(2026, 3, 8, 5, 0)),
                     utc(2026, 3, 8, 7, 30));
    /* Daily 01:30 New York on 2026-11-01 happens twice: the earlier (EDT, 05:30 UTC). */
    r = sched("daily 01:30");
    assert_int_equal(rota_quota_next_reset(&r, ny, utc(2026, 11, 1, 4, 0)),
                     utc(2026, 11, 1, 5, 30));
    /* ... and once it has passed, the next day's, not the repeat an hour later. */
    assert_int_equal(rota_quota_next_reset(&r, ny, utc(2026, 11, 1, 5, 30)),
                     utc(2026, 11, 2, 6, 30));

    /* Weekly Sunday 00:00 Berlin: 2026-03-29 is the spring-forward Sunday (CET, 23:00
     * UTC the day before); the following Sunday is CEST (22:00 UTC the day before). */
    r = sched("weekly sun 00:00");
    assert_int_equal(rota_quota_next_reset(&r, berlin, utc(2026, 3, 27, 12, 0)),
                     utc(2026, 3, 28, 23, 0));
    assert_int_equal(rota_quota_next_reset(&r, berlin, utc(2026, 3, 28, 23, 0)),
                     utc(2026, 4, 4, 22, 0));
    /* Monthly 1st 00:00 Berlin across the October change. */
    r = sched("monthly 1 00:00");
    assert_int_equal(rota_quota_next_reset(&r, berlin, utc(2026, 10, 15, 0, 0)),
                     utc(2026, 10, 31, 23, 0));
    rota_tz_free(ny);
    rota_tz_free(berlin);
    rota_tz_free(la);
}

static void test_quota_parse_errors_say_where(void **state)
{
    (void)state;
    struct rota_shm_reset r;
    char err[200];
    static const struct {
        const char *text, *words;
    } bad[] = {
        {"fortnightly", "none, minute, hourly"},
        {"daily 25:00", "HH:MM"},
        {"daily 10:61", "HH:MM"},
        {"weekly funday", "weekday"},
        {"monthly 32", "1 to 31"},
        {"rolling", "duration"},
        {"rolling 0s", "duration"},
        {"hourly 30", ":MM"},
        {"daily 00:00 extra", "end of the schedule"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rota_quota_parse_reset(bad[i].text, &r, err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].words) || !strstr(err, "at character"))
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].text, err, bad[i].words);
    }
    assert_int_equal(rota_quota_parse_reset(NULL, &r, err, sizeof(err)), -EINVAL);
}

static void test_quota_parse_duration(void **state)
{
    (void)state;
    uint64_t ns;
    assert_int_equal(rota_parse_duration("250ms", &ns), 0);
    assert_int_equal(ns, 250000000ull);
    assert_int_equal(rota_parse_duration("1h30m", &ns), 0);
    assert_int_equal(ns, 5400000000000ull);
    assert_int_equal(rota_parse_duration("7d", &ns), 0);
    assert_int_equal(ns, 604800000000000ull);
    assert_int_equal(rota_parse_duration("1.5s", &ns), 0);
    assert_int_equal(ns, 1500000000ull);
    assert_int_equal(rota_parse_duration("", &ns), -EINVAL);
    assert_int_equal(rota_parse_duration("5", &ns), -EINVAL);
    assert_int_equal(rota_parse_duration("5x", &ns), -EINVAL);
    assert_int_equal(rota_parse_duration("-5s", &ns), -EINVAL);
    assert_int_equal(rota_parse_duration("99999999999d", &ns), -ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_status_thresholds),
        cmocka_unit_test(test_quota_window_fraction),
        cmocka_unit_test(test_quota_reset_simple_utc),
        cmocka_unit_test(test_quota_reset_weekly_sunday_and_week_end),
        cmocka_unit_test(test_quota_reset_monthly_clamps_to_month_end),
        cmocka_unit_test(test_quota_reset_across_dst),
        cmocka_unit_test(test_quota_parse_errors_say_where),
        cmocka_unit_test(test_quota_parse_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
