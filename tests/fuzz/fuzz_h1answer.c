/* fuzz_h1answer: bytes from an upstream, through the answer parser of rota's own HTTP/1.1
 * client (rota_h1_feed, workers/upstream_h1_answer.c) as upstream_h1.c drives it: fed in
 * pieces whose sizes the input's first two bytes choose, each piece in a buffer of its
 * exact size; the body callback pausing as the third byte's bits say (the bytes not
 * taken fed again, as a resume does) and the fourth byte stopping the answer from a
 * callback; after an answer's end the rest read as the next answer. The parser takes
 * no more than it was given, always gets on (a feed that is not paused takes every byte
 * or ends), hands each body byte over at most once and in order, never a body before
 * its head nor for a 204 or 304, and says why when it refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    const char *buf; /* the piece being fed and where it starts in the input */
    size_t buf_len, buf_at;
    size_t body_end; /* input offset past the last body byte taken */
    size_t pause_at; /* input offset of the piece a pause did not take */
    size_t taken;    /* body bytes taken */
    unsigned calls;  /* body callbacks */
    uint8_t pause_bits, stop;
    bool headed, paused, stop_head;
    int status;
};

static bool on_head(void *arg, int status, const char *lines, size_t len)
{
    struct seen *s = arg;
    if (s->headed || status < 200 || status > 599 || lines[len] != '\0' ||
        (len && lines[len - 1] != '\n'))
        abort();
    s->headed = true;
    s->status = status;
    return !s->stop_head;
}

static int on_body(void *arg, const char *p, size_t n)
{
    struct seen *s = arg;
    if (!s->headed || s->status == 204 || s->status == 304 || n == 0)
        abort();
    if (p < s->buf || n > s->buf_len || (size_t)(p - s->buf) > s->buf_len - n)
        abort(); /* outside the piece being fed */
    size_t at = s->buf_at + (size_t)(p - s->buf);
    if (at < s->body_end)
        abort(); /* a byte handed over again after it was taken, or out of order */
    if (s->paused && at != s->pause_at)
        abort(); /* after a pause, the bytes not taken come first */
    unsigned i = s->calls++;
    if (s->stop && i == s->stop)
        return -1;
    if (!s->paused && (s->pause_bits >> (i % 8) & 1)) {
        s->paused = true; /* not taken: it comes again on the next feed */
        s->pause_at = at;
        return 1;
    }
    s->paused = false;
    s->body_end = at + n;
    s->taken += n;
    return 0;
}

static const struct rota_h1_answer_cbs cbs = {on_head, on_body};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t steps[2] = {(size_t)data[0] % 97 + 1, (size_t)data[1] % 13 + 1};
    struct seen s = {.pause_bits = data[2], .stop = data[3] >> 1, .stop_head = data[3] & 1};
    const char *in = (const char *)data + 4;
    size_t len = size - 4, at = 0, rounds = 0;
    struct rota_h1_answer a = {0};
    rota_h1_answer_reset(&a);
    for (unsigned piece = 0; at < len; piece++) {
        size_t n = steps[piece % 2] < len - at ? steps[piece % 2] : len - at;
        char *buf = malloc(n);
        if (!buf)
            break;
        memcpy(buf, in + at, n);
        size_t off = 0;
        int r = H1_MORE;
        while (off < n) {
            if (++rounds > 4 * len + 16)
                abort(); /* no progress */
            size_t used = SIZE_MAX;
            const char *why = NULL;
            s.buf = buf + off;
            s.buf_len = n - off;
            s.buf_at = at + off;
            r = rota_h1_feed(&a, buf + off, n - off, &used, &why, &cbs, &s);
            if (r == H1_ERR) {
                if (!why || !*why)
                    abort();
                break;
            }
            if (used > n - off)
                abort();
            if (r == H1_MORE && used != n - off)
                abort(); /* it stops short only to pause or end */
            if (r == H1_PAUSE && (!s.paused || used == n - off))
                abort(); /* a pause holds back the piece the callback did not take */
            if (a.head_len > UP_HEAD_MAX || s.taken > len)
                abort();
            off += used;
            if (r == H1_END) {
                if (s.stop_head || (s.stop && s.calls > s.stop)) {
                    r = H1_ERR; /* a callback stopped: the call is over */
                    break;
                }
                if (a.state != H1_DONE)
                    abort();
                rota_h1_answer_reset(&a); /* what follows, read as the next answer */
                s.headed = s.paused = false;
                s.calls = 0;
            }
        }
        free(buf);
        if (r == H1_ERR)
            break;
        at += n;
    }
    if (s.taken > len)
        abort();
    free(a.head);
    return 0;
}
