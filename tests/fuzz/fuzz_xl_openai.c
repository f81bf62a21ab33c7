/* fuzz_xl_openai: arbitrary bytes as a client's chat completions request, as a
 * provider's answer and as its stream (workers/xl_openai*.c): whatever the bytes, the
 * reader stays inside them and says why it refuses; what it accepts is written by every
 * out function of the modules here, and a request written in chat completions is one
 * its own reader takes. The bytes are also cut into SSE events, read as a stream and
 * written as a client's, which then ends with an error if the events did not end it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "xlate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct rota_xl_format *const outs[] = {&rota_xl_openai};
#define NOUTS (sizeof(outs) / sizeof(outs[0]))

static void request(struct rota_xl *x, const char *in, size_t size)
{
    struct rota_xl_req r;
    memset(&r, 0, sizeof(r));
    r.parallel_tools = -1;
    r.thinking = -1;
    if (rota_xl_openai.req_in(x, in, size, &r) || rota_xl_link(x, &r, false))
        return;
    x->req = &r;
    for (size_t i = 0; i < NOUTS; i++) {
        struct rota_jbuf out;
        rota_jbuf_init(&out, 1u << 24);
        int rc = outs[i]->req_out(x, &r, &out);
        if (!rc && outs[i] == &rota_xl_openai) { /* our own output: our reader takes it */
            struct rota_xl_req again;
            memset(&again, 0, sizeof(again));
            again.parallel_tools = again.thinking = -1;
            if (rota_xl_openai.req_in(x, out.p, out.len, &again))
                abort();
        }
        rota_jbuf_free(&out);
    }
    x->req = NULL;
}

static void answer(struct rota_xl *x, const char *in, size_t size)
{
    struct rota_xl_resp r;
    memset(&r, 0, sizeof(r));
    if (rota_xl_openai.resp_in(x, in, size, &r))
        return;
    for (size_t i = 0; i < NOUTS; i++) {
        struct rota_jbuf out;
        rota_jbuf_init(&out, 1u << 24);
        outs[i]->resp_out(x, &r, &out);
        rota_jbuf_free(&out);
    }
}

static void stream(struct rota_xl *x, const char *in, size_t size)
{
    static struct rota_xl_evs evs;
    struct rota_xl_sin st;
    memset(&st, 0, sizeof(st));
    struct rota_xl_sout so[NOUTS];
    struct rota_jbuf out;
    rota_jbuf_init(&out, 1u << 24);
    for (size_t i = 0; i < NOUTS; i++) {
        memset(&so[i], 0, sizeof(so[i]));
        so[i].open = -1;
        rota_jbuf_init(&so[i].held, 1u << 20);
        rota_jbuf_init(&so[i].held2, 1u << 20);
    }
    bool failed = false;
    for (size_t at = 0, n; !failed && at < size && (n = rota_fmt_sse_event(in + at, size - at));
         at += n) {
        const char *d;
        size_t dl;
        if (!rota_fmt_sse_data(in + at, n, &d, &dl))
            continue;
        evs.n = 0;
        if (rota_xl_openai.ev_in(x, &st, NULL, 0, d, dl, &evs)) {
            failed = true;
            break;
        }
        if (evs.n > ROTA_XL_EVS_MAX)
            abort();
        for (uint32_t e = 0; e < evs.n; e++)
            for (size_t i = 0; i < NOUTS; i++)
                if (!so[i].ended && outs[i]->ev_out(x, &so[i], &evs.ev[e], &out))
                    so[i].ended = true; /* (the driver would fail the stream here) */
    }
    for (size_t i = 0; i < NOUTS; i++) {
        outs[i]->ev_fail(x, &so[i], "the upstream stream failed", &out);
        rota_jbuf_free(&so[i].held);
        rota_jbuf_free(&so[i].held2);
    }
    rota_jbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
    x.from = x.to = ROTA_XL_OPENAI;
    x.where = rota_xl_openai.where;
    x.model = "up\"stream";
    x.now_s = 1700000000;
    request(&x, in, size);
    answer(&x, in, size);
    struct rota_xl_evs one; /* the whole input as one event's data */
    struct rota_xl_sin st;
    memset(&st, 0, sizeof(st));
    one.n = 0;
    rota_xl_openai.ev_in(&x, &st, NULL, 0, in, size, &one);
    stream(&x, in, size);
    rota_arena_free(&a);
    free(in);
    return 0;
}
