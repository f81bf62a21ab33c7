/*
 * pool_int.h - what pool.c (the processes) and pool_listen.c (the sockets) share
 * (private to rotad).
 */
#ifndef ROTAD_POOL_INT_H
#define ROTAD_POOL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define POOL_MAX_LISTENERS 16
#define POOL_HIGH_FD       1100 /* rotad's copies live above what a child's dup2 targets */

/* One listener of the pool and the sockets rotad holds for it. */
struct pool_listener {
    char spec[300]; /* "tcp HOST:PORT" or "unix PATH": what identifies it */
    bool tcp;
    bool loopback; /* TCP bound to a loopback address, or a Unix socket */
    int *fds;      /* tcp: one SO_REUSEPORT socket per slot and thread (slot-major);
                      unix: one socket every thread of every slot accepts on; -1: none */
    uint32_t nfds;
    char *unix_path; /* the file rotad made; unlinked when the listener is closed */
    uint32_t mode;   /* a Unix socket's file mode */
};

/* "fd" moved above POOL_HIGH_FD (closed on failure): the new fd or -errno. */
int pool_high_fd(int fd);

/* The sockets of the listeners of "w" into "out" (w->nlisteners of them), with "per"
 * (slots x threads) sockets per TCP listener. Opens only what "cur" (the running set's
 * listeners) lacks: a listener in both takes over its sockets at pool_listen_commit. On
 * failure "out" is closed, "cur" untouched, and "err" says what and where. */
int pool_listen_prepare(const struct pool_listener *cur, uint32_t ncur,
                        const struct rota_config_workers *w, uint32_t per,
                        struct pool_listener *out, char *err, size_t n);
/* Move the sockets "out" shares with "cur" over (a Unix socket's mode set anew, extra TCP
 * sockets closed) and close the rest of "cur". */
void pool_listen_commit(struct pool_listener *cur, uint32_t ncur, struct pool_listener *out,
                        uint32_t nout, uint32_t per);
/* Make every TCP socket of "ls" listen (prepare only binds new ones). */
void pool_listen_commit_listen(struct pool_listener *ls, uint32_t n);
/* Close "ls" (sockets, and the Unix socket files rotad made). */
void pool_listen_close(struct pool_listener *ls, uint32_t n);

#endif
