/*
 * stranger.h - a real second, unprivileged user for the tests that play a hostile local
 * user against rota.
 *
 * DESIGN
 * tools/test creates the system user "rota-stranger" (no home, no login) when it runs as
 * root. A test runs the stranger's part in a child process that drops to that user's
 * uid and gid (setgroups, setgid, setuid: for real, not a mock) and reports back by its
 * exit status. Without the user, or when the test does not run as root, stranger_ids
 * says so and the test skips with that reason printed.
 */
#ifndef ROTA_TEST_STRANGER_H
#define ROTA_TEST_STRANGER_H

#include <stdbool.h>
#include <sys/types.h>

#define STRANGER_NAME "rota-stranger"

/* The stranger's uid and gid. False (with "why" filled) when the tests cannot act as
 * one: not root, or no such user. */
bool stranger_ids(uid_t *uid, gid_t *gid, char *why, size_t n);

/* Run fn(arg) as the stranger in a child process; returns its exit status (fn's return
 * value, 0..255), or -1 if the child could not become the stranger or was killed. */
int as_stranger(int (*fn)(void *arg), void *arg);

#endif
