/*
 * pool_it.h - the dispatch pool's integration tests' harness (pool_it.c): a real
 * rota-mockprovider over a test's accounts (and one serving HTTPS with a certificate
 * made by openssl), rotad over the same accounts, a rota-worker between them and the
 * test; what the client received (the curl CLI), what the mock saw, what the table says
 * (rotactl --json show), what the worker's access log says. Used by test_pool.c,
 * test_sdk.c, test_pool_keys.c, test_pool_faults.c, test_pool_hostile.c and
 * test_pool_supervise.c, on top of rotad_harness.h.
 *
 * DESIGN
 * One test runs at a time in a test binary: the processes it started and their ports
 * are in the one struct pool_it, which pool_teardown (a cmocka teardown) empties whether
 * the test passed or failed half-way. Accounts are a test's own table of struct
 * pool_account: from it come the mock's account file, the environment rotad reads the
 * keys from (PREFIX + the account's name in capitals without its dash: ROTA_IT_OA1 for
 * oa-1) and the config's providers (one a run of accounts named alike: oa-1, oa-2 make
 * provider oa). Keys are string literals holding "secret" (tests/sweep_keys finds them).
 */
#ifndef ROTA_POOL_IT_H
#define ROTA_POOL_IT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rotad_harness.h"

struct pool_it {
    pid_t mock, tls, worker;              /* 0: not running */
    int mock_port, tls_port, worker_port; /* on 127.0.0.1 */
    char worker_log[256];                 /* the worker's stderr: its access log */
    const char *worker_extra[8];          /* more rota-worker arguments, next start only */
    bool want_tls;                        /* pool_faults_up starts the HTTPS mock too */
    int closed_port;                      /* pool_setup: a port refusing connections */
    char ca_dir[64];                      /* pool_setup(true): ca.pem, server.{pem,key} */
};
extern struct pool_it pool_it;

void sleep_ms(int ms);

/* Poll "cond" every "ms" milliseconds, 400 times at most. */
#define WAIT_EVERY(ms, cond)                                                                   \
    do {                                                                                       \
        for (int w_ = 0; w_ < 400 && !(cond); w_++)                                            \
            sleep_ms(ms);                                                                      \
    } while (0)
#define WAIT_FOR(cond) WAIT_EVERY(50, cond)

/* ---- the processes ---- */

/* Run "argv", its first stdout line ("listening on 127.0.0.1:PORT") parsed for "*port";
 * stderr to "log" (NULL: /dev/null). Fails the test if it says no port. */
pid_t pool_spawn(char *const argv[], const char *log, int *port);

/* SIGTERM "*pid", SIGKILL if it has not exited in 10 s: its wait status (-1: none ran). */
int pool_stop(pid_t *pid);

struct pool_account {
    const char *name; /* "oa-1": the mock's account, provider "oa" in the config */
    const char *kind; /* openai, anthropic, gemini */
    const char *key;
};

/* Write <dir>/mock.json ("tokens" a call, accounts "a") and start rota-mockprovider on
 * it: with "tls", serving HTTPS with pool_it.ca_dir's certificate (pool_it.tls), else
 * plain (pool_it.mock). */
void pool_mock_start(const char *dir, int tokens, const struct pool_account *a, size_t n,
                     bool tls);

/* Set (or unset) the variable PREFIX+NAME of each account to its key. */
void pool_keys_export(const char *prefix, const struct pool_account *a, size_t n);
void pool_keys_unset(const char *prefix, const struct pool_account *a, size_t n);

/* Write the config: instance, state_dir, providers (the accounts', at the plain mock,
 * probes off), then "rest" (more providers, routes, workers:) as is. */
void pool_config(struct it *t, const char *prefix, const struct pool_account *a, size_t n,
                 const char *rest);

/* pool_keys_export, pool_config, and rotad started on it. */
void pool_rotad_start(struct it *t, const char *prefix, const struct pool_account *a, size_t n,
                      const char *rest);

/* rota-worker on the instance, on 127.0.0.1:0 with two threads, then the NULL-ended
 * arguments, then pool_it.worker_extra (emptied); its log in <dir>/worker.log. */
void pool_worker_start(struct it *t, ...) __attribute__((sentinel));

/* cmocka teardown: the worker and the mocks stopped, then it_teardown. */
int pool_teardown(void **state);

/* For a group of tests: a port nothing listens on (a socket bound to it, never
 * listening: a connect there is refused) and, with "certs", a throwaway CA and a
 * certificate for 127.0.0.1 it signed, made with openssl in pool_it.ca_dir. */
int pool_setup(bool certs);
int pool_group_teardown(void **state);

/* ---- talking to them ---- */

/* curl (the CLI) with "args" against the worker: the output (headers with -i); curl's
 * exit status. */
int pool(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The worker's URL of "path", quoted for the shell (static: one at a time). */
const char *at(const char *path);

/* A control request to the plain mock (or the HTTPS one, "tls"): the answer. */
void mock_ctl(bool tls, const char *method, const char *path, char *out, size_t n);

/* POST /_mock/<what> to the plain mock; it must say "ok":true. */
void mock_post(const char *what);
void mock_fault(const char *query); /* POST /_mock/fault?<query> */

/* The plain mock's /_mock/stats (caller frees). */
json_t *mock_stats(void);

/* Number "field" of the plain mock's /_mock/stats ("holding", "faults"). */
int64_t mock_stat(const char *field);

/* In "stats": calls account "account" answered with "status". */
int64_t calls_of(json_t *stats, const char *account, const char *status);

/* Calls account "name" of a mock answered with "status" ("dropped": calls it dropped). */
int64_t mock_calls(bool tls, const char *name, const char *status);

/* Field "field" of account "name" as rotactl shows it (--json), from the table. */
int64_t table(struct it *t, const char *name, const char *field);

/* Does the worker's access log hold a line with every one of the (NULL-ended) texts? */
bool logged(const char *first, ...) __attribute__((sentinel));

bool worker_alive(void);

/* Does "text" ("n" bytes) hold a run of 8 bytes (what redaction takes out) of the key of
 * one of accounts "a", or of "more" (NULL: none)? */
bool pool_key_run(const char *text, size_t n, const struct pool_account *a, size_t na,
                  const char *more);

/* The worker still serves: alive, ready, and a chat (route "chat-model") answered. */
void healthy(void);

/* curl's -d for a chat (a user's "hi"), a streamed chat with no messages, a call to
 * claude-model with none, and the same streamed. */
extern const char chat[], chat_stream[], claude[], claude_stream[];

/* The routes test_pool and test_sdk share, over accounts oa-1, oa-2, ob-1 (openai), an-1
 * (anthropic) and gm-1 (gemini): "chat" (chat-model) over oa (round-robin, model gpt-a),
 * ob (gpt-b) and an (claude-a); "claude" over an (claude-up); "gem" over gm (gem-up). */
extern const char pool_routes[];

/* ---- the set test_pool_faults and test_pool_hostile share ---- */

/* A mock (and the HTTPS one if pool_it.want_tls), rotad, a worker with worker_extra.
 * Routes: "chat" over oa (oa-1, oa-2, round-robin, model gpt-a) then ob (ob-1, gpt-b);
 * "claude" over an (an-1, an-2, round-robin); "refuse" over gone (pool_it.closed_port)
 * then ob; "secure" over tls (the HTTPS mock, ts-1) then ob. */
void pool_faults_up(struct it *t, const char *tag);

#endif
