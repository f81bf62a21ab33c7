/*
 * rota_codes.h - error codes of every rota function and the reasons in every selection
 * answer (public).
 *
 * Functions return 0 on success or a negative number: a negated errno (-EINVAL,
 * -ENOENT, -ENOMEM, ...) or one of the codes below. rota_strerror() names either.
 */
#ifndef ROTA_CODES_H
#define ROTA_CODES_H

enum rota_error {
    ROTA_EEXHAUSTED = -1001, /* nothing eligible in any tier; see the choice's retry_at */
    ROTA_EMAGIC = -1002,     /* the segment is not a rota table */
    ROTA_EABI = -1003,       /* the table was written by an incompatible rota */
    ROTA_ELAYOUT = -1004,    /* section sizes or offsets are inconsistent */
    ROTA_ETRUNC = -1005,     /* the segment is smaller than its header says */
    ROTA_ENOTREADY = -1006,  /* the generation is still being built */
    ROTA_ENOROUTE = -1007,   /* no route has that name or serves that model */
    ROTA_ESTALE = -1008,     /* the chosen account left the table */
    ROTA_EBEHIND = -1009,    /* the table moved on and this process could not follow */
};

/* Why a tier had no eligible account: a bit per reason seen (rota_choice.skipped). */
enum rota_skip {
    ROTA_SKIP_DISABLED = 1 << 0, /* disabled by the operator, or after an auth/billing error */
    ROTA_SKIP_COOLDOWN = 1 << 1, /* cooling down after a 429 */
    ROTA_SKIP_BREAKER = 1 << 2,  /* circuit breaker open (account or provider) */
    ROTA_SKIP_CEILING = 1 << 3,  /* quota used at or above the tier's ceiling */
    ROTA_SKIP_RATE = 1 << 4,     /* requests- or tokens-per-minute limit reached */
    ROTA_SKIP_BUSY = 1 << 5,     /* snapshot being rewritten for longer than a reader waits */
    ROTA_SKIP_EMPTY = 1 << 6,    /* the tier has no accounts */
    ROTA_SKIP_EXCLUDED = 1 << 7, /* passed over at the caller's asking (the dispatch pool:
                                    an account already tried, a tier of another format) */
};

/* Why the chosen account was chosen (rota_choice.why). */
enum rota_why {
    ROTA_WHY_SCORE = 1,      /* hybrid: best score among the top k, with jitter */
    ROTA_WHY_FORCED_LRU = 2, /* hybrid: the forced least-recently-used share */
    ROTA_WHY_GREEDY = 3,     /* most quota left */
    ROTA_WHY_ROUND_ROBIN = 4,
    ROTA_WHY_WEIGHTED = 5,
    ROTA_WHY_STICKY = 6, /* rendezvous hash of the caller's key */
    ROTA_WHY_LRU = 7,
    ROTA_WHY_FILL_FIRST = 8,
    ROTA_WHY_TRIAL = 0x100, /* flag: a half-open breaker's trial call */
};

/* What happened to a call, when the HTTP status alone does not say (rota_outcome.result). */
enum rota_result {
    ROTA_RESULT_HTTP = 0,    /* the status says it all */
    ROTA_RESULT_TIMEOUT = 1, /* no answer in time: a breaker failure */
    ROTA_RESULT_CONNECT = 2, /* could not connect or the connection broke: a breaker failure */
    ROTA_RESULT_AUTH = 3,    /* the key was refused: disable the account */
    ROTA_RESULT_BILLING = 4, /* out of credit or spend limit reached: disable the account */
    ROTA_RESULT_CANCELLED = 5, /* the caller gave up; the account is not at fault */
};

#endif
