/*
 * loop.c - a per-thread io_uring event loop (loop.h says what it offers).
 *
 * DESIGN
 * The user data of every submission is the address of a struct rota_loop_op, or 0 for
 * the ones whose completion means nothing (cancellations, poll removals). Completions
 * are taken one at a time and marked seen before their callback runs, so a callback
 * may submit (and even wait for a free submission slot) without disturbing the walk.
 *
 * Receive buffers: one provided-buffer ring (group 0) of buf_count buffers of buf_size
 * bytes, allocated once. A buffer goes back to the ring as soon as the callback that
 * got it returns, so a receive that finds the ring empty (-ENOBUFS: more receives
 * completed at once than there are buffers) is simply submitted again.
 *
 * Multishot accept needs Linux 5.19; a kernel without it refuses the flag (-EINVAL) on
 * the first completion, and from then on the loop accepts one connection per
 * submission. The first accept's -EINVAL is taken for that, never passed on.
 *
 * Only the thread that runs the loop touches it, but for "stop" (an atomic flag and an
 * eventfd write, so a signal handler may call it).
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "loop.h"

#define BGID 0
#define URGENT_MAX 2 /* a turn with this many completions or fewer is a quiet one */

enum kind { K_NONE, K_ACCEPT, K_ACCEPT_MULTI, K_RECV, K_RECV_INTO, K_SEND, K_CONNECT, K_POLL, K_WAKE };

struct rota_loop_watch {
    struct rota_loop_op op;
    rota_loop_watch_fn fn;
    void *arg;
    unsigned events;
    bool dead, in_cb;
    struct rota_loop_watch *next; /* all watches, live and free */
    struct rota_loop_watch *next_free;
};

struct rota_loop {
    struct io_uring ring;
    atomic_bool stop;
    int wake_fd;
    uint64_t wake_val;
    struct rota_loop_op wake_op;
    uint64_t now;
    bool single_accept; /* the kernel refused multishot accept */
    bool accept_seen;   /* an accept has completed: -EINVAL from now on is real */
    /* receive buffers */
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *bufs;
    unsigned buf_size, buf_count;
    /* timers: a binary min-heap on "due" */
    struct rota_loop_timer **heap;
    uint32_t nheap, heap_cap;
    /* deferred calls, first in first out */
    struct rota_loop_defer *dhead, *dtail;
    struct rota_loop_defer *ahead, *atail; /* to run once what is queued is submitted */
    unsigned turn_ready; /* completions this turn began with */
    /* watches */
    struct rota_loop_watch *watches, *free_watches;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t rota_loop_now(const struct rota_loop *l)
{
    return l->now;
}

/* A submission slot; when the queue is full, submit what is there to make room. */
static struct io_uring_sqe *get_sqe(struct rota_loop *l)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&l->ring);
    while (!s) {
        io_uring_submit(&l->ring);
        s = io_uring_get_sqe(&l->ring);
    }
    return s;
}

static void start(struct rota_loop_op *op, struct io_uring_sqe *s, enum kind k, int fd)
{
    op->kind = (uint8_t)k;
    op->fd = fd;
    op->busy = true;
    io_uring_sqe_set_data(s, op);
}

static void arm_wake(struct rota_loop *l)
{
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_read(s, l->wake_fd, &l->wake_val, sizeof(l->wake_val), 0);
    start(&l->wake_op, s, K_WAKE, l->wake_fd);
}

static int setup_bufs(struct rota_loop *l)
{
    l->br_bytes = (sizeof(struct io_uring_buf) * l->buf_count + 4095) & ~(size_t)4095;
    void *p =
        mmap(NULL, l->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    l->br = p;
    l->bufs = malloc((size_t)l->buf_size * l->buf_count);
    if (!l->bufs)
        return -ENOMEM;
    io_uring_buf_ring_init(l->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)l->br, .ring_entries = l->buf_count, .bgid = BGID};
    int rc = io_uring_register_buf_ring(&l->ring, &reg, 0);
    if (rc < 0)
        return rc;
    int mask = io_uring_buf_ring_mask(l->buf_count);
    for (unsigned i = 0; i < l->buf_count; i++)
        io_uring_buf_ring_add(l->br, l->bufs + (size_t)i * l->buf_size, l->buf_size,
                              (unsigned short)i, mask, (int)i);
    io_uring_buf_ring_advance(l->br, (int)l->buf_count);
    return 0;
}

static int ring_init(struct rota_loop *l, unsigned entries)
{
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                                         IORING_SETUP_COOP_TASKRUN,
                                .cq_entries = entries * 4};
    int rc = io_uring_queue_init_params(entries, &l->ring, &p);
    if (rc == -EINVAL) { /* an older kernel: without the newer flags */
        p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE, .cq_entries = entries * 4};
        rc = io_uring_queue_init_params(entries, &l->ring, &p);
    }
    return rc;
}

int rota_loop_new(struct rota_loop **out, const struct rota_loop_opts *o)
{
    struct rota_loop_opts d = o ? *o : (struct rota_loop_opts){0};
    struct rota_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->buf_size = d.buf_size ? d.buf_size : 16384;
    l->buf_count = d.buf_count ? d.buf_count : 128;
    if (l->buf_count & (l->buf_count - 1) || l->buf_count > 32768) {
        free(l);
        return -EINVAL;
    }
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake_fd < 0) {
        int rc = -errno;
        free(l);
        return rc;
    }
    int rc = ring_init(l, d.entries ? d.entries : 1024);
    if (rc < 0) {
        close(l->wake_fd);
        free(l);
        return rc;
    }
    rc = setup_bufs(l);
    if (rc < 0) {
        rota_loop_free(l);
        return rc;
    }
    l->now = mono_ms();
    arm_wake(l);
    *out = l;
    return 0;
}

void rota_loop_free(struct rota_loop *l)
{
    if (!l)
        return;
    io_uring_queue_exit(&l->ring); /* also drops the buffer ring's registration */
    if (l->br)
        munmap(l->br, l->br_bytes);
    free(l->bufs);
    free(l->heap);
    for (struct rota_loop_watch *w = l->watches, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    close(l->wake_fd);
    free(l);
}

void rota_loop_stop(struct rota_loop *l)
{
    atomic_store_explicit(&l->stop, true, memory_order_release);
    uint64_t one = 1;
    (void)!write(l->wake_fd, &one, sizeof(one));
}

/* ---- operations ---- */

static void prep_accept(struct rota_loop *l, struct rota_loop_op *op, int fd)
{
    struct io_uring_sqe *s = get_sqe(l);
    if (l->single_accept) {
        io_uring_prep_accept(s, fd, NULL, NULL, SOCK_CLOEXEC);
        start(op, s, K_ACCEPT, fd);
    } else {
        io_uring_prep_multishot_accept(s, fd, NULL, NULL, SOCK_CLOEXEC);
        start(op, s, K_ACCEPT_MULTI, fd);
    }
}

int rota_loop_accept(struct rota_loop *l, struct rota_loop_op *op, int fd)
{
    if (op->busy)
        return -EBUSY;
    prep_accept(l, op, fd);
    return 0;
}

static void prep_recv(struct rota_loop *l, struct rota_loop_op *op, int fd)
{
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_recv(s, fd, NULL, l->buf_size, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    start(op, s, K_RECV, fd);
}

int rota_loop_recv(struct rota_loop *l, struct rota_loop_op *op, int fd)
{
    if (op->busy)
        return -EBUSY;
    prep_recv(l, op, fd);
    return 0;
}

int rota_loop_recv_into(struct rota_loop *l, struct rota_loop_op *op, int fd, void *buf,
                        size_t len)
{
    if (op->busy)
        return -EBUSY;
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_recv(s, fd, buf, len, 0);
    start(op, s, K_RECV_INTO, fd);
    return 0;
}

const char *rota_loop_recv_data(const struct rota_loop *l, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_BUFFER))
        return NULL;
    return l->bufs + (size_t)(flags >> IORING_CQE_BUFFER_SHIFT) * l->buf_size;
}

int rota_loop_send(struct rota_loop *l, struct rota_loop_op *op, int fd, const void *buf,
                   size_t len)
{
    if (op->busy)
        return -EBUSY;
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_send(s, fd, buf, len, MSG_NOSIGNAL);
    start(op, s, K_SEND, fd);
    return 0;
}

int rota_loop_sendmsg(struct rota_loop *l, struct rota_loop_op *op, int fd,
                      const struct msghdr *msg)
{
    if (op->busy)
        return -EBUSY;
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_sendmsg(s, fd, msg, MSG_NOSIGNAL);
    start(op, s, K_SEND, fd);
    return 0;
}

int rota_loop_connect(struct rota_loop *l, struct rota_loop_op *op, int fd,
                      const struct sockaddr *addr, socklen_t len)
{
    if (op->busy)
        return -EBUSY;
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_connect(s, fd, addr, len);
    start(op, s, K_CONNECT, fd);
    return 0;
}

void rota_loop_urgent(struct rota_loop *l)
{
    if (l->turn_ready <= URGENT_MAX && io_uring_cq_ready(&l->ring) <= URGENT_MAX &&
        io_uring_sq_ready(&l->ring))
        io_uring_submit(&l->ring);
}

void rota_loop_cancel(struct rota_loop *l, struct rota_loop_op *op)
{
    if (!op->busy)
        return;
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_cancel64(s, (uint64_t)(uintptr_t)op, 0);
    io_uring_sqe_set_data64(s, 0);
    /* Now, not with the next batch: "op" may complete on its own in the meantime, and
     * its memory be used for a new operation that this cancellation would then end. */
    io_uring_submit(&l->ring);
}

/* ---- watches ---- */

static void watch_arm(struct rota_loop *l, struct rota_loop_watch *w)
{
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_poll_add(s, w->op.fd, w->events);
    start(&w->op, s, K_POLL, w->op.fd);
}

static void watch_unarm(struct rota_loop *l, struct rota_loop_watch *w)
{
    struct io_uring_sqe *s = get_sqe(l);
    io_uring_prep_poll_remove(s, (uint64_t)(uintptr_t)&w->op);
    io_uring_sqe_set_data64(s, 0);
}

static void watch_release(struct rota_loop *l, struct rota_loop_watch *w)
{
    w->next_free = l->free_watches;
    l->free_watches = w;
}

/* A poll completed (or was removed to change its events): report, then wait again. */
static void watch_done(struct rota_loop *l, struct rota_loop_watch *w, int res)
{
    if (w->dead) {
        watch_release(l, w);
        return;
    }
    unsigned want = w->events | POLLERR | POLLHUP;
    if (res < 0 && res != -ECANCELED)
        res = POLLERR; /* the fd is gone or refused polling: say so, then wait no more */
    /* -ECANCELED: removed to change its events (or by a removal meant for an earlier
     * poll of the same watch, one that had completed already): wait again */
    bool again = res == -ECANCELED || (res >= 0 && !((unsigned)res & (POLLERR | POLLNVAL)));
    if (res > 0 && ((unsigned)res & want)) {
        w->in_cb = true;
        w->fn(w->arg, w->op.fd, (unsigned)res & want);
        w->in_cb = false;
        if (w->dead) {
            watch_release(l, w);
            return;
        }
    }
    if (again && w->events && !w->op.busy)
        watch_arm(l, w);
}

struct rota_loop_watch *rota_loop_watch_add(struct rota_loop *l, int fd, unsigned events,
                                            rota_loop_watch_fn fn, void *arg)
{
    struct rota_loop_watch *w = l->free_watches;
    if (w) {
        l->free_watches = w->next_free;
    } else {
        w = malloc(sizeof(*w));
        if (!w)
            return NULL;
        w->next = l->watches;
        l->watches = w;
    }
    struct rota_loop_watch *keep = w->next;
    *w = (struct rota_loop_watch){.fn = fn, .arg = arg, .events = events, .next = keep};
    w->op.fd = fd;
    if (events)
        watch_arm(l, w);
    return w;
}

void rota_loop_watch_mod(struct rota_loop *l, struct rota_loop_watch *w, unsigned events)
{
    if (w->events == events)
        return;
    w->events = events;
    if (w->op.busy)
        watch_unarm(l, w); /* its completion arms it again with the new events */
    else if (events && !w->in_cb)
        watch_arm(l, w);
}

void rota_loop_watch_del(struct rota_loop *l, struct rota_loop_watch *w)
{
    w->dead = true;
    if (w->op.busy)
        watch_unarm(l, w); /* released when the poll's completion arrives */
    else if (!w->in_cb)
        watch_release(l, w);
}

/* ---- timers ---- */

static void heap_put(struct rota_loop *l, uint32_t i, struct rota_loop_timer *t)
{
    l->heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(struct rota_loop *l, uint32_t i)
{
    struct rota_loop_timer *t = l->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (l->heap[p]->due <= t->due)
            break;
        heap_put(l, i, l->heap[p]);
        i = p;
    }
    heap_put(l, i, t);
}

static void heap_down(struct rota_loop *l, uint32_t i)
{
    struct rota_loop_timer *t = l->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[c]->due)
            c++;
        if (l->heap[c]->due >= t->due)
            break;
        heap_put(l, i, l->heap[c]);
        i = c;
    }
    heap_put(l, i, t);
}

void rota_loop_timer_stop(struct rota_loop *l, struct rota_loop_timer *t)
{
    if (!t->slot)
        return;
    uint32_t i = t->slot - 1;
    t->slot = 0;
    struct rota_loop_timer *last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_put(l, i, last);
    heap_up(l, i);
    heap_down(l, last->slot - 1);
}

int rota_loop_timer_set(struct rota_loop *l, struct rota_loop_timer *t, uint64_t ms)
{
    uint64_t due = l->now + ms;
    if (t->slot) { /* move it */
        uint32_t i = t->slot - 1;
        t->due = due;
        heap_up(l, i);
        heap_down(l, t->slot - 1);
        return 0;
    }
    if (l->nheap == l->heap_cap) {
        uint32_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        struct rota_loop_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        l->heap = h;
        l->heap_cap = cap;
    }
    t->due = due;
    heap_put(l, l->nheap++, t);
    heap_up(l, l->nheap - 1);
    return 0;
}

static void fire_timers(struct rota_loop *l)
{
    while (l->nheap && l->heap[0]->due <= l->now) {
        struct rota_loop_timer *t = l->heap[0];
        rota_loop_timer_stop(l, t);
        t->fn(t);
    }
}

/* ---- deferred calls ---- */

static void enqueue(struct rota_loop_defer **head, struct rota_loop_defer **tail,
                    struct rota_loop_defer *d)
{
    if (d->queued)
        return;
    d->queued = true;
    d->next = NULL;
    if (*tail)
        (*tail)->next = d;
    else
        *head = d;
    *tail = d;
}

/* Take "d" off the queue at "head" if it is there: whether it was. */
static bool dequeue(struct rota_loop_defer **head, struct rota_loop_defer **tail,
                    struct rota_loop_defer *d)
{
    struct rota_loop_defer **pp = head, *prev = NULL;
    while (*pp && *pp != d) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return false;
    *pp = d->next;
    if (*tail == d)
        *tail = prev;
    return true;
}

void rota_loop_defer(struct rota_loop *l, struct rota_loop_defer *d)
{
    enqueue(&l->dhead, &l->dtail, d);
}

void rota_loop_after_submit(struct rota_loop *l, struct rota_loop_defer *d)
{
    enqueue(&l->ahead, &l->atail, d);
}

void rota_loop_undefer(struct rota_loop *l, struct rota_loop_defer *d)
{
    if (!d->queued)
        return;
    if (!dequeue(&l->dhead, &l->dtail, d))
        dequeue(&l->ahead, &l->atail, d);
    d->queued = false;
}

static void run_queue(struct rota_loop_defer **head, struct rota_loop_defer **tail)
{
    while (*head) {
        struct rota_loop_defer *d = *head;
        *head = d->next;
        if (!*head)
            *tail = NULL;
        d->queued = false;
        d->fn(d);
    }
}

static void run_deferred(struct rota_loop *l)
{
    run_queue(&l->dhead, &l->dtail);
}

/* ---- the loop ---- */

static void give_back(struct rota_loop *l, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_BUFFER))
        return;
    unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
    io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * l->buf_size, l->buf_size,
                          (unsigned short)bid, io_uring_buf_ring_mask(l->buf_count), 0);
    io_uring_buf_ring_advance(l->br, 1);
}

/* One completion; false if it was the loop's own and nothing else is to be done. */
static void complete(struct rota_loop *l, struct rota_loop_op *op, int res, uint32_t flags)
{
    if (op->kind == K_ACCEPT_MULTI && res == -EINVAL && !l->accept_seen) {
        l->single_accept = true; /* this kernel has no multishot accept */
        prep_accept(l, op, op->fd);
        return;
    }
    if (op->kind == K_ACCEPT || op->kind == K_ACCEPT_MULTI)
        l->accept_seen = true;
    if (!(flags & IORING_CQE_F_MORE))
        op->busy = false;
    switch (op->kind) {
    case K_WAKE:
        if (!atomic_load_explicit(&l->stop, memory_order_acquire))
            arm_wake(l);
        return;
    case K_RECV:
        if (res == -ENOBUFS) { /* every buffer was taken at once: they are back now */
            prep_recv(l, op, op->fd);
            return;
        }
        break;
    case K_POLL:
        watch_done(l, (struct rota_loop_watch *)op, res);
        return;
    default:
        break;
    }
    op->fn(op, res, flags);
    give_back(l, flags);
}

static void reap(struct rota_loop *l)
{
    struct io_uring_cqe *cqe;
    l->turn_ready = io_uring_cq_ready(&l->ring);
    while (io_uring_peek_cqe(&l->ring, &cqe) == 0) {
        struct rota_loop_op *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        uint32_t flags = cqe->flags;
        io_uring_cqe_seen(&l->ring, cqe);
        if (op)
            complete(l, op, res, flags);
        else
            give_back(l, flags);
    }
}

static bool stopping(struct rota_loop *l)
{
    return atomic_load_explicit(&l->stop, memory_order_acquire);
}

int rota_loop_run(struct rota_loop *l)
{
    while (!stopping(l)) {
        run_deferred(l);
        if (stopping(l))
            break;
        if (l->ahead) { /* what was queued goes first, then what waited for it */
            io_uring_submit(&l->ring);
            run_queue(&l->ahead, &l->atail);
        }
        struct __kernel_timespec ts, *tp = NULL;
        if (l->dhead) { /* a deferred call queued another: do not sleep */
            ts = (struct __kernel_timespec){0};
            tp = &ts;
        } else if (l->nheap) {
            uint64_t now = mono_ms(), due = l->heap[0]->due;
            uint64_t wait = due > now ? due - now : 0;
            ts = (struct __kernel_timespec){(long long)(wait / 1000),
                                            (long long)(wait % 1000) * 1000000};
            tp = &ts;
        }
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, tp, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
            return rc;
        l->now = mono_ms();
        reap(l);
        fire_timers(l);
    }
    return 0;
}
