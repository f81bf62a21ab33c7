/*
 * xlate_drive.c - the translation's driver: a request, a whole answer and a stream
 * through the client's and the provider's format modules (xlate.h says what and why).
 *
 * DESIGN
 * A request: the client format's req_in reads the body into the representation,
 * rota_xl_link ties each tool result to its call, the provider format's req_out writes
 * the provider's body. An answer: the other way round. A stream: upstream bytes are cut
 * into SSE events here (the "event:" name and the "data:" lines joined, CRLF or LF
 * framed), each event goes through the provider format's ev_in and every event it gives
 * through the client format's ev_out, so memory is one event plus what a client format
 * must hold (xlate.h). An event larger than STREAM_EVENT_MAX fails the stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "xlate.h"

#define STREAM_EVENT_MAX (4u << 20)

const struct rota_xl_format *rota_xl_of(enum rota_xl_fmt f)
{
    switch (f) {
    case ROTA_XL_OPENAI:
        return &rota_xl_openai;
    case ROTA_XL_RESPONSES:
        return &rota_xl_responses;
    case ROTA_XL_ANTHROPIC:
        return &rota_xl_anthropic;
    case ROTA_XL_GEMINI:
        return &rota_xl_gemini;
    case ROTA_XL_CODE_ASSIST:
        return &rota_xl_code_assist;
    default:
        return NULL;
    }
}

/* ---- the driver ---- */

static bool gemini_like(enum rota_xl_fmt f)
{
    return f == ROTA_XL_GEMINI || f == ROTA_XL_CODE_ASSIST;
}

int rota_xl_read(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r)
{
    const struct rota_xl_format *f = rota_xl_of(x->from);
    if (!f)
        return rota_xl_fail(x, -EINVAL, "no such format");
    x->where = f->where;
    memset(r, 0, sizeof(*r));
    r->parallel_tools = -1;
    r->thinking = -1;
    int rc = f->req_in(x, body, len, r);
    if (!rc)
        rc = rota_xl_link(x, r, false);
    if (!rc)
        x->req = r;
    return rc;
}

int rota_xl_write(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    const struct rota_xl_format *t = rota_xl_of(x->to);
    if (!t)
        return rota_xl_fail(x, -EINVAL, "no such format");
    x->dropped[0] = 0;
    int rc = gemini_like(x->to) ? rota_xl_link(x, (struct rota_xl_req *)r, true) : 0;
    if (rc)
        return rc;
    rc = t->req_out(x, r, out);
    if (!rc && out->err)
        rc = rota_xl_fail(x, out->err, "the translated request is too large");
    return rc;
}

int rota_xl_request(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r,
                    struct rota_jbuf *out)
{
    int rc = rota_xl_read(x, body, len, r);
    return rc ? rc : rota_xl_write(x, r, out);
}

int rota_xl_answer(struct rota_xl *x, const char *body, size_t len, struct rota_jbuf *out)
{
    const struct rota_xl_format *f = rota_xl_of(x->from), *t = rota_xl_of(x->to);
    x->where = f->where;
    struct rota_xl_resp resp;
    memset(&resp, 0, sizeof(resp));
    x->status = 502;
    int rc = t->resp_in(x, body, len, &resp);
    if (rc)
        return rc;
    x->status = 0;
    x->usage = resp.usage;
    rc = f->resp_out(x, &resp, out);
    if (!rc && out->err)
        rc = rota_xl_fail(x, out->err, "the translated answer is too large");
    return rc;
}

void rota_xl_stream_init(struct rota_xl_stream *s, struct rota_xl *x)
{
    memset(s, 0, sizeof(*s));
    s->x = x;
    s->out.open = -1;
    rota_jbuf_init(&s->out.held, 16u << 20);
    rota_jbuf_init(&s->out.held2, 16u << 20);
    rota_jbuf_init(&s->carry, STREAM_EVENT_MAX);
    rota_arena_init(&s->scratch, STREAM_EVENT_MAX * 4);
}

void rota_xl_stream_free(struct rota_xl_stream *s)
{
    rota_jbuf_free(&s->out.held);
    rota_jbuf_free(&s->out.held2);
    rota_jbuf_free(&s->carry);
    rota_arena_free(&s->scratch);
}

bool rota_xl_stream_ended(const struct rota_xl_stream *s)
{
    return s->in.ended || s->errored;
}

/* One complete event ("n" bytes, its blank line included): its name and data lines. */
static int event(struct rota_xl_stream *s, const char *ev, size_t n, struct rota_jbuf *out)
{
    struct rota_xl *x = s->x;
    const char *name = NULL, *data = NULL;
    size_t nlen = 0, dlen = 0;
    struct rota_jbuf joined; /* several data lines: joined with \n */
    rota_jbuf_init(&joined, STREAM_EVENT_MAX);
    int lines = 0;
    for (const char *p = ev, *e = ev + n; p < e;) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        const char *v = NULL;
        size_t vl = 0;
        if (ll >= 5 && memcmp(p, "data:", 5) == 0) {
            v = p + 5, vl = ll - 5;
            if (vl && *v == ' ')
                v++, vl--;
            if (lines++ == 0) {
                data = v, dlen = vl;
            } else {
                if (lines == 2)
                    rota_jbuf_raw(&joined, data, dlen);
                rota_jbuf_raw(&joined, "\n", 1);
                rota_jbuf_raw(&joined, v, vl);
            }
        } else if (ll >= 6 && memcmp(p, "event:", 6) == 0) {
            name = p + 6, nlen = ll - 6;
            if (nlen && *name == ' ')
                name++, nlen--;
        }
        p = nl ? nl + 1 : e;
    }
    if (lines > 1) {
        data = joined.p, dlen = joined.len;
    }
    int rc = 0;
    if (lines) {
        const struct rota_xl_format *f = rota_xl_of(x->from), *t = rota_xl_of(x->to);
        struct rota_arena *req_a = x->a;
        x->keep = req_a;
        x->a = &s->scratch;
        s->evs.n = 0;
        rc = t->ev_in(x, &s->in, name, nlen, data, dlen, &s->evs);
        for (uint32_t i = 0; !rc && i < s->evs.n && !s->errored; i++) {
            const struct rota_xl_ev *e = &s->evs.ev[i];
            if (e->type == ROTA_XL_EV_ERROR) { /* the provider's own: the client's own */
                size_t ml = 0;
                const char *m = e->text.len ? rota_xl_text(x, e->text, &ml) : NULL;
                char msg[512];
                snprintf(msg, sizeof(msg), "the upstream stream failed: %.*s", (int)ml,
                         m ? m : "");
                f->ev_fail(x, &s->out, msg, out);
                s->errored = true;
                break;
            }
            rc = f->ev_out(x, &s->out, e, out);
            if (e->type == ROTA_XL_EV_END)
                s->in.ended = true;
        }
        s->in.seq++;
        x->a = req_a;
        rota_arena_reset(&s->scratch);
    }
    rota_jbuf_free(&joined);
    return rc;
}

int rota_xl_stream_data(struct rota_xl_stream *s, const char *p, size_t n,
                        struct rota_jbuf *out)
{
    if (s->failed)
        return -EPROTO;
    const char *buf = p;
    size_t len = n;
    if (s->carry.len) {
        rota_jbuf_raw(&s->carry, p, n);
        if (s->carry.err) {
            s->failed = true;
            return rota_xl_fail(s->x, -EFBIG, "an upstream event is larger than %u bytes",
                                STREAM_EVENT_MAX);
        }
        buf = s->carry.p, len = s->carry.len;
    }
    size_t used = 0, from = buf == s->carry.p ? s->scanned : 0;
    for (;;) { /* (each byte scanned once, however small the pieces: "scanned") */
        size_t evlen = rota_fmt_sse_event_from(buf + used, len - used, from);
        from = 0;
        if (!evlen)
            break;
        int rc = rota_xl_stream_ended(s) ? 0 : event(s, buf + used, evlen, out);
        used += evlen;
        if (rc) {
            s->failed = true;
            return rc;
        }
    }
    s->scanned = len - used;
    if (buf == s->carry.p) {
        memmove(s->carry.p, s->carry.p + used, s->carry.len - used);
        s->carry.len -= used;
    } else if (used < len) {
        rota_jbuf_raw(&s->carry, buf + used, len - used);
        if (s->carry.err) {
            s->failed = true;
            return rota_xl_fail(s->x, -EFBIG, "an upstream event is larger than %u bytes",
                                STREAM_EVENT_MAX);
        }
    }
    return out->err;
}

void rota_xl_stream_fail(struct rota_xl_stream *s, const char *message, struct rota_jbuf *out)
{
    const struct rota_xl_format *f = rota_xl_of(s->x->from);
    if (s->errored)
        return; /* the provider's error was passed on already */
    s->failed = true;
    s->errored = true;
    f->ev_fail(s->x, &s->out, message, out);
}
