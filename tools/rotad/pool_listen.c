/*
 * pool_listen.c - the pool's listening sockets, which rotad holds and its workers
 * inherit (pool.c).
 *
 * DESIGN
 * A TCP listener is one SO_REUSEPORT socket per slot and thread: the kernel spreads
 * connections over them (one socket shared by every thread would hand them all to
 * whichever waited first), and a worker that dies leaves its socket's queue to its
 * successor. The address a TCP listener is bound to is read back: one the config took
 * for loopback ("localhost") that resolves elsewhere is refused. A Unix listener is one
 * socket every thread accepts on, made without touching the umask (other threads of
 * rotad run): bound under a random temporary name in its directory (rotad's umask, 077,
 * makes it private), given its mode, then renamed over the path; a later mode change is
 * made without following a symlink. What is at the path already
 * is replaced only if it is a socket of rotad's user that nobody answers on.
 *
 * A reload prepares the new set's listeners before the table changes (opening only what
 * the running set lacks, TCP sockets bound but not yet listening, so a failure changes
 * nothing) and commits them once it has: a listener in both sets keeps its sockets, as
 * many as the new set needs, and the new TCP sockets start listening.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pool_int.h"

int pool_high_fd(int fd)
{
    if (fd < 0 || fd >= POOL_HIGH_FD)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, POOL_HIGH_FD), e = errno;
    close(fd);
    return h < 0 ? -e : h;
}

static bool addr_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static int open_tcp(const struct rota_config_listener *l, char *err, size_t n)
{
    char host[256];
    const char *colon = strrchr(l->tcp, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - l->tcp), l->tcp);
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV},
                    *ai = NULL;
    int g = getaddrinfo(h, colon + 1, &hints, &ai);
    if (g != 0)
        return snprintf(err, n, "workers: listen %s: %s", l->tcp, gai_strerror(g)), -EINVAL;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    int rc = fd < 0 ? -errno : 0;
    if (!rc && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
                bind(fd, ai->ai_addr, ai->ai_addrlen) < 0))
        rc = -errno;
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (!rc && l->loopback &&
        (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || !addr_loopback(&ss))) {
        close(fd);
        return snprintf(err, n,
                        "workers: listen %s: the name is not a loopback address here, and "
                        "workers.keys is what a listener off loopback needs",
                        l->tcp),
               -EADDRNOTAVAIL;
    }
    if (rc) {
        if (fd >= 0)
            close(fd);
        return snprintf(err, n, "workers: listen %s: %s", l->tcp, strerror(-rc)), rc;
    }
    rc = pool_high_fd(fd);
    if (rc < 0)
        snprintf(err, n, "workers: listen %s: no descriptor above %d: %s", l->tcp, POOL_HIGH_FD,
                 strerror(-rc));
    return rc;
}

/* May a new socket take "path"? Nothing there, or a socket of ours nobody answers on. */
static int path_free(const char *path, const struct sockaddr_un *sa, char *err, size_t n)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT
                   ? 0
                   : (snprintf(err, n, "workers: %s: %s", path, strerror(errno)), -errno);
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
        return snprintf(err, n,
                        "workers: %s exists and is not a socket of rotad's user; remove it "
                        "or choose another path",
                        path),
               -EEXIST;
    /* live unless refused: a full backlog (EAGAIN) is someone's too, and the probe must
     * not wait */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    bool live = fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
                errno != ECONNREFUSED;
    if (fd >= 0)
        close(fd);
    if (live)
        return snprintf(err, n,
                        "workers: %s is in use (another rotad's pool, or old workers still "
                        "draining); choose another path or wait",
                        path),
               -EADDRINUSE;
    return 0;
}

static int open_unix(const struct rota_config_listener *l, char *err, size_t n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX}, tmp = {.sun_family = AF_UNIX};
    const char *path = l->unix_path;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    if ((size_t)snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%016llx.tmp", path,
                         (unsigned long long)r) >= sizeof(tmp.sun_path))
        return snprintf(err, n, "workers: %s: the path is too long", path), -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int rc = path_free(path, &sa, err, n);
    if (rc)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        return snprintf(err, n, "workers: %s: %s", tmp.sun_path, strerror(-rc)), rc;
    }
    if (chmod(tmp.sun_path, l->unix_mode) < 0 || listen(fd, 4096) < 0 ||
        rename(tmp.sun_path, path) < 0) {
        rc = -errno;
        unlink(tmp.sun_path);
        close(fd);
        return snprintf(err, n, "workers: %s: %s", path, strerror(-rc)), rc;
    }
    rc = pool_high_fd(fd);
    if (rc < 0) {
        unlink(path);
        snprintf(err, n, "workers: %s: no descriptor above %d: %s", path, POOL_HIGH_FD,
                 strerror(-rc));
    }
    return rc;
}

static void spec_of(const struct rota_config_listener *l, char *out, size_t n)
{
    if (l->tcp)
        snprintf(out, n, "tcp %s", l->tcp);
    else
        snprintf(out, n, "unix %s", l->unix_path);
}

static void close_one(struct pool_listener *l)
{
    for (uint32_t i = 0; l->fds && i < l->nfds; i++)
        if (l->fds[i] >= 0)
            close(l->fds[i]);
    if (l->unix_path)
        unlink(l->unix_path);
    free(l->unix_path);
    free(l->fds);
    *l = (struct pool_listener){0};
}

void pool_listen_commit_listen(struct pool_listener *ls, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; ls[i].tcp && k < ls[i].nfds; k++)
            if (ls[i].fds[k] >= 0 && listen(ls[i].fds[k], 4096) < 0)
                rota_error("workers: listen %s: %s", ls[i].spec, strerror(errno));
}

void pool_listen_close(struct pool_listener *ls, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        close_one(&ls[i]);
}

static int find(const struct pool_listener *cur, uint32_t ncur, const char *spec)
{
    for (uint32_t j = 0; j < ncur; j++)
        if (cur[j].fds && strcmp(cur[j].spec, spec) == 0)
            return (int)j;
    return -1;
}

int pool_listen_prepare(const struct pool_listener *cur, uint32_t ncur,
                        const struct rota_config_workers *w, uint32_t per,
                        struct pool_listener *out, char *err, size_t n)
{
    for (uint32_t i = 0; i < w->nlisteners; i++)
        out[i] = (struct pool_listener){0};
    for (uint32_t i = 0; i < w->nlisteners; i++) {
        const struct rota_config_listener *l = &w->listeners[i];
        struct pool_listener *o = &out[i];
        spec_of(l, o->spec, sizeof(o->spec));
        o->tcp = l->tcp != NULL;
        o->loopback = l->loopback;
        o->mode = l->unix_mode;
        o->nfds = o->tcp ? per : 1;
        int j = find(cur, ncur, o->spec);
        uint32_t have = j < 0 ? 0 : cur[j].nfds;
        if (!(o->fds = malloc(o->nfds * sizeof(int)))) {
            pool_listen_close(out, i + 1);
            return snprintf(err, n, "workers: out of memory"), -ENOMEM;
        }
        for (uint32_t k = 0; k < o->nfds; k++)
            o->fds[k] = -1;
        for (uint32_t k = have; k < o->nfds; k++) {
            int fd = o->tcp ? open_tcp(l, err, n) : open_unix(l, err, n);
            if (fd < 0) {
                pool_listen_close(out, i + 1);
                return fd;
            }
            o->fds[k] = fd;
            if (!o->tcp && !(o->unix_path = strdup(l->unix_path))) {
                pool_listen_close(out, i + 1);
                return snprintf(err, n, "workers: out of memory"), -ENOMEM;
            }
        }
    }
    return 0;
}

void pool_listen_commit(struct pool_listener *cur, uint32_t ncur, struct pool_listener *out,
                        uint32_t nout, uint32_t per)
{
    (void)per;
    for (uint32_t i = 0; i < nout; i++) {
        int j = find(cur, ncur, out[i].spec);
        if (j < 0)
            continue;
        struct pool_listener *old = &cur[j];
        uint32_t keep = old->nfds < out[i].nfds ? old->nfds : out[i].nfds;
        memcpy(out[i].fds, old->fds, keep * sizeof(int));
        for (uint32_t k = keep; k < old->nfds; k++)
            close(old->fds[k]); /* of fewer slots or threads: their old workers let go */
        if (!out[i].tcp) {
            out[i].unix_path = old->unix_path;
            old->unix_path = NULL;
            struct stat st;
            if (out[i].mode != old->mode && lstat(out[i].unix_path, &st) == 0 &&
                S_ISSOCK(st.st_mode) && st.st_uid == geteuid() &&
                fchmodat(AT_FDCWD, out[i].unix_path, out[i].mode, AT_SYMLINK_NOFOLLOW) < 0)
                rota_warn("workers: %s: cannot set mode %04o: %s", out[i].unix_path,
                          out[i].mode, strerror(errno));
        }
        free(old->fds);
        *old = (struct pool_listener){0};
    }
    pool_listen_close(cur, ncur);
}
