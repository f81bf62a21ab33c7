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
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "hash.h"
#include "probe.h"

#define RESULTS_MAX    1024
#define RETRY_FIRST_NS (10ull * 1000000000ull)
#define HEADERS_MAX    (64u * 1024)

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
    struct buf head, body;
    uint64_t started;
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
    /* the thread's */
    struct slot *slots;
    uint32_t nslots;
    uint64_t rnd;
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

static void slot_end(struct rota_prober *p, struct slot *s)
{
    if (s->easy) {
        curl_multi_remove_handle(p->multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
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

/* A transfer ended: parse what came, queue the result, schedule the next probe. */
static void finish(struct rota_prober *p, struct slot *s, CURLcode code, uint64_t now)
{
    static struct rota_probe_result r; /* the thread's; large */
    memset(&r, 0, sizeof(r));
    r.account_id = s->t.account_id;
    r.wall = rota_clock_wall();
    r.elapsed_ns = now - s->started;
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    r.status = (int)status;
    rota_obs_init(&r.obs);
    const struct rota_parser *parser = rota_parser_find(s->t.kind);
    if (s->body.over) {
        snprintf(r.error, sizeof(r.error), "answer over %zu bytes", s->body.max);
    } else if (code != CURLE_OK) {
        snprintf(r.error, sizeof(r.error), "%s",
                 code == CURLE_OPERATION_TIMEDOUT ? "timed out" : curl_easy_strerror(code));
    } else if (!parser) {
        snprintf(r.error, sizeof(r.error), "no parser for provider kind '%s'", s->t.kind);
    } else {
        struct rota_http_in in = {r.status,    s->head.p ? s->head.p : "",
                                  s->head.len, s->body.p ? s->body.p : "",
                                  s->body.len, r.wall};
        r.parsed = parser->parse(&in, &s->t.opts, &r.obs);
        /* A 5xx says the provider is in trouble, not what the quota is: a failed probe. */
        r.ok = r.parsed >= 0 && r.status < 500;
        if (!r.ok)
            snprintf(r.error, sizeof(r.error), "HTTP %d: %.140s", r.status,
                     r.obs.problems ? r.obs.problem : "not understood");
    }
    queue(p, &r);
    slot_end(p, s);
    if (r.ok) {
        s->fails = 0;
        s->next_at = now + s->t.interval_ns + jitter(p, s->t.jitter_ns);
    } else {
        uint64_t wait = RETRY_FIRST_NS << (s->fails < 16 ? s->fails : 16);
        s->fails++;
        s->next_at = now + (wait < s->t.interval_ns ? wait : s->t.interval_ns);
    }
}

/* Adopt a pending target list: keep the schedules of accounts that stay. */
static void adopt(struct rota_prober *p, struct rota_probe_target *t, uint32_t n, uint64_t now)
{
    struct slot *fresh = calloc(n ? n : 1, sizeof(*fresh));
    if (!fresh)
        return;
    for (uint32_t i = 0; i < n; i++) {
        fresh[i].t = t[i];
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
    p->slots = fresh;
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
        p->have_pending = false;
        p->pending = NULL;
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
        }
        for (uint32_t k = 0; k < nids; k++)
            for (uint32_t i = 0; i < p->nslots; i++)
                if (ids[k] == 0 || ids[k] == p->slots[i].t.account_id)
                    p->slots[i].next_at = now;
        uint64_t wake = now + 1000000000ull;
        for (uint32_t i = 0; i < p->nslots; i++) {
            struct slot *s = &p->slots[i];
            if (!s->easy && s->next_at <= now)
                slot_start(p, s, now);
            if (!s->easy && s->next_at < wake)
                wake = s->next_at;
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
        curl_multi_poll(p->multi, NULL, 0, ms > 1000 ? 1000 : ms, NULL);
    }
    for (uint32_t i = 0; i < p->nslots; i++) {
        slot_end(p, &p->slots[i]);
        wipe(&p->slots[i].t, sizeof(p->slots[i].t));
    }
    free(p->slots);
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

int rota_prober_set(struct rota_prober *p, const struct rota_probe_target *t, uint32_t n)
{
    struct rota_probe_target *copy = malloc((n ? n : 1) * sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    memcpy(copy, t, n * sizeof(*t));
    pthread_mutex_lock(&p->lock);
    if (p->pending) {
        wipe(p->pending, p->npending * sizeof(*p->pending));
        free(p->pending);
    }
    p->pending = copy;
    p->npending = n;
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
    curl_multi_cleanup(p->multi);
    close(p->efd);
    free(p->ring);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
