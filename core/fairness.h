/*
 * fairness.h - the seed's fairness figure: the Gini coefficient of selections per account.
 *
 * 0 when every account was chosen equally often, approaching 1 when one account took
 * everything. Pure; callers pass the counts (rota-bench and rotactl read them from the
 * table with rota_selections).
 */
#ifndef ROTA_CORE_FAIRNESS_H
#define ROTA_CORE_FAIRNESS_H

#include <stddef.h>
#include <stdint.h>

/* Gini coefficient of "x[0..n)". Sorts "x" in place. 0 for n < 2 or an all-zero set. */
double rota_gini(uint64_t *x, size_t n);

#endif
