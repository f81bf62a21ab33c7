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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rota.h"

/* rota_select, passing over the tiers whose bit is set in "skip_tiers" (bit k: tier k)
 * and the "nexcept" accounts whose ids are at "except": each is skipped with
 * ROTA_SKIP_EXCLUDED in out->skipped. Same answers and promises as rota_select. */
__attribute__((visibility("hidden"))) int
rota_select_except(rota_t *h, const rota_route_t *route, const char *key, size_t key_len,
                   uint64_t est_tokens, uint32_t skip_tiers, const uint64_t *except,
                   uint32_t nexcept, rota_choice *out);

/* ---- the pool's client keys (clientkey.c) ---- */

/* A request's client key as rota_client_key_find found it: its hash (never the key), where
 * it was found, and what rota_client_key_admit charged, for rota_client_key_done. */
typedef struct {
    uint8_t sha256[32];
    uint64_t generation;
    uint32_t index;    /* in that generation; ROTA_NONE: the table has no client keys */
    bool admitted;     /* rota_client_key_admit let the request in */
    uint64_t est;      /* tokens charged to its TPM */
    uint64_t tok_tat;  /* its TPM word right after the charge; 0 = no TPM limit */
    uint64_t tok_back; /* its TPM "back" counter before the charge */
    char name[64];     /* for the access log; "" without client keys */
} rota_client_key;

/* SHA-256 of the "len" bytes at "data" into "out" (libcrypto): 0, or -ENOSYS when no
 * SHA-256 implementation can be had, -EIO when it fails. */
__attribute__((visibility("hidden"))) int rota_client_key_hash(const void *data, size_t len,
                                                               uint8_t out[32]);

/* Who sends this request: "key" ("len" bytes; len 0 = none sent), hashed only when the
 * table has client keys (nothing of the key is kept), and looked up. Returns 0 for a key
 * of the table (out->name says which) or when the table has none (out->index is then
 * ROTA_NONE: every request is let in); 401 when none was sent or it is not the table's;
 * or a negative code (the table cannot be read: rota_strerror). */
__attribute__((visibility("hidden"))) int
rota_client_key_find(rota_t *h, const char *key, size_t len, rota_client_key *out);

/* May "ck" send a request of "est_tokens" tokens to "route" now? 0: yes, counted against
 * its RPM and TPM; 403: the key may not use that route; 429: its RPM or TPM says no, and
 * *retry_after_ms when it would say yes; 401: a reload since rota_client_key_find took
 * the key away; or a negative code. Without client keys: always 0. */
__attribute__((visibility("hidden"))) int rota_client_key_admit(rota_t *h, rota_client_key *ck,
                                                                const rota_route_t *route,
                                                                uint64_t est_tokens,
                                                                uint64_t *retry_after_ms);

/* The request "ck" let in is over, having used "tokens": its TPM charge becomes that
 * (more taken, or what it holds of the estimate given back). Once per admitted request;
 * nothing for the others. */
__attribute__((visibility("hidden"))) void rota_client_key_done(rota_t *h, rota_client_key *ck,
                                                                uint64_t tokens);

#endif
