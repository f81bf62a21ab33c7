/*
 * test_strategy.c - each selection strategy's choices, by distribution over seeded draws.
 *
 * DESIGN
 * rota_strategy_pick is pure: candidates, a tier's parameters and a generator in, an
 * index out. Each test fills a struct rota_shm_tier with the seed's parameters (top 3,
 * 60/40 quota/recency, jitter 0.05, 10% forced LRU, one-day horizon), builds candidates,
 * and checks what a user would see over many draws from fixed seeds: shares, which
 * candidates can and cannot be chosen, and the reason code. Single-threaded.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rota_codes.h"
#include "strategy.h"

#define SEC  1000000000ull
#define HOUR (3600 * SEC)
#define DAY  (86400 * SEC)
#define NOW  (400 * DAY) /* monotonic ns: the machine has been up for a while */

/* Fail unless |a - b| <= eps, in double (cmocka's assert_float_equal is float only). */
#define assert_near(a, b, eps) near_at((a), (b), (eps), __FILE__, __LINE__)
static void near_at(double a, double b, double eps, const char *file, int line)
{
    double d = a > b ? a - b : b - a;
    if (!(d <= eps)) {
        print_error("%.17g != %.17g (+-%g)\n", a, b, eps);
        _fail(file, line);
    }
}

#define DRAWS 10000
static const uint64_t seeds[] = {1, 42, 0x9e3779b97f4a7c15ull, 20240601, 7};
#define NSEEDS (sizeof(seeds) / sizeof(seeds[0]))

/* The seed's tier: hybrid 60/40, top 3, jitter 0.05, 10% forced LRU, one-day horizon. */
static struct rota_shm_tier tier_of(enum rota_strategy s, uint32_t nmembers)
{
    return (struct rota_shm_tier){
        .nmembers = nmembers,
        .strategy = (uint8_t)s,
        .top_k = 3,
        .sample = 8,
        .ceiling = 0.8f,
        .w_quota = 0.6f,
        .w_recency = 0.4f,
        .jitter = 0.05f,
        .lru_share = 0.10f,
        .recency_s = 86400,
    };
}

static struct rota_cand cand(uint32_t member, float left, uint64_t last_used)
{
    /* member, weight, left, gates, last_used, id */
    return (struct rota_cand){member, 1, left, 0, last_used, 1000 + member};
}

/* The seed's formula, in double: 0.6 * left + 0.4 * max(0, 1 - age / 1 day), 0 if never. */
static double formula(const struct rota_cand *c, uint64_t now)
{
    double recency = 0;
    if (c->last_used) {
        double age_s = c->last_used >= now ? 0 : (double)(now - c->last_used) / 1e9;
        recency = age_s < 86400 ? 1 - age_s / 86400 : 0;
    }
    return 0.6 * c->left + 0.4 * recency;
}

static void shuffle(struct rota_cand *c, uint32_t n, struct rota_rng *r)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rota_rng_below(r, i);
        struct rota_cand t = c[i - 1];
        c[i - 1] = c[j];
        c[j] = t;
    }
}

/*
 * Six candidates for the hybrid tests. Scores (0.6 left + 0.4 recency):
 *   0: 0.9233  1: 0.9150  2: 0.9113   the top three, within 1.3% of each other
 *   3: 0.6667                          more than 10% below the third
 *   4: 0.1800 (used 20 days ago)       5: 0.1200 (never used: the least recently used)
 */
static void six(struct rota_cand *c)
{
    c[0] = cand(0, 0.90f, NOW - 1 * HOUR);
    c[1] = cand(1, 0.90f, NOW - 3 * HOUR / 2);
    c[2] = cand(2, 0.88f, NOW - 1 * HOUR);
    c[3] = cand(3, 0.50f, NOW - 2 * HOUR);
    c[4] = cand(4, 0.30f, NOW - 20 * DAY);
    c[5] = cand(5, 0.20f, 0);
}

static void test_strategy_hybrid_score_matches_formula(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 1);
    const struct rota_cand cases[] = {
        cand(0, 1.0f, 0), /* never used: recency 0 */
        cand(0, 0.5f, 0),
        cand(0, 0.0f, NOW),              /* just used: recency 1 */
        cand(0, 0.25f, NOW - 12 * HOUR), /* half the horizon */
        cand(0, 0.75f, NOW - 6 * HOUR),
        cand(0, 0.8f, NOW - DAY),      /* exactly the horizon: recency 0 */
        cand(0, 0.8f, NOW - 30 * DAY), /* beyond: clamped to 0 */
        cand(0, 0.33f, NOW - 1),
        cand(0, 1.0f, 1), /* used once, long ago */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_near(rota_hybrid_score(&t, &cases[i], NOW), formula(&cases[i], NOW), 1e-5);

    /* Random candidates against the formula. */
    struct rota_rng r = {11};
    for (int i = 0; i < 10000; i++) {
        struct rota_cand c =
            cand(0, (float)rota_rng_unit(&r),
                 rota_rng_below(&r, 4) ? NOW - rota_rng_next(&r) % (2 * DAY) : 0);
        assert_near(rota_hybrid_score(&t, &c, NOW), formula(&c, NOW), 1e-5);
    }

    /* A last_used a little ahead of "now" (another process's clock) is "just used":
     * the score never exceeds w_quota * left + w_recency. */
    struct rota_cand ahead = cand(0, 0.5f, NOW + SEC);
    assert_near(rota_hybrid_score(&t, &ahead, NOW), 0.7, 1e-5);
}

static void test_strategy_hybrid_forced_lru_share(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 6);
    struct rota_cand c[6];
    six(c);
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
        unsigned forced = 0;
        for (int i = 0; i < DRAWS; i++) {
            uint32_t why = 0, k = rota_strategy_pick(&p, c, 6, &why);
            if (why == ROTA_WHY_FORCED_LRU) {
                forced++;
                assert_int_equal(k, 5); /* never used: the least recently used */
            } else {
                assert_int_equal(why, ROTA_WHY_SCORE);
            }
        }
        assert_in_range(forced, DRAWS * 8 / 100, DRAWS * 12 / 100);
    }
}

static void test_strategy_hybrid_forced_lru_is_oldest(void **state)
{
    /* With every candidate used, the forced pick is the one used longest ago, wherever
     * it sits in the array. */
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 8);
    struct rota_rng r = {3}, gen = {4};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW, .force = 1};
    for (int trial = 0; trial < 1000; trial++) {
        struct rota_cand c[8];
        uint32_t oldest = 0;
        for (uint32_t i = 0; i < 8; i++) {
            c[i] = cand(i, (float)rota_rng_unit(&gen), NOW - 1 - rota_rng_next(&gen) % DAY);
            if (c[i].last_used < c[oldest].last_used)
                oldest = i;
        }
        uint32_t why = 0;
        assert_int_equal(rota_strategy_pick(&p, c, 8, &why), oldest);
        assert_int_equal(why, ROTA_WHY_FORCED_LRU);
    }
}

static void test_strategy_hybrid_picks_among_top_three(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 6);
    struct rota_cand c[6];
    six(c);
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
        unsigned by_score[6] = {0}, scored = 0;
        for (int i = 0; i < DRAWS; i++) {
            uint32_t why = 0, k = rota_strategy_pick(&p, c, 6, &why);
            assert_in_range(k, 0, 5);
            if (why == ROTA_WHY_SCORE) {
                by_score[k]++;
                scored++;
            }
        }
        /* Never outside the top three; each of them reachable (their scores are within
         * the jitter), and the better the score the more often chosen. */
        assert_int_equal(by_score[3] + by_score[4] + by_score[5], 0);
        for (int k = 0; k < 3; k++)
            assert_true(by_score[k] > scored / 20);
        assert_true(by_score[0] > by_score[1]);
        assert_true(by_score[1] > by_score[2]);
    }
}

static void test_strategy_hybrid_fourth_best_never_by_score(void **state)
{
    /* Six candidates within 1% of each other, so the jitter could lift any of them: only
     * the three best are ever chosen by score, and each of those is. */
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 6);
    struct rota_cand c[6];
    static const uint32_t rank_of[6] = {4, 1, 5, 0, 3, 2}; /* c[i] is the rank_of[i]-th best */
    for (uint32_t i = 0; i < 6; i++)
        c[i] = cand(i, 0.90f - 0.002f * (float)rank_of[i], NOW - HOUR);
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW, .force = 2};
        unsigned n[6] = {0};
        for (int i = 0; i < DRAWS; i++) {
            uint32_t why = 0;
            n[rota_strategy_pick(&p, c, 6, &why)]++;
        }
        for (uint32_t i = 0; i < 6; i++)
            if (rank_of[i] < 3)
                assert_true(n[i] > DRAWS / 10);
            else
                assert_int_equal(n[i], 0);
    }
}

static void test_strategy_hybrid_order_of_candidates_is_irrelevant(void **state)
{
    /* The same six in any array order: still only the top three by score, and the
     * never-used one for the forced share. */
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 6);
    struct rota_rng r = {5}, gen = {6};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    unsigned top[3] = {0};
    for (int i = 0; i < DRAWS; i++) {
        struct rota_cand c[6];
        six(c);
        shuffle(c, 6, &gen);
        uint32_t why = 0, k = rota_strategy_pick(&p, c, 6, &why);
        if (why == ROTA_WHY_FORCED_LRU) {
            assert_int_equal(c[k].member, 5);
        } else {
            assert_int_equal(why, ROTA_WHY_SCORE);
            assert_in_range(c[k].member, 0, 2);
            top[c[k].member]++;
        }
    }
    for (int k = 0; k < 3; k++)
        assert_true(top[k] > DRAWS / 20);
}

static void test_strategy_hybrid_equal_scores_share_evenly(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 5);
    struct rota_cand c[5] = {
        cand(0, 0.7f, NOW - HOUR),    cand(1, 0.2f, NOW - HOUR), cand(2, 0.7f, NOW - HOUR),
        cand(3, 0.1f, NOW - 2 * DAY), cand(4, 0.7f, NOW - HOUR),
    };
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW, .force = 2};
        unsigned n[5] = {0};
        for (int i = 0; i < 3 * DRAWS; i++) {
            uint32_t why = 0;
            n[rota_strategy_pick(&p, c, 5, &why)]++;
            assert_int_equal(why, ROTA_WHY_SCORE);
        }
        assert_int_equal(n[1] + n[3], 0);
        assert_in_range(n[0], DRAWS * 90 / 100, DRAWS * 110 / 100);
        assert_in_range(n[2], DRAWS * 90 / 100, DRAWS * 110 / 100);
        assert_in_range(n[4], DRAWS * 90 / 100, DRAWS * 110 / 100);
    }
}

static void test_strategy_hybrid_jitter_cannot_lift_a_far_score(void **state)
{
    /* Three candidates, the third 13% below the best: the jitter (+-5%) can never make
     * it win, though it is in the top three. The second (1% below) still wins often. */
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 3);
    struct rota_cand c[3] = {
        cand(0, 0.90f, NOW), /* 0.94 */
        cand(1, 0.89f, NOW), /* 0.934 */
        cand(2, 0.70f, NOW), /* 0.82 */
    };
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW, .force = 2};
        unsigned n[3] = {0};
        for (int i = 0; i < DRAWS; i++) {
            uint32_t why = 0;
            n[rota_strategy_pick(&p, c, 3, &why)]++;
        }
        assert_int_equal(n[2], 0);
        assert_true(n[1] > DRAWS / 5);
        assert_true(n[0] > n[1]);
    }
}

static void test_strategy_hybrid_force_modes(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 6);
    struct rota_cand c[6];
    six(c);
    struct rota_rng r = {9};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW, .force = 1};
    for (int i = 0; i < DRAWS; i++) {
        uint32_t why = 0;
        assert_int_equal(rota_strategy_pick(&p, c, 6, &why), 5);
        assert_int_equal(why, ROTA_WHY_FORCED_LRU);
    }
    /* force = 2: the caller drew "by score"; no forced picks even with a 100% share. */
    t.lru_share = 1.0f;
    p.force = 2;
    for (int i = 0; i < DRAWS; i++) {
        uint32_t why = 0;
        assert_in_range(rota_strategy_pick(&p, c, 6, &why), 0, 2);
        assert_int_equal(why, ROTA_WHY_SCORE);
    }
}

static void test_strategy_hybrid_zero_share_never_forces(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 6);
    t.lru_share = 0;
    struct rota_cand c[6];
    six(c);
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
        for (int i = 0; i < DRAWS; i++) {
            uint32_t why = 0;
            assert_in_range(rota_strategy_pick(&p, c, 6, &why), 0, 2);
            assert_int_equal(why, ROTA_WHY_SCORE);
        }
    }
}

static void test_strategy_hybrid_fewer_than_k(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 2);
    struct rota_rng r = {13};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    struct rota_cand one = cand(0, 0.5f, NOW - HOUR);
    for (int i = 0; i < 1000; i++) {
        uint32_t why = 0;
        assert_int_equal(rota_strategy_pick(&p, &one, 1, &why), 0);
    }
    struct rota_cand two[2] = {cand(0, 0.5f, NOW - HOUR), cand(1, 0.51f, NOW - HOUR)};
    unsigned n[2] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint32_t why = 0, k = rota_strategy_pick(&p, two, 2, &why);
        assert_in_range(k, 0, 1);
        n[k]++;
    }
    assert_true(n[0] > DRAWS / 10 && n[1] > DRAWS / 10);
}

static void test_strategy_greedy_most_left_then_least_recent(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_GREEDY, 8);
    struct rota_rng r = {17};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    static const float lefts[] = {0.1f, 0.5f, 0.9f};
    for (int trial = 0; trial < DRAWS; trial++) {
        uint32_t n = 1 + rota_rng_below(&r, 8);
        struct rota_cand c[8];
        for (uint32_t i = 0; i < n; i++)
            c[i] = cand(i, lefts[rota_rng_below(&r, 3)],
                        rota_rng_below(&r, 5) ? NOW - HOUR * rota_rng_below(&r, 6) : 0);
        uint32_t why = 0, k = rota_strategy_pick(&p, c, n, &why);
        assert_int_equal(why, ROTA_WHY_GREEDY);
        assert_in_range(k, 0, n - 1);
        for (uint32_t i = 0; i < n; i++) {
            assert_true(c[i].left <= c[k].left);
            if (c[i].left == c[k].left)
                assert_true(c[k].last_used <= c[i].last_used);
        }
    }
    /* A fixed case: equal quota, the never-used one wins; then the older one. */
    struct rota_cand c[3] = {cand(0, 0.9f, NOW - HOUR), cand(1, 0.9f, 0),
                             cand(2, 0.9f, NOW - 2 * HOUR)};
    uint32_t why = 0;
    assert_int_equal(rota_strategy_pick(&p, c, 3, &why), 1);
    assert_int_equal(rota_strategy_pick(&p, c, 1, &why), 0);
    c[1].left = 0.5f;
    assert_int_equal(rota_strategy_pick(&p, c, 3, &why), 2);
}

/* Expected round-robin choice: the first present member at or after cursor % size. */
static uint32_t rr_expected(const bool *present, uint32_t size, uint32_t cursor)
{
    for (uint32_t d = 0; d < size; d++)
        if (present[(cursor % size + d) % size])
            return (cursor % size + d) % size;
    return UINT32_MAX;
}

static void test_strategy_round_robin_sweeps_all_positions(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_ROUND_ROBIN, 8);
    struct rota_rng r = {19};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    struct rota_cand c[8];
    for (uint32_t i = 0; i < 8; i++)
        c[i] = cand(i, 0.5f, 0);
    shuffle(c, 8, &r);
    unsigned seen[8] = {0};
    for (uint32_t cursor = 0; cursor < 8 * 100; cursor++) {
        p.cursor = cursor;
        uint32_t why = 0, k = rota_strategy_pick(&p, c, 8, &why);
        assert_int_equal(why, ROTA_WHY_ROUND_ROBIN);
        assert_int_equal(c[k].member, cursor % 8);
        seen[c[k].member]++;
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(seen[i], 100);
    /* The cursor wraps at 2^32 like any other value. */
    p.cursor = UINT32_MAX; /* UINT32_MAX % 8 == 7 */
    uint32_t why = 0;
    assert_int_equal(c[rota_strategy_pick(&p, c, 8, &why)].member, 7);
}

static void test_strategy_round_robin_skips_missing_members(void **state)
{
    struct rota_rng r = {23};
    for (int trial = 0; trial < 500; trial++) {
        uint32_t size = 2 + rota_rng_below(&r, 20), n = 0;
        struct rota_shm_tier t = tier_of(ROTA_STRAT_ROUND_ROBIN, size);
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
        bool present[22] = {false};
        struct rota_cand c[22];
        for (uint32_t m = 0; m < size; m++)
            if (rota_rng_below(&r, 2)) {
                present[m] = true;
                c[n++] = cand(m, 0.5f, 0);
            }
        if (n == 0) {
            present[size - 1] = true;
            c[n++] = cand(size - 1, 0.5f, 0);
        }
        shuffle(c, n, &r);
        for (uint32_t cursor = 0; cursor < 3 * size; cursor++) {
            p.cursor = cursor + (uint32_t)trial * size;
            uint32_t why = 0, k = rota_strategy_pick(&p, c, n, &why);
            assert_int_equal(c[k].member, rr_expected(present, size, p.cursor));
        }
    }
    /* A fixed case: members 0, 1, 3, 4, 6 of 8 present. */
    struct rota_shm_tier t = tier_of(ROTA_STRAT_ROUND_ROBIN, 8);
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    struct rota_cand c[5] = {cand(6, 0.5f, 0), cand(0, 0.5f, 0), cand(3, 0.5f, 0),
                             cand(4, 0.5f, 0), cand(1, 0.5f, 0)};
    static const uint32_t want[8] = {0, 1, 3, 3, 4, 6, 6, 0};
    for (uint32_t cursor = 0; cursor < 16; cursor++) {
        p.cursor = cursor;
        uint32_t why = 0;
        assert_int_equal(c[rota_strategy_pick(&p, c, 5, &why)].member, want[cursor % 8]);
    }
}

static void test_strategy_weighted_follows_weights(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_WEIGHTED, 4);
    struct rota_cand c[4];
    for (uint32_t i = 0; i < 4; i++) {
        c[i] = cand(i, 0.5f, 0);
        c[i].weight = i + 1;
    }
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
        unsigned n[4] = {0};
        for (int i = 0; i < 100000; i++) {
            uint32_t why = 0, k = rota_strategy_pick(&p, c, 4, &why);
            assert_int_equal(why, ROTA_WHY_WEIGHTED);
            assert_in_range(k, 0, 3);
            n[k]++;
        }
        for (unsigned i = 0; i < 4; i++) /* expected 10000 * weight, within 4% */
            assert_in_range(n[i], (i + 1) * 9600, (i + 1) * 10400);
    }
}

static void test_strategy_weighted_large_weights(void **state)
{
    /* Two maximal weights: the total does not overflow, the split stays even. */
    struct rota_shm_tier t = tier_of(ROTA_STRAT_WEIGHTED, 3);
    struct rota_cand c[3] = {cand(0, 0.5f, 0), cand(1, 0.5f, 0), cand(2, 0.5f, 0)};
    c[0].weight = UINT32_MAX;
    c[1].weight = UINT32_MAX;
    c[2].weight = UINT32_MAX / 2;
    struct rota_rng r = {29};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    unsigned n[3] = {0};
    for (int i = 0; i < 100000; i++) {
        uint32_t why = 0;
        n[rota_strategy_pick(&p, c, 3, &why)]++;
    }
    assert_in_range(n[0], 38000, 42000);
    assert_in_range(n[1], 38000, 42000);
    assert_in_range(n[2], 18000, 22000);
}

/* The id sticky chooses for "key" among "c[0..n)". */
static uint64_t sticky_id(const struct rota_cand *c, uint32_t n, uint64_t key)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_STICKY, n);
    struct rota_rng r = {1};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW, .key_hash = key};
    uint32_t why = 0, k = rota_strategy_pick(&p, c, n, &why);
    assert_int_equal(why, ROTA_WHY_STICKY);
    assert_in_range(k, 0, n - 1);
    return c[k].id;
}

#define KEYS 10000

static void sticky_accounts(struct rota_cand *c, uint32_t n, struct rota_rng *r)
{
    for (uint32_t i = 0; i < n; i++) {
        c[i] = cand(i, (float)rota_rng_unit(r), NOW - rota_rng_next(r) % DAY);
        c[i].id = rota_rng_next(r);
    }
}

static void test_strategy_sticky_same_key_same_account(void **state)
{
    struct rota_rng r = {31};
    struct rota_cand c[8];
    sticky_accounts(c, 8, &r);
    for (int i = 0; i < 1000; i++) {
        uint64_t key = rota_rng_next(&r) | 1;
        uint64_t id = sticky_id(c, 8, key);
        /* Again, with quota and recency changed (they must not matter) and in any order. */
        for (int again = 0; again < 5; again++) {
            struct rota_cand d[8];
            memcpy(d, c, sizeof(d));
            for (int j = 0; j < 8; j++) {
                d[j].left = (float)rota_rng_unit(&r);
                d[j].last_used = rota_rng_below(&r, 2) ? NOW - HOUR : 0;
            }
            shuffle(d, 8, &r);
            assert_true(sticky_id(d, 8, key) == id);
        }
    }
}

static void test_strategy_sticky_spreads_keys(void **state)
{
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_cand c[8];
        sticky_accounts(c, 8, &r);
        unsigned n[8] = {0};
        for (int i = 0; i < KEYS; i++) {
            uint64_t id = sticky_id(c, 8, rota_rng_next(&r) | 1);
            for (int j = 0; j < 8; j++)
                n[j] += c[j].id == id;
        }
        for (int j = 0; j < 8; j++) /* mean 1250, within 25% */
            assert_in_range(n[j], KEYS / 8 * 3 / 4, KEYS / 8 * 5 / 4);
    }
    /* Sequential ids and sequential keys spread as well. */
    struct rota_cand c[8];
    for (uint32_t i = 0; i < 8; i++)
        c[i] = cand(i, 0.5f, 0);
    unsigned n[8] = {0};
    for (uint64_t key = 1; key <= KEYS; key++)
        n[sticky_id(c, 8, key) - 1000]++;
    for (int j = 0; j < 8; j++)
        assert_in_range(n[j], KEYS / 8 * 3 / 4, KEYS / 8 * 5 / 4);
}

static void test_strategy_sticky_removal_moves_only_its_keys(void **state)
{
    static uint64_t keys[KEYS], before[KEYS];
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_cand c[9], less[8];
        sticky_accounts(c, 9, &r);
        for (int i = 0; i < KEYS; i++) {
            keys[i] = rota_rng_next(&r) | 1;
            before[i] = sticky_id(c, 9, keys[i]);
        }
        /* Remove one account (a different position each seed). */
        uint32_t gone = (uint32_t)s % 9, m = 0;
        for (uint32_t i = 0; i < 9; i++)
            if (i != gone)
                less[m++] = c[i];
        unsigned moved = 0, was_there = 0, got[9] = {0};
        for (int i = 0; i < KEYS; i++) {
            uint64_t after = sticky_id(less, 8, keys[i]);
            assert_true(after != c[gone].id);
            if (before[i] == c[gone].id) {
                was_there++;
                for (uint32_t j = 0; j < 9; j++)
                    got[j] += c[j].id == after;
            } else {
                assert_true(after == before[i]); /* every other key stays put */
            }
            moved += after != before[i];
        }
        assert_int_equal(moved, was_there);
        assert_true(was_there > 0);
        /* The orphaned keys spread over the others rather than piling onto one. */
        for (uint32_t j = 0; j < 9; j++)
            if (j != gone)
                assert_true(got[j] > was_there / 8 / 3);

        /* Putting it back: only keys that go to the returning account move. */
        for (int i = 0; i < KEYS; i++) {
            uint64_t back = sticky_id(c, 9, keys[i]), without = sticky_id(less, 8, keys[i]);
            assert_true(back == without || back == c[gone].id);
        }
    }
}

static void test_strategy_sticky_without_key_is_hybrid(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_STICKY, 6);
    struct rota_cand c[6];
    six(c);
    for (size_t s = 0; s < NSEEDS; s++) {
        struct rota_rng r = {seeds[s]};
        struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW, .key_hash = 0};
        unsigned forced = 0, top[3] = {0};
        for (int i = 0; i < DRAWS; i++) {
            uint32_t why = 0, k = rota_strategy_pick(&p, c, 6, &why);
            if (why == ROTA_WHY_FORCED_LRU) {
                assert_int_equal(k, 5);
                forced++;
            } else {
                assert_int_equal(why, ROTA_WHY_SCORE);
                assert_in_range(k, 0, 2);
                top[k]++;
            }
        }
        assert_in_range(forced, DRAWS * 8 / 100, DRAWS * 12 / 100);
        for (int k = 0; k < 3; k++)
            assert_true(top[k] > DRAWS / 20);
    }
}

static void test_strategy_lru_least_recent_never_used_first(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_LRU, 8);
    struct rota_rng r = {37};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    for (int trial = 0; trial < DRAWS; trial++) {
        uint32_t n = 1 + rota_rng_below(&r, 8);
        struct rota_cand c[8];
        for (uint32_t i = 0; i < n; i++)
            c[i] = cand(i, (float)rota_rng_unit(&r),
                        rota_rng_below(&r, 6) ? NOW - rota_rng_next(&r) % (3 * DAY) : 0);
        uint32_t why = 0, k = rota_strategy_pick(&p, c, n, &why);
        assert_int_equal(why, ROTA_WHY_LRU);
        assert_in_range(k, 0, n - 1);
        for (uint32_t i = 0; i < n; i++)
            assert_true(c[k].last_used <= c[i].last_used);
    }
    /* Never used beats used a long time ago, whatever the quota. */
    struct rota_cand c[3] = {cand(0, 1.0f, 1), cand(1, 0.0f, 0), cand(2, 1.0f, NOW)};
    uint32_t why = 0;
    assert_int_equal(rota_strategy_pick(&p, c, 3, &why), 1);
    c[1].last_used = NOW - HOUR;
    assert_int_equal(rota_strategy_pick(&p, c, 3, &why), 0);
}

static void test_strategy_fill_first_lowest_position(void **state)
{
    struct rota_shm_tier t = tier_of(ROTA_STRAT_FILL_FIRST, 32);
    struct rota_rng r = {41};
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    for (int trial = 0; trial < DRAWS; trial++) {
        struct rota_cand c[32];
        uint32_t n = 0, lowest = UINT32_MAX;
        for (uint32_t m = 0; m < 32; m++)
            if (rota_rng_below(&r, 3) == 0) {
                c[n++] = cand(m, (float)rota_rng_unit(&r), rota_rng_below(&r, 2) ? NOW : 0);
                lowest = m < lowest ? m : lowest;
            }
        if (n == 0)
            continue;
        shuffle(c, n, &r);
        uint32_t why = 0, k = rota_strategy_pick(&p, c, n, &why);
        assert_int_equal(why, ROTA_WHY_FILL_FIRST);
        assert_int_equal(c[k].member, lowest);
    }
}

/* Scores by which "s" ranks: hybrid score, or quota left for greedy. */
static float rank_key(const struct rota_shm_tier *t, const struct rota_cand *c)
{
    return t->strategy == ROTA_STRAT_GREEDY ? c->left : rota_hybrid_score(t, c, NOW);
}

static void check_rank(enum rota_strategy s, uint32_t n, uint32_t k, struct rota_rng *r)
{
    struct rota_shm_tier t = tier_of(s, n);
    struct rota_pick p = {.tier = &t, .rng = r, .now = NOW};
    struct rota_cand c[16];
    for (uint32_t i = 0; i < n; i++)
        c[i] = cand(i, (float)rota_rng_unit(r),
                    rota_rng_below(r, 5) ? NOW - rota_rng_next(r) % (2 * DAY) : 0);
    uint32_t out[8];
    float score[8];
    uint32_t want = n < k ? n : k;
    want = want > 8 ? 8 : want;
    uint32_t got = rota_strategy_rank(&p, c, n, k, out, score);
    assert_int_equal(got, want);
    bool used[16] = {false};
    for (uint32_t j = 0; j < got; j++) {
        assert_in_range(out[j], 0, n - 1);
        assert_false(used[out[j]]);
        used[out[j]] = true;
        assert_near(score[j], rank_key(&t, &c[out[j]]), 1e-6);
        if (j > 0)
            assert_true(score[j - 1] >= score[j]);
    }
    /* Nothing left out scores better than the last one in. */
    for (uint32_t i = 0; i < n; i++)
        if (!used[i] && got > 0)
            assert_true(rank_key(&t, &c[i]) <= score[got - 1]);
}

static void test_strategy_rank_best_first(void **state)
{
    struct rota_rng r = {43};
    for (int trial = 0; trial < 2000; trial++) {
        uint32_t n = 1 + rota_rng_below(&r, 16), k = 1 + rota_rng_below(&r, 8);
        check_rank(ROTA_STRAT_HYBRID, n, k, &r);
        check_rank(ROTA_STRAT_GREEDY, n, k, &r);
        check_rank(ROTA_STRAT_HYBRID, n, 3, &r);
        check_rank(ROTA_STRAT_HYBRID, 16, 8, &r); /* eight of many */
    }
    /* A fixed case: the six, k = 3, in score order 0, 1, 2. */
    struct rota_shm_tier t = tier_of(ROTA_STRAT_HYBRID, 6);
    struct rota_pick p = {.tier = &t, .rng = &r, .now = NOW};
    struct rota_cand c[6];
    six(c);
    uint32_t out[8];
    float score[8];
    assert_int_equal(rota_strategy_rank(&p, c, 6, 3, out, score), 3);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 2);
    assert_int_equal(rota_strategy_rank(&p, c, 6, 8, out, score), 6);
    assert_int_equal(out[3], 3);
    assert_int_equal(out[4], 4);
    assert_int_equal(out[5], 5);
    /* Greedy ranks by quota left only: 0 and 1 (0.90) before 2 (0.88). */
    t.strategy = ROTA_STRAT_GREEDY;
    assert_int_equal(rota_strategy_rank(&p, c, 6, 3, out, score), 3);
    assert_int_equal(out[2], 2);
    assert_near(score[0], 0.90, 1e-6);
    assert_near(score[2], 0.88, 1e-6);
}

static void test_strategy_names_round_trip(void **state)
{
    for (unsigned s = 0; s < ROTA_STRAT_COUNT; s++) {
        const char *name = rota_strategy_name(s);
        assert_non_null(name);
        assert_int_equal(rota_strategy_parse(name), (int)s);
        for (unsigned o = 0; o < s; o++)
            assert_string_not_equal(name, rota_strategy_name(o));
    }
    assert_string_equal(rota_strategy_name(ROTA_STRAT_HYBRID), "hybrid");
    assert_string_equal(rota_strategy_name(ROTA_STRAT_ROUND_ROBIN), "round-robin");
    assert_string_equal(rota_strategy_name(ROTA_STRAT_FILL_FIRST), "fill-first");
    assert_int_equal(rota_strategy_parse("sticky"), ROTA_STRAT_STICKY);
    assert_int_equal(rota_strategy_parse("nonesuch"), -EINVAL);
    assert_int_equal(rota_strategy_parse(""), -EINVAL);
    assert_int_equal(rota_strategy_parse("hybrid "), -EINVAL);
    assert_int_equal(rota_strategy_parse(NULL), -EINVAL);
    assert_string_not_equal(rota_strategy_name(ROTA_STRAT_COUNT), "hybrid");
    assert_int_not_equal(rota_strategy_parse(rota_strategy_name(ROTA_STRAT_COUNT)),
                         ROTA_STRAT_COUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strategy_hybrid_score_matches_formula),
        cmocka_unit_test(test_strategy_hybrid_forced_lru_share),
        cmocka_unit_test(test_strategy_hybrid_forced_lru_is_oldest),
        cmocka_unit_test(test_strategy_hybrid_picks_among_top_three),
        cmocka_unit_test(test_strategy_hybrid_fourth_best_never_by_score),
        cmocka_unit_test(test_strategy_hybrid_order_of_candidates_is_irrelevant),
        cmocka_unit_test(test_strategy_hybrid_equal_scores_share_evenly),
        cmocka_unit_test(test_strategy_hybrid_jitter_cannot_lift_a_far_score),
        cmocka_unit_test(test_strategy_hybrid_force_modes),
        cmocka_unit_test(test_strategy_hybrid_zero_share_never_forces),
        cmocka_unit_test(test_strategy_hybrid_fewer_than_k),
        cmocka_unit_test(test_strategy_greedy_most_left_then_least_recent),
        cmocka_unit_test(test_strategy_round_robin_sweeps_all_positions),
        cmocka_unit_test(test_strategy_round_robin_skips_missing_members),
        cmocka_unit_test(test_strategy_weighted_follows_weights),
        cmocka_unit_test(test_strategy_weighted_large_weights),
        cmocka_unit_test(test_strategy_sticky_same_key_same_account),
        cmocka_unit_test(test_strategy_sticky_spreads_keys),
        cmocka_unit_test(test_strategy_sticky_removal_moves_only_its_keys),
        cmocka_unit_test(test_strategy_sticky_without_key_is_hybrid),
        cmocka_unit_test(test_strategy_lru_least_recent_never_used_first),
        cmocka_unit_test(test_strategy_fill_first_lowest_position),
        cmocka_unit_test(test_strategy_rank_best_first),
        cmocka_unit_test(test_strategy_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
