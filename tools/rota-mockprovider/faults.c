/*
 * faults.c - rota-mockprovider's injected faults: POST /_mock/fault adds one, POST
 * /_mock/clear removes them all, and every provider call asks whether one applies.
 *
 *   POST /_mock/fault?match=PREFIX&kind=KIND[&status=N][&ms=N][&count=N][&seconds=S]
 *                    [&retry_after=S][&size=BYTES][&reason=R][&chunks=N][&after=N]
 *                    [&pad=BYTES][&bare=1]
 *
 * A fault catches the calls of accounts whose name or key starts with PREFIX, for S
 * seconds and/or N calls (neither: until cleared); the earliest added applies. KIND:
 *   5xx        answer "status" (500..599, default 500) in the provider's error shape
 *   latency    wait "ms" milliseconds, then answer as usual
 *   hang       hold the connection unanswered until the fault ends (its seconds pass,
 *              /_mock/clear, or "ms" if given) or the client goes; then answer as usual
 *   malformed  answer as usual but with the JSON body cut short
 *   oversized  answer as usual but padded to "size" bytes (default 4 MiB)
 *   429        refuse as if a limit were reached, with a retry hint of "retry_after"
 *              seconds (default: the seconds left of the fault, else 1); "reason" sets an
 *              Antigravity ErrorInfo reason such as MODEL_CAPACITY_EXHAUSTED; "bare=1"
 *              sends no retry-after nor retry-after-ms header
 *   drip       a streamed answer's events "ms" apart, "chunks" content events (stream.c)
 *   cut        a streamed answer dropped after "after" events (default 2), mid-stream
 *   hold       a streamed answer's first "after" events (default 2), "ms" apart, then
 *              nothing until the fault ends (/_mock/clear, its seconds pass), then the
 *              rest; /_mock/stats "holding" counts the streams held right now
 *   echo_key   answer "status" (400..599, default 401) with the credential the call
 *              carried (its whole header value) in the error message, as some
 *              providers do, after "ms" milliseconds: the one fault that echoes a
 *              key, on purpose
 *   badsse     a streamed answer that turns malformed after its first two events and
 *              ends without its end event (stream.c mock_stream_garble); a call that
 *              asked for no stream is answered as usual
 * drip and hold take "pad": bytes of "x" added to each content event (at most 8 MiB).
 *
 * DESIGN
 * The table lives in struct mock, under mock.lock; connection threads take a copy of the
 * fault that applies (mock_fault_take) and act on the copy after dropping the lock, so
 * sleeping and holding never block other calls. A held ("hang") connection asks
 * mock_fault_alive by id whether its fault still exists (so does a held stream); that is
 * why a hang or hold fault whose
 * calls are all caught stays in the table, inert, until its seconds pass or a clear,
 * while other spent faults are dropped as soon as they are seen.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define OVERSIZED_DEFAULT (4u << 20)
#define OVERSIZED_MAX     (64u << 20)

static const char *const kinds[] = {
    [MOCK_FAULT_5XX] = "5xx",
    [MOCK_FAULT_LATENCY] = "latency",
    [MOCK_FAULT_HANG] = "hang",
    [MOCK_FAULT_MALFORMED] = "malformed",
    [MOCK_FAULT_OVERSIZED] = "oversized",
    [MOCK_FAULT_429] = "429",
    [MOCK_FAULT_DRIP] = "drip",
    [MOCK_FAULT_CUT] = "cut",
    [MOCK_FAULT_HOLD] = "hold",
    [MOCK_FAULT_ECHO_KEY] = "echo_key",
    [MOCK_FAULT_BADSSE] = "badsse",
};

#define PAD_MAX (8u << 20)

/* Faults that stay in the table, inert, once their calls are caught: what they hold
 * asks whether they still exist. */
static bool holds(enum mock_fault_kind k)
{
    return k == MOCK_FAULT_HANG || k == MOCK_FAULT_HOLD;
}

/* Parse the unsigned decimal "s" (NULL = absent: leave "out") no larger than "max". */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (!s)
        return true;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_kind(const char *s, enum mock_fault_kind *kind)
{
    for (size_t i = 0; s && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(s, kinds[i]) == 0) {
            *kind = (enum mock_fault_kind)i;
            return true;
        }
    return false;
}

static void answer(struct mock_reply *r, int status, const char *message, uint64_t id)
{
    if (status == 200)
        mock_reply_json(r, 200, json_pack("{s:b, s:I}", "ok", 1, "id", (json_int_t)id));
    else
        mock_reply_json(r, status, json_pack("{s:{s:s}}", "error", "message", message));
}

/* POST /_mock/fault: add the fault the query describes; answer {"ok":true,"id":N} or a
 * 400 saying what is wrong. Takes mock.lock. */
void mock_fault_add(struct mock_call *c, struct mock_reply *r)
{
    struct mock_fault f = {.status = 500, .remaining = -1, .size = OVERSIZED_DEFAULT};
    const char *match = mock_call_query(c, "match"), *reason = mock_call_query(c, "reason");
    unsigned long status = 500, ms = 0, count = 0, seconds = 0, retry = 0, size = f.size;
    unsigned long chunks = 0, after = 2, pad = 0, bare = 0;
    if (!match || strlen(match) >= sizeof(f.prefix) ||
        !parse_kind(mock_call_query(c, "kind"), &f.kind)) {
        answer(r, 400,
               "expected match=PREFIX&kind=5xx|latency|hang|malformed|oversized|429|drip|cut|"
               "hold|echo_key|badsse",
               0);
        return;
    }
    unsigned long low = f.kind == MOCK_FAULT_ECHO_KEY ? 400 : 500;
    if (f.kind == MOCK_FAULT_ECHO_KEY)
        status = 401;
    if (!parse_uint(mock_call_query(c, "status"), 599, &status) || status < low ||
        !parse_uint(mock_call_query(c, "ms"), 600000, &ms) ||
        !parse_uint(mock_call_query(c, "count"), 1000000000, &count) ||
        !parse_uint(mock_call_query(c, "seconds"), 86400, &seconds) ||
        !parse_uint(mock_call_query(c, "retry_after"), 86400 * 30, &retry) ||
        !parse_uint(mock_call_query(c, "size"), OVERSIZED_MAX, &size) ||
        !parse_uint(mock_call_query(c, "chunks"), MOCK_EVENTS_MAX - 8, &chunks) ||
        !parse_uint(mock_call_query(c, "after"), MOCK_EVENTS_MAX, &after) ||
        !parse_uint(mock_call_query(c, "pad"), PAD_MAX, &pad) ||
        !parse_uint(mock_call_query(c, "bare"), 1, &bare) ||
        (reason && strlen(reason) >= sizeof(f.reason))) {
        answer(r, 400,
               "status must be 500..599 (echo_key: 400..599), ms at most 600000, count and "
               "seconds positive, size at most 64 MiB, pad at most 8 MiB, bare 0 or 1, "
               "reason short",
               0);
        return;
    }
    snprintf(f.prefix, sizeof(f.prefix), "%s", match);
    snprintf(f.reason, sizeof(f.reason), "%s", reason ? reason : "");
    f.status = (int)status;
    f.ms = (unsigned)ms;
    f.remaining = count ? (long)count : -1;
    f.until_ms = seconds ? c->now_ms + (int64_t)seconds * 1000 : 0;
    f.retry_after = (unsigned)(retry ? retry : seconds ? seconds : 1);
    f.size = size;
    f.chunks = (unsigned)chunks;
    f.after = (unsigned)after;
    f.pad = pad;
    f.bare = bare;
    pthread_mutex_lock(&c->m->lock);
    struct mock *m = c->m;
    bool full = m->nfaults == MOCK_FAULTS_MAX;
    if (!full) {
        f.id = ++m->next_fault_id;
        m->faults[m->nfaults++] = f;
    }
    pthread_mutex_unlock(&c->m->lock);
    answer(r, full ? 400 : 200, "too many faults; clear them first", f.id);
}

/* POST /_mock/clear. Lock held. */
void mock_fault_clear(struct mock *m)
{
    m->nfaults = 0;
}

static bool expired(const struct mock_fault *f, int64_t now_ms)
{
    return f->until_ms && now_ms >= f->until_ms;
}

static bool prefixed(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Copy into "out" the fault that applies to a call of "a" now and count the call against
 * it. Returns false when none applies. Lock held. */
bool mock_fault_take(struct mock *m, const struct mock_account *a, int64_t now_ms,
                     struct mock_fault *out)
{
    size_t i = 0;
    while (i < m->nfaults) {
        struct mock_fault *f = &m->faults[i];
        bool spent = f->remaining == 0;
        if (expired(f, now_ms) || (spent && !holds(f->kind))) {
            memmove(f, f + 1, (m->nfaults - i - 1) * sizeof(*f));
            m->nfaults--;
            continue;
        }
        if (!spent &&
            (prefixed(a->name, f->prefix) || (a->key[0] && prefixed(a->key, f->prefix)))) {
            if (f->remaining > 0)
                f->remaining--;
            *out = *f;
            return true;
        }
        i++;
    }
    return false;
}

/* Does fault "id" still hold its calls? Lock held. */
bool mock_fault_alive(struct mock *m, uint64_t id, int64_t now_ms)
{
    for (size_t i = 0; i < m->nfaults; i++)
        if (m->faults[i].id == id)
            return !expired(&m->faults[i], now_ms);
    return false;
}

/* Faults that can still catch a call. Lock held. */
size_t mock_fault_count(struct mock *m, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nfaults; i++)
        n += !expired(&m->faults[i], now_ms) && m->faults[i].remaining != 0;
    return n;
}

/* Cut "r"'s body short, in the middle, so that it no longer parses. */
void mock_fault_garble(struct mock_reply *r)
{
    if (!r->body || r->len < 2) {
        free(r->body);
        r->body = strdup("{\"");
        r->len = r->body ? 2 : 0;
        return;
    }
    r->len /= 2;
    r->body[r->len] = '\0';
}

/* Grow "r"'s body to "size" bytes: a "padding" member added to the JSON object it holds
 * (or replacing it when it holds no object), so that only the size is at fault. */
void mock_fault_inflate(struct mock_reply *r, size_t size)
{
    static const char pad[] = "\"padding\":\"";
    bool object = r->body && r->len >= 2 && r->body[0] == '{';
    const char *rest = object ? r->body + 1 : "}";
    size_t rest_len = object ? r->len - 1 : 1;
    bool comma = object && r->body[1] != '}';
    size_t fixed = 1 + strlen(pad) + 1 + comma + rest_len;
    if (size < fixed + 1)
        size = fixed + 1;
    char *b = malloc(size + 1);
    if (!b)
        return; /* out of memory: the answer goes out at its usual size */
    size_t fill = size - fixed, at = 0;
    b[at++] = '{';
    memcpy(b + at, pad, strlen(pad));
    at += strlen(pad);
    memset(b + at, 'x', fill);
    at += fill;
    b[at++] = '"';
    if (comma)
        b[at++] = ',';
    memcpy(b + at, rest, rest_len);
    at += rest_len;
    b[at] = '\0';
    free(r->body);
    r->body = b;
    r->len = at;
}
