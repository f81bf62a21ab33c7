/*
 * loop.c - rotad's main loop: one io_uring for signals, the control socket and time.
 *
 * DESIGN
 * Everything the main thread waits for is an io_uring operation tagged with what it is
 * for: a read of the signalfd, an accept on the control socket, a receive or send on
 * a control connection, and a timeout that wakes the loop every TICK_MS for the timers
 * (heartbeat, quota resets, the failure-rate breaker, leases, late counts). At most one
 * operation is in flight per connection, so a connection's buffers have one owner.
 *
 * A request frame is read in two steps, its 4-byte length then its body; a length over
 * ROTA_CTL_MAX_REQUEST, or a body that is not a request, gets an error reply and the
 * connection is closed; so is a connection on which nothing moved for IDLE_MS, or whose
 * request has not arrived whole FRAME_MS after its first byte. Nothing a
 * client sends (or fails to read) can stop the loop.
 *
 * Who may use the control socket. Every command on it changes or reveals the table, so
 * rotad answers only its own uid, root, and in group mode (`group:`) the members of that
 * group. The file modes say so first: the socket is 0600 (0660 in group mode) in a state
 * directory of 0700 (0750). The kernel says so again, whatever the modes: at accept,
 * SO_PEERCRED gives the client's uid and gid as they were at connect, SO_PEERGROUPS its
 * other groups; anyone else gets one error frame, unread, and is closed, and the refusal
 * is logged (uid and pid, at most once in 10 s with a count). No more than
 * ROTAD_MAX_CONNS connections are open at once; a new one beyond that closes the one
 * idle longest (not sending a reply) and takes its place, so clients that connect and
 * wait cannot lock an operator out. rotactl checks the other direction (control.c).
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clients.h"
#include "clock.h"
#include "control.h"
#include "log.h"
#include "observe.h"
#include "rotad.h"

#define TICK_MS   100
#define IDLE_MS   10000
#define FRAME_MS  5000 /* a request must arrive whole within this, however it trickles */
#define NS_PER_MS 1000000ull

enum op { OP_SIGNAL = 1, OP_ACCEPT, OP_RECV, OP_SEND, OP_TICK, OP_PROBE };

static struct signalfd_siginfo sig_info;
static struct __kernel_timespec tick_ts = {0, TICK_MS *NS_PER_MS};

static uint64_t tag(enum op op, int conn)
{
    return (uint64_t)op | (uint64_t)(conn + 1) << 8;
}

static struct io_uring_sqe *sqe(struct rotad *d)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&d->ring);
    if (!s) {
        io_uring_submit(&d->ring);
        s = io_uring_get_sqe(&d->ring);
    }
    return s;
}

static void arm_signal(struct rotad *d)
{
    struct io_uring_sqe *s = sqe(d);
    io_uring_prep_read(s, d->sig_fd, &sig_info, sizeof(sig_info), 0);
    io_uring_sqe_set_data64(s, tag(OP_SIGNAL, -1));
}

static void arm_accept(struct rotad *d)
{
    struct io_uring_sqe *s = sqe(d);
    io_uring_prep_accept(s, d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, tag(OP_ACCEPT, -1));
}

/* Wake when the probe thread has queued results. */
static bool probe_armed;
static void arm_probe(struct rotad *d)
{
    struct io_uring_sqe *s = sqe(d);
    io_uring_prep_poll_add(s, d->probe_fd, POLLIN);
    io_uring_sqe_set_data64(s, tag(OP_PROBE, -1));
    probe_armed = true;
}

static void arm_tick(struct rotad *d)
{
    struct io_uring_sqe *s = sqe(d);
    io_uring_prep_timeout(s, &tick_ts, 0, 0);
    io_uring_sqe_set_data64(s, tag(OP_TICK, -1));
}

static void arm_recv(struct rotad *d, int i)
{
    struct rotad_conn *c = &d->conns[i];
    struct io_uring_sqe *s = sqe(d);
    if (c->got < 4)
        io_uring_prep_recv(s, c->fd, c->hdr + c->got, 4 - c->got, 0);
    else
        io_uring_prep_recv(s, c->fd, c->body + (c->got - 4), c->want - (c->got - 4), 0);
    io_uring_sqe_set_data64(s, tag(OP_RECV, i));
    c->pending = true;
}

static void arm_send(struct rotad *d, int i)
{
    struct rotad_conn *c = &d->conns[i];
    struct io_uring_sqe *s = sqe(d);
    io_uring_prep_send(s, c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(OP_SEND, i));
    c->pending = true;
}

static void conn_close(struct rotad *d, int i)
{
    struct rotad_conn *c = &d->conns[i];
    close(c->fd);
    free(c->body);
    free(c->out);
    *c = (struct rotad_conn){.fd = -1};
}

/* Close connection "i" once its pending operation ends: shutdown ends a pending receive
 * (0) or send (EPIPE), and its completion closes the slot. */
static void conn_shut(struct rotad *d, int i)
{
    struct rotad_conn *c = &d->conns[i];
    shutdown(c->fd, SHUT_RDWR);
    c->closing = true;
    if (!c->pending)
        conn_close(d, i);
}

/* Queue "reply" on connection "i" (consumes it). */
static void conn_reply(struct rotad *d, int i, json_t *reply, bool close_after)
{
    struct rotad_conn *c = &d->conns[i];
    free(c->body);
    c->body = NULL;
    c->got = c->want = 0;
    if (!reply) /* a handler could not build its reply (out of memory) */
        reply = rota_ctl_error("rotad could not build the reply");
    int rc = rota_ctl_encode(reply, &c->out, &c->out_len);
    json_decref(reply);
    if (rc) {
        rota_warn("control: cannot encode a reply: %s", strerror(-rc));
        json_t *e = json_pack("{s:b, s:s}", "ok", 0, "error", "reply too large to send");
        rc = rota_ctl_encode(e, &c->out, &c->out_len);
        json_decref(e);
        if (rc) {
            conn_close(d, i);
            return;
        }
    }
    c->out_off = 0;
    c->close_after = close_after;
    arm_send(d, i);
}

static void refuse(struct rotad *d, int i, const char *why)
{
    char clean[512];
    snprintf(clean, sizeof(clean), "%s", why);
    rota_ctl_clean(clean);
    d->frames_refused++;
    rota_warn("control: refused a frame: %s", clean);
    conn_reply(d, i, rota_ctl_error(clean), true);
}

/* A whole frame is in: decode, answer. */
static void on_frame(struct rotad *d, int i)
{
    struct rotad_conn *c = &d->conns[i];
    char err[256];
    json_t *req = NULL;
    const char *cmd;
    const json_t *args;
    if (rota_ctl_decode(c->body, c->want, &req, err, sizeof(err)) != 0 ||
        rota_ctl_request(req, &cmd, &args, err, sizeof(err)) != 0) {
        json_decref(req);
        char why[320];
        snprintf(why, sizeof(why), "bad request: %s", err);
        refuse(d, i, why);
        return;
    }
    d->requests++;
    c->frame_start = 0;
    json_t *reply = rotad_command(d, cmd, args);
    json_decref(req);
    conn_reply(d, i, reply, false);
}

static void on_recv(struct rotad *d, int i, int res)
{
    struct rotad_conn *c = &d->conns[i];
    if (res <= 0) { /* closed by the client, or broken */
        conn_close(d, i);
        return;
    }
    if (c->got == 0)
        c->frame_start = rota_clock_mono();
    c->got += (uint32_t)res;
    c->last_io = rota_clock_mono();
    if (c->got == 4 && !c->body) {
        c->want = rota_ctl_frame_len(c->hdr);
        if (c->want == 0 || c->want > ROTA_CTL_MAX_REQUEST) {
            char why[128];
            snprintf(why, sizeof(why), "frame of %u bytes (requests are 1 to %u bytes)",
                     c->want, ROTA_CTL_MAX_REQUEST);
            refuse(d, i, why);
            return;
        }
        c->body = malloc(c->want);
        if (!c->body) {
            refuse(d, i, "out of memory");
            return;
        }
    }
    if (c->got >= 4 && c->got - 4 == c->want)
        on_frame(d, i);
    else
        arm_recv(d, i);
}

static void on_send(struct rotad *d, int i, int res)
{
    struct rotad_conn *c = &d->conns[i];
    if (res <= 0) {
        conn_close(d, i);
        return;
    }
    c->out_off += (size_t)res;
    c->last_io = rota_clock_mono();
    if (c->out_off < c->out_len) {
        arm_send(d, i);
        return;
    }
    free(c->out);
    c->out = NULL;
    if (c->close_after)
        conn_close(d, i);
    else
        arm_recv(d, i);
}

/* Refuse the client on "fd" (of "uid", "pid"): one error frame, never blocking, then
 * close; logged at most once in 10 s. */
static void refuse_peer(struct rotad *d, int fd, long uid, long pid, uint64_t now)
{
    char msg[256], self[32] = "";
    if (geteuid() != 0)
        snprintf(self, sizeof(self), "uid %ld, ", (long)geteuid());
    snprintf(msg, sizeof(msg),
             "uid %ld may not use this control socket (rotad answers %sroot%s%s)", uid, self,
             d->cfg->group ? " and group " : "", d->cfg->group ? d->cfg->group : "");
    json_t *e = rota_ctl_error(msg);
    char *frame = NULL;
    size_t len = 0;
    if (rota_ctl_encode(e, &frame, &len) == 0)
        (void)!send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    free(frame);
    json_decref(e);
    close(fd);
    if (d->peer_warned && now - d->peer_warned < 10000 * NS_PER_MS) {
        d->peers_unwarned++;
        return;
    }
    char more[64] = "";
    if (d->peers_unwarned)
        snprintf(more, sizeof(more), " (%llu more refused since the last such line)",
                 (unsigned long long)d->peers_unwarned);
    rota_warn("control: refused a connection from uid %ld pid %ld: %s%s", uid, pid, msg, more);
    d->peer_warned = now;
    d->peers_unwarned = 0;
}

/* Whether the client on "fd" may use the socket (the rule at the top); closes it if not. */
static bool peer_allowed(struct rotad *d, int fd, uint64_t now)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
        refuse_peer(d, fd, -1, -1, now);
        return false;
    }
    if (cr.uid == 0 || cr.uid == geteuid())
        return true;
    if (d->ctl_gid != (gid_t)-1) {
        if (cr.gid == d->ctl_gid)
            return true;
        gid_t g[256];
        socklen_t gl = sizeof(g);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &gl) == 0)
            for (size_t k = 0; k < gl / sizeof(gid_t); k++)
                if (g[k] == d->ctl_gid)
                    return true;
    }
    refuse_peer(d, fd, (long)cr.uid, (long)cr.pid, now);
    return false;
}

/* A new connection. At ROTAD_MAX_CONNS open, the one idle longest (not sending a reply)
 * is shut down and the new one taken: a client that holds connections open cannot lock
 * operators out. The shut one's slot is freed when its pending operation ends, hence
 * ROTAD_CONN_SLOTS slots for ROTAD_MAX_CONNS connections. */
static void on_accept(struct rotad *d, int fd)
{
    uint64_t now = rota_clock_mono();
    if (fd < 0) {
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            d->accept_paused = true; /* re-armed by the next tick, not at once */
            if (now - d->accept_warned > 10000 * NS_PER_MS) {
                rota_warn("control: accept: %s; pausing new connections", strerror(-fd));
                d->accept_warned = now;
            }
        } else if (fd != -EINTR && fd != -ECONNABORTED) {
            /* anything else: wait for the next tick rather than spin on it */
            d->accept_paused = true;
            if (now - d->accept_warned > 10000 * NS_PER_MS) {
                rota_warn("control: accept: %s", strerror(-fd));
                d->accept_warned = now;
            }
        }
        return;
    }
    if (!peer_allowed(d, fd, now))
        return;
    int slot = -1, idlest = -1, nopen = 0;
    for (int i = 0; i < ROTAD_CONN_SLOTS; i++) {
        struct rotad_conn *c = &d->conns[i];
        if (c->fd < 0 && slot < 0)
            slot = i;
        if (c->fd < 0 || c->closing)
            continue;
        nopen++;
        if (!c->out && (idlest < 0 || c->last_io < d->conns[idlest].last_io))
            idlest = i;
    }
    if (nopen >= ROTAD_MAX_CONNS && idlest >= 0) {
        static uint64_t warned;
        if (!warned || now - warned > 10000 * NS_PER_MS) {
            rota_warn("control: %d connections open; closing the one idle longest",
                      ROTAD_MAX_CONNS);
            warned = now;
        }
        conn_shut(d, idlest);
        if (slot < 0 && d->conns[idlest].fd < 0)
            slot = idlest;
    }
    if (slot < 0 || (nopen >= ROTAD_MAX_CONNS && idlest < 0)) {
        close(fd); /* every connection is busy replying: the client retries */
        return;
    }
    d->conns[slot] = (struct rotad_conn){.fd = fd, .last_io = now};
    arm_recv(d, slot);
}

static void on_signal(struct rotad *d, int res)
{
    if (res != (int)sizeof(sig_info))
        return;
    switch (sig_info.ssi_signo) {
    case SIGTERM:
    case SIGINT:
        rota_info("%s: stopping", strsignal((int)sig_info.ssi_signo));
        d->stopping = true;
        break;
    case SIGHUP:
        rota_info("SIGHUP: reloading %s", d->config_path);
        d->reload_requested = true;
        break;
    case SIGCHLD:
        rotad_pool_tick(d, rota_clock_mono());
        break;
    default:
        break;
    }
}

/* Close connections on which nothing moved for IDLE_MS: a client that sends nothing, or
 * does not read its reply, gives its slot back. */
static void reap_idle(struct rotad *d, uint64_t now)
{
    for (int i = 0; i < ROTAD_CONN_SLOTS; i++) {
        struct rotad_conn *c = &d->conns[i];
        bool slow = c->frame_start && now - c->frame_start > FRAME_MS * NS_PER_MS;
        if (c->fd >= 0 && !c->closing && (slow || now - c->last_io > IDLE_MS * NS_PER_MS))
            conn_shut(d, i);
    }
}

/* Whether the process that listens on the socket "fd" is connected to still lives. A
 * rotad killed with SIGKILL leaves its socket answering for a while: the kernel tears its
 * io_uring down, and with it the pending accept that holds the socket, in the background.
 * The listener's pid (SO_PEERCRED: who called listen) tells a dead one, a zombie included,
 * from another rotad answering on the same path, as the lease reaper tells them. */
static bool listener_alive(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.pid <= 0)
        return true; /* cannot tell: assume it is in use */
    return rota_client_alive(cr.pid, 0);
}

int rotad_listen(struct rotad *d, char *err, size_t n)
{
    const char *path = d->cfg->socket;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return snprintf(err, n, "control socket path too long: %s", path), -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* The state directory was made or checked at start (statedir.c). */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return snprintf(err, n, "socket: %s", strerror(errno)), -errno;
    /* Only a dead rotad's socket may be replaced: not another file, and not a socket
     * someone still answers on (another instance configured with the same path). */
    struct stat st;
    if (lstat(path, &st) == 0) {
        int rc = 0;
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, n,
                     "%s exists and is not a socket; remove it or choose another "
                     "socket path",
                     path);
            rc = -EEXIST;
        } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listener_alive(fd)) {
            snprintf(err, n,
                     "%s is in use by another rotad (a second instance with the same "
                     "socket path?); give each instance its own",
                     path);
            rc = -EADDRINUSE;
        }
        if (rc) {
            close(fd);
            return rc;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return snprintf(err, n, "socket: %s", strerror(errno)), -errno;
    }
    mode_t mode = d->cfg->group ? 0660 : 0600;
    mode_t old = umask(0777 & ~mode); /* the socket is created with its mode: no chmod */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 64) < 0) {
        rc = -errno;
        close(fd);
        return snprintf(err, n, "%s: %s", path, strerror(-rc)), rc;
    }
    if (d->cfg->group) {
        struct group *g = getgrnam(d->cfg->group);
        if (g && lchown(path, (uid_t)-1, g->gr_gid) < 0)
            rota_warn("%s: chown to group %s: %s", path, d->cfg->group, strerror(errno));
    }
    d->socket_path = strdup(path);
    d->listen_fd = fd;
    for (int i = 0; i < ROTAD_CONN_SLOTS; i++)
        d->conns[i].fd = -1;
    struct group *cg = d->cfg->group ? getgrnam(d->cfg->group) : NULL;
    d->ctl_gid = cg ? cg->gr_gid : (gid_t)-1;
    return 0;
}

void rotad_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGCHLD); /* a worker exited (pool.c) */
    sigprocmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int rotad_run(struct rotad *d)
{
    sigset_t set;
    rotad_block_signals(&set); /* already blocked by main: this names them */
    d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
    int rc = d->sig_fd < 0 ? -errno : io_uring_queue_init(256, &d->ring, 0);
    if (rc < 0) {
        rota_error("event loop: %s", strerror(-rc));
        return rc;
    }
    arm_signal(d);
    arm_accept(d);
    arm_tick(d);
    if (d->prober)
        arm_probe(d);
    while (!d->stopping) {
        io_uring_submit_and_wait(&d->ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&d->ring, head, cqe)
        {
            seen++;
            uint64_t t = io_uring_cqe_get_data64(cqe);
            int conn = (int)(t >> 8) - 1, res = cqe->res;
            if (conn >= 0) {
                d->conns[conn].pending = false;
                if (d->conns[conn].closing) {
                    conn_close(d, conn);
                    continue;
                }
            }
            switch ((enum op)(t & 0xff)) {
            case OP_SIGNAL:
                on_signal(d, res);
                arm_signal(d);
                break;
            case OP_ACCEPT:
                on_accept(d, res);
                if (!d->accept_paused)
                    arm_accept(d);
                break;
            case OP_RECV:
                on_recv(d, conn, res);
                break;
            case OP_SEND:
                on_send(d, conn, res);
                break;
            case OP_PROBE:
                probe_armed = false;
                rotad_probes_drain(d);
                arm_probe(d);
                break;
            case OP_TICK:
                if (d->prober && !probe_armed) /* probes started by a reload */
                    arm_probe(d);
                rotad_tick(d, rota_clock_mono());
                reap_idle(d, rota_clock_mono());
                if (d->accept_paused) {
                    d->accept_paused = false;
                    arm_accept(d);
                }
                arm_tick(d);
                break;
            }
        }
        io_uring_cq_advance(&d->ring, seen);
        if (d->reload_requested) {
            d->reload_requested = false;
            char err[1024];
            rotad_reload(d, err, sizeof(err));
        }
    }
    for (int i = 0; i < ROTAD_CONN_SLOTS; i++)
        if (d->conns[i].fd >= 0)
            conn_close(d, i);
    io_uring_queue_exit(&d->ring);
    close(d->listen_fd);
    close(d->sig_fd);
    return 0;
}

void rotad_tick(struct rotad *d, uint64_t now)
{
    /* What workers read in their answers reaches the snapshots within a tick. */
    struct rota_shm_map *pm = rotad_map(d);
    if (d->nseen != pm->naccounts) {
        free(d->seen_odd);
        d->seen_odd = calloc(pm->naccounts + 1, sizeof(*d->seen_odd));
        d->nseen = d->seen_odd ? pm->naccounts : 0;
    }
    d->passive_folded += rota_passive_fold(pm, d->seen_odd);
    rotad_pool_tick(d, now);
    if (now >= d->next_heartbeat) {
        rota_shm_heartbeat(d->w, now);
        d->next_heartbeat = now + (d->cfg->heartbeat_ns ? d->cfg->heartbeat_ns : 1000000000ull);
    }
    if (now < d->next_second)
        return;
    d->next_second = now + 1000000000ull;
    struct rota_shm_map *m = rotad_map(d);
    rota_shm_settle(d->w, false);
    uint64_t reclaimed = rota_shm_clients_reap(rota_shm_writer_clients(d->w), m, NULL);
    if (reclaimed) {
        d->leases_reclaimed += reclaimed;
        rota_info("leases: %llu calls held by exited workers reported done",
                  (unsigned long long)reclaimed);
    }
    if (!d->sup)
        return; /* out of memory after a reload: make_sup logged it; retried on reload */
    rotad_probes_tick(d, now);
    uint32_t resets = rota_sup_resets(d->sup, m, rotad_wall(d));
    if (resets) {
        d->resets += resets;
        rota_info("quota: %u windows reset on schedule", resets);
    }
    uint32_t trips = rota_sup_rate_tick(d->sup, m, now, now * 0x9e3779b97f4a7c15ull);
    if (trips) {
        d->rate_trips += trips;
        rota_info("breaker: %u accounts opened by failure rate", trips);
    }
}
