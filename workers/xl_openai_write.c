/*
 * xl_openai_write.c - a request written in OpenAI's chat completions format, for a
 * target that speaks it (Copilot, OpenRouter, llama.cpp, OpenAI); and the assistant
 * message an answer carries (xl_openai.c says what the module does).
 *
 * DESIGN
 * The system text goes in one system message first (the templates of local models
 * refuse a second one, or one later), its parts joined by a blank line. A user message's
 * tool results become tool messages before the user's other content (they must follow
 * the assistant's call); a result that is JSON is sent quoted, as the content string.
 * Text crosses as its token: several texts are joined by copying their inner bytes. An
 * assistant's reasoning goes as reasoning_content, and, when a signature or redacted
 * thinking must come back to the provider that made it, as OpenRouter's
 * reasoning_details too (but not OpenAI's encrypted reasoning, which only its Responses
 * API takes back). Tool arguments go as a string of JSON. A stream always asks for
 * its usage (the pool counts it; the client's own wish is x->req->include_usage).
 * max_tokens is the name written: Copilot, OpenRouter and llama.cpp take it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_openai.h"
/* ---- a request written for a chat completions target ---- */

static bool thought(const struct rota_xl_part *p)
{
    return p->type == ROTA_XL_THINKING || (p->type == ROTA_XL_TEXT && p->thought);
}

static void image_out(struct rota_jbuf *b, const struct rota_xl_part *p)
{
    rota_jbuf_obj(b);
    rota_jbuf_kstr(b, "type", "image_url");
    rota_jbuf_key(b, "image_url");
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "url");
    if (p->url.len) {
        rota_jbuf_json(b, p->url.p, p->url.len);
    } else {
        rota_jbuf_json(b, "\"data:", 6);
        rota_xl_openai_inner(b, p->mime);
        rota_jbuf_raw(b, ";base64,", 8);
        rota_xl_openai_inner(b, p->data);
        rota_jbuf_raw(b, "\"", 1);
    }
    rota_jbuf_end(b);
    rota_jbuf_end(b);
}

/* A user message: its tool results as tool messages, then the rest in one message. */
static int user_out(struct rota_xl *x, const struct rota_xl_msg *m, struct rota_jbuf *b)
{
    uint32_t rest = 0, texts = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        const struct rota_xl_part *p = &m->part[i];
        if (p->type != ROTA_XL_TOOL_RESULT) {
            rest++;
            texts += p->type == ROTA_XL_TEXT;
            if (p->type != ROTA_XL_TEXT && p->type != ROTA_XL_IMAGE)
                return rota_xl_refuse_part(x, p, "this part in a user message");
            continue;
        }
        if (!p->id.len)
            return rota_xl_refuse_part(x, p, "a tool result without its call's id");
        rota_jbuf_obj(b);
        rota_jbuf_kstr(b, "role", "tool");
        rota_jbuf_key(b, "tool_call_id");
        rota_jbuf_json(b, p->id.p, p->id.len);
        rota_jbuf_key(b, "content");
        if (p->result.len && p->result.p[0] == '"')
            rota_jbuf_json(b, p->result.p, p->result.len);
        else if (p->result.len)
            rota_jbuf_quote(b, p->result.p, p->result.len);
        else
            rota_jbuf_json(b, "\"\"", 2);
        rota_jbuf_end(b);
    }
    if (!rest)
        return 0;
    rota_jbuf_obj(b);
    rota_jbuf_kstr(b, "role", "user");
    rota_jbuf_key(b, "content");
    if (rest == 1 && texts == 1) {
        for (uint32_t i = 0; i < m->n; i++)
            if (m->part[i].type == ROTA_XL_TEXT)
                rota_jbuf_json(b, m->part[i].text.p, m->part[i].text.len);
    } else {
        rota_jbuf_arr(b);
        for (uint32_t i = 0; i < m->n; i++) {
            const struct rota_xl_part *p = &m->part[i];
            if (p->type == ROTA_XL_IMAGE) {
                image_out(b, p);
            } else if (p->type == ROTA_XL_TEXT) {
                rota_jbuf_obj(b);
                rota_jbuf_kstr(b, "type", "text");
                rota_jbuf_key(b, "text");
                rota_jbuf_json(b, p->text.p, p->text.len);
                rota_jbuf_end(b);
            }
        }
        rota_jbuf_end(b);
    }
    rota_jbuf_end(b);
    return 0;
}

/* The texts of parts "want" joined into one string value. */
static void joined(struct rota_jbuf *b, const struct rota_xl_msg *m, bool want_thought)
{
    rota_jbuf_json(b, "\"", 1);
    for (uint32_t i = 0; i < m->n; i++) {
        const struct rota_xl_part *p = &m->part[i];
        if ((p->type == ROTA_XL_TEXT || p->type == ROTA_XL_THINKING) && thought(p) == want_thought)
            rota_xl_openai_inner(b, p->text);
    }
    rota_jbuf_raw(b, "\"", 1);
}

static int tool_call_out(struct rota_xl *x, const struct rota_xl_part *p, uint32_t k,
                         struct rota_jbuf *b)
{
    struct rota_xl_val id = p->id;
    if (!id.len)
        id = rota_xl_tool_id(x, "call_", p->name, p->args, k, p->sig);
    if (!id.len)
        return rota_xl_fail(x, -ENOMEM, "out of memory");
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "id");
    rota_jbuf_json(b, id.p, id.len);
    rota_jbuf_kstr(b, "type", "function");
    rota_jbuf_key(b, "function");
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "name");
    rota_jbuf_json(b, p->name.p, p->name.len);
    rota_jbuf_key(b, "arguments");
    if (p->args.len)
        rota_jbuf_quote(b, p->args.p, p->args.len);
    else
        rota_jbuf_json(b, "\"{}\"", 4);
    rota_jbuf_end(b);
    rota_jbuf_end(b);
    return 0;
}

/* The signature a part gives back: none in a request when it is OpenAI's own state. */
static struct rota_xl_val sig_of(const struct rota_xl_part *p, bool request)
{
    struct rota_xl_val s = p->type == ROTA_XL_REDACTED_THINKING ? p->text
                           : p->type == ROTA_XL_THINKING        ? p->sig
                                                                : (struct rota_xl_val){0};
    return request && rota_xl_openai_state(s) ? (struct rota_xl_val){0} : s;
}

int rota_xl_openai_assistant(struct rota_xl *x, const struct rota_xl_part *part, uint32_t n,
                             bool request, struct rota_jbuf *b)
{
    const struct rota_xl_msg m = {.part = (struct rota_xl_part *)part, .n = n};
    uint32_t texts = 0, thoughts = 0, signed_ = 0, calls = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct rota_xl_part *p = &part[i];
        if (p->type == ROTA_XL_TEXT || p->type == ROTA_XL_THINKING) {
            texts += !thought(p);
            thoughts += thought(p);
            signed_ += p->type == ROTA_XL_THINKING && sig_of(p, request).len;
        } else if (p->type == ROTA_XL_REDACTED_THINKING) {
            signed_ += sig_of(p, request).len > 0;
        } else if (p->type == ROTA_XL_TOOL_CALL) {
            calls++;
        } else {
            return rota_xl_refuse_part(x, p, "this part in an assistant message");
        }
    }
    rota_jbuf_obj(b);
    rota_jbuf_kstr(b, "role", "assistant");
    rota_jbuf_key(b, "content");
    if (texts)
        joined(b, &m, false);
    else
        rota_jbuf_null(b);
    if (thoughts) {
        rota_jbuf_key(b, "reasoning_content");
        joined(b, &m, true);
    }
    if (signed_) {
        rota_jbuf_key(b, "reasoning_details");
        rota_jbuf_arr(b);
        for (uint32_t i = 0, k = 0; i < n; i++) {
            const struct rota_xl_part *p = &part[i];
            bool red = p->type == ROTA_XL_REDACTED_THINKING;
            struct rota_xl_val sig = sig_of(p, request);
            if ((p->type != ROTA_XL_THINKING && !red) || (red && !sig.len))
                continue;
            rota_jbuf_obj(b);
            rota_jbuf_kstr(b, "type", red ? "reasoning.encrypted" : "reasoning.text");
            rota_jbuf_key(b, red ? "data" : "text");
            rota_jbuf_json(b, p->text.p, p->text.len);
            if (!red && sig.len) {
                rota_jbuf_key(b, "signature");
                rota_jbuf_json(b, sig.p, sig.len);
            }
            rota_jbuf_ku64(b, "index", k++);
            rota_jbuf_end(b);
        }
        rota_jbuf_end(b);
    }
    if (calls) {
        rota_jbuf_key(b, "tool_calls");
        rota_jbuf_arr(b);
        for (uint32_t i = 0, k = 0; i < n; i++)
            if (part[i].type == ROTA_XL_TOOL_CALL) {
                int rc = tool_call_out(x, &part[i], k++, b);
                if (rc)
                    return rc;
            }
        rota_jbuf_end(b);
    }
    rota_jbuf_end(b);
    return 0;
}

static void system_out(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    rota_jbuf_obj(b);
    rota_jbuf_kstr(b, "role", "system");
    rota_jbuf_key(b, "content");
    rota_jbuf_json(b, "\"", 1);
    for (uint32_t i = 0; i < r->nsystem; i++) {
        if (i)
            rota_jbuf_raw(b, "\\n\\n", 4);
        rota_xl_openai_inner(b, r->system[i].text);
    }
    rota_jbuf_raw(b, "\"", 1);
    rota_jbuf_end(b);
}

static void tools_out(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    rota_jbuf_key(b, "tools");
    rota_jbuf_arr(b);
    for (uint32_t i = 0; i < r->ntool; i++) {
        const struct rota_xl_tool *t = &r->tool[i];
        rota_jbuf_obj(b);
        rota_jbuf_kstr(b, "type", "function");
        rota_jbuf_key(b, "function");
        rota_jbuf_obj(b);
        rota_jbuf_key(b, "name");
        rota_jbuf_json(b, t->name.p, t->name.len);
        if (t->desc.len) {
            rota_jbuf_key(b, "description");
            rota_jbuf_json(b, t->desc.p, t->desc.len);
        }
        if (t->params.len) {
            rota_jbuf_key(b, "parameters");
            rota_jbuf_json(b, t->params.p, t->params.len);
        }
        rota_jbuf_end(b);
        rota_jbuf_end(b);
    }
    rota_jbuf_end(b);
    if (r->choice != ROTA_XL_CHOICE_UNSET) {
        rota_jbuf_key(b, "tool_choice");
        if (r->choice == ROTA_XL_NAMED) {
            rota_jbuf_obj(b);
            rota_jbuf_kstr(b, "type", "function");
            rota_jbuf_key(b, "function");
            rota_jbuf_obj(b);
            rota_jbuf_key(b, "name");
            rota_jbuf_json(b, r->choice_name.p, r->choice_name.len);
            rota_jbuf_end(b);
            rota_jbuf_end(b);
        } else {
            rota_jbuf_strz(b, r->choice == ROTA_XL_NONE  ? "none"
                              : r->choice == ROTA_XL_ANY ? "required"
                                                         : "auto");
        }
    }
    if (r->parallel_tools >= 0) {
        rota_jbuf_key(b, "parallel_tool_calls");
        rota_jbuf_bool(b, r->parallel_tools);
    }
}

static void num(struct rota_jbuf *b, const char *k, struct rota_xl_val v)
{
    if (v.len) {
        rota_jbuf_key(b, k);
        rota_jbuf_json(b, v.p, v.len);
    }
}

/* Reasoning asked for: the effort said, or one a budget of tokens comes closest to. */
static void effort_out(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    if (r->effort.len) {
        rota_jbuf_key(b, "reasoning_effort");
        rota_jbuf_json(b, r->effort.p, r->effort.len);
    } else if (r->thinking == 1) {
        rota_jbuf_kstr(b, "reasoning_effort", r->thinking_budget && r->thinking_budget <= 4096
                                                  ? "low"
                                              : r->thinking_budget > 16384 ? "high"
                                                                           : "medium");
    }
}

int rota_xl_openai_req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *b)
{
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "model");
    if (x->model)
        rota_jbuf_strz(b, x->model);
    else if (r->model.len)
        rota_jbuf_json(b, r->model.p, r->model.len);
    else
        rota_jbuf_json(b, "\"\"", 2);
    rota_jbuf_key(b, "messages");
    rota_jbuf_arr(b);
    if (r->nsystem)
        system_out(r, b);
    for (uint32_t i = 0; i < r->nmsg; i++) {
        const struct rota_xl_msg *m = &r->msg[i];
        int rc = m->role == ROTA_XL_USER ? user_out(x, m, b)
                                         : rota_xl_openai_assistant(x, m->part, m->n, true, b);
        if (rc)
            return rc;
    }
    rota_jbuf_end(b);
    if (r->ntool)
        tools_out(r, b);
    num(b, "max_tokens", r->max_tokens);
    num(b, "temperature", r->temperature);
    num(b, "top_p", r->top_p);
    num(b, "top_k", r->top_k);
    num(b, "seed", r->seed);
    num(b, "stop", r->stop);
    if (r->rformat != ROTA_XL_RF_TEXT) {
        rota_jbuf_key(b, "response_format");
        rota_jbuf_obj(b);
        if (r->rformat == ROTA_XL_RF_JSON) {
            rota_jbuf_kstr(b, "type", "json_object");
        } else {
            rota_jbuf_kstr(b, "type", "json_schema");
            rota_jbuf_key(b, "json_schema");
            rota_jbuf_obj(b);
            rota_jbuf_key(b, "name");
            if (r->schema_name.len)
                rota_jbuf_json(b, r->schema_name.p, r->schema_name.len);
            else
                rota_jbuf_strz(b, "response");
            rota_jbuf_key(b, "schema");
            rota_jbuf_json(b, r->schema.p, r->schema.len);
            rota_jbuf_end(b);
        }
        rota_jbuf_end(b);
    }
    effort_out(r, b);
    if (r->user.len)
        num(b, "user", r->user);
    if (r->stream) {
        rota_jbuf_key(b, "stream");
        rota_jbuf_bool(b, true);
        rota_jbuf_key(b, "stream_options");
        rota_jbuf_obj(b);
        rota_jbuf_key(b, "include_usage");
        rota_jbuf_bool(b, true);
        rota_jbuf_end(b);
    }
    rota_jbuf_end(b);
    return b->err;
}

