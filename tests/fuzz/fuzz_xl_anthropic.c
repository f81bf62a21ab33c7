/* fuzz_xl_anthropic: arbitrary bytes as an Anthropic messages request, answer and SSE
 * stream (workers/xl_anthropic*.c). Whatever the bytes, nothing reads past them; what is
 * read is written by every format's out functions (Anthropic's, chat completions', the
 * Responses API's, Gemini's, Code Assist's), and what a format writes its own in function
 * reads again (the pool never makes a body, an answer or a stream it cannot read itself). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "xlate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum rota_xl_fmt targets[] = {ROTA_XL_ANTHROPIC, ROTA_XL_OPENAI,
                                           ROTA_XL_RESPONSES, ROTA_XL_GEMINI,
                                           ROTA_XL_CODE_ASSIST};
#define NT (sizeof(targets) / sizeof(targets[0]))

static const struct rota_xl_format *of(enum rota_xl_fmt f)
{
    return rota_xl_of(f);
}

static void init(struct rota_xl *x, struct rota_arena *a)
{
    memset(x, 0, sizeof(*x));
    rota_arena_init(a, 32u << 20);
    x->a = a;
    x->from = x->to = ROTA_XL_ANTHROPIC;
    x->model = "claude-sonnet-4-5";
    x->where = rota_xl_anthropic.where;
}

static int read_req(struct rota_xl *x, const struct rota_xl_format *f, const char *p,
                    size_t n, struct rota_xl_req *r)
{
    memset(r, 0, sizeof(*r));
    r->parallel_tools = -1;
    r->thinking = -1;
    int rc = f->req_in(x, p, n, r);
    return rc ? rc : rota_xl_link(x, r, false);
}

static void request(const char *in, size_t size)
{
    struct rota_arena a;
    struct rota_xl x;
    init(&x, &a);
    struct rota_xl_req r;
    if (read_req(&x, &rota_xl_anthropic, in, size, &r) == 0) {
        x.req = &r;
        for (size_t t = 0; t < NT; t++) {
            const struct rota_xl_format *f = of(targets[t]);
            struct rota_jbuf out;
            rota_jbuf_init(&out, 0);
            x.to = targets[t];
            int rc = targets[t] == ROTA_XL_ANTHROPIC ? 0 : rota_xl_link(&x, &r, true);
            if (!rc)
                rc = f->req_out(&x, &r, &out);
            if (!rc && !out.err) {
                char *copy = malloc(out.len ? out.len : 1); /* exactly the bytes */
                memcpy(copy, out.p, out.len);
                struct rota_xl_req again;
                if (read_req(&x, f, copy, out.len, &again) != 0)
                    abort();
                free(copy);
            }
            rota_jbuf_free(&out);
        }
    }
    rota_arena_free(&a);
}

static void answer(const char *in, size_t size)
{
    struct rota_arena a;
    struct rota_xl x;
    init(&x, &a);
    struct rota_xl_resp r;
    memset(&r, 0, sizeof(r));
    if (rota_xl_anthropic.resp_in(&x, in, size, &r) == 0) {
        for (size_t t = 0; t < NT; t++) {
            const struct rota_xl_format *f = of(targets[t]);
            struct rota_jbuf out;
            rota_jbuf_init(&out, 0);
            struct rota_xl_resp again;
            memset(&again, 0, sizeof(again));
            if (f->resp_out(&x, &r, &out) == 0 && !out.err &&
                f->resp_in(&x, out.p, out.len, &again) != 0)
                abort();
            rota_jbuf_free(&out);
        }
    }
    rota_arena_free(&a);
}

/* Every event of "out" (a client's stream) read by "f" again. */
static void reread(const struct rota_xl_format *f, const struct rota_jbuf *out)
{
    struct rota_arena a;
    struct rota_xl x;
    init(&x, &a);
    struct rota_xl_sin st = {0};
    static struct rota_xl_evs evs;
    for (size_t at = 0, len; (len = rota_fmt_sse_event(out->p + at, out->len - at)); at += len) {
        const char *d;
        size_t dl;
        evs.n = 0;
        if (rota_fmt_sse_data(out->p + at, len, &d, &dl) &&
            f->ev_in(&x, &st, NULL, 0, d, dl, &evs) != 0)
            abort();
    }
    rota_arena_free(&a);
}

static void stream(const char *in, size_t size)
{
    struct rota_arena a;
    struct rota_xl x;
    init(&x, &a);
    struct rota_xl_sin st = {0};
    struct rota_xl_sout so[NT];
    struct rota_jbuf out[NT];
    bool failed[NT] = {0};
    for (size_t i = 0; i < NT; i++) {
        memset(&so[i], 0, sizeof(so[i]));
        so[i].open = -1;
        rota_jbuf_init(&so[i].held, 1u << 16);
        rota_jbuf_init(&so[i].held2, 1u << 16);
        rota_jbuf_init(&out[i], 0);
    }
    static struct rota_xl_evs evs;
    int rc = 0;
    for (size_t at = 0, len; !rc && at < size && (len = rota_fmt_sse_event(in + at, size - at));
         at += len) {
        const char *d;
        size_t dl;
        if (!rota_fmt_sse_data(in + at, len, &d, &dl))
            continue;
        evs.n = 0;
        rc = rota_xl_anthropic.ev_in(&x, &st, NULL, 0, d, dl, &evs);
        for (uint32_t k = 0; !rc && k < evs.n; k++)
            for (size_t i = 0; i < NT; i++)
                if (!failed[i] && evs.ev[k].type != ROTA_XL_EV_ERROR &&
                    of(targets[i])->ev_out(&x, &so[i], &evs.ev[k], &out[i]))
                    failed[i] = true; /* e.g. arguments for a call no longer open */
    }
    for (size_t i = 0; i < NT; i++) {
        const struct rota_xl_format *f = of(targets[i]);
        f->ev_fail(&x, &so[i], "cut", &out[i]);
        reread(f, &out[i]);
        rota_jbuf_free(&out[i]);
        rota_jbuf_free(&so[i].held);
        rota_jbuf_free(&so[i].held2);
    }
    rota_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1); /* exactly the bytes: a read past them is caught */
    if (!in)
        return 0;
    memcpy(in, data, size);
    request(in, size);
    answer(in, size);
    stream(in, size);
    free(in);
    return 0;
}
