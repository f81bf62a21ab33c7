/*
 * probe.c - the probe thread: libcurl multi over every probe target, on a schedule.
 *
 * DESIGN
 * Shared with the caller's thread, under "lock": the pending target list (set by
 * rota_prober_set, adopted by the thread at its next turn), the "probe now" requests and
 * the result queue (a ring; when rotad falls behind by RESULTS_MAX the oldest result is
 * dropped and counted). Everything else (slots, transfers, buffers) belongs to the
 * thread. curl_multi_wakeup interrupts the thread's wait when something is asked of it.
 * Transfers are bounded by the target's timeout and answer size, follow no redirects,
 * and speak HTTP(S) only.
 *
 * Exec targets run their command with posix_spawn: /bin/sh -c COMMAND, leader of a new
 * process group, every signal unblocked and back to its default (rotad blocks SIGTERM,
 * SIGINT and SIGHUP for its signalfd and ignores SIGPIPE), stdin and stderr on /dev/null,
 * stdout the write end of a pipe; every descriptor of ours is O_CLOEXEC or closed in the
 * child. The read end is non-blocking and joins curl_multi_poll's extra descriptors, so
 * commands and transfers progress in one wait. A command is done when its output ended
 * and its leader exited (seen with WNOWAIT, so the group's id stays ours until reaped);
 * the group is then killed, so nothing it started outlives it, and so on a timeout, an
 * output over the cap, a reload or a stop. A killed child that is not yet reaped waits
 * in "reap" and is retried every REAP_POLL_MS; stopping waits up to STOP_REAP_MS for
 * them. The credential reaches the child only in its environment, built for each run
 * and wiped once posix_spawn returned (the child has then exec'd); of rotad's own
 * environment the child gets PATH, HOME and LANG, nothing else.
 *
 * Before a result is queued, its messages and the excerpt of a failed answer are
 * redacted (redact.c) with the set that came with the targets: every credential of the
 * instance, not only the targets' (an error body of one provider may echo the key of an
 * account another provider holds, or one that is not probed). The set is adopted with
 * the targets, under "lock", so results are redacted with the keys of the generation the
 * thread probes for, and the old set is released once nothing here uses it.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "hash.h"
#include "probe.h"

#define RESULTS_MAX    1024
#define RETRY_FIRST_NS (10ull * 1000000000ull)
#define HEADERS_MAX    (64u * 1024)
#define EXEC_TIMEOUT   (5ull * 1000000000ull) /* a target without a timeout */
#define REAP_POLL_MS   10
#define STOP_REAP_MS   5000
#define EXEC_READ_STEP (256u * 1024) /* read per turn, so that transfers go on too */
#define CRED_VAR       "ROTA_CREDENTIAL="
#define DEFAULT_PATH   "PATH=/usr/local/bin:/usr/bin:/bin"

extern char **environ;

struct buf {
    char *p;
    size_t len, cap, max;
    bool over;
};

struct slot {
    struct rota_probe_target t;
    uint64_t next_at; /* monotonic ns */
    uint32_t fails;
    CURL *easy; /* a transfer in flight */
    struct curl_slist *hdrs;
    struct buf head, body; /* the answer; an exec target's output goes in "body" */
    uint64_t started;
    pid_t pid;       /* a command running (exec targets), not reaped; 0 = none */
    int out;         /* the read end of its stdout until end of file; -1 = none */
    bool exited;     /* its leader has exited (a zombie: the group id is still ours) */
    bool lost;       /* ... and was reaped elsewhere (SIGCHLD ignored): its ids are not */
    int why, status; /* then: CLD_EXITED and the exit status, or CLD_KILLED and the signal */
};

struct rota_prober {
    pthread_t thread;
    CURLM *multi;
    int efd;
    pthread_mutex_t lock;
    /* under lock */
    bool stop;
    struct rota_probe_target *pending; /* a new target list, or NULL */
    uint32_t npending;
    bool have_pending;
    uint64_t now_ids[64];
    uint32_t nnow;
    struct rota_probe_result *ring;
    uint32_t head, count;
    uint64_t dropped;
    struct rota_redact *pending_redact; /* comes with "pending" */
    /* the thread's */
    struct rota_redact *redact; /* every credential of the instance (a reference) */
    struct slot *slots;
    uint32_t nslots;
    struct curl_waitfd *wfds; /* one per slot: the commands' stdout to wait on */
    pid_t *reap;              /* killed children not reaped yet */
    uint32_t nreap, reap_cap;
    uint64_t rnd;
    struct rota_probe_result r; /* the result being built (large) */
};

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static bool buf_add(struct buf *b, const char *p, size_t n)
{
    if (b->len + n > b->max) {
        b->over = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return false;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return buf_add(arg, p, size * n) ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0)
        b->len = 0; /* a new response (after 100 Continue): its headers only */
    return buf_add(b, p, size * n) ? size * n : 0;
}

/* Reap "pid" (killed) now, or later from the loop. */
static void reap_later(struct rota_prober *p, pid_t pid)
{
    if (waitpid(pid, NULL, WNOHANG) != 0)
        return; /* reaped, or not ours to reap (ECHILD) */
    if (p->nreap == p->reap_cap) {
        uint32_t cap = p->reap_cap ? 2 * p->reap_cap : 8;
        pid_t *q = realloc(p->reap, cap * sizeof(*q));
        if (!q) { /* it was sent SIGKILL: the wait is short */
            waitpid(pid, NULL, 0);
            return;
        }
        p->reap = q;
        p->reap_cap = cap;
    }
    p->reap[p->nreap++] = pid;
}

/* Reap what can be; returns how many are left. */
static uint32_t reap_some(struct rota_prober *p)
{
    for (uint32_t i = 0; i < p->nreap;)
        if (waitpid(p->reap[i], NULL, WNOHANG) != 0)
            p->reap[i] = p->reap[--p->nreap];
        else
            i++;
    return p->nreap;
}

static bool busy(const struct slot *s)
{
    return s->easy || s->pid;
}

static void slot_end(struct rota_prober *p, struct slot *s)
{
    if (s->out >= 0) {
        close(s->out);
        s->out = -1;
    }
    if (s->pid && !s->lost) { /* the leader is not reaped: -pid is still its group */
        kill(-s->pid, SIGKILL);
        reap_later(p, s->pid);
    }
    s->pid = 0;
    s->exited = s->lost = false;
    if (s->easy) {
        curl_multi_remove_handle(p->multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    /* An answer can echo a key: wiped before it goes back to the allocator. */
    if (s->head.p)
        explicit_bzero(s->head.p, s->head.cap);
    if (s->body.p)
        explicit_bzero(s->body.p, s->body.cap);
    free(s->head.p);
    free(s->body.p);
    s->head = (struct buf){0};
    s->body = (struct buf){0};
}

static uint64_t jitter(struct rota_prober *p, uint64_t span)
{
    p->rnd = rota_hash_mix(p->rnd + 0x9e3779b97f4a7c15ull);
    return span ? p->rnd % span : 0;
}

static void slot_start(struct rota_prober *p, struct slot *s, uint64_t now)
{
    CURL *e = curl_easy_init();
    if (!e)
        return;
    s->head = (struct buf){.max = HEADERS_MAX};
    s->body = (struct buf){.max = s->t.max_bytes ? s->t.max_bytes : ROTA_PARSE_MAX_BODY};
    if (s->t.auth[0])
        s->hdrs = curl_slist_append(s->hdrs, s->t.auth);
    if (s->t.extra[0])
        s->hdrs = curl_slist_append(s->hdrs, s->t.extra);
    if (s->t.body[0])
        s->hdrs = curl_slist_append(s->hdrs, "Content-Type: application/json");
    s->hdrs = curl_slist_append(s->hdrs, "Accept: application/json");
    curl_easy_setopt(e, CURLOPT_URL, s->t.url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
    if (strcmp(s->t.method, "POST") == 0)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->t.body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(s->t.timeout_ns / 1000000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->t.timeout_ns / 1000000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_USERAGENT, "rota-probe");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &s->head);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    s->easy = e;
    s->started = now;
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK)
        slot_end(p, s);
}

static void queue(struct rota_prober *p, const struct rota_probe_result *r)
{
    pthread_mutex_lock(&p->lock);
    if (p->count == RESULTS_MAX) {
        p->head = (p->head + 1) % RESULTS_MAX;
        p->count--;
        p->dropped++;
    }
    p->ring[(p->head + p->count) % RESULTS_MAX] = *r;
    p->count++;
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    ssize_t w = write(p->efd, &one, sizeof(one));
    (void)w;
}

/* Start p->r for slot "s". */
static struct rota_probe_result *result_begin(struct rota_prober *p, struct slot *s,
                                              uint64_t now)
{
    struct rota_probe_result *r = &p->r;
    memset(r, 0, sizeof(*r));
    r->account_id = s->t.account_id;
    r->wall = rota_clock_wall();
    r->elapsed_ns = now - s->started;
    rota_obs_init(&r->obs);
    return r;
}

/* The first bytes of what "s" received (printable ASCII, the rest as spaces) into
 * "out": a failed probe is logged with them, once redacted. */
static void excerpt(const struct slot *s, char *out, size_t cap)
{
    size_t n = s->body.p ? s->body.len : 0;
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s->body.p[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    out[n] = 0;
}

/* A probe of "s" ended with p->r: redact it, queue it, end the slot's work, schedule the
 * next. */
static void done(struct rota_prober *p, struct slot *s, uint64_t now)
{
    struct rota_probe_result *r = &p->r;
    if (!r->ok)
        excerpt(s, r->excerpt, sizeof(r->excerpt));
    rota_redact_text(p->redact, r->error, sizeof(r->error));
    rota_redact_text(p->redact, r->excerpt, sizeof(r->excerpt));
    rota_redact_text(p->redact, r->obs.detail, sizeof(r->obs.detail));
    rota_redact_text(p->redact, r->obs.problem, sizeof(r->obs.problem));
    bool ok = p->r.ok;
    queue(p, &p->r);
    wipe(&p->r, sizeof(p->r)); /* nothing of an answer stays on the thread */
    slot_end(p, s);
    if (ok) {
        s->fails = 0;
        s->next_at = now + s->t.interval_ns + jitter(p, s->t.jitter_ns);
    } else {
        uint64_t wait = RETRY_FIRST_NS << (s->fails < 16 ? s->fails : 16);
        s->fails++;
        s->next_at = now + (wait < s->t.interval_ns ? wait : s->t.interval_ns);
    }
}

/* A transfer ended: parse what came, queue the result, schedule the next probe. */
static void finish(struct rota_prober *p, struct slot *s, CURLcode code, uint64_t now)
{
    struct rota_probe_result *r = result_begin(p, s, now);
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
    const struct rota_parser *parser = rota_parser_find(s->t.kind);
    if (s->body.over) {
        snprintf(r->error, sizeof(r->error), "answer over %zu bytes", s->body.max);
    } else if (code != CURLE_OK) {
        snprintf(r->error, sizeof(r->error), "%s",
                 code == CURLE_OPERATION_TIMEDOUT ? "timed out" : curl_easy_strerror(code));
    } else if (!parser) {
        snprintf(r->error, sizeof(r->error), "no parser for provider kind '%s'", s->t.kind);
    } else {
        struct rota_http_in in = {r->status,   s->head.p ? s->head.p : "",
                                  s->head.len, s->body.p ? s->body.p : "",
                                  s->body.len, r->wall};
        r->parsed = parser->parse(&in, &s->t.opts, &r->obs);
        /* A 5xx says the provider is in trouble, not what the quota is: a failed probe. */
        r->ok = r->parsed >= 0 && r->status < 500;
        if (!r->ok)
            snprintf(r->error, sizeof(r->error), "HTTP %d: %.140s", r->status,
                     r->obs.problems ? r->obs.problem : "not understood");
    }
    done(p, s, now);
}

/* ---- exec targets ---- */

/* The names a command gets from rotad's environment; nothing else of it (other
 * accounts' key variables live there). */
static const char *const keep_vars[] = {"PATH=", "HOME=", "LANG="};

/* A command's environment: keep_vars from rotad's (PATH, when rotad has none,
 * DEFAULT_PATH), plus ROTA_CREDENTIAL=<credential> in *line (NULL when there is none; the
 * caller wipes and frees it). NULL when out of memory. */
static char **exec_env(const char *cred, char **line)
{
    size_t nkeep = sizeof(keep_vars) / sizeof(keep_vars[0]), k = 0, len = strlen(cred);
    char **env = calloc(nkeep + 2, sizeof(*env));
    *line = NULL;
    if (!env)
        return NULL;
    static char default_path[] = DEFAULT_PATH;
    for (size_t v = 0; v < nkeep; v++) {
        size_t n = strlen(keep_vars[v]);
        char **e = environ;
        while (e && *e && strncmp(*e, keep_vars[v], n) != 0)
            e++;
        if (e && *e)
            env[k++] = *e;
        else if (v == 0) /* PATH */
            env[k++] = default_path;
    }
    if (len) {
        if (!(*line = malloc(sizeof(CRED_VAR) + len))) {
            free(env);
            return NULL;
        }
        memcpy(*line, CRED_VAR, sizeof(CRED_VAR) - 1);
        memcpy(*line + sizeof(CRED_VAR) - 1, cred, len + 1);
        env[k++] = *line;
    }
    return env;
}

/* Run "s"'s command (see the DESIGN above); s->pid and s->out are set on success.
 * Returns 0 or a negative errno. */
static int exec_spawn(struct slot *s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    fcntl(fds[0], F_SETFL, O_NONBLOCK); /* ours only: the child's stdout blocks */
    char *line, **env = exec_env(s->t.auth, &line);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* dup2 first: the pipe may have taken descriptor 0 or 2 */
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* what lacks O_CLOEXEC */
#endif
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    char sh[] = "sh", dash_c[] = "-c";
    char *argv[] = {sh, dash_c, s->t.command, NULL};
    pid_t pid = 0;
    int rc = env ? posix_spawn(&pid, "/bin/sh", &fa, &at, argv, env) : ENOMEM;
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (line) {
        wipe(line, strlen(line));
        free(line);
    }
    free(env);
    close(fds[1]);
    if (rc) {
        close(fds[0]);
        return -rc;
    }
    s->pid = pid;
    s->out = fds[0];
    s->exited = false;
    return 0;
}

/* A command ended, "why" not (NULL: it exited and its output ended): queue the result. */
static void exec_finish(struct rota_prober *p, struct slot *s, const char *why, uint64_t now)
{
    struct rota_probe_result *r = result_begin(p, s, now);
    const struct rota_parser *parser = rota_parser_find(s->t.kind);
    if (why) {
        snprintf(r->error, sizeof(r->error), "%s", why);
    } else if (s->why == CLD_EXITED && s->status != 0) {
        snprintf(r->error, sizeof(r->error), "command exited with status %d", s->status);
    } else if (s->why != CLD_EXITED) {
        snprintf(r->error, sizeof(r->error), "command killed by signal %d", s->status);
    } else if (!parser) {
        snprintf(r->error, sizeof(r->error), "no parser for provider kind '%s'", s->t.kind);
    } else { /* the output is the body of an answer without status or headers */
        struct rota_http_in in = {0, "", 0, s->body.p ? s->body.p : "", s->body.len, r->wall};
        r->parsed = parser->parse(&in, &s->t.opts, &r->obs);
        r->ok = r->parsed >= 0;
        if (!r->ok)
            snprintf(r->error, sizeof(r->error), "command output (%zu bytes, exit 0): %.100s",
                     s->body.len, r->obs.problems ? r->obs.problem : "not understood");
    }
    done(p, s, now);
}

static void exec_start(struct rota_prober *p, struct slot *s, uint64_t now)
{
    s->body = (struct buf){.max = s->t.max_bytes ? s->t.max_bytes : ROTA_PARSE_MAX_BODY};
    s->started = now;
    int rc = exec_spawn(s);
    if (rc) {
        char why[96];
        snprintf(why, sizeof(why), "cannot start the command: %s", strerror(-rc));
        exec_finish(p, s, why, now);
    }
}

static uint64_t exec_deadline(const struct slot *s)
{
    return s->started + (s->t.timeout_ns ? s->t.timeout_ns : EXEC_TIMEOUT);
}

/* Read what the command wrote, see whether it ended; finish it when it did, or when it
 * ran out of time or wrote too much. */
static void exec_step(struct rota_prober *p, struct slot *s, uint64_t now)
{
    char chunk[16384];
    for (size_t got = 0; s->out >= 0 && got < EXEC_READ_STEP;) {
        ssize_t n = read(s->out, chunk, sizeof(chunk));
        if (n > 0 && !buf_add(&s->body, chunk, (size_t)n)) {
            char why[64];
            snprintf(why, sizeof(why), s->body.over ? "output over %zu bytes" : "out of memory",
                     s->body.max);
            exec_finish(p, s, why, now);
            return;
        }
        if (n > 0)
            got += (size_t)n;
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        close(s->out); /* end of file (or a read error: the same to us) */
        s->out = -1;
    }
    if (!s->exited) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        int rc = waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (rc == 0 && si.si_pid == s->pid) {
            s->exited = true;
            s->why = si.si_code;
            s->status = si.si_status;
            kill(-s->pid, SIGKILL); /* what it left running, holding the pipe or not */
        } else if (rc != 0 && errno == ECHILD) { /* reaped behind our back (SIGCHLD ignored) */
            s->exited = s->lost = true;
            s->why = CLD_EXITED;
            s->status = 0; /* unknown: the parser judges the output */
        }
    }
    if (s->exited && s->out < 0) {
        exec_finish(p, s, NULL, now);
    } else if (now >= exec_deadline(s)) {
        char why[64];
        snprintf(why, sizeof(why), "command timed out after %llu ms",
                 (unsigned long long)((now - s->started) / 1000000));
        exec_finish(p, s, why, now);
    }
}

/* Adopt a pending target list: keep the schedules of accounts that stay. */
static void adopt(struct rota_prober *p, struct rota_probe_target *t, uint32_t n, uint64_t now)
{
    struct slot *fresh = calloc(n ? n : 1, sizeof(*fresh));
    struct curl_waitfd *wfds = calloc(n ? n : 1, sizeof(*wfds));
    if (!fresh || !wfds) {
        free(fresh);
        free(wfds);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        fresh[i].t = t[i];
        fresh[i].out = -1;
        fresh[i].t.opts.used_ptr = t[i].pointers[0][0] ? fresh[i].t.pointers[0] : NULL;
        fresh[i].t.opts.limit_ptr = t[i].pointers[1][0] ? fresh[i].t.pointers[1] : NULL;
        fresh[i].t.opts.remaining_ptr = t[i].pointers[2][0] ? fresh[i].t.pointers[2] : NULL;
        fresh[i].t.opts.reset_ptr = t[i].pointers[3][0] ? fresh[i].t.pointers[3] : NULL;
        /* new targets: within a few seconds, spread out */
        fresh[i].next_at = now + jitter(p, 3000000000ull);
        for (uint32_t k = 0; k < p->nslots; k++)
            if (p->slots[k].t.account_id == t[i].account_id) {
                fresh[i].next_at = p->slots[k].next_at;
                fresh[i].fails = p->slots[k].fails;
            }
    }
    for (uint32_t k = 0; k < p->nslots; k++) {
        slot_end(p, &p->slots[k]);
        wipe(&p->slots[k].t, sizeof(p->slots[k].t));
    }
    free(p->slots);
    free(p->wfds);
    p->slots = fresh;
    p->wfds = wfds;
    p->nslots = n;
}

static void *run(void *arg)
{
    struct rota_prober *p = arg;
    for (;;) {
        uint64_t now = rota_clock_mono();
        pthread_mutex_lock(&p->lock);
        bool stop = p->stop;
        struct rota_probe_target *t = p->have_pending ? p->pending : NULL;
        uint32_t nt = p->npending;
        bool have = p->have_pending;
        struct rota_redact *redact = p->pending_redact;
        p->have_pending = false;
        p->pending = NULL;
        p->pending_redact = NULL;
        uint64_t ids[64];
        uint32_t nids = p->nnow;
        memcpy(ids, p->now_ids, nids * sizeof(ids[0]));
        p->nnow = 0;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        if (have) {
            adopt(p, t, nt, now);
            wipe(t, nt * sizeof(*t));
            free(t);
            rota_redact_unref(p->redact);
            p->redact = redact;
        }
        for (uint32_t k = 0; k < nids; k++)
            for (uint32_t i = 0; i < p->nslots; i++)
                if (ids[k] == 0 || ids[k] == p->slots[i].t.account_id)
                    p->slots[i].next_at = now;
        for (uint32_t i = 0; i < p->nslots; i++)
            if (p->slots[i].pid)
                exec_step(p, &p->slots[i], rota_clock_mono());
        now = rota_clock_mono();
        uint64_t wake = now + 1000000000ull, soon = now + REAP_POLL_MS * 1000000ull;
        if (reap_some(p) && soon < wake)
            wake = soon;
        unsigned nw = 0;
        for (uint32_t i = 0; i < p->nslots; i++) {
            struct slot *s = &p->slots[i];
            if (!busy(s) && s->next_at <= now) {
                if (s->t.command[0])
                    exec_start(p, s, now);
                else
                    slot_start(p, s, now);
            }
            if (!busy(s) && s->next_at < wake)
                wake = s->next_at;
            if (!s->pid)
                continue;
            if (exec_deadline(s) < wake)
                wake = exec_deadline(s);
            if (s->out >= 0)
                p->wfds[nw++] = (struct curl_waitfd){s->out, CURL_WAIT_POLLIN, 0};
            else if (soon < wake) /* its output ended; its exit is a moment away */
                wake = soon;
        }
        int running = 0;
        curl_multi_perform(p->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(p->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (s)
                finish(p, s, msg->data.result, rota_clock_mono());
        }
        now = rota_clock_mono();
        int ms = wake > now ? (int)((wake - now) / 1000000) + 1 : 0;
        curl_multi_poll(p->multi, p->wfds, nw, ms > 1000 ? 1000 : ms, NULL);
    }
    for (uint32_t i = 0; i < p->nslots; i++) {
        slot_end(p, &p->slots[i]);
        wipe(&p->slots[i].t, sizeof(p->slots[i].t));
    }
    free(p->slots);
    free(p->wfds);
    rota_redact_unref(p->redact);
    /* Killed children die at once unless stuck in the kernel: wait for them, bounded. */
    for (int ms = 0; reap_some(p) && ms < STOP_REAP_MS; ms += REAP_POLL_MS)
        nanosleep(&(struct timespec){0, REAP_POLL_MS * 1000000L}, NULL);
    free(p->reap);
    return NULL;
}

int rota_prober_start(struct rota_prober **out, int *notify_fd)
{
    struct rota_prober *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->ring = calloc(RESULTS_MAX, sizeof(*p->ring));
    p->multi = curl_multi_init();
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->rnd = rota_clock_mono() ^ (uint64_t)getpid() << 32;
    pthread_mutex_init(&p->lock, NULL);
    int rc = !p->ring || !p->multi ? -ENOMEM : p->efd < 0 ? -errno : 0;
    if (!rc)
        rc = -pthread_create(&p->thread, NULL, run, p);
    if (rc) {
        if (p->multi)
            curl_multi_cleanup(p->multi);
        if (p->efd >= 0)
            close(p->efd);
        free(p->ring);
        free(p);
        return rc;
    }
    *notify_fd = p->efd;
    *out = p;
    return 0;
}

/* A set of the credentials of "t" alone, for a caller that gives none; NULL when out of
 * memory. */
static struct rota_redact *targets_redact(const struct rota_probe_target *t, uint32_t n)
{
    const char **secrets = calloc(n ? n : 1, sizeof(*secrets));
    struct rota_redact *r = NULL;
    if (secrets) {
        for (uint32_t i = 0; i < n; i++)
            secrets[i] = rota_probe_secret(&t[i]);
        if (rota_redact_new(secrets, n, NULL, &r))
            r = NULL;
        free(secrets);
    }
    return r;
}

int rota_prober_set(struct rota_prober *p, const struct rota_probe_target *t, uint32_t n,
                    struct rota_redact *redact)
{
    struct rota_probe_target *copy = malloc((n ? n : 1) * sizeof(*copy));
    struct rota_redact *r = redact ? rota_redact_ref(redact) : targets_redact(t, n);
    if (!copy || !r) {
        free(copy);
        rota_redact_unref(r);
        return -ENOMEM;
    }
    memcpy(copy, t, n * sizeof(*t));
    pthread_mutex_lock(&p->lock);
    if (p->pending) {
        wipe(p->pending, p->npending * sizeof(*p->pending));
        free(p->pending);
    }
    rota_redact_unref(p->pending_redact);
    p->pending = copy;
    p->npending = n;
    p->pending_redact = r;
    p->have_pending = true;
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->multi);
    return 0;
}

uint32_t rota_prober_now(struct rota_prober *p, uint64_t account_id)
{
    pthread_mutex_lock(&p->lock);
    uint32_t ok = p->nnow < 64;
    if (ok)
        p->now_ids[p->nnow++] = account_id;
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->multi);
    return ok;
}

uint32_t rota_prober_take(struct rota_prober *p, struct rota_probe_result *out, uint32_t max)
{
    uint64_t v;
    ssize_t r = read(p->efd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&p->lock);
    uint32_t n = 0;
    while (n < max && p->count) {
        out[n++] = p->ring[p->head];
        p->head = (p->head + 1) % RESULTS_MAX;
        p->count--;
    }
    bool more = p->count > 0;
    pthread_mutex_unlock(&p->lock);
    if (more) { /* keep the eventfd readable for what is left */
        uint64_t one = 1;
        ssize_t w = write(p->efd, &one, sizeof(one));
        (void)w;
    }
    return n;
}

void rota_prober_stop(struct rota_prober *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->multi);
    pthread_join(p->thread, NULL);
    if (p->pending) {
        wipe(p->pending, p->npending * sizeof(*p->pending));
        free(p->pending);
    }
    rota_redact_unref(p->pending_redact);
    curl_multi_cleanup(p->multi);
    close(p->efd);
    free(p->ring);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
