/*
 * dispatch_stream.c - a streamed (SSE) answer passed from upstream to the client
 * event by event: usage read on the way, OpenAI's usage chunk dropped when only the
 * pool asked for it, the client's pace followed, keep-alive comments while upstream is
 * slow to start, a failure after the first byte ended with the format's error event,
 * and a client that leaves followed by a bounded read for the usage.
 *
 * DESIGN
 * On the request's thread, from the upstream's callbacks and the front's. A piece
 * from upstream is cut at event boundaries: complete events go out at once (written
 * straight from the piece when nothing in it is dropped), the start of an unfinished
 * event waits in "carry" for its end, never more than CARRY_MAX (past that, bytes pass
 * unread). When the front refuses a write (-EAGAIN: the client is ROTA_FRONT_STREAM_HIGH
 * behind) the output waits in "pend", the request is "blocked", and every piece upstream
 * offers meanwhile is refused, which pauses the transfer in libcurl; output made while
 * blocked (the rest of the same piece, an unfinished last event, the error event) is
 * added to "pend", never written past it; on_writable sends "pend" and resumes the
 * transfer; the end of the stream waits until "pend" is sent. So at most one piece
 * (with what it makes) waits per request.
 *
 * rota_upstream_resume may hand over the held piece before it returns, and that piece
 * may end the request (a client gone, its usage read: the call is freed): a resume is
 * always the last thing done with "k".
 *
 * A stream of another format goes through the translation instead (dispatch_xlate.c),
 * which cuts events itself; the rest (pace, pend, drain, the error end) is the same.
 *
 * The first event written commits the request: no retry after. Before that a failure
 * goes back to the attempt loop; an upstream that ends cleanly without a single event
 * ends the client's stream as it is (nothing to retry: the answer was complete).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch_int.h"

#define CARRY_MAX (1u << 20)

static void on_writable(void *arg, struct rota_front_conn *c);

/* Begin the client's stream (200, text/event-stream) if it is not. */
static bool begin(struct call *k)
{
    if (k->begun)
        return true;
    const char *dropped = rota_dispatch_xl_dropped(k);
    const struct rota_http_hdr head[] = {{"Content-Type", "text/event-stream"},
                                         {"X-Rota-Schema-Dropped", dropped}};
    if (!k->c || rota_front_stream_begin(k->c, 200, head, dropped ? 2 : 1) != 0)
        return false;
    k->begun = true;
    rota_front_on_writable(k->c, on_writable, k);
    return true;
}

/* Write "n" bytes to the client: taken, waiting in "pend", or the client is gone. */
static void emit(struct call *k, const char *p, size_t n)
{
    if (!n || k->gone || !k->c)
        return;
    if (k->blocked) { /* behind what waits already: after it */
        rota_dispatch_put(&k->pend, p, n, SIZE_MAX);
        return;
    }
    int rc = rota_front_stream_write(k->c, p, n);
    if (rc == 0) {
        k->committed = true;
        k->bytes_out += n;
    } else if (rc == -EAGAIN) {
        k->pend.len = 0;
        rota_dispatch_put(&k->pend, p, n, SIZE_MAX);
        k->committed = true;
        k->blocked = true;
    }
}

/* Is "data" an event a stream of the endpoint's format may close with? OpenAI's chat
 * "[DONE]", its Responses' response.completed, .incomplete or .failed; Anthropic's
 * message_stop; Gemini (which has no closing event) a chunk with a finishReason or a
 * blockReason; and in every format an error the provider sent itself. */
static bool closing_event(const struct call *k, const char *data, size_t dlen)
{
    if (memmem(data, dlen, "\"error\"", 7))
        return true;
    switch (k->ep->fmt) {
    case ROTA_FMT_OPENAI:
        return (dlen == 6 && memcmp(data, "[DONE]", 6) == 0) ||
               memmem(data, dlen, "\"response.completed\"", 20) ||
               memmem(data, dlen, "\"response.incomplete\"", 21) ||
               memmem(data, dlen, "\"response.failed\"", 17);
    case ROTA_FMT_ANTHROPIC:
        return memmem(data, dlen, "\"message_stop\"", 14) != NULL;
    case ROTA_FMT_GEMINI:
        return memmem(data, dlen, "\"finishReason\"", 14) ||
               memmem(data, dlen, "\"blockReason\"", 13);
    default:
        return true;
    }
}

/* Is event "ev" (its data "data") one the client did not ask for? */
static bool dropped(struct call *k, const char *data, size_t dlen)
{
    return k->ask_usage && rota_fmt_usage_chunk(data, dlen);
}

/* Read the complete events at the start of "src" (n bytes): usage counted, all but the
 * dropped ones written. Returns the bytes taken (an unfinished event's start is not). */
static size_t events(struct call *k, const char *src, size_t n)
{
    size_t at = 0, out_from = 0;
    bool copy = false; /* an event was dropped: the output is assembled in "pend" */
    struct dbuf out = {0};
    for (size_t len; (len = rota_fmt_sse_event(src + at, n - at)) > 0; at += len) {
        const char *data;
        size_t dlen;
        bool drop = false;
        if (rota_fmt_sse_data(src + at, len, &data, &dlen) && dlen) {
            if (data[0] == '{') {
                rota_fmt_usage(data, dlen, &k->usage);
                drop = dropped(k, data, dlen);
            }
            k->end_seen |= closing_event(k, data, dlen);
        }
        if (drop && !copy) {
            copy = true;
            rota_dispatch_put(&out, src, at, SIZE_MAX);
        } else if (!drop && copy) {
            rota_dispatch_put(&out, src + at, len, SIZE_MAX);
        }
        out_from = at + len;
    }
    if (!k->gone) {
        if (copy)
            emit(k, out.p, out.len);
        else
            emit(k, src, out_from);
    }
    free(out.p);
    return at;
}

/* Stop reading after the client left: the call reported cancelled with what was
 * counted, the request done. */
static void end_drain(struct call *k)
{
    if (k->up) {
        rota_upstream_cancel(k->up);
        k->up = NULL;
    }
    rota_dispatch_report(k, 0, ROTA_RESULT_CANCELLED);
    k->note = "client gone";
    k->final_status = 499;
    rota_dispatch_finish(k);
}

void rota_dispatch_stream_head(struct call *k)
{
    rota_loop_timer_stop(k->d->l, &k->timer);
    if (!k->gone && !begin(k))
        k->gone = true;
}

/* The deferred end of a stream the translation could not read (translated()). */
static void after_unreadable(struct rota_loop_defer *dd)
{
    struct call *k = (struct call *)((char *)dd - offsetof(struct call, xl_d));
    rota_dispatch_stream_done(k, -EPROTO, rota_dispatch_xl_why(k));
}

/* A piece of a stream of another format: translated (the translation keeps the start
 * of an unfinished event itself). An upstream stream the translation cannot read is
 * ended: the client's stream ends with its error. */
static bool translated(struct call *k, const char *p, size_t n)
{
    struct dbuf out = {0};
    int rc = rota_dispatch_xl_stream(k, p, n, &out);
    if (!k->gone)
        emit(k, out.p, out.len);
    free(out.p);
    if (rc && !k->end_err && k->up) { /* (not from stream_done: k->up is gone there) */
        rota_upstream_cancel(k->up);
        k->up = NULL;
        /* the end, and a retry when nothing reached the client, from the loop: libcurl
         * takes no new transfer from inside its own callback */
        k->xl_d.fn = after_unreadable;
        rota_loop_defer(k->d->l, &k->xl_d);
        return true;
    }
    return false;
}

int rota_dispatch_stream_data(struct call *k, const char *p, size_t n)
{
    if (k->blocked && !k->gone)
        return ROTA_UPSTREAM_PAUSE; /* the client is behind: libcurl holds the piece */
    if (k->gone)
        k->drained += n;
    if (k->xlating) {
        if (translated(k, p, n))
            return 0;
    } else if (k->carry.len + n > CARRY_MAX) { /* an event too long to hold: pass it unread */
        emit(k, k->carry.p, k->carry.len);
        emit(k, p, n);
        k->carry.len = 0;
    } else if (k->carry.len == 0) {
        size_t took = events(k, p, n);
        rota_dispatch_put(&k->carry, p + took, n - took, CARRY_MAX);
    } else {
        rota_dispatch_put(&k->carry, p, n, CARRY_MAX);
        size_t took = events(k, k->carry.p, k->carry.len);
        memmove(k->carry.p, k->carry.p + took, k->carry.len - took);
        k->carry.len -= took;
    }
    if (k->gone && (k->usage.final || k->drained >= k->d->o.drain_bytes))
        end_drain(k);
    return 0;
}

/* The end of the answer, with the client still there: the last output made, then, once
 * everything is written (called again from on_writable while blocked), the end. */
static void complete(struct call *k)
{
    if (k->carry.len) { /* an unfinished last event: passed as it came, then ended, so
                           that an error event after it is an event of its own */
        emit(k, k->carry.p, k->carry.len);
        if (k->end_err)
            emit(k, "\n\n", 2);
        k->carry.len = 0;
    }
    if (k->end_err && !k->final_status) {
        char ev[700], msg[NOTE_MAX + 40];
        snprintf(msg, sizeof(msg), "the upstream stream failed: %s", k->end_why);
        struct dbuf xe = {0};
        if (rota_dispatch_xl_fail(k, msg, &xe)) {
            emit(k, xe.p, xe.len);
            free(xe.p);
        } else {
            size_t n = rota_fmt_stream_error(k->ep->fmt, ev, sizeof(ev), msg);
            emit(k, ev, n);
        }
        k->final_status = 502;
        k->note = "stream failed midway";
    }
    if (k->blocked && k->c)
        return; /* on_writable comes back when "pend" is sent */
    if (!k->final_status)
        k->final_status = 200;
    if (k->c)
        rota_front_stream_end(k->c);
    k->c = NULL;
    k->r = NULL;
    rota_dispatch_finish(k);
}

void rota_dispatch_stream_done(struct call *k, int err, const char *why)
{
    k->att[k->natt - 1].err = err;
    if (k->gone) {
        end_drain(k);
        return;
    }
    if (err && !k->committed) { /* nothing reached the client: another account may */
        rota_dispatch_report(k, 0,
                             err == -ETIMEDOUT ? ROTA_RESULT_TIMEOUT : ROTA_RESULT_CONNECT);
        k->carry.len = 0;
        k->sse = false;
        k->status = 0;
        rota_dispatch_retry(k);
        return;
    }
    if (!err && k->xlating && !k->end_seen)
        translated(k, "\n\n", 2); /* a last event with no blank line after it */
    const char *data;
    size_t dlen; /* a last event with no blank line after it counts too */
    if (!err && k->carry.len && rota_fmt_sse_data(k->carry.p, k->carry.len, &data, &dlen) &&
        dlen)
        k->end_seen |= closing_event(k, data, dlen);
    if (err)
        rota_dispatch_report(k, 0,
                             err == -ETIMEDOUT ? ROTA_RESULT_TIMEOUT : ROTA_RESULT_CONNECT);
    else
        rota_dispatch_report(k, k->status, ROTA_RESULT_HTTP);
    if (!err && k->sse && k->status / 100 == 2 && !k->end_seen) {
        /* A clean end of the connection is no clean end of the stream: the client's SDK
         * must raise. The call was reported by its status: what a client asks for cannot
         * make an account or its provider look broken (their breakers). */
        err = -EPROTO;
        why = "the stream ended without its closing event";
    }
    k->end_err = err;
    snprintf(k->end_why, sizeof(k->end_why), "%s", why ? why : "");
    k->ended = true;
    complete(k);
}

static void on_writable(void *arg, struct rota_front_conn *c)
{
    struct call *k = arg;
    if (!k->blocked || k->gone)
        return;
    int rc = rota_front_stream_write(c, k->pend.p, k->pend.len);
    if (rc == -EAGAIN)
        return; /* told again when this much is sent */
    if (rc == 0)
        k->bytes_out += k->pend.len;
    k->pend.len = 0;
    k->blocked = false;
    if (k->ended)
        complete(k);
    else if (k->up)
        rota_upstream_resume(k->up); /* last: "k" may be freed when it returns */
}

void rota_dispatch_stream_gone(struct call *k)
{
    rota_dispatch_end_answer(k); /* the answer is complete; reading goes on */
    /* ...unless upstream streams before it has the whole request: the request's body,
     * which the call still reads, goes with the client's connection */
    if (k->usage.final || (k->up && !rota_upstream_body_sent(k->up))) {
        end_drain(k);
        return;
    }
    k->blocked = false;
    k->pend.len = 0;
    rota_loop_timer_set(k->d->l, &k->timer, k->d->o.drain_ms);
    if (k->up)
        rota_upstream_resume(k->up); /* last: the held piece may end the drain, free "k" */
}

void rota_dispatch_keepalive(struct call *k)
{
    if (k->gone) { /* the drain's time is up */
        end_drain(k);
        return;
    }
    if (k->committed || k->sse)
        return;
    if (begin(k)) {
        static const char ka[] = ": keep-alive\n\n";
        if (rota_front_stream_write(k->c, ka, sizeof(ka) - 1) == 0)
            k->bytes_out += sizeof(ka) - 1;
    }
    rota_loop_timer_set(k->d->l, &k->timer, k->d->o.keepalive_ms);
}
