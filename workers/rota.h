/*
 * rota.h - librota: pick an API account from a rota table, and say how the call went.
 *
 * A supervisor (rotad) keeps a table of API accounts and their quota state in shared
 * memory. Any process on the host attaches to it and, for each call it is about to make,
 * asks for an account; the answer takes well under a microsecond and never exceeds an
 * account's limits, whatever the number of processes asking. After the call, the process
 * reports the outcome, and every other process sees its effect at once: a 429 cools the
 * account down, repeated 5xx open its circuit breaker, a 401 disables it.
 *
 *     rota_t *h;
 *     rota_route_t route;
 *     rota_choice c;
 *     // examples/rota.yaml: its instance, and a model its route "chat" serves
 *     if (rota_attach("example", &h, NULL, 0) || rota_route(h, "gemini-2.5-pro", &route))
 *         return -1;
 *     if (rota_select(h, &route, NULL, 0, 1200, &c) == 0) {
 *         char key[256];
 *         rota_target t;
 *         rota_credential(h, &c, key, sizeof(key));
 *         rota_target_of(h, &c, "gemini-2.5-pro", 14, &t);
 *         // POST to t.base_url + t.path in format t.format, "model": t.model, with the
 *         // header t.auth_header ": " t.auth_scheme key (unless t.auth_header is ""),
 *         // and t.headers; then say how it went (once per selection):
 *         rota_outcome o = {.status = 200, .tokens = 1311};
 *         rota_report(h, &c, &o);
 *     }
 *     rota_detach(h);
 *
 * Errors: every function returns 0 (or a length) on success, or a negative number: a
 * negated errno or a ROTA_E* code (rota_codes.h); rota_strerror() names it.
 *
 * Threads: a handle may be shared by any number of threads. rota_select, rota_report and
 * rota_target_of take no lock, allocate nothing and make no system call. A choice stays
 * valid to report after the table changes generation (a config reload): it is applied to
 * the same account, by id, in the new generation. Each handle runs one thread of its own
 * that follows reloads (maps each new generation) and reads answers' error bodies, so none of
 * that work falls on a selection; if it cannot map a new generation for a second,
 * selections fail with ROTA_EBEHIND until it can (rota_move_error says why). None of
 * these functions may be called from a signal handler.
 */
#ifndef ROTA_H
#define ROTA_H

#include <stddef.h>
#include <stdint.h>

#include "rota_codes.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ROTA_API __attribute__((visibility("default")))

typedef struct rota rota_t;

/* A resolved route. Resolve once, select many times; it survives generation changes. */
typedef struct rota_route {
    uint64_t key;        /* hash of the route or model name */
    uint64_t generation; /* where "index" is valid */
    uint32_t index;
} rota_route_t;

/* The answer of rota_select: pass it back to rota_report unchanged. */
typedef struct rota_choice {
    uint64_t generation;  /* table generation the choice was made on */
    uint64_t account_id;  /* stable account id */
    uint32_t account;     /* account index in that generation */
    uint32_t pool;        /* the account's quota pool the route uses */
    uint32_t tier;        /* route tier it came from; the tier count when exhausted */
    uint32_t why;         /* ROTA_WHY_*, with ROTA_WHY_TRIAL for a half-open trial */
    uint16_t skipped[8];  /* ROTA_SKIP_* bits for each tier passed over */
    uint64_t est_tokens;  /* what the selection charged to the TPM limit */
    uint64_t selected_at; /* monotonic ns */
    uint64_t retry_at;    /* ROTA_EEXHAUSTED: monotonic ns when something may free up */
    uint32_t trial;       /* private: breaker trial permits held, with their periods */
    uint32_t lease;       /* private: the lease the call holds (slot and entry) */
    uint64_t tok_tat;     /* private: the TPM word right after this admission */
    uint64_t tok_back;    /* private: the account's given-back tokens before it */
    uint32_t route;       /* private: the route's index in that generation */
    uint32_t pad_;
} rota_choice;

/* Where the call of a choice goes (rota_target_of): copies, valid for as long as the
 * caller keeps them, whatever the table does meanwhile. Every field is NUL-terminated;
 * none holds a secret (the key comes from rota_credential). */
typedef struct rota_target {
    char provider[64];    /* the provider's name in the config */
    char kind[32];        /* openai, anthropic, gemini, github-copilot, antigravity, ... */
    char format[16];      /* the wire format it speaks: openai, anthropic, gemini,
                             code-assist */
    char base_url[512];   /* "https://api.anthropic.com"; "" when the config sets none */
    char path[512];       /* the call's endpoint after base_url, for the format and kind,
                             the model already in it where the format puts it there
                             (Gemini's /v1beta/models/MODEL:generateContent) */
    char auth_header[64]; /* the header that carries the key: "Authorization",
                             "x-api-key", "x-goog-api-key", "api-key"; "" = none is sent */
    char auth_scheme[32]; /* what precedes the key in it: "Bearer ", "token " or "" */
    char model[256];      /* the model to ask the provider for */
    char headers[2048];   /* extra headers the provider needs, "Name: value\r\n" each */
    uint32_t context;     /* the tier model's context window in tokens (the tier's
                             context:); 0 = not said */
    uint8_t tools;        /* 1 = the tier's model takes tool definitions (tools:, 1 unless
                             the config says false) */
    uint8_t images;       /* 1 = it takes images (images:, likewise) */
    uint8_t cross_format; /* 1 = the route lets the pool translate a request from another
                             wire format into "format" (cross_format:, likewise); 0 =
                             only a request in "format" itself may go here */
} rota_target;

/* What happened to the call. Zero-initialise, then set what you know. */
typedef struct rota_outcome {
    int status;              /* HTTP status; 0 when there was no response */
    int result;              /* ROTA_RESULT_*: timeout, connect, auth, billing, cancelled */
    uint64_t latency_ns;     /* 0: measured from the selection */
    uint64_t tokens;         /* tokens the call used; 0: the estimate stands */
    uint64_t retry_after_ms; /* the response's retry hint; 0: none */
    const char *headers;     /* optional raw response headers, for passive quota tracking */
    size_t headers_len;
    const char *body; /* optional error body, likewise */
    size_t body_len;
} rota_outcome;

/* Attach to the table of "instance". On failure "err" (if given) says what and why. */
ROTA_API int rota_attach(const char *instance, rota_t **out, char *err, size_t errlen);

/* Resolve a route by its name or by a model it serves. ROTA_ENOROUTE if none. */
ROTA_API int rota_route(rota_t *h, const char *route_or_model, rota_route_t *out);

/* Choose an account for one call on "route". "key" (may be NULL) keeps a caller on the
 * same account under the sticky strategy. "est_tokens" is charged to the account's
 * tokens-per-minute limit now and corrected by the report. Returns 0, or
 * ROTA_EEXHAUSTED with out->retry_at and out->skipped saying when and why. */
ROTA_API int rota_select(rota_t *h, const rota_route_t *route, const char *key, size_t key_len,
                         uint64_t est_tokens, rota_choice *out);

/* Report the outcome of the call made with "c". Exactly once per successful select. */
ROTA_API int rota_report(rota_t *h, const rota_choice *c, const rota_outcome *o);

/* Copy the chosen account's credential into "buf" (NUL-terminated). Returns its length,
 * or -ERANGE when "cap" is too small (nothing is copied), or ROTA_ESTALE. */
ROTA_API int rota_credential(rota_t *h, const rota_choice *c, char *buf, size_t cap);

/* Where to send the call of "c" for a client that asked for "model" ("model_len" bytes, not
 * NUL-terminated; NULL and 0 for none): the chosen account's provider (its kind, wire
 * format, URL, auth header and extra headers) and the model the choice's tier sends
 * upstream for it (the route's per-tier map, else the tier's model, else "model"
 * unchanged). Read from the generation the choice was made on, so a reload between
 * select and this call changes nothing; that generation stays mapped for at least a
 * second after a reload. Returns 0; ROTA_ESTALE when the choice's generation is no
 * longer mapped (report the call as not made, result ROTA_RESULT_CANCELLED, and select
 * again); -ERANGE when the model to send is longer than 255 bytes (out->model) or a
 * string of the table does not fit its field; -EINVAL for a choice that chose nothing.
 * Takes no lock, allocates nothing and makes no system call. */
ROTA_API int rota_target_of(rota_t *h, const rota_choice *c, const char *model,
                            size_t model_len, rota_target *out);

/* Copy the chosen account's name, likewise. */
ROTA_API int rota_account_name(rota_t *h, const rota_choice *c, char *buf, size_t cap);

/* Seed the calling thread's generator (jitter, sampling): reproducible choices. */
ROTA_API void rota_seed(uint64_t seed);

/* Generation currently attached. */
ROTA_API uint64_t rota_generation(rota_t *h);

/* Why the handle is behind the table: 0 when it follows it, else the error of the
 * latest failed attempt to map the current generation (a negated errno or a ROTA_E*
 * code), with what failed in "buf". Selections fail with ROTA_EBEHIND meanwhile. */
ROTA_API int rota_move_error(rota_t *h, char *buf, size_t cap);

/* Unmap everything and free the handle; once no thread uses it any more. */
ROTA_API void rota_detach(rota_t *h);

/* A static description of "err" (a rota code or a negated errno). */
ROTA_API const char *rota_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
