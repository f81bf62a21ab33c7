/*
 * proxy.h - rota-bench --proxy: the dispatch pool against the upstream directly and
 * nginx as a plain reverse proxy, on one machine, in one run (private to rota-bench).
 *
 * DESIGN
 * proxy.c starts everything (the fixed-answer upstream, nginx, rotad and the rota-worker
 * processes, each on 127.0.0.1) and stops what it started, even when a step fails;
 * proxy_rows.c runs the rows against the three targets in turn and prints them.
 * proxy_upstream.c is the upstream: a child process answering every POST with a fixed
 * 1 KB chat completion (POST /v1/messages: a 1 KB Anthropic message), or, when the body
 * asks for a stream, 200 SSE events 5 ms apart, each carrying the CLOCK_MONOTONIC
 * instant it was written. proxy_load.c is the load of ours where wrk cannot measure:
 * requests in sequence on one connection, streams (per-event delay, first byte) and
 * idle keep-alive connections held open.
 */
#ifndef ROTA_BENCH_PROXY_H
#define ROTA_BENCH_PROXY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proxy_cfg {
    double duration;       /* seconds per target and row */
    uint32_t procs;        /* rota-worker processes (and nginx workers: procs x threads) */
    uint32_t threads;      /* threads per rota-worker process */
    uint32_t conns;        /* connections of the throughput rows */
    uint32_t idle;         /* idle keep-alive connections held */
    uint32_t up_threads;   /* the upstream's threads */
};

/* The SSE stream the upstream sends: events, and the gap between them. */
#define PROXY_SSE_EVENTS 200
#define PROXY_SSE_GAP_NS 5000000ull

/* The models of the bench's two routes: passed through to a provider of OpenAI's format,
 * and translated to one of Anthropic's. */
#define PROXY_MODEL   "bench-model"
#define PROXY_MODEL_X "bench-x"

/* Run every row; the exit status (0, or 1 when a step failed). */
int bench_proxy(const struct proxy_cfg *c);

/* proxy.c and proxy_rows.c: the targets, and what the rows need of what was started. */
enum { DIRECT, NGINX, ROTA, TARGETS };

/* Processes whose memory and CPU time a row reads ("kids": their children too). */
struct mem_src {
    pid_t *pids;
    uint32_t n;
    bool kids;
};

struct proxy_run {
    const struct proxy_cfg *c;
    const char *dir; /* the run's directory: wrk's bodies and scripts go there */
    const char *wrk; /* wrk's path */
    uint16_t port[TARGETS];
    struct mem_src mem[TARGETS]; /* none for direct */
};

/* proxy.c: set on SIGINT or SIGTERM; a row stops at its next step. */
extern volatile sig_atomic_t proxy_interrupted;
void proxy_sleep_ms(int ms);
/* "text" into a new file "path": 0 or -1. */
int proxy_write_file(const char *path, const char *text, size_t len);

/* proxy_rows.c: print the column heads and every row. 0, or -1 with "err". */
int proxy_measure(const struct proxy_run *p, char *err, size_t n);

/* xlate.c: rota-bench --xlate, the translation between wire formats. Exit status. */
int bench_xlate(void);

/* proxy_upstream.c: start the fixed-answer upstream with "threads" threads on a free
 * port of 127.0.0.1 (*port). Returns its pid or -1 with "err". It dies with its parent. */
pid_t bench_upstream_start(uint32_t threads, uint16_t *port, char *err, size_t n);

/* proxy_load.c. A histogram of nanoseconds (bench.h's buckets), and its quantiles. */
struct lat {
    uint64_t n, errors;
    uint64_t *hist; /* HIST_BUCKETS */
};
int lat_init(struct lat *l);
void lat_reset(struct lat *l);
void lat_free(struct lat *l);
double lat_q(const struct lat *l, double q);

/* A POST of "body" to /v1/chat/completions with the headers every target gets. */
char *load_request(const char *body, size_t len, size_t *out_len);

/* "req" sent on a new connection to 127.0.0.1:"port": the answer's status (-1 when
 * nothing answered) and its body, as much as fits in "cap" (NUL-terminated). */
int load_one(uint16_t port, const char *req, size_t len, char *body, size_t cap);

/* One connection to 127.0.0.1:"port", "req" sent and its whole answer read, in
 * sequence, for "seconds" (after a short warm-up): each request's time into "l". */
int load_sequence(uint16_t port, const char *req, size_t len, double seconds, struct lat *l,
                  char *err, size_t n);

/* Streams, one after another, for "seconds" (at least one): every event's delay (when
 * it arrived less the instant the upstream wrote it) into "ev", each stream's first
 * byte (from the request sent) into "first". */
int load_streams(uint16_t port, const char *req, size_t len, double seconds, struct lat *ev,
                 struct lat *first, char *err, size_t n);

/* Open "count" connections, each sends "req" and reads its answer; they stay open.
 * Returns the array of fds (close with load_close) or NULL with "err". */
int *load_idle_open(uint16_t port, const char *req, size_t len, uint32_t count, char *err,
                    size_t n);
void load_close(int *fds, uint32_t count);

/* GET "path" on 127.0.0.1:"port": the status, or -1 when nothing answered. */
int load_get_status(uint16_t port, const char *path);

#endif
