/*
 * xl_responses.c - OpenAI's Responses API (/v1/responses) as a translation module: a
 * request read into the representation (xlate.h says what and why). The request
 * written and answers are in xl_responses_write.c, streams in xl_responses_stream.c.
 *
 * DESIGN
 * A request is instructions and a list of input items. Items in a row that make one
 * turn make one message of the representation: an assistant's message, reasoning and
 * function_call items one assistant message; function_call_output items in a row one
 * user message of TOOL_RESULT parts. system and developer messages go to r->system
 * after the instructions, in order. All parts are counted first and live in one array,
 * each message a run of it. A reasoning item is a THINKING part: its summary is the
 * text, its encrypted_content the signature (the state a Responses provider wants
 * back). Text crosses as the string token it was written as.
 *
 * Every field is one of: read; ignored because it changes nothing in the answer
 * (store, metadata, service_tier, safety_identifier, prompt_cache_key,
 * prompt_cache_retention, truncation, include other than logprobs, an item's id and
 * status, a part's annotations and an image's detail, a tool's and a schema's strict, a
 * schema's description, stream_options); or refused: previous_response_id and
 * conversation (state this translation does not hold), item_reference items, built-in
 * and custom tools and their calls, file and audio inputs, an image by file_id,
 * background, prompt templates, max_tool_calls, top_logprobs, logprobs in include,
 * text.verbosity, and any name not known here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_responses.h"

struct rd {
    struct rota_xl *x;
    struct rota_xl_req *r;
    struct rota_xl_part *parts; /* every message's parts, each message a run */
    uint32_t nparts, cap;
    struct rota_xl_msg *cur; /* the message being filled, or NULL */
    bool tool_run;           /* it is function_call_output items in a row */
};

static void where(char *buf, size_t n, unsigned msg, unsigned part);

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

static uint16_t at16(unsigned j)
{
    return j < XL_AT_DETAILS ? (uint16_t)j : (uint16_t)(XL_AT_DETAILS - 1);
}

/* ---- messages and parts ---- */

static struct rota_xl_msg *open_msg(struct rd *d, enum rota_xl_role role)
{
    struct rota_xl_msg *m = &d->r->msg[d->r->nmsg++];
    m->role = role;
    m->part = d->parts + d->nparts;
    m->n = 0;
    d->cur = m;
    d->tool_run = false;
    return m;
}

/* A part of the message being filled ("role": open a new one unless it is of it). */
static struct rota_xl_part *add(struct rd *d, enum rota_xl_role role, enum rota_xl_part_type t,
                                unsigned i, unsigned j)
{
    if (!d->cur || d->cur->role != role)
        open_msg(d, role);
    if (d->nparts >= d->cap)
        return NULL; /* (counted first: not reached) */
    struct rota_xl_part *p = &d->parts[d->nparts++];
    d->cur->n++;
    p->type = t;
    p->at_msg = (uint16_t)i;
    p->at_part = (uint16_t)j;
    return p;
}

static int full(struct rota_xl *x)
{
    return rota_xl_fail(x, -ENOMEM, "input: out of memory");
}

/* An input_image's image_url: a data: URL with base64 becomes mime and data. */
static int image(struct rd *d, const struct rota_json *c, unsigned i, unsigned j)
{
    struct rota_xl *x = d->x;
    char at[96];
    const struct rota_json *u = NULL;
    for (const struct rota_json *m = c->kid; m; m = m->next)
        if (is_key(m, "image_url"))
            u = m;
        else if (!is_key(m, "type") && !is_key(m, "detail") && m->type != ROTA_JSON_NULL)
            return rota_xl_refuse_key(x, path(at, i, at16(j)), m); /* file_id: a file we do not have */
    if (!u || u->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, at16(j)), "image_url is not a string");
    struct rota_xl_part *p = add(d, ROTA_XL_USER, ROTA_XL_IMAGE, i, at16(j));
    if (!p)
        return full(x);
    int rc = rota_xl_openai_image_url(x, u, p);
    if (rc == -EINVAL)
        return bad(x, path(at, i, at16(j)), "image_url is a data: URL of no image type");
    return rc ? full(x) : 0;
}

enum who { SYS, USER, ASSISTANT, NOBODY };

/* Element "j" of item "i"'s content. */
static int content_part(struct rd *d, const struct rota_json *c, unsigned i, unsigned j,
                        enum who who)
{
    struct rota_xl *x = d->x;
    char at[96];
    if (c->type != ROTA_JSON_OBJECT)
        return bad(x, path(at, i, at16(j)), "not an object");
    const struct rota_json *type = rota_json_get(c, "type");
    bool refusal = rota_json_is(type, "refusal");
    if (rota_json_is(type, "input_text") || rota_json_is(type, "output_text") || refusal) {
        const struct rota_json *t = NULL;
        for (const struct rota_json *m = c->kid; m; m = m->next)
            if (is_key(m, refusal ? "refusal" : "text"))
                t = m;
            else if (!is_key(m, "type") && !is_key(m, "annotations") && !is_key(m, "logprobs"))
                return rota_xl_refuse_key(x, path(at, i, at16(j)), m);
        if (!t || t->type != ROTA_JSON_STRING)
            return bad(x, path(at, i, at16(j)), "its text is not a string");
        if (who == SYS) {
            struct rota_xl_part *p = &d->r->system[d->r->nsystem++];
            *p = (struct rota_xl_part){.type = ROTA_XL_TEXT, .text = rota_xl_v(t)};
            p->at_msg = (uint16_t)i;
            p->at_part = at16(j);
            return 0;
        }
        if (who == ASSISTANT && t->len == 2)
            return 0; /* an empty text block is refused by several targets */
        struct rota_xl_part *p = add(d, who == USER ? ROTA_XL_USER : ROTA_XL_ASSISTANT,
                                     ROTA_XL_TEXT, i, at16(j));
        if (!p)
            return full(x);
        p->text = rota_xl_v(t);
        return 0;
    }
    if (rota_json_is(type, "input_image") && who == USER)
        return image(d, c, i, j);
    size_t n = 0;
    const char *tt = type ? rota_xl_text(x, rota_xl_v(type), &n) : NULL;
    char what[64];
    snprintf(what, sizeof(what), "a part of type \"%.*s\"", (int)(tt ? n : 0), tt ? tt : "");
    struct rota_xl_part q = {.at_msg = (uint16_t)i, .at_part = at16(j)};
    return rota_xl_refuse_part(x, &q, what);
}

/* A message item (or an "easy" one: role and content without a type). */
static int message(struct rd *d, const struct rota_json *it, unsigned i)
{
    struct rota_xl *x = d->x;
    char at[96];
    const struct rota_json *role = NULL, *c = NULL;
    for (const struct rota_json *m = it->kid; m; m = m->next)
        if (is_key(m, "role"))
            role = m;
        else if (is_key(m, "content"))
            c = m;
        else if (!is_key(m, "type") && !is_key(m, "id") && !is_key(m, "status") &&
                 m->type != ROTA_JSON_NULL)
            return rota_xl_refuse_key(x, path(at, i, XL_AT_MSG), m);
    enum who who = rota_json_is(role, "user")                                      ? USER
                   : rota_json_is(role, "assistant")                               ? ASSISTANT
                   : rota_json_is(role, "system") || rota_json_is(role, "developer") ? SYS
                                                                                   : NOBODY;
    if (who == NOBODY)
        return bad(x, path(at, i, XL_AT_MSG), "an unknown role");
    if (!c)
        return bad(x, path(at, i, XL_AT_MSG), "a message without content");
    if (who == USER || (who == ASSISTANT && (!d->cur || d->cur->role != ROTA_XL_ASSISTANT)))
        open_msg(d, who == USER ? ROTA_XL_USER : ROTA_XL_ASSISTANT); /* (an assistant's
                                                                        items in a row are one turn) */
    if (c->type == ROTA_JSON_STRING) {
        if (who == SYS) {
            struct rota_xl_part *p = &d->r->system[d->r->nsystem++];
            *p = (struct rota_xl_part){.type = ROTA_XL_TEXT, .text = rota_xl_v(c)};
            p->at_msg = (uint16_t)i;
            p->at_part = XL_AT_CONTENT;
            return 0;
        }
        if (who == ASSISTANT && c->len == 2)
            return 0;
        struct rota_xl_part *p = add(d, who == USER ? ROTA_XL_USER : ROTA_XL_ASSISTANT,
                                     ROTA_XL_TEXT, i, XL_AT_CONTENT);
        if (!p)
            return full(x);
        p->text = rota_xl_v(c);
        return 0;
    }
    if (c->type != ROTA_JSON_ARRAY)
        return bad(x, path(at, i, XL_AT_CONTENT), "neither a string nor an array of parts");
    unsigned j = 0;
    for (const struct rota_json *e = c->kid; e; e = e->next, j++) {
        int rc = content_part(d, e, i, j, who);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the other items ---- */

static int function_call(struct rd *d, const struct rota_json *it, unsigned i)
{
    struct rota_xl *x = d->x;
    char at[96];
    const struct rota_json *id = NULL, *name = NULL, *args = NULL;
    for (const struct rota_json *m = it->kid; m; m = m->next)
        if (is_key(m, "call_id"))
            id = m;
        else if (is_key(m, "name"))
            name = m;
        else if (is_key(m, "arguments"))
            args = m;
        else if (!is_key(m, "type") && !is_key(m, "id") && !is_key(m, "status") &&
                 m->type != ROTA_JSON_NULL)
            return rota_xl_refuse_key(x, path(at, i, XL_AT_MSG), m);
    if (!id || id->type != ROTA_JSON_STRING || !name || name->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, XL_AT_MSG), "a function call needs a call_id and a name");
    struct rota_xl_part *p = add(d, ROTA_XL_ASSISTANT, ROTA_XL_TOOL_CALL, i, XL_AT_MSG);
    if (!p)
        return full(x);
    p->id = rota_xl_v(id);
    p->name = rota_xl_v(name);
    if (!args || args->type == ROTA_JSON_NULL) {
        p->args = (struct rota_xl_val){"{}", 2};
        return 0;
    }
    if (rota_xl_args_obj(x, rota_xl_v(args), &p->args) == 0)
        return 0;
    char why[sizeof(x->err)];
    snprintf(why, sizeof(why), "%s", x->err);
    return rota_xl_fail(x, -EINVAL, "%s.arguments: %s", path(at, i, XL_AT_MSG), why);
}

/* A function_call_output: a TOOL_RESULT in the user message of the outputs in a row. */
static int function_output(struct rd *d, const struct rota_json *it, unsigned i)
{
    struct rota_xl *x = d->x;
    char at[96];
    const struct rota_json *id = NULL, *out = NULL;
    for (const struct rota_json *m = it->kid; m; m = m->next)
        if (is_key(m, "call_id"))
            id = m;
        else if (is_key(m, "output"))
            out = m;
        else if (!is_key(m, "type") && !is_key(m, "id") && !is_key(m, "status") &&
                 m->type != ROTA_JSON_NULL)
            return rota_xl_refuse_key(x, path(at, i, XL_AT_MSG), m);
    if (!id || id->type != ROTA_JSON_STRING)
        return bad(x, path(at, i, XL_AT_MSG), "a function call output needs a call_id");
    if (!d->cur || d->cur->role != ROTA_XL_USER || !d->tool_run) {
        open_msg(d, ROTA_XL_USER);
        d->tool_run = true;
    }
    struct rota_xl_part *p = add(d, ROTA_XL_USER, ROTA_XL_TOOL_RESULT, i, XL_AT_MSG);
    if (!p)
        return full(x);
    p->id = rota_xl_v(id);
    if (out && out->type == ROTA_JSON_STRING) {
        p->result = rota_xl_v(out);
        return 0;
    }
    if (!out || out->type != ROTA_JSON_ARRAY)
        return bad(x, path(at, i, XL_AT_MSG), "its output is neither a string nor an array");
    /* text parts: their texts joined, as one string */
    size_t total = 2;
    unsigned k = 0;
    for (const struct rota_json *e = out->kid; e; e = e->next, k++) {
        const struct rota_json *t = rota_json_get(e, "text");
        if (!rota_json_is(rota_json_get(e, "type"), "input_text") || !t ||
            t->type != ROTA_JSON_STRING) {
            struct rota_xl_part q = {.at_msg = (uint16_t)i, .at_part = XL_AT_TOOLS | at16(k)};
            return rota_xl_refuse_part(x, &q, "a function output part other than text");
        }
        total += t->len - 2;
    }
    char *b = rota_arena_alloc(x->a, total);
    if (!b)
        return full(x);
    size_t n = 0;
    b[n++] = '"';
    for (const struct rota_json *e = out->kid; e; e = e->next) {
        const struct rota_json *t = rota_json_get(e, "text");
        memcpy(b + n, t->p + 1, t->len - 2);
        n += t->len - 2;
    }
    b[n++] = '"';
    p->result = (struct rota_xl_val){b, n};
    return 0;
}

/* A reasoning item: a THINKING part, its summary the text, its encrypted_content the
 * signature. */
static int reasoning_item(struct rd *d, const struct rota_json *it, unsigned i)
{
    struct rota_xl *x = d->x;
    char at[96];
    const struct rota_json *enc = NULL;
    for (const struct rota_json *m = it->kid; m; m = m->next)
        if (is_key(m, "encrypted_content"))
            enc = m;
        else if (!is_key(m, "type") && !is_key(m, "id") && !is_key(m, "status") &&
                 !is_key(m, "summary") && !is_key(m, "content") && m->type != ROTA_JSON_NULL)
            return rota_xl_refuse_key(x, path(at, i, XL_AT_MSG), m);
    if (enc && enc->type != ROTA_JSON_STRING && enc->type != ROTA_JSON_NULL)
        return bad(x, path(at, i, XL_AT_MSG), "encrypted_content is not a string");
    struct rota_xl_val text = rota_xl_responses_summary(x, it);
    if (!text.len)
        return bad(x, path(at, i, XL_AT_MSG), "its summary is not an array of summary_text");
    if (text.len == 2 && (!enc || enc->type != ROTA_JSON_STRING))
        return 0; /* nothing to carry */
    struct rota_xl_part *p = add(d, ROTA_XL_ASSISTANT, ROTA_XL_THINKING, i, XL_AT_MSG);
    if (!p)
        return full(x);
    p->text = text;
    if (enc && enc->type == ROTA_JSON_STRING && enc->len > 2)
        p->sig = rota_xl_v(enc);
    return 0;
}

struct rota_xl_val rota_xl_responses_summary(struct rota_xl *x, const struct rota_json *it)
{
    const struct rota_json *s = rota_json_get(it, "summary");
    const char *field = "text";
    if ((!s || s->type == ROTA_JSON_NULL || (s->type == ROTA_JSON_ARRAY && !s->n)) &&
        rota_json_get(it, "content") && rota_json_get(it, "content")->type == ROTA_JSON_ARRAY)
        s = rota_json_get(it, "content"); /* reasoning_text, as open models give it */
    if (!s || s->type == ROTA_JSON_NULL)
        return (struct rota_xl_val){"\"\"", 2};
    if (s->type != ROTA_JSON_ARRAY)
        return (struct rota_xl_val){0};
    size_t total = 2;
    for (const struct rota_json *e = s->kid; e; e = e->next) {
        const struct rota_json *t = rota_json_get(e, field);
        if (!t || t->type != ROTA_JSON_STRING)
            return (struct rota_xl_val){0};
        total += t->len - 2 + (e != s->kid ? 4 : 0);
    }
    if (s->n == 1)
        return rota_xl_v(rota_json_get(s->kid, field));
    char *b = rota_arena_alloc(x->a, total);
    if (!b)
        return (struct rota_xl_val){0};
    size_t n = 0;
    b[n++] = '"';
    for (const struct rota_json *e = s->kid; e; e = e->next) {
        const struct rota_json *t = rota_json_get(e, field);
        if (e != s->kid) {
            memcpy(b + n, "\\n\\n", 4); /* summary parts are paragraphs */
            n += 4;
        }
        memcpy(b + n, t->p + 1, t->len - 2);
        n += t->len - 2;
    }
    b[n++] = '"';
    return (struct rota_xl_val){b, n};
}

static int item(struct rd *d, const struct rota_json *it, unsigned i)
{
    struct rota_xl *x = d->x;
    char at[96];
    if (it->type != ROTA_JSON_OBJECT)
        return bad(x, path(at, i, XL_AT_MSG), "not an object");
    const struct rota_json *type = rota_json_get(it, "type");
    if (!type || rota_json_is(type, "message"))
        return message(d, it, i);
    if (rota_json_is(type, "function_call"))
        return function_call(d, it, i);
    if (rota_json_is(type, "function_call_output"))
        return function_output(d, it, i);
    if (rota_json_is(type, "reasoning"))
        return reasoning_item(d, it, i);
    return rota_xl_refuse(x, path(at, i, XL_AT_MSG)); /* item_reference, built-in tools' */
}

/* The instructions and the input ("v", absent when NULL): system text first. */
static int input(struct rd *d, const struct rota_json *ins, const struct rota_json *v)
{
    struct rota_xl *x = d->x;
    struct rota_xl_req *r = d->r;
    unsigned parts = 1, sys = 1;
    if (v && v->type == ROTA_JSON_ARRAY)
        for (const struct rota_json *it = v->kid; it; it = it->next) {
            const struct rota_json *c = rota_json_get(it, "content");
            const struct rota_json *role = rota_json_get(it, "role");
            unsigned n = c && c->type == ROTA_JSON_ARRAY && c->n ? c->n : 1;
            if (rota_json_is(role, "system") || rota_json_is(role, "developer"))
                sys += n;
            else
                parts += n;
        }
    else if (v && v->type != ROTA_JSON_STRING)
        return rota_xl_fail(x, -EINVAL, "input is neither a string nor an array of items");
    r->system = rota_xl_alloc(x, sys * sizeof(*r->system));
    d->parts = rota_xl_alloc(x, parts * sizeof(*d->parts));
    r->msg = rota_xl_alloc(x, (v && v->type == ROTA_JSON_ARRAY && v->n ? v->n : 1) *
                                  sizeof(*r->msg));
    if (!r->system || !d->parts || !r->msg)
        return full(x);
    d->cap = parts;
    if (ins) {
        if (ins->type != ROTA_JSON_STRING)
            return rota_xl_refuse(x, "instructions (other than a string)");
        r->system[r->nsystem++] = (struct rota_xl_part){
            .type = ROTA_XL_TEXT, .text = rota_xl_v(ins), .at_msg = XL_RS_INSTRUCTIONS,
            .at_part = XL_AT_MSG};
    }
    if (!v)
        return 0;
    if (v->type == ROTA_JSON_STRING) {
        add(d, ROTA_XL_USER, ROTA_XL_TEXT, XL_RS_INPUT, XL_AT_MSG)->text = rota_xl_v(v);
        return 0;
    }
    unsigned i = 0;
    for (const struct rota_json *it = v->kid; it; it = it->next, i++) {
        int rc = item(d, it, i < 0xfffd ? i : 0xfffd); /* (above: instructions, input) */
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
        return full(x);
    unsigned i = 0;
    for (const struct rota_json *t = v->kid; t; t = t->next, i++) {
        char at[32];
        snprintf(at, sizeof(at), "tools[%u]", i);
        if (!rota_json_is(rota_json_get(t, "type"), "function"))
            return rota_xl_refuse(x, at); /* built-in and custom tools */
        struct rota_xl_tool *tool = &d->r->tool[d->r->ntool++];
        for (const struct rota_json *m = t->kid; m; m = m->next) {
            if (is_key(m, "name") && m->type == ROTA_JSON_STRING)
                tool->name = rota_xl_v(m);
            else if (is_key(m, "description") && m->type == ROTA_JSON_STRING)
                tool->desc = rota_xl_v(m);
            else if (is_key(m, "parameters") && m->type == ROTA_JSON_OBJECT)
                tool->params = rota_xl_v(m);
            else if (!is_key(m, "type") && !is_key(m, "strict") && m->type != ROTA_JSON_NULL)
                return rota_xl_refuse_key(x, at, m);
        }
        if (!tool->name.len)
            return bad(x, at, "a function needs a name");
    }
    return 0;
}

static int tool_choice(struct rd *d, const struct rota_json *v)
{
    struct rota_xl_req *r = d->r;
    if (rota_json_is(v, "auto")) {
        r->choice = ROTA_XL_AUTO;
    } else if (rota_json_is(v, "none")) {
        r->choice = ROTA_XL_NONE;
    } else if (rota_json_is(v, "required")) {
        r->choice = ROTA_XL_ANY;
    } else if (v->type == ROTA_JSON_OBJECT && rota_json_is(rota_json_get(v, "type"), "function")) {
        const struct rota_json *n = rota_json_get(v, "name");
        if (!n || n->type != ROTA_JSON_STRING)
            return rota_xl_fail(d->x, -EINVAL, "tool_choice: a function needs a name");
        r->choice = ROTA_XL_NAMED;
        r->choice_name = rota_xl_v(n);
    } else {
        return rota_xl_refuse(d->x, "tool_choice"); /* allowed_tools, built-in tools */
    }
    return 0;
}

/* text: {format: {type: text | json_object | json_schema, name, schema, ...}} */
static int text_field(struct rd *d, const struct rota_json *v)
{
    struct rota_xl *x = d->x;
    for (const struct rota_json *m = v->kid; m; m = m->next)
        if (!is_key(m, "format") && m->type != ROTA_JSON_NULL)
            return rota_xl_refuse_key(x, "text", m); /* verbosity */
    const struct rota_json *f = rota_json_get(v, "format");
    if (!f || f->type == ROTA_JSON_NULL)
        return 0;
    const struct rota_json *type = rota_json_get(f, "type");
    if (rota_json_is(type, "text"))
        return 0;
    if (rota_json_is(type, "json_object")) {
        d->r->rformat = ROTA_XL_RF_JSON;
        return 0;
    }
    if (!rota_json_is(type, "json_schema"))
        return rota_xl_refuse(x, "text.format");
    const struct rota_json *s = rota_json_get(f, "schema"), *n = rota_json_get(f, "name");
    if (!s || s->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "text.format.schema is not an object");
    for (const struct rota_json *m = f->kid; m; m = m->next)
        if (!is_key(m, "type") && !is_key(m, "schema") && !is_key(m, "name") &&
            !is_key(m, "strict") && !is_key(m, "description"))
            return rota_xl_refuse_key(x, "text.format", m);
    d->r->rformat = ROTA_XL_RF_SCHEMA;
    d->r->schema = rota_xl_v(s);
    if (n && n->type == ROTA_JSON_STRING)
        d->r->schema_name = rota_xl_v(n);
    return 0;
}

/* reasoning: {effort, summary} (summary asked: the client wants the reasoning text). */
static int reasoning(struct rd *d, const struct rota_json *v)
{
    struct rota_xl_req *r = d->r;
    if (v->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(d->x, -EINVAL, "reasoning is not an object");
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        if (m->type == ROTA_JSON_NULL)
            continue;
        if (is_key(m, "effort") && m->type == ROTA_JSON_STRING) {
            r->effort = rota_xl_v(m);
            r->thinking = !rota_json_is(m, "none");
        } else if ((is_key(m, "summary") || is_key(m, "generate_summary")) &&
                   m->type == ROTA_JSON_STRING) {
            r->include_thoughts = !rota_json_is(m, "none");
        } else {
            return rota_xl_refuse_key(d->x, "reasoning", m);
        }
    }
    return 0;
}

static int include(struct rd *d, const struct rota_json *v)
{
    if (v->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(d->x, -EINVAL, "include is not an array");
    for (const struct rota_json *e = v->kid; e; e = e->next)
        if (rota_json_is(e, "message.output_text.logprobs"))
            return rota_xl_refuse(d->x, "include (message.output_text.logprobs)");
    return 0; /* encrypted reasoning comes always; the others are built-in tools' */
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

static const char *const ignored[] = {"store", "metadata", "service_tier", "safety_identifier",
                                      "prompt_cache_key", "prompt_cache_retention",
                                      "truncation", "stream_options", NULL};

static int field(struct rd *d, const struct rota_json *m)
{
    struct rota_xl *x = d->x;
    struct rota_xl_req *r = d->r;
    if (is_key(m, "model")) {
        if (m->type != ROTA_JSON_STRING)
            return rota_xl_fail(x, -EINVAL, "model is not a string");
        r->model = rota_xl_v(m);
    } else if (is_key(m, "tools")) {
        return tools(d, m);
    } else if (is_key(m, "tool_choice")) {
        return tool_choice(d, m);
    } else if (is_key(m, "parallel_tool_calls")) {
        r->parallel_tools = rota_json_true(m);
    } else if (is_key(m, "max_output_tokens")) {
        return number(x, m, &r->max_tokens);
    } else if (is_key(m, "temperature")) {
        return number(x, m, &r->temperature);
    } else if (is_key(m, "top_p")) {
        return number(x, m, &r->top_p);
    } else if (is_key(m, "stream")) {
        r->stream = rota_json_true(m);
        r->include_usage = r->stream; /* response.completed carries it always */
    } else if (is_key(m, "text")) {
        return m->type == ROTA_JSON_OBJECT ? text_field(d, m)
                                           : rota_xl_fail(x, -EINVAL, "text is not an object");
    } else if (is_key(m, "reasoning")) {
        return reasoning(d, m);
    } else if (is_key(m, "include")) {
        return include(d, m);
    } else if (is_key(m, "user")) {
        r->user = rota_xl_v(m);
    } else if (is_key(m, "background") && m->type == ROTA_JSON_FALSE) {
        return 0;
    } else if (is_key(m, "top_logprobs") && m->type == ROTA_JSON_NUMBER && m->len == 1 &&
               m->p[0] == '0') {
        return 0;
    } else {
        for (const char *const *k = ignored; *k; k++)
            if (is_key(m, *k))
                return 0;
        return rota_xl_refuse_key(x, NULL, m); /* previous_response_id, conversation, prompt, ... */
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
        x->where = where;
    struct rd d = {.x = x, .r = r};
    const struct rota_json *ins = NULL, *in = NULL;
    for (const struct rota_json *m = j->kid; m; m = m->next) {
        if (m->type == ROTA_JSON_NULL)
            continue; /* null is absent */
        int rc = 0;
        if (is_key(m, "instructions"))
            ins = m;
        else if (is_key(m, "input"))
            in = m;
        else
            rc = field(&d, m);
        if (rc)
            return rc;
    }
    if (!in && !ins)
        return rota_xl_fail(x, -EINVAL, "the request has no input");
    return input(&d, ins, in);
}

/* ---- where ---- */

static void where(char *buf, size_t n, unsigned msg, unsigned part)
{
    if (msg == XL_RS_INSTRUCTIONS)
        snprintf(buf, n, "instructions");
    else if (msg == XL_RS_INPUT)
        snprintf(buf, n, "input");
    else if (part == XL_AT_MSG)
        snprintf(buf, n, "input[%u]", msg);
    else if (part == XL_AT_CONTENT)
        snprintf(buf, n, "input[%u].content", msg);
    else if (part & XL_AT_TOOLS)
        snprintf(buf, n, "input[%u].output[%u]", msg, part & XL_AT_INDEX);
    else
        snprintf(buf, n, "input[%u].content[%u]", msg, part);
}

const struct rota_xl_format rota_xl_responses = {
    .name = "responses",
    .req_in = req_in,
    .req_out = rota_xl_responses_req_out,
    .resp_in = rota_xl_responses_resp_in,
    .resp_out = rota_xl_responses_resp_out,
    .ev_in = rota_xl_responses_ev_in,
    .ev_out = rota_xl_responses_ev_out,
    .ev_fail = rota_xl_responses_ev_fail,
    .where = where,
};
