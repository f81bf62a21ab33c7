/*
 * front_listen.c - the front's listeners: TCP with SO_REUSEPORT (one socket per thread),
 * a Unix socket made safely (one for all threads), and accepting on them.
 *
 * DESIGN
 * Accepting is a multishot accept on the loop. A new connection past max_conns is
 * answered 503 and closed (front.c). When the process is out of file descriptors the
 * accept is paused for ACCEPT_PAUSE_MS rather than spun on; connections already open
 * go on being served.
 *
 * The Unix socket path may be in a directory others can write (/run, /tmp), so the file
 * found there is trusted only as far as lstat shows: a symlink is never followed or
 * removed, a file that is not a socket is left alone, and a socket is replaced only if
 * it belongs to this user and nobody answers on it (a worker that died). The socket is
 * created with its mode from the start (umask around bind), never chmod'ed after.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "front_int.h"

#define ACCEPT_PAUSE_MS 100
#define BACKLOG         4096

#define container_of(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

static void on_accept(struct rota_loop_op *op, int res, uint32_t flags)
{
    struct listener *L = container_of(op, struct listener, op);
    struct rota_front *f = L->f;
    if (res >= 0) {
        if (f->nconns >= f->o.max_conns)
            rota_front_refuse_conn(f, res);
        else
            rota_front_conn_new(f, res, L->tcp);
    }
    if (op->busy || L->closed) /* a multishot accept that goes on, or no more accepts */
        return;
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM)
        rota_loop_timer_set(f->l, &L->pause, ACCEPT_PAUSE_MS);
    else
        rota_loop_accept(f->l, op, L->fd);
}

static void on_pause_end(struct rota_loop_timer *t)
{
    struct listener *L = container_of(t, struct listener, pause);
    rota_loop_accept(L->f->l, &L->op, L->fd);
}

static int add_listener(struct rota_front *f, int fd, bool tcp, bool own)
{
    if (f->nlis == MAX_LISTEN)
        return -ENOSPC;
    struct listener *L = &f->lis[f->nlis++];
    *L = (struct listener){.f = f, .fd = fd, .tcp = tcp, .own = own};
    L->op.fn = on_accept;
    L->pause.fn = on_pause_end;
    return rota_loop_accept(f->l, &L->op, fd);
}

void rota_front_unlisten(struct rota_front *f)
{
    f->draining = true;
    for (int i = 0; i < f->nlis; i++) {
        struct listener *L = &f->lis[i];
        if (L->closed)
            continue;
        L->closed = true;
        rota_loop_timer_stop(f->l, &L->pause);
        rota_loop_cancel(f->l, &L->op);
        if (L->own) { /* the kernel then gives this socket's connections to no one */
            close(L->fd);
            L->fd = -1;
        }
    }
    /* Kept-alive connections waiting for a request are closed now (a client sends its
     * next request on a new connection, to a process that accepts); one with a request
     * under way is answered, then closed (front_write.c). */
    for (struct rota_front_conn *c = f->conns; c; c = c->list_next)
        if (c->state == S_IDLE && c->in.off == c->in.len && !c->closing)
            rota_front_close(c);
}

int rota_front_adopt(struct rota_front *f, int fd, bool own)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    return add_listener(f, fd, ss.ss_family != AF_UNIX, own);
}

int rota_front_listen_tcp(struct rota_front *f, const char *host, uint16_t port, char *err,
                          size_t n)
{
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int g = getaddrinfo(host, ps, &hints, &ai);
    if (g)
        return snprintf(err, n, "listen %s:%u: %s", host, port, gai_strerror(g)), -EINVAL;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &(int){1}, sizeof(int)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0)
        rc = -errno;
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (!rc && getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        rc = -errno;
    if (!rc)
        rc = add_listener(f, fd, true, true);
    if (rc) {
        if (fd >= 0)
            close(fd);
        return snprintf(err, n, "listen %s:%u: %s", host, port, strerror(-rc)), rc;
    }
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Whether the file at "path" may be replaced: a socket of ours nobody answers on. */
static int stale_socket(const char *path, const struct sockaddr_un *sa, char *err, size_t n)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0
                               : (snprintf(err, n, "%s: %s", path, strerror(errno)), -errno);
    if (S_ISLNK(st.st_mode))
        return snprintf(err, n, "%s is a symlink; refusing to follow or replace it", path),
               -ELOOP;
    if (!S_ISSOCK(st.st_mode))
        return snprintf(err, n,
                        "%s exists and is not a socket; remove it or choose another path",
                        path),
               -EEXIST;
    if (st.st_uid != geteuid())
        return snprintf(err, n, "%s is a socket of uid %u, not ours; refusing to replace it",
                        path, (unsigned)st.st_uid),
               -EPERM;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return snprintf(err, n, "socket: %s", strerror(errno)), -errno;
    int live =
        connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno != ECONNREFUSED;
    close(fd);
    if (live)
        return snprintf(err, n, "%s is in use (something answers on it)", path), -EADDRINUSE;
    if (unlink(path) < 0 && errno != ENOENT)
        return snprintf(err, n, "%s: cannot remove the stale socket: %s", path,
                        strerror(errno)),
               -errno;
    return 0;
}

int rota_front_listen_unix(const char *path, mode_t mode, char *err, size_t n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return snprintf(err, n, "socket path too long: %s", path), -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int rc = stale_socket(path, &sa, err, n);
    if (rc)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return snprintf(err, n, "socket: %s", strerror(errno)), -errno;
    mode_t old = umask(0777 & ~mode); /* bind creates the file with this mode, exactly */
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    umask(old);
    if (!rc && listen(fd, BACKLOG) < 0) {
        rc = -errno;
        unlink(path);
    }
    if (rc) {
        close(fd);
        return snprintf(err, n, "%s: %s", path, strerror(-rc)), rc;
    }
    return fd;
}
