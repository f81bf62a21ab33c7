/*
 * fairness.c - Gini coefficient of selection counts.
 *
 * DESIGN
 * G = sum_i sum_j |x_i - x_j| / (2 n^2 mean), computed in O(n log n) from the sorted
 * values as G = 2 sum_i (i+1) x_(i) / (n sum x) - (n + 1) / n. Any thread; allocates
 * nothing (sorts the caller's array).
 */
#include <stdlib.h>

#include "fairness.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double rota_gini(uint64_t *x, size_t n)
{
    if (!x || n < 2)
        return 0;
    qsort(x, n, sizeof(*x), cmp_u64);
    long double sum = 0, weighted = 0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        weighted += (long double)(i + 1) * x[i];
    }
    if (sum == 0)
        return 0;
    return (double)(2 * weighted / ((long double)n * sum) - (long double)(n + 1) / n);
}
