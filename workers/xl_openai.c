/*
 * xl_openai.c - OpenAI's chat completions (/v1/chat/completions) as a translation
 * module: a request read into the representation (xlate.h says what and why). The
 * request written is in xl_openai_write.c, answers in xl_openai_answer.c, streams in
 * xl_openai_stream.c.
 *
 * DESIGN
 * A request is parsed once and walked once: each member of the body and of each
 * message is taken by its name, text crosses as the string token it was written as.
 * Every field is one of: read into the representation; ignored because it changes
 * nothing in the answer (store, metadata, service_tier, prediction, safety_identifier,
 * prompt_cache_key, prompt_cache_retention, a message's "name", a part's
 * cache_control, an image's detail, a tool's and a schema's "strict", a schema's
 * description, stream_options.include_obfuscation); or refused (n above 1, logprobs,
 * top_logprobs, logit_bias, penalties other than 0, audio and file parts, modalities
 * other than text, legacy functions, custom tools, and any name not known here), so
 * nothing that changes the answer is dropped. null is taken as absent everywhere.
 *
 * system and developer messages, wherever they stand, go to r->system in order. Tool
 * messages in a row become one user message of TOOL_RESULT parts (a result in text
 * parts is their texts joined). An assistant's reasoning arrives as reasoning_content
 * (DeepSeek, llama.cpp), reasoning (OpenRouter) or OpenRouter's reasoning_details,
 * whose entries keep Anthropic's signatures and redacted thinking: when
 * reasoning_details is there it is the one read. A refusal in the history is the text
 * the model said. A data: URL image with base64 becomes mime and data, so a target that
 * takes only base64 gets it. OpenRouter's "reasoning" object and top_k (OpenRouter,
 * llama.cpp) are read too.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_openai.h"

struct rd {
    struct rota_xl *x;
    struct rota_xl_req *r;
    int tool_msg; /* the user message the tool messages in a row go to, -1 none */
    bool answer;  /* reading an answer: names not known are passed over */
};

static void where(char *buf, size_t n, unsigned msg, unsigned part);

/* Where part "j" of message "i" was, in "buf" (96 bytes): said only when something is
 * wrong, so a request that is fine costs no formatting. */
static const char *path(char *buf, unsigned i, unsigned j)
{
    where(buf, 96, i, j);
    return buf;
}

static bool is_key(const struct rota_json *m, const char *k)
{
    return rota_json_key_is(m, k);
}


static int bad(struct rota_xl *x, const char *at, const char *what)
{
    return rota_xl_fail(x, -EINVAL, "%s: %s", at, what);
}

static uint16_t at16(unsigned i)
{
    return i < XL_AT_DETAILS ? (uint16_t)i : (uint16_t)(XL_AT_DETAILS - 1);
}

void rota_xl_openai_inner(struct rota_jbuf *b, struct rota_xl_val v)
{
    if (v.len >= 2)
        rota_jbuf_raw(b, v.p + 1, v.len - 2);
}

/* String tokens joined into one (their inner bytes, "sep" between): the escapes of each
 * stay as written, so nothing is decoded. */
static struct rota_xl_val join(struct rota_xl *x, const struct rota_xl_val *v, uint32_t n,
                               const char *sep)
{
    if (n == 1)
        return v[0];
    size_t sl = strlen(sep), total = 2;
    for (uint32_t i = 0; i < n; i++)
        total += v[i].len - 2 + (i ? sl : 0);
    char *p = rota_arena_alloc(x->a, total);
    if (!p)
        return (struct rota_xl_val){0};
    size_t k = 0;
    p[k++] = '"';
    for (uint32_t i = 0; i < n; i++) {
        if (i) {
            memcpy(p + k, sep, sl);
            k += sl;
        }
        memcpy(p + k, v[i].p + 1, v[i].len - 2);
        k += v[i].len - 2;
    }
    p[k++] = '"';
    return (struct rota_xl_val){p, k};
}

/* ---- parts ---- */

static struct rota_xl_part *add(struct rota_xl_msg *m, enum rota_xl_part_type t, unsigned i,
                                unsigned j)
{
    struct rota_xl_part *p = &m->part[m->n++];
    p->type = t;
    p->at_msg = (uint16_t)(i < 0xffff ? i : 0xffff);
    p->at_part = (uint16_t)j;
    return p;
}

int rota_xl_openai_image_url(struct rota_xl *x, const struct rota_json *u,
                             struct rota_xl_part *p)
{
    const char *s = u->p + 1, *e = u->p + u->len - 1;
    bool data = (size_t)(e - s) >= 5 && memcmp(s, "data:", 5) == 0;
    const char *comma = data ? memchr(s, ',', (size_t)(e - s)) : NULL;
    if (!comma || memchr(s, '\\', (size_t)(comma - s)) || comma - s < 12 ||
        memcmp(comma - 7, ";base64", 7) != 0) {
        p->url = rota_xl_v(u); /* http(s), or a data: URL a target may take whole */
        return 0;
    }
    size_t ml = (size_t)(comma - 7 - s - 5);
    if (ml < 7 || memcmp(s + 5, "image/", 6) != 0)
        return -EINVAL;
    p->mime = rota_xl_vstr(x, s + 5, ml);
    char *d = rota_arena_alloc(x->a, (size_t)(e - comma) + 1);
    if (!p->mime.len || !d)
        return -ENOMEM;
    d[0] = '"';
    memcpy(d + 1, comma + 1, (size_t)(e - comma)); /* the base64 and the closing quote */
    p->data = (struct rota_xl_val){d, (size_t)(e - comma) + 1};
    return 0;
}

static int image(struct rota_xl *x, const struct rota_json *u, struct rota_xl_part *p,
                 unsigned i, unsigned j)
{
    char at[96];
    if (!u || u->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, at16(j)), "image_url.url is not a string");
    int rc = rota_xl_openai_image_url(x, u, p);
    if (rc == -EINVAL)
        return bad(x, path(at, i, at16(j)), "image_url.url is a data: URL of no image type");
    return rc ? rota_xl_fail(x, rc, "%s: out of memory", path(at, i, at16(j))) : 0;
}

/* Element "j" of message "i"'s content array; "assistant": an assistant's (text and
 * refusal parts only, empty texts left out). */
static int content_part(struct rd *d, struct rota_xl_msg *msg, const struct rota_json *c,
                        unsigned i, unsigned j, bool assistant)
{
    struct rota_xl *x = d->x;
    char at[96];
    if (c->type != ROTA_JSON_OBJECT)
        return bad(x, path(at, i, at16(j)), "not an object");
    const struct rota_json *type = rota_json_get(c, "type");
    if (rota_json_is(type, "text") || (assistant && rota_json_is(type, "refusal"))) {
        const char *field = rota_json_is(type, "text") ? "text" : "refusal";
        const struct rota_json *t = NULL;
        for (const struct rota_json *m = c->kid; m; m = m->next)
            if (is_key(m, field))
                t = m;
            else if (!is_key(m, "type") && !is_key(m, "cache_control"))
                return rota_xl_refuse_key(x, path(at, i, at16(j)), m);
        if (!t || t->type != ROTA_JSON_STRING)
            return rota_xl_fail(x, -EINVAL, "%s: %s is not a string", path(at, i, at16(j)),
                                field);
        if (assistant && t->len == 2)
            return 0; /* an empty text block is refused by several targets */
        add(msg, ROTA_XL_TEXT, i, at16(j))->text = rota_xl_v(t);
        return 0;
    }
    if (rota_json_is(type, "image_url") && !assistant) {
        const struct rota_json *u = NULL;
        for (const struct rota_json *m = c->kid; m; m = m->next)
            if (is_key(m, "image_url"))
                u = m;
            else if (!is_key(m, "type") && !is_key(m, "cache_control"))
                return rota_xl_refuse_key(x, path(at, i, at16(j)), m);
        if (u && u->type == ROTA_JSON_OBJECT) {
            for (const struct rota_json *m = u->kid; m; m = m->next)
                if (!is_key(m, "url") && !is_key(m, "detail")) {
                    char sub[120];
                    snprintf(sub, sizeof(sub), "%s.image_url", path(at, i, at16(j)));
                    return rota_xl_refuse_key(x, sub, m);
                }
            u = rota_json_get(u, "url");
        }
        return image(x, u, add(msg, ROTA_XL_IMAGE, i, at16(j)), i, j);
    }
    if (!type || type->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, at16(j)), "a part without a type");
    size_t n;
    const char *t = rota_xl_text(x, rota_xl_v(type), &n);
    char what[64];
    snprintf(what, sizeof(what), "a part of type \"%.*s\"", (int)(t ? n : 0), t ? t : "");
    struct rota_xl_part p = {.at_msg = (uint16_t)i, .at_part = at16(j)};
    return rota_xl_refuse_part(x, &p, what);
}

/* A message's content: a string or an array of parts, into "msg". */
static int content(struct rd *d, struct rota_xl_msg *msg, const struct rota_json *c,
                   unsigned i, bool assistant)
{
    if (!c || c->type == ROTA_JSON_NULL)
        return 0;
    if (c->type == ROTA_JSON_STRING) {
        if (!(assistant && c->len == 2))
            add(msg, ROTA_XL_TEXT, i, XL_AT_CONTENT)->text = rota_xl_v(c);
        return 0;
    }
    char at[96];
    if (c->type != ROTA_JSON_ARRAY)
        return bad(d->x, path(at, i, XL_AT_CONTENT), "neither a string nor an array of parts");
    unsigned j = 0;
    for (const struct rota_json *e = c->kid; e; e = e->next, j++) {
        int rc = content_part(d, msg, e, i, j, assistant);
        if (rc)
            return rc;
    }
    return 0;
}

static unsigned parts_of(const struct rota_json *c)
{
    return c && c->type == ROTA_JSON_ARRAY ? c->n : 1;
}

/* system and developer: TEXT parts of r->system. */
static int system_msg(struct rd *d, const struct rota_json *c, unsigned i)
{
    struct rota_xl_msg tmp = {.part = d->r->system + d->r->nsystem};
    char at[96];
    if (!c || (c->type != ROTA_JSON_STRING && c->type != ROTA_JSON_ARRAY))
        return bad(d->x, path(at, i, XL_AT_CONTENT), "neither a string nor an array of parts");
    if (c->type == ROTA_JSON_ARRAY)
        for (const struct rota_json *e = c->kid; e; e = e->next)
            if (!rota_json_is(rota_json_get(e, "type"), "text"))
                return rota_xl_refuse(d->x, path(at, i, XL_AT_CONTENT)); /* text instructs */
    int rc = content(d, &tmp, c, i, false);
    d->r->nsystem += tmp.n;
    return rc;
}

/* An assistant's reasoning_details entry. */
static int detail(struct rd *d, struct rota_xl_msg *msg, const struct rota_json *e,
                  unsigned i, unsigned k)
{
    struct rota_xl *x = d->x;
    char at[96];
    unsigned pos = XL_AT_DETAILS | (k & XL_AT_INDEX);
    const struct rota_json *type = rota_json_get(e, "type");
    if (rota_json_is(type, "reasoning.text") || rota_json_is(type, "reasoning.summary")) {
        const struct rota_json *t = rota_json_get(e, rota_json_is(type, "reasoning.text")
                                                         ? "text" : "summary");
        const struct rota_json *s = rota_json_get(e, "signature");
        if (t && t->type != ROTA_JSON_STRING && t->type != ROTA_JSON_NULL)
            return bad(x, path(at, i, pos), "its text is not a string");
        if (s && s->type != ROTA_JSON_STRING && s->type != ROTA_JSON_NULL)
            return bad(x, path(at, i, pos), "its signature is not a string");
        struct rota_xl_part *p =
            add(msg, ROTA_XL_THINKING, i, pos);
        p->text = t && t->type == ROTA_JSON_STRING ? rota_xl_v(t) : (struct rota_xl_val){"\"\"", 2};
        if (s && s->type == ROTA_JSON_STRING && s->len > 2)
            p->sig = rota_xl_v(s);
        return 0;
    }
    if (rota_json_is(type, "reasoning.encrypted")) {
        const struct rota_json *data = rota_json_get(e, "data");
        if (!data || data->type != ROTA_JSON_STRING)
            return bad(x, path(at, i, pos), "its data is not a string");
        add(msg, ROTA_XL_REDACTED_THINKING, i, pos)->text =
            rota_xl_v(data);
        return 0;
    }
    return rota_xl_refuse(x, path(at, i, pos));
}

/* One of an assistant's tool_calls. */
static int tool_call(struct rd *d, struct rota_xl_msg *msg, const struct rota_json *c,
                     unsigned i, unsigned k)
{
    struct rota_xl *x = d->x;
    char at[96];
    unsigned pos = XL_AT_TOOLS | (k & XL_AT_INDEX);
    if (c->type != ROTA_JSON_OBJECT)
        return bad(x, path(at, i, pos), "not an object");
    const struct rota_json *id = NULL, *fn = NULL, *type = rota_json_get(c, "type");
    if (type && !rota_json_is(type, "function"))
        return rota_xl_refuse(x, path(at, i, pos)); /* a custom tool's call */
    for (const struct rota_json *m = c->kid; m; m = m->next)
        if (is_key(m, "id"))
            id = m;
        else if (is_key(m, "function"))
            fn = m;
        else if (!is_key(m, "type") && !is_key(m, "index") && !d->answer)
            return rota_xl_refuse_key(x, path(at, i, pos), m);
    const struct rota_json *name = rota_json_get(fn, "name"), *args = rota_json_get(fn, "arguments");
    if (!id || id->type != ROTA_JSON_STRING || !name || name->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, pos), "a tool call needs an id and a function name");
    struct rota_xl_part *p = add(msg, ROTA_XL_TOOL_CALL, i, pos);
    p->id = rota_xl_v(id);
    p->name = rota_xl_v(name);
    if (!args || args->type == ROTA_JSON_NULL) {
        p->args = (struct rota_xl_val){"{}", 2};
        return 0;
    }
    if (args->type == ROTA_JSON_OBJECT) { /* as some local servers write it */
        p->args = rota_xl_v(args);
        return 0;
    }
    if (rota_xl_args_obj(x, rota_xl_v(args), &p->args) == 0)
        return 0;
    char why[sizeof(x->err)];
    snprintf(why, sizeof(why), "%s", x->err);
    return rota_xl_fail(x, -EINVAL, "%s.function.arguments: %s", path(at, i, pos), why);
}

int rota_xl_openai_assistant_in(struct rota_xl *x, const struct rota_xl_openai_amsg *a,
                                unsigned i, bool answer, struct rota_xl_msg *msg)
{
    struct rd d = {.x = x, .tool_msg = -1, .answer = answer};
    unsigned cap = (a->details ? parts_of(a->details) : 1) + parts_of(a->content) + 1 +
                   (a->tool_calls ? parts_of(a->tool_calls) : 0);
    msg->role = ROTA_XL_ASSISTANT;
    msg->n = 0;
    msg->part = rota_xl_alloc(x, cap * sizeof(*msg->part));
    if (!msg->part)
        return rota_xl_fail(x, -ENOMEM, "messages[%u]: out of memory", i);
    char at[96];
    int rc = 0;
    if (a->details) {
        if (a->details->type != ROTA_JSON_ARRAY)
            return bad(x, path(at, i, XL_AT_MSG), "reasoning_details is not an array");
        unsigned k = 0;
        for (const struct rota_json *e = a->details->kid; e && !rc; e = e->next, k++)
            rc = detail(&d, msg, e, i, k);
    } else if (a->reasoning && a->reasoning->len > 2) {
        add(msg, ROTA_XL_THINKING, i, XL_AT_REASONING)->text = rota_xl_v(a->reasoning);
    }
    if (!rc)
        rc = content(&d, msg, a->content, i, true);
    if (!rc && a->refusal && a->refusal->len > 2) /* what the model said, as text */
        add(msg, ROTA_XL_TEXT, i, XL_AT_MSG)->text = rota_xl_v(a->refusal);
    if (!rc && a->tool_calls) {
        if (a->tool_calls->type != ROTA_JSON_ARRAY)
            return bad(x, path(at, i, XL_AT_MSG), "tool_calls is not an array");
        unsigned k = 0;
        for (const struct rota_json *c = a->tool_calls->kid; c && !rc; c = c->next, k++)
            rc = tool_call(&d, msg, c, i, k);
    }
    return rc;
}

/* A tool message: a TOOL_RESULT in the user message of the tool messages in a row. */
static int tool_msg(struct rd *d, const struct rota_json *self,
                    const struct rota_json *id, const struct rota_json *c, unsigned i)
{
    struct rota_xl *x = d->x;
    struct rota_xl_req *r = d->r;
    char at[96];
    if (!id || id->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, XL_AT_MSG), "a tool message needs a tool_call_id");
    if (d->tool_msg < 0) { /* the first of a row: room for the whole row */
        unsigned n = 0;
        for (const struct rota_json *m = self; m && rota_json_is(rota_json_get(m, "role"), "tool");
             m = m->next)
            n++;
        struct rota_xl_msg *u = &r->msg[r->nmsg];
        u->role = ROTA_XL_USER;
        u->part = rota_xl_alloc(x, n * sizeof(*u->part));
        if (!u->part)
            return rota_xl_fail(x, -ENOMEM, "messages[%u]: out of memory", i);
        d->tool_msg = (int)r->nmsg++;
    }
    struct rota_xl_msg *u = &r->msg[d->tool_msg];
    struct rota_xl_part *p = add(u, ROTA_XL_TOOL_RESULT, i, XL_AT_MSG);
    p->id = rota_xl_v(id);
    if (c && c->type == ROTA_JSON_STRING) {
        p->result = rota_xl_v(c);
        return 0;
    }
    if (!c || c->type != ROTA_JSON_ARRAY)
        return bad(x, path(at, i, XL_AT_CONTENT), "neither a string nor an array of text parts");
    struct rota_xl_val *texts = rota_xl_alloc(x, (c->n ? c->n : 1) * sizeof(*texts));
    struct rota_xl_part *tp = rota_xl_alloc(x, (c->n ? c->n : 1) * sizeof(*tp));
    if (!texts || !tp)
        return rota_xl_fail(x, -ENOMEM, "messages[%u]: out of memory", i);
    struct rota_xl_msg tmp = {.part = tp};
    unsigned j = 0;
    for (const struct rota_json *e = c->kid; e; e = e->next, j++) {
        if (!rota_json_is(rota_json_get(e, "type"), "text")) {
            struct rota_xl_part q = {.at_msg = p->at_msg, .at_part = at16(j)};
            return rota_xl_refuse_part(x, &q, "a tool result part other than text");
        }
        int rc = content_part(d, &tmp, e, i, j, false);
        if (rc)
            return rc;
        texts[j] = tmp.part[j].text;
    }
    p->result = j ? join(x, texts, j, "") : (struct rota_xl_val){"\"\"", 2};
    return p->result.len ? 0 : rota_xl_fail(x, -ENOMEM, "messages[%u]: out of memory", i);
}

static int message(struct rd *d, const struct rota_json *m, unsigned i)
{
    struct rota_xl *x = d->x;
    char at[96];
    if (m->type != ROTA_JSON_OBJECT)
        return bad(x, path(at, i, XL_AT_MSG), "not an object");
    const struct rota_json *role = NULL, *tool_call_id = NULL, *reasoning_content = NULL;
    struct rota_xl_openai_amsg a = {0};
    for (const struct rota_json *f = m->kid; f; f = f->next) {
        if (is_key(f, "role"))
            role = f;
        else if (is_key(f, "content"))
            a.content = f;
        else if (f->type == ROTA_JSON_NULL || is_key(f, "name"))
            continue; /* null is absent; a participant's name changes nothing we carry */
        else if (is_key(f, "tool_calls"))
            a.tool_calls = f;
        else if (is_key(f, "tool_call_id"))
            tool_call_id = f;
        else if (is_key(f, "reasoning_content") || is_key(f, "reasoning"))
            reasoning_content = f;
        else if (is_key(f, "reasoning_details"))
            a.details = f;
        else if (is_key(f, "refusal"))
            a.refusal = f;
        else
            return rota_xl_refuse_key(x, path(at, i, XL_AT_MSG), f);
    }
    if (reasoning_content && reasoning_content->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, XL_AT_MSG), "reasoning_content is not a string");
    if (a.refusal && a.refusal->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, XL_AT_MSG), "refusal is not a string");
    a.reasoning = reasoning_content;
    bool is_tool = rota_json_is(role, "tool");
    if (!is_tool)
        d->tool_msg = -1;
    if (rota_json_is(role, "system") || rota_json_is(role, "developer"))
        return system_msg(d, a.content, i);
    if (is_tool)
        return tool_msg(d, m, tool_call_id, a.content, i);
    if (rota_json_is(role, "assistant"))
        return rota_xl_openai_assistant_in(x, &a, i, false, &d->r->msg[d->r->nmsg++]);
    if (rota_json_is(role, "user")) {
        if (!a.content)
            return bad(x, path(at, i, XL_AT_MSG), "a user message without content");
        struct rota_xl_msg *u = &d->r->msg[d->r->nmsg++];
        u->role = ROTA_XL_USER;
        u->part = rota_xl_alloc(x, parts_of(a.content) * sizeof(*u->part));
        if (!u->part)
            return rota_xl_fail(x, -ENOMEM, "messages[%u]: out of memory", i);
        return content(d, u, a.content, i, false);
    }
    if (rota_json_is(role, "function"))
        return rota_xl_refuse(x, "a message of role \"function\"");
    return bad(x, path(at, i, XL_AT_MSG), "an unknown role");
}

static int messages(struct rd *d, const struct rota_json *v)
{
    struct rota_xl *x = d->x;
    if (v->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(x, -EINVAL, "messages is not an array");
    unsigned sys = 0;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        const struct rota_json *role = rota_json_get(m, "role");
        if (rota_json_is(role, "system") || rota_json_is(role, "developer"))
            sys += parts_of(rota_json_get(m, "content"));
    }
    d->r->system = rota_xl_alloc(x, (sys ? sys : 1) * sizeof(*d->r->system));
    d->r->msg = rota_xl_alloc(x, (v->n ? v->n : 1) * sizeof(*d->r->msg));
    if (!d->r->system || !d->r->msg)
        return rota_xl_fail(x, -ENOMEM, "messages: out of memory");
    unsigned i = 0;
    for (const struct rota_json *m = v->kid; m; m = m->next, i++) {
        int rc = message(d, m, i);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the body's other fields ---- */

static int tools(struct rd *d, const struct rota_json *v)
{
    struct rota_xl *x = d->x;
    if (v->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(x, -EINVAL, "tools is not an array");
    d->r->tool = rota_xl_alloc(x, (v->n ? v->n : 1) * sizeof(*d->r->tool));
    if (!d->r->tool)
        return rota_xl_fail(x, -ENOMEM, "tools: out of memory");
    unsigned i = 0;
    for (const struct rota_json *t = v->kid; t; t = t->next, i++) {
        char at[32];
        if (!rota_json_is(rota_json_get(t, "type"), "function")) { /* custom, built-in */
            snprintf(at, sizeof(at), "tools[%u]", i);
            return rota_xl_refuse(x, at);
        }
        const struct rota_json *fn = rota_json_get(t, "function");
        for (const struct rota_json *m = t->kid; m; m = m->next)
            if (!is_key(m, "type") && !is_key(m, "function") && !is_key(m, "cache_control")) {
                snprintf(at, sizeof(at), "tools[%u]", i);
                return rota_xl_refuse_key(x, at, m);
            }
        if (!fn || fn->type != ROTA_JSON_OBJECT)
            return rota_xl_fail(x, -EINVAL, "tools[%u].function: not an object", i);
        struct rota_xl_tool *tool = &d->r->tool[d->r->ntool++];
        for (const struct rota_json *m = fn->kid; m; m = m->next) {
            if (is_key(m, "name") && m->type == ROTA_JSON_STRING)
                tool->name = rota_xl_v(m);
            else if (is_key(m, "description") && m->type == ROTA_JSON_STRING)
                tool->desc = rota_xl_v(m);
            else if (is_key(m, "parameters") && m->type == ROTA_JSON_OBJECT)
                tool->params = rota_xl_v(m);
            else if (!is_key(m, "strict") && m->type != ROTA_JSON_NULL) {
                snprintf(at, sizeof(at), "tools[%u].function", i);
                return rota_xl_refuse_key(x, at, m);
            }
        }
        if (!tool->name.len)
            return rota_xl_fail(x, -EINVAL, "tools[%u].function: a function needs a name", i);
    }
    return 0;
}

static int tool_choice(struct rd *d, const struct rota_json *v)
{
    struct rota_xl_req *r = d->r;
    if (rota_json_is(v, "auto"))
        r->choice = ROTA_XL_AUTO;
    else if (rota_json_is(v, "none"))
        r->choice = ROTA_XL_NONE;
    else if (rota_json_is(v, "required"))
        r->choice = ROTA_XL_ANY;
    else if (v->type == ROTA_JSON_OBJECT && rota_json_is(rota_json_get(v, "type"), "function")) {
        const struct rota_json *n = rota_json_path(v, "function.name");
        if (!n || n->type != ROTA_JSON_STRING)
            return rota_xl_fail(d->x, -EINVAL, "tool_choice: a function needs a name");
        r->choice = ROTA_XL_NAMED;
        r->choice_name = rota_xl_v(n);
    } else {
        return rota_xl_refuse(d->x, "tool_choice"); /* allowed_tools, custom */
    }
    return 0;
}

static int response_format(struct rd *d, const struct rota_json *v)
{
    const struct rota_json *type = rota_json_get(v, "type");
    if (rota_json_is(type, "text")) {
        d->r->rformat = ROTA_XL_RF_TEXT;
    } else if (rota_json_is(type, "json_object")) {
        d->r->rformat = ROTA_XL_RF_JSON;
    } else if (rota_json_is(type, "json_schema")) {
        const struct rota_json *js = rota_json_get(v, "json_schema");
        const struct rota_json *s = rota_json_get(js, "schema"), *n = rota_json_get(js, "name");
        if (!s || s->type != ROTA_JSON_OBJECT)
            return rota_xl_fail(d->x, -EINVAL, "response_format.json_schema.schema is not an "
                                               "object");
        for (const struct rota_json *m = js->kid; m; m = m->next)
            if (!is_key(m, "schema") && !is_key(m, "name") && !is_key(m, "strict") &&
                !is_key(m, "description"))
                return rota_xl_refuse_key(d->x, "response_format.json_schema", m);
        d->r->rformat = ROTA_XL_RF_SCHEMA;
        d->r->schema = rota_xl_v(s);
        if (n && n->type == ROTA_JSON_STRING)
            d->r->schema_name = rota_xl_v(n);
    } else {
        return rota_xl_refuse(d->x, "response_format");
    }
    return 0;
}

static bool zero(const struct rota_json *v)
{
    double f;
    return rota_json_double(v, &f) && f == 0;
}

static int number(struct rota_xl *x, const struct rota_json *m, struct rota_xl_val *out)
{
    if (m->type != ROTA_JSON_NUMBER) {
        size_t n = 0;
        const char *k = rota_json_key(x->a, m, &n);
        return rota_xl_fail(x, -EINVAL, "%.*s is not a number", (int)n, k ? k : "");
    }
    *out = rota_xl_v(m);
    return 0;
}

/* OpenRouter's "reasoning": {effort, max_tokens, enabled, exclude}. */
static int reasoning(struct rd *d, const struct rota_json *v)
{
    struct rota_xl_req *r = d->r;
    if (v->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(d->x, -EINVAL, "reasoning is not an object");
    bool exclude = false;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        if (m->type == ROTA_JSON_NULL)
            continue;
        if (is_key(m, "effort") && m->type == ROTA_JSON_STRING) {
            r->effort = rota_xl_v(m);
            r->thinking = !rota_json_is(m, "none");
        } else if (is_key(m, "max_tokens") && rota_json_uint(m, &r->thinking_budget)) {
            r->thinking = r->thinking_budget > 0;
        } else if (is_key(m, "enabled") && m->type != ROTA_JSON_NUMBER) {
            r->thinking = rota_json_true(m);
        } else if (is_key(m, "exclude") && m->type != ROTA_JSON_NUMBER) {
            exclude = rota_json_true(m);
        } else {
            return rota_xl_refuse_key(d->x, "reasoning", m);
        }
    }
    r->include_thoughts = r->thinking == 1 && !exclude;
    return 0;
}

static int stream_options(struct rd *d, const struct rota_json *v)
{
    if (v->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(d->x, -EINVAL, "stream_options is not an object");
    for (const struct rota_json *m = v->kid; m; m = m->next)
        if (is_key(m, "include_usage"))
            d->r->include_usage = rota_json_true(m);
        else if (!is_key(m, "include_obfuscation"))
            return rota_xl_refuse_key(d->x, "stream_options", m);
    return 0;
}

/* Fields that change nothing in the answer. */
static const char *const ignored[] = {"store", "metadata", "service_tier", "prediction",
                                      "safety_identifier", "prompt_cache_key",
                                      "prompt_cache_retention", NULL};

static int field(struct rd *d, const struct rota_json *m)
{
    struct rota_xl *x = d->x;
    struct rota_xl_req *r = d->r;
    if (is_key(m, "model")) {
        if (m->type != ROTA_JSON_STRING)
            return rota_xl_fail(x, -EINVAL, "model is not a string");
        r->model = rota_xl_v(m);
    } else if (is_key(m, "messages")) {
        return messages(d, m);
    } else if (is_key(m, "tools")) {
        return tools(d, m);
    } else if (is_key(m, "tool_choice")) {
        return tool_choice(d, m);
    } else if (is_key(m, "parallel_tool_calls")) {
        r->parallel_tools = rota_json_true(m);
    } else if (is_key(m, "max_tokens") || is_key(m, "max_completion_tokens")) {
        if (!r->max_tokens.len || is_key(m, "max_completion_tokens"))
            return number(x, m, &r->max_tokens);
    } else if (is_key(m, "temperature")) {
        return number(x, m, &r->temperature);
    } else if (is_key(m, "top_p")) {
        return number(x, m, &r->top_p);
    } else if (is_key(m, "top_k")) {
        return number(x, m, &r->top_k);
    } else if (is_key(m, "seed")) {
        return number(x, m, &r->seed);
    } else if (is_key(m, "stop")) {
        if (m->type != ROTA_JSON_STRING && m->type != ROTA_JSON_ARRAY)
            return rota_xl_fail(x, -EINVAL, "stop is neither a string nor an array");
        for (const struct rota_json *e = m->kid; e; e = e->next)
            if (e->type != ROTA_JSON_STRING)
                return rota_xl_fail(x, -EINVAL, "stop holds a value that is not a string");
        r->stop = rota_xl_v(m);
    } else if (is_key(m, "stream")) {
        r->stream = rota_json_true(m);
    } else if (is_key(m, "stream_options")) {
        return stream_options(d, m);
    } else if (is_key(m, "response_format")) {
        return response_format(d, m);
    } else if (is_key(m, "reasoning_effort")) {
        if (m->type != ROTA_JSON_STRING)
            return rota_xl_fail(x, -EINVAL, "reasoning_effort is not a string");
        r->effort = rota_xl_v(m);
        r->thinking = !rota_json_is(m, "none");
        r->include_thoughts = r->thinking == 1;
    } else if (is_key(m, "reasoning")) {
        return reasoning(d, m);
    } else if (is_key(m, "user")) {
        r->user = rota_xl_v(m);
    } else if (is_key(m, "n")) {
        uint64_t n;
        if (!rota_json_uint(m, &n) || n != 1)
            return rota_xl_refuse(x, "n (more than one choice)");
    } else if ((is_key(m, "logprobs") && m->type != ROTA_JSON_FALSE) ||
               (is_key(m, "top_logprobs") && !zero(m)) ||
               (is_key(m, "logit_bias") && !(m->type == ROTA_JSON_OBJECT && m->n == 0)) ||
               ((is_key(m, "presence_penalty") || is_key(m, "frequency_penalty")) && !zero(m))) {
        return rota_xl_refuse_key(x, NULL, m);
    } else if (is_key(m, "modalities")) {
        for (const struct rota_json *e = m->kid; e; e = e->next)
            if (!rota_json_is(e, "text"))
                return rota_xl_refuse(x, "modalities (other than text)");
    } else if (!is_key(m, "logprobs") && !is_key(m, "top_logprobs") && !is_key(m, "logit_bias") &&
               !is_key(m, "presence_penalty") && !is_key(m, "frequency_penalty")) {
        for (const char *const *k = ignored; *k; k++)
            if (is_key(m, *k))
                return 0;
        return rota_xl_refuse_key(x, NULL, m);
    }
    return 0;
}

static int req_in(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r)
{
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, body, len, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "the request is not JSON: %s at byte %zu", e.what, e.at);
    if (j->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "the request is not a JSON object");
    if (!x->where)
        x->where = rota_xl_openai.where;
    struct rd d = {.x = x, .r = r, .tool_msg = -1};
    for (const struct rota_json *m = j->kid; m; m = m->next) {
        if (m->type == ROTA_JSON_NULL)
            continue; /* null is absent */
        int rc = field(&d, m);
        if (rc)
            return rc;
    }
    if (!r->msg)
        return rota_xl_fail(x, -EINVAL, "the request has no messages");
    return 0;
}

/* ---- where ---- */

static void where(char *buf, size_t n, unsigned msg, unsigned part)
{
    if (part == XL_AT_MSG)
        snprintf(buf, n, "messages[%u]", msg);
    else if (part == XL_AT_CONTENT)
        snprintf(buf, n, "messages[%u].content", msg);
    else if (part == XL_AT_REASONING)
        snprintf(buf, n, "messages[%u].reasoning_content", msg);
    else if (part & XL_AT_TOOLS)
        snprintf(buf, n, "messages[%u].tool_calls[%u]", msg, part & XL_AT_INDEX);
    else if (part & XL_AT_DETAILS)
        snprintf(buf, n, "messages[%u].reasoning_details[%u]", msg, part & XL_AT_INDEX);
    else
        snprintf(buf, n, "messages[%u].content[%u]", msg, part);
}

const struct rota_xl_format rota_xl_openai = {
    .name = "openai",
    .req_in = req_in,
    .req_out = rota_xl_openai_req_out,
    .resp_in = rota_xl_openai_resp_in,
    .resp_out = rota_xl_openai_resp_out,
    .ev_in = rota_xl_openai_ev_in,
    .ev_out = rota_xl_openai_ev_out,
    .ev_fail = rota_xl_openai_ev_fail,
    .where = where,
};
