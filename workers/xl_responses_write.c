/*
 * xl_responses_write.c - a request written in the Responses API's format, for a target
 * that speaks it; and whole answers read from one and written for a client
 * (xl_responses.c says what the module does).
 *
 * DESIGN
 * A request: the system text as "instructions" (its parts joined by a blank line); each
 * user message as its function_call_output items, then one message item of the rest;
 * each assistant message as its items in order (reasoning, a message of its text,
 * function calls). Items carry no ids and the request is sent with store false: the
 * translation is stateless, and a Responses provider refuses ids it did not store.
 * Reasoning is given back only when its signature is state OpenAI made (a Fernet token,
 * from an answer translated earlier): another provider's signature would be refused,
 * and reasoning text alone is not taken back. Stop sequences, top_k and a seed have no
 * place in a Responses request and are refused.
 *
 * An answer read: its output items in order (message text, refusals as text, reasoning
 * as THINKING with encrypted_content as the signature, function calls); a failed one
 * is an error. An answer written: reasoning items, a message item per run of text,
 * function_call items, with ids made from the response's, and usage in the Responses
 * API's names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_responses.h"

void rota_xl_responses_usage_in(const struct rota_json *u, struct rota_xl_usage *out)
{
    if (!u || u->type != ROTA_JSON_OBJECT)
        return;
    uint64_t v;
    if (rota_json_uint(rota_json_get(u, "input_tokens"), &v))
        out->in = v;
    if (rota_json_uint(rota_json_get(u, "output_tokens"), &v))
        out->out = v;
    if (rota_json_uint(rota_json_path(u, "input_tokens_details.cached_tokens"), &v))
        out->cached = v;
    if (rota_json_uint(rota_json_path(u, "output_tokens_details.reasoning_tokens"), &v))
        out->reasoning = v;
    out->seen = true;
}

void rota_xl_responses_usage_out(struct rota_jbuf *b, const struct rota_xl_usage *u)
{
    rota_jbuf_obj(b);
    rota_jbuf_ku64(b, "input_tokens", u->in);
    rota_jbuf_key(b, "input_tokens_details");
    rota_jbuf_obj(b);
    rota_jbuf_ku64(b, "cached_tokens", u->cached);
    rota_jbuf_end(b);
    rota_jbuf_ku64(b, "output_tokens", u->out);
    rota_jbuf_key(b, "output_tokens_details");
    rota_jbuf_obj(b);
    rota_jbuf_ku64(b, "reasoning_tokens", u->reasoning);
    rota_jbuf_end(b);
    rota_jbuf_ku64(b, "total_tokens", u->in + u->out);
    rota_jbuf_end(b);
}

enum rota_xl_finish rota_xl_responses_finish_in(const struct rota_json *resp, bool tools)
{
    const struct rota_json *st = rota_json_get(resp, "status");
    if (rota_json_is(st, "completed"))
        return tools ? ROTA_XL_FINISH_TOOLS : ROTA_XL_FINISH_STOP;
    if (!rota_json_is(st, "incomplete"))
        return ROTA_XL_FINISH_OTHER;
    const struct rota_json *why = rota_json_path(resp, "incomplete_details.reason");
    if (rota_json_is(why, "max_output_tokens"))
        return ROTA_XL_FINISH_LENGTH;
    if (rota_json_is(why, "content_filter"))
        return ROTA_XL_FINISH_FILTER;
    return ROTA_XL_FINISH_OTHER;
}

/* ---- a request ---- */

static void result_out(struct rota_jbuf *b, struct rota_xl_val v)
{
    if (v.len && v.p[0] == '"')
        rota_jbuf_json(b, v.p, v.len);
    else if (v.len)
        rota_jbuf_quote(b, v.p, v.len); /* JSON: as the string it must be */
    else
        rota_jbuf_json(b, "\"\"", 2);
}

static void image_out(struct rota_jbuf *b, const struct rota_xl_part *p)
{
    rota_jbuf_obj(b);
    rota_jbuf_kstr(b, "type", "input_image");
    rota_jbuf_key(b, "image_url");
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
}

static int user_items(struct rota_xl *x, const struct rota_xl_msg *m, struct rota_jbuf *b)
{
    uint32_t rest = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        const struct rota_xl_part *p = &m->part[i];
        if (p->type == ROTA_XL_TEXT || p->type == ROTA_XL_IMAGE) {
            rest++;
            continue;
        }
        if (p->type != ROTA_XL_TOOL_RESULT)
            return rota_xl_refuse_part(x, p, "this part in a user message");
        if (!p->id.len)
            return rota_xl_refuse_part(x, p, "a tool result without its call's id");
        rota_jbuf_obj(b);
        rota_jbuf_kstr(b, "type", "function_call_output");
        rota_jbuf_key(b, "call_id");
        rota_jbuf_json(b, p->id.p, p->id.len);
        rota_jbuf_key(b, "output");
        result_out(b, p->result);
        rota_jbuf_end(b);
    }
    if (!rest)
        return 0;
    rota_jbuf_obj(b);
    rota_jbuf_kstr(b, "type", "message");
    rota_jbuf_kstr(b, "role", "user");
    rota_jbuf_key(b, "content");
    rota_jbuf_arr(b);
    for (uint32_t i = 0; i < m->n; i++) {
        const struct rota_xl_part *p = &m->part[i];
        if (p->type == ROTA_XL_IMAGE) {
            image_out(b, p);
        } else if (p->type == ROTA_XL_TEXT) {
            rota_jbuf_obj(b);
            rota_jbuf_kstr(b, "type", "input_text");
            rota_jbuf_key(b, "text");
            rota_jbuf_json(b, p->text.p, p->text.len);
            rota_jbuf_end(b);
        }
    }
    rota_jbuf_end(b);
    rota_jbuf_end(b);
    return 0;
}

static void reasoning_out(struct rota_jbuf *b, const struct rota_xl_part *p, struct rota_xl_val id)
{
    bool red = p->type == ROTA_XL_REDACTED_THINKING;
    rota_jbuf_obj(b);
    if (id.len) {
        rota_jbuf_key(b, "id");
        rota_jbuf_json(b, id.p, id.len);
    }
    rota_jbuf_kstr(b, "type", "reasoning");
    rota_jbuf_key(b, "summary");
    rota_jbuf_arr(b);
    if (!red && p->text.len > 2) {
        rota_jbuf_obj(b);
        rota_jbuf_kstr(b, "type", "summary_text");
        rota_jbuf_key(b, "text");
        rota_jbuf_json(b, p->text.p, p->text.len);
        rota_jbuf_end(b);
    }
    rota_jbuf_end(b);
    struct rota_xl_val enc = red ? p->text : p->sig;
    if (enc.len) {
        rota_jbuf_key(b, "encrypted_content");
        rota_jbuf_json(b, enc.p, enc.len);
    }
    rota_jbuf_end(b);
}

static void call_out(struct rota_jbuf *b, const struct rota_xl_part *p, struct rota_xl_val id,
                     struct rota_xl_val item_id)
{
    rota_jbuf_obj(b);
    if (item_id.len) {
        rota_jbuf_key(b, "id");
        rota_jbuf_json(b, item_id.p, item_id.len);
    }
    rota_jbuf_kstr(b, "type", "function_call");
    if (item_id.len)
        rota_jbuf_kstr(b, "status", "completed");
    rota_jbuf_key(b, "arguments");
    if (p->args.len)
        rota_jbuf_quote(b, p->args.p, p->args.len);
    else
        rota_jbuf_json(b, "\"{}\"", 4);
    rota_jbuf_key(b, "call_id");
    rota_jbuf_json(b, id.p, id.len);
    rota_jbuf_key(b, "name");
    rota_jbuf_json(b, p->name.p, p->name.len);
    rota_jbuf_end(b);
}

static bool is_text(const struct rota_xl_part *p)
{
    return p->type == ROTA_XL_TEXT && !p->thought;
}

static int assistant_items(struct rota_xl *x, const struct rota_xl_msg *m, struct rota_jbuf *b)
{
    for (uint32_t i = 0; i < m->n; i++) {
        const struct rota_xl_part *p = &m->part[i];
        if (p->type == ROTA_XL_THINKING || p->type == ROTA_XL_REDACTED_THINKING) {
            if (rota_xl_openai_state(p->type == ROTA_XL_THINKING ? p->sig : p->text))
                reasoning_out(b, p, (struct rota_xl_val){0});
        } else if (p->type == ROTA_XL_TEXT && p->thought) {
            continue; /* reasoning text alone is not taken back */
        } else if (p->type == ROTA_XL_TEXT) {
            rota_jbuf_obj(b); /* a run of text: one message */
            rota_jbuf_kstr(b, "type", "message");
            rota_jbuf_kstr(b, "role", "assistant");
            rota_jbuf_key(b, "content");
            rota_jbuf_json(b, "\"", 1);
            for (; i < m->n && is_text(&m->part[i]); i++)
                rota_xl_openai_inner(b, m->part[i].text);
            i--;
            rota_jbuf_raw(b, "\"", 1);
            rota_jbuf_end(b);
        } else if (p->type == ROTA_XL_TOOL_CALL) {
            struct rota_xl_val id = p->id.len ? p->id
                                              : rota_xl_tool_id(x, "call_", p->name, p->args, i,
                                                                p->sig);
            if (!id.len)
                return rota_xl_fail(x, -ENOMEM, "out of memory");
            call_out(b, p, id, (struct rota_xl_val){0});
        } else {
            return rota_xl_refuse_part(x, p, "this part in an assistant message");
        }
    }
    return 0;
}

static void tools_out(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    rota_jbuf_key(b, "tools");
    rota_jbuf_arr(b);
    for (uint32_t i = 0; i < r->ntool; i++) {
        const struct rota_xl_tool *t = &r->tool[i];
        rota_jbuf_obj(b);
        rota_jbuf_kstr(b, "type", "function");
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
    }
    rota_jbuf_end(b);
}

static void choice_out(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    if (r->choice == ROTA_XL_CHOICE_UNSET)
        return;
    rota_jbuf_key(b, "tool_choice");
    if (r->choice == ROTA_XL_NAMED) {
        rota_jbuf_obj(b);
        rota_jbuf_kstr(b, "type", "function");
        rota_jbuf_key(b, "name");
        rota_jbuf_json(b, r->choice_name.p, r->choice_name.len);
        rota_jbuf_end(b);
    } else {
        rota_jbuf_strz(b, r->choice == ROTA_XL_NONE  ? "none"
                          : r->choice == ROTA_XL_ANY ? "required"
                                                     : "auto");
    }
}

static void format_out(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    if (r->rformat == ROTA_XL_RF_TEXT)
        return;
    rota_jbuf_key(b, "text");
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "format");
    rota_jbuf_obj(b);
    if (r->rformat == ROTA_XL_RF_JSON) {
        rota_jbuf_kstr(b, "type", "json_object");
    } else {
        rota_jbuf_kstr(b, "type", "json_schema");
        rota_jbuf_key(b, "name");
        if (r->schema_name.len)
            rota_jbuf_json(b, r->schema_name.p, r->schema_name.len);
        else
            rota_jbuf_strz(b, "response");
        rota_jbuf_key(b, "schema");
        rota_jbuf_json(b, r->schema.p, r->schema.len);
    }
    rota_jbuf_end(b);
    rota_jbuf_end(b);
}

/* Reasoning asked for: its effort (said, or the one a budget comes closest to), its
 * summary when the client wants the text, and its state back for the next turn. */
static void reasoning_asked(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    if (r->thinking != 1 && !r->effort.len)
        return;
    rota_jbuf_key(b, "reasoning");
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "effort");
    if (r->effort.len)
        rota_jbuf_json(b, r->effort.p, r->effort.len);
    else
        rota_jbuf_strz(b, r->thinking_budget && r->thinking_budget <= 4096 ? "low"
                          : r->thinking_budget > 16384                   ? "high"
                                                                         : "medium");
    if (r->include_thoughts)
        rota_jbuf_kstr(b, "summary", "auto");
    rota_jbuf_end(b);
    if (r->thinking == 1) {
        rota_jbuf_key(b, "include");
        rota_jbuf_arr(b);
        rota_jbuf_strz(b, "reasoning.encrypted_content");
        rota_jbuf_end(b);
    }
}

static void num(struct rota_jbuf *b, const char *k, struct rota_xl_val v)
{
    if (v.len) {
        rota_jbuf_key(b, k);
        rota_jbuf_json(b, v.p, v.len);
    }
}

int rota_xl_responses_req_out(struct rota_xl *x, const struct rota_xl_req *r,
                              struct rota_jbuf *b)
{
    if (r->stop.len)
        return rota_xl_refuse(x, "stop sequences");
    if (r->top_k.len)
        return rota_xl_refuse(x, "top_k");
    if (r->seed.len)
        return rota_xl_refuse(x, "seed");
    rota_jbuf_obj(b);
    rota_jbuf_key(b, "model");
    if (x->model)
        rota_jbuf_strz(b, x->model);
    else if (r->model.len)
        rota_jbuf_json(b, r->model.p, r->model.len);
    else
        rota_jbuf_json(b, "\"\"", 2);
    if (r->nsystem) {
        rota_jbuf_key(b, "instructions");
        rota_jbuf_json(b, "\"", 1);
        for (uint32_t i = 0; i < r->nsystem; i++) {
            if (i)
                rota_jbuf_raw(b, "\\n\\n", 4);
            rota_xl_openai_inner(b, r->system[i].text);
        }
        rota_jbuf_raw(b, "\"", 1);
    }
    rota_jbuf_key(b, "input");
    rota_jbuf_arr(b);
    for (uint32_t i = 0; i < r->nmsg; i++) {
        int rc = r->msg[i].role == ROTA_XL_USER ? user_items(x, &r->msg[i], b)
                                                : assistant_items(x, &r->msg[i], b);
        if (rc)
            return rc;
    }
    rota_jbuf_end(b);
    if (r->ntool) {
        tools_out(r, b);
        choice_out(r, b);
        if (r->parallel_tools >= 0) {
            rota_jbuf_key(b, "parallel_tool_calls");
            rota_jbuf_bool(b, r->parallel_tools);
        }
    }
    num(b, "max_output_tokens", r->max_tokens);
    num(b, "temperature", r->temperature);
    num(b, "top_p", r->top_p);
    format_out(r, b);
    reasoning_asked(r, b);
    num(b, "user", r->user);
    rota_jbuf_key(b, "store");
    rota_jbuf_bool(b, false);
    if (r->stream) {
        rota_jbuf_key(b, "stream");
        rota_jbuf_bool(b, true);
    }
    rota_jbuf_end(b);
    return b->err;
}

/* ---- answers ---- */

/* Room for the parts of output "out": each item gives one part (a reasoning or a call)
 * or one per element of its content (a message), whatever its type says. */
static uint32_t parts_in(const struct rota_json *out)
{
    uint32_t n = 0;
    for (const struct rota_json *it = out->kid; it; it = it->next) {
        const struct rota_json *c = rota_json_get(it, "content");
        n += 1 + (c && c->type == ROTA_JSON_ARRAY ? c->n : 0);
    }
    return n ? n : 1;
}

/* One output item into "r"'s parts. */
static int item_in(struct rota_xl *x, const struct rota_json *it, unsigned i,
                   struct rota_xl_resp *r, bool *refusal)
{
    const struct rota_json *type = rota_json_get(it, "type");
    struct rota_xl_part *p;
    if (rota_json_is(type, "message")) {
        const struct rota_json *c = rota_json_get(it, "content");
        for (const struct rota_json *e = c && c->type == ROTA_JSON_ARRAY ? c->kid : NULL; e;
             e = e->next) {
            bool ref = rota_json_is(rota_json_get(e, "type"), "refusal");
            const struct rota_json *t = rota_json_get(e, ref ? "refusal" : "text");
            if (!t || t->type != ROTA_JSON_STRING)
                continue; /* a part of no text */
            *refusal |= ref;
            p = &r->part[r->n++];
            p->type = ROTA_XL_TEXT;
            p->text = rota_xl_v(t);
        }
    } else if (rota_json_is(type, "reasoning")) {
        const struct rota_json *enc = rota_json_get(it, "encrypted_content");
        struct rota_xl_val text = rota_xl_responses_summary(x, it);
        if (!text.len)
            return rota_xl_fail(x, -EINVAL, "output[%u]: a reasoning summary that is not "
                                            "summary_text", i);
        p = &r->part[r->n++];
        p->type = ROTA_XL_THINKING;
        p->text = text;
        if (enc && enc->type == ROTA_JSON_STRING && enc->len > 2)
            p->sig = rota_xl_v(enc);
    } else if (rota_json_is(type, "function_call")) {
        const struct rota_json *id = rota_json_get(it, "call_id"), *name = rota_json_get(it, "name");
        if (!id || id->type != ROTA_JSON_STRING || !name || name->type != ROTA_JSON_STRING)
            return rota_xl_fail(x, -EINVAL, "output[%u]: a function call without call_id or "
                                            "name", i);
        p = &r->part[r->n++];
        p->type = ROTA_XL_TOOL_CALL;
        p->id = rota_xl_v(id);
        p->name = rota_xl_v(name);
        const struct rota_json *args = rota_json_get(it, "arguments");
        if (!args || args->type == ROTA_JSON_NULL)
            p->args = (struct rota_xl_val){"{}", 2};
        else if (rota_xl_args_obj(x, rota_xl_v(args), &p->args))
            return -EINVAL;
    }
    return 0; /* (built-in tools' items: none asked for) */
}

int rota_xl_responses_resp_in(struct rota_xl *x, const char *body, size_t len,
                              struct rota_xl_resp *r)
{
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, body, len, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "the answer is not JSON: %s at byte %zu", e.what, e.at);
    const struct rota_json *err = rota_json_path(j, "error.message");
    if (err && (rota_json_is(rota_json_get(j, "status"), "failed") || !rota_json_get(j, "output"))) {
        size_t n = 0;
        const char *t = rota_json_text(x->a, err, &n);
        return rota_xl_fail(x, -EINVAL, "the answer is an error: %.*s", (int)n, t ? t : "");
    }
    const struct rota_json *out = rota_json_get(j, "output");
    if (!out || out->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(x, -EINVAL, "the answer has no output");
    const struct rota_json *id = rota_json_get(j, "id"), *model = rota_json_get(j, "model");
    if (id && id->type == ROTA_JSON_STRING)
        r->id = rota_xl_v(id);
    if (model && model->type == ROTA_JSON_STRING)
        r->model = rota_xl_v(model);
    r->part = rota_xl_alloc(x, parts_in(out) * sizeof(*r->part));
    if (!r->part)
        return rota_xl_fail(x, -ENOMEM, "out of memory");
    bool refusal = false, tools = false;
    unsigned i = 0;
    for (const struct rota_json *it = out->kid; it; it = it->next, i++) {
        int rc = item_in(x, it, i, r, &refusal);
        if (rc)
            return rc;
    }
    for (uint32_t k = 0; k < r->n; k++)
        tools |= r->part[k].type == ROTA_XL_TOOL_CALL;
    r->finish = rota_xl_responses_finish_in(j, tools);
    if (refusal && r->finish == ROTA_XL_FINISH_STOP)
        r->finish = ROTA_XL_FINISH_REFUSAL;
    rota_xl_responses_usage_in(rota_json_get(j, "usage"), &r->usage);
    return 0;
}

/* An item's id, made from the response's: "msg_<response>_<n>". */
static struct rota_xl_val item_id(struct rota_xl *x, const char *prefix, const char *rid,
                                  uint32_t n)
{
    char t[160];
    int k = snprintf(t, sizeof(t), "%s_%s_%u", prefix, rid, n);
    return rota_xl_vstr(x, t, (size_t)k < sizeof(t) ? (size_t)k : sizeof(t) - 1);
}

void rota_xl_responses_id(struct rota_xl *x, struct rota_xl_val id, struct rota_xl_val seed,
                          char *out, size_t cap)
{
    size_t n = 0;
    const char *t = id.len ? rota_xl_text(x, id, &n) : NULL;
    struct rota_xl_val made = {0};
    if (!t) {
        made = rota_xl_tool_id(x, "", seed, seed, (uint32_t)x->now_s, (struct rota_xl_val){0});
        t = made.len ? made.p + 1 : "0";
        n = made.len ? made.len - 2 : 1;
    }
    bool has = n >= 5 && memcmp(t, "resp_", 5) == 0;
    snprintf(out, cap, "%s%.*s", has ? "" : "resp_", (int)n, t);
    for (char *c = out; *c; c++) /* an id made of plain characters */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-'))
            *c = '_';
}

int rota_xl_responses_resp_out(struct rota_xl *x, const struct rota_xl_resp *r,
                               struct rota_jbuf *b)
{
    char rid[96];
    rota_xl_responses_id(x, r->id, r->n ? r->part[0].text : r->model, rid, sizeof(rid));
    bool filtered = r->finish == ROTA_XL_FINISH_FILTER, cut = r->finish == ROTA_XL_FINISH_LENGTH;
    rota_jbuf_obj(b);
    rota_jbuf_kstr(b, "id", rid);
    rota_jbuf_kstr(b, "object", "response");
    rota_jbuf_ku64(b, "created_at", x->now_s);
    rota_jbuf_kstr(b, "status", filtered || cut ? "incomplete" : "completed");
    rota_jbuf_key(b, "error");
    rota_jbuf_null(b);
    rota_jbuf_key(b, "incomplete_details");
    if (filtered || cut) {
        rota_jbuf_obj(b);
        rota_jbuf_kstr(b, "reason", cut ? "max_output_tokens" : "content_filter");
        rota_jbuf_end(b);
    } else {
        rota_jbuf_null(b);
    }
    rota_jbuf_key(b, "model");
    if (r->model.len)
        rota_jbuf_json(b, r->model.p, r->model.len);
    else if (x->req && x->req->model.len)
        rota_jbuf_json(b, x->req->model.p, x->req->model.len);
    else
        rota_jbuf_strz(b, x->model ? x->model : "");
    rota_jbuf_key(b, "output");
    rota_jbuf_arr(b);
    const char *rs = rid + 5; /* the ids of the items: after "resp_" */
    for (uint32_t i = 0, n = 0; i < r->n; i++, n++) {
        const struct rota_xl_part *p = &r->part[i];
        if (p->type == ROTA_XL_THINKING || p->type == ROTA_XL_REDACTED_THINKING ||
            (p->type == ROTA_XL_TEXT && p->thought)) {
            struct rota_xl_part q = *p;
            q.type = p->type == ROTA_XL_TEXT ? ROTA_XL_THINKING : p->type;
            reasoning_out(b, &q, item_id(x, "rs", rs, n));
        } else if (p->type == ROTA_XL_TEXT) {
            rota_jbuf_obj(b);
            rota_jbuf_key(b, "id");
            struct rota_xl_val mid = item_id(x, "msg", rs, n);
            rota_jbuf_json(b, mid.p, mid.len);
            rota_jbuf_kstr(b, "type", "message");
            rota_jbuf_kstr(b, "status", cut ? "incomplete" : "completed");
            rota_jbuf_kstr(b, "role", "assistant");
            rota_jbuf_key(b, "content");
            rota_jbuf_arr(b);
            rota_jbuf_obj(b);
            rota_jbuf_kstr(b, "type", "output_text");
            rota_jbuf_key(b, "text");
            rota_jbuf_json(b, "\"", 1);
            for (; i < r->n && is_text(&r->part[i]); i++)
                rota_xl_openai_inner(b, r->part[i].text);
            i--;
            rota_jbuf_raw(b, "\"", 1);
            rota_jbuf_key(b, "annotations");
            rota_jbuf_arr(b);
            rota_jbuf_end(b);
            rota_jbuf_end(b);
            rota_jbuf_end(b);
            rota_jbuf_end(b);
        } else if (p->type == ROTA_XL_TOOL_CALL) {
            struct rota_xl_val id = p->id.len ? p->id
                                              : rota_xl_tool_id(x, "call_", p->name, p->args, i,
                                                                p->sig);
            call_out(b, p, id, item_id(x, "fc", rs, n));
        }
    }
    rota_jbuf_end(b);
    rota_jbuf_key(b, "usage");
    if (r->usage.seen)
        rota_xl_responses_usage_out(b, &r->usage);
    else
        rota_jbuf_null(b);
    rota_jbuf_end(b);
    return b->err;
}
