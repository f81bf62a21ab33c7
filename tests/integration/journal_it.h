/*
 * journal_it.h - what the journal's integration tests (test_journal_file,
 * test_journal_redis) share: the instance's config with a journal section, rotactl run
 * for JSON and its fields read by path, state made through librota and rotactl, waiting
 * for the journal to catch up, and a restarted rotad's accounts compared with those it
 * had before. Built on rotad_harness: real rotad and rotactl processes, nothing mocked.
 * The helpers fail the running cmocka test when something is not as they expect.
 */
#ifndef ROTA_TEST_JOURNAL_IT_H
#define ROTA_TEST_JOURNAL_IT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jrecord.h"
#include "rotad_harness.h"

void jit_sleep_ms(int ms);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t jit_mono_ms(void);

/* Wait up to 30 s for "cond" to hold (a bound for slow machines, not a measure). */
#define JIT_WAIT_FOR(cond)                                                                     \
    do {                                                                                       \
        for (int w_ = 0; w_ < 600 && !(cond); w_++)                                            \
            jit_sleep_ms(50);                                                                  \
    } while (0)

/* ---- the instance ---- */

/* The test's config: provider alpha with "nalpha" (>= 4) accounts a0.. (a daily window of
 * 100000 requests each, reset half a day from the process's first config, so no run
 * sees it; 3 failures in a row open a breaker for 10 minutes), beta with b0 and b1,
 * local with l0; route "chat" over the three, and routes "pin0" and "pin3" over
 * alpha/a0 and alpha/a3 alone, so a test can aim its failures. Probes are off: nothing
 * but the test changes the state. "journal" is the journal section, verbatim (NULL =
 * none: the default file journal). */
void jit_config(struct it *t, int nalpha, const char *journal);

/* The default journal file's path, <dir>/state/journal, in "buf". */
void jit_journal_path(const struct it *t, char *buf, size_t n);

/* The instance's identity and secret, from <dir>/state/identity (rotad made it); fails
 * the test when it cannot be read. */
void jit_identity(const struct it *t, struct rota_jkey *k);

/* ---- rotactl ---- */

/* "rotactl -i <instance> --json ARGS": exit 0 and JSON, parsed (caller frees). */
json_t *jit_ctl_json(struct it *t, const char *args);

/* "rotactl ARGS" in words: must exit 0. */
void jit_ctl(struct it *t, const char *args);

/* The value at "a.b.c" in "o", or NULL. */
json_t *jit_at(json_t *o, const char *path);

/* The number at "path" in "o" (0 when there is none). */
double jit_num(json_t *o, const char *path);

/* The string at "path" in "o" ("" when there is none). */
const char *jit_str(json_t *o, const char *path);

/* The account named "name" in an `accounts --json` array. */
json_t *jit_account(json_t *arr, const char *name);

/* The account's id (its "id", hexadecimal). */
uint64_t jit_account_id(json_t *a);

/* ---- making state ---- */

/* "n" calls on route "route", each reported with "status". */
void jit_calls(struct it *t, const char *route, int n, int status);

/* The number at "path" in `rotactl --json journal`. */
double jit_journal_num(struct it *t, const char *path);

/* Wait for "n" more passes of the journal than it had made when called. */
void jit_wait_passes(struct it *t, int n);

/* Usage on every alpha account, a1 cooling down for 10 minutes, a2 disabled by the
 * operator for an hour, a3's breaker open (three failures in a row; the successes on a0
 * between them keep alpha's own breaker closed). The usage is journaled before the
 * operator's actions, so each of them makes a record of its own. Returns the second
 * (wall clock) of the last action. */
time_t jit_make_state(struct it *t);

/* Is the time at "path" of "j" (an ISO 8601 UTC second) "since" or later? */
bool jit_written_since(json_t *j, const char *path, time_t since);

/* What jit_wait_journaled waits for besides the file. */
enum { JIT_FILE_ONLY, JIT_REDIS_TOO, JIT_REDIS_DROPS_OK };

/* Wait until the journal has written everything done so far: two passes that started
 * after this call, nothing waiting for the file (and, with JIT_REDIS_TOO, nothing waiting
 * for Redis, connected, nothing ever dropped; JIT_REDIS_DROPS_OK allows drops). Fails the
 * test if it does not happen. */
void jit_wait_journaled(struct it *t, int redis);

/* ---- comparing state ---- */

/* "after" has the durable state of every account of "before", "elapsed_ms" later: the
 * same usage and counters, the same off reason and breaker, and deadlines that ran on
 * by the wall clock. Accounts named in "skip" ("a1,b0") are left out. */
void jit_assert_restored(json_t *before, json_t *after, uint64_t elapsed_ms, const char *skip);

/* The "daemon" object of `rotactl --json status` (caller frees). */
json_t *jit_status(struct it *t);

/* rotad's status says it restored from "from" ("file" or "redis"). */
void jit_assert_restored_from(struct it *t, const char *from);

#endif
