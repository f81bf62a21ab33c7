/*
 * rota_int.h - private to workers/: what librota offers the dispatch pool beyond rota.h.
 *
 * The pool retries a call on another account, never the same one twice in a request,
 * and sends a request only to tiers that speak the client's wire format; plain
 * rota_select would hand back the account that just failed (its breaker not yet open)
 * or a tier of the wrong format every time. Not exported from librota.so.
 */
#ifndef ROTA_WORKERS_INT_H
#define ROTA_WORKERS_INT_H

#include <stdint.h>

#include "rota.h"

/* rota_select, passing over the tiers whose bit is set in "skip_tiers" (bit k: tier k)
 * and the "nexcept" accounts whose ids are at "except": each is skipped with
 * ROTA_SKIP_EXCLUDED in out->skipped. Same answers and promises as rota_select. */
__attribute__((visibility("hidden"))) int
rota_select_except(rota_t *h, const rota_route_t *route, const char *key, size_t key_len,
                   uint64_t est_tokens, uint32_t skip_tiers, const uint64_t *except,
                   uint32_t nexcept, rota_choice *out);

#endif
