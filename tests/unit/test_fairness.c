/*
 * test_fairness.c - rota_gini on hand-computed sets, edge cases, and a pairwise reference.
 *
 * DESIGN
 * The reference is the definition, G = sum_i sum_j |x_i - x_j| / (2 n^2 mean), computed
 * in O(n^2) with exact integers where it fits; rota_gini must agree with it on seeded
 * random counts, whatever their order. Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fairness.h"
#include "rng.h"

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

/* Gini of a copy of "x" (rota_gini sorts its argument). */
static double gini_of(const uint64_t *x, size_t n)
{
    uint64_t c[64];
    assert_true(n <= 64);
    memcpy(c, x, n * sizeof(*x));
    return rota_gini(c, n);
}

/* The definition, with exact integer sums (values below 2^40, n <= 64). */
static double gini_pairwise(const uint64_t *x, size_t n)
{
    unsigned __int128 diff = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        for (size_t j = 0; j < n; j++)
            diff += x[i] > x[j] ? x[i] - x[j] : x[j] - x[i];
    }
    if (n < 2 || sum == 0)
        return 0;
    /* mean = sum / n, so G = diff / (2 n sum). */
    return (double)diff / (2.0 * (double)n * (double)sum);
}

static void test_fairness_equal_counts_are_zero(void **state)
{
    static const uint64_t values[] = {1, 7, 1000, 1ull << 40, UINT64_MAX / 64};
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++)
        for (size_t n = 2; n <= 64; n++) {
            uint64_t x[64];
            for (size_t i = 0; i < n; i++)
                x[i] = values[v];
            assert_near(rota_gini(x, n), 0.0, 1e-12);
        }
}

static void test_fairness_one_takes_all(void **state)
{
    for (size_t n = 2; n <= 64; n++)
        for (size_t at = 0; at < n; at += 1 + n / 5) {
            uint64_t x[64] = {0};
            x[at] = 12345;
            assert_near(rota_gini(x, n), (double)(n - 1) / (double)n, 1e-12);
        }
}

static void test_fairness_hand_computed(void **state)
{
    /* {1,2,3,4}: sum |xi - xj| over ordered pairs = 20; 2 n^2 mean = 2 * 16 * 2.5 = 80. */
    assert_near(gini_of((uint64_t[]){1, 2, 3, 4}, 4), 0.25, 1e-12);
    assert_near(gini_of((uint64_t[]){4, 1, 3, 2}, 4), 0.25, 1e-12);
    /* Scale does not matter. */
    assert_near(gini_of((uint64_t[]){20, 40, 60, 80}, 4), 0.25, 1e-12);
    /* {0,1}: 2 / (2 * 4 * 0.5) = 0.5. */
    assert_near(gini_of((uint64_t[]){0, 1}, 2), 0.5, 1e-12);
    /* {1,1,2}: 4 / (2 * 9 * 4/3) = 1/6. */
    assert_near(gini_of((uint64_t[]){1, 2, 1}, 3), 1.0 / 6, 1e-12);
    /* {0,0,1,1}: 8 / (2 * 16 * 0.5) = 0.5. */
    assert_near(gini_of((uint64_t[]){1, 0, 1, 0}, 4), 0.5, 1e-12);
    /* {1,3}: 4 / (2 * 4 * 2) = 0.25. */
    assert_near(gini_of((uint64_t[]){3, 1}, 2), 0.25, 1e-12);
    /* {0,0,0,1}: one of four takes all: 0.75. */
    assert_near(gini_of((uint64_t[]){0, 0, 1, 0}, 4), 0.75, 1e-12);
    /* {1,1,1,5}: 24 / (2 * 16 * 2) = 0.375. */
    assert_near(gini_of((uint64_t[]){1, 5, 1, 1}, 4), 0.375, 1e-12);
}

static void test_fairness_degenerate_inputs_are_zero(void **state)
{
    uint64_t one[1] = {42}, zeros[8] = {0};
    assert_near(rota_gini(one, 1), 0.0, 0);
    assert_near(rota_gini(one, 0), 0.0, 0);
    assert_near(rota_gini(NULL, 0), 0.0, 0);
    assert_near(rota_gini(zeros, 8), 0.0, 0);
    assert_near(rota_gini(zeros, 2), 0.0, 0);
    assert_int_equal(one[0], 42);
}

static void test_fairness_order_does_not_matter(void **state)
{
    struct rota_rng r = {71};
    for (int trial = 0; trial < 2000; trial++) {
        size_t n = 2 + rota_rng_below(&r, 63);
        uint64_t x[64], y[64];
        for (size_t i = 0; i < n; i++)
            x[i] = rota_rng_below(&r, 1000);
        double g = gini_of(x, n);
        memcpy(y, x, n * sizeof(*x));
        for (size_t i = n; i > 1; i--) { /* shuffle */
            size_t j = rota_rng_below(&r, (uint32_t)i);
            uint64_t t = y[i - 1];
            y[i - 1] = y[j];
            y[j] = t;
        }
        assert_near(gini_of(y, n), g, 1e-12);
    }
}

static void test_fairness_matches_definition(void **state)
{
    struct rota_rng r = {73};
    for (int trial = 0; trial < 5000; trial++) {
        size_t n = 2 + rota_rng_below(&r, 63);
        uint32_t spread = trial % 3 == 0 ? 3 : trial % 3 == 1 ? 1000 : 1u << 30;
        uint64_t x[64];
        for (size_t i = 0; i < n; i++)
            x[i] = rota_rng_below(&r, 4) ? rota_rng_below(&r, spread) : 0;
        double want = gini_pairwise(x, n), got = gini_of(x, n);
        assert_near(got, want, 1e-9);
        assert_true(got >= 0 && got <= (double)(n - 1) / (double)n + 1e-12);
    }
}

static void test_fairness_sorts_in_place(void **state)
{
    uint64_t x[6] = {5, 3, 9, 0, 3, 7};
    rota_gini(x, 6);
    for (size_t i = 1; i < 6; i++)
        assert_true(x[i - 1] <= x[i]);
    assert_true(x[0] == 0 && x[5] == 9);
}

static void test_fairness_large_counts(void **state)
{
    /* Sums beyond 2^64 must not wrap: {k, 2k, 3k, 4k} is 0.25 for any k. */
    const uint64_t k = 1ull << 61;
    assert_near(gini_of((uint64_t[]){k, 2 * k, 3 * k, 4 * k}, 4), 0.25, 1e-9);
    uint64_t big[16];
    for (size_t i = 0; i < 16; i++)
        big[i] = UINT64_MAX - i;
    assert_near(rota_gini(big, 16), 0.0, 1e-9);
    uint64_t lone[3] = {0, UINT64_MAX, 0};
    assert_near(rota_gini(lone, 3), 2.0 / 3, 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fairness_equal_counts_are_zero),
        cmocka_unit_test(test_fairness_one_takes_all),
        cmocka_unit_test(test_fairness_hand_computed),
        cmocka_unit_test(test_fairness_degenerate_inputs_are_zero),
        cmocka_unit_test(test_fairness_order_does_not_matter),
        cmocka_unit_test(test_fairness_matches_definition),
        cmocka_unit_test(test_fairness_sorts_in_place),
        cmocka_unit_test(test_fairness_large_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
