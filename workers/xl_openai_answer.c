/*
 * xl_openai_answer.c - a whole chat completion read from a provider and written for a
 * client (xl_openai.c says what the module does).
 *
 * DESIGN
 * An answer's first choice is read (a request with n above 1 is refused, so there is
 * one): its message as an assistant message of a request is (reasoning, text, refusal,
 * tool calls, with the names a provider adds passed over), its finish_reason and the
 * usage. Written for a client, the message is the one a request carries
 * (xl_openai_write.c): text joined into "content", reasoning as reasoning_content, and
 * reasoning_details when a signature or redacted thinking must come back; an answer that
 * calls tools finishes with "tool_calls" whatever the provider said (Gemini says STOP).
 * The answer's id is the provider's, or "chatcmpl-" and a hash of the answer's first
 * text when it has none; "created" is the translation's clock.
 */
#include <errno.h>
#include <string.h>

#include "xl_openai.h"

enum rota_xl_finish rota_xl_openai_finish_in(const struct rota_json *v)
{
    if (!v || v->type == ROTA_JSON_NULL)
        return ROTA_XL_FINISH_NONE;
    if (rota_json_is(v, "stop"))
        return ROTA_XL_FINISH_STOP;
    if (rota_json_is(v, "length"))
        return ROTA_XL_FINISH_LENGTH;
    if (rota_json_is(v, "tool_calls") || rota_json_is(v, "function_call"))
        return ROTA_XL_FINISH_TOOLS;
    if (rota_json_is(v, "content_filter"))
        return ROTA_XL_FINISH_FILTER;
    return ROTA_XL_FINISH_OTHER;
}

const char *rota_xl_openai_finish_name(enum rota_xl_finish f, bool tools)
{
    switch (f) {
    case ROTA_XL_FINISH_LENGTH:
        return "length";
    case ROTA_XL_FINISH_TOOLS:
        return "tool_calls";
    case ROTA_XL_FINISH_FILTER:
    case ROTA_XL_FINISH_REFUSAL:
        return "content_filter";
    default:
        return tools ? "tool_calls" : "stop";
    }
}

void rota_xl_openai_usage_in(const struct rota_json *u, struct rota_xl_usage *out)
{
    if (!u || u->type != ROTA_JSON_OBJECT)
        return;
    uint64_t v;
    if (rota_json_uint(rota_json_get(u, "prompt_tokens"), &v))
        out->in = v;
    if (rota_json_uint(rota_json_get(u, "completion_tokens"), &v))
        out->out = v;
    if (rota_json_uint(rota_json_path(u, "prompt_tokens_details.cached_tokens"), &v))
        out->cached = v;
    if (rota_json_uint(rota_json_path(u, "completion_tokens_details.reasoning_tokens"), &v))
        out->reasoning = v;
    out->seen = true;
}

void rota_xl_openai_usage_out(struct rota_jbuf *b, const struct rota_xl_usage *u)
{
    rota_jbuf_obj(b);
    rota_jbuf_ku64(b, "prompt_tokens", u->in);
    rota_jbuf_ku64(b, "completion_tokens", u->out);
    rota_jbuf_ku64(b, "total_tokens", u->in + u->out);
    rota_jbuf_key(b, "prompt_tokens_details");
    rota_jbuf_obj(b);
    rota_jbuf_ku64(b, "cached_tokens", u->cached);
    rota_jbuf_end(b);
    rota_jbuf_key(b, "completion_tokens_details");
    rota_jbuf_obj(b);
    rota_jbuf_ku64(b, "reasoning_tokens", u->reasoning);
    rota_jbuf_end(b);
    rota_jbuf_end(b);
}

int rota_xl_openai_resp_in(struct rota_xl *x, const char *body, size_t len,
                           struct rota_xl_resp *r)
{
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, body, len, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "the answer is not JSON: %s at byte %zu", e.what, e.at);
    const struct rota_json *choices = rota_json_get(j, "choices");
    if (!choices || choices->type != ROTA_JSON_ARRAY) {
        const struct rota_json *m = rota_json_path(j, "error.message");
        size_t n = 0;
        const char *t = m ? rota_json_text(x->a, m, &n) : NULL;
        return t ? rota_xl_fail(x, -EINVAL, "the answer is an error: %.*s", (int)n, t)
                 : rota_xl_fail(x, -EINVAL, "the answer has no choices");
    }
    const struct rota_json *id = rota_json_get(j, "id"), *model = rota_json_get(j, "model");
    if (id && id->type == ROTA_JSON_STRING)
        r->id = rota_xl_v(id);
    if (model && model->type == ROTA_JSON_STRING)
        r->model = rota_xl_v(model);
    rota_xl_openai_usage_in(rota_json_get(j, "usage"), &r->usage);
    const struct rota_json *c = choices->kid;
    if (!c)
        return 0;
    if (c->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "choices[0] is not an object");
    r->finish = rota_xl_openai_finish_in(rota_json_get(c, "finish_reason"));
    const struct rota_json *m = rota_json_get(c, "message");
    if (!m || m->type == ROTA_JSON_NULL)
        return 0;
    if (m->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "choices[0].message is not an object");
    struct rota_xl_openai_amsg a = {0};
    for (const struct rota_json *f = m->kid; f; f = f->next) {
        if (f->type == ROTA_JSON_NULL)
            continue;
        if (rota_json_key_is(f, "content"))
            a.content = f;
        else if (rota_json_key_is(f, "tool_calls"))
            a.tool_calls = f;
        else if ((rota_json_key_is(f, "reasoning_content") || rota_json_key_is(f, "reasoning")) &&
                 f->type == ROTA_JSON_STRING)
            a.reasoning = f;
        else if (rota_json_key_is(f, "reasoning_details"))
            a.details = f;
        else if (rota_json_key_is(f, "refusal") && f->type == ROTA_JSON_STRING)
            a.refusal = f;
    }
    struct rota_xl_msg msg;
    int rc = rota_xl_openai_assistant_in(x, &a, 0, true, &msg);
    if (rc)
        return rc;
    r->part = msg.part;
    r->n = msg.n;
    if (a.refusal && a.refusal->len > 2 && r->finish == ROTA_XL_FINISH_STOP)
        r->finish = ROTA_XL_FINISH_REFUSAL;
    return 0;
}

int rota_xl_openai_resp_out(struct rota_xl *x, const struct rota_xl_resp *r,
                            struct rota_jbuf *b)
{
    bool tools = false;
    struct rota_xl_val first = {0};
    for (uint32_t i = 0; i < r->n; i++) {
        tools |= r->part[i].type == ROTA_XL_TOOL_CALL;
        if (!first.len && r->part[i].type == ROTA_XL_TEXT)
            first = r->part[i].text;
    }
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "id");
    struct rota_xl_val id = r->id;
    if (!id.len)
        id = rota_xl_tool_id(x, "chatcmpl-", first, r->model, (uint32_t)x->now_s,
                             (struct rota_xl_val){0});
    if (!id.len)
        return rota_xl_fail(x, -ENOMEM, "out of memory");
    rota_jbuf_json(b, id.p, id.len);
    rota_jbuf_kstr(b, "object", "chat.completion");
    rota_jbuf_ku64(b, "created", x->now_s);
    rota_jbuf_key(b, "model");
    if (r->model.len)
        rota_jbuf_json(b, r->model.p, r->model.len);
    else if (x->req && x->req->model.len)
        rota_jbuf_json(b, x->req->model.p, x->req->model.len);
    else
        rota_jbuf_strz(b, x->model ? x->model : "");
    rota_jbuf_key(b, "choices");
    rota_jbuf_arr(b);
    rota_jbuf_obj(b);
    rota_jbuf_ku64(b, "index", 0);
    rota_jbuf_key(b, "message");
    int rc = rota_xl_openai_assistant(x, r->part, r->n, false, b);
    if (rc)
        return rc;
    rota_jbuf_kstr(b, "finish_reason", rota_xl_openai_finish_name(r->finish, tools));
    rota_jbuf_end(b);
    rota_jbuf_end(b);
    if (r->usage.seen) {
        rota_jbuf_key(b, "usage");
        rota_xl_openai_usage_out(b, &r->usage);
    }
    rota_jbuf_end(b);
    return b->err;
}
