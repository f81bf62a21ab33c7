/*
 * xl_anthropic.c - Anthropic's messages requests (/v1/messages) read into the
 * representation (xlate.h), what the module's files share, and the module's table;
 * xl_anthropic_out.c writes requests and whole answers, xl_anthropic_stream.c the stream.
 *
 * DESIGN
 * One walk over the parsed body. "system" (a string, or text blocks) becomes r->system;
 * each message's content (a string, or blocks) becomes parts numbered as the client
 * numbered them (at_msg, at_part; ROTA_XLA_WHOLE for a string content), so a refusal
 * names "messages[3].content[1]". A tool_result's content is a string, or text blocks
 * joined into one string (their texts' bytes as written, "\n" between): the
 * representation's result is one value. Thinking blocks keep their signature, redacted
 * ones their data.
 *
 * Ignored, as they change nothing another provider could honour: cache_control on any
 * block, system part or tool (prompt caching is Anthropic's, an optimisation), metadata
 * other than user_id, service_tier. Refused, as they change the answer and nothing
 * carries them: tools with a "type" other than "custom" (Anthropic's server tools: web
 * search, code execution, computer use, ...), image sources other than base64 and url,
 * documents, images inside a tool result, mcp_servers, container, and any field this
 * module does not know.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xl_anthropic_int.h"

/* ---- what the module's files share ---- */

struct rota_json *rota_xla_parse(struct rota_xl *x, const char *body, size_t len,
                                 const char *what)
{
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, body, len, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "%s is not JSON: %s at byte %zu", what, e.what, e.at),
               NULL;
    if (j->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "%s is not a JSON object", what), NULL;
    return j;
}

enum rota_xl_finish rota_xla_finish_in(const struct rota_json *v)
{
    if (!v || v->type != ROTA_JSON_STRING)
        return ROTA_XL_FINISH_NONE;
    if (XA_IS(v, "end_turn") || XA_IS(v, "stop_sequence"))
        return ROTA_XL_FINISH_STOP;
    if (XA_IS(v, "max_tokens") || XA_IS(v, "model_context_window_exceeded"))
        return ROTA_XL_FINISH_LENGTH;
    if (XA_IS(v, "tool_use"))
        return ROTA_XL_FINISH_TOOLS;
    if (XA_IS(v, "refusal"))
        return ROTA_XL_FINISH_REFUSAL;
    return ROTA_XL_FINISH_OTHER; /* pause_turn: only with server tools, refused here */
}

const char *rota_xla_finish_name(enum rota_xl_finish f, bool tools, bool stop_seq)
{
    switch (f) {
    case ROTA_XL_FINISH_LENGTH:
        return "max_tokens";
    case ROTA_XL_FINISH_FILTER:
    case ROTA_XL_FINISH_REFUSAL:
        return "refusal";
    case ROTA_XL_FINISH_TOOLS:
        return "tool_use";
    default: /* Gemini ends a turn of calls with STOP: Anthropic's clients want tool_use */
        return tools ? "tool_use" : stop_seq ? "stop_sequence" : "end_turn";
    }
}

static bool u64_of(const struct rota_json *o, const char *k, uint64_t *v)
{
    return rota_json_uint(rota_json_get(o, k), v);
}

void rota_xla_usage_in(const struct rota_json *o, struct rota_xl_usage *u)
{
    if (!o || o->type != ROTA_JSON_OBJECT)
        return;
    uint64_t in = 0, rd = 0, wr = 0, out = 0;
    bool hi = u64_of(o, "input_tokens", &in), hr = u64_of(o, "cache_read_input_tokens", &rd),
         hw = u64_of(o, "cache_creation_input_tokens", &wr),
         ho = u64_of(o, "output_tokens", &out);
    if (hi || hr || hw) {
        u->in = in + rd + wr;
        u->cached = rd;
    }
    if (ho)
        u->out = out;
    if (hi || hr || hw || ho)
        u->seen = true;
}

void rota_xla_usage_out(struct rota_jbuf *b, const struct rota_xl_usage *u)
{
    uint64_t cached = u->cached <= u->in ? u->cached : u->in;
    XAK(b, "usage");
    rota_jbuf_obj(b);
    XAK(b, "input_tokens");
    rota_jbuf_u64(b, u->in - cached);
    XAK(b, "cache_creation_input_tokens");
    rota_jbuf_u64(b, 0);
    XAK(b, "cache_read_input_tokens");
    rota_jbuf_u64(b, cached);
    XAK(b, "output_tokens");
    rota_jbuf_u64(b, u->out);
    rota_jbuf_end(b);
}

/* ---- the reader ---- */

static int bad(struct rota_xl *x, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct rota_xl *x, int err, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (err == -ENOTSUP)
        return rota_xl_refuse(x, what);
    if (err == -ENOMEM)
        return rota_xl_fail(x, err, "out of memory reading %s", what);
    return rota_xl_fail(x, err, "%s", what);
}

static bool is_str(const struct rota_json *v)
{
    return v && v->type == ROTA_JSON_STRING;
}

static bool is_num(const struct rota_json *v)
{
    return v && v->type == ROTA_JSON_NUMBER;
}

static uint16_t at16(unsigned i)
{
    return i < ROTA_XLA_WHOLE ? (uint16_t)i : (uint16_t)(ROTA_XLA_WHOLE - 1);
}

/* A block's unknown key: refused by its path. */
static int unknown(struct rota_xl *x, const char *at, const struct rota_json *m)
{
    return bad(x, -ENOTSUP, "%s.%.*s", at, (int)m->klen - 2, m->key + 1);
}

/* An image's source: base64 {media_type, data} or url {url}. */
static int image_in(struct rota_xl *x, const char *at, const struct rota_json *src,
                    struct rota_xl_part *p)
{
    if (!src || src->type != ROTA_JSON_OBJECT)
        return bad(x, -EINVAL, "%s.source is not an object", at);
    const struct rota_json *type = NULL, *mime = NULL, *data = NULL, *url = NULL;
    for (const struct rota_json *m = src->kid; m; m = m->next) {
        if (XA_KEY(m, "type"))
            type = m;
        else if (XA_KEY(m, "media_type"))
            mime = m;
        else if (XA_KEY(m, "data"))
            data = m;
        else if (XA_KEY(m, "url"))
            url = m;
        else
            return bad(x, -ENOTSUP, "%s.source.%.*s", at, (int)m->klen - 2, m->key + 1);
    }
    p->type = ROTA_XL_IMAGE;
    if (XA_IS(type, "base64")) {
        if (!is_str(mime) || !is_str(data) || url)
            return bad(x, -EINVAL, "%s.source needs media_type and data strings", at);
        size_t ml;
        const char *mt = rota_xl_text(x, rota_xl_v(mime), &ml);
        if (!mt || ml < 7 || memcmp(mt, "image/", 6) != 0)
            return bad(x, -EINVAL, "%s.source.media_type is not an image's", at);
        p->mime = rota_xl_v(mime);
        p->data = rota_xl_v(data);
        return 0;
    }
    if (XA_IS(type, "url")) {
        if (!is_str(url) || data)
            return bad(x, -EINVAL, "%s.source needs a url string", at);
        p->url = rota_xl_v(url);
        p->mime = is_str(mime) ? rota_xl_v(mime) : (struct rota_xl_val){0};
        return 0;
    }
    if (!is_str(type))
        return bad(x, -EINVAL, "%s.source.type is not a string", at);
    return bad(x, -ENOTSUP, "%s.source of type %.*s", at,
               (int)(type->len > 42 ? 40 : type->len - 2), type->p + 1);
}

/* A tool_result's content: a string, or text blocks joined into one string. */
static int result_in(struct rota_xl *x, const char *at, const struct rota_json *c,
                     struct rota_xl_part *p)
{
    if (!c) {
        p->result = (struct rota_xl_val){"\"\"", 2};
        return 0;
    }
    if (c->type == ROTA_JSON_STRING) {
        p->result = rota_xl_v(c);
        return 0;
    }
    if (c->type != ROTA_JSON_ARRAY)
        return bad(x, -EINVAL, "%s.content is neither a string nor an array", at);
    size_t total = 2, n = 0;
    const struct rota_json *one = NULL;
    unsigned k = 0;
    for (const struct rota_json *b = c->kid; b; b = b->next, k++) {
        if (b->type != ROTA_JSON_OBJECT)
            return bad(x, -EINVAL, "%s.content[%u] is not an object", at, k);
        const struct rota_json *type = NULL, *text = NULL, *other = NULL;
        for (const struct rota_json *m = b->kid; m; m = m->next) {
            if (XA_KEY(m, "type"))
                type = m;
            else if (XA_KEY(m, "text"))
                text = m;
            else if (!XA_KEY(m, "cache_control") && !XA_KEY(m, "citations"))
                other = m;
        }
        if (XA_IS(type, "text") && other)
            return bad(x, -ENOTSUP, "%s.content[%u].%.*s", at, k, (int)other->klen - 2,
                       other->key + 1);
        if (!XA_IS(type, "text")) {
            if (!is_str(type))
                return bad(x, -EINVAL, "%s.content[%u].type is not a string", at, k);
            return bad(x, -ENOTSUP, "%s.content[%u] of type %.*s", at, k,
                       (int)(type->len > 42 ? 40 : type->len - 2), type->p + 1);
        }
        if (!is_str(text))
            return bad(x, -EINVAL, "%s.content[%u].text is not a string", at, k);
        total += text->len - 2 + 2;
        one = text;
        n++;
    }
    if (n <= 1) {
        p->result = one ? rota_xl_v(one) : (struct rota_xl_val){"\"\"", 2};
        return 0;
    }
    char *s = rota_arena_alloc(x->a, total);
    if (!s)
        return bad(x, -ENOMEM, "%s", at);
    size_t k2 = 0;
    s[k2++] = '"';
    for (const struct rota_json *b = c->kid; b; b = b->next) {
        const struct rota_json *text = rota_json_get(b, "text");
        if (b != c->kid)
            s[k2++] = '\\', s[k2++] = 'n';
        memcpy(s + k2, text->p + 1, text->len - 2);
        k2 += text->len - 2;
    }
    s[k2++] = '"';
    p->result = (struct rota_xl_val){s, k2};
    return 0;
}

/* One content block of message "mi" (or of the system when "sys"). */
static int block_in(struct rota_xl *x, const struct rota_json *b, unsigned mi, unsigned bi,
                    bool sys, struct rota_xl_part *p)
{
    char at[64];
    if (sys)
        snprintf(at, sizeof(at), "system[%u]", bi);
    else
        snprintf(at, sizeof(at), "messages[%u].content[%u]", mi, bi);
    if (b->type != ROTA_JSON_OBJECT)
        return bad(x, -EINVAL, "%s is not an object", at);
    p->at_msg = sys ? (uint16_t)ROTA_XLA_SYSTEM : at16(mi);
    p->at_part = at16(bi);
    const struct rota_json *type = NULL;
    const struct rota_json *text = NULL, *sig = NULL, *data = NULL, *src = NULL, *id = NULL,
                           *name = NULL, *input = NULL, *content = NULL, *err = NULL,
                           *other = NULL;
    for (const struct rota_json *m = b->kid; m; m = m->next) {
        if (XA_KEY(m, "type"))
            type = m;
        else if (XA_KEY(m, "text") || XA_KEY(m, "thinking"))
            text = m;
        else if (XA_KEY(m, "signature"))
            sig = m;
        else if (XA_KEY(m, "data"))
            data = m;
        else if (XA_KEY(m, "source"))
            src = m;
        else if (XA_KEY(m, "id") || XA_KEY(m, "tool_use_id"))
            id = m;
        else if (XA_KEY(m, "name"))
            name = m;
        else if (XA_KEY(m, "input"))
            input = m;
        else if (XA_KEY(m, "content"))
            content = m;
        else if (XA_KEY(m, "is_error"))
            err = m;
        else if (!XA_KEY(m, "cache_control") && !XA_KEY(m, "citations"))
            other = m;
    }
    bool known = XA_IS(type, "text") || XA_IS(type, "image") || XA_IS(type, "tool_use") ||
                 XA_IS(type, "tool_result") || XA_IS(type, "thinking") ||
                 XA_IS(type, "redacted_thinking");
    if (other && known) /* else the type is what is refused */
        return unknown(x, at, other);
    /* a member of another type's block is refused by the check of that type's set */
#define ONLY(ok) ((ok) ? 0 : bad(x, -EINVAL, "%s has a member its type does not take", at))
    if (XA_IS(type, "text")) {
        if (!is_str(text) || !XA_KEY(text, "text"))
            return bad(x, -EINVAL, "%s.text is not a string", at);
        p->type = ROTA_XL_TEXT;
        p->text = rota_xl_v(text);
        return ONLY(!sig && !data && !src && !id && !name && !input && !content && !err);
    }
    if (sys)
        return bad(x, -EINVAL, "%s is not a text block", at);
    if (XA_IS(type, "image")) {
        int rc = ONLY(!text && !sig && !data && !id && !name && !input && !content && !err);
        return rc ? rc : image_in(x, at, src, p);
    }
    if (XA_IS(type, "tool_use")) {
        if (!is_str(id) || !XA_KEY(id, "id") || !is_str(name) || !input ||
            input->type != ROTA_JSON_OBJECT)
            return bad(x, -EINVAL, "%s needs id and name strings and an input object", at);
        p->type = ROTA_XL_TOOL_CALL;
        p->id = rota_xl_v(id);
        p->name = rota_xl_v(name);
        p->args = rota_xl_v(input);
        return ONLY(!text && !sig && !data && !src && !content && !err);
    }
    if (XA_IS(type, "tool_result")) {
        if (!is_str(id) || !XA_KEY(id, "tool_use_id"))
            return bad(x, -EINVAL, "%s.tool_use_id is not a string", at);
        if (err && err->type != ROTA_JSON_TRUE && err->type != ROTA_JSON_FALSE)
            return bad(x, -EINVAL, "%s.is_error is not a boolean", at);
        int rc = ONLY(!text && !sig && !data && !src && !name && !input);
        if (rc)
            return rc;
        p->type = ROTA_XL_TOOL_RESULT;
        p->id = rota_xl_v(id);
        p->is_error = rota_json_true(err);
        return result_in(x, at, content, p);
    }
    if (XA_IS(type, "thinking")) {
        if (!is_str(text) || !XA_KEY(text, "thinking") || (sig && !is_str(sig)))
            return bad(x, -EINVAL, "%s needs thinking and signature strings", at);
        p->type = ROTA_XL_THINKING;
        p->text = rota_xl_v(text);
        p->sig = rota_xl_v(sig);
        return ONLY(!data && !src && !id && !name && !input && !content && !err);
    }
    if (XA_IS(type, "redacted_thinking")) {
        if (!is_str(data))
            return bad(x, -EINVAL, "%s.data is not a string", at);
        p->type = ROTA_XL_REDACTED_THINKING;
        p->text = rota_xl_v(data);
        return ONLY(!text && !sig && !src && !id && !name && !input && !content && !err);
    }
#undef ONLY
    if (!is_str(type))
        return bad(x, -EINVAL, "%s.type is not a string", at);
    return bad(x, -ENOTSUP, "%s of type %.*s", at, (int)(type->len > 42 ? 40 : type->len - 2),
               type->p + 1);
}

/* A content (string or blocks) into "*parts". */
static int content_in(struct rota_xl *x, const struct rota_json *c, unsigned mi, bool sys,
                      struct rota_xl_part **parts, uint32_t *n)
{
    if (c && c->type == ROTA_JSON_STRING) {
        struct rota_xl_part *p = rota_xl_alloc(x, sizeof(*p));
        if (!p)
            return bad(x, -ENOMEM, "messages[%u]", mi);
        p->type = ROTA_XL_TEXT;
        p->text = rota_xl_v(c);
        p->at_msg = sys ? (uint16_t)ROTA_XLA_SYSTEM : at16(mi);
        p->at_part = ROTA_XLA_WHOLE;
        *parts = p;
        *n = 1;
        return 0;
    }
    if (!c || c->type != ROTA_JSON_ARRAY) {
        if (sys)
            return bad(x, -EINVAL, "system is neither a string nor an array");
        return bad(x, -EINVAL, "messages[%u].content is neither a string nor an array", mi);
    }
    struct rota_xl_part *p = c->n ? rota_xl_alloc(x, c->n * sizeof(*p)) : NULL;
    if (c->n && !p)
        return bad(x, -ENOMEM, "messages[%u]", mi);
    unsigned bi = 0;
    for (const struct rota_json *b = c->kid; b; b = b->next, bi++) {
        int rc = block_in(x, b, mi, bi, sys, &p[bi]);
        if (rc)
            return rc;
    }
    *parts = p;
    *n = c->n;
    return 0;
}

static int messages_in(struct rota_xl *x, const struct rota_json *v, struct rota_xl_req *r)
{
    if (v->type != ROTA_JSON_ARRAY)
        return bad(x, -EINVAL, "messages is not an array");
    r->msg = v->n ? rota_xl_alloc(x, v->n * sizeof(*r->msg)) : NULL;
    if (v->n && !r->msg)
        return bad(x, -ENOMEM, "messages");
    unsigned mi = 0;
    for (const struct rota_json *o = v->kid; o; o = o->next, mi++) {
        if (o->type != ROTA_JSON_OBJECT)
            return bad(x, -EINVAL, "messages[%u] is not an object", mi);
        const struct rota_json *role = NULL, *content = NULL;
        for (const struct rota_json *m = o->kid; m; m = m->next) {
            if (XA_KEY(m, "role"))
                role = m;
            else if (XA_KEY(m, "content"))
                content = m;
            else
                return bad(x, -ENOTSUP, "messages[%u].%.*s", mi, (int)m->klen - 2, m->key + 1);
        }
        struct rota_xl_msg *msg = &r->msg[mi];
        if (XA_IS(role, "user"))
            msg->role = ROTA_XL_USER;
        else if (XA_IS(role, "assistant"))
            msg->role = ROTA_XL_ASSISTANT;
        else
            return bad(x, -EINVAL, "messages[%u].role is neither \"user\" nor \"assistant\"", mi);
        int rc = content_in(x, content, mi, false, &msg->part, &msg->n);
        if (rc)
            return rc;
    }
    r->nmsg = v->n;
    return 0;
}

static int tools_in(struct rota_xl *x, const struct rota_json *v, struct rota_xl_req *r)
{
    if (v->type != ROTA_JSON_ARRAY)
        return bad(x, -EINVAL, "tools is not an array");
    r->tool = v->n ? rota_xl_alloc(x, v->n * sizeof(*r->tool)) : NULL;
    if (v->n && !r->tool)
        return bad(x, -ENOMEM, "tools");
    unsigned i = 0;
    for (const struct rota_json *o = v->kid; o; o = o->next, i++) {
        if (o->type != ROTA_JSON_OBJECT)
            return bad(x, -EINVAL, "tools[%u] is not an object", i);
        struct rota_xl_tool *t = &r->tool[i];
        for (const struct rota_json *m = o->kid; m; m = m->next) {
            if (XA_KEY(m, "name") && is_str(m))
                t->name = rota_xl_v(m);
            else if (XA_KEY(m, "description") && is_str(m))
                t->desc = rota_xl_v(m);
            else if (XA_KEY(m, "input_schema") && m->type == ROTA_JSON_OBJECT)
                t->params = rota_xl_v(m);
            else if (XA_KEY(m, "type") && is_str(m)) {
                if (!XA_IS(m, "custom"))
                    return bad(x, -ENOTSUP, "tools[%u] of type %.*s", i,
                               (int)(m->len > 42 ? 40 : m->len - 2), m->p + 1);
            } else if (XA_KEY(m, "name") || XA_KEY(m, "description") ||
                       XA_KEY(m, "input_schema") || XA_KEY(m, "type"))
                return bad(x, -EINVAL, "tools[%u].%.*s is malformed", i, (int)m->klen - 2,
                           m->key + 1);
            else if (!XA_KEY(m, "cache_control"))
                return bad(x, -ENOTSUP, "tools[%u].%.*s", i, (int)m->klen - 2, m->key + 1);
        }
        if (!t->name.len)
            return bad(x, -EINVAL, "tools[%u].name is missing", i);
    }
    r->ntool = v->n;
    return 0;
}

static int choice_in(struct rota_xl *x, const struct rota_json *v, struct rota_xl_req *r)
{
    if (v->type != ROTA_JSON_OBJECT)
        return bad(x, -EINVAL, "tool_choice is not an object");
    const struct rota_json *type = NULL, *name = NULL;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        if (XA_KEY(m, "type"))
            type = m;
        else if (XA_KEY(m, "name"))
            name = m;
        else if (XA_KEY(m, "disable_parallel_tool_use")) {
            if (m->type != ROTA_JSON_TRUE && m->type != ROTA_JSON_FALSE)
                return bad(x, -EINVAL, "tool_choice.disable_parallel_tool_use is not a boolean");
            r->parallel_tools = m->type == ROTA_JSON_TRUE ? 0 : 1;
        } else
            return bad(x, -ENOTSUP, "tool_choice.%.*s", (int)m->klen - 2, m->key + 1);
    }
    if (XA_IS(type, "auto"))
        r->choice = ROTA_XL_AUTO;
    else if (XA_IS(type, "any"))
        r->choice = ROTA_XL_ANY;
    else if (XA_IS(type, "none"))
        r->choice = ROTA_XL_NONE;
    else if (XA_IS(type, "tool")) {
        if (!is_str(name))
            return bad(x, -EINVAL, "tool_choice.name is not a string");
        r->choice = ROTA_XL_NAMED;
        r->choice_name = rota_xl_v(name);
    } else
        return bad(x, -EINVAL, "tool_choice.type is not auto, any, tool or none");
    return 0;
}

static int thinking_in(struct rota_xl *x, const struct rota_json *v, struct rota_xl_req *r)
{
    if (v->type != ROTA_JSON_OBJECT)
        return bad(x, -EINVAL, "thinking is not an object");
    const struct rota_json *type = rota_json_get(v, "type"),
                           *budget = rota_json_get(v, "budget_tokens");
    for (const struct rota_json *m = v->kid; m; m = m->next)
        if (!XA_KEY(m, "type") && !XA_KEY(m, "budget_tokens"))
            return bad(x, -ENOTSUP, "thinking.%.*s", (int)m->klen - 2, m->key + 1);
    if (XA_IS(type, "disabled")) {
        r->thinking = 0;
        return 0;
    }
    if (!XA_IS(type, "enabled"))
        return bad(x, -EINVAL, "thinking.type is neither \"enabled\" nor \"disabled\"");
    if (budget && !rota_json_uint(budget, &r->thinking_budget))
        return bad(x, -EINVAL, "thinking.budget_tokens is not a count");
    r->thinking = 1;
    r->include_thoughts = true;
    return 0;
}

static int metadata_in(struct rota_xl *x, const struct rota_json *v, struct rota_xl_req *r)
{
    if (v->type == ROTA_JSON_NULL)
        return 0;
    if (v->type != ROTA_JSON_OBJECT)
        return bad(x, -EINVAL, "metadata is not an object");
    const struct rota_json *u = rota_json_get(v, "user_id");
    if (u && u->type == ROTA_JSON_STRING)
        r->user = rota_xl_v(u);
    else if (u && u->type != ROTA_JSON_NULL)
        return bad(x, -EINVAL, "metadata.user_id is not a string");
    return 0;
}

enum { K_MODEL, K_MESSAGES, K_SYSTEM, K_MAX, K_TEMP, K_TOPP, K_TOPK, K_STOP, K_STREAM,
       K_META, K_TOOLS, K_CHOICE, K_THINKING, K_TIER, K_N };
static const struct {
    const char *k;
    size_t n;
} req_keys[K_N] = {
#define RK(s) {s, sizeof(s) - 1}
    RK("model"), RK("messages"), RK("system"), RK("max_tokens"), RK("temperature"),
    RK("top_p"), RK("top_k"), RK("stop_sequences"), RK("stream"), RK("metadata"),
    RK("tools"), RK("tool_choice"), RK("thinking"), RK("service_tier"),
#undef RK
};

static int req_in(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r)
{
    const struct rota_json *o = rota_xla_parse(x, body, len, "the request");
    if (!o)
        return -EINVAL;
    const struct rota_json *msgs = NULL;
    for (const struct rota_json *m = o->kid; m; m = m->next) {
        int k = 0;
        while (k < K_N && !rota_xla_key(m, req_keys[k].k, req_keys[k].n))
            k++;
        int rc = 0;
        switch (k) {
        case K_MODEL:
            if (!is_str(m))
                return bad(x, -EINVAL, "model is not a string");
            r->model = rota_xl_v(m);
            break;
        case K_MESSAGES:
            msgs = m;
            rc = messages_in(x, m, r);
            break;
        case K_SYSTEM:
            rc = content_in(x, m, 0, true, &r->system, &r->nsystem);
            break;
        case K_MAX:
        case K_TEMP:
        case K_TOPP:
        case K_TOPK:
            if (!is_num(m))
                return bad(x, -EINVAL, "%s is not a number", req_keys[k].k);
            *(k == K_MAX    ? &r->max_tokens
              : k == K_TEMP ? &r->temperature
              : k == K_TOPP ? &r->top_p
                            : &r->top_k) = rota_xl_v(m);
            break;
        case K_STOP:
            if (m->type != ROTA_JSON_ARRAY)
                return bad(x, -EINVAL, "stop_sequences is not an array");
            for (const struct rota_json *s = m->kid; s; s = s->next)
                if (!is_str(s))
                    return bad(x, -EINVAL, "stop_sequences holds a non-string");
            if (m->n)
                r->stop = rota_xl_v(m);
            break;
        case K_STREAM:
            if (m->type != ROTA_JSON_TRUE && m->type != ROTA_JSON_FALSE)
                return bad(x, -EINVAL, "stream is not a boolean");
            r->stream = r->include_usage = m->type == ROTA_JSON_TRUE;
            break;
        case K_META:
            rc = metadata_in(x, m, r);
            break;
        case K_TOOLS:
            rc = tools_in(x, m, r);
            break;
        case K_CHOICE:
            rc = choice_in(x, m, r);
            break;
        case K_THINKING:
            rc = thinking_in(x, m, r);
            break;
        case K_TIER: /* ignored: which capacity Anthropic serves it from */
            break;
        default:
            return bad(x, -ENOTSUP, "%.*s", (int)m->klen - 2, m->key + 1);
        }
        if (rc)
            return rc;
    }
    if (!msgs)
        return bad(x, -EINVAL, "messages is missing");
    return 0;
}

static void where(char *buf, size_t n, unsigned msg, unsigned part)
{
    if (msg == ROTA_XLA_SYSTEM)
        part == ROTA_XLA_WHOLE ? snprintf(buf, n, "system") : snprintf(buf, n, "system[%u]", part);
    else if (part == ROTA_XLA_WHOLE)
        snprintf(buf, n, "messages[%u].content", msg);
    else
        snprintf(buf, n, "messages[%u].content[%u]", msg, part);
}

const struct rota_xl_format rota_xl_anthropic = {
    .name = "anthropic",
    .req_in = req_in,
    .req_out = rota_xla_req_out,
    .resp_in = rota_xla_resp_in,
    .resp_out = rota_xla_resp_out,
    .ev_in = rota_xla_ev_in,
    .ev_out = rota_xla_ev_out,
    .ev_fail = rota_xla_ev_fail,
    .where = where,
};
