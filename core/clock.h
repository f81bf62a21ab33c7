/*
 * clock.h - the two clocks rota reads.
 *
 * DESIGN
 * Monotonic nanoseconds (CLOCK_MONOTONIC, one clock for every process on the host) time
 * everything in the shared table: last use, cooldowns, breaker periods, GCRA arrival
 * times, the heartbeat. Wall-clock nanoseconds (CLOCK_REALTIME) only place quota resets on
 * the calendar and stamp observations. On Linux both are read through the vDSO, without
 * a system call. Policy functions never read a clock themselves: they take "now" as a
 * parameter, which is the seam where tests inject time.
 *
 * The select and report paths read CLOCK_MONOTONIC_COARSE (rota_clock_fast): the same
 * clock at tick resolution (4 ms here), for a few ns instead of ~25. Every use there is
 * safe with a clock that lags by up to a tick: GCRA admits less, never more, when "now"
 * is early; cooldowns and breaker periods end up to a tick late; recency and last-use
 * order are unaffected at that scale.
 */
#ifndef ROTA_CORE_CLOCK_H
#define ROTA_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define ROTA_NS_PER_S  1000000000ull
#define ROTA_NS_PER_MS 1000000ull

static inline uint64_t rota_clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * ROTA_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rota_clock_fast(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * ROTA_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline int64_t rota_clock_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * (int64_t)ROTA_NS_PER_S + ts.tv_nsec;
}

#endif
