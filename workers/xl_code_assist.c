/*
 * xl_code_assist.c - Google's Code Assist envelope (Gemini CLI, Antigravity:
 * v1internal:generateContent and :streamGenerateContent) around Gemini's format.
 *
 * DESIGN
 * A request is {"model": M, "project": P, "user_prompt_id": ..., "request": {Gemini's
 * request, with "session_id"}}; an answer and each stream event {"response": {Gemini's
 * answer}, "traceId": ...}. Everything inside is xl_gemini*.c's: this file opens and
 * closes the envelope. Its model and project are read into r->model and r->project; the
 * request written names x->model, and r->project when the request had one.
 *
 * Ignored: user_prompt_id, requestId, userAgent, requestType (the client's own
 * bookkeeping), an answer's traceId and metadata.
 */
#include <errno.h>
#include <stdio.h>

#include "xl_gemini_int.h"

static int req_in(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r)
{
    static const char *const keys[] = {"model",     "project",   "request", "userPromptId",
                                       "requestId", "userAgent", "requestType", NULL};
    struct rota_json *o = rota_xlg_parse(x, body, len, "the request");
    if (!o)
        return -EINVAL;
    const struct rota_json *inner = NULL;
    for (const struct rota_json *m = o->kid; m; m = m->next) {
        switch (rota_xlg_key_of(x, m, keys)) {
        case 0:
            if (m->type != ROTA_JSON_STRING)
                return rota_xl_fail(x, -EINVAL, "model is not a string");
            r->model = rota_xl_v(m);
            break;
        case 1:
            if (m->type != ROTA_JSON_STRING && m->type != ROTA_JSON_NULL)
                return rota_xl_fail(x, -EINVAL, "project is not a string");
            r->project = m->type == ROTA_JSON_STRING ? rota_xl_v(m) : (struct rota_xl_val){0};
            break;
        case 2: inner = m; break;
        case -1: {
            char path[80];
            snprintf(path, sizeof(path), "%.*s", (int)m->klen - 2, m->key + 1);
            return rota_xl_refuse(x, path);
        }
        default: break; /* ignored (above) */
        }
    }
    if (!inner || inner->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "request is not an object");
    return rota_xlg_req_in(x, inner, r, true);
}

static int req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    rota_jbuf_obj(out);
    rota_jbuf_kstr(out, "model", x->model ? x->model : "");
    if (r->project.len) {
        XK(out, "project");
        rota_jbuf_json(out, r->project.p, r->project.len);
    }
    XK(out, "request");
    int rc = rota_xlg_req_out(x, r, out);
    rota_jbuf_end(out);
    return rc ? rc : out->err;
}

static int resp_in(struct rota_xl *x, const char *body, size_t len, struct rota_xl_resp *r)
{
    struct rota_json *o = rota_xlg_parse(x, body, len, "the answer");
    if (!o)
        return -EINVAL;
    const struct rota_json *inner = rota_json_get(o, "response");
    if (!inner || inner->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "the answer has no response object");
    return rota_xlg_resp_in(x, inner, r, true);
}

static int resp_out(struct rota_xl *x, const struct rota_xl_resp *r, struct rota_jbuf *out)
{
    rota_jbuf_obj(out);
    XK(out, "response");
    rota_xlg_resp_out(x, r, out);
    rota_jbuf_end(out);
    return out->err;
}

static int ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name, size_t nlen,
                 const char *data, size_t dlen, struct rota_xl_evs *out)
{
    (void)name, (void)nlen;
    return rota_xlg_ev_in(x, st, data, dlen, out, true);
}

static int ev_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                  struct rota_jbuf *out)
{
    return rota_xlg_ev_out(x, st, ev, out, true);
}

static void where(char *buf, size_t n, unsigned msg, unsigned part)
{
    if (msg == ROTA_XLG_SYSTEM)
        snprintf(buf, n, "request.systemInstruction.parts[%u]", part);
    else
        snprintf(buf, n, "request.contents[%u].parts[%u]", msg, part);
}

const struct rota_xl_format rota_xl_code_assist = {
    .name = "code-assist",
    .req_in = req_in,
    .req_out = req_out,
    .resp_in = resp_in,
    .resp_out = resp_out,
    .ev_in = ev_in,
    .ev_out = ev_out,
    .ev_fail = rota_xlg_ev_fail,
    .where = where,
};
