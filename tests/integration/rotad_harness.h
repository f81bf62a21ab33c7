/*
 * rotad_harness.h - running real rotad and rotactl processes in tests: configs written
 * to a temporary directory, rotad spawned with its log in a file, rotactl run through
 * the shell, selector processes driven through librota. Nothing is mocked.
 */
#ifndef ROTA_TEST_ROTAD_HARNESS_H
#define ROTA_TEST_ROTAD_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct it {
    char instance[64];
    char dir[128];    /* temporary directory: config, state, logs */
    char config[192]; /* <dir>/rota.yaml */
    char log[192];    /* rotad's stderr */
    pid_t rotad;
};

/* A fresh instance and directory. */
void it_init(struct it *t, const char *tag);

/* Write <dir>/rota.yaml: provider alpha with "nalpha" accounts a0.. (daily window of
 * "limit" requests each, 0 = none, reset at it_reset_hhmm() UTC), beta with b0 and b1,
 * local with l0; route "chat" (model "chat-model") over tiers alpha (hybrid), beta
 * (round-robin), local (fill-first). "extra" is appended verbatim under the instance's
 * top level. */
void it_config(struct it *t, int nalpha, uint64_t limit, const char *extra);

/* it_config with the daily reset at "hhmm" UTC. */
void it_config_reset(struct it *t, int nalpha, uint64_t limit, const char *extra,
                     const char *hhmm);

/* "HH:MM" UTC half a day after the first call in this process, the same ever after: a
 * daily reset there never fires during a test (rotad schedules resets on the real wall
 * clock, and a run may span midnight UTC). */
const char *it_reset_hhmm(void);

/* Write "text" as the config, as is. */
void it_config_text(struct it *t, const char *text);

/* Start rotad on the config; wait until it answers "status" (returns 0) or exits
 * (returns its exit status, > 0) or 20 s pass (-1). */
int it_start(struct it *t);

/* Spawn rotad without waiting; returns its pid. */
pid_t it_spawn(struct it *t);

/* SIGTERM (or "sig") rotad and wait for it: its exit status, or -1. */
int it_stop(struct it *t, int sig);

/* A control request; the reply (caller frees) or NULL. */
json_t *it_ctl(struct it *t, const char *cmd, const char *arg1, const char *arg2);

/* Run "rotactl -i <instance> ARGS" (ARGS is a shell fragment); its output in "out", its
 * exit status returned. */
int it_rotactl(struct it *t, const char *args, char *out, size_t n);

/* Run the shell command "cmd": its stdout in "out" (at most "on" - 1 bytes), its stderr
 * in "err" (NULL: mixed into "out"); returns its exit status, or -1. */
int it_sh(const char *cmd, char *out, size_t on, char *err, size_t en);

/* The build tree the programs are in (ROTA_TEST_BIN). */
const char *it_bin(void);

/* Does rotad's log contain "text"? */
bool it_log_has(struct it *t, const char *text);

/* Remove the instance's segments and the directory. */
void it_cleanup(struct it *t);

/* Remove the instance's table (every /dev/shm/rota.<instance> segment but the lock), as
 * a reboot would; rotad must not be running. */
void it_drop_table(struct it *t);

/* A real redis-server, in the foreground as a child of the test: no persistence, its
 * log in <dir>/redis-<port>.log. it_teardown kills it when a test stops half-way. */
struct it_redis {
    char dir[128];     /* its working directory */
    int port;          /* on 127.0.0.1; 0 = no TCP */
    char socket[108];  /* Unix socket path; "" = none */
    char password[64]; /* requirepass; "" = none */
    char log[192];
    pid_t pid;
};

/* Start redis-server in "dir": TCP on "port" (> 0 that port, 0 a free one, < 0 none),
 * a Unix socket at "socket" (NULL = none), --requirepass "password" (NULL = none). Waits
 * until it answers PING. 0, or -1 (it did not come up in 10 s). */
int it_redis_start(struct it_redis *r, const char *dir, int port, const char *socket,
                   const char *password);

/* Start it again as it was last started: same port, socket and password. 0 or -1. */
int it_redis_restart(struct it_redis *r);

/* Send "sig" (0 = SIGTERM) and wait for it: its exit status, or -1. */
int it_redis_stop(struct it_redis *r, int sig);

/* cmocka teardown: stop every selector, rotad and redis-server the test started and clean
 * up after every instance it made, whether the test passed or failed half-way. */
int it_teardown(void **state);

/* Selector processes: each loops select + report on route "chat" until told to stop,
 * counting successes, exhaustions and errors in shared memory. */
struct it_load {
    int n;
    pid_t pid[8];
    struct it_counts {
        _Atomic uint64_t ok, exhausted, errors, reattached;
        _Atomic int last_error;
    } * c; /* shared, one per process */
    _Atomic int *stop;
};
void it_load_start(struct it_load *l, const char *instance, int procs);
uint64_t it_load_ok(const struct it_load *l); /* successes so far, all processes */
void it_load_stop(struct it_load *l);

#endif
