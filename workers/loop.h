/*
 * loop.h - a per-thread io_uring event loop: accept, connect, recv, send, fd watches, timers,
 * deferred calls, and a stop that any thread may ask for.
 *
 * Private to the dispatch pool (workers/front*, and the upstream and dispatch layers).
 *
 * DESIGN
 * One loop per thread, used only by that thread; rota_loop_stop is the one function
 * another thread (or a signal handler) may call. Operations are caller-owned structs
 * (struct rota_loop_op, embedded in whatever owns the I/O) whose address is the
 * io_uring user data: the completion calls op->fn with the result, once per call
 * (multishot accept: once per connection, while IORING_CQE_F_MORE says more follow).
 * An op's memory must live until its completion arrives; rota_loop_cancel hurries it.
 *
 * Receives take their buffer from a ring the loop registers with the kernel (provided
 * buffers): the kernel picks one only when bytes arrive, so a connection that waits
 * holds no buffer. The bytes are valid during the completion call only
 * (rota_loop_recv_data); the loop gives the buffer back to the kernel when it returns.
 *
 * Watches (rota_loop_watch_*) are for sockets someone else reads and writes (libcurl's
 * CURLMOPT_SOCKETFUNCTION): level-triggered, persistent until changed or removed, and
 * owned by the loop, so removing one is safe at any moment, inside its own callback too.
 *
 * Timers are caller-owned (struct rota_loop_timer) in a binary heap, millisecond
 * resolution on CLOCK_MONOTONIC; setting one that is set moves it. The loop waits with
 * the nearest deadline as its timeout, so an idle loop makes no system call but the wait.
 *
 * Deferred calls (rota_loop_defer) run after the event being handled, before the loop
 * waits again: a way to continue work outside the call stack of whoever asked for it.
 * Those queued with rota_loop_after_submit run later in the same turn, once what the
 * turn queued has been submitted.
 *
 * Errors are 0 or a negative errno.
 */
#ifndef ROTA_LOOP_H
#define ROTA_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rota_loop;
struct rota_loop_op;

/* A completion: "res" as io_uring reports it (bytes, a new fd, or a negative errno),
 * "flags" the CQE's flags (IORING_CQE_F_MORE for a multishot that continues). */
typedef void (*rota_loop_fn)(struct rota_loop_op *op, int res, uint32_t flags);

struct rota_loop_op {
    rota_loop_fn fn; /* set by the owner before the first use */
    int fd;          /* the loop's: the fd of the operation in flight */
    uint8_t kind;    /* the loop's: what is in flight */
    bool busy;       /* the loop's: an operation is in flight */
};

struct rota_loop_opts {
    unsigned entries;   /* submission queue size (0 = 1024) */
    unsigned buf_size;  /* bytes per receive buffer (0 = 16384) */
    unsigned buf_count; /* receive buffers, a power of 2 (0 = 128) */
};

/* Make a loop ("o" may be NULL for defaults). Needs Linux 5.19 (provided buffer rings). */
int rota_loop_new(struct rota_loop **out, const struct rota_loop_opts *o);
/* Free a loop that no longer runs. Operations still in flight are dropped unanswered. */
void rota_loop_free(struct rota_loop *l);

/* Run until rota_loop_stop. Returns 0, or a negative errno if the ring failed. */
int rota_loop_run(struct rota_loop *l);
/* Ask the loop to return from rota_loop_run. Any thread, and async-signal-safe. */
void rota_loop_stop(struct rota_loop *l);

/* The monotonic clock in milliseconds, as of the event being handled. */
uint64_t rota_loop_now(const struct rota_loop *l);

/* Accept on listening socket "fd": multishot where the kernel has it, so "op" completes
 * once per connection (res = the new fd, SOCK_CLOEXEC) while flags hold
 * IORING_CQE_F_MORE; a completion without it ends the accept, to be armed again. */
int rota_loop_accept(struct rota_loop *l, struct rota_loop_op *op, int fd);
/* Receive on "fd" into a buffer of the loop's; res = bytes (0 = end of stream). */
int rota_loop_recv(struct rota_loop *l, struct rota_loop_op *op, int fd);
/* Receive on "fd" into "buf" (up to "len" bytes; it must live until the completion):
 * for bytes whose place is known before they come. */
int rota_loop_recv_into(struct rota_loop *l, struct rota_loop_op *op, int fd, void *buf,
                        size_t len);
/* The bytes of a receive's completion ("flags" as passed to fn); valid until fn returns. */
const char *rota_loop_recv_data(const struct rota_loop *l, uint32_t flags);
/* Send "len" bytes at "buf" (which must live until the completion), MSG_NOSIGNAL. */
int rota_loop_send(struct rota_loop *l, struct rota_loop_op *op, int fd, const void *buf,
                   size_t len);
/* Send what "msg" points at (it, its iovec and the bytes must live until the
 * completion), MSG_NOSIGNAL; res = bytes sent, which may be fewer than asked. */
int rota_loop_sendmsg(struct rota_loop *l, struct rota_loop_op *op, int fd,
                      const struct msghdr *msg);
/* Connect socket "fd" to "addr" (which must live until the completion); res = 0 or a
 * negative errno. */
int rota_loop_connect(struct rota_loop *l, struct rota_loop_op *op, int fd,
                      const struct sockaddr *addr, socklen_t len);
/* Hand what is queued to the kernel now, if the loop is quiet (this turn began with
 * few completions): an answer then leaves before the work that follows it, as it
 * would from a write(2). A busy loop keeps gathering its operations into one submit. */
void rota_loop_urgent(struct rota_loop *l);
/* Ask the operation in flight on "op", if any, to complete now (-ECANCELED, or its
 * result if it was done). */
void rota_loop_cancel(struct rota_loop *l, struct rota_loop_op *op);

/* Watches: call fn(arg, fd, revents) whenever "fd" is ready for "events" (POLLIN,
 * POLLOUT; POLLERR and POLLHUP are always reported). NULL when out of memory. */
struct rota_loop_watch;
typedef void (*rota_loop_watch_fn)(void *arg, int fd, unsigned revents);
struct rota_loop_watch *rota_loop_watch_add(struct rota_loop *l, int fd, unsigned events,
                                            rota_loop_watch_fn fn, void *arg);
/* Change what "w" waits for (0 = nothing for now, the watch stays). */
void rota_loop_watch_mod(struct rota_loop *l, struct rota_loop_watch *w, unsigned events);
/* Remove "w": fn is not called for it again; "w" may not be used after. */
void rota_loop_watch_del(struct rota_loop *l, struct rota_loop_watch *w);

/* Timers: fn(t) runs once "ms" after rota_loop_timer_set, unless stopped or set again. */
struct rota_loop_timer {
    void (*fn)(struct rota_loop_timer *t); /* set by the owner */
    uint64_t due;                          /* the loop's */
    uint32_t slot;                         /* the loop's: heap index + 1, 0 = not set */
};
int rota_loop_timer_set(struct rota_loop *l, struct rota_loop_timer *t, uint64_t ms);
void rota_loop_timer_stop(struct rota_loop *l, struct rota_loop_timer *t);

/* Deferred calls: fn(d) runs once, after the current event; queuing a queued one is a
 * no-op. */
struct rota_loop_defer {
    void (*fn)(struct rota_loop_defer *d); /* set by the owner */
    struct rota_loop_defer *next;          /* the loop's */
    bool queued;                           /* the loop's */
};
void rota_loop_defer(struct rota_loop *l, struct rota_loop_defer *d);
/* The same, but fn(d) runs once the operations queued so far have been handed to the
 * kernel (before the loop waits again): for work that may block a moment (a write to
 * a file), so that the answers queued before it go out first. */
void rota_loop_after_submit(struct rota_loop *l, struct rota_loop_defer *d);
/* Take "d" off its queue if it is there. */
void rota_loop_undefer(struct rota_loop *l, struct rota_loop_defer *d);

#endif
