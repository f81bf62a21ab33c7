/*
 * jident.h - the instance's identity file: the id every journal record carries and the
 * secret its MAC is keyed with (private to rota).
 *
 * DESIGN
 * One file, "identity" in rotad's state directory, 44 bytes:
 *
 *   "ROTAID01" | id (16) | secret (16) | CRC-32C of the 40 bytes before (little-endian)
 *
 * made once from getrandom(2) with the state directory, or at the first start of a rotad
 * that finds none (one that journaled before records carried an identity). It is
 * created as identity.tmp (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, relative to the
 * directory's descriptor), synced, and renamed into place. The caller holds the
 * instance's lock (rotad opens it after taking <state_dir>/rotad.lock): the temporary
 * name is fixed, so two makers at once could each end up with a key the other wrote.
 * An existing file is read only when it is a regular file owned by rotad's effective uid
 * that neither its group nor others may read or write: whoever can read the secret can
 * forge records, and whoever can write it can choose it. One that fails is refused with
 * its path and the problem named, and rotad does not start.
 *
 * The id is not secret (every record in Redis shows it) and may be logged; the secret
 * never leaves the process. Called on the main thread at start; the key is copied into
 * the journal, which wipes its copy when it stops.
 */
#ifndef ROTA_CORE_JIDENT_H
#define ROTA_CORE_JIDENT_H

#include <stdbool.h>
#include <stddef.h>

#include "jrecord.h"

#define ROTA_JIDENT_NAME "identity"
#define ROTA_JIDENT_SIZE 44u

/* Read "identity" in the directory open on "dfd" ("dir" names it in messages), or make
 * it when there is none (*created says which). 0 with *out, or -errno with "err" naming
 * the path and the problem (-EPERM: owner or mode; -ELOOP: a symlink; -EINVAL: not an
 * identity file). */
int rota_jident_open(int dfd, const char *dir, struct rota_jkey *out, bool *created, char *err,
                     size_t n);

/* Read the identity file at "path" (no directory check, no creation: tools and tests
 * that look at an instance's records). Same checks and returns as rota_jident_open. */
int rota_jident_read(const char *path, struct rota_jkey *out, char *err, size_t n);

/* A random identity and secret held in memory only (rota-bench's journal). 0 or -errno. */
int rota_jident_random(struct rota_jkey *out);

/* Wipe a key that is no longer needed. */
void rota_jkey_wipe(struct rota_jkey *k);

#endif
