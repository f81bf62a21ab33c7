/* fuzz_xl.h - what the translation modules' fuzz targets share: arbitrary bytes as a
 * client's request, a provider's answer and its stream in one format, each accepted
 * one given to every out function of the modules built here (fuzz_xl_openai.c,
 * fuzz_xl_responses.c). Whatever the bytes, readers stay inside them; a request or an
 * answer chat completions or the Responses API writes is one its own reader takes; a
 * stream written ends, with an error when the events did not end it. */
#ifndef ROTA_FUZZ_XL_H
#define ROTA_FUZZ_XL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "xlate.h"

static const struct rota_xl_format *const fuzz_outs[] = {&rota_xl_openai, &rota_xl_responses,
                                                       &rota_xl_gemini, &rota_xl_code_assist};
#define FUZZ_NOUTS (sizeof(fuzz_outs) / sizeof(fuzz_outs[0]))
#define FUZZ_OWN 2 /* the modules whose written requests and answers are read back here */

static void fuzz_request(struct rota_xl *x, const struct rota_xl_format *f, const char *in,
                         size_t size)
{
    struct rota_xl_req r;
    memset(&r, 0, sizeof(r));
    r.parallel_tools = r.thinking = -1;
    if (f->req_in(x, in, size, &r) || rota_xl_link(x, &r, false))
        return;
    x->req = &r;
    for (size_t i = 0; i < FUZZ_NOUTS; i++) {
        struct rota_jbuf out;
        rota_jbuf_init(&out, 1u << 24);
        int rc = fuzz_outs[i]->req_out(x, &r, &out);
        if (!rc && i < FUZZ_OWN) { /* its own reader takes it */
            struct rota_xl_req again;
            memset(&again, 0, sizeof(again));
            again.parallel_tools = again.thinking = -1;
            if (fuzz_outs[i]->req_in(x, out.p, out.len, &again))
                abort();
        }
        rota_jbuf_free(&out);
    }
    x->req = NULL;
}

static void fuzz_answer(struct rota_xl *x, const struct rota_xl_format *f, const char *in,
                        size_t size)
{
    struct rota_xl_resp r;
    memset(&r, 0, sizeof(r));
    if (f->resp_in(x, in, size, &r))
        return;
    for (size_t i = 0; i < FUZZ_NOUTS; i++) {
        struct rota_jbuf out;
        rota_jbuf_init(&out, 1u << 24);
        int rc = fuzz_outs[i]->resp_out(x, &r, &out);
        if (!rc && i < FUZZ_OWN) { /* its own reader takes it */
            struct rota_xl_resp again;
            memset(&again, 0, sizeof(again));
            if (fuzz_outs[i]->resp_in(x, out.p, out.len, &again))
                abort();
        }
        rota_jbuf_free(&out);
    }
}

/* The bytes cut into SSE events, read as "f"'s stream, written by every out module. */
static void fuzz_stream(struct rota_xl *x, const struct rota_xl_format *f, const char *in,
                        size_t size)
{
    static struct rota_xl_evs evs;
    struct rota_xl_sin st;
    memset(&st, 0, sizeof(st));
    struct rota_xl_sout so[FUZZ_NOUTS];
    struct rota_jbuf out;
    rota_jbuf_init(&out, 1u << 24);
    for (size_t i = 0; i < FUZZ_NOUTS; i++) {
        memset(&so[i], 0, sizeof(so[i]));
        so[i].open = -1;
        rota_jbuf_init(&so[i].held, 1u << 20);
        rota_jbuf_init(&so[i].held2, 1u << 20);
    }
    for (size_t at = 0, n; at < size && (n = rota_fmt_sse_event(in + at, size - at)); at += n) {
        const char *d, *name = NULL;
        size_t dl, nl = 0;
        if (!rota_fmt_sse_data(in + at, n, &d, &dl))
            continue;
        if (n > 7 && memcmp(in + at, "event: ", 7) == 0) {
            name = in + at + 7;
            const char *e = memchr(name, '\n', n - 7);
            nl = e ? (size_t)(e - name) : 0;
        }
        evs.n = 0;
        if (f->ev_in(x, &st, name, nl, d, dl, &evs))
            break;
        if (evs.n > ROTA_XL_EVS_MAX)
            abort();
        for (uint32_t e = 0; e < evs.n; e++)
            for (size_t i = 0; i < FUZZ_NOUTS; i++)
                if (!so[i].ended && fuzz_outs[i]->ev_out(x, &so[i], &evs.ev[e], &out))
                    so[i].ended = true; /* (the driver would fail the stream here) */
    }
    for (size_t i = 0; i < FUZZ_NOUTS; i++) {
        fuzz_outs[i]->ev_fail(x, &so[i], "the upstream stream failed", &out);
        if (!so[i].ended)
            abort();
        rota_jbuf_free(&so[i].held);
        rota_jbuf_free(&so[i].held2);
    }
    rota_jbuf_free(&out);
}

/* All three on the bytes "data", read as format "f". */
static int fuzz_xl(const struct rota_xl_format *f, enum rota_xl_fmt fmt, const uint8_t *data,
                   size_t size)
{
    char *in = malloc(size ? size : 1); /* exactly the bytes: a read past them is caught */
    if (!in)
        return 0;
    memcpy(in, data, size);
    struct rota_arena a;
    rota_arena_init(&a, 16u << 20);
    struct rota_xl x;
    memset(&x, 0, sizeof(x));
    x.a = &a;
    x.from = x.to = fmt;
    x.where = f->where;
    x.model = "up\"stream";
    x.now_s = 1700000000;
    fuzz_request(&x, f, in, size);
    fuzz_answer(&x, f, in, size);
    static struct rota_xl_evs one; /* the whole input as one event's data */
    struct rota_xl_sin st;
    memset(&st, 0, sizeof(st));
    one.n = 0;
    f->ev_in(&x, &st, NULL, 0, in, size, &one);
    fuzz_stream(&x, f, in, size);
    rota_arena_free(&a);
    free(in);
    return 0;
}

#endif
